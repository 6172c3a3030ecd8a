"""``spans``: replace only the sensitive parts of free text or JSON.

``"call me at alice@example.com"`` becomes ``"call me at [EMAIL]"``. The
text is scanned by :mod:`governed_db.masking.detect` (a compiled prefilter,
then governed_db's pattern/checksum recognizers and secret detectors); JSON objects and arrays are walked and their strings scanned.
Cells without a candidate come back unchanged, as the same object. Option
``ignore`` (a list of labels) leaves items of those labels in place.
"""

from __future__ import annotations

import json
import re
from typing import Any

from governed_db.masking import detect
from governed_db.masking.classify import key_label
from governed_db.masking.documents import UNESCAPE as _UNESCAPE
from governed_db.masking.documents import hstore_pairs, record_items
from governed_db.masking.strategies import Masker, StrategyContext

NAME = "spans"
SUMMARY = "In-text span replacement: only detected PII/secret spans inside text or JSON become [LABEL]."


def scrub_text(text: str) -> str:
    spans = detect.find_spans(text)
    return detect.replace_spans(text, spans) if spans else text


def scrub_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return _scrub_str(str(value))
    if isinstance(value, dict):
        # keys are scanned too: a document keyed by e-mail address ({"alice@example.com": "admin"}) holds them
        # there (decision 0301)
        return {_key(k): _field(k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return (
            type(value)(scrub_value(v) for v in value)
            if isinstance(value, list)
            else tuple(scrub_value(v) for v in value)
        )
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return value
        out = scrub_text(text)
        return raw if out == text else out.encode("utf-8")
    if isinstance(value, int) and not isinstance(value, bool):
        # a card or phone number stored as an integer in a column nobody labelled
        text = str(value)
        return value if scrub_text(text) == text else 0
    named = record_items(value)
    if named is not None:
        # a row the driver decoded (asyncpg's Record, a named tuple of a registered composite): its fields
        return {k: _field(k, v) for k, v in named.items()}
    return value


def _key(key: Any) -> Any:
    return scrub_text(key) if isinstance(key, str) else key


def _field(key: Any, value: Any) -> Any:
    """A value under a key of a document or record: masked whole when the key names personal data (a name, an
    SSN the recognizers would not take for one: scanning alone finds no name), else scanned."""
    if value is None:
        return None
    label = key_label(str(key)) if isinstance(key, str) else None
    return f"[{label}]" if label is not None else scrub_value(value)


def _scrub_str(text: str) -> str:
    """Text, scanned; a JSON object or array in it (asyncpg returns ``json``/``jsonb`` as text) is then walked like
    a decoded one, so that its keys name their values (decision 0261), and so is PostgreSQL's ``hstore`` text
    (``"full_name"=>"Alice Smith"``, decision 0271). Text the walk masks nothing more in comes back as the scan left
    it, formatting and all."""
    scanned = scrub_text(text)
    pairs = hstore_pairs(text)
    if pairs:
        return _scrub_hstore(pairs) or scanned
    # the document as it is stored, not as the scan left it: a number the scan replaced (``"ssn": [US_SSN]``)
    # is no JSON any more, and the walk that masks values by their keys (``"full_name": "Alice Martin"``, which
    # no scan finds) never ran (decision 0301)
    stripped = text.strip()
    if stripped[:1] == '"' and stripped[-1:] == '"' and len(stripped) > 1 and "\\" in stripped:
        # a JSON string as stored (a member MariaDB's JSON_EXTRACT or DuckDB's ``->`` returns): its escapes
        # (``"zed\u0040other.org"``) are the same characters, which the scan of the text as written never sees
        return _scrub_json_string(stripped, scanned)
    if stripped[:1] not in ("{", "[") or stripped[-1:] not in ("}", "]"):
        return scanned
    try:
        doc = json.loads(stripped)
    except ValueError:
        return scanned
    if not isinstance(doc, (dict, list)):
        return scanned
    masked = scrub_value(doc)
    if masked == doc:
        return scanned
    compact = '": ' not in stripped and '", ' not in stripped
    # scanned once more as a whole: what only the whole text shows to a recognizer is masked as before
    return scrub_text(json.dumps(masked, separators=(",", ":") if compact else None))

def _scrub_json_string(stripped: str, scanned: str) -> str:
    """A JSON string's text: scanned as the characters it encodes, and written back as JSON when that masked
    something (else as the scan of the text left it)."""
    try:
        decoded = json.loads(stripped)
    except ValueError:
        return scanned
    if not isinstance(decoded, str):
        return scanned
    masked = scrub_text(decoded)
    return scanned if masked == decoded else json.dumps(masked, ensure_ascii=False)


def _scrub_hstore(pairs: list[re.Match[str]]) -> str | None:
    """hstore pairs with each value under a key that names personal data masked whole, the rest scanned; ``None``
    when no key names personal data (the caller keeps the whole text's scan)."""
    out: list[str] = []
    keyed = False
    for m in pairs:
        key, value = m.group(1), m.group(2)
        label = key_label(_UNESCAPE.sub(r"\1", key)) if value is not None else None
        keyed = keyed or label is not None
        shown = "NULL" if value is None else f'"[{label}]"' if label is not None else f'"{scrub_text(value)}"'
        out.append(f'"{scrub_text(key)}"=>{shown}')
    return ", ".join(out) if keyed else None


def build(label: str, options: dict[str, Any], ctx: StrategyContext) -> Masker:
    ignore = frozenset(str(x).upper() for x in options.get("ignore", ()))
    if not ignore:
        return scrub_value
    # ``ignore: [IP_ADDRESS]``: items of these labels are left as they are (a ``firmware`` column's dotted
    # versions); everything else is still scanned
    return lambda value: _scrub_except(value, ignore)


def _scrub_except(value: Any, ignore: frozenset[str]) -> Any:
    if isinstance(value, str):
        spans = [s for s in detect.find_spans(value) if s.label not in ignore]
        return detect.replace_spans(value, spans) if spans else value
    return scrub_value(value)
