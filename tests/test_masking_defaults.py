"""A DEFAULT that is a value, on SQLite and PostgreSQL (decision 0232 read it on MariaDB and DuckDB).

A masked column with a unique key and a DEFAULT that is a value (a placeholder SSN, a common postcode): an INSERT
that leaves the column to its default compares that value with every stored one, and fails exactly when one
equals it. The catalog now says which defaults are values on these databases too, so such an INSERT is refused;
one whose masked column's default is NULL, or that gives the column NULL, still runs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

import governed_db
from governed_db import Identity

AGENT = Identity("curious-agent", kind="agent")
ROWS = [(1, "Alice Smith", "536-22-8726", "Paris"), (2, "Bob Jones", "219-45-1234", "Lyon"),
        (3, "Chen Wei", "412-77-9001", "Nice")]
LEAVE_OUT = ["INSERT INTO {t} (id, city) VALUES (9, 'Nice')", "INSERT INTO {t} (id, ssn, city) VALUES (9, DEFAULT, 'Nice')"]


def _ddl(t: str, default: str | None) -> str:
    ssn_default = f" DEFAULT '{default}'" if default is not None else ""
    return f"CREATE TABLE {t} (id int PRIMARY KEY, full_name text, ssn text UNIQUE{ssn_default}, city text)"


def _observe(run: Callable[[str], Any], sql: str) -> str:
    try:
        run(sql)
        return "ran"
    except governed_db.GuardrailViolation:
        return "refused"
    except Exception as e:  # the database's own answer: the unique key said the default is stored
        return type(e).__name__


def _sqlite(default: str | None) -> tuple[Callable[[str], Any], Callable[[str], Any]]:
    def one() -> sqlite3.Connection:
        c = sqlite3.connect(":memory:", isolation_level=None)
        c.execute(_ddl("t", default))
        c.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", ROWS)
        return c

    gov = governed_db.wrap(one(), identity=AGENT, environment="production", audit=False)
    return one().execute, gov.execute


@pytest.mark.parametrize("template", LEAVE_OUT[:1])  # SQLite has no DEFAULT keyword in VALUES
def test_sqlite_a_default_that_is_a_value_tells_no_equality(template: str) -> None:
    sql = template.format(t="t")
    truth, seen = [], []
    for default in ("536-22-8726", "536-22-8725"):
        raw, gov = _sqlite(default)
        truth.append(_observe(raw, sql))
        seen.append(_observe(gov, sql))
    assert truth[0] != truth[1], truth  # the unique key tells, unprotected
    assert seen == ["refused", "refused"], seen


@pytest.mark.parametrize("default", [None, "536-22-8726"])
def test_sqlite_defaults_that_reveal_nothing_still_run(default: str | None) -> None:
    """A NULL default, or an explicit NULL for the masked column, runs; so does leaving out an unmasked column."""
    _raw, gov = _sqlite(default)
    if default is None:
        assert _observe(gov, LEAVE_OUT[0].format(t="t")) == "ran"
    assert _observe(gov, "INSERT INTO t (id, ssn, city) VALUES (10, NULL, 'Nice')") == "ran"


@pytest.fixture
def pg(pg_conn: Any, pg_dsn: str, unique: str) -> Any:
    import psycopg

    made: list[str] = []

    def make(default: str | None) -> tuple[Callable[[str], Any], Callable[[str], Any], str]:
        t = f"dflt_{unique}_{len(made)}"
        made.append(t)
        pg_conn.execute(_ddl(t, default))
        with pg_conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s, %s)", ROWS)
        raw = psycopg.connect(pg_dsn, autocommit=True)
        gov = governed_db.wrap(psycopg.connect(pg_dsn, autocommit=True), identity=AGENT, environment="production",
                               audit=False)
        return raw.execute, gov.execute, t

    yield make
    for t in made:
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


@pytest.mark.parametrize("template", LEAVE_OUT[:2])
def test_postgres_a_default_that_is_a_value_tells_no_equality(pg: Any, template: str) -> None:
    truth, seen = [], []
    for default in ("536-22-8726", "536-22-8725"):
        raw, gov, t = pg(default)
        sql = template.format(t=t)
        seen.append(_observe(gov, sql))
        truth.append(_observe(raw, sql))
    assert truth[0] != truth[1], truth
    assert seen == ["refused", "refused"], seen


def test_postgres_defaults_that_reveal_nothing_still_run(pg: Any) -> None:
    _raw, gov, t = pg(None)
    assert _observe(gov, LEAVE_OUT[0].format(t=t)) == "ran"
    _raw, gov, t = pg("536-22-8726")
    assert _observe(gov, f"INSERT INTO {t} (id, ssn, city) VALUES (10, NULL, 'Nice')") == "ran"
