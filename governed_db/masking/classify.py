"""Column classification: a label, a confidence and the evidence, from name, type and values.

Three sources, combined per column:

* the **name**, split into words (``billingEmail`` -> ``billing email``) and
  matched against word sequences per label, with words that turn a
  sensitive name into metadata (``email_verified``, ``phone_count``,
  ``password_changed_at``) vetoing the match;
* the **declared type** (an ``inet`` is an IP address; a boolean is never an
  e-mail address);
* a **sample of values**, labelled by the share of non-empty values that are
  one sensitive item (``alice@example.com``), or — for free text — that
  contain one. One stray hit does not label a column.
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from governed_db.masking import detect
from governed_db.masking.documents import UNESCAPE, hstore_pairs, record_items
from governed_db.masking.given_names import GIVEN_NAMES, SURNAMES
from governed_db.masking.names import NAME_RULES as _NAME_RULES
from governed_db.masking.names import ORGANISATION_WORDS as _ORGANISATION_WORDS
from governed_db.masking.names import PERSON_ROLE_WORDS as _PERSON_ROLE_WORDS
from governed_db.masking.names import PERSON_TABLE_WORDS as _PERSON_TABLE_WORDS
from governed_db.masking.names import TEXTY as _TEXTY
from governed_db.masking.names import VETO as _VETO
from governed_db.masking.names import VETO_EXEMPT as _VETO_EXEMPT
from governed_db.masking.recognizers import VERSION_WORDS, ssn_valid

#: share of sampled non-empty values that must be one item of a label to label the column
VALUE_SHARE = 0.6
#: one sampled value holding an item makes a column FREE_TEXT: its values are scanned (spans masked) as they pass.
#: However many values the sample read: a share would let an agent dilute a column (one SSN among the 200 varied
#: values of a widened sample was 0.5 %, and the column was settled innocent, its SSNs in clear: decision 0313)
TEXT_MIN_HITS = 1
#: FREE_TEXT confidence once personal data was seen in *enough* sampled values (by name alone, or after a stray
#: hit, it is 0.5): such a column may not be filtered on by identities it is masked for; a merely text-like one
#: may, because one false positive (a version string read as an address) must not refuse every filter on it
OBSERVED_TEXT = 0.6
SENSITIVE_TEXT_SHARE = 0.05
SENSITIVE_TEXT_HITS = 3
#: labels a bare run of digits earns by coincidence (a random 16-digit number passes Luhn one time in ten, most
#: 10-digit numbers parse as a phone number): from bare digits they count only when most values agree, and
#: PHONE/NATIONAL_ID not at all (an invoice number column is not a phone column; names say when it is)
_DIGIT_COINCIDENCE = frozenset({"CREDIT_CARD", "PHONE", "NATIONAL_ID", "US_SSN"})
_DIGIT_NEVER = frozenset({"PHONE", "NATIONAL_ID"})
#: labels any value of the right shape earns by coincidence one time in a few (a 17-character part number passes a
#: VIN's check digit one time in eleven): they count only when most values agree (decision 0409)
_SHAPE_COINCIDENCE = frozenset({"VEHICLE_ID"})
#: labels a column's name gives where its values may not show them (a surname alone, a street without a number)
_NAME_ONLY_LABELS = frozenset({"PERSON_NAME", "ADDRESS", "USERNAME"})
#: items found inside the values of such a column that are its own kind (a name, an address): they never turn it
#: into free text masked by spans, which would mask less than the whole value (decisions 0394, 0409)
_OWN_KINDS = frozenset({"PERSON_NAME", "ADDRESS"})

#: a bare "name" in English, French, Spanish, Dutch: a person's only in a table whose name says it holds people
_BARE_NAMES = frozenset({("name",), ("nom",), ("nombre",), ("naam",)})

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@dataclass(slots=True)
class ColumnClass:
    """What a column holds: ``label`` (None: not sensitive), ``confidence`` 0..1, and why."""

    label: str | None
    confidence: float = 0.0
    evidence: dict[str, str] = field(default_factory=dict)
    #: strategy override from a reviewed catalog: (name, options)
    strategy: tuple[str, dict[str, Any]] | None = None
    #: True when a person reviewed it (a catalog entry), False for online guesses
    reviewed: bool = False
    #: True while the label stands in for a classification the data could not support yet (the table was empty
    #: or nearly so): values are scanned as they pass, and the column is classified again once data arrives
    provisional: bool = False
    #: the kinds of item found inside sampled values of a FREE_TEXT column (``US_SSN``, ``EMAIL``...): a search
    #: of it may not use characters such an item is made of (decision 0192)
    found: frozenset[str] = frozenset()


def words(name: str) -> tuple[str, ...]:
    """``billingEmail`` -> ``("billing", "email")``; accents are folded first (``prénom`` -> ``prenom``,
    ``contraseña`` -> ``contrasena``, ``straße`` -> ``strasse``), so a French or Spanish name is one word."""
    if not name.isascii():
        name = _fold(name)
    return tuple(w.lower() for w in _WORDS.findall(name))


@functools.lru_cache(maxsize=1024)
def _fold(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.replace("ß", "ss").replace("ẞ", "SS"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


#: exact numeric types without fractional digits
_WHOLE_DECIMAL = re.compile(r"(?:numeric|decimal|number)\s*(?:\(\s*\d+\s*(?:,\s*0\s*)?\))?")


def type_category(declared: str | None) -> str:
    if not declared:
        return "unknown"
    t = declared.lower()
    if t.startswith(("inet", "cidr")):
        return "inet"
    if "bool" in t:
        return "bool"
    if "json" in t:
        return "json"
    if any(k in t for k in ("char", "text", "clob", "string", "enum", "uuid", "name", "citext")):
        return "text"
    if any(k in t for k in ("blob", "bytea", "binary", "bytes")):
        return "binary"
    if "timestamp" in t or "datetime" in t:
        return "date"
    if t.startswith("date"):
        return "date"
    if t.startswith("time") or "interval" in t:
        return "other"
    if "int" in t or t in ("serial", "bigserial", "smallserial", "oid"):
        return "int"
    if any(k in t for k in ("real", "double", "float", "numeric", "decimal", "money")):
        return "float"
    return "unknown"


def _contains(seq: tuple[str, ...], part: tuple[str, ...]) -> int:
    n = len(part)
    for i in range(len(seq) - n + 1):
        if seq[i : i + n] == part:
            return i
    return -1


def classify_name(table: str, column: str, declared: str | None = None) -> ColumnClass | None:
    """Label from the column's name and declared type alone (None when nothing matches)."""
    category = type_category(declared)
    if category == "float" and _WHOLE_DECIMAL.fullmatch((declared or "").strip().lower()):
        # NUMERIC / DECIMAL(15, 0) holds whole numbers (SQLite's NUMERIC affinity stores 14155550142 as an
        # integer): a ``phone NUMERIC`` is named like a ``phone BIGINT``
        category = "int"
    if category == "inet":
        return ColumnClass("IP_ADDRESS", 0.9, {"type": f"declared type {declared} holds IP addresses"})
    toks = words(column)
    if category == "bool" or not toks:
        return None
    for label, sequences, categories, confidence in _NAME_RULES:
        for seq in sequences:
            at = _contains(toks, seq)
            if at < 0:
                continue
            rest = toks[:at] + toks[at + len(seq) :]
            if any(w in _VETO and w not in _VETO_EXEMPT.get(label, ()) for w in rest):
                return None
            if category not in categories:
                return None
            return ColumnClass(
                label, confidence, {"name": f"column name {column!r} matches {' '.join(seq)!r}"}
            )
    table_last = table.rsplit(".", 1)[-1].lower()
    if toks in _BARE_NAMES and category in _TEXTY and _PERSON_TABLE_WORDS.intersection(words(table_last)):
        return ColumnClass("PERSON_NAME", 0.7, {"name": f"'name' in person-like table {table_last!r}"})
    if category == "json":
        return ColumnClass("FREE_TEXT", 0.5, {"type": f"declared type {declared} holds documents (scanned)"})
    return None


class ValueEvidence(NamedTuple):
    """What a sample of values says: a label (or None), the share of values behind it, why, and how many."""

    label: str | None
    share: float
    why: str
    hits: int = 0


def _text_of(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(v, (dict, list)):
        import json

        return json.dumps(v, default=str)
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        return None
    return str(v)


def classify_values(values: Iterable[Any], column: str = "") -> ValueEvidence:
    """Label from sampled values: a label needs most values to be one item of it.

    ``column`` (the column's name) gives context: dotted quads under ``firmware``/``version`` are versions,
    not IP addresses.
    """
    return _classify_values(values, column)[0]


def _classify_values(values: Iterable[Any], column: str = "") -> tuple[ValueEvidence, frozenset[str], float]:
    """:func:`classify_values`, the kinds of item seen in the values (whole or inside text), and the share of the
    values holding an item other than a person's name: what may turn a column named for names, addresses or user
    names into free text (a ``contact`` of e-mail addresses); names found in its own values never do (decision
    0394: a ``full_name`` of ``Alice Smith 0`` stays PERSON_NAME, redacted whole)."""
    versions = bool(VERSION_WORDS.intersection(words(column))) if column else False
    whole: Counter[str] = Counter()
    coincidences: Counter[str] = Counter()
    embedded = 0
    names_only = 0  # values whose only items are people's names or addresses
    total = 0
    kinds: set[str] = set()
    for v in values:
        text = _text_of(v)
        if text is None or not text.strip():
            continue
        total += 1
        keyed = key_labels(v)
        if keyed:
            # a document whose keys name personal data (``{"ssn": ...}``, hstore's ``"full_name"=>...``) holds it
            # whatever its values look like, as masking masks them whatever they look like: counted by its keys,
            # an SSN the recognizers reject or a name no scan finds weighs as much as any other (decision 0271)
            embedded += 1
            kinds.update(keyed)
            kinds.update(s.label for s in detect.find_spans(text) if s.label != "IP_ADDRESS" or not versions)
            continue
        label = detect.whole_value_label(text)
        if label == "IP_ADDRESS" and versions:
            continue
        if label == "PERSON_NAME":
            # a value that is a name and nothing else: whether the column holds people is the column's question
            # (a ``title`` of novels, ``Anna Karenina``, does not): :func:`classify_column` asks it of them all
            continue
        if label is not None:
            digits = text.strip().isdigit()
            if digits and label in _DIGIT_NEVER:
                continue
            whole[label] += 1
            kinds.add(label)
            if (digits and label in _DIGIT_COINCIDENCE) or label in _SHAPE_COINCIDENCE:
                coincidences[label] += 1
        else:
            spans = [s.label for s in detect.find_spans(text) if s.label != "IP_ADDRESS" or not versions]
            if spans and all(s == "PERSON_NAME" for s in spans) and _name_shaped(text.strip()) is not None:
                continue  # "Dr. Grace Lopez": a name with its title, the column's question as above
            if spans:
                embedded += 1
                names_only += all(s in _OWN_KINDS for s in spans)
                kinds.update(spans)
    if total == 0:
        return ValueEvidence(None, 0.0, "no non-empty values sampled"), frozenset(), 0.0
    if whole:
        label, hits = whole.most_common(1)[0]
        share = hits / total
        if share >= VALUE_SHARE and hits >= min(2, total):
            return (
                ValueEvidence(label, share, f"{share:.0%} of {total} sampled values are {label}", hits),
                frozenset(kinds),
                share,
            )
    # bare digits that match a checksum by chance, in a column mostly of other numbers, are not evidence
    mixed = embedded + sum(whole.values()) - sum(coincidences.values())
    share = mixed / total
    if mixed >= min(TEXT_MIN_HITS, total):
        return ValueEvidence(
            "FREE_TEXT",
            share,
            f"{f'{share:.0%}' if share >= 0.01 else mixed} of {total} sampled values contain personal data or secrets",
            mixed,
        ), frozenset(kinds), (mixed - names_only) / total
    return ValueEvidence(None, 0.0, f"no sensitive values in {total} sampled values"), frozenset(kinds), 0.0


def text_confidence(evidence: ValueEvidence) -> float:
    """FREE_TEXT confidence from values: filterable (0.5) until enough of the sample holds sensitive items."""
    if evidence.hits >= SENSITIVE_TEXT_HITS and evidence.share >= SENSITIVE_TEXT_SHARE:
        return round(min(0.95, OBSERVED_TEXT + evidence.share), 2)
    return 0.5


#: a table sampled with fewer rows than this is classified again later (its labels are provisional)
FEW_ROWS = 10
#: type categories whose values are scanned while a column's label is provisional
_SCANNED_WHILE_PROVISIONAL = frozenset({"text", "unknown", "json", "binary"})


def provisional_class(
    result: ColumnClass, declared: str | None, rows: int, column: str = "", *, values: int | None = None
) -> ColumnClass:
    """What a column of a nearly empty table (or a nearly empty column: ``values`` non-empty ones in a sample
    of ``rows`` rows) is until it is classified again.

    A name label (``email``) or a label from the few values there were stands; otherwise a text-like column
    becomes FREE_TEXT at 0.5 confidence: its values are scanned like free text as they pass, and it may still
    be filtered on (nothing says yet that it holds personal data).
    """
    result.evidence["sample"] = (
        f"the table had {rows} row(s) when sampled; classified again once data arrives"
        if values is None
        else f"the column had {values} non-empty value(s) in {rows} sampled row(s); classified again once data "
        "arrives"
    )
    if result.label is None and type_category(declared) in _SCANNED_WHILE_PROVISIONAL:
        result.label = "FREE_TEXT"
        result.confidence = 0.5
        result.provisional = True
        result.evidence["values"] = "scanned as they pass until the column is classified again"
        if column and VERSION_WORDS.intersection(words(column)):
            # the scan has no column name to go by: a firmware column's dotted quads are versions
            result.strategy = ("spans", {"ignore": ["IP_ADDRESS"]})
    return result


def non_empty(values: Sequence[Any] | None) -> int:
    """How many of ``values`` are evidence (not NULL, not blank text)."""
    return sum(1 for v in values or () if (text := _text_of(v)) is not None and text.strip())


def scanned_while_provisional(declared: str | None) -> bool:
    """Is a column of this declared type scanned as free text while its label is provisional (text-like)?"""
    return type_category(declared) in _SCANNED_WHILE_PROVISIONAL


def sparse_text(declared: str | None, values: Sequence[Any] | None, floor: int) -> bool:
    """Is a column of a text-like type nearly empty in its sample (fewer than ``floor`` non-empty values)?"""
    return type_category(declared) in _SCANNED_WHILE_PROVISIONAL and non_empty(values) < floor


#: particles inside a person's name (``Ana de la Cruz``, ``Jan van der Berg``)
_NAME_PARTICLES = frozenset(
    ("de", "da", "di", "du", "del", "della", "der", "den", "van", "von", "la", "le", "al", "el", "bin", "ibn", "ben",
     "y", "e", "dos", "das", "st")
)
#: titles before a person's name, in English, French, German, Spanish and Italian (decision 0394)
_HONORIFICS = frozenset(
    ("dr", "mr", "mrs", "ms", "mx", "miss", "prof", "sir", "dame", "rev", "mme", "mlle", "m", "herr", "frau",
     "sr", "sra", "srta", "don", "dona", "dott", "sig", "ing")
)
_RIGHT_QUOTE = chr(0x2019)  # a typeset apostrophe (O'Neil)
#: fewest distinct name-shaped values, and the largest share of them one word may be in, for a column to count as
#: names: a handful of team names repeated (``Data Platform``) is not a column of people
_NAMES_DISTINCT = 5
_NAMES_WORD_SHARE = 0.3


def _name_shaped(text: str) -> tuple[str, ...] | None:
    """The words of ``text`` when it is shaped like a person's name (``Dave Brown``, ``Brown, Dave``, ``J. R.
    Smith``, ``Ana de la Cruz``, ``DAVE BROWN``), else None. An organisation's word (``Acme Corp``) rules it out."""
    toks = text.replace(",", " ").split()
    if len(toks) > 2 and toks[0].lower().rstrip(".") in _HONORIFICS:
        toks = toks[1:]  # "Dr. Grace Lopez": the title says a person, and is no part of the name's words
    if not 2 <= len(toks) <= 5 or len(text) > 80:
        return None
    upper = all(t.isupper() for t in toks if t.lower() not in _NAME_PARTICLES)
    full = 0
    for i, tok in enumerate(toks):
        low = tok.lower()
        if low in _NAME_PARTICLES and 0 < i < len(toks) - 1:
            continue
        bare = tok.rstrip(".")
        if len(bare) == 1 and bare.isalpha() and bare.isupper():  # an initial
            continue
        if not bare.replace("-", "").replace("'", "").replace(_RIGHT_QUOTE, "").isalpha() or not bare[0].isupper():
            return None
        if not upper and bare[1:].isupper():  # ``IT Support``: an acronym beside words
            return None
        if low.strip(".") in _ORGANISATION_WORDS:
            return None
        full += 1
    return tuple(t.lower() for t in toks) if full >= 1 and len(toks) - full <= 2 else None


def _person_role(column: str) -> bool:
    """Does the column's name say it names a person in some role (``author``, ``owner``, ``created_by``)?"""
    toks = words(column)
    if not toks:
        return False
    by = len(toks) >= 2 and toks[-1] == "by"  # created_by, approved_by
    # the role is what the name is about, its last word: ``book_author`` is a person, ``customer_city`` a city
    if not (by or toks[-1] in _PERSON_ROLE_WORDS):
        return False
    kept = set(_PERSON_ROLE_WORDS) | ({"by", toks[-2]} if by else set())
    return not any(w in _VETO for w in toks if w not in kept)


_SOCIAL_NAMES = frozenset({("social",), ("social", "no"), ("social", "num"), ("social", "nr"), ("social", "number")})


def _social(column: str) -> bool:
    return words(column) in _SOCIAL_NAMES


_VIN_NAMES = frozenset({("vin",), ("vins",)})
_VIN_SHAPE = re.compile(r"(?i)[A-HJ-NPR-Z0-9]{17}")


def _share(values: Sequence[Any], test: Callable[[str], Any]) -> float:
    """The share of the non-empty values (as text, stripped) ``test`` holds for."""
    total = hits = 0
    for v in values:
        text = _text_of(v)
        if text is None or not text.strip():
            continue
        total += 1
        hits += bool(test(text.strip()))
    return hits / total if total else 0.0


def _vin_share(values: Sequence[Any]) -> float:
    """The share of the non-empty values shaped like a VIN: seventeen characters without I, O or Q, digits and
    letters both. Under a column named ``vin`` the check digit is not asked for (European manufacturers need not
    compute it); anywhere else a value is one only with it (``recognizers.vin_valid``)."""
    return _share(values, lambda code: _VIN_SHAPE.fullmatch(code) and not code.isdigit() and not code.isalpha())


def _ssn_share(values: Sequence[Any]) -> float:
    """The share of the non-empty values that are nine digits (bare or as ``123-45-6789``) and a valid SSN."""
    return _share(values, lambda text: len(digits := text.replace("-", "").replace(" ", "")) == 9
                  and ssn_valid(digits))


#: words that make a column hold things that may be named after people (``title``: ``Anna Karenina``; ``street``:
#: ``Paul Revere Road``): its values are not asked whether they are people's names
_THING_WORDS = frozenset(
    ("title", "titles", "product", "products", "item", "items", "city", "town", "country", "region", "street", "road",
     "company", "companies", "organisation", "organization", "org", "team", "brand", "model", "project", "book",
     "song", "album", "film", "movie", "show", "place", "venue", "hotel", "restaurant", "store", "shop", "school",
     "building", "event", "award", "category", "tag", "tags", "label", "subject", "topic", "course", "department",
     "dept", "group", "channel", "campaign", "plan", "feature", "location", "destination", "station", "airport",
     "ship", "hospital", "character", "characters", "pet", "horse", "dog", "cat", "font", "color", "colour",
     "headline", "heading", "caption", "slug", "path", "url", "file", "filename")
)


def _says_nothing(column: str) -> bool:
    """Is the column's name silent on what it holds (no veto word, no word naming a thing)?"""
    toks = words(column)
    return bool(toks) and not any(w in _VETO or w in _THING_WORDS for w in toks)


def _names_share(values: Sequence[Any], *, given: bool = False) -> tuple[float, int]:
    """(share of the non-empty sampled values shaped like a person's name, how many) — 0 when the name-shaped
    values are too few or too alike to be people's (:data:`_NAMES_DISTINCT`, :data:`_NAMES_WORD_SHARE`), or, with
    ``given``, when fewer than half of them hold a common given name or surname (decision 0409: ``Nguyen Thi Minh
    Khai``, ``Xochitl Ramírez``)."""
    total = 0
    shaped: list[tuple[str, ...]] = []
    for v in values:
        text = _text_of(v)
        if text is None or not text.strip() or not isinstance(v, str):
            continue
        total += 1
        found = _name_shaped(text.strip())
        if found is not None:
            shaped.append(found)
    if not shaped or len(set(shaped)) < _NAMES_DISTINCT:
        return 0.0, 0
    counts = Counter(w for toks in shaped for w in set(toks) if w not in _NAME_PARTICLES)
    if counts.most_common(1)[0][1] > _NAMES_WORD_SHARE * len(shaped):
        return 0.0, 0
    listed = sum(1 for toks in shaped if not GIVEN_NAMES.isdisjoint(toks) or not SURNAMES.isdisjoint(toks))
    if given and 2 * listed < len(shaped):
        return 0.0, 0
    return len(shaped) / total, len(shaped)


def classify_column(
    table: str, column: str, declared: str | None = None, values: Sequence[Any] | None = None
) -> ColumnClass:
    """Combine name, type and value evidence into one :class:`ColumnClass`."""
    by_name = classify_name(table, column, declared)
    result = by_name or ColumnClass(None, 0.0, {})
    if declared:
        result.evidence.setdefault("type", str(declared))
    if not values:
        return result
    evidence, kinds, other = _classify_values(values, column)
    label, share, why = evidence.label, evidence.share, evidence.why
    result.evidence["values"] = why
    if label is None and by_name is None and _social(column) and _ssn_share(values) >= VALUE_SHARE:
        # ``social`` alone is HR shorthand for the SSN, and a marketing table's word for a handle: the values
        # decide, nine digits that are valid SSNs (decision 0394)
        result.label, result.confidence = "US_SSN", 0.8
        result.evidence["name"] = f"column name {column!r} with values that are social security numbers"
        return result
    if label is None and by_name is None and words(column) in _VIN_NAMES and _vin_share(values) >= VALUE_SHARE:
        # ``vin`` alone is a vehicle identification number where its values are shaped like one (and wine in a
        # French cellar's table): decision 0409
        result.label, result.confidence = "VEHICLE_ID", 0.8
        result.evidence["name"] = f"column name {column!r} with values shaped like vehicle identification numbers"
        return result
    if label is None:
        if by_name is None and type_category(declared) in _TEXTY and _person_role(column):
            # no detector finds a name, but a role's column whose values look like people's names holds them
            names, hits = _names_share(values)
            if names >= VALUE_SHARE:
                result.label, result.confidence = "PERSON_NAME", round(min(0.85, 0.5 + names / 3), 2)
                result.evidence["name"] = f"column name {column!r} names a person's role"
                result.evidence["values"] = f"{names:.0%} of {round(hits / names)} sampled values look like names"
        elif by_name is None and type_category(declared) in _TEXTY and _says_nothing(column):
            # a column whose name says nothing (``value``, ``data``, a ``name`` outside a table of people) holding
            # people's names: name-shaped values, most with a common given name (decision 0394)
            names, hits = _names_share(values, given=True)
            if names >= VALUE_SHARE:
                result.label, result.confidence = "PERSON_NAME", round(min(0.8, 0.45 + names / 3), 2)
                result.evidence["values"] = (
                    f"{names:.0%} of {round(hits / names)} sampled values are people's names (given names)"
                )
        return result
    if label == "FREE_TEXT":
        # personal data seen inside the text; a specific name label (an "email" column) still wins, unless it is
        # a label values cannot show and most values are items of other kinds (a "contact" column of e-mail
        # addresses and phone numbers): then each value is masked as what it is
        if (
            by_name is None
            or by_name.label == "FREE_TEXT"
            or (by_name.label in _NAME_ONLY_LABELS and other >= VALUE_SHARE)
        ):
            result.label = label
            result.confidence = max(result.confidence, text_confidence(evidence))
            result.found = kinds
    elif by_name is not None and by_name.label == label:
        result.confidence = round(min(0.99, max(by_name.confidence, share) + 0.05), 2)
    else:
        # values that are clearly one thing outrank a name (a "contact" column full of e-mails)
        result.label = label
        result.confidence = round(min(0.95, share), 2)
    return result


def classify_sample(
    table: str, column: str, declared: str | None = None, values: Sequence[Any] | None = None
) -> ColumnClass:
    """:func:`classify_column` over a sample, where repetition is no evidence (decision 0294): when values repeat,
    the distinct values are classified too, each counted once, and the stronger answer holds. Three hundred rows
    of ``'n/a'`` placed before three SSNs weigh as one value, not as 99 % of the column; a column of repeated
    innocent values (``'active'``) has no sensitive distinct value to be labelled by."""
    whole = classify_column(table, column, declared, values)
    if not values:
        return whole
    distinct: dict[Any, Any] = {}
    for v in values:
        try:
            distinct.setdefault((type(v), v), v)
        except TypeError:  # a document or an array: counted as it comes
            distinct[(type(v), id(v))] = v
    if len(distinct) == len(values):
        return whole
    once = classify_column(table, column, declared, list(distinct.values()))
    if (once.label is not None, once.confidence) <= (whole.label is not None, whole.confidence):
        return whole
    once.evidence["values"] = f"{once.evidence.get('values', '')} (distinct values, each counted once)"
    return once


__all__ = [
    "ColumnClass",
    "ValueEvidence",
    "classify_column",
    "classify_name",
    "classify_sample",
    "classify_values",
    "provisional_class",
    "scanned_while_provisional",
    "text_confidence",
    "type_category",
    "words",
]


@functools.lru_cache(maxsize=4096)
def key_label(key: str) -> str | None:
    """The label a JSON object's key (or a decoded record's field) names, as a column of that name would be
    labelled by its name alone (``ssn``, ``email``, ``full_name``, ``holder``...), or ``None`` (also for keys
    that only say "free text": their values are scanned)."""
    found = classify_name("", key, None)
    return found.label if found is not None and found.label and found.label != "FREE_TEXT" else None


def key_labels(value: Any) -> frozenset[str]:
    """The labels the keys of a document name where they hold a value: a decoded JSON object or record, JSON text,
    hstore text (nested objects and arrays too). A sample counts such a value as holding personal data whatever
    the value looks like, as masking masks it whatever it looks like (decision 0271)."""
    if isinstance(value, str):
        pairs = hstore_pairs(value)
        if pairs:
            found = (key_label(UNESCAPE.sub(r"\1", m.group(1))) for m in pairs if m.group(2) is not None)
            return frozenset(f for f in found if f is not None)
        stripped = value.strip()
        if stripped[:1] not in ("{", "[") or stripped[-1:] not in ("}", "]"):
            return frozenset()
        try:
            value = json.loads(stripped)
        except ValueError:
            return frozenset()
    if isinstance(value, (list, tuple)):
        return frozenset().union(*(key_labels(v) for v in value))
    named = value if isinstance(value, dict) else record_items(value)
    if not named:
        return frozenset()
    labels: set[str] = set()
    for k, v in named.items():
        if v is None:
            continue
        label = key_label(str(k))
        if label is not None:
            labels.add(label)
        if isinstance(v, (dict, list, tuple)):
            labels |= key_labels(v)
    return frozenset(labels)
