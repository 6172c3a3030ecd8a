"""Rotation and retention: one chain across files, external log rotation, sealed summaries of what was removed."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import shutil
import time
from pathlib import Path
from typing import Any

from governed_db.audit import AuditStore, read_records, verify
from governed_db.audit import records as R
from governed_db.audit.segments import store_files
from governed_db.audit.store import read_raw

KEY = "segments-test-key"


def _body(i: int) -> dict[str, Any]:
    return {"v": 2, "type": "span", "name": f"SELECT t{i}", "time": time.time_ns(),
            "attrs": {"governed_db.decision": "allow", "i": i, "pad": "x" * 100}}


def _store(path: Path, **kw: Any) -> AuditStore:
    kw.setdefault("rotate_bytes", 2000)
    return AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None, **kw)


def _names(path: Path) -> list[int]:
    return [r["attrs"]["i"] for r in read_records(path) if r.get("type") == "span"]


def test_rotation_keeps_one_chain_across_files(tmp_path: Path) -> None:
    """Past rotate_bytes the live file is sealed and renamed; the chain verifies across every file."""
    path = tmp_path / "audit.jsonl"
    store = _store(path)
    for i in range(40):
        store.append(_body(i))
    store.close()
    files = store_files(path)
    assert len(files) >= 5 and files[-1] == path
    assert all(f.stat().st_size < 2000 + 1000 for f in files)
    firsts = [json.loads(f.read_bytes().split(b"\n", 1)[0])["type"] for f in files]
    assert firsts[0] == "genesis" and set(firsts[1:]) == {"segment"}
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    assert result.spans == 40 and len(result.files) == len(files)
    assert _names(path) == list(range(40))


def test_a_rotated_file_removed_without_a_summary_is_detected(tmp_path: Path) -> None:
    """Deleting a rotated file (first or middle) breaks verification."""
    path = tmp_path / "audit.jsonl"
    store = _store(path)
    for i in range(40):
        store.append(_body(i))
    store.close()
    files = store_files(path)
    files[2].unlink()
    assert not verify(path, key=KEY).ok
    files[0].unlink()
    result = verify(path, key=KEY)
    assert not result.ok


def test_retention_by_size_leaves_a_sealed_summary(tmp_path: Path) -> None:
    """retain_bytes removes the oldest rotated files, after writing a retention record that describes them."""
    path = tmp_path / "audit.jsonl"
    store = _store(path, retain_bytes=5000)
    for i in range(60):
        store.append(_body(i))
    store.close()
    rotated = [f for f in store_files(path) if f != path]
    assert sum(f.stat().st_size for f in rotated) <= 5000 + 2500
    summaries = [r for r in read_raw(path) if r["type"] == "retention"]
    assert summaries
    removed = [s for r in summaries for s in r["removed"]]
    assert all(s["sha256"] and s["records"] and s["last_seq"] >= s["first_seq"] for s in removed)
    first_kept = next(iter(read_raw(path)))["seq"]
    assert first_kept > 0 and any(r["through_seq"] + 1 == first_kept for r in summaries)
    assert not any((tmp_path / s["file"]).exists() for s in removed)
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    remaining = _names(path)
    assert remaining == list(range(remaining[0], 60))  # the newest records are all there, in order


def test_retention_by_age(tmp_path: Path) -> None:
    """retain_age removes rotated files whose last record is older than that."""
    path = tmp_path / "audit.jsonl"
    store = _store(path, retain_age=0.5)
    for i in range(20):
        store.append(_body(i))
    time.sleep(0.6)
    for i in range(20, 40):
        store.append(_body(i))
    store.close()
    assert any(r["type"] == "retention" for r in read_raw(path))
    assert verify(path, key=KEY).ok
    assert 0 not in _names(path)


def test_forged_retention_summary_is_detected_with_the_key(tmp_path: Path) -> None:
    """Removing files and writing a retention record without the key fails verification with the key."""
    path = tmp_path / "audit.jsonl"
    store = _store(path)
    for i in range(40):
        store.append(_body(i))
    store.close()
    files = store_files(path)
    first_kept = json.loads(files[2].read_bytes().split(b"\n", 1)[0])
    for f in files[:2]:
        f.unlink()
    lines = path.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    forged = {"v": 2, "type": "retention", "time": 1, "through_seq": first_kept["seq"] - 1,
              "through_hash": first_kept["prev"], "removed": [], "seq": last["seq"] + 1, "prev": last["hash"]}
    with open(path, "ab") as f:
        f.write(R.encode(forged)[0])
    assert not verify(path, key=KEY).ok


def test_external_rotation_by_rename(tmp_path: Path) -> None:
    """logrotate renames the live file: the writer notices, never writes into the renamed file, and continues
    the chain in a new file at the path."""
    path = tmp_path / "audit.jsonl"
    store = _store(path, rotate_bytes=None)
    for i in range(5):
        store.append(_body(i))
    moved = tmp_path / "audit.jsonl.1"
    os.rename(path, moved)
    size = moved.stat().st_size
    for i in range(5, 10):
        store.append(_body(i))
    assert moved.stat().st_size == size
    assert json.loads(path.read_bytes().split(b"\n", 1)[0])["type"] == "segment"
    store.close()
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    assert _names(path) == list(range(10))


def test_external_rotation_with_compression(tmp_path: Path) -> None:
    """Rotated files compressed to .gz are read and verified too."""
    path = tmp_path / "audit.jsonl"
    store = _store(path, rotate_bytes=None)
    for i in range(5):
        store.append(_body(i))
    os.rename(path, tmp_path / "audit.jsonl.1")
    store.append(_body(5))
    with open(tmp_path / "audit.jsonl.1", "rb") as src, gzip.open(tmp_path / "audit.jsonl.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (tmp_path / "audit.jsonl.1").unlink()
    store.close()
    assert verify(path, key=KEY).ok
    assert _names(path) == list(range(6))


def test_copy_and_truncate_rotation(tmp_path: Path) -> None:
    """copytruncate empties the live file in place: the chain continues in it from the head the writer knows."""
    path = tmp_path / "audit.jsonl"
    store = _store(path, rotate_bytes=None)
    for i in range(5):
        store.append(_body(i))
    shutil.copy(path, tmp_path / "audit.jsonl.1")
    os.truncate(path, 0)
    for i in range(5, 8):
        store.append(_body(i))
    store.close()
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    assert _names(path) == list(range(8))


def _writer(path: str, start: int, n: int) -> None:
    store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None,
                       rotate_bytes=3000)
    for i in range(start, start + n):
        store.append(_body(i))
    store.close()


def test_processes_rotating_one_chain(tmp_path: Path) -> None:
    """Two processes writing and rotating the same store keep one linear chain with every record."""
    path = tmp_path / "audit.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), k * 1000, 150)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    result = verify(path, key=KEY)
    assert result.ok, result.problems[:5]
    assert sorted(_names(path)) == list(range(150)) + list(range(1000, 1150))
    assert len(store_files(path)) > 3


def test_rotation_while_no_writer_runs_is_continued_by_the_next(tmp_path: Path) -> None:
    """logrotate renames the store between two runs: the next process continues the same chain."""
    path = tmp_path / "audit.jsonl"
    store = _store(path, rotate_bytes=None)
    for i in range(3):
        store.append(_body(i))
    store.close()
    os.rename(path, tmp_path / "audit.jsonl.1")
    store = _store(path, rotate_bytes=None)
    store.append(_body(3))
    store.close()
    assert json.loads(path.read_bytes().split(b"\n", 1)[0])["type"] == "segment"
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    assert _names(path) == [0, 1, 2, 3]


def test_delete_store_removes_rotated_files_and_index(tmp_path: Path) -> None:
    """delete_store leaves nothing behind: a new store at the path starts a new chain."""
    from governed_db.audit import delete_store
    from governed_db.audit.search import search

    path = tmp_path / "audit.jsonl"
    store = _store(path)
    for i in range(30):
        store.append(_body(i))
    store.close()
    list(search(path))
    delete_store(path)
    assert list(tmp_path.iterdir()) == []


def test_stat_interval_notices_an_external_rename_at_the_next_check(tmp_path: Path, monkeypatch: Any) -> None:
    """With stat_interval the path is checked at most that often: records written before the check are chained
    in the renamed file, the first append after it continues the chain in a new file, and it all verifies."""
    from governed_db.audit import store as store_module

    clock = [1000.0]
    monkeypatch.setattr(store_module, "_monotonic", lambda: clock[0])
    path = tmp_path / "audit.jsonl"
    store = _store(path, rotate_bytes=None, stat_interval=60.0)
    for i in range(3):
        store.append(_body(i))
    moved = tmp_path / "audit.jsonl.1"
    os.rename(path, moved)
    store.append(_body(3))  # before the next check: into the renamed file, chained
    assert not path.exists()
    clock[0] += 61.0
    store.append(_body(4))  # the check: a new file at the path continues the chain
    assert json.loads(path.read_bytes().split(b"\n", 1)[0])["type"] == "segment"
    store.close()
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    assert _names(path) == list(range(5))


def test_stat_interval_still_sees_another_writers_rotation_at_once(tmp_path: Path, monkeypatch: Any) -> None:
    """Another writer's rotation appends a sealing checkpoint first: the size changes, so a writer with a long
    stat_interval follows at its very next append and the two keep one chain."""
    from governed_db.audit import store as store_module

    monkeypatch.setattr(store_module, "_monotonic", lambda: 1000.0)  # the timer never fires
    path = tmp_path / "audit.jsonl"
    slow = _store(path, rotate_bytes=None, stat_interval=3600.0)
    rotating = _store(path, rotate_bytes=1500)
    slow.append(_body(0))
    for i in range(1, 12):
        rotating.append(_body(i))
    assert len(store_files(path)) > 1
    slow.append(_body(12))
    rotating.close()
    slow.close()
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    assert _names(path) == list(range(13))


def test_statements_through_the_journal_rotate_the_store(tmp_path: Path) -> None:
    """The default statement path chains intents from the journal, never through append(): rotate_bytes was
    never checked there, so a store written by statements grew for ever (issue 15 re-checked). Now it rotates,
    by the flusher, by flush() and by close(), and the chain verifies with every statement in it."""
    import sqlite3

    import governed_db
    from governed_db.audit import audit_processor

    path = tmp_path / "a.jsonl"
    proc = audit_processor({"path": str(path), "key": "k", "checkpoint_every": 10, "rotate_bytes": 4000})
    assert proc.store.journal
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, environment="production")
    for i in range(200):
        conn.execute(f"SELECT {i}")
    proc.store.flush()
    proc.store.close()
    files = store_files(path)
    assert len(files) >= 3, [f.name for f in files]
    assert all(f.stat().st_size < 4000 + 64 * 1024 for f in files)  # at most one journal batch past the limit
    result = verify(path, key="k")
    assert result.ok, result.problems
    assert result.statements == 200 and result.outcome_unknown == 0
    texts = [r["attrs"].get("db.query.text") for r in read_records(path) if r.get("type") == "span"
             and r.get("attrs", {}).get("db.query.text", "").startswith("SELECT")]
    assert len(texts) == 200
