"""Red team of the write-ahead journal (docs/decisions/0205-audit-journal.md, 0206-0208): crashes at awkward
moments, rotation and long gaps before recovery, damaged and planted journal files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Any

import pytest

from governed_db.audit import journal as J
from governed_db.audit import read_records, verify
from governed_db.audit import records as R
from governed_db.audit.store import AuditStore, read_raw

KEY = "journal-redteam-key"


@pytest.fixture(autouse=True)
def _room_for_journals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores earlier tests in this process left open count against MAX_LIVE: these tests need their journal."""
    monkeypatch.setattr(J, "MAX_LIVE", 10**6)

_DRAIN_THEN_DIE = textwrap.dedent("""
    import os, signal, sqlite3, sys
    import governed_db
    from governed_db.audit import journal, store as store_module
    store_module.DEFER_INTERVAL = 3600.0
    store_module._DRAIN_AT = 10**9
    db, store, key = sys.argv[1], sys.argv[2], sys.argv[3]
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    conn = governed_db.wrap(raw, audit={"path": store, "key": key, "fsync_interval": 3600.0,
                                        "checkpoint_interval": None},
                            identity=governed_db.Identity("carol"), environment="production")
    for i in range(6):
        conn.execute("INSERT INTO t VALUES (?)", (i,))
    if sys.argv[4] == "drain":
        # a drain that wrote its records to the store but died before moving the journal's consumed mark
        journal.Journal.consumed = lambda self, upto: None
        store_module.AuditStore.flush(next(iter(store_module._stores)))
    os.kill(os.getpid(), signal.SIGKILL)
""")


def _drain_then_die(tmp_path: Path, store: Path, how: str = "drain") -> None:
    proc = subprocess.run([sys.executable, "-c", _DRAIN_THEN_DIE, str(tmp_path / "d.db"), str(store), KEY, how],
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _other_writer(store: Path, **kw: Any) -> AuditStore:
    return AuditStore(store, key=KEY, fsync_interval=None, checkpoint_interval=None, journal=False,
                      idle_close=None, **kw)


def _filler(i: int) -> dict[str, Any]:
    return {"v": R.FORMAT_VERSION, "type": "event", "time": 1, "attrs": {"i": i, "pad": "x" * 200}}


def _assert_each_statement_once(store: Path) -> None:
    result = verify(store, key=KEY)
    assert result.ok, result.problems
    raw = [r for r in read_raw(store) if r.get("type") in (R.INTENT, R.OUTCOME)]
    pairs = [(r["type"], r["span_id"]) for r in raw]
    assert len(pairs) == len(set(pairs)), "a journaled record was chained twice"
    assert sum(1 for t, _ in pairs if t == R.INTENT) == 6


def test_a_drain_that_died_before_marking_is_not_chained_twice_after_rotation(tmp_path: Path) -> None:
    """A writer that had the store open when the drainer died rotates the store before it recovers: the records
    the drain wrote are in the rotated file now, and must still not be chained a second time."""
    store = tmp_path / "audit.jsonl"
    other = _other_writer(store, rotate_bytes=20_000)
    other.append(_filler(-1))  # opened (and recovered) before the drainer dies
    _drain_then_die(tmp_path, store)
    for i in range(60):  # rotates; the next file is opened and its (short) tail searched for the journal's records
        other.append(_filler(i))
    other.close()
    _assert_each_statement_once(store)


def test_a_drain_that_died_before_marking_is_not_chained_twice_after_a_long_gap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recovery may come long after the crash: records appended meanwhile push the drained ones out of any fixed
    window at the store's end (shrunk here to keep the test small); they must still be recognised."""
    monkeypatch.setattr(J, "DEFAULT_SIZE", 4096)  # small journals: any window sized by them would be passed
    store = tmp_path / "audit.jsonl"
    other = _other_writer(store)
    other.append(_filler(-1))
    _drain_then_die(tmp_path, store)
    for i in range(100):
        other.append(_filler(i))
    other.close()  # the reader below recovers the dead process's journal
    _assert_each_statement_once(store)


_RECOVER_THEN_DIE = textwrap.dedent("""
    import os, signal, sys
    from governed_db.audit import journal, store as store_module
    real = journal.Orphan.release
    def release(self, *, remove):
        if remove:  # chained into the store, about to be removed: the recovering process dies here
            os.kill(os.getpid(), signal.SIGKILL)
        real(self, remove=False)
    journal.Orphan.release = release
    store_module.recover_journals(store_module.Path(sys.argv[1]), key=sys.argv[2])
""")


def test_a_recovery_that_died_before_removing_the_journal_is_not_chained_twice(tmp_path: Path) -> None:
    """A reader chaining a dead process's journal in is itself killed before it removes the file; the next
    recovery comes after the store rotated and must not chain the records again."""
    store = tmp_path / "audit.jsonl"
    other = _other_writer(store, rotate_bytes=20_000)
    other.append(_filler(-1))
    _drain_then_die(tmp_path, store, how="die")
    proc = subprocess.run([sys.executable, "-c", _RECOVER_THEN_DIE, str(store), KEY], capture_output=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    for i in range(60):
        other.append(_filler(i))
    other.close()
    _assert_each_statement_once(store)


_DIE_CREATING = textwrap.dedent("""
    import os, signal, sys
    from governed_db.audit import store as store_module
    real = os.posix_fallocate
    def fallocate(fd, off, size):
        real(fd, off, size)
        os.kill(os.getpid(), signal.SIGKILL)  # killed while making its journal: 4 MiB reserved, no header yet
    os.posix_fallocate = fallocate
    s = store_module.AuditStore(sys.argv[1], fsync_interval=3600.0, checkpoint_interval=None)
    s.append({"v": 2, "type": "event", "time": 1})
""")


def test_a_process_killed_while_creating_its_journal_leaves_nothing_behind(tmp_path: Path) -> None:
    """A writer killed between reserving its journal and writing its header: the next writer removes the
    half-made file (before, a headerless 4 MiB `.wal` was taken for "not a journal" and kept forever)."""
    store = tmp_path / "audit.jsonl"
    proc = subprocess.run([sys.executable, "-c", _DIE_CREATING, str(store)], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert len(list(J.wal_dir(store).iterdir())) == 1
    other = AuditStore(store, key=None, fsync_interval=3600.0, checkpoint_interval=None)
    other.append(_filler(0))
    mine = other._journal
    assert mine is not None
    assert [p.name for p in J.wal_dir(store).iterdir()] == [mine.path.name]
    other.close()
    assert list(J.wal_dir(store).iterdir()) == []


def test_a_recovery_between_a_journals_open_and_its_lock_never_strands_the_writer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recovery runs in another process just after a writer created its journal file and before it locked it:
    the writer must not end up journaling into a file that recovery removed (its frames would be lost to a
    crash and invisible to readers) — it journals into a file at its path, or writes directly."""
    store = tmp_path / "audit.jsonl"
    real_flock = J.fcntl.flock
    raced = []

    def flock(fd: int, op: int) -> None:
        if not raced and op == (J.fcntl.LOCK_EX | J.fcntl.LOCK_NB):
            raced.append(1)
            for orphan in J.orphans(store, None):  # what a recovering process does at that moment
                orphan.release(remove=True)
        real_flock(fd, op)

    monkeypatch.setattr(J.fcntl, "flock", flock)
    s = AuditStore(store, key=None, fsync_interval=3600.0, checkpoint_interval=None)
    s.append(_filler(0))
    monkeypatch.setattr(J.fcntl, "flock", real_flock)
    assert raced
    j = s._journal
    if j is not None:
        assert j.path.exists() and os.fstat(j.fd).st_ino == j.path.stat().st_ino
    s.close()


def test_a_disk_too_full_for_a_journal_records_directly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No room for a journal: statements are written straight to the store and no file is left behind."""
    store = tmp_path / "audit.jsonl"

    def full(fd: int, off: int, size: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    s = AuditStore(store, key=KEY, fsync_interval=3600.0, checkpoint_interval=None)
    s.append(_filler(0))
    assert s._journal is None
    s.close()
    assert [p for p in J.wal_dir(store).iterdir()] == []
    assert verify(store, key=KEY).ok


def _plant(store: Path, name: str, payloads: list[bytes], label: bytes = J._NO_KEY) -> Path:
    """A journal file written by hand: valid header and CRCs, whatever the payloads hold."""
    d = J.wal_dir(store)
    d.mkdir(exist_ok=True)
    header = J._HEADER.pack(J.MAGIC, 1, J.HEADER_SIZE, label, 1).ljust(J.HEADER_SIZE, b"\0")
    frames = b"".join(J._FRAME.pack(len(p), zlib.crc32(p)) + p for p in payloads)
    f = d / name
    f.write_bytes(header + frames + bytes(4096))
    return f


def _garbage_frames() -> list[bytes]:
    return [J._START.pack(1, 0, -1) + J._ITEM.pack(J.PAIR, 5, 5, -1, -1) + b'{"a":' + b"xx}}}",
            J._START.pack(1, 1, -1) + J._ITEM.pack(J.GENERIC, 9, 0, -1, -1) + b"not json!",
            J._START.pack(1, 2, -1) + J._ITEM.pack(J.OUTCOME, 5, 5, 7, -1) + b'{"b":' + b'"x"}}',
            J._START.pack(1, 3, -1) + J._ITEM.pack(J.PAIR, 10**6, 10**6, -1, -1) + b"{}"]


@pytest.mark.parametrize("key", [None, KEY])
def test_garbled_frames_with_valid_crcs_break_no_reader_and_no_recovery(tmp_path: Path, key: str | None) -> None:
    """A journal whose frames pass their CRC but hold no record (garbled, or crafted by someone with write access):
    readers with and without the key show the store without a traceback, the garbage is never chained, and the
    honest journal of a dead process next to it is still chained in (before, every reader raised ValueError and
    every writer's recovery stopped at the garbage)."""
    store = tmp_path / "audit.jsonl"
    other = AuditStore(store, key=key, fsync_interval=None, checkpoint_interval=None, journal=False)
    other.append(_filler(-1))
    other.close()
    if key is not None:
        _drain_then_die(tmp_path, store, how="die")  # an honest journal, sorted after the planted one
    _plant(store, "1-deadbeef.wal", _garbage_frames())
    records = list(read_records(store))  # a reader without the key
    assert all(r.get("type") != "a" for r in records)
    result = verify(store, key=key)
    assert result.ok, result.problems
    if key is not None:
        assert result.statements == 6
    assert b"xx}}}" not in store.read_bytes() and b"not json" not in store.read_bytes()


def test_statements_journaled_while_the_store_closes_keep_their_outcomes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flusher closes an idle store (idle_close) while a statement runs: a statement journaled after close()'s
    flush must still be written with its outcome (before, its intent was left to recovery as if the process had
    died and its outcome was lost: a statement that succeeded read as "outcome unknown")."""
    import sqlite3

    import governed_db
    from governed_db.audit import store as store_module

    monkeypatch.setattr(store_module, "DEFER_INTERVAL", 3600.0)
    path = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit={"path": str(path), "key": KEY, "fsync_interval": 3600.0,
                                        "checkpoint_interval": None},
                            identity=governed_db.Identity("alice"), environment="production")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("INSERT INTO t VALUES (2)")
    (store,) = [s for s in list(store_module._stores) if s.path == path.resolve()]
    real_sync = store_module.AuditStore.sync
    ran: list[int] = []

    def sync(self: AuditStore) -> None:
        real_sync(self)
        if self is store and not ran:  # close() has flushed; a statement on another thread runs now
            ran.append(1)
            conn.execute("INSERT INTO t VALUES (3)")

    monkeypatch.setattr(store_module.AuditStore, "sync", sync)
    store.close()
    assert ran
    assert not any(p.name.endswith(".wal") for p in J.wal_dir(path).iterdir())
    conn.execute("INSERT INTO t VALUES (4)")
    store.close()
    inserts = [r for r in read_records(path) if R.is_statement(r)]
    assert len(inserts) == 4
    assert [r["outcome"] for r in inserts] == ["ok"] * 4
    assert verify(path, key=KEY).ok


def test_a_reader_without_the_key_never_chains_an_unkeyed_journal_into_a_keyed_store(tmp_path: Path) -> None:
    """Someone with write access plants an unkeyed journal (no tag to forge) next to a keyed store: a keyed writer
    refuses it, and so must a reader without the key (before, `read_records` chained it in untagged, so an
    auditor's mere read put forged statements into the chain and broke `verify --key`)."""
    store = tmp_path / "audit.jsonl"
    other = AuditStore(store, key=KEY, fsync_interval=None, checkpoint_interval=None, journal=False)
    other.append(_filler(-1))
    other.close()
    before = store.read_bytes()
    forged = b'{"attrs":{"forged":true},"time":1,"type":"event","v":2}'
    _plant(store, "1-0badf00d.wal", [J._START.pack(1, 0, -1) + J._ITEM.pack(J.GENERIC, len(forged), 0, -1, -1) + forged])
    shown = [r for r in read_records(store) if r.get("attrs", {}).get("forged")]
    assert [r.get("journal") for r in shown] == ["1-0badf00d.wal"]  # shown as waiting, not in the chain
    assert store.read_bytes() == before
    result = verify(store, key=KEY)
    assert result.ok, result.problems
    assert b"forged" not in store.read_bytes()


def test_a_drain_cut_short_by_a_full_disk_is_not_chained_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills in the middle of a drain's write(): part of the batch — whole records among it — reached the
    file before ENOSPC. When there is room again the batch is written again: the records already in the file must
    not appear twice (before, the retry chained onto the last whole record and wrote them all again)."""
    import sqlite3

    import governed_db
    from governed_db.audit import store as store_module

    monkeypatch.setattr(store_module, "DEFER_INTERVAL", 3600.0)
    monkeypatch.setattr(store_module, "_DRAIN_AT", 10**9)
    path = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit={"path": str(path), "key": KEY, "fsync_interval": 3600.0,
                                        "checkpoint_interval": None},
                            identity=governed_db.Identity("alice"), environment="production")
    for i in range(10):
        conn.execute("INSERT INTO t VALUES (?)", (i,))
    (store,) = [s for s in list(store_module._stores) if s.path == path.resolve()]
    real_write = os.write
    calls: list[int] = []

    def full(fd: int, data: Any) -> int:
        if fd == store._fd:
            calls.append(len(data))
            if len(calls) == 1:
                return real_write(fd, bytes(data)[: len(data) * 2 // 3])  # the disk fills part-way
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError):
        store.flush()
    monkeypatch.setattr(os, "write", real_write)
    store.close()
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    raw_recs = [r for r in read_raw(path) if r.get("type") in (R.INTENT, R.OUTCOME)]
    pairs = [(r["type"], r["span_id"]) for r in raw_recs]
    assert len(pairs) == len(set(pairs)), "records of the interrupted batch were chained twice"
    statements = [r for r in read_records(path) if R.is_statement(r)]
    assert len(statements) == 10 and all(r["outcome"] == "ok" for r in statements)


def test_a_link_planted_in_the_journal_directory_is_not_followed(tmp_path: Path) -> None:
    """A symlink in store A's journal directory pointing at a dead process's journal of store B (same key): A must
    not chain B's statements (before, they went into both stores)."""
    a, b = tmp_path / "a" / "audit.jsonl", tmp_path / "b" / "audit.jsonl"
    for s in (a, b):
        s.parent.mkdir()
        w = _other_writer(s)
        w.append(_filler(-1))
        w.close()
    _drain_then_die(tmp_path, b, how="die")
    (journal,) = [p for p in J.wal_dir(b).iterdir() if p.name.endswith(".wal")]
    J.wal_dir(a).mkdir()
    (J.wal_dir(a) / "5-aaaaaaaa.wal").symlink_to(journal)
    result = verify(a, key=KEY)
    assert result.ok, result.problems
    assert result.statements == 0
    _assert_each_statement_once(b)


def test_an_oversized_journal_is_left_unread(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A journal file far larger than any writer makes (planted or grown by damage) is reported and left in
    place, never read into memory whole — before, every valid frame in it was loaded and chained."""
    store = tmp_path / "audit.jsonl"
    w = AuditStore(store, fsync_interval=None, checkpoint_interval=None, journal=False)
    w.append(_filler(-1))
    w.close()
    rec = b'{"attrs":{"big":true},"time":1,"type":"event","v":2}'
    f = _plant(store, "1-0badf00d.wal", [J._START.pack(1, 0, -1) + J._ITEM.pack(J.GENERIC, len(rec), 0, -1, -1) + rec])
    os.truncate(f, 16 * J.DEFAULT_SIZE + 1)  # sparse: no disk used
    assert not any(r.get("attrs", {}).get("big") for r in read_records(store))
    assert b"big" not in store.read_bytes()
    assert f.exists()
    assert any("larger than any journal" in m for m in caplog.messages)


def test_a_journal_copied_and_planted_again_later_is_not_chained_twice(tmp_path: Path) -> None:
    """Someone without the key copies a dead process's journal before it is recovered and plants the copy under
    another name once the store has moved on (rotated): its frames carry valid tags, but their records are in
    the store already and must not be chained a second time (a replay)."""
    store = tmp_path / "audit.jsonl"
    other = _other_writer(store, rotate_bytes=20_000)
    other.append(_filler(-1))
    _drain_then_die(tmp_path, store, how="die")
    (journal,) = [p for p in J.wal_dir(store).iterdir() if p.name.endswith(".wal")]
    copy = journal.read_bytes()
    assert verify(store, key=KEY).ok  # recovered by the auditor, the original removed
    for i in range(60):
        other.append(_filler(i))
    (J.wal_dir(store) / "77-cafebabe.wal").write_bytes(copy)
    other.close()
    _assert_each_statement_once(store)
