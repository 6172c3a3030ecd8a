"""Overhead of governance as seen through the integrations: SQLAlchemy Core/ORM, pandas, the agent tools.

Run:  python bench/bench_integrations.py [--n 2000]

Prints one table: the same work through a plain and a governed SQLite engine (in production, default policy
and masking), per-operation times and the ratio. A plain script, not a timed test.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from governed_db import Identity
from governed_db.integrations.sqlalchemy import create_engine
from governed_db.integrations.tooling import SQLTools


def _build(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, plan TEXT)")
    conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)",
                     [(i, f"user {i}", f"user{i}@example.com", "pro" if i % 3 else "free") for i in range(rows)])
    conn.commit()
    conn.close()


def _time(fn: Callable[[], Any], n: int) -> float:
    """Median seconds per call over 5 rounds of n // 5 calls."""
    per_round = max(n // 5, 1)
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(per_round):
            fn()
        samples.append((time.perf_counter() - start) / per_round)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per measurement (small ones; big ones use n/20)")
    args = parser.parse_args()
    os.environ.setdefault("GOVERNED_DB_AUDIT", str(Path(tempfile.mkdtemp()) / "audit"))
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        _build(db, 1000)
        plain = sa.create_engine(f"sqlite:///{db}")
        governed = create_engine(f"sqlite:///{db}", identity=Identity("bench", kind="agent"), environment="production")
        point = sa.text("SELECT id, plan FROM customers WHERE id = :i")
        masked = sa.text("SELECT id, email FROM customers WHERE id = :i")
        many = sa.text("SELECT id, name, email, plan FROM customers")

        def core(engine: Any, stmt: Any) -> Callable[[], Any]:
            def run() -> Any:
                with engine.connect() as c:
                    return c.execute(stmt, {"i": 7}).all()
            return run

        def orm(engine: Any) -> Callable[[], Any]:
            def run() -> Any:
                with Session(engine) as s:
                    return s.execute(masked, {"i": 7}).all()
            return run

        def frame(engine: Any) -> Callable[[], Any]:
            return lambda: pd.read_sql(many, engine)

        cases: list[tuple[str, Callable[[], Any], Callable[[], Any], int]] = [
            ("Core point SELECT (no PII)", core(plain, point), core(governed, point), args.n),
            ("Core point SELECT (masked email)", core(plain, masked), core(governed, masked), args.n),
            ("ORM session SELECT (masked email)", orm(plain), orm(governed), args.n),
            ("pandas read_sql 1000 rows x 4 cols", frame(plain), frame(governed), max(args.n // 20, 5)),
            ("SQLTools.run_query 200 rows", lambda: SQLTools(plain).run_query("SELECT * FROM customers"),
             lambda: SQLTools(governed).run_query("SELECT * FROM customers"), max(args.n // 20, 5)),
        ]
        print(f"{'operation':<38} {'plain':>10} {'governed':>10} {'ratio':>7} {'added':>10}")
        for name, fa, fb, n in cases:
            fa(), fb()  # warm caches (analysis, masking plans, pools)
            a, b = _time(fa, n), _time(fb, n)
            print(f"{name:<38} {a * 1e6:>8.0f}µs {b * 1e6:>8.0f}µs {b / a:>6.2f}x {(b - a) * 1e6:>8.0f}µs")
        plain.dispose()
        governed.dispose()


if __name__ == "__main__":
    main()
