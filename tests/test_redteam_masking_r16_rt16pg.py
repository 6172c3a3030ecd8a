"""Red-team round 16 on PostgreSQL (psycopg 3, psycopg2, asyncpg): a prompt-injected agent in production with zero
configuration, no unmask grant.

Decision 0272 orders every read of a table with masked columns by its key, because where a row comes back in an
unordered read tells how wide the masked values stored before it are; where that plan refused, the statement was
planned as before and ran in storage order. Three shapes fell back that need not (decision 0320):

* ``SELECT id, full_name FROM t UNION ALL SELECT 0, 'x'``: a ``UNION ALL`` with a masked column was never ordered
  (sorting by every column would sort by the masked one); it is now sorted by its clear columns when they hold a
  key of each branch's rows;
* ``nth_value(id, 14) OVER ()`` / ``last_value(id) OVER (PARTITION BY city)``: an ORDER BY added to the window would
  cut its frame to the rows up to the current one; the whole frame is now written beside it;
* ``sum(id) OVER (ROWS UNBOUNDED PRECEDING)``: the key was written after the frame (``OVER (ROWS ... ORDER BY
  id)``, which does not parse) when the frame came first in the parentheses.

Each oracle compares two tables of 400 people that differ only in row 1's name (11 or 108 characters); the raw
connection tells them apart after ``UPDATE t SET city = NULL, full_name = NULL WHERE id = 5`` (or ``= 1``, rolled
back). Look-alikes: the same windows and unions give the raw connection's answer on tables as stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests._redteam import CURIOUS_AGENT, govern, pg_connect, pg_moved_places, pg_stored_people
from tests.conftest import PG_DSN

#: rows whose ids are on the first and the last page: where row 5 (or 1) comes among them says where it went
SOME = "id < 10 OR id > 395"


@pytest.fixture
def stored(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant a and b: 400 people differing only in row 1's name; ``i``: a table without masked columns."""
    names = pg_stored_people(pg_conn, f"rt16pg_{unique}")
    names["i"] = f"rt16pg_{unique}_i"
    pg_conn.execute(f"CREATE TABLE {names['i']} (id int primary key, qty int, city text)")
    pg_conn.execute(f"INSERT INTO {names['i']} SELECT g, g % 7, 'Lyon' FROM generate_series(1, 400) g")
    yield names
    for v in ("a", "b", "i"):
        pg_conn.execute(f"DROP TABLE IF EXISTS {names[v]}")


def _values(rows: list[Any]) -> list[Any]:
    return [r[0] for r in rows]


def _places(driver: str, stored: dict[str, str], sql: str) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per variant: (raw, governed) places of rows 5 and 1 in the first column of ``sql`` after the UPDATE."""

    def read(conn: Any, t: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(sql.format(t=t))
        return _values(cur.fetchall())

    seen: dict[str, tuple[list[Any], list[Any]]] = {}
    for v in ("a", "b"):
        raw = pg_connect(driver, autocommit=False)
        gov = govern(pg_connect(driver, autocommit=False), CURIOUS_AGENT)
        try:
            seen[v] = (pg_moved_places(raw, stored[v], read), pg_moved_places(gov, stored[v], read))
        finally:
            raw.close()
            gov.close()
    return seen


#: shape -> (statement, what the governed connection answers in both tables: the rows read in key order)
FELL_BACK = {
    # the place of row 5 (1) among the union's rows: 5th (1st) of the table's, after the constant row 0
    "union-all-with-a-masked-column": (f"SELECT id, full_name FROM {{t}} WHERE {SOME} UNION ALL SELECT 0, 'x'",
                                       [5, 1]),
    # the 14th row read: row 400 in key order (row 5 where it went last, row 1 in the other table)
    "nth-value-over-the-whole-partition": (f"SELECT nth_value(id, 14) OVER () FROM {{t}} WHERE {SOME} LIMIT 1",
                                           [[400], [400]]),
    "last-value-per-partition": (f"SELECT last_value(id) OVER (PARTITION BY id % 2) FROM {{t}} WHERE {SOME}",
                                 [[399, 400, 399, 400, 399, 400, 399, 400, 399, 400, 399, 400, 399, 400]] * 2),
    # the sums of the ids read before each row (row 1: the 2nd, 1; no 5 among them: the whole list)
    "running-sum-with-the-frame-first": (f"SELECT sum(id) OVER (ROWS UNBOUNDED PRECEDING) - id FROM {{t}} WHERE {SOME}",
                                         [[0, 1, 3, 6, 10, 15, 21, 28, 36, 45, 441, 838, 1236, 1635], 1]),
}  # fmt: skip


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("shape", list(FELL_BACK), ids=list(FELL_BACK))
def test_reads_that_fell_back_to_stored_order_are_ordered(stored: dict[str, str], driver: str, shape: str) -> None:
    sql, expected = FELL_BACK[shape]
    seen = _places(driver, stored, sql)
    assert seen["a"][0] != seen["b"][0], seen  # the oracle: the raw connection tells the tables apart
    assert seen["a"][1] == seen["b"][1] == expected, seen


def _asyncpg_url() -> str:
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    return f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"


async def _asyncpg_places(governed: bool, table: str, sql: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_url())
    if governed:
        conn = govern(conn, CURIOUS_AGENT)
    out: list[Any] = []
    try:
        for row in (5, 1):
            tr = conn.transaction()
            await tr.start()
            try:
                await conn.execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
                ids = [r[0] for r in await conn.fetch(sql.format(t=table))]
                out.append(ids.index(row) if row in ids else ids)
            finally:
                await tr.rollback()
    finally:
        await conn.close()
    return out


@pytest.mark.parametrize("shape", ["union-all-with-a-masked-column", "nth-value-over-the-whole-partition"])
def test_asyncpg_reads_that_fell_back_are_ordered(stored: dict[str, str], shape: str) -> None:
    pytest.importorskip("asyncpg")
    sql, expected = FELL_BACK[shape]
    seen = {v: (asyncio.run(_asyncpg_places(False, stored[v], sql)),
                asyncio.run(_asyncpg_places(True, stored[v], sql))) for v in ("a", "b")}  # fmt: skip
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == expected, seen


#: statements whose answer does not depend on the read order once rows are stored as inserted (in key order), and
#: where it would (a partition PostgreSQL sorts by another column), the answer in key order the raw one spells out
LOOK_ALIKES = [
    (f"SELECT id, full_name, city FROM {{t}} WHERE {SOME} UNION ALL SELECT 0, 'x', 'y'", None),
    ("SELECT id, city FROM {t} WHERE id < 4 UNION ALL SELECT id, city FROM {t} WHERE id > 398", None),
    (f"SELECT nth_value(id, 3) OVER (), id FROM {{t}} WHERE {SOME}", None),
    (f"SELECT last_value(id) OVER (PARTITION BY city), id FROM {{t}} WHERE {SOME}",
     f"SELECT last_value(id) OVER (PARTITION BY city ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED "
     f"FOLLOWING), id FROM {{t}} WHERE {SOME}"),
    (f"SELECT first_value(city) OVER (PARTITION BY id % 3), id FROM {{t}} WHERE {SOME}", None),
    (f"SELECT sum(id) OVER (ROWS UNBOUNDED PRECEDING), id FROM {{t}} WHERE {SOME}", None),
    (f"SELECT count(*) OVER (ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), id FROM {{t}} WHERE {SOME}", None),
    (f"SELECT last_value(id) OVER (ORDER BY id), id FROM {{t}} WHERE {SOME}", None),
]  # fmt: skip


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("sql,spelled", LOOK_ALIKES)
def test_innocent_windows_and_unions_keep_their_meaning(
    stored: dict[str, str], driver: str, sql: str, spelled: str | None
) -> None:
    """Ordered by the key, the same windows and unions answer what the raw connection answers over rows stored in
    key order (the whole frame a window had is kept), and a table without masked columns reads as written."""
    raw, gov = pg_connect(driver), govern(pg_connect(driver), CURIOUS_AGENT)
    try:
        for t in (stored["a"], stored["i"]):
            text, truth = sql.format(t=t), (spelled or sql).format(t=t)
            if t == stored["i"]:
                text = text.replace("full_name", "qty").replace("'x'", "1")
                truth = truth.replace("full_name", "qty").replace("'x'", "1")
            cur = raw.cursor()
            cur.execute(truth)
            want = [tuple(r) for r in cur.fetchall()]
            cur = gov.cursor()
            cur.execute(text)
            got = [tuple(r) for r in cur.fetchall()]
            if t == stored["a"]:
                # a union's column is masked in every row when one branch's is, the constant's too
                want = [tuple("[PERSON_NAME]" if c in ("Alice Smith", "x") or str(c).startswith("Person") else c
                              for c in r) for r in want]  # fmt: skip
            assert sorted(got, key=repr) == sorted(want, key=repr), text
            assert len(got) == len(want) > 0
    finally:
        raw.close()
        gov.close()


OPEN = {
    # a UNION ALL of three branches: the inner one has no key of its rows, so the outer one is not ordered
    "nested-union-all": f"SELECT id, full_name FROM {{t}} WHERE {SOME} UNION ALL SELECT 0, 'x' UNION ALL SELECT 1, 'y'",
    # a named window (WINDOW w AS ()) is not edited: its definition is shared by the calls naming it
    "named-window": f"SELECT nth_value(id, 14) OVER w FROM {{t}} WHERE {SOME} WINDOW w AS () LIMIT 1",
}  # fmt: skip


@pytest.mark.xfail(strict=True, reason="decision 0320 Open: still planned as before, in storage order")
@pytest.mark.parametrize("shape", list(OPEN), ids=list(OPEN))
def test_reads_that_still_fall_back(stored: dict[str, str], shape: str) -> None:
    seen = _places("psycopg", stored, OPEN[shape])
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1], seen
