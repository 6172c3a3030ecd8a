"""psycopg 3: ``conn.execute``, ``cursor.stream``, ``cursor.copy``, server-side cursors.

``conn.execute()`` in psycopg builds its cursor with ``self.cursor()`` on the
raw connection, which would go around the proxy; here it is rebuilt on the
governed ``cursor()``. ``stream()`` stays lazy (nothing is sent before the
first row is asked for) and its rows pass through the result state; ``copy()``
is judged as the COPY statement and refused when a COPY ... TO would export
masked columns (:mod:`governed_db.drivers._copy`).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from itertools import chain
from typing import Any

import wrapt

from governed_db._cache import LRU
from governed_db._native import speedups
from governed_db.drivers import Driver
from governed_db.drivers._copy import describe_with, refuse_unmaskable_copy
from governed_db.drivers._decoders import GuardedAdapters
from governed_db.drivers._postgres import EndsTransactions, PostgresSession
from governed_db.drivers._twophase import TwoPhase
from governed_db.errors import GuardrailViolation
from governed_db.guards.session import transaction_ended
from governed_db.masking import notices
from governed_db.pipeline import judged_call, run
from governed_db.proxies import (
    GovernedConnection,
    GovernedCursor,
    NextSet,
    PrivateWithheld,
    _params,
    check_placeholders,
    low_level_result,
    scrubbed_rows,
    withhold_unplanned,
)
from governed_db.semconv import DB_NAMESPACE, SERVER_ADDRESS, SERVER_PORT

_END = object()
#: each field's name, type and modifier of a result in one C call (``None``: the extension is not built, or is
#: an older build without it; the comprehension in :meth:`PsycopgDriver.description` runs instead)
_pg_fields: Any = getattr(speedups, "pg_fields", None)


class PsycopgResults(NextSet):
    """What psycopg's sync and async cursors share about result sets (``nextset`` and ``pgresult`` are sync in both)."""

    #: the current results come from executemany(returning=True): one statement, so one plan for them all
    _self_many = False

    def nextset(self, *args: Any, **kwargs: Any) -> Any:
        if self._self_many:
            self._self_result.finish()
            return self._self_out(self.__wrapped__.nextset(*args, **kwargs))
        return super().nextset(*args, **kwargs)

    @property
    def adapters(self) -> Any:
        # a loader registered here would see every value of this cursor's results before masking (decision 0238)
        return GuardedAdapters(self.__wrapped__.adapters, self._self_gov)

    @property
    def pgresult(self) -> Any:
        if not self._self_result.touches_rows:
            return self.__wrapped__.pgresult
        # the result's facts stay readable (SQLAlchemy's async psycopg adapter reads .status after each
        # execute); its values would skip masking, so reading them is refused (decision 0064)
        raw = self.__wrapped__.pgresult
        return None if raw is None else GuardedPGresult(raw, self)


#: what a masked result's ``pgresult`` still answers: its shape and status, never a value
PGRESULT_FACTS = frozenset(
    {
        "status", "ntuples", "nfields", "nparams", "command_status", "command_tuples", "oid_value",
        "error_message", "get_error_message", "error_field", "fname", "ftype", "fmod", "fsize", "fformat",
        "ftable", "ftablecol", "param_type", "binary_tuples",
    }
)


class GuardedPGresult:
    """A masked result's ``pgresult``: facts readable, values (``get_value``, ``pgresult_ptr``) refused."""

    __slots__ = ("_cursor", "_raw")

    def __init__(self, raw: Any, cursor: Any) -> None:
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_cursor", cursor)

    def __getattr__(self, name: str) -> Any:
        if name in PGRESULT_FACTS:
            return getattr(self._raw, name)
        return low_level_result(self._cursor, "pgresult." + name)

    def __setattr__(self, name: str, value: Any) -> None:
        low_level_result(self._cursor, "pgresult." + name)

    def __repr__(self) -> str:
        return f"<governed {self._raw!r} (values withheld)>"


def _native_factories() -> tuple[Any, ...]:
    from psycopg import rows

    return (rows.tuple_row, rows.dict_row, rows.namedtuple_row)


def _masked_factory(user: Any, st: Any) -> Any:
    """A psycopg row factory that hands ``user``'s row maker masked values: the caller's factory (a
    ``class_row`` dataclass, ``kwargs_row``, a custom one) never sees a clear value and builds its own row."""

    def factory(cursor: Any) -> Any:
        make = user(cursor)

        def make_row(values: Any) -> Any:
            if st.poisoned is not None:
                raise st.poisoned
            plan = st.plan
            return make(plan.apply_row(tuple(values)) if plan is not None else values)

        return make_row

    factory.governed_user_factory = user  # type: ignore[attr-defined]
    return factory


class PsycopgRowFactories:
    """``row_factory`` of a psycopg 3 cursor, sync or async: tuples, dicts and named tuples are masked as they
    leave; any other factory is handed masked values and builds its own rows (it never sees a clear value)."""

    __wrapped__: Any
    _self_result: Any

    def __init__(self, raw: Any, gov: Any, connection: Any) -> None:
        super().__init__(raw, gov, connection)  # type: ignore[call-arg]
        self._install_factory(raw.row_factory)

    def _install_factory(self, factory: Any) -> None:
        raw, st = self.__wrapped__, self._self_result
        factory = getattr(factory, "governed_user_factory", factory)
        if factory in _native_factories():
            # rows of these shapes are masked as they leave (by position or by name)
            st.premasked = False
            raw.row_factory = factory
        else:
            st.premasked = True
            raw.row_factory = _masked_factory(factory, st)

    @property
    def row_factory(self) -> Any:
        factory = self.__wrapped__.row_factory
        return getattr(factory, "governed_user_factory", factory)

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._install_factory(factory)


class PsycopgCursor(PsycopgRowFactories, PrivateWithheld, PsycopgResults, GovernedCursor):

    def execute(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        self._self_many = False
        raw = self.__wrapped__
        if getattr(raw.connection, "_pipeline", None) is None:
            return super().execute(operation, *args, **kwargs)
        # Pipeline mode: results arrive at the next sync, but masking must be planned from
        # the description before any row leaves; fetch this statement's result now (fail closed).
        params = _params(args, kwargs)
        check_placeholders(self._self_gov, operation, params)

        def invoke(sql: Any) -> Any:
            out = raw.execute(sql, *args, **kwargs)
            if raw.description is None:
                raw._fetch_pipeline()
            return out

        return self._self_out(
            run(self._self_gov, "cursor.execute", operation, params, invoke, self._self_result)
        )

    def executemany(self, operation: Any, seq_of_parameters: Any, *args: Any, **kwargs: Any) -> Any:
        out = super().executemany(operation, seq_of_parameters, *args, **kwargs)
        # executemany(returning=True) yields one result set per parameter set, all of the
        # same statement: the plan made for the first applies to every one of them.
        self._self_many = True
        return out

    def set_result(self, index: int) -> Any:
        out = self.__wrapped__.set_result(index)
        if not self._self_many:
            withhold_unplanned(self._self_gov, self._self_result, index != 0)
        return self._self_out(out)

    def results(self) -> Iterator[Any]:
        first = True
        for _ in self.__wrapped__.results():
            if not first and not self._self_many:
                withhold_unplanned(self._self_gov, self._self_result, True)
            first = False
            yield self

    def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        # a generator function, like psycopg's: the statement is judged and sent at the first next()
        gov, raw, st = self._self_gov, self.__wrapped__, self._self_result
        check_placeholders(gov, query, params)
        self._self_many = False

        def invoke(sql: Any) -> tuple[Any, Any]:
            gen = raw.stream(sql, params, **kwargs)
            return gen, next(gen, _END)  # runs the query, so the description exists for the plan

        gen, first = run(gov, "cursor.stream", query, params, invoke, st)
        try:
            if first is _END:
                st.finish()
                return
            rows = scrubbed_rows(self, chain((first,), gen))  # a row that fails later: its error scrubbed
            yield from (st.iterate(rows) if st.active else rows)
        finally:
            gen.close()  # lets psycopg cancel a stream abandoned half-way

    @contextmanager
    def copy(self, statement: Any, params: Any = None, **kwargs: Any) -> Iterator[Any]:
        gov, raw = self._self_gov, self.__wrapped__
        text = gov.driver.statement_text(statement, gov.raw)
        with ExitStack() as stack:

            def invoke(sql: Any) -> Any:
                refuse_unmaskable_copy(gov, text, describe_with(gov.raw))
                return stack.enter_context(raw.copy(sql, params, **kwargs))

            yield _OwnedByGoverned(run(gov, "cursor.copy", statement, params, invoke), self.connection, self)


#: What the governed connection's ``pgconn`` still answers: connection facts psycopg itself reads through
#: whatever object it is given (``ConnectionInfo``, ``sql.Composable.as_string(conn)`` reads ``_encoding``).
#: Everything else on a ``PGconn`` sends protocol messages or reads results (``exec_``, ``send_query*``,
#: ``get_result``, ``pgconn_ptr``...), which would run statements around governance.
PGCONN_FACTS = frozenset(
    {
        "_encoding",
        "backend_pid",
        "db",
        "error_message",
        "full_protocol_version",
        "get_error_message",
        "host",
        "hostaddr",
        "info",
        "needs_password",
        "options",
        "parameter_status",
        "password",
        "pipeline_status",
        "port",
        "protocol_version",
        "server_version",
        "ssl_in_use",
        "status",
        "transaction_status",
        "tty",
        "used_gssapi",
        "used_password",
        "user",
    }
)

RAW_PROTOCOL = (
    "refused by governed_db: raw protocol access (pgconn.{name}) bypasses governance; "
    "use conn.cursor(...) or conn.execute(...)"
)


class GuardedPGconn:
    """The governed connection's ``pgconn``: connection facts readable, protocol calls refused.

    psycopg's cursor, copy and pipeline constructors (``psycopg.Cursor(conn)``, ``ClientCursor``,
    ``ServerCursor``, ``RawCursor``, ``Copy``, ``Pipeline``) bind to ``conn.pgconn`` and send
    statements on it directly; handed this object, they are built but cannot run anything.
    """

    __slots__ = ("_gov", "_raw")

    def __init__(self, raw: Any, gov: Any) -> None:
        object.__setattr__(self, "_raw", raw)
        object.__setattr__(self, "_gov", gov)

    def __getattr__(self, name: str) -> Any:
        if name in PGCONN_FACTS:
            return getattr(self._raw, name)
        raise self._gov.refusal(GuardrailViolation(RAW_PROTOCOL.format(name=name)))

    def __setattr__(self, name: str, value: Any) -> None:
        raise self._gov.refusal(GuardrailViolation(RAW_PROTOCOL.format(name=name)))

    def __repr__(self) -> str:
        return f"<governed {self._raw!r} (protocol calls refused)>"


def guarded_pgconn(owner: Any, gov: Any) -> GuardedPGconn:
    return GuardedPGconn(owner.pgconn, gov)


@functools.cache
def _typeinfo_codes() -> tuple[Any, ...]:
    from psycopg.types import TypeInfo

    return tuple(
        getattr(TypeInfo, name).__func__.__code__ for name in ("_fetch", "_fetch_async") if hasattr(TypeInfo, name)
    )


def _inside_typeinfo_fetch(depth: int = 12) -> bool:
    """True when psycopg's ``TypeInfo.fetch`` (a fixed ``pg_type`` catalog read) is what asks for ``pgconn``.

    It builds ``psycopg.Cursor(conn)`` (``AsyncCursor`` for async connections) itself and its C dumpers
    need the real PGconn; SQLAlchemy's psycopg dialects and ``register_hstore``-style setup call it with
    the governed connection. Matched by code object, not module name, so other callers cannot pass for it.
    """
    codes, frame = _typeinfo_codes(), sys._getframe(2)
    while frame is not None and depth:
        if frame.f_code in codes:
            return True
        frame, depth = frame.f_back, depth - 1  # type: ignore[assignment]
    return False


@functools.cache
def _sql_composition_codes() -> frozenset[Any]:
    """Code objects of psycopg.sql's ``as_bytes``/``as_string``: they only quote, never send anything."""
    import psycopg.sql as psql

    codes = set()
    for cls in vars(psql).values():
        if isinstance(cls, type) and cls.__module__ == psql.__name__:
            for name in ("as_bytes", "as_string"):
                func = vars(cls).get(name)
                if func is not None and hasattr(func, "__code__"):
                    codes.add(func.__code__)
    return frozenset(codes)


def _composing_sql() -> bool:
    """True when psycopg.sql quotes a literal for ``Composable.as_string(conn)``: its C transformer reads
    ``conn.connection.pgconn`` for the encoding and needs the real one (matched by code object)."""
    frame = sys._getframe(2)
    return frame is not None and frame.f_code in _sql_composition_codes()


class _OwnedByGoverned(wrapt.ObjectProxy[Any]):
    """A transaction, copy or pipeline object whose ``.connection`` (``.cursor``, ``.pgconn``) are governed."""

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

    @property
    def pgconn(self) -> Any:
        return guarded_pgconn(self.__wrapped__, self._self_connection._self_gov)

    def __enter__(self) -> Any:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self.__wrapped__.__exit__(*exc)


class PsycopgConnectionFacts:
    """What psycopg's sync and async connection proxies share: the guarded protocol handle."""

    __wrapped__: Any
    _self_gov: Any

    @property
    def connection(self) -> Any:
        # psycopg's Connection.connection is the connection itself: the governed one, never the raw one
        return self

    # -- read_only=False makes psycopg open transactions with BEGIN READ WRITE: judged as that statement
    def set_read_only(self, value: Any) -> Any:
        raw = self.__wrapped__
        if value is True:
            return raw.set_read_only(value)
        return judged_call(self._self_gov, "connection.set_read_only", "BEGIN READ WRITE",
                           lambda: raw.set_read_only(value))  # fmt: skip

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "read_only" and value is not True:
            raw = self.__wrapped__
            judged_call(self._self_gov, "connection.read_only", "BEGIN READ WRITE",
                        lambda: setattr(raw, name, value))  # fmt: skip
            return
        super().__setattr__(name, value)

    # psycopg's cursor constructors bind to ``connection.pgconn`` and would send statements on it
    # directly (decision 0064): the governed connection hands out a PGconn that only answers facts.
    @property
    def pgconn(self) -> Any:
        if _inside_typeinfo_fetch() or _composing_sql():
            return self.__wrapped__.pgconn
        return guarded_pgconn(self.__wrapped__, self._self_gov)

    def _exec_command(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        # psycopg's private "run this SQL" helper; its own callers use the raw connection, never the proxy
        raise self._self_gov.refusal(GuardrailViolation(RAW_PROTOCOL.format(name="_exec_command")))

    @property
    def adapters(self) -> Any:
        # a loader registered here would see every value before masking, samples included (decision 0238)
        return GuardedAdapters(self.__wrapped__.adapters, self._self_gov)

    @property
    def info(self) -> Any:
        info = self.__wrapped__.info
        return type(info)(guarded_pgconn(self.__wrapped__, self._self_gov))

    # a notice's text is composed by code that reads any value (``RAISE NOTICE '%', NEW.full_name`` in a trigger):
    # handlers get it withheld where masking applies (decision 0230)
    def add_notice_handler(self, callback: Any) -> None:
        handlers = _notice_handlers(self)
        handlers[id(callback)] = wrapped = notices.scrubbed_callback(self._self_gov, callback)
        self.__wrapped__.add_notice_handler(wrapped)

    def remove_notice_handler(self, callback: Any) -> None:
        self.__wrapped__.remove_notice_handler(_notice_handlers(self).pop(id(callback), callback))


def _notice_handlers(conn: Any) -> dict[int, Any]:
    found: dict[int, Any] | None = getattr(conn, "_self_notice_handlers", None)
    if found is None:
        found = {}
        conn._self_notice_handlers = found
    return found


class PsycopgConnection(EndsTransactions, PsycopgConnectionFacts, TwoPhase, GovernedConnection):
    cursor_proxy = PsycopgCursor

    def execute(self, query: Any, params: Any = None, *, prepare: Any = None, binary: bool = False) -> Any:
        cur = self.cursor(binary=True) if binary else self.cursor()
        return cur.execute(query, params, prepare=prepare)

    @contextmanager
    def transaction(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            with self.__wrapped__.transaction(*args, **kwargs) as tx:
                yield _OwnedByGoverned(tx, self)
        finally:  # its commit, rollback or rollback to its savepoint may undo a session switch made inside
            transaction_ended(self._self_gov)

    @contextmanager
    def pipeline(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with self.__wrapped__.pipeline(*args, **kwargs) as pipe:
            yield _OwnedByGoverned(pipe, self)

    def __enter__(self) -> PsycopgConnection:
        self.__wrapped__.__enter__()
        return self


class PsycopgDriver(PostgresSession, Driver):
    name = "psycopg"
    dialect = "postgres"
    db_system = "postgresql"

    def __init__(self, module: Any = None) -> None:
        if module is None:
            import psycopg

            module = psycopg
        super().__init__(module)

    @property
    def connection_proxy(self) -> type:
        return PsycopgConnection

    def paramstyle_for(self, raw: Any) -> str:
        return "pyformat"

    #: descriptions by what their columns are made of (:meth:`description`; made at first use, per driver)
    _descriptions: LRU[tuple[Any, ...], Any] | None = None

    def description(self, raw_cursor: Any) -> Any:
        """``cursor.description``, reused while results keep the same fields (masking reads it per statement;
        psycopg builds a new ``Column`` per field and call). Keyed by what the columns are made of: each
        field's name, type and modifier and the client encoding the names are decoded with."""
        res: Any = getattr(raw_cursor, "pgresult", None)
        n = getattr(res, "nfields", 0) if res is not None else 0
        if not n:
            return raw_cursor.description
        try:
            encoding = raw_cursor.connection.pgconn.parameter_status(b"client_encoding")
            if _pg_fields is not None:  # the same values read in one C call (decision 0427)
                key: tuple[Any, ...] = (encoding, _pg_fields(res, n))
            else:
                key = (encoding, *[(res.fname(i), res.ftype(i), res.fmod(i)) for i in range(n)])
        except Exception:  # a pgresult of another shape (a test double): describe it afresh
            return raw_cursor.description
        cache = self._descriptions
        if cache is None:
            cache = self._descriptions = LRU("psycopg-descriptions", 256)
        found = cache.get(key)
        if found is None:
            found = raw_cursor.description
            if found:
                cache.put(key, found)
        return found

    def placeholder_problem(self, text: str, params: Any) -> str | None:
        if "$" in text:  # RawCursor / AsyncRawCursor take PostgreSQL's own $1 placeholders
            return None
        return super().placeholder_problem(text, params)


    def lexing_settings(self, raw: Any) -> dict[str, str | None] | None:
        # reported by the server at connect and on every change (ParameterStatus): no query needed
        status = raw.info.parameter_status
        return {name: status(name) for name in ("standard_conforming_strings", "client_encoding")}

    def is_closed(self, raw: Any) -> bool:
        return bool(raw.closed)

    def pipelines(self, raw: Any) -> bool:
        # a statement with parameters is one statement on the wire: the savepoint rides in a pipeline instead
        import psycopg

        return bool(psycopg.Pipeline.is_supported()) and getattr(raw, "_pipeline", None) is None

    def run_after(self, raw: Any, prefix: str, invoke: Any, sql: Any) -> Any:
        with raw.pipeline():
            raw.cursor().execute(prefix)
            return invoke(sql)  # the results arrive at the pipeline's sync, before this block is left

    def single_statements(self, raw: Any) -> bool:
        # in the application's pipeline every statement is a prepared one: one command per text
        return getattr(raw, "_pipeline", None) is not None

    def guard_results(self, raw: Any) -> None:
        pipeline = getattr(raw, "_pipeline", None)
        if pipeline is not None:  # the result (or error) of governance's statement now, not at the app's sync
            pipeline.sync()

    def transaction_state(self, gov: Any, raw: Any) -> str:
        if raw.autocommit:
            # a BEGIN of the application's in autocommit mode (INTRANS, or INERROR after a failure) is its own
            # transaction: the guard's BEGIN would be ignored and its COMMIT keep the write past the ROLLBACK
            return "open" if int(raw.info.transaction_status) in (2, 3) else "autocommit"
        return "implicit" if int(raw.info.transaction_status) == 0 else "open"  # pq.TransactionStatus.IDLE

    def static_attributes(self, raw: Any) -> dict[str, Any]:
        attrs = super().static_attributes(raw)
        try:
            info = raw.info
            attrs[DB_NAMESPACE] = info.dbname
            attrs[SERVER_ADDRESS] = info.host
            attrs[SERVER_PORT] = int(info.port)
        except Exception:  # metadata only; never fail a wrap over it
            pass
        return attrs
