"""The C builders of a statement's records do what the Python code does, or decline and change nothing (0396).

``AuditStore.intent`` and ``AuditStore.defer_outcome`` build a statement's intent and outcome in one C call on their
usual path (``journal_intent``, ``defer_outcome`` in governed_db/_speedups.c). The Python code stays the reference:
the same records (every slot), the same journal frames (byte for byte), the same state of the journal and the
store; and on every other path the C call returns None having touched nothing, so that the Python code decides.
The chain's SHA-256 without the GIL (OpenSSL's, from the library hashlib loaded) is the same digest as hashlib's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governed_db._native import speedups
from governed_db.audit import journal as J
from governed_db.audit import records as R
from governed_db.audit import store as S
from governed_db.audit import verify

pytestmark = pytest.mark.skipif(speedups is None, reason="governed_db._speedups is not built here (no C compiler "
                                "at install time, or GOVERNED_DB_NO_EXTENSIONS set)")
KEY = b"k" * 32
text = st.text(max_size=20)
scalar = st.one_of(text, st.integers(min_value=-(2**63), max_value=2**63 - 1), st.booleans())
attrs = st.dictionaries(text, st.one_of(scalar, st.lists(text, max_size=3)), max_size=5)
ids = st.integers(min_value=0, max_value=2**64 - 1)
statements = st.lists(st.tuples(attrs, text, st.one_of(st.none(), ids), ids, st.integers(0, 2**62),
                                st.integers(0, 2**128 - 1), attrs), min_size=1, max_size=8)


@contextlib.contextmanager
def _python_only(on: bool) -> Iterator[None]:
    """The store's statement path without its C builders (the reference), when ``on``."""
    saved = S._native_intent, S._native_outcome
    if on:
        S._native_intent = S._native_outcome = None
    try:
        yield
    finally:
        S._native_intent, S._native_outcome = saved


@contextlib.contextmanager
def _store(path: Path, keyed: bool) -> Iterator[S.AuditStore]:
    """A store with its journal open and no flusher draining behind the test's back."""
    saved = S.DEFER_INTERVAL, J.MAX_LIVE
    S.DEFER_INTERVAL, J.MAX_LIVE = 3600.0, 10**6
    s = S.AuditStore(path, key=KEY if keyed else None, fsync_interval=3600.0, checkpoint_interval=None,
                     idle_close=None)
    try:
        head = R.intent_head(R.attributes_json({"db.query.text": "SELECT 1"}), "SELECT", "CLIENT")
        s.intent(head, None, 1, 1, 1, 1)  # opens the store (and its journal): written directly
        assert s._journal is not None
        yield s
    finally:
        S.DEFER_INTERVAL, J.MAX_LIVE = saved
        s.close()


def _slots(rec: R.Prepared) -> dict[str, Any]:
    names = [n for cls in type(rec).__mro__ for n in getattr(cls, "__slots__", ())]
    return {n: getattr(rec, n, "<unset>") for n in names}


def _run(s: S.AuditStore, spec: list[Any]) -> list[tuple[R.PreparedIntent, R.PreparedOutcome]]:
    done = []
    for a, name, parent, span, t, trace, late in spec:
        try:
            head = R.intent_head(R.attributes_json(a), name or "SELECT", "CLIENT")
        except ValueError:
            continue
        rec = s.intent(head, parent, 4242, span, t, trace)
        out = s.defer_outcome(dict(late), t + 1, rec, span)
        done.append((rec, out))
    return done


@settings(max_examples=40, deadline=None)
@given(statements, st.booleans())
def test_native_statement_records_are_the_python_ones(tmp_path_factory: Any, spec: list[Any], keyed: bool) -> None:
    tmp = tmp_path_factory.mktemp("records")
    seen = {}
    for python in (False, True):
        with _python_only(python), _store(tmp / f"{python}.jsonl", keyed) as s:
            done = _run(s, spec)
            j = s._journal
            assert j is not None
            state = (j.wpos, j.frames, len(j.queue), len(j.deferred), s._seq)
            frames = bytes(j.mm[J.HEADER_SIZE:j.wpos])
            recs = [(_slots(rec), {k: v for k, v in _slots(out).items() if k != "intent"}, out.intent is rec)
                    for rec, out in done]
            s.flush()
            assert s._journal is not None and not s._journal.queue
            seen[python] = (state, frames, recs)
        assert verify(tmp / f"{python}.jsonl", key=KEY if keyed else None).ok
    native, python = seen[False], seen[True]
    assert native[0] == python[0]
    assert native[2] == python[2]
    if not keyed:  # keyed frames carry a tag bound to each store's own id
        assert native[1] == python[1]
    lines = {p: [json.loads(x) for x in (tmp / f"{p}.jsonl").read_bytes().splitlines()] for p in (False, True)}
    chain = {"seq", "prev", "hash", "tag", "pid", "store", "time", "id", "key_id"}

    def body(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k not in chain}

    assert [body(r) for r in lines[False] if r.get("type") in ("intent", "outcome")] == \
        [body(r) for r in lines[True] if r.get("type") in ("intent", "outcome")]


def _state(s: S.AuditStore, mapping: bool = True) -> tuple[Any, ...]:
    j = s._journal
    assert j is not None
    # (a truncated journal's mapping is not read: its pages past the file's end are SIGBUS)
    return (j.wpos, j.frames, list(j.queue), list(j.deferred), j.closed, bytes(j.mm[:j.size]) if mapping else b"",
            s._seq)


def _head() -> bytes:
    return R.intent_head(R.attributes_json({"db.query.text": "SELECT 2"}), "SELECT", "CLIENT")


@pytest.mark.parametrize("case", ["trace_id_too_big", "negative_span", "float_time", "bytearray_head",
                                  "closed", "two_deferred", "other_store_id", "full", "truncated",
                                  "deferred_not_templated"])
def test_native_intent_declines_and_changes_nothing_off_the_usual_path(tmp_path: Path, case: str) -> None:
    with _store(tmp_path / "a.jsonl", keyed=False) as s:
        j = s._journal
        assert j is not None
        args: list[Any] = [s, j, _head(), None, 4242, 7, 10**18, 3]
        if case == "trace_id_too_big":
            args[7] = 2**128
        elif case == "negative_span":
            args[5] = -1
        elif case == "float_time":
            args[6] = 1.5
        elif case == "bytearray_head":
            args[2] = bytearray(_head())
        elif case == "closed":
            j.closed = True
        elif case == "two_deferred":
            rec = s.intent(_head(), None, 4242, 1, 1, 1)
            s.defer_outcome({}, 2, rec, 1)
            s.defer_outcome({}, 3, rec, 1)
        elif case == "other_store_id":
            s._store_id = "another"
        elif case == "full":
            j.wpos = j.size - 100
        elif case == "truncated":
            # cut to nothing: the frame's page is gone (a cut that leaves it is found at the drain: decision 0411)
            os.truncate(j.path, 0)
        elif case == "deferred_not_templated":
            rec = s.intent(_head(), None, 4242, 1, 1, 1)
            s.defer_outcome({"x": 1.5j}, 2, rec, 1)  # complex: the template raises, the Python code decides
        before = _state(s, case != "truncated")
        assert speedups.journal_intent(*args, S._DRAIN_AT) is None
        assert _state(s, case != "truncated") == before
        if case == "truncated":
            # the Python code then finds the truncation, and the intent goes to the store
            rec = s.intent(_head(), None, 4242, 9, 9, 9)
            assert j.broken and rec.seq >= 0
        if case == "full":
            j.wpos = J.HEADER_SIZE
        j.closed = False if case == "closed" else j.closed


def test_native_intent_drains_once_enough_records_wait(tmp_path: Path) -> None:
    with _store(tmp_path / "a.jsonl", keyed=False) as s:
        j = s._journal
        assert j is not None
        for i in range(S._DRAIN_AT // 2):
            rec = s.intent(_head(), None, 4242, i + 10, i, i)
            s.defer_outcome({"n": i}, i, rec, i + 10)
        before = s._seq
        assert len(j.queue) == S._DRAIN_AT - 1 and len(j.deferred) == 1
        rec = s.intent(_head(), None, 4242, 99, 99, 99)  # the outcome before it and itself: past DRAIN_AT
        assert not j.queue and s._seq == before + S._DRAIN_AT + 1 and rec.seq == s._seq


def test_native_outcome_wakes_the_flusher_and_falls_back_to_the_store(tmp_path: Path) -> None:
    with _store(tmp_path / "a.jsonl", keyed=False) as s:
        j = s._journal
        assert j is not None
        rec = s.intent(_head(), None, 4242, 5, 5, 5)
        s._wake.clear()
        for i in range(S._MAX_DEFERRED):
            s.defer_outcome({}, i, rec, 5)
        assert s._wake.is_set() and len(j.deferred) == S._MAX_DEFERRED
        assert speedups.defer_outcome(s, ["not", "a", "dict"], 1, rec, 5, os.getpid(), 256) is None
        j.closed = True  # closed meanwhile (idle close): the store writes it now, as defer() does
        seq = s._seq
        out = s.defer_outcome({"late": True}, 7, rec, 5)
        assert out.written and s._seq > seq
        j.closed = False


def test_a_statement_error_outcome_still_goes_to_the_store_at_once(tmp_path: Path) -> None:
    """Only successes take the native deferral: a refusal or failure is appended before the error is raised."""
    import sqlite3

    import governed_db

    path = tmp_path / "a.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (id INTEGER)")
    conn = governed_db.wrap(raw, identity=governed_db.Identity("bot", kind="agent"), environment="production",
                            audit=str(path))
    conn.execute("SELECT * FROM t").fetchall()
    with pytest.raises(governed_db.GuardrailViolation):
        conn.execute("DROP TABLE t")
    assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone() == (1,)
    on_disk = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert any(r.get("type") == "outcome" and r.get("status") == "ERROR" for r in on_disk)
    conn.close()
    assert verify(path).ok


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_the_chain_digest_without_the_gil_is_hashlibs(data: bytes) -> None:
    got = speedups.native_sha256(data)
    if got is None:
        pytest.skip("OpenSSL's SHA256() was not found in this process: the chain hashes through hashlib")
    assert got == hashlib.sha256(data).digest()


junk = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=5), st.binary(max_size=5),
                 st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.lists(junk, min_size=9, max_size=9), st.sets(st.integers(0, 8)))
def test_native_builders_take_any_arguments_without_crashing(tmp_path_factory: Any, values: list[Any],
                                                             real: set[int]) -> None:
    with _store(tmp_path_factory.mktemp("junk") / "a.jsonl", keyed=False) as s:
        good: list[Any] = [s, s._journal, _head(), None, 4242, 7, 10**18, 3, 64]
        args = [good[i] if i in real else v for i, v in enumerate(values)]
        with contextlib.suppress(Exception):
            speedups.journal_intent(*args)
        good7: list[Any] = [s, {}, 5, None, 7, os.getpid(), 256]
        with contextlib.suppress(Exception):
            speedups.defer_outcome(*[good7[i] if i in real else v for i, v in enumerate(values[:7])])
        assert s._journal is not None
        s._journal.deferred.clear()  # outcomes of junk intents are the caller's error: not chained at close
        s._deferred.clear()


msgs = st.one_of(st.none(), st.just(""), text)
statuses = st.one_of(st.sampled_from(["UNSET", "OK", "ERROR"]), text)


@settings(max_examples=400, deadline=None)
@given(attrs, st.one_of(st.integers(-(2**70), 2**70), st.just(1.5)), st.integers(-5, 2**65), statuses, msgs,
       st.one_of(st.integers(-3, 2**64), st.none()), st.booleans())
def test_native_outcome_pieces_and_parts_are_the_python_ones(a: dict[str, Any], end: Any, span: int, status: str,
                                                             msg: str | None, intent_seq: int | None,
                                                             cached: bool) -> None:
    # the intent by seq, or by record (its seq set once chained: -1 before)
    intent: Any = intent_seq if intent_seq is not None else R.PreparedIntent(b"{", None, 1, 1, 1, 1)
    out = R.PreparedOutcome(dict(a), end=end, intent=intent, span_id=span, status=status, status_message=msg)

    def python(method: str) -> Any:
        try:
            return getattr(out, method)()
        except (TypeError, ValueError, OverflowError) as e:
            return type(e)

    got = speedups.outcome_pieces(out)
    if got is not None:  # it declines what it does not template; what it builds is the Python method's
        assert got == python("pieces")
    if cached and isinstance(python("pieces"), tuple):
        out.cached = python("pieces")
    expected = python("parts")
    try:
        native: Any = speedups.chain([out], 0, 41, b"0" * 64, None, R.MAX_LINE)
    except (TypeError, ValueError, OverflowError) as e:
        native = type(e)
    if isinstance(expected, tuple):
        line = R.chain_prepared(out, 42, b"0" * 64, None)
        assert native[0] == 1 and native[1] == line
    else:
        assert native == expected or native[0] == 0  # the Python loop then raises what parts() raises


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 10**6), st.lists(text, max_size=3), st.booleans(), attrs)
def test_native_fold_is_amend(tmp_path_factory: Any, rows: int, cells: int, columns: list[str], written: bool,
                              late: dict[str, Any]) -> None:
    with _store(tmp_path_factory.mktemp("fold") / "a.jsonl", keyed=False) as s:
        results = []
        for native in (True, False):
            out = R.PreparedOutcome(dict(late), end=1, intent=3, span_id=5, status="UNSET", status_message=None)
            out.written = written
            if native:
                done = speedups.fold(s, out, rows, cells, tuple(columns))
            else:
                folded: dict[str, Any] = {"db.response.returned_rows": rows, "governed_db.rows_returned": rows,
                                          "governed_db.masked_cells": cells}
                if columns:
                    folded["governed_db.masked_columns"] = list(columns)
                done = s.amend(out, folded)
            results.append((done, out.attrs, out.pieces()))
        assert results[0] == results[1]


# -- the span: started with its intent, ended with its outcome (start_span, end_span) -------------------------------
def _processor(path: Path) -> Any:
    from governed_db.audit import audit_processor
    from governed_db.telemetry import _configure_native

    _configure_native()
    return audit_processor({"path": str(path), "fsync_interval": 3600.0, "checkpoint_interval": None})


def _span_slots(span: Any) -> dict[str, Any]:
    return {n: getattr(span, n, "<unset>") for n in type(span).__slots__ if n not in ("_processor", "intent",
                                                                                       "outcome")}


@settings(max_examples=25, deadline=None)
@given(attrs, st.integers(1, 2**62), st.integers(0, 2**62), st.booleans(), st.integers(0, 2**32))
def test_native_span_is_the_python_span(tmp_path_factory: Any, a: dict[str, Any], start: int, took: int,
                                        ended_at_zero: bool, seed: int) -> None:
    import random

    from opentelemetry.trace import SpanKind

    from governed_db import telemetry as T

    tmp = tmp_path_factory.mktemp("spans")
    try:
        head = R.intent_head(R.attributes_json(a), "SELECT", "CLIENT")
    except ValueError:
        return
    seen = []
    saved = list(T._native)
    saved_interval, saved_live = S.DEFER_INTERVAL, J.MAX_LIVE
    # (stores other tests of this process left open count against the per-process cap of journals: not these)
    S.DEFER_INTERVAL, J.MAX_LIVE = 3600.0, 10**6
    try:
        for native in (True, False):
            proc = _processor(tmp / f"{native}.jsonl")
            proc.store.intent(head, None, 1, 1, 1, 1)  # opens the store and its journal
            random.seed(seed)  # the same ids both ways
            if native:
                span = speedups.start_span(proc, "SELECT", start, dict(a), head)
                assert span is not None and type(span) is T.AuditOnlySpan
            else:
                T._native[:] = [None, None, False]
                span = T.AuditOnlySpan(proc, "SELECT", SpanKind.CLIENT, start, dict(a), None, head)
            span.set_attribute("governed_db.rows_affected", 3)
            span.end(0 if ended_at_zero else start + took)
            T._native[:] = saved
            j = proc.store._journal
            intent, out = span.intent, span.outcome
            assert intent is not None and out is not None and proc.last_error is None
            seen.append((_span_slots(span) | {"end_time": span.end_time if not ended_at_zero else "now"},
                         intent.pieces, _slots(out) | {"intent": out.intent is intent, "end": out.end == span.end_time},
                         bytes(j.mm[J.HEADER_SIZE:j.wpos]), j.frames, list(j.deferred) == [out]))
            proc.shutdown()
    finally:
        T._native[:] = saved
        S.DEFER_INTERVAL, J.MAX_LIVE = saved_interval, saved_live
    assert seen[0] == seen[1]


def test_native_span_declines_off_its_path_and_reports_a_failed_intent(tmp_path: Path) -> None:
    from opentelemetry import context, trace

    from governed_db import telemetry as T

    saved_live, J.MAX_LIVE = J.MAX_LIVE, 10**6
    proc = _processor(tmp_path / "a.jsonl")
    head = R.intent_head(R.attributes_json({"k": "v"}), "SELECT", "CLIENT")
    try:
        assert speedups.start_span(proc, "SELECT", 5, {}, None) is None  # no prepared head: the general path
        outer = trace.NonRecordingSpan(trace.SpanContext(1, 2, False))
        token = context.attach(trace.set_span_in_context(outer))
        try:
            assert speedups.start_span(proc, "SELECT", 5, {}, head) is None  # a current span: __init__ nests it
        finally:
            context.detach(token)
        span = speedups.start_span(proc, "SELECT", 5, {}, head)
        span.set_status(trace.Status(trace.StatusCode.ERROR, "boom"))
        assert speedups.end_span(span, None) is None  # a status set: end_prepared appends it now
        span.end()
        assert span.outcome is None and span._ended
        assert speedups.end_span(span, None) is None  # ended already
        # the intent cannot be written: the span starts without one and the error is what the pipeline reads
        proc.store._failing = True

        def refuse(*args: Any) -> Any:
            raise OSError("disk full")

        proc.store.intent = refuse
        span = speedups.start_span(proc, "SELECT", 5, {}, head)
        assert type(span) is T.AuditOnlySpan and span.intent is None
        assert isinstance(proc.last_error, OSError)
    finally:
        J.MAX_LIVE = saved_live
        proc.store._failing = False
        del proc.store.intent
        proc.shutdown()


def test_a_stale_build_of_the_helpers_is_not_used_half_way(caplog: pytest.LogCaptureFixture) -> None:
    """An editable install updated without rebuilding keeps an older module: missing one function, the whole
    extension is set aside with a warning saying how to rebuild it, and the pure-Python code runs (wrap() failed
    with AttributeError before)."""
    import types

    from governed_db import _native

    stale = types.ModuleType("governed_db._speedups")
    for name in _native.REQUIRED:
        if name != "fold_span":
            setattr(stale, name, getattr(speedups, name))
    with caplog.at_level("WARNING", logger="governed_db"):
        assert _native.usable(stale) is None
    assert "fold_span" in caplog.text and "pip install -e ." in caplog.text
    assert _native.usable(speedups) is speedups
    assert _native.usable(None) is None
