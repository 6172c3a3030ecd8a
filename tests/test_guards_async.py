"""The effect guard and read-only sessions (governed_db.guards) on the async drivers, against the real servers.

asyncpg, psycopg 3 async, aiosqlite and aiomysql hold the same guarantees as the sync drivers: the database's
state after each attempt is the ground truth, read through a separate, ungoverned connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import Identity, approvals
from governed_db.errors import ApprovalRequired, GovernanceFault, GuardrailViolation
from tests.conftest import MYSQL_KW, PG_DSN

pytestmark = pytest.mark.anyio

AGENT = Identity("orders-bot", kind="agent")
READER = Identity("report-bot", kind="agent")
HUMAN = Identity("alice")
REVIEWER = Identity("bob", roles=("dba",))
READ_ONLY_AGENTS = {"writes": [{"when": {"kind": "agent"}, "read_only": True}]}
SEEDED = [(1, "v1"), (2, "v2"), (3, "v3")]
DRIVERS = ["asyncpg", "psycopg-async", "aiosqlite", "aiomysql"]


def _pg_url() -> str:
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    return f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"


@dataclass
class ADb:
    """One async database: the governed connection, its raw one, and a separate connection for the truth."""

    name: str
    governed: Any
    raw: Any
    table: str
    ph: Callable[[int], str]  # the n-th (1-based) placeholder
    look: Callable[[str], list[Any]]
    begin: Callable[[], Awaitable[Any]]
    commit: Callable[[], Awaitable[Any]]

    async def run(self, sql: str, *params: Any) -> Any:
        text = sql.format(t=self.table, p=self.ph(1), p2=self.ph(2))
        g = self.governed
        if self.name == "asyncpg":
            return await g.execute(text, *params)
        if self.name == "aiomysql":
            async with g.cursor() as cur:
                return await cur.execute(text, params or None)
        return await g.execute(text, params or None) if self.name == "psycopg-async" else await g.execute(
            text, params)

    def rows(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.look(f"SELECT id, s FROM {self.table} ORDER BY id")]


def _seed_sql(table: str, n: int = 3) -> list[str]:
    return [f"CREATE TABLE {table} (id INT PRIMARY KEY, s VARCHAR(20))",
            f"INSERT INTO {table} VALUES " + ", ".join(f"({i}, 'v{i}')" for i in range(1, n + 1))]  # fmt: skip


async def _make(name: str, request: pytest.FixtureRequest, tmp_path: Path, unique: str,
                **kw: Any) -> AsyncIterator[ADb]:  # fmt: skip
    kw = {"identity": AGENT, "environment": "production", "audit": False, **kw}
    table = f"ga_{unique}"
    if name in ("asyncpg", "psycopg-async"):
        request.getfixturevalue("pg_dsn")
        import psycopg

        admin = psycopg.connect(PG_DSN, autocommit=True)
        for sql in _seed_sql(table):
            admin.execute(sql)
        try:
            if name == "asyncpg":
                asyncpg = pytest.importorskip("asyncpg")
                raw: Any = await asyncpg.connect(_pg_url())
                gov = governed_db.wrap(raw, **kw)
                yield ADb(name, gov, raw, table, lambda n: f"${n}", lambda q: admin.execute(q).fetchall(),
                          lambda: raw.execute("BEGIN"), lambda: raw.execute("COMMIT"))  # fmt: skip
            else:
                raw = await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True)
                gov = governed_db.wrap(raw, **kw)

                async def commit() -> None:
                    await raw.commit()
                    await raw.set_autocommit(True)

                yield ADb(name, gov, raw, table, lambda n: "%s", lambda q: admin.execute(q).fetchall(),
                          lambda: raw.set_autocommit(False), commit)  # fmt: skip
            await raw.close()
        finally:
            admin.execute(f"DROP TABLE IF EXISTS {table}")
            admin.close()
    elif name == "aiosqlite":
        aiosqlite = pytest.importorskip("aiosqlite")
        path = tmp_path / "g.db"
        setup = sqlite3.connect(path)
        for sql in _seed_sql(table):
            setup.execute(sql)
        setup.commit()
        setup.close()
        look = sqlite3.connect(path)
        raw = await aiosqlite.connect(path, isolation_level=None)  # autocommit; BEGIN opens a transaction
        gov = governed_db.wrap(raw, **kw)
        yield ADb(name, gov, raw, table, lambda n: "?", lambda q: look.execute(q).fetchall(),
                  lambda: raw.execute("BEGIN"), raw.commit)  # fmt: skip
        await raw.close()
        look.close()
    else:
        request.getfixturevalue("mysql_kw")
        aiomysql = pytest.importorskip("aiomysql")
        import pymysql

        admin = pymysql.connect(autocommit=True, **MYSQL_KW)
        cur = admin.cursor()
        cur.execute(_seed_sql(table)[0] + " ENGINE=InnoDB")
        cur.execute(_seed_sql(table)[1])

        def look(q: str) -> list[Any]:
            cur.execute(q)
            return list(cur.fetchall())

        try:
            raw = await aiomysql.connect(autocommit=True, host=MYSQL_KW["host"], port=MYSQL_KW["port"],
                                         user=MYSQL_KW["user"], password=MYSQL_KW.get("password", ""),
                                         db=MYSQL_KW["database"])  # fmt: skip
            gov = governed_db.wrap(raw, **kw)
            yield ADb(name, gov, raw, table, lambda n: "%s", look, raw.begin, raw.commit)
            raw.close()
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            admin.close()


@pytest.fixture(params=DRIVERS)
async def db(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> AsyncIterator[ADb]:
    async for d in _make(request.param, request, tmp_path, unique):
        yield d


# -- the effect guard -------------------------------------------------------------------------------
@pytest.mark.parametrize("sql", ["UPDATE {t} SET s = 'x' WHERE id > 0", "DELETE FROM {t} WHERE id > 0",
                                 "UPDATE {t} SET s = 'x' WHERE s <> 'zzz'"])  # fmt: skip
async def test_whole_table_write_is_refused_and_changes_nothing(db: ADb, sql: str) -> None:
    """A whole-table UPDATE/DELETE the analyser lets through is measured, rolled back and refused."""
    with pytest.raises(GuardrailViolation, match=r"of 3 rows in .*every row of the table") as e:
        await db.run(sql)
    assert "write-effect" in e.value.rules
    assert db.rows() == SEEDED


async def test_innocent_one_row_writes_run_and_persist(db: ADb) -> None:
    """The agent's one-row UPDATE (with and without parameters) and a two-row DELETE are kept and committed."""
    await db.run("UPDATE {t} SET s = 'x' WHERE id = 1")
    await db.run("UPDATE {t} SET s = 'y' WHERE id = {p}", 2)
    assert db.rows() == [(1, "x"), (2, "y"), (3, "v3")]
    await db.run("DELETE FROM {t} WHERE id IN (1, 2)")
    assert db.rows() == [(3, "v3")]


async def test_refusal_keeps_the_applications_earlier_work(db: ADb) -> None:
    """Inside the application's transaction a refusal rolls back only the savepoint; the rest commits."""
    await db.begin()
    await db.run("UPDATE {t} SET s = 'early' WHERE id = 1")
    with pytest.raises(GuardrailViolation, match="every row"):
        await db.run("UPDATE {t} SET s = 'all' WHERE id > 0")
    await db.run("UPDATE {t} SET s = 'late' WHERE id = {p}", 2)
    await db.commit()
    assert db.rows() == [(1, "early"), (2, "late"), (3, "v3")]


@pytest.mark.parametrize("name", DRIVERS)
async def test_more_rows_than_the_limit_are_refused(name: str, request: pytest.FixtureRequest, tmp_path: Path,
                                                    unique: str) -> None:  # fmt: skip
    """A write over max_affected_rows changes nothing and says how many rows it would have changed."""
    policy = {"writes": [{"when": {"kind": "agent"}, "max_affected_rows": 1}]}
    async for d in _make(name, request, tmp_path, unique, policy=policy):
        with pytest.raises(GuardrailViolation, match=r"would change 2 rows .* more than the 1"):
            await d.run("DELETE FROM {t} WHERE id IN (1, 2)")
        assert d.rows() == SEEDED
        await d.run("DELETE FROM {t} WHERE id = 1")
        assert d.rows() == SEEDED[1:]


async def test_a_failed_measurement_refuses_and_leaves_the_connection_usable(
        db: ADb, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A probe that fails is a fault: refused (fail closed), nothing kept, the next statement runs."""
    driver_cls = type(db.governed.governor.driver)
    original = driver_cls.guard_execute_async

    async def failing(self: Any, raw: Any, sql: str) -> Any:
        if "LIMIT" in sql:
            raise RuntimeError("probe broke")
        return await original(self, raw, sql)

    monkeypatch.setattr(driver_cls, "guard_execute_async", failing)
    with pytest.raises(GovernanceFault, match="measuring the effect"):
        await db.run("UPDATE {t} SET s = 'x' WHERE id IN (1, 2)")
    assert db.rows() == SEEDED
    monkeypatch.undo()
    await db.run("UPDATE {t} SET s = 'x' WHERE id = 3")
    assert db.rows()[2] == (3, "x")


@pytest.mark.parametrize("name", ["asyncpg", "psycopg-async"])
async def test_a_connection_lost_mid_measurement_changes_nothing(name: str, request: pytest.FixtureRequest,
                                                                 tmp_path: Path, unique: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The server ends the session between the write and its probe: refused, and the server rolled it back."""
    import psycopg

    async for d in _make(name, request, tmp_path, unique):
        driver_cls = type(d.governed.governor.driver)
        original = driver_cls.guard_execute_async
        pid = d.raw.get_server_pid() if name == "asyncpg" else d.raw.info.backend_pid

        async def killing(self: Any, raw: Any, sql: str, original: Any = original, pid: int = pid) -> Any:
            if "LIMIT" in sql:
                with psycopg.connect(PG_DSN, autocommit=True) as killer:
                    killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
            return await original(self, raw, sql)

        monkeypatch.setattr(driver_cls, "guard_execute_async", killing)
        with pytest.raises(GovernanceFault):
            await d.run("UPDATE {t} SET s = 'x' WHERE id IN (1, 2)")
        monkeypatch.undo()
        assert d.rows() == SEEDED


async def test_psycopg_async_pipeline_mode_is_guarded(request: pytest.FixtureRequest, tmp_path: Path,
                                                      unique: str) -> None:  # fmt: skip
    """In the application's pipeline (one statement per message) the guard sends no fused text and still
    measures: the innocent write is kept, the whole-table one refused, the connection usable afterwards."""
    policy = {"writes": [{"when": {"kind": "agent"}, "max_affected_rows": 1}]}
    async for d in _make("psycopg-async", request, tmp_path, unique, policy=policy):
        g, t = d.governed, d.table
        async with g.pipeline():
            await g.execute(f"UPDATE {t} SET s = %s WHERE id = 1", ("p",))
            with pytest.raises(GuardrailViolation, match="every row"):
                await g.execute(f"UPDATE {t} SET s = 'x' WHERE id > %s", (-1,))
            with pytest.raises(GuardrailViolation, match="more than the 1"):  # the probe's rows read, unfused
                await g.execute(f"DELETE FROM {t} WHERE id IN (%s, %s)", (2, 3))
        assert d.rows() == [(1, "p"), (2, "v2"), (3, "v3")]
        await d.begin()
        async with g.pipeline():
            await g.execute(f"UPDATE {t} SET s = %s WHERE id = 2", ("q",))
            with pytest.raises(GuardrailViolation, match="every row"):
                await g.execute(f"UPDATE {t} SET s = 'x' WHERE id > %s", (-1,))
        await d.commit()
        assert d.rows() == [(1, "p"), (2, "q"), (3, "v3")]


@pytest.mark.parametrize("engine", ["MyISAM", "MEMORY"])
async def test_non_transactional_mysql_tables_are_refused_on_aiomysql(mysql_kw: dict[str, Any], unique: str,
                                                                      engine: str) -> None:  # fmt: skip
    """aiomysql: a bounded write to a MyISAM/MEMORY table is refused before it runs (no rollback undoes it)."""
    aiomysql = pytest.importorskip("aiomysql")
    import pymysql

    admin = pymysql.connect(autocommit=True, **mysql_kw)
    cur = admin.cursor()
    table = f"gam_{unique}"
    cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, s VARCHAR(20)) ENGINE={engine}")
    cur.execute(f"INSERT INTO {table} VALUES (1, 'v1'), (2, 'v2')")
    try:
        raw = await aiomysql.connect(autocommit=True, host=mysql_kw["host"], port=mysql_kw["port"],
                                     user=mysql_kw["user"], password=mysql_kw.get("password", ""),
                                     db=mysql_kw["database"])  # fmt: skip
        gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
        async with gov.cursor() as g:
            with pytest.raises(GuardrailViolation, match="cannot be rolled back"):
                await g.execute(f"UPDATE {table} SET s = 'x' WHERE id = 1")
        raw.close()
        cur.execute(f"SELECT s FROM {table} ORDER BY id")
        assert cur.fetchall() == (("v1",), ("v2",))
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        admin.close()


async def test_asyncpg_fetch_paths_measure_the_status_not_the_records(request: pytest.FixtureRequest,
                                                                      tmp_path: Path, unique: str) -> None:
    """fetch/fetchrow/fetchval and prepared statements of a write: the command status is the measure."""
    async for d in _make("asyncpg", request, tmp_path, unique):
        g, t = d.governed, d.table
        with pytest.raises(GuardrailViolation, match="every row"):
            await g.fetch(f"UPDATE {t} SET s = 'x' WHERE id > 0")  # no RETURNING: no records, still 3 rows
        with pytest.raises(GuardrailViolation, match="every row"):
            await g.fetchval(f"DELETE FROM {t} WHERE id > 0 RETURNING id")
        ps = await g.prepare(f"UPDATE {t} SET s = $1 WHERE id > $2")  # prepared: nothing has run yet
        with pytest.raises(GuardrailViolation, match="every row"):
            await ps.fetch("x", -1)
        assert d.rows() == SEEDED
        assert await g.fetchval(f"UPDATE {t} SET s = 'r' WHERE id = $1 RETURNING id", 1) == 1
        assert [tuple(r) for r in await ps.fetch("p", 1)] == []
        assert d.rows() == [(1, "r"), (2, "p"), (3, "p")]
        one = await g.prepare(f"UPDATE {t} SET s = $1 WHERE id = $2 RETURNING id")
        assert await one.fetchval("q", 3) == 3  # fetchrow/fetchval of a prepared write: measured, kept
        assert d.rows()[2] == (3, "q")


async def test_asyncpg_executemany_of_an_insert_counts_its_rows(request: pytest.FixtureRequest, tmp_path: Path,
                                                                unique: str) -> None:  # fmt: skip
    """asyncpg executemany reports no status: an INSERT ... VALUES counts its rows; other writes are refused."""
    policy = {"writes": [{"when": {"kind": "agent"}, "max_affected_rows": 2}]}
    async for d in _make("asyncpg", request, tmp_path, unique, policy=policy):
        g, t = d.governed, d.table
        with pytest.raises(GuardrailViolation, match=r"would change 3 rows .* more than the 2"):
            await g.executemany(f"INSERT INTO {t} VALUES ($1, $2)", [(4, "a"), (5, "b"), (6, "c")])
        assert d.rows() == SEEDED
        await g.executemany(f"INSERT INTO {t} VALUES ($1, $2)", [(4, "a"), (5, "b")])
        assert d.rows() == [*SEEDED, (4, "a"), (5, "b")]
        with pytest.raises(GuardrailViolation, match="did not say how many rows"):
            await g.executemany(f"UPDATE {t} SET s = $1 WHERE id = $2", [("x", 1)])
        assert d.rows()[0] == (1, "v1")


async def test_aiomysql_connection_query_is_measured(request: pytest.FixtureRequest, tmp_path: Path,
                                                     unique: str) -> None:  # fmt: skip
    """aiomysql connection.query(): rows *matched* measure it (a value set to what it was still counts)."""
    async for d in _make("aiomysql", request, tmp_path, unique):
        t = d.table
        await d.governed.query(f"UPDATE {t} SET s = 'v2' WHERE id IN (1, 2)")  # matches 2, changes 1
        assert d.rows() == [(1, "v2"), (2, "v2"), (3, "v3")]
        with pytest.raises(GuardrailViolation, match="every row"):
            await d.governed.query(f"UPDATE {t} SET s = 'v2' WHERE s <> 'zzz'")  # changes 1 row, matches all
        assert d.rows() == [(1, "v2"), (2, "v2"), (3, "v3")]


async def test_over_limit_approval_is_bound_to_the_measured_effect(tmp_path: Path) -> None:
    """aiosqlite: over_limit require_approval files the measured effect; the grant covers that many rows."""
    aiosqlite = pytest.importorskip("aiosqlite")
    store = str(tmp_path / "approvals.db")
    path = tmp_path / "a.db"
    setup = sqlite3.connect(path)
    for sql in _seed_sql("t", 6):
        setup.execute(sql)
    setup.commit()
    raw = await aiosqlite.connect(path, isolation_level=None)
    policy = {"writes": [{"when": {"kind": "agent"}, "max_affected_rows": 1, "over_limit": "require_approval"}]}
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False, policy=policy,
                            approvals={"store": store})  # fmt: skip
    with pytest.raises(ApprovalRequired, match="would change 2 rows") as e:
        await conn.execute("DELETE FROM t WHERE id IN (1, 2)")
    assert "effect<=2" in approvals.get_request(e.value.request_id, store=store).rules
    assert setup.execute("SELECT count(*) FROM t").fetchone()[0] == 6
    approvals.approve(e.value.request_id, reviewer=REVIEWER, store=store)
    await conn.execute("DELETE FROM t WHERE id IN (1, 2)")
    assert setup.execute("SELECT count(*) FROM t").fetchone()[0] == 4
    with pytest.raises(ApprovalRequired) as again:
        await conn.execute("DELETE FROM t WHERE id > ?", (3,))
    approvals.approve(again.value.request_id, reviewer=REVIEWER, store=store)
    setup.execute("INSERT INTO t VALUES (10, 'x'), (11, 'y')")  # someone else grows the table...
    setup.commit()
    with pytest.raises(GuardrailViolation, match="covered at most 3 rows"):
        await conn.execute("DELETE FROM t WHERE id > ?", (3,))  # ...so the approved statement now changes 5
    assert setup.execute("SELECT count(*) FROM t").fetchone()[0] == 6
    await raw.close()
    setup.close()


# -- cost ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["asyncpg", "psycopg-async"])
async def test_reads_pay_nothing_and_a_postgres_write_one_round_trip(
        name: str, request: pytest.FixtureRequest, tmp_path: Path, unique: str,
        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A bounded agent's read sends nothing extra; a guarded write one extra round trip (the fused probe)."""
    async for d in _make(name, request, tmp_path, unique):
        driver_cls = type(d.governed.governor.driver)
        original = driver_cls.guard_execute_async
        sent: list[str] = []

        async def counting(self: Any, raw: Any, sql: str, original: Any = original, sent: Any = sent) -> Any:
            sent.append(sql)
            return await original(self, raw, sql)

        monkeypatch.setattr(driver_cls, "guard_execute_async", counting)
        if name == "asyncpg":
            await d.governed.fetch(f"SELECT * FROM {d.table} WHERE id = $1", 1)
            assert sent == []
            await d.run("UPDATE {t} SET s = 'y' WHERE id IN (1, 2)")  # BEGIN rides in the statement's text
        else:
            await (await d.governed.execute(f"SELECT * FROM {d.table} WHERE id = %s", (1,))).fetchall()
            assert sent == []
            await d.run("UPDATE {t} SET s = 'y' WHERE id IN ({p}, {p2})", 1, 2)  # BEGIN in a pipeline
        assert len(sent) == 1 and sent[0].endswith("COMMIT"), sent  # the probe fused with the COMMIT
        assert d.rows()[:2] == [(1, "y"), (2, "y")]


# -- read-only sessions ----------------------------------------------------------------------------------
@pytest.fixture(params=["asyncpg", "psycopg-async"])
async def pg(request: pytest.FixtureRequest, pg_dsn: str, unique: str,
             spans: Any) -> AsyncIterator[tuple[Any, Any, str]]:  # fmt: skip
    """(governed async connection, admin psycopg connection, suffix): a table, a purging function, a sequence."""
    import psycopg

    admin = psycopg.connect(pg_dsn, autocommit=True)
    admin.execute(f"CREATE TABLE ro_{unique} (id INT)")
    admin.execute(f"INSERT INTO ro_{unique} VALUES (1), (2)")
    admin.execute(f"CREATE FUNCTION purge_{unique}() RETURNS int LANGUAGE plpgsql AS "
                  f"$$ BEGIN DELETE FROM ro_{unique}; RETURN 1; END $$")  # fmt: skip
    admin.execute(f"CREATE SEQUENCE seq_{unique}")
    if request.param == "asyncpg":
        asyncpg = pytest.importorskip("asyncpg")
        raw: Any = await asyncpg.connect(_pg_url())
    else:
        raw = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
    gov = governed_db.wrap(raw, environment="production", policy=READ_ONLY_AGENTS, audit=False,
                           tracer_provider=spans[0])  # fmt: skip
    try:
        yield gov, admin, unique
    finally:
        await raw.close()
        admin.execute(f"DROP FUNCTION purge_{unique}(); DROP TABLE ro_{unique}; DROP SEQUENCE seq_{unique}")
        admin.close()


def _count(admin: Any, unique: str) -> int:
    return int(admin.execute(f"SELECT count(*) FROM ro_{unique}").fetchone()[0])


async def _pg_run(gov: Any, sql: str) -> Any:
    if hasattr(gov, "fetch"):  # asyncpg
        return await gov.fetch(sql)
    return await (await gov.execute(sql)).fetchall()


async def test_a_function_that_deletes_and_nextval_fail_in_the_database(pg: tuple[Any, Any, str],
                                                                        spans: Any) -> None:
    """SELECT purge() and nextval() by a read-only agent fail in PostgreSQL; each is a recorded refusal."""
    gov, admin, u = pg
    for sql in (f"SELECT purge_{u}()", f"SELECT nextval('seq_{u}')"):
        with governed_db.acting_as(READER), pytest.raises(GuardrailViolation, match="read-only") as e:
            await _pg_run(gov, sql)
        assert e.value.rules == ("read-only-session",)
    assert _count(admin, u) == 2
    assert admin.execute(f"SELECT last_value, is_called FROM seq_{u}").fetchone() == (1, False)
    refused = [s for s in spans[1].get_finished_spans() if s.attributes.get("governed_db.refused")]
    assert len(refused) == 2  # each recorded as a refusal, with the rule and the database's reason
    for span in refused:
        assert span.attributes["governed_db.decision"] == "deny"
        assert "read-only-session" in span.attributes["governed_db.rules"]
        assert "read-only" in span.attributes["governed_db.reason"]
    with governed_db.acting_as(READER):
        assert len(await _pg_run(gov, f"SELECT * FROM ro_{u}")) == 2  # reads run


async def test_per_task_identities_on_one_connection_switch_the_session(pg: tuple[Any, Any, str]) -> None:
    """Tasks with different identities, one after another on one connection: each gets its own session."""
    gov, admin, u = pg

    async def reader() -> None:
        with governed_db.acting_as(READER), pytest.raises(GuardrailViolation, match="read-only"):
            await _pg_run(gov, f"SELECT purge_{u}()")

    async def person() -> None:
        with governed_db.acting_as(HUMAN):
            await _pg_run(gov, f"SELECT purge_{u}()")

    await asyncio.create_task(reader())
    assert _count(admin, u) == 2
    await asyncio.create_task(person())
    assert _count(admin, u) == 0
    admin.execute(f"INSERT INTO ro_{u} VALUES (3)")
    await asyncio.create_task(reader())
    assert _count(admin, u) == 1


async def test_read_only_inside_a_transaction_opened_before(pg: tuple[Any, Any, str]) -> None:
    """A transaction a person opened turns read-only too when the read-only agent acts in it."""
    gov, admin, u = pg
    if hasattr(gov, "fetch"):  # asyncpg
        with pytest.raises(GuardrailViolation, match="read-only"):
            async with gov.transaction():
                with governed_db.acting_as(HUMAN):
                    await gov.fetch(f"SELECT count(*) FROM ro_{u}")
                with governed_db.acting_as(READER):
                    await gov.fetch(f"SELECT purge_{u}()")
    else:
        await gov.set_autocommit(False)
        with governed_db.acting_as(HUMAN):
            await _pg_run(gov, f"SELECT count(*) FROM ro_{u}")
        with governed_db.acting_as(READER), pytest.raises(GuardrailViolation, match="read-only"):
            await _pg_run(gov, f"SELECT purge_{u}()")
        await gov.rollback()
        await gov.set_autocommit(True)
    assert _count(admin, u) == 2


async def test_the_agent_cannot_switch_the_session_back(pg: tuple[Any, Any, str]) -> None:
    """SET ... READ WRITE, set_config and RESET by the read-only agent are refused; nothing is written."""
    gov, admin, u = pg
    with governed_db.acting_as(READER):
        for sql in ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "SET default_transaction_read_only = off",
                    "SELECT set_config('default_transaction_read_only', 'off', false)", "RESET ALL"):
            with pytest.raises(GuardrailViolation):
                await _pg_run(gov, sql)
        with pytest.raises(GuardrailViolation, match="read-only"):
            await _pg_run(gov, f"SELECT purge_{u}()")
    assert _count(admin, u) == 2


async def test_driver_methods_that_undo_read_only_are_judged(pg: tuple[Any, Any, str]) -> None:
    """psycopg set_read_only(False) and asyncpg reset() by the agent are refused; transactions stay read-only."""
    gov, admin, u = pg
    raw = governed_db.unwrap(gov)
    with governed_db.acting_as(READER):
        await _pg_run(gov, "SELECT 1")
        if hasattr(gov, "fetch"):  # asyncpg
            with pytest.raises(GuardrailViolation):
                await gov.reset()
            async with gov.transaction():  # asyncpg's BEGIN keeps the session's read-only default
                with pytest.raises(GuardrailViolation, match="read-only"):
                    await gov.fetch(f"SELECT purge_{u}()")
        else:
            with pytest.raises(GuardrailViolation):
                await gov.set_read_only(False)
            assert raw.read_only is None
            await gov.set_autocommit(False)  # autocommit leaves PostgreSQL's read-only default alone
            with pytest.raises(GuardrailViolation, match="read-only"):
                await _pg_run(gov, f"SELECT purge_{u}()")
            await gov.rollback()
            await gov.set_autocommit(True)
    assert _count(admin, u) == 2
    if hasattr(gov, "fetch"):
        with governed_db.acting_as(HUMAN), pytest.raises(GuardrailViolation, match="RESET"):
            await gov.reset()  # RESET ALL is refused in production for everyone; the session stays as set
        with governed_db.acting_as(READER), pytest.raises(GuardrailViolation, match="read-only"):
            await gov.fetch(f"SELECT purge_{u}()")
        assert _count(admin, u) == 2


async def test_mariadb_session_is_read_only_on_aiomysql(mysql_kw: dict[str, Any], unique: str) -> None:
    """aiomysql: NEXTVAL fails in the read-only session, switching back is refused, autocommit() and a
    reconnecting ping() leave it read-only, a person writes afterwards."""
    aiomysql = pytest.importorskip("aiomysql")
    import pymysql

    admin = pymysql.connect(autocommit=True, **mysql_kw)
    cur = admin.cursor()
    cur.execute(f"CREATE TABLE ro_{unique} (id INT) ENGINE=InnoDB")
    cur.execute(f"INSERT INTO ro_{unique} VALUES (1), (2)")
    cur.execute(f"CREATE SEQUENCE seq_{unique}")
    try:
        raw = await aiomysql.connect(autocommit=True, host=mysql_kw["host"], port=mysql_kw["port"],
                                     user=mysql_kw["user"], password=mysql_kw.get("password", ""),
                                     db=mysql_kw["database"])  # fmt: skip
        gov = governed_db.wrap(raw, environment="production", policy=READ_ONLY_AGENTS, audit=False)
        with governed_db.acting_as(READER):
            async with gov.cursor() as g:
                with pytest.raises(GuardrailViolation, match="read-only"):
                    await g.execute(f"SELECT NEXTVAL(seq_{unique})")
                with pytest.raises(GuardrailViolation):
                    await g.execute("SET SESSION TRANSACTION READ WRITE")
                await g.execute(f"SELECT count(*) FROM ro_{unique}")
                assert (await g.fetchall())[0][0] == 2
            await gov.autocommit(True)  # judged as SET AUTOCOMMIT = 1: allowed, the session stays read-only
            async with gov.cursor() as g:
                with pytest.raises(GuardrailViolation, match="read-only"):
                    await g.execute(f"SELECT NEXTVAL(seq_{unique})")
            cur.execute(f"KILL {raw.thread_id()}")
            await gov.ping()  # reconnects (aiomysql's default): a new session, made read-only again
            async with gov.cursor() as g:
                with pytest.raises(GuardrailViolation, match="read-only"):
                    await g.execute(f"SELECT NEXTVAL(seq_{unique})")
        with governed_db.acting_as(HUMAN):
            async with gov.cursor() as g:
                await g.execute(f"DELETE FROM ro_{unique} WHERE id = 1")
        raw.close()
        cur.execute(f"SELECT count(*) FROM ro_{unique}")
        assert cur.fetchone()[0] == 1
    finally:
        cur.execute(f"DROP TABLE IF EXISTS ro_{unique}")
        cur.execute(f"DROP SEQUENCE IF EXISTS seq_{unique}")
        admin.close()


async def test_aiosqlite_query_only_follows_the_identity(tmp_path: Path) -> None:
    """PRAGMA query_only is on while the read-only agent acts (a writing function fails), off for a person."""
    aiosqlite = pytest.importorskip("aiosqlite")
    path = tmp_path / "s.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE t (id INT)")
    setup.execute("INSERT INTO t VALUES (1), (2)")
    setup.commit()
    raw = await aiosqlite.connect(path, isolation_level=None)

    def purge() -> int:
        raw._conn.execute("DELETE FROM t")  # runs in aiosqlite's thread, on its sqlite3 connection
        return 1

    await raw.create_function("purge", 0, purge)
    gov = governed_db.wrap(raw, environment="production", policy=READ_ONLY_AGENTS, audit=False)
    with governed_db.acting_as(READER):
        assert len(await gov.execute_fetchall("SELECT * FROM t")) == 2
        with pytest.raises(Exception):  # noqa: B017 - sqlite wraps the function's error in its own
            await gov.execute_fetchall("SELECT purge()")
        with pytest.raises(GuardrailViolation):
            await gov.execute("PRAGMA query_only = OFF")
        with pytest.raises(GuardrailViolation, match="read-only"):
            await gov.execute("INSERT INTO t VALUES (3)")  # analysed as a write: refused before it runs
    assert setup.execute("SELECT count(*) FROM t").fetchone() == (2,)
    with governed_db.acting_as(HUMAN):
        await gov.execute("INSERT INTO t VALUES (3)")
    assert setup.execute("SELECT count(*) FROM t").fetchone() == (3,)
    await raw.close()
    setup.close()


# -- SQLAlchemy's async engine ----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite+aiosqlite", "postgresql+asyncpg", "postgresql+psycopg_async",
                                     "mysql+aiomysql"])  # fmt: skip
async def test_orm_writes_by_an_agent_are_guarded(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
                                                  unique: str) -> None:  # fmt: skip
    """create_async_engine, agent in production: an innocent ORM update commits, a whole-table one is refused."""
    sa = pytest.importorskip("sqlalchemy")
    pytest.importorskip("greenlet")
    from sqlalchemy import Column, Integer, String, select, text, update
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import DeclarativeBase

    from governed_db.integrations.sqlalchemy import create_async_engine, refusal_of
    from tests.test_sqlalchemy_async import _url

    pytest.importorskip(backend.split("+")[1].replace("_async", ""))
    table = f"gao_{unique}"
    url = _url(backend, tmp_path, request)
    setup = sa.ext.asyncio.create_async_engine(url)
    async with setup.begin() as conn:
        for sql in _seed_sql(table):
            await conn.execute(text(sql))

    class Base(DeclarativeBase):
        pass

    class Row(Base):
        __tablename__ = table
        id = Column(Integer, primary_key=True)
        s = Column(String(20))

    eng = create_async_engine(url, identity=AGENT, environment="production", audit=False)
    try:
        async with AsyncSession(eng) as session:
            row = (await session.execute(select(Row).where(Row.id == 1))).scalar_one()
            row.s = "orm"
            await session.commit()
        async with AsyncSession(eng) as session:  # a unit of work inserting several rows (executemany)
            session.add_all([Row(id=4, s="n4"), Row(id=5, s="n5")])
            await session.commit()
        async with AsyncSession(eng) as session:
            with pytest.raises(sa.exc.DBAPIError) as caught:
                await session.execute(update(Row).where(Row.id > 0).values(s="all"))
            refusal = refusal_of(caught.value)
            assert refusal is not None and "every row" in str(refusal)
            await session.rollback()
        async with setup.connect() as conn:
            got = [tuple(r) for r in await conn.execute(text(f"SELECT id, s FROM {table} ORDER BY id"))]
        assert got == [(1, "orm"), (2, "v2"), (3, "v3"), (4, "n4"), (5, "n5")]
    finally:
        await eng.dispose()
        async with setup.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        await setup.dispose()


async def test_per_task_identities_switch_the_session_on_aiomysql_and_aiosqlite(mysql_kw: dict[str, Any],
                                                                                unique: str, tmp_path: Path) -> None:
    """Reader task, person task, reader task on one connection: only the person's write reaches the data."""
    aiomysql = pytest.importorskip("aiomysql")
    aiosqlite = pytest.importorskip("aiosqlite")
    import pymysql

    admin = pymysql.connect(autocommit=True, **mysql_kw)
    cur = admin.cursor()
    cur.execute(f"CREATE SEQUENCE seq_{unique}")
    path = tmp_path / "p.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE t (id INT)")
    setup.execute("INSERT INTO t VALUES (1), (2)")
    setup.commit()
    try:
        maria = await aiomysql.connect(autocommit=True, host=mysql_kw["host"], port=mysql_kw["port"],
                                       user=mysql_kw["user"], password=mysql_kw.get("password", ""),
                                       db=mysql_kw["database"])  # fmt: skip
        lite = await aiosqlite.connect(path, isolation_level=None)

        def purge() -> int:
            lite._conn.execute("DELETE FROM t")
            return 1

        await lite.create_function("purge", 0, purge)
        gmaria = governed_db.wrap(maria, environment="production", policy=READ_ONLY_AGENTS, audit=False)
        glite = governed_db.wrap(lite, environment="production", policy=READ_ONLY_AGENTS, audit=False)

        async def act(who: Identity) -> tuple[bool, bool]:
            """(NEXTVAL ran on MariaDB, purge() ran on SQLite) as ``who``."""
            ran = [True, True]
            with governed_db.acting_as(who):
                try:
                    async with gmaria.cursor() as g:
                        await g.execute(f"SELECT NEXTVAL(seq_{unique})")
                except GuardrailViolation:
                    ran[0] = False
                try:
                    await glite.execute_fetchall("SELECT purge()")
                except Exception:  # sqlite wraps the function's error in its own
                    ran[1] = False
            return ran[0], ran[1]

        assert await asyncio.create_task(act(READER)) == (False, False)
        assert setup.execute("SELECT count(*) FROM t").fetchone() == (2,)
        assert await asyncio.create_task(act(HUMAN)) == (True, True)
        assert setup.execute("SELECT count(*) FROM t").fetchone() == (0,)
        setup.execute("INSERT INTO t VALUES (3)")
        setup.commit()
        assert await asyncio.create_task(act(READER)) == (False, False)
        assert setup.execute("SELECT count(*) FROM t").fetchone() == (1,)
        cur.execute(f"SELECT NEXTVAL(seq_{unique})")
        assert cur.fetchone()[0] == 2  # only the person's NEXTVAL advanced the sequence
        maria.close()
        await lite.close()
    finally:
        cur.execute(f"DROP SEQUENCE IF EXISTS seq_{unique}")
        admin.close()
        setup.close()


@pytest.mark.parametrize("name", ["asyncpg", "psycopg-async"])
async def test_database_role_and_claims_follow_the_task_identity(name: str, pg_dsn: str, unique: str) -> None:
    """database_role and session_claims on async PostgreSQL: set per acting identity, cleared for a person."""
    import psycopg

    role = f"gdba_role_{unique}"
    admin = psycopg.connect(pg_dsn, autocommit=True)
    admin.execute(f"CREATE ROLE {role} NOLOGIN")
    try:
        if name == "asyncpg":
            asyncpg = pytest.importorskip("asyncpg")
            raw: Any = await asyncpg.connect(_pg_url())
        else:
            raw = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
        policy = {"writes": [{"when": {"kind": "agent"}, "database_role": role, "session_claims": True}]}
        gov = governed_db.wrap(raw, environment="production", policy=policy, audit=False)
        who = "SELECT current_user, current_setting('governed_db.on_behalf_of', true)"

        async def as_(identity: Identity) -> tuple[Any, ...]:
            with governed_db.acting_as(identity):
                return tuple((await _pg_run(gov, who))[0])

        assert await asyncio.create_task(as_(Identity("assistant", kind="agent", on_behalf_of="alice"))) == (
            role, "alice")
        assert await asyncio.create_task(as_(Identity("assistant", kind="agent", on_behalf_of="bob"))) == (
            role, "bob")
        assert (await asyncio.create_task(as_(HUMAN)))[0] == "postgres"
        agent = Identity("assistant", kind="agent", on_behalf_of="alice")
        with governed_db.acting_as(agent), pytest.raises(GuardrailViolation):
            await _pg_run(gov, "RESET ROLE")
        await raw.close()
    finally:
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()
