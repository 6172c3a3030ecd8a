"""Red-team round 20 on SQLite and aiosqlite: two databases that differ only in one customer's secrets (a right and a
wrong guess); whatever the governed connection shows must be the same for both.

* **A converter named in a result column's name runs on a masked value** (decision 0388). On a connection opened
  with ``detect_types=sqlite3.PARSE_COLNAMES`` (as Python's documentation shows), sqlite3 hands each result column
  whose name holds ``[name]`` to the converter registered under that name, with the raw bytes, before masking. The
  name is the statement's own text, so ``SELECT full_name AS "n [date]" FROM customers`` ran Python's own ``date``
  converter on the name: ``ValueError: invalid literal for int() with base 10: b'Alice Smith'``, in clear (an
  unaliased ``email || '[date]'`` too). Such a statement is now refused when it reads a masked column.
* **A converter of a column's declared type quotes a masked value in its error** (decision 0388). With
  ``detect_types=PARSE_DECLTYPES`` a ``date_of_birth DATE`` column holding ``12/04/1985`` failed every read with
  ``invalid literal for int() with base 10: b'12/04/1985'``. An error raised by Python code while a result with
  masked columns is fetched now has its message withheld (its type kept); and a compound SELECT's later branch
  computing a masked value under a first-branch DATE column went through the ``date`` converter (refused).
* **A masked INTEGER PRIMARY KEY is the rowid under a name** (decision 0388). ``SELECT rowid FROM patients``
  returned every SSN in clear, ``WHERE rowid > ...`` decided on it, unordered reads came back in SSN order, an
  INSERT leaving it out told the largest SSN plus one; a foreign key's column (``visits.patient REFERENCES
  patients(ssn)``) and ``sqlite_sequence.seq`` held the same values in clear. ``PRAGMA page_count`` (and
  ``wal_checkpoint``'s frames) after an allowed update told a longer name from a shorter one (refused).
* **An application's trigger reads through views, nested triggers and deep cascades** (decision 0389). A view it
  names was judged by its columns, not its definition's ``WHERE ssn LIKE '5%'``; the triggers its writes fire, and
  a foreign key's cascade two levels down, were not followed.

The attempts of this round that were already answered alike are kept below as regressions, with innocent
look-alikes whose results must stay exact.
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
    CUSTOMERS,
    OTHERS,
    _no_clear_value,
    _sqlite_runs,
)

COLNAMES = sqlite3.PARSE_COLNAMES
DECLTYPES = sqlite3.PARSE_DECLTYPES
#: the application's other tables: a date of birth declared DATE (masked), events with a clear timestamp
PEOPLE = "CREATE TABLE people (id INTEGER PRIMARY KEY, full_name TEXT, date_of_birth DATE, city TEXT)"
EVENTS = "CREATE TABLE events (id INTEGER PRIMARY KEY, created TIMESTAMP, kind TEXT)"
PEOPLE_ROWS = [(2, "Bob Jones", "1990-01-01", "Lyon"), (3, "Carol White", "1970-05-05", "Nice"),
               (4, "Dan Brown", "1980-02-02", "Lyon"), (5, "Eve Black", "1975-03-03", "Paris")]  # fmt: skip
#: row 1's date of birth in each copy: the same year (what the mask keeps), written as the application got it
BIRTHS = ("12/04/1985", "11/30/1985")


def _raw(secret: tuple[Any, ...], birth: str, detect_types: int, setup: tuple[str, ...] = ()) -> sqlite3.Connection:
    raw = sqlite3.connect(":memory:", isolation_level=None, detect_types=detect_types)
    _fill(raw, secret, birth, setup)
    return raw


def _fill(raw: Any, secret: tuple[Any, ...], birth: str, setup: tuple[str, ...]) -> None:
    raw.execute(CUSTOMERS)
    raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", [secret, *OTHERS])
    raw.execute(PEOPLE)
    raw.executemany("INSERT INTO people VALUES (?, ?, ?, ?)", [(1, secret[1], birth, "Paris"), *PEOPLE_ROWS])
    raw.execute(EVENTS)
    raw.executemany("INSERT INTO events VALUES (?, ?, ?)", [(1, "2026-12-07 10:00:00", "a"), (2, "2026-12-08 11:30:00", "b")])
    for sql in setup:
        raw.execute(sql)


def _runs(steps: tuple[str, ...], detect_types: int, governed: bool = True) -> list[list[Any]]:
    """What the attacker sees of ``steps`` on each copy, over a connection that converts by ``detect_types``."""
    out = []
    for secret, birth in zip((ALICE, ANNA), BIRTHS, strict=True):
        raw = _raw(secret, birth, detect_types)
        conn = govern(raw, ATTACKER) if governed else raw
        out.append([observe(conn, sql) for sql in steps])
        conn.close()
    return out


def _aiosqlite_runs(steps: tuple[str, ...], detect_types: int) -> list[list[Any]]:
    aiosqlite = pytest.importorskip("aiosqlite")

    async def one(secret: tuple[Any, ...], birth: str) -> list[Any]:
        raw = await aiosqlite.connect(":memory:", isolation_level=None, detect_types=detect_types)
        await raw.execute(CUSTOMERS)
        await raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", [secret, *OTHERS])
        await raw.execute(PEOPLE)
        await raw.executemany("INSERT INTO people VALUES (?, ?, ?, ?)", [(1, secret[1], birth, "Paris"), *PEOPLE_ROWS])
        conn = govern(raw, ATTACKER)
        seen: list[Any] = []
        for sql in steps:
            try:
                cur = await conn.execute(sql)
                seen.append(([d[0] for d in cur.description or ()], [tuple(r) for r in await cur.fetchall()]))
            except governed_db.GuardrailViolation as e:
                seen.append(f"refused: {e}")
            except Exception as e:
                seen.append(f"{type(e).__name__}: {e}")
        try:
            seen.append(list(await conn.execute_fetchall(steps[0])))
        except governed_db.GuardrailViolation as e:
            seen.append(f"refused: {e}")
        except Exception as e:
            seen.append(f"{type(e).__name__}: {e}")
        await conn.close()
        return seen

    return [asyncio.run(one(secret, birth)) for secret, birth in zip((ALICE, ANNA), BIRTHS, strict=True)]


# -- finding: a converter named in a result column's name runs on a masked value (0388) ------------------------------

#: each names Python's own date/timestamp converter in the name of a result column that reads a masked value
NAMED_CONVERTERS = [
    'SELECT full_name AS "n [date]" FROM customers WHERE id = 1',
    'SELECT upper(full_name) AS "n [date]" FROM customers WHERE id = 1',
    'SELECT full_name "[date]" FROM customers WHERE id = 1',
    "SELECT email || '[date]' FROM customers WHERE id = 1",
    'SELECT id, email AS "e [DATE]" FROM customers WHERE id = 1',
    'SELECT full_name AS "a""b [date] x" FROM customers WHERE id = 1',
    'SELECT * FROM (SELECT full_name AS "n [date]" FROM customers) WHERE 1',
    'WITH w("n [date]") AS (SELECT full_name FROM customers WHERE id = 1) SELECT * FROM w',
    'SELECT replace(full_name, \'Alice Smith\', \'2000-01-01\') AS "d [date]" FROM customers WHERE id = 1',
]


@pytest.mark.parametrize("sql", NAMED_CONVERTERS)
def test_a_converter_named_by_the_statement_is_refused_over_masked_values(sql: str) -> None:
    """Found in round 20: with PARSE_COLNAMES, ``[date]`` in a result column's name (its alias, or its expression as
    written) made sqlite3 run Python's ``date`` converter on the raw value: the name or e-mail came back in a
    ValueError, or whether it failed told a guess. Refused alike, naming the converter (decision 0388)."""
    raw = _runs((sql,), COLNAMES | DECLTYPES, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs((sql,), COLNAMES | DECLTYPES)
    assert a == b, (a, b)
    assert str(a[0]).startswith("refused: ") and "sqlite3 converter [" in str(a[0]), a
    _no_clear_value(a)


def test_a_converter_the_caller_registered_is_refused_over_masked_values() -> None:
    """A converter registered under any name (here one that records what it is handed) is no different: the
    governed statement naming it is refused and the converter never sees a masked value."""
    seen: list[bytes] = []
    sqlite3.register_converter("r20spy", lambda b: seen.append(b) or b.decode())
    try:
        steps = ('SELECT ssn AS "s [r20spy]" FROM customers WHERE id = 1',
                 "SELECT upper([r20SPY]) FROM (SELECT ssn AS r20spy FROM customers) LIMIT 1")  # fmt: skip
        a, b = _runs(steps, COLNAMES)
        assert a == b and all(str(x).startswith("refused: ") for x in a), (a, b)
        assert seen == [], seen
        _runs(steps[:1], COLNAMES, governed=False)
        assert seen and seen[0] in (b"536-22-8726", b"100-99-0000"), seen  # the raw connection hands it over
    finally:
        sqlite3.converters.pop("R20SPY", None)


def test_a_named_converter_is_refused_through_aiosqlite() -> None:
    a, b = _aiosqlite_runs(('SELECT full_name AS "n [date]" FROM customers WHERE id = 1',), COLNAMES)
    assert a == b, (a, b)
    assert all(str(x).startswith("refused: ") and "sqlite3 converter [date]" in str(x) for x in a), a
    _no_clear_value(a)


def test_named_converter_look_alikes_run_exactly() -> None:
    """Converters named over clear columns, brackets that name no converter, and masked columns read without one
    run as before, exact where nothing is masked."""
    from datetime import datetime

    steps = (
        'SELECT id, created AS "c [timestamp]" FROM events ORDER BY id',
        "SELECT [full_name], [city] FROM customers WHERE id = 1",
        'SELECT id, city AS "c [notaconverter]", ssn FROM customers WHERE id = 1',
        "SELECT ssn, email FROM customers WHERE id = 1",
        'SELECT kind AS "k [date]" FROM events WHERE id = 3',
    )
    a, b = _runs(steps, COLNAMES)
    assert a == b, (a, b)
    _no_clear_value(a)
    assert a[0] == (["id", "c"], [(1, datetime(2026, 12, 7, 10, 0)), (2, datetime(2026, 12, 8, 11, 30))]), a
    assert a[1] == (["full_name", "city"], [("[PERSON_NAME]", "Paris")]), a
    assert a[2] == (["id", "c", "ssn"], [(1, "Paris", "[US_SSN]")]), a
    assert a[3][1] == [("[US_SSN]", "a***@example.com")], a
    assert a[4] == (["k"], []), a
    # without PARSE_COLNAMES a bracket is only part of the name: still refused over masked values (the proxy cannot
    # tell how the connection was opened), a clear column keeps its name
    plain = _sqlite_runs(('SELECT full_name AS "n [date]" FROM customers WHERE id = 1',
                          'SELECT city AS "c [date]" FROM customers WHERE id = 1'))  # fmt: skip
    assert plain[0] == plain[1] and str(plain[0][0]).startswith("refused: "), plain
    assert plain[0][1] == (["c [date]"], [("Paris",)]), plain


# -- finding: a converter of a column's declared type quotes a masked value in its error (0388) ---------------------

DECLARED_READS = [
    "SELECT * FROM people",
    "SELECT date_of_birth FROM people WHERE id = 1",
    "SELECT id, date_of_birth FROM people ORDER BY id",
]


@pytest.mark.parametrize("sql", DECLARED_READS)
def test_a_declared_converter_error_is_withheld(sql: str) -> None:
    """Found in round 20: with PARSE_DECLTYPES, Python's ``date`` converter failed on a masked date of birth stored
    as ``12/04/1985`` with ``invalid literal for int() with base 10: b'12/04/1985'``, the value in clear. The error
    keeps its type; its message is withheld (decision 0388)."""
    raw = _runs((sql,), DECLTYPES, governed=False)
    assert raw[0] != raw[1] and BIRTHS[0] in str(raw[0]), raw
    a, b = _runs((sql,), DECLTYPES)
    assert a == b, (a, b)
    assert str(a[0]).startswith("ValueError: ") and "withheld" in str(a[0]), a
    assert not any(x in repr(a) for x in ("12/04", "11/30")), a


COMPOUNDS = [
    "SELECT date_of_birth FROM people WHERE 0 UNION ALL "
    "SELECT replace(full_name, 'Alice Smith', '2000-01-01') FROM customers WHERE id = 1",
    "SELECT date_of_birth FROM people WHERE id = 2 UNION ALL "
    "SELECT replace(ssn, '536-22-8726', '2000-01-01') FROM customers WHERE id = 1",
    "WITH p AS (SELECT date_of_birth AS d FROM people) SELECT d FROM p WHERE 0 UNION ALL "
    "SELECT replace(ssn, '536-22-8726', '2000-01-01') FROM customers WHERE id = 1",
]


@pytest.mark.parametrize("sql", COMPOUNDS)
def test_a_computed_masked_value_under_a_declared_converter_is_refused(sql: str) -> None:
    """Found in round 20: sqlite3 takes a compound SELECT's declared types from its first branch, so with
    PARSE_DECLTYPES a later branch's ``replace(full_name, 'Alice Smith', '2000-01-01')`` went through the ``date``
    converter of ``people.date_of_birth``: a date when the guess was right, a (withheld) error otherwise. Refused
    when a later branch computes a masked value under such a column (decision 0388)."""
    raw = _runs((sql,), DECLTYPES, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs((sql,), DECLTYPES)
    assert a == b, (a, b)
    assert str(a[0]).startswith("refused: ") and "compound SELECT" in str(a[0]), a


def test_compound_look_alikes_run_exactly() -> None:
    """A compound of clear values under a converted column, and a masked column read as stored (its converter's
    error withheld alike), run as before."""
    from datetime import date

    steps = (
        "SELECT date_of_birth FROM people WHERE id = 2 UNION ALL SELECT '2001-02-03'",
        "SELECT date_of_birth FROM people WHERE id = 2 UNION ALL SELECT date_of_birth FROM people WHERE id = 3",
        "SELECT id, city FROM customers WHERE id = 1 UNION ALL SELECT id, city FROM people WHERE id = 2",
    )
    a, b = _runs(steps, DECLTYPES)
    assert a == b, (a, b)
    assert a[0] == (["date_of_birth"], [(date(1990, 1, 1),), (date(2001, 1, 1),)]), a  # masked to its year
    assert a[1] == (["date_of_birth"], [(date(1990, 1, 1),), (date(1970, 1, 1),)]), a
    assert a[2] == (["id", "city"], [(1, "Paris"), (2, "Lyon")]), a


def test_a_declared_converter_error_is_withheld_through_aiosqlite() -> None:
    a, b = _aiosqlite_runs(("SELECT date_of_birth FROM people WHERE id = 1",), DECLTYPES)
    assert a == b, (a, b)
    assert all(str(x).startswith("ValueError: ") and "withheld" in str(x) for x in a), a


def test_declared_converter_look_alikes_run_exactly() -> None:
    """Converted values of clear and masked columns come back as before (a date of birth masked to its year), and
    a converter's error over a result with nothing masked keeps its message."""
    from datetime import date, datetime

    steps = (
        "SELECT id, created FROM events ORDER BY id",
        "SELECT date_of_birth FROM people WHERE id = 2",
        "SELECT id, city FROM people ORDER BY id",
    )
    a, b = _runs(steps, DECLTYPES)
    assert a == b, (a, b)
    assert a[0] == (["id", "created"], [(1, datetime(2026, 12, 7, 10, 0)), (2, datetime(2026, 12, 8, 11, 30))]), a
    assert a[1] == (["date_of_birth"], [(date(1990, 1, 1),)]), a
    assert a[2][1][0] == (1, "Paris"), a
    raw = _raw(ALICE, BIRTHS[0], DECLTYPES, ("INSERT INTO events VALUES (3, 'soon', 'c')",))
    # the message of whatever converter is registered for the column's type now (sqlite3's registry is global: other
    # tests of the process may have replaced the built-in one)
    import sqlite3

    try:
        sqlite3.converters["TIMESTAMP"](b"soon")
    except Exception as e:
        expected = f"{type(e).__name__}: {e}"
    else:  # pragma: no cover - a converter taking "soon" would make this look-alike moot
        pytest.skip("the registered timestamp converter takes 'soon'")
    conn = govern(raw, ATTACKER)
    try:
        assert observe(conn, "SELECT created FROM events WHERE id = 3") == expected
    finally:
        conn.close()


# -- finding: a trigger's nested triggers and the views it names read masked values (0389) ---------------------------

#: (the application's schema, the agent's allowed write, what it reads afterwards)
NESTED = [
    # the trigger the write fires writes a table whose own trigger decides by the SSN
    (("CREATE TABLE log(x)", "CREATE TABLE log2(y)",
      "CREATE TRIGGER tr1 AFTER UPDATE ON customers BEGIN INSERT INTO log VALUES (new.id); END",
      "CREATE TRIGGER tr2 AFTER INSERT ON log WHEN (SELECT ssn FROM customers WHERE id = new.x) LIKE '5%' "
      "BEGIN INSERT INTO log2 VALUES (1); END"),
     "UPDATE customers SET city = 'X' WHERE id = 1", "SELECT count(*), total_changes() FROM log2"),
    # the trigger reads a view whose definition filters on the SSN
    (("CREATE TABLE log(x)", "CREATE VIEW v_five AS SELECT id FROM customers WHERE ssn LIKE '5%'",
      "CREATE TRIGGER tr1 AFTER UPDATE ON customers BEGIN INSERT INTO log SELECT id FROM v_five WHERE id = new.id; END"),
     "UPDATE customers SET city = 'X' WHERE id = 1", "SELECT count(*) FROM log"),
    # ... in its WHEN
    (("CREATE TABLE log(x)", "CREATE VIEW v_five AS SELECT id FROM customers WHERE ssn LIKE '5%'",
      "CREATE TRIGGER tr1 AFTER UPDATE OF city ON customers WHEN new.id IN (SELECT id FROM v_five) "
      "BEGIN INSERT INTO log VALUES (new.id); END"),
     "UPDATE customers SET city = 'X' WHERE id = 1", "SELECT count(*) FROM log"),
    # ... through a view over that view, on the agent's insert into a table with no masked column
    (("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)", "CREATE TABLE log(x)",
      "CREATE VIEW v_five AS SELECT id FROM customers WHERE ssn LIKE '5%'", "CREATE VIEW v_five2 AS SELECT * FROM v_five",
      "CREATE TRIGGER tn AFTER INSERT ON notes BEGIN INSERT INTO log SELECT count(*) FROM v_five2; END"),
     "INSERT INTO notes(body) VALUES ('hi')", "SELECT x FROM log"),
    # the agent's insert into notes fires a trigger that updates customers, whose own trigger decides by the SSN
    (("CREATE TABLE notes(id INTEGER PRIMARY KEY, cid INT, body TEXT)", "CREATE TABLE log(x)",
      "CREATE TRIGGER tn AFTER INSERT ON notes BEGIN UPDATE customers SET city = 'N' WHERE id = new.cid; END",
      "CREATE TRIGGER tc AFTER UPDATE ON customers WHEN new.ssn LIKE '5%' BEGIN INSERT INTO log VALUES (1); END"),
     "INSERT INTO notes(cid, body) VALUES (1, 'hi')", "SELECT count(*) FROM log"),
]


@pytest.mark.parametrize(("setup", "write", "read"), NESTED)
def test_a_trigger_reads_no_masked_value_through_nested_triggers_or_views(
    setup: tuple[str, ...], write: str, read: str
) -> None:
    """Found in round 20: a trigger was judged by the tables its own text names, with the columns it names there
    (decision 0375). A view it named counted by its own columns (``id``), not by its definition's ``WHERE ssn LIKE
    '5%'``; a table it wrote counted, but not that table's triggers, which SQLite runs nested. The agent's update of
    a clear column by key (or insert into a table with no masked column) wrote a row or not by the SSN. A trigger
    now reads what the views it names read, and what the triggers its writes fire read (decision 0389)."""
    raw = _sqlite_runs((write, read), setup, governed=False)
    assert raw[0][1] != raw[1][1], raw  # the oracle, unprotected
    a, b = _sqlite_runs((write, read), setup)
    assert a == b, (a, b)
    assert str(a[0]).startswith("refused: ") and "masked-column-constraint" in str(a[0]), a
    assert "customers.ssn" in str(a[0]), a


def test_a_nested_trigger_is_judged_through_aiosqlite() -> None:
    from tests.test_redteam_masking_r13_rt13lite import _aiosqlite_runs as runs

    setup, write, read = NESTED[4]
    a, b = runs((write, read), setup)
    assert a == b, (a, b)
    assert str(a[0]).startswith("refused: ") and "customers.ssn" in str(a[0]), a


def test_nested_trigger_look_alikes_run_exactly() -> None:
    """Triggers whose chains and views stay on clear columns run as the raw connection runs them: the agent's update
    and insert go through, and every trigger of the chain writes its row."""
    setup = (
        "CREATE TABLE log(x)", "CREATE TABLE log2(y)",
        "CREATE VIEW v_city AS SELECT id, city FROM customers",
        "CREATE VIEW v_city2 AS SELECT * FROM v_city WHERE city <> 'Nowhere'",
        "CREATE TRIGGER tr1 AFTER UPDATE ON customers BEGIN INSERT INTO log VALUES (new.id); END",
        "CREATE TRIGGER tr2 AFTER INSERT ON log BEGIN INSERT INTO log2 SELECT count(*) FROM v_city2 "
        "WHERE city = 'Paris'; END",
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, cid INT, body TEXT)",
        "CREATE TRIGGER tn AFTER INSERT ON notes BEGIN UPDATE customers SET city = 'N' WHERE id = new.cid; END",
    )
    steps = ("UPDATE customers SET city = 'X' WHERE id = 1", "INSERT INTO notes(cid, body) VALUES (2, 'hi')",
             "SELECT x FROM log ORDER BY rowid", "SELECT y FROM log2 ORDER BY rowid",
             "SELECT id, city FROM customers WHERE id IN (1, 2) ORDER BY id")  # fmt: skip
    raw = _sqlite_runs(steps, setup, governed=False)
    a, b = _sqlite_runs(steps, setup)
    assert a == b == raw[0], (a, b, raw)
    assert a[2:] == [(["x"], [(1,), (2,)]), (["y"], [(1,), (1,)]), (["id", "city"], [(1, "X"), (2, "N")])], a


#: regions -> districts -> customers, each deleted with its parent; customers' trigger decides by the SSN
CASCADES = (
    "PRAGMA foreign_keys = ON",
    "CREATE TABLE regions(id INTEGER PRIMARY KEY, name TEXT)",
    "INSERT INTO regions VALUES (1, 'North'), (2, 'South'), (3, 'East'), (4, 'West'), (5, 'Centre')",
    "CREATE TABLE districts(id INTEGER PRIMARY KEY, region_id INT REFERENCES regions(id) ON DELETE CASCADE)",
    "INSERT INTO districts VALUES (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)",
    "ALTER TABLE customers ADD COLUMN district_id INT REFERENCES districts(id) ON DELETE CASCADE",
    "UPDATE customers SET district_id = id",
    "CREATE TABLE notes(id INTEGER PRIMARY KEY, district_ref INT, body TEXT)",
    "INSERT INTO notes VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c'), (4, 4, 'd'), (5, 5, 'e')",
    "CREATE TRIGGER tn AFTER DELETE ON notes BEGIN DELETE FROM districts WHERE id = old.district_ref; END",
    "CREATE TABLE log(x)",
)
WATCHING = ("CREATE TRIGGER tr AFTER DELETE ON customers WHEN old.ssn LIKE '5%' "
            "BEGIN INSERT INTO log VALUES (old.id); END",)  # fmt: skip


@pytest.mark.parametrize("write", ["DELETE FROM regions WHERE id = 1", "DELETE FROM notes WHERE id = 1"])
def test_a_cascade_deeper_than_one_level_fires_no_trigger_on_masked_values(write: str) -> None:
    """Found in round 20 (left open in round 19): a grandchild's cascade was not followed. Deleting region 1 deleted
    district 1, which deleted customer 1 and fired its ``WHEN old.ssn LIKE '5%'`` trigger; so did a trigger on
    ``notes`` deleting a district. The cascade is now followed at any depth, from the agent's write and from a
    trigger's writes (decision 0389)."""
    steps = (write, "SELECT count(*) FROM log")
    raw = _sqlite_runs(steps, CASCADES + WATCHING, governed=False)
    assert raw[0][1] != raw[1][1], raw  # the oracle, unprotected
    a, b = _sqlite_runs(steps, CASCADES + WATCHING)
    assert a == b, (a, b)
    assert str(a[0]).startswith("refused: ") and "customers.ssn" in str(a[0]), a


def test_deep_cascade_look_alikes_run_exactly() -> None:
    """The same cascades with a trigger that reads only clear columns delete as the raw connection deletes."""
    setup = (*CASCADES, "CREATE TRIGGER tr AFTER DELETE ON customers BEGIN INSERT INTO log VALUES (old.id); END")
    steps = ("DELETE FROM regions WHERE id = 1", "DELETE FROM notes WHERE id = 2", "SELECT x FROM log ORDER BY x",
             "SELECT id FROM customers ORDER BY id")  # fmt: skip
    raw = _sqlite_runs(steps, setup, governed=False)
    a, b = _sqlite_runs(steps, setup)
    assert a == b == raw[0], (a, b, raw)
    assert a[2:] == [(["x"], [(1,), (2,)]), (["id"], [(3,), (4,), (5,)])], a


# -- finding: a masked INTEGER PRIMARY KEY is the rowid under a name (0388) -----------------------------------------

#: the application keeps each patient under their SSN as an integer key: SQLite's rowid under another name
PATIENTS = (
    "CREATE TABLE patients(ssn INTEGER PRIMARY KEY, full_name TEXT, city TEXT)",
    "INSERT INTO patients SELECT CAST(replace(ssn, '-', '') AS INTEGER), full_name, city FROM customers",
)
ROWID_READS = [
    "SELECT rowid, city FROM patients",
    "SELECT oid FROM patients",
    "SELECT p._rowid_ FROM patients p",
    "SELECT max(rowid) FROM patients",
    "SELECT city FROM patients WHERE rowid > 500000000",
    "SELECT city FROM patients ORDER BY rowid LIMIT 1",
    "SELECT city FROM patients",
    "SELECT city FROM patients LIMIT 1",
    "SELECT city, row_number() OVER () FROM patients",
    "SELECT p.city FROM patients p JOIN patients q ON p.rowid = q.rowid",
]


@pytest.mark.parametrize("sql", ROWID_READS)
def test_a_masked_integer_primary_key_is_read_as_the_rowid_it_is(sql: str) -> None:
    """Found in round 20: an ``INTEGER PRIMARY KEY`` is the table's rowid under a name, and masking knew it only by
    its name: ``SELECT rowid FROM patients`` returned every SSN in clear (``oid``, ``_rowid_`` too), ``WHERE rowid >
    500000000`` filtered on it, and every read without ORDER BY came back in SSN order, the order SQLite stores the
    rows in (which ``rowid`` was taken to be a clear key for). ``rowid`` now reads the alias column, and the table
    is ordered by it as by an index on it (decision 0388)."""
    a = _differ_raw_alike(sql)
    _no_clear_value(a)
    assert not any(s in repr(a) for s in ("536228726", "100990000")), a


def _differ_raw_alike(sql: str) -> list[Any]:
    raw = _sqlite_runs((sql,), PATIENTS, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _sqlite_runs((sql,), PATIENTS)
    assert a == b, (a, b)
    return a


def test_an_insert_that_leaves_a_masked_rowid_alias_out_is_refused() -> None:
    """Found in round 20: an INSERT leaving the alias out gives the new row the largest stored SSN plus one, which
    ``last_insert_rowid()`` (and ``cursor.lastrowid``) handed back. The alias is now a column such an INSERT gives a
    value to, of a unique key: refused (decision 0388)."""
    steps = ("INSERT INTO patients(full_name, city) VALUES ('New Person', 'Lyon')", "SELECT last_insert_rowid()")
    raw = _sqlite_runs(steps, PATIENTS, governed=False)
    assert raw[0][1] != raw[1][1], raw
    a, b = _sqlite_runs(steps, PATIENTS)
    assert a == b, (a, b)
    assert str(a[0]).startswith("refused: ") and "patients.ssn" in str(a[0]), a


def test_a_masked_rowid_alias_through_aiosqlite() -> None:
    from tests.test_redteam_masking_r13_rt13lite import _aiosqlite_runs as runs

    a, b = runs(("SELECT rowid, city FROM patients", "SELECT city FROM patients WHERE rowid > 500000000"), PATIENTS)
    assert a == b, (a, b)
    assert a[0][1][0][0] != 219451002 and not any(s in repr(a) for s in ("536228726", "100990000")), a
    assert str(a[1]).startswith("refused: "), a


def test_rowid_look_alikes_run_exactly() -> None:
    """A clear INTEGER PRIMARY KEY (``customers.id``) and the rowid of a table without one read, filter, sort and
    insert as before; ``INTEGER PRIMARY KEY DESC`` is no alias, and neither is a key declared ``INT``."""
    setup = (*PATIENTS, "CREATE TABLE tags(label TEXT, n INT)", "INSERT INTO tags VALUES ('a', 1), ('b', 2)",
             "CREATE TABLE cards(num INT PRIMARY KEY, city TEXT)",
             "INSERT INTO cards VALUES (536228726, 'Paris'), (219451002, 'Lyon')")  # fmt: skip
    steps = (
        "SELECT rowid, id, city FROM customers WHERE rowid > 3 ORDER BY rowid",
        "SELECT max(oid) FROM customers",
        "INSERT INTO customers(full_name, city) VALUES ('New Person', 'Lyon')",
        "SELECT last_insert_rowid()",
        "SELECT rowid, label FROM tags ORDER BY rowid DESC",
        "SELECT rowid, city FROM cards ORDER BY rowid",
        "SELECT count(*) FROM patients WHERE city = 'Paris'",
    )
    raw = _sqlite_runs(steps, setup, governed=False)
    a, b = _sqlite_runs(steps, setup)
    assert a == b, (a, b)
    assert [x for i, x in enumerate(a) if i != 2] == [x for i, x in enumerate(raw[0]) if i != 2], (a, raw)
    assert a[0] == (["id", "id", "city"], [(4, 4, "Lyon"), (5, 5, "Paris")]), a
    assert a[3] == (["last_insert_rowid()"], [(6,)]), a
    assert a[5] == (["rowid", "city"], [(1, "Paris"), (2, "Lyon")]), a


#: the patients' visits keyed by the patient's SSN, and an AUTOINCREMENT key counted in sqlite_sequence
KEYED = (
    "CREATE TABLE patients(ssn INTEGER PRIMARY KEY AUTOINCREMENT, full_name TEXT, city TEXT)",
    "INSERT INTO patients SELECT CAST(replace(ssn, '-', '') AS INTEGER), full_name, city FROM customers",
    "CREATE TABLE visits(id INTEGER PRIMARY KEY, patient INTEGER REFERENCES patients(ssn), day TEXT)",
    "INSERT INTO visits(patient, day) SELECT ssn, 'mon' FROM patients ORDER BY full_name",
    "CREATE TABLE visits_by_key(id INTEGER PRIMARY KEY, patient INTEGER REFERENCES patients, day TEXT)",
    "INSERT INTO visits_by_key(patient, day) SELECT ssn, 'tue' FROM patients ORDER BY full_name",
)
KEYED_READS = [
    "SELECT patient FROM visits",
    "SELECT id FROM visits WHERE patient > 500000000",
    "SELECT id FROM visits ORDER BY patient LIMIT 1",
    "SELECT patient FROM visits_by_key WHERE id = 1",
    "SELECT * FROM sqlite_sequence",
    "SELECT seq FROM sqlite_sequence WHERE name = 'patients'",
]


@pytest.mark.parametrize("sql", KEYED_READS)
def test_a_column_that_holds_a_masked_key_is_masked_as_it(sql: str) -> None:
    """Found in round 20: ``visits.patient REFERENCES patients(ssn)`` holds every patient's SSN, as an integer no
    scan recognises, under a name no rule knows: it came back in clear and decided WHERE and ORDER BY; so did
    ``sqlite_sequence.seq``, the largest SSN an AUTOINCREMENT key has held. A column a foreign key declares takes
    the label of the column it references (the parent's primary key when none is named), and ``seq`` that of the
    keys it counts (decision 0388)."""
    raw = _sqlite_runs((sql,), KEYED, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _sqlite_runs((sql,), KEYED)
    assert a == b, (a, b)
    assert not any(s in repr(a) for s in ("536228726", "100990000", "21945")), a


def test_a_column_that_holds_a_masked_key_through_aiosqlite() -> None:
    from tests.test_redteam_masking_r13_rt13lite import _aiosqlite_runs as runs

    a, b = runs(("SELECT patient FROM visits", "SELECT seq FROM sqlite_sequence"), KEYED)
    assert a == b, (a, b)
    assert not any(s in repr(a) for s in ("536228726", "100990000", "21945")), a


def test_key_look_alikes_run_exactly() -> None:
    """A foreign key to a clear key (``orders.customer_id REFERENCES customers(id)``) and sqlite_sequence over clear
    AUTOINCREMENT keys read, join and sort as before."""
    setup = (
        "CREATE TABLE orders(id INTEGER PRIMARY KEY AUTOINCREMENT, customer_id INT REFERENCES customers(id), total REAL)",
        "INSERT INTO orders(customer_id, total) VALUES (1, 5.0), (2, 7.5), (1, 2.5)",
    )
    steps = (
        "SELECT customer_id, total FROM orders ORDER BY customer_id, id",
        "SELECT c.city, sum(o.total) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.city ORDER BY 1",
        "SELECT name, seq FROM sqlite_sequence",
    )
    raw = _sqlite_runs(steps, setup, governed=False)
    a, b = _sqlite_runs(steps, setup)
    assert a == b == raw[0], (a, b, raw)
    assert a[2] == (["name", "seq"], [("orders", 3)]), a


# -- finding: how many pages the database fills tells how long a masked value is (0388) ------------------------------

#: an allowed update of a clear column, long enough that row 1's page splits or not by the length of its name
GROW = "UPDATE customers SET city = printf('%.*c', 3748, 'x') WHERE id = 1"
PAGE_READS = ["PRAGMA page_count", "PRAGMA main.page_count", "SELECT * FROM pragma_page_count()",
              "SELECT page_count FROM pragma_page_count"]  # fmt: skip


@pytest.mark.parametrize("sql", PAGE_READS)
def test_the_page_count_is_refused(sql: str) -> None:
    """Found in round 20: after the allowed ``UPDATE`` above, ``PRAGMA page_count`` said 4 with ALICE's name and 2
    with ANNA's, one character shorter: the page holding row 1 split or not by the length of the masked values
    beside the city (a binary search on the update's length measures them). Reading it is refused, as dbstat is
    (decision 0388)."""
    raw = _sqlite_runs((GROW, sql), governed=False)
    assert raw[0][1] != raw[1][1], raw  # the oracle, unprotected
    a, b = _sqlite_runs((GROW, sql))
    assert a == b, (a, b)
    assert str(a[1]).startswith("refused: ") and "page_count" in str(a[1]), a


def test_the_wal_checkpoint_frames_are_refused(tmp_path: Any) -> None:
    """Found in round 20: in WAL mode, ``PRAGMA wal_checkpoint`` reports the frames the last writes put in the log:
    4 pages after the same update over ALICE's row, 1 over ANNA's. Refused (decision 0388)."""
    seen: dict[bool, list[Any]] = {}
    for governed in (False, True):
        runs = []
        for n, secret in enumerate((ALICE, ANNA)):
            raw = sqlite3.connect(str(tmp_path / f"{governed}-{n}.db"), isolation_level=None)
            raw.execute("PRAGMA journal_mode = WAL")
            raw.execute(CUSTOMERS)
            raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", [secret, *OTHERS])
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn = govern(raw, ATTACKER) if governed else raw
            runs.append([observe(conn, GROW), observe(conn, "PRAGMA wal_checkpoint")])
            conn.close()
        seen[governed] = runs
    assert seen[False][0] != seen[False][1], seen  # the oracle, unprotected
    a, b = seen[True]
    assert a == b and str(a[1]).startswith("refused: "), (a, b)


def test_schema_pragma_look_alikes_run_exactly() -> None:
    """The pragmas that describe the schema, and the update itself, run as before."""
    steps = (GROW, "PRAGMA table_info(customers)", "PRAGMA index_list(customers)", "PRAGMA data_version",
             "PRAGMA integrity_check", "SELECT name FROM pragma_table_list WHERE name = 'customers'")  # fmt: skip
    raw = _sqlite_runs(steps, governed=False)
    a, b = _sqlite_runs(steps)
    assert a == b == raw[0], (a, b, raw)


# -- left open in round 20, closed in round 21 (decision 0405): a write that makes the row too long ---------------------


def test_a_row_too_long_by_its_masked_values_is_no_oracle() -> None:
    """SQLite refuses a row longer than SQLITE_LIMIT_LENGTH (1e9 bytes by default; the application may lower it
    before wrapping, as here, which keeps the test small). ``UPDATE customers SET amount = zeroblob(n) WHERE id =
    1`` (a clear column, by key; a trailing zeroblob costs nothing until written) fails with ``string or blob too
    big`` or not by the length of the name, e-mail and SSN in the same row: a binary search on ``n`` measures them.
    Now refused alike (an UPDATE may give such a row at most limit / (2 * columns) bytes, decision 0405)."""
    from tests.test_redteam_masking_r13_rt13lite import _sqlite

    def run(secret: tuple[Any, ...], n: int, governed: bool) -> Any:
        raw = _sqlite(secret)
        raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 4000)
        conn = govern(raw, ATTACKER) if governed else raw
        try:
            return observe(conn, f"UPDATE customers SET amount = zeroblob({n}) WHERE id = 1")
        finally:
            conn.close()

    n = next(n for n in range(3900, 4000) if run(ALICE, n, False) != run(ANNA, n, False))  # the oracle, unprotected
    assert run(ALICE, n, True) == run(ANNA, n, True)
