"""A labelled structured-data set for masking quality, generated deterministically, and its evaluation.

Tables look like the ones applications keep (customers, accounts, cards, orders, devices, tickets, logs...):
many column names, value kinds and innocent look-alikes (order numbers shaped like SSNs, firmware versions
shaped like IP addresses, EAN barcodes and tracking numbers next to card numbers, prose with "at" and "dot").
Every cell carries its truth: the kind of sensitive value it is or holds, or ``None`` for innocent.

The evaluation runs the real library with zero configuration: each table goes into an in-memory SQLite
database, a governed connection in ``production`` reads ``SELECT *``, and each returned cell is compared with
what was stored. A cell counts as *masked* when it comes back changed; its *predicted kind* is its column's
label, or, for free text, the labels of the spans replaced in it.

    python tests/data/masking_eval.py            # the table in docs/masking.md

governed_db has no named-entity model (no spaCy, decision 0090): a person's name is found by its column's name, a
role's name over name-shaped values, a list of common given names (decision 0394) or of surnames, or a cue before it
(``Name:``, ``Dear``, ``signed,``: decision 0409) — names inside prose are in the set in ``crm_activity`` and
``support_letters``, with places, things and greetings to no one beside them.
"""

from __future__ import annotations

import random
import re
import sqlite3
import string
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SEED = 20261206
ROWS = 60

FIRST = [
    "Alice",
    "Bob",
    "Carol",
    "David",
    "Erin",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Victor",
    "Walter",
    "Yasmin",
    "Zoe",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Mia",
    "Lucas",
    "Sofia",
    "Mateo",
    "Amara",
    "Kenji",
    "Priya",
    "Omar",
    "Fatima",
    "Chen",
    "Ingrid",
    "Pierre",
]
LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Nakamura",
    "Okafor",
    "Schmidt",
    "Dubois",
    "Rossi",
    "Kowalski",
    "Novak",
]
CITIES = [
    "Paris",
    "Lyon",
    "Berlin",
    "Munich",
    "London",
    "Leeds",
    "Boston",
    "Denver",
    "Austin",
    "Madrid",
    "Oslo",
    "Porto",
    "Kyoto",
    "Lagos",
    "Lima",
]
DOMAINS = ("example.com", "corp.io", "mail.example.org", "acme.co.uk", "uni.edu")
TLDS_OBFUSCATED = ("example dot com", "corp dot io", "acme dot co dot uk")


@dataclass
class Column:
    name: str
    declared: str
    make: Callable[[random.Random, int], tuple[Any, str | None]]


@dataclass
class Table:
    name: str
    columns: list[Column]
    rows: list[list[tuple[Any, str | None]]] = field(default_factory=list)


# -- value makers: (value, truth kind or None) -----------------------------------------------------------------
def _person(r: random.Random) -> str:
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


def _luhn_complete(prefix: str, length: int, r: random.Random) -> str:
    body = prefix + "".join(r.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        digits = body + check
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def _card(r: random.Random) -> str:
    prefix, length = r.choice((("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16)))
    digits = _luhn_complete(prefix, length, r)
    style = r.random()
    if style < 0.4:
        return digits
    sep = " " if style < 0.7 else "-"
    if length == 15:
        return sep.join((digits[:4], digits[4:10], digits[10:]))
    return sep.join(digits[i : i + 4] for i in range(0, 16, 4))


def _iban(r: random.Random) -> str:
    country, bban = r.choice(
        (
            ("DE", "".join(r.choice(string.digits) for _ in range(18))),
            (
                "GB",
                "".join(r.choice(string.ascii_uppercase) for _ in range(4))
                + "".join(r.choice(string.digits) for _ in range(14)),
            ),
            ("FR", "".join(r.choice(string.digits) for _ in range(23))),
            (
                "NL",
                "".join(r.choice(string.ascii_uppercase) for _ in range(4))
                + "".join(r.choice(string.digits) for _ in range(10)),
            ),
        )
    )
    table = {c: str(i) for i, c in enumerate(string.digits + string.ascii_uppercase)}
    num = int("".join(table[c] for c in bban + country + "00"))
    iban = f"{country}{98 - num % 97:02d}{bban}"
    style = r.random()
    if style < 0.3:
        iban = iban.lower()
    if r.random() < 0.4:
        iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def _ssn_digits(r: random.Random) -> str:
    while True:
        area = r.randint(1, 899)
        if area != 666:
            return f"{area:03d}{r.randint(1, 99):02d}{r.randint(1, 9999):04d}"


def _phone(r: random.Random) -> str:
    kind = r.random()
    if kind < 0.5:
        area = r.choice((212, 415, 646, 312, 617, 303))
        return r.choice(("+1 {a}-{e}-{n:04d}", "({a}) {e}-{n:04d}", "{a}.{e}.{n:04d}")).format(
            a=area, e=r.randint(201, 989), n=r.randint(0, 9999)
        )
    if kind < 0.8:
        return f"+44 20 {r.randint(7000, 8999)} {r.randint(0, 9999):04d}"
    return f"+49 30 {r.randint(2000000, 9999999)}"


def _email(r: random.Random) -> str:
    user = f"{r.choice(FIRST).lower()}.{r.choice(LAST).lower()}{r.randint(1, 99)}"
    return f"{user}@{r.choice(DOMAINS)}"


def _ipv4(r: random.Random) -> str:
    return f"{r.choice((23, 51, 81, 92, 145, 185, 203))}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def _alnum(r: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(r.choice(alphabet) for _ in range(n))


def _secret(r: random.Random) -> str:
    return r.choice(
        (
            lambda: "AKIA" + _alnum(r, 16, string.ascii_uppercase + string.digits),
            lambda: "ghp_" + _alnum(r, 36),
            lambda: (
                "xoxb-" + f"{r.randint(10**11, 10**12 - 1)}-{r.randint(10**11, 10**12 - 1)}-" + _alnum(r, 24)
            ),
            lambda: "sk_live_" + _alnum(r, 24),
            lambda: "SG." + _alnum(r, 22) + "." + _alnum(r, 43),
            lambda: "glpat-" + _alnum(r, 20),
            lambda: "npm_" + _alnum(r, 36),
        )
    )()


def _nino(r: random.Random) -> str:
    prefix = r.choice(("AB", "CE", "JG", "KL", "PR", "SW", "WX"))
    digits = "".join(r.choice(string.digits) for _ in range(6))
    suffix = r.choice("ABCD")
    if r.random() < 0.5:
        return f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
    return f"{prefix}{digits}{suffix}"


def _version(r: random.Random) -> str:
    return f"{r.randint(1, 12)}.{r.randint(0, 9)}.{r.randint(0, 20)}.{r.randint(0, 99)}"


def sensitive(
    kind: str, make: Callable[[random.Random], Any]
) -> Callable[[random.Random, int], tuple[Any, str | None]]:
    return lambda r, i: (make(r), kind)


def innocent(make: Callable[[random.Random], Any]) -> Callable[[random.Random, int], tuple[Any, str | None]]:
    return lambda r, i: (make(r), None)


def row_id() -> Callable[[random.Random, int], tuple[Any, str | None]]:
    return lambda r, i: (i + 1, None)


def mixed(
    choices: list[tuple[float, str | None, Callable[[random.Random], str]]],
) -> Callable[[random.Random, int], tuple[Any, str | None]]:
    """Free text: each choice (weight, truth kind, maker) picked by weight."""
    total = sum(w for w, _, _ in choices)

    def make(r: random.Random, i: int) -> tuple[Any, str | None]:
        x = r.random() * total
        for w, kind, fn in choices:
            x -= w
            if x <= 0:
                return fn(r), kind
        return choices[-1][2](r), choices[-1][1]

    return make


# -- free-text fragments ---------------------------------------------------------------------------------------
def _ticket_pii(kind: str) -> Callable[[random.Random], str]:
    def make(r: random.Random) -> str:
        if kind == "EMAIL":
            user = f"{r.choice(FIRST).lower()}{r.randint(1, 99)}"
            return r.choice(
                (
                    f"please reply to {_email(r)} today",
                    f"my address is {user} at {r.choice(TLDS_OBFUSCATED)}",
                    f"write to {user} [at] {r.choice(('example', 'corp'))} [dot] com",
                    f"contact {user}(at){r.choice(('example', 'corp'))}(dot)org for access",
                )
            )
        if kind == "PHONE":
            return f"customer asked for a call back on {_phone(r)}"
        if kind == "PASSWORD":
            pw = r.choice(("hunter2", "s3cret!", "Tr0ub4dor", "letmein42", "qwerty7", "p@ss"))
            return r.choice((f"password: {pw}", f"temporary pwd={pw} set by support", f"my password is {pw}"))
        if kind == "SECRET":
            return f"rotated the key {_secret(r)} after the incident"
        if kind == "CREDIT_CARD":
            return f"refund to card {_card(r)} approved"
        if kind == "IBAN":
            return f"wire to {_iban(r)} on friday"
        if kind == "US_SSN":
            return (
                f"verified ssn {_ssn_digits(r)} by phone"
                if r.random() < 0.5
                else ("SSN on file: " + "-".join((lambda d: (d[:3], d[3:5], d[5:]))(_ssn_digits(r))))
            )
        if kind == "IP_ADDRESS":
            return f"login from {_ipv4(r)} blocked"
        raise AssertionError(kind)

    return make


def _ticket_innocent(r: random.Random) -> str:
    return r.choice(
        (
            f"firmware {_version(r)} crashed after the update",
            f"upgraded to version {_version(r)} and it works",
            "look at the dot product in the report",
            "visit us at example.com for the manual",
            f"order {r.randint(10**8, 10**9 - 1)} shipped late",
            "password reset requested by the user",
            "my password is wrong, please help",
            f"meeting at 10:{r.randint(10, 59)} on 2024-0{r.randint(1, 9)}-1{r.randint(0, 9)}",
            f"see https://docs.example.com/guide/{r.randint(1, 99)} for details",
            f"build {r.randint(1000, 9999)} took {r.randint(2, 59)} s",
            f"invoice INV-2024-{r.randint(1, 9999):04d} paid in full",
            f"tracking 1Z{_alnum(r, 16, string.ascii_uppercase + string.digits)} in transit",
            "the printer at floor 3 is out of toner",
            f"commit {_alnum(r, 40, '0123456789abcdef')} fixed it",
        )
    )


def _log_innocent(r: random.Random) -> str:
    return r.choice(
        (
            f"request {_alnum(r, 8, '0123456789abcdef')}-{_alnum(r, 4, '0123456789abcdef')}-4{_alnum(r, 3, '0123456789abcdef')}-a{_alnum(r, 3, '0123456789abcdef')}-{_alnum(r, 12, '0123456789abcdef')} done in {r.randint(1, 900)} ms",
            f"agent v {_version(r)} started",
            f"kernel {_version(r)} loaded",
            f"cache hit ratio {r.random():.2f}",
            f"job {r.randint(1, 10**6)} finished with status 0",
            f"sha256 {_alnum(r, 64, '0123456789abcdef')}",
            f"OID 1.3.6.1.4.1.{r.randint(1, 60000)} polled",
            f"retry {r.randint(1, 5)} of 5 after {r.randint(1, 30)} s",
        )
    )


def _description(r: random.Random) -> str:
    return r.choice(
        (
            "Stainless bottle, keeps drinks cold at the beach",
            "Notebook with a dot grid, 120 pages",
            "Charger rated at 65 W, USB-C",
            f"Compatible with firmware {_version(r)} and later",
            "Lamp with three brightness levels",
            "Backpack, 20 l, fits a 15 in laptop",
            f"Model {r.randint(100, 999)}-{_alnum(r, 2, string.ascii_uppercase)}, two-year warranty",
        )
    )


def _config_value(r: random.Random) -> tuple[str, str | None]:
    if r.random() < 0.45:
        return f"api_key={_secret(r)}" if r.random() < 0.3 else _secret(r), "SECRET"
    return r.choice(
        (
            "timeout=30",
            "region=us-east-1",
            "retries=3",
            "mode=batch",
            f"endpoint=https://api.example.com/v{r.randint(1, 3)}",
        )
    ), None


def tables() -> list[Table]:
    """The evaluation set: the same tables, rows and truth on every call."""
    defs = [
        Table(
            "customers",
            [
                Column("id", "INTEGER", row_id()),
                Column("full_name", "TEXT", sensitive("PERSON_NAME", _person)),
                Column("email", "TEXT", sensitive("EMAIL", _email)),
                Column("phone", "TEXT", sensitive("PHONE", _phone)),
                Column("ssn", "TEXT", sensitive("US_SSN", _ssn_digits)),
                Column(
                    "dob",
                    "DATE",
                    sensitive(
                        "DATE_OF_BIRTH",
                        lambda r: f"{r.randint(1940, 2005)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
                    ),
                ),
                Column("city", "TEXT", innocent(lambda r: r.choice(CITIES))),
                Column("status", "TEXT", innocent(lambda r: r.choice(("active", "churned", "trial")))),
            ],
        ),
        Table(
            "accounts",
            [
                Column("id", "INTEGER", row_id()),
                Column("account_holder", "TEXT", sensitive("PERSON_NAME", _person)),
                Column("iban", "TEXT", sensitive("IBAN", _iban)),
                Column("balance", "REAL", innocent(lambda r: round(r.uniform(0, 90000), 2))),
                Column("currency", "TEXT", innocent(lambda r: r.choice(("EUR", "GBP", "USD")))),
                Column(
                    "opened_on",
                    "DATE",
                    innocent(lambda r: f"20{r.randint(10, 24)}-0{r.randint(1, 9)}-1{r.randint(0, 9)}"),
                ),
            ],
        ),
        Table(
            "cards",
            [
                Column("id", "INTEGER", row_id()),
                Column("cardholder", "TEXT", sensitive("PERSON_NAME", _person)),
                Column("card_number", "TEXT", sensitive("CREDIT_CARD", _card)),
                Column("brand", "TEXT", innocent(lambda r: r.choice(("visa", "mastercard", "amex")))),
                Column(
                    "barcode", "TEXT", innocent(lambda r: "".join(r.choice(string.digits) for _ in range(13)))
                ),
            ],
        ),
        Table(
            "users",
            [
                Column("id", "INTEGER", row_id()),
                Column("display_name", "TEXT", sensitive("PERSON_NAME", _person)),
                Column("contact", "TEXT", mixed([(1, "EMAIL", _email), (1, "PHONE", _phone)])),
                Column(
                    "password_hash",
                    "TEXT",
                    sensitive(
                        "PASSWORD",
                        lambda r: "$2b$12$" + _alnum(r, 53, string.ascii_letters + string.digits + "./"),
                    ),
                ),
                Column("api_key", "TEXT", sensitive("SECRET", _secret)),
                Column("last_login_ip", "TEXT", sensitive("IP_ADDRESS", _ipv4)),
                Column("role", "TEXT", innocent(lambda r: r.choice(("admin", "viewer", "editor")))),
                Column("locale", "TEXT", innocent(lambda r: r.choice(("en-US", "fr-FR", "de-DE")))),
            ],
        ),
        Table(
            "devices",
            [
                Column("id", "INTEGER", row_id()),
                Column("hostname", "TEXT", innocent(lambda r: f"web-{r.randint(1, 40):02d}.internal")),
                Column("firmware", "TEXT", innocent(_version)),
                Column("firmware_version", "TEXT", innocent(_version)),
                Column(
                    "serial_number",
                    "TEXT",
                    innocent(lambda r: "SN-" + _alnum(r, 8, string.ascii_uppercase + string.digits)),
                ),
                Column("model", "TEXT", innocent(lambda r: r.choice(("R-200", "R-300X", "Edge 5")))),
                Column("mgmt_ip", "TEXT", sensitive("IP_ADDRESS", _ipv4)),
            ],
        ),
        Table(
            "orders",
            [
                Column("id", "INTEGER", row_id()),
                Column("order_no", "TEXT", innocent(lambda r: str(r.randint(10**8, 10**9 - 1)))),
                Column("invoice_no", "TEXT", innocent(lambda r: str(r.randint(10**9, 10**10 - 1)))),
                Column(
                    "tracking_number",
                    "TEXT",
                    innocent(lambda r: "1Z" + _alnum(r, 16, string.ascii_uppercase + string.digits)),
                ),
                Column("sku", "TEXT", innocent(lambda r: f"SKU-{r.randint(10000, 99999)}")),
                Column("amount", "REAL", innocent(lambda r: round(r.uniform(1, 900), 2))),
                Column(
                    "shipped_on",
                    "DATE",
                    innocent(lambda r: f"2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"),
                ),
            ],
        ),
        Table(
            "tickets",
            [
                Column("id", "INTEGER", row_id()),
                Column(
                    "subject",
                    "TEXT",
                    innocent(lambda r: r.choice(("Login issue", "Refund", "Shipping delay", "Bug report"))),
                ),
                Column(
                    "body",
                    "TEXT",
                    mixed(
                        [
                            (6, None, _ticket_innocent),
                            *[
                                (1, k, _ticket_pii(k))
                                for k in (
                                    "EMAIL",
                                    "PHONE",
                                    "PASSWORD",
                                    "SECRET",
                                    "CREDIT_CARD",
                                    "IBAN",
                                    "US_SSN",
                                    "IP_ADDRESS",
                                )
                            ],
                        ]
                    ),
                ),
                Column("priority", "TEXT", innocent(lambda r: r.choice(("low", "normal", "high")))),
            ],
        ),
        Table(
            "payouts",
            [
                Column("id", "INTEGER", row_id()),
                Column("holder", "TEXT", sensitive("PERSON_NAME", _person)),
                Column("bank_iban", "TEXT", sensitive("IBAN", _iban)),
                Column(
                    "reference",
                    "TEXT",
                    innocent(lambda r: f"PO-{r.randint(2020, 2025)}-{r.randint(1, 99999):05d}"),
                ),
                Column("amount", "REAL", innocent(lambda r: round(r.uniform(10, 5000), 2))),
            ],
        ),
        Table(
            "integrations",
            [
                Column("id", "INTEGER", row_id()),
                Column(
                    "service",
                    "TEXT",
                    innocent(lambda r: r.choice(("sendgrid", "github", "slack", "stripe", "aws"))),
                ),
                Column("settings", "TEXT", lambda r, i: _config_value(r)),
            ],
        ),
        Table(
            "employees",
            [
                Column("id", "INTEGER", row_id()),
                Column("first_name", "TEXT", sensitive("PERSON_NAME", lambda r: r.choice(FIRST))),
                Column("last_name", "TEXT", sensitive("PERSON_NAME", lambda r: r.choice(LAST))),
                Column(
                    "social_security_number",
                    "TEXT",
                    sensitive("US_SSN", lambda r: (lambda d: f"{d[:3]}-{d[3:5]}-{d[5:]}")(_ssn_digits(r))),
                ),
                Column(
                    "department", "TEXT", innocent(lambda r: r.choice(("Sales", "R&D", "Ops", "Finance")))
                ),
                Column("manager_id", "INTEGER", innocent(lambda r: r.randint(1, 60))),
            ],
        ),
        Table(
            "logs",
            [
                Column("id", "INTEGER", row_id()),
                Column("level", "TEXT", innocent(lambda r: r.choice(("INFO", "WARN", "ERROR")))),
                Column(
                    "message",
                    "TEXT",
                    mixed(
                        [
                            (9, None, _log_innocent),
                            (1, "IP_ADDRESS", lambda r: f"connection from {_ipv4(r)} refused"),
                            (1, "EMAIL", lambda r: f"mail to {_email(r)} bounced"),
                        ]
                    ),
                ),
            ],
        ),
        Table(
            "products",
            [
                Column("id", "INTEGER", row_id()),
                Column(
                    "name",
                    "TEXT",
                    innocent(lambda r: r.choice(("Bottle", "Notebook", "Charger", "Lamp", "Backpack"))),
                ),
                Column("description", "TEXT", innocent(_description)),
                Column(
                    "ean", "TEXT", innocent(lambda r: "".join(r.choice(string.digits) for _ in range(13)))
                ),
                Column(
                    "isbn",
                    "TEXT",
                    innocent(lambda r: "978-" + "".join(r.choice(string.digits) for _ in range(10))),
                ),
                Column("version", "TEXT", innocent(_version)),
                Column("price", "REAL", innocent(lambda r: round(r.uniform(3, 300), 2))),
            ],
        ),
        Table(
            "contacts",
            [
                Column("id", "INTEGER", row_id()),
                Column("name", "TEXT", sensitive("PERSON_NAME", _person)),
                Column("recipient", "TEXT", sensitive("PERSON_NAME", _person)),
                Column("mobile", "TEXT", sensitive("PHONE", _phone)),
                Column(
                    "email_address",
                    "TEXT",
                    sensitive("EMAIL", lambda r: _email(r).upper() if r.random() < 0.2 else _email(r)),
                ),
                Column(
                    "company", "TEXT", innocent(lambda r: r.choice(("Acme", "Globex", "Initech", "Umbrella")))
                ),
            ],
        ),
        # people under a role's name, beside teams, companies and statuses under the same kind of names (issue 12:
        # "names under display_name, holder and similar"; decision 0381)
        Table(
            "tasks",
            [
                Column("id", "INTEGER", row_id()),
                Column("title", "TEXT", innocent(lambda r: f"{r.choice(('Fix', 'Ship', 'Review'))} "
                                                           f"{r.choice(('Login', 'Billing', 'Search'))} Page")),
                Column("author", "TEXT", sensitive("PERSON_NAME", _person)),
                Column("assignee", "TEXT", sensitive("PERSON_NAME", _person)),
                Column("created_by", "TEXT", sensitive("PERSON_NAME", _person)),
                Column("owner", "TEXT", innocent(lambda r: r.choice(("Data Platform", "Payments Team", "Search")))),
                Column("customer", "TEXT", innocent(
                    lambda r: f"{r.choice(('Acme', 'Globex', 'Initech', 'Hooli'))} "
                              f"{r.choice(('Corp', 'Inc', 'Ltd', 'Group'))}")),
                Column("status", "TEXT", innocent(lambda r: r.choice(("In Review", "Done", "Blocked")))),
                Column("customer_city", "TEXT", innocent(
                    lambda r: r.choice(("Salt Lake City", "San Francisco", "Los Angeles", "Santa Fe", "El Paso",
                                        "New York", "Las Vegas")))),
                Column("repo", "TEXT", innocent(lambda r: f"git@github.com:acme/{r.choice(('api', 'web', 'cli'))}.git")),
            ],
        ),
        # UK staff records: National Insurance numbers, PINs stored as numbers, passphrases, a cache URL with a
        # password and no user
        Table(
            "staff_security",
            [
                Column("id", "INTEGER", row_id()),
                Column("ni_number", "TEXT", sensitive("NATIONAL_ID", _nino)),
                Column("pin", "INTEGER", sensitive("PASSWORD", lambda r: r.randint(1000, 9999))),
                Column("passphrase", "TEXT", sensitive(
                    "PASSWORD", lambda r: " ".join(r.choice(("correct", "horse", "battery", "staple", "blue"))
                                                   for _ in range(4)))),
                Column("cache_url", "TEXT", mixed([
                    (0.5, "SECRET", lambda r: f"redis://:{_alnum(r, 10)}@cache-{r.randint(1, 9)}:6379/0"),
                    (0.5, None, lambda r: f"redis://cache-{r.randint(1, 9)}:6379/{r.randint(0, 15)}"),
                ])),
                Column("badge", "TEXT", innocent(lambda r: f"{r.choice(string.ascii_uppercase)}{r.randint(1000, 9999)}")),
                # a product code in a NINO's compact shape
                Column("locker_code", "TEXT", innocent(lambda r: f"{r.choice(('AB', 'CE', 'JG'))}{r.randint(100000, 999999)}"
                                                                 f"{r.choice('ABCD')}")),
            ],
        ),
    ]
    defs += production_tables()
    defs += world_tables()
    for t in defs:
        r = random.Random(f"{SEED}:{t.name}")
        t.rows = [[c.make(r, i) for c in t.columns] for i in range(ROWS)]
    return defs


# -- production-like schemas in several languages (decision 0394) ----------------------------------------------
FIRST_EU = ["Jean", "Marie", "Chloé", "François", "Hans", "Jürgen", "Anke", "José", "María", "Lucía", "Søren",
            "Łukasz", "Zoë", "Giulia", "Matteo", "Inès", "Björn", "Agnès"]
LAST_EU = ["Dupont", "Lefèvre", "Müller", "Schäfer", "García", "Fernández", "Núñez", "Rossi", "Nowak", "de la Cruz",
           "van der Berg", "Ødegaard", "Martin", "Bernard", "Weiß"]
CITIES_EU = ["Paris", "Lyon", "Berlin", "München", "Madrid", "Sevilla", "Köln", "Bordeaux", "Valencia"]


def _person_eu(r: random.Random) -> str:
    return f"{r.choice(FIRST_EU)} {r.choice(LAST_EU)}"


def _dni(r: random.Random) -> str:
    if r.random() < 0.3:
        prefix = r.choice("XYZ")
        n = r.randint(1000000, 9999999)
        return f"{prefix}{n:07d}{'TRWAGMYFPDXBNJZSQVHLCKE'[int(str('XYZ'.index(prefix)) + f'{n:07d}') % 23]}"
    n = r.randint(10000000, 99999999)
    return f"{n}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"


def _nir(r: random.Random) -> str:
    body = f"{r.choice('12')}{r.randint(40, 99)}{r.randint(1, 12):02d}{r.randint(1, 95):02d}{r.randint(1, 999):03d}{r.randint(1, 999):03d}"
    key = 97 - int(body) % 97
    if r.random() < 0.5:
        return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}"
    return f"{body}{key:02d}"


def _phone_fr(r: random.Random) -> str:
    pairs = " ".join(f"{r.randint(0, 99):02d}" for _ in range(4))
    return r.choice((f"06 {pairs}", f"+33 6 {pairs}", f"07 {pairs}", f"+33 1 {pairs}"))


def _phone_de(r: random.Random) -> str:
    return r.choice((f"0171 {r.randint(1000000, 9999999)}", f"+49 30 {r.randint(1000000, 9999999)}",
                     f"+49 (0)89 {r.randint(100000, 999999)}-{r.randint(10, 99)}"))


def _phone_es(r: random.Random) -> str:
    return r.choice((f"+34 6{r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)} {r.randint(10, 99)}",
                     f"6{r.randint(10, 99)} {r.randint(100, 999)} {r.randint(100, 999)}"))


def _iban_es(r: random.Random) -> str:
    bban = "".join(r.choice(string.digits) for _ in range(20))
    table = {c: str(i) for i, c in enumerate(string.digits + string.ascii_uppercase)}
    num = int("".join(table[c] for c in bban + "ES00"))
    iban = f"ES{98 - num % 97:02d}{bban}"
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if r.random() < 0.5 else iban


def _dob_text(r: random.Random, style: str) -> str:
    y, m, d = r.randint(1940, 2005), r.randint(2, 12), r.randint(2, 28)
    return {"de": f"{d:02d}.{m:02d}.{y}", "es": f"{d:02d}/{m:02d}/{y}", "us": f"{m}/{d}/{y}"}[style]


def _mac(r: random.Random) -> str:
    octets = [r.randint(0, 255) for _ in range(6)]
    sep = r.choice((":", "-"))
    text = sep.join(f"{o:02x}" for o in octets)
    return text.upper() if r.random() < 0.5 else text


def _coordinate(r: random.Random, limit: int) -> float:
    return round(r.uniform(-limit, limit), r.randint(4, 6))


def _hex(r: random.Random, n: int) -> str:
    return _alnum(r, n, "0123456789abcdef")


def _uuid(r: random.Random) -> str:
    return f"{_hex(r, 8)}-{_hex(r, 4)}-4{_hex(r, 3)}-a{_hex(r, 3)}-{_hex(r, 12)}"


def _timestamp(r: random.Random) -> str:
    return (f"2024-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:"
            f"{r.randint(0, 59):02d}.{r.randint(0, 999999):06d}Z")


_JWT_HEAD = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"


def _cloud_secret(r: random.Random) -> str:
    return r.choice((
        lambda: f"Authorization: Bearer {_JWT_HEAD}.eyJ{_alnum(r, 40)}.{_alnum(r, 43)}",
        lambda: "-----BEGIN RSA PRIVATE KEY-----\nMIIEow" + _alnum(r, 60) + "\n-----END RSA PRIVATE KEY-----",
        lambda: "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF" + _alnum(r, 40) + "\n-----END PGP PRIVATE KEY BLOCK-----",
        lambda: ('{"type": "service_account", "project_id": "acme-prod", "private_key": "-----BEGIN PRIVATE KEY-----'
                 '\\nMIIEv' + _alnum(r, 40) + '\\n-----END PRIVATE KEY-----\\n"}'),
        lambda: ("DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=" + _alnum(r, 86) + "==;"
                 "EndpointSuffix=core.windows.net"),
        lambda: (f"https://acme.blob.core.windows.net/exports/{r.randint(1, 99)}.csv?sv=2022-11-02&ss=b&sp=r&"
                 f"se=2025-01-01T00:00:00Z&sig={_alnum(r, 40)}%3D"),
        lambda: f"AWS_SECRET_ACCESS_KEY={_alnum(r, 40, string.ascii_letters + string.digits + '/+')}",
        lambda: f"xoxp-{r.randint(10**11, 10**12 - 1)}-{r.randint(10**11, 10**12 - 1)}-{_alnum(r, 32)}",
        lambda: f"github_pat_{_alnum(r, 22)}_{_alnum(r, 59)}",
        lambda: f"rk_live_{_alnum(r, 24)}",
    ))()


def _devops_innocent(r: random.Random) -> str:
    return r.choice((
        f"image sha256:{_hex(r, 64)} pushed",
        f"artifact md5 {_hex(r, 32)} verified",
        f"deploy {_uuid(r)} finished at {_timestamp(r)}",
        f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC{_alnum(r, 20)} deploy@ci",
        f"release v{r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 99)} tagged",
        f"terraform plan: {r.randint(1, 40)} to add, {r.randint(0, 9)} to change",
        "token rotation scheduled for next week",
        f"git {_hex(r, 40)} merged into main",
    ))


def _event_text(r: random.Random) -> tuple[str, str | None]:
    x = r.random()
    if x < 0.2:
        return f"association from {_mac(r)} accepted", "MAC_ADDRESS"
    if x < 0.4:
        return f"gps fix {r.uniform(-60, 60):.{r.randint(4, 6)}f}, {r.uniform(-170, 170):.5f} hdop 0.9", "LOCATION"
    return r.choice((
        f"battery {r.randint(5, 100)} %",
        f"reboot at {_timestamp(r)}",
        f"firmware {_version(r)} installed",
        f"temperature {r.uniform(-10, 40):.2f} C",
        f"queue depth {r.randint(0, 500)}",
    )), None


def _commentaire(r: random.Random) -> tuple[str, str | None]:
    x = r.random()
    if x < 0.15:
        return f"rappeler le client au {_phone_fr(r)}", "PHONE"
    if x < 0.3:
        return f"mot de passe : {r.choice(('soleil42', 'Chaton!9', 'azerty12'))}", "PASSWORD"
    if x < 0.4:
        return f"Kennwort={r.choice(('Sommer2024!', 'Geheim77'))} im Ticket", "PASSWORD"
    if x < 0.5:
        return f"écrire à {r.choice(FIRST).lower()}.{r.choice(LAST).lower()}@exemple.fr", "EMAIL"
    return r.choice((
        f"commande {r.randint(100000, 999999)} livrée le {r.randint(2, 28)}/0{r.randint(1, 9)}/2024",
        "le client souhaite changer de forfait",
        f"facture FA-{r.randint(2020, 2025)}-{r.randint(1, 9999):04d} réglée",
        "mot de passe oublié, lien envoyé",
        f"colis {r.randint(10**9, 10**10 - 1)} en transit",
        f"version {r.randint(1, 5)}.{r.randint(0, 9)}.{r.randint(0, 9)} installée",
    )), None


def _clinical(r: random.Random) -> tuple[str, str | None]:
    x = r.random()
    if x < 0.15:
        return f"pt asked for a call back on {_phone(r)}", "PHONE"
    if x < 0.25:
        d = _ssn_digits(r)
        return f"SSN {d[:3]}-{d[3:5]}-{d[5:]} verified with insurer", "US_SSN"
    return r.choice((
        f"BP {r.randint(100, 160)}/{r.randint(60, 100)}, HR {r.randint(50, 110)}",
        f"HbA1c {r.uniform(5, 10):.1f} %, follow-up in {r.randint(2, 12)} weeks",
        f"ICD-10 E11.{r.randint(0, 9)} reviewed",
        f"lot {r.randint(100000, 999999)} administered",
        "no known drug allergies",
    )), None


def _hr_note(r: random.Random) -> tuple[str, str | None]:
    x = r.random()
    if x < 0.12:
        return f"passport no. {r.choice('XCP')}{r.randint(10**7, 10**8 - 1)} checked by HR", "NATIONAL_ID"
    if x < 0.22:
        return f"driving licence {r.choice(LAST).upper()[:5]:9<5}{r.randint(100000, 999999)}SM9IJ on file", "NATIONAL_ID"
    if x < 0.32:
        return f"UTR {r.randint(10000, 99999)} {r.randint(10000, 99999)} for self-assessment", "NATIONAL_ID"
    if x < 0.45:
        return r.choice((f"DOB: {_dob_text(r, 'us')}", f"born {_dob_text(r, 'es')} in {r.choice(CITIES)}",
                         f"geboren am {_dob_text(r, 'de')}")), "DATE_OF_BIRTH"
    return r.choice((
        f"license renewal {r.randint(2020, 2024)}-{r.randint(2025, 2027)} approved",
        f"DL speed {r.randint(10, 900)} Mbps at the branch",
        "passport office closed, visa appointment moved",
        f"onboarding started {r.randint(2, 28)}/0{r.randint(1, 9)}/2024",
        f"badge {r.randint(100000, 999999)} issued",
        "licensed under GPL-3, see legal",
    )), None


def _crm_note(r: random.Random) -> tuple[str, str | None]:
    x = r.random()
    if x < 0.3:
        person = _person(r) if r.random() < 0.5 else _person_eu(r)
        return r.choice((f"Spoke to {person} about the renewal", f"{person} will call back on Monday",
                         f"Sent the quote to {person}")), "PERSON_NAME"
    return r.choice((
        "Meeting at the Grace Street office",
        "Parcel left at Victoria Station depot",
        "Will Power seminar booked for the team",
        "Renewal for Acme Corp signed",
        "Demo of Data Platform went well",
        "Customer prefers Google Cloud Platform",
        "Invoice sent, Net 30",
        "Paul Revere House tour for the offsite",
        "Emma Stone Award ceremony sponsorship",
        "Jan Update call moved",
    )), None


def production_tables() -> list[Table]:
    """CRM, HR, payments, healthcare, auth, IoT, DevOps and catalogue tables as European and US applications keep
    them: column names in French, German and Spanish, national ids with their checksums (NIR, DNI/NIE), dates of
    birth day-first and as numbers, MAC addresses and coordinates, cloud keys in text, people under role columns
    (officers too) — and innocent look-alikes: UUIDs, timestamps with microseconds, digests, ISBNs, SKUs, versions,
    amounts to four places, public SSH keys."""
    return [
        Table("clients_fr", [
            Column("id", "INTEGER", row_id()),
            Column("prenom", "TEXT", sensitive("PERSON_NAME", lambda r: r.choice(FIRST_EU))),
            Column("nom", "TEXT", sensitive("PERSON_NAME", lambda r: r.choice(LAST_EU))),
            Column("courriel", "TEXT", sensitive("EMAIL", _email)),
            Column("portable", "TEXT", sensitive("PHONE", _phone_fr)),
            Column("numero_secu", "TEXT", sensitive("NATIONAL_ID", _nir)),
            Column("mot_de_passe", "TEXT", sensitive("PASSWORD", lambda r: r.choice(("soleil42", "Chaton!9")) + str(r.randint(1, 99)))),
            Column("code_postal", "TEXT", sensitive("ADDRESS", lambda r: f"{r.randint(1, 95):02d}{r.randint(0, 999):03d}")),
            Column("ville", "TEXT", innocent(lambda r: r.choice(CITIES_EU))),
            Column("commentaire", "TEXT", lambda r, i: _commentaire(r)),
        ]),
        Table("kunden", [
            Column("id", "INTEGER", row_id()),
            Column("vorname", "TEXT", sensitive("PERSON_NAME", lambda r: r.choice(FIRST_EU))),
            Column("nachname", "TEXT", sensitive("PERSON_NAME", lambda r: r.choice(LAST_EU))),
            Column("geburtsdatum", "TEXT", sensitive("DATE_OF_BIRTH", lambda r: _dob_text(r, "de"))),
            Column("telefon", "TEXT", sensitive("PHONE", _phone_de)),
            Column("steuer_id", "TEXT", sensitive("NATIONAL_ID", lambda r: str(r.randint(10**10, 10**11 - 1)))),
            Column("straße", "TEXT", sensitive("ADDRESS", lambda r: f"{r.choice(('Haupt', 'Garten', 'Berg'))}straße {r.randint(1, 120)}")),
            Column("stadt", "TEXT", innocent(lambda r: r.choice(CITIES_EU))),
            Column("kundennummer", "TEXT", innocent(lambda r: f"K-{r.randint(100000, 999999)}")),
        ]),
        Table("empleados", [
            Column("id", "INTEGER", row_id()),
            Column("nombre", "TEXT", sensitive("PERSON_NAME", lambda r: r.choice(FIRST_EU))),
            Column("apellidos", "TEXT", sensitive("PERSON_NAME", lambda r: f"{r.choice(LAST_EU)} {r.choice(LAST_EU)}")),
            Column("dni", "TEXT", sensitive("NATIONAL_ID", _dni)),
            Column("fecha_nacimiento", "TEXT", sensitive("DATE_OF_BIRTH", lambda r: _dob_text(r, "es"))),
            Column("iban", "TEXT", sensitive("IBAN", _iban_es)),
            Column("telefono", "TEXT", sensitive("PHONE", _phone_es)),
            Column("departamento", "TEXT", innocent(lambda r: r.choice(("Ventas", "Finanzas", "Logística")))),
            Column("codigo_empleado", "TEXT", innocent(lambda r: f"EMP{r.randint(1000, 9999)}{r.choice('ABC')}")),
        ]),
        Table("iot_readings", [
            Column("id", "INTEGER", row_id()),
            Column("device_mac", "TEXT", sensitive("MAC_ADDRESS", _mac)),
            Column("lat", "REAL", sensitive("LOCATION", lambda r: _coordinate(r, 70))),
            Column("lng", "REAL", sensitive("LOCATION", lambda r: _coordinate(r, 179))),
            Column("device_uuid", "TEXT", innocent(_uuid)),
            Column("recorded_at", "TEXT", innocent(_timestamp)),
            Column("temperature", "REAL", innocent(lambda r: round(r.uniform(-10, 40), 4))),
            Column("firmware_version", "TEXT", innocent(_version)),
            Column("event", "TEXT", lambda r, i: _event_text(r)),
        ]),
        Table("auth_sessions", [
            Column("id", "INTEGER", row_id()),
            Column("user_id", "INTEGER", innocent(lambda r: r.randint(1, 5000))),
            Column("session_token", "TEXT", sensitive("SECRET", lambda r: _alnum(r, 43, string.ascii_letters + string.digits + "-_"))),
            Column("cookie", "TEXT", sensitive("SECRET", lambda r: f"sessionid={_alnum(r, 32, string.ascii_lowercase + string.digits)}; Path=/; HttpOnly")),
            Column("mfa_seed", "TEXT", sensitive("SECRET", lambda r: _alnum(r, 16, string.ascii_uppercase + "234567"))),
            Column("ip", "TEXT", sensitive("IP_ADDRESS", _ipv4)),
            Column("user_agent", "TEXT", innocent(lambda r: f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{r.randint(100, 130)}.0.{r.randint(1000, 6999)}.{r.randint(10, 199)} Safari/537.36")),
            Column("request_id", "TEXT", innocent(_uuid)),
            Column("created_at", "TEXT", innocent(_timestamp)),
        ]),
        Table("patients", [
            Column("id", "INTEGER", row_id()),
            Column("name", "TEXT", sensitive("PERSON_NAME", _person)),
            Column("birth_date", "INTEGER", sensitive("DATE_OF_BIRTH", lambda r: r.randint(1940, 2005) * 10000 + r.randint(2, 12) * 100 + r.randint(2, 28))),
            Column("physician", "TEXT", sensitive("PERSON_NAME", lambda r: f"Dr. {_person(r)}")),
            Column("diagnosis_code", "TEXT", innocent(lambda r: f"E{r.randint(10, 14)}.{r.randint(0, 9)}")),
            Column("clinical_notes", "TEXT", lambda r, i: _clinical(r)),
        ]),
        Table("deploy_log", [
            Column("id", "INTEGER", row_id()),
            Column("entry", "TEXT", mixed([(1, "SECRET", _cloud_secret), (2, None, _devops_innocent)])),
        ]),
        Table("catalog_items", [
            Column("id", "INTEGER", row_id()),
            Column("sku", "TEXT", innocent(lambda r: f"{r.choice(('TSH', 'MUG', 'CAP'))}-{r.randint(100, 999)}-{r.choice(('S', 'M', 'L', 'XL'))}")),
            Column("isbn13", "TEXT", innocent(lambda r: f"978-{r.randint(0, 9)}-{r.randint(10, 99)}-{r.randint(100000, 999999)}-{r.randint(0, 9)}")),
            Column("order_number", "TEXT", innocent(lambda r: f"ORD-2024-{r.randint(1, 999999):06d}")),
            Column("file_md5", "TEXT", innocent(lambda r: _hex(r, 32))),
            Column("release", "TEXT", innocent(lambda r: f"v{r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 99)}")),
            Column("unit_price", "TEXT", innocent(lambda r: f"{r.randint(1, 99)}.{r.randint(0, 99):02d}00, {r.randint(1, 99)}.{r.randint(0, 99):02d}00")),
            Column("updated_at", "TEXT", innocent(_timestamp)),
        ]),
        Table("hr_us", [
            Column("id", "INTEGER", row_id()),
            Column("social", "INTEGER", sensitive("US_SSN", lambda r: int(_ssn_digits(r)))),
            Column("hr_notes", "TEXT", lambda r, i: _hr_note(r)),
            Column("headcount", "INTEGER", innocent(lambda r: r.randint(1, 400))),
        ]),
        # people under a column whose name says nothing, and in prose; novels named after people under a title
        Table("crm_activity", [
            Column("id", "INTEGER", row_id()),
            Column("name", "TEXT", sensitive("PERSON_NAME", lambda r: _person(r) if r.random() < 0.5 else _person_eu(r))),
            Column("note", "TEXT", lambda r, i: _crm_note(r)),
            Column("book_title", "TEXT", innocent(lambda r: r.choice((
                "Anna Karenina", "Jane Eyre", "David Copperfield", "Oliver Twist", "Emma", "Moby Dick",
                "War and Peace", "Little Women", "Daniel Deronda", "Tom Jones")))),
            Column("venue", "TEXT", innocent(lambda r: r.choice((
                "Victoria Hall", "Grace Cathedral", "Albert Hall", "Carnegie Hall", "Paul Street Arena",
                "Royal Exchange")))),
        ]),
        Table("crm_accounts", [
            Column("id", "INTEGER", row_id()),
            Column("company", "TEXT", innocent(lambda r: f"{r.choice(('Acme', 'Globex', 'Initech', 'Hooli'))} {r.choice(('Corp', 'GmbH', 'SA', 'Ltd'))}")),
            Column("ceo", "TEXT", sensitive("PERSON_NAME", _person_eu)),
            Column("account_rep", "TEXT", sensitive("PERSON_NAME", _person)),
            Column("industry", "TEXT", innocent(lambda r: r.choice(("Retail", "Banking", "Health Care", "Public Sector")))),
            Column("website", "TEXT", innocent(lambda r: f"https://www.{r.choice(('acme', 'globex', 'initech'))}.example")),
        ]),
    ]


# -- names beyond the given-name list, addresses in prose, vehicles (decision 0409) ---------------------------------
#: given names and surnames from West Africa, Mesoamerica, Vietnam, China, Korea, South Asia, Iran, Oceania; the
#: last few of each are in neither list (found only by a column's name or a cue in the text)
FIRST_WORLD = ["Oluwaseun", "Chiamaka", "Xochitl", "Itzel", "Thabo", "Wanjiru", "Farhad", "Golnaz", "Aarav",
               "Saanvi", "Kofi", "Siosaia", "Tupaq", "Aroha", "Wiremu", "Anahera", "Ngaio", "Tenzin"]
LAST_WORLD = ["Adeyemi", "Okonkwo", "Ramírez", "Tzompa", "Ndlovu", "Mwangi", "Karimi", "Hosseini", "Iyer", "Nair",
              "Mensah", "Tupou", "Quispe", "Ngata", "Mamani", "Dorje"]
VIETNAMESE = ["Nguyen Thi Minh Khai", "Tran Van Duc", "Pham Thi Thanh Huong", "Le Quang Hieu", "Hoang Ngoc Linh"]
#: product and brand names a ``name`` column of a catalogue holds: some with a word of a name list inside
PRODUCTS_WORLD = ["Ergo Chair", "Desk Lamp Pro", "Minh Long Porcelain Set", "Baker Street Mug", "Park Avenue Lamp",
                  "Sunset Boulevard Poster", "Kyoto Tea Bowl", "Nordic Wool Throw", "Lagos Print Tote", "Aztec Rug",
                  "Saigon Coffee Filter", "Andes Alpaca Scarf", "Masala Chai Tin", "Mosaic Tile Coaster"]


def _person_world(r: random.Random) -> str:
    return r.choice(VIETNAMESE) if r.random() < 0.25 else f"{r.choice(FIRST_WORLD)} {r.choice(LAST_WORLD)}"


_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_VIN_VALUE = {**{str(d): d for d in range(10)},
              **dict(zip("ABCDEFGHJKLMNPRSTUVWXYZ", (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9),
                         strict=True))}
_VIN_WEIGHT = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def _vin(r: random.Random, valid: bool = True) -> str:
    """A VIN: a manufacturer's code, attributes, the check digit, a model year and plant, a six-digit serial; with
    ``valid`` False the ninth character is any other digit (a serial number of the same shape)."""
    body = (r.choice(("1HG", "JTD", "WVW", "WBA", "VF1", "5YJ", "SAL", "KMH")) + _alnum(r, 5, _VIN_CHARS) + "0"
            + r.choice("ABCDEFGHJKLMNPRSTVWXY123456789") + r.choice(string.ascii_uppercase.replace("I", "").replace("O", "")
            .replace("Q", "")) + str(r.randint(100000, 999999)))
    total = sum(_VIN_VALUE[c] * w for c, w in zip(body, _VIN_WEIGHT, strict=True)) % 11
    check = "X" if total == 10 else str(total)
    if not valid:
        check = r.choice([d for d in "0123456789" if d != check])
    return body[:8] + check + body[9:]


def _plate(r: random.Random) -> str:
    up = string.ascii_uppercase
    return r.choice((
        lambda: f"{_alnum(r, 2, up)}{r.randint(10, 99)} {_alnum(r, 3, up)}",  # UK
        lambda: f"{_alnum(r, 2, up)}-{r.randint(100, 999)}-{_alnum(r, 2, up)}",  # France
        lambda: f"{_alnum(r, 3, up)}-{r.randint(1000, 9999)}",  # US states
        lambda: f"{r.choice(('B', 'M', 'HH', 'K'))}-{_alnum(r, 2, up)} {r.randint(1, 9999)}",  # Germany
    ))()


def _street(r: random.Random) -> str:
    return r.choice((
        lambda: f"{r.randint(1, 400)}{r.choice(('', 'B', 'A'))} {r.choice(('Baker', 'Elm', 'Oak', 'Victoria'))} "
                f"{r.choice(('Street', 'Road', 'Lane'))}, {r.choice(('London', 'Leeds', 'Bristol'))} "
                f"{r.choice(('NW1', 'LS2', 'BS8'))} {r.randint(1, 9)}{r.choice(('XE', 'AB', 'QT'))}",
        lambda: f"{r.randint(1, 80)} {r.choice(('rue de la Paix', 'avenue Foch', 'boulevard Haussmann'))}, "
                f"750{r.randint(1, 20):02d} Paris",
        lambda: f"{r.randint(100, 9999)} {r.choice(('Pennsylvania Ave NW', 'Market St', 'Sunset Blvd'))}, "
                f"{r.choice(('Washington, DC', 'San Francisco, CA', 'Los Angeles, CA'))} {r.randint(10000, 99999)}",
        lambda: f"{r.choice(('Haupt', 'Linden', 'Garten'))}straße {r.randint(1, 120)}, {r.randint(10000, 99999)} "
                f"{r.choice(('Berlin', 'Köln', 'Hamburg'))}",
        lambda: f"Calle {r.choice(('Mayor', 'Alcalá', 'Serrano'))} {r.randint(1, 200)}, 28{r.randint(0, 99):03d} Madrid",
    ))()


def _delivery_note(r: random.Random) -> tuple[str, str | None]:
    if r.random() < 0.4:
        return r.choice((f"ship to {_street(r)}", f"Deliver to {_street(r)} before noon",
                         f"customer moved, new address {_street(r)}", f"leave the parcel at {_street(r)} if out")), \
            "ADDRESS"
    return r.choice((
        "Baker Street Mug restocked, 40 units",
        f"Pack of {r.randint(2, 6)} Park Avenue Lamps back-ordered",
        f"Gate {r.randint(1, 40)} Terminal 2 pickup for the courier",
        "Route 66 tribute tee sold out",
        f"Model {r.randint(2, 9)} Long Range demo unit returned",
        f"Sunset Boulevard Poster, {r.randint(2, 9)} left in stock",
        f"Studio 54 playlist added to the store at {r.randint(9, 11)} am",
        f"{r.randint(2, 12)} items shipped via Main Street depot",
        "Grace Street office collects on Fridays",
        f"Aisle {r.randint(1, 30)} Bay {r.randint(1, 9)} restocked",
    )), None


def _letter(r: random.Random) -> tuple[str, str | None]:
    x = r.random()
    if x < 0.35:
        person = _person_world(r)
        return r.choice((f"Dear {person}, your order has shipped.", f"Name: {person}; seat 12A confirmed",
                         f"Refund approved. Kind regards, {person}", f"signed, {person}",
                         f"Hi, my name is {person} and I need help with my invoice",
                         f"Bonjour, je m'appelle {person}", f"Dear Dr. {r.choice(LAST_WORLD)},")), "PERSON_NAME"
    return r.choice((
        "Dear Customer, your order has shipped.",
        "Dear Valued Member, your plan renews soon.",
        "Kind regards, The Support Team",
        "Regards, Customer Service",
        "Product name: Ergo Chair, colour black",
        "Name: Premium Plan upgrade requested",
        "file name: Invoice March.pdf attached",
        "Thanks, see you at the Lagos Print Tote launch",
        "Dear all, the office is closed on Monday",
        "Minh Long Porcelain Set arrived damaged",
        "Sincerely, Accounts Department",
    )), None


def _service_note(r: random.Random) -> tuple[str, str | None]:
    if r.random() < 0.3:
        return r.choice((f"VIN {_vin(r)} towed to the depot", f"recall check done for {_vin(r)}",
                         f"chassis {_vin(r).lower()} inspected")), "VEHICLE_ID"
    return r.choice((
        f"serial {_vin(r, valid=False)} replaced under warranty",
        f"part {r.choice(('BRK', 'FLT', 'OIL'))}-{r.randint(1000, 9999)}-{_alnum(r, 4, string.ascii_uppercase)} fitted",
        f"odometer {r.randint(1000, 200000)} km at service",
        f"work order WO-{r.randint(10**6, 10**7 - 1)} closed",
        "tyres rotated, pressure 2.4 bar",
    )), None


def world_tables() -> list[Table]:
    """People whose names are in neither list (found by a column's role or a cue in the text), street addresses in
    prose in four countries' forms, vehicle identification numbers and licence plates — beside innocent look-alikes:
    product names with a name list's word or a street inside (``Minh Long Porcelain Set``, ``Baker Street Mug``),
    counts and gates before capitalised words, greetings to no one (``Dear Customer``), SKUs, serial numbers of a
    VIN's shape that fail its check digit, part numbers of its length."""
    return [
        # a ``name`` outside a table of people, whose values are people's names from many cultures
        Table("crm_leads", [
            Column("id", "INTEGER", row_id()),
            Column("name", "TEXT", sensitive("PERSON_NAME", _person_world)),
            Column("attendee", "TEXT", sensitive("PERSON_NAME", _person_world)),
            Column("product_name", "TEXT", innocent(lambda r: r.choice(PRODUCTS_WORLD))),
            Column("city", "TEXT", innocent(lambda r: r.choice(("Ho Chi Minh City", "Lagos", "Oaxaca", "Hanoi",
                                                                 "Nairobi", "Auckland")))),
            Column("sku", "TEXT", innocent(lambda r: f"{_alnum(r, 3, string.ascii_uppercase)}-{r.randint(100, 999)}")),
        ]),
        # a ``name`` of products: no person, several words of the name lists inside
        Table("catalog_world", [
            Column("id", "INTEGER", row_id()),
            Column("name", "TEXT", innocent(lambda r: r.choice(PRODUCTS_WORLD))),
            Column("maker", "TEXT", innocent(lambda r: r.choice(("Minh Long", "Nordic Home", "Lagos Print Co",
                                                                  "Andes Textiles", "Kyoto Works")))),
            Column("serial_number", "TEXT", innocent(lambda r: _vin(r, valid=False))),
        ]),
        Table("shipments", [
            Column("id", "INTEGER", row_id()),
            Column("ship_to", "TEXT", sensitive("ADDRESS", _street)),
            Column("delivery_note", "TEXT", lambda r, i: _delivery_note(r)),
            Column("product", "TEXT", innocent(lambda r: r.choice(("Baker Street Mug", "Park Avenue Lamp",
                                                                    "Sunset Boulevard Poster", "Abbey Road Vinyl")))),
            Column("sku", "TEXT", innocent(lambda r: f"BKR-{r.randint(100, 999)}{r.choice('AB')}-ST")),
        ]),
        Table("support_letters", [
            Column("id", "INTEGER", row_id()),
            Column("body", "TEXT", lambda r, i: _letter(r)),
            Column("status", "TEXT", innocent(lambda r: r.choice(("sent", "draft", "bounced")))),
        ]),
        Table("fleet", [
            Column("id", "INTEGER", row_id()),
            Column("vin", "TEXT", sensitive("VEHICLE_ID", _vin)),
            Column("licence_plate", "TEXT", sensitive("VEHICLE_ID", _plate)),
            Column("model", "TEXT", innocent(lambda r: r.choice(("Model 3 Long Range", "Golf 1.5 TSI", "Clio V",
                                                                  "Corolla Hybrid")))),
            Column("serial_number", "TEXT", innocent(lambda r: _vin(r, valid=False))),
            Column("part_sku", "TEXT", innocent(lambda r: f"{_alnum(r, 4, string.ascii_uppercase)}{r.randint(10**12, 10**13 - 1)}")),
            Column("service_notes", "TEXT", lambda r, i: _service_note(r)),
        ]),
    ]


def _chat_gap(kind: str | None) -> Callable[[random.Random], str]:
    def make(r: random.Random) -> str:
        if kind == "PERSON_NAME":
            return r.choice((f"hi, my name is {_person(r)}", f"please ask {_person(r)} to call me"))
        if kind == "ADDRESS":
            return f"ship it to {r.randint(1, 999)} {r.choice(('Baker', 'Elm', 'Main', 'Oak'))} Street, {r.choice(CITIES)}"
        if kind == "EMAIL":
            return f"reach me: {r.choice(FIRST).lower()} at {r.choice(DOMAINS)}"
        if kind == "PHONE":
            return "my number is " + " ".join(
                r.choice(("four", "one", "five", "two", "six", "nine")) for _ in range(10)
            )
        return r.choice(("thanks, that solved it", "the app crashes at startup", "can I change my plan?"))

    return make


def gap_tables() -> list[Table]:
    """Known gaps, reported apart and not held to the floors: names in prose without a cue or a listed given name
    (no named-entity model), an address spelled with ``at`` but a literal dot (read as a site), a phone number in
    words; street addresses in prose, found since decision 0409, are kept here as they were measured."""
    t = Table(
        "chats",
        [
            Column("id", "INTEGER", row_id()),
            Column(
                "transcript",
                "TEXT",
                mixed(
                    [
                        (2, None, _chat_gap(None)),
                        *[(1, k, _chat_gap(k)) for k in ("PERSON_NAME", "ADDRESS", "EMAIL", "PHONE")],
                    ]
                ),
            ),
        ],
    )
    r = random.Random(f"{SEED}:{t.name}")
    t.rows = [[c.make(r, i) for c in t.columns] for i in range(ROWS)]
    return [t]


# -- evaluation ------------------------------------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"\[([A-Z][A-Z_]*)\]")


@dataclass
class Score:
    support: int = 0  # cells truly of this kind
    caught: int = 0  # of those, masked
    predicted: int = 0  # cells masked as this kind
    correct: int = 0  # of those, truly sensitive
    same_kind: int = 0  # of those, truly of this kind

    @property
    def recall(self) -> float:
        return self.caught / self.support if self.support else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0


@dataclass
class Report:
    kinds: dict[str, Score]
    cells: int
    innocent: int
    over_masked: int
    misses: list[tuple[str, str, Any, str]]
    false_alarms: list[tuple[str, str, Any, list[str]]]

    @property
    def over_masking(self) -> float:
        return self.over_masked / self.innocent if self.innocent else 0.0


def evaluate(gaps: bool = False) -> Report:
    """Store every table (or the known-gap tables), read it back through a governed connection, score each cell."""
    import governed_db
    from governed_db.masking.engine import state_for

    raw = sqlite3.connect(":memory:")
    data = gap_tables() if gaps else tables()
    for t in data:
        cols = ", ".join(f'"{c.name}" {c.declared}' for c in t.columns)
        raw.execute(f'CREATE TABLE "{t.name}" ({cols})')
        marks = ", ".join("?" for _ in t.columns)
        raw.executemany(f'INSERT INTO "{t.name}" VALUES ({marks})', [[v for v, _ in row] for row in t.rows])
    raw.commit()
    conn = governed_db.wrap(
        raw, identity=governed_db.Identity("eval-agent", kind="agent"), environment="production", audit=False
    )
    state = state_for(conn.governor)
    kinds: dict[str, Score] = defaultdict(Score)
    cells = innocent_cells = over = 0
    misses: list[tuple[str, str, Any, str]] = []
    alarms: list[tuple[str, str, Any, list[str]]] = []
    for t in data:
        out = conn.execute(f'SELECT * FROM "{t.name}" ORDER BY rowid').fetchall()
        labels = {}
        for c in t.columns:
            cls = state.column_class(t.name, c.name)
            labels[c.name] = None if cls is None else cls.label
        for stored, got in zip(t.rows, out, strict=True):
            for c, (value, truth), masked_value in zip(t.columns, stored, got, strict=True):
                cells += 1
                masked = masked_value != value
                if not masked:
                    predicted: list[str] = []
                elif labels[c.name] not in (None, "FREE_TEXT"):
                    predicted = [str(labels[c.name])]
                else:
                    predicted = sorted(set(_PLACEHOLDER.findall(str(masked_value)))) or ["SENSITIVE"]
                if truth is None:
                    innocent_cells += 1
                    if masked:
                        over += 1
                        alarms.append((t.name, c.name, value, predicted))
                else:
                    kinds[truth].support += 1
                    if masked:
                        kinds[truth].caught += 1
                    else:
                        misses.append((t.name, c.name, value, truth))
                for p in predicted:
                    kinds[p].predicted += 1
                    if truth is not None:
                        kinds[p].correct += 1
                    if truth == p:
                        kinds[p].same_kind += 1
    conn.close()
    return Report(dict(kinds), cells, innocent_cells, over, misses, alarms)


def render(report: Report) -> str:
    lines = [
        f"{report.cells} cells, {report.innocent} innocent; over-masking {report.over_masking:.2%} "
        f"({report.over_masked} innocent cells masked)",
        "",
        "| kind | cells | recall (masked) | masked as this kind | precision | of which this kind |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in sorted(report.kinds):
        s = report.kinds[kind]
        recall = f"{s.recall:.1%}" if s.support else "-"
        precision = f"{s.precision:.1%}" if s.predicted else "-"
        agree = f"{s.same_kind / s.predicted:.1%}" if s.predicted else "-"
        lines.append(f"| {kind} | {s.support} | {recall} | {s.predicted} | {precision} | {agree} |")
    return "\n".join(lines)


if __name__ == "__main__":
    result = evaluate()
    print(render(result))
    print("\nKnown gaps (not held to the floors):\n")
    print(render(evaluate(gaps=True)))
    if "-v" in sys.argv:
        for miss in result.misses:
            print("missed:", miss)
        for alarm in result.false_alarms:
            print("over-masked:", alarm)
