"""Issue 15: a live write-ahead journal truncated by another process while its writer has it mapped.

Before decision 0326 the writer's next copy into the mapping touched a page past the file's end: the process
died of SIGBUS, and the intents it had journaled (gone from the truncated file, and held nowhere else but in
its memory) were lost — the database held rows the audit trail never recorded. Each test runs a real writer
process, truncates its journal from the test process, and SIGKILLs the writer afterwards.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from governed_db.audit import journal as J
from governed_db.audit import read_records, verify
from governed_db.audit import records as R

KEY = "audit16-wal-key"

_WRITER = """
    import resource, signal, sqlite3, sys
    import governed_db
    from governed_db import Identity
    from governed_db.audit import store as store_module
    from governed_db.errors import GovernanceFault
    # nothing leaves the journal by itself: the intents below are in the journal (and in memory) only
    store_module.DEFER_INTERVAL = 3600.0
    store_module._DRAIN_AT = 10**9
    db, store = sys.argv[1], sys.argv[2]
    setup = sqlite3.connect(db)
    setup.execute("CREATE TABLE t (v INTEGER)")
    setup.commit()
    setup.close()
    conn = governed_db.wrap(sqlite3.connect(db, isolation_level=None), identity=Identity("audit16"),
                            environment="production",
                            audit={"path": store, "key": "@KEY@", "fsync_interval": 3600.0,
                                   "checkpoint_interval": None})
    n = 0
    def run(count):
        global n
        refused = 0
        for _ in range(count):
            try:
                conn.execute("INSERT INTO t VALUES (?)", (n,))
            except GovernanceFault:
                refused += 1
            n += 1
        return refused
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "run":
            print("refused", run(int(arg)), flush=True)
        elif cmd == "limit":  # the store can grow no more (a full disk, without filling one)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(arg), resource.RLIM_INFINITY))
            print("limited", flush=True)
        elif cmd == "unlimit":
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            print("unlimited", flush=True)
""".replace("@KEY@", KEY)


class Writer:
    def __init__(self, tmp_path: Path) -> None:
        self.db, self.store = tmp_path / "db.sqlite", tmp_path / "audit.jsonl"
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        self.p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_WRITER), str(self.db), str(self.store)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env)

    def say(self, line: str) -> str:
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        answer = self.p.stdout.readline().strip()
        if not answer:  # the writer died
            self.p.wait(timeout=30)
            assert self.p.stderr is not None
            raise AssertionError(f"the writer ended with {self.p.returncode}: {self.p.stderr.read()[-2000:]}")
        return answer

    def kill(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(timeout=30)
        assert self.p.returncode == -signal.SIGKILL  # it was alive until killed (no SIGBUS before)

    def journals(self) -> list[Path]:
        d = J.wal_dir(self.store)
        return sorted(d.glob("*.wal")) if d.is_dir() else []

    def rows(self) -> list[int]:
        return [v for (v,) in sqlite3.connect(self.db).execute("SELECT v FROM t ORDER BY v")]

    def statements(self) -> list[dict[str, object]]:
        return [r for r in read_records(self.store) if R.is_statement(r)]


def _cut(wal: Path, how: str) -> None:
    size = wal.stat().st_size
    if how == "to zero":
        os.truncate(wal, 0)
    elif how == "to a page":
        os.truncate(wal, 4096)
    else:  # cut and grown back to its size: no SIGBUS, but every frame and the header read as zeros
        os.truncate(wal, 0)
        os.truncate(wal, size)


@pytest.mark.parametrize("how", ["to zero", "to a page", "and grown back"])
def test_a_truncated_journal_loses_no_intent_and_kills_no_writer(tmp_path: Path, how: str) -> None:
    """30 intents only in the journal; the journal truncated; 5 more statements; SIGKILL: the writer lived,
    and all 35 rows the database holds have their statement in the store, which verifies with the key."""
    w = Writer(tmp_path)
    try:
        assert w.say("run 30") == "refused 0"
        (wal,) = w.journals()
        assert b"INSERT INTO t VALUES" in wal.read_bytes()
        assert sum(1 for r in w.statements() if "journal" not in r) < 30  # they wait in the journal
        _cut(wal, how)
        assert w.say("run 5") == "refused 0"  # before the fix: died of SIGBUS here
        # the statement that found the journal cut wrote everything it held to the store, from memory
        assert not wal.exists()
        w.kill()
    finally:
        if w.p.poll() is None:
            w.p.kill()
    assert w.rows() == list(range(35))
    r = verify(w.store, key=KEY)
    assert r.ok, r.problems
    stmts = w.statements()
    assert len(stmts) == 35
    assert all("journal" not in s for s in stmts)
    # the last statement's outcome was deferred when the writer was killed; every other one is known
    assert [s["outcome"] for s in stmts[:-1]] == ["ok"] * 34


def test_after_a_truncated_journal_statements_are_written_directly(tmp_path: Path) -> None:
    """Once its journal was cut, the store journals no more: each later intent is in the store file before the
    next statement runs (a SIGKILL right after a statement loses none), and no new journal appears."""
    w = Writer(tmp_path)
    try:
        assert w.say("run 3") == "refused 0"
        (wal,) = w.journals()
        os.truncate(wal, 0)
        for i in range(4):
            assert w.say("run 1") == "refused 0"
            # read as bytes, not through a reader (which would chain in what a journal holds)
            assert w.store.read_bytes().count(b'"type":"intent"') == 4 + i
            assert w.journals() == []
        w.kill()
    finally:
        if w.p.poll() is None:
            w.p.kill()
    assert w.rows() == list(range(7))
    assert len(w.statements()) == 7
    assert verify(w.store, key=KEY).ok


def test_a_truncated_journal_with_an_unwritable_store_refuses_and_loses_nothing(tmp_path: Path) -> None:
    """The journal cut while the store cannot grow: the statement that finds it is refused in production (it
    does not run), so are the next ones; once the store can grow, the 20 intents held in memory reach it with
    the next statement. The database and the store agree row for row."""
    w = Writer(tmp_path)
    try:
        assert w.say("run 20") == "refused 0"
        (wal,) = w.journals()
        assert w.say(f"limit {w.store.stat().st_size}") == "limited"
        os.truncate(wal, 0)
        assert w.say("run 3") == "refused 3"
        assert w.say("unlimit") == "unlimited"
        assert w.say("run 2") == "refused 0"
        w.kill()
    finally:
        if w.p.poll() is None:
            w.p.kill()
    rows = w.rows()
    assert rows == [*range(20), 23, 24]
    r = verify(w.store, key=KEY)
    assert r.ok, r.problems
    # one statement a row: the refused ones never ran (their intents could not be written, so nothing says
    # they did); the last outcome was deferred when the writer was killed
    stmts = w.statements()
    assert len(stmts) == len(rows) == 22
    assert [s["outcome"] for s in stmts[:-1]] == ["ok"] * 21
