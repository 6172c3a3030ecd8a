"""An automated attacker tries to recover characters of masked values (name, e-mail, SSN, API key) through
every inference technique known to work against masking — set operations, DISTINCT, counts, joins, LIMIT,
writes, sort orders, windows, grouping, CASE/NULLIF, casts and other error oracles, set-returning functions —
on SQLite, PostgreSQL, MariaDB and DuckDB, using only what the library lets through, and recovers nothing.

For each technique, target character and guess, the attacker records everything it can observe (the rows,
or the error's class and message, with the guess itself blanked). A technique reveals a character when the
right guess is observed differently from wrong ones. A control run on a column that is not masked proves
the same attacker does recover characters when nothing stops it. An over-masking check follows: cells of
innocent columns come back exactly (at most 1 % changed).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import governed_db
from governed_db import Identity

ATTACKER = Identity("curious-agent", kind="agent")
SECRETS = {
    "full_name": "Alice Smith",
    "email": "alice@example.com",
    "ssn": "536-22-8726",
    "api_key": "sk_live_51H8abcdEFGHijklMNOPqrstUVwx",
}
ROWS = [
    (1, *SECRETS.values(), "Paris"),
    (2, "Bob Jones", "bob.jones@example.org", "219-45-1234", "ghp_R4nd0mT0k3nAbCdEfGhIjKlMnOpQrStUv12", "Lyon"),
]
POSITIONS = (1, 2)

ALL = frozenset({"sqlite", "postgres", "mysql", "duckdb"})
NOT_MYSQL = ALL - {"mysql"}
PG_DUCK = frozenset({"postgres", "duckdb"})

#: a masked character X (``substr(col, pos, 1)`` of row 1) against a guess G: statements whose observable
#: outcome would differ when G = X. ``{s}`` is a table the attacker may write (nothing sensitive in it).
INNER = "SELECT {X} AS v FROM {t} WHERE id = 1"
TECHNIQUES: list[tuple[str, frozenset[str], tuple[str, ...]]] = [
    ("where", ALL, ("SELECT count(*) FROM {t} WHERE id = 1 AND {X} = {G}",)),
    ("intersect", ALL, (f"SELECT count(*) FROM ({INNER} INTERSECT SELECT {{G}}) q",)),
    ("except", ALL, (f"SELECT count(*) FROM ({INNER} EXCEPT SELECT {{G}}) q",)),
    ("union dedup", ALL, (f"SELECT count(*) FROM ({INNER} UNION SELECT {{G}}) q",)),
    ("union order", ALL, (f"SELECT v FROM ({INNER} UNION SELECT {{G}}) q",)),
    ("distinct", ALL, (f"SELECT count(*) FROM (SELECT DISTINCT v FROM ({INNER} UNION ALL SELECT {{G}}) u) q",)),
    ("distinct rows", ALL, (f"SELECT DISTINCT v FROM ({INNER} UNION ALL SELECT {{G}}) u",)),
    ("count distinct", ALL, (f"SELECT count(DISTINCT v) FROM ({INNER} UNION ALL SELECT {{G}}) u",)),
    ("count nullif", ALL, ("SELECT count(nullif({X}, {G})) FROM {t} WHERE id = 1",)),
    ("count of derived", ALL, (f"SELECT count(w) FROM (SELECT nullif(v, {{G}}) AS w FROM ({INNER}) i) q",)),
    ("natural join", ALL, (f"SELECT count(*) FROM ({INNER}) a NATURAL JOIN (SELECT {{G}} AS v) b",)),
    ("join on", ALL, ("SELECT count(*) FROM {t} a JOIN (SELECT {G} AS v) b ON {X} = b.v WHERE a.id = 1",)),
    ("join using", ALL, (f"SELECT count(*) FROM ({INNER}) a JOIN (SELECT {{G}} AS v) b USING (v)",)),
    ("in subquery", ALL, ("SELECT count(*) FROM {t} WHERE id = 1 AND {G} IN (SELECT {X} FROM {t})",)),
    ("exists", ALL, ("SELECT EXISTS (SELECT 1 FROM {t} WHERE id = 1 AND {X} = {G})",)),
    ("limit", NOT_MYSQL, (f"SELECT id FROM {{t}} LIMIT (SELECT count(*) FROM ({INNER} INTERSECT SELECT {{G}}) q)",)),
    ("group by", ALL, (f"SELECT count(*) FROM (SELECT v FROM ({INNER} UNION ALL SELECT {{G}}) u GROUP BY v) q",)),
    ("having", ALL, ("SELECT count(*) FROM {t} WHERE id = 1 GROUP BY id HAVING max({X}) = {G}",)),
    ("order by", ALL, ("SELECT k FROM (SELECT 1 AS k, {X} AS v FROM {t} WHERE id = 1 UNION ALL SELECT 2, {G}) u ORDER BY v",)),
    ("order by position", ALL, ("SELECT k, v FROM (SELECT 1 AS k, {X} AS v FROM {t} WHERE id = 1 UNION ALL SELECT 2, {G}) u ORDER BY 2",)),
    ("window partition", ALL, (f"SELECT count(*) OVER (PARTITION BY v) FROM ({INNER} UNION ALL SELECT {{G}}) u",)),
    ("window order", ALL, ("SELECT k, row_number() OVER (ORDER BY v) FROM (SELECT 1 AS k, {X} AS v FROM {t} WHERE id = 1 UNION ALL SELECT 2, {G}) u",)),
    ("is null of derived", ALL, ("SELECT count(*) FROM {t} WHERE id = 1 AND nullif({X}, {G}) IS NULL",)),
    ("lag over guess", ALL, ("SELECT k, lag(v) OVER (ORDER BY k) FROM (SELECT 1 AS k, {X} AS v FROM {t} WHERE id = 1 UNION ALL SELECT 2, {G}) u",)),
    ("rollup", NOT_MYSQL - {"sqlite"}, (f"SELECT count(*) FROM (SELECT v FROM ({INNER} UNION ALL SELECT {{G}}) u GROUP BY ROLLUP(v)) q",)),
    ("recursive cte", ALL, ("WITH RECURSIVE r(n, v) AS (SELECT 1, {X} FROM {t} WHERE id = 1 UNION ALL SELECT n + 1, v FROM r WHERE v = {G} AND n < 2) SELECT count(*) FROM r",)),
    ("lateral", frozenset({"postgres"}), ("SELECT count(*) FROM {t} c, LATERAL (SELECT 1 AS one WHERE substr(c.ssn, 1, 1) = {G}) x",)),
    ("values join", NOT_MYSQL, ("SELECT count(*) FROM {t}, (VALUES ({G})) AS v(x) WHERE x = {X}",)),
    ("json keys", frozenset({"postgres"}), ("SELECT count(*) FROM json_each((SELECT json_build_object({X}, 1, {G}, 2) FROM {t} WHERE id = 1))",)),
    ("order by shadowing alias", ALL, ("SELECT v AS id, k FROM (SELECT {X} AS v, 1 AS k, 0 AS id FROM {t} WHERE id = 1 UNION ALL SELECT {G}, 2, 0) u ORDER BY id",)),
    ("group by shadowing alias", ALL, ("SELECT count(*) FROM (SELECT v AS id FROM (SELECT {X} AS v, 0 AS id FROM {t} WHERE id = 1 UNION ALL SELECT {G}, 0) u GROUP BY id) q",)),
    ("truncation warning", frozenset({"mysql"}), ("SELECT CAST(replace({X}, {G}, 'xxxx') AS CHAR(1)) FROM {t} WHERE id = 1", "SELECT @@warning_count")),
    ("group_concat cut", frozenset({"mysql"}), ("SELECT GROUP_CONCAT(replace({X}, {G}, '" + "x" * 1100 + "')) FROM {t} WHERE id = 1", "SELECT @@warning_count")),
    ("group by all", frozenset({"duckdb"}), (f"SELECT count(*) FROM (SELECT v, count(*) FROM ({INNER} UNION ALL SELECT {{G}}) u GROUP BY ALL) q",)),
    ("order by all", frozenset({"duckdb"}), ("SELECT k FROM (SELECT v, k FROM (SELECT {X} AS v, 1 AS k FROM {t} WHERE id = 1 UNION ALL SELECT {G}, 2) u ORDER BY ALL) q",)),
    ("substring pattern", frozenset({"postgres"}), ("SELECT substring({X} FROM {G}) FROM {t} WHERE id = 1",)),
    ("cast of comparison", ALL, ("SELECT CAST(({X} = {G}) AS VARCHAR(5)) FROM {t} WHERE id = 1",)),
    ("lag offset", NOT_MYSQL, ("SELECT lag(city, length(replace({X}, {G}, ''))) OVER (ORDER BY id) FROM {t} WHERE id = 1",)),
    ("sha2 bits", frozenset({"mysql"}), ("SELECT SHA2(city, length(replace({X}, {G}, ''))) FROM {t} WHERE id = 1",)),
    ("numeric warning", frozenset({"mysql"}), ("SELECT SUM(replace({X}, {G}, '1')) FROM {t} WHERE id = 1", "SELECT @@warning_count")),
    ("date warning", frozenset({"mysql"}), ("SELECT YEAR(replace({X}, {G}, '2020-01-01')) FROM {t} WHERE id = 1", "SELECT @@warning_count")),
    ("encoding error", frozenset({"postgres"}), ("SELECT convert_to(replace({X}, {G}, '€'), 'LATIN1') FROM {t} WHERE id = 1",)),
    ("array index", frozenset({"postgres"}), ("SELECT (ARRAY['a', 'b'])[length(replace({X}, {G}, ''))] FROM {t} WHERE id = 1",)),
    ("position from value", ALL, ("SELECT substr('abcdef', {X}) FROM {t} WHERE id = 1", "SELECT 1")),
    ("delete where", ALL, ("!DELETE FROM {s} WHERE id = 4", "INSERT INTO {s} (id, v, n) VALUES (4, 'x', 0)", "DELETE FROM {s} WHERE id = 4 AND EXISTS (SELECT 1 FROM {t} WHERE id = 1 AND {X} = {G})", "SELECT count(*) FROM {s} WHERE id = 4")),
    ("case", ALL, ("SELECT CASE WHEN {X} = {G} THEN 1 ELSE 0 END FROM {t} WHERE id = 1",)),
    ("simple case", ALL, ("SELECT CASE {X} WHEN {G} THEN 'same' ELSE 'other' END FROM {t} WHERE id = 1",)),
    ("comparison", ALL, ("SELECT {X} = {G}, {X} < {G} FROM {t} WHERE id = 1",)),
    ("coalesce nullif", ALL, ("SELECT coalesce(nullif({X}, {G}), 'same') FROM {t} WHERE id = 1",)),
    ("greatest", NOT_MYSQL - {"sqlite"}, ("SELECT greatest({X}, {G}) FROM {t} WHERE id = 1",)),
    ("max over guess", ALL, (f"SELECT max(v), min(v) FROM ({INNER} UNION ALL SELECT {{G}}) u",)),
    ("scalar subquery", ALL, ("SELECT (SELECT count(*) FROM {t} WHERE id = 1 AND {X} = {G})",)),
    ("filter", PG_DUCK, ("SELECT count(*) FILTER (WHERE {X} = {G}) FROM {t}",)),
    ("agg order", PG_DUCK, ("SELECT string_agg(CAST(k AS text), ',' ORDER BY v) FROM (SELECT 1 AS k, {X} AS v FROM {t} WHERE id = 1 UNION ALL SELECT 2, {G}) u",)),
    ("agg order", frozenset({"mysql"}), ("SELECT GROUP_CONCAT(k ORDER BY v) FROM (SELECT 1 AS k, {X} AS v FROM {t} WHERE id = 1 UNION ALL SELECT 2, {G}) u",)),
    ("division", ALL, ("SELECT 1 / length(replace({X}, {G}, '')) FROM {t} WHERE id = 1",)),
    ("cast", ALL - {"mysql"}, ("SELECT CAST(replace({X}, {G}, 'x') AS INTEGER) FROM {t} WHERE id = 1",)),
    ("cast warning", frozenset({"mysql"}), ("SELECT CAST(replace({X}, {G}, 'x') AS SIGNED) FROM {t} WHERE id = 1", "SHOW WARNINGS")),
    ("try_cast null", frozenset({"duckdb"}), ("SELECT CAST(TRY_CAST(replace({X}, {G}, 'x') AS INTEGER) AS VARCHAR) FROM {t} WHERE id = 1",)),
    ("bytea", frozenset({"postgres"}), ("SELECT replace({X}, {G}, '\\')::bytea FROM {t} WHERE id = 1",)),
    ("json parse", frozenset({"sqlite"}), ("SELECT json(replace({X}, {G}, '{{')) FROM {t} WHERE id = 1",)),
    ("json parse", frozenset({"postgres"}), ("SELECT replace({X}, {G}, '{{')::json FROM {t} WHERE id = 1",)),
    ("json path echo", frozenset({"sqlite"}), ("SELECT json_extract('{{}}', '$.' || {X} || '[') FROM {t} WHERE id = 1",)),
    ("regex", frozenset({"postgres"}), ("SELECT 'a' ~ replace({X}, {G}, '(') FROM {t} WHERE id = 1",)),
    ("regex", frozenset({"duckdb"}), ("SELECT regexp_matches('a', replace({X}, {G}, '(')) FROM {t} WHERE id = 1",)),
    ("regex", frozenset({"mysql"}), ("SELECT 'a' REGEXP replace({X}, {G}, '(') FROM {t} WHERE id = 1",)),
    ("like escape", frozenset({"postgres"}), ("SELECT 'a' LIKE replace({X}, {G}, '\\') FROM {t} WHERE id = 1",)),
    ("date_trunc unit", frozenset({"postgres"}), ("SELECT date_trunc(replace({X}, {G}, 'day'), now()) FROM {t} WHERE id = 1",)),
    ("regclass", frozenset({"postgres"}), ("SELECT {X}::regclass FROM {t} WHERE id = 1",)),
    ("xml", frozenset({"postgres"}), ("SELECT ('<' || {X})::xml FROM {t} WHERE id = 1",)),
    ("strptime", frozenset({"duckdb"}), ("SELECT strptime({X}, '%Y') FROM {t} WHERE id = 1",)),
    ("histogram", frozenset({"duckdb"}), (f"SELECT histogram(v) FROM ({INNER} UNION ALL SELECT {{G}}) u",)),
    ("set-returning", frozenset({"postgres"}), ("SELECT count(*) FROM (SELECT unnest(string_to_array({X}, {G})) FROM {t} WHERE id = 1) q",)),
    ("set-returning", frozenset({"duckdb"}), ("SELECT count(*) FROM (SELECT unnest(string_split({X}, {G})) FROM {t} WHERE id = 1) q",)),
    ("series", PG_DUCK, ("SELECT count(*) FROM {t}, generate_series(1, length(replace({X}, {G}, ''))) WHERE id = 1",)),
    ("json_each rows", frozenset({"sqlite"}), ("SELECT count(*) FROM {t}, json_each('[' || replace(replace({X}, {G}, '1,1'), '-', '0') || ']') WHERE id = 1",)),
    (
        "update set",
        ALL,
        (
            "UPDATE {s} SET n = 0 WHERE id = 1",
            f"UPDATE {{s}} SET n = (SELECT count(*) FROM ({INNER} INTERSECT SELECT {{G}}) q) WHERE id = 1",
            "SELECT n FROM {s} WHERE id = 1",
        ),
    ),
    (
        "update where",
        ALL,
        (
            "UPDATE {s} SET n = 0 WHERE id = 1",
            "UPDATE {s} SET n = 1 WHERE id = 1 AND EXISTS (SELECT 1 FROM {t} WHERE id = 1 AND {X} = {G})",
            "SELECT n FROM {s} WHERE id = 1",
        ),
    ),
    (
        "insert select",
        ALL,
        (
            "DELETE FROM {s} WHERE id = 9",
            f"INSERT INTO {{s}} (id, v, n) SELECT 9, 'x', count(*) FROM ({INNER} INTERSECT SELECT {{G}}) q",
            "SELECT n FROM {s} WHERE id = 9",
        ),
    ),
    (
        "replace into select",
        frozenset({"sqlite", "mysql"}),
        (
            "DELETE FROM {s} WHERE id = 8",
            f"REPLACE INTO {{s}} (id, v, n) SELECT 8, 'x', count(*) FROM ({INNER} INTERSECT SELECT {{G}}) q",
            "SELECT n FROM {s} WHERE id = 8",
        ),
    ),
    (
        "replace into copy",
        frozenset({"sqlite", "mysql"}),
        (
            "DELETE FROM {s} WHERE id = 7",
            "REPLACE INTO {s} (id, v, n) SELECT 7, {X}, 0 FROM {t} WHERE id = 1",
            "SELECT count(*) FROM {s} WHERE id = 7 AND v = {G}",
        ),
    ),
    (
        "replace set",
        frozenset({"mysql"}),
        (
            "DELETE FROM {s} WHERE id = 6",
            "REPLACE {s} SET id = 6, v = (SELECT {X} FROM {t} WHERE id = 1), n = 0",
            "SELECT count(*) FROM {s} WHERE id = 6 AND v = {G}",
        ),
    ),
    (
        "replace values",
        frozenset({"mysql", "sqlite"}),
        (
            "DELETE FROM {s} WHERE id = 5",
            "REPLACE INTO {s} (id, v, n) VALUES (5, (SELECT {X} FROM {t} WHERE id = 1), 0)",
            "SELECT count(*) FROM {s} WHERE id = 5 AND v = {G}",
        ),
    ),
]


@dataclass
class Target:
    dialect: str
    conn: Any
    table: str
    scratch: str
    run: Callable[[Any, str], Any]


def _guesses(true: str) -> list[str]:
    """The right character and three wrong ones (one below, one above, one far away)."""
    out = [true]
    for c in (chr(ord(true) - 1), chr(ord(true) + 1), "Z" if true != "Z" else "Y"):
        if c not in out and c.isprintable() and c not in "'\\%_":
            out.append(c)
    return out


def observe(target: Target, statements: tuple[str, ...], column: str, pos: int, guess: str) -> tuple[Any, ...]:
    """Everything the attacker sees for one guess: rows, or the error's class and text (the guess blanked)."""
    seen: list[Any] = []
    quoted = f"'{guess}'"
    for template in statements:
        setup = template.startswith("!")  # run, but its output is the attacker's own doing: not observed
        sql = template.lstrip("!").format(X=f"substr({column}, {pos}, 1)", G=quoted, t=target.table, s=target.scratch)
        if setup:
            target.run(target.conn, sql)
            continue
        try:
            out = target.run(target.conn, sql)
            seen.append(("rows", repr(out).replace(quoted, "<G>").replace(f"'{guess}'", "<G>")))
        except Exception as e:  # the attacker sees the error's class and its text
            text = str(e).replace(quoted, "<G>")
            seen.append(("error", type(e).__name__, text))
    return tuple(seen)


def attack(target: Target, columns: dict[str, str]) -> list[str]:
    """Characters of ``columns`` the attacker tells apart: ``technique: column[pos] = char`` for each."""
    found = []
    for name, dialects, statements in TECHNIQUES:
        if target.dialect not in dialects:
            continue
        for column, value in columns.items():
            for pos in POSITIONS:
                true = value[pos - 1]
                observed = {g: observe(target, statements, column, pos, g) for g in _guesses(true)}
                wrong = [o for g, o in observed.items() if g != true]
                if wrong and all(o != observed[true] for o in wrong):
                    found.append(f"{name}: {column}[{pos}] = {true!r} ({observed[true]!r} vs {wrong[0]!r})")
    return found


def _fetch(conn: Any, sql: str) -> Any:
    cur = conn.cursor()
    cur.execute(sql)
    return cur.fetchall() if cur.description else None


# -- databases ----------------------------------------------------------------------------------------------
DDL = "(id int primary key, full_name {txt}, email {txt}, ssn {txt}, api_key {txt}, city {txt})"
SCRATCH = "(id int primary key, v {txt}, n int)"


def _wrap(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=ATTACKER, environment="production", audit=False)


@pytest.fixture
def sqlite_target() -> Iterator[Target]:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE customers " + DDL.format(txt="text"))
    raw.execute("CREATE TABLE scratch " + SCRATCH.format(txt="text"))
    raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?)", ROWS)
    raw.execute("INSERT INTO scratch VALUES (1, 'x', 0)")
    yield Target("sqlite", _wrap(raw), "customers", "scratch", _fetch)
    raw.close()


@pytest.fixture
def duckdb_target() -> Iterator[Target]:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE customers " + DDL.format(txt="varchar"))
    raw.execute("CREATE TABLE scratch " + SCRATCH.format(txt="varchar"))
    raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?)", [list(r) for r in ROWS])
    raw.execute("INSERT INTO scratch VALUES (1, 'x', 0)")

    def run(conn: Any, sql: str) -> Any:
        rel = conn.execute(sql)
        return rel.fetchall() if rel.description else None

    yield Target("duckdb", _wrap(raw), "customers", "scratch", run)
    raw.close()


@pytest.fixture
def postgres_target(pg_dsn: str, pg_conn: Any, unique: str) -> Iterator[Target]:
    import psycopg

    t, s = f"ex_c_{unique}", f"ex_s_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} " + DDL.format(txt="text"))
    pg_conn.execute(f"CREATE TABLE {s} " + SCRATCH.format(txt="text"))
    with pg_conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {t} VALUES (%s,%s,%s,%s,%s,%s)", ROWS)
    pg_conn.execute(f"INSERT INTO {s} VALUES (1, 'x', 0)")
    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        yield Target("postgres", _wrap(raw), t, s, _fetch)
    finally:
        raw.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}, {s}")


@pytest.fixture
def mysql_target(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> Iterator[Target]:
    import pymysql

    t, s = f"ex_c_{unique}", f"ex_s_{unique}"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} " + DDL.format(txt="varchar(100)"))
        cur.execute(f"CREATE TABLE {s} " + SCRATCH.format(txt="varchar(100)"))
        cur.executemany(f"INSERT INTO {t} VALUES (%s,%s,%s,%s,%s,%s)", ROWS)
        cur.execute(f"INSERT INTO {s} VALUES (1, 'x', 0)")
    raw = pymysql.connect(autocommit=True, **mysql_kw)

    def run(conn: Any, sql: str) -> Any:
        cur = conn.cursor()
        cur.execute(sql)
        rows = cur.fetchall() if cur.description else None
        return rows, conn.show_warnings()  # PyMySQL's own way to read warnings, after every statement

    try:
        yield Target("mysql", _wrap(raw), t, s, run)
    finally:
        raw.close()
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}, {s}")


TARGETS = ["sqlite_target", "postgres_target", "mysql_target", "duckdb_target"]


@pytest.mark.parametrize("fixture", TARGETS)
def test_attacker_recovers_no_character_of_a_masked_value(fixture: str, request: pytest.FixtureRequest) -> None:
    """No technique tells the right character of a masked name, e-mail, SSN or API key from a wrong one."""
    target: Target = request.getfixturevalue(fixture)
    found = attack(target, SECRETS)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("fixture", TARGETS)
def test_same_attacker_recovers_an_unmasked_column(fixture: str, request: pytest.FixtureRequest) -> None:
    """Control: on a column nothing masks (city), the same attacker does tell characters apart."""
    target: Target = request.getfixturevalue(fixture)
    found = attack(target, {"city": "Paris"})
    techniques = {f.split(":")[0] for f in found}
    assert {"where", "intersect", "union dedup", "distinct", "natural join"} <= techniques, sorted(techniques)


# -- routes that returned values in clear ------------------------------------------------------------------
FRAGMENTS = ["Alice", "Smith", "alice@", "536-22", "8726", "51H8abcd", "EFGHijkl"]


def clear(observed: Any) -> list[str]:
    text = repr(observed)
    return [f for f in FRAGMENTS if f in text]


def seen(target: Target, sql: str) -> Any:
    """What the attacker observes for one statement (rows, or the error class and message)."""
    try:
        return target.run(target.conn, sql.format(t=target.table, s=target.scratch))
    except Exception as e:
        return (type(e).__name__, str(e), getattr(e, "args", ()))


CLEAR_ROUTES = {
    "sqlite": [
        "SELECT json_extract('{{}}', '$.' || full_name || '[') FROM {t}",
        "SELECT replace(json_object('n', full_name, 'e', email), 'n', 'x') FROM {t}",
        "SELECT value FROM json_each((SELECT json_group_array(ssn) FROM {t}))",
    ],
    "postgres": [
        "DECLARE leak CURSOR WITH HOLD FOR SELECT full_name AS a, email AS b, ssn AS c, api_key AS d FROM {t}",
        "FETCH ALL FROM leak",
        "SELECT replace(to_jsonb(c)::text, '\"full_name\"', '\"n\"') FROM {t} c",
        "SELECT replace(replace(row_to_json(c)::text, 'ssn', 'q'), 'email', 'm') FROM {t} c",
        "SELECT to_jsonb(c) - 'full_name' || jsonb_build_object('n', c.full_name) FROM {t} c",
        "SELECT key, value FROM {t} c, jsonb_each_text(to_jsonb(c))",
        "SELECT date_trunc(full_name, now()) FROM {t}",
        "SELECT ssn::regclass FROM {t}",
        "SELECT ('<' || full_name)::xml FROM {t}",
    ],
    "duckdb": [
        "SELECT to_json(c)::VARCHAR FROM {t} c",
        "SELECT replace(to_json(c)::VARCHAR, 'full_name', 'n') FROM {t} c",
        "SELECT histogram(full_name), histogram(ssn) FROM {t}",
        "SELECT map_keys(histogram(email)) FROM {t}",
        "SELECT regexp_matches('x', full_name || '(') FROM {t}",
        "SELECT strptime(ssn, '%Y') FROM {t}",
    ],
    "mysql": [
        "SELECT CAST(full_name AS DOUBLE) FROM {t}",
        "SELECT JSON_EXTRACT(full_name, '$') FROM {t}",
        "SHOW WARNINGS",
    ],
}


@pytest.mark.parametrize("fixture", TARGETS)
def test_clear_routes_return_no_value(fixture: str, request: pytest.FixtureRequest) -> None:
    """Cursors, renamed whole-row JSON, histograms and errors that echo values reveal no masked fragment."""
    target: Target = request.getfixturevalue(fixture)
    leaks = {sql: found for sql in CLEAR_ROUTES[target.dialect] if (found := clear(seen(target, sql)))}
    assert not leaks, leaks


def test_postgres_cursor_over_innocent_columns_still_fetches(postgres_target: Target) -> None:
    """DECLARE ... CURSOR over columns nothing masks runs, and FETCH/MOVE return exact values."""
    conn, t = postgres_target.conn, postgres_target.table
    conn.execute(f"DECLARE fine CURSOR WITH HOLD FOR SELECT id, city FROM {t} ORDER BY id")
    assert conn.execute("FETCH 1 FROM fine").fetchall() == [(1, "Paris")]
    conn.execute("MOVE 1 IN fine")
    conn.execute("CLOSE fine")
    with pytest.raises(governed_db.GuardrailViolation, match="masked-column-copy"):
        conn.execute(f"DECLARE bad CURSOR WITH HOLD FOR SELECT id, ssn FROM {t}")


def test_psycopg_row_factories_receive_masked_values(postgres_target: Target) -> None:
    """class_row(dataclass), kwargs_row and a custom factory get masked values and build their rows."""
    import dataclasses

    from psycopg.rows import class_row, kwargs_row

    @dataclasses.dataclass
    class Customer:
        id: int
        full_name: str
        email: str
        ssn: str
        api_key: str
        city: str

    conn, t = postgres_target.conn, postgres_target.table
    rows = conn.cursor(row_factory=class_row(Customer)).execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
    assert isinstance(rows[0], Customer) and rows[0].city == "Paris" and rows[0].id == 1
    assert rows[0].ssn == "[US_SSN]" and not clear(rows)
    made = conn.cursor(row_factory=kwargs_row(lambda **kw: kw)).execute(f"SELECT * FROM {t}").fetchall()
    assert made[0]["city"] == "Paris" and not clear(made)
    given: list[Any] = []

    def custom(cursor: Any) -> Any:
        def make(values: Any) -> Any:
            given.append(tuple(values))
            return ("row", *values)

        return make

    with conn.transaction():
        named = conn.cursor(name="factory_probe", row_factory=class_row(Customer))
        named.execute(f"SELECT * FROM {t} ORDER BY id")
        server_rows = named.fetchmany(5)
        named.close()
    assert server_rows[0].city == "Paris" and server_rows[0].full_name == "[PERSON_NAME]" and not clear(server_rows)
    cur = conn.cursor()
    cur.row_factory = custom
    out = cur.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
    assert out[0][:2] == ("row", 1) and given and not clear(given) and not clear(out)
    assert cur.row_factory is custom


def test_pymysql_show_warnings_is_scrubbed(mysql_target: Target, mysql_conn: Any) -> None:
    """``conn.show_warnings()`` after a conversion hidden in a view quotes no masked value: since decision 0382 the
    view is judged as its definition, so the conversion (whether it warns tells the value) is refused before it
    runs, and there is no warning to quote."""
    view = f"{mysql_target.table}_v"
    with mysql_conn.cursor() as admin:
        admin.execute(f"CREATE VIEW {view} AS SELECT CAST(full_name AS DOUBLE) AS d FROM {mysql_target.table}")
    try:
        out = seen(mysql_target, f"SELECT d FROM {view}")
        assert isinstance(out, tuple) and f"in the definition of view {view}" in out[1], out
        assert not clear(out), out
        warnings = mysql_target.conn.show_warnings()
        assert not clear(warnings), warnings
    finally:
        mysql_target.conn.rollback()
        with mysql_conn.cursor() as admin:
            admin.execute(f"DROP VIEW IF EXISTS {view}")


# -- innocent queries keep running, innocent cells come back exactly ---------------------------------------
INNOCENT = [
    "SELECT * FROM {t}",
    "SELECT full_name, email FROM {t} WHERE id = 1",
    "SELECT city, count(*) FROM {t} GROUP BY city ORDER BY city",
    "SELECT count(*), count(email), max(id), min(city) FROM {t}",
    "SELECT email FROM {t} UNION ALL SELECT email FROM {t}",
    "SELECT upper(email), substr(ssn, 1, 3), full_name || ' (' || city || ')' FROM {t}",
    "WITH x AS (SELECT id, email FROM {t}) SELECT * FROM x WHERE id > 0 ORDER BY id",
    "SELECT id, email, row_number() OVER (ORDER BY id) FROM {t}",
    "SELECT * FROM {t} ORDER BY id LIMIT 10 OFFSET 0",
    "SELECT id, ssn FROM {t} WHERE city IN (SELECT city FROM {t} WHERE id = 1)",
    "SELECT DISTINCT city FROM {t}",
    "SELECT city FROM {t} INTERSECT SELECT city FROM {t}",
    "SELECT city FROM {t} UNION SELECT 'Rome'",
    "SELECT a.email, b.city FROM {t} a JOIN {t} b ON a.id = b.id WHERE b.city <> 'Oslo'",
    "SELECT EXISTS (SELECT 1 FROM {t} WHERE id = 1)",
    "SELECT CAST(id AS TEXT), email, coalesce(city, 'none') FROM {t}",
    "SELECT id, CASE WHEN city = 'Paris' THEN 'fr' ELSE 'other' END, api_key FROM {t}",
    "SELECT id, max(email), count(*) FROM {t} GROUP BY id HAVING count(*) > 0",
    "SELECT id, lag(email) OVER (ORDER BY id), first_value(full_name) OVER (ORDER BY id) FROM {t}",
    "SELECT id FROM {t} WHERE email IS NOT NULL AND ssn IS NOT NULL ORDER BY id",
    "UPDATE {s} SET n = n + 1 WHERE id = 1",
    "SELECT n FROM {s} WHERE id = 1",
]


@pytest.mark.parametrize("fixture", TARGETS)
def test_innocent_queries_keep_running(fixture: str, request: pytest.FixtureRequest) -> None:
    """Plain selects of masked columns, and filters, joins, sorts, sets and aggregates on other columns run."""
    target: Target = request.getfixturevalue(fixture)
    refused = {}
    for sql in INNOCENT:
        if target.dialect == "mysql":
            # MariaDB reads ``||`` as a logical OR (no PIPES_AS_CONCAT), which converts the name to a number with a
            # warning: that is no innocent use of a masked value there (decision 0216); CONCAT is
            sql = sql.replace("full_name || ' (' || city || ')'", "CONCAT(full_name, ' (', city, ')')")
        out = seen(target, sql)
        if isinstance(out, tuple) and len(out) == 3 and isinstance(out[1], str) and "refused" in out[1]:
            refused[sql] = out[1]
        assert not clear(out), (sql, out)
    assert not refused, refused


def _innocent_table(rows: int) -> list[tuple[Any, ...]]:
    statuses = ["shipped", "pending", "returned", "cancelled"]
    products = ["Widget Pro", "Gadget 2000", "Sprocket", "Flux capacitor", "Thingamajig XL"]
    return [
        (
            i,
            f"SKU-{i:05d}",
            products[i % len(products)],
            i % 17,
            round(3.5 + i * 0.25, 2),
            statuses[i % len(statuses)],
            f"batch {i % 9} packed in crate {i % 13}, checked twice",
            f"2025-0{1 + i % 9}-1{i % 10}",
        )
        for i in range(1, rows + 1)
    ]


def test_innocent_cells_are_not_masked_over_one_percent() -> None:
    """Over-masking: of the innocent cells a set of queries returns (next to masked ones too), <= 1 % change."""
    raw = sqlite3.connect(":memory:")
    raw.execute(
        "CREATE TABLE orders (id int primary key, sku text, product text, qty int, price real, status text, "
        "note text, shipped_on text)"
    )
    raw.executemany("INSERT INTO orders VALUES (?,?,?,?,?,?,?,?)", _innocent_table(300))
    raw.execute("CREATE TABLE customers " + DDL.format(txt="text"))
    raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?)", ROWS)
    raw.commit()
    conn = _wrap(raw)
    queries = [
        "SELECT * FROM orders ORDER BY id",
        "SELECT o.sku, o.product, o.qty, o.status, o.note FROM orders o WHERE o.qty > 3 ORDER BY o.id",
        "SELECT status, count(*), sum(qty), avg(price) FROM orders GROUP BY status ORDER BY status",
        "SELECT o.id, o.product, o.shipped_on, c.city FROM orders o JOIN customers c ON c.id = 1 + o.id % 2 "
        "ORDER BY o.id",
        "SELECT DISTINCT product FROM orders ORDER BY product",
    ]
    total = changed = 0
    for sql in queries:
        expected = raw.execute(sql).fetchall()
        got = conn.execute(sql).fetchall()
        assert len(got) == len(expected), sql
        for want_row, got_row in zip(expected, got, strict=True):
            for want, cell in zip(want_row, got_row, strict=True):
                total += 1
                changed += want != cell
    assert total > 3000
    assert changed / total <= 0.01, f"{changed} of {total} innocent cells changed"


ECHOES = [
    "JSON path error near 'Alice Smith['",
    'unit "alice@example.com" not recognized for type timestamp with time zone',
    'relation "536-22-8726" does not exist',
    "invalid XML content\nDETAIL:  line 1: StartTag: invalid element name\n<Alice Smith\n ^",
    'Could not parse string "536-22-8726" according to format specifier "%Y"',
    'Invalid Input Error: Invalid regular expression "Alice Smith(": missing )',
]


@pytest.mark.parametrize("message", ECHOES)
def test_echoing_error_messages_are_scrubbed(message: str) -> None:
    """Messages of the errors that quote a value (JSON paths, units, relations, XML, parse, regex) are blanked."""
    from governed_db.masking.guard import scrub_message

    assert not clear(scrub_message(message, conversions=True))


@pytest.mark.parametrize(
    "expression",
    ["ssn::regclass", "('<' || full_name)::xml", "date_trunc(email, now())", "to_date(full_name, 'YYYY')"],
)
def test_postgres_errors_of_hidden_computations_are_scrubbed(
    postgres_target: Target, pg_conn: Any, expression: str
) -> None:
    """A view that fails on a masked value (regclass, xml, date units...) fails without echoing it: since decision
    0382 the view is judged as its definition, so the computation that may fail is refused before it runs."""
    view = f"{postgres_target.table}_v"
    pg_conn.execute(f"CREATE VIEW {view} AS SELECT id, {expression} AS out FROM {postgres_target.table}")
    try:
        out = seen(postgres_target, f"SELECT * FROM {view}")
        assert isinstance(out, tuple) and len(out) == 3, out  # it failed (class, message, args)
        assert not clear(out), out
        assert out[0] == "GuardrailViolation" and f"in the definition of view {view}" in out[1], out
    finally:
        pg_conn.execute(f"DROP VIEW IF EXISTS {view}")


@pytest.mark.parametrize("fixture", ["sqlite_target", "mysql_target"])
def test_replace_copies_masked_columns_refused_innocent_ones_run(fixture: str, request: pytest.FixtureRequest) -> None:
    """REPLACE INTO ... SELECT / VALUES ((SELECT ...)) of a masked column is a copy; of a plain column it runs."""
    target: Target = request.getfixturevalue(fixture)
    ok = [
        "REPLACE INTO {s} (id, v, n) VALUES (5, 'x', 0)",
        "REPLACE INTO {s} (id, v, n) SELECT 7, city, 0 FROM {t} WHERE id = 1",
        "REPLACE INTO {s} (id, v, n) VALUES (8, (SELECT city FROM {t} WHERE id = 1), 0)",
    ]
    for sql in ok:
        target.run(target.conn, sql.format(s=target.scratch, t=target.table))
    got = seen(target, "SELECT id, v FROM {s} WHERE id IN (5, 7, 8) ORDER BY id")
    rows = got[0] if target.dialect == "mysql" else got
    assert [tuple(r) for r in rows] == [(5, "x"), (7, "Paris"), (8, "Paris")]
    refused = [
        "REPLACE INTO {s} (id, v, n) SELECT 9, email, 0 FROM {t} WHERE id = 1",
        "REPLACE INTO {s} (id, v, n) VALUES (9, (SELECT ssn FROM {t} WHERE id = 1), 0)",
    ]
    if target.dialect == "mysql":
        refused.append("REPLACE {s} SET id = 9, v = (SELECT full_name FROM {t} WHERE id = 1), n = 0")
    for sql in refused:
        with pytest.raises(governed_db.GuardrailViolation, match="masked-column-copy"):
            target.run(target.conn, sql.format(s=target.scratch, t=target.table))


def test_unmask_grant_keeps_full_access() -> None:
    """An identity with an unmask grant may compare, sort, deduplicate and cast masked columns as before."""
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE customers " + DDL.format(txt="text"))
    raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?)", ROWS)
    dba = governed_db.wrap(
        raw,
        identity=Identity("dana", roles=["dba"]),
        environment="production",
        audit=False,
        masking={"unmask": [{"role": "dba"}]},
    )
    assert dba.execute(
        "SELECT count(*) FROM (SELECT substr(ssn, 1, 1) FROM customers WHERE id = 1 INTERSECT SELECT '5') q"
    ).fetchall() == [(1,)]
    assert dba.execute("SELECT DISTINCT email FROM customers ORDER BY email").fetchall()[0] == (SECRETS["email"],)
    assert dba.execute("SELECT id FROM customers WHERE full_name LIKE 'Ali%'").fetchall() == [(1,)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM customers WHERE email = ?",
        "SELECT count(*) FROM (SELECT email FROM customers INTERSECT SELECT ?) q",
        "SELECT id FROM customers ORDER BY email",
    ],
)
def test_refusals_name_the_column_and_the_way_forward(sqlite_target: Target, sql: str) -> None:
    """No silent change of meaning: a parameterised filter on a masked column is refused, naming the column
    and what to do (select it plainly, or ask for an unmask grant)."""
    with pytest.raises(governed_db.GuardrailViolation) as info:
        sqlite_target.conn.execute(sql, ("alice@example.com",) if "?" in sql else ()).fetchall()
    text = str(info.value)
    assert "customers.email" in text and "select the column plainly" in text and "unmask grant" in text
    assert info.value.decision.rules == ("masked-column-predicate",)
