"""Red-team round 18 on SQLite and aiosqlite: two databases that differ only in one customer's secrets (a right and a
wrong guess); whatever the governed connection shows must be the same for both.

* **A scalar subquery outside a SELECT's own expressions** (decision 0367). SQLite answers a scalar subquery with
  the first row it reads, which an index on a masked column may decide: ``+id IN (1, 2) AND ssn IS NOT NULL`` reads
  rows 1 and 2 in the order of their SSNs (ALICE's ``536-22-8726`` after Bob's ``219-45-1002``, ANNA's
  ``100-99-0000`` before it). The order planner gives such a subquery its key order where a SELECT computes it
  (``SELECT (SELECT id FROM customers WHERE ...)``), but not in a write (``INSERT INTO m VALUES ((SELECT id ...))``,
  ``UPDATE m SET x = (SELECT ...)``, a DELETE's WHERE, an upsert's SET) nor in the LIMIT or OFFSET of a set
  operation (``SELECT 1 UNION ALL SELECT 2 LIMIT (SELECT id ...)``): the agent's own table held 2 over one copy and
  1 over the other, and the union answered two rows or one. Those subqueries are now ordered by the key too.

The attempts of this round that were already answered alike are kept below as regressions, with innocent
look-alikes whose results must stay exact.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_redteam_masking_r13_rt13lite import _aiosqlite_runs, _no_clear_value, _sqlite_runs

#: the application's index on a masked column
INDEXED = ("CREATE INDEX ix_customers_ssn ON customers(ssn)",)
#: rows 1 and 2, read in the order of their SSNs
BOTH = "+id IN (1, 2) AND ssn IS NOT NULL"
#: the first of them in that order: 2 over ALICE's copy, 1 over ANNA's
FIRST = f"(SELECT id FROM customers WHERE {BOTH})"


def _differ_raw_alike_governed(steps: tuple[str, ...], setup: tuple[str, ...] = INDEXED) -> list[Any]:
    raw = _sqlite_runs(steps, setup, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _sqlite_runs(steps, setup)
    assert a == b, (a, b)
    _no_clear_value(a)
    return a


# -- finding: a scalar subquery in a write or a set operation's LIMIT answers with the first row read (0367) ---------

#: (steps, what the governed connection then sees last: the first row in key order)
FIRST_ROW_WRITES = [
    (("CREATE TEMP TABLE m(x)", f"INSERT INTO m VALUES ({FIRST})", "SELECT rowid, x FROM m"), [(1, 1)]),
    (("CREATE TEMP TABLE m(x)", f"INSERT INTO m VALUES (7), ({FIRST})", "SELECT rowid, x FROM m"), [(1, 7), (2, 1)]),
    (("CREATE TEMP TABLE m(x)", "INSERT INTO m VALUES (0)", f"UPDATE m SET x = {FIRST} WHERE rowid = 1",
      "SELECT x FROM m"), [(1,)]),
    (("CREATE TEMP TABLE m(x)", "INSERT INTO m VALUES (1), (2)", f"DELETE FROM m WHERE x = {FIRST}",
      "SELECT x FROM m"), [(2,)]),
    (("CREATE TEMP TABLE m(k PRIMARY KEY, x)", "INSERT INTO m VALUES (1, 0)",
      f"INSERT INTO m VALUES (1, 0) ON CONFLICT(k) DO UPDATE SET x = {FIRST}", "SELECT k, x FROM m"),
     [(1, 0)]),  # refused: the upsert's subquery is judged as a WHERE
]


@pytest.mark.parametrize(("steps", "expected"), FIRST_ROW_WRITES, ids=lambda s: str(s)[:70])
def test_a_scalar_subquery_in_a_write_is_read_in_key_order(steps: tuple[str, ...], expected: Any) -> None:
    a = _differ_raw_alike_governed(steps)
    assert a[-1] == ([d for d in a[-1][0]], expected), a


def test_a_scalar_subquery_in_a_set_operations_limit_is_read_in_key_order() -> None:
    sql = f"SELECT 1 UNION ALL SELECT 2 LIMIT {FIRST}"
    a = _differ_raw_alike_governed((sql,))
    assert a == [(["1"], [(1,)])], a


def test_a_scalar_subquery_in_a_write_through_aiosqlite() -> None:
    steps = FIRST_ROW_WRITES[0][0]
    a, b = _aiosqlite_runs(steps, INDEXED)
    assert a == b and a[-1] == (["rowid", "x"], [(1, 1)]), (a, b)


def test_scalar_subquery_look_alikes_run_exactly() -> None:
    """Subqueries that name one row by key, or read a table without such an index, in the same places; and the
    ordered subquery changes nothing where the first row in key order is what the raw connection reads too."""
    steps = (
        "CREATE TEMP TABLE m(x)",
        "INSERT INTO m VALUES ((SELECT city FROM customers WHERE id = 3)), ((SELECT max(amount) FROM customers))",
        "UPDATE m SET x = (SELECT count(*) FROM customers WHERE ssn IS NOT NULL) WHERE rowid = 2",
        "DELETE FROM m WHERE x = (SELECT city FROM customers WHERE id = 3)",
        "SELECT rowid, x FROM m",
        "SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 LIMIT (SELECT count(*) FROM customers WHERE city = 'Lyon')",
        "SELECT id FROM customers ORDER BY id LIMIT 2 OFFSET (SELECT min(id) FROM customers)",
    )
    raw = _sqlite_runs(steps, INDEXED, governed=False)
    a, b = _sqlite_runs(steps, INDEXED)
    assert a == b == raw[0], (a, raw)
    assert a[4:] == [(["rowid", "x"], [(2, 5)]), (["1"], [(1,), (2,)]), (["id"], [(2,), (3,)])], a


# -- attempts of this round that were already answered alike (regressions) -------------------------------------------

#: index-order reads (a join reads ``k`` through the index, covering): each must be ordered, refused or withheld
J = "customers k JOIN customers c ON c.id = k.id WHERE k.ssn IS NOT NULL"
ALREADY_CLOSED = [
    f"SELECT group_concat(DISTINCT c.city) FROM {J}",
    f"SELECT c.city, count(*) FROM {J}",
    f"SELECT json_group_object(c.city, c.id) FROM {J}",
    f"SELECT (SELECT c.city FROM {J})",
    f"SELECT c.id, first_value(c.id) OVER (PARTITION BY c.city) FROM {J}",
    f"SELECT c.id, row_number() OVER (ORDER BY c.city) FROM {J}",
    f"SELECT * FROM (SELECT c.city, c.id FROM {J}) LIMIT 2",
    f"SELECT id FROM customers WHERE {BOTH} ORDER BY 1 = 1 LIMIT 1",
    f"SELECT id FROM customers WHERE {BOTH} ORDER BY (SELECT 1) LIMIT 1",
    f"SELECT id FROM customers ORDER BY id LIMIT 1 OFFSET {FIRST}",
    f"SELECT * FROM (VALUES ({FIRST}))",
    f"WITH w(x) AS (VALUES ({FIRST})) SELECT x FROM w",
    "SELECT printf('%*d', unicode(ssn) * 100000000, 1) FROM customers WHERE id = 1",
    "SELECT instr(ssn, '5'), glob('5*', ssn) FROM customers WHERE id = 1",
    "SELECT value FROM json_each(json_array((SELECT ssn FROM customers WHERE id = 1)))",
    "SELECT atom FROM json_tree((SELECT json_object('s', ssn) FROM customers WHERE id = 1))",
]


@pytest.mark.parametrize("sql", ALREADY_CLOSED, ids=lambda s: s[:60])
def test_attempts_already_answered_alike(sql: str) -> None:
    _differ_raw_alike_governed((sql,))


#: writes whose rows come in index order: each leaves the agent's own table the same over both copies
ALREADY_CLOSED_WRITES = [
    ("CREATE TEMP TABLE m(x)", f"INSERT INTO m SELECT id FROM customers WHERE {BOTH}", "SELECT rowid, x FROM m"),
    (f"CREATE TEMP TABLE m AS SELECT c.id FROM {J}", "SELECT rowid, id FROM m"),
    ("CREATE TEMP TABLE m(k TEXT UNIQUE, v TEXT)", f"INSERT OR IGNORE INTO m SELECT c.city, c.id FROM {J}",
     "SELECT rowid, k, v FROM m ORDER BY k"),
    ("CREATE TEMP TABLE m(k TEXT, v INT CHECK (v <> 1))", f"INSERT OR FAIL INTO m SELECT c.city, c.id FROM {J}",
     "SELECT count(*), changes() FROM m"),
    ("CREATE TEMP TABLE log(x)", "CREATE TEMP TABLE m(x)",
     "CREATE TEMP TRIGGER tr AFTER INSERT ON m BEGIN INSERT INTO log VALUES (new.x); END",
     f"INSERT INTO m SELECT c.id FROM {J}", "SELECT rowid, x FROM log"),
    ("DELETE FROM customers WHERE ssn IS NOT NULL LIMIT 1", "SELECT id FROM customers ORDER BY id"),
]


@pytest.mark.parametrize("steps", ALREADY_CLOSED_WRITES, ids=lambda s: s[-2][:60])
def test_writes_already_answered_alike(steps: tuple[str, ...]) -> None:
    _differ_raw_alike_governed(steps)


def test_sqlite_stmt_shows_no_value() -> None:
    """``sqlite_stmt`` lists the connection's prepared statements (governed_db's catalog reads too) with their step
    counts: the same over both copies, and no clear value in them."""
    steps = ("SELECT max(ssn), upper(full_name) FROM customers", "SELECT sql, nstep, nscan, nsort FROM sqlite_stmt")
    a, b = _sqlite_runs(steps, INDEXED)
    assert a == b, (a, b)
    _no_clear_value(a)

