"""Red-team round 10 on PostgreSQL (psycopg 3, psycopg2, asyncpg): where a row version is *stored* depends on
how wide it is (decision 0244).

An agent identity in production with zero configuration. Two tables hold the same ids, cities and amounts and
differ only in row 1's masked values (whose masks are the same). The agent may update a clear column of row 1
(``UPDATE t SET amount = amount WHERE id = 1``): each update writes a new version of the whole row, and inside
one transaction none can be pruned, so row 1 moves to the next page after as many updates as fit on a page —
fewer for a longer name or e-mail. What tells that point:

* ``ctid``, the page and slot of a row version, was a row locator counted as a constant and came back exactly
  (``(0,43)`` for one table, ``(1,5)`` for the other after the same 45 updates); also as a filter
  (``WHERE ctid < '(1,0)'``) or an order (``ORDER BY ctid``);
* the plans of statements that read none of the masked columns (``EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM
  t``: the buffers a scan read; costs and row estimates once the table has more than ten pages);
* ``currtid2('t', '(0,1)')``, the ``ctid`` of a row's newest version without naming the column;
* the sizes of a relation (``pg_relation_size``, ``pg_table_size``...), the page counts of the catalogs
  (``pg_class.relpages``) and the statistics of updates kept on their page and of blocks read
  (``pg_stat_xact_user_tables.n_tup_hot_upd``, ``pg_statio_user_tables.heap_blks_hit``).

Each check runs the same updates and reads on both tables: the raw session tells them apart, the governed one
does not (``ctid`` of a table with masked columns is masked whole and refused where it decides anything, as
are the plans over such a table; the storage measures are refused), and look-alikes keep running with exact results: ``ctid`` of a table without
masked columns, row counts and names from the same catalogs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, made_tables, pg_connect
from tests._redteam import observe as _observe
from tests.conftest import PG_DSN

DDL = "(id int primary key, full_name text, email text, ssn text, city text, amount int)"
#: the same masks (the e-mail's keeps its first letter and domain), different lengths
ROWS_A = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "Paris", 10),
    (2, "Bob Jones", "bob.jones@example.org", "219-45-1234", "Lyon", 20),
    (3, "Chen Wei", "chen.wei@example.net", "412-77-9001", "Nice", 30),
]
ROWS_B = [
    (1, "Zoe Quinn-Harper Montgomery", "amy.w-long-address@example.com", "100-99-0000", "Paris", 10),
    *ROWS_A[1:],
]
UPDATES = 80
#: reads after each update of row 1: where its newest version is, and what measures the table's pages
LOCATORS = [
    "SELECT ctid, id FROM {t} WHERE id = 1",
    "SELECT t.ctid FROM {t} t WHERE id = 1",
    "SELECT id FROM {t} WHERE ctid < '(1,0)' ORDER BY id",
    "SELECT id FROM {t} ORDER BY ctid >= '(1,0)', id",
    "SELECT (SELECT max(ctid) FROM {t})",
]
MEASURES = [
    "SELECT pg_relation_size('{t}')",
    "SELECT pg_table_size('{t}')",
    "SELECT pg_size_pretty(pg_total_relation_size('{t}'))",
    "SELECT n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = '{t}'",
    "SELECT pg_stat_get_xact_tuples_hot_updated('{t}'::regclass)",
    "SELECT heap_blks_hit + coalesce(heap_blks_read, 0) FROM pg_statio_user_tables WHERE relname = '{t}'",
    "SELECT currtid2('{t}', '(0,1)'::tid)",
    "SELECT relpages FROM pg_class WHERE relname = '{t}'",
    "SELECT * FROM pg_class WHERE relname = '{t}'",
]

#: plans of statements that read no masked column, over the same table: costs and row estimates count its pages
#: (once past ten), buffers the pages a scan read
PLANS = [
    "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, SUMMARY OFF) SELECT id FROM {t}",
    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM {t}",
    "EXPLAIN SELECT id FROM {t}",
]


@pytest.fixture
def tables(pg_conn: Any, unique: str) -> Iterator[tuple[str, str]]:
    """Two customer tables that differ only in row 1's masked values, and one with no masked column."""
    with made_tables(pg_conn) as make:
        yield make(DDL, ROWS_A, f"rt10pg_a_{unique}"), make(DDL, ROWS_B, f"rt10pg_b_{unique}")


def _connect(driver: str) -> Any:
    """A session that is not in autocommit: the updates stay one transaction (no version is pruned)."""
    return pg_connect(driver, autocommit=False)


def _trace(conn: Any, table: str, reads: list[str]) -> list[Any]:
    """Update row 1 again and again in one transaction; after each update, what each read shows (the table's
    name written as ``T``, so that the two tables' observations compare)."""
    seen: list[Any] = []
    try:
        for _ in range(UPDATES):
            cur = conn.cursor()
            cur.execute(f"UPDATE {table} SET amount = amount WHERE id = 1")
            seen.append([repr(_observe(conn, sql.format(t=table))).replace(table, "T") for sql in reads])
    finally:
        conn.rollback()
    return seen


def _both(driver: str, names: tuple[str, str], reads: list[str], wrap: Callable[[Any], Any]) -> list[list[Any]]:
    out = []
    for name in names:
        raw = _connect(driver)
        try:
            out.append(_trace(wrap(raw), name, reads))
        finally:
            raw.close()
    return out


DRIVERS = ["psycopg", "psycopg2"]


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("read", LOCATORS)
def test_ctid_after_updates_tells_nothing(tables: tuple[str, str], driver: str, read: str) -> None:
    """``ctid`` of row 1 after each of 80 updates: the raw sessions move to page 1 at different updates."""
    raw_a, raw_b = _both(driver, tables, [read], lambda c: c)
    assert raw_a != raw_b  # the oracle, unprotected: a longer row fills a page sooner
    a, b = _both(driver, tables, [read], govern)
    assert a == b, next((x, y) for x, y in zip(a, b, strict=True) if x != y)
    assert "(0," not in repr(a) and "(1," not in repr(a)


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("read", MEASURES)
def test_storage_measures_after_updates_tell_nothing(tables: tuple[str, str], driver: str, read: str) -> None:
    """Sizes, page counts and statistics of updates kept on their page or blocks read, after each update."""
    a, b = _both(driver, tables, [read], govern)
    assert a == b, next((x, y) for x, y in zip(a, b, strict=True) if x != y)
    assert all("refused" in step[0] and "rows are stored on" in step[0] for step in a), a[0]


@pytest.mark.parametrize("driver", DRIVERS)
def test_storage_measures_are_an_oracle_without_masking(tables: tuple[str, str], driver: str) -> None:
    """Control: the same reads on the raw sessions tell the tables apart (all but ``relpages``, which only a
    VACUUM or ANALYZE brings up to date: approval-gated, but autovacuum runs them too)."""
    for read in MEASURES[:7]:
        raw_a, raw_b = _both(driver, tables, [read], lambda c: c)
        assert raw_a != raw_b, read


@pytest.mark.parametrize("driver", DRIVERS)
def test_plans_after_updates_tell_nothing(tables: tuple[str, str], driver: str) -> None:
    """Plans of statements that read only ``id``: ``Buffers: shared hit=1`` for one table and ``=2`` for the
    other after the same 42 updates. A plan over a table with masked columns comes back masked whole."""
    raw_a, raw_b = _both(driver, tables, PLANS, lambda c: c)
    assert raw_a != raw_b
    a, b = _both(driver, tables, PLANS, govern)
    assert a == b, next((x, y) for x, y in zip(a, b, strict=True) if x != y)
    assert "Scan" not in repr(a) and "hit=" not in repr(a) and "refused" not in repr(a), a[0]


#: a whole row sorted out of sight: the sort's memory or disk grows with the row's width (one statement, no
#: updates). The plan's origin was the row itself, so its lines (or JSON fields) were matched against the
#: table's columns and came back in the clear
WHOLE_ROW_PLANS = [
    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) WITH w AS MATERIALIZED (SELECT c, g FROM {t} c, "
    "generate_series(1, 20000) g WHERE c.id = 1 ORDER BY g) SELECT count(*) FROM w",
    "EXPLAIN (ANALYZE, FORMAT JSON, COSTS OFF, TIMING OFF, SUMMARY OFF) WITH w AS MATERIALIZED (SELECT c, g "
    "FROM {t} c, generate_series(1, 20000) g WHERE c.id = 1 ORDER BY g) SELECT count(*) FROM w",
]


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("sql", WHOLE_ROW_PLANS, ids=["text", "json"])
def test_plan_of_a_whole_row_sort_tells_nothing(tables: tuple[str, str], driver: str, sql: str) -> None:
    """``Sort Method: external merge  Disk: 3576kB`` for one table, ``3808kB`` for the other."""
    seen: dict[str, list[Any]] = {"raw": [], "gov": []}
    for name in tables:
        raw = _connect(driver)
        raw.autocommit = True
        try:
            for kind, conn in (("raw", raw), ("gov", govern(raw))):
                seen[kind].append(repr(_observe(conn, sql.format(t=name))).replace(name, "T"))
        finally:
            raw.close()
    assert seen["raw"][0] != seen["raw"][1]
    assert seen["gov"][0] == seen["gov"][1], seen["gov"]
    assert "Sort" not in seen["gov"][0] and "refused" not in seen["gov"][0], seen["gov"][0]


def test_ctid_and_catalogs_keep_running(tables: tuple[str, str], pg_conn: Any, unique: str) -> None:
    """Look-alikes: ``ctid`` of a table with no masked column (selected, filtered, ordered by, deleted by), a
    masked table's rows ordered by its key, and names and row counts from the same catalogs, as the raw session
    gives them."""
    plain = f"rt10pg_p_{unique}"
    pg_conn.execute(f"CREATE TABLE {plain} (id int primary key, city text, amount int)")
    pg_conn.execute(f"INSERT INTO {plain} VALUES (1, 'Paris', 10), (2, 'Lyon', 20), (3, 'Nice', 30)")
    try:
        raw = _connect("psycopg")
        raw.autocommit = True
        gov = govern(raw)
        try:
            for sql in (
                f"SELECT ctid, id FROM {plain} ORDER BY id",
                f"SELECT id FROM {plain} WHERE ctid = '(0,2)'",
                f"SELECT id, city FROM {plain} ORDER BY ctid",
                f"SELECT id, city FROM {tables[0]} ORDER BY id",
                f"SELECT relname, relkind, reltuples >= -1 FROM pg_class WHERE relname = '{tables[0]}'",
                f"SELECT relname, n_live_tup, n_tup_upd FROM pg_stat_user_tables WHERE relname = '{tables[0]}'",
                f"SELECT pg_relation_filepath('{plain}') IS NOT NULL",
                f"EXPLAIN SELECT id, city FROM {plain} WHERE city = 'Lyon'",
            ):
                got = _observe(gov, sql)
                assert got == _observe(raw, sql), (sql, got)
                assert not isinstance(got, str), got
            deleted = gov.cursor()
            deleted.execute(f"DELETE FROM {plain} WHERE ctid = '(0,3)'")
            assert deleted.rowcount == 1
            assert _observe(raw, f"SELECT id FROM {plain} ORDER BY id") == (["id"], [(1,), (2,)])
            # the masked table's ctid comes back as a stand-in, not as a page and slot
            _cols, rows = _observe(gov, f"SELECT ctid, id FROM {tables[0]} ORDER BY id")
            assert [r[1] for r in rows] == [1, 2, 3] and all("(0," not in str(r[0]) for r in rows), rows
        finally:
            raw.close()
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {plain}")


@pytest.mark.anyio
async def test_asyncpg_ctid_and_sizes_tell_nothing(tables: tuple[str, str]) -> None:
    """The same through asyncpg (one transaction; ``fetch``)."""
    asyncpg = pytest.importorskip("asyncpg")
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    reads = [LOCATORS[0], MEASURES[0], MEASURES[3]]

    async def trace(conn: Any, table: str) -> list[Any]:
        seen: list[Any] = []
        tr = conn.transaction()
        await tr.start()
        try:
            for _ in range(UPDATES):
                await conn.execute(f"UPDATE {table} SET amount = amount WHERE id = 1")
                step = []
                for sql in reads:
                    try:
                        step.append(repr([tuple(r) for r in await conn.fetch(sql.format(t=table))]))
                    except governed_db.GuardrailViolation as e:
                        step.append(f"refused: {e}".replace(table, "T"))
                seen.append(step)
        finally:
            await tr.rollback()
        return seen

    async def both(wrap: Callable[[Any], Any]) -> list[list[Any]]:
        out = []
        for name in tables:
            raw = await asyncpg.connect(url)
            try:
                out.append(await trace(wrap(raw), name))
            finally:
                await raw.close()
        return out

    raw_a, raw_b = await both(lambda c: c)
    assert raw_a != raw_b
    a, b = await both(govern)
    assert a == b, next((x, y) for x, y in zip(a, b, strict=True) if x != y)
    assert "(0," not in repr(a) and "(1," not in repr(a)
