"""Red-team round 14 on SQLite and DuckDB: two databases that differ only in one customer's secret (a right and a
wrong guess); whatever the governed connection shows of a statement must be the same for both. Each finding shows
the difference on the raw connection, that the governed ones answer alike (every byte: rows, names, errors, what a
callback of the caller's is handed), and that its innocent look-alikes still run with exact data.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests._redteam import govern, observe
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import _duck_observe

duckdb = pytest.importorskip("duckdb")

#: two valid SSNs: the scan of free text masks either as ``[US_SSN]``, as the column's label does
SSNS = ("536-22-8726", "401-22-8726")
GUESS = "SELECT count(*) FROM v WHERE info LIKE '5%'"
READ = "SELECT info FROM v WHERE id = 1"


# -- finding 1: the rows a table is labelled from were the ones a writer placed first (decision 0288) --------------

def _ssn_rows(secret: str) -> list[tuple[Any, ...]]:
    """A column of SSNs under a name that says nothing (``info``): labelled by what its sample holds."""
    return [(1, secret, "Paris")] + [(i, f"219-45-{1000 + i}", "Lyon") for i in range(2, 20)]


def _sqlite_placed_first(secret: str, path: Path, how: str, governed: bool = True) -> list[Any]:
    """The agent inserts 150 innocent rows (three bounded writes) where SQLite's scan meets them first: under
    negative rowids, or after moving the 19 rows that hold SSNs behind them (``UPDATE ... SET rowid``). A new
    connection (the next one from the pool) then reads the table."""
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("CREATE TABLE v (id int, info text, town text)")
    raw.executemany("INSERT INTO v VALUES (?, ?, ?)", _ssn_rows(secret))
    raw.close()
    agent = govern(sqlite3.connect(path, isolation_level=None), ATTACKER)
    first = -1000 if how == "negative rowids" else 1000
    for k in range(3):
        rows = [(first + 50 * k + i, 100 + 50 * k + i, "n/a", "Lyon") for i in range(50)]
        agent.executemany("INSERT INTO v(rowid, id, info, town) VALUES (?, ?, ?, ?)", rows)
    if how == "rows moved behind":
        agent.execute("UPDATE v SET rowid = rowid + 1000000 WHERE id < 20")
    agent.close()
    raw = sqlite3.connect(path, isolation_level=None)
    conn = govern(raw, ATTACKER) if governed else raw
    seen = [observe(conn, READ), observe(conn, GUESS)]
    conn.close()
    return seen


@pytest.mark.parametrize("how", ["negative rowids", "rows moved behind"])
def test_innocent_rows_placed_first_do_not_label_the_table(tmp_path: Path, how: str) -> None:
    """Found in round 14: masking labels a column from ``SELECT * FROM t LIMIT 100``, the first rows of SQLite's
    scan, in rowid order. An agent allowed to insert placed 150 rows of ``'n/a'`` under negative rowids (or moved
    the 19 rows holding SSNs behind its own with ``UPDATE v SET rowid = rowid + 1000000``, a bounded write of
    no masked column); on the next connection the sample saw only its rows, the column was settled as innocent,
    and ``info`` came back in clear while ``LIKE '5%'`` counted the guessed digit. A table larger than the sample
    now adds rows drawn at random from the rest (decision 0288): the SSNs are seen, masked and not filterable."""
    raw = [_sqlite_placed_first(s, tmp_path / f"raw{i}.db", how, governed=False) for i, s in enumerate(SSNS)]
    assert raw[0] != raw[1] and raw[0][1] == (["count(*)"], [(1,)]), raw  # the oracle, unprotected
    a, b = (_sqlite_placed_first(s, tmp_path / f"gov{i}.db", how) for i, s in enumerate(SSNS))
    assert a == b, (a, b)
    assert a[0] == (["info"], [("[US_SSN]",)]), a
    assert "masked-column-predicate" in str(a[1]), a
    assert not any(s in repr(a) for s in SSNS), a


def _aiosqlite_placed_first(secret: str, path: Path) -> list[Any]:
    """``_sqlite_placed_first`` read through aiosqlite, whose catalog reads and samples are made (awaited) before a
    statement is judged and then replayed: the random rows must be among them."""
    aiosqlite = pytest.importorskip("aiosqlite")
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("CREATE TABLE v (id int, info text, town text)")
    raw.executemany("INSERT INTO v VALUES (?, ?, ?)", _ssn_rows(secret))
    raw.executemany("INSERT INTO v(rowid, id, info, town) VALUES (?, ?, ?, ?)",
                    [(-1000 + i, 100 + i, "n/a", "Lyon") for i in range(150)])
    raw.close()

    async def go() -> list[Any]:
        conn = govern(await aiosqlite.connect(path, isolation_level=None), ATTACKER)
        seen: list[Any] = []
        for sql in (READ, GUESS):
            try:
                cur = await conn.execute(sql)
                seen.append([tuple(r) for r in await cur.fetchall()])
            except Exception as e:  # GuardrailViolation included: its text is what the caller sees
                seen.append(f"{type(e).__name__}: {e}")
        await conn.close()
        return seen

    return asyncio.run(go())


def test_innocent_rows_placed_first_through_aiosqlite(tmp_path: Path) -> None:
    """The same table read through aiosqlite: masked and refused alike."""
    a, b = (_aiosqlite_placed_first(s, tmp_path / f"a{i}.db") for i, s in enumerate(SSNS))
    assert a == b, (a, b)
    assert a[0] == [("[US_SSN]",)] and "masked-column-predicate" in str(a[1]), a


def _duck_moved_behind(secret: str, path: Path, governed: bool = True) -> list[Any]:
    """DuckDB scans in insertion order, and an UPDATE of a key column deletes and re-inserts the row: the agent
    appends 150 innocent rows, then moves the 19 rows holding SSNs behind them by updating their key."""
    raw = duckdb.connect(str(path))
    raw.execute("CREATE TABLE v (id int PRIMARY KEY, info text, town text)")
    raw.executemany("INSERT INTO v VALUES (?, ?, ?)", [list(r) for r in _ssn_rows(secret)])
    raw.close()
    agent = govern(duckdb.connect(str(path)), ATTACKER)
    for k in range(3):
        agent.execute(f"INSERT INTO v SELECT 1000 + i, 'n/a', 'Lyon' FROM range({50 * k}, {50 * k + 50}) t(i)")
    agent.execute("UPDATE v SET id = id + 100000 WHERE id < 20")
    agent.close()
    raw = duckdb.connect(str(path))
    conn = govern(raw, ATTACKER) if governed else raw
    seen = [_duck_observe(conn, "SELECT info FROM v WHERE id = 100001"), _duck_observe(conn, GUESS)]
    conn.close()
    return seen


def test_innocent_rows_placed_first_on_duckdb(tmp_path: Path) -> None:
    """The same on DuckDB, where the rows are moved by updating their primary key: masked and refused alike."""
    raw = [_duck_moved_behind(s, tmp_path / f"raw{i}.duckdb", governed=False) for i, s in enumerate(SSNS)]
    assert raw[0] != raw[1] and raw[0][0] == (["info"], [(SSNS[0],)]), raw
    a, b = (_duck_moved_behind(s, tmp_path / f"gov{i}.duckdb") for i, s in enumerate(SSNS))
    assert a == b, (a, b)
    assert a[0] == (["info"], [("[US_SSN]",)]) and "masked-column-predicate" in str(a[1]), a
    assert not any(s in repr(a) for s in SSNS), a


def test_large_innocent_tables_still_read_exactly(tmp_path: Path) -> None:
    """The innocent look-alikes: a 300-row table of codes, towns and amounts (sampled past its first 100 rows now)
    reads, filters and sorts exactly on SQLite and DuckDB; a table whose first 150 rows are innocent and whose
    later rows hold e-mails (an application's, no attack) now has them masked."""
    rows = [(i, f"ORD-{i:05d}", ("Paris", "Lyon", "Nice")[i % 3], float(i)) for i in range(300)]
    later = [(i, "n/a" if i < 150 else f"user{i}@example.com") for i in range(200)]
    for db in ("sqlite", "duckdb"):
        raw: Any = sqlite3.connect(":memory:", isolation_level=None) if db == "sqlite" else duckdb.connect()
        raw.execute("CREATE TABLE orders (id int, code text, town text, amount double)")
        raw.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", [list(r) for r in rows])
        raw.execute("CREATE TABLE contacts (id int, info text)")
        raw.executemany("INSERT INTO contacts VALUES (?, ?)", [list(r) for r in later])
        conn = govern(raw, ATTACKER)

        def run(sql: str, conn: Any = conn, db: str = db) -> Any:
            return observe(conn, sql) if db == "sqlite" else _duck_observe(conn, sql)

        assert run("SELECT code, town FROM orders WHERE id = 250") == (["code", "town"], [("ORD-00250", "Lyon")])
        assert run("SELECT count(*) FROM orders WHERE code LIKE 'ORD-002%' AND town = 'Nice'")[1] == [(34,)]
        assert run("SELECT id FROM orders ORDER BY code DESC LIMIT 2")[1] == [(299,), (298,)]
        # with the spread and rare-value rows of decision 0294 (repeated values count once) the column is labelled
        # an e-mail column, and its placeholder is masked as any value under that label
        assert run("SELECT info FROM contacts WHERE id IN (3, 170) ORDER BY id")[1] in (
            [("n/a",), ("u***@example.com",)], [("n/a",), ("[EMAIL]",)], [("*/*",), ("u***@example.com",)])
        conn.close()


# -- finding 2: a collation of the caller's own travels with a value into max() (decision 0289) -------------------

def _customers(secret: str) -> sqlite3.Connection:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT, ssn TEXT, city TEXT)")
    raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)",
                    [(1, "Alice Smith", secret, "Paris"), (2, "Bob Jones", "219-45-1002", "Lyon")])
    return raw


#: each compares the SSNs under ``spy`` although no COLLATE is written over them
THROUGH_A_COLLATION = [
    ("CREATE TEMP TABLE g (a TEXT COLLATE spy)", "INSERT INTO g VALUES ('zzz')",
     "SELECT max(x) FROM (SELECT a AS x FROM g UNION ALL SELECT ssn FROM customers)"),
    ("CREATE TEMP TABLE g (a TEXT)", "INSERT INTO g VALUES ('zzz')", "SELECT max(a, ssn) FROM g, customers",
     "CREATE TEMP VIEW w AS SELECT a COLLATE spy AS a FROM g",
     "SELECT max(x) FROM (SELECT a AS x FROM w UNION ALL SELECT ssn FROM customers)"),
    ("SELECT max('zzz' COLLATE spy, ssn) FROM customers",),
    ("SELECT min(upper('a' COLLATE spy), ssn) FROM customers",),
    ("SELECT max(x) FROM (SELECT 'zzz' COLLATE spy AS x UNION ALL SELECT ssn FROM customers)",),
    ("WITH g(a) AS (SELECT 'zzz' COLLATE spy) "
     "SELECT max(x) OVER () FROM (SELECT a AS x FROM g UNION ALL SELECT ssn FROM customers)",),
    ("SELECT id, max(CASE WHEN id > 0 THEN 'a' COLLATE spy END, ssn) FROM customers",),
]


def _spied(secret: str, steps: tuple[str, ...], governed: bool = True) -> tuple[list[Any], list[Any]]:
    raw = _customers(secret)
    conn: Any = govern(raw, ATTACKER) if governed else raw
    handed: list[Any] = []
    conn.create_collation("spy", lambda a, b: handed.append((a, b)) or (a > b) - (a < b))
    seen = [observe(conn, sql) for sql in steps]
    conn.close()
    return seen, handed


@pytest.mark.parametrize("steps", THROUGH_A_COLLATION)
def test_a_collation_of_the_callers_own_never_meets_a_masked_value(steps: tuple[str, ...]) -> None:
    """Found in round 14: decision 0236 made ``max(ssn COLLATE spy)`` a copy and refused registering a collation
    the schema already declares. But SQLite carries a collation with the value it is written on — through
    ``upper()``, CASE, a CTE's or UNION branch's column — and with the column a table declares it on, so
    ``max('zzz' COLLATE spy, ssn)``, ``max()`` over ``SELECT 'zzz' COLLATE spy UNION ALL SELECT ssn``, or a temporary
    table declared ``COLLATE spy`` after ``spy`` was registered, had SQLite call the caller's ``spy`` with every
    SSN. Such statements are refused now: min()/max() of a masked value where a collation other than SQLite's own
    may reach it, and DDL declaring a collation registered through the governed connection (decision 0289)."""
    raw = [_spied(s, steps, governed=False) for s in SSNS]
    assert any(SSNS[0] in pair for pair in raw[0][1]), raw  # the callback is handed the SSN, unprotected
    assert raw[0][1] != raw[1][1], raw
    a, b = (_spied(s, steps) for s in SSNS)
    assert a == b, (a, b)
    assert a[1] == [], a  # the collation was handed nothing
    assert "masked-column-copy" in str(a[0]), a
    assert not any(s in repr(a) for s in SSNS), a


def test_collations_of_the_callers_own_still_work_over_innocent_values() -> None:
    """The innocent look-alikes: a collation of the caller's own orders and compares innocent columns, also in a
    statement that reads a masked column elsewhere (another result column, its WHERE); SQLite's own collations
    are declared and used; the app's collation registered before ``wrap()`` may be declared; a removed one is
    no longer remembered (SQLite itself then refuses the name)."""
    raw = _customers(SSNS[0])
    raw.create_collation("app_ci", lambda a, b: (a.lower() > b.lower()) - (a.lower() < b.lower()))
    conn = govern(raw, ATTACKER)
    handed: list[Any] = []
    conn.create_collation("spy", lambda a, b: handed.append((a, b)) or (a > b) - (a < b))
    steps = (
        "SELECT city FROM customers ORDER BY city COLLATE spy",
        "SELECT max(city COLLATE spy), max(ssn) FROM customers",
        "SELECT ssn FROM customers WHERE city COLLATE spy = 'Paris'",
        "CREATE TEMP TABLE h (a TEXT COLLATE NOCASE, b TEXT COLLATE app_ci)",
        "INSERT INTO h VALUES ('x', 'Y')",
        "SELECT max(x) FROM (SELECT a AS x FROM h UNION ALL SELECT city FROM customers)",
        "SELECT max(ssn COLLATE NOCASE, 'a') FROM customers WHERE id = 1",
    )
    seen = [observe(conn, sql) for sql in steps]
    assert seen[0][1] == [("Lyon",), ("Paris",)] and seen[1][1] == [("Paris", "[US_SSN]")], seen
    assert seen[2][1] == [("[US_SSN]",)] and seen[5][1] == [("x",)] and seen[6][1] == [("[US_SSN]",)], seen
    assert all(SSNS[0] not in pair for pair in handed) and handed, handed
    conn.create_collation("spy", None)
    assert "no such collation sequence: spy" in str(observe(conn, "CREATE TEMP TABLE k (a TEXT COLLATE spy)"))
    conn.close()


# -- finding 3: DuckDB's relation.materialize() ran the relation unjudged and kept raw values (decision 0290) -------

CUSTOMERS = "CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name VARCHAR, ssn VARCHAR, city VARCHAR, amount DOUBLE)"


def _duck_customers(secret: str, governed: bool = True) -> Any:
    raw = duckdb.connect()
    raw.execute(CUSTOMERS)
    raw.execute("INSERT INTO customers VALUES (1, 'Alice Smith', ?, 'Paris', 10), (2, 'Bob Jones', '219-45-1002', "
                "'Lyon', 20), (3, 'Carol White', '219-45-1003', 'Paris', 30)", [secret]).fetchall()
    return govern(raw, ATTACKER) if governed else raw


#: each materializes a relation, then reads the kept rows through a relation that names no masked column
MATERIALIZED = {
    "a filter counted": lambda c: c.table("customers").filter("ssn LIKE '5%'").materialize().count("*").fetchall(),
    "a computed value kept": lambda c: c.sql("SELECT id, reverse(ssn) AS q FROM customers").materialize()
    .filter("id = 1").fetchall(),
    "a renamed column kept": lambda c: c.sql("SELECT id, ssn AS code FROM customers").materialize()
    .filter("code LIKE '5%'").count("*").fetchall(),
}


def _materialized(secret: str, how: str, governed: bool = True) -> Any:
    conn = _duck_customers(secret, governed)
    try:
        return MATERIALIZED[how](conn)
    except Exception as e:  # GuardrailViolation included: its text is what the caller sees
        return f"{type(e).__name__}: {e}"
    finally:
        conn.close()


@pytest.mark.parametrize("how", sorted(MATERIALIZED))
def test_a_materialized_relation_keeps_no_masked_value(how: str) -> None:
    """Found in round 14: ``rel.materialize()`` runs a DuckDB relation at once and keeps its rows in a table DuckDB
    makes (``__duckdb_source_...``); the governed relation let it run unjudged, as if it were a composition.
    ``filter("ssn LIKE '5%'").materialize().count('*')`` then counted the guess (its SQL reads only the kept table),
    and ``reverse(ssn)`` or ``ssn AS code`` kept there were read back in clear and filtered (a sample of that table
    finds no SSN in a reversed one). ``materialize()`` is now judged as a read whose rows leave masking's reach, as
    an export to a file is: a filter on a masked column, or a masked column kept, is refused (decision 0290)."""
    raw = [_materialized(s, how, governed=False) for s in SSNS]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = (_materialized(s, how) for s in SSNS)
    assert a == b, (a, b)
    assert "masked-column-predicate" in str(a) or "materialize() keeps the rows" in str(a), a
    assert not any(s in repr(a) or s[::-1] in repr(a) for s in SSNS), a


def test_materialized_relations_of_innocent_columns_still_run() -> None:
    """The innocent look-alikes: materializing a filter, projection or aggregate of columns nobody masked runs,
    and the kept rows read, filter and count exactly; the masked columns are still read through the relation
    itself (masked)."""
    conn = _duck_customers(SSNS[0])
    kept = conn.table("customers").filter("city = 'Paris'").project("id, city, amount").materialize()
    assert kept.filter("amount > 15").fetchall() == [(3, "Paris", 30.0)]
    assert kept.count("*").fetchall() == [(2,)]
    totals = conn.sql("SELECT city, sum(amount) AS total FROM customers GROUP BY city").materialize()
    assert sorted(totals.fetchall()) == [("Lyon", 20.0), ("Paris", 40.0)]
    assert conn.table("customers").filter("id = 1").project("full_name, ssn").fetchall() == [
        ("[PERSON_NAME]", "[US_SSN]")]
    conn.close()
