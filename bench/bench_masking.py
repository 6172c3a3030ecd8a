"""Masking speed, side by side (a plain script, not a timed test).

    python bench/bench_masking.py

1. ``fetchall`` of 10,000 rows x 6 columns (2 masked) through a governed
   sqlite3 connection vs the raw connection (target: <= 2x).
2. Value-based detection on free text, cells per second (target: >= 50,000).
3. ``classify_database`` on a 20-table schema with 1,000-row samples (target: <= 10 s).
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import governed_db
from governed_db.masking import detect
from governed_db.masking.scan import classify_database

FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
WORDS = [
    "the",
    "order",
    "shipped",
    "late",
    "and",
    "the",
    "customer",
    "asked",
    "for",
    "a",
    "refund",
    "about",
    "the",
    "delivery",
    "window",
]


def best(fn: Callable[[], object], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1000 if times else 0.0


def make_rows(n: int) -> list[tuple[object, ...]]:
    rnd = random.Random(7)
    return [
        (
            i,
            rnd.choice(["Paris", "Lyon", "Oslo", "Quito"]),
            f"{rnd.choice(FIRST)}{i}@example.com",
            f"{rnd.randint(100, 665)}-{rnd.randint(10, 99)}-{rnd.randint(1000, 9999)}",
            round(rnd.random() * 500, 2),
            f"2024-05-{rnd.randint(1, 28):02d}",
        )
        for i in range(n)
    ]


def bench_fetchall() -> list[tuple[str, str, str, str]]:
    raw = sqlite3.connect(":memory:")
    raw.execute(
        "CREATE TABLE customers (id INTEGER, city TEXT, email TEXT, ssn TEXT, amount REAL, created TEXT)"
    )
    raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?)", make_rows(10_000))
    gov = governed_db.wrap(
        raw,
        identity=governed_db.Identity("bench-bot", kind="agent"),
        environment="production",
        audit=False,
        record_results=False,
    )
    sql = "SELECT id, city, email, ssn, amount, created FROM customers"
    gov.execute(sql).fetchall()  # warm: catalog read, lineage, plan
    # interleaved, best of many: the shared machine is noisy
    t_raw = t_gov = t_iter = float("inf")
    for _ in range(5):
        t_raw = min(t_raw, best(lambda: raw.execute(sql).fetchall(), 3))
        t_gov = min(t_gov, best(lambda: gov.execute(sql).fetchall(), 3))
        t_iter = min(t_iter, best(lambda: list(gov.execute(sql)), 3))
    return [
        ("fetchall 10k x 6, raw sqlite3", f"{t_raw:.1f} ms", "", ""),
        ("fetchall 10k x 6, governed (2 masked)", f"{t_gov:.1f} ms", f"{t_gov / t_raw:.2f}x", "<= 2x"),
        ("iteration 10k x 6, governed (2 masked)", f"{t_iter:.1f} ms", f"{t_iter / t_raw:.2f}x", ""),
    ]


def bench_detection() -> list[tuple[str, str, str, str]]:
    rnd = random.Random(3)
    cells = []
    for i in range(20_000):
        text = " ".join(rnd.choice(WORDS) for _ in range(12))
        if i % 10 == 0:
            text += f" contact {rnd.choice(FIRST)}{i}@example.org"
        cells.append(text)
    detect.find_spans("warm up alice@example.com")

    def scan() -> None:
        for c in cells:
            detect.find_spans(c)

    rate = len(cells) / (best(scan, repeat=5) / 1000)
    return [("value detection, free text (10% with an e-mail)", f"{rate:,.0f} cells/s", "", ">= 50,000")]


def bench_classify() -> list[tuple[str, str, str, str]]:
    raw = sqlite3.connect(":memory:")
    rows = make_rows(1000)
    rnd = random.Random(5)
    for t in range(20):
        raw.execute(
            f"CREATE TABLE t{t} (id INTEGER, city TEXT, contact TEXT, ssn TEXT, amount REAL, created TEXT, "
            "notes TEXT)"
        )
        raw.executemany(
            f"INSERT INTO t{t} VALUES (?,?,?,?,?,?,?)",
            [(*r, " ".join(rnd.choice(WORDS) for _ in range(8))) for r in rows],
        )
    t0 = time.perf_counter()
    catalog = classify_database(raw, "sqlite", sample_rows=1000)
    elapsed = time.perf_counter() - t0
    found = sum(1 for _, _, c in catalog if c.label)
    return [
        (
            f"classify 20 tables x 7 columns, 1,000-row samples ({found} labelled)",
            f"{elapsed:.2f} s",
            "",
            "<= 10 s",
        )
    ]


def main() -> None:
    rows = bench_fetchall() + bench_detection() + bench_classify()
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'figure':>16}  {'ratio':>7}  target")
    for name, figure, ratio, target in rows:
        print(f"{name:<{width}}  {figure:>16}  {ratio:>7}  {target}")
    print(f"(python {sys.version.split()[0]}; timings are the best of several interleaved runs)")


if __name__ == "__main__":
    main()
