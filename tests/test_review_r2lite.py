"""Review r2lite of decisions 0357, 0358, 0366 and 0367 (SQLite 3.40 and MariaDB): a min()/max() that SQLite answers
by walking an index on a masked column, reached through a derived table, a CTE or an outer aggregate.

Two databases differ only in Alice's (or Anna's) secrets, with an index on ``ssn``; rows 1 and 2 come in SSN order
and ``S`` fails on row 2 only. Whatever the governed connection shows must be the same for both; the raw connection
is the oracle. Innocent look-alikes must answer exactly as the raw connection does.
"""

from __future__ import annotations

import pytest

from tests._redteam import govern, observe
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, ANNA, _no_clear_value, _sqlite, _sqlite_runs
from tests.test_redteam_masking_r17_rt17lite import BOTH, INDEXED, STOPS_AT_ROW_1

S = STOPS_AT_ROW_1
FLATTENED_MIN_MAX = [
    # SQLite flattens the derived table (or CTE) into the outer query, whose lone min() then walks the ssn index
    f"SELECT min(ssn) FROM (SELECT ssn FROM customers WHERE {BOTH} AND {S})",
    f"WITH c AS (SELECT ssn FROM customers WHERE {BOTH} AND {S}) SELECT min(ssn) FROM c",
    f"SELECT max(k) FROM (SELECT ssn AS k FROM customers WHERE {BOTH} AND {S})",
    f"SELECT max(id) FROM (SELECT ssn AS id FROM customers WHERE {BOTH} AND {S})",  # not the key: a renamed ssn
    # an aggregate over outer columns only belongs to the outer query: a lone min(ssn) there
    f"SELECT (SELECT min(ssn)) FROM customers WHERE {BOTH} AND {S}",
]


@pytest.mark.parametrize("sql", FLATTENED_MIN_MAX, ids=lambda s: s[:60])
def test_a_min_max_reached_through_a_flattened_query_tells_no_order(sql: str) -> None:
    """Found in review r2lite: 0357 wrote ``min(+(x))`` only in a select with its own WHERE or join over its own
    tables. Raw: an error over one copy, an answer over the other; governed before the fix: the withheld error over
    Alice's copy and ``[US_SSN]`` over Anna's (the bit). Now both fail (or are refused) alike."""
    raw = _sqlite_runs((sql,), INDEXED, governed=False)
    assert raw[0] != raw[1], raw
    a, b = _sqlite_runs((sql,), INDEXED)
    assert a == b, (a, b)
    _no_clear_value(a)
    assert str(a[0]).startswith(("OperationalError: [withheld", "refused: ")), a


def test_the_database_is_as_it_was_after_the_attempts() -> None:
    for secret in (ALICE, ANNA):
        raw = _sqlite(secret, INDEXED)
        conn = govern(raw, ATTACKER)
        for sql in FLATTENED_MIN_MAX:
            observe(conn, sql)
        assert raw.execute("SELECT * FROM customers WHERE id = 1").fetchone() == secret
        assert raw.execute("SELECT count(*) FROM customers").fetchone() == (5,)
        conn.close()


LOOK_ALIKES = [
    "SELECT min(amount) FROM (SELECT amount FROM customers WHERE city = 'Lyon')",
    "SELECT max(id) FROM (SELECT id FROM customers WHERE city = 'Lyon')",
    "WITH c AS (SELECT amount FROM customers WHERE city = 'Lyon') SELECT min(amount), max(amount) FROM c",
    "SELECT min(amount) FROM (SELECT amount FROM customers WHERE 0)",
    "SELECT min(x) FROM (SELECT NULL AS x FROM customers)",
    "SELECT max(x) FROM (SELECT 3 AS x UNION ALL SELECT 5)",
    "SELECT min(1)",
    "SELECT count(*) FROM (SELECT min(amount) FROM customers WHERE 1)",
    "SELECT min(amount) FILTER (WHERE city = 'Lyon'), max(amount) FROM customers WHERE 1",
    "SELECT id, min(amount) OVER () FROM customers WHERE ssn IS NOT NULL ORDER BY id",
    "SELECT min(amount) FROM customers WHERE amount > 100",
    "SELECT min(t), max(t) FROM (SELECT t FROM nc WHERE id > 0)",
    "SELECT min(t) AS m FROM nc WHERE id > 0",
]
EXTRA = (
    "CREATE TABLE nc (id INTEGER PRIMARY KEY, t TEXT COLLATE NOCASE, ssn TEXT)",
    "CREATE INDEX ix_nc ON nc(ssn)",
    "INSERT INTO nc VALUES (1, 'b', '1'), (2, 'A', '2'), (3, NULL, '3')",
)


@pytest.mark.parametrize("sql", LOOK_ALIKES, ids=lambda s: s[:60])
def test_min_max_look_alikes_answer_as_raw(sql: str) -> None:
    """Names and rows exactly as raw: NULLs, an empty input, a column's own collation (NOCASE: ``A`` before ``b``)."""
    raw = _sqlite(ALICE, INDEXED + EXTRA)
    conn = govern(_sqlite(ALICE, INDEXED + EXTRA), ATTACKER)
    assert observe(conn, sql) == observe(raw, sql)
    conn.close()


@pytest.mark.parametrize("sql", [
    "SELECT (SELECT min(amount)) FROM customers WHERE city = 'Lyon'",
    "SELECT id, (SELECT max(amount)) FROM customers WHERE city = 'Lyon' GROUP BY id ORDER BY id",
])
def test_an_outer_aggregate_in_a_subquery_answers_as_raw(sql: str) -> None:
    """The rows as raw; the column named by an expression holding a subquery shows the edit (as 0346's did)."""
    raw = _sqlite(ALICE, INDEXED)
    conn = govern(_sqlite(ALICE, INDEXED), ATTACKER)
    assert observe(conn, sql)[1] == observe(raw, sql)[1]
    conn.close()
