"""Per-statement cost of masking on a repeated non-sensitive statement (not a timed test).

    python bench/bench_masking.py [--n 20000]

Side by side on one governed sqlite3 connection (audit off), the same statement and result:
  * ``plan_masking`` + ``predicate_hit`` called directly (the masking share of a statement), hot cache;
  * the same two with the hot cache bypassed (the memo keyed by statement text + identity + names);
  * whole statements: governed with masking active (production) vs masking off (``mode: off``).
Variants take turns each round, so load drift on a shared machine hits them alike; medians are printed.

    python bench/bench_masking.py --rows 100000 [--rounds 5] [--driver psycopg]

A read of ``--rows`` rows (id, full_name, email, ssn, city: three of five columns masked) through a governed
connection vs the raw sqlite3 connection, back to back in each round (CPU time of this process); prints the
median ratio (target: a masked read costs at most 2x the raw read) and exits 1 when it is over 2x.

    python bench/bench_masking.py --rows 100000 --diluted

The same read with one more column, ``ref``: varied innocent text (``ref 7``, ``ref 14``...) whose first row holds
an SSN. The sample reads that one item among its values, so the column is free text, scanned as it passes
(decision 0313): what a column an agent diluted costs to read (sqlite3 only; reported, no target).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Any

import governed_db
from governed_db import Identity, masking
from governed_db.sql.analysis import analyze

SQL = "SELECT id, name, price FROM items WHERE id = ?"


def _conn(**masking_option: Any) -> Any:
    raw = sqlite3.connect(":memory:", check_same_thread=False)
    raw.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    raw.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"item {i}", i * 1.5) for i in range(1000)])
    return governed_db.wrap(
        raw, identity=Identity("bot", kind="agent"), environment="production", audit=False, **masking_option
    )


def _statements(conn: Any) -> Callable[[int], None]:
    cur = conn.cursor()

    def run(n: int) -> None:
        for i in range(n):
            cur.execute(SQL, (i % 1000,))
            cur.fetchall()

    run(200)
    return run


def _masking_calls(conn: Any, hot: bool) -> Callable[[int], None]:
    cur = conn.cursor()
    cur.execute(SQL, (1,))
    description = cur.description
    gov = conn._self_gov
    analysis = analyze(SQL, gov.dialect)
    identity = gov.settings.identity
    state = gov.state["masking"]

    def run(n: int) -> None:
        for i in range(n):
            if not hot:
                state.hot.clear()
            masking.predicate_hit(analysis, identity=identity, gov=gov, params=(i,))
            masking.plan_masking(description, analysis, identity=identity, gov=gov)

    run(200)
    return run


READ = "SELECT id, full_name, email, ssn, city FROM customers"
#: --diluted: one more column, varied innocent text with one SSN in its first row (decision 0313)
READ_DILUTED = "SELECT id, full_name, email, ssn, city, ref FROM customers"


def _customers(rows: int, diluted: bool = False) -> sqlite3.Connection:
    raw = sqlite3.connect(":memory:", check_same_thread=False)
    raw.execute(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT, email TEXT, ssn TEXT, city TEXT, ref TEXT)"
    )
    raw.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
        (
            (i, f"Person {i} Smith", f"person{i}@example.com", f"{i % 900 + 100:03d}-{i % 90 + 10:02d}-{i % 9000 + 1000}",
             ("Paris", "Lyon", "Oslo")[i % 3], ("536-22-8726" if i == 0 else f"ref {i * 7}") if diluted else None)
            for i in range(rows)
        ),
    )  # fmt: skip
    raw.commit()
    return raw


def _read(conn: Any, sql: str = READ) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            cur = conn.cursor()
            cur.execute(sql)
            cur.fetchall()

    run(1)
    return run


def _pg_customers(rows: int) -> Any:
    """The same table on the test PostgreSQL server (a temporary table of this session), through psycopg."""
    import os

    import psycopg

    raw = psycopg.connect(os.environ.get("GOVERNED_DB_TEST_PG", "host=127.0.0.1 dbname=test user=postgres"),
                          autocommit=True)
    raw.execute("CREATE TEMP TABLE customers (id int PRIMARY KEY, full_name text, email text, ssn text, city text)")
    raw.execute(
        "INSERT INTO customers SELECT i, 'Person ' || i || ' Smith', 'person' || i || '@example.com', "
        "lpad((i %% 900 + 100)::text, 3, '0') || '-' || (i %% 90 + 10) || '-' || (i %% 9000 + 1000), "
        "(ARRAY['Paris', 'Lyon', 'Oslo'])[i %% 3 + 1] FROM generate_series(0, %s) i",
        (rows - 1,),
    )
    return raw


def read_ratio(rows: int, rounds: int, driver: str = "sqlite", diluted: bool = False) -> dict[str, float]:
    """Seconds per read of ``rows`` rows: raw, and governed with masking, interleaved; plus their ratio.

    sqlite3 is timed in CPU time of this process (what the read costs us, whatever the neighbours on a shared
    machine do); psycopg in wall time, since the raw read's cost is mostly the server's and the socket's."""
    raw = _customers(rows, diluted) if driver == "sqlite" else _pg_customers(rows)
    sql = READ_DILUTED if diluted else READ
    governed = governed_db.wrap(raw, identity=Identity("bot", kind="agent"), environment="production", audit=False)
    got = governed.cursor()
    got.execute(sql + " LIMIT 1")
    first = got.fetchall()
    assert first[0][2].startswith("p***@"), first  # masking is really on
    assert not diluted or first[0][5] == "[US_SSN]", first  # the diluted column is scanned
    plain, masked = _read(raw, sql), _read(governed, sql)
    clock = time.process_time if driver == "sqlite" else time.perf_counter
    raw_s: list[float] = []
    masked_s: list[float] = []
    ratios: list[float] = []
    for _ in range(rounds):
        # the ratio is taken within each round (raw and masked back to back), then the median of rounds
        t0 = clock()
        plain(1)
        t1 = clock()
        masked(1)
        t2 = clock()
        raw_s.append(t1 - t0)
        masked_s.append(t2 - t1)
        ratios.append((t2 - t1) / max(t1 - t0, 1e-9))
    return {
        "raw read": statistics.median(raw_s),
        "masked read": statistics.median(masked_s),
        "ratio": statistics.median(ratios),
    }


def _interleaved(variants: dict[str, Callable[[int], None]], n: int, rounds: int = 7) -> dict[str, float]:
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            t0 = time.perf_counter_ns()
            run(n)
            samples[name].append((time.perf_counter_ns() - t0) / n / 1000)
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=0, help="measure a read of this many rows instead")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--driver", choices=("sqlite", "psycopg"), default="sqlite",
                        help="for --rows: sqlite3 in memory, or psycopg on the test PostgreSQL server")
    parser.add_argument("--diluted", action="store_true",
                        help="for --rows (sqlite3): one more column, varied text holding one SSN (decision 0313)")
    args = parser.parse_args()
    if args.rows:
        read = read_ratio(args.rows, args.rounds, args.driver, args.diluted)
        print(f"{'raw read':34} {read['raw read']:10.3f} s")
        print(f"{'masked read':34} {read['masked read']:10.3f} s")
        print(f"{'masked / raw' + ('' if args.diluted else ' (target <= 2.0)'):34} {read['ratio']:10.2f}x")
        raise SystemExit(0 if read["ratio"] <= 2.0 or args.diluted else 1)
    on = _conn()
    off = _conn(masking={"mode": "off"})
    calls = _interleaved(
        {
            "masking calls, hot cache": _masking_calls(on, True),
            "masking calls, memo only": _masking_calls(on, False),
        },
        args.n,
    )
    whole = _interleaved(
        {"statement, masking on": _statements(on), "statement, masking off": _statements(off)}, args.n
    )
    print(f"{'variant':34} {'us/statement':>13}")
    for name, us in {**calls, **whole}.items():
        print(f"{name:34} {us:13.2f}")
    print(
        f"{'hot cache speed-up (memo / hot)':34} {calls['masking calls, memo only'] / calls['masking calls, hot cache']:12.1f}x"
    )
    delta = whole["statement, masking on"] - whole["statement, masking off"]
    print(f"{'masking share of a statement':34} {delta:13.2f}")


if __name__ == "__main__":
    main()
