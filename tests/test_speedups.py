"""The optional C helpers write exactly the bytes of the pure-Python code they stand in for (decision 0335).

``verify`` rebuilds every line with the general encoder and recovery re-reads every journal frame, so one byte of
difference would make an honest store look tampered with, or lose a crash's intents; these tests pin the equality
on random content, and CI requires the helpers to be built (``GOVERNED_DB_REQUIRE_SPEEDUPS=1``).
"""

from __future__ import annotations

import contextlib
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


def _batch(spec: list[Any], intent_seq: int, cache: bool = False) -> list[R.Prepared]:
    out: list[R.Prepared] = []
    for a, name, parent, span, t, status, msg in spec:
        rec = _intent(a, name, parent, span, t)
        if rec is None:
            continue
        out.append(rec)
        # the outcome names its intent by object (waiting in the same batch) or by seq (chained earlier)
        intent: int | R.Prepared = rec if span % 2 else intent_seq
        outcome = R.PreparedOutcome(dict(a), end=t + 5, intent=intent, span_id=span, status=status,
                                    status_message=msg)
        if cache and t % 3:
            # journaled outcomes carry their pieces (Journal.put_intent): chain() takes them without parts()
            with contextlib.suppress(TypeError, ValueError):
                outcome.cached = outcome.pieces()
        out.append(outcome)
    return out


@needs_speedups
@settings(max_examples=300, deadline=None)
@given(records, st.integers(0, 2**40), st.integers(0, 2**256 - 1), st.booleans(), st.booleans())
def test_native_chain_is_the_python_chain(spec: list[Any], seq: int, prev: int, keyed: bool, cache: bool) -> None:
    rkey = R.record_key(KEY) if keyed else None
    start = f"{prev:064x}".encode()
    mine, theirs = _batch(spec, 3, cache), _batch(spec, 3, cache)
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
        # under the copy guard no size is read a statement (decision 0411): a frame the file still holds is copied
        # (and kept: it is in the file), one past the new end is caught as it faults, and nothing is copied
        end = speedups.frame(j.mm, j.fd, J.HEADER_SIZE, j.size, 1, 0, -1, a, b, None, None, -1, -1, None)
        assert end > J.HEADER_SIZE
        assert os.pread(j.fd, end - J.HEADER_SIZE, J.HEADER_SIZE) == j.mm[J.HEADER_SIZE:end]
        assert speedups.frame(j.mm, j.fd, j.size // 2 + 4096, j.size, 1, 0, -1, a, b, None, None, -1, -1,
                              None) == -2
        assert os.fstat(j.fd).st_size == j.size // 2  # nothing grew it back
        j.wpos = j.size // 2 + 4096
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


# -- the review of the helpers (memory safety, errors, the Python code's semantics on every path) ----------------
def _mapping(tmp: Path, size: int = 4096) -> tuple[Any, int]:
    import mmap

    fd = os.open(tmp / "m.wal", os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, size)
    mm = mmap.mmap(fd, size)
    mm[0:8] = J.MAGIC
    return mm, fd


def _frame_args(mm: Any, fd: int, **over: Any) -> list[Any]:
    args: dict[str, Any] = dict(mm=mm, fd=fd, pos=J.HEADER_SIZE, size=len(mm), epoch=1, number=0, floor=-1,
                                a=b"a" * 10, b=b"b" * 10, pre=None, tail=None, iseq=-1, iframe=-1, jkey=None)
    args.update(over)
    return list(args.values())


@needs_speedups
@pytest.mark.parametrize("pos,size", [
    (2**63 - 9, 4096), (2**63 - 1, 2**63 - 1), (2**63 - 60, 2**63 - 1), (-1, 4096), (-(2**63), 4096),
    (4096, 4096), (4090, 4096), (5000, 4096), (64, -1), (64, 0), (64, 100),
], ids=str)
def test_native_frame_never_writes_outside_the_journal(tmp_path: Path, pos: int, size: int) -> None:
    # a frame past (or around) the end of a signed 64-bit offset wrapped to a negative end and passed the fit
    # check: the copy went to mm + 2**63 (SIGBUS)
    mm, fd = _mapping(tmp_path)
    try:
        before = mm[:]
        if size > len(mm) and pos >= 0 and pos + 8 + 75 <= size:  # it would fit the size: the mapping is short
            with pytest.raises(ValueError):
                speedups.frame(*_frame_args(mm, fd, pos=pos, size=size))
        else:
            assert speedups.frame(*_frame_args(mm, fd, pos=pos, size=size)) == 0
        assert mm[:] == before
    finally:
        mm.close()
        os.close(fd)


@needs_speedups
def test_native_frame_checks_each_argument_before_the_next(tmp_path: Path) -> None:
    mm, fd = _mapping(tmp_path)
    ran: list[bool] = []

    class Bad:
        def __index__(self) -> int:
            raise KeyError("bad")

    class Later:
        def __index__(self) -> int:
            ran.append(True)
            return 64

    try:
        # the first conversion's error was overwritten by the next __index__, and frame() went on with fd -1
        with pytest.raises(KeyError):
            speedups.frame(*_frame_args(mm, Bad(), pos=Later()))
        assert not ran
        # a descriptor past a C int was truncated to another open file's descriptor; os.lseek refuses it
        with pytest.raises(OverflowError):
            speedups.frame(*_frame_args(mm, fd + 2**32))
        with pytest.raises(OSError):  # what os.lseek raises in the Python check
            speedups.frame(*_frame_args(mm, -1))
        for field, value in (("epoch", 2**32), ("epoch", -1), ("number", -1), ("floor", 2**63), ("iseq", -(2**64))):
            with pytest.raises(OverflowError):  # the Python code's struct.pack refuses these too
                speedups.frame(*_frame_args(mm, fd, **{field: value}))
        with pytest.raises(TypeError):  # read-only: the TypeError of the Python code's slice assignment
            speedups.frame(*_frame_args(bytes(mm[:]), fd))
        with pytest.raises(TypeError):
            speedups.frame(*_frame_args(mm, fd, pos=1.5))
        before = mm[:]
        with pytest.raises(ValueError):  # a key hashlib refuses: refused before a byte is copied
            speedups.frame(*_frame_args(mm, fd, jkey=b"k" * 65))
        assert mm[:] == before
        assert speedups.frame(*_frame_args(mm, fd, jkey=b"")) > 0  # an empty key is a key (unkeyed hash)
    finally:
        mm.close()
        os.close(fd)


@needs_speedups
def test_native_frame_refuses_exactly_where_the_python_check_calls_truncated(tmp_path: Path) -> None:
    assert speedups.guard_install()  # as the first journal of a process installs it
    mm, fd = _mapping(tmp_path)
    try:
        mm[0:1] = b"X"  # its magic gone (cut and grown again): the Python check asks _truncated()
        before = mm[:]
        assert speedups.frame(*_frame_args(mm, fd)) == -1 and mm[:] == before
        mm[0:1] = b"G"  # only the first byte is compared, as the Python check does
        assert speedups.frame(*_frame_args(mm, fd)) == J.HEADER_SIZE + 8 + 20 + 25 + 20
        # one byte short: no size is read a statement under the guard (decision 0411); the frame's page is still
        # the file's, so it is copied — the drain's check (Journal._truncated) finds the cut
        os.ftruncate(fd, len(mm) - 1)
        assert speedups.frame(*_frame_args(mm, fd, pos=200)) > 0 and mm[200:300] != bytes(100)
        os.ftruncate(fd, 0)  # its pages gone: the guard catches the fault, and nothing counts
        assert speedups.frame(*_frame_args(mm, fd, pos=400)) == -2
        os.ftruncate(fd, 2 * len(mm))  # longer than the mapping is fine
        mm[0:1] = b"G"
        assert speedups.frame(*_frame_args(mm, fd, pos=200, size=len(mm))) > 0
    finally:
        mm.close()
        os.close(fd)


@needs_speedups
def test_native_frame_takes_the_outcome_only_with_both_pieces(tmp_path: Path) -> None:
    # put_intent's Python frame holds the outcome item only when neither piece is None
    mm, fd = _mapping(tmp_path)
    try:
        end = speedups.frame(*_frame_args(mm, fd))
        pair = mm[J.HEADER_SIZE:end]
        for pre, tail in ((b"p", None), (None, b"t")):
            assert speedups.frame(*_frame_args(mm, fd, pre=pre, tail=tail)) == end
            assert mm[J.HEADER_SIZE:end] == pair
    finally:
        mm.close()
        os.close(fd)


@needs_speedups
def test_native_chain_refuses_a_negative_start_and_hands_over_what_it_cannot_take() -> None:
    rec = _intent({"a": "b"}, "SELECT", None, 5, 1)
    assert rec is not None
    for i in (-1, -(2**40)):  # read bodies[-1] and before: out of the list's bounds
        with pytest.raises(OverflowError):
            speedups.chain([rec], i, 0, b"0" * 64, None, R.MAX_LINE)
    assert not rec.written
    # a store head whose hash is not 64 characters (a damaged store): the Python loop chains onto it as it is
    assert speedups.chain([rec], 0, 0, b"abc", None, R.MAX_LINE) == (0, b"", b"abc", None) and not rec.written
    assert speedups.chain([rec], 0, 0, b"0" * 64, b"k" * 65, R.MAX_LINE)[0] == 0 and not rec.written
    # past 2**63 - 1 the Python loop goes on (its ints have no bound); a C long long overflowed to -2**63
    assert speedups.chain([rec], 0, 2**63 - 1, b"0" * 64, None, R.MAX_LINE)[0] == 0 and not rec.written
    assert rec.seq == -1
    done, data, _, _ = speedups.chain([rec], 0, 2**63 - 2, b"0" * 64, None, R.MAX_LINE)
    assert done == 1 and rec.seq == 2**63 - 1 and b'"seq":9223372036854775807,' in data
    # another sequence: all the general way, in the shape _write_many unpacks (it had three items)
    assert speedups.chain(iter([rec]), 0, 0, b"0" * 64, None, R.MAX_LINE) == (0, b"", b"0" * 64, None)

    class Bodies(list):  # type: ignore[type-arg]
        def __getitem__(self, i: Any) -> Any:  # what the Python loop reads, which the C fast path did not
            return R.PreparedOutcome({}, end=1, intent=3, span_id=9, status="OK", status_message=None)

    fresh = _intent({"a": "b"}, "SELECT", None, 6, 1)
    assert speedups.chain(Bodies([fresh]), 0, 0, b"0" * 64, None, R.MAX_LINE)[0] == 0
    assert fresh is not None and not fresh.written
    with pytest.raises(OverflowError):
        speedups.chain([rec], 2**64, 0, b"0" * 64, None, R.MAX_LINE)


@needs_speedups
def test_native_chain_survives_a_list_emptied_by_a_records_own_code() -> None:
    # parts() is Python code (here: the __index__ its "%d" calls); it emptied the list chain() was walking, which
    # then read the freed slots past its new end
    bodies: list[Any] = []

    class End:
        def __index__(self) -> int:
            bodies.clear()
            return 7

    out = R.PreparedOutcome({}, end=End(), intent=5, span_id=1, status="OK", status_message=None)  # type: ignore[arg-type]
    bodies += [out] + [_intent({"a": str(i)}, "SELECT", None, i, 1) for i in range(50)]
    done, data, _, _ = speedups.chain(bodies, 0, 0, b"0" * 64, None, R.MAX_LINE)
    assert bodies == [] and done == 1 and data.count(b"\n") == 1 and out.written


@needs_speedups
@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
def test_a_store_whose_head_hash_is_not_64_characters_still_takes_records(tmp_path: Path, keyed: bool,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # the head is read from the file (_last_good_record takes any string hash); the helper raised ValueError on it,
    # so every later write of the store failed where the Python loop chains on
    import shutil

    from governed_db.audit import store as S

    key = KEY if keyed else None
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    s = S.AuditStore(damaged / "a.jsonl", key=key, fsync_interval=None, checkpoint_interval=None, idle_close=None)
    s.append({"type": "note", "time": 1})
    s.close()
    raw = (damaged / "a.jsonl").read_bytes().rstrip(b"\n").split(b"\n")
    head = json.loads(raw[-1])
    head["hash"] = "short"
    raw[-1] = json.dumps(head, separators=(",", ":"), sort_keys=True).encode()
    (damaged / "a.jsonl").write_bytes(b"\n".join(raw) + b"\n")
    intents: dict[bool, list[bytes]] = {}
    for native in (True, False):
        d = tmp_path / str(native)
        shutil.copytree(damaged, d)  # the same store (and anchor) for both
        monkeypatch.setattr(S, "_native_chain", speedups.chain if native else None)
        s = S.AuditStore(d / "a.jsonl", key=key, fsync_interval=None, checkpoint_interval=None, idle_close=None)
        try:
            for i in range(3):
                rec = _intent({"n": i}, "SELECT", None, i + 1, 10 + i)
                assert rec is not None
                s.append(rec)
        finally:
            s.close()
        intents[native] = [line for line in (d / "a.jsonl").read_bytes().split(b"\n") if b'"type":"intent"' in line]
        assert len(intents[native]) == 3
        assert b'"prev":"short"' in intents[native][0]
    assert intents[True] == intents[False]


_ANY = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.binary(max_size=80), st.text(max_size=5),
                 st.lists(st.none(), max_size=2), st.just(object()))
#: integers where the arithmetic of offsets and lengths turns: around 0, 2**31, 2**32, 2**63, 2**64
_EDGE = st.one_of(st.integers(-300, 5000), st.sampled_from([2**31, 2**32]).flatmap(lambda b: st.integers(b - 3, b + 3)),
                  st.sampled_from([2**63, 2**64, -(2**63)]).flatmap(lambda b: st.integers(b - 200, b + 3)))
_KEYS = st.one_of(st.none(), st.binary(max_size=70), st.sampled_from([b"k" * 64, b"k" * 65]))


def _args(data: st.DataObject, real: list[Any], kinds: list[st.SearchStrategy[Any]]) -> list[Any]:
    """The real arguments with up to four changed: to an edge value of the argument's kind, or to anything."""
    changed = data.draw(st.sets(st.integers(0, len(real) - 1), max_size=4))
    return [data.draw(st.one_of(kinds[k], _ANY)) if k in changed else r for k, r in enumerate(real)]


@needs_speedups
@settings(max_examples=500, deadline=None)
@given(st.data())
def test_native_frame_takes_any_arguments_without_crashing(tmp_path_factory: Any, data: st.DataObject) -> None:
    # the real arguments, some changed to edge values or anything: it raises or returns, never crashes, and
    # never writes outside the frame it reports (nor anywhere when it returns 0 or -1)
    tmp = tmp_path_factory.mktemp("fuzz")
    mm, fd = _mapping(tmp)
    try:
        real = _frame_args(mm, fd)
        big = st.binary(max_size=5000)
        kinds = [st.sampled_from([mm, bytearray(len(mm)), b"x"]), _EDGE, _EDGE, _EDGE, _EDGE, _EDGE, _EDGE, big, big,
                 st.one_of(st.none(), big), st.one_of(st.none(), big), _EDGE, _EDGE, _KEYS]
        args = _args(data, real, kinds)
        before = mm[:]
        try:
            r = speedups.frame(*args)
        except (TypeError, ValueError, OverflowError, OSError):  # OSError: os.lseek's, on a descriptor not open
            assert mm[:] == before  # refused before a byte was copied
            return
        assert isinstance(r, int)
        if r <= 0 or args[0] is not mm:
            assert r in (0, -1) or args[0] is not mm
            assert mm[:] == before
        else:
            assert args[2] < r <= min(args[3], len(mm))
            assert mm[:args[2]] == before[:args[2]] and mm[r:] == before[r:]
    finally:
        mm.close()
        os.close(fd)


@needs_speedups
@settings(max_examples=500, deadline=None)
@given(st.data(), st.lists(st.sampled_from(["intent", "outcome", "bad_outcome", "other"]), max_size=4))
def test_native_chain_takes_any_arguments_without_crashing(data: st.DataObject, kinds: list[str]) -> None:
    bodies: list[Any] = []
    for n, k in enumerate(kinds):
        rec = _intent({"n": n}, "SELECT", None, n + 1, n)
        assert rec is not None
        if k == "intent":
            bodies.append(rec)
        elif k == "outcome" or k == "bad_outcome":
            bodies.append(R.PreparedOutcome({"x": "\ud800"} if k == "bad_outcome" else {}, end=1,
                                            intent=rec if n % 2 else 3, span_id=n, status="OK", status_message=None))
        else:
            bodies.append({"type": "note"})
    real = [bodies, 0, 0, b"0" * 64, None, R.MAX_LINE]
    kinds_ = [st.sampled_from([bodies, tuple(bodies), iter(bodies), [None, 1]]), _EDGE, _EDGE,
              st.one_of(st.binary(min_size=63, max_size=65), st.binary(max_size=70)), _KEYS, _EDGE]
    args = _args(data, real, kinds_)
    try:
        done, out, _, _ = speedups.chain(*args)
    except (TypeError, ValueError, OverflowError):
        return
    # one line per chained record; a hostile ``prev`` is copied into the first line as given, newlines and all
    carried = args[3].count(b"\n") if done and isinstance(args[3], bytes) else 0
    assert isinstance(done, int) and done >= 0 and out.count(b"\n") == done + carried


_LEAK = """
import gc, mmap, os, sys, tempfile, tracemalloc
from governed_db._native import speedups as s
from governed_db.audit import journal as J, records as R
fd, p = tempfile.mkstemp(); os.ftruncate(fd, 65536); mm = mmap.mmap(fd, 65536); mm[0:8] = J.MAGIC
head = R.intent_head(R.attributes_json({"a": "b"}), "SELECT", "CLIENT")
key = b"k" * 32
class Bad:
    def __index__(self): raise KeyError("x")
def once():
    s.frame(mm, fd, 64, 65536, 1, 0, -1, b"a" * 50, b"b" * 50, b"p" * 9, b"t" * 9, 3, 1, key)
    for bad in ((Bad(), 64), (fd, Bad()), (-1, 64)):
        try:
            s.frame(mm, bad[0], bad[1], 65536, 1, 0, -1, b"a", b"b", None, None, -1, -1, key)
        except (KeyError, OSError):
            pass
    try:
        s.frame(mm, fd, 64, 65536, 1, 0, -1, b"a", b"b", None, None, -1, -1, b"k" * 65)
    except ValueError:
        pass
    it = R.PreparedIntent(head, None, 1, 2, 3, 4)
    out = R.PreparedOutcome({"r": 1}, end=5, intent=it, span_id=2, status="OK", status_message=None)
    bad = R.PreparedOutcome({"x": "\\ud800"}, end=5, intent=it, span_id=2, status="OK", status_message="m")
    s.chain([it, out, bad], 0, 7, b"0" * 64, key, 1 << 20)
    s.chain((it, out), 0, 7, b"0" * 64, None, 100)
    s.chain([it], 0, 7, b"abc", None, 1 << 20)
    try:
        s.chain([it], Bad(), 7, b"0" * 64, None, 1 << 20)
    except KeyError:
        pass
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
n = int(sys.argv[1])
for _ in range(n // 4):
    once()
gc.collect()
tracemalloc.start()
r0 = rss()
m0 = tracemalloc.get_traced_memory()[0]
for _ in range(n):
    once()
gc.collect()
print(tracemalloc.get_traced_memory()[0] - m0, rss() - r0)
"""


@needs_speedups
def test_native_helpers_hold_no_memory_across_many_calls() -> None:
    # every path, errors included, 20k times over (a leaked reference of each call shows as growth); in a fresh
    # process, so that only these calls are measured
    out = subprocess.run([sys.executable, "-c", _LEAK, "20000"], capture_output=True, text=True, check=True,
                         timeout=300)
    traced, rss = map(int, out.stdout.split())
    assert traced < 64 * 1024, out.stdout
    if "asan" not in os.environ.get("LD_PRELOAD", ""):  # AddressSanitizer keeps freed memory in quarantine
        assert rss < 8 * 1024 * 1024, out.stdout


@pytest.mark.parametrize("native", [True, False], ids=["native", "pure-python"])
def test_the_journal_epoch_goes_round_in_its_32_bits(tmp_path: Path, native: bool,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # a round per drain (64 records): after 2**32 of them the Python frame's struct.pack raised for every statement,
    # and the helper (which now refuses what struct.pack refuses) would too
    if native and speedups is None:
        pytest.skip("governed_db._speedups is not built here")
    monkeypatch.setattr(J, "_native_frame", speedups.frame if native else None)
    j = _journal(tmp_path, "e.jsonl", True)
    try:
        j.epoch = 2**32 - 1
        j._header(J.HEADER_SIZE)
        for n in range(2):
            rec = _intent({"n": n}, "SELECT", None, n + 1, n)
            assert rec is not None
            assert j.put_intent(rec, None, -1, "store-id-1") == 1
            orphan = J._read(j.path, os.open(j.path, os.O_RDONLY), j.jkey)  # what recovery reads: this round's frame
            assert orphan is not None and len(orphan.records) == 1 and orphan.forged == 0
            os.close(orphan.fd)
            _, _, upto = j.take()
            j.consumed(upto)
            assert j.epoch == (1 if n == 0 else 2)
    finally:
        j.close(remove=True)
