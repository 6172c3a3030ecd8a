"""Issue 15: a live journal truncated between the writer's size check and its copy, and who may truncate one.

Decision 0326 checks the journal's size before each copy into its mapping; a truncation landing between that check
and the copy still ended in SIGBUS. Decision 0369 closes the window (the C copy runs under a SIGBUS guard, the
Python code writes with ``pwrite`` and reads the size after it) and pins down the lock protocol: no code of
governed_db truncates a journal; recovery takes only journals whose writer's lock is free, and only removes them.
Each writer here is a real process, in both builds (the C helper and ``GOVERNED_DB_NO_EXTENSIONS=1``).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import Identity
from governed_db._native import speedups
from governed_db.audit import journal as J
from governed_db.audit import read_records, verify
from governed_db.audit import records as R
from governed_db.audit import store as store_module

KEY = "h6bus-wal-key"


@pytest.fixture(autouse=True)
def _room_for_journals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores earlier tests in this process left open count against MAX_LIVE: these tests need their journal (in a
    full run the in-process ones found none and failed unpacking it)."""
    monkeypatch.setattr(J, "MAX_LIVE", 10**6)
ROOT = Path(__file__).resolve().parents[1]
BUILDS = ["native", "pure-python"]

_WRITER = """
    import os, resource, signal, sqlite3, sys
    import governed_db
    from governed_db import Identity
    from governed_db.audit import journal as J
    from governed_db.audit import store as store_module
    from governed_db.errors import GovernanceFault
    # nothing leaves the journal by itself: the intents below are in the journal (and in memory) only
    store_module.DEFER_INTERVAL = 3600.0
    store_module._DRAIN_AT = 10**9
    db, store = sys.argv[1], sys.argv[2]
    setup = sqlite3.connect(db)
    setup.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    setup.commit()
    setup.close()
    conn = governed_db.wrap(sqlite3.connect(db, isolation_level=None), identity=Identity("h6bus"),
                            environment="production",
                            audit={"path": store, "key": "@KEY@", "fsync_interval": 3600.0,
                                   "checkpoint_interval": None})
    n = int(sys.argv[3])
    armed = []

    def journal():
        (s,) = [s for s in store_module._stores if s._journal is not None]
        return s._journal

    real_pwrite, real_lseek = os.pwrite, os.lseek

    def pwrite(fd, data, pos):
        # the cut lands before the frame is written (after the previous statement's checks)
        if armed and fd == armed[0].fd:
            os.truncate(armed.pop().path, 0)
        return real_pwrite(fd, data, pos)

    def lseek(fd, pos, how):
        # or right after the size was read, before the frame is copied (a copy into the mapping: decision 0326)
        size = real_lseek(fd, pos, how)
        if armed and fd == armed[0].fd:
            os.truncate(armed.pop().path, 0)
        return size

    os.pwrite, os.lseek = pwrite, lseek

    def arm():
        j = journal()
        if J._native_frame is None:
            armed.append(j)
            return
        # the C helper reads the size itself: its descriptor is made to name a full-size file, so the size check
        # passes and the file is cut before the copy — exactly a truncation landing between the two
        decoy = os.open(db + ".decoy", os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(decoy, j.size)
        os.dup2(decoy, j.fd)
        os.close(decoy)
        os.truncate(j.path, 0)

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

    print("ready", flush=True)
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "run":
            print("refused", run(int(arg)), flush=True)
        elif cmd == "arm":
            arm()
            print("armed", flush=True)
        elif cmd == "cut":  # the journal cut just short of where the next frame goes (within its page)
            j = journal()
            os.truncate(j.path, j.wpos - int(arg))
            print("cut", j.wpos, flush=True)
        elif cmd == "lost":
            print("lost", any(s._journal_lost for s in list(store_module._stores)), flush=True)
        elif cmd == "loop":  # statements until the journal was found cut (by a truncator at work), then 50 more
            refused = cut_at = 0
            while cut_at == 0 and n < int(arg):
                refused += run(1)
                if any(s._journal_lost for s in list(store_module._stores)):
                    cut_at = n
            print("refused", refused + run(50), "cut_at", cut_at, "total", n, flush=True)
        elif cmd == "limit":  # the store can grow no more (a full disk, without filling one)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (int(arg), resource.RLIM_INFINITY))
            print("limited", flush=True)
        elif cmd == "unlimit":
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            print("unlimited", flush=True)
""".replace("@KEY@", KEY)


def _env(build: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("GOVERNED_DB_NO_EXTENSIONS", None)
    if build == "pure-python":
        env["GOVERNED_DB_NO_EXTENSIONS"] = "1"
    elif speedups is None:
        pytest.skip("governed_db._speedups is not built here")
    return env


class Writer:
    def __init__(self, tmp_path: Path, build: str, first: int = 0) -> None:
        self.db, self.store = tmp_path / "db.sqlite", tmp_path / "audit.jsonl"
        self.p = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(_WRITER), str(self.db), str(self.store), str(first)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(build))
        assert self._read() == "ready"

    def _read(self) -> str:
        assert self.p.stdout is not None
        answer = self.p.stdout.readline().strip()
        if not answer:  # the writer died
            self.p.wait(timeout=30)
            assert self.p.stderr is not None
            raise AssertionError(f"the writer ended with {self.p.returncode}: {self.p.stderr.read()[-2000:]}")
        return answer

    def say(self, line: str) -> str:
        assert self.p.stdin is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self._read()

    def kill(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(timeout=30)
        assert self.p.returncode == -signal.SIGKILL  # alive until killed: no SIGBUS before

    def journals(self) -> list[Path]:
        d = J.wal_dir(self.store)
        return sorted(d.glob("*.wal")) if d.is_dir() else []


def _rows(db: Path) -> list[int]:
    return [v for (v,) in sqlite3.connect(db).execute("SELECT v FROM t ORDER BY v")]


def _statements(store: Path) -> list[dict[str, Any]]:
    return [r for r in read_records(store) if R.is_statement(r)]


def _intents_in_store_file(store: Path) -> int:
    return sum(1 for line in store.read_bytes().splitlines() if b'"type":"intent"' in line)


@pytest.mark.parametrize("build", BUILDS)
def test_a_truncation_between_the_check_and_the_copy_kills_no_writer_and_loses_no_intent(tmp_path: Path,
                                                                                        build: str) -> None:
    """20 intents only in the journal; the journal cut after the size check and before the next copy; that
    statement and 4 more; SIGKILL: the writer lived, the cut statement's intent was in the store before it ran,
    and all 25 rows have their statement in the store, which verifies with the key."""
    w = Writer(tmp_path, build)
    try:
        assert w.say("run 20") == "refused 0"
        (wal,) = w.journals()
        assert w.say("arm") == "armed"
        before = _intents_in_store_file(w.store)
        assert before == 1  # the first statement of a process goes to the store; the other 19 wait in the journal
        assert w.say("run 1") == "refused 0"  # before the fix: SIGBUS (C), or a copy into a cut mapping (Python)
        # that statement found the journal cut: its intent and the 19 journaled ones are in the store file now,
        # not left to a journal whose frames are gone
        assert _intents_in_store_file(w.store) == before + 20
        assert not wal.exists()
        assert w.say("run 4") == "refused 0"
        assert w.journals() == []  # no new journal for a store whose journal was truncated (decision 0326)
        w.kill()
    finally:
        if w.p.poll() is None:
            w.p.kill()
    assert _rows(w.db) == list(range(25))
    r = verify(w.store, key=KEY)
    assert r.ok, r.problems
    stmts = _statements(w.store)
    assert len(stmts) == 25 and all("journal" not in s for s in stmts)
    assert [s["outcome"] for s in stmts[:-1]] == ["ok"] * 24  # the last outcome was still deferred at the kill


@pytest.mark.parametrize("build", BUILDS)
def test_a_truncation_in_the_window_with_an_unwritable_store_refuses_the_statement(tmp_path: Path,
                                                                                  build: str) -> None:
    """The journal cut between check and copy while the store cannot grow: the statement cannot be recorded, so
    it is refused (GovernanceFault) and never runs; once the store can grow, the next statement writes the 10
    journaled intents and its own before it runs."""
    w = Writer(tmp_path, build)
    try:
        assert w.say("run 10") == "refused 0"
        assert w.say("arm") == "armed"
        assert w.say(f"limit {w.store.stat().st_size}") == "limited"
        assert w.say("run 2") == "refused 2"
        assert _rows(w.db) == list(range(10))  # the refused statements did not run
        assert w.say("unlimit") == "unlimited"
        assert w.say("run 1") == "refused 0"
        w.kill()
    finally:
        if w.p.poll() is None:
            w.p.kill()
    assert _rows(w.db) == [*range(10), 12]
    r = verify(w.store, key=KEY)
    assert r.ok, r.problems
    stmts = _statements(w.store)
    # the 11 statements that ran, each once (the refused two reached no store: it could not be written)
    assert [s["attrs"]["db.query.text"] for s in stmts] == ["INSERT INTO t VALUES (?)"] * 11
    assert len({s["span_id"] for s in stmts}) == 11
    assert [s["outcome"] for s in stmts] == ["ok"] * 10 + ["UNKNOWN"]  # the last one's was deferred at the kill


_TRUNCATOR = """
    import os, sys
    d, how = sys.argv[1], sys.argv[2]
    while True:  # until the test kills it
        try:
            names = [n for n in os.listdir(d) if n.endswith(".wal")]
        except FileNotFoundError:
            names = []
        for n in names:
            try:
                os.truncate(os.path.join(d, n), 4096 if how == "page" else 0)
                if how == "grow":
                    os.truncate(os.path.join(d, n), 4 * 1024 * 1024)
            except OSError:
                pass
"""


@pytest.mark.parametrize("build", BUILDS)
@pytest.mark.parametrize("how", ["zero", "page", "grow"])
def test_a_writer_keeps_writing_while_another_process_truncates_its_journal(tmp_path: Path, build: str,
                                                                            how: str) -> None:
    """A writer runs statements back to back while another process truncates its journal in a loop (to zero, to a
    page, or to zero and back to full size): the cut lands while statements run, the writer never dies, every
    row has its statement in the store, and the store verifies with the key."""
    w = Writer(tmp_path, build)
    cutter = None
    try:
        assert w.say("run 30") == "refused 0"
        assert len(w.journals()) == 1
        cutter = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_TRUNCATOR), str(J.wal_dir(w.store)), how])
        answer = w.say("loop 200000").split()
        assert answer[:2] == ["refused", "0"]
        cut_at, total = int(answer[3]), int(answer[5])
        assert 30 < cut_at < 200000  # found cut in the middle of the run, not before it started
        w.kill()
    finally:
        if cutter is not None:
            cutter.kill()
            cutter.wait(timeout=30)
        if w.p.poll() is None:
            w.p.kill()
    assert _rows(w.db) == list(range(total))
    r = verify(w.store, key=KEY)
    assert r.ok, r.problems
    stmts = _statements(w.store)
    assert len(stmts) == total and all("journal" not in s for s in stmts)


def test_a_cut_within_the_page_a_frame_lands_in_is_found_and_loses_no_intent(tmp_path: Path) -> None:
    """Under the copy guard no size is read a statement (decision 0411). A cut just short of where the next frames
    go leaves their page mapped: their bytes past the new end are not kept, and no fault says so. At the latest
    the first frame past that page faults (the guard catches it), and the store writes every record it held from
    memory: the writer lives, and a SIGKILL after that loses no intent."""
    w = Writer(tmp_path, "native")
    try:
        assert w.say("run 20") == "refused 0"
        assert w.say("cut 40").startswith("cut ")
        assert w.say("lost") == "lost False"
        statements = 0
        while w.say("lost") == "lost False":
            assert w.say("run 1") == "refused 0"
            statements += 1
            assert statements < 64, "a frame past the cut page never faulted"
        # found once the frames left the page the cut lies in (a frame is ~600 bytes: a few at most)
        assert statements <= 4096 // 300 + 1
        assert w.say("run 5") == "refused 0"
        w.kill()
    finally:
        if w.p.poll() is None:
            w.p.kill()
    total = 25 + statements
    assert _rows(w.db) == list(range(total))
    stmts = _statements(w.store)
    assert len(stmts) == total
    assert verify(w.store, key=KEY).ok


def test_the_copy_guard_catches_a_truncation_the_size_check_missed(tmp_path: Path) -> None:
    """The C copy into a mapping whose file was cut after the size check: -2 and the process lives with the
    guard installed; without it (a process that never made a journal) the same call dies of SIGBUS — the window
    the guard closes is real."""
    if speedups is None:
        pytest.skip("governed_db._speedups is not built here")
    script = """
        import mmap, os, sys
        from governed_db._native import speedups
        path, decoy = sys.argv[1], sys.argv[2]
        size = 1 << 20
        for p in (path, decoy):
            fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
            os.ftruncate(fd, size)
            os.pwrite(fd, b"GDBWAL02", 0)
            if p == path:
                mm = mmap.mmap(fd, size)
            else:
                dfd = fd
        if sys.argv[3] == "guarded":
            assert speedups.guard_install()
        os.truncate(path, 0)  # after the check the decoy descriptor will pass
        print(speedups.frame(mm, dfd, 64, size, 1, 0, -1, b'{"a":1,', b'"b":2}', None, None, -1, -1, None),
              speedups.copy_frame(mm, dfd, 64, size, bytes(40)), flush=True)
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("GOVERNED_DB_NO_EXTENSIONS", None)
    runs = {}
    for mode in ("guarded", "unguarded"):
        p = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(tmp_path / f"{mode}.wal"),
                            str(tmp_path / f"{mode}.decoy"), mode], capture_output=True, text=True, env=env,
                           timeout=60)
        runs[mode] = (p.returncode, p.stdout.strip())
    assert runs["guarded"] == (0, "-2 -2")
    assert runs["unguarded"] == (-signal.SIGBUS, "")


def test_a_sigbus_outside_a_guarded_copy_still_ends_the_process(tmp_path: Path) -> None:
    """The guard takes only faults of its own copies: any other SIGBUS (a mapping touched past its file's end by
    other code, or the signal sent) ends the process as before, through the handler that was there (faulthandler's
    traceback included)."""
    if speedups is None:
        pytest.skip("governed_db._speedups is not built here")
    script = """
        import faulthandler, mmap, os, signal, sys
        from governed_db._native import speedups
        if sys.argv[2] == "faulthandler":
            faulthandler.enable()
        assert speedups.guard_install()
        fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(fd, 1 << 20)
        mm = mmap.mmap(fd, 1 << 20)
        os.truncate(sys.argv[1], 0)
        if sys.argv[3] == "kill":
            os.kill(os.getpid(), signal.SIGBUS)
        else:
            mm[4096] = 1
        print("survived", flush=True)
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("GOVERNED_DB_NO_EXTENSIONS", None)
    for handler in ("default", "faulthandler"):
        for how in ("fault", "kill"):
            p = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(tmp_path / f"{handler}{how}"),
                                handler, how], capture_output=True, text=True, env=env, timeout=60)
            assert p.returncode == -signal.SIGBUS, (handler, how, p.returncode, p.stderr[-500:])
            assert "survived" not in p.stdout
            assert ("Bus error" in p.stderr) == (handler == "faulthandler"), p.stderr[-500:]


# -- who may truncate (or remove) a live journal -----------------------------------------------------------------
_RECOVERER = """
    import sys
    import governed_db
    from governed_db import Identity
    from governed_db.audit import read_records, verify
    from governed_db.audit.store import recover_journals
    import sqlite3
    from pathlib import Path
    store, key, what = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    if what == "read":
        list(read_records(store))
    elif what == "recover":
        recover_journals(store, key=key)
    elif what == "verify":
        verify(store, key=key)
    else:  # another writer of the store: its first locked write recovers orphaned journals
        conn = governed_db.wrap(sqlite3.connect(":memory:"), identity=Identity("other"), environment="production",
                                audit={"path": store, "key": key, "journal": False})
        conn.execute("SELECT 1")
        conn.close()
    print("done", flush=True)
"""


@pytest.mark.parametrize("build", BUILDS)
def test_recoveries_never_touch_a_live_writers_journal(tmp_path: Path, build: str) -> None:
    """While a writer holds 20 intents in its journal, other processes recover the store's journals (a reader,
    recover_journals with the key, verify with the key, another writer): the live journal keeps its inode, its
    size and every byte, the writer goes on, and no record is chained twice."""
    w = Writer(tmp_path, build)
    try:
        assert w.say("run 20") == "refused 0"
        (wal,) = w.journals()
        st, data = wal.stat(), wal.read_bytes()
        for what in ("read", "recover", "verify", "writer"):
            p = subprocess.run([sys.executable, "-c", textwrap.dedent(_RECOVERER), str(w.store), KEY, what],
                               capture_output=True, text=True, env=_env(build), timeout=120)
            assert p.stdout.strip() == "done", p.stderr[-2000:]
            now = wal.stat()
            assert (now.st_ino, now.st_size) == (st.st_ino, st.st_size), what
            assert wal.read_bytes() == data, what
        assert w.say("run 5") == "refused 0"
        w.kill()
    finally:
        if w.p.poll() is None:
            w.p.kill()
    assert _rows(w.db) == list(range(25))
    r = verify(w.store, key=KEY)  # the writer is dead now: its journal is chained here
    assert r.ok, r.problems
    spans = [s["span_id"] for s in _statements(w.store) if s["attrs"]["db.query.text"].startswith("INSERT")]
    assert len(spans) == 25 and len(set(spans)) == 25


def test_no_code_of_governed_db_truncates_or_writes_a_journal_it_does_not_own() -> None:
    """The lock protocol in the source: recovery reads orphans (pread, never a mapping), removes or renames them,
    and never truncates, writes or maps one; the only ftruncate calls are on the store file."""
    src = (ROOT / "governed_db" / "audit" / "journal.py").read_text()
    recovery = src[src.index("# -- recovery"):]
    for call in ("ftruncate", "truncate(", "pwrite", "mmap.mmap", ".write("):
        assert call not in recovery, call
    for f in (ROOT / "governed_db").rglob("*.py"):
        text = f.read_text()
        if "ftruncate" in text:
            assert f.name in {"store.py", "config_files.py"}, f


def test_a_reader_in_the_writers_own_process_never_opens_its_live_journal(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Where flock is emulated by POSIX record locks (NFS), this process could take its own journal's lock again,
    and closing that descriptor would drop the writer's lock. So a recovery here never opens this process's live
    journals: with a flock that always succeeds, read_records and recover_journals leave the journal in place,
    and each statement is recorded once."""
    monkeypatch.setattr(store_module, "DEFER_INTERVAL", 3600.0)
    monkeypatch.setattr(store_module, "_DRAIN_AT", 10**9)
    path = tmp_path / "audit.jsonl"
    conn = governed_db.wrap(sqlite3.connect(":memory:"), identity=Identity("alice"), environment="production",
                            audit={"path": str(path), "key": KEY, "fsync_interval": 3600.0,
                                   "checkpoint_interval": None})
    conn.execute("CREATE TABLE t (v INTEGER)")
    for i in range(10):
        conn.execute("INSERT INTO t VALUES (?)", (i,))
    (wal,) = J.wal_dir(path).glob("*.wal")
    opened: list[str] = []
    real_open = os.open

    def spy_open(p: Any, *a: Any, **kw: Any) -> int:
        if J._NAME.match(Path(p).name):
            opened.append(str(p))
        return real_open(p, *a, **kw)

    monkeypatch.setattr(J.os, "open", spy_open)
    monkeypatch.setattr(J.fcntl, "flock", lambda fd, op: None)  # every lock "granted", as to its own process
    assert [*J.orphans(path, None)] == []
    store_module.recover_journals(path, key=KEY)
    list(read_records(path))  # flushes this process's journal first, then recovers and views orphans
    assert opened == []
    assert wal.exists()
    monkeypatch.undo()
    conn.close()
    stmts = [s for s in read_records(path) if R.is_statement(s) and s["attrs"]["db.query.text"].startswith("INSERT")]
    assert len(stmts) == 10 and len({s["span_id"] for s in stmts}) == 10
    assert verify(path, key=KEY).ok


def test_an_orphan_cut_while_it_is_recovered_does_not_crash_the_recoverer(tmp_path: Path) -> None:
    """A dead writer's journal cut to zero by someone else just as a recoverer reads it (after it learned the
    size): the recoverer lives — it reads with pread, which comes back short, where reading through a mapping
    raised SIGBUS in the recovering process (a writer opening the store, or a reader) — and leaves the file."""
    script = """
        import mmap, os, sys
        from pathlib import Path
        from governed_db.audit import journal as J
        store = Path(sys.argv[1])
        (wal,) = J.wal_dir(store).glob("*.wal")

        def cut(fd):
            if os.path.samestat(os.fstat(fd), os.stat(wal)):
                os.truncate(wal, 0)

        real_pread, real_mmap = os.pread, mmap.mmap

        def pread(fd, n, off):
            cut(fd)
            return real_pread(fd, n, off)

        def mapped(fd, *a, **kw):
            m = real_mmap(fd, *a, **kw)
            cut(fd)
            return m

        os.pread, mmap.mmap = pread, mapped
        found = list(J.orphans(store, None))
        print("alive", len(found), flush=True)
        for o in found:
            o.release(remove=False)
    """
    w = Writer(tmp_path, "pure-python")  # a dead writer's journal: killed with its intents only there
    try:
        assert w.say("run 5") == "refused 0"
        w.kill()
    finally:
        if w.p.poll() is None:
            w.p.kill()
    (wal,) = J.wal_dir(w.store).glob("*.wal")
    assert wal.stat().st_size == J.DEFAULT_SIZE
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(w.store)], capture_output=True, text=True,
                       env=_env("pure-python"), timeout=60)
    assert (p.returncode, p.stdout.split()[:2]) == (0, ["alive", "0"]), p.stderr[-2000:]
    assert wal.exists() and wal.stat().st_size == 0  # left in place, not taken for a journal
