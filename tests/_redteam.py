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


#: a name long enough that the rows after it start a page later (PostgreSQL stores about 120 short rows a page)
LONG_NAME = "Zoe " + "Quinn-Harper " * 8


def pg_stored_people(conn: Any, prefix: str) -> dict[str, str]:
    """Per variant a and b, a table of 400 people (``id``, ``full_name``, ``city``) whose rows differ only in row 1's
    name (11 or 108 characters, masked alike), created on ``conn`` (autocommit); names ``{prefix}_s{a,b}``."""
    names: dict[str, str] = {}
    for v, first in (("a", "Alice Smith"), ("b", LONG_NAME)):
        t = f"{prefix}_s{v}"
        conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, city text)")
        conn.execute(f"INSERT INTO {t} VALUES (1, %s, 'Paris')", (first,))
        conn.execute(f"INSERT INTO {t} SELECT g, 'Person Number ' || g, 'Lyon' FROM generate_series(2, 400) g")
        names[v] = t
    return names


def pg_moved_places(conn: Any, table: str, read: Any) -> list[Any]:
    """Where rows 5 and 1 come in ``read(conn, table)`` (a list of ids in the order the caller sees them) after an
    UPDATE that sets their columns NULL: PostgreSQL writes the new version on the same page when the rows there
    left room for it, else on the last page. Each attempt is rolled back; a refusal is returned as its text."""
    out: list[Any] = []
    for row in (5, 1):
        try:
            conn.cursor().execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
            ids = list(read(conn, table))
            out.append(ids.index(row) if row in ids else ids)
        except governed_db.GuardrailViolation as e:
            out.append(f"refused: {e}".replace(table, "T"))
        finally:
            conn.rollback()
    return out
