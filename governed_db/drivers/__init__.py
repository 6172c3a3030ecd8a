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
from governed_db.errors import ConfigurationError, InvalidStatement


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
    def connection_proxy(self) -> type:
        from governed_db.proxies import GovernedConnection

        return GovernedConnection

    @classmethod
    def for_connection(cls, raw: Any) -> Driver:
        """The driver for ``raw`` (a module with sync and async connections picks by the connection)."""
        return cls()

    def catalog_connection(self, gov: Any) -> Any:
        """The connection masking reads the catalog through (synchronously)."""
        return gov.raw

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
        return {"db.system.name": self.db_system}

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

    def module_attribute(self, facade: Any, name: str, value: Any) -> Any:
        """What ``govern_module(module).<name>`` hands out (drivers with module-level SQL override this)."""
        return value

    def description(self, raw_cursor: Any) -> Any:
        return raw_cursor.description

    def rowcount(self, raw_cursor: Any) -> int | None:
        count = getattr(raw_cursor, "rowcount", None)
        return count if isinstance(count, int) else None


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


def driver_for(conn: Any) -> Driver:
    raw = innermost(conn)
    top = type(raw).__module__.split(".")[0]
    entry = _REGISTRY.get(top)
    if entry is None:
        module = importlib.import_module(top) if top not in ("builtins", "__main__") else None
        return Driver(module)
    mod = importlib.import_module(entry[0])
    cls = getattr(mod, entry[1])
    return cls.for_connection(raw)  # type: ignore[no-any-return]
