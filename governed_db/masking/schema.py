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
import dataclasses
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlglot
import sqlglot.errors
from sqlglot import exp

from governed_db.masking.catalog import table_key
from governed_db.masking.messages import loggable
from governed_db.sql._sqlite_reading import parse_one

log = logging.getLogger("governed_db.masking")
T = TypeVar("T")

Column = tuple[str, "str | None"]
#: given a catalog cursor and a text of code, the relations the application's functions it names read, transitively
#: (``None``: unknown); ``app_functions.pg_reach``
Reach = Callable[[Any, str], "tuple[str, ...] | None"]

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
        "AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY 2"
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
    with sqlite_defaults(conn):
        return _guarded(conn, dialect, work)


#: how deep this thread is in governed_db's own reads of a sqlite3 connection (a trace callback skips them)
_own_reads = threading.local()


def reading_own() -> bool:
    """Is this thread inside governed_db's own catalog read or sample of a sqlite3 connection?"""
    return bool(getattr(_own_reads, "depth", 0))


@contextlib.contextmanager
def own_statement() -> Iterator[None]:
    """A statement of governed_db's own on a sqlite3 connection that reads no row (compiling the caller's statement
    again, decision 0346): a trace callback set through the governed connection skips it; the caller's limits,
    which bound compiling too, stay as set."""
    _own_reads.depth = getattr(_own_reads, "depth", 0) + 1
    try:
        yield
    finally:
        _own_reads.depth -= 1


#: sqlite3's run-time limits (``SQLITE_LIMIT_*``): each one the caller may lower with ``setlimit``
_SQLITE_LIMITS = tuple(getattr(sqlite3, n) for n in dir(sqlite3) if n.startswith("SQLITE_LIMIT_"))
#: above every hard upper bound: SQLite truncates a raised limit to its bound
_UNLIMITED = 2**31 - 1


@contextlib.contextmanager
def sqlite_defaults(conn: Any) -> Iterator[None]:
    """A sqlite3 connection as governed_db's own catalog reads and samples need it, whatever the caller set.

    Text is decoded through the connection's ``text_factory`` (the caller's to set: ``bytes`` is allowed): the
    reads decode as ``str``, so that names match and values are classified as text, not blanked as unreadable
    bytes. And the run-time limits are the caller's to lower (``setlimit``): a statement depth, column count,
    statement length or parameter count below what the reads need made them fail, the table went unclassified,
    and its values left as the scan of outgoing rows judged them (an invalid SSN in clear): the reads run with
    every limit at its hard bound, and the caller's limits are put back after them (decision 0325)."""
    if not isinstance(conn, sqlite3.Connection):
        yield
        return
    factory = conn.text_factory
    setlimit: Any = getattr(conn, "setlimit", None)  # Python 3.11+
    limits: list[tuple[int, int]] = []
    _own_reads.depth = getattr(_own_reads, "depth", 0) + 1
    try:
        if factory is not str:
            conn.text_factory = str
        for category in _SQLITE_LIMITS if setlimit is not None else ():
            limits.append((category, setlimit(category, _UNLIMITED)))
        yield
    finally:
        for category, limit in limits:
            setlimit(category, limit)
        if factory is not str:
            conn.text_factory = factory
        _own_reads.depth -= 1


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
        _tuple_rows(cur)
    except Exception as e:
        log.debug("governed_db masking: no cursor for catalog reads: %s", loggable(e))
        return None
    # psycopg 3 prepares a text run five times on a connection: the savepoints of many reads in one transaction
    # showed in the caller's pg_prepared_statements (decisions 0385, 0392): _run never prepares them
    try:
        if savepoint:
            _run(cur, "SAVEPOINT governed_db_catalog")
        try:
            out = work(cur)
        except Exception as e:
            log.debug("governed_db masking: catalog read failed: %s", loggable(e))
            if savepoint:
                _run(cur, "ROLLBACK TO SAVEPOINT governed_db_catalog")
                _run(cur, "RELEASE SAVEPOINT governed_db_catalog")
            elif rollback_after:
                conn.rollback()
            return None
        if savepoint:
            _run(cur, "RELEASE SAVEPOINT governed_db_catalog")
        elif rollback_after:
            conn.rollback()
        return out
    except Exception as e:
        log.debug("governed_db masking: catalog read cleanup failed: %s", loggable(e))
        return None
    finally:
        with contextlib.suppress(Exception):
            cur.close()


def _tuple_rows(cur: Any) -> None:
    """A psycopg 3 cursor inherits the connection's ``row_factory`` (the caller's: ``scalar_row``, a class):
    catalog reads and samples read plain tuples whatever it is; so does a sqlite3 cursor (decision 0324)."""
    module = type(cur).__module__.split(".")[0]
    if module == "psycopg" and hasattr(cur, "row_factory"):
        from psycopg.rows import tuple_row

        cur.row_factory = tuple_row
    elif module == "sqlite3" and getattr(cur, "row_factory", None) not in (None, sqlite3.Row):
        cur.row_factory = None


def builtin_function(conn: Any, dialect: str, name: str) -> bool | None:
    """Whether DuckDB defines a function (scalar, aggregate, table or macro) called ``name`` itself; ``None`` when
    that cannot be read."""
    if family(dialect) != "duckdb":
        return None

    def work(cur: Any) -> bool:
        found = _rows(
            cur, "SELECT count(*) FROM duckdb_functions() WHERE lower(function_name) = ? AND internal", (name.lower(),)
        )
        return bool(found and found[0][0])

    return guarded(conn, dialect, work)


def same_named_relations(conn: Any, dialect: str, name: str) -> list[bool] | None:
    """Whether each table or view called ``name`` (any case) is temporary (SQLite, DuckDB; on PostgreSQL and
    MySQL/MariaDB, any schema's, MySQL's temporary tables unlisted); ``None`` when that cannot be read."""
    fam = family(dialect)
    if fam == "sqlite":
        sql = (
            "SELECT 0 FROM sqlite_master WHERE type IN ('table', 'view') AND lower(name) = ? "
            "UNION ALL SELECT 1 FROM sqlite_temp_master WHERE type IN ('table', 'view') AND lower(name) = ?"
        )
    elif fam == "duckdb":
        sql = (
            "SELECT temporary FROM duckdb_tables() WHERE lower(table_name) = ? "
            "UNION ALL SELECT temporary FROM duckdb_views() WHERE NOT internal AND lower(view_name) = ?"
        )
    elif fam == "postgres":
        # tables, views, materialized views, partitioned and foreign tables of any schema (a name elsewhere only
        # refuses more)
        sql = (
            "SELECT c.relpersistence = 't' FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') "
            "AND lower(c.relname) = %s"
        )
    elif fam == "mysql":
        sql = (
            "SELECT 0 FROM information_schema.TABLES WHERE lower(TABLE_NAME) = %s "
            "AND TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema', 'mysql', 'sys')"
        )
    else:
        return None

    def work(cur: Any) -> list[bool]:
        params = (name.lower(),) * sql.count("%s" if fam in ("postgres", "mysql") else "?")
        return [bool(_values(r)[0]) for r in _rows(cur, sql, params)]

    return guarded(conn, dialect, work)


def read_columns(
    conn: Any, dialect: str, table_sql: str, schema: str | None, name: str
) -> list[Column] | None:
    """Columns (name, declared type) of one table; ``[]`` when the catalog lists none (no such table), ``None``
    when the read failed."""
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
        columns = [
            (str(_values(r)[0]), None if _values(r)[1] is None else str(_values(r)[1]))
            for r in cur.fetchall()
        ]
        if fam == "mysql" and any(t == "longtext" for _, t in columns):
            valid = _json_checked(cur, schema, name)
            columns = [(c, "json" if t == "longtext" and c.lower() in valid else t) for c, t in columns]
        return columns

    return guarded(conn, dialect, work)


def _json_checked(cur: Any, schema: str | None, name: str) -> frozenset[str]:
    """MariaDB's ``JSON`` columns: ``LONGTEXT`` with a column constraint ``CHECK (json_valid(col))`` that the server
    adds itself, so every stored value is valid JSON, as in MySQL 8's native ``JSON`` (the catalog calls both
    ``json``; decision 0318). Nothing on MySQL 8, whose ``CHECK_CONSTRAINTS`` has no table name (the read fails)."""
    try:
        cur.execute(
            "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s AND LEVEL = 'Column'",
            (schema, name),
        )
        rows = cur.fetchall()
    except Exception:  # not MariaDB: no such columns; the declared types stand
        return frozenset()
    return frozenset(
        str(_values(r)[0]).lower() for r in rows if str(_values(r)[1]) == f"json_valid(`{_values(r)[0]}`)"
    )


def bare_table(node: exp.Table) -> exp.Table:
    """The relation ``node`` names, as catalog reads and samples name it: its catalog, schema and name (or table
    function) only. A FROM item carries more that sqlglot prints with it: an alias, MariaDB's ``FOR SYSTEM_TIME
    ALL`` (printed ``FOR TIMESTAMP ALL``, which MariaDB rejects: the sample failed and the columns went
    unclassified, in clear; decision 0263), ``PARTITION (p)``, ``TABLESAMPLE``, index hints, joins. A sample of
    any of those is not a sample of the table whose labels every later statement uses."""
    bare = node.copy()
    for arg in list(bare.args):
        if arg not in ("this", "db", "catalog"):
            bare.set(arg, None)
    return bare


def _all_versions(cur: Any, dialect: str, table_sql: str) -> str:
    """``table_sql`` as a sample reads it. A MariaDB system-versioned table keeps every row an UPDATE or DELETE
    replaced, and ``FOR SYSTEM_TIME ALL`` (``AS OF``, ``BETWEEN``...) reads them: its columns are classified from
    all of its rows, else an agent deletes the rows that show what a column holds (one at a time, each a bounded
    write), inserts innocent ones, and reads the deleted values in clear from history (decision 0263)."""
    if family(dialect) != "mysql":
        return table_sql
    try:
        table = exp.to_table(table_sql, dialect="mysql")
    except sqlglot.errors.SqlglotError:
        return table_sql
    kind = _rows(
        cur,
        "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) "
        "AND TABLE_NAME = %s",
        (table.db or None, table.name),
    )
    versioned = bool(kind) and str(kind[0][0]).upper() == "SYSTEM VERSIONED"
    return f"{table_sql} FOR SYSTEM_TIME ALL" if versioned else table_sql


def reads_uncommitted(conn: Any, dialect: str) -> bool:
    """MySQL/MariaDB: does the session read other sessions' uncommitted rows (READ UNCOMMITTED, from the server's
    default or the connection's own options)? ``False`` elsewhere, and when it cannot be read (decision 0275)."""
    if family(dialect) != "mysql":
        return False

    def work(cur: Any) -> bool:
        for variable in ("@@session.tx_isolation", "@@session.transaction_isolation"):  # MariaDB, MySQL 8
            try:
                level = _rows(cur, f"SELECT {variable}")
            except Exception:
                continue
            return bool(level) and str(level[0][0]).upper().replace(" ", "-") == "READ-UNCOMMITTED"
        return False

    return bool(guarded(conn, dialect, work))


#: rows drawn at random past a table's first ``n`` in scan order (decision 0288), from the next ``window`` rows; the
#: scan order is the same as the plain sample's, so no row is read twice
_RANDOM_REST = {
    "sqlite": "SELECT * FROM (SELECT * FROM {table} LIMIT {window} OFFSET {n}) ORDER BY random() LIMIT {n}",
    "duckdb": "SELECT * FROM (SELECT * FROM {table} LIMIT {window} OFFSET {n}) ORDER BY random() LIMIT {n}",
}
#: the draw reads at most this many times ``n`` rows past the first ones: a bounded read at first sight, whatever
#: the table's size (a draw over a million SQLite rows costs 0.3-0.5 s)
DRAW_WINDOW = 100


def sample(
    conn: Any, dialect: str, table_sql: str, limit: int
) -> tuple[list[str], list[Sequence[Any]]] | None:
    """Column names and up to ``limit`` rows of a table (of a MariaDB system-versioned table, its past rows too).

    On SQLite and DuckDB a table with more rows than ``limit`` adds up to ``limit`` rows drawn at random from the
    next ``DRAW_WINDOW * limit``: the first rows in scan order are whichever a writer placed first (a negative
    rowid, a key updated to move rows behind), so an agent allowed to write could otherwise choose every row the
    labels are read from (decision 0288)."""

    def work(cur: Any) -> tuple[list[str], list[Sequence[Any]]]:
        source = _all_versions(cur, dialect, table_sql)
        cur.execute(f"SELECT * FROM {source} LIMIT {int(limit)}")
        names = [str(d[0]) for d in (cur.description or ())]
        rows = [_values(r) for r in cur.fetchall()]
        rest = _RANDOM_REST.get(family(dialect) or "")
        if rest is not None and len(rows) >= limit > 0:
            cur.execute(rest.format(table=source, n=int(limit), window=int(limit) * DRAW_WINDOW))
            rows += [_values(r) for r in cur.fetchall()]
        return names, rows

    return guarded(conn, dialect, work)


#: pages of a PostgreSQL table its spread sample reads (``TABLESAMPLE SYSTEM``: whole pages, chosen at random)
SPREAD_PAGES = 32
#: rows of a DuckDB table its spread sample draws from (vectors chosen at random) before a reservoir of ``limit``
SPREAD_ROWS = 200_000


def _spread_sql(fam: str, table: str, limit: int) -> tuple[str, tuple[Any, ...]] | None:
    if fam == "postgres":
        # the percentage of the table's pages that makes about SPREAD_PAGES of them (all of a small table)
        share = (
            "(SELECT least(100, 100.0 * %s / greatest(1, pg_relation_size(%s::regclass) "
            "/ current_setting('block_size')::int)))"
        )
        # the inner LIMIT bounds what is shuffled where the pages cannot be counted (a partitioned table's parent
        # has none of its own: all of it would be read)
        return (
            f"SELECT * FROM (SELECT * FROM {table} TABLESAMPLE SYSTEM ({share}) LIMIT {SPREAD_PAGES * 500}) "
            f"governed_db_s ORDER BY random() LIMIT {int(limit)}",
            (SPREAD_PAGES, table),
        )
    if fam == "duckdb":
        return f"SELECT * FROM {table} USING SAMPLE {int(limit)} ROWS", ()
    if fam == "sqlite":
        # ``limit`` points drawn at random in the rowid range, each the first row at or after it: index seeks. The
        # bounds are read one per query (SQLite reads min() or max() alone from the index; both at once scan)
        return (
            "WITH RECURSIVE governed_db_r(i, at) AS (SELECT 0, NULL UNION ALL SELECT i + 1, abs(random()) "
            f"FROM governed_db_r WHERE i < {int(limit)}), governed_db_b(lo, span) AS (SELECT (SELECT min(rowid) "
            f"FROM {table}), (SELECT max(rowid) FROM {table}) - (SELECT min(rowid) FROM {table}) + 1) "
            f"SELECT * FROM {table} WHERE rowid IN (SELECT (SELECT rowid FROM {table} WHERE rowid >= lo + at % span "
            "ORDER BY rowid LIMIT 1) FROM governed_db_r, governed_db_b WHERE at IS NOT NULL)",
            (),
        )
    return None


def sample_spread(conn: Any, dialect: str, table_sql: str, limit: int) -> list[Sequence[Any]] | None:
    """Up to ``limit`` rows chosen at random across the whole table, by the database's own cheap sampling: whole
    pages on PostgreSQL (``TABLESAMPLE SYSTEM``, about ``SPREAD_PAGES`` of them), a reservoir on DuckDB
    (``USING SAMPLE``), random rowids on SQLite (index seeks). ``None`` where there is none (MySQL/MariaDB, a
    view, a table without rowid) or it failed. Rows come in ``SELECT *`` order, as the plain sample's do."""
    fam = family(dialect)
    if fam is None or limit <= 0:
        return None
    if fam == "duckdb":
        # a large table: a reservoir over vectors chosen at random, not over every row (a scan of all of it)
        def work(cur: Any) -> list[Sequence[Any]] | None:
            name = exp.to_table(table_sql, dialect="duckdb").name
            if _rows(cur, "SELECT count(*) FROM duckdb_views() WHERE lower(view_name) = ?", (name.lower(),))[0][0]:
                return None  # a view's sample computes all of it (its query over every row): none
            total = _rows(cur, f"SELECT count(*) FROM {table_sql}")
            size = int(total[0][0]) if total and total[0][0] is not None else 0
            inner = table_sql
            if size > SPREAD_ROWS:
                share = max(0.001, round(100.0 * SPREAD_ROWS / size, 3))
                inner = f"(SELECT * FROM {table_sql} USING SAMPLE {share}% (system)) governed_db_s"
            cur.execute(f"SELECT * FROM {inner} USING SAMPLE {int(limit)} ROWS")
            return [_values(r) for r in cur.fetchall()]

        return guarded(conn, dialect, work)
    spread = _spread_sql(fam, table_sql, limit)
    if spread is None:
        return None
    sql, params = spread

    def read(cur: Any) -> list[Sequence[Any]]:
        return _rows(cur, sql, params)

    return guarded(conn, dialect, read)


def sample_rare(
    conn: Any, dialect: str, table_sql: str, seen: Mapping[str, Sequence[str]], limit: int, window: int
) -> list[Sequence[Any]] | None:
    """Up to ``limit`` whole rows (``SELECT *`` order) among the first ``window`` where a column of ``seen``
    (quoted name: the values the sample found in it) holds a value other than those: the values a sample full
    of a few repeated ones (``'n/a'``, placed by whoever can insert rows before the others) did not show."""
    fam = family(dialect)
    if not seen:
        return []
    if fam is None:
        return None
    p = _placeholder(fam)
    where = " OR ".join(
        f"({c} IS NOT NULL AND {c} NOT IN ({', '.join(p for _ in values)}))" if values else f"{c} IS NOT NULL"
        for c, values in seen.items()
    )
    params = tuple(v for values in seen.values() for v in values)

    def work(cur: Any) -> list[Sequence[Any]]:
        table = _all_versions(cur, dialect, table_sql)
        return _rows(
            cur,
            f"SELECT * FROM (SELECT * FROM {table} LIMIT {int(window)}) governed_db_w WHERE {where} LIMIT {int(limit)}",
            params,
        )

    return guarded(conn, dialect, work)


def sample_columns(
    conn: Any, dialect: str, table_sql: str, columns_sql: Sequence[str], limit: int, window: int | None = None
) -> list[Sequence[Any]] | None:
    """Up to ``limit`` rows of ``columns_sql`` (quoted column names) where at least one of them is not NULL:
    the values of columns a plain sample found (nearly) empty, further in the table. ``window`` bounds the
    rows read (a column NULL everywhere in a large table must not cost a scan of all of it)."""
    if not columns_sql:
        return []
    where = " OR ".join(f"{c} IS NOT NULL" for c in columns_sql)
    cols = ", ".join(columns_sql)

    def work(cur: Any) -> list[Sequence[Any]]:
        table = _all_versions(cur, dialect, table_sql)
        source = table if window is None else f"(SELECT {cols} FROM {table} LIMIT {int(window)}) governed_db_w"
        cur.execute(f"SELECT {cols} FROM {source} WHERE {where} LIMIT {int(limit)}")
        return [_values(r) for r in cur.fetchall()]

    return guarded(conn, dialect, work)


def values_outside(
    conn: Any, dialect: str, table_sql: str, column_sql: str, known_sql: Sequence[str], limit: int
) -> list[Any] | None:
    """Up to ``limit`` distinct non-NULL values of ``column_sql`` other than the literals ``known_sql``: what a
    few-valued column holds past every bounded read (decision 0329). It reads the column whole when fewer differ,
    as a filter on it without an index does (``None``: unreadable)."""
    where = f"{column_sql} IS NOT NULL"
    if known_sql:
        where += f" AND {column_sql} NOT IN ({', '.join(known_sql)})"

    def work(cur: Any) -> list[Any]:
        table = _all_versions(cur, dialect, table_sql)
        cur.execute(f"SELECT DISTINCT {column_sql} FROM {table} WHERE {where} LIMIT {int(limit)}")
        return [_values(r)[0] for r in cur.fetchall()]

    return guarded(conn, dialect, work)


def rows_past(conn: Any, dialect: str, table_sql: str, count: int) -> bool | None:
    """Has ``table_sql`` more than ``count`` rows? Reads at most ``count + 1`` of them (``None``: unreadable)."""
    def work(cur: Any) -> bool:
        cur.execute(f"SELECT 1 FROM {_all_versions(cur, dialect, table_sql)} LIMIT 1 OFFSET {int(count)}")
        return bool(cur.fetchall())

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


# -- full-text indexes: tables that hold a copy of another table's text ------------------------------------
_FTS_MODULE = re.compile(r"\bUSING\s+(fts[345]|fts5vocab)\s*\((.*)\)\s*;?\s*$", re.I | re.S)
#: the shadow tables SQLite keeps for a full-text table ``t``: ``t_content`` copies its columns as ``c0``, ``c1``
#: (FTS4: ``c0name``); the others hold its tokens (``t_data``, ``t_segdir``...) or per-row token counts
FTS_CONTENT = "content"
FTS_INDEX = "index"
#: what :func:`fts_source` says of a full-text table itself: its module
FTS_MODULES = frozenset({"fts3", "fts4", "fts5"})
_FTS_SHADOWS = {
    "_content": FTS_CONTENT,
    "_data": FTS_INDEX,
    "_idx": FTS_INDEX,
    "_docsize": FTS_INDEX,
    "_config": FTS_INDEX,
    "_segments": FTS_INDEX,
    "_segdir": FTS_INDEX,
    "_stat": FTS_INDEX,
}


#: the one column of a rowid table's primary key when it is declared exactly INTEGER and has no index of its own:
#: the rowid under a name (SQLite's "INTEGER PRIMARY KEY"; ``INTEGER PRIMARY KEY DESC`` is an index, no alias)
_SQLITE_ROWID_ALIAS = (
    "SELECT ti.name FROM pragma_table_info(?, ?) ti WHERE ti.pk = 1 AND upper(ti.type) = 'INTEGER' "
    "AND (SELECT count(*) FROM pragma_table_info(?, ?) WHERE pk > 0) = 1 "
    "AND NOT EXISTS (SELECT 1 FROM pragma_index_list(?, ?) WHERE origin = 'pk')"
)  # (a WITHOUT ROWID table's primary key is an index: listed with origin 'pk')


def _sqlite_rowid_alias(cur: Any, name: str, schema: str | None = None) -> str | None:
    cur.execute(_SQLITE_ROWID_ALIAS, (name, schema) * 3)
    row = cur.fetchone()
    return None if row is None else str(_values(row)[0]).lower()


def rowid_alias(conn: Any, dialect: str, name: str, schema: str | None = None) -> str | None:
    """The column of SQLite table ``name`` that is its rowid under another name (decision 0388): ``rowid``, ``oid``
    and ``_rowid_`` read it, the table's rows are stored in its order, and an INSERT that leaves it out gives it the
    largest stored value plus one. ``None`` for other databases, a table without one, or a failed read."""
    if family(dialect) != "sqlite":
        return None
    return guarded(conn, dialect, lambda cur: _sqlite_rowid_alias(cur, name, schema))


def references(conn: Any, dialect: str, name: str, schema: str | None = None) -> list[tuple[str, str, str | None]]:
    """``(column, parent table, parent column)`` for each column of SQLite table ``name`` a foreign key declares
    (``None``: the parent's primary key): the column holds the parent's values (decision 0388). ``[]`` for other
    databases or a failed read."""
    if family(dialect) != "sqlite":
        return []

    def work(cur: Any) -> list[tuple[str, str, str | None]]:
        cur.execute('SELECT "from", "table", "to" FROM pragma_foreign_key_list(?, ?)', (name, schema))
        return [(str(r[0]).lower(), str(r[1]), None if r[2] is None else str(r[2]).lower())
                for r in map(_values, cur.fetchall())]  # fmt: skip

    return guarded(conn, dialect, work) or []


def sequence_tables(conn: Any, dialect: str, name: str) -> list[str]:
    """The tables SQLite's ``sqlite_sequence`` (when ``name`` is it) counts: its ``seq`` is the largest rowid each
    has held, the value of its INTEGER PRIMARY KEY (decision 0388). ``[]`` otherwise."""
    if family(dialect) != "sqlite" or name.lower() != "sqlite_sequence":
        return []

    def work(cur: Any) -> list[str]:
        cur.execute("SELECT DISTINCT name FROM sqlite_sequence")
        return [str(_values(r)[0]) for r in cur.fetchall() if _values(r)[0] is not None]

    return guarded(conn, dialect, work) or []


def fts_source(conn: Any, dialect: str, name: str) -> tuple[str, str] | None:
    """``(full-text table, what)`` when SQLite table ``name`` is a full-text index's shadow table or an
    ``fts5vocab`` table over one (its terms are the tokens of the indexed text); ``(name, module)`` (one of
    :data:`FTS_MODULES`) when it is the one full-text table of that name in ``main`` and ``temp``; ``None``
    otherwise."""
    if family(dialect) != "sqlite":
        return None

    def work(cur: Any) -> tuple[str, str] | None:
        cur.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' "
            "UNION ALL SELECT name, sql FROM sqlite_temp_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'"
        )
        low = name.lower()
        rows = [_values(r)[:2] for r in cur.fetchall()]
        own = [_FTS_MODULE.search(str(sql or "")) for vname, sql in rows if str(vname).lower() == low]
        if len(own) == 1 and own[0] is not None and own[0].group(1).lower() in FTS_MODULES:
            return name, own[0].group(1).lower()
        for vname, sql in rows:
            found = _FTS_MODULE.search(str(sql or ""))
            if found is None:
                continue
            module, args = found.group(1).lower(), [a.strip().strip("'\"`[]") for a in found.group(2).split(",")]
            if module == "fts5vocab":
                if str(vname).lower() == low and len(args) >= 2:
                    return (args[1] if len(args) >= 3 else args[0]), FTS_INDEX
                continue
            for suffix, what in _FTS_SHADOWS.items():
                if low == f"{str(vname).lower()}{suffix}":
                    return str(vname), what
        return None

    return guarded(conn, dialect, work)


# -- constraints: what the database compares a written value with ------------------------------------------
@dataclass(frozen=True, slots=True)
class Constraint:
    """A check the database makes when a table is written, which may read stored values.

    ``kind`` is ``unique`` (a primary key, UNIQUE constraint, unique index, PostgreSQL exclusion constraint:
    a written value against every other row's), ``foreign key`` (this table's ``columns`` against the parent
    ``other``'s ``other_columns``), ``referenced`` (this table's ``columns`` are what child rows of ``other``
    point at: deleting or changing one fails or cascades), ``check`` (a CHECK over the row's ``columns``) or
    ``index`` (a PostgreSQL index of any kind: an entry larger than the index takes fails, and an entry holds
    the row's values of all its ``columns``; ``updated`` are those of them whose values can grow, the
    variable-length ones), ``default`` (no check: the ``columns`` whose DEFAULT is a value rather than NULL, so
    a write giving them their default gives them a value; read on MySQL/MariaDB, where an UPDATE counts the rows
    it changed, and on PostgreSQL, SQLite and DuckDB, where a unique key compares it) or ``partition`` (no
    check: the ``columns`` a MySQL partitioning expression reads, which decide the rows a ``PARTITION (p0)``
    selection reads).
    ``computed default`` (a DEFAULT expression over the row's ``columns``, of the column in ``updated``: a write
    giving that column its default computes it from them).
    ``columns`` include the columns a generated column in it is computed from, and every column an expression
    or the WHERE of a partial index names.
    """

    kind: str
    name: str
    columns: frozenset[str]
    other: str | None = None
    other_columns: frozenset[str] = frozenset()
    #: the columns whose UPDATE makes the database check it, when more than ``columns`` (DuckDB rewrites an
    #: UPDATE of any indexed column as a delete and an insert, so a referenced row then fails to update)
    updated: frozenset[str] | None = None
    #: a ``unique`` one that is the table's primary key (what ``REFERENCES parent`` without columns names)
    primary: bool = False
    #: a ``trigger``'s events (``insert``, ``update``, ``delete``); ``updated`` its ``UPDATE OF`` columns
    events: frozenset[str] = frozenset()
    #: a ``referenced`` one's actions that write the child's rows: ``delete cascade``, ``delete set null``,
    #: ``update cascade``, ``update set null`` (the child's own constraints then judge that write, decision 0386)
    actions: frozenset[str] = frozenset()


_SQLGLOT = {"sqlite": "sqlite", "postgres": "postgres", "mysql": "mysql", "duckdb": "duckdb"}


def _mentioned(text: Any, fam: str, columns: Iterable[str], statement: bool = False) -> frozenset[str]:
    """The table's columns an expression (or a ``CREATE INDEX`` statement) names; all of them when it cannot be
    read exactly (a parse error, or text sqlglot keeps opaque, as MariaDB's ``replace(`ssn`,'-','')``)."""
    every = frozenset(c.lower() for c in columns)
    if not isinstance(text, str):
        return every
    try:
        tree = parse_one(text if statement else f"SELECT {text}", _SQLGLOT[fam])
    except (sqlglot.errors.SqlglotError, ValueError):
        return every
    expected = exp.Create if statement else exp.Select
    if not isinstance(tree, expected) or tree.find(exp.Command) is not None:
        return every
    return frozenset(c.name.lower() for c in tree.find_all(exp.Column)) & every


def _key(schema: Any, name: Any, default: Any = None) -> str:
    """A table key as the rest of masking spells it: the schema only outside the default one."""
    if schema is None or str(schema).lower() in _DEFAULT_SCHEMAS or str(schema) == str(default):
        return table_key(str(name))
    return table_key(f"{schema}.{name}")


def _computed_on_write(generated: Mapping[str, frozenset[str]], written: Iterable[str]) -> list[Constraint]:
    """A generated column computed when its row is written (a stored one, or a virtual one an index holds) is a
    check over the columns it reads: ``tag varchar(30) AS (CONCAT(city, '/', full_name)) STORED`` fails an
    ``UPDATE ... SET city = <n characters>`` ("Data too long for column 'tag'") exactly when the stored name is
    longer than ``29 - n``, as a conversion or a division in it fails for some stored values only (decision 0308)."""
    out = []
    for g in sorted(set(written) & set(generated)):
        reads = generated[g] - {g}
        if reads:
            out.append(Constraint("check", f"generated column {g}", reads))
    return out


def _expand(found: list[Constraint], generated: Mapping[str, frozenset[str]]) -> list[Constraint]:
    """A generated column stands for the columns it is computed from (``lower(email)``: email)."""
    if not generated:
        return found
    out = []
    for c in found:
        cols = set(c.columns)
        while True:
            more = set().union(*(generated.get(g, frozenset()) for g in cols)) - cols
            if not more:
                break
            cols |= more
        out.append(dataclasses.replace(c, columns=frozenset(cols)))
    return out


def _run(cur: Any, sql: str, params: Sequence[Any] = ()) -> None:
    if type(cur).__module__.split(".")[0] == "psycopg":
        # never prepared: psycopg 3 prepares a text run often enough on the connection (``_pg3_0``), which the
        # caller would then see in ``pg_prepared_statements`` (the catalog comparison runs every second, 0392)
        cur.execute(sql, tuple(params), prepare=False)
    else:
        cur.execute(sql, tuple(params))


def _rows(cur: Any, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
    _run(cur, sql, params)
    return [_values(r) for r in cur.fetchall()]


def _foreign(rows: Iterable[Sequence[Any]]) -> dict[tuple[Any, ...], tuple[list[str], list[Any]]]:
    """Group (group key..., from column, to column) rows into ordered column lists per foreign key."""
    out: dict[tuple[Any, ...], tuple[list[str], list[Any]]] = {}
    for r in rows:
        froms, tos = out.setdefault(tuple(r[:-2]), ([], []))
        froms.append(str(r[-2]).lower())
        tos.append(None if r[-1] is None else str(r[-1]).lower())
    return out


def _base_table(kind: Any, allowed: tuple[str, ...]) -> None:
    """A view, foreign or virtual table writes into relations whose constraints are not its own: unknown."""
    if kind is None or str(kind) not in allowed:
        raise LookupError(f"not a base table ({kind}): its constraints are unknown")


def _sqlite_constraints(cur: Any, name: str, columns: list[str]) -> list[Constraint]:
    found_kind = _rows(
        cur,
        "SELECT type, upper(substr(ltrim(sql), 1, 14)) FROM sqlite_master WHERE name = ? COLLATE NOCASE "
        "UNION ALL SELECT type, upper(substr(ltrim(sql), 1, 14)) FROM sqlite_temp_master WHERE name = ? COLLATE NOCASE",
        (name, name),
    )
    _base_table(found_kind[0][0] if found_kind and found_kind[0][1] != "CREATE VIRTUAL" else None, ("table",))
    xinfo = _rows(cur, "SELECT name, pk, hidden, dflt_value FROM pragma_table_xinfo(?)", (name,))
    pk = [str(r[0]).lower() for r in sorted((r for r in xinfo if r[1]), key=lambda r: r[1])]
    found = [Constraint("unique", "PRIMARY KEY", frozenset(pk), primary=True)] if pk else []
    # a column left out of an INSERT (or given DEFAULT) gets its default: a value unless that default is NULL
    valued = [str(r[0]).lower() for r in xinfo if not r[2] and r[3] is not None and str(r[3]).upper() != "NULL"]
    # a rowid alias left out gets the largest stored value plus one (``cursor.lastrowid`` tells it: decision 0388)
    alias = _sqlite_rowid_alias(cur, name)
    if alias is not None and alias not in valued:
        valued.append(alias)
    if valued:
        found.append(Constraint("default", "DEFAULT", frozenset(valued)))
    for idx, partial in _rows(cur, 'SELECT name, partial FROM pragma_index_list(?) WHERE "unique" = 1', (name,)):
        keys = _rows(cur, "SELECT cid, name FROM pragma_index_xinfo(?) WHERE key = 1", (idx,))
        cols = {str(n).lower() for _, n in keys if n is not None}
        if partial or any(cid == -2 for cid, _ in keys):  # an expression, or a WHERE: read its definition
            sql = _rows(cur, "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (idx,))
            cols |= _mentioned(sql[0][0] if sql else None, "sqlite", columns, statement=True)
        found.append(Constraint("unique", str(idx), frozenset(cols)))
    outgoing = _rows(cur, 'SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?) ORDER BY id, seq', (name,))
    for (_, parent), (froms, tos) in _foreign(outgoing).items():
        if None in tos:  # REFERENCES parent: its primary key
            tos = [str(r[0]).lower() for r in _rows(cur, "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", (parent,))]
        found.append(Constraint("foreign key", f"{name}({', '.join(froms)})", frozenset(froms), table_key(str(parent)), frozenset(tos)))
    incoming = _rows(
        cur,
        'SELECT m.name, f.id, f."from", f."to" FROM sqlite_master m, pragma_foreign_key_list(m.name) f '
        "WHERE m.type = 'table' AND lower(f.\"table\") = lower(?) ORDER BY m.name, f.id, f.seq",
        (name,),
    )
    for (child, _), (froms, tos) in _foreign(incoming).items():
        mine = pk if None in tos else tos
        found.append(Constraint("referenced", f"{child}({', '.join(froms)})", frozenset(mine), table_key(str(child)), frozenset(froms)))
    create = _rows(
        cur,
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE "
        "UNION ALL SELECT sql FROM sqlite_temp_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
        (name, name),
    )
    text = str(create[0][0]) if create and create[0][0] else ""
    generated_cols = [str(r[0]).lower() for r in xinfo if r[2] in (2, 3)]
    generated: dict[str, frozenset[str]] = {}
    try:
        tree = parse_one(text, "sqlite") if text else None
    except (sqlglot.errors.SqlglotError, ValueError):
        tree = None
    if not isinstance(tree, exp.Create) or tree.find(exp.Command) is not None:
        tree = None  # kept opaque by sqlglot: read as unreadable
    every = frozenset(c.lower() for c in columns)
    if tree is None:
        # unreadable definition: a CHECK or generated column in it may read any column
        if "check" in text.lower():
            found.append(Constraint("check", "CHECK", every))
        generated = {g: every for g in generated_cols}
    else:
        for check in tree.find_all(exp.CheckColumnConstraint):
            found.append(Constraint("check", "CHECK", frozenset(c.name.lower() for c in check.find_all(exp.Column)) & every))
        for col in tree.find_all(exp.ColumnDef):
            computed = col.find(exp.ComputedColumnConstraint)
            if computed is not None:
                generated[col.name.lower()] = frozenset(c.name.lower() for c in computed.find_all(exp.Column)) & every
    found.extend(_sqlite_triggers(cur, name))
    return _expand(found, generated)


#: a SQLite trigger's event, its ``UPDATE OF`` columns, and the table after ``ON``
_TRIGGER_EVENT = re.compile(
    r"\b(DELETE|INSERT|UPDATE)\b(?:\s+OF\s+(.*?))?\s+ON\s+(?:\"[^\"]*\"|\[[^\]]*\]|`[^`]*`|'[^']*'|[\w$.]+)",
    re.IGNORECASE | re.DOTALL,
)


def _sqlite_triggers(cur: Any, name: str) -> list[Constraint]:
    """The application's triggers on table ``name`` (decision 0375): each fires on the caller's write and reads the
    row's stored values (``OLD.ssn``, and ``NEW.ssn`` of a column the write leaves as stored) and any table its
    ``WHEN`` or body names, out of masking's sight: a ``WHEN new.ssn LIKE '5%'`` that writes a row, or a ``RAISE()``,
    answers by them. One constraint for the firing table's columns its text names (not on INSERT unless it reads
    the table itself: ``NEW`` then holds the caller's values), and one per other table or view it names (the
    columns of it named, all of them when none is). Words are SQLite's tokens: a word that merely names a column
    only refuses more. The triggers of a child table a foreign key's action writes (``ON DELETE CASCADE``, ``SET
    NULL``...) fire on the parent's write too: theirs count as well, under the parent's event."""
    relations = {str(r[0]).lower(): (str(r[1]), str(r[2] or "")) for r in _rows(
        cur,
        "SELECT name, type, sql FROM sqlite_master WHERE type IN ('table', 'view') "
        "UNION ALL SELECT name, type, sql FROM sqlite_temp_master WHERE type IN ('table', 'view')",
    )}  # fmt: skip
    out = _triggers_of(cur, name, relations, None)
    out.extend(_cascaded(cur, name, relations, {"update": frozenset({"update"}), "delete": frozenset({"delete"})},
                         {name.lower()}, 0))  # fmt: skip
    return out


#: the foreign-key actions that write the child rows (a RESTRICT or NO ACTION only checks)
_WRITING = ("CASCADE", "SET NULL", "SET DEFAULT")


def _cascaded(
    cur: Any, name: str, relations: dict[str, tuple[str, str]], causes: dict[str, frozenset[str]], seen: set[str],
    depth: int,
) -> list[Constraint]:
    """The triggers that the foreign-key actions of a write to ``name`` fire in its child tables, under the caller's
    event that makes them (``causes``: each event ``name`` undergoes -> the caller's writes that make it), and those
    of the children's children in turn (decision 0389: a grandchild's cascade fires its triggers too)."""
    out: list[Constraint] = []
    actions = _rows(
        cur,
        'SELECT DISTINCT m.name, upper(f.on_update), upper(f.on_delete) FROM sqlite_master m, '
        "pragma_foreign_key_list(m.name) f WHERE m.type = 'table' AND lower(f.\"table\") = lower(?)",
        (name,),
    )
    for child, on_update, on_delete in actions:
        made: dict[str, set[str]] = {}  # the child's event -> the caller's writes that make it
        if on_update in _WRITING:
            made.setdefault("update", set()).update(causes.get("update", ()))
        if on_delete == "CASCADE":
            made.setdefault("delete", set()).update(causes.get("delete", ()))
        elif on_delete in _WRITING:
            made.setdefault("update", set()).update(causes.get("delete", ()))
        child_causes = {e: frozenset(p) for e, p in made.items() if p}
        for event, parents in child_causes.items():
            out.extend(dataclasses.replace(c, events=parents, updated=None)
                       for c in _triggers_of(cur, str(child), relations, event))  # fmt: skip
        key = str(child).lower()
        if not child_causes or key in seen:
            continue
        if depth >= _REACH_DEPTH:  # deeper than followed: whatever the child's columns are counts
            parents = frozenset().union(*child_causes.values())
            out.append(Constraint("trigger", f"the foreign key actions below {child}", frozenset(), table_key(str(child)),
                                  _column_names(cur, str(child)), events=parents))  # fmt: skip
            continue
        out.extend(_cascaded(cur, str(child), relations, child_causes, seen | {key}, depth + 1))
    return out


def _triggers_of(cur: Any, name: str, relations: dict[str, tuple[str, str]], event: str | None) -> list[Constraint]:
    """The trigger constraints of table ``name`` (those firing on ``event`` only, each naming its own table as
    ``other``, when ``event`` is given: a child's triggers a parent's write fires)."""
    from governed_db.masking import stored_code

    triggers = _table_triggers(cur, name)
    if not triggers:
        return []
    every = _column_names(cur, name)
    out: list[Constraint] = []
    for trig, text in triggers:
        sql = str(text or "")
        found = _TRIGGER_EVENT.search(sql)
        events = frozenset({"insert", "update", "delete"})
        updated: frozenset[str] | None = None
        rest = sql
        if found is not None:
            events = frozenset({found.group(1).lower()})
            if found.group(2):
                updated = frozenset(w.lower() for w in re.findall(r"[\w$]+", found.group(2))) & every or None
            rest = sql[found.end():]
        if event is not None and event not in events:
            continue
        words = frozenset(stored_code.named_relations(rest, "sqlite") or stored_code.named_relations(sql, "sqlite")
                          or re.findall(r"[\w$]+", sql.lower()))  # fmt: skip
        own = every & words
        reads_itself = name.lower() in words
        if event is None:
            out.append(Constraint("trigger", str(trig), own, updated=updated,
                                  events=events if reads_itself else events - {"insert"}))  # fmt: skip
        elif own:
            out.append(Constraint("trigger", str(trig), frozenset(), table_key(name), own, events=events))
        reach = _Reach(cur, str(trig), relations, events, updated, {str(trig).lower()})
        reach.named(words, name.lower(), 0)
        reach.fired(sql, 0)
        out.extend(reach.found)
    return out


def _table_triggers(cur: Any, name: str) -> list[Sequence[Any]]:
    return _rows(
        cur,
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE "
        "UNION ALL SELECT name, sql FROM sqlite_temp_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE",
        (name, name),
    )


def _column_names(cur: Any, name: str) -> frozenset[str]:
    return frozenset(str(r[0]).lower() for r in _rows(cur, "SELECT name FROM pragma_table_info(?)", (name,)))


def _code_words(sql: str) -> frozenset[str]:
    """The words of a trigger or view definition that may name a table, view or column (SQLite's tokens)."""
    from governed_db.masking import stored_code

    return frozenset(stored_code.named_relations(sql, "sqlite") or re.findall(r"[\w$]+", sql.lower()))


#: how deep the tables and views a trigger names are followed: views over views, triggers a trigger's write fires
_REACH_DEPTH = 8


@dataclasses.dataclass
class _Reach:
    """What one trigger reads, table by table, beyond the table it fires on (decision 0389): each table or view its
    text names (the columns of it named, all of them when none is); for a view, also the tables its definition
    names, as they are named there (``WHERE ssn LIKE '5%'`` in the view decides what the trigger sees); and for a
    table its body writes, what that table's triggers the write fires read, since SQLite runs them nested (their
    own table's columns they name, and what they reach in turn), and the triggers its foreign-key actions fire in
    the child tables. Every word that names a relation counts, read or written: a mere mention refuses more."""

    cur: Any
    trigger: str
    relations: dict[str, tuple[str, str]]
    events: frozenset[str]
    updated: frozenset[str] | None
    seen: set[str]
    found: list[Constraint] = dataclasses.field(default_factory=list)

    def add(self, table: str, columns: frozenset[str]) -> None:
        self.found.append(Constraint("trigger", self.trigger, frozenset(), table_key(table), columns,
                                     updated=self.updated, events=self.events))  # fmt: skip

    def named(self, words: frozenset[str], skip: str, depth: int) -> None:
        for other, (kind, sql) in self.relations.items():
            if other not in words or other == skip:
                continue
            theirs = _column_names(self.cur, other)
            self.add(other, theirs & words or theirs)
            if other in self.seen:
                continue
            self.seen.add(other)
            if depth >= _REACH_DEPTH:
                self.add(other, theirs)  # deeper than followed: every column of it counts
                continue
            if kind == "view":
                self.named(_code_words(sql), other, depth + 1)
                continue

    def fired(self, body: str, depth: int) -> None:
        """Follow the triggers that the writes of a trigger's ``body`` fire (its own text's: ``CREATE TRIGGER ...``)."""
        writes = _body_writes(body)
        grown = _unbounded_updates(body) if writes else set()
        for table, (events, columns) in writes.items():
            if table not in self.relations:
                continue
            theirs = _column_names(self.cur, table)
            if depth >= _REACH_DEPTH or table in grown:
                # deeper than followed, or lengthening its rows by no bound: every column of it counts
                self.add(table, theirs)
                continue
            # the write's foreign-key actions fire the triggers of the child rows they change, under this trigger
            causes = {e: self.events for e in events if e in ("update", "delete")}
            if causes:
                cascade = _cascaded(self.cur, table, self.relations, causes, {table}, depth + 1)
                self.found.extend(dataclasses.replace(c, name=self.trigger, updated=self.updated) for c in cascade)
            for nested, text in _table_triggers(self.cur, table):
                sql = str(text or "")
                if str(nested).lower() in self.seen or not _fires(sql, events, columns):
                    continue
                self.seen.add(str(nested).lower())
                inner = _code_words(sql)
                own = theirs & inner
                if own:
                    self.add(table, own)
                self.named(inner, table, depth + 1)
                self.fired(sql, depth + 1)


_COMMENT = re.compile(r"/\*.*?(?:\*/|$)|--[^\n]*", re.DOTALL)
_NAME = r"""(?:(?:"[^"]*"|\[[^\]]*\]|`[^`]*`|[\w$]+)\s*\.\s*)?("[^"]*"|\[[^\]]*\]|`[^`]*`|'[^']*'|[\w$]+)"""
_INSERTED = re.compile(r"\b(?:INSERT\s*(?:OR\s+(\w+)\s*)?|(REPLACE)\s*)INTO\s*" + _NAME, re.IGNORECASE)
_UPDATED = re.compile(r"\bUPDATE\s*(?:OR\s+\w+\s*)?" + _NAME + r"\s*SET\b(.*?)(?=\bWHERE\b|\bFROM\b|\bRETURNING\b|;|$)",
                      re.IGNORECASE | re.DOTALL)  # fmt: skip
_DELETED = re.compile(r"\bDELETE\s*FROM\s*" + _NAME, re.IGNORECASE)


def _unquoted(name: str) -> str:
    return (name[1:-1] if name[:1] in "\"[`'" else name).lower()


def _body_writes(sql: str) -> dict[str, tuple[set[str], set[str] | None]]:
    """The tables the body of trigger ``sql`` writes: per table, the events its writes fire there, and the columns its
    UPDATEs set (every word of their SET clauses: more, never fewer; ``None``: any). A REPLACE may delete, an upsert
    may update any column. Comments are removed first; the text after the first BEGIN is the body."""
    body = _body_of(sql)
    out: dict[str, tuple[set[str], set[str] | None]] = {}

    def note(table: str, event: str, columns: set[str] | None = None) -> None:
        events, cols = out.setdefault(_unquoted(table), (set(), set()))
        events.add(event)
        if event == "update":
            out[_unquoted(table)] = (events, None if cols is None or columns is None else cols | columns)

    upsert = re.search(r"\bDO\s+UPDATE\b", body, re.IGNORECASE) is not None
    for m in _INSERTED.finditer(body):
        note(m.group(3), "insert")
        if m.group(2) or (m.group(1) or "").upper() == "REPLACE":
            note(m.group(3), "delete")
        if upsert:
            note(m.group(3), "update", None)
    for m in _UPDATED.finditer(body):
        note(m.group(1), "update", {w.lower() for w in re.findall(r"[\w$]+", m.group(2))})
    for m in _DELETED.finditer(body):
        note(m.group(1), "delete")
    return out


def _body_of(sql: str) -> str:
    text = _COMMENT.sub(" ", sql)
    begin = re.search(r"\bBEGIN\b", text, re.IGNORECASE)
    return text[begin.end():] if begin else text


def _unbounded_updates(sql: str) -> set[str]:
    """The tables the body of trigger ``sql`` UPDATEs with a value whose length its text does not bound (``SET city =
    new.city``; an upsert's DO UPDATE, unread, too): such a write may lengthen a row past SQLite's length limit by
    the masked values the row keeps (decision 0405)."""
    from governed_db.masking.row_length import unbounded_set

    body = _body_of(sql)
    out = {_unquoted(m.group(1)) for m in _UPDATED.finditer(body) if unbounded_set(m.group(2))}
    if re.search(r"\bDO\s+UPDATE\b", body, re.IGNORECASE) is not None:
        out |= {_unquoted(m.group(3)) for m in _INSERTED.finditer(body)}
    return out


def _fires(sql: str, events: set[str], columns: set[str] | None) -> bool:
    """Whether trigger ``sql`` fires on one of ``events`` (an UPDATE OF fires only on an update of its columns)."""
    found = _TRIGGER_EVENT.search(_COMMENT.sub(" ", sql))
    if found is None:
        return True  # unreadable: it may fire on anything
    event = found.group(1).lower()
    if event not in events:
        return False
    if event != "update" or not found.group(2) or columns is None:
        return True
    return bool({w.lower() for w in re.findall(r"[\w$]+", found.group(2))} & columns)


_PG_UNIQUE = (
    "SELECT c.relname::text, ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid "
    "AND a.attnum > 0 AND (a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]) OR ((i.indexprs IS NOT NULL "
    "OR i.indpred IS NOT NULL) AND a.attnum IN (SELECT d.refobjsubid FROM pg_catalog.pg_depend d "
    "WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = i.indexrelid "
    "AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = i.indrelid)))), i.indisprimary, "
    "i.indrelid = to_regclass(%s) FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
    "WHERE (i.indrelid = to_regclass(%s) OR i.indrelid IN (SELECT relid FROM "
    "pg_catalog.pg_partition_tree(to_regclass(%s)))) AND (i.indisunique OR i.indisexclusion)"
)
#: the columns that pick the rows a table holds of its family: its ancestors' partition keys (every column of a
#: level keyed on an expression), and an inheritance child's CHECKs (decision 0399)
_PG_HELD_COLUMNS = (
    "SELECT a.attname::text FROM pg_catalog.pg_partition_ancestors(to_regclass(%s)) x "
    "JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = x.relid JOIN pg_catalog.pg_attribute a "
    "ON a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped AND (a.attname IN (SELECT b.attname "
    "FROM pg_catalog.pg_attribute b WHERE b.attrelid = pt.partrelid AND b.attnum = ANY (pt.partattrs::int2[])) "
    "OR pt.partexprs IS NOT NULL) "
    "UNION SELECT a.attname::text FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) "
    "WHERE k.conrelid = to_regclass(%s) AND k.contype = 'c' AND NOT c.relispartition "
    "AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = k.conrelid)"
)
#: every index: the columns its entries hold or its expressions and WHERE read, and those of variable length
_PG_INDEX_DEPS = (
    "(a.attnum = ANY (i.indkey::int2[]) OR ((i.indexprs IS NOT NULL OR i.indpred IS NOT NULL) AND a.attnum IN "
    "(SELECT d.refobjsubid FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass "
    "AND d.objid = i.indexrelid AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = i.indrelid)))"
)
_PG_INDEXES = (
    "SELECT c.relname::text, ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a "
    f"WHERE a.attrelid = i.indrelid AND a.attnum > 0 AND {_PG_INDEX_DEPS}), "
    "ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
    f"WHERE a.attrelid = i.indrelid AND a.attnum > 0 AND t.typlen < 0 AND {_PG_INDEX_DEPS}) "
    "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass(%s)"
)
_PG_KEYS = (
    "SELECT con.conname::text, con.contype::text, con.conrelid = to_regclass(%s), con.confrelid = to_regclass(%s), "
    "con.conrelid::regclass::text, con.confrelid::regclass::text, "
    "ARRAY(SELECT a.attname::text FROM unnest(con.conkey) k(n) JOIN pg_catalog.pg_attribute a "
    "ON a.attrelid = con.conrelid AND a.attnum = k.n), "
    "ARRAY(SELECT a.attname::text FROM unnest(con.confkey) k(n) JOIN pg_catalog.pg_attribute a "
    "ON a.attrelid = con.confrelid AND a.attnum = k.n), con.confupdtype::text, con.confdeltype::text "
    "FROM pg_catalog.pg_constraint con WHERE (con.contype = 'f' AND (con.conrelid = to_regclass(%s) "
    "OR con.confrelid = to_regclass(%s))) OR (con.contype = 'c' AND con.conrelid = to_regclass(%s))"
)
_PG_GENERATED = (
    "SELECT a.attname::text, ARRAY(SELECT b.attname::text FROM pg_catalog.pg_attrdef ad JOIN pg_catalog.pg_depend d "
    "ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid "
    "AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = ad.adrelid AND d.refobjsubid > 0 "
    "JOIN pg_catalog.pg_attribute b ON b.attrelid = ad.adrelid AND b.attnum = d.refobjsubid "
    "WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum AND b.attnum <> a.attnum) "
    "FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attgenerated <> ''"
)


def _names(values: Any) -> frozenset[str]:
    return frozenset(str(v).lower() for v in values or ())


_PG_NAMED = (
    "SELECT c.oid = to_regclass(%s), c.oid::regclass::text, ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a "
    "WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) FROM (VALUES {values}) AS u(n) "
    "JOIN pg_catalog.pg_class c ON c.oid = to_regclass(u.n) WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
)
_NAME_WORD = re.compile(r"[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?")


def _pg_constraints(cur: Any, table_sql: str, reach: Reach | None = None) -> list[Constraint]:
    kind = _rows(cur, "SELECT relkind::text FROM pg_catalog.pg_class WHERE oid = to_regclass(%s)", (table_sql,))
    relkind = kind[0][0] if kind else None
    fired = _pg_fired(cur, table_sql, reach) if relkind is not None else []
    if relkind is not None and str(relkind) in ("v", "m", "f"):
        # a view writes into relations whose constraints are not its own: unknown, as before; and its rules and
        # INSTEAD OF triggers read what they name
        every = _names(r[0] for r in _rows(
            cur, "SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = to_regclass(%s) "
            "AND a.attnum > 0 AND NOT a.attisdropped", (table_sql,)))  # fmt: skip
        return [Constraint("unknown", "the relations it writes", every), *fired, *_pg_computed_calls(cur, table_sql, reach)]
    _base_table(relkind, ("r", "p"))
    found = [*fired, *_pg_computed_calls(cur, table_sql, reach)]
    # a unique index of a partition or inheritance child (or of an inheritance parent's own rows) holds only the
    # rows its table holds of the family, which the partition keys or CHECKs pick: its conflicts compare with
    # those rows alone, so it reads their columns too (``INSERT INTO t VALUES (1, 'Bob')`` failed or not as row
    # 1 was stored in ``t_lo``: decision 0399). A write through a partitioned table meets its partitions' indexes.
    picked = frozenset(str(r[0]).lower() for r in _rows(cur, _PG_PLACED, (table_sql,) * 5))
    held = frozenset(str(r[0]).lower() for r in _rows(cur, _PG_HELD_COLUMNS, (table_sql,) * 3))
    own_rows = held | (picked if relkind == "r" else frozenset())  # an inheritance parent's own: not its children's
    found += [
        Constraint("unique", str(n), _names(cols) | (own_rows if own else picked), primary=bool(primary) and bool(own))
        for n, cols, primary, own in _rows(cur, _PG_UNIQUE, (table_sql,) * 3)
    ]
    found += [
        Constraint("index", str(n), _names(cols), updated=_names(grows))
        for n, cols, grows in _rows(cur, _PG_INDEXES, (table_sql,))
    ]
    for name, kind, outgoing, incoming, child, parent, mine, theirs, on_update, on_delete in _rows(
        cur, _PG_KEYS, (table_sql,) * 5
    ):
        if kind == "c":
            found.append(Constraint("check", str(name), _names(mine)))
            continue
        if outgoing:
            found.append(Constraint("foreign key", str(name), _names(mine), table_key(str(parent)), _names(theirs)))
        if incoming:
            actions = _actions(_PG_ACTIONS.get(str(on_update), on_update), _PG_ACTIONS.get(str(on_delete), on_delete))
            found.append(Constraint("referenced", str(name), _names(theirs), table_key(str(child)), _names(mine),
                                    actions=actions))  # fmt: skip
    # a column left out of an INSERT (or given DEFAULT) gets its default: a value unless that default is NULL
    # (an identity column always gets one)
    valued = _rows(cur, _PG_DEFAULTS, (table_sql,))
    if valued:
        found.append(Constraint("default", "DEFAULT", frozenset(str(r[0]).lower() for r in valued)))
    generated = {str(g).lower(): _names(deps) for g, deps in _rows(cur, _PG_GENERATED, (table_sql,))}
    # PostgreSQL's generated columns are stored ones (up to 17): each is computed when its row is written
    found += _computed_on_write(generated, generated)
    return _expand(found, generated)


#: the application's triggers on a table (or on a partition of it, which a write through the table fires): name,
#: event bits, ``UPDATE OF`` columns, the CREATE TRIGGER (its WHEN), the function's language and source
_PG_TRIGGERS = (
    "SELECT t.tgname::text, t.tgtype::int, ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a "
    "WHERE a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr::int2[])), pg_catalog.pg_get_triggerdef(t.oid), "
    "l.lanname::text, p.prosrc FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid "
    "JOIN pg_catalog.pg_language l ON l.oid = p.prolang WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' "
    "AND (t.tgrelid = to_regclass(%s) OR t.tgrelid IN (SELECT relid FROM pg_catalog.pg_partition_tree(to_regclass(%s))))"
)
#: its rules (``CREATE RULE ... ON UPDATE TO t WHERE old.full_name >= 'N' DO INSTEAD NOTHING``): name, event, text
_PG_RULES = (
    "SELECT r.rulename::text, r.ev_type::text, pg_catalog.pg_get_ruledef(r.oid) FROM pg_catalog.pg_rewrite r "
    "WHERE r.rulename <> '_RETURN' AND r.ev_enabled <> 'D' "
    "AND (r.ev_class = to_regclass(%s) OR r.ev_class IN (SELECT relid FROM pg_catalog.pg_partition_tree(to_regclass(%s))))"
)
#: ``OLD`` or ``NEW`` as a whole row (not ``OLD.col``, nor the ``RETURN NEW`` that lets the write go on), or SQL
#: built at run time: any column may be read
_WHOLE_ROW = re.compile(r"\b(?:old|new)\b(?!\s*\.\s*[\w\"])|\bexecute\b|\bto_jsonb?\b|\brow_to_json\b|"
                        r"\btg_argv\b|\bhstore\b", re.IGNORECASE)  # fmt: skip
_RETURNED = re.compile(r"\breturn\s+(?:new|old|null)\b", re.IGNORECASE)
#: a PL/pgSQL notice of a literal format and plain ``NEW.col``/``OLD.col`` arguments: its text is withheld from a
#: caller who sees masked columns (decision 0230), and it changes nothing else, so the columns it names decide nothing
_NOTICE = re.compile(
    r"\bRAISE\s+(?:DEBUG|LOG|INFO|NOTICE|WARNING)\s+'(?:[^']|'')*'(?:\s*,\s*(?:new|old)\s*\.\s*[\w$]+)*\s*;",
    re.IGNORECASE,
)
#: a trigger's WHEN condition in ``pg_get_triggerdef``; a rule's head in ``pg_get_ruledef`` (``... TO public.t``)
_TRIGGER_WHEN = re.compile(r"\bWHEN\s*\((.*)\)\s*EXECUTE\s+(?:FUNCTION|PROCEDURE)\b", re.IGNORECASE | re.DOTALL)
_RULE_HEAD = re.compile(r"^\s*CREATE\s+RULE\s.*?\sTO\s+(?:\"[^\"]*\"|[\w$]+)(?:\.(?:\"[^\"]*\"|[\w$]+))?",
                        re.IGNORECASE | re.DOTALL)  # fmt: skip
#: trigger event bits (``TRIGGER_TYPE_INSERT``, ``_DELETE``, ``_UPDATE`` of PostgreSQL's ``pg_trigger.tgtype``)
_PG_TRIGGER_EVENTS = ((4, "insert"), (8, "delete"), (16, "update"))
#: rule events (``pg_rewrite.ev_type``)
_PG_RULE_EVENTS = {"2": "update", "3": "insert", "4": "delete"}


def _pg_fired(cur: Any, table_sql: str, reach: Reach | None) -> list[Constraint]:
    """The triggers and rules a write to ``table_sql`` fires, a view's ``INSTEAD OF`` ones among them (decisions
    0385, 0393, 0397): ``BEFORE UPDATE ... IF OLD.full_name >= 'N' THEN RETURN NULL`` and ``CREATE RULE ... WHERE
    old.full_name >= 'N' DO INSTEAD NOTHING`` made ``UPDATE t SET city = 'X' WHERE id = 1`` change one row or none.
    Each is a ``trigger`` constraint over the relation's columns its code names (a trigger's WHEN and its
    function's source, a rule's condition and actions), every column where it reads a whole row, builds SQL at
    run time, or runs code whose source is not SQL or PL/pgSQL; an INSERT's fires on the caller's own row, a use
    only where its code names the relation (a query of the stored rows). As SQLite's triggers (0375), one more
    per other relation its code names, and per relation the application's functions it calls read."""

    every = frozenset(str(r[0]).lower() for r in _rows(
        cur, "SELECT attname::text FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
        "AND NOT attisdropped", (table_sql,)))  # fmt: skip
    own_name = table_sql.rsplit(".", 1)[-1].strip('"').lower()
    fired: list[tuple[str, frozenset[str], frozenset[str] | None, str, bool]] = []
    for name, bits, of, definition, language, source in _rows(cur, _PG_TRIGGERS, (table_sql, table_sql)):
        events = frozenset(e for bit, e in _PG_TRIGGER_EVENTS if int(bits) & bit)
        when = _TRIGGER_WHEN.search(str(definition))
        code = f"{when.group(1) if when else ''}\n{_NOTICE.sub(' ', str(source or ''))}"
        fired.append((str(name), events, _names(of) or None, code, str(language) not in ("plpgsql", "sql")))
    for name, event, definition in _rows(cur, _PG_RULES, (table_sql, table_sql)):
        code = _RULE_HEAD.sub("", str(definition), count=1)
        fired.append((str(name), frozenset({_PG_RULE_EVENTS.get(str(event), "update")}), None, code, False))
    out: list[Constraint] = []
    for name, events, of, code, opaque in fired:
        words = frozenset(w.lower() for w in re.findall(r"[\w$]+", code))
        cols = every if opaque or _WHOLE_ROW.search(_RETURNED.sub("", code)) else every & words
        own_events = events if own_name in words else events - {"insert"}
        if cols and own_events:
            out.append(Constraint("trigger", name, cols, updated=of, events=own_events))
        out += _pg_code_reads(cur, table_sql, name, code, events, of, reach)
    return out


def _pg_code_reads(
    cur: Any, table_sql: str, name: str, code: str, events: frozenset[str], of: frozenset[str] | None,
    reach: Reach | None, kind: str = "trigger",
) -> list[Constraint]:
    """The relations other than ``table_sql`` that the code of a trigger or rule names (the columns of each it
    names, all where it names none), and those the application's functions it calls read, transitively (all their
    columns): a ``kind`` constraint each, with the code's events (decision 0397). A call whose reads cannot be told
    counts as a use of every column of ``table_sql``. Only the calls of a ``code`` one (a CHECK's, a DEFAULT's,
    a generated column's, an index's expression: the words of which name columns)."""
    from governed_db.masking import stored_code

    found = stored_code.named_relations(code, "postgres") if kind == "trigger" else []
    words = frozenset(found if found is not None else re.findall(r"[\w$]+", code.lower()))
    names = sorted(w for w in words if _NAME_WORD.fullmatch(w))
    reached = reach(cur, code) if reach is not None else ()
    queried = [*names, *(reached or ())]
    named = _rows(cur, _PG_NAMED.format(values=", ".join(["(%s)"] * len(queried))), (table_sql, *queried)) if queried else []
    called = {table_key(r) for r in reached or ()}
    out: list[Constraint] = []
    for itself, relation, columns in named:
        key = table_key(str(relation))
        cols = _names(columns)
        if reached is None and itself:
            out.append(Constraint(kind, name, cols, updated=of, events=events))
        if not itself or key in called:
            out.append(Constraint(kind, name, frozenset(), key, cols if key in called else cols & words or cols,
                                  updated=of, events=events))  # fmt: skip
    if reached is None and not any(r[0] for r in named):
        out.append(Constraint(kind, name, _names(r[0] for r in _rows(
            cur, "SELECT attname::text FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped", (table_sql,))), updated=of, events=events))  # fmt: skip
    return out


#: what a write to a table computes by its expressions (a CHECK, a DEFAULT, a generated column, an index's
#: expression or predicate): label, events, text; their calls of the application's functions run on its write
_PG_EXPRESSIONS = (
    "SELECT 'the CHECK constraint ' || c.conname, 'insert update', pg_catalog.pg_get_constraintdef(c.oid) "
    "FROM pg_catalog.pg_constraint c WHERE c.conrelid = to_regclass(%s) AND c.contype = 'c' "
    "UNION ALL SELECT CASE WHEN a.attgenerated <> '' THEN 'the generated column ' ELSE 'the DEFAULT of ' END "
    "|| a.attname, CASE WHEN a.attgenerated <> '' THEN 'insert update' ELSE 'insert' END, "
    "pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_attribute a "
    "ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = to_regclass(%s) "
    "UNION ALL SELECT 'the CHECK of domain ' || t.typname, 'insert update', pg_catalog.pg_get_constraintdef(k.oid) "
    "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid JOIN pg_catalog.pg_constraint k "
    "ON k.contypid = t.oid WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
    "AND k.contype = 'c' "
    "UNION ALL SELECT 'the index ' || i.indexrelid::regclass::text, 'insert update', "
    "pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index i WHERE i.indrelid = to_regclass(%s) "
    "AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)"
)


def _pg_computed_calls(cur: Any, table_sql: str, reach: Reach | None) -> list[Constraint]:
    """The application's functions a table's CHECK constraints, DEFAULTs, generated columns and index expressions
    call run on the caller's write, out of the statement's text, and read what their bodies read (decision 0397):
    a ``code`` constraint per relation they reach."""
    out: list[Constraint] = []
    for label, events, text in _rows(cur, _PG_EXPRESSIONS, (table_sql,) * 4):
        code = str(text or "")
        if "(" in code:
            out += _pg_code_reads(cur, table_sql, f"{label} (the functions it calls)", code,
                                  frozenset(str(events).split()), None, reach, kind="code")  # fmt: skip
    return out


_PG_DEFAULTS = (
    "SELECT a.attname FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d "
    "ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 "
    "AND NOT a.attisdropped AND a.attgenerated = '' AND (a.attidentity <> '' OR (d.adbin IS NOT NULL "
    "AND upper(pg_catalog.pg_get_expr(d.adbin, d.adrelid)) <> 'NULL' "
    "AND left(upper(pg_catalog.pg_get_expr(d.adbin, d.adrelid)), 6) <> 'NULL::'))"
)


#: pg_constraint's confupdtype/confdeltype letters, as MySQL spells the rules
_PG_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def _actions(on_update: Any, on_delete: Any) -> frozenset[str]:
    """A foreign key's actions that write the child's rows, spelled ``<event> <action>`` (an unknown rule: both)."""
    out = set()
    for event, rule in (("update", on_update), ("delete", on_delete)):
        rule = str(rule or "").upper()
        if rule in ("CASCADE", "SET NULL", "SET DEFAULT"):
            out.add(f"{event} {'cascade' if rule == 'CASCADE' else 'set null'}")
        elif rule not in ("RESTRICT", "NO ACTION"):
            out |= {f"{event} cascade", f"{event} set null"}
    return frozenset(out)


def _mysql_constraints(cur: Any, schema: str | None, name: str, columns: list[str]) -> list[Constraint]:
    db = _rows(cur, "SELECT COALESCE(%s, DATABASE())", (schema,))[0][0]
    kind = _rows(cur, "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s", (db, name))
    _base_table(kind[0][0] if kind else None, ("BASE TABLE", "SYSTEM VERSIONED"))
    indexes: dict[str, set[str]] = {}
    for idx, col in _rows(
        cur,
        "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME = %s AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
        (db, name),
    ):
        # a functional key part (MySQL 8) has no column name: it may read any column
        indexes.setdefault(str(idx), set()).update([str(col).lower()] if col is not None else (c.lower() for c in columns))
    found = [Constraint("unique", n, frozenset(cols), primary=n == "PRIMARY") for n, cols in indexes.items()]
    keys = _rows(
        cur,
        "SELECT k.TABLE_SCHEMA, k.TABLE_NAME, k.REFERENCED_TABLE_SCHEMA, k.REFERENCED_TABLE_NAME, k.CONSTRAINT_NAME, "
        "r.UPDATE_RULE, r.DELETE_RULE, k.COLUMN_NAME, k.REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE k "
        "LEFT JOIN information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA "
        "AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME "
        "WHERE k.REFERENCED_TABLE_NAME IS NOT NULL AND ((k.TABLE_SCHEMA = %s AND k.TABLE_NAME = %s) "
        "OR (k.REFERENCED_TABLE_SCHEMA = %s AND k.REFERENCED_TABLE_NAME = %s)) "
        "ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        (db, name, db, name),
    )
    for (cs, ct, ps, pt, cname, on_update, on_delete), (froms, tos) in _foreign(keys).items():
        if str(cs) == str(db) and str(ct).lower() == name.lower():
            found.append(Constraint("foreign key", str(cname), frozenset(froms), _key(ps, pt, db), frozenset(tos)))
        if str(ps) == str(db) and str(pt).lower() == name.lower():
            found.append(Constraint("referenced", str(cname), frozenset(tos), _key(cs, ct, db), frozenset(froms),
                                    actions=_actions(on_update, on_delete)))  # fmt: skip
    try:  # MariaDB names the table of a CHECK; MySQL 8 only through TABLE_CONSTRAINTS
        checks = _rows(
            cur,
            "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
            "WHERE CONSTRAINT_SCHEMA = %s AND TABLE_NAME = %s",
            (db, name),
        )
    except Exception:
        checks = _rows(
            cur,
            "SELECT cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS cc "
            "JOIN information_schema.TABLE_CONSTRAINTS tc ON tc.CONSTRAINT_SCHEMA = cc.CONSTRAINT_SCHEMA "
            "AND tc.CONSTRAINT_NAME = cc.CONSTRAINT_NAME AND tc.CONSTRAINT_TYPE = 'CHECK' "
            "WHERE tc.TABLE_SCHEMA = %s AND tc.TABLE_NAME = %s",
            (db, name),
        )
    found.extend(Constraint("check", str(n), _mentioned(clause, "mysql", columns)) for n, clause in checks)
    computed = _rows(
        cur,
        "SELECT c.COLUMN_NAME, c.GENERATION_EXPRESSION, c.EXTRA LIKE '%%STORED%%' OR EXISTS (SELECT 1 FROM "
        "information_schema.STATISTICS s WHERE s.TABLE_SCHEMA = c.TABLE_SCHEMA AND s.TABLE_NAME = c.TABLE_NAME "
        "AND s.COLUMN_NAME = c.COLUMN_NAME) FROM information_schema.COLUMNS c WHERE c.TABLE_SCHEMA = %s "
        "AND c.TABLE_NAME = %s AND c.GENERATION_EXPRESSION IS NOT NULL AND c.GENERATION_EXPRESSION <> ''",
        (db, name),
    )
    generated = {str(g).lower(): _mentioned(text, "mysql", columns) for g, text, _ in computed}
    # a stored generated column, or a virtual one an index holds, is computed when its row is written (0308)
    found += _computed_on_write(generated, (str(g).lower() for g, _, on_write in computed if on_write))
    # a column given its DEFAULT (or left out of an INSERT) gets a value unless that default is NULL: MariaDB
    # quotes a literal default and spells a NULL one 'NULL'; a NOT NULL column without one gets '' or 0
    valued = _rows(
        cur,
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
        "AND ((COLUMN_DEFAULT IS NOT NULL AND UPPER(COLUMN_DEFAULT) <> 'NULL') OR IS_NULLABLE = 'NO')",
        (db, name),
    )
    if valued:
        found.append(Constraint("default", "DEFAULT", frozenset(str(r[0]).lower() for r in valued)))
    # a DEFAULT that is an expression over the row's other columns (``DEFAULT (CONCAT(full_name, ':', ssn))``): an
    # UPDATE giving the column its default computes it from the row's stored values (decision 0308); a literal
    # reads none (MariaDB quotes one; MySQL 8 marks an expression DEFAULT_GENERATED)
    for col, text in _rows(
        cur,
        "SELECT COLUMN_NAME, COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME = %s AND COLUMN_DEFAULT IS NOT NULL AND COLUMN_DEFAULT NOT LIKE '''%%' "
        "AND (VERSION() LIKE '%%MariaDB%%' OR EXTRA LIKE '%%DEFAULT_GENERATED%%')",
        (db, name),
    ):
        reads = _mentioned(str(text), "mysql", columns) - {str(col).lower()}
        if reads:
            found.append(Constraint("computed default", f"DEFAULT of {col}", reads, updated=frozenset({str(col).lower()})))
    # the columns a partitioning expression reads (``PARTITION BY KEY ()`` with no columns: the primary key)
    parted = _rows(
        cur,
        "SELECT DISTINCT PARTITION_METHOD, PARTITION_EXPRESSION, SUBPARTITION_METHOD, SUBPARTITION_EXPRESSION "
        "FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
        "AND PARTITION_METHOD IS NOT NULL",
        (db, name),
    )
    primary = next((c.columns for c in found if c.kind == "unique" and c.name == "PRIMARY"), frozenset())
    for method, text, sub_method, sub_text in parted:
        read: set[str] = set()
        for how, expr in ((method, text), (sub_method, sub_text)):
            if how is None:
                continue
            named = _mentioned(expr, "mysql", columns) if expr else frozenset()
            read |= named or (primary if "KEY" in str(how).upper() else {c.lower() for c in columns})
        found.append(Constraint("partition", "PARTITION", frozenset(read)))
    found.extend(_mysql_triggers(cur, str(db), name, columns))
    return _expand(found, generated)


_MYSQL_TRIGGERS = (
    "SELECT TRIGGER_NAME, LOWER(EVENT_MANIPULATION), ACTION_STATEMENT FROM information_schema.TRIGGERS "
    "WHERE EVENT_OBJECT_SCHEMA = %s AND EVENT_OBJECT_TABLE = %s ORDER BY TRIGGER_NAME"
)
_MYSQL_ROUTINES = "SELECT LOWER(ROUTINE_NAME), ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s"
_MYSQL_RELATIONS = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s"
_MYSQL_COLUMNS_OF = (
    "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
    "AND TABLE_NAME IN ({names})"
)


def _mysql_named_columns(
    cur: Any, db: str, name: str, words: set[str], listed: dict[str, dict[str, str]]
) -> dict[tuple[str, str], set[str]]:
    """The columns (lower case) of each table or view other than ``db.name`` that ``words`` name (``customers``,
    ``other.customers``), read per schema in one query (the schema's table list is read once, into ``listed``)."""
    wanted: dict[str, set[str]] = {}
    for word in words:
        schema, _, table = word.rpartition(".")
        schema = schema or db
        if schema.lower() == db.lower() and table == name.lower():
            continue
        if schema.lower() not in listed:
            listed[schema.lower()] = {str(r[0]).lower(): str(r[0]) for r in _rows(cur, _MYSQL_RELATIONS, (schema,))}
        if table in listed[schema.lower()]:
            wanted.setdefault(schema, set()).add(listed[schema.lower()][table])
    found: dict[tuple[str, str], set[str]] = {}
    for schema, tables in sorted(wanted.items()):
        sql = _MYSQL_COLUMNS_OF.format(names=", ".join(["%s"] * len(tables)))
        for s, t, c in _rows(cur, sql, (schema, *sorted(tables))):
            found.setdefault((str(s), str(t)), set()).add(str(c).lower())
    return found


def _mysql_triggers(cur: Any, db: str, name: str, columns: list[str]) -> list[Constraint]:
    """MySQL/MariaDB: the application's triggers on table ``name`` (decision 0386), read as SQLite's are (0375).
    Each fires on the caller's write and runs on the row's stored values (``OLD.ssn``, ``NEW.ssn`` of a column the
    write leaves as stored) and on any table its body names, out of masking's sight: an audit copy of
    ``OLD.full_name`` into a narrower column fails by the name's length, a ``SIGNAL`` by what a value holds. One
    constraint for the firing table's columns the body names (not on INSERT unless it reads the table itself:
    ``NEW`` then holds the caller's values), one per other table or view it names (the columns of it named, all of
    them when none is); of a table the body only inserts into, what decides whether that insert fails: the columns
    of its unique keys the body names, and the parent columns its foreign keys reference. The body of a stored
    routine it names counts as its own: a ``CALL audit(NEW.id)`` reads what the procedure reads. Words are the
    dialect's tokens: a word that merely names a column only refuses more. Foreign keys' actions fire no trigger
    on MySQL/MariaDB."""
    from governed_db.masking import stored_code

    triggers = _rows(cur, _MYSQL_TRIGGERS, (db, name))
    if not triggers:
        return []
    routines: dict[str, str] | None = None
    listed: dict[str, dict[str, str]] = {}  # schema (lower case) -> its tables and views by lower-case name
    every = frozenset(c.lower() for c in columns)
    out: list[Constraint] = []
    for trig, event, body in triggers:
        texts = [str(body or "")]
        words = set(stored_code.named_relations(texts[0], "mysql") or re.findall(r"[\w$]+", texts[0].lower()))
        if routines is None:
            routines = {str(r): str(d or "") for r, d in _rows(cur, _MYSQL_ROUTINES, (db,))}
        seen: set[str] = set()
        while called := sorted((words & set(routines)) - seen):
            for r in called:  # a routine's body reads its tables for the trigger, and those it calls in turn
                seen.add(r)
                texts.append(routines[r])
                words |= set(stored_code.named_relations(routines[r], "mysql") or re.findall(r"[\w$]+", routines[r].lower()))
        events = frozenset({str(event)}) & {"insert", "update", "delete"} or frozenset({"insert", "update", "delete"})
        reads_itself = name.lower() in words or f"{db}.{name}".lower() in words
        out.append(Constraint("trigger", str(trig), every & words, events=events if reads_itself else events - {"insert"}))
        for (s, t), cols in _mysql_named_columns(cur, db, name, words, listed).items():
            named = frozenset(cols & words) or frozenset(cols)
            if s.lower() != db.lower() or not _only_inserted_into(texts, t.lower()):
                out.append(Constraint("trigger", str(trig), frozenset(), _key(s, t, db), named, events=events))
                continue
            # a table the body only inserts into: its unique keys compare the inserted values with its stored
            # ones, its foreign keys with the parent's (its other columns are written, not read)
            unique = _rows(cur, _MYSQL_UNIQUE_COLUMNS, (s, t))
            keyed = frozenset(str(r[0]).lower() for r in unique) & named
            if keyed:
                out.append(Constraint("trigger", str(trig), frozenset(), _key(s, t, db), keyed, events=events))
            for ps, pt, pc in _rows(cur, _MYSQL_PARENTS, (s, t)):
                out.append(Constraint("trigger", str(trig), frozenset(), _key(ps, pt, db),
                                      frozenset({str(pc).lower()}), events=events))  # fmt: skip
    return out


_MYSQL_UNIQUE_COLUMNS = (
    "SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
    "AND NON_UNIQUE = 0"
)
_MYSQL_PARENTS = (
    "SELECT REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME FROM "
    "information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s "
    "AND REFERENCED_TABLE_NAME IS NOT NULL"
)


#: what precedes a table the statement inserts into (``INSERT IGNORE INTO``, ``REPLACE``)
_INSERT_TARGET = re.compile(
    r"\b(?:INSERT|REPLACE)(?:\s+(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE))*(?:\s+INTO)?\s+\Z", re.IGNORECASE
)


def _only_inserted_into(texts: list[str], table: str) -> bool:
    """Whether ``table`` is named in ``texts`` only as the table of an ``INSERT``/``REPLACE`` (none reads it)."""
    # qualified (``test.log``) or not, and as the qualifier of a column (``log.cid``: a read)
    mention = re.compile(rf"(?<![\w$.`])(?:`?[\w$]+`?\s*\.\s*)?`?{re.escape(table)}`?(?![\w$`])", re.IGNORECASE)
    found = False
    for text in texts:
        for m in mention.finditer(text):
            found = True
            if _INSERT_TARGET.search(text[: m.start()]) is None:
                return False
    return found


def _duckdb_constraints(cur: Any, schema: str | None, name: str, columns: list[str]) -> list[Constraint]:
    where = "lower(table_name) = lower(?) AND lower(schema_name) = lower(COALESCE(?, current_schema()))"
    kind = _rows(
        cur,
        "SELECT table_type FROM information_schema.tables WHERE lower(table_name) = lower(?) "
        "AND lower(table_schema) = lower(COALESCE(?, current_schema()))",
        (name, schema),
    )
    _base_table(kind[0][0] if kind else None, ("BASE TABLE", "LOCAL TEMPORARY"))
    found: list[Constraint] = []
    for kind, cname, mine, child, child_schema, parent, theirs in _rows(
        cur,
        "SELECT constraint_type, constraint_name, constraint_column_names, table_name, schema_name, "
        "referenced_table, referenced_column_names FROM duckdb_constraints() "
        f"WHERE constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY', 'CHECK') AND (({where}) "
        "OR (constraint_type = 'FOREIGN KEY' AND lower(referenced_table) = lower(?)))",
        (name, schema, name),
    ):
        ours = str(child).lower() == name.lower()
        if kind in ("PRIMARY KEY", "UNIQUE") and ours:
            found.append(Constraint("unique", str(cname), _names(mine), primary=kind == "PRIMARY KEY"))
        elif kind == "CHECK" and ours:
            found.append(Constraint("check", str(cname), _names(mine)))
        elif kind == "FOREIGN KEY":
            if ours:
                found.append(Constraint("foreign key", str(cname), _names(mine), _key(child_schema, parent), _names(theirs)))
            if str(parent).lower() == name.lower():
                found.append(Constraint("referenced", str(cname), _names(theirs), _key(child_schema, child), _names(mine)))
    indexed = set().union(*(c.columns for c in found if c.kind in ("unique", "foreign key")))
    for idx, sql, is_unique in _rows(cur, f"SELECT index_name, sql, is_unique FROM duckdb_indexes() WHERE {where}", (name, schema)):
        cols = _mentioned(sql, "duckdb", columns, statement=True)
        indexed |= cols
        if is_unique:
            found.append(Constraint("unique", str(idx), cols))
    # an UPDATE of an indexed column is a delete and an insert in DuckDB: it fails while child rows point at
    # the row, whichever column it changes; an UPDATE also sets every column a CHECK reads, so with a CHECK over
    # an indexed column every UPDATE is one
    if any(c.columns & indexed for c in found if c.kind == "check"):
        indexed = {c.lower() for c in columns}
    found = [
        Constraint(c.kind, c.name, c.columns, c.other, c.other_columns, frozenset(indexed | c.columns))
        if c.kind == "referenced"
        else c
        for c in found
    ]
    generated = {
        str(g).lower(): _mentioned(text, "duckdb", columns)
        for g, text in _rows(
            cur,
            "SELECT column_name, generation_expression FROM information_schema.columns WHERE lower(table_name) = "
            "lower(?) AND lower(table_schema) = lower(COALESCE(?, current_schema())) AND is_generated = 'ALWAYS'",
            (name, schema),
        )
    }
    # a column given its DEFAULT (or left out of an INSERT) gets a value when that default is one: DuckDB spells
    # a NULL default 'NULL' (a NOT NULL column without one fails whatever is stored)
    valued = _rows(
        cur,
        "SELECT column_name FROM information_schema.columns WHERE lower(table_name) = lower(?) AND "
        "lower(table_schema) = lower(COALESCE(?, current_schema())) AND column_default IS NOT NULL AND "
        "upper(column_default) <> 'NULL' AND coalesce(is_generated, 'NEVER') <> 'ALWAYS'",
        (name, schema),
    )
    if valued:
        found.append(Constraint("default", "DEFAULT", frozenset(str(r[0]).lower() for r in valued)))
    return _expand(found, generated)


_GENERATED_SQL = {
    "duckdb": (
        "SELECT column_name, generation_expression FROM information_schema.columns WHERE lower(table_name) = "
        "lower(?) AND lower(table_schema) = lower(COALESCE(?, current_schema())) AND is_generated = 'ALWAYS'"
    ),
    # and each column whose DEFAULT is an expression (MariaDB quotes a literal one; MySQL 8 marks an expression
    # DEFAULT_GENERATED): ``ref DEFAULT (RIGHT(ssn, 4))`` holds, in every row written without it, a value the
    # database derived from the row's SSN (decision 0402)
    "mysql": (
        "SELECT COLUMN_NAME, COALESCE(NULLIF(GENERATION_EXPRESSION, ''), COLUMN_DEFAULT) FROM "
        "information_schema.COLUMNS WHERE TABLE_NAME = %s AND TABLE_SCHEMA = COALESCE(%s, DATABASE()) "
        "AND (GENERATION_EXPRESSION <> '' OR (COLUMN_DEFAULT NOT LIKE '''%%' AND UPPER(COLUMN_DEFAULT) <> 'NULL' "
        "AND (VERSION() LIKE '%%MariaDB%%' OR EXTRA LIKE '%%DEFAULT_GENERATED%%')))"
    ),
}


def read_generated(
    conn: Any, dialect: str, table_sql: str, schema: str | None, name: str, columns: list[str]
) -> dict[str, frozenset[str]] | None:
    """Each generated column of the table and the columns its expression reads (``search_name AS
    (lower(full_name))``: full_name), and on MySQL/MariaDB each column whose DEFAULT is an expression, with the
    columns it reads; ``None`` when unreadable. SQLite's generated columns are not among the columns
    ``pragma_table_info`` lists (a ``*`` over them is untraced, so masked whole)."""
    fam = family(dialect)
    if fam not in ("duckdb", "mysql", "postgres"):
        return {}

    def work(cur: Any) -> dict[str, frozenset[str]]:
        if fam == "postgres":
            return {str(g).lower(): _names(deps) for g, deps in _rows(cur, _PG_GENERATED, (table_sql,))}
        rows = _rows(cur, _GENERATED_SQL[fam], (name, schema))
        return {str(g).lower(): _mentioned(text, fam, columns) for g, text in rows}

    return guarded(conn, dialect, work)


_PG_COMPOSITE_FIELDS = (
    "SELECT a.attname::text, ARRAY(SELECT f.attname::text FROM pg_catalog.pg_attribute f "
    "WHERE f.attrelid = t.typrelid AND f.attnum > 0 AND NOT f.attisdropped ORDER BY f.attnum) "
    "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t0 ON t0.oid = a.atttypid "
    "JOIN pg_catalog.pg_type t ON t.oid = CASE WHEN t0.typcategory = 'A' THEN t0.typelem ELSE t0.oid END "
    "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped AND t.typtype = 'c'"
)


def read_composite_fields(conn: Any, dialect: str, table_sql: str) -> dict[str, list[str]] | None:
    """PostgreSQL: each column of a composite type (or an array of one) and the names of that type's fields
    (``info addr`` of ``addr AS (holder text, ssn text)``: holder, ssn); ``None`` when unreadable, ``{}`` on
    other databases (decision 0261)."""
    if family(dialect) != "postgres":
        return {}

    def work(cur: Any) -> dict[str, list[str]]:
        return {str(c).lower(): [str(f) for f in fields or ()] for c, fields in _rows(cur, _PG_COMPOSITE_FIELDS, (table_sql,))}

    return guarded(conn, dialect, work)


#: what :func:`read_view_definition` answers for a view whose definition it cannot give (decision 0382)
UNREADABLE_VIEW = ""


def read_view_definition(conn: Any, dialect: str, table_sql: str) -> str | None:
    """The query a view (or PostgreSQL materialized view) is defined by: ``pg_get_viewdef``, MySQL's
    ``VIEW_DEFINITION``, the ``AS`` query of SQLite's and DuckDB's stored ``CREATE VIEW``; ``None`` for a table
    (decision 0262); :data:`UNREADABLE_VIEW` for a view whose definition the catalog does not give (MySQL shows
    none to a user without ``SHOW VIEW``) or that cannot be parsed, and when the read fails: the guard refuses to
    read it, as nothing says what it does with masked values (decisions 0382, 0393)."""
    fam = family(dialect)
    if fam is None:
        return None
    try:
        node = sqlglot.parse_one(table_sql, into=exp.Table, read=fam)
    except Exception:
        return None
    name, db = node.name, (node.db or None)

    def work(cur: Any) -> str | None:
        if fam == "postgres":
            rows = _rows(
                cur,
                "SELECT pg_catalog.pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c "
                "WHERE c.oid = to_regclass(%s) AND c.relkind IN ('v', 'm')",
                (table_sql,),
            )
            if not rows:
                return _pg_partition_definition(cur, table_sql)
            return str(rows[0][0]) if rows[0][0] else UNREADABLE_VIEW
        if fam == "mysql":
            rows = _rows(cur, _MYSQL_VIEW, (db, name))
            if not rows:
                return None
            return str(rows[0][0]) if rows[0][0] else UNREADABLE_VIEW
        if fam == "sqlite":
            rows = _sqlite_view_sql(cur, db, name)
        else:
            rows = _rows(
                cur,
                "SELECT sql FROM duckdb_views() WHERE NOT internal AND lower(view_name) = lower(?) "
                "AND (? IS NULL OR lower(schema_name) = lower(?)) ORDER BY temporary DESC",
                (name, db, db),
            )
        if not rows:
            return None
        try:
            create = sqlglot.parse_one(str(rows[0][0] or ""), read=fam)
        except Exception:
            return UNREADABLE_VIEW
        query = create.expression if isinstance(create, exp.Create) else None
        return query.sql(dialect=fam) if isinstance(query, exp.Query) else UNREADABLE_VIEW

    # a read that fails (not an empty answer) says nothing of what the relation is: read as a view whose definition
    # cannot be given, refused where a masked value may lie beneath, not as a table (decision 0393)
    found = guarded(conn, dialect, lambda cur: (work(cur),))
    return UNREADABLE_VIEW if found is None else found[0]


def read_placed(conn: Any, dialect: str, table_sql: str) -> frozenset[str]:
    """PostgreSQL: the lower-case columns that pick which table of its family a row of ``table_sql`` is stored in:
    a partitioned table's partition keys, its partitioned partitions' too (every column of a level keyed on an
    expression, decision 0384), and an inheritance parent's descendants' CHECK constraints it does not hold itself
    (and its own ``NO INHERIT`` ones, which its children's rows need not meet: decision 0399). They decide its
    ``tableoid`` and the order its rows are read in. Empty for any other relation, on other databases, or when the
    catalog read fails."""
    if family(dialect) != "postgres":
        return frozenset()

    def work(cur: Any) -> frozenset[str]:
        return frozenset(str(r[0]).lower() for r in _rows(cur, _PG_PLACED, (table_sql,) * 5))

    return guarded(conn, dialect, work) or frozenset()


def read_held_rows(conn: Any, dialect: str, table_sql: str) -> str | None:
    """PostgreSQL: the rows an inheritance child holds out of its family's, as ``SELECT * FROM <child> WHERE <its
    CHECK constraints that a root of its family does not hold>`` (the application routes a row to the child whose
    CHECK admits its value: ``SELECT count(*) FROM t_lo`` counted the names before 'N'), judged where the child is
    read (decision 0399); a partition's, its bound (its definition as a view, 0384); ``None`` for a table of no
    family, one whose constraints all hold for the whole family, on other databases, or when the catalog read
    fails."""
    if family(dialect) != "postgres":
        return None

    def work(cur: Any) -> str | None:
        rows = _rows(cur, _PG_HELD, (table_sql,) * 2)
        checks = [f"({r[1]})" for r in rows if r[1]]
        if checks:
            return f"SELECT * FROM {rows[0][0]} WHERE {' AND '.join(checks)}"
        return _pg_partition_definition(cur, table_sql)

    return guarded(conn, dialect, work)


def row_pickers(conn: Any, dialect: str) -> list[tuple[str, str, frozenset[str]]] | None:
    """PostgreSQL: the relations whose rows a condition on column values picks, each as ``(table, what,
    lower-case columns the condition reads)``: a partial index (its predicate), each partition of a partitioned
    table at any depth (the table's key: every column where it holds an expression; decision 0431), an inheritance child (a CHECK constraint of its), a materialized
    view (every column of each relation its query uses, a WHERE's among them). Their row counts
    in the catalog count the rows meeting the condition (decision 0399). ``[]`` on other databases; ``None`` when
    the catalog cannot be read."""
    if family(dialect) != "postgres":
        return []

    def work(cur: Any) -> list[tuple[str, str, frozenset[str]]]:
        out = []
        for table, what, names, predicate in _rows(cur, _PG_ROW_PICKERS):
            if names is None:
                names = _predicate_columns(str(predicate or ""))
            out.append((str(table), f"{what} {table}", frozenset(str(n).lower() for n in names)))
        return out

    return guarded(conn, dialect, work)


def _predicate_columns(predicate: str) -> list[str]:
    """The columns a partial index's predicate (as ``pg_get_expr`` gives it) reads; ``["*"]`` (any) if unparsable."""
    try:
        tree = sqlglot.parse_one(predicate, read="postgres")
    except Exception:
        return ["*"]
    return [c.name for c in tree.find_all(exp.Column)] or ["*"]


#: see :func:`row_pickers`: (table, what, its columns, or NULL and a partial index's predicate)
_PG_ROW_PICKERS = (
    "SELECT x.indrelid::regclass::text, 'partial index ' || x.indexrelid::regclass::text || ' of', NULL::text[], "
    "pg_catalog.pg_get_expr(x.indpred, x.indrelid) FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c "
    "ON c.oid = x.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE x.indpred IS NOT NULL "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "UNION ALL SELECT k.conrelid::regclass::text, 'inheritance child', array_agg(a.attname::text), NULL "
    "FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) "
    "WHERE k.contype = 'c' AND NOT c.relispartition "
    "AND EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = k.conrelid) GROUP BY k.conrelid "
    "UNION ALL SELECT pt.partrelid::regclass::text, 'partition ' || d.relid::regclass::text || ' of', "
    "array_agg(a.attname::text), NULL "
    "FROM pg_catalog.pg_partitioned_table pt JOIN pg_catalog.pg_attribute a ON a.attrelid = pt.partrelid "
    "AND a.attnum > 0 AND NOT a.attisdropped AND (a.attnum = ANY (pt.partattrs::int2[]) OR pt.partexprs IS NOT NULL) "
    "CROSS JOIN LATERAL pg_catalog.pg_partition_tree(pt.partrelid) d WHERE d.relid <> pt.partrelid "
    "GROUP BY pt.partrelid, d.relid "
    "UNION ALL SELECT d.refobjid::regclass::text, 'materialized view ' || r.ev_class::regclass::text || ' over', "
    "array_agg(a.attname::text), NULL FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class m ON m.oid = r.ev_class "
    "AND m.relkind = 'm' JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass "
    "AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> r.ev_class "
    "AND d.refobjsubid > 0 JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
    "GROUP BY d.refobjid, r.ev_class ORDER BY 1, 2"
)


def read_row_policies(conn: Any, dialect: str, table_sql: str) -> tuple[str, str | None] | None:
    """PostgreSQL: the rows of ``table_sql`` its row-level security policies let this connection's user see and
    write, as ``SELECT * FROM <table> WHERE <each policy's USING and WITH CHECK>`` (ANDed: what matters is which
    columns decide, not how they combine), and the same of what a plain SELECT applies: the USING of the ``FOR
    ALL`` and ``FOR SELECT`` policies (``None`` where there is none: a ``FOR INSERT`` policy, a WITH CHECK, picks
    no row a read returns, decision 0400);
    ``None`` where row security is not active for the user (a superuser, the owner of a table without FORCE ROW
    LEVEL SECURITY, one with BYPASSRLS), where no policy holds an expression, on other databases, or when the
    catalog read fails. A policy ``USING (full_name < 'N')`` decides which rows every statement reads, as a view's
    WHERE does: judged so where the table is read (decision 0385)."""
    if family(dialect) != "postgres":
        return None

    def work(cur: Any) -> tuple[str, str | None] | None:
        rows = _rows(
            cur,
            "SELECT c.oid::regclass::text, pg_catalog.pg_get_expr(p.polqual, p.polrelid), "
            "pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), p.polcmd IN ('*', 'r') FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_policy p ON p.polrelid = c.oid "
            "WHERE c.oid = to_regclass(%s) AND pg_catalog.row_security_active(c.oid) ORDER BY p.polname",
            (table_sql,),
        )

        def rows_of(quals: list[str]) -> str | None:
            return f"SELECT * FROM {rows[0][0]} WHERE {' AND '.join(quals)}" if quals else None

        every = rows_of([f"({q})" for r in rows for q in r[1:3] if q])
        reading = rows_of([f"({r[1]})" for r in rows if r[3] and r[1]])  # a read meets no WITH CHECK
        return None if every is None else (every, reading)

    return guarded(conn, dialect, work)


def _pg_partition_definition(cur: Any, table_sql: str) -> str | None:
    """A PostgreSQL partition holds the rows of its partitioned root that its bound (and its ancestors') admits:
    the query ``SELECT * FROM root WHERE <partition constraint>``, judged as a view's (decision 0384). A partition
    of a table partitioned by a masked column is a filter on it: ``SELECT count(*) FROM t_lo`` counted the names
    before 'N'. ``None`` for a relation that is no partition."""
    rows = _rows(
        cur,
        "SELECT pg_catalog.pg_partition_root(c.oid)::regclass::text, pg_catalog.pg_get_partition_constraintdef(c.oid) "
        "FROM pg_catalog.pg_class c WHERE c.oid = to_regclass(%s) AND c.relispartition",
        (table_sql,),
    )
    if not rows:
        return None
    root, bound = rows[0]
    if not root:
        return UNREADABLE_VIEW
    return f"SELECT * FROM {root}" + (f" WHERE {bound}" if bound else "")


def _sqlite_view_sql(cur: Any, db: str | None, name: str) -> list[Sequence[Any]]:
    """The stored ``CREATE VIEW`` of SQLite's relation ``name`` (as one row), or no row for a table or nothing.
    Resolved as SQLite resolves it: in ``db`` when named, else in ``temp``, ``main`` and then each attached
    database in turn, the first holding a relation of that name deciding; names are case-insensitive (``V5`` is
    the view ``v5``, decision 0374). A view in an attached database was read as a table (it told copies apart)."""
    if db:
        schemas = [db]
    else:
        schemas = ["temp", "main", *(str(r[1]) for r in _rows(cur, "PRAGMA database_list")
                                     if str(r[1]).lower() not in ("main", "temp"))]  # fmt: skip
    for schema in schemas:
        master = "sqlite_temp_master" if schema.lower() == "temp" else f'"{schema.replace(chr(34), chr(34) * 2)}".sqlite_master'
        found = _rows(cur, f"SELECT type, sql FROM {master} WHERE type IN ('table', 'view') AND name = ? COLLATE NOCASE",
                      (name,))
        if found:
            return [(found[0][1],)] if found[0][0] == "view" else []
    return []


#: the server's own schemas: a view there is the server's (``information_schema.columns``, ``pg_views``,
#: MariaDB's ``sys``), read under the system-catalog rules, not judged as the application's (decision 0382). Per
#: server, compared with the schema the catalog resolves the relation to, exactly: on PostgreSQL a schema the
#: caller names ``mysql``, ``sys`` or ``"Pg_Catalog"`` is the application's (such views told copies apart)
_SYSTEM_SCHEMAS = {
    "postgres": frozenset({"pg_catalog", "information_schema", "pg_toast"}),
    "mysql": frozenset({"information_schema", "mysql", "performance_schema", "sys"}),
}


def system_view(conn: Any, dialect: str, table_sql: str) -> bool:
    """Is the view ``table_sql`` one of the server's own (in one of its system schemas, as the catalog resolves
    it)? PostgreSQL finds an unqualified ``pg_views`` in ``pg_catalog`` (search_path: a view of the caller's in a
    schema named like a system one is the caller's); MySQL's unqualified names are the current database's, and
    ``INFORMATION_SCHEMA`` is found in any case."""
    fam = family(dialect)
    if fam not in ("postgres", "mysql"):
        return False
    system = _SYSTEM_SCHEMAS[fam]
    try:
        node = sqlglot.parse_one(table_sql, into=exp.Table, read=fam)
    except Exception:
        return False
    if fam == "mysql" and node.db:
        return node.db.lower() == "information_schema" or node.db in system

    def work(cur: Any) -> bool:
        if fam == "postgres":
            rows = _rows(
                cur,
                "SELECT n.nspname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                "ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
                (table_sql,),
            )
        else:
            rows = _rows(cur, "SELECT DATABASE()")
        found = str(rows[0][0] or "") if rows else ""
        return found in system or (fam == "mysql" and found.lower() == "information_schema")

    return bool(guarded(conn, dialect, work))


def read_constraints(
    conn: Any, dialect: str, table_sql: str, schema: str | None, name: str, columns: list[str],
    reach: Reach | None = None,
) -> list[Constraint] | None:
    """The unique keys, foreign keys (both ways) and CHECK constraints of one table; ``None`` when unreadable.
    ``reach`` tells the relations the application's functions a text names read (PostgreSQL: its triggers', CHECKs',
    DEFAULTs' calls, decision 0397)."""
    fam = family(dialect)
    if fam is None:
        return None

    def work(cur: Any) -> list[Constraint]:
        if fam == "sqlite":
            return _sqlite_constraints(cur, name, columns)
        if fam == "postgres":
            return _pg_constraints(cur, table_sql, reach)
        if fam == "mysql":
            return _mysql_constraints(cur, schema, name, columns)
        return _duckdb_constraints(cur, schema, name, columns)

    return guarded(conn, dialect, work)


# -- how a relation's rows come back when nothing orders them (decision 0160) ----------------------------------
@dataclass(frozen=True)
class OrderFacts:
    """What decides the order of a relation's rows read without ORDER BY (identity-independent)."""

    #: ``table`` (rows the engine stores; its indexes are listed), ``view``, or ``other`` (nothing known)
    kind: str
    #: the lower-case columns of each index; an empty set for one over an expression (any column)
    indexes: tuple[frozenset[str], ...] = ()
    #: unique keys that are never NULL, best first, as stored (a row locator such as ``rowid`` or ``ctid`` too)
    keys: tuple[tuple[str, ...], ...] = ()
    #: the relations a view reads (``None``: unknown)
    reads: tuple[str, ...] | None = None
    #: PostgreSQL: tables inherit from it, whose rows it returns too, and its keys hold for its own rows only
    inherited: bool = False
    #: SQLite: the lower-case columns of each unique index (an empty set for one over an expression), which SQLite
    #: checks row by row as an UPDATE changes them (decision 0347)
    unique: tuple[frozenset[str], ...] = ()
    #: SQLite: those of them that are not partial (a WHERE naming each column picks one row at most)
    unique_whole: tuple[frozenset[str], ...] = ()
    #: SQLite: a trigger (of its schema, or a TEMP one) fires on its rows: a write may change columns it does not
    #: name, row by row in read order (decision 0337); unknown counts as True
    triggered: bool = True
    #: PostgreSQL: the lower-case columns the partition keys of a partitioned table (and of its partitioned
    #: partitions) read (every column of a level keyed on an expression): the partition a row is stored in, so its
    #: ``tableoid`` and the order the table's rows are read in, follow their values (decision 0384)
    placed: frozenset[str] = frozenset()


# every read names the schema (``aux.c`` is not ``main.c``; NULL: the one an unqualified name finds)
_SQLITE_KIND = (
    "SELECT type, wr, schema FROM pragma_table_list WHERE name = ? AND (? IS NULL OR lower(schema) = lower(?)) "
    "ORDER BY schema = 'temp' DESC, schema = 'main' DESC"
)
_SQLITE_INDEXES = (
    "SELECT il.name, ii.name, ii.cid, il.\"unique\", il.partial FROM pragma_index_list(?, ?) il, "
    "pragma_index_xinfo(il.name, ?) ii "
    "WHERE ii.key"
)
_SQLITE_PK = "SELECT name, upper(type), \"notnull\" FROM pragma_table_info(?, ?) WHERE pk > 0 ORDER BY pk"
_SQLITE_VIEW = "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?"
_SQLITE_PK_INDEX = "SELECT 1 FROM pragma_index_list(?, ?) WHERE origin = 'pk'"
#: each column of the table's unique indexes other than its primary key's, with the collation the index compares
#: it under and whether the column is declared NOT NULL (an expression's ``notnull`` is NULL)
_SQLITE_UNIQUE = (
    "SELECT il.name, ii.name, upper(ii.coll), ti.\"notnull\" FROM pragma_index_list(?, ?) il "
    "JOIN pragma_index_xinfo(il.name, ?) ii LEFT JOIN pragma_table_info(?, ?) ti ON ti.cid = ii.cid "
    "WHERE ii.key AND il.\"unique\" AND NOT il.partial AND il.origin <> 'pk' ORDER BY il.seq DESC, ii.seqno"
)
_COLLATE = re.compile(r"\bCOLLATE\b", re.IGNORECASE)
_PG_ORDER = (
    "SELECT c.relkind::text, i.indexrelid::bigint, i.indisprimary, i.indexprs IS NOT NULL, a.attname::text, "
    "c.relhassubclass, i.indimmediate, "
    # a UNIQUE constraint (not a unique index: that may be partial, or compare under another collation or operator
    # class than GROUP BY) whose columns are all NOT NULL (decision 0297)
    "i.indisunique AND i.indpred IS NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k "
    "WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid AND k.contype = 'u'), a.attnotnull "
    "FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid "
    "LEFT JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n) ON true "
    "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
    "WHERE c.oid = to_regclass(%s) ORDER BY i.indexrelid, k.n"
)
#: the columns a partitioned table's rows are placed by: each level's key columns, every column of a level whose
#: key holds an expression (decision 0384); an inheritance parent's: the columns of its descendants' CHECK
#: constraints it does not hold (by name), and of its own NO INHERIT ones (decision 0399)
_PG_PLACED = (
    "WITH RECURSIVE down(oid) AS (SELECT i.inhrelid FROM pg_catalog.pg_inherits i "
    "WHERE i.inhparent = to_regclass(%s) UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i "
    "JOIN down ON i.inhparent = down.oid) "
    "SELECT DISTINCT a.attname::text FROM pg_catalog.pg_partition_tree(to_regclass(%s)) t "
    "JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = t.relid "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped "
    "AND (a.attnum = ANY (pt.partattrs::int2[]) OR pt.partexprs IS NOT NULL) "
    "UNION SELECT a.attname::text FROM pg_catalog.pg_constraint k "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) "
    "WHERE k.contype = 'c' AND NOT (SELECT c.relkind = 'p' FROM pg_catalog.pg_class c WHERE c.oid = to_regclass(%s)) "
    "AND (k.conrelid IN (SELECT oid FROM down) AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint o "
    "WHERE o.contype = 'c' AND o.conrelid = to_regclass(%s) AND o.conname = k.conname) "
    "OR k.conrelid = to_regclass(%s) AND k.connoinherit AND EXISTS (SELECT 1 FROM down))"
)
#: an inheritance child's CHECK constraints (as ``pg_get_expr`` gives them) that some root of its family lacks
#: (by name): the constraints a root holds, every table of its family holds (decision 0399). No row for a table
#: without parents or for a partition
_PG_HELD = (
    "WITH RECURSIVE up(oid) AS (SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = to_regclass(%s) "
    "UNION SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.oid) "
    "SELECT c.oid::regclass::text, pg_catalog.pg_get_expr(k.conbin, k.conrelid) FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_constraint k ON k.conrelid = c.oid AND k.contype = 'c' "
    "WHERE c.oid = to_regclass(%s) AND NOT c.relispartition AND EXISTS (SELECT 1 FROM up "
    "WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = up.oid) "
    "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint o WHERE o.conrelid = up.oid AND o.contype = 'c' "
    "AND o.conname = k.conname)) ORDER BY k.conname"
)
_PG_VIEW_READS = (
    "SELECT DISTINCT d.refobjid::regclass::text FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_depend d "
    "ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid "
    "AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> r.ev_class WHERE r.ev_class = to_regclass(%s)"
)
_MYSQL_ORDER = (
    "SELECT t.TABLE_TYPE, s.INDEX_NAME, s.NON_UNIQUE, s.NULLABLE, s.COLUMN_NAME, t.TABLE_NAME "
    "FROM information_schema.TABLES t "
    "LEFT JOIN information_schema.STATISTICS s ON s.TABLE_SCHEMA = t.TABLE_SCHEMA "
    "AND BINARY s.TABLE_NAME = BINARY t.TABLE_NAME "
    "WHERE t.TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND t.TABLE_NAME = %s ORDER BY s.INDEX_NAME, s.SEQ_IN_INDEX"
)
_MYSQL_VIEW = (
    "SELECT VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) "
    "AND TABLE_NAME = %s"
)


def read_order(conn: Any, dialect: str, table_sql: str, schema: str | None, name: str) -> OrderFacts | None:
    """What decides the order of a relation's rows read without ORDER BY; ``None`` when unreadable.

    DuckDB scans in insertion order (its indexes serve point lookups and constraints, never a scan's order), so
    nothing of it is read."""
    fam = family(dialect)
    if fam == "duckdb":
        # the primary key (never NULL) only names a key for grouping (decision 0283); unreadable, none
        primary = guarded(conn, dialect, lambda cur: _duckdb_primary(cur, schema, name)) or ()
        return OrderFacts("table", (), (("rowid",), *primary))
    if fam == "sqlite":
        return guarded(conn, dialect, lambda cur: _sqlite_order(cur, name, schema))
    if fam == "postgres":
        return guarded(conn, dialect, lambda cur: _pg_order(cur, table_sql))
    if fam == "mysql":
        return guarded(conn, dialect, lambda cur: _mysql_order(cur, schema, name))
    return None


def _duckdb_primary(cur: Any, schema: str | None, name: str) -> tuple[tuple[str, ...], ...]:
    rows = _rows(
        cur,
        "SELECT k.constraint_column_names, t.sql, current_setting('default_collation'), k.constraint_type = 'UNIQUE' "
        "AND EXISTS (SELECT 1 FROM unnest(k.constraint_column_names) u(n) JOIN duckdb_columns() dc "
        "ON dc.table_oid = k.table_oid AND dc.column_name = u.n AND dc.is_nullable) "
        "FROM duckdb_constraints() k JOIN duckdb_tables() t ON t.table_oid = k.table_oid "
        # a UNIQUE constraint over NOT NULL columns is a key as well (decision 0297); one over a nullable column is
        # none (NULLs are never equal, GROUP BY puts them together). Primary keys first
        "WHERE k.constraint_type IN ('PRIMARY KEY', 'UNIQUE') "
        "AND lower(k.table_name) = lower(?) AND lower(k.schema_name) = lower(COALESCE(?, current_schema())) "
        # one such table in every attached database (the one the name finds), or its key may be another's
        "AND (SELECT count(*) FROM duckdb_tables() o WHERE lower(o.table_name) = lower(k.table_name) "
        "AND lower(o.schema_name) = lower(k.schema_name)) + (SELECT count(*) FROM duckdb_views() v "
        "WHERE NOT v.internal AND lower(v.view_name) = lower(k.table_name) "
        "AND lower(v.schema_name) = lower(k.schema_name)) = 1 "
        "ORDER BY k.constraint_type = 'UNIQUE', k.constraint_index",
        (name, schema),
    )
    # the key's index compares text as stored; GROUP BY a column declared ``COLLATE NOCASE`` (or under a default
    # collation) merges what it keeps apart (decision 0284): such a table's key is none here
    return tuple(
        tuple(str(c) for c in r[0])
        for r in rows
        if r[0] and not _COLLATE.search(str(r[1] or "")) and not r[2] and not r[3]
    )


def _sqlite_order(cur: Any, name: str, schema: str | None = None) -> OrderFacts:
    try:
        cur.execute(_SQLITE_KIND, (name, schema, schema))
        found = cur.fetchone()
    except Exception:  # before SQLite 3.37 (no pragma_table_list): the schema table says as much, less WITHOUT ROWID
        if schema is not None:
            return OrderFacts("other")  # another database's table: not read from main's schema table
        cur.execute("SELECT type, 0, NULL FROM sqlite_master WHERE name = ? AND type IN ('table', 'view')", (name,))
        found = cur.fetchone()
    if found is None:
        return OrderFacts("other")
    kind, without_rowid = str(_values(found)[0]), bool(_values(found)[1])
    where = _values(found)[2]
    schema = None if where is None else str(where)
    if kind == "virtual":
        cur.execute(
            "SELECT sql FROM sqlite_master WHERE name = ? UNION ALL SELECT sql FROM sqlite_temp_master WHERE name = ?",
            (name, name),
        )
        row = cur.fetchone()
        module = _FTS_MODULE.search(str(_values(row)[0] or "")) if row is not None else None
        if module is not None and module.group(1).lower() != "fts5vocab":
            # a full-text table scanned without MATCH returns its rows by rowid, and has no index of its own
            return OrderFacts("table", (), (("rowid",),))
        return OrderFacts("other")
    if kind == "view":
        cur.execute(_SQLITE_VIEW, (name,))
        row = cur.fetchone()
        return OrderFacts("view", reads=_tables_in(str(_values(row)[0]), "sqlite") if row is not None else None)
    cur.execute(_SQLITE_INDEXES, (name, schema, schema))
    indexes: dict[str, set[str]] = {}
    uniques: set[str] = set()
    partial: set[str] = set()
    for index, column, cid, is_unique, is_partial in (_values(r) for r in cur.fetchall()):
        if is_unique:
            uniques.add(str(index))
        if is_partial:
            partial.add(str(index))
        cols = indexes.setdefault(str(index), set())
        if int(cid) == -2:
            cols.add("")  # an expression: any column
        elif column is not None:
            cols.add(str(column).lower())
    listed = tuple(frozenset() if "" in cols else frozenset(cols) for cols in indexes.values())
    checked = tuple(frozenset() if "" in cols else frozenset(cols) for ix, cols in indexes.items() if ix in uniques)
    whole = tuple(frozenset(cols) for ix, cols in indexes.items() if ix in uniques and ix not in partial and "" not in cols)
    keys: list[tuple[str, ...]] = []
    cur.execute(_SQLITE_PK, (name, schema))
    pk = [_values(r) for r in cur.fetchall()]
    # a primary key with an index of its own is no rowid alias (``INTEGER PRIMARY KEY DESC`` is none either)
    cur.execute(_SQLITE_PK_INDEX, (name, schema))
    indexed = cur.fetchone() is not None
    # a column's collation decides which values GROUP BY and ORDER BY take as equal, the key's own (``PRIMARY KEY
    # (code COLLATE BINARY)`` over a NOCASE column) which it keeps apart: unless the table names no collation at
    # all, they may differ, and ``'a'`` and ``'A'`` be two rows of one group (decision 0284)
    master = "sqlite_master" if schema is None else '"' + schema.replace('"', '""') + '".sqlite_master'
    cur.execute(f"SELECT sql FROM {master} WHERE type = 'table' AND name = ? COLLATE NOCASE", (name,))  # quoted
    collated = any(_COLLATE.search(str(_values(r)[0] or "")) for r in cur.fetchall())
    if without_rowid:
        if not collated:
            keys.append(tuple(str(p[0]) for p in pk))
    else:
        # an INTEGER PRIMARY KEY is the rowid under a name (integers, never NULL): the table's rows are stored in its
        # order, like an index's over it, and ``rowid`` is that key by another name (decision 0388); another primary key
        # of a rowid table may hold NULLs (SQLite's legacy) unless each column is declared NOT NULL
        keys.append(("rowid",))
        alias = len(pk) == 1 and str(pk[0][1]) == "INTEGER" and not indexed
        if alias:  # (``rowid`` is a masked key where the alias is masked: order_guard reads it so)
            listed = (*listed, frozenset({str(pk[0][0]).lower()}))
        if alias or (pk and all(int(p[2] or 0) for p in pk) and not collated):
            keys.append(tuple(str(p[0]) for p in pk))
    if not collated:
        # a UNIQUE constraint or a unique index, whole (not partial), over NOT NULL columns compared as GROUP BY
        # compares them (BINARY, as the table names no collation): a key too (decision 0297)
        cur.execute(_SQLITE_UNIQUE, (name, schema, schema, name, schema))
        unique: dict[str, list[tuple[str | None, bool]]] = {}
        for index, column, coll, notnull in (_values(r) for r in cur.fetchall()):
            ok = column is not None and str(coll) == "BINARY" and bool(notnull)
            unique.setdefault(str(index), []).append((None if column is None else str(column), ok))
        keys.extend(tuple(str(c) for c, _ in cols) for cols in unique.values() if cols and all(ok for _, ok in cols))
    cur.execute(f"SELECT 1 FROM {master} WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE UNION ALL "
                "SELECT 1 FROM sqlite_temp_master WHERE type = 'trigger' AND tbl_name = ? COLLATE NOCASE",
                (name, name))  # a TEMP trigger may be on a main table
    triggered = cur.fetchone() is not None
    return OrderFacts("table" if kind == "table" else "other", listed, tuple(k for k in keys if k), unique=checked,
                      unique_whole=whole, triggered=triggered)


def _pg_order(cur: Any, table_sql: str) -> OrderFacts | None:
    cur.execute(_PG_ORDER, (table_sql,))
    rows = [_values(r) for r in cur.fetchall()]
    if not rows:
        return None
    relkind = str(rows[0][0])
    indexes: dict[Any, tuple[bool, bool, list[str], list[bool]]] = {}
    inherited = relkind == "r" and bool(rows[0][5])
    for _kind, index, primary, expressions, column, _sub, immediate, unique, notnull in rows:
        if index is None:
            continue
        # a DEFERRABLE primary key (or UNIQUE constraint) holds only at COMMIT: until then a transaction may repeat
        # its values, so it is no key (decision 0284); a UNIQUE constraint is one when every column is NOT NULL
        # (NULLs are never equal to it, and GROUP BY puts them together: decision 0297)
        entry = indexes.setdefault(index, (bool(primary) and bool(immediate), bool(expressions), [], []))
        if column is not None:
            entry[2].append(str(column))
            entry[3].append(bool(unique) and bool(immediate) and bool(notnull))
    listed = tuple(
        frozenset() if expr else frozenset(c.lower() for c in cols) for _p, expr, cols, _u in indexes.values()
    )
    keys = [tuple(cols) for primary, expr, cols, _u in indexes.values() if primary and not expr and cols]
    keys += [
        tuple(cols)
        for primary, expr, cols, unique in indexes.values()
        if not primary and not expr and cols and all(unique)
    ]
    if relkind in ("r", "m", "t") and not inherited:
        keys.append(("ctid",))  # where the row is stored: no value of it decides that
        return OrderFacts("table", listed, tuple(keys))
    if relkind in ("r", "p"):
        # a family's rows are read table by table (a ctid is one table's), and the values the partition keys or
        # the children's CHECK constraints read pick each row's table: an index over those columns, as far as the
        # order of the rows goes (decisions 0384, 0399)
        keys.append(("tableoid", "ctid"))
        cur.execute(_PG_PLACED, (table_sql,) * 5)
        placed = frozenset(str(_values(r)[0]).lower() for r in cur.fetchall())
        read_by = (*listed, placed) if placed else listed  # (an empty set is an index over an expression)
        return OrderFacts("table", read_by, tuple(keys), inherited=inherited, placed=placed)
    if relkind == "v":
        cur.execute(_PG_VIEW_READS, (table_sql,))
        return OrderFacts("view", reads=tuple(str(_values(r)[0]) for r in cur.fetchall()))
    return OrderFacts("other", listed, tuple(keys))


def _mysql_order(cur: Any, schema: str | None, name: str) -> OrderFacts | None:
    cur.execute(_MYSQL_ORDER, (schema, name))
    rows = [_values(r) for r in cur.fetchall()]
    if not rows:
        return None
    table_type = str(rows[0][0]).upper()
    if table_type == "VIEW":
        cur.execute(_MYSQL_VIEW, (schema, name))
        row = cur.fetchone()
        return OrderFacts("view", reads=_tables_in(str(_values(row)[0]), "mysql") if row is not None else None)
    indexes: dict[str, tuple[bool, list[tuple[str | None, bool]]]] = {}
    # information_schema compares names without case: ``RTFD_Q`` also finds ``rtfd_q`` on a server that tells them
    # apart, whose indexes and keys are not its own (decision 0284)
    twins = len({str(r[5]) for r in rows}) > 1
    for _type, index, non_unique, nullable, column, _table in rows:
        if index is not None:
            indexes.setdefault(str(index), (not int(non_unique), []))[1].append(
                (None if column is None else str(column), bool(nullable))
            )
    listed = tuple(
        frozenset() if any(c is None for c, _ in cols) else frozenset(str(c).lower() for c, _ in cols)
        for _unique, cols in indexes.values()
    )
    # a unique key identifies a row only when none of its parts is NULL (or an expression); PRIMARY first
    keys = [
        tuple(str(c) for c, _ in cols)
        for index, (unique, cols) in sorted(indexes.items(), key=lambda kv: kv[0] != "PRIMARY")
        if unique and all(c is not None and not nullable for c, nullable in cols) and not twins
    ]
    return OrderFacts("table" if "TABLE" in table_type else "other", listed, tuple(keys))


def _tables_in(sql: str, dialect: str) -> tuple[str, ...] | None:
    """The relations a view's query reads (CTE names left out); ``None`` when it does not parse."""
    try:
        tree = parse_one(sql, dialect)
    except Exception:
        return None
    if isinstance(tree, exp.Create):  # SQLite keeps the CREATE VIEW statement: its query is what it reads
        tree = tree.expression
    if not isinstance(tree, exp.Expression):
        return None
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    out = []
    for t in tree.find_all(exp.Table):
        if isinstance(t.this, exp.Identifier) and not (not t.args.get("db") and t.name.lower() in ctes):
            out.append(".".join(p.name for p in t.parts))
    return tuple(dict.fromkeys(out))


def sqlite_affinity(declared: str) -> str:
    """The affinity SQLite gives a column declared ``declared`` (its rules, in their order)."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "TEXT"
    if "BLOB" in t or not t.strip():
        return "BLOB"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "REAL"
    return "NUMERIC"
