"""PyMySQL specifics: Connection.query(), select_db, cursor classes, unbuffered cursors, callproc."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db import GuardrailViolation, masking
from tests._interception_support import MARKER, POLICY, stub_plan_masking

pymysql = pytest.importorskip("pymysql")


@pytest.fixture(autouse=True)
def _stub_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mask the column ``pii`` only; the real masking is tested on its own."""
    monkeypatch.setattr(masking, "predicate_hit", lambda *a, **k: None)
    monkeypatch.setattr(masking, "plan_masking", stub_plan_masking)


@pytest.fixture
def env(mysql_conn: Any, spans: Any, unique: str) -> Iterator[tuple[Any, str]]:
    table = f"gdm_{unique}"
    cur = mysql_conn.cursor()
    cur.execute(f"CREATE TABLE {table} (id int, pii varchar(64))")
    cur.executemany(
        f"INSERT INTO {table} VALUES (%s, %s)", [(i, f"user{i}@example.com") for i in range(1, 6)]
    )
    yield (
        governed_db.wrap(mysql_conn, environment="production", policy=POLICY, tracer_provider=spans[0]),
        table,
    )
    mysql_conn.cursor().execute(f"DROP TABLE IF EXISTS {table}")
    mysql_conn.cursor().execute(f"DROP PROCEDURE IF EXISTS {table}_p")


def test_connection_query_is_a_governed_path(env: tuple[Any, str]) -> None:
    """conn.query(sql) is judged (a marker table is refused) and runs what is allowed."""
    conn, table = env
    assert conn.query(f"UPDATE {table} SET pii = 'z' WHERE id = 1") == 1
    with pytest.raises(GuardrailViolation):
        conn.query(f"DELETE FROM {MARKER}x WHERE id = 1")


def test_select_db_is_judged_as_use(env: tuple[Any, str], mysql_kw: dict[str, Any], spans: Any) -> None:
    """select_db(name) is judged as USE name; a non-string name is a clear error."""
    conn, _ = env
    conn.select_db(mysql_kw["database"])
    texts = [s.attributes.get("db.query.text") for s in spans[1].get_finished_spans()]
    assert any(t and t.upper().startswith("USE") for t in texts)
    with pytest.raises(governed_db.InvalidStatement):
        conn.select_db(None)


@pytest.mark.parametrize("kind", ["Cursor", "DictCursor", "SSCursor", "SSDictCursor"])
def test_cursor_classes_are_governed_and_masked(env: tuple[Any, str], kind: str) -> None:
    """Every PyMySQL cursor class is wrapped; its rows come out masked; .connection is the governed conn."""
    conn, table = env
    cur = conn.cursor(getattr(pymysql.cursors, kind))
    assert isinstance(cur, getattr(pymysql.cursors, kind))
    assert cur.connection is conn
    cur.execute(f"SELECT id, pii FROM {table} ORDER BY id")
    first = cur.fetchone()
    rest = list(cur)
    values = [first, *rest]
    assert len(values) == 5
    assert all((v["pii"] if isinstance(v, dict) else v[1]) == "***" for v in values)
    cur.close()


def test_unbuffered_extra_exits_are_masked(env: tuple[Any, str]) -> None:
    """SSCursor.read_next() and fetchall_unbuffered() pass through the result state."""
    conn, table = env
    cur = conn.cursor(pymysql.cursors.SSCursor)
    cur.execute(f"SELECT id, pii FROM {table} ORDER BY id")
    assert cur.read_next() == (1, "***")
    assert [r[1] for r in cur.fetchall_unbuffered()] == ["***"] * 4
    cur.close()


def test_callproc_is_judged_and_its_rows_masked(env: tuple[Any, str], spans: Any) -> None:
    """callproc() is judged as CALL p(...); the procedure's result set is masked."""
    conn, table = env
    conn.cursor().execute(
        f"CREATE PROCEDURE {table}_p(IN n INT) SELECT id, pii FROM {table} WHERE id <= n ORDER BY id"
    )
    cur = conn.cursor()
    cur.callproc(f"{table}_p", (2,))
    assert cur.fetchall() == ((1, "***"), (2, "***"))
    cur.close()
    entries = [s.attributes.get("governed_db.entry") for s in spans[1].get_finished_spans()]
    assert "cursor.callproc" in entries


def test_fetch_containers_match_pymysql(env: tuple[Any, str]) -> None:
    """fetchall/fetchmany return tuples, as PyMySQL's buffered cursor does, masked or not."""
    conn, table = env
    cur = conn.cursor()
    cur.execute(f"SELECT id FROM {table} ORDER BY id")
    assert cur.fetchmany(2) == ((1,), (2,))
    assert cur.fetchall() == ((3,), (4,), (5,))
    cur.execute(f"SELECT pii FROM {table} ORDER BY id")
    assert isinstance(cur.fetchall(), tuple)


def test_refusal_is_also_pymysqls_programming_error(env: tuple[Any, str]) -> None:
    """A refusal is catchable as pymysql.ProgrammingError and conn.Error."""
    conn, _ = env
    with pytest.raises(pymysql.ProgrammingError):
        conn.cursor().execute(f"SELECT * FROM {MARKER}x")
    with pytest.raises(conn.Error):
        conn.cursor().execute(f"SELECT * FROM {MARKER}x")


def test_spans_name_the_server_and_database(
    env: tuple[Any, str], mysql_kw: dict[str, Any], spans: Any
) -> None:
    """Statement spans carry db.system.name (mariadb or mysql), db.namespace and the server address."""
    conn, table = env
    conn.cursor().execute(f"SELECT id FROM {table}")
    span = next(s for s in spans[1].get_finished_spans() if s.name.startswith("SELECT"))
    version = str(governed_db.unwrap(conn).server_version).lower()
    assert span.attributes["db.system.name"] == ("mariadb" if "mariadb" in version else "mysql")
    assert span.attributes["db.namespace"] == mysql_kw["database"]
    assert span.attributes["server.address"] == mysql_kw["host"]


@pytest.mark.parametrize("kind", ["Cursor", "DictCursor", "SSCursor", "SSDictCursor"])
def test_cursor_classes_built_on_the_governed_connection_are_masked(env: tuple[Any, str], kind: str) -> None:
    """pymysql.cursors.X(conn) reads rows through conn.query(): they come out masked, the statement judged."""
    conn, table = env
    cur = getattr(pymysql.cursors, kind)(conn)
    cur.execute(f"SELECT id, pii FROM {table} ORDER BY id")
    first = cur.fetchone()
    rest = cur.fetchall()
    rows = [first, *rest]
    assert len(rows) == 5
    pii = [r["pii"] if isinstance(r, dict) else r[1] for r in rows]
    assert pii == ["***"] * 5
    with pytest.raises(GuardrailViolation):
        getattr(pymysql.cursors, kind)(conn).execute(f"DELETE FROM {MARKER}x WHERE id = 1")
    cur.close()


def test_a_foreign_cursor_row_cap_applies(mysql_conn: Any, unique: str) -> None:
    """A row cap (limit action) holds for rows read by a cursor built on the governed connection."""
    from governed_db.policy import Policy
    from governed_db.policy.decision import Action, RuleHit

    table = f"gdmc_{unique}"
    raw = mysql_conn.cursor()
    raw.execute(f"CREATE TABLE {table} (id int)")
    raw.executemany(f"INSERT INTO {table} VALUES (%s)", [(i,) for i in range(10)])
    try:
        policy = Policy(
            rules=(lambda s, c: RuleHit("cap", Action.LIMIT, "three rows", None, 3) if s else None,)
        )
        conn = governed_db.wrap(mysql_conn, environment="production", policy=policy)
        for kind in ("Cursor", "SSCursor"):
            cur = getattr(pymysql.cursors, kind)(conn)
            cur.execute(f"SELECT id FROM {table}")
            assert len(list(cur.fetchall())) == 3
            cur.close()
    finally:
        raw.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.parametrize(
    "call",
    [
        lambda c, t: pymysql.cursors.Cursor.execute(c.cursor(), f"DELETE FROM {t}"),
        lambda c, t: pymysql.connections.Connection.query(c, f"DELETE FROM {t}"),
        lambda c, t: pymysql.connections.Connection.select_db(c, "mysql"),
    ],
    ids=["Cursor.execute", "Connection.query", "Connection.select_db"],
)
def test_driver_methods_called_with_governed_objects_cannot_run(env: tuple[Any, str], call: Any) -> None:
    """PyMySQL's own methods called with a governed cursor/connection as self hit withheld private members."""
    conn, table = env
    with pytest.raises(AttributeError, match="withholds the driver's private member"):
        call(conn, table)
    cur = conn.cursor()
    cur.execute(f"SELECT count(*) FROM {table}")
    assert cur.fetchone() == (5,)
    cur.execute(f"SELECT id FROM {table} WHERE id = 1")
    assert cur._executed.endswith("id = 1")  # the debugging aid stays readable


def test_connection_result_of_a_governed_cursor_is_withheld(env: tuple[Any, str]) -> None:
    """conn._result after a governed cursor's SELECT holds raw rows: withheld; after conn.query() it is masked."""
    conn, table = env
    cur = conn.cursor()
    cur.execute(f"SELECT pii FROM {table} ORDER BY id")
    with pytest.raises(AttributeError, match="withholds"):
        conn._result  # noqa: B018
    assert not hasattr(conn, "_result")
    assert cur.fetchall()[0] == ("***",)
    conn.query(f"SELECT pii FROM {table} ORDER BY id")
    assert conn._result.rows[0] == ("***",)


def test_further_result_sets_of_a_withheld_query_are_withheld(
    mysql_kw: dict[str, Any], unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After conn.query() withholds rows (masking could not be planned), next_result() withholds the next set too."""
    from pymysql.constants import CLIENT

    raw = pymysql.connect(autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS, **mysql_kw)
    table = f"gdmq_{unique}"
    try:
        raw.cursor().execute(f"CREATE TABLE {table} (id int, pii varchar(64))")
        raw.cursor().execute(f"INSERT INTO {table} VALUES (1, 'a@example.com')")
        conn = governed_db.wrap(raw, environment="production", policy=POLICY)

        def broken(*_a: Any, **_k: Any) -> Any:
            raise RuntimeError("classifier down")

        monkeypatch.setattr(masking, "plan_masking", broken)
        with pytest.raises(governed_db.GovernanceFault):
            conn.query(f"SELECT pii FROM {table}; SELECT pii FROM {table}")
        with pytest.raises(GuardrailViolation, match="withheld"):
            conn.next_result()
    finally:
        raw.cursor().execute(f"DROP TABLE IF EXISTS {table}")
        raw.close()
