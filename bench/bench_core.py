"""Per-statement cost of governance, side by side in one run (not a timed test).

    python bench/bench_core.py [--n 20000] [--json]

Compares, on the same cached statement:
  raw sqlite3 | governed (nothing recording) | governed + audit store |
  OTel dbapi instrumentation + SDK (batch) | governed + SDK (batch)
and, when PostgreSQL is reachable on 127.0.0.1, raw psycopg vs governed psycopg over loopback.
Variants take turns within each round (interleaved), so load drifts on a shared machine hit them alike;
prints the medians and the ratios the project targets.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench_default import _sdk_provider

SQL = "SELECT id, name, price FROM items WHERE id = ?"


def _sqlite() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"item {i}", i * 1.5) for i in range(1000)])
    return conn


def _loop(conn: Any, sql: str = SQL, param: Callable[[int], Any] = lambda i: (i % 1000,)) -> Callable[[int], None]:
    cur = conn.cursor()
    for i in range(200):  # warm caches
        cur.execute(sql, param(i))
        cur.fetchall()

    def run(n: int) -> None:
        for i in range(n):
            cur.execute(sql, param(i))
            cur.fetchall()

    return run


def _interleaved(variants: dict[str, tuple[Callable[[int], None], int]], rounds: int = 7) -> dict[str, float]:
    """Median µs per statement; variants take turns each round, so machine load drifts hit them alike."""
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, (run, n) in variants.items():
            t0 = time.perf_counter_ns()
            run(n)
            samples[name].append((time.perf_counter_ns() - t0) / n / 1000)
    return {k: statistics.median(v) for k, v in samples.items()}


def _import_ms() -> float:
    def run(code: str) -> float:
        best = []
        for _ in range(7):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            best.append(time.perf_counter() - t0)
        return statistics.median(best) * 1000

    return run("import governed_db") - run("pass")


def main() -> None:
    from opentelemetry.instrumentation.dbapi import instrument_connection

    import governed_db

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n = args.n

    tmp = tempfile.TemporaryDirectory()
    otel_provider = _sdk_provider()
    gov_provider = _sdk_provider()
    variants: dict[str, tuple[Callable[[int], None], int]] = {
        "sqlite raw": (_loop(_sqlite()), n),
        "sqlite governed (nothing recording)": (_loop(governed_db.wrap(_sqlite(), audit=False)), n),
        "sqlite governed + audit store": (_loop(governed_db.wrap(_sqlite(), audit=os.path.join(tmp.name, "a"))), n),
        "sqlite OTel dbapi + SDK batch": (
            _loop(instrument_connection("sqlite3", _sqlite(), "sqlite", tracer_provider=otel_provider)), n),
        "sqlite governed + SDK batch": (
            _loop(governed_db.wrap(_sqlite(), audit=False, tracer_provider=gov_provider)), n),
        "sqlite governed + SDK batch, no result spans": (
            _loop(governed_db.wrap(_sqlite(), audit=False, tracer_provider=gov_provider, record_results=False)), n),
    }
    try:
        import psycopg

        dsn = os.environ.get("GOVERNED_DB_TEST_PG", "host=127.0.0.1 dbname=test user=postgres")
        pg = psycopg.connect(dsn, autocommit=True)
        pg.execute("CREATE TEMP TABLE items (id int primary key, name text, price float8)")
        with pg.cursor() as c:
            c.executemany("INSERT INTO items VALUES (%s, %s, %s)", [(i, f"item {i}", i * 1.5) for i in range(1000)])
        psql = SQL.replace("?", "%s")
        variants["psycopg raw (loopback)"] = (_loop(pg, psql), n // 10)
        variants["psycopg governed (loopback)"] = (_loop(governed_db.wrap(pg, audit=False), psql), n // 10)
    except Exception as e:
        print(f"(PostgreSQL part skipped: {type(e).__name__}: {e})", file=sys.stderr)
    res: dict[str, float] = _interleaved(variants)
    otel_provider.shutdown()
    gov_provider.shutdown()
    tmp.cleanup()

    res["import governed_db (ms)"] = _import_ms()

    ratios = {
        "governed / raw sqlite3 (target <= 3)": res["sqlite governed (nothing recording)"] / res["sqlite raw"],
        "governed+SDK / OTel dbapi+SDK (target <= 0.6)": res["sqlite governed + SDK batch"]
        / res["sqlite OTel dbapi + SDK batch"],
        "governed+SDK (no result spans) / OTel dbapi+SDK": res["sqlite governed + SDK batch, no result spans"]
        / res["sqlite OTel dbapi + SDK batch"],
    }
    if "psycopg governed (loopback)" in res:
        ratios["governed / raw psycopg loopback (target <= 1.10)"] = (
            res["psycopg governed (loopback)"] / res["psycopg raw (loopback)"]
        )
    if args.json:
        print(json.dumps({"per_statement_us": res, "ratios": ratios}, indent=2))
        return
    print(f"{'per statement (median of 7 interleaved rounds)':55} {'µs':>10}")
    for k, v in res.items():
        unit = "ms" if k.endswith("(ms)") else "µs"
        print(f"{k:55} {v:10.2f} {unit}")
    print()
    for k, v in ratios.items():
        print(f"{k:55} {v:10.2f}")


if __name__ == "__main__":
    main()
