"""Which columns of a SQLite full-text table a ``MATCH`` reads (decision 0296).

``docs MATCH 'title: foo'`` decides rows by ``title`` alone on an FTS5 table: a column filter restricts every
phrase after it to the columns it names. Only a query string written in the statement is read, with FTS5's grammar
(``col :``, ``{a b} :``, ``- col :``, ``NEAR(...)``, ``( ... )``, ``AND``/``OR``/``NOT``, ``"phrases"``, ``*``,
``^``, ``+``); anything else — a bound query, another module's syntax, a character the scanner does not know —
reads every column, as before. FTS3/FTS4 differ: ``title MATCH 'owner_email:alice'`` searches ``owner_email``
(their column prefix overrides the left operand), so there a ``MATCH`` on any column reads every column.
"""

from __future__ import annotations

import re

#: FTS5's bareword characters: ASCII letters, digits, ``_``, 0x1A and every non-ASCII character
_TOKEN = re.compile(r'\s*(?:([A-Za-z0-9_\x1a\u0080-\U0010ffff]+)|("(?:[^"]|"")*")|([{}():\-+*^,]))')
_OPERATORS = frozenset({"AND", "OR", "NOT"})


class _Unread(Exception):
    """The query is not one this reader can vouch for."""


def fts5_columns(query: str, columns: list[str], scope: frozenset[str] | None) -> frozenset[str] | None:
    """The columns (lower-cased, among ``columns``) whose text decides whether a row matches the FTS5 ``query``
    given as ``left MATCH query`` (``scope``: the left operand's column, or ``None`` for the table); ``None`` when
    the query cannot be read (then it may read any column)."""
    every = frozenset(c.lower() for c in columns)
    tokens: list[tuple[str, str]] = []
    pos, n = 0, len(query)
    while pos < n:
        if query[pos:].strip() == "":
            break
        found = _TOKEN.match(query, pos)
        if found is None or found.end() == pos:
            return None
        word, quoted, punct = found.groups()
        if word:
            tokens.append(("word", word))
        elif quoted:
            tokens.append(("string", quoted[1:-1].replace('""', '"')))
        else:
            tokens.append(("p", punct))
        pos = found.end()
    reads: set[str] = set()
    start = every if scope is None else every & scope
    try:
        end = _sequence(tokens, 0, start, every, reads)
    except (_Unread, IndexError):
        return None
    if end != len(tokens):
        return None
    return frozenset(reads)


def _is(tokens: list[tuple[str, str]], i: int, text: str) -> bool:
    return i < len(tokens) and tokens[i] == ("p", text)


def _sequence(
    tokens: list[tuple[str, str]], i: int, scope: frozenset[str], every: frozenset[str], reads: set[str]
) -> int:
    while i < len(tokens) and not _is(tokens, i, ")"):
        kind, text = tokens[i]
        if kind == "word" and text in _OPERATORS:
            i += 1
            continue
        i = _item(tokens, i, scope, every, reads)
    return i


def _item(tokens: list[tuple[str, str]], i: int, scope: frozenset[str], every: frozenset[str], reads: set[str]) -> int:
    j, negated = i, False
    if _is(tokens, j, "-"):
        negated, j = True, j + 1
    named: list[str] | None = None
    if _is(tokens, j, "{"):
        j += 1
        named = []
        while not _is(tokens, j, "}"):
            kind, text = tokens[j]
            if kind == "p":
                raise _Unread
            named.append(text)
            j += 1
        j += 1
        if not _is(tokens, j, ":"):
            raise _Unread
        j += 1
    elif j + 1 < len(tokens) and tokens[j][0] != "p" and _is(tokens, j + 1, ":"):
        named, j = [tokens[j][1]], j + 2
    if named is None:
        if negated:
            raise _Unread
        return _unit(tokens, i, scope, every, reads)
    listed = frozenset(c.lower() for c in named)
    if not listed <= every:
        raise _Unread  # SQLite refuses an unknown column; nothing to vouch for
    # a filter inside another (or inside the left operand's column) keeps the columns both allow (FTS5 intersects)
    inner = (every - listed if negated else listed) & scope
    return _unit(tokens, j, inner, every, reads)


def _unit(tokens: list[tuple[str, str]], i: int, scope: frozenset[str], every: frozenset[str], reads: set[str]) -> int:
    if _is(tokens, i, "("):
        i = _sequence(tokens, i + 1, scope, every, reads)
        if not _is(tokens, i, ")"):
            raise _Unread
        return i + 1
    if tokens[i] == ("word", "NEAR") and _is(tokens, i + 1, "("):
        i += 2
        while not _is(tokens, i, ")"):
            kind, text = tokens[i]
            if kind == "p" and text not in "+*,":
                raise _Unread
            i += 1
        reads.update(scope)
        return i + 1
    if _is(tokens, i, "^"):
        i += 1
    while True:
        if tokens[i][0] == "p":
            raise _Unread
        i += 1
        if _is(tokens, i, "*"):
            i += 1
        if not _is(tokens, i, "+"):
            break
        i += 1
    reads.update(scope)
    return i


__all__ = ["fts5_columns"]
