"""psycopg 3 specifics: conn.execute, stream, copy, server-side cursors, transactions, pipeline, Composed SQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db import GuardrailViolation, masking
from tests._interception_support import MARKER, POLICY, stub_plan_masking

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(autouse=True)
def _stub_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mask the column ``pii`` only; the real masking is tested on its own."""
    monkeypatch.setattr(masking, "predicate_hit", lambda *a, **k: None)
    monkeypatch.setattr(masking, "plan_masking", stub_plan_masking)


@pytest.fixture
def env(pg_conn: Any, spans: Any, unique: str) -> Iterator[tuple[Any, str]]:
    table = f"gdp_{unique}"
    pg_conn.execute(f"CREATE TABLE {table} (id int, pii text)")
    pg_conn.execute(
        f"INSERT INTO {table} SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 5) g"
    )
    yield governed_db.wrap(pg_conn, environment="production", policy=POLICY, tracer_provider=spans[0]), table
    pg_conn.execute(f"DROP TABLE IF EXISTS {table}")


def test_conn_execute_returns_a_governed_cursor(env: tuple[Any, str]) -> None:
    """conn.execute() builds its cursor through the proxy: governed, with .connection the governed conn."""
    conn, table = env
    cur = conn.execute(f"SELECT id FROM {table} ORDER BY id")
    assert type(cur).__module__.startswith("governed_db")
    assert isinstance(cur, psycopg.Cursor)
    assert cur.connection is conn
    assert cur.fetchone() == (1,)


def test_stream_is_lazy_and_masked(env: tuple[Any, str], spans: Any) -> None:
    """stream() sends nothing until iterated, then hands out masked rows."""
    conn, table = env
    spans[1].clear()
    gen = conn.cursor().stream(f"SELECT id, pii FROM {table} ORDER BY id")
    assert spans[1].get_finished_spans() == ()
    rows = list(gen)
    assert rows[0] == (1, "***") and len(rows) == 5
    with pytest.raises(GuardrailViolation):
        next(conn.cursor().stream(f"SELECT * FROM {MARKER}x"))


def test_abandoned_stream_leaves_the_connection_usable(env: tuple[Any, str]) -> None:
    """Closing a half-read stream lets psycopg cancel it; the connection keeps working."""
    conn, table = env
    gen = conn.cursor().stream(f"SELECT id FROM {table}")
    next(gen)
    gen.close()
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_copy_from_stdin_is_judged_and_writes(env: tuple[Any, str]) -> None:
    """cursor.copy('COPY t FROM STDIN') is judged as that statement and loads the rows."""
    conn, table = env
    with conn.cursor().copy(f"COPY {table} (id) FROM STDIN") as copy:
        copy.write_row((42,))
    assert conn.execute(f"SELECT count(*) FROM {table} WHERE id = 42").fetchone() == (1,)
    with pytest.raises(GuardrailViolation), conn.cursor().copy(f"COPY {MARKER}x FROM STDIN"):
        pass


def test_copy_out_without_masked_columns_is_allowed(env: tuple[Any, str]) -> None:
    """COPY ... TO of columns nothing masks runs and streams its data."""
    conn, table = env
    with conn.cursor().copy(f"COPY (SELECT id FROM {table} ORDER BY id) TO STDOUT") as copy:
        data = b"".join(bytes(b) for b in copy)
    assert data.splitlines()[0] == b"1"


def test_server_side_cursor_is_governed_and_masked(env: tuple[Any, str]) -> None:
    """conn.cursor(name=...) gives a governed ServerCursor; iteration and fetchmany are masked."""
    conn, table = env
    with conn.transaction(), conn.cursor(name="gd_srv") as cur:
        assert isinstance(cur, psycopg.ServerCursor)
        cur.itersize = 2
        cur.execute(f"SELECT id, pii FROM {table} ORDER BY id")
        assert cur.fetchmany(2) == [(1, "***"), (2, "***")]
        assert [r[1] for r in cur] == ["***"] * 3


def test_transaction_object_points_at_the_governed_connection(env: tuple[Any, str]) -> None:
    """with conn.transaction() as tx: tx.connection is the governed connection; rollback works."""
    conn, table = env
    with pytest.raises(RuntimeError), conn.transaction() as tx:
        assert tx.connection is conn
        tx.connection.execute(f"DELETE FROM {table} WHERE id = 1")
        raise RuntimeError("roll back")
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (5,)


def test_composed_sql_is_read_for_analysis_and_passed_unchanged(env: tuple[Any, str]) -> None:
    """sql.SQL/Composed statements are judged by their text and executed as Composed objects."""
    from psycopg import sql

    conn, table = env
    query = sql.SQL("SELECT {} FROM {} WHERE id = %s").format(sql.Identifier("id"), sql.Identifier(table))
    assert conn.execute(query, (3,)).fetchone() == (3,)
    with pytest.raises(GuardrailViolation):
        conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(f"{MARKER}x")))


def test_multiple_result_sets_of_a_masked_statement_are_withheld(env: tuple[Any, str]) -> None:
    """After nextset() the next result's columns were never planned, so its rows are withheld."""
    conn, table = env
    cur = conn.execute(f"SELECT id, pii FROM {table} WHERE id = 1; SELECT 'alice@example.com' AS other")
    assert cur.fetchall() == [(1, "***")]
    assert cur.nextset()
    with pytest.raises(GuardrailViolation, match="second result set"):
        cur.fetchall()


def test_executemany_returning_keeps_the_plan_for_each_result(env: tuple[Any, str]) -> None:
    """executemany(returning=True) results all come from one statement and are all masked."""
    conn, table = env
    cur = conn.cursor()
    cur.executemany(f"SELECT id, pii FROM {table} WHERE id = %s", [(1,), (2,)], returning=True)
    seen = []
    while True:
        seen.extend(cur.fetchall())
        if not cur.nextset():
            break
    assert seen == [(1, "***"), (2, "***")]


def test_raw_cursor_dollar_placeholders_are_accepted(pg_dsn: str) -> None:
    """A RawCursor connection's $1 placeholders are not mistaken for a wrong paramstyle."""
    raw = psycopg.connect(pg_dsn, autocommit=True, cursor_factory=psycopg.RawCursor)
    try:
        conn = governed_db.wrap(raw, environment="production")
        assert conn.execute("SELECT $1::int", (7,)).fetchone() == (7,)
    finally:
        raw.close()


def test_async_connections_are_governed(pg_dsn: str) -> None:
    """An AsyncConnection is governed at wrap() by the async proxies (tests/test_drivers_psycopg_async.py)."""
    import asyncio

    async def attempt() -> str:
        aconn = await psycopg.AsyncConnection.connect(pg_dsn)
        try:
            return type(governed_db.wrap(aconn)).__name__
        finally:
            await aconn.close()

    assert asyncio.run(attempt()) == "AsyncPsycopgConnection"


def test_refusal_is_also_psycopgs_programming_error(env: tuple[Any, str]) -> None:
    """A refusal is catchable as psycopg.ProgrammingError, conn.Error and GuardrailViolation."""
    conn, _ = env
    with pytest.raises(psycopg.ProgrammingError):
        conn.execute(f"SELECT * FROM {MARKER}x")
    with pytest.raises(conn.Error):
        conn.execute(f"SELECT * FROM {MARKER}x")


def test_copy_object_points_at_the_governed_cursor_and_connection(env: tuple[Any, str]) -> None:
    """The Copy object's .cursor and .connection are the governed ones (no raw object escapes)."""
    conn, table = env
    cur = conn.cursor()
    with cur.copy(f"COPY (SELECT id FROM {table} WHERE id = 1) TO STDOUT") as copy:
        assert copy.cursor is cur
        assert copy.connection is conn
        assert b"".join(bytes(b) for b in copy) == b"1\n"


def test_pgresult_is_withheld_when_rows_need_masking(env: tuple[Any, str]) -> None:
    """cursor.pgresult's values are withheld for a masked result (its facts answer); handed out otherwise."""
    conn, table = env
    cur = conn.execute(f"SELECT id, pii FROM {table}")
    assert cur.pgresult.ntuples == 5  # facts stay readable (SQLAlchemy's async adapter reads .status)
    with pytest.raises(GuardrailViolation, match="pgresult"):
        cur.pgresult.get_value(0, 1)
    cur = conn.execute(f"SELECT id FROM {table} ORDER BY id")
    assert cur.pgresult.get_value(0, 0) == b"1"


def test_spans_name_the_server_and_database(env: tuple[Any, str], spans: Any) -> None:
    """Statement spans carry db.system.name, db.namespace, server.address and server.port."""
    conn, table = env
    conn.execute(f"SELECT id FROM {table}")
    span = next(s for s in spans[1].get_finished_spans() if s.name.startswith("SELECT"))
    assert span.attributes["db.system.name"] == "postgresql"
    assert span.attributes["db.namespace"] == conn.info.dbname
    assert span.attributes["server.port"] == int(conn.info.port)


_FOREIGN_CURSORS = {
    "Cursor": lambda c: psycopg.Cursor(c),
    "ClientCursor": lambda c: psycopg.ClientCursor(c),
    "RawCursor": lambda c: psycopg.RawCursor(c),
    "ServerCursor": lambda c: psycopg.ServerCursor(c, "gd_foreign"),
    "cursor class of a governed cursor": lambda c: c.cursor().__class__(c),
}


@pytest.mark.parametrize("kind", sorted(_FOREIGN_CURSORS))
def test_cursors_built_on_the_governed_connection_cannot_run(env: tuple[Any, str], kind: str) -> None:
    """psycopg.Cursor(conn) & co. bind to conn.pgconn: they cannot delete or read anything around governance."""
    conn, table = env
    cur = _FOREIGN_CURSORS[kind](conn)
    with pytest.raises((psycopg.ProgrammingError, TypeError)) as refused:
        cur.execute(f"DELETE FROM {table}")
    # psycopg's C declare path type-checks the PGconn first (a TypeError); the rest reach the guard
    assert isinstance(
        refused.value, (GuardrailViolation, TypeError) if kind == "ServerCursor" else GuardrailViolation
    )
    if kind != "ServerCursor":
        assert "bypasses governance; use conn.cursor(...)" in str(refused.value)
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (5,)


_RAW_PROTOCOL = {
    "conn.pgconn.exec_": lambda c, t: c.pgconn.exec_(f"SELECT pii FROM {t}".encode()),
    "conn.pgconn.send_query": lambda c, t: c.pgconn.send_query(f"DELETE FROM {t}".encode()),
    "conn.pgconn.pgconn_ptr": lambda c, t: c.pgconn.pgconn_ptr,
    "conn.info.pgconn.exec_": lambda c, t: c.info.pgconn.exec_(f"SELECT pii FROM {t}".encode()),
    "conn.pipeline().pgconn.exec_": lambda c, t: _in_pipeline(c, lambda p: p.pgconn.exec_(b"SELECT 1")),
    "conn.transaction().pgconn.exec_": lambda c, t: _in_transaction(
        c, lambda tx: tx.pgconn.exec_(b"SELECT 1")
    ),
    "psycopg.Copy(cursor)": lambda c, t: psycopg.Copy(c.cursor()).read(),
    "conn._exec_command": lambda c, t: c._exec_command(f"DELETE FROM {t}".encode()),
    "Connection._exec_command(conn)": lambda c, t: c.wait(psycopg.Connection._exec_command(c, b"SELECT 1")),
}


def _in_pipeline(conn: Any, use: Any) -> Any:
    with conn.pipeline() as pipe:
        return use(pipe)


def _in_transaction(conn: Any, use: Any) -> Any:
    with conn.transaction() as tx:
        return use(tx)


@pytest.mark.parametrize("path", sorted(_RAW_PROTOCOL))
def test_raw_protocol_handles_are_refused(env: tuple[Any, str], path: str) -> None:
    """Every public way to the PGconn refuses protocol calls with psycopg's ProgrammingError and a next step."""
    conn, table = env
    with pytest.raises(psycopg.ProgrammingError, match=r"bypasses governance; use conn\.cursor") as refused:
        _RAW_PROTOCOL[path](conn, table)
    assert isinstance(refused.value, GuardrailViolation)
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (5,)


def test_connection_facts_stay_readable(env: tuple[Any, str]) -> None:
    """conn.info, conn.pgconn facts and sql.Composable.as_string(conn) still work on the governed connection."""
    conn, _ = env
    raw = governed_db.unwrap(conn)
    assert conn.info.encoding == raw.info.encoding
    assert conn.info.dbname == raw.info.dbname and conn.info.backend_pid == raw.info.backend_pid
    assert conn.info.transaction_status == raw.info.transaction_status
    assert conn.pgconn.server_version == raw.pgconn.server_version
    query = psycopg.sql.SQL("SELECT {} FROM {}").format(psycopg.sql.Literal("a"), psycopg.sql.Identifier("t"))
    assert query.as_string(conn) == "SELECT 'a' FROM \"t\""
    with conn.pipeline() as pipe:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        pipe.sync()
        assert cur.fetchall() == [(1,)]


def test_typeinfo_fetch_works_on_the_governed_connection(env: tuple[Any, str]) -> None:
    """psycopg's TypeInfo.fetch (SQLAlchemy's hstore set-up) builds its own cursor; it still works."""
    conn, _ = env
    info = psycopg.types.TypeInfo.fetch(conn, "int4")
    assert info is not None and info.oid == 23


def test_driver_methods_called_with_the_governed_cursor_cannot_run(env: tuple[Any, str]) -> None:
    """psycopg.Cursor.execute(governed_cursor, sql) reads private members, which the proxy withholds."""
    conn, table = env
    with pytest.raises(AttributeError, match="withholds the driver's private member"):
        psycopg.Cursor.execute(conn.cursor(), f"DELETE FROM {table}")
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (5,)
    assert not hasattr(conn.cursor(), "_conn")  # probes answer as for a missing attribute


@pytest.mark.postgres
def test_connection_attribute_is_the_governed_proxy(pg_dsn: str) -> None:
    """psycopg's conn.connection and cursor.connection.connection hand back the governed connection."""
    import psycopg

    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        conn = governed_db.wrap(raw, identity=governed_db.Identity("bot", kind="agent"))
        assert conn.connection is conn
        assert conn.cursor().connection.connection is conn
        with pytest.raises(governed_db.GuardrailViolation):
            conn.connection.execute("DROP TABLE IF EXISTS gd_never_there")
    finally:
        raw.close()


@pytest.mark.postgres
def test_two_phase_prepare_is_judged_and_leaves_nothing_prepared(pg_dsn: str) -> None:
    """tpc_prepare() is judged as PREPARE TRANSACTION (needs approval); the transaction can still be rolled back."""
    import psycopg

    raw = psycopg.connect(pg_dsn)
    try:
        conn = governed_db.wrap(raw, identity=governed_db.Identity("bot", kind="agent"))
        xid = conn.xid(1, "gd-tpc-test", "b")
        conn.tpc_begin(xid)
        with pytest.raises(governed_db.GuardrailViolation) as err:
            conn.tpc_prepare()
        assert "transaction-control" in err.value.rules
        conn.tpc_rollback()
        assert raw.execute("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE '%gd-tpc-test%'").fetchone() == (0,)
    finally:
        raw.rollback()
        raw.close()
def test_description_reused_while_fields_stay_the_same(pg_conn: Any, unique: str) -> None:
    """Masking's description is reused for results with the same fields and made afresh when they change."""
    from governed_db.drivers.psycopg import PsycopgDriver

    driver = PsycopgDriver()
    cur = pg_conn.cursor()
    cur.execute("SELECT 1 AS a, 'x'::text AS b")
    first = driver.description(cur)
    cur.execute("SELECT 2 AS a, 'y'::text AS b")
    assert driver.description(cur) is first
    cur.execute("SELECT 2 AS a, 3 AS b")  # b changed type
    other = driver.description(cur)
    assert other is not first and [d.name for d in other] == ["a", "b"] and other[1].type_code != first[1].type_code
    cur.execute("SELECT 2 AS c")
    assert [d.name for d in driver.description(cur)] == ["c"]
    cur.execute("SET search_path TO public")
    assert driver.description(cur) is None


def test_description_key_tells_every_field_apart(pg_conn: Any) -> None:
    """The reused description follows each field's name, type modifier and count, and the client encoding."""
    from governed_db.drivers.psycopg import PsycopgDriver

    driver = PsycopgDriver()
    cur = pg_conn.cursor()

    def described(sql: str) -> Any:
        cur.execute(sql)
        return driver.description(cur)

    base = described("SELECT 1.5::numeric(5,2) AS a, 'x'::varchar(3) AS b")
    assert described("SELECT 2.5::numeric(5,2) AS a, 'y'::varchar(3) AS b") is base
    renamed = described("SELECT 1.5::numeric(5,2) AS a, 'x'::varchar(3) AS c")
    assert renamed is not base and [d.name for d in renamed] == ["a", "c"]
    scaled = described("SELECT 1.5::numeric(7,3) AS a, 'x'::varchar(3) AS b")
    assert scaled is not base and (scaled[0].precision, scaled[0].scale) == (7, 3)
    longer = described("SELECT 1.5::numeric(5,2) AS a, 'x'::varchar(9) AS b")
    assert longer is not base and longer[1].display_size == 9
    wider = described("SELECT 1.5::numeric(5,2) AS a, 'x'::varchar(3) AS b, 1 AS c")
    assert [d.name for d in wider] == ["a", "b", "c"]
    for fresh in (renamed, scaled, longer, wider):  # each is then reused in turn, never mixed up
        cur.execute("SELECT " + ", ".join(f"NULL::{d.type_display} AS {d.name}" for d in fresh))
        assert [(d.name, d.type_display) for d in driver.description(cur)] == [
            (d.name, d.type_display) for d in fresh
        ]
    cur.execute("SET client_encoding TO 'LATIN1'")
    try:
        latin = described("SELECT 1.5::numeric(5,2) AS a, 'x'::varchar(3) AS b")
        assert latin is not base and [d.name for d in latin] == ["a", "b"]
        assert [d.name for d in described('SELECT 1 AS "\u00e9t\u00e9"')] == ["\u00e9t\u00e9"]
    finally:
        cur.execute("RESET client_encoding")
    assert described("SELECT 1.5::numeric(5,2) AS a, 'x'::varchar(3) AS b") is base


def test_description_of_a_result_of_another_shape_is_made_afresh() -> None:
    """A cursor whose pgresult cannot be read field by field (a test double) gets its own description."""
    from governed_db.drivers.psycopg import PsycopgDriver

    class Result:
        nfields = 2

        def fname(self, i: int) -> bytes:
            raise RuntimeError("not a real result")

    class Cursor:
        pgresult = Result()
        description = [("a", 23, None, 4, None, None, None)]

    assert PsycopgDriver().description(Cursor()) is Cursor.description
    Cursor.pgresult = None  # type: ignore[assignment]
    assert PsycopgDriver().description(Cursor()) is Cursor.description


def test_fetches_go_through_notices_only_for_a_read_in_a_masked_order(
    env: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """fetchone/fetchmany/fetchall/next run under notices.fetched when the result's read order is masked, and
    call the driver directly otherwise: the same rows either way."""
    from governed_db import proxies

    conn, table = env
    calls: list[Any] = []
    real = proxies.fetched

    def spy(st: Any, fetch: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(fetch)
        return real(st, fetch, *args, **kwargs)

    monkeypatch.setattr(proxies, "fetched", spy)
    cur = conn.cursor()
    seen = {}
    for ordered in (False, True):
        cur.execute(f"SELECT id FROM {table} ORDER BY id")
        cur._self_result.read_order = ordered
        seen[ordered] = [cur.fetchone(), next(cur), cur.fetchmany(1), cur.fetchall()]
        assert len(calls) == (4 if ordered else 0)
    assert seen[False] == seen[True] == [(1,), (2,), [(3,)], [(4,), (5,)]]


def test_description_key_read_in_c_is_the_comprehension_s(pg_conn: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """pg_fields() reads each field's name, type and modifier as the Python reference does; without it (an older
    build) the reference keys the reused description alike."""
    from governed_db._native import speedups
    from governed_db.drivers import psycopg as driver_module

    if getattr(speedups, "pg_fields", None) is None:
        pytest.skip("the C helpers are not built")
    cur = pg_conn.cursor()
    cur.execute("SELECT 1.5::numeric(5,2) AS a, 'x'::varchar(3) AS \"B c\", NULL::int[] AS d, 'x'::text")
    res = cur.pgresult
    reference = tuple(v for i in range(res.nfields) for v in (res.fname(i), res.ftype(i), res.fmod(i)))
    assert speedups.pg_fields(res, res.nfields) == reference and speedups.pg_fields(res, 0) == ()
    with pytest.raises(ValueError):
        speedups.pg_fields(res, -1)
    with pytest.raises(TypeError):
        speedups.pg_fields(res)
    for fields in (speedups.pg_fields, None):  # the C read, then the Python reference
        monkeypatch.setattr(driver_module, "_pg_fields", fields)
        driver = driver_module.PsycopgDriver()
        cur.execute("SELECT 1.5::numeric(5,2) AS a, 'x'::varchar(3) AS \"B c\", NULL::int[] AS d, 'x'::text")
        first = driver.description(cur)
        assert [d.name for d in first] == ["a", "B c", "d", "text"]
        cur.execute("SELECT 2.5::numeric(5,2) AS a, 'y'::varchar(3) AS \"B c\", NULL::int[] AS d, 'y'::text")
        assert driver.description(cur) is first
        cur.execute("SELECT 2.5::numeric(5,2) AS a, 'y'::varchar(4) AS \"B c\", NULL::int[] AS d, 'y'::text")
        assert driver.description(cur) is not first
