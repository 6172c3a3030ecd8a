"""``format_preserving``: random replacement with the same length and character classes.

Each digit becomes a random digit, each letter a random letter of the same
case, everything else (``@ . - space``) stays. The result looks real to a
parser or a test fixture but carries nothing of the original. With
``deterministic: true`` the replacement is derived from the value with the
connection's key (stable within the key's lifetime) instead of fresh
randomness.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import string
from typing import Any

from governed_db.masking.strategies import Masker, StrategyContext

NAME = "format_preserving"
SUMMARY = "Random replacement keeping length and character classes (digits, upper, lower); separators kept."

_DIGITS = string.digits
_UPPER = string.ascii_uppercase
_LOWER = string.ascii_lowercase


def _replace(text: str, rng: random.Random) -> str:
    out = []
    for c in text:
        if c.isdigit():
            out.append(rng.choice(_DIGITS))
        elif c.isalpha():
            out.append(rng.choice(_UPPER) if c.isupper() else rng.choice(_LOWER))
        else:
            out.append(c)
    return "".join(out)


def build(label: str, options: dict[str, Any], ctx: StrategyContext) -> Masker:
    deterministic = bool(options.get("deterministic", False))
    system = random.SystemRandom()
    key = ctx.key

    def format_preserving(value: Any) -> Any:
        if value is None:
            return None
        if deterministic:
            seed = hmac.new(key, b"fpe\x00" + str(value).encode(), hashlib.sha256).digest()
            rng: random.Random = random.Random(seed)
        else:
            rng = system
        if isinstance(value, bool):
            return rng.random() < 0.5
        if isinstance(value, int):
            text = _replace(str(abs(value)), rng)
            # keep the digit count: a leading zero would shorten the number
            text = str(rng.randint(1, 9)) + text[1:] if len(text) > 1 else text
            return int(text) * (-1 if value < 0 else 1)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(rng.getrandbits(8) for _ in range(len(bytes(value))))
        return _replace(str(value), rng)

    return format_preserving
