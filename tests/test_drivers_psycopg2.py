"""psycopg2 specifics: copy_*, callproc, named cursors (batched), lobject, extras, and unwrap() for C type checks."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db import GuardrailViolation, masking
from tests._interception_support import MARKER, POLICY, stub_plan_masking

psycopg2 = pytest.importorskip("psycopg2")


@pytest.fixture(autouse=True)
def _stub_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mask the column ``pii`` only; the real masking is tested on its own."""
    monkeypatch.setattr(masking, "predicate_hit", lambda *a, **k: None)
    monkeypatch.setattr(masking, "plan_masking", stub_plan_masking)


@pytest.fixture
def env(pg2_conn: Any, spans: Any, unique: str) -> Iterator[tuple[Any, str]]:
    table = f"gdp2_{unique}"
    cur = pg2_conn.cursor()
    cur.execute(f"CREATE TABLE {table} (id int, pii text)")
    cur.execute(f"INSERT INTO {table} SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 7) g")
    yield governed_db.wrap(pg2_conn, environment="production", policy=POLICY, tracer_provider=spans[0]), table
    pg2_conn.rollback()
    pg2_conn.autocommit = True
    pg2_conn.cursor().execute(f"DROP TABLE IF EXISTS {table}")
    pg2_conn.cursor().execute(f"DROP FUNCTION IF EXISTS {table}_f(int)")


class CountingCursor(psycopg2.extensions.cursor):  # type: ignore[misc]
    """Counts the Python-level fetches; C-level batched iteration does not go through them."""

    calls = 0

    def fetchone(self) -> Any:
        CountingCursor.calls += 1
        return super().fetchone()


def test_named_cursor_iteration_stays_batched_and_masked(env: tuple[Any, str]) -> None:
    """Iterating a named cursor fetches itersize rows per round trip (no per-row fetchone) and masks them."""
    conn, table = env
    conn.autocommit = False
    CountingCursor.calls = 0
    # a cursor class of the caller's own is refused through the governed connection (decision 0238): the
    # application sets it on the raw connection
    conn.__wrapped__.cursor_factory = CountingCursor
    cur = conn.cursor("gd_batched")
    conn.__wrapped__.cursor_factory = None
    assert isinstance(cur.__wrapped__, CountingCursor)
    cur.itersize = 3
    cur.execute(f"SELECT id, pii FROM {table} ORDER BY id")
    rows = list(cur)
    conn.rollback()
    conn.autocommit = True
    assert [r[1] for r in rows] == ["***"] * 7
    assert CountingCursor.calls == 0


def test_copy_methods_are_judged_as_their_copy_statements(env: tuple[Any, str], spans: Any) -> None:
    """copy_from/copy_to/copy_expert run as the COPY they amount to; a marker table refuses each."""
    conn, table = env
    cur = conn.cursor()
    cur.copy_from(io.StringIO("100\tnew@example.com\n"), table)
    out = io.StringIO()
    cur.copy_to(out, table, columns=("id",))
    assert "100" in out.getvalue().split()
    expert = io.StringIO()
    cur.copy_expert(f"COPY (SELECT id FROM {table} WHERE id = 1) TO STDOUT", expert)
    assert expert.getvalue() == "1\n"
    texts = [s.attributes.get("db.query.text") for s in spans[1].get_finished_spans()]
    assert any(t and t.startswith(f'COPY "{table}"') and "FROM STDIN" in t for t in texts)
    for call in (
        lambda: cur.copy_from(io.StringIO("1\tx\n"), f"{MARKER}x"),
        lambda: cur.copy_to(io.StringIO(), f"{MARKER}x"),
        lambda: cur.copy_expert(f"COPY {MARKER}x TO STDOUT", io.StringIO()),
    ):
        with pytest.raises(GuardrailViolation):
            call()


def test_callproc_is_judged_and_its_rows_masked(env: tuple[Any, str], spans: Any) -> None:
    """callproc() is judged as SELECT * FROM f(...) and its result passes through masking."""
    conn, table = env
    conn.cursor().execute(
        f"CREATE FUNCTION {table}_f(n int) RETURNS TABLE(id int, pii text) "
        f"LANGUAGE sql AS $$ SELECT id, pii FROM {table} WHERE id <= n ORDER BY id $$"
    )
    cur = conn.cursor()
    cur.callproc(f"{table}_f", (2,))
    assert cur.fetchall() == [(1, "***"), (2, "***")]
    entries = [s.attributes.get("governed_db.entry") for s in spans[1].get_finished_spans()]
    assert "cursor.callproc" in entries


def test_register_type_needs_the_raw_connection_and_unwrap_gives_it(env: tuple[Any, str]) -> None:
    """psycopg2 checks connection types in C: a governed conn is rejected, unwrap(conn) is the documented answer."""
    import psycopg2.extras

    conn, _ = env
    with pytest.raises(TypeError):
        psycopg2.extensions.register_type(psycopg2.extensions.UNICODE, conn)
    psycopg2.extensions.register_type(psycopg2.extensions.UNICODE, governed_db.unwrap(conn))
    psycopg2.extras.register_uuid(conn_or_curs=governed_db.unwrap(conn))


def test_composable_and_bytes_statements_are_read_and_passed_unchanged(env: tuple[Any, str]) -> None:
    """sql.Composed and bytes statements are judged by their text and executed as given."""
    from psycopg2 import sql

    conn, table = env
    cur = conn.cursor()
    cur.execute(sql.SQL("SELECT id FROM {} WHERE id = %s").format(sql.Identifier(table)), (4,))
    assert cur.fetchone() == (4,)
    cur.execute(f"SELECT id FROM {table} WHERE id = 5".encode())
    assert cur.fetchone() == (5,)
    with pytest.raises(GuardrailViolation):
        cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(f"{MARKER}x")))


def test_extras_helpers_go_through_the_governed_cursor(env: tuple[Any, str]) -> None:
    """execute_values/execute_batch call the governed cursor, so a marker table is refused."""
    import psycopg2.extras

    conn, table = env
    psycopg2.extras.execute_values(conn.cursor(), f"INSERT INTO {table} VALUES %s", [(50, "a"), (51, "b")])
    psycopg2.extras.execute_batch(conn.cursor(), f"INSERT INTO {table} VALUES (%s, %s)", [(52, "c")])
    cur = conn.cursor()
    cur.execute(f"SELECT count(*) FROM {table} WHERE id >= 50")
    assert cur.fetchone() == (3,)
    with pytest.raises(GuardrailViolation):
        psycopg2.extras.execute_values(conn.cursor(), f"INSERT INTO {MARKER}x VALUES %s", [(1, "a")])


def test_connection_level_cursor_factory_is_governed(env: tuple[Any, str]) -> None:
    """conn.cursor_factory = RealDictCursor: cursors from it are governed and their dict rows masked."""
    import psycopg2.extras

    conn, table = env
    conn.cursor_factory = psycopg2.extras.RealDictCursor
    try:
        cur = conn.cursor()
        assert isinstance(cur, psycopg2.extras.RealDictCursor)
        cur.execute(f"SELECT id, pii FROM {table} WHERE id = 1")
        assert cur.fetchall() == [{"id": 1, "pii": "***"}]
    finally:
        conn.cursor_factory = None


def test_lobject_is_judged(env: tuple[Any, str], spans: Any) -> None:
    """Large objects move data without SQL; opening one is judged as lo_open."""
    conn, _ = env
    conn.autocommit = False
    try:
        lob = conn.lobject(0, "wb")
        lob.write(b"payload")
        lob.unlink()
    finally:
        conn.rollback()
        conn.autocommit = True
    entries = [s.attributes.get("governed_db.entry") for s in spans[1].get_finished_spans()]
    assert "connection.lobject" in entries


def test_refusal_is_also_psycopg2s_programming_error(env: tuple[Any, str]) -> None:
    """A refusal is catchable as psycopg2.ProgrammingError and conn.Error, and pickles."""
    import pickle

    conn, _ = env
    with pytest.raises(psycopg2.ProgrammingError) as refused:
        conn.cursor().execute(f"SELECT * FROM {MARKER}x")
    assert isinstance(refused.value, conn.Error)
    again = pickle.loads(pickle.dumps(refused.value))
    assert isinstance(again, psycopg2.ProgrammingError) and isinstance(again, GuardrailViolation)


def test_named_cursor_survives_a_rollback_by_governance(
    env: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A governance read that rolls back between cursor() and execute() does not break a named cursor."""
    conn, table = env
    raw = governed_db.unwrap(conn)

    def catalog_read(*_a: Any, **_k: Any) -> None:  # what a schema lookup on an idle connection does
        cur = raw.cursor()
        cur.execute("SELECT 1")
        raw.rollback()

    monkeypatch.setattr(masking, "predicate_hit", catalog_read)
    conn.autocommit = False
    try:
        cur = conn.cursor("gd_survivor")
        cur.itersize = 2
        cur.execute(f"SELECT id, pii FROM {table} ORDER BY id")
        assert cur.itersize == 2
        assert [r for r in cur][:2] == [(1, "***"), (2, "***")]
    finally:
        conn.rollback()
        conn.autocommit = True


def test_pgresult_ptr_is_withheld_when_rows_need_masking(env: tuple[Any, str]) -> None:
    """cursor.pgresult_ptr (a libpq handle for ctypes) is withheld for a masked result."""
    conn, table = env
    cur = conn.cursor()
    cur.execute(f"SELECT id, pii FROM {table}")
    with pytest.raises(GuardrailViolation, match="pgresult_ptr"):
        cur.pgresult_ptr  # noqa: B018
    cur.execute(f"SELECT id FROM {table}")
    assert isinstance(cur.pgresult_ptr, int)


def test_spans_name_the_server_and_database(env: tuple[Any, str], spans: Any) -> None:
    """Statement spans carry db.system.name, db.namespace, server.address and server.port."""
    conn, table = env
    conn.cursor().execute(f"SELECT id FROM {table}")
    span = next(s for s in spans[1].get_finished_spans() if s.name.startswith("SELECT"))
    params = governed_db.unwrap(conn).get_dsn_parameters()
    assert span.attributes["db.system.name"] == "postgresql"
    assert span.attributes["db.namespace"] == params["dbname"]
    assert span.attributes["server.port"] == int(params["port"])


@pytest.mark.parametrize(
    "kind", ["extensions.cursor", "extras.DictCursor", "extras.RealDictCursor", "extras.NamedTupleCursor"]
)
def test_cursor_classes_cannot_be_built_on_the_governed_connection(env: tuple[Any, str], kind: str) -> None:
    """psycopg2's cursor types check their connection's C type: built on the proxy, they are refused outright."""
    import psycopg2.extensions
    import psycopg2.extras

    conn, _ = env
    module, name = kind.split(".")
    cls = getattr({"extensions": psycopg2.extensions, "extras": psycopg2.extras}[module], name)
    with pytest.raises(TypeError, match=r"must be psycopg2\.extensions\.connection"):
        cls(conn)
    with pytest.raises(TypeError):
        psycopg2.extensions.connection.cursor(conn)


def test_pgconn_ptr_is_withheld(env: tuple[Any, str]) -> None:
    """conn.pgconn_ptr (libpq's connection for ctypes, i.e. PQexec around governance) is refused clearly."""
    conn, _ = env
    with pytest.raises(psycopg2.ProgrammingError, match=r"bypasses governance; use conn\.cursor") as refused:
        conn.pgconn_ptr  # noqa: B018
    assert isinstance(refused.value, GuardrailViolation)
    assert conn.info.dbname == governed_db.unwrap(conn).info.dbname  # the read-only facts stay


@pytest.mark.postgres
def test_asis_adapters_are_judged_as_the_sql_they_splice(pg2_conn: Any, unique: str) -> None:
    """AsIs (and any ISQLQuote adapter) puts raw SQL in the text: judged as what psycopg2 builds; the table stays."""
    from psycopg2.extensions import AsIs

    table = f"gd_asis_{unique}"
    raw_cur = pg2_conn.cursor()
    raw_cur.execute(f"CREATE TABLE {table} (id int)")
    try:
        conn = governed_db.wrap(pg2_conn, identity=governed_db.Identity("app", kind="service"))
        cur = conn.cursor()
        with pytest.raises(GuardrailViolation):
            cur.execute("SELECT %s", (AsIs(f"1; DROP TABLE {table}"),))
        with pytest.raises(GuardrailViolation):
            cur.executemany(f"INSERT INTO {table} VALUES (%s)", [(AsIs("5"),), (AsIs(f"6); DROP TABLE {table}; --"),)])
        raw_cur.execute(f"SELECT count(*) FROM {table}")
        assert raw_cur.fetchone() == (0,)  # the table is there, and no row of the refused batch was applied
        cur.execute("SELECT %s", (AsIs("42"),))
        assert cur.fetchone() == (42,)
    finally:
        raw_cur.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.postgres
def test_extras_execute_batch_runs(pg2_conn: Any, unique: str) -> None:
    """extras.execute_batch joins the statements it mogrified with ';': each is judged alone, and all run."""
    import psycopg2.extras

    table = f"gd_batch_{unique}"
    raw_cur = pg2_conn.cursor()
    raw_cur.execute(f"CREATE TABLE {table} (id int, v text)")
    try:
        conn = governed_db.wrap(pg2_conn, identity=governed_db.Identity("app", kind="service"))
        cur = conn.cursor()
        psycopg2.extras.execute_batch(cur, f"INSERT INTO {table} VALUES (%s, %s)", [(1, "a"), (2, "b;c"), (3, None)])
        raw_cur.execute(f"SELECT id, v FROM {table} ORDER BY id")
        assert raw_cur.fetchall() == [(1, "a"), (2, "b;c"), (3, None)]
        with pytest.raises(GuardrailViolation):  # a stacked statement the caller wrote is still one text
            cur.execute(f"INSERT INTO {table} VALUES (4, 'd'); INSERT INTO {table} VALUES (5, 'e')")
    finally:
        raw_cur.execute(f"DROP TABLE IF EXISTS {table}")
