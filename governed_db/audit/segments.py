"""Rotation and retention: one chain over several files.

The live file is ``<name>``; files rotated away are ``<name>.<suffix>`` in the same
directory (governed_db names them ``<name>.<first seq, 20 digits>``; an external
``logrotate`` may call them ``<name>.1`` or compress them to ``<name>.2.gz`` —
readers order files by the ``seq`` of their first record, not by name). A
file that continues the chain starts with a ``segment`` record whose ``prev``
is the hash of the last record of the file before, so the chain verifies
across rotation exactly as within a file.

Retention removes the oldest rotated files (by total size or age) and first
appends a ``retention`` record to the chain that names each removed file with
its seq range, record count, size, SHA-256 and last hash. With the key that
summary is authenticated like every record: removing files *without* writing
one (or forging one) is detected by ``verify``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governed_db.audit import records as R


@dataclass(frozen=True)
class Segment:
    """A rotated file of the chain, as retention describes it."""

    path: Path
    first_seq: int
    last_seq: int
    last_hash: str
    first_time: int | None
    last_time: int | None
    records: int
    size: int
    sha256: str

    def summary(self) -> dict[str, Any]:
        return {"file": self.path.name, "first_seq": self.first_seq, "last_seq": self.last_seq,
                "last_hash": self.last_hash, "first_time": self.first_time, "last_time": self.last_time,
                "records": self.records, "bytes": self.size, "sha256": self.sha256}


def rotated_name(path: Path, first_seq: int) -> Path:
    """``<name>.<first seq>``, zero-padded so that names sort in chain order."""
    target = path.with_name(f"{path.name}.{first_seq:020d}")
    n = 1
    while target.exists():  # never overwrite a file of the chain
        target = path.with_name(f"{path.name}.{first_seq:020d}.{n}")
        n += 1
    return target


def describe(path: Path) -> Segment | None:
    """Seq range, last hash, record count and SHA-256 of a rotated (uncompressed) file, or None if unreadable."""

    if path.name.endswith(".gz"):
        return None
    digest = hashlib.sha256()
    first: dict[str, Any] | None = None
    last: dict[str, Any] | None = None
    records = size = 0
    try:
        for _, line in raw_lines(path):
            digest.update(line)
            size += len(line)
            rec = R.parse_line(line) if line.endswith(b"\n") else None
            if rec is None or not isinstance(rec.get("seq"), int):
                continue
            records += 1
            first = first or rec
            last = rec
    except OSError:
        return None
    if first is None or last is None:
        return None
    times = [t if isinstance(t, int) else None for t in (first.get("time"), last.get("time"))]
    return Segment(path, int(first["seq"]), int(last["seq"]), str(last.get("hash")), times[0], times[1], records,
                   size, digest.hexdigest())


def select_for_removal(path: Path, store_id: str, *, retain_bytes: int | None,
                       retain_age: float | None) -> list[Segment]:
    """The oldest rotated files to remove (a prefix of the chain, so that what stays still links)."""

    rotated = [f for f in store_files(path) if f != path]
    described = []
    for f in rotated:
        head = _first_record(f)
        if head is None or head.get("store") != store_id:
            break  # not ours, or unreadable: stop, never leave a hole in the chain
        seg = describe(f)
        if seg is None:
            break
        described.append(seg)
    total = sum(s.size for s in described)
    cutoff = time.time_ns() - int(retain_age * 1e9) if retain_age is not None else None
    removed: list[Segment] = []
    for seg in described:
        too_big = retain_bytes is not None and total > retain_bytes
        too_old = cutoff is not None and seg.last_time is not None and seg.last_time < cutoff
        if not (too_big or too_old):
            break
        removed.append(seg)
        total -= seg.size
    return removed


def retention_body(removed: list[Segment]) -> dict[str, Any]:
    """The sealed summary written to the chain before ``removed`` files are deleted."""
    last = removed[-1]
    return {"v": R.FORMAT_VERSION, "type": R.RETENTION, "time": time.time_ns(),
            "through_seq": last.last_seq, "through_hash": last.last_hash,
            "removed": [s.summary() for s in removed], "pid": os.getpid()}


def raw_lines(p: Path) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` for every line of ``p``, a line longer than ``R.MAX_LINE`` cut into pieces of at
    most that size (each a damaged record) — memory stays bounded whatever the file holds."""
    offset = 0
    limit = R.MAX_LINE + 1
    with _open_segment(p) as f:
        while True:
            line = f.readline(limit)
            if not line:
                return
            yield offset, line
            offset += len(line)


def open_regular(p: Path) -> int:
    """A read-only descriptor of ``p`` if it is a regular file; ``OSError`` for anything else.

    Opened without blocking: a FIFO (or a link to one, or to a terminal) planted beside the store, or as its
    anchor, would otherwise hold every reader — and the writer of every statement — in ``open()`` for ever.
    """
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(p))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_segment(p: Path) -> Any:
    fd = open_regular(p)
    if p.name.endswith(".gz"):  # external rotation may compress the files it rotated away
        import gzip

        raw = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed with the GzipFile
        g = gzip.GzipFile(filename=str(p), mode="rb", fileobj=raw)
        g.myfileobj = raw  # GzipFile closes the file it opened itself: make this one that file
        return g
    return open(fd, "rb")


def store_files(p: Path) -> list[Path]:
    """The store's files in chain order: files rotated away (``<name>.<suffix>``, also ``.gz``) by their
    first ``seq``, then the live file. The anchor, its temporary files and the index are not segments."""
    prefix = p.name + "."
    found: list[tuple[int, str, Path]] = []
    with contextlib.suppress(FileNotFoundError):
        for f in p.parent.iterdir():
            name = f.name
            if not name.startswith(prefix) or name[len(prefix):].startswith(("anchor", "index")):
                continue
            first = _first_record(f)
            if first is not None and isinstance(first.get("seq"), int):
                found.append((int(first["seq"]), name, f))
    found.sort()
    files = [f for _, _, f in found]
    if p.exists():
        files.append(p)
    return files


def _first_record(f: Path) -> dict[str, Any] | None:
    try:
        with _open_segment(f) as fh:
            rec = R.parse_line(fh.readline(R.MAX_LINE + 1))
    except (OSError, EOFError, ValueError):
        return None
    if rec is None or rec.get("type") not in (R.GENESIS, R.SEGMENT):
        return None
    return rec
