"""Red-team round 15 on SQLite, aiosqlite and DuckDB (helper rt15lite): two databases that differ only in one
customer's secrets (a right and a wrong guess); whatever the governed connection shows must be the same for both.
The finding shows the difference on the raw connection, that the governed ones answer alike and leave the data
as it was, and that its innocent look-alikes still write exactly. The routes of this round that already held are
kept below as regressions, each with the raw oracle it closes and innocent look-alikes that must keep running.
"""

from __future__ import annotations

from typing import Any

import pytest

import governed_db
from tests._redteam import govern, observe
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import (
    ALICE,
    ANNA,
    _duck,
    _duck_observe,
    _no_clear_value,
    _sqlite_runs,
)

duckdb = pytest.importorskip("duckdb")

GUESS = ALICE[3]  # the SSN the attacker guesses: right for ALICE's database, wrong for ANNA's


# -- finding: a DuckDB appender that deletes or updates was judged as an INSERT (decision 0309) -------------------

def _appender(conn: Any, how: str) -> None:
    """Buffer one row holding the guessed SSN and flush it with the appender action ``how``."""
    if how == "delete":
        app = conn.appender("customers", action="delete", key=["ssn"])
        app.append_row(GUESS)
    else:
        app = conn.appender("customers", columns=["ssn", "city"], action="update", key=["ssn"])
        app.append_row(GUESS, "HIT")
    app.flush()


def _appended(secret: tuple[Any, ...], how: str, environment: str | None) -> tuple[str, list[Any]]:
    """What the caller sees of the appender (``environment`` None: the raw connection), and the table after it."""
    raw = _duck(secret)
    conn = raw if environment is None else governed_db.wrap(
        raw, identity=ATTACKER, environment=environment, audit=False)
    try:
        _appender(conn, how)
        seen = "flushed"
    except Exception as e:  # GuardrailViolation included: its text is what the caller sees
        seen = f"{type(e).__name__}: {e}"
    after = raw.execute("SELECT count(*), string_agg(city, ',' ORDER BY id) FROM customers").fetchall()
    conn.close()
    return seen, after


@pytest.mark.parametrize("environment", ["staging", "production"])
@pytest.mark.parametrize("how", ["delete", "update"])
def test_an_appender_keyed_on_a_masked_column_picks_no_rows(how: str, environment: str) -> None:
    """Found in round 15: DuckDB 2's ``conn.appender(table, action=..., key=[...])`` buffers rows and, at each
    flush, inserts, upserts, updates or deletes with them; the governed connection judged every appender as
    ``INSERT INTO t SELECT * FROM rows``. Where writes are allowed (``staging``: agents masked, no write-effect
    guard), ``appender('customers', action='delete', key=['ssn'])`` given a guessed SSN deleted exactly the
    customer holding it (``count(*)`` 4 or 5), and ``action='update'`` set that customer's city to ``HIT``: a
    filter on a masked column, which ``DELETE ... WHERE ssn = '...'`` is refused for. The appender is now judged as
    the statement its action amounts to (``DELETE ... USING (VALUES ...) WHERE t.ssn = r.ssn``): refused in every
    environment, and nothing changes."""
    raw = [_appended(s, how, None) for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = (_appended(s, how, environment) for s in (ALICE, ANNA))
    assert a == b, (a, b)
    assert "masked-column-predicate" in a[0] and "customers.ssn" in a[0], a
    assert a[1] == [(5, "Paris,Lyon,Nice,Lyon,Paris")], a  # the database is the ground truth: untouched
    _no_clear_value(a)


def _staging(secret: tuple[Any, ...] = ALICE, setup: tuple[str, ...] = ()) -> tuple[Any, Any]:
    raw = _duck(secret)
    for sql in setup:
        raw.execute(sql)
    return raw, governed_db.wrap(raw, identity=ATTACKER, environment="staging", audit=False)


def test_appenders_of_innocent_keys_still_write() -> None:
    """The innocent look-alikes, where writes are allowed: an appender that inserts, upserts, updates or deletes by
    the primary key (or writes innocent columns only) runs, and the table holds exactly what it wrote."""
    raw, conn = _staging()
    app = conn.appender("customers", columns=["id", "city"])
    app.append_row(8, "Kyiv")
    app.flush()
    app = conn.appender("customers", columns=["id", "city"], action="upsert")
    app.append_rows([(1, "Oslo"), (7, "Bern")])
    app.flush()
    app = conn.appender("customers", columns=["id", "city"], action="update", key=["id"])
    app.append_row(2, "Rome")
    app.flush()
    app = conn.appender("customers", action="delete", key=["id"])
    app.append_row(3)
    app.flush()
    assert raw.execute("SELECT id, city, ssn FROM customers ORDER BY id").fetchall() == [
        (1, "Oslo", ALICE[3]), (2, "Rome", "219-45-1002"), (4, "Lyon", "219-45-1004"), (5, "Paris", "219-45-1005"),
        (7, "Bern", None), (8, "Kyiv", None)]
    conn.close()


def test_appenders_that_test_a_guess_against_a_masked_unique_key_stay_refused() -> None:
    """An appender that inserts or upserts a guessed SSN into a table whose SSNs are a unique key fails, skips or
    replaces a row by what is stored: refused (decision 0165) before and after the change, alike for both
    databases and with the table untouched."""
    seen = []
    for secret in (ALICE, ANNA):
        raw, conn = _staging(secret, ("CREATE UNIQUE INDEX customers_ssn ON customers(ssn)",))
        out = []
        for action in ("insert", "upsert"):
            try:
                app = conn.appender("customers", columns=["id", "ssn"], action=action)
                app.append_row(9, GUESS)
                app.flush()
                out.append("flushed")
            except governed_db.GuardrailViolation as e:
                out.append(str(e))
        out.append(raw.execute("SELECT count(*) FROM customers").fetchall())
        seen.append(out)
        conn.close()
    assert seen[0] == seen[1], seen
    assert all("masked-column-constraint" in s for s in seen[0][:2]) and seen[0][2] == [(5,)], seen


def test_an_appender_action_governed_db_does_not_know_is_refused() -> None:
    """An action governed_db cannot say what it amounts to (a later DuckDB's) is refused, not judged as an
    insert; DuckDB itself also rejects today's unknown names."""
    raw, conn = _staging()
    with pytest.raises(governed_db.GuardrailViolation, match="not an action governed_db knows"):
        conn.appender("customers", action="merge")
    assert raw.execute("SELECT count(*) FROM customers").fetchall() == [(5,)]
    conn.close()


# -- finding: where the policy lets an agent define a trigger, it ran on raw rows (decision 0311) -------------------

#: each defines a trigger over the customers (or the application's view of them) and fires it
TRIGGERS = [
    ("CREATE TEMP TABLE log (v TEXT)",
     "CREATE TEMP TRIGGER tr AFTER UPDATE ON customers BEGIN INSERT INTO log VALUES (new.ssn); END",
     "UPDATE customers SET city = 'X' WHERE id = 1", "SELECT v FROM log"),
    ("CREATE TEMP TABLE log (v TEXT)",
     "CREATE TEMP TRIGGER tr AFTER UPDATE ON customers WHEN new.ssn LIKE '5%' BEGIN INSERT INTO log VALUES ('hit'); "
     "END", "UPDATE customers SET city = 'X' WHERE id = 1", "SELECT v FROM log"),
    ("CREATE TEMP TABLE log (v TEXT)",
     "CREATE TEMP TRIGGER tr AFTER INSERT ON log BEGIN SELECT CASE WHEN (SELECT ssn FROM \"Customers\" WHERE id = 1) "
     "LIKE '5%' THEN RAISE(ABORT, 'x') END; END", "INSERT INTO log VALUES ('a')"),
    # sqlglot keeps a trigger as a command that ends at the first ``;`` of its body: the rest is read too
    ("CREATE TEMP TABLE log (v TEXT)",
     "CREATE TEMP TRIGGER tr AFTER INSERT ON log BEGIN SELECT 1; SELECT CASE WHEN (SELECT ssn FROM customers "
     "WHERE id = 1) LIKE '5%' THEN RAISE(ABORT, 'x') END; END", "INSERT INTO log VALUES ('a')"),
    ("CREATE TEMP TABLE log (v TEXT)",
     "CREATE TEMP TRIGGER tr INSTEAD OF UPDATE ON cv BEGIN INSERT INTO log VALUES (old.code); END",
     "UPDATE cv SET city = 'x' WHERE id = 1", "SELECT v FROM log"),
]
#: the application's view, for the INSTEAD OF trigger
APP_VIEW = ("CREATE VIEW cv AS SELECT id, ssn AS code, city FROM customers",)


def _staged_sqlite(steps: tuple[str, ...], governed: bool = True) -> list[list[Any]]:
    from tests.test_redteam_masking_r13_rt13lite import _sqlite

    out = []
    for secret in (ALICE, ANNA):
        raw = _sqlite(secret, APP_VIEW)
        conn = governed_db.wrap(raw, identity=ATTACKER, environment="staging", audit=False) if governed else raw
        out.append([observe(conn, sql) for sql in steps])
        out[-1].append(raw.execute("SELECT count(*) FROM sqlite_temp_master WHERE type = 'trigger'").fetchall())
        conn.close()
    return out


@pytest.mark.parametrize("steps", TRIGGERS, ids=lambda s: s[1][20:70])
def test_a_trigger_of_the_agents_own_reads_no_masked_value(steps: tuple[str, ...]) -> None:
    """Found in round 15: the ``stored-code`` rule asks for approval in production but only warns in staging, where
    agents are masked too. There ``CREATE TEMP TRIGGER ... AFTER UPDATE ON customers BEGIN INSERT INTO log VALUES
    (new.ssn); END`` and an allowed ``UPDATE ... SET city`` copied the SSN into the agent's own table, whose
    sample found no SSN in ``100-99-0000``: it came back in clear; a ``WHEN new.ssn LIKE '5%'``, a ``RAISE()``
    decided by a subquery, and an INSTEAD OF trigger on the application's view did the same by a guess. A
    trigger that names a table or view with masked columns is now refused (any spelling: quoted, bracketed,
    qualified, as a string), and none is created."""
    raw = _staged_sqlite(steps, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _staged_sqlite(steps)
    assert a == b, (a, b)
    assert "masked-column-copy" in str(a[1]) and "CREATE TRIGGER" in str(a[1]), a
    assert a[-1] == [(0,)], a  # no trigger exists
    _no_clear_value(a)


def test_triggers_over_innocent_tables_still_run_in_staging() -> None:
    """The innocent look-alike: a trigger between two tables of the agent's own is created (with the policy's
    warning) and fires."""
    from tests.test_redteam_masking_r13_rt13lite import _sqlite

    raw = _sqlite(ANNA)
    conn = governed_db.wrap(raw, identity=ATTACKER, environment="staging", audit=False)
    for sql in ("CREATE TEMP TABLE log (v TEXT)", "CREATE TEMP TABLE a (x TEXT)",
                "CREATE TEMP TRIGGER ta AFTER INSERT ON a BEGIN INSERT INTO log VALUES (upper(new.x)); END",
                "INSERT INTO a VALUES ('hello')"):
        conn.execute(sql)
    assert conn.execute("SELECT v FROM log").fetchall() == [("HELLO",)]
    conn.close()


# -- finding: DuckDB's PRAGMA storage_info showed segment min/max where its table function is refused (0310) --------

def test_the_pragma_spelling_of_storage_info_is_refused_as_its_table_function() -> None:
    """Found in round 15: ``SELECT * FROM pragma_storage_info('customers')`` is refused (``system-catalog``:
    each segment's statistics hold its min and max values), but ``PRAGMA storage_info('customers')`` names the
    function ``storage_info`` and was judged a settings write, which staging only warns about: its rows carried
    ``'min': '100-99-0000'`` and ``'min': 'Anna Quinn'`` in clear, and the summed string lengths. The PRAGMA is now
    the table function it calls."""
    steps = ("PRAGMA storage_info('customers')", "pragma   STORAGE_INFO ('customers')")

    def runs(governed: bool) -> list[list[Any]]:
        out = []
        for secret in (ALICE, ANNA):
            raw = _duck(secret)
            conn = governed_db.wrap(raw, identity=ATTACKER, environment="staging", audit=False) if governed else raw
            out.append([_duck_observe(conn, sql) for sql in steps])
            conn.close()
        return out

    raw = runs(False)
    assert raw[0] != raw[1] and "Anna Quinn" in repr(raw[1]), raw  # the oracle, unprotected
    a, b = runs(True)
    assert a == b, (a, b)
    assert all("system-catalog" in str(x) and "pragma_storage_info()" in str(x) for x in a), a
    _no_clear_value(a)
    conn = governed_db.wrap(_duck(ALICE), identity=ATTACKER, environment="staging", audit=False)
    names = _duck_observe(conn, "PRAGMA table_info('customers')")  # the look-alike: names and types only
    assert [r[1] for r in names[1]] == ["id", "full_name", "email", "ssn", "phone", "city", "amount"], names
    conn.close()


# -- routes of this round that held: SQLite --------------------------------------------------------------------------

#: each differs between the two databases on the raw connection; the governed ones must answer alike
SQLITE_HELD = [
    # UPSERT: the excluded row, a DO UPDATE whose SET or WHERE reads a masked column
    ("INSERT INTO customers(id, city) VALUES (1, 'x') ON CONFLICT(id) DO UPDATE SET city = substr(ssn, 1, 1)",
     "SELECT city FROM customers WHERE id = 1"),
    ("INSERT INTO customers(id, city) VALUES (1, 'x') ON CONFLICT(id) DO UPDATE SET city = 'HIT' "
     "WHERE ssn LIKE '5%'", "SELECT city FROM customers WHERE id = 1"),
    ("CREATE TEMP TABLE u (k INT PRIMARY KEY, v TEXT)", "INSERT INTO u VALUES (1, 'x')",
     "INSERT INTO u SELECT id, ssn FROM customers WHERE id = 1 ON CONFLICT(k) DO UPDATE SET v = "
     "substr(excluded.v, 1, 1)", "SELECT v FROM u"),
    # RETURNING a computed masked value, or a subquery over one
    ("INSERT INTO customers(id, full_name) VALUES (9, 'x') RETURNING (SELECT count(*) FROM customers "
     "WHERE ssn LIKE '5%')",),
    # triggers and views of the agent's own
    ("CREATE TEMP TABLE log (v TEXT)", "CREATE TEMP TRIGGER tr AFTER UPDATE ON customers WHEN new.ssn LIKE '5%' "
     "BEGIN INSERT INTO log VALUES ('hit'); END", "UPDATE customers SET city = 'X' WHERE id = 1",
     "SELECT v FROM log"),
    ("CREATE TEMP VIEW v(city, ssn) AS SELECT ssn, city FROM customers", "SELECT count(*) FROM v WHERE city LIKE '5%'"),
    # json_each over a document built from a masked value, GROUPS frames, iif, likelihood
    ("SELECT count(*) FROM customers, json_each(json_array(ssn)) j WHERE j.value LIKE '5%'",),
    ("SELECT id, count(*) OVER (ORDER BY ssn GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM customers "
     "ORDER BY id",),
    ("SELECT iif(ssn LIKE '5%', 1, 0) FROM customers WHERE id = 1",),
    ("SELECT count(*) FROM customers WHERE likelihood(ssn LIKE '5%', 0.5)",),
    # overflow and size errors decided by a masked value
    ("SELECT abs(-9223372036854775807 - (unicode(ssn) = 53)) FROM customers WHERE id = 1",),
    ("SELECT length(zeroblob(unicode(ssn) * 20000000)) FROM customers WHERE id = 1",),
    # SQLite's bare column beside max(): the row holding the greatest SSN
    ("SELECT id, max(ssn) FROM customers",),
    # a temporary table shadowing the application's under the same name
    ("CREATE TEMP TABLE customers (id INTEGER, full_name TEXT, email TEXT, ssn TEXT, phone TEXT, city TEXT, "
     "amount REAL)", "INSERT INTO temp.customers SELECT value, 'n/a', 'n/a', 'n/a', 'n/a', 'x', 0 "
     "FROM generate_series(1, 300)", "SELECT count(*) FROM main.customers WHERE ssn LIKE '5%'"),
]


@pytest.mark.parametrize("steps", SQLITE_HELD, ids=lambda s: s[-1][:60])
def test_sqlite_routes_of_round_15_hold(steps: tuple[str, ...]) -> None:
    """UPSERT's ``excluded`` and DO UPDATE, RETURNING, triggers (which need approval), views with column lists,
    ``json_each``, GROUPS frames, ``iif``/``likelihood``, overflow and size errors, the bare column beside
    ``max()`` and a temporary table shadowing the application's: each told the guess apart on the raw
    connection, none does through the governed one."""
    raw = _sqlite_runs(steps, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _sqlite_runs(steps)
    assert a == b, (a, b)
    _no_clear_value(a)


def test_sqlite_look_alikes_of_round_15_still_run() -> None:
    """The innocent look-alikes: the same features over innocent columns return exact data."""
    steps = (
        "INSERT INTO customers(id, city) VALUES (1, 'x') ON CONFLICT(id) DO UPDATE SET city = excluded.city",
        "SELECT city FROM customers WHERE id = 1",
        "SELECT id, sum(amount) OVER (ORDER BY amount GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM customers "
        "ORDER BY id",
        "SELECT key, value FROM json_each('{\"a\": 1, \"b\": 2}')",
        "SELECT id, iif(amount > 20, 'big', 'small') FROM customers WHERE likelihood(city = 'Lyon', 0.9) ORDER BY id",
        "CREATE TEMP VIEW v(k, town) AS SELECT id, city FROM customers",
        "SELECT k FROM v WHERE town LIKE 'P%' ORDER BY k",
    )
    a, b = _sqlite_runs(steps)
    assert a == b
    assert a[1] == (["city"], [("x",)]), a
    assert a[2][1] == [(1, 10.0), (2, 30.0), (3, 50.0), (4, 70.0), (5, 90.0)], a
    assert a[3][1] == [("a", 1), ("b", 2)] and a[4][1] == [(2, "small"), (4, "big")], a
    assert a[6] == (["k"], [(5,)]), a  # row 1 now lives in "x"


# -- routes of this round that held: DuckDB --------------------------------------------------------------------------

def _duck_runs(steps: tuple[str, ...], governed: bool = True) -> list[list[Any]]:
    out = []
    for secret in (ALICE, ANNA):
        raw = _duck(secret)
        conn = govern(raw, ATTACKER) if governed else raw
        out.append([_duck_observe(conn, sql) for sql in steps])
        conn.close()
    return out


DUCKDB_HELD = [
    # DuckDB 2's Python-style lambdas (``->`` is deprecated there) and list comprehensions
    ("SELECT count(*) FROM customers WHERE len(list_filter([id], lambda x: ssn LIKE '5%')) > 0",),
    ("SELECT list_filter([id], lambda x: ssn LIKE '5%') FROM customers WHERE id = 1",),
    ("SELECT list_reduce([id, 2], lambda a, b: CASE WHEN ssn LIKE '5%' THEN a ELSE b END) FROM customers "
     "WHERE id = 1",),
    ("SELECT [id FOR x IN [1] IF ssn LIKE '5%'] FROM customers WHERE id = 1",),
    ("SELECT count(*) FROM customers WHERE COLUMNS(lambda c: c = 'ssn') LIKE '5%'",),
    # macros of the agent's own, a star renamed under an innocent column's name
    ("CREATE TEMP MACRO m(x, y) AS y", "SELECT count(*) FROM customers WHERE m(id, ssn) LIKE '5%'"),
    ("CREATE TEMP MACRO m(t) AS TABLE FROM query_table(t)",
     "SELECT count(*) FROM m('customers') WHERE ssn LIKE '5%'"),
    ("SELECT count(*) FROM (SELECT * RENAME (ssn AS city, city AS ssn) FROM customers) WHERE city LIKE '5%'",),
    # DuckDB's ``main.`` names a temporary table first: the application's is ``memory.customers``
    ("CREATE TEMP TABLE customers (id INTEGER, full_name TEXT, email TEXT, ssn TEXT, phone TEXT, city TEXT, "
     "amount DOUBLE)", "INSERT INTO temp.customers SELECT i, 'n/a', 'n/a', 'n/a', 'n/a', 'x', 0 "
     "FROM range(1, 300) t(i)", "SELECT count(*) FROM memory.main.customers c WHERE c.ssn LIKE '5%'"),
    # errors decided by a masked value, a session variable, PIVOT and segment statistics
    ("SELECT make_date(2000, unicode(ssn) - 40, 1) FROM customers WHERE id = 1",),
    ("SET VARIABLE v = (SELECT max(full_name) FROM customers WHERE id = 1)", "SELECT getvariable('v') LIKE 'Al%'"),
    ("PIVOT customers ON full_name USING count(*)",),
    ("CHECKPOINT", "SELECT stats FROM pragma_storage_info('customers') WHERE column_name = 'ssn'"),
]


@pytest.mark.parametrize("steps", DUCKDB_HELD, ids=lambda s: s[-1][:60])
def test_duckdb_routes_of_round_15_hold(steps: tuple[str, ...]) -> None:
    """DuckDB 2 lambdas and comprehensions, macros, ``* RENAME``, a temporary table shadowing ``main.customers``,
    error oracles, session variables, PIVOT names and segment statistics: each told the guess apart on the raw
    connection, none does through the governed one."""
    raw = _duck_runs(steps, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _duck_runs(steps)
    assert a == b, (a, b)
    _no_clear_value(a)


def test_duckdb_look_alikes_of_round_15_still_run() -> None:
    """The innocent look-alikes: DuckDB 2 lambdas, comprehensions and ``COLUMNS(lambda ...)`` over innocent
    columns, and a lambda parameter named like a masked column, return exact data."""
    conn = govern(_duck(ALICE), ATTACKER)
    assert _duck_observe(conn, "SELECT list_transform([1, 2, 3], lambda x: x * 2)")[1] == [([2, 4, 6],)]
    assert _duck_observe(conn, "SELECT id, list_filter([city, 'x'], lambda c: c LIKE 'P%') FROM customers "
                               "ORDER BY id")[1] == [(1, ["Paris"]), (2, []), (3, []), (4, []), (5, ["Paris"])]
    assert _duck_observe(conn, "SELECT list_filter([id], lambda ssn: ssn > 0) FROM customers WHERE id = 1")[1] == [
        ([1],)]
    assert _duck_observe(conn, "SELECT [x * 2 FOR x IN [1, 2, 3] IF x > 1]")[1] == [([4, 6],)]
    assert _duck_observe(conn, "SELECT count(*) FROM customers WHERE len(list_filter([city], lambda c: "
                               "c = 'Paris')) > 0")[1] == [(2,)]
    assert _duck_observe(conn, "SELECT COLUMNS(lambda c: c LIKE 'ci%') FROM customers WHERE id = 1") == (
        ["city"], [("Paris",)])
    assert _duck_observe(conn, "SELECT ssn FROM customers WHERE id = 1") == (["ssn"], [("[US_SSN]",)])
    conn.close()


def test_the_sqlite_trace_callback_cannot_interrupt_the_constraint_read() -> None:
    """A trace callback of the caller's that interrupts governed_db's own read of the unique keys (the statement
    it sees starting) leaves them unreadable, and a write of a guessed SSN into the unique key is then refused
    as for an unreadable table: alike for both databases, and no row is written."""
    import re
    import sqlite3

    from tests.test_redteam_masking_r13_rt13lite import _sqlite

    seen = []
    for secret in (ALICE, ANNA):
        raw = _sqlite(secret, ("CREATE UNIQUE INDEX customers_ssn ON customers(ssn)",))
        conn = govern(raw, ATTACKER)

        def trace(sql: str, conn: Any = conn) -> None:
            if re.search(r"pragma_index_list|unique", sql):
                conn.interrupt()

        conn.set_trace_callback(trace)
        out = observe(conn, f"INSERT OR IGNORE INTO customers(id, ssn) VALUES (9, '{GUESS}')")
        conn.set_trace_callback(None)
        seen.append((out, raw.execute("SELECT count(*) FROM customers").fetchall(), conn.total_changes))
        conn.close()
    assert seen[0] == seen[1], seen
    assert "masked-column-constraint" in str(seen[0][0]) and seen[0][1] == [(5,)], seen
    assert isinstance(sqlite3.sqlite_version, str)
