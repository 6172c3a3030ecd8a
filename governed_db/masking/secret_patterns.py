"""Detectors for secrets Presidio does not know: cloud keys, tokens, private keys, high-entropy strings.

Each detector is a compiled pattern (plus, for the generic one, an entropy
check) returning ``(start, end)`` spans. Vendor formats are matched by their
documented prefixes; the generic detector catches random-looking keys of 32+
characters while leaving hex digests and UUIDs (whose entropy is bounded by
their 16-symbol alphabet) alone.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

#: name -> pattern; the whole match is the secret unless the pattern has a group named ``v``
PATTERNS: dict[str, re.Pattern[str]] = {
    "aws_access_key": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),
    "gcp_api_key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),
    "github_token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    "stripe_key": re.compile(
        r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,247}\b|\bwhsec_[A-Za-z0-9]{24,}\b"
    ),
    "slack_token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "openai_style_key": re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{20,}"),
    # the signature may be short or empty (an unsecured JWT): header and payload alone identify one
    "jwt": re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
    # HTTP Authorization values: ``Basic dXNlcjpwYXNz`` is a base64 user:password
    "auth_header": re.compile(r"(?i:\b(?:basic|bearer|token|digest)) +(?P<v>[A-Za-z0-9+/=._~\-]{8,})"),
    "private_key": re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)"
    ),
    "assigned_secret": re.compile(
        r"(?i:\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|token|passw(?:or)?d|pwd))"
        r"[\"']?\s*[:=]\s*[\"']?(?P<v>[^\s\"',;&]{8,})"
    ),
}

_GENERIC = re.compile(r"[A-Za-z0-9+/_\-]{32,}={0,2}")

#: password-hash formats (bcrypt, argon2, scrypt, Django/Werkzeug pbkdf2, crypt sha)
PASSWORD_HASH = re.compile(
    r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}|\$argon2(?:id|i|d)\$\S+|\$scrypt\$\S+|\$[56]\$\S+"
    r"|(?:pbkdf2_sha256|pbkdf2:sha256|bcrypt_sha256|sha1)\$\S+"
)


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(text)
    if n == 0:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _generic_key(token: str) -> bool:
    if not (
        any(c.isdigit() for c in token)
        and any(c.isupper() for c in token)
        and any(c.islower() for c in token)
    ):
        return False
    # 4.3 bits/char leaves out hex (max 4.0) and base32-ish identifiers; random base64 of 32+ is ~4.6+
    return entropy(token) >= 4.3


def find_secrets(text: str) -> Iterator[tuple[int, int]]:
    """Spans of ``text`` that are secrets."""
    for pattern in PATTERNS.values():
        for m in pattern.finditer(text):
            if "v" in pattern.groupindex and m.group("v") is not None:
                yield m.start("v"), m.end("v")
            else:
                yield m.start(), m.end()
    for m in _GENERIC.finditer(text):
        if _generic_key(m.group()):
            yield m.start(), m.end()


def is_password_hash(text: str) -> bool:
    return PASSWORD_HASH.fullmatch(text.strip()) is not None
