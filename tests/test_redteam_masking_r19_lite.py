"""Red-team round 19 on SQLite and aiosqlite: two databases that differ only in one customer's secrets (a right and a
wrong guess); whatever the governed connection shows must be the same for both.

* **An application's view that decides its rows on a masked value** (decision 0374). A view's columns take their
  classes from its definition (0262), but what the definition does with a masked value besides computing a column
  was not judged: ``CREATE VIEW v AS SELECT id FROM customers WHERE ssn LIKE '5%'`` answered ``SELECT id FROM v``
  with row 1 over ALICE's copy and no row over ANNA's; a view ordered, grouped, joined or ranked on the SSN handed
  its rows out in the SSNs' order. A view is now judged as the query it is defined by, less the result columns
  that only compute a value (masked whole where read).

The attempts of this round that were already answered alike are kept below as regressions, with innocent
look-alikes whose results must stay exact.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_redteam_masking_r13_rt13lite import _aiosqlite_runs, _no_clear_value, _sqlite_runs

#: the application's index on a masked column
INDEXED = ("CREATE INDEX ix_customers_ssn ON customers(ssn)",)


def _differ_raw_alike_governed(steps: tuple[str, ...], setup: tuple[str, ...] = ()) -> list[Any]:
    raw = _sqlite_runs(steps, setup, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _sqlite_runs(steps, setup)
    assert a == b, (a, b)
    _no_clear_value([x if isinstance(x, str) else x[1] for x in a])
    return a


# -- finding: a view of the application's decides its rows on a masked value (0374) -----------------------------------

#: the application's views (made by the raw connection, as a migration would)
VIEWS = (
    "CREATE VIEW v_filter AS SELECT id, city FROM customers WHERE ssn LIKE '5%'",
    "CREATE VIEW v_order AS SELECT id, city FROM customers ORDER BY ssn",
    "CREATE VIEW v_group AS SELECT substr(ssn, 1, 1) AS d, count(*) AS n FROM customers GROUP BY 1",
    "CREATE VIEW v_join AS SELECT a.id FROM customers a JOIN customers b ON a.ssn < b.ssn",
    "CREATE VIEW v_rank AS SELECT id, rank() OVER (ORDER BY ssn) AS r FROM customers",
    "CREATE VIEW v_sorted_alias AS SELECT id, substr(ssn, 1, 1) AS d FROM customers ORDER BY d",
    "CREATE VIEW v_in AS SELECT id FROM customers WHERE id IN (SELECT id FROM customers WHERE ssn > '3')",
    "CREATE VIEW v_union AS SELECT id FROM customers UNION SELECT substr(ssn, 1, 1) FROM customers",
    "CREATE VIEW v_fails AS SELECT id, abs(ssn) AS a FROM customers",
    "CREATE VIEW v_plain AS SELECT id, full_name, ssn FROM customers WHERE city = 'Paris'",
    "CREATE VIEW v_over AS SELECT id FROM v_plain WHERE ssn > '3'",
    "CREATE VIEW v_tagged AS SELECT id, upper(full_name) AS who, substr(ssn, 1, 3) AS area, ssn LIKE '5%' AS f, "
    "CASE WHEN ssn LIKE '5%' THEN 'a' ELSE 'b' END AS k, city || '/' || email AS ce FROM customers",
    "CREATE VIEW v_city AS SELECT city, count(*) AS n, max(amount) AS top FROM customers GROUP BY city",
    "CREATE VIEW v_pairs AS SELECT a.id, b.full_name FROM customers a JOIN customers b ON b.id = a.id + 1",
    "CREATE VIEW v_amount AS SELECT id, rank() OVER (ORDER BY amount) AS r FROM customers",
)

#: each reads a view whose definition lets the SSN decide the rows, their number or order (or an error)
VIEW_READS = [
    "SELECT id FROM v_filter",
    "SELECT count(*), group_concat(city) FROM v_filter",
    "SELECT id FROM v_order",
    "SELECT id FROM v_order LIMIT 1",
    "SELECT n FROM v_group",
    "SELECT id FROM v_join",
    "SELECT id, r FROM v_rank",
    "SELECT id FROM v_sorted_alias",
    "SELECT id FROM v_in",
    "SELECT * FROM v_union",
    "SELECT a FROM v_fails",
    "SELECT id FROM v_over",
    "SELECT id FROM customers WHERE id IN (SELECT id FROM v_filter)",
    "SELECT 1 WHERE EXISTS (SELECT 1 FROM v_filter)",
    "WITH w AS (SELECT id FROM v_order) SELECT id FROM w",
]


@pytest.mark.parametrize("sql", VIEW_READS)
def test_a_view_is_judged_as_the_query_it_is_defined_by(sql: str) -> None:
    """Found in round 19: the view's own WHERE, ORDER BY, GROUP BY, join, window, UNION or a failing function ran
    on the raw SSN; the governed connection answered as the raw one did. Each is now refused alike, naming the
    view (decision 0374)."""
    a = _differ_raw_alike_governed((sql,), VIEWS)
    assert str(a[0]).startswith("refused: ") and "in the definition of view" in str(a[0]), a


def test_a_view_is_judged_through_aiosqlite() -> None:
    a, b = _aiosqlite_runs(("SELECT id FROM v_filter", "SELECT id FROM v_order", "SELECT id, who FROM v_tagged"),
                           VIEWS)  # fmt: skip
    assert a == b, (a, b)
    assert all(str(x).startswith("refused: ") for x in a[:2]), a
    assert a[2] == (["id", "who"], [(i, "[PERSON_NAME]") for i in range(1, 6)]), a


def test_view_look_alikes_run_exactly() -> None:
    """Views filtered, grouped, joined and ranked on clear columns, and views computing values from masked columns
    (masked whole where read), read as before: the same over both copies, exact where nothing is masked."""
    steps = (
        "SELECT id, ssn FROM v_plain",
        "SELECT * FROM v_city",
        "SELECT * FROM v_pairs",
        "SELECT * FROM v_amount",
        "SELECT id, who, area, f, k, ce FROM v_tagged WHERE id = 1",
        "SELECT p.id, t.area FROM v_plain p JOIN v_tagged t USING (id)",
        "SELECT count(*) FROM (SELECT * FROM v_plain)",
    )
    a, b = _sqlite_runs(steps, VIEWS)
    assert a == b, (a, b)
    _no_clear_value(a)
    assert a[0] == (["id", "ssn"], [(1, "[US_SSN]"), (5, "[US_SSN]")]), a
    assert a[1] == (["city", "n", "top"], [("Lyon", 2, 40.0), ("Nice", 1, 30.0), ("Paris", 2, 50.0)]), a
    assert a[2][1] == [(1, "[PERSON_NAME]"), (2, "[PERSON_NAME]"), (3, "[PERSON_NAME]"), (4, "[PERSON_NAME]")], a
    assert a[3] == (["id", "r"], [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]), a
    assert not isinstance(a[4], str) and a[4][1][0][0] == 1, a
    assert a[5] == (["id", "area"], [(1, "[US_SSN]"), (5, "[US_SSN]")]), a
    assert a[6] == (["count(*)"], [(2,)]), a
