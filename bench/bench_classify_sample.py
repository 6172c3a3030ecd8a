"""Cost of classifying a table on first use: the sample (decisions 0294, 0295), by database and table size.

    python bench/bench_classify_sample.py [--rounds 5] [--sizes 1000,100000,1000000] [--dbs sqlite,duckdb,postgres,mysql]

For each database and size, a table ``(id, status, note, email, city)`` — a few-valued status, varied notes,
e-mail addresses, three cities — is read by a fresh governed connection (audit off): the first statement
(``SELECT id FROM t WHERE id = 1``) classifies it; the same statement again is the hot path. Printed: the median
over rounds of (first - hot), which is the classification (catalog reads, the sample and what widens it, the
labelling) in wall time and in this process's CPU time, and, where this tree has ``governed_db.masking.sampling``, the median time spent in its reads
(spread rows and rare values). Run it with ``PYTHONPATH`` on two trees to compare them; the tables are kept
between runs (``--keep``) so both read the same ones.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import governed_db
from governed_db import Identity

DIR = os.path.join(tempfile.gettempdir(), "governed_db_bench_classify")
PG_DSN = os.environ.get("GOVERNED_DB_TEST_PG", "host=127.0.0.1 port=5432 dbname=test user=postgres")
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}


def _rows(n: int) -> list[tuple[Any, ...]]:
    return [
        (i, "closed" if i % 97 == 0 else "active", f"order {i} shipped", f"user{i}@example.com",
         ("Paris", "Lyon", "Rome")[i % 3])
        for i in range(1, n + 1)
    ]


def _connector(db: str, n: int) -> tuple[Callable[[], Any], str]:
    """A function returning a raw connection to a database holding table ``t_<n>`` (made once)."""
    table = f"bench_classify_{n}"
    ddl = f"CREATE TABLE {table} (id int primary key, status {{t}}, note {{t}}, email {{t}}, city {{t}})"
    if db == "sqlite":
        os.makedirs(DIR, exist_ok=True)
        path = os.path.join(DIR, f"s{n}.db")
        if not os.path.exists(path):
            c = sqlite3.connect(path)
            c.execute(ddl.format(t="text"))
            c.executemany(f"INSERT INTO {table} VALUES (?,?,?,?,?)", _rows(n))
            c.commit()
            c.close()
        return (lambda: sqlite3.connect(path)), table
    if db == "duckdb":
        import duckdb

        os.makedirs(DIR, exist_ok=True)
        path = os.path.join(DIR, f"d{n}.duckdb")
        if not os.path.exists(path):
            c = duckdb.connect(path)
            c.execute(ddl.format(t="varchar"))
            c.execute(
                f"INSERT INTO {table} SELECT i, CASE WHEN i % 97 = 0 THEN 'closed' ELSE 'active' END, "
                f"'order ' || i || ' shipped', 'user' || i || '@example.com', "
                f"['Paris', 'Lyon', 'Rome'][i % 3 + 1] FROM range(1, {n + 1}) r(i)"
            )
            c.close()
        return (lambda: duckdb.connect(path)), table
    if db == "postgres":
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as c:
            if c.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,):
                c.execute(ddl.format(t="text"))
                c.execute(
                    f"INSERT INTO {table} SELECT i, CASE WHEN i % 97 = 0 THEN 'closed' ELSE 'active' END, "
                    f"'order ' || i || ' shipped', 'user' || i || '@example.com', "
                    f"(ARRAY['Paris', 'Lyon', 'Rome'])[i % 3 + 1] FROM generate_series(1, {n}) i"
                )
                c.execute(f"ANALYZE {table}")
        return (lambda: psycopg.connect(PG_DSN, autocommit=True)), table
    import pymysql

    c = pymysql.connect(autocommit=True, **MYSQL)  # type: ignore[arg-type]
    with c.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (table,))
        if cur.fetchone()[0] == 0:
            cur.execute(ddl.format(t="varchar(40)"))
            rows = _rows(n)
            for start in range(0, n, 5000):
                cur.executemany(f"INSERT INTO {table} VALUES (%s,%s,%s,%s,%s)", rows[start : start + 5000])
    c.close()
    return (lambda: pymysql.connect(autocommit=True, **MYSQL)), table  # type: ignore[arg-type]


def _widen_timer() -> list[float]:
    """Time spent in the widening reads (spread rows, rare values), when this tree has them."""
    spent: list[float] = []
    try:
        from governed_db.masking import sampling
    except ImportError:
        return spent
    real = sampling.wider

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t)

    sampling.wider = timed  # type: ignore[assignment]
    from governed_db.masking import engine

    engine.sampling.wider = timed  # type: ignore[assignment]
    return spent


def _once(connect: Callable[[], Any], table: str) -> tuple[float, float]:
    """(wall, this process's CPU) time of the classification."""
    gov = governed_db.wrap(connect(), identity=Identity("bench", kind="agent"), environment="production", audit=False)
    try:
        cur = gov.cursor()
        sql = f"SELECT id FROM {table} WHERE id = 1"
        t, c = time.perf_counter(), time.process_time()
        cur.execute(sql)
        cur.fetchall()
        first, first_cpu = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        cur.execute(sql)
        cur.fetchall()
        return first - (time.perf_counter() - t), first_cpu - (time.process_time() - c)
    finally:
        gov.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--dbs", default="sqlite,duckdb,postgres,mysql")
    args = parser.parse_args()
    spent = _widen_timer()
    for db in args.dbs.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            try:
                connect, table = _connector(db, n)
            except Exception as e:  # a server that is not there
                print(f"{db:9} {n:>9}: skipped ({type(e).__name__})")
                continue
            _once(connect, table)  # warm the server's and the OS's caches
            del spent[:]
            times = [_once(connect, table) for _ in range(args.rounds)]
            wall = statistics.median(t for t, _ in times) * 1000
            cpu = statistics.median(c for _, c in times) * 1000
            widen = f"  widening reads {statistics.median(spent) * 1000:7.2f} ms" if spent else ""
            print(f"{db:9} {n:>9}: classification {wall:7.2f} ms (CPU here {cpu:7.2f} ms){widen}", flush=True)


if __name__ == "__main__":
    main()
