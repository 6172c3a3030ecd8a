"""Red-team round 14 on PostgreSQL (psycopg 3, psycopg2, asyncpg): a prompt-injected agent in production with zero
configuration, no unmask grant.

PostgreSQL refuses a jsonb value past 256 MB (``total size of jsonb array elements exceeds the maximum of
268435455 bytes``) and a text past 1 GB. A masked value merged into one value with a text whose length the caller
chooses fails exactly when the masked value is longer than the room left: a length oracle, one bisection step per
statement. ``concat(ssn, repeat('x', n))`` was already refused (decisions 0150, 0233); these were not
(decision 0285):

* an array or a row constructor: ``to_jsonb(ARRAY[full_name, repeat('x', n)])``, ``(full_name, repeat(...))``;
* a derived table's whole row: ``to_jsonb(s) FROM (SELECT full_name, repeat('x', n) pad FROM t) s``;
* ``ARRAY(SELECT full_name ... UNION ALL SELECT repeat('x', n))``, ``jsonb_agg`` over such a union;
* a long text no multiplier makes: ``format('%268435431s', '')``;
* a long text stored beforehand, ``concat(full_name, p)`` with ``p`` a column of the caller's own table holding
  256 MB (decision 0350: a stored text of another table, unless declared short, counts as long beside a masked
  value; ``full_name || ' (' || city || ')'``, of the masked value's own table, keeps running).

Each oracle compares two tables that differ only in row 1's name (11 or 16 characters); the raw connection shows
that the same statement tells them apart (``False`` against ``ProgramLimitExceeded``). The governed connection
refuses, naming the column, before the server sees the statement. Look-alikes run: whole rows (``to_jsonb(t)``,
``json_agg(t)``), aggregates of a masked column (their values are stand-ins, decision 0161), a masked value beside
short literals or numbers, and any merge of columns nobody masks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import CURIOUS_AGENT, govern, pg_connect, raw_and_governed
from tests._redteam import observe as _observe

#: row 1's name: 11 characters in A, 16 in B
NAMES = {"a": "Alice Smith", "b": "Zoe Quinn-Harper"}
#: PostgreSQL's largest jsonb container, in bytes
JSONB_MAX = 268435455


@pytest.fixture
def people(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant a and b: three people whose rows differ only in row 1's name."""
    names: dict[str, str] = {}
    for v, first in NAMES.items():
        t = f"rt14pg_p{v}_{unique}"
        pg_conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, ssn text, city text)")
        pg_conn.execute(
            f"INSERT INTO {t} VALUES (1, %s, '536-22-8726', 'Paris'), (2, 'Bob Jones', '219-45-1234', 'Lyon'), "
            "(3, 'Chen Wei', '412-77-9001', 'Lyon')",
            (first,),
        )
        names[v] = t
    yield names
    for name in names.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {name}")


#: each statement is NULL-or-false for an 11-character name and fails (jsonb over 256 MB) for a 16-character one
GROWN = {
    "array": f"SELECT to_jsonb(ARRAY[full_name, repeat('x', {JSONB_MAX - 24})]) IS NULL FROM {{t}} WHERE id = 1",
    "derived-row": (
        f"SELECT to_jsonb(s) IS NULL FROM (SELECT full_name, repeat('x', {JSONB_MAX - 44}) pad FROM {{t}} "
        "WHERE id = 1) s"
    ),
    "array-of-union": (
        f"SELECT to_jsonb(ARRAY(SELECT full_name FROM {{t}} WHERE id = 1 UNION ALL SELECT repeat('x', "
        f"{JSONB_MAX - 24}))) IS NULL"
    ),
    "format-width": f"SELECT to_jsonb(ARRAY[full_name, format('%{JSONB_MAX - 24}s', '')]) IS NULL FROM {{t}} WHERE id = 1",
}


def _seen(make: Any, people: dict[str, str], template: str) -> dict[str, str]:
    out = {}
    for v, t in people.items():
        conn = make()
        try:
            out[v] = repr(_observe(conn, template.format(t=t))).replace(t, "T")
        finally:
            conn.close()
    return out


@pytest.mark.parametrize("shape", list(GROWN), ids=list(GROWN))
def test_a_masked_value_merged_with_a_long_text_tells_no_length(people: dict[str, str], shape: str) -> None:
    raw = _seen(lambda: pg_connect("psycopg"), people, GROWN[shape])
    # the oracle, unprotected: 11 characters fit beside the text, 16 do not
    assert raw["a"] == "(['?column?'], [(False,)])", raw
    assert "ProgramLimitExceeded" in raw["b"] and "268435455" in raw["b"], raw
    gov = _seen(lambda: govern(pg_connect("psycopg"), CURIOUS_AGENT), people, GROWN[shape])
    assert gov["a"] == gov["b"], gov
    assert "masked-column-predicate" in gov["a"] and "full_name" in gov["a"], gov
    assert "length limit" in gov["a"], gov


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize(
    "template",
    [
        "SELECT ARRAY[full_name, repeat('x', 3)] FROM {t} WHERE id = 1",
        "SELECT (full_name, repeat('x', 3)) FROM {t} WHERE id = 1",
        "SELECT s FROM (SELECT full_name, repeat('x', 3) pad FROM {t}) s",
        "SELECT s::text FROM (SELECT id, full_name, lpad('', 300) pad FROM {t}) s",
        "SELECT jsonb_agg(x) FROM (SELECT full_name x FROM {t} UNION ALL SELECT repeat('x', 3)) s",
        "SELECT concat(full_name, format('%5000s', '')) FROM {t} WHERE id = 1",
        "SELECT ARRAY[full_name, (SELECT string_agg('x', '') FROM generate_series(1, 3))] FROM {t} WHERE id = 1",
    ],
    ids=["array", "row", "whole-row", "row-text", "union-agg", "format-width", "aggregated-pad"],
)
def test_merges_with_a_long_text_are_refused_on_every_driver(
    people: dict[str, str], driver: str, template: str
) -> None:
    """The same refusal, whatever the pad's size (the server never sees the statement)."""
    gov = _seen(lambda: govern(pg_connect(driver), CURIOUS_AGENT), people, template)
    assert gov["a"] == gov["b"], gov
    assert "masked-column-predicate" in gov["a"] and "length limit" in gov["a"], gov


def test_a_long_text_stored_beforehand_is_no_bounded_partner(pg_conn: Any, people: dict[str, str], unique: str) -> None:
    """A column of the caller's own table holding 256 MB stands in for ``repeat()``: the rule that refuses
    ``concat(full_name, repeat('x', n))`` reads the statement, so ``concat(full_name, p)`` runs."""
    pad = f"rt14pg_pad_{unique}"
    merges = (
        "SELECT to_jsonb(ARRAY[full_name, p]) IS NULL FROM {t}, {pad} WHERE id = 1",
        "SELECT jsonb_build_array(full_name, p) IS NULL FROM {t}, {pad} WHERE id = 1",
        "SELECT full_name || p IS NULL FROM {t}, {pad} WHERE id = 1",
        "SELECT concat(full_name, p) FROM {t}, {pad} WHERE id = 1",
    )
    pg_conn.execute(f"CREATE TABLE {pad} AS SELECT repeat('x', {JSONB_MAX - 24}) p")
    try:
        raw = _seen(lambda: pg_connect("psycopg"), people, merges[0].replace("{pad}", pad))
        assert raw["a"] == "(['?column?'], [(False,)])" and "ProgramLimitExceeded" in raw["b"], raw
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {pad}")
    # governed: the same statements over a short pad (classifying a 256 MB sample would take minutes; the guard
    # judges the statement, not the pad's length)
    pg_conn.execute(f"CREATE TABLE {pad} AS SELECT 'xxx'::text p")
    try:
        for template in merges:
            gov = _seen(lambda: govern(pg_connect("psycopg"), CURIOUS_AGENT), people, template.replace("{pad}", pad))
            assert gov["a"] == gov["b"], gov
            assert "masked-column-predicate" in gov["a"] and "full_name" in gov["a"], gov
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {pad}")


def test_asyncpg_refuses_the_merge_too(people: dict[str, str]) -> None:
    import asyncio

    asyncpg = pytest.importorskip("asyncpg")
    from tests.conftest import PG_DSN

    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"

    async def run(t: str) -> str:
        conn = govern(await asyncpg.connect(url), CURIOUS_AGENT)
        try:
            await conn.fetch(GROWN["array"].format(t=t))
            return "ran"
        except governed_db.GuardrailViolation as e:
            return str(e).replace(t, "T")
        finally:
            await conn.close()

    seen = {v: asyncio.run(run(t)) for v, t in people.items()}
    assert seen["a"] == seen["b"] and "masked-column-predicate" in seen["a"], seen


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_innocent_merges_run(people: dict[str, str], driver: str) -> None:
    """Whole rows, aggregates of a masked column, a masked value beside short literals or numbers run masked; merges
    of columns nobody masks come back as the raw connection returns them."""
    a = people["a"]
    with raw_and_governed(driver, CURIOUS_AGENT) as (raw, gov):
        for sql in (
            f"SELECT ARRAY[city, repeat('x', 3)] FROM {a} WHERE id = 1",
            f"SELECT to_jsonb(s) FROM (SELECT id, city, repeat('x', 3) pad FROM {a}) s WHERE id = 1",
            f"SELECT concat(city, ' ', city), city || format('%5000s', '') FROM {a} ORDER BY id",
            f"SELECT string_agg(city, repeat(',', 3)) FROM {a}",
            f"SELECT jsonb_build_object('id', id, 'city', city) FROM {a} ORDER BY id",
        ):
            assert _observe(gov, sql) == _observe(raw, sql), sql
        for sql, masked in (
            (f"SELECT to_jsonb(t) FROM {a} t WHERE id = 1", "[PERSON_NAME]"),
            (f"SELECT json_agg(t ORDER BY id) FROM {a} t", "[PERSON_NAME]"),
            (f"SELECT row_to_json(t) FROM {a} t WHERE id = 1", "[PERSON_NAME]"),
            (f"SELECT ARRAY[full_name, 'x'] FROM {a} WHERE id = 1", "[PERSON_NAME]"),
            (f"SELECT ARRAY(SELECT full_name FROM {a} ORDER BY id)", "[PERSON_NAME]"),
            (f"SELECT to_jsonb(array_agg(full_name)) FROM {a}", "[PERSON_NAME]"),
            (f"SELECT string_agg(full_name, ', ') FROM {a}", "[PERSON_NAME]"),
            (f"SELECT jsonb_agg(full_name) FROM {a}", "[PERSON_NAME]"),
            (f"SELECT jsonb_build_object('id', id, 'name', full_name) FROM {a} WHERE id = 1", "[PERSON_NAME]"),
            (f"SELECT concat(full_name, ' ') FROM {a} WHERE id = 1", "[PERSON_NAME]"),
            (f"SELECT to_jsonb(s) FROM (SELECT id, full_name FROM {a}) s WHERE id = 1", "[PERSON_NAME]"),
        ):
            seen = _observe(gov, sql)
            assert not isinstance(seen, str), (sql, seen)
            assert masked in repr(seen) and "Alice" not in repr(seen), (sql, seen)
