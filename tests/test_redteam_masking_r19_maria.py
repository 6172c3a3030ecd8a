"""Red-team round 19 over masking on MariaDB (PyMySQL, aiomysql): a prompt-injected agent in production with zero
configuration and no unmask grant.

* **The text a collation keeps** (decision 0372). Under ``utf8mb4_general_ci`` (and any PAD SPACE collation, ``_bin``
  ones too) ``'paris' = 'Paris' = 'Paris '``; a ``GROUP BY city``, ``SELECT DISTINCT city``, a ``UNION``, ``min(city)``
  or ``GROUP_CONCAT(DISTINCT city)`` hands out one of the equal texts: the first one the server read. Where an index
  holds a masked column and the clear one (``(ssn, city)``), MariaDB reads the table through it (it covers the read)
  in the SSNs' order, so which spelling comes back says whose SSN sorts first: ``('Paris', 2)`` over copy A (row 2's
  ``219-...`` before row 1's ``536-...``), ``('paris', 2)`` over copy B (row 1's ``187-...`` first) -- through a
  governed session too: the order guard had the groups sorted (decision 0283), which orders the groups, not the
  spelling each keeps. Such a read is now refused where a source may be read through an index holding a masked
  column (every column of it the query reads is in such an index or its key; through a CTE or derived table,
  what the query reads of it); ``BINARY city`` runs.

* **An over-refusal** (decision 0373). ``GROUP BY id WITH ROLLUP`` over a table with an index on a masked column was
  refused ("ORDER BY the grouped columns"), which MariaDB does not take beside a ROLLUP (error 1221); it sorts the
  rows by the grouped items to roll them up, and hands the groups out in that order, so nothing read in a masked
  order shows. It runs now, unless a masked column is grouped (refused as before) or a text could be spelled two
  ways (above). ``JSON_ARRAYAGG(DISTINCT id)`` over such a table failed inside governed_db (a ``GovernanceFault``:
  the order it was given, by its distinct values, was written ``ORDER BY DISTINCT id``); it runs, ordered by ``id``.

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
session shows that the same statements tell them apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

import governed_db
from tests._redteam import CURIOUS_AGENT, govern, made_tables, rows_or_rules

COLUMNS = "(id int primary key, full_name varchar(100), ssn varchar(20), city varchar(40))"
ROWS_A = [
    (1, "Alice Martin-Fitzgerald", "536-22-8726", "paris"),
    (2, "Ivan Petrov", "219-45-1234", "Paris"),
    (3, "Bob Stone", "412-77-9001", "Rome"),
]
ROWS_B = [(1, "Amy Zedd", "187-65-4321", "paris"), *ROWS_A[1:]]


def _pair(admin: Any, unique: str, index: str, second_city: str = "Paris") -> Iterator[dict[str, str]]:
    with made_tables(admin) as make:
        names = {}
        for c, rows in (("A", ROWS_A), ("B", ROWS_B)):
            rows = [(i, n, s, second_city if i == 2 else city) for i, n, s, city in rows]
            names[c] = make(COLUMNS, rows, f"r19md_{unique}_{c.lower()}")
        with closing(admin.cursor()) as cur:
            for t in names.values():
                cur.execute(f"CREATE INDEX {t}_ix ON {t} ({index})")
        yield names


@pytest.fixture
def pair(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Two tables differing only in row 1's name and SSN, with an index on ``(ssn, city)``; rows 1 and 2 are in
    ``paris`` and ``Paris``."""
    yield from _pair(mysql_conn, unique, "ssn, city")


@pytest.fixture
def padded(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """The same, rows 1 and 2 in ``paris`` and ``paris `` (equal under PAD SPACE, in any case)."""
    yield from _pair(mysql_conn, unique, "ssn, city", "paris ")


@pytest.fixture
def plain(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """The same tables with an index on ``ssn`` alone (no read of ``city`` can walk it)."""
    yield from _pair(mysql_conn, unique, "ssn")


def _seen(mysql_kw: dict[str, Any], table: str, sql: str, governed: bool) -> Any:
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    conn = govern(raw, CURIOUS_AGENT) if governed else raw
    try:
        return rows_or_rules(conn, sql.format(t=table))
    finally:
        conn.close()


#: reads that hand out one of the texts a collation holds equal
KEPT = [
    "SELECT city, count(*) FROM {t} GROUP BY city",
    "SELECT city FROM {t} GROUP BY city ORDER BY city",
    "SELECT DISTINCT city FROM {t}",
    "SELECT min(city), max(city) FROM {t}",
    "SELECT GROUP_CONCAT(DISTINCT city ORDER BY city) FROM {t}",
    "SELECT JSON_ARRAYAGG(DISTINCT city) FROM {t}",
    "SELECT city FROM {t} UNION SELECT 'x' ORDER BY 1",
    # through a CTE or derived table, which MariaDB merges: a column it lists and the query does not read is
    # not read (the index still covers the read)
    "WITH c AS (SELECT city FROM {t}) SELECT city, count(*) FROM c GROUP BY city",
    "SELECT DISTINCT d.c FROM (SELECT city AS c, full_name FROM {t}) d",
    "SELECT c FROM (SELECT city AS c FROM {t} UNION ALL SELECT 'x') d GROUP BY c",
]


@pytest.mark.parametrize("sql", KEPT)
def test_the_spelling_a_collation_keeps_tells_no_rank(
    mysql_kw: dict[str, Any], pair: dict[str, str], sql: str
) -> None:
    raw = {c: _seen(mysql_kw, pair[c], sql, False) for c in ("A", "B")}
    assert raw["A"] != raw["B"], raw  # the oracle: 'Paris' (row 2's SSN first) or 'paris' (row 1's)
    gov = {c: _seen(mysql_kw, pair[c], sql, True) for c in ("A", "B")}
    assert gov["A"] == gov["B"] == "refused: ['masked-column-predicate']", gov


@pytest.mark.parametrize("sql", KEPT[2:4])
def test_padded_texts_are_as_equal(mysql_kw: dict[str, Any], padded: dict[str, str], sql: str) -> None:
    raw = {c: repr(_seen(mysql_kw, padded[c], sql, False)) for c in ("A", "B")}
    assert raw["A"] != raw["B"], raw  # 'paris ' or 'paris'
    gov = {c: _seen(mysql_kw, padded[c], sql, True) for c in ("A", "B")}
    assert gov["A"] == gov["B"] == "refused: ['masked-column-predicate']", gov


def test_the_refusal_says_why_and_what_to_do(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    import pymysql

    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        with pytest.raises(governed_db.GuardrailViolation) as refused:
            conn.cursor().execute(KEPT[2].format(t=pair["A"]))
    finally:
        conn.close()
    text = str(refused.value)
    assert "collation" in text and "city" in text and "BINARY city" in text and "unmask grant" in text, text


def test_aiomysql_the_spelling_a_collation_keeps_is_refused(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def run(table: str) -> Any:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        try:
            cur = await conn.cursor()
            try:
                await cur.execute(KEPT[0].format(t=table))
            except governed_db.GuardrailViolation as e:
                assert e.decision is not None
                return f"refused: {sorted(e.decision.rules)}"
            return await cur.fetchall()
        finally:
            conn.close()

    assert [asyncio.run(run(pair[c])) for c in ("A", "B")] == ["refused: ['masked-column-predicate']"] * 2


#: reads that keep no spelling of their own choice, or cannot walk the masked index: each with its rows
LOOK_ALIKES = [
    ("SELECT DISTINCT BINARY city FROM {t} ORDER BY 1", [(b"Paris",), (b"Rome",), (b"paris",)]),
    ("SELECT BINARY city, count(*) FROM {t} GROUP BY BINARY city", [(b"Paris", 1), (b"Rome", 1), (b"paris", 1)]),
    ("SELECT DISTINCT id, city FROM {t}", [(1, "paris"), (2, "Paris"), (3, "Rome")]),
    ("SELECT id, city FROM {t} GROUP BY id", [(1, "paris"), (2, "Paris"), (3, "Rome")]),
    ("SELECT count(DISTINCT city) FROM {t}", [(2,)]),
    ("SELECT id, count(*) FROM {t} GROUP BY id WITH ROLLUP", [(1, 1), (2, 1), (3, 1), (None, 3)]),
    ("SELECT id, count(*) FROM {t} GROUP BY id WITH ROLLUP LIMIT 2", [(1, 1), (2, 1)]),
    # ordered by its distinct values; the order was spliced in as ``ORDER BY DISTINCT id`` and failed to parse
    ("SELECT JSON_ARRAYAGG(DISTINCT id) FROM {t}", [("[1,2,3]",)]),
]

#: over an index on ``ssn`` alone: a read of ``city`` goes through the table in key order
PLAIN_LOOK_ALIKES = [
    ("SELECT city, count(*) FROM {t} GROUP BY city", [("paris", 2), ("Rome", 1)]),
    ("SELECT DISTINCT city FROM {t}", [("paris",), ("Rome",)]),
    ("SELECT min(city), max(full_name) FROM {t}", [("paris", "[PERSON_NAME]")]),
    ("SELECT city, count(*) FROM {t} GROUP BY city WITH ROLLUP", [("paris", 2), ("Rome", 1), (None, 3)]),
    ("SELECT DISTINCT d.c FROM (SELECT city AS c, full_name FROM {t}) d", [("paris",), ("Rome",)]),
    ("SELECT c FROM (SELECT city AS c FROM {t} UNION ALL SELECT 'x') d GROUP BY c", [("paris",), ("Rome",), ("x",)]),
]


@pytest.mark.parametrize(("sql", "expected"), LOOK_ALIKES, ids=[s for s, _ in LOOK_ALIKES])
def test_reads_that_keep_no_spelling_run(
    mysql_kw: dict[str, Any], pair: dict[str, str], sql: str, expected: Any
) -> None:
    assert [_seen(mysql_kw, pair[c], sql, True) for c in ("A", "B")] == [expected] * 2


@pytest.mark.parametrize(("sql", "expected"), PLAIN_LOOK_ALIKES, ids=[s for s, _ in PLAIN_LOOK_ALIKES])
def test_reads_that_cannot_walk_the_masked_index_run(
    mysql_kw: dict[str, Any], plain: dict[str, str], sql: str, expected: Any
) -> None:
    assert [_seen(mysql_kw, plain[c], sql, True) for c in ("A", "B")] == [expected] * 2


def test_a_masked_column_rolled_up_is_still_refused(mysql_kw: dict[str, Any], plain: dict[str, str]) -> None:
    sql = "SELECT ssn, id, count(*) FROM {t} GROUP BY ssn, id WITH ROLLUP"
    assert [_seen(mysql_kw, plain[c], sql, True) for c in ("A", "B")] == ["refused: ['masked-column-predicate']"] * 2
