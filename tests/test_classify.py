"""Classification: detection of sensitive values offline, column labels from names/types/values, catalogs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from governed_db.masking import detect
from governed_db.masking.catalog import Catalog, load_catalog
from governed_db.masking.classify import (
    OBSERVED_TEXT,
    ColumnClass,
    classify_column,
    classify_name,
    classify_values,
)

PY = sys.executable


@pytest.mark.parametrize(
    ("text", "found", "label"),
    [
        ("contact alice.smith@example.com now", "alice.smith@example.com", "EMAIL"),
        ("card 4111 1111 1111 1111 ok", "4111 1111 1111 1111", "CREDIT_CARD"),
        ("ssn 536-22-8726", "536-22-8726", "US_SSN"),
        ("call +1 415-555-2671", "+1 415-555-2671", "PHONE"),
        ("iban DE89370400440532013000", "DE89370400440532013000", "IBAN"),
        ("from 192.168.1.20", "192.168.1.20", "IP_ADDRESS"),
        ("nhs 943 476 5919", "943 476 5919", "NATIONAL_ID"),
        ("key AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "SECRET"),
        ("gcp AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA1234567890abcdefghijklmnopqrstuv", "SECRET"),
        ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "SECRET"),
        ("stripe sk_live_abcdefghijklmnop1234", "sk_live_abcdefghijklmnop1234", "SECRET"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.abcdefghijklmnopqrstuv",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.abcdefghijklmnopqrstuv",
            "SECRET",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "SECRET",
        ),
        ("config api_key=sEcr3tValue99", "sEcr3tValue99", "SECRET"),
        ("random k9Xq2LmZ8vR4tY7wP1sD6fG3hJ0kL5nBq", "k9Xq2LmZ8vR4tY7wP1sD6fG3hJ0kL5nBq", "SECRET"),
    ],
)
def test_detection_finds_each_kind(text: str, found: str, label: str) -> None:
    """Each kind of PII or secret is found as one span with its label."""
    spans = detect.find_spans(text)
    assert [(text[s.start : s.end], s.label) for s in spans] == [(found, label)]


@pytest.mark.parametrize(
    "text",
    [
        "the order shipped late",
        "on 2024-05-12 at 10:30 the total was 432.12",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "card 4111 1111 1111 1112 fails the checksum",
        "version 1.2.3 released",
    ],
)
def test_detection_leaves_ordinary_text_alone(text: str) -> None:
    """Dates, amounts, UUIDs, hex digests and invalid card numbers are not flagged."""
    assert detect.find_spans(text) == []


def _run(code: str) -> str:
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_detection_never_touches_the_network() -> None:
    """With every socket operation raising, Presidio-based detection still works (no model, no suffix list)."""
    code = """
import socket
def refuse(*a, **k):
    raise AssertionError("network access attempted")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from governed_db.masking import detect
spans = detect.find_spans("mail alice@example.co.uk or bob@corp.io, card 4111 1111 1111 1111, +44 20 7946 0958")
print(sorted(s.label for s in spans))
"""
    assert _run(code).strip() == "['CREDIT_CARD', 'EMAIL', 'EMAIL', 'PHONE']"


def test_import_stays_light() -> None:
    """import governed_db (and its masking package) loads neither Presidio nor spaCy."""
    code = """
import sys, governed_db, governed_db.masking, governed_db.pipeline
print(sorted(m for m in ("presidio_analyzer", "spacy", "tldextract") if m in sys.modules))
"""
    assert _run(code).strip() == "[]"


@pytest.mark.parametrize(
    ("table", "column", "declared", "label"),
    [
        ("users", "email", "TEXT", "EMAIL"),
        ("users", "billingEmail", "varchar(200)", "EMAIL"),
        ("users", "email_verified", "BOOLEAN", None),
        ("users", "emailVerified", "INTEGER", None),
        ("users", "phone_count", "INTEGER", None),
        ("users", "password_changed_at", "TIMESTAMP", None),
        ("users", "password_hash", "TEXT", "PASSWORD"),
        ("users", "ssn", "TEXT", "US_SSN"),
        ("users", "name", "TEXT", "PERSON_NAME"),
        ("products", "name", "TEXT", None),
        ("users", "dob", "DATE", "DATE_OF_BIRTH"),
        ("users", "birth_date", "TEXT", "DATE_OF_BIRTH"),
        ("events", "client_ip", "inet", "IP_ADDRESS"),
        ("keys", "api_key", "TEXT", "SECRET"),
        ("llm", "token_count", "INTEGER", None),
        ("users", "street_address", "TEXT", "ADDRESS"),
        ("users", "email_address", "TEXT", "EMAIL"),
        ("payments", "card_number", "TEXT", "CREDIT_CARD"),
        ("payments", "iban", "TEXT", "IBAN"),
        ("users", "passport_number", "TEXT", "NATIONAL_ID"),
        ("tickets", "notes", "TEXT", "FREE_TEXT"),
        ("users", "display_name", "TEXT", "PERSON_NAME"),
        ("accounts", "holder", "TEXT", "PERSON_NAME"),
        ("accounts", "account_holder", "TEXT", "PERSON_NAME"),
        ("cards", "cardholder", "TEXT", "PERSON_NAME"),
        ("cards", "cardHolderName", "TEXT", "PERSON_NAME"),
        ("orders", "full_name", "TEXT", "PERSON_NAME"),
        ("leads", "contact", "TEXT", "PERSON_NAME"),
        ("payouts", "recipient", "TEXT", "PERSON_NAME"),
        ("leads", "contact_method", "TEXT", None),
        ("accounts", "holder_type", "TEXT", None),
        ("leads", "contact_email", "TEXT", "EMAIL"),
        ("leads", "contact_phone", "TEXT", "PHONE"),
        ("employees", "social_security_number", "TEXT", "US_SSN"),
        ("employees", "ss_no", "INTEGER", "US_SSN"),
        ("employees", "SSN", "INTEGER", "US_SSN"),
        ("events", "payload_json", "jsonb", "FREE_TEXT"),
        ("orders", "total", "NUMERIC", None),
    ],
)
def test_names_and_types(table: str, column: str, declared: str, label: str | None) -> None:
    """Column names label columns, metadata words veto, and declared types must fit the label."""
    found = classify_name(table, column, declared)
    assert (found.label if found else None) == label
    if found is not None:
        assert found.evidence and 0 < found.confidence <= 1


def test_values_label_by_share_not_one_hit() -> None:
    """A column is labelled when most sampled values match; a single stray match only makes it scanned text."""
    emails = [f"user{i}@example.com" for i in range(40)]
    assert classify_values(emails)[0] == "EMAIL"
    assert classify_values(["plain words"] * 100)[0] is None
    stray = ["plain words"] * 99 + ["x alice@example.com"]
    assert classify_values(stray)[0] == "FREE_TEXT"
    # scanned as it passes, but still filterable: one hit is not enough to call the column sensitive
    assert classify_column("t", "title", "TEXT", stray).confidence < OBSERVED_TEXT
    several = ["plain words"] * 90 + [f"write to u{i}@example.org" for i in range(10)]
    label, share, why, hits = classify_values(several)
    assert label == "FREE_TEXT" and share == pytest.approx(0.1) and "10%" in why and hits == 10
    assert classify_column("t", "title", "TEXT", several).confidence >= OBSERVED_TEXT
    assert classify_values(["$2b$12$" + "a" * 53] * 5)[0] == "PASSWORD"


def test_one_hit_among_many_sampled_values_is_still_free_text() -> None:
    """Decision 0313: however many values a widened sample read, one holding an item makes the column scanned
    text (an agent's hundreds of varied fillers no longer dilute it below a share); still filterable."""
    diluted = [f"ref {i * 7}" for i in range(199)] + ["536-22-8726"]
    label, share, why, hits = classify_values(diluted)
    assert label == "FREE_TEXT" and share == pytest.approx(0.005) and hits == 1, why
    assert why == "1 of 200 sampled values contain personal data or secrets"
    column = classify_column("t", "tax_ref", "TEXT", diluted)
    assert column.label == "FREE_TEXT" and column.confidence < OBSERVED_TEXT and column.found == {"US_SSN"}
    assert classify_values([f"ref {i * 7}" for i in range(200)])[0] is None  # the fillers alone: innocent


def test_values_win_over_a_silent_name_and_agree_with_a_loud_one() -> None:
    """Values label an innocuously named column; matching values raise a name's confidence."""
    contact = classify_column("t", "contact", "TEXT", [f"u{i}@example.com" for i in range(30)])
    assert contact.label == "EMAIL" and "values" in contact.evidence
    named = classify_column("users", "email", "TEXT", [f"u{i}@example.com" for i in range(30)])
    assert named.label == "EMAIL" and named.confidence > 0.9


def test_catalog_round_trip(tmp_path: Path) -> None:
    """A catalog saved as YAML or JSON loads back with labels, confidence, evidence and strategies."""
    cat = Catalog(dialect="sqlite")
    cat.set("users", "email", ColumnClass("EMAIL", 0.97, {"name": "email"}))
    cat.set("users", "ssn", ColumnClass("US_SSN", 0.95, {}, ("partial", {"keep_last": 4})))
    cat.set("users", "id", ColumnClass(None, 0.0))
    for name in ("c.yaml", "c.json"):
        cat.save(tmp_path / name)
        back = load_catalog(str(tmp_path / name))
        assert back is not None
        assert back.lookup("users", "EMAIL") == ColumnClass("EMAIL", 0.97, {"name": "email"}, None, True)
        assert back.lookup("main.users", "ssn").strategy == ("partial", {"keep_last": 4})  # type: ignore[union-attr]
        assert back.lookup("users", "id").label is None  # type: ignore[union-attr]
    assert (tmp_path / "c.yaml").read_text().startswith("# governed_db data catalog")


def test_catalog_accepts_short_entries() -> None:
    """A hand-written catalog may give just a label (or null) per column."""
    cat = Catalog.from_dict({"tables": {"public.users": {"email": "email", "id": None}}})
    assert cat.lookup("users", "email").label == "EMAIL"  # type: ignore[union-attr]
    assert cat.lookup("public.users", "id").label is None  # type: ignore[union-attr]


def test_catalog_rejects_unknown_strategy() -> None:
    """A catalog naming a strategy that does not exist is refused with the reason."""
    from governed_db.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown strategy"):
        Catalog.from_dict({"tables": {"t": {"c": {"label": "EMAIL", "strategy": "shred"}}}})


def _json(text: str) -> Any:
    return json.loads(text[text.index("{") :])


@pytest.mark.parametrize(
    ("column", "declared", "label"),
    [
        ("auth", "TEXT", "SECRET"),
        ("authorization", "TEXT", "SECRET"),
        ("bearer", "TEXT", "SECRET"),
        ("token", "TEXT", "SECRET"),
        ("cvv", "TEXT", "CARD_SECURITY_CODE"),
        ("cvc", "INTEGER", "CARD_SECURITY_CODE"),
        ("card_cvv", "TEXT", "CARD_SECURITY_CODE"),
        ("username", "TEXT", "USERNAME"),
        ("user_name", "VARCHAR(40)", "USERNAME"),
        ("login", "TEXT", "USERNAME"),
        ("login_count", "INTEGER", None),
        ("salary", "NUMERIC(10,2)", "FINANCIAL"),
        ("income", "INTEGER", "FINANCIAL"),
        ("wage", "DOUBLE PRECISION", "FINANCIAL"),
        ("routing", "TEXT", "BANK_ACCOUNT"),
        ("routing_number", "TEXT", "BANK_ACCOUNT"),
        ("account_number", "TEXT", "BANK_ACCOUNT"),
        ("iban", "TEXT", "IBAN"),
    ],
)
def test_names_of_credentials_pay_and_accounts(column: str, declared: str, label: str | None) -> None:
    """Auth headers, card security codes, login names, pay and bank accounts are labelled by their names."""
    found = classify_name("people", column, declared)
    assert (found.label if found else None) == label


@pytest.mark.parametrize(
    ("column", "declared", "label"),
    [
        ("born_on", "DATE", "DATE_OF_BIRTH"),
        ("born_at", "TIMESTAMP", "DATE_OF_BIRTH"),
        ("birth_dt", "DATE", "DATE_OF_BIRTH"),
        ("birth_day", "TEXT", "DATE_OF_BIRTH"),
        ("bday", "DATE", "DATE_OF_BIRTH"),
        ("dateOfBirth", "DATE", "DATE_OF_BIRTH"),
        ("birthday_updated_at", "TIMESTAMP", None),  # about the birthday, not the birthday
        ("consent_at", "TIMESTAMP", None),
        ("created_on", "DATE", None),
        ("birth_place", "TEXT", None),
    ],
)
def test_birth_dates_named_at_or_on_are_labelled(column: str, declared: str, label: str | None) -> None:
    """``born_on``/``born_at`` name the date itself: ``at``/``on`` veto other labels (``consent_at``), not this one
    (decision 0299 left them unlabelled)."""
    found = classify_name("people", column, declared)
    assert (found.label if found else None) == label


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
        ),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc"),
    ],
)
def test_auth_header_values_are_secrets(text: str, found: str) -> None:
    """HTTP credentials (Basic/Bearer) and short-signature JWTs are detected as SECRET by value."""
    spans = detect.find_spans(text)
    assert [(text[s.start : s.end], s.label) for s in spans] == [(found, "SECRET")]


def test_one_sampled_document_with_pii_labels_free_text() -> None:
    """A one-row sample whose JSON holds an e-mail and an SSN labels the column FREE_TEXT (spans masked)."""
    cls = classify_column("events", "data", "TEXT", ['{"email":"bob@corp.io","ssn":"536-22-8726"}'])
    assert cls.label == "FREE_TEXT"


def test_credentials_pay_and_accounts_are_masked_end_to_end() -> None:
    """Through a governed connection: JSON, auth headers, CVV, username, salary and routing are masked."""
    import sqlite3

    import governed_db
    from governed_db import Identity

    raw = sqlite3.connect(":memory:")
    raw.execute(
        "CREATE TABLE events (id INTEGER, data TEXT, auth TEXT, bearer TEXT, cvv TEXT, username TEXT, "
        "salary INTEGER, routing TEXT)"
    )
    row = (
        1,
        '{"email":"bob@corp.io","ssn":"536-22-8726"}',
        "Basic dXNlcjpwYXNz",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc",
        "123",
        "bob_jones",
        123456,
        "021000021",
    )
    raw.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?)", row)
    conn = governed_db.wrap(
        raw, identity=Identity("bot", kind="agent"), environment="production", audit=False
    )
    got = conn.execute("SELECT * FROM events").fetchone()
    assert got == (
        1,
        '{"email":"[EMAIL]","ssn":"[US_SSN]"}',
        "[SECRET]",
        "[SECRET]",
        "[CARD_SECURITY_CODE]",
        "b**_*****",
        120000,
        "*****0021",
    )


def test_catalog_written_on_an_empty_table_does_not_settle_its_columns(tmp_path: Path) -> None:
    """`classify` on an empty table writes provisional entries; once data arrives, online classification masks it."""
    import sqlite3

    import governed_db
    from governed_db import Identity
    from governed_db.masking.scan import classify_database

    path = tmp_path / "app.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE leads (id INTEGER, info TEXT, email TEXT)")
    raw.commit()
    catalog = classify_database(raw, "sqlite")
    saved = tmp_path / "catalog.yaml"
    catalog.save(saved)
    reloaded = Catalog.load(saved)
    assert reloaded.to_dict()["tables"]["leads"]["info"]["provisional"] is True
    assert reloaded.lookup("leads", "info") is None  # decides nothing
    assert (
        reloaded.lookup("leads", "email") is not None and reloaded.lookup("leads", "email").label == "EMAIL"
    )  # type: ignore[union-attr]
    raw.executemany(
        "INSERT INTO leads VALUES (?, ?, ?)", [(i, f"bob{i}@corp.io", f"a{i}@x.org") for i in range(30)]
    )
    raw.commit()
    conn = governed_db.wrap(
        sqlite3.connect(path),
        identity=Identity("bot", kind="agent"),
        environment="production",
        audit=False,
        masking={"catalog": str(saved)},
    )
    assert conn.execute("SELECT info FROM leads WHERE id = 3").fetchall() == [("b***@corp.io",)]
