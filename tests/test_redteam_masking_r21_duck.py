"""Red-team round 21 on DuckDB: databases that differ only in one customer's secrets, read by an agent without grant.

Finding (decision 0403): a foreign key's outcome on the parent's side was judged by the parent's columns only.
With a clear ``codes.code`` and a masked ``kids.ssn REFERENCES codes(code)``, ``DELETE FROM codes WHERE code =
'k7'`` failed ("is still referenced by a foreign key") exactly when a kid's SSN was ``k7``, and deleted the row
otherwise: a guess of a masked value, checked. Deleting or re-keying a referenced row is now a use of the child's
referencing columns too (the same on every database that checks foreign keys).

Finding (decision 0404): DuckDB binds ``info.ssn`` to a column ``info`` of the query (its field ``ssn``) when no FROM
item named ``info`` has a column ``ssn``, before any enclosing query. ``SELECT info.ssn FROM d21_prof info`` (a
STRUCT column holding the SSN) was read as a column ``ssn`` of the table, which has none, and returned the SSN in
clear; in a subquery, ``info.ssn`` was read as the enclosing query's ``info`` and ``WHERE info.ssn LIKE '5%'``
counted a guess. Names are now bound as DuckDB binds them.

Over-masking fixed (decision 0404): a field of a STRUCT column (``info.city``, ``(info).city``,
``struct_extract(info, 'city')``, ``info['city']``) came back ``[SENSITIVE]`` though the column itself showed that
field in clear (``{'city': 'Paris', 'ssn': '[US_SSN]'}``). A field of a stored STRUCT column is now masked as the
column's masking masks it inside the whole value, per field, as a member of a JSON document is (decision 0301).

The rest of the round (SUMMARIZE, DESCRIBE of a query, approximate aggregates, list functions, ordered
aggregates, arg_min/arg_max, QUALIFY, ASOF and POSITIONAL joins, PIVOT, GROUP BY/ORDER BY ALL, unnest of
structs, maps, string_split, regexp_extract groups, EXPLAIN ANALYZE, COPY then read_csv, EXPORT DATABASE, ATTACH,
CREATE TABLE AS, INSERT OR REPLACE / ON CONFLICT, FROM-first, ``* REPLACE``, COLUMNS('regex'), catalog functions,
storage statistics, ``stats()``, TRY_CAST/TRY, ``error()``, recursive CTEs, PREPARE/EXECUTE, enum casts...) told
the copies apart through no statement; those attempts are kept as regressions.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.test_redteam_masking_r13_rt13lite import _no_clear_value
from tests.test_redteam_masking_r19_duck import _runs

pytest.importorskip("duckdb")

# -- finding: a child's masked column that points at a clear parent key (decision 0403) ---------------------------

#: a clear code list; each kid's SSN column points at a code, customer 1's differing between the copies
CODES = (
    "CREATE TABLE d21_codes (code TEXT PRIMARY KEY, label TEXT)",
    "INSERT INTO d21_codes SELECT 'k' || i, 'l' FROM range(10) t(i)",
    "CREATE TABLE d21_kids (id INTEGER PRIMARY KEY, ssn TEXT REFERENCES d21_codes(code), city TEXT)",
    "INSERT INTO d21_kids SELECT id, CASE WHEN full_name LIKE 'Alice%' THEN 'k7' WHEN full_name LIKE 'Anna%' "
    "THEN 'k8' ELSE 'k' || id END, city FROM customers",
)
COUNT = "SELECT count(*) FROM d21_codes"
PARENT_WRITES = [
    "DELETE FROM d21_codes WHERE code = 'k7'",
    "DELETE FROM d21_codes WHERE code IN ('k7', 'k9')",
    "UPDATE d21_codes SET code = 'zz' WHERE code = 'k7'",
]


@pytest.mark.parametrize("sql", PARENT_WRITES)
def test_a_parent_write_tells_nothing_of_a_childs_masked_reference(sql: str) -> None:
    """Found in round 21: deleting or re-keying the clear code ``k7`` failed exactly when customer 1's masked
    ``ssn`` pointed at it, and succeeded on the other copy. The child's referencing columns now decide as much
    as the parent's (rule ``masked-column-constraint``, decision 0403)."""
    raw = _runs((sql, COUNT), governed=False, setup=CODES)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs((sql, COUNT), governed=True, setup=CODES)
    assert a == b, (a, b)
    assert str(a[0]).startswith("refused") and "masked-column-constraint" in str(a[0]), a
    assert "d21_kids.ssn" in str(a[0]), a  # names the column whose values would decide


#: writes the child's masked column does not decide: exact
PARENT_LOOK_ALIKES = [
    "UPDATE d21_codes SET label = 'zz' WHERE code = 'k7'",
    "INSERT INTO d21_codes VALUES ('k42', 'new')",
    "DELETE FROM d21_kids WHERE id = 2",
    "INSERT INTO d21_kids VALUES (9, NULL, 'Rome')",
]


@pytest.mark.parametrize("sql", PARENT_LOOK_ALIKES)
def test_parent_look_alikes_answer_as_raw(sql: str) -> None:
    raw = _runs((sql, COUNT), governed=False, setup=CODES)
    gov = _runs((sql, COUNT), governed=True, setup=CODES)
    assert gov == raw and not str(gov[0][0]).startswith("refused"), (gov, raw)


def test_a_parent_of_clear_children_is_deleted_as_raw() -> None:
    """A parent whose children point at it through clear columns keeps its DELETE: the error (and its absence) is
    the caller's to see."""
    setup = (
        "CREATE TABLE d21_towns (name TEXT PRIMARY KEY)",
        "INSERT INTO d21_towns VALUES ('Paris'), ('Lyon'), ('Nice'), ('Rome')",
        "CREATE TABLE d21_homes (id INTEGER, town TEXT REFERENCES d21_towns(name))",
        "INSERT INTO d21_homes SELECT id, city FROM customers",
    )
    for sql in ("DELETE FROM d21_towns WHERE name = 'Rome'", "DELETE FROM d21_towns WHERE name = 'Lyon'"):
        raw = _runs((sql, "SELECT count(*) FROM d21_towns"), governed=False, setup=setup)
        gov = _runs((sql, "SELECT count(*) FROM d21_towns"), governed=True, setup=setup)
        for g, r in zip(gov, raw, strict=True):
            # the same outcome; the error's text names the key, which error masking redacts whole
            assert g[1] == r[1] and str(g[0]).split(":")[0] == str(r[0]).split(":")[0], (gov, raw)
            assert not str(g[0]).startswith("refused"), gov


# -- over-masking: a field of a STRUCT column, masked per field (decision 0404) ----------------------------------

PROFILE = (
    "CREATE TABLE d21_prof (id INTEGER, info STRUCT(city VARCHAR, ssn VARCHAR))",
    "INSERT INTO d21_prof SELECT id, {'city': city, 'ssn': ssn} FROM customers",
)
CLEAR_FIELDS = [
    "SELECT info.city FROM d21_prof ORDER BY id",
    "SELECT p.info.city FROM d21_prof p ORDER BY id",
    "SELECT (info).city, struct_extract(info, 'city'), info['city'] FROM d21_prof ORDER BY id",
    "SELECT c FROM (SELECT info.city AS c, id FROM d21_prof) ORDER BY id",
]


@pytest.mark.parametrize("sql", CLEAR_FIELDS)
def test_a_clear_field_of_a_struct_answers_as_raw(sql: str) -> None:
    """Noticed in round 20: ``info.city`` came back ``[SENSITIVE]`` where ``SELECT info`` shows the city in
    clear; a field of a STRUCT column is masked as the column's masking masks it in the whole value."""
    raw = _runs((sql,), governed=False, setup=PROFILE)
    gov = _runs((sql,), governed=True, setup=PROFILE)
    assert gov == raw, (gov, raw)


MASKED_FIELDS = [
    "SELECT info.ssn FROM d21_prof WHERE id = 1",
    "SELECT (info).ssn, struct_extract(info, 'ssn'), info['ssn'] FROM d21_prof WHERE id = 1",
    "SELECT count(*) FROM d21_prof WHERE info.ssn LIKE '5%'",
    "SELECT count(*) FROM d21_prof WHERE info.city = 'Paris' AND info['ssn'] >= '5'",
    "SELECT id FROM d21_prof ORDER BY struct_extract(info, 'ssn') LIMIT 1",
    "SELECT info.ssn FROM (SELECT {'ssn': ssn} AS info FROM customers WHERE id = 1)",
]


@pytest.mark.parametrize("sql", MASKED_FIELDS)
def test_a_masked_field_of_a_struct_tells_nothing(sql: str) -> None:
    """The SSN field stays masked (``[US_SSN]``, as inside ``SELECT info``), and a filter or order on any field is
    still a use of the masked column."""
    raw = _runs((sql,), governed=False, setup=PROFILE)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs((sql,), governed=True, setup=PROFILE)
    assert a == b, (a, b)
    _no_clear_value(a)


def test_a_struct_field_shows_what_the_whole_value_shows() -> None:
    """Field by field, what ``info.city``/``info.ssn`` show is what ``SELECT info`` shows of those fields."""
    (seen,) = _runs(
        ("SELECT info, info.city, info.ssn FROM d21_prof ORDER BY id",), governed=True, setup=PROFILE
    )[:1]
    rows = seen[0][1]
    assert all(whole == {"city": city, "ssn": ssn} for whole, city, ssn in rows), rows
    assert rows[0][2] == "[US_SSN]", rows


#: DuckDB binds ``info.ssn`` to this query's column ``info`` (its field ``ssn``) when no table of the query named
#: ``info`` has a column ``ssn``, before an enclosing query's ``info``; analysis read the name as the table's
STRUCT_NAMES = [
    "SELECT info.ssn FROM d21_prof info WHERE id = 1",
    "SELECT (SELECT info.ssn FROM d21_prof WHERE d21_prof.id = 1) FROM (SELECT 1 AS id, 'x' AS ssn) info",
    "SELECT (SELECT max(info.ssn) FROM d21_prof) FROM (SELECT 1 AS id, 'x' AS ssn) info",
    "SELECT (SELECT count(*) FROM d21_prof WHERE info.ssn LIKE '5%') FROM (SELECT 1 AS id, 'x' AS ssn) info",
    "SELECT count(*) FROM d21_prof info WHERE info.ssn LIKE '5%'",
    "SELECT x.info.ssn FROM d21_prof x, (SELECT 'y' AS ssn) info WHERE x.id = 1",
    "SELECT t.c.ssn FROM (SELECT c FROM customers c WHERE id = 1) t",
]


@pytest.mark.parametrize("sql", STRUCT_NAMES, ids=lambda s: s[:70])
def test_a_struct_field_is_read_where_duckdb_binds_it(sql: str) -> None:
    """Found in round 21: ``SELECT info.ssn FROM d21_prof info`` was read as a column ``ssn`` of the table
    ``info`` (none: a column not masked) and returned ``100-99-0000`` in clear; inside a subquery, ``info.ssn``
    was read as the enclosing query's ``info.ssn`` (a constant), and ``WHERE info.ssn LIKE '5%'`` counted the
    guess. Names are now bound query by query as DuckDB binds them (decision 0404)."""
    raw = _runs((sql,), governed=False, setup=PROFILE)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs((sql,), governed=True, setup=PROFILE)
    assert a == b, (a, b)
    _no_clear_value(a)


def test_a_table_column_wins_over_a_struct_field_as_in_duckdb() -> None:
    """``info.ssn`` where a FROM item ``info`` has a column ``ssn`` is that column, as DuckDB binds it: exact."""
    sql = "SELECT info.ssn FROM d21_prof, (SELECT 'x' AS ssn) info WHERE d21_prof.id = 1"
    raw = _runs((sql,), governed=False, setup=PROFILE)
    gov = _runs((sql,), governed=True, setup=PROFILE)
    assert gov == raw, (gov, raw)


def test_a_field_of_a_clear_struct_is_scanned_as_the_struct_is_when_values_arrive() -> None:
    """A STRUCT column found clear when its table was read whole is watched: values that arrive since are scanned
    (decision 0268), in ``SELECT info`` and in ``info.note`` alike."""
    import duckdb

    from tests._redteam import govern
    from tests.test_masking_noninterference import ATTACKER

    raw = duckdb.connect(":memory:")
    raw.execute("CREATE TABLE d21_p (id INTEGER, info STRUCT(city VARCHAR, note VARCHAR))")
    raw.execute(
        "INSERT INTO d21_p VALUES (1, {'city': 'Paris', 'note': 'hello'}), (2, {'city': 'Lyon', 'note': 'ok'})"
    )
    conn = govern(raw, ATTACKER)
    sql = "SELECT info, info.note, info.city FROM d21_p ORDER BY id"
    assert conn.execute(sql).fetchall() == raw.execute(sql).fetchall()
    raw.execute(
        "INSERT INTO d21_p VALUES (3, {'city': 'Nice', 'note': 'call +1 415-555-2671 or alice@example.com'})"
    )
    rows = conn.execute(sql).fetchall()
    conn.close()
    assert rows[2][0]["note"] == rows[2][1] and "2671" not in rows[2][1] and "alice@" not in rows[2][1], rows
    assert rows[2][2] == "Nice", rows


# -- over-refusal and over-masking: COLUMNS(lambda ...) and f(COLUMNS(* EXCLUDE ...)) (decision 0404) -------------

#: what COLUMNS names, told exactly: answered as raw
COLUMNS_LOOK_ALIKES = [
    "SELECT COLUMNS(lambda c: c IN ('id', 'city')) FROM customers ORDER BY ALL",
    "SELECT COLUMNS(lambda c: c = 'city') FROM customers ORDER BY ALL",
    "SELECT min(COLUMNS(* EXCLUDE (full_name, email, ssn, phone))) FROM customers",
    "SELECT max(COLUMNS(* EXCLUDE (id))) FROM (SELECT id, city FROM customers) a, (SELECT id, amount FROM customers) b",
]


@pytest.mark.parametrize("sql", COLUMNS_LOOK_ALIKES)
def test_columns_over_clear_columns_answer_as_raw(sql: str) -> None:
    """Noticed in round 19: ``COLUMNS(lambda c: c IN ('id', 'city')) ... ORDER BY ALL`` was refused (the lambda
    was read as a JSON arrow, every column named) and ``max(COLUMNS(* EXCLUDE (...)))`` masked whole."""
    raw = _runs((sql,), governed=False)
    gov = _runs((sql,), governed=True)
    assert gov == raw, (gov, raw)


COLUMNS_ATTEMPTS = [
    "SELECT COLUMNS(lambda c: c IN ('id', 'ssn')) FROM customers ORDER BY ALL",
    "SELECT COLUMNS(lambda c: c = 'ssn') FROM customers WHERE id = 1",
    "SELECT COLUMNS(lambda c: c LIKE 's%') FROM customers ORDER BY ALL",
    "SELECT count(*) FROM customers WHERE COLUMNS(lambda c: c IN ('ssn')) LIKE '5%'",
    "SELECT id FROM customers ORDER BY COLUMNS(lambda c: c = 'ssn')",
    "SELECT max(COLUMNS(* EXCLUDE (full_name, email, phone))) FROM customers",
    "SELECT upper(COLUMNS(* EXCLUDE (id, amount))) FROM customers WHERE id = 1",
    "SELECT count(*) FROM (SELECT upper(COLUMNS(* EXCLUDE (id, amount))) FROM customers) WHERE ssn LIKE '5%'",
    "SELECT max(COLUMNS(* EXCLUDE (customers.full_name, email, phone))) FROM customers",
    "SELECT max(COLUMNS(* EXCLUDE (id))) FROM (SELECT id, ssn AS city FROM customers) a, "
    "(SELECT id, city FROM customers) b",
]


@pytest.mark.parametrize("sql", COLUMNS_ATTEMPTS, ids=lambda s: s[:70])
def test_columns_over_masked_columns_tell_nothing(sql: str) -> None:
    """A lambda naming ``ssn`` (or one not read: ``LIKE``), an EXCLUDE that keeps it or names it qualified: masked
    or refused alike on both copies."""
    raw = _runs((sql,), governed=False)
    assert raw[0] != raw[1], raw
    a, b = _runs((sql,), governed=True)
    assert a == b, (a, b)
    _no_clear_value(a)


# -- the rest of the round: attempts answered alike on both copies ---------------------------------------------

ATTEMPTS = [
    "SUMMARIZE customers",
    "SELECT * FROM (SUMMARIZE customers) WHERE column_name = 'ssn'",
    "SELECT list_sort(list(ssn))[1] FROM customers",
    "SELECT list_distinct(list(substr(ssn, 1, 1))) FROM customers",
    "SELECT array_agg(id ORDER BY ssn) FROM customers",
    "SELECT arg_min(id, ssn) FROM customers",
    "SELECT id FROM customers QUALIFY row_number() OVER (ORDER BY ssn) = 1",
    "SELECT count(*) FROM (SELECT ssn FROM customers ORDER BY id) POSITIONAL JOIN "
    "(SELECT id FROM customers ORDER BY id) WHERE ssn LIKE '5%'",
    "PIVOT customers ON substr(ssn, 1, 1) USING count(*)",
    "SELECT substr(ssn, 1, 1), count(*) FROM customers GROUP BY ALL",
    "SELECT ssn, id FROM customers ORDER BY ALL",
    "SELECT count(*) FROM (SELECT unnest({'a': ssn}) FROM customers) WHERE a LIKE '5%'",
    "SELECT map_from_entries([(ssn, id)])['536-22-8726'] FROM customers WHERE id = 1",
    "SELECT cardinality(map_from_entries([(ssn, 1), ('536-22-8726', 2)])) FROM customers WHERE id = 1",
    "SELECT len(string_split(ssn, '5')) FROM customers WHERE id = 1",
    "SELECT regexp_extract(ssn, '^(5)', 1) FROM customers WHERE id = 1",
    "EXPLAIN ANALYZE SELECT id FROM customers WHERE ssn LIKE '5%'",
    "CREATE TABLE d21_c AS SELECT id FROM customers WHERE ssn LIKE '5%'",
    "FROM customers SELECT count(*) WHERE ssn LIKE '5%'",
    "SELECT count(*) FROM (SELECT * REPLACE (ssn AS city) FROM customers) WHERE city LIKE '5%'",
    "SELECT count(*) FROM customers WHERE COLUMNS('s.n') LIKE '5%'",
    "SELECT stats FROM pragma_storage_info('customers') WHERE column_name = 'ssn'",
    "SELECT stats(ssn) FROM customers WHERE id = 1",
    "SELECT count(*) FROM customers WHERE TRY_CAST(substr(ssn, 1, 1) AS INTEGER) = 5",
    "SELECT CASE WHEN ssn LIKE '5%' THEN error('five') END FROM customers",
    "SELECT count(*) FROM customers, range(length(full_name)) WHERE id = 1",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < "
    "(SELECT length(full_name) FROM customers WHERE id = 1)) SELECT count(*) FROM r",
    "SELECT count(*) FROM customers GROUP BY ROLLUP(substr(ssn, 1, 1))",
    "SELECT greatest(ssn, '5') = '5' FROM customers WHERE id = 1",
    "SELECT len(list(DISTINCT ssn)) FROM (SELECT ssn FROM customers WHERE id = 1 UNION ALL SELECT '536-22-8726')",
    "SELECT count(*) FROM customers c1 SEMI JOIN (SELECT '536-22-8726' AS ssn) c2 USING (ssn)",
    "SELECT id FROM (SELECT ssn, id FROM customers) c ORDER BY c LIMIT 1",
    "SELECT max(c).id FROM (SELECT ssn, id FROM customers) c",
    "SELECT list_sort(list({'s': ssn, 'i': id}))[1].i FROM customers",
    "SELECT array_agg(c ORDER BY c)[1].id FROM (SELECT ssn, id FROM customers) c",
    "SELECT list_grade_up(list(ssn ORDER BY id)) FROM customers",
]


@pytest.mark.parametrize("sql", ATTEMPTS, ids=lambda s: s[:70])
def test_attempts_are_answered_alike(sql: str) -> None:
    steps = (sql, "SELECT count(*) FROM d21_c") if sql.startswith("CREATE TABLE d21_c") else (sql,)
    raw = _runs(steps, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs(steps, governed=True)
    assert a == b, (a, b)
    _no_clear_value(a)


SETUP_ATTEMPTS = [
    (("PREPARE d21_p AS SELECT count(*) FROM customers WHERE ssn LIKE ?", "EXECUTE d21_p('5%')"), ()),
    (
        (
            "CREATE TYPE d21_e AS ENUM ('536-22-8726')",
            "SELECT count(*) FROM customers WHERE TRY_CAST(ssn AS d21_e) IS NOT NULL",
        ),
        (),
    ),
    (("SET VARIABLE d21_v = (SELECT ssn FROM customers WHERE id = 1)", "SELECT getvariable('d21_v')"), ()),
    (
        (
            "CREATE TABLE d21_k (s TEXT PRIMARY KEY)",
            "INSERT INTO d21_k SELECT ssn FROM customers",
            "INSERT OR IGNORE INTO d21_k VALUES ('536-22-8726')",
            "SELECT count(*) FROM d21_k",
        ),
        (),
    ),
]


@pytest.mark.parametrize(("steps", "setup"), SETUP_ATTEMPTS, ids=lambda s: str(s)[:60])
def test_attempts_in_several_statements_are_answered_alike(
    steps: tuple[str, ...], setup: tuple[str, ...]
) -> None:
    raw = _runs(steps, governed=False, setup=setup)
    assert raw[0] != raw[1], raw
    a, b = _runs(steps, governed=True, setup=setup)
    assert a == b, (a, b)
    _no_clear_value(a)


def test_a_copy_to_a_file_then_read_back_tells_nothing(tmp_path: Any) -> None:
    """``COPY (...) TO`` a file the agent reads back with ``read_csv``: answered alike on both copies."""
    path = os.path.join(tmp_path, "d21.csv")
    steps = (
        f"COPY (SELECT id FROM customers WHERE ssn LIKE '5%') TO '{path}'",
        f"SELECT * FROM read_csv('{path}')",
    )
    raw = _runs(steps, governed=False)
    assert raw[0] != raw[1], raw
    a, b = _runs(steps, governed=True)
    assert a == b, (a, b)
