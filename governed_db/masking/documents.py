"""Documents a column may hold — PostgreSQL ``hstore`` text, rows a driver decoded into objects — read as
named fields (shared by classification and the ``spans`` strategy; no other governed_db import)."""

from __future__ import annotations

import re
from typing import Any

#: one ``"key"=>"value"`` (or ``"key"=>NULL``) pair of hstore's output; quotes and backslashes inside are escaped
HSTORE_PAIR = re.compile(r'"((?:[^"\\]|\\.)*)"=>(?:"((?:[^"\\]|\\.)*)"|NULL)', re.DOTALL)
UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


def hstore_pairs(text: str) -> list[re.Match[str]] | None:
    """The pairs of ``text`` when the whole of it is PostgreSQL's ``hstore`` output (pairs joined by ``, ``), else
    ``None``. psycopg and psycopg2 return an hstore as this text unless an hstore loader is registered."""
    if not text.startswith('"') or "=>" not in text:
        return None
    pairs: list[re.Match[str]] = []
    pos = 0
    while True:
        m = HSTORE_PAIR.match(text, pos)
        if m is None:
            return None
        pairs.append(m)
        pos = m.end()
        if pos == len(text):
            return pairs
        if not text.startswith(", ", pos):
            return None
        pos += 2


def record_items(value: Any) -> dict[str, Any] | None:
    """The fields of a row a driver decoded into an object (asyncpg ``Record``, a named tuple), by name, or
    ``None`` when it has no names."""
    as_dict = getattr(value, "_asdict", None)
    if callable(as_dict):
        return dict(as_dict())
    items = getattr(value, "items", None)
    if callable(items) and not isinstance(value, (str, bytes, dict)):
        try:
            return {str(k): v for k, v in items()}
        except (TypeError, ValueError):
            return None
    return None
