"""Thin wrapt proxies: every way SQL goes in and rows come out meets the pipeline.

The proxies hold no logic of their own beyond routing: statements go to
:func:`governed_db.pipeline.run`, rows go through
:class:`governed_db.results.ResultState`. Driver-specific entry points live in
``governed_db.drivers.<driver>`` as small subclasses of these, assembled from
the mixins below so that a governed cursor has exactly the methods the
driver's cursor has (``hasattr(cur, "callproc")`` answers as the raw would).

Conventions (wrapt): proxy state uses the ``_self_`` prefix; the real object
is ``__wrapped__``; any method that would hand back the raw cursor or
connection hands back the proxy instead.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import wrapt

from governed_db import masking
from governed_db import results as results_module
from governed_db.drivers._decoders import CURSOR_CLASS_ARGUMENTS, CURSOR_CLASS_ATTRIBUTES, check_cursor_class
from governed_db.errors import GovernedDBError, GuardrailViolation, InvalidStatement
from governed_db.masking import errors_order, warnings_order
from governed_db.masking.notices import fetched, fetched_rows
from governed_db.pipeline import Governor, run
from governed_db.results import ResultState


class RowsOut:
    """Mixin: the DB-API ``fetch*`` exits, all through ``self._self_result``."""

    __wrapped__: Any
    _self_result: ResultState

    # a fetch can fail on a value (a stored date psycopg cannot represent: ``date too large (after year 10K):
    # '12345-03-14'``): its error is scrubbed as a statement's is (decision 0238)
    def fetchone(self) -> Any:
        st = self._self_result
        try:
            # notices.fetched only matters to a read in a masked order: the usual one calls the driver directly
            row = fetched(st, self.__wrapped__.fetchone) if st.read_order else self.__wrapped__.fetchone()
        except Exception as e:
            scrub_fetch_error(self, e)
            raise
        return st.one(row) if st.active else row

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        st = self._self_result
        try:
            if st.read_order:
                rows = fetched(st, self.__wrapped__.fetchmany, *args, **kwargs)
            else:
                rows = self.__wrapped__.fetchmany(*args, **kwargs)
        except Exception as e:
            scrub_fetch_error(self, e)
            raise
        return many_out(self, rows, args, kwargs)

    def fetchall(self) -> Any:
        st = self._self_result
        try:
            rows = fetched(st, self.__wrapped__.fetchall) if st.read_order else self.__wrapped__.fetchall()
        except Exception as e:
            scrub_fetch_error(self, e)
            raise
        if not st.active:
            return rows
        native = results_module.native_rows[0]  # unmasked, uncapped, counted in C (decision 0412)
        if native is not None and native(st, rows):
            return rows
        # many() never changes the list it is given: the driver's own (new) list needs no copy
        return _same_kind(rows, st.many(rows if type(rows) is list else list(rows), complete=True))


def scrub_fetch_error(cursor: Any, exc: BaseException) -> None:
    """Blank values ``exc`` (raised while fetching from ``cursor``'s driver cursor) quotes (``cursor``: a governed
    cursor, or a result state: anything with the governor as ``_self_gov`` or ``gov``)."""
    gov = getattr(cursor, "_self_gov", None) or getattr(cursor, "gov", None)
    if gov is not None and not isinstance(exc, GovernedDBError):
        gov.driver.seal_error(exc)
        ms = gov.masking_state
        if ms is not None and ms.warnings_kept:  # an unbuffered MySQL read fails while its rows come (0328)
            warnings_order.failed(ms)  # how many warnings it left says how far it read (0344)
            errors_order.withhold(ms, exc)
        elif ms is not None:  # a PostgreSQL server-side cursor: the flag of the statement that opened it (0334)
            st = getattr(cursor, "_self_result", cursor)
            errors_order.withhold(ms, exc, read_order=getattr(st, "read_order", False))
        masking.scrub_error(exc, gov=gov)


def scrubbed_rows(cursor: Any, rows: Iterator[Any]) -> Iterator[Any]:
    """``rows``, an error raised while iterating them scrubbed (the driver's own iterator stays batched)."""
    try:
        yield from rows
    except Exception as e:
        scrub_fetch_error(cursor, e)
        raise


def many_out(cursor: Any, rows: Any, args: Any, kwargs: Any) -> Any:
    """Rows of ``fetchmany(*args, **kwargs)`` (``args=None``: of ``fetchall()``) through the result state.

    Shared by the sync and the async cursor proxies, which differ only in how they get ``rows``.
    """
    st: ResultState = cursor._self_result
    if not st.active:
        return rows
    if args is None:
        native = results_module.native_rows[0]  # unmasked, uncapped, counted in C (decision 0412)
        if native is not None and native(st, rows):
            return rows
        complete = True
    else:
        size = args[0] if args else kwargs.get("size", getattr(cursor.__wrapped__, "arraysize", 1))
        complete = len(rows) < (size or 1)
    return _same_kind(rows, st.many(rows if type(rows) is list else list(rows), complete=complete))


class CursorProxy(wrapt.ObjectProxy[Any]):
    """What sync and async cursor proxies share: their state, and handing back proxies, never raw objects."""

    def __init__(self, raw: Any, gov: Governor, connection: Any) -> None:
        super().__init__(raw)
        self._self_gov = gov
        self._self_connection = connection
        self._self_result = ResultState(raw, gov)

    # -- the proxy itself is what callers get back -------------------------------------------
    def _self_out(self, value: Any) -> Any:
        if value is None:
            return None
        if value is self.__wrapped__:
            return self
        if value is self._self_gov.raw or value is getattr(self._self_connection, "__wrapped__", None):
            return self._self_connection
        return value

    @property
    def connection(self) -> Any:
        return self._self_connection

    def __repr__(self) -> str:
        return f"<governed {self.__wrapped__!r}>"


class GovernedCursor(RowsOut, CursorProxy):
    """A DB-API cursor whose statements are governed and whose rows are masked."""

    def __enter__(self) -> GovernedCursor:
        raw = self.__wrapped__
        enter = getattr(type(raw), "__enter__", None)
        if enter is None:  # sqlite3 cursors are not context managers: say so as Python would
            raise TypeError(
                f"'{type(raw).__module__}.{type(raw).__name__}' object does not support the context "
                "manager protocol"
            )
        enter(raw)
        return self

    def __exit__(self, *exc: Any) -> Any:
        self._self_result.finish()
        return self.__wrapped__.__exit__(*exc)

    def __iter__(self) -> Iterator[Any]:
        # Always a generator over the raw iterator, so batched iteration (psycopg2 named
        # cursors fetch ``itersize`` rows per round trip) stays batched.
        st = self._self_result
        raw_iter = iter(self.__wrapped__)
        if st.read_order:  # a server-side cursor fetches as it iterates: its notices come in read order (0340)
            raw_iter = fetched_rows(st, raw_iter)
        raw_iter = scrubbed_rows(self, raw_iter)
        if st.active:
            return st.iterate(raw_iter)
        return (row for row in raw_iter)

    def __next__(self) -> Any:
        st = self._self_result
        try:
            row = fetched(st, next, self.__wrapped__) if st.read_order else next(self.__wrapped__)
        except StopIteration:
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
            raise StopIteration
        return out

    def close(self) -> Any:
        self._self_result.finish()
        return self.__wrapped__.close()

    # -- in ------------------------------------------------------------------------------------
    def execute(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        # the hot path: kept to a few attribute reads (see bench/bench_core.py)
        raw = self.__wrapped__
        gov = self._self_gov
        run_raw = raw.execute
        if kwargs:
            params = _params(args, kwargs)
            invoke = lambda sql: run_raw(sql, *args, **kwargs)  # noqa: E731
            rest: tuple[Any, ...] = ()
        else:
            params = args[0] if args else None
            invoke, rest = run_raw, args  # run() passes ``rest`` on: no closure per statement
        if (
            params
            and type(operation) is str
            and gov.driver.placeholder_verdicts.get(operation, _UNSEEN) is not None
        ):
            check_placeholders(gov, operation, params)
        out = run(gov, "cursor.execute", operation, params, invoke, self._self_result, rest)
        return self if out is raw else self._self_out(out)

    def executemany(self, operation: Any, seq_of_parameters: Any, *args: Any, **kwargs: Any) -> Any:
        raw = self.__wrapped__
        if not isinstance(seq_of_parameters, (list, tuple)):
            seq_of_parameters = list(seq_of_parameters)  # consumed once, by the record and the driver alike
        if seq_of_parameters:
            check_placeholders(self._self_gov, operation, seq_of_parameters[0])
        out = run(
            self._self_gov,
            "cursor.executemany",
            operation,
            seq_of_parameters,
            lambda sql: raw.executemany(sql, seq_of_parameters, *args, **kwargs),
            self._self_result,
        )
        return self._self_out(out)


class NextSet:
    """Mixin for drivers whose cursors have ``nextset()`` (more than one result set)."""

    __wrapped__: Any
    _self_gov: Governor
    _self_result: ResultState
    _self_out: Any

    def nextset(self, *args: Any, **kwargs: Any) -> Any:
        self._self_result.finish()
        out = self.__wrapped__.nextset(*args, **kwargs)
        withhold_unplanned(self._self_gov, self._self_result, bool(out))
        return self._self_out(out)


class CallProc:
    """Mixin for drivers whose cursors have ``callproc()``; judged as the statement it runs."""

    __wrapped__: Any
    _self_gov: Governor
    _self_result: ResultState
    _self_out: Any

    def callproc_sql(self, name: str, params: Any) -> str:
        placeholders = ", ".join("?" for _ in (params or ()))
        return f"CALL {name}({placeholders})"

    def callproc(self, procname: Any, *args: Any, **kwargs: Any) -> Any:
        raw = self.__wrapped__
        if not isinstance(procname, str):
            raise self._self_gov.refusal(
                InvalidStatement(f"callproc() takes the procedure name as str, got {type(procname).__name__}")
            )
        params = args[0] if args else kwargs.get("parameters", kwargs.get("args"))
        out = run(
            self._self_gov,
            "cursor.callproc",
            self.callproc_sql(procname, params),
            params,
            lambda _sql: raw.callproc(procname, *args, **kwargs),
            self._self_result,
        )
        return self._self_out(out)


class PrivateWithheld:
    """Mixin for proxies of pure-Python drivers: the driver's private members are not forwarded.

    A driver class's own method called with the proxy as ``self``
    (``psycopg.Cursor.execute(governed_cursor, sql)``, ``pymysql.connections.Connection.query(governed, sql)``)
    reads private members (``self._conn``, ``self._query``, ``self._execute_command``) and, forwarded, they
    are the raw object's: the statement would run unjudged. C drivers refuse such calls by type. An
    ``AttributeError`` (so ``hasattr``/``getattr(..., default)`` probes keep working) says why.
    """

    __wrapped__: Any
    #: private names callers legitimately read through the proxy (per driver)
    private_allowed: frozenset[str] = frozenset()

    def __getattr__(self, name: str) -> Any:
        if name[:1] == "_" and name[:2] != "__" and name not in self.private_allowed:
            if name.startswith("_self_"):  # the proxy's own state that was never set
                raise AttributeError(name)
            raise AttributeError(
                f"governed_db withholds the driver's private member {name!r}: driver internals called with a "
                "governed object would run around governance. Use the governed object's public methods "
                "(or governed_db.unwrap(conn) where going around governance is intended)."
            )
        return getattr(self.__wrapped__, name)


class DBAPICursor(CallProc, NextSet, GovernedCursor):
    """The cursor proxy for drivers governed_db has no specific module for."""

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.__wrapped__, name)
        if name == "executescript" and callable(value):
            # sqlite3-compatible drivers (pysqlite3, sqlcipher): a whole script, judged as one text
            return functools.partial(governed_executescript, self)
        return value


class GovernedConnection(wrapt.ObjectProxy[Any]):
    """A DB-API connection whose cursors, shortcuts and context managers stay governed."""

    cursor_proxy: type[GovernedCursor] = DBAPICursor

    def __init__(self, raw: Any, gov: Governor) -> None:
        super().__init__(raw)
        self._self_gov = gov

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        # whatever the driver builds (cursor_factory, row_factory, named cursors) is wrapped; a cursor class is
        # the driver's own (a subclass of the caller's would see the rows before masking: decision 0238)
        for value in (*args, *(v for k, v in kwargs.items() if k in CURSOR_CLASS_ARGUMENTS)):
            if isinstance(value, type):
                check_cursor_class(self._self_gov, self.__wrapped__, "cursor class", value)
        named = kwargs.get("name", args[0] if args else None)
        if isinstance(named, str) and named:  # psycopg, psycopg2: a server-side cursor (decision 0371)
            from governed_db.masking.cursors import driver_cursor

            driver_cursor(self._self_gov, named)
        return self.cursor_proxy(self.__wrapped__.cursor(*args, **kwargs), self._self_gov, self)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in CURSOR_CLASS_ATTRIBUTES:
            check_cursor_class(self._self_gov, self.__wrapped__, name, value)
        super().__setattr__(name, value)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.__wrapped__, name)
        if name in CURSOR_SHORTCUTS and callable(value):
            # pyodbc/pysqlite3-style ``conn.execute()`` runs on a raw cursor of the driver's own: run it on a
            # governed one instead (only where the driver has the shortcut, so hasattr answers as the raw would)
            return functools.partial(_run_on_new_cursor, self, name)
        return value

    def __enter__(self) -> GovernedConnection:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self.__wrapped__.__exit__(*exc)

    def __repr__(self) -> str:
        return f"<governed {self.__wrapped__!r} environment={self._self_gov.environment!r}>"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a governed connection cannot be pickled (neither can the driver's connection)")

    @property
    def governor(self) -> Governor:
        """governed_db's state for this connection (settings, dialect, policy)."""
        return self._self_gov


def withhold_unplanned(gov: Governor, result: ResultState, more: bool) -> None:
    """After switching to another result set: its columns were never planned, so withhold it."""
    if more and result.plan is not None:
        result.poison(
            gov.refusal(
                GuardrailViolation(
                    "a second result set of a masked statement is withheld; run statements one by one"
                )
            )
        )


def low_level_result(cursor: Any, name: str) -> Any:
    """A driver's raw result handle (psycopg ``pgresult``), withheld when rows need masking or a cap.

    Values read through it would skip the result state, so it is only handed out when nothing
    would be done to the rows anyway.
    """
    st: ResultState = cursor._self_result
    if st.touches_rows:
        raise cursor._self_gov.refusal(
            GuardrailViolation(
                f"refused by governed_db: cursor.{name} reads result values directly, and this result has masked "
                "columns or a row limit. Next step: read rows with fetchone()/fetchmany()/fetchall()."
            )
        )
    return getattr(cursor.__wrapped__, name)


def check_placeholders(gov: Governor, operation: Any, params: Any) -> None:
    """Refuse a statement written for another paramstyle, naming both styles."""
    if not params or type(operation) is not str:
        return
    verdicts = gov.driver.placeholder_verdicts
    problem = verdicts.get(operation, _UNSEEN)
    if problem is _UNSEEN:
        problem = gov.driver.placeholder_problem(operation, params)
        verdicts.put(operation, problem, len(operation) + 64)
    if problem:
        raise gov.refusal(InvalidStatement(problem))


_UNSEEN = object()

#: connection-level statement shortcuts (not DB-API, but common) that stand for ``conn.cursor().<name>``
CURSOR_SHORTCUTS = frozenset({"execute", "executemany", "executescript"})


def governed_executescript(cursor: GovernedCursor, sql_script: Any) -> Any:
    """sqlite3-style ``cursor.executescript(script)``: the whole script judged as one text, then run."""
    raw = cursor.__wrapped__
    out = run(
        cursor._self_gov, "cursor.executescript", sql_script, None, raw.executescript, cursor._self_result
    )
    return cursor._self_out(out)


def _run_on_new_cursor(conn: GovernedConnection, name: str, *args: Any, **kwargs: Any) -> Any:
    """``conn.<name>(...)`` as the shortcut drivers define it: on a new (governed) cursor, which is returned."""
    cur = conn.cursor()
    getattr(cur, name)(*args, **kwargs)
    return cur


def _same_kind(raw_rows: Any, rows: list[Any]) -> Any:
    """The masked rows in the container the driver used (PyMySQL returns tuples, others lists)."""
    return tuple(rows) if isinstance(raw_rows, tuple) else rows


def _params(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    for key in ("parameters", "params", "vars", "args"):
        if key in kwargs:
            return kwargs[key]
    return None
