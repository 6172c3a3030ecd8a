"""Write-ahead records: a statement's intent is in the store before the driver sees it; its outcome follows."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import governed_db
from governed_db import Identity
from governed_db.audit import AuditStore, audit_processor, read_records, verify
from governed_db.audit import records as R
from governed_db.audit.search import Query, search
from governed_db.audit.store import read_raw
from governed_db.cli.audit import audit
from governed_db.errors import GovernanceFault
from tests.conftest import PG_DSN

KEY = "write-ahead-test-key"


def _store(path: Path) -> Any:
    return audit_processor({"path": str(path), "key": KEY, "fsync_interval": None, "checkpoint_interval": None})


def test_intent_is_in_the_file_while_the_driver_runs_the_statement(tmp_path: Path) -> None:
    """While sqlite evaluates the statement, the store file already holds its intent (identity, text, decision)."""
    path = tmp_path / "audit.jsonl"
    seen: list[list[dict[str, Any]]] = []

    def peek() -> int:
        seen.append([r for r in read_raw(path) if r.get("type") == R.INTENT])
        return 1

    raw = sqlite3.connect(":memory:")
    raw.create_function("peek", 0, peek)
    conn = governed_db.wrap(raw, audit=_store(path), identity=Identity("alice"), environment="production")
    conn.execute("SELECT peek()").fetchall()
    (intents,) = seen
    assert len(intents) == 1
    attrs = intents[0]["attrs"]
    assert attrs["governed_db.identity.subject"] == "alice"
    assert attrs["governed_db.decision"] == "allow"
    assert attrs["db.query.text"] == "SELECT peek ()"
    kinds = [r["type"] for r in read_raw(path)]
    assert kinds.index("intent") < kinds.index("outcome")


def test_outcome_completes_the_statement_record(tmp_path: Path) -> None:
    """Read back, intent and outcome are one statement record with its status and rows affected."""
    path = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit=_store(path), environment="production")
    conn.execute("INSERT INTO t VALUES (1), (2)")
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("INSERT INTO missing VALUES (1)")
    stmts = [r for r in read_records(path) if R.is_statement(r)]
    assert [s["outcome"] for s in stmts] == ["ok", "error"]
    assert stmts[0]["attrs"]["governed_db.rows_affected"] == 2
    assert stmts[1]["status"] == "ERROR" and stmts[1]["attrs"]["error.type"] == "OperationalError"
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    assert result.statements == 2 and result.outcome_unknown == 0


_KILLED_CHILD = textwrap.dedent("""
    import os, signal, sqlite3, sys
    import governed_db
    db, store = sys.argv[1], sys.argv[2]
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    def die():
        os.kill(os.getpid(), signal.SIGKILL)   # killed while the driver runs the statement
    raw.create_function("die", 0, die)
    conn = governed_db.wrap(raw, audit={"path": store, "key": "k"}, identity=governed_db.Identity("carol"),
                            environment="production")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("INSERT INTO t SELECT die()")
""")


def test_sigkill_during_the_statement_leaves_an_intent_with_outcome_unknown(tmp_path: Path) -> None:
    """A process killed while the driver runs the statement leaves its intent, shown as outcome unknown."""
    store, db = tmp_path / "audit.jsonl", tmp_path / "d.db"
    proc = subprocess.run([sys.executable, "-c", _KILLED_CHILD, str(db), str(store)], capture_output=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    stmts = [r for r in read_records(store) if R.is_statement(r)]
    assert [s["attrs"]["db.query.text"] for s in stmts] == ["INSERT INTO t VALUES (?)", "INSERT INTO t SELECT die ()"]
    assert stmts[0]["outcome"] == "ok" and stmts[1]["outcome"] == R.UNKNOWN and stmts[1]["status"] == R.UNKNOWN
    result = verify(store, key="k")
    assert result.ok, result.problems
    assert result.outcome_unknown == 1
    assert any("outcome unknown" in w for w in result.warnings)
    found = list(search(store, Query(identity="carol")))
    assert [r.get("outcome") for r in found] == ["ok", R.UNKNOWN]
    out = CliRunner().invoke(audit, ["search", "--store", str(store), "--identity", "carol"])
    assert out.exit_code == 0 and "outcome unknown" in out.output
    out = CliRunner().invoke(audit, ["verify", "--store", str(store), "--format", "json"],
                             env={"GOVERNED_DB_AUDIT_KEY": "k"})
    assert out.exit_code == 0 and json.loads(out.output)["outcome_unknown"] == 1
    from governed_db.cli import main

    for fmt in ("md", "json"):  # the report counts it too
        out = CliRunner().invoke(main, ["report", "--store", str(store), "--since", "1d", "--format", fmt,
                                        "-o", str(tmp_path / f"r.{fmt}")], env={"GOVERNED_DB_AUDIT_KEY": "k"})
        assert out.exit_code == 0, out.output
        text = (tmp_path / f"r.{fmt}").read_text()
        assert ("| outcome_unknown | 1 |" in text) if fmt == "md" else ('"outcome_unknown": 1' in text), text[:2000]


def _make_unwritable(path: Path) -> None:
    """The store's file is moved away and a directory stands at its path: nothing can be appended there."""
    path.rename(path.with_name("moved-away"))
    path.mkdir()


def test_unwritable_store_refuses_the_statement_in_production(tmp_path: Path) -> None:
    """In production a statement whose intent cannot be written does not run: the database shows no change."""
    path, db = tmp_path / "audit.jsonl", tmp_path / "d.db"
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit=_store(path), environment="production")
    conn.execute("INSERT INTO t VALUES (1)")
    _make_unwritable(path)
    with pytest.raises(GovernanceFault, match="audit store"):
        conn.execute("INSERT INTO t VALUES (2)")
    with pytest.raises(GovernanceFault):
        conn.execute("DELETE FROM t WHERE v = 1")
    check = sqlite3.connect(db)
    assert check.execute("SELECT v FROM t").fetchall() == [(1,)]


def test_unwritable_store_in_development_lets_the_statement_run(tmp_path: Path) -> None:
    """Outside production the statement runs (and the lost record is logged)."""
    path = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER)")
    proc = _store(path)
    conn = governed_db.wrap(raw, audit=proc, environment="development")
    conn.execute("INSERT INTO t VALUES (1)")
    _make_unwritable(path)
    conn.execute("INSERT INTO t VALUES (2)")
    assert raw.execute("SELECT count(*) FROM t").fetchone() == (2,)
    assert proc.failures >= 1


def test_unwritable_store_refuses_on_postgres(tmp_path: Path, unique: str) -> None:
    """The same refusal on a real PostgreSQL server: the row the refused statement would insert is absent."""
    psycopg = pytest.importorskip("psycopg")
    path = tmp_path / "audit.jsonl"
    table = f"wa_{unique}"
    raw = psycopg.connect(PG_DSN, autocommit=True)
    raw.execute(f"CREATE TABLE {table} (v integer)")
    try:
        conn = governed_db.wrap(raw, audit=_store(path), environment="production")
        conn.execute(f"INSERT INTO {table} VALUES (1)")
        _make_unwritable(path)
        with pytest.raises(GovernanceFault):
            conn.execute(f"INSERT INTO {table} VALUES (2)")
        assert raw.execute(f"SELECT v FROM {table}").fetchall() == [(1,)]
    finally:
        raw.execute(f"DROP TABLE {table}")
        raw.close()


def test_a_failure_in_one_thread_is_not_cleared_by_another(tmp_path: Path) -> None:
    """last_error describes this thread's own last record, so another thread's success cannot let it through."""
    proc = _store(tmp_path / "audit.jsonl")
    proc.last_error = OSError("disk full")
    other: list[Any] = []
    t = threading.Thread(target=lambda: other.append(proc.last_error))
    t.start()
    t.join()
    assert other == [None] and isinstance(proc.last_error, OSError)


def test_intent_failure_then_outcome_is_recorded_whole(tmp_path: Path) -> None:
    """A statement whose intent could not be written is recorded as one whole record when the store recovers."""
    path = tmp_path / "audit.jsonl"
    proc = _store(path)
    real = proc.store.append
    calls: list[str] = []

    def flaky(body: Any) -> int:
        kind = body.type if isinstance(body, R.Prepared) else body["type"]
        calls.append(kind)
        if kind == R.INTENT:
            raise OSError(28, "No space left on device")
        return real(body)

    proc.store.append = flaky
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, environment="development")
    conn.execute("SELECT 1")
    assert calls[:2] == [R.INTENT, R.SPAN]
    (stmt,) = [r for r in read_records(path) if R.is_statement(r)]
    assert stmt["type"] == R.SPAN and stmt["status"] != R.UNKNOWN
    assert verify(path, key=KEY).ok


def test_format_one_store_is_continued_and_verifies(tmp_path: Path) -> None:
    """A store written by governed_db 0.1 (format 1) keeps verifying, and new format-2 records chain onto it."""
    path = tmp_path / "old.jsonl"
    prev, lines = R.GENESIS_PREV, []
    bodies = [{"v": 1, "type": "genesis", "time": 1, "store": "s1"},
              {"v": 1, "type": "span", "time": 2, "name": "SELECT t", "attrs": {"big": 2**70, "f": 1.5}}]
    for seq, body in enumerate(bodies):
        line, prev = R.encode({**body, "seq": seq, "prev": prev})
        lines.append(line)
    path.write_bytes(b"".join(lines))
    assert verify(path).ok
    store = AuditStore(path, fsync_interval=None, checkpoint_interval=None)
    store.append({"v": 2, "type": "span", "name": "SELECT u", "attrs": {}})
    store.close()
    result = verify(path)
    assert result.ok, result.problems
    assert [r["v"] for r in read_raw(path)] == [1, 1, 2, 2]
    assert next(r for r in read_raw(path) if r["seq"] == 1)["attrs"]["big"] == 2**70


def test_pid_of_a_forked_writer_is_recorded(tmp_path: Path) -> None:
    """Intents carry the writing process id (who wrote it, when several processes share a chain)."""
    path = tmp_path / "audit.jsonl"
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=_store(path))
    conn.execute("SELECT 1")
    (intent,) = [r for r in read_raw(path) if r["type"] == R.INTENT]
    assert intent["pid"] == os.getpid()


def test_disk_full_refuses_the_statement_in_production(tmp_path: Path) -> None:
    """A store on a full disk (/dev/full behind the path): the statement is refused and the row is not written."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    path, db = tmp_path / "audit.jsonl", tmp_path / "d.db"
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit=_store(path), environment="production")
    conn.execute("INSERT INTO t VALUES (1)")
    path.rename(tmp_path / "full-away")
    path.symlink_to("/dev/full")
    # /dev/full is a device: since decision 0316 the writer refuses it before writing (a device or pipe at the
    # path is never written to); a real full disk says "No space left" (RLIMIT_FSIZE and tmpfs tests)
    with pytest.raises(GovernanceFault, match=r"No space left|no longer a regular file"):
        conn.execute("INSERT INTO t VALUES (2)")
    assert sqlite3.connect(db).execute("SELECT v FROM t").fetchall() == [(1,)]


_FILE_SIZE_LIMITED = textwrap.dedent("""
    import resource, sqlite3, sys
    import governed_db
    from governed_db.errors import GovernanceFault
    db, store, journal = sys.argv[1], sys.argv[2], sys.argv[3] == "journal"
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit={"path": store, "key": "k", "journal": journal}, environment="production")
    conn.execute("INSERT INTO t VALUES (-1)")
    import os
    limit = os.path.getsize(store) + 20_000
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    ran = refused = 0
    for i in range(400):
        try:
            conn.execute("INSERT INTO t VALUES (?)", (i,))
            ran += 1
        except GovernanceFault:
            refused += 1
    print(ran, refused)
""")


@pytest.mark.parametrize("journal", ["journal", "direct"])
def test_a_file_size_limit_refuses_statements_and_loses_none(tmp_path: Path, journal: str) -> None:
    """RLIMIT_FSIZE reached while statements run (the disk-full case of issue 15 without a full disk): once
    the store cannot grow, production statements are refused (no traceback, no SIGXFSZ death); every row
    that reached the database has its record and the store verifies."""
    store, db = tmp_path / "audit.jsonl", tmp_path / "d.db"
    proc = subprocess.run([sys.executable, "-c", _FILE_SIZE_LIMITED, str(db), str(store), journal],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ran, refused = map(int, proc.stdout.split())
    assert ran > 0 and refused > 0 and ran + refused == 400
    assert "Traceback" not in proc.stderr
    result = verify(store, key="k")
    assert result.ok, result.problems
    rows = sqlite3.connect(db).execute("SELECT count(*) FROM t").fetchone()[0]
    inserts = [r for r in read_records(store) if r.get("attrs", {}).get("db.operation.name") == "INSERT"]
    assert rows == ran + 1 <= len(inserts)


_LOOPING_CHILD = textwrap.dedent("""
    import sqlite3, sys
    import governed_db
    db, store, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
    raw = sqlite3.connect(db, isolation_level=None, timeout=30)
    conn = governed_db.wrap(raw, audit={"path": store, "key": "k", "checkpoint_every": 7},
                            capture_parameters=True, environment="production")
    print("ready", flush=True)
    i = start
    while True:
        conn.execute("INSERT INTO t VALUES (?)", (i,))
        i += 1
""")


def rows_in(db: Path) -> set[int]:
    with sqlite3.connect(db, timeout=30) as conn:
        return {v for (v,) in conn.execute("SELECT v FROM t")}


def test_no_statement_runs_without_a_record_under_repeated_sigkill(tmp_path: Path) -> None:
    """Writers killed at arbitrary moments, again and again: every row in the database has its intent in the
    store, and the store verifies with the key."""
    import time

    store, db = tmp_path / "audit.jsonl", tmp_path / "d.db"
    sqlite3.connect(db).execute("CREATE TABLE t (v INTEGER)")
    for k in range(8):
        child = subprocess.Popen([sys.executable, "-c", _LOOPING_CHILD, str(db), str(store), str(k * 1_000_000)],
                                 stdout=subprocess.PIPE)
        assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
        before = len(rows_in(db))
        deadline = time.monotonic() + 60
        while len(rows_in(db)) <= before and time.monotonic() < deadline:  # it is writing now
            time.sleep(0.01)
        time.sleep(0.007 * k)  # not a timing assertion: only where in its work the writer is killed
        child.send_signal(signal.SIGKILL)
        child.wait(60)
    rows = rows_in(db)
    assert len(rows) >= 8
    recorded = {r["attrs"].get("db.query.parameter.0") for r in read_records(store) if R.is_statement(r)}
    missing = [v for v in rows if repr(v) not in recorded]
    assert missing == []
    result = verify(store, key="k")
    assert result.ok, result.problems


# -- deferred outcomes: one write() per statement ------------------------------------------------------------

def _file_records(path: Path) -> list[dict[str, Any]]:
    """The records in the file as it is on disk now (no flush of what this process deferred)."""
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _quiet_flusher(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flusher thread exists but does not wake during the test: deferred records wait for a write."""
    from governed_db.audit import store as store_module

    monkeypatch.setattr(store_module, "DEFER_INTERVAL", 3600.0)


def test_outcome_travels_in_the_same_write_as_the_next_intent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the journal: statement 1's outcome and result record go out in the one write() that carries
    statement 2's intent (with it, they go into the journal together: tests/test_audit_journal.py)."""
    _quiet_flusher(monkeypatch)
    path = tmp_path / "audit.jsonl"
    proc = audit_processor({"path": str(path), "key": KEY, "fsync_interval": 3600.0, "checkpoint_interval": None,
                            "journal": False})
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit=proc, environment="production")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("SELECT v FROM t").fetchall()
    on_disk = [r["type"] for r in _file_records(path) if r["type"] != R.GENESIS]
    assert on_disk == [R.INTENT, R.OUTCOME, R.INTENT]  # statement 2's outcome (its result folded in) waits
    writes: list[bytes] = []
    real_write = os.write

    def counting(fd: int, data: Any) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting)
    conn.execute("INSERT INTO t VALUES (2)")
    monkeypatch.setattr(os, "write", real_write)
    (one,) = writes
    kinds = [json.loads(line)["type"] for line in one.splitlines()]
    names = [json.loads(line).get("name") for line in one.splitlines()]
    assert kinds == [R.OUTCOME, R.INTENT] and names == [None, "INSERT t"]
    # the SELECT's result was fetched while its outcome waited: the rows travel in that outcome
    assert json.loads(one.splitlines()[0])["attrs"]["governed_db.rows_returned"] == 1
    assert verify(path, key=KEY).ok


def test_reader_in_the_same_process_sees_deferred_outcomes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """read_records/verify in the writing process first write what it deferred: the last statement is complete."""
    _quiet_flusher(monkeypatch)
    path = tmp_path / "audit.jsonl"
    proc = audit_processor({"path": str(path), "key": KEY, "fsync_interval": 3600.0, "checkpoint_interval": None})
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, environment="production")
    conn.execute("SELECT 1").fetchall()
    (stmt,) = [r for r in read_records(path) if R.is_statement(r)]
    assert stmt["outcome"] == "ok" and stmt["attrs"]["governed_db.rows_returned"] == 1
    result = verify(path, key=KEY)
    assert result.ok and result.outcome_unknown == 0


def test_idle_connection_gets_its_outcome_written_by_the_flusher(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With no next statement, the flusher thread writes the deferred outcome on its own (bounded wait)."""
    import time

    from governed_db.audit import store as store_module

    monkeypatch.setattr(store_module, "DEFER_INTERVAL", 0.05)
    path = tmp_path / "audit.jsonl"
    proc = audit_processor({"path": str(path), "key": KEY, "fsync_interval": 3600.0, "checkpoint_interval": None})
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, environment="production")
    conn.execute("SELECT 1").fetchall()
    deadline = time.monotonic() + 30
    while R.OUTCOME not in [r["type"] for r in _file_records(path)] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [r["type"] for r in _file_records(path) if r["type"] != R.GENESIS] == [R.INTENT, R.OUTCOME]
    assert _file_records(path)[-1]["attrs"]["governed_db.rows_returned"] == 1


_EXIT_CHILD = textwrap.dedent("""
    import os, signal, sqlite3, sys
    import governed_db
    from governed_db.audit import store as store_module
    store_module.DEFER_INTERVAL = 3600.0   # only the exit (or the kill) decides
    db, store, how = sys.argv[1], sys.argv[2], sys.argv[3]
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    conn = governed_db.wrap(raw, audit={"path": store, "key": "k", "fsync_interval": 3600},
                            identity=governed_db.Identity("dave"), environment="production")
    conn.execute("INSERT INTO t VALUES (1)")
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)   # after execute() returned: the outcome is still deferred
""")


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_deferred_outcome_at_exit_and_under_sigkill(tmp_path: Path, how: str) -> None:
    """A normal exit writes the deferred outcome; SIGKILL right after execute() loses only the outcome: the
    statement that ran is there, "outcome unknown", and the chain verifies."""
    store, db = tmp_path / "audit.jsonl", tmp_path / "d.db"
    proc = subprocess.run([sys.executable, "-c", _EXIT_CHILD, str(db), str(store), how], capture_output=True,
                          timeout=120)
    assert proc.returncode == (-signal.SIGKILL if how == "kill" else 0), proc.stderr
    assert sqlite3.connect(db).execute("SELECT count(*) FROM t").fetchone() == (1,)  # the statement ran
    (stmt,) = [r for r in read_records(store) if R.is_statement(r)]
    assert stmt["attrs"]["db.query.text"] == "INSERT INTO t VALUES (?)"
    assert stmt["outcome"] == ("ok" if how == "exit" else R.UNKNOWN)
    result = verify(store, key="k")
    assert result.ok, result.problems
    assert result.outcome_unknown == (0 if how == "exit" else 1)


def test_forked_child_does_not_write_the_parents_deferred_records(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Deferred records are the writing process's own: a forked child never writes them a second time."""
    _quiet_flusher(monkeypatch)
    path = tmp_path / "audit.jsonl"
    proc = audit_processor({"path": str(path), "key": KEY, "fsync_interval": 3600.0, "checkpoint_interval": None})
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, environment="production")
    conn.execute("SELECT 1").fetchall()
    pid = os.fork()
    if pid == 0:  # the child writes one record of its own and leaves without running atexit handlers
        try:
            proc.store.append({"v": 2, "type": "span", "name": "child", "time": 0, "attrs": {}})
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    outcomes = [r for r in read_raw(path) if r["type"] == R.OUTCOME]
    assert len(outcomes) == 1
    assert verify(path, key=KEY).ok


def test_refusals_and_failures_are_on_disk_before_the_error_reaches_the_caller(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only successful outcomes are deferred: a refusal's and a driver error's outcome are in the file at once."""
    _quiet_flusher(monkeypatch)
    path = tmp_path / "audit.jsonl"
    proc = audit_processor({"path": str(path), "key": KEY, "fsync_interval": 3600.0, "checkpoint_interval": None})
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit=proc, environment="production")
    with pytest.raises(governed_db.GuardrailViolation):
        conn.execute("DROP TABLE t")
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("INSERT INTO missing VALUES (1)")
    outcomes = [r for r in _file_records(path) if r["type"] == R.OUTCOME]
    assert [o["status"] for o in outcomes] == ["ERROR", "ERROR"]
    assert outcomes[0]["attrs"]["governed_db.refused"] is True


def test_sdk_span_outcome_holds_only_what_was_set_after_it_started(tmp_path: Path) -> None:
    """With an SDK provider the outcome is the difference between the ended span and its start: row counts set
    later are recorded; attributes unchanged since the start (a list the SDK keeps as a tuple included) are not."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    path = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit=_store(path), environment="production", tracer_provider=provider)
    conn.execute("INSERT INTO t VALUES (1), (2), (3)")
    outcomes = [r for r in read_raw(path) if r.get("type") == "outcome"]
    assert len(outcomes) == 1
    added = outcomes[0]["attrs"]
    assert added.get("governed_db.rows_affected") == 3
    assert "governed_db.tables" not in added and "db.query.text" not in added, added
    (span,) = [s for s in exporter.get_finished_spans() if s.name != "governed_db.result"]
    assert span.attributes["governed_db.rows_affected"] == 3  # the SDK span carries the same
    (stmt,) = [r for r in read_records(path) if R.is_statement(r)]
    assert stmt["attrs"]["governed_db.tables"] == ["t"] and stmt["attrs"]["governed_db.rows_affected"] == 3
