"""Async proxies: the sync proxies' routing, with the driver call awaited.

An async driver's statement takes the same path as a sync one: the proxy
calls :func:`govern`, which judges it (:meth:`Governor.begin
<governed_db.pipeline.Governor.begin>`), awaits the driver call, and reports
back to the statement (:func:`governed_db.pipeline.run_async`). Rows leave
through the same :class:`~governed_db.results.ResultState` as sync rows. Only
the lines that ``await`` the driver differ from :mod:`governed_db.proxies`;
the parameter handling, placeholder checks and the "hand back the proxy"
rules are the sync proxies' own (shared base class and helpers).

:func:`govern` is the one place a step before or after the awaited driver
call belongs (catalog reads for masking today; an effect guard, say,
tomorrow): every async entry point of every driver goes through it.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import wrapt

from governed_db.masking.messages import loggable
from governed_db.masking.notices import fetched_async
from governed_db.pipeline import Governor, run_async
from governed_db.proxies import (
    CURSOR_SHORTCUTS,
    CursorProxy,
    GovernedConnection,
    _params,
    check_placeholders,
    many_out,
    scrub_fetch_error,
)
from governed_db.results import ResultState

R = TypeVar("R")
log = logging.getLogger("governed_db")


async def govern(
    gov: Governor,
    entry: str,
    sql: Any,
    params: Any,
    call: Callable[[Any], Awaitable[R]],
    result: ResultState | None = None,
) -> R:
    """Govern one statement an async driver runs: ``await call(statement)`` is the driver call.

    Before the statement is judged, the catalog facts masking needs are read
    with ``await`` (masking itself is synchronous and cannot await them).
    """
    warm = getattr(gov.driver, "warm_catalog", None)
    if warm is not None:
        try:
            await warm(gov, sql)
        except Exception as e:  # masking then judges without the catalog: by names and values, masking when unsure
            log.debug("governed_db: async catalog reads failed before judging: %s", loggable(e))
    return await run_async(gov, entry, sql, params, call, result)


async def maybe_await(value: Any) -> Any:
    """``value``, awaited when the driver returned an awaitable (aiomysql's sync-or-future methods)."""
    return await value if inspect.isawaitable(value) else value


async def rows_out(st: ResultState, rows: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The rows of an async iterator through the result state: masked, capped at the row limit, counted."""
    if not st.active:
        async for row in rows:
            yield row
        return
    if st.poisoned is not None:
        raise st.poisoned
    async for row in rows:
        out = st.one(row)
        if out is None:  # the row cap was reached (one() recorded the result)
            return
        yield out
    st.finish()


async def scrubbed_async(cursor: Any, rows: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """``rows``, an error raised while iterating them scrubbed; pulled with notices dropped where the statement
    read in a masked order (a server-side cursor fetches as it iterates, decision 0340)."""
    st = getattr(cursor, "_self_result", cursor)
    try:
        if not getattr(st, "read_order", False):
            async for row in rows:
                yield row
            return
        while True:
            try:
                row = await fetched_async(st, rows.__anext__)
            except StopAsyncIteration:
                return
            yield row
    except Exception as e:
        scrub_fetch_error(cursor, e)
        raise


async def prepend(first: Any, rows: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """``first``, then the rest of ``rows`` (a stream whose first row was read to plan masking)."""
    yield first
    async for row in rows:
        yield row


class AsyncRowsOut:
    """Mixin: the awaited ``fetch*`` exits and ``async for``, all through ``self._self_result``."""

    __wrapped__: Any
    _self_result: ResultState

    # a fetch error that quotes a value is scrubbed as a statement's is (decision 0238)
    async def fetchone(self) -> Any:
        try:
            row = await fetched_async(self._self_result, self.__wrapped__.fetchone)
        except Exception as e:
            scrub_fetch_error(self, e)
            raise
        st = self._self_result
        return st.one(row) if st.active else row

    async def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        try:
            rows = await fetched_async(self._self_result, self.__wrapped__.fetchmany, *args, **kwargs)
        except Exception as e:
            scrub_fetch_error(self, e)
            raise
        return many_out(self, rows, args, kwargs)

    async def fetchall(self) -> Any:
        try:
            rows = await fetched_async(self._self_result, self.__wrapped__.fetchall)
        except Exception as e:
            scrub_fetch_error(self, e)
            raise
        return many_out(self, rows, None, None)

    def __aiter__(self) -> Any:
        # over the driver's own async iterator, so chunked iteration (aiosqlite, server cursors) stays chunked
        return rows_out(self._self_result, scrubbed_async(self, self.__wrapped__.__aiter__()))

    async def __anext__(self) -> Any:
        st = self._self_result
        try:
            row = await fetched_async(st, self.__wrapped__.__anext__)
        except StopAsyncIteration:
            if st.active:
                st.finish()
            raise
        except Exception as e:
            scrub_fetch_error(self, e)
            raise
        if not st.active:
            return row
        out = st.one(row)
        if out is None:  # the row cap was reached
            raise StopAsyncIteration
        return out


class AsyncGovernedCursor(AsyncRowsOut, CursorProxy):
    """An async DB-API-style cursor (psycopg ``AsyncCursor``, aiosqlite, aiomysql) whose statements are governed."""

    async def __aenter__(self) -> AsyncGovernedCursor:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        self._self_result.finish()
        return await self.__wrapped__.__aexit__(*exc)

    async def close(self) -> Any:
        self._self_result.finish()
        return await maybe_await(self.__wrapped__.close())

    # -- in ------------------------------------------------------------------------------------
    async def execute(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        raw, gov = self.__wrapped__, self._self_gov
        params = _params(args, kwargs)
        check_placeholders(gov, operation, params)
        out = await govern(
            gov, "cursor.execute", operation, params, lambda sql: raw.execute(sql, *args, **kwargs), self._self_result
        )
        return self._self_out(out)

    async def executemany(self, operation: Any, seq_of_parameters: Any, *args: Any, **kwargs: Any) -> Any:
        raw, gov = self.__wrapped__, self._self_gov
        if not isinstance(seq_of_parameters, (list, tuple)):
            seq_of_parameters = list(seq_of_parameters)  # consumed once, by the record and the driver alike
        if seq_of_parameters:
            check_placeholders(gov, operation, seq_of_parameters[0])
        out = await govern(
            gov,
            "cursor.executemany",
            operation,
            seq_of_parameters,
            lambda sql: raw.executemany(sql, seq_of_parameters, *args, **kwargs),
            self._self_result,
        )
        return self._self_out(out)


class AsyncGovernedConnection(GovernedConnection):
    """An async connection: governed cursors, awaited shortcuts, ``async with``."""

    cursor_proxy: type[Any] = AsyncGovernedCursor

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.__wrapped__, name)
        if name in CURSOR_SHORTCUTS and callable(value):
            return functools.partial(run_on_new_cursor, self, name)
        return value

    def __enter__(self) -> Any:
        raise TypeError(f"{type(self.__wrapped__).__name__} is an async connection: use 'async with'")

    async def __aenter__(self) -> AsyncGovernedConnection:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc)


async def run_on_new_cursor(conn: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """``await conn.<name>(...)``: on a new governed cursor, which is returned (as the drivers' shortcuts do)."""
    cur = await maybe_await(conn.cursor())
    await getattr(cur, name)(*args, **kwargs)
    return cur


class AsyncOwnedByGoverned(wrapt.ObjectProxy[Any]):
    """A transaction, copy or pipeline object of an async connection whose ``.connection`` is governed."""

    def __init__(self, raw: Any, connection: Any, cursor: Any = None) -> None:
        super().__init__(raw)
        self._self_connection = connection
        self._self_cursor = cursor

    @property
    def connection(self) -> Any:
        return self._self_connection

    @property
    def cursor(self) -> Any:
        return self._self_cursor if self._self_cursor is not None else self.__wrapped__.cursor

    def __aiter__(self) -> Any:
        return self.__wrapped__.__aiter__()

    async def __aenter__(self) -> Any:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self.__wrapped__.__aexit__(*exc)


def looks_async(conn: Any) -> bool:
    """Whether ``conn`` is an async connection (its statement or transaction methods are coroutines)."""
    cls = type(conn)
    for name in ("execute", "cursor", "commit", "fetch", "close"):
        attr = inspect.getattr_static(cls, name, None)
        if attr is not None and inspect.iscoroutinefunction(getattr(attr, "__func__", attr)):
            return True
    return hasattr(cls, "__aenter__") and not hasattr(cls, "__enter__")


__all__ = [
    "AsyncGovernedConnection",
    "AsyncGovernedCursor",
    "AsyncOwnedByGoverned",
    "AsyncRowsOut",
    "govern",
    "looks_async",
    "maybe_await",
    "prepend",
    "rows_out",
]
