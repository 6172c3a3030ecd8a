"""Red-team round 21 on SQLite and aiosqlite: two databases that differ only in one customer's secrets (ALICE's
name and e-mail are one character longer than ANNA's); whatever the governed connection shows must be the same for
both.

* **An UPDATE that makes a row too long fails by the masked values beside it** (decision 0405, open since round
  20). SQLite stores no row longer than ``SQLITE_LIMIT_LENGTH`` (the application may lower it before wrapping, as
  here: 4,000 bytes). ``UPDATE customers SET amount = zeroblob(n) WHERE id = 1``, a literal, a parameter, a
  ``printf('%.*c', n, 'x')``, an upsert's ``excluded.city`` or ``city || city`` of ``n`` bytes failed with ``string
  or blob too big`` over ALICE's row and ran over ANNA's: a binary search on ``n`` measured the masked values. An
  UPDATE keeping masked values in the row may now give it at most ``limit / (2 * columns)`` bytes (285 here, 71
  MB under the default limit), read from its text and its parameters; past that, or without a bound its text
  shows, it is refused alike. So is a write firing the application's trigger that gives a customer's row a value
  of the firing statement's (``SET city = new.body``).
* **MariaDB: a locking read joining a list of keys to its own table** (decision 0406, an over-refusal left by
  0380): the list is carried over ``b.id = a.id`` and both tables are read FORCE INDEX (PRIMARY), in key order.
* **sqlite_stmt lists the application's statements and how many steps they took** (decision 0405). The virtual
  table of the connection's prepared statements showed the application's SQL with its literals in clear, and its
  step counters told the copies apart. It is refused in production as the other statistics catalogs are.

The attempts of this round that were already answered alike are kept below as regressions, with innocent
look-alikes whose results must stay exact.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any

import pytest

import governed_db
from tests._redteam import govern
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, ANNA, _no_clear_value, _sqlite, _sqlite_runs
from tests.test_review_r2lite import small_pair as _small_pair

LENGTH = sqlite3.SQLITE_LIMIT_LENGTH


def _written(secret: tuple[Any, ...], sql: str, params: Any, governed: bool, limit: int | None = 4000) -> Any:
    """What the attacker sees of one write, and of row 1 afterwards, under the length limit ``limit``."""
    raw = _sqlite(secret)
    if limit is not None:
        raw.setlimit(LENGTH, limit)
    conn = govern(raw, ATTACKER) if governed else raw
    try:
        conn.execute(sql, params)
        seen: Any = "ran"
    except governed_db.GuardrailViolation as e:
        seen = f"refused: {e}"
    except Exception as e:
        seen = f"{type(e).__name__}: {e}"
    try:
        return seen, raw.execute("SELECT city, length(amount) FROM customers WHERE id = 1").fetchone()
    finally:
        conn.close()


#: each grows row 1 by ``n`` bytes (a clear column, by key): past the limit by the masked values beside it or not
GROWING = [
    ("UPDATE customers SET amount = zeroblob({n}) WHERE id = 1", None),
    ("UPDATE customers SET city = '{x}' WHERE id = 1", None),
    ("UPDATE customers SET city = ? WHERE id = ?", ("{x}", 1)),
    ("UPDATE customers SET city = :c WHERE id = 1", {"c": "{x}"}),
    ("UPDATE customers SET amount = CAST(? AS BLOB) WHERE id = 1", (b"{x}",)),
    ("UPDATE customers SET city = printf('%.*c', {n}, 'x') WHERE id = 1", None),
    ("UPDATE customers SET city = upper(printf('%{n}s', 'x')) WHERE id = 1", None),
    ("UPDATE customers SET city = substr(?, 1) || '' WHERE id = 1", ("{x}",)),
    ("UPDATE customers SET city = likely(?) WHERE id = 1", ("{x}",)),
    (
        "INSERT INTO customers(id, city) VALUES (1, '{x}') ON CONFLICT(id) DO UPDATE SET city = excluded.city",
        None,
    ),
    (
        "INSERT INTO customers(id, city) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET city = excluded.city",
        ("{x}",),
    ),
    ("UPDATE customers SET city = replace(printf('%.*c', {n} / 2, 'x'), 'x', 'yy') WHERE id = 1", None),
    ("UPDATE customers SET city = city || printf('%.*c', {n} - 5, 'x') WHERE id = 1", None),
]


def _fill(value: Any, n: int) -> Any:
    if isinstance(value, str):
        return value.format(x="x" * n, n=n)
    if isinstance(value, bytes):
        return b"x" * n
    if isinstance(value, dict):
        return {k: _fill(v, n) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_fill(v, n) for v in value)
    return value


@pytest.mark.parametrize(("sql", "params"), GROWING, ids=lambda s: str(s)[:50])
def test_an_update_past_the_row_length_limit_tells_no_length(sql: str, params: Any) -> None:
    """Found in round 20 (left open there): under a length limit of 4,000 bytes each write above, of some length
    ``n``, failed over ALICE's row and ran over ANNA's (the oracle, searched for below). Refused alike now, with no
    row changed, naming the masked columns and the limit (decision 0405)."""
    found = None
    for n in range(3850, 4000):
        args = (_fill(sql, n), _fill(params, n) if params is not None else ())
        raw = [_written(s, *args, governed=False) for s in (ALICE, ANNA)]
        if raw[0][0] != raw[1][0]:
            found = args
            break
    assert found is not None, "the oracle found no length that tells the rows apart"
    a, b = (_written(s, *found, governed=True) for s in (ALICE, ANNA))
    assert a == b, (a, b)
    assert a[0].startswith("refused: ") and "SQLITE_LIMIT_LENGTH, 4000" in a[0] and "customers.ssn" in a[0], a
    assert a[1] == ("Paris", 4), a  # nothing written
    _no_clear_value(a)


def test_executemany_counts_its_longest_row() -> None:
    """The parameters of executemany's rows count row by row: the longest decides."""
    steps = [("Lyon", 2), ("x" * 3933, 1)]
    seen = []
    for secret in (ALICE, ANNA):
        raw = _sqlite(secret)
        raw.setlimit(LENGTH, 4000)
        conn = govern(raw, ATTACKER)
        try:
            conn.executemany("UPDATE customers SET city = ? WHERE id = ?", steps)
            seen.append("ran")
        except governed_db.GuardrailViolation as e:
            seen.append(f"refused: {e}")
        conn.close()
    assert seen[0] == seen[1] and seen[0].startswith("refused: "), seen


class _Params(Sequence[Any]):
    """Parameters as sqlite3 takes them: any sequence, not only a list or a tuple."""

    def __init__(self, *values: Any) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: Any) -> Any:
        return self.values[i]


def test_parameters_of_any_sequence_count() -> None:
    """Found while fixing the above: parameters passed as a sequence of another type were counted as none, and the
    long value went through (one copy failed, the other wrote). They count now; short ones run."""
    sql = "UPDATE customers SET city = ? WHERE id = ?"
    raw = [_written(s, sql, _Params("x" * 3937, 1), governed=False) for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = (_written(s, sql, _Params("x" * 3937, 1), governed=True) for s in (ALICE, ANNA))
    assert a == b and a[0].startswith("refused: "), (a, b)
    assert _written(ALICE, sql, _Params("Rome", 1), governed=True) == ("ran", ("Rome", 4))


def test_an_update_past_the_row_length_limit_through_aiosqlite() -> None:
    aiosqlite = pytest.importorskip("aiosqlite")
    from tests.test_redteam_masking_r13_rt13lite import CUSTOMERS, OTHERS

    async def one(secret: tuple[Any, ...], governed: bool, sql: str) -> Any:
        raw = await aiosqlite.connect(":memory:", isolation_level=None)
        await raw.execute(CUSTOMERS)
        await raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", [secret, *OTHERS])
        await raw._execute(raw._conn.setlimit, LENGTH, 4000)  # the application's limit, on aiosqlite's thread
        conn = govern(raw, ATTACKER) if governed else raw
        try:
            await conn.execute(sql)
            return "ran"
        except governed_db.GuardrailViolation as e:
            return f"refused: {e}"
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        finally:
            await conn.close()

    grow, short = (
        "UPDATE customers SET amount = zeroblob(3933) WHERE id = 1",
        "UPDATE customers SET city = 'Rome' WHERE id = 1",
    )
    raw = [asyncio.run(one(s, False, grow)) for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = (asyncio.run(one(s, True, grow)) for s in (ALICE, ANNA))
    assert a == b and a.startswith("refused: ") and "SQLITE_LIMIT_LENGTH, 4000" in a, (a, b)
    assert [asyncio.run(one(s, True, short)) for s in (ALICE, ANNA)] == ["ran", "ran"]


#: short values, numbers, a column's own value through a function no longer than it, small blobs and widths
SHORT_WRITES = [
    ("UPDATE customers SET city = 'Rome' WHERE id = 1", None, ("Rome", 4)),
    ("UPDATE customers SET city = ?, amount = ? WHERE id = ?", ("Rome", 12.5, 1), ("Rome", 4)),
    ("UPDATE customers SET city = :c WHERE id = 1", {"c": "Nîmes"}, ("Nîmes", 4)),
    ("UPDATE customers SET amount = amount * 2 + 1 WHERE id = 1", None, ("Paris", 4)),
    ("UPDATE customers SET city = upper(trim(city)) WHERE id = 1", None, ("PARIS", 4)),
    ("UPDATE customers SET city = coalesce(NULL, lower(?)) WHERE id = 1", ("LYON",), ("lyon", 4)),
    ("UPDATE customers SET city = CASE WHEN amount > 5 THEN 'big' ELSE 'small' END WHERE id = 1", None, ("big", 4)),
    ("UPDATE customers SET amount = zeroblob(200) WHERE id = 1", None, ("Paris", 200)),
    ("UPDATE customers SET city = printf('%.*c', 150, 'x') WHERE id = 1", None, ("x" * 150, 4)),
    ("UPDATE customers SET city = datetime('2026-12-07') WHERE id = 1", None, ("2026-12-07 00:00:00", 4)),
    ("UPDATE customers SET city = 'a' || ? || char(66) WHERE id = 1", ("b",), ("abB", 4)),
    ("INSERT INTO customers(id, city) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET city = excluded.city", ("Rome",),
     ("Rome", 4)),
    ("UPDATE customers SET full_name = NULL, email = NULL, ssn = NULL, phone = NULL, city = printf('%.*c', 3500, "
     "'x') WHERE id = 1", None, ("x" * 3500, 4)),
    ("INSERT INTO customers(id, city) VALUES (9, printf('%.*c', 3500, 'x'))", None, ("Paris", 4)),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "params", "row"), SHORT_WRITES, ids=lambda s: str(s)[:50])
def test_short_writes_run_as_raw(sql: str, params: Any, row: Any) -> None:
    """Writes that give the row at most 285 bytes, write every masked column too, or insert a row of their own, run
    as raw under the lowered limit (and under the default one)."""
    for limit in (4000, None):
        raw = _written(ALICE, sql, params or (), governed=False, limit=limit)
        seen = _written(ALICE, sql, params or (), governed=True, limit=limit)
        assert seen == raw == ("ran", row), (seen, raw)


def test_long_writes_run_where_no_masked_value_is_kept() -> None:
    """A table without masked columns, and a service identity with an unmask grant, grow rows as raw."""
    raw = _sqlite(
        ALICE, ("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)", "INSERT INTO notes VALUES (1, 'a')")
    )
    raw.setlimit(LENGTH, 4000)
    conn = govern(raw, ATTACKER)
    conn.execute("UPDATE notes SET body = printf('%.*c', ?, 'x') || body WHERE id = 1", (3900,))
    assert raw.execute("SELECT length(body) FROM notes").fetchone() == (3901,)
    conn.close()
    raw = _sqlite(ALICE)
    service = governed_db.Identity("billing", kind="service", roles=["billing"])
    conn = govern(raw, service, masking={"unmask": [{"role": "billing"}]})
    conn.execute("UPDATE customers SET amount = zeroblob(5000) WHERE id = 1")
    assert raw.execute("SELECT length(amount) FROM customers WHERE id = 1").fetchone() == (5000,)
    conn.close()


#: the application's triggers: an insert into notes (no masked column) updates the customer it names
TRIGGERED = (
    "CREATE TABLE notes(id INTEGER PRIMARY KEY, cid INT, body TEXT)",
    "CREATE TRIGGER tn AFTER INSERT ON notes BEGIN UPDATE customers SET city = new.body WHERE id = new.cid; END",
)


def _triggered(secret: tuple[Any, ...], sql: str, setup: tuple[str, ...], governed: bool) -> Any:
    raw = _sqlite(secret, setup)
    raw.setlimit(LENGTH, 4000)
    conn = govern(raw, ATTACKER) if governed else raw
    try:
        conn.execute(sql)
        return "ran", raw.execute("SELECT city FROM customers WHERE id = 1").fetchone()
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}", None
    except Exception as e:
        return f"{type(e).__name__}: {e}", None
    finally:
        conn.close()


def test_a_trigger_that_lengthens_a_row_is_judged_as_its_update() -> None:
    """Found in round 21: the agent's INSERT into ``notes`` (no masked column) fires the application's trigger
    that copies the note into the customer's city: a note of 3,937 characters failed over ALICE's row and not over
    ANNA's. A trigger whose UPDATE gives a value no bound its text shows (``new.body``) counts every column of the
    table it writes, so the INSERT is refused alike (decision 0405)."""
    sql = f"INSERT INTO notes(cid, body) VALUES (1, '{'x' * 3937}')"
    raw = [_triggered(s, sql, TRIGGERED, False) for s in (ALICE, ANNA)]
    assert raw[0][0] != raw[1][0], raw  # the oracle, unprotected
    a, b = (_triggered(s, sql, TRIGGERED, True) for s in (ALICE, ANNA))
    assert a == b and a[0].startswith("refused: ") and "customers.ssn" in a[0], (a, b)


def test_a_trigger_that_writes_a_bounded_value_runs() -> None:
    """A trigger giving the customer a number or a date (bounded by its text) fires as raw."""
    setup = (
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, cid INT, total REAL)",
        "CREATE TRIGGER t1 AFTER INSERT ON orders BEGIN UPDATE customers SET amount = amount + new.total, "
        "city = upper(city) WHERE id = new.cid; END",
    )
    seen = [
        _triggered(ALICE, "INSERT INTO orders(cid, total) VALUES (1, 2.5)", setup, g) for g in (False, True)
    ]
    assert seen[0] == seen[1] == ("ran", ("PARIS",)), seen


# -- finding: sqlite_stmt lists the application's statements and the steps they took (0405) --------------------------

#: the application, on the connection it then hands to the agent: a partial index over the SSN, a lookup by SSN
APP = (
    "CREATE INDEX ix_p ON customers(city) WHERE ssn > '3'",
    "SELECT id FROM customers WHERE ssn = '536-22-8726'",
)
STMT_READS = [
    "SELECT sql, nstep FROM sqlite_stmt",
    "SELECT * FROM main.sqlite_stmt",
    "SELECT nstep FROM sqlite_stmt WHERE sql LIKE 'CREATE INDEX%'",
    "SELECT s.sql FROM sqlite_stmt AS s WHERE s.sql LIKE '%ssn =%'",
]


@pytest.mark.parametrize("sql", STMT_READS)
def test_the_statement_cache_is_refused(sql: str) -> None:
    """Found in round 21: the ``sqlite_stmt`` virtual table (compiled into Debian's and Python's SQLite) lists the
    prepared statements of the connection, the application's among them: their text with its literals
    (``WHERE ssn = '536-22-8726'`` in clear), and how many steps each took over the rows it read (the
    application's ``CREATE INDEX ... WHERE ssn > '3'``: 50 over ALICE's row, 42 over ANNA's). It is a statistics
    catalog, refused in production as dbstat is (decision 0405)."""
    raw = _sqlite_runs((sql,), APP, governed=False)
    assert raw[0] != raw[1] or "536-22-8726" in repr(raw[0]), raw  # the oracle, unprotected
    a, b = _sqlite_runs((sql,), APP)
    assert a == b and str(a[0]).startswith("refused: ") and "sqlite_stmt" in str(a[0]), (a, b)
    _no_clear_value(a)


def test_the_statement_cache_through_aiosqlite() -> None:
    from tests.test_redteam_masking_r13_rt13lite import _aiosqlite_runs as runs

    a, b = runs(("SELECT sql, nstep FROM sqlite_stmt",), APP)
    assert a == b and str(a[0]).startswith("refused: "), (a, b)


# -- MariaDB (decision 0406): a locking read joining a list of keys to its own table ------------------------------------

small_pair = _small_pair  # round 19's three-row tables (row 1's SSN 536-... or 287-...; an index on ssn)
#: a list of keys joined to another copy of the same table by the key; the second names nothing else
JOINED_LISTS = [
    "SELECT a.id FROM {t} a JOIN {t} b ON b.id = a.id WHERE a.id IN (1, 2, 3) FOR UPDATE",
    "SELECT count(*) FROM {t} a JOIN {t} b ON a.id = b.id WHERE a.id IN (3, 2, 1) FOR UPDATE",
    "SELECT b.id FROM {t} a JOIN {t} b ON b.id = a.id WHERE a.id = 1 OR a.id = 2 OR a.id = 3 FOR UPDATE",
]


@pytest.mark.parametrize("write", JOINED_LISTS, ids=lambda s: s[:50])
def test_a_list_of_keys_joined_to_its_table_tells_no_rank(
    mysql_kw: dict[str, Any], mysql_conn: Any, small_pair: dict[str, str], write: str
) -> None:
    """Review r2lite left ``a JOIN b ON b.id = a.id WHERE a.id IN (1, 2) FOR UPDATE`` refused (decision 0380: a list
    is no sure lookup in key order, and carrying it to the partner would let such reads through). Now the list is
    carried over the equality and both tables are read FORCE INDEX (PRIMARY). Over three rows each, raw MariaDB
    reads them through the covering index on ``ssn`` (another session finds ``[]`` free over one copy, ``[(3,)]``
    over the other); governed, it waits at row 1 first over both, rows 2 and 3 still free."""
    from tests.test_redteam_masking_r18_maria import _locked_before_wait

    raw = {c: _locked_before_wait(mysql_kw, mysql_conn, small_pair[c], write, False) for c in ("A", "B")}
    assert raw["A"] != raw["B"], raw  # the oracle: read through the index on ssn, rows locked in SSN order
    gov = {c: _locked_before_wait(mysql_kw, mysql_conn, small_pair[c], write, True) for c in ("A", "B")}
    assert gov == {"A": [(2,), (3,)], "B": [(2,), (3,)]}, gov  # waits at row 1 first, in key order


def test_joined_lists_answer_as_raw(mysql_kw: dict[str, Any], small_pair: dict[str, str]) -> None:
    """The rows as raw (sorted: the hint only changes the order); a partner that names a masked column stays
    refused."""
    import pymysql

    from tests.test_redteam_masking_r18_maria import _run

    t = small_pair["A"]
    for sql in JOINED_LISTS:
        out = []
        for governed in (False, True):
            raw = pymysql.connect(autocommit=False, **mysql_kw)
            conn = govern(raw, ATTACKER) if governed else raw
            try:
                out.append(sorted(_run(conn, sql.format(t=t))))
            finally:
                raw.rollback()
                raw.close()
        assert out[0] == out[1], (sql, out)
    named = "SELECT a.id FROM {t} a JOIN {t} b ON b.id = a.id WHERE a.id IN (1, 2) AND b.ssn IS NOT NULL FOR UPDATE"
    raw = pymysql.connect(autocommit=False, **mysql_kw)
    try:
        assert _run(govern(raw, ATTACKER), named.format(t=t)) == "refused: ['masked-column-predicate']"
    finally:
        raw.rollback()
        raw.close()


# -- attempts answered alike already (regressions) ---------------------------------------------------------------------

#: the application's own table with generated columns over masked ones, a foreign key to a masked column, a WITHOUT
#: ROWID table keyed by the SSN, and a partial index whose WHERE reads the SSN
SETUP = (
    "CREATE TABLE people(id INTEGER PRIMARY KEY, full_name TEXT, ssn TEXT, initial TEXT AS (substr(full_name, 1, 2)) "
    "STORED, n INT AS (length(ssn) + unicode(ssn)) VIRTUAL, city TEXT)",
    "INSERT INTO people(id, full_name, ssn, city) SELECT id, full_name, ssn, city FROM customers",
    "CREATE TABLE orders(id INTEGER PRIMARY KEY, cust TEXT, total REAL, FOREIGN KEY(cust) REFERENCES customers(ssn))",
    "INSERT INTO orders(cust, total) VALUES ('536-22-8726', 1), ('219-45-1002', 2)",
    "CREATE UNIQUE INDEX us ON customers(ssn)",
    "CREATE TABLE w(ssn TEXT PRIMARY KEY, city TEXT) WITHOUT ROWID",
    "INSERT INTO w SELECT ssn, city || id FROM customers",
    "CREATE INDEX ix_p ON customers(city) WHERE ssn > '3'",
    "ANALYZE",  # the application's (an agent's ANALYZE waits for approval in production)
)
ALIKE = [
    # generated columns computed from masked ones, read, filtered, sorted
    "SELECT initial, n FROM people WHERE id = 1",
    "SELECT id FROM people WHERE n > 60",
    "SELECT id FROM people ORDER BY n",
    # the foreign key check joins the child's column with the masked parent's
    "PRAGMA foreign_key_check(orders)",
    # a WITHOUT ROWID table is stored in the order of its masked key
    "SELECT city FROM w",
    "SELECT * FROM w LIMIT 1",
    # the statistics and the plan of a partial index whose WHERE reads the SSN
    "SELECT * FROM sqlite_stat1",
    "SELECT count(*) FROM customers INDEXED BY ix_p WHERE city = 'Paris' AND ssn > '3'",
    # json_each / json_tree over a row's masked values
    "SELECT j.key FROM customers c, json_each(json_object('n', c.full_name, 's', c.ssn)) j WHERE c.id = 1 AND j.value > '3'",
    "SELECT count(*) FROM customers c, json_tree(json_array(c.ssn)) j WHERE c.id = 1 AND j.atom > '3'",
    # an external-content FTS5 index rebuilt from the masked column, and its vocabulary
    "CREATE VIRTUAL TABLE f USING fts5(full_name, content='customers', content_rowid='id')",
    "INSERT INTO f(f) VALUES('rebuild')",
    "CREATE VIRTUAL TABLE fv USING fts5vocab(f, 'row')",
    "SELECT term FROM fv ORDER BY term",
    # an R*Tree of lengths, a generated column added to the masked table
    "CREATE VIRTUAL TABLE r USING rtree(id, a, b)",
    "INSERT INTO r SELECT id, length(full_name), length(email) FROM customers",
    "ALTER TABLE customers ADD COLUMN l INT AS (unicode(ssn)) VIRTUAL",
    # upserts, RETURNING, conflicts of a unique index over the masked column (NOCASE/RTRIM alike)
    "INSERT INTO customers(id, city) VALUES (1, 'X') ON CONFLICT(id) DO UPDATE SET city = excluded.city WHERE ssn < '3'",
    "UPDATE customers SET city = 'Q' WHERE id = 1 RETURNING full_name, length(email), ssn",
    "DELETE FROM customers WHERE id = 5 RETURNING unicode(ssn)",
    "INSERT OR IGNORE INTO customers(id, ssn) VALUES (9, '536-22-8726')",
    "INSERT INTO customers(id, ssn) VALUES (9, '536-22-8726') ON CONFLICT DO NOTHING",
    "REPLACE INTO customers(id, ssn) VALUES (9, '536-22-8726')",
    # UPDATE/DELETE ... ORDER BY ... LIMIT over a masked column; changes() after a masked WHERE
    "UPDATE customers SET city = 'Z' ORDER BY ssn LIMIT 1",
    "DELETE FROM customers ORDER BY ssn LIMIT 1",
    "UPDATE customers SET city = city WHERE ssn < '3'",
    "SELECT changes(), total_changes()",
    # likely/iif/printf/zeroblob/unicode/instr over masked values
    "SELECT id FROM customers WHERE likely(ssn > '3')",
    "SELECT id FROM customers WHERE id = iif(ssn > '3', 1, 2)",
    "SELECT length(printf('%.*c', length(full_name), 'x')) FROM customers WHERE id = 1",
    "SELECT zeroblob(unicode(ssn) * 20000000) IS NULL FROM customers WHERE id = 1",
    "SELECT unicode(ssn), instr(full_name, 'l') FROM customers WHERE id = 1",
    "SELECT count(DISTINCT ssn < '3') FROM customers",
    # an agent's own temporary trigger reading the new row's masked values
    "CREATE TEMP TRIGGER tt AFTER UPDATE OF city ON customers BEGIN SELECT RAISE(ABORT, 'x') WHERE new.ssn > '3'; END",
    "UPDATE customers SET city = 'x' WHERE id = 1",
    "INSERT INTO customers(full_name) SELECT 'x' FROM customers WHERE ssn > '3' LIMIT 1",
    "SELECT last_insert_rowid()",
]


def test_the_other_attempts_of_round_21_are_answered_alike() -> None:
    """Each statement above told ALICE's database from ANNA's on the raw connection (most of them; some only
    together); governed, the two see the same, and no masked value in clear."""
    raw = _sqlite_runs(tuple(ALIKE), SETUP, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _sqlite_runs(tuple(ALIKE), SETUP)
    assert a == b, [(s, x, y) for s, x, y in zip(ALIKE, a, b, strict=True) if x != y]
    _no_clear_value(a)
    assert sum(str(x).startswith("refused: ") for x in a) >= 25, a


def test_look_alikes_of_the_other_attempts_run() -> None:
    """Clear generated columns, an index over a clear column after ANALYZE, json_each of clear values and an upsert
    of a clear column answer as raw (sqlite_stat1 itself is a statistics catalog, refused in production)."""
    setup = ("CREATE TABLE g(id INTEGER PRIMARY KEY, a TEXT, b INT AS (length(a)) STORED)",
             "INSERT INTO g(id, a) VALUES (1, 'xy'), (2, 'xyz')", "CREATE INDEX ix_c ON customers(city)", "ANALYZE")  # fmt: skip
    steps = (
        "SELECT id, b FROM g ORDER BY b DESC",
        "SELECT count(*) FROM customers WHERE city = 'Lyon'",
        "SELECT j.value FROM customers c, json_each(json_array(c.city, c.amount)) j WHERE c.id = 2",
        "INSERT INTO customers(id, city) VALUES (2, 'Rome') ON CONFLICT(id) DO UPDATE SET city = excluded.city",
        "SELECT id, city FROM customers WHERE id = 2",
        "SELECT iif(amount > 15, 'big', 'small') FROM customers ORDER BY id",
    )
    raw = _sqlite_runs(steps, setup, governed=False)
    a, b = _sqlite_runs(steps, setup)
    assert a == b == raw[0], (a, b, raw)
    assert a[1] == (["count(*)"], [(2,)]), a
    assert a[4] == (["id", "city"], [(2, "Rome")]), a
