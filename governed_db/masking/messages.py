"""Values a database quotes back in its messages (errors, warnings), blanked before they reach the caller."""

from __future__ import annotations

import re

from governed_db.masking.strategies.spans import scrub_text

#: a key's column list as PostgreSQL prints it, expressions included (``Key (lower(ssn))=(...)``)
_PG_KEY_COLUMNS = r"\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)"
_ECHOES = (
    re.compile(
        r"(Key " + _PG_KEY_COLUMNS + r"=\()(.*?)(\)(?: already exists| is not present| is still referenced| conflicts))",
        re.S,
    ),
    # an exclusion constraint's DETAIL quotes the stored row's key too: ``conflicts with existing key (c)=(...)``
    re.compile(r"(existing key " + _PG_KEY_COLUMNS + r"=\()(.*)(\)\.)", re.S),
    # DuckDB: ``Duplicate key "email: ..." violates``, ``because key "c: ..." does not exist`` / ``is still referenced``
    re.compile(r'((?:Duplicate key|because key) ")(.*?)(" (?:violates|does not exist|is still referenced))', re.S),
    re.compile(r"(Failing row contains \()(.*)(\))", re.S),
    re.compile(r"(Duplicate entry ')(.*?)(' for key)", re.S),
    re.compile(r"(Incorrect \w+ value: ')(.*?)(')", re.S),
    re.compile(r"(Data truncated for column '[^']*' at row \d+: ')(.*?)(')", re.S),
    # Python's datetime, building a stored date a driver cannot represent (psycopg2, asyncpg): the year is the value's
    re.compile(r"(year )(-?\d+)( is out of range)"),
    # sqlite3 fetching text that is not UTF-8 (``ssn || CAST(x'ff' AS TEXT)``) quotes the whole cell
    re.compile(r"(Could not decode to UTF-8 column '.*' with text ')(.*)(')", re.S),
    # PostgreSQL's CONTEXT of a lock wait cut short (``while locking tuple (1,2) in relation "t"``, updating,
    # deleting, rechecking, a uniqueness or exclusion check): the page and slot of the row, its ``ctid``, which
    # says how wide the rows before it are (decision 0272)
    re.compile(r"(\b(?:index )?tuple \()(\d+,\d+)(\))"),
)


#: quoted values a database echoes when it cannot convert, cast or parse one (``invalid input syntax for type
#: integer: "Alice Smith"``, DuckDB ``Could not convert string '536-22-8726' to INT32``, ``Token "Alice" is
#: invalid``, MySQL ``Truncated incorrect DOUBLE value: '...'``); the statement's own text (``LINE 1: ...``) is
#: kept. Applied to errors of statements that read masked columns.
_KEYWORDS = (
    r"syntax|convert|cast|value|input|format|invalid|malformed|token|truncated|incorrect|parse|parsing|"
    r"out of range|path|unit|units|relation|regular expression|pattern|not recognized|does not exist|"
    # psycopg's loaders: ``date too large (after year 10K): '12345-03-14'``, ``timestamp too small (before year 1)``
    r"too large|too small"
)
_SECTIONS = r"LINE \d+:|DETAIL:|HINT:|CONTEXT:|QUERY:|WHERE:"
#: a quoted value that runs over several lines (an address, a note: MySQL's ``Truncated incorrect DOUBLE value:
#: '221B Baker Street\nLondon'``), up to a quote that ends the message or comes before the next section of it
#: (``LINE 1:``, ``DETAIL:``...); tried before the one-line form below, which would stop at the first line
_MULTILINE_ECHO = re.compile(
    rf"(?im)^((?!LINE \d+:)[^\n]*?\b(?:{_KEYWORDS})\b[^\"'\n]*?)([\"'])"
    rf"([^\n]*\n(?!{_SECTIONS})(?:(?!\n(?:{_SECTIONS}))[\s\S])*?)\2(?=\s*\Z|\n(?:{_SECTIONS}))"
)
_CONVERSION_ECHOES = (
    re.compile(
        rf"(?im)^((?!LINE \d+:)[^\n]*?\b(?:{_KEYWORDS})\b[^\"'\n]*?)([\"'])([^\n]*)\2"
    ),
    re.compile(r"(?m)^((?:CONTEXT:\s+)?JSON data, line \d+: )(.*)$"),
    # ``::xml`` DETAIL: ``line 1: StartTag: invalid element name`` then the offending text and a caret
    re.compile(r"(?s)((?:DETAIL:\s+)?(?<![A-Z])line \d+: )(.*)$"),
    # DuckDB quotes the operands of an overflow it met (``Overflow in HUGEINT addition: <sum> + 85000``,
    # ``Overflow in multiplication of INT32 (85000 * 25264)!``): values computed from the rows, not the statement
    re.compile(r"(?m)^((?!LINE \d+:).*?\bOverflow in [^\n]*?)(-?\d[\d.e+-]*(?:\s*[-+*/%]\s*-?\d[\d.e+-]*)+)"),
)


def scrub_message(text: str, *, conversions: bool = False) -> str:
    """``text`` without echoed values; ``conversions`` also blanks values quoted by conversion errors."""
    for pattern in _ECHOES:
        text = pattern.sub(lambda m: m.group(1) + "[REDACTED]" + m.group(3), text)
    if conversions:
        text = _MULTILINE_ECHO.sub(lambda m: f"{m.group(1)}{m.group(2)}[REDACTED]{m.group(2)}", text)
        text = _CONVERSION_ECHOES[0].sub(lambda m: f"{m.group(1)}{m.group(2)}[REDACTED]{m.group(2)}", text)
        text = _CONVERSION_ECHOES[1].sub(lambda m: m.group(1) + "[REDACTED]", text)
        text = _CONVERSION_ECHOES[2].sub(lambda m: m.group(1) + "[REDACTED]", text)
        text = _CONVERSION_ECHOES[3].sub(lambda m: m.group(1) + "[REDACTED]", text)
    return scrub_text(text)


#: MySQL/MariaDB's Note 1003 is the statement as the optimizer rewrote it (after ``EXPLAIN EXTENDED``; after any
#: ``EXPLAIN`` on MySQL 8), with the values of every row it read by a key written in as constants: ``select
#: 'Alice Martin' AS `full_name`,'1985-03-02' AS `birth_date` from `t` where 1`` for ``... WHERE id = 1``. It is
#: printed in lower case, after ``/* select#1 */`` markers, where a warning's own text starts with a capital
_REWRITTEN = re.compile(
    r"\A\s*(?:/\*.*?\*/\s*)*(?:\(\s*)*(?:select|with|update|delete|insert|replace|values|table|call|do)\b", re.S
)
#: what the caller sees in its place
REWRITTEN_WITHHELD = "[withheld: the statement as the optimizer rewrote it, with values of rows it read by key]"


def scrub_diagnostic(text: str) -> str:
    """A ``SHOW WARNINGS``/``SHOW ERRORS`` message without the values it quotes: a conversion warning's value is
    blanked, and the optimizer's rewritten statement (Note 1003), made of values the caller never selected, is
    withheld whole (its literals cannot be told from values: a BIT or binary column's bytes are written bare)."""
    if _REWRITTEN.match(text):
        return REWRITTEN_WITHHELD
    return scrub_message(text, conversions=True)


def loggable(exc: BaseException) -> str:
    """``exc`` for a log line or a fault's message: its class and its text with any value the database quoted
    blanked (a catalog read or a sample that failed quotes the stored value it could not convert or decode, and
    the log is read by people without unmask grants)."""
    try:
        text = scrub_message(str(exc), conversions=True)
    except Exception:
        text = "<unprintable>"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = ["REWRITTEN_WITHHELD", "loggable", "scrub_diagnostic", "scrub_message"]
