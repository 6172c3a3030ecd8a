"""PostgreSQL catalog row counts beside relations picked by a masked column (decisions 0399, 0400; issue 12).

``pg_class.reltuples``, ``pg_stat_user_tables.n_live_tup`` and the like of a partial index filtered by a masked
column (or a partition, an inheritance child, a materialized view picked by one) count the masked values meeting
its condition, and are refused. They are refused database-wide while any such relation exists, so reading the
counts of an innocent table is refused too: that over-refusal is kept here as strict expected failures until the
refusal is narrowed to the relations picked (a scan over all of pg_class still refused, or those counts withheld).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, pg_connect

pytestmark = pytest.mark.usefixtures("pg_dsn")


@pytest.fixture
def tables(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """``rl_{unique}_c``: customers whose masked name picks the rows of its partial index ``..._lo`` (name < 'N'),
    analysed; ``rl_{unique}_o``: orders with no masked column and nothing picked."""
    c, o = f"rl_{unique}_c", f"rl_{unique}_o"
    try:
        pg_conn.execute(f"CREATE TABLE {c} (id int PRIMARY KEY, full_name text, city text)")
        pg_conn.execute(
            f"INSERT INTO {c} SELECT g, (ARRAY['Alice Smith', 'Zoe Quinn', 'Bob Jones', 'Carol White'])[g % 4 + 1], "
            "'Lyon' FROM generate_series(1, 40) g"
        )
        pg_conn.execute(f"CREATE INDEX {c}_lo ON {c} (id) WHERE full_name < 'N'")
        pg_conn.execute(f"CREATE TABLE {o} (id int PRIMARY KEY, status text)")
        pg_conn.execute(f"INSERT INTO {o} SELECT g, 'new' FROM generate_series(1, 30) g")
        pg_conn.execute(f"ANALYZE {c}")
        pg_conn.execute(f"ANALYZE {o}")
        yield {"c": c, "o": o}
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {c}, {o} CASCADE")


def _seen(sql: str) -> Any:
    conn = govern(pg_connect("psycopg"))
    try:
        return conn.execute(sql).fetchall()
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    finally:
        conn.close()


def _masked_first(t: dict[str, str]) -> None:
    """The customers table read once, so its name column is labelled before the catalog is asked."""
    conn = govern(pg_connect("psycopg"))
    try:
        rows = conn.execute(f"SELECT full_name FROM {t['c']} ORDER BY id LIMIT 3").fetchall()
        assert all("Alice" not in str(r) and "Zoe" not in str(r) for r in rows), rows
    finally:
        conn.close()


PICKED = [
    "SELECT relname, reltuples FROM pg_class WHERE relname = '{c}_lo'",
    "SELECT relname, reltuples FROM pg_class",
    "SELECT relname, n_live_tup FROM pg_stat_user_tables",
    # the innocent table named beside the picked one, or not bounding the rows (decision 0431)
    "SELECT relname, reltuples FROM pg_class WHERE relname IN ('{o}', '{c}_lo')",
    "SELECT relname, reltuples FROM pg_class WHERE relname = '{o}' OR relname = '{c}_lo'",
    "SELECT relname, reltuples FROM pg_class WHERE relname = '{o}' UNION ALL "
    "SELECT relname, reltuples FROM pg_class WHERE relname = '{c}_lo'",
    "SELECT relname, reltuples, (SELECT reltuples FROM pg_class WHERE relname = '{c}_lo') FROM pg_class "
    "WHERE relname = '{o}'",
    "SELECT relname, pg_stat_get_live_tuples('{c}'::regclass) FROM pg_class WHERE relname = '{o}'",
    "SELECT relname, reltuples FROM pg_class WHERE relname = E'{c}_l\\x6f'",
]


@pytest.mark.parametrize(
    "sql",
    PICKED,
    ids=["the-partial-index", "all-of-pg_class", "all-stats", "in-list", "or", "union", "subquery", "function", "escape"],
)
def test_counts_of_a_relation_picked_by_a_masked_column_are_refused(tables: dict[str, str], sql: str) -> None:
    """The partial index's count (how many names fall before 'N'), or a scan returning it, is refused."""
    _masked_first(tables)
    seen = _seen(sql.format(**tables))
    assert isinstance(seen, str) and seen.startswith("refused: "), seen


INNOCENT = [
    ("SELECT relname, reltuples FROM pg_class WHERE relname = '{o}'", [("{o}", 30.0)]),
    ("SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE relname = '{o}'", [("{o}", 30)]),
    ("SELECT c.relname, c.reltuples FROM pg_catalog.pg_class c WHERE c.relkind = 'r' AND '{o}' = c.relname",
     [("{o}", 30.0)]),
]


@pytest.mark.parametrize(("sql", "expected"), INNOCENT, ids=["reltuples", "n_live_tup", "qualified"])
def test_counts_of_an_innocent_table_run(tables: dict[str, str], sql: str, expected: list[tuple[Any, ...]]) -> None:
    """The count of a table no masked column picks, named by its name, is returned as raw."""
    _masked_first(tables)
    seen = _seen(sql.format(**tables))
    want = [tuple(v.format(**tables) if isinstance(v, str) else v for v in row) for row in expected]
    assert seen == want, seen
