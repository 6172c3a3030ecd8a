"""``partial``: keep the first/last few characters, mask the rest.

Separators (spaces, dashes, dots) keep their place so the shape survives
(``***-**-6789``, ``**** **** **** 1111``). E-mail addresses are special:
the local part always becomes its first character and exactly three stars
(hiding its length), and the domain is kept (``keep_domain``, default) or
masked too (``hide_domain``). At least half of the characters are always
masked, whatever ``keep_first``/``keep_last`` ask for, so a short value is
never shown whole.
"""

from __future__ import annotations

import re
import string
from typing import Any

from governed_db.errors import ConfigurationError
from governed_db.masking.strategies import Masker, StrategyContext

NAME = "partial"
SUMMARY = (
    "Keep the first/last N characters and mask the rest, separators kept; e-mail as j***@domain "
    "(or j***@*** with email: hide_domain)."
)


_ASCII_ALNUM = string.ascii_letters + string.digits
_TABLES: dict[str, dict[int, str]] = {}


def _table(char: str) -> dict[int, str]:
    table = _TABLES.get(char)
    if table is None:
        table = _TABLES[char] = {ord(c): char for c in _ASCII_ALNUM}
    return table


def mask_text(text: str, keep_first: int, keep_last: int, char: str) -> str:
    # str.translate over ASCII alnum is the fast path (this runs once per masked cell)
    if text.isascii():
        masked = text.translate(_table(char))
        n = masked.count(char) - text.count(char)
    else:
        positions = [i for i, c in enumerate(text) if c.isalnum()]
        hidden_all = set(positions)
        masked = "".join(char if i in hidden_all else c for i, c in enumerate(text))
        n = len(positions)
    if n == 0:
        return char * 3
    # never reveal more than half of the significant characters
    budget = n // 2
    first = min(keep_first, budget)
    last = min(keep_last, budget - first)
    if not first and not last:
        return masked
    head = _after_alnum(text, first) if first else 0
    tail = len(text) - _after_alnum(text[::-1], last) if last else len(text)
    return text[:head] + masked[head:tail] + text[tail:]


def _after_alnum(text: str, count: int) -> int:
    """Index just past the ``count``-th alphanumeric character of ``text``."""
    if text[:count].isalnum():
        return count
    seen = 0
    for i, c in enumerate(text):
        if c.isalnum():
            seen += 1
            if seen == count:
                return i + 1
    return len(text)


def mask_email(text: str, keep_domain: bool, char: str) -> str:
    at = text.rfind("@")
    if at <= 0:
        return mask_text(text, 0, 0, char)
    stars = char * 3
    return text[0] + stars + (text[at:] if keep_domain else "@" + stars)


def build(label: str, options: dict[str, Any], ctx: StrategyContext) -> Masker:
    keep_first = int(options.get("keep_first", 0))
    keep_last = int(options.get("keep_last", 0))
    char = str(options.get("char", "*"))[:1] or "*"
    email_mode = options.get("email")
    if email_mode is None and label == "EMAIL":
        email_mode = "keep_domain"
    if email_mode not in (None, "keep_domain", "hide_domain"):
        raise ConfigurationError(f"partial: email must be 'keep_domain' or 'hide_domain', got {email_mode!r}")
    if keep_first < 0 or keep_last < 0:
        raise ConfigurationError("partial: keep_first and keep_last must be >= 0")
    keep_domain = email_mode == "keep_domain"

    if email_mode is not None:

        def partial_email(value: Any) -> Any:
            if value is None:
                return None
            text = value if value.__class__ is str else _as_text(value)
            return mask_email(text, keep_domain, char)

        # the same as mask_email for text with an "@" after the first character, inlined by the row function
        domain = "{v}[{x}:]" if keep_domain else "'@' + {s}"
        partial_email.inline = (  # type: ignore[attr-defined]
            "({v}[0] + {s} + " + domain + " if ({v} := {r}).__class__ is str and ({x} := {v}.rfind('@')) > 0 "
            "else {m}({v}))",
            {"s": char * 3},
        )
        return partial_email

    table = _table(char)
    tail_only = keep_last > 0 and keep_first == 0

    def partial(value: Any) -> Any:
        if value is None:
            return None
        text = value if value.__class__ is str else _as_text(value)
        if tail_only and text.isascii():
            # fast path (SSNs, cards, phones): the last N characters are alphanumeric and at most half
            tail = text[-keep_last:]
            masked = text.translate(table)
            if tail.isalnum() and 2 * keep_last <= masked.count(char) - text.count(char):
                return masked[:-keep_last] + tail
        return mask_text(text, keep_first, keep_last, char)

    return partial


def _as_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


_EMAIL_OUTPUT = re.compile(r"[^@\s*]?\*{3}@(?:\*{3}|[^@\s]+)")


def is_output(value: str) -> bool:
    if "***" not in value:  # both shapes below contain it; most values are checked by this alone
        return False
    if _EMAIL_OUTPUT.fullmatch(value):
        return True
    stars = value.count("*")
    if stars < 3:
        return False
    significant = sum(1 for c in value if c.isalnum() or c == "*")
    return stars * 2 >= significant
