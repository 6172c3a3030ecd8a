"""Over-refusals after red-team round 17 (decision 0337): innocent statements an application or agent runs on
tables with PII (customers with email, full name and SSN, an index on ``email``; orders; order items).

An agent (no unmask grant) doing ordinary work must get what the raw connection gives wherever a statement cannot
reveal anything about a masked value. Three round-17 refusals reached past their leak:

* SQLite, 0348: a function the application registered through the governed connection (``lower_ascii``) was
  refused in any statement over ``customers``, because an index on ``email`` exists, though SQLite walks an index
  only to use its columns or to cover the query: ``SELECT id, lower_ascii(city) FROM customers`` reads by rowid.
* SQLite, 0347: a multi-row UPDATE with a correlated subquery of the same table was refused though the subquery
  reads none of the columns the UPDATE writes (the rows changed so far look the same to it).
* MariaDB, 0343: an EXISTS, or an anti-join, that looks its one row up by the table's key (``c.id =
  o.customer_id``) with a per-row function was refused: it stops at no "first" row of a masked order; and a typo'd
  column (1054, raised before any row is read) made the next ``@@warning_count`` refused (0344).

Each test also shows the leak its decision closed stays closed, and documents the refusals kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from tests._redteam import AGENT, govern, rows_or_rules

# ---- SQLite ------------------------------------------------------------------------------------------------------

SCHEMA = (
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, full_name TEXT, ssn TEXT, city TEXT, "
    "visits INT DEFAULT 0, status TEXT, code INT)",
    "CREATE UNIQUE INDEX ix_customers_code ON customers(code)",
    "CREATE INDEX ix_customers_email ON customers(email)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INT, status TEXT, created_at TEXT, total REAL)",
)
CITIES = ("Paris", "Oslo", "Rome")


def _lite(emails: dict[int, str] | None = None, *, unique_code: bool = True) -> sqlite3.Connection:
    """A database of 8 customers and 12 orders; ``emails`` overrides some customers' emails (a guess's variant);
    without ``unique_code`` the narrowest index SQLite may scan to cover a read is the one on email."""
    conn = sqlite3.connect(":memory:")
    for sql in SCHEMA:
        if unique_code or "ix_customers_code" not in sql:
            conn.execute(sql)
    for i in range(1, 9):
        email = (emails or {}).get(i, f"user{i}@ex{i % 3}.com")
        conn.execute(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (i, email, f"Name {i}", f"{100 + 7 * i}-22-{1000 + i}", CITIES[i % 3], i % 4, "idle", i),
        )
    for i in range(1, 13):
        conn.execute("INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                     (i, i % 6 + 1, ("new", "paid")[i % 2], f"2026-0{1 + i % 9}-10", 1.5 * i))  # fmt: skip
    conn.commit()
    return conn


def _calls(sql: str, *, governed: bool, emails: dict[int, str] | None = None) -> tuple[Any, list[Any]]:
    """What the statement returns and what the application's ``lower_ascii`` and ``tick`` are handed."""
    raw = _lite(emails, unique_code=False)
    conn: Any = govern(raw, AGENT) if governed else raw
    calls: list[Any] = []
    conn.create_function("lower_ascii", 1, lambda s: calls.append(s) or (s.lower() if isinstance(s, str) else s))
    conn.create_function("tick", 1, lambda x: calls.append(x) or 1)
    seen = rows_or_rules(conn, sql)
    conn.close()
    return seen, calls


CLEAR_CALLS = [
    "SELECT id, lower_ascii(city) FROM customers ORDER BY id",
    "SELECT count(*) FROM customers WHERE lower_ascii(city) = 'paris'",
    "SELECT lower_ascii(city) AS lc, count(*) FROM customers GROUP BY lower_ascii(city) ORDER BY 1",
    "SELECT o.id, lower_ascii(c.city) FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id",
    "SELECT c.id, c.city FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id "
    "AND lower_ascii(o.status) = 'paid') ORDER BY c.id",
    "SELECT lower_ascii(status), count(*) FROM orders GROUP BY 1 ORDER BY 1",
]


@pytest.mark.parametrize("sql", CLEAR_CALLS, ids=lambda s: s[:50])
def test_sqlite_an_application_function_on_clear_columns_runs_as_raw(sql: str) -> None:
    """A function registered through the governed connection, called on clear columns of a table with an index on
    a masked column the statement cannot use (it names none of its columns and needs a column it does not hold),
    returns what the raw connection returns and is called with the same values in the same order."""
    raw = _calls(sql, governed=False)
    assert not isinstance(raw[0], str) and raw[1], raw
    assert _calls(sql, governed=True) == raw


#: the second variant: customer 1's email sorts last instead of first
SWAPPED = {1: "zz-user1@ex1.com"}
STILL_IN_MASKED_ORDER = [
    # names the indexed column: SQLite walks the index on email
    "SELECT count(*) FROM customers WHERE email IS NOT NULL AND tick(id)",
    # needs only the rowid: the index on email covers it, and a scan of it is cheaper
    "SELECT count(*) FROM customers WHERE tick(id)",
    "SELECT tick(id) FROM customers",
    # a derived table's or an output's name that a column of customers has too is no read of that column
    "SELECT tick(city) FROM (SELECT id AS city FROM customers)",
    "SELECT count(*) FROM customers WHERE tick(rowid)",
    # the index forced; a self-join whose second read needs only the key
    "SELECT tick(city) FROM customers INDEXED BY ix_customers_email",
    "SELECT tick(x.city) FROM customers x, customers y WHERE x.id = y.id",
    # accepted: the outer read needs only customers' id, which the index on email covers, and the function is
    # called per outer row (select a clear column of customers too, as above, and it runs)
    "SELECT c.id FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id "
    "AND tick(o.status)) ORDER BY c.id",
]


@pytest.mark.parametrize("sql", STILL_IN_MASKED_ORDER, ids=lambda s: s[:50])
def test_sqlite_an_application_function_in_masked_read_order_stays_refused(sql: str) -> None:
    """Where SQLite may read the table through the index on ``email`` (named, or covering what is read), the
    order of the calls tells how the emails sort (raw: the two variants' calls differ where SQLite walks it);
    governed, both are refused alike and the function is never called (decision 0348, kept)."""
    raw = [_calls(sql, governed=False, emails=e)[1] for e in (None, SWAPPED)]
    if "FROM (" not in sql and "rowid" not in sql and "EXISTS" not in sql:
        assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = (_calls(sql, governed=True, emails=e) for e in (None, SWAPPED))
    assert a == b and a[1] == [] and "masked-column-predicate" in str(a[0]), (a, b)


def _updated(sql: str, *, governed: bool) -> tuple[Any, list[Any]]:
    raw = _lite()
    conn: Any = govern(raw, AGENT, environment="staging") if governed else raw
    seen = rows_or_rules(conn, sql)
    raw.commit()
    state = [tuple(r) for r in raw.execute("SELECT id, visits, status, code FROM customers ORDER BY id")]
    raw.close()
    return seen, state


UPDATES_THAT_RUN = [
    # a correlated subquery of the same table that reads none of the written columns
    "UPDATE customers SET status = 'dup' WHERE +id IN (2, 3, 4, 5, 6, 7) AND EXISTS "
    "(SELECT 1 FROM customers c2 WHERE c2.city = customers.city AND c2.id < customers.id)",
    "UPDATE customers SET visits = visits + (SELECT count(*) FROM customers c2 WHERE c2.city = customers.city) "
    "WHERE +id IN (1, 2, 3)",
    # ordinary bulk writes (decision 0347 never refused them; kept as look-alikes)
    "UPDATE customers SET visits = visits + 1 WHERE id IN (4, 5, 6)",
    "UPDATE customers SET status = 'vip' WHERE id IN (SELECT customer_id FROM orders WHERE total > 10)",
    "UPDATE customers SET status = 'lapsed' WHERE +id IN (1, 2, 7, 8) AND NOT EXISTS "
    "(SELECT 1 FROM orders o WHERE o.customer_id = customers.id)",
]


@pytest.mark.parametrize("sql", UPDATES_THAT_RUN, ids=lambda s: s[:60])
def test_sqlite_multi_row_updates_that_read_no_change_run_as_raw(sql: str) -> None:
    """The UPDATE changes the rows and counts what the raw connection does (the database state is compared)."""
    raw = _updated(sql, governed=False)
    assert isinstance(raw[0], int) and raw[0] > 0, raw
    assert _updated(sql, governed=True) == raw


UPDATES_REFUSED = [
    # the subquery reads the column written: the rows changed so far give it other answers (0347)
    "UPDATE customers SET visits = 1 + (SELECT max(visits) FROM customers c2 WHERE c2.id <> customers.id) "
    "WHERE +id IN (1, 2)",
    "UPDATE customers SET status = 'x' WHERE +id IN (1, 2) AND EXISTS "
    "(SELECT * FROM customers c2 WHERE c2.id < customers.id)",
    # accepted: a unique column written over several rows; whether a row collides with one not yet changed
    # depends on the read order (0347). Write it row by row, by key.
    "UPDATE customers SET code = code + 100 WHERE id IN (1, 2)",
]


@pytest.mark.parametrize("sql", UPDATES_REFUSED, ids=lambda s: s[:60])
def test_sqlite_updates_that_read_their_own_changes_stay_refused(sql: str) -> None:
    """Refused with the masking rule, and nothing written."""
    before = _updated("SELECT 1", governed=False)[1]
    seen, state = _updated(sql, governed=True)
    assert "masked-column-predicate" in str(seen) and state == before, seen


def test_sqlite_a_generated_column_the_subquery_reads_counts_as_written() -> None:
    """A generated column follows the written one: a subquery that reads it reads the changes (refused)."""
    raw = sqlite3.connect(":memory:")
    raw.executescript(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, ssn TEXT, visits INT, twice INT AS (visits * 2));"
        "CREATE INDEX ix ON customers(ssn);"
        "INSERT INTO customers (id, ssn, visits) VALUES (1, '536-22-8726', 1), (2, '219-45-1002', 2);"
    )
    conn = govern(raw, AGENT, environment="staging")
    sql = "UPDATE customers SET visits = (SELECT max(twice) FROM customers c2 WHERE c2.id <> customers.id) " \
          "WHERE +id IN (1, 2)"  # fmt: skip
    assert str(rows_or_rules(conn, sql)).startswith("refused")
    assert raw.execute("SELECT visits FROM customers ORDER BY id").fetchall() == [(1,), (2,)]
    raw.close()


def test_sqlite_agent_mistakes_keep_their_errors() -> None:
    """A typo'd column or table is the driver's error with its message, as raw (0346 passes compile errors)."""
    for sql in ("SELECT id, emial FROM customers", "SELECT id FROM custmers",
                "SELECT id, full_nam FROM customers WHERE email IS NOT NULL"):  # fmt: skip
        out = []
        for governed in (False, True):
            conn: Any = govern(_lite(), AGENT) if governed else _lite()
            with pytest.raises(sqlite3.OperationalError) as caught:
                conn.execute(sql)
            out.append(str(caught.value))
        assert out[0] == out[1] and out[0].startswith("no such"), out


# ---- MariaDB (PyMySQL) -------------------------------------------------------------------------------------------


@pytest.fixture
def shop(mysql_conn: Any, unique: str) -> Iterator[str]:
    """customers (index on email), orders: the prefix of the table names."""
    p = f"or17_{unique}_"
    with closing(mysql_conn.cursor()) as cur:
        cur.execute(f"CREATE TABLE {p}c (id INT PRIMARY KEY, email VARCHAR(100), full_name VARCHAR(100), "
                    "ssn VARCHAR(20), city VARCHAR(40), signup DATE, INDEX ix_email (email))")  # fmt: skip
        cur.execute(f"CREATE TABLE {p}o (id INT PRIMARY KEY, customer_id INT, status VARCHAR(20), INDEX (customer_id))")
        cur.executemany(f"INSERT INTO {p}c VALUES (%s, %s, %s, %s, %s, %s)", [
            (i, f"user{i}@ex.com", f"Name {i}", f"{100 + 7 * i}-22-1000", CITIES[i % 3], f"202{4 + i % 2}-03-0{i}")
            for i in range(1, 9)])  # fmt: skip
        cur.executemany(f"INSERT INTO {p}o VALUES (%s, %s, %s)", [(i, i % 10 + 1, "paid") for i in range(1, 13)])
    yield p
    with closing(mysql_conn.cursor()) as cur:
        cur.execute(f"DROP TABLE IF EXISTS {p}c, {p}o")


@pytest.fixture
def governed_mysql(mysql_kw: dict[str, Any]) -> Iterator[Any]:
    import pymysql

    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), AGENT)
    yield conn
    conn.close()


KEYED_LOOKUPS = [
    "SELECT o.id FROM {p}o o WHERE EXISTS (SELECT 1 FROM {p}c c WHERE c.id = o.customer_id "
    "AND YEAR(c.signup) = 2025) ORDER BY o.id",
    "SELECT o.id FROM {p}o o WHERE NOT EXISTS (SELECT 1 FROM {p}c c WHERE c.id = o.customer_id "
    "AND LOWER(c.city) = 'paris') ORDER BY o.id",
    "SELECT o.id FROM {p}o o LEFT JOIN {p}c c ON c.id = o.customer_id AND LOWER(c.city) = 'paris' "
    "WHERE c.id IS NULL ORDER BY o.id",
    "SELECT o.id FROM {p}o o LEFT JOIN {p}c c ON c.id = o.customer_id AND c.signup > '2024-06-01' "
    "WHERE c.id IS NULL ORDER BY o.id",
]


@pytest.mark.parametrize("sql", KEYED_LOOKUPS, ids=lambda s: s[20:80])
def test_mariadb_a_subquery_or_anti_join_by_key_runs_as_raw(
    mysql_conn: Any, governed_mysql: Any, shop: str, sql: str
) -> None:
    """An EXISTS or anti-join that looks its one row of customers up by the primary key evaluates a function on that
    row only: the same rows (and warning count) as raw."""
    text = sql.format(p=shop)
    raw = rows_or_rules(mysql_conn, text), rows_or_rules(mysql_conn, "SELECT @@warning_count")
    gov = rows_or_rules(governed_mysql, text), rows_or_rules(governed_mysql, "SELECT @@warning_count")
    assert raw == gov and raw[0], (raw, gov)


ACCEPTED_MARIADB = [
    # no key pins the rows: the scan stops at the first match in the order of the index on email (0343)
    "SELECT EXISTS (SELECT 1 FROM {p}c WHERE CONCAT(city, '-') = 'Paris-')",
    # IN over the key: a NULL outer value may make MariaDB look for any row of the subquery, stopping at the first
    "SELECT o.id FROM {p}o o WHERE o.customer_id IN (SELECT id FROM {p}c WHERE LOWER(city) = 'paris') ORDER BY o.id",
    # the key is pinned only with another condition OR-ed in: rows are scanned
    "SELECT o.id FROM {p}o o WHERE EXISTS (SELECT 1 FROM {p}c c WHERE (c.id = o.customer_id OR c.city = 'Oslo') "
    "AND YEAR(c.signup) = 2025) ORDER BY o.id",
]


@pytest.mark.parametrize("sql", ACCEPTED_MARIADB, ids=lambda s: s[:60])
def test_mariadb_accepted_refusals_of_stopping_subqueries(governed_mysql: Any, shop: str, sql: str) -> None:
    """Kept refusals (decision 0343), each a shape that may stop at a first row read in the email order."""
    assert "masked-column-predicate" in str(rows_or_rules(governed_mysql, sql.format(p=shop)))


def test_mariadb_a_keyed_exists_tells_no_rank(mysql_conn: Any, governed_mysql: Any, shop: str) -> None:
    """0343's oracle with the subquery pinned by the key: raw, the warnings do not depend on where customer 1's
    email sorts (each outer row evaluates its one customer), so letting it run reveals nothing."""
    sql = (f"SELECT count(*) FROM {shop}o o WHERE EXISTS (SELECT 1 FROM {shop}c c WHERE c.id = o.customer_id "
           "AND c.email IS NOT NULL AND CASE WHEN c.id = 1 THEN 1 ELSE CAST(c.city AS INT) END)")  # fmt: skip
    seen = []
    for email in ("aaa@ex.com", "zzz@ex.com"):
        with closing(mysql_conn.cursor()) as cur:
            cur.execute(f"UPDATE {shop}c SET email = %s WHERE id = 1", (email,))
        for conn in (mysql_conn, governed_mysql):
            seen.append((rows_or_rules(conn, sql), rows_or_rules(conn, "SELECT @@warning_count")))
    assert seen[0] == seen[1] == seen[2] == seen[3], seen


def test_mariadb_a_typo_leaves_the_warning_count_readable(governed_mysql: Any, shop: str) -> None:
    """An unknown column (1054, raised before any row is read) passes with its message and does not make the next
    ``@@warning_count`` refused (0344 is about statements that failed part-way through their rows)."""
    import pymysql

    with closing(governed_mysql.cursor()) as cur, pytest.raises(pymysql.err.OperationalError) as caught:
        cur.execute(f"SELECT id, emial FROM {shop}c")
    assert caught.value.args[0] == 1054
    assert not isinstance(rows_or_rules(governed_mysql, "SELECT @@warning_count"), str)


def test_sqlite_a_trigger_on_the_table_keeps_the_update_refused() -> None:
    """A subquery that reads none of the columns an UPDATE names would still see the rows changed so far if a
    trigger wrote another column as each row changed (an application's ``touched`` counter): with any trigger on the
    table the pre-0337 refusal stands (fail closed; in the shapes tried here SQLite changed a triggered UPDATE's rows
    in rowid order, so no oracle was found), and nothing is written. Without the trigger the same UPDATE runs."""
    sql = ("UPDATE customers SET status = -1 - (SELECT count(*) FROM customers c2 WHERE c2.touched > 0 AND "
           "c2.id <> customers.id) WHERE +id IN (1, 2) AND ssn IS NOT NULL")

    def copy(trigger: bool) -> sqlite3.Connection:
        raw = sqlite3.connect(":memory:")
        raw.executescript(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, ssn TEXT, status TEXT, touched INT DEFAULT 0);"
            "CREATE INDEX ix ON customers(ssn);"
            + ("CREATE TRIGGER tr AFTER UPDATE OF status ON customers BEGIN "
               "UPDATE customers SET touched = 1 WHERE id = NEW.id; END;" if trigger else "")
        )
        raw.executemany("INSERT INTO customers (id, ssn) VALUES (?, ?)", [(1, "536-22-8726"), (2, "219-45-1002")])
        return raw

    raw = copy(trigger=True)
    seen = rows_or_rules(govern(raw, AGENT, environment="staging"), sql)
    assert str(seen).startswith("refused") and "masked-column-predicate" in str(seen), seen
    assert [r[0] for r in raw.execute("SELECT status FROM customers ORDER BY id")] == [None, None]
    raw.close()
    raw = copy(trigger=False)
    assert rows_or_rules(govern(raw, AGENT, environment="staging"), sql) == 2
    raw.close()
