"""Crash edges: power cuts at every offset, a lost final newline, nested and oversized lines, every damage reported."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import governed_db
from governed_db.audit import AuditStore, audit_processor, read_records, verify
from governed_db.audit import records as R
from governed_db.audit.store import anchor_path, read_raw
from governed_db.cli.audit import audit

KEY = "crash-test-key"
NESTED = b"[" * 200_000 + b"]" * 200_000 + b"\n"
NESTED_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"\n"


def _live(path: Path) -> dict[str, Any]:
    """The settings of the live store (one store, one set of settings per process: later wraps reuse them)."""
    return {"path": str(path), "key": KEY, "checkpoint_every": 1000, "fsync_interval": None,
            "checkpoint_interval": None, "idle_close": None}


def _live_store(path: Path, statements: int = 4) -> bytes:
    """A store still being written (no closing checkpoint): what a power cut can cut into."""
    proc = audit_processor(_live(path))
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, environment="production")
    for i in range(statements):
        conn.execute(f"SELECT {i}")
    return path.read_bytes()


def _cut_points(data: bytes, last_records: int) -> range:
    starts = [i + 1 for i, b in enumerate(data) if b == 0x0A][:-1]
    return range(starts[-last_records], len(data))


def test_power_cut_at_every_offset_of_the_last_records(tmp_path: Path) -> None:
    """Cut anywhere in the last three records: verify passes, every complete record is kept, and a writer
    continues the chain so that verify passes again."""
    src = tmp_path / "src.jsonl"
    data = _live_store(src)
    failures: list[tuple[int, str]] = []
    for cut in _cut_points(data, 3):
        path = tmp_path / f"cut{cut}.jsonl"
        path.write_bytes(data[:cut])
        shutil.copy(anchor_path(src), anchor_path(path))
        complete = data[:cut].count(b"\n") + (1 if data[cut:cut + 1] == b"\n" else 0)
        result = verify(path, key=KEY)
        if not result.ok or result.records != complete:
            failures.append((cut, f"verify: {result.problems} records={result.records} want {complete}"))
            continue
        store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None)
        store.append({"v": 2, "type": "span", "name": "after the power cut", "attrs": {}})
        store.close()
        after = verify(path, key=KEY)
        names = [r.get("name") for r in read_raw(path)]
        if not after.ok or "after the power cut" not in names or after.records < complete + 2:
            failures.append((cut, f"continue: {after.problems}"))
    assert failures == []


def test_complete_last_record_missing_only_its_newline(tmp_path: Path) -> None:
    """A last record that lost only its newline is complete: it verifies, is read, and the next writer
    chains onto it (no recovery record)."""
    path = tmp_path / "a.jsonl"
    data = _live_store(path)
    path.write_bytes(data[:-1])
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    assert result.records == data.count(b"\n")
    assert any("lost its final newline" in w for w in result.warnings)
    last = list(read_raw(path))[-1]
    assert last["seq"] == result.last_seq
    store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None)
    store.append({"v": 2, "type": "span", "name": "next", "attrs": {}})
    store.close()
    kinds = [r["type"] for r in read_raw(path)]
    assert "recovery" not in kinds
    result = verify(path, key=KEY)
    assert result.ok and not result.warnings


@pytest.mark.parametrize("damage", [NESTED, NESTED_OBJECT, b"x" * (R.MAX_LINE + 10) + b"\n"],
                         ids=["nested-array", "nested-object", "oversized"])
def test_damaged_tail_never_crashes_a_command(tmp_path: Path, damage: bytes) -> None:
    """A nested or oversized last line: every audit command answers (exit 0/1), none raises."""
    path = tmp_path / "a.jsonl"
    _live_store(path)
    with open(path, "ab") as f:
        f.write(damage)
    runner = CliRunner()
    for args in (["verify"], ["tail"], ["search"], ["search", "--all"], ["who-touched", "t"], ["stats"],
                 ["export", "--format", "jsonl"], ["export", "--format", "csv"], ["index"]):
        res = runner.invoke(audit, [*args, "--store", str(path)])
        assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.exception)
        assert res.exit_code in (0, 1), (args, res.output[-500:])
    from governed_db.cli import main

    for args in (["report", "--store", str(path), "--format", "md"],
                 ["policy", "replay", "--store", str(path), "--policy", "default"]):
        res = runner.invoke(main, args)
        assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.exception)
        assert res.exit_code in (0, 1, 2), (args, res.output[-500:])
    result = verify(path, key=KEY)
    assert not result.ok and "no recovery record accounts for" in result.problems[0].message


@pytest.mark.parametrize("damage", [NESTED, NESTED_OBJECT, b"x" * (R.MAX_LINE + 10) + b"\n", b"[" * 300_000],
                         ids=["nested-array", "nested-object", "oversized", "nested-fragment"])
def test_damaged_tail_does_not_refuse_production_statements(tmp_path: Path, damage: bytes) -> None:
    """With a nested or oversized tail the next production statement runs; the writer accounts for the bytes."""
    path = tmp_path / "a.jsonl"
    _live_store(path)
    with open(path, "ab") as f:
        f.write(damage)
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit=_live(path),
                            environment="production")
    conn.execute("INSERT INTO t VALUES (1)")
    assert raw.execute("SELECT count(*) FROM t").fetchone() == (1,)
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    assert any("accounted for by the recovery record" in w for w in result.warnings)
    assert any(r.get("attrs", {}).get("db.query.text") == "INSERT INTO t VALUES (?)" for r in read_records(path))


def test_verify_reports_every_damaged_region_and_keeps_checking(tmp_path: Path) -> None:
    """Two damaged regions far apart and an edit after them: all three are reported, the rest is counted."""
    path = tmp_path / "a.jsonl"
    _live_store(path, statements=6)
    lines = path.read_bytes().splitlines(keepends=True)
    total = len(lines)
    lines[2] = NESTED
    lines[5] = b"x" * (R.MAX_LINE + 100) + b"\n"
    lines[9] = lines[9].replace(b'"SELECT', b'"DELETE', 1)
    path.write_bytes(b"".join(lines))
    result = verify(path, key=KEY)
    assert not result.ok
    lines_reported = {p.line for p in result.problems}
    assert {3, 6, 10} <= lines_reported <= {3, 4, 6, 7, 10}, result.problems  # 4 and 7: the records replaced
    assert result.records == total - 2  # every readable record was still checked


def test_every_command_reads_records_after_a_damaged_middle(tmp_path: Path) -> None:
    """search still finds the statements written after a nested line in the middle of the store."""
    path = tmp_path / "a.jsonl"
    _live_store(path, statements=3)
    with open(path, "ab") as f:
        f.write(NESTED)
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=_live(path),
                            environment="production", identity=governed_db.Identity("late"))
    conn.execute("SELECT 42")
    found: list[dict[str, Any]] = [r for r in read_records(path) if R.subject(r) == "late"]
    assert len(found) == 1
    res = CliRunner().invoke(audit, ["search", "--store", str(path), "--identity", "late", "--format", "json"])
    assert res.exit_code == 0 and '"late"' in res.output


def test_parse_line_never_raises() -> None:
    """Whatever the bytes, a line parses to a record or to None."""
    samples = [NESTED, NESTED_OBJECT, b"", b"\xff\xfe", b'{"a":NaN}', b'{"a":1e999}', b'{"v":2,"a":' + b"9" * 5000 + b"}",
               b'{"a":"\\ud800"}', b"[" * 600 + b"]" * 600, b'{"v":1,"x":[' + b"[" * 450 + b"]" * 451 + b"}"]
    for raw in samples:
        rec = R.parse_line(raw)
        assert rec is None or isinstance(rec, dict)


def test_crash_between_closing_checkpoint_and_anchor_is_healed_by_the_next_writer(tmp_path: Path) -> None:
    """A writer killed after its closing checkpoint but before the anchor: the next writer anchors it."""
    import json

    from governed_db.audit.store import anchor_path

    path = tmp_path / "a.jsonl"
    store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None)
    store.append({"v": 2, "type": "span", "name": "one", "attrs": {}})
    before_close = anchor_path(path).read_bytes()
    store.close()
    anchor_path(path).write_bytes(before_close)  # as if the process died right after writing the checkpoint
    assert not verify(path, key=KEY).ok
    store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None)
    store.append({"v": 2, "type": "span", "name": "two", "attrs": {}})
    store.close()
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    assert json.loads(anchor_path(path).read_text())["seq"] == result.last_seq
