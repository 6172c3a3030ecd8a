"""Over-refusal and over-masking found by the red team (agent identity, production, zero configuration).

Each innocent statement below was refused or came back masked although it reads no masked value; each test
shows it now runs and returns what the raw connection returns, next to the nearest hostile variant, which is
still refused or masked. Decision 0195.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import AGENT, govern, leaked, made_tables

DDL = "(id int primary key, full_name {t}, email {t}, ssn {t}, city {t})"
ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "Paris"),
    (2, "Bob Jones", "bob.jones@example.org", "219-45-1234", "Lyon"),
]
SECRETS = ("Alice", "alice@", "536-22", "8726", "bob.jones", "219-45")


def _refused(conn: Any, sql: str) -> str:
    cur = conn.cursor()
    with pytest.raises(governed_db.GuardrailViolation) as info:
        cur.execute(sql)
        cur.fetchall()
    return str(info.value)


@pytest.fixture
def pg(pg_conn: Any, pg_dsn: str, unique: str) -> Iterator[tuple[Any, Any, str]]:
    """(raw psycopg connection, governed connection, table) over a table with masked columns and city."""
    import psycopg

    with made_tables(pg_conn) as make:
        t = make(DDL.format(t="text"), ROWS, f"overref_c_{unique}")
        raw = psycopg.connect(pg_dsn, autocommit=True)
        try:
            yield pg_conn, govern(raw), t
        finally:
            raw.close()


def _rows(conn: Any, sql: str) -> list[Any]:
    cur = conn.cursor()
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()]


# -- 4. computed system values are not scanned as free text ---------------------------------------------------
def test_postgres_relation_filepath_is_not_scanned(pg: tuple[Any, Any, str]) -> None:
    """pg_relation_filepath('t') came back as ``base/[PHONE]``: a storage path over constant arguments is not
    data. Over a masked column the function stays refused (its error says whether a value names a relation).
    The sizes of a table with masked columns are refused to this identity: how many row versions fit on a page
    depends on how long their values are (decision 0244)."""
    raw, conn, t = pg
    sql = f"SELECT pg_relation_filepath('{t}'), pg_relation_filenode('{t}') > 0, pg_size_pretty(8192::bigint)"
    assert _rows(conn, sql) == _rows(raw, sql)
    assert "rows are stored on" in _refused(conn, f"SELECT pg_size_pretty(pg_total_relation_size('{t}'))")
    assert "masked-column" in _refused(conn, f"SELECT pg_relation_filepath(email) FROM {t}")
    assert "masked-column" in _refused(conn, f"SELECT pg_relation_filepath((SELECT ssn FROM {t} LIMIT 1))")
    # a function that reads table data from a constant argument is not a storage function
    assert "query_to_xml" in _refused(conn, f"SELECT query_to_xml('SELECT ssn FROM {t}', false, false, '')")


# -- 2. recursive CTEs are traced through their step --------------------------------------------------------
@pytest.fixture
def lite() -> Iterator[tuple[Any, Any, str]]:
    import sqlite3

    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE customers " + DDL.format(t="text"))
    raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?)", ROWS)
    yield raw, govern(raw), "customers"
    raw.close()


RECURSIVE_INNOCENT = [
    # a counter next to a masked table: n is a constant, whatever the table holds
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
    "SELECT n, c.city FROM r, {t} c WHERE c.id = 1 AND n > 2 ORDER BY n",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
    "SELECT n, c.city FROM r JOIN {t} c ON c.id = r.n ORDER BY n",
    # a counter named like a masked column
    "WITH RECURSIVE r(email) AS (SELECT 1 UNION ALL SELECT email + 1 FROM r WHERE email < 4) "
    "SELECT email FROM r WHERE email > 1 ORDER BY email",
]


@pytest.mark.parametrize("db", ["pg", "lite"])
@pytest.mark.parametrize("sql", RECURSIVE_INNOCENT)
def test_recursive_counters_run(db: str, sql: str, request: pytest.FixtureRequest) -> None:
    """A recursive counter read with a masked table, or named like a masked column, returns what the raw
    connection returns (it was refused as a masked column)."""
    raw, conn, t = request.getfixturevalue(db)
    assert _rows(conn, sql.format(t=t)) == _rows(raw, sql.format(t=t))


RECURSIVE_HOSTILE = [
    # a masked value carried through the step and tested there
    "WITH RECURSIVE r(e, k) AS (SELECT email, 1 FROM {t} UNION ALL SELECT e, k + 1 FROM r "
    "WHERE e LIKE 'a%' AND k < 3) SELECT k FROM r",
    # a masked value brought in by the step and tested outside
    "WITH RECURSIVE r(e, k) AS (SELECT 'x', 1 UNION ALL SELECT c.ssn, k + 1 FROM r JOIN {t} c ON c.id = r.k "
    "WHERE k < 3) SELECT k FROM r WHERE e LIKE '5%'",
    # a masked value chopped a character per step: the step count is its length
    "WITH RECURSIVE r(n, s) AS (SELECT 1, (SELECT ssn FROM {t} WHERE id = 1) UNION ALL "
    "SELECT n + 1, substr(s, 2) FROM r WHERE s <> '') SELECT count(*) FROM r",
    # the step bounded by a masked character
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r, {t} c WHERE c.id = 1 "
    "AND n < ascii(substr(c.ssn, 1, 1))) SELECT count(*) FROM r",
    # the counter decides on a masked value in the step: the counter itself becomes masked
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + length(c.ssn) FROM r, {t} c WHERE n < 30) "
    "SELECT n FROM r WHERE n = 12",
]


@pytest.mark.parametrize("db", ["pg", "lite"])
@pytest.mark.parametrize("sql", RECURSIVE_HOSTILE)
def test_recursive_masked_values_stay_refused(db: str, sql: str, request: pytest.FixtureRequest) -> None:
    """A masked value that flows through a recursive step still may not decide which rows come back."""
    _raw, conn, t = request.getfixturevalue(db)
    assert "masked-column" in _refused(conn, sql.format(t=t))


@pytest.mark.parametrize("db", ["pg", "lite"])
def test_recursive_masked_values_come_back_masked(db: str, request: pytest.FixtureRequest) -> None:
    """Values a recursive step takes from masked columns (carried, or brought in by the step) come back masked."""
    _raw, conn, t = request.getfixturevalue(db)
    carried = _rows(conn, f"WITH RECURSIVE r(e, k) AS (SELECT email, 1 FROM {t} UNION ALL SELECT e, k + 1 FROM r "
                          "WHERE k < 3) SELECT e, k FROM r ORDER BY k")  # fmt: skip
    # (ordered: a recursive query's rows listed as they come follow the stored order on PostgreSQL, decision 0353)
    brought = _rows(conn, f"WITH RECURSIVE r(e, k) AS (SELECT 'x', 1 UNION ALL SELECT c.full_name, k + 1 FROM r "
                          f"JOIN {t} c ON c.id = r.k WHERE k < 3) SELECT e, k FROM r ORDER BY k")  # fmt: skip
    assert len(carried) == 6 and len(brought) == 3
    assert not leaked(carried, SECRETS) and not leaked(brought, SECRETS), (carried, brought)
    assert "x" not in [e for e, _ in brought]  # a column mixing a masked value is masked whole


# -- 1. PostgreSQL COPY ... TO of columns nothing masks -------------------------------------------------------
def _copy_out(conn: Any, sql: str) -> bytes:
    with conn.cursor() as cur, cur.copy(sql) as copy:
        return b"".join(bytes(chunk) for chunk in copy)


def _copy_refused(conn: Any, sql: str) -> str:
    with pytest.raises(governed_db.GuardrailViolation) as info:
        _copy_out(conn, sql)
    return str(info.value)


@pytest.fixture
def pg_plain(pg: tuple[Any, Any, str]) -> Iterator[tuple[Any, Any, str, str]]:
    raw, conn, t = pg
    plain = f"{t}_plain"
    raw.execute(f"CREATE TABLE {plain} (id int, city text)")
    raw.execute(f"INSERT INTO {plain} VALUES (1, 'Paris'), (2, 'Lyon')")
    try:
        yield raw, conn, t, plain
    finally:
        raw.execute(f"DROP TABLE IF EXISTS {plain}")


COPY_INNOCENT = [
    "COPY (SELECT city FROM {t}) TO STDOUT",
    "COPY (SELECT id, upper(city) FROM {t} WHERE id = 2) TO STDOUT (FORMAT csv)",
    "COPY {plain} TO STDOUT",
    "COPY {plain} TO STDOUT (FORMAT csv, HEADER)",
    # the table form, COPY {t} (id, city) TO, exports the rows as stored, which the masked values' widths decide: it
    # is refused over a table with masked columns, and its query form ordered by the key runs (decision 0303)
    "COPY (SELECT id, city FROM {t} ORDER BY id) TO STDOUT (FORMAT csv)",
]


@pytest.mark.parametrize("sql", COPY_INNOCENT)
def test_postgres_copy_of_unmasked_columns_runs(pg_plain: tuple[Any, Any, str, str], sql: str) -> None:
    """COPY ... TO (psycopg ``cursor.copy()``) of columns nothing masks, with or without an option list,
    exports what the raw connection exports (it was refused as if city were masked, or as a write)."""
    raw, conn, t, plain = pg_plain
    text = sql.format(t=t, plain=plain)
    assert _copy_out(conn, text) == _copy_out(raw, text) != b""


COPY_HOSTILE = [
    "COPY {t} TO STDOUT (FORMAT csv)",
    "COPY {t} TO STDOUT WITH (FORMAT csv)",
    "COPY (SELECT email FROM {t}) TO STDOUT (FORMAT csv)",
    "COPY (SELECT city, ssn FROM {t}) TO STDOUT (FORMAT text, DELIMITER '|')",
    "COPY {t} (id, full_name) TO STDOUT (FORMAT binary)",
]


@pytest.mark.parametrize("identity", [AGENT, governed_db.Identity("alice")], ids=["agent", "person"])
@pytest.mark.parametrize("sql", COPY_HOSTILE)
def test_postgres_copy_with_options_of_masked_columns_is_refused(
    pg: tuple[Any, Any, str], pg_dsn: str, sql: str, identity: governed_db.Identity
) -> None:
    """An option list after STDOUT no longer hides the COPY from the analysis: a person in production without
    an unmask grant got ``COPY t TO STDOUT (FORMAT csv)`` with every e-mail and SSN in the clear."""
    import psycopg

    _raw, _conn, t = pg
    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        conn = govern(raw, identity)
        assert "masked" in _copy_refused(conn, sql.format(t=t))
    finally:
        raw.close()


def test_postgres_copy_scans_a_nearly_empty_table_at_the_source(pg: tuple[Any, Any, str]) -> None:
    """city is only scanned (its table had too few rows to classify): COPY of it runs while it holds nothing
    the scan masks, and is refused, naming city, once an e-mail address arrives in it, even reversed."""
    raw, conn, t = pg
    assert _copy_out(conn, f"COPY (SELECT city FROM {t}) TO STDOUT") == b"Paris\nLyon\n"
    raw.execute(f"INSERT INTO {t} VALUES (3, 'Carol', 'carol@example.net', '123-45-6789', 'carol.b@example.com')")
    for sql in (f"COPY (SELECT city FROM {t}) TO STDOUT", f"COPY (SELECT reverse(city) FROM {t}) TO STDOUT (FORMAT csv)"):
        message = _copy_refused(conn, sql)
        assert "carol" not in message
    assert "(city)" in _copy_refused(conn, f"COPY (SELECT id, city FROM {t}) TO STDOUT")


def test_postgres_copy_of_a_data_change_is_refused_for_a_person(pg: tuple[Any, Any, str], pg_dsn: str) -> None:
    """COPY (DELETE ... RETURNING email) TO exports columns no probe describes: refused while masking is on
    (even when a person approves the data change); the table keeps its rows."""
    import psycopg

    raw0, _conn, t = pg
    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        conn = govern(raw, governed_db.Identity("alice"), policy={"rules": {"dml-in-cte": "allow"}})  # fmt: skip
        message = _copy_refused(conn, f"COPY (DELETE FROM {t} WHERE id = 1 RETURNING email) TO STDOUT")
        assert "alice@" not in message
    finally:
        raw.close()
    assert raw0.execute(f"SELECT count(*) FROM {t}").fetchone() == (2,)


# -- 3. DuckDB COLUMNS(*) inside an expression, and map() -----------------------------------------------------
@pytest.fixture
def duck() -> Iterator[tuple[Any, Any, str]]:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE customers " + DDL.format(t="varchar"))
    raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?)", [list(r) for r in ROWS])
    yield raw, govern(raw), "customers"
    raw.close()


def test_duckdb_columns_star_in_an_expression_masks_only_masked_columns(duck: tuple[Any, Any, str]) -> None:
    """max(COLUMNS(*)) is max(id), max(full_name), ...: each traced to its own column, so city and id come
    back as the raw connection returns them and the masked columns masked."""
    raw, conn, t = duck
    for sql in (f"SELECT max(COLUMNS(*)) FROM {t}", f"SELECT upper(COLUMNS('c.*')) FROM {t}",
                f"SELECT count(COLUMNS(*)) FROM {t}"):  # fmt: skip
        got, want = _rows(conn, sql), _rows(raw, sql)
        names = [d[0] for d in raw.execute(sql).description]
        for i, name in enumerate(names):
            if name in ("id", "city") or "count" in sql:
                assert [r[i] for r in got] == [r[i] for r in want], (sql, name)
        assert not leaked(got, SECRETS), got
    assert _rows(conn, f"SELECT max(COLUMNS(*)) FROM {t}")[0][0] == 2


def test_duckdb_columns_named_alike_are_masked_as_either(duck: tuple[Any, Any, str]) -> None:
    """Two result columns of one name (``reverse(COLUMNS('email')), COLUMNS('email')``) are both masked whole:
    the e-mail masker kept the reversed local part of the address as its "domain"."""
    _raw, conn, t = duck
    for sql in (f"SELECT reverse(COLUMNS('email')), COLUMNS('email') FROM {t}",
                f"SELECT COLUMNS('email'), reverse(COLUMNS('email')) FROM {t}",
                f"SELECT reverse(COLUMNS(*)) FROM (SELECT email, full_name FROM {t})"):  # fmt: skip
        got = _rows(conn, sql)
        assert not leaked(got, SECRETS) and "ecila" not in repr(got) and "htimS" not in repr(got), (sql, got)


def test_duckdb_map_refusal_names_only_masked_columns(duck: tuple[Any, Any, str]) -> None:
    """map() over a relation names only the columns that are masked (city is only scanned, and clean); without
    them it runs; once city holds an e-mail address, map() over it is refused naming city."""
    raw, conn, t = duck
    with pytest.raises(governed_db.GuardrailViolation) as info:
        conn.table(t).map(lambda df: df).fetchall()
    assert "(full_name, email, ssn)" in str(info.value)
    assert conn.table(t).project("id, city").map(lambda df: df).fetchall() == [(1, "Paris"), (2, "Lyon")]
    raw.execute(f"INSERT INTO {t} VALUES (3, 'Carol', 'c@example.net', '123-45-6789', 'carol.b@example.com')")
    fresh = govern(raw)
    with pytest.raises(governed_db.GuardrailViolation) as info:
        fresh.table(t).project("id, city").map(lambda df: df).fetchall()
    assert "(city)" in str(info.value) and "carol" not in str(info.value)


def test_duckdb_summarize_of_scanned_columns_runs_until_data_arrives(duck: tuple[Any, Any, str]) -> None:
    """SUMMARIZE (min, max, quantiles of every column) of a table with no masked column runs
    over the clean, nearly empty table; refused once a scanned column holds an e-mail address, and over a
    table with masked columns."""
    raw, conn, t = duck
    raw.execute(f"CREATE TABLE {t}_plain AS SELECT id, city FROM {t}")
    assert _rows(conn, f"SUMMARIZE {t}_plain") == _rows(raw, f"SUMMARIZE {t}_plain")
    assert "masked" in _refused(conn, f"SUMMARIZE {t}")
    raw.execute(f"INSERT INTO {t}_plain VALUES (3, 'carol.b@example.com')")
    message = _refused(govern(raw), f"SUMMARIZE {t}_plain")
    assert "(city)" in message and "carol" not in message
