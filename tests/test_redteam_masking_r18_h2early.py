"""Red-team round 18 (helper h2early): constructs that stop reading at a first row, in an order masked values decide.

Two databases differ only in one customer's secrets (a right and a wrong guess); whatever the governed connection
shows must be the same for both. Each finding shows the difference on the raw connection (the oracle), that the
governed ones answer alike, and that the innocent look-alikes still run with exact results. The database is
checked after each attempt.

* SQLite and PostgreSQL (decision 0357): the application's table has an index on ``ssn``; ALICE's ``536-22-8726``
  sorts after Bob's ``219-45-1002``, ANNA's ``100-99-0000`` before it. A compound inside EXISTS and a lone
  ``min(ssn)``/``max(ssn)`` stop at their first row, read in the order of the index: whether a later row's
  expression fails tells that order.
* MariaDB (decision 0358): an outer join tested in a HAVING, or in a query around its derived table or CTE, is an
  anti-join that stops at its first match; ``@@warning_count`` ranked a masked SSN.
* PostgreSQL and MariaDB (decision 0359): a long text stored in a clear column of the masked value's own table (its
  row, or the caller's row read by a self-join) made a length limit measure the masked value merged beside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlglot import parse_one

from governed_db.masking import early_stop
from tests._redteam import CURIOUS_AGENT, govern, made_tables, observe
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, ANNA, _no_clear_value, _sqlite, _sqlite_runs
from tests.test_redteam_masking_r17_rt17lite import BOTH, INDEXED, STOPS_AT_ROW_1
from tests.test_redteam_masking_r17_rt17md import (
    COLUMNS,
    FAILS,
    ROWS_A,
    ROWS_B,
    SSN_ORDER,
    WARNS,
    _both,
    _with_count,
)

TABLE = [(1, "Paris", 10.0), (2, "Lyon", 20.0), (3, "Nice", 30.0), (4, "Lyon", 40.0), (5, "Paris", 50.0)]


def _sqlite_differ_raw_alike_governed(steps: tuple[str, ...], setup: tuple[str, ...] = INDEXED) -> list[Any]:
    raw = _sqlite_runs(steps, setup, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _sqlite_runs(steps, setup)
    assert a == b, (a, b)
    _no_clear_value(a)
    return a


# -- SQLite: a compound inside EXISTS, min()/max() over an index (decision 0357) ----------------------------------

S = STOPS_AT_ROW_1
STOPPING_READS = [
    f"SELECT EXISTS (SELECT 1 FROM customers WHERE {BOTH} AND {S} UNION ALL SELECT 2 WHERE 0)",
    f"SELECT EXISTS (SELECT 1 WHERE 0 UNION ALL SELECT 1 FROM customers WHERE {BOTH} AND {S})",
    f"SELECT 1 WHERE EXISTS (SELECT 1 FROM customers WHERE {BOTH} AND {S} UNION ALL SELECT 2 WHERE 0)",
    f"SELECT EXISTS (SELECT 1 FROM customers WHERE {BOTH} AND {S} UNION ALL SELECT 2 WHERE 0 LIMIT 5)",
    f"SELECT EXISTS (SELECT 1 FROM customers WHERE {BOTH} AND {S} LIMIT 1 OFFSET 0)",
    f"SELECT count(*) FROM customers o WHERE o.id = 3 AND NOT EXISTS (SELECT 1 WHERE 0 UNION ALL "
    f"SELECT 1 FROM customers c WHERE +c.id IN (1, 2) AND c.ssn IS NOT NULL AND {S.replace('id', 'c.id')})",
    f"SELECT min(ssn) FROM customers WHERE {BOTH} AND {S}",
    f"SELECT max(ssn) FROM customers WHERE {BOTH} AND {S}",
    f"SELECT max(ssn) FROM customers WHERE {BOTH} AND {S} LIMIT 1",
    f"SELECT 'x' UNION ALL SELECT min(ssn) FROM customers WHERE {BOTH} AND {S}",
    f"SELECT count(*) FROM (SELECT min(ssn) FROM customers WHERE {BOTH} AND {S})",
    f"SELECT EXISTS (SELECT min(ssn) FROM customers WHERE {BOTH} AND {S})",  # EXISTS drops an ORDER BY
    f"SELECT count(*) FROM (SELECT max(ssn) AS m FROM customers WHERE {BOTH} AND {S})",
    f"SELECT min(ssn) IS NULL FROM customers WHERE {BOTH} AND {S}",
]


@pytest.mark.parametrize("sql", STOPPING_READS, ids=lambda s: s[:70])
def test_a_read_that_stops_at_its_first_row_tells_no_masked_order(sql: str) -> None:
    """Found in round 18: SQLite stops ``EXISTS (<a UNION ALL>)`` at the compound's first row (0346's ``GROUP BY
    NULL`` went to single SELECTs only), and answers ``min(ssn) ... WHERE ...`` by walking the ``ssn`` index to the
    first row its WHERE keeps. Rows 1 and 2 come in SSN order; the WHERE fails on row 2 only, so the raw statement
    answered when Alice's row came first and failed otherwise (the message withheld by 0346 or not, *whether* it
    fails told the bit). Governed, the compound is read whole as a derived table of one group and the argument is
    written ``+(ssn)`` (no index answers it): every row is read, and both fail alike."""
    a = _sqlite_differ_raw_alike_governed((sql,))
    if "OFFSET" in sql:  # read as a derived table, in 0160's key order: it stops at row 1 whichever the SSNs
        assert a[0][1] == [(1,)], a
    else:
        assert "OperationalError: [withheld" in a[0], a


def test_a_stopping_read_leaves_the_database_as_it_was() -> None:
    """The database after the attempts: the rows as they were, the index still there (nothing was written)."""
    for secret in (ALICE, ANNA):
        raw = _sqlite(secret, INDEXED)
        conn = govern(raw, ATTACKER)
        for sql in STOPPING_READS:
            seen = observe(conn, sql)
            assert "withheld" in seen or seen[1] == [(1,)], seen
        assert raw.execute("SELECT id, city, amount FROM customers ORDER BY id").fetchall() == TABLE
        assert raw.execute("SELECT ssn FROM customers WHERE id = 1").fetchone() == (secret[3],)
        assert raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall() == [("ix_customers_ssn",)]
        conn.close()


STOPPING_LOOK_ALIKES = [
    # a compound EXISTS over innocent predicates, correlated or not
    "SELECT EXISTS (SELECT 1 FROM customers WHERE amount > 45 UNION ALL SELECT 2 WHERE 0), "
    "EXISTS (SELECT 1 FROM customers WHERE amount > 99 UNION SELECT 2 WHERE 0)",
    "SELECT id FROM customers o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.city = o.city AND c.id <> o.id "
    "UNION ALL SELECT 1 WHERE o.id = 3) ORDER BY id",
    "SELECT id FROM customers o WHERE NOT EXISTS (SELECT city FROM customers c WHERE c.amount > o.amount "
    "INTERSECT SELECT 'Paris') ORDER BY id",
    # an OFFSET skips rows, not 0346's one group: 1 (five rows, the second exists), then 0
    "SELECT EXISTS (SELECT 1 FROM customers WHERE ssn IS NOT NULL LIMIT 1 OFFSET 1), "
    "EXISTS (SELECT 1 FROM customers WHERE ssn IS NOT NULL LIMIT 1 OFFSET 5)",
    # min/max: over a key (kept as it is), without a WHERE, over a clear column, with several aggregates or grouped
    "SELECT max(id), min(id) FROM customers WHERE city = 'Lyon'",
    "SELECT min(city), max(amount) FROM customers",
    "SELECT min(amount), max(city), min(DISTINCT city) FROM customers WHERE ssn IS NOT NULL",
    "SELECT city, min(amount) FROM customers WHERE ssn IS NOT NULL GROUP BY city ORDER BY city",
    "SELECT min(amount, 15), max(id) OVER () FROM customers WHERE id = 1",
    "SELECT min(city) AS first_city, max(amount) FROM customers WHERE ssn IS NOT NULL",
    "SELECT (SELECT max(amount) FROM customers c WHERE c.city = o.city) FROM customers o ORDER BY id",
    "SELECT m FROM (SELECT max(amount) AS m FROM customers WHERE ssn IS NOT NULL LIMIT 1) UNION ALL "
    "SELECT min(amount) FROM customers WHERE ssn IS NOT NULL UNION ALL SELECT min(DISTINCT +amount) FROM customers "
    "WHERE ssn IS NOT NULL ORDER BY 1",
]


def test_stopping_look_alikes_answer_as_raw() -> None:
    """The innocent look-alikes: compound EXISTS over clear columns (correlated too), min/max over a key, without a
    WHERE, over clear columns, grouped, and a scalar min of two arguments answer exactly as the raw connection."""
    raw = _sqlite_runs(tuple(STOPPING_LOOK_ALIKES), INDEXED, governed=False)
    a, b = _sqlite_runs(tuple(STOPPING_LOOK_ALIKES), INDEXED)
    assert a == b, (a, b)
    assert [x[1] for x in a] == [x[1] for x in raw[0]], (a, raw[0])
    # min/max keep their column names (an application reads rows by them); a subquery's text in a name does not
    assert [x[0] for x in a[4:10]] == [x[0] for x in raw[0][4:10]], (a, raw[0])
    assert [x[1] for x in a] == [
        [(1, 0)], [(1,), (2,), (3,), (4,), (5,)], [(5,)], [(1, 0)], [(4, 2)], [("Lyon", 50.0)],
        [(10.0, "Paris", "Lyon")], [("Lyon", 20.0), ("Nice", 30.0), ("Paris", 10.0)], [(10.0, 1)], [("Lyon", 50.0)],
        [(50.0,), (40.0,), (30.0,), (40.0,), (50.0,)], [(10.0,), (10.0,), (50.0,)],
    ], a


# -- MariaDB: an anti-join tested in a HAVING, or in a query around a derived table or CTE (decision 0358) ---------

#: warns for every row of ``i`` but row 1, where the anti-join stops; fails on row 3 (see the round-17 file)
Wi = WARNS.replace("id", "i.id").replace("city", "i.city")
Fi = FAILS.replace("id", "i.id")
LEFT = "FROM {t} o LEFT JOIN {t} i ON i." + SSN_ORDER
#: anti-joins MariaDB stops at the first match of ``i`` (its "Not exists" plan), the test of ``i`` out of the WHERE
HIDDEN_ANTI_JOINS = [
    f"SELECT o.id, i.id AS iid {LEFT}{Wi} WHERE o.id = 2 GROUP BY o.id, i.id HAVING i.id IS NULL",
    f"SELECT o.id, i.id AS iid {LEFT}{Wi} WHERE o.id = 2 GROUP BY o.id, i.id HAVING iid IS NULL",
    f"SELECT * FROM (SELECT o.id, i.id AS iid {LEFT}{Wi} WHERE o.id = 2) d WHERE d.iid IS NULL",
    f"SELECT * FROM (SELECT o.id, i.id AS iid {LEFT}{Wi}) d WHERE d.id = 2 AND d.iid IS NULL",
    f"WITH d AS (SELECT o.id, i.id AS iid {LEFT}{Wi} WHERE o.id = 2) SELECT id FROM d WHERE iid IS NULL",
]


@pytest.fixture
def md_pair(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Two tables differing only in row 1's name and SSN, with an index on ``ssn`` and 90 rows without one."""
    with made_tables(mysql_conn) as make:
        names = {c: make(COLUMNS, rows, f"h2early_{unique}_{c.lower()}") for c, rows in (("A", ROWS_A), ("B", ROWS_B))}
        with mysql_conn.cursor() as cur:
            for t in names.values():
                cur.execute(f"CREATE INDEX {t}_ssn ON {t} (ssn)")
                cur.execute(f"INSERT INTO {t} (id, city) SELECT seq, 'x' FROM seq_100_to_189")
        yield names
        with mysql_conn.cursor() as cur:  # the ground truth after the attempts: the rows as they were made
            for c, rows in (("A", ROWS_A), ("B", ROWS_B)):
                cur.execute(f"SELECT id, full_name, ssn, city FROM {names[c]} WHERE id < 100 ORDER BY id")
                assert [tuple(r) for r in cur.fetchall()] == rows
                cur.execute(f"SELECT count(*), count(ssn) FROM {names[c]}")
                assert cur.fetchall()[0] == (93, 3)


@pytest.mark.parametrize("sql", HIDDEN_ANTI_JOINS, ids=lambda s: s[:80])
def test_the_warnings_of_an_anti_join_tested_outside_its_where_tell_no_rank(
    mysql_kw: dict[str, Any], md_pair: dict[str, str], sql: str
) -> None:
    """Found in round 18: decision 0343 judged an outer join as an anti-join when its own WHERE named the joined
    table. MariaDB also pushes a HAVING test of grouped columns into the WHERE, and merges a derived table or CTE
    into the query around it, whose WHERE then tests the joined table: the "Not exists" plan stopped at row 1, and
    ``@@warning_count`` said 2 over copy A (two SSNs sort before row 1's) and 1 over copy B. Governed: refused alike."""
    seen = _both(mysql_kw, md_pair, sql, _with_count)
    assert seen[False, "A"].endswith(", 2)") and seen[False, "B"].endswith(", 1)"), seen
    assert seen[True, "A"] == seen[True, "B"], seen
    assert "refused: ['masked-column-predicate']" in seen[True, "A"], seen


@pytest.mark.parametrize("sql", [
    f"SELECT * FROM (SELECT o.id, i.id AS iid {LEFT}{Fi} WHERE o.id = 2) d WHERE d.iid IS NULL",
    f"SELECT o.id, i.id AS iid {LEFT}{Fi} WHERE o.id = 2 GROUP BY o.id, i.id HAVING iid IS NULL",
], ids=["derived", "having"])
def test_whether_a_hidden_anti_join_fails_tells_no_rank(
    mysql_kw: dict[str, Any], md_pair: dict[str, str], sql: str
) -> None:
    """The failing form: raw, the statement failed (1690) over copy A (row 3 before row 1) and answered over copy
    B; governed, refused alike, naming what to do."""
    seen = _both(mysql_kw, md_pair, sql, observe)
    assert "1690" in seen[False, "A"] and "1690" not in seen[False, "B"], seen
    assert seen[True, "A"] == seen[True, "B"], seen
    assert "stops reading at the first row that decides it" in seen[True, "A"], seen


HIDDEN_ANTI_JOIN_LOOK_ALIKES = [
    # a quiet ON: nothing per row can warn
    "SELECT * FROM (SELECT o.id, i.id AS iid FROM {t} o LEFT JOIN {t} i ON i.id = o.id AND i.city = 'Rome') d "
    "WHERE d.iid IS NULL AND d.id < 4 ORDER BY d.id",
    "SELECT o.id, i.id AS iid FROM {t} o LEFT JOIN {t} i ON i.id = o.id AND i.city = 'Rome' WHERE o.id < 4 "
    "GROUP BY o.id, i.id HAVING iid IS NULL ORDER BY o.id",
    "WITH d AS (SELECT o.id, i.id AS iid FROM {t} o LEFT JOIN {t} i ON i.city = o.city AND i.id <> o.id) "
    "SELECT id FROM d WHERE iid IS NULL AND id < 4 ORDER BY id",
    # a HAVING over an aggregate of the joined table reads every match (not pushed into the WHERE)
    f"SELECT o.id {LEFT}{Wi} WHERE o.id = 2 GROUP BY o.id HAVING count(i.id) = 0",
    # a derived table handing out none of the joined table's columns
    f"SELECT * FROM (SELECT o.id {LEFT}{Wi} WHERE o.id = 2) d WHERE d.id = 2",
]


@pytest.mark.parametrize("sql", HIDDEN_ANTI_JOIN_LOOK_ALIKES, ids=lambda s: s[:80])
def test_joins_that_hide_no_stopping_anti_join_still_run(
    mysql_kw: dict[str, Any], md_pair: dict[str, str], sql: str
) -> None:
    """The innocent look-alikes answer, and leave the warning count, exactly as raw."""
    seen = _both(mysql_kw, md_pair, sql, _with_count)
    assert seen[True, "A"] == seen[False, "A"] == seen[True, "B"] == seen[False, "B"], seen
    assert "refused" not in seen[True, "A"], seen


@pytest.mark.parametrize(("sql", "tables"), [
    ("SELECT o.id FROM o LEFT JOIN i ON i.id = o.id GROUP BY o.id, i.id HAVING i.id IS NULL", ["i"]),
    ("SELECT o.id, i.id AS x FROM o LEFT JOIN i ON i.id = o.id GROUP BY o.id, x HAVING x IS NULL", ["i"]),
    ("SELECT o.id FROM o LEFT JOIN i ON i.id = o.id GROUP BY o.id HAVING count(i.id) = 0", []),
    ("SELECT * FROM (SELECT o.id, i.id AS x FROM o LEFT JOIN i ON i.id = o.id) d WHERE d.x IS NULL", ["i"]),
    ("WITH d AS (SELECT o.id, i.id AS x FROM o LEFT JOIN i ON i.id = o.id) SELECT * FROM d", ["i"]),
    # 0380: handed out whole to a query that tests nothing of it, no anti-join forms; a test around it counts
    ("SELECT * FROM (SELECT * FROM o LEFT JOIN i ON i.id = o.id) d", []),
    ("SELECT * FROM (SELECT * FROM o LEFT JOIN i ON i.id = o.id) d WHERE k > 0", ["i"]),
    ("SELECT * FROM (SELECT * FROM o LEFT JOIN i ON i.id = o.id) d JOIN o x ON x.k = d.k", ["i"]),
    ("SELECT * FROM (SELECT * FROM (SELECT * FROM o LEFT JOIN i ON i.id = o.id) d) e WHERE e.k IS NULL", ["i"]),
    # 0380: an alias of the preserved side's column tests only that side; one a GROUP BY column may shadow counts
    ("SELECT o.id AS oid FROM o LEFT JOIN i ON i.id = o.id GROUP BY o.id, i.id HAVING oid > 1", []),
    ("SELECT o.id AS oid FROM o LEFT JOIN i ON i.id = o.id GROUP BY oid, i.id HAVING oid > 1", ["i"]),
    ("SELECT * FROM (SELECT o.id FROM o LEFT JOIN i ON i.id = o.id) d", []),
    ("SELECT o.id, i.id FROM o LEFT JOIN i ON i.id = o.id", []),
])
def test_which_hidden_anti_joins_may_stop_early(sql: str, tables: list[str]) -> None:
    """Judged without a database: a HAVING test that aggregates nothing, or a derived table / CTE handing out a
    column of the joined table, makes an outer join a possible anti-join; an aggregate in the HAVING, or a
    top-level select list, does not."""
    tree = parse_one(sql, read="mysql")
    assert [t.name for t, _parts in early_stop.stopping_joins(tree)] == tables


# -- PostgreSQL: a long text stored in the masked value's own table (decision 0359) ------------------------------

#: row 1's name: 11 characters in A, 16 in B; PostgreSQL's largest jsonb container, in bytes
OWN_NAMES = {"a": "Alice Smith", "b": "Zoe Quinn-Harper"}
JSONB_MAX = 268435455
#: fit in a jsonb beside an 11-character name, not beside a 16-character one
PAD = f"repeat('x', {JSONB_MAX - 24})"


@pytest.fixture
def own(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant a and b: three people whose rows differ only in row 1's name (a text masked whole)."""
    names: dict[str, str] = {}
    for v, first in OWN_NAMES.items():
        t = f"h2early_own_{v}_{unique}"
        pg_conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, city text, note varchar(20), "
                        "born date)")  # fmt: skip
        pg_conn.execute(f"INSERT INTO {t} VALUES (1, %s, 'Paris', 'n1', '1990-01-02'), "
                        "(2, 'Bob Jones', 'Lyon', NULL, NULL), (3, 'Chen Wei', 'Lyon', 'n3', NULL)", (first,))  # fmt: skip
        names[v] = t
    yield names
    for t in names.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


OWN_MERGES = [
    "SELECT to_jsonb(ARRAY[full_name, city]) IS NULL FROM {t} WHERE id = 1",  # the secret's own row
    "SELECT jsonb_build_array(full_name, city) IS NULL FROM {t} WHERE id = 1",
    "SELECT to_jsonb(ARRAY[a.full_name, b.city]) IS NULL FROM {t} a, {t} b WHERE a.id = 1 AND b.id = 2",  # self-join
    "SELECT to_jsonb(ARRAY[upper(full_name), city]) IS NULL FROM {t} WHERE id = 1",
    "SELECT to_jsonb(ARRAY[s.full_name, s.city]) IS NULL FROM (SELECT id, full_name, city FROM {t}) s WHERE id = 1",
    "SELECT to_jsonb(ARRAY[(SELECT full_name FROM {t} WHERE id = 1), city]) IS NULL FROM {t} WHERE id = 2",
]


def _sending(dsn: str) -> tuple[Any, list[str]]:
    """A governed psycopg connection, and the statements it sends to the server (its cursors log them)."""
    import psycopg

    sent: list[str] = []

    class Logged(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
            sent.append(query if isinstance(query, str) else repr(query))
            return super().execute(query, *args, **kwargs)

    return govern(psycopg.connect(dsn, autocommit=True, cursor_factory=Logged), ATTACKER), sent


def test_a_long_text_of_the_masked_values_own_table_measures_no_length(pg_conn: Any, own: dict[str, str]) -> None:
    """Found in round 18 (decision 0350's open case): 256 MB written beforehand into a clear column of the masked
    value's own table -- the secret's row, or the caller's own row read by a self-join -- makes ``to_jsonb(ARRAY[
    full_name, city])`` fail exactly when the name is longer than the room left: the raw connection answered
    ``false`` for the 11-character name and failed for the 16-character one. Governed, the masked text merged
    beside a stored column is replaced by a stand-in of the same NULL-ness: the caller sees the same (masked)
    answer, and the statement the server runs fits whichever the name (run here over the long rows: governing them
    would classify 256 MB samples first, minutes)."""
    from tests.conftest import PG_DSN

    governed: dict[str, list[Any]] = {}
    sent_for: dict[str, list[str]] = {}
    for v, t in own.items():
        conn, sent = _sending(PG_DSN)
        try:
            governed[v] = []
            sent_for[v] = []
            for sql in OWN_MERGES:
                governed[v].append(observe(conn, sql.format(t=t)))
                sent_for[v].append(sent[-1].replace(t, "{t}"))
        finally:
            conn.close()
    assert governed["a"] == governed["b"], governed
    assert all(g == (["?column?"], [(None,)]) for g in governed["a"]), governed  # masked whole, as before
    assert sent_for["a"] == sent_for["b"], sent_for
    assert all("CASE WHEN (" in s and "IS NULL THEN NULL ELSE '' END" in s for s in sent_for["a"]), sent_for
    # the name alone is stood in for; the city (clear) is sent as written
    assert sent_for["a"][0] == ("SELECT to_jsonb(ARRAY[(CASE WHEN (full_name) IS NULL THEN NULL ELSE '' END), city]) "
                                'IS NULL FROM {t} WHERE id = 1 ORDER BY {t}."id"'), sent_for
    for t in own.values():
        pg_conn.execute(f"UPDATE {t} SET city = {PAD} WHERE id IN (1, 2)")
    for i in (0, 2):  # the secret's own row; the caller's row beside it
        raw = {v: observe(pg_conn, OWN_MERGES[i].format(t=t)) for v, t in own.items()}
        assert raw["a"] == (["?column?"], [(False,)]) and "ProgramLimitExceeded" in raw["b"], raw  # the oracle
        sent = {v: observe(pg_conn, sent_for[v][i].format(t=t)) for v, t in own.items()}
        assert sent["a"] == sent["b"] == (["?column?"], [(False,)]), sent
    # the database after the attempts: the names as they were, the pads where the UPDATE put them
    for v, t in own.items():
        rows = pg_conn.execute(f"SELECT id, full_name, length(city) FROM {t} ORDER BY id").fetchall()
        assert rows == [(1, OWN_NAMES[v], JSONB_MAX - 24), (2, "Bob Jones", JSONB_MAX - 24), (3, "Chen Wei", 4)]


OWN_LOOK_ALIKES = [
    "SELECT full_name || ' (' || city || ')', concat(full_name, ' #', id), ARRAY[full_name, city], "
    "jsonb_build_object('n', full_name, 'c', city), ARRAY[born, born], (full_name || city) IS NULL "
    "FROM {t} ORDER BY id",
    "SELECT to_jsonb(t) FROM {t} t WHERE id = 2",
    "SELECT concat(city, note, id) FROM {t} ORDER BY id",
    "SELECT ARRAY[(SELECT full_name FROM {t} WHERE id = 1), city], (SELECT full_name FROM {t} WHERE id = 1) "
    "FROM {t} WHERE id = 2",
    "SELECT ARRAY[full_name, city] || ARRAY[full_name, note], concat(full_name, city, concat(full_name, note)) "
    "FROM {t} ORDER BY id",  # nested merges: the name stood in for once
]


def test_merges_beside_own_texts_answer_as_before(pg_conn: Any, own: dict[str, str]) -> None:
    """The innocent look-alikes: a masked name merged beside its own row's city, whole rows, clear merges -- each
    answers as the caller saw it before (masked whole; the clear texts as stored); a write that merges a masked
    value is not rewritten (the stand-in is for what the caller reads, never for what is stored)."""
    from tests.conftest import PG_DSN

    conn, sent = _sending(PG_DSN)
    try:
        t = own["a"]
        seen = [observe(conn, sql.format(t=t)) for sql in OWN_LOOK_ALIKES]
        # as before decision 0359 (checked against the base revision)
        row = ("[FREE_TEXT]", "[PERSON_NAME]", ["[FREE_TEXT]"], {"redacted": "[FREE_TEXT]"}, ["[DATE_OF_BIRTH]"], None)
        assert seen[0][1] == [row] * 3, seen[0]
        assert seen[1][1] == [({"id": 2, "born": None, "city": "Lyon", "note": None,
                                "full_name": "[PERSON_NAME]"},)], seen[1]  # fmt: skip
        assert seen[2][1] == [("[FREE_TEXT]",)] * 3, seen[2]  # a merged free text is masked whole
        assert seen[3][1] == [(["[FREE_TEXT]"], "[PERSON_NAME]")], seen[3]
        assert seen[4][1] == [(["[FREE_TEXT]"], "[FREE_TEXT]")] * 3, seen[4]
        assert "masked-column-copy" in observe(conn, f"UPDATE {t} SET note = left(full_name || city, 20) WHERE id = 2")
        mine = [x for x in sent if t in x and "pg_catalog" not in x]
        assert any("WHEN (full_name) IS NULL" in x for x in mine), mine
        assert not any("WHEN (city)" in x or "UPDATE" in x for x in mine), mine  # clear texts as written
    finally:
        conn.close()
    assert pg_conn.execute(f"SELECT id, note, city FROM {t} ORDER BY id").fetchall() == [
        (1, "n1", "Paris"), (2, None, "Lyon"), (3, "n3", "Lyon")]


# -- PostgreSQL: min()/max() over an index on a masked column (decision 0357) --------------------------------------

#: row 1's SSN: after Bob's ``219-45-1002`` in A, before it in B
PG_SSNS = {"a": "536-22-8726", "b": "100-99-0000"}
#: true on row 1, failing on row 2 (``id + 0``: no index on id helps, so the planner walks the ssn index)
PG_STOPS = "id + 0 IN (1, 2) AND CASE WHEN id = 2 THEN 1 / (id - 2) ELSE 1 END = 1"


@pytest.fixture
def pg_min(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant a and b: 3,000 people whose rows differ only in row 1's SSN, with an index on ``ssn``."""
    names: dict[str, str] = {}
    for v, ssn in PG_SSNS.items():
        t = f"h2early_min_{v}_{unique}"
        pg_conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, ssn text, city text)")
        pg_conn.execute(f"INSERT INTO {t} VALUES (1, 'Alice Smith', %s, 'Paris'), (2, 'Bob Jones', '219-45-1002', "
                        "'Lyon')", (ssn,))  # fmt: skip
        pg_conn.execute(f"INSERT INTO {t} SELECT g, 'Person ' || g, NULL, 'x' FROM generate_series(3, 3000) g")
        pg_conn.execute(f"CREATE INDEX {t}_ssn ON {t} (ssn)")
        pg_conn.execute(f"ANALYZE {t}")
        names[v] = t
    yield names
    for v, t in names.items():  # the ground truth after the attempts: nothing written
        assert pg_conn.execute(f"SELECT count(*), count(ssn), max(ssn) FROM {t}").fetchone() == (
            3000, 2, max(PG_SSNS[v], "219-45-1002"))
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


PG_MIN_MAX = [
    f"SELECT min(ssn) IS NULL FROM {{t}} WHERE {PG_STOPS}",
    f"SELECT max(ssn) IS NULL FROM {{t}} WHERE {PG_STOPS}",
    f"SELECT EXISTS (SELECT min(ssn) FROM {{t}} WHERE {PG_STOPS})",
    f"SELECT (SELECT max(ssn) FROM {{t}} WHERE {PG_STOPS}) IS NULL",
    f"SELECT min(ssn) IS NULL FROM {{t}} WHERE {PG_STOPS} UNION ALL SELECT true",
]


def _pg_seen(pg_min: dict[str, str], sql: str, governed: bool) -> dict[str, str]:
    import psycopg

    from tests.conftest import PG_DSN

    out = {}
    for v, t in pg_min.items():
        conn = psycopg.connect(PG_DSN, autocommit=True)
        conn = govern(conn, ATTACKER) if governed else conn
        try:
            out[v] = repr(observe(conn, sql.format(t=t))).replace(t, "T")
        finally:
            conn.close()
    return out


@pytest.mark.parametrize("sql", PG_MIN_MAX, ids=lambda s: s[:60])
def test_postgres_min_max_over_a_masked_index_tells_no_order(pg_min: dict[str, str], sql: str) -> None:
    """Found in round 18: PostgreSQL answers ``min(ssn)`` as ``SELECT ssn ... ORDER BY ssn LIMIT 1`` over the index
    on ``ssn`` (planagg) and stops at the first row its WHERE keeps: raw, the statement failed when row 2's SSN sorts
    first (copy A) and answered when row 1's did (copy B); 0334 withholds the message, not whether it fails.
    Governed, ``ORDER BY count(*)`` (one row, nothing sorted) keeps the planner from that short cut: every kept row
    is read, and both fail alike."""
    raw = _pg_seen(pg_min, sql, governed=False)
    assert ("DivisionByZero" in raw["a"]) != ("DivisionByZero" in raw["b"]), raw  # the oracle
    gov = _pg_seen(pg_min, sql, governed=True)
    assert gov["a"] == gov["b"], gov
    assert "[withheld" in gov["a"] or "EXISTS stops" in gov["a"], gov  # (a sublink that may fail: 0342)


PG_MIN_MAX_LOOK_ALIKES = [
    "SELECT max(id), min(city) FROM {t} WHERE city = 'Lyon'",  # a key, a clear column: as written
    "SELECT min(ssn) IS NULL, max(ssn) IS NOT NULL FROM {t} WHERE city <> 'x'",
    "SELECT count(*) FROM {t} WHERE id < (SELECT max(id) FROM {t} WHERE ssn IS NOT NULL)",
]


def test_postgres_min_max_look_alikes_answer_as_raw(pg_min: dict[str, str]) -> None:
    """The innocent look-alikes answer as the raw connection (the masked ones masked), under the same names."""
    for sql in PG_MIN_MAX_LOOK_ALIKES:
        raw = _pg_seen(pg_min, sql, governed=False)
        gov = _pg_seen(pg_min, sql, governed=True)
        assert gov["a"] == gov["b"], gov
        if "min(ssn)" in sql:
            assert gov["a"] == "(['?column?', '?column?'], [(None, None)])", gov  # derived from SSNs: masked
        else:
            assert gov["a"] == raw["a"], (gov, raw)


def test_mariadb_a_packet_sized_text_of_the_masked_values_own_table_is_no_partner(mysql_conn: Any, unique: str) -> None:
    """Found in round 18: MariaDB's ``CONCAT`` is NULL, with a warning, past ``max_allowed_packet``. With the
    secret's own row's ``city`` (a clear LONGTEXT) filled to 13 characters short of it, ``LENGTH(CONCAT(full_name,
    city))`` was masked for the caller, but ``@@warning_count`` said 0 for an 11-character name and 1 for a
    16-character one. A masked value merged beside a column that holds more than 64 KB is now refused, whatever its
    table."""
    import pymysql

    from tests.conftest import MYSQL_KW

    cur = mysql_conn.cursor()
    cur.execute("SELECT @@max_allowed_packet")
    room = cur.fetchone()[0] - 13
    seen = {}
    for v, name in OWN_NAMES.items():
        t = f"h2early_mdown_{v}_{unique}"
        cur.execute(f"CREATE TABLE {t} (id int primary key, full_name varchar(100), city longtext)")
        try:
            cur.execute(f"INSERT INTO {t} VALUES (1, %s, 'Paris'), (2, 'Bob Jones', 'Lyon')", (name,))
            cur.execute(f"UPDATE {t} SET city = REPEAT('x', {room}) WHERE id = 1")
            for governed in (False, True):
                conn = pymysql.connect(autocommit=True, **MYSQL_KW)
                conn = govern(conn, CURIOUS_AGENT) if governed else conn
                try:
                    got = observe(conn, f"SELECT LENGTH(CONCAT(full_name, city)) FROM {t} WHERE id = 1")
                    count = conn.cursor()
                    count.execute("SELECT @@warning_count")
                    seen[governed, v] = (repr(got).replace(t, "T"), count.fetchall()[0][0])
                finally:
                    conn.close()
            cur.execute(f"SELECT id, full_name, length(city) FROM {t} ORDER BY id")
            assert [tuple(r) for r in cur.fetchall()] == [(1, name, room), (2, "Bob Jones", 4)]
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {t}")
    assert seen[False, "a"][1] == 0 and seen[False, "b"][1] == 1, seen  # the oracle
    assert seen[True, "a"] == seen[True, "b"], seen
    assert "masked-column-predicate" in seen[True, "a"][0] and "more than 64 KB" in seen[True, "a"][0], seen


def test_mariadb_merges_beside_short_texts_still_run(mysql_conn: Any, unique: str) -> None:
    """The innocent look-alikes: a masked name merged beside its own row's VARCHAR or TEXT (64 KB at most), clear
    columns merged with a LONGTEXT, and a LONGTEXT selected beside the name as its own column, run as before."""
    import pymysql

    from tests.conftest import MYSQL_KW

    t = f"h2early_mdshort_{unique}"
    cur = mysql_conn.cursor()
    cur.execute(f"CREATE TABLE {t} (id int primary key, full_name varchar(100), city varchar(40), note text, "
                "big longtext)")  # fmt: skip
    conn = govern(pymysql.connect(autocommit=True, **MYSQL_KW), CURIOUS_AGENT)
    try:
        cur.execute(f"INSERT INTO {t} VALUES (1, 'Alice Smith', 'Paris', 'n1', 'b1'), (2, 'Bob Jones', 'Lyon', "
                    "'n2', 'b2')")  # fmt: skip
        seen = [
            observe(conn, f"SELECT CONCAT(full_name, ' (', city, ')') FROM {t} ORDER BY id"),
            observe(conn, f"SELECT CONCAT(full_name, note) FROM {t} ORDER BY id"),
            observe(conn, f"SELECT CONCAT(city, big) FROM {t} ORDER BY id"),
            observe(conn, f"SELECT full_name, big FROM {t} ORDER BY id"),
        ]
        assert not any("refused" in repr(x) for x in seen), seen
        assert seen[2][1] == [("Parisb1",), ("Lyonb2",)], seen
        assert seen[3][1] == [("[PERSON_NAME]", "b1"), ("[PERSON_NAME]", "b2")], seen
        cur.execute(f"SELECT id, full_name, city, note, big FROM {t} ORDER BY id")
        assert [tuple(r) for r in cur.fetchall()] == [(1, "Alice Smith", "Paris", "n1", "b1"),
                                                      (2, "Bob Jones", "Lyon", "n2", "b2")]  # fmt: skip
    finally:
        conn.close()
        cur.execute(f"DROP TABLE IF EXISTS {t}")
