"""The embedded default: one SQLite file, safe for many threads and processes on one host.

WAL lets readers (``approvals list``) run beside a writer; every change takes
the write lock up front (``BEGIN IMMEDIATE``) so a read-then-write never meets
a lock upgrade failure, and ``busy_timeout`` makes a second process wait its
turn instead of failing. Each operation opens its own connection: approvals
are rare next to statements, and this stays correct across ``fork()``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from governed_db.approvals.store import SCHEMA, SQLStore, _Exec
from governed_db.errors import ConfigurationError

#: how long a process waits for another one's write lock before the store counts as unavailable (and a
#: statement that needs approval is refused): the PostgreSQL store's default total deadline. Was 30 s, so a
#: process stopped while holding the lock held every such statement for 30 s
BUSY_TIMEOUT_S = 5.0


class SQLiteStore(SQLStore):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__({"requests": "approval_requests", "reviews": "approval_reviews", "meta": "approval_meta",
                          "index": "approval_requests_match"})
        self.path = Path(path).expanduser()
        self.url = str(self.path)
        if self.path.exists() and not self.path.is_file():
            # a directory or a device fails only when a statement first needs approval: say so at wrap()
            raise ConfigurationError(f"the approval store {self.url!r} is not a regular file; give the path of "
                                     "an SQLite file (created when missing)")

    def __repr__(self) -> str:
        return f"SQLiteStore({self.url!r})"

    def _connect(self) -> sqlite3.Connection:
        if not self.path.parent.is_dir():
            # private: requests name who wants to do what to which tables
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    @contextlib.contextmanager
    def _transaction(self, conn: Any, write: bool) -> Iterator[Any]:
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn.cursor()
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _prepare(self, conn: Any) -> None:
        # WAL is a property of the file; it must be set outside a transaction
        conn.execute("PRAGMA journal_mode = WAL")

    def _create_schema(self, ex: _Exec) -> None:
        for stmt in filter(None, (s.strip() for s in SCHEMA.format(**self.t).split(";"))):
            ex.run(stmt)

    def _unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, (sqlite3.OperationalError, sqlite3.DatabaseError, OSError))
