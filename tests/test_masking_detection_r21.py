"""Zero-configuration detection, round 21 (decision 0409): people's names whose given name is in no list (under a
column of names, or after ``Name:``, ``Dear``, ``signed,``), street addresses in prose, vehicle identification
numbers and licence plates — and the innocent look-alikes beside them (product names, cities, greetings to no one,
counts before street-like product names, serial and part numbers of a VIN's shape) left alone."""

from __future__ import annotations

import random
import sqlite3

import pytest

import governed_db
from governed_db.masking import detect, recognizers
from governed_db.masking.classify import classify_column, classify_name

WORLD = [
    "Nguyen Thi Minh Khai",
    "Oluwaseun Adeyemi",
    "Xochitl Ramírez",
    "Tran Van Duc",
    "Chiamaka Okonkwo",
    "Farhad Karimi",
    "Thabo Ndlovu",
    "Itzel Tzompa",
    "Wanjiru Mwangi",
    "Siosaia Tupou",
]


def _masked(text: str) -> str:
    return detect.replace_spans(text, detect.find_spans(text))


def _governed(raw: object) -> governed_db.GovernedConnection:
    return governed_db.wrap(
        raw, identity=governed_db.Identity("r21-agent", kind="agent"), environment="production", audit=False
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Name: Nguyen Thi Minh Khai", "Name: [PERSON_NAME]"),
        ("Ticket 4. Name: NGUYEN Van An; seat 12A", "Ticket 4. Name: [PERSON_NAME]; seat 12A"),
        ("customer name: Oluwaseun Adeyemi", "customer name: [PERSON_NAME]"),
        ("Dear Oluwaseun Adeyemi, your order has shipped.", "Dear [PERSON_NAME], your order has shipped."),
        ("Dear Dr. Tzompa,", "Dear [PERSON_NAME],"),
        ("Dear Tupaq,", "Dear [PERSON_NAME],"),
        ("Refund approved. signed, Xochitl Ramírez", "Refund approved. signed, [PERSON_NAME]"),
        ("Kind regards, Aroha Ngata", "Kind regards, [PERSON_NAME]"),
        ("Hi, my name is Itzel Quispe and I need help", "Hi, my name is [PERSON_NAME] and I need help"),
        ("Bonjour, je m'appelle Wiremu Ngata", "Bonjour, je m'appelle [PERSON_NAME]"),
        ("Estimada Ngaio Dorje:", "Estimada [PERSON_NAME]:"),
        ("Dear John,", "Dear [PERSON_NAME],"),
    ],
)
def test_names_after_a_cue_are_found_whatever_their_given_name(text: str, expected: str) -> None:
    """After ``Name:``, ``Dear``, ``signed,``, ``Kind regards,``, ``my name is`` (and their French, German and Spanish
    forms), capitalised words are a person's name though no list holds them."""
    assert _masked(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Dear Customer, your order has shipped.",
        "Dear Valued Member, your plan renews soon.",
        "Dear all, the office is closed on Monday",
        "Kind regards, The Support Team",
        "Regards, Customer Service",
        "Sincerely, Accounts Department",
        "Regards, IT",
        "Name: Default",
        "Product name: Ergo Chair, colour black",
        "file name: Invoice March.pdf attached",
        "Name: Premium Plan upgrade requested",
        "Minh Long Porcelain Set arrived damaged",
        "Xochitl Cafe opens at nine",  # a name outside the lists, no cue: not found (and not asked to be)
    ],
)
def test_greetings_to_no_one_and_names_of_things_are_left_alone(text: str) -> None:
    """A greeting or signature of a group (``Dear Customer``, ``Regards, Support Team``), the name of a product or a
    file after ``name:``, a brand named after a person without a cue: unchanged."""
    assert _masked(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ship to 221B Baker Street, London NW1 6XE", "ship to [ADDRESS]"),
        ("ship to 221B Baker Street, London NW1 6XE today", "ship to [ADDRESS] today"),
        ("Deliver to 12 rue de la Paix, 75002 Paris before noon", "Deliver to [ADDRESS] before noon"),
        ("5 bis avenue Foch", "[ADDRESS]"),
        ("1600 Pennsylvania Ave NW, Washington, DC 20500", "[ADDRESS]"),
        ("HQ: 350 5th Avenue, New York, NY 10118", "HQ: [ADDRESS]"),
        ("moved to Hauptstraße 5, 10115 Berlin", "moved to [ADDRESS]"),
        ("entregar en Calle Mayor 12, 28013 Madrid", "entregar en [ADDRESS]"),
        ("leave it at 42 Elm Road if out", "leave it at [ADDRESS] if out"),
    ],
)
def test_street_addresses_in_prose_are_found(text: str, expected: str) -> None:
    """A house number, a street name and its type (English, French, German, Spanish order), with the city, state,
    ZIP or postcode after it, are one address."""
    assert _masked(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Meeting at the Grace Street office",
        "Baker Street Mug restocked, 40 units",
        "Pack of 4 Park Avenue Lamps back-ordered",
        "2 Park Avenue Lamps in stock",
        "Route 66 tribute tee sold out",
        "Studio 54 playlist added",
        "Model 3 Long Range demo unit returned",
        "Gate 12 Terminal 2 pickup for the courier",
        "Spring 2024 collection",
        "12 items shipped via Main Street depot",
        "Sunset Boulevard Poster, 3 left in stock",
        "Chapter 3 The Way of Kings",
        "Season 2 Abbey Road special",
    ],
)
def test_street_like_product_names_and_counts_are_left_alone(text: str) -> None:
    """A street without a house number, a count before a product named after a street, numbered gates and models:
    unchanged."""
    assert _masked(text) == text


def test_vin_check_digit() -> None:
    """ISO 3779's check digit (``X`` for ten) decides; a serial of the same shape with another ninth digit fails."""
    assert recognizers.vin_valid("1HGCM82633A004352") and recognizers.vin_valid("1M8GDM9AXKP042788")
    assert not recognizers.vin_valid("1HGCM82643A004352")
    assert not recognizers.vin_valid("11111111111111111")  # digits only
    assert not recognizers.vin_valid("1HGCM8263UA004352")  # a model year never U


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("VIN 1HGCM82633A004352 towed to the depot", "VIN [VEHICLE_ID] towed to the depot"),
        ("recall check done for 1M8GDM9AXKP042788", "recall check done for [VEHICLE_ID]"),
        ("1HGCM82633A004352", "[VEHICLE_ID]"),
        ("serial 1HGCM82643A004352 replaced", "serial 1HGCM82643A004352 replaced"),  # fails the check digit
        (
            "part 1HGCM82633A004352 fitted",
            "part 1HGCM82633A004352 fitted",
        ),  # passes it, but nothing says vehicle
    ],
)
def test_vins_are_found_by_their_check_digit(text: str, expected: str) -> None:
    """A VIN alone, or in text that speaks of a vehicle; a part number that passes the check by chance, in text that
    does not, stays."""
    assert _masked(text) == expected


@pytest.mark.parametrize(
    "column",
    [
        "licence_plate",
        "license_plate",
        "number_plate",
        "plate_number",
        "vehicle_registration",
        "kennzeichen",
        "immatriculation",
        "vin_number",
        "chassis_number",
        "vehicle_identification_number",
    ],
)
def test_licence_plate_and_vin_columns_are_labelled_by_name(column: str) -> None:
    """A column named for a licence plate or a VIN, in English, German or French, is VEHICLE_ID."""
    found = classify_name("t", column, "TEXT")
    assert found is not None and found.label == "VEHICLE_ID", found


@pytest.mark.parametrize(
    "column", ["plate", "plate_color", "serial_number", "part_number", "registration_date"]
)
def test_plate_alone_and_serial_columns_stay_unlabelled(column: str) -> None:
    """A bare ``plate`` (dinner, steel) or a serial number says nothing of a vehicle."""
    found = classify_name("t", column, "TEXT")
    assert found is None or found.label != "VEHICLE_ID", found


def test_vin_alone_is_a_vehicle_id_by_its_values() -> None:
    """``vin`` of VIN-shaped values is VEHICLE_ID even where check digits are not computed (European makers); ``vin``
    of wines (French) stays clear."""
    european = ["WVWZZZ1JZXW000001", "VF1BB0A0H12345678", "WBA8E9C50GK123456", "SALLAAA146A123456"] * 4
    assert classify_column("stock", "vin", "TEXT", european).label == "VEHICLE_ID"
    wines = ["Château Margaux 2015", "Chablis Premier Cru", "Sancerre blanc", "Côtes du Rhône"] * 4
    assert classify_column("cave", "vin", "TEXT", wines).label is None


def test_part_numbers_of_a_vins_length_do_not_label_a_column() -> None:
    """One part number in eleven passes the VIN check by chance: that share is no evidence of vehicles."""
    r = random.Random(21)
    parts = [
        f"{''.join(r.choices('ABCDEFGHJKLMNPRSTUVWXYZ', k=4))}{r.randint(10**12, 10**13 - 1)}"
        for _ in range(80)
    ]
    hits = sum(recognizers.vin_valid(p) for p in parts)
    assert 0 < hits < len(parts) // 2
    assert classify_column("t", "part_sku", "TEXT", parts).label is None


def test_rare_names_under_a_column_that_says_nothing_are_people() -> None:
    """``name`` in a CRM table of names from many cultures (the given name in no list, the surname common) is
    PERSON_NAME; a ``name`` of products holding such words is not."""
    assert classify_column("crm_leads", "name", "TEXT", WORLD * 2).label == "PERSON_NAME"
    products = [
        "Minh Long Porcelain Set",
        "Ergo Chair",
        "Kyoto Tea Bowl",
        "Lagos Print Tote",
        "Aztec Rug",
        "Nordic Wool Throw",
        "Andes Alpaca Scarf",
    ] * 2
    assert classify_column("catalog", "name", "TEXT", products).label is None


def test_addresses_in_an_address_column_do_not_turn_it_into_free_text() -> None:
    """An ``address`` column whose values hold a street address and more (``c/o``) stays ADDRESS, redacted whole:
    spans would leave the rest in clear."""
    values = [f"c/o Acme Ltd, {n} Baker Street, London NW1 6XE, second floor" for n in range(1, 30)]
    found = classify_column("t", "address", "TEXT", values)
    assert found.label == "ADDRESS", found


def test_sqlite_read_masks_rare_names_addresses_and_vehicles() -> None:
    """A zero-configuration read: names under ``name`` in a CRM table, an address and a note with one, a VIN, a
    plate and a letter with a cued name are masked; the product, the city, the serial number come back exact."""
    raw = sqlite3.connect(":memory:")
    raw.execute(
        "CREATE TABLE crm_leads (id INTEGER, name TEXT, product_name TEXT, city TEXT, ship_to TEXT, "
        "note TEXT, vin TEXT, licence_plate TEXT, serial_number TEXT, letter TEXT)"
    )
    raw.executemany(
        "INSERT INTO crm_leads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                i,
                WORLD[i % len(WORLD)],
                "Baker Street Mug",
                "Ho Chi Minh City",
                "221B Baker Street, London NW1 6XE",
                "ship to 12 rue de la Paix, 75002 Paris" if i % 2 else "Pack of 2 Park Avenue Lamps",
                "1HGCM82633A004352" if i % 2 else "1M8GDM9AXKP042788",
                f"AB{i:02d} CDE",
                "1HGCM82643A004352",
                f"Dear {WORLD[i % len(WORLD)]}, thanks" if i % 2 else "Dear Customer, thanks",
            )
            for i in range(20)
        ],
    )
    conn = _governed(raw)
    try:
        rows = conn.execute("SELECT * FROM crm_leads ORDER BY id").fetchall()
    finally:
        conn.close()
    assert rows[0] == (
        0,
        "[PERSON_NAME]",
        "Baker Street Mug",
        "Ho Chi Minh City",
        "[ADDRESS]",
        "Pack of 2 Park Avenue Lamps",
        "[VEHICLE_ID]",
        "[VEHICLE_ID]",
        "1HGCM82643A004352",
        "Dear Customer, thanks",
    )
    assert rows[1][4:6] == ("[ADDRESS]", "ship to [ADDRESS]") and rows[1][9] == "Dear [PERSON_NAME], thanks"
