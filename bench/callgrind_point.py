"""Instruction counts per statement, for when wall time is too noisy (a shared machine).

    valgrind --tool=callgrind --callgrind-out-file=cg.MODE.N.out python bench/callgrind_point.py MODE N [lit]
    grep summary: cg.MODE.1200.out cg.MODE.200.out    # (Ir(1200) - Ir(200)) / 1000 = instructions per statement

With ``--separate-threads=yes`` (which docs/performance.md uses, to count the audit store's thread) the counts are in
``cg.MODE.N.out-01``, ``-02``, ...: sum their ``summary:`` lines; the file without a suffix is then empty.

MODE: ``raw`` (sqlite3), ``otel`` (official dbapi instrumentation, no SDK provider), ``noaudit``
(governed, ``audit=False``), ``audit`` (governed default: the local audit store); ``otelsdk`` / ``auditsdk``:
the official instrumentation / governed default with an SDK provider exporting in batches. ``lit`` sends every statement
with new literals (as agents write SQL) instead of a parameterised one; ``texts1000`` / ``texts3000`` cycle through
that many distinct literal texts, all sent once before the measured ones (the working-set scenario); ``small``
reads a 50-row table instead (read whole by the sample: its text column is watched, decision 0268); ``masked``
reads 1,000 rows with 3 of 5 columns masked each time (per-read figures: divide by 1,000 as for the others, then
multiply by 1,000 rows). Running
N=200 and N=1200 and subtracting removes start-up, import and warm-up costs.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from typing import Any

import governed_db


def _sdk_provider() -> Any:
    """An SDK provider exporting in batches to nowhere (what bench_default.py's "+ SDK batch" rows use)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536, max_export_batch_size=4096))
    return provider


def main() -> None:
    mode, n = sys.argv[1], int(sys.argv[2])
    literal = len(sys.argv) > 3 and sys.argv[3] == "lit"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    kind = sys.argv[3] if len(sys.argv) > 3 else ""
    size = 50 if kind == "small" else 1000
    raw.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"item {i}", i * 1.5) for i in range(size)])
    ident = governed_db.Identity("bench-agent", kind="agent", on_behalf_of="alice")
    conn: Any
    if mode == "raw":
        conn = raw
    elif mode == "otel":
        from opentelemetry.instrumentation.dbapi import instrument_connection

        conn = instrument_connection("sqlite3", raw, "sqlite")
    elif mode == "noaudit":
        conn = governed_db.wrap(raw, identity=ident, environment="production", audit=False)
    elif mode == "audit":
        store = os.path.join(tempfile.mkdtemp(prefix="gdb-cg-"), "audit.jsonl")
        conn = governed_db.wrap(raw, identity=ident, environment="production", audit=store)
    elif mode == "otelsdk":
        from opentelemetry.instrumentation.dbapi import instrument_connection

        conn = instrument_connection("sqlite3", raw, "sqlite", tracer_provider=_sdk_provider())
    elif mode == "auditsdk":
        store = os.path.join(tempfile.mkdtemp(prefix="gdb-cg-"), "audit.jsonl")
        conn = governed_db.wrap(raw, identity=ident, environment="production", audit=store,
                                tracer_provider=_sdk_provider())
    else:
        raise SystemExit(f"unknown mode {mode!r}: raw, otel, noaudit, audit, otelsdk or auditsdk")
    cur = conn.cursor()
    if kind == "masked":
        # the masked 1,000-row read of bench_default.py's ``masked`` scenario (3 of 5 columns masked)
        raw.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT, email TEXT, ssn TEXT, city TEXT)")
        raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", [
            (i, f"Alice Example{i}", f"alice{i}@example.com", f"{100 + i % 800:03d}-{10 + i % 89:02d}-{1000 + i % 8999:04d}",
             "Springfield") for i in range(1000)])
        for _ in range(n):
            cur.execute("SELECT id, full_name, email, ssn, city FROM customers WHERE id < 1000")
            cur.fetchall()
        return
    if kind.startswith("texts"):
        texts = [f"SELECT id, name FROM items WHERE id = {i % 1000} AND price >= {i}" for i in range(int(kind[5:]))]
        for t in texts:
            cur.execute(t)
            cur.fetchall()
        for i in range(n):
            cur.execute(texts[i % len(texts)])
            cur.fetchall()
        return
    for i in range(n):
        if literal:
            cur.execute(f"SELECT id, name, price FROM items WHERE id = {i % 1000} AND price > {-(i + 1)}")
        else:
            cur.execute("SELECT id, name, price FROM items WHERE id = ?", (i % size,))
        cur.fetchall()


if __name__ == "__main__":
    main()
