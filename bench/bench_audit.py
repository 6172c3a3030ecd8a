"""Audit store append throughput, with the SIGKILL guarantee (one write() per record before returning).

    python bench/bench_audit.py [N]

Prints records/s for: the hash-chained store (single thread, 4 threads, 2
processes), the full span path (SDK span -> processor -> store), fsync on every
record, and two baselines — a bare JSONL append with no chain or lock, and
SQLite (WAL, synchronous=NORMAL, one transaction per record) which was the
alternative store format (docs/decisions/0030-audit-store-jsonl.md).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from governed_db.audit import AuditSpanProcessor, AuditStore, records

ATTRS: dict[str, Any] = {
    "db.system.name": "postgresql", "db.namespace": "shop", "db.operation.name": "SELECT",
    "db.collection.name": "customers", "db.query.text": "SELECT id, email FROM customers WHERE region = %s LIMIT %s",
    "user.id": "report-bot", "enduser.id": "report-bot", "governed_db.identity.subject": "report-bot",
    "governed_db.identity.kind": "agent", "governed_db.identity.provenance": "verified",
    "governed_db.identity.on_behalf_of": "alice", "governed_db.environment": "production",
    "governed_db.entry": "cursor.execute", "governed_db.decision": "allow", "governed_db.tables": ["customers"],
    "governed_db.statement.kinds": ["read"], "governed_db.masked_columns": ["email"],
}


def body(i: int) -> dict[str, Any]:
    now = time.time_ns()
    return {"v": 1, "type": "span", "time": now, "end": now + 1000, "name": "SELECT customers", "kind": "CLIENT",
            "trace_id": f"{i:032x}", "span_id": f"{i:016x}", "parent_span_id": None, "status": "UNSET",
            "attrs": ATTRS, "pid": 1}


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds else float("inf")


def bench_store(path: Path, n: int, **kw: Any) -> float:
    store = AuditStore(path, **kw)
    bodies = [body(i) for i in range(n)]
    t = time.perf_counter()
    for b in bodies:
        store.append(b)
    elapsed = time.perf_counter() - t
    store.close()
    return rate(n, elapsed)


def bench_threads(path: Path, n: int, threads: int) -> float:
    store = AuditStore(path)
    per = n // threads

    def work() -> None:
        for i in range(per):
            store.append(body(i))

    ts = [threading.Thread(target=work) for _ in range(threads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    elapsed = time.perf_counter() - t
    store.close()
    return rate(per * threads, elapsed)


def _proc_worker(path: str, n: int) -> None:
    store = AuditStore(path)
    for i in range(n):
        store.append(body(i))
    store.close()


def bench_processes(path: Path, n: int, procs: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    per = n // procs
    ps = [ctx.Process(target=_proc_worker, args=(str(path), per)) for _ in range(procs)]
    t = time.perf_counter()
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    return rate(per * procs, time.perf_counter() - t)


def bench_spans(path: Path, n: int) -> float:
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    proc = AuditSpanProcessor(AuditStore(path))
    provider.add_span_processor(proc)
    tracer = provider.get_tracer("governed_db")
    t = time.perf_counter()
    for _ in range(n):
        span = tracer.start_span("SELECT customers", attributes=ATTRS)
        span.end()
    elapsed = time.perf_counter() - t
    provider.shutdown()
    return rate(n, elapsed)


def bench_bare_jsonl(path: Path, n: int) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    bodies = [body(i) for i in range(n)]
    t = time.perf_counter()
    for b in bodies:
        os.write(fd, json.dumps(b).encode() + b"\n")
    elapsed = time.perf_counter() - t
    os.close(fd)
    return rate(n, elapsed)


def bench_sqlite(path: Path, n: int) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE r (seq INTEGER PRIMARY KEY, prev TEXT, hash TEXT, body TEXT)")
    bodies = [body(i) for i in range(n)]
    t = time.perf_counter()
    prev = records.GENESIS_PREV
    for i, b in enumerate(bodies):
        db.execute("BEGIN IMMEDIATE")  # what multi-process chaining needs: read the head under the write lock
        row = db.execute("SELECT seq, hash FROM r ORDER BY seq DESC LIMIT 1").fetchone()
        prev = row[1] if row else prev
        rec = dict(b, seq=i, prev=prev)
        line, digest = records.encode(rec)
        db.execute("INSERT INTO r VALUES (?, ?, ?, ?)", (i, prev, digest, line.decode()))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - t
    db.close()
    return rate(n, elapsed)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        rows: list[tuple[str, float, int]] = [
            ("bare JSONL append (no chain, no lock) — baseline", bench_bare_jsonl(tmp / "bare.jsonl", n), n),
            ("audit store, 1 thread (fsync every 1 s)", bench_store(tmp / "a.jsonl", n), n),
            ("audit store, 4 threads", bench_threads(tmp / "t.jsonl", n, 4), n),
            ("audit store, 2 processes", bench_processes(tmp / "p.jsonl", n, 2), n),
            ("span -> processor -> store (SDK span end)", bench_spans(tmp / "s.jsonl", n // 2), n // 2),
            ("audit store, fsync every record", bench_store(tmp / "f.jsonl", 2000, fsync_interval=0), 2000),
            ("SQLite WAL, 1 txn/record (alternative)", bench_sqlite(tmp / "q.db", n // 4), n // 4),
        ]
    base = rows[1][1]
    print(f"{'configuration':<52} {'records':>8} {'records/s':>12} {'vs store':>9}")
    for name, r, count in rows:
        print(f"{name:<52} {count:>8} {r:>12,.0f} {r / base:>8.2f}x")
    print(f"\ntarget: >= 50,000 records/s appended with the SIGKILL guarantee -> "
          f"{'met' if base >= 50_000 else 'NOT met'} ({base:,.0f}/s single-threaded)")


if __name__ == "__main__":
    main()
