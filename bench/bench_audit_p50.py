"""Per-statement medians (p50) of a cached point SELECT on sqlite3: raw, the official OpenTelemetry dbapi
instrumentation (no SDK provider), governed default (audit store, write-ahead journal), the same store with
``journal=False`` (every intent written straight to the store, as before decision 0205) and governed ``audit=False``.

    python bench/bench_audit_p50.py [ROUNDS]

Every statement is timed on its own and the variants take turns each round, so the medians are comparable
on a loaded machine: means there are dominated by preemption of the longer, syscall-making paths, medians
show what a statement costs when it runs. ``bench/bench_default.py --only point`` reports the means.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
import time
from typing import Any

from opentelemetry.instrumentation.dbapi import instrument_connection

import governed_db
from governed_db import Identity

SQL = "SELECT id, name, price FROM items WHERE id = ?"


def _base() -> sqlite3.Connection:
    c = sqlite3.connect(":memory:", check_same_thread=False)
    c.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    c.executemany("INSERT INTO items VALUES (?,?,?)", [(i, f"n{i}", i * 1.5) for i in range(1000)])
    return c


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    d = tempfile.mkdtemp()

    def wrap(**kw: Any) -> Any:
        return governed_db.wrap(_base(), identity=Identity("alice", kind="human"), environment="production", **kw)

    variants = {"raw": _base(), "otel": instrument_connection("sqlite3", _base(), "sqlite"),
                "default": wrap(audit=os.path.join(d, "a.jsonl")),
                "journal=False": wrap(audit={"path": os.path.join(d, "b.jsonl"), "journal": False}),
                "audit=False": wrap(audit=False)}
    cursors = {k: v.cursor() for k, v in variants.items()}
    samples: dict[str, list[int]] = {k: [] for k in cursors}
    for _ in range(rounds):
        for k, cur in cursors.items():
            for i in range(1000):
                t0 = time.perf_counter_ns()
                cur.execute(SQL, (i,))
                cur.fetchall()
                samples[k].append(time.perf_counter_ns() - t0)
    p50 = {k: statistics.median(v) / 1000 for k, v in samples.items()}
    for k, v in samples.items():
        print(f"{k:12s} p50 {p50[k]:7.2f} µs   mean {statistics.mean(v) / 1000:7.2f} µs")
    over = p50["otel"] - p50["raw"]
    print(f"p50 overhead / instrumentation overhead: default {(p50['default'] - p50['raw']) / over:.2f}, "
          f"journal=False {(p50['journal=False'] - p50['raw']) / over:.2f}, "
          f"audit=False {(p50['audit=False'] - p50['raw']) / over:.2f}")
    mean = {k: statistics.mean(v) / 1000 for k, v in samples.items()}
    mover = mean["otel"] - mean["raw"]
    print(f"mean overhead / instrumentation overhead: default {(mean['default'] - mean['raw']) / mover:.2f}, "
          f"journal=False {(mean['journal=False'] - mean['raw']) / mover:.2f}, "
          f"audit=False {(mean['audit=False'] - mean['raw']) / mover:.2f}")


if __name__ == "__main__":
    main()
