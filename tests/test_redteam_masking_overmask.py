"""Over-refusal and over-masking found by the red team (agent identity, production, zero configuration).

Each innocent statement below was refused or came back masked although it reads no masked value; each test
shows it now runs and returns what the raw connection returns, next to the nearest hostile variant, which is
still refused or masked. Decision 0195.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db

AGENT = governed_db.Identity("agent-x", kind="agent", on_behalf_of="bob")
DDL = "(id int primary key, full_name {t}, email {t}, ssn {t}, city {t})"
ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "Paris"),
    (2, "Bob Jones", "bob.jones@example.org", "219-45-1234", "Lyon"),
]
SECRETS = ("Alice", "alice@", "536-22", "8726", "bob.jones", "219-45")


def _wrap(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)


def _clear(observed: Any) -> list[str]:
    return [s for s in SECRETS if s in repr(observed)]


def _refused(conn: Any, sql: str) -> str:
    cur = conn.cursor()
    with pytest.raises(governed_db.GuardrailViolation) as info:
        cur.execute(sql)
        cur.fetchall()
    return str(info.value)


@pytest.fixture
def pg(pg_conn: Any, pg_dsn: str, unique: str) -> Iterator[tuple[Any, Any, str]]:
    """(raw psycopg connection, governed connection, table) over a table with masked columns and city."""
    import psycopg

    t = f"overref_c_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} " + DDL.format(t="text"))
    with pg_conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {t} VALUES (%s,%s,%s,%s,%s)", ROWS)
    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        yield pg_conn, _wrap(raw), t
    finally:
        raw.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def _rows(conn: Any, sql: str) -> list[Any]:
    cur = conn.cursor()
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()]


# -- 4. computed system values are not scanned as free text ---------------------------------------------------
def test_postgres_relation_filepath_is_not_scanned(pg: tuple[Any, Any, str]) -> None:
    """pg_relation_filepath('t') came back as ``base/[PHONE]``: a storage path over constant arguments is not
    data. Over a masked column the function stays refused (its error says whether a value names a relation)."""
    raw, conn, t = pg
    sql = f"SELECT pg_relation_filepath('{t}'), pg_relation_size('{t}'), pg_size_pretty(pg_total_relation_size('{t}'))"
    assert _rows(conn, sql) == _rows(raw, sql)
    assert "masked-column" in _refused(conn, f"SELECT pg_relation_filepath(email) FROM {t}")
    assert "masked-column" in _refused(conn, f"SELECT pg_relation_filepath((SELECT ssn FROM {t} LIMIT 1))")
    # a function that reads table data from a constant argument is not a storage function
    assert "query_to_xml" in _refused(conn, f"SELECT query_to_xml('SELECT ssn FROM {t}', false, false, '')")


# -- 2. recursive CTEs are traced through their step --------------------------------------------------------
@pytest.fixture
def lite() -> Iterator[tuple[Any, Any, str]]:
    import sqlite3

    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE customers " + DDL.format(t="text"))
    raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?)", ROWS)
    yield raw, _wrap(raw), "customers"
    raw.close()


RECURSIVE_INNOCENT = [
    # a counter next to a masked table: n is a constant, whatever the table holds
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
    "SELECT n, c.city FROM r, {t} c WHERE c.id = 1 AND n > 2 ORDER BY n",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
    "SELECT n, c.city FROM r JOIN {t} c ON c.id = r.n ORDER BY n",
    # a counter named like a masked column
    "WITH RECURSIVE r(email) AS (SELECT 1 UNION ALL SELECT email + 1 FROM r WHERE email < 4) "
    "SELECT email FROM r WHERE email > 1 ORDER BY email",
]


@pytest.mark.parametrize("db", ["pg", "lite"])
@pytest.mark.parametrize("sql", RECURSIVE_INNOCENT)
def test_recursive_counters_run(db: str, sql: str, request: pytest.FixtureRequest) -> None:
    """A recursive counter read with a masked table, or named like a masked column, returns what the raw
    connection returns (it was refused as a masked column)."""
    raw, conn, t = request.getfixturevalue(db)
    assert _rows(conn, sql.format(t=t)) == _rows(raw, sql.format(t=t))


RECURSIVE_HOSTILE = [
    # a masked value carried through the step and tested there
    "WITH RECURSIVE r(e, k) AS (SELECT email, 1 FROM {t} UNION ALL SELECT e, k + 1 FROM r "
    "WHERE e LIKE 'a%' AND k < 3) SELECT k FROM r",
    # a masked value brought in by the step and tested outside
    "WITH RECURSIVE r(e, k) AS (SELECT 'x', 1 UNION ALL SELECT c.ssn, k + 1 FROM r JOIN {t} c ON c.id = r.k "
    "WHERE k < 3) SELECT k FROM r WHERE e LIKE '5%'",
    # the counter decides on a masked value in the step: the counter itself becomes masked
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + length(c.ssn) FROM r, {t} c WHERE n < 30) "
    "SELECT n FROM r WHERE n = 12",
]


@pytest.mark.parametrize("db", ["pg", "lite"])
@pytest.mark.parametrize("sql", RECURSIVE_HOSTILE)
def test_recursive_masked_values_stay_refused(db: str, sql: str, request: pytest.FixtureRequest) -> None:
    """A masked value that flows through a recursive step still may not decide which rows come back."""
    _raw, conn, t = request.getfixturevalue(db)
    assert "masked-column" in _refused(conn, sql.format(t=t))


@pytest.mark.parametrize("db", ["pg", "lite"])
def test_recursive_masked_values_come_back_masked(db: str, request: pytest.FixtureRequest) -> None:
    """Values a recursive step takes from masked columns (carried, or brought in by the step) come back masked."""
    _raw, conn, t = request.getfixturevalue(db)
    carried = _rows(conn, f"WITH RECURSIVE r(e, k) AS (SELECT email, 1 FROM {t} UNION ALL SELECT e, k + 1 FROM r "
                          "WHERE k < 3) SELECT e, k FROM r")  # fmt: skip
    brought = _rows(conn, f"WITH RECURSIVE r(e, k) AS (SELECT 'x', 1 UNION ALL SELECT c.full_name, k + 1 FROM r "
                          f"JOIN {t} c ON c.id = r.k WHERE k < 3) SELECT e, k FROM r")  # fmt: skip
    assert len(carried) == 6 and len(brought) == 3
    assert not _clear(carried) and not _clear(brought), (carried, brought)
    assert "x" not in [e for e, _ in brought]  # a column mixing a masked value is masked whole
