"""Round 18 red team (h4pg), PostgreSQL through psycopg 3, psycopg2 and asyncpg: data-modifying WITH queries,
prepared statements, new indexes and code of one's own.

PostgreSQL lets a WITH query change rows and hand them to the rest of the statement: ``WITH d AS (DELETE FROM t
WHERE id = 1 RETURNING full_name AS city) SELECT city FROM d``. In staging (masked for everyone, the nested write
only warned) and in production once a person approves it, an agent without an unmask grant could run one:

* Values (decision 0363). The walk gave such a WITH query no columns at all, and did not count its table as read,
  so whatever the rest of the statement did with its rows was neither masked nor judged: ``RETURNING full_name AS
  city`` came back as the raw name, ``WHERE l LIKE 'A%'`` over a returned name filtered, ``1 / (l - 11)`` over its
  length failed or not, and the write's own WHERE (``WHERE ssn LIKE '5%'``) was never looked at. A data-modifying
  WITH query is now traced as the write it is: its conditions and copies are judged, its RETURNING columns are what
  they are made of.
* Order (decision 0363). The rows of such a WITH query come in the order the write read them, which where the
  masked values are stored decides (decisions 0272/0334: with row 5 moved, it comes before row 396 in one copy
  and after it in the other); the order guard treated it as a source with no order to fix, and so did nothing
  when a top-level write would have been ordered (0330), locked in key order (0351) or refused (0331). Now the
  rest of the statement reads it in the order of the key it returns (or is refused where it needs an order and
  none is returned), its rows are locked in key order, a value handed out row by row in it is refused, and an
  ``INSERT ... SELECT`` WITH query inserts in key order.

* Prepared statements (decision 0363). ``PREPARE q AS <statement>`` was never judged and ``EXECUTE q`` returned rows
  no lineage described; with no approval at all, ``CREATE TEMP TABLE x AS EXECUTE _pg3_0(1)`` copied the raw rows of
  a read psycopg had prepared (``prepare=True``) into the agent's own table.
* A new index storing a masked column (decision 0364): a btree entry over 2704 bytes fails the build, so ``CREATE
  INDEX ON t (city, full_name) WHERE id = 1`` after padding row 1's city measured the name's length.
* Code of one's own (decision 0365): ``CREATE FUNCTION public.upper(x varchar)`` ran for ``upper(full_name)`` over a
  varchar column (an exact match beats pg_catalog's), ``public.md5(full_name)`` was read as the built-in, and a
  ``DO`` block copied raw rows into the caller's table.

Oracles compare two tables of 400 people that differ only in row 1's name (``pg_stored_people``), or two tables
whose row 1 holds a different name, e-mail and SSN, masked alike.
"""

from __future__ import annotations

import asyncio
import random
import string
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import (
    CURIOUS_AGENT,
    asyncpg_variants,
    govern,
    leaked,
    pg_connect,
    pg_people,
    pg_stored_people,
    pg_variants,
    rows_or_rules,
)

pytestmark = pytest.mark.usefixtures("pg_dsn")

#: masked for everyone, a data-modifying WITH query warned about only (``dml-in-cte``)
STAGING = {"environment": "staging"}
SECRETS = {
    "a": ("Alice Smith", "alice@example.com", "536-22-8726"),
    "b": ("Zoe Quinn-Harper Quinn", "azzzzzzzzzzz@example.com", "123-45-6789"),
}


@pytest.fixture
def people(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant a and b, 30 customers whose row 1 holds that variant's name, e-mail and SSN."""
    with pg_people(pg_conn, f"r18pg_{unique}", SECRETS) as names:
        yield names


def _once(sql: str) -> Any:
    """``see(conn, table)``: what the caller sees of ``sql`` over ``table`` (rolled back afterwards)."""

    def see(conn: Any, table: str) -> Any:
        try:
            seen = rows_or_rules(conn, sql.format(t=table))
            if isinstance(seen, list):  # a plan names the table: blanked, so only what it counted tells copies apart
                seen = [tuple(c.replace(table, "T") if isinstance(c, str) else c for c in r) for r in seen]
            return seen
        except governed_db.GuardrailViolation:
            raise
        except Exception as e:
            return type(e).__name__
        finally:
            conn.rollback()

    return see


#: the refusal: masking's rule, beside the warning every data-modifying WITH query gets in staging
REFUSED = "refused: ['dml-in-cte', 'masked-column-predicate']"
#: name -> (statement, what the governed caller sees in both copies: rows, or the rule that refused it)
VALUES = {
    "a-returned-name-under-a-clear-name": (
        "WITH d AS (DELETE FROM {t} WHERE id = 1 RETURNING full_name AS city) SELECT city FROM d",
        [("[PERSON_NAME]",)],
    ),
    "returned-columns-read-by-star": (
        "WITH d AS (UPDATE {t} SET city = 'Nice' WHERE id = 1 RETURNING id, ssn AS code, email) SELECT * FROM d",
        [(1, "[US_SSN]", "a***@example.com")],
    ),
    "a-returned-name-filtered": (
        "WITH d AS (UPDATE {t} SET city = 'Nice' WHERE id = 1 RETURNING full_name AS l) "
        "SELECT count(*) FROM d WHERE l LIKE 'A%'",
        REFUSED,
    ),
    "a-returned-length-divides": (
        "WITH d AS (UPDATE {t} SET city = 'Nice' WHERE id = 1 RETURNING length(full_name) AS l) "
        "SELECT 1 / (l - 11) FROM d",
        REFUSED,
    ),
    "a-returned-length": (
        "WITH d AS (UPDATE {t} SET city = 'Nice' WHERE id = 1 RETURNING length(full_name) AS l) SELECT l FROM d",
        [(None,)],
    ),
    "the-writes-own-condition": (
        "WITH d AS (UPDATE {t} SET city = 'Nice' WHERE ssn LIKE '5%' RETURNING id) SELECT count(*) FROM d",
        REFUSED,
    ),
    "a-plan-counts-rows-a-returned-name-kept": (
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) WITH d AS (DELETE FROM {t} WHERE id = 1 "
        "RETURNING full_name AS city) SELECT city FROM d WHERE city LIKE 'A%'",
        "refused: ['dml-in-cte', 'explain-analyze', 'masked-column-predicate']",
    ),
    "a-returned-name-sorts": (
        "WITH d AS (DELETE FROM {t} WHERE id < 3 RETURNING id, full_name) SELECT id FROM d ORDER BY full_name",
        REFUSED,
    ),
}  # fmt: skip


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("name", list(VALUES), ids=list(VALUES))
def test_rows_a_with_query_wrote_are_masked_and_judged(people: dict[str, str], driver: str, name: str) -> None:
    sql, expected = VALUES[name]
    seen = pg_variants(driver, people, _once(sql), **STAGING)
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1] == expected, seen
    assert not leaked(seen["a"][1], SECRETS["a"]) and not leaked(seen["b"][1], SECRETS["b"])


def test_rows_a_with_query_wrote_tell_nothing_through_asyncpg(people: dict[str, str]) -> None:
    """asyncpg: the same statements tell the copies apart raw, and not governed (where asyncpg's constraint reads,
    which its warm-up does not do for a write, leave a write of a table with masked columns refused outright, the
    refusal is the same in both copies)."""
    pytest.importorskip("asyncpg")

    async def see(conn: Any, table: str) -> Any:
        out: list[Any] = []
        for sql, _ in VALUES.values():
            tr = conn.transaction()
            await tr.start()
            try:
                out.append([tuple(r) for r in await conn.fetch(sql.format(t=table))])
            except governed_db.GuardrailViolation as e:
                assert e.decision is not None
                out.append(f"refused: {sorted(e.decision.rules)}")
            except Exception as e:
                out.append(type(e).__name__)
            finally:
                await tr.rollback()
        return out

    seen = asyncpg_variants(people, see, **STAGING)
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1], seen
    assert not leaked(seen["a"][1], SECRETS["a"]) and not leaked(seen["b"][1], SECRETS["b"])


def test_the_database_keeps_what_a_refused_with_query_would_have_changed(people: dict[str, str]) -> None:
    """A refusal is judged before the statement is sent: the rows the write named are untouched."""
    conn = govern(pg_connect("psycopg"), CURIOUS_AGENT, **STAGING)
    try:
        with pytest.raises(governed_db.GuardrailViolation, match="masked-column-predicate"):
            conn.cursor().execute(VALUES["the-writes-own-condition"][0].format(t=people["a"]))
    finally:
        conn.close()
    admin = pg_connect("psycopg")
    try:
        assert admin.execute(f"SELECT count(*) FROM {people['a']} WHERE city = 'Nice'").fetchone() == (0,)
    finally:
        admin.close()


def test_a_name_a_with_query_returned_is_not_copied_into_a_table(people: dict[str, str]) -> None:
    """``CREATE TABLE ... AS`` over the rows a WITH query deleted put the raw name in a table of the caller's own."""
    sql = ("CREATE TEMP TABLE r18pg_copy AS WITH d AS (DELETE FROM {t} WHERE id = 1 RETURNING full_name AS city) "
           "SELECT city FROM d")  # fmt: skip

    def see(conn: Any, table: str) -> Any:
        try:
            made = rows_or_rules(conn, sql.format(t=table))
            return made if isinstance(made, str) else rows_or_rules(conn, "SELECT city FROM r18pg_copy")
        finally:
            conn.rollback()

    seen = pg_variants("psycopg", people, see, **STAGING)
    assert seen["a"][0] == [("Alice Smith",)], seen  # the copy, unprotected
    assert seen["a"][1] == seen["b"][1] == "refused: ['dml-in-cte', 'masked-column-copy']", seen
    admin = pg_connect("psycopg")
    try:
        assert admin.execute(f"SELECT count(*) FROM {people['a']} WHERE id = 1").fetchone() == (1,)
    finally:
        admin.close()


# -- order: the rows a WITH query wrote come in stored order ---------------------------------------------------
@pytest.fixture
def stored(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    names = pg_stored_people(pg_conn, f"r18pg_{unique}")
    names["mine"] = f"r18pg_{unique}_mine"
    pg_conn.execute(f"CREATE TABLE {names['mine']} (k int, n serial)")
    yield names
    for t in names.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


PICK = "id + 0 IN (5, 396)"  # no index: a scan, in stored order
#: name -> statement returning the ids 5 and 396 in some order (the governed answer: 5 first in both copies)
ORDERS = {
    "rows-listed": f"WITH d AS (UPDATE {{t}} SET city = 'Nice' WHERE {PICK} RETURNING id) SELECT id FROM d",
    "array-agg": f"WITH d AS (UPDATE {{t}} SET city = 'Nice' WHERE {PICK} RETURNING id) "
                 "SELECT unnest(array_agg(id)) FROM d",
    "the-first-row": f"WITH d AS (UPDATE {{t}} SET city = 'Nice' WHERE {PICK} RETURNING id) "
                     "SELECT id FROM d LIMIT 1",
    "row-number": f"WITH d AS (UPDATE {{t}} SET city = 'Nice' WHERE {PICK} RETURNING id) "
                  "SELECT id FROM (SELECT id, row_number() OVER () r FROM d) q ORDER BY r",
    "delete-renamed": f"WITH d AS (DELETE FROM {{t}} WHERE {PICK} RETURNING id AS k) SELECT k FROM d",
    "serials-of-an-insert": f"WITH d AS (INSERT INTO {{mine}} (k) SELECT id FROM {{t}} WHERE {PICK} RETURNING k, n) "
                            "SELECT k FROM d ORDER BY n",
}  # fmt: skip


def _ids_moved(sql: str, mine: str) -> Any:
    """``see(conn, table)``: per moved row (5, then 1: see ``pg_moved_places``), the ids ``sql`` returns."""

    def see(conn: Any, table: str) -> list[Any]:
        out: list[Any] = []
        for row in (5, 1):
            try:
                conn.cursor().execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
                out.append(rows_or_rules(conn, sql.format(t=table, mine=mine)))
            finally:
                conn.rollback()
        return out

    return see


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("shape", list(ORDERS), ids=list(ORDERS))
def test_rows_a_with_query_wrote_come_in_key_order(stored: dict[str, str], driver: str, shape: str) -> None:
    tables = {"a": stored["a"], "b": stored["b"]}
    seen = pg_variants(driver, tables, _ids_moved(ORDERS[shape], stored["mine"]), **STAGING)
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    first = [(5,)] if shape == "the-first-row" else [(5,), (396,)]
    assert seen["a"][1] == seen["b"][1] == [first, first], seen


def test_a_value_handed_out_row_by_row_in_a_with_query_is_refused(stored: dict[str, str]) -> None:
    sql = (f"WITH d AS (UPDATE {{t}} SET city = 'Nice' WHERE {PICK} RETURNING id, clock_timestamp() c) "
           "SELECT id FROM d ORDER BY c")  # fmt: skip
    tables = {"a": stored["a"], "b": stored["b"]}
    seen = pg_variants("psycopg", tables, _ids_moved(sql, stored["mine"]), **STAGING)
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == [REFUSED] * 2, seen


def _locked_first(admin: Any, table: str, governed: bool, write: str) -> Any:
    """Row 5 moved to the last page (or not); one session holds row 200, a second runs ``write`` over rows 5 and
    200 (and waits at 200), a third asks for row 5 with NOWAIT: refused when the write locked row 5 before it
    waited, granted when it read (and waited at) row 200 first (decision 0351's oracle)."""

    def connect() -> Any:
        conn = pg_connect("psycopg", autocommit=False)
        return govern(conn, CURIOUS_AGENT, **STAGING) if governed else conn

    admin.execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = 5")
    holder, writer, prober = connect(), connect(), connect()
    try:
        holder.cursor().execute(f"SELECT id FROM {table} WHERE id = 200 FOR UPDATE")
        pid = writer.info.backend_pid
        thread = threading.Thread(target=lambda: writer.cursor().execute(write.format(t=table)))
        thread.start()
        for _ in range(100):  # until the write waits for row 200
            if admin.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = %s", (pid,)).fetchone()[0]:
                break
            time.sleep(0.05)
        try:
            return rows_or_rules(prober, f"SELECT id FROM {table} WHERE id = 5 FOR UPDATE NOWAIT")
        except Exception as e:
            return type(e).__name__
        finally:
            prober.rollback()
            holder.rollback()
            thread.join()
            writer.commit()
    finally:
        for c in (holder, writer, prober):
            c.close()


def test_a_with_query_locks_the_rows_it_writes_in_key_order(pg_conn: Any, stored: dict[str, str]) -> None:
    write = "WITH d AS (UPDATE {t} SET city = 'b' WHERE city IS NULL OR id = 200 RETURNING id) SELECT count(*) FROM d"
    prefix = stored["a"].removesuffix("_sa")
    raw = [_locked_first(pg_conn, stored[v], False, write) for v in ("a", "b")]
    assert raw[0] != raw[1], raw  # the oracle: row 5 locked before the wait in one copy only
    pg_conn.execute(f"DROP TABLE {stored['a']}, {stored['b']}")
    assert pg_stored_people(pg_conn, prefix) == {"a": stored["a"], "b": stored["b"]}
    seen = [_locked_first(pg_conn, stored[v], True, write) for v in ("a", "b")]
    assert seen[0] == seen[1] == "LockNotAvailable", seen  # row 5 locked first, in key order, in both
    for v in ("a", "b"):  # the write did what was asked, and only that
        rows = pg_conn.execute(f"SELECT id, city FROM {stored[v]} WHERE city IS DISTINCT FROM 'Lyon' "
                               "ORDER BY id").fetchall()  # fmt: skip
        assert rows == [(1, "Paris"), (5, "b"), (200, "b")], rows


# -- look-alikes: data-modifying WITH queries that tell nothing keep running -----------------------------------
def test_innocent_with_queries_that_write_run_and_change_what_they_name(people: dict[str, str]) -> None:
    t = people["a"]
    conn = govern(pg_connect("psycopg"), CURIOUS_AGENT, **STAGING)
    admin = pg_connect("psycopg")
    try:
        cur = conn.cursor()
        cur.execute(f"WITH d AS (UPDATE {t} SET city = 'Nice' WHERE city = 'Lyon' AND id < 6 RETURNING id, city) "
                    "SELECT id, city FROM d")  # fmt: skip
        assert cur.fetchall() == [(2, "Nice"), (3, "Nice"), (4, "Nice"), (5, "Nice")]
        cur.execute(f"WITH d AS (DELETE FROM {t} WHERE id = 30 RETURNING id, full_name, email) SELECT * FROM d")
        assert cur.fetchall() == [(30, "[PERSON_NAME]", "p***@example.org")]
        cur.execute(f"WITH d AS (UPDATE {t} SET city = 'Rome' WHERE id > 25 RETURNING id) SELECT count(*) FROM d")
        assert cur.fetchall() == [(4,)]
        assert admin.execute(f"SELECT id, city FROM {t} WHERE city <> 'Lyon' ORDER BY id").fetchall() == [
            (1, "Paris"), (2, "Nice"), (3, "Nice"), (4, "Nice"), (5, "Nice"),
            (26, "Rome"), (27, "Rome"), (28, "Rome"), (29, "Rome"),
        ]  # fmt: skip
    finally:
        conn.close()
        admin.close()


def test_a_with_query_writing_a_table_without_masked_columns_runs_as_written(pg_conn: Any, unique: str) -> None:
    t = f"r18pg_{unique}_clear"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, qty int, city text)")
    pg_conn.execute(f"INSERT INTO {t} SELECT g, g % 7, 'Lyon' FROM generate_series(1, 40) g")
    sent: list[str] = []
    conn = govern(pg_connect("psycopg"), CURIOUS_AGENT, **STAGING)
    try:
        sql = f"WITH d AS (UPDATE {t} SET qty = qty + 1 WHERE qty = 0 RETURNING id, qty) SELECT id, qty FROM d"
        cur = conn.cursor()
        cur.execute(sql)
        assert sorted(cur.fetchall()) == [(i, 1) for i in range(7, 41, 7)]
        sent.append(pg_conn.execute(f"SELECT count(*) FROM {t} WHERE qty = 0").fetchone()[0])
    finally:
        conn.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")
    assert sent == [0]


# -- functions of the caller's own under names masking knows (decision 0365) ------------------------------------
@pytest.fixture
def own_schema(pg_conn: Any, unique: str) -> Iterator[str]:
    """A schema of this test's own, with a log table: functions made in it reach no other session's calls."""
    s = f"r18pg_{unique}_s"
    pg_conn.execute(f"CREATE SCHEMA {s}")
    pg_conn.execute(f"CREATE TABLE {s}.r18log (v text)")
    pg_conn.execute(f"CREATE TABLE {s}.people (id int primary key, full_name varchar(100), city varchar(40))")
    pg_conn.execute(f"INSERT INTO {s}.people SELECT g, 'Person Number ' || g, 'Lyon' FROM generate_series(2, 30) g")
    pg_conn.execute(f"INSERT INTO {s}.people VALUES (1, 'Alice Smith', 'Paris')")
    yield s
    pg_conn.execute(f"DROP SCHEMA {s} CASCADE")


def _spy(schema: str, name: str) -> str:
    """A function ``schema.name(varchar)`` that writes what it is given into ``schema.log``."""
    return (f"CREATE OR REPLACE FUNCTION {schema}.{name}(x varchar) RETURNS text LANGUAGE plpgsql AS "
            f"$$BEGIN INSERT INTO {schema}.r18log VALUES (x); RETURN 'x'; END$$")  # fmt: skip


def test_a_function_under_a_known_name_runs_on_raw_values(pg_conn: Any, own_schema: str) -> None:
    """The oracle, unprotected: with the caller's ``upper(varchar)`` first on its search path, ``upper(full_name)``
    over a varchar column runs the caller's function (an exact match wins over pg_catalog's ``upper(text)``); a
    call qualified by the schema (``s.md5(full_name)``) does too. Either copies the raw name into the caller's log."""
    s = own_schema
    pg_conn.execute(_spy(s, "upper"))
    pg_conn.execute(_spy(s, "md5"))
    raw = pg_connect("psycopg")
    try:
        raw.execute(f"SET search_path = {s}, public")
        raw.execute("SELECT upper(full_name) FROM people WHERE id = 1")
        raw.execute(f"SELECT {s}.md5(full_name) FROM {s}.people WHERE id = 1")
    finally:
        raw.close()
    assert pg_conn.execute(f"SELECT v FROM {s}.r18log").fetchall() == [("Alice Smith",), ("Alice Smith",)]


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE OR REPLACE FUNCTION {s}.upper(x varchar) RETURNS text LANGUAGE sql AS $$ SELECT x $$",
        'CREATE FUNCTION {s}."md5"(x varchar) RETURNS text LANGUAGE sql AS $$ SELECT x $$',
        "/* tidy */ CREATE FUNCTION {s} . lower (x varchar) RETURNS text LANGUAGE sql AS $$ SELECT x $$",
        'CREATE FUNCTION {s}.U&"\\0075pper"(x varchar) RETURNS text LANGUAGE sql AS $$ SELECT x $$',
        "CREATE PROCEDURE {s}.concat(x varchar) LANGUAGE sql AS $$ SELECT 1 $$",
        "CREATE AGGREGATE {s}.max(varchar) (sfunc = textcat, stype = text)",
        "CREATE OPERATOR {s}.|| (leftarg = varchar, rightarg = varchar, function = textcat)",
        "ALTER FUNCTION {s}.tidy(varchar) RENAME TO upper",
    ],
    ids=["function", "quoted", "after-a-comment", "unicode-escapes", "procedure", "aggregate", "operator", "renamed"],
)
def test_a_function_may_not_take_a_name_masking_knows(pg_conn: Any, own_schema: str, sql: str) -> None:
    s = own_schema
    pg_conn.execute(f"CREATE FUNCTION {s}.tidy(x varchar) RETURNS text LANGUAGE sql AS $$ SELECT x $$")
    conn = govern(pg_connect("psycopg"), CURIOUS_AGENT, **STAGING)
    try:
        seen = rows_or_rules(conn, sql.format(s=s))  # beside the warning a definition gets in staging
        assert isinstance(seen, str) and seen.startswith("refused: ['masked-column-predicate', "), seen
    finally:
        conn.close()
    made = pg_conn.execute(
        "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = %s::regnamespace ORDER BY 1", (s,)
    ).fetchall()
    assert made == [("tidy",)], made  # nothing else was made, nothing renamed
    assert pg_conn.execute("SELECT count(*) FROM pg_operator WHERE oprnamespace = %s::regnamespace", (s,)).fetchone() == (0,)


def test_a_call_qualified_by_a_schema_is_not_the_built_in(pg_conn: Any, own_schema: str) -> None:
    """``s.md5(full_name)`` with ``s.md5`` made by someone else (an application's migration): masking read it as
    the built-in md5 (total, its result masked whole) and let the name through to it."""
    s = own_schema
    pg_conn.execute(_spy(s, "md5"))
    conn = govern(pg_connect("psycopg"), CURIOUS_AGENT, **STAGING)
    try:
        seen = rows_or_rules(conn, f"SELECT {s}.md5(full_name) FROM {s}.people WHERE id = 1")
        assert seen == "refused: ['masked-column-copy']", seen
        # the built-in, named by its own schema, still runs (its result masked whole)
        assert rows_or_rules(conn, f"SELECT pg_catalog.md5(full_name) FROM {s}.people WHERE id = 1") == [
            ("[PERSON_NAME]",)
        ]
    finally:
        conn.close()
    assert pg_conn.execute(f"SELECT count(*) FROM {s}.r18log").fetchone() == (0,)


def test_functions_of_ones_own_under_names_of_their_own_keep_working(pg_conn: Any, own_schema: str) -> None:
    s = own_schema
    conn = govern(pg_connect("psycopg"), CURIOUS_AGENT, **STAGING)
    try:
        for sql in (
            f"CREATE FUNCTION {s}.tidy(x varchar) RETURNS text LANGUAGE sql AS $$ SELECT initcap(x) $$",
            f"CREATE AGGREGATE {s}.joined(text) (sfunc = textcat, stype = text)",
            f"ALTER FUNCTION {s}.tidy(varchar) RENAME TO tidied",
            f"CREATE OPERATOR CLASS {s}.rev_ops FOR TYPE int4 USING btree AS OPERATOR 1 >, OPERATOR 2 >=, "
            "OPERATOR 3 =, OPERATOR 4 <=, OPERATOR 5 <, FUNCTION 1 btint4cmp(int4, int4)",
        ):
            conn.cursor().execute(sql)
        assert rows_or_rules(conn, f"SELECT {s}.tidied(city) FROM {s}.people WHERE id = 1") == [("Paris",)]
    finally:
        conn.close()
    made = pg_conn.execute("SELECT proname FROM pg_proc WHERE pronamespace = %s::regnamespace ORDER BY 1", (s,))
    assert made.fetchall() == [("joined",), ("tidied",)]


# -- prepared statements (decision 0363) --------------------------------------------------------------------------
def _prepared_copy(conn: Any, table: str) -> Any:
    """Have the driver prepare a judged read (its rows come back masked), then copy that prepared statement's rows
    into a table of one's own with ``CREATE TABLE ... AS EXECUTE`` and read them."""
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT id, full_name AS city FROM {table} WHERE id = %s", (1,), prepare=True)
        cur.fetchall()
        name = rows_or_rules(conn, "SELECT name FROM pg_prepared_statements WHERE name LIKE '_pg3%'")[0][0]
        made = rows_or_rules(conn, f"CREATE TEMP TABLE r18pg_kept AS EXECUTE {name}(1)")
        return made if isinstance(made, str) else rows_or_rules(conn, "SELECT city FROM r18pg_kept")
    finally:
        conn.rollback()


def test_rows_of_a_statement_the_driver_prepared_are_not_copied(people: dict[str, str]) -> None:
    """An agent in staging, no approval asked: the read is judged and masked, but ``CREATE TEMP TABLE x AS EXECUTE
    _pg3_0(1)`` (which sqlglot reads as a bare CREATE TABLE) put the raw name in a table of its own."""
    seen = pg_variants("psycopg", people, _prepared_copy, **STAGING)
    assert seen["a"][0] == [("Alice Smith",)] and seen["b"][0] == [(SECRETS["b"][0],)], seen
    assert seen["a"][1] == seen["b"][1], seen
    assert isinstance(seen["a"][1], str) and "masked-column-copy" in seen["a"][1], seen


#: a person approved dynamic SQL (or the policy allows it): masking still holds
DYNAMIC = {"policy": {"rules": {"dynamic-sql": "allow"}}}
MALLORY = governed_db.Identity("mallory")
#: name -> (script, what the governed caller sees of its last statement in both copies)
PREPARED = {
    "a-filter-in-the-body": ("PREPARE r18q AS SELECT id FROM {t} WHERE ssn LIKE '5%'; EXECUTE r18q",
                             "refused: ['masked-column-predicate']"),
    "a-name-under-a-clear-name": ("PREPARE r18q AS SELECT id, full_name AS city FROM {t} WHERE id = 1; EXECUTE r18q",
                                  "refused: ['masked-column-copy']"),
    "a-length": ("PREPARE r18q AS SELECT id, length(full_name) FROM {t} WHERE id = 1; EXECUTE r18q",
                 "refused: ['masked-column-copy']"),
    "a-copy-in-the-body": ("PREPARE r18q AS UPDATE {t} SET city = ssn WHERE id = 1; EXECUTE r18q",
                           "refused: ['masked-column-copy']"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(PREPARED), ids=list(PREPARED))
def test_a_prepared_statement_is_judged_as_the_statement_it_prepares(people: dict[str, str], name: str) -> None:
    script, expected = PREPARED[name]

    def see(conn: Any, table: str) -> Any:
        try:
            seen: Any = None
            for sql in script.format(t=table).split("; "):
                seen = rows_or_rules(conn, sql)
                if isinstance(seen, str):
                    break
            if "UPDATE" in script and not isinstance(seen, str):
                seen = rows_or_rules(conn, f"SELECT city FROM {table} WHERE id = 1")
            return seen
        finally:
            rows_or_rules(conn, "DEALLOCATE ALL")
            conn.rollback()

    seen = pg_variants("psycopg", people, see, identity=MALLORY, **DYNAMIC)
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1] == expected, seen


def test_a_prepared_statement_of_clear_columns_is_made_but_not_executed(people: dict[str, str]) -> None:
    """Look-alike (and the limit): a PREPARE of clear columns runs; its EXECUTE is refused, as masking cannot follow
    the rows it returns from there (run the query itself: the driver prepares it, its rows masked)."""
    conn = govern(pg_connect("psycopg", autocommit=False), MALLORY, **DYNAMIC)
    try:
        assert rows_or_rules(conn, f"PREPARE r18c AS SELECT id, city FROM {people['a']} WHERE id < 3") == -1
        assert rows_or_rules(conn, "SELECT name FROM pg_prepared_statements") == [("r18c",)]
        assert rows_or_rules(conn, "EXECUTE r18c") == "refused: ['masked-column-copy']"
        cur = conn.cursor()
        cur.execute(f"SELECT id, city FROM {people['a']} WHERE id < %s ORDER BY id", (3,), prepare=True)
        assert cur.fetchall() == [(1, "Paris"), (2, "Lyon")]
    finally:
        conn.close()


# -- DO blocks (decision 0365) ------------------------------------------------------------------------------------
DO_BLOCKS = {
    "names-the-table": "DO $$BEGIN INSERT INTO {s}.r18log SELECT full_name FROM {t} WHERE id = 1; END$$",
    "builds-its-statement": "DO $$BEGIN EXECUTE $q$INSERT INTO {s}.r18log SELECT full_name FROM $q$ || {q}; END$$",
}


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2", "asyncpg"])
@pytest.mark.parametrize("block", list(DO_BLOCKS), ids=list(DO_BLOCKS))
def test_a_do_block_may_not_read_a_table_with_masked_columns(
    pg_conn: Any, own_schema: str, people: dict[str, str], driver: str, block: str
) -> None:
    """Where dynamic SQL runs (approved, or allowed), a DO block ran plpgsql on the raw rows: it copied the name
    into the caller's log table. It is judged as stored code is (0319): refused when it names a table with masked
    columns or builds its statements at run time."""
    t = people["a"]
    sql = DO_BLOCKS[block].format(s=own_schema, t=t, q=f"'{t} WHERE id = 1'")
    pg_conn.execute(sql)  # the oracle, unprotected
    assert pg_conn.execute(f"SELECT v FROM {own_schema}.r18log").fetchall() == [("Alice Smith",)]
    pg_conn.execute(f"TRUNCATE {own_schema}.r18log")
    if driver == "asyncpg":
        asyncpg = pytest.importorskip("asyncpg")
        from tests.conftest import PG_DSN

        parts = dict(p.split("=", 1) for p in PG_DSN.split())

        async def run() -> Any:
            url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
            conn = govern(await asyncpg.connect(url), MALLORY, **DYNAMIC)
            try:
                return await conn.execute(sql)
            except governed_db.GuardrailViolation as e:
                assert e.decision is not None
                return f"refused: {sorted(e.decision.rules)}"
            finally:
                await conn.close()

        seen = asyncio.run(run())
    else:
        conn = govern(pg_connect(driver), MALLORY, **DYNAMIC)
        try:
            seen = rows_or_rules(conn, sql)
        finally:
            conn.close()
    assert seen == "refused: ['masked-column-copy']", seen
    assert pg_conn.execute(f"SELECT count(*) FROM {own_schema}.r18log").fetchone() == (0,)


def test_a_do_block_over_ones_own_tables_runs(pg_conn: Any, unique: str) -> None:
    """(A table the block names must be one masking can classify: one off the search path, named without its
    schema in the lookup, is refused as unknown -- 0319's fail-closed reading of names.)"""
    t = f"r18pg_{unique}_notes"
    pg_conn.execute(f"CREATE TABLE {t} (v text)")
    conn = govern(pg_connect("psycopg"), MALLORY, **DYNAMIC)
    try:
        assert rows_or_rules(conn, f"DO $$BEGIN INSERT INTO {t} VALUES ('noted'); END$$") == -1
        assert pg_conn.execute(f"SELECT v FROM {t}").fetchall() == [("noted",)]
    finally:
        conn.close()
        pg_conn.execute(f"DROP TABLE {t}")


# -- a new index measures what it stores (decision 0364) ----------------------------------------------------------
#: random letters: pglz finds nothing to compress, so an index entry is as long as the text
_LETTERS = random.Random(18).choices(string.ascii_letters, k=2800)
LONG_TAIL = "".join(_LETTERS[:300])
PAD = "".join(_LETTERS[300:2800])


@pytest.fixture
def wide(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant: 40 people whose row 1's name is 'Alice Smith' (a) or 304 characters long (b), masked alike."""
    names: dict[str, str] = {}
    for v, first in (("a", "Alice Smith"), ("b", "Zoe " + LONG_TAIL)):
        t = f"r18pg_{unique}_w{v}"
        pg_conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, city text)")
        pg_conn.execute(f"INSERT INTO {t} VALUES (1, %s, 'Paris')", (first,))
        pg_conn.execute(f"INSERT INTO {t} SELECT g, 'Person Number ' || g, 'Lyon' FROM generate_series(2, 40) g")
        names[v] = t
    yield names
    for t in names.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


INDEXES = {
    "padded-beside-the-name": (f"UPDATE {{t}} SET city = '{PAD}' WHERE id = 1; "
                               "CREATE INDEX {t}_ix ON {t} (city, full_name) WHERE id = 1"),
    "padded-name-included": (f"UPDATE {{t}} SET city = '{PAD}' WHERE id = 1; "
                             "CREATE INDEX {t}_ix ON {t} (city) INCLUDE (full_name) WHERE id = 1"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(INDEXES), ids=list(INDEXES))
def test_a_new_index_holding_a_masked_column_measures_nothing(wide: dict[str, str], name: str) -> None:
    """With row 1's city padded to 2500 characters, an index entry holding city and the name exceeds the btree's
    2704 bytes exactly when the name is longer than about 190: the build failed (``index row size ... exceeds``) or
    not by the masked name's length."""

    def see(conn: Any, table: str) -> Any:
        try:
            seen: Any = None
            for sql in INDEXES[name].format(t=table).split("; "):
                try:
                    seen = rows_or_rules(conn, sql)
                except Exception as e:
                    return type(e).__name__
                if isinstance(seen, str):
                    break
            return seen
        finally:
            conn.rollback()

    seen = pg_variants("psycopg", wide, see, **STAGING)
    assert seen["a"][0] == -1 and seen["b"][0] == "ProgramLimitExceeded", seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1] == "refused: ['agent-ddl', 'ddl', 'masked-column-constraint']", seen


def test_indexes_that_store_no_masked_value_are_still_made(pg_conn: Any, wide: dict[str, str]) -> None:
    t = wide["a"]
    conn = govern(pg_connect("psycopg"), CURIOUS_AGENT, **STAGING)
    try:
        for sql in (f"CREATE INDEX {t}_city ON {t} (city)", f"CREATE INDEX {t}_hash ON {t} USING hash (full_name)",
                    f"CREATE INDEX {t}_pick ON {t} (id) INCLUDE (city) WHERE city <> 'Rome'"):  # fmt: skip
            assert rows_or_rules(conn, sql) == -1, sql
    finally:
        conn.close()
    made = pg_conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s ORDER BY 1", (t,)).fetchall()
    assert made == [(f"{t}_city",), (f"{t}_hash",), (f"{t}_pick",), (f"{t}_pkey",)]
