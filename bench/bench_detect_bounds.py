"""Detection time against the value's size (decision 0434): digit-heavy values ten times longer should take about
ten times as long (the old coverage check was quadratic in the phones found), and a bounded multiple of prose.

    python bench/bench_detect_bounds.py

Prints, for 1 MB of digits and punctuation and a 100 kB array literal of phone numbers: seconds for the value, for
a tenth of it and for as much prose, and the two ratios (decision 0434 measured 6.6x and 23x for the array).
"""

from __future__ import annotations

import random
import time

from governed_db.masking import detect


def _digits(n: int) -> str:
    rnd = random.Random(434)
    return "".join(rnd.choice("0123456789-.,() /+") for _ in range(n))


_AREAS = (212, 303, 415, 503, 617, 646, 702, 808)


def _phone_array(n: int) -> str:
    rnd = random.Random(434)
    values: list[str] = []
    size = 2
    while size < n:
        values.append(f'"+1 {rnd.choice(_AREAS)}-555-{rnd.randint(100, 199):04d}"')  # 555-0100..0199: fictional
        size += len(values[-1]) + 1
    return "{" + ",".join(values) + "}"


def _seconds(text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        detect.find_spans(text)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    detect.find_spans("+1 415-555-0142")  # phonenumbers' import and metadata: not part of the measure
    for name, make, size in (("1MB digits and punctuation", _digits, 1_000_000),
                             ("100kB array of phones", _phone_array, 100_000)):  # fmt: skip
        small, big = _seconds(make(size // 10)), _seconds(make(size))
        prose = _seconds(("lorem ipsum dolor sit amet " * (size // 27 + 1))[:size])
        print(f"{name}: {big:.3f}s; a tenth: {small:.3f}s ({big / small:.1f}x); as much prose: {prose:.4f}s "
              f"({big / prose:.0f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
