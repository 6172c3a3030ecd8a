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
    rec = R.PreparedIntent(head, a, name, "CLIENT", trace_id=trace % 2**128, span_id=span, parent=parent,
                           time_ns=t, pid=pid)
    rkey = R.record_key(KEY) if keyed else None
    prev = f"{seq:064x}"
    assert R.encode_prepared(rec, seq, prev, rkey) == _general(rec.body(), seq, prev, rkey)


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
    seq = store.append(R.PreparedIntent(R.intent_head(R.attributes_json(big), "SELECT", "CLIENT"), big, "SELECT",
                                        "CLIENT", trace_id=1, span_id=5, parent=None, time_ns=1, pid=1))
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
