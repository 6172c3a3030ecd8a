"""The seal of the search index: what makes an edited, replaced or swapped index detectable.

``<store>.index.seal`` names the exact bytes of ``<store>.index.sqlite`` (size and SHA-256) and what of the
store they cover: for each file of the store, its store id, first ``seq``, the byte offset indexed up to and a
digest of the last 256 bytes before it — which end with the chain hash (and, with a key, the tag) of the last
record covered. The seal carries a SHA-256 of all that and, when the audit key is given, an HMAC-SHA256 under a
key derived from it (domain-separated from record tags and the anchor).

Search and who-touched check the seal (under ``<store>.index.lock``) before they read the index; an index that
does not match it is rebuilt from the store, never answered from. With the key, the MAC must match too, so an
index forged by someone without the key is never trusted; without the key, the seal's hash catches edits made
with ordinary tools, but someone who recomputes it too is caught only by ``verify`` (which, without a key,
rebuilds the index and compares). See docs/decisions/0314-the-search-index-is-sealed-to-the-store.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import mmap
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from governed_db.audit import records as R
from governed_db.audit.segments import _open_segment

SEAL_VERSION = 1
#: the index's layout (:mod:`governed_db.audit.index`); 3: sealed, with a rollback journal (a WAL would change
#: the file's bytes whenever it is checkpointed, and hold committed pages outside the file the seal names)
SCHEMA_VERSION = 3
_MAX_SEAL = 16 * 1024 * 1024
#: seconds a query waits for another process to finish updating the index before it reads the store instead
LOCK_TIMEOUT = 30.0  # a seal names each file of the store once: far below this
#: one file's coverage: (store id, first seq, indexed up to, digest of the bytes just before)
Coverage = tuple[str, int, int, str]


_TAIL = 256  # bytes before the indexed end whose digest tells an appended file from a rewritten one


def index_path(store: Path) -> Path:
    return store.with_name(store.name + ".index.sqlite")


def seal_path(store: Path) -> Path:
    return store.with_name(store.name + ".index.seal")


def lock_path(store: Path) -> Path:
    return store.with_name(store.name + ".index.lock")


@contextlib.contextmanager
def locked(store: Path, *, shared: bool = False, timeout: float | None = None) -> Iterator[None]:
    """Hold the index's lock: exclusive while it is checked, changed and sealed again, shared while only checked
    (so that a reader never compares a seal with an index another process is between writing and sealing).

    Raises ``TimeoutError`` (an ``OSError``: callers then read the store front to back) after ``timeout``
    seconds (default ``LOCK_TIMEOUT``): a process that hangs holding it never hangs the others."""
    timeout = LOCK_TIMEOUT if timeout is None else timeout
    try:
        fd = os.open(lock_path(store), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        if not shared:
            raise
        yield  # a reader that cannot create the lock (a read-only directory): nothing there can change it either
        return
    try:
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"the search index of {store} stayed locked for {timeout:g} s") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
        yield
    finally:
        os.close(fd)


def index_key(key: bytes) -> bytes:
    """The index-seal MAC key: derived, so that a seal MAC never passes for a record tag or an anchor MAC."""
    return hmac.digest(key, b"governed_db.audit.index-seal", "sha256")


def tail_digest(f: Path, end: int) -> str:
    """SHA-256 of the ``_TAIL`` bytes of store file ``f`` before ``end``: they end with the chain hash (and tag)
    of the last record indexed, so they bind the index to that point of the chain."""
    start = max(0, end - _TAIL)
    with _open_segment(f) as fh:
        fh.seek(start)
        return hashlib.sha256(fh.read(end - start)).hexdigest()


def file_digest(f: Path) -> tuple[int, str]:
    """``(size, SHA-256)`` of the index file as it is on disk."""
    with open(f, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if not size:
            return 0, hashlib.sha256().hexdigest()
        # hashed straight from the page cache (a third less time than reading it in chunks): this runs before
        # every query, about 0.1 s of CPU for the index of a million records
        with mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ) as m:
            return size, hashlib.sha256(m).hexdigest()


def _canonical(schema: int, size: int, digest: str, files: Sequence[Coverage]) -> bytes:
    return orjson.dumps({"v": SEAL_VERSION, "schema": schema, "size": size, "sha256": digest,
                         "files": [list(c) for c in files]}, option=orjson.OPT_SORT_KEYS)


def write_seal(store: Path, index_file: Path, schema: int, files: Sequence[Coverage], key: bytes | None) -> None:
    """Seal the index file as it is now (call with the lock held, after the last write is committed)."""
    size, digest = file_digest(index_file)
    canon = _canonical(schema, size, digest, files)
    seal: dict[str, Any] = {"v": SEAL_VERSION, "schema": schema, "size": size, "sha256": digest,
                            "files": [list(c) for c in files], "hash": hashlib.sha256(canon).hexdigest()}
    if key is not None:
        seal["key_id"] = R.key_id(key)
        seal["mac"] = hmac.new(index_key(key), canon, hashlib.sha256).hexdigest()
    target = seal_path(store)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(orjson.dumps(seal, option=orjson.OPT_SORT_KEYS) + b"\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_seal(store: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(seal, None)``, or ``(None, why it cannot be read)``; ``(None, None)`` when there is none."""
    target = seal_path(store)
    try:
        with open(target, "rb") as fh:
            data = fh.read(_MAX_SEAL + 1)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f"its seal cannot be read ({e.strerror or e})"
    if len(data) > _MAX_SEAL:
        return None, "its seal is damaged (too large)"
    try:
        seal = orjson.loads(data)
        files = [(str(s), int(first), int(end), str(tail)) for s, first, end, tail in seal["files"]]
        if (type(seal) is not dict or seal.get("v") != SEAL_VERSION or type(seal["size"]) is not int
                or not isinstance(seal["sha256"], str) or not isinstance(seal["hash"], str)
                or type(seal["schema"]) is not int):
            raise ValueError
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None, "its seal is damaged (not a seal this version writes)"
    seal["files"] = files
    return seal, None


def seal_problem(store: Path, index_file: Path, schema: int, key: bytes | None) -> str | None:
    """Why the index file must not be trusted (edited, replaced, truncated, unsealed, sealed without or with another
    key), or None when it is byte for byte the file its seal names (and, with ``key``, the seal is authentic)."""
    seal, why = read_seal(store)
    if seal is None:
        return why or "it has no seal (it was not written by this version, its seal was deleted, or a process " \
                      "died between writing it and sealing it)"
    canon = _canonical(seal["schema"], seal["size"], seal["sha256"], seal["files"])
    if not hmac.compare_digest(hashlib.sha256(canon).hexdigest(), seal["hash"]):
        return "its seal does not match its own hash (the seal was edited)"
    if key is not None:
        mac = seal.get("mac")
        if not isinstance(mac, str):
            return "it was sealed without the audit key (anyone could have written it)"
        if seal.get("key_id") != R.key_id(key):
            return f"it was sealed with another key (key id {seal.get('key_id')}, given {R.key_id(key)})"
        if not hmac.compare_digest(hmac.new(index_key(key), canon, hashlib.sha256).hexdigest(), mac):
            return "its seal's MAC is wrong (the seal was forged or edited)"
    if seal["schema"] != schema:
        return f"it is of another index schema ({seal['schema']}, this version writes {schema})"
    try:
        size, digest = file_digest(index_file)
    except OSError as e:
        return f"it cannot be read ({e.strerror or e})"
    if size != seal["size"] or not hmac.compare_digest(digest, seal["sha256"]):
        differs = f"{size} bytes, sealed {seal['size']}" if size != seal["size"] else "other content, same size"
        return (f"it is not the file its seal names ({differs}): it was edited, truncated or replaced since it was "
                "last written")
    return None

