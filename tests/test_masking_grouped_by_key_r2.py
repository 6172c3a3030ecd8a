"""A masked column grouped beside its key, attacked (decision 0283, round 2: decision 0284).

Grouping ``c.full_name`` beside ``c.id`` splits no group only when ``id`` really tells the rows read apart, and its
groups' order (a sort or hash over the name) must reach nothing the caller sees. Each case compares what an agent
sees for a right and a wrong guess: the raw connection shows the difference (the oracle exists), the governed one
does not; innocent look-alikes keep running with the database's own answers.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db import Identity
from tests._redteam import observe

AGENT = Identity("curious-agent", kind="agent")
NAMES = ["Bob Jones", "Carla Mendez", "David Okafor", "Eva Novak", "Frank Miller", "Gina Ross"]
SECRETS = ("Aaron Kim", "Zed Quux")  # sort before and after every other name
GUESSES = ("Aaron Kim", "Bob Jones")  # the secret is "Aaron Kim": the first guess is right


def _gov(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)


def _refused(seen: Any) -> bool:
    return isinstance(seen, str) and seen.startswith("refused") and "Aaron" not in seen and "Zed" not in seen


def _customers(secret: str) -> str:
    return ", ".join(
        f"({i}, '{secret if i == 7 else f'{NAMES[i % 6]} {i}'}', '{'Paris' if i % 2 else 'Lyon'}')" for i in range(20)
    )


# -- the order of the groups reaching a window -------------------------------------------------------------------
@pytest.fixture(params=["duckdb", "mysql"])
def grouped(request: pytest.FixtureRequest, unique: str) -> Iterator[tuple[Any, str]]:
    """A connection factory (secret -> raw connection with the table filled) and the table's name."""
    table = f"gk2_{unique}"
    opened: list[Any] = []

    def make(secret: str) -> Any:
        if request.param == "duckdb":
            duckdb = pytest.importorskip("duckdb")
            raw = duckdb.connect()
        else:
            import pymysql

            raw = pymysql.connect(autocommit=True, **request.getfixturevalue("mysql_kw"))
        opened.append(raw)
        cur = raw.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, full_name VARCHAR(60), city VARCHAR(20))")
        cur.execute(f"INSERT INTO {table} VALUES {_customers(secret)}")
        return raw

    yield make, table
    for raw in opened:
        with contextlib.suppress(Exception):
            raw.cursor().execute(f"DROP TABLE IF EXISTS {table}")
        raw.close()


def test_a_window_over_the_groups_numbers_them_by_the_key(grouped: tuple[Any, str]) -> None:
    """``row_number() OVER ()`` over ``GROUP BY c.full_name, c.id`` numbered the groups in the order the grouping
    made them: MariaDB sorts by the name (customer 7 first or last), DuckDB hashes it. The ORDER BY the guard added
    came after the window; the window itself is now ordered by the key."""
    make, t = grouped
    sql = f"SELECT c.id, row_number() OVER () AS rn FROM {t} c GROUP BY c.full_name, c.id"
    raw = [observe(make(s), sql) for s in SECRETS]
    assert raw[0] != raw[1], raw  # the oracle: customer 7's number follows its name
    gov = [observe(_gov(make(s)), sql) for s in SECRETS]
    assert gov[0] == gov[1] == (["id", "rn"], [(i, i + 1) for i in range(20)]), gov
    # ties of the window's own order are broken by the key too
    sql = f"SELECT c.id, row_number() OVER (ORDER BY count(*)) AS rn FROM {t} c GROUP BY c.full_name, c.id"
    raw = [observe(make(s), sql) for s in SECRETS]
    assert raw[0] != raw[1], raw
    gov = [observe(_gov(make(s)), sql) for s in SECRETS]
    assert gov[0] == gov[1] == (["id", "rn"], [(i, i + 1) for i in range(20)]), gov


def test_windows_over_groups_that_cannot_be_ordered_are_refused(grouped: tuple[Any, str]) -> None:
    make, t = grouped
    sql = f"SELECT c.id, row_number() OVER w AS rn FROM {t} c GROUP BY c.id, c.full_name WINDOW w AS ()"
    raw = [observe(make(s), sql) for s in SECRETS]
    gov = [observe(_gov(make(s)), sql) for s in SECRETS]
    assert gov[0] == gov[1] and _refused(gov[0]), (sql, raw, gov)
    # a frame first in its window: the key is written before it now (it was written after, which did not parse,
    # and refused), so the window counts the groups in key order (decision 0320)
    sql = f"SELECT c.id, count(*) OVER (ROWS 1 PRECEDING) AS s FROM {t} c GROUP BY c.full_name, c.id"
    gov = [observe(_gov(make(s)), sql) for s in SECRETS]
    assert gov[0] == gov[1] == (["id", "s"], [(i, min(i + 1, 2)) for i in range(20)]), gov


def test_windows_over_groups_by_the_key_keep_running(grouped: tuple[Any, str]) -> None:
    """Innocent look-alikes run: a window ordered by the key, a count over all groups, and ``first_value`` over a
    partition by a grouped column (which picked the first name in name order; now the first id)."""
    make, t = grouped
    conn = _gov(make("Aaron Kim"))
    seen = observe(conn, f"SELECT c.id, c.full_name, row_number() OVER (ORDER BY c.id DESC) AS rn FROM {t} c "
                         "GROUP BY c.id, c.full_name")
    assert not isinstance(seen, str) and len(seen[1]) == 20, seen
    assert {(r[0], r[2]) for r in seen[1]} == {(i, 20 - i) for i in range(20)}
    assert {r[1] for r in seen[1]} == {"[PERSON_NAME]"}
    seen = observe(conn, f"SELECT c.city, c.id, first_value(c.id) OVER (PARTITION BY c.city) AS f FROM {t} c "
                         "GROUP BY c.id, c.full_name, c.city")
    assert not isinstance(seen, str) and {(r[0], r[2]) for r in seen[1]} == {("Lyon", 0), ("Paris", 1)}, seen
    seen = observe(conn, f"SELECT c.id, count(*) OVER () AS n FROM {t} c GROUP BY c.id, c.full_name")
    assert not isinstance(seen, str) and {r[1] for r in seen[1]} == {20}, seen


# -- keys that may repeat for the rows read ------------------------------------------------------------------------
def _guessed(make: Any, steps: list[str], sql: str, governed: bool) -> list[Any]:
    """What ``sql`` shows after ``steps`` (each with GUESS replaced), for each guess."""
    out = []
    for guess in GUESSES:
        raw = make()
        conn = _gov(raw) if governed else raw
        for step in steps:
            observe(conn, step.replace("GUESS", guess))
        out.append(observe(conn, sql))
        with contextlib.suppress(Exception):
            raw.cursor().execute("ROLLBACK")  # an open transaction would hold its locks past the next guess
    return out


def _sqlite(ddl: str, rows: str) -> Any:
    def make() -> Any:
        raw = sqlite3.connect(":memory:", isolation_level=None)
        raw.execute(ddl)
        raw.execute(f"INSERT INTO c VALUES {rows}")
        return raw

    return make


_KEYS = "(1, 'Aaron Kim'), " + ", ".join(f"({i + 2}, '{NAMES[i % 6]} {i}')" for i in range(40))
_TEXT_KEYS = "('a1', 'Aaron Kim'), " + ", ".join(f"('k{i}', '{NAMES[i % 6]} {i}')" for i in range(40))


def test_sqlite_integer_primary_key_desc_is_no_rowid_and_holds_nulls() -> None:
    """``INTEGER PRIMARY KEY DESC`` is SQLite's exception: no rowid alias, so NULLs go in, and NULLs group together.
    The agent moves the secret's row to a NULL id, adds a guess beside it, and counts the groups."""
    make = _sqlite("CREATE TABLE c (id INTEGER PRIMARY KEY DESC, full_name text)", _KEYS)
    steps = ["UPDATE c SET id = NULL WHERE id = 1", "INSERT INTO c VALUES (NULL, 'GUESS')"]
    sql = "SELECT count(*) FROM (SELECT id FROM c GROUP BY id, full_name) t"
    raw = _guessed(make, steps, sql, governed=False)
    assert raw == [(["count(*)"], [(41,)]), (["count(*)"], [(42,)])], raw
    gov = _guessed(make, steps, sql, governed=True)
    assert gov[0] == gov[1] and _refused(gov[0]), gov
    # the rowid alias itself still counts
    conn = _gov(_sqlite("CREATE TABLE c (id INTEGER PRIMARY KEY, full_name text)", _KEYS)())
    assert observe(conn, sql) == (["count(*)"], [(41,)])


@pytest.mark.parametrize("without_rowid", ["", " WITHOUT ROWID"])
@pytest.mark.parametrize("collation", ["NOCASE", "RTRIM"])
def test_sqlite_a_key_kept_apart_under_another_collation_than_its_column(collation: str, without_rowid: str) -> None:
    """``PRIMARY KEY (ref COLLATE BINARY)`` over a ``COLLATE NOCASE`` column keeps ``'a1'`` and ``'A1'`` apart; GROUP
    BY ref compares by the column's collation and puts them in one group, which the names then split."""
    make = _sqlite(
        f"CREATE TABLE c (ref TEXT COLLATE {collation} NOT NULL, full_name text, PRIMARY KEY (ref COLLATE BINARY))"
        + without_rowid,
        _TEXT_KEYS,
    )
    twin = "A1" if collation == "NOCASE" else "a1 "
    steps = [f"INSERT INTO c VALUES ('{twin}', 'GUESS')"]
    sql = "SELECT count(*) FROM (SELECT ref FROM c GROUP BY ref, full_name) t"
    raw = _guessed(make, steps, sql, governed=False)
    assert raw == [(["count(*)"], [(41,)]), (["count(*)"], [(42,)])], raw
    gov = _guessed(make, steps, sql, governed=True)
    assert gov[0] == gov[1] and _refused(gov[0]), gov


def test_sqlite_a_text_primary_key_without_collations_still_counts() -> None:
    conn = _gov(_sqlite("CREATE TABLE c (ref TEXT NOT NULL PRIMARY KEY, full_name text)", _TEXT_KEYS)())
    seen = observe(conn, "SELECT ref, full_name FROM c GROUP BY ref, full_name ORDER BY ref LIMIT 2")
    assert seen == (["ref", "full_name"], [("a1", "[PERSON_NAME]"), ("k0", "[PERSON_NAME]")]), seen


def test_sqlite_an_attached_tables_key_is_its_own() -> None:
    """``aux.c`` (no key) was judged by ``main.c``'s INTEGER PRIMARY KEY."""

    def make(key: str = "int") -> Any:
        raw = sqlite3.connect(":memory:", isolation_level=None)
        raw.execute("ATTACH ':memory:' AS aux")
        for table, pk in (("main.c", "INTEGER PRIMARY KEY"), ("aux.c", key)):
            raw.execute(f"CREATE TABLE {table} (id {pk}, full_name text)")
            raw.execute(f"INSERT INTO {table} VALUES {_KEYS}")
        return raw

    steps = ["INSERT INTO aux.c VALUES (1, 'GUESS')"]
    sql = "SELECT count(*) FROM (SELECT id FROM aux.c GROUP BY id, full_name) t"
    raw = _guessed(make, steps, sql, governed=False)
    assert raw == [(["count(*)"], [(41,)]), (["count(*)"], [(42,)])], raw
    gov = _guessed(make, steps, sql, governed=True)  # (cross-database: logged, not refused)
    assert gov[0] == gov[1] and _refused(gov[0]), gov
    seen = observe(_gov(make("INTEGER PRIMARY KEY")), sql)
    assert seen == (["count(*)"], [(41,)]), seen  # its own key counts


def _duckdb(ddl: str, rows: str, attached: str | None = None) -> Any:
    duckdb = pytest.importorskip("duckdb")

    def make() -> Any:
        raw = duckdb.connect()
        if attached is not None:
            raw.execute("ATTACH ':memory:' AS aux")
            raw.execute(attached)
            raw.execute(f"INSERT INTO aux.c VALUES {rows}")
        raw.execute(ddl)
        raw.execute(f"INSERT INTO c VALUES {rows}")
        return raw

    return make


def test_duckdb_a_primary_key_over_a_nocase_column_keeps_cases_apart() -> None:
    make = _duckdb("CREATE TABLE c (ref VARCHAR COLLATE NOCASE PRIMARY KEY, full_name VARCHAR)", _TEXT_KEYS)
    steps = ["INSERT INTO c VALUES ('A1', 'GUESS')"]
    sql = "SELECT count(*) AS n FROM (SELECT ref FROM c GROUP BY ref, full_name) t"
    raw = _guessed(make, steps, sql, governed=False)
    assert raw == [(["n"], [(41,)]), (["n"], [(42,)])], raw
    gov = _guessed(make, steps, sql, governed=True)
    assert gov[0] == gov[1] and _refused(gov[0]), gov
    conn = _gov(_duckdb("CREATE TABLE c (id INTEGER PRIMARY KEY, full_name VARCHAR)", _KEYS)())
    assert observe(conn, "SELECT count(*) AS n FROM (SELECT id FROM c GROUP BY id, full_name) t") == (["n"], [(41,)])


def test_duckdb_a_key_of_a_same_named_table_in_another_database_is_none() -> None:
    """``duckdb_constraints()`` lists ``aux.main.c``'s primary key under schema ``main`` too: ``c`` (no key) took it."""
    make = _duckdb(
        "CREATE TABLE c (id INTEGER, full_name VARCHAR)",
        _KEYS,
        attached="CREATE TABLE aux.c (id INTEGER PRIMARY KEY, full_name VARCHAR)",
    )
    steps = ["INSERT INTO c VALUES (1, 'GUESS')"]
    sql = "SELECT count(*) AS n FROM (SELECT id FROM c GROUP BY id, full_name) t"
    raw = _guessed(make, steps, sql, governed=False)
    assert raw == [(["n"], [(41,)]), (["n"], [(42,)])], raw
    gov = _guessed(make, steps, sql, governed=True)
    assert gov[0] == gov[1] and _refused(gov[0]), gov


def test_duckdb_a_window_concatenating_groups_is_refused() -> None:
    duckdb = pytest.importorskip("duckdb")

    def make(secret: str) -> Any:
        raw = duckdb.connect()
        raw.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, full_name VARCHAR, city VARCHAR)")
        raw.execute(f"INSERT INTO c VALUES {_customers(secret)}")
        return raw

    sql = "SELECT c.id, string_agg(c.id::VARCHAR, ',') OVER () AS g FROM c GROUP BY c.full_name, c.id"
    raw = [observe(make(s), sql) for s in SECRETS]
    assert raw[0] != raw[1], raw
    gov = [observe(_gov(make(s)), sql) for s in SECRETS]
    assert gov[0] == gov[1] and _refused(gov[0]), gov


# -- PostgreSQL --------------------------------------------------------------------------------------------------
@pytest.fixture
def pg(pg_dsn: str, unique: str) -> Iterator[tuple[Any, str]]:
    import psycopg

    table = f"gk2_{unique}"
    opened: list[Any] = []

    def make(ddl: str) -> Any:
        raw = psycopg.connect(pg_dsn, autocommit=True)
        opened.append(raw)
        raw.execute(f"DROP TABLE IF EXISTS {table}")
        raw.execute(ddl.format(t=table))
        raw.execute(f"INSERT INTO {table} VALUES {_KEYS}")
        return raw

    yield make, table
    for raw in opened:
        with contextlib.suppress(Exception):
            raw.rollback()
        for name in (table, f'"{table.upper()}"'):
            with contextlib.suppress(Exception):
                raw.execute(f"DROP TABLE IF EXISTS {name}")
        raw.close()


def test_postgresql_a_deferrable_primary_key_repeats_until_commit(pg: tuple[Any, str]) -> None:
    """``PRIMARY KEY DEFERRABLE INITIALLY DEFERRED``: inside a transaction a second row of id 1 goes in, holding a
    guess; grouping by id and the name makes one group of the two when the guess is right."""
    make, t = pg
    ddl = "CREATE TABLE {t} (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, full_name text)"
    steps = ["BEGIN", f"INSERT INTO {t} VALUES (1, 'GUESS')"]
    sql = f"SELECT count(*) AS n FROM (SELECT id FROM {t} GROUP BY id, full_name) s"
    raw = _guessed(lambda: make(ddl), steps, sql, governed=False)
    assert raw == [(["n"], [(41,)]), (["n"], [(42,)])], raw
    gov = _guessed(lambda: make(ddl), steps, sql, governed=True)
    assert gov[0] == gov[1] and _refused(gov[0]), gov
    conn = _gov(make("CREATE TABLE {t} (id int PRIMARY KEY, full_name text)"))
    assert observe(conn, sql) == (["n"], [(41,)])


def test_postgresql_with_ties_is_not_cut_by_an_added_tie_breaker(pg: tuple[Any, str]) -> None:
    """``ORDER BY n FETCH FIRST 2 ROWS WITH TIES`` returns every customer tied with the second: an added ``, id``
    returned two of them instead (a silently different answer). It is refused; ordered by the key it runs."""
    make, t = pg
    conn = _gov(make("CREATE TABLE {t} (id int PRIMARY KEY, full_name text)"))
    base = f"SELECT c.id, count(*) AS n FROM {t} c GROUP BY c.id, c.full_name"
    assert _refused(observe(conn, f"{base} ORDER BY n FETCH FIRST 2 ROWS WITH TIES"))
    seen = observe(conn, f"{base} ORDER BY n, c.id FETCH FIRST 2 ROWS WITH TIES")
    assert seen == (["id", "n"], [(1, 1), (2, 1)]), seen
    seen = observe(conn, f"{base} ORDER BY n FETCH FIRST 2 ROWS ONLY")
    assert seen == (["id", "n"], [(1, 1), (2, 1)]), seen


def test_postgresql_a_quoted_name_is_not_judged_by_its_lower_case_twin(pg: tuple[Any, str]) -> None:
    """``"GK2_..."`` (no key) and ``gk2_...`` (a primary key) share one lower-case key in the masking state; the
    guard read the key's facts by that lower-case name, so the quoted table passed for keyed."""
    make, t = pg
    quoted = f'"{t.upper()}"'

    def both() -> Any:
        raw = make("CREATE TABLE {t} (id int PRIMARY KEY, full_name text)")
        raw.execute(f"DROP TABLE IF EXISTS {quoted}")
        raw.execute(f"CREATE TABLE {quoted} (id int, full_name text)")
        raw.execute(f"INSERT INTO {quoted} VALUES {_KEYS}")
        return raw

    steps = [f"INSERT INTO {quoted} VALUES (1, 'GUESS')"]
    sql = f"SELECT count(*) AS n FROM (SELECT id FROM {quoted} GROUP BY id, full_name) s"
    raw = _guessed(both, steps, sql, governed=False)
    assert raw == [(["n"], [(41,)]), (["n"], [(42,)])], raw
    gov = _guessed(both, steps, sql, governed=True)
    assert gov[0] == gov[1] and _refused(gov[0]), gov


def test_aiosqlite_integer_primary_key_desc_is_no_key_either() -> None:
    """The same reads through aiosqlite (the catalog answers read with await)."""
    aiosqlite = pytest.importorskip("aiosqlite")
    import asyncio

    async def seen(ddl: str, guess: str, governed: bool) -> Any:
        raw = await aiosqlite.connect(":memory:", isolation_level=None)
        await raw.execute(ddl)
        await raw.execute(f"INSERT INTO c VALUES {_KEYS}")
        conn = _gov(raw) if governed else raw
        try:
            for step in ("UPDATE c SET id = NULL WHERE id = 1", f"INSERT INTO c VALUES (NULL, '{guess}')"):
                with contextlib.suppress(sqlite3.Error):  # the rowid alias takes no NULL: a new id instead
                    await conn.execute(step)
            cur = await conn.execute("SELECT count(*) FROM (SELECT id FROM c GROUP BY id, full_name) t")
            return await cur.fetchall()
        except governed_db.GuardrailViolation as e:
            return f"refused: {e}"
        finally:
            await conn.close()

    async def run(ddl: str, governed: bool) -> list[Any]:
        return [await seen(ddl, guess, governed) for guess in GUESSES]

    desc = "CREATE TABLE c (id INTEGER PRIMARY KEY DESC, full_name text)"
    assert [list(map(tuple, r)) for r in asyncio.run(run(desc, False))] == [[(41,)], [(42,)]]
    gov = asyncio.run(run(desc, True))
    assert gov[0] == gov[1] and _refused(gov[0]), gov
    alias = asyncio.run(run("CREATE TABLE c (id INTEGER PRIMARY KEY, full_name text)", True))
    assert [list(map(tuple, r)) for r in alias] == [[(42,)], [(42,)]], alias  # the guess's row: a group of its own


def test_mariadb_an_upper_case_twin_does_not_take_the_lower_case_tables_key(mysql_kw: dict[str, Any], unique: str) -> None:
    """On a server with case-sensitive table names ``GK2_X`` (no key) and ``gk2_x`` (a primary key) are two tables;
    information_schema joins names without case, so the order reader gave ``GK2_X`` the other's key."""
    import pymysql

    lower, upper = f"gk2_{unique}", f"GK2_{unique.upper()}"
    made: list[Any] = []

    def make() -> Any:
        raw = pymysql.connect(autocommit=True, **mysql_kw)
        made.append(raw)
        cur = raw.cursor()
        for table, key in ((lower, "PRIMARY KEY"), (upper, "")):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(f"CREATE TABLE {table} (id int {key}, full_name VARCHAR(60))")
            cur.execute(f"INSERT INTO {table} VALUES {_KEYS}")
        return raw

    try:
        probe = make()
        cur = probe.cursor()
        cur.execute(f"SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                    f"AND lower(TABLE_NAME) = '{lower}'")
        if cur.fetchone()[0] != 2:
            pytest.skip("this server folds table names to one case")
        steps = [f"INSERT INTO {upper} VALUES (1, 'GUESS')"]
        sql = f"SELECT count(*) AS n FROM (SELECT id FROM {upper} GROUP BY id, full_name) t"
        raw = _guessed(make, steps, sql, governed=False)
        assert raw == [(["n"], [(41,)]), (["n"], [(42,)])], raw
        gov = _guessed(make, steps, sql, governed=True)
        assert gov[0] == gov[1] and _refused(gov[0]), gov
        seen = observe(_gov(make()), f"SELECT count(*) AS n FROM (SELECT id FROM {lower} GROUP BY id, full_name) t")
        assert seen == (["n"], [(41,)]), seen  # the table with the key keeps it
    finally:
        for raw in made:
            for table in (lower, upper):
                with contextlib.suppress(Exception):
                    raw.cursor().execute(f"DROP TABLE IF EXISTS {table}")
            raw.close()
