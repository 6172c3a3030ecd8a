"""``redact``: replace the value with a constant of the same type.

Text becomes ``[LABEL]`` (so a reader still knows what was there), numbers
become 0, dates the epoch, bytes empty, JSON an object saying it was
redacted. Nothing of the original survives, not even its length. For date
labels (``DATE_OF_BIRTH``), text that is an ISO date stays one — the epoch in
the same shape (``1970-01-01``, ``1970-01-01 00:00:00``) — so a SQLite date
column still loads as a date.
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


#: an ISO date or date-time held as text (SQLite's way of storing dates)
ISO_DATE_TEXT = re.compile(
    r"\s*\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\s*"
)
_DIGIT = re.compile(r"\d")


def epoch_text(value: str) -> str:
    """``value`` (an ISO date as text) as the epoch in the same shape: ``1984-05-12 10:11`` -> ``1970-01-01 00:00``."""
    stripped = value.strip()
    return "1970-01-01" + _DIGIT.sub("0", stripped[10:])


def is_date_label(label: str) -> bool:
    return "DATE" in label or label in ("DOB", "BIRTHDAY")


def build(label: str, options: dict[str, Any], ctx: StrategyContext) -> Masker:
    token = str(options.get("text") or f"[{label}]")
    if options.get("nulls"):
        # ``nulls: true``: NULL is masked too, for a value whose NULL-ness the masking of its source hides (a view
        # column reading a JSON document's member, decision 0302)
        return lambda value: token
    if is_date_label(label) and "text" not in options:

        def redact_date(value: Any) -> Any:
            if value is None:
                return None
            if value.__class__ is str:
                return epoch_text(value) if ISO_DATE_TEXT.fullmatch(value) else token
            return constant_for(value, token)

        return redact_date

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
