"""Cold start: ``import governed_db`` and the first statement on a PII table in a fresh process, wrap() included.

Each sample is a new interpreter (``python -X importtime`` is not used: it slows imports down). The PII table
holds e-mail addresses, SSNs, phone numbers and free text, so the first read samples and classifies the table
and masks values with the detectors — the path that used to import spaCy through presidio-analyzer.

    python bench/bench_first_statement.py            # 7 samples, median and max
    python bench/bench_first_statement.py --runs 15

Targets (issue 14): first statement <= 1.0 s (goal 0.3 s); ``import governed_db`` <= 150 ms.
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

CHILD = r"""
import time, sys, json
t0 = time.perf_counter()
import governed_db
t1 = time.perf_counter()
import sqlite3
conn = governed_db.wrap(sqlite3.connect(sys.argv[1]), identity=governed_db.Identity("bench-agent", kind="agent"),
                        environment="production")
rows = conn.execute("SELECT * FROM customers").fetchall()
t2 = time.perf_counter()
heavy = sorted(m for m in ("spacy", "thinc", "transformers", "presidio_analyzer") if m in sys.modules)
print(json.dumps({"import": t1 - t0, "first": t2 - t0, "first_after_import": t2 - t1, "heavy": heavy,
                  "masked": rows[0][2] != "alice0@example.com"}))
"""


def make_db(path: str) -> None:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, ssn TEXT, phone TEXT, notes TEXT)"
    )
    db.executemany(
        "INSERT INTO customers VALUES (?,?,?,?,?,?)",
        [
            (
                i,
                f"Customer {i}",
                f"alice{i}@example.com",
                f"536-22-{8000 + i:04d}",
                f"+1 415-555-{i % 10000:04d}",
                f"called about order {i}; reach me at bob{i}@corp.io",
            )
            for i in range(200)
        ],
    )
    db.commit()
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "pii.db")
        make_db(path)
        samples = []
        for _ in range(args.runs):
            # the default configuration (audit store on) writes its files under the working directory
            out = subprocess.run(
                [sys.executable, "-c", CHILD, path], check=True, capture_output=True, text=True, cwd=tmp
            )
            samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for key in ("import", "first"):
        values = [s[key] for s in samples]
        print(
            f"{key:>6}: median {statistics.median(values) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms"
        )
    print("heavy modules loaded:", sorted({m for s in samples for m in s["heavy"]}) or "none")
    print("first row masked:", all(s["masked"] for s in samples))


if __name__ == "__main__":
    main()
