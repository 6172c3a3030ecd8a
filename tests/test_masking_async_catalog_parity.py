"""An async connection reads every catalog fact a sync one reads before masking judges a statement.

Async drivers cannot run masking's catalog reads while a statement is judged, so ``AsyncDriver.warm_catalog``
runs them ahead with ``await`` — from a list of readers kept by hand beside ``MaskingState._read_table``. A reader
missing from that list leaves its facts unread on async connections only (generated columns over an SSN came back
in clear on asyncpg, and SQLite full-text shadow tables lost their labels). This compares the statements SQLite
itself traces on a sqlite3 connection and on an aiosqlite one for the same tables: a table, a view over it, a
generated column and a full-text index's shadow table.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

import governed_db
from governed_db import Identity

AGENT = Identity("curious-agent", kind="agent")
SCHEMA = """
CREATE TABLE t (id integer PRIMARY KEY, ssn text, last4 text GENERATED ALWAYS AS (substr(ssn, 8)), note text);
CREATE VIEW v AS SELECT id, ssn AS who FROM t;
CREATE VIRTUAL TABLE f USING fts5(body);
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    db = tmp_path / "parity.db"
    setup = sqlite3.connect(db)
    setup.executescript(SCHEMA)
    setup.executemany("INSERT INTO t (id, ssn, note) VALUES (?, ?, ?)", [(i, f"536-22-{8700 + i}", "ok") for i in range(30)])
    setup.executemany("INSERT INTO f VALUES (?)", [(f"call 536-22-{8700 + i}",) for i in range(30)])
    setup.commit()
    setup.close()
    return db


def _sync_reads(path: Path, sql: str) -> set[str]:
    raw = sqlite3.connect(path)
    seen: list[str] = []
    raw.set_trace_callback(seen.append)
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    conn.execute(sql).fetchall()
    conn.close()
    return {s for s in seen if s != sql}


def _async_reads(path: Path, sql: str) -> set[str]:
    aiosqlite = pytest.importorskip("aiosqlite")

    async def main() -> set[str]:
        raw = await aiosqlite.connect(path)
        seen: list[str] = []
        await raw.set_trace_callback(seen.append)
        conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
        cur = await conn.execute(sql)
        await cur.fetchall()
        await raw.close()
        return {s for s in seen if s != sql}

    return asyncio.run(main())


@pytest.mark.parametrize("sql", ["SELECT * FROM t", "SELECT * FROM v", "SELECT * FROM f_content"])
def test_the_async_warm_up_reads_what_a_sync_connection_reads(path: Path, sql: str) -> None:
    sync, warm = _sync_reads(path, sql), _async_reads(path, sql)
    assert len(sync) >= 10, sync  # masking did read the catalog (columns, sample, view, generated, full text)
    assert sync - warm == set(), sorted(sync - warm)
