"""PyMySQL: ``Connection.query()``, ``select_db``, ``kill``, unbuffered cursors.

``Connection.query(sql)`` is a raw path that every PyMySQL cursor uses
internally; called on the governed connection it is judged like any
statement (cursors keep calling the raw connection's ``query``, so nothing
is judged twice). ``select_db(db)`` is judged as ``USE db`` and ``kill(id)``
as ``KILL id``. The unbuffered cursors' extra exits (``fetchall_unbuffered``,
``read_next``) go through the result state like ``fetchone``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from governed_db.drivers import Driver
from governed_db.errors import InvalidStatement
from governed_db.pipeline import run
from governed_db.proxies import CallProc, GovernedConnection, GovernedCursor, NextSet


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class PyMySQLCursor(CallProc, NextSet, GovernedCursor):
    def callproc_sql(self, name: str, params: Any) -> str:
        return f"CALL {name}({', '.join('%s' for _ in (params or ()))})"

    # SSCursor / SSDictCursor exits
    def fetchall_unbuffered(self) -> Iterator[Any]:
        st = self._self_result
        rows = self.__wrapped__.fetchall_unbuffered()
        return st.iterate(rows) if st.active else rows  # type: ignore[no-any-return]

    def read_next(self) -> Any:
        row = self.__wrapped__.read_next()
        st = self._self_result
        return st.one(row) if st.active else row


class PyMySQLConnection(GovernedConnection):
    cursor_proxy = PyMySQLCursor

    def query(self, sql: Any, unbuffered: bool = False) -> Any:
        return run(
            self._self_gov,
            "connection.query",
            sql,
            None,
            lambda s: self.__wrapped__.query(s, unbuffered=unbuffered),
        )

    def select_db(self, db: Any) -> Any:
        if not isinstance(db, str):
            raise self._self_gov.refusal(
                InvalidStatement(f"select_db() takes a database name, got {type(db).__name__}")
            )
        return run(
            self._self_gov,
            "connection.select_db",
            f"USE {_ident(db)}",
            None,
            lambda _s: self.__wrapped__.select_db(db),
        )

    def kill(self, thread_id: Any) -> Any:
        return run(
            self._self_gov,
            "connection.kill",
            f"KILL {int(thread_id)}",
            None,
            lambda _s: self.__wrapped__.kill(thread_id),
        )


class PyMySQLDriver(Driver):
    name = "pymysql"
    dialect = "mysql"
    db_system = "mysql"

    def __init__(self, module: Any = None) -> None:
        if module is None:
            import pymysql

            module = pymysql
        super().__init__(module)

    @property
    def connection_proxy(self) -> type:
        return PyMySQLConnection

    def paramstyle_for(self, raw: Any) -> str:
        return "pyformat"

    def is_closed(self, raw: Any) -> bool:
        return not bool(getattr(raw, "open", True))

    def static_attributes(self, raw: Any) -> dict[str, Any]:
        attrs = super().static_attributes(raw)
        if "mariadb" in str(getattr(raw, "server_version", "")).lower():
            attrs["db.system.name"] = "mariadb"  # the semantic conventions name MariaDB on its own
        db = getattr(raw, "db", None)
        if isinstance(db, bytes):
            db = db.decode("utf-8", "replace")
        if db:
            attrs["db.namespace"] = db
        host, port = getattr(raw, "host", None), getattr(raw, "port", None)
        if isinstance(host, str):
            attrs["server.address"] = host
        if isinstance(port, int):
            attrs["server.port"] = port
        return attrs


__all__ = ["PyMySQLConnection", "PyMySQLCursor", "PyMySQLDriver"]
