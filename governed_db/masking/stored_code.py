"""Triggers an identity defines: code that runs later on the raw rows, out of the sight of masking.

A SQLite trigger (``CREATE TEMP TRIGGER ... ON customers BEGIN INSERT INTO log VALUES (new.ssn); END``) runs with
the values of the rows its statement fires on, and of any table its body reads, before any masking: it copies
them into a table of the caller's own, decides by them in ``WHEN`` or ``RAISE()``, and writes by them. Where the
policy lets an identity define one (``stored-code`` warns outside production), a trigger that names a table with
columns masked for that identity is refused (decision 0311). SQLite's parser cannot be asked which tables a
trigger reads (sqlglot keeps it as a command), so every name in its text that is a table or view is checked:
a word that happens to name one only ever refuses more.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sqlglot import TokenType
from sqlglot.dialects.dialect import Dialect

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
#: tokens that may name a table: bare and quoted names, and SQLite's strings where its grammar wants a name
_NAMES = frozenset({TokenType.VAR, TokenType.IDENTIFIER, TokenType.STRING})


def defines_trigger(stmt: Any) -> bool:
    """Is ``stmt`` a ``CREATE [TEMP] TRIGGER``?"""
    return "stored-code" in stmt.flags and "TRIGGER" in str(stmt.operation).upper()


def named_relations(text: str, dialect: str) -> list[str] | None:
    """The words of ``text`` that may name a table or view (lower case, once each); ``None`` when the text
    cannot be tokenized (then nothing can be said of it)."""
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(text)
    except Exception:
        return None
    return sorted(set(_words(tokens)))


def _words(tokens: Any) -> Iterator[str]:
    for token in tokens:
        word = str(token.text)
        if token.token_type in _NAMES or _WORD.fullmatch(word):
            yield word.lower()
