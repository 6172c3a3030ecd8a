"""Review of PostgreSQL's key-order write rewrites (decisions 0354, 0363) and read edits (0357, 0359), helper r1pg.

``UPDATE ... FROM`` / ``DELETE ... USING`` of a table with a masked column is locked in key order by a subquery
that repeats the FROM/USING list and the condition (edit ``lock-joined``). A part that gives another answer each
time it is read makes the write change only the rows both readings keep: a ``TABLESAMPLE`` without
``REPEATABLE`` draws a new sample each time (like ``random()``, which 0354 already refuses). Raw, ``UPDATE t p
SET city = 's' FROM i q TABLESAMPLE BERNOULLI (50) WHERE q.id = p.id AND q.id <= 80`` changes about half of the
80 rows; rewritten, about a quarter (the rows both samples drew). A seeded sample draws the same rows twice: it
keeps running, and changes the raw rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import CURIOUS_AGENT, govern, pg_connect, pg_stored_people


@pytest.fixture
def tables(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """``a``: 400 people (``full_name`` masked); ``i``: 400 rows without a masked column."""
    prefix = f"r1pg_{unique}"
    names = {"a": pg_stored_people(pg_conn, prefix)["a"], "i": f"{prefix}_i"}
    pg_conn.execute(f"CREATE TABLE {names['i']} (id int primary key, qty int)")
    pg_conn.execute(f"INSERT INTO {names['i']} SELECT g, g % 7 FROM generate_series(1, 400) g")
    yield names
    pg_conn.execute(f"DROP TABLE IF EXISTS {prefix}_sa, {prefix}_sb, {names['i']}")


def _changed(conn: Any, sql: str, table: str) -> Any:
    """The rows ``sql`` changed (ids whose city is no longer 'Lyon'/'Paris' or that are gone), or the refusal;
    rolled back."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        cur.execute(f"SELECT id FROM {table} WHERE city = 's' ORDER BY id")
        changed = [r[0] for r in cur.fetchall()]
        cur.execute(f"SELECT count(*) FROM {table}")
        return changed, 400 - cur.fetchone()[0]
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    finally:
        conn.rollback()


UNSEEDED = {
    "update-from-bernoulli": "UPDATE {t} p SET city = 's' FROM {i} q TABLESAMPLE BERNOULLI (50) "
    "WHERE q.id = p.id AND q.id <= 80",
    "update-from-derived-sample": "UPDATE {t} p SET city = 's' FROM (SELECT id FROM {i} TABLESAMPLE BERNOULLI (50)) q "
    "WHERE q.id = p.id AND q.id <= 80",
    "delete-using-bernoulli": "DELETE FROM {t} p USING {i} q TABLESAMPLE BERNOULLI (50) WHERE q.id = p.id AND q.id <= 80",
    "update-from-sample-in-condition": "UPDATE {t} p SET city = 's' FROM {i} q WHERE q.id = p.id AND q.id <= 80 AND "
    "EXISTS (SELECT 1 FROM {i} z TABLESAMPLE BERNOULLI (50) WHERE z.id = q.id)",
}


@pytest.mark.parametrize("case", list(UNSEEDED), ids=list(UNSEEDED))
def test_an_unseeded_sample_is_not_drawn_twice(pg_conn: Any, tables: dict[str, str], case: str) -> None:
    """Three runs each: raw, about 40 of the 80 rows change per run (120 in all, sd ~8); the rewritten write changed
    about 20 (the rows two samples both drew). Now refused, naming the sample and REPEATABLE."""
    sql = UNSEEDED[case].format(t=tables["a"], i=tables["i"])
    raw = pg_connect("psycopg", autocommit=False)
    gov = govern(pg_connect("psycopg", autocommit=False), CURIOUS_AGENT)
    try:
        raw_runs = [_changed(raw, sql, tables["a"]) for _ in range(3)]
        gov_runs = [_changed(gov, sql, tables["a"]) for _ in range(3)]
    finally:
        raw.close()
        gov.close()
    count = 0 if case.startswith("delete") else 1  # rows gone, or rows set to 's'
    raw_total = sum(len(r[0]) if count else r[1] for r in raw_runs)
    assert raw_total >= 90, raw_runs  # raw: about half of 80 per run
    if all(isinstance(g, str) for g in gov_runs):
        assert all(g.startswith("refused: ") and "REPEATABLE" in g and "drawn twice" in g for g in gov_runs), gov_runs
    else:
        gov_total = sum(len(g[0]) if count else g[1] for g in gov_runs if not isinstance(g, str))
        assert gov_total >= 90, (gov_total, raw_total)
    # nothing outlived the attempts
    assert pg_conn.execute(f"SELECT count(*) FROM {tables['a']} WHERE city IN ('Lyon', 'Paris')").fetchone()[0] == 400


SEEDED = {
    "update-from-repeatable": "UPDATE {t} p SET city = 's' FROM {i} q TABLESAMPLE BERNOULLI (50) REPEATABLE (7) "
    "WHERE q.id = p.id AND q.id <= 80",
    "delete-using-repeatable": "DELETE FROM {t} p USING {i} q TABLESAMPLE SYSTEM (50) REPEATABLE (3) "
    "WHERE q.id = p.id AND q.id <= 80",
    "update-where-sample-no-from": "UPDATE {t} SET city = 's' WHERE id IN (SELECT id FROM {i} TABLESAMPLE BERNOULLI "
    "(50) REPEATABLE (5) WHERE id <= 80)",
}


@pytest.mark.parametrize("case", list(SEEDED), ids=list(SEEDED))
def test_a_seeded_sample_changes_the_raw_rows(pg_conn: Any, tables: dict[str, str], case: str) -> None:
    """Look-alikes: a sample with a seed is drawn alike twice; the write runs and changes exactly the raw rows."""
    sql = SEEDED[case].format(t=tables["a"], i=tables["i"])
    raw = pg_connect("psycopg", autocommit=False)
    gov = govern(pg_connect("psycopg", autocommit=False), CURIOUS_AGENT)
    try:
        want, got = _changed(raw, sql, tables["a"]), _changed(gov, sql, tables["a"])
    finally:
        raw.close()
        gov.close()
    assert not isinstance(got, str), got
    assert got == want and (want[0] or want[1]), (got, want)


# -- PostgreSQL min()/max() (0357) with an empty grouping or a HAVING; GROUP BY () looked ordered by ``()`` ----------
from tests import test_redteam_masking_r18_h2early as h2early  # noqa: E402

PG_STOPS, _pg_seen = h2early.PG_STOPS, h2early._pg_seen
pg_min = h2early.pg_min  # the fixture: 3,000 people per copy, differing in row 1's SSN, an index on ssn

PG_MIN_MAX_GROUPED = [
    f"SELECT min(ssn) IS NULL FROM {{t}} WHERE {PG_STOPS} HAVING true",
    f"SELECT max(ssn) IS NULL FROM {{t}} WHERE {PG_STOPS} HAVING 1 = 1",
    f"SELECT min(ssn) IS NULL FROM {{t}} WHERE {PG_STOPS} GROUP BY ()",
]


@pytest.mark.parametrize("sql", PG_MIN_MAX_GROUPED, ids=lambda s: s[-20:])
def test_postgres_min_max_with_having_or_an_empty_grouping_tells_no_order(pg_min: dict[str, str], sql: str) -> None:
    """PostgreSQL's planagg reads ``min(ssn)`` over the index on ``ssn`` with a HAVING, or ``GROUP BY ()``, too: raw,
    one copy fails and the other answers. Governed, the HAVING one told them apart the same way (0357 skipped any
    query with HAVING or GROUP BY); ``GROUP BY ()`` was sent as ``... GROUP BY () ORDER BY ()``, a syntax error.
    Now both get ``ORDER BY count(*)`` and fail alike (the message withheld)."""
    raw = _pg_seen(pg_min, sql, governed=False)
    assert ("DivisionByZero" in raw["a"]) != ("DivisionByZero" in raw["b"]), raw  # the oracle
    gov = _pg_seen(pg_min, sql, governed=True)
    assert gov["a"] == gov["b"], gov
    assert "[withheld" in gov["a"], gov


GRAND_TOTALS = [
    "SELECT count(*) FROM {t} WHERE id < 9 GROUP BY ()",
    "SELECT min(city), max(id) FROM {t} WHERE id < 9 GROUP BY ()",
    "SELECT count(*), max(city) FROM {t} WHERE id < 9 GROUP BY () HAVING count(*) > 1",
    "SELECT city, count(*) FROM {t} WHERE id < 9 GROUP BY (), city ORDER BY city",
]


@pytest.mark.parametrize("sql", GRAND_TOTALS, ids=lambda s: s[7:40])
def test_a_grand_total_group_by_empty_answers_as_raw(pg_min: dict[str, str], sql: str) -> None:
    """Innocent ``GROUP BY ()`` (one group of every row) answered a syntax error (``ORDER BY ()`` added) for an
    identity without grant; it answers as raw (nothing masked in these outputs)."""
    raw = _pg_seen(pg_min, sql, governed=False)
    gov = _pg_seen(pg_min, sql, governed=True)
    assert gov == raw, (gov, raw)
