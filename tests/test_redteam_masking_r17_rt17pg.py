"""Round 17 red team (rt17pg), PostgreSQL: notices raised row by row in stored order (decision 0340), and rows an
``INSERT`` led by a ``WITH`` writes in stored order (decision 0341).

Both use the stored-order oracle of decisions 0272/0334: two tables differing only in row 1's masked name
(``pg_stored_people``); with row 5 set NULL, row 5 is read before row 396 in one copy and after it in the other.

* Notices: ``to_tsvector`` of a word over 2047 characters raises NOTICE 54000 and ``plainto_tsquery`` of stop
  words NOTICE 00000, per row. Their text was withheld (0230) but severity, SQLSTATE, number and order reached
  psycopg's notice handlers, psycopg2's ``connection.notices`` and asyncpg's log listeners: the SQLSTATEs came
  in the order the rows were read, after any ORDER BY the order guard added. Now notices arriving while such a
  statement runs (or while a server-side cursor fetches its rows) are not delivered.
* ``WITH x AS (SELECT id FROM t WHERE ...) INSERT INTO mine (k, v) SELECT id, id FROM x`` gave the inserted rows
  serial numbers in stored order: the order guard, which puts a key order on ``INSERT ... SELECT`` (so that
  serial ids follow the key), did not know the CTE written before INSERT. Now it does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import asyncpg_variants, govern, pg_connect, pg_stored_people, pg_variants

pytestmark = pytest.mark.usefixtures("pg_dsn")

PICK = "id + 0 IN (5, 396)"  # no index: a scan, in stored order
#: row 5: NOTICE 00000 (a text-search query of stop words only); row 396: NOTICE 54000 (a word too long to index)
NOTES = (
    "CASE WHEN id = 5 THEN numnode(plainto_tsquery('english', 'the' || substr(id::text, 1, 0))) "
    "WHEN id = 396 THEN length(to_tsvector('simple', repeat('a', 2990 + id))) ELSE 0 END = 7"
)
SHAPES = {
    "select": f"SELECT id, full_name FROM {{t}} WHERE {PICK} AND {NOTES}",
    "select-ordered": f"SELECT id FROM {{t}} WHERE {PICK} AND {NOTES} ORDER BY id",
    "count": f"SELECT count(*) FROM {{t}} WHERE {PICK} AND {NOTES}",
    "update": f"UPDATE {{t}} SET city = 'Nice' WHERE {PICK} AND {NOTES}",
    "delete": f"DELETE FROM {{t}} WHERE {PICK} AND {NOTES}",
}
#: row 5 raises a notice, row 396 an error: how many notices come before the error tells which row came first
BEFORE_ERROR = (
    f"SELECT id FROM {{t}} WHERE {PICK} AND CASE WHEN id = 5 THEN "
    "numnode(plainto_tsquery('english', 'the' || substr(id::text, 1, 0))) WHEN id = 396 THEN 1 / (id - 396) "
    "ELSE 0 END = 7"
)


@pytest.fixture
def stored(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    names = pg_stored_people(pg_conn, f"r17pg_{unique}")
    yield names
    for t in names.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def _moved(conn: Any, table: str, row: int) -> None:
    conn.cursor().execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")


def notices_seen(driver: str, sql: str, *, between: str | None = None, named: bool = False) -> Any:
    """``see(conn, table)``: per moved row (5, then 1), the (severity, SQLSTATE) of each notice ``sql`` raised over
    ``table`` as the caller receives them (psycopg: a notice handler; psycopg2: ``connection.notices``), or the
    error's class. ``named``: through a server-side cursor, ``between`` run after it opened and before the fetch."""

    def see(conn: Any, table: str) -> list[Any]:
        got: list[Any] = []
        if driver == "psycopg":
            conn.add_notice_handler(lambda d: got.append((d.severity, d.sqlstate)))
        out: list[Any] = []
        for row in (5, 1):
            got.clear()
            before = len(conn.notices) if driver == "psycopg2" else 0
            try:
                _moved(conn, table, row)
                cur = conn.cursor("r17pg_c") if named else conn.cursor()
                cur.execute(sql.format(t=table))
                if between is not None:
                    conn.cursor().execute(between)
                if named or cur.description is not None:  # a psycopg2 named cursor describes at its first fetch
                    cur.fetchall()
                error = None
            except governed_db.GuardrailViolation as e:
                error = f"refused: {e}"
            except Exception as e:
                error = type(e).__name__
            finally:
                if driver == "psycopg2":
                    got = [(n.split(":")[0], n.split(":  ", 1)[1][:30]) for n in conn.notices[before:]]
                conn.rollback()
            out.append((list(got), error))
        return out

    return see


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_notices_raised_row_by_row_tell_no_stored_order(stored: dict[str, str], driver: str, shape: str) -> None:
    """Raw: the notices come in the order the rows were read, different in copy a and copy b. Governed: none."""
    seen = pg_variants(driver, stored, notices_seen(driver, SHAPES[shape]))
    (raw_a, gov_a), (raw_b, gov_b) = seen["a"], seen["b"]
    assert raw_a != raw_b and all(len(notes) == 2 for notes, _ in raw_a), seen  # the oracle, unprotected
    assert gov_a == gov_b == [([], None), ([], None)], seen


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_notices_before_a_withheld_error_tell_no_stored_order(stored: dict[str, str], driver: str) -> None:
    """Raw: a notice comes before the error only where row 5 is read first. Governed: no notice, and the error
    withheld (0334)."""
    seen = pg_variants(driver, stored, notices_seen(driver, BEFORE_ERROR))
    (raw_a, gov_a), (raw_b, gov_b) = seen["a"], seen["b"]
    assert raw_a != raw_b, seen
    assert gov_a == gov_b and all(notes == [] for notes, _ in gov_a), seen


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_server_side_cursor_fetching_later_delivers_no_notices(stored: dict[str, str], driver: str) -> None:
    """A server-side cursor reads its rows at the fetch, after another statement ran (whose own flag is clear):
    the notices of that fetch come in stored order too, and are not delivered."""
    sql = SHAPES["count"]
    seen = pg_variants(driver, stored, notices_seen(driver, sql, between="SELECT 1", named=True))
    (raw_a, gov_a), (raw_b, gov_b) = seen["a"], seen["b"]
    assert raw_a != raw_b, seen
    assert gov_a == gov_b == [([], None), ([], None)], seen


def test_asyncpg_log_listeners_get_no_notices_in_stored_order(stored: dict[str, str]) -> None:
    pytest.importorskip("asyncpg")

    async def notes(conn: Any, table: str) -> list[Any]:
        got: list[Any] = []
        conn.add_log_listener(lambda _c, m: got.append((m.severity, m.sqlstate)))
        out: list[Any] = []
        for row in (5, 1):
            got.clear()
            tr = conn.transaction()
            await tr.start()
            try:
                await conn.execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
                await conn.fetch(SHAPES["select"].format(t=table))
                cur = await conn.cursor(SHAPES["count"].format(t=table))
                await conn.execute("SELECT 1")
                await cur.fetch(5)
                async for _rec in conn.cursor(SHAPES["select"].format(t=table), prefetch=1):
                    await conn.execute("SELECT 1")
                await asyncio.sleep(0.05)  # asyncpg calls log listeners on a later turn of the loop
                out.append(list(got))
            finally:
                await tr.rollback()
        return out

    seen = asyncpg_variants(stored, notes)
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == [[], []], seen


def test_psycopg2_notices_into_a_container_of_the_callers_own(stored: dict[str, str]) -> None:
    """``connection.notices = deque()``: the container set in its place gets none either."""

    def see(conn: Any, table: str) -> list[Any]:
        conn.notices = deque()
        out = []
        for row in (5, 1):
            try:
                _moved(conn, table, row)
                conn.cursor().execute(SHAPES["select"].format(t=table))
                out.append([n.split("\n")[0] for n in conn.notices])
            finally:
                conn.notices.clear()
                conn.rollback()
        return out

    seen = pg_variants("psycopg2", stored, see)
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == [[], []], seen


# -- look-alikes: notices that tell no stored order keep coming -------------------------------------------------
@pytest.fixture
def plain(pg_conn: Any, unique: str) -> Iterator[str]:
    """400 rows of ``(id, n, label)``: nothing masked."""
    t = f"r17pg_{unique}_plain"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, n int, label text)")
    pg_conn.execute(f"INSERT INTO {t} SELECT g, g % 7, 'item ' || g FROM generate_series(1, 400) g")
    yield t
    pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def _notes(conn: Any, driver: str, sql: str) -> list[Any]:
    got: list[Any] = []
    if driver == "psycopg":
        conn.add_notice_handler(lambda d: got.append((d.severity, d.sqlstate)))
    before = len(conn.notices) if driver == "psycopg2" else 0
    try:
        cur = conn.cursor()
        cur.execute(sql)
        if cur.description is not None:
            cur.fetchall()
    finally:
        conn.rollback()
    if driver == "psycopg2":
        got = [n.split(":")[0] for n in conn.notices[before:]]
    return got


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_notices_that_tell_no_stored_order_still_come(stored: dict[str, str], plain: str, driver: str) -> None:
    """Per-row notices over a table without masked columns, of one row named by its key, and of a statement that
    reads no table keep coming (text withheld as before, decision 0230); an identity with an unmask grant gets
    them all as raw."""
    raw, gov = pg_connect(driver, autocommit=False), govern(pg_connect(driver, autocommit=False))
    service = governed_db.Identity("billing", kind="service")
    full = govern(pg_connect(driver, autocommit=False), service, masking={"unmask": [{"kind": "service"}]})
    one_row = f"SELECT id FROM {stored['a']} WHERE id = 5 AND {NOTES}"
    innocent = {
        "plain": SHAPES["select"].replace("full_name", "label").format(t=plain),
        "one-row": one_row,
        "no-table": "SELECT numnode(plainto_tsquery('english', 'the'))",
        "no-table-warning": "SELECT length(to_tsvector('simple', repeat('a', 3000)))",
    }
    try:
        for name, sql in innocent.items():
            want = _notes(raw, driver, sql)
            assert want, (name, want)
            got = _notes(gov, driver, sql)
            assert len(got) == len(want), (name, got, want)
            if driver == "psycopg":
                assert got == want, (name, got, want)  # severity and SQLSTATE kept
        masked = SHAPES["select"].format(t=stored["a"])
        assert _notes(full, driver, masked) == _notes(raw, driver, masked) != []
    finally:
        raw.close()
        gov.close()
        full.close()


def test_psycopg2_raw_handle_still_reads_its_notices(plain: str) -> None:
    """Wrapping gates psycopg2's own ``notices`` list; the raw handle still reads it as a sequence, kept to the
    driver's last 50."""
    raw = pg_connect("psycopg2")
    try:
        gov = govern(raw)
        cur = gov.cursor()
        for _ in range(60):
            cur.execute("SELECT numnode(plainto_tsquery('english', 'the'))")
        assert len(raw.notices) == 50 and "NOTICE" in raw.notices[-1], raw.notices[-1]
        assert len(gov.notices) == 50
        govern(raw)  # wrapped again: one gate, not two
        raw.cursor().execute("SELECT numnode(plainto_tsquery('english', 'the'))")
        assert len(raw.notices) == 50 and list(raw.notices)
    finally:
        raw.close()


# -- WITH ... INSERT ... SELECT: serial ids in key order (decision 0341) -------------------------------------------
@pytest.fixture
def mine(pg_conn: Any, unique: str) -> Iterator[str]:
    """The agent's own table: a serial number, a key and a value."""
    t = f"r17pg_{unique}_mine"
    pg_conn.execute(f"CREATE TABLE {t} (n serial, k int primary key, v int)")
    yield t
    pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


CTE_INSERTS = {
    "with": f"WITH x AS (SELECT id FROM {{t}} WHERE {PICK}) INSERT INTO {{m}} (k, v) SELECT id, id FROM x",
    "materialized": f"WITH x AS MATERIALIZED (SELECT id, city FROM {{t}} WHERE {PICK}) "
    "INSERT INTO {m} (k, v) SELECT id, id FROM x",
}


@pytest.mark.parametrize("shape", sorted(CTE_INSERTS))
@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_an_insert_led_by_a_with_numbers_rows_in_key_order(
    stored: dict[str, str], mine: str, driver: str, shape: str
) -> None:
    """Raw: the serial numbers follow the stored order (copy a and copy b differ). Governed: key order in both,
    as the database holds it (read in the same transaction, before the rollback)."""

    def see(conn: Any, table: str) -> list[Any]:
        out = []
        for row in (5, 1):
            try:
                _moved(conn, table, row)
                conn.cursor().execute(CTE_INSERTS[shape].format(t=table, m=mine))
                cur = conn.cursor()
                cur.execute(f"SELECT n - (SELECT min(n) FROM {mine}), v FROM {mine} ORDER BY v")
                out.append([tuple(r) for r in cur.fetchall()])
            finally:
                conn.rollback()
        return out

    seen = pg_variants(driver, stored, see)
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == [[(0, 5), (1, 396)]] * 2, seen


def test_an_insert_led_by_a_with_still_runs(stored: dict[str, str], plain: str, mine: str, pg_conn: Any) -> None:
    """Look-alikes: a WITH before INSERT over a table without masked columns, and one over the masked table with
    its own ORDER BY on the key, run and write what they say."""
    gov = govern(pg_connect("psycopg"))
    try:
        gov.execute(f"WITH x AS (SELECT id, n FROM {plain} WHERE id < 4) INSERT INTO {mine} (k, v) SELECT id, n FROM x")
        gov.execute(
            f"WITH x AS (SELECT id FROM {stored['a']} WHERE id IN (10, 11)) "
            f"INSERT INTO {mine} (k, v) SELECT id, id FROM x ORDER BY id"
        )
    finally:
        gov.close()
    rows = pg_conn.execute(f"SELECT k, v FROM {mine} ORDER BY k").fetchall()
    assert rows == [(1, 1), (2, 2), (3, 3), (10, 10), (11, 11)], rows


# -- a sublink that stops at its first deciding row (decision 0342) ------------------------------------------------
#: fails on row 396 only; row 5 decides EXISTS (and ANY, ALL) first where it is stored first
FAILS_LATE = "CASE WHEN id = 396 THEN 1 / (id - 396) ELSE 1 END = 1"
STOPS_EARLY = {
    "exists": f"SELECT EXISTS (SELECT 1 FROM {{t}} WHERE {PICK} AND {FAILS_LATE})",
    "where-exists": f"SELECT 1 WHERE EXISTS (SELECT 1 FROM {{t}} WHERE {PICK} AND {FAILS_LATE})",
    "case-exists": f"SELECT CASE WHEN EXISTS (SELECT 1 FROM {{t}} WHERE {PICK} AND {FAILS_LATE}) THEN 1 END",
    "exists-ordered": f"SELECT 1 WHERE EXISTS (SELECT 1 FROM {{t}} WHERE {PICK} AND {FAILS_LATE} ORDER BY id)",
    "exists-grouped": f"SELECT EXISTS (SELECT 1 FROM {{t}} WHERE {PICK} AND {FAILS_LATE} GROUP BY id)",
    "exists-join": f"SELECT EXISTS (SELECT 1 FROM {{t}} a JOIN {{t}} b USING (id) WHERE a.{PICK} AND "
    "CASE WHEN a.id = 396 THEN 1 / (a.id - 396) ELSE 1 END = 1)",
    "all": f"SELECT 2 = ALL (SELECT CASE WHEN id = 5 THEN 1 ELSE 2 END FROM {{t}} WHERE {PICK} AND {FAILS_LATE})",
    "exists-cte": f"WITH x AS (SELECT id FROM {{t}}) SELECT EXISTS (SELECT 1 FROM x WHERE {PICK} AND {FAILS_LATE})",
}


def _fails_or_not(conn: Any, table: str, sql: str) -> list[Any]:
    """Per moved row (5, then 1): the rows ``sql`` returns over ``table``, the class of its error, or a refusal."""
    out: list[Any] = []
    for row in (5, 1):
        try:
            _moved(conn, table, row)
            cur = conn.cursor()
            cur.execute(sql.format(t=table))
            out.append([tuple(r) for r in cur.fetchall()])
        except governed_db.GuardrailViolation as e:
            out.append(f"refused: {e}".replace(table, "T"))
        except Exception as e:
            out.append(type(e).__name__)
        finally:
            conn.rollback()
    return out


@pytest.mark.parametrize("shape", sorted(STOPS_EARLY))
def test_whether_a_sublink_fails_tells_no_stored_order(stored: dict[str, str], shape: str) -> None:
    """Raw: the statement fails over one copy (row 396 read first) and returns over the other (row 5 decided it
    first). Governed: refused alike, naming the expression and what to do."""
    seen = pg_variants("psycopg", stored, lambda conn, t: _fails_or_not(conn, t, STOPS_EARLY[shape]))
    (raw_a, gov_a), (raw_b, gov_b) = seen["a"], seen["b"]
    assert raw_a != raw_b, seen  # the oracle, unprotected
    assert gov_a == gov_b, seen
    for s in gov_a:
        assert isinstance(s, str) and s.startswith("refused:") and "stops reading at the first row" in s, s
        assert "may fail on some rows" in s and "count(*)" in s, s


@pytest.mark.parametrize("driver", ["psycopg2"])
def test_whether_a_sublink_fails_tells_no_stored_order_psycopg2(stored: dict[str, str], driver: str) -> None:
    seen = pg_variants(driver, stored, lambda conn, t: _fails_or_not(conn, t, STOPS_EARLY["where-exists"]))
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] and "refused:" in seen["a"][1][0], seen


def test_sublinks_that_cannot_fail_per_row_still_run(stored: dict[str, str], plain: str) -> None:
    """Look-alikes: sublinks over the masked table that compare columns, constants and text functions, one that
    reads one row by its key (correlated or constant), one over a table without masked columns that divides,
    and a count over the masked table that reads every row, run as raw."""
    t = stored["a"]
    innocent = [
        f"SELECT EXISTS (SELECT 1 FROM {t} WHERE city = 'Lyon' AND id > 300)",
        f"SELECT count(*) FROM {plain} p WHERE EXISTS (SELECT 1 FROM {t} s WHERE s.id = p.id AND lower(s.city) "
        "LIKE 'ly%')",
        f"SELECT count(*) FROM {plain} p WHERE p.id IN (SELECT id FROM {t} WHERE city IS NOT NULL AND id < 10)",
        f"SELECT count(*) FROM {plain} p WHERE EXISTS (SELECT 1 FROM {t} s WHERE s.id = p.id AND s.id / 2 > 1)",
        f"SELECT EXISTS (SELECT 1 FROM {t} WHERE id = 7 AND 10 / (id - 6) = 10)",
        f"SELECT EXISTS (SELECT 1 FROM {t} WHERE id::text || city = '3Lyon' AND now() > now() - interval '1 day')",
        f"SELECT EXISTS (SELECT 1 FROM {plain} WHERE {FAILS_LATE.replace('= 1', '= 1 AND n >= 0')})",
        f"SELECT (SELECT count(*) FROM {t} WHERE {PICK} AND CASE WHEN id = 396 THEN 2 / (id - 395) ELSE 1 END "
        "= 1) > 0",
    ]
    raw, gov = pg_connect("psycopg"), govern(pg_connect("psycopg"))
    try:
        for sql in innocent:
            want = raw.execute(sql).fetchall()
            got = gov.execute(sql).fetchall()
            assert got == want, (sql, got, want)
    finally:
        raw.close()
        gov.close()
