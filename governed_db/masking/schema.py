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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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


_SQLITE_KIND = "SELECT type, wr FROM pragma_table_list WHERE name = ? ORDER BY schema = 'temp' DESC, schema = 'main' DESC"
_SQLITE_INDEXES = (
    "SELECT il.name, ii.name, ii.cid FROM pragma_index_list(?) il, pragma_index_xinfo(il.name) ii WHERE ii.key"
)
_SQLITE_PK = "SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk"
_SQLITE_VIEW = "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?"
_PG_ORDER = (
    "SELECT c.relkind, i.indexrelid::bigint, i.indisprimary, i.indexprs IS NOT NULL, a.attname "
    "FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid "
    "LEFT JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n) ON true "
    "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
    "WHERE c.oid = to_regclass(%s) ORDER BY i.indexrelid, k.n"
)
_PG_VIEW_READS = (
    "SELECT DISTINCT d.refobjid::regclass::text FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_depend d "
    "ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid "
    "AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> r.ev_class WHERE r.ev_class = to_regclass(%s)"
)
_MYSQL_ORDER = (
    "SELECT t.TABLE_TYPE, s.INDEX_NAME, s.NON_UNIQUE, s.NULLABLE, s.COLUMN_NAME FROM information_schema.TABLES t "
    "LEFT JOIN information_schema.STATISTICS s ON s.TABLE_SCHEMA = t.TABLE_SCHEMA AND s.TABLE_NAME = t.TABLE_NAME "
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
        return OrderFacts("table", (), (("rowid",),))
    if fam == "sqlite":
        return guarded(conn, dialect, lambda cur: _sqlite_order(cur, name))
    if fam == "postgres":
        return guarded(conn, dialect, lambda cur: _pg_order(cur, table_sql))
    if fam == "mysql":
        return guarded(conn, dialect, lambda cur: _mysql_order(cur, schema, name))
    return None


def _sqlite_order(cur: Any, name: str) -> OrderFacts:
    try:
        cur.execute(_SQLITE_KIND, (name,))
        found = cur.fetchone()
    except Exception:  # before SQLite 3.37 (no pragma_table_list): the schema table says as much, less WITHOUT ROWID
        cur.execute("SELECT type, 0 FROM sqlite_master WHERE name = ? AND type IN ('table', 'view')", (name,))
        found = cur.fetchone()
    if found is None:
        return OrderFacts("other")
    kind, without_rowid = str(_values(found)[0]), bool(_values(found)[1])
    if kind == "view":
        cur.execute(_SQLITE_VIEW, (name,))
        row = cur.fetchone()
        return OrderFacts("view", reads=_tables_in(str(_values(row)[0]), "sqlite") if row is not None else None)
    cur.execute(_SQLITE_INDEXES, (name,))
    indexes: dict[str, set[str]] = {}
    for index, column, cid in (_values(r) for r in cur.fetchall()):
        cols = indexes.setdefault(str(index), set())
        if int(cid) == -2:
            cols.add("")  # an expression: any column
        elif column is not None:
            cols.add(str(column).lower())
    listed = tuple(frozenset() if "" in cols else frozenset(cols) for cols in indexes.values())
    keys: list[tuple[str, ...]] = []
    if without_rowid:
        cur.execute(_SQLITE_PK, (name,))
        keys.append(tuple(str(_values(r)[0]) for r in cur.fetchall()))
    else:
        keys.append(("rowid",))
    return OrderFacts("table" if kind == "table" else "other", listed, tuple(k for k in keys if k))


def _pg_order(cur: Any, table_sql: str) -> OrderFacts | None:
    cur.execute(_PG_ORDER, (table_sql,))
    rows = [_values(r) for r in cur.fetchall()]
    if not rows:
        return None
    relkind = str(rows[0][0])
    indexes: dict[Any, tuple[bool, bool, list[str]]] = {}
    for _kind, index, primary, expressions, column in rows:
        if index is None:
            continue
        entry = indexes.setdefault(index, (bool(primary), bool(expressions), []))
        if column is not None:
            entry[2].append(str(column))
    listed = tuple(frozenset() if expr else frozenset(c.lower() for c in cols) for _p, expr, cols in indexes.values())
    keys = [tuple(cols) for primary, expr, cols in indexes.values() if primary and not expr and cols]
    if relkind in ("r", "m", "t"):
        keys.append(("ctid",))  # where the row is stored: no value of it decides that
        return OrderFacts("table", listed, tuple(keys))
    if relkind == "p":
        keys.append(("tableoid", "ctid"))
        return OrderFacts("table", listed, tuple(keys))
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
    for _type, index, non_unique, nullable, column in rows:
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
        if unique and all(c is not None and not nullable for c, nullable in cols)
    ]
    return OrderFacts("table" if "TABLE" in table_type else "other", listed, tuple(keys))


def _tables_in(sql: str, dialect: str) -> tuple[str, ...] | None:
    """The relations a view's query reads (CTE names left out); ``None`` when it does not parse."""
    try:
        import sqlglot
        from sqlglot import exp

        tree = sqlglot.parse_one(sql, read=dialect)
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
