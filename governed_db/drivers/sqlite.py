"""sqlite3: connection shortcuts, ``executescript``, and the non-SQL ways data leaves.

``backup``, ``iterdump``, ``serialize``, ``deserialize``, ``load_extension`` and
``blobopen`` move data or code without a SQL statement; each is judged as the
statement it amounts to, so the same rules apply (``VACUUM INTO``,
``DROP SCHEMA``, ``load_extension()``, a read or update of one column; a blob
of a masked column is refused, since its bytes never pass through a cursor).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from governed_db.drivers import Driver, innermost, quote_ident
from governed_db.drivers._copy import describe_with, refuse_masked_export
from governed_db.pipeline import run
from governed_db.proxies import GovernedConnection, GovernedCursor, governed_executescript


class SqliteCursor(GovernedCursor):
    def executescript(self, sql_script: Any) -> Any:
        return governed_executescript(self, sql_script)


class SqliteConnection(GovernedConnection):
    # conn.execute/executemany/executescript: GovernedConnection runs them on a new governed cursor
    cursor_proxy = SqliteCursor

    def backup(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        # A backup copies every row unmasked: judged as writing the database to a file.
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
        # incremental blob I/O reads (or writes) a cell directly: judged as reading/updating that
        # column, and refused when that column is masked (its bytes never pass through a cursor)
        gov, t, c = self._self_gov, quote_ident(table), quote_ident(column)
        read = f"SELECT {c} FROM {t} WHERE rowid = ?"
        sql = read if kwargs.get("readonly", False) else f"UPDATE {t} SET {c} = ? WHERE rowid = ?"

        def invoke(_s: Any) -> Any:
            probe = f"SELECT {c} FROM {t} LIMIT 0"
            refuse_masked_export(
                gov, probe, describe_with(self.__wrapped__), "blobopen() reads the cell directly"
            )
            return self.__wrapped__.blobopen(table, column, row, **kwargs)

        return run(gov, "connection.blobopen", sql, (row,), invoke)

    def serialize(self, *args: Any, **kwargs: Any) -> Any:
        # the whole database as bytes, unmasked: judged as writing the database to a file
        return run(
            self._self_gov,
            "connection.serialize",
            "VACUUM INTO 'serialize'",
            None,
            lambda _s: self.__wrapped__.serialize(*args, **kwargs),
        )

    def deserialize(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        # replaces every table of the schema at once: judged as dropping it
        schema = kwargs.get("name", args[0] if args else "main")
        return run(
            self._self_gov,
            "connection.deserialize",
            f"DROP SCHEMA {quote_ident(schema)}",
            None,
            lambda _s: self.__wrapped__.deserialize(data, *args, **kwargs),
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

    def transaction_state(self, gov: Any, raw: Any) -> str:
        if raw.in_transaction:  # also a BEGIN of the application's in autocommit mode (isolation_level None)
            return "open"
        if raw.isolation_level is None or getattr(raw, "autocommit", -1) is True:
            return "autocommit"
        # legacy transaction control opens a transaction before a data change, so the guard does too
        return "implicit"

    def open_guard(self, state: str) -> tuple[str, ...]:
        if state == "implicit":
            return ("BEGIN", self.savepoint_sql)
        return super().open_guard(state)

    read_only_session = True

    def replace_keys_sql(self, gov: Any, tables: tuple[str, ...]) -> str | None:
        # changes() counts the row a REPLACE inserts, not the rows it deletes: one unique key deletes at most
        # the row it replaces; two or more (a rowid alias and a UNIQUE column) can delete several per row
        parts = []
        for name in tables:
            schema, _, table = name.rpartition(".")
            args = f"{self.quote_literal(table)}, {self.quote_literal(schema or 'main')}"
            parts.append(
                f"SELECT {self.quote_literal(name)} AS t, "
                f"(SELECT count(*) FROM pragma_index_list({args}) WHERE \"unique\") + "
                f"(SELECT count(*) = 1 AND max(pk = 1 AND upper(type) = 'INTEGER') FROM pragma_table_info({args}) "
                "WHERE pk > 0) AS k"
            )
        return " UNION ALL ".join(parts)

    def session_read_only_sql(self, gov: Any, raw: Any, read_only: bool) -> tuple[str, ...]:
        return ("PRAGMA query_only = ON",) if read_only else ("PRAGMA query_only = OFF",)

    def is_read_only_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "readonly database" in str(exc)

    def is_closed(self, raw: Any) -> bool:
        try:
            raw.total_changes  # noqa: B018 - raises ProgrammingError on a closed connection
        except sqlite3.ProgrammingError:
            return True
        return False
