"""SQLite's ``UPDATE OR IGNORE|REPLACE|FAIL|ROLLBACK|ABORT`` (decision 0432): sqlglot does not parse the conflict
clause, so every such UPDATE was refused as unparseable. The analysis now reads the UPDATE without it and flags the
resolution; over tables without masked columns the statement runs and leaves the database as the raw driver does,
judged as a plain UPDATE (write-effect included). Over a table with masked columns what the resolution adds (which
rows were skipped, kept, or deleted) is refused as MariaDB's ``UPDATE IGNORE`` is (decision 0426).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import governed_db
from governed_db.sql.analysis import analyze
from tests._redteam import govern
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, _sqlite

SETUP = (
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE, qty INT)",
    "INSERT INTO items VALUES (1, 'a', 1), (2, 'b', 2), (3, 'c', 3)",
    "CREATE TABLE tags (name TEXT PRIMARY KEY, n INT)",
    "INSERT INTO tags VALUES ('a', 1), ('b', 2), ('c', 3)",
)


def _state(raw: sqlite3.Connection) -> list[list[Any]]:
    return [raw.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("items", "tags", "customers")]


def _run(sql: str, governed: bool) -> tuple[str, list[list[Any]]]:
    """What running ``sql`` gives (``ok`` or the error) and the database's state afterwards."""
    raw = _sqlite(ALICE, SETUP)
    conn = govern(raw, ATTACKER) if governed else raw
    try:
        conn.execute(sql)
        outcome = "ok"
    except governed_db.GuardrailViolation as e:
        outcome = f"refused: {e}"
    except sqlite3.Error as e:
        outcome = f"{type(e).__name__}: {e}"
    try:
        assert not raw.in_transaction, "a transaction was left open"
        return outcome, _state(raw)
    finally:
        conn.close()


INNOCENT = [
    "UPDATE OR IGNORE items SET qty = 9 WHERE id = 1",
    "UPDATE OR IGNORE items SET name = 'b' WHERE id = 1",  # conflicts: skipped
    "UPDATE OR IGNORE items SET qty = qty + 1 WHERE id < 3",
    "update or ignore items set qty = 0 where name = 'c'",
    "UPDATE OR REPLACE tags SET name = 'b' WHERE name = 'a'",  # one unique key: deletes 'b', counted as SQLite does
    "UPDATE OR FAIL items SET name = 'z' WHERE id = 1",
    "UPDATE OR FAIL items SET name = 'b' WHERE id = 1",  # conflicts: fails
    "UPDATE OR ABORT items SET qty = 4 WHERE id = 2",
    "UPDATE OR ABORT items SET name = 'b' WHERE id = 1",  # conflicts: fails
    "UPDATE OR IGNORE customers SET full_name = 'x' WHERE id = 1",  # a masked table, one row by its whole key
]


@pytest.mark.parametrize("sql", INNOCENT)
def test_update_or_runs_as_the_raw_driver_does(sql: str) -> None:
    """An UPDATE OR ... that no masked value can decide runs; the database is left as the raw driver leaves it."""
    raw_outcome, raw_state = _run(sql, governed=False)
    outcome, state = _run(sql, governed=True)
    assert not outcome.startswith("refused"), outcome
    assert outcome == raw_outcome
    assert state == raw_state


def test_update_or_is_read_as_the_update_with_a_flag() -> None:
    """The analysis reads the UPDATE (its table, its WHERE) and flags the resolution; ABORT (the default) sets none."""
    a = analyze("WITH x AS (SELECT 1) UPDATE OR IGNORE items SET qty = 1 WHERE id = 2", "sqlite")
    (stmt,) = a.statements
    assert stmt.error is None and stmt.operation == "UPDATE" and "or-ignore" in stmt.flags
    assert [t.lower() for t in stmt.tables_written] == ["items"]
    (plain,) = analyze("UPDATE OR ABORT items SET qty = 1", "sqlite").statements
    assert plain.error is None and not {f for f in plain.flags if f.startswith("or-")}


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        # a hostile neighbour: the WHERE reads a masked column
        ("UPDATE OR IGNORE customers SET id = id WHERE full_name LIKE 'A%'", "masked-column-predicate"),
        # which rows were skipped follows the stored (masked) values of the rows it walks
        ("UPDATE OR IGNORE customers SET email = 'x' WHERE id < 3", "UPDATE OR IGNORE skips each row"),
        ("UPDATE OR FAIL customers SET email = 'x' WHERE id < 3", "UPDATE OR FAIL keeps the rows"),
        # deletes other rows in its way, whatever key names the changed one
        ("UPDATE OR REPLACE customers SET id = 2 WHERE id = 1", "UPDATE OR REPLACE deletes every other row"),
    ],
)
def test_update_or_over_masked_rows_stays_refused(sql: str, why: str) -> None:
    """Over a table with masked columns the resolution is refused (with what it does), and nothing is written."""
    _, before = _run("SELECT 1", governed=False)
    outcome, state = _run(sql, governed=True)
    assert outcome.startswith("refused") and why in outcome, outcome
    assert "could not parse" not in outcome
    assert state == before


def test_update_or_replace_over_several_unique_keys_is_refused_as_insert_or_replace() -> None:
    """UPDATE OR REPLACE may delete rows through two unique keys, which changes() does not count: refused as the
    INSERT OR REPLACE of that table is, and nothing is written."""
    _, before = _run("SELECT 1", governed=False)
    outcome, state = _run("UPDATE OR REPLACE items SET name = 'b' WHERE id = 1", governed=True)
    assert "write-effect" in outcome and "several unique keys" in outcome, outcome
    assert state == before


def test_update_or_rollback_is_refused_with_a_clear_message() -> None:
    """UPDATE OR ROLLBACK would end the transaction the write is measured in: refused up front (it was a fault
    after the write ran), nothing written, no transaction left open."""
    _, before = _run("SELECT 1", governed=False)
    outcome, state = _run("UPDATE OR ROLLBACK items SET name = 'z' WHERE id = 1", governed=True)
    assert "UPDATE OR ROLLBACK ends the transaction" in outcome and "OR ABORT" in outcome, outcome
    assert state == before
