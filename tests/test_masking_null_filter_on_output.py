"""``SELECT id, email ... WHERE email IS NOT NULL``: the null test of a column that is also selected runs.

Decision 0209 returns the null test of a plain masked column exactly (every strategy keeps NULL as NULL, so the
masked output shows it anyway), and ``SELECT id ... WHERE email IS NOT NULL`` ran — but selecting the column
too was refused, because a name in WHERE that an output also carries was counted as a use of that output
whatever the clause did with it. An output that *is* the column the name reads is now judged with the clause;
an output of another origin under that name (``SELECT ssn AS email``) still counts, and any real comparison
stays refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db

AGENT = governed_db.Identity("agent-x", kind="agent", on_behalf_of="bob")
ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "Paris"),
    (2, "Bob Jones", None, "219-45-1234", "Lyon"),
    (3, "Carol White", "carol@example.net", "301-77-4410", "Paris"),
]


def _sqlite(table: str) -> Any:
    return sqlite3.connect(":memory:", isolation_level=None)


def _duckdb(table: str) -> Any:
    duckdb = pytest.importorskip("duckdb")
    return duckdb.connect()


@pytest.fixture(params=["sqlite", "duckdb", "postgres", "mysql"])
def db(request: pytest.FixtureRequest, unique: str) -> Iterator[tuple[Any, Any, str, str]]:
    table = f"nf_{unique}"
    kind = request.param
    raw: Any
    if kind == "postgres":
        raw = request.getfixturevalue("pg_conn")
    elif kind == "mysql":
        raw = request.getfixturevalue("mysql_conn")
    else:
        raw = {"sqlite": _sqlite, "duckdb": _duckdb}[kind](table)
    ph = {"sqlite": "?", "duckdb": "?", "postgres": "%s", "mysql": "%s"}[kind]
    cur = raw.cursor()
    cur.execute(
        f"CREATE TABLE {table} (id int primary key, full_name varchar(80), email varchar(80), ssn varchar(20), "
        "city varchar(40))"
    )
    cur.executemany(f"INSERT INTO {table} VALUES ({', '.join([ph] * 5)})", ROWS)
    if kind == "mysql":
        raw.commit()
    try:
        yield raw, governed_db.wrap(raw, identity=AGENT, environment="production", audit=False), table, kind
    finally:
        raw.cursor().execute(f"DROP TABLE {table}")


def _fetch(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()]


@pytest.mark.parametrize(
    ("sql", "nulls"),
    [
        ("SELECT id, email FROM {t} WHERE email IS NOT NULL ORDER BY id", False),
        ("SELECT id, email, city FROM {t} WHERE city = 'Paris' AND email IS NOT NULL ORDER BY id", False),
        ("SELECT id, full_name, email FROM {t} WHERE email IS NULL ORDER BY id", True),
        ("SELECT id, full_name FROM {t} WHERE full_name IS NOT NULL AND id < 3 ORDER BY id", False),
    ],
)
def test_a_selected_column_may_be_tested_for_null(db: tuple[Any, Any, str, str], sql: str, nulls: bool) -> None:
    raw, gov, table, _ = db
    text = sql.format(t=table)
    expected = _fetch(raw, text)
    got = _fetch(gov, text)
    assert [r[0] for r in got] == [r[0] for r in expected]  # the same rows: the database's own filter
    assert expected, "the filter keeps rows"
    for row in got:
        for value in row[1:]:
            assert value not in {"Alice Smith", "alice@example.com", "carol@example.net", "Carol White", "Bob Jones"}
    if nulls:
        assert all(r[2] is None for r in got)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, email FROM {t} WHERE email = '{g}' ORDER BY id",
        "SELECT id, email FROM {t} WHERE email IS NOT NULL AND email < '{g}' ORDER BY id",
        "SELECT id, ssn AS email FROM {t} WHERE email IS NOT NULL AND ssn = '{g}' ORDER BY id",
        "SELECT id, email FROM {t} WHERE upper(email) IS NULL OR email LIKE '{g}%' ORDER BY id",
    ],
)
def test_a_comparison_on_a_selected_column_stays_refused(db: tuple[Any, Any, str, str], sql: str) -> None:
    """Right and wrong guesses: the raw answers differ (a real oracle), governed both are refused."""
    raw, gov, table, _ = db
    answers = []
    for guess in ("alice@example.com", "zed@example.com"):
        text = sql.format(t=table, g=guess)
        answers.append(_fetch(raw, text))
        with pytest.raises(governed_db.GuardrailViolation, match="masked"):
            _fetch(gov, text)
    if "ssn =" not in sql:
        assert answers[0] != answers[1]


def test_an_output_of_another_origin_under_the_name_still_counts(db: tuple[Any, Any, str, str]) -> None:
    """``SELECT upper(email) AS email ... WHERE email ...``: engines that read output names in WHERE (SQLite,
    DuckDB) would test the computed value, so the name counts as that output too (refused). PostgreSQL reads the
    FROM column there (decision 0430): a NULL test of the stored column, which runs, the output still masked."""
    _, gov, table, kind = db
    sql = f"SELECT id, upper(email) AS email FROM {table} WHERE email IS NOT NULL ORDER BY id"
    if kind == "postgres":
        assert "@EXAMPLE.COM" not in repr(_fetch(gov, sql)).upper()
        return
    with pytest.raises(governed_db.GuardrailViolation, match="masked"):
        _fetch(gov, sql)


