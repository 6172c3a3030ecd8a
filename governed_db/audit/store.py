"""The append-only audit store: JSONL files, one linear hash chain, many writers.

Why a JSONL file (see docs/decisions/0030-audit-store-jsonl.md): one
``write()`` per record is the whole durability story — once it returns the
record is in the kernel's page cache and survives SIGKILL of the writer;
``fsync`` runs on a timer (``fsync_interval``) so power loss costs at most that
window. Writers in many threads and processes serialise on a thread lock plus
``flock`` on the file; under the lock a writer ``stat``s the path — the size
tells whether another process appended since (then it re-reads the chain
head), the inode whether the file was renamed away by rotation (then the chain
continues in the file at the path). The chain therefore stays one line,
whoever writes, across files (:mod:`governed_db.audit.segments`).

Records that need not reach the OS before the caller goes on (a successful
statement's outcome, a result record) are *deferred*: they travel in the
same ``write()``, under the same lock, as the next record — normally the
next statement's intent — or the flusher thread writes them within
``DEFER_INTERVAL`` (docs/decisions/0145-audit-deferred-outcomes.md).

With a key, every format-2 record carries a MAC (``tag``) of its hash; every
``checkpoint_every`` records, every ``checkpoint_interval`` seconds when quiet,
on close and at rotation a checkpoint is written, fsynced, and the
authenticated sidecar ``<store>.anchor`` is replaced to name it (and sent to
the witness, if one is configured), so rewriting the chain, forging records or
cutting the file back past the anchor is detectable by ``verify``
(docs/decisions/0036-audit-keyed-tamper-evidence.md).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import hmac
import itertools
import json
import logging
import math
import os
import stat
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from governed_db._native import speedups
from governed_db.audit import journal as J
from governed_db.audit import records as R
from governed_db.audit import segments
from governed_db.audit.segments import _first_record, open_regular, raw_lines, store_files
from governed_db.errors import ConfigurationError, GovernedDBError

log = logging.getLogger("governed_db.audit")

_TAIL_WINDOW = 8 * 1024  # a few records; grown when one record is longer
#: deferred records (statement outcomes, result records) reach the OS at the latest this many seconds later
DEFER_INTERVAL = 0.5
#: so many deferred records wake the flusher at once (memory stays bounded under bursts)
_MAX_DEFERRED = 256
#: so many records waiting in the journal are chained into the store by the statement that finds them there
_DRAIN_AT = 64
_stores: weakref.WeakSet[AuditStore] = weakref.WeakSet()
_monotonic = time.monotonic  # the clock of the path check (a test moves it on)
#: the C chaining of templated records (governed_db/_speedups.c), or None: the Python loop of _write_many
_native_chain = speedups.chain if speedups is not None else None
#: the C builders of a statement's intent and outcome on their usual path (decision 0396), or None
_native_intent = speedups.journal_intent if speedups is not None else None
_native_outcome = speedups.defer_outcome if speedups is not None else None


class AuditStoreError(GovernedDBError):
    """The audit store cannot be written (its tail is damaged, the disk is full, ...)."""


def anchor_path(path: Path) -> Path:
    return path.with_name(path.name + ".anchor")


class AuditStore:
    """Appends hash-chained records to ``path``; safe across threads and processes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: str | bytes | None = None,
        fsync_interval: float | None = 1.0,
        checkpoint_every: int = 1000,
        checkpoint_interval: float | None = 60.0,
        idle_close: float | None = 60.0,
        rotate_bytes: int | None = 64 * 1024 * 1024,
        retain_bytes: int | None = None,
        retain_age: float | None = None,
        witness: str | Any = None,
        witness_table: str | None = None,
        stat_interval: float = 0.0,
        journal: bool = True,
    ) -> None:
        if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
            raise ConfigurationError(f"the audit store path must be a non-empty str or path, got {path!r}")
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / "audit.jsonl"
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
            raise ConfigurationError(f"checkpoint_every must be an integer >= 1, got {checkpoint_every!r}")
        _seconds("fsync_interval", fsync_interval, zero=True)
        _seconds("checkpoint_interval", checkpoint_interval, zero=False)
        _seconds("idle_close", idle_close, zero=False)
        _seconds("stat_interval", stat_interval, zero=True, optional=False)
        for name, value in (("rotate_bytes", rotate_bytes), ("retain_bytes", retain_bytes),
                            ("retain_age", retain_age)):
            _seconds(name, value, zero=False, unit="a positive number")
        if key is not None and (not isinstance(key, (str, bytes, bytearray)) or not key):
            # bytes(42) would be a key of 42 zero bytes, and "" no key at all: both silently weaker than asked
            raise ConfigurationError(f"the audit key must be a non-empty str or bytes (or None), got "
                                     f"{type(key).__name__}{' (empty)' if isinstance(key, (str, bytes)) else ''}")
        if not isinstance(journal, bool):
            raise ConfigurationError(f"journal must be True or False, got {journal!r}")
        _check_store_file(p, key)
        if witness_table is not None and not isinstance(witness_table, str):
            raise ConfigurationError(f"witness_table must be a table name, got {type(witness_table).__name__}")
        self.path = p.resolve()
        self._path_str = str(self.path)
        #: the live file is sealed and renamed to ``<name>.<first seq>`` once it is this large; the chain
        #: continues in a new file (see :mod:`governed_db.audit.segments`)
        self.rotate_bytes = rotate_bytes
        #: rotated files beyond this total size, or older than this many seconds, are removed, leaving a
        #: sealed ``retention`` record that summarises them
        self.retain_bytes = retain_bytes
        self.retain_age = retain_age
        #: where anchored checkpoints are also sent (a PostgreSQL DSN, or a Witness), so that a rollback of
        #: store *and* anchor is detectable (see :mod:`governed_db.audit.witness`)
        self.witness: Any = None
        if witness is not None:
            from governed_db.audit.witness import DEFAULT_TABLE, Witness

            self.witness = witness if isinstance(witness, Witness) else Witness(
                witness, table=witness_table or DEFAULT_TABLE)
        self.key = R.key_bytes(key)
        self._rkey = R.record_key(self.key) if self.key is not None else None
        self.fsync_interval = fsync_interval
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        #: seal and close the file (and end the flusher thread) after this long without appends, so
        #: processes that touch many stores do not keep a descriptor and a thread for each
        self.idle_close = idle_close
        self._last_append = time.monotonic()
        self._sealed_at = time.monotonic()
        self._lock = threading.Lock()
        self._fd = -1
        self._pid = -1
        self._end = -1  # file size right after our last write; -1 = unknown
        self._seq = -1
        self._hash = R.GENESIS_PREV
        self._last_type = ""
        self._store_id = ""
        self._dirty = False
        self._file_id: tuple[int, int] = (0, 0)
        self._file_ino: tuple[int, int] = (0, 0)  # (ino, dev): the fast path compares the likelier-to-differ first
        #: bytes the next write starts with: the newline a complete last record lost to a crash
        self._prefix = b""
        #: the highest seq this writer knows the anchor names (checkpoints record it: a replayed older
        #: anchor is then detectable)
        self._anchored = -1
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pending_anchor: dict[str, Any] | None = None
        #: (store id, seq, hash) of the file we left when it was rotated away: a new, empty file at the path
        #: starts with a segment record continuing that chain
        self._carry: tuple[str, int, str] | None = None
        self._first_seq = 0  # seq of the first record in the current file
        self._pending_retention = False  # rotated: apply retention once the next file is started
        self._flusher: threading.Thread | None = None
        #: records that may wait for the next write (statement outcomes, result records): they travel in
        #: the same write() as the next intent, or the flusher writes them within ``defer_interval``
        self._deferred: list[Mapping[str, Any] | R.Prepared] = []
        #: when the path is next ``stat``ed to notice external rotation (see :meth:`_lock_file`)
        self._next_stat = 0.0
        self.stat_interval = stat_interval
        #: statement intents go to a memory-mapped write-ahead journal, chained into the store by the flusher
        #: thread (docs/decisions/0205-audit-journal.md); off without a flusher or with an fsync per record
        self.journal = bool(journal)
        self._journal: J.Journal | None = None
        #: orphaned journals (of processes that died) are chained in at the first locked write
        self._recover_due = True
        #: the last attempt to chain the journal into the store failed: intents go to the store directly
        #: (and are refused in production) until a write succeeds
        self._failing = False
        #: a journal of this store was truncated under it: intents are written directly for the store's life
        self._journal_lost = False
        self.appended = 0
        _stores.add(self)

    def __repr__(self) -> str:
        return f"<AuditStore {str(self.path)!r}>"

    # -- writing -------------------------------------------------------------------------------
    def append(self, body: Mapping[str, Any] | R.Prepared) -> int:
        """Chain and write one record; returns its ``seq``. The write() has happened on return.

        What waits (the journal's records, deferred ones) goes out first, in the same write().
        """
        with self._lock:
            fd = self._lock_file()
            rotated = False
            try:
                before = self._seq
                if self._deferred or self._journal is not None:
                    seq = self._write_pending(fd, body)
                else:
                    seq = self._write(fd, body)
                if seq // self.checkpoint_every != before // self.checkpoint_every:
                    # with a flusher thread the statement never waits for the checkpoint's fsync
                    self._checkpoint(fd, inline=self._flusher is None)
                if self.rotate_bytes is not None and self._end >= self.rotate_bytes:
                    rotated = self._rotate(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            if rotated:
                # start the next file now, so that the path always holds the live file
                fcntl.flock(self._lock_file(), fcntl.LOCK_UN)
        if self.fsync_interval == 0:
            self.sync()
        return seq

    def append_intent(self, rec: R.PreparedIntent) -> None:
        """A statement's intent, on the OS's side before the caller goes on (the statement path).

        With the journal, the intent (after the outcomes deferred before it) is copied into this process's
        memory-mapped journal: no lock file, no system call; the flusher chains it into the store. Otherwise,
        or when the journal is full, it is appended here. ``rec.seq`` is its place in the chain once written.
        """
        j = self._journal
        if j is not None and j.pid == _PID[0] and not self._failing:
            with j.lock:
                deferred = j.deferred
                if not deferred:
                    waiting = j.put_intent(rec, None, self._seq, self._store_id)
                elif len(deferred) == 1 and type(deferred[0]) is R.PreparedOutcome:
                    waiting = j.put_intent(rec, deferred[0], self._seq, self._store_id)
                else:
                    waiting = self._put_with_deferred(j, rec)
            if waiting:
                if waiting >= _DRAIN_AT:
                    # a busy connection chains its journal into the store itself, a batch at a time: cheaper
                    # than handing the GIL to the flusher thread mid-statement (docs/decisions/0205-audit-journal.md)
                    self.flush()
                return
            # the journal is full or closed: write through the store, which drains the journal first
        self.append(rec)

    def intent(self, head: bytes, parent: int | None, pid: int, span_id: int, time_ns: int,
               trace_id: int) -> R.PreparedIntent:
        """A statement's intent record from its prepared ``head`` and ids, appended (:meth:`append_intent`).

        On the usual path — this process's journal, the store not failing — one C call builds the record and
        journals it exactly as the code below does (decision 0396); it declines, changing nothing, whenever the
        path is another one.
        """
        j = self._journal
        if _native_intent is not None and j is not None and j.pid == _PID[0] and not self._failing:
            rec = _native_intent(self, j, head, parent, pid, span_id, time_ns, trace_id, _DRAIN_AT)
            if rec is not None:
                return rec  # type: ignore[no-any-return]
        rec = R.PreparedIntent(head, parent, pid, span_id, time_ns, trace_id)
        self.append_intent(rec)
        return rec

    def defer_outcome(self, late: dict[str, Any], end: int, intent: R.Prepared, span_id: int) -> R.PreparedOutcome:
        """The outcome of a statement that ended with no status set (a success), deferred (:meth:`defer`).

        One C call on the usual path (decision 0396), the same record and the same deferral as the code below.
        """
        if _native_outcome is not None:
            out = _native_outcome(self, late, end, intent, span_id, _PID[0], _MAX_DEFERRED)
            if out is not None:
                return out  # type: ignore[no-any-return]
        out = R.PreparedOutcome(dict(late) if late else {}, end=end, intent=intent, span_id=span_id, status="UNSET",
                                status_message=None)
        self.defer(out)
        return out

    def _put_with_deferred(self, j: J.Journal, rec: R.PreparedIntent) -> int:
        """:meth:`J.Journal.put_intent` for several deferred records (caller holds ``j.lock``)."""
        if j.closed:  # closed meanwhile (idle_close)
            return 0
        items = self._journal_deferred(j)
        a, b = rec.pieces
        items.append((rec, J.PAIR, a, b, -1, -1))
        if not j.put(items, self._seq, self._store_id):
            for item in items:  # not journaled: they stay deferred, and the store writes them first
                if isinstance(item[0], R.Prepared):
                    item[0].cached = None
            return 0
        if len(items) > 1:
            del j.deferred[: len(items) - 1]
        return len(j.queue)

    def _journal_deferred(self, j: J.Journal) -> list[tuple[Any, int, bytes, bytes, int, int]]:
        """Journal items for the records deferred since the last intent, which go into the journal ahead of the
        next one (caller holds ``j.lock``); stops at one that cannot be framed (it and the rest stay deferred)."""
        items: list[tuple[Any, int, bytes, bytes, int, int]] = []
        for rec in j.deferred:
            try:
                if isinstance(rec, R.PreparedOutcome):
                    intent = rec.intent
                    pre, tail = rec.cached = rec.pieces()
                    items.append((rec, J.OUTCOME, pre, tail, rec.intent_seq(),
                                  intent.frame if isinstance(intent, R.Prepared) else -1))
                else:
                    whole = R.canonical(rec.body() if isinstance(rec, R.Prepared) else rec)
                    items.append((rec, J.GENERIC, whole, b"", -1, -1))
            except (TypeError, ValueError, orjson.JSONEncodeError):
                break
        return items

    def defer(self, body: Mapping[str, Any] | R.Prepared) -> None:
        """Queue a record that need not reach the OS before the caller goes on (a statement's outcome).

        It is written together with the next :meth:`append` (one lock, one write()), or by the flusher thread
        within ``DEFER_INTERVAL`` seconds, or at :meth:`flush`/:meth:`checkpoint`/:meth:`close` and before a
        reader in this process opens the store — whichever comes first. A crash before then loses only what
        was deferred: for an outcome, its statement reads as "outcome unknown", never as missing.
        Without a flusher thread (``fsync_interval`` and ``checkpoint_interval`` both off) it is written now.
        """
        if self._fd < 0 or self._flusher is None or self._pid != _PID[0]:  # closed, or no thread to flush
            self.append(body)
            return
        j = self._journal
        if j is not None:
            with j.lock:
                if not j.closed:
                    j.deferred.append(body)
                    if len(j.deferred) >= _MAX_DEFERRED:
                        self._wake.set()
                    return
            self.append(body)  # the store was closed meanwhile (idle_close): written now, it reopens
            return
        with self._lock:
            self._deferred.append(body)
            if len(self._deferred) >= _MAX_DEFERRED:
                self._wake.set()

    def amend(self, record: R.PreparedOutcome, attrs: Mapping[str, Any]) -> bool:
        """Add ``attrs`` to a deferred outcome not written yet (a result's row counts travel in its statement's
        outcome record); False once it was written — the caller then records them separately."""
        j = self._journal
        with j.lock if j is not None else self._lock:
            if record.written:
                return False
            record.attrs.update(attrs)
            return True

    def flush(self) -> None:
        """Write the deferred records, and what waits in the journal, now."""
        if not self._waiting():
            return
        with self._lock:
            if not self._waiting():
                return
            try:
                fd = self._lock_file()
                try:
                    rotated = self._flush_deferred(fd)
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                if rotated:
                    fcntl.flock(self._lock_file(), fcntl.LOCK_UN)  # the next file, as append() starts it
            except BaseException:
                # the store cannot be written: statements stop going to the journal, so the next one tries the
                # store itself and is refused in production while it fails (what waits stays journaled)
                self._failing = True
                raise

    def _waiting(self) -> bool:
        j = self._journal
        return bool(self._deferred or (j is not None and (j.queue or j.deferred)))

    def _write_pending(self, fd: int, body: Mapping[str, Any] | R.Prepared | None = None) -> int:
        """Write the journal's records, then the deferred ones, then ``body``, in ONE write() (both locks held);
        returns the last seq. On failure everything stays waiting, in order."""
        j = self._journal
        items: list[Any] = []
        waiting: list[Any] = []
        upto = 0
        if j is not None and j.broken:
            # truncated by another process (Journal._truncated): what it held is written from memory now, and
            # this store journals no more (docs/decisions/0326-a-live-journal-truncated-or-planted-and-anchor-fields.md)
            items, waiting = j.detach()
            self._journal, self._journal_lost = None, True
            j.close(remove=True)  # what its file held is gone; what it held in memory is written below
            j = None
            self._deferred[:0] = [*items, *waiting]
            items, waiting = [], []
        elif j is not None:
            items, waiting, upto = j.take()
        bodies, self._deferred = [*items, *waiting, *self._deferred], []
        if body is not None:
            bodies.append(body)
        if not bodies:
            return self._seq
        try:
            seq = self._write_many(fd, bodies)
        except BaseException:
            if j is not None:
                j.give_back(items, waiting)
            self._deferred[:0] = bodies[len(items) + len(waiting): len(bodies) - (body is not None)]
            raise
        if j is not None:
            j.consumed(upto)
        return seq

    def _flush_deferred(self, fd: int) -> bool:
        """Write what waits (both locks held); True when that filled the file and it was rotated (the caller
        starts the next one once it has let go of the lock)."""
        if not self._waiting():
            return False
        before = self._seq
        self._write_pending(fd)
        if self._seq // self.checkpoint_every != before // self.checkpoint_every and self._last_type != R.CHECKPOINT:
            self._checkpoint(fd, inline=self._flusher is None)
        # the journal's records reach the store here, not through append(): without this check a store written
        # by statements (the default, journaled path) grew past rotate_bytes for ever, and retention never ran
        return self.rotate_bytes is not None and self._end >= self.rotate_bytes and self._rotate(fd)

    def checkpoint(self, *, inline: bool = True, reason: str = "explicit") -> None:
        """Seal the chain head now (also done every ``checkpoint_every`` records and on close).

        ``inline=False`` leaves the fsync and the anchor to the flusher thread.
        """
        with self._lock:
            fd = self._lock_file()
            try:
                # rotated: this file was sealed and renamed; the next one is started below and sealed in its turn
                rotated = self._flush_deferred(fd)
                if not rotated and self._last_type != R.CHECKPOINT:
                    self._checkpoint(fd, inline=inline or self._flusher is None, reason=reason)
                elif not rotated and inline and self._pending_anchor is not None:
                    os.fsync(fd)
                    self._publish_locked(fd, self._pending_anchor)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            if rotated:
                fd = self._lock_file()
                try:
                    self._checkpoint(fd, inline=inline or self._flusher is None, reason=reason)
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def sync(self) -> None:
        """fsync what has been written (the flusher thread does this every ``fsync_interval``)."""
        if self._waiting():
            self.flush()
        fd = self._fd
        if fd >= 0 and self._pid == os.getpid():
            self._dirty = False
            try:
                os.fsync(fd)
            except OSError as e:  # closed concurrently: nothing left to sync
                if e.errno != errno.EBADF:
                    raise

    def close(self) -> None:
        """Checkpoint, fsync and close; the store reopens by itself if appended to again."""
        if self._fd >= 0 and self._pid == os.getpid():
            try:
                if self._waiting():
                    self.flush()
                if self._seq >= 0 and self._same_file():  # never create a store just to seal it
                    self.checkpoint(reason="close")
                self.sync()
                if self.witness is not None and not self.witness.flush():
                    log.error("governed_db audit: the witness did not confirm the last checkpoints of %s in time",
                              self.path)
            finally:
                with self._lock:
                    j = self._journal
                    keep = False
                    if j is not None:
                        # no statement is copying into it now, and none will (they see it closed)
                        framed, waiting = j.detach()
                        self._journal = None
                        left = [*framed, *waiting]
                        if left:
                            # journaled by statements after the flush above (the flusher closing an idle store
                            # while a statement ran): written now, not left to a recovery that would lose outcomes
                            self._deferred[:0] = left
                            try:
                                fd = self._lock_file()
                                try:
                                    self._write_pending(fd)
                                finally:
                                    fcntl.flock(fd, fcntl.LOCK_UN)
                            except (OSError, AuditStoreError) as e:
                                keep = True  # their frames stay for recovery
                                self._deferred = [r for r in self._deferred if r not in framed]
                                log.error("governed_db audit: writing the journal of %s at close failed: %s",
                                          self.path, e)
                    self._stop.set()
                    self._wake.set()
                    for journal in (j, self._journal):
                        if journal is not None:
                            journal.close(remove=not keep or journal is not j)
                    self._journal = None
                    if self._fd >= 0:
                        os.close(self._fd)
                    self._fd = -1
                    self._end = -1
                    flusher = self._flusher
                # an anchor the flusher is publishing lands before close() returns (the directory may go next)
                if flusher is not None and flusher is not threading.current_thread() and flusher.is_alive():
                    flusher.join(timeout=5.0)

    # -- internals (called with self._lock held and, for the file, the flock) --------------------
    def _lock_file(self) -> int:
        """Open if needed, take the file lock, and bring the chain head up to date; returns the descriptor."""
        fd = self._fd
        if fd >= 0 and self._pid == _PID[0] and not self.stat_interval:
            # the usual case, without the retry loop's clock reads: our file, still at the path, nobody else
            # appended since our last write (one stat of the path tells all three)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                st = os.stat(self._path_str)
            except FileNotFoundError:
                st = None
            if st is not None and st.st_size == self._end and (st.st_ino, st.st_dev) == self._file_ino:
                return fd
            fcntl.flock(fd, fcntl.LOCK_UN)
        return self._lock_file_slow()

    def _lock_file_slow(self) -> int:
        # a file can be rotated away between our open() and our flock() (another writer rotating fast):
        # retry for a while rather than a fixed number of times, so a busy rotating writer cannot starve us
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            fd = self._ensure_open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self.stat_interval and self._end >= 0:
                # the cheap check: the file's size (lseek, no path lookup) tells whether anyone else wrote —
                # another writer's rotation always writes a sealing checkpoint first; a rename by someone
                # else (log rotation) is noticed by the path stat below at most ``stat_interval`` later,
                # the records written meanwhile chained in the renamed file
                now = _monotonic()
                if now < self._next_stat and os.lseek(fd, 0, os.SEEK_END) == self._end:
                    return fd
                self._next_stat = now + self.stat_interval
            # one stat of the *path* per append: it gives the size, and tells a file renamed away (external
            # log rotation), deleted or replaced from the file we hold — fstat would not see a rename
            try:
                st = os.stat(self._path_str)
            except FileNotFoundError:
                st = None
            if st is not None and (st.st_dev, st.st_ino) == self._file_id:
                if st.st_size != self._end:
                    try:
                        self._refresh(fd, st.st_size)
                    except BaseException:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                        raise
                if self._recover_due:
                    self._recover_due = False
                    try:
                        self._recover_journals(fd)
                    except (OSError, AuditStoreError, ValueError) as e:
                        log.error("governed_db audit: recovering write-ahead journals of %s failed: %s",
                                  self.path, e)
                return fd
            # renamed, deleted or replaced under us: continue the chain in the file now at the path
            try:
                self._leave_file(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        raise AuditStoreError(f"{self.path} keeps being removed while governed_db writes to it")

    def _recover_journals(self, fd: int) -> int:
        """Chain in the records journaled by processes that died (both locks held); returns how many."""
        if not J.wal_dir(self.path).is_dir():
            return 0
        if self.key is not None and not self._store_id:
            self._recover_due = True  # the frames' tags name the store: checked once its id is known
            return 0
        mine = self._journal.path if self._journal is not None else None
        label = J.key_label(self.key)
        total = 0
        for orphan in J.orphans(self.path, self.key, self._store_id):
            if orphan.path == mine:
                orphan.release(remove=False)
                continue
            if orphan.label != label and orphan.records:
                log.error("governed_db audit: the journal %s was written with another key; it is left for a "
                          "writer with that key", orphan.path)
                orphan.release(remove=False)
                continue
            try:
                recs = J.resolve(orphan.records, _held(self.path, orphan, self._seq))
                if recs:
                    self._write_many(fd, recs)
                    total += len(recs)
            except BaseException:
                orphan.release(remove=False)
                raise
            if orphan.forged:
                log.error("governed_db audit: %d frame(s) of the journal %s fail their tag or hold no record (forged or "
                          "damaged) "
                          "and were not chained; the file is kept as %s.rejected", orphan.forged, orphan.path,
                          orphan.path.name)
                with contextlib.suppress(OSError):
                    orphan.path.rename(orphan.path.with_name(orphan.path.name + ".rejected"))
                orphan.release(remove=False)
            else:
                orphan.release(remove=True)
            if recs:
                log.warning("governed_db audit: chained %d record(s) a process (pid %d) left in its journal",
                            len(recs), orphan.pid)
        return total

    def _rotate(self, fd: int) -> bool:
        """Seal the live file and rename it away (both locks held); the caller then starts the next file."""

        if not self._same_file():
            return False  # rotated away already (by another writer, or externally)
        self._checkpoint(fd, inline=True, reason="rotate")
        rotated = segments.rotated_name(self.path, self._first_seq)
        os.rename(self.path, rotated)
        log.info("governed_db audit: rotated %s to %s", self.path, rotated.name)
        self._carry = (self._store_id, self._seq, self._hash)
        self._pid = -1  # reopen at the path
        if self.retain_bytes is not None or self.retain_age is not None:
            self._pending_retention = True
        return True

    def _leave_file(self, fd: int) -> None:
        """Our file is no longer at the path: learn its final head, so the next file continues the chain."""
        try:
            st = os.fstat(fd)
            if st.st_nlink == 0:  # deleted (e.g. delete_store): whatever comes next is a new store
                self._carry = None
            else:
                if st.st_size != self._end:
                    self._refresh(fd, st.st_size)
                self._carry = (self._store_id, self._seq, self._hash) if self._seq >= 0 else None
        except (OSError, AuditStoreError):
            self._carry = None
        log.warning(
            "governed_db audit: %s was renamed, removed or replaced while in use (log rotation?); the chain "
            "continues in the file now at that path",
            self.path,
        )
        self._pid = -1  # reopen

    def _ensure_open(self) -> int:
        if self._fd >= 0 and self._pid == _PID[0]:
            return self._fd
        # first use, or first use in a forked child: the inherited descriptor shares the parent's
        # open file description, and flock would not exclude the two processes from each other.
        if self._fd >= 0:
            # forgotten at once: if the open() below fails, a later call must not close this number again — by
            # then it may be another file's (a database's, or another store's)
            fd, self._fd = self._fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)
        self._stop.set()  # the previous flusher thread, if any, ends
        self._wake.set()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC,
                     0o600)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            # a FIFO or device put at the path while we write: a write into it blocks (for ever, once a pipe
            # is full) or goes nowhere — refuse, as for a store that cannot be written
            os.close(fd)
            raise AuditStoreError(f"{self.path} is no longer a regular file (a pipe, socket or device was put "
                                  "there); records cannot be written")
        os.set_blocking(fd, True)
        self._fd = fd
        self._file_id = (st.st_dev, st.st_ino)
        self._file_ino = (st.st_ino, st.st_dev)
        self._pid = os.getpid()
        self._end = -1
        self._store_id = ""  # the file at the path may be another store now
        self._pending_anchor = None
        self._last_append = time.monotonic()
        if self.fsync_interval or self.checkpoint_interval:
            self._stop, self._wake = threading.Event(), threading.Event()
            self._flusher = threading.Thread(
                target=self._flush_loop, name="governed_db-audit-fsync", daemon=True
            )
            self._flusher.start()
            if self.journal and self.fsync_interval != 0 and self._journal is None and not self._journal_lost:
                try:
                    self._journal = J.Journal(self.path, self.key, J.DEFAULT_SIZE)
                except J.TooMany:
                    pass  # a process with that many stores open: this one writes its intents directly
                except (OSError, ValueError) as e:  # no room, no mmap: every record is written directly
                    log.warning("governed_db audit: no write-ahead journal for %s (%s); records are written "
                                "directly", self.path, e)
        self._recover_due = True
        return self._fd

    def _same_file(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == self._file_id

    def _flush_loop(self) -> None:
        """fsync every ``fsync_interval``; seal a quiet chain every ``checkpoint_interval``."""
        stop, wake = self._stop, self._wake
        interval = min(i for i in (self.fsync_interval, self.checkpoint_interval, self.idle_close, DEFER_INTERVAL)
                       if i)
        while True:
            wake.wait(interval)
            wake.clear()
            if stop.is_set():
                return
            if self._waiting():
                try:
                    self.flush()
                except (OSError, AuditStoreError) as e:
                    log.error("governed_db audit: writing deferred records to %s failed: %s", self.path, e)
            if self.idle_close and time.monotonic() - self._last_append >= self.idle_close:
                try:
                    self.close()
                except (OSError, AuditStoreError) as e:
                    log.error("governed_db audit: closing idle %s failed: %s", self.path, e)
                return
            try:
                if (
                    self.checkpoint_interval
                    and self._last_type != R.CHECKPOINT
                    and time.monotonic() - self._sealed_at >= self.checkpoint_interval
                ):
                    self.checkpoint(inline=False, reason="time")
                pending = self._pending_anchor
                if pending is not None:
                    # fsync outside the lock (appends go on meanwhile); it covers `pending`, written before it
                    self.sync()
                    self._publish_in_background(pending)
                elif self._dirty and self.fsync_interval:
                    self.sync()
            except (OSError, AuditStoreError) as e:
                log.error("governed_db audit: background fsync/checkpoint of %s failed: %s", self.path, e)

    def _write(self, fd: int, body: Mapping[str, Any] | R.Prepared, *, prefix: bytes = b"") -> int:
        return self._write_many(fd, (body,), prefix=prefix)

    def _write_many(self, fd: int, bodies: Sequence[Mapping[str, Any] | R.Prepared], *, prefix: bytes = b"") -> int:
        """Chain ``bodies`` and write them with ONE write(); returns the last ``seq``.

        The chain head moves only once the bytes are written: a failed write leaves it where it was.
        """
        seq, rkey = self._seq, self._rkey
        prev = self._hash.encode("ascii")  # the chain head, as the bytes every line carries
        end = R.hash_end(rkey is not None)
        lines: list[bytes] = []
        append = lines.append
        chain, prepared, max_line = R.chain_prepared, R.Prepared, R.MAX_LINE
        native, templated = _native_chain, (R.PreparedIntent, R.PreparedOutcome)
        kind = ""
        i, count = 0, len(bodies)
        while i < count:
            body = bodies[i]
            if native is not None and type(body) in templated:
                # a run of templated records chained in C: the same bytes as the loop below
                done, data, last, t = native(bodies, i, seq, prev, rkey, max_line)
                if done:
                    append(data)
                    seq, prev, kind, i = seq + done, last, t, i + done
                    continue
            i += 1
            seq += 1
            if isinstance(body, prepared):
                body.seq = seq  # outcomes later in this batch name it (reset below if the write fails)
                # the statement hot path: templated bytes, identical to encode() of its body
                try:
                    line = chain(body, seq, prev, rkey)
                except (TypeError, ValueError, orjson.JSONEncodeError):
                    line = b""
                body.written = True
                if line and len(line) <= max_line:
                    append(line)
                    prev, kind = line[end - 64 : end], body.type
                    continue
                body = body.body()  # unusual values or an oversized record: the general path below
            rec = dict(body)
            rec["seq"] = seq
            rec["prev"] = prev.decode("ascii")
            line, digest = R.encode(rec, rkey)
            if len(line) > max_line:
                line, digest = R.encode(_shortened(rec), rkey)
            append(line)
            prev = digest.encode("ascii")
            kind = rec.get("type", "")
        digest = prev.decode("ascii")
        data = lines[0] if len(lines) == 1 else b"".join(lines)
        owed = self._prefix
        if self._prefix:
            prefix, self._prefix = self._prefix + prefix, b""
        if prefix:
            data = prefix + data
        n = 0
        try:
            n = os.write(fd, data)
            if n != len(data):  # a short write (e.g. a signal or a full disk): finish it or raise
                view = memoryview(data)[n:]
                while view:
                    k = os.write(fd, view)
                    n += k
                    view = view[k:]
        except BaseException:
            for body in bodies:
                if isinstance(body, R.Prepared):
                    body.seq = -1
            if n and self._end >= 0:
                # part of the batch reached the file (a full disk): take it back — we hold the lock, nobody
                # wrote after it — or its whole records would be chained again when the batch is retried
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, self._end)
                    n = 0
            if not n:
                self._prefix = owed
            raise
        self._end += len(data)
        self._failing = False
        self._seq, self._hash, self._last_type = seq, digest, str(kind)
        self._dirty = True
        self._last_append = time.monotonic()
        self.appended += len(bodies)
        return seq

    def _refresh(self, fd: int, size: int) -> None:
        """Another writer appended (or this is the first write): learn the chain head from the file."""
        try:
            self._read_head(fd, size)
        except BaseException:
            self._end = -1  # never chain onto a head that could not be read
            raise

    def _read_head(self, fd: int, size: int) -> None:
        self._end = size
        self._prefix = b""
        if size == 0:
            if self._carry is None and self._store_id and self._seq >= 0:
                # emptied in place (copy-and-truncate rotation): the chain goes on from the head we know
                self._carry = (self._store_id, self._seq, self._hash)
            self._start_file(fd)
            return
        self._carry = None
        if size <= _TORN_HEAD_MAX and _torn_head(os.pread(fd, size, 0)):
            # the file's first record (genesis, or the segment record of a rotated chain) was torn by a crash
            # before it was complete: it holds no statement, and no record was chained after it. Start the
            # file again (a file that was a store before keeps its anchor, which then names another store)
            log.warning("governed_db audit: %s held only a first record torn by a crash (%d bytes); started "
                        "again", self.path, size)
            os.ftruncate(fd, 0)
            self._end = 0
            self._start_file(fd)
            return
        opening = not self._store_id
        if not self._store_id:
            first = R.parse_line(os.pread(fd, min(size, R.MAX_LINE + 1), 0).split(b"\n", 1)[0])
            if first is None or first.get("type") not in (R.GENESIS, R.SEGMENT) or not first.get("store"):
                raise AuditStoreError(
                    f"{self.path} does not start with a governed_db genesis record; it is not an audit store "
                    "(or its head was damaged): run `governed-db audit verify` and use a new path"
                )
            problem = _key_mismatch(first, self.key)
            if problem:
                raise AuditStoreError(f"{self.path}: {problem}")
            self._store_id = str(first["store"])
            self._first_seq = int(first["seq"]) if isinstance(first.get("seq"), int) else 0
            self._anchored = _anchored_seq(anchor_path(self.path), self._store_id)
        found = _last_good_record(fd, size)
        if found is None:
            raise AuditStoreError(
                f"{self.path} holds no readable record to continue the chain from; run "
                "`governed-db audit verify` on it and point the application at a new store"
            )
        rec, good_end = found
        self._seq, self._hash, self._last_type = int(rec["seq"]), str(rec["hash"]), str(rec.get("type"))
        if good_end == size + 1:
            # a complete record that lost only its newline to a crash: it is the head; the newline goes
            # out with the next record (one write)
            self._prefix = b"\n"
        elif good_end < size:
            self._recover(fd, good_end, size)
        elif opening and self._last_type == R.CHECKPOINT and self._anchored < self._seq:
            # the store ends with a checkpoint the anchor does not name yet: a writer died between writing it
            # and publishing the anchor (or an older anchor was put back). Anchor what is really there.
            start = _line_start(fd, good_end - 1)
            os.fsync(fd)
            self._publish_locked(fd, self._anchor_for(self._seq, self._hash, start, int(rec.get("time") or 0)))

    def _start_file(self, fd: int) -> None:
        """An empty file: a new store (genesis), or the next file of a chain whose file was rotated away."""
        carry, self._carry = self._carry, None
        if carry is None:
            carry = _rotated_head(self.path)  # rotated away while no writer had it open: continue that chain
        if carry is not None:
            self._store_id, self._seq, self._hash = carry
            self._first_seq = self._seq + 1
            self._write(fd, {"v": R.FORMAT_VERSION, "type": R.SEGMENT, "time": time.time_ns(),
                             "store": self._store_id})
            if self._pending_retention:
                self._pending_retention = False
                self._retain(fd)
            return
        self._store_id = uuid.uuid4().hex
        self._seq, self._hash, self._anchored, self._first_seq = -1, R.GENESIS_PREV, -1, 0
        body: dict[str, Any] = {"v": R.FORMAT_VERSION, "type": R.GENESIS, "time": time.time_ns(),
                                "store": self._store_id}
        if self.key is not None:
            body["key_id"] = R.key_id(self.key)
        self._write(fd, body)
        # anchored from the first record on: with a key, a store without an anchor is then never intact
        self._pending_anchor = self._anchor_for(0, self._hash, 0, body["time"])
        os.fsync(fd)
        self._dirty = False
        self._publish_locked(fd, self._pending_anchor)

    def _retain(self, fd: int) -> None:
        """Remove rotated files past ``retain_bytes``/``retain_age``; a sealed summary is written first."""

        removed = segments.select_for_removal(self.path, self._store_id, retain_bytes=self.retain_bytes,
                                              retain_age=self.retain_age)
        if not removed:
            return
        summary = segments.retention_body(removed)
        self._write(fd, summary)
        os.fsync(fd)  # the summary is on disk before anything it describes is gone
        self._dirty = False
        for seg in removed:
            with contextlib.suppress(FileNotFoundError):
                seg.path.unlink()
        log.info("governed_db audit: retention removed %d file(s) of %s (seq %d-%d)", len(removed), self.path,
                 removed[0].first_seq, removed[-1].last_seq)

    def _recover(self, fd: int, offset: int, size: int) -> None:
        """A crash left half a record (or the tail is damaged): keep the bytes, chain a record accounting for them.

        Writing on rather than refusing keeps the application recorded; the damaged bytes stay in the file
        and ``verify`` lists them, so nothing is hidden. They are hashed in chunks: memory stays bounded
        however much garbage the tail holds.
        """
        import hashlib

        digest = hashlib.sha256()
        pos = offset
        last = b""
        while pos < size:
            chunk = os.pread(fd, min(_CHUNK, size - pos), pos)
            if not chunk:
                break
            digest.update(chunk)
            last = chunk[-1:]
            pos += len(chunk)
        # the fragment's terminating newline and the recovery record go out in ONE write(): a complete
        # unreadable line with no recovery record after it is then never a crash artefact
        self._write(
            fd,
            {
                "v": R.FORMAT_VERSION,
                "type": R.RECOVERY,
                "time": time.time_ns(),
                "torn_offset": offset,
                "torn_bytes": size - offset,
                "torn_sha256": digest.hexdigest(),
            },
            prefix=b"" if last == b"\n" else b"\n",
        )
        log.warning(
            "governed_db audit: %s ended with %d damaged bytes at offset %d (a record torn by a crash, or "
            "tampering); they are kept and accounted for by a recovery record — run `governed-db audit "
            "verify`",
            self.path,
            size - offset,
            offset,
        )

    def _anchor_violated(self, fd: int, target: Path) -> str | None:
        """Why the current anchor must not be replaced: the checkpoint it names is no longer in the store."""
        anchor = _read_anchor(target)
        if anchor is None:
            return None
        if anchor.get("store") != self._store_id:
            return "the anchor file is damaged or belongs to another store"
        offset = anchor.get("offset")
        if not isinstance(offset, int):
            return None  # written by a version that did not record offsets: nothing cheap to check
        if isinstance(anchor.get("seq"), int) and anchor["seq"] < self._first_seq:
            return None  # it names a checkpoint in an earlier (rotated) file
        rec = R.parse_line(os.pread(fd, _TAIL_WINDOW, offset).split(b"\n", 1)[0])
        if rec is not None and rec.get("seq") == anchor.get("seq") and rec.get("hash") == anchor.get("hash"):
            return None
        return (
            f"the checkpoint the anchor names (seq {anchor.get('seq')}) is no longer in the store: "
            "it was truncated or rewritten"
        )

    def _anchor_for(self, seq: int, digest: str, offset: int, now: int) -> dict[str, Any]:
        anchor: dict[str, Any] = {"v": R.FORMAT_VERSION, "store": self._store_id, "seq": seq, "hash": digest,
                                  "offset": offset, "time": now, "file": self.path.name}
        anchor["mac"] = R.anchor_mac(self.key, anchor) if self.key is not None else None
        return anchor

    def _checkpoint(self, fd: int, *, inline: bool = True, reason: str = "count") -> None:
        now = time.time_ns()
        body: dict[str, Any] = {
            "v": R.FORMAT_VERSION,
            "type": R.CHECKPOINT,
            "time": now,
            "store": self._store_id,
            "reason": reason,
            # what the anchor named when this was written: an anchor older than this is a replayed one
            "anchored": self._anchored,
        }
        if self.key is not None:
            body["key_id"] = R.key_id(self.key)
        offset = self._end
        self._write(fd, body)
        self._sealed_at = time.monotonic()
        self._pending_anchor = self._anchor_for(self._seq, self._hash, offset, now)
        if inline:
            # the log must be on disk before the anchor names it, or a power cut would look like truncation
            os.fsync(fd)
            self._dirty = False
            self._publish_locked(fd, self._pending_anchor)
        else:
            self._wake.set()  # the flusher fsyncs outside the lock, then publishes

    def _publish_in_background(self, pending: dict[str, Any]) -> None:
        """The flusher's anchor update: its fsyncs happen outside the locks, so statements never wait on them.

        The new anchor is written and fsynced to a temporary file first; under both locks it is only checked
        and renamed into place (cross-process publishers stay serialised); the directory fsync that makes the
        rename durable follows outside the locks, and only then does this writer count the checkpoint as
        anchored (a checkpoint written meanwhile records the older value: a lower bound, never a false one).
        """
        tmp: Path | None = self._anchor_tmp(pending)
        try:
            with self._lock:
                if self._fd < 0 or self._pid != os.getpid():
                    return
                fcntl.flock(self._fd, fcntl.LOCK_EX)
                try:
                    renamed = self._publish_locked(self._fd, pending, tmp=tmp)
                finally:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            if renamed:
                tmp = None
                self._after_rename(pending)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def _anchor_tmp(self, pending: dict[str, Any]) -> Path:
        target = anchor_path(self.path)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.{next(_TMP_IDS)}.tmp")
        data = json.dumps(pending, sort_keys=True).encode("ascii") + b"\n"
        tfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(tfd, data)
            os.fsync(tfd)
        finally:
            os.close(tfd)
        return tmp

    def _after_rename(self, pending: dict[str, Any]) -> None:
        if self.witness is not None:
            self.witness.submit(pending)  # queued: a slow or absent witness never holds up a statement
        # the rename must be durable before a later checkpoint says the anchor names this one, or a power
        # cut could bring back the older anchor and make an honest store look replayed
        dfd = os.open(anchor_path(self.path).parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self._anchored = max(self._anchored, int(pending["seq"]))

    def _publish_locked(self, fd: int, pending: dict[str, Any] | None, *, tmp: Path | None = None) -> bool:
        """Point the anchor at checkpoint ``pending`` (caller holds both locks and fsynced after it was written).

        With ``tmp`` (an anchor file already written and fsynced) only the rename happens here and True says
        the caller must finish with :meth:`_after_rename`; without, everything happens here.
        """
        if pending is None:
            return False
        if self._pending_anchor is pending:
            self._pending_anchor = None
        if pending["store"] != self._store_id:
            return False  # the file was replaced since: that checkpoint is not in this one
        target = anchor_path(self.path)
        current = _read_anchor(target)
        if (
            current
            and current.get("store") == pending["store"]
            and isinstance(current.get("seq"), int)
            and current["seq"] >= pending["seq"]
            and not self._anchor_violated(fd, target)
        ):
            self._anchored = max(self._anchored, current["seq"])
            return False  # another writer already published a later checkpoint
        problem = self._anchor_violated(fd, target)
        if problem:
            # keep the old anchor: it is the evidence that records it names have gone
            log.error(
                "governed_db audit: %s — %s; the anchor is left as it is. Run `governed-db audit verify "
                "--store %s` and investigate; new records are still chained and written",
                self.path,
                problem,
                self.path,
            )
            return False
        if tmp is not None:
            os.replace(tmp, target)
            return True
        os.replace(self._anchor_tmp(pending), target)
        self._after_rename(pending)
        return False


_SHORTEN = 64 * 1024
_TMP_IDS = itertools.count()  # anchor temporary files: a name is never reused, whoever writes


#: a first record torn by a crash is shorter than this (a genesis or segment record is a few hundred bytes)
_TORN_HEAD_MAX = 4096


def _torn_head(data: bytes) -> bool:
    """``data`` (a whole file) is the beginning of one record and nothing else: no newline, starts as JSON."""
    return bool(data) and b"\n" not in data and data.startswith(b'{"'[: len(data)]) and (
        len(data) < 2 or R.parse_line(data) is None)


def _check_store_file(p: Path, key: str | bytes | None = None) -> None:
    """Refuse, when the store is configured, a path that can never be a store: a device or pipe, or a file
    whose first line is complete and not a genesis or segment record (the writer would refuse every statement)."""
    try:
        st = p.stat()
    except OSError:
        # not there yet (created at the first record), or rotated away with no writer since: then the writer
        # continues the newest rotated file's chain, which must be continued with that chain's key
        _check_rotated_key(p, key)
        return
    import stat as _stat

    if not _stat.S_ISREG(st.st_mode):
        raise ConfigurationError(f"the audit store {str(p)!r} is not a regular file (a device, pipe or socket)")
    try:
        with p.open("rb") as f:
            head = f.read(R.MAX_LINE + 1)
    except OSError:
        return
    if b"\n" not in head:
        if b'{"'.startswith(head[:2]):
            if not head:
                _check_rotated_key(p, key)  # an empty live file continues the newest rotated file too
            return  # empty, or a first record torn by a crash: the writer deals with it
        raise ConfigurationError(f"{str(p)!r} is not a governed_db audit store (it does not start with a record); "
                                 "pass a new path, or the store's own path")
    first = R.parse_line(head.split(b"\n", 1)[0])
    if first is None or first.get("type") not in (R.GENESIS, R.SEGMENT) or not first.get("store"):
        raise ConfigurationError(f"{str(p)!r} is not a governed_db audit store (its first line is not a genesis "
                                 "record); pass a new path, or the store's own path")
    problem = _key_mismatch(first, R.key_bytes(key) if key is not None else None)
    if problem:
        raise ConfigurationError(f"{str(p)!r}: {problem}")


def _key_mismatch(first: dict[str, Any], key: bytes | None) -> str | None:
    """Why a writer with ``key`` must not continue the store whose first record is ``first`` (its genesis names
    the key it was sealed with), or None. Every record it wrote would fail verification with the store's key."""
    sealed = first.get("key_id")
    if first.get("type") == R.SEGMENT and isinstance(first.get("tag"), str) and isinstance(first.get("hash"), str):
        # a segment record names no key, but its tag says which one sealed the chain: a store that has rotated
        # once must refuse a writer without the key, or with another one, exactly as its genesis file does
        if key is None:
            return ("the store is sealed with a key (its records carry MACs) but none was given: its records "
                    "would carry no MAC; give the store's key (key= or GOVERNED_DB_AUDIT_KEY)")
        if not hmac.compare_digest(R.tag(R.record_key(key), first["hash"]), first["tag"]):
            return (f"the store is sealed with another key than the one given (key id {R.key_id(key)}): every "
                    "record written with this one would fail verification; give the store's key, or use a new path")
        return None
    if first.get("type") != R.GENESIS or not isinstance(sealed, str):
        return None  # unkeyed genesis, or an untagged segment record
    if key is None:
        return ("the store is sealed with a key (key id " + sealed + ") but none was given: its records would "
                "carry no MAC; give the store's key (key= or GOVERNED_DB_AUDIT_KEY)")
    if R.key_id(key) != sealed:
        return (f"the store is sealed with another key (key id {sealed}, given {R.key_id(key)}): every record "
                "written with this one would fail verification; give the store's key, or use a new path")
    return None


def _check_rotated_key(p: Path, key: str | bytes | None) -> None:
    rotated = [f for f in store_files(p) if f != p]
    first = _first_record(rotated[-1]) if rotated else None
    problem = _key_mismatch(first, R.key_bytes(key) if key is not None else None) if first is not None else None
    if problem:
        raise ConfigurationError(f"{str(p)!r}: {problem}")


def _seconds(name: str, value: Any, *, zero: bool, optional: bool = True, unit: str = "") -> None:
    """Check a store setting that is a finite, non-negative (``zero``) or positive number, or None."""
    if value is None and optional:
        return
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and (value >= 0 if zero else value > 0))
    if not ok:
        what = unit or (">= 0 seconds" if zero else "> 0 seconds")
        raise ConfigurationError(f"{name} must be {what}{' or None' if optional else ''}, got {value!r}")


def _shortened(rec: dict[str, Any]) -> dict[str, Any]:
    """A record too long for one line: long attribute strings keep their start and their SHA-256."""
    import hashlib

    attrs = rec.get("attrs")
    if not isinstance(attrs, dict):
        return rec
    out = dict(attrs)
    for k, v in attrs.items():
        if isinstance(v, str) and len(v) > _SHORTEN:
            out[k] = v[:_SHORTEN]
            out[k + ".sha256"] = hashlib.sha256(v.encode("utf-8", "backslashreplace")).hexdigest()
            out[k + ".length"] = len(v)
        elif isinstance(v, list) and len(v) > 1024:
            out[k] = v[:1024]
            out[k + ".length"] = len(v)
    return {**rec, "attrs": out}


def _last_good_record(fd: int, size: int) -> tuple[dict[str, Any], int] | None:
    """The last readable record of the file and the offset just past its newline, or None.

    Walks lines backwards from the end, reading each line start with bounded ``pread`` calls, so a
    gigantic or deeply nested tail costs time proportional to its size but never memory or a crash.
    Bytes after the last newline are a torn fragment — unless they are a complete record that lost only
    its newline: then the offset returned is ``size + 1`` (one past the end: the newline is still owed).
    """
    end = size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        start = _line_start(fd, size)
        if size - start <= R.MAX_LINE:
            frag = os.pread(fd, size - start, start)
            rec = R.parse_line(frag)
            if rec is not None and _is_head(rec) and _complete(rec, frag):
                return rec, size + 1
        end = start
    while end > 0:
        start = _line_start(fd, end - 1)
        if end - start <= R.MAX_LINE + 1:
            rec = R.parse_line(os.pread(fd, end - start, start))
            if rec is not None and _is_head(rec):
                return rec, end
        end = start
    return None


_CHUNK = 1024 * 1024


def _line_start(fd: int, end: int) -> int:
    """Offset just after the last newline before ``end`` (0 if none)."""
    pos = end
    while pos > 0:
        lo = max(0, pos - (_TAIL_WINDOW if pos == end else _CHUNK))
        i = os.pread(fd, pos - lo, lo).rfind(b"\n")
        if i >= 0:
            return lo + i + 1
        pos = lo
    return 0


def _held(live: Path, orphan: J.Orphan, last_seq: int) -> dict[tuple[str, str], int]:
    """(type, span id) -> seq of the orphan's records the store already holds (a drain or recovery that wrote
    them but died before marking or removing the journal): searched from the lowest floor of its frames on — or
    from the start when that floor is past the store's end (the store was deleted and began again)."""
    if orphan.floor is None:
        return {}
    first = orphan.floor if orphan.floor <= last_seq + 1 else 0
    return _spans_since(live, first, orphan.spans())


def _spans_since(live: Path, first: int, wanted: set[str]) -> dict[tuple[str, str], int]:
    """(type, span id) -> seq of the records from seq ``first`` on whose span id is in ``wanted``, across the
    store's files (rotated ones included): what a drain that died before marking its journal had written,
    however long ago. Streams the files; memory stays bounded by ``wanted``."""
    known: dict[tuple[str, str], int] = {}
    if not wanted:
        return known
    files = store_files(live)
    start = 0
    for i, f in enumerate(files):
        head = _first_record(f)
        if head is not None and isinstance(head.get("seq"), int) and head["seq"] <= first:
            start = i
    for f in files[start:]:
        try:
            for _, line in raw_lines(f):
                if not any(s.decode() in wanted for s in J._SPAN.findall(line)):
                    continue
                rec = R.parse_line(line)
                if (rec is not None and isinstance(rec.get("seq"), int) and rec["seq"] >= first
                        and isinstance(rec.get("span_id"), str)):
                    known[(str(rec.get("type", "")), rec["span_id"])] = rec["seq"]
        except (OSError, EOFError):
            continue
    return known


def _is_head(rec: dict[str, Any] | None) -> bool:
    return rec is not None and isinstance(rec.get("seq"), int) and isinstance(rec.get("hash"), str)


def _complete(rec: dict[str, Any], frag: bytes) -> bool:
    """A fragment is a whole record only if it is byte for byte what a writer writes (minus the newline)."""
    try:
        return R.expected_line(rec, None) == frag + b"\n"
    except (TypeError, ValueError):
        return False


def delete_store(path: str | os.PathLike[str]) -> None:
    """Remove a store, its rotated files, its anchor and its index (a store deleted without its anchor
    looks tampered with, by design)."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "audit.jsonl"
    index = p.with_name(p.name + ".index.sqlite")
    extra = [Path(str(index) + s) for s in ("-wal", "-shm", "-journal")]
    extra += [p.with_name(p.name + s) for s in (".index.seal", ".index.lock")]
    for f in [*store_files(p), p, anchor_path(p), index, *extra]:
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    wal = J.wal_dir(p)
    if wal.is_dir():  # journals of processes still writing stay (they are theirs); ended ones go
        for orphan in J.orphans(p, None):
            orphan.release(remove=True)
        with contextlib.suppress(OSError):
            for f in wal.glob("*.rejected"):
                f.unlink()
            wal.rmdir()


def _rotated_head(path: Path) -> tuple[str, int, str] | None:
    """(store id, seq, hash) of the newest file rotated away from ``path``, or None when there is none."""
    rotated = [f for f in store_files(path) if f != path]
    if not rotated:
        return None
    newest = rotated[-1]
    first = _first_record(newest)
    if first is None:
        return None
    last: dict[str, Any] | None = None
    try:
        if newest.name.endswith(".gz"):
            for _, line in raw_lines(newest):
                rec = R.parse_line(line) if line.endswith(b"\n") else None
                if rec is not None and _is_head(rec):
                    last = rec
        else:
            fd = open_regular(newest)
            try:
                found = _last_good_record(fd, os.fstat(fd).st_size)
            finally:
                os.close(fd)
            last = found[0] if found is not None else None
    except (OSError, EOFError):
        return None
    if last is None:
        return None
    return str(first["store"]), int(last["seq"]), str(last["hash"])


def _read_anchor(target: Path) -> dict[str, Any] | None:
    try:
        with open(open_regular(target), "rb") as f:
            raw = f.read(64 * 1024)
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    # a writer writes one JSON line and its newline: any other byte around it (the newline turned into a
    # vertical tab or a space by a flipped bit) is damage, as a re-spaced record line is
    body = raw[:-1] if raw.endswith(b"\n") else raw
    data = R.parse_line(body) if body == body.strip() else None
    return data if data is not None else {}


def _anchored_seq(target: Path, store_id: str) -> int:
    anchor = _read_anchor(target)
    if anchor and anchor.get("store") == store_id and isinstance(anchor.get("seq"), int):
        return int(anchor["seq"])
    return -1


def read_raw(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Parsed lines in chain order across rotated files, as written (intents and outcomes apart);
    damaged lines are skipped (``verify`` reports them). Records that dead processes left in journals this
    reader cannot chain in (another key) follow, marked ``journal``."""
    live = store_path(path)
    last = -1
    for rec in _read_files(live):
        if isinstance(rec.get("seq"), int):
            last = rec["seq"]
        yield rec
    for rec in _journal_view(live, last):
        last = rec["seq"]
        yield rec
    yield from _local_view(live, last)


def _local_view(p: Path, last_seq: int) -> Iterator[dict[str, Any]]:
    """What this process's own journals still hold for ``p`` after the reader's flush (the store could not be
    written): those statements ran, so a reader here shows them, marked ``journal`` like a dead process's."""
    target = p.resolve()
    for store in list(_stores):
        j = store._journal
        if j is None or j.closed or not j.queue or store.path != target:
            continue
        with j.lock:
            items = list(j.queue)
        seqs: dict[int, int] = {}
        for rec in items:
            if not isinstance(rec, R.Prepared):
                continue
            last_seq += 1
            seqs[id(rec)] = last_seq
            try:
                if isinstance(rec, R.PreparedOutcome):
                    intent = rec.intent
                    iseq = intent if type(intent) is int else seqs.get(id(intent), intent.seq)  # type: ignore
                    pre, tail = rec.cached or rec.pieces()
                    head = pre + b"%d," % iseq
                else:
                    head, tail = rec.parts()
                body = R.parse_line(b'%b"prev":"","seq":%d,%b' % (head, last_seq, tail))
            except (TypeError, ValueError):
                body = None
            if body is not None:
                body["journal"] = j.path.name
                yield body


def _read_files(live: Path) -> Iterator[dict[str, Any]]:
    for p in store_files(live):
        continued = False
        for _, line in raw_lines(p):
            complete = line.endswith(b"\n")
            if continued or len(line) > R.MAX_LINE:  # a piece of an oversized (damaged) line
                continued = not complete
                continue
            if not complete:
                rec = R.parse_line(line)
                if rec is not None and _is_head(rec) and _complete(rec, line):
                    yield rec
                break
            rec = R.parse_line(line)
            if rec is not None:
                yield rec


def journal_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The statements still waiting in journals (of ended processes, and this process's own when the store could
    not be written), merged like :func:`read_records` (what an indexed search adds to what the index finds)."""
    live = store_path(path)

    def view() -> Iterator[dict[str, Any]]:
        last = 1 << 62  # provisional seqs only pair intents with outcomes here
        for rec in _journal_view(live, last):
            last = rec["seq"]
            yield rec
        yield from _local_view(live, last)

    yield from _merge(view())


def read_records(path: str | os.PathLike[str], *, merge: bool = True) -> Iterator[dict[str, Any]]:
    """Records in file order; damaged lines are skipped (``verify`` reports them).

    With ``merge`` (the default) a statement's intent and outcome come back as one ``span`` record, at the
    outcome's position (completion order, as format 1 wrote them); intents whose outcome never came are
    yielded at the end with ``status``/``outcome`` ``"UNKNOWN"``.
    """
    if not merge:
        yield from read_raw(path)
        return
    yield from _merge(read_raw(path))


def _merge(raw: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    pending: dict[int, dict[str, Any]] = {}
    for rec in raw:
        kind = rec.get("type")
        if kind == R.INTENT and isinstance(rec.get("seq"), int):
            pending[rec["seq"]] = rec
            continue
        if kind == R.OUTCOME:
            intent = pending.pop(rec.get("intent"), None)  # type: ignore[arg-type]
            if intent is not None:
                yield R.merged(intent, rec)
                continue
        yield rec
    for intent in pending.values():
        yield R.merged(intent, None)


def store_path(path: str | os.PathLike[str], *, key: str | bytes | None = None, missing_ok: bool = False) -> Path:
    """The store file ``path`` names, for a reader; what this process deferred for it is written first, and
    what dead processes left in their journals is chained in when this reader can (no key needed, or ``key``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "audit.jsonl"
    if p.exists() and not p.is_file():
        # a device or pipe (/dev/zero, /dev/stdin) never ends: no reader may walk it
        raise ConfigurationError(f"{str(p)!r} is not a regular file, so it is not an audit store; pass --store "
                                 "with the audit store's path")
    _flush_local(p)
    recover_journals(p, key=key)
    if not p.exists() and missing_ok and (anchor_path(p).exists() or store_files(p)):
        # the live file is gone but the store is not: rotated away with no writer since, or deleted (which
        # the anchor then shows) — the caller (verify) examines what is left
        return p
    if not p.exists():
        raise ConfigurationError(
            f"no audit store at {str(p)!r}; pass --store PATH (or set GOVERNED_DB_AUDIT)"
        )
    return p


def recover_journals(path: Path, *, key: str | bytes | None = None) -> int:
    """Chain into the store at ``path`` the records that processes which died left in their journals
    (those written with ``key``, or without a key); returns how many. What cannot be chained here stays for a
    writer with the key, and readers show it (:func:`read_raw`)."""
    if not J.wal_dir(path).is_dir():
        return 0
    kb = R.key_bytes(key)
    label = J.key_label(kb)
    pending = False
    for orphan in J.orphans(path, None):
        pending = pending or orphan.label == label
        orphan.release(remove=False)
    if not pending or (kb is None and _keyed(path)):
        # a reader without the key never chains into a keyed store: records it wrote would carry no tag (and a
        # journal without one was not written by a keyed writer); a writer with the key decides
        return 0
    store = AuditStore(path, key=kb, fsync_interval=None, checkpoint_interval=None, idle_close=None,
                       rotate_bytes=None, journal=False)
    _stores.discard(store)
    try:
        with store._lock:
            fd = store._lock_file()  # the first locked open chains the orphans in
            try:
                if store.appended:
                    os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
    except (OSError, AuditStoreError) as e:
        log.warning("governed_db audit: could not chain in the journals of %s (%s); they are shown as they are",
                    path, e)
        return 0
    finally:
        if store._fd >= 0:
            os.close(store._fd)
            store._fd = -1
    return store.appended


def _keyed(path: Path) -> bool:
    """Whether the store's chain head carries a tag (it was written with a key)."""
    try:
        fd = open_regular(path)
    except OSError:
        return False
    try:
        found = _last_good_record(fd, os.fstat(fd).st_size)
    except OSError:
        return False
    finally:
        os.close(fd)
    return found is not None and "tag" in found[0]


def _journal_view(p: Path, last_seq: int | None = None) -> Iterator[dict[str, Any]]:
    """Records still in journals of dead processes (kept for a writer with their key), as a reader sees them:
    with the seq they would get next, marked ``"journal": <file>`` (they are not in the chain yet)."""
    if not J.wal_dir(p).is_dir():
        return
    if last_seq is None:
        last_seq = -1
        with contextlib.suppress(OSError):
            fd = open_regular(p)
            try:
                found = _last_good_record(fd, os.fstat(fd).st_size)
                last_seq = int(found[0]["seq"]) if found is not None else -1
            finally:
                os.close(fd)
    seq = last_seq
    for orphan in J.orphans(p, None):
        try:
            for rec in J.resolve(orphan.records, _held(p, orphan, last_seq)):
                seq += 1
                rec.seq = seq
                try:
                    line, _ = R.encode_prepared(rec, seq, "", None)
                    body = R.parse_line(line)
                except (TypeError, ValueError):
                    try:
                        body = {**rec.body(), "seq": seq}
                    except (TypeError, ValueError):
                        body = None
                if body is not None:
                    body["journal"] = orphan.path.name
                    yield body
        finally:
            orphan.release(remove=False)


def _flush_local(p: Path) -> None:
    """Write what stores of this process deferred for ``p``, so a reader here sees every record written."""
    for store in list(_stores):
        if store._waiting():
            try:
                if store.path == p.resolve():
                    store.flush()
            except (OSError, AuditStoreError) as e:
                log.error("governed_db audit: writing deferred records to %s failed: %s", store.path, e)


#: this process's id, kept current over fork (os.getpid() is a system call)
_PID = [os.getpid()]


def _after_fork_in_child() -> None:
    _PID[0] = os.getpid()
    for store in list(_stores):
        store._lock = threading.Lock()
        store._flusher = None
        store._deferred = []  # the parent's to write, not ours
        if store._journal is not None:  # the parent's mapping and lock: ours is made at our first write
            store._journal.abandon()
            store._journal = None


def _close_all() -> None:
    """At exit, seal and sync every store this process wrote to (providers may never be shut down)."""
    for store in list(_stores):
        try:
            store.close()
        except Exception as e:  # never turn interpreter exit into a traceback
            log.error("governed_db audit: could not seal %s at exit: %s", store.path, e)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all)
