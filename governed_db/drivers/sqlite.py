"""sqlite3: connection shortcuts, ``executescript``, and the non-SQL ways data leaves.

``backup``, ``iterdump``, ``load_extension`` and ``blobopen`` move data or
code without a SQL statement; each is judged as the statement it amounts to,
so the same rules apply (``VACUUM INTO``, a full read, ``load_extension()``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from governed_db.drivers import Driver
from governed_db.pipeline import run
from governed_db.proxies import GovernedConnection, GovernedCursor


class SqliteCursor(GovernedCursor):
    def executescript(self, sql_script: Any) -> Any:
        raw = self.__wrapped__
        out = run(
            self._self_gov, "cursor.executescript", sql_script, None, raw.executescript, self._self_result
        )
        return self._self_out(out)


class SqliteConnection(GovernedConnection):
    cursor_proxy = SqliteCursor

    def execute(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        return self.cursor().execute(sql, *args, **kwargs)

    def executemany(self, sql: Any, *args: Any, **kwargs: Any) -> Any:
        return self.cursor().executemany(sql, *args, **kwargs)

    def executescript(self, sql_script: Any) -> Any:
        return self.cursor().executescript(sql_script)

    def backup(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        # A backup copies every row unmasked: judged as writing the database to a file.
        from governed_db.drivers import innermost

        raw_target = innermost(target)
        return run(
            self._self_gov,
            "connection.backup",
            "VACUUM INTO 'backup-target'",
            None,
            lambda _s: self.__wrapped__.backup(raw_target, *args, **kwargs),
        )

    def iterdump(self, *args: Any, **kwargs: Any) -> Any:
        # iterdump() emits every row as SQL text, which masking cannot reach: judged as a file export.
        lines: list[str] = run(
            self._self_gov,
            "connection.iterdump",
            "VACUUM INTO 'iterdump'",
            None,
            lambda _s: list(self.__wrapped__.iterdump(*args, **kwargs)),
        )
        return iter(lines)

    def load_extension(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        return run(
            self._self_gov,
            "connection.load_extension",
            "SELECT load_extension(?)",
            None,
            lambda _s: self.__wrapped__.load_extension(path, *args, **kwargs),
        )

    def blobopen(self, table: str, column: str, row: int, /, **kwargs: Any) -> Any:
        # incremental blob I/O reads (or writes) a cell directly: judged as reading/updating that column
        readonly = kwargs.get("readonly", False)
        sql = (
            f'SELECT "{column}" FROM "{table}" WHERE rowid = ?'
            if readonly
            else f'UPDATE "{table}" SET "{column}" = ? WHERE rowid = ?'
        )
        return run(
            self._self_gov,
            "connection.blobopen",
            sql,
            None,
            lambda _s: self.__wrapped__.blobopen(table, column, row, **kwargs),
        )


class SqliteDriver(Driver):
    name = "sqlite3"
    dialect = "sqlite"
    db_system = "sqlite"

    def __init__(self, module: Any = None) -> None:
        super().__init__(module or sqlite3)

    @property
    def connection_proxy(self) -> type:
        return SqliteConnection

    def paramstyle_for(self, raw: Any) -> str:
        return "qmark"

    def is_closed(self, raw: Any) -> bool:
        try:
            raw.total_changes  # noqa: B018 - raises ProgrammingError on a closed connection
        except sqlite3.ProgrammingError:
            return True
        return False
