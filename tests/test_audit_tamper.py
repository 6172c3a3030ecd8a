"""The tamper set: every attack on a keyed store that `verify` with the key must detect, and what it needs the key for."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import Identity
from governed_db.audit import audit_processor, verify
from governed_db.audit import records as R
from governed_db.audit.store import anchor_path

KEY = "tamper-set-key"


def _store(path: Path, n: int = 9) -> Path:
    """A closed store of real statements: genesis, intents, outcomes, count checkpoints and the closing one."""
    proc = audit_processor({"path": str(path), "key": KEY, "checkpoint_every": 4, "fsync_interval": None,
                            "checkpoint_interval": None})
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER, email TEXT)")
    conn = governed_db.wrap(raw, audit=proc, identity=Identity("mallory-target"), environment="production")
    for i in range(n):
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, f"u{i}@example.com"))
    proc.store.close()
    return path


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _recs(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in _lines(path)]


def _write_recs(path: Path, recs: list[dict[str, Any]], *, rehash: bool = True) -> None:
    """Write records back the way an attacker without the key can: every hash recomputed, no valid tag."""
    out, prev = [], R.GENESIS_PREV
    renumbered = {r["seq"]: i for i, r in enumerate(recs)}
    for seq, rec in enumerate(recs):
        body = {k: v for k, v in rec.items() if k not in ("hash", "tag")}
        if rehash:
            body["seq"], body["prev"] = seq, prev
            if "intent" in body:  # keep outcomes pointing at their (renumbered) intents
                body["intent"] = renumbered.get(body["intent"], body["intent"])
        line, prev = R.encode(body)
        out.append(line)
    path.write_bytes(b"".join(out))


def _checkpoints(path: Path) -> list[int]:
    return [i for i, r in enumerate(_recs(path)) if r["type"] == "checkpoint"]


def _anchor(path: Path) -> dict[str, Any]:
    return dict(json.loads(anchor_path(path).read_text()))


def _set_anchor(path: Path, anchor: dict[str, Any]) -> None:
    anchor_path(path).write_text(json.dumps(anchor, sort_keys=True) + "\n")


def _point_anchor_at(path: Path, index: int) -> None:
    """Re-point the anchor at line ``index`` (what the file now ends with), as someone without the key can."""
    recs = _recs(path)
    offset = sum(len(x) for x in _lines(path)[:index])
    anchor = _anchor(path)
    anchor.update(seq=recs[index]["seq"], hash=recs[index]["hash"], offset=offset)
    _set_anchor(path, anchor)


# -- the attacks ---------------------------------------------------------------------------------------

def edit_field(path: Path) -> None:
    lines = _lines(path)
    lines[3] = lines[3].replace(b"mallory-target", b"innocent-user")
    path.write_bytes(b"".join(lines))


def edit_and_rehash_record(path: Path) -> None:
    recs = _recs(path)
    recs[3]["attrs"]["governed_db.identity.subject"] = "innocent-user"
    lines = _lines(path)
    body = {k: v for k, v in recs[3].items() if k not in ("hash", "tag")}
    lines[3] = R.encode(body)[0]
    path.write_bytes(b"".join(lines))


def edit_and_rehash_chain(path: Path) -> None:
    recs = _recs(path)
    recs[3]["attrs"]["governed_db.identity.subject"] = "innocent-user"
    _write_recs(path, recs)
    _point_anchor_at(path, len(recs) - 1)


def delete_middle_record(path: Path) -> None:
    lines = _lines(path)
    del lines[4]
    path.write_bytes(b"".join(lines))


def delete_and_rehash(path: Path) -> None:
    recs = _recs(path)
    del recs[4]
    _write_recs(path, recs)
    _point_anchor_at(path, len(recs) - 1)


def reorder(path: Path) -> None:
    lines = _lines(path)
    lines[3], lines[5] = lines[5], lines[3]
    path.write_bytes(b"".join(lines))


def insert_forged(path: Path) -> None:
    lines = _lines(path)
    before = json.loads(lines[2])
    forged = {"v": 2, "type": "span", "name": "forged", "attrs": {}, "seq": before["seq"] + 1, "prev": before["hash"]}
    lines.insert(3, R.encode(forged)[0])
    path.write_bytes(b"".join(lines))


def drop_checkpoints_and_rehash(path: Path) -> None:
    _write_recs(path, [r for r in _recs(path) if r["type"] != "checkpoint"])
    anchor_path(path).unlink()


def drop_checkpoints_rehash_keep_anchor(path: Path) -> None:
    recs = [r for r in _recs(path) if r["type"] != "checkpoint"]
    _write_recs(path, recs)
    _point_anchor_at(path, len(recs) - 1)


def truncate_to_earlier_checkpoint(path: Path) -> None:
    lines = _lines(path)
    path.write_bytes(b"".join(lines[: _checkpoints(path)[0] + 1]))


def truncate_and_repoint_anchor(path: Path) -> None:
    first = _checkpoints(path)[0]
    truncate_to_earlier_checkpoint(path)
    _point_anchor_at(path, first)


def truncate_to_last_count_checkpoint_and_repoint(path: Path) -> None:
    last_count = _checkpoints(path)[-2]
    path.write_bytes(b"".join(_lines(path)[: last_count + 1]))
    _point_anchor_at(path, last_count)


def replay_older_anchor(path: Path, saved: dict[str, Any]) -> None:
    _set_anchor(path, saved)


def forge_tail(path: Path) -> None:
    recs = _recs(path)
    last = recs[-1]
    forged = {"v": 2, "type": "span", "name": "forged tail", "attrs": {"governed_db.decision": "allow"},
              "seq": last["seq"] + 1, "prev": last["hash"]}
    with open(path, "ab") as f:
        f.write(R.encode(forged)[0])


def forge_tail_with_copied_tag(path: Path) -> None:
    recs = _recs(path)
    last = recs[-1]
    forged = {"v": 2, "type": "span", "name": "forged tail", "attrs": {}, "seq": last["seq"] + 1,
              "prev": last["hash"]}
    line = R.encode(forged)[0]
    line = line[:-2] + b',"tag":"' + last["tag"].encode() + b'"}\n'
    with open(path, "ab") as f:
        f.write(line)


def replace_tail_after_checkpoint(path: Path) -> None:
    recs = _recs(path)
    cut = _checkpoints(path)[-2] + 1
    forged = [dict(r) for r in recs[cut:]]
    for r in forged:
        if r["type"] == "intent":
            r["attrs"]["governed_db.identity.subject"] = "innocent-user"
    out, prev = list(_lines(path)[:cut]), recs[cut - 1]["hash"]
    for r in forged:
        body = {k: v for k, v in r.items() if k not in ("hash", "tag")}
        body["prev"] = prev
        line, prev = R.encode(body)
        out.append(line)
    path.write_bytes(b"".join(out))
    _point_anchor_at(path, len(recs) - 1)


def duplicate_keys(path: Path) -> None:
    # a reader taking the first "name" sees something else than the hash covers (orjson/json take the last)
    lines = _lines(path)
    lines[3] = lines[3].replace(b'{"attrs"', b'{"name":"INSERT innocent","attrs"', 1)
    path.write_bytes(b"".join(lines))


def respaced_json(path: Path) -> None:
    lines = _lines(path)
    lines[3] = json.dumps(json.loads(lines[3])).encode() + b"\n"
    path.write_bytes(b"".join(lines))


def downgrade_to_format_one(path: Path) -> None:
    recs = [{**r, "v": 1} for r in _recs(path)]
    _write_recs(path, recs)
    anchor_path(path).unlink()


def delete_anchor(path: Path) -> None:
    anchor_path(path).unlink()


def anchor_of_another_store(path: Path) -> None:
    other = _store(path.with_name("other.jsonl"), n=2)
    shutil.copy(anchor_path(other), anchor_path(path))


def splice_another_store(path: Path) -> None:
    other = _store(path.with_name("other.jsonl"), n=2)
    lines = _lines(path)
    lines[4:5] = _lines(other)[1:3]
    path.write_bytes(b"".join(lines))


def drop_closing_checkpoint(path: Path) -> None:
    path.write_bytes(b"".join(_lines(path)[:-1]))


def strip_tags(path: Path) -> None:
    lines = [json.loads(x) for x in _lines(path)]
    out = []
    for rec in lines:
        rec.pop("tag", None)
        body = {k: v for k, v in rec.items() if k != "hash"}
        out.append(R.encode(body)[0])
    path.write_bytes(b"".join(out))


ATTACKS: list[tuple[str, Callable[[Path], None]]] = [
    ("edit-field", edit_field),
    ("edit-and-rehash-record", edit_and_rehash_record),
    ("edit-and-rehash-chain", edit_and_rehash_chain),
    ("delete-middle-record", delete_middle_record),
    ("delete-and-rehash", delete_and_rehash),
    ("reorder", reorder),
    ("insert-forged", insert_forged),
    ("drop-checkpoints-and-rehash", drop_checkpoints_and_rehash),
    ("drop-checkpoints-rehash-repoint-anchor", drop_checkpoints_rehash_keep_anchor),
    ("truncate-to-earlier-checkpoint", truncate_to_earlier_checkpoint),
    ("truncate-and-repoint-anchor", truncate_and_repoint_anchor),
    ("truncate-to-last-count-checkpoint-and-repoint", truncate_to_last_count_checkpoint_and_repoint),
    ("forge-tail", forge_tail),
    ("forge-tail-with-copied-tag", forge_tail_with_copied_tag),
    ("replace-tail-after-checkpoint", replace_tail_after_checkpoint),
    ("duplicate-keys", duplicate_keys),
    ("respaced-json", respaced_json),
    ("downgrade-to-format-1", downgrade_to_format_one),
    ("strip-tags", strip_tags),
    ("delete-anchor", delete_anchor),
    ("anchor-of-another-store", anchor_of_another_store),
    ("splice-another-store", splice_another_store),
    ("drop-closing-checkpoint", drop_closing_checkpoint),
]


def test_untouched_store_verifies(tmp_path: Path) -> None:
    """The store the attacks start from verifies, every record's MAC checked."""
    path = _store(tmp_path / "a.jsonl")
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    assert result.macs_checked == result.records == len(_lines(path))
    assert result.checkpoints >= 3


@pytest.mark.parametrize(("name", "attack"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_detected_with_the_key(tmp_path: Path, name: str, attack: Callable[[Path], None]) -> None:
    """Each attack makes verify with the key fail."""
    path = _store(tmp_path / "a.jsonl")
    attack(path)
    result = verify(path, key=KEY)
    assert not result.ok, name
    assert result.problems and result.first_bad is not None


def _store_sealed_by_time(path: Path) -> Path:
    """A store written the default way (journal, flusher thread) whose checkpoints are all time checkpoints."""
    import time

    proc = audit_processor({"path": str(path), "key": KEY, "checkpoint_every": 10**6, "checkpoint_interval": 0.2,
                            "idle_close": None})
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER, email TEXT)")
    conn = governed_db.wrap(raw, audit=proc, identity=Identity("mallory-target"), environment="production")
    for i in range(9):
        conn.execute("INSERT INTO t VALUES (?, ?)", (i, f"u{i}@example.com"))
        if i % 3 == 2:
            deadline = time.monotonic() + 10
            sealed = len(_checkpoints(path)) if path.exists() else 0
            while time.monotonic() < deadline and len(_checkpoints(path)) <= sealed:
                time.sleep(0.05)  # the flusher seals the quiet chain
    proc.store.close()
    return path


def test_every_attack_on_a_store_sealed_by_time_is_detected(tmp_path: Path) -> None:
    """The same attacks on a store whose checkpoints come from checkpoint_interval (written through the journal
    and sealed by the flusher thread, anchors published off the statement path) rather than by count."""
    src = _store_sealed_by_time(tmp_path / "src.jsonl")
    reasons = [r.get("reason") for r in _recs(src) if r["type"] == "checkpoint"]
    assert reasons.count("time") >= 3, reasons
    assert verify(src, key=KEY).ok
    missed = []
    for name, attack in ATTACKS:
        path = tmp_path / name / "a.jsonl"
        path.parent.mkdir()
        shutil.copy(src, path)
        shutil.copy(anchor_path(src), anchor_path(path))
        attack(path)
        if verify(path, key=KEY).ok:
            missed.append(name)
    assert missed == []


@pytest.mark.parametrize("back", [1, 2])
def test_replayed_older_anchor_is_detected(tmp_path: Path, back: int) -> None:
    """An older genuine anchor put back over the current one fails verification (file left complete)."""
    path = tmp_path / "a.jsonl"
    proc = audit_processor({"path": str(path), "key": KEY, "checkpoint_every": 4, "fsync_interval": None,
                            "checkpoint_interval": None})
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, environment="production")
    saved: list[dict[str, Any]] = []
    for i in range(12):
        conn.execute(f"SELECT {i}")
        saved.append(_anchor(path))
    proc.store.close()
    distinct = []
    for a in saved:
        if not distinct or distinct[-1]["seq"] != a["seq"]:
            distinct.append(a)
    replay_older_anchor(path, distinct[-back])
    result = verify(path, key=KEY)
    assert not result.ok
    assert any("replayed" in p.message for p in result.problems), result.problems


def test_every_flipped_byte_is_detected(tmp_path: Path) -> None:
    """Flipping any single bit anywhere in a keyed store (every offset) fails verification with the key."""
    path = _store(tmp_path / "a.jsonl", n=2)
    original = path.read_bytes()
    missed = []
    for pos in range(len(original)):
        raw = bytearray(original)
        raw[pos] ^= 0x01 if pos % 2 else 0x20
        path.write_bytes(bytes(raw))
        if verify(path, key=KEY).ok:
            missed.append(pos)
    assert missed == []


def test_every_flipped_anchor_byte_is_detected(tmp_path: Path) -> None:
    """Flipping any byte of the anchor file fails verification with the key."""
    path = _store(tmp_path / "a.jsonl", n=2)
    target = anchor_path(path)
    original = target.read_bytes()
    missed = []
    for pos in range(len(original) - 1):  # the final newline is not part of the anchor's content
        raw = bytearray(original)
        raw[pos] ^= 0x01
        target.write_bytes(bytes(raw))
        if verify(path, key=KEY).ok:
            missed.append(pos)
    assert missed == []


WITHOUT_KEY_DETECTED = {
    "edit-field", "edit-and-rehash-record", "delete-middle-record", "reorder", "insert-forged",
    "truncate-to-earlier-checkpoint", "duplicate-keys", "respaced-json", "delete-anchor", "anchor-of-another-store",
    "splice-another-store", "drop-closing-checkpoint",
    # it keeps checkpoints while deleting the anchor (a careful forger would drop both)
    "downgrade-to-format-1",
}


@pytest.mark.parametrize(("name", "attack"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_what_verify_without_the_key_detects(tmp_path: Path, name: str, attack: Callable[[Path], None]) -> None:
    """Without the key the chain still catches local damage; rewrites by someone who knows the format need the key
    (the table in docs/audit.md lists the same split)."""
    path = _store(tmp_path / "a.jsonl")
    attack(path)
    assert verify(path).ok is (name not in WITHOUT_KEY_DETECTED)
