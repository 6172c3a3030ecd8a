"""Per-statement wall time of the default configuration (audit store on) for one checkout of governed_db.

    python bench/ab_point.py PATH [PATH ...]     # e.g. a clone of the previous commit and this one, in turns

Runs a repeated parameterised point SELECT (sqlite3, 1,000-row table, ``fetchall()``) through ``wrap(conn,
identity=..., environment="production")`` in a fresh process per checkout, alternating the checkouts three times,
and prints each run's median and best of seven rounds of 5,000 statements. For comparing two versions of the code
on a shared machine: compare runs taken in turns, not figures from different hours.
"""

from __future__ import annotations

import subprocess
import sys

_CHILD = r"""
import os, sqlite3, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
import governed_db
raw = sqlite3.connect(":memory:")
raw.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
raw.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"item {i}", i * 1.5) for i in range(1000)])
ident = governed_db.Identity("bench-agent", kind="agent", on_behalf_of="alice")
conn = governed_db.wrap(raw, identity=ident, environment="production",
                        audit=os.path.join(tempfile.mkdtemp(), "a.jsonl"))
cur = conn.cursor()
def run(n):
    for i in range(n):
        cur.execute("SELECT id, name, price FROM items WHERE id = ?", (i % 1000,))
        cur.fetchall()
run(3000)
rounds = []
for _ in range(7):
    t = time.perf_counter()
    run(5000)
    rounds.append((time.perf_counter() - t) / 5000 * 1e6)
rounds.sort()
print(f"{governed_db.__file__}: median {rounds[3]:.2f} us, best {rounds[0]:.2f} us a statement")
"""


def main() -> None:
    paths = sys.argv[1:]
    if not paths:
        raise SystemExit("usage: python bench/ab_point.py PATH [PATH ...] (checkouts of governed_db)")
    for _ in range(3):
        for path in paths:
            subprocess.run([sys.executable, "-c", _CHILD, path], check=True)


if __name__ == "__main__":
    main()
