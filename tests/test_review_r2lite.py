"""Review r2lite of decisions 0357, 0358, 0366 and 0367 (SQLite 3.40 and MariaDB): a min()/max() that SQLite answers
by walking an index on a masked column, reached through a derived table, a CTE or an outer aggregate.

Two databases differ only in Alice's (or Anna's) secrets, with an index on ``ssn``; rows 1 and 2 come in SSN order
and ``S`` fails on row 2 only. Whatever the governed connection shows must be the same for both; the raw connection
is the oracle. Innocent look-alikes must answer exactly as the raw connection does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests._redteam import CURIOUS_AGENT, govern, observe
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, ANNA, _no_clear_value, _sqlite, _sqlite_runs
from tests.test_redteam_masking_r17_rt17lite import BOTH, INDEXED, STOPS_AT_ROW_1
from tests.test_redteam_masking_r18_maria import _locked_before_wait, _run
from tests.test_redteam_masking_r18_maria import pair as _pair

S = STOPS_AT_ROW_1
FLATTENED_MIN_MAX = [
    # SQLite flattens the derived table (or CTE) into the outer query, whose lone min() then walks the ssn index
    f"SELECT min(ssn) FROM (SELECT ssn FROM customers WHERE {BOTH} AND {S})",
    f"WITH c AS (SELECT ssn FROM customers WHERE {BOTH} AND {S}) SELECT min(ssn) FROM c",
    f"SELECT max(k) FROM (SELECT ssn AS k FROM customers WHERE {BOTH} AND {S})",
    f"SELECT max(id) FROM (SELECT ssn AS id FROM customers WHERE {BOTH} AND {S})",  # not the key: a renamed ssn
    # the outer query's own WHERE over a derived table (no table of its own: 0357 looked at none)
    f"SELECT max(ssn) FROM (SELECT * FROM customers) WHERE {BOTH} AND {S}",
    f"SELECT min(x) FROM (SELECT ssn AS x, id FROM customers) WHERE +id IN (1, 2) AND x IS NOT NULL AND {S}",
    f"SELECT min(ssn) FROM (SELECT ssn FROM customers WHERE {BOTH} AND {S}) WHERE 1",
    f"SELECT (SELECT max(ssn) FROM (SELECT ssn FROM customers WHERE {BOTH} AND {S}))",
    # an aggregate over outer columns only belongs to the outer query: a lone min(ssn) there
    f"SELECT (SELECT min(ssn)) FROM customers WHERE {BOTH} AND {S}",
]


@pytest.mark.parametrize("sql", FLATTENED_MIN_MAX, ids=lambda s: s[:60])
def test_a_min_max_reached_through_a_flattened_query_tells_no_order(sql: str) -> None:
    """Found in review r2lite: 0357 wrote ``min(+(x))`` only in a select with its own WHERE or join over its own
    tables. Raw: an error over one copy, an answer over the other; governed before the fix: the withheld error over
    Alice's copy and ``[US_SSN]`` over Anna's (the bit). Now both fail (or are refused) alike."""
    raw = _sqlite_runs((sql,), INDEXED, governed=False)
    assert raw[0] != raw[1], raw
    a, b = _sqlite_runs((sql,), INDEXED)
    assert a == b, (a, b)
    _no_clear_value(a)
    assert str(a[0]).startswith(("OperationalError: [withheld", "refused: ")), a


def test_the_database_is_as_it_was_after_the_attempts() -> None:
    for secret in (ALICE, ANNA):
        raw = _sqlite(secret, INDEXED)
        conn = govern(raw, ATTACKER)
        for sql in FLATTENED_MIN_MAX:
            observe(conn, sql)
        assert raw.execute("SELECT * FROM customers WHERE id = 1").fetchone() == secret
        assert raw.execute("SELECT count(*) FROM customers").fetchone() == (5,)
        conn.close()


LOOK_ALIKES = [
    "SELECT min(amount) FROM (SELECT amount FROM customers WHERE city = 'Lyon')",
    "SELECT max(id) FROM (SELECT id FROM customers WHERE city = 'Lyon')",
    "WITH c AS (SELECT amount FROM customers WHERE city = 'Lyon') SELECT min(amount), max(amount) FROM c",
    "SELECT min(amount) FROM (SELECT amount FROM customers WHERE 0)",
    "SELECT min(x) FROM (SELECT NULL AS x FROM customers)",
    "SELECT max(x) FROM (SELECT 3 AS x UNION ALL SELECT 5)",
    "SELECT min(1)",
    "SELECT count(*) FROM (SELECT min(amount) FROM customers WHERE 1)",
    "SELECT min(amount) FILTER (WHERE city = 'Lyon'), max(amount) FROM customers WHERE 1",
    "SELECT id, min(amount) OVER () FROM customers WHERE ssn IS NOT NULL ORDER BY id",
    "SELECT min(amount) FROM customers WHERE amount > 100",
    "SELECT min(t), max(t) FROM (SELECT t FROM nc WHERE id > 0)",
    "SELECT min(t) AS m FROM nc WHERE id > 0",
]
EXTRA = (
    "CREATE TABLE nc (id INTEGER PRIMARY KEY, t TEXT COLLATE NOCASE, ssn TEXT)",
    "CREATE INDEX ix_nc ON nc(ssn)",
    "INSERT INTO nc VALUES (1, 'b', '1'), (2, 'A', '2'), (3, NULL, '3')",
)


@pytest.mark.parametrize("sql", LOOK_ALIKES, ids=lambda s: s[:60])
def test_min_max_look_alikes_answer_as_raw(sql: str) -> None:
    """Names and rows exactly as raw: NULLs, an empty input, a column's own collation (NOCASE: ``A`` before ``b``)."""
    raw = _sqlite(ALICE, INDEXED + EXTRA)
    conn = govern(_sqlite(ALICE, INDEXED + EXTRA), ATTACKER)
    assert observe(conn, sql) == observe(raw, sql)
    conn.close()


@pytest.mark.parametrize("sql", [
    "SELECT (SELECT min(amount)) FROM customers WHERE city = 'Lyon'",
    "SELECT id, (SELECT max(amount)) FROM customers WHERE city = 'Lyon' GROUP BY id ORDER BY id",
])
def test_an_outer_aggregate_in_a_subquery_answers_as_raw(sql: str) -> None:
    """The rows as raw; the column named by an expression holding a subquery shows the edit (as 0346's did)."""
    raw = _sqlite(ALICE, INDEXED)
    conn = govern(_sqlite(ALICE, INDEXED), ATTACKER)
    assert observe(conn, sql)[1] == observe(raw, sql)[1]
    conn.close()


# -- MariaDB (decision 0366): locking reads naming rows by a list of keys -----------------------------------------

pair = _pair  # round 18's two tables (row 1's SSN 536-... or 287-...; an index on ssn; 90 rows without one)

KEY_OR = [
    "SELECT id FROM {t} WHERE id = 1 OR id = 2 OR id = 3 FOR UPDATE",
    "SELECT id FROM {t} WHERE (id = 3 OR id = 1) OR 2 = id FOR UPDATE",
]


@pytest.mark.parametrize("write", KEY_OR)
def test_a_locking_read_of_keys_joined_by_or_runs_and_tells_no_rank(
    mysql_kw: dict[str, Any], mysql_conn: Any, pair: dict[str, str], write: str
) -> None:
    """Found in review r2lite: ``id = 1 OR id = 2 FOR UPDATE`` was refused by 0366 while ``id IN (1, 2)``, the same
    list (EXPLAIN: ``range`` on PRIMARY, in key order), ran. Now it runs; the oracle shows it locks rows 2 and 3 by
    key over both copies alike (it waits at row 1 first), raw and governed."""
    raw = {c: _locked_before_wait(mysql_kw, mysql_conn, pair[c], write, False) for c in ("A", "B")}
    gov = {c: _locked_before_wait(mysql_kw, mysql_conn, pair[c], write, True) for c in ("A", "B")}
    assert raw == gov == {"A": [(2,), (3,)], "B": [(2,), (3,)]}, (raw, gov)


LOCKING_LOOK_ALIKES = [
    "SELECT id, city FROM {t} WHERE id = 1 OR id = 2 FOR UPDATE",
    "SELECT id FROM {t} WHERE id = 2 OR id = 3 LOCK IN SHARE MODE",
    "SELECT id, city FROM {t} WHERE id IN (1, 2) FOR UPDATE SKIP LOCKED",
    "UPDATE {t} SET city = 'b' WHERE id = 1 OR id = 2",
    # 0380 left it refused; 0406 reads both tables FORCE INDEX (PRIMARY) (test_redteam_masking_r21_lite)
    "SELECT a.id FROM {t} a JOIN {t} b ON b.id = a.id WHERE a.id IN (1, 2) FOR UPDATE",
    # 0380: both tables are const lookups by key (a.id = 2, b.id = a.id; EXPLAIN: const, const on PRIMARY)
    "UPDATE {t} a JOIN {t} b ON b.id = a.id SET a.city = 'b' WHERE a.id = 2",
    "SELECT a.id, b.city FROM {t} a LEFT JOIN {t} b ON b.id = a.id WHERE a.id = 2 FOR UPDATE",
    "SELECT count(*) FROM {t} a JOIN {t} b ON a.id = b.id JOIN {t} c ON c.id = b.id WHERE 2 = a.id FOR UPDATE",
]
REFUSED_BY_DESIGN = [
    # a range of the key may be read through the covering masked index (0366); a mixed OR names ssn
    "SELECT id FROM {t} WHERE id BETWEEN 1 AND 3 FOR UPDATE",
    "SELECT id FROM {t} WHERE id = 1 OR ssn IS NOT NULL FOR UPDATE",
    "SELECT id FROM {t} WHERE id = 1 OR id > 2 FOR UPDATE",
    # 0380: a join partner is a const lookup only by the same key of the same table equal to a constant
    "SELECT a.id FROM {t} a JOIN {t} b ON b.id = a.id + 0 WHERE a.id = 2 FOR UPDATE",
    "SELECT a.id FROM {t} a JOIN {t} b USING (id) WHERE a.id = 2 FOR UPDATE",
    "SELECT a.id FROM {t} a RIGHT JOIN {t} b ON b.id = a.id WHERE a.id = 2 FOR UPDATE",
    "SELECT b.id FROM {t} a LEFT JOIN {t} b ON b.id = a.id WHERE b.id = 2 FOR UPDATE",
    "SELECT a.id FROM {t} a JOIN {t} b ON b.id = a.id WHERE a.id = 2 OR b.id = 3 FOR UPDATE",
    "SELECT a.id FROM {t} a JOIN {t} b ON b.id = a.id WHERE a.id IN (1, 2) AND b.ssn IS NOT NULL FOR UPDATE",
]

#: 0380: a join partner whose key equals a key given a constant is a const table too (EXPLAIN: const on PRIMARY)
CONST_JOINS = [
    "UPDATE {t} a JOIN {t} b ON b.id = a.id SET a.city = 'b' WHERE a.id = 2",
    "SELECT count(*) FROM {t} a JOIN {t} b ON b.id = a.id WHERE a.id = 2 FOR UPDATE",
    "SELECT a.id FROM {t} a LEFT JOIN {t} b ON b.id = a.id WHERE a.id = 2 FOR UPDATE",
]


@pytest.mark.parametrize("write", CONST_JOINS)
def test_a_join_partner_looked_up_by_a_pinned_key_locks_no_row_before_it(
    mysql_kw: dict[str, Any], mysql_conn: Any, pair: dict[str, str], write: str
) -> None:
    """Found in review r19: refused by 0366 (the partner's key was not seen as pinned). It runs now, and locks row 2
    alone, raw and governed, over both copies (session 3 finds row 3 free)."""
    raw = {c: _locked_before_wait(mysql_kw, mysql_conn, pair[c], write, False) for c in ("A", "B")}
    gov = {c: _locked_before_wait(mysql_kw, mysql_conn, pair[c], write, True) for c in ("A", "B")}
    assert raw == gov == {"A": [(3,)], "B": [(3,)]}, (raw, gov)


@pytest.fixture
def small_pair(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Round 18's two tables without the 90 rows: three rows each, an index on ``ssn``."""
    from tests._redteam import made_tables
    from tests.test_redteam_masking_r18_maria import COLUMNS, ROWS_A, ROWS_B

    with made_tables(mysql_conn) as make:
        names = {c: make(COLUMNS, rows, f"r19ov_{unique}_{c.lower()}") for c, rows in (("A", ROWS_A), ("B", ROWS_B))}
        with mysql_conn.cursor() as cur:
            for t in names.values():
                cur.execute(f"CREATE INDEX {t}_ssn ON {t} (ssn)")
        yield names


SMALL_TABLE_LISTS = [
    "SELECT count(*) FROM {t} WHERE id IN (1, 2, 3) FOR UPDATE",
    "SELECT id FROM {t} WHERE id = 1 OR id = 2 OR id = 3 FOR UPDATE",
    "SELECT count(*) FROM {t} AS q WHERE q.id IN (3, 2, 1) FOR UPDATE",
]


@pytest.mark.parametrize("write", SMALL_TABLE_LISTS, ids=lambda s: s[:40])
def test_a_list_of_keys_over_a_small_table_tells_no_rank(
    mysql_kw: dict[str, Any], mysql_conn: Any, small_pair: dict[str, str], write: str
) -> None:
    """Found in review r19 (decision 0380, open there): over a table of three rows MariaDB reads ``id IN (...)``
    through the covering index on ``ssn`` (EXPLAIN: type index), not by PRIMARY, so the rows are locked in SSN
    order — 0366 let a list of keys through. Now the table is read ``FORCE INDEX (PRIMARY)``, in key order over
    both copies (decision 0383)."""
    raw = {c: _locked_before_wait(mysql_kw, mysql_conn, small_pair[c], write, False) for c in ("A", "B")}
    assert raw["A"] != raw["B"], raw  # the oracle: rows locked in SSN order
    gov = {c: _locked_before_wait(mysql_kw, mysql_conn, small_pair[c], write, True) for c in ("A", "B")}
    assert gov["A"] == gov["B"], gov


def test_a_list_of_keys_is_read_by_primary_and_answers_as_raw(
    mysql_kw: dict[str, Any], small_pair: dict[str, str]
) -> None:
    """The hint changes no answer (the rows as raw, in key order where raw's came in SSN order: ``id = 1 OR id = 2
    OR id = 3`` came back 2, 3, 1); a hint of the caller's own stays refused, whatever index it names."""
    import pymysql

    t = small_pair["A"]
    for sql in SMALL_TABLE_LISTS:
        out = []
        for governed in (False, True):
            raw = pymysql.connect(autocommit=False, **mysql_kw)
            conn = govern(raw, CURIOUS_AGENT) if governed else raw
            try:
                out.append(_run(conn, sql.format(t=t)))
            finally:
                raw.rollback()
                raw.close()
        assert sorted(out[0]) == out[1] and not str(out[1]).startswith("refused"), (sql, out)
    for hinted in (f"SELECT count(*) FROM {{t}} FORCE INDEX ({t}_ssn) WHERE id IN (1, 2, 3) FOR UPDATE",
                   "SELECT count(*) FROM {t} IGNORE INDEX (PRIMARY) WHERE id IN (1, 2, 3) FOR UPDATE",
                   "SELECT count(*) FROM {t} USE INDEX () WHERE id IN (1, 2, 3) FOR UPDATE",
                   # a hint of the caller's own is refused whatever it names (the index-hint rule)
                   "SELECT count(*) FROM {t} FORCE INDEX (PRIMARY) WHERE id IN (1, 2, 3) FOR UPDATE"):
        raw = pymysql.connect(autocommit=False, **mysql_kw)
        try:
            assert _run(govern(raw, CURIOUS_AGENT), hinted.format(t=t)) == "refused: ['masked-column-predicate']"
        finally:
            raw.rollback()
            raw.close()


@pytest.mark.parametrize("sql", LOCKING_LOOK_ALIKES)
def test_locking_look_alikes_answer_and_write_as_raw(mysql_kw: dict[str, Any], pair: dict[str, str], sql: str) -> None:
    """The rows, and the table afterwards (inside the same transaction), exactly as raw."""
    import pymysql

    out = []
    for governed in (False, True):
        raw = pymysql.connect(autocommit=False, **mysql_kw)
        conn = govern(raw, CURIOUS_AGENT) if governed else raw
        try:
            seen = _run(conn, sql.format(t=pair["A"]))
            out.append((seen, _run(raw, f"SELECT id, city, ssn IS NULL FROM {pair['A']} ORDER BY id")))
        finally:
            raw.rollback()
            raw.close()
    assert out[0] == out[1], out


@pytest.mark.parametrize("sql", REFUSED_BY_DESIGN)
def test_locking_reads_that_may_walk_the_masked_index_stay_refused(
    mysql_kw: dict[str, Any], pair: dict[str, str], sql: str
) -> None:
    import pymysql

    raw = pymysql.connect(autocommit=False, **mysql_kw)
    try:
        assert _run(govern(raw, CURIOUS_AGENT), sql.format(t=pair["A"])) == "refused: ['masked-column-predicate']"
    finally:
        raw.rollback()
        raw.close()


# -- MariaDB (decision 0358): outer joins that no test can make an anti-join --------------------------------------

NO_ANTI_JOIN = [
    # the HAVING tests the preserved side's alias; the same join with WHERE i.id IS NULL (a real anti-join) runs
    "SELECT o.id AS oid FROM {t} o LEFT JOIN {t} i ON i.city = o.city AND i.id <> o.id "
    "GROUP BY o.id, i.id HAVING oid > 1 ORDER BY oid",
    # a derived table handed out whole to a query that tests nothing: no anti-join can form
    "SELECT * FROM (SELECT o.id, i.city AS ic FROM {t} o LEFT JOIN {t} i ON i.id = o.id + 1 "
    "AND CAST(i.city AS INT) = 0) d ORDER BY id",
]


@pytest.mark.parametrize("sql", NO_ANTI_JOIN)
def test_outer_joins_no_test_makes_an_anti_join_answer_as_raw(
    mysql_kw: dict[str, Any], pair: dict[str, str], sql: str
) -> None:
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        q = sql.format(t=pair["A"])
        assert _run(conn, q) == _run(raw, q)
    finally:
        raw.close()
        conn.close()
