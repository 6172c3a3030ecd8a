"""Red team round 5 (lite) of masking on SQLite and DuckDB: integer overflow of ``sum()``, a masked
``group_concat`` separator, ``json_object()`` key types, storage statistics (``dbstat``, ``sqlite_stat1``) —
and the other side of the issue: schema pragmas, ``IS NULL`` result columns, version strings and timestamps
that were over-masked, ``fetchnumpy()`` dtypes, and over-masking of a realistic mixed table. Decisions 0218
and 0219.

Each attack compares what the agent observes for a right guess with a wrong one; the raw connection is the
ground truth that the attack works there.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db.masking.detect import find_spans
from tests._redteam import govern
from tests.conftest import MYSQL_KW, PG_DSN

ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "+1 415 555 0142", "4111111111111111", "Paris"),
    (2, "Bob Jones", "bob.jones@example.org", "219-45-1234", "+44 20 7946 0958", "5500005555555559", "Lyon"),
]
DDL = "CREATE TABLE customers (id integer primary key, full_name text, email text, ssn text, phone {phone}, card text, city text)"


def outcome(conn: Any, sql: str) -> Any:
    """What the agent observes: the rows, or the error's class and text."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return ("rows", cur.fetchall() if cur.description else None, cur.rowcount)
    except Exception as e:
        return ("error", type(e).__name__, str(e))


def sqlite_pair(rows: list[tuple[Any, ...]] = ROWS, phone: str = "text", limit: int | None = None) -> tuple[Any, Any]:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    if limit is not None:
        raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limit)  # an application's own, lower length limit
    raw.execute(DDL.format(phone=phone))
    raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?)", rows)
    conn = govern(raw)
    assert outcome(conn, "SELECT ssn, city FROM customers WHERE id = 1")[1] == [("[US_SSN]", "Paris")]
    return raw, conn


def assert_oracle_closed(make: Any, right: str, wrong: str, column: str) -> None:
    """The raw connection tells the guesses apart; the governed one does not, and names the column."""
    raw, conn = make()
    raw_right, raw_wrong = outcome(raw, right), outcome(raw, wrong)
    assert raw_right != raw_wrong, "the oracle must be real on the raw connection"
    gov_right, gov_wrong = outcome(conn, right), outcome(conn, wrong)
    assert gov_right == gov_wrong
    assert gov_right[0] == "error" and "masked-column-predicate" in gov_right[2] and column in gov_right[2]


# -- SQLite sum(): "integer overflow" compares the value with a number -----------------------------------------
_SUM = (
    "SELECT sum(x) FROM (SELECT {expr} AS x FROM customers WHERE id = 1 "
    "UNION ALL SELECT 9223372036854775807 - {guess})"
)


@pytest.mark.parametrize(
    ("expr", "right", "wrong", "column"),
    [
        ("card", 4111111111111110, 4111111111111112, "customers.card"),  # is the card number above a guess?
        ("length(ssn)", 10, 11, "customers.ssn"),  # a number computed from the value
        ("length(email)", 16, 17, "customers.email"),
    ],
)
def test_sqlite_sum_overflow_is_no_oracle(expr: str, right: int, wrong: int, column: str) -> None:
    """sum() of a masked value UNION ALL ``2**63 - 1 - guess`` fails with "integer overflow" exactly when the
    value is larger than the guess: refused the same way for both guesses, naming the column."""
    assert_oracle_closed(
        sqlite_pair, _SUM.format(expr=expr, guess=right), _SUM.format(expr=expr, guess=wrong), column
    )
    _, conn = sqlite_pair()
    refused = outcome(conn, f"SELECT sum({expr}) OVER () FROM customers")  # a window sum too
    assert refused[0] == "error" and "integer overflow" in refused[2] and "total()" in refused[2]


def test_sqlite_sums_that_cannot_tell_keep_running() -> None:
    """Sums of unmasked columns are exact; total() and avg() of a masked value run (NULL: a derived number)."""
    _, conn = sqlite_pair()
    assert outcome(conn, "SELECT sum(id), total(id), sum(length(city)) FROM customers")[1] == [(3, 3.0, 9)]
    assert outcome(conn, "SELECT total(card), avg(card) FROM customers")[1] == [(None, None)]
    assert outcome(conn, "SELECT city, sum(id) FROM customers GROUP BY city ORDER BY city")[1] == [
        ("Lyon", 2),
        ("Paris", 1),
    ]


# -- a masked group_concat separator: repeated per row, its length reaches the length limit ----------------------
_SEPARATOR = (
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < {n}) "
    "SELECT count(*) FROM (SELECT group_concat('', c.ssn) AS g FROM r, customers c WHERE c.id = 1)"
)


def test_group_concat_masked_separator_tells_no_length() -> None:
    """``group_concat('', ssn)`` over n rows is (n - 1) x the SSN's length long: under a length limit of 20,000,
    1,820 rows fail exactly when the SSN has 11 characters (1,668 when it has 12)."""
    def guess(length: int) -> str:
        return _SEPARATOR.format(n=20000 // length + 2)

    assert_oracle_closed(lambda: sqlite_pair(limit=20000), guess(11), guess(12), "customers.ssn")
    _, conn = sqlite_pair(limit=20000)
    # a masked value with a literal separator, and unmasked columns with any separator, still run
    assert outcome(conn, "SELECT group_concat(ssn, ' | '), group_concat(id, city) FROM customers")[1] == [
        ("[US_SSN]", "1Lyon2")
    ]


def test_duckdb_string_agg_masked_separator_is_refused() -> None:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE customers (id INTEGER, full_name VARCHAR, ssn VARCHAR, city VARCHAR)")
    raw.execute("INSERT INTO customers VALUES (1, 'Alice Smith', '536-22-8726', 'Paris'), (2, 'Bob Jones', '219-45-1234', 'Lyon')")
    conn = govern(raw)
    refused = outcome(conn, "SELECT string_agg(city, ssn) FROM customers")
    assert refused[0] == "error" and "customers.ssn" in refused[2] and "separator" in refused[2]
    assert outcome(conn, "SELECT string_agg(city, ', ' ORDER BY id) FROM customers")[1] == [("Paris, Lyon",)]


# -- SQLite json_object(): a key must be TEXT -------------------------------------------------------------------
def test_sqlite_json_object_key_type_is_no_oracle() -> None:
    """In a column of NUMERIC affinity an all-digit phone is stored as an integer, and ``json_object(phone, 1)``
    fails with "labels must be TEXT" for it only: whether the phone is written with separators."""
    others = [
        (i, "Bob Jones", f"bob{i}@example.org", "219-45-1234", f"14155550{100 + i}", "5500005555555559", "Lyon")
        for i in range(2, 12)
    ]
    digits = [(1, "Alice Smith", "a@example.com", "536-22-8726", "14155550142", "4111111111111111", "Paris"), *others]
    spaced = [(1, "Alice Smith", "a@example.com", "536-22-8726", "+1 415 555 0142", "4111111111111111", "Paris"), *others]
    sql = "SELECT json_object(phone, 1) FROM customers WHERE id = 1"
    raw_digits, gov_digits = sqlite_pair(digits, phone="numeric")
    raw_spaced, gov_spaced = sqlite_pair(spaced, phone="numeric")
    assert outcome(raw_digits, sql)[0] == "error" and outcome(raw_spaced, sql)[0] == "rows"
    assert outcome(gov_digits, sql) == outcome(gov_spaced, sql)
    assert "customers.phone" in outcome(gov_digits, sql)[2] and "CAST" in outcome(gov_digits, sql)[2]
    # a masked value as a JSON value, or a key cast to text, runs and comes back masked
    for conn in (gov_digits, gov_spaced):
        rows = outcome(conn, "SELECT json_object('phone', phone), json_object(CAST(phone AS TEXT), 1) FROM customers")
        assert rows[0] == "rows" and all(v == "[PHONE]" for row in rows[1] for v in row)


# -- SQLite storage statistics ------------------------------------------------------------------------------------
def test_sqlite_dbstat_is_refused() -> None:
    """dbstat's payload bytes are the summed lengths of the values on each page: refused like pg_stats."""
    longer = [(1, "Alice Smith", "alice@example.com", "536-22-87260", *ROWS[0][4:]), *ROWS[1:]]
    observed = []
    for rows in (ROWS, longer):
        raw, conn = sqlite_pair(rows)
        sql = "SELECT sum(payload) FROM dbstat WHERE name = 'customers'"
        observed.append((outcome(raw, sql), outcome(conn, sql), outcome(conn, "SELECT * FROM dbstat('main')")))
    assert observed[0][0] != observed[1][0]  # the raw connection measures the SSN's length
    assert observed[0][1:] == observed[1][1:]
    assert all(o[0] == "error" and "system-catalog" in o[2] and "dbstat" in o[2] for o in observed[0][1:])


@pytest.mark.parametrize(("guess", "stat"), [("536-22-8726", "3 2"), ("536-22-8727", "3 1")])
def test_sqlite_stat1_is_refused(guess: str, stat: str) -> None:
    """After a row holding a guess is inserted, ANALYZE counts the rows per distinct value of an index on the
    masked column: sqlite_stat1 says whether the guess is stored. Reading it is refused."""
    raw, conn = sqlite_pair()
    raw.execute("CREATE INDEX ix_ssn ON customers(ssn)")
    assert outcome(conn, f"INSERT INTO customers (id, city, ssn) VALUES (3, 'Rome', '{guess}')")[0] == "rows"
    raw.execute("ANALYZE")  # an approved maintenance statement, or the application's own
    assert outcome(raw, "SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_ssn'")[1] == [(stat,)]
    refused = outcome(conn, "SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_ssn'")
    assert refused[0] == "error" and "system-catalog" in refused[2] and "sqlite_stat1" in refused[2]
    assert outcome(conn, "SELECT name FROM sqlite_master WHERE type = 'index'")[1] == [("ix_ssn",)]


# -- over-masking: schema pragmas, IS NULL, version strings and timestamps ---------------------------------------
def test_schema_pragmas_come_back_exactly() -> None:
    """pragma_table_info's ``cid`` is a column number, not a card security code: both forms of the schema pragmas
    come back as the raw connection returns them; a real ``cid`` column is still masked."""
    raw, conn = sqlite_pair()
    raw.execute("CREATE INDEX ix_email ON customers(email)")
    raw.execute("CREATE TABLE cards (id integer primary key, card_number text, cid integer)")
    raw.execute("INSERT INTO cards VALUES (1, '4111111111111111', 737)")
    for sql in (
        "SELECT * FROM pragma_table_info('customers')",
        "PRAGMA table_info(customers)",
        "PRAGMA main.table_xinfo('customers')",
        "SELECT * FROM pragma_index_info('ix_email')",
        "PRAGMA index_xinfo(ix_email)",
        "SELECT p.cid, p.name FROM pragma_table_info('cards') p",
    ):
        assert outcome(conn, sql) == outcome(raw, sql), sql
    assert outcome(conn, "SELECT cid FROM cards")[1] != [(737,)]
    refused = outcome(conn, "SELECT * FROM customers c, pragma_table_info(c.email)")
    assert refused[0] == "error" and "customers.email" in refused[2]


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_is_null_result_column_runs(engine: str) -> None:
    """``SELECT email IS NOT NULL`` converts nothing, so it is no comparison that could fail: it runs on every
    engine, exactly (the column's NULLs show in its masked output anyway, decision 0209), as ``WHERE email IS NOT
    NULL`` does."""
    raw = pytest.importorskip("duckdb").connect() if engine == "duckdb" else sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE people (id INTEGER, full_name VARCHAR, email VARCHAR)")
    raw.execute("INSERT INTO people VALUES (1, 'Alice Smith', 'alice@example.com'), (2, 'Bob Jones', NULL)")
    conn = govern(raw)
    assert [(i, bool(v)) for i, v in outcome(conn, "SELECT id, email IS NOT NULL AS has_email FROM people ORDER BY id")[1]] == [
        (1, True),
        (2, False),
    ]
    # over a computed value it is no such test: ``nullif(substr(email, 1, 1), 'a') IS NULL`` would compare
    computed = outcome(conn, "SELECT nullif(substr(email, 1, 1), 'a') IS NULL FROM people ORDER BY id")
    assert computed[0] == "error" or all(v is None for (v,) in computed[1])
    assert outcome(conn, "SELECT id FROM people WHERE email IS NOT NULL")[1] == [(1,)]
    refused = outcome(conn, "SELECT email = 'alice@example.com' FROM people")
    assert engine == "sqlite" or (refused[0] == "error" and "people.email" in refused[2])


@pytest.mark.parametrize(
    "text",
    [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/93.0.1001.155",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0.6099.109 Safari/537.36 Edg/120.0.2210.91",
        "version 93.0.1001.155",
        "2024-01-02 10:11:12.123456",
        "retry at 10:11:12.123456",
        "48.856613, 2.352222",
    ],
)
def test_versions_decimals_and_timestamps_are_not_phones(text: str) -> None:
    # a coordinate pair is no phone number, but a place: LOCATION since decision 0394
    assert [s.label for s in find_spans(text)] == (["LOCATION"] if text == "48.856613, 2.352222" else [])


@pytest.mark.parametrize("text", ["call 415.555.0142", "+44.20.7946.0958", "tel/415.555.0142", "+1 415 555 0142"])
def test_dotted_phones_are_still_phones(text: str) -> None:
    assert [s.label for s in find_spans(text)] == ["PHONE"]


def test_microsecond_timestamps_are_not_a_masked_column() -> None:
    """A TEXT ``created_at`` of ``2024-01-02 10:11:12.123456`` was read as holding phone numbers (``12.123456``):
    its cells came back as ``10:11:[PHONE]`` and filters on it were refused."""
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT, created_at TEXT, user_agent TEXT)")
    rows = [
        (i, "login", f"2024-01-02 10:11:{i % 60:02d}.{123456 + i:06d}", f"Mozilla/5.0 Chrome/{90 + i % 30}.0.{1000 + i}.{i}")
        for i in range(50)
    ]
    raw.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
    conn = govern(raw)
    assert outcome(conn, "SELECT * FROM events ORDER BY id")[1] == rows
    assert outcome(conn, "SELECT count(*) FROM events WHERE created_at > '2024-01-02 10:11:30'")[1] == [(20,)]


def test_duckdb_fetchnumpy_keeps_dtypes() -> None:
    """fetchnumpy() keeps a masked column's dtype when the masked values fit it: a number NULLed because it is
    derived from a masked column stays an int64 masked array, a generalized date a datetime64 one."""
    pytest.importorskip("duckdb")
    import duckdb
    import numpy as np

    raw = duckdb.connect()
    raw.execute("CREATE TABLE people (id INTEGER, full_name VARCHAR, email VARCHAR, date_of_birth DATE)")
    raw.execute("INSERT INTO people VALUES (1, 'Alice Smith', 'alice@example.com', DATE '1984-05-12'), (2, 'Bob Jones', NULL, NULL)")
    conn = govern(raw)
    sql = "SELECT id, length(email) AS l, email, date_of_birth FROM people ORDER BY id"
    want, got = raw.execute(sql).fetchnumpy(), conn.execute(sql).fetchnumpy()
    for name in ("l", "email", "date_of_birth"):
        assert got[name].dtype == want[name].dtype, name
        assert isinstance(got[name], np.ma.MaskedArray)
    assert got["l"].mask.tolist() == [True, True]
    assert got["date_of_birth"][0] == np.datetime64("1984-01-01")
    assert got["email"].tolist() == ["a***@example.com", None]


# -- over-masking of innocent cells in a realistic mixed table -------------------------------------------------------
_CITIES = ["Paris", "Lyon", "Berlin", "Austin", "Springfield", "Jackson", "Charlotte", "Victoria", "Lincoln", "Salem"]
_PRODUCTS = ["Widget Pro", "Router AC1200", "Kindle Paperwhite", "Galaxy S21", "Jordan Retro 4", "Dr. Martens 1460"]
_STATUSES = ["shipped", "pending", "delivered", "cancelled", "on hold", "refunded"]
_MIXED = (
    "id integer, city text, country text, product text, sku text, status text, version text, amount real, "
    "quantity integer, order_date text, shipped_at text, logged_at text, currency text, order_number integer, "
    "invoice_number text, notes text, user_agent text, latitude text, customer_name text, customer_email text"
)


def _mixed_rows(n: int) -> list[tuple[Any, ...]]:
    rnd = random.Random(7)

    def version() -> str:
        return rnd.choice([
            f"firmware {rnd.randint(1, 15)}.{rnd.randint(0, 9)}.{rnd.randint(0, 9)}.{rnd.randint(0, 20)}",
            f"{rnd.randint(1, 15)}.{rnd.randint(0, 9)}.{rnd.randint(0, 9)}.{rnd.randint(0, 255)}",
            f"v{rnd.randint(0, 5)}.{rnd.randint(0, 30)}.{rnd.randint(0, 99)}",
            f"10.0.{rnd.randint(10000, 22631)}.{rnd.randint(100, 3803)}",
        ])  # fmt: skip

    def when(micro: bool = False) -> str:
        day = f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        clock = f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}"
        return f"{day} {clock}" + (f".{rnd.randint(0, 999999):06d}" if micro else "")

    notes = [
        "Delivered to front desk", "Upgraded to firmware 10.4.2.1", "Signature required", "Password reset not needed",
        f"Order {rnd.randint(100000000, 999999999)} merged", f"Ticket #{rnd.randint(10000, 99999)} closed",
    ]  # fmt: skip
    return [
        (
            i, rnd.choice(_CITIES), rnd.choice(["FR", "DE", "US"]), rnd.choice(_PRODUCTS),
            f"SKU-{rnd.randint(10000, 99999)}", rnd.choice(_STATUSES), version(), round(rnd.uniform(1, 5000), 2),
            rnd.randint(1, 50), when()[:10], when(), when(micro=True), rnd.choice(["EUR", "USD"]),
            rnd.randint(100000000, 999999999), f"{rnd.randint(1000000000, 9999999999)}", rnd.choice(notes),
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/{rnd.randint(90, 120)}.0.{rnd.randint(1000, 6000)}.{rnd.randint(10, 200)}",
            f"{rnd.uniform(-90, 90):.6f}", f"{rnd.choice(['Alice', 'Carol', 'Dan'])} {rnd.choice(['Smith', 'Brown'])}",
            f"user{i}@example.com",
        )
        for i in range(n)
    ]  # fmt: skip


def _mixed_pair(engine: str, rows: list[tuple[Any, ...]]) -> Iterator[tuple[Any, Any]]:
    marks = ",".join("?" * len(rows[0]))
    if engine == "duckdb":
        raw = pytest.importorskip("duckdb").connect()
        ddl = _MIXED.replace("integer", "bigint").replace("text", "varchar").replace("real", "double")
        raw.execute(f"CREATE TABLE orders ({ddl})")
        raw.executemany(f"INSERT INTO orders VALUES ({marks})", [list(r) for r in rows])
    else:
        raw = sqlite3.connect(":memory:")
        raw.execute(f"CREATE TABLE orders ({_MIXED})")
        raw.executemany(f"INSERT INTO orders VALUES ({marks})", rows)
    yield raw, govern(raw)


@pytest.mark.parametrize("engine", ["sqlite", "duckdb"])
def test_overmasking_of_a_realistic_mixed_table(engine: str) -> None:
    """City, product, status, version strings (``firmware 10.4.2.1``, bare dotted quads), amounts, dates,
    microsecond timestamps, order numbers, notes, user agents, coordinates: at most 1 % of the innocent cells
    come back changed (measured: 0); the two PII columns are masked in every row."""
    rows = _mixed_rows(300)
    for raw, conn in _mixed_pair(engine, rows):
        got = conn.execute("SELECT * FROM orders ORDER BY id").fetchall()
        want = raw.execute("SELECT * FROM orders ORDER BY id").fetchall()
        innocent = changed = pii = 0
        for g, w in zip(got, want, strict=True):
            # ``latitude`` is where an order went: a place, coarsened to a tenth of a degree since decision 0394
            for a, b in zip(g[:-3], w[:-3], strict=True):
                innocent += 1
                changed += a != b
            assert abs(float(g[-3]) - float(w[-3])) < 0.1 and len(g[-3].split(".")[1]) == 1, (g[-3], w[-3])
            pii += sum(a != b for a, b in zip(g[-2:], w[-2:], strict=True))
        assert changed / innocent <= 0.01 and changed == 0
        assert pii == 2 * len(rows)


@pytest.mark.parametrize("declared", ["numeric", "NUMERIC(15)", "decimal(15, 0)", "bigint"])
def test_whole_number_phone_columns_are_masked(declared: str) -> None:
    """A ``phone NUMERIC`` column (SQLite stores 14155550142 as an integer) came back in clear: the name rule
    for phones skipped every NUMERIC/DECIMAL column as a fractional number."""
    rows = [(i, "Bob Jones", f"b{i}@example.org", "219-45-1234", 14155550100 + i, "5500005555555559", "Paris") for i in range(1, 6)]
    _raw, conn = sqlite_pair(rows, phone=declared)
    got = outcome(conn, "SELECT id, phone FROM customers ORDER BY id")[1]
    assert [r[0] for r in got] == [1, 2, 3, 4, 5]
    assert not any(str(14155550100 + i) in repr(got) for i in range(1, 6))


def test_fractional_decimal_columns_named_like_phones_are_not_phones() -> None:
    from governed_db.masking.classify import classify_name

    assert classify_name("customers", "phone", "decimal(10, 2)") is None
    assert classify_name("customers", "phone", "numeric").label == "PHONE"  # type: ignore[union-attr]


# -- user functions under names masking trusts ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["upper", "UPPER", "reverse", "md5", "total", "abs", "sum"])
def test_sqlite_user_function_cannot_replace_a_known_one(name: str) -> None:
    """``conn.create_function('upper', 1, f)`` then ``SELECT upper(ssn)``: masking lets ``upper`` through (its
    result is masked whole), but the Python function was called with every raw SSN. Refused, naming the name."""
    raw, conn = sqlite_pair()
    seen: list[Any] = []
    raw.create_function(name, 1, seen.append)  # the raw connection: the callback sees the SSNs
    raw.execute(f"SELECT {name}(ssn) FROM customers").fetchall()
    assert "536-22-8726" in seen
    for register in (conn.create_function, conn.create_aggregate, conn.create_window_function):
        with pytest.raises(governed_db.GuardrailViolation, match=f"'{name}' would replace one"):
            register(name, 1, seen.append)


def test_sqlite_user_functions_and_collations_of_their_own_still_register() -> None:
    _, conn = sqlite_pair()
    seen: list[Any] = []
    conn.create_function("my_score", 1, lambda v: seen.append(v) or 7)
    assert outcome(conn, "SELECT my_score(city) FROM customers ORDER BY id")[1] == [(7,), (7,)]
    refused = outcome(conn, "SELECT my_score(ssn) FROM customers")  # a masked value given to it is a copy
    assert refused[0] == "error" and "customers.ssn" in refused[2]
    assert seen == ["Paris", "Lyon"]
    conn.create_collation("backwards", lambda a, b: (a < b) - (a > b))
    assert outcome(conn, "SELECT city FROM customers ORDER BY city COLLATE backwards")[1] == [("Paris",), ("Lyon",)]
    with pytest.raises(governed_db.GuardrailViolation, match="'NOCASE' would replace one"):
        conn.create_collation("NOCASE", lambda a, b: 0)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aiosqlite_user_function_cannot_replace_a_known_one(anyio_backend: str) -> None:
    aiosqlite = pytest.importorskip("aiosqlite")
    raw = await aiosqlite.connect(":memory:")
    try:
        await raw.execute("CREATE TABLE customers (id integer primary key, full_name text, ssn text, city text)")
        await raw.execute("INSERT INTO customers VALUES (1, 'Alice Smith', '536-22-8726', 'Paris')")
        conn = govern(raw)
        seen: list[Any] = []
        for name in ("upper", "abs"):
            with pytest.raises(governed_db.GuardrailViolation, match=f"'{name}' would replace one"):
                await conn.create_function(name, 1, seen.append)
        await conn.create_function("my_score", 1, lambda v: seen.append(v) or 7)
        assert await conn.execute_fetchall("SELECT my_score(city) FROM customers") == [(7,)]
        assert await conn.execute_fetchall("SELECT upper(ssn) FROM customers") == [("[US_SSN]",)]
        assert seen == ["Paris"]
    finally:
        await raw.close()


def test_sqlite_math_functions_may_stand_in() -> None:
    """SQLAlchemy registers ``floor`` as ``math.floor`` on every connection: a C function of math keeps nothing."""
    import math

    _, conn = sqlite_pair()
    conn.create_function("floor", 1, math.floor)
    with pytest.raises(governed_db.GuardrailViolation, match="'floor' would replace one"):
        conn.create_function("floor", 1, print)  # a builtin that writes the values somewhere


# -- full-text indexes (FTS5/FTS4) over personal data --------------------------------------------------------------
FTS_FRAGMENTS = ["Alice", "alice", "Smith", "smith", "0142", "jones", "616C696365"]  # hex of alice


def fts_pair() -> tuple[Any, Any]:
    raw, conn = sqlite_pair()
    raw.execute("CREATE VIRTUAL TABLE customers_fts USING fts5(full_name, email, notes)")
    raw.execute("INSERT INTO customers_fts SELECT full_name, email, 'call me at ' || phone FROM customers")
    raw.execute("CREATE VIRTUAL TABLE customers_vocab USING fts5vocab(customers_fts, 'row')")
    raw.execute("CREATE VIRTUAL TABLE people_fts4 USING fts4(full_name, email)")
    raw.execute("INSERT INTO people_fts4 SELECT full_name, email FROM customers")
    raw.execute("CREATE VIRTUAL TABLE docs_fts USING fts5(title, body)")
    raw.executemany(
        "INSERT INTO docs_fts VALUES (?, ?)", [(f"Release notes {i}", f"Router firmware update {i}") for i in range(40)]
    )
    return raw, conn


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM customers_fts_content",
        "SELECT * FROM customers_fts_data",
        "SELECT hex(block) FROM customers_fts_data",
        "SELECT * FROM customers_vocab",
        "SELECT * FROM people_fts4_content",
        "SELECT * FROM people_fts4_segdir",
    ],
)
def test_full_text_shadow_tables_and_vocabularies_are_masked(sql: str) -> None:
    """A full-text table keeps the indexed text in shadow tables (``t_content``: ``c0``, ``c1``) and its tokens in
    others (``t_data``, ``t_segdir``, an ``fts5vocab`` table): ``Alice Smith`` came back in clear from them."""
    raw, conn = fts_pair()
    assert any(f in repr(outcome(raw, sql)) for f in FTS_FRAGMENTS), "the raw connection shows the text"
    got = outcome(conn, sql)
    assert got[0] == "rows" and len(got[1]) == len(outcome(raw, sql)[1])
    assert not [f for f in FTS_FRAGMENTS if f in repr(got)]


def test_full_text_table_called_as_a_function_is_a_match() -> None:
    """``SELECT rowid FROM customers_fts('alice')`` is ``customers_fts MATCH 'alice'``: rows for a right guess,
    none for a wrong one. Refused as the MATCH form is."""
    assert_oracle_closed(
        fts_pair, "SELECT rowid FROM customers_fts('alice')", "SELECT rowid FROM customers_fts('zorro')",
        "customers_fts",
    )  # fmt: skip


def test_full_text_searches_of_innocent_text_run() -> None:
    """A full-text table of product text (no masked column) may be searched in every form, as before the MATCH
    form was refused for holding a merely scanned ``body``."""
    raw, conn = fts_pair()
    for sql in (
        "SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'router' ORDER BY rowid",
        "SELECT rowid, title FROM docs_fts('firmware') ORDER BY rowid",
        "SELECT rowid FROM docs_fts WHERE body MATCH 'router' ORDER BY rowid",
        "SELECT * FROM docs_fts_content ORDER BY id",
    ):
        assert outcome(conn, sql) == outcome(raw, sql), sql
    assert outcome(conn, "SELECT count(*) FROM customers_fts")[1] == [(2,)]


# -- generated columns computed from a masked column -----------------------------------------------------------------
def _generated_table(engine: str) -> tuple[Any, Any, Any]:
    """(raw connection, governed connection, cleanup) holding ``search_name AS (lower(full_name))``."""
    rows = "(1, 'Alice Smith', 'Paris'), (2, 'Bob Jones', 'Lyon')"
    table = "rt5lite_people"
    if engine == "duckdb":
        raw = pytest.importorskip("duckdb").connect()
        raw.execute(f"CREATE TABLE {table} (id INTEGER, full_name VARCHAR, city VARCHAR, "
                    "search_name VARCHAR GENERATED ALWAYS AS (lower(full_name)), city_upper VARCHAR GENERATED ALWAYS AS (upper(city)))")  # fmt: skip
        raw.execute(f"INSERT INTO {table} (id, full_name, city) VALUES {rows}")
        return raw, govern(raw), raw.close
    if engine == "postgres":
        psycopg = pytest.importorskip("psycopg")
        try:
            raw = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
        except Exception:
            pytest.skip("no PostgreSQL server")
        raw.execute(f"DROP TABLE IF EXISTS {table}")
        raw.execute(f"CREATE TABLE {table} (id int primary key, full_name text, city text, "
                    "search_name text GENERATED ALWAYS AS (lower(full_name)) STORED, "
                    "city_upper text GENERATED ALWAYS AS (upper(city)) STORED)")  # fmt: skip
    else:
        pymysql = pytest.importorskip("pymysql")
        try:
            raw = pymysql.connect(autocommit=True, connect_timeout=3, **MYSQL_KW)
        except Exception:
            pytest.skip("no MariaDB server")
        cur = raw.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} (id int primary key, full_name varchar(100), city varchar(50), "
                    "search_name varchar(100) AS (lower(full_name)) VIRTUAL, city_upper varchar(50) AS (upper(city)) VIRTUAL)")  # fmt: skip
    raw.cursor().execute(f"INSERT INTO {table} (id, full_name, city) VALUES {rows}")

    def cleanup() -> None:
        raw.cursor().execute(f"DROP TABLE {table}")
        raw.close()

    return raw, govern(raw), cleanup


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "mysql"])
def test_generated_column_of_a_masked_column_is_masked(engine: str) -> None:
    """``search_name AS (lower(full_name))`` came back as ``alice smith``: its own name and values say nothing,
    but it is computed from a masked column. A generated column over innocent ones stays exact."""
    _raw, conn, cleanup = _generated_table(engine)
    try:
        cur = conn.cursor()
        cur.execute("SELECT id, search_name, city_upper FROM rt5lite_people ORDER BY id")
        got = [tuple(r) for r in cur.fetchall()]
        assert got == [(1, "[PERSON_NAME]", "PARIS"), (2, "[PERSON_NAME]", "LYON")]
        cur.execute("SELECT city_upper, count(*) FROM rt5lite_people WHERE city_upper = 'PARIS' GROUP BY city_upper")
        assert [tuple(r) for r in cur.fetchall()] == [("PARIS", 1)]
        refused = outcome(conn, "SELECT id FROM rt5lite_people WHERE search_name LIKE 'a%'")
        assert refused[0] == "error" and "search_name" in refused[2]
    finally:
        cleanup()


# -- SQLite writes with RETURNING under the effect guard -------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO customers (id, city) VALUES (7, 'Rome') RETURNING id",
        "UPDATE customers SET city = 'Nice' WHERE id = 2 RETURNING id, city",
    ],
)
def test_sqlite_returning_under_the_effect_guard_is_a_clear_refusal(sql: str) -> None:
    """A bounded write with RETURNING failed with a GovernanceFault after running (the savepoint could not be
    released while its rows were unread): it is refused before it runs, saying what to do instead."""
    raw, conn = sqlite_pair()
    before = raw.execute("SELECT id, city FROM customers ORDER BY id").fetchall()
    refused = outcome(conn, sql)
    assert refused[0] == "error" and refused[1] == "GuardrailViolation" and "without RETURNING" in refused[2]
    assert raw.execute("SELECT id, city FROM customers ORDER BY id").fetchall() == before
    assert outcome(conn, sql.split(" RETURNING")[0])[0] == "rows"  # the write itself runs


def test_full_text_tables_with_masked_columns_can_be_read() -> None:
    """Every read of a full-text table holding a masked column was refused by the row-order guard (0160): a
    virtual table's order was unknown. A full-text table scanned without MATCH returns rows by rowid."""
    raw, conn = fts_pair()
    for sql in (
        "SELECT rowid, full_name FROM customers_fts WHERE rowid = 1",
        "SELECT full_name, email FROM customers_fts ORDER BY rowid",
        "SELECT * FROM customers_fts",
        "SELECT * FROM people_fts4",
    ):
        got, want = outcome(conn, sql), outcome(raw, sql)
        assert got[0] == "rows" and len(got[1]) == len(want[1]), sql
        assert not [f for f in FTS_FRAGMENTS if f in repr(got)], sql


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aiosqlite_factories_never_see_a_value(anyio_backend: str) -> None:
    """aiosqlite hands ``conn.row_factory``/``text_factory`` (and a cursor's ``row_factory``) to sqlite3, which
    called them with every raw value — governed_db's own samples too — before masking (decision 0170 covered
    sqlite3 only). Custom ones are refused; ``sqlite3.Row`` and ``None`` keep working, masked."""
    aiosqlite = pytest.importorskip("aiosqlite")
    raw = await aiosqlite.connect(":memory:")
    try:
        await raw.execute("CREATE TABLE customers (id integer primary key, full_name text, ssn text, city text)")
        await raw.execute("INSERT INTO customers VALUES (1, 'Alice Smith', '536-22-8726', 'Paris')")
        conn = govern(raw)
        seen: list[Any] = []
        with pytest.raises(governed_db.GuardrailViolation, match="row_factory"):
            conn.row_factory = lambda cur, row: seen.append(row) or row
        with pytest.raises(governed_db.GuardrailViolation, match="text_factory"):
            conn.text_factory = lambda b: seen.append(b) or b.decode()
        cur = await conn.cursor()
        with pytest.raises(governed_db.GuardrailViolation, match="row_factory"):
            cur.row_factory = lambda c, row: seen.append(row) or row
        conn.row_factory = sqlite3.Row
        rows = await conn.execute_fetchall("SELECT ssn, city FROM customers")
        assert [tuple(r) for r in rows] == [("[US_SSN]", "Paris")] and rows[0]["city"] == "Paris"
        conn.row_factory = None
        conn.text_factory = str
        assert await conn.execute_fetchall("SELECT ssn, city FROM customers") == [("[US_SSN]", "Paris")]
        assert seen == []
    finally:
        await raw.close()
