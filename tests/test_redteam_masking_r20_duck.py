"""Red-team round 20 on DuckDB: databases that differ only in one customer's secrets, read by an agent without grant.

Finding (decision 0390): DuckDB's memory and storage measures were readable. ``duckdb_memory()`` counts the bytes
each kind of storage holds: with a UNIQUE index on ``ssn``, the ART needed a wider node when the stored SSN
shared ``219-45-10`` with the others (``ART_INDEX`` 1.5 MiB against 1.25 MiB), and a long masked name added a
block of ``OVERFLOW_STRINGS``; ``pragma_database_size()`` (``PRAGMA database_size``) sums the same memory. They are
refused now for an identity with masked columns, as PostgreSQL's size functions are (decisions 0213, 0244).

Finding (decision 0391): DuckDB expands a macro where it is called, on the raw rows. With ``CREATE MACRO sm(x) AS
(SELECT ssn FROM customers WHERE id = x)`` made by the application, ``SELECT sm(1)`` returned ``100-99-0000`` in
clear and ``sm(1) LIKE '5%'`` told the copies apart; a table macro over ``customers`` returned its rows with names
in clear and let ``WHERE ssn LIKE '5%'`` count. A call of a macro whose definition reads a table with masked
columns is refused (temporary macros of the wrapped connection resolved by its ``get_table_names``).

The rest of the round (list and map functions, struct comparisons, UNION BY NAME, column alias lists, generated
columns, constraints, the relational API's compositions) told the copies apart through no statement; those
attempts are kept as regressions, beside look-alikes that must answer exactly as the raw connection does.
"""

from __future__ import annotations

from typing import Any

import pytest

import governed_db
from tests._redteam import govern
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import (
    ALICE,
    ANNA,
    CUSTOMERS,
    OTHERS,
    _duck,
    _duck_observe,
    _no_clear_value,
)
from tests.test_redteam_masking_r19_duck import _runs

duckdb = pytest.importorskip("duckdb")

#: row 1 of each copy: SSNs that differ in their eighth character only (one shares ``219-45-10`` with the others)
SECRETS = (
    (1, "Alice Smith", "alice@example.com", "219-45-1006", "+1 415-555-2671", "Paris", 10.0),
    (1, "Alice Smith", "alice@example.com", "219-45-1706", "+1 415-555-2671", "Paris", 10.0),
)
LONG = (1, "Alice " + "Smith-Jones " * 400, "alice@example.com", "536-22-8726", "+1 415-555-2671", "Paris", 10.0)
DBA = governed_db.Identity("dana", kind="human", roles=["dba"])


def _indexed(secret: tuple[Any, ...]) -> Any:
    """An in-memory database whose customers have a UNIQUE index on ``ssn``, row 1 holding ``secret``."""
    raw = duckdb.connect(":memory:")
    raw.execute(CUSTOMERS.replace("REAL", "DOUBLE").replace("ssn TEXT", "ssn TEXT UNIQUE"))
    raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", [list(secret), *map(list, OTHERS)])
    return raw


def _seen(sql: str, secrets: tuple[tuple[Any, ...], ...], governed: bool, **options: Any) -> list[Any]:
    out = []
    identity = options.pop("identity", ATTACKER)
    for secret in secrets:
        raw = _indexed(secret)
        conn = govern(raw, identity, **options) if governed else raw
        out.append(_duck_observe(conn, sql))
        conn.close()
    return out


# -- finding: memory and storage measures (decision 0390) -------------------------------------------------------

MEASURES = [
    "SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'ART_INDEX'",
    "SELECT sum(memory_usage_bytes) FROM duckdb_memory()",
    "FROM duckdb_memory()",
    "SELECT * FROM system.main.duckdb_memory()",
    "SELECT memory_usage FROM pragma_database_size()",
    "PRAGMA database_size",
    "pragma Database_Size",
]


@pytest.mark.parametrize("sql", MEASURES)
def test_memory_measures_tell_nothing_of_an_indexed_masked_value(sql: str) -> None:
    """Found in round 20: the ART index on ``ssn`` grows a wider node when the stored SSN shares ``219-45-10`` with
    the other rows' SSNs, and ``duckdb_memory()`` reported 1.5 MiB of index against 1.25 MiB: a guess of a
    prefix, checked. Refused for an identity with masked columns (decision 0390)."""
    raw = _seen(sql, SECRETS, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _seen(sql, SECRETS, governed=True)
    assert a == b, (a, b)
    assert str(a).startswith("refused") and "masked-column-predicate" in str(a), a
    assert "duckdb_memory()" in str(a) or "pragma_database_size()" in str(a), a


def test_memory_measures_tell_nothing_of_a_masked_values_length() -> None:
    """A masked name thousands of characters long adds a block of ``OVERFLOW_STRINGS``; refused as the index's
    measure is."""
    sql = "SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0 ORDER BY tag"
    raw = _seen(sql, (SECRETS[0], LONG), governed=False)
    assert raw[0] != raw[1], raw
    a, b = _seen(sql, (SECRETS[0], LONG), governed=True)
    assert a == b and str(a).startswith("refused"), (a, b)


def test_the_relational_api_reads_the_measures_through_the_same_gate() -> None:
    """``conn.sql(...)`` and ``conn.table_function('duckdb_memory')`` are judged as the statements they are."""
    seen = []
    for secret in SECRETS:
        conn = govern(_indexed(secret), ATTACKER)
        row = []
        for read in (lambda c: c.sql("FROM duckdb_memory()").fetchall(),
                     lambda c: c.table_function("duckdb_memory").fetchall(),
                     lambda c: c.table_function("pragma_database_size").df().to_dict()):
            try:
                row.append(repr(read(conn)))
            except governed_db.GuardrailViolation as e:
                row.append(f"refused: {e}")
        conn.close()
        seen.append(row)
    assert seen[0] == seen[1], seen
    assert all(x.startswith("refused") and "masked-column" in x for x in seen[0]), seen


def test_temporary_files_are_a_measure_too() -> None:
    """``duckdb_temporary_files()`` lists the bytes a sort or a join spilled, which grow with the values carried."""
    a, b = _seen("SELECT * FROM duckdb_temporary_files()", SECRETS, governed=True)
    assert a == b and str(a).startswith("refused") and "duckdb_temporary_files()" in str(a), a


#: innocent reads of DuckDB's catalog: exact, as the raw connection answers
MEASURE_LOOK_ALIKES = [
    "SELECT table_name, estimated_size, column_count FROM duckdb_tables()",
    "SELECT database_name, readonly FROM duckdb_databases() ORDER BY ALL",
    "SELECT value FROM duckdb_settings() WHERE name = 'threads'",
    "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'customers' ORDER BY column_index",
    "SELECT index_name, is_unique FROM duckdb_indexes()",
]


@pytest.mark.parametrize("sql", MEASURE_LOOK_ALIKES)
def test_catalog_look_alikes_answer_as_raw(sql: str) -> None:
    raw = _seen(sql, SECRETS, governed=False)
    gov = _seen(sql, SECRETS, governed=True)
    assert gov == raw and not str(gov[0]).startswith("refused"), (gov, raw)


def test_an_unmask_grant_reads_the_measures() -> None:
    """An identity that sees every value keeps reading memory (nothing it could learn is hidden from it)."""
    sql = "SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'ART_INDEX'"
    raw = _seen(sql, SECRETS, governed=False)
    gov = _seen(sql, SECRETS, governed=True, identity=DBA, masking={"unmask": [{"role": "dba"}]})
    assert gov == raw, (gov, raw)


# -- finding: a macro's body runs on the raw rows (decision 0391) ------------------------------------------------

#: macros the application created (through a raw connection, as a migration would)
MACROS = (
    "CREATE MACRO gdb_r20duck_tm() AS TABLE SELECT * FROM customers",
    "CREATE MACRO gdb_r20duck_sm(x) AS (SELECT ssn FROM customers WHERE id = x)",
    "CREATE MACRO gdb_r20duck_outer(x) AS upper(gdb_r20duck_sm(x))",
    "CREATE MACRO gdb_r20duck_ptm(p) AS TABLE SELECT id FROM customers WHERE ssn LIKE p",
    "CREATE MACRO gdb_r20duck_dyn() AS TABLE SELECT * FROM query_table('custo' || 'mers')",
    "CREATE MACRO gdb_r20duck_twice(x) AS x * 2",
    "CREATE MACRO gdb_r20duck_cities() AS TABLE SELECT id, city, amount FROM customers",
    "CREATE TABLE gdb_r20duck_clear (id INT, label VARCHAR)",
    "INSERT INTO gdb_r20duck_clear VALUES (1, 'one'), (2, 'two')",
    "CREATE MACRO gdb_r20duck_label(x) AS (SELECT label FROM gdb_r20duck_clear WHERE id = x)",
    "CREATE VIEW gdb_r20duck_v AS SELECT gdb_r20duck_sm(1) AS s",
    "CREATE VIEW gdb_r20duck_vt AS SELECT * FROM gdb_r20duck_tm()",
)
MACRO_CALLS = [
    "SELECT gdb_r20duck_sm(1)",
    "SELECT gdb_r20duck_sm(1) LIKE '5%'",
    "SELECT count(*) FROM customers WHERE id = 2 AND gdb_r20duck_sm(1) >= '5'",
    "SELECT count(*) FROM gdb_r20duck_tm() WHERE ssn LIKE '5%'",
    "SELECT * FROM gdb_r20duck_tm() WHERE id = 1",
    "SELECT gdb_r20duck_outer(1)",
    "SELECT count(*) FROM gdb_r20duck_ptm('5%')",
    "SELECT count(*) FROM gdb_r20duck_dyn() WHERE ssn LIKE '5%'",
    "SELECT s FROM gdb_r20duck_v",
    "SELECT memory.main.gdb_r20duck_sm(1)",
    "SELECT * FROM gdb_r20duck_vt WHERE id = 1",
    "SUMMARIZE SELECT * FROM gdb_r20duck_tm()",
    "SUMMARIZE gdb_r20duck_vt",
    'SELECT "GDB_R20DUCK_SM"(1)',
    "SELECT (1).gdb_r20duck_sm()",
    "WITH q AS (SELECT gdb_r20duck_sm(1) AS s) SELECT s FROM q",
    "SELECT count(*) FROM main.gdb_r20duck_tm() t WHERE t.ssn LIKE '5%'",
    "SELECT id FROM customers WHERE id = 1 AND EXISTS (SELECT 1 FROM gdb_r20duck_tm() t WHERE t.ssn LIKE '5%')",
    "SELECT count(*) FROM gdb_r20duck_v WHERE s LIKE '5%'",
]


@pytest.mark.parametrize("sql", MACRO_CALLS)
def test_a_macro_over_a_masked_table_is_refused(sql: str) -> None:
    """Found in round 20: DuckDB expands a macro where it is called, and its body reads the raw rows; analysis
    saw a function of unknown behaviour over a constant. ``SELECT m(1)`` over ``(SELECT ssn FROM customers WHERE id
    = x)`` returned ``100-99-0000`` in clear (no scan recognises it), ``m(1) LIKE '5%'`` and a table macro's
    ``WHERE ssn LIKE '5%'`` decided by the SSN; so did a macro calling it, one whose parameter is the pattern, one
    running ``query_table`` and a view over a call of it. A call of a macro whose definition names a table with
    masked columns is refused (decision 0391)."""
    raw = _runs((sql,), governed=False, setup=MACROS)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs((sql,), governed=True, setup=MACROS)
    assert a == b, (a, b)
    _no_clear_value(a)
    assert str(a[0]).startswith("refused"), a


def test_a_macro_through_the_relational_api_is_refused() -> None:
    """``conn.sql`` and ``conn.table_function`` are judged as the statements they amount to."""
    def read(conn: Any) -> list[str]:
        out = []
        for make in (lambda: conn.sql("SELECT gdb_r20duck_sm(1) AS s").fetchall(),
                     lambda: conn.table_function("gdb_r20duck_tm").filter("id = 1").fetchall(),
                     lambda: conn.table_function("gdb_r20duck_ptm", ["5%"]).fetchall()):
            try:
                out.append(repr(make()))
            except governed_db.GuardrailViolation as e:
                out.append(f"refused: {e}")
        return out

    seen = []
    for secret in (ALICE, ANNA):
        raw = _duck(secret)
        for sql in MACROS:
            raw.execute(sql)
        raw_seen = repr([raw.sql("SELECT gdb_r20duck_sm(1)").fetchall(), raw.sql("FROM gdb_r20duck_ptm('5%')").fetchall()])
        conn = govern(raw, ATTACKER)
        seen.append((raw_seen, read(conn)))
        conn.close()
    assert seen[0][0] != seen[1][0], seen  # the oracle, unprotected
    assert seen[0][1] == seen[1][1] and all(x.startswith("refused") for x in seen[0][1]), seen


TEMPORARY = (
    "CREATE TEMP MACRO gdb_r20duck_tmp() AS (SELECT ssn FROM customers WHERE id = 1)",
    "CREATE TEMP MACRO gdb_r20duck_tmp2(x) AS (SELECT ssn FROM customers WHERE id = x)",
    "CREATE TEMP MACRO gdb_r20duck_ttm() AS TABLE SELECT * FROM customers",
    "CREATE TEMP MACRO gdb_r20duck_tpure(x) AS x * 2",
)


@pytest.mark.parametrize("sql", [
    "SELECT gdb_r20duck_tmp() LIKE '5%'",
    "SELECT gdb_r20duck_tmp2(1)",
    "SELECT count(*) FROM customers WHERE id = 2 AND gdb_r20duck_tmp2(1) LIKE '5%'",
    "SELECT count(*) FROM gdb_r20duck_ttm() WHERE ssn LIKE '5%'",
    "SELECT (1).gdb_r20duck_tmp2()",
])
def test_a_temporary_macro_made_on_the_raw_connection_before_wrap(sql: str) -> None:
    """DuckDB's ``cursor()`` is another connection, which does not see a temporary macro of the wrapped one, and
    masking reads its catalog through one: a TEMP MACRO the application made on the raw connection before
    ``wrap()`` was a function of unknown behaviour. A function neither DuckDB's nor a listed macro is resolved by
    the wrapped connection's ``get_table_names`` (which binds macros without running anything), its arguments
    NULL; one that cannot be resolved is refused (decision 0391)."""
    raw = _runs((sql,), governed=False, setup=TEMPORARY)
    assert raw[0] != raw[1], raw
    a, b = _runs((sql,), governed=True, setup=TEMPORARY)
    assert a == b, (a, b)
    _no_clear_value(a)
    assert str(a[0]).startswith("refused"), a


def test_a_pure_temporary_macro_and_a_python_function_run() -> None:
    """Look-alikes: a temporary macro reading no table, and a Python function, over clear columns."""
    sql = "SELECT gdb_r20duck_tpure(amount), gdb_r20duck_py(city) FROM customers ORDER BY id"
    seen = []
    for governed in (False, True):
        for secret in (ALICE, ANNA):
            raw = _duck(secret)
            for step in TEMPORARY:
                raw.execute(step)
            raw.create_function("gdb_r20duck_py", lambda s: (s or "")[:2], ["VARCHAR"], "VARCHAR")
            conn = govern(raw, ATTACKER) if governed else raw
            seen.append(_duck_observe(conn, sql))
            conn.close()
    assert seen[2:] == seen[:2] and not str(seen[2]).startswith("refused"), seen


#: calls of macros that read no masked column: exact, as the raw connection answers
MACRO_LOOK_ALIKES = [
    "SELECT gdb_r20duck_twice(amount) FROM customers ORDER BY id",
    # over-refusal left open: a table macro reading only clear columns of a table with masked ones is refused,
    # since masking judges a macro by the tables its definition names, not by expanding it as a view (0391)
    pytest.param("SELECT id, city FROM gdb_r20duck_cities() WHERE city = 'Paris' ORDER BY id",
                 marks=pytest.mark.xfail(strict=True, reason="a macro is judged by the tables it names")),
    "SELECT gdb_r20duck_label(2), gdb_r20duck_twice(21)",
    "SELECT c.id, gdb_r20duck_label(c.id) FROM customers c ORDER BY c.id",
]


@pytest.mark.parametrize("sql", MACRO_LOOK_ALIKES)
def test_macro_look_alikes_answer_as_raw(sql: str) -> None:
    raw = _runs((sql,), governed=False, setup=MACROS)
    gov = _runs((sql,), governed=True, setup=MACROS)
    assert gov == raw and not str(gov[0]).startswith(("['refused", '["refused')), (gov, raw)


def test_a_macro_over_a_masked_table_runs_for_an_unmask_grant() -> None:
    sql = "SELECT gdb_r20duck_sm(1), count(*) FROM gdb_r20duck_tm()"
    raw = _runs((sql,), governed=False, setup=MACROS)
    gov = []
    for secret in (ALICE, ANNA):
        conn = _duck(secret)
        for step in MACROS:
            conn.execute(step)
        conn = govern(conn, DBA, masking={"unmask": [{"role": "dba"}]})
        gov.append([_duck_observe(conn, sql)])
        conn.close()
    assert gov == raw, (gov, raw)


# -- the rest of the round: attempts that told nothing, kept as regressions --------------------------------------

W = "FROM customers WHERE id = 1"
GEN = ("CREATE TABLE gdb_r20duck_g (id INT, ssn VARCHAR, region VARCHAR GENERATED ALWAYS AS (left(ssn, 3)) VIRTUAL, "
       "flag BOOLEAN AS (ssn LIKE '5%'))", "INSERT INTO gdb_r20duck_g (id, ssn) SELECT id, ssn FROM customers")
UQ = ("CREATE TABLE gdb_r20duck_u (id INT PRIMARY KEY, ssn VARCHAR UNIQUE, city VARCHAR)",
      "INSERT INTO gdb_r20duck_u SELECT id, ssn, city FROM customers")
CK = ("CREATE TABLE gdb_r20duck_k (id INT PRIMARY KEY, ssn VARCHAR, city VARCHAR, CHECK (city <> ssn))",
      "INSERT INTO gdb_r20duck_k SELECT id, ssn, city FROM customers")
FK = ("CREATE TABLE gdb_r20duck_p (ssn VARCHAR PRIMARY KEY, n INT)", "INSERT INTO gdb_r20duck_p SELECT ssn, id FROM customers",
      "CREATE TABLE gdb_r20duck_c (k VARCHAR REFERENCES gdb_r20duck_p(ssn))")
BY_NAME = "SELECT 'x' AS b, 'y' AS a UNION ALL BY NAME SELECT city AS a, ssn AS b FROM customers"
ATTEMPTS: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("SELECT min({'s': ssn, 'i': id}).i FROM customers",), ()),
    (("SELECT max([ssn, id::VARCHAR])[2] FROM customers",), ()),
    (("SELECT min((ssn, id)) FROM customers",), ()),
    (("SELECT list_intersect(list(ssn), ['536-22-8726']) FROM customers",), ()),
    (("SELECT list_has_any(list(ssn), ['536-22-8726']) FROM customers",), ()),
    (("SELECT list_position(list(ssn), '536-22-8726') FROM customers",), ()),
    (("SELECT list_grade_up(list(ssn)) FROM customers",), ()),
    (("SELECT map_from_entries(list((ssn, id))) FROM customers",), ()),
    (("SELECT histogram(left(ssn, 1))['5'] FROM customers",), ()),
    (("SELECT element_at(histogram(ssn), '536-22-8726') FROM customers",), ()),
    (("SELECT count(NULLIF(ssn, '536-22-8726')) FROM customers",), ()),
    (("SELECT list_aggr(list(ssn), 'min') FROM customers",), ()),
    ((f"SELECT array_length(list_distinct([ssn, '536-22-8726'])) {W}",), ()),
    ((f"SELECT len(str_split_regex(ssn, '5')) {W}",), ()),
    ((f"SELECT cardinality(map_from_entries([(ssn, 1), ('536-22-8726', 2)])) {W}",), ()),
    ((f"SELECT 'abcdefghij'[ascii(ssn) - 48] {W}",), ()),
    ((f"SELECT ssn::UUID {W}",), ()),
    (("SELECT count(*) FROM customers c WHERE to_json(c)::VARCHAR LIKE '%536%'",), ()),
    (("SELECT count(*) FROM customers AS c(a, b, cc, d) WHERE d LIKE '5%'",), ()),
    (("SELECT count(*) FROM customers AS c(a, b, cc, city) WHERE city LIKE '5%'",), ()),
    (("SELECT count(*) FROM (SELECT * RENAME (ssn AS city, city AS ssn) FROM customers) WHERE city LIKE '5%'",), ()),
    (("SELECT count(*) FROM (SELECT * LIKE 'ss%' FROM customers) WHERE ssn LIKE '5%'",), ()),
    (("SELECT count(*) FROM customers NATURAL JOIN (SELECT '536-22-8726' AS ssn)",), ()),
    (("SELECT count(*) FROM customers SEMI JOIN (SELECT '536-22-8726' AS ssn) USING (ssn)",), ()),
    ((f"SELECT count(*) FROM ({BY_NAME}) WHERE b LIKE '5%'",), ()),
    ((f"SELECT b FROM ({BY_NAME}) ORDER BY b",), ()),
    (("FROM customers SELECT count(*) WHERE \"SSN\" LIKE '5%'",), ()),
    (("SELECT ssn AS x, x LIKE '5%' FROM customers WHERE id = 1",), ()),
    (("SELECT count(*) FROM gdb_r20duck_g WHERE region = '536'",), GEN),
    (("SELECT region, flag FROM gdb_r20duck_g WHERE id = 1",), GEN),
    (("INSERT INTO gdb_r20duck_u VALUES (9, '536-22-8726', 'x')",), UQ),
    (("INSERT INTO gdb_r20duck_u VALUES (9, '536-22-8726', 'x') ON CONFLICT (ssn) DO UPDATE SET city = 'hit'",
      "SELECT count(*) FROM gdb_r20duck_u WHERE city = 'hit'"), UQ),
    (("UPDATE gdb_r20duck_k SET city = '536-22-8726' WHERE id = 1",), CK),
    (("INSERT INTO gdb_r20duck_c VALUES ('536-22-8726')",), FK),
    (("PREPARE p AS SELECT count(*) FROM customers WHERE ssn LIKE ?", "EXECUTE p('5%')"), ()),
]


@pytest.mark.parametrize(("steps", "setup"), ATTEMPTS, ids=lambda s: str(s)[:60])
def test_attempts_are_answered_alike(steps: tuple[str, ...], setup: tuple[str, ...]) -> None:
    raw = _runs(steps, governed=False, setup=setup)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs(steps, governed=True, setup=setup)
    assert a == b, (a, b)
    _no_clear_value(a)


def _relational(read: Any) -> list[Any]:
    out = []
    for secret in (ALICE, ANNA):
        conn = govern(_duck(secret), ATTACKER)
        try:
            out.append(repr(read(conn)))
        except governed_db.GuardrailViolation as e:
            out.append(f"refused: {e}")
        except Exception as e:
            out.append(type(e).__name__)
        conn.close()
    return out


E = duckdb.SQLExpression
C = duckdb.ColumnExpression
RELATIONAL = {
    "query over a table": lambda c: c.table("customers").query("v", "SELECT count(*) FROM v WHERE ssn LIKE '5%'"),
    "query over a projection": lambda c: c.table("customers").project("ssn AS x")
    .query("v", "SELECT count(*) FROM v WHERE x LIKE '5%'").fetchall(),
    "filter on a swapped name": lambda c: c.table("customers").project("city AS ssn, ssn AS city")
    .filter("city LIKE '5%'").count("*").fetchall(),
    "sort by an expression": lambda c: c.table("customers").sort(C("ssn").desc()).limit(1).project("id").fetchall(),
    "semi join": lambda c: c.table("customers").join(c.sql("SELECT '536-22-8726' AS ssn"), "ssn", how="semi")
    .count("*").fetchall(),
    "n_tile over the value": lambda c: c.table("customers").n_tile("over (order by ssn)", 2).fetchall(),
    "update by condition": lambda c: c.table("customers").update({"city": C("ssn")}, condition=E("id = 1")),
    "describe a piece": lambda c: c.table("customers").project("left(ssn, 1) AS d").describe().fetchall(),
}


@pytest.mark.parametrize("name", RELATIONAL)
def test_relational_attempts_are_answered_alike(name: str) -> None:
    a, b = _relational(RELATIONAL[name])
    assert a == b, (a, b)
    _no_clear_value(a)


# -- seen on the way, left open: PostgreSQL's functions are DuckDB's macros --------------------------------------


def test_a_postgres_function_over_a_masked_table(pg_conn: Any, unique: str) -> None:
    """A SQL function the application created, ``f(int) AS 'SELECT ssn FROM t WHERE id = $1'``, ran its body on the
    raw rows; ``SELECT f(1)`` returned ``100-99-0000`` in clear and ``f(1) LIKE '5%'`` told the copies apart, as
    DuckDB's macros did before decision 0391 (found by this round; refused since decision 0385)."""
    import psycopg

    from tests.conftest import PG_DSN

    seen = []
    try:
        for v, ssn in (("a", "536-22-8726"), ("b", "100-99-0000")):
            t, f = f"gdb_r20duck_{unique}{v}", f"gdb_r20duck_f{unique}{v}"
            pg_conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, ssn text, city text)")
            pg_conn.execute(f"INSERT INTO {t} VALUES (1, 'Alice', %s, 'Paris'), (2, 'Bob', '219-45-1002', 'Lyon')",
                            (ssn,))
            pg_conn.execute(f"CREATE FUNCTION {f}(int) RETURNS text LANGUAGE sql STABLE "
                            f"AS 'SELECT ssn FROM {t} WHERE id = $1'")
            gov = govern(psycopg.connect(PG_DSN, autocommit=True), ATTACKER)
            try:
                seen.append([repr(_observe(gov, f"SELECT {f}(1)")).replace(f, "F").replace(t, "T"),
                             repr(_observe(gov, f"SELECT {f}(1) LIKE '5%'")).replace(f, "F").replace(t, "T")])
            finally:
                gov.close()
    finally:
        for v in "ab":
            pg_conn.execute(f"DROP FUNCTION IF EXISTS gdb_r20duck_f{unique}{v}(int)")
            pg_conn.execute(f"DROP TABLE IF EXISTS gdb_r20duck_{unique}{v}")
    assert seen[0] == seen[1], seen
    _no_clear_value(seen)


def _observe(conn: Any, sql: str) -> Any:
    from tests._redteam import observe

    return observe(conn, sql)
