"""Round 17 review of decisions 0349 and 0351 on PostgreSQL (psycopg 3, psycopg2), the database the ground truth.

* The key-order lock of a multi-row write (0351) read its condition from ``SELECT key FROM <target>``: a WITH query
  of the write named like its table (``WITH t AS (...) UPDATE t ... WHERE ...``) then answered the subquery, and
  the write changed other rows than the raw one (1 instead of 6). Such a write is refused now, naming the WITH.
* On a table with a composite key the subquery selected one ROW value (``SELECT ("a", "b")``): every multi-row
  write of such a table failed ("subquery has too few columns"). It selects the columns now.
* A key column whose lower-case name another column shares (``"ID"`` the key, ``id`` not unique) was written as
  the other: ``id IN (SELECT id ...)`` matched rows the write never named. Such a key is not used.
* A locking clause inside a subquery, CTE, EXISTS or IN (``SELECT count(*) FROM (SELECT id FROM t WHERE ... FOR
  UPDATE) s``) locked rows in stored order: another session saw (``NOWAIT``) whether row 5 was locked before the
  statement waited at a row held elsewhere, the 0351 oracle. Such a query is ordered by its key like a top one.
* A recursive WITH query whose anchor reads the people (``WITH RECURSIVE r AS (SELECT id % 400 n, full_name FROM t
  ... UNION ALL SELECT ... FROM r ...) SELECT n FROM r``) was never ordered: no key of its rows is known. Where its
  order shows (the rows listed, a LIMIT, an ordered aggregate or window) it is refused firmly now.
* An aggregate or a window over one derived table or CTE that returns no key of its rows (``array_agg(n) FROM
  (SELECT id % 400 n ... UNION ALL ...) s``, ``row_number() OVER ()`` over a subquery) was refused softly and ran
  in stored order, which masked widths decide: the derived table's own query is ordered by its key now.

Oracles compare two tables of 400 people that differ only in row 1's name (``pg_stored_people``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import CURIOUS_AGENT, govern, pg_connect, pg_moved_places, pg_stored_people
from tests.test_redteam_masking_r17_xfails17 import _locked_first

SOME = "id < 10 OR id > 395"
UNION = f"SELECT id % 400 n, full_name FROM {{t}} WHERE {SOME} UNION ALL SELECT 0, 'x'"
PLAIN = f"SELECT id % 400 n, full_name FROM {{t}} WHERE {SOME}"

#: shape -> where rows 5 and 1 come, in key order (the governed answer over both tables)
OVER_DERIVED = {
    "array-agg-over-a-subquery": (f"SELECT unnest(a) FROM (SELECT array_agg(n) a FROM ({PLAIN}) s) q", [4, 0]),
    "array-agg-over-a-union": (f"SELECT unnest(a) FROM (SELECT array_agg(n) a FROM ({UNION}) s) q", [4, 0]),
    "array-of-a-scalar-subquery": (f"SELECT unnest((SELECT array_agg(n) FROM ({UNION}) s))", [4, 0]),
    "string-agg-over-a-union": (f"SELECT unnest(string_to_array(string_agg(n::text, ','), ','))::int "
                                f"FROM ({UNION}) s", [4, 0]),
    "row-number-over-a-union": (f"SELECT n FROM (SELECT n, row_number() OVER () r FROM ({UNION}) s) q ORDER BY r",
                                [4, 0]),
    "row-number-over-a-subquery": (f"SELECT n FROM (SELECT n, row_number() OVER () r FROM ({PLAIN}) s) q "
                                   "ORDER BY r", [4, 0]),
    "array-agg-over-a-cte": (f"WITH u AS ({UNION}) SELECT unnest(a) FROM (SELECT array_agg(n) a FROM u) q", [4, 0]),
}  # fmt: skip


@pytest.fixture
def people(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    names = pg_stored_people(pg_conn, f"rt17new_{unique}")
    yield names
    for v in ("a", "b"):
        pg_conn.execute(f"DROP TABLE IF EXISTS {names[v]}")


def _places(driver: str, people: dict[str, str], sql: str) -> dict[str, tuple[list[Any], list[Any]]]:
    def read(conn: Any, t: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(sql.format(t=t))
        return [r[0] for r in cur.fetchall()]

    seen: dict[str, tuple[list[Any], list[Any]]] = {}
    for v in ("a", "b"):
        raw = pg_connect(driver, autocommit=False)
        gov = govern(pg_connect(driver, autocommit=False), CURIOUS_AGENT)
        try:
            seen[v] = (pg_moved_places(raw, people[v], read), pg_moved_places(gov, people[v], read))
        finally:
            raw.close()
            gov.close()
    return seen


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("shape", list(OVER_DERIVED), ids=list(OVER_DERIVED))
def test_aggregates_and_windows_over_a_derived_table_tell_no_stored_order(
    people: dict[str, str], driver: str, shape: str
) -> None:
    sql, expected = OVER_DERIVED[shape]
    seen = _places(driver, people, sql)
    assert seen["a"][0] != seen["b"][0], seen  # the oracle: raw tells the copies apart
    assert seen["a"][1] == seen["b"][1] == expected, seen


RECURSIVE = (f"WITH RECURSIVE r AS (SELECT id % 400 n, full_name FROM {{t}} WHERE {SOME} UNION ALL "
             "SELECT n + 1000, full_name FROM r WHERE n < 0) ")


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("outer", ["SELECT n FROM r", "SELECT n FROM (SELECT n FROM r) s",
                                   "SELECT unnest(a) FROM (SELECT array_agg(n) a FROM r) q"])
def test_a_recursive_query_tells_no_stored_order(people: dict[str, str], driver: str, outer: str) -> None:
    seen = _places(driver, people, RECURSIVE + outer)
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1], seen
    assert all(isinstance(p, str) and "recursive WITH query" in p for p in seen["a"][1]), seen


def test_recursive_queries_that_show_no_order_still_run(people: dict[str, str]) -> None:
    t = people["a"]
    raw, gov = pg_connect("psycopg"), govern(pg_connect("psycopg"), CURIOUS_AGENT)
    try:
        for sql in (
            RECURSIVE + "SELECT count(*), max(n) FROM r",
            RECURSIVE + "SELECT n FROM r ORDER BY n",
            "WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 8) SELECT d.n, count(o.id) "
            "FROM d LEFT JOIN {t} o ON o.id = d.n GROUP BY d.n ORDER BY d.n",
            "WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 3) SELECT o.id, o.city "
            "FROM d JOIN {t} o ON o.id = d.n ORDER BY o.id",
        ):
            text = sql.format(t=t)
            assert gov.cursor().execute(text).fetchall() == raw.execute(text).fetchall(), text
    finally:
        raw.close()
        gov.close()


def test_aggregates_over_a_derived_table_keep_their_values(people: dict[str, str]) -> None:
    """Look-alikes: the same values as the raw connection (the order inside is the key order)."""
    t = people["a"]
    raw, gov = pg_connect("psycopg"), govern(pg_connect("psycopg"), CURIOUS_AGENT)
    try:
        for sql in (
            f"SELECT sort_array FROM (SELECT array_agg(n ORDER BY n) sort_array FROM ({PLAIN}) s) q",
            f"SELECT count(*), sum(n), max(n) FROM ({UNION}) s",
            "SELECT n, count(*) OVER () FROM (SELECT id n FROM {t} WHERE id < 5) s ORDER BY n",
            f"SELECT array_agg(n) FROM ({UNION}) s",
        ):
            text = sql.format(t=t)
            want = raw.execute(text).fetchall()
            got = gov.cursor().execute(text).fetchall()
            if "array_agg(n) FROM" in sql:
                keyed = raw.execute(f"SELECT array_agg(id % 400 ORDER BY id) FROM {t} WHERE {SOME}").fetchone()[0]
                assert sorted(got[0][0]) == sorted(want[0][0]) and got[0][0] == [*keyed, 0], got
            else:
                assert got == want, text
    finally:
        raw.close()
        gov.close()


# -- writes locked in key order (0351): the rows changed are the raw connection's -------------------------------
def _tables(admin: Any, t: str, ddl: str) -> None:
    admin.execute(f"DROP TABLE IF EXISTS {t} CASCADE")
    admin.execute(ddl.format(t=t))


def _write(driver: str, governed: bool, sql: str, params: Any = None) -> Any:
    conn = pg_connect(driver)
    if governed:
        conn = govern(conn, CURIOUS_AGENT)
    try:
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
        except governed_db.GuardrailViolation as e:
            return f"refused: {e}"
        out = sorted(cur.fetchall()) if cur.description else None
        return cur.rowcount, out
    finally:
        conn.close()


PEOPLE = (
    "CREATE TABLE {t} (id int primary key, full_name text, city text); INSERT INTO {t} SELECT g, 'Name ' || g, "
    "CASE WHEN g % 3 = 0 THEN NULL ELSE 'Lyon' END FROM generate_series(1, 20) g"
)
#: shape -> (table DDL, write): each changes exactly the raw connection's rows through a governed connection
WRITES = {
    "composite-key-update-returning": (
        "CREATE TABLE {t} (a int, b int, full_name text, city text, primary key (a, b)); INSERT INTO {t} "
        "SELECT g % 4, g, 'Name ' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'Lyon' END FROM generate_series(1, 20) g",
        "UPDATE {t} SET city = 'b' WHERE city IS NULL OR a = 1 RETURNING a, b",
    ),
    "composite-key-delete": (
        "CREATE TABLE {t} (a int, b int, full_name text, city text, primary key (a, b)); INSERT INTO {t} "
        "SELECT g % 4, g, 'Name ' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'Lyon' END FROM generate_series(1, 20) g",
        "DELETE FROM {t} WHERE city IS NULL OR a = 1",
    ),
    "a-key-named-like-another-column": (
        'CREATE TABLE {t} ("ID" int primary key, id int, full_name text, city text); INSERT INTO {t} SELECT g, '
        "g % 10, 'Name ' || g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'Lyon' END FROM generate_series(1, 20) g",
        "UPDATE {t} SET city = 'b' WHERE city IS NULL",
    ),
    "a-with-of-another-name": (
        PEOPLE,
        "WITH x AS (SELECT 3 AS k) UPDATE {t} SET city = 'b' WHERE id IN (SELECT k FROM x) OR city IS NULL",
    ),
    "a-subquery-in-set": (
        PEOPLE,
        "UPDATE {t} SET city = (SELECT max(o.city) FROM {t} o WHERE o.id < {t}.id) WHERE city IS NULL "
        "RETURNING id, city",
    ),
    "a-key-changed": (PEOPLE, "UPDATE {t} SET id = id + 100 WHERE city IS NULL RETURNING id"),
    "a-not-null-unique-key": (
        "CREATE TABLE {t} (u int unique, n int not null unique, full_name text, city text); INSERT INTO {t} SELECT "
        "CASE WHEN g % 2 = 0 THEN NULL ELSE g END, g, 'Name ' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'Lyon' END "
        "FROM generate_series(1, 20) g",
        "DELETE FROM {t} WHERE city IS NULL OR u IS NULL RETURNING n",
    ),
}


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("shape", list(WRITES), ids=list(WRITES))
def test_a_write_locked_in_key_order_changes_the_raw_rows(pg_conn: Any, unique: str, driver: str, shape: str) -> None:
    ddl, write = WRITES[shape]
    t = f"rt17new_w_{unique}"
    seen = []
    try:
        for governed in (False, True):
            _tables(pg_conn, t, ddl)
            out = _write(driver, governed, write.format(t=t))
            seen.append((out, pg_conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()))
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {t} CASCADE")
    assert not isinstance(seen[1][0], str), seen[1][0]  # ran (a composite key failed with a syntax error)
    assert seen[1] == seen[0]  # same rowcount, same RETURNING rows, same table afterwards


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("write", ["UPDATE {t} SET city = 'b' WHERE city IS NULL", "DELETE FROM {t} WHERE city IS NULL"])
def test_a_with_named_like_the_written_table_is_refused(pg_conn: Any, unique: str, driver: str, write: str) -> None:
    """``WITH t AS (...) UPDATE t ... WHERE c``: the locking subquery would read the WITH, not the table."""
    t = f"rt17new_w_{unique}"
    sql = f"WITH {{t}} AS (SELECT * FROM {{t}} WHERE id < 5) {write}".format(t=t)
    try:
        _tables(pg_conn, t, PEOPLE)
        raw = _write(driver, False, sql)
        assert raw == (6, None)  # the raw write changes every row of the table that matches
        _tables(pg_conn, t, PEOPLE)
        before = pg_conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
        out = _write(driver, True, sql)
        assert isinstance(out, str) and "WITH query" in out and "rename" in out, out
        assert pg_conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() == before  # nothing changed
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {t} CASCADE")


#: statements that lock rows 5 and 200 in a nested query (the holder has row 200)
NESTED_LOCKS = {
    "count-over-a-locking-subquery": "SELECT count(*) FROM (SELECT id FROM {t} WHERE city IS NULL OR id = 200 "
    "FOR UPDATE) s",
    "a-locking-cte": "WITH x AS (SELECT id FROM {t} WHERE city IS NULL OR id = 200 FOR NO KEY UPDATE) "
    "SELECT count(*) FROM x",
    "exists-over-a-locking-query": "SELECT EXISTS (SELECT 1 FROM {t} WHERE (city IS NULL OR id = 200) AND id > 0 "
    "FOR UPDATE)",
    "in-a-locking-query": "SELECT count(*) FROM {t} WHERE id IN (SELECT id FROM {t} WHERE city IS NULL OR id = 200 "
    "FOR SHARE)",
}


@pytest.mark.parametrize("shape", list(NESTED_LOCKS), ids=list(NESTED_LOCKS))
def test_a_nested_locking_query_locks_rows_in_key_order(pg_conn: Any, unique: str, shape: str) -> None:
    sql = NESTED_LOCKS[shape]
    prefix = f"rt17new_l_{unique}"
    seen = {}
    try:
        for governed in (False, True):
            out = []
            for v in ("a", "b"):
                pg_conn.execute(f"DROP TABLE IF EXISTS {prefix}_sa, {prefix}_sb")
                out.append(_locked_first(pg_conn, pg_stored_people(pg_conn, prefix)[v], governed, sql))
            seen[governed] = out
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {prefix}_sa, {prefix}_sb")
    assert seen[False][0] != seen[False][1], seen  # the oracle: row 5 locked before the wait in one copy only
    assert seen[True] == ["LockNotAvailable", "LockNotAvailable"], seen  # in key order, row 5 first, in both


def test_locking_queries_keep_their_rows(pg_conn: Any, people: dict[str, str]) -> None:
    """Look-alikes: locking reads answer what the raw connection answers."""
    t = people["a"]
    raw, gov = pg_connect("psycopg"), govern(pg_connect("psycopg"), CURIOUS_AGENT)
    try:
        for sql in (
            "SELECT count(*) FROM (SELECT id FROM {t} WHERE id % 7 = 0 FOR UPDATE) s",
            "SELECT id FROM {t} WHERE id = 5 FOR UPDATE",
            "WITH x AS (SELECT id, city FROM {t} WHERE city = 'Paris' FOR SHARE) SELECT id, city FROM x",
            "SELECT EXISTS (SELECT 1 FROM {t} WHERE city = 'Paris' FOR KEY SHARE)",
        ):
            want = raw.execute(sql.format(t=t)).fetchall()
            got = gov.cursor().execute(sql.format(t=t)).fetchall()
            assert got == want, sql
    finally:
        raw.close()
        gov.close()
