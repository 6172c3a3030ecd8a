"""A filter on a column sampled (nearly) empty is judged on what the column holds now (decision 0250).

A table sampled empty has provisional labels: its values are scanned as results pass and it is sampled again
within seconds. But a filter compares values without returning them: ``SELECT count(*) FROM t WHERE info LIKE
'5%'`` on SSNs that arrived after the sample answered 50 or 0 before anything was sampled again — an oracle for
as long as the labels lived. Every statement that uses a provisional column other than by returning it now has
its table sampled again first, and is never answered from a cached verdict.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db

AGENT = governed_db.Identity("agent-x", kind="agent", on_behalf_of="bob")


@pytest.fixture(params=["sqlite", "duckdb", "postgres", "mysql"])
def db(request: pytest.FixtureRequest, unique: str) -> Iterator[tuple[Any, str, str]]:
    kind = request.param
    raw: Any
    if kind == "postgres":
        raw = request.getfixturevalue("pg_conn")
    elif kind == "mysql":
        raw = request.getfixturevalue("mysql_conn")
    elif kind == "duckdb":
        raw = pytest.importorskip("duckdb").connect()
    else:
        raw = sqlite3.connect(":memory:", isolation_level=None)
    table = f"uf_{unique}"
    raw.cursor().execute(f"CREATE TABLE {table} (id int primary key, info varchar(40), city varchar(40))")
    try:
        yield raw, table, {"sqlite": "?", "duckdb": "?"}.get(kind, "%s")
    finally:
        raw.cursor().execute(f"DROP TABLE {table}")


def _fill(raw: Any, table: str, ph: str, values: list[str]) -> None:
    raw.cursor().executemany(
        f"INSERT INTO {table} VALUES ({ph}, {ph}, {ph})", [(i, v, "Paris") for i, v in enumerate(values)]
    )
    if hasattr(raw, "commit") and not isinstance(raw, sqlite3.Connection):
        raw.commit()


def _count(conn: Any, table: str, ph: str, pattern: str) -> Any:
    cur = conn.cursor()
    cur.execute(f"SELECT count(*) FROM {table} WHERE info LIKE {ph}", (pattern,))
    return cur.fetchall()[0][0]


def test_values_that_arrive_after_an_empty_sample_cannot_be_filtered(db: tuple[Any, str, str]) -> None:
    raw, table, ph = db
    gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    cur = gov.cursor()
    cur.execute(f"SELECT id, info FROM {table}")
    assert list(cur.fetchall()) == []  # sampled empty: labels provisional
    _fill(raw, table, ph, [f"{500 + i}-22-8726" for i in range(50)])
    assert (_count(raw, table, ph, "5%"), _count(raw, table, ph, "6%")) == (50, 0)  # a real oracle
    for guess in ("5%", "6%"):
        with pytest.raises(governed_db.GuardrailViolation, match="info"):
            _count(gov, table, ph, guess)
    cur.execute(f"SELECT count(*) FROM {table} WHERE city = 'Paris'")
    assert [tuple(r) for r in cur.fetchall()] == [(50,)]  # filters on the clear column still run


def test_a_cached_verdict_does_not_outlive_the_values_it_was_judged_on(db: tuple[Any, str, str]) -> None:
    """The same parameterised filter ran while the column held innocent text; once SSNs arrive it is refused
    at once, for the right and the wrong guess alike (the verdict was not kept for the statement)."""
    raw, table, ph = db
    _fill(raw, table, ph, ["n/a", "none"])
    gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    assert _count(gov, table, ph, "n%") == 2  # nearly empty and innocent: filterable, the database's answer
    raw.cursor().execute(f"DELETE FROM {table}")
    _fill(raw, table, ph, [f"{500 + i}-22-8726" for i in range(30)])
    for guess in ("5%", "6%"):
        with pytest.raises(governed_db.GuardrailViolation, match="info"):
            _count(gov, table, ph, guess)


def test_aiosqlite_samples_such_a_table_again_with_await(tmp_path: Any) -> None:
    """An async connection cannot sample while a statement is judged: the statement's tables are read with
    ``await`` first, and a provisional one is sampled again there."""
    import asyncio

    aiosqlite = pytest.importorskip("aiosqlite")
    path = str(tmp_path / "q.db")

    async def main() -> list[Any]:
        raw = await aiosqlite.connect(path)
        await raw.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, status TEXT, info TEXT)")
        await raw.commit()
        gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
        seen: list[Any] = []
        try:
            cur = await gov.execute("SELECT id, info FROM jobs")
            seen.append(await cur.fetchall())
            other = sqlite3.connect(path)
            other.executemany(
                "INSERT INTO jobs VALUES (?, ?, ?)", [(i, "pending", f"{500 + i}-22-8726") for i in range(50)]
            )
            other.commit()
            for guess in ("5%", "6%"):
                assert other.execute("SELECT count(*) FROM jobs WHERE info LIKE ?", (guess,)).fetchone()[0] in (0, 50)
                try:
                    cur = await gov.execute("SELECT count(*) FROM jobs WHERE info LIKE ?", (guess,))
                    seen.append(await cur.fetchall())
                except governed_db.GuardrailViolation as e:
                    seen.append(("refused", "info" in str(e)))
            cur = await gov.execute("SELECT count(*) FROM jobs WHERE status = ?", ("pending",))
            seen.append(await cur.fetchall())
            other.close()
        finally:
            await raw.close()
        return seen

    assert asyncio.run(main()) == [[], ("refused", True), ("refused", True), [(50,)]]
