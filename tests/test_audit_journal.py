"""The write-ahead journal (docs/decisions/0205-audit-journal.md): a statement's intent reaches the OS through a
memory-mapped file with no system call, survives SIGKILL, and is chained into the store — by the writer, or
after a crash by the next writer or a reader — exactly once, and only when its tag verifies."""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import Identity, telemetry
from governed_db.audit import audit_processor, read_records, verify
from governed_db.audit import journal as J
from governed_db.audit import records as R
from governed_db.audit import store as store_module
from governed_db.audit.segments import store_files
from governed_db.audit.store import read_raw

KEY = "journal-test-key"


@pytest.fixture(autouse=True)
def _room_for_journals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores earlier tests in this process left open count against MAX_LIVE: these tests need their journal."""
    monkeypatch.setattr(J, "MAX_LIVE", 10**6)


def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing leaves the journal on its own during the test: no flusher wake-up, no drain by a statement."""
    monkeypatch.setattr(store_module, "DEFER_INTERVAL", 3600.0)
    monkeypatch.setattr(store_module, "_DRAIN_AT", 10**9)


def _proc(path: Path, **extra: Any) -> Any:
    return audit_processor({"path": str(path), "key": KEY, "fsync_interval": 3600.0, "checkpoint_interval": None,
                            **extra})


def _journals(path: Path) -> list[Path]:
    d = J.wal_dir(path)
    return sorted(p for p in d.iterdir() if p.name.endswith(".wal")) if d.is_dir() else []


@pytest.mark.parametrize("native", [False, True], ids=["pure-python", "native"])
def test_a_statement_reaches_the_journal_with_one_lseek_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             native: bool) -> None:
    """From the second statement on, the intent and the previous outcome are in the journal file — visible to any
    other process — before the driver runs the statement, and no write, flock or stat was made for them (one lseek,
    and without the C helper one pwrite instead of the copy into the mapping, the size read after it; the C helper
    makes its lseek itself, so no Python-level call at all is seen then)."""
    _quiet(monkeypatch)
    if native and J._native_frame is None:
        pytest.skip("governed_db._speedups is not built here")
    if not native:
        monkeypatch.setattr(J, "_native_frame", None)
        monkeypatch.setattr(J, "_native_copy", None)
        monkeypatch.setattr(store_module, "_native_intent", None)  # the fused intent frames natively too
        monkeypatch.setattr(store_module, "_native_outcome", None)
        monkeypatch.setattr(telemetry, "_native", [None, None, False])  # and the C span functions
    path = tmp_path / "audit.jsonl"
    seen: list[bytes] = []
    counting = [False]

    def peek() -> int:
        counting[0] = False  # the test's own reading below is not the statement path's
        (wal,) = _journals(path)
        seen.append(wal.read_bytes())  # what another process reading the file sees now
        counting[0] = True
        return 1

    raw = sqlite3.connect(":memory:")
    raw.create_function("peek", 0, peek)
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit=_proc(path), identity=Identity("alice"), environment="production")
    conn.execute("INSERT INTO t VALUES (1)")  # opens the store (and the journal)
    calls: list[str] = []
    me = threading.get_ident()
    saved = []
    for mod, name in ((os, "write"), (os, "pwrite"), (os, "stat"), (os, "fstat"), (os, "lseek"), (fcntl, "flock")):
        real = getattr(mod, name)

        def spy(*a: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            # the statement's own thread (flusher threads of other stores in this process go on meanwhile)
            if counting[0] and threading.get_ident() == me:
                calls.append(_name)
            return _real(*a, **kw)

        saved.append((mod, name, real))
        setattr(mod, name, spy)
    counting[0] = True
    try:
        conn.execute("INSERT INTO t SELECT peek()")
        conn.execute("INSERT INTO t VALUES (3)")
    finally:
        counting[0] = False
        for mod, name, real in saved:
            setattr(mod, name, real)
    # one lseek a statement: the journal's size, so a journal truncated by another process is never touched past
    # its end (docs/decisions/0326-a-live-journal-truncated-or-planted-and-anchor-fields.md); the Python code
    # writes the frame with pwrite, which cannot fault where a copy into the mapping can (decision 0369)
    assert calls == ([] if native else ["pwrite", "lseek", "pwrite", "lseek"])
    (data,) = seen
    assert b"INSERT INTO t SELECT peek ()" in data  # its intent, before it ran
    assert b'"governed_db.rows_affected":1' in data  # the previous statement's outcome, journaled with it
    on_disk = path.read_bytes()
    assert b"peek" not in on_disk
    stmts = [r for r in read_records(path) if R.is_statement(r)]  # a reader here chains the journal in first
    assert [s["outcome"] for s in stmts] == ["ok", "ok", "ok"]
    assert [s["attrs"]["db.query.text"] for s in stmts] == [
        "INSERT INTO t VALUES (?)", "INSERT INTO t SELECT peek ()", "INSERT INTO t VALUES (?)"]
    assert b"peek" in path.read_bytes()
    assert verify(path, key=KEY).ok


_CHILD = textwrap.dedent("""
    import os, signal, sqlite3, sys
    import governed_db
    from governed_db.audit import store as store_module
    store_module.DEFER_INTERVAL = 3600.0   # nothing leaves the journal before the kill
    store_module._DRAIN_AT = 10**9
    db, store, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    audit = {"path": store, "fsync_interval": 3600.0, "checkpoint_interval": None}
    if key:
        audit["key"] = key
    conn = governed_db.wrap(raw, audit=audit, identity=governed_db.Identity("carol"), environment="production")
    flush_at = int(os.environ.get("GDB_TEST_FLUSH_AT", "-1"))
    for i in range(n):
        if i == flush_at:   # the journal is chained into the store and starts over; later frames overwrite its start
            store_module.AuditStore.flush(next(iter(store_module._stores)))
        conn.execute("INSERT INTO t VALUES (?)", (i,))
    if os.environ.get("GDB_TEST_MARK_NOT_CONSUMED"):
        # a drain that wrote its records to the store but died before moving the journal's consumed mark
        from governed_db.audit import journal
        journal.Journal.consumed = lambda self, upto: None
        conn.execute("SELECT 1")
        store_module.AuditStore.flush(next(iter(store_module._stores)))
        conn.execute("INSERT INTO t VALUES (?)", (n,))
    os.kill(os.getpid(), signal.SIGKILL)
""")


def _run_killed(tmp_path: Path, key: str, n: int = 20, **env: str) -> tuple[Path, Path]:
    store, db = tmp_path / "audit.jsonl", tmp_path / "d.db"
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(db), str(store), key, str(n)], capture_output=True,
                          timeout=120, env={**os.environ, **env})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return store, db


def _rows(db: Path) -> list[int]:
    return sorted(v for (v,) in sqlite3.connect(db).execute("SELECT v FROM t"))


def test_sigkill_leaves_the_journal_and_a_reader_with_the_key_chains_it_in(tmp_path: Path) -> None:
    """A writer killed with 20 statements only in its journal: readers without the key show them (marked as not
    chained yet); verify with the key chains them in once, removes the journal, and every row has its record."""
    store, db = _run_killed(tmp_path, KEY)
    assert len(_journals(store)) == 1
    shown = [r for r in read_records(store) if R.is_statement(r)]
    assert len(shown) == 20
    # the first statement opened the store and was written there; the others are still only in the journal
    intents = [r for r in read_raw(store) if r.get("type") == R.INTENT]
    assert [bool(r.get("journal")) for r in intents] == [False] + [True] * 19
    assert [s["outcome"] for s in shown] == ["ok"] * 19 + [R.UNKNOWN]  # the last outcome was never journaled
    assert len(_journals(store)) == 1  # a reader without the key chains nothing
    assert store.read_bytes().count(b'"type":"intent"') == 1
    from governed_db.audit.search import Query, search

    found = list(search(store, Query(identity="carol")))  # the indexed search shows them too
    assert len(found) == 20 and found[-1]["outcome"] == R.UNKNOWN
    unkeyed = verify(store)
    assert unkeyed.ok and any("write-ahead journal" in w for w in unkeyed.warnings)
    result = verify(store, key=KEY)
    assert result.ok, result.problems
    assert result.statements == 20 and result.outcome_unknown == 1
    assert _journals(store) == []
    recorded = [r for r in read_records(store) if R.is_statement(r)]
    assert len(recorded) == len(_rows(db)) == 20
    assert not any(r.get("journal") for r in read_raw(store))
    assert verify(store, key=KEY).statements == 20  # chained once: a second reader adds nothing


def test_without_a_key_any_reader_chains_the_journal_in(tmp_path: Path) -> None:
    store, _db = _run_killed(tmp_path, "", n=5)
    stmts = [r for r in read_records(store) if R.is_statement(r)]
    assert len(stmts) == 5 and not any(r.get("journal") for r in stmts)
    assert _journals(store) == []
    assert store.read_bytes().count(b'"type":"intent"') == 5
    assert verify(store).ok


def test_a_drain_that_wrote_but_died_before_marking_is_not_chained_twice(tmp_path: Path) -> None:
    store, db = _run_killed(tmp_path, KEY, n=6, GDB_TEST_MARK_NOT_CONSUMED="1")
    assert len(_journals(store)) == 1
    result = verify(store, key=KEY)
    assert result.ok, result.problems
    intents = [r for r in read_raw(store) if r.get("type") == R.INTENT]
    spans = [r["span_id"] for r in intents]
    assert len(spans) == len(set(spans)) == 8  # 6 inserts, the SELECT, the last insert: each once
    outcomes = [r for r in read_raw(store) if r.get("type") == R.OUTCOME]
    assert len({r["span_id"] for r in outcomes}) == len(outcomes) == 7
    inserts = [r for r in read_records(store) if R.is_statement(r) and r["attrs"]["db.operation.name"] == "INSERT"]
    assert len(inserts) == len(_rows(db)) == 7


def test_frames_of_an_earlier_round_are_never_chained_again(tmp_path: Path) -> None:
    """After a drain the journal starts over: the 2 frames written since overwrite the start of the 10 older ones,
    whose rest is still in the file; recovery chains the 2 and nothing of the older round."""
    store, db = _run_killed(tmp_path, KEY, n=12, GDB_TEST_FLUSH_AT="10")
    result = verify(store, key=KEY)
    assert result.ok, result.problems
    assert result.statements == len(_rows(db)) == 12
    spans = [r["span_id"] for r in read_raw(store) if r.get("type") == R.INTENT]
    assert len(spans) == len(set(spans)) == 12


_LOOPING = textwrap.dedent("""
    import sqlite3, sys
    import governed_db
    db, store = sys.argv[1], sys.argv[2]
    raw = sqlite3.connect(db, isolation_level=None, timeout=30)
    rotate = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
    conn = governed_db.wrap(raw, audit={"path": store, "key": "k", "checkpoint_every": 50, "rotate_bytes": rotate},
                            environment="production")
    print("ready", flush=True)
    while True:
        conn.execute("INSERT INTO t VALUES (1)")
""")


@pytest.mark.parametrize(("writers", "rotate"), [(1, None), (2, 20_000)], ids=["one-writer", "two-rotating"])
def test_writers_killed_again_and_again_leave_no_row_without_its_record(tmp_path: Path, writers: int,
                                                                       rotate: int | None) -> None:
    """Writers on the journal path (the default) killed at arbitrary moments: every row in the database has its
    intent (at most one intent per kill is for a statement that never ran), and the store verifies — also with
    two processes at once rotating the store as the journal is chained (it never rotated before issue 15's
    re-check)."""
    store, db = tmp_path / "audit.jsonl", tmp_path / "d.db"
    sqlite3.connect(db).execute("CREATE TABLE t (v INTEGER)")

    def count() -> int:
        with sqlite3.connect(db, timeout=30) as c:
            return int(c.execute("SELECT count(*) FROM t").fetchone()[0])

    rounds = 6 if writers == 1 else 3
    kills = rounds * writers
    for k in range(rounds):
        children = [subprocess.Popen([sys.executable, "-c", _LOOPING, str(db), str(store), str(rotate or "")],
                                     stdout=subprocess.PIPE) for _ in range(writers)]
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
        before = count()
        deadline = time.monotonic() + 60
        while count() <= before + 300 * (k % 3) and time.monotonic() < deadline:  # it is writing now
            time.sleep(0.01)
        for child in children:
            child.send_signal(signal.SIGKILL)
            child.wait(60)
    if rotate:
        assert len(store_files(store)) > 2
    result = verify(store, key="k")
    assert result.ok, result.problems
    rows = count()
    inserts = [r for r in read_records(store) if R.is_statement(r) and r["attrs"].get("db.operation.name") == "INSERT"]
    assert rows <= len(inserts) <= rows + kills
    assert sum(1 for r in inserts if r["outcome"] == "ok") <= rows
    assert not any(p.name.endswith(".wal") for p in J.wal_dir(store).iterdir())


def _frames(wal: Path) -> list[tuple[int, int]]:
    """(offset, length) of each frame after the consumed mark."""
    data = wal.read_bytes()
    _, _, consumed, _, _ = J._HEADER.unpack_from(data, 0)
    out, pos = [], consumed
    while pos + J._FRAME.size <= len(data):
        length, crc = J._FRAME.unpack_from(data, pos)
        if length == 0 or zlib.crc32(data[pos + 8:pos + 8 + length]) != crc:
            break
        out.append((pos, length))
        pos += 8 + length
    return out


def test_a_frame_changed_without_the_key_is_never_chained(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Someone with write access but no key edits a journaled statement (and fixes its CRC): the frame fails its
    tag, is not chained, and the journal is kept aside as evidence; the other frames are chained."""
    store, _db = _run_killed(tmp_path, KEY, n=4)
    (wal,) = _journals(store)
    data = bytearray(wal.read_bytes())
    pos, length = _frames(wal)[1]
    payload = bytes(data[pos + 8:pos + 8 + length]).replace(b"carol", b"mallo")
    assert payload != bytes(data[pos + 8:pos + 8 + length])
    data[pos:pos + 8 + length] = struct.pack("<II", length, zlib.crc32(payload)) + payload
    wal.write_bytes(bytes(data))
    result = verify(store, key=KEY)
    assert result.ok, result.problems
    texts = store.read_bytes()
    assert b"mallo" not in texts
    assert result.statements == 3
    assert any("fail their tag" in m for m in caplog.messages)
    assert list(J.wal_dir(store).glob("*.rejected"))


def test_a_journal_planted_without_the_key_is_never_chained(tmp_path: Path) -> None:
    """A whole journal file forged by someone without the key (valid CRCs, made-up tag) adds nothing."""
    store, _db = _run_killed(tmp_path, KEY, n=2)
    (wal,) = _journals(store)
    forged = wal.with_name("999999-deadbeef.wal")
    data = bytearray(wal.read_bytes())
    for pos, length in _frames(wal):
        payload = bytes(data[pos + 8:pos + 8 + length]).replace(b"carol", b"eve__")
        payload = payload[:-16] + b"\0" * 16
        data[pos:pos + 8 + length] = struct.pack("<II", length, zlib.crc32(payload)) + payload
    forged.write_bytes(bytes(data))
    result = verify(store, key=KEY)
    assert result.ok and result.statements == 2
    assert b"eve__" not in store.read_bytes()


def test_a_full_journal_falls_back_to_direct_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _quiet(monkeypatch)
    monkeypatch.setattr(J, "DEFAULT_SIZE", 4096)
    path = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit=_proc(path), capture_parameters=False, environment="production")
    for i in range(40):
        conn.execute("INSERT INTO t VALUES (?)", (i,))
    on_disk = path.read_bytes().count(b'"type":"intent"')
    assert 0 < on_disk < 40  # most went through the store once the journal was full
    stmts = [r for r in read_records(path) if R.is_statement(r)]
    assert len(stmts) == 40 and all(s["outcome"] == "ok" for s in stmts)
    starts = [s["time"] for s in stmts]
    assert starts == sorted(starts)
    assert verify(path, key=KEY).ok


def test_a_forked_child_keeps_its_own_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A child forked after its parent journaled statements writes its own journal, never into the parent's
    mapping; a child that dies without closing is recovered, the parent's journal is untouched meanwhile."""
    _quiet(monkeypatch)
    path = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    conn = governed_db.wrap(raw, audit=_proc(path), identity=Identity("parent"), environment="production")
    conn.execute("SELECT 1").fetchall()
    conn.execute("SELECT 2").fetchall()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            child = governed_db.wrap(sqlite3.connect(":memory:"), audit=_proc(path), identity=Identity("child"),
                                     environment="production")
            for _ in range(3):
                child.execute("SELECT 3").fetchall()
        finally:
            os._exit(0)  # no atexit: its journal is left behind like a crash
    os.waitpid(pid, 0)
    conn.execute("SELECT 4").fetchall()
    assert len(_journals(path)) == 2
    stmts = [r for r in read_records(path) if R.is_statement(r)]
    by = [(s["attrs"]["governed_db.identity.subject"], s["attrs"]["db.query.text"]) for s in stmts]
    assert by.count(("child", "SELECT ?")) == 3
    assert [b for b in by if b[0] == "parent"] == [("parent", "SELECT ?")] * 3
    assert verify(path, key=KEY).ok
    assert len(_journals(path)) == 1  # the child's was chained in and removed; ours stays while we run


def test_threads_sharing_a_store_record_every_statement_once(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    proc = _proc(path)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, identity=Identity(f"u{k}"),
                                    environment="production")
            for i in range(300):
                conn.execute("SELECT ?", (i,)).fetchall()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    raw = list(read_raw(path))
    seq_of = {r["span_id"]: r["seq"] for r in raw if r.get("type") == R.INTENT}
    outcomes = [r for r in raw if r.get("type") == R.OUTCOME]
    assert len(seq_of) == len(outcomes) == 1200
    assert all(o["intent"] == seq_of[o["span_id"]] < o["seq"] for o in outcomes)
    assert verify(path, key=KEY).ok


def test_an_idle_writer_gets_its_journal_chained_by_the_flusher(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "DEFER_INTERVAL", 0.05)
    path = tmp_path / "audit.jsonl"
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=_proc(path), environment="production")
    conn.execute("SELECT 1").fetchall()
    conn.execute("SELECT 2").fetchall()
    deadline = time.monotonic() + 30
    while path.read_bytes().count(b'"type":"outcome"') < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.read_bytes().count(b'"type":"intent"') == 2
    assert path.read_bytes().count(b'"type":"outcome"') == 2


def test_a_journal_left_by_a_writer_that_died_creating_it_is_removed(tmp_path: Path) -> None:
    """Zero-length or all-zero journal files (the writer died between creating and stamping them) hold nothing:
    the next reader removes them; a file that is not a journal at all is left alone."""
    path = tmp_path / "audit.jsonl"
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=_proc(path), environment="production")
    conn.execute("SELECT 1").fetchall()
    d = J.wal_dir(path)
    (d / "4000001-0000aaaa.wal").write_bytes(b"")
    (d / "4000002-0000bbbb.wal").write_bytes(bytes(8192))
    (d / "4000003-0000cccc.wal").write_bytes(b"not a journal" * 10)
    assert verify(path, key=KEY).ok
    names = sorted(p.name for p in _journals(path))
    assert "4000001-0000aaaa.wal" not in names and "4000002-0000bbbb.wal" not in names
    assert "4000003-0000cccc.wal" in names


def test_a_statement_racing_the_journal_being_closed_is_written_directly(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal closed under a statement (idle close in another thread): the intent goes straight to the
    store instead — recorded, never refused, never written into an unmapped buffer."""
    _quiet(monkeypatch)
    path = tmp_path / "audit.jsonl"
    proc = _proc(path)
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, environment="production")
    conn.execute("SELECT 1").fetchall()
    store = proc.store
    journal = store._journal
    assert journal is not None
    store.flush()
    journal.close(remove=True)  # as close() does; the store has not dropped it yet
    conn.execute("SELECT 2").fetchall()
    stmts = [r for r in read_records(path) if R.is_statement(r)]
    assert [s["outcome"] for s in stmts] == ["ok", "ok"]
    assert verify(path, key=KEY).ok


def test_a_store_that_cannot_be_written_stops_statements_at_the_next_chaining(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store turns unwritable while intents wait in the journal: the statement that chains them is refused
    (production), and every later one too — none runs with its intent only in the journal while the store is
    known to fail; once the store is writable again nothing journaled is missing and it verifies."""
    _quiet(monkeypatch)
    monkeypatch.setattr(store_module, "_DRAIN_AT", 5)
    path, db = tmp_path / "audit.jsonl", tmp_path / "d.db"
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit=_proc(path), environment="production")
    conn.execute("INSERT INTO t VALUES (0)")
    path.rename(tmp_path / "moved-away")
    path.mkdir()  # nothing can be appended at the path now
    ran = 0
    with pytest.raises(governed_db.GovernanceFault):
        for i in range(1, 20):
            conn.execute(f"INSERT INTO t VALUES ({i})")
            ran += 1
    assert ran <= 5  # at most what fits before the first chaining
    for _ in range(3):
        with pytest.raises(governed_db.GovernanceFault):
            conn.execute("INSERT INTO t VALUES (100)")
    rows = sqlite3.connect(db).execute("SELECT count(*) FROM t").fetchone()[0]
    assert rows == 1 + ran
    path.rmdir()
    (tmp_path / "moved-away").rename(path)
    conn.execute("INSERT INTO t VALUES (200)")
    inserts = [r for r in read_records(path) if R.is_statement(r) and r["attrs"].get("db.operation.name") == "INSERT"
               and r["outcome"] == "ok"]
    assert len(inserts) == rows + 1
    assert verify(path, key=KEY).ok


def test_a_process_with_many_stores_keeps_a_bounded_number_of_journals(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_LIVE open journals, further stores write their intents directly (one descriptor each, as before);
    each journal costs two descriptors (the mapping's, and the one its size is read from on the statement path:
    decision 0326), and closing a store gives its slot back."""
    monkeypatch.setattr(J, "MAX_LIVE", J._live[0] + 2)

    def ours() -> list[str]:
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(str(tmp_path)):
                found.append(target)
        return found

    procs = [_proc(tmp_path / f"s{i}" / "audit.jsonl") for i in range(4)]
    conns = [governed_db.wrap(sqlite3.connect(":memory:"), audit=p, environment="production") for p in procs]
    for c in conns:
        c.execute("SELECT 1").fetchall()
        c.execute("SELECT 2").fetchall()
    with_journal = [p.store._journal is not None for p in procs]
    assert with_journal == [True, True, False, False]
    held = ours()
    assert len(held) == 4 + 4 and sum(t.endswith(".wal") for t in held) == 4  # four store files, two journals
    procs[0].store.close()
    procs[2].store.close()
    conns[2].execute("SELECT 3").fetchall()  # reopens, and gets the slot the first store gave back
    assert procs[2].store._journal is not None
    for p in procs:
        assert [r["attrs"]["db.query.text"] for r in read_records(p.store.path) if R.is_statement(r)][:2] == [
            "SELECT ?", "SELECT ?"]
        p.store.close()


def test_a_reader_in_the_process_shows_statements_its_journal_could_not_chain(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store cannot be written: the statements that ran with their intents only in this process's journal
    are shown by a reader here (marked ``journal``), and by the indexed search."""
    _quiet(monkeypatch)
    path = tmp_path / "audit.jsonl"
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=_proc(path), identity=Identity("dora"),
                            environment="production")
    conn.execute("SELECT 1").fetchall()
    real = store_module.AuditStore._lock_file

    def unwritable(self: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module.AuditStore, "_lock_file", unwritable)
    conn.execute("SELECT 2").fetchall()
    conn.execute("SELECT 3").fetchall()
    shown = [r for r in read_records(path) if R.is_statement(r)]
    assert len(shown) == 3
    assert [r["outcome"] for r in shown] == ["ok", "ok", R.UNKNOWN]
    raw_intents = [r for r in read_raw(path) if r.get("type") == R.INTENT]
    assert [bool(r.get("journal")) for r in raw_intents] == [False, True, True]
    from governed_db.audit.search import Query, search

    assert len(list(search(path, Query(identity="dora")))) == 3
    monkeypatch.setattr(store_module.AuditStore, "_lock_file", real)
    assert len([r for r in read_records(path) if R.is_statement(r) and not r.get("journal")]) == 3
    assert verify(path, key=KEY).ok


def test_records_of_a_journal_whose_floor_is_past_a_restarted_store_are_still_recognised(tmp_path: Path) -> None:
    """A journal written against a store that was then deleted and began again carries floors beyond the new
    store's end: what it already put in the new store is still found (searched from the start), never chained
    twice; with a floor inside the store the search starts there."""
    path = tmp_path / "audit.jsonl"
    st = store_module.AuditStore(path, fsync_interval=None, checkpoint_interval=None, journal=False)
    span = "00000000000000aa"
    st.append({"v": 2, "type": R.INTENT, "span_id": span, "name": "x", "attrs": {}})
    st.append({"v": 2, "type": R.INTENT, "span_id": "00000000000000bb", "name": "y", "attrs": {}})
    st.close()
    tail = b'"span_id":"%b","time":1,"trace_id":"%032x","type":"intent","v":2}' % (span.encode(), 1)
    rec = J.Recovered((b'{"attrs":{},"kind":"CLIENT","name":"x","parent_span_id":null,"pid":1,', tail), None, 0)
    last = max(r["seq"] for r in read_raw(path))
    for floor, found in ((5000, True), (last, False), (1, True)):
        orphan = J.Orphan(path, -1, J._NO_KEY, records=[rec], floor=floor)
        held = store_module._held(path, orphan, last)
        assert ((R.INTENT, span) in held) is found, floor
        assert J.resolve([rec], held) == ([] if found else [rec])
