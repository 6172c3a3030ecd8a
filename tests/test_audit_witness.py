"""The external witness: checkpoints also in PostgreSQL, so that rolling back store and anchor together is seen."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import governed_db
from governed_db.audit import AuditStore, verify
from governed_db.audit.store import anchor_path
from governed_db.audit.witness import Witness
from governed_db.cli.audit import audit
from governed_db.errors import ConfigurationError

pytestmark = pytest.mark.postgres
KEY = "witness-test-key"


@pytest.fixture
def witness(pg_dsn: str, unique: str) -> Iterator[tuple[str, str]]:
    psycopg = pytest.importorskip("psycopg")
    table = f"audit_witness_{unique}"
    yield pg_dsn, table
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def _store(path: Path, dsn: str, table: str) -> AuditStore:
    return AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None,
                      checkpoint_every=5, witness=dsn, witness_table=table)


def _write(store: AuditStore, n: int) -> None:
    for i in range(n):
        store.append({"v": 2, "type": "span", "name": f"q{i}", "attrs": {}})


def test_rollback_of_store_and_anchor_is_detected_with_the_witness(tmp_path: Path, witness: tuple[str, str]) -> None:
    """Store and anchor put back to an earlier genuine copy verify locally, but not against the witness."""
    dsn, table = witness
    path = tmp_path / "audit.jsonl"
    store = _store(path, dsn, table)
    _write(store, 7)
    store.close()
    saved = tmp_path / "saved"
    saved.mkdir()
    shutil.copy(path, saved / path.name)
    shutil.copy(anchor_path(path), saved / anchor_path(path).name)
    store = _store(path, dsn, table)
    _write(store, 9)
    store.close()
    assert verify(path, key=KEY, witness=Witness(dsn, table=table)).ok

    shutil.copy(saved / path.name, path)
    shutil.copy(saved / anchor_path(path).name, anchor_path(path))
    assert verify(path, key=KEY).ok  # a consistent earlier state: nothing local can tell
    result = verify(path, key=KEY, witness=Witness(dsn, table=table))
    assert not result.ok
    assert any("rolled back" in p.message for p in result.problems)


def test_forged_witness_row_is_not_evidence(tmp_path: Path, witness: tuple[str, str]) -> None:
    """A witness row without the anchor MAC fails verification with the key."""
    import psycopg

    dsn, table = witness
    path = tmp_path / "audit.jsonl"
    store = _store(path, dsn, table)
    _write(store, 3)
    store.close()
    w = Witness(dsn, table=table)
    row = w.latest(store._store_id)
    assert row is not None
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} (store, seq, hash, time, off, file, mac) VALUES (%s, %s, %s, 0, 0, 'x', "
                     "'forged')", (row["store"], row["seq"] + 100, "0" * 64))
    result = verify(path, key=KEY, witness=w)
    assert not result.ok and any("MAC" in p.message for p in result.problems)


def test_unreachable_witness_never_stops_recording(tmp_path: Path) -> None:
    """With the witness down, statements run and are recorded; verify against it reports it cannot read it."""
    path = tmp_path / "audit.jsonl"
    dead = "host=127.0.0.1 port=9 user=postgres dbname=test"
    raw = sqlite3.connect(":memory:")
    conn = governed_db.wrap(raw, audit={"path": str(path), "key": KEY, "witness": dead, "checkpoint_every": 2},
                            environment="production")
    for i in range(5):
        conn.execute(f"SELECT {i}")
    assert verify(path, key=KEY).ok
    assert not verify(path, key=KEY, witness=dead).ok
    res = CliRunner().invoke(audit, ["verify", "--store", str(path), "--witness", dead],
                             env={"GOVERNED_DB_AUDIT_KEY": KEY})
    assert res.exit_code == 1 and "witness could not be read" in res.output


def test_verify_command_with_the_witness(tmp_path: Path, witness: tuple[str, str]) -> None:
    """`audit verify --witness DSN --witness-table T` checks the store against the witness."""
    dsn, table = witness
    path = tmp_path / "audit.jsonl"
    store = _store(path, dsn, table)
    _write(store, 6)
    store.close()
    res = CliRunner().invoke(audit, ["verify", "--store", str(path), "--witness", dsn, "--witness-table", table],
                             env={"GOVERNED_DB_AUDIT_KEY": KEY})
    assert res.exit_code == 0 and "intact" in res.output


def test_bad_witness_settings_are_refused_early(tmp_path: Path) -> None:
    """A witness table that is not a plain SQL name, or an empty DSN, is a ConfigurationError at once."""
    with pytest.raises(ConfigurationError):
        AuditStore(tmp_path / "a.jsonl", witness="host=x", witness_table="t; DROP TABLE users")
    with pytest.raises(ConfigurationError):
        AuditStore(tmp_path / "a.jsonl", witness=" ")
