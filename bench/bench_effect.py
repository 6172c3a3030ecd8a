"""Cost of writes judged by their effect on PostgreSQL over loopback (a benchmark, not a test).

    python bench/bench_effect.py [rounds]

Target (issue 11): a guarded write (an agent's UPDATE in production: savepoint, measured, kept) costs at most
1.5x the raw driver's write; reads are unchanged. Measured as interleaved ratios (raw and governed batches
alternate in one run, so load from other processes hits both alike): median per-statement time over the
rounds, governed / raw. Needs PostgreSQL on 127.0.0.1:5432 (``GOVERNED_DB_TEST_PG`` to point elsewhere).

Cases, each on psycopg2 (the bracket opens in the statement's own round trip) and psycopg 3 (one round
trip more: a statement with parameters cannot carry a second one):

* ``write 1 row``: autocommit ``UPDATE ... WHERE id = %s`` (BEGIN; UPDATE; COMMIT around it);
* ``write 2 rows``: ``UPDATE ... WHERE id IN (%s, %s)`` (adds the "every row?" probe, fused with COMMIT);
* ``write in txn``: the same one-row update inside the application's transaction (a savepoint);
* ``read``: ``SELECT ... WHERE id = %s`` by the same bounded agent (no extra statement at all), against raw
  (all of governance) and against an unbounded person through governed_db (the guard's share: ~1.0x).

The governed side records nothing (``audit=False``, no tracer): bench_core.py measures the record.
``BENCH_NO_FSYNC=1`` runs both sides with ``synchronous_commit = off``: a write then costs a round trip
rather than a WAL flush, which shows the guard's own cost (governance + one round trip) undiluted.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import governed_db
from governed_db import Identity

DSN = os.environ.get("GOVERNED_DB_TEST_PG", "host=127.0.0.1 port=5432 dbname=test user=postgres")
AGENT = Identity("bench-bot", kind="agent")
BATCH = 50


def _per_op(fn: Callable[[int], object]) -> float:
    t0 = time.perf_counter()
    for i in range(BATCH):
        fn(i)
    return (time.perf_counter() - t0) / BATCH


def _connect(driver: str) -> Any:
    options = "-c synchronous_commit=off" if os.environ.get("BENCH_NO_FSYNC") == "1" else ""
    if driver == "psycopg2":
        import psycopg2

        conn = psycopg2.connect(DSN, options=options)
        conn.autocommit = True
        return conn
    import psycopg

    return psycopg.connect(DSN, autocommit=True, options=options)


def _cases(cur: Any, table: str, conn: Any) -> dict[str, Callable[[int], object]]:
    def write1(i: int) -> None:
        cur.execute(f"UPDATE {table} SET n = n + 1 WHERE id = %s", (i % 500 + 1,))

    def write2(i: int) -> None:
        cur.execute(f"UPDATE {table} SET n = n + 1 WHERE id IN (%s, %s)", (i % 500 + 1, i % 500 + 501))

    def in_txn(i: int) -> None:
        conn.autocommit = False
        cur.execute(f"UPDATE {table} SET n = n + 1 WHERE id = %s", (i % 500 + 1,))
        conn.commit()
        conn.autocommit = True

    def read(i: int) -> None:
        cur.execute(f"SELECT id, n FROM {table} WHERE id = %s", (i % 1000 + 1,))
        cur.fetchall()

    return {"write 1 row": write1, "write 2 rows": write2, "write in txn": in_txn, "read": read}


def main(rounds: int) -> int:
    table = f"bench_effect_{uuid.uuid4().hex[:8]}"
    admin = _connect("psycopg2")
    acur = admin.cursor()
    acur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)")
    acur.execute(f"INSERT INTO {table} (id) SELECT g FROM generate_series(1, 1000) g")
    worst: dict[str, float] = {}
    try:
        for driver in ("psycopg2", "psycopg"):
            raw = _connect(driver)
            gov_raw = _connect(driver)
            gov = governed_db.wrap(gov_raw, identity=AGENT, environment="production", audit=False)
            raw_cases = _cases(raw.cursor(), table, raw)
            gov_cases = _cases(gov.cursor(), table, gov)
            for name in raw_cases:
                raw_t: list[float] = []
                gov_t: list[float] = []
                for _ in range(rounds):  # interleaved: raw, governed, raw, governed, ...
                    raw_t.append(_per_op(raw_cases[name]))
                    gov_t.append(_per_op(gov_cases[name]))
                r, g = statistics.median(raw_t), statistics.median(gov_t)
                ratio = g / r
                worst[f"{driver} {name}"] = ratio
                print(f"{driver:9} {name:13} raw {r * 1e6:8.1f} us   governed {g * 1e6:8.1f} us   ratio {ratio:5.2f}x")
            # reads: the bounded agent against an unbounded person on the same governed path (the guard's share)
            person_raw = _connect(driver)
            person = governed_db.wrap(person_raw, identity=Identity("bench-person"), environment="production",
                                      audit=False)  # fmt: skip
            read_person = _cases(person.cursor(), table, person)["read"]
            a_t: list[float] = []
            p_t: list[float] = []
            for _ in range(rounds):
                a_t.append(_per_op(gov_cases["read"]))
                p_t.append(_per_op(read_person))
            a, p = statistics.median(a_t), statistics.median(p_t)
            worst[f"{driver} read guard"] = a / p
            print(f"{driver:9} {'read: guard':13} person {p * 1e6:5.1f} us   agent    {a * 1e6:8.1f} us   ratio "
                  f"{a / p:5.2f}x  (the guard's share of a read: none expected)")
            raw.close()
            gov_raw.close()
            person_raw.close()
    finally:
        acur.execute(f"DROP TABLE IF EXISTS {table}")
        admin.close()
    target = worst.get("psycopg2 write 1 row", 99.0)
    print(f"\ntarget: guarded write <= 1.5x raw (psycopg2, one row, autocommit): {target:.2f}x "
          f"{'OK' if target <= 1.5 else 'MISSED'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 15))
