"""An async connection answers every statement exactly as the sync connection of the same database does.

Async drivers cannot run masking's catalog reads while a statement is judged: they are read ahead with ``await``
(``AsyncDriver.warm_catalog``) and replayed, from a list kept beside the sync readers. A reader missing from that
list, or a driver hook written for one side only, shows as a difference between the two sides: asyncpg once
returned a generated column over an SSN in clear where psycopg masked it. This runs one battery of reads, filters,
groupings, whole-row values, views, generated columns and refused copies through the sync driver and each async
peer of the same server (psycopg and asyncpg and psycopg's ``AsyncConnection`` on PostgreSQL; PyMySQL and
aiomysql on MariaDB; sqlite3 and aiosqlite on SQLite) and compares everything the caller sees — rows (values
normalised across drivers' Python types), refusals by rule, errors by occurrence — and then the database, which
no refused statement may have changed.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import json
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import Identity

AGENT = Identity("curious-agent", kind="agent")
PEOPLE = [
    (i, name, f"{name.split()[0].lower()}.{i}@example.com", f"536-22-{8700 + i}", city, note, f"+1 415 555 {1200 + i}")
    for i, (name, city, note) in enumerate(
        [
            ("Alice Martin", "Paris", "prefers mail"),
            ("Ivan Petrov", "Lyon", "write to ivan.p@corp.example"),
            ("Bob Stone", "Rome", "ok"),
            ("Chloe Durand", "Paris", "call +1 415 555 0199 after 6"),
            ("Dan Brown", "Oslo", "ok"),
            ("Eva Green", "Lyon", "no contact"),
        ]
        * 6,
        start=1,
    )
]
ORDERS = [(i, 1 + i % 12, 10 * i, f"2026-0{1 + i % 9}-1{i % 10}") for i in range(1, 41)]

#: what every dialect runs ({c}: the people table, {o}: orders, {v}: a view renaming the e-mail)
COMMON = [
    "SELECT * FROM {c} ORDER BY id LIMIT 5",
    "SELECT * FROM {v} ORDER BY id LIMIT 5",
    "SELECT id, last4 FROM {c} ORDER BY id LIMIT 3",
    "SELECT id, full_name, email FROM {c} WHERE id = 3",
    "SELECT upper(email), lower(full_name) FROM {c} ORDER BY id LIMIT 3",
    "SELECT substr(ssn, 1, 3) FROM {c} WHERE id = 2",
    "SELECT notes FROM {c} ORDER BY id LIMIT 6",
    "SELECT city, count(*) AS n FROM {c} GROUP BY city ORDER BY city",
    "SELECT c.id, c.full_name, count(o.id) AS n FROM {c} c LEFT JOIN {o} o ON o.customer_id = c.id "
    "GROUP BY c.id, c.full_name ORDER BY c.id LIMIT 5",
    "SELECT o.id, o.amount, c.email FROM {o} o JOIN {c} c ON c.id = o.customer_id ORDER BY o.id LIMIT 4",
    "WITH x AS (SELECT * FROM {c}) SELECT email, city FROM x WHERE id = 4",
    "SELECT id FROM {c} WHERE city LIKE 'Par%' ORDER BY id",
    "SELECT count(*) FROM {c} WHERE email = 'alice.1@example.com'",
    "SELECT count(*) FROM {c} WHERE ssn LIKE '536%'",
    "SELECT count(DISTINCT ssn) FROM {c}",
    "SELECT id FROM {c} ORDER BY email LIMIT 3",
    "SELECT count(*) FROM (SELECT substr(ssn, 1, 1) FROM {c} WHERE id = 1 INTERSECT SELECT '5') t",
    "SELECT max(full_name) FROM {c}",
    "SELECT id, CASE WHEN email LIKE 'a%' THEN 1 ELSE 0 END FROM {c} ORDER BY id LIMIT 3",
    "SELECT id, phone FROM {c} WHERE id IN (1, 2) ORDER BY id",
    "SELECT contact FROM {v} WHERE id = 2",
    "SELECT count(*) FROM {v} WHERE contact LIKE 'a%'",
    "UPDATE {c} SET city = email WHERE id = 1",
    "UPDATE {c} SET city = 'Nice' WHERE ssn = '536-22-8701'",
    "INSERT INTO {o} (id, customer_id, amount, placed) SELECT 999, id, length(email), '2026-01-01' FROM {c} WHERE id = 1",
]
DIALECT = {
    "postgres": [
        "SELECT to_jsonb(c) FROM {c} c WHERE id = 1",
        "SELECT c::text FROM {c} c WHERE id = 2",
        "SELECT string_agg(email, ',' ORDER BY id) FROM {c} WHERE id < 4",
        "SELECT profile->>'phone', profile FROM {c} WHERE id = 1",
        "SELECT id, words::text FROM {c} WHERE id = 1",
    ],
    "mysql": [
        "SELECT JSON_OBJECT('e', email, 'id', id) FROM {c} WHERE id = 1",
        "SELECT GROUP_CONCAT(email ORDER BY id) FROM {c} WHERE id < 4",
        "SELECT JSON_EXTRACT(profile, '$.phone'), profile FROM {c} WHERE id = 1",
    ],
    "sqlite": [
        "SELECT json_object('e', email, 'id', id) FROM {c} WHERE id = 1",
        "SELECT group_concat(email, ',') FROM (SELECT email FROM {c} WHERE id < 4 ORDER BY id)",
        "SELECT json_extract(profile, '$.phone'), profile FROM {c} WHERE id = 1",
        "SELECT rowid, body FROM {f} WHERE {f} MATCH 'call' ORDER BY rowid LIMIT 3",
    ],
}

SCHEMA = {
    "postgres": [
        "CREATE TABLE {c} (id int PRIMARY KEY, full_name text, email text, ssn text, city text, notes text, "
        "phone text, profile jsonb, last4 text GENERATED ALWAYS AS (right(ssn, 4)) STORED, "
        "words tsvector GENERATED ALWAYS AS (to_tsvector('simple', ssn)) STORED)",
        "CREATE TABLE {o} (id int PRIMARY KEY, customer_id int, amount numeric(10, 2), placed date)",
        "CREATE VIEW {v} AS SELECT id, email AS contact, city FROM {c}",
    ],
    "mysql": [
        "CREATE TABLE {c} (id int PRIMARY KEY, full_name varchar(80), email varchar(80), ssn varchar(20), "
        "city varchar(40), notes varchar(200), phone varchar(40), profile json, "
        "last4 varchar(4) GENERATED ALWAYS AS (right(ssn, 4)) STORED)",
        "CREATE TABLE {o} (id int PRIMARY KEY, customer_id int, amount decimal(10, 2), placed date)",
        "CREATE VIEW {v} AS SELECT id, email AS contact, city FROM {c}",
    ],
    "sqlite": [
        "CREATE TABLE {c} (id integer PRIMARY KEY, full_name text, email text, ssn text, city text, notes text, "
        "phone text, profile text, last4 text GENERATED ALWAYS AS (substr(ssn, 8)))",
        "CREATE TABLE {o} (id integer PRIMARY KEY, customer_id int, amount numeric, placed date)",
        "CREATE VIEW {v} AS SELECT id, email AS contact, city FROM {c}",
        "CREATE VIRTUAL TABLE {f} USING fts5(body)",
    ],
}


def _norm(value: Any) -> Any:
    """One value as every driver would show it: JSON documents parsed (psycopg returns dicts, asyncpg and PyMySQL
    text), numbers and dates as text."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _norm(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_norm(v) for v in value]
    if isinstance(value, decimal.Decimal | float):
        return format(decimal.Decimal(str(value)).normalize(), "f")
    if isinstance(value, datetime.date | int):
        return str(value)
    return value


def _outcome(run: Callable[[str], Any], sql: str) -> Any:
    try:
        rows = run(sql)
    except governed_db.GuardrailViolation as e:
        return ("refused", tuple(sorted(e.rules)))
    except Exception:
        return ("error",)
    return [_norm(tuple(r)) for r in rows] if rows is not None else None


async def _aoutcome(run: Callable[[str], Awaitable[Any]], sql: str) -> Any:
    """:func:`_outcome` of an async driver's statement."""
    try:
        rows = await run(sql)
    except governed_db.GuardrailViolation as e:
        return ("refused", tuple(sorted(e.rules)))
    except Exception:
        return ("error",)
    return [_norm(tuple(r)) for r in rows] if rows is not None else None


def _battery(dialect: str, names: dict[str, str]) -> list[str]:
    return [sql.format(**names) for sql in COMMON + DIALECT[dialect]]


def _populate(run: Callable[[str, Any], Any], dialect: str, names: dict[str, str]) -> None:
    mark = "%s" if dialect != "sqlite" else "?"
    for stmt in SCHEMA[dialect]:
        run(stmt.format(**names), None)
    for p in PEOPLE:
        profile = json.dumps({"phone": p[6], "tier": "gold"})
        run(f"INSERT INTO {names['c']} (id, full_name, email, ssn, city, notes, phone, profile) "
            f"VALUES ({', '.join([mark] * 8)})", (*p, profile))
    for o in ORDERS:
        run(f"INSERT INTO {names['o']} VALUES ({', '.join([mark] * 4)})", o)
    if dialect == "sqlite":
        for p in PEOPLE[:8]:
            run(f"INSERT INTO {names['f']} VALUES ({mark})", (f"call {p[1]} on {p[6]}",))


def _snapshot(run: Callable[[str, Any], Any], names: dict[str, str]) -> Any:
    return (run(f"SELECT id, city FROM {names['c']} ORDER BY id", None),
            run(f"SELECT count(*) FROM {names['o']}", None))


def _compare(sides: dict[str, list[Any]], battery: list[str]) -> None:
    base_name, base = next(iter(sides.items()))
    for name, seen in sides.items():
        diffs = [(sql, b, s) for sql, b, s in zip(battery, base, seen, strict=True) if b != s]
        assert not diffs, f"{name} differs from {base_name}: {diffs}"
    # the battery is not vacuous: it masks, refuses and runs
    flat = repr(base)
    assert "refused" in flat and ("[EMAIL" in flat or "[SENSITIVE]" in flat), base
    for secret in ("alice.1@example.com", "536-22-8701", "8701", "ivan.p@corp", "555 0199", "Alice Martin"):
        assert secret not in flat, (secret, base)
    assert sum(isinstance(x, list) for x in base) >= len(battery) // 2, base


def _wrap(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)


@pytest.fixture
def pg_names(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    names = {"c": f"apar_{unique}_c", "o": f"apar_{unique}_o", "v": f"apar_{unique}_v"}

    def run(sql: str, params: Any) -> Any:
        cur = pg_conn.execute(sql, params)
        return cur.fetchall() if cur.description else None

    try:
        _populate(run, "postgres", names)
        yield names
    finally:
        pg_conn.execute(f"DROP VIEW IF EXISTS {names['v']}")
        pg_conn.execute(f"DROP TABLE IF EXISTS {names['c']}, {names['o']}")


def test_postgres_async_peers_see_what_psycopg_sees(pg_conn: Any, pg_dsn: str, pg_names: dict[str, str]) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    import psycopg

    battery = _battery("postgres", pg_names)
    before = _snapshot(lambda sql, p: pg_conn.execute(sql).fetchall(), pg_names)
    sync = _wrap(psycopg.connect(pg_dsn, autocommit=True))

    def sync_run(sql: str) -> Any:
        cur = sync.execute(sql)
        return cur.fetchall() if cur.description else None

    try:
        seen_sync = [_outcome(sync_run, sql) for sql in battery]
    finally:
        sync.close()
    parts = dict(p.split("=", 1) for p in pg_dsn.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts.get('port', '5432')}/{parts['dbname']}"

    async def via_asyncpg() -> list[Any]:
        conn = _wrap(await asyncpg.connect(url))

        async def run(sql: str) -> Any:
            rows = await conn.fetch(sql)
            return rows if rows else _empty_or_write(sql, rows)

        try:
            return [await _aoutcome(run, sql) for sql in battery]
        finally:
            await conn.close()

    async def via_psycopg_async() -> list[Any]:
        conn = _wrap(await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True))

        async def run(sql: str) -> Any:
            cur = await conn.execute(sql)
            return await cur.fetchall() if cur.description else None

        try:
            return [await _aoutcome(run, sql) for sql in battery]
        finally:
            await conn.close()

    seen = {"psycopg": seen_sync, "asyncpg": asyncio.run(via_asyncpg()),
            "psycopg async": asyncio.run(via_psycopg_async())}
    _compare(seen, battery)
    assert _snapshot(lambda sql, p: pg_conn.execute(sql).fetchall(), pg_names) == before


def _empty_or_write(sql: str, rows: Any) -> Any:
    """asyncpg's ``fetch`` returns [] for a statement without rows; the DB-API drivers have no description."""
    return [] if sql.lstrip().upper().startswith(("SELECT", "WITH")) else None


@pytest.fixture
def md_names(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    names = {"c": f"apar_{unique}_c", "o": f"apar_{unique}_o", "v": f"apar_{unique}_v"}

    def run(sql: str, params: Any) -> Any:
        with mysql_conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None

    try:
        _populate(run, "mysql", names)
        yield names
    finally:
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP VIEW IF EXISTS {names['v']}")
            cur.execute(f"DROP TABLE IF EXISTS {names['c']}, {names['o']}")


def test_mariadb_aiomysql_sees_what_pymysql_sees(mysql_conn: Any, mysql_kw: dict[str, Any],
                                                 md_names: dict[str, str]) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    import pymysql

    def raw_run(sql: str, params: Any) -> Any:
        with mysql_conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    battery = _battery("mysql", md_names)
    before = _snapshot(raw_run, md_names)
    sync = _wrap(pymysql.connect(autocommit=True, **mysql_kw))

    def sync_run(sql: str) -> Any:
        cur = sync.cursor()
        cur.execute(sql)
        return cur.fetchall() if cur.description else None

    try:
        seen_sync = [_outcome(sync_run, sql) for sql in battery]
    finally:
        sync.close()

    async def via_aiomysql() -> list[Any]:
        args = dict(mysql_kw)
        args["db"] = args.pop("database")  # aiomysql's name for it
        conn = _wrap(await aiomysql.connect(autocommit=True, **args))

        async def run(sql: str) -> Any:
            cur = await conn.cursor()
            await cur.execute(sql)
            return await cur.fetchall() if cur.description else None

        try:
            return [await _aoutcome(run, sql) for sql in battery]
        finally:
            conn.close()

    _compare({"PyMySQL": seen_sync, "aiomysql": asyncio.run(via_aiomysql())}, battery)
    assert _snapshot(raw_run, md_names) == before


def test_sqlite_aiosqlite_sees_what_sqlite3_sees(tmp_path: Path) -> None:
    aiosqlite = pytest.importorskip("aiosqlite")
    path = tmp_path / "parity.db"
    names = {"c": "people", "o": "orders", "v": "contacts", "f": "calls"}
    setup = sqlite3.connect(path)
    _populate(lambda sql, p: setup.execute(sql, p or ()).fetchall(), "sqlite", names)
    setup.commit()
    raw_run = lambda sql, p: setup.execute(sql).fetchall()  # noqa: E731
    battery = _battery("sqlite", names)
    before = _snapshot(raw_run, names)
    sync = _wrap(sqlite3.connect(path))

    def sync_run(sql: str) -> Any:
        cur = sync.execute(sql)
        rows = cur.fetchall() if cur.description else None
        sync.commit()
        return rows

    try:
        seen_sync = [_outcome(sync_run, sql) for sql in battery]
    finally:
        sync.close()

    async def via_aiosqlite() -> list[Any]:
        conn = _wrap(await aiosqlite.connect(path))

        async def run(sql: str) -> Any:
            cur = await conn.execute(sql)
            rows = await cur.fetchall() if cur.description else None
            await conn.commit()
            return rows

        try:
            return [await _aoutcome(run, sql) for sql in battery]
        finally:
            await conn.close()

    try:
        _compare({"sqlite3": seen_sync, "aiosqlite": asyncio.run(via_aiosqlite())}, battery)
        assert _snapshot(raw_run, names) == before
    finally:
        setup.close()
