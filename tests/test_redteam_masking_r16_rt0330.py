"""Round 16 red team (rt0330) on decision 0330: PostgreSQL ``UPDATE/DELETE ... RETURNING`` handed out in key order.

0330 sends such a write as ``WITH gdb_changed AS (<write>) SELECT * FROM gdb_changed ORDER BY <key>``. What the
sort outside the write does not fix (decision 0331):

* a value numbered row by row in read order (``nextval``, ``clock_timestamp()``, ``random()`` after ``setseed``)
  in RETURNING, SET or WHERE is computed inside the write, before any sort: the numbers give the read order back;
* an inheritance parent's primary key holds for its own rows only, so rows of its children tie on it (an UPDATE
  may even set it to one value) and ties come in read order;
* ``ctid`` is no key to order by: it is the stored order itself;
* ``UPDATE ... FROM`` (``DELETE ... USING``) a table read in stored order takes, for a target row joined to several
  rows, the values of the one read first (PostgreSQL: "which one will be used is not readily predictable").

Each oracle runs on two tables differing only in row 1's masked name (``pg_stored_people``): raw tells them apart,
governed does not. The database is the ground truth where a write ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import AGENT, govern, pg_connect, pg_moved_places, pg_stored_people, pg_variants
from tests.conftest import PG_DSN

pytestmark = pytest.mark.usefixtures("pg_dsn")

SOME = "id < 10 OR id > 395"


@pytest.fixture
def stored(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant a and b: 400 people differing only in row 1's name (masked alike), and a sequence ``<t>_n``."""
    names = pg_stored_people(pg_conn, f"r16rt0330_{unique}")
    for t in names.values():
        pg_conn.execute(f"CREATE SEQUENCE {t}_n")
    yield names
    for t in names.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")
        pg_conn.execute(f"DROP SEQUENCE IF EXISTS {t}_n")


def _numbered(conn: Any, sql: str) -> list[Any]:
    """Ids of the rows ``sql`` returns (``id``, number), in the order of the number."""
    cur = conn.cursor()
    cur.execute(sql)
    return [r[0] for r in sorted(cur.fetchall(), key=lambda r: r[1])]


NUMBERED = {
    "returning-nextval": (f"UPDATE {{t}} SET city = 'Nice' WHERE {SOME} RETURNING id, nextval('{{t}}_n')", None),
    "returning-clock": (f"DELETE FROM {{t}} WHERE {SOME} RETURNING id, clock_timestamp()", None),
    "set-nextval": (
        f"UPDATE {{t}} SET city = lpad(nextval('{{t}}_n')::text, 6, '0') WHERE {SOME} RETURNING id, city",
        None,
    ),
    "set-then-select": (
        f"UPDATE {{t}} SET city = lpad(nextval('{{t}}_n')::text, 6, '0') WHERE {SOME}",
        f"SELECT id, city FROM {{t}} WHERE {SOME} ORDER BY id",
    ),
    # random() after setseed() is a known sequence, handed out row by row
    "returning-random": (f"UPDATE {{t}} SET city = 'Nice' WHERE {SOME} RETURNING id, random()", None),
}


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("shape", sorted(NUMBERED))
def test_a_value_numbered_in_read_order_tells_nothing(stored: dict[str, str], driver: str, shape: str) -> None:
    """Raw, the numbers a write hands out row by row say where row 5 was read (the oracle); governed, the write
    is refused alike for both copies (and changed nothing)."""
    write, then = NUMBERED[shape]

    def read(conn: Any, t: str) -> list[Any]:
        if shape == "returning-random":
            conn.cursor().execute("SELECT setseed(0.5)")
        if then is None:
            return _numbered(conn, write.format(t=t))
        conn.cursor().execute(write.format(t=t))
        return _numbered(conn, then.format(t=t))

    seen = pg_variants(driver, stored, lambda conn, t: pg_moved_places(conn, t, read))
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1], seen
    assert all(str(s).startswith("refused") and "row by row" in str(s) for s in seen["a"][1]), seen


def test_asyncpg_nextval_in_returning_is_refused(stored: dict[str, str], pg_conn: Any) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    a = stored["a"]

    async def run() -> Any:
        conn = governed_db.wrap(await asyncpg.connect(url), identity=AGENT, environment="production", audit=False)
        try:
            return await conn.fetch(f"UPDATE {a} SET city = 'Nice' WHERE {SOME} RETURNING id, nextval('{a}_n')")
        except governed_db.GuardrailViolation as e:
            return f"refused: {e}"
        finally:
            await conn.close()

    got = asyncio.run(run())
    assert str(got).startswith("refused") and "row by row" in str(got), got
    assert pg_conn.execute(f"SELECT count(*) FROM {a} WHERE city = 'Nice'").fetchone() == (0,)


@pytest.fixture
def families(pg_conn: Any, stored: dict[str, str]) -> Iterator[dict[str, str]]:
    """Per variant: a parent ``(id primary key, full_name, city)`` whose rows are all in a child that inherits it
    (and not its key): the people of ``stored``."""
    parents = {}
    for v, t in stored.items():
        pg_conn.execute(f"CREATE TABLE {t}_p (id int primary key, full_name text, city text)")
        pg_conn.execute(f"CREATE TABLE {t}_c () INHERITS ({t}_p)")
        pg_conn.execute(f"INSERT INTO {t}_c SELECT * FROM {t}")
        parents[v] = f"{t}_p"
    yield parents
    for p in parents.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {p} CASCADE")


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_rows_tied_on_an_inheritance_parents_key_tell_nothing(families: dict[str, str], driver: str) -> None:
    """The parent's key holds for its own rows only: set to one value in the child's rows, the rows tie on it and
    come in read order, the row each was shows in ``city``."""
    sql = f"UPDATE {{t}} SET id = 0, city = id::text WHERE {SOME} RETURNING id, city"

    def read(conn: Any, t: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(sql.format(t=t))
        return [int(r[1]) for r in cur.fetchall()]

    seen = pg_variants(driver, families, lambda conn, t: pg_moved_places(conn, t, read))
    assert seen["a"][0] != seen["b"][0], seen
    assert [s.replace(families["b"], "T") for s in seen["b"][1]] == seen["a"][1], seen
    assert all(s.startswith("refused") for s in seen["a"][1]), seen
    assert 'return the key ("id")' not in str(seen["a"][1])  # no key to return here: not offered


def test_a_row_location_never_orders_the_returned_rows(stored: dict[str, str]) -> None:
    """``RETURNING ctid, city``: ordered by ``ctid`` the rows come exactly as stored (row 5's NULL city shows
    where); refused, as with no key returned."""
    sql = f"DELETE FROM {{t}} WHERE {SOME} RETURNING ctid, city"

    def read(conn: Any, t: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(sql.format(t=t))
        return [5 if r[1] is None else 0 for r in sorted(cur.fetchall(), key=lambda r: _tid(r[0]))]

    seen = pg_variants("psycopg", stored, lambda conn, t: pg_moved_places(conn, t, read))
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1], seen
    assert all(str(s).startswith("refused") for s in seen["a"][1]), seen


def _tid(text: str) -> tuple[int, int]:
    page, item = text.strip("()").split(",")
    return int(page), int(item)


# -- innocent look-alikes keep running -----------------------------------------------------------------------
def test_innocent_writes_with_a_key_still_run(stored: dict[str, str], pg_conn: Any) -> None:
    """One row named by its key may take a sequence value; ``now()`` is one value for every row; a table with
    nothing masked numbers its rows freely; a write with no per-row value still comes in key order."""
    a = stored["a"]
    gov = govern(pg_connect("psycopg"))
    try:
        cur = gov.cursor()
        cur.execute(f"UPDATE {a} SET city = 'Nice' WHERE id = 7 RETURNING id, nextval('{a}_n')")
        assert cur.fetchall() == [(7, 1)]
        cur.execute(f"UPDATE {a} SET city = now()::date::text WHERE id IN (9, 3, 398) RETURNING id")
        assert [r[0] for r in cur.fetchall()] == [3, 9, 398]
        cur.execute(f"UPDATE {a} SET city = 'Rome' WHERE id > 397 RETURNING id, city, now() IS NOT NULL")
        assert cur.fetchall() == [(398, "Rome", True), (399, "Rome", True), (400, "Rome", True)]
        truth = pg_conn.execute(f"SELECT id, city FROM {a} WHERE city IN ('Nice', 'Rome') ORDER BY id").fetchall()
        assert truth == [(7, "Nice"), (398, "Rome"), (399, "Rome"), (400, "Rome")]
    finally:
        gov.close()


def test_a_unique_not_null_key_and_a_partitioned_key_still_order(pg_conn: Any, unique: str) -> None:
    """A table without a primary key but with a UNIQUE NOT NULL column, and a partitioned table's primary key:
    keys for every row the write reaches, so RETURNING them still runs, in their order."""
    u, p = f"r16rt0330_{unique}_u", f"r16rt0330_{unique}_pt"
    pg_conn.execute(f"CREATE TABLE {u} (code int NOT NULL UNIQUE, full_name text, city text)")
    pg_conn.execute(f"INSERT INTO {u} SELECT 100 - g, 'Person Number ' || g, 'Lyon' FROM generate_series(1, 50) g")
    pg_conn.execute(f"CREATE TABLE {p} (id int, full_name text, city text, PRIMARY KEY (id)) PARTITION BY RANGE (id)")
    pg_conn.execute(f"CREATE TABLE {p}_1 PARTITION OF {p} FOR VALUES FROM (0) TO (25)")
    pg_conn.execute(f"CREATE TABLE {p}_2 PARTITION OF {p} FOR VALUES FROM (25) TO (100)")
    pg_conn.execute(f"INSERT INTO {p} SELECT g, 'Person Number ' || g, 'Lyon' FROM generate_series(1, 50) g")
    gov = govern(pg_connect("psycopg"))
    try:
        cur = gov.cursor()
        cur.execute(f"UPDATE {u} SET city = 'Nice' WHERE code < 55 OR code > 96 RETURNING code, city")
        assert [r[0] for r in cur.fetchall()] == [50, 51, 52, 53, 54, 97, 98, 99]
        cur.execute(f"UPDATE {p} SET city = 'Nice' WHERE id < 3 OR id > 47 RETURNING id, full_name")
        rows = cur.fetchall()
        assert [r[0] for r in rows] == [1, 2, 48, 49, 50]
        assert "Person Number 48" not in repr(rows)
    finally:
        gov.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {u}")
        pg_conn.execute(f"DROP TABLE IF EXISTS {p}")


# -- UPDATE ... FROM / DELETE ... USING: the joined row read first ---------------------------------------------
PICKS = {
    "update-from-set": "UPDATE {t} p SET city = q.id::text FROM {t} q WHERE p.id = 2 AND q.id + 0 IN (5, 396) "
    "RETURNING p.id, p.city",
    "update-from-returning": "UPDATE {t} p SET city = 'Nice' FROM {t} q WHERE p.id = 2 AND q.id + 0 IN (5, 396) "
    "RETURNING p.id, q.id",
    "delete-using-returning": "DELETE FROM {t} p USING {t} q WHERE p.id = 2 AND q.id + 0 IN (5, 396) "
    "RETURNING p.id, q.*",
}


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("shape", sorted(PICKS))
def test_the_joined_row_read_first_tells_nothing(stored: dict[str, str], driver: str, shape: str) -> None:
    """Row 2 joined to rows 5 and 396 takes (or returns) the one read first: raw, row 5 moved after 396 in one
    copy only (the oracle); governed, refused alike — even though the write names one target row by its key."""

    def read(conn: Any, t: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(PICKS[shape].format(t=t))
        return [r[1] for r in cur.fetchall()]

    seen = pg_variants(driver, stored, lambda conn, t: _picked(conn, t, read))
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1], seen
    assert all(str(s).startswith("refused") and "read first" in str(s) for s in seen["a"][1]), seen


def _picked(conn: Any, table: str, read: Any) -> list[Any]:
    """``read(conn, table)`` after row 5 (then row 1) was set NULL (see :func:`pg_moved_places`), rolled back."""
    out: list[Any] = []
    for row in (5, 1):
        try:
            conn.cursor().execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
            out.append(read(conn, table))
        except governed_db.GuardrailViolation as e:
            out.append(f"refused: {e}".replace(table, "T"))
        finally:
            conn.rollback()
    return out


def test_a_join_by_key_or_to_values_still_runs(stored: dict[str, str], pg_conn: Any) -> None:
    """Joined by its whole key (one row per written row), from a VALUES list, or read only in WHERE: runs, and
    writes what was asked."""
    a, b = stored["a"], stored["b"]
    gov = govern(pg_connect("psycopg"))
    try:
        cur = gov.cursor()
        cur.execute(f"UPDATE {a} p SET city = q.city || '!' FROM {b} q WHERE q.id = p.id AND p.id IN (3, 398) "
                    "RETURNING p.id, p.city")
        assert cur.fetchall() == [(3, "Lyon!"), (398, "Lyon!")]
        cur.execute(f"UPDATE {a} p SET city = v.c FROM (VALUES (4, 'Oslo'), (399, 'Rome')) v(id, c) "
                    "WHERE p.id = v.id RETURNING p.id, p.city, v.c")
        assert cur.fetchall() == [(4, "Oslo", "Oslo"), (399, "Rome", "Rome")]
        cur.execute(f"DELETE FROM {a} p USING {b} q WHERE q.city = p.city AND p.id = 6 AND q.id + 0 IN (5, 396) "
                    "RETURNING p.id, p.city")
        assert cur.fetchall() == [(6, "Lyon")]
        truth = pg_conn.execute(f"SELECT id, city FROM {a} WHERE id IN (3, 4, 6, 398, 399) ORDER BY id").fetchall()
        assert truth == [(3, "Lyon!"), (4, "Oslo"), (398, "Lyon!"), (399, "Rome")]
    finally:
        gov.close()


# -- a comment after the last semicolon ----------------------------------------------------------------------
@pytest.mark.parametrize("tail", ["; -- note", " ; /* note */"], ids=["line", "block"])
@pytest.mark.parametrize(
    "sql",
    [f"UPDATE {{t}} SET city = 'Nice' WHERE {SOME} RETURNING id", f"SELECT id FROM {{t}} WHERE {SOME}"],
    ids=["update-returning", "select"],
)
def test_a_comment_after_the_last_semicolon_keeps_the_key_order(stored: dict[str, str], sql: str, tail: str) -> None:
    """sqlglot parses ``; -- note`` as a statement of its own: the splice check failed, and on PostgreSQL a
    statement whose key order could not be added ran as written, in stored order. Now the order is added."""

    def read(conn: Any, t: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(sql.format(t=t) + tail)
        return [r[0] for r in cur.fetchall()]

    seen = pg_variants("psycopg", stored, lambda conn, t: pg_moved_places(conn, t, read))
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == [4, 0], seen


# -- which row's error comes first: withheld (decision 0334) -------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE {t} SET city = CASE WHEN id = 5 THEN (1 / (id - 5))::text "
        "WHEN id = 396 THEN (id::text || 'x')::int::text ELSE city END WHERE id + 0 IN (5, 396) RETURNING id",
        "UPDATE {t} SET city = CASE WHEN id = 5 THEN (1 / (id - 5))::text "
        "WHEN id = 396 THEN (id::text || 'x')::int::text ELSE city END WHERE id + 0 IN (5, 396)",
    ],
    ids=["update-returning", "update"],
)
def test_the_first_error_of_two_rows_tells_nothing(stored: dict[str, str], sql: str) -> None:
    """Raw, row 5's error (division by zero) or row 396's (invalid input) comes first as each copy stored them;
    governed, both withheld alike."""
    def read(conn: Any, t: str) -> list[Any]:
        cur = conn.cursor()
        try:
            cur.execute(sql.format(t=t))
        except governed_db.GuardrailViolation:
            raise
        except Exception as e:
            return [type(e).__name__]
        return [r[0] for r in cur.fetchall()]

    seen = pg_variants("psycopg", stored, lambda conn, t: _picked(conn, t, read))
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1] == [["InternalError_"], ["InternalError_"]], seen
