"""Red-team round 10 on SQLite, DuckDB and aiosqlite: copies A and B of one table differ only in row 1's masked
values, whose masks are byte-identical (tests/test_masking_noninterference.py); a statement the governed
connection answers differently for A and B is a leak.

Each finding shows the difference on the raw copies, that the governed copies answer alike, and that the innocent
look-alike still runs with correct data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from governed_db.masking.messages import scrub_message
from tests.test_masking_noninterference import Pair

#: the largest HUGEINT: a sum that adds anything positive to it overflows
HUGE_MAX = 2**127 - 1


@pytest.fixture(scope="module")
def duck() -> Iterator[Pair]:
    pytest.importorskip("duckdb")
    made = Pair("duckdb")
    yield made
    made.close()


@pytest.mark.parametrize(
    "sql",
    [
        # A's salary is 85000, B's 81000: with 2**127 - 1 - 83000 beside it the sum overflows for A only
        f"SELECT sum(x) FROM (SELECT {HUGE_MAX - 83000}::HUGEINT AS x UNION ALL SELECT salary FROM t WHERE id = 1)",
        # ... and the message quoted the value itself: ``Overflow in HUGEINT addition: <sum> + 85000``
        f"SELECT sum(x) FROM (SELECT {HUGE_MAX}::HUGEINT AS x UNION ALL SELECT salary FROM t WHERE id = 1)",
        f"SELECT sum(q) OVER () FROM (SELECT salary AS q FROM t WHERE id = 1 UNION ALL SELECT {HUGE_MAX}::HUGEINT)",
        f"SELECT avg(x) FROM (SELECT {HUGE_MAX}::HUGEINT AS x UNION ALL SELECT ascii(ssn) FROM t WHERE id = 1)",
        f"SELECT sum(x) FROM (SELECT {HUGE_MAX}::HUGEINT AS x UNION ALL SELECT length(full_name) FROM t WHERE id = 1)",
        f"SELECT sum(x) FROM (SELECT {10**38 - 83000}::DECIMAL(38,0) AS x UNION ALL SELECT salary FROM t WHERE id = 1)",
        f"SELECT sum(coalesce(salary, b.big)) FROM t, (VALUES ({HUGE_MAX - 83000}::HUGEINT)) b(big) WHERE t.id = 1",
    ],
)
def test_a_duckdb_sum_that_can_overflow_is_refused(duck: Pair, sql: str) -> None:
    """DuckDB adds a HUGEINT or a DECIMAL(38) exactly and fails past its range with ``Overflow in HUGEINT
    addition: 170141183460469231731687303715884105727 + 85000``: a masked value UNION ALL a big constant made the
    error say whether it is above a guess, and its text quoted the value (a salary, a name's length, an SSN's
    characters one ``ascii(substr(...))`` at a time). A sum of masked values is refused now unless everything it
    adds is a stored column's own value of a type no sum can overflow, or a count or position."""
    assert duck.raw_differs([sql])  # the oracle, unprotected
    a, b = duck.governed([sql])
    assert a == b, (a, b)
    assert a[0][0] == "refused" and "masked-column-predicate" in a[0][1], a
    assert "85000" not in repr(a) and "Overflow in" not in repr(a)


def test_sums_of_masked_columns_and_of_clear_values_still_run(duck: Pair) -> None:
    """The innocent look-alikes: a sum or average of the masked column itself (per group, per window too), of a
    length, and of a union of masked and clear integer columns come back NULL (derived from a masked value);
    sums of clear columns are exact, and a sum of clear values only is not refused (it fails as DuckDB does)."""
    statements = [
        "SELECT sum(salary), avg(salary), sum(amount), avg(amount) FROM t",
        "SELECT city, sum(salary) FROM t GROUP BY city ORDER BY city",
        "SELECT id, sum(salary) OVER (PARTITION BY city) FROM t ORDER BY id",
        "WITH c AS (SELECT salary FROM t) SELECT sum(salary) FROM c",
        "SELECT sum(length(full_name)) FROM t",
        "SELECT sum(x) FROM (SELECT salary AS x FROM t WHERE id = 1 UNION ALL SELECT amount FROM t)",
        f"SELECT sum(x) FROM (SELECT {HUGE_MAX}::HUGEINT AS x UNION ALL SELECT amount FROM t WHERE id = 1)",
    ]
    a, b = duck.governed(statements)
    assert a == b, (a, b)
    assert a[0][0] == "rows" and "[(None, None, 60, 20.0)]" in a[0][1], a[0]
    assert "('Lyon', None), ('Nice', None), ('Paris', None)" in a[1][1], a[1]
    assert "(1, None), (2, None), (3, None)" in a[2][1], a[2]
    assert all(seen[0] == "rows" and "[(None,)]" in seen[1] for seen in (a[3], a[4], a[5])), a[3:6]
    # a clear sum's overflow still fails as DuckDB fails (its operands blanked: the table has masked columns)
    assert a[6][:2] == ("error", "OutOfRangeException") and "Overflow in HUGEINT addition" in a[6][2], a[6]


def test_overflow_messages_of_masked_statements_quote_no_operands() -> None:
    """Second line of defence: an overflow DuckDB reports while a statement reads masked columns has its operands
    blanked (they are computed from the rows); the rest of the message is kept."""
    for text in (
        f"Out of Range Error: Overflow in HUGEINT addition: {HUGE_MAX} + 85000",
        "Out of Range Error: Overflow in multiplication of INT32 (85000 * 25264)!",
        "Out of Range Error: Overflow in subtraction of INT32 (85000 - -2147483647)!",
        f"Out of Range Error: Overflow in addition of DECIMAL(38) ({10**38 - 1} + 85000);",
    ):
        scrubbed = scrub_message(text, conversions=True)
        assert "85000" not in scrubbed and "[REDACTED]" in scrubbed and "Overflow in" in scrubbed, scrubbed
        assert scrub_message(text) == text  # a statement over clear columns keeps the detail
    kept = "Out of Range Error: Overflow in SUM of DECIMAL: the result does not fit in DECIMAL(38)"
    assert scrub_message(kept, conversions=True) == kept


def _on_one_connection(conn: object, statements: list[str]) -> list[object]:
    """``statements`` run on ``conn`` itself: a DuckDB ``cursor()`` is a connection of its own, where the
    temporary objects of the statements before it do not exist."""
    from tests.test_masking_noninterference import _observe

    def run(sql: str) -> object:
        cur = conn.execute(sql)  # type: ignore[attr-defined]
        return [cur.fetchall() if cur.description else None, [tuple(d[:2]) for d in cur.description or ()]]

    return _observe(run, statements)


@pytest.mark.parametrize(
    "statements",
    [
        # the error quotes the whole value: ``Invalid Input Error: Alice Smith``
        ["CREATE TEMP MACRO lower(x) AS error(x)", "SELECT lower(full_name) FROM t WHERE id = 1"],
        # an error oracle on any comparison
        ["CREATE TEMP MACRO upper(x) AS CASE WHEN x < '5' THEN error('boom') ELSE x END",
         "SELECT upper(ssn) FROM t WHERE id = 1"],
        ["CREATE OR REPLACE TEMP MACRO main.concat(x, y) AS error(x)", "SELECT concat(full_name, 'x') FROM t WHERE id = 1"],
        ["CREATE TEMP FUNCTION md5(x) AS error(x)", "SELECT md5(full_name) FROM t WHERE id = 1"],
    ],
)
@pytest.mark.parametrize("environment", ["production", "staging"])
def test_a_duckdb_macro_may_not_replace_a_function_analysis_knows(statements: list[str], environment: str) -> None:
    """A DuckDB temporary macro takes precedence over the built-in function of its name: analysis read
    ``lower(full_name)`` as the function it knows (masked whole) while the macro ran on the raw value, and its
    error quoted it. A macro may not take a name DuckDB or masking already knows, in any environment (a policy
    that lets stored code through with a warning included); the statement after it runs the built-in."""
    duckdb = pytest.importorskip("duckdb")
    import governed_db
    from tests.test_masking_noninterference import ATTACKER, SECRET_A, SECRET_B, _fill

    seen = []
    for secret, raw_seen in ((SECRET_A, []), (SECRET_B, [])):
        raw = duckdb.connect()
        _fill(raw, secret, "varchar", "?")
        raw_seen.extend(_on_one_connection(raw, statements))
        raw.close()
        raw = duckdb.connect()
        _fill(raw, secret, "varchar", "?")
        gov = governed_db.wrap(raw, identity=ATTACKER, environment=environment, audit=False)
        seen.append((raw_seen, _on_one_connection(gov, statements)))
        gov.close()
    (raw_a, a), (raw_b, b) = seen
    assert raw_a != raw_b  # the oracle, unprotected
    assert a == b, (a, b)
    assert a[0][0] == "refused" and "masked-column-predicate" in a[0][1] and "would replace a function" in a[0][2]
    assert a[1][0] == "rows" and "Alice" not in repr(a) and "536-22" not in repr(a), a


def test_a_duckdb_macro_of_its_own_name_still_runs() -> None:
    """The innocent look-alike: a temporary macro with a name of its own is created (where stored code is let
    through) and runs over clear columns; given a masked column it is refused as a copy, as any unknown function."""
    duckdb = pytest.importorskip("duckdb")
    import governed_db
    from tests.test_masking_noninterference import ATTACKER, SECRET_A, _fill

    raw = duckdb.connect()
    _fill(raw, SECRET_A, "varchar", "?")
    gov = governed_db.wrap(raw, identity=ATTACKER, environment="staging", audit=False)
    seen = _on_one_connection(gov, [
        "CREATE TEMP MACRO shout(x) AS upper(x) || '!'",
        "SELECT shout(city), lower(city) FROM t WHERE id = 1",
        "SELECT shout(full_name) FROM t WHERE id = 1",
    ])
    gov.close()
    assert seen[0][0] == "rows"
    assert seen[1][0] == "rows" and "[('PARIS!', 'paris')]" in seen[1][1], seen[1]
    assert seen[2][0] == "refused" and "masked-column-copy" in seen[2][1], seen[2]


@pytest.mark.parametrize("kind", ["sqlite", "aiosqlite", "duckdb"])
def test_a_temporary_table_may_not_hide_a_stored_one(kind: str) -> None:
    """SQLite reads ``pragma_table_info('t')`` from the temporary table of that name when there is one: after
    ``CREATE TEMP TABLE t (id int, full_name text)`` masking judged ``main.t`` by the temporary table's columns,
    where there is no ``ssn``, and ``WHERE main.t.ssn < '5'`` ran (2 rows for one copy, 3 for the other). A table or
    view may not be created beside one of the same name on the other side of the temporary/stored line."""
    pair = Pair(kind)

    def governed(statements: list[str]) -> tuple[list[object], list[object]]:
        if kind == "duckdb":  # one connection: a DuckDB cursor() would not see the temporary table
            a, b = (_on_one_connection(c, statements) for c in pair.gov)
            return a, b
        return pair.governed(statements)

    try:
        statements = ["CREATE TEMP TABLE t (id int, full_name text)",
                      "SELECT count(*) FROM main.t WHERE main.t.ssn < '5'"]
        a, b = governed(statements)
        assert a == b, (a, b)
        assert a[0][0] == "refused" and "masked-column-predicate" in a[0][1] and "would hide" in a[0][2], a
        assert a[1][0] == "refused" and "masked-column-predicate" in a[1][1], a
        if kind != "duckdb":  # DuckDB reads main.t as the temporary catalog's main.t: no oracle there
            assert pair.raw_differs(statements)
        # the innocent look-alikes: temporary tables and views of their own names, re-created on the same side
        a, b = governed([
            "CREATE TEMP TABLE scratch10 (id int, v text)",
            "CREATE TEMP TABLE IF NOT EXISTS scratch10 (id int, v text)",
            "INSERT INTO scratch10 SELECT id, city FROM t",
            "SELECT v FROM scratch10 ORDER BY id",
        ])
        assert a == b and a[-1][0] == "rows" and "('Paris',), ('Lyon',), ('Nice',)" in a[-1][1], a
    finally:
        pair.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT ssn.upper() FROM t WHERE id = 1",  # B's SSN came back in clear (a scan does not see it as one)
        "SELECT (ssn).upper().lower() FROM t WHERE id = 1",
        "SELECT t.ssn.split('-')[1] FROM t WHERE id = 1",  # the area number, unmasked
        "SELECT ssn.starts_with('5') FROM t WHERE id = 1",  # a comparison, unrefused
        "SELECT count(*) FROM t WHERE full_name.starts_with('A')",
    ],
)
def test_duckdb_function_chaining_is_read_as_the_call_it_is(duck: Pair, sql: str) -> None:
    """DuckDB reads ``ssn.upper()`` as ``upper(ssn)``; the parser read a dot between an identifier and a call of
    ``upper`` with no argument, so analysis saw a function of constants: the value came back unmasked and
    ``ssn.starts_with('5')`` said whether it starts with a 5. The dot is rewritten into the call it is."""
    assert duck.raw_differs([sql])
    a, b = duck.governed([sql])
    assert a == b, (a, b)
    assert "536" not in repr(a) and "100-99" not in repr(a) and "True" not in repr(a), a


def test_duckdb_function_chaining_over_clear_columns_still_runs(duck: Pair) -> None:
    """The innocent look-alikes: chained calls over clear columns and constants are exact, a chained call over a
    masked column is masked (not refused), and a schema-qualified call (``main.lower``) is left alone."""
    a, b = duck.governed([
        "SELECT city.upper(), city.lower().length(), 'abc'.upper(), ssn.upper() FROM t WHERE id = 1",
        "SELECT main.lower(city) FROM t WHERE id = 1",
    ])
    assert a == b, (a, b)
    assert a[0][0] == "rows" and "[('PARIS', 5, 'ABC', '[US_SSN]')]" in a[0][1], a[0]
    assert a[1][0] == "rows" and "[('paris',)]" in a[1][1], a[1]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * LIKE 's%' FROM t WHERE id = 1",  # ssn and salary, in clear
        "SELECT t.* SIMILAR TO 's.*' FROM t WHERE id = 1",
        "SELECT * EXCLUDE (id) GLOB 's*' FROM t WHERE id = 1",
        "SELECT * NOT LIKE 'a%' FROM t WHERE id = 1",
    ],
)
def test_a_duckdb_star_filtered_by_column_name_is_masked(duck: Pair, sql: str) -> None:
    """``SELECT * LIKE 's%'`` is DuckDB's "the columns whose names start with s", each as it is; the parser read a
    comparison of the star (a boolean, masked as nothing), so ``ssn`` and ``salary`` came back in clear. It is read
    as the star now, its columns masked by name."""
    assert duck.raw_differs([sql])
    a, b = duck.governed([sql])
    assert a == b, (a, b)
    assert a[0][0] == "rows" and "536-22" not in a[0][1] and "85000" not in a[0][1], a


def test_a_duckdb_star_filter_over_clear_columns_is_exact(duck: Pair) -> None:
    """The innocent look-alike: the filter keeps clear columns exact, and masked ones masked as their own columns."""
    a, b = duck.governed(["SELECT id, * LIKE 'c%' FROM t ORDER BY id", "SELECT * ILIKE 'S%' FROM t WHERE id = 1"])
    assert a == b
    assert "[(1, 'Paris'), (2, 'Lyon'), (3, 'Nice')]" in a[0][1], a[0]
    assert "[('[US_SSN]', 80000)]" in a[1][1], a[1]  # the salary generalized to its band
