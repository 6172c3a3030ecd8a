"""A result read whole, counted in C, is recorded as the Python code records it — or declined, with nothing changed.

``fetchall()`` of an unmasked, uncapped result in the default configuration goes through ``rows_all`` (decision
0412): the rows are counted and the count folded into the statement's deferred outcome, as ``ResultState.many``,
``finish`` and ``Recorder.result_consumed`` do. The Python code stays the reference: the same store records, the same
state of the result; every other result (masked, capped, poisoned, rate-limited, an outcome already written, rows
that are not a list, an SDK span) is declined and runs the Python code.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import governed_db
from governed_db import results
from governed_db._native import speedups
from governed_db.audit import read_records, verify
from governed_db.audit import records as R
from governed_db.results import ResultState

pytestmark = pytest.mark.skipif(speedups is None, reason="governed_db._speedups is not built here (no C compiler "
                                "at install time, or GOVERNED_DB_NO_EXTENSIONS set)")
AGENT = governed_db.Identity("rows-agent", kind="agent", on_behalf_of="alice")


@contextlib.contextmanager
def _python_only(on: bool) -> Iterator[None]:
    saved = results.native_rows[0]
    if on:
        results.native_rows[0] = None
    try:
        yield
    finally:
        results.native_rows[0] = saved


def _session(path: Path, **options: Any) -> Any:
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    raw.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"item {i}", i * 1.5) for i in range(1000)])
    # (1,000 rows: a table read whole by the sample has its text column watched, decision 0268 — a plan)
    raw.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT)")
    raw.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"user{i}@example.com") for i in range(50)])
    raw.commit()
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=str(path), **options)


def _body(rec: dict[str, Any]) -> dict[str, Any]:
    drop = {"seq", "prev", "hash", "tag", "pid", "store", "time", "end", "span_id", "trace_id", "intent_seq", "id",
            "parent_span_id", "key_id"}
    return {k: v for k, v in rec.items() if k not in drop}


# what a statement of the run reads: a point read, a range, nothing, a masked column, a capped read
READS = [
    ("SELECT id, name, price FROM items WHERE id = ?", (3,)),
    ("SELECT id, name FROM items WHERE id < ?", (20,)),
    ("SELECT id FROM items WHERE id > ?", (1000,)),
    ("SELECT id, email FROM people WHERE id = ?", (4,)),
    ("SELECT id, name FROM items LIMIT 10", ()),
]


def _run(path: Path, plan: list[tuple[int, str]], python: bool) -> tuple[list[Any], list[tuple[Any, ...]]]:
    seen: list[tuple[Any, ...]] = []
    conn = _session(path)
    with _python_only(python):
        cur = conn.cursor()
        for which, how in plan:
            sql, params = READS[which]
            cur.execute(sql, params)
            if how == "all":
                rows = cur.fetchall()
            elif how == "many":
                rows = cur.fetchmany(3) + cur.fetchall()
            else:
                rows = [cur.fetchone()]
            st_: ResultState = cur._self_result
            seen.append((rows, st_.rows, st_.masked_cells, st_.span is None, st_.active))
    conn.close()
    return [_body(r) for r in read_records(path) if r.get("type") in ("intent", "outcome", "result")], seen


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(READS) - 1), st.sampled_from(["all", "many", "one"])), min_size=1,
                max_size=12))
def test_a_result_read_whole_is_recorded_as_the_python_code_records_it(tmp_path_factory: Any,
                                                                     plan: list[tuple[int, str]]) -> None:
    tmp = tmp_path_factory.mktemp("rows")
    native = _run(tmp / "native.jsonl", plan, python=False)
    python = _run(tmp / "python.jsonl", plan, python=True)
    assert native == python
    assert verify(tmp / "native.jsonl").ok


def test_the_usual_path_is_taken_and_the_count_lands_in_the_outcome(tmp_path: Path) -> None:
    conn = _session(tmp_path / "a.jsonl")
    assert results.native_rows[0] is speedups.rows_all
    calls: list[bool] = []

    def counting(st_: Any, rows: Any) -> Any:
        done = speedups.rows_all(st_, rows)
        calls.append(done)
        return done

    with contextlib.ExitStack() as stack:
        saved = results.native_rows[0]
        stack.callback(lambda: results.native_rows.__setitem__(0, saved))
        results.native_rows[0] = counting
        cur = conn.cursor()
        cur.execute("SELECT id, name FROM items WHERE id < ?", (7,))
        assert cur.fetchall() == [(i, f"item {i}") for i in range(7)]
        cur.execute("SELECT id, email FROM people WHERE id = ?", (4,))  # masked: the Python code masks it
        (row,) = cur.fetchall()
        assert row[1] != "user4@example.com"
    assert calls == [True, False]
    conn.close()
    stmts = [r for r in read_records(tmp_path / "a.jsonl") if R.is_statement(r)]
    (point,) = [s for s in stmts if "id < ?" in s["attrs"]["db.query.text"]]
    assert point["attrs"]["governed_db.rows_returned"] == 7


def test_declines_change_nothing(tmp_path: Path) -> None:
    conn = _session(tmp_path / "a.jsonl")
    cur = conn.cursor()
    cur.execute("SELECT id FROM items WHERE id < ?", (5,))
    st_: ResultState = cur._self_result
    rows = [(i,) for i in range(5)]

    def state() -> tuple[Any, ...]:
        return (st_.active, st_.rows, st_.masked_cells, st_.span, st_.plan, st_.limit, st_.poisoned)

    before = state()
    assert st_.span is not None  # recorded: the count is still to fold
    for bad in ((i for i in rows), tuple(rows), None):  # not a list
        assert speedups.rows_all(st_, bad) is False and state() == before
    assert speedups.rows_all(object(), rows) is False
    st_.limit = 3  # capped: the Python code cuts the rows
    assert speedups.rows_all(st_, rows) is False
    st_.limit = None
    st_.poisoned = RuntimeError("withheld")
    assert speedups.rows_all(st_, rows) is False
    st_.poisoned = None
    st_.rows = 2**70  # a big count is still counted exactly
    assert state() != before
    st_.rows = 0
    assert state() == before
    with pytest.raises(TypeError):
        speedups.rows_all(st_)  # type: ignore[call-arg]
    assert speedups.rows_all(st_, rows) is True
    assert (st_.rows, st_.masked_cells, st_.span) == (5, 0, None)
    # the span let go of: a second read whole of the same result is only counted
    assert speedups.rows_all(st_, rows) is True and st_.rows == 10
    conn.close()
    assert verify(tmp_path / "a.jsonl").ok


def test_a_rate_limited_identity_is_told_its_rows_by_the_python_code(tmp_path: Path) -> None:
    policy = governed_db.policy.load_policy({"limits": [{"when": {"kind": "agent"}, "rows_per_minute": 4}]})
    conn = _session(tmp_path / "a.jsonl", policy=policy)
    cur = conn.cursor()
    cur.execute("SELECT id FROM items WHERE id < ?", (3,))
    assert speedups.rows_all(cur._self_result, [(i,) for i in range(3)]) is False  # declined: nothing counted
    assert cur._self_result.rows == 0
    assert cur.fetchall() == [(0,), (1,), (2,)]  # the Python code counts them against the budget
    cur.execute("SELECT id FROM items WHERE id < ?", (3,))
    with pytest.raises(governed_db.GuardrailViolation):  # 3 + 3 rows > 4 a minute
        cur.fetchall()
        cur.execute("SELECT id FROM items WHERE id < ?", (3,))
    conn.close()
