"""Round 21 (blind): an automated extractor of masked characters, and over-masking and types, on four databases.

The extractor asks "is character i of a masked value c?" through a broad generator of comparison routes (filters,
set operations, DISTINCT/GROUP BY, CASE/NULLIF/COALESCE, joins against a table of guesses, LIMIT/OFFSET, ORDER BY,
windows, errors a character decides, string functions, JSON/array builders, writes that copy or compare values,
CTEs and recursive CTEs, subqueries in every clause, lateral joins and each database's own functions). It runs
every route on two copies of a ``customers`` table that differ only in row 1's masked values (masked alike):
where the guess is right on one copy it is wrong on the other, so any difference in what the caller observes
(rows, row count, description, error class and text, refusal) recovers a character. The raw session shows the
same routes DO tell the copies apart, so the test is meaningful.
"""

from __future__ import annotations

import datetime
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import pytest

import governed_db
from tests._redteam import CURIOUS_AGENT, govern

PREFIX = "b21_"
#: row 1 of each copy: masked alike (a name, an e-mail's first letter and domain, an SSN, a phone's last two
#: digits, a note's phone), differing in every character a route asks about
ROW1 = {
    "a": ("Alice Smith", "alice@example.com", "536-22-8726", "+1 415-555-2671", "call me at +1 415-555-2671"),
    "b": (
        "Maria Lopez",
        "andrew@example.com",
        "471-80-1943",
        "+1 303-867-9371",
        "call me at +1 303-867-9371",
    ),
}
MASKED = ("full_name", "email", "ssn", "phone", "note")
FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Susan")
LAST = ("Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Moore", "Taylor", "Clark")
CITIES = ("Lyon", "Boston", "Denver", "Austin", "Seattle")


def _others() -> list[tuple[Any, ...]]:
    """Rows 2..24: realistic customers, the same in both copies."""
    rows = []
    for i in range(2, 25):
        first, last = FIRST[i % 10], LAST[(i * 3) % 10]
        rows.append((i, f"{first} {last}", f"{first.lower()}.{last.lower()}{i}@mail.example.net",
                     f"{200 + i * 7:03d}-{10 + i:02d}-{3000 + i * 13:04d}", f"+1 617-555-{1000 + i * 37:04d}",
                     CITIES[i % 5], f"prefers e-mail, ticket {i}"))  # fmt: skip
    return rows


#: (id, product, version, shipped, city, birth_date, changelog): all exact but the date of birth
ITEMS = [
    (i, f"Widget Pro {i}", f"10.4.2.{i}", f"2024-03-{i:02d}", CITIES[i % 5], f"19{60 + i}-05-{i:02d}",
     f"Release notes for build {i}: fixed a crash on 10.4.2.{i}")
    for i in range(1, 21)
]  # fmt: skip


def _where_differs(field: int) -> tuple[int, str]:
    """The first position (1-based) at which copy a's value of ``field`` differs from copy b's, and a's character."""
    a, b = ROW1["a"][field], ROW1["b"][field]
    i = next(k for k in range(len(a)) if a[k] != b[k])
    return i + 1, a[i]


# ---- the databases -------------------------------------------------------------------------------------------

TEXT = {"sqlite": "TEXT", "duckdb": "VARCHAR", "postgresql": "text", "mariadb": "VARCHAR(200)"}
DDL = "CREATE TABLE {t} (id INTEGER PRIMARY KEY, full_name {x}, email {x}, ssn {x}, phone {x}, city {x}, note {x})"


def _fill(cur: Any, table: str, row1: tuple[str, ...], mark: str, kind: str) -> None:
    cur.execute(DDL.format(t=table, x=TEXT[kind]))
    rows = [(1, *row1[:4], "Paris", row1[4]), *_others()]
    for row in rows:
        cur.execute(f"INSERT INTO {table} VALUES ({', '.join([mark] * 7)})", row)


def _guesses(cur: Any, kind: str, mark: str) -> None:
    """The attacker's own tables: ``b21_g`` of guesses (every character, copy a's values) and a scratch table."""
    cur.execute(f"CREATE TABLE {PREFIX}g (v {TEXT[kind]})")
    for v in [*"0123456789abcdefghijklmnopqrstuvwxyzAMS-@+ .", *ROW1["a"]]:
        cur.execute(f"INSERT INTO {PREFIX}g VALUES ({mark})", (v,))
    cur.execute(f"CREATE TABLE {PREFIX}s (v {TEXT[kind]})")
    # the application's: SSNs under a name that does not say so (labelled by their values), remarks of words only
    cur.execute(f"CREATE TABLE {PREFIX}r (id INTEGER PRIMARY KEY, info {TEXT[kind]}, remark {TEXT[kind]}, "
                f"city {TEXT[kind]})")  # fmt: skip
    for row in _others():
        cur.execute(
            f"INSERT INTO {PREFIX}r VALUES ({mark}, {mark}, {mark}, {mark})",
            (row[0] - 1, row[3], row[6], row[5]),
        )
    # innocent look-alikes beside a date of birth: product names, version strings, ship dates, release notes
    cur.execute(f"CREATE TABLE {PREFIX}i (id INTEGER PRIMARY KEY, product {TEXT[kind]}, version {TEXT[kind]}, "
                f"shipped DATE, city {TEXT[kind]}, birth_date DATE, changelog {TEXT[kind]})")  # fmt: skip
    for row in ITEMS:
        cur.execute(f"INSERT INTO {PREFIX}i VALUES ({', '.join([mark] * 7)})", row)


class Site:
    """One database: a raw and a governed session over the two copies ``b21_ca``/``b21_cb``."""

    def __init__(self, kind: str, raw: Any, gov: Any) -> None:
        self.kind, self.raw, self.gov = kind, raw, gov

    def run(self, conn: Any, script: list[str], sees: Callable[[Any], Any]) -> list[Any]:
        """``script`` on ``conn`` in one transaction, rolled back after: per statement what ``sees`` makes of its
        cursor or of its refusal, up to the first error (``sees`` of the exception)."""
        out: list[Any] = []
        try:
            if self.kind == "duckdb":
                conn.execute("BEGIN TRANSACTION")
            for sql in script:
                # a DuckDB cursor is a connection of its own, outside the transaction begun
                cur = conn if self.kind == "duckdb" else conn.cursor()
                try:
                    cur.execute(sql)
                except Exception as e:
                    out.append(sees(e))
                    if isinstance(e, governed_db.GuardrailViolation):
                        continue  # nothing ran: the transaction goes on
                    break
                out.append(sees(cur))
        finally:
            if self.kind == "duckdb":
                conn.execute("ROLLBACK")  # in SQL, as it began
            else:
                conn.rollback()
        return out

    def see(self, conn: Any, script: list[str]) -> str:
        """What the caller observes of ``script``: descriptions, rows or row counts, refusal and error texts."""
        return repr(self.run(conn, script, _observed)).replace(f"{PREFIX}ca", "T").replace(f"{PREFIX}cb", "T")


def _observed(cur: Any) -> Any:
    if isinstance(cur, governed_db.GuardrailViolation):
        return f"refused: {cur}"
    if isinstance(cur, Exception):
        return f"{type(cur).__name__}: {cur}"
    desc = [(d[0], d[1]) for d in cur.description] if cur.description else None
    return desc, [tuple(r) for r in cur.fetchall()] if desc else cur.rowcount


@pytest.fixture
def site(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Site]:
    kind = request.param
    if kind == "sqlite":
        path = str(tmp_path / "c.db")
        admin = sqlite3.connect(path)
        for v in "ab":
            _fill(admin, f"{PREFIX}c{v}", ROW1[v], "?", kind)
        _guesses(admin, kind, "?")
        admin.commit()
        admin.close()
        raw, gov = sqlite3.connect(path), govern(sqlite3.connect(path), CURIOUS_AGENT)
        yield Site(kind, raw, gov)
        raw.close()
        gov.close()
    elif kind == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        path = str(tmp_path / "c.duckdb")
        admin = duckdb.connect(path)
        for v in "ab":
            _fill(admin, f"{PREFIX}c{v}", ROW1[v], "?", kind)
        _guesses(admin, kind, "?")
        admin.close()
        raw = duckdb.connect(path)
        gov = govern(raw.cursor(), CURIOUS_AGENT)
        yield Site(kind, raw, gov)
        gov.close()
        raw.close()
    elif kind == "postgresql":
        psycopg = pytest.importorskip("psycopg")
        from tests.conftest import PG_DSN

        try:
            admin = psycopg.connect(PG_DSN, autocommit=True)
        except Exception as e:
            pytest.skip(f"PostgreSQL is not reachable: {e}")
        names = [f"{PREFIX}{n}" for n in ("ca", "cb", "g", "s", "r", "i")]
        for t in names:
            admin.execute(f"DROP TABLE IF EXISTS {t}")
        with admin.cursor() as cur:
            for v in "ab":
                _fill(cur, f"{PREFIX}c{v}", ROW1[v], "%s", kind)
            _guesses(cur, kind, "%s")
        raw, gov = psycopg.connect(PG_DSN), govern(psycopg.connect(PG_DSN), CURIOUS_AGENT)
        try:
            yield Site(kind, raw, gov)
        finally:
            raw.close()
            gov.close()
            for t in names:
                admin.execute(f"DROP TABLE IF EXISTS {t}")
            admin.close()
    else:
        pymysql = pytest.importorskip("pymysql")
        from tests.conftest import MYSQL_KW

        try:
            admin = pymysql.connect(autocommit=True, **MYSQL_KW)
        except Exception as e:
            pytest.skip(f"MariaDB is not reachable: {e}")
        names = [f"{PREFIX}{n}" for n in ("ca", "cb", "g", "s", "r", "i")]
        with closing(admin.cursor()) as cur:
            for t in names:
                cur.execute(f"DROP TABLE IF EXISTS {t}")
            for v in "ab":
                _fill(cur, f"{PREFIX}c{v}", ROW1[v], "%s", kind)
            _guesses(cur, kind, "%s")
        raw, gov = pymysql.connect(**MYSQL_KW), govern(pymysql.connect(**MYSQL_KW), CURIOUS_AGENT)
        try:
            yield Site(kind, raw, gov)
        finally:
            raw.close()
            gov.close()
            with closing(admin.cursor()) as cur:
                for t in names:
                    cur.execute(f"DROP TABLE IF EXISTS {t}")
            admin.close()


# ---- the routes ----------------------------------------------------------------------------------------------

ALL = ("sqlite", "duckdb", "postgresql", "mariadb")
NOT_MY = ("sqlite", "duckdb", "postgresql")
PG_DUCK = ("duckdb", "postgresql")

#: predicates "is character i of c equal to x?" (and whole-value and order comparisons); {c} column, {i} position,
#: {x} character, {pre} a pattern of i-1 `_` then x, {full} copy a's whole value, {cmp} the order copy a holds
PREDICATES: list[tuple[tuple[str, ...], str]] = [
    (ALL, "substr({c}, {i}, 1) = '{x}'"),
    (ALL, "{c} LIKE '{pre}%'"),
    (ALL, "{c} = '{full}'"),
    (ALL, "{c} {cmp} '{full}'"),
    (("sqlite",), "instr({c}, '{x}') = {i}"),
    (("sqlite",), "{c} GLOB '{glob}*'"),
    (("postgresql",), "strpos({c}, '{x}') = {i}"),
    (("postgresql",), "{c} ~ '^.{{{j}}}{rx}'"),
    (PG_DUCK, "starts_with({c}, '{prefix}')"),
    (("duckdb",), "regexp_matches({c}, '^.{{{j}}}{rx}')"),
    (("mariadb",), "LOCATE('{x}', {c}) = {i}"),
    (("mariadb",), "{c} REGEXP '^.{{{j}}}{rx}'"),
]

#: routes that turn a predicate {p} (over columns of {t}) into something observable; {g} guesses, {s} scratch
ROUTES: list[tuple[tuple[str, ...], str]] = [
    (ALL, "SELECT id FROM {t} WHERE {p}"),
    (ALL, "SELECT count(*) FROM {t} WHERE id = 1 AND {p}"),
    (ALL, "SELECT CASE WHEN {p} THEN 'yes' ELSE 'no' END FROM {t} WHERE id = 1"),
    (ALL, "SELECT id, CASE WHEN {p} THEN 1 END AS f FROM {t} ORDER BY id"),
    (ALL, "SELECT coalesce(nullif(CASE WHEN {p} THEN 'y' END, 'z'), 'n') FROM {t} WHERE id = 1"),
    (ALL, "SELECT ({p}) FROM {t} WHERE id = 1"),
    (ALL, "SELECT id FROM {t} ORDER BY CASE WHEN {p} THEN 0 ELSE 1 END, id LIMIT 1"),
    (ALL, "SELECT count(*) FROM {t} GROUP BY CASE WHEN {p} THEN 1 ELSE 2 END"),
    (ALL, "SELECT count(*) FROM {t} GROUP BY city HAVING max(CASE WHEN {p} THEN 1 ELSE 0 END) = 1"),
    (ALL, "SELECT DISTINCT CASE WHEN {p} THEN 1 ELSE 2 END FROM {t}"),
    (ALL, "SELECT count(DISTINCT CASE WHEN {p} THEN 1 ELSE 2 END) FROM {t}"),
    (ALL, "SELECT sum(CASE WHEN {p} THEN 1 ELSE 0 END) FROM {t}"),
    (ALL, "SELECT max(CASE WHEN {p} THEN city END) FROM {t}"),
    (ALL, "SELECT id, sum(CASE WHEN {p} THEN 1 ELSE 0 END) OVER () FROM {t} ORDER BY id"),
    (ALL, "SELECT id, row_number() OVER (ORDER BY CASE WHEN {p} THEN 0 ELSE 1 END, id) FROM {t} ORDER BY id"),
    (ALL, "SELECT id FROM {t} WHERE id = 1 AND {p} UNION SELECT 0"),
    (ALL, "SELECT 1 FROM {t} WHERE id = 1 AND {p} UNION ALL SELECT 2"),
    (ALL, "SELECT 1 FROM {t} WHERE id = 1 AND NOT ({p}) INTERSECT SELECT 1"),
    (ALL, "SELECT 1 EXCEPT SELECT 1 FROM {t} WHERE {p}"),
    (ALL, "SELECT (SELECT count(*) FROM {t} WHERE {p})"),
    (ALL, "SELECT id FROM {t} WHERE id = (SELECT CASE WHEN {p} THEN 2 ELSE 3 END FROM {t} WHERE id = 1)"),
    (ALL, "SELECT id FROM {t} WHERE EXISTS (SELECT 1 FROM {t} WHERE id = 1 AND {p}) ORDER BY id LIMIT 1"),
    (ALL, "SELECT count(*) FROM {g} WHERE v IN (SELECT city FROM {t} WHERE {p})"),
    (ALL, "SELECT x.f FROM (SELECT CASE WHEN {p} THEN 1 ELSE 0 END AS f FROM {t} WHERE id = 1) x"),
    (ALL, "WITH x AS (SELECT * FROM {t} WHERE {p}) SELECT count(*) FROM x"),
    (ALL, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3 AND EXISTS "
          "(SELECT 1 FROM {t} WHERE id = 1 AND {p})) SELECT count(*) FROM r"),
    (ALL, "SELECT count(*) FROM {t} JOIN {g} ON {g}.v = {t}.city AND {p}"),
    (ALL, "SELECT count(*) FROM {t} LEFT JOIN {g} ON {p} WHERE {t}.id = 1"),
    (ALL, "SELECT CASE WHEN {p} THEN (SELECT 1 UNION ALL SELECT 2) ELSE 1 END FROM {t} WHERE id = 1"),
    (ALL, "SELECT CASE WHEN {p} THEN 1 / 0 ELSE 1 END FROM {t} WHERE id = 1"),
    (ALL, "SELECT CAST(CASE WHEN {p} THEN 'x' ELSE '1' END AS INTEGER) FROM {t} WHERE id = 1"),
    (ALL, "UPDATE {t} SET city = 'X' WHERE {p}"),
    (ALL, "DELETE FROM {t} WHERE {p}"),
    (ALL, "INSERT INTO {s} SELECT city FROM {t} WHERE {p}"),
    (ALL, "UPDATE {t} SET city = CASE WHEN {p} THEN 'X' ELSE city END WHERE id = 1;SELECT city FROM {t} WHERE id = 1"),
    (ALL, "INSERT INTO {s} SELECT CASE WHEN {p} THEN 'y' ELSE 'n' END FROM {t} WHERE id = 1;SELECT v FROM {s}"),
    (NOT_MY, "SELECT id FROM {t} ORDER BY id LIMIT (SELECT count(*) FROM {t} WHERE {p})"),
    (NOT_MY, "SELECT id FROM {t} ORDER BY id LIMIT 1 OFFSET (SELECT count(*) FROM {t} WHERE {p})"),
    (NOT_MY, "SELECT count(*) FILTER (WHERE {p}) FROM {t}"),
    (PG_DUCK, "SELECT x.f FROM {t}, LATERAL (SELECT 1 AS f WHERE {p}) x"),
    (PG_DUCK, "SELECT array_agg(id ORDER BY id) FILTER (WHERE {p}) FROM {t}"),
    (("postgresql",), "SELECT json_build_object('k', CASE WHEN {p} THEN 1 END) FROM {t} WHERE id = 1"),
    (("postgresql",), "SELECT generate_series(1, CASE WHEN {p} THEN 2 ELSE 1 END) FROM {t} WHERE id = 1"),
    (("postgresql",), "SELECT (CASE WHEN {p} THEN 'x' ELSE '1' END)::int FROM {t} WHERE id = 1"),
    (("duckdb",), "SELECT CASE WHEN {p} THEN error('boom') END FROM {t} WHERE id = 1"),
    (("duckdb",), "SELECT list_filter([1, 2], l -> l = 1 AND {p}) FROM {t} WHERE id = 1"),
    (("duckdb",), "SELECT id FROM {t} QUALIFY sum(CASE WHEN {p} THEN 1 ELSE 0 END) OVER () > 0"),
    (("sqlite",), "SELECT iif({p}, 1, 0) FROM {t} WHERE id = 1"),
    (("sqlite",), "SELECT CASE WHEN {p} THEN json('{{') END FROM {t} WHERE id = 1"),
    (("sqlite",), "SELECT CASE WHEN {p} THEN abs(-9223372036854775807 - 1) END FROM {t} WHERE id = 1"),
    (("sqlite",), "SELECT json_group_array(CASE WHEN {p} THEN id END) FROM {t}"),
    (("mariadb",), "SELECT IF({p}, 1, 0) FROM {t} WHERE id = 1"),
    (("mariadb",), "SELECT JSON_ARRAYAGG(CASE WHEN {p} THEN id END) FROM {t}"),
    (("mariadb",), "SELECT CASE WHEN {p} THEN CAST('x' AS SIGNED) ELSE 1 END FROM {t} WHERE id = 1;SHOW WARNINGS"),
]  # fmt: skip

#: routes that read the value itself (not through a predicate): copies, orders and encodings
VALUE_ROUTES: list[tuple[tuple[str, ...], str]] = [
    (ALL, "SELECT id FROM {t} ORDER BY {c}, id LIMIT 3"),
    (ALL, "SELECT id, {c} FROM {t} ORDER BY id"),
    (ALL, "SELECT upper({c}), substr({c}, {i}, 1) FROM {t} WHERE id = 1"),
    (ALL, "SELECT max({c}), min({c}) FROM {t}"),
    (ALL, "SELECT id FROM {t} WHERE {c} = (SELECT max({c}) FROM {t})"),
    (ALL, "SELECT count(DISTINCT substr({c}, {i}, 1)) FROM {t}"),
    (ALL, "SELECT count(*) FROM {t} GROUP BY substr({c}, {i}, 1) ORDER BY 1"),
    (ALL, "SELECT {c} FROM {t} WHERE id = 1 INTERSECT SELECT v FROM {g}"),
    (ALL, "SELECT substr({c}, {i}, 1) FROM {t} WHERE id = 1 EXCEPT SELECT '{x}'"),
    (ALL, "SELECT count(*) FROM (SELECT {c} FROM {t} WHERE id = 1 UNION SELECT '{full}') u"),
    (ALL, "SELECT nullif(substr({c}, {i}, 1), '{x}') FROM {t} WHERE id = 1"),
    (ALL, "SELECT count(nullif({c}, '{full}')) FROM {t}"),
    (ALL, "SELECT length(replace({c}, '{x}', '')) FROM {t} WHERE id = 1"),
    (ALL, "SELECT count(*) FROM {t} JOIN {g} ON substr({t}.{c}, {i}, 1) = {g}.v"),
    (ALL, "SELECT count(*) FROM {g} WHERE v IN (SELECT {c} FROM {t})"),
    (ALL, "SELECT id, rank() OVER (ORDER BY {c}) FROM {t} ORDER BY id"),
    (ALL, "SELECT id, count(*) OVER (PARTITION BY substr({c}, {i}, 1)) FROM {t} ORDER BY id"),
    (ALL, "UPDATE {t} SET city = {c} WHERE id = 1;SELECT city FROM {t} WHERE id = 1"),
    (ALL, "INSERT INTO {s} SELECT {c} FROM {t} WHERE id = 1;SELECT v FROM {s}"),
    (ALL, "UPDATE {t} SET city = substr({c}, {i}, 1) WHERE id = 1;SELECT count(*) FROM {t} WHERE city = '{x}'"),
    (ALL, "SELECT count(*) FROM {t} WHERE id = 1 AND {c} IN ('{full}', 'x')"),
    (ALL, "SELECT count(*) FROM {t} WHERE id = 1 AND {c} BETWEEN '{full}' AND '{full}'"),
    (ALL, "UPDATE {t} SET city = '4' WHERE id = 1;SELECT count(*) FROM {t} WHERE city = 'x';"
          "SELECT count(*) FROM {t} WHERE id = 1 AND {c} IN ('{full}', 'x')"),
    (("postgresql",), "SELECT string_agg(city, ',' ORDER BY {c}) FROM {t}"),
    (("postgresql",), "SELECT md5({c}) = md5('{full}') FROM {t} WHERE id = 1"),
    (("postgresql",), "SELECT DISTINCT ON (substr({c}, {i}, 1)) id FROM {t} ORDER BY substr({c}, {i}, 1), id"),
    (("postgresql",), "SELECT to_jsonb(x) FROM {t} x WHERE id = 1"),
    (("postgresql",), "SELECT count(*) FROM {t}, unnest(string_to_array({c}, '{x}')) u"),
    (("postgresql",), "SELECT ascii(substr({c}, {i}, 1)) FROM {t} WHERE id = 1"),
    (("duckdb",), "SELECT hash({c}) = hash('{full}') FROM {t} WHERE id = 1"),
    (("duckdb",), "SELECT len(string_split({c}, '{x}')) FROM {t} WHERE id = 1"),
    (("duckdb",), "SELECT list_position(['{x}'], substr({c}, {i}, 1)) FROM {t} WHERE id = 1"),
    (("duckdb",), "SELECT jaro_similarity({c}, '{full}') FROM {t} WHERE id = 1"),
    (("duckdb",), "SELECT struct_pack(a := {c}) FROM {t} WHERE id = 1"),
    (("sqlite",), "SELECT json_object('k', {c}) FROM {t} WHERE id = 1"),
    (("sqlite",), "SELECT unicode(substr({c}, {i}, 1)) FROM {t} WHERE id = 1"),
    (("sqlite",), "SELECT max({c}, '{full}') = {c} FROM {t} WHERE id = 1"),
    (("sqlite",), "SELECT printf('%.{i}s', {c}) FROM {t} WHERE id = 1"),
    (("mariadb",), "SELECT STRCMP({c}, '{full}') FROM {t} WHERE id = 1"),
    (("mariadb",), "SELECT FIELD('{full}', {c}) FROM {t} WHERE id = 1"),
    (("mariadb",), "SELECT FIND_IN_SET('{x}', {c}) FROM {t} WHERE id = 1"),
    (("mariadb",), "SELECT GROUP_CONCAT(id ORDER BY {c}) FROM {t}"),
    (("mariadb",), "SELECT SUM({c}) FROM {t};SHOW WARNINGS"),
]  # fmt: skip


def programs(kind: str) -> Iterator[tuple[str, list[str]]]:
    """Every (route, column, predicate) for ``kind``: the statements of one observation, with a label."""
    tables = {"t": "{t}", "g": f"{PREFIX}g", "s": f"{PREFIX}s"}
    for field, col in enumerate(MASKED):
        i, x = _where_differs(field)
        full_a, full_b = ROW1["a"][field], ROW1["b"][field]
        rx = x if x.isalnum() else f"\\{x}" if x in "+." else x
        fill = {"c": col, "i": i, "j": i - 1, "x": x, "pre": "_" * (i - 1) + x, "full": full_a,
                "cmp": "<=" if full_b > full_a else ">=", "glob": "?" * (i - 1) + x, "rx": rx,
                "prefix": full_a[:i]}  # fmt: skip
        forms = [pred for dialects, pred in PREDICATES if kind in dialects]
        for k, pred in enumerate(forms):
            p = pred.format(**fill)
            for r, (rdialects, route) in enumerate(ROUTES):
                # every route with the first form; each other form through a quarter of them, in turn (the bound)
                if kind in rdialects and (k == 0 or (r + k) % 4 == 0):
                    yield f"{col}: {route} / {pred}", route.format(p=p, **tables).split(";")
        for rdialects, route in VALUE_ROUTES:
            if kind in rdialects:
                yield f"{col}: {route}", route.format(**fill, **tables).split(";")


@pytest.mark.parametrize("site", ALL, indirect=True)
def test_no_route_tells_a_masked_character(site: Site) -> None:
    """No route the generator builds tells copy a's row 1 from copy b's through the governed session, where the raw
    session tells them apart for most routes; bounded to a minute per database."""
    start, told, leaks, n = time.monotonic(), 0, [], 0
    for label, script in programs(site.kind):
        n += 1
        raw = [site.see(site.raw, [s.replace("{t}", f"{PREFIX}c{v}") for s in script]) for v in "ab"]
        gov = [site.see(site.gov, [s.replace("{t}", f"{PREFIX}c{v}") for s in script]) for v in "ab"]
        told += raw[0] != raw[1]
        if gov[0] != gov[1]:
            leaks.append(f"{label}\n   a: {gov[0][:300]}\n   b: {gov[1][:300]}")
    elapsed = time.monotonic() - start
    assert not leaks, f"{len(leaks)} of {n} routes tell a masked character on {site.kind}:\n" + "\n".join(
        leaks
    )
    assert told > n // 2, f"the raw session told the copies apart for only {told} of {n} routes"
    assert elapsed < 60, f"{n} routes took {elapsed:.0f} s on {site.kind}"


# ---- findings ------------------------------------------------------------------------------------------------


def _rows(site: Site, script: list[str]) -> list[Any]:
    """What the governed session gives of each statement of ``script`` (see :meth:`Site.run`): rows, a row count,
    or the rules that refused it."""
    return site.run(site.gov, script, _rows_of)


def _rows_of(cur: Any) -> Any:
    if isinstance(cur, governed_db.GuardrailViolation):
        return f"refused: {sorted(cur.decision.rules) if cur.decision else cur}"
    if isinstance(cur, Exception):
        raise cur
    return [tuple(r) for r in cur.fetchall()] if cur.description else cur.rowcount


def _count(out: Any) -> Any:
    """A write's row count as the caller reads it (DuckDB answers a write with a row holding the count)."""
    return out[0][0] if isinstance(out, list) and len(out) == 1 and len(out[0]) == 1 else out


@pytest.mark.parametrize("site", ALL, indirect=True)
def test_free_text_holding_items_is_not_copied(site: Site) -> None:
    """``UPDATE customers SET city = substr(note, 15, 1)`` copied the first digit of the phone number a note holds
    into a clear column, where no scan recognises it; ``INSERT INTO mine SELECT note ...`` into a table of the
    caller's own (sampled before, or too large for its sample to meet the copy) let ``WHERE v LIKE '%415%'`` find
    it (decision 0407). The note is still read, masked, and a remark that holds no item is still copied."""
    # both sampled first, as an ordinary session's tables are: one sampled in a transaction that wrote is unknown
    _rows(site, [f"SELECT * FROM {PREFIX}r", f"SELECT * FROM {PREFIX}ca"])
    words = _rows(site, [f"UPDATE {PREFIX}r SET city = upper(remark) WHERE id = 1",
                         f"SELECT city FROM {PREFIX}r WHERE id = 1"])  # fmt: skip
    assert [_count(words[0]), words[1]] == [1, [("PREFERS E-MAIL, TICKET 2",)]]
    for copy in (f"UPDATE {PREFIX}ca SET city = substr(note, 15, 1) WHERE id = 1",
                 f"INSERT INTO {PREFIX}s SELECT lower(note) FROM {PREFIX}ca",
                 f"INSERT INTO {PREFIX}s SELECT note FROM {PREFIX}ca WHERE id = 1",
                 f"UPDATE {PREFIX}ca SET city = note WHERE id = 1"):  # fmt: skip
        assert _rows(site, [copy]) == ["refused: ['masked-column-copy']"], copy
    assert _rows(site, [f"SELECT note FROM {PREFIX}ca WHERE id = 1"]) == [[("call me at [PHONE]",)]]


@pytest.mark.parametrize("site", ALL, indirect=True)
def test_a_failed_sample_forgets_no_label(site: Site) -> None:
    """A filter on a clear column after a write in the transaction samples the table again, and that sample
    counts as failed (decision 0275): it made a note's items and a column labelled by its SSNs innocent free text,
    so ``note LIKE '%415%'`` ran and ``substr(info, 1, 3)`` came back clear (decision 0408). Word searches of the
    note and filters on other columns still run."""
    _rows(site, [f"SELECT * FROM {PREFIX}r"])  # both tables settled by a clean sample first
    stir = [
        f"UPDATE {PREFIX}{{t}} SET city = '4' WHERE id = 1",
        f"SELECT count(*) FROM {PREFIX}{{t}} WHERE city = 'x'",
    ]
    note = _rows(site, [s.format(t="ca") for s in stir] + [
        f"SELECT count(*) FROM {PREFIX}ca WHERE note LIKE '%415%'",
        f"SELECT count(*) FROM {PREFIX}ca WHERE note LIKE '%ticket%'",
        f"SELECT substr(note, 15, 1) FROM {PREFIX}ca WHERE id = 1",
        f"SELECT count(*) FROM {PREFIX}ca WHERE id > 20",
    ])  # fmt: skip
    assert note[2] == "refused: ['masked-column-predicate']", note
    assert note[3:] == [[(23,)], [("[FREE_TEXT]",)], [(4,)]], note
    info = _rows(site, [s.format(t="r") for s in stir] + [
        f"SELECT substr(info, 1, 3), info FROM {PREFIX}r WHERE id = 1",
        f"SELECT count(*) FROM {PREFIX}r WHERE id > 20",
    ])  # fmt: skip
    assert info[2:] == [[("[US_SSN]", "[US_SSN]")], [(3,)]], info


@pytest.mark.parametrize("site", ALL, indirect=True)
def test_a_table_first_read_after_a_write_shows_no_cut(site: Site) -> None:
    """A table first read in a transaction that wrote is sampled as failed: its columns are unknown, and a value
    computed from one (``substr(info, 1, 3)`` of an SSN) came back as stored where the scan found nothing
    (decision 0408). Once the transaction is over and the table sampled again, a cut of a remark is exact."""
    first = _rows(site, [f"INSERT INTO {PREFIX}s VALUES ('x')",
                         f"SELECT substr(info, 1, 3), substr(remark, 1, 7) FROM {PREFIX}r WHERE id = 1"])  # fmt: skip
    assert first[1] == [("[FREE_TEXT]", "[FREE_TEXT]")], first
    time.sleep(1.1)  # the table is sampled again after a second
    later = _rows(site, [f"SELECT substr(info, 1, 3), substr(remark, 1, 7) FROM {PREFIX}r WHERE id = 1"])
    assert later == [[("[US_SSN]", "prefers")]]


@pytest.mark.parametrize("site", ALL, indirect=True)
def test_innocent_cells_are_exact_and_masked_values_keep_their_type(site: Site) -> None:
    """Over-masking and types: product names, version strings ``10.4.2.1``, ship dates, cities and release notes
    come back exactly; a date of birth is generalized to its year and is still a date (an ISO date on SQLite, a
    ``date`` through psycopg and PyMySQL, ``datetime64`` in a DuckDB frame); a number computed from a masked
    value is NULL, never a plausible 0."""
    rows = _rows(site, [f"SELECT * FROM {PREFIX}i ORDER BY id"])[0]
    for got, want in zip(rows, ITEMS, strict=True):
        shipped, born = got[3], got[5]
        if site.kind == "sqlite":
            shipped, born = datetime.date.fromisoformat(shipped), datetime.date.fromisoformat(born)
        assert isinstance(born, datetime.date) and isinstance(shipped, datetime.date), got
        assert (got[:3], got[4], got[6]) == (want[:3], want[4], want[6])
        assert shipped.isoformat() == want[3]
        assert born == datetime.date(int(want[5][:4]), 1, 1), got
    customers = _rows(site, [f"SELECT id, city, length(ssn), ssn FROM {PREFIX}ca ORDER BY id"])[0]
    assert [r[1] for r in customers] == ["Paris"] + [r[5] for r in _others()]
    assert {r[2] for r in customers} == {None} and {r[3] for r in customers} == {"[US_SSN]"}
    if site.kind == "duckdb":
        frame = site.gov.execute(f"SELECT i.shipped, i.birth_date, length(c.ssn) AS n, c.city FROM {PREFIX}i i "
                                 f"JOIN {PREFIX}ca c ON c.id = i.id ORDER BY i.id").df()  # fmt: skip
        assert str(frame["shipped"].dtype).startswith("datetime64") and str(
            frame["birth_date"].dtype
        ).startswith("datetime64"), frame.dtypes
        assert str(frame["n"].dtype) == "Int64" and frame["n"].isna().all(), frame.dtypes
        assert frame["birth_date"].dt.month.eq(1).all() and frame["city"].iloc[0] == "Paris"
