"""Over-refusal and over-masking found by an analytics agent's workload (innocent round 10), with hostile
neighbours.

``WHERE COALESCE(email, phone) IS NOT NULL`` ("customers we can reach") was refused: the null test of a
COALESCE of plain columns of one declared type is the null tests of the columns, which decision 0209 returns
exactly (decision 0255). A COALESCE that computes, mixes types or is compared stays a use of the masked values.
MariaDB ``UNIX_TIMESTAMP(created_at)`` came back 0 (scanned as text, read as a phone number): exact over a date.
The DuckDB ``DESCRIBE <query>`` fix (decision 0254) is tested in tests/test_masking_innocent_workload.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests import _innocent_workload as wl

INNOCENT = (
    "SELECT count(*) FROM {c} WHERE COALESCE(email, phone) IS NOT NULL",
    "SELECT id FROM {c} WHERE COALESCE(phone, notes) IS NULL ORDER BY id",
    "SELECT id, COALESCE(email, phone) IS NULL FROM {c} ORDER BY id",
    "SELECT c.tier, count(*) FROM {c} c WHERE (COALESCE(c.email, c.phone, c.ssn)) IS NOT NULL GROUP BY 1 ORDER BY 1",
)
#: each tells a right guess from a wrong one on the raw connection (or converts a value, an error oracle)
HOSTILE = (
    "SELECT count(*) FROM {c} WHERE COALESCE(NULLIF(email, '{g}'), phone) IS NULL",
    "SELECT count(*) FROM {c} WHERE COALESCE(email, phone) = '{g}'",
    "SELECT count(*) FROM {c} WHERE COALESCE(CASE WHEN email = '{g}' THEN NULL ELSE email END, phone) IS NULL",
    "SELECT count(*) FROM {c} c JOIN {f} f ON f.customer_id = c.id WHERE COALESCE(f.salary, c.ssn) IS NULL "
    "AND c.email <> '{g}'",
    "SELECT count(*) FROM {c} c JOIN {f} f ON f.customer_id = c.id WHERE COALESCE(f.salary, c.ssn) IS NULL",
)
#: Eve has an e-mail and no phone: the NULLIF neighbour counts her only when the guess is her e-mail
RIGHT, WRONG = "eve.adams@example.com", "zed@example.com"


@pytest.fixture(params=["lite", "duck", "pg", "my"])
def db(request: pytest.FixtureRequest) -> Iterator[tuple[str, Any, str]]:
    name = request.param
    if name == "lite":
        raw: Any = sqlite3.connect(":memory:", isolation_level=None)
    elif name == "duck":
        raw = pytest.importorskip("duckdb").connect()
    elif name == "pg":
        import psycopg

        raw = psycopg.connect(request.getfixturevalue("pg_dsn"), autocommit=True)
    else:
        import pymysql

        raw = pymysql.connect(autocommit=True, **request.getfixturevalue("mysql_kw"))
    prefix = f"r10_{request.getfixturevalue('unique')}_"
    wl.create(raw, name, prefix)
    try:
        yield name, raw, prefix
    finally:
        wl.drop(raw, prefix)
        raw.close()


def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()]


def test_null_test_of_a_coalesce_of_columns_is_exact(db: tuple[str, Any, str]) -> None:
    name, raw, prefix = db
    names = wl._names(prefix)
    conn = governed_db.wrap(raw, identity=wl.AGENT, environment="production", audit=False)
    for sql in INNOCENT:
        text = sql.format(**names)
        got, want = _rows(conn, text), _rows(raw, text)
        assert got == want and want, (name, text)
    # the customers with some contact are 6 of 6 (Dan has no e-mail, Eve no phone): the answer is the raw one
    assert _rows(conn, INNOCENT[0].format(**names)) == [(6,)]


def test_coalesce_that_computes_or_converts_stays_refused(db: tuple[str, Any, str]) -> None:
    name, raw, prefix = db
    names = wl._names(prefix)
    conn = governed_db.wrap(raw, identity=wl.AGENT, environment="production", audit=False)
    for template in HOSTILE:
        messages = []
        for guess in (RIGHT, WRONG):
            text = template.format(g=guess, **names)
            with pytest.raises(governed_db.GuardrailViolation, match="masked-column-predicate") as e:
                _rows(conn, text)
            assert not any(f in str(e.value) for f in wl.PII_FRAGMENTS if f not in guess), str(e.value)
            messages.append(str(e.value).replace(guess, "<g>"))
        assert messages[0] == messages[1], (name, template)
    # the first neighbour is an oracle on the raw connection: the right guess counts one row more
    first = HOSTILE[0]
    assert _rows(raw, first.format(g=RIGHT, **names)) != _rows(raw, first.format(g=WRONG, **names))


def test_mariadb_unix_timestamp_of_a_date_column_is_exact(mysql_kw: dict[str, Any], unique: str) -> None:
    """``UNIX_TIMESTAMP(created_at)`` came back 0: an untyped function's value was scanned as text and its ten
    digits read as a phone number. Over a column declared as a date it converts nothing and is exact now
    (decision 0255); over a masked text or number it converts with a warning for some values only, and stays
    refused, as does one over a masked date that decides rows."""
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    prefix = f"r10_{unique}_"
    names = wl._names(prefix)
    wl.create(raw, "my", prefix)
    try:
        conn = governed_db.wrap(raw, identity=wl.AGENT, environment="production", audit=False)
        for sql in (
            "SELECT id, UNIX_TIMESTAMP(created_at) FROM {o} ORDER BY id",
            "SELECT id FROM {o} WHERE UNIX_TIMESTAMP(created_at) >= 1717000000 ORDER BY UNIX_TIMESTAMP(created_at)",
            "SELECT id, UNIX_TIMESTAMP(signup_date) FROM {c} ORDER BY id",
        ):
            text = sql.format(**names)
            got, want = _rows(conn, text), _rows(raw, text)
            assert got == want and want, text
        assert _rows(conn, f"SELECT UNIX_TIMESTAMP(created_at) FROM {names['o']} WHERE id = 1") == [
            (1714557600,)
        ]
        for sql in (
            "SELECT id, UNIX_TIMESTAMP(ssn) FROM {c} ORDER BY id",
            "SELECT UNIX_TIMESTAMP(salary) FROM {f}",
            "SELECT customer_id FROM {f} WHERE UNIX_TIMESTAMP(date_of_birth) > 500000000",
        ):
            with pytest.raises(governed_db.GuardrailViolation, match="masked-column"):
                _rows(conn, sql.format(**names))
        # the oracle the text case would open: MariaDB warns for an SSN that does not read as a date
        cur = raw.cursor()
        cur.execute(f"SELECT UNIX_TIMESTAMP(ssn) FROM {names['c']} WHERE id = 1")
        cur.fetchall()
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall()
    finally:
        wl.drop(raw, prefix)
        raw.close()
