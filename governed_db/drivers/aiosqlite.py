"""aiosqlite: ``Connection``/``Cursor``, ``execute*`` shortcuts, ``execute_fetchall``, the non-SQL exits.

aiosqlite's methods return a ``Result`` (awaitable, and an ``async with``
that closes the cursor); the governed ones do too. The connection shortcuts
(``execute``, ``executemany``, ``executescript``, ``execute_fetchall``,
``execute_insert``) run on a governed cursor. ``backup``, ``iterdump`` and
``load_extension`` are judged as the statements they amount to, as for
:mod:`sqlite3` (:mod:`governed_db.drivers.sqlite`). ``row_factory`` and
``text_factory`` are the driver's; rows in any of their shapes are masked
like sqlite3's.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

from aiosqlite.context import Result

from governed_db.async_proxies import AsyncGovernedConnection, AsyncGovernedCursor, govern, rows_out
from governed_db.drivers import innermost, shadowing
from governed_db.drivers._async import AsyncDriver
from governed_db.drivers.sqlite import (
    _LENIENT,
    BUILTIN_FUNCTION_SQL,
    SqliteDriver,
    caller_code,
    compiled_again,
    converter_failed,
    copy_refusal,
    copy_stand_in,
    fetch_failed,
    harmless_callable,
    hook_refusal,
    lenient_fetch,
    masked_indexes,
    own_reads_untraced,
    settle,
)
from governed_db.errors import GuardrailViolation
from governed_db.masking.flow import known_function_name
from governed_db.masking.row_length import DEFAULT_LIMIT
from governed_db.proxies import PrivateWithheld, many_out


def _refuse_factory(gov: Any, what: str, factory: Any) -> None:
    """aiosqlite hands a row or text factory to sqlite3 itself, which calls it with every raw value (governed_db's
    own catalog samples too) before masking: only the factories masking reads natively are let through."""
    allowed = (None, sqlite3.Row) if what == "row_factory" else (str, bytes, bytearray)
    if factory in allowed:
        return
    name = getattr(factory, "__name__", type(factory).__name__)
    raise gov.refusal(
        GuardrailViolation(
            f"refused by governed_db: {what} = {name} would be called with every value before masking. "
            f"Next step: keep {'None or sqlite3.Row' if what == 'row_factory' else 'str, bytes or bytearray'}, "
            "and convert the fetched (masked) rows instead."
        )
    )


class _RowFactoryGuard:
    """``row_factory`` of an aiosqlite connection or cursor: only the factories masking reads natively are set."""

    __wrapped__: Any
    _self_gov: Any

    @property
    def row_factory(self) -> Any:
        return self.__wrapped__.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        _refuse_factory(self._self_gov, "row_factory", factory)
        self.__wrapped__.row_factory = factory


class AiosqliteCursor(_RowFactoryGuard, PrivateWithheld, AsyncGovernedCursor):
    async def executescript(self, sql_script: Any) -> Any:
        raw = self.__wrapped__
        out = await govern(
            self._self_gov, "cursor.executescript", sql_script, None, raw.executescript, self._self_result
        )
        return self._self_out(out)

    # sqlite3 decodes text while rows are fetched, as for the sync cursor (decision 0191): a fetch error quotes
    # the cell it could not decode, so it is scrubbed; and whether a *computed* masked value decodes at all may
    # depend on what it holds, so such a result is fetched with a text factory that cannot fail and only a
    # column masking does not cover fails as the driver would (decision 0238)
    async def fetchone(self) -> Any:
        row = await self._self_fetch("fetchone")
        st = self._self_result
        return st.one(row) if st.active else row

    async def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        size = args[0] if args else kwargs.get("size")
        rows = await self._self_fetch("fetchmany", *(() if size is None else (size,)))
        return many_out(self, rows, args, kwargs)

    async def fetchall(self) -> Any:
        return many_out(self, await self._self_fetch("fetchall"), None, None)

    def __aiter__(self) -> Any:
        return rows_out(self._self_result, self._self_chunks())

    async def _self_chunks(self) -> AsyncIterator[Any]:
        """aiosqlite's own chunked iteration, through :meth:`_self_fetch`."""
        size = self.__wrapped__.iter_chunk_size
        while True:
            rows = await self._self_fetch("fetchmany", size)
            if not rows:
                return
            for row in rows:
                yield row

    async def _self_fetch(self, name: str, *args: Any) -> Any:
        """One fetch of the sqlite3 cursor on aiosqlite's thread: errors scrubbed, leniently decoded when a masked
        column is computed (undecodable cells then settled as :func:`governed_db.drivers.sqlite.settle` says)."""
        raw = self.__wrapped__
        inner = raw._cursor  # the sqlite3 cursor aiosqlite runs on its own thread
        fetch = getattr(inner, name)
        plan = self._self_result.plan
        try:
            if plan is None or not bool(getattr(plan, "computed", True)):
                return await raw._execute(fetch, *args)
            out, dirty = await raw._execute(lenient_fetch, inner.connection, fetch, *args)
        except sqlite3.Error as e:
            fetch_failed(self, e)
            raise
        except Exception as e:
            if plan is not None:
                converter_failed(e)
            raise
        if not dirty or out is None:
            return out
        names = tuple(str(d[0]) for d in inner.description or ())
        masked = masked_indexes(plan, names)
        return settle(out, names, masked) if name == "fetchone" else [settle(r, names, masked) for r in out]


class AiosqliteConnection(_RowFactoryGuard, PrivateWithheld, AsyncGovernedConnection):
    cursor_proxy = AiosqliteCursor

    @property
    def text_factory(self) -> Any:
        factory = self.__wrapped__.text_factory
        return str if factory is _LENIENT else factory

    @text_factory.setter
    def text_factory(self, factory: Any) -> None:
        _refuse_factory(self._self_gov, "text_factory", factory)
        self.__wrapped__.text_factory = factory

    @property
    def _connection(self) -> Any:
        # SQLAlchemy's aiosqlite adapter asks whether the connection is open by this private member; the
        # sqlite3 connection itself would run statements around governance, so it answers only that
        return True if self.__wrapped__._connection is not None else None

    def cursor(self) -> Any:
        return Result(self._self_cursor())

    async def _self_cursor(self) -> AiosqliteCursor:
        return AiosqliteCursor(await self.__wrapped__.cursor(), self._self_gov, self)

    # -- shortcuts: on a governed cursor, returned as aiosqlite returns them --------------------
    def execute(self, sql: Any, parameters: Any = None) -> Any:
        return Result(self._self_run("execute", sql, [] if parameters is None else parameters))

    def executemany(self, sql: Any, parameters: Any) -> Any:
        return Result(self._self_run("executemany", sql, parameters))

    def executescript(self, sql_script: Any) -> Any:
        return Result(self._self_run("executescript", sql_script))

    def execute_fetchall(self, sql: Any, parameters: Any = None) -> Any:
        return Result(self._self_fetchall(sql, [] if parameters is None else parameters))

    def execute_insert(self, sql: Any, parameters: Any = None) -> Any:
        return Result(self._self_insert(sql, [] if parameters is None else parameters))

    async def _self_run(self, name: str, *args: Any) -> AiosqliteCursor:
        cur = await self._self_cursor()
        await getattr(cur, name)(*args)
        return cur

    async def _self_fetchall(self, sql: Any, parameters: Any) -> Any:
        cur = await self._self_run("execute", sql, parameters)
        try:
            return await cur.fetchall()
        finally:
            await cur.close()

    async def _self_insert(self, sql: Any, parameters: Any) -> Any:
        cur = await self._self_run("execute", sql, parameters)
        try:
            raw = cur.__wrapped__  # the rowid of the insert just judged; no table data is read
            await raw.execute("SELECT last_insert_rowid()")
            return await raw.fetchone()
        finally:
            await cur.close()

    # -- the non-SQL ways data leaves (as for sqlite3) -------------------------------------------
    async def backup(self, target: Any, **kwargs: Any) -> Any:
        raw_target = innermost(target)
        with copy_refusal("connection.backup"):
            return await govern(
                self._self_gov,
                "connection.backup",
                copy_stand_in("connection.backup"),
                None,
                lambda _s: self.__wrapped__.backup(raw_target, **kwargs),
            )

    async def iterdump(self) -> AsyncIterator[str]:
        async def dump(_s: Any) -> list[str]:
            return [line async for line in self.__wrapped__.iterdump()]

        with copy_refusal("connection.iterdump"):
            lines = await govern(
                self._self_gov, "connection.iterdump", copy_stand_in("connection.iterdump"), None, dump
            )
        for line in lines:
            yield line

    async def create_function(self, name: str, *args: Any, **kwargs: Any) -> Any:
        # as for sqlite3: a Python function under a name masking trusts (upper, reverse) would see raw values
        if harmless_callable(args[1] if len(args) > 1 else kwargs.get("func")):
            return await self.__wrapped__.create_function(name, *args, **kwargs)
        if known_function_name(str(name), "sqlite"):
            raise self._self_gov.refusal(shadowing(name, "function"))
        try:
            cur = await self.__wrapped__.execute(BUILTIN_FUNCTION_SQL, (str(name).lower(),))
            builtin = bool(await cur.fetchall())
            await cur.close()
        except Exception:
            builtin = True  # cannot tell: fail closed
        if builtin:
            raise self._self_gov.refusal(shadowing(name, "function"))
        out = await self.__wrapped__.create_function(name, *args, **kwargs)
        caller_code(self._self_gov, name, (args[1] if len(args) > 1 else kwargs.get("func")) is not None)
        return out

    async def set_authorizer(self, *args: Any, **kwargs: Any) -> Any:
        raise self._self_gov.refusal(hook_refusal("set_authorizer()"))

    async def set_trace_callback(self, trace_callback: Any) -> Any:
        return await self.__wrapped__.set_trace_callback(own_reads_untraced(trace_callback))

    async def set_progress_handler(self, handler: Any, *args: Any, **kwargs: Any) -> Any:
        if handler is not None:
            raise self._self_gov.refusal(hook_refusal("set_progress_handler() with a handler"))
        return await self.__wrapped__.set_progress_handler(handler, *args, **kwargs)

    async def load_extension(self, path: Any) -> Any:
        return await govern(
            self._self_gov,
            "connection.load_extension",
            "SELECT load_extension(?)",
            None,
            lambda _s: self.__wrapped__.load_extension(path),
        )


def _catalog_read(conn: sqlite3.Connection, sql: str, params: Any) -> tuple[Any, list[Any]]:
    """One of masking's catalog reads or samples on the sqlite3 connection: text decoded as ``str`` and rows as
    tuples whatever factories the caller set (``text_factory = bytes`` is allowed). Read through the caller's
    ``bytes``, a sample classified nothing, so a column of SSNs under a plain name went out in clear and could be
    filtered on (decision 0325)."""
    from governed_db.masking.schema import sqlite_defaults

    with sqlite_defaults(conn):
        cur = conn.cursor()
        cur.row_factory = None
        try:
            cur.execute(sql, params if params is not None else [])
            return cur.description, cur.fetchall()
        finally:
            cur.close()


#: statements judged by the length limit: an UPDATE (decision 0405), a value grown from another (decision 0421)
_LENGTH_JUDGED = re.compile(
    r"\bUPDATE\b|\|\||\b(?:hex|quote|json_quote|replace|printf|format|json_array|json_object)\s*\(", re.IGNORECASE
)


class AiosqliteDriver(AsyncDriver, SqliteDriver):
    """sqlite3 under a thread: the effect guard and ``PRAGMA query_only`` are sqlite3's (:class:`SqliteDriver`);
    the transaction state is read from aiosqlite's own properties (``isolation_level``, ``in_transaction``)."""

    name = "aiosqlite"
    dialect = "sqlite"
    db_system = "sqlite"

    def __init__(self, module: Any = None) -> None:
        if module is None:
            import aiosqlite

            module = aiosqlite
        super().__init__(module)

    @property
    def connection_proxy(self) -> type:
        return AiosqliteConnection

    def paramstyle_for(self, raw: Any) -> str:
        return "qmark"

    def is_closed(self, raw: Any) -> bool:
        return getattr(raw, "_connection", None) is None

    async def warm_catalog(self, gov: Any, sql: Any) -> None:
        await super().warm_catalog(gov, sql)
        raw = innermost(gov.raw)
        conn = getattr(raw, "_conn", None)
        state = gov.masking_state
        getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
        if state is not None and getlimit is not None and _LENGTH_JUDGED.search(str(sql)):
            # an UPDATE, and a value grown from a masked one, are judged by the length limit (decisions 0405,
            # 0421), read on aiosqlite's thread
            try:
                state.length_limit = await raw._execute(getlimit, getattr(sqlite3, "SQLITE_LIMIT_LENGTH", 0))
            except sqlite3.Error:
                state.length_limit = None

    def length_limit(self, gov: Any) -> int | None:
        state = gov.masking_state
        if getattr(getattr(innermost(gov.raw), "_conn", None), "getlimit", None) is None:
            return DEFAULT_LIMIT  # before Python 3.11 no limit can be lowered either
        return None if state is None else state.length_limit  # type: ignore[no-any-return]

    def longest_value(self, gov: Any, table: tuple[str, ...], column: str) -> int | None:
        return None  # sqlite3's connection lives on aiosqlite's thread: a copy is judged unbounded (decision 0413)

    async def catalog_rows(self, raw: Any, sql: str, params: Any) -> tuple[Any, list[Any]]:
        # on aiosqlite's thread, as sqlite3's own reads are (decision 0325)
        out: tuple[Any, list[Any]] = await raw._execute(_catalog_read, raw._conn, sql, params)
        return out

    def note_compiling(self, raw: Any, sql: Any, exc: BaseException) -> None:
        return None  # sqlite3's connection lives on aiosqlite's thread: note_compiling_async runs it there

    async def note_compiling_async(self, raw: Any, sql: Any, exc: BaseException) -> None:
        conn = getattr(raw, "_conn", None)
        if isinstance(conn, sqlite3.Connection):
            await raw._execute(compiled_again, conn, sql, exc)

    # read-only sessions (PRAGMA query_only) and the effect guard are sqlite3's (SqliteDriver)
    async def guard_execute_async(self, raw: Any, sql: str) -> list[Any]:
        async with raw.execute(str(sql)) as cur:
            return list(await cur.fetchall()) if cur.description else []


__all__ = ["AiosqliteConnection", "AiosqliteCursor", "AiosqliteDriver"]
