"""Helpers the red-team test files share."""

from __future__ import annotations

from typing import Any


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
