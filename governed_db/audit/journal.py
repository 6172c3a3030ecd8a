"""The write-ahead journal: a statement's record reaches the OS with no write() and no file lock on its path.

Each writing process keeps one memory-mapped file in ``<store>.wal/`` (docs/decisions/0205-audit-journal.md).
Before the driver sees a statement, its intent is copied into that mapping as a *frame* (with no system call: the
C copy runs under a SIGBUS guard, decisions 0369 and 0411, and a truncation is also looked for at every drain): the
record's
canonical bytes less its place in the chain (``seq``, ``prev``, ``hash``, ``tag``), checked by a CRC-32 and,
with a key, by a keyed BLAKE2b tag. A ``MAP_SHARED`` page belongs to the kernel's page cache the moment it is
written, so the frame survives SIGKILL of the writer exactly as a ``write()`` would. (Without the C helper the
frame is written with one ``pwrite``: Python cannot survive the SIGBUS a copy into a truncated mapping raises,
docs/decisions/0369-a-journal-truncated-during-the-copy.md.) The store's flusher thread
then chains the frames into the store in order — many records in one locked ``write()`` — and advances the
journal's *consumed* mark.

A process that dies leaves frames past that mark. The next writer of the store (or a reader) *recovers* them:
the journal is orphaned when its owner's ``flock`` is gone; its valid frames are chained into the store — those
the store already holds (a drain that wrote but died before moving the mark) are recognised by span id and
skipped — and the file is removed. Frames of a keyed store carry a tag: a frame forged into a journal by
someone without the key is reported, never chained.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import logging
import mmap
import os
import re
import secrets
import struct
import threading
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from governed_db._native import speedups
from governed_db.audit import records as R

log = logging.getLogger("governed_db.audit")

#: 02: frame tags are keyed by the store as well as the audit key (decision 0326); a journal of an older layout
#: is not read (left in place, never chained)
MAGIC = b"GDBWAL02"
#: magic, epoch, consumed offset, key id (16 hex chars or zeros), owner pid
_HEADER = struct.Struct("<8sQQ16sQ")
HEADER_SIZE = 64
#: a frame (one per statement: its intent and the outcomes deferred before it): payload length, CRC-32 of the
#: payload; the payload starts with the journal's epoch, the number of its first item, and its *floor*: the last seq
#: the writer knew the store to hold (-1: none). Its records can only be chained after that seq, so recovery looks
#: for them in the store from there on — however much was appended or rotated since, and whoever replays the frame
_FRAME = struct.Struct("<II")
_START = struct.Struct("<IQq")
_NO_KEY = b"0" * 16
_TAG = 16
#: kinds of item: a record split in two around its chain fields; an outcome, its first piece ending where its
#: intent's seq goes; a whole record (JSON without its chain fields)
PAIR, OUTCOME, GENERIC = 1, 2, 3
#: kind, the two pieces' lengths, the intent's seq (-1 unknown) and item number (outcomes)
_ITEM = struct.Struct("<BIIqq")
#: a frame's start and its first item; an item (the statement path packs each in one call)
_START_ITEM = struct.Struct("<IQqBIIqq")
_PAIR_ITEM = _ITEM
#: the C copy of a frame (governed_db/_speedups.c), or None: the Python code below
_native_frame = speedups.frame if speedups is not None else None
#: the C copy of a frame built in Python (the statement path's rarer shape), or None: ``os.pwrite``
_native_copy = speedups.copy_frame if speedups is not None else None
DEFAULT_SIZE = 4 * 1024 * 1024
_NAME = re.compile(r"^(\d+)-[0-9a-f]{8}\.wal$")
_SPAN = re.compile(rb'"span_id":"([0-9a-f]{16})"')
_TYPE = re.compile(rb'"type":"([a-z_]+)"')


#: journals one process keeps open at once (one descriptor and 4 MiB of mapping each); stores beyond that write
#: their intents directly
MAX_LIVE = 64
_live = [0]
_live_lock = threading.Lock()
#: names of the journals this process writes: never opened by its own recoveries, whatever the lock would say (a
#: ``flock`` emulated with POSIX record locks, as on NFS, is this process's to take again — and closing any
#: descriptor of the file drops it: another process would then take the live journal for an orphan)
_mine: set[str] = set()


class TooMany(OSError):
    """This process has :data:`MAX_LIVE` journals open already."""


def wal_dir(store: Path) -> Path:
    return store.with_name(store.name + ".wal")


def journal_key(key: bytes, store_id: str) -> bytes:
    """The frames' tag key: the audit key bound to one store (its id). Several stores commonly share one audit key
    (``GOVERNED_DB_AUDIT_KEY``): without the store in it, a dead process's journal copied into another store's
    ``.wal`` directory by someone without the key had valid tags there, and was chained as that store's records."""
    return hashlib.blake2b(len(key).to_bytes(4, "little") + key + store_id.encode("ascii", "replace"),
                           person=b"gdb-audit-wal", digest_size=32).digest()


def key_label(key: bytes | None) -> bytes:
    return R.key_id(key).encode("ascii")[:16].ljust(16, b"0") if key is not None else _NO_KEY


class Journal:
    """This process's journal of one store. :meth:`put` is the statement path; the store drains under its lock."""

    def __init__(self, store: Path, key: bytes | None, size: int = DEFAULT_SIZE) -> None:
        with _live_lock:
            if _live[0] >= MAX_LIVE:
                raise TooMany(f"{MAX_LIVE} journals are open in this process already")
            _live[0] += 1
        try:
            self._open(store, key, size)
        except BaseException:
            with _live_lock:
                _live[0] -= 1
            raise

    def _open(self, store: Path, key: bytes | None, size: int) -> None:
        d = wal_dir(store)
        d.mkdir(mode=0o700, exist_ok=True)
        self.pid = os.getpid()
        self.path = d / f"{self.pid}-{secrets.token_hex(4)}.wal"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held for life: recovery knows an orphan by its absence
            if os.fstat(fd).st_nlink == 0:  # taken for a dead writer's empty file and removed before our lock
                raise OSError("the new journal was removed before it was locked")
            os.posix_fallocate(fd, 0, size)  # blocks reserved now: a full disk fails here, never as SIGBUS later
            # written once through, so the statement path never takes a page fault that allocates or converts
            # a block (measured: ~2 µs a statement on a fresh mapping otherwise)
            head = _HEADER.pack(MAGIC, 1, HEADER_SIZE, key_label(key), self.pid)
            os.pwrite(fd, head + bytes(size - len(head)), 0)
            # the mapping keeps its own descriptor of the same open file (and with it the lock); ours stays open
            # for the truncation check of every copy (put)
            self.mm = mmap.mmap(fd, size)
        except BaseException:
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(fd)
            raise
        self.fd = fd
        with _live_lock:
            _mine.add(self.path.name)
        # the C copies run under a SIGBUS guard: a truncation landing between the size check and the copy is caught
        # there (docs/decisions/0369-a-journal-truncated-during-the-copy.md); the Python code never touches the
        # mapping (pwrite)
        self.guarded = speedups is not None and bool(speedups.guard_install())
        self.size = size
        self.key = key
        #: the store the frames are tagged for (bound at the first frame, once the store's id is known)
        self.store_id = ""
        self.jkey: bytes | None = None
        self.label = key_label(key)
        self.lock = threading.Lock()
        self.closed = False
        self.released = False
        #: the file was found shorter than its mapping (someone truncated it): the mapping is never touched again
        self.broken = False
        self.epoch = 1
        self.wpos = HEADER_SIZE
        self.frames = 0
        #: records journaled and not yet in the store, in journal order (the drain writes these objects)
        self.queue: deque[Any] = deque()
        #: records deferred since the last intent (outcomes a result may still amend): journaled ahead of the
        #: next intent, or written by the next drain
        self.deferred: list[Any] = []

    def _head(self, consumed: int) -> bytes:
        return _HEADER.pack(MAGIC, self.epoch, consumed, self.label, self.pid)

    def _header(self, consumed: int) -> None:
        """Write the header (at a drain, never on the statement path). ``pwrite``, not the mapping: a file truncated
        meanwhile is grown back to the header's end, never a SIGBUS; the next frame's size check then finds it."""
        if self._truncated():
            return
        with contextlib.suppress(OSError):
            os.pwrite(self.fd, self._head(consumed), 0)

    def _truncated(self) -> bool:
        """Whether the file is shorter than its mapping, or was cut and grown back. No code of governed_db truncates
        a journal, but another process of the same user (or root) can; a copy into a page past the file's end is
        SIGBUS — the writer would die, and the intents only it held in memory with it. One ``lseek`` (about 0.3 µs
        here, a sixth of ``fstat``'s cost) tells the file's size
        (docs/decisions/0326-a-live-journal-truncated-or-planted-and-anchor-fields.md); a truncation landing after
        that check is caught by the C copy's guard, and the Python code writes with ``pwrite``
        (docs/decisions/0369-a-journal-truncated-during-the-copy.md). Once truncated, the journal is closed to
        statements for good: they write to the store, which chains what was journaled from memory."""
        if self.broken:
            return True
        # shorter than the mapping; or cut and grown again (its header then reads as zeros). Read with pread:
        # a read of the mapping's first page is a SIGBUS too if the file was cut again since the size was read
        short = self._size() < self.size or self._magic() != MAGIC
        if short:
            self._break()
        return short

    def _break(self) -> None:
        if not self.broken:
            self.broken = self.closed = True
            log.error("governed_db audit: the journal %s was truncated by another process; its records are "
                      "written to the store from memory, and this store writes directly from now on", self.path)

    def _magic(self) -> bytes:
        try:
            return os.pread(self.fd, len(MAGIC), 0)
        except OSError:
            return b""

    def _size(self) -> int:
        try:
            return os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            return -1

    def _bind(self, store_id: str) -> bool:
        """Tag the frames from now on for ``store_id``; only into an empty journal (frames already there were
        tagged for another store id: the store writes directly until a drain empties it)."""
        if (self.key is not None and not store_id) or self.wpos != HEADER_SIZE or self.queue:
            return False
        self.store_id = store_id
        self.jkey = journal_key(self.key, store_id) if self.key is not None else None
        return True

    def put(self, items: list[tuple[Any, int, bytes, bytes, int, int]], floor: int, store_id: str) -> bool:
        """Copy one frame holding ``items`` — (record, kind, piece, piece, intent seq, intent item) — into the
        mapping and queue the records (numbered, marked written); False when the journal is full or closed (the
        caller writes them to the store itself). ``floor``: the store's last seq as the caller knows it. Caller
        holds :attr:`lock`. ``store_id``: the store's id, which the frames' tags are bound to."""
        if store_id != self.store_id and not self._bind(store_id):
            return False
        number = self.frames
        parts = [_START.pack(self.epoch, number, floor)]
        pack = _ITEM.pack
        for item in items:
            a, b = item[2], item[3]
            parts += (pack(item[1], len(a), len(b), item[4], item[5]), a, b)
        payload = b"".join(parts)
        if self.jkey is not None:
            payload += hashlib.blake2b(payload, key=self.jkey, digest_size=_TAG).digest()
        pos = self.wpos
        end = pos + _FRAME.size + len(payload)
        if end > self.size or self.closed:
            return False
        if not self._copy(pos, _FRAME.pack(len(payload), zlib.crc32(payload)) + payload):
            return False
        self.wpos = end
        self.frames = number + len(items)
        queue = self.queue
        for item in items:
            rec = item[0]
            if isinstance(rec, R.Prepared):
                rec.frame = number
                rec.written = True
            number += 1
            queue.append(rec)
        return True

    def _copy(self, pos: int, frame: bytes) -> bool:
        """Put ``frame`` (its head, then its payload) at ``pos`` of the file; False (the journal broken, the frame
        not to be counted on) when the file was found truncated. The C helper checks the journal's magic and copies
        into the mapping under its SIGBUS guard: a cut that took the frame's page away is caught as it faults; one
        within that page (its bytes past the new end are not kept) is found by the next drain's check, which has
        the records in memory (docs/decisions/0411-no-size-check-a-statement-under-the-copy-guard.md). Without it, ``pwrite`` writes the frame — a write never faults —
        and the size is read after it: a truncation before or during the write shows there (the write grows the
        file only to the frame's end), so the statement's intent goes to the store instead, as in C."""
        copy = _native_copy
        if copy is not None:
            done = copy(self.mm, self.fd, pos, self.size, frame)
            if done == 0:
                return True
            if done == -2:  # cut during the copy: the guard caught the SIGBUS
                self._break()
            else:
                self._truncated()
            return False
        # one call: a write cut short by the writer's death fails the frame's CRC, and the frame never counts
        try:
            n = os.pwrite(self.fd, frame, pos)
        except OSError as e:  # EIO, or EFBIG past RLIMIT_FSIZE (which a copy into the mapping never met)
            log.error("governed_db audit: writing to the journal %s failed (%s); this store writes directly from "
                      "now on", self.path, e)
            self.broken = self.closed = True
            return False
        if n == len(frame) and os.lseek(self.fd, 0, os.SEEK_END) >= self.size:
            return True
        self._break()  # truncated (or a short write): the store writes this intent and what the journal held
        return False

    def put_intent(self, rec: R.PreparedIntent, out: R.PreparedOutcome | None, floor: int, store_id: str) -> int:
        """The statement path of :meth:`put`: one frame of ``rec`` after ``out``, the one outcome deferred since the
        last intent (or None), which leaves :attr:`deferred`. Returns how many records then wait in the queue; 0
        when nothing was journaled (full, closed, truncated: the caller writes to the store). Caller holds
        :attr:`lock`."""
        if self.closed or (store_id != self.store_id and not self._bind(store_id)):
            return 0
        a, b = rec.pieces
        number = self.frames
        pre = tail = None
        iseq = iframe = -1
        if out is not None:
            try:
                pre, tail = out.cached = out.pieces()
            except (TypeError, ValueError, orjson.JSONEncodeError):
                out = None  # unusual values: it stays deferred and is written the general way
            else:
                intent = out.intent
                iseq, iframe = (intent, -1) if type(intent) is int else (intent.seq, intent.frame)  # type: ignore[union-attr]
        pos = self.wpos
        if _native_frame is not None:
            end = _native_frame(self.mm, self.fd, pos, self.size, self.epoch, number, floor, a, b, pre, tail, iseq,
                                iframe, self.jkey)
            if end == -2:  # cut during the copy: the guard caught the SIGBUS
                self._break()
            if end == 0 or (end < 0 and self._truncated()):
                if out is not None:
                    out.cached = None
                return 0
        else:
            end = 0
        if end <= 0:  # pure Python (or a truncation suspected and ruled out: the checks run again below)
            if pre is None or tail is None:
                payload = b"%b%b%b" % (_START_ITEM.pack(self.epoch, number, floor, PAIR, len(a), len(b), -1, -1), a, b)
            else:
                payload = b"%b%b%b%b%b%b" % (
                    _START_ITEM.pack(self.epoch, number, floor, OUTCOME, len(pre), len(tail), iseq, iframe), pre,
                    tail, _PAIR_ITEM.pack(PAIR, len(a), len(b), -1, -1), a, b)
            jkey = self.jkey
            if jkey is not None:
                payload += hashlib.blake2b(payload, key=jkey, digest_size=_TAG).digest()
            end = pos + 8 + len(payload)
            if end > self.size or not self._copy(pos, b"%b%b" % (_FRAME.pack(len(payload), zlib.crc32(payload)),
                                                                 payload)):
                if out is not None:
                    out.cached = None
                return 0
        self.wpos = end
        queue = self.queue
        if out is not None:
            out.frame, out.written = number, True
            queue.append(out)
            self.deferred.clear()
            number += 1
        rec.frame, rec.written = number, True
        self.frames = number + 1
        queue.append(rec)
        return len(queue)

    def take(self) -> tuple[list[R.Prepared], list[Any], int]:
        """What a drain writes: the journaled records, the deferred ones (no longer amendable from here on),
        and the offset just past the journaled records' frames."""
        with self.lock:
            items = list(self.queue)
            self.queue.clear()
            waiting, self.deferred = self.deferred, []
            for rec in waiting:
                if isinstance(rec, R.Prepared):
                    rec.written = True
            return items, waiting, self.wpos

    def give_back(self, items: list[R.Prepared], waiting: list[Any]) -> None:
        """A drain's write failed: the records go back to the front, in order (their frames are still there)."""
        with self.lock:
            self.queue.extendleft(reversed(items))
            self.deferred[:0] = waiting

    def consumed(self, upto: int) -> None:
        """Frames before ``upto`` are in the store: mark them; start over when nothing came in meanwhile."""
        with self.lock:
            if self.closed:
                return
            if self.wpos == upto and not self.queue:
                # frames of the previous round no longer count. A frame holds the epoch in 32 bits (recovery
                # compares it modulo 2**32): it goes round within them, never 0 — past 2**32 - 1 the frame's
                # struct.pack raised, and every statement of a long-lived busy process (a round per 64 records)
                # failed from then on
                self.epoch = self.epoch % 0xFFFFFFFF + 1
                self.wpos = HEADER_SIZE
                self._header(HEADER_SIZE)
            else:
                self._header(upto)

    def detach(self) -> tuple[list[Any], list[Any]]:
        """Close it to statements (they write to the store) and hand over what it holds: the journaled records
        and the deferred ones, for the store to write before it closes."""
        with self.lock:
            self.closed = True
            framed, waiting = list(self.queue), self.deferred
            self.queue.clear()
            self.deferred = []
            return framed, waiting

    def close(self, *, remove: bool) -> None:
        with self.lock:  # a statement copying a frame right now finishes first; later ones see it closed
            if self.released:
                return
            self.closed = self.released = True
        if remove:  # unlinked while still locked: a recoverer never finds it half gone
            with contextlib.suppress(OSError):
                self.path.unlink()
        with contextlib.suppress(Exception):
            self.mm.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)  # the last descriptor of the open file: releases the lock
        with _live_lock:
            _live[0] -= 1
            _mine.discard(self.path.name)

    def abandon(self) -> None:
        """In a forked child: the mapping and lock are the parent's; let go of them without touching the file."""
        self.closed = True
        with contextlib.suppress(Exception):
            self.mm.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


# -- recovery --------------------------------------------------------------------------------------------------
class Recovered(R.Prepared):
    """A record read back from a frame; an outcome's intent seq comes from the frame, the store, or the intent
    recovered before it (whose ``seq`` is set when the store writes it)."""

    __slots__ = ("intent", "pieces", "span_id", "type_")

    def __init__(self, pieces: tuple[bytes, ...], ref: tuple[int, int] | None, frame: int) -> None:
        super().__init__()
        self.pieces, self.frame = pieces, frame
        #: for an outcome: (intent seq or -1, the intent's frame number); replaced by an int or a record
        self.intent: Any = ref
        tail = pieces[-1]
        t = _TYPE.search(tail)
        s = _SPAN.search(tail)
        if len(pieces) == 1:  # a whole record: its own span id is the last one in it (after parent_span_id)
            found = _SPAN.findall(tail)
            s = None
            self.span_id = found[-1].decode() if found else ""
        self.type_ = t.group(1).decode() if t else ""
        if len(pieces) > 1:
            self.span_id = s.group(1).decode() if s else ""

    def valid(self) -> bool:
        """Whether the frame's bytes make a record (a CRC holds for any bytes someone without a key wrote)."""
        if len(self.pieces) == 1:
            return R.parse_line(self.pieces[0]) is not None
        head = self.pieces[0] + (b"0," if self.intent is not None else b"")
        return R.parse_line(head + b'"prev":"","seq":0,' + self.pieces[-1]) is not None

    @property
    def type(self) -> str:  # type: ignore[override]
        return self.type_

    def parts(self) -> tuple[bytes, bytes]:
        if len(self.pieces) == 1:
            raise ValueError("a record kept whole: written through body()")
        intent = self.intent
        if intent is None:
            return self.pieces[0], self.pieces[1]
        seq = intent if type(intent) is int else intent.seq
        if not isinstance(seq, int) or seq < 0:
            raise ValueError("the outcome's intent is not in the store")
        return self.pieces[0] + b"%d," % seq, self.pieces[-1]

    def body(self) -> dict[str, Any]:
        if len(self.pieces) == 1:
            whole = R.parse_line(self.pieces[0])
            if whole is None:
                raise ValueError("a journal frame does not hold a record")
            return whole
        intent = self.intent
        if intent is not None and (type(intent) is not int and not isinstance(intent, R.Prepared)):
            self.intent = -1
        try:
            head, tail = self.parts()
        except ValueError:
            head, tail = self.pieces[0] + b"-1,", self.pieces[-1]
        rec = R.parse_line(head + b'"prev":"","seq":0,' + tail)
        if rec is None:
            raise ValueError("a journal frame does not hold a record")
        rec.pop("prev", None)
        rec.pop("seq", None)
        return rec


@dataclass
class Orphan:
    """A journal left by a process that ended without draining it."""

    path: Path
    fd: int
    label: bytes
    records: list[Recovered] = field(default_factory=list)
    #: frames whose tag did not verify, or that hold no record (forged or damaged): never chained, reported
    forged: int = 0
    pid: int = 0
    #: the lowest floor of its frames: none of its records can be in the store before that seq
    floor: int | None = None

    def spans(self) -> set[str]:
        return {r.span_id for r in self.records if r.span_id}

    def release(self, *, remove: bool) -> None:
        with contextlib.suppress(OSError):
            if remove:
                self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self.fd)


def orphans(store: Path, key: bytes | None, store_id: str = "") -> Iterator[Orphan]:
    """Journals of ``store`` whose owner is gone, locked for the caller (release each). With ``key``, frames are
    checked against it and ``store_id`` (the store's own id: a journal planted from another store fails)."""
    d = wal_dir(store)
    try:
        names = sorted(os.listdir(d))
    except (FileNotFoundError, NotADirectoryError):
        return
    if key is not None and not store_id:
        raise ValueError("frames can only be checked against the store's id")
    jkey = journal_key(key, store_id) if key is not None else None
    for name in names:
        if not _NAME.match(name) or name in _mine:
            continue
        p = d / name
        try:
            fd = os.open(p, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)  # a planted link is not a journal
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            gone = os.fstat(fd).st_nlink == 0
        except OSError:
            os.close(fd)  # its owner is alive
            continue
        if gone:  # recovered (and removed) by someone else between our open and our lock
            os.close(fd)
            continue
        try:
            orphan = _read(p, fd, jkey)
        except (OSError, ValueError, struct.error) as e:
            log.error("governed_db audit: cannot read the journal %s (%s); it is left in place", p, e)
            os.close(fd)
            continue
        if orphan is None:  # not a journal: leave it
            os.close(fd)
            continue
        if not orphan.label:  # its writer died creating it: nothing was ever journaled there
            orphan.release(remove=True)
            continue
        yield orphan


#: no writer makes a larger journal: a larger file is not read (its records would all be held in memory)
MAX_SIZE = 16 * DEFAULT_SIZE


def _read(path: Path, fd: int, jkey: bytes | None) -> Orphan | None:
    size = os.fstat(fd).st_size
    if size > MAX_SIZE:
        raise ValueError(f"{size} bytes, larger than any journal a writer makes")
    if size < HEADER_SIZE:
        return Orphan(path, fd, b"", pid=0) if size == 0 else None
    # read, not mapped: a journal truncated by someone else while it is read (its writer is gone, but anyone with
    # write access can) then reads short — a mapping would raise SIGBUS in the recovering process, a writer
    data = _pread_all(fd, size)
    size = len(data)
    if size < HEADER_SIZE:
        return None
    magic, epoch, consumed, label, pid = _HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        return Orphan(path, fd, b"", pid=0) if not any(data[:HEADER_SIZE]) else None
    orphan = Orphan(path, fd, bytes(label), pid=pid)
    tagged = orphan.label != _NO_KEY
    check = jkey is not None and tagged
    pos = max(HEADER_SIZE, min(consumed, size))
    while pos + _FRAME.size <= size:
        length, crc = _FRAME.unpack_from(data, pos)
        end = pos + _FRAME.size + length
        if length <= _START.size or end > size:
            break
        payload = data[pos + _FRAME.size:end]
        ep, number, floor = _START.unpack_from(payload, 0)
        if ep != epoch % 2**32 or zlib.crc32(payload) != crc:
            break  # torn (the writer died copying it: its statement had not run), or of an earlier round
        pos = end
        if tagged:
            payload, tag = payload[:-_TAG], payload[-_TAG:]
            if check and jkey is not None and not hmac.compare_digest(
                    hashlib.blake2b(payload, key=jkey, digest_size=_TAG).digest(), tag):
                orphan.forged += 1
                continue
        try:
            items = list(_items(payload, number))
        except (ValueError, struct.error):
            items = []
        if not items or not all(rec.valid() for rec in items):
            orphan.forged += 1  # garbled, or crafted with a valid CRC: never chained, never shown
            continue
        orphan.records.extend(items)
        orphan.floor = floor if orphan.floor is None else min(orphan.floor, floor)
    return orphan


def _pread_all(fd: int, size: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < size:
        chunk = os.pread(fd, size - got, got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _items(payload: bytes, number: int) -> Iterator[Recovered]:
    pos = _START.size
    while pos < len(payload):
        kind, a, b, rseq, rno = _ITEM.unpack_from(payload, pos)
        pos += _ITEM.size
        first, second = payload[pos:pos + a], payload[pos + a:pos + a + b]
        pos += a + b
        if kind == PAIR:
            yield Recovered((first, second), None, number)
        elif kind == OUTCOME:
            yield Recovered((first, second), (rseq, rno), number)
        elif kind == GENERIC:
            yield Recovered((first,), None, number)
        else:
            raise ValueError(f"unknown journal item kind {kind}")
        number += 1


def resolve(records: list[Recovered], known: dict[tuple[str, str], int]) -> list[Recovered]:
    """The records still to chain, in order. Those the store already holds (``known``: (type, span id) -> seq,
    from its tail: a drain that wrote them but died before moving the consumed mark) are dropped; an outcome
    learns its intent's seq from its frame, from the store, or from the intent recovered before it."""
    by_frame: dict[int, Recovered] = {}
    out: list[Recovered] = []
    for rec in records:
        by_frame[rec.frame] = rec
        held = known.get((rec.type, rec.span_id))
        if held is not None:
            rec.seq = held
            continue
        ref = rec.intent
        if ref is not None:
            seq, frame = ref
            if seq < 0:
                intent = by_frame.get(frame)
                if intent is not None and intent.span_id == rec.span_id:
                    rec.intent = intent if intent.seq < 0 else intent.seq
                else:
                    seq = known.get((R.INTENT, rec.span_id), -1)
                    if seq < 0:
                        log.warning("governed_db audit: a recovered outcome's statement is not in the store; "
                                    "it is left out")
                        continue
                    rec.intent = seq
            else:
                rec.intent = seq
        out.append(rec)
    return out


def _after_fork_in_child() -> None:
    global _live_lock
    _live[0] = 0  # the parent's journals are abandoned by their stores in the child
    _mine.clear()  # and stay the parent's: its lock keeps them from the child's recoveries
    _live_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
