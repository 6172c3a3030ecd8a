"""Classifying a whole database into a :class:`~governed_db.masking.catalog.Catalog`.

``governed-db classify`` is a thin shell over :func:`classify_database`.
Connections are opened read-only where the driver allows it; every read is a
catalog query or a ``SELECT * ... LIMIT n`` sample.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from governed_db.errors import ConfigurationError
from governed_db.masking import schema
from governed_db.masking.catalog import Catalog
from governed_db.masking.classify import FEW_ROWS, classify_column

DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".duck")


def connect(target: str) -> tuple[Any, str]:
    """Open ``target`` (a SQLite/duckdb file, or a postgresql:// / mysql:// URL): (connection, dialect)."""
    url = urlparse(target)
    scheme = url.scheme.lower()
    if scheme in ("postgres", "postgresql"):
        import psycopg

        return psycopg.connect(target, autocommit=True), "postgres"
    if scheme in ("mysql", "mariadb", "mysql+pymysql"):
        import pymysql

        return (
            pymysql.connect(
                host=url.hostname or "127.0.0.1",
                port=url.port or 3306,
                user=unquote(url.username or "root"),
                password=unquote(url.password or ""),
                database=url.path.lstrip("/") or None,
                autocommit=True,
            ),
            "mysql",
        )
    if scheme == "duckdb" or target.lower().endswith(DUCKDB_SUFFIXES):
        import duckdb

        path = target.split("://", 1)[1] if scheme == "duckdb" else target
        if not Path(path).exists():
            raise ConfigurationError(f"duckdb file {path!r} does not exist")
        return duckdb.connect(path, read_only=True), "duckdb"
    if scheme in ("", "sqlite", "file"):
        path = target.split("://", 1)[1] if scheme == "sqlite" else target
        if not Path(path).exists():
            raise ConfigurationError(f"SQLite file {path!r} does not exist")
        return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True), "sqlite"
    raise ConfigurationError(
        f"cannot classify {target!r}: give a SQLite or duckdb file path, or a postgresql:// or mysql:// URL"
    )


def classify_database(
    conn: Any,
    dialect: str,
    *,
    sample_rows: int = 1000,
    tables: Sequence[str] | None = None,
    on_table: Callable[[str, int, int], None] | None = None,
) -> Catalog:
    """Label every column of every (or each given) table from names, types and a sample."""
    if tables:
        names = list(tables)
    else:
        found = schema.list_tables(conn, dialect)
        if found is None:
            raise ConfigurationError(
                f"cannot list the tables of this {dialect} database (not a database, or no permission to read "
                "its catalog); check the target, or name tables with --table"
            )
        names = found
    catalog = Catalog(dialect=dialect)
    for i, table in enumerate(names):
        if on_table is not None:
            on_table(table, i, len(names))
        parts = table.split(".")
        table_sql = ".".join(_quote(p, dialect) for p in parts)
        cols = schema.read_columns(conn, dialect, table_sql, parts[0] if len(parts) > 1 else None, parts[-1])
        if cols is None:
            continue
        values: dict[str, list[Any]] = {}
        sampled = schema.sample(conn, dialect, table_sql, sample_rows) if sample_rows > 0 else None
        few: int | None = None
        if sampled is not None:
            header, rows = sampled
            if len(rows) < min(FEW_ROWS, sample_rows):
                few = len(rows)
            for j, n in enumerate(header):
                values[n.lower()] = [r[j] for r in rows if j < len(r)]
        for column, declared in cols:
            cls = classify_column(table, column, declared, values.get(column.lower()))
            if few is not None and cls.label is None:
                # "not sensitive" cannot be concluded from an (almost) empty table: the entry stays provisional,
                # so online classification decides once data arrives, unless a reviewer settles it
                cls.provisional = True
                cls.evidence["sample"] = f"the table had {few} row(s) when classified"
            catalog.set(table, column, cls)
    return catalog


def _quote(name: str, dialect: str) -> str:
    q = "`" if schema.family(dialect) == "mysql" else '"'
    return q + name.replace(q, q + q) + q
