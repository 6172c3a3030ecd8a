"""Free-text detection throughput: cells per second through ``detect.find_spans`` (not a timed test).

    python bench/bench_detect.py [--cells 20000]
    PYTHONPATH=/path/to/other/tree python bench/bench_detect.py    # the same corpus on another version

The corpus is deterministic: support-ticket-like sentences, 10 % holding an e-mail address, 5 % a phone
number, 5 % a key or a password, 5 % version strings and OIDs, the rest plain prose. Prints the median of 5
passes; compare versions in one interleaved run (the machine is shared).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time


def corpus(n: int) -> list[str]:
    r = random.Random(7)
    out = []
    for i in range(n):
        x = r.random()
        if x < 0.10:
            out.append(f"customer {i} asked us to reply to user{i}@example.com about the refund")
        elif x < 0.15:
            out.append(f"call back on +1 415-555-{r.randint(1000, 9999)} after lunch, ticket {i}")
        elif x < 0.20:
            out.append(
                r.choice((f"password: hunter{i % 10}", f"rotated AKIA{'Q' * 12}{i % 10000:04d} today"))
            )
        elif x < 0.25:
            out.append(
                f"firmware {r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)} crashed"
            )
        else:
            out.append(f"the parcel for order {i} was late because the courier lost it at the depot")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=20000)
    args = parser.parse_args()
    from governed_db.masking import detect

    cells = corpus(args.cells)
    detect.find_spans("warm up alice@example.com +1 415-555-2671")
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        for c in cells:
            detect.find_spans(c)
        rates.append(len(cells) / (time.perf_counter() - start))
    print(f"{statistics.median(rates):,.0f} cells/s (median of 5 passes over {len(cells):,} cells)")


if __name__ == "__main__":
    main()
