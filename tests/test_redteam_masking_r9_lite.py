"""Red-team round 9 on SQLite, DuckDB and aiosqlite, found with the non-interference harness
(tests/test_masking_noninterference.py): copies A and B of one table differ only in row 1's masked values, whose
masks are byte-identical; a statement the governed connection answers differently for A and B is a leak.

Each finding shows the difference on the raw copies, that the governed copies answer alike, and that the innocent
look-alike still runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.test_masking_noninterference import Pair

KINDS = ["sqlite", "aiosqlite", "duckdb"]
#: text of the date of birth as each database spells it (DuckDB keeps a DATE, SQLite text)
DOB_TEXT = {"sqlite": "date_of_birth", "aiosqlite": "date_of_birth", "duckdb": "CAST(date_of_birth AS VARCHAR)"}


@pytest.fixture(scope="module", params=KINDS)
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    made = Pair(request.param)
    yield made
    made.close()


def _rows(pair: Pair, conn: object, sql: str) -> object:
    return pair._run(conn)(sql)


@pytest.mark.parametrize("guess", ["-04-", "-11-"])
def test_text_derived_from_a_masked_date_is_masked_whatever_its_shape(pair: Pair, guess: str) -> None:
    """``replace(dob, '-04-', 'x')`` is still an ISO date unless the month is April: the masker of a value computed
    from a masked date returned NULL for text shaped like a date and the placeholder for other text, so the shape
    of the result (and through it the month, a trimmed day, ...) reached the caller. Derived text is NULL now."""
    kind = pair.kind
    sql = f"SELECT replace({DOB_TEXT[kind]}, '{guess}', 'x'), trim({DOB_TEXT[kind]}, '0') FROM t WHERE id = 1"
    assert pair.raw_differs([sql])  # A was born in April, B in November: the oracle, unprotected
    a, b = pair.governed([sql])
    assert a == b, (a, b)
    assert a[0][0] == "rows" and "[[(None, None)]" in a[0][1]


def test_a_plain_masked_date_still_comes_back_generalized(pair: Pair) -> None:
    """The innocent look-alike: the column itself keeps its year (generalized), text computed from it comes back
    NULL rather than refused, and clear columns beside it are exact."""
    sql = f"SELECT date_of_birth, substr({DOB_TEXT[pair.kind]}, 1, 4), city FROM t WHERE id = 1"
    a, b = pair.governed([sql])
    assert a == b
    rows = a[0][1]
    assert "1985" in rows and "'Paris'" in rows and "04-12" not in rows, rows
    assert "(None" not in rows.split(",")[0]  # the plain column is not NULLed


def test_text_from_a_date_and_another_masked_column_keeps_the_other_label(pair: Pair) -> None:
    """Text computed from a masked date and a name is redacted as a name (a placeholder, not NULL): only text
    from dates alone is NULL."""
    sql = f"SELECT {DOB_TEXT[pair.kind]} || ' ' || full_name FROM t WHERE id = 1"
    a, b = pair.governed([sql])
    assert a == b and "[PERSON_NAME]" in a[0][1], a
