"""Value-based detection: which parts of a text are personal data or secrets.

Pattern and checksum recognizers (:mod:`governed_db.masking.recognizers`,
after Presidio's) cost tens of microseconds per call (the phone recognizer
hundreds), so compiled gates run first and most cells (no ``@``, no digit
run, no long token, no ``key=``) never reach them. Only the recognizers whose
kind of candidate a gate saw are asked.

Nothing here needs an NLP model or the network: spaCy is never imported
(decision 0090), and e-mail domains are checked locally instead of against a
downloaded public-suffix list. ``phonenumbers`` is imported on the first
digit run that could be a phone number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from governed_db.masking.labels import ENTITY_LABELS
from governed_db.masking.recognizers import (
    ADDRESS_WORDS,
    BIRTH_WORDS,
    KEYED_WORDS,
    NAME_CUE_WORDS,
    RECOGNIZERS,
)
from governed_db.masking.secret_patterns import find_secrets, is_password_hash

# Gates, cheapest first: a character test in C, then one small pattern per kind of candidate. One big
# alternation was measured at 12-17 us per 80-character cell (every branch tried at every position); these
# gates cost about 1.3 us on text without candidates.
_DIGIT = re.compile(r"\d")
_LONG_TOKEN = re.compile(r"(?<!\S)\S{15,}")  # every vendor key, token, JWT and private-key body is this long
_EMAIL = re.compile(r"[^\s@]@[^\s@.]+\.[^\s@]")
_DIGIT_RUN = re.compile(r"\d[\d\s().\-/+]{5,}\d")
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2} ?[A-Za-z0-9]{4}")
#: six digits (in pairs or not) and a letter A-D: the end of a UK National Insurance number (the recognizer reads
#: the letters before; starting at a digit, the search skips prose fastest)
_NINO_SHAPE = re.compile(r"\d\d ?\d\d ?\d\d ?[A-Da-d]")
_IPV6 = re.compile(r"[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}")
_AUTH_SCHEME = re.compile(r"(?i:basic|bearer|token|digest) +\S{8,}")
_ASSIGNED = re.compile(
    r"(?i:api[_-]?key|secret|token|pass\w*|pwd|pw|pin)[\"']?\s*[:=]"
    r"|(?i:passw(?:or)?d|pwd|passphrase|pin(?: code)?)\s+(?:is|was)\s"
)
#: spelled-out e-mail addresses (``alice at example dot com``, ``alice [at] example.com``)
_OBFUSCATION_MARKS = (
    " dot ",
    "[at]",
    "(at)",
    "{at}",
    "<at>",
    "[ at ]",
    "( at )",
    "[dot]",
    "(dot)",
    " @",
    "@ ",
)
_SSN_SHAPE = re.compile(r"\d{3}[- .]\d{2}[- .]\d{4}")
_DATE_SHAPE = re.compile(
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[ T]\d{1,2}(?::\d{2}){0,2})?|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
)
_QUAD_SHAPE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
#: a MAC address written with dashes (with colons, the IPv6 gate sees it), a coordinate's four decimals, a DNI's
#: check letter after its digits (decision 0394)
#: two capitalised words in a row: where a person's name may be (the given-name list decides)
_CAPITAL_PAIR = re.compile(r"[A-ZÀ-ÖØ-ÞŁŚŻŹĆŃŠŽČŘ][a-zß-öø-ÿłśżźćńąęšžčřőű]+\s+(?:[A-Z]\.\s+|(?:[a-z]{1,3}\s+){1,2})?[A-ZÀ-ÖØ-ÞŁŚŻŹĆŃŠŽČŘ]")
_MAC_DASHED = re.compile(r"[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}-[0-9A-Fa-f]{2}")
_COORDINATE_SHAPE = re.compile(r"\d\.\d{4}")
_ES_ID_SHAPE = re.compile(r"\d{7}-?[A-Za-z](?![A-Za-z0-9])")
#: a house number before a capitalised word (``221B Baker Street``, ``1600 Pennsylvania Ave``): where an English
#: street address may start (decision 0409)
_HOUSE_NUMBER = re.compile(r"\d[A-Za-z]?\s+(?:[NSEW]\.?\s+)?[A-Z][a-z]")


def _digit_kinds(run: str) -> tuple[str, ...]:
    """Which recognizers a digit run could satisfy (phone parsing costs ~300 us: ask it only when useful)."""
    run = run.strip()
    if _QUAD_SHAPE.fullmatch(run):
        return ("ip",)
    if _DATE_SHAPE.fullmatch(run):
        return ()
    n = sum(c.isdigit() for c in run)
    kinds: list[str] = []
    if _SSN_SHAPE.fullmatch(run) or (n == 9 and run.isdigit()):
        kinds.append("us_ssn")
    elif 7 <= n <= 15:
        kinds.append("phone")
    if 12 <= n <= 19:
        kinds.append("credit_card")
    if n == 10:
        kinds.append("uk_nhs")
    if n == 15 and run[0] in "1278":
        kinds.append("fr_nir")
    return tuple(kinds)


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    label: str
    score: float


def _obfuscated(text: str) -> bool:
    low = text.lower()
    return any(mark in low for mark in _OBFUSCATION_MARKS)


#: password keys in French, German, Spanish, Portuguese, Dutch (``Kennwort=``, ``mdp:``, ``contraseña:``): as
#: substrings of the lowered text, because added to ``_ASSIGNED`` they made its search cost 3.5 times as much
_FOREIGN_PASSWORD_KEYS = ("kennwort", "mdp", "contrase", "senha", "wachtwoord")


def _assigned(text: str) -> bool:
    if _ASSIGNED.search(text) is not None:
        return True
    low = text.lower()
    return any(w in low for w in _FOREIGN_PASSWORD_KEYS)


def _has_auth_word(text: str) -> bool:
    # substring tests cost ~40 ns each; the case-insensitive pattern costs microseconds on any long text
    return any(w in text for w in _AUTH_WORDS)


_AUTH_WORDS = ("asic ", "earer ", "ASIC ", "EARER ", "oken ", "OKEN ", "igest ", "IGEST ")


def _candidates(text: str) -> tuple[dict[str, None], bool]:
    """(recognizers worth asking, whether secret detectors are worth running) for ``text``."""
    wanted: dict[str, None] = {}
    long_token = _LONG_TOKEN.search(text) is not None
    # substring tests on the lowered text: a case-insensitive alternation costs several times as much, and a
    # generator over the words (``any(w in low for w in ...)``) several times what ``map`` over ``__contains__`` does
    low = text.lower()
    if ("@" in text and _EMAIL.search(text)) or _obfuscated(text):
        wanted["email"] = None
    if _DIGIT.search(text):
        for m in _DIGIT_RUN.finditer(text):
            for name in _digit_kinds(m.group()):
                wanted[name] = None
        if _IBAN.search(text):
            wanted["iban"] = None
        if _NINO_SHAPE.search(text):
            wanted["uk_nino"] = None
        if "." in text and _COORDINATE_SHAPE.search(text):
            wanted["coordinates"] = None
        if _ES_ID_SHAPE.search(text):
            wanted["es_id"] = None
        if "2A" in text or "2B" in text or "2a" in text or "2b" in text:
            wanted["fr_nir"] = None  # Corsica's departments: a NIR whose digit run the letters cut
        if "-" in text and _MAC_DASHED.search(text):
            wanted["mac"] = None
        if any(map(low.__contains__, KEYED_WORDS)):
            wanted["keyed_id"] = None
        if any(map(low.__contains__, BIRTH_WORDS)):
            wanted["birth_date"] = None
        if _HOUSE_NUMBER.search(text) is not None or any(map(low.__contains__, ADDRESS_WORDS)):
            wanted["address"] = None
        if long_token:
            wanted["vin"] = None  # seventeen characters: the long-token gate sees every VIN
    if _CAPITAL_PAIR.search(text) is not None:
        wanted["person"] = None
    if any(map(low.__contains__, NAME_CUE_WORDS)):
        wanted["cued_person"] = None
    if ":" in text and _IPV6.search(text):
        wanted["ip"] = None
        wanted["mac"] = None
    secrets = (
        bool(("=" in text or ":" in text or " is " in text or " was " in text) and _assigned(text))
        or "-----BEGIN" in text
        or ("://" in text and "@" in text)  # credentials in a URL, however short
        or "sig=" in text  # an Azure shared access signature
        or " -p" in text  # a password on a command line (mysql -phunter22, sshpass -p hunter22, --password=)
        or ("curl" in text and "-u" in text)
        or long_token
        or (_has_auth_word(text) and _AUTH_SCHEME.search(text) is not None)
    )
    return wanted, secrets


def has_candidate(text: str) -> bool:
    wanted, secrets = _candidates(text)
    return secrets or bool(wanted)


def find_spans(text: str) -> list[Span]:
    """Non-overlapping sensitive spans of ``text``, in order."""
    wanted, secrets = _candidates(text)
    if not wanted and not secrets:
        return []
    found: list[Span] = []
    if secrets:
        found.extend(Span(s, e, label, 1.0) for s, e, label in find_secrets(text))
    for name in wanted:
        for s, e, entity in RECOGNIZERS[name](text):
            # phone parsing accepts many digit runs: any more specific kind over the same digits wins
            found.append(
                Span(s, e, ENTITY_LABELS.get(entity, "SECRET"), 0.4 if entity == "PHONE_NUMBER" else 1.0)
            )
    return _merge(found)


def _merge(spans: list[Span]) -> list[Span]:
    if len(spans) < 2:
        return spans
    # longest first at each start, then drop whatever overlaps something kept
    spans.sort(key=lambda s: (s.start, -(s.end - s.start), -s.score))
    out: list[Span] = []
    for s in spans:
        if out and s.start < out[-1].end:
            if s.end > out[-1].end:  # partial overlap: widen the kept span (mask more, never less)
                last = out[-1]
                out[-1] = Span(last.start, s.end, last.label, max(last.score, s.score))
            continue
        out.append(s)
    return out


def replace_spans(text: str, spans: Iterable[Span]) -> str:
    parts: list[str] = []
    pos = 0
    for s in spans:
        parts.append(text[pos : s.start])
        parts.append(f"[{s.label}]")
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)


def whole_value_label(text: str) -> str | None:
    """The label when the whole value is one sensitive item (``alice@x.org``, a card number, a key)."""
    stripped = text.strip()
    if not stripped:
        return None
    if is_password_hash(stripped):
        return "PASSWORD"
    spans = find_spans(stripped)
    if len(spans) == 1 and spans[0].end - spans[0].start >= 0.9 * len(stripped):
        return spans[0].label
    return None
