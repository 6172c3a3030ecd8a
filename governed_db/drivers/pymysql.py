"""PyMySQL: ``Connection.query()``, ``select_db``, ``kill``, unbuffered cursors.

``Connection.query(sql)`` is a raw path that every PyMySQL cursor uses
internally; called on the governed connection it is judged like any
statement (governed cursors keep calling the raw connection's ``query``, so
nothing is judged twice). A cursor built directly on the governed connection
(``pymysql.cursors.Cursor(conn)``) also comes through it and then reads the
rows from ``conn._result``: that result is masked and capped in place before
the cursor sees it (buffered rows at once, unbuffered rows one by one). ``select_db(db)`` is judged as ``USE db`` and ``kill(id)``
as ``KILL id``. The unbuffered cursors' extra exits (``fetchall_unbuffered``,
``read_next``) go through the result state like ``fetchone``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import sqlglot
import wrapt
from sqlglot import exp

from governed_db.drivers import Driver, quote_ident
from governed_db.drivers._decoders import GuardedDecoders
from governed_db.errors import ConfigurationError, GuardrailViolation, InvalidStatement
from governed_db.guards.session import reconnected
from governed_db.pipeline import judged_call, run
from governed_db.proxies import CallProc, GovernedConnection, GovernedCursor, NextSet, PrivateWithheld
from governed_db.results import ResultState
from governed_db.semconv import DB_NAMESPACE, DB_SYSTEM_NAME, SERVER_ADDRESS, SERVER_PORT

#: the partition selection of a written table as the effect guard names it (``t PARTITION(p0, p1)``)
_PARTITIONS = re.compile(r"\s+PARTITION\s*\([^()]*\)\s*$", re.I)


class PyMySQLCursor(PrivateWithheld, CallProc, NextSet, GovernedCursor):
    private_allowed = frozenset({"_executed"})  # the last statement's text, read for debugging

    def callproc_sql(self, name: str, params: Any) -> str:
        return f"CALL {name}({', '.join('%s' for _ in (params or ()))})"

    # SSCursor / SSDictCursor exits
    def fetchall_unbuffered(self) -> Iterator[Any]:
        st = self._self_result
        rows = self.__wrapped__.fetchall_unbuffered()
        return st.iterate(rows) if st.active else rows

    def read_next(self) -> Any:
        row = self.__wrapped__.read_next()
        st = self._self_result
        return st.one(row) if st.active else row


class _LastResult:
    """What the pipeline plans masking from after ``connection.query()``: the connection's last result."""

    __slots__ = ("conn",)

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @property
    def description(self) -> Any:
        result = self.conn._result
        return result.description if result is not None else None

    @property
    def rowcount(self) -> Any:
        return self.conn.affected_rows()

    @property
    def _result(self) -> Any:
        return self.conn._result


class _UnbufferedResult(wrapt.ObjectProxy[Any]):
    """An unbuffered ``MySQLResult`` whose rows leave one by one through the result state."""

    def __init__(self, raw: Any, state: ResultState) -> None:
        super().__init__(raw)
        self._self_state = state

    def _read_rowdata_packet_unbuffered(self) -> Any:
        raw, st = self.__wrapped__, self._self_state
        row = raw._read_rowdata_packet_unbuffered()
        out = st.one(row)
        if out is None and row is not None:  # the row cap was reached: drop what is left on the wire
            raw._finish_unbuffered_query()
        return out


def _govern_last_result(raw: Any, st: ResultState) -> None:
    """Mask and cap ``raw._result`` in place, before any cursor reads it."""
    result = raw._result
    if result is None:
        st.finish()
    elif result.unbuffered_active:
        raw._result = _UnbufferedResult(result, st)
    elif result.rows is not None:
        result.rows = tuple(st.many(list(result.rows), complete=True))
    else:
        st.finish()


class PyMySQLConnection(GuardedDecoders, PrivateWithheld, GovernedConnection):
    cursor_proxy = PyMySQLCursor

    # -- methods that change the session (docs/guardrails.md) -----------------------------------
    def autocommit(self, value: Any) -> Any:
        # PyMySQL sends SET AUTOCOMMIT: judged as it, like any statement (the read-only session survives it)
        raw = self.__wrapped__
        return judged_call(self._self_gov, "connection.autocommit", f"SET AUTOCOMMIT = {1 if value else 0}",
                           lambda: raw.autocommit(value))  # fmt: skip

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        # connect() on an open connection opens a new session in its place: the same as a reconnect
        raw = self.__wrapped__
        before = raw.thread_id() if raw.open else None
        try:
            return raw.connect(*args, **kwargs)
        finally:
            reconnected(self._self_gov, before, raw.thread_id() if raw.open else None)

    def ping(self, *args: Any, **kwargs: Any) -> Any:
        # a reconnect starts a new session with the server's defaults: governed_db sets its state again
        raw = self.__wrapped__
        before = raw.thread_id() if raw.open else None
        try:
            return raw.ping(*args, **kwargs)
        finally:
            reconnected(self._self_gov, before, raw.thread_id() if raw.open else None)

    @property
    def _result(self) -> Any:
        # Cursors built on the governed connection read their rows here, right after query()/next_result()
        # masked them in place. A result a governed cursor produced holds the raw rows: withheld.
        result = self.__wrapped__._result
        if result is None or result is getattr(self, "_self_owned", None):
            return result
        raise AttributeError("_result")  # PrivateWithheld.__getattr__ then says why

    def query(self, sql: Any, unbuffered: bool = False) -> Any:
        raw = self.__wrapped__
        st = ResultState(_LastResult(raw), self._self_gov)
        out = run(
            self._self_gov,
            "connection.query",
            sql,
            None,
            lambda s: raw.query(s, unbuffered=unbuffered),
            st,
        )
        self._self_last = st
        if st.active:
            _govern_last_result(raw, st)
        self._self_owned = raw._result
        return out

    def next_result(self, unbuffered: bool = False) -> Any:
        raw = self.__wrapped__
        out = raw.next_result(unbuffered=unbuffered)
        last: ResultState | None = getattr(self, "_self_last", None)
        result = raw._result
        if last is not None and last.touches_rows and result is not None and result.description:
            # another statement's rows, never planned: withhold them (decision 0063)
            if result.unbuffered_active:
                result._finish_unbuffered_query()
            result.rows = None
            raise self._self_gov.refusal(
                GuardrailViolation(
                    "refused by governed_db: a further result set of a masked statement is withheld; "
                    "run statements one by one"
                )
            )
        self._self_owned = result
        return out

    def select_db(self, db: Any) -> Any:
        if not isinstance(db, str):
            raise self._self_gov.refusal(
                InvalidStatement(f"select_db() takes a database name, got {type(db).__name__}")
            )
        return run(
            self._self_gov,
            "connection.select_db",
            f"USE {quote_ident(db, '`')}",
            None,
            lambda _s: self.__wrapped__.select_db(db),
        )

    def show_warnings(self) -> Any:
        """PyMySQL's ``show_warnings()`` runs ``SHOW WARNINGS`` on the raw connection, whose messages quote
        values of earlier statements: here it is a governed statement, its messages scrubbed."""
        self.query("SHOW WARNINGS")
        result = self.__wrapped__._result
        return result.rows if result is not None else ()

    def kill(self, thread_id: Any) -> Any:
        return run(
            self._self_gov,
            "connection.kill",
            f"KILL {int(thread_id)}",
            None,
            lambda _s: self.__wrapped__.kill(thread_id),
        )


_SERVER_STATUS_IN_TRANS = 1
_ROWS_MATCHED = re.compile(r"Rows matched: (\d+)")


class PyMySQLDriver(Driver):
    name = "pymysql"
    dialect = "mysql"
    db_system = "mysql"

    def __init__(self, module: Any = None) -> None:
        if module is None:
            import pymysql

            module = pymysql
        super().__init__(module)

    def warning_count(self, raw_cursor: Any) -> int | None:
        # the OK/EOF packet's count (every warning, past max_error_count too); an unbuffered result has it only
        # after its last row
        result = getattr(raw_cursor, "_result", None)
        if result is None or getattr(result, "unbuffered_active", False):
            return None
        count = getattr(result, "warning_count", None)
        return count if isinstance(count, int) else None

    @property
    def connection_proxy(self) -> type:
        return PyMySQLConnection

    def paramstyle_for(self, raw: Any) -> str:
        return "pyformat"

    def is_closed(self, raw: Any) -> bool:
        return not bool(getattr(raw, "open", True))

    # -- effect guard and session (docs/guardrails.md) -----------------------------------------
    def transaction_state(self, gov: Any, raw: Any) -> str:
        if raw.server_status & _SERVER_STATUS_IN_TRANS:
            # also a START TRANSACTION of the application's in autocommit mode: the guard's own BEGIN would
            # commit it, and its COMMIT keep the write past the application's ROLLBACK
            return "open"
        return "autocommit" if raw.get_autocommit() else "implicit"

    def quote_table(self, name: str) -> str:
        return ".".join(quote_ident(part, "`") for part in name.split("."))

    def quote_literal(self, value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"

    def engine_sql(self, gov: Any, tables: tuple[str, ...]) -> str | None:
        # MyISAM/MEMORY/... ignore ROLLBACK: a bounded write to them cannot be measured before it is kept
        wanted = []
        for name in tables:
            # ``t PARTITION(p0)``: the probe reads the partitions named; the engine is the table's. The name as
            # the server reads it: quotes gone (`db`.`t` once matched no catalog row, and passed as a session's own)
            try:
                parsed = exp.to_table(_PARTITIONS.sub("", name), dialect="mysql")
            except (sqlglot.errors.ParseError, ValueError):
                parsed = None
            if parsed is None or not parsed.name:
                # unreadable: named so that no catalog row can match it, and refused as of no known engine
                wanted.append(f"SELECT {self.quote_literal(name)} AS n, NULL AS s, NULL AS t")
                continue
            db = self.quote_literal(parsed.db) if parsed.db else "DATABASE()"
            wanted.append(
                f"SELECT {self.quote_literal(name)} AS n, {db} AS s, {self.quote_literal(parsed.name)} AS t"
            )
        # a name with neither a table nor a view in the catalog is the session's own temporary table (or none,
        # and the write fails): its rows live and die with this session, so the bound has nothing to protect
        return (
            "SELECT r.n, CASE WHEN r.t IS NOT NULL AND i.TABLE_NAME IS NULL AND v.TABLE_NAME IS NULL "
            "THEN 'SESSION' "
            "ELSE e.TRANSACTIONS END FROM (" + " UNION ALL ".join(wanted) + ") AS r "
            "LEFT JOIN information_schema.TABLES AS i ON i.TABLE_SCHEMA = r.s AND i.TABLE_NAME = r.t "
            "LEFT JOIN information_schema.VIEWS AS v ON v.TABLE_SCHEMA = r.s AND v.TABLE_NAME = r.t "
            "LEFT JOIN information_schema.ENGINES AS e ON e.ENGINE = i.ENGINE"
        )

    def non_transactional(self, gov: Any, rows: list[Any]) -> tuple[str, ...]:
        # a view has no engine here: it cannot be shown to roll back, so it fails closed
        return tuple(
            str(name) for name, transactions in rows if str(transactions or "").upper() not in ("YES", "SESSION")
        )

    def effect_rowcount(self, raw_cursor: Any) -> int | None:
        # MySQL reports rows *changed*; an UPDATE that sets some rows to the value they had matched them all
        count = self.rowcount(raw_cursor)
        result = getattr(raw_cursor, "_result", None)
        if count is None and result is None:  # connection.query(): the connection's last result
            result = getattr(getattr(raw_cursor, "conn", None), "_result", None)
            count = getattr(result, "affected_rows", None)
        if not isinstance(count, int) or count < 0:
            return None
        message = getattr(result, "message", None)
        if isinstance(message, bytes):
            message = message.decode("ascii", "replace")
        found = _ROWS_MATCHED.search(message) if isinstance(message, str) else None
        return max(count, int(found.group(1))) if found else count

    read_only_session = True

    def session_read_only_sql(self, gov: Any, raw: Any, read_only: bool) -> tuple[str, ...]:
        self._refuse_open_transaction(gov, raw, read_only)
        return (f"SET SESSION TRANSACTION {'READ ONLY' if read_only else 'READ WRITE'}",)

    def after_session_switch(self, gov: Any, raw: Any, read_only: bool) -> None:
        # a SELECT without autocommit starts a transaction the server reports only after the next statement
        self._refuse_open_transaction(gov, raw, read_only)

    @staticmethod
    def _refuse_open_transaction(gov: Any, raw: Any, read_only: bool) -> None:
        if read_only and raw.server_status & _SERVER_STATUS_IN_TRANS:
            # MySQL changes the access mode of the *next* transaction only: the open one would stay writable.
            # Autocommit does not rule one out: begin() (or a person's BEGIN) opens one explicitly.
            raise gov.refusal(GuardrailViolation(
                "refused by governed_db: a read-only identity cannot act inside a transaction that is already "
                "open and writable on MySQL/MariaDB. Next step: commit or roll back first."
            ))  # fmt: skip

    def is_read_only_error(self, exc: BaseException) -> bool:
        args: tuple[Any, ...] = getattr(exc, "args", ())
        return len(args) > 0 and args[0] == 1792  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
    def on_wrap(self, proxy: Any, gov: Any) -> None:
        db = getattr(proxy.__wrapped__, "db", None)
        name = db.decode("utf-8", "replace") if isinstance(db, bytes) else db
        if isinstance(name, str) and name.lower() == "mysql":
            # unqualified names would be the catalog's own tables (user, global_priv): USE mysql is refused too
            raise ConfigurationError(
                "this connection's default database is the mysql system database; connect to an application "
                "database (database=...) and qualify catalog reads (information_schema, mysql.*) instead"
            )

    def lexing_settings(self, raw: Any) -> dict[str, str | None] | None:
        # one query at wrap time: sql_mode (ANSI_QUOTES is not reported in the server status flags)
        cur = raw.cursor(self.module.cursors.Cursor)  # tuples, whatever cursorclass the connection uses
        try:
            cur.execute("SELECT @@session.character_set_client, @@session.character_set_connection, "
                        "@@session.sql_mode")
            row = cur.fetchone()
        finally:
            cur.close()
        client, connection, mode = (None, None, None) if row is None else tuple(row)
        return {
            "character_set_client": None if client is None else str(client),
            "character_set_connection": None if connection is None else str(connection),
            "sql_mode": "" if mode is None else str(mode),
        }

    def static_attributes(self, raw: Any) -> dict[str, Any]:
        attrs = super().static_attributes(raw)
        if "mariadb" in str(getattr(raw, "server_version", "")).lower():
            attrs[DB_SYSTEM_NAME] = "mariadb"  # the semantic conventions name MariaDB on its own
        db = getattr(raw, "db", None)
        if isinstance(db, bytes):
            db = db.decode("utf-8", "replace")
        if db:
            attrs[DB_NAMESPACE] = db
        host, port = getattr(raw, "host", None), getattr(raw, "port", None)
        if isinstance(host, str):
            attrs[SERVER_ADDRESS] = host
        if isinstance(port, int):
            attrs[SERVER_PORT] = port
        return attrs


__all__ = ["PyMySQLConnection", "PyMySQLCursor", "PyMySQLDriver"]
