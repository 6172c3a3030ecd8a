"""aiomysql: the async MySQL/MariaDB driver (PyMySQL's protocol code on asyncio).

Chosen over asyncmy because it is what most users run: it is aio-libs'
driver, the one SQLAlchemy's asyncio docs and most tutorials use
(decision 0101).

``conn.cursor(...)`` (awaited or ``async with``) gives a governed cursor of
whatever class was asked for (``DictCursor``, ``SSCursor``...); its
``execute``, ``executemany``, ``callproc`` are judged, and every exit
(``fetch*`` whether the driver returns a future or a coroutine, ``async
for``, ``nextset``) passes through the result state. ``Connection.query()``
is judged like any statement; the connection's raw result (``_result``) is
withheld, as are the driver's other private members, so a cursor class built
directly on the governed connection cannot read rows around masking.
``select_db(db)`` is judged as ``USE db`` and ``kill(id)`` as ``KILL id``.
"""

from __future__ import annotations

import warnings
from typing import Any

from governed_db import masking
from governed_db.async_proxies import AsyncGovernedConnection, AsyncGovernedCursor, govern
from governed_db.drivers import quote_ident
from governed_db.drivers._async import AsyncDriver
from governed_db.drivers._decoders import GuardedDecoders, check_cursor_class
from governed_db.drivers.pymysql import PyMySQLDriver
from governed_db.errors import InvalidStatement
from governed_db.guards.session import reconnected
from governed_db.pipeline import judged_call_async
from governed_db.proxies import PrivateWithheld, withhold_unplanned
from governed_db.results import ResultState


class AiomysqlCursor(PrivateWithheld, AsyncGovernedCursor):
    private_allowed = frozenset({"_executed", "_last_executed"})  # the last statement's text, for debugging

    def __init__(self, raw: Any, gov: Any, connection: Any) -> None:
        super().__init__(raw, gov, connection)
        # aiomysql's cursor reads SHOW WARNINGS on the raw connection after a statement that warned and repeats
        # each message as a Python warning: they quote values (``Truncated incorrect DOUBLE value: 'Alice
        # Smith'`` from a conversion inside a view), so this cursor's are blanked first (decision 0238)
        # (SQLAlchemy's adapter silences them with a subclass of its own: left as it is)
        from aiomysql.cursors import Cursor

        if getattr(type(raw), "_show_warnings", None) is Cursor._show_warnings:
            raw._show_warnings = self._self_show_warnings

    async def _self_show_warnings(self, conn: Any) -> None:
        result = self.__wrapped__._result
        if result and result.has_next:
            return
        category = getattr(self.__wrapped__, "Warning", Warning)  # PyMySQL's, as aiomysql warns
        gov = self._self_gov
        # scrubbed as a governed SHOW WARNINGS scrubs it: the optimizer's rewritten statement (Note 1003,
        # after EXPLAIN EXTENDED) quotes the rows read by key and is withheld whole (decision 0274), and the
        # warnings of a statement whose rows an index on a masked column may order are withheld (0312)
        messages = [masking.scrub_warning(str(row[-1]), gov=gov) for row in await conn.show_warnings() or ()]
        for message in masking.listed_warnings(messages, gov=gov):
            warnings.warn(message, category, 4)

    async def nextset(self) -> Any:
        self._self_result.finish()
        out = await self.__wrapped__.nextset()
        withhold_unplanned(self._self_gov, self._self_result, bool(out))
        return self._self_out(out)

    async def callproc(self, procname: Any, args: Any = ()) -> Any:
        raw, gov = self.__wrapped__, self._self_gov
        if not isinstance(procname, str):
            raise gov.refusal(
                InvalidStatement(f"callproc() takes the procedure name as str, got {type(procname).__name__}")
            )
        sql = f"CALL {procname}({', '.join('%s' for _ in (args or ()))})"
        return await govern(gov, "cursor.callproc", sql, args, lambda _s: raw.callproc(procname, args), self._self_result)


class _QueryEffect:
    """What ``connection.query()`` changed, for the effect guard: the connection's last result (rows matched)."""

    __slots__ = ("conn",)
    description = None  # its rows are never handed out: nothing to plan

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @property
    def rowcount(self) -> Any:
        return self.conn.affected_rows()

    @property
    def _result(self) -> Any:
        return self.conn._result


class AiomysqlConnection(GuardedDecoders, PrivateWithheld, AsyncGovernedConnection):
    cursor_proxy = AiomysqlCursor

    def cursor(self, *cursors: Any) -> Any:
        from aiomysql.utils import _ContextManager

        return _ContextManager(self._self_cursor(*cursors))  # awaited, or ``async with`` (closes it)

    async def _self_cursor(self, *cursors: Any) -> AiomysqlCursor:
        for cls in cursors:
            check_cursor_class(self._self_gov, self.__wrapped__, "cursor class", cls)
        return AiomysqlCursor(await self.__wrapped__.cursor(*cursors), self._self_gov, self)

    async def query(self, sql: Any, unbuffered: bool = False) -> Any:
        raw = self.__wrapped__
        # no rows leave here (the connection's result is withheld); the state tells the effect guard the count
        st = ResultState(_QueryEffect(raw), self._self_gov)
        return await govern(self._self_gov, "connection.query", sql, None,
                            lambda s: raw.query(s, unbuffered=unbuffered), st)  # fmt: skip

    async def show_warnings(self) -> Any:
        """aiomysql's ``show_warnings()`` runs ``SHOW WARNINGS`` on the raw connection, whose messages quote values
        of earlier statements: here it is a governed statement, its messages scrubbed (as for PyMySQL)."""
        from aiomysql.cursors import Cursor

        cur = await self._self_cursor(Cursor)
        try:
            await cur.execute("SHOW WARNINGS")
            return tuple(await cur.fetchall())
        finally:
            await cur.close()

    async def select_db(self, db: Any) -> Any:
        if not isinstance(db, str):
            raise self._self_gov.refusal(InvalidStatement(f"select_db() takes a database name, got {type(db).__name__}"))
        return await govern(
            self._self_gov, "connection.select_db", f"USE {quote_ident(db, '`')}", None,
            lambda _s: self.__wrapped__.select_db(db),
        )

    # -- methods that change the session (docs/guardrails.md) -----------------------------------
    async def autocommit(self, value: Any) -> Any:
        # aiomysql sends SET AUTOCOMMIT: judged as it, like any statement (the read-only session survives it)
        raw = self.__wrapped__
        return await judged_call_async(self._self_gov, "connection.autocommit",
                                       f"SET AUTOCOMMIT = {1 if value else 0}", lambda: raw.autocommit(value))  # fmt: skip

    async def set_charset(self, charset: Any) -> Any:
        # the client character set decides how the server lexes later statements: judged as SET NAMES
        raw = self.__wrapped__
        if not isinstance(charset, str) or not charset.isidentifier():
            raise self._self_gov.refusal(InvalidStatement(f"set_charset() takes a character set name, got {charset!r}"))
        return await judged_call_async(self._self_gov, "connection.set_charset", f"SET NAMES {charset}",
                                       lambda: raw.set_charset(charset))  # fmt: skip

    async def ping(self, reconnect: bool = True) -> Any:
        # a reconnect (aiomysql's default) starts a new session with the server's defaults: set again
        raw = self.__wrapped__
        before = None if raw.closed else raw.thread_id()
        try:
            return await raw.ping(reconnect)
        finally:
            reconnected(self._self_gov, before, None if raw.closed else raw.thread_id())

    async def kill(self, thread_id: Any) -> Any:
        return await govern(
            self._self_gov, "connection.kill", f"KILL {int(thread_id)}", None,
            lambda _s: self.__wrapped__.kill(thread_id),
        )


async def _own_cursor(raw: Any) -> Any:
    """A raw cursor for governed_db's own reads (samples of a table's values, the effect guard): aiomysql would
    repeat their warnings to the caller as Python warnings, quoting the values sampled."""
    cur = await raw.cursor()
    cur._show_warnings = _no_warnings
    return cur


async def _no_warnings(_conn: Any) -> None:
    return None


class AiomysqlDriver(AsyncDriver, PyMySQLDriver):
    name = "aiomysql"

    def __init__(self, module: Any = None) -> None:
        if module is None:
            import aiomysql

            module = aiomysql
        super().__init__(module)

    @property
    def connection_proxy(self) -> type:
        return AiomysqlConnection

    def is_closed(self, raw: Any) -> bool:
        return bool(raw.closed)

    def lexing_settings(self, raw: Any) -> dict[str, str | None] | None:
        # wrap() cannot await a query: the client character set is known here (sent at the handshake, it is the
        # session's character_set_client/_connection); sql_mode is the one passed to connect(), when it was
        # (a server whose *default* sql_mode has ANSI_QUOTES is not seen: docs/async.md, limits)
        charset = getattr(raw, "charset", None)
        values: dict[str, str | None] = {"character_set_client": charset, "character_set_connection": charset}
        mode = getattr(raw, "sql_mode", None)
        if mode is not None:
            values["sql_mode"] = str(mode)
        return values

    async def catalog_rows(self, raw: Any, sql: str, params: Any) -> tuple[Any, list[Any]]:
        cur = await _own_cursor(raw)
        try:
            await cur.execute(sql, params)
            return cur.description, list(await cur.fetchall())
        finally:
            await cur.close()

    async def guard_execute_async(self, raw: Any, sql: str) -> list[Any]:
        # the effect guard and session switch are PyMySQL's (PyMySQLDriver); only the cursor is awaited
        cur = await _own_cursor(raw)
        try:
            await cur.execute(sql)
            return list(await cur.fetchall()) if cur.description else []
        finally:
            await cur.close()


__all__ = ["AiomysqlConnection", "AiomysqlCursor", "AiomysqlDriver"]
