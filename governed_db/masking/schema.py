"""Reading a database's catalog and a small sample, without disturbing the caller.

Every read uses a *new* cursor of the raw connection (never the one whose
result is being read) and only catalog queries and ``SELECT * ... LIMIT n``
samples. These statements bypass governance on purpose: they are
governed_db's own, read-only, and their rows never leave this module except
as labels.

PostgreSQL aborts a transaction on any error, so there a read inside the
caller's transaction runs under a savepoint, a read outside one is rolled
back afterwards, and nothing is read while the transaction has already
failed. When anything goes wrong the answer is ``None`` and the caller falls
back to names, types and values — and masks when unsure.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

log = logging.getLogger("governed_db.masking")
T = TypeVar("T")

Column = tuple[str, "str | None"]

_COLUMNS_SQL = {
    "sqlite": "SELECT name, type FROM pragma_table_info({p})",
    "postgres": (
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a "
        "WHERE a.attrelid = to_regclass({p}) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
    ),
    "mysql": (
        "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = COALESCE({p}, DATABASE()) AND TABLE_NAME = {p} ORDER BY ORDINAL_POSITION"
    ),
    "duckdb": (
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE lower(table_name) = lower({p}) AND lower(table_schema) = lower(COALESCE({p}, current_schema())) "
        "ORDER BY ordinal_position"
    ),
}

_TABLES_SQL = {
    "sqlite": "SELECT NULL, name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    "postgres": (
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
    ),
    "mysql": (
        "SELECT NULL, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_TYPE = 'BASE TABLE' ORDER BY 2"
    ),
    "duckdb": (
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "ORDER BY 1, 2"
    ),
}
_DEFAULT_SCHEMAS = frozenset({"public", "main"})


def family(dialect: str) -> str | None:
    d = dialect.lower()
    if d in ("postgres", "postgresql"):
        return "postgres"
    if d in ("mysql", "mariadb"):
        return "mysql"
    if d in ("sqlite", "duckdb"):
        return d
    return None


def _placeholder(fam: str) -> str:
    return "%s" if fam in ("postgres", "mysql") else "?"


def _values(row: Any) -> Sequence[Any]:
    if isinstance(row, Mapping):
        return list(row.values())
    return row  # type: ignore[no-any-return]


def _pg_status(conn: Any) -> tuple[int | None, bool]:
    """(transaction status, autocommit) for psycopg 3 / psycopg2; (None, True) when unknown."""
    autocommit = bool(getattr(conn, "autocommit", True))
    info = getattr(conn, "info", None)
    status = getattr(info, "transaction_status", None)
    if status is None:
        getter = getattr(conn, "get_transaction_status", None)
        status = getter() if callable(getter) else None
    return (int(status) if status is not None else None), autocommit


def _busy(conn: Any) -> bool:
    """True when a query of the caller's is still streaming (our read would drain or break it)."""
    pending = getattr(conn, "_result", None)  # pymysql: an unbuffered (SSCursor) result not yet read
    if pending is not None and getattr(pending, "unbuffered_active", False):
        return True
    info = getattr(conn, "info", None)  # psycopg 3: ACTIVE = a command (COPY, pipeline) in progress
    return getattr(info, "transaction_status", None) == 1


def guarded(conn: Any, dialect: str, work: Callable[[Any], T]) -> T | None:
    """Run ``work(cursor)`` on a fresh cursor; ``None`` (logged) instead of any error."""
    with _text_as_str(conn):
        return _guarded(conn, dialect, work)


@contextlib.contextmanager
def _text_as_str(conn: Any) -> Iterator[None]:
    """sqlite3 decodes text through the connection's ``text_factory`` (the caller's to set: ``bytes`` is
    allowed): catalog reads and samples decode as ``str`` whatever it is, so that names match and values are
    classified as text, not blanked as unreadable bytes."""
    factory = getattr(conn, "text_factory", str)
    if factory is str or not isinstance(conn, sqlite3.Connection):
        yield
        return
    conn.text_factory = str
    try:
        yield
    finally:
        conn.text_factory = factory


def _guarded(conn: Any, dialect: str, work: Callable[[Any], T]) -> T | None:
    fam = family(dialect)
    savepoint = rollback_after = False
    if _busy(conn):
        return None
    if fam == "postgres":
        status, autocommit = _pg_status(conn)
        if status == 3:  # INERROR: the caller's transaction has failed; reading would fail too
            return None
        if not autocommit:
            savepoint = status == 2  # INTRANS
            rollback_after = status == 0  # IDLE: our read must not leave a transaction open
    try:
        cur = conn.cursor()
    except Exception as e:
        log.debug("governed_db masking: no cursor for catalog reads: %r", e)
        return None
    try:
        if savepoint:
            cur.execute("SAVEPOINT governed_db_catalog")
        try:
            out = work(cur)
        except Exception as e:
            log.debug("governed_db masking: catalog read failed: %r", e)
            if savepoint:
                cur.execute("ROLLBACK TO SAVEPOINT governed_db_catalog")
                cur.execute("RELEASE SAVEPOINT governed_db_catalog")
            elif rollback_after:
                conn.rollback()
            return None
        if savepoint:
            cur.execute("RELEASE SAVEPOINT governed_db_catalog")
        elif rollback_after:
            conn.rollback()
        return out
    except Exception as e:
        log.debug("governed_db masking: catalog read cleanup failed: %r", e)
        return None
    finally:
        with contextlib.suppress(Exception):
            cur.close()


def read_columns(
    conn: Any, dialect: str, table_sql: str, schema: str | None, name: str
) -> list[Column] | None:
    """Columns (name, declared type) of one table; ``None`` when unknown or unreadable."""
    fam = family(dialect)
    if fam is None:
        return None
    p = _placeholder(fam)
    sql = _COLUMNS_SQL[fam].format(p=p)
    params: tuple[Any, ...]
    if fam == "sqlite":
        params = (name,)
    elif fam == "postgres":
        params = (table_sql,)
    elif fam == "duckdb":
        params = (name, schema)
    else:
        params = (schema, name)

    def work(cur: Any) -> list[Column]:
        cur.execute(sql, params)
        return [
            (str(_values(r)[0]), None if _values(r)[1] is None else str(_values(r)[1]))
            for r in cur.fetchall()
        ]

    cols = guarded(conn, dialect, work)
    return cols or None


def sample(
    conn: Any, dialect: str, table_sql: str, limit: int
) -> tuple[list[str], list[Sequence[Any]]] | None:
    """Column names and up to ``limit`` rows of a table."""
    sql = f"SELECT * FROM {table_sql} LIMIT {int(limit)}"

    def work(cur: Any) -> tuple[list[str], list[Sequence[Any]]]:
        cur.execute(sql)
        names = [str(d[0]) for d in (cur.description or ())]
        return names, [_values(r) for r in cur.fetchall()]

    return guarded(conn, dialect, work)


def list_tables(conn: Any, dialect: str) -> list[str] | None:
    """Base tables of the database (outside the default schema as ``schema.table``); ``None`` when unreadable."""
    fam = family(dialect)
    if fam is None:
        return None

    def work(cur: Any) -> list[str]:
        cur.execute(_TABLES_SQL[fam])
        out = []
        for r in cur.fetchall():
            schema, name = _values(r)[0], _values(r)[1]
            out.append(str(name) if not schema or str(schema) in _DEFAULT_SCHEMAS else f"{schema}.{name}")
        return out

    return guarded(conn, dialect, work)
