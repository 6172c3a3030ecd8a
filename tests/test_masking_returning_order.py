"""``UPDATE/DELETE ... RETURNING`` over a PostgreSQL table with masked columns (decision 0330).

PostgreSQL hands out the changed rows in the order the write reads them, and where an earlier UPDATE put a row's
new version depends on how wide the masked values stored before it are (decision 0272): the order of the returned
rows tells something of a masked value. Decision 0303 refused such a write unless it changed one row by its key —
refusing ordinary agent writes (``UPDATE orders SET status = 'shipped' WHERE ... RETURNING id``) on every table
that holds an e-mail. When the RETURNING list hands out a key, the write now runs as a data-modifying CTE whose
rows are selected in key order: the same rows, the same changes, in an order no masked value decides.

The database is the ground truth: each test checks what the write changed, not only what came back.
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
    """Per variant a and b: 400 people differing only in row 1's name (masked alike)."""
    names = pg_stored_people(pg_conn, f"retord_{unique}")
    yield names
    for t in names.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def _rows(conn: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]], int]:
    cur = conn.cursor()
    cur.execute(sql)
    rows = [tuple(r) for r in cur.fetchall()]
    return [d[0] for d in cur.description], rows, cur.rowcount


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize(
    "sql",
    [
        f"UPDATE {{t}} SET city = 'Nice' WHERE {SOME} RETURNING id, city",
        f"UPDATE {{t}} AS p SET city = 'Nice' WHERE {SOME} RETURNING p.id, p.city",
        f"DELETE FROM {{t}} WHERE {SOME} RETURNING *",
        f"WITH c AS (SELECT 'Nice' AS v) UPDATE {{t}} SET city = (SELECT v FROM c) WHERE {SOME} RETURNING id; ",
    ],
    ids=["update", "aliased", "delete-star", "with-update"],
)
def test_returned_rows_come_in_key_order_whatever_the_masked_widths(
    stored: dict[str, str], driver: str, sql: str
) -> None:
    """Raw, where row 5 comes among the changed rows differs between the copies (the oracle); governed, both
    hand out the rows in key order — and the write ran."""

    def read(conn: Any, t: str) -> list[Any]:
        _cols, rows, count = _rows(conn, sql.format(t=t))
        assert count == len(rows) == 14  # ids 1..9 and 396..400
        return [r[0] for r in rows]

    seen = pg_variants(driver, stored, lambda conn, t: pg_moved_places(conn, t, read))
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1] == [4, 0], seen  # governed: in key order, rows 1..9 first


def test_the_write_happens_and_masked_columns_stay_masked(stored: dict[str, str], pg_conn: Any) -> None:
    a = stored["a"]
    gov = govern(pg_connect("psycopg"))
    try:
        cols, rows, count = _rows(gov, f"UPDATE {a} SET city = 'Nice' WHERE id IN (7, 2, 398) RETURNING *")
        assert cols == ["id", "full_name", "city"] and count == 3
        assert [r[0] for r in rows] == [2, 7, 398]
        assert all(r[2] == "Nice" and r[1] != f"Person Number {r[0]}" for r in rows), rows  # the name masked
        # the database is the ground truth: exactly those rows changed
        nice = pg_conn.execute(f"SELECT id FROM {a} WHERE city = 'Nice' ORDER BY id").fetchall()
        assert [r[0] for r in nice] == [2, 7, 398]
        cols, rows, count = _rows(gov, f"DELETE FROM {a} WHERE id > 398 RETURNING id, full_name AS who")
        assert cols == ["id", "who"] and [r[0] for r in rows] == [399, 400] and count == 2
        assert "Person Number 399" not in repr(rows)
        assert pg_conn.execute(f"SELECT count(*) FROM {a} WHERE id > 398").fetchone() == (0,)
    finally:
        gov.close()


def test_the_effect_guard_still_measures_the_write(stored: dict[str, str], pg_conn: Any) -> None:
    """A write that would change every row is refused and rolled back, RETURNING or not."""
    a = stored["a"]
    gov = govern(pg_connect("psycopg"))
    try:
        with pytest.raises(governed_db.GuardrailViolation):
            _rows(gov, f"UPDATE {a} SET city = 'Nowhere' WHERE id > 0 RETURNING id, city")
        assert pg_conn.execute(f"SELECT count(*) FROM {a} WHERE city = 'Nowhere'").fetchone() == (0,)
    finally:
        gov.close()


@pytest.mark.parametrize(
    ("returning", "why"),
    [
        ("city", "no key among the returned columns"),
        ("city AS id", "another column under the key's name"),
        ("full_name AS id", "a masked column under the key's name"),
        ("id + 0 AS id", "a computed value under the key's name"),
        ("id, city AS id", "the key's name given twice"),
    ],
)
def test_without_a_returned_key_the_refusal_stands_and_says_what_to_return(
    stored: dict[str, str], pg_conn: Any, returning: str, why: str
) -> None:
    a = stored["a"]
    gov = govern(pg_connect("psycopg"))
    try:
        with pytest.raises(governed_db.GuardrailViolation) as e:
            _rows(gov, f"UPDATE {a} SET city = 'Oslo' WHERE {SOME} RETURNING {returning}")
        assert "masked-column-predicate" in str(e.value), why
        assert 'return the key ("id") as a column of RETURNING' in str(e.value)
        assert pg_conn.execute(f"SELECT count(*) FROM {a} WHERE city = 'Oslo'").fetchone() == (0,)
    finally:
        gov.close()


def test_a_table_without_masked_columns_and_a_grant_run_as_written(pg_conn: Any, unique: str) -> None:
    """Nothing to hide: no rewrite (the status stays the write's own); an unmask grant sees the write as is."""
    t = f"retord_{unique}_plain"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, qty int)")
    pg_conn.execute(f"INSERT INTO {t} SELECT g, g FROM generate_series(1, 20) g")
    gov = govern(pg_connect("psycopg"))
    try:
        cur = gov.cursor()
        cur.execute(f"UPDATE {t} SET qty = 0 WHERE id > 17 RETURNING id")
        assert sorted(r[0] for r in cur.fetchall()) == [18, 19, 20]
        assert cur.statusmessage == "UPDATE 3"
    finally:
        gov.close()
        pg_conn.execute(f"DROP TABLE {t}")


def test_asyncpg_fetch_comes_in_key_order(stored: dict[str, str]) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"

    async def places(governed: bool, table: str) -> list[Any]:
        conn = await asyncpg.connect(url)
        if governed:
            conn = governed_db.wrap(conn, identity=AGENT, environment="production", audit=False)
        out: list[Any] = []
        try:
            for row in (5, 1):
                tr = conn.transaction()
                await tr.start()
                try:
                    await conn.execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
                    got = await conn.fetch(f"UPDATE {table} SET city = 'Nice' WHERE {SOME} RETURNING id")
                    out.append([r[0] for r in got].index(row))
                finally:
                    await tr.rollback()
        finally:
            await conn.close()
        return out

    seen = {v: (asyncio.run(places(False, stored[v])), asyncio.run(places(True, stored[v]))) for v in ("a", "b")}
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == [4, 0], seen


@pytest.mark.parametrize(
    "sql",
    [f"UPDATE {{t}} SET city = 'Nice' WHERE {SOME} RETURNING id; SELECT 1", f"SELECT id FROM {{t}} WHERE {SOME}; SELECT 1"],
    ids=["returning", "select"],
)
def test_a_text_of_several_statements_is_not_read_in_stored_order(stored: dict[str, str], sql: str) -> None:
    """Staging lets a text of several statements run with a warning; the key order is added only to a text of one
    statement, and the refusal of the others fell back to running unordered: row 5 came 14th in one copy, 9th in
    the other. That refusal stands now, as decision 0331 made the splice's: no unordered fallback."""

    def read(conn: Any, t: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(sql.format(t=t))
        return [r[0] for r in cur.fetchall()]

    seen = pg_variants("psycopg", stored, lambda conn, t: pg_moved_places(conn, t, read), environment="staging")
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1], seen
    assert all(str(s).startswith("refused") and "one statement per call" in str(s) for s in seen["a"][1]), seen


def test_several_statements_over_tables_without_masked_columns_still_run_in_staging(pg_conn: Any, unique: str) -> None:
    t = f"retord_{unique}_plain2"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, qty int)")
    pg_conn.execute(f"INSERT INTO {t} SELECT g, g FROM generate_series(1, 20) g")
    gov = govern(pg_connect("psycopg"), environment="staging")
    try:
        cur = gov.cursor()
        cur.execute(f"SELECT id FROM {t} WHERE id > 17 ORDER BY id; SELECT 1")
        assert [r[0] for r in cur.fetchall()] == [18, 19, 20]
    finally:
        gov.close()
        pg_conn.execute(f"DROP TABLE {t}")
