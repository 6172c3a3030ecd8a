"""Values a database quotes back in its messages (errors, warnings), blanked before they reach the caller."""

from __future__ import annotations

import re

from governed_db.masking.strategies.spans import scrub_text

_ECHOES = (
    re.compile(r"(Key \([^)]*\)=\()(.*?)(\)(?: already exists| is not present| conflicts))", re.S),
    re.compile(r"(Failing row contains \()(.*)(\))", re.S),
    re.compile(r"(Duplicate entry ')(.*?)(' for key)", re.S),
    re.compile(r"(Incorrect \w+ value: ')(.*?)(')", re.S),
    re.compile(r"(Data truncated for column '[^']*' at row \d+: ')(.*?)(')", re.S),
    # sqlite3 fetching text that is not UTF-8 (``ssn || CAST(x'ff' AS TEXT)``) quotes the whole cell
    re.compile(r"(Could not decode to UTF-8 column '.*' with text ')(.*)(')", re.S),
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
