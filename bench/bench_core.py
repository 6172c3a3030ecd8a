"""Per-statement cost of governance, side by side in one run (not a timed test).

    python bench/bench_core.py [--n 20000] [--json]

Compares, on the same cached statement:
  raw sqlite3 | governed (nothing recording) | governed + audit store |
  OTel dbapi instrumentation + SDK (batch) | governed + SDK (batch)
and, when PostgreSQL is reachable on 127.0.0.1, raw psycopg vs governed psycopg over loopback.
Prints medians of several rounds and the ratios the project targets.
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

SQL = "SELECT id, name, price FROM items WHERE id = ?"


def _sqlite() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"item {i}", i * 1.5) for i in range(1000)])
    return conn


def _per_statement(conn: Any, n: int, sql: str = SQL, param: Callable[[int], Any] = lambda i: (i % 1000,)) -> float:
    cur = conn.cursor()
    for i in range(200):  # warm caches
        cur.execute(sql, param(i))
        cur.fetchall()
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for i in range(n):
            cur.execute(sql, param(i))
            cur.fetchall()
        rounds.append((time.perf_counter_ns() - t0) / n / 1000)
    return statistics.median(rounds)


def _sdk_provider() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536, max_export_batch_size=4096))
    return provider


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
    import governed_db
    from opentelemetry.instrumentation.dbapi import instrument_connection

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n = args.n
    res: dict[str, float] = {}

    res["sqlite raw"] = _per_statement(_sqlite(), n)
    res["sqlite governed (nothing recording)"] = _per_statement(governed_db.wrap(_sqlite(), audit=False), n)
    with tempfile.TemporaryDirectory() as tmp:
        audited = governed_db.wrap(_sqlite(), audit=os.path.join(tmp, "audit"))
        res["sqlite governed + audit store"] = _per_statement(audited, n)
    otel_provider = _sdk_provider()
    res["sqlite OTel dbapi + SDK batch"] = _per_statement(
        instrument_connection("sqlite3", _sqlite(), "sqlite", tracer_provider=otel_provider), n
    )
    gov_provider = _sdk_provider()
    res["sqlite governed + SDK batch"] = _per_statement(
        governed_db.wrap(_sqlite(), audit=False, tracer_provider=gov_provider), n
    )
    res["sqlite governed + SDK batch, no result spans"] = _per_statement(
        governed_db.wrap(_sqlite(), audit=False, tracer_provider=gov_provider, record_results=False), n
    )
    otel_provider.shutdown()
    gov_provider.shutdown()

    try:
        import psycopg

        dsn = os.environ.get("GOVERNED_DB_TEST_PG", "host=127.0.0.1 dbname=test user=postgres")
        pg = psycopg.connect(dsn, autocommit=True)
        pg.execute("CREATE TEMP TABLE items (id int primary key, name text, price float8)")
        with pg.cursor() as c:
            c.executemany("INSERT INTO items VALUES (%s, %s, %s)", [(i, f"item {i}", i * 1.5) for i in range(1000)])
        psql = SQL.replace("?", "%s")
        governed_pg = governed_db.wrap(pg, audit=False)
        res["psycopg raw (loopback)"] = _per_statement(pg, n // 4, psql)
        res["psycopg governed (loopback)"] = _per_statement(governed_pg, n // 4, psql)
    except Exception as e:  # noqa: BLE001
        print(f"(PostgreSQL part skipped: {type(e).__name__}: {e})", file=sys.stderr)

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
    print(f"{'per statement (median of 5 rounds)':55} {'µs':>10}")
    for k, v in res.items():
        unit = "ms" if k.endswith("(ms)") else "µs"
        print(f"{k:55} {v:10.2f} {unit}")
    print()
    for k, v in ratios.items():
        print(f"{k:55} {v:10.2f}")


if __name__ == "__main__":
    main()
