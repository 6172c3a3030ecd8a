"""Red-team round 19 on DuckDB: two databases that differ only in one customer's secrets (a right and a wrong guess).

Two findings. Decision 0376: DuckDB makes the column names of a subquery, a CTE or ``query('...')`` unique, left to
right (a name taken before gets ``_1``, or the first free ``_2``, ``_3``...), and analysis read a column by the
name as written. ``(SELECT city, ssn AS city, city AS city_1)`` has the columns ``city``, ``city_1`` (the SSN)
and ``city_1_1``: ``WHERE city_1 LIKE '5%'`` ran as a filter on the clear city and counted the SSN. The same with
a struct's fields: ``(SELECT s.*, 'x' AS a FROM (SELECT {'a': ssn} AS s ...))`` has ``a`` (the SSN) and ``a_1``,
and ``s.*`` was read as the star of the FROM clause, so ``SELECT a`` returned the SSN in clear. SQLite makes such
names unique too (``city:1``), with the same result. Decision 0377: an output without an alias is named after its
text (``upper(ssn)``, ``ssn[1]``, ``'x'``; ``(ssn)`` and ``#4`` after the column), which analysis did not know:
``(SELECT ssn[1], city AS "ssn[1]")`` read ``"ssn[1]"`` as the city (DuckDB renames it ``ssn[1]_1``). The rest of the round (lambdas, MERGE, SET VARIABLE,
``query_table``, ``TRY``, sequences, COLUMNS in orders and filters, ASOF and POSITIONAL joins...) told the copies
apart through no statement; those attempts are kept as regressions, beside look-alikes that must answer exactly
as the raw connection does.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests._redteam import govern
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import (
    ALICE,
    ANNA,
    _duck,
    _duck_observe,
    _no_clear_value,
    _sqlite_runs,
)

pytest.importorskip("duckdb")


def _runs(steps: tuple[str, ...], governed: bool, setup: tuple[str, ...] = ()) -> list[Any]:
    out = []
    for secret in (ALICE, ANNA):
        raw = _duck(secret)
        for sql in setup:
            raw.execute(sql)
        conn = govern(raw, ATTACKER) if governed else raw
        out.append([_duck_observe(conn, sql) for sql in steps])
        conn.close()
    return out


# -- finding: a column read by the name the database gave it (decision 0376) -----------------------------------

DUPLICATE = "SELECT city, ssn AS city, city AS city_1 FROM customers"
RENAMED = [
    f"SELECT count(*) FROM ({DUPLICATE}) WHERE city_1 LIKE '5%'",
    f"WITH t AS ({DUPLICATE}) SELECT count(*) FROM t WHERE city_1 LIKE '5%'",
    f"SELECT count(*) FROM query('{DUPLICATE}') WHERE city_1 LIKE '5%'",
    f"SELECT count(*) FROM ({DUPLICATE}) AS t WHERE t.city_1 >= '5'",
    "SELECT count(*) FROM (SELECT city AS a, ssn AS a, city AS a_1 FROM customers) WHERE a_1 LIKE '5%'",
    "SELECT count(*) FROM (SELECT city AS a, city AS a, ssn AS a, city AS a_2 FROM customers) WHERE a_2 LIKE '5%'",
    "SELECT city_1 FROM (SELECT * FROM (SELECT city FROM customers WHERE id = 1) a, "
    "(SELECT ssn AS city, 1 AS city_1 FROM customers WHERE id = 1) b)",
    "SELECT a FROM (SELECT s.*, 'x' AS a FROM (SELECT {'a': ssn} AS s FROM customers WHERE id = 1))",
    "SELECT count(*) FROM (SELECT s.*, 'x' AS a FROM (SELECT {'a': ssn} AS s FROM customers)) WHERE a LIKE '5%'",
]


@pytest.mark.parametrize("sql", RENAMED, ids=lambda s: s[:70])
def test_a_column_is_the_one_the_database_names_so(sql: str) -> None:
    """Found in round 19: DuckDB renames the second ``city`` of a subquery ``city_1`` and the written ``city_1``
    ``city_1_1``; analysis took ``city_1`` for the clear city, so a filter on it counted the SSN (and a struct's
    ``s.*`` for the FROM clause's star, so ``SELECT a`` returned the SSN in clear). The names are now made unique
    as DuckDB makes them (decision 0376)."""
    raw = _runs((sql,), governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs((sql,), governed=True)
    assert a == b, (a, b)
    _no_clear_value(a)


#: a struct's ``s.*`` beside outputs of the statement's own, in the result itself: matched to the description by name
STRUCT_STARS = [
    "SELECT s.*, city AS a FROM (SELECT {'a': ssn} AS s, city FROM customers WHERE id = 1)",
    "SELECT s.*, id FROM (SELECT {'id': ssn} AS s, id FROM customers WHERE id = 1)",
    "SELECT s.*, t.* FROM (SELECT {'a': ssn} AS s FROM customers WHERE id = 1), (SELECT 'x' AS a) t",
    "SELECT s.*, 'x' AS a FROM (SELECT {'a': ssn} AS s FROM customers WHERE id = 1)",
    "SELECT s.*, upper(ssn) FROM (SELECT {'a': city} AS s, ssn FROM customers WHERE id = 1)",
    "SELECT s.*, ssn[1] FROM (SELECT {'a': city} AS s, ssn FROM customers WHERE id = 1)",
    "SELECT s.*, upper(city) FROM (SELECT {'a': ssn} AS s, city FROM customers WHERE id = 1)",
]


@pytest.mark.parametrize("sql", STRUCT_STARS, ids=lambda s: s[:70])
def test_a_struct_star_beside_outputs_of_the_same_name(sql: str) -> None:
    """Found in round 19: a result whose columns are matched by name (a struct's ``s.*`` has a width DuckDB
    decides) took a name given twice for the statement's own output of that name: ``SELECT s.*, id`` over ``{'id':
    ssn}`` returned the SSN in clear as the ``id``. A name given more often than the statement's own outputs
    so named may be a star's column, or an output named after its text (``upper(ssn)``) (decisions 0376, 0377)."""
    raw = _runs((sql,), governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs((sql,), governed=True)
    assert a == b, (a, b)
    _no_clear_value(a)


SQLITE_RENAMED = [
    'SELECT count(*) FROM (SELECT city, ssn AS city, city AS "city:1" FROM customers) WHERE "city:1" LIKE \'5%\'',
    'WITH t AS (SELECT city, ssn AS city, city AS "city:1" FROM customers) '
    "SELECT count(*) FROM t WHERE \"city:1\" LIKE '5%'",
    'SELECT "city:1" FROM (SELECT city, ssn AS city, city AS "city:1" FROM customers WHERE id = 1)',
]


@pytest.mark.parametrize("sql", SQLITE_RENAMED, ids=lambda s: s[:70])
def test_a_sqlite_column_is_the_one_the_database_names_so(sql: str) -> None:
    """The same on SQLite, whose second ``city`` becomes ``city:1`` (and the written ``city:1``, ``city:2``):
    ``"city:1"`` was read as the clear city, and returned ``100-99-0000`` in clear (decision 0376)."""
    raw = _sqlite_runs((sql,), governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _sqlite_runs((sql,))
    assert a == b, (a, b)
    _no_clear_value(a)


def test_sqlite_names_made_unique_at_random() -> None:
    """After four tries SQLite appends a random number (``a:3078266104``): that column is found by no name, and
    is masked wherever a star shows it; the columns around it keep their names."""
    six = ", ".join(["city AS a"] * 5 + ["ssn AS a"])
    steps = (f"SELECT count(*) FROM (SELECT {six}, city AS b FROM customers) WHERE b LIKE 'P%'",
             f"SELECT * FROM (SELECT {six}, city AS b FROM customers WHERE id = 1)")
    raw = _sqlite_runs(steps, governed=False)
    a, b = _sqlite_runs(steps)
    assert a[0] == b[0] == raw[0][0], (a, raw)
    assert [row[1][0][:-2] for row in (a[1], b[1])] == [("Paris",) * 5] * 2, (a, b)  # names differ: random
    _no_clear_value([a, b])


# -- finding: an output named after its text (decision 0377) ----------------------------------------------------

TEXT_NAMED = [
    "SELECT count(*) FROM (SELECT upper(ssn), city AS \"upper(ssn)\" FROM customers) WHERE \"upper(ssn)\" LIKE '5%'",
    "SELECT \"ssn[1]\" FROM (SELECT ssn[1], city AS \"ssn[1]\" FROM customers WHERE id = 1)",
    "SELECT count(*) FROM (SELECT ssn::VARCHAR, city AS \"CAST(ssn AS VARCHAR)\" FROM customers) "
    "WHERE \"CAST(ssn AS VARCHAR)\" LIKE '5%'",
    "SELECT count(*) FROM (SELECT ssn || '', city AS \"(ssn || '')\" FROM customers) WHERE \"(ssn || '')\" LIKE '5%'",
    "SELECT count(*) FROM (SELECT (ssn), city AS ssn FROM customers) WHERE ssn LIKE '5%'",
    "SELECT count(*) FROM (SELECT #4, city AS ssn FROM customers) WHERE ssn LIKE '5%'",
    "SELECT count(*) FROM (SELECT 'x', ssn AS x FROM customers) WHERE x LIKE '5%'",
    "SELECT count(*) FROM (SELECT ({'a': city}).a, ssn AS a FROM customers) WHERE a LIKE '5%'",
    "SELECT count(*) FROM (SELECT upper(city), ssn AS \"upper(city)\", city AS \"upper(city)_1\" FROM customers) "
    "WHERE \"upper(city)_1\" LIKE '5%'",
]


@pytest.mark.parametrize("sql", TEXT_NAMED, ids=lambda s: s[:70])
def test_an_output_is_named_as_the_database_writes_it(sql: str) -> None:
    """Found in round 19: DuckDB names an output without an alias after its text (``upper(ssn)``, ``ssn[1]``,
    ``'x'``; ``(ssn)`` and ``#4`` after the column), and an alias given that name later is renamed ``_1``.
    Analysis knew no such name (``4`` for ``#4``, ``x`` for ``'x'``): ``(SELECT ssn[1], city AS "ssn[1]")`` read
    ``"ssn[1]"`` as the city and returned the SSN's first digit in clear (decision 0377)."""
    raw = _runs((sql,), governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs((sql,), governed=True)
    assert a == b, (a, b)
    _no_clear_value(a)


SQLITE_TEXT_NAMED = [
    "SELECT count(*) FROM (SELECT ssn COLLATE nocase, city AS ssn FROM customers) WHERE ssn LIKE '5%'",
    "SELECT count(*) FROM (SELECT (ssn), city AS ssn FROM customers) WHERE ssn LIKE '5%'",
    "SELECT count(*) FROM (SELECT 'x', ssn AS x FROM customers) WHERE x LIKE '5%'",
    "SELECT \"upper(ssn)\" FROM (SELECT upper(ssn), city AS \"upper(ssn)\" FROM customers WHERE id = 1)",
    "SELECT count(*) FROM (SELECT +ssn, city AS \"+ssn\" FROM customers) WHERE \"+ssn\" LIKE '5%'",
]


@pytest.mark.parametrize("sql", SQLITE_TEXT_NAMED, ids=lambda s: s[:70])
def test_a_sqlite_output_is_named_as_the_database_writes_it(sql: str) -> None:
    """The same on SQLite, which names ``ssn COLLATE nocase`` and ``(ssn)`` after the column and ``+ssn`` (a
    unary plus the parser drops) after its text (decision 0377)."""
    raw = _sqlite_runs((sql,), governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _sqlite_runs((sql,))
    assert a == b, (a, b)
    _no_clear_value(a)


#: innocent reads of renamed columns: exact, as the raw connection answers
RENAMED_LOOK_ALIKES = [
    "SELECT city_1_1, id FROM (SELECT id, city, ssn AS city, city AS city_1 FROM customers) "
    "WHERE city_1_1 = 'Paris' ORDER BY id",
    "SELECT city_1, id FROM (SELECT a.city, b.city, a.id FROM customers a JOIN customers b USING (id)) "
    "WHERE city_1 = 'Paris' ORDER BY id",
    "SELECT a, b FROM (SELECT s.* FROM (SELECT {'a': city, 'b': id} AS s FROM customers)) ORDER BY b",
    "SELECT s.*, id FROM (SELECT {'a': city} AS s, id FROM customers) ORDER BY id",
    "SELECT * FROM (SELECT city AS x, id AS x FROM customers) ORDER BY x_1",
    "SELECT c.* EXCLUDE (full_name, email, ssn, phone) FROM customers c ORDER BY id",
    "SELECT \"City Name\", id FROM (SELECT full_name, city AS \"City Name\", id FROM customers) "
    "WHERE \"City Name\" = 'Paris' ORDER BY id",
    "SELECT k, n FROM (SELECT upper(full_name), id AS k, city AS n FROM customers) WHERE n = 'Lyon' ORDER BY k",
    "SELECT city FROM (SELECT (city), (id) FROM customers) WHERE id > 2 ORDER BY id",
    "SELECT s.*, 'x' AS \"upper(city)\", upper(city) FROM (SELECT {'a': city} AS s, id, city FROM customers) "
    "ORDER BY id",
]


@pytest.mark.parametrize("sql", RENAMED_LOOK_ALIKES, ids=lambda s: s[:70])
def test_renamed_clear_columns_answer_as_raw(sql: str) -> None:
    raw = _runs((sql,), governed=False)
    gov = _runs((sql,), governed=True)
    assert gov == raw and not str(gov[0]).startswith("[\"refused"), (gov, raw)


def test_renamed_clear_columns_answer_as_raw_on_sqlite() -> None:
    sql = ('SELECT "city:2", id FROM (SELECT id, city, ssn AS city, city AS "city:1" FROM customers) '
           "WHERE \"city:2\" = 'Paris' ORDER BY id")
    assert _sqlite_runs((sql,)) == _sqlite_runs((sql,), governed=False)


# -- the rest of the round: attempts that told nothing, kept as regressions --------------------------------------

W = "FROM customers WHERE id = 1"
OWN = ("CREATE TABLE r19duck_t (id INT PRIMARY KEY, f VARCHAR)", "INSERT INTO r19duck_t VALUES (1, 'a')")
ATTEMPTS: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    ((f"SELECT list_transform([ssn], lambda x: x LIKE '5%') {W}",), ()),
    (("SELECT len(list_filter(list(ssn), lambda x: x LIKE '5%')) FROM customers",), ()),
    ((f"SELECT list_reduce([ssn, 'a'], lambda x, y: CASE WHEN x LIKE '5%' THEN 'y' ELSE 'n' END) {W}",), ()),
    ((f"SELECT [x[1] FOR x IN [ssn]] {W}",), ()),
    (("SELECT list_position(list(ssn ORDER BY ssn), '536-22-8726') FROM customers",), ()),
    (("SELECT count(*) FROM (SELECT unnest(regexp_extract_all(ssn, '\\d')) AS d FROM customers WHERE id = 1) "
      "WHERE d = '5'",), ()),
    (("SELECT * FROM (PIVOT (SELECT id, ssn[1] AS f FROM customers) ON f IN ('5', '1') USING count(*))",), ()),
    (("SELECT id FROM customers WINDOW w AS (ORDER BY ssn) QUALIFY row_number() OVER w = 1",), ()),
    (("SELECT a.id FROM customers a ASOF JOIN (SELECT '5' AS k) b ON a.ssn >= b.k",), ()),
    (("SELECT c1.id, c2.id FROM customers c1 POSITIONAL JOIN (SELECT id FROM customers ORDER BY ssn) c2",), ()),
    (("SELECT id FROM (SELECT * FROM customers ORDER BY ssn) USING SAMPLE 1 ROWS (reservoir, 42)",), ()),
    (("SELECT min_by(id, ssn, 3), max(ssn, 2) FROM customers",), ()),
    (("SELECT approx_quantile(id, 0.5) FILTER (WHERE ssn LIKE '5%') FROM customers",), ()),
    (("SELECT left(ssn, 1), count(*) FROM customers GROUP BY ALL ORDER BY ALL",), ()),
    (("SELECT id FROM customers ORDER BY ssn COLLATE nocase LIMIT 1",), ()),
    (("SELECT count(*) FROM customers WHERE ssn ^@ '5'",), ()),
    (("SELECT count(*) FROM customers WHERE ssn.starts_with('5')",), ()),
    (("SELECT count(*) FROM (SELECT x: ssn FROM customers) WHERE x LIKE '5%'",), ()),
    (("SELECT count(*) FROM query_table('customers') WHERE ssn LIKE '5%'",), ()),
    (("SELECT count(*) FROM query('SELECT * FROM customers WHERE ssn LIKE ''5%''')",), ()),
    (("SET VARIABLE v = (SELECT ssn FROM customers WHERE id = 1)", "SELECT getvariable('v') LIKE '5%'"), ()),
    (("SELECT count(*) FROM customers c, generate_series(1, ascii(c.ssn))",), ()),
    (("SELECT id FROM customers LIMIT (SELECT CASE WHEN ssn > '5' THEN 1 ELSE 2 END FROM customers WHERE id = 1)",),
     ()),
    ((f"SELECT try(left(ssn, 1)::INT) {W}",), ()),
    (("SELECT list(id ORDER BY COLUMNS('ss.*')) FROM customers",), ()),
    (("SELECT count(*) FILTER (WHERE COLUMNS('ss.*') > '5') FROM customers",), ()),
    (("SELECT json_keys(json_group_object(ssn, id)) FROM customers",), ()),
    (("CREATE MACRO r19duck_m(x) AS x LIKE '5%'", "SELECT count(*) FROM customers WHERE r19duck_m(ssn)"), ()),
    (("CREATE TYPE r19duck_e AS ENUM (SELECT left(ssn, 1) FROM customers)",
      "SELECT enum_range(NULL::r19duck_e)"), ()),
    (("CREATE SEQUENCE r19duck_s", "SELECT list(nextval('r19duck_s') ORDER BY ssn) FROM customers"), ()),
    (("SELECT * FROM pragma_storage_info('customers')",), ()),
    (("MERGE INTO r19duck_t t USING customers c ON t.id = c.id WHEN MATCHED AND c.ssn LIKE '5%' "
      "THEN UPDATE SET f = 'y'", "SELECT * FROM r19duck_t"), OWN),
    (("MERGE INTO r19duck_t t USING customers c ON t.id = c.id WHEN MATCHED THEN UPDATE SET f = c.ssn",
      "SELECT * FROM r19duck_t"), OWN),
    (("MERGE INTO customers t USING (SELECT 1 AS id) s ON t.id = s.id AND t.ssn > '5' WHEN MATCHED THEN DELETE",
      "SELECT count(*) FROM customers"), ()),
    (("UPDATE customers SET city = c2.ssn FROM customers c2 WHERE customers.id = 1 AND c2.id = 1",
      "SELECT city FROM customers WHERE id = 1"), ()),
]


@pytest.mark.parametrize(("steps", "setup"), ATTEMPTS, ids=lambda s: str(s)[:60])
def test_attempts_are_answered_alike(steps: tuple[str, ...], setup: tuple[str, ...]) -> None:
    raw = _runs(steps, governed=False, setup=setup)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs(steps, governed=True, setup=setup)
    assert a == b, (a, b)
    _no_clear_value(a)


#: the round's functions over clear columns: exact
LOOK_ALIKES = [
    "SELECT list_transform(list(city ORDER BY id), lambda x: upper(x)) FROM customers",
    "SELECT list_filter(list(city ORDER BY id), lambda x: x LIKE 'P%') FROM customers",
    "SELECT list_reduce(list(id ORDER BY id), lambda a, b: a + b) FROM customers",
    "SELECT id, unnest(string_split(city, 'y')) FROM customers ORDER BY id",
    "SELECT id, regexp_extract_all(city, '[aeiou]') FROM customers ORDER BY id",
    "SELECT mode(city), approx_quantile(amount, 0.5), approx_count_distinct(city) FROM customers",
    "SELECT bit_and(id), bool_or(amount > 10), bit_or(id) FROM customers",
    "SELECT count(*) FILTER (WHERE city = 'Paris'), sum(amount) FILTER (amount > 10) FROM customers",
    "SELECT min_by(city, amount), max_by(id, amount), arg_max(id, amount, 2) FROM customers",
    "SELECT a.id, b.id FROM customers a ASOF JOIN customers b ON a.amount >= b.amount + 5 ORDER BY a.id",
    "SELECT * FROM (SELECT id FROM customers ORDER BY id) POSITIONAL JOIN (SELECT city FROM customers ORDER BY id)",
    "SELECT city FROM customers ORDER BY city COLLATE nocase, id",
    "SELECT * EXCLUDE (full_name, email, ssn, phone) FROM customers ORDER BY ALL",
    "SELECT city, sum(amount) FROM customers GROUP BY ALL ORDER BY ALL DESC",
    "SELECT * FROM (PIVOT (SELECT id, city FROM customers) ON city USING count(*) GROUP BY id) ORDER BY id",
    "SUMMARIZE SELECT id, city, amount FROM customers",
    # over-refusal and over-masking noticed in round 19, made exact in round 21 (decision 0404): COLUMNS(lambda ...)
    # in a SELECT names the columns its lambda compares with; an aggregate of COLUMNS(* EXCLUDE ...) is per column
    "SELECT COLUMNS(lambda c: c IN ('id', 'city')) FROM customers ORDER BY ALL",
    "SELECT max(COLUMNS(* EXCLUDE (full_name, email, ssn, phone))) FROM customers",
    # left open: a top-level UNPIVOT followed by ORDER BY does not parse (sqlglot); ``SELECT * FROM (UNPIVOT ...)
    # ORDER BY ...`` does
    pytest.param("UNPIVOT (SELECT id, city, CAST(amount AS VARCHAR) AS a FROM customers) ON city, a "
                 "INTO NAME k VALUE v ORDER BY id, k",
                 marks=pytest.mark.xfail(strict=True, reason="sqlglot cannot parse UNPIVOT ... ORDER BY")),
]


@pytest.mark.parametrize("sql", LOOK_ALIKES, ids=lambda s: str(s)[:60])
def test_look_alikes_answer_as_raw(sql: str) -> None:
    raw = _runs((sql,), governed=False)
    gov = _runs((sql,), governed=True)
    assert gov == raw and not str(gov[0]).startswith(("[\"refused", "['refused", "Binder", "Parser")), (gov, raw)
