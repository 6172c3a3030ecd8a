"""``bucket``: numeric bucketing (``size``) or multiplicative noise (``noise``).

``size: 10`` maps 37 to 30 (the lower bound of its bucket) so ranges and
histograms still work; ``noise: 0.05`` multiplies by a random factor in
[0.95, 1.05] so totals stay roughly right but no single value is exact.
Non-numbers are redacted.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

from governed_db.errors import ConfigurationError
from governed_db.masking.strategies import Masker, StrategyContext
from governed_db.masking.strategies.redact import constant_for

NAME = "bucket"
SUMMARY = "Numeric bucketing (size: 10 -> 37 becomes 30) or noise (noise: 0.05 -> within +/-5%)."


def _decimals(step: float) -> int:
    text = repr(step)
    if "e-" in text:
        return int(text.split("e-")[1]) + max(0, len(text.split("e")[0].split(".")[-1]) if "." in text else 0)
    return len(text.split(".")[1]) if "." in text else 0


def build(label: str, options: dict[str, Any], ctx: StrategyContext) -> Masker:
    size = options.get("size")
    noise = options.get("noise")
    if size is None and noise is None:
        size = 10
    if size is not None and float(size) <= 0:
        raise ConfigurationError("bucket: size must be > 0")
    if noise is not None and not 0 < float(noise) < 1:
        raise ConfigurationError("bucket: noise must be between 0 and 1 (a fraction)")
    rng = random.SystemRandom()
    token = f"[{label}]"

    def bucket(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            try:
                number = float(str(value))
            except ValueError:
                return constant_for(value, token)
        else:
            number = float(value)
        if math.isnan(number) or math.isinf(number):
            return value
        if size is not None:
            step = float(size)
            # a fractional size (0.1 for coordinates) is rounded to its own decimals: 48.8566 -> 48.8, not
            # 48.800000000000004, and 48.8 stays 48.8 (48.8 / 0.1 is 487.99999999999994 in binary)
            out = math.floor(round(number / step, 9)) * step
            if not step.is_integer():
                out = round(out, _decimals(step))
        else:
            spread = float(noise or 0)
            out = number * (1 + rng.uniform(-spread, spread))
        if isinstance(value, int) and not isinstance(value, bool):
            return int(out) if size is not None else round(out)
        if isinstance(value, Decimal):
            return Decimal(str(out))
        if isinstance(value, float):
            return out
        return str(int(out)) if size is not None and float(size).is_integer() else str(out)

    return bucket
