"""The search index: the same answers as a full read of the store, kept up to date incrementally."""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from governed_db.audit import AuditStore
from governed_db.audit import records as R
from governed_db.audit.index import index_path, open_index
from governed_db.audit.search import Query, search, tail, who_touched
from governed_db.cli.audit import audit

KEY = "index-test-key"
SUBJECTS = ["alice", "bob", "report-bot", "etl"]
TABLES = ["users", "main.orders", "payments", '"Audit"']
TEXTS = {
    "users": ["SELECT email FROM users WHERE id = ?", "SELECT * FROM users", "DELETE FROM users WHERE id = ?"],
    "main.orders": ["SELECT id, total FROM main.orders", "INSERT INTO main.orders (id, total) VALUES (?, ?)"],
    "payments": ["UPDATE payments SET card = ? WHERE id = ?", "SELECT amount FROM payments"],
    '"Audit"': ['SELECT note FROM "Audit"'],
}


def _build(path: Path, n: int, seed: int = 7, **kw: Any) -> None:
    """A store of write-ahead statements (intent + outcome, some without outcome, some whole spans)."""
    rnd = random.Random(seed)
    store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None, **kw)
    t0 = 1_765_000_000_000_000_000
    for i in range(n):
        table = rnd.choice(TABLES)
        text = rnd.choice(TEXTS[table])
        decision = rnd.choice(["allow"] * 6 + ["deny", "warn", "require_approval"])
        attrs = {
            "db.system.name": "sqlite", "db.query.text": text, "db.operation.name": text.split()[0],
            "governed_db.identity.subject": rnd.choice(SUBJECTS), "governed_db.identity.kind":
                rnd.choice(["human", "agent", "service"]), "governed_db.environment": rnd.choice(["production", "dev"]),
            "governed_db.decision": decision, "governed_db.tables": [table],
        }
        if rnd.random() < 0.3:
            attrs["governed_db.identity.on_behalf_of"] = rnd.choice(SUBJECTS)
        if decision != "allow":
            attrs["governed_db.rules"] = [rnd.choice(["unbounded-write", "pii-read", "ddl"])]
        when = t0 + i * 1_000_000_000
        if rnd.random() < 0.1:  # a whole-span statement record (format-1 style, or intent not written)
            store.append({"v": 2, "type": "span", "time": when, "end": when + 5, "name": text, "status": "UNSET",
                          "attrs": attrs, "span_id": f"{i:016x}"})
            continue
        seq = store.append({"v": 2, "type": "intent", "time": when, "name": text, "span_id": f"{i:016x}",
                            "attrs": attrs})
        if rnd.random() < 0.05:
            continue  # the process died: outcome unknown
        extra: dict[str, Any] = {}
        if rnd.random() < 0.3:
            extra["governed_db.masked_columns"] = [rnd.choice(["email", "card", "note"])]
        if decision == "deny":
            extra["governed_db.refused"] = True
        store.append({"v": 2, "type": "outcome", "intent": seq, "span_id": f"{i:016x}", "end": when + 9,
                      "status": "ERROR" if decision == "deny" else "UNSET", "attrs": extra})
    store.close()


QUERIES = [
    Query(), Query(identity="alice"), Query(identity="bob", kind="agent"), Query(environment="production"),
    Query(decision="deny"), Query(rule="pii-read"), Query(table="users"), Query(table="orders"),
    Query(table="main.orders", decision="allow"), Query(table="audit"), Query(column="email"),
    Query(table="payments", column="card"), Query(since=1_765_000_000_000_000_000 + 100 * 10**9),
    Query(until=1_765_000_000_000_000_000 + 50 * 10**9, identity="etl"), Query(identity="nobody"),
]


@pytest.mark.parametrize("q", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
def test_indexed_search_equals_a_full_scan(tmp_path: Path, q: Query) -> None:
    """For every filter, the index answers exactly what reading the whole store answers, in the same order."""
    path = tmp_path / "audit.jsonl"
    _build(path, 400)
    full = [r["seq"] for r in search(path, q, index=False)]
    indexed = [r["seq"] for r in search(path, q)]
    assert indexed == full
    assert index_path(path).exists()
    assert [r["seq"] for r in tail(path, 7, q)] == full[-7:]


@pytest.mark.parametrize("target", ["users", "users.email", "main.orders", "orders.total", "payments.card",
                                    "Audit.note", "nothing"])
def test_indexed_who_touched_equals_a_full_scan(tmp_path: Path, target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """who-touched from the index (grouped by statement) gives the same table as a full read."""
    path = tmp_path / "audit.jsonl"
    _build(path, 400)
    indexed = [t.to_dict() for t in who_touched(path, target)]
    import governed_db.audit.search as S

    monkeypatch.setattr(S, "_who_touched_indexed", lambda *a: None)
    full = [t.to_dict() for t in who_touched(path, target)]
    assert indexed == full


def test_index_follows_appends_rotation_and_outcomes(tmp_path: Path) -> None:
    """New records, outcomes arriving after their intents, and files rotated away are all picked up."""
    path = tmp_path / "audit.jsonl"
    _build(path, 100, rotate_bytes=6000)
    assert [r["seq"] for r in search(path)] == [r["seq"] for r in search(path, index=False)]
    store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None,
                       rotate_bytes=6000)
    seq = store.append({"v": 2, "type": "intent", "time": 5, "name": "x", "attrs": {
        "governed_db.decision": "allow", "governed_db.identity.subject": "zed", "governed_db.tables": ["t"]}})
    (unknown,) = list(search(path, Query(identity="zed")))
    assert unknown["outcome"] == R.UNKNOWN
    store.append({"v": 2, "type": "outcome", "intent": seq, "end": 6, "status": "OK", "attrs": {}})
    store.close()
    (known,) = list(search(path, Query(identity="zed")))
    assert known["outcome"] == "ok"
    os.rename(path, path.with_name("audit.jsonl.ext"))
    store = AuditStore(path, key=KEY, fsync_interval=None, checkpoint_interval=None, idle_close=None)
    store.append({"v": 2, "type": "span", "time": 7, "name": "y", "attrs": {
        "governed_db.decision": "allow", "governed_db.identity.subject": "zed"}})
    store.close()
    found = [r["seq"] for r in search(path, Query(identity="zed"))]
    assert found == [r["seq"] for r in search(path, Query(identity="zed"), index=False)]
    assert len(found) == 2 and found[0] == seq and found[1] > seq  # one chain, continued after the rename


def test_rewritten_store_rebuilds_the_index(tmp_path: Path) -> None:
    """A store rewritten below what was indexed is noticed: the index is rebuilt, not trusted."""
    path = tmp_path / "audit.jsonl"
    _build(path, 50)
    before = [r["seq"] for r in search(path, Query(identity="alice"))]
    _build(path.with_name("other.jsonl"), 60, seed=99)
    path.with_name("other.jsonl").replace(path)
    after = [r["seq"] for r in search(path, Query(identity="alice"))]
    assert after == [r["seq"] for r in search(path, Query(identity="alice"), index=False)] and after != before


def test_unwritable_index_falls_back_to_a_full_scan(tmp_path: Path) -> None:
    """When the index cannot be created, search still answers (reading the store)."""
    path = tmp_path / "audit.jsonl"
    _build(path, 30)
    index_path(path).mkdir()  # something that is not a database stands where the index goes
    assert [r["seq"] for r in search(path, Query(identity="bob"))] == [
        r["seq"] for r in search(path, Query(identity="bob"), index=False)]


def test_index_command(tmp_path: Path) -> None:
    """`audit index` builds the index and reports how many statements it holds."""
    path = tmp_path / "audit.jsonl"
    _build(path, 40)
    res = CliRunner().invoke(audit, ["index", "--store", str(path)])
    assert res.exit_code == 0 and "indexed" in res.output
    db = sqlite3.connect(index_path(path))
    full = sum(1 for r in search(path, index=False))
    assert db.execute("SELECT count(*) FROM stmt WHERE is_stmt = 1").fetchone()[0] == full
    res = CliRunner().invoke(audit, ["index", "--store", str(path), "--rebuild"])
    assert res.exit_code == 0 and f"{full} in all" in res.output


def test_open_index_is_incremental(tmp_path: Path) -> None:
    """A second update reads nothing new."""
    path = tmp_path / "audit.jsonl"
    _build(path, 30)
    idx = open_index(path)
    try:
        assert idx.update() == 0
    finally:
        idx.close()
