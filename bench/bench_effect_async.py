"""Cost of writes judged by their effect on the async PostgreSQL drivers (a benchmark, not a test).

    python bench/bench_effect_async.py [rounds]

The async counterpart of ``bench_effect.py`` (same target: a guarded write at most 1.5x the raw driver's,
reads unchanged), measured the same way: interleaved raw and governed batches in one run, median per-statement
time over the rounds, governed / raw. Needs PostgreSQL on 127.0.0.1:5432.

Cases, on asyncpg and psycopg 3 async:

* ``write 1 row``: an autocommit ``UPDATE ... WHERE id = $1`` (the guard opens a transaction around it);
* ``write 1 row, text``: asyncpg only, the same without arguments (the ``BEGIN`` rides in its simple query);
* ``write 2 rows``: ``... WHERE id IN (...)`` (adds the "every row?" probe, fused with the COMMIT);
* ``read``: ``SELECT ... WHERE id = ...`` by the same bounded agent (no extra statement).

``BENCH_NO_FSYNC=1`` runs both sides with ``synchronous_commit = off``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import governed_db
from governed_db import Identity

DSN = os.environ.get("GOVERNED_DB_TEST_PG", "host=127.0.0.1 port=5432 dbname=test user=postgres")
AGENT = Identity("bench-bot", kind="agent")
BATCH = 50
NO_FSYNC = os.environ.get("BENCH_NO_FSYNC") == "1"


async def _per_op(fn: Callable[[int], Awaitable[object]]) -> float:
    t0 = time.perf_counter()
    for i in range(BATCH):
        await fn(i)
    return (time.perf_counter() - t0) / BATCH


def _url() -> str:
    parts = dict(p.split("=", 1) for p in DSN.split())
    return f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"


async def _connect(driver: str) -> Any:
    if driver == "asyncpg":
        import asyncpg

        settings = {"synchronous_commit": "off"} if NO_FSYNC else {}
        return await asyncpg.connect(_url(), server_settings=settings)
    import psycopg

    options = "-c synchronous_commit=off" if NO_FSYNC else ""
    return await psycopg.AsyncConnection.connect(DSN, autocommit=True, options=options)


def _cases(conn: Any, driver: str, table: str) -> dict[str, Callable[[int], Awaitable[object]]]:
    if driver == "asyncpg":

        async def write1(i: int) -> None:
            await conn.execute(f"UPDATE {table} SET n = n + 1 WHERE id = $1", i % 500 + 1)

        async def write1_text(i: int) -> None:
            await conn.execute(f"UPDATE {table} SET n = n + 1 WHERE id = {i % 500 + 1}")

        async def write2(i: int) -> None:
            await conn.execute(f"UPDATE {table} SET n = n + 1 WHERE id IN ({i % 500 + 1}, {i % 500 + 501})")

        async def read(i: int) -> None:
            await conn.fetch(f"SELECT id, n FROM {table} WHERE id = $1", i % 1000 + 1)

        return {"write 1 row": write1, "write 1 row, text": write1_text, "write 2 rows": write2, "read": read}

    async def pwrite1(i: int) -> None:
        await conn.execute(f"UPDATE {table} SET n = n + 1 WHERE id = %s", (i % 500 + 1,))

    async def pwrite2(i: int) -> None:
        await conn.execute(f"UPDATE {table} SET n = n + 1 WHERE id IN (%s, %s)", (i % 500 + 1, i % 500 + 501))

    async def pread(i: int) -> None:
        await (await conn.execute(f"SELECT id, n FROM {table} WHERE id = %s", (i % 1000 + 1,))).fetchall()

    return {"write 1 row": pwrite1, "write 2 rows": pwrite2, "read": pread}


async def main(rounds: int) -> int:
    import psycopg

    table = f"bench_effect_async_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(DSN, autocommit=True)
    admin.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)")
    admin.execute(f"INSERT INTO {table} (id) SELECT g FROM generate_series(1, 1000) g")
    try:
        for driver in ("asyncpg", "psycopg-async"):
            raw = await _connect(driver)
            gov_raw = await _connect(driver)
            gov = governed_db.wrap(gov_raw, identity=AGENT, environment="production", audit=False)
            raw_cases, gov_cases = _cases(raw, driver, table), _cases(gov, driver, table)
            for name in raw_cases:
                raw_t: list[float] = []
                gov_t: list[float] = []
                for _ in range(rounds):  # interleaved: raw, governed, raw, governed, ...
                    raw_t.append(await _per_op(raw_cases[name]))
                    gov_t.append(await _per_op(gov_cases[name]))
                r, g = statistics.median(raw_t), statistics.median(gov_t)
                print(f"{driver:13} {name:17} raw {r * 1e6:8.1f} us   governed {g * 1e6:8.1f} us   "
                      f"ratio {g / r:5.2f}x")  # fmt: skip
            await raw.close()
            await gov_raw.close()
    finally:
        admin.execute(f"DROP TABLE IF EXISTS {table}")
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)))
