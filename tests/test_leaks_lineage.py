"""Lineage side doors found by the red team: VALUES cells, lost lineage over sensitive tables (positional and
aliased columns, table functions, LATERAL), oracles in LIMIT/CASE, error echoes and derived values — on
SQLite, PostgreSQL and DuckDB, with non-sensitive queries staying exact."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db import Identity

BOT = Identity("bot", kind="agent")
DDL = "(id int primary key, email text, phone text, ssn text, credit_card text, api_key text, full_name text)"
ROW = (
    1,
    "alice@example.com",
    "+1 415-555-0132",
    "536-22-8726",
    "4111 1111 1111 1111",
    "sk_live_51H8abcdEFGHijklMNOPqrstUVwx",
    "Alice Smith",
)
RAW_FORMS = [
    "536-22-8726",
    "6278-22-635",
    "alice@example.com",
    "moc.elpmaxe@ecila",
    "Alice Smith",
    "htimS ecilA",
    "sk_live_51H8abcdEFGHijklMNOPqrstUVwx",
    "4111 1111 1111 1111",
    "1111 1111 1111 1114",
]


def leaked(rows: Any) -> list[str]:
    text = repr(rows)
    return [f for f in RAW_FORMS if f in text]


def wrap(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=BOT, environment="production", audit=False)


def refused_rule(conn: Any, sql: str) -> list[str]:
    """The rules that refused ``sql`` (other guardrails may refuse it too), or [] when it ran."""
    try:
        conn.execute(sql).fetchall()
    except governed_db.GuardrailViolation as e:
        return list(e.decision.rules)
    return []


@pytest.fixture
def sq() -> Iterator[Any]:
    raw = sqlite3.connect(":memory:")
    raw.execute(f"CREATE TABLE customers {DDL}")
    raw.execute("INSERT INTO customers VALUES (?,?,?,?,?,?,?)", ROW)
    raw.execute("CREATE TABLE other (id int, note text)")
    raw.execute("CREATE TABLE items (id int, name text, price real)")
    raw.execute("INSERT INTO items VALUES (1, 'widget', 2.5)")
    raw.commit()
    yield wrap(raw)
    raw.close()


@pytest.fixture
def dk() -> Iterator[Any]:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute(f"CREATE TABLE customers {DDL}")
    raw.execute("INSERT INTO customers VALUES (?,?,?,?,?,?,?)", ROW)
    raw.execute("CREATE TABLE items (id int, name text, price double)")
    raw.execute("INSERT INTO items VALUES (1, 'widget', 2.5)")
    yield wrap(raw)
    raw.close()


@pytest.fixture
def pg(pg_dsn: str, pg_conn: Any, unique: str) -> Iterator[tuple[Any, str]]:
    import psycopg

    t = f"lin_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} {DDL}")
    pg_conn.execute(f"INSERT INTO {t} VALUES (%s,%s,%s,%s,%s,%s,%s)", ROW)
    pg_conn.execute(f"CREATE TABLE {t}_o (id int, note text)")
    pg_conn.execute(f"CREATE TABLE {t}_i (id int, name text, price numeric)")
    pg_conn.execute(f"INSERT INTO {t}_i VALUES (1, 'widget', 2.5)")
    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        yield wrap(raw), t
    finally:
        raw.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}, {t}_o, {t}_i")


VALUES_SQL = (
    "VALUES ((SELECT ssn FROM customers), (SELECT api_key FROM customers), (SELECT email FROM customers))"
)


def test_sqlite_values_scalar_subquery_is_masked(sq: Any) -> None:
    """A scalar subquery inside a VALUES row is traced like any subquery, not treated as a constant."""
    rows = sq.execute(VALUES_SQL).fetchall()
    assert leaked(rows) == [], rows


def test_sqlite_values_of_constants_stay_exact(sq: Any) -> None:
    """VALUES of literals and of non-sensitive subqueries come back exactly."""
    assert sq.execute("VALUES (1, 'x'), (2, (SELECT name FROM items))").fetchall() == [
        (1, "x"),
        (2, "widget"),
    ]


def test_sqlite_insert_values_subquery_is_a_copy(sq: Any) -> None:
    """INSERT ... VALUES ((SELECT ssn ...)) moves a masked value: refused as masked-column-copy."""
    rule = refused_rule(sq, "INSERT INTO other VALUES (1, (SELECT ssn FROM customers LIMIT 1))")
    assert "masked-column-copy" in rule


def test_duckdb_values_scalar_subquery_is_masked(dk: Any) -> None:
    """DuckDB: VALUES ((SELECT ssn ...)) is masked."""
    rows = dk.execute("VALUES ((SELECT ssn FROM customers))").fetchall()
    assert leaked(rows) == [], rows


def test_duckdb_positional_column_is_masked(dk: Any) -> None:
    """DuckDB `#4` cannot be traced to a column: over a table with sensitive columns it is masked whole."""
    rows = dk.execute("SELECT #4 FROM customers").fetchall()
    assert leaked(rows) == [], rows


def test_duckdb_positional_column_on_plain_table_is_exact(dk: Any) -> None:
    """Lost lineage over a table with nothing sensitive stays exact (no over-masking)."""
    assert dk.execute("SELECT #2 FROM items").fetchall() == [("widget",)]


def test_duckdb_relation_project_positional_is_masked(dk: Any) -> None:
    """relation.project('reverse(#2)') over a sensitive column does not come back raw or reversed."""
    try:
        rows = dk.sql("SELECT id, ssn FROM customers").project("reverse(#2)").fetchall()
    except governed_db.GuardrailViolation:
        return
    assert leaked(rows) == [], rows


def test_duckdb_cast_error_does_not_echo_value(dk: Any) -> None:
    """DuckDB `ssn::INT` conversion errors do not echo the SSN; the exception type is kept."""
    import duckdb

    with pytest.raises(duckdb.Error) as info:
        dk.execute("SELECT ssn::INT FROM customers").fetchall()
    assert "536-22-8726" not in str(info.value)


def test_sqlite_derived_boolean_is_null_not_wrong(sq: Any) -> None:
    """`length(email)` over a masked column is NULL, never a wrong 0; `full_name IS NOT NULL` of a plain column is
    exact (its NULL-ness shows in its masked output anyway, decision 0209), and over a computed value NULL."""
    row = sq.execute("SELECT full_name IS NOT NULL AS has_name, length(email) FROM customers").fetchone()
    assert row == (1, None)
    row = sq.execute("SELECT upper(full_name) IS NOT NULL FROM customers").fetchone()
    assert row == (None,)


def test_sqlite_case_condition_on_masked_column_is_refused(sq: Any) -> None:
    """CASE WHEN ssn LIKE ... in the select list is an oracle (1/0 errors): refused as a predicate."""
    rule = refused_rule(sq, "SELECT 1/(CASE WHEN ssn LIKE '5%' THEN 0 ELSE 1 END) FROM customers")
    assert "masked-column-predicate" in rule


def test_sqlite_limit_subquery_predicate_is_refused(sq: Any) -> None:
    """A masked predicate hidden in a LIMIT subquery is refused."""
    sql = "SELECT id FROM items LIMIT (SELECT count(*) FROM customers WHERE ssn LIKE '5%')"
    assert "masked-column-predicate" in refused_rule(sq, sql)


def test_sqlite_select_list_subquery_predicate_is_refused(sq: Any) -> None:
    """A masked predicate inside a select-list subquery is refused."""
    sql = "SELECT (SELECT count(*) FROM customers WHERE ssn LIKE '5%') FROM items"
    assert "masked-column-predicate" in refused_rule(sq, sql)


def test_sqlite_non_sensitive_stays_exact(sq: Any) -> None:
    """Queries touching nothing sensitive return exact values, including CASE and LIMIT subqueries."""
    assert sq.execute("SELECT id, name, price FROM items WHERE id = ?", (1,)).fetchall() == [
        (1, "widget", 2.5)
    ]
    assert sq.execute("SELECT CASE WHEN name LIKE 'w%' THEN 1 ELSE 0 END FROM items").fetchall() == [(1,)]
    assert sq.execute("SELECT id FROM items LIMIT (SELECT count(*) FROM items)").fetchall() == [(1,)]
    assert sq.execute("SELECT id, city_len FROM (SELECT id, 3 AS city_len FROM customers)").fetchall() == [
        (1, 3)
    ]


PG_LEAKS = [
    "VALUES ((SELECT ssn FROM {t}), (SELECT credit_card FROM {t}))",
    "SELECT reverse(v) FROM {t}, unnest(ARRAY[email, ssn, credit_card, full_name]) v",
    "SELECT reverse(x) FROM {t}, LATERAL (SELECT ssn AS x) l",
    "SELECT reverse(d), f FROM {t} AS s(a,b,c,d,e,f)",
    "SELECT j.key, j.value FROM {t} c, jsonb_each_text(to_jsonb(c)) j",
    "SELECT string_agg(x, '') FROM {t}, unnest(string_to_array(api_key, NULL)) x",
]


@pytest.mark.parametrize("sql", PG_LEAKS)
def test_postgres_lost_lineage_is_masked(pg: tuple[Any, str], sql: str) -> None:
    """PostgreSQL: table functions, LATERAL, alias column lists and VALUES do not return raw values."""
    conn, t = pg
    try:
        rows = conn.execute(sql.format(t=t)).fetchall()
    except governed_db.GuardrailViolation:
        return
    assert leaked(rows) == [], rows


PG_ORACLES = [
    ("SELECT i FROM {t} AS s(i,e,p,d) WHERE d LIKE '536%'", "masked-column-predicate"),
    ("SELECT 1 FROM {t}, LATERAL (SELECT ssn AS s) l WHERE s LIKE '5%'", "masked-column-predicate"),
    (
        "SELECT 1 FROM generate_series(1,10) LIMIT (SELECT count(*) FROM {t} WHERE ssn LIKE '5%')",
        "masked-column-predicate",
    ),
    ("SELECT 1 / (CASE WHEN ssn LIKE '5%' THEN 0 ELSE 1 END) FROM {t}", "masked-column-predicate"),
    ("INSERT INTO {t}_o VALUES (1, (SELECT ssn FROM {t} LIMIT 1))", "masked-column-copy"),
    (
        "UPDATE {t}_o o SET note = v.x FROM (VALUES ((SELECT full_name FROM {t}))) v(x) WHERE o.id = 1",
        "masked-column-copy",
    ),
]


@pytest.mark.parametrize(("sql", "rule"), PG_ORACLES)
def test_postgres_oracles_and_copies_are_refused(pg: tuple[Any, str], sql: str, rule: str) -> None:
    """PostgreSQL: predicates over renamed/lateral/LIMIT-subquery sources and VALUES copies are refused."""
    conn, t = pg
    assert rule in refused_rule(conn, sql.format(t=t))


def test_postgres_cast_error_does_not_echo_value(pg: tuple[Any, str], pg_conn: Any) -> None:
    """`full_name::int` (whose failure says what the value is) is refused before it runs, naming the column;
    a cast the analysis cannot see (in a view) fails without echoing the name."""
    import psycopg

    conn, t = pg
    with pytest.raises(psycopg.Error) as info:
        conn.execute(f"SELECT full_name::int FROM {t}").fetchall()
    assert "masked-column-predicate" in str(info.value) and "full_name" in str(info.value)
    assert "Alice" not in str(info.value)
    assert "Alice" not in repr(info.value.args)
    pg_conn.execute(f"CREATE VIEW {t}_j AS SELECT ('{{\"a\": ' || full_name || '}}')::jsonb AS full_name FROM {t}")
    try:
        with pytest.raises(psycopg.Error) as info2:
            conn.execute(f"SELECT * FROM {t}_j").fetchall()
        assert "Alice" not in str(info2.value)
        # since decision 0382 the view is judged as its definition: the cast may fail on the name, so it is refused
        # before it runs, naming the view
        assert isinstance(info2.value, governed_db.GuardrailViolation), info2.value
        assert f"in the definition of view {t}_j" in str(info2.value)
    finally:
        pg_conn.execute(f"DROP VIEW {t}_j")


def test_postgres_non_sensitive_stays_exact(pg: tuple[Any, str]) -> None:
    """PostgreSQL: non-sensitive table functions, aliases and VALUES come back exactly."""
    conn, t = pg
    assert conn.execute(f"SELECT n, x FROM {t}_i AS s(i, n, p), unnest(ARRAY[1, 2]) x").fetchall() == [
        ("widget", 1),
        ("widget", 2),
    ]
    assert conn.execute("VALUES (1, 'a')").fetchall() == [(1, "a")]
    assert conn.execute(f"SELECT reverse(name) FROM {t}_i").fetchall() == [("tegdiw",)]
    # constants from a table function next to a sensitive table are not "lost lineage"
    assert conn.execute(f"SELECT id, x FROM {t}, generate_series(1, 2) x").fetchall() == [(1, 1), (1, 2)]
    assert conn.execute(f"SELECT g.n FROM {t}, unnest(ARRAY[7]) AS g(n)").fetchall() == [(7,)]
    assert conn.execute(f"SELECT id, n FROM {t} CROSS JOIN LATERAL generate_series(1, id) n").fetchall() == [
        (1, 1)
    ]


def test_duckdb_cast_error_does_not_echo_name(dk: Any) -> None:
    """DuckDB conversion errors of a statement reading masked columns blank the quoted value (names too)."""
    import duckdb

    with pytest.raises(duckdb.Error) as info:
        dk.execute("SELECT full_name::INT FROM customers").fetchall()
    assert "Alice" not in str(info.value)
    assert "masked-column-predicate" in str(info.value)  # refused before the database could fail
    dk.__wrapped__.execute("CREATE VIEW name_as_int AS SELECT full_name::INT AS full_name FROM customers")
    with pytest.raises(duckdb.Error) as info2:
        dk.execute("SELECT * FROM name_as_int").fetchall()
    assert "Alice" not in str(info2.value)
    # since decision 0382 the view is judged as its definition: the cast may fail on the name, refused before it runs
    assert "in the definition of view name_as_int" in str(info2.value)


def test_duckdb_cast_error_of_plain_table_keeps_value(dk: Any) -> None:
    """A conversion error over a table with nothing masked keeps its detail (no over-scrubbing)."""
    import duckdb

    with pytest.raises(duckdb.ConversionException) as info:
        dk.execute("SELECT name::INT FROM items").fetchall()
    assert "widget" in str(info.value)


def test_sqlite_row_locators_stay_exact(sq: Any) -> None:
    """rowid is not data: it comes back exactly next to masked columns (no fail-closed over-masking)."""
    assert sq.execute("SELECT rowid, email FROM customers").fetchall() == [(1, "a***@example.com")]
    assert sq.execute("SELECT c.rowid FROM customers c").fetchall() == [(1,)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 / (length(ssn) - 11) FROM customers",
        "SELECT id % (unicode(substr(ssn, 1, 1)) - 53) FROM customers",
    ],
)
def test_sqlite_division_by_a_masked_value_is_refused(sq: Any, sql: str) -> None:
    """A divisor computed from a masked column errors exactly when it matches: refused as a predicate."""
    assert "masked-column-predicate" in refused_rule(sq, sql)


def test_sqlite_upsert_copies_are_refused_but_plain_upserts_run(sq: Any) -> None:
    """ON CONFLICT DO UPDATE SET x = (SELECT ssn ...) is a copy; excluded.x (the inserted value) is not."""
    with governed_db.acting_as(Identity("dba")):  # an agent's DDL needs approval (rule agent-ddl)
        sq.execute("CREATE UNIQUE INDEX other_id ON other (id)")
    bad = (
        "INSERT INTO other VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET note = (SELECT ssn FROM customers)"
    )
    assert "masked-column-copy" in refused_rule(sq, bad)
    ok = "INSERT INTO other VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET note = excluded.note"
    sq.execute(ok)
    sq.execute(ok)
    assert sq.execute("SELECT id, note FROM other").fetchall() == [(1, "x")]


def test_postgres_merge_copies_and_join_predicates_are_refused(pg: tuple[Any, str]) -> None:
    """MERGE: assigning a masked column is a copy, and joining ON it is a predicate."""
    conn, t = pg
    copy = (
        f"MERGE INTO {t}_o o USING {t} c ON o.id = c.id "
        "WHEN MATCHED THEN UPDATE SET note = c.ssn WHEN NOT MATCHED THEN INSERT (id, note) VALUES (c.id, c.email)"
    )
    assert "masked-column-copy" in refused_rule(conn, copy)
    oracle = f"MERGE INTO {t}_o o USING {t} c ON c.ssn LIKE '5%' WHEN MATCHED THEN DELETE"
    assert "masked-column-predicate" in refused_rule(conn, oracle)


DUCK_STARS = [
    ("SELECT * REPLACE (reverse(email) AS email) FROM customers", None),
    ("SELECT c.* EXCLUDE (id) REPLACE (reverse(full_name) AS full_name) FROM customers c", None),
    ("SELECT reverse(COLUMNS('full.*')) FROM customers", None),
    ("SELECT id, reverse(COLUMNS(* EXCLUDE (id))) FROM customers", None),
    ("SELECT COLUMNS(*) FROM customers", (1, "a***@example.com")),
    ("SELECT * RENAME (email AS contact) FROM customers", (1, "a***@example.com")),
]


@pytest.mark.parametrize(("sql", "head"), DUCK_STARS)
def test_duckdb_star_modifiers_and_columns_are_traced(
    dk: Any, sql: str, head: tuple[Any, ...] | None
) -> None:
    """DuckDB * REPLACE/EXCLUDE/RENAME and COLUMNS(...) are traced: no reversed value, plain columns exact."""
    rows = dk.execute(sql).fetchall()
    assert leaked(rows) == [] and "ecila" not in repr(rows), rows
    if head is not None:
        assert rows[0][:2] == head


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT abs(-9223372036854775807 - (ssn LIKE '5%')) FROM customers",
        "SELECT count(nullif(ssn, '536-22-8726')) FROM customers",
        "SELECT sum(substr(ssn, 1, 1) = '5') FROM customers",
        "SELECT count(*) FILTER (WHERE ssn LIKE '5%') FROM customers",
        "SELECT coalesce(nullif(greatest(ssn, '5'), '5'), 'x') FROM customers",
        "SELECT (unicode(ssn) - 53) * 4611686018427387904 FROM customers",
        "SELECT length(full_name) + 9223372036854775800 FROM customers",
    ],
)
def test_sqlite_nested_comparisons_of_masked_columns_are_refused(sq: Any, sql: str) -> None:
    """A comparison or arithmetic over a masked column (overflow, count, nullif oracles) is a predicate."""
    assert "masked-column-predicate" in refused_rule(sq, sql)


def test_sqlite_counts_over_values_are_not_constants(sq: Any) -> None:
    """count(f(masked)) depends on the values: masked (NULL); count(*) and count(col) stay exact; count(DISTINCT
    masked) says which values are equal: refused."""
    row = sq.execute("SELECT count(*), count(ssn), count(upper(ssn)) FROM customers").fetchone()
    assert row == (1, 1, None)
    assert "masked-column-predicate" in refused_rule(sq, "SELECT count(DISTINCT email) FROM customers")


def test_sqlite_comparisons_over_plain_columns_stay_exact(sq: Any) -> None:
    """Comparisons over non-sensitive columns anywhere keep working."""
    assert sq.execute("SELECT count(nullif(name, 'x')), abs(1 - (price > 1)) FROM items").fetchone() == (1, 0)


DUCK_EMBEDDED = [
    ("SELECT * FROM query('SELECT ssn FROM customers')", [("[US_SSN]",)]),
    ("SELECT reverse(full_name) FROM query_table('customers')", [("[PERSON_NAME]",)]),
    ("SELECT * FROM query('SELECT name FROM items')", [("widget",)]),
]


@pytest.mark.parametrize(("sql", "expected"), DUCK_EMBEDDED)
def test_duckdb_sql_in_strings_is_traced(dk: Any, sql: str, expected: list[tuple[Any, ...]]) -> None:
    """DuckDB query('...')/query_table('t') are traced like subqueries; SQL built at run time is masked."""
    assert dk.execute(sql).fetchall() == expected


def test_duckdb_sql_built_at_run_time_is_refused(dk: Any) -> None:
    """query() of SQL built at run time could read anything (files, secrets): refused (function-dynamic-sql)."""
    assert "function-dynamic-sql" in refused_rule(dk, "SELECT * FROM query('SELECT ' || 'ssn FROM customers')")


def test_duckdb_predicate_on_embedded_query_is_refused(dk: Any) -> None:
    """Filtering on a masked column that came out of query('...') is refused."""
    sql = "SELECT 1 FROM query('SELECT ssn FROM customers') q WHERE ssn LIKE '5%'"
    assert "masked-column-predicate" in refused_rule(dk, sql)


def test_mariadb_show_warnings_does_not_echo_values(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str
) -> None:
    """SHOW WARNINGS after a conversion of a masked column blanks the quoted value (names included)."""
    import pymysql

    t = f"warn_{unique}"
    with mysql_conn.cursor() as admin:
        admin.execute(f"CREATE TABLE {t} (id int, full_name text)")
        admin.execute(f"INSERT INTO {t} VALUES (1, 'Alice Smith')")
    raw = pymysql.connect(**mysql_kw)
    try:
        admin = mysql_conn.cursor()
        admin.execute(f"CREATE VIEW {t}_v AS SELECT CAST(full_name AS DOUBLE) AS d FROM {t}")
        cur = wrap(raw).cursor()
        # the cast itself is refused (whether it warns says what the value is), and since decision 0382 so is a
        # view computing it (judged as its definition)
        with pytest.raises(pymysql.err.ProgrammingError, match="masked-column-predicate"):
            cur.execute(f"SELECT CAST(full_name AS DOUBLE) FROM {t}")
        with pytest.raises(pymysql.err.ProgrammingError, match=f"in the definition of view {t}_v"):
            cur.execute(f"SELECT d FROM {t}_v")
        cur.execute("SHOW WARNINGS")
        messages = [row[2] for row in cur.fetchall()]
        assert not any("Alice" in m for m in messages), messages
    finally:
        raw.close()
        with mysql_conn.cursor() as admin:
            admin.execute(f"DROP VIEW IF EXISTS {t}_v")
            admin.execute(f"DROP TABLE IF EXISTS {t}")
