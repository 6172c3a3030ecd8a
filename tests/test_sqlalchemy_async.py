"""governed_db.sqlalchemy.create_async_engine: asyncpg, psycopg async, aiosqlite, aiomysql; Core and ORM."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sa = pytest.importorskip("sqlalchemy")
pytest.importorskip("greenlet")
from sqlalchemy import Column, Integer, String, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402
from sqlalchemy.orm import DeclarativeBase  # noqa: E402

import governed_db  # noqa: E402
from governed_db.errors import ConfigurationError  # noqa: E402
from governed_db.integrations.sqlalchemy import create_async_engine, is_governed, refusal_of  # noqa: E402
from tests.conftest import MYSQL_KW, PG_DSN, leaked  # noqa: E402

pytestmark = pytest.mark.anyio
BACKENDS = ["sqlite+aiosqlite", "postgresql+asyncpg", "postgresql+psycopg_async", "mysql+aiomysql"]


def _url(name: str, tmp_path: Path, request: Any) -> str:
    if name.startswith("sqlite"):
        return f"{name}:///{tmp_path / 'app.db'}"
    if name.startswith("postgresql"):
        request.getfixturevalue("pg_dsn")
        parts = dict(p.split("=", 1) for p in PG_DSN.split())
        return f"{name}://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    request.getfixturevalue("mysql_kw")
    pytest.importorskip("aiomysql")
    return f"{name}://{MYSQL_KW['user']}:@{MYSQL_KW['host']}:{MYSQL_KW['port']}/{MYSQL_KW['database']}"


@dataclass
class Env:
    engine: Any  # governed
    table: str
    setup: Any  # ungoverned, for setup and checks


@pytest.fixture(params=BACKENDS)
async def env(request: Any, tmp_path: Path, unique: str, spans: Any) -> AsyncIterator[Env]:
    driver = request.param.split("+")[1].replace("_async", "")
    pytest.importorskip(driver)
    table = f"gdsa_{unique}"
    url = _url(request.param, tmp_path, request)
    setup = sa.ext.asyncio.create_async_engine(url)  # ungoverned, for setup and checks
    async with setup.begin() as conn:
        await conn.execute(text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, email VARCHAR(100))"))
        await conn.execute(text(f"INSERT INTO {table} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')"))
    eng = create_async_engine(url, environment="production", tracer_provider=spans[0])
    try:
        yield Env(eng, table, setup)
    finally:
        await eng.dispose()
    async with setup.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    await setup.dispose()


async def _count(env: Env) -> int:
    table = env.table
    async with env.setup.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_refusal_is_a_dbapi_error_and_leaves_the_table(env: Env) -> None:
    """A refused DROP is sqlalchemy.exc.DBAPIError with the GuardrailViolation behind it; the rows stay."""
    eng, table = env.engine, env.table
    assert is_governed(eng.sync_engine)
    async with eng.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError) as caught:
            await conn.execute(text(f"DROP TABLE {table}"))
        assert refusal_of(caught.value) is not None
    async with eng.connect() as conn:  # the pool keeps working after a refusal
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    assert await _count(env) == 2


async def test_core_and_orm_results_are_masked(env: Env) -> None:
    """Core execute, stream, and ORM select/stream hand out masked e-mails only."""
    eng, table = env.engine, env.table

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = table
        id = Column(Integer, primary_key=True)
        email = Column(String(100))

    got: dict[str, Any] = {}
    async with eng.connect() as conn:
        got["core"] = [tuple(r) for r in await conn.execute(text(f"SELECT id, email FROM {table} ORDER BY id"))]
        result = await conn.stream(text(f"SELECT id, email FROM {table} ORDER BY id"))
        got["core stream"] = [tuple(r) async for r in result]
    async with AsyncSession(eng) as session:
        users = (await session.execute(select(User).order_by(User.id))).scalars().all()
        got["orm"] = [(u.id, u.email) for u in users]
        streamed = await session.stream(select(User.id, User.email).order_by(User.id))
        got["orm stream"] = [tuple(r) async for r in streamed]
    for path, rows in got.items():
        assert rows == [(1, "a***@example.com"), (2, "b***@example.com")], path
    assert not leaked(got)


async def test_orm_writes_are_governed(env: Env, spans: Any) -> None:
    """An ORM unit of work runs through the pipeline (recorded); a refused bulk delete changes nothing."""
    eng, table = env.engine, env.table
    spans[1].clear()
    async with eng.begin() as conn:
        await conn.execute(text(f"INSERT INTO {table} (id, email) VALUES (3, 'c@example.com')"))
    assert any(s.name.startswith("INSERT") for s in spans[1].get_finished_spans())
    async with AsyncSession(eng) as session:
        with pytest.raises(sa.exc.DBAPIError):
            await session.execute(text(f"DELETE FROM {table}"))
    assert await _count(env) == 3


async def test_creator_arguments_are_refused() -> None:
    """async_creator= would bypass the hook: refused with the alternative named."""
    with pytest.raises(ConfigurationError, match="creator"):
        create_async_engine("sqlite+aiosqlite://", async_creator=lambda: None)


def test_sync_engine_is_unchanged(tmp_path: Path) -> None:
    """The sync create_engine still governs sqlite3 connections (no async adapter involved)."""
    from governed_db.integrations.sqlalchemy import create_engine

    path = tmp_path / "s.db"
    sqlite3.connect(path).close()
    eng = create_engine(f"sqlite:///{path}")
    with eng.connect() as conn:
        assert type(conn.connection.dbapi_connection).__module__.startswith("governed_db")
    eng.dispose()
    assert governed_db is not None


async def test_identity_is_per_task_through_the_engine(env: Env, spans: Any) -> None:
    """Two concurrent tasks acting as different identities on one async engine: each statement is theirs.

    (asyncpg statements are judged, and recorded, when prepared as well: those records are left out.)"""
    import asyncio

    from governed_db import Identity, acting_as

    eng, table = env.engine, env.table
    spans[1].clear()

    async def act(name: str) -> None:
        with acting_as(Identity(name, kind="agent")):
            for _ in range(2):
                async with eng.connect() as conn:
                    await conn.execute(text(f"SELECT email FROM {table}"))
                await asyncio.sleep(0)

    await asyncio.gather(act("bot-a"), act("bot-b"))
    by_subject: dict[str, int] = {}
    for s in spans[1].get_finished_spans():
        attrs = s.attributes or {}
        if attrs.get("governed_db.entry") == "connection.prepare":
            continue
        if str(attrs.get("db.query.text", "")).startswith(f"SELECT email FROM {table}"):
            subject = str(attrs["governed_db.identity.subject"])
            by_subject[subject] = by_subject.get(subject, 0) + 1
    assert by_subject == {"bot-a": 2, "bot-b": 2}


#: asyncpg's dialect prepares then executes each statement, and both are judged (and counted) today: left out
#: here, reported to the async drivers' owner; its connect-time queries are exempt like the others'
ONE_JUDGEMENT_PER_STATEMENT = [b for b in BACKENDS if b != "postgresql+asyncpg"]


@pytest.mark.parametrize("name", ONE_JUDGEMENT_PER_STATEMENT)
async def test_connect_housekeeping_spends_no_rate_limit_budget(name: str, tmp_path: Path, request: Any) -> None:
    """Under a 2-per-minute limit the async dialect's connect-time queries are free: 2 own statements run."""
    pytest.importorskip(name.split("+")[1].replace("_async", ""))
    eng = create_async_engine(_url(name, tmp_path, request), environment="production", audit=False,
                              identity=governed_db.Identity("bot", kind="agent"),
                              policy={"limits": [{"when": {"kind": "agent"}, "statements_per_minute": 2}]})
    try:
        async with eng.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
            assert (await conn.execute(text("SELECT 2"))).scalar_one() == 2
            with pytest.raises(sa.exc.DBAPIError) as info:
                await conn.execute(text("SELECT 3"))
            assert refusal_of(info.value).rules == ("rate-limit-statements",)  # type: ignore[union-attr]
    finally:
        await eng.dispose()
