"""Search over a large audit store: build a store of N records, index it, time the queries.

    python bench/bench_audit_search.py [N]        (default 1,000,000 records; the store is kept in
                                                  $BENCH_DIR or a temporary directory)

Prints the time to write the store, to build the index (once; later updates read only what was appended),
and for each query both the library call and the `governed-db audit` command (a fresh process: Python start
and imports included; bytecode compiled once, as an install does). Each query runs three times: the best
and worst wall time, and the CPU time of the best run (what load changes least). Run it on a quiet machine.
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from governed_db.audit import AuditStore
from governed_db.audit.index import open_index
from governed_db.audit.search import Query, search, tail, who_touched

SUBJECTS = [f"user{i}" for i in range(2000)] + ["report-bot"] * 50
TABLES = ["users", "orders", "payments", "events", "sessions"]


def build(path: Path, n: int) -> float:
    rnd = random.Random(1)
    store = AuditStore(path, fsync_interval=None, checkpoint_interval=None, idle_close=None, rotate_bytes=None)
    started = time.perf_counter()
    t0 = time.time_ns() - n * 1_000_000
    i = 0
    while store.appended < n:
        table = rnd.choice(TABLES)
        attrs: dict[str, Any] = {
            "db.system.name": "postgresql", "db.operation.name": "SELECT",
            "db.query.text": f"SELECT id, email FROM {table} WHERE id = $1", "db.collection.name": table,
            "governed_db.identity.subject": rnd.choice(SUBJECTS), "governed_db.identity.kind": "agent",
            "governed_db.environment": "production", "governed_db.decision": "allow", "governed_db.tables": [table],
        }
        when = t0 + i * 1_000_000
        seq = store.append({"v": 2, "type": "intent", "time": when, "name": f"SELECT {table}",
                            "span_id": f"{i:016x}", "attrs": attrs})
        store.append({"v": 2, "type": "outcome", "intent": seq, "end": when + 500, "status": "UNSET",
                      "attrs": {"governed_db.masked_columns": ["email"]} if table == "users" else {}})
        i += 1
    store.close()
    return time.perf_counter() - started


ROUNDS = 3


def timed(label: str, fn: Any) -> None:
    """Best and worst wall time of a few rounds, and the CPU time of the best (this process and its children:
    the figure a loaded machine changes least)."""
    walls, cpus = [], []
    for _ in range(ROUNDS):
        cpu = _cpu()
        started = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - started)
        cpus.append(_cpu() - cpu)
    best = walls.index(min(walls))
    print(f"  {label:<48} {min(walls):7.3f}-{max(walls):.3f} s wall, {cpus[best]:.3f} s CPU   ({out})")


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


#: the command as installed: pip compiles bytecode at install, so a run does not compile the package's source
#: (PYTHONDONTWRITEBYTECODE would make every run do that); the cache lives next to the bench store
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def cli(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", "from governed_db.cli import main; main()", "audit", *args],
                          capture_output=True, text=True, env=_ENV)
    return f"exit {proc.returncode}, {len(proc.stdout.splitlines())} lines"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    base = Path(os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="bench-audit-search-"))
    path = base / "audit.jsonl"
    if not path.exists():
        print(f"writing {n} records to {path} ...")
        print(f"  written in {build(path, n):.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
    started = time.perf_counter()
    idx = open_index(path)
    total = idx.statements()
    idx.close()
    print(f"index: {total} statements, built/updated in {time.perf_counter() - started:.1f} s")
    timed("index update with nothing new", lambda: (open_index(path).close(), "no-op")[1])
    print("library:")
    timed("search --identity user7", lambda: len(list(search(path, Query(identity="user7")))))
    timed("search --identity report-bot --limit 50", lambda: len(list(search(path, Query(identity="report-bot"),
                                                                            limit=50))))
    timed("search --table payments --limit 100", lambda: len(list(search(path, Query(table="payments"), limit=100))))
    timed("tail -n 20", lambda: len(tail(path, 20)))
    timed("who-touched users.email", lambda: len(who_touched(path, "users.email")))
    timed("who-touched payments", lambda: len(who_touched(path, "payments")))
    print("command (fresh process, imports included):")
    store = str(path)
    _ENV.setdefault("PYTHONPYCACHEPREFIX", str(base / "pycache"))
    cli("tail", "--store", store, "-n", "1")  # fills the bytecode cache, as an install does
    timed("governed-db audit search --identity user7", lambda: cli("search", "--store", store, "--identity", "user7",
                                                                     "--format", "jsonl"))
    timed("governed-db audit who-touched users.email", lambda: cli("who-touched", "users.email", "--store", store))
    timed("governed-db audit who-touched payments", lambda: cli("who-touched", "payments", "--store", store))
    timed("governed-db audit tail -n 20", lambda: cli("tail", "--store", store, "-n", "20", "--format", "json"))


if __name__ == "__main__":
    main()
