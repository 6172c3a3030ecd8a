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
