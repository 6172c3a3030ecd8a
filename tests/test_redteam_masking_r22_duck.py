"""Red-team round 22 on DuckDB: databases that differ only in one customer's secrets, read by an agent without grant.

Finding (decision 0419): DuckDB's built-in table macros ``histogram(t, col)`` and ``histogram_values(t, col)``
count the rows of ``t`` by the values (or bins) of ``col``, which they read through ``query_table()`` inside the
macro's body. Analysis saw a table function of two column names, read no table, and masked the output by scanning
it: ``SELECT * FROM histogram_values(customers, ssn)`` returned ``100-99-0000`` in clear (a value no recognizer
takes for an SSN), ``histogram_values(customers, length(full_name))`` told the name's length, and ``WHERE bin LIKE
'5%'`` counted a guess. Each call is now read as the grouping it runs, ``(SELECT col AS bin, count(*) AS count FROM
t GROUP BY col, <bin_count>, <technique>)``: a masked column there is refused (rule ``masked-column-predicate``)
and a clear one answers as the raw connection does.

Finding (decision 0420): with logging on (``CALL enable_logging()``, by the application), ``duckdb_logs`` held the
application's SQL as written (``... WHERE ssn = '536-22-8726'``) and, at debug level, operator events over the masked
values; the agent read it. So did ``duckdb_prepared_statements()`` (the application's prepared statements with
their literals) and ``duckdb_variables()`` (the values of its variables). All three are now statistics catalogs
(rule ``system-catalog``); ``getvariable()``, left open in round 22, is refused to an identity with masked columns
(``masked-column-predicate``).

The rest of the round (lambdas and list comprehensions, map_from_entries, struct_pack, recursive unnest,
UNPIVOT, SAMPLE with seeds, SUMMARIZE and DESCRIBE of a query, approx_count_distinct, reservoir_quantile,
bit_and, bitstring_agg, ordered string_agg, min_by/max_by with n, regexp_extract_all, enums made from a query,
temporary tables, macros, views and sequences, catalog-qualified names after USE, nested comments, E'' and
dollar-quoted strings, the relational API's composition and outputs, ``duckdb_table_sample``, ``summary()``,
``repeat_row``, ``json_each``/``json_tree``, ``json_execute_serialized_sql``...) told the copies apart through no
statement; a selection is kept as regressions.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests._redteam import govern
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, ANNA, _duck, _duck_observe, _no_clear_value
from tests.test_redteam_masking_r19_duck import _runs

pytest.importorskip("duckdb")

# -- finding: histogram()/histogram_values() group a table by a masked column (decision 0419) ------------------

HISTOGRAMS = [
    "SELECT * FROM histogram_values(customers, ssn)",
    "SELECT * FROM histogram(customers, ssn)",
    "SELECT * FROM histogram(customers, left(ssn, 1))",
    "SELECT * FROM histogram_values(customers, length(full_name))",
    "SELECT * FROM histogram_values('customers', length(full_name)) AS h",
    "SELECT count(*) FROM histogram_values(customers, ssn) WHERE bin LIKE '5%'",
    "SELECT * FROM histogram_values(customers, ssn LIKE '5%')",
    "SELECT h.count FROM histogram_values(main.customers, ssn >= '5') h ORDER BY h.bin",
]


@pytest.mark.parametrize("sql", HISTOGRAMS)
def test_a_histogram_of_a_masked_column_tells_nothing(sql: str) -> None:
    """Found in round 22: the macro's body reads the table through ``query_table()``, out of analysis' sight; the
    SSN came back in clear, the name's length and a guess were counted. Now read as ``GROUP BY col`` over the
    table: refused alike, naming the column."""
    raw = _runs((sql,), governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs((sql,), governed=True)
    assert a == b, (a, b)
    _no_clear_value(a)
    assert "masked-column-predicate" in str(a[0]) and "customers." in str(a[0]), a


def test_a_bin_count_computed_from_a_masked_value_is_refused() -> None:
    """``bin_count :=`` decides the bins as the column does: a subquery over a masked column there is refused too
    (DuckDB wants a constant today; the analysis does not rely on it)."""
    sql = ("SELECT * FROM histogram(customers, city, bin_count := "
           "(SELECT length(full_name) - 8 FROM customers WHERE id = 1))")
    a, b = _runs((sql,), governed=True)
    assert a == b and "masked-column-predicate" in str(a[0]) and "customers.full_name" in str(a[0]), a


#: histograms of clear columns: answered exactly as raw
HISTOGRAM_LOOK_ALIKES = [
    "SELECT * FROM histogram(customers, city)",
    "SELECT * FROM histogram(customers, amount, bin_count := 3)",
    "SELECT * FROM histogram('customers', id, technique := 'equi-width')",
    "SELECT h.bin FROM histogram_values(customers, amount) h ORDER BY 1",
    "SELECT h.count FROM histogram_values(main.customers, city) AS h ORDER BY h.bin",
    "SELECT histogram(city) FROM customers",
    "SELECT histogram(length(city)) FROM customers",
]


@pytest.mark.parametrize("sql", HISTOGRAM_LOOK_ALIKES)
def test_histogram_look_alikes_answer_as_raw(sql: str) -> None:
    raw = _runs((sql,), governed=False)
    gov = _runs((sql,), governed=True)
    assert gov == raw, (gov, raw)


# -- the rest of the round: attempts answered alike on both copies ---------------------------------------------

W = "FROM customers WHERE id = 1"
ATTEMPTS = [
    f"SELECT [x for x in [ssn] if x LIKE '5%'] {W}",
    f"SELECT len(list_filter([ssn], lambda x: x LIKE '5%')) {W}",
    f"SELECT map_keys(map_from_entries([(ssn, 1)])) {W}",
    f"SELECT struct_pack(a := ssn).a {W}",
    "SELECT count(*) FROM (SELECT unnest([{'a': {'b': ssn}}], recursive := true) FROM customers) WHERE b LIKE '5%'",
    "SELECT count(*) FROM (UNPIVOT customers ON COLUMNS(* EXCLUDE (id, amount)) INTO NAME k VALUE v) WHERE v LIKE '5%'",
    "SELECT count(*) FROM (SELECT * FROM customers USING SAMPLE 100% (bernoulli, 42)) WHERE ssn LIKE '5%'",
    "SELECT id FROM (SELECT id, ssn FROM customers ORDER BY ssn) USING SAMPLE 2 ROWS (reservoir, 7)",
    "SUMMARIZE SELECT substr(ssn, 1, 1) AS x FROM customers",
    "SELECT approx_count_distinct(ssn) FROM (SELECT ssn FROM customers UNION ALL SELECT '536-22-8726')",
    f"SELECT bit_and(length(full_name)) {W}",
    "SELECT bitstring_agg(length(full_name), 1, 20) FROM customers",
    "SELECT string_agg(id::TEXT, ',' ORDER BY ssn) FROM customers",
    "SELECT min_by(id, ssn, 2) FROM customers",
    f"SELECT regexp_extract_all(ssn, '\\d') {W}",
    "SELECT * FROM summary((SELECT full_name FROM customers WHERE id = 1))",
    "SELECT count(*) FROM json_each((SELECT to_json(list(ssn)) FROM customers)) WHERE value::VARCHAR LIKE '%536%'",
    "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT ssn FROM customers WHERE id = 1'))",
    "SELECT count(*) FROM customers /* /* */ -- */ WHERE ssn LIKE '5%'",
    "SELECT $$a'$$ AS x, count(*) FROM customers WHERE ssn LIKE '5%' -- '",
    "SELECT count(*) FROM customers WHERE id = 1 AND e'\\'' = '''' AND ssn >= '5' --'",
]


@pytest.mark.parametrize("sql", ATTEMPTS, ids=lambda s: s[:70])
def test_attempts_are_answered_alike(sql: str) -> None:
    raw = _runs((sql,), governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs((sql,), governed=True)
    assert a == b, (a, b)
    _no_clear_value(a)


SETUP_ATTEMPTS = [
    ("CREATE TEMP TABLE d22_t (s TEXT PRIMARY KEY)", "INSERT INTO d22_t SELECT ssn FROM customers",
     "INSERT INTO d22_t VALUES ('536-22-8726')"),
    ("CREATE TEMP MACRO d22_m(x) AS TABLE SELECT * FROM customers WHERE ssn LIKE x", "SELECT count(*) FROM d22_m('5%')"),
    ("CREATE TEMP VIEW d22_v AS SELECT ssn AS city FROM customers", "SELECT count(*) FROM d22_v WHERE city LIKE '5%'"),
    ("SET VARIABLE d22_x = 'ss'", "SELECT count(*) FROM customers WHERE COLUMNS(getvariable('d22_x') || 'n') LIKE '5%'"),
]


@pytest.mark.parametrize("steps", SETUP_ATTEMPTS, ids=lambda s: str(s)[:60])
def test_attempts_in_several_statements_are_answered_alike(steps: tuple[str, ...]) -> None:
    raw = _runs(steps, governed=False)
    assert raw[0] != raw[1], raw
    a, b = _runs(steps, governed=True)
    assert a == b, (a, b)
    _no_clear_value(a)


# -- finding: DuckDB's log holds the application's SQL and what operators did with the values (decision 0420) ------

LOG_READS = [
    "SELECT message FROM duckdb_logs WHERE type = 'QueryLog'",
    "SELECT message FROM duckdb_logs() WHERE type = 'QueryLog'",
    "SELECT * FROM duckdb_logs_parsed('QueryLog')",
    "SELECT count(*) FROM duckdb_logs WHERE message LIKE '%''5%'",
    "SELECT type, message FROM system.main.duckdb_logs",
    "SELECT * FROM (SELECT message AS city FROM duckdb_logs)",
]


def _logged(secret: tuple[Any, ...], sql: str, governed: bool) -> Any:
    """The application turned logging on and looked a customer up by SSN (a literal, as applications write) before
    handing its connection to the agent, which then reads ``sql``."""
    raw = _duck(secret)
    raw.execute("CALL enable_logging()")
    raw.execute(f"SELECT id FROM customers WHERE ssn = '{secret[3]}'").fetchall()
    conn = govern(raw, ATTACKER) if governed else raw
    try:
        return _duck_observe(conn, sql)
    finally:
        conn.close()


@pytest.mark.parametrize("sql", LOG_READS)
def test_the_log_tells_nothing_of_the_applications_statements(sql: str) -> None:
    """Found in round 22: with logging on, ``duckdb_logs`` showed the application's ``... WHERE ssn =
    '536-22-8726'`` as written (and, at debug level, an adaptive filter's events and hash tables' bytes for the
    library's own sampling reads). Read as a statistics catalog: refused (rule ``system-catalog``)."""
    raw = [_logged(s, sql, governed=False) for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = (_logged(s, sql, governed=True) for s in (ALICE, ANNA))
    assert a == b, (a, b)
    _no_clear_value(a)
    assert str(a).startswith("refused") and "system-catalog" in str(a) and "duckdb_logs" in str(a), a


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM duckdb_settings() WHERE name = 'enable_logging'",
        "SELECT table_name FROM duckdb_tables() ORDER BY 1",
        "SELECT 'duckdb_logs' AS name",
        "SELECT city FROM customers WHERE id = 1",
    ],
)
def test_log_look_alikes_answer_as_raw(sql: str) -> None:
    raw = [_logged(s, sql, governed=False) for s in (ALICE, ANNA)]
    gov = [_logged(s, sql, governed=True) for s in (ALICE, ANNA)]
    assert gov == raw, (gov, raw)


def _app_state(secret: tuple[Any, ...], sql: str, governed: bool = True) -> Any:
    """The application prepared a lookup by SSN (a literal) and kept the SSN in a variable before handing its
    connection to the agent."""
    raw = _duck(secret)
    raw.execute(f"PREPARE d22_q AS SELECT id FROM customers WHERE ssn = '{secret[3]}'")
    raw.execute(f"SET VARIABLE d22_cur = '{secret[3]}'")
    conn = govern(raw, ATTACKER) if governed else raw
    try:
        return _duck_observe(conn, sql)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "sql", ["SELECT * FROM duckdb_prepared_statements()", "SELECT value FROM duckdb_variables()"]
)
def test_the_applications_prepared_statements_and_variables_are_a_catalog_of_values(sql: str) -> None:
    """Found in round 22: ``duckdb_prepared_statements()`` lists the connection's prepared statements as written
    (``... WHERE (ssn = '100-99-0000')``), ``duckdb_variables()`` the values of its variables: refused as
    statistics catalogs are (rule ``system-catalog``, decision 0420)."""
    raw = [_app_state(s, sql, governed=False) for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw
    a, b = (_app_state(s, sql) for s in (ALICE, ANNA))
    assert a == b and str(a).startswith("refused") and "system-catalog" in str(a), (a, b)


@pytest.mark.parametrize(
    "sql",
    ["SELECT getvariable('d22_cur')", "SELECT getvariable('d22_cur') LIKE '5%'", "SELECT main.GETVARIABLE('d22_cur')",
     "SELECT id FROM customers WHERE getvariable('d22_cur') LIKE '5%'"],
)
def test_a_variable_the_application_set_tells_nothing(sql: str) -> None:
    """Left open in round 22: ``getvariable()`` of a variable the application set before wrap() returned its value
    (an SSN no recognizer knows) and a predicate on it ran. Refused to an identity with masked columns, as
    ``duckdb_variables()`` is (decision 0420), naming the function and the remedy."""
    raw = [_app_state(s, sql, governed=False) for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw
    a, b = (_app_state(s, sql) for s in (ALICE, ANNA))
    assert a == b, (a, b)
    assert str(a).startswith("refused") and "getvariable() reads a variable of the session" in str(a), a
    _no_clear_value(a)


def test_getvariable_runs_for_an_identity_that_sees_everything() -> None:
    """The look-alike: an identity with an unmask grant (no masked columns) reads the variable as it is."""
    raw = _duck(ALICE)
    raw.execute("SET VARIABLE d22_cur = 'x-1'")
    conn = govern(raw, ATTACKER, masking={"unmask": [{"subject": "curious-agent"}]})
    try:
        assert conn.execute("SELECT getvariable('d22_cur')").fetchall() == [("x-1",)]
    finally:
        conn.close()
