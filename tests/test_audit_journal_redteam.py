"""Red team of the write-ahead journal (docs/decisions/0205-audit-journal.md, 0206-0208): crashes at awkward
moments, rotation and long gaps before recovery, damaged and planted journal files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from governed_db.audit import journal as J
from governed_db.audit import records as R
from governed_db.audit import verify
from governed_db.audit.store import AuditStore, read_raw

KEY = "journal-redteam-key"

_DRAIN_THEN_DIE = textwrap.dedent("""
    import os, signal, sqlite3, sys
    import governed_db
    from governed_db.audit import journal, store as store_module
    store_module.DEFER_INTERVAL = 3600.0
    store_module._DRAIN_AT = 10**9
    db, store, key = sys.argv[1], sys.argv[2], sys.argv[3]
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
    conn = governed_db.wrap(raw, audit={"path": store, "key": key, "fsync_interval": 3600.0,
                                        "checkpoint_interval": None},
                            identity=governed_db.Identity("carol"), environment="production")
    for i in range(6):
        conn.execute("INSERT INTO t VALUES (?)", (i,))
    if sys.argv[4] == "drain":
        # a drain that wrote its records to the store but died before moving the journal's consumed mark
        journal.Journal.consumed = lambda self, upto: None
        store_module.AuditStore.flush(next(iter(store_module._stores)))
    os.kill(os.getpid(), signal.SIGKILL)
""")


def _drain_then_die(tmp_path: Path, store: Path, how: str = "drain") -> None:
    proc = subprocess.run([sys.executable, "-c", _DRAIN_THEN_DIE, str(tmp_path / "d.db"), str(store), KEY, how],
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _other_writer(store: Path, **kw: Any) -> AuditStore:
    return AuditStore(store, key=KEY, fsync_interval=None, checkpoint_interval=None, journal=False,
                      idle_close=None, **kw)


def _filler(i: int) -> dict[str, Any]:
    return {"v": R.FORMAT_VERSION, "type": "event", "time": 1, "attrs": {"i": i, "pad": "x" * 200}}


def _assert_each_statement_once(store: Path) -> None:
    result = verify(store, key=KEY)
    assert result.ok, result.problems
    raw = [r for r in read_raw(store) if r.get("type") in (R.INTENT, R.OUTCOME)]
    pairs = [(r["type"], r["span_id"]) for r in raw]
    assert len(pairs) == len(set(pairs)), "a journaled record was chained twice"
    assert sum(1 for t, _ in pairs if t == R.INTENT) == 6


def test_a_drain_that_died_before_marking_is_not_chained_twice_after_rotation(tmp_path: Path) -> None:
    """A writer that had the store open when the drainer died rotates the store before it recovers: the records
    the drain wrote are in the rotated file now, and must still not be chained a second time."""
    store = tmp_path / "audit.jsonl"
    other = _other_writer(store, rotate_bytes=20_000)
    other.append(_filler(-1))  # opened (and recovered) before the drainer dies
    _drain_then_die(tmp_path, store)
    for i in range(60):  # rotates; the next file is opened and its (short) tail searched for the journal's records
        other.append(_filler(i))
    other.close()
    _assert_each_statement_once(store)


def test_a_drain_that_died_before_marking_is_not_chained_twice_after_a_long_gap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recovery may come long after the crash: records appended meanwhile push the drained ones out of any fixed
    window at the store's end (shrunk here to keep the test small); they must still be recognised."""
    monkeypatch.setattr(J, "DEFAULT_SIZE", 4096)  # the window _tail_spans searches is 2 journals long
    store = tmp_path / "audit.jsonl"
    other = _other_writer(store)
    other.append(_filler(-1))
    _drain_then_die(tmp_path, store)
    for i in range(100):
        other.append(_filler(i))
    other.close()  # the reader below recovers the dead process's journal
    _assert_each_statement_once(store)


_RECOVER_THEN_DIE = textwrap.dedent("""
    import os, signal, sys
    from governed_db.audit import journal, store as store_module
    real = journal.Orphan.release
    def release(self, *, remove):
        if remove:  # chained into the store, about to be removed: the recovering process dies here
            os.kill(os.getpid(), signal.SIGKILL)
        real(self, remove=False)
    journal.Orphan.release = release
    store_module.recover_journals(store_module.Path(sys.argv[1]), key=sys.argv[2])
""")


def test_a_recovery_that_died_before_removing_the_journal_is_not_chained_twice(tmp_path: Path) -> None:
    """A reader chaining a dead process's journal in is itself killed before it removes the file; the next
    recovery comes after the store rotated and must not chain the records again."""
    store = tmp_path / "audit.jsonl"
    other = _other_writer(store, rotate_bytes=20_000)
    other.append(_filler(-1))
    _drain_then_die(tmp_path, store, how="die")
    proc = subprocess.run([sys.executable, "-c", _RECOVER_THEN_DIE, str(store), KEY], capture_output=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    for i in range(60):
        other.append(_filler(i))
    other.close()
    _assert_each_statement_once(store)
