"""What governed_db knows about each DB-API driver.

A :class:`Driver` says which dialect and semantic-convention system a
connection speaks, how to read statement text and cursor metadata, and which
proxy classes cover the driver's extra entry points. Driver modules are
imported only when a connection of theirs is wrapped.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from governed_db._cache import LRU, STATEMENT_CHARS, STATEMENTS
from governed_db.errors import ConfigurationError, GuardrailViolation, InvalidStatement
from governed_db.semconv import DB_SYSTEM_NAME


class Driver:
    """Generic DB-API 2.0 behaviour; subclasses override what their driver does differently."""

    name = "dbapi"
    dialect: str | None = None
    db_system = "other_sql"
    module_name: str | None = None
    #: the connection's methods are coroutines (see governed_db.drivers._async.AsyncDriver)
    is_async = False

    def __init__(self, module: Any = None) -> None:
        self.module = module
        #: statement text -> placeholder problem (None: fine); statements repeat, the check is per text
        self.placeholder_verdicts: LRU[str, str | None] = LRU("placeholder-verdicts", STATEMENTS, STATEMENT_CHARS)

    # -- proxies -------------------------------------------------------------------------------
    @property
    def connection_proxy(self) -> type | None:
        """The proxy class for this driver's connections; None: the generic DB-API proxy
        (:class:`governed_db.proxies.GovernedConnection`, chosen by ``wrap()``: drivers sit below the proxies)."""
        return None

    @classmethod
    def for_connection(cls, raw: Any) -> Driver:
        """The driver for ``raw`` (a module with sync and async connections picks by the connection)."""
        return cls()

    def catalog_connection(self, gov: Any) -> Any:
        """The connection masking reads the catalog through (synchronously)."""
        return gov.raw

    def length_limit(self, gov: Any) -> int | None:
        """The longest row the database stores (SQLite's ``SQLITE_LIMIT_LENGTH``); ``None`` when it cannot be read."""
        return None

    def longest_value(self, gov: Any, table: tuple[str, ...], column: str) -> int | None:
        """The bytes of the longest value stored in ``column`` of the base table spelled ``table`` (its parts, as a
        statement names it), read now; ``None`` when it cannot be read here, or is no stored column of a table."""
        return None

    # -- facts about a connection --------------------------------------------------------------
    def dialect_for(self, raw: Any) -> str:
        if self.dialect is None:
            raise ConfigurationError(
                f"governed_db does not know the SQL dialect of {type(raw).__module__}.{type(raw).__name__}; "
                "pass dialect='postgres' (or 'mysql', 'sqlite', 'duckdb', any sqlglot dialect) to wrap()"
            )
        return self.dialect

    def paramstyle_for(self, raw: Any) -> str:
        return str(getattr(self.module, "paramstyle", "qmark"))

    def is_closed(self, raw: Any) -> bool:
        closed = getattr(raw, "closed", False)
        return bool(closed) if not callable(closed) else False

    def static_attributes(self, raw: Any) -> dict[str, Any]:
        return {DB_SYSTEM_NAME: self.db_system}

    def error_class(self, raw: Any, name: str) -> type[BaseException] | None:
        """The driver's exception class ``name`` (``ProgrammingError``, ``DatabaseError``)."""
        found = getattr(raw, name, None) or getattr(self.module, name, None)
        return found if isinstance(found, type) and issubclass(found, BaseException) else None

    # -- facts about a statement / result ------------------------------------------------------
    def statement_text(self, sql: Any, raw: Any) -> str:
        if type(sql) is str:
            return sql
        if isinstance(sql, str):
            return str(sql)
        if isinstance(sql, (bytes, bytearray, memoryview)):
            try:
                return bytes(sql).decode("utf-8")
            except UnicodeDecodeError as e:
                raise InvalidStatement(
                    f"the statement is bytes that are not valid UTF-8 ({e.reason} at byte {e.start}); "
                    "decode it with the right encoding and pass text"
                ) from None
        as_string = getattr(sql, "as_string", None)  # psycopg / psycopg2 sql.Composable
        if callable(as_string):
            return str(as_string(raw))
        if sql is None:
            raise InvalidStatement("the statement is None: pass the SQL text to execute")
        raise InvalidStatement(
            f"the statement must be SQL text (str or bytes), got {type(sql).__name__}: pass the SQL as a string"
        )

    def unescapes_percent(self, params: Any) -> bool:
        """Whether the driver sends ``%%`` as ``%`` when it runs a statement with ``params`` (pyformat drivers
        interpolate, unescaping ``%%``, whenever parameters are given, an empty tuple too)."""
        return params is not None and self.paramstyle_for(None) in ("format", "pyformat")

    def placeholder_problem(self, text: str, params: Any) -> str | None:
        """Why ``text`` cannot take ``params`` in this driver's paramstyle (None: no evident problem).

        Only called when parameters are given; flags a statement written for
        another paramstyle, which the driver would reject less clearly.
        """
        style = self.paramstyle_for(None)
        if style in ("format", "pyformat"):
            if "%s" in text or "%(" in text or "%b" in text or "%t" in text:
                return None
            found = "?" if "?" in text else ("$1" if _DOLLAR.search(text) else None)
            if found:
                return (
                    f"{self.name} uses %s placeholders (paramstyle {style!r}), but the statement has {found}: "
                    "write %s (or %(name)s) for each parameter"
                )
        elif style in ("qmark", "named", "numeric"):
            if "?" in text or ":" in text or "$" in text:
                return None
            if "%s" in text or "%(" in text:
                return (
                    f"{self.name} uses ? placeholders (paramstyle {style!r}), but the statement has %s: "
                    "write ? (or :name) for each parameter"
                )
        return None

    def lexing_settings(self, raw: Any) -> dict[str, str | None] | None:
        """The session's settings that decide how the server lexes SQL (None: the driver has none to check).

        ``wrap()`` refuses a connection whose values the analyser does not read by
        (:func:`governed_db.sql._lexing.unsafe_session`): a GBK client encoding, ``standard_conforming_strings``
        off, MySQL ``ANSI_QUOTES`` / ``NO_BACKSLASH_ESCAPES``.
        """
        return None

    def module_attribute(self, facade: Any, name: str, value: Any) -> Any:
        """What ``govern_module(module).<name>`` hands out (drivers with module-level SQL override this)."""
        return value

    def description(self, raw_cursor: Any) -> Any:
        return raw_cursor.description

    def rowcount(self, raw_cursor: Any) -> int | None:
        count = getattr(raw_cursor, "rowcount", None)
        return count if isinstance(count, int) else None

    def warning_count(self, raw_cursor: Any) -> int | None:
        """How many warnings the last statement left on the session, where the database keeps them after it
        (MySQL/MariaDB's ``SHOW WARNINGS``); ``None``: not known (yet)."""
        return None

    # -- the effect guard and the session (governed_db.guards; docs/guardrails.md) -----------------
    #: the database can roll back to a savepoint inside a transaction
    savepoints: bool = True
    #: the statements that open, keep and undo the bracket around one guarded write
    savepoint_sql = "SAVEPOINT governed_db_guard"
    release_sql = "RELEASE SAVEPOINT governed_db_guard"
    rollback_to_sql = "ROLLBACK TO SAVEPOINT governed_db_guard"
    begin_sql = "BEGIN"

    def transaction_state(self, gov: Any, raw: Any) -> str:
        """``autocommit``, ``open`` (a transaction is open) or ``implicit`` (the driver opens one itself).

        Drivers that cannot tell raise :class:`ConfigurationError`: a bounded write is then refused.
        """
        raise ConfigurationError(
            f"governed_db cannot tell the transaction state of a {self.name} connection, so writes bounded by "
            "their effect cannot run on it"
        )

    def open_guard(self, state: str) -> tuple[str, ...]:
        """What opens the bracket: a savepoint in a transaction (the driver's own, when it opens one itself)."""
        return (self.begin_sql,) if state == "autocommit" else (self.savepoint_sql,)

    def effect_rowcount(self, raw_cursor: Any) -> int | None:
        """Rows the last write changed or matched (what the effect guard measures); None: unknown."""
        count = self.rowcount(raw_cursor)
        return count if count is not None and count >= 0 else None

    def guard_connection(self, st: Any) -> Any:
        """The driver connection ``st`` runs on, where governance's own SQL for it must run too."""
        return innermost(st.gov.raw)

    def guard_execute(self, raw: Any, sql: str) -> list[Any]:
        """Run governance's own ``sql`` on the raw connection (never the application's cursor); its rows."""
        cur = raw.cursor()
        try:
            cur.execute(sql)
            self.guard_results(raw)
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def guard_results(self, raw: Any) -> None:
        """Make the result of governance's statement just sent readable now (psycopg's pipeline: sync it)."""

    async def guard_execute_async(self, raw: Any, sql: str) -> list[Any]:
        """:meth:`guard_execute` for async connections (their cursors' methods are awaited)."""
        cur = raw.cursor()
        try:
            await cur.execute(sql)
            return list(await cur.fetchall()) if cur.description else []
        finally:
            closing = cur.close()
            if hasattr(closing, "__await__"):
                await closing

    def single_statements(self, raw: Any) -> bool:
        """Governance's SQL must be one statement per text on ``raw`` now (nothing fused or joined with ``;``)."""
        return False

    def fold_into(self, sql: Any, params: Any, prefix: str) -> Any:
        """``sql`` with ``prefix`` sent in the same round trip, or None when the driver cannot (one statement)."""
        return None

    def pipelines(self, raw: Any) -> bool:
        """The driver can send governance's ``prefix`` and the statement in one round trip (:meth:`run_after`)."""
        return False

    def run_after(self, raw: Any, prefix: str, invoke: Any, sql: Any) -> Any:
        """Send ``prefix`` then ``invoke(sql)`` in one round trip (psycopg 3 pipeline mode); the call's outcome."""
        self.guard_execute(raw, prefix)
        return invoke(sql)

    async def run_after_async(self, raw: Any, prefix: str, invoke: Any, sql: Any) -> Any:
        """:meth:`run_after` for async drivers (``await invoke(sql)``); two round trips unless overridden."""
        await self.guard_execute_async(raw, prefix)
        return await invoke(sql)

    #: entry points whose statement can take the bracket's opening in its own text (:meth:`fold_into`)
    fold_entries: frozenset[str] = frozenset({"cursor.execute"})
    #: entry points that judge a statement without running it (asyncpg ``prepare``): no guard steps
    unrun_entries: frozenset[str] = frozenset()

    def fused_probe(self, probe: str, violation: str, keep: str) -> str | None:
        """One text that raises when a row of ``probe`` (``t``, ``c``) meets ``violation`` and otherwise keeps
        the write (None: the driver runs probe and keep as two round trips)."""
        return None

    def probe_violation(self, exc: BaseException) -> tuple[str, int] | None:
        """``(table, rows left)`` a fused probe reported through ``exc``, or None when ``exc`` is another error."""
        return None

    def undo_sql(self) -> tuple[str, ...]:
        """What rolls back to the savepoint and drops it (the application's transaction goes on)."""
        return (self.rollback_to_sql, self.release_sql)

    def quote_table(self, name: str) -> str:
        """A table name from the analysis (``schema.table``) as SQL."""
        return ".".join(quote_ident(part) for part in name.split("."))

    def quote_literal(self, value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    def engine_sql(self, gov: Any, tables: tuple[str, ...]) -> str | None:
        """SQL whose rows say which of ``tables`` a rollback cannot undo (None: every table can be)."""
        return None

    def replace_keys_sql(self, gov: Any, tables: tuple[str, ...]) -> str | None:
        """SQL whose rows (table, unique keys) show where a REPLACE can delete rows the rowcount does not count
        (None: the driver's rowcount counts them, as MySQL's does)."""
        return None

    def non_transactional(self, gov: Any, rows: list[Any]) -> tuple[str, ...]:
        """From :meth:`engine_sql`'s rows: the tables whose writes a rollback cannot undo (MyISAM, MEMORY)."""
        return ()

    def session_sql(self, gov: Any, raw: Any, current: Any, want: Any) -> tuple[str, ...]:
        """Statements that take the session from ``current`` (a ``SessionState``, None: unknown) to ``want``.

        Database roles and identity claims are PostgreSQL's: other drivers refuse an identity that needs them.
        """
        if want.role is not None or want.claims is not None:
            from governed_db.errors import GuardrailViolation

            raise gov.refusal(GuardrailViolation(
                f"refused by governed_db: the policy maps this identity to a database role or passes its claims "
                f"to the session, which governed_db does on PostgreSQL only, not on {self.name}. Next step: "
                "remove database_role/session_claims from the policy's writes: entry for this database"
            ))  # fmt: skip
        if current is not None and current.read_only == want.read_only:
            return ()
        return self.session_read_only_sql(gov, raw, want.read_only)

    def session_read_only_sql(self, gov: Any, raw: Any, read_only: bool) -> tuple[str, ...]:
        """Statements that make the session (and the open transaction) read-only, or read-write again.

        The default (no switch) fails closed: a driver that cannot make its session read-only declares it.
        """
        return ()

    #: the database itself keeps the session read-only while a read-only identity acts (session_read_only_sql);
    #: without it, a read-only identity's statements the analyser cannot prove read-only are refused
    read_only_session = False
    #: a rollback undoes the session switch (PostgreSQL's SET is transactional; MySQL's and SQLite's are not)
    switch_is_transactional = False

    def in_transaction(self, gov: Any, raw: Any) -> bool:
        """A transaction is open on ``raw`` (one a rollback would end), as far as the driver knows without I/O."""
        try:
            return self.transaction_state(gov, raw) == "open"
        except Exception:  # cannot tell: assume one is, so that a pending switch stays watched
            return True

    def after_session_switch(self, gov: Any, raw: Any, read_only: bool) -> None:
        """Check the switch took hold (raise the refusal when the open transaction stays writable)."""

    def is_read_only_error(self, exc: BaseException) -> bool:
        """``exc`` is the database refusing a write in a read-only session."""
        return False

    def note_compiling(self, raw: Any, sql: Any, exc: BaseException) -> None:
        """Mark ``exc`` (raised running ``sql`` on ``raw``) when compiling ``sql`` alone raises it again: an
        error of the text, not of a row read in some order (SQLite, decision 0346). Nothing elsewhere."""

    def seal_error(self, exc: BaseException) -> None:
        """Make an error the driver raised safe to hand to the caller: no handle on it (a raw cursor) may run
        statements around governance, nor read the server's fields unscrubbed. In place: the caller's ``except``
        catches this very object."""

    #: a statement's rows live on the connection, not a cursor (DuckDB): governance's own SQL replaces them
    results_on_connection = False
    #: a write with RETURNING stays in progress until its rows are read (SQLite): the savepoint of a bounded
    #: write cannot be released, nor its row count read, around it
    returning_in_progress = False

    def restore_result_sql(self, changed: int) -> str | None:
        """After governance's SQL replaced a write's result on the connection: SQL that gives it back."""
        return None

    def forget_session(self, gov: Any) -> None:
        """The connection was reset or reconnected: the session state governance set must be set again."""
        gov.state.pop("guards.session", None)


_DOLLAR = re.compile(r"\$\d")


def quote_ident(name: object, quote: str = '"') -> str:
    """``name`` as a quoted SQL identifier (``quote`` doubled inside), for statements a driver call amounts to."""
    return quote + str(name).replace(quote, quote * 2) + quote


_REGISTRY = {
    "sqlite3": ("governed_db.drivers.sqlite", "SqliteDriver"),
    "psycopg": ("governed_db.drivers.psycopg", "PsycopgDriver"),
    "psycopg2": ("governed_db.drivers.psycopg2", "Psycopg2Driver"),
    "pymysql": ("governed_db.drivers.pymysql", "PyMySQLDriver"),
    "duckdb": ("governed_db.drivers.duckdb", "DuckDBDriver"),
    "_duckdb": ("governed_db.drivers.duckdb", "DuckDBDriver"),
    "asyncpg": ("governed_db.drivers.asyncpg", "AsyncpgDriver"),
    "aiosqlite": ("governed_db.drivers.aiosqlite", "AiosqliteDriver"),
    "aiomysql": ("governed_db.drivers.aiomysql", "AiomysqlDriver"),
}


def shadowing(name: Any, what: str, database: str = "SQLite") -> GuardrailViolation:
    """The refusal of a user function (or collation) registered under a name the database or masking knows: it
    would be called with values before masking."""
    return GuardrailViolation(
        f"refused by governed_db: {'an' if what[0] in 'aeiou' else 'a'} {what} named {name!r} would replace one {database} or governed_db's masking "
        "already knows, and would be called with values before masking. Next step: register it under a name of "
        "its own (a value it is given from a masked column is refused as a copy)."
    )


def innermost(conn: Any) -> Any:
    """The driver's own object under any stack of proxies (ours or other instrumentation's)."""
    seen = 0
    while True:
        try:
            inner = object.__getattribute__(conn, "__wrapped__")
        except AttributeError:
            try:
                inner = conn.__wrapped__
            except AttributeError:
                return conn
        conn = inner
        seen += 1
        if seen > 32:  # pragma: no cover - a proxy cycle
            raise ConfigurationError("the connection is wrapped in more than 32 proxies")


def driver_for_module(module: Any) -> Driver:
    """The :class:`Driver` for a DB-API module (for :func:`governed_db.govern_module`)."""
    entry = _REGISTRY.get(str(getattr(module, "__name__", "")).split(".")[0])
    if entry is None:
        return Driver(module)
    cls = getattr(importlib.import_module(entry[0]), entry[1])
    return cls()  # type: ignore[no-any-return]


#: connection base classes (module, class name) whose driver differs from their module's (one line each):
#: found in the connection's MRO, so that subclasses are recognised without importing the driver
_BY_BASE_CLASS: dict[tuple[str, str], tuple[str, str]] = {
    ("psycopg", "AsyncConnection"): ("governed_db.drivers.psycopg_async", "AsyncPsycopgDriver"),
}


def driver_for(conn: Any) -> Driver:
    raw = innermost(conn)
    top = type(raw).__module__.split(".")[0]
    entry = next(
        (_BY_BASE_CLASS[k] for k in ((c.__module__, c.__name__) for c in type(raw).__mro__) if k in _BY_BASE_CLASS),
        None,
    ) or _REGISTRY.get(top)
    if entry is None:
        module = importlib.import_module(top) if top not in ("builtins", "__main__") else None
        return Driver(module)
    mod = importlib.import_module(entry[0])
    cls = getattr(mod, entry[1])
    return cls.for_connection(raw)  # type: ignore[no-any-return]
