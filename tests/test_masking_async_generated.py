"""Async connections read every catalog fact a sync one does before a statement is judged.

An async driver cannot run masking's catalog reads while the statement is judged, so they are read ahead with
``await`` (``AsyncDriver.warm_catalog``) and replayed. The list of reads it ran lacked the generated-column
definitions (and SQLite's full-text shadow tables): on asyncpg, ``last4 text GENERATED ALWAYS AS (right(ssn, 4))``
came back as ``8701`` in clear, a ``to_tsvector(ssn)`` column as the whole SSN, and ``WHERE last4 LIKE '87%'``
ran — where psycopg masked the column and refused the filter. Each case compares the async driver with the sync one
on the same table, and shows that the raw value is there.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

import governed_db
from governed_db import Identity

AGENT = Identity("curious-agent", kind="agent")
SELECT = "SELECT id, ssn, last4 FROM {t} ORDER BY id LIMIT 3"
FILTER = "SELECT count(*) FROM {t} WHERE last4 LIKE '87%'"


def _seen(run: Any, sql: str) -> Any:
    try:
        return [tuple(r) for r in run(sql)]
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"


def _check(sync_run: Any, async_run: Any, raw_run: Any, table: str) -> None:
    raw = _seen(raw_run, SELECT.format(t=table))
    assert raw[0][2] == "8701", raw  # the generated column holds a piece of the SSN
    seen = [_seen(run, SELECT.format(t=table)) for run in (sync_run, async_run)]
    assert seen[0] == seen[1], seen  # the async driver sees what the sync one sees
    assert [r[:2] for r in seen[1]] == [(1, "[US_SSN]"), (2, "[US_SSN]"), (3, "[US_SSN]")], seen
    assert all(r[2] in ("[US_SSN]", "[SENSITIVE]") for r in seen[1]), seen
    for run in (sync_run, async_run):
        refused = _seen(run, FILTER.format(t=table))
        assert isinstance(refused, str) and "masked-column-predicate" in refused and "last4" in refused, refused


def test_asyncpg_masks_a_generated_column_over_a_masked_one(pg_conn: Any, pg_dsn: str, unique: str) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    table = f"agen_{unique}"
    pg_conn.execute(
        f"CREATE TABLE {table} (id int PRIMARY KEY, ssn text, last4 text GENERATED ALWAYS AS (right(ssn, 4)) STORED, "
        "words tsvector GENERATED ALWAYS AS (to_tsvector('simple', ssn)) STORED)"
    )
    try:
        pg_conn.execute(f"INSERT INTO {table} (id, ssn) SELECT i, '536-22-' || (8700 + i) FROM generate_series(1, 30) i")
        parts = dict(p.split("=", 1) for p in pg_dsn.split())
        url = f"postgresql://{parts['user']}@{parts['host']}:{parts.get('port', '5432')}/{parts['dbname']}"
        loop = asyncio.new_event_loop()
        try:
            conn = loop.run_until_complete(asyncpg.connect(url))
            governed = governed_db.wrap(conn, identity=AGENT, environment="production", audit=False)
            import psycopg

            sync = governed_db.wrap(psycopg.connect(pg_dsn, autocommit=True), identity=AGENT,
                                    environment="production", audit=False)

            def run_async(sql: str) -> Any:
                return loop.run_until_complete(governed.fetch(sql))

            _check(lambda sql: sync.execute(sql).fetchall(), run_async, lambda sql: pg_conn.execute(sql).fetchall(),
                   table)
            words = run_async(f"SELECT words::text FROM {table} ORDER BY id LIMIT 1")
            assert [tuple(r) for r in words] == [("[US_SSN]",)], words  # the tokens are the SSN's pieces
            sync.close()
            loop.run_until_complete(conn.close())
        finally:
            loop.close()
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {table}")


def test_aiosqlite_masks_a_generated_column_over_a_masked_one(tmp_path: Any) -> None:
    aiosqlite = pytest.importorskip("aiosqlite")
    path = tmp_path / "gen.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE g (id integer PRIMARY KEY, ssn text, last4 text GENERATED ALWAYS AS (substr(ssn, 8)))")
    setup.executemany("INSERT INTO g (id, ssn) VALUES (?, ?)", [(i, f"536-22-{8700 + i}") for i in range(1, 31)])
    setup.commit()
    loop = asyncio.new_event_loop()
    try:
        conn = loop.run_until_complete(aiosqlite.connect(path))
        governed = governed_db.wrap(conn, identity=AGENT, environment="production", audit=False)
        sync = governed_db.wrap(sqlite3.connect(path), identity=AGENT, environment="production", audit=False)

        def run_async(sql: str) -> Any:
            async def go() -> Any:
                cur = await governed.execute(sql)
                return await cur.fetchall()

            return loop.run_until_complete(go())

        _check(lambda sql: sync.execute(sql).fetchall(), run_async, lambda sql: setup.execute(sql).fetchall(), "g")
        sync.close()
        loop.run_until_complete(conn.close())
    finally:
        loop.close()
        setup.close()
