"""The search index against a full read, on generated stores with rotation, late and missing outcomes and damage.

Every query (search, tail, who-touched with and without a time range) must give exactly what reading the
whole store front to back gives — after the first build, after an incremental update that settles
statements indexed earlier, and when lines are damaged (garbage, a torn line, an oversized line whose last
piece looks like a record).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import governed_db.audit.search as S
from governed_db.audit import AuditStore
from governed_db.audit import records as R
from governed_db.audit.index import HOUR, index_path, open_index
from governed_db.audit.index_check import check_index
from governed_db.audit.search import Query, search, tail, who_touched

T0 = 1_765_000_000_000_000_000 + 1234  # not on an hour boundary
STEP = 7 * 60 * 10**9  # seven minutes between statements: many hours, several statements per hour
SUBJECTS = ["alice", "bob", "carol", "etl"]
SHAPES = [
    ("users", "SELECT email FROM users WHERE id = ?"), ("users", "SELECT * FROM users"),
    ("users", "DELETE FROM users WHERE id = ?"), ("public.orders", "SELECT id, total FROM public.orders"),
    ("public.orders", "INSERT INTO public.orders (id, total) VALUES (?, ?)"),
    ("payments", "UPDATE payments SET card = ? WHERE id = ?"), ("payments", "SELECT amount FROM payments"),
]


class _Writer:
    """Writes statements as the processor does: an intent, later (or never) its outcome."""

    def __init__(self, path: Path, rnd: random.Random) -> None:
        self.path, self.rnd, self.i = path, rnd, 0
        self.waiting: list[tuple[int, dict[str, Any]]] = []  # (intent seq, outcome body) not yet written

    def run(self, n: int) -> None:
        store = AuditStore(self.path, fsync_interval=None, checkpoint_interval=None, idle_close=None,
                           rotate_bytes=9000)
        try:
            for _ in range(n):
                self._one(store)
                if self.waiting and self.rnd.random() < 0.7:
                    seq, body = self.waiting.pop(self.rnd.randrange(len(self.waiting)))
                    store.append({**body, "intent": seq})
        finally:
            store.close()

    def _one(self, store: AuditStore) -> None:
        rnd, i = self.rnd, self.i
        self.i += 1
        table, text = rnd.choice(SHAPES)
        decision = rnd.choice(["allow"] * 5 + ["deny", "warn"])
        attrs: dict[str, Any] = {
            "db.system.name": "sqlite", "db.query.text": text, "db.operation.name": text.split()[0],
            "governed_db.identity.subject": rnd.choice(SUBJECTS), "governed_db.identity.kind": rnd.choice(
                ["human", "agent"]), "governed_db.environment": "production", "governed_db.tables": [table],
        }
        if rnd.random() > 0.03:  # now and then an intent that is not a statement (no decision) ...
            attrs["governed_db.decision"] = decision
        if decision != "allow":
            attrs["governed_db.rules"] = [rnd.choice(["pii-read", "unbounded-write"])]
        when = T0 + i * STEP
        if rnd.random() < 0.1:
            store.append({"v": 2, "type": "span", "time": when, "end": when + 5, "name": text, "status": "UNSET",
                          "attrs": attrs, "span_id": f"{i:016x}"})
            return
        seq = store.append({"v": 2, "type": "intent", "time": when, "name": text, "span_id": f"{i:016x}",
                            "attrs": attrs})
        if rnd.random() < 0.05:
            return  # the process died: this statement's outcome stays unknown
        extra: dict[str, Any] = {}
        roll = rnd.random()
        if roll < 0.25:
            extra["governed_db.masked_columns"] = [rnd.choice(["email", "card", "total"])]
        elif roll < 0.3:
            extra["governed_db.refused"] = True
        elif roll < 0.33:
            extra["governed_db.decision"] = "deny"  # ... which its outcome can make one (or change)
        elif roll < 0.36:
            extra["governed_db.tables"] = ["payments"]  # the outcome's attributes win over the intent's
            extra["governed_db.rules"] = ["late-rule"]
        self.waiting.append((seq, {"v": 2, "type": "outcome", "span_id": f"{i:016x}", "end": when + 9,
                                   "status": "ERROR" if decision == "deny" else "UNSET", "attrs": extra}))


def _damage(path: Path, rnd: random.Random) -> None:
    """Garbage lines, a record cut short and an oversized line (whose last piece is a valid statement record)
    in the rotated files: a full read skips them all."""
    rotated = sorted(p for p in path.parent.iterdir() if p.name.startswith(path.name + ".0"))
    assert len(rotated) >= 3
    ghost = b'{"v":2,"type":"span","seq":999999,"time":%d,"name":"x","attrs":{"governed_db.decision":"allow",' \
            b'"governed_db.identity.subject":"ghost","governed_db.tables":["users"]}}\n' % (T0 + 5 * STEP)
    for n, f in enumerate(rotated[:3]):
        lines = f.read_bytes().splitlines(keepends=True)
        at = rnd.randrange(2, len(lines))
        bad = [b"not json at all\n", lines[at][: len(lines[at]) // 2] + b"\n", b"[1, 2, 3]\n"]
        if n == 1:
            bad.append(b"x" * (R.MAX_LINE + 1) + ghost)
        f.write_bytes(b"".join(lines[:at] + bad + lines[at:]))


QUERIES = [
    Query(), Query(identity="alice"), Query(identity="ghost"), Query(kind="agent", decision="deny"),
    Query(table="users"), Query(table="orders"), Query(table="public.orders"), Query(table="payments"),
    Query(rule="late-rule"), Query(rule="pii-read"), Query(column="email"), Query(table="users", column="email"),
    Query(since=T0 + 40 * STEP + 17), Query(until=T0 + 33 * STEP - 5, identity="bob"),
    Query(since=T0 + 10 * STEP, until=T0 + 10 * STEP + HOUR // 2),
]
TARGETS = ["users", "users.email", "orders.total", "public.orders", "payments", "payments.card", "nothing"]


def _full_who(path: Path, target: str, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> list[dict[str, Any]]:
    with monkeypatch.context() as m:
        m.setattr(S, "_who_touched_indexed", lambda *a: None)
        return [t.to_dict() for t in who_touched(path, target, **kw)]


def _agree(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for q in QUERIES:
        full = list(search(path, q, index=False))
        assert list(search(path, q)) == full, q
        assert tail(path, 5, q) == full[-5:], q
    ranges: list[dict[str, Any]] = [{}, {"since": T0 + 20 * STEP + 1}, {"until": T0 + 50 * STEP - 1},
                                    {"since": T0 + 3 * STEP, "until": T0 + 3 * STEP + 3 * HOUR + 5},
                                    {"since": T0 + 9 * STEP, "until": T0 + 9 * STEP + 60}]
    for target in TARGETS:
        for kw in ranges:
            assert [t.to_dict() for t in who_touched(path, target, **kw)] == _full_who(path, target, monkeypatch,
                                                                                        **kw), (target, kw)
    # an index kept up to date incrementally compares equal with one built from the store in one go (what
    # verify does without the key): no false alarm
    problems, notes = check_index(path, None)
    assert problems == [] and any("the same" in n for n in notes), (problems, notes)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_index_answers_what_a_full_read_answers(tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Search, tail and who-touched through the index equal a full read: built once over rotated, damaged files,
    then updated with appends that bring outcomes of statements the index first saw without one."""
    rnd = random.Random(seed)
    path = tmp_path / "audit.jsonl"
    writer = _Writer(path, rnd)
    writer.run(260)
    _damage(path, rnd)
    _agree(path, monkeypatch)
    assert not open_index(path, update=False).inexact
    unknown_before = {r["seq"] for r in search(path, index=False) if r.get("outcome") == R.UNKNOWN}
    writer.run(60)  # outcomes of statements indexed while their outcome was still to come
    _agree(path, monkeypatch)
    assert any(r["seq"] in unknown_before and r["outcome"] != R.UNKNOWN for r in search(path, index=False))
    with path.open("ab") as f:  # a torn last line: left for later by both
        f.write(b'{"v":2,"type":"span","seq":7777777,"attrs":{"governed_db.decision":"allow"')
    _agree(path, monkeypatch)
    # the index was used, not bypassed: it holds the statements, and the ghost line was not taken for one
    idx = open_index(path)
    try:
        assert idx.inexact is None
        assert idx.statements() == sum(1 for _ in search(path, index=False))
        assert idx.db.execute("SELECT count(*) FROM stmt WHERE subject = 'ghost'").fetchone()[0] == 0
    finally:
        idx.close()


def test_who_touched_reads_the_hour_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Who-touched sums the index's per-hour counts (not one row per statement): corrupting a count in the
    index (and sealing it again, as someone without the key can) shows in the answer without the key, which is
    how we know the counts are what is read."""
    path = tmp_path / "audit.jsonl"
    _Writer(path, random.Random(5)).run(120)
    right = [t.to_dict() for t in who_touched(path, "users")]
    assert right == _full_who(path, "users", monkeypatch)
    idx = open_index(path)
    idx.db.execute("UPDATE touch SET n = n + 1000 WHERE shape IN (SELECT shape FROM shape_table WHERE last = 'users')")
    idx.seal()
    idx.close()
    assert sum(t.statements for t in who_touched(path, "users")) > sum(t["statements"] for t in right) + 999


def test_two_statements_with_one_seq_fall_back_to_a_full_read(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A store the index cannot mirror exactly (a seq used twice) is read front to back, with the same answer."""
    path = tmp_path / "audit.jsonl"
    _Writer(path, random.Random(9)).run(40)
    lines = path.read_bytes().splitlines(keepends=True)
    statement = next(line for line in lines if b'"type":"span"' in line and b"governed_db.decision" in line)
    path.write_bytes(b"".join([*lines, statement]))
    idx = open_index(path)
    try:
        assert idx.inexact is not None and "seq" in idx.inexact
    finally:
        idx.close()
    assert index_path(path).exists()
    full = list(search(path, Query(), index=False))
    assert list(search(path, Query())) == full and full.count(R.parse_line(statement)) == 2
    assert [t.to_dict() for t in who_touched(path, "users")] == _full_who(path, "users", monkeypatch)


def test_removed_oldest_files_leave_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the oldest files go (retention), their statements leave the index's answers too."""
    path = tmp_path / "audit.jsonl"
    _Writer(path, random.Random(11)).run(200)
    _agree(path, monkeypatch)
    rotated = sorted(p for p in path.parent.iterdir() if p.name.startswith(path.name + ".0"))
    for f in rotated[:2]:
        f.unlink()
    _agree(path, monkeypatch)


def test_index_of_another_schema_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An index written by another version (other columns) is rebuilt, not half-read or given up on."""
    import sqlite3

    path = tmp_path / "audit.jsonl"
    _Writer(path, random.Random(13)).run(30)
    db = sqlite3.connect(index_path(path))
    db.executescript("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT); INSERT INTO meta VALUES ('schema', '1');"
                     "CREATE TABLE stmt (seq INTEGER PRIMARY KEY, pos INTEGER);")
    db.close()
    idx = open_index(path)
    try:
        assert idx.inexact is None and idx.statements() == sum(1 for _ in search(path, index=False))
    finally:
        idx.close()
    _agree(path, monkeypatch)


@pytest.mark.parametrize("bounds", [{"since": 1 << 70}, {"until": -(1 << 70)}, {"since": -(1 << 70)},
                                    {"until": 1 << 70}, {"since": -(1 << 70), "until": 1 << 70}])
def test_time_bounds_beyond_64_bits(tmp_path: Path, bounds: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """A --since/--until past what SQLite holds (year 2262 on) answers like a full read, without an error."""
    path = tmp_path / "audit.jsonl"
    _Writer(path, random.Random(17)).run(30)
    q = Query(**bounds)
    assert list(search(path, q)) == list(search(path, q, index=False))
    assert [t.to_dict() for t in who_touched(path, "users", **bounds)] == _full_who(path, "users", monkeypatch,
                                                                                    **bounds)
