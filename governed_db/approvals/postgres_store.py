"""The shared store for many hosts: PostgreSQL through psycopg 3.

Chosen by URL (``postgresql://user@host/db?schema=governed_db_approvals``);
the ``schema`` query parameter (default ``governed_db_approvals``) is ours and
is removed before connecting. Row locks (``FOR UPDATE``) order reviews of one
request; a transaction-scoped advisory lock per (statement, identity,
environment) orders executes of the same statement, so two processes never
file two requests for it or both consume one grant.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from governed_db.approvals.store import SCHEMA, SQLStore, _Exec
from governed_db.errors import ConfigurationError

DEFAULT_SCHEMA = "governed_db_approvals"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: serializes CREATE ... IF NOT EXISTS between processes (it is not race-free on its own)
_SCHEMA_LOCK = 0x6744_6241_7070_7231


def split_url(url: str) -> tuple[str, str]:
    """``(dsn_without_our_parameters, schema)`` from a ``postgresql://`` URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), DEFAULT_SCHEMA)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), schema


def redact(dsn: str) -> str:
    """The DSN without its password, for messages and commands."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        if parts.password is not None:
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
            netloc = f"{parts.username}:***@{host}{port}"
            return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return dsn
    return re.sub(r"(password\s*=\s*)(\S+)", r"\1***", dsn)


class PostgresStore(SQLStore):
    placeholder = "%s"
    for_update = " FOR UPDATE"

    def __init__(self, dsn: str, *, schema: str = DEFAULT_SCHEMA, connect_timeout: int = 5) -> None:
        if not _IDENT.match(schema):
            raise ConfigurationError(f"approval store schema must be a plain SQL identifier, got {schema!r}")
        super().__init__({
            "requests": f'"{schema}".approval_requests',
            "reviews": f'"{schema}".approval_reviews',
            "meta": f'"{schema}".approval_meta',
            "index": "approval_requests_match",
        })
        self.dsn = dsn
        self.schema = schema
        self.connect_timeout = connect_timeout
        self.url = redact(dsn) + (f" (schema {schema})" if schema != DEFAULT_SCHEMA else "")

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    def _connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout)

    @contextlib.contextmanager
    def _transaction(self, conn: Any, write: bool) -> Iterator[Any]:
        with conn.transaction(), conn.cursor() as cur:
            yield cur

    def _create_schema(self, ex: _Exec) -> None:
        ex.run("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
        ex.run(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        for stmt in filter(None, (s.strip() for s in SCHEMA.format(**self.t).split(";"))):
            ex.run(stmt)

    def _lock(self, ex: _Exec, key: int) -> None:
        ex.run("SELECT pg_advisory_xact_lock(?)", (key,))

    def _unavailable(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
