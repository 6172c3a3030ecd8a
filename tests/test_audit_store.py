"""The audit store's chain: appends, checkpoints, and every kind of tampering verify must catch."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governed_db.audit import AuditStore, verify
from governed_db.audit import records as R
from governed_db.audit.store import anchor_path, read_raw, read_records
from governed_db.errors import ConfigurationError

KEY = "test-key-not-secret"


def _make(path: Path, n: int = 20, *, key: str | None = KEY, every: int = 5) -> Path:
    store = AuditStore(path, key=key, checkpoint_every=every, fsync_interval=None)
    for i in range(n):
        store.append({"v": 2, "type": "span", "name": f"SELECT t{i}", "attrs": {"i": i}})
    store.close()
    return path


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def _edit(path: Path) -> None:
    lines = _lines(path)
    rec = json.loads(lines[3])
    rec["attrs"]["i"] = 999
    lines[3] = json.dumps(rec).encode() + b"\n"
    _write(path, lines)


def _delete(path: Path) -> None:
    lines = _lines(path)
    del lines[3]
    _write(path, lines)


def _reorder(path: Path) -> None:
    lines = _lines(path)
    lines[3], lines[4] = lines[4], lines[3]
    _write(path, lines)


def _insert(path: Path) -> None:
    # a well-formed record with a correct hash of its own, slotted into the middle
    lines = _lines(path)
    prev = json.loads(lines[2])
    forged = {"v": 2, "type": "span", "name": "forged", "attrs": {}, "seq": prev["seq"] + 1, "prev": prev["hash"]}
    line, _ = R.encode(forged)
    lines.insert(3, line)
    _write(path, lines)


def _truncate_past_checkpoint(path: Path) -> None:
    lines = _lines(path)
    last_cp = max(i for i, ln in enumerate(lines) if json.loads(ln)["type"] == "checkpoint")
    _write(path, lines[: last_cp - 1])


def _rewrite_without_key(path: Path) -> None:
    # recompute every hash after an edit, and re-seal checkpoints without the key
    prev = R.GENESIS_PREV
    out = []
    for ln in _lines(path):
        rec = json.loads(ln)
        rec.pop("hash")
        if rec.get("name") == "SELECT t3":
            rec["name"] = "SELECT innocent"
        if rec["type"] == "checkpoint":
            rec.pop("key_id", None)
            rec["mac"] = None
        rec["prev"] = prev
        line, prev = R.encode(rec)
        out.append(line)
    _write(path, out)
    last = json.loads(out[-1])
    anchor_path(path).write_text(json.dumps({"store": last["store"], "seq": last["seq"], "hash": last["hash"],
                                             "time": 0}))


def _delete_anchor(path: Path) -> None:
    anchor_path(path).unlink()


def _splice_genesis(path: Path) -> None:
    lines = _lines(path)
    rec = json.loads(lines[0])
    rec.pop("hash")
    rec["seq"], rec["prev"] = json.loads(lines[4])["seq"], json.loads(lines[3])["hash"]
    lines[4] = R.encode(rec)[0]
    _write(path, lines)


TAMPERING: list[tuple[str, Callable[[Path], None], str]] = [
    ("edit", _edit, "edited"),
    ("delete", _delete, "deleted"),
    ("reorder", _reorder, "expected seq"),
    ("insert", _insert, "out of order or duplicated"),
    ("truncate", _truncate_past_checkpoint, "cut off past a checkpoint"),
    ("rewrite", _rewrite_without_key, "no MAC"),
    ("anchor-deleted", _delete_anchor, "anchor file is missing"),
    ("second-genesis", _splice_genesis, "second genesis"),
]


def test_intact_store_verifies(tmp_path: Path) -> None:
    """A store written normally verifies, with the MAC of every format-2 record (genesis, checkpoints) checked."""
    path = _make(tmp_path / "a.jsonl")
    result = verify(path, key=KEY)
    assert result.ok and result.first_bad is None
    assert result.spans == 20
    assert result.checkpoints >= 4 and result.macs_checked == result.records
    assert result.warnings == []


@pytest.mark.parametrize(("name", "tamper", "message"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampering_is_detected(tmp_path: Path, name: str, tamper: Callable[[Path], None], message: str) -> None:
    """Each kind of tampering makes verify fail and name the first bad record."""
    path = _make(tmp_path / "a.jsonl")
    tamper(path)
    result = verify(path, key=KEY)
    assert not result.ok, name
    assert result.first_bad is not None
    assert any(message in p.message for p in result.problems), result.problems


def test_edit_names_the_edited_line(tmp_path: Path) -> None:
    """The first bad record reported is the one that was changed."""
    path = _make(tmp_path / "a.jsonl")
    _edit(path)
    result = verify(path, key=KEY)
    assert result.first_bad is not None and result.first_bad.line == 4
    assert "line 4" in str(result.first_bad)


def test_wrong_key_is_reported(tmp_path: Path) -> None:
    """Checkpoints sealed with another key fail verification."""
    path = _make(tmp_path / "a.jsonl")
    result = verify(path, key="another-key")
    assert not result.ok and result.first_bad is not None
    assert "different key" in result.first_bad.message


def test_without_key_rewrite_goes_unnoticed_but_is_warned_about(tmp_path: Path) -> None:
    """Without a key the chain is still checked, and verify says what it cannot check."""
    path = _make(tmp_path / "a.jsonl", key=None)
    result = verify(path)
    assert result.ok
    assert any("not checked" in w for w in result.warnings)


def test_torn_tail_is_reported_and_recovered(tmp_path: Path) -> None:
    """Half a record at the end is a warning; the next writer accounts for it and the chain continues."""
    path = _make(tmp_path / "a.jsonl", n=7)
    with open(path, "ab") as f:
        f.write(b'{"attrs":{"i":7},"name":"SELECT t')
    result = verify(path, key=KEY)
    assert result.ok and result.spans == 7
    assert any("torn last record" in w for w in result.warnings)

    store = AuditStore(path, key=KEY, fsync_interval=None)
    store.append({"v": 2, "type": "span", "name": "after crash", "attrs": {}})
    store.close()
    result = verify(path, key=KEY)
    assert result.ok, result.first_bad
    assert result.spans == 8
    assert any("accounted for by the recovery record" in w for w in result.warnings)
    assert [r["type"] for r in read_records(path)][-3:] == ["recovery", "span", "checkpoint"]


def test_damaged_middle_line_without_recovery_is_bad(tmp_path: Path) -> None:
    """Garbage in the middle of the file is not mistaken for a crash artefact."""
    path = _make(tmp_path / "a.jsonl")
    lines = _lines(path)
    lines[5] = b"not json at all\n"
    _write(path, lines)
    result = verify(path, key=KEY)
    assert not result.ok and result.first_bad is not None and result.first_bad.line == 6


def test_seq_continues_across_store_objects(tmp_path: Path) -> None:
    """A second writer object continues the first one's chain instead of starting a new one."""
    path = tmp_path / "a.jsonl"
    a = AuditStore(path, fsync_interval=None)
    b = AuditStore(path, fsync_interval=None)
    seqs = [a.append({"type": "span"}), b.append({"type": "span"}), a.append({"type": "span"})]
    assert seqs == [1, 2, 3]
    assert verify(path).ok


def test_directory_means_audit_jsonl_inside(tmp_path: Path) -> None:
    """A directory path stores into DIR/audit.jsonl."""
    store = AuditStore(tmp_path, fsync_interval=None)
    store.append({"type": "span"})
    assert (tmp_path / "audit.jsonl").exists()
    assert verify(tmp_path).ok


@pytest.mark.parametrize("kwargs", [{"checkpoint_every": 0}, {"fsync_interval": -1}])
def test_bad_settings_are_refused(tmp_path: Path, kwargs: dict[str, float]) -> None:
    """Nonsense durability settings raise a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        AuditStore(tmp_path / "a.jsonl", **kwargs)  # type: ignore[arg-type]


def test_missing_store_is_bad_input(tmp_path: Path) -> None:
    """Verifying a path that holds no store is a configuration error, not a broken chain."""
    with pytest.raises(ConfigurationError):
        verify(tmp_path / "nope.jsonl")


def test_quiet_chain_is_sealed_by_time(tmp_path: Path) -> None:
    """A store that sees few records still gets a checkpoint (and anchor) after checkpoint_interval."""
    path = tmp_path / "a.jsonl"
    store = AuditStore(path, key=KEY, fsync_interval=0.05, checkpoint_interval=0.2)
    store.append({"v": 2, "type": "span", "name": "one", "attrs": {}})
    deadline = time.monotonic() + 10
    while len(list(read_records(path))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["type"] for r in read_records(path)] == ["genesis", "span", "checkpoint"]
    result = verify(path, key=KEY)
    assert result.ok and result.macs_checked == 3  # every record is authenticated
    store.close()


@settings(max_examples=60, deadline=None)
@given(attrs=st.dictionaries(
    st.text(min_size=1, max_size=20),
    st.one_of(st.text(max_size=40), st.integers(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
              st.lists(st.text(max_size=10), max_size=4)),
    max_size=8,
))
def test_any_attributes_round_trip_and_verify(attrs: dict[str, object]) -> None:
    """Whatever attribute values a span carries (unicode, huge ints, NaN), the record re-hashes identically."""
    import tempfile

    from governed_db.audit.records import _attributes

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.jsonl"
        store = AuditStore(path, fsync_interval=None, checkpoint_interval=None)
        store.append({"v": 2, "type": "span", "attrs": _attributes(attrs)})
        store.close()
        assert verify(path).ok
        (rec,) = [r for r in read_records(path) if r["type"] == "span"]
        assert set(rec["attrs"]) == set(attrs)


def test_writer_keeps_the_anchor_after_truncation(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A writer that continues a truncated store does not overwrite the anchor that proves the truncation."""
    path = _make(tmp_path / "a.jsonl", n=12, every=5)
    before = anchor_path(path).read_text()
    _truncate_past_checkpoint(path)
    _make(path, n=12, every=5)  # the application keeps writing, passing the anchored seq again
    assert anchor_path(path).read_text() == before
    assert "no longer in the store" in caplog.text
    result = verify(path, key=KEY)
    assert not result.ok and result.first_bad is not None


def test_writer_follows_a_replaced_store(tmp_path: Path) -> None:
    """If the store is deleted while a writer has it open, new records go to the file at the path, not the void."""
    from governed_db.audit import delete_store

    path = tmp_path / "a.jsonl"
    store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None)
    store.append({"v": 2, "type": "span", "name": "before", "attrs": {}})
    store.checkpoint()
    delete_store(path)
    assert not anchor_path(path).exists()
    store.append({"v": 2, "type": "span", "name": "after", "attrs": {}})
    store.close()
    assert [r.get("name") for r in read_records(path) if r["type"] == "span"] == ["after"]
    assert verify(path, key=KEY).ok


def test_store_deleted_without_its_anchor_is_detected(tmp_path: Path) -> None:
    """Deleting only the store file leaves an anchor from another store: the new chain does not verify."""
    path = _make(tmp_path / "a.jsonl")
    path.unlink()
    _make(path)
    result = verify(path, key=KEY)
    assert not result.ok and result.first_bad is not None
    assert "different store" in result.first_bad.message


def test_damaged_tail_is_recovered_not_chained_onto(tmp_path: Path) -> None:
    """Garbage lines (and a fragment) at the end are kept, accounted for by one recovery record, and reported."""
    path = _make(tmp_path / "a.jsonl", n=3)
    before = verify(path, key=KEY).last_seq
    with open(path, "ab") as f:
        f.write(b"garbage that is a complete line\nmore garbage\n{\"half\":")
    store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None)
    store.append({"v": 2, "type": "span", "name": "after", "attrs": {}})
    store.close()
    result = verify(path, key=KEY)
    assert result.ok, result.first_bad
    assert any("damaged bytes" in w and "recovery record" in w for w in result.warnings)
    recs = list(read_records(path))
    assert recs[-3]["type"] == "recovery" and recs[-3]["seq"] == (before or 0) + 1
    assert recs[-2]["name"] == "after"


@pytest.mark.parametrize(("tail", "ok"), [
    (b'{"half":', True),                     # torn by a crash
    (b'{"half":\n', False),                  # writers terminate a fragment and recover in one write()
    (b"garbage\nmore garbage\n", False),     # no crash writes two complete garbage lines
])
def test_unrecovered_tail(tmp_path: Path, tail: bytes, ok: bool) -> None:
    """Only what a crash can leave at the end is tolerated before the next writer recovers it."""
    path = _make(tmp_path / "a.jsonl", n=3)
    with open(path, "ab") as f:
        f.write(tail)
    result = verify(path, key=KEY)
    assert result.ok is ok
    assert result.warnings if ok else result.first_bad is not None


def test_checkpoint_anchor_is_published_by_the_flusher(tmp_path: Path) -> None:
    """With a flusher thread, appends do not wait for the checkpoint fsync; the anchor follows shortly after."""
    path = tmp_path / "a.jsonl"
    store = AuditStore(path, key=KEY, fsync_interval=0.05, checkpoint_every=5, checkpoint_interval=None)
    for i in range(12):
        store.append({"v": 2, "type": "span", "name": f"q{i}", "attrs": {}})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        anchor = json.loads(anchor_path(path).read_text()) if anchor_path(path).exists() else {}
        if anchor.get("seq", 0) >= 10:
            break
        time.sleep(0.02)
    checkpoints = [r["seq"] for r in read_records(path) if r["type"] == "checkpoint"]
    assert anchor["seq"] == checkpoints[-1]
    result = verify(path, key=KEY)
    assert result.ok and len(checkpoints) == 2 and result.macs_checked == result.records
    store.close()
    assert verify(path, key=KEY).ok


def test_idle_store_is_sealed_and_closed_then_reopens(tmp_path: Path) -> None:
    """After idle_close seconds without appends the file is sealed and closed; the next append carries on."""
    path = tmp_path / "a.jsonl"
    store = AuditStore(path, key=KEY, fsync_interval=0.05, checkpoint_interval=None, idle_close=0.2)
    store.append({"v": 2, "type": "span", "name": "one", "attrs": {}})
    deadline = time.monotonic() + 10
    while store._fd >= 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store._fd == -1
    assert [r["type"] for r in read_records(path)][-1] == "checkpoint"
    store.append({"v": 2, "type": "span", "name": "two", "attrs": {}})
    store.close()
    result = verify(path, key=KEY)
    assert result.ok and result.spans == 2


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_flipped_byte_is_detected(data: st.DataObject) -> None:
    """Changing any one byte of a sealed, keyed store fails verification."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = _make(Path(d) / "a.jsonl", n=6, every=3)
        raw = bytearray(path.read_bytes())
        pos = data.draw(st.integers(0, len(raw) - 1), label="position")
        raw[pos] ^= data.draw(st.integers(1, 255), label="xor")
        path.write_bytes(bytes(raw))
        result = verify(path, key=KEY)
        # even the final newline: the last record is the anchored closing checkpoint, so "torn" means cut off
        assert not result.ok, (pos, bytes(raw[max(0, pos - 20) : pos + 20]))


def test_a_failed_reopen_never_closes_a_descriptor_the_store_no_longer_owns(tmp_path: Path) -> None:
    """The store's path turns into something that cannot be opened (a directory): the store closes its file and
    the reopen fails. The descriptor number it had is free from then on, and the next file anyone opens gets it;
    a retry must not close that file (it once did: another store's, or a database's, descriptor went away and
    every later record failed with EBADF)."""
    path = tmp_path / "audit.jsonl"
    store = AuditStore(path, fsync_interval=None)
    store.append({"v": 2, "type": "note", "n": 0})
    number = store._fd
    path.rename(tmp_path / "moved")
    path.mkdir()
    with pytest.raises(OSError):
        store.append({"v": 2, "type": "note", "n": 1})
    other = os.open(tmp_path / "someone-elses", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        if other != number:  # whatever took the number meanwhile, make it ours so the test means something
            os.dup2(other, number)
            os.close(other)
            other = number
        with pytest.raises(OSError):
            store.append({"v": 2, "type": "note", "n": 2})
        os.fstat(other)  # still open
        path.rmdir()
        (tmp_path / "moved").rename(path)
        store.append({"v": 2, "type": "note", "n": 3})
        os.fstat(other)
        assert os.write(other, b"x") == 1
    finally:
        os.close(other)
        store.close()
    assert [r.get("n") for r in read_raw(path) if r["type"] == "note"] == [0, 3]
    assert verify(path).ok
