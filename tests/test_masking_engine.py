"""Per-connection masking state (governed_db.masking.engine): labels of nearly empty tables do not go stale."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import GuardrailViolation, Identity
from governed_db.masking import engine, schema
from governed_db.masking.engine import state_for

BOT = Identity("report-bot", kind="agent")
PII = [(i, f"alice{i}@example.com", f"536-22-{8700 + i}", f"order {i}") for i in range(1, 31)]


def _governed(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=BOT, environment="production", audit=False)


def _sqlite_pair(tmp_path: Path) -> tuple[Any, sqlite3.Connection]:
    path = tmp_path / "crm.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE leads (id INTEGER, info TEXT, ref TEXT, memo_line TEXT)")
    setup.commit()
    return _governed(sqlite3.connect(path)), setup


def test_empty_table_then_pii_from_another_connection_is_masked_on_sqlite(tmp_path: Path) -> None:
    """Classified empty; PII inserted elsewhere; the long-lived governed connection masks it at once and then
    re-labels the columns (a filter on them is refused)."""
    conn, other = _sqlite_pair(tmp_path)
    assert conn.execute("SELECT * FROM leads").fetchall() == []
    other.executemany("INSERT INTO leads VALUES (?, ?, ?, ?)", PII)
    other.commit()
    first = conn.execute("SELECT id, info, ref, memo_line FROM leads ORDER BY id").fetchall()
    assert first[0] == (1, "[EMAIL]", "[US_SSN]", "order 1")  # scanned like free text until re-labelled
    assert not any("@example.com" in str(r) or "536-22" in str(r) for r in first)
    # the scan's finding brought classification forward: the columns now have their real labels
    again = conn.execute("SELECT id, info, ref FROM leads ORDER BY id").fetchall()
    assert again[0] == (1, "a***@example.com", "[US_SSN]")
    with pytest.raises(GuardrailViolation):
        conn.execute("SELECT id FROM leads WHERE ref LIKE '536%'")
    assert conn.execute("SELECT id FROM leads WHERE memo_line = 'order 2'").fetchall() == [(2,)]


def test_empty_table_is_sampled_again_when_data_arrives_without_a_hit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A nearly empty table is looked at again after a while even if nothing was found while scanning."""
    monkeypatch.setattr(engine, "RECHECK_FIRST", 0.05)
    conn, other = _sqlite_pair(tmp_path)
    conn.execute("SELECT id FROM leads").fetchall()
    state = state_for(conn.governor)
    info = state.tables["leads"]
    assert info.provisional and state.column_class("leads", "info").provisional  # type: ignore[union-attr]
    other.executemany("INSERT INTO leads VALUES (?, ?, ?, ?)", PII)
    other.commit()
    time.sleep(0.1)
    # a statement that never returns the PII columns still triggers the new sample once the time has come
    conn.execute("SELECT id FROM leads").fetchall()
    cls = state.column_class("leads", "info")
    assert cls is not None and cls.label == "EMAIL" and not cls.provisional
    assert not state.tables["leads"].provisional
    with pytest.raises(GuardrailViolation):
        conn.execute("SELECT id FROM leads WHERE info = 'alice1@example.com'")


def test_a_still_empty_table_is_sampled_less_and_less_often(tmp_path: Path) -> None:
    """Each new sample of a table that is still nearly empty doubles the wait, up to RECHECK_MAX."""
    conn, _ = _sqlite_pair(tmp_path)
    conn.execute("SELECT id FROM leads").fetchall()
    state = state_for(conn.governor)
    waits = []
    for _ in range(8):
        state.tables["leads"].recheck_at = 0.0
        state.table("leads")
        waits.append(state.tables["leads"].backoff)
    assert waits == sorted(waits) and waits[0] == 2 * engine.RECHECK_FIRST
    assert waits[-1] == engine.RECHECK_MAX


def test_text_of_a_nearly_empty_table_stays_usable(tmp_path: Path) -> None:
    """While provisional, innocent text comes back exactly, also through expressions, and may be filtered on."""
    conn, other = _sqlite_pair(tmp_path)
    other.execute("INSERT INTO leads VALUES (1, 'widget', 'A-1', 'note')")
    other.commit()
    assert conn.execute("SELECT upper(info), ref FROM leads WHERE ref = 'A-1'").fetchall() == [
        ("WIDGET", "A-1")
    ]


@pytest.mark.postgres
def test_empty_table_then_pii_from_another_connection_is_masked_on_postgres(pg_dsn: str, unique: str) -> None:
    """On PostgreSQL: classify on an empty table, insert PII from another connection, read -> masked."""
    import psycopg

    table = f"leads_{unique}"
    other = psycopg.connect(pg_dsn, autocommit=True)
    other.execute(f"CREATE TABLE {table} (id integer, info text, ref text)")
    try:
        conn = _governed(psycopg.connect(pg_dsn, autocommit=True))
        assert conn.execute(f"SELECT * FROM {table}").fetchall() == []
        with other.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s)", [r[:3] for r in PII])
        rows = conn.execute(f"SELECT id, info, ref FROM {table} ORDER BY id").fetchall()
        assert rows[0] == (1, "[EMAIL]", "[US_SSN]")
        assert not any("@example.com" in str(r) or "536-22" in str(r) for r in rows)
        assert conn.execute(f"SELECT info FROM {table} WHERE id = 1").fetchall() == [("a***@example.com",)]
        with pytest.raises(GuardrailViolation):
            conn.execute(f"SELECT id FROM {table} WHERE info LIKE 'a%'")
        conn.close()
    finally:
        other.execute(f"DROP TABLE {table}")
        other.close()


def test_a_failed_resample_keeps_scanning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the new sample of a provisional table cannot be read, its columns stay provisional (still scanned)."""
    from governed_db.masking import schema

    conn, other = _sqlite_pair(tmp_path)
    conn.execute("SELECT id FROM leads").fetchall()
    state = state_for(conn.governor)
    other.executemany("INSERT INTO leads VALUES (?, ?, ?, ?)", PII)
    other.commit()
    monkeypatch.setattr(schema, "sample", lambda *a, **k: None)
    state.tables["leads"].recheck_at = 0.0
    state.table("leads")
    assert state.tables["leads"].provisional and state.tables["leads"].backoff == 2 * engine.RECHECK_FIRST
    cls = state.column_class("leads", "info")
    assert cls is not None and cls.provisional
    assert conn.execute("SELECT info FROM leads WHERE id = 1").fetchall() == [("[EMAIL]",)]


def _sparse_table(rows: int, filled_from: int) -> sqlite3.Connection:
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE refs (id INTEGER, ref TEXT, code TEXT)")
    raw.executemany(
        "INSERT INTO refs VALUES (?, ?, ?)",
        [(i, f"536-22-{8000 + i}" if i >= filled_from else None, f"c{i}") for i in range(rows)],
    )
    return raw


def test_a_nearly_empty_column_is_provisional_and_scanned() -> None:
    """A text column with fewer than FEW_ROWS values in a populated table is provisional (decision 0250)."""
    conn = _governed(_sparse_table(200, 195))
    assert conn.execute("SELECT ref FROM refs WHERE id >= 195").fetchall()[0] == ("[US_SSN]",)
    state = state_for(conn.governor)
    ref = state.column_class("refs", "ref")
    assert ref is not None and ref.label == "US_SSN"  # labelled from the five values found past the sample
    assert state.column_class("refs", "code") is None  # a column with values is settled as before


def test_values_are_looked_for_within_a_bounded_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the window the values are not looked for: the column stays provisional and its values are scanned."""
    monkeypatch.setattr(engine, "SPARSE_WINDOW", 1)  # window = sample_rows (100) rows
    # the sample alone: its random rows past the first 100 (decision 0288) would find the values the window misses
    monkeypatch.setattr(schema, "_RANDOM_REST", {})
    # ... and so would the rows spread across the table and the rare-value search (decision 0294)
    monkeypatch.setattr(schema, "sample_spread", lambda *a, **k: None)
    monkeypatch.setattr(schema, "sample_rare", lambda *a, **k: None)
    conn = _governed(_sparse_table(300, 250))
    state = state_for(conn.governor)
    conn.execute("SELECT id FROM refs").fetchall()
    cls = state.column_class("refs", "ref")
    assert cls is not None and cls.provisional and "non-empty value(s)" in cls.evidence["sample"]
    assert state.tables["refs"].provisional
    assert conn.execute("SELECT ref FROM refs WHERE id = 260").fetchall() == [("[US_SSN]",)]
    monkeypatch.setattr(engine, "SPARSE_WINDOW", 100)
    fresh = _governed(_sparse_table(300, 250))
    fresh.execute("SELECT id FROM refs").fetchall()
    found = state_for(fresh.governor).column_class("refs", "ref")
    assert found is not None and found.label == "US_SSN" and not found.provisional


def test_a_name_no_table_has_costs_one_catalog_query_and_no_new_sample() -> None:
    """A column the catalog does not know makes the table's column list read again (decision 0251); when the
    list is unchanged (a typo), nothing is re-sampled and no memo is emptied."""
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (id INTEGER, city TEXT)")
    raw.executemany("INSERT INTO t VALUES (?, ?)", [(i, "Paris") for i in range(30)])
    seen: list[str] = []
    raw.set_trace_callback(seen.append)
    conn = _governed(raw)
    conn.execute("SELECT id FROM t").fetchall()
    state = state_for(conn.governor)
    version = state.version
    seen.clear()
    for _ in range(3):
        with pytest.raises(sqlite3.OperationalError, match="no such column"):
            conn.execute("SELECT id, nosuch FROM t").fetchall()
    assert state.version == version
    assert not [s for s in seen if "LIMIT" in s]  # no new sample
    raw.execute("ALTER TABLE t ADD COLUMN nosuch TEXT")
    conn.execute("SELECT id, nosuch FROM t").fetchall()
    assert state.version > version and "nosuch" in (state.tables["t"].columns or [])
