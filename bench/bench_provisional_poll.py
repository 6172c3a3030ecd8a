"""A filter polling a nearly empty SQLite queue table (decisions 0250, 0267; not a timed test).

    python bench/bench_provisional_poll.py [--n 500] [--rounds 7]

``jobs(id integer primary key, status text, payload text)`` with one row, a service identity, ``SELECT id FROM
jobs WHERE status = ?`` repeated ``--n`` times. ``status`` is provisional (the table was sampled nearly empty),
so the statement filters on a provisional column. Side by side, taking turns each round:
  * ``probe``: as shipped, one bounded probe of the provisional columns' values per statement (decision 0267);
  * ``full re-sample``: the probe disabled, the table's catalog and sample read again per statement (0250);
  * ``settled``: the same statement on a 40-row table (not provisional: the hot cache answers);
  * ``raw``: the sqlite3 connection itself.
Prints the median and the best round in microseconds per statement.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from typing import Any

import governed_db
from governed_db.masking.engine import MaskingState

SQL = "SELECT id FROM jobs WHERE status = ?"


def _table(rows: int) -> sqlite3.Connection:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE jobs (id integer primary key, status text, payload text)")
    raw.executemany("INSERT INTO jobs (status, payload) VALUES ('queued', 'x')", [()] * rows)
    return raw


def _loop(cur: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        cur.execute(SQL, ("queued",))
        cur.fetchall()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    service = governed_db.Identity("svc-poller", kind="service")
    shipped = MaskingState.unchanged

    def never(self: MaskingState, key: str, conn: Any = None) -> bool:
        return False

    variants = {
        "probe": (governed_db.wrap(_table(1), identity=service, environment="production", audit=False), shipped),
        "full re-sample": (governed_db.wrap(_table(1), identity=service, environment="production", audit=False),
                           never),
        "settled (40 rows)": (governed_db.wrap(_table(40), identity=service, environment="production", audit=False),
                              shipped),
        "raw": (_table(1), shipped),
    }
    cursors = {name: (conn.cursor(), f) for name, (conn, f) in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for r in range(args.rounds + 1):
            for name, (cur, f) in cursors.items():
                MaskingState.unchanged = f  # type: ignore[method-assign]
                took = _loop(cur, args.n)
                if r:
                    times[name].append(took)  # round 0 warms up
    finally:
        MaskingState.unchanged = shipped  # type: ignore[method-assign]
    for name, t in times.items():
        print(f"{name:18s} median {statistics.median(t):8.1f} us   best {min(t):8.1f} us")


if __name__ == "__main__":
    main()
