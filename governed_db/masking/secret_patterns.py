"""Detectors for secrets: cloud and SaaS keys, tokens, private keys, passwords in text, high-entropy strings.

Each detector is a compiled pattern (plus, for the generic one, an entropy
check) returning ``(start, end, label)`` spans. Vendor formats are matched by
their documented key-id prefixes (``AKIA``, ``ghp_``, ``xoxb-``, ``sk_live_``,
``SG.``...); the generic detector catches random-looking keys of 32+
characters while leaving hex digests and UUIDs (whose entropy is bounded by
their 16-symbol alphabet) alone. ``password: hunter2`` is a password at any
length from three characters; ``my password is hunter2`` only when the value
looks chosen (a digit or a symbol in it, or quoted).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: name -> pattern; the whole match is the secret unless the pattern has a group named ``v``. Vendor formats are
#: matched by their documented key-id prefixes, so a key is found even when it is short or has little entropy.
PATTERNS: dict[str, re.Pattern[str]] = {
    "aws_access_key": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    "gcp_api_key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"),
    "google_oauth": re.compile(r"\bya29\.[0-9A-Za-z_\-]{20,}"),
    "github_token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    "gitlab_token": re.compile(r"\bgl(?:pat|dt|rt|ptt|cbt|oas)-[A-Za-z0-9_\-]{20,}"),
    "stripe_key": re.compile(
        r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,247}\b|\bwhsec_[A-Za-z0-9]{24,}\b"
    ),
    "slack_token": re.compile(r"\bxox[a-z][.\-][A-Za-z0-9.\-]{10,}"),
    "slack_webhook": re.compile(r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,}"),
    # SendGrid: SG.<22-character key id>.<43-character secret>
    "sendgrid_key": re.compile(r"\bSG\.[A-Za-z0-9_\-]{10,32}\.[A-Za-z0-9_\-]{10,64}"),
    "twilio_key": re.compile(r"\bSK[0-9a-fA-F]{32}\b"),
    "mailgun_key": re.compile(r"\bkey-[0-9a-zA-Z]{32}\b"),
    "npm_token": re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"),
    "pypi_token": re.compile(r"\bpypi-AgE[A-Za-z0-9_\-]{50,}"),
    "huggingface_token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "shopify_token": re.compile(r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"),
    "digitalocean_token": re.compile(r"\bdo[por]_v1_[a-f0-9]{64}\b"),
    "databricks_token": re.compile(r"\bdapi[a-f0-9]{32}(?:-\d)?\b"),
    "square_token": re.compile(r"\bsq0(?:atp|csp|idp)-[0-9A-Za-z_\-]{22,}"),
    "telegram_bot_token": re.compile(r"\b\d{8,10}:AA[0-9A-Za-z_\-]{33}\b"),
    "anthropic_key": re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
    "openai_style_key": re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    # the signature may be short or empty (an unsecured JWT): header and payload alone identify one
    "jwt": re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
    # HTTP Authorization values: ``Basic dXNlcjpwYXNz`` is a base64 user:password
    "auth_header": re.compile(r"(?i:\b(?:basic|bearer|token|digest)) +(?P<v>[A-Za-z0-9+/=._~\-]{8,})"),
    "private_key": re.compile(
        # (an OpenPGP secret key too: ``-----BEGIN PGP PRIVATE KEY BLOCK-----``)
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
        r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)"
    ),
    # an Azure shared access signature (``...?sv=2020-08-04&...&sig=<base64>``): the signature is the credential
    "sas_signature": re.compile(r"[?&;]sig=(?P<v>[A-Za-z0-9%+/=]{16,})"),
    # credentials in a URL: postgres://user:pass@host
    # (or with no user: redis://:pass@host)
    "url_password": re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s:/@]*:(?P<v>[^\s@/]{1,128})@[\w.\-]+"),
    "assigned_secret": re.compile(
        r"(?i:(?<![a-z0-9])(?:api[_-]?key|secret(?:[_-]?key)?|client[_-]?secret|access[_-]?token|auth[_-]?token|token))"
        r"[\"']?\s*[:=]\s*[\"']?(?P<v>[^\s\"',;&]{8,})"
    ),
}

#: passwords on a command line, as shell histories and job logs keep them: ``mysql -u root -phunter22``,
#: ``curl -u admin:hunter22``, ``sshpass -p hunter22``, ``--password=hunter22`` (searched only in text holding
#: ``-p`` or ``-u``: the alternatives cost microseconds per value)
CLI_PASSWORD = re.compile(
    r"\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)\b[^\n]*?\s-p(?P<v>[^\s\-][^\s]*)"
    r"|\bcurl\b[^\n]*?\s(?:-u|--user)\s*[\"']?[^\s:\"']+:(?P<v2>[^\s\"']+)"
    r"|\bsshpass\s+-p\s*(?P<v3>\S+)"
    r"|(?<![\w-])--password[= ](?P<v4>[^\s\-]\S*)"
)
#: passwords are short: ``password: hunter2`` is a secret at any length from 3 characters
PASSWORD_ASSIGNED = re.compile(
    # (an environment variable's name too: ``DB_PASSWORD=...``, ``PGPASSWORD=...``, ``MYSQL_PWD=...``)
    # (and in French, German, Spanish, Portuguese, Dutch: ``mot de passe``, ``Passwort``, ``Kennwort``, ``mdp``,
    # ``contraseña``, ``senha``, ``wachtwoord``; decision 0394)
    r"(?i:(?<![a-z0-9])(?P<k>pgpassword|passw(?:or)?d|pass(?:phrase|code)?|pwd|pw|pin|passwort|kennwort"
    r"|mot de passe|mdp|contrase(?:ñ|n)a|senha|wachtwoord))[\"']?\s*[:=]\s*"
    r"(?:(?P<q>[\"'])(?P<qv>[^\"'\n]{1,128})(?P=q)|(?P<v>[^\s\"',;&]{3,128}))"
)
#: ``my password is hunter2``: the value must look chosen (a digit or symbol in it, or quoted)
PASSWORD_IS = re.compile(
    r"(?i:\b(?:passw(?:or)?d|pwd|passphrase|pin(?:\s+code)?)\s+(?:is|was|=|:)\s+)"
    r"(?:(?P<q>[\"'])(?P<qv>[^\"'\n]{1,128})(?P=q)|(?P<v>[^\s\"',;]{3,128}))"
)
#: values of a password assignment that are words about it, not the password (``password: required``)
PASSWORD_WORDS = _words(
    "none null nil n/a na empty blank required optional changed change reset expired set unset hidden redacted "
    "masked true false yes no protected unknown missing invalid incorrect wrong correct weak strong too not "
    "the a an being now still same updated saved sent"
)

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


def _password_value(m: re.Match[str], chosen_only: bool) -> tuple[int, int] | None:
    group = "qv" if m.group("qv") is not None else "v"
    value = m.group(group)
    if value is None or value.lower().rstrip(".!") in PASSWORD_WORDS or len(set(value)) == 1:
        return None
    if chosen_only and group == "v" and (value.isalpha() or len(value) < 4):
        return None
    if group == "v" and value.isdigit() and (m.groupdict().get("k") or "").lower() == "pass":
        return None  # "tests pass: 120": a count, not a password (a PIN or a quoted value still is)
    return m.start(group), m.end(group)


def _plain_word(value: str) -> bool:
    """A lower-case (or capitalised) word of letters only: what prose puts after ``token``/``basic``, where an
    HTTP credential (base64, a JWT, an opaque token) mixes cases, digits or symbols."""
    return value.isalpha() and value[1:].islower()


def find_secrets(text: str) -> Iterator[tuple[int, int, str]]:
    """Spans of ``text`` that are secrets: ``(start, end, label)`` with label SECRET or PASSWORD."""
    for name, pattern in PATTERNS.items():
        for m in pattern.finditer(text):
            if name == "auth_header" and _plain_word(m.group("v")):
                continue  # "token rotation scheduled": a word after the scheme's name, not a credential
            if "v" in pattern.groupindex and m.group("v") is not None:
                yield m.start("v"), m.end("v"), "SECRET"
            else:
                yield m.start(), m.end(), "SECRET"
    if "-p" in text or "-u" in text:
        for m in CLI_PASSWORD.finditer(text):
            value = next(g for g in ("v", "v2", "v3", "v4") if m.group(g) is not None)
            yield m.start(value), m.end(value), "SECRET"
    if _password_hint(text):
        for pattern, chosen_only in ((PASSWORD_ASSIGNED, False), (PASSWORD_IS, True)):
            for m in pattern.finditer(text):
                span = _password_value(m, chosen_only)
                if span is not None:
                    yield span[0], span[1], "PASSWORD"
    for m in _GENERIC.finditer(text):
        if _generic_key(m.group()):
            yield m.start(), m.end(), "SECRET"


_PASSWORD_HINT = re.compile(r"(?i)pass|pwd|pw\b|pin\b")
#: the other languages' words, as substrings of the lowered text: added to the pattern above they made its search
#: cost 10 us instead of 0.4 on every text (a case-insensitive alternation loses the engine's prefix scan)
_FOREIGN_PASSWORD_WORDS = ("kennwort", "mdp", "contrase", "senha", "wachtwoord")


def _password_hint(text: str) -> bool:
    if _PASSWORD_HINT.search(text) is not None:
        return True
    low = text.lower()
    return any(w in low for w in _FOREIGN_PASSWORD_WORDS)


def is_password_hash(text: str) -> bool:
    return PASSWORD_HASH.fullmatch(text.strip()) is not None
