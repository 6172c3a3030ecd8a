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
)


#: quoted values a database echoes when it cannot convert, cast or parse one (``invalid input syntax for type
#: integer: "Alice Smith"``, DuckDB ``Could not convert string '536-22-8726' to INT32``, ``Token "Alice" is
#: invalid``, MySQL ``Truncated incorrect DOUBLE value: '...'``); the statement's own text (``LINE 1: ...``) is
#: kept. Applied to errors of statements that read masked columns.
_CONVERSION_ECHOES = (
    re.compile(
        r"(?im)^((?!LINE \d+:)[^\n]*?\b(?:syntax|convert|cast|value|input|format|invalid|malformed|token|"
        r"truncated|incorrect|parse|parsing|out of range|path|unit|units|relation|regular expression|"
        r"pattern|not recognized|does not exist)\b[^\"'\n]*?)([\"'])([^\n]*)\2"
    ),
    re.compile(r"(?m)^((?:CONTEXT:\s+)?JSON data, line \d+: )(.*)$"),
    # ``::xml`` DETAIL: ``line 1: StartTag: invalid element name`` then the offending text and a caret
    re.compile(r"(?s)((?:DETAIL:\s+)?(?<![A-Z])line \d+: )(.*)$"),
)


def scrub_message(text: str, *, conversions: bool = False) -> str:
    """``text`` without echoed values; ``conversions`` also blanks values quoted by conversion errors."""
    for pattern in _ECHOES:
        text = pattern.sub(lambda m: m.group(1) + "[REDACTED]" + m.group(3), text)
    if conversions:
        text = _CONVERSION_ECHOES[0].sub(lambda m: f"{m.group(1)}{m.group(2)}[REDACTED]{m.group(2)}", text)
        text = _CONVERSION_ECHOES[1].sub(lambda m: m.group(1) + "[REDACTED]", text)
        text = _CONVERSION_ECHOES[2].sub(lambda m: m.group(1) + "[REDACTED]", text)
    return scrub_text(text)


__all__ = ["scrub_message"]
