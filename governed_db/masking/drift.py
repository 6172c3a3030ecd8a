"""Has the catalog changed under what masking read of it? (decision 0392)

Masking reads a relation once (its columns, labels, a view's defining query) and keeps what it read, and the
verdicts and plans derived from it, for as long as the connection lives. The application changes the catalog
through other connections (a migration: ``CREATE OR REPLACE VIEW``, a view dropped and made again, a table or
view renamed or replaced): a pooled connection then judged a view by the query it no longer runs, and masked its
columns by the classes of columns it no longer has (``ssn AS code`` under a column read as ``city AS code``).

Each relation read carries a *signature*, read before anything else of it: what identifies it in the catalog
(PostgreSQL's oid and kind, a view's definition, the column names; MySQL/MariaDB's kind, creation time, view
definition and the definition of each column and index: the creation time counts whole seconds, and a table made
again or altered within the second it was made keeps it; DuckDB's oid and stored ``CREATE`` text; SQLite's schema
cookie, which every schema change moves). :func:`signatures` reads those of every relation read, in one statement, at most once every
``CATALOG_SECONDS``; a difference (or a read that fails) forgets every relation read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from governed_db.masking.schema import _rows, family, guarded

#: a relation as masking's catalog reads name it: (table SQL, schema or ``None``, name)
Source = tuple[str, str | None, str]
Signature = tuple[tuple[Any, ...], ...]

_PG = (
    "SELECT u.i, c.oid::int8, c.relkind::text, CASE WHEN c.relkind IN ('v', 'm') THEN "
    "pg_catalog.pg_get_viewdef(c.oid) END, ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a "
    "WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)::text "
    "FROM (VALUES {values}) AS u(i, n) LEFT JOIN pg_catalog.pg_class c ON c.oid = to_regclass(u.n)"
)
_MYSQL = (
    "SELECT %s, 'relation', TABLE_SCHEMA, TABLE_NAME, CONCAT_WS(' ', TABLE_TYPE, ENGINE, CREATE_OPTIONS), "
    "CAST(CREATE_TIME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) "
    "AND TABLE_NAME = %s "
    "UNION ALL SELECT %s, 'view', TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION, NULL FROM information_schema.VIEWS "
    "WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s "
    # a row per column and per index column, not their GROUP_CONCAT: group_concat_max_len cuts nothing here
    "UNION ALL SELECT %s, 'column', ORDINAL_POSITION, COLUMN_NAME, CONCAT_WS(' ', COLUMN_TYPE, IS_NULLABLE, "
    "COLUMN_KEY, EXTRA, COLLATION_NAME), CONCAT_WS(' ', QUOTE(COLUMN_DEFAULT), QUOTE(GENERATION_EXPRESSION)) "
    "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) AND TABLE_NAME = %s "
    "UNION ALL SELECT %s, 'index', INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, CONCAT_WS(' ', NON_UNIQUE, SUB_PART, "
    "INDEX_TYPE) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = COALESCE(%s, DATABASE()) "
    "AND TABLE_NAME = %s"
)
_DUCKDB = (
    "SELECT ?, 'view', database_name, schema_name, view_oid, sql FROM duckdb_views() "
    "WHERE NOT internal AND lower(view_name) = lower(?) "
    "UNION ALL SELECT ?, 'table', database_name, schema_name, table_oid, sql FROM duckdb_tables() "
    "WHERE lower(table_name) = lower(?)"
)


def signatures(conn: Any, dialect: str, sources: Sequence[Source]) -> list[Signature] | None:
    """The catalog signature of each relation of ``sources`` (in their order), read in one statement; ``None``
    when the catalog cannot be read."""
    fam = family(dialect)
    if fam is None or not sources:
        return [() for _ in sources] if fam is not None else None

    def work(cur: Any) -> list[Signature]:
        if fam == "sqlite":
            # the schema cookie of every database the connection sees: any CREATE, DROP, ALTER moves it
            # (temp is listed only once used: read always, so that its first use is no change)
            names = ["main", "temp", *(str(r[1]) for r in _rows(cur, "PRAGMA database_list")
                                       if str(r[1]) not in ("main", "temp"))]  # fmt: skip
            cookies = tuple(
                (db, _rows(cur, f'PRAGMA "{db.replace(chr(34), chr(34) * 2)}".schema_version')[0][0])
                for db in names
            )
            return [cookies for _ in sources]
        if fam == "postgres":
            values = ", ".join(["(%s::int, %s::text)"] * len(sources))
            params: list[Any] = []
            for i, (table_sql, _, _) in enumerate(sources):
                params += [i, table_sql]
            rows = _rows(cur, _PG.format(values=values), tuple(params))
        elif fam == "mysql":
            sql = " UNION ALL ".join([f"({_MYSQL})"] * len(sources))
            params = []
            for i, (_, db, name) in enumerate(sources):
                params += [i, db, name] * 4
            rows = _rows(cur, sql, tuple(params))
        else:
            sql = " UNION ALL ".join([f"({_DUCKDB})"] * len(sources))
            params = []
            for i, (_, _, name) in enumerate(sources):
                params += [i, name] * 2
            rows = _rows(cur, sql, tuple(params))
        found: list[list[tuple[Any, ...]]] = [[] for _ in sources]
        for row in rows:
            found[int(row[0])].append(tuple(str(v) if v is not None else None for v in row[1:]))
        return [tuple(sorted(f, key=repr)) for f in found]

    return guarded(conn, dialect, work)


__all__ = ["Signature", "Source", "signatures"]
