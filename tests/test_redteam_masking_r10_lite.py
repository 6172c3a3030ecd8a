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
