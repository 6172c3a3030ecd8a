"""The optional C helpers write exactly the bytes of the pure-Python code they stand in for (decision 0335).

``verify`` rebuilds every line with the general encoder and recovery re-reads every journal frame, so one byte of
difference would make an honest store look tampered with, or lose a crash's intents; these tests pin the equality
on random content, and CI requires the helpers to be built (``GOVERNED_DB_REQUIRE_SPEEDUPS=1``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governed_db._native import speedups
from governed_db.audit import journal as J
from governed_db.audit import records as R
from governed_db.audit import verify

needs_speedups = pytest.mark.skipif(speedups is None, reason="governed_db._speedups is not built here "
                                    "(no C compiler at install time, or GOVERNED_DB_NO_EXTENSIONS set)")
KEY = b"k" * 32
text = st.text(max_size=30)
scalar = st.one_of(text, st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans())
attrs = st.dictionaries(text, st.one_of(scalar, st.lists(text, max_size=3)), max_size=6)
ids = st.integers(min_value=0, max_value=2**64 - 1)


def test_the_helpers_are_built_where_ci_requires_them() -> None:
    if os.environ.get("GOVERNED_DB_REQUIRE_SPEEDUPS") != "1":
        pytest.skip("GOVERNED_DB_REQUIRE_SPEEDUPS is not set (CI sets it)")
    assert speedups is not None, "pip install -e . did not build governed_db._speedups"


def test_the_environment_switch_turns_them_off() -> None:
    out = subprocess.run([sys.executable, "-c", "from governed_db._native import speedups; print(speedups)"],
                         env={**os.environ, "GOVERNED_DB_NO_EXTENSIONS": "1"}, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "None"


def _intent(a: dict[str, Any], name: str, parent: int | None, span: int, t: int) -> R.PreparedIntent | None:
    try:
        head = R.intent_head(R.attributes_json(a), name, "CLIENT")
    except ValueError:
        return None
    return R.PreparedIntent(head, parent, 4242, span, t, (span * 7) % 2**128)


records = st.lists(st.tuples(attrs, text, st.one_of(st.none(), ids), ids, st.integers(0, 2**62),
                             st.sampled_from(["UNSET", "OK", "ERROR"]), st.one_of(st.none(), text)),
                   min_size=1, max_size=6)


def _batch(spec: list[Any], intent_seq: int) -> list[R.Prepared]:
    out: list[R.Prepared] = []
    for a, name, parent, span, t, status, msg in spec:
        rec = _intent(a, name, parent, span, t)
        if rec is None:
            continue
        out.append(rec)
        # the outcome names its intent by object (waiting in the same batch) or by seq (chained earlier)
        intent: int | R.Prepared = rec if span % 2 else intent_seq
        out.append(R.PreparedOutcome(dict(a), end=t + 5, intent=intent, span_id=span, status=status,
                                     status_message=msg))
    return out


@needs_speedups
@settings(max_examples=300, deadline=None)
@given(records, st.integers(0, 2**40), st.integers(0, 2**256 - 1), st.booleans())
def test_native_chain_is_the_python_chain(spec: list[Any], seq: int, prev: int, keyed: bool) -> None:
    rkey = R.record_key(KEY) if keyed else None
    start = f"{prev:064x}".encode()
    mine, theirs = _batch(spec, 3), _batch(spec, 3)
    # the reference: records.chain_prepared one after another, as _write_many's Python loop does
    expected: list[bytes] = []
    p, s = start, seq
    end = R.hash_end(keyed)
    stopped = len(theirs)
    for i, rec in enumerate(theirs):
        s += 1
        rec.seq = s
        try:
            line = R.chain_prepared(rec, s, p, rkey)
        except (TypeError, ValueError):
            stopped = i
            break
        expected.append(line)
        p = line[end - 64 : end]
    done, data, last, kind = speedups.chain(mine, 0, seq, start, rkey, R.MAX_LINE)
    assert done == stopped
    assert data == b"".join(expected)
    assert last == p
    assert [r.seq for r in mine[:done]] == [r.seq for r in theirs[:done]]
    assert all(r.written for r in mine[:done]) and not any(r.written for r in mine[done:])
    if done:
        assert kind == mine[done - 1].type
        for line in data.splitlines():  # and every line is what the general encoder makes of it
            rec = json.loads(line)
            assert R.expected_line(rec, rkey) == line + b"\n"


@needs_speedups
def test_native_chain_stops_at_what_the_template_cannot_encode() -> None:
    ok = _intent({"a": "b"}, "SELECT", None, 5, 1)
    assert ok is not None
    bad = R.PreparedOutcome({"x": "\ud800"}, end=2, intent=ok, span_id=5, status="OK", status_message=None)
    after = _intent({"c": "d"}, "SELECT", None, 6, 3)
    done, data, last, kind = speedups.chain([ok, bad, after], 0, 0, b"0" * 64, None, R.MAX_LINE)
    assert (done, kind) == (1, R.INTENT) and data.count(b"\n") == 1 and not bad.written
    # an oversized line is left to the general path (which shortens it) too
    done, data, last, kind = speedups.chain([after], 0, 0, b"0" * 64, None, 50)
    assert (done, data, last) == (0, b"", b"0" * 64) and not after.written
    # a sequence other than a list or tuple: all of it the general way
    assert speedups.chain(iter([after]), 0, 0, b"0" * 64, None, R.MAX_LINE)[0] == 0


def _journal(tmp: Path, name: str, keyed: bool) -> J.Journal:
    # stores other tests of this process left open count against the per-process cap: not these two
    saved, J.MAX_LIVE = J.MAX_LIVE, 10**6
    try:
        j = J.Journal(tmp / name, KEY if keyed else None, size=64 * 1024)
    finally:
        J.MAX_LIVE = saved
    assert j._bind("store-id-1")
    return j


@needs_speedups
@settings(max_examples=60, deadline=None)
@given(records, st.integers(-1, 2**40), st.booleans())
def test_native_frame_is_the_python_frame(tmp_path_factory: Any, spec: list[Any], floor: int, keyed: bool) -> None:
    tmp = tmp_path_factory.mktemp("frames")
    native, python = _journal(tmp, "n.jsonl", keyed), _journal(tmp, "p.jsonl", keyed)
    try:
        for j, use in ((native, J._native_frame), (python, None)):
            saved, J._native_frame = J._native_frame, use
            try:
                batch = _batch(spec, 3)
                out: R.PreparedOutcome | None = None
                for rec in batch:
                    if isinstance(rec, R.PreparedOutcome):
                        out = rec
                        continue
                    assert isinstance(rec, R.PreparedIntent)
                    waiting = j.put_intent(rec, out, floor, "store-id-1")
                    assert waiting == len(j.queue) > 0
                    out = None
            finally:
                J._native_frame = saved
        assert native.wpos == python.wpos and native.frames == python.frames
        assert native.mm[J.HEADER_SIZE:native.wpos] == python.mm[J.HEADER_SIZE:python.wpos]
        assert native.mm[native.wpos:native.wpos + 16] == bytes(16)
    finally:
        native.close(remove=True)
        python.close(remove=True)


@needs_speedups
def test_native_frame_refuses_what_does_not_fit_and_a_truncated_file(tmp_path: Path) -> None:
    j = _journal(tmp_path, "a.jsonl", False)
    try:
        rec = _intent({"k": "v" * 100}, "SELECT", None, 1, 1)
        assert rec is not None
        a, b = rec.pieces
        assert speedups.frame(j.mm, j.fd, j.size - 40, j.size, 1, 0, -1, a, b, None, None, -1, -1, None) == 0
        assert j.mm[j.size - 40:] == bytes(40)
        os.truncate(j.path, j.size // 2)  # another process cut it: the mapping past its end would be SIGBUS
        assert speedups.frame(j.mm, j.fd, J.HEADER_SIZE, j.size, 1, 0, -1, a, b, None, None, -1, -1, None) == -1
        assert j.put_intent(rec, None, -1, "store-id-1") == 0 and j.broken
    finally:
        j.close(remove=True)


_WRITER = """
import sqlite3, sys, governed_db
raw = sqlite3.connect(":memory:")
raw.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT)")
conn = governed_db.wrap(raw, identity=governed_db.Identity("bot", kind="agent"),
                        environment="production", audit={"path": sys.argv[1], "key": b"k" * 32})
for i in range(300):
    conn.execute("INSERT INTO t VALUES (?, ?)", (i, f"user{i}@example.com"))
    conn.execute("SELECT id, email FROM t WHERE id = ?", (i,)).fetchall()
conn.close()
"""


@pytest.mark.parametrize("native", [True, False], ids=["native", "pure-python"])
def test_a_store_written_either_way_verifies_and_holds_the_same_records(tmp_path: Path, native: bool) -> None:
    if native and speedups is None:
        pytest.skip("governed_db._speedups is not built here")
    env = dict(os.environ)
    if not native:
        env["GOVERNED_DB_NO_EXTENSIONS"] = "1"
    path = tmp_path / "audit.jsonl"
    subprocess.run([sys.executable, "-c", _WRITER, str(path)], env=env, check=True, timeout=120)
    assert verify(path, key=KEY).ok
    recs = [json.loads(line) for line in path.read_bytes().splitlines()]
    intents = [r for r in recs if r.get("type") == R.INTENT]
    outcomes = [r for r in recs if r.get("type") == R.OUTCOME]
    assert len(intents) == len(outcomes) == 600
    assert [r["seq"] for r in recs] == list(range(recs[0]["seq"], recs[0]["seq"] + len(recs)))
    # a read's row count travels in its outcome, or in a result record when the flusher wrote the outcome first
    reads = [r for r in recs if r.get("type") in (R.OUTCOME, R.SPAN) and r["attrs"].get("governed_db.rows_returned")]
    assert len(reads) == 300 and all(r["attrs"].get("governed_db.masked_columns") == ["email"] for r in reads)
