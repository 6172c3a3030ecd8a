"""Zero-configuration detection on production-like schemas (decision 0394): European column names and national ids,
MAC addresses and coordinates, cloud credentials in text, people under role columns, innocent look-alikes left
alone, and the types of what is masked kept."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

import governed_db
from governed_db.masking import detect
from governed_db.masking.classify import classify_column, classify_name
from governed_db.masking.strategies.bucket import build as build_bucket
from governed_db.masking.strategies.generalize import build as build_generalize


@pytest.mark.parametrize(
    ("column", "declared", "label"),
    [
        ("prenom", "TEXT", "PERSON_NAME"),
        ("prénom", "TEXT", "PERSON_NAME"),
        ("nom_complet", "TEXT", "PERSON_NAME"),
        ("vorname", "TEXT", "PERSON_NAME"),
        ("nachname", "TEXT", "PERSON_NAME"),
        ("apellidos", "TEXT", "PERSON_NAME"),
        ("kontoinhaber", "TEXT", "PERSON_NAME"),
        ("titulaire", "TEXT", "PERSON_NAME"),
        ("adresse", "TEXT", "ADDRESS"),
        ("straße", "TEXT", "ADDRESS"),
        ("code_postal", "TEXT", "ADDRESS"),
        ("plz", "TEXT", "ADDRESS"),
        ("geburtsdatum", "DATE", "DATE_OF_BIRTH"),
        ("fecha_nacimiento", "TEXT", "DATE_OF_BIRTH"),
        ("date_de_naissance", "TEXT", "DATE_OF_BIRTH"),
        ("birth_date", "INTEGER", "DATE_OF_BIRTH"),
        ("mot_de_passe", "TEXT", "PASSWORD"),
        ("passwort", "TEXT", "PASSWORD"),
        ("contraseña", "TEXT", "PASSWORD"),
        ("numero_secu", "TEXT", "NATIONAL_ID"),
        ("nir", "TEXT", "NATIONAL_ID"),
        ("steuer_id", "TEXT", "NATIONAL_ID"),
        ("dni", "TEXT", "NATIONAL_ID"),
        ("codice_fiscale", "TEXT", "NATIONAL_ID"),
        ("driver_licence_number", "TEXT", "NATIONAL_ID"),
        ("dl_number", "TEXT", "NATIONAL_ID"),
        ("tax_number", "TEXT", "NATIONAL_ID"),
        ("mrn", "TEXT", "NATIONAL_ID"),
        ("medical_record_number", "TEXT", "NATIONAL_ID"),
        ("cookie", "TEXT", "SECRET"),
        ("session_token", "TEXT", "SECRET"),
        ("mfa_seed", "TEXT", "SECRET"),
        ("mac", "TEXT", "MAC_ADDRESS"),
        ("device_mac_address", "TEXT", "MAC_ADDRESS"),
        ("latitude", "DOUBLE", "LOCATION"),
        ("lng", "REAL", "LOCATION"),
        ("geohash", "TEXT", "LOCATION"),
    ],
)
def test_column_names_in_several_languages_and_kinds_are_labelled(column: str, declared: str, label: str) -> None:
    """A column named for personal data in French, German or Spanish, or for a device or a place, gets its label."""
    found = classify_name("t", column, declared)
    assert found is not None and found.label == label, found


@pytest.mark.parametrize(
    "column",
    ["vat_number", "swift", "bic", "expiry", "card_exp", "pan_masked", "ville", "stadt", "sku", "isbn", "code_insee"],
)
def test_innocent_column_names_stay_unlabelled(column: str) -> None:
    """A business's VAT number, a bank's BIC, a card's expiry, an already-masked PAN, a city: not personal data."""
    assert classify_name("t", column, "TEXT") is None


def test_bare_nom_is_a_name_in_a_table_of_people_only() -> None:
    """``nom`` is a person's name in ``clients``, a product's elsewhere (as a bare ``name``)."""
    found = classify_name("clients", "nom", "TEXT")
    assert found is not None and found.label == "PERSON_NAME"
    assert classify_name("produits", "nom", "TEXT") is None


@pytest.mark.parametrize("column", ["physician", "ceo", "account_rep", "agent"])
def test_people_under_role_columns_are_names_titles_and_officers_included(column: str) -> None:
    """``Dr. Grace Lopez`` under ``physician``, officers under ``ceo`` (public or not) are masked as names."""
    values = [f"Dr. {f} {s}" if column == "physician" else f"{f} {s}"
              for f, s in zip(["Grace", "Ivan", "Mia", "Omar", "Zoe", "Liam"],
                              ["Lopez", "Novak", "Clark", "Rossi", "Dubois", "Okafor"], strict=True)]
    assert classify_column("t", column, "TEXT", values * 2).label == "PERSON_NAME"


def test_role_columns_of_teams_stay_unlabelled() -> None:
    """An ``agent`` column of user agents or team names is not a column of people."""
    values = ["Mozilla/5.0 (X11)", "curl/8.1.2", "Support Team", "Data Platform", "python-requests/2.31"] * 3
    assert classify_column("t", "agent", "TEXT", values).label is None


def _masked(text: str) -> str:
    return detect.replace_spans(text, detect.find_spans(text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("device 00:1a:2b:3c:4d:5e joined", "device [MAC_ADDRESS] joined"),
        ("A4-5E-60-C2-11-09", "[MAC_ADDRESS]"),
        ("gps fix 48.85661, 2.35222 hdop 0.9", "gps fix [LOCATION] hdop 0.9"),
        ("40.4168 -3.7038", "[LOCATION]"),
        ("DNI 12345678Z", "DNI [NATIONAL_ID]"),
        ("X1234567L", "[NATIONAL_ID]"),
        ("1 85 05 78 006 084 91", "[NATIONAL_ID]"),
        ("NIR 185057800608491", "NIR [NATIONAL_ID]"),
        ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----", "[SECRET]"),
        ("https://a.blob.core.windows.net/c/x.csv?sv=2022-11-02&sp=r&sig=AbCdEf1234567890GhIj%3D",
         "https://a.blob.core.windows.net/c/x.csv?sv=2022-11-02&sp=r&sig=[SECRET]"),
        ("Passwort: geheim123", "Passwort: [PASSWORD]"),
        ("mot de passe : soleil42", "mot de passe : [PASSWORD]"),
        ("contraseña: sol1234", "contraseña: [PASSWORD]"),
        ("Kennwort=Sommer2024!", "Kennwort=[PASSWORD]"),
        ("mdp=azerty12", "mdp=[PASSWORD]"),
        ("passport no. X12345678 expires 2030", "passport no. [NATIONAL_ID] expires 2030"),
        ("Führerschein Nr. B072RRE2I55", "Führerschein Nr. [NATIONAL_ID]"),
        ("DL# D1234567 (CA)", "DL# [NATIONAL_ID] (CA)"),
        ("drivers license S530-1234-5678", "drivers license [NATIONAL_ID]"),
        ("UTR 12345 67890", "UTR [NATIONAL_ID]"),
        ("born 12/03/1985 in Lyon", "born [DATE_OF_BIRTH] in Lyon"),
        ("DOB: 1985-03-12", "DOB: [DATE_OF_BIRTH]"),
        ("geboren am 21.07.1990", "geboren am [DATE_OF_BIRTH]"),
        ("née le 12/03/1985", "née le [DATE_OF_BIRTH]"),
        ("born on March 3, 1985", "born on [DATE_OF_BIRTH]"),
    ],
)
def test_items_found_in_text(text: str, expected: str) -> None:
    """MAC addresses, coordinates, Spanish and French ids with their checksums, PGP keys, SAS signatures and
    passwords after a French, German or Spanish keyword are replaced."""
    assert _masked(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ORD-2024-154689",
        "colis 9852896388 en transit",
        "order 4155550142 shipped",
        "token rotation scheduled for next week",
        "price 12.5000, 13.4000",
        "ratio 0.42, 0.57",
        "scores: 0.1234, 0.5678",
        "order 12345678Z",  # a valid DNI's shape, but nothing says it is one
        "12345678A",  # the wrong check letter
        "ref 185057800608491",
        "1 85 05 78 006 084 36",  # the wrong key
        "00:00:00:00:00:00",
        "ff-ff-ff-ff-ff-ff",
        "pairs 12-34-56-78-90-12",
        "deploy 3f1c2a9b-8e7d-4c5b-a3f2-e1d0c9b8a7f6 at 2024-03-01T10:11:12.123456Z",
        "artifact md5 9e107d9d372bb6826bd81d3542a419d6 verified",
        "isbn 978-3-16-148410-0",
        "release v2.13.0 tagged",
        "license MIT 2.0",
        "licence expired in 2024",
        "license 2024-2025 renewal",
        "license key ABCD-1234-EFGH-5678",
        "DL 123456 bytes",
        "passport office closed",
        "born in 1985",
        "le 12/03/2024 livraison",
    ],
)
def test_innocent_look_alikes_are_left_alone(text: str) -> None:
    """Order and parcel numbers, amounts to four places, UUIDs, digests, ISBNs, broadcast addresses: unchanged."""
    assert _masked(text) == text


def test_a_phone_is_still_found_beside_an_identifier_word() -> None:
    """Only a bare digit run after ``order``/``colis`` is an identifier; a written phone number stays one."""
    assert _masked("order 4155550142, call +1 415-555-0142") == "order 4155550142, call [PHONE]"


def test_dates_of_birth_keep_their_form() -> None:
    """Day-first text keeps its separators, a yyyymmdd number stays a number, a year alone stays as it is."""
    year = build_generalize("DATE_OF_BIRTH", {}, None)  # type: ignore[arg-type]
    month = build_generalize("DATE_OF_BIRTH", {"granularity": "month"}, None)  # type: ignore[arg-type]
    assert [year(v) for v in ("12/03/1985", "21.07.1990", "3-7-1985", 19850312, 1985)] == [
        "01/01/1985", "01.01.1990", "1-1-1985", 19850101, 1985]
    assert [month(v) for v in ("21.07.1990", "07/21/1990", "12/03/1985", 19850312)] == [
        "01.07.1990", "07/01/1990", "[DATE_OF_BIRTH]", 19850301]


def test_coordinates_bucket_to_a_tenth_of_a_degree_in_their_type() -> None:
    """48.8566 -> 48.8 (a float, not 48.800000000000004), -3.7038 -> -3.8, text stays text."""
    bucket = build_bucket("LOCATION", {"size": 0.1}, None)  # type: ignore[arg-type]
    assert [bucket(v) for v in (48.8566, 48.8, -3.7038, "2.3522", None)] == [48.8, 48.8, -3.8, "2.3", None]


def _governed(raw: object) -> governed_db.GovernedConnection:
    return governed_db.wrap(
        raw, identity=governed_db.Identity("r20-agent", kind="agent"), environment="production", audit=False
    )


def test_sqlite_read_masks_with_types_kept() -> None:
    """A zero-configuration read of an IoT/HR table: coordinates stay floats, a numeric date of birth stays an
    int, day-first and ISO dates keep their form, MAC addresses are redacted, innocent columns come back exact."""
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE readings (id INTEGER, lat REAL, lng REAL, birth_date INTEGER, geburtsdatum TEXT, "
                "fecha_nacimiento DATE, device_mac TEXT, recorded_at TEXT, firmware_version TEXT)")
    raw.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (i, 48.8566 + i / 1000, 2.3522, 19850312, "21.07.1990", "1990-07-21", "00:1a:2b:3c:4d:5e",
         f"2024-03-01T10:11:{i:02d}.123456Z", "10.4.2.1") for i in range(12)])
    conn = _governed(raw)
    try:
        row = conn.execute("SELECT * FROM readings ORDER BY id").fetchone()
    finally:
        conn.close()
    assert row == (0, 48.8, 2.3, 19850101, "01.01.1990", "1990-01-01", "[MAC_ADDRESS]",
                   "2024-03-01T10:11:00.123456Z", "10.4.2.1")
    assert isinstance(row[1], float) and isinstance(row[3], int)


def test_duckdb_frame_keeps_dtypes_of_masked_columns() -> None:
    """DuckDB's ``.df()`` of a masked read has the dtypes of the unmasked one (float64, nullable Int32, datetime)."""
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE gdb_r20d_people (id INTEGER, lat DOUBLE, birth_date INTEGER, geburtsdatum DATE, "
                "mac VARCHAR)")
    raw.execute("INSERT INTO gdb_r20d_people SELECT i, 48.8566 + i / 1000, 19850312, DATE '1985-03-12', "
                "'00:1a:2b:3c:4d:5e' FROM range(20) t(i)")
    raw.execute("INSERT INTO gdb_r20d_people VALUES (99, NULL, NULL, NULL, NULL)")
    expected = raw.execute("SELECT * FROM gdb_r20d_people ORDER BY id").df().dtypes.to_dict()
    conn = _governed(raw)
    try:
        frame = conn.execute("SELECT * FROM gdb_r20d_people ORDER BY id").df()
    finally:
        conn.close()
    assert frame.dtypes.to_dict() == expected
    first = frame.iloc[0]
    assert (first["lat"], first["birth_date"], first["mac"]) == (48.8, 19850101, "[MAC_ADDRESS]")
    assert first["geburtsdatum"].to_pydatetime().date() == dt.date(1985, 1, 1)


def test_coordinates_arriving_after_an_empty_read_are_masked() -> None:
    """A ``position`` column read while its table was empty is looked at again once coordinates arrive."""
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE trips (id INTEGER, position TEXT, note TEXT)")
    conn = _governed(raw)
    try:
        assert conn.execute("SELECT position FROM trips").fetchall() == []
        raw.executemany("INSERT INTO trips VALUES (?, ?, ?)",
                        [(i, f"{48.01234 + i / 7:.5f}, {2.04321 + i / 9:.5f}", "ok") for i in range(40)])
        raw.commit()
        rows = conn.execute("SELECT position FROM trips ORDER BY id").fetchall()
    finally:
        conn.close()
    assert all("48." not in r[0] and "[LOCATION]" in r[0] for r in rows[:7]), rows[:7]


def test_social_alone_is_an_ssn_when_its_values_are() -> None:
    """``social`` holding nine-digit valid SSNs is US_SSN; holding handles or counts, nothing."""
    assert classify_column("t", "social", "INTEGER", [123456789, 234567890, 345678901] * 3).label == "US_SSN"
    assert classify_column("t", "social", "TEXT", ["123-45-6789", "234567890", "345678901"] * 3).label == "US_SSN"
    assert classify_column("t", "social", "TEXT", ["@alice", "twitter.com/bob", "12", "0"] * 3).label is None
    assert classify_column("t", "social", "INTEGER", [12, 0, 5, 9] * 3).label is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Spoke to Jean Dupont about renewal", "Spoke to [PERSON_NAME] about renewal"),
        ("hi, my name is Alice Smith", "hi, my name is [PERSON_NAME]"),
        ("Ana de la Cruz signed", "[PERSON_NAME] signed"),
        ("Sent by José García", "Sent by [PERSON_NAME]"),
        ("Élodie Durand called", "[PERSON_NAME] called"),
    ],
)
def test_names_in_prose_with_a_common_given_name_are_found(text: str, expected: str) -> None:
    """A capitalised pair starting with a common given name is a person's name in text (no NLP model)."""
    assert _masked(text) == expected


@pytest.mark.parametrize(
    "text",
    ["Meeting at the Grace Street office", "Parcel left at Victoria Station depot", "Will Power seminar",
     "Emma Stone Award ceremony", "Paul Revere House tour", "Google Cloud Platform", "Jan Update call moved",
     "Thanks, Alice", "Login Page"],
)
def test_places_things_and_words_shaped_like_names_are_left_alone(text: str) -> None:
    """A given name before a street, station, award or house word, or one that is a common word, is no person."""
    assert _masked(text) == text


def test_names_under_a_column_that_says_nothing_are_labelled() -> None:
    """``name`` outside a table of people, ``value``, ``data``: name-shaped values with given names are people."""
    people = ["Jean Dupont", "Marie Curie", "Hans Müller", "José García", "Kenji Nakamura", "Grace Hopper",
              "Omar Haddad", "Lucía Núñez", "Sophie Martin", "Ivan Petrov"]
    for column in ("name", "value", "data", "who_called"):
        assert classify_column("crm_leads", column, "TEXT", people * 2).label == "PERSON_NAME", column


def test_things_named_after_people_stay_unlabelled() -> None:
    """A ``book_title`` of novels (``Anna Karenina``), a ``venue`` (``Albert Hall``), an ``owner_id`` of names,
    product names: not a column of people."""
    novels = ["Anna Karenina", "Jane Eyre", "David Copperfield", "Oliver Twist", "Daniel Deronda", "Tom Jones"] * 3
    assert classify_column("t", "book_title", "TEXT", novels).label is None
    assert classify_column("t", "venue", "TEXT", ["Victoria Hall", "Albert Hall", "Carnegie Hall",
                                                  "Grace Cathedral", "Royal Exchange"] * 3).label is None
    assert classify_column("t", "name", "TEXT", ["Desk Lamp", "Wireless Mouse", "Coffee Mug", "Steel Bottle",
                                                 "Laptop Stand"] * 3).label is None


def test_names_found_in_a_name_columns_values_do_not_turn_it_into_free_text() -> None:
    """A ``full_name`` column of ``Alice Smith 0``... stays PERSON_NAME and is redacted whole: the names the
    given-name list finds inside its values must not make it free text, whose spans would leave ``Carla Mendez 2``
    (no listed given name) in clear (found by tests/test_masking_grouped_by_key.py in this round)."""
    names = ["Alice Smith", "Bob Jones", "Carla Mendez", "David Okafor", "Eva Novak", "Frank Miller"]
    values = [f"{names[i % 6]} {i}" for i in range(40)]
    assert classify_column("c", "full_name", "TEXT", values).label == "PERSON_NAME"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, full_name TEXT)")
    raw.executemany("INSERT INTO c VALUES (?, ?)", list(enumerate(values)))
    conn = _governed(raw)
    try:
        rows = conn.execute("SELECT id, full_name FROM c ORDER BY id").fetchall()
    finally:
        conn.close()
    assert {r[1] for r in rows} == {"[PERSON_NAME]"}
