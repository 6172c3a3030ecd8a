"""Helpers the red-team test files share."""

from __future__ import annotations

from typing import Any

import governed_db


def run_script(conn: Any, script: str) -> list[Any]:
    """Run ``;``-separated statements on a DB-API connection (rows, or the row count, of each); whatever happens,
    roll back, so no lock or change outlives the script."""
    out = []
    try:
        for sql in script.split(";"):
            cur = conn.cursor()
            cur.execute(sql)
            out.append(cur.fetchall() if cur.description else cur.rowcount)
    finally:
        conn.rollback()
    return out


def observe(conn: Any, sql: str) -> Any:
    """Everything the caller sees of one statement: column names and rows, or the refusal or error text."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return [d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()]
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def pg_connect(driver: str, *, autocommit: bool = True) -> Any:
    """A PostgreSQL session of the test server through ``psycopg`` (3) or ``psycopg2`` (skipped if not installed)."""
    import pytest

    from tests.conftest import PG_DSN

    if driver == "psycopg":
        import psycopg

        return psycopg.connect(PG_DSN, autocommit=autocommit)
    psycopg2 = pytest.importorskip("psycopg2")
    conn = psycopg2.connect(PG_DSN)
    conn.autocommit = autocommit
    return conn
