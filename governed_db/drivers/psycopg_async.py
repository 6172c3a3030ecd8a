"""psycopg 3 async: ``AsyncConnection``, ``AsyncCursor``, ``AsyncServerCursor``, ``stream``, ``copy``, pipelines.

The async counterparts of :mod:`governed_db.drivers.psycopg`, sharing its
result-set and protocol-handle rules (:class:`PsycopgResults`,
:class:`PsycopgConnectionFacts`); only the awaited driver calls are written
here. ``await conn.execute()`` runs on a governed cursor; ``stream()`` stays
lazy and its rows pass through the result state; ``copy()`` is judged as the
COPY statement and refused when a COPY ... TO would export masked columns
(decision 0061); in pipeline mode a statement's result is fetched before it
is planned (fail closed, as for sync pipelines).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from governed_db.async_proxies import (
    AsyncGovernedConnection,
    AsyncGovernedCursor,
    AsyncOwnedByGoverned,
    govern,
    prepend,
    rows_out,
    scrubbed_async,
)
from governed_db.drivers._async import AsyncDriver
from governed_db.drivers._copy import copy_out_probe, refuse_masked_columns, refuse_unread_copy, undescribable
from governed_db.drivers.psycopg import (
    PsycopgConnectionFacts,
    PsycopgDriver,
    PsycopgResults,
    PsycopgRowFactories,
)
from governed_db.pipeline import judged_call_async
from governed_db.proxies import PrivateWithheld, _params, check_placeholders, withhold_unplanned

_END = object()


class AsyncPsycopgCursor(PsycopgRowFactories, PrivateWithheld, PsycopgResults, AsyncGovernedCursor):
    """``AsyncCursor``, ``AsyncClientCursor``, ``AsyncRawCursor`` and ``AsyncServerCursor`` alike."""

    #: SQLAlchemy's async adapter closes cursors with the private, synchronous ``_close()``
    private_allowed = frozenset({"_close"})

    async def execute(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        self._self_many = False
        raw, gov = self.__wrapped__, self._self_gov
        params = _params(args, kwargs)
        check_placeholders(gov, operation, params)

        async def call(sql: Any) -> Any:
            out = await raw.execute(sql, *args, **kwargs)
            if getattr(raw.connection, "_pipeline", None) is not None and raw.description is None:
                # pipeline mode: masking is planned from the description before any row leaves
                await raw._fetch_pipeline()
            return out

        return self._self_out(await govern(gov, "cursor.execute", operation, params, call, self._self_result))

    async def executemany(self, operation: Any, seq_of_parameters: Any, *args: Any, **kwargs: Any) -> Any:
        out = await super().executemany(operation, seq_of_parameters, *args, **kwargs)
        self._self_many = True  # one statement's result sets: one plan for them all
        return out

    async def set_result(self, index: int) -> Any:
        out = await self.__wrapped__.set_result(index)
        if not self._self_many:
            withhold_unplanned(self._self_gov, self._self_result, index != 0)
        return self._self_out(out)

    async def results(self) -> AsyncIterator[Any]:
        first = True
        async for _ in self.__wrapped__.results():
            if not first and not self._self_many:
                withhold_unplanned(self._self_gov, self._self_result, True)
            first = False
            yield self

    async def stream(self, query: Any, params: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        # an async generator, like psycopg's: judged and sent at the first row asked for
        gov, raw, st = self._self_gov, self.__wrapped__, self._self_result
        check_placeholders(gov, query, params)
        self._self_many = False
        gen = raw.stream(query, params, **kwargs)

        async def call(sql: Any) -> Any:
            nonlocal gen
            gen = raw.stream(sql, params, **kwargs)
            return await anext(gen, _END)  # runs the query, so the description exists for the plan

        try:
            first = await govern(gov, "cursor.stream", query, params, call, st)
            if first is _END:
                st.finish()
                return
            async for row in rows_out(st, scrubbed_async(self, prepend(first, gen))):
                yield row
        finally:
            await gen.aclose()  # lets psycopg cancel a stream abandoned half-way

    @asynccontextmanager
    async def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        gov, raw = self._self_gov, self.__wrapped__
        text = gov.driver.statement_text(statement, gov.raw)
        async with AsyncExitStack() as stack:

            async def call(sql: Any) -> Any:
                await refuse_unmaskable_copy(gov, text)
                return await stack.enter_async_context(raw.copy(sql, params, **kwargs))

            copy = await govern(gov, "cursor.copy", statement, params, call)
            yield AsyncOwnedByGoverned(copy, self.connection, self)


async def refuse_unmaskable_copy(gov: Any, text: str) -> None:
    """The async form of :func:`governed_db.drivers._copy.refuse_unmaskable_copy` (describe awaited)."""
    probe = copy_out_probe(text, gov.dialect)
    if probe is None:
        refuse_unread_copy(gov, text)
        return
    try:
        async with gov.raw.cursor() as cur:
            await cur.execute(probe)
            description = cur.description
    except Exception as e:
        undescribable(gov, e)
        return
    refuse_masked_columns(gov, probe, description, "COPY ... TO exports rows the database formats itself")


class AsyncPsycopgConnection(PsycopgConnectionFacts, AsyncGovernedConnection):
    cursor_proxy = AsyncPsycopgCursor

    # -- read_only=False makes psycopg open transactions with BEGIN READ WRITE: judged as that statement.
    # autocommit needs no judging: PostgreSQL keeps the session's read-only default whichever way it is.
    async def set_read_only(self, value: Any) -> Any:
        raw = self.__wrapped__
        if value is True:
            return await raw.set_read_only(value)
        return await judged_call_async(self._self_gov, "connection.set_read_only", "BEGIN READ WRITE",
                                       lambda: raw.set_read_only(value))  # fmt: skip

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "read_only":  # psycopg's async connection refuses the setter itself (use set_read_only)
            setattr(self.__wrapped__, name, value)
            return
        super().__setattr__(name, value)

    async def execute(self, query: Any, params: Any = None, *, prepare: Any = None, binary: bool = False) -> Any:
        cur = self.cursor(binary=True) if binary else self.cursor()
        return await cur.execute(query, params, prepare=prepare)

    @asynccontextmanager
    async def transaction(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with self.__wrapped__.transaction(*args, **kwargs) as tx:
            yield AsyncOwnedByGoverned(tx, self)

    @asynccontextmanager
    async def pipeline(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with self.__wrapped__.pipeline(*args, **kwargs) as pipe:
            yield AsyncOwnedByGoverned(pipe, self)


class AsyncPsycopgDriver(AsyncDriver, PsycopgDriver):
    name = "psycopg-async"

    @property
    def connection_proxy(self) -> type:
        return AsyncPsycopgConnection

    async def catalog_rows(self, raw: Any, sql: str, params: Any) -> tuple[Any, list[Any]]:
        from psycopg import pq
        from psycopg.rows import tuple_row

        status = raw.info.transaction_status
        if status == pq.TransactionStatus.INERROR:  # the caller's transaction failed; reading would too
            raise LookupError("transaction failed")
        if status == pq.TransactionStatus.ACTIVE:  # a stream or copy is in progress
            raise LookupError("connection busy")
        savepoint = status == pq.TransactionStatus.INTRANS
        rollback_after = status == pq.TransactionStatus.IDLE and not raw.autocommit
        # plain tuples whatever ``row_factory`` the application gave the connection (a class, kwargs_row): the
        # catalog reads and samples are governance's own, never handed to the application's factory
        async with raw.cursor(row_factory=tuple_row) as cur:
            if savepoint:
                await cur.execute("SAVEPOINT governed_db_catalog")
            try:
                await cur.execute(sql, params)
                out = cur.description, await cur.fetchall()
            except BaseException:
                if savepoint:
                    await cur.execute("ROLLBACK TO SAVEPOINT governed_db_catalog")
                    await cur.execute("RELEASE SAVEPOINT governed_db_catalog")
                elif rollback_after:
                    await raw.rollback()
                raise
            if savepoint:
                await cur.execute("RELEASE SAVEPOINT governed_db_catalog")
            elif rollback_after:
                await raw.rollback()  # the read must not leave a transaction open
            return out

    def is_closed(self, raw: Any) -> bool:
        return bool(raw.closed)

    async def guard_execute_async(self, raw: Any, sql: str) -> list[Any]:
        from psycopg.rows import tuple_row

        cur = raw.cursor(row_factory=tuple_row)
        try:
            await cur.execute(sql)
            pipeline = getattr(raw, "_pipeline", None)
            if pipeline is not None:  # its result (or error) now, not at the application's next sync
                await pipeline.sync()
            return list(await cur.fetchall()) if cur.description else []
        finally:
            await cur.close()

    async def run_after_async(self, raw: Any, prefix: str, invoke: Any, sql: Any) -> Any:
        # the guard's SAVEPOINT/BEGIN and the statement in one round trip (pipeline mode), as for sync psycopg
        async with raw.pipeline():
            await raw.cursor().execute(prefix)
            return await invoke(sql)  # its results arrive at the pipeline's sync, before this block is left


__all__ = ["AsyncPsycopgConnection", "AsyncPsycopgCursor", "AsyncPsycopgDriver"]
