"""Choosing the approval store: by URL, by path, from ``GOVERNED_DB_APPROVALS``, or the per-user default.

=====================================================  ===========================================
``None``                                               ``GOVERNED_DB_APPROVALS``, else the default
``postgresql://user@host/db?schema=NAME&timeout=S``    :class:`PostgresStore` (also ``postgres://``)
``sqlite:///abs/path.sqlite3`` or a plain path         :class:`SQLiteStore`
a store object                                         used as is
=====================================================  ===========================================

The default is ``$XDG_STATE_HOME/governed_db/approvals.sqlite3`` (falling back
to ``~/.local/state/governed_db/approvals.sqlite3``): per user, private, and
shared by every process that user runs. Store objects are cached per URL so
the hash key and schema set-up are read once per process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from governed_db.approvals.postgres_store import (
    DEFAULT_SCHEMA,
    DEFAULT_TIMEOUT,
    PostgresStore,
    redact,
    split_url_settings,
)
from governed_db.approvals.sqlite_store import SQLiteStore
from governed_db.approvals.store import SQLStore
from governed_db.errors import ConfigurationError

ENV_VAR = "GOVERNED_DB_APPROVALS"

_cache: dict[str, SQLStore] = {}
_lock = threading.Lock()


def default_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "governed_db" / "approvals.sqlite3"


def default_store_url() -> str:
    return os.environ.get(ENV_VAR) or str(default_path())


def _normalize(url: str) -> str:
    url = url.strip()
    if url.startswith("sqlite:///"):
        return url[len("sqlite://"):]
    if url.startswith("sqlite:"):
        raise ConfigurationError(f"SQLite store URLs take an absolute path: sqlite:///path/to/file, got {url!r}")
    return url


def open_store(spec: Any = None) -> SQLStore:
    """The store for ``spec`` (see the module docs); the same object for the same URL in one process."""
    if isinstance(spec, SQLStore):
        return spec
    if spec is None:
        spec = default_store_url()
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError(
            f"the approval store must be a path, a sqlite:/// or postgresql:// URL, or a store; got {spec!r}"
        )
    url = _normalize(spec)
    with _lock:
        store = _cache.get(url)
        if store is None:
            store = _cache[url] = _make(url)
        return store


def _make(url: str) -> SQLStore:
    if url.startswith(("postgresql://", "postgres://")):
        dsn, schema, timeout = split_url_settings(url)
        return PostgresStore(dsn, schema=schema, timeout=timeout)
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ConfigurationError(
            f"approval stores are SQLite files or PostgreSQL; {scheme}:// is not supported "
            "(use a path, sqlite:///path or postgresql://...)"
        )
    path = Path(url).expanduser()
    if path.is_dir():
        path = path / "approvals.sqlite3"
    return SQLiteStore(path.resolve())


def cli_url(store: SQLStore) -> str:
    """What to pass as ``--store`` to reach ``store`` (passwords replaced by ``***``)."""
    if isinstance(store, PostgresStore):
        dsn = redact(store.dsn)
        if store.schema != DEFAULT_SCHEMA:
            dsn += ("&" if "?" in dsn else "?") + f"schema={store.schema}"
        if store.timeout != DEFAULT_TIMEOUT:
            dsn += ("&" if "?" in dsn else "?") + f"timeout={store.timeout:g}"
        return dsn
    if isinstance(store, SQLiteStore):
        return str(store.path)
    return store.url
