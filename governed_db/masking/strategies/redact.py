"""``redact``: replace the value with a constant of the same type.

Text becomes ``[LABEL]`` (so a reader still knows what was there), numbers
become 0, dates the epoch, bytes empty, JSON an object saying it was
redacted. Nothing of the original survives, not even its length.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal
from typing import Any

from governed_db.masking.strategies import Masker, StrategyContext

NAME = "redact"
SUMMARY = "Replace the value with a type-aware constant: text -> [LABEL], numbers -> 0, dates -> 1970-01-01."

_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*\]")
_EPOCH_DATE = _dt.date(1970, 1, 1)
_EPOCH = _dt.datetime(1970, 1, 1)


def constant_for(value: Any, token: str) -> Any:
    if isinstance(value, str):
        return token
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0
    if isinstance(value, float):
        return 0.0
    if isinstance(value, Decimal):
        return Decimal(0)
    if isinstance(value, _dt.datetime):
        return _EPOCH.replace(tzinfo=value.tzinfo)
    if isinstance(value, _dt.date):
        return _EPOCH_DATE
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b""
    if isinstance(value, dict):
        return {"redacted": token}
    if isinstance(value, (list, tuple)):
        return [token]
    return token


def build(label: str, options: dict[str, Any], ctx: StrategyContext) -> Masker:
    token = str(options.get("text") or f"[{label}]")

    def redact(value: Any) -> Any:
        if value is None:
            return None
        if value.__class__ is str:  # the common case, without the isinstance ladder
            return token
        return constant_for(value, token)

    # lets the per-row function inline the constant for text cells instead of calling this
    redact.text_constant = token  # type: ignore[attr-defined]
    return redact


def is_output(value: str) -> bool:
    return _PLACEHOLDER.fullmatch(value) is not None
