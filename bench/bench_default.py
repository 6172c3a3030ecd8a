"""The default configuration first: what users pay for ``wrap(conn, identity=..., environment="production")``.

    python bench/bench_default.py [--n 5000] [--quick] [--json] [--only NAME[,NAME...]]

Every figure is a ratio from ONE interleaved run (the variants of a scenario take turns each round, so load
drift on a shared machine hits them alike); medians of the rounds are reported. The default configuration
writes the local hash-chained audit store (write-ahead intent + outcome), which ``audit=False`` skips.

Scenarios (issue #14 targets in brackets, goal in parentheses):
  point      repeated parameterised point SELECT on sqlite3: overhead of governed (default) vs the overhead of the
             official OpenTelemetry dbapi instrumentation, with and without an SDK provider  [<= 1.0x (0.5x);
             with SDK <= 1.5x (1.0x)]
  literal    unique-literal point SELECT (every text new, as agents write SQL) / parameterised  [<= 3x (1.5x)]
  insert     parameterised INSERT, governed default / raw
  many       executemany of 10k rows x 4 text columns, governed default / raw  [<= 10x (3x)]
  working    3,000 distinct texts cycled vs 1,000 distinct texts, per statement  [<= 2x (1.2x)]
  masked     1,000-row read with masked PII columns / raw  [<= 2x (1.5x)]
  wide       100k-row unmasked read / raw  [<= 1.25x]
  psycopg    repeated SELECT over loopback, default / raw  [<= 1.5x (1.2x)]   (needs PostgreSQL)
  pymysql    repeated SELECT over loopback, default / raw                     (needs MariaDB)
  memory     peak RSS growth over 100k unique statements (bounded caches)
  import     `import governed_db`  [<= 150 ms]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

Runner = Callable[[int], None]
POINT = "SELECT id, name, price FROM items WHERE id = ?"
IDENT = None  # set in main (governed_db imported lazily so that --only import measures a cold import)


def _items(conn: Any, rows: int = 1000) -> Any:
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"item {i}", i * 1.5) for i in range(rows)])
    return conn


def _customers(conn: Any, rows: int) -> Any:
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT, email TEXT, ssn TEXT, city TEXT)")
    conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
        [(i, f"Alice Example{i}", f"alice{i}@example.com", f"{100 + i % 800:03d}-{10 + i % 89:02d}-{1000 + i % 8999:04d}",
          "Springfield") for i in range(rows)],
    )
    conn.commit()
    return conn


def _sqlite(setup: Callable[[Any], Any] = _items) -> sqlite3.Connection:
    return setup(sqlite3.connect(":memory:", check_same_thread=False))


def _sdk_provider() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536, max_export_batch_size=4096))
    return provider


def _interleaved(variants: dict[str, tuple[Runner, int]], rounds: int) -> dict[str, float]:
    """Median µs per unit of work; variants take turns each round."""
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, (run, n) in variants.items():
            gc.collect()
            t0 = time.perf_counter_ns()
            run(n)
            samples[name].append((time.perf_counter_ns() - t0) / n / 1000)
    return {k: statistics.median(v) for k, v in samples.items()}


def _point(conn: Any, sql: str = POINT) -> Runner:
    cur = conn.cursor()
    for i in range(200):  # warm caches
        cur.execute(sql, (i % 1000,))
        cur.fetchall()

    def run(n: int) -> None:
        for i in range(n):
            cur.execute(sql, (i % 1000,))
            cur.fetchall()

    return run


def _texts(conn: Any, texts: list[str], warm: bool = True) -> Runner:
    cur = conn.cursor()
    state = {"i": 0}
    if warm:
        for t in texts:
            cur.execute(t)
            cur.fetchall()

    def run(n: int) -> None:
        i = state["i"]
        for _ in range(n):
            cur.execute(texts[i % len(texts)])
            cur.fetchall()
            i += 1
        state["i"] = i

    return run


def _unique_literals(conn: Any) -> Runner:
    cur = conn.cursor()
    state = {"i": 10_000_000}

    def run(n: int) -> None:
        i = state["i"]
        for _ in range(n):
            # every text is new: literal SQL, as agents write it
            cur.execute(f"SELECT id, name, price FROM items WHERE id = {i % 1000} AND price > {-(i + 1)}")
            cur.fetchall()
            i += 1
        state["i"] = i

    return run


def _wrap(conn: Any, tmp: str, name: str, **kw: Any) -> Any:
    import governed_db

    kw.setdefault("audit", os.path.join(tmp, f"{name}.jsonl"))
    kw.setdefault("identity", IDENT)
    return governed_db.wrap(conn, environment="production", **kw)


def scenario_point(n: int, rounds: int, tmp: str) -> dict[str, Any]:
    from opentelemetry.instrumentation.dbapi import instrument_connection

    otel_sdk, gov_sdk = _sdk_provider(), _sdk_provider()
    variants = {
        "raw": (_point(_sqlite()), n),
        "official instrumentation (no SDK provider)": (
            _point(instrument_connection("sqlite3", _sqlite(), "sqlite")), n),
        "governed default (audit store)": (_point(_wrap(_sqlite(), tmp, "point")), n),
        "governed audit=False": (_point(_wrap(_sqlite(), tmp, "x", audit=False)), n),
        "official instrumentation + SDK batch": (
            _point(instrument_connection("sqlite3", _sqlite(), "sqlite", tracer_provider=otel_sdk)), n),
        "governed default + SDK batch": (_point(_wrap(_sqlite(), tmp, "point-sdk", tracer_provider=gov_sdk)), n),
    }
    res = _interleaved(variants, rounds)
    otel_sdk.shutdown()
    gov_sdk.shutdown()
    raw = res["raw"]

    def over(k: str) -> float:
        return res[k] - raw

    return {
        "us": res,
        "ratios": {
            "default overhead / instrumentation overhead [<= 1.0 (0.5)]":
                over("governed default (audit store)") / over("official instrumentation (no SDK provider)"),
            "default+SDK overhead / instrumentation+SDK overhead [<= 1.5 (1.0)]":
                over("governed default + SDK batch") / over("official instrumentation + SDK batch"),
            "audit=False overhead / instrumentation overhead":
                over("governed audit=False") / over("official instrumentation (no SDK provider)"),
        },
    }


def scenario_literal(n: int, rounds: int, tmp: str) -> dict[str, Any]:
    variants = {
        "governed default, parameterised": (_point(_wrap(_sqlite(), tmp, "param")), n),
        "governed default, unique literals": (_unique_literals(_wrap(_sqlite(), tmp, "lit")), n),
        "raw, unique literals": (_unique_literals(_sqlite()), n),
    }
    res = _interleaved(variants, rounds)
    return {"us": res, "ratios": {
        "unique-literal / parameterised, governed default [<= 3 (1.5)]":
            res["governed default, unique literals"] / res["governed default, parameterised"],
    }}


def scenario_insert(n: int, rounds: int, tmp: str) -> dict[str, Any]:
    def ins(conn: Any) -> Runner:
        conn.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, msg TEXT, level INTEGER)")
        cur = conn.cursor()
        state = {"i": 0}

        def run(k: int) -> None:
            i = state["i"]
            for _ in range(k):
                cur.execute("INSERT INTO log (msg, level) VALUES (?, ?)", (f"event {i}", i % 5))
                i += 1
            state["i"] = i

        return run

    variants = {"raw": (ins(sqlite3.connect(":memory:")), n),
                "governed default": (ins(_wrap(sqlite3.connect(":memory:"), tmp, "ins")), n)}
    res = _interleaved(variants, rounds)
    return {"us": res, "ratios": {"INSERT governed default / raw": res["governed default"] / res["raw"]}}


def scenario_many(rows: int, rounds: int, tmp: str) -> dict[str, Any]:
    data = [(f"name {i}", f"street {i}", f"city {i % 50}", f"note {i}") for i in range(rows)]

    def many(conn: Any) -> Runner:
        conn.execute("CREATE TABLE addresses (name TEXT, street TEXT, city TEXT, note TEXT)")
        cur = conn.cursor()

        def run(_k: int) -> None:
            cur.executemany("INSERT INTO addresses VALUES (?, ?, ?, ?)", data)

        return run

    import governed_db

    # a person's load job: agents are bounded in the rows one statement may change (the effect guard)
    loader = governed_db.Identity("etl-owner", kind="human")
    variants = {"raw": (many(sqlite3.connect(":memory:")), 1),
                "governed default": (many(_wrap(sqlite3.connect(":memory:"), tmp, "many", identity=loader)), 1)}
    res = _interleaved(variants, rounds)
    return {"us": res, "ratios": {f"executemany {rows} rows x 4 text, governed default / raw [<= 10 (3)]":
                                  res["governed default"] / res["raw"]}}


def scenario_working(n: int, rounds: int, tmp: str) -> dict[str, Any]:
    def texts(k: int) -> list[str]:
        return [f"SELECT id, name FROM items WHERE id = {i % 1000} AND price >= {i}" for i in range(k)]

    variants = {"governed default, 1,000 texts": (_texts(_wrap(_sqlite(), tmp, "w1"), texts(1000)), n),
                "governed default, 3,000 texts": (_texts(_wrap(_sqlite(), tmp, "w3"), texts(3000)), n)}
    res = _interleaved(variants, rounds)
    return {"us": res, "ratios": {"3,000 texts / 1,000 texts per statement [<= 2 (1.2)]":
                                  res["governed default, 3,000 texts"] / res["governed default, 1,000 texts"]}}


def _read_all(conn: Any, sql: str) -> Runner:
    cur = conn.cursor()
    cur.execute(sql)
    cur.fetchall()

    def run(_k: int) -> None:
        cur.execute(sql)
        cur.fetchall()

    return run


def scenario_masked(rounds: int, tmp: str) -> dict[str, Any]:
    sql = "SELECT id, full_name, email, ssn, city FROM customers WHERE id < 1000"
    variants = {"raw": (_read_all(_sqlite(lambda c: _customers(c, 1000)), sql), 1),
                "governed default (3 of 5 columns masked)": (
                    _read_all(_wrap(_sqlite(lambda c: _customers(c, 1000)), tmp, "mask"), sql), 1)}
    res = _interleaved(variants, rounds * 3)
    return {"us": res, "ratios": {"masked 1,000-row read / raw [<= 2 (1.5)]":
                                  res["governed default (3 of 5 columns masked)"] / res["raw"]}}


def scenario_wide(rows: int, rounds: int, tmp: str) -> dict[str, Any]:
    sql = "SELECT id, name, price FROM items"
    variants = {"raw": (_read_all(_sqlite(lambda c: _items(c, rows)), sql), 1),
                "governed default": (_read_all(_wrap(_sqlite(lambda c: _items(c, rows)), tmp, "wide"), sql), 1)}
    res = _interleaved(variants, rounds)
    return {"us": res, "ratios": {f"unmasked {rows}-row read / raw [<= 1.25]": res["governed default"] / res["raw"]}}


def scenario_psycopg(n: int, rounds: int, tmp: str) -> dict[str, Any]:
    import psycopg

    dsn = os.environ.get("GOVERNED_DB_TEST_PG", "host=127.0.0.1 dbname=test user=postgres")

    def conn() -> Any:
        c = psycopg.connect(dsn, autocommit=True)
        c.execute("CREATE TEMP TABLE items (id int primary key, name text, price float8)")
        with c.cursor() as cur:
            cur.executemany("INSERT INTO items VALUES (%s, %s, %s)", [(i, f"item {i}", i * 1.5) for i in range(1000)])
        return c

    sql = POINT.replace("?", "%s")
    variants = {"raw": (_point(conn(), sql), n), "governed default": (_point(_wrap(conn(), tmp, "pg"), sql), n),
                "governed audit=False": (_point(_wrap(conn(), tmp, "pgx", audit=False), sql), n)}
    res = _interleaved(variants, rounds)
    return {"us": res, "ratios": {"psycopg loopback, governed default / raw [<= 1.5 (1.2)]":
                                  res["governed default"] / res["raw"],
                                  "psycopg loopback, governed audit=False / raw": res["governed audit=False"] / res["raw"]}}


def scenario_pymysql(n: int, rounds: int, tmp: str) -> dict[str, Any]:
    import pymysql

    table = f"bench_items_{os.getpid()}"

    def conn() -> Any:
        return pymysql.connect(host="127.0.0.1", user="root", password="", database="test", autocommit=True)

    setup = conn()
    with setup.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {table} (id int primary key, name text, price double)")
        cur.executemany(f"INSERT IGNORE INTO {table} VALUES (%s, %s, %s)",
                        [(i, f"item {i}", i * 1.5) for i in range(1000)])
    sql = f"SELECT id, name, price FROM {table} WHERE id = %s"
    try:
        variants = {"raw": (_point(conn(), sql), n), "governed default": (_point(_wrap(conn(), tmp, "my"), sql), n),
                    "governed audit=False": (_point(_wrap(conn(), tmp, "myx", audit=False), sql), n)}
        res = _interleaved(variants, rounds)
    finally:
        with setup.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
    return {"us": res, "ratios": {"PyMySQL loopback, governed default / raw": res["governed default"] / res["raw"],
                                  "PyMySQL loopback, governed audit=False / raw": res["governed audit=False"] / res["raw"]}}


def scenario_memory(count: int, tmp: str) -> dict[str, Any]:
    conn = _wrap(_sqlite(), tmp, "mem")
    cur = conn.cursor()

    def rss_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    for i in range(2000):
        cur.execute(f"SELECT id FROM items WHERE id = {i} AND price > {i}")
        cur.fetchall()
    start = rss_mb()
    half = start
    for i in range(count):
        cur.execute(f"SELECT id FROM items WHERE id = {i % 1000} AND price > {i + 5000}")
        cur.fetchall()
        if i == count // 2:
            half = rss_mb()
    end = rss_mb()
    return {"mb": {"peak RSS after warm-up": start, f"after {count // 2}": half, f"after {count}": end},
            "ratios": {"RSS growth in the second half / first half (bounded: well below 1)":
                       (end - half) / max(half - start, 0.5)}}


def scenario_import() -> dict[str, Any]:
    def run(code: str) -> float:
        best = []
        for _ in range(7):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            best.append(time.perf_counter() - t0)
        return statistics.median(best) * 1000

    ms = run("import governed_db") - run("pass")
    return {"ms": {"import governed_db": ms}, "ratios": {}}


def main() -> None:
    global IDENT
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000, help="statements per round for per-statement scenarios")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="fewer statements and rounds (a smoke run)")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    n, rounds = (500, 3) if args.quick else (args.n, args.rounds)
    only = {s for s in args.only.split(",") if s}
    if only == {"import"}:
        out: dict[str, Any] = {"import": scenario_import()}
    else:
        import governed_db

        IDENT = governed_db.Identity("bench-agent", kind="agent", on_behalf_of="alice")
        tmp = tempfile.mkdtemp(prefix="gdb-bench-")
        plan: dict[str, Callable[[], dict[str, Any]]] = {
            "point": lambda: scenario_point(n, rounds, tmp),
            "literal": lambda: scenario_literal(n // 5, rounds, tmp),
            "insert": lambda: scenario_insert(n, rounds, tmp),
            "many": lambda: scenario_many(1000 if args.quick else 10_000, rounds, tmp),
            "working": lambda: scenario_working(n, rounds, tmp),
            "masked": lambda: scenario_masked(rounds, tmp),
            "wide": lambda: scenario_wide(10_000 if args.quick else 100_000, rounds, tmp),
            "psycopg": lambda: scenario_psycopg(n // 5, rounds, tmp),
            "pymysql": lambda: scenario_pymysql(n // 5, rounds, tmp),
            "memory": lambda: scenario_memory(5_000 if args.quick else 100_000, tmp),
            "import": scenario_import,
        }
        out = {}
        for name, fn in plan.items():
            if only and name not in only:
                continue
            try:
                out[name] = fn()
            except Exception as e:  # a server that is absent: say so, measure the rest
                out[name] = {"skipped": f"{type(e).__name__}: {e}"}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for name, res in out.items():
        print(f"\n== {name}")
        if "skipped" in res:
            print(f"   skipped: {res['skipped']}")
            continue
        for unit in ("us", "ms", "mb"):
            for k, v in res.get(unit, {}).items():
                print(f"   {k:62} {v:12.2f} {unit.replace('us', 'µs')}")
        for k, v in res["ratios"].items():
            print(f"   {k:62} {v:12.2f}")


if __name__ == "__main__":
    main()
