"""The application's own functions, which a statement or a view calls, read what their bodies name (decision 0393).

A function masking does not know is judged by its arguments (copied) and its result (checked as it passes). Its
body is the application's: ``CREATE FUNCTION is_vip(i int) RETURNS boolean AS $$ SELECT ssn LIKE '5%' FROM
customers WHERE id = i $$`` reads a masked column of a row the caller chose, and ``SELECT id FROM customers WHERE
is_vip(id)`` (or a view ``WHERE is_vip(id)``) returned row 1 exactly when its SSN started with 5; a DuckDB table
macro (``FROM picked()``) or macro, and a MySQL/MariaDB stored function, alike.

A call of a function of the application's (PostgreSQL: outside ``pg_catalog``; DuckDB: a macro not internal;
MySQL/MariaDB: a stored function) is refused when its definition names a table or view with columns masked for
the identity, builds statements at run time, or cannot be read. Bodies and the relations they name are read on
the statement's first judgement, and kept no longer than the catalog comparison of decision 0392.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlglot import exp

from governed_db.masking import stored_code
from governed_db.masking.catalog import table_key
from governed_db.masking.schema import _rows, family, guarded

_PG_BODIES = (
    "SELECT CASE WHEN p.prokind = 'a' THEN p.prosrc ELSE pg_catalog.pg_get_functiondef(p.oid) END "
    "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "WHERE lower(p.proname) = lower(%s) AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
)
_MYSQL_BODIES = (
    "SELECT ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION' "
    "AND ROUTINE_NAME = %s"
)
_DUCKDB_BODIES = (
    "SELECT macro_definition FROM duckdb_functions() WHERE NOT internal AND lower(function_name) = lower(?) "
    "AND function_type IN ('macro', 'table_macro')"
)
_NAME_WORD = re.compile(r"[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?")
#: what :func:`relations_read` answers for a function whose reads cannot be told
UNKNOWN: tuple[str, ...] | None = None


def called(tree: exp.Expression) -> set[str]:
    """The names (lower case) of the functions ``tree`` calls that masking does not know (sqlglot's anonymous
    calls, qualified or not, a table function's among them)."""
    return {str(n.name).lower() for n in tree.find_all(exp.Anonymous) if n.name}


def relations_read(conn: Any, dialect: str, name: str) -> tuple[str, ...] | None:
    """The keys of the tables and views the application's functions called ``name`` name in their definitions
    (none for a name that is no function of the application's); ``None`` when a definition cannot be read or
    builds statements at run time."""
    fam = family(dialect)
    if fam is None or fam == "sqlite":
        return ()

    def work(cur: Any) -> tuple[str, ...] | None:
        sql = {"postgres": _PG_BODIES, "mysql": _MYSQL_BODIES}.get(fam, _DUCKDB_BODIES)
        bodies = [r[0] for r in _rows(cur, sql, (name,))]
        if not bodies:
            return ()
        words: set[str] = set()
        for body in bodies:
            if not body or stored_code.runs_built_statements(str(body)):
                return None  # hidden (MySQL without the privilege) or built at run time
            found = stored_code.named_relations(str(body), fam)
            if found is None:
                return None
            words.update(w for w in found if _NAME_WORD.fullmatch(w))
        return _existing(cur, fam, sorted(words))

    found = guarded(conn, dialect, lambda cur: (work(cur),))
    return None if found is None else found[0]


def _existing(cur: Any, fam: str, words: list[str]) -> tuple[str, ...]:
    """The words that name a table or view, as table keys."""
    if not words:
        return ()
    if fam == "postgres":
        values = ", ".join(["(%s)"] * len(words))
        rows = _rows(
            cur,
            f"SELECT DISTINCT c.oid::regclass::text FROM (VALUES {values}) AS u(n) JOIN pg_catalog.pg_class c "
            "ON c.oid = to_regclass(u.n) WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            tuple(words),
        )
        return tuple(sorted(table_key(str(r[0])) for r in rows))
    last = sorted({w.rsplit(".", 1)[-1] for w in words})
    marks = ", ".join(["%s" if fam == "mysql" else "?"] * len(last))
    if fam == "mysql":
        rows = _rows(
            cur,
            f"SELECT DISTINCT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            f"AND TABLE_NAME IN ({marks})",
            tuple(last),
        )
    else:
        rows = _rows(
            cur,
            f"SELECT table_name FROM duckdb_tables() WHERE lower(table_name) IN ({marks}) UNION "
            f"SELECT view_name FROM duckdb_views() WHERE NOT internal AND lower(view_name) IN ({marks})",
            (*last, *last),
        )
    return tuple(sorted(table_key(str(r[0])) for r in rows))


def masked_reads(state: Any, access: Any, names: Iterable[str]) -> tuple[str, list[str]] | None:
    """The first of the functions ``names`` whose definition reads a relation with columns masked for the
    identity (and those relations; none when it cannot be told), or ``None``."""
    cache: dict[str, tuple[str, ...] | None] = state.function_reads
    conn = None
    for name in sorted(names):
        if name in cache:
            reads = cache[name]
        else:
            if conn is None:
                conn = state.gov.driver.catalog_connection(state.gov)
            misses = getattr(conn, "misses", 0)
            reads = relations_read(conn, state.dialect, name)
            if getattr(conn, "misses", 0) == misses:
                cache[name] = reads  # (not a read an async connection's warm-up did not do)
        if reads is None:
            return name, []
        masked = []
        for key in reads:
            hidden = access.hidden_fields(key)
            if hidden is None and not access.blind(key):
                return name, []  # a relation masking cannot classify: fail closed
            if hidden or access.blind(key):
                masked.append(key)
        if masked:
            return name, masked
    return None


__all__ = ["called", "masked_reads", "relations_read"]
