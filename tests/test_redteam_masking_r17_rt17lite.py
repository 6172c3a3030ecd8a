"""Red-team round 17 on SQLite, aiosqlite and DuckDB (helper rt17lite): two databases that differ only in one
customer's secrets (a right and a wrong guess); whatever the governed connection shows must be the same for both.
Each finding shows the difference on the raw connection, that the governed ones answer alike, and that its
innocent look-alikes still run with exact results.

The application's table has an index on ``ssn``. SQLite walks it wherever its planner finds that cheaper (``WHERE
ssn IS NOT NULL``, a covering scan for ``count(*)``), so rows are filtered, computed and changed in the order of the
SSNs: ALICE's ``536-22-8726`` comes after Bob's ``219-45-1002``, ANNA's ``100-99-0000`` before it. An ORDER BY
added to the result does not change the order in which rows are *read*: whatever a statement does row by row shows
it (an agent inserting rows of its own with chosen SSNs turns that into a binary search of the value).
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, observe
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import (
    ALICE,
    ANNA,
    _aiosqlite_runs,
    _duck,
    _duck_observe,
    _no_clear_value,
    _sqlite,
    _sqlite_runs,
)

#: the application's index on a masked column
INDEXED = ("CREATE INDEX ix_customers_ssn ON customers(ssn)",)
#: rows 1 and 2, read in the order of their SSNs
BOTH = "+id IN (1, 2) AND ssn IS NOT NULL"
#: fails one way for row 1 and another for row 2: the error says which row came first
PER_ROW = "CASE id WHEN 1 THEN json('x') WHEN 2 THEN abs(-9223372036854775807 - 1) ELSE 1 END"


def _differ_raw_alike_governed(steps: tuple[str, ...], setup: tuple[str, ...] = INDEXED) -> list[Any]:
    raw = _sqlite_runs(steps, setup, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _sqlite_runs(steps, setup)
    assert a == b, (a, b)
    _no_clear_value(a)
    return a


# -- finding 1: errors a row raises, in the order of an index on a masked column (decision 0346) --------------------

ERRORS_IN_READ_ORDER = [
    f"SELECT count(*) FROM customers WHERE {BOTH} AND {PER_ROW}",
    f"SELECT count(*) FROM customers WHERE ssn IS NOT NULL AND {PER_ROW}",
    f"SELECT max({PER_ROW}) FROM customers WHERE {BOTH}",
    f"SELECT 1 WHERE EXISTS (SELECT 1 FROM customers WHERE ssn IS NOT NULL AND {PER_ROW})",
    f"SELECT (SELECT count(*) FROM customers WHERE ssn IS NOT NULL AND {PER_ROW})",
    # a number, whose length the statement bounds (a value of unbounded length is refused by decision 0405)
    f"UPDATE customers SET city = ({PER_ROW}) + 0 WHERE {BOTH}",
]


@pytest.mark.parametrize("sql", ERRORS_IN_READ_ORDER, ids=lambda s: s[:60])
def test_an_error_raised_in_masked_read_order_is_withheld(sql: str) -> None:
    """Found in round 17: SQLite stops at the first row whose expression fails, and it reads the rows in the order
    of the index on ``ssn``: ``count(*) ... WHERE ssn IS NOT NULL AND CASE id WHEN 1 THEN json('x') WHEN 2 THEN
    abs(<min>) END`` said ``malformed JSON`` when Alice's SSN sorts before Bob's and ``integer overflow`` when it
    sorts after (no ORDER BY governed_db adds changes which row is filtered first). Such errors are now withheld,
    one class and message for all, as on MariaDB (0328) and PostgreSQL (0334)."""
    a = _differ_raw_alike_governed((sql,))
    assert "OperationalError: [withheld" in a[0], a


#: true at row 1, failing at row 2: an EXISTS that stops at its first row fails only when row 2 comes first
STOPS_AT_ROW_1 = "CASE id WHEN 1 THEN 1 WHEN 2 THEN json('x') ELSE 0 END"
EXISTS_IN_READ_ORDER = [
    f"SELECT EXISTS (SELECT 1 FROM customers WHERE {BOTH} AND {STOPS_AT_ROW_1})",
    f"SELECT EXISTS (SELECT 1 FROM customers WHERE {BOTH} AND {STOPS_AT_ROW_1} LIMIT 3)",
    f"SELECT EXISTS (SELECT DISTINCT 1 FROM customers WHERE {BOTH} AND {STOPS_AT_ROW_1})",
    f"SELECT count(*) FROM customers o WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE +c.id IN (1, 2) AND "
    f"c.ssn IS NOT NULL AND o.id = 3 AND {STOPS_AT_ROW_1.replace('id', 'c.id')})",
]


@pytest.mark.parametrize("sql", EXISTS_IN_READ_ORDER, ids=lambda s: s[:60])
def test_an_exists_reads_every_row_before_it_answers(sql: str) -> None:
    """Found in round 17: SQLite stops an EXISTS at its first row and drops any ORDER BY in it, so whether it
    failed at all (row 2 read first) or answered 1 (row 1 first) told the order; withholding the message does not
    hide that. Such an EXISTS is sent with ``GROUP BY NULL`` (one group when a row is found, none otherwise): it
    reads every row, and fails alike."""
    a = _differ_raw_alike_governed((sql,))
    assert "OperationalError: [withheld" in a[0], a


def test_exists_look_alikes_answer_as_raw() -> None:
    """The innocent look-alikes: EXISTS and NOT EXISTS over innocent columns, correlated or not, and one row named
    by its key (sent unchanged), answer as the raw connection does."""
    steps = (
        "SELECT id FROM customers o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.city = o.city AND c.id <> o.id) "
        "ORDER BY id",
        "SELECT id FROM customers o WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.amount > o.amount)",
        "SELECT EXISTS (SELECT 1 FROM customers WHERE amount > 45), EXISTS (SELECT 1 FROM customers WHERE id = 77)",
    )
    raw = _sqlite_runs(steps, INDEXED, governed=False)
    a, b = _sqlite_runs(steps, INDEXED)
    assert a == b and [x[1] for x in a] == [x[1] for x in raw[0]] == [
        [(1,), (2,), (4,), (5,)], [(5,)], [(1, 0)]], a


def test_an_error_raised_in_masked_read_order_is_withheld_on_aiosqlite() -> None:
    """The same through aiosqlite (the statement compiled again on its worker thread)."""
    a, b = _aiosqlite_runs((ERRORS_IN_READ_ORDER[1], "SELECT id, nosuch FROM customers WHERE ssn IS NOT NULL"),
                           INDEXED)
    assert a == b, (a, b)
    assert "OperationalError: [withheld" in a[0] and a[1] == "OperationalError: no such column: nosuch", a


def test_compile_errors_and_errors_outside_masked_order_keep_their_message() -> None:
    """The innocent look-alikes: an error of the text (unknown column or function, a misused aggregate) over the
    indexed table keeps its message, as does a row's error over a table without such an index, or for a statement
    that reads one row by its key; a trace callback does not see governed_db compile the statement again."""
    steps = (
        "SELECT id, nosuch FROM customers WHERE ssn IS NOT NULL",
        "SELECT nosuchfn(id) FROM customers WHERE ssn IS NOT NULL",
        "SELECT id FROM customers WHERE ssn IS NOT NULL GROUP BY id HAVING count(*) > max(count(*))",
        f"SELECT {PER_ROW} FROM customers WHERE id = 1",
    )
    a, b = _sqlite_runs(steps, INDEXED)
    assert a == b == ["OperationalError: no such column: nosuch", "OperationalError: no such function: nosuchfn",
                      "OperationalError: misuse of aggregate function count()", "OperationalError: malformed JSON"], a
    plain = _sqlite_runs((f"SELECT count(*) FROM customers WHERE ssn IS NOT NULL AND {PER_ROW}",))
    assert plain[0] == ["OperationalError: malformed JSON"], plain  # no index on a masked column: rowid order
    conn = govern(_sqlite(ALICE, INDEXED), ATTACKER)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    assert "no such column" in observe(conn, "SELECT id, nosuch FROM customers WHERE ssn IS NOT NULL")
    assert "[withheld" in observe(conn, ERRORS_IN_READ_ORDER[1])
    assert seen == [ERRORS_IN_READ_ORDER[1]], seen  # the failed compile is traced by no one; the EXPLAIN neither
    conn.close()


def test_a_withheld_error_leaves_the_database_as_it_was() -> None:
    """A write that fails in read order changes nothing (the statement's own rollback), whatever its message."""
    for secret in (ALICE, ANNA):
        raw = _sqlite(secret, INDEXED)
        conn = govern(raw, ATTACKER)
        with pytest.raises(sqlite3.OperationalError, match="withheld"):
            conn.execute(ERRORS_IN_READ_ORDER[-1])
        assert raw.execute("SELECT id, city FROM customers ORDER BY id").fetchall() == [
            (1, "Paris"), (2, "Lyon"), (3, "Nice"), (4, "Lyon"), (5, "Paris")]
        conn.close()


# -- finding 2: an UPDATE reads its own changes, row by row in read order (decision 0347) --------------------------

#: a column of the caller's choosing, unique: SQLite checks it as each row changes
CODES = (*INDEXED, "ALTER TABLE customers ADD COLUMN code INT",
         "UPDATE customers SET code = CASE WHEN id > 2 THEN id * 10 ELSE id END",
         "CREATE UNIQUE INDEX ux_customers_code ON customers(code)")

UPDATES_IN_READ_ORDER = [
    (f"UPDATE customers SET amount = -1 - (SELECT count(*) FROM customers c2 WHERE c2.amount < 0 AND "
     f"c2.id <> customers.id) WHERE {BOTH}", INDEXED),
    (f"UPDATE customers AS u SET amount = (SELECT max(amount) FROM customers c2 WHERE c2.id <> u.id) + 1 WHERE {BOTH}",
     INDEXED),
    (f"UPDATE customers SET amount = -1 WHERE {BOTH} AND (SELECT count(*) FROM customers c2 WHERE c2.amount < 0 "
     "AND c2.id <> customers.id) = 0", INDEXED),
    (f"UPDATE customers SET code = code + 1 WHERE {BOTH}", CODES),
]


@pytest.mark.parametrize(("sql", "setup"), UPDATES_IN_READ_ORDER, ids=lambda s: str(s)[:60])
def test_an_update_that_reads_its_own_changes_is_refused(sql: str, setup: tuple[str, ...]) -> None:
    """Found in round 17: SQLite changes an UPDATE's rows one by one in the order it reads them (the ``ssn`` index
    for ``WHERE +id IN (1, 2) AND ssn IS NOT NULL``). A subquery correlated to the row reads the table as the rows
    changed so far left it: ``SET amount = -1 - (SELECT count(*) ... WHERE c2.amount < 0 ...)`` numbered rows 1
    and 2 in SSN order (-2, -1 or -1, -2). A unique index on a written column is checked per row: ``SET code = code
    + 1`` over codes 1 and 2 failed when row 1 came first and passed otherwise. Such writes are refused; the
    database is unchanged."""
    steps = (sql, "SELECT id, amount, code FROM customers ORDER BY id" if "code" in sql
             else "SELECT id, amount FROM customers ORDER BY id")
    a = _differ_raw_alike_governed(steps, setup)
    assert "masked-column-predicate" in a[0] and "one by one" in a[0], a
    assert a[1][1][:2] in ([(1, 10.0), (2, 20.0)], [(1, 10.0, 1), (2, 20.0, 2)]), a  # nothing changed


def test_updates_that_read_nothing_changed_still_run() -> None:
    """The innocent look-alikes: an uncorrelated subquery (run once, before any change), a correlated one pinned
    to one row by its key, a unique column written for one row, and several rows given constants, run as raw."""
    steps = (
        "UPDATE customers SET city = 'X' WHERE id IN (SELECT id FROM customers WHERE amount > 25)",
        "UPDATE customers SET amount = (SELECT max(amount) FROM customers) + 1 WHERE id IN (1, 2)",
        "UPDATE customers SET amount = (SELECT amount FROM customers c2 WHERE c2.id = customers.id) * 2 WHERE id = 4",
        "UPDATE customers SET code = 7 WHERE id = 1",
        "UPDATE customers SET city = 'Y', amount = amount + 1 WHERE id IN (2, 3)",
        "SELECT id, city, amount, code FROM customers ORDER BY id",
    )
    raw = _sqlite_runs(steps, CODES, governed=False)
    a, b = _sqlite_runs(steps, CODES)
    assert a == b and a[-1] == raw[0][-1] == (["id", "city", "amount", "code"], [
        (1, "Paris", 51.0, 7), (2, "Y", 52.0, 2), (3, "Y", 31.0, 30), (4, "X", 80.0, 40), (5, "X", 50.0, 50)]), a


# -- finding 3: the caller's code called row by row in read order (decision 0348) ----------------------------------

def _calls(secret: tuple[Any, ...], sql: str, governed: bool = True, setup: tuple[str, ...] = INDEXED) -> Any:
    """What the caller's function and collation are handed, and what the statement returns."""
    raw = _sqlite(secret, setup)
    conn = govern(raw, ATTACKER) if governed else raw
    calls: list[Any] = []
    conn.create_function("tick", 1, lambda x: calls.append(x) or 1)

    class Count:
        def __init__(self) -> None:
            self.n = 0

        def step(self, value: Any) -> None:
            calls.append(value)

        def finalize(self) -> int:
            return len(calls)

    conn.create_aggregate("seen", 1, Count)
    conn.create_collation("spy", lambda x, y: calls.append((x, y)) or (x > y) - (x < y))
    seen = observe(conn, sql)
    conn.close()
    return seen, calls


#: an index of the application's that covers ``city`` too: a filter on it is read in SSN order
COVERING = ("CREATE INDEX ix_customers_ssn_city ON customers(ssn, city)",)
CALLED_IN_READ_ORDER = [
    ("SELECT count(*) FROM customers WHERE ssn IS NOT NULL AND tick(id)", INDEXED),
    ("SELECT id, tick (id) FROM customers WHERE ssn IS NOT NULL", INDEXED),
    ("SELECT seen(id) FROM customers WHERE ssn IS NOT NULL", INDEXED),
    ("SELECT count(*) FROM customers WHERE ssn IS NOT NULL AND city = 'x' COLLATE spy", COVERING),
]


@pytest.mark.parametrize(("sql", "setup"), CALLED_IN_READ_ORDER, ids=lambda s: str(s)[:60])
def test_the_callers_functions_are_not_called_in_masked_read_order(sql: str, setup: tuple[str, ...]) -> None:
    """Found in round 17: a function registered through the governed connection is the caller's Python code, and
    SQLite calls it row by row in the order it reads: ``tick(id)`` in ``WHERE ssn IS NOT NULL`` was handed
    ``2, 3, 4, 5, 1`` for Alice and ``1, 2, 3, 4, 5`` for Anna (an aggregate's ``step`` likewise, a collation the
    pairs it compares). Such a statement is refused while it reads a table a masked index may order."""
    raw = [_calls(s, sql, governed=False, setup=setup) for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = (_calls(s, sql, setup=setup) for s in (ALICE, ANNA))
    assert a == b, (a, b)
    assert "masked-column-predicate" in a[0] and "registered through this governed connection" in a[0], a
    assert a[1] == [], a  # never called


def test_the_callers_functions_still_run_where_no_masked_order_reaches_them() -> None:
    """The innocent look-alikes: the caller's function over a table without an index on a masked column, over one
    row named by its key, or on constants, runs and is called with exact values; removed, it is forgotten."""
    for sql, setup, rows, calls in [
        ("SELECT count(*) FROM customers WHERE ssn IS NOT NULL AND tick(id)", (), [(5,)], [1, 2, 3, 4, 5]),
        ("SELECT id, tick(id) FROM customers WHERE id = 3", INDEXED, [(3, 1)], [3]),
        ("SELECT tick(2), seen(7)", INDEXED, [(1, 1)], [7, 2]),
        ("SELECT city FROM customers WHERE id IN (1, 2) ORDER BY city COLLATE spy", (), [("Lyon",), ("Paris",)],
         [("Paris", "Lyon")]),
    ]:
        seen, made = _calls(ALICE, sql, setup=setup)
        assert seen[1] == rows and made == calls, (sql, seen, made)
    conn = govern(_sqlite(ALICE, INDEXED), ATTACKER)
    conn.create_function("tick", 1, lambda x: x)
    conn.create_function("tick", 1, None)  # removed: no code of the caller's is called, and masking forgets it
    seen = observe(conn, CALLED_IN_READ_ORDER[0][0])  # (Python's sqlite3 leaves a function that fails when called)
    assert seen.startswith("OperationalError: [withheld") and "registered" not in seen, seen
    conn.close()


def test_the_callers_functions_through_aiosqlite() -> None:
    """The same through aiosqlite's ``create_function``: refused over the indexed table, never called; one row by
    its key runs."""
    aiosqlite = pytest.importorskip("aiosqlite")
    from tests.test_redteam_masking_r13_rt13lite import CUSTOMERS, OTHERS

    async def run() -> tuple[list[Any], list[Any]]:
        raw = await aiosqlite.connect(":memory:", isolation_level=None)
        await raw.execute(CUSTOMERS)
        await raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", [ALICE, *OTHERS])
        await raw.execute(INDEXED[0])
        conn = govern(raw, ATTACKER)
        calls: list[Any] = []
        await conn.create_function("tick", 1, lambda x: calls.append(x) or 1)
        seen: list[Any] = []
        for sql in (CALLED_IN_READ_ORDER[0][0], "SELECT tick(id) FROM customers WHERE id = 2"):
            try:
                seen.append(list(await conn.execute_fetchall(sql)))
            except governed_db.GuardrailViolation as e:
                seen.append(f"refused: {e}")
        await conn.close()
        return seen, calls

    seen, calls = asyncio.run(run())
    assert "registered through this governed connection" in seen[0] and seen[1] == [(1,)], seen
    assert calls == [2], calls


# -- hardening: DuckDB's table sample is the table's rows (decision 0346) -------------------------------------------

def test_duckdb_table_sample_is_refused_as_a_value_function() -> None:
    """``duckdb_table_sample('customers')`` returns the table's reservoir sample under its column names, which
    masking did not trace to the table (``WHERE ssn LIKE '5%'`` over it ran). DuckDB 2.0 returns no rows yet:
    refused now, as ``pragma_storage_info`` is; ``duckdb_tables()`` still answers."""
    conn = govern(_duck(ALICE), ATTACKER)
    seen = _duck_observe(conn, "SELECT count(*) FROM duckdb_table_sample('customers') WHERE ssn LIKE '5%'")
    assert "system-catalog" in seen and "duckdb_table_sample()" in seen, seen
    tables = _duck_observe(conn, "SELECT table_name, estimated_size FROM duckdb_tables()")
    assert tables == (["table_name", "estimated_size"], [("customers", 5)]), tables
    conn.close()


def test_round_17_refusals_name_no_value() -> None:
    """Every refusal and withheld error of this round says what to do, and quotes no value."""
    seen = [observe(govern(_sqlite(s, CODES), ATTACKER), sql) for s in (ALICE, ANNA)
            for sql in (ERRORS_IN_READ_ORDER[0], UPDATES_IN_READ_ORDER[0][0], UPDATES_IN_READ_ORDER[3][0])]
    _no_clear_value(seen)
    assert all("unmask grant" in str(x) for x in seen), seen
