"""Red-team round 8 on SQLite (and the DuckDB and PostgreSQL shapes the same fixes cover), decision 0236/0237.

An agent identity in production with zero configuration tries to learn a bit of a masked value through
statements the wrapper allows:

* ``SELECT nullif(substr(ssn, 1, 1), '5')``: a comparison that *is* a result column was exempt from the
  predicate rule (its boolean is masked to NULL anyway), but ``nullif`` returns NULL exactly for a right guess,
  and masking keeps NULL as NULL — the guess showed as NULL against a placeholder;
* DuckDB ``SELECT * FROM json_each((SELECT to_json(c) FROM customers c WHERE id = 1))``: the star of a table
  function given a whole row was read as a star over that table, so each result column (``key``, ``value``...)
  was looked up as the table's column of that name, found unmasked, and every stored value came back in clear;
* SQLite ``PRAGMA foreign_key_check(orders)`` / ``pragma_foreign_key_check('orders')``: which child rows have no
  parent is a join of masked values (an orphan order says no customer has its e-mail), returned as rows.

Each finding: the raw connection tells a right guess from a wrong one (the oracle is real); the governed one
observes both alike (refused, naming the column, or masked). Innocent look-alikes still run exactly.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import governed_db
from tests import _innocent_workload as wl
from tests._redteam import govern


def _lite(ssn: str = "536-22-8726", email: str = "alice@example.com", unique: bool = True) -> tuple[Any, Any]:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute(
        "CREATE TABLE customers (id integer primary key, full_name text, "
        f"email text {'UNIQUE' if unique else ''}, ssn text, city text)"
    )
    raw.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
        [(1, "Alice Smith", email, ssn, "Paris"), (2, "Bob Jones", "bob.jones@example.org", "219-45-1234", "Lyon")],
    )
    return raw, govern(raw)


def _observe(conn: Any, sql: str) -> Any:
    """What the attacker sees: rows and column names, that it was refused (and why), or the error."""
    try:
        cur = conn.execute(sql)
        return cur.fetchall(), [d[0] for d in cur.description or ()]
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    except sqlite3.Error as e:
        return f"{type(e).__name__}: {e}"


# -- nullif as a result column -------------------------------------------------------------------------------
NULLIF_ORACLES = [
    "SELECT nullif(substr(ssn, 1, 1), '{g}') FROM customers WHERE id = 1",
    "SELECT id, nullif(substr(ssn, 1, 1), '{g}') AS x FROM customers ORDER BY id",
    "SELECT (nullif(substr(ssn, 1, 1), '{g}')) FROM customers WHERE id = 1",
    "SELECT x FROM (SELECT nullif(substr(ssn, 1, 1), '{g}') AS x FROM customers WHERE id = 1)",
]


@pytest.mark.parametrize("template", NULLIF_ORACLES)
def test_nullif_as_a_result_column_is_refused(template: str) -> None:
    """``nullif(substr(ssn, 1, 1), '5')`` came back NULL for a right guess and the placeholder for a wrong one
    (a comparison that is the result column was exempt: its boolean is masked to NULL, but nullif's value is
    NULL exactly when the comparison holds). It is a comparison of the masked value now: refused."""
    raw, gov = _lite()
    right, wrong = template.format(g="5"), template.format(g="6")
    assert _observe(raw, right)[0] != _observe(raw, wrong)[0]  # the oracle is real
    seen_right, seen_wrong = _observe(gov, right), _observe(gov, wrong)
    assert "refused" in seen_right and "ssn" in seen_right, seen_right
    assert seen_right.replace("'5'", "'6'") == seen_wrong


def test_nullif_as_a_result_column_is_refused_on_postgres(pg_dsn: str, unique: str) -> None:
    """PostgreSQL had the same exemption (comparisons there convert nothing per value): the same refusal."""
    psycopg = pytest.importorskip("psycopg")
    raw = psycopg.connect(pg_dsn, autocommit=True)
    table = f"rt8lite_{unique}_customers"
    raw.execute(f"CREATE TABLE {table} (id int primary key, full_name text, ssn text, city text)")
    try:
        raw.execute(f"INSERT INTO {table} VALUES (1, 'Alice Smith', '536-22-8726', 'Paris')")
        gov = govern(raw)
        sql = f"SELECT nullif(substr(ssn, 1, 1), %s) FROM {table} WHERE id = 1"
        assert raw.execute(sql, ("5",)).fetchall() != raw.execute(sql, ("6",)).fetchall()
        for guess in ("5", "6"):
            with pytest.raises(governed_db.GuardrailViolation, match="ssn"):
                gov.execute(sql, (guess,)).fetchall()
        # innocent: nullif of a non-sensitive column is exact
        assert gov.execute(f"SELECT nullif(city, 'Paris'), nullif(id, 2) FROM {table}").fetchall() == [(None, 1)]
    finally:
        raw.execute(f"DROP TABLE IF EXISTS {table}")
        raw.close()


def test_nullif_of_innocent_columns_and_null_tests_still_run() -> None:
    """Look-alikes: nullif over non-sensitive columns, a plain column's null test (decision 0209) and a plain
    masked read run, exactly or masked."""
    _, gov = _lite()
    assert gov.execute("SELECT nullif(city, 'Paris'), nullif(id, 1) FROM customers ORDER BY id").fetchall() == [
        (None, None),
        ("Lyon", 2),
    ]
    assert gov.execute("SELECT ssn IS NULL, full_name FROM customers WHERE id = 1").fetchall() == [
        (0, "[PERSON_NAME]")
    ]


# -- DuckDB: a table function's star over a whole row --------------------------------------------------------
JSON_EACH_ROW = [
    "SELECT * FROM json_each((SELECT to_json(c) FROM {c} c WHERE id = 1))",
    "SELECT key, value FROM json_each((SELECT to_json(c) FROM {c} c WHERE id = 1))",
    "SELECT * FROM json_tree((SELECT to_json(c) FROM {c} c WHERE id = 1))",
    "SELECT j.* FROM {c} c, json_each(to_json(c)) j WHERE c.id = 1",
]


@pytest.mark.parametrize("template", JSON_EACH_ROW)
def test_duckdb_json_each_of_a_whole_row_is_masked(template: str) -> None:
    """``SELECT * FROM json_each((SELECT to_json(c) ...))`` returned every stored value of the row in clear:
    the function's star was taken for a star over ``customers``, so ``key`` and ``value`` were looked up as
    the table's columns of those names (unmasked). A table function's columns are made of what it is given;
    given a whole row with masked fields, every one is masked. Two stored SSNs are observed alike."""
    duckdb = pytest.importorskip("duckdb")
    seen = []
    for ssn in ("536-22-8726", "078-05-1120"):
        raw = duckdb.connect()
        wl.create(raw, "duck", "rt8_")
        raw.execute("UPDATE rt8_customers SET ssn = ? WHERE id = 1", [ssn])
        gov = govern(raw)
        sql = template.format(c="rt8_customers")
        assert ssn in str(raw.execute(sql).fetchall())  # the raw connection shows it
        rows = gov.execute(sql).fetchall()
        text = str(rows)
        assert ssn not in text and not any(f in text for f in wl.PII_FRAGMENTS), rows
        seen.append(rows)
        raw.close()
    assert seen[0] == seen[1]


def test_duckdb_json_each_of_constants_and_unnest_of_innocent_columns_still_run() -> None:
    """Look-alikes: json_each of a literal document and of a non-sensitive column's JSON run exactly."""
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    wl.create(raw, "duck", "rt8_")
    gov = govern(raw)
    for sql in (
        "SELECT * FROM json_each('{\"a\": 1, \"b\": [2]}')",
        "SELECT key, value FROM json_each((SELECT to_json({'city': city, 'tier': tier}) FROM rt8_customers "
        "WHERE id = 1))",
        "SELECT * FROM unnest((SELECT [city, tier] FROM rt8_customers WHERE id = 1))",
    ):
        assert gov.execute(sql).fetchall() == raw.execute(sql).fetchall(), sql
    raw.close()


# -- SQLite: the foreign key check -----------------------------------------------------------------------------
def _shop(email: str) -> tuple[Any, Any]:
    """customers.email is UNIQUE and orders.customer_email references it; one order's e-mail is Alice's as the
    application stored it, and whether a customer still has it depends on the masked customers.email."""
    raw, _ = _lite(email=email)
    raw.execute(
        "CREATE TABLE orders (id integer primary key, customer_email text REFERENCES customers(email), "
        "customer_id int REFERENCES customers(id), amount real)"
    )
    raw.execute("INSERT INTO orders VALUES (1, 'alice@example.com', 1, 10), (2, 'bob.jones@example.org', 2, 5)")
    raw.execute("CREATE TABLE items (id integer primary key, order_id int REFERENCES orders(id), sku text)")
    raw.execute("INSERT INTO items VALUES (1, 1, 'A'), (2, 9, 'B')")  # item 2: an orphan, by id
    return raw, govern(raw)


FK_CHECKS = [
    "PRAGMA foreign_key_check(orders)",
    "PRAGMA main.foreign_key_check('orders')",
    "PRAGMA foreign_key_check",
    "SELECT * FROM pragma_foreign_key_check('orders')",
    "SELECT count(*) FROM pragma_foreign_key_check('orders')",
    "SELECT count(*) FROM pragma_foreign_key_check()",
    "SELECT (SELECT count(*) FROM pragma_foreign_key_check('orders')) AS n",
    "SELECT * FROM pragma_foreign_key_check",
]


@pytest.mark.parametrize("sql", FK_CHECKS)
def test_foreign_key_check_over_masked_columns_is_refused(sql: str) -> None:
    """``PRAGMA foreign_key_check`` lists child rows whose key no parent holds: with customers.email masked,
    whether order 1 comes back says whether any customer's stored e-mail is 'alice@example.com' (a join on
    masked values). It is now a use of both sides of every foreign key it checks (rule
    masked-column-constraint), the argument-less form of every table's."""
    (raw_a, gov_a), (raw_b, gov_b) = _shop("alice@example.com"), _shop("alicx@example.com")
    assert _observe(raw_a, sql) != _observe(raw_b, sql)  # the oracle is real
    seen_a, seen_b = _observe(gov_a, sql), _observe(gov_b, sql)
    assert seen_a == seen_b
    assert "refused" in seen_a and "masked-column-constraint" in seen_a and "email" in seen_a, seen_a


def test_foreign_key_check_over_innocent_keys_still_runs() -> None:
    """Look-alike: the check of a table whose foreign keys hold ids (items -> orders) runs exactly, as do the
    schema pragmas listing the keys."""
    raw, gov = _shop("alice@example.com")
    for sql in (
        "PRAGMA foreign_key_check(items)",
        "SELECT * FROM pragma_foreign_key_check('items')",
        "PRAGMA foreign_key_list(orders)",
        "SELECT \"from\", \"to\" FROM pragma_foreign_key_list('orders') ORDER BY id",
    ):
        assert gov.execute(sql).fetchall() == raw.execute(sql).fetchall(), sql
    assert gov.execute("PRAGMA foreign_key_check(items)").fetchall() == [("items", 2, "orders", 0)]


def test_foreign_key_check_where_no_column_is_masked_runs() -> None:
    """In a database whose keys hold nothing sensitive the argument-less check runs too."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE parents (id integer primary key, label text)")
    raw.execute("CREATE TABLE kids (id integer primary key, parent_id int REFERENCES parents(id))")
    raw.execute("INSERT INTO kids VALUES (1, 7)")
    gov = govern(raw)
    assert gov.execute("PRAGMA foreign_key_check").fetchall() == [("kids", 1, "parents", 0)]


# -- a keyed hash of the caller's guess --------------------------------------------------------------------------
KEYED = {"strategies": {"US_SSN": "hash", "EMAIL": "tokenize"}}
GUESSES = [
    "SELECT ssn FROM customers WHERE id = 1 UNION ALL SELECT '{g}'",
    "SELECT * FROM (SELECT id, ssn FROM customers WHERE id = 1 UNION ALL SELECT 9, '{g}') ORDER BY id",
    "WITH g(v) AS (VALUES ('{g}')) SELECT ssn FROM customers WHERE id = 1 UNION ALL SELECT v FROM g",
    "WITH u AS (SELECT 1 AS k, ssn AS x FROM customers WHERE id = 1 UNION ALL SELECT 2, '{g}') "
    "SELECT x FROM u ORDER BY k",
]


@pytest.mark.parametrize("template", GUESSES)
def test_a_keyed_hash_never_hashes_a_guess(template: str) -> None:
    """With ``hash`` (or ``tokenize``) configured for SSNs, ``SELECT ssn ... UNION ALL SELECT '<guess>'`` put the
    guess under the column's lineage, so the strategy hashed it: the two hashes were equal exactly for a right
    guess — a dictionary attack on a keyed hash through the governed connection, no write needed. A column
    some of whose values are the statement's constants (or a column that is not masked) is masked with the
    placeholder; a plain read keeps its hashes."""
    seen = []
    for guess in ("536-22-8726", "536-22-8727"):
        raw, _ = _lite(unique=False)
        gov = govern(raw, masking=KEYED)
        sql = template.format(g=guess)
        rows = raw.execute(sql).fetchall()
        assert (rows[0][-1] == rows[-1][-1]) is (guess == "536-22-8726")  # the raw oracle
        seen.append(gov.execute(sql).fetchall())
    assert seen[0] == seen[1], seen
    assert all(not str(v).startswith("hmac:") for row in seen[0] for v in row)


def test_a_keyed_hash_still_joins_stored_values() -> None:
    """Look-alikes: a plain read gets the keyed hash (equal values, equal hashes), and a UNION of two masked
    e-mail columns keeps its tokens, so the same address in both tables still matches."""
    raw, _ = _lite(unique=False)
    raw.execute("CREATE TABLE leads (id integer primary key, email text)")
    raw.executemany("INSERT INTO leads VALUES (?, ?)", [(1, "alice@example.com"), (2, "zed@example.net")])
    gov = govern(raw, masking=KEYED)
    ssn = gov.execute("SELECT ssn FROM customers ORDER BY id").fetchall()
    assert all(str(v).startswith("hmac:") for (v,) in ssn) and ssn[0] != ssn[1]
    emails = [v for (v,) in gov.execute("SELECT email FROM customers UNION ALL SELECT email FROM leads")]
    assert all(v.startswith("TOK_EMAIL_") for v in emails)
    assert emails[0] == emails[2] and len(set(emails)) == 3


# -- collations of the caller's own --------------------------------------------------------------------------------
COLLATED = [
    "SELECT max(ssn COLLATE spy) FROM customers",
    "SELECT min(full_name COLLATE spy) FROM customers",
    "SELECT id, max(ssn COLLATE spy) OVER () FROM customers",
    "SELECT max(x) FROM (SELECT ssn COLLATE spy AS x FROM customers)",
    "SELECT min(x) FROM (SELECT full_name COLLATE spy AS x FROM customers)",
]


@pytest.mark.parametrize("sql", COLLATED)
def test_a_collation_of_the_callers_own_is_never_given_a_masked_value(sql: str) -> None:
    """``conn.create_collation('spy', f)`` on the governed connection, then ``SELECT max(ssn COLLATE spy)``: the
    result was masked, but SQLite called ``f`` with every stored SSN it compared (decision 0218 had closed user
    *functions* of their own names, not collations). A collation other than SQLite's own over a masked value
    is now a copy (refused); ``f`` sees nothing."""
    raw, gov = _lite()
    raw_seen: list[tuple[str, str]] = []
    raw.create_collation("spy", lambda a, b: raw_seen.append((a, b)) or (a > b) - (a < b))
    raw.execute(sql).fetchall()
    assert any("536-22-8726" in pair or "Alice Smith" in pair for pair in raw_seen)  # the raw callback sees them
    seen: list[tuple[str, str]] = []
    gov.create_collation("spy", lambda a, b: seen.append((a, b)) or (a > b) - (a < b))
    with pytest.raises(governed_db.GuardrailViolation, match="masked-column-copy"):
        gov.execute(sql).fetchall()
    assert seen == []


def test_a_collation_the_schema_declares_cannot_be_replaced() -> None:
    """A column declared ``COLLATE app_ci`` compares its stored values with ``app_ci`` (``max(full_name)``, an
    index insert): registering a function under that name through the governed connection is refused; a
    collation of a new name, removing one, and SQLite's NOCASE over a masked column (masked) still work."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.create_collation("app_ci", lambda a, b: (a.lower() > b.lower()) - (a.lower() < b.lower()))
    raw.execute("CREATE TABLE staff (id integer primary key, full_name text COLLATE app_ci, dept text)")
    raw.executemany("INSERT INTO staff VALUES (?, ?, ?)", [(1, "Alice Smith", "ops"), (2, "bob jones", "dev")])
    gov = govern(raw)
    seen: list[Any] = []
    with pytest.raises(governed_db.GuardrailViolation, match="COLLATE APP_CI"):
        gov.create_collation("APP_CI", lambda a, b: seen.append((a, b)) or 0)
    assert gov.execute("SELECT max(full_name) FROM staff").fetchall() == [("[PERSON_NAME]",)] and seen == []
    gov.create_collation("by_length", lambda a, b: len(a) - len(b))
    assert gov.execute("SELECT dept FROM staff ORDER BY dept COLLATE by_length, id").fetchall() == [
        ("ops",),
        ("dev",),
    ]
    assert gov.execute("SELECT max(dept COLLATE by_length), max(full_name COLLATE NOCASE) FROM staff").fetchall() == [
        ("ops", "[PERSON_NAME]")
    ]


# -- SQLite: the integrity checks ----------------------------------------------------------------------------------
def _checked(phone: str) -> tuple[Any, Any]:
    """An application table whose CHECK on the (masked) phone one legacy row may fail: rows written while the
    application ran with ``ignore_check_constraints``."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("PRAGMA ignore_check_constraints = ON")
    raw.execute(
        "CREATE TABLE customers (id integer primary key, full_name text, phone text CHECK (length(phone) >= 12), "
        "qty int CHECK (qty > 0))"
    )
    raw.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?)",
        [(1, "Alice Smith", phone, 1), (2, "Bob Jones", "+1 415 555 0102", 2)],
    )
    raw.execute("PRAGMA ignore_check_constraints = OFF")
    return raw, govern(raw)


INTEGRITY_CHECKS = [
    "PRAGMA integrity_check",
    "PRAGMA integrity_check(10)",
    "PRAGMA quick_check(customers)",
    "SELECT * FROM pragma_integrity_check",
    "SELECT * FROM pragma_quick_check('customers')",
]


@pytest.mark.parametrize("sql", INTEGRITY_CHECKS)
def test_integrity_checks_over_a_check_on_a_masked_column_are_refused(sql: str) -> None:
    """``PRAGMA integrity_check`` evaluates every CHECK constraint on the stored rows and reports the ones that
    fail: 'CHECK constraint failed in customers' said that some stored phone is shorter than 12 characters.
    A CHECK it runs over a masked column is a use of it (masked-column-constraint)."""
    (raw_a, gov_a), (raw_b, gov_b) = _checked("+1 415 555 0101"), _checked("555 0101")
    assert _observe(raw_a, sql) != _observe(raw_b, sql)  # the oracle is real
    seen_a, seen_b = _observe(gov_a, sql), _observe(gov_b, sql)
    assert seen_a == seen_b
    assert "refused" in seen_a and "masked-column-constraint" in seen_a and "phone" in seen_a, seen_a


def test_integrity_checks_without_a_check_on_a_masked_column_still_run() -> None:
    """Look-alike: in a database whose CHECKs read innocent columns the integrity checks run exactly."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE items (id integer primary key, qty int CHECK (qty > 0), label text, email text)")
    raw.execute("INSERT INTO items VALUES (1, 2, 'a', 'alice@example.com')")
    gov = govern(raw)
    for sql in ("PRAGMA integrity_check", "PRAGMA quick_check(items)", "SELECT * FROM pragma_integrity_check"):
        assert gov.execute(sql).fetchall() == [("ok",)], sql


# -- DuckDB UNPIVOT: the columns it passes through ----------------------------------------------------------------
UNPIVOTS = [
    # DuckDB's own form, in a subquery and as a statement: the columns not unpivoted were never traced (lost, and
    # the source's tables not recorded, so nothing said they were sensitive: names came back in clear)
    "SELECT * FROM (UNPIVOT (SELECT full_name AS x, tier, country FROM {c}) ON tier, country INTO NAME k VALUE v)",
    "UNPIVOT (SELECT full_name AS x, tier, country FROM {c}) ON tier, country INTO NAME k VALUE v",
    "SELECT count(*) FROM (UNPIVOT (SELECT full_name AS x, tier, country FROM {c}) ON tier, country) "
    "WHERE x LIKE 'A%'",
    # the standard form: the table's own columns were matched to the result by position, so the names (moved
    # left past the unpivoted columns) came back under an innocent column's masker
    "SELECT * FROM {t} UNPIVOT (v FOR k IN (tier, country))",
    "SELECT count(*) FROM {t} UNPIVOT (v FOR k IN (tier, country)) WHERE full_name LIKE 'A%'",
]


@pytest.mark.parametrize("template", UNPIVOTS)
def test_duckdb_unpivot_keeps_the_masks_of_the_columns_it_passes_through(template: str) -> None:
    """An UNPIVOT of innocent columns passes the other columns through as they are: a masked name among them came
    back in clear (both forms) and could be filtered on. They keep their origin now: masked, or refused in a
    WHERE. Two stored names are observed alike."""
    duckdb = pytest.importorskip("duckdb")
    seen, raw_seen = [], []
    for name in ("Alice Smith", "Zoe Quinn"):
        raw = duckdb.connect()
        wl.create(raw, "duck", "rt8_")
        raw.execute("UPDATE rt8_customers SET full_name = ? WHERE id = 1", [name])
        raw.execute("CREATE TABLE rt8_t AS SELECT tier, country, id, full_name FROM rt8_customers")
        gov = govern(raw)
        sql = template.format(c="rt8_customers", t="rt8_t")
        raw_seen.append(raw.execute(sql).fetchall())
        try:
            rows: Any = gov.execute(sql).fetchall()
            assert not any(f in str(rows) for f in (name, *wl.PII_FRAGMENTS)), rows
        except governed_db.GuardrailViolation as e:
            rows = f"refused: {e}"
            assert "full_name" in rows
        seen.append(rows)
        raw.close()
    assert raw_seen[0] != raw_seen[1]  # the oracle is real
    assert seen[0] == seen[1]


def test_duckdb_unpivot_and_pivot_statements_of_innocent_columns_run() -> None:
    """Look-alikes: UNPIVOT/PIVOT of innocent columns run exactly in both forms, as statements (which needed an
    approval as unknown statements) and in subqueries; the same over a masked column is still refused."""
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    wl.create(raw, "duck", "rt8_")
    raw.execute("CREATE TABLE rt8_t AS SELECT tier, country, id, full_name FROM rt8_customers")
    gov = govern(raw)
    for sql in (
        "UNPIVOT (SELECT id, tier, country FROM rt8_customers) ON tier, country INTO NAME k VALUE v",
        "SELECT k, count(*) FROM (UNPIVOT (SELECT id, tier, country FROM rt8_customers) ON tier, country "
        "INTO NAME k VALUE v) GROUP BY k ORDER BY k",
        "SELECT id, k, v FROM rt8_t UNPIVOT (v FOR k IN (tier, country)) ORDER BY id, k",
        "PIVOT rt8_orders ON status USING sum(amount) GROUP BY customer_id",
        "WITH o AS (SELECT c.tier, o.status, o.amount FROM rt8_orders o JOIN rt8_customers c "
        "ON c.id = o.customer_id) PIVOT o ON status USING sum(amount) GROUP BY tier",
        "SELECT * FROM rt8_t PIVOT (count(*) FOR tier IN ('gold', 'silver') GROUP BY country)",
    ):
        assert sorted(gov.execute(sql).fetchall(), key=repr) == sorted(raw.execute(sql).fetchall(), key=repr), sql
    for hostile in (
        "UNPIVOT (SELECT id, full_name, country FROM rt8_customers) ON full_name, country",
        "SELECT * FROM rt8_t UNPIVOT (v FOR k IN (tier, full_name))",
        "PIVOT rt8_customers ON tier USING max(email) GROUP BY country",
        "WITH o AS (SELECT * FROM rt8_customers) PIVOT o ON tier USING count(*) GROUP BY full_name",
    ):
        with pytest.raises(governed_db.GuardrailViolation, match=r"full_name|email"):
            gov.execute(hostile).fetchall()
    raw.close()
