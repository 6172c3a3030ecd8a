"""Red-team round 15 on PostgreSQL (psycopg 3, psycopg2, asyncpg): a prompt-injected agent in production with zero
configuration, no unmask grant.

Decision 0272 orders every read of a table with masked columns by its key: PostgreSQL writes an UPDATEd row's new
version on the same page when the rows there left room for it, else on the last page, so the place a row comes
back in an unordered read tells how wide the masked values stored before it are. Where no ORDER BY could be added,
the statement was planned as before, and ran in storage order. These ways of seeing that order still ran
(decision 0303):

* ``COPY t (id) TO STDOUT`` (psycopg ``copy()``, psycopg2 ``copy_to``/``copy_expert``, asyncpg
  ``copy_from_table``): the table form of COPY takes no ORDER BY (refused; asyncpg's method now exports the query
  it equals); its query form is ordered;
* asyncpg ``copy_from_query()`` ran the caller's query, not the one governed_db had ordered;
* ``UPDATE/DELETE ... RETURNING`` returns the changed rows in the order it read them;
* values handed out row by row as rows are read (``nextval()``, ``clock_timestamp()``, ``random()`` after
  ``setseed()``) outside the result's own columns, which PostgreSQL computes after the ORDER BY sorts them
  (``... ORDER BY nextval('s')``, a subquery's column);
* ``jsonb_object_agg('k', id)`` keeps the last value of a key repeated: it was not ordered as ``json_object_agg``
  is.

Each oracle compares two tables of 400 people that differ only in row 1's name (11 or 108 characters); the raw
connection tells them apart after ``UPDATE t SET city = NULL, full_name = NULL WHERE id = 5`` (or ``= 1``, rolled
back). Look-alikes run: the same reads in the result's own columns (ordered), one row changed by its key with
RETURNING, COPY of a table without masked columns, and ``GROUP BY ROLLUP/CUBE/GROUPING SETS`` over clear columns,
which failed closed (a governance fault) over a table with masked columns (decision 0304).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import observe as _observe
from tests._redteam import pg_connect, pg_moved_places, pg_stored_people
from tests.conftest import PG_DSN

AGENT = governed_db.Identity("curious-agent", kind="agent")
#: rows whose ids are on the first and the last page: where row 5 (or 1) comes among them says where it went
SOME = "id < 10 OR id > 395"


def _wrap(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)


@pytest.fixture
def stored(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant a and b: 400 people differing only in row 1's name; ``i``: a table without masked columns; ``q``:
    a sequence."""
    names = pg_stored_people(pg_conn, f"rt15pg_{unique}")
    names["i"] = f"rt15pg_{unique}_i"
    pg_conn.execute(f"CREATE TABLE {names['i']} (id int primary key, qty int, city text)")
    pg_conn.execute(f"INSERT INTO {names['i']} SELECT g, g % 7, 'Lyon' FROM generate_series(1, 400) g")
    names["q"] = f"rt15pg_{unique}_q"
    pg_conn.execute(f"CREATE SEQUENCE {names['q']}")
    yield names
    for v in ("a", "b", "i"):
        pg_conn.execute(f"DROP TABLE IF EXISTS {names[v]}")
    pg_conn.execute(f"DROP SEQUENCE IF EXISTS {names['q']}")


def _places(driver: str, stored: dict[str, str], read: Any) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per variant: (raw, governed) places of rows 5 and 1 after the UPDATE that moves them."""
    seen: dict[str, tuple[list[Any], list[Any]]] = {}
    for v in ("a", "b"):
        raw, gov = pg_connect(driver, autocommit=False), _wrap(pg_connect(driver, autocommit=False))
        try:
            seen[v] = (pg_moved_places(raw, stored[v], read), pg_moved_places(gov, stored[v], read))
        finally:
            raw.close()
            gov.close()
    return seen


def _ids(conn: Any, sql: str) -> list[Any]:
    cur = conn.cursor()
    cur.execute(sql)
    return [r[0] for r in cur.fetchall()]


# -- COPY -------------------------------------------------------------------------------------------------------
def _psycopg_copy(conn: Any, t: str) -> list[int]:
    with conn.cursor().copy(f"COPY {t} (id) TO STDOUT") as cp:
        return [int(r[0]) for r in cp.rows()]


def _psycopg2_copy_to(conn: Any, t: str) -> list[int]:
    buf = io.StringIO()
    conn.cursor().copy_to(buf, t, columns=("id",))
    return [int(x) for x in buf.getvalue().split()]


def _psycopg2_copy_expert(conn: Any, t: str) -> list[int]:
    buf = io.StringIO()
    conn.cursor().copy_expert(f"COPY {t} (id) TO STDOUT", buf)
    return [int(x) for x in buf.getvalue().split()]


COPIES = {
    "psycopg-copy": ("psycopg", _psycopg_copy),
    "psycopg2-copy_to": ("psycopg2", _psycopg2_copy_to),
    "psycopg2-copy_expert": ("psycopg2", _psycopg2_copy_expert),
}


@pytest.mark.parametrize("how", list(COPIES), ids=list(COPIES))
def test_a_copy_of_a_table_does_not_tell_where_an_update_put_a_row(stored: dict[str, str], how: str) -> None:
    driver, read = COPIES[how]
    seen = _places(driver, stored, read)
    assert seen["a"][0] != seen["b"][0], seen  # the oracle: row 5 comes last in A, 134th in B
    assert seen["a"][1] == seen["b"][1], seen
    assert all("masked-column-predicate" in s and "COPY (SELECT" in s and "ORDER BY" in s for s in seen["a"][1]), seen


def _asyncpg_url() -> str:
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    return f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"


async def _asyncpg_places(governed: bool, table: str, copy: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_url())
    if governed:
        conn = _wrap(conn)
    out: list[Any] = []
    try:
        for row in (5, 1):
            tr = conn.transaction()
            await tr.start()
            chunks: list[bytes] = []

            async def sink(data: bytes, chunks: list[bytes] = chunks) -> None:
                chunks.append(bytes(data))

            try:
                await conn.execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
                if copy == "table":
                    await conn.copy_from_table(table, columns=["id"], output=sink)
                else:
                    await conn.copy_from_query(f"SELECT id FROM {table} WHERE {SOME}", output=sink)
                out.append([int(x) for x in b"".join(chunks).split()].index(row))
            except governed_db.GuardrailViolation as e:
                out.append(f"refused: {e}".replace(table, "T"))
            finally:
                await tr.rollback()
    finally:
        await conn.close()
    return out


@pytest.mark.parametrize("copy", ["table", "query"])
def test_asyncpg_copies_do_not_tell_where_an_update_put_a_row(stored: dict[str, str], copy: str) -> None:
    """``copy_from_table`` exports the query it equals, and ``copy_from_query`` sends the query governed_db ordered
    (it sent the caller's own before): both come in key order."""
    pytest.importorskip("asyncpg")
    seen = {v: (asyncio.run(_asyncpg_places(False, stored[v], copy)),
                asyncio.run(_asyncpg_places(True, stored[v], copy))) for v in ("a", "b")}  # fmt: skip
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == [4, 0], seen  # in key order: rows 1..9 first (table: 1..400)


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_innocent_copies_run(stored: dict[str, str], driver: str) -> None:
    """A table without masked columns copies as written; a query form ordered by the key copies the people table."""
    raw, gov = pg_connect(driver), _wrap(pg_connect(driver))
    i, a = stored["i"], stored["a"]
    copy = _psycopg_copy if driver == "psycopg" else _psycopg2_copy_expert
    try:
        assert copy(gov, i) == copy(raw, i) and len(copy(gov, i)) == 400
        if driver == "psycopg":
            with gov.cursor().copy(f"COPY (SELECT id, city FROM {a} WHERE id < 4 ORDER BY id) TO STDOUT") as cp:
                assert [tuple(r) for r in cp.rows()] == [("1", "Paris"), ("2", "Lyon"), ("3", "Lyon")]
    finally:
        raw.close()
        gov.close()


# -- RETURNING, values handed out in read order, jsonb_object_agg ----------------------------------------------
READS = {
    "delete-returning": f"DELETE FROM {{t}} WHERE {SOME} RETURNING id",
    "update-returning": f"UPDATE {{t}} SET city = 'Nice' WHERE {SOME} RETURNING id",
    "sequence-in-subquery": f"SELECT id FROM (SELECT id, nextval('{{q}}') n FROM {{t}} WHERE {SOME}) s ORDER BY n",
    "ordered-by-sequence": f"SELECT id FROM {{t}} WHERE {SOME} ORDER BY nextval('{{q}}')",
    "seeded-random-in-aggregate": (
        f"SELECT unnest(array_agg(id ORDER BY r)) FROM (SELECT id, random() r FROM {{t}}, (SELECT setseed(0.5)) z "
        f"WHERE {SOME}) s"
    ),
    # the ids sorted by the numbers the sequence gave them (in the caller's own code)
    "sequence-in-result": f"SELECT id, nextval('{{q}}') FROM {{t}} WHERE {SOME}",
    "jsonb-object-agg": "SELECT (jsonb_object_agg('k', id) ->> 'k')::int FROM {t} WHERE id IN (1, 5, 396)",
}
#: answered in key order rather than refused (PostgreSQL computes a sorted result's own columns after the sort; a
#: write whose RETURNING hands out the key runs as a CTE whose rows are selected in key order, decision 0330)
ORDERED = {"sequence-in-result": [4, 0], "jsonb-object-agg": [[396], [396]], "delete-returning": [4, 0],
           "update-returning": [4, 0]}


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("shape", list(READS), ids=list(READS))
def test_rows_handed_out_in_read_order_tell_nothing(stored: dict[str, str], driver: str, shape: str) -> None:
    sql = READS[shape].replace("{q}", stored["q"])

    def read(conn: Any, t: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(sql.format(t=t))
        rows = cur.fetchall()
        return [r[0] for r in (sorted(rows, key=lambda r: r[1]) if len(cur.description) > 1 else rows)]

    seen = _places(driver, stored, read)
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1], seen
    if shape in ORDERED:
        assert seen["a"][1] == ORDERED[shape], seen
    else:
        assert all(isinstance(s, str) and "masked-column-predicate" in s for s in seen["a"][1]), seen


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_innocent_returning_sequences_and_groupings_run(stored: dict[str, str], driver: str) -> None:
    a, i, q = stored["a"], stored["i"], stored["q"]
    raw, gov = pg_connect(driver, autocommit=False), _wrap(pg_connect(driver, autocommit=False))
    try:
        for sql in (
            f"SELECT city, count(*) FROM {a} GROUP BY ROLLUP (city)",
            f"SELECT city, count(*) FROM {a} GROUP BY CUBE (city) ORDER BY 1",
            f"SELECT city, count(*) FROM {a} WHERE id < 20 GROUP BY GROUPING SETS ((city), ())",
            f"SELECT city, id % 2, count(*) FROM {a} WHERE id < 20 GROUP BY city, ROLLUP (id % 2) ORDER BY 1, 2",
            f"SELECT jsonb_object_agg(id::text, city) FROM {a} WHERE id < 5",
            f"DELETE FROM {i} WHERE id < 10 RETURNING id, qty",
        ):
            seen = _observe(gov, sql)
            gov.rollback()  # (its row locks would hold the raw session's DELETE)
            assert seen == _observe(raw, sql), sql
            raw.rollback()
        # one row changed by its key returns it; a sequence in the result's own columns numbers rows by key
        assert _observe(gov, f"UPDATE {a} SET city = 'Nice' WHERE id = 3 RETURNING id, full_name") == (
            ["id", "full_name"], [(3, "[PERSON_NAME]")]
        )
        assert _observe(gov, f"DELETE FROM {a} AS p WHERE p.id = 4 RETURNING id") == (["id"], [(4,)])
        gov.rollback()
        _cols, rows = _observe(gov, f"SELECT id, nextval('{q}') FROM {a} WHERE id < 5")
        assert [r[0] for r in rows] == [1, 2, 3, 4] and [r[1] for r in rows] == sorted(r[1] for r in rows)
        _cols, rows = _observe(gov, f"SELECT id, clock_timestamp() FROM {a} WHERE id < 3")
        assert [r[0] for r in rows] == [1, 2]
    finally:
        raw.rollback()
        gov.rollback()
        raw.close()
        gov.close()


def _declared(order: str) -> Any:
    def read(conn: Any, t: str) -> list[Any]:
        conn.cursor().execute(f"DECLARE rt15pg_c CURSOR FOR SELECT id FROM {t} WHERE {SOME}{order}")
        return _ids(conn, "FETCH ALL FROM rt15pg_c")

    return read


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_declared_cursor_does_not_tell_where_an_update_put_a_row(stored: dict[str, str], driver: str) -> None:
    """``DECLARE c CURSOR FOR <query>`` is judged as its query, but the ORDER BY it needs could not be written into
    the DECLARE's text, and the stored-order plan's refusal fell back: FETCH returned the rows as stored. The refusal
    stands now; with the ORDER BY written by the caller the cursor runs."""
    seen = _places(driver, stored, _declared(""))
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1], seen
    assert all(isinstance(s, str) and "add the ORDER BY yourself" in s for s in seen["a"][1]), seen
    ordered = _places(driver, stored, _declared(" ORDER BY id"))
    assert ordered["a"][1] == ordered["b"][1] == [4, 0], ordered


def test_psycopg_async_copy_of_a_table_is_refused(stored: dict[str, str]) -> None:
    """An ``AsyncConnection``'s ``cursor().copy()`` goes through the same judgement as the sync one."""
    import psycopg

    async def attempt(table: str) -> tuple[list[Any], list[Any]]:
        out: tuple[list[Any], list[Any]] = ([], [])
        for governed, seen in ((False, out[0]), (True, out[1])):
            conn = await psycopg.AsyncConnection.connect(PG_DSN)
            if governed:
                conn = _wrap(conn)
            try:
                for row in (5, 1):
                    try:
                        await conn.execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
                        async with conn.cursor().copy(f"COPY {table} (id) TO STDOUT") as cp:
                            ids = [int(r[0]) async for r in cp.rows()]
                        seen.append(ids.index(row))
                    except governed_db.GuardrailViolation as e:
                        seen.append(f"refused: {e}".replace(table, "T"))
                    finally:
                        await conn.rollback()
            finally:
                await conn.close()
        return out

    seen = {v: asyncio.run(attempt(stored[v])) for v in ("a", "b")}
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1], seen
    assert all("masked-column-predicate" in s and "COPY (SELECT" in s for s in seen["a"][1]), seen
