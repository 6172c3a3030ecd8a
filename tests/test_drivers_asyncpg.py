"""asyncpg: fetch/fetchrow/fetchval/execute/executemany/fetchmany/cursor/prepare/copy_*, Record rows masked."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import GuardrailViolation, InvalidStatement
from governed_db.drivers.asyncpg import GovernedRecord
from tests.conftest import PG_DSN, audit_names, leaked

asyncpg = pytest.importorskip("asyncpg")
pytestmark = pytest.mark.anyio


def _url() -> str:
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    return f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"


@pytest.fixture
async def env(pg_dsn: str, spans: Any, unique: str, tmp_path: Path) -> AsyncIterator[tuple[Any, str, Any]]:
    raw = await asyncpg.connect(_url())
    table = f"gdap_{unique}"
    await raw.execute(f"CREATE TABLE {table} (id int, email text)")
    await raw.execute(f"INSERT INTO {table} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')")
    conn = governed_db.wrap(raw, environment="production", tracer_provider=spans[0], audit=tmp_path / "audit")
    yield conn, table, raw
    await raw.execute(f"DROP TABLE IF EXISTS {table}")
    await raw.close()


MASKED = [(1, "a***@example.com"), (2, "b***@example.com")]


async def test_refusals_leave_the_database_unchanged(env: Any) -> None:
    """execute/fetch/executemany/prepare of a refused statement raise before the server sees it."""
    conn, table, raw = env
    for attempt in (
        lambda: conn.execute(f"DROP TABLE {table}"),
        lambda: conn.execute(f"DELETE FROM {table}"),
        lambda: conn.fetch(f"DELETE FROM {table} RETURNING id"),
        lambda: conn.executemany(f"DELETE FROM {table}", [()]),
        lambda: conn.prepare(f"DROP TABLE {table}"),
    ):
        with pytest.raises(GuardrailViolation):
            await attempt()
    assert await raw.fetchval(f"SELECT count(*) FROM {table}") == 2


async def test_refusal_is_an_asyncpg_error(env: Any) -> None:
    """A refusal is also asyncpg's InsufficientPrivilegeError (SQLAlchemy maps it to ProgrammingError)."""
    conn, table, _ = env
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        await conn.execute(f"DROP TABLE {table}")


async def test_every_exit_is_masked(env: Any) -> None:
    """fetch, fetchrow, fetchval, fetchmany, cursor (iterated and awaited), prepared statements: all masked."""
    conn, table, _ = env
    q = f"SELECT id, email FROM {table} ORDER BY id"
    got: dict[str, Any] = {
        "fetch": await conn.fetch(q),
        "fetchrow": [await conn.fetchrow(q), await conn.fetchrow(f"SELECT id, email FROM {table} WHERE id = $1", 2)],
        "fetchmany": await conn.fetchmany(f"SELECT id, email FROM {table} WHERE id = $1", [(1,), (2,)]),
    }
    async with conn.transaction():
        got["cursor iterated"] = [r async for r in conn.cursor(q)]
        cur = await conn.cursor(q)
        got["cursor awaited"] = [await cur.fetchrow(), *(await cur.fetch(5))]
    ps = await conn.prepare(f"SELECT id, email FROM {table} WHERE id >= $1 ORDER BY id")
    got["prepared fetch"] = await ps.fetch(1)
    got["prepared fetchrow"] = [await ps.fetchrow(1), await ps.fetchrow(2)]
    async with conn.transaction():
        got["prepared cursor"] = [r async for r in ps.cursor(1)]
    for path, rows in got.items():
        assert [tuple(r) for r in rows] == MASKED, path
    assert await conn.fetchval(q) == 1 and await conn.fetchval(q, column=1) == "a***@example.com"
    assert await conn.fetchval(q, column="email") == "a***@example.com"
    assert await ps.fetchval(2, column=1) == "b***@example.com"
    assert not leaked(got)


async def test_masked_records_behave_like_records(env: Any) -> None:
    """A masked row answers like an asyncpg Record: index, key, slice, get, keys/values/items, dict(), ==."""
    conn, table, _ = env
    rec = await conn.fetchrow(f"SELECT id, email FROM {table} WHERE id = $1", 1)
    assert isinstance(rec, GovernedRecord)
    assert rec[1] == rec["email"] == rec.get("email") == "a***@example.com"
    assert rec[0:1] == (1,) and len(rec) == 2 and "email" in rec and rec.get("nope", 7) == 7
    assert list(rec.keys()) == ["id", "email"] and list(rec.values()) == [1, "a***@example.com"]
    assert dict(rec.items()) == dict(rec) == {"id": 1, "email": "a***@example.com"}
    assert rec == (1, "a***@example.com") and repr(rec) == "<Record id=1 email='a***@example.com'>"
    with pytest.raises(KeyError):
        rec["nope"]
    plain = await conn.fetchrow(f"SELECT id FROM {table} WHERE id = $1", 1)
    assert type(plain) is asyncpg.Record  # nothing masked: the driver's own Record


async def test_copy_exports_of_masked_columns_are_refused(env: Any) -> None:
    """copy_from_query/copy_from_table refuse masked columns (fail closed) and export the rest."""
    conn, table, _ = env
    out = io.BytesIO()
    with pytest.raises(GuardrailViolation):
        await conn.copy_from_query(f"SELECT email FROM {table}", output=out)
    with pytest.raises(GuardrailViolation):
        await conn.copy_from_table(table, output=out)
    assert out.getvalue() == b""
    await conn.copy_from_table(table, columns=["id"], output=out)
    await conn.copy_from_query(f"SELECT id FROM {table} WHERE id = $1", 2, output=out)
    assert sorted(out.getvalue().split()) == [b"1", b"2", b"2"]


async def test_copy_into_tables_is_judged(env: Any, spans: Any) -> None:
    """copy_records_to_table/copy_to_table are judged as COPY ... FROM STDIN and load the rows."""
    conn, table, raw = env
    spans[1].clear()
    await conn.copy_records_to_table(table, records=[(3, "c@example.com")])
    await conn.copy_to_table(table, source=io.BytesIO(b"4\td@example.com\n"))
    assert await raw.fetchval(f"SELECT count(*) FROM {table}") == 4
    names = [s.name for s in spans[1].get_finished_spans()]
    assert names and all(n.startswith("COPY") for n in names)
    with pytest.raises(InvalidStatement):
        await conn.copy_to_table(42, source=io.BytesIO(b""))


async def test_execute_executemany_and_transactions(env: Any) -> None:
    """$1 parameters, executemany and a rolled-back transaction behave as asyncpg's own."""
    conn, table, raw = env
    assert await conn.execute(f"UPDATE {table} SET id = id WHERE id = $1", 1) == "UPDATE 1"
    await conn.executemany(f"INSERT INTO {table} VALUES ($1, $2)", [(5, "e@example.com"), (6, "f@example.com")])
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {table} VALUES (7, 'g@example.com')")
            raise RuntimeError("roll back")
    assert await raw.fetchval(f"SELECT count(*) FROM {table}") == 4


async def test_wrong_paramstyle_is_named(env: Any) -> None:
    """A %s placeholder (another driver's paramstyle) is refused with asyncpg's $n named."""
    conn, table, _ = env
    with pytest.raises(InvalidStatement, match=r"\$1"):
        await conn.fetch(f"SELECT id FROM {table} WHERE id = %s", 1)


async def test_spans_and_audit_records(env: Any, spans: Any, tmp_path: Path) -> None:
    """Each call is one span with its entry point; refusals and rows read are in the audit store."""
    conn, table, _ = env
    spans[1].clear()
    await conn.fetch(f"SELECT id, email FROM {table}")
    with pytest.raises(GuardrailViolation):
        await conn.execute(f"DROP TABLE {table}")
    finished = spans[1].get_finished_spans()
    assert [s.attributes["governed_db.decision"] for s in finished] == ["allow", "deny"]
    assert finished[0].attributes["governed_db.masked_columns"] == ("email",)
    assert (f"DROP TABLE {table}", "deny") in audit_names(tmp_path / "audit")


async def test_private_protocol_is_withheld(env: Any) -> None:
    """The connection's private protocol object (which runs SQL directly) is not reachable."""
    conn, _, _ = env
    with pytest.raises(AttributeError, match="withholds"):
        conn._protocol  # noqa: B018


async def test_row_limit_caps_fetch_and_cursors(pg_dsn: str, unique: str) -> None:
    """A limit decision caps fetch(), prepared fetch() and cursor iteration at the limit."""
    from governed_db.policy import Policy
    from governed_db.policy.decision import Action, RuleHit

    def cap(stmt: Any, ctx: Any) -> RuleHit | None:
        return RuleHit("row-cap", Action.LIMIT, "at most 2 rows", row_limit=2)

    raw = await asyncpg.connect(_url())
    try:
        conn = governed_db.wrap(raw, environment="production", policy=Policy(rules=(cap,)))
        q = "SELECT g FROM generate_series(1, 10) g"
        assert len(await conn.fetch(q)) == 2
        assert len(await (await conn.prepare(q)).fetch()) == 2
        async with conn.transaction():
            assert [r[0] async for r in conn.cursor(q)] == [1, 2]
    finally:
        await raw.close()
