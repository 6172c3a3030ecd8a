"""psycopg2: ``copy_*``, ``callproc``, named cursors, ``lobject``.

``copy_from``/``copy_to`` build their COPY statement in C; each is judged as
the statement it amounts to (``copy_to(f, "t")`` is ``COPY "t" TO STDOUT``).
Named (server-side) cursors only learn their columns at the first FETCH, so
the proxy asks for them with a zero-row FETCH right after ``execute`` — the
masking plan needs them before any row leaves. Iteration stays batched
(``itersize`` rows per round trip), exactly as psycopg2 does it.

psycopg2 type-checks connections in C (``register_type``, ``extras.register_*``,
``sql.Composable.as_string``): pass ``governed_db.unwrap(conn)`` there.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from governed_db.drivers import Driver, innermost, quote_ident
from governed_db.drivers._copy import describe_with, refuse_unmaskable_copy
from governed_db.drivers._postgres import EndsTransactions, PostgresSession
from governed_db.drivers._psycopg2_errors import seal_error
from governed_db.drivers._twophase import TwoPhase
from governed_db.errors import GuardrailViolation
from governed_db.masking import notices
from governed_db.pipeline import Governor, judged_call, run
from governed_db.proxies import (
    CallProc,
    GovernedConnection,
    GovernedCursor,
    NextSet,
    _params,
    check_placeholders,
    low_level_result,
)
from governed_db.semconv import DB_NAMESPACE, SERVER_ADDRESS, SERVER_PORT


def _copy_sql(table: str, columns: Sequence[str] | None, direction: str) -> str:
    cols = f" ({', '.join(quote_ident(c) for c in columns)})" if columns else ""
    return f"COPY {quote_ident(table)}{cols} {direction}"


#: mogrified statements remembered per cursor for execute_batch (its page_size defaults to 100)
_BATCH_MEMORY = 10_000
#: parameter types psycopg2 quotes as literals; anything else is an adapter whose getquoted() decides the SQL
_PLAIN = (str, int, float, bool, bytes, bytearray, memoryview, type(None), decimal.Decimal, datetime.date,
          datetime.time, datetime.timedelta, uuid.UUID)  # fmt: skip


def _splices_sql(params: Any) -> bool:
    """Does a parameter go through an adapter that may splice raw SQL (``AsIs``, a custom ``ISQLQuote``)?"""
    values = params.values() if isinstance(params, Mapping) else params
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = (values,)
    for value in values:
        if isinstance(value, (list, tuple)):
            if _splices_sql(value):
                return True
        elif not isinstance(value, _PLAIN):
            return True
    return False


class Psycopg2Cursor(CallProc, NextSet, GovernedCursor):
    _self_mogrified: list[bytes] | None = None
    def callproc_sql(self, name: str, params: Any) -> str:
        # what psycopg2 actually sends
        if isinstance(params, Mapping):
            args = ", ".join(f"{k} := %({k})s" for k in params)
        else:
            args = ", ".join("%s" for _ in (params or ()))
        return f"SELECT * FROM {name}({args})"

    def mogrify(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        out = self.__wrapped__.mogrify(operation, *args, **kwargs)
        # extras.execute_batch mogrifies each statement, then executes them joined with ';'
        batch = self._self_mogrified
        if batch is None:
            batch = self._self_mogrified = []
        if len(batch) < _BATCH_MEMORY:
            batch.append(out)
        return out

    def _self_run_all(self, texts: list[bytes]) -> None:
        """Run statements one by one after judging them all (the first refused one is run to be refused)."""
        from governed_db.sql.analysis import analyze

        gov = self._self_gov
        identity = gov.resolve_identity()
        for text in texts:
            decision = gov.policy.evaluate(
                analyze(gov.driver.statement_text(text, gov.raw), gov.dialect), identity=identity,
                environment=gov.environment,
            )
            if not decision.allowed:
                super().execute(text)  # recorded and raised like any refusal
        for text in texts:
            super().execute(text)

    def executemany(self, operation: Any, seq_of_parameters: Any, *args: Any, **kwargs: Any) -> Any:
        rows = list(seq_of_parameters)
        if any(_splices_sql(row) for row in rows if row is not None):
            # what psycopg2 does too: one execute per row, each judged as the SQL it builds; all are judged
            # before the first runs, so a refused row leaves nothing half-applied
            self._self_run_all([self.__wrapped__.mogrify(operation, row) for row in rows])
            return None
        return super().executemany(operation, rows, *args, **kwargs)

    def execute(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        raw, query = self.__wrapped__, operation
        batch = self._self_mogrified or []
        self._self_mogrified = None
        if len(batch) > 1 and not args and not kwargs and isinstance(query, bytes) and query == b";".join(batch):
            # the driver joined statements it built itself (execute_batch): each is judged on its own
            self._self_run_all(batch)
            return None
        params = _params(args, kwargs)
        if params is not None and _splices_sql(params):
            # AsIs and custom ISQLQuote adapters put raw SQL into the text: judge (and send) what psycopg2 builds
            text = raw.mogrify(query, params)
            return super().execute(text)
        if not getattr(raw, "name", None):
            return super().execute(query, *args, **kwargs)
        params = _params(args, kwargs)
        check_placeholders(self._self_gov, query, params)

        def invoke(sql: Any) -> Any:
            nonlocal raw
            try:
                out = raw.execute(sql, *args, **kwargs)
            except raw.connection.ProgrammingError as e:
                # psycopg2 invalidates a named cursor when its connection commits or rolls back between
                # cursor() and execute(); governance's own catalog reads may do that, so make it anew
                remake = getattr(self, "_self_remake", None)
                if remake is None or raw.query is not None or "isn't valid anymore" not in str(e):
                    raise
                raw = self._self_replace(remake())
                out = raw.execute(sql, *args, **kwargs)
            if raw.description is None:
                raw.fetchmany(0)  # FETCH FORWARD 0: learns the columns, moves nothing
            return out

        return self._self_out(run(self._self_gov, "cursor.execute", query, params, invoke, self._self_result))

    @property
    def pgresult_ptr(self) -> Any:
        return low_level_result(self, "pgresult_ptr")

    def _self_replace(self, fresh: Any) -> Any:
        old = self.__wrapped__
        for attr in ("itersize", "arraysize", "scrollable", "withhold", "tzinfo_factory"):
            with contextlib.suppress(AttributeError, TypeError, ValueError):
                setattr(fresh, attr, getattr(old, attr))
        old.close()
        self.__wrapped__ = fresh
        self._self_result.raw = fresh
        return fresh

    def copy_expert(self, sql: Any, file: Any, *args: Any, **kwargs: Any) -> Any:
        gov, raw = self._self_gov, self.__wrapped__
        text = gov.driver.statement_text(sql, gov.raw)

        def invoke(statement: Any) -> Any:
            refuse_unmaskable_copy(gov, text, describe_with(innermost(gov.raw)))
            return raw.copy_expert(statement, file, *args, **kwargs)

        return run(gov, "cursor.copy_expert", sql, None, invoke)

    def copy_from(self, file: Any, table: str, *args: Any, **kwargs: Any) -> Any:
        columns = kwargs.get("columns", args[3] if len(args) > 3 else None)
        raw = self.__wrapped__
        return run(
            self._self_gov,
            "cursor.copy_from",
            _copy_sql(table, columns, "FROM STDIN"),
            None,
            lambda _s: raw.copy_from(file, table, *args, **kwargs),
        )

    def copy_to(self, file: Any, table: str, *args: Any, **kwargs: Any) -> Any:
        gov, raw = self._self_gov, self.__wrapped__
        columns = kwargs.get("columns", args[2] if len(args) > 2 else None)
        text = _copy_sql(table, columns, "TO STDOUT")

        def invoke(_s: Any) -> Any:
            refuse_unmaskable_copy(gov, text, describe_with(innermost(gov.raw)))
            return raw.copy_to(file, table, *args, **kwargs)

        return run(gov, "cursor.copy_to", text, None, invoke)


class Psycopg2Connection(EndsTransactions, TwoPhase, GovernedConnection):
    cursor_proxy = Psycopg2Cursor

    # psycopg2 appends each notice's text to ``connection.notices``: read withheld where masking applies, and a
    # container set in its place gets them withheld too (decision 0230)
    def __init__(self, raw: Any, gov: Governor) -> None:
        super().__init__(raw, gov)
        # the driver's own list, gated from the start: a notice raised in a masked read order is never kept (0340)
        own = getattr(raw, "notices", None)
        if isinstance(own, notices.ScrubbedNotices):
            own = own._target if own._own else None
        if own is not None:
            with contextlib.suppress(AttributeError, TypeError):
                raw.notices = notices.ScrubbedNotices(gov, own, own=True)

    @property
    def notices(self) -> Any:
        raw = self.__wrapped__.notices
        if isinstance(raw, notices.ScrubbedNotices):
            if not raw._own:
                return raw._target
            raw = raw._target
        return [notices.notice_text(self._self_gov, n) for n in raw]

    @notices.setter
    def notices(self, value: Any) -> None:
        self.__wrapped__.notices = notices.ScrubbedNotices(self._self_gov, value)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        proxy = super().cursor(*args, **kwargs)
        if args or kwargs.get("name"):  # a named cursor: remember how to make it again
            proxy._self_remake = lambda: self.__wrapped__.cursor(*args, **kwargs)
        return proxy

    # -- methods that change the session: judged as the statement psycopg2 sends (docs/guardrails.md)
    def reset(self) -> Any:
        return judged_call(self._self_gov, "connection.reset", "RESET ALL", self.__wrapped__.reset, resets=True)

    def set_session(self, *args: Any, **kwargs: Any) -> Any:
        readonly = kwargs.get("readonly", args[1] if len(args) > 1 else True)
        raw = self.__wrapped__

        def call() -> Any:
            return raw.set_session(*args, **kwargs)

        if readonly is True:  # isolation level, deferrable, autocommit, or read-only: nothing undone
            return call()
        return judged_call(self._self_gov, "connection.set_session", "BEGIN READ WRITE", call)

    def set_client_encoding(self, encoding: str) -> Any:
        # judged as the SET it sends: a client encoding that lacks characters is an error oracle on masked values
        raw = self.__wrapped__
        literal = "'" + str(encoding).replace("'", "''") + "'"
        return judged_call(self._self_gov, "connection.set_client_encoding", f"SET client_encoding TO {literal}",
                           lambda: raw.set_client_encoding(encoding))  # fmt: skip

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "readonly" and value is not True:
            raw = self.__wrapped__
            judged_call(self._self_gov, "connection.readonly", "BEGIN READ WRITE",
                        lambda: setattr(raw, name, value))  # fmt: skip
            return
        super().__setattr__(name, value)

    @property
    def pgconn_ptr(self) -> Any:
        # libpq's PGconn* for ctypes: PQexec on it would run statements around governance (decision 0064)
        raise self._self_gov.refusal(
            GuardrailViolation(
                "refused by governed_db: raw protocol access (connection.pgconn_ptr) bypasses governance; "
                "use conn.cursor(...)"
            )
        )

    def lobject(self, oid: int = 0, mode: str = "", *args: Any, **kwargs: Any) -> Any:
        # large objects are read and written without SQL: judged as the server call that opens one
        return run(
            self._self_gov,
            "connection.lobject",
            "SELECT lo_open(%s, %s)",
            (oid, mode),
            lambda _s: self.__wrapped__.lobject(oid, mode, *args, **kwargs),
        )


class Psycopg2Driver(PostgresSession, Driver):
    name = "psycopg2"
    dialect = "postgres"
    db_system = "postgresql"

    def seal_error(self, exc: BaseException) -> None:
        seal_error(exc)

    def lexing_settings(self, raw: Any) -> dict[str, str | None] | None:
        # reported by the server at connect and on every change (ParameterStatus): no query needed
        status = raw.get_parameter_status
        return {name: status(name) for name in ("standard_conforming_strings", "client_encoding")}

    def __init__(self, module: Any = None) -> None:
        if module is None:
            import psycopg2

            module = psycopg2
        super().__init__(module)

    @property
    def connection_proxy(self) -> type:
        return Psycopg2Connection

    def paramstyle_for(self, raw: Any) -> str:
        return "pyformat"

    def is_closed(self, raw: Any) -> bool:
        return bool(raw.closed)

    def transaction_state(self, gov: Any, raw: Any) -> str:
        if raw.autocommit:
            # a BEGIN of the application's in autocommit mode (INTRANS, or INERROR after a failure) is its own
            # transaction: the guard's BEGIN would be ignored and its COMMIT keep the write past the ROLLBACK
            return "open" if raw.get_transaction_status() in (2, 3) else "autocommit"
        return "implicit" if raw.get_transaction_status() == 0 else "open"  # TRANSACTION_STATUS_IDLE

    def fold_into(self, sql: Any, params: Any, prefix: str) -> Any:
        # psycopg2 sends one text (parameters are interpolated client-side); the cursor keeps the last
        # result, so the bracket opens in the statement's own round trip
        return f"{prefix}; {sql}" if type(sql) is str else None

    def statement_text(self, sql: Any, raw: Any) -> str:
        as_string = getattr(sql, "as_string", None)
        if callable(as_string) and not isinstance(sql, (str, bytes)):
            return str(as_string(innermost(raw)))  # psycopg2 checks the connection's type in C
        return super().statement_text(sql, raw)

    def static_attributes(self, raw: Any) -> dict[str, Any]:
        attrs = super().static_attributes(raw)
        try:
            dsn = raw.get_dsn_parameters()
            attrs[DB_NAMESPACE] = dsn.get("dbname")
            attrs[SERVER_ADDRESS] = dsn.get("host")
            attrs[SERVER_PORT] = int(dsn.get("port", 5432))
        except Exception:  # metadata only; never fail a wrap over it
            pass
        return {k: v for k, v in attrs.items() if v is not None}
