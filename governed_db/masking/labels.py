"""Semantic labels for sensitive data, and how each is masked by default.

A label says *what* a column holds (``EMAIL``, ``US_SSN``, ``SECRET``...);
the strategy says *how* it is masked. The defaults below keep a little shape
where that helps an agent reason about the data (the e-mail domain, the last
four digits of a card) and reveal nothing where any part would hurt
(passwords, secrets, names, addresses).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

#: label -> (default strategy name, default strategy options)
_DEFAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "EMAIL": ("partial", {"email": "keep_domain"}),
    "PHONE": ("partial", {"keep_last": 2}),
    "PERSON_NAME": ("redact", {}),
    # the last four digits of an SSN are an authentication factor in their own right: nothing is kept
    "US_SSN": ("redact", {}),
    "NATIONAL_ID": ("redact", {}),
    "CREDIT_CARD": ("partial", {"keep_last": 4}),
    "IBAN": ("partial", {"keep_first": 2, "keep_last": 4}),
    # account and routing numbers (US ABA, UK sort codes...): the last four digits identify it to its owner
    "BANK_ACCOUNT": ("partial", {"keep_last": 4}),
    "CARD_SECURITY_CODE": ("redact", {}),
    # salaries, income, wages: to the nearest 10 000 (ranges and averages still work)
    "FINANCIAL": ("bucket", {"size": 10000}),
    "USERNAME": ("partial", {"keep_first": 1}),
    "IP_ADDRESS": ("redact", {}),
    "MAC_ADDRESS": ("redact", {}),
    # latitude/longitude to a tenth of a degree (about 11 km: a town, not a street); numbers stay numbers
    "LOCATION": ("bucket", {"size": 0.1}),
    "DATE_OF_BIRTH": ("generalize", {"granularity": "year"}),
    "ADDRESS": ("redact", {}),
    # a vehicle identification number or a licence plate names a car, and through its registration its keeper
    "VEHICLE_ID": ("redact", {}),
    "PASSWORD": ("redact", {}),
    "SECRET": ("redact", {}),
    # free text or JSON that contains sensitive values: only the matching spans are replaced
    "FREE_TEXT": ("spans", {}),
}

#: Every label governed_db assigns, in a stable order.
LABELS: tuple[str, ...] = tuple(_DEFAULTS)

DEFAULT_STRATEGIES: Mapping[str, tuple[str, Mapping[str, Any]]] = MappingProxyType(
    {k: (name, MappingProxyType(opts)) for k, (name, opts) in _DEFAULTS.items()}
)

#: recognizer entity types (Presidio's names, kept) and detector names -> governed_db label
ENTITY_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "EMAIL_ADDRESS": "EMAIL",
        "PHONE_NUMBER": "PHONE",
        "US_SSN": "US_SSN",
        "US_ITIN": "NATIONAL_ID",
        "US_PASSPORT": "NATIONAL_ID",
        "UK_NHS": "NATIONAL_ID",
        "UK_NINO": "NATIONAL_ID",
        "ES_NIF": "NATIONAL_ID",
        "FR_NIR": "NATIONAL_ID",
        "KEYED_ID": "NATIONAL_ID",
        "DATE_OF_BIRTH": "DATE_OF_BIRTH",
        "PERSON": "PERSON_NAME",
        "CREDIT_CARD": "CREDIT_CARD",
        "IBAN_CODE": "IBAN",
        "IP_ADDRESS": "IP_ADDRESS",
        "MAC_ADDRESS": "MAC_ADDRESS",
        "COORDINATES": "LOCATION",
        "STREET_ADDRESS": "ADDRESS",
        "VIN": "VEHICLE_ID",
        "SECRET": "SECRET",
        "PRIVATE_KEY": "SECRET",
    }
)

#: Labels a value detector can recognise on its own (the others come from names and types).
VALUE_LABELS: frozenset[str] = frozenset(ENTITY_LABELS.values())


def normalize_label(label: Any) -> str | None:
    """``"email"`` -> ``"EMAIL"``; ``None``/empty -> ``None`` (reviewed as not sensitive)."""
    if label is None:
        return None
    text = str(label).strip().upper().replace("-", "_").replace(" ", "_")
    if not text or text in ("NONE", "NULL", "PUBLIC"):
        return None
    return text
