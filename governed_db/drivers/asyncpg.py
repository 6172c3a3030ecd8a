"""asyncpg: not DB-API, but every way SQL goes in and ``Record`` rows come out is governed.

Entry points: ``execute``, ``executemany``, ``fetch``, ``fetchrow``,
``fetchval``, ``fetchmany``, ``cursor`` (awaited or ``async for``),
``prepare`` (and the prepared statement's ``fetch*``, ``executemany``,
``cursor``, ``explain``), and the COPY family: ``copy_from_query`` and
``copy_from_table`` export rows the database formats itself, so they are
refused when a column they export is masked (decision 0061);
``copy_to_table`` and ``copy_records_to_table`` are judged as
``COPY ... FROM STDIN``. Statements use PostgreSQL's own ``$1`` placeholders
and are analysed in the postgres dialect.

There is no cursor to plan masking from, so each call has its own result
state; its description is the prepared statement's attributes, or the keys
of the first ``Record``. asyncpg ``Record`` objects cannot be built from
Python, so a row with masked values comes back as a :class:`GovernedRecord`,
which answers like a ``Record`` (index, key, slice, ``get``, ``keys``,
``values``, ``items``, iteration over values, ``==`` with tuples); rows with
nothing masked are the driver's own ``Record`` objects.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import wrapt

from governed_db import masking
from governed_db.async_proxies import govern, scrubbed_async
from governed_db.drivers import quote_ident
from governed_db.drivers._async import AsyncDriver
from governed_db.drivers._copy import copy_out_probe, refuse_masked_columns, undescribable
from governed_db.drivers._decoders import WRONG_TYPE, check_decoder
from governed_db.drivers._postgres import PostgresSession
from governed_db.errors import GuardrailViolation, InvalidStatement
from governed_db.guards import Query
from governed_db.masking import notices
from governed_db.pipeline import Governor, judged_call_async
from governed_db.proxies import GovernedConnection, PrivateWithheld, check_placeholders, scrub_fetch_error
from governed_db.results import ResultState
from governed_db.semconv import DB_NAMESPACE, SERVER_ADDRESS, SERVER_PORT

_END = object()


class GovernedRecord:
    """A row with masked values that behaves like an ``asyncpg.Record``."""

    __slots__ = ("_index", "_names", "_values")

    def __init__(self, names: tuple[str, ...], values: tuple[Any, ...]) -> None:
        self._names = names
        self._values = tuple(values)
        index: dict[str, int] = {}
        for i, n in enumerate(names):
            index.setdefault(n, i)  # a duplicated name reads the first column, as Record does
        self._index = index

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key]]
            except KeyError:
                raise KeyError(key) from None
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        i = self._index.get(key)
        return default if i is None else self._values[i]

    def keys(self) -> Iterator[str]:
        return iter(self._names)

    def values(self) -> Iterator[Any]:
        return iter(self._values)

    def items(self) -> Iterator[tuple[str, Any]]:
        return iter(zip(self._names, self._values, strict=True))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (GovernedRecord, tuple)) or type(other).__name__ == "Record":
            return self._values == tuple(other)  # type: ignore[arg-type]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return "<Record " + " ".join(f"{n}={v!r}" for n, v in zip(self._names, self._values, strict=True)) + ">"


class _Rows:
    """What the pipeline reads about one asyncpg call's result (there is no cursor)."""

    __slots__ = ("changed", "description", "rowcount")

    def __init__(self) -> None:
        self.description: Any = None
        self.rowcount: int | None = None
        #: rows the command changed, from its status ("UPDATE 3"): what the effect guard measures
        self.changed: int | None = None

    def from_records(self, records: list[Any]) -> None:
        self.rowcount = len(records)
        if records:
            self.description = [(name, None) for name in records[0].keys()]  # noqa: SIM118 - Record iterates values

    def from_attributes(self, attributes: Any) -> None:
        self.description = [(a.name, None) for a in attributes] or None

    def from_status(self, status: Any) -> None:
        self.rowcount = self.changed = status_count(status)


def status_count(status: Any) -> int | None:
    """The row count of a command status (``UPDATE 3``, ``INSERT 0 3``, b'DELETE 1'); None: none given."""
    if isinstance(status, bytes):
        status = status.decode("ascii", "replace")
    tail = str(status).rsplit(" ", 1)[-1] if status else ""
    return int(tail) if tail.isdigit() else None


class _WithStatus:
    """``fetch``/``fetchrow`` through asyncpg's ``_execute``, which also returns the command's status.

    The public methods drop the status, and with it how many rows a write with RETURNING changed (the
    effect guard's measure); ``_execute`` is what they call themselves. A bounded write through
    ``fetchrow`` is fetched whole (one row at a time leaves the portal suspended, without a status).
    Unknown keyword arguments go to the public method: the count is then unknown and a bounded write is
    refused (fail closed).
    """

    __slots__ = ("args", "gov", "kwargs", "one", "public", "raw", "status")

    def __init__(self, gov: Governor, raw: Any, args: tuple[Any, ...], kwargs: dict[str, Any], one: bool) -> None:
        self.gov, self.raw, self.args, self.kwargs, self.one = gov, raw, args, kwargs, one
        self.public = raw.fetchrow if one else raw.fetch
        self.status: Any = None

    async def __call__(self, sql: Any) -> Any:
        execute = getattr(self.raw, "_execute", None)
        if execute is None or not set(self.kwargs) <= {"timeout", "record_class"} or not isinstance(sql, str):
            return await self.public(sql, *self.args, **self.kwargs)
        limit = 1 if self.one and not _measured_write(self.gov, sql) else 0
        records, self.status, _done = await execute(
            sql, self.args, limit, self.kwargs.get("timeout"), return_status=True,
            record_class=self.kwargs.get("record_class"),
        )  # fmt: skip
        if self.one:
            return records[0] if records else None
        return records


async def _executemany(gov: Governor, entry: str, query: Any, args: list[Any], call: Any) -> Any:
    """``executemany``: asyncpg reports no status, so only a plain ``INSERT ... VALUES`` has a known count.

    Each execution of it inserts exactly its VALUES rows (or fails, and asyncpg's executemany is atomic),
    so that is what the effect guard measures; any other write's count stays unknown (a bounded identity's
    is refused, fail closed).
    """
    rows = _Rows()
    per_run = _values_rows(gov, query) if isinstance(query, str) else None
    if per_run is not None:
        rows.changed = rows.rowcount = per_run * len(args)
    return await govern(gov, entry, query, args, call, ResultState(rows, gov))


def _values_rows(gov: Governor, sql: str) -> int | None:
    """Rows one execution of ``sql`` inserts when it is a plain ``INSERT ... VALUES`` (no conflict clause)."""
    from sqlglot import exp

    from governed_db.sql.analysis import analyze

    try:
        statements = analyze(sql, gov.dialect).statements
    except Exception:
        return None
    tree = statements[0].expression if len(statements) == 1 else None
    if not isinstance(tree, exp.Insert) or tree.args.get("conflict") or tree.args.get("with_"):
        return None
    values = tree.expression
    return len(values.expressions) if isinstance(values, exp.Values) else None


def _measured_write(gov: Governor, sql: str) -> bool:
    """``sql`` changes data (analysis and shape are cached per text): a write the effect guard measures, or one it
    cannot measure by this text — masking sends a multi-row ``UPDATE/DELETE ... RETURNING`` as ``WITH gdb_changed AS
    (<the write>) SELECT ...`` (0330), whose status counts the rows it changed only once every row is read."""
    from governed_db.guards.effect import shape_of
    from governed_db.sql.analysis import analyze

    try:
        return shape_of(analyze(sql, gov.dialect), gov.dialect).problem is not None
    except Exception:
        return False


def record_out(st: ResultState, rec: Any) -> Any:
    """One ``Record`` through the result state (``None``: the row cap was reached)."""
    if not st.active or rec is None:
        return rec
    if st.plan is None:
        return st.one(rec)  # counted and capped, unchanged
    masked = st.one(tuple(rec))
    return None if masked is None else GovernedRecord(tuple(rec.keys()), masked)


def records_out(st: ResultState, records: list[Any]) -> list[Any]:
    """A whole list of ``Record`` rows through the result state."""
    if not st.active:
        return records
    if st.plan is None or not records:
        return st.many(list(records), complete=True)
    names = tuple(records[0].keys())
    return [GovernedRecord(names, row) for row in st.many([tuple(r) for r in records], complete=True)]


async def records_iter(st: ResultState, first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    if first is _END:
        st.finish()
        return
    if st.poisoned is not None:
        raise st.poisoned
    out = record_out(st, first)
    if out is None:
        return
    yield out
    async for rec in scrubbed_async(st, rest):  # later batches are decoded here, outside the statement
        out = record_out(st, rec)
        if out is None:
            return
        yield out
    if st.active:
        st.finish()


class _Runner:
    """The asyncpg entry points' shared routing: judge, await the driver, pass rows out."""

    _self_gov: Governor

    async def _self_records(
        self, entry: str, query: Any, params: Any, call: Any, attributes: Any = None, status: Any = None
    ) -> Any:
        gov = self._self_gov
        rows = _Rows()
        st = ResultState(rows, gov)

        async def run(sql: Any) -> Any:
            out = await call(sql)
            if status is not None:
                rows.changed = status_count(status())
            if attributes is not None:
                rows.from_attributes(attributes())
            elif isinstance(out, list):
                rows.from_records(out)
            elif out is not None and hasattr(out, "keys"):  # fetchrow's Record
                rows.from_records([out])
            return out

        out = await govern(gov, entry, query, params, run, st)
        if isinstance(out, list):
            return records_out(st, out)
        return record_out(st, out)

    async def _self_status(self, entry: str, query: Any, params: Any, call: Any) -> Any:
        rows = _Rows()

        async def run(sql: Any) -> Any:
            status = await call(sql)
            rows.from_status(status)
            return status

        return await govern(self._self_gov, entry, query, params, run, ResultState(rows, self._self_gov))

    def _self_iterate(self, entry: str, query: Any, params: Any, open_cursor: Any) -> AsyncIterator[Any]:
        gov, rows = self._self_gov, _Rows()
        st = ResultState(rows, gov)

        async def iterate() -> AsyncIterator[Any]:
            it: Any = None

            async def run(sql: Any) -> Any:
                nonlocal it
                it = open_cursor(sql).__aiter__()
                first = await anext(it, _END)  # runs the query, so the plan has a description
                if first is not _END:
                    rows.from_records([first])
                return first

            first = await govern(gov, entry, query, params, run, st)
            async for rec in records_iter(st, first, it):
                yield rec

        return iterate()


class GovernedCursorFactory(_Runner):
    """``conn.cursor(query, *args)``: ``async for`` over it, or ``await`` it for a scrollable cursor."""

    def __init__(self, gov: Governor, entry: str, query: Any, args: tuple[Any, ...], make: Any) -> None:
        self._self_gov = gov
        self._entry = entry
        self._query = query
        self._args = args
        self._make = make  # sql -> the driver's CursorFactory

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._self_iterate(self._entry, self._query, self._args or None, self._make)

    def __await__(self) -> Any:
        return self._open().__await__()

    async def _open(self) -> GovernedAsyncpgCursor:
        rows = _Rows()
        st = ResultState(rows, self._self_gov)

        async def run(sql: Any) -> Any:
            cur = await self._make(sql)
            rows.from_attributes(cur._state._get_attributes())  # what PreparedStatement.get_attributes reads
            return cur

        cur = await govern(self._self_gov, self._entry, self._query, self._args or None, run, st)
        return GovernedAsyncpgCursor(cur, st)


class GovernedAsyncpgCursor(wrapt.ObjectProxy[Any]):
    """An open asyncpg cursor whose ``fetch``/``fetchrow`` rows pass through its result state."""

    def __init__(self, raw: Any, st: ResultState) -> None:
        super().__init__(raw)
        self._self_result = st

    @property
    def _self_gov(self) -> Governor:
        return self._self_result.gov  # for scrub_fetch_error

    async def fetch(self, n: int, *args: Any, **kwargs: Any) -> list[Any]:
        try:
            records = await notices.fetched_async(
                self._self_result, lambda: self.__wrapped__.fetch(n, *args, **kwargs)
            )
        except Exception as e:
            scrub_fetch_error(self, e)  # a later batch is decoded here, outside the statement (decision 0238)
            raise
        st = self._self_result
        if not st.active:
            return records  # type: ignore[no-any-return]
        out = [record_out(st, r) for r in records]
        return [r for r in out if r is not None]

    async def fetchrow(self, *args: Any, **kwargs: Any) -> Any:
        try:
            record = await notices.fetched_async(
                self._self_result, lambda: self.__wrapped__.fetchrow(*args, **kwargs)
            )
        except Exception as e:
            scrub_fetch_error(self, e)
            raise
        return record_out(self._self_result, record)

    def __repr__(self) -> str:
        return f"<governed {self.__wrapped__!r}>"


class GovernedPreparedStatement(_Runner, PrivateWithheld, wrapt.ObjectProxy[Any]):
    """``await conn.prepare(query)``: every execution is judged again (identity and parameters may differ)."""

    def __init__(self, raw: Any, gov: Governor, query: Any) -> None:
        super().__init__(raw)
        self._self_gov = gov
        self._self_query = query

    def _self_attrs(self) -> Any:
        return self.__wrapped__.get_attributes()

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        ps = self.__wrapped__
        return await self._self_records(
            "prepared.fetch", self._self_query, args or None, lambda _s: ps.fetch(*args, **kwargs), self._self_attrs,
            ps.get_statusmsg,
        )

    async def fetchrow(self, *args: Any, **kwargs: Any) -> Any:
        ps = self.__wrapped__
        return await self._self_records(
            "prepared.fetchrow", self._self_query, args or None, lambda _s: self._self_first(args, kwargs),
            self._self_attrs, ps.get_statusmsg,
        )

    async def fetchval(self, *args: Any, column: Any = 0, **kwargs: Any) -> Any:
        ps = self.__wrapped__
        row = await self._self_records(
            "prepared.fetchval", self._self_query, args or None, lambda _s: self._self_first(args, kwargs),
            self._self_attrs, ps.get_statusmsg,
        )
        return None if row is None else row[column]

    async def _self_first(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # a write the effect guard measures is fetched whole: one row at a time leaves it without a status
        ps = self.__wrapped__
        text = self._self_query
        if isinstance(text, str) and _measured_write(self._self_gov, text):
            records = await ps.fetch(*args, **kwargs)
            return records[0] if records else None
        return await ps.fetchrow(*args, **kwargs)

    async def fetchmany(self, args: Any, **kwargs: Any) -> Any:
        ps, args = self.__wrapped__, list(args)
        return await self._self_records(
            "prepared.fetchmany", self._self_query, args, lambda _s: ps.fetchmany(args, **kwargs), self._self_attrs
        )

    async def executemany(self, args: Any, **kwargs: Any) -> Any:
        ps, args = self.__wrapped__, list(args)
        return await _executemany(self._self_gov, "prepared.executemany", self._self_query, args,
                                  lambda _s: ps.executemany(args, **kwargs))

    def cursor(self, *args: Any, **kwargs: Any) -> GovernedCursorFactory:
        ps = self.__wrapped__
        return GovernedCursorFactory(self._self_gov, "prepared.cursor", self._self_query, args,
                                     lambda _s: ps.cursor(*args, **kwargs))

    async def explain(self, *args: Any, analyze: bool = False) -> Any:
        # the plan is a result like any other: masked whole where the explained statement reads a masked column
        # (EXPLAIN ANALYZE's sort memory grows with values it never returns: decision 0213)
        ps = self.__wrapped__
        text = f"EXPLAIN {'ANALYZE ' if analyze else ''}{self.__wrapped__.get_query()}"
        rows = _Rows()
        st = ResultState(rows, self._self_gov)

        async def run(_s: Any) -> Any:
            plan = await ps.explain(*args, analyze=analyze)
            rows.description, rows.rowcount = [("QUERY PLAN", None)], 1
            return plan

        plan = await govern(self._self_gov, "prepared.explain", text, args or None, run, st)
        if not st.active:
            return plan
        masked = st.one((plan,))
        return None if masked is None else masked[0]

    def __repr__(self) -> str:
        return f"<governed {self.__wrapped__!r}>"


class AsyncpgConnection(_Runner, PrivateWithheld, GovernedConnection):
    """A governed ``asyncpg.Connection`` (or pool connection proxy)."""

    # a notice's text is composed by code that reads any value (``RAISE NOTICE '%', NEW.full_name`` in a trigger):
    # log listeners get it withheld where masking applies (decision 0230)
    def add_log_listener(self, callback: Any) -> None:
        wrapped = notices.scrubbed_callback(self._self_gov, callback, connection=self)
        self.__wrapped__.add_log_listener(self._self_remember(callback, wrapped))

    def remove_log_listener(self, callback: Any) -> None:
        self.__wrapped__.remove_log_listener(self._self_forget(callback))

    # asyncpg sends LISTEN itself and hands callbacks its own (raw) connection: the LISTEN is judged like the
    # statement, and callbacks get the governed connection (and a payload withheld where masking applies)
    async def add_listener(self, channel: Any, callback: Any) -> None:
        gov, raw = self._self_gov, self.__wrapped__

        def deliver(_conn: Any, pid: Any, name: Any, payload: Any) -> Any:
            return callback(self, pid, name, notices.notice_text(gov, payload))

        wrapped = self._self_remember(callback, deliver)
        sql = f"LISTEN {quote_ident(str(channel))}"
        await judged_call_async(gov, "connection.add_listener", sql, lambda: raw.add_listener(channel, wrapped))

    async def remove_listener(self, channel: Any, callback: Any) -> None:
        await self.__wrapped__.remove_listener(channel, self._self_forget(callback))

    def add_termination_listener(self, callback: Any) -> None:
        self.__wrapped__.add_termination_listener(self._self_remember(callback, lambda _conn: callback(self)))

    def remove_termination_listener(self, callback: Any) -> None:
        self.__wrapped__.remove_termination_listener(self._self_forget(callback))

    def _self_remember(self, callback: Any, wrapped: Any) -> Any:
        found: dict[int, Any] | None = getattr(self, "_self_callbacks", None)
        if found is None:
            found = {}
            self._self_callbacks = found
        found[id(callback)] = wrapped
        return wrapped

    def _self_forget(self, callback: Any) -> Any:
        found: dict[int, Any] = getattr(self, "_self_callbacks", None) or {}
        return found.pop(id(callback), callback)

    def cursor(self, query: Any, *args: Any, **kwargs: Any) -> GovernedCursorFactory:  # type: ignore[override]
        raw = self.__wrapped__
        check_placeholders(self._self_gov, query, args)
        return GovernedCursorFactory(self._self_gov, "connection.cursor", query, args,
                                     lambda sql: raw.cursor(sql, *args, **kwargs))

    async def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        raw = self.__wrapped__
        check_placeholders(self._self_gov, query, args)
        return await self._self_status("connection.execute", query, args or None,
                                       lambda sql: raw.execute(sql, *args, **kwargs))

    async def executemany(self, command: Any, args: Any, **kwargs: Any) -> Any:
        raw, args = self.__wrapped__, list(args)
        if args:
            check_placeholders(self._self_gov, command, args[0])
        return await _executemany(self._self_gov, "connection.executemany", command, args,
                                  lambda sql: raw.executemany(sql, args, **kwargs))

    async def fetch(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        raw = self.__wrapped__
        check_placeholders(self._self_gov, query, args)
        call = _WithStatus(self._self_gov, raw, args, kwargs, one=False)
        return await self._self_records("connection.fetch", query, args or None, call, status=lambda: call.status)

    async def fetchrow(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        raw = self.__wrapped__
        check_placeholders(self._self_gov, query, args)
        call = _WithStatus(self._self_gov, raw, args, kwargs, one=True)
        return await self._self_records("connection.fetchrow", query, args or None, call, status=lambda: call.status)

    async def fetchval(self, query: Any, *args: Any, column: Any = 0, **kwargs: Any) -> Any:
        # read as the row it comes from, so the masked value (not the raw one) is picked
        raw = self.__wrapped__
        check_placeholders(self._self_gov, query, args)
        call = _WithStatus(self._self_gov, raw, args, kwargs, one=True)
        row = await self._self_records("connection.fetchval", query, args or None, call, status=lambda: call.status)
        return None if row is None else row[column]

    async def fetchmany(self, query: Any, args: Any, **kwargs: Any) -> Any:
        raw, args = self.__wrapped__, list(args)
        if args:
            check_placeholders(self._self_gov, query, args[0])
        return await self._self_records("connection.fetchmany", query, args,
                                        lambda sql: raw.fetchmany(sql, args, **kwargs))

    async def prepare(self, query: Any, **kwargs: Any) -> GovernedPreparedStatement:
        # judged when prepared (the server parses it then) and again at every execution
        raw = self.__wrapped__
        ps = await govern(self._self_gov, "connection.prepare", query, None, lambda sql: raw.prepare(sql, **kwargs))
        return GovernedPreparedStatement(ps, self._self_gov, query)

    # -- COPY ----------------------------------------------------------------------------------
    async def copy_from_query(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        raw, gov = self.__wrapped__, self._self_gov
        text = gov.driver.statement_text(query, raw)
        copy_sql = f"COPY ({text}) TO STDOUT"

        async def run(sent: Any) -> Any:
            await self._self_refuse_masked(copy_sql)
            # the query as governed_db edited it (an ORDER BY by the key where the read order could follow masked
            # values, decision 0303): the edits are insertions, so the COPY around it is unchanged
            head, tail = "COPY (", ") TO STDOUT"
            edited = sent if isinstance(sent, str) and sent.startswith(head) and sent.endswith(tail) else copy_sql
            return await raw.copy_from_query(edited[len(head) : -len(tail)], *args, **kwargs)

        return await govern(gov, "connection.copy_from_query", copy_sql, args or None, run)

    async def copy_from_table(self, table_name: str, **kwargs: Any) -> Any:
        # exported as the query it equals, which governed_db orders by the table's key where the stored order could
        # follow masked values (``COPY t TO`` takes no ORDER BY, decision 0303); the rows and format are the same
        _table(table_name, kwargs)  # the name's type is checked as before
        schema, columns = kwargs.pop("schema_name", None), kwargs.pop("columns", None)
        name = (quote_ident(schema) + "." if schema else "") + quote_ident(table_name)
        listed = ", ".join(quote_ident(c) for c in columns) if columns else "*"
        return await self.copy_from_query(f"SELECT {listed} FROM {name}", **kwargs)

    async def copy_to_table(self, table_name: str, **kwargs: Any) -> Any:
        raw = self.__wrapped__
        copy_sql = f"COPY {_table(table_name, kwargs)} FROM STDIN"
        return await self._self_status("connection.copy_to_table", copy_sql, None,
                                       lambda _s: raw.copy_to_table(table_name, **kwargs))

    async def copy_records_to_table(self, table_name: str, **kwargs: Any) -> Any:
        raw = self.__wrapped__
        records = kwargs.get("records")
        if isinstance(records, (list, tuple)):
            params: Any = list(records)  # judged (masked values written back) and sent alike
            kwargs["records"] = params
        else:
            params = None  # an async iterable: read once, by the driver
        copy_sql = f"COPY {_table(table_name, kwargs)} FROM STDIN"
        return await self._self_status("connection.copy_records_to_table", copy_sql, params,
                                       lambda _s: raw.copy_records_to_table(table_name, **kwargs))

    async def _self_refuse_masked(self, copy_sql: str) -> None:
        gov = self._self_gov
        probe = copy_out_probe(copy_sql, gov.dialect)
        if probe is None:
            return
        try:
            attrs = (await self.__wrapped__.prepare(probe)).get_attributes()
        except Exception as e:
            undescribable(gov, e)
            return
        how = "COPY ... TO exports rows the database formats itself"
        refuse_masked_columns(gov, probe, [(a.name, None) for a in attrs], how)

    # -- methods that change the session (docs/guardrails.md) -----------------------------------
    async def set_type_codec(self, typename: Any, **kwargs: Any) -> Any:
        # the decoder would be called with every value of the type before masking (decision 0238)
        check_decoder(self._self_gov, f"set_type_codec({typename!r}, decoder=...)", kwargs.get("decoder"), ("asyncpg.",))
        return await self.__wrapped__.set_type_codec(typename, **kwargs)

    async def set_builtin_type_codec(self, typename: Any, *, codec_name: Any, format: Any = None, **kwargs: Any) -> Any:
        # a builtin codec for another type fails on some values and not others: an error oracle (decision 0238)
        own = codec_name == typename or (typename, codec_name) == ("hstore", "pg_contrib.hstore")
        if not (own or self._self_gov.setting_up or (codec_name == "text" and format in (None, "text"))):
            raise self._self_gov.refusal(GuardrailViolation(WRONG_TYPE.format(
                what=f"set_builtin_type_codec({typename!r}, codec_name={codec_name!r})", name=f"the {codec_name} codec")))
        return await self.__wrapped__.set_builtin_type_codec(typename, codec_name=codec_name, format=format, **kwargs)

    # a query logger is handed each statement's exception as the server sent it, before governed_db scrubs it
    # (asyncpg calls it on the next loop turn, the scrub may come later): it gets a scrubbed copy (decision 0238)
    def add_query_logger(self, callback: Any) -> None:
        loggers: dict[Any, Any] = self._self_query_loggers()
        if callback not in loggers:
            loggers[callback] = _scrubbed_logger(self._self_gov, callback)
        self.__wrapped__.add_query_logger(loggers[callback])

    def remove_query_logger(self, callback: Any) -> None:
        wrapper = self._self_query_loggers().pop(callback, None)
        self.__wrapped__.remove_query_logger(wrapper if wrapper is not None else callback)

    @contextlib.contextmanager
    def query_logger(self, callback: Any) -> Iterator[None]:
        self.add_query_logger(callback)
        try:
            yield
        finally:
            self.remove_query_logger(callback)

    def _self_query_loggers(self) -> dict[Any, Any]:
        try:
            return self._self_loggers  # type: ignore[no-any-return]
        except AttributeError:
            self._self_loggers: dict[Any, Any] = {}
            return self._self_loggers

    async def reset(self, **kwargs: Any) -> Any:
        # RESET ALL and friends: the session's read-only default goes with them, so it is set again after
        raw = self.__wrapped__
        return await judged_call_async(self._self_gov, "connection.reset", "RESET ALL",
                                       lambda: raw.reset(**kwargs), resets=True)  # fmt: skip

    async def __aenter__(self) -> AsyncpgConnection:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.__wrapped__.close()


def _scrubbed_logger(gov: Governor, callback: Any) -> Any:
    """``callback`` handed each LoggedQuery with a scrubbed copy of its exception (sync or async, as it is)."""

    def scrubbed(record: Any) -> Any:
        exc = getattr(record, "exception", None)
        if exc is None:
            return record
        try:
            clone = copy.copy(exc)
        except Exception:  # an exception that cannot be copied: its text only
            clone = RuntimeError(*exc.args)
        masking.scrub_error(clone, gov=gov)
        return record._replace(exception=clone)

    if inspect.iscoroutinefunction(callback):

        async def alogged(record: Any) -> Any:
            return await callback(scrubbed(record))

        return alogged

    def logged(record: Any) -> Any:
        return callback(scrubbed(record))

    return logged


def _table(table_name: Any, kwargs: dict[str, Any]) -> str:
    if not isinstance(table_name, str):
        raise InvalidStatement(f"the table name must be str, got {type(table_name).__name__}")
    schema = kwargs.get("schema_name")
    name = (quote_ident(schema) + "." if schema else "") + quote_ident(table_name)
    columns = kwargs.get("columns")
    return name + (f" ({', '.join(quote_ident(c) for c in columns)})" if columns else "")


class AsyncpgDriver(PostgresSession, AsyncDriver):
    """asyncpg: the PostgreSQL session rules of :class:`PostgresSession`, run with ``await``.

    asyncpg has no autocommit switch: outside ``transaction()`` (or a ``BEGIN`` of the application's)
    every statement commits on its own, so a bounded write there runs in a transaction the guard opens.
    ``execute()`` without arguments is a simple query, so the guard's ``BEGIN``/``SAVEPOINT`` rides in the
    statement's own round trip (one extra round trip per guarded write); with arguments (extended
    protocol, one statement per message) it is sent before it (two).
    """

    name = "asyncpg"
    dialect = "postgres"
    db_system = "postgresql"
    fold_entries = frozenset({"connection.execute"})
    #: prepare() parses on the server and runs nothing; each execution of the prepared statement is guarded
    unrun_entries = frozenset({"connection.prepare"})

    def in_transaction(self, gov: Any, raw: Any) -> bool:
        return bool(raw.is_in_transaction())

    def __init__(self, module: Any = None) -> None:
        if module is None:
            import asyncpg

            module = asyncpg
        super().__init__(module)

    @property
    def connection_proxy(self) -> type:
        return AsyncpgConnection

    def paramstyle_for(self, raw: Any) -> str:
        return "numeric_dollar"

    def lexing_settings(self, raw: Any) -> dict[str, str | None] | None:
        # reported by the server at connect and on every change (ParameterStatus): no query needed
        settings = raw.get_settings()
        return {name: getattr(settings, name, None) for name in ("standard_conforming_strings", "client_encoding")}

    def placeholder_problem(self, text: str, params: Any) -> str | None:
        if "$" in text:
            return None
        found = "%s" if ("%s" in text or "%(" in text) else ("?" if "?" in text else None)
        if found:
            return f"asyncpg uses $1, $2, ... placeholders, but the statement has {found}: write $n for the n-th parameter"
        return None

    def error_class(self, raw: Any, name: str) -> type[BaseException] | None:
        # asyncpg has no DB-API classes; these are the ones SQLAlchemy's asyncpg dialect translates to
        # ProgrammingError (a refusal: insufficient privilege, 42501) and InternalError (a governance fault)
        from asyncpg import exceptions

        found: type[BaseException] = (
            exceptions.InsufficientPrivilegeError if name == "ProgrammingError" else exceptions.InternalClientError
        )
        return found

    def is_closed(self, raw: Any) -> bool:
        return bool(raw.is_closed())

    def static_attributes(self, raw: Any) -> dict[str, Any]:
        attrs = super().static_attributes(raw)
        try:
            params = raw._params  # asyncpg keeps the connection's parameters here
            addr = raw._addr
            attrs[DB_NAMESPACE] = params.database
            if isinstance(addr, tuple):
                attrs[SERVER_ADDRESS], attrs[SERVER_PORT] = str(addr[0]), int(addr[1])
        except Exception:  # metadata only; never fail a wrap over it
            pass
        return attrs

    # -- the effect guard and the session (docs/guardrails.md) -----------------------------------
    def transaction_state(self, gov: Any, raw: Any) -> str:
        return "open" if raw.is_in_transaction() else "autocommit"

    def fold_into(self, sql: Any, params: Any, prefix: str) -> Any:
        return f"{prefix}; {sql}" if params is None and isinstance(sql, str) else None

    async def guard_execute_async(self, raw: Any, sql: str) -> list[Any]:
        text = str(sql)  # asyncpg's protocol takes exactly str (governance marks its SQL with str subclasses)
        if isinstance(sql, Query):  # one statement whose rows governance reads
            return [tuple(r) for r in await raw.fetch(text)]
        await raw.execute(text)  # a simple query: may be several statements (``ROLLBACK TO ...; RELEASE ...``)
        return []

    def effect_rowcount(self, raw_cursor: Any) -> int | None:
        # the command's status, never the number of records (a write without RETURNING returns none)
        return raw_cursor.changed if isinstance(raw_cursor, _Rows) else None

    async def catalog_rows(self, raw: Any, sql: str, params: Any) -> tuple[Any, list[Any]]:
        n = 0

        def number(_m: Any) -> str:
            nonlocal n
            n += 1
            return f"${n}"

        import re

        query = re.sub(r"%s", number, sql)  # masking's catalog reads are written for psycopg
        args = tuple(params or ())
        if raw.is_in_transaction():
            # a savepoint: a failed read leaves the caller's transaction intact. Spelled out, not
            # ``raw.transaction()``, which refuses to nest in a transaction the application began with BEGIN (every
            # read then failed, leaving its tables blind, decision 0269)
            await raw.execute("SAVEPOINT governed_db_catalog")
            try:
                ps = await raw.prepare(query)
                rows = await ps.fetch(*args)
            except BaseException:
                await raw.execute("ROLLBACK TO SAVEPOINT governed_db_catalog")
                await raw.execute("RELEASE SAVEPOINT governed_db_catalog")
                raise
            await raw.execute("RELEASE SAVEPOINT governed_db_catalog")
        else:
            ps = await raw.prepare(query)
            rows = await ps.fetch(*args)
        return [(a.name, None) for a in ps.get_attributes()], [tuple(r) for r in rows]


__all__ = ["AsyncpgConnection", "AsyncpgDriver", "GovernedPreparedStatement", "GovernedRecord"]
