"""Red team r14 (rt0301): JSON members read at a constant path (decision 0301) and what they still told (0302).

Each oracle runs the same statements on two tables that differ only in row 1's hidden part of a masked JSON
document (identical masked documents); the raw connection tells them apart, the governed one must not.

* ``format('%s', profile->'contact')``: sqlglot read ``->`` inside any function's arguments as a lambda whose
  parameter hid the column — the member came back in clear (PostgreSQL, DuckDB, and DuckDB view definitions).
* whether a member is NULL said what the masked document hides: a key the scan masks (``profile->>'536-…'``), the
  shape below a key naming personal data (``profile->'ssn'->>1``, ``profile->'phone'->>'4155551201'``), anything
  under a document masked whole (``redact``), also through ``max()``, ``coalesce()``, subscripts and views.
* on PostgreSQL ``json`` (not ``jsonb``) every extraction fails when the text holds ``\\u0000`` anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import CURIOUS_AGENT, govern, observe, pg_connect


def _doc(i: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {
        "phone": f"+1 415 555 {1200 + i}", "tier": "gold" if i % 2 else "basic", "ssn": 536228700 + i,
        "note": f"mail a{i}@example.com", "tags": ["a", "b"], "contact": {"email": f"a{i}@example.com"},
        "prefs": {"theme": "dark"},
    }
    return {**d, **(extra or {})}


#: row 1's hidden parts: the masked documents are equal, the stored ones are not
HIDDEN = {
    "A": {"536-22-8701": "x", "phone": {"4155551201": "home"}, "ssn": ["1", "2"], "contact": {"email": "q@x.org"}},
    "B": {"219-45-1234": "x", "phone": {"2125559876": "home"}, "ssn": ["1"], "contact": {"city": "Paris"}},
}

#: statements an attacker runs; each must be answered the same way on both tables
ATTACKS = [
    "SELECT profile FROM {t} WHERE id = 1",
    "SELECT format('%s', profile->'contact') FROM {t} WHERE id = 1",
    "SELECT concat(profile->'ssn') FROM {t} WHERE id = 1",
    "SELECT coalesce(profile->'ssn', '1') FROM {t} WHERE id = 1",
    "SELECT count(*) FROM {t} WHERE length(profile->'ssn'::text) = 10",
    "SELECT profile->>'536-22-8701' FROM {t} WHERE id = 1",
    "SELECT profile->'phone'->>'4155551201' FROM {t} WHERE id = 1",
    "SELECT profile->'ssn'->>1 FROM {t} WHERE id = 1",
    "SELECT profile->'contact'->>'email' FROM {t} WHERE id = 1",
    "SELECT max(profile->'ssn'->>1) FROM {t}",
    "SELECT (profile->'ssn'->>1)::text FROM {t} WHERE id = 1",
    "SELECT max(x) FROM (SELECT profile->'ssn'->>1 AS x FROM {t}) s",
    "WITH c AS (SELECT profile->'ssn' AS p FROM {t} WHERE id = 1) SELECT p->>1 FROM c",
    "SELECT profile->'ssn'->>1 FROM {t} WHERE id = 1 UNION ALL SELECT 'q'",
]
PG_ATTACKS = [
    *ATTACKS,
    "SELECT profile['ssn'][1] FROM {t} WHERE id = 1",
    "SELECT jsonb_typeof(profile->'ssn') FROM {t} WHERE id = 1",
    "SELECT array_agg(profile->'ssn'->1) FROM {t}",
]
#: innocent reads that must run, with what they must return for row 1
INNOCENT = {
    "SELECT profile->>'tier', profile->'tags'->>0, profile->'prefs'->>'theme' FROM {t} WHERE id = 1":
        [("gold", "a", "dark")],
    "SELECT id, profile->>'tier' FROM {t} ORDER BY id LIMIT 2": [(1, "gold"), (2, "basic")],
}


def _same(run: Callable[[str], Any], raw_run: Callable[[str], Any], tables: dict[str, str],
          attacks: list[str]) -> None:
    a, b = tables["A"], tables["B"]
    differ = [sql for sql in attacks if raw_run(sql.format(t=a)) != raw_run(sql.format(t=b))]
    assert len(differ) >= len(attacks) - 2, differ  # the raw answers are an oracle (all but the refusal-only ones)
    for sql in attacks:
        seen = [str(run(sql.format(t=t))).replace(t, "T") for t in (a, b)]
        assert seen[0] == seen[1], (sql, seen)
        assert "q@x.org" not in seen[0] and "a1@example.com" not in seen[0], (sql, seen)


@pytest.fixture
def pg_tables(unique: str) -> Iterator[tuple[Any, dict[str, str]]]:
    raw = pg_connect("psycopg")
    tables = {c: f"rt0301_{unique}_{c.lower()}" for c in ("A", "B")}
    try:
        for c, t in tables.items():
            raw.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, profile jsonb)")
            with raw.cursor() as cur:
                cur.executemany(f"INSERT INTO {t} VALUES (%s, %s)",
                                [(i, json.dumps(_doc(i, HIDDEN[c] if i == 1 else None))) for i in range(1, 31)])
        yield raw, tables
    finally:
        for t in tables.values():
            raw.execute(f"DROP VIEW IF EXISTS {t}_v")
            raw.execute(f"DROP TABLE IF EXISTS {t}")
        raw.close()


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_postgres_member_reads_tell_nothing_the_masked_document_hides(
    pg_tables: tuple[Any, dict[str, str]], driver: str
) -> None:
    raw, tables = pg_tables
    conn = govern(pg_connect(driver), CURIOUS_AGENT)
    try:
        _same(lambda s: observe(conn, s), lambda s: observe(raw, s), tables, PG_ATTACKS)
        for sql, want in INNOCENT.items():
            assert observe(conn, sql.format(t=tables["A"]))[1] == want, sql
    finally:
        conn.close()


def test_asyncpg_member_reads_tell_nothing_the_masked_document_hides(pg_tables: tuple[Any, dict[str, str]]) -> None:
    import asyncio

    asyncpg = pytest.importorskip("asyncpg")
    from tests.conftest import PG_DSN

    raw, tables = pg_tables
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts.get('port', '5432')}/{parts['dbname']}"
    loop = asyncio.new_event_loop()
    try:
        conn = govern(loop.run_until_complete(asyncpg.connect(url)), CURIOUS_AGENT)

        def run(sql: str) -> Any:
            try:
                return [tuple(r) for r in loop.run_until_complete(conn.fetch(sql))]
            except governed_db.GuardrailViolation as e:
                return f"refused: {e}"
            except Exception as e:
                return f"{type(e).__name__}: {e}"

        try:
            _same(run, lambda s: observe(raw, s), tables, PG_ATTACKS)
            assert run(next(iter(INNOCENT)).format(t=tables["A"])) == [("gold", "a", "dark")]
        finally:
            loop.run_until_complete(conn.close())
    finally:
        loop.close()


def test_postgres_members_of_a_document_masked_whole_are_one_placeholder(
    pg_tables: tuple[Any, dict[str, str]]
) -> None:
    """Under ``redact`` the document is one placeholder: a member that is NULL (no such key) said otherwise."""
    raw, tables = pg_tables
    masking = {"strategies": {f"{t}.profile": "redact" for t in tables.values()}}
    conn = govern(pg_connect("psycopg"), CURIOUS_AGENT, masking=masking)
    try:
        attacks = [*PG_ATTACKS, "SELECT profile->>'536-22-8701' IS NULL FROM {t} WHERE id = 1"]
        _same(lambda s: observe(conn, s), lambda s: observe(raw, s), tables, attacks)
        assert observe(conn, f"SELECT profile->'ssn'->>1 FROM {tables['B']} WHERE id = 1")[1] == [("[FREE_TEXT]",)]
    finally:
        conn.close()


def test_postgres_view_columns_over_members_mask_null_too(pg_tables: tuple[Any, dict[str, str]]) -> None:
    raw, tables = pg_tables
    for t in tables.values():
        raw.execute(f"CREATE VIEW {t}_v AS SELECT id, profile->'ssn'->>1 AS s, "
                    f"format('%s', profile->'contact') AS c FROM {t}")
    conn = govern(pg_connect("psycopg"), CURIOUS_AGENT)
    try:
        views = {c: f"{t}_v" for c, t in tables.items()}

        def run(sql: str) -> str:
            # since decision 0382 the view is judged as its definition, which the refusal quotes: its table blanked
            return str(observe(conn, sql)).replace(f"{tables['A']}.", "T.").replace(f"{tables['B']}.", "T.")

        _same(run, lambda s: observe(raw, s), views,
              ["SELECT s FROM {t} WHERE id = 1", "SELECT c FROM {t} WHERE id = 1"])
    finally:
        conn.close()


def test_postgres_json_not_jsonb_extraction_stays_refused(unique: str) -> None:
    """``json`` keeps the text: ``profile->'tier'`` fails when any string in it holds ``\\u0000``."""
    raw = pg_connect("psycopg")
    tables = {c: f"rt0301_{unique}_j{c.lower()}" for c in ("A", "B")}
    try:
        for c, t in tables.items():
            raw.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, profile json)")
            with raw.cursor() as cur:
                note = "x\u0000y" if c == "A" else "xzy"
                cur.executemany(f"INSERT INTO {t} VALUES (%s, %s)",
                                [(i, json.dumps(_doc(i, {"ssn": note} if i == 1 else None))) for i in range(1, 31)])
        sql = "SELECT profile->'tier' FROM {t} WHERE id = 1"
        assert "UntranslatableCharacter" in str(observe(raw, sql.format(t=tables["A"])))  # the oracle
        assert observe(raw, sql.format(t=tables["B"]))[1] == [("gold",)]
        conn = govern(pg_connect("psycopg"), CURIOUS_AGENT)
        try:
            for t in tables.values():
                assert "refused" in str(observe(conn, sql.format(t=t)))
        finally:
            conn.close()
    finally:
        for t in tables.values():
            raw.execute(f"DROP TABLE IF EXISTS {t}")
        raw.close()


def test_duckdb_member_reads_tell_nothing_the_masked_document_hides() -> None:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    tables = {"A": "rt_a", "B": "rt_b"}
    for c, t in tables.items():
        raw.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, profile JSON)")
        raw.executemany(f"INSERT INTO {t} VALUES (?, ?)",
                        [(i, json.dumps(_doc(i, HIDDEN[c] if i == 1 else None))) for i in range(1, 31)])
        raw.execute(f"CREATE VIEW {t}_v AS SELECT id, concat(profile->'contact') AS c, profile->'ssn'->>1 AS s "
                    f"FROM {t}")
    conn = govern(raw, CURIOUS_AGENT)
    attacks = [a.replace("format('%s', ", "concat(").replace("::text", "::VARCHAR") for a in ATTACKS]
    attacks += ["SELECT c FROM {t}_v WHERE id = 1", "SELECT s FROM {t}_v WHERE id = 1"]
    _same(lambda s: observe(conn, s), lambda s: observe(raw, s), tables, attacks)
    for sql, want in INNOCENT.items():
        assert observe(conn, sql.format(t="rt_a"))[1] == want, sql


def test_json_arrows_inside_calls_are_extractions() -> None:
    """The analysis tree holds the extraction, with its column, where sqlglot built a lambda."""
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect

    from governed_db.sql._arrows import json_arrows

    for gd in ("postgres", "duckdb"):
        d = Dialect.get_or_raise(gd)
        tree = json_arrows(d.parse("SELECT format('%s', profile->'contact'), f((a, b) -> 'x')")[0], d, gd)
        assert isinstance(tree, exp.Expression) and tree.find(exp.Lambda) is None, tree.sql(gd)
        assert {c.name for c in tree.find_all(exp.Column)} == {"profile", "a", "b"}, tree.sql(gd)
    duck = Dialect.get_or_raise("duckdb")
    kept = json_arrows(duck.parse("SELECT list_filter(l, x -> x > 1)")[0], duck, "duckdb")
    assert kept.find(exp.Lambda) is not None  # a real DuckDB lambda stays one


def test_sqlite_and_mariadb_extraction_stays_refused(mysql_conn: Any, mysql_kw: dict[str, Any], unique: str) -> None:
    import sqlite3

    import pymysql

    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE TABLE p (id integer PRIMARY KEY, profile text)")
    lite.executemany("INSERT INTO p VALUES (?, ?)", [(i, json.dumps(_doc(i))) for i in range(1, 31)])
    conn = govern(lite, CURIOUS_AGENT)
    for sql in ("SELECT profile->>'$.tier' FROM p", "SELECT json_extract(profile, '$.tier') FROM p",
                "SELECT printf('%s', profile->'$.ssn') FROM p"):
        assert "refused" in str(observe(conn, sql)), sql
    t = f"rt0301_{unique}_m"
    with mysql_conn.cursor() as cur:
        # a LONGTEXT may hold malformed JSON; MariaDB's JSON (LONGTEXT checked by json_valid) keeps every value
        # valid, and its members read as on jsonb (decision 0318, tests/test_masking_json_members.py)
        cur.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, profile longtext)")
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s)", [(i, json.dumps(_doc(i))) for i in range(1, 31)])
    try:
        my = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
        try:
            for sql in (f"SELECT profile->>'$.tier' FROM {t}", f"SELECT json_extract(profile, '$.tier') FROM {t}"):
                assert "refused" in str(observe(my, sql)), sql
        finally:
            my.close()
    finally:
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


@pytest.mark.parametrize("value", [
    '"a"=>"1", "full_name"=>"Alice Martin"',
    json.dumps([[["a", {"ssn": 536228701}]]]),
    json.dumps({f"k{i}": {"n": [i, "x"]} for i in range(2000)}),
    "\ufffd{not json}\udcff".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
])
def test_spans_documents_still_mask_and_stay_valid(value: str) -> None:
    """The scan after 0301 (keys scanned, text walked as stored): hstore, nested arrays, a big document, text that
    is no JSON all still come back masked and, when JSON, still JSON."""
    from governed_db.masking.strategies.spans import scrub_value

    out = scrub_value(value)
    assert "Alice Martin" not in out and "536228701" not in out
    if value.startswith(("[", "{")):
        assert json.loads(out) is not None


def test_postgres_members_of_a_nearly_empty_table_tell_nothing_either(unique: str) -> None:
    """Two rows: the table's columns are provisional (scanned); a value computed from a member is still one
    placeholder, NULL included."""
    raw = pg_connect("psycopg")
    tables = {c: f"rt0301_{unique}_s{c.lower()}" for c in ("A", "B")}
    try:
        for c, t in tables.items():
            raw.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, profile jsonb)")
            raw.execute(f"INSERT INTO {t} VALUES (1, %s), (2, %s)",
                        (json.dumps(_doc(1, HIDDEN[c])), json.dumps(_doc(2))))
        conn = govern(pg_connect("psycopg"), CURIOUS_AGENT)
        try:
            attacks = ["SELECT max(profile->'ssn'->>1) FROM {t}", "SELECT profile->'ssn'->>1 FROM {t} WHERE id = 1",
                       "SELECT max(profile->'contact'->>'email') FROM {t}"]
            _same(lambda s: observe(conn, s), lambda s: observe(raw, s), tables, attacks)
            assert observe(conn, f"SELECT profile->>'tier' FROM {tables['A']} WHERE id = 1")[1] == [("gold",)]
        finally:
            conn.close()
    finally:
        for t in tables.values():
            raw.execute(f"DROP TABLE IF EXISTS {t}")
        raw.close()
