"""Issue 15, round 16: the tamper set tried again from scratch, as someone without the key, on keyed stores —
one file, rotated, and rotated with retention. Everything here must fail ``verify`` with the key.

Two attacks passed before decision 0326: a field added to the anchor (its MAC covers only the fields a writer
writes, and the rest was never looked at), and a dead process's journal copied from another store that uses the
same key — the usual case, ``GOVERNED_DB_AUDIT_KEY`` — into this store's ``.wal`` directory: its frames' tags
were valid for any store with that key, so the next writer or ``verify --key`` chained the other store's
statements into this one, and the store verified.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import governed_db
from governed_db import Identity
from governed_db.audit import audit_processor, read_records, verify
from governed_db.audit import journal as J
from governed_db.audit import records as R
from governed_db.audit.store import anchor_path

KEY = "audit16-tamper-key"
SHAPES = {"one file": {"n": 30}, "rotated": {"n": 60, "rotate_bytes": 4000},
          "retained": {"n": 120, "rotate_bytes": 4000, "retain_bytes": 12000}}


def _build(d: Path, n: int, **opts: object) -> tuple[Path, list[bytes]]:
    """A closed keyed store of real statements, and every anchor it had along the way (an attacker's copies)."""
    d.mkdir(parents=True)
    p = d / "a.jsonl"
    proc = audit_processor({"path": str(p), "key": KEY, "checkpoint_every": 4, "fsync_interval": None,
                            "checkpoint_interval": None, "journal": False, **opts})
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit=proc, identity=Identity("victim"), environment="production")
    anchors: list[bytes] = []
    for i in range(n):
        conn.execute("INSERT INTO t VALUES (?)", (i,))
        if anchor_path(p).exists():
            anchors.append(anchor_path(p).read_bytes())
    proc.store.close()
    return p, anchors


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[bytes]]]:
    base = tmp_path_factory.mktemp("audit16-tamper")
    return {name: _build(base / name.replace(" ", "-"), **opts) for name, opts in SHAPES.items()}  # type: ignore[arg-type]


def _lines(f: Path) -> list[bytes]:
    return f.read_bytes().splitlines(keepends=True)


def _rotated(p: Path) -> list[Path]:
    return sorted(x for x in p.parent.iterdir()
                  if x.name.startswith(p.name + ".") and x.name[len(p.name) + 1:].isdigit())


def _anchor_json(p: Path) -> dict[str, object]:
    return dict(json.loads(anchor_path(p).read_text()))


def _write_anchor(p: Path, data: dict[str, object]) -> None:
    anchor_path(p).write_text(json.dumps(data, sort_keys=True) + "\n")  # the form a writer writes


def blank_line(p: Path, _: list[bytes]) -> None:
    lines = _lines(p)
    lines.insert(5, b"\n")
    p.write_bytes(b"".join(lines))


def crlf_line(p: Path, _: list[bytes]) -> None:
    lines = _lines(p)
    lines[5] = lines[5][:-1] + b"\r\n"
    p.write_bytes(b"".join(lines))


def nul_line(p: Path, _: list[bytes]) -> None:
    lines = _lines(p)
    lines.insert(5, b"\x00\x00\n")
    p.write_bytes(b"".join(lines))


def last_record_made_a_fragment(p: Path, _: list[bytes]) -> None:
    p.write_bytes(p.read_bytes()[:-1] + b"XX")


def anchor_duplicate_key(p: Path, _: list[bytes]) -> None:
    text = anchor_path(p).read_text().rstrip("\n")
    anchor_path(p).write_text(text[:-1] + ', "seq": 0}\n')


def anchor_extra_field(p: Path, _: list[bytes]) -> None:
    data = _anchor_json(p)
    data["witnessed"] = True
    _write_anchor(p, data)


def anchor_offset(p: Path, _: list[bytes]) -> None:
    data = _anchor_json(p)
    data["offset"] = 0
    _write_anchor(p, data)


def anchor_symlinked_to_an_older_copy(p: Path, anchors: list[bytes]) -> None:
    old = p.parent / "old.anchor"
    old.write_bytes(anchors[0])
    anchor_path(p).unlink()
    os.symlink(old, anchor_path(p))


def anchor_a_directory(p: Path, _: list[bytes]) -> None:
    anchor_path(p).unlink()
    anchor_path(p).mkdir()


def genesis_key_id_zeroed_and_rehashed(p: Path, _: list[bytes]) -> None:
    lines = _lines(p)
    rec = json.loads(lines[0])
    rec["key_id"] = "0" * 16
    lines[0], _hash = R.encode({k: v for k, v in rec.items() if k not in ("hash", "tag")})
    p.write_bytes(b"".join(lines))


def live_emptied(p: Path, _: list[bytes]) -> None:
    p.write_bytes(b"")


def live_deleted(p: Path, _: list[bytes]) -> None:
    p.unlink()


def live_cut_to_its_first_record(p: Path, _: list[bytes]) -> None:
    p.write_bytes(_lines(p)[0])


def newest_rotated_deleted(p: Path, _: list[bytes]) -> None:
    _rotated(p)[-1].unlink()


def oldest_rotated_deleted(p: Path, _: list[bytes]) -> None:
    _rotated(p)[0].unlink()


def every_rotated_deleted(p: Path, _: list[bytes]) -> None:
    for f in _rotated(p):
        f.unlink()


def rotated_gzipped_without_a_line(p: Path, _: list[bytes]) -> None:
    f = _rotated(p)[-1]
    lines = _lines(f)
    with gzip.open(str(f) + ".gz", "wb") as g:
        g.write(b"".join(lines[:3] + lines[4:]))
    f.unlink()


def rotated_duplicated_as_gz(p: Path, _: list[bytes]) -> None:
    f = _rotated(p)[-1]
    with gzip.open(str(f) + ".gz", "wb") as g:
        g.write(f.read_bytes())


def rotated_cut_to_an_earlier_checkpoint(p: Path, _: list[bytes]) -> None:
    f = _rotated(p)[-1]
    lines = _lines(f)
    marks = [i for i, line in enumerate(lines) if b'"type":"checkpoint"' in line]
    keep = marks[-1] if marks[-1] != len(lines) - 1 else marks[-2]
    f.write_bytes(b"".join(lines[:keep + 1]))


def retention_records_dropped(p: Path, _: list[bytes]) -> None:
    for f in [*_rotated(p), p]:
        lines = _lines(f)
        kept = [line for line in lines if b'"type":"retention"' not in line]
        if kept != lines:
            f.write_bytes(b"".join(kept))


ONE_FILE: list[Callable[[Path, list[bytes]], None]] = [
    blank_line, crlf_line, nul_line, last_record_made_a_fragment, anchor_duplicate_key, anchor_extra_field,
    anchor_offset, anchor_symlinked_to_an_older_copy, anchor_a_directory, genesis_key_id_zeroed_and_rehashed]
ROTATED: list[Callable[[Path, list[bytes]], None]] = [
    live_emptied, live_deleted, live_cut_to_its_first_record, newest_rotated_deleted, oldest_rotated_deleted,
    every_rotated_deleted, rotated_gzipped_without_a_line, rotated_duplicated_as_gz,
    rotated_cut_to_an_earlier_checkpoint, anchor_extra_field]
RETAINED: list[Callable[[Path, list[bytes]], None]] = [
    oldest_rotated_deleted, every_rotated_deleted, retention_records_dropped, live_cut_to_its_first_record,
    newest_rotated_deleted, rotated_cut_to_an_earlier_checkpoint, anchor_extra_field]
CASES = ([("one file", a) for a in ONE_FILE] + [("rotated", a) for a in ROTATED]
         + [("retained", a) for a in RETAINED])


@pytest.mark.parametrize(("shape", "attack"), CASES, ids=[f"{s}-{a.__name__}" for s, a in CASES])
def test_an_attack_without_the_key_fails_verification(shape: str, attack: Callable[[Path, list[bytes]], None],
                                                      built: dict[str, tuple[Path, list[bytes]]],
                                                      tmp_path: Path) -> None:
    src, anchors = built[shape]
    d = tmp_path / "copy"
    shutil.copytree(src.parent, d, symlinks=True)
    p = d / src.name
    before = verify(p, key=KEY)
    assert before.ok, before.problems
    attack(p, anchors)
    after = verify(p, key=KEY)
    assert not after.ok, f"{attack.__name__} on a {shape} store verified: {after.warnings}"


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_older_anchor_put_back_is_detected(shape: str, built: dict[str, tuple[Path, list[bytes]]],
                                                 tmp_path: Path) -> None:
    """Each anchor the store ever had, put back over an intact store (the attacker kept copies)."""
    src, anchors = built[shape]
    d = tmp_path / "copy"
    shutil.copytree(src.parent, d, symlinks=True)
    p = d / src.name
    current = anchor_path(p).read_bytes()
    older = sorted(set(anchors) - {current})
    assert len(older) >= 5
    missed = []
    for old in older:
        anchor_path(p).write_bytes(old)
        if verify(p, key=KEY).ok:
            missed.append(json.loads(old)["seq"])
    assert missed == []


def test_an_anchor_with_exactly_the_writers_fields_verifies(tmp_path: Path) -> None:
    """The field check refuses nothing a writer writes: the anchor re-written as a writer would, unchanged."""
    p, _ = _build(tmp_path / "s", n=10)
    _write_anchor(p, _anchor_json(p))
    assert verify(p, key=KEY).ok


_DIES = """
import os, signal, sqlite3, sys
import governed_db
from governed_db import Identity
from governed_db.audit import store as S
S.DEFER_INTERVAL = 3600.0
S._DRAIN_AT = 10**9
conn = governed_db.wrap(sqlite3.connect(":memory:"), identity=Identity(sys.argv[2]), environment="production",
                        audit={"path": sys.argv[1], "key": sys.argv[3], "fsync_interval": 3600.0,
                               "checkpoint_interval": None})
for i in range(int(sys.argv[4])):
    conn.execute("SELECT ?", (i,)).fetchall()
if sys.argv[5] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
conn.close()
"""


def _writer(store: Path, who: str, n: int, end: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(_DIES), str(store), who, KEY, str(n), end],
                       capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == (-signal.SIGKILL if end == "die" else 0), p.stderr


def _subjects(store: Path) -> list[str]:
    return [r["attrs"].get("governed_db.identity.subject") for r in read_records(store) if R.is_statement(r)]


def test_a_journal_copied_from_another_store_with_the_same_key_is_not_chained(tmp_path: Path) -> None:
    """Store B's writer dies with 5 statements only in its journal; the journal is copied into store A's .wal
    (same key, as with GOVERNED_DB_AUDIT_KEY). Before: `verify A --key` chained B's statements into A and said
    intact. Now: its frames fail their tag for A, nothing is chained, verify warns; B still recovers its own."""
    a, b = tmp_path / "a" / "audit.jsonl", tmp_path / "b" / "audit.jsonl"
    _writer(a, "alice", 5, "close")
    _writer(b, "bob", 5, "die")
    (wal,) = J.wal_dir(b).glob("*.wal")
    J.wal_dir(a).mkdir(exist_ok=True)
    shutil.copy(wal, J.wal_dir(a) / wal.name)
    result = verify(a, key=KEY)
    assert result.ok, result.problems
    assert result.statements == 5
    assert any("tag fails for this store" in w for w in result.warnings), result.warnings
    assert _subjects(a) == ["alice"] * 5
    # the same journal in its own store is chained as before (4 recovered, the 5th ran first, directly)
    assert verify(b, key=KEY).ok
    assert _subjects(b) == ["bob"] * 5


def test_a_journal_planted_in_a_fresh_process_of_the_other_store_is_not_chained_by_a_writer(
        tmp_path: Path) -> None:
    """The copied journal met by A's next writer (not verify): still not chained; A's own new statements are."""
    a, b = tmp_path / "a" / "audit.jsonl", tmp_path / "b" / "audit.jsonl"
    _writer(a, "alice", 3, "close")
    _writer(b, "bob", 4, "die")
    (wal,) = J.wal_dir(b).glob("*.wal")
    J.wal_dir(a).mkdir(exist_ok=True)
    shutil.copy(wal, J.wal_dir(a) / wal.name)
    _writer(a, "carol", 2, "close")
    assert _subjects(a) == ["alice"] * 3 + ["carol"] * 2
    assert verify(a, key=KEY).ok
