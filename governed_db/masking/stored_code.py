"""Triggers an identity defines: code that runs later on the raw rows, out of the sight of masking.

A SQLite trigger (``CREATE TEMP TRIGGER ... ON customers BEGIN INSERT INTO log VALUES (new.ssn); END``) runs with
the values of the rows its statement fires on, and of any table its body reads, before any masking: it copies
them into a table of the caller's own, decides by them in ``WHEN`` or ``RAISE()``, and writes by them. Where the
policy lets an identity define one (``stored-code`` warns outside production), a trigger that names a table with
columns masked for that identity is refused (decision 0311). SQLite's parser cannot be asked which tables a
trigger reads (sqlglot keeps it as a command), so every name in its text that is a table or view is checked:
a word that happens to name one only ever refuses more.

The same holds of every statement that creates stored code on the server databases (decision 0319): a
PostgreSQL ``CREATE TRIGGER ... ON customers EXECUTE FUNCTION f()`` whose function inserts ``NEW.ssn`` into the
caller's table, a ``CREATE FUNCTION`` or ``CREATE PROCEDURE`` whose body reads ``customers``, a ``CREATE RULE ...
ON UPDATE TO customers DO ALSO INSERT ... (new.ssn)``, a MariaDB ``CREATE TRIGGER``, ``PROCEDURE``, ``FUNCTION`` or
``EVENT``. Bodies are often strings (``AS $$ ... $$``, ``AS '...'``), so the words inside every string count too,
and a body that builds statements at run time (plpgsql ``EXECUTE``, MySQL ``PREPARE``, ``query_to_xml``) names
tables nobody can read from its text: it is judged as naming an unknown table (refused when masking holds).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sqlglot import TokenType
from sqlglot.dialects.dialect import Dialect

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_QUALIFIED = re.compile(r"[\"`]?([A-Za-z_][A-Za-z0-9_$]*)[\"`]?\s*\.\s*[\"`]?([A-Za-z_][A-Za-z0-9_$]*)[\"`]?")
#: tokens that may name a table: bare and quoted names, and SQLite's strings where its grammar wants a name
_NAMES = frozenset({TokenType.VAR, TokenType.IDENTIFIER, TokenType.STRING})
#: string tokens whose text may be a body of code (dollar-quoted, national, raw...)
_STRINGS = frozenset(
    t for t in (getattr(TokenType, n, None) for n in ("STRING", "HEREDOC_STRING", "NATIONAL_STRING", "RAW_STRING"))
    if t is not None
)


#: words of a body that runs statements built at run time: plpgsql ``EXECUTE``, MySQL ``PREPARE``/``EXECUTE``, and
#: PostgreSQL's functions that run a query given as text (``CREATE TRIGGER ... EXECUTE FUNCTION f()`` is not one)
_DYNAMIC = re.compile(
    r"\b(?:EXECUTE(?!\s+(?:FUNCTION|PROCEDURE)\b)|PREPARE|query_to_xml\w*|query_to_json\w*|dblink\w*|"
    r"table_to_xml\w*|cursor_to_xml\w*|xpath_table|crosstab\w*|ts_stat|database_to_xml\w*|schema_to_xml\w*)\b",
    re.IGNORECASE,
)


def defines_stored_code(stmt: Any) -> bool:
    """Is ``stmt`` a statement that defines code the database runs later (a trigger, function, procedure, rule,
    event...)?"""
    return "stored-code" in stmt.flags  # (``ALTER EVENT ... DO`` included: it gives the event a new body)


def defines_trigger(stmt: Any) -> bool:
    """Is ``stmt`` a ``CREATE [TEMP] TRIGGER``?"""
    return "stored-code" in stmt.flags and "TRIGGER" in str(stmt.operation).upper()


def runs_built_statements(text: str) -> bool:
    """Does the stored code ``text`` run statements it builds at run time (whose tables its text need not name)?"""
    return _DYNAMIC.search(text) is not None


def named_relations(text: str, dialect: str) -> list[str] | None:
    """The words of ``text`` that may name a table or view (lower case, once each); ``None`` when the text
    cannot be tokenized (then nothing can be said of it)."""
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(text)
    except Exception:
        return None
    words = set(_words(tokens))
    for variant in _spellings(text):
        # every word of the text, read as PostgreSQL's escapes would spell it (a body is a string whose own
        # strings and identifiers may be escaped: ``U&"rt\\005fc"``, ``E'rt\\137c'``), and each qualified name
        # (``other.customers``, quoted or not), whose table is looked up by its schema too
        words.update(w.lower() for w in _WORD.findall(variant))
        words.update(f"{a}.{b}".lower() for a, b in _QUALIFIED.findall(variant))
    return sorted(words)


def spellings(text: str) -> list[str]:
    """``text`` as written and as PostgreSQL's escapes would spell it (see :func:`_spellings`)."""
    return list(_spellings(text))


def _spellings(text: str) -> Iterator[str]:
    """``text`` as it is, with E-string escapes (``\\x5f``, ``\\137``, ``\\u005f``) decoded, and with Unicode escapes
    (``\\005f``, ``\\+00005f``, or those of each ``UESCAPE 'c'`` character) decoded: more words only, never fewer."""
    for form in (text, _E_ESCAPE.sub(_e_char, text), text.replace("\\\\", "\\")):
        yield form
        for esc in {"\\", *_UESCAPE.findall(form)}:
            pattern = re.escape(esc) + r"(?:\+([0-9A-Fa-f]{6})|([0-9A-Fa-f]{4}))"
            yield re.sub(pattern, lambda m: _char(int(m.group(1) or m.group(2), 16)), form)


_E_ESCAPE = re.compile(r"\\(?:x([0-9A-Fa-f]{1,2})|([0-7]{1,3})|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8}))")
_UESCAPE = re.compile(r"UESCAPE\s*'(.)'", re.IGNORECASE)


def _e_char(m: re.Match[str]) -> str:
    hexa, octal, u4, u8 = m.groups()
    return _char(int(hexa, 16) if hexa else int(octal, 8) if octal else int(u4 or u8, 16))


def _char(code: int) -> str:
    return chr(code) if 0 < code < 0x110000 else " "


def _words(tokens: Any) -> Iterator[str]:
    for token in tokens:
        word = str(token.text)
        if token.token_type in _NAMES or _WORD.fullmatch(word):
            yield word.lower()
        if token.token_type in _STRINGS or token.token_type in _NAMES:
            # a body given as a string (``AS $$ ... $$``, ``AS '...'``): the names inside it count as well
            yield from (w.lower() for w in _WORD.findall(word))
