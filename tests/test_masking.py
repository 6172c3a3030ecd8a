"""Dynamic masking through a governed connection: who sees what, every row shape, predicates, errors, spans."""

from __future__ import annotations

import collections
import datetime as dt
import sqlite3
from typing import Any

import pytest

import governed_db
from governed_db import Action, GuardrailViolation, Identity
from governed_db.errors import ConfigurationError
from governed_db.masking import guard, schema
from governed_db.masking.engine import state_for
from governed_db.masking.rows import RowMasker
from governed_db.sql.analysis import analyze

AGENT = Identity("report-bot", kind="agent")
SUPPORT = Identity("sam", kind="human", roles=("support",))

USERS = [
    (
        1,
        "Alice Smith",
        "alice@example.com",
        "536-22-8726",
        "Paris",
        "call +1 415-555-2671 or mail bob@corp.io",
        "1984-05-12",
    ),
    (2, "Bob Jones", "bob@example.org", "219-45-1234", "Lyon", "nothing here", "1990-01-02"),
]


def make_db() -> sqlite3.Connection:
    raw = sqlite3.connect(":memory:")
    raw.execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, ssn TEXT, city TEXT, "
        "notes TEXT, dob TEXT)"
    )
    raw.executemany("INSERT INTO users VALUES (?,?,?,?,?,?,?)", USERS)
    raw.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    raw.execute("INSERT INTO products VALUES (1, 'Widget', 9.5)")
    raw.commit()
    return raw


def governed(raw: sqlite3.Connection | None = None, **kw: Any) -> Any:
    kw.setdefault("identity", AGENT)
    kw.setdefault("audit", False)
    return governed_db.wrap(raw or make_db(), **kw)


def test_production_default_masks_pii_and_keeps_the_rest_exactly() -> None:
    """Zero config in production: PII columns masked by their default strategy, other columns untouched."""
    rows = governed().execute("SELECT * FROM users ORDER BY id").fetchall()
    assert rows[0] == (
        1,
        "[PERSON_NAME]",
        "a***@example.com",
        "[US_SSN]",
        "Paris",
        "call [PHONE] or mail [EMAIL]",
        "1984-01-01",
    )
    assert rows[1] == (2, "[PERSON_NAME]", "b***@example.org", "[US_SSN]", "Lyon", "nothing here", "1990-01-01")
    assert governed().execute("SELECT * FROM products").fetchall() == [(1, "Widget", 9.5)]


@pytest.mark.parametrize("environment", ["development", "dev", "local", "test"])
def test_development_environments_are_unmasked_by_default(environment: str) -> None:
    """In development-like environments masking is off unless mode is 'on'."""
    conn = governed(environment=environment)
    assert conn.execute("SELECT email FROM users WHERE id = 1").fetchone() == ("alice@example.com",)
    forced = governed(environment=environment, masking={"mode": "on"})
    assert forced.execute("SELECT email FROM users WHERE id = 1").fetchone() == ("a***@example.com",)


def test_humans_are_masked_too_and_mode_off_disables() -> None:
    """Humans without a grant see masked values in production; mode 'off' turns masking off."""
    human = governed(identity=Identity("alice"))
    assert human.execute("SELECT ssn FROM users WHERE id = 1").fetchone() == ("[US_SSN]",)
    off = governed(masking={"mode": "off"})
    assert off.execute("SELECT ssn FROM users WHERE id = 1").fetchone() == ("536-22-8726",)


def test_grants_unmask_by_role_label_and_expiry() -> None:
    """A role grant unmasks its labels until it expires; other labels and identities stay masked."""
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).isoformat()
    past = "2001-01-01T00:00:00Z"
    masking = {
        "unmask": [
            {"role": "support", "labels": ["EMAIL"], "expires": future},
            {"subject": "sam", "labels": ["US_SSN"], "expires": past},
        ]
    }
    raw = make_db()
    support = governed(raw, identity=SUPPORT, masking=masking)
    assert support.execute("SELECT email, ssn FROM users WHERE id = 1").fetchone() == (
        "alice@example.com",
        "[US_SSN]",
    )
    agent = governed(raw, masking=masking)
    assert agent.execute("SELECT email FROM users WHERE id = 1").fetchone() == ("a***@example.com",)
    with governed_db.acting_as(SUPPORT):
        assert agent.execute("SELECT email FROM users WHERE id = 1").fetchone() == ("alice@example.com",)


def test_grant_expiry_is_honoured_even_when_plans_are_memoised() -> None:
    """A grant that expires stops unmasking at its expiry, although plans are cached per identity."""
    import time

    expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    conn = governed(
        identity=SUPPORT, masking={"unmask": [{"role": "support", "expires": expires.isoformat()}]}
    )
    sql = "SELECT email FROM users WHERE id = 1"
    assert conn.execute(sql).fetchone() == ("alice@example.com",)
    time.sleep(max(0.0, (expires - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.05)
    assert conn.execute(sql).fetchone() == ("a***@example.com",)


def test_column_grants_and_strategy_overrides() -> None:
    """Grants may name columns; strategies may be chosen per label or per column."""
    conn = governed(
        identity=SUPPORT,
        masking={
            "unmask": [{"role": "support", "columns": ["users.name"]}],
            "strategies": {"EMAIL": "hash", "users.ssn": {"strategy": "partial", "keep_last": 4}},
        },
    )
    name, email, ssn = conn.execute("SELECT name, email, ssn FROM users WHERE id = 1").fetchone()
    assert name == "Alice Smith" and email.startswith("hmac:") and ssn == "***-**-8726"


def test_masking_config_file(tmp_path: Any) -> None:
    """The masking option may be a YAML file, its keys at the top level or under a masking section."""
    path = tmp_path / "policy.yaml"
    path.write_text("masking:\n  unmask:\n    - role: support\n      labels: [EMAIL]\n")
    conn = governed(identity=SUPPORT, masking=str(path))
    assert conn.execute("SELECT email FROM users WHERE id = 2").fetchone() == ("bob@example.org",)


@pytest.mark.parametrize(
    "masking",
    [
        {"mode": "sometimes"},
        {"unmask": [{"labels": ["EMAIL"]}]},
        {"strategies": {"EMAIL": "shred"}},
        {"unmask": [{"role": "x", "expires": "tomorrow"}]},
        {"colour": "blue"},
    ],
)
def test_bad_masking_configuration_is_explained(masking: dict[str, Any]) -> None:
    """A wrong masking option is a ConfigurationError when wrapping, saying what is valid."""
    with pytest.raises(ConfigurationError, match="masking"):
        governed(masking=masking)


def test_every_result_path_is_masked() -> None:
    """fetchone, fetchmany, fetchall and iteration all hand out masked rows."""
    conn = governed()
    sql = "SELECT email FROM users ORDER BY id"
    expected = [("a***@example.com",), ("b***@example.org",)]
    cur = conn.execute(sql)
    assert [cur.fetchone(), cur.fetchone(), cur.fetchone()] == [*expected, None]
    cur = conn.execute(sql)
    assert cur.fetchmany(1) + cur.fetchmany(5) == expected
    assert list(conn.execute(sql)) == expected
    assert [r for r in conn.cursor().execute(sql)] == expected


def test_sqlite_row_factory_keeps_its_shape() -> None:
    """With sqlite3.Row rows, masked rows are sqlite3.Row with the same keys."""
    raw = make_db()
    raw.row_factory = sqlite3.Row
    row = governed(raw).execute("SELECT id, email FROM users WHERE id = 1").fetchone()
    assert (
        isinstance(row, sqlite3.Row) and row.keys() == ["id", "email"] and row["email"] == "a***@example.com"
    )


class DictRow(list):  # shaped like psycopg2.extras.DictRow: a list subclass with name lookup
    pass


Point = collections.namedtuple("Point", ["id", "email"])


class RealDictRow(dict):  # shaped like psycopg2.extras.RealDictRow
    pass


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ((1, "a@b.co"), (1, "X")),
        ([1, "a@b.co"], [1, "X"]),
        ({"id": 1, "email": "a@b.co"}, {"id": 1, "email": "X"}),
        (RealDictRow(id=1, email="a@b.co"), RealDictRow(id=1, email="X")),
        (Point(1, "a@b.co"), Point(1, "X")),
        (DictRow([1, "a@b.co"]), DictRow([1, "X"])),
    ],
)
def test_row_shapes_are_kept(row: Any, expected: Any) -> None:
    """Tuples, lists, dicts, dict subclasses, named tuples and list subclasses come back as the same type."""
    plan = RowMasker(["id", "email"], [None, lambda v: "X"])
    out = plan.apply_row(row)
    assert out == expected and type(out) is type(row)
    assert plan.apply_rows([row, row]) == [expected, expected]
    assert plan.masked_cells == 3


def test_frames_are_masked() -> None:
    """pandas DataFrames and duckdb-style dicts of numpy arrays are masked column by column."""
    import numpy as np
    import pandas as pd

    plan = RowMasker(["id", "email"], [None, lambda v: None if v is None else "X"])
    df = pd.DataFrame({"id": [1, 2], "email": ["a@b.co", None]})
    out = plan.apply_frame(df)
    # the string dtype is kept, so the missing value is the dtype's own NA (NaN for pandas' default str)
    assert out["email"].dtype == df["email"].dtype and out["id"].dtype == df["id"].dtype
    assert out["email"].tolist()[0] == "X" and pd.isna(out["email"].tolist()[1]) and out["id"].tolist() == [1, 2]
    assert df["email"].tolist()[0] == "a@b.co"  # the caller's frame is not modified
    arrays = plan.apply_frame({"id": np.array([1, 2]), "email": np.array(["a@b.co", "c@d.ef"])})
    assert arrays["email"].tolist() == ["X", "X"] and arrays["id"].tolist() == [1, 2]
    with pytest.raises(TypeError, match="cannot mask"):
        plan.apply_frame(object())


def test_pandas_read_sql_is_masked() -> None:
    """pandas.read_sql over a governed connection returns masked values."""
    import warnings

    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = pd.read_sql("SELECT id, email, city FROM users ORDER BY id", governed())
    assert df["email"].tolist() == ["a***@example.com", "b***@example.org"]
    assert df["city"].tolist() == ["Paris", "Lyon"]


def test_duckdb_frames_are_masked() -> None:
    """duckdb's df() and fetchnumpy() exits are masked like rows."""
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE users (id INTEGER, email VARCHAR, city VARCHAR)")
    raw.execute("INSERT INTO users VALUES (1, 'alice@example.com', 'Paris')")
    conn = governed_db.wrap(raw, identity=AGENT, audit=False)
    assert conn.execute("SELECT * FROM users").fetchall() == [(1, "a***@example.com", "Paris")]
    df = conn.execute("SELECT * FROM users").df()
    assert df["email"].tolist() == ["a***@example.com"] and df["city"].tolist() == ["Paris"]
    arrays = conn.execute("SELECT email, city FROM users").fetchnumpy()
    assert list(arrays["email"]) == ["a***@example.com"] and list(arrays["city"]) == ["Paris"]


@pytest.mark.parametrize("exit_name", ["pl", "to_arrow_table", "df", "fetchall"])
def test_duckdb_relation_frames_are_masked(exit_name: str) -> None:
    """duckdb relations (con.sql) hand out masked polars, Arrow and pandas frames and rows."""
    duckdb = pytest.importorskip("duckdb")
    if exit_name == "pl":
        pytest.importorskip("polars")
    if exit_name == "to_arrow_table":
        pytest.importorskip("pyarrow")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE users (id INTEGER, email VARCHAR, city VARCHAR)")
    raw.execute("INSERT INTO users VALUES (1, 'alice@example.com', 'Paris'), (2, NULL, 'Lyon')")
    conn = governed_db.wrap(raw, identity=AGENT, audit=False)
    out = getattr(conn.sql("SELECT * FROM users ORDER BY id"), exit_name)()
    if exit_name == "fetchall":
        assert out == [(1, "a***@example.com", "Paris"), (2, None, "Lyon")]
        return
    if exit_name == "df":
        emails = [None if not isinstance(e, str) else e for e in out["email"].tolist()]  # NA of the str dtype
        cities = out["city"].tolist()
    else:
        emails, cities = (
            out["email"].to_list() if exit_name == "pl" else out.column("email").to_pylist(),
            (out["city"].to_list() if exit_name == "pl" else out.column("city").to_pylist()),
        )
    assert emails == ["a***@example.com", None] and cities == ["Paris", "Lyon"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM users WHERE ssn LIKE '5%'",
        "SELECT id FROM users ORDER BY email",
        "SELECT count(*) FROM users GROUP BY email",
        "SELECT city FROM users GROUP BY city HAVING max(ssn) > '5'",
        "SELECT p.id FROM products p JOIN users u ON u.email = p.name",
        "SELECT id FROM products WHERE id IN (SELECT id FROM users WHERE substr(ssn, 1, 1) = '5')",
        "UPDATE users SET city = ssn WHERE id = 1",
        "DELETE FROM users WHERE email = 'alice@example.com'",
    ],
)
def test_masked_columns_cannot_filter_sort_group_or_copy(sql: str) -> None:
    """Using a masked column in WHERE/JOIN/ORDER BY/GROUP BY/HAVING, or copying it, is refused."""
    with pytest.raises(GuardrailViolation) as info:
        governed().execute(sql)
    assert {guard.PREDICATE_RULE, guard.COPY_RULE} & set(info.value.decision.rules)


def test_free_text_predicates_depend_on_observed_pii() -> None:
    """Text columns that merely might hold PII can be searched; ones where PII was seen cannot."""
    raw = make_db()
    raw.execute("CREATE TABLE products_catalog (id INTEGER, description TEXT)")
    raw.executemany(
        "INSERT INTO products_catalog VALUES (?, ?)", [(i, f"widget model {i}") for i in range(20)]
    )
    conn = governed(raw)
    sql = "SELECT id FROM products_catalog WHERE description LIKE '%model 3%'"
    assert conn.execute(sql).fetchall() == [(3,)]
    raw.execute("CREATE TABLE tickets (id INTEGER, notes TEXT)")
    raw.executemany(
        "INSERT INTO tickets VALUES (?, ?)",
        [(i, f"reach me at user{i}@corp.io" if i % 3 == 0 else "printer jammed") for i in range(12)],
    )
    with pytest.raises(GuardrailViolation, match=r"tickets\.notes"):
        conn.execute("SELECT id FROM tickets WHERE notes LIKE '%corp.io%'")


def test_unmasked_identity_may_filter_and_approval_mode() -> None:
    """A granted identity may filter on the column; predicate_action may ask for approval instead of denying."""
    raw = make_db()
    ok = governed(raw, identity=SUPPORT, masking={"unmask": [{"role": "support"}]})
    assert ok.execute("SELECT id FROM users WHERE ssn LIKE '5%'").fetchall() == [(1,)]
    assert governed(raw).execute("SELECT id FROM users WHERE city = 'Paris'").fetchall() == [(1,)]
    state = state_for(governed(raw, masking={"predicate_action": "require_approval"}).governor)
    hit = guard.predicate_hit(state, analyze("SELECT id FROM users WHERE ssn = '1'", "sqlite"), AGENT, None)
    assert hit is not None and hit.action is Action.REQUIRE_APPROVAL and hit.rule_id == guard.PREDICATE_RULE


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("INSERT INTO users (id, email) VALUES (9, 'a***@example.com')", ()),
        ("UPDATE users SET ssn = ? WHERE id = 1", ("[US_SSN]",)),
        ("UPDATE users SET name = :n WHERE id = 1", {"n": "[PERSON_NAME]"}),
    ],
)
def test_writing_a_placeholder_back_is_refused(sql: str, params: Any) -> None:
    """INSERT/UPDATE with a masked placeholder as literal or parameter is refused."""
    with pytest.raises(GuardrailViolation, match="placeholder"):
        governed().execute(sql, params)


def test_writing_real_values_is_allowed() -> None:
    """Ordinary writes (with WHERE on an unmasked key) go through."""
    conn = governed()
    conn.execute("UPDATE users SET city = ? WHERE id = 1", ("Nice",))
    assert conn.execute("SELECT city FROM users WHERE id = 1").fetchone() == ("Nice",)


@pytest.mark.parametrize(
    ("message", "leaked"),
    [
        (
            'duplicate key value violates unique constraint "u_email"\nDETAIL:  Key (email)=(alice@example.com) '
            "already exists.",
            "alice@example.com",
        ),
        ("Duplicate entry '536-22-8726' for key 'ssn'", "536-22-8726"),
        (
            'new row for relation "users" violates check constraint\nDETAIL:  Failing row contains (1, Alice, x).',
            "Alice",
        ),
        ("value too long near 'call bob@corp.io'", "bob@corp.io"),
    ],
)
def test_error_messages_are_scrubbed(message: str, leaked: str) -> None:
    """Values echoed in database error messages are replaced; the rest of the message stays."""
    exc = sqlite3.IntegrityError(message, 1062)
    state = state_for(governed().governor)
    guard.scrub_error(state, exc)
    assert leaked not in str(exc) and type(exc) is sqlite3.IntegrityError and exc.args[1] == 1062


def test_spans_record_masked_columns_and_cells(spans: Any) -> None:
    """The statement span lists masked columns; the result span counts masked cells."""
    provider, exporter = spans
    conn = governed(tracer_provider=provider, record_results=True)  # result spans to the exporter too
    conn.execute("SELECT id, email, ssn FROM users").fetchall()
    finished = exporter.get_finished_spans()
    stmt = next(
        s
        for s in finished
        if s.name != "governed_db.result" and s.attributes.get("governed_db.masked_columns")
    )
    assert list(stmt.attributes["governed_db.masked_columns"]) == ["email", "ssn"]
    result = next(s for s in finished if s.name == "governed_db.result")
    assert result.attributes["governed_db.masked_cells"] == 4
    text = repr([dict(s.attributes or {}) for s in finished])
    assert "alice@example.com" not in text and "536-22-8726" not in text


def test_unreadable_catalog_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the schema cannot be read, names and values decide, and sensitive values are still masked; none of its
    columns may decide rows, not even ``id`` (decision 0269), and the refusal says to run the statement again."""
    monkeypatch.setattr(schema, "read_columns", lambda *a, **k: None)
    rows = governed().execute("SELECT id, email, city, notes FROM users").fetchall()
    assert rows[0] == (1, "a***@example.com", "Paris", "call [PHONE] or mail [EMAIL]")
    star = governed().execute("SELECT * FROM users").fetchall()[1]
    assert "bob@example.org" not in repr(star) and "219-45-1234" not in repr(star) and "Lyon" in star
    for sql in ("SELECT id FROM users ORDER BY id", "SELECT * FROM users WHERE id = 2"):
        with pytest.raises(GuardrailViolation, match=r"could not be read from the catalog.*run the statement again"):
            governed().execute(sql)


def test_user_defined_functions_are_checked_by_value_and_cannot_take_masked_columns() -> None:
    """A UDF's result is masked by its name or by value detection; passing it a masked column is refused."""
    raw = make_db()
    raw.create_function("whois", 1, lambda i: "alice@example.com" if i == 1 else "nobody")
    raw.create_function("lookup_email", 1, lambda i: "someone")
    raw.create_function("stash", 1, lambda v: 1)
    conn = governed(raw)
    assert conn.execute("SELECT whois(id) AS w FROM users ORDER BY id").fetchall() == [
        ("a***@example.com",),
        ("nobody",),
    ]
    assert conn.execute("SELECT lookup_email(1)").fetchone() == ("*******",)
    with pytest.raises(GuardrailViolation, match=guard.COPY_RULE):
        conn.execute("SELECT stash(email) FROM users")


def test_session_variables_cannot_smuggle_values(mysql_conn: Any) -> None:
    """MariaDB: SET @v from a masked column is refused; a variable's content is checked as it comes out."""
    conn = governed_db.wrap(mysql_conn, identity=AGENT, audit=False)
    with mysql_conn.cursor() as c:
        c.execute("CREATE TEMPORARY TABLE IF NOT EXISTS mask_vars (id int, email varchar(50))")
        c.execute("INSERT INTO mask_vars VALUES (1, 'alice@example.com')")
        c.execute("SET @raw_email = 'bob@example.org'")
    with pytest.raises(GuardrailViolation, match=guard.COPY_RULE):
        conn.cursor().execute("SET @v = (SELECT email FROM mask_vars LIMIT 1)")
    cur = conn.cursor()
    cur.execute("SELECT @raw_email")
    assert list(cur.fetchall()) == [("b***@example.org",)]


def test_unseen_column_is_classified_online_from_values() -> None:
    """A column whose name says nothing is labelled from a sample of its values on first sight."""
    raw = make_db()
    raw.execute("CREATE TABLE contacts (id INTEGER, handle TEXT, label TEXT)")
    raw.executemany(
        "INSERT INTO contacts VALUES (?,?,?)", [(i, f"p{i}@example.net", "vip") for i in range(10)]
    )
    rows = governed(raw).execute("SELECT handle, label FROM contacts WHERE id = 3").fetchall()
    assert rows == [("p***@example.net", "vip")]


def test_schema_changes_are_picked_up() -> None:
    """DDL through the connection invalidates the cached schema, so a new sensitive column is masked."""
    conn = governed()
    assert conn.execute("SELECT * FROM products").fetchall() == [(1, "Widget", 9.5)]
    with governed_db.acting_as(Identity("dba")):  # an agent's DDL needs approval (rule agent-ddl)
        conn.execute("ALTER TABLE products ADD COLUMN owner_email TEXT")
    conn.execute("UPDATE products SET owner_email = 'o@example.com' WHERE id = 1")
    assert conn.execute("SELECT * FROM products").fetchall() == [(1, "Widget", 9.5, "o***@example.com")]


def test_postgres_transaction_is_not_disturbed(pg_dsn: str, unique: str) -> None:
    """Catalog reads inside the caller's transaction neither commit, abort nor end it."""
    import psycopg

    t = f"mask_tx_{unique}"
    setup = psycopg.connect(pg_dsn, autocommit=True)
    setup.execute(f"CREATE TABLE {t} (id int, email text)")
    try:
        raw = psycopg.connect(pg_dsn)  # not autocommit: the caller's transaction
        conn = governed_db.wrap(raw, identity=AGENT, audit=False)
        cur = conn.cursor()
        cur.execute(f"INSERT INTO {t} VALUES (1, 'alice@example.com')")
        cur.execute(f"SELECT email FROM {t}")
        assert cur.fetchall() == [("a***@example.com",)]
        raw.rollback()
        cur.execute(f"SELECT count(*) FROM {t}")
        assert cur.fetchone() == (0,)
        raw.rollback()
        with pytest.raises(psycopg.errors.DivisionByZero):
            cur.execute("SELECT 1/0")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            cur.execute(f"SELECT email FROM {t}")
        raw.rollback()
        raw.close()
    finally:
        setup.execute(f"DROP TABLE {t}")
        setup.close()


#: a policy that lets writes into masked UNIQUE columns through (the membership test they allow is accepted)
CONSTRAINTS_ALLOWED = {"rules": {"masked-column-constraint": "allow"}}


def test_postgres_unique_violation_is_scrubbed(pg_conn: Any, unique: str) -> None:
    """A PostgreSQL duplicate-key error does not echo the masked value, and keeps its driver type."""
    import psycopg

    t = f"mask_err_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} (id int, email text UNIQUE)")
    try:
        pg_conn.execute(f"INSERT INTO {t} VALUES (1, 'alice@example.com')")
        refusing = governed_db.wrap(pg_conn, identity=AGENT, audit=False)
        with pytest.raises(GuardrailViolation, match="masked-column-constraint"):
            refusing.execute(f"INSERT INTO {t} VALUES (2, %s)", ("alice@example.com",))
        # where a policy lets the write through (decision 0165), the error still does not echo the value
        conn = governed_db.wrap(pg_conn, identity=AGENT, audit=False, policy=CONSTRAINTS_ALLOWED)
        with pytest.raises(psycopg.errors.UniqueViolation) as info:
            conn.execute(f"INSERT INTO {t} VALUES (2, %s)", ("alice@example.com",))
        assert "alice@example.com" not in str(info.value) and "[REDACTED]" in str(info.value)
        diag = info.value.diag
        assert "alice@example.com" not in (diag.message_detail or "") and diag.constraint_name
        assert info.value.sqlstate == "23505"
    finally:
        pg_conn.execute(f"DROP TABLE {t}")


def test_psycopg2_unique_violation_is_scrubbed(pg2_conn: Any, unique: str) -> None:
    """psycopg2: str(exc) and exc.pgerror no longer echo the value (exc.diag is C-level and documented)."""
    t = f"mask_err2_{unique}"
    cur = pg2_conn.cursor()
    cur.execute(f"CREATE TABLE {t} (id int, email text UNIQUE)")
    try:
        cur.execute(f"INSERT INTO {t} VALUES (1, 'alice@example.com')")
        conn = governed_db.wrap(pg2_conn, identity=AGENT, audit=False, policy=CONSTRAINTS_ALLOWED)
        import psycopg2.errors

        with pytest.raises(psycopg2.errors.UniqueViolation) as info:
            conn.cursor().execute(f"INSERT INTO {t} VALUES (2, %s)", ("alice@example.com",))
        assert "alice@example.com" not in str(info.value)
        assert "alice@example.com" not in info.value.pgerror and info.value.pgcode == "23505"
    finally:
        cur.execute(f"DROP TABLE {t}")


def test_unbuffered_mysql_result_is_not_drained(mysql_kw: dict[str, Any], unique: str) -> None:
    """While a pymysql SSCursor result is streaming, masking does not run catalog reads that would drain it."""
    import pymysql

    from governed_db.masking.schema import guarded

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    t = f"mask_ss_{unique}"
    try:
        with raw.cursor() as c:
            c.execute(f"CREATE TABLE {t} (id int, email varchar(50))")
            c.executemany(f"INSERT INTO {t} VALUES (%s, %s)", [(i, f"u{i}@example.com") for i in range(20)])
        conn = governed_db.wrap(raw, identity=AGENT, audit=False)
        cur = conn.cursor(pymysql.cursors.SSCursor)
        cur.execute(f"SELECT id, email FROM {t} ORDER BY id")
        assert cur.fetchone() == (0, "u***@example.com")
        assert (
            guarded(raw, "mysql", lambda c: c.execute("SELECT 1")) is None
        )  # refused: a result is streaming
        assert len(cur.fetchall()) == 19
    finally:
        with raw.cursor() as c:
            c.execute(f"DROP TABLE IF EXISTS {t}")
        raw.close()


@pytest.mark.parametrize("row", [("a@b.co",), [1, "a@b.co", "extra"], DictRow(["a@b.co"])])
def test_rows_of_another_width_are_withheld(row: Any) -> None:
    """A row whose width differs from the result's (a row_factory dropped or added values) is withheld."""
    plan = RowMasker(["id", "email"], [None, lambda v: "X"])
    with pytest.raises(TypeError, match="rows are withheld"):
        plan.apply_row(row)
    with pytest.raises(TypeError, match="rows are withheld"):
        plan.apply_rows([row])


def test_mapping_rows_with_renamed_keys_are_withheld() -> None:
    """A dict row narrower than the result whose keys name no result column (renamed by a factory) is withheld."""
    plan = RowMasker(["id", "email", "email"], [None, lambda v: "X", None])
    assert plan.apply_row({"id": 1, "email": "a@b.co"}) == {"id": 1, "email": "X"}  # duplicates collapsed
    with pytest.raises(TypeError, match="rows are withheld"):
        plan.apply_row({"ID": 1, "EMAIL": "a@b.co"})


def test_frames_with_renamed_columns_are_withheld() -> None:
    """A frame narrower than the result whose columns name no result column is withheld, not passed through."""
    import pandas as pd

    plan = RowMasker(["id", "email", "note"], [None, lambda v: "X", None])
    assert plan.apply_frame(pd.DataFrame({"email": ["a@b.co"]}))["email"].tolist() == ["X"]
    with pytest.raises(TypeError, match="withheld"):
        plan.apply_frame(pd.DataFrame({"mail": ["a@b.co"]}))


def test_mapping_rows_are_masked_by_name_whatever_the_key_order() -> None:
    """A dict row whose factory reordered the keys is masked by column name, not by position."""
    plan = RowMasker(["id", "email"], [None, lambda v: "X"])
    assert plan.apply_row({"email": "a@b.co", "id": 1}) == {"email": "X", "id": 1}
    # renamed (pymysql DictCursor style) but one key per column, in column order: by position
    assert plan.apply_row({"u.id": 1, "o.email": "a@b.co"}) == {"u.id": 1, "o.email": "X"}
