"""A masked column grouped beside a key of its own row (decision 0283).

``SELECT c.id, c.full_name, count(o.id) FROM customers c JOIN orders o ... GROUP BY c.id, c.full_name`` is the
everyday way to list customers with a count (DuckDB and strict SQL require the name in the GROUP BY). Every row of
a group then shares one customer row, so the name splits no group and decides no count: the statement runs, the
name comes back masked. What it could still decide is the *order* of the groups (SQLite walks an index on
``(full_name, id)`` to group, which sorts the customers by name), so the order guard orders them by the key.
Anything short of a whole key of the same table reference beside it — another column, a nullable unique column, a
self-join's other side, ROLLUP, a table's history — stays refused. Each case compares what an agent sees for two
different secrets on the raw connection (the oracle exists) and on the governed one (no difference).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import governed_db
from governed_db import Identity
from tests._redteam import observe

AGENT = Identity("curious-agent", kind="agent")
NAMES = ["Alice Smith", "Bob Jones", "Carla Mendez", "David Okafor", "Eva Novak", "Frank Miller"]
SECRETS = ("Aaron Kim", "Zed Quux")  # sort before and after every other name


def _rows(secret: str) -> list[tuple[int, str, str, str]]:
    return [
        (i, secret if i == 7 else f"{NAMES[i % 6]} {i}", f"user{i}@example.com", "Paris" if i % 2 else "Lyon")
        for i in range(40)
    ]


def _sqlite(secret: str, pk: str = "INTEGER PRIMARY KEY", governed: bool = True) -> Any:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute(f"CREATE TABLE c (id {pk}, full_name text, email text, city text)")
    raw.execute("CREATE INDEX c_name ON c (full_name, id)")
    raw.execute("CREATE TABLE o (id INTEGER PRIMARY KEY, customer_id int)")
    raw.executemany("INSERT INTO c VALUES (?, ?, ?, ?)", _rows(secret))
    raw.executemany("INSERT INTO o VALUES (?, ?)", [(i, i % 20) for i in range(60)])
    raw.execute("ANALYZE")
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=False) if governed else raw


def _seen(sql: str, **kw: Any) -> tuple[Any, Any, Any, Any]:
    """(raw for secret 0, raw for secret 1, governed for secret 0, governed for secret 1)."""
    raw = [observe(_sqlite(s, governed=False, **kw), sql) for s in SECRETS]
    gov = [observe(_sqlite(s, **kw), sql) for s in SECRETS]
    return raw[0], raw[1], gov[0], gov[1]


def test_the_order_of_groups_no_longer_follows_the_masked_name() -> None:
    """SQLite groups by walking the index on (full_name, id): the raw order puts customer 7 first or last by
    its name. Governed, the groups come back by id, the names masked."""
    sql = "SELECT c.id, c.full_name FROM c GROUP BY c.id, c.full_name LIMIT 12"
    raw0, raw1, gov0, gov1 = _seen(sql)
    assert raw0 != raw1, (raw0, raw1)  # the oracle: where 7 lands
    assert gov0 == gov1, (gov0, gov1)
    assert [r[0] for r in gov0[1]] == list(range(12))
    assert {r[1] for r in gov0[1]} == {"[PERSON_NAME]"}


def test_a_top_n_by_count_breaks_its_ties_by_the_key() -> None:
    """``ORDER BY n DESC LIMIT 5``: every customer of the first 20 has 3 orders; which tied ones the LIMIT keeps
    followed the index walk (the name) and now follows the id."""
    sql = (
        "SELECT c.id, count(o.id) AS n FROM c LEFT JOIN o ON o.customer_id = c.id "
        "GROUP BY c.id, c.full_name ORDER BY n DESC LIMIT 5"
    )
    raw0, raw1, gov0, gov1 = _seen(sql)
    assert raw0 != raw1, (raw0, raw1)
    assert gov0 == gov1 == (["id", "n"], [(0, 3), (1, 3), (2, 3), (3, 3), (4, 3)])


def test_distinct_beside_the_key_runs_ordered_by_it() -> None:
    sql = "SELECT DISTINCT c.id, c.email, c.full_name FROM c JOIN o ON o.customer_id = c.id LIMIT 4"
    _raw0, _raw1, gov0, gov1 = _seen(sql)
    assert gov0 == gov1, (gov0, gov1)
    assert [r[0] for r in gov0[1]] == [0, 1, 2, 3]
    assert all(r[1] == "u***@example.com" and r[2] == "[PERSON_NAME]" for r in gov0[1]), gov0


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM (SELECT full_name FROM c GROUP BY full_name) t",  # no key at all
        "SELECT c.city, count(*) FROM c GROUP BY c.city, c.full_name",  # another column
        # a self-join: b's name beside a's key splits a's groups
        "SELECT a.id, count(*) FROM c a JOIN c b ON b.id > a.id GROUP BY a.id, b.full_name LIMIT 3",
        "SELECT c.id, count(*) FROM c GROUP BY ROLLUP (c.id, c.full_name) LIMIT 3",
        "SELECT c.id, count(*) FROM c GROUP BY CUBE (c.id, c.full_name) LIMIT 3",
        "SELECT count(*) FROM (SELECT DISTINCT full_name, city FROM c) t",
        # ``id`` here may name the output (the name): not counted as the key
        "SELECT full_name AS id, count(*) FROM c GROUP BY id, full_name",
    ],
)
def test_without_a_whole_key_beside_it_grouping_stays_refused(sql: str) -> None:
    _raw0, _raw1, gov0, gov1 = _seen(sql)
    assert gov0 == gov1
    assert isinstance(gov0, str) and "masked-column-predicate" in gov0, gov0


def test_a_primary_key_that_may_hold_nulls_is_no_key() -> None:
    """SQLite lets a rowid table's ``int PRIMARY KEY`` (not INTEGER) hold NULLs, and NULLs group together: two
    rows of NULL id would be split by their names. Without NOT NULL it is no key here."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE c (id int PRIMARY KEY, full_name text)")
    raw.executemany("INSERT INTO c VALUES (?, ?)", [(None, "Alice Smith"), (None, "Bob Jones"), (1, "Carla Mendez")])
    sql = "SELECT count(*) FROM (SELECT id FROM c GROUP BY id, full_name) t"
    assert observe(raw, sql) == (["count(*)"], [(3,)])  # NULL ids split by name: 3 groups, not 2
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    seen = observe(conn, sql)
    assert isinstance(seen, str) and "masked-column-predicate" in seen, seen
    raw.execute("CREATE TABLE d (id int NOT NULL PRIMARY KEY, full_name text)")
    raw.executemany("INSERT INTO d VALUES (?, ?)", [(1, "Alice Smith"), (2, "Bob Jones")])
    assert observe(conn, "SELECT id FROM d GROUP BY id, full_name") == (["id"], [(1,), (2,)])


# -- the four databases ----------------------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "duckdb", "postgres", "mysql"])
def db(request: pytest.FixtureRequest, unique: str) -> Iterator[tuple[str, Any, Callable[[str], None], str]]:
    """(dialect, raw connection, execute-on-raw, table prefix); the tables are dropped afterwards."""
    kind = request.param
    if kind == "sqlite":
        raw: Any = sqlite3.connect(":memory:", isolation_level=None)
    elif kind == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        raw = duckdb.connect()
    elif kind == "postgres":
        import psycopg

        raw = psycopg.connect(request.getfixturevalue("pg_dsn"), autocommit=True)
    else:
        import pymysql

        raw = pymysql.connect(autocommit=True, **request.getfixturevalue("mysql_kw"))
    yield from _server(kind, raw, unique)
    raw.close()


def _fill(run: Callable[[str], None], p: str) -> None:
    run(f"CREATE TABLE {p}_c (id INTEGER PRIMARY KEY, full_name VARCHAR(60), email VARCHAR(60), city VARCHAR(20))")
    run(f"CREATE TABLE {p}_o (id INTEGER PRIMARY KEY, customer_id INTEGER, total DECIMAL(8, 2))")
    run(f"INSERT INTO {p}_c VALUES " + ", ".join(f"({i}, '{n}', '{e}', '{c}')" for i, n, e, c in _rows("Aaron Kim")))
    run(f"INSERT INTO {p}_o VALUES " + ", ".join(f"({i}, {i % 20}, {i}.50)" for i in range(60)))


def test_customers_with_their_order_counts_run_on_every_database(db: tuple[str, Any, Any, str]) -> None:
    """The innocent statements: the counts are the database's, the names and e-mails masked, ties in key order."""
    _kind, raw, run, p = db
    _fill(run, p)
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    top = observe(conn, f"SELECT c.id, c.full_name, count(o.id) AS n, sum(o.total) AS spent FROM {p}_c c "
                        f"JOIN {p}_o o ON o.customer_id = c.id GROUP BY c.id, c.full_name ORDER BY n DESC LIMIT 3")
    assert not isinstance(top, str), top
    assert [(r[0], r[1], r[2]) for r in top[1]] == [(0, "[PERSON_NAME]", 3), (1, "[PERSON_NAME]", 3),
                                                    (2, "[PERSON_NAME]", 3)], top
    assert [float(r[3]) for r in top[1]] == [61.5, 64.5, 67.5]
    listed = observe(conn, f"SELECT c.full_name, c.email, count(*) AS n FROM {p}_c c JOIN {p}_o o "
                           f"ON o.customer_id = c.id GROUP BY c.id, c.full_name, c.email")
    assert not isinstance(listed, str) and len(listed[1]) == 20, listed
    assert {(r[0], r[1], r[2]) for r in listed[1]} == {("[PERSON_NAME]", "u***@example.com", 3)}, listed
    distinct = observe(conn, f"SELECT DISTINCT c.id, c.email FROM {p}_c c JOIN {p}_o o ON o.customer_id = c.id")
    assert not isinstance(distinct, str) and [r[0] for r in distinct[1]] == list(range(20)), distinct
    assert "Aaron" not in repr((top, listed, distinct)) and "user7@" not in repr((top, listed, distinct))
    # still refused: the name without the key, and the key of the other side of a self-join
    for sql in (f"SELECT count(*) FROM (SELECT full_name FROM {p}_c GROUP BY full_name) t",
                f"SELECT a.id, count(*) FROM {p}_c a JOIN {p}_c b ON b.id = a.id + 1 GROUP BY a.id, b.full_name"):
        seen = observe(conn, sql)
        assert isinstance(seen, str) and "masked-column-predicate" in seen, (sql, seen)


@pytest.fixture
def mariadb(mysql_conn: Any, unique: str) -> Iterator[tuple[str, Any, Callable[[str], None], str]]:
    yield from _server("mysql", mysql_conn, unique)


@pytest.fixture
def postgres(pg_conn: Any, unique: str) -> Iterator[tuple[str, Any, Callable[[str], None], str]]:
    yield from _server("postgres", pg_conn, unique)


def _server(kind: str, raw: Any, unique: str) -> Iterator[tuple[str, Any, Callable[[str], None], str]]:
    prefix = f"gk_{unique}"

    def run(sql: str) -> None:
        raw.cursor().execute(sql)

    yield kind, raw, run, prefix
    for t in ("o", "c_child", "c"):
        with contextlib.suppress(Exception):
            run(f"DROP TABLE IF EXISTS {prefix}_{t}")


def test_mariadb_a_unique_key_counts_only_when_never_null(mariadb: tuple[str, Any, Any, str]) -> None:
    """MariaDB's keys are its unique indexes over NOT NULL columns; a nullable unique column is none."""
    _kind, raw, run, p = mariadb
    run(f"CREATE TABLE {p}_c (id INTEGER PRIMARY KEY, uk INTEGER NOT NULL, nk INTEGER, full_name VARCHAR(60), "
        "UNIQUE KEY (uk), UNIQUE KEY (nk))")
    run(f"INSERT INTO {p}_c VALUES " + ", ".join(f"({i}, {i}, {i}, '{n}')" for i, n, _e, _c in _rows("Aaron Kim")))
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    ok = observe(conn, f"SELECT uk, full_name FROM {p}_c GROUP BY uk, full_name LIMIT 2")
    assert ok == (["uk", "full_name"], [(0, "[PERSON_NAME]"), (1, "[PERSON_NAME]")]), ok
    refused = observe(conn, f"SELECT nk FROM {p}_c GROUP BY nk, full_name")
    assert isinstance(refused, str) and "masked-column-predicate" in refused, refused


def test_mariadb_a_tables_history_has_many_rows_per_key(mariadb: tuple[str, Any, Any, str]) -> None:
    """``FOR SYSTEM_TIME ALL`` returns every version of a row under one id: the names of its versions would split
    the id's group (how many names it had, and whether an update to a guess changed it)."""
    _kind, raw, run, p = mariadb
    run(f"CREATE TABLE {p}_c (id INTEGER PRIMARY KEY, full_name VARCHAR(60)) WITH SYSTEM VERSIONING")
    run(f"INSERT INTO {p}_c VALUES (1, 'Aaron Kim'), (2, 'Bob Jones')")
    run(f"UPDATE {p}_c SET full_name = 'Zed Quux' WHERE id = 1")
    sql = f"SELECT count(*) FROM (SELECT id FROM {p}_c FOR SYSTEM_TIME ALL GROUP BY id, full_name) t"
    raw_seen = observe(raw, sql)
    assert raw_seen == (["count(*)"], [(3,)]), raw_seen  # id 1 split by its two names
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    seen = observe(conn, sql)
    assert isinstance(seen, str) and "refused" in seen, seen
    run(f"ALTER TABLE {p}_c DROP SYSTEM VERSIONING")


def test_postgresql_a_parent_table_returns_its_childrens_rows_too(postgres: tuple[str, Any, Any, str]) -> None:
    """A table inheriting from ``c`` may repeat its ids (the primary key holds for the parent's own rows), and
    ``FROM c`` reads the children's rows too: a child row of id 7 holding a guess would share the secret's group
    when the guess is right. Such a parent's key is no key here."""
    _kind, raw, run, p = postgres
    _fill(run, p)
    run(f"CREATE TABLE {p}_c_child () INHERITS ({p}_c)")
    sql = f"SELECT count(*) FROM (SELECT c.id FROM {p}_c c GROUP BY c.id, c.full_name) t"
    counts = []
    for guess in ("Aaron Kim", "Bob Jones"):
        run(f"DELETE FROM {p}_c_child")
        run(f"INSERT INTO {p}_c_child VALUES (7, '{guess}', 'x@example.com', 'Paris')")
        counts.append(observe(raw, sql))
    assert counts[0] != counts[1], counts  # the oracle: 40 groups for the right guess, 41 for a wrong one
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    seen = observe(conn, sql)
    assert isinstance(seen, str) and "masked-column-predicate" in seen, seen
