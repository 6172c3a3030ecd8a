"""What every async driver shares: per-task identity, unknown async drivers refused, the shared helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import ConfigurationError, GuardrailViolation, Identity, acting_as
from governed_db.async_proxies import looks_async
from governed_db.identity import current_identity

aiosqlite = pytest.importorskip("aiosqlite")
pytestmark = pytest.mark.anyio

ALICE = Identity("alice", kind="human", roles=("support",))
BOT = Identity("report-bot", kind="agent")


@pytest.fixture
async def conn(tmp_path: Path, spans: Any) -> AsyncIterator[Any]:
    path = tmp_path / "app.db"
    async with aiosqlite.connect(path) as setup:
        await setup.execute("CREATE TABLE users (id INTEGER, email TEXT)")
        await setup.execute("INSERT INTO users VALUES (1, 'alice@example.com')")
        await setup.commit()
    raw = await aiosqlite.connect(path)
    governed = governed_db.wrap(
        raw,
        environment="production",
        tracer_provider=spans[0],
        masking={"unmask": [{"role": "support", "labels": ["EMAIL"]}]},
        identity=Identity("nobody", kind="service"),
    )
    yield governed
    await raw.close()


async def test_identity_is_per_task_and_never_leaks(conn: Any, spans: Any) -> None:
    """Two concurrent tasks acting as different identities: each statement carries its own task's identity,
    the grant of one never unmasks for the other, and nothing is left set outside the tasks."""
    spans[1].clear()
    both_inside = asyncio.Barrier(2) if hasattr(asyncio, "Barrier") else None
    seen: dict[str, list[Any]] = {}

    async def act(who: Identity) -> None:
        with acting_as(who):
            for _ in range(3):
                if both_inside is not None:
                    await both_inside.wait()  # both tasks are inside acting_as at the same time
                rows = await conn.execute_fetchall("SELECT email FROM users")
                seen.setdefault(who.subject, []).append(rows[0][0])
                assert current_identity() is who
                await asyncio.sleep(0)

    await asyncio.gather(act(ALICE), act(BOT))
    assert seen["alice"] == ["alice@example.com"] * 3  # the support role's grant unmasks EMAIL
    assert seen["report-bot"] == ["a***@example.com"] * 3
    subjects = [s.attributes["governed_db.identity.subject"] for s in spans[1].get_finished_spans()]
    assert sorted(subjects) == ["alice"] * 3 + ["report-bot"] * 3
    assert current_identity() is None
    assert (await conn.execute_fetchall("SELECT email FROM users"))[0][0] == "a***@example.com"


async def test_a_task_started_inside_acting_as_inherits_it(conn: Any, spans: Any) -> None:
    """asyncio copies the context into a new task: a task created inside acting_as runs as that identity."""
    spans[1].clear()
    with acting_as(BOT):
        task = asyncio.create_task(conn.execute_fetchall("SELECT id FROM users"))
    await task
    assert spans[1].get_finished_spans()[-1].attributes["governed_db.identity.subject"] == "report-bot"


async def test_unknown_async_driver_is_a_clear_error() -> None:
    """wrap() of an async connection of an unknown driver says so (no 'coroutine never awaited')."""

    class Conn:
        async def cursor(self) -> Any:  # an async driver's connection, as far as wrap() can tell
            return None

        async def commit(self) -> None:
            pass

    with pytest.raises(ConfigurationError, match="async connection of a driver governed_db does not know"):
        governed_db.wrap(Conn())
    assert looks_async(Conn()) and not looks_async(object())


async def test_async_connections_refuse_sync_use(conn: Any) -> None:
    """'with' on an async connection says to use 'async with' (as a TypeError, like the driver would)."""
    with pytest.raises(TypeError, match="async with"), conn:
        pass


async def test_unwrap_and_rewrap(conn: Any) -> None:
    """unwrap() gives the driver's connection; wrapping a governed connection again is refused."""
    assert type(governed_db.unwrap(conn)) is aiosqlite.Connection
    with pytest.raises(ConfigurationError, match="already governed"):
        governed_db.wrap(conn)


async def test_decisions_match_the_sync_driver(tmp_path: Path) -> None:
    """The same statements get the same outcome through aiosqlite as through sqlite3, per environment."""
    import sqlite3

    statements = ["SELECT email FROM t", "DELETE FROM t", "DROP TABLE t"]

    def sync_outcomes(env: str) -> list[str]:
        raw = sqlite3.connect(tmp_path / f"s-{env}.db")
        raw.execute("CREATE TABLE t (email TEXT)")
        conn = governed_db.wrap(raw, environment=env)
        out = []
        for sql in statements:
            try:
                conn.execute(sql)
                out.append("ran")
            except GuardrailViolation as e:
                out.append(",".join(e.rules))
        raw.close()
        return out

    async def async_outcomes(env: str) -> list[str]:
        async with aiosqlite.connect(tmp_path / f"a-{env}.db") as raw:
            await raw.execute("CREATE TABLE t (email TEXT)")
            conn = governed_db.wrap(raw, environment=env)
            out = []
            for sql in statements:
                try:
                    await conn.execute(sql)
                    out.append("ran")
                except GuardrailViolation as e:
                    out.append(",".join(e.rules))
            return out

    expected = {env: sync_outcomes(env) for env in ("development", "production")}
    for env, outcomes in expected.items():
        assert await async_outcomes(env) == outcomes, env
    assert expected["production"] != ["ran"] * 3


async def test_catalog_is_read_with_await_and_classifies_as_for_sync(tmp_path: Path) -> None:
    """A column whose name says nothing but whose sampled values are e-mails is masked as sqlite3 masks it;
    the table's catalog is read once (then cached), and never through an unawaited coroutine."""
    import sqlite3
    import warnings

    path = tmp_path / "c.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE contacts (id INTEGER, reach TEXT)")
    setup.executemany("INSERT INTO contacts VALUES (?, ?)", [(i, f"user{i}@example.com") for i in range(20)])
    setup.commit()
    sync_rows = governed_db.wrap(setup, environment="production").execute(
        "SELECT id, reach FROM contacts ORDER BY id"
    ).fetchall()
    setup.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "coroutine ... was never awaited" RuntimeWarning fails the test
        async with aiosqlite.connect(path) as raw:
            conn = governed_db.wrap(raw, environment="production")
            rows = await conn.execute_fetchall("SELECT id, reach FROM contacts ORDER BY id")
            state = conn.governor.state["masking"]
            info = state.tables["contacts"]
            assert info.columns == ["id", "reach"]
            await conn.execute_fetchall("SELECT reach FROM contacts")
            assert state.tables["contacts"] is info  # cached: not read again
    assert [tuple(r) for r in rows] == [tuple(r) for r in sync_rows]
    assert rows[0][1] != "user0@example.com"


async def test_row_limit_caps_every_async_exit(tmp_path: Path) -> None:
    """A limit decision caps rows for fetchall, fetchmany, fetchone, async for and execute_fetchall alike."""
    from governed_db.policy import Policy
    from governed_db.policy.decision import Action, RuleHit

    def cap(stmt: Any, ctx: Any) -> RuleHit | None:
        return RuleHit("row-cap", Action.LIMIT, "at most 3 rows", row_limit=3)

    async with aiosqlite.connect(tmp_path / "cap.db") as raw:
        await raw.execute("CREATE TABLE t (n INTEGER)")
        await raw.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
        conn = governed_db.wrap(raw, environment="production", policy=Policy(rules=(cap,)))
        assert len(await (await conn.execute("SELECT n FROM t")).fetchall()) == 3
        assert len([r async for r in await conn.execute("SELECT n FROM t")]) == 3
        assert len(await conn.execute_fetchall("SELECT n FROM t")) == 3
        cur = await conn.execute("SELECT n FROM t")
        assert len(await cur.fetchmany(2)) == 2 and len(await cur.fetchmany(5)) == 1
        assert await cur.fetchone() is None


async def test_a_failing_catalog_read_still_masks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the awaited catalog reads fail, the statement is still judged and e-mails are still masked."""
    from governed_db.drivers.aiosqlite import AiosqliteDriver

    async def broken(self: Any, raw: Any, sql: str, params: Any) -> Any:
        raise OSError("catalog unreachable")

    monkeypatch.setattr(AiosqliteDriver, "catalog_rows", broken)
    async with aiosqlite.connect(tmp_path / "f.db") as raw:
        await raw.execute("CREATE TABLE users (id INTEGER, email TEXT)")
        await raw.execute("INSERT INTO users VALUES (1, 'alice@example.com')")
        conn = governed_db.wrap(raw, environment="production")
        rows = await conn.execute_fetchall("SELECT * FROM users")
        assert "alice@example.com" not in repr(rows)
        with pytest.raises(GuardrailViolation):
            await conn.execute("DROP TABLE users")
