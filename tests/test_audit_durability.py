"""Durability and concurrency: SIGKILL loses no acknowledged statement; many writers keep one chain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from governed_db.audit import AuditStore, verify
from governed_db.audit.store import read_records

WRITER = textwrap.dedent(
    """
    import sqlite3, sys
    import governed_db
    from governed_db import Identity
    from governed_db.identity import acting_as

    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (a INTEGER)")
    conn = governed_db.wrap(raw, audit=sys.argv[1], environment="production")
    i = 0
    while True:
        with acting_as(Identity(f"u{i}")):
            conn.execute("INSERT INTO t VALUES (1)")
        print(i, flush=True)  # acknowledged: execute() has returned
        i += 1
    """
)

APPENDER = textwrap.dedent(
    """
    import sys
    from governed_db.audit import AuditStore
    store = AuditStore(sys.argv[1], checkpoint_every=97)
    for i in range(int(sys.argv[2])):
        store.append({"v": 1, "type": "span", "name": "p", "attrs": {"writer": sys.argv[3], "i": i}})
    store.close()
    """
)


def test_sigkill_loses_no_acknowledged_statement(tmp_path: Path) -> None:
    """A writer killed with SIGKILL mid-run: every statement it acknowledged is in a store that verifies."""
    store = tmp_path / "audit.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked: list[int] = []
    deadline = time.monotonic() + 30
    while len(acked) < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate(timeout=10)
    acked += [int(x) for x in rest.split()]
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 300, "the writer did not get going"

    recorded = {
        r["attrs"].get("governed_db.identity.subject")
        for r in read_records(store)
        if r.get("type") == "span" and r["attrs"].get("db.operation.name") == "INSERT"
    }
    missing = [i for i in acked if f"u{i}" not in recorded]
    assert missing == []
    result = verify(store)
    assert result.ok, result.first_bad


def test_threads_and_processes_share_one_linear_chain(tmp_path: Path) -> None:
    """8 threads and 3 processes appending at once: exact count, one valid chain, seq 0..N without gaps."""
    path = tmp_path / "audit.jsonl"
    per_thread, per_proc = 400, 600
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), str(per_proc), f"p{k}"])
        for k in range(3)
    ]
    store = AuditStore(path, checkpoint_every=101)

    def work(k: int) -> None:
        for i in range(per_thread):
            store.append({"v": 1, "type": "span", "name": "t", "attrs": {"writer": f"t{k}", "i": i}})

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        assert p.wait(timeout=60) == 0
    store.close()

    result = verify(path)
    assert result.ok, result.first_bad
    recs = list(read_records(path))
    spans = [r for r in recs if r["type"] == "span"]
    assert len(spans) == 8 * per_thread + 3 * per_proc
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    for writer, n in [*((f"t{k}", per_thread) for k in range(8)), *((f"p{k}", per_proc) for k in range(3))]:
        mine = [r["attrs"]["i"] for r in spans if r["attrs"]["writer"] == writer]
        assert mine == list(range(n)), writer  # each writer's records appear once, in its own order


E2E_PROC = textwrap.dedent(
    """
    import sqlite3, sys
    import governed_db
    from governed_db import Identity

    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (a INTEGER)")
    conn = governed_db.wrap(raw, audit=sys.argv[1], environment="production", identity=Identity(sys.argv[3]))
    for i in range(int(sys.argv[2])):
        conn.execute("SELECT a FROM t WHERE a = ?", (i,)).fetchall()
    """
)


def test_governed_connections_in_threads_and_processes(tmp_path: Path) -> None:
    """End to end: 8 threads and 3 processes running governed statements give the exact count in one chain."""
    import sqlite3

    import governed_db
    from governed_db import Identity

    path = tmp_path / "audit.jsonl"
    per_thread, per_proc = 60, 80
    procs = [subprocess.Popen([sys.executable, "-c", E2E_PROC, str(path), str(per_proc), f"proc-{k}"])
             for k in range(3)]

    def work(k: int) -> None:
        raw = sqlite3.connect(":memory:")
        raw.execute("CREATE TABLE t (a INTEGER)")
        conn = governed_db.wrap(raw, audit=path, environment="production", identity=Identity(f"thread-{k}"))
        for i in range(per_thread):
            conn.execute("SELECT a FROM t WHERE a = ?", (i,)).fetchall()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        assert p.wait(timeout=120) == 0
    result = verify(path)
    assert result.ok, result.first_bad
    counts: dict[str, int] = {}
    for r in read_records(path):
        if r.get("type") == "span" and "governed_db.decision" in r["attrs"]:
            who = r["attrs"]["governed_db.identity.subject"]
            counts[who] = counts.get(who, 0) + 1
    assert counts == {**{f"thread-{k}": per_thread for k in range(8)}, **{f"proc-{k}": per_proc for k in range(3)}}


def test_forked_child_writes_to_the_same_chain(tmp_path: Path) -> None:
    """A store object inherited across fork() reopens its file, so parent and child still exclude each other."""
    path = tmp_path / "audit.jsonl"
    store = AuditStore(path, fsync_interval=None)
    store.append({"type": "span", "attrs": {"who": "parent"}})
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            for _ in range(200):
                store.append({"type": "span", "attrs": {"who": "child"}})
        finally:
            os._exit(0)
    for _ in range(200):
        store.append({"type": "span", "attrs": {"who": "parent"}})
    os.waitpid(pid, 0)
    store.close()
    result = verify(path)
    assert result.ok, result.first_bad
    assert result.spans == 401


def test_fsync_interval_zero_syncs_every_append(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """fsync_interval=0 makes each append durable against power loss (fsync before returning)."""
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    store = AuditStore(tmp_path / "a.jsonl", fsync_interval=0)
    store.append({"type": "span"})
    store.append({"type": "span"})
    assert len(calls) >= 2
    store.close()
