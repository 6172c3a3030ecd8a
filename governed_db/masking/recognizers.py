"""Pattern and checksum recognizers for personal data: no NLP model, no network, no spaCy.

The patterns and validations of e-mail, credit card, US SSN, IP address, UK
NHS number, IBAN and phone numbers follow Presidio's predefined recognizers
(MIT licence, ``presidio_analyzer/predefined_recognizers``), which governed_db
used directly until 0.1. Importing any part of ``presidio_analyzer`` imports
spaCy (its package ``__init__`` loads the NLP engine): 0.4-0.7 s and ~300 MB
of install for code masking never ran. Owning the ~150 lines lets detection
stay as it was and improve where Presidio's patterns miss (decision 0090):

* lowercase and spaced IBANs (``de89 3704 ...``), validated by mod-97 and the
  registry length of their country;
* context: a bare 9-digit number is an SSN only next to ``ssn``/``social
  security``; a dotted quad after ``version``/``firmware`` is a version, not
  an IP address; a bare 10-digit number is an NHS number only next to ``nhs``;
* obfuscated e-mail addresses (``alice at example dot com``,
  ``alice [at] example [dot] com``).

Each recognizer is ``(text) -> iterator of (start, end, entity)``; phone
numbers are parsed by ``phonenumbers`` (Google's libphonenumber), imported
on first use.
"""

from __future__ import annotations

import ipaddress
import re
import string
import threading
from collections.abc import Callable, Iterator
from typing import Any

from governed_db.masking.given_names import GIVEN_NAMES, NOT_SURNAMES

Found = tuple[int, int, str]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# -- e-mail ---------------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"\b((([!#$%&'*+\-/=?^_`{|}~\w])|([!#$%&'*+\-/=?^_`{|}~\w][!#$%&'*+\-/=?^_`{|}~.\w]{0,}"
    r"[!#$%&'*+\-/=?^_`{|}~\w]))[@]\w+(?:-+\w+)*(?:\.\w+(?:-+\w+)*)+)\b"
)

#: top-level domains an obfuscated address must end in (prose says "at ... dot ..." too often otherwise)
OBFUSCATED_TLDS = _words(
    "com net org edu gov mil int io co info biz me us uk de fr nl es it ca au ch se no dk fi be at pl jp cn "
    "in br ru eu ai app dev tech xyz online site email mail pt ie nz za mx ar cz gr hu ro il kr sg hk tw"
)
_AT = r"(?:\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+|\s*@\s+|\s+@\s*|\s*[\[({<]\s*@\s*[\])}>]\s*)"
_DOT = r"(?:\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+|\.)"
_OBFUSCATED_EMAIL = re.compile(
    rf"(?i)(?<![\w.+\-])[a-z0-9][a-z0-9._%+\-]{{0,63}}(?P<at>{_AT})[a-z0-9](?:[a-z0-9\-]{{0,62}}[a-z0-9])?"
    rf"(?:{_DOT}[a-z0-9](?:[a-z0-9\-]{{0,62}}[a-z0-9])?)*{_DOT}(?P<tld>[a-z]{{2,6}})\b"
)


def _domain_ok(domain: str) -> bool:
    # local replacement for Presidio's tldextract lookup, which fetches the public-suffix list online
    labels = domain.split(".")
    return len(labels) >= 2 and all(labels) and labels[-1].isalpha() and len(labels[-1]) >= 2


#: users of a repository host's SSH address (``git@github.com:org/repo.git``, scp syntax), not a mailbox
_REPOSITORY_USERS = frozenset({"git", "hg", "svn"})


def emails(text: str) -> Iterator[Found]:
    if "@" in text:
        for m in _EMAIL.finditer(text):
            local, _, domain = m.group().rpartition("@")
            if not _domain_ok(domain):
                continue
            end = m.end()
            if local in _REPOSITORY_USERS and text[end : end + 1] == ":" and text[end + 1 : end + 2].strip():
                continue  # a repository's address; ``alice@example.com:hunter2`` (a leaked login) stays one
            yield m.start(), end, "EMAIL_ADDRESS"
    if "at" in text or "AT" in text or "At" in text or "@" in text:
        for m in _OBFUSCATED_EMAIL.finditer(text):
            if m.group("tld").lower() not in OBFUSCATED_TLDS:
                continue
            if m.group("at").strip().lower() == "at" and "dot" not in m.group().lower():
                continue  # "visit us at example.com" names a site; "alice at example dot com" hides an address
            yield m.start(), m.end(), "EMAIL_ADDRESS"


# -- credit cards ---------------------------------------------------------------------------------
_CARD = re.compile(
    r"\b(?!1\d{12}(?!\d))((4\d{3})|(5[0-5]\d{2})|(6\d{3})|(1\d{3})|(3\d{3}))[- ]?(\d{3,4})[- ]?(\d{3,4})"
    r"[- ]?(\d{3,5})\b"
)


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def credit_cards(text: str) -> Iterator[Found]:
    for m in _CARD.finditer(text):
        digits = m.group().replace("-", "").replace(" ", "")
        if len(set(digits)) > 1 and luhn(digits):
            yield m.start(), m.end(), "CREDIT_CARD"


# -- US SSN ---------------------------------------------------------------------------------------
_SSN_FORMATTED = re.compile(r"\b([0-9]{3})([- .])([0-9]{2})\2([0-9]{4})\b")
_SSN_BARE = re.compile(r"(?<![\d\-.])\b[0-9]{9}\b(?![\-.]?\d)")
_SSN_CONTEXT = re.compile(r"(?i)(?:\bssns?\b|\bss#|social\s+security|\bssn\s*#|\bsocial\s+sec\b|\bssn:)")


def ssn_valid(digits: str) -> bool:
    """Presidio's invalidation rules: no all-same, 00 group, 0000 serial, 000/666 area, known samples."""
    if len(digits) != 9 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    if digits[3:5] == "00" or digits[5:] == "0000" or digits[:3] in ("000", "666"):
        return False
    return digits not in ("123456789", "987654320", "078051120")


def ssns(text: str) -> Iterator[Found]:
    for m in _SSN_FORMATTED.finditer(text):
        if ssn_valid(m.group(1) + m.group(3) + m.group(4)):
            yield m.start(), m.end(), "US_SSN"
    if _SSN_CONTEXT.search(text):
        # nine bare digits are an SSN only where the text says so (an order number is not)
        for m in _SSN_BARE.finditer(text):
            if ssn_valid(m.group()):
                yield m.start(), m.end(), "US_SSN"


# -- IP addresses ---------------------------------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
_IP_PATTERNS = (
    re.compile(
        rf"(?<![\w:])::(?:ffff(?::0{{1,4}})?:)?(?:{_OCTET}\.){{3}}{_OCTET}(?:/(?:12[0-8]|1[01]\d|[1-9]?\d))?\b"
    ),
    re.compile(
        r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){1,5}:(?:[0-9A-Fa-f]{1,4}:){0,4}|(?:[0-9A-Fa-f]{1,4}:){6})"
        rf"(?:{_OCTET}\.){{3}}{_OCTET}(?:/(?:12[0-8]|1[01]\d|[1-9]?\d))?\b"
    ),
    # a fifth dotted number makes it a version or an OID, not an address
    re.compile(rf"(?<![\d.])\b{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:/(?:[0-2]?\d|3[0-2]))?\b(?!\.\d)"),
    re.compile(
        r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,7}:"
        r"|:(?::[0-9A-Fa-f]{1,4}){1,7}|(?:[0-9A-Fa-f]{1,4}:){1,6}:[0-9A-Fa-f]{1,4}"
        r"|(?:[0-9A-Fa-f]{1,4}:){1,5}(?::[0-9A-Fa-f]{1,4}){1,2}|(?:[0-9A-Fa-f]{1,4}:){1,4}(?::[0-9A-Fa-f]{1,4}){1,3}"
        r"|(?:[0-9A-Fa-f]{1,4}:){1,3}(?::[0-9A-Fa-f]{1,4}){1,4}|(?:[0-9A-Fa-f]{1,4}:){1,2}(?::[0-9A-Fa-f]{1,4}){1,5}"
        r"|[0-9A-Fa-f]{1,4}:(?::[0-9A-Fa-f]{1,4}){1,6}|:(?::[0-9A-Fa-f]{1,4}){1,6})"
        r"(?:%[0-9a-zA-Z]+)?(?:/(?:12[0-8]|1[01]\d|[1-9]?\d))?(?![\w:]|\.\d)"
    ),
)
#: words that make the dotted quad after them a version number (``firmware 10.4.2.1``, ``v 1.2.3.4``)
VERSION_WORDS = _words(
    "version versions ver v firmware fw release rel build kernel os ios android rev revision sdk "
    "patch update upgrade upgraded downgrade downgraded driver bios package pkg library lib plugin "
    "tag semver changelog runtime python java chrome firefox safari applewebkit webkit gecko edg edge opr "
    "opera crios fxios msie trident"
)
#: a product token of a user agent may end in ``/`` (``Chrome/120.0.6099.109``)
_WORD_BEFORE = re.compile(r"(?:([A-Za-z]+)[\s:=#@\-_./]+)?([A-Za-z]+)[\s:=#@\-_./]*$")
#: words that may stand between a version word and its number (``upgraded to 2.3.0.1``, ``version is 1.2.3.4``)
_LINKS = frozenset({"to", "from", "is", "was", "now", "of", "on"})


def version_context(text: str, start: int) -> bool:
    """True when the word just before ``start`` says a version number follows (``agent v 2.8.3.9``,
    ``upgraded to 2.3.0.1``); ``connected to 10.0.0.5`` stays an address."""
    m = _WORD_BEFORE.search(text, max(0, start - 32), start)
    if m is None:
        return False
    last = m.group(2).lower()
    if last in VERSION_WORDS:
        return True
    return last in _LINKS and m.group(1) is not None and m.group(1).lower() in VERSION_WORDS


def inside_number(text: str, start: int, end: int) -> bool:
    """True when ``text[start:end]`` continues a longer dotted or dashed number (an OID, a version, a range)."""
    before = start >= 2 and text[start - 1] in ".-" and text[start - 2].isdigit()
    after = end + 1 < len(text) and text[end] in ".-" and text[end + 1].isdigit()
    return before or after


def ips(text: str) -> Iterator[Found]:
    for pattern in _IP_PATTERNS:
        for m in pattern.finditer(text):
            found = m.group()
            try:
                ipaddress.ip_interface(found)
            except ValueError:
                continue
            if "." in found and ":" not in found and version_context(text, m.start()):
                continue
            yield m.start(), m.end(), "IP_ADDRESS"


# -- UK NHS ---------------------------------------------------------------------------------------
_NHS = re.compile(r"\b([0-9]{3})([- ]?)([0-9]{3})\2([0-9]{4})\b")
_NHS_CONTEXT = re.compile(r"(?i)\bnhs\b|national health|health service")


def nhs_valid(digits: str) -> bool:
    total = sum(int(c) * w for c, w in zip(digits, range(10, 0, -1), strict=False))
    return len(digits) == 10 and len(set(digits)) > 1 and total % 11 == 0


def nhs_numbers(text: str) -> Iterator[Found]:
    context = None
    for m in _NHS.finditer(text):
        if not nhs_valid(m.group(1) + m.group(3) + m.group(4)):
            continue
        if not m.group(2):
            # one bare 10-digit number in 11 passes the checksum: demand the word, as for bare SSNs
            if context is None:
                context = _NHS_CONTEXT.search(text) is not None
            if not context:
                continue
        yield m.start(), m.end(), "UK_NHS"


# -- UK National Insurance number -------------------------------------------------------------------------
#: HMRC's format: two prefix letters (never D, F, I, Q, U or V; O never second; BG, GB, KN, NK, NT, TN and ZZ not
#: allocated), six digits, a suffix letter A-D; written compact or in pairs (``AB 12 34 56 C``)
_NINO = re.compile(
    r"(?i)(?<![A-Z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"( ?)[0-9]{2}\1[0-9]{2}\1[0-9]{2}\1[A-D](?![A-Z0-9])"
)
_NINO_CONTEXT = re.compile(r"(?i)\bni\b|\bnino\b|national\s+insurance|\bnic?\s*(?:no|number|#)")


def ninos(text: str) -> Iterator[Found]:
    """UK National Insurance numbers: a value that is one written as HMRC prints it (``AB 12 34 56 C``) on its
    own; compact (``AB123456C``, a product code's shape too) or inside longer text only beside a word that says
    so (``NI``, ``NINO``, ``national insurance``), as for bare SSNs. A column named for them is labelled by name."""
    context = None
    for m in _NINO.finditer(text):
        printed = bool(m.group(1)) and not text[: m.start()].strip() and not text[m.end() :].strip()
        if not printed:
            if context is None:
                context = _NINO_CONTEXT.search(text) is not None
            if not context:
                continue
        yield m.start(), m.end(), "UK_NINO"


# -- IBAN -----------------------------------------------------------------------------------------
#: ISO 13616 registry lengths per country (as Presidio's per-country patterns encode them)
IBAN_LENGTHS: dict[str, int] = {
    "AL": 28, "AD": 24, "AT": 20, "AZ": 28, "BH": 22, "BY": 28, "BE": 16, "BA": 20, "BR": 29, "BG": 22,
    "CR": 22, "HR": 21, "CY": 28, "CZ": 24, "DK": 18, "DO": 28, "TL": 23, "EE": 20, "FO": 18, "FI": 18,
    "FR": 27, "GE": 22, "DE": 22, "GI": 23, "GR": 27, "GL": 18, "GT": 28, "HU": 28, "IS": 26, "IE": 22,
    "IL": 23, "IT": 27, "JO": 30, "KZ": 20, "XK": 20, "KW": 30, "LV": 21, "LB": 28, "LI": 21, "LT": 20,
    "LU": 20, "MT": 31, "MR": 27, "MU": 30, "MD": 24, "MC": 27, "ME": 22, "NL": 18, "MK": 19, "NO": 15,
    "PK": 24, "PS": 29, "PL": 28, "PT": 25, "QA": 29, "RO": 24, "SM": 27, "SA": 24, "RS": 22, "SK": 24,
    "SI": 19, "ES": 24, "SE": 24, "CH": 21, "TN": 24, "TR": 26, "AE": 23, "GB": 22, "VA": 22, "VG": 24,
    "EG": 29, "IQ": 23, "LY": 25, "LC": 32, "SC": 31, "UA": 29,
}  # fmt: skip
_IBAN = re.compile(r"(?i)(?<![A-Z0-9])[A-Z]{2}[0-9]{2}(?:[ \-]?[A-Z0-9]{1,4}){3,8}(?![A-Z0-9])")
_IBAN_DIGITS = {ord(c): str(i) for i, c in enumerate(string.digits + string.ascii_uppercase)}


def iban_valid(compact: str) -> bool:
    compact = compact.upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    return int((compact[4:] + compact[:4]).translate(_IBAN_DIGITS)) % 97 == 1


def ibans(text: str) -> Iterator[Found]:
    for m in _IBAN.finditer(text):
        raw = m.group()
        compact = raw.replace(" ", "").replace("-", "")
        # the greedy match may have taken a following word ("DE89... 2 days"): try shorter prefixes too
        length = IBAN_LENGTHS.get(compact[:2].upper())
        if length is None or len(compact) < length:
            continue
        end, count = m.start(), 0
        for i, ch in enumerate(raw):
            if ch not in " -":
                count += 1
                if count == length:
                    end = m.start() + i + 1
                    break
        if end < m.end() and text[end].isalnum():
            continue  # the IBAN would end inside a group of characters: not one
        if iban_valid(compact[:length]):
            yield m.start(), end, "IBAN_CODE"


# -- phone numbers --------------------------------------------------------------------------------
#: regions Presidio's phone recognizer tries (leniency VALID)
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IL", "IN", "CA", "BR")
_phone_lock = threading.Lock()
_phonenumbers: Any = None


def _phone_module() -> Any:
    global _phonenumbers
    if _phonenumbers is None:
        with _phone_lock:
            if _phonenumbers is None:
                import phonenumbers

                _phonenumbers = phonenumbers
    return _phonenumbers


_PHONE_RUN = re.compile(r"\+?\(?\d[\d\s().\-/]{5,}\d")
#: a dotted group of one digit after the first (``93.0.1001.155``): a version's minor number, not a phone's group
_ONE_DIGIT_GROUP = re.compile(r"\.\d(?:\.|$)")


_DECIMAL = re.compile(r"\d+\.\d+")


def _dotted_version(text: str, start: int, raw: str) -> bool:
    """A dotted run that is a version number (``Chrome/93.0.1001.155``, ``version 10.4.2.15``) or a decimal
    number (the seconds of ``10:11:12.123456``, ``48.856613``), not a phone written with dots
    (``415.555.0142``, ``+44.20.7946.0958``)."""
    if "." not in raw or raw.startswith("+"):
        return False
    if _DECIMAL.fullmatch(raw):
        return True
    return _ONE_DIGIT_GROUP.search(raw) is not None or version_context(text, start)


#: words naming the number after them as an identifier, not a telephone (``order 4155550142``, ``colis 98528963``)
IDENTIFIER_WORDS = _words(
    "order orders invoice invoices parcel package shipment tracking ticket ref reference id no nr num number "
    "case account acct job build batch lot serial sku item transaction txn booking reservation confirmation "
    "colis commande facture dossier bestellung rechnung sendung auftrag kundennummer pedido factura envio "
    "expediente ordine fattura"
)
_PHONE_WORDS = _words("tel tél phone fax mobile cell call whatsapp sms telefon telefono")
_WORD_THEN_NUMBER = re.compile(r"([A-Za-z]+)\W{0,3}$")


def _identifier_number(text: str, start: int, raw: str) -> bool:
    """Is the bare digit run at ``start`` an identifier: a segment of a code (``ORD-2024-154689``, ``INV_2024/1234``)
    or a plain number after a word naming one (``order 4155550142``, ``colis 9852896388``)? (Decision 0394.) A phone
    written with separators or a ``+`` (``415-555-0142``, ``+33 6 12 34 56 78``) is one wherever it stands."""
    if start >= 2 and text[start - 1] in "-_/#" and text[start - 2].isalnum():
        glued = _WORD_THEN_NUMBER.search(text, max(0, start - 30), start - 1)
        return glued is None or glued.group(1).lower() not in _PHONE_WORDS  # ``tel/415.555.0142`` is a phone
    if not raw.isdigit():
        return False
    m = _WORD_THEN_NUMBER.search(text, max(0, start - 30), start)
    return m is not None and m.group(1).lower() in IDENTIFIER_WORDS


#: characters of one value ``phonenumbers`` parses (~30 us a character in eight regions); a phone-shaped digit run
#: past them is a phone without parsing (masked, never leaked: decision 0434)
PHONE_PARSE_CHARS = 4096


def phones(text: str) -> Iterator[Found]:
    pn = _phone_module()
    # each region costs ~100 us of parsing: stop once every digit run that could be a number is covered (an
    # international "+44 ..." is found whatever the region; a national one by the first region it is valid in)
    runs = [
        (m.start(), m.end()) for m in _PHONE_RUN.finditer(text) if sum(c.isdigit() for c in m.group()) >= 7
    ]
    head = text
    if len(text) > PHONE_PARSE_CHARS:
        # a long value (an array of phone numbers, pg_stats' most common values): parse its head only; each
        # phone-shaped run that does not end inside it is a phone, unparsed (masked, never leaked)
        head = text[:PHONE_PARSE_CHARS]
        for s, e in runs:
            if e > PHONE_PARSE_CHARS:
                yield s, e, "PHONE_NUMBER"
        runs = [(s, e) for s, e in runs if e <= PHONE_PARSE_CHARS]
    seen: set[tuple[int, int]] = set()
    for region in PHONE_REGIONS:
        for match in pn.PhoneNumberMatcher(head, region, leniency=pn.Leniency.VALID):
            span = (match.start, match.end)
            # an OID or a long version (1.3.6.1.4.1.13591) parses as a number in some region; a phone has at
            # most four dotted groups (+44.20.7946.0958)
            if (
                span not in seen
                and not inside_number(text, match.start, match.end)
                and match.raw_string.count(".") < 4
                and not _dotted_version(text, match.start, match.raw_string)
                and not _identifier_number(text, match.start, match.raw_string)
            ):
                seen.add(span)
                yield match.start, match.end, "PHONE_NUMBER"
        if runs and _covered(runs, seen):
            return


def _covered(runs: list[tuple[int, int]], seen: set[tuple[int, int]]) -> bool:
    """Does every run overlap a span found? (Both sorted and swept once: linear, not runs times spans.)"""
    spans = sorted(seen)
    i, n = 0, len(spans)
    for s, e in runs:  # in text order, not overlapping
        while i < n and spans[i][1] <= s:
            i += 1  # ends before this run: ends before every later run too
        if i == n or spans[i][0] >= e:
            # spans[i] ends after s; one starting before e overlaps (sorted by start, a later one starts later)
            return False
    return True


# -- MAC addresses ----------------------------------------------------------------------------------------------
#: six hexadecimal pairs joined by ``:`` or ``-`` (IEEE 802 canonical form); a network card's address identifies the
#: device, and so its owner, wherever it appears (decision 0394)
_MAC = re.compile(r"(?<![0-9A-Za-z:\-])[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?![0-9A-Za-z:\-])")


def macs(text: str) -> Iterator[Found]:
    for m in _MAC.finditer(text):
        raw = m.group()
        hexdigits = raw.replace(m.group(1), "")
        if len(set(hexdigits.lower())) == 1:
            continue  # 00:00:00:00:00:00 and ff:ff:ff:ff:ff:ff (broadcast) name no device
        if m.group(1) == "-" and hexdigits.isdigit():
            continue  # twelve digits in dashed pairs: a number written in pairs, as likely as an address
        yield m.start(), m.end(), "MAC_ADDRESS"


# -- geographic coordinates ---------------------------------------------------------------------------------------
#: a latitude and a longitude written as a pair (``48.85661, 2.35222``, ``40.4168 -3.7038``): four decimals or more
#: each (about 11 m), so that prices, ratios and versions are not read as places (decision 0394)
_COORDINATES = re.compile(
    r"(?<![\w.\-])(?P<lat>-?\d{1,2}\.\d{4,})(?:\s*,\s*|\s+|;\s*)(?P<lon>-?\d{1,3}\.\d{4,})(?![\w.])"
)


def coordinates(text: str) -> Iterator[Found]:
    for m in _COORDINATES.finditer(text):
        lat, lon = m.group("lat"), m.group("lon")
        if lat.endswith("00") and lon.endswith("00"):
            continue  # 12.5000, 13.4000: amounts written to four places, not a measured position
        if abs(float(lat)) < 1 and abs(float(lon)) < 1:
            continue  # 0.1234, 0.5678: scores and ratios (no one lives at the Gulf of Guinea's null island)
        if abs(float(lat)) <= 90 and abs(float(lon)) <= 180:
            yield m.start(), m.end(), "COORDINATES"


# -- Spanish DNI/NIE, French NIR --------------------------------------------------------------------------------
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_ES_ID = re.compile(r"(?i)(?<![A-Z0-9])(?P<p>[XYZ]-?)?(?P<n>\d{7,8})-?(?P<c>[A-Z])(?![A-Z0-9])")
_NIR = re.compile(
    r"(?<!\d)(?<!\d )(?P<s>[1278]) ?(?P<y>\d\d) ?(?P<m>0[1-9]|1[0-2]|[2-9]\d) ?(?P<d>\d\d|2[ABab]) ?(?P<c>\d{3})"
    r" ?(?P<o>\d{3}) ?(?P<k>\d\d)(?![\d])"
)
_ES_CONTEXT = re.compile(r"(?i)\b(?:dni|nie|nif|documento|identidad|identificaci)")
_FR_CONTEXT = re.compile(r"(?i)\b(?:nir|insee|s[ée]cu|s[ée]curit[ée] sociale|num[ée]ro de s[ée]cu)")


def _whole(text: str, start: int, end: int) -> bool:
    return not text[:start].strip() and not text[end:].strip()


def es_ids(text: str) -> Iterator[Found]:
    """Spanish DNI (8 digits and a check letter) and NIE (X/Y/Z, 7 digits, a check letter): a value that is one on
    its own, or one in text that says so (``DNI``, ``NIE``, ``NIF``), as for bare SSNs."""
    context = None
    for m in _ES_ID.finditer(text):
        prefix, digits = (m.group("p") or "").rstrip("-").upper(), m.group("n")
        if prefix:
            if len(digits) != 7:
                continue
            digits = str("XYZ".index(prefix)) + digits
        elif len(digits) != 8:
            continue
        if _DNI_LETTERS[int(digits) % 23] != m.group("c").upper() or len(set(digits)) == 1:
            continue
        if not _whole(text, m.start(), m.end()):
            if context is None:
                context = _ES_CONTEXT.search(text) is not None
            if not context:
                continue
        yield m.start(), m.end(), "ES_NIF"


def fr_nirs(text: str) -> Iterator[Found]:
    """French social-security numbers (NIR): 13 digits and a key, 97 less the number modulo 97 (Corsica's 2A/2B
    counted as 19/18); on its own, written as printed with spaces, or beside ``NIR``/``sécu``."""
    context = None
    for m in _NIR.finditer(text):
        dept = m.group("d").upper()
        body = m.group("s") + m.group("y") + m.group("m") + dept + m.group("c") + m.group("o")
        number = int(body.replace("2A", "19").replace("2B", "18"))
        if 97 - number % 97 != int(m.group("k")):
            continue
        if " " not in m.group() and not _whole(text, m.start(), m.end()):
            if context is None:
                context = _FR_CONTEXT.search(text) is not None
            if not context:
                continue
        yield m.start(), m.end(), "FR_NIR"


# -- identity documents and dates of birth named in text ----------------------------------------------------------
#: a passport, driving-licence or UK taxpayer (UTR) number after the words that name it, in English, French, German
#: and Spanish (``passport no. X12345678``, ``DL# D1234567``, ``Führerschein B072RRE2I55``): the number has no format
#: of its own to find it by, so the words must be there (decision 0394)
_ID_GROUP = r"[A-Z0-9]*\d[A-Z0-9]*"
_ID_MARK = r"(?:no|nr|num|number|n[°º]|#|num[ée]ro|nummer|n[úu]mero)\.?"
_KEYED_ID = re.compile(
    r"(?i:\b(?:(?:passport|passeport|reisepass|pasaporte|passaporto|driver'?s?\s+licen[cs]e|driving\s+licen[cs]e"
    r"|f[üu]hrerschein|permis\s+de\s+conduire|carn[ée]\s+de\s+conducir|utr|id\s+card|carte\s+d'identit[ée]"
    rf"|personalausweis)(?:\s*{_ID_MARK})?"
    # ``dl`` (a download too) and a bare ``licence`` (software's too) only with a word saying a number follows
    rf"|(?:dl|licen[cs]e)\s*{_ID_MARK}))\s*[:#=]?\s*"
    # groups of capitals and digits, each with a digit (``X12345678``, ``12345 67890``, ``S530-1234-5678``)
    rf"(?P<v>{_ID_GROUP}(?:[ \-]{_ID_GROUP}){{0,3}})(?![A-Za-z0-9])"
)
#: words that name a date of birth before it (``born 12/03/1985``, ``DOB: 1985-03-12``, ``geboren am 21.07.1990``)
_BIRTH_DATE = re.compile(
    r"(?i)\b(?:d\.?o\.?b\.?|date\s+of\s+birth|birth\s*date|birthday|born(?:\s+on)?|geboren(?:\s+am)?"
    r"|geburtsdatum|n[ée]e?\s+le|date\s+de\s+naissance|fecha\s+de\s+nacimiento|nacid[oa]\s+el)\s*[:=]?\s*"
    r"(?P<v>\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    r"|\d{1,2}\.?\s+[A-Za-zéû]{3,9}\.?\s+\d{4}|[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{4})(?![\d])"
)
#: cheap substring tests before either pattern runs (lower-cased text)
KEYED_WORDS = ("pass", "pasap", "reisep", "licen", "dl", "hrers", "permis d", "carn", "utr", "id card", "carte d",
               "ausweis")
BIRTH_WORDS = ("dob", "d.o.b", "birth", "born", "geb", "né", "nee le", "naiss", "nacim", "nacid")


def keyed_ids(text: str) -> Iterator[Found]:
    for m in _KEYED_ID.finditer(text):
        value = m.group("v")
        if sum(c.isalnum() for c in value) >= 6 and sum(c.isdigit() for c in value) >= 4:
            yield m.start("v"), m.end("v"), "KEYED_ID"


def birth_dates(text: str) -> Iterator[Found]:
    for m in _BIRTH_DATE.finditer(text):
        yield m.start("v"), m.end("v"), "DATE_OF_BIRTH"


# -- people's names -------------------------------------------------------------------------------------------------
_UPPER = "A-ZÀ-ÖØ-ÞŁŚŻŹĆŃŠŽČŘ"
_LOWER = "a-zß-öø-ÿłśżźćńąęšžčřőű"
_WORD = rf"[{_UPPER}](?:['\u2019][{_UPPER}])?[{_LOWER}]+(?:[-'\u2019][{_UPPER}]?[{_LOWER}]+)?"
#: a capitalised word, optional initials or particles, and a capitalised surname (``Jean Dupont``, ``Ana de la
#: Cruz``, ``John F. Kennedy``, ``Anne-Marie O'Neil``)
PERSON_PAIR = re.compile(
    rf"(?<![\w.@/])(?P<first>{_WORD})(?:\s+[{_UPPER}]\.)?(?:\s+(?:de|del|de la|van|von|van der|van den|da|di|du|le|la|"
    rf"dos|das|bin|ibn|al|el))?\s+(?P<last>{_WORD})(?![\w@])"
)


_GIVEN_START = re.compile(rf"(?<![\w.@/]){_WORD}")


def person_names(text: str) -> Iterator[Found]:
    """People's names in text: a capitalised pair whose first word is a common given name
    (:data:`governed_db.masking.given_names.GIVEN_NAMES`), not followed by a word that makes it a place or a
    thing (``Grace Street``). Names outside the list are not found (decision 0394)."""
    end = 0
    for word in _GIVEN_START.finditer(text):
        # tried at each capitalised word, so that "Call Sean O'Brien" is not read as "Call Sean" and skipped
        if word.start() < end or word.group().lower().split("-")[0] not in GIVEN_NAMES:
            continue
        m = PERSON_PAIR.match(text, word.start())
        if m is None:
            continue
        if m.group("last").lower() not in NOT_SURNAMES:
            after = text[m.end() : m.end() + 20].split(maxsplit=1)
            if after and after[0].strip(".,;:!?").lower() in NOT_SURNAMES and after[0][:1].isupper():
                continue  # "Emma Stone Award", "Paul Revere House"
            end = m.end()
            yield m.start(), m.end(), "PERSON"


#: words that open a person's name without the name needing a listed given name (decision 0409): ``Name:``,
#: ``Dear``, ``signed,``, ``Kind regards,``, ``my name is``, in English, French, German and Spanish. ``Name`` only
#: where nothing or a word of people stands before it (``Product name: Ergo Chair`` names a thing)
_NAME_CUE = re.compile(
    r"(?:(?:^|(?<=[\s,;.(\[|])(?i:full|first|last|given|family|customer|client|patient|contact|guest|employee|"
    r"applicant|holder|passenger|driver|sender|recipient|your|my)\s+|^|(?<=[,;.(\[|\n])\s?)(?i:name|nom|nombre|naam|vorname)"
    r"\s*[:=]"
    r"|\b(?:[Dd]ear|DEAR|[Cc]h[eè]re?|[Ll]iebe[r]?|[Ee]stimad[oa]|[Qq]uerid[oa])(?=\s)"
    r"|\b(?:[Ss]igned|SIGNED|[Rr]egards|[Ss]incerely|[Cc]ordialement|[Aa]tentamente|[Gg]r[üu](?:ß|ss)e|[Ss]aludos)"
    r"\s*[,:\-]"
    r"|\b(?i:my\s+name\s+is|je\s+m'appelle|me\s+llamo|mein\s+name\s+ist|ich\s+hei(?:ß|ss)e))\s*"
    rf"(?P<v>(?:(?:{'|'.join(('Mr', 'Mrs', 'Ms', 'Mx', 'Dr', 'Prof', 'Mme', 'Mlle', 'M', 'Herr', 'Frau', 'Sr', 'Sra'))})"
    r"\.?\s+)?"
    rf"(?:{_WORD}|[{_UPPER}]{{2,}})(?:\s+(?:(?:de|del|de la|van|von|van der|da|di|du|dos|bin|ibn|al|el)\s+)?"
    rf"(?:{_WORD}|[{_UPPER}]{{2,}}|[{_UPPER}]\.)){{0,4}})(?![\w@])"
)
#: capitalised words after a cue that address or sign as no one in particular (``Dear Customer``, ``Regards, The
#: Support Team``): a name holding one is not taken
_NOT_A_PERSON = _words(
    "sir sirs madam madame monsieur messieurs mesdames customer customers client clients team all colleagues "
    "friends friend members member user users support manager hiring valued partner partners everyone guest "
    "guests subscriber subscribers patient patients parents students editor editors reviewer reviewers committee "
    "board service services desk department office staff management hr billing sales admin administrator "
    "owner owners applicant applicants candidate recipient recipients account accounts unknown none null default "
    "test example sample demo it ops devops qa legal finance payroll marketing security engineering product design "
    "operations"
)
#: what a cue's name would be were it a greeting or title and nothing else
_TITLES = frozenset({"mr", "mrs", "ms", "mx", "dr", "prof", "mme", "mlle", "m", "herr", "frau", "sr", "sra"})
#: cheap substring tests on the lowered text before :data:`_NAME_CUE` runs
NAME_CUE_WORDS = ("name", "nom", "dear", "cher", "lieb", "estimad", "querid", "signed", "regards", "sincerely",
                  "cordialement", "atentamente", "grüße", "grusse", "saludos", "appelle", "llamo", "heiße", "heisse")


def cued_names(text: str) -> Iterator[Found]:
    """People's names after words that introduce one (``Name: Nguyen Thi Minh Khai``, ``Dear Oluwaseun``, ``signed,
    Xochitl Ramírez``), whatever their given name: the cue says a person follows, as a column's name does (decision
    0409). A name holding a word of places, things or groups (``Dear Customer``, ``Regards, Support Team``) is not
    one."""
    for m in _NAME_CUE.finditer(text):
        toks = [t.strip(".").lower() for t in m.group("v").split()]
        named = [t for t in toks if t not in _TITLES]
        if not named or any(t in NOT_SURNAMES or t in _NOT_A_PERSON for t in named):
            continue
        yield m.start("v"), m.end("v"), "PERSON"


# -- street addresses ---------------------------------------------------------------------------------------------
#: a house number, a capitalised street name and its type (``221B Baker Street``, ``1600 Pennsylvania Ave NW``),
#: then an optional unit, city and US state with ZIP or UK postcode (decision 0409). The type names the street; a
#: number and a name alone (``Studio 54``) are not an address, nor a type without a number (``Grace Street``)
_EN_STREET_TYPES = (
    "Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Boulevard|Blvd|Drive|Dr|Way|Court|Ct|Place|Pl|Square|Sq|Terrace|Close|"
    "Crescent|Parkway|Pkwy|Highway|Hwy|Mews"
)
_CAP = rf"[{_UPPER}][{_LOWER}A-Z'\u2019\-]*"
_TOWN = rf"[{_UPPER}][{_LOWER}][{_LOWER}'\u2019\-]*"  # no capital inside: ``NW1`` after ``London`` is a postcode
_CITY_TAIL = (
    rf"(?:,?\s+(?:Apt|Suite|Ste|Unit|Flat|Fl|#)\.?\s*#?[\w-]+)?"
    rf"(?:,\s*(?P<city>{_TOWN}(?:\s+{_TOWN}){{0,2}}))?"
    r"(?:,?\s+(?:[A-Z]{2}\s+\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}|\d{5}))?"
)
_EN_ADDRESS = re.compile(
    rf"(?<![\w/.,\-])(?P<n>\d{{1,5}}[A-Za-z]?(?:-\d{{1,5}})?)\s+(?:(?:N|S|E|W|North|South|East|West)\.?\s+)?"
    rf"(?!The\s)(?:(?:{_CAP}|\d{{1,3}}(?:st|nd|rd|th))\s+){{1,3}}(?i:{_EN_STREET_TYPES})\b\.?"
    r"(?:\s+(?:NW|NE|SW|SE|N|S|E|W)\b)?" + _CITY_TAIL
)
#: French and Spanish: number, type, name (``12 rue de la Paix, 75002 Paris``, ``5 bis avenue Foch``); German and
#: Spanish: name and type, then the number (``Hauptstraße 5, 10115 Berlin``, ``Calle Mayor 12``)
_PARTICLE = r"(?:(?:de la|de l'|du|des|de|d'|del|de los|de las|la|le|les)\s*)?"
_FR_ADDRESS = re.compile(
    rf"(?<![\w/.,\-])\d{{1,4}}(?:\s*(?:bis|ter|[A-Ba-b])\b)?,?\s+(?i:rue|avenue|av\.|boulevard|bd|place|all[ée]e|impasse"
    rf"|chemin|quai|cours|passage)\s+{_PARTICLE}{_CAP}(?:[\s\-]+{_PARTICLE}{_CAP}){{0,3}}"
    rf"(?:,?\s+\d{{5}}\s+{_CAP}(?:[\s\-]{_CAP}){{0,2}})?"
)
_DE_ES_ADDRESS = re.compile(
    rf"(?:(?<![\w\-])[{_UPPER}][{_LOWER}\-]*(?:stra(?:ß|ss)e|str\.|weg|allee|platz|gasse)"
    rf"|(?<![\w\-])(?:Calle|C/|Avenida|Avda\.|Paseo)\s+{_PARTICLE}{_CAP}(?:\s+{_PARTICLE}{_CAP}){{0,2}},?)"
    rf"\s+\d{{1,4}}[a-z]?\b(?![.,]\d)(?:,?\s+\d{{5}}\s+{_CAP})?"
)
#: words before a number that make it a count or a code, not a house number (``pack of 2 Park Avenue mugs``)
_COUNT_WORDS = _words(
    "of x qty pack set buy sold size model no nr number version v room page step item items chapter part vol volume "
    "episode season track level stage round day week top"
)
#: cheap substring tests on the lowered text before the address patterns run (the English types need a digit and a
#: capital before them, which the gate in :mod:`governed_db.masking.detect` checks)
ADDRESS_WORDS = ("rue ", "avenue", "boulevard", "bd ", "place ", "allée", "allee", "impasse", "chemin", "quai ",
                 "cours ", "passage ", "straße", "strasse", "str.", "weg ", "platz", "gasse", "calle", "c/ ", "avda",
                 "paseo")


def street_addresses(text: str) -> Iterator[Found]:
    for pattern in (_EN_ADDRESS, _FR_ADDRESS, _DE_ES_ADDRESS):
        for m in pattern.finditer(text):
            before = _WORD_THEN_NUMBER.search(text, max(0, m.start() - 20), m.start())
            if before is not None and before.group(1).lower() in _COUNT_WORDS:
                continue
            end = m.end()
            rest = text[end:].lstrip()
            if pattern is _EN_ADDRESS and m.group("city") is None and rest[:1].isupper() and text[end:end + 1] == " ":
                continue  # "2 Park Avenue Mugs": a capitalised word after the type, no comma, is a product's name
            yield m.start(), end, "STREET_ADDRESS"


# -- vehicle identification numbers ------------------------------------------------------------------------------
#: ISO 3779: seventeen characters without I, O or Q; the ninth is a check digit over the others (North America's
#: rule, which most manufacturers follow worldwide), the tenth the model year (never U, Z or 0). A serial number of the
#: same shape fails the check ten times in eleven (decision 0409)
_VIN = re.compile(r"(?i)(?<![A-Z0-9])[A-HJ-NPR-Z0-9]{17}(?![A-Z0-9])")
_VIN_VALUES = {**{str(d): d for d in range(10)},
               **dict(zip("ABCDEFGHJKLMNPRSTUVWXYZ", (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8,
                                                      9), strict=True))}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_valid(vin: str) -> bool:
    vin = vin.upper()
    if len(vin) != 17 or vin[9] in "UZ0" or vin.isdigit() or sum(c.isdigit() for c in vin) < 4:
        return False
    if not all(c in _VIN_VALUES for c in vin):
        return False
    check = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True)) % 11
    return vin[8] == ("X" if check == 10 else str(check))


#: words that say a vehicle is spoken of: seventeen characters inside longer text are a VIN only beside one (a part
#: number of that length passes the check digit one time in eleven), as nine bare digits are an SSN only beside ``SSN``
_VIN_CONTEXT = re.compile(
    r"(?i)\b(?:vins?|vehicles?|chassis|ch[aâ]ssis|cars?|trucks?|vans?|recall|towed|fahrgestell\w*|fahrzeug\w*"
    r"|v[ée]hicules?|bastidor|veh[íi]culos?)\b"
)


def vins(text: str) -> Iterator[Found]:
    context = None
    for m in _VIN.finditer(text):
        if not vin_valid(m.group()):
            continue
        if not _whole(text, m.start(), m.end()):
            if context is None:
                context = _VIN_CONTEXT.search(text) is not None
            if not context:
                continue
        yield m.start(), m.end(), "VIN"


#: name -> recognizer, as :mod:`governed_db.masking.detect` asks for them
RECOGNIZERS: dict[str, Callable[[str], Iterator[Found]]] = {
    "email": emails,
    "phone": phones,
    "credit_card": credit_cards,
    "us_ssn": ssns,
    "ip": ips,
    "uk_nhs": nhs_numbers,
    "uk_nino": ninos,
    "iban": ibans,
    "mac": macs,
    "coordinates": coordinates,
    "es_id": es_ids,
    "fr_nir": fr_nirs,
    "keyed_id": keyed_ids,
    "birth_date": birth_dates,
    "person": person_names,
    "cued_person": cued_names,
    "address": street_addresses,
    "vin": vins,
}

__all__ = [
    "IBAN_LENGTHS",
    "RECOGNIZERS",
    "iban_valid",
    "luhn",
    "nhs_valid",
    "ssn_valid",
    "version_context",
    "vin_valid",
]
