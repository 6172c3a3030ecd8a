"""psycopg 3 async: AsyncConnection/AsyncCursor/AsyncServerCursor, conn.execute, stream, copy, pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import GuardrailViolation
from tests.conftest import audit_names, leaked

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.anyio


@pytest.fixture
async def env(pg_dsn: str, spans: Any, unique: str, tmp_path: Path) -> AsyncIterator[tuple[Any, str, Any]]:
    raw = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
    table = f"gda_{unique}"
    await raw.execute(f"CREATE TABLE {table} (id int, email text)")
    await raw.execute(f"INSERT INTO {table} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')")
    conn = governed_db.wrap(raw, environment="production", tracer_provider=spans[0], audit=tmp_path / "audit")
    yield conn, table, raw
    await raw.execute(f"DROP TABLE IF EXISTS {table}")
    await raw.close()


MASKED = [(1, "a***@example.com"), (2, "b***@example.com")]


async def test_wrap_gives_a_governed_async_connection(env: Any) -> None:
    """wrap(AsyncConnection) is an AsyncConnection proxy; its cursors are governed AsyncCursors."""
    conn, _, _ = env
    assert isinstance(conn, psycopg.AsyncConnection)
    cur = conn.cursor()
    assert isinstance(cur, psycopg.AsyncCursor) and type(cur).__module__ == "governed_db.drivers.psycopg_async"
    assert cur.connection is conn


async def test_refusal_happens_before_the_database_sees_it(env: Any) -> None:
    """A refused DROP raises psycopg.ProgrammingError (and GuardrailViolation); the table is still there."""
    conn, table, raw = env
    with pytest.raises(psycopg.ProgrammingError) as caught:
        await conn.execute(f"DROP TABLE {table}")
    assert isinstance(caught.value, GuardrailViolation)
    with pytest.raises(GuardrailViolation):
        await conn.cursor().execute(f"DELETE FROM {table}")
    assert await (await raw.execute(f"SELECT count(*) FROM {table}")).fetchone() == (2,)


async def test_every_exit_is_masked(env: Any) -> None:
    """fetchone, fetchmany, fetchall, async for, stream, server cursors: no raw e-mail reaches the caller."""
    conn, table, _ = env
    q = f"SELECT id, email FROM {table} ORDER BY id"
    got: dict[str, Any] = {}
    cur = await conn.execute(q)
    got["fetchone"] = [await cur.fetchone(), await cur.fetchone()]
    cur = await conn.execute(q)
    got["fetchmany"] = await cur.fetchmany(5)
    got["fetchall"] = await (await conn.execute(q)).fetchall()
    got["async for"] = [r async for r in await conn.execute(q)]
    got["stream"] = [r async for r in conn.cursor().stream(q)]
    async with conn.transaction(), conn.cursor(name="gda_srv") as srv:
        assert isinstance(srv, psycopg.AsyncServerCursor)
        srv.itersize = 1
        await srv.execute(q)
        got["server"] = [r async for r in srv]
    async with conn.cursor() as c:
        await c.execute(q)
        got["async with"] = await c.fetchall()
    for path, rows in got.items():
        assert rows == MASKED, path
    assert not leaked(got)


async def test_row_factories_are_masked(env: Any) -> None:
    """dict_row and namedtuple_row rows come back masked in their own shape."""
    from psycopg.rows import dict_row, namedtuple_row

    conn, table, _ = env
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT id, email FROM {table} ORDER BY id")
    assert await cur.fetchone() == {"id": 1, "email": "a***@example.com"}
    cur = conn.cursor(row_factory=namedtuple_row)
    await cur.execute(f"SELECT id, email FROM {table} ORDER BY id")
    assert (await cur.fetchall())[1].email == "b***@example.com"


async def test_stream_is_lazy_and_refused_at_first_row(env: Any, spans: Any) -> None:
    """stream() sends nothing before iterated; a refused stream raises at the first row."""
    conn, table, _ = env
    spans[1].clear()
    gen = conn.cursor().stream(f"SELECT email FROM {table}")
    assert spans[1].get_finished_spans() == ()
    assert [r async for r in gen] == [("a***@example.com",), ("b***@example.com",)]
    with pytest.raises(GuardrailViolation):
        async for _ in conn.cursor().stream(f"DROP TABLE {table}"):
            pass


async def test_copy_out_of_masked_columns_is_refused(env: Any) -> None:
    """COPY ... TO STDOUT exporting a masked column is refused; unmasked columns copy out; COPY FROM loads."""
    conn, table, raw = env
    with pytest.raises(GuardrailViolation, match="masked"):
        async with conn.cursor().copy(f"COPY {table} TO STDOUT"):
            pass
    async with conn.cursor().copy(f"COPY (SELECT id FROM {table} ORDER BY id) TO STDOUT") as copy:
        data = b"".join([bytes(b) async for b in copy])
    assert data == b"1\n2\n"
    async with conn.cursor().copy(f"COPY {table} (id) FROM STDIN") as copy:
        await copy.write_row((3,))
    assert await (await raw.execute(f"SELECT count(*) FROM {table}")).fetchone() == (3,)


async def test_pipeline_results_are_masked(env: Any) -> None:
    """In pipeline mode each statement's rows are fetched, planned and masked before they leave."""
    conn, table, _ = env
    async with conn.pipeline() as p:
        assert p.connection is conn
        c1 = await conn.execute(f"SELECT id, email FROM {table} ORDER BY id")
        c2 = await conn.execute(f"SELECT email FROM {table} WHERE id = %s", (2,))
        assert await c1.fetchall() == MASKED
        assert await c2.fetchone() == ("b***@example.com",)


async def test_transaction_rolls_back_and_points_at_the_governed_connection(env: Any) -> None:
    """async with conn.transaction() as tx: tx.connection is governed; an error rolls the writes back."""
    conn, table, raw = env
    with pytest.raises(RuntimeError):
        async with conn.transaction() as tx:
            assert tx.connection is conn
            await conn.execute(f"INSERT INTO {table} VALUES (9, 'x@example.com')")
            raise RuntimeError("roll back")
    assert await (await raw.execute(f"SELECT count(*) FROM {table}")).fetchone() == (2,)


async def test_spans_and_audit_records(env: Any, spans: Any, tmp_path: Path) -> None:
    """Each statement is one span (refusals included) and one audit record."""
    conn, table, _ = env
    spans[1].clear()
    await (await conn.execute(f"SELECT id, email FROM {table}")).fetchall()
    with pytest.raises(GuardrailViolation):
        await conn.execute(f"DROP TABLE {table}")
    finished = spans[1].get_finished_spans()
    assert [s.attributes["governed_db.decision"] for s in finished] == ["allow", "deny"]
    assert finished[0].attributes["governed_db.masked_columns"] == ("email",)
    assert (f"DROP TABLE {table}", "deny") in audit_names(tmp_path / "audit")


async def test_raw_protocol_handle_is_guarded(env: Any) -> None:
    """conn.pgconn answers facts but refuses protocol calls (decision 0064), as for sync connections."""
    conn, _, _ = env
    assert conn.pgconn.status == 0
    with pytest.raises(GuardrailViolation):
        conn.pgconn.exec_(b"SELECT 1")


async def test_catalog_reads_inside_a_transaction_leave_it_usable(pg_dsn: str, unique: str) -> None:
    """In an open transaction, masking's awaited catalog reads run under a savepoint: the caller's
    uncommitted table is seen (and masked), and the transaction still commits or rolls back as asked."""
    raw = await psycopg.AsyncConnection.connect(pg_dsn)  # not autocommit: statements open a transaction
    table = f"gdat_{unique}"
    try:
        conn = governed_db.wrap(raw, environment="production")
        await raw.execute(f"CREATE TABLE {table} (id int, email text)")
        await raw.execute(f"INSERT INTO {table} VALUES (1, 'alice@example.com')")
        cur = await conn.execute(f"SELECT id, email FROM {table}")
        assert await cur.fetchall() == [(1, "a***@example.com")]
        assert conn.governor.state["masking"].tables[table].columns == ["id", "email"]
        await conn.rollback()
        check = await raw.execute("SELECT to_regclass(%s)", (table,))
        assert await check.fetchone() == (None,)  # the whole transaction rolled back, table included
    finally:
        await raw.rollback()
        await raw.close()
