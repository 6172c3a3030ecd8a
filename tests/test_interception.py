"""Table-driven proof that every way in meets the pipeline and every way out masks, per driver.

Ways in: the call runs and leaves a span carrying its entry name; the same call
aimed at a marker table is refused by a policy rule before the driver sees it.
Ways out: with a stub mask plan for the column ``pii``, every exit hands out
masked values only.
"""

from __future__ import annotations

import io
import sqlite3
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import governed_db
from governed_db import GuardrailViolation, masking
from tests._interception_support import MARKER, POLICY, assert_masked, stub_plan_masking


@pytest.fixture(autouse=True)
def _no_real_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the marker rule decides here: the real masking (tested on its own) is switched off."""
    monkeypatch.setattr(masking, "predicate_hit", lambda *a, **k: None)
    monkeypatch.setattr(masking, "plan_masking", lambda *a, **k: None)


@pytest.fixture
def stub_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mask the column ``pii`` with a stub plan (the real masking is tested on its own)."""
    monkeypatch.setattr(masking, "plan_masking", stub_plan_masking)


Case = tuple[str, str, Callable[[Any, str], Any]]


def _entries(exporter: Any) -> list[str]:
    # statement spans only; the telemetry omits the attribute for the default entry, cursor.execute
    return [
        str(s.attributes.get("governed_db.entry", "cursor.execute"))
        for s in exporter.get_finished_spans()
        if s.name != "governed_db.result"
    ]


def _check_entry(
    make: Callable[[], Any], spans: Any, table: str, marker: str, entry: str, call: Callable[[Any, str], Any]
) -> None:
    _provider, exporter = spans
    conn = make()
    exporter.clear()
    out = call(conn, table)
    if isinstance(out, types.GeneratorType):
        list(out)
    assert entry in _entries(exporter), f"{entry} not recorded; spans: {_entries(exporter)}"
    with pytest.raises(GuardrailViolation) as refused:
        out = call(conn, marker)
        if isinstance(out, types.GeneratorType):
            list(out)
    assert refused.value.rules == ("marker",)


# -- sqlite3 ------------------------------------------------------------------------------------


class _FactoryCursor(sqlite3.Cursor):
    pass


def _sqlite_blob(conn: Any, t: str) -> Any:
    with conn.blobopen(t, "pii", 1, readonly=True) as blob:
        return blob.read()


SQLITE_ENTRIES: list[Case] = [
    ("cursor.execute", "cursor.execute", lambda c, t: c.cursor().execute(f"SELECT * FROM {t}")),
    (
        "cursor.executemany",
        "cursor.executemany",
        lambda c, t: c.cursor().executemany(f"INSERT INTO {t} VALUES (?, ?)", [(9, "z")]),
    ),
    (
        "cursor.executescript",
        "cursor.executescript",
        lambda c, t: c.cursor().executescript(f"SELECT * FROM {t};"),
    ),
    ("conn.execute", "cursor.execute", lambda c, t: c.execute(f"SELECT * FROM {t}")),
    (
        "conn.executemany",
        "cursor.executemany",
        lambda c, t: c.executemany(f"INSERT INTO {t} VALUES (?, ?)", [(9, "z")]),
    ),
    ("conn.executescript", "cursor.executescript", lambda c, t: c.executescript(f"SELECT * FROM {t};")),
    (
        "cursor(factory)",
        "cursor.execute",
        lambda c, t: c.cursor(_FactoryCursor).execute(f"SELECT * FROM {t}"),
    ),
    ("with conn", "cursor.execute", lambda c, t: c.__enter__().execute(f"SELECT * FROM {t}")),
    ("blobopen", "connection.blobopen", _sqlite_blob),
]


@pytest.fixture
def sqlite_make(spans: Any) -> Iterator[Callable[[], Any]]:
    raw = sqlite3.connect(":memory:")
    for t in ("gd_t", f"{MARKER}t"):
        raw.execute(f"CREATE TABLE {t} (id INTEGER, pii TEXT)")
        raw.executemany(f"INSERT INTO {t} VALUES (?, ?)", [(1, "alice@example.com"), (2, "bob@example.com")])
    raw.commit()
    yield lambda: governed_db.wrap(raw, environment="production", policy=POLICY, tracer_provider=spans[0])
    raw.close()


@pytest.mark.parametrize(("case", "entry", "call"), SQLITE_ENTRIES, ids=[c[0] for c in SQLITE_ENTRIES])
def test_sqlite_entry_meets_pipeline(sqlite_make: Any, spans: Any, case: str, entry: str, call: Any) -> None:
    """Each sqlite3 way in is recorded and refused for a marker table."""
    _check_entry(sqlite_make, spans, "gd_t", f"{MARKER}t", entry, call)


@pytest.mark.parametrize(
    ("entry", "call"),
    [
        ("connection.backup", lambda c: c.backup(sqlite3.connect(":memory:"))),
        ("connection.iterdump", lambda c: list(c.iterdump())),
    ],
)
def test_sqlite_non_sql_exits_are_judged(sqlite_make: Any, spans: Any, entry: str, call: Any) -> None:
    """backup() and iterdump() move rows without SQL; each is judged and recorded."""
    conn = sqlite_make()
    spans[1].clear()
    call(conn)
    assert entry in _entries(spans[1])


SQLITE_EXITS = [
    ("fetchall", lambda c, t: c.execute(f"SELECT * FROM {t}").fetchall()),
    ("fetchone", lambda c, t: [c.execute(f"SELECT * FROM {t}").fetchone()]),
    ("fetchmany", lambda c, t: c.execute(f"SELECT * FROM {t}").fetchmany(5)),
    ("iteration", lambda c, t: list(c.execute(f"SELECT * FROM {t}"))),
    ("next", lambda c, t: [next(c.execute(f"SELECT * FROM {t}"))]),
    (
        "row_factory",
        lambda c, t: (setattr(c, "row_factory", sqlite3.Row), c.execute(f"SELECT * FROM {t}").fetchall())[1],
    ),
    ("cursor.fetchall", lambda c, t: c.cursor().execute(f"SELECT * FROM {t}").fetchall()),
]


@pytest.mark.parametrize(("case", "call"), SQLITE_EXITS, ids=[c[0] for c in SQLITE_EXITS])
def test_sqlite_exit_masks(sqlite_make: Any, stub_masking: None, case: str, call: Any) -> None:
    """Each sqlite3 way out hands out masked values only."""
    assert_masked(call(sqlite_make(), "gd_t"))


# -- psycopg 3 ----------------------------------------------------------------------------------


def _pg3_copy_out(c: Any, t: str) -> Any:
    cur = c.cursor()
    with cur.copy(f"COPY {t} (id) TO STDOUT") as copy:
        return [bytes(b) for b in copy]


def _pg3_named(c: Any, t: str) -> Any:
    with c.cursor(name="gd_named", withhold=True) as cur:
        cur.execute(f"SELECT * FROM {t}")
        return cur.fetchall()


def _pg3_composed(c: Any, t: str) -> Any:
    from psycopg import sql

    return c.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(t))).fetchall()


def _pg3_pipeline(c: Any, t: str) -> Any:
    with c.pipeline():
        cur = c.execute(f"SELECT * FROM {t}")
    return cur.fetchall()


def _pg3_transaction(c: Any, t: str) -> Any:
    with c.transaction() as tx:
        return tx.connection.execute(f"SELECT * FROM {t}").fetchall()


PG3_ENTRIES: list[Case] = [
    ("cursor.execute", "cursor.execute", lambda c, t: c.cursor().execute(f"SELECT * FROM {t}")),
    (
        "cursor.executemany",
        "cursor.executemany",
        lambda c, t: c.cursor().executemany(f"INSERT INTO {t} VALUES (%s, %s)", [(9, "z")]),
    ),
    ("conn.execute", "cursor.execute", lambda c, t: c.execute(f"SELECT * FROM {t}")),
    ("conn.execute bytes", "cursor.execute", lambda c, t: c.execute(f"SELECT * FROM {t}".encode())),
    ("sql.Composed", "cursor.execute", _pg3_composed),
    ("cursor.stream", "cursor.stream", lambda c, t: c.cursor().stream(f"SELECT * FROM {t}")),
    ("cursor.copy", "cursor.copy", _pg3_copy_out),
    ("named cursor", "cursor.execute", _pg3_named),
    ("pipeline", "cursor.execute", _pg3_pipeline),
    ("transaction", "cursor.execute", _pg3_transaction),
]


@pytest.fixture
def pg3_make(pg_conn: Any, spans: Any, unique: str) -> Iterator[tuple[Callable[[], Any], str, str]]:
    table, marker = f"gd_{unique}", f"{MARKER}{unique}"
    for t in (table, marker):
        pg_conn.execute(f"CREATE TABLE {t} (id int, pii text)")
        pg_conn.execute(f"INSERT INTO {t} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')")
    yield (
        lambda: governed_db.wrap(pg_conn, environment="production", policy=POLICY, tracer_provider=spans[0]),
        table,
        marker,
    )
    for t in (table, marker):
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


@pytest.mark.parametrize(("case", "entry", "call"), PG3_ENTRIES, ids=[c[0] for c in PG3_ENTRIES])
def test_psycopg_entry_meets_pipeline(pg3_make: Any, spans: Any, case: str, entry: str, call: Any) -> None:
    """Each psycopg 3 way in is recorded and refused for a marker table."""
    make, table, marker = pg3_make
    _check_entry(make, spans, table, marker, entry, call)


def _pg3_dict_rows(c: Any, t: str) -> Any:
    from psycopg.rows import dict_row

    return c.cursor(row_factory=dict_row).execute(f"SELECT * FROM {t}").fetchall()


PG3_EXITS = [
    ("fetchall", lambda c, t: c.execute(f"SELECT * FROM {t}").fetchall()),
    ("fetchone", lambda c, t: [c.execute(f"SELECT * FROM {t}").fetchone()]),
    ("fetchmany", lambda c, t: c.execute(f"SELECT * FROM {t}").fetchmany(5)),
    ("iteration", lambda c, t: list(c.execute(f"SELECT * FROM {t}"))),
    ("stream", lambda c, t: list(c.cursor().stream(f"SELECT * FROM {t}"))),
    ("next", lambda c, t: [next(c.execute(f"SELECT * FROM {t}"))]),
    ("row_factory", _pg3_dict_rows),
    ("named cursor", _pg3_named),
    ("pipeline mode", _pg3_pipeline),
    ("executemany returning", lambda c, t: _pg3_returning(c, t)),
]


def _pg3_returning(c: Any, t: str) -> Any:
    cur = c.cursor()
    cur.executemany(f"SELECT id, pii FROM {t} WHERE id = %s", [(1,), (2,)], returning=True)
    rows = []
    for _ in cur.results():
        rows.extend(cur.fetchall())
    return rows


@pytest.mark.parametrize(("case", "call"), PG3_EXITS, ids=[c[0] for c in PG3_EXITS])
def test_psycopg_exit_masks(pg3_make: Any, stub_masking: None, case: str, call: Any) -> None:
    """Each psycopg 3 way out hands out masked values only."""
    make, table, _ = pg3_make
    assert_masked(call(make(), table))


def test_psycopg_copy_out_of_masked_columns_is_refused(pg3_make: Any, stub_masking: None) -> None:
    """COPY ... TO cannot be masked, so exporting a masked column is refused before it runs."""
    make, table, _ = pg3_make
    with (
        pytest.raises(GuardrailViolation, match="masking cannot"),
        make().cursor().copy(f"COPY {table} TO STDOUT"),
    ):
        pass


# -- psycopg2 -----------------------------------------------------------------------------------


def _pg2_named(c: Any, t: str) -> Any:
    c.autocommit = False  # named cursors live in a transaction
    try:
        with c:
            cur = c.cursor("gd_named2")
            cur.execute(f"SELECT * FROM {t}")
            rows = list(cur)
            cur.close()
    finally:
        c.rollback()
        c.autocommit = True
    return rows


def _pg2_composed(c: Any, t: str) -> Any:
    from psycopg2 import sql

    cur = c.cursor()
    cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(t)))
    return cur


def _pg2_execute_values(c: Any, t: str) -> Any:
    from psycopg2.extras import execute_values

    execute_values(c.cursor(), f"INSERT INTO {t} VALUES %s", [(9, "z")])


def _cur_run(method: str, *args: Any) -> Callable[[Any, str], Any]:
    def call(c: Any, t: str) -> Any:
        cur = c.cursor()
        getattr(cur, method)(*(a.format(t=t) if isinstance(a, str) else a for a in args))
        return cur

    return call


PG2_ENTRIES: list[Any] = [
    ("cursor.execute", "cursor.execute", _cur_run("execute", "SELECT * FROM {t}")),
    (
        "cursor.executemany",
        "cursor.executemany",
        _cur_run("executemany", "INSERT INTO {t} VALUES (%s, %s)", [(9, "z")]),
    ),
    ("bytes", "cursor.execute", lambda c, t: c.cursor().execute(f"SELECT * FROM {t}".encode())),
    ("sql.Composed", "cursor.execute", _pg2_composed),
    ("execute_values", "cursor.execute", _pg2_execute_values),
    (
        "copy_expert",
        "cursor.copy_expert",
        lambda c, t: c.cursor().copy_expert(f"COPY {t} (id) TO STDOUT", io.StringIO()),
    ),
    ("copy_to", "cursor.copy_to", lambda c, t: c.cursor().copy_to(io.StringIO(), t, columns=("id",))),
    ("copy_from", "cursor.copy_from", lambda c, t: c.cursor().copy_from(io.StringIO("7\tq\n"), t)),
    ("named cursor", "cursor.execute", _pg2_named),
    ("cursor_factory", "cursor.execute", lambda c, t: _dict_cursor(c).execute(f"SELECT * FROM {t}")),
]


def _dict_cursor(c: Any) -> Any:
    from psycopg2.extras import RealDictCursor

    return c.cursor(cursor_factory=RealDictCursor)


@pytest.fixture
def pg2_make(pg2_conn: Any, spans: Any, unique: str) -> Iterator[tuple[Callable[[], Any], str, str]]:
    table, marker = f"gd2_{unique}", f"{MARKER}2{unique}"
    cur = pg2_conn.cursor()
    for t in (table, marker):
        cur.execute(f"CREATE TABLE {t} (id int, pii text)")
        cur.execute(f"INSERT INTO {t} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')")
    yield (
        lambda: governed_db.wrap(pg2_conn, environment="production", policy=POLICY, tracer_provider=spans[0]),
        table,
        marker,
    )
    pg2_conn.rollback()
    pg2_conn.autocommit = True
    for t in (table, marker):
        cur.execute(f"DROP TABLE IF EXISTS {t}")


@pytest.mark.parametrize(("case", "entry", "call"), PG2_ENTRIES, ids=[c[0] for c in PG2_ENTRIES])
def test_psycopg2_entry_meets_pipeline(pg2_make: Any, spans: Any, case: str, entry: str, call: Any) -> None:
    """Each psycopg2 way in is recorded and refused for a marker table."""
    make, table, marker = pg2_make
    _check_entry(make, spans, table, marker, entry, call)


PG2_EXITS = [
    ("fetchall", lambda c, t: _cur_run("execute", "SELECT * FROM {t}")(c, t).fetchall()),
    ("fetchone", lambda c, t: [_cur_run("execute", "SELECT * FROM {t}")(c, t).fetchone()]),
    ("fetchmany", lambda c, t: _cur_run("execute", "SELECT * FROM {t}")(c, t).fetchmany(5)),
    ("iteration", lambda c, t: list(_cur_run("execute", "SELECT * FROM {t}")(c, t))),
    ("next", lambda c, t: [next(_cur_run("execute", "SELECT * FROM {t}")(c, t))]),
    ("named cursor iteration", _pg2_named),
    ("cursor_factory", lambda c, t: _dict_cursor(c).__enter__().execute(f"SELECT * FROM {t}") or None),
]


@pytest.mark.parametrize(("case", "call"), PG2_EXITS[:-1], ids=[c[0] for c in PG2_EXITS[:-1]])
def test_psycopg2_exit_masks(pg2_make: Any, stub_masking: None, case: str, call: Any) -> None:
    """Each psycopg2 way out hands out masked values only."""
    make, table, _ = pg2_make
    assert_masked(call(make(), table))


def test_psycopg2_dict_cursor_masks(pg2_make: Any, stub_masking: None) -> None:
    """Rows of a cursor_factory cursor (RealDictCursor) come out masked."""
    make, table, _ = pg2_make
    cur = _dict_cursor(make())
    cur.execute(f"SELECT * FROM {table}")
    assert_masked(cur.fetchall())


def test_psycopg2_copy_to_of_masked_columns_is_refused(pg2_make: Any, stub_masking: None) -> None:
    """copy_to() of a table with a masked column is refused before any byte is written."""
    make, table, _ = pg2_make
    out = io.StringIO()
    with pytest.raises(GuardrailViolation, match="masking cannot"):
        make().cursor().copy_to(out, table)
    assert out.getvalue() == ""


# -- pymysql ------------------------------------------------------------------------------------


def _my_cursor(kind: str | None) -> Callable[[Any], Any]:
    def make(c: Any) -> Any:
        import pymysql.cursors

        return c.cursor(getattr(pymysql.cursors, kind)) if kind else c.cursor()

    return make


def _my_run(
    kind: str | None, sql: str, method: str = "execute", params: Any = None
) -> Callable[[Any, str], Any]:
    def call(c: Any, t: str) -> Any:
        cur = _my_cursor(kind)(c)
        if params is None:
            getattr(cur, method)(sql.format(t=t))
        else:
            getattr(cur, method)(sql.format(t=t), params)
        return cur

    return call


MYSQL_ENTRIES: list[Case] = [
    ("cursor.execute", "cursor.execute", _my_run(None, "SELECT * FROM {t}")),
    (
        "cursor.executemany",
        "cursor.executemany",
        _my_run(None, "INSERT INTO {t} VALUES (%s, %s)", "executemany", [(9, "z")]),
    ),
    ("bytes", "cursor.execute", lambda c, t: c.cursor().execute(f"SELECT * FROM {t}".encode())),
    ("DictCursor", "cursor.execute", _my_run("DictCursor", "SELECT * FROM {t}")),
    ("SSCursor", "cursor.execute", lambda c, t: _my_run("SSCursor", "SELECT * FROM {t}")(c, t).fetchall()),
    ("conn.query", "connection.query", lambda c, t: c.query(f"SELECT * FROM {t}")),
]


@pytest.fixture
def mysql_make(mysql_conn: Any, spans: Any, unique: str) -> Iterator[tuple[Callable[[], Any], str, str]]:
    table, marker = f"gd_{unique}", f"{MARKER}{unique}"
    cur = mysql_conn.cursor()
    for t in (table, marker):
        cur.execute(f"CREATE TABLE {t} (id int, pii varchar(64))")
        cur.execute(f"INSERT INTO {t} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')")
    yield (
        lambda: governed_db.wrap(
            mysql_conn, environment="production", policy=POLICY, tracer_provider=spans[0]
        ),
        table,
        marker,
    )
    for t in (table, marker):
        mysql_conn.cursor().execute(f"DROP TABLE IF EXISTS {t}")


@pytest.mark.parametrize(("case", "entry", "call"), MYSQL_ENTRIES, ids=[c[0] for c in MYSQL_ENTRIES])
def test_pymysql_entry_meets_pipeline(mysql_make: Any, spans: Any, case: str, entry: str, call: Any) -> None:
    """Each PyMySQL way in is recorded and refused for a marker table."""
    make, table, marker = mysql_make
    _check_entry(make, spans, table, marker, entry, call)


def test_pymysql_select_db_and_callproc_are_judged(
    mysql_make: Any, mysql_kw: dict[str, Any], spans: Any
) -> None:
    """select_db() is judged as USE and callproc() as CALL, both recorded."""
    make, _, _ = mysql_make
    conn = make()
    spans[1].clear()
    conn.select_db(mysql_kw["database"])
    with pytest.raises(Exception):  # noqa: B017 - the procedure does not exist: the driver's error
        conn.cursor().callproc("gd_no_such_proc", (1,))
    assert {"connection.select_db", "cursor.callproc"} <= set(_entries(spans[1]))


MYSQL_EXITS = [
    ("fetchall", lambda c, t: _my_run(None, "SELECT * FROM {t}")(c, t).fetchall()),
    ("fetchone", lambda c, t: [_my_run(None, "SELECT * FROM {t}")(c, t).fetchone()]),
    ("fetchmany", lambda c, t: _my_run(None, "SELECT * FROM {t}")(c, t).fetchmany(5)),
    ("iteration", lambda c, t: list(_my_run(None, "SELECT * FROM {t}")(c, t))),
    ("next", lambda c, t: [next(_my_run(None, "SELECT * FROM {t}")(c, t))]),
    ("DictCursor", lambda c, t: _my_run("DictCursor", "SELECT * FROM {t}")(c, t).fetchall()),
    ("SSCursor iteration", lambda c, t: list(_my_run("SSCursor", "SELECT * FROM {t}")(c, t))),
    (
        "SSCursor fetchall_unbuffered",
        lambda c, t: list(_my_run("SSCursor", "SELECT * FROM {t}")(c, t).fetchall_unbuffered()),
    ),
    ("SSDictCursor fetchmany", lambda c, t: _my_run("SSDictCursor", "SELECT * FROM {t}")(c, t).fetchmany(5)),
]


@pytest.mark.parametrize(("case", "call"), MYSQL_EXITS, ids=[c[0] for c in MYSQL_EXITS])
def test_pymysql_exit_masks(mysql_make: Any, stub_masking: None, case: str, call: Any) -> None:
    """Each PyMySQL way out hands out masked values only."""
    make, table, _ = mysql_make
    assert_masked(call(make(), table))


# -- duckdb -------------------------------------------------------------------------------------


def _duck_statement(c: Any, t: str) -> Any:
    return c.execute(c.extract_statements(f"SELECT * FROM {t}")[0]).fetchall()


DUCK_ENTRIES: list[Case] = [
    ("conn.execute", "connection.execute", lambda c, t: c.execute(f"SELECT * FROM {t}")),
    (
        "conn.executemany",
        "connection.executemany",
        lambda c, t: c.executemany(f"INSERT INTO {t} VALUES (?, ?)", [(9, "z")]),
    ),
    ("cursor().execute", "connection.execute", lambda c, t: c.cursor().execute(f"SELECT * FROM {t}")),
    ("duplicate().execute", "connection.execute", lambda c, t: c.duplicate().execute(f"SELECT * FROM {t}")),
    ("Statement", "connection.execute", _duck_statement),
    ("sql write", "connection.sql", lambda c, t: c.sql(f"INSERT INTO {t} VALUES (9, 'z')")),
    ("sql read", "connection.sql", lambda c, t: c.sql(f"SELECT * FROM {t}").fetchall()),
    ("query", "connection.query", lambda c, t: c.query(f"SELECT * FROM {t}").fetchall()),
    ("from_query", "connection.from_query", lambda c, t: c.from_query(f"SELECT * FROM {t}").df()),
    ("relation read", "relation.fetchall", lambda c, t: c.table(t).fetchall()),
    ("table", "relation.fetchall", lambda c, t: c.table(t).fetchall()),
    ("table.filter", "relation.fetchall", lambda c, t: c.table(t).filter("id > 0").fetchall()),
    (
        "table.project.order",
        "relation.fetchnumpy",
        lambda c, t: c.table(t).project("pii").order("pii").fetchnumpy(),
    ),
    ("relation.query", "relation.fetchall", lambda c, t: c.table(t).query("v", "SELECT * FROM v").fetchall()),
    (
        "relation.join",
        "relation.fetchall",
        lambda c, t: c.table(t).set_alias("a").join(c.table(t).set_alias("b"), "a.id = b.id").fetchall(),
    ),
    ("relation.repr", "relation.repr", lambda c, t: repr(c.table(t))),
    ("relation.show", "relation.show", lambda c, t: c.table(t).show()),
    ("relation.create", "relation.create", lambda c, t: c.table(t).create(f"{t}_copy")),
    ("relation.insert_into", "relation.insert_into", lambda c, t: c.table(t).insert_into(t)),
    ("relation.create_view", "relation.create_view", lambda c, t: c.table(t).create_view(f"{t}_v")),
    ("relation.iter_rows", "relation.iter_rows", lambda c, t: list(c.table(t).iter_rows())),
    ("relation.to_dicts", "relation.to_dicts", lambda c, t: c.table(t).to_dicts()),
    ("module facade sql", "connection.sql", lambda c, t: _facade(c).sql(f"SELECT * FROM {t}").fetchall()),
    ("module facade execute", "connection.execute", lambda c, t: _facade(c).execute(f"SELECT * FROM {t}")),
]


def _facade(conn: Any) -> Any:
    return conn.governor.state["test.facade"]


@pytest.fixture
def duck_make(spans: Any, tmp_path: Any) -> Iterator[Callable[[], Any]]:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    default = duckdb.default_connection()
    for c in (raw, default):
        for t in ("gd_t", f"{MARKER}t"):
            c.execute(f"CREATE OR REPLACE TABLE {t} (id INTEGER, pii VARCHAR)")
            c.execute(f"INSERT INTO {t} VALUES (1, 'alice@example.com'), (2, 'bob@example.com')").fetchall()
    options = {"environment": "production", "policy": POLICY, "tracer_provider": spans[0]}
    facade = governed_db.govern_module(duckdb, **options)

    def make() -> Any:
        conn = governed_db.wrap(raw, **options)
        conn.governor.state["test.facade"] = facade
        return conn

    yield make
    for t in ("gd_t", f"{MARKER}t"):
        default.execute(f"DROP TABLE IF EXISTS {t}")
    raw.close()


@pytest.mark.parametrize(("case", "entry", "call"), DUCK_ENTRIES, ids=[c[0] for c in DUCK_ENTRIES])
def test_duckdb_entry_meets_pipeline(duck_make: Any, spans: Any, case: str, entry: str, call: Any) -> None:
    """Each DuckDB way in (statements, relations, module functions) is recorded and refused for a marker table."""
    _check_entry(duck_make, spans, "gd_t", f"{MARKER}t", entry, call)


def test_duckdb_file_readers_and_extensions_are_judged(duck_make: Any, spans: Any, tmp_path: Any) -> None:
    """read_csv opens a file, so it is judged when called; LOAD/INSTALL are judged as their SQL."""
    path = tmp_path / f"{MARKER}data.csv"
    path.write_text("id,pii\n1,alice@example.com\n")
    conn = duck_make()
    with pytest.raises(GuardrailViolation):
        conn.read_csv(str(path))
    spans[1].clear()
    ok = tmp_path / "data.csv"
    ok.write_text("id,pii\n1,alice@example.com\n")
    assert [r[0] for r in conn.read_csv(str(ok)).fetchall()] == [1]
    assert {"connection.read_csv", "relation.fetchall"} <= set(_entries(spans[1]))
    with pytest.raises(Exception):  # noqa: B017 - no network / no such extension: the driver's own error
        conn.load_extension("gd_no_such_extension")
    assert "connection.load_extension" in _entries(spans[1])


def test_duckdb_module_dataframe_helpers_are_refused(duck_make: Any) -> None:
    """Module functions that bypass any connection are refused with a pointer to the governed way."""
    conn = duck_make()
    with pytest.raises(governed_db.ConfigurationError, match=r"conn\.from_df"):
        _facade(conn).query_df(None, "v", "SELECT 1")


DUCK_EXITS = [
    ("fetchall", lambda c, t: c.execute(f"SELECT * FROM {t}").fetchall()),
    ("fetchone", lambda c, t: [c.execute(f"SELECT * FROM {t}").fetchone()]),
    ("fetchmany", lambda c, t: c.execute(f"SELECT * FROM {t}").fetchmany(5)),
    ("conn.df", lambda c, t: c.execute(f"SELECT * FROM {t}").df()),
    ("conn.fetchdf", lambda c, t: c.execute(f"SELECT * FROM {t}").fetchdf()),
    ("conn.fetchnumpy", lambda c, t: c.execute(f"SELECT * FROM {t}").fetchnumpy()),
    ("relation.fetchall", lambda c, t: c.sql(f"SELECT * FROM {t}").fetchall()),
    ("relation.df", lambda c, t: c.table(t).df()),
    ("relation.to_df", lambda c, t: c.table(t).to_df()),
    ("relation.fetchnumpy", lambda c, t: c.table(t).fetchnumpy()),
    ("relation.iter_rows", lambda c, t: list(c.table(t).iter_rows())),
    ("relation.to_dicts", lambda c, t: c.table(t).to_dicts()),
    ("relation.filter.fetchall", lambda c, t: c.table(t).filter("id > 0").fetchall()),
    (
        "relation.repr",
        lambda c, t: [(repr(c.table(t)),)] if "***" in repr(c.table(t)) else [("alice@example.com",)],
    ),
]


@pytest.mark.parametrize(("case", "call"), DUCK_EXITS, ids=[c[0] for c in DUCK_EXITS])
def test_duckdb_exit_masks(duck_make: Any, stub_masking: None, case: str, call: Any) -> None:
    """Each DuckDB way out (rows, frames, relations, displays) hands out masked values only."""
    out = call(duck_make(), "gd_t")
    if case == "relation.repr":
        assert "alice@example.com" not in out[0][0] and "***" in out[0][0]
    else:
        assert_masked(out)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.table("gd_t").write_csv("/nonexistent-dir/out.csv"),
        lambda c: c.execute("COPY gd_t TO '/nonexistent-dir/out.csv'"),
    ],
    ids=["relation.write_csv", "COPY TO"],
)
def test_duckdb_file_export_of_masked_columns_is_refused(
    duck_make: Any, stub_masking: None, call: Any
) -> None:
    """The engine writes files itself, so exporting a masked column is refused before it runs."""
    with pytest.raises(GuardrailViolation, match="masking cannot"):
        call(duck_make())


# -- stacked under opentelemetry-instrumentation-dbapi ------------------------------------------


@pytest.mark.parametrize("driver", ["sqlite3", "psycopg2", "pymysql"])
def test_entries_and_exits_hold_over_otel_instrumented_connections(
    request: pytest.FixtureRequest, spans: Any, stub_masking: None, unique: str, driver: str
) -> None:
    """Wrapping a connection the official dbapi instrumentation already traces keeps refusals and masking."""
    from opentelemetry.instrumentation.dbapi import instrument_connection

    if driver == "sqlite3":
        raw: Any = sqlite3.connect(":memory:")
        system = "sqlite"
    elif driver == "psycopg2":
        raw = request.getfixturevalue("pg2_conn")
        system = "postgresql"
    else:
        raw = request.getfixturevalue("mysql_conn")
        system = "mysql"
    table = f"gdo_{unique}"
    cur = raw.cursor()
    cur.execute(f"CREATE TABLE {table} (id int, pii varchar(64))")
    cur.execute(f"INSERT INTO {table} VALUES (1, 'alice@example.com')")
    try:
        traced = instrument_connection("otel-dbapi", raw, system, tracer_provider=spans[0])
        conn = governed_db.wrap(traced, environment="production", policy=POLICY, tracer_provider=spans[0])
        assert isinstance(conn, type(raw))
        gcur = conn.cursor()
        gcur.execute(f"SELECT id, pii FROM {table}")
        assert gcur.fetchall() in ([(1, "***")], ((1, "***"),))
        with pytest.raises(GuardrailViolation):
            conn.cursor().execute(f"SELECT * FROM {MARKER}x")
        names = {s.name for s in spans[1].get_finished_spans()}
        assert any(n.startswith("SELECT") for n in names)
    finally:
        raw.cursor().execute(f"DROP TABLE IF EXISTS {table}")
