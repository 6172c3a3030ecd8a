"""Round 16 red team (pgerr16): which of two rows' errors a PostgreSQL statement raises (decision 0334).

A statement stops at the first row whose evaluation fails. PostgreSQL scans a table in stored order, and where an
UPDATE put a row's new version depends on how wide the masked values stored before it are (decision 0272): over
two tables differing only in row 1's masked name (``pg_stored_people``), with row 5 set NULL, row 5 is read before
row 396 in one copy and after it in the other. An expression failing differently on rows 5 and 396 (``1 / 0``
against ``'396x'::int``, or a per-row ``regclass`` lookup) then raised a different SQLSTATE, message and driver
class per copy — on psycopg, psycopg2 and asyncpg, for SELECT (an ORDER BY added after the scan changes nothing),
UPDATE and DELETE. Now such an error is withheld, one class and SQLSTATE (``XX000``) for all; errors the text
decides, and errors over tables without masked columns, come back exactly as raw.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db.masking.errors_order import PG_ERROR_WITHHELD
from tests._redteam import asyncpg_variants, govern, pg_connect, pg_stored_people, pg_variants
from tests.conftest import PG_DSN

pytestmark = pytest.mark.usefixtures("pg_dsn")

#: fails on row 5 with 22012 (division by zero), on row 396 with 22P02 (invalid input syntax)
TWO_DATA = "CASE WHEN id = 5 THEN 1 / (id - 5) WHEN id = 396 THEN (id::text || 'x')::int ELSE 0 END = 7"
#: fails on row 5 with 42P01 (a relation looked up per row), on row 396 with 22012
LOOKUP = "CASE WHEN id = 5 THEN length(('nosuch' || id)::regclass::text) WHEN id = 396 THEN 1 / (id - 396) " \
         "ELSE 0 END = 7"  # fmt: skip
PICK = "id + 0 IN (5, 396)"  # no index: a scan, in stored order

SHAPES = {
    "select": f"SELECT id, full_name FROM {{t}} WHERE {PICK} AND {TWO_DATA}",
    "select-lookup": f"SELECT id FROM {{t}} WHERE {PICK} AND {LOOKUP}",
    "select-count": f"SELECT count(*) FROM {{t}} WHERE {PICK} AND {TWO_DATA}",
    "update": f"UPDATE {{t}} SET city = 'Nice' WHERE {PICK} AND {TWO_DATA}",
    "update-returning": f"UPDATE {{t}} SET city = 'Nice' WHERE {PICK} AND {LOOKUP} RETURNING id",
    "delete": f"DELETE FROM {{t}} WHERE {PICK} AND {TWO_DATA}",
}


@pytest.fixture
def stored(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    names = pg_stored_people(pg_conn, f"r16pgerr16_{unique}")
    yield names
    for t in names.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def signature(e: BaseException) -> tuple[Any, ...]:
    """All an agent can read of a PostgreSQL driver's error: class, SQLSTATE, message, the server's fields."""
    if type(e).__module__.startswith("asyncpg"):
        return type(e).__name__, e.sqlstate, str(e), e.as_dict()  # type: ignore[attr-defined]
    d = e.diag  # type: ignore[attr-defined]
    fields = (d.message_primary, d.message_detail, d.statement_position, d.context, d.sqlstate)
    if type(e).__module__.startswith("psycopg2"):
        return type(e).__name__, e.pgcode, e.pgerror, str(e), fields  # type: ignore[attr-defined]
    return type(e).__name__, e.sqlstate, str(e), fields  # type: ignore[attr-defined]


def _failed(conn: Any, table: str, sql: str) -> list[Any]:
    """The error ``sql`` raises over ``table`` after row 5 (then row 1) was set NULL, each attempt rolled back."""
    out: list[Any] = []
    for row in (5, 1):
        try:
            conn.cursor().execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
            cur = conn.cursor()
            cur.execute(sql.format(t=table))
            out.append(("ran", cur.fetchall()))
        except governed_db.GuardrailViolation as e:
            out.append(f"refused: {e}")
        except Exception as e:
            out.append(signature(e))
        finally:
            conn.rollback()
    return out


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_error_of_the_row_read_first_is_withheld(stored: dict[str, str], driver: str, shape: str) -> None:
    """Raw, the two copies raise different errors (the oracle: row 5 moved behind row 396 in one only); governed,
    the same withheld error, class and SQLSTATE for both."""
    seen = {}
    for v in ("a", "b"):
        raw, gov = pg_connect(driver, autocommit=False), govern(pg_connect(driver, autocommit=False))
        try:
            seen[v] = (_failed(raw, stored[v], SHAPES[shape]), _failed(gov, stored[v], SHAPES[shape]))
        finally:
            raw.close()
            gov.close()
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1], seen
    for s in seen["a"][1]:
        assert s[0] == "InternalError_" and PG_ERROR_WITHHELD in str(s) and "XX000" in s, s


def test_asyncpg_withholds_it_too(pg_conn: Any, unique: str) -> None:
    """Each shape on fresh tables: what earlier attempts left on the pages (dead versions of rolled-back updates,
    row locks of a governed write, decision 0351) decides where the next new versions go, so tables shared by the
    shapes made the raw oracle itself depend on the order the shapes ran in."""
    asyncpg = pytest.importorskip("asyncpg")
    tables = {shape: pg_stored_people(pg_conn, f"r16pgerr16_{unique}_{i}") for i, shape in
              enumerate(("select", "update-returning", "delete"))}
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"

    async def failed(conn: Any, table: str, sql: str) -> list[Any]:
        out: list[Any] = []
        for row in (5, 1):
            tr = conn.transaction()
            await tr.start()
            try:
                await conn.execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
                out.append(("ran", await conn.fetch(sql.format(t=table))))
            except governed_db.GuardrailViolation as e:
                out.append(f"refused: {e}")
            except Exception as e:
                out.append(signature(e))
            finally:
                await tr.rollback()
        return out

    async def run() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for shape in ("select", "update-returning", "delete"):
            for v in ("a", "b"):
                raw = await asyncpg.connect(url)
                gov = governed_db.wrap(await asyncpg.connect(url), identity=governed_db.Identity(
                    "agent-x", kind="agent", on_behalf_of="bob"), environment="production", audit=False)
                try:
                    stored = tables[shape]
                    seen[shape, v] = (await failed(raw, stored[v], SHAPES[shape]),
                                      await failed(gov, stored[v], SHAPES[shape]))
                finally:
                    await raw.close()
                    await gov.close()
        return seen

    try:
        seen = asyncio.run(run())
    finally:
        for names in tables.values():
            for t in names.values():
                pg_conn.execute(f"DROP TABLE IF EXISTS {t}")
    for shape in ("select", "update-returning", "delete"):
        a, b = seen[shape, "a"], seen[shape, "b"]
        assert a[0] != b[0], (shape, a, b)
        assert a[1] == b[1], (shape, a, b)
        for s in a[1]:
            assert s[0] == "InternalServerError" and s[1] == "XX000" and s[3] == {
                "severity": "ERROR", "severity_en": "ERROR", "sqlstate": "XX000", "message": PG_ERROR_WITHHELD}, s


# -- look-alikes: come back exactly as raw -------------------------------------------------------------------
@pytest.fixture
def plain(pg_conn: Any, unique: str) -> Iterator[str]:
    """400 rows of ``(id, n, label)``: nothing masked."""
    t = f"r16pgerr16_{unique}_plain"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, n int, label text)")
    pg_conn.execute(f"INSERT INTO {t} SELECT g, g % 7, 'item ' || g FROM generate_series(1, 400) g")
    yield t
    pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def _error(conn: Any, sql: str) -> Any:
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return ("ran", cur.fetchall() if cur.description else cur.rowcount)
    except Exception as e:
        return signature(e)
    finally:
        conn.rollback()


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_per_row_errors_on_a_table_without_masked_columns_are_as_raw(plain: str, driver: str, shape: str) -> None:
    raw, gov = pg_connect(driver, autocommit=False), govern(pg_connect(driver, autocommit=False))
    sql = SHAPES[shape].replace("full_name", "label").replace("city", "label").format(t=plain)
    try:
        got, want = _error(gov, sql), _error(raw, sql)
    finally:
        raw.close()
        gov.close()
    assert want[0] in ("DivisionByZero", "InvalidTextRepresentation", "UndefinedTable"), want
    assert got == want


TEXT_ERRORS = {
    "unknown-column": "SELECT nosuch FROM {t} WHERE id + 0 IN (5, 396)",
    "unknown-table": "SELECT p.id FROM {t} p JOIN nosuch_r16pgerr16 q ON q.id = p.id",
    "subquery-columns": "SELECT id FROM {t} WHERE id IN (SELECT 1, 2)",
    "bad-literal": "SELECT id FROM {t} WHERE id = 'five'",
    "unknown-function": "UPDATE {t} SET city = nosuch_fn(id) WHERE id + 0 IN (5, 396)",
    "type-mismatch": "DELETE FROM {t} WHERE id = true",
}


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("shape", sorted(TEXT_ERRORS))
def test_errors_the_text_decides_on_a_masked_table_are_as_raw(stored: dict[str, str], driver: str, shape: str) -> None:
    """Parse analysis raises them, pointing into the text, before any row: class, SQLSTATE and message as raw,
    so an agent can fix its SQL (a value the message quotes is blanked, as before, and the position follows the
    key order added to a SELECT)."""
    raw, gov = pg_connect(driver, autocommit=False), govern(pg_connect(driver, autocommit=False))
    sql = TEXT_ERRORS[shape].format(t=stored["a"])
    try:
        got, want = _error(gov, sql), _error(raw, sql)
    finally:
        raw.close()
        gov.close()
    assert want[0] not in ("ran", "InternalError_"), want
    assert got[:2] == want[:2] and PG_ERROR_WITHHELD not in repr(got), (got, want)
    if shape not in ("bad-literal", "unknown-table"):  # quoted in the message, blanked as before
        assert got[-1][0] == want[-1][0], (got, want)


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_duplicate_key_inserted_into_a_masked_table_is_as_raw(stored: dict[str, str], driver: str) -> None:
    """An INSERT ... VALUES reads no rows of its target in any stored order: its unique violation keeps its class
    and SQLSTATE."""
    raw, gov = pg_connect(driver, autocommit=False), govern(pg_connect(driver, autocommit=False))
    sql = f"INSERT INTO {stored['a']} (id, city) VALUES (5, 'Oslo')"
    try:
        got, want = _error(gov, sql), _error(raw, sql)
    finally:
        raw.close()
        gov.close()
    assert want[0] == "UniqueViolation", want
    assert got[:2] == want[:2]


def test_innocent_reads_and_writes_of_the_masked_table_still_run(stored: dict[str, str], pg_conn: Any) -> None:
    a = stored["a"]
    gov = govern(pg_connect("psycopg"))
    try:
        cur = gov.cursor()
        cur.execute(f"SELECT id, city FROM {a} WHERE {PICK} AND CASE WHEN id = 5 THEN 1 / (id - 4) ELSE 0 END = 0")
        assert cur.fetchall() == [(396, "Lyon")]
        cur.execute(f"UPDATE {a} SET city = 'Nice' WHERE {PICK}")
        assert cur.rowcount == 2
    finally:
        gov.close()
    assert pg_conn.execute(f"SELECT count(*) FROM {a} WHERE city = 'Nice'").fetchone() == (2,)


# -- a server-side cursor: the error comes with a fetch --------------------------------------------------------
def _fetched(conn: Any, table: str, sql: str) -> list[Any]:
    """As :func:`_failed`, through a named (server-side) cursor: the rows, and their error, come with the fetch."""
    out: list[Any] = []
    for row in (5, 1):
        try:
            conn.cursor().execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
            cur = conn.cursor(name=f"c{row}")
            cur.execute(sql.format(t=table))
            out.append(("ran", cur.fetchall()))
        except governed_db.GuardrailViolation as e:
            out.append(f"refused: {e}")
        except Exception as e:
            out.append(signature(e))
        finally:
            conn.rollback()
    return out


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_server_side_cursor_withholds_it_at_the_fetch(stored: dict[str, str], driver: str) -> None:
    sql = f"SELECT id FROM {{t}} WHERE {PICK} AND {TWO_DATA}"
    seen = pg_variants(driver, stored, lambda conn, t: _fetched(conn, t, sql))
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1], seen
    for s in seen["a"][1]:
        assert s[0] == "InternalError_" and PG_ERROR_WITHHELD in str(s), s


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_server_side_cursor_over_a_plain_table_fails_as_raw(plain: str, driver: str) -> None:
    sql = f"SELECT id FROM {plain} WHERE {PICK} AND {TWO_DATA}"
    out = []
    for conn in (pg_connect(driver, autocommit=False), govern(pg_connect(driver, autocommit=False))):
        try:
            cur = conn.cursor(name="c")
            cur.execute(sql)
            out.append(("ran", cur.fetchall()))
        except Exception as e:
            out.append(signature(e))
        finally:
            conn.rollback()
            conn.close()
    assert out[0][0] == "DivisionByZero" and out[1] == out[0], out


def test_an_asyncpg_cursor_withholds_it_at_the_fetch(stored: dict[str, str]) -> None:
    pytest.importorskip("asyncpg")
    sql = f"SELECT id FROM {{t}} WHERE {PICK} AND {TWO_DATA}"

    async def fetched(conn: Any, table: str) -> list[Any]:
        out: list[Any] = []
        for row in (5, 1):
            tr = conn.transaction()
            await tr.start()
            try:
                await conn.execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
                cur = await conn.cursor(sql.format(t=table))
                out.append(("ran", await cur.fetch(10)))
            except Exception as e:
                out.append(signature(e))
            finally:
                await tr.rollback()
        return out

    seen = asyncpg_variants(stored, fetched)
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1], seen
    assert all(s[0] == "InternalServerError" for s in seen["a"][1]), seen


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_an_identity_with_an_unmask_grant_sees_the_error(stored: dict[str, str], driver: str) -> None:
    """Nothing is masked for it, so nothing is withheld: the error the server raised, as raw."""
    dba = governed_db.Identity("dana", kind="human", roles=["dba"])
    raw = pg_connect(driver, autocommit=False)
    gov = govern(pg_connect(driver, autocommit=False), dba, masking={"unmask": [{"role": "dba"}]})
    sql = SHAPES["update"].format(t=stored["a"])
    try:
        got, want = _error(gov, sql), _error(raw, sql)
    finally:
        raw.close()
        gov.close()
    assert want[0] in ("DivisionByZero", "InvalidTextRepresentation") and got == want, (got, want)


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_one_row_named_by_its_key_fails_as_raw(stored: dict[str, str], driver: str) -> None:
    """At most one row can fail: no order to tell, the error keeps its class and SQLSTATE."""
    raw, gov = pg_connect(driver, autocommit=False), govern(pg_connect(driver, autocommit=False))
    sql = f"UPDATE {stored['a']} SET city = (1 / (id - 5))::text WHERE id = 5"
    try:
        got, want = _error(gov, sql), _error(raw, sql)
    finally:
        raw.close()
        gov.close()
    assert want[0] == "DivisionByZero" and got[:2] == want[:2], (got, want)
