"""The append-only audit store: one JSONL file, one linear hash chain, many writers.

Why a JSONL file (see docs/decisions/0030-audit-store-jsonl.md): one
``write()`` per record is the whole durability story — once it returns the
record is in the kernel's page cache and survives SIGKILL of the writer;
``fsync`` runs on a timer (``fsync_interval``) so power loss costs at most that
window. Writers in many threads and processes serialise on a thread lock plus
``flock`` on the file; under the lock a writer compares the file size with the
end it last wrote, and only when another process has appended since does it
re-read the tail for the last ``seq``/``hash``. The chain therefore stays one
line, whoever writes.

Every ``checkpoint_every`` records a checkpoint record carries an HMAC (key
from configuration or ``GOVERNED_DB_AUDIT_KEY``) over the chain head, and the
sidecar ``<store>.anchor`` is replaced to point at it, so cutting the file back
past a checkpoint, or rewriting it wholesale, is detectable by ``verify``.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import json
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from governed_db.audit import records as R
from governed_db.errors import ConfigurationError, GovernedDBError

log = logging.getLogger("governed_db.audit")

_TAIL_WINDOW = 8 * 1024  # a few records; grown when one record is longer
_stores: weakref.WeakSet[AuditStore] = weakref.WeakSet()


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
    ) -> None:
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / "audit.jsonl"
        if checkpoint_every < 1:
            raise ConfigurationError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        if fsync_interval is not None and fsync_interval < 0:
            raise ConfigurationError(f"fsync_interval must be >= 0 seconds or None, got {fsync_interval}")
        if checkpoint_interval is not None and checkpoint_interval <= 0:
            raise ConfigurationError(
                f"checkpoint_interval must be > 0 seconds or None, got {checkpoint_interval}"
            )
        self.path = p.resolve()
        self.key = R.key_bytes(key)
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
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pending_anchor: dict[str, Any] | None = None
        self._flusher: threading.Thread | None = None
        self.appended = 0
        _stores.add(self)

    def __repr__(self) -> str:
        return f"<AuditStore {str(self.path)!r}>"

    # -- writing -------------------------------------------------------------------------------
    def append(self, body: Mapping[str, Any]) -> int:
        """Chain and write one record; returns its ``seq``. The write() has happened on return."""
        with self._lock:
            fd = self._lock_file()
            try:
                seq = self._write(fd, body)
                if seq % self.checkpoint_every == 0:
                    # with a flusher thread the statement never waits for the checkpoint's fsync
                    self._checkpoint(fd, inline=self._flusher is None)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        if self.fsync_interval == 0:
            self.sync()
        return seq

    def checkpoint(self, *, inline: bool = True) -> None:
        """Seal the chain head now (also done every ``checkpoint_every`` records and on close).

        ``inline=False`` leaves the fsync and the anchor to the flusher thread.
        """
        with self._lock:
            fd = self._lock_file()
            try:
                if self._last_type != R.CHECKPOINT:
                    self._checkpoint(fd, inline=inline or self._flusher is None)
                elif inline and self._pending_anchor is not None:
                    os.fsync(fd)
                    self._publish_locked(fd, self._pending_anchor)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def sync(self) -> None:
        """fsync what has been written (the flusher thread does this every ``fsync_interval``)."""
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
                if self._seq >= 0 and self._same_file():  # never create a store just to seal it
                    self.checkpoint()
                self.sync()
            finally:
                with self._lock:
                    self._stop.set()
                    self._wake.set()
                    if self._fd >= 0:
                        os.close(self._fd)
                    self._fd = -1
                    self._end = -1

    # -- internals (called with self._lock held and, for the file, the flock) --------------------
    def _lock_file(self) -> int:
        """Open if needed, take the file lock, and bring the chain head up to date; returns the descriptor."""
        for _ in range(3):
            fd = self._ensure_open()
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            if st.st_nlink:
                if st.st_size != self._end:
                    try:
                        self._refresh(fd, st.st_size)
                    except BaseException:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                        raise
                return fd
            # deleted or replaced under us: records written to an unlinked inode would be lost to every reader
            fcntl.flock(fd, fcntl.LOCK_UN)
            log.warning(
                "governed_db audit: %s was removed or replaced while in use; writing on in the file now "
                "at that path",
                self.path,
            )
            self._pid = -1  # reopen
        raise AuditStoreError(f"{self.path} keeps being removed while governed_db writes to it")

    def _ensure_open(self) -> int:
        if self._fd >= 0 and self._pid == os.getpid():
            return self._fd
        # first use, or first use in a forked child: the inherited descriptor shares the parent's
        # open file description, and flock would not exclude the two processes from each other.
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._stop.set()  # the previous flusher thread, if any, ends
        self._wake.set()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        st = os.fstat(self._fd)
        self._file_id = (st.st_dev, st.st_ino)
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
        interval = min(i for i in (self.fsync_interval, self.checkpoint_interval, self.idle_close) if i)
        while True:
            wake.wait(interval)
            wake.clear()
            if stop.is_set():
                return
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
                    self.checkpoint(inline=False)
                pending = self._pending_anchor
                if pending is not None:
                    # fsync outside the lock (appends go on meanwhile); it covers `pending`, written before it
                    self.sync()
                    with self._lock:
                        if self._fd >= 0 and self._pid == os.getpid():
                            fcntl.flock(self._fd, fcntl.LOCK_EX)
                            try:
                                self._publish_locked(self._fd, pending)
                            finally:
                                fcntl.flock(self._fd, fcntl.LOCK_UN)
                elif self._dirty and self.fsync_interval:
                    self.sync()
            except (OSError, AuditStoreError) as e:
                log.error("governed_db audit: background fsync/checkpoint of %s failed: %s", self.path, e)

    def _write(self, fd: int, body: Mapping[str, Any], *, prefix: bytes = b"") -> int:
        seq = self._seq + 1
        rec = dict(body)
        rec["seq"] = seq
        rec["prev"] = self._hash
        line, digest = R.encode(rec)
        if prefix:
            line = prefix + line
        n = os.write(fd, line)
        if n != len(line):  # a short write (e.g. a signal or a full disk): finish it or raise
            view = memoryview(line)[n:]
            while view:
                view = view[os.write(fd, view) :]
        self._end += len(line)
        self._seq, self._hash, self._last_type = seq, digest, str(rec.get("type", ""))
        self._dirty = True
        self._last_append = time.monotonic()
        self.appended += 1
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
        if size == 0:
            self._store_id = uuid.uuid4().hex
            self._seq, self._hash = -1, R.GENESIS_PREV
            self._write(
                fd,
                {"v": R.FORMAT_VERSION, "type": R.GENESIS, "time": time.time_ns(), "store": self._store_id},
            )
            return
        if not self._store_id:
            first = os.pread(fd, min(size, _TAIL_WINDOW), 0).split(b"\n", 1)[0]
            try:
                self._store_id = str(json.loads(first)["store"])
            except (ValueError, KeyError, TypeError):
                raise AuditStoreError(
                    f"{self.path} does not start with a governed_db genesis record; it is not an audit store "
                    "(or its head was damaged): run `governed-db audit verify` and use a new path"
                ) from None
        window = _TAIL_WINDOW
        while True:
            start = max(0, size - window)
            tail = os.pread(fd, size - start, start)
            found = _last_good_record(tail, partial_first=start > 0)
            if found is not None or start == 0:
                break
            window *= 4  # very long or many damaged records: read further back
        if found is None:
            raise AuditStoreError(
                f"{self.path} holds no readable record to continue the chain from; run `governed-db audit verify` "
                "on it and point the application at a new store"
            )
        rec, good_end = found
        self._seq, self._hash, self._last_type = int(rec["seq"]), str(rec["hash"]), str(rec.get("type"))
        damaged = tail[good_end:]
        if damaged:
            self._recover(fd, start + good_end, damaged)

    def _recover(self, fd: int, offset: int, damaged: bytes) -> None:
        """A crash left half a record (or the tail is damaged): keep the bytes, chain a record accounting for them.

        Writing on rather than refusing keeps the application recorded; the damaged bytes stay in the file
        and ``verify`` lists them, so nothing is hidden.
        """
        import hashlib

        # the fragment's terminating newline and the recovery record go out in ONE write(): a complete
        # unreadable line with no recovery record after it is then never a crash artefact
        self._write(
            fd,
            {
                "v": R.FORMAT_VERSION,
                "type": R.RECOVERY,
                "time": time.time_ns(),
                "torn_offset": offset,
                "torn_bytes": len(damaged),
                "torn_sha256": hashlib.sha256(damaged).hexdigest(),
            },
            prefix=b"" if damaged.endswith(b"\n") else b"\n",
        )
        log.warning(
            "governed_db audit: %s ended with %d damaged bytes at offset %d (a record torn by a crash, or "
            "tampering); they are kept and accounted for by a recovery record — run `governed-db audit "
            "verify`",
            self.path,
            len(damaged),
            offset,
        )

    def _anchor_violated(self, fd: int, target: Path) -> str | None:
        """Why the current anchor must not be replaced: the checkpoint it names is no longer in the file."""
        anchor = _read_anchor(target)
        if anchor is None:
            return None
        if anchor.get("store") != self._store_id:
            return "the anchor file is damaged or belongs to another store"
        offset = anchor.get("offset")
        if not isinstance(offset, int):
            return None  # written by a version that did not record offsets: nothing cheap to check
        line = os.pread(fd, _TAIL_WINDOW, offset).split(b"\n", 1)[0]
        try:
            rec = json.loads(line)
            if rec.get("seq") == anchor.get("seq") and rec.get("hash") == anchor.get("hash"):
                return None
        except ValueError:
            pass
        return (
            f"the checkpoint the anchor names (seq {anchor.get('seq')}) is no longer in the store: "
            "it was truncated or rewritten"
        )

    def _checkpoint(self, fd: int, *, inline: bool = True) -> None:
        now = time.time_ns()
        seq = self._seq + 1
        body: dict[str, Any] = {
            "v": R.FORMAT_VERSION,
            "type": R.CHECKPOINT,
            "time": now,
            "store": self._store_id,
        }
        if self.key is not None:
            body["key_id"] = R.key_id(self.key)
            body["mac"] = R.checkpoint_mac(
                self.key, store=self._store_id, seq=seq, prev=self._hash, time_ns=now
            )
        else:
            body["mac"] = None
        offset = self._end
        self._write(fd, body)
        self._sealed_at = time.monotonic()
        self._pending_anchor = {
            "store": self._store_id,
            "seq": self._seq,
            "hash": self._hash,
            "offset": offset,
            "time": now,
        }
        if inline:
            # the log must be on disk before the anchor names it, or a power cut would look like truncation
            os.fsync(fd)
            self._dirty = False
            self._publish_locked(fd, self._pending_anchor)
        else:
            self._wake.set()  # the flusher fsyncs outside the lock, then publishes

    def _publish_locked(self, fd: int, pending: dict[str, Any] | None) -> None:
        """Point the anchor at checkpoint ``pending`` (caller holds both locks and fsynced after it was written)."""
        if pending is None:
            return
        if self._pending_anchor is pending:
            self._pending_anchor = None
        if pending["store"] != self._store_id:
            return  # the file was replaced since: that checkpoint is not in this one
        target = anchor_path(self.path)
        current = _read_anchor(target)
        if (
            current
            and current.get("store") == pending["store"]
            and isinstance(current.get("seq"), int)
            and current["seq"] >= pending["seq"]
            and not self._anchor_violated(fd, target)
        ):
            return  # another writer already published a later checkpoint
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
            return
        anchor = pending
        tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(anchor, sort_keys=True) + "\n", encoding="ascii")
        os.replace(tmp, target)


def _last_good_record(tail: bytes, *, partial_first: bool) -> tuple[dict[str, Any], int] | None:
    """The last parseable record in ``tail`` and the offset just past its line, or None."""
    end = tail.rfind(b"\n") + 1  # bytes after the last newline are a torn fragment
    while end > 0:
        begin = tail.rfind(b"\n", 0, end - 1) + 1
        if begin == 0 and partial_first:
            return None  # the first line of the window may be cut: read further back
        try:
            rec = json.loads(tail[begin:end])
            if isinstance(rec, dict) and isinstance(rec.get("seq"), int) and isinstance(rec.get("hash"), str):
                return rec, end
        except ValueError:
            pass
        end = begin
    return None


def delete_store(path: str | os.PathLike[str]) -> None:
    """Remove a store *and* its anchor (a store deleted without its anchor looks tampered with, by design)."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "audit.jsonl"
    for f in (p, anchor_path(p)):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()


def _read_anchor(target: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(target.read_text(encoding="ascii"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def read_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Parsed records in file order; damaged lines are skipped (``verify`` reports them)."""
    p = store_path(path)
    with open(p, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                return
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                yield rec


def store_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "audit.jsonl"
    if not p.exists():
        raise ConfigurationError(
            f"no audit store at {str(p)!r}; pass --store PATH (or set GOVERNED_DB_AUDIT)"
        )
    return p


def _after_fork_in_child() -> None:
    for store in list(_stores):
        store._lock = threading.Lock()
        store._flusher = None


def _close_all() -> None:
    """At exit, seal and sync every store this process wrote to (providers may never be shut down)."""
    for store in list(_stores):
        try:
            store.close()
        except Exception as e:  # never turn interpreter exit into a traceback
            log.error("governed_db audit: could not seal %s at exit: %s", store.path, e)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_all)
