"""Red-team round 19 on SQLite and aiosqlite: two databases that differ only in one customer's secrets (a right and a
wrong guess); whatever the governed connection shows must be the same for both.

* **An application's view that decides its rows on a masked value** (decision 0374). A view's columns take their
  classes from its definition (0262), but what the definition does with a masked value besides computing a column
  was not judged: ``CREATE VIEW v AS SELECT id FROM customers WHERE ssn LIKE '5%'`` answered ``SELECT id FROM v``
  with row 1 over ALICE's copy and no row over ANNA's; a view ordered, grouped, joined or ranked on the SSN handed
  its rows out in the SSNs' order. A view is now judged as the query it is defined by, less the result columns
  that only compute a value (masked whole where read). Found on the way: a view named in another case (``FROM VS``
  for ``vs``) was not found by its definition's lookup, so its columns kept the sample's classes:
  ``upper(full_name) AS who`` came back ``ALICE SMITH`` and ``substr(ssn, 1, 3)`` ``536``, in clear.
* **An application's trigger that reads a masked value when the caller's write fires it** (decision 0375). The
  agent's ``UPDATE customers SET city = 'X' WHERE id = 1`` (a clear column, a key) fired ``AFTER UPDATE ON
  customers WHEN new.ssn LIKE '5%' BEGIN INSERT INTO log ...``: ``total_changes()`` and ``log`` told the guess; a
  ``RAISE(ABORT)`` by the SSN failed the write or not; a trigger on the agent's insert into ``log`` read
  ``customers.ssn``; one copying ``new.ssn`` into ``log`` put ANNA's SSN, which no scan recognises, in clear. A
  trigger on the table written is now a constraint over the masked columns its text names (of that table, on
  INSERT only when it reads the table itself, and of every other table it names).

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
    "SELECT id FROM V_FILTER",
    "SELECT id FROM main.V_Order",
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


def test_a_view_named_in_another_case_is_classified_from_its_definition() -> None:
    """Found in round 19: SQLite's names are case-insensitive, but the view's definition was looked up by the name
    as written: ``FROM V_TAGGED`` found none, and the computed columns came back as the sample classed them — a
    name upper-cased and the SSN's area in clear. The lookup now ignores case (decision 0374)."""
    sql = "SELECT who, area FROM V_TAGGED WHERE id = 1"
    a = _differ_raw_alike_governed((sql,), VIEWS)
    assert a == [(["who", "area"], [("[PERSON_NAME]", "[US_SSN]")])], a


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


# -- finding: an application's trigger reads a masked value when the caller's write fires it (0375) ------------------

TRIGGERS = [
    (("CREATE TABLE log(x)", "CREATE TRIGGER tr AFTER UPDATE ON customers WHEN new.ssn LIKE '5%' "
      "BEGIN INSERT INTO log VALUES (new.id); END"),
     ("UPDATE customers SET city = 'X' WHERE id = 1", "SELECT total_changes()", "SELECT count(*) FROM log")),
    (("CREATE TABLE log(x)", "CREATE TRIGGER tr AFTER UPDATE ON customers BEGIN INSERT INTO log VALUES (new.ssn); END"),
     ("UPDATE customers SET city = 'X' WHERE id = 1", "SELECT x FROM log")),
    (("CREATE TRIGGER tr BEFORE UPDATE ON customers WHEN new.ssn LIKE '5%' BEGIN SELECT RAISE(ABORT, 'no'); END",),
     ("UPDATE customers SET city = 'X' WHERE id = 1", "SELECT city FROM customers WHERE id = 1")),
    (("CREATE TRIGGER tr BEFORE DELETE ON customers WHEN old.ssn LIKE '5%' BEGIN SELECT RAISE(IGNORE); END",),
     ("DELETE FROM customers WHERE id = 1", "SELECT count(*) FROM customers")),
    (("CREATE TABLE log(x)", "CREATE TRIGGER tr AFTER INSERT ON log BEGIN SELECT RAISE(ABORT, 'no') "
      "WHERE (SELECT ssn FROM customers WHERE id = new.x) LIKE '5%'; END"),
     ("INSERT INTO log VALUES (1)", "SELECT count(*) FROM log")),
    (("CREATE TRIGGER tr AFTER INSERT ON customers WHEN (SELECT count(*) FROM customers c WHERE c.ssn LIKE '5%') "
      "BEGIN SELECT RAISE(ABORT, 'no'); END",),
     ("INSERT INTO customers (id, city) VALUES (9, 'Lyon')", "SELECT count(*) FROM customers")),
    (("CREATE TABLE log(x)", "CREATE TRIGGER tr AFTER UPDATE ON customers WHEN new.ssn LIKE '5%' "
      "BEGIN INSERT INTO log VALUES (new.id); END"),
     ("INSERT INTO customers (id, city) VALUES (1, 'X') ON CONFLICT (id) DO UPDATE SET city = 'X'",
      "SELECT count(*) FROM log")),
    (("PRAGMA foreign_keys = ON", "CREATE TABLE regions(id INTEGER PRIMARY KEY)", "INSERT INTO regions VALUES (1)",
      "ALTER TABLE customers ADD COLUMN region_id INT REFERENCES regions(id) ON DELETE CASCADE",
      "UPDATE customers SET region_id = 1 WHERE id = 1", "CREATE TABLE log(x)",
      "CREATE TRIGGER tr AFTER DELETE ON customers WHEN old.ssn LIKE '5%' BEGIN INSERT INTO log VALUES (old.id); END"),
     ("DELETE FROM regions WHERE id = 1", "SELECT count(*) FROM log")),
    (("PRAGMA foreign_keys = ON", "CREATE TABLE regions(id INTEGER PRIMARY KEY)", "INSERT INTO regions VALUES (1)",
      "ALTER TABLE customers ADD COLUMN region_id INT REFERENCES regions(id) ON UPDATE CASCADE",
      "UPDATE customers SET region_id = 1 WHERE id = 1", "CREATE TABLE log(x)",
      "CREATE TRIGGER tr AFTER UPDATE ON customers WHEN new.ssn LIKE '5%' BEGIN INSERT INTO log VALUES (old.id); END"),
     ("UPDATE regions SET id = 2 WHERE id = 1", "SELECT count(*) FROM log")),
]


@pytest.mark.parametrize(("setup", "steps"), TRIGGERS, ids=["when-writes", "copies", "raise-update", "ignore-delete",
                                                              "reads-another-table", "reads-itself-on-insert", "upsert",
                                                              "cascaded-delete", "cascaded-update"])
def test_a_trigger_the_write_fires_reads_no_masked_value(setup: tuple[str, ...], steps: tuple[str, ...]) -> None:
    """Found in round 19: the application's trigger ran on the raw row the agent's allowed write fired it on (or
    read another table's SSN) and told the guess by a row written, a failure or a copy. Each write is now refused
    alike as ``masked-column-constraint``, naming the trigger, and changes nothing (decision 0375)."""
    a = _differ_raw_alike_governed(steps, setup)
    assert str(a[0]).startswith("refused: ") and "masked-column-constraint" in str(a[0]), a
    assert "the trigger tr on" in str(a[0]), a


def test_a_fired_trigger_through_aiosqlite() -> None:
    setup, steps = TRIGGERS[0]
    a, b = _aiosqlite_runs(steps, setup)
    assert a == b, (a, b)
    assert str(a[0]).startswith("refused: ") and "the trigger tr on customers" in str(a[0]), a
    assert a[2] == (["count(*)"], [(0,)]), a


#: the application's everyday triggers: over clear columns, an INSERT's own values, or another table's clear ones
INNOCENT_TRIGGERS = (
    "ALTER TABLE customers ADD COLUMN updated_at INT",
    "CREATE TRIGGER tu AFTER UPDATE OF city, amount ON customers "
    "BEGIN UPDATE customers SET updated_at = 1 WHERE id = new.id; END",
    "CREATE TABLE audit(who, v)",
    "CREATE TRIGGER ti AFTER INSERT ON customers BEGIN INSERT INTO audit VALUES (new.id, new.ssn); END",
    "CREATE TRIGGER tp AFTER UPDATE OF phone ON customers BEGIN INSERT INTO audit VALUES (old.id, old.phone); END",
    "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INT, total REAL)",
    "CREATE TRIGGER tor AFTER INSERT ON orders "
    "BEGIN UPDATE customers SET amount = amount + new.total WHERE id = new.customer_id; END",
)


def test_trigger_look_alikes_run_exactly() -> None:
    """An ``updated_at`` trigger, an audit of an INSERT's own values, a trigger updating a clear total of another
    table: the writes firing them run as on the raw connection; an UPDATE OF the column a trigger copies is
    refused, and the other columns of the row can still be written."""
    steps = (
        "UPDATE customers SET city = 'X' WHERE id = 1",
        "SELECT id, city, updated_at FROM customers WHERE id = 1",
        "INSERT INTO customers (id, full_name, ssn, city) VALUES (9, 'New Person', '123-45-6789', 'Lyon')",
        "SELECT who FROM audit",
        "INSERT INTO orders VALUES (1, 1, 5.0)",
        "SELECT amount FROM customers WHERE id = 1",
        "DELETE FROM customers WHERE id = 2",
        "SELECT count(*) FROM customers",
        "UPDATE customers SET phone = '+1 000' WHERE id = 1",
    )
    raw = _sqlite_runs(steps[:-1], INNOCENT_TRIGGERS, governed=False)
    a, b = _sqlite_runs(steps, INNOCENT_TRIGGERS)
    assert a == b, (a, b)
    assert [x for i, x in enumerate(a[:-1]) if i % 2] == [x for i, x in enumerate(raw[0]) if i % 2], (a, raw)
    assert a[1] == (["id", "city", "updated_at"], [(1, "X", 1)]) and a[5] == (["amount"], [(15.0,)]), a
    assert str(a[-1]).startswith("refused: ") and "the trigger tp on customers" in str(a[-1]), a


def test_a_write_to_a_view_runs_no_instead_of_trigger_on_masked_values() -> None:
    """Found in round 19: the application's ``INSTEAD OF UPDATE`` trigger on a view over ``customers`` changed the
    row only when its SSN matched (``WHERE id = new.id AND ssn LIKE '5%'``): the agent's ``UPDATE cv SET city``
    over clear columns told the guess. A write to a view over a table with masked columns is refused; one over
    clear tables still runs its trigger (decision 0375)."""
    setup = (
        "CREATE VIEW cv AS SELECT id, city FROM customers",
        "CREATE TRIGGER ti INSTEAD OF UPDATE ON cv "
        "BEGIN UPDATE customers SET city = new.city WHERE id = new.id AND ssn LIKE '5%'; END",
        "CREATE TABLE places(id INTEGER PRIMARY KEY, town TEXT)",
        "INSERT INTO places VALUES (1, 'Paris')",
        "CREATE VIEW pv AS SELECT id, town FROM places",
        "CREATE TRIGGER tp INSTEAD OF UPDATE ON pv BEGIN UPDATE places SET town = new.town WHERE id = new.id; END",
    )
    a = _differ_raw_alike_governed(("UPDATE cv SET city = 'X' WHERE id = 1", "SELECT city FROM customers WHERE id = 1"),
                                   setup)  # fmt: skip
    assert str(a[0]).startswith("refused: ") and "the write to view cv" in str(a[0]) and a[1] == (["city"], [("Paris",)])
    a, b = _sqlite_runs(("UPDATE pv SET town = 'X' WHERE id = 1", "SELECT town FROM places WHERE id = 1"), setup)
    assert a == b and a[1] == (["town"], [("X",)]), (a, b)


# -- found reviewing 0374: a view in an attached database; views deeper than masking follows ----------------------

ATTACHED = (
    "ATTACH ':memory:' AS o",
    "CREATE TABLE o.c2 AS SELECT * FROM main.customers",
    "CREATE VIEW o.v AS SELECT id FROM c2 WHERE ssn LIKE '5%'",
)
DEEP = (
    "CREATE VIEW d1 AS SELECT id, city FROM customers WHERE ssn LIKE '5%'",
    "CREATE VIEW d2 AS SELECT * FROM d1",
    "CREATE VIEW d3 AS SELECT * FROM d2",
    "CREATE VIEW d4 AS SELECT * FROM d3",
    "CREATE VIEW d5 AS SELECT id, city FROM d4",
)


@pytest.mark.parametrize(("setup", "sql"), [(ATTACHED, "SELECT id FROM o.v"), (ATTACHED, "SELECT id FROM v"),
                                            (DEEP, "SELECT id FROM d4"), (DEEP, "SELECT a.id FROM d5 a")],
                         ids=["attached", "attached-unqualified", "four-deep", "five-deep"])
def test_a_view_masking_did_not_find_or_follow_is_refused(setup: tuple[str, ...], sql: str) -> None:
    """A view in an attached database was looked up in main's catalog only, so it was read as a table; a view more
    than three views above one filtering on the SSN was read as a table past that depth. Both answered ``[(1,)]``
    over one copy and ``[]`` over the other; now refused alike."""
    a = _differ_raw_alike_governed((sql,), setup)
    assert str(a[0]).startswith("refused: "), a
