"""Leak corpus: aliases, expressions, encodings, subqueries, CTEs, UNION, aggregates and whole rows must not
reveal a raw sensitive value (nor its case changes, space-stripped or hex forms) on SQLite, PostgreSQL or
MariaDB, through any result path — and non-sensitive columns must come back exactly."""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import governed_db
from governed_db import Identity

AGENT = Identity("leak-probe", kind="agent")

DATA = [
    (
        1,
        "Alice Smith",
        "alice.smith@example.com",
        "536-22-8726",
        "Paris",
        "ping me at carol.jones@corp.io",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "4111 1111 1111 1111",
    ),
    (
        2,
        "Bob Jones",
        "bob.jones@example.org",
        "219-45-1234",
        "Lyon",
        "no personal data here",
        "ghp_R4nd0mT0k3nAbCdEfGhIjKlMnOpQrStUv12",
        "5500 0000 0000 0004",
    ),
]
COLUMNS = "id, name, email, ssn, city, notes, api_key, card_number"
SECRETS = [v for row in DATA for v in (row[1], row[2], row[3], row[6], row[7])] + ["carol.jones@corp.io"]


def encodings(value: str) -> set[str]:
    forms = {value, value.lower(), value.upper(), value.replace(" ", ""), value.replace("-", "")}
    raw = value.encode()
    return forms | {raw.hex(), raw.hex().upper()}


FORBIDDEN = {form for s in SECRETS for form in encodings(s)}

COMMON = [
    "SELECT {cols} FROM {t}",
    "SELECT * FROM {t}",
    "SELECT u.* FROM {t} AS u",
    "SELECT email AS e, ssn AS s, name AS n FROM {t}",
    "SELECT upper(email), lower(name), upper(ssn) FROM {t}",
    "SELECT substr(ssn, 1, 7), substr(email, 1, 12) FROM {t}",
    "SELECT replace(ssn, '-', ''), replace(card_number, ' ', ''), replace(name, ' ', '') FROM {t}",
    "SELECT CASE WHEN id > 0 THEN email ELSE city END FROM {t}",
    "SELECT s.e FROM (SELECT email AS e FROM {t}) AS s",
    "WITH c AS (SELECT email, api_key FROM {t}) SELECT * FROM c",
    "SELECT email FROM {t} UNION ALL SELECT name FROM {t}",
    "SELECT city FROM {t} UNION SELECT ssn FROM {t}",
    "SELECT (SELECT email FROM {t} ORDER BY id LIMIT 1) AS first_email",
    "SELECT notes FROM {t}",
    "SELECT trim(api_key), coalesce(card_number, '') FROM {t}",
    "SELECT DISTINCT email FROM {t}",
    "SELECT max(email), min(ssn) FROM {t}",
    "SELECT contact FROM {v}",
]
DIALECT = {
    "sqlite": [
        "SELECT email || '', ssn || '' FROM {t}",
        "SELECT hex(email), hex(ssn), hex(api_key) FROM {t}",
        "SELECT CAST(ssn AS TEXT), CAST(email AS BLOB) FROM {t}",
        "SELECT group_concat(email), group_concat(ssn, ';') FROM {t}",
        "SELECT json_object('e', email, 'n', name) FROM {t}",
        "SELECT json_group_array(email) FROM {t}",
        "SELECT value FROM json_each((SELECT json_group_array(email) FROM {t}))",
    ],
    "postgres": [
        "SELECT email || '', ssn || '' FROM {t}",
        "SELECT encode(convert_to(email, 'UTF8'), 'hex'), encode(convert_to(ssn, 'UTF8'), 'hex') FROM {t}",
        "SELECT ssn::text, CAST(email AS varchar(100)), email::bytea FROM {t}",
        "SELECT string_agg(email, ','), string_agg(ssn, ';') FROM {t}",
        "SELECT json_agg(email), array_agg(ssn) FROM {t}",
        "SELECT row_to_json(u) FROM {t} AS u",
        "SELECT to_jsonb(u) FROM {t} AS u",
        "SELECT json_agg(u) FROM {t} AS u",
        "SELECT u FROM {t} AS u",
        "SELECT x FROM unnest(ARRAY(SELECT email FROM {t})) AS x",
        "SELECT json_build_object('e', email, 'n', name) FROM {t}",
        "UPDATE {t} SET city = city WHERE id = 1 RETURNING email, ssn, city",
    ],
    "mysql": [
        "SELECT CONCAT(email, ''), CONCAT(ssn, '') FROM {t}",
        "SELECT HEX(email), HEX(ssn), TO_BASE64(email) FROM {t}",
        "SELECT CAST(ssn AS CHAR(20)), CAST(email AS BINARY) FROM {t}",
        "SELECT GROUP_CONCAT(email), GROUP_CONCAT(ssn SEPARATOR ';') FROM {t}",
        "SELECT JSON_OBJECT('e', email, 'n', name) FROM {t}",
        "SELECT JSON_ARRAYAGG(email) FROM {t}",
        "SELECT REVERSE(REVERSE(email)) FROM {t}",
    ],
}


#: corpus entries in which a masked value decides something (duplicates removed by UNION or DISTINCT, a
#: cast that can fail): refused since non-interference (docs/decisions/0095), which reveals nothing either
REFUSED = {
    "SELECT city FROM {t} UNION SELECT ssn FROM {t}",
    "SELECT DISTINCT email FROM {t}",
    "SELECT ssn::text, CAST(email AS varchar(100)), email::bytea FROM {t}",
    # MySQL's CAST(x AS CHAR(n)) warns exactly when the value is longer than n: a length oracle (decision 0162)
    "SELECT CAST(ssn AS CHAR(20)), CAST(email AS BINARY) FROM {t}",
}
MASKING_RULES = {"masked-column-predicate", "masked-column-copy"}


def corpus(dialect: str) -> list[str]:
    return COMMON + DIALECT[dialect]


def paths(conn: Any) -> dict[str, Callable[[str], list[Any]]]:
    def fetchall(sql: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(sql)
        return list(cur.fetchall())

    def fetchone(sql: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(sql)
        out = []
        while (row := cur.fetchone()) is not None:
            out.append(row)
        return out

    def fetchmany(sql: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(sql)
        out: list[Any] = []
        while batch := cur.fetchmany(1):
            out.extend(batch)
        return out

    def iterate(sql: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(sql)
        return list(cur)

    def pandas(sql: str) -> list[Any]:
        import pandas as pd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pd.read_sql(sql, conn).to_dict("records")  # type: ignore[no-any-return]

    return {
        "fetchall": fetchall,
        "fetchone": fetchone,
        "fetchmany": fetchmany,
        "iterate": iterate,
        "pandas": pandas,
    }


def leaked(rows: Any) -> list[str]:
    text = repr(rows)
    return sorted(f for f in FORBIDDEN if f in text)


def check_corpus(conn: Any, dialect: str, table: str, view: str) -> None:
    failures = []
    for template in corpus(dialect):
        sql = template.format(t=table, v=view, cols=COLUMNS)
        for name, run in paths(conn).items():
            try:
                rows = run(sql)
            except Exception as e:  # pandas wraps the refusal in its own DatabaseError
                refused = _refusal(e)
                if template in REFUSED and refused is not None and MASKING_RULES & set(refused.decision.rules):
                    continue
                raise
            if template in REFUSED:
                failures.append(f"{name}: {sql} ran, but a masked value decides its result")
            assert rows, f"{sql} returned nothing via {name}"
            found = leaked(rows)
            if found:
                failures.append(f"{name}: {sql} -> {found}")
    assert not failures, "\n".join(failures)


def _refusal(exc: BaseException | None) -> governed_db.GuardrailViolation | None:
    while exc is not None and not isinstance(exc, governed_db.GuardrailViolation):
        exc = exc.__cause__ or exc.__context__
    return exc


def check_exact(conn: Any, table: str) -> None:
    """Non-sensitive columns come back exactly, alone and next to masked ones."""
    for name, run in paths(conn).items():
        rows = run(f"SELECT id, city FROM {table} ORDER BY id")
        values = [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]
        assert values == [(r[0], r[4]) for r in DATA], name
        rows = run(f"SELECT * FROM {table} ORDER BY id")
        first = rows[0]
        if isinstance(first, dict):
            assert first["city"] == "Paris" and first["id"] == 1 and first["notes"] == "ping me at [EMAIL]"
        else:
            assert first[0] == 1 and first[4] == "Paris" and first[5] == "ping me at [EMAIL]"


@pytest.fixture
def sqlite_conn() -> Iterator[tuple[Any, str, str]]:
    raw = sqlite3.connect(":memory:")
    raw.execute(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, email TEXT, ssn TEXT, city TEXT, "
        "notes TEXT, api_key TEXT, card_number TEXT)"
    )
    raw.executemany("INSERT INTO people VALUES (?,?,?,?,?,?,?,?)", DATA)
    raw.execute("CREATE VIEW people_contacts AS SELECT email AS contact FROM people")
    raw.commit()
    yield governed_db.wrap(raw, identity=AGENT, audit=False), "people", "people_contacts"
    raw.close()


def test_sqlite_corpus_does_not_leak(sqlite_conn: tuple[Any, str, str]) -> None:
    """SQLite: no raw value or encoding escapes through any query family and result path."""
    check_corpus(*sqlite_conn[:1], "sqlite", *sqlite_conn[1:])


def test_sqlite_non_sensitive_columns_are_exact(sqlite_conn: tuple[Any, str, str]) -> None:
    """SQLite: over-masking is a bug too."""
    check_exact(sqlite_conn[0], sqlite_conn[1])


@pytest.fixture
def pg_tables(pg_conn: Any, unique: str) -> Iterator[tuple[str, str]]:
    t, v = f"leak_people_{unique}", f"leak_contacts_{unique}"
    pg_conn.execute(
        f"CREATE TABLE {t} (id int PRIMARY KEY, name text, email text, ssn text, city text, "
        f"notes text, api_key text, card_number text)"
    )
    with pg_conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {t} VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", DATA)
    pg_conn.execute(f"CREATE VIEW {v} AS SELECT email AS contact FROM {t}")
    yield t, v
    pg_conn.execute(f"DROP VIEW IF EXISTS {v}")
    pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def test_postgres_corpus_does_not_leak(pg_conn: Any, pg_tables: tuple[str, str]) -> None:
    """PostgreSQL (psycopg 3): no raw value or encoding escapes, including row_to_json and json_agg."""
    conn = governed_db.wrap(pg_conn, identity=AGENT, audit=False)
    check_corpus(conn, "postgres", *pg_tables)
    check_exact(conn, pg_tables[0])


def test_postgres_dict_rows_do_not_leak(pg_dsn: str, pg_tables: tuple[str, str]) -> None:
    """PostgreSQL with psycopg's dict_row and psycopg2's RealDictCursor: masked, shape kept."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(pg_dsn, autocommit=True, row_factory=dict_row) as raw:
        conn = governed_db.wrap(raw, identity=AGENT, audit=False)
        rows = conn.execute(f"SELECT * FROM {pg_tables[0]} ORDER BY id").fetchall()
        assert isinstance(rows[0], dict) and rows[0]["city"] == "Paris" and not leaked(rows)
    extras = pytest.importorskip("psycopg2.extras")
    import psycopg2

    raw2 = psycopg2.connect(pg_dsn)
    raw2.autocommit = True
    try:
        conn2 = governed_db.wrap(raw2, identity=AGENT, audit=False)
        cur = conn2.cursor(cursor_factory=extras.RealDictCursor)
        cur.execute(f"SELECT * FROM {pg_tables[0]} ORDER BY id")
        rows = cur.fetchall()
        assert rows[0]["city"] == "Paris" and not leaked(rows)
        check_corpus(conn2, "postgres", *pg_tables)
    finally:
        raw2.close()


@pytest.fixture
def mysql_tables(mysql_conn: Any, unique: str) -> Iterator[tuple[str, str]]:
    t, v = f"leak_people_{unique}", f"leak_contacts_{unique}"
    with mysql_conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {t} (id int PRIMARY KEY, name varchar(100), email varchar(100), "
            f"ssn varchar(20), city varchar(50), notes text, api_key varchar(100), card_number varchar(30))"
        )
        cur.executemany(f"INSERT INTO {t} VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", DATA)
        cur.execute(f"CREATE VIEW {v} AS SELECT email AS contact FROM {t}")
    yield t, v
    with mysql_conn.cursor() as cur:
        cur.execute(f"DROP VIEW IF EXISTS {v}")
        cur.execute(f"DROP TABLE IF EXISTS {t}")


def test_mariadb_corpus_does_not_leak(mysql_conn: Any, mysql_tables: tuple[str, str]) -> None:
    """MariaDB (pymysql): no raw value or encoding escapes, including HEX, TO_BASE64 and JSON functions."""
    conn = governed_db.wrap(mysql_conn, identity=AGENT, audit=False)
    check_corpus(conn, "mysql", *mysql_tables)
    check_exact(conn, mysql_tables[0])


def test_mariadb_dict_cursor_does_not_leak(mysql_kw: dict[str, Any], mysql_tables: tuple[str, str]) -> None:
    """MariaDB with pymysql's DictCursor: masked, dict rows kept."""
    import pymysql

    raw = pymysql.connect(autocommit=True, cursorclass=pymysql.cursors.DictCursor, **mysql_kw)
    try:
        conn = governed_db.wrap(raw, identity=AGENT, audit=False)
        check_corpus(conn, "mysql", *mysql_tables)
        check_exact(conn, mysql_tables[0])
    finally:
        raw.close()


SQLITE_WRAPPERS = [
    "upper({})",
    "lower({})",
    "trim({})",
    "{} || ''",
    "substr({}, 1)",
    "replace({}, ' ', '')",
    "hex({})",
    "coalesce({}, 'x')",
    "CAST({} AS TEXT)",
    "ifnull({}, '')",
    "ltrim({})",
    "printf('%s', {})",
    "json_quote({})",
    "quote({})",
    "min({})",
    "group_concat({})",
    "CASE WHEN 1 THEN {} END",
    "nullif({}, 'zz')",
    "({})",
]
SQLITE_SHAPES = [
    "SELECT {e} AS out FROM people",
    "SELECT s.out FROM (SELECT {e} AS out FROM people) AS s",
    "WITH c AS (SELECT {e} AS out FROM people) SELECT out FROM c",
    "SELECT city FROM people UNION ALL SELECT {e} FROM people",
    "SELECT (SELECT {e} FROM people p2 WHERE p2.id = people.id) FROM people",
    "SELECT * FROM (SELECT id, {e} AS out, city FROM people) AS s",
]


@settings(max_examples=120, deadline=None)
@given(
    column=st.sampled_from(["name", "email", "ssn", "api_key", "card_number", "notes"]),
    wrappers=st.lists(st.sampled_from(SQLITE_WRAPPERS), min_size=0, max_size=3),
    shape=st.sampled_from(SQLITE_SHAPES),
)
def test_sqlite_composed_queries_do_not_leak(column: str, wrappers: list[str], shape: str) -> None:
    """Any nesting of SQLite functions over a sensitive column, in any query shape, reveals nothing."""
    expr = column
    for w in wrappers:
        expr = w.format(expr)
    sql = shape.format(e=expr)
    try:
        rows = _SQLITE_PROBE.execute(sql).fetchall()
    except sqlite3.OperationalError:  # e.g. an aggregate where SQLite does not allow one
        return
    except governed_db.GuardrailViolation as refused:  # nullif() compares: refusing reveals nothing either
        assert "masked-column-predicate" in refused.decision.rules, sql
        return
    assert not leaked(rows), sql


def _probe() -> Any:
    raw = sqlite3.connect(":memory:", check_same_thread=False)
    raw.execute(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, email TEXT, ssn TEXT, city TEXT, "
        "notes TEXT, api_key TEXT, card_number TEXT)"
    )
    raw.executemany("INSERT INTO people VALUES (?,?,?,?,?,?,?,?)", DATA)
    raw.commit()
    return governed_db.wrap(raw, identity=AGENT, audit=False)


_SQLITE_PROBE = _probe()
