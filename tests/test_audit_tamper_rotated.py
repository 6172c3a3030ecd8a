"""The tamper set over a rotated, retained chain (issue 15 attacked again): every file, every line.

Deleting the live file of a rotated store made ``verify`` fail with "no audit store" (exit 2, bad input)
instead of reporting the records cut off past the anchored checkpoint (exit 1); it now examines what is left.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from governed_db.audit import AuditStore, verify
from governed_db.audit.segments import store_files
from governed_db.audit.store import anchor_path
from governed_db.cli import main

KEY = "rotated-tamper-key"


def _store(path: Path) -> list[str]:
    store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None,
                       rotate_bytes=1200, retain_bytes=2500, checkpoint_every=3)
    for i in range(25):
        store.append({"v": 2, "type": "span", "name": f"S{i}", "time": i, "attrs": {"governed_db.decision": "allow"}})
    store.close()
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    return [f.name for f in store_files(path)]


def _lines(f: Path) -> list[bytes]:
    return f.read_bytes().splitlines(keepends=True)


def test_deleting_the_live_file_of_a_rotated_store_is_tampering_not_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    names = _store(path)
    assert len(names) >= 2
    path.unlink()
    result = verify(path, key=KEY)
    assert not result.ok and any("cut off" in p.message for p in result.problems), result.problems
    res = CliRunner().invoke(main, ["audit", "verify", "--store", str(path)], env={"GOVERNED_DB_AUDIT_KEY": KEY})
    assert res.exit_code == 1, res.output
    anchor_path(path).unlink()  # and the anchor too: still not intact
    assert not verify(path, key=KEY).ok


def test_a_live_file_renamed_by_external_rotation_still_verifies(tmp_path: Path) -> None:
    """logrotate renamed the live file and no writer has started the next one yet: intact (with a note)."""
    path = tmp_path / "a.jsonl"
    store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None,
                       checkpoint_every=3)
    for i in range(10):
        store.append({"v": 2, "type": "span", "name": f"S{i}", "time": i, "attrs": {}})
    store.close()
    path.rename(tmp_path / "a.jsonl.1")
    result = verify(path, key=KEY)
    assert result.ok, result.problems
    assert result.spans == 10 and any("missing" in w for w in result.warnings)


def _mutations(src: Path, names: list[str]) -> list[tuple[str, Callable[[Path], None]]]:
    out: list[tuple[str, Callable[[Path], None]]] = []
    for nm in names:
        out.append((f"delete {nm}", lambda d, nm=nm: (d / nm).unlink()))
        n = len(_lines(src / nm))
        for i in range(n):
            def delete(d: Path, nm: str = nm, i: int = i) -> None:
                lines = _lines(d / nm)
                del lines[i]
                (d / nm).write_bytes(b"".join(lines))

            def duplicate(d: Path, nm: str = nm, i: int = i) -> None:
                lines = _lines(d / nm)
                lines.insert(i, lines[i])
                (d / nm).write_bytes(b"".join(lines))

            def truncate(d: Path, nm: str = nm, i: int = i) -> None:
                (d / nm).write_bytes(b"".join(_lines(d / nm)[:i]))

            out += [(f"delete {nm}:{i}", delete), (f"duplicate {nm}:{i}", duplicate),
                    (f"truncate {nm} to {i} lines", truncate)]
            if i + 1 < n:
                def swap(d: Path, nm: str = nm, i: int = i) -> None:
                    lines = _lines(d / nm)
                    lines[i], lines[i + 1] = lines[i + 1], lines[i]
                    (d / nm).write_bytes(b"".join(lines))

                out.append((f"swap {nm}:{i},{i + 1}", swap))

    def swap_files(d: Path) -> None:
        a, b = (d / names[0]).read_bytes(), (d / names[-1]).read_bytes()
        (d / names[0]).write_bytes(b)
        (d / names[-1]).write_bytes(a)

    def plant_copy(d: Path) -> None:
        shutil.copy(d / names[0], d / (names[-1] + ".planted"))

    out += [("swap the first and last files", swap_files), ("plant a copy of a rotated file", plant_copy)]
    return out


def test_every_line_and_file_attack_on_a_rotated_chain_is_detected(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    names = _store(src / "a.jsonl")
    missed = []
    for n, (name, mutate) in enumerate(_mutations(src, names)):
        d = tmp_path / f"t{n}"
        shutil.copytree(src, d)
        mutate(d)
        if verify(d / "a.jsonl", key=KEY).ok:
            missed.append(name)
        shutil.rmtree(d)
    assert missed == []


@pytest.mark.parametrize("which", ["first", "live", "anchor"])
def test_every_flipped_byte_of_a_rotated_chain_is_detected(tmp_path: Path, which: str) -> None:
    path = tmp_path / "a.jsonl"
    names = _store(path)
    target = {"first": tmp_path / names[0], "live": path, "anchor": anchor_path(path)}[which]
    original = target.read_bytes()
    missed = []
    for pos in range(len(original)):
        raw = bytearray(original)
        raw[pos] ^= 0x01 if pos % 2 else 0x20
        target.write_bytes(bytes(raw))
        if verify(path, key=KEY).ok:
            missed.append(pos)
    target.write_bytes(original)
    assert missed == []


def test_rotated_files_renamed_out_of_order_are_detected(tmp_path: Path) -> None:
    """Names swapped between two rotated files (contents untouched): readers order files by their first seq,
    so the chain still verified — but governed_db names each rotated file for its first seq and nothing renames
    them so, so verify reports it. Compressing a rotated file or logrotate's own names stay intact."""
    import gzip

    path = tmp_path / "a.jsonl"
    store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None,
                       rotate_bytes=1200, checkpoint_every=3)
    for i in range(25):
        store.append({"v": 2, "type": "span", "name": f"S{i}", "time": i, "attrs": {}})
    store.close()
    rotated = [f.name for f in store_files(path) if f != path]
    assert len(rotated) >= 2 and all(n[len(path.name) + 1:].isdigit() for n in rotated)
    first, second = tmp_path / rotated[0], tmp_path / rotated[1]
    first.rename(tmp_path / "x")
    second.rename(first)
    (tmp_path / "x").rename(second)
    result = verify(path, key=KEY)
    assert not result.ok and any("named for seq" in p.message for p in result.problems), result.problems
    (tmp_path / "x").write_bytes(first.read_bytes())  # put them back; then the innocent renames
    first.write_bytes(second.read_bytes())
    second.write_bytes((tmp_path / "x").read_bytes())
    (tmp_path / "x").unlink()
    assert verify(path, key=KEY).ok
    with gzip.open(tmp_path / (rotated[0] + ".gz"), "wb") as gz:
        gz.write(first.read_bytes())
    first.unlink()
    second.rename(tmp_path / (path.name + ".1"))  # logrotate's name
    result = verify(path, key=KEY)
    assert result.ok, result.problems
