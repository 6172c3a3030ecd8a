"""Classifying a whole database into a :class:`~governed_db.masking.catalog.Catalog`.

``governed-db classify`` is a thin shell over :func:`classify_database`.
Connections are opened read-only where the driver allows it; every read is a
catalog query or a ``SELECT * ... LIMIT n`` sample.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

from governed_db.errors import ConfigurationError
from governed_db.masking import sampling, schema
from governed_db.masking.catalog import Catalog
from governed_db.masking.classify import FEW_ROWS, classify_sample

DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".duck")


@dataclass(frozen=True)
class Target:
    """A database URL taken apart: ``backend`` (postgresql, mysql, sqlite, duckdb) and connection settings."""

    backend: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    database: str | None = None
    query: tuple[tuple[str, str], ...] = ()


_BACKENDS = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql",
             "sqlite": "sqlite", "duckdb": "duckdb"}


def parse_target(target: str) -> Target:
    """``target`` as a :class:`Target`: SQLAlchemy URLs (``postgresql+psycopg://``, ``mysql+pymysql://``...)
    are read with ``sqlalchemy.engine.make_url`` when SQLAlchemy is installed, else with the standard library."""
    if not isinstance(target, str) or "://" not in target:
        raise ConfigurationError(f"{target!r} is not a database URL")
    try:
        from sqlalchemy.engine import make_url
    except ImportError:  # SQLAlchemy is optional: the same reading, by hand
        return _parse_target_stdlib(target)
    try:
        url = make_url(target)
    except Exception as e:  # sqlalchemy.exc.ArgumentError and friends
        raise ConfigurationError(f"{target!r} is not a valid database URL ({e})") from None
    backend = _backend(url.get_backend_name(), target)
    query = tuple((k, v if isinstance(v, str) else ",".join(v)) for k, v in url.query.items())
    return Target(backend, url.host, url.port, url.username, url.password, url.database, query)


def _parse_target_stdlib(target: str) -> Target:
    url = urlparse(target)
    try:
        port = url.port
    except ValueError:
        raise ConfigurationError(f"{target!r} has an invalid port") from None
    backend = _backend(url.scheme.split("+", 1)[0], target)
    database = url.path[1:] if backend in ("sqlite", "duckdb") else url.path.lstrip("/")
    return Target(backend, url.hostname, port, unquote(url.username) if url.username else None,
                  unquote(url.password) if url.password else None, unquote(database) or None,
                  tuple(parse_qsl(url.query)))


def _backend(name: str, target: str) -> str:
    backend = _BACKENDS.get(name.lower())
    if backend is None:
        raise ConfigurationError(
            f"cannot classify {target!r}: {name}:// is not supported; give a SQLite or duckdb file path, or a "
            "postgresql:// (postgresql+psycopg://) or mysql:// (mysql+pymysql://) URL"
        )
    return backend


def connect(target: str) -> tuple[Any, str]:
    """Open ``target`` (a SQLite/duckdb file, or a database URL): (connection, dialect)."""
    if not isinstance(target, str) or not target.strip():
        raise ConfigurationError("give a SQLite or duckdb file path, or a database URL")
    if "://" not in target:
        if target.lower().endswith(DUCKDB_SUFFIXES):
            return _duckdb(target)
        return _sqlite(target)
    t = parse_target(target)
    if t.backend == "postgresql":
        import psycopg
        from psycopg.conninfo import make_conninfo

        params = {k: v for k, v in (("host", t.host), ("port", t.port), ("user", t.user), ("password", t.password),
                                    ("dbname", t.database)) if v is not None}
        return psycopg.connect(make_conninfo("", **params, **dict(t.query)), autocommit=True), "postgres"
    if t.backend == "mysql":
        import pymysql

        return (
            pymysql.connect(host=t.host or "127.0.0.1", port=t.port or 3306, user=t.user or "root",
                            password=t.password or "", database=t.database or None, autocommit=True),
            "mysql",
        )
    if t.backend == "duckdb":
        return _duckdb(t.database or "")
    return _sqlite(t.database or "")


def _duckdb(path: str) -> tuple[Any, str]:
    import duckdb

    _check_file(path, "duckdb")
    return duckdb.connect(path, read_only=True), "duckdb"


def _sqlite(path: str) -> tuple[Any, str]:
    _check_file(path, "SQLite")
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True), "sqlite"


def _check_file(path: str, kind: str) -> None:
    if not path or path == ":memory:":
        raise ConfigurationError(f"give the {kind} database file to classify (an in-memory database is empty)")
    p = Path(path)
    if not p.exists():
        raise ConfigurationError(f"{kind} file {path!r} does not exist")
    if p.is_dir():
        raise ConfigurationError(f"{path!r} is a directory, not a {kind} database file")
    if not p.is_file():  # a FIFO would hold the driver's open() for ever
        raise ConfigurationError(f"{path!r} is not a regular file (a pipe, socket or device), not a {kind} "
                                 "database file")


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
    missing: list[str] = []
    for i, table in enumerate(names):
        if on_table is not None:
            on_table(table, i, len(names))
        parts = table.split(".")
        table_sql = ".".join(_quote(p, dialect) for p in parts)
        cols = schema.read_columns(conn, dialect, table_sql, parts[0] if len(parts) > 1 else None, parts[-1])
        if not cols:
            if tables:  # asked for by name: a typo must not pass as "nothing sensitive found"
                missing.append(table)
            continue
        values: dict[str, list[Any]] = {}
        sampled = schema.sample(conn, dialect, table_sql, sample_rows) if sample_rows > 0 else None
        few: int | None = None
        if sampled is not None:
            header, rows = sampled
            if len(rows) < min(FEW_ROWS, sample_rows):
                few = len(rows)
            # as online classification reads it: spread rows and rare values past rows placed first (0294)
            widened = sampling.wider(conn, dialect, table_sql, sampled, cols, sample_rows)
            for n, seen in sampling.columns_of(header, widened).items():
                values[n.lower()] = seen
            for n, seen in sampling.hidden(conn, dialect, table_sql, header, cols, sample_rows).items():
                values[n.lower()] = seen
        for column, declared in cols:
            cls = classify_sample(table, column, declared, values.get(column.lower()))
            if few is not None and cls.label is None:
                # "not sensitive" cannot be concluded from an (almost) empty table: the entry stays provisional,
                # so online classification decides once data arrives, unless a reviewer settles it
                cls.provisional = True
                cls.evidence["sample"] = f"the table had {few} row(s) when classified"
            catalog.set(table, column, cls)
    if missing:
        raise ConfigurationError(
            f"no table named {', '.join(repr(m) for m in missing)} in this {dialect} database (or no permission "
            "to read it); check the --table names"
        )
    return catalog


def _quote(name: str, dialect: str) -> str:
    q = "`" if schema.family(dialect) == "mysql" else '"'
    return q + name.replace(q, q + q) + q
