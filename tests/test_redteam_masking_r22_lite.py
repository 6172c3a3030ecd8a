"""Red-team round 22 on SQLite and aiosqlite: two databases that differ only in one customer's secrets (ALICE's
name and e-mail are one character longer than ANNA's); whatever the governed connection shows must be the same for
both.

* **A masked value's storage type showed** (decision 0422). A SQLite column of another affinity than TEXT stores
  each value as the type it converts to: an untyped ``pin`` holds ``1234`` as an integer and ``ab12`` as text, a
  NUMERIC ``pin_code`` ``12`` as an integer and ``12.5`` as a real. ``redact`` answers by the value's type (0, 0.0,
  ``[PASSWORD]``) and a value computed from one answered NULL for a number and the placeholder for text: ``SELECT
  pin`` said whether the PIN was all digits. One type per column now, the placeholder for computed values.
* **A value grown from a masked one fails past a lowered length limit** (decision 0421). SQLite returns no value
  longer than ``SQLITE_LIMIT_LENGTH``, which the application may lower before wrapping (round 21 did: 4,000 bytes).
  ``SELECT hex(full_name)``, ``quote(email)``, ``full_name || 'x'``, ``printf('%s.', full_name)``, ``json_array(
  full_name)`` or ``replace(full_name, ' ', '__')`` came back masked (the placeholder) over one row and failed with
  ``string or blob too big`` over the other: whether the result came back said how long the value was (``hex(
  substr(notes, k))`` measures long notes to the byte, a ``replace()`` counts a letter). Refused alike now where
  the limit is lowered; under SQLite's default limit (1e9 bytes) they run as before, and growth of clear columns
  runs everywhere.

The attempts of this round that were already answered alike (json_each over json_group_array, generated columns,
STRICT and WITHOUT ROWID tables, partial indexes with INDEXED BY, pragma functions, dbstat and sqlite_stat1, RETURNING,
upserts, window frames, collations, changes(), ATTACH, VACUUM INTO, the connection's Python API, recursive CTEs
that walk characters, a fuzz of every built-in function over a masked argument) are kept below as regressions,
with innocent look-alikes whose results must stay exact.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, observe
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, ANNA, _no_clear_value, _sqlite, _sqlite_runs

LENGTH = sqlite3.SQLITE_LIMIT_LENGTH


def _seen(secret: tuple[Any, ...], sql: str, governed: bool, limit: int | None) -> Any:
    """What the attacker sees of ``sql`` on the database holding ``secret``, under the length limit ``limit``."""
    raw = _sqlite(secret)
    if limit is not None:
        raw.setlimit(LENGTH, limit)  # the application's limit, set before wrapping
    conn = govern(raw, ATTACKER) if governed else raw
    try:
        return observe(conn, sql)
    finally:
        conn.close()


# -- finding 1: a value grown from a masked one, past a lowered length limit (decision 0421) ---------------------------

#: each makes a value longer than the masked one it is given: past the limit by how long that value is
GROWN = [
    "SELECT hex(full_name) FROM customers WHERE id = 1",
    "SELECT quote(email) FROM customers WHERE id = 1",
    "SELECT json_quote(full_name) FROM customers WHERE id = 1",
    "SELECT full_name || 'x' FROM customers WHERE id = 1",
    "SELECT 'x' || upper(email) FROM customers WHERE id = 1",
    "SELECT email || email FROM customers WHERE id = 1",
    "SELECT printf('%s.', full_name) FROM customers WHERE id = 1",
    "SELECT format('<%s>', email) FROM customers WHERE id = 1",
    "SELECT json_array(full_name) FROM customers WHERE id = 1",
    "SELECT json_object('n', full_name) FROM customers WHERE id = 1",
    "SELECT replace(full_name, ' ', '__') FROM customers WHERE id = 1",
    "SELECT hex(substr(email, 2)) FROM customers WHERE id = 1",
    "SELECT n FROM (SELECT hex(full_name) AS n FROM customers WHERE id = 1)",
]


def _oracle(sql: str) -> int | None:
    """A length limit under which ``sql`` tells ALICE's row from ANNA's unprotected, or ``None``."""
    for limit in range(12, 48):
        if _seen(ALICE, sql, False, limit) != _seen(ANNA, sql, False, limit):
            return limit
    return None


@pytest.mark.parametrize("sql", GROWN)
def test_a_value_grown_past_a_lowered_limit_tells_no_length(sql: str) -> None:
    """Found in round 22: under some lowered limit each statement failed with ``string or blob too big`` over ALICE's
    row and came back (masked) over ANNA's. Refused alike now, naming the column and the limit (decision 0421)."""
    limit = _oracle(sql)
    assert limit is not None, "the oracle found no limit that tells the rows apart"
    a, b = (_seen(s, sql, True, limit) for s in (ALICE, ANNA))
    assert a == b, (a, b)
    assert isinstance(a, str) and a.startswith("refused: ") and f"SQLITE_LIMIT_LENGTH, {limit}" in a, a
    assert "customers.full_name" in a or "customers.email" in a, a
    _no_clear_value((a, b))


@pytest.mark.parametrize("sql", GROWN)
def test_a_grown_value_under_the_default_limit_runs(sql: str) -> None:
    """Under SQLite's default limit (1e9 bytes) no stored value comes near it: the statements run, masked whole."""
    a, b = (_seen(s, sql, True, None) for s in (ALICE, ANNA))
    assert a == b and not isinstance(a, str), (a, b)
    assert a[1] and all(v is not None and v != "" for row in a[1] for v in row), a
    _no_clear_value(a)


#: under a lowered limit (4,000 bytes, as in round 21), statements that grow no masked value: each runs, with its exact result
SAME_LENGTH = [
    ("SELECT full_name FROM customers WHERE id = 2", [("[PERSON_NAME]",)]),
    ("SELECT upper(full_name), email || '' FROM customers WHERE id = 2", [("[PERSON_NAME]", "[EMAIL]")]),
    ("SELECT printf('%s', ssn) FROM customers WHERE id = 2", [("[US_SSN]",)]),
    ("SELECT replace(phone, '-', '') FROM customers WHERE id = 2", [("[PHONE]",)]),
    ("SELECT hex(city), city || '!', quote(amount) FROM customers WHERE id = 2", [("4C796F6E", "Lyon!", "20.0")]),
    ("SELECT printf('%s-%d', city, id), json_array(city, id) FROM customers WHERE id = 3",
     [("Nice-3", '["Nice",3]')]),
    ("SELECT group_concat(full_name) FROM customers WHERE id <= 2", [("[PERSON_NAME]",)]),
]


@pytest.mark.parametrize(("sql", "rows"), SAME_LENGTH)
def test_no_growth_of_a_masked_value_runs_under_a_lowered_limit(sql: str, rows: list[tuple[Any, ...]]) -> None:
    seen = _seen(ALICE, sql, True, 4000)
    assert not isinstance(seen, str), seen
    assert seen[1] == rows, seen


def test_a_few_bytes_more_run_under_a_large_lowered_limit() -> None:
    """Under a limit of 1 MB a few bytes added to a masked value tell apart only values within them of 1 MB: they
    run (round 5's printf look-alike); a value multiplied (hex) is refused under any lowered limit."""
    added = "SELECT printf('%s <%s>', full_name, email), full_name || '.' FROM customers WHERE id = 2"
    assert _seen(ALICE, added, True, 1_000_000) == (
        ["printf('%s <%s>', full_name, email)", "full_name || '.'"], [("[EMAIL]", "[PERSON_NAME]")]
    )
    grown = _seen(ALICE, "SELECT hex(full_name) FROM customers WHERE id = 2", True, 1_000_000)
    assert isinstance(grown, str) and grown.startswith("refused: ") and "SQLITE_LIMIT_LENGTH, 1000000" in grown


def test_a_grown_value_through_aiosqlite() -> None:
    aiosqlite = pytest.importorskip("aiosqlite")
    from tests.test_redteam_masking_r13_rt13lite import CUSTOMERS, OTHERS

    async def one(secret: tuple[Any, ...], governed: bool, sql: str) -> Any:
        raw = await aiosqlite.connect(":memory:", isolation_level=None)
        await raw.execute(CUSTOMERS)
        await raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", [secret, *OTHERS])
        await raw._execute(raw._conn.setlimit, LENGTH, 21)  # the application's limit, on aiosqlite's thread
        conn = govern(raw, ATTACKER) if governed else raw
        try:
            cur = await conn.execute(sql)
            return [tuple(r) for r in await cur.fetchall()]
        except governed_db.GuardrailViolation as e:
            return f"refused: {e}"
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        finally:
            await conn.close()

    grown = "SELECT hex(full_name) FROM customers WHERE id = 1"  # 22 bytes for ALICE, 20 for ANNA
    raw = [asyncio.run(one(s, False, grown)) for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = (asyncio.run(one(s, True, grown)) for s in (ALICE, ANNA))
    assert a == b and str(a).startswith("refused: ") and "SQLITE_LIMIT_LENGTH, 21" in str(a), (a, b)
    plain = "SELECT full_name, hex(city) FROM customers WHERE id = 2"
    assert [asyncio.run(one(s, True, plain)) for s in (ALICE, ANNA)] == [[("[PERSON_NAME]", "4C796F6E")]] * 2


# -- finding 2: a masked value's storage type in a column of another affinity than TEXT (decision 0422) ---------------

ACCOUNTS = ("CREATE TABLE accounts (id INTEGER PRIMARY KEY, holder TEXT, pin, pin_code NUMERIC, card_number INTEGER, "
            "salary INTEGER, city TEXT)")  # fmt: skip
ACCOUNT_ROWS = [(2, "Bob Jones", "zz99", 7.25, 4000000000000002, 91000, "Lyon"),
                (3, "Carol White", 4321, 8, 4000000000000003, 72000, "Nice")]  # fmt: skip
#: row 1's secrets: an all-digit PIN (stored as an integer) and a whole code, or letters and a fraction (text, real)
DIGITS, LETTERS = (1234, 12, 4111111111111111), ("ab12", 12.5, 4111111111111111)


def _accounts(secret: tuple[Any, ...], sql: str) -> Any:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute(ACCOUNTS)
    pin, code, card = secret
    raw.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(1, "Alice Smith", pin, code, card, 83000, "Paris"), *ACCOUNT_ROWS])  # fmt: skip
    conn = govern(raw, ATTACKER)
    try:
        return observe(conn, sql)
    finally:
        conn.close()


#: each shows a masked value of an untyped (``pin``) or NUMERIC (``pin_code``) column, or one computed from it
TYPED = [
    "SELECT pin FROM accounts WHERE id = 1",
    "SELECT pin_code FROM accounts WHERE id = 1",
    "SELECT * FROM accounts WHERE id = 1",
    "SELECT coalesce(pin, 0) FROM accounts WHERE id = 1",
    "SELECT iif(1, pin, 0), pin_code FROM accounts WHERE id = 1",
    "SELECT (SELECT pin FROM accounts WHERE id = 1)",
    "SELECT a.pin FROM accounts a JOIN accounts b ON b.id = a.id WHERE a.id = 1",
]


@pytest.mark.parametrize("sql", TYPED)
def test_a_masked_value_shows_no_storage_type(sql: str) -> None:
    """Found in round 22: SQLite stores a value of an untyped column as the type it converts to (``1234`` an
    integer, ``ab12`` text) and a NUMERIC one's ``12`` as an integer, ``12.5`` as a real; ``redact`` answered 0, 0.0
    or ``[PASSWORD]`` by that type, and a value computed from it NULL (a number) or the placeholder (text): whether
    the PIN was all digits, or the code whole. One type per column now (decision 0422)."""
    a, b = (_accounts(s, sql) for s in (DIGITS, LETTERS))
    assert repr(a) == repr(b), (a, b)  # repr: 0 == 0.0 in Python, not to the caller
    assert not isinstance(a, str), a
    assert "1234" not in repr(a) and "ab12" not in repr(a) and "12.5" not in repr(a), a


#: look-alikes: typed columns keep their type (a masked INTEGER salary is a number), text columns their strategies
TYPED_ALIKES = [
    ("SELECT salary, city FROM accounts WHERE id = 2", [(90000, "Lyon")]),
    ("SELECT holder, pin, pin_code FROM accounts WHERE id = 3", [("[PERSON_NAME]", "[PASSWORD]", 0)]),
    ("SELECT card_number FROM accounts WHERE id = 2", [("************0002",)]),
    ("SELECT length(holder), upper(holder) FROM accounts WHERE id = 2", [(None, "[PERSON_NAME]")]),
    ("SELECT pin IS NULL, count(*) OVER () FROM accounts WHERE id = 2", [(0, 1)]),
]


@pytest.mark.parametrize(("sql", "rows"), TYPED_ALIKES)
def test_typed_masked_columns_keep_their_answers(sql: str, rows: list[tuple[Any, ...]]) -> None:
    seen = _accounts(DIGITS, sql)
    assert not isinstance(seen, str), seen
    assert seen[1] == rows, seen


# -- regressions: attempts of this round already answered alike ---------------------------------------------------------

_INDEXED = ("CREATE INDEX pi ON customers(id) WHERE ssn LIKE '5%'", "CREATE INDEX ix ON customers(full_name, city)")
_GENERATED = ("ALTER TABLE customers ADD COLUMN initial TEXT AS (substr(full_name, 1, 1))",
              "ALTER TABLE customers ADD COLUMN name_len INT AS (length(full_name))")  # fmt: skip

#: (setup the application ran, statements the attacker runs in order); the last one's result is compared
ALREADY_ALIKE: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    ((), ("SELECT count(*) FROM json_each((SELECT json_group_array(ssn) FROM customers)) WHERE value LIKE '5%'",)),
    ((), ("SELECT j.value FROM customers c, json_each(json_array(c.ssn)) j",)),
    ((), ("SELECT key FROM customers c, json_each('{\"a\":1}', c.email)",)),
    ((), ("SELECT count(*) FROM customers WHERE likelihood(ssn LIKE '5%', 0.5)",)),
    ((), ("SELECT iif(length(full_name) > 10, 'long', 'short') FROM customers WHERE id = 1",)),
    ((), ("SELECT count(*) FILTER (WHERE ssn LIKE '5%') FROM customers",)),
    ((), ("SELECT id, count(*) OVER (ORDER BY ssn GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW EXCLUDE TIES) "
          "FROM customers",)),
    ((), ("SELECT id, nth_value(id, length(full_name)) OVER () FROM customers",)),
    ((), ("SELECT count(*) FROM customers WHERE full_name COLLATE NOCASE > 'alice'",)),
    ((), ("SELECT count(*) FROM customers WHERE full_name > 'B' COLLATE RTRIM",)),
    ((), ("SELECT id, min(full_name) FROM customers",)),
    ((), ("SELECT count(*) FROM (SELECT email FROM customers UNION SELECT 'alice@example.com')",)),
    ((), ("WITH RECURSIVE r(s) AS (SELECT full_name FROM customers WHERE id = 1 UNION SELECT substr(s, 2) FROM r) "
          "SELECT count(*) FROM r",)),
    ((), ("WITH RECURSIVE r(n, s) AS (SELECT 0, full_name FROM customers WHERE id = 1 UNION ALL "
          "SELECT n + 1, substr(s, 2) FROM r WHERE s <> '') SELECT max(n) FROM r",)),
    ((), ("UPDATE customers SET amount = 99 WHERE ssn LIKE '5%'", "SELECT changes(), total_changes()")),
    ((), ("UPDATE customers SET city = city WHERE id = 1 RETURNING ssn",)),
    ((), ("INSERT INTO customers(id, city) VALUES (1, 'x') ON CONFLICT(id) DO UPDATE SET amount = 99 "
          "WHERE excluded.full_name IS NOT customers.full_name", "SELECT amount FROM customers WHERE id = 1")),
    ((), ("CREATE TEMP TABLE c AS SELECT id, ssn FROM customers", "SELECT * FROM temp.c")),
    ((), ("ATTACH ':memory:' AS t2", "SELECT name FROM t2.sqlite_master")),
    ((), ("VACUUM INTO '/nonexistent/copy.db'",)),
    ((), ("SELECT * FROM dbstat",)),
    ((), ("CREATE TEMP TABLE \"Alice Smith\"(a)", "SELECT p.name FROM customers c, pragma_table_info(c.full_name) p")),
    ((), ("CREATE TEMP TABLE x(a)", "CREATE TEMP TRIGGER tt AFTER INSERT ON x BEGIN "
          "INSERT INTO x SELECT length(full_name) FROM 'customers'; END")),
    ((), ("SELECT * FROM customers NATURAL JOIN (SELECT '536-22-8726' AS ssn)",)),
    (_INDEXED, ("SELECT id FROM customers INDEXED BY pi WHERE id = 1",)),
    (_INDEXED, ("SELECT count(*), city FROM customers",)),
    (_INDEXED, ("SELECT * FROM pragma_index_info('ix')",)),
    (_GENERATED, ("SELECT id, initial, name_len FROM customers",)),
    (_GENERATED, ("SELECT count(*) FROM customers WHERE name_len = 11",)),
    (("CREATE TABLE s (id INTEGER PRIMARY KEY, v INTEGER) STRICT",),
     ("INSERT INTO s SELECT id, substr(ssn, 1, 1) FROM customers WHERE id = 1",)),
    (("CREATE TABLE accounts (email TEXT PRIMARY KEY, plan TEXT) WITHOUT ROWID",
      "INSERT INTO accounts SELECT email, 'plan' || id FROM customers"), ("SELECT plan FROM accounts LIMIT 2",)),
    (("CREATE UNIQUE INDEX ue ON customers(email)",),
     ("INSERT OR IGNORE INTO customers(id, email) VALUES (9, 'alice@example.com')", "SELECT count(*) FROM customers")),
]


@pytest.mark.parametrize(("setup", "steps"), ALREADY_ALIKE, ids=lambda v: str(v[-1])[:60] if v else "-")
def test_already_answered_alike(setup: tuple[str, ...], steps: tuple[str, ...]) -> None:
    a, b = _sqlite_runs(steps, setup)
    assert a == b, (a, b)
    _no_clear_value(a[-1])


#: ordinary analytic statements an honest agent writes: each runs with its exact (masked where due) result
INNOCENT = [
    ("SELECT city, count(*), sum(amount) FROM customers GROUP BY city ORDER BY city",
     [("Lyon", 2, 60.0), ("Nice", 1, 30.0), ("Paris", 2, 60.0)]),
    ("SELECT id, sum(amount) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM customers WHERE id <= 3",
     [(1, 10.0), (2, 30.0), (3, 50.0)]),
    ("SELECT iif(amount > 25, 'big', 'small'), typeof(amount) FROM customers WHERE id = 3", [("big", "real")]),
    ("SELECT count(*) FROM customers WHERE unlikely(city = 'Lyon')", [(2,)]),
    ("SELECT instr(city, 'y'), unicode(city), char(76) FROM customers WHERE id = 2", [(2, 76, "L")]),
    ("SELECT printf('%q', city), CAST(amount AS INTEGER) FROM customers WHERE id = 3", [("Nice", 30)]),
    ("SELECT count(*) FROM customers WHERE city = 'paris' COLLATE NOCASE", [(2,)]),
    ("SELECT value FROM json_each((SELECT json_group_array(city) FROM customers WHERE id <= 2))",
     [("Paris",), ("Lyon",)]),
    ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT i FROM n",
     [(1,), (2,), (3,)]),
    ("SELECT id, full_name, email FROM customers WHERE id = 2", [(2, "[PERSON_NAME]", "b***@example.org")]),
]


@pytest.mark.parametrize(("sql", "rows"), INNOCENT, ids=lambda v: str(v)[:50])
def test_honest_queries_run(sql: str, rows: list[tuple[Any, ...]]) -> None:
    a, b = _sqlite_runs((sql,))
    assert a == b, (a, b)
    assert not isinstance(a[0], str), a
    assert a[0][1] == rows, a
