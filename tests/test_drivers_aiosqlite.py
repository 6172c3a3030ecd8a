"""aiosqlite: Connection/Cursor, execute*, executescript, execute_fetchall, async iteration, row_factory."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import GuardrailViolation
from tests.conftest import audit_names, leaked

aiosqlite = pytest.importorskip("aiosqlite")
pytestmark = pytest.mark.anyio

MASKED = [(1, "a***@example.com"), (2, "b***@example.com")]


@pytest.fixture
async def env(tmp_path: Path, spans: Any) -> AsyncIterator[tuple[Any, Path]]:
    path = tmp_path / "app.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE users (id INTEGER, email TEXT)")
    setup.execute("INSERT INTO users VALUES (1, 'alice@example.com'), (2, 'bob@example.com')")
    setup.commit()
    setup.close()
    raw = await aiosqlite.connect(path)
    conn = governed_db.wrap(raw, environment="production", tracer_provider=spans[0], audit=tmp_path / "audit")
    yield conn, path
    await raw.close()


def _count(path: Path) -> int:
    with sqlite3.connect(path) as c:
        return int(c.execute("SELECT count(*) FROM users").fetchone()[0])


async def test_refusals_leave_the_file_unchanged(env: Any) -> None:
    """A refused statement by every entry point raises (as sqlite3.ProgrammingError); the rows stay."""
    conn, path = env
    attempts = [
        lambda: conn.execute("DROP TABLE users"),
        lambda: conn.executemany("DELETE FROM users", [()]),
        lambda: conn.executescript("DELETE FROM users; DROP TABLE users;"),
        lambda: conn.execute_fetchall("DELETE FROM users RETURNING id"),
        lambda: conn.execute_insert("DROP TABLE users"),
    ]
    for attempt in attempts:
        with pytest.raises(sqlite3.ProgrammingError) as caught:
            await attempt()
        assert isinstance(caught.value, GuardrailViolation)
    async with conn.cursor() as cur:
        with pytest.raises(GuardrailViolation):
            await cur.execute("DELETE FROM users")
        with pytest.raises(GuardrailViolation):
            await cur.executescript("DROP TABLE users")
    assert _count(path) == 2


async def test_every_exit_is_masked(env: Any) -> None:
    """fetchone/fetchmany/fetchall, async for, execute_fetchall, async with: no raw e-mail leaves."""
    conn, _ = env
    q = "SELECT id, email FROM users ORDER BY id"
    got: dict[str, Any] = {}
    cur = await conn.execute(q)
    got["fetchone"] = [await cur.fetchone(), await cur.fetchone()]
    got["fetchmany"] = await (await conn.execute(q)).fetchmany(5)
    got["fetchall"] = await (await conn.execute(q)).fetchall()
    got["async for"] = [r async for r in await conn.execute(q)]
    got["execute_fetchall"] = await conn.execute_fetchall(q)
    async with conn.execute(q) as c:
        got["async with execute"] = await c.fetchall()
    async with conn.cursor() as c:
        await c.execute("SELECT id, email FROM users WHERE id >= ? ORDER BY id", (1,))
        got["cursor"] = [r async for r in c]
    for p, rows in got.items():
        assert [tuple(r) for r in rows] == MASKED, p
    assert not leaked(got)


async def test_row_factory_rows_are_masked(env: Any) -> None:
    """With row_factory = aiosqlite.Row the rows stay Rows (by name and index), masked."""
    conn, _ = env
    conn.row_factory = aiosqlite.Row
    row = await (await conn.execute("SELECT id, email FROM users ORDER BY id")).fetchone()
    assert isinstance(row, sqlite3.Row) and row["email"] == "a***@example.com" and row[0] == 1


async def test_writes_and_scripts_run_when_allowed(env: Any) -> None:
    """execute_insert returns the rowid; executescript and executemany run allowed statements."""
    conn, path = env
    assert await conn.execute_insert("INSERT INTO users VALUES (3, 'c@example.com')") == (3,)
    await conn.executemany("INSERT INTO users VALUES (?, ?)", [(4, "d@example.com")])
    await conn.executescript("INSERT INTO users VALUES (5, 'e@example.com');")
    await conn.commit()
    assert _count(path) == 5


async def test_dump_and_backup_are_judged(env: Any, tmp_path: Path) -> None:
    """iterdump() and backup() copy every row unmasked: judged as a file export, refused in production."""
    conn, _ = env
    with pytest.raises(GuardrailViolation):
        async for _ in conn.iterdump():
            pass
    target = await aiosqlite.connect(tmp_path / "copy.db")
    with pytest.raises(GuardrailViolation):
        await conn.backup(target)
    await target.close()


async def test_spans_and_audit_records(env: Any, spans: Any, tmp_path: Path) -> None:
    """Each statement is one span; the refusal is in the audit store."""
    conn, _ = env
    spans[1].clear()
    await conn.execute_fetchall("SELECT id, email FROM users")
    with pytest.raises(GuardrailViolation):
        await conn.execute("DROP TABLE users")
    finished = spans[1].get_finished_spans()
    assert [s.attributes["governed_db.decision"] for s in finished] == ["allow", "deny"]
    assert ("DROP TABLE users", "deny") in audit_names(tmp_path / "audit")


async def test_driver_internals_are_withheld(env: Any) -> None:
    """The sqlite3 connection inside (which would run SQL unjudged) is not reachable through the proxy."""
    conn, _ = env
    with pytest.raises(AttributeError, match="withholds"):
        conn._conn  # noqa: B018
    assert conn._connection is True  # only "is it open", for SQLAlchemy's adapter
