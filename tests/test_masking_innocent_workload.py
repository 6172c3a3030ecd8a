"""An innocent agent workload runs on every database: no refusal, over-masking within 1 %, PII still masked.

About 330 analytics and ops statements an agent runs without needing a PII value (counts and sums by city,
status, tier and month, joins on ids, windows, CTEs, CASE, COALESCE, ORDER BY/LIMIT on non-PII columns,
reporting queries over windows of aggregates and subqueries, PIVOTs over CTEs, ``typeof`` (decision 0235),
about 200 reports and reads of an analytics agent over customers -> orders -> items and a table of dates of
birth, salaries and addresses (decisions 0254, 0255), reads of PII columns that come back masked, writes of non-PII columns, schema discovery, EXPLAIN) run through the
governed connection (agent identity, production, zero configuration) and through the raw one on an identical
copy. Every non-PII cell must equal the raw result, every PII cell must come back masked, and none may be
refused. The workload lives in tests/_innocent_workload.py (run it as a script for the table per database).
Decision 0228.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests import _innocent_workload as wl

#: refusals and errors allowed per database (measured: none); leaks are never allowed
MAX_REFUSED = {"lite": 0, "duck": 0, "pg": 0, "my": 0}
#: over-masking left open, on every database (docs/masking.md "Limits"): ``COALESCE(phone, 'n/a')`` masks the
#: default too, since showing it would also show whether a stored value equals the literal (a guess check).
#: ``SELECT email IS NOT NULL`` is exact since decision 0209.
KNOWN_OVERMASKED = {"coalesce phone"}


@pytest.fixture
def lite() -> Iterator[tuple[Any, Any, str, str]]:
    ref = sqlite3.connect(":memory:", isolation_level=None)
    gov = sqlite3.connect(":memory:", isolation_level=None)
    yield ref, gov, "innocent_r_", "innocent_g_"
    ref.close()
    gov.close()


@pytest.fixture
def duck() -> Iterator[tuple[Any, Any, str, str]]:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    yield raw, raw, "innocent_r_", "innocent_g_"
    raw.close()


@pytest.fixture
def pg(pg_dsn: str, unique: str) -> Iterator[tuple[Any, Any, str, str]]:
    import psycopg

    ref, gov = psycopg.connect(pg_dsn, autocommit=True), psycopg.connect(pg_dsn, autocommit=True)
    yield ref, gov, f"innocent_{unique}_r_", f"innocent_{unique}_g_"
    gov.close()
    ref.close()


@pytest.fixture
def my(mysql_kw: dict[str, Any], unique: str) -> Iterator[tuple[Any, Any, str, str]]:
    import pymysql

    ref, gov = pymysql.connect(autocommit=True, **mysql_kw), pymysql.connect(autocommit=True, **mysql_kw)
    yield ref, gov, f"innocent_{unique}_r_", f"innocent_{unique}_g_"
    gov.close()
    ref.close()


@pytest.fixture(params=["lite", "duck", "pg", "my"])
def report(request: pytest.FixtureRequest) -> Iterator[wl.Report]:
    """The workload measured on one database: reference tables read raw, an identical copy read governed."""
    db = request.param
    ref, gov, ref_prefix, gov_prefix = request.getfixturevalue(db)
    wl.create(ref, db, ref_prefix)
    wl.create(gov, db, gov_prefix)
    try:
        yield wl.measure(db, ref, gov, ref_prefix, gov_prefix)
    finally:
        wl.drop(ref, ref_prefix)
        wl.drop(gov, gov_prefix)


def test_innocent_workload_is_neither_refused_nor_overmasked(report: wl.Report) -> None:
    """Every innocent statement runs and returns the raw result's non-PII cells exactly (no refusal, no error,
    no over-masked cell), with every PII cell masked."""
    assert report.ran >= 300, report.table()
    assert report.count("leaked") == 0, report.table()
    overmasked = {o.case for o in report.outcomes if o.kind == "overmasked"}
    assert overmasked == KNOWN_OVERMASKED, report.table()
    # over-masking of innocent cells stays under issue #12's 1 %
    assert report.overmasked_cells / report.innocent_cells <= 0.01, report.table()
    assert report.count("refused") + report.count("error") <= MAX_REFUSED[report.db], report.table()
    # the workload reads PII columns: they came back masked (a workload that read none would prove nothing)
    assert report.pii_cells >= 600, report.table()


def test_schema_pragma_columns_sort_and_filter() -> None:
    """``pragma_table_info('t') ORDER BY cid`` ran into the masked-column refusal (``cid`` read as a card
    security code); its columns are the pragma's own now. A table's own ``cid`` column, or a masked column
    compared inside the pragma's subquery, is still refused."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE t (id int, email text, cid int)")
    raw.execute("INSERT INTO t VALUES (1, 'alice@example.com', 123)")
    conn = governed_db.wrap(raw, identity=wl.AGENT, environment="production", audit=False)
    sql = "SELECT name, type FROM pragma_table_info('t') ORDER BY cid"
    assert conn.execute(sql).fetchall() == raw.execute(sql).fetchall()
    for hostile in (
        "SELECT id FROM t ORDER BY cid",
        "SELECT (SELECT count(*) FROM pragma_table_info('t') WHERE email LIKE 'a%') FROM t",
        "SELECT id FROM t WHERE EXISTS (SELECT 1 FROM pragma_table_info('t') WHERE cid = t.cid)",
    ):
        with pytest.raises(governed_db.GuardrailViolation, match="masked-column-predicate"):
            conn.execute(hostile).fetchall()
    raw.close()


def test_duckdb_bounded_write_keeps_its_rowcount() -> None:
    """A DuckDB UPDATE/INSERT/DELETE through the governed connection reports the rows it changed, as the raw
    cursor does (the effect guard's restored result had left rowcount at -1)."""
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE t (id int, status text)")
    raw.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    cur = governed_db.wrap(raw, identity=wl.AGENT, environment="production", audit=False).cursor()
    cur.execute("UPDATE t SET status = 'z' WHERE id = 1")
    assert (cur.rowcount, cur.fetchall()) == (1, [(1,)])
    cur.execute("INSERT INTO t VALUES (4, 'd'), (5, 'e')")
    assert cur.rowcount == 2
    cur.execute("SELECT * FROM t")
    assert cur.rowcount == raw.cursor().execute("SELECT * FROM t").rowcount
    raw.close()


def test_duckdb_frames_keep_dtypes_with_masked_columns() -> None:
    """.df() of a result with masked PII columns keeps every column's dtype (dates, decimals, ints)."""
    duckdb = pytest.importorskip("duckdb")
    pytest.importorskip("pandas")
    raw = duckdb.connect()
    wl.create(raw, "duck", "innocent_")
    conn = governed_db.wrap(raw, identity=wl.AGENT, environment="production", audit=False)
    sql = (
        "SELECT c.id, c.full_name, c.email, c.signup_date, o.amount, o.created_at FROM innocent_customers c "
        "JOIN innocent_orders o ON o.customer_id = c.id ORDER BY o.id"
    )
    got, want = conn.execute(sql).df(), raw.execute(sql).df()
    assert list(got.dtypes) == list(want.dtypes)
    assert not any(s in got.to_string() for s in wl.PII_FRAGMENTS)
    kept = ["id", "signup_date", "amount", "created_at"]
    assert got[kept].equals(want[kept])
    raw.close()


def test_sqlite_masked_dates_stay_iso_dates() -> None:
    """A masked SQLite date of birth comes back generalised but still an ISO date (it parses), next to an
    innocent date that comes back exactly."""
    import datetime

    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE people (id int, full_name text, date_of_birth date, signup_date date)")
    raw.execute("INSERT INTO people VALUES (1, 'Alice Smith', '1985-04-12', '2024-01-15')")
    conn = governed_db.wrap(raw, identity=wl.AGENT, environment="production", audit=False)
    (row,) = conn.execute("SELECT full_name, date_of_birth, signup_date FROM people").fetchall()
    assert row[0] != "Alice Smith" and row[1] != "1985-04-12" and row[2] == "2024-01-15"
    assert datetime.date.fromisoformat(row[1]).year == 1985
    raw.close()


def test_duckdb_describe_of_a_query_is_its_names_and_types() -> None:
    """``DESCRIBE SELECT c.id, c.full_name, ...`` (how an agent checks a report's columns) was refused as a copy
    of masked columns, then, judged as EXPLAIN, came back with every cell ``[SENSITIVE]``: DuckDB binds the
    query without running it, so its rows are the result's column names and declared types, exact now
    (decision 0254). Its uses are still walked as a read's: a PIVOT on a masked column (whose values would be
    the column names) and a WHERE on one are refused whether the guess is right or wrong."""
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    wl.create(raw, "duck", "d_")
    conn = governed_db.wrap(raw, identity=wl.AGENT, environment="production", audit=False)
    for sql in (
        "DESCRIBE SELECT c.id, c.full_name, c.email, o.amount FROM d_customers c JOIN d_orders o "
        "ON o.customer_id = c.id WHERE o.status = 'shipped'",
        "DESCRIBE SELECT * FROM d_customers",
        "DESCRIBE SELECT full_name AS column_type FROM d_customers",
    ):
        got, want = conn.execute(sql).fetchall(), raw.execute(sql).fetchall()
        assert got == want and want
    guesses = ("Alice Smith", "Zed Nobody")
    hostile = (
        "DESCRIBE PIVOT (SELECT * FROM d_customers WHERE full_name = '{g}') ON full_name USING count(*)",
        "DESCRIBE SELECT * FROM (PIVOT d_customers ON full_name USING count(*))",
        "DESCRIBE SELECT id FROM d_customers WHERE full_name = '{g}'",
        "DESCRIBE SELECT id FROM d_customers ORDER BY ssn LIMIT 1",
    )
    for template in hostile:
        # the raw DESCRIBE tells a right guess from a wrong one (or shows the names) only for the PIVOTs
        messages = []
        for g in guesses:
            with pytest.raises(governed_db.GuardrailViolation) as e:
                conn.execute(template.format(g=g)).fetchall()
            messages.append(str(e.value).replace(g, "<g>"))
            assert not any(f in str(e.value) for f in wl.PII_FRAGMENTS if f not in g)
        assert messages[0] == messages[1]
    raw_names = {
        r[0] for r in raw.execute("DESCRIBE PIVOT d_customers ON full_name USING count(*)").fetchall()
    }
    assert "Alice Smith" in raw_names  # the channel the PIVOT refusal closes
    raw.close()
