"""aiomysql: cursors (plain, DictCursor, SSCursor), execute/executemany/callproc, fetch*, async for, query()."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import GuardrailViolation
from tests.conftest import MYSQL_KW, audit_names, leaked

aiomysql = pytest.importorskip("aiomysql")
pytestmark = pytest.mark.anyio

MASKED = [(1, "a***@example.com"), (2, "b***@example.com")]


@pytest.fixture
async def env(mysql_kw: dict[str, Any], spans: Any, unique: str, tmp_path: Path) -> AsyncIterator[Any]:
    kw = dict(MYSQL_KW)
    raw = await aiomysql.connect(
        host=kw["host"], port=kw["port"], user=kw["user"], password=kw["password"], db=kw["database"],
        autocommit=True,
    )
    table = f"gdam_{unique}"
    async with raw.cursor() as c:
        await c.execute(f"CREATE TABLE {table} (id int, email varchar(100))")
        await c.execute(f"INSERT INTO {table} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')")
    conn = governed_db.wrap(raw, environment="production", tracer_provider=spans[0], audit=tmp_path / "audit")
    yield conn, table, raw
    async with raw.cursor() as c:
        await c.execute(f"DROP TABLE IF EXISTS {table}")
    raw.close()


async def _count(raw: Any, table: str) -> int:
    async with raw.cursor() as c:
        await c.execute(f"SELECT count(*) FROM {table}")
        return int((await c.fetchone())[0])


async def test_refusals_leave_the_table_unchanged(env: Any) -> None:
    """execute/executemany/query of refused statements raise pymysql's ProgrammingError; rows stay."""
    conn, table, raw = env
    async with conn.cursor() as cur:
        with pytest.raises(aiomysql.ProgrammingError):
            await cur.execute(f"DROP TABLE {table}")
        with pytest.raises(GuardrailViolation):
            await cur.executemany(f"DELETE FROM {table} WHERE 1 = %s", [(1,)])
    with pytest.raises(GuardrailViolation):
        await conn.query(f"DROP TABLE {table}")
    assert await _count(raw, table) == 2


async def test_every_exit_is_masked(env: Any) -> None:
    """fetchone/fetchmany/fetchall, async for, DictCursor, SSCursor: no raw e-mail leaves."""
    conn, table, _ = env
    q = f"SELECT id, email FROM {table} ORDER BY id"
    got: dict[str, Any] = {}
    async with conn.cursor() as cur:
        await cur.execute(q)
        got["fetchone"] = [await cur.fetchone(), await cur.fetchone()]
        await cur.execute(f"SELECT id, email FROM {table} WHERE id >= %s ORDER BY id", (1,))
        got["fetchmany"] = await cur.fetchmany(5)
        await cur.execute(q)
        got["fetchall"] = await cur.fetchall()
        await cur.execute(q)
        got["async for"] = [r async for r in cur]
    cur = await conn.cursor(aiomysql.DictCursor)
    await cur.execute(q)
    got["dict"] = [tuple(r.values()) for r in await cur.fetchall()]
    await cur.close()
    cur = await conn.cursor(aiomysql.SSCursor)
    await cur.execute(q)
    got["unbuffered"] = [await cur.fetchone(), *(await cur.fetchall())]
    await cur.close()
    for p, rows in got.items():
        assert [tuple(r) for r in rows] == MASKED, p
    assert not leaked(got)


async def test_writes_run_when_allowed(env: Any) -> None:
    """executemany of allowed inserts runs on the server."""
    conn, table, raw = env
    async with conn.cursor() as cur:
        await cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(3, "c@example.com"), (4, "d@example.com")])
    assert await _count(raw, table) == 4


async def test_private_result_is_withheld(env: Any) -> None:
    """The connection's raw result (read by cursors built on it directly) is not reachable."""
    conn, _, _ = env
    with pytest.raises(AttributeError, match="withholds"):
        conn._result  # noqa: B018


async def test_spans_and_audit_records(env: Any, spans: Any, tmp_path: Path) -> None:
    """Each statement is one span; the refusal is in the audit store."""
    conn, table, _ = env
    spans[1].clear()
    async with conn.cursor() as cur:
        await cur.execute(f"SELECT id, email FROM {table}")
        await cur.fetchall()
        with pytest.raises(GuardrailViolation):
            await cur.execute(f"DROP TABLE {table}")
    finished = spans[1].get_finished_spans()
    assert [s.attributes["governed_db.decision"] for s in finished] == ["allow", "deny"]
    assert (f"DROP TABLE {table}", "deny") in audit_names(tmp_path / "audit")
