"""Prepared (templated) audit records are byte for byte what the general encoder makes of the same record.

``verify`` rebuilds every line with the general encoder and compares bytes, so a template that differed in
one byte would make an honest store look tampered with; these tests pin the equality for arbitrary content.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import governed_db
from governed_db.audit import read_records, verify
from governed_db.audit import records as R
from governed_db.audit.store import AuditStore

KEY = b"k" * 32
text = st.text(max_size=40)
scalar = st.one_of(text, st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans())
attrs = st.dictionaries(text, st.one_of(scalar, st.lists(text, max_size=4)), max_size=8)
ids = st.integers(min_value=0, max_value=2**64 - 1)


def _general(body: dict[str, Any], seq: int, prev: str, rkey: bytes | None) -> tuple[bytes, str]:
    return R.encode({**body, "seq": seq, "prev": prev}, rkey)


@settings(max_examples=300, deadline=None)
@given(attrs, text, ids, ids, st.one_of(st.none(), ids), st.integers(0, 2**62), st.integers(0, 2**31),
       st.integers(0, 2**40), st.booleans())
def test_prepared_intent_is_the_general_encoding(a: dict[str, Any], name: str, trace: int, span: int,
                                                 parent: int | None, t: int, pid: int, seq: int,
                                                 keyed: bool) -> None:
    try:
        head = R.intent_head(R.attributes_json(a), name, "CLIENT")
    except ValueError:  # a lone surrogate: the recorder takes the general path for such a statement
        return
    rec = R.PreparedIntent(head, parent, pid, span, t, trace % 2**128)
    rkey = R.record_key(KEY) if keyed else None
    prev = f"{seq:064x}"
    body = {"v": 2, "type": "intent", "time": t, "name": name, "kind": "CLIENT", "trace_id": f"{trace % 2**128:032x}",
            "span_id": f"{span:016x}", "parent_span_id": None if parent is None else f"{parent:016x}",
            "attrs": R._attributes(a), "pid": pid}
    assert R.encode_prepared(rec, seq, prev, rkey) == _general(body, seq, prev, rkey)
    assert rec.body() == body  # what the rare general paths (oversized, unusual values) rebuild it from


@settings(max_examples=300, deadline=None)
@given(attrs, ids, st.integers(0, 2**62), st.integers(0, 2**40), st.sampled_from(["UNSET", "OK", "ERROR"]),
       st.one_of(st.none(), text), st.booleans())
def test_prepared_outcome_is_the_general_encoding(a: dict[str, Any], span: int, end: int, intent: int,
                                                  status: str, message: str | None, keyed: bool) -> None:
    rec = R.PreparedOutcome(dict(a), end=end, intent=intent, span_id=span, status=status, status_message=message)
    rkey = R.record_key(KEY) if keyed else None
    try:
        line = R.encode_prepared(rec, 7, "0" * 64, rkey)
    except TypeError:  # a lone surrogate: the store writes such a record the general way (test below)
        return
    assert line == _general(rec.body(), 7, "0" * 64, rkey)


def test_a_record_the_template_cannot_encode_is_written_the_general_way(tmp_path: Path) -> None:
    """A lone surrogate (orjson refuses it) or a huge attribute: the store falls back; the chain verifies."""
    store = AuditStore(tmp_path / "a.jsonl", key=KEY)
    big = {"y": "z" * (R.MAX_LINE + 10)}
    seq = store.append(R.PreparedIntent(R.intent_head(R.attributes_json(big), "SELECT", "CLIENT"), None, 1, 5, 1, 1))
    store.append(R.PreparedOutcome({"x": "\ud800"}, end=2, intent=seq, span_id=5, status="OK",
                                   status_message=None))
    store.close()
    recs = [r for r in read_records(tmp_path / "a.jsonl", merge=False) if r.get("type") in (R.INTENT, R.OUTCOME)]
    assert len(recs[0]["attrs"]["y"]) < R.MAX_LINE and recs[0]["attrs"]["y.length"] == R.MAX_LINE + 10
    assert recs[1]["attrs"]["x"] == "\\ud800"
    assert verify(tmp_path / "a.jsonl", key=KEY).ok


def test_statements_recorded_through_templates_verify_with_the_key(tmp_path: Path) -> None:
    """The hot path end to end: intents, outcomes with folded results, refusals, errors — verify passes."""
    path = tmp_path / "audit.jsonl"
    conn = governed_db.wrap(sqlite3.connect(":memory:"), identity=governed_db.Identity("bot", kind="agent"),
                            environment="production", audit={"path": str(path), "key": KEY})
    for i in range(50):
        conn.execute("SELECT ? + 1", (i,)).fetchall()
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT * FROM no_such_table")
    with pytest.raises(governed_db.GuardrailViolation):
        conn.execute("DROP TABLE x")
    conn.close()
    statements = [r for r in read_records(path) if R.is_statement(r)]
    assert len(statements) == 52
    assert all(r["attrs"]["governed_db.rows_returned"] == 1 for r in statements[:50])
    assert statements[50]["status"] == "ERROR" and statements[51]["attrs"]["governed_db.decision"] == "deny"
    result = verify(path, key=KEY)
    assert result.ok and result.outcome_unknown == 0


@pytest.mark.parametrize(
    ("later", "expected"),
    [
        ({}, {}),  # nothing set since the start
        ({"governed_db.rows_affected": 3}, {"governed_db.rows_affected": 3}),  # added after the start attributes
        ({"db.operation.name": "DELETE", "x.y": 1}, {"db.operation.name": "DELETE", "x.y": 1}),  # one overwritten
        ({"governed_db.tables": ["a", "b"]}, {}),  # the same list again: the SDK keeps a tuple, still unchanged
        ({"governed_db.tables": ["a"]}, {"governed_db.tables": ("a",)}),  # a list that changed
    ],
)
def test_an_sdk_span_outcome_holds_what_changed_since_its_start(later: dict[str, Any], expected: dict[str, Any]
                                                                ) -> None:
    """The outcome of a statement recorded through an application's SDK provider carries the attributes set or
    changed after the span started (compared in bulk when the start attributes lead unchanged, one by one else)."""
    from opentelemetry.sdk.trace import TracerProvider

    started = {"db.operation.name": "SELECT", "db.system.name": "sqlite", "governed_db.tables": ["a", "b"]}
    for _ in range(2):  # the second time from the cached snapshot of the start attributes
        span: Any = TracerProvider().get_tracer("t").start_span("SELECT", attributes=started)
        for k, v in later.items():
            span.set_attribute(k, v)
        span.end()
        assert R.outcome_body(span, intent_seq=1, started=started).attrs == expected
