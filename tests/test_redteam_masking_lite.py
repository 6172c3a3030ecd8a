"""Red team of masking on SQLite (sqlite3) and DuckDB through what a hostile agent holding the governed
connection can reach: driver attributes (row_factory, text_factory, setlimit), fetch-time errors, printf
widths, storage statistics and the dataframe exits. Decision 0170.

Each attack compares what the agent observes for a right guess with a wrong one (or checks every byte it
gets back for a fragment of a secret); the raw connection is the ground truth that the attack would work.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, leaked

SECRETS = {
    "full_name": "Alice Smith",
    "email": "alice@example.com",
    "ssn": "536-22-8726",
    "phone": "+1 415 555 0142",
    "api_key": "sk_live_51H8abcdEFGHijklMNOPqrstUVwx",
    "iban": "DE89370400440532013000",
    "card": "4111111111111111",
}
ROWS = [
    (1, *SECRETS.values(), "Paris"),
    (2, "Bob Jones", "bob.jones@example.org", "219-45-1234", "+44 20 7946 0958",
     "ghp_R4nd0mT0k3nAbCdEfGhIjKlMnOpQrStUv12", "GB82WEST12345698765432", "5500005555555559", "Lyon"),
]  # fmt: skip
DDL = "(id int primary key, full_name {t}, email {t}, ssn {t}, phone {t}, api_key {t}, iban {t}, card {t}, city {t})"
FRAGMENTS = ["Alice", "Smith", "alice@", "536-22", "8726", "415 555", "51H8abcd", "3704004405", "41111111111"]


def outcome(conn: Any, sql: str) -> Any:
    """What the agent observes: the rows, or the error's class and text."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return ("rows", cur.fetchall() if cur.description else None)
    except Exception as e:
        return ("error", type(e).__name__, str(e))


@pytest.fixture
def sqlite_pair() -> Iterator[tuple[sqlite3.Connection, Any]]:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE customers " + DDL.format(t="text"))
    raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?)", ROWS)
    conn = govern(raw)
    assert outcome(conn, "SELECT ssn, city FROM customers WHERE id = 1") == ("rows", [("[US_SSN]", "Paris")])
    yield raw, conn
    raw.close()


@pytest.fixture
def duck_pair() -> Iterator[tuple[Any, Any]]:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE customers " + DDL.format(t="varchar"))
    raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?)", [list(r) for r in ROWS])
    yield raw, govern(raw)
    raw.close()


# -- fetch-time decoding errors (sqlite3) -------------------------------------------------------------------
_FF = "CAST(x'ff' AS TEXT)"


@pytest.mark.parametrize("column", ["full_name", "email", "ssn", "api_key", "iban", "card"])
def test_sqlite_decode_error_quotes_no_value(sqlite_pair: tuple[Any, Any], column: str) -> None:
    """A masked value made undecodable (``ssn || CAST(x'ff' AS TEXT)``) is neither quoted nor an error: it is
    fetched through a text factory that cannot fail and comes back masked (decision 0191; it failed at fetch,
    scrubbed, before — whether it fails is an oracle)."""
    raw, conn = sqlite_pair
    sql = f"SELECT {column} || {_FF} FROM customers WHERE id = 1"
    truth = outcome(raw, sql)
    assert truth[0] == "error" and SECRETS[column] in truth[2]  # sqlite3 quotes the cell it cannot decode
    seen = outcome(conn, sql)
    assert seen[0] == "rows" and len(seen[1]) == 1 and not leaked(seen, FRAGMENTS), seen
    assert raw.text_factory is str and conn.text_factory is str


@pytest.mark.parametrize("fetch", ["fetchone", "fetchall", "fetchmany", "iterate", "row_factory", "Row"])
def test_sqlite_undecodable_unmasked_cell_still_fails(sqlite_pair: tuple[Any, Any], fetch: str) -> None:
    """Look-alike: an undecodable stored value of a column nothing masks fails as sqlite3 fails
    (OperationalError, 'Could not decode to UTF-8 column ...'), even in a result that also has masked columns,
    by every exit; the masked cells beside it never decide it."""
    raw, conn = sqlite_pair
    # more rows than the sample reads, so that city is classified for good (a nearly empty table's text columns
    # are scanned as they pass, and so are a watched table's values it did not hold when sampled, decision 0268:
    # masking covers them, and an undecodable cell there comes back as U+FFFD rather than failing)
    raw.execute("CREATE TABLE places (id int primary key, ssn text, city text)")
    raw.executemany("INSERT INTO places VALUES (?, ?, ?)",
                    [(i, f"{500 + i}-22-{8710 + i}", f"Town {i}") for i in range(1, 121)])  # fmt: skip
    assert outcome(conn, "SELECT ssn, city FROM places WHERE id = 1") == ("rows", [("[US_SSN]", "Town 1")])
    raw.execute(f"UPDATE places SET city = 'Ly' || {_FF} WHERE id = 2")
    for sql in ("SELECT id, city AS c FROM places ORDER BY id",
                f"SELECT ssn || {_FF}, city AS c FROM places ORDER BY id",
                "SELECT ssn, city AS c FROM places ORDER BY id"):  # fmt: skip
        assert outcome(raw, sql)[:2] == ("error", "OperationalError")
        cur = conn.cursor()
        if fetch == "row_factory":
            cur.row_factory = lambda _c, r: list(r)
        elif fetch == "Row":
            cur.row_factory = sqlite3.Row
        cur.execute(sql)
        with pytest.raises(sqlite3.OperationalError, match="Could not decode to UTF-8 column 'c'"):
            if fetch == "fetchmany":
                cur.fetchmany(5)
            elif fetch == "iterate":
                list(cur)
            elif fetch in ("row_factory", "Row"):
                cur.fetchall()
            else:
                cur.fetchone()
                cur.fetchone()
    assert raw.text_factory is str
    cur = conn.cursor()  # and valid text around it still decodes as text
    cur.execute("SELECT ssn, city, 'é' || city FROM places WHERE id = 1")
    assert [tuple(r) for r in cur] == [("[US_SSN]", "Town 1", "éTown 1")]


def test_sqlite_decode_is_no_oracle_by_any_exit(sqlite_pair: tuple[Any, Any]) -> None:
    """The right and the wrong guess of a computed masked value's validity look alike through fetchone,
    fetchmany, iteration, a row factory and sqlite3.Row, and with text_factory = bytes."""
    raw, conn = sqlite_pair
    sql = f"SELECT id, ltrim('{{g}}' || {_FF}, substr(ssn, 1, 1) || {_FF}) AS v, city FROM customers ORDER BY id"
    assert outcome(raw, sql.format(g="5"))[0] == "error"
    seen = {}
    for g in "54":
        per_exit = []
        for factory in (None, sqlite3.Row, lambda _c, r: list(r)):
            cur = conn.cursor()
            cur.row_factory = factory
            cur.execute(sql.format(g=g))
            first = cur.fetchone()
            per_exit.append([tuple(first), *map(tuple, cur.fetchmany(1)), *map(tuple, cur)])
        seen[g] = per_exit
    assert seen["5"] == seen["4"], seen
    assert seen["5"][0] == [(1, "[US_SSN]", "Paris"), (2, "[US_SSN]", "Lyon")], seen
    conn.text_factory = bytes
    bytes_seen = [outcome(conn, sql.format(g=g)) for g in "54"]
    assert bytes_seen[0] == bytes_seen[1] and bytes_seen[0][0] == "rows", bytes_seen


def test_sqlite_decode_error_is_no_oracle(sqlite_pair: tuple[Any, Any]) -> None:
    """Whether the fetch fails does not say whether a masked character is the guess."""
    raw, conn = sqlite_pair
    sql = f"SELECT ltrim('{{g}}' || {_FF}, substr(ssn, 1, 1) || {_FF}) FROM customers WHERE id = 1"
    assert outcome(raw, sql.format(g="5"))[0] == "rows" and outcome(raw, sql.format(g="4"))[0] == "error"
    right, wrong = outcome(conn, sql.format(g="5")), outcome(conn, sql.format(g="4"))
    assert right[:2] == wrong[:2], (right, wrong)


# -- setlimit (sqlite3) -------------------------------------------------------------------------------------
def test_sqlite_setlimit_cannot_lower_the_length_limit(sqlite_pair: tuple[Any, Any]) -> None:
    """``conn.setlimit(SQLITE_LIMIT_LENGTH, 20)`` is refused: replace(ssn, G, <40 x>) would fail
    exactly for the right G; raising the limit (or reading it, or another limit) stays allowed."""
    raw, conn = sqlite_pair
    before = raw.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
    with pytest.raises(governed_db.GuardrailViolation, match="SQLITE_LIMIT_LENGTH"):
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 20)
    assert raw.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) == before
    sql = "SELECT replace(ssn, '{g}', '" + "x" * 40 + "') FROM {t}"
    seen = {g: outcome(conn, sql.format(g=g, t="customers WHERE id = 1")) for g in "24"}
    assert seen["2"] == seen["4"] == ("rows", [("[US_SSN]",)]), seen
    # ground truth: with the limit lowered on the raw connection just above the statement's own length (SQLite
    # applies it to the SQL text too), three 2s grow the SSN past it and no 4 does
    raw.execute("CREATE TEMP TABLE one_ssn AS SELECT ssn FROM customers WHERE id = 1")
    raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, len(sql.format(g="2", t="one_ssn")) + 2)
    try:
        assert outcome(raw, sql.format(g="2", t="one_ssn"))[0] == "error"
        assert outcome(raw, sql.format(g="4", t="one_ssn")) == ("rows", [(SECRETS["ssn"],)])
    finally:
        raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, before)
    assert conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) == before
    assert conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, before) == before  # not lowered: allowed
    old_depth = conn.getlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH)
    assert conn.setlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, 500) == old_depth  # limits on the SQL text only
    assert raw.getlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH) == 500


# -- text_factory / row_factory (sqlite3) -------------------------------------------------------------------
def test_sqlite_text_factory_never_sees_a_value(sqlite_pair: tuple[Any, Any]) -> None:
    """A text_factory that would receive clear values (``int`` quotes them in its ValueError, a list's
    ``append`` keeps them) is refused; str, bytes and bytearray stay allowed and rows stay masked."""
    raw, conn = sqlite_pair
    captured: list[Any] = []
    for factory in (int, float, captured.append, bytes.decode, memoryview):
        with pytest.raises(governed_db.GuardrailViolation, match="text_factory"):
            conn.text_factory = factory
        assert raw.text_factory is str
        assert outcome(conn, "SELECT ssn, email, city FROM customers WHERE id = 1")[0] == "rows"
    assert captured == []
    conn.text_factory = bytes
    assert raw.text_factory is bytes and conn.text_factory is bytes
    seen = outcome(conn, "SELECT id, ssn, email, city FROM customers WHERE id = 1")
    assert seen[0] == "rows" and seen[1][0][0] == 1 and seen[1][0][3] == b"Paris" and not leaked(seen, FRAGMENTS), seen
    conn.text_factory = str
    assert outcome(conn, "SELECT ssn, city FROM customers WHERE id = 1") == ("rows", [("[US_SSN]", "Paris")])


def test_sqlite_text_factory_set_before_sampling_masks_only_what_is_sensitive() -> None:
    """``text_factory = bytes`` set before masking first samples a table: sampling still reads text as text, so
    unmasked cells come back whole (as bytes) and the sensitive ones stay masked."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE customers " + DDL.format(t="text"))
    raw.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?)", ROWS)
    conn = govern(raw)
    conn.text_factory = bytes
    seen = outcome(conn, "SELECT id, ssn, email, card, city FROM customers ORDER BY id")
    assert seen[0] == "rows" and not leaked(seen, FRAGMENTS), seen
    assert [(r[0], r[4]) for r in seen[1]] == [(1, b"Paris"), (2, b"Lyon")]
    assert raw.text_factory is bytes  # the caller's setting is left as it was
    conn.text_factory = str
    assert outcome(conn, "SELECT id, ssn, city FROM customers WHERE id = 1") == ("rows", [(1, "[US_SSN]", "Paris")])
    raw.close()


def test_sqlite_row_factory_gets_masked_values(sqlite_pair: tuple[Any, Any]) -> None:
    """A row_factory is handed masked values only (a capturing factory, on the connection or a cursor, keeps no
    clear value); the documentation's dict factory and sqlite3.Row keep working, masked."""
    raw, conn = sqlite_pair
    captured: list[Any] = []

    def keep(cursor: Any, row: Any) -> Any:
        captured.append(row)
        return row

    conn.row_factory = keep
    assert conn.execute("SELECT * FROM customers").fetchall() == captured
    cur = conn.cursor()
    cur.row_factory = lambda c, r: captured.append(r) or r
    for _ in cur.execute("SELECT full_name, email, ssn, phone, api_key, iban, card FROM customers"):
        pass
    assert len(captured) == 4 and not leaked(captured, FRAGMENTS), captured
    assert cur.row_factory is not None and getattr(cur.row_factory, "governed_user_factory", None) is None

    def dict_factory(cursor: Any, row: Any) -> dict[str, Any]:
        return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}

    conn.row_factory = dict_factory
    rows = conn.execute("SELECT id, ssn, city FROM customers ORDER BY id").fetchall()
    assert rows == [{"id": 1, "ssn": "[US_SSN]", "city": "Paris"}, {"id": 2, "ssn": "[US_SSN]", "city": "Lyon"}]
    one = conn.cursor().execute("SELECT id, email FROM customers WHERE id = 2").fetchone()
    assert one == {"id": 2, "email": "b***@example.org"}
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT id, ssn, city FROM customers WHERE id = 1").fetchone()
    assert isinstance(row, sqlite3.Row) and tuple(row) == (1, "[US_SSN]", "Paris")
    conn.row_factory = None
    # ground truth: the raw connection's factory receives the values in clear
    raw.row_factory = keep
    raw.execute("SELECT ssn FROM customers WHERE id = 1").fetchall()
    raw.row_factory = None
    assert leaked(captured[-1], FRAGMENTS)


# -- printf widths (sqlite3) --------------------------------------------------------------------------------
def test_printf_width_from_a_masked_value_is_refused(sqlite_pair: tuple[Any, Any]) -> None:
    """``printf('%.*c', substr(iban, k, 1) || '000000', 'x')`` is NULL under a 1 MB length limit exactly when
    the digit is not 0: refused; formats sized by themselves keep running."""
    raw, conn = sqlite_pair
    raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000)  # the application's own setting
    sql = "SELECT printf('%.*c', substr(iban, {k}, 1) || '000000', 'x') IS NULL FROM customers WHERE id = 1"
    assert outcome(raw, sql.format(k=7)) == ("rows", [(0,)]) and outcome(raw, sql.format(k=8)) == ("rows", [(1,)])
    zero, four = outcome(conn, sql.format(k=7)), outcome(conn, sql.format(k=8))
    assert zero[:2] == four[:2] == ("error", "GuardrailViolation"), (zero, four)
    assert "width or precision" in zero[2] and "customers.iban" in zero[2]
    for innocent in (
        "SELECT printf('%s <%s> %5d %.3s', full_name, email, id, ssn) FROM customers",
        "SELECT printf('%*d', 5, id), printf('%.*c', id, 'x'), printf('%s', ssn) FROM customers",
    ):
        seen = outcome(conn, innocent)
        assert seen[0] == "rows" and len(seen[1]) == 2 and not leaked(seen, FRAGMENTS), (innocent, seen)
    assert outcome(conn, "SELECT printf('%.*c', id, 'x') FROM customers ORDER BY id") == ("rows", [("x",), ("xx",)])


# -- DuckDB storage statistics ------------------------------------------------------------------------------
def test_duckdb_storage_info_is_refused(duck_pair: tuple[Any, Any]) -> None:
    """pragma_storage_info() reports each column's min/max prefix and lengths: refused like pg_stats, while
    schema discovery (pragma_table_info, duckdb_columns, DESCRIBE) keeps running."""
    raw, conn = duck_pair
    sql = "SELECT column_name, stats FROM pragma_storage_info('customers')"
    assert leaked(raw.execute(sql).fetchall(), FRAGMENTS)  # ground truth: 'alice@exampl', 'sk_live_51H8', 'Alice Smith'
    seen = outcome(conn, sql)
    assert seen[:2] == ("error", "GuardrailViolation") and "pragma_storage_info" in seen[2], seen
    for innocent in (
        "SELECT name, type FROM pragma_table_info('customers')",
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'customers'",
        "DESCRIBE customers",
    ):
        rows = outcome(conn, innocent)
        assert rows[0] == "rows" and len(rows[1]) == 9 and not leaked(rows, FRAGMENTS), (innocent, rows)


# -- dataframe exits and innocent look-alikes ---------------------------------------------------------------
def test_frames_come_back_masked(sqlite_pair: tuple[Any, Any], duck_pair: tuple[Any, Any]) -> None:
    """pd.read_sql on sqlite3 and DuckDB's df()/fetchnumpy()/pl() (of a result and of a relation) are masked, cell by cell."""
    pd = pytest.importorskip("pandas")
    _, lite = sqlite_pair
    frame = pd.read_sql("SELECT id, full_name, email, ssn, phone, api_key, iban, card, city FROM customers", lite)
    assert frame["city"].tolist() == ["Paris", "Lyon"] and frame["ssn"].tolist() == ["[US_SSN]"] * 2
    assert not leaked(frame.to_dict(), FRAGMENTS)
    _, duck = duck_pair
    sql = "SELECT * FROM customers ORDER BY id"
    out: list[Any] = [duck.execute(sql).df().to_dict(), duck.execute(sql).fetchnumpy()]
    assert out[0]["city"] == {0: "Paris", 1: "Lyon"}
    rel = duck.sql(sql)
    out += [rel.df().to_dict(), rel.fetchnumpy()]
    assert out[2]["ssn"] == {0: "[US_SSN]", 1: "[US_SSN]"}
    try:
        import polars  # noqa: F401
    except ImportError:
        pass
    else:
        out.append(rel.pl().to_dicts())
    assert not leaked(out, FRAGMENTS), leaked(out, FRAGMENTS)


INNOCENT = [
    "SELECT count(*) FROM customers",
    "SELECT count(ssn), count(email), max(id) FROM customers",
    "SELECT id, full_name, email, ssn, phone, api_key, iban, card, city FROM customers ORDER BY id",
    "SELECT city, count(*) FROM customers GROUP BY city ORDER BY city",
    "SELECT id, ssn FROM customers WHERE city = 'Paris'",
    "SELECT upper(email), ltrim(city, 'P') FROM customers ORDER BY id",
    "SELECT ltrim(city, 'P') || 'x' FROM customers WHERE city LIKE 'P%'",
]


@pytest.mark.parametrize("pair", ["sqlite_pair", "duck_pair"])
def test_innocent_look_alikes_keep_running(pair: str, request: pytest.FixtureRequest) -> None:
    """The shapes refused above, on unmasked columns, and plain reads of masked ones, run and return every
    unmasked cell exactly."""
    _raw, conn = request.getfixturevalue(pair)
    for sql in INNOCENT:
        seen = outcome(conn, sql)
        assert seen[0] == "rows" and seen[1], (sql, seen)
        assert not leaked(seen, FRAGMENTS), (sql, seen)
    assert outcome(conn, INNOCENT[0]) == ("rows", [(2,)])
    assert outcome(conn, "SELECT id, city FROM customers ORDER BY id") == ("rows", [(1, "Paris"), (2, "Lyon")])
