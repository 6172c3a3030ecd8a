"""Value detection (governed_db.masking.detect / recognizers / secret_patterns): what is found, what is left alone,
and that the masking path never imports an NLP stack."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from governed_db.masking import classify, detect, recognizers

NLP_MODULES = ("spacy", "thinc", "transformers", "presidio_analyzer", "tldextract")


def test_masking_a_pii_result_never_imports_spacy(tmp_path: object) -> None:
    """import governed_db, wrap(), a first masked read of PII and free text load no spaCy/thinc/transformers."""
    code = """
import json, sqlite3, sys
import governed_db
raw = sqlite3.connect(":memory:")
raw.execute("CREATE TABLE customers (id INTEGER, email TEXT, ssn TEXT, phone TEXT, notes TEXT)")
raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?)", [
    (i, f"alice{i}@example.com", f"536-22-{8700 + i}", f"+1 415-555-{2600 + i}",
     f"call +44 20 7946 0958, card 4111 1111 1111 1111, iban DE89370400440532013000, ip 10.1.2.{i}")
    for i in range(20)])
conn = governed_db.wrap(raw, identity=governed_db.Identity("bot", kind="agent"), environment="production",
                        audit=False)
rows = conn.execute("SELECT * FROM customers").fetchall()
heavy = [m for m in NLP_MODULES if m in sys.modules]
print(json.dumps({"row": list(rows[0]), "heavy": heavy}))
""".replace("NLP_MODULES", repr(NLP_MODULES))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    row = result["row"]
    assert "alice0@example.com" not in json.dumps(row)
    assert "4111 1111 1111 1111" not in row[4] and "DE89370400440532013000" not in row[4]
    assert "7946 0958" not in row[4] and "10.1.2.0" not in row[4]


FOUND = [
    ("alice at example dot com", "EMAIL"),
    ("write to alice [at] example [dot] com please", "EMAIL"),
    ("alice(at)example(dot)co(dot)uk", "EMAIL"),
    ("bob {at} corp.io", "EMAIL"),
    ("lowercase iban de89370400440532013000", "IBAN"),
    ("spaced gb82 west 1234 5698 7654 32 ok", "IBAN"),
    ("my ssn is 536228726", "US_SSN"),
    ("SSN: 536-22-8726", "US_SSN"),
    ("key 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", "SECRET"),
    ("aws AKIAIOSFODNN7EXAMPLE", "SECRET"),
    ("gh ghp_" + "a1B2" * 9, "SECRET"),
    ("slack xoxb-123456789012-abcdefghij", "SECRET"),
    ("stripe sk_live_4eC39HqLyjWDarjt", "SECRET"),
    ("gitlab glpat-abcdefghij0123456789", "SECRET"),
    ("npm npm_" + "A1b2" * 9, "SECRET"),
    ("password: hunter2", "PASSWORD"),
    ("pwd=abc", "PASSWORD"),
    ("my password is hunter2", "PASSWORD"),
    ("password: 'correct horse'", "PASSWORD"),
    ("pin: 1234", "PASSWORD"),
    ("key SG.abcdefghij.klmnopqrstuv", "SECRET"),
    ("slack xoxe.xoxp-1-abcdefghijkl", "SECRET"),
    ("client 10.4.2.1 connected", "IP_ADDRESS"),
    ("connected to 10.0.0.5", "IP_ADDRESS"),
    ("server v2 at 10.0.0.5", "IP_ADDRESS"),
    ("nhs 943 476 5919", "NATIONAL_ID"),
    # UK National Insurance numbers: whole, or beside a word that says so (decision 0381)
    ("AB 12 34 56 C", "NATIONAL_ID"),
    ("NINO: ab123456c", "NATIONAL_ID"),
    ("my NI number is AB123456C", "NATIONAL_ID"),
    ("national insurance: JG 10 37 28 A", "NATIONAL_ID"),
    ("alice@example.com:hunter2", "EMAIL"),  # a leaked login keeps its address masked
    # environment variables and command lines, as job logs and shell histories keep them (decision 0381)
    ("DB_PASSWORD=Xk29!mq", "PASSWORD"),
    ("PGPASSWORD=hunter22 psql -h db", "PASSWORD"),
    ("MYSQL_PWD=hunter22", "PASSWORD"),
    ("SLACK_TOKEN=abcdef12345678", "SECRET"),
    ("mysql -u root -phunter22 app", "SECRET"),
    ("mysqldump -h db -u app -pS3cret app > x.sql", "SECRET"),
    ("curl -u admin:hunter22 https://example.com", "SECRET"),
    ("sshpass -p hunter22 ssh host", "SECRET"),
    ("pg_dump --password=hunter22 db", "SECRET"),
    # a password in a URL with no user name, however short
    ("redis://:p4ssw0rd@cache:6379/0", "SECRET"),
    ("redis://:pw@h", "SECRET"),
]


@pytest.mark.parametrize(("text", "label"), FOUND)
def test_sensitive_items_are_found(text: str, label: str) -> None:
    """Obfuscated e-mails, lowercase IBANs, SSNs by context, key-id prefixes and short passwords are detected."""
    labels = [s.label for s in detect.find_spans(text)]
    assert label in labels, (text, labels)


LEFT_ALONE = [
    "firmware 10.4.2.1",
    "upgraded to version 2.3.0.1 yesterday",
    "firmware upgraded to 2.3.0.1",
    "v 1.2.3.4",
    "OID 1.3.6.1.4.1",
    "visit us at example.com",
    "look at the dot product",
    "order 536228726 shipped",
    "password: required",
    "password reset requested by the user",
    "my password is wrong",
    "tests pass: 120 fail: 0",
    "invoice 9434765919 paid",  # a bare 10-digit number passes the NHS checksum, but nothing says NHS
    "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "id 3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    "meeting at 10:30 on 2024-05-12",
    "part AB123456C back in stock",  # a NINO's shape with nothing saying it is one
    "AB123456C",  # compact and alone: a product code's shape as much as a NINO's (a column named so is labelled)
    "git@github.com:org/repo.git",  # a repository's SSH address, not a mailbox
    "mysql -u root -p app",  # -p alone: the client asks for the password
    "curl -u admin https://example.com",
    "COMPASS=north",
    "tar -xzpf backup.tgz",
    "--password-file=/run/secrets/db",
    "QQ123456C",  # prefixes HMRC never allocates
    "GB123456A",
    "see https://example.com/a@b for details",
]


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_innocent_look_alikes_are_left_alone(text: str) -> None:
    """Version strings, OIDs, sites, order numbers, digests, UUIDs and password prose are not sensitive."""
    labels = [s.label for s in detect.find_spans(text) if s.label != "PHONE"]
    assert labels == [], (text, labels)


def test_iban_checksum_and_length_are_checked() -> None:
    """An IBAN-shaped string with a wrong check digit or length is not an IBAN, whatever its case."""
    assert recognizers.iban_valid("de89370400440532013000")
    assert not recognizers.iban_valid("DE88370400440532013000")
    assert not recognizers.iban_valid("DE8937040044053201300")


def test_ssn_rules_reject_impossible_numbers() -> None:
    """Area 000/666, group 00, serial 0000 and advertised sample numbers are not SSNs."""
    assert recognizers.ssn_valid("536228726")
    for bad in ("000228726", "666228726", "536008726", "536220000", "123456789", "111111111"):
        assert not recognizers.ssn_valid(bad), bad


def test_whole_value_labels() -> None:
    """A value that is one item gets its label; prose around an item does not make the whole value one."""
    assert detect.whole_value_label("alice at example dot com") == "EMAIL"
    assert detect.whole_value_label("de89 3704 0044 0532 0130 00") == "IBAN"
    assert detect.whole_value_label("$2b$12$" + "a" * 53) == "PASSWORD"
    assert detect.whole_value_label("reach alice@example.com after lunch on monday") is None


def test_one_false_positive_does_not_refuse_every_filter_on_a_text_column() -> None:
    """A text column with one stray hit in its sample is scanned per value but may still be filtered on."""
    import sqlite3

    import governed_db

    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE releases (id INTEGER, summary TEXT)")
    rows = [(i, f"fixed crash number {i} in the exporter") for i in range(60)]
    rows.append((60, "questions to alice@example.com"))
    raw.executemany("INSERT INTO releases VALUES (?, ?)", rows)
    conn = governed_db.wrap(
        raw, identity=governed_db.Identity("bot", kind="agent"), environment="production", audit=False
    )
    found = conn.execute("SELECT id, summary FROM releases WHERE summary LIKE '%questions%'").fetchall()
    assert found == [(60, "questions to [EMAIL]")]


def test_a_text_column_full_of_pii_still_refuses_filters() -> None:
    """When enough of the sample holds personal data, filtering on the column is refused as before."""
    import sqlite3

    import governed_db

    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE calls (id INTEGER, summary TEXT)")
    raw.executemany(
        "INSERT INTO calls VALUES (?, ?)", [(i, f"call back alice{i}@example.com today") for i in range(20)]
    )
    conn = governed_db.wrap(
        raw, identity=governed_db.Identity("bot", kind="agent"), environment="production", audit=False
    )
    with pytest.raises(governed_db.GuardrailViolation):
        conn.execute("SELECT id FROM calls WHERE summary LIKE 'call back a%'")


def test_nine_digit_ssns_under_ssn_names_are_masked_and_order_numbers_are_not() -> None:
    """9-digit SSNs (text or integer) under SSN-like names are masked; 9-digit order numbers come back exact."""
    import sqlite3

    import governed_db

    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE people (id INTEGER, ssn INTEGER, social_security_number TEXT, order_no TEXT)")
    raw.executemany(
        "INSERT INTO people VALUES (?, ?, ?, ?)",
        [(i, 536228700 + i, f"{219451200 + i}", f"{536228700 + i}") for i in range(30)],
    )
    conn = governed_db.wrap(
        raw, identity=governed_db.Identity("bot", kind="agent"), environment="production", audit=False
    )
    rows = conn.execute("SELECT ssn, social_security_number, order_no FROM people ORDER BY id").fetchall()
    assert rows[0] == (0, "[US_SSN]", "536228700")
    assert conn.execute("SELECT id FROM people WHERE order_no = '536228701'").fetchall() == [(1,)]


def test_version_columns_of_a_nearly_empty_table_are_not_read_as_addresses() -> None:
    """While a small table's columns are only scanned, a firmware column's dotted quads stay; an IP column's don't."""
    import sqlite3

    import governed_db

    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE devices (id INTEGER, firmware TEXT, note TEXT)")
    raw.execute("INSERT INTO devices VALUES (1, '10.4.2.1', 'reached 10.0.0.5')")
    conn = governed_db.wrap(
        raw, identity=governed_db.Identity("bot", kind="agent"), environment="production", audit=False
    )
    assert conn.execute("SELECT firmware, note FROM devices").fetchall() == [
        ("10.4.2.1", "reached [IP_ADDRESS]")
    ]


def _classified(column: str, values: list[Any], declared: str = "TEXT") -> str | None:
    return classify.classify_sample("t", column, declared, values).label


_FIRST = ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Zoë", "José"]
_LAST = ["Smith", "Jones", "Brown", "García", "O'Neil", "Müller", "Nguyen", "van der Berg", "Taylor", "Wright"]
_PEOPLE = [f"{_FIRST[i % 12]} {_LAST[(i * 7) % 10]}" for i in range(60)]


@pytest.mark.parametrize("column", ["author", "owner", "assignee", "created_by", "approvedBy", "customer", "reviewer"])
def test_a_role_column_of_peoples_names_is_a_person_name(column: str) -> None:
    """Issue 12 ("names under display_name, holder and similar"): a column named for a person's role holds names
    when its sampled values look like them (no name detector exists: decision 0090). Found as a zero-config gap:
    ``author``, ``owner``, ``customer``, ``assignee``, ``created_by`` full of names came back in clear."""
    assert _classified(column, _PEOPLE) == "PERSON_NAME"
    assert _classified(column, [p.upper() for p in _PEOPLE]) == "PERSON_NAME"  # a legacy system's capitals
    assert _classified(column, [", ".join(reversed(p.split(" ", 1))) for p in _PEOPLE]) == "PERSON_NAME"


ROLE_LOOK_ALIKES = {
    "teams": ["Data Platform", "Platform Team", "Payments Team", "Data Platform", "Platform Team"] * 12,
    "companies": [f"{w} {s}" for w in ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark")
                  for s in ("Corp", "Inc", "Ltd", "Industries", "GmbH", "Group", "Labs", "Bank", "LLC", "Holdings")],
    "usernames": [f"user{i}" for i in range(60)],
    "ids": [str(1000 + i) for i in range(60)],
    "single words": ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark"] * 10,
    "status words": ["In Review", "Needs Work", "Done", "Blocked"] * 15,
    "acronyms": [f"IT {w}" for w in ("Support", "Helpdesk", "Ops", "Desk", "Admin", "Infra")] * 10,
}


@pytest.mark.parametrize("kind", list(ROLE_LOOK_ALIKES))
def test_a_role_column_of_other_things_is_left_alone(kind: str) -> None:
    """Innocent look-alikes under the same role names: team names repeated, companies, user ids, numbers, one
    word, statuses, acronyms. And a column not named for a role keeps names of things (``title``: ``Blue Moon``)."""
    for column in ("owner", "customer", "created_by"):
        assert _classified(column, ROLE_LOOK_ALIKES[kind]) is None, (column, kind)
    assert _classified("title", _PEOPLE) is None
    assert _classified("customer_city", ["New York", "Salt Lake City", "San Francisco", "Los Angeles", "Santa Fe",
                                         "El Paso", "Las Vegas"] * 9) is None  # the role is not the last word
    assert _classified("sku", [f"AB{100000 + 7 * i}C" for i in range(60)]) is None  # compact NINO-shaped codes
    assert _classified("owner_id", _PEOPLE) is None  # a veto word: an owner's id, whatever it holds here


@pytest.mark.parametrize(("column", "declared"), [("pin", "INTEGER"), ("pin", "TEXT"), ("passcode", "TEXT"),
                                                   ("passphrase", "TEXT"), ("card_pin", "VARCHAR(4)"),
                                                   ("ni_number", "TEXT"), ("ni", "TEXT"), ("pw", "BYTEA"),
                                                   ("birth_ts", "TIMESTAMP"),
                                                   ("birth_time", "TIMESTAMP")])
def test_pins_passphrases_and_ni_numbers_are_named(column: str, declared: str) -> None:
    """A PIN (often an INTEGER), a passcode, passphrase or ``pw`` is a password; ``ni_number`` a national id;
    ``birth_ts`` a date of birth (found in clear over PostgreSQL with zero configuration)."""
    found = classify.classify_name("t", column, declared)
    want = {"ni_number": "NATIONAL_ID", "ni": "NATIONAL_ID", "birth_ts": "DATE_OF_BIRTH",
            "birth_time": "DATE_OF_BIRTH"}
    assert found is not None and found.label == want.get(column, "PASSWORD"), found
    for innocent in ("pin_attempts", "pinned", "spinner", "passphrase_hint", "pw_changed_at", "birth_place"):
        assert classify.classify_name("t", innocent, "TEXT") is None, innocent
