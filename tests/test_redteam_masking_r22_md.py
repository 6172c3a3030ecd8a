"""Red-team round 22 over masking on MariaDB (PyMySQL): a prompt-injected agent in production with zero
configuration and no unmask grant.

* **Relations named apart only by case** (decision 0417). MariaDB with ``lower_case_table_names = 0`` (the default
  on Linux) reads the aliases ``t`` and ``T`` as two tables, and PostgreSQL reads the quoted ``"T"`` apart from
  ``t``; lineage compared FROM names in lower case and took the first one that matched. With ``FROM q AS t JOIN
  customers AS T``, ``T.code`` was read as ``q.code`` (a clear column): ``WHERE T.code LIKE '5%'`` picked customer
  1 over one copy only, ``ORDER BY T.code`` sorted by the SSNs, and ``reverse(T.code)`` returned every SSN
  reversed, in clear. The same held across scopes (an ``EXISTS`` over ``q AS t`` naming the outer ``T``), for a
  derived table and for CTE names. A statement naming two FROM items apart only by case beside a table with
  masked columns is now refused, naming them.

* **An alias that is another FROM table's name** (decision 0417). A table given an alias is named only by it on
  every engine, but lineage also matched a qualifier to a table's own name: with ``FROM q AS x JOIN customers AS
  q``, ``q.code`` was read as the clear table's column (the first FROM item so named) while the server read the
  customers' SSNs — ``WHERE q.code LIKE '5%'`` picked customer 1 over one copy only and ``reverse(q.code)`` came
  back in clear; likewise a subquery's ``q AS x`` hid an enclosing query's alias ``q``. A qualifier now names the
  FROM item under that alias, and a table's own name only where no item (of that query or an enclosing one) has
  that alias.

* **A HAVING name MariaDB takes from the enclosing query** (decision 0418). MariaDB looks an unqualified name in
  HAVING up among its query's outputs and GROUP BY, then in the enclosing queries, before its own FROM: in ``WHERE
  id IN (SELECT id FROM q GROUP BY id HAVING code LIKE '5%')`` the ``code`` is the outer customers' SSN, while
  lineage read the clear ``q.code`` — the filter picked customer 1 over one copy only (also under ``EXISTS`` and as
  a scalar subquery's result). Such a name (no output, not grouped) now counts as both.

Left as a strict expected failure: an over-refusal of ``SELECT ... FROM t FOR SYSTEM_TIME ALL`` over a table with an
index on a masked column (the key order governed_db adds is spliced before the clause).

Each oracle compares two tables that differ only in customer 1's SSN (whose masks are the same); the raw session
shows that the same statements tell them apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from tests._redteam import CURIOUS_AGENT, govern, observe

#: customer 1's SSN per copy
SSNS = {"A": "536-22-8726", "B": "187-65-4321"}


def _admin_run(admin: Any, sql: str) -> None:
    with closing(admin.cursor()) as cur:
        cur.execute(sql)


@pytest.fixture
def pair(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per copy A and B, a customers table whose ``code`` holds SSNs (masked by its values; an index on it), and
    ``q``, a clear table of the same shape whose name is ``{q}``; dropped afterwards."""
    names = {c: f"r22md_{unique}_{c.lower()}" for c in SSNS} | {"q": f"r22md_{unique}_q"}
    try:
        for c, ssn in SSNS.items():
            _admin_run(mysql_conn, f"CREATE TABLE {names[c]} (id int primary key, code varchar(20), "
                                   "city varchar(40), KEY (code))")  # fmt: skip
            _admin_run(mysql_conn, f"INSERT INTO {names[c]} VALUES (1, '{ssn}', 'Paris'), "
                                   "(2, '219-45-1234', 'Lyon'), (3, '412-77-9001', 'Rome')")  # fmt: skip
        _admin_run(mysql_conn, f"CREATE TABLE {names['q']} (id int primary key, code varchar(20))")
        _admin_run(mysql_conn, f"INSERT INTO {names['q']} VALUES (1, 'A1'), (2, 'B2'), (3, 'C3')")
        yield names
    finally:
        for t in names.values():
            _admin_run(mysql_conn, f"DROP TABLE IF EXISTS {t}")


def _seen(mysql_kw: dict[str, Any], names: dict[str, str], sql: str, governed: bool) -> dict[str, str]:
    """Per copy, what a session (raw, or governed for the curious agent) sees of ``sql`` (``{t}``: the copy,
    ``{q}``: the clear table), with the copy's name blanked."""
    import pymysql

    out = {}
    for c in SSNS:
        raw = pymysql.connect(autocommit=True, **mysql_kw)
        conn = govern(raw, CURIOUS_AGENT) if governed else raw
        try:
            out[c] = repr(observe(conn, sql.format(t=names[c], q=names["q"]))).replace(names[c], "T")
        finally:
            conn.close()
    return out


#: statements that name the customers table ``T`` beside the clear table ``t``
CASE_APART = [
    pytest.param("SELECT t.id FROM {q} AS t JOIN {t} AS T ON T.id = t.id WHERE T.code LIKE '5%'", id="filter"),
    pytest.param("SELECT T.id, reverse(T.code) FROM {q} AS t JOIN {t} AS T ON T.id = t.id ORDER BY T.id",
                 id="reversed"),
    pytest.param("SELECT t.id FROM {q} AS t JOIN {t} AS T ON T.id = t.id ORDER BY T.code", id="order"),
    pytest.param("SELECT T.id FROM {t} AS T WHERE EXISTS (SELECT 1 FROM {q} AS t WHERE t.id = T.id "
                 "AND T.code LIKE '5%')", id="outer-alias-in-a-subquery"),
    pytest.param("SELECT t.id FROM (SELECT id, code FROM {t}) AS T, {q} AS t WHERE T.id = t.id "
                 "AND T.code LIKE '5%'", id="derived-table"),
]  # fmt: skip


@pytest.mark.parametrize("sql", CASE_APART)
def test_relations_named_apart_by_case_decide_nothing(
    mysql_kw: dict[str, Any], pair: dict[str, str], sql: str
) -> None:
    """Both copies answer alike, with no SSN in clear (before: the filter picked customer 1 over one copy only,
    the order followed the SSNs, ``reverse(T.code)`` returned them reversed); the raw session tells them apart."""
    raw = _seen(mysql_kw, pair, sql, governed=False)
    assert raw["A"] != raw["B"], raw
    seen = _seen(mysql_kw, pair, sql, governed=True)
    assert seen["A"] == seen["B"], seen
    assert "apart only by case" in seen["A"], seen
    assert not any(s in seen["A"] or s[::-1] in seen["A"] for s in [*SSNS.values(), "219-45-1234"]), seen


#: look-alikes: aliases that differ by more than case, one table under one alias, a self-join
LOOK_ALIKES = [
    ("SELECT t.id, u.city, u.code FROM {q} AS t JOIN {t} AS u ON u.id = t.id ORDER BY t.id",
     "(['id', 'city', 'code'], [(1, 'Paris', '[US_SSN]'), (2, 'Lyon', '[US_SSN]'), (3, 'Rome', '[US_SSN]')])"),
    ("SELECT T.id, T.city FROM {t} AS T WHERE T.city <> 'Rome' ORDER BY T.id",
     "(['id', 'city'], [(1, 'Paris'), (2, 'Lyon')])"),
    ("SELECT a.id, b.city FROM {t} a JOIN {t} b ON b.id = a.id WHERE a.city = 'Lyon'", "(['id', 'city'], [(2, 'Lyon')])"),
    ("SELECT T.id, t.code FROM {t} AS T JOIN {q} AS t ON T.id = t.id ORDER BY T.id",
     "refused"),  # the clear table's column, but under the same two names: refused all the same (fail closed)
]  # fmt: skip


@pytest.mark.parametrize(("sql", "expected"), LOOK_ALIKES)
def test_aliases_apart_by_more_than_case_run(
    mysql_kw: dict[str, Any], pair: dict[str, str], sql: str, expected: str
) -> None:
    """Look-alike: aliases that differ by more than case join, filter and order as before, exactly (masked where
    due)."""
    seen = _seen(mysql_kw, pair, sql, governed=True)
    if expected == "refused":
        assert "apart only by case" in seen["A"], seen
    else:
        assert seen["A"] == seen["B"] == expected, seen


def test_postgres_quoted_names_apart_by_case(pg_dsn: str, unique: str) -> None:
    """The same on PostgreSQL, whose quoted ``"T"`` is not ``t`` (before: ``"T".code`` was read as the clear
    table's, and ``reverse("T".code)`` came back in clear); unquoted ``T`` folds to ``t``, so a subquery's ``T``
    naming the table ``t`` still runs."""
    import psycopg

    m, q = f"r22md_{unique}_pg", f"r22md_{unique}_pgq"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE TABLE {m} (id int primary key, code varchar(20), city text)")
        admin.execute(f"INSERT INTO {m} VALUES (1, '536-22-8726', 'Paris'), (2, '219-45-1234', 'Lyon')")
        admin.execute(f"CREATE TABLE {q} (id int primary key, code text)")
        admin.execute(f"INSERT INTO {q} VALUES (1, 'A1'), (2, 'B2')")
        try:
            conn = govern(psycopg.connect(pg_dsn, autocommit=True), CURIOUS_AGENT)
            try:
                seen = [observe(conn, sql.format(m=m, q=q)) for sql in (
                    'SELECT "T".id, reverse("T".code) FROM {q} AS t JOIN {m} AS "T" ON "T".id = t.id ORDER BY 1',
                    'SELECT t.id FROM {q} AS t JOIN {m} AS "T" ON "T".id = t.id WHERE "T".code LIKE \'5%\'',
                    "SELECT T.id, t.city FROM {m} AS t WHERE T.city <> 'Lyon' ORDER BY 1",
                )]  # fmt: skip
            finally:
                conn.close()
        finally:
            admin.execute(f"DROP TABLE IF EXISTS {m}, {q}")
    assert "apart only by case" in seen[0] and "apart only by case" in seen[1], seen
    assert "6278-22-635" not in repr(seen) and "536-22-8726" not in repr(seen), seen
    assert seen[2] == (["id", "city"], [(1, "Paris")]), seen


#: statements that give the customers table the clear table's name as its alias
NAME_TAKEN = [
    pytest.param("SELECT x.id FROM {q} AS x JOIN {t} AS {q} ON {q}.id = x.id WHERE {q}.code LIKE '5%'", id="filter"),
    pytest.param("SELECT x.id, reverse({q}.code) FROM {q} AS x JOIN {t} AS {q} ON {q}.id = x.id ORDER BY x.id",
                 id="reversed"),
    pytest.param("SELECT x.id FROM {q} AS x JOIN {t} AS {q} ON {q}.id = x.id ORDER BY {q}.code", id="order"),
    pytest.param("SELECT {q}.id FROM {t} AS {q} WHERE EXISTS (SELECT 1 FROM {q} AS x WHERE x.id = {q}.id "
                 "AND {q}.code LIKE '5%')", id="enclosing-alias"),
]  # fmt: skip


@pytest.mark.parametrize("sql", NAME_TAKEN)
def test_an_alias_taking_another_tables_name_reads_the_aliased_table(
    mysql_kw: dict[str, Any], pair: dict[str, str], sql: str
) -> None:
    """``q.code`` is the customers' column the alias names: refused where it decides rows, masked where returned,
    alike over both copies (before: read as the clear table's, it filtered and ordered by the SSNs and came back
    reversed in clear); the raw session tells the copies apart."""
    raw = _seen(mysql_kw, pair, sql, governed=False)
    assert raw["A"] != raw["B"], raw
    seen = _seen(mysql_kw, pair, sql, governed=True)
    assert seen["A"] == seen["B"], seen
    assert not any(s in seen["A"] or s[::-1] in seen["A"] for s in [*SSNS.values(), "219-45-1234"]), seen


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT {q}.id, {q}.code FROM {q} WHERE {q}.code <> 'B2' ORDER BY {q}.id", "(['id', 'code'], [(1, 'A1'), (3, 'C3')])"),
    ("SELECT x.id FROM {t} AS x JOIN {q} ON {q}.id = x.id WHERE {q}.code = 'A1'", "(['id'], [(1,)])"),
    ("SELECT x.id FROM {t} x WHERE EXISTS (SELECT 1 FROM {q} WHERE {q}.id = x.id AND {q}.code = 'C3')",
     "(['id'], [(3,)])"),
])  # fmt: skip
def test_a_table_under_its_own_name_is_read_as_itself(
    mysql_kw: dict[str, Any], pair: dict[str, str], sql: str, expected: str
) -> None:
    """Look-alike: the clear table named by its own name (no alias), alone, joined or in a subquery, filters and
    answers exactly."""
    seen = _seen(mysql_kw, pair, sql, governed=True)
    assert seen["A"] == seen["B"] == expected, seen


#: a subquery's HAVING naming, bare, a column that is neither among its outputs nor grouped
HAVING_OUTER = [
    pytest.param("SELECT id FROM {t} WHERE id IN (SELECT id FROM {q} GROUP BY id HAVING code LIKE '5%')", id="in"),
    pytest.param("SELECT id FROM {t} WHERE EXISTS (SELECT 1 FROM {q} GROUP BY id HAVING code LIKE '5%')",
                 id="exists"),
    pytest.param("SELECT id, (SELECT min(id) FROM {q} HAVING code LIKE '5%') FROM {t} ORDER BY id", id="scalar"),
]  # fmt: skip


@pytest.mark.parametrize("sql", HAVING_OUTER)
def test_a_having_name_taken_from_the_enclosing_query_decides_nothing(
    mysql_kw: dict[str, Any], pair: dict[str, str], sql: str
) -> None:
    """Both copies answer alike, refused naming the customers' column (before: read as the clear ``q.code``, the
    filter picked customer 1 over one copy only); the raw session tells them apart."""
    raw = _seen(mysql_kw, pair, sql, governed=False)
    assert raw["A"] != raw["B"], raw
    seen = _seen(mysql_kw, pair, sql, governed=True)
    assert seen["A"] == seen["B"], seen
    assert "masked-column-predicate" in seen["A"] and "T.code are used in HAVING" in seen["A"], seen


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT id FROM {t} WHERE id IN (SELECT id FROM {q} GROUP BY id, code HAVING code = 'A1')", "(['id'], [(1,)])"),
    ("SELECT id FROM {t} WHERE id IN (SELECT id FROM {q} GROUP BY id HAVING count(*) = 1) ORDER BY id",
     "(['id'], [(1,), (2,), (3,)])"),
    ("SELECT id FROM {t} WHERE id IN (SELECT id FROM {q} GROUP BY id HAVING id > 1) ORDER BY id",
     "(['id'], [(2,), (3,)])"),
    ("SELECT city, count(*) FROM {t} GROUP BY city HAVING count(*) > 0 ORDER BY city",
     "(['city', 'count(*)'], [('Lyon', 1), ('Paris', 1), ('Rome', 1)])"),
])  # fmt: skip
def test_a_having_of_grouped_names_and_aggregates_runs(
    mysql_kw: dict[str, Any], pair: dict[str, str], sql: str, expected: str
) -> None:
    """Look-alike: a subquery's HAVING over its grouped columns, outputs or aggregates, and a top-level HAVING,
    answer exactly."""
    seen = _seen(mysql_kw, pair, sql, governed=True)
    assert seen["A"] == seen["B"] == expected, seen


@pytest.mark.xfail(
    strict=True,
    reason="over-refusal: the key order added to a read of a system-versioned table with an index on a masked "
    "column is spliced between the table's name and its FOR SYSTEM_TIME clause (sqlglot writes the clause back as "
    "FOR TIMESTAMP), so the edited text does not parse and the read is refused; an ORDER BY written by the caller "
    "runs",
)
def test_a_read_of_a_system_versioned_tables_history_runs(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> None:
    """Look-alike: ``SELECT id, city FROM t FOR SYSTEM_TIME ALL`` of a table with an index on its SSNs answers
    every version of the clear columns (in key order)."""
    import pymysql

    t = f"r22md_{unique}_v"
    _admin_run(mysql_conn, f"CREATE TABLE {t} (id int primary key, ssn varchar(20), city varchar(20), KEY (ssn)) "
                           "WITH SYSTEM VERSIONING")  # fmt: skip
    try:
        _admin_run(mysql_conn, f"INSERT INTO {t} VALUES (1, '536-22-8726', 'Paris'), (2, '219-45-1234', 'Lyon')")
        _admin_run(mysql_conn, f"UPDATE {t} SET city = 'Nice' WHERE id = 1")
        conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
        try:
            seen = observe(conn, f"SELECT id, city FROM {t} FOR SYSTEM_TIME ALL")
        finally:
            conn.close()
    finally:
        _admin_run(mysql_conn, f"DROP TABLE IF EXISTS {t}")
    assert isinstance(seen, tuple) and sorted(seen[1]) == [(1, "Nice"), (1, "Paris"), (2, "Lyon")], seen
