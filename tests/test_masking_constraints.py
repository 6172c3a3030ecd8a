"""Constraints that compare a written value with stored ones (decision 0165): what each write changes
(``masking/writes.py``), which constraints each database reports (``masking/schema.py``), which uses they make
(``masking/constraints.py``), and the errors that would quote a stored key (``masking/messages.py``).

The end-to-end oracles (a right and a wrong guess observed alike, on the four databases) are in
``tests/test_redteam_masking.py``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import sqlglot

import governed_db
from governed_db import GuardrailViolation, Identity
from governed_db.masking import schema
from governed_db.masking.constraints import constraint_uses, is_constraint_use
from governed_db.masking.lineage import trace
from governed_db.masking.messages import scrub_message
from governed_db.masking.origins import Written
from governed_db.masking.schema import Constraint

AGENT = Identity("orders-agent", kind="agent")
COLUMNS = {"t": ["id", "email", "ssn", "city"], "s": ["id", "v", "n"]}


def _columns_of(node: Any) -> tuple[str, list[str] | None]:
    key = node.name.lower()
    return key, COLUMNS.get(key)


def _writes(sql: str, dialect: str) -> list[tuple[str, str, list[str] | None]]:
    lin = trace(sqlglot.parse_one(sql, read=dialect), _columns_of, dialect)
    return [(w.table, w.kind, None if w.columns is None else sorted(w.columns)) for w in lin.writes]


WRITES = [
    ("sqlite", "INSERT INTO t (id, email) VALUES (1, 'x')", [("t", "insert", ["email", "id"])]),
    ("sqlite", "INSERT INTO t VALUES (1, 'x', NULL, DEFAULT)", [("t", "insert", ["email", "id"])]),
    ("sqlite", "INSERT INTO t (id, email) SELECT 1, NULL", [("t", "insert", ["id"])]),
    ("sqlite", "INSERT INTO t SELECT * FROM s", [("t", "insert", ["city", "email", "id", "ssn"])]),
    ("sqlite", "INSERT OR REPLACE INTO t (id, city) VALUES (1, 'x')", [("t", "insert", ["city", "id"]), ("t", "delete", None)]),
    ("sqlite", "REPLACE INTO t (id, city) VALUES (1, 'x')", [("t", "insert", ["city", "id"]), ("t", "delete", None)]),
    ("postgres", "INSERT INTO t DEFAULT VALUES", [("t", "insert", [])]),
    (
        "postgres",
        "INSERT INTO t (id, email) VALUES ($1, $2) ON CONFLICT (email) DO UPDATE SET city = excluded.city",
        [("t", "insert", ["email", "id"]), ("t", "update", ["city"])],
    ),
    ("postgres", "UPDATE t SET (city, ssn) = (1, 2) WHERE id = 1", [("t", "update", ["city", "ssn"])]),
    ("postgres", "UPDATE t SET email = NULL, city = 'x' WHERE id = 1", [("t", "update", ["city"])]),
    ("postgres", "UPDATE t SET city = s.v FROM s WHERE s.id = t.id", [("t", "update", ["city"])]),
    ("postgres", "DELETE FROM t USING s WHERE s.id = t.id", [("t", "delete", None)]),
    ("postgres", "COPY t (id, email) FROM STDIN", [("t", "insert", ["email", "id"])]),
    ("postgres", "WITH x AS (INSERT INTO t (id, email) VALUES (1, 'a') RETURNING id) SELECT * FROM x", [("t", "insert", ["email", "id"])]),
    (
        "postgres",
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET email = s.v WHEN MATCHED AND s.n = 0 "
        "THEN DELETE WHEN NOT MATCHED THEN INSERT (id, email) VALUES (s.id, s.v)",
        [("t", "update", ["email"]), ("t", "delete", None), ("t", "insert", ["email", "id"])],
    ),
    ("mysql", "INSERT INTO t SET id = 1, email = 'x'", [("t", "insert", ["email", "id"])]),
    ("mysql", "REPLACE t SET id = 1, city = 'x'", [("t", "insert", ["city", "id"]), ("t", "delete", None)]),
    (
        "mysql",
        "INSERT INTO t (id, email) VALUES (1, 'x') ON DUPLICATE KEY UPDATE city = 'z'",
        [("t", "insert", ["email", "id"]), ("t", "update", ["city"])],
    ),
    ("mysql", "UPDATE s JOIN t c ON c.id = s.id SET c.email = 'x', s.n = 1", [("t", "update", ["email"]), ("s", "update", ["n"])]),
    ("mysql", "UPDATE s JOIN t c ON c.id = s.id SET email = 'x', n = 1", [("t", "update", ["email"]), ("s", "update", ["n"])]),
    ("mysql", "DELETE s, c FROM s JOIN t c ON c.id = s.id", [("s", "delete", None), ("t", "delete", None)]),
    ("duckdb", "INSERT INTO t BY NAME SELECT 1 AS id, 'x' AS email", [("t", "insert", ["email", "id"])]),
    ("duckdb", "INSERT OR IGNORE INTO t VALUES (1, 'x')", [("t", "insert", ["email", "id"])]),
    ("sqlite", "SELECT email FROM t WHERE id = 1", []),
]


@pytest.mark.parametrize(("dialect", "sql", "expected"), WRITES)
def test_writes_record_the_columns_each_statement_gives_a_value(dialect: str, sql: str, expected: Any) -> None:
    """Every write (upserts, REPLACE, MERGE branches, multi-table and data-modifying CTEs, COPY) says which
    table it changes, how, and which columns get a value (NULL and DEFAULT are none)."""
    assert _writes(sql, dialect) == expected


UNIQUE = Constraint("unique", "t_email_key", frozenset({"email"}))
PAIR = Constraint("unique", "t_city_ssn", frozenset({"city", "ssn"}))
CHILD = Constraint("foreign key", "o_fk", frozenset({"customer_email"}), "t", frozenset({"email"}))
PARENT = Constraint("referenced", "o_fk", frozenset({"email"}), "o", frozenset({"customer_email"}))
CHECK = Constraint("check", "t_check", frozenset({"alt", "email"}))


def _w(kind: str, columns: set[str] | None, touched: set[str] | None = None) -> Written:
    return Written("t", kind, None if columns is None else frozenset(columns), None if touched is None else frozenset(touched))


#: (write, constraint, the columns that decide — as (table, column) — or None for no use)
USES = [
    (_w("insert", {"id", "email"}), UNIQUE, {("t", "email")}),
    (_w("insert", {"id", "city"}), UNIQUE, None),
    (_w("insert", None), UNIQUE, {("t", "email")}),
    (_w("update", {"email"}), UNIQUE, {("t", "email")}),
    (_w("update", {"city"}), UNIQUE, None),
    (_w("delete", None), UNIQUE, None),
    (_w("insert", {"city"}), PAIR, {("t", "city")}),  # the new row's ssn is NULL: compared with nothing
    (_w("update", {"city"}), PAIR, {("t", "city"), ("t", "ssn")}),  # the stored ssn is part of the new key
    (_w("insert", {"customer_email"}), CHILD, {("t", "email")}),
    (_w("update", {"note"}), CHILD, None),
    (_w("delete", None), CHILD, None),
    # the child rows' values decide as much as the parent's (decision 0403)
    (_w("delete", None), PARENT, {("t", "email"), ("o", "customer_email")}),
    (_w("update", set(), {"email"}), PARENT, {("t", "email"), ("o", "customer_email")}),  # SET email = NULL fails
    (_w("update", {"city"}, {"city"}), PARENT, None),
    (_w("insert", {"email"}), PARENT, None),
    (_w("update", {"alt"}), CHECK, {("t", "email")}),
    (_w("update", {"alt", "email"}), CHECK, None),  # both the caller's: compared with nothing stored
    (_w("update", {"city"}), CHECK, None),
    (_w("insert", {"alt"}), CHECK, None),
]


@pytest.mark.parametrize(("write", "constraint", "deciding"), USES)
def test_constraint_uses_name_the_stored_columns_that_decide(write: Written, constraint: Constraint, deciding: Any) -> None:
    """Each write meets a constraint's check only as the database makes it: an INSERT's new key, an UPDATE's
    key with the row's stored values, a child row's parent, a referenced row's delete, a CHECK's stored inputs."""
    uses = constraint_uses([write], lambda key: (["id", "email", "ssn", "city", "alt"], [constraint]))
    if deciding is None:
        assert uses == []
    else:
        assert len(uses) == 1 and is_constraint_use(uses[0][0]) and set(uses[0][1].sources) == deciding


def test_duckdb_referenced_rows_are_checked_on_any_indexed_update() -> None:
    """On DuckDB an UPDATE of an indexed column (``updated``) deletes and re-inserts the row: a use of the
    referenced e-mail even though the e-mail is not written."""
    c = Constraint("referenced", "o_fk", frozenset({"email"}), "o", frozenset({"e"}), frozenset({"email", "code"}))
    uses = constraint_uses([_w("update", {"code"}, {"code"})], lambda key: (["id", "email", "code"], [c]))
    assert [set(u[1].sources) for u in uses] == [{("t", "email"), ("o", "e")}]
    assert constraint_uses([_w("update", {"city"}, {"city"})], lambda key: (["id", "email", "code"], [c])) == []


def test_unreadable_constraints_count_as_a_unique_key_over_every_written_column() -> None:
    """Constraints that could not be read fail closed: an INSERT's given columns, any column for an UPDATE or
    DELETE; for a table of unknown columns, the columns the statement names."""
    cols = ["id", "email", "city"]
    assert set(constraint_uses([_w("insert", {"city"})], lambda key: (cols, None))[0][1].sources) == {("t", "city")}
    assert len(constraint_uses([_w("delete", None)], lambda key: (cols, None))[0][1].sources) == 3
    unknown = constraint_uses([_w("insert", {"email"})], lambda key: (None, None))
    assert [set(u[1].sources) for u in unknown] == [{("t", "email")}]  # masked when the name says so


# -- what each database reports ----------------------------------------------------------------------------
def _read(conn: Any, dialect: str, table: str) -> set[tuple[Any, ...]]:
    cols = [c for c, _ in schema.read_columns(conn, dialect, table, None, table) or []]
    found = schema.read_constraints(conn, dialect, table, None, table, cols)
    assert found is not None
    return {(c.kind, tuple(sorted(c.columns)), c.other, tuple(sorted(c.other_columns))) for c in found}


def test_sqlite_constraints() -> None:
    """SQLite: the rowid primary key, UNIQUE, expression and partial unique indexes, generated columns, foreign
    keys both ways (REFERENCES p = its primary key), CHECKs."""
    raw = sqlite3.connect(":memory:")
    raw.executescript(
        "CREATE TABLE p (id integer primary key, email text unique, ssn text, city text, "
        "el text generated always as (lower(email)) virtual, dob text, hired text, CHECK (dob < hired), "
        "UNIQUE (city, el));"
        "CREATE UNIQUE INDEX p_ssn ON p (lower(ssn)) WHERE city IS NOT NULL;"
        "CREATE TABLE ch (id int, email text REFERENCES p(email), pid int REFERENCES p);"
    )
    assert _read(raw, "sqlite", "p") == {
        ("unique", ("id",), None, ()),
        ("default", ("id",), None, ()),  # the rowid alias: left out, it gets the largest stored id plus one (0388)
        ("unique", ("email",), None, ()),
        ("unique", ("city", "el", "email"), None, ()),
        ("unique", ("city", "ssn"), None, ()),
        ("check", ("dob", "hired"), None, ()),
        ("referenced", ("email",), "ch", ("email",)),
        ("referenced", ("id",), "ch", ("pid",)),
    }
    assert _read(raw, "sqlite", "ch") == {
        ("foreign key", ("email",), "p", ("email",)),
        ("foreign key", ("pid",), "p", ("id",)),
    }


def test_duckdb_constraints() -> None:
    """DuckDB: duckdb_constraints() and duckdb_indexes() (expressions read from the index's SQL), generated
    columns, foreign keys both ways; a referenced row is checked on an UPDATE of any indexed column."""
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute(
        "CREATE TABLE p (id int primary key, email varchar unique, ssn varchar, city varchar, nick varchar, "
        "el varchar generated always as (lower(ssn)), CHECK (city <> ssn))"
    )
    raw.execute("CREATE UNIQUE INDEX p_el ON p (el)")
    raw.execute("CREATE INDEX p_nick ON p (nick)")
    raw.execute("CREATE TABLE ch (id int, e varchar REFERENCES p(email))")
    assert _read(raw, "duckdb", "p") == {
        ("unique", ("id",), None, ()),
        ("unique", ("email",), None, ()),
        ("unique", ("el", "ssn"), None, ()),
        ("check", ("city", "ssn"), None, ()),
        ("referenced", ("email",), "ch", ("e",)),
    }
    cols = [c for c, _ in schema.read_columns(raw, "duckdb", "p", None, "p") or []]
    referenced = [c for c in schema.read_constraints(raw, "duckdb", "p", None, "p", cols) or [] if c.kind == "referenced"]
    assert referenced[0].updated is not None and {"id", "email", "nick", "el"} <= referenced[0].updated
    assert _read(raw, "duckdb", "ch") == {("foreign key", ("e",), "p", ("email",))}


def test_postgres_constraints(pg_conn: Any, unique: str) -> None:
    """PostgreSQL: pg_index (key columns, INCLUDE left out, expressions and predicates through pg_depend),
    exclusion constraints, generated columns, pg_constraint foreign keys both ways and CHECKs."""
    p, c = f"mu_p_{unique}", f"mu_ch_{unique}"
    pg_conn.execute(
        f"CREATE TABLE {p} (id int primary key, email text unique, ssn text, city text, active bool, "
        "el text generated always as (lower(email)) stored, dob date, hired date, CHECK (dob < hired), "
        "UNIQUE (el) INCLUDE (city), EXCLUDE USING hash (ssn WITH =))"
    )
    try:
        pg_conn.execute(f"CREATE UNIQUE INDEX {p}_x ON {p} (lower(city)) WHERE active")
        pg_conn.execute(f"CREATE TABLE {c} (id int, customer_email text REFERENCES {p}(email))")
        assert _read(pg_conn, "postgres", p) == {
            ("unique", ("id",), None, ()),
            ("unique", ("email",), None, ()),
            ("unique", ("el", "email"), None, ()),
            ("unique", ("ssn",), None, ()),
            ("unique", ("active", "city"), None, ()),
            ("check", ("dob", "hired"), None, ()),
            ("check", ("email",), None, ()),  # the stored generated column el, computed at each write: 0308
            ("referenced", ("email",), c, ("customer_email",)),
            # every index, by the size of its entries (INCLUDE columns too): decision 0231
            ("index", ("id",), None, ()),
            ("index", ("email",), None, ()),
            ("index", ("city", "el", "email"), None, ()),
            ("index", ("ssn",), None, ()),
            ("index", ("active", "city"), None, ()),
        }
        assert _read(pg_conn, "postgres", c) == {("foreign key", ("customer_email",), p, ("email",))}
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {c}, {p}")


def test_mariadb_constraints(mysql_conn: Any, unique: str) -> None:
    """MariaDB: information_schema STATISTICS (unique keys, long HASH ones), KEY_COLUMN_USAGE both ways,
    CHECK_CONSTRAINTS, and generated columns whose expression sqlglot reads only as an expression."""
    p, c = f"mu_p_{unique}", f"mu_ch_{unique}"
    cur = mysql_conn.cursor()
    cur.execute(
        f"CREATE TABLE {p} (id int primary key, email varchar(100) unique, ssn varchar(20), note text, "
        "digits varchar(20) AS (replace(ssn, '-', '')) VIRTUAL, dob date, hired date, UNIQUE KEY (digits), "
        "UNIQUE KEY (note) USING HASH, CHECK (dob < hired)) ENGINE=InnoDB"
    )
    try:
        cur.execute(f"CREATE TABLE {c} (id int, customer_email varchar(100), FOREIGN KEY (customer_email) REFERENCES {p}(email)) ENGINE=InnoDB")
        assert _read(mysql_conn, "mysql", p) == {
            ("unique", ("id",), None, ()),
            ("unique", ("email",), None, ()),
            ("unique", ("digits", "ssn"), None, ()),
            ("unique", ("note",), None, ()),
            ("check", ("dob", "hired"), None, ()),
            ("check", ("ssn",), None, ()),  # the virtual column digits, which an index holds: computed at writes (0308)
            ("referenced", ("email",), c, ("customer_email",)),
            ("default", ("id",), None, ()),  # NOT NULL without a default: '' or 0 is its default (decision 0232)
        }
        assert _read(mysql_conn, "mysql", c) == {("foreign key", ("customer_email",), p, ("email",))}
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {c}, {p}")


def test_unparseable_definitions_fail_closed() -> None:
    """An expression sqlglot keeps opaque, or cannot parse, counts as reading every column of the table."""
    every = frozenset({"id", "ssn", "email"})
    assert schema._mentioned("replace(`ssn`,'-','')", "mysql", every) == {"ssn"}
    assert schema._mentioned("((( not sql", "mysql", every) == every
    assert schema._mentioned("REPLACE INTO x VALUES (1)", "mysql", every, statement=True) == every


# -- the guard, on a real connection -----------------------------------------------------------------------
def _shop() -> sqlite3.Connection:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("PRAGMA foreign_keys = ON")
    raw.execute("CREATE TABLE customers (id int primary key, email text UNIQUE, city text)")
    raw.execute("INSERT INTO customers VALUES (1, 'alice@example.com', 'Paris'), (2, 'bob@example.org', 'Lyon')")
    return raw


def test_refusal_names_the_column_the_constraint_and_what_to_do() -> None:
    """The message says which masked column, which key, why, and the two ways forward."""
    conn = governed_db.wrap(_shop(), identity=AGENT, environment="production", audit=False)
    with pytest.raises(GuardrailViolation) as info:
        conn.execute("INSERT INTO customers (id, email) VALUES (3, 'carol@example.net') ON CONFLICT DO NOTHING")
    text = str(info.value)
    assert info.value.rules == ("masked-column-constraint",)
    assert "customers.email" in text and "unique key" in text and "customers(email)" in text
    assert "unmask grant" in text and "service identity" in text and "leave the column out" in text


def test_unreadable_constraints_refuse_writes_into_masked_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the catalog cannot say which constraints a table has, a write into a masked column is refused, and
    so is any UPDATE of its table (a key may pair the column written with a masked one): fail closed. A new row
    without the masked column, and writes to tables without masked columns, still run."""
    monkeypatch.setattr(schema, "read_constraints", lambda *a, **k: None)
    raw = _shop()
    raw.execute("CREATE TABLE tally (id int primary key, n int)")
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    with pytest.raises(GuardrailViolation, match=r"customers\.email take part in the constraints of customers"):
        conn.execute("INSERT INTO customers (id, email) VALUES (3, 'carol@example.net')")
    with pytest.raises(GuardrailViolation, match="constraints of customers"):
        conn.execute("UPDATE customers SET city = 'Nice' WHERE id = 1")
    conn.execute("INSERT INTO customers (id, city) VALUES (3, 'Rome')")
    conn.execute("INSERT INTO tally (id, n) VALUES (1, 7)")
    assert raw.execute("SELECT id, email, city FROM customers ORDER BY id").fetchall() == [
        (1, "alice@example.com", "Paris"),
        (2, "bob@example.org", "Lyon"),
        (3, None, "Rome"),
    ]
    assert raw.execute("SELECT * FROM tally").fetchall() == [(1, 7)]


def test_constraints_are_read_once_per_table_and_again_after_ddl(monkeypatch: pytest.MonkeyPatch) -> None:
    """The constraints are cached with the table (one catalog read for many writes); DDL through the connection
    clears them, so a UNIQUE index created meanwhile is judged at the next write."""
    calls: list[str] = []
    real = schema.read_constraints

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[4])
        return real(*args, **kwargs)

    monkeypatch.setattr(schema, "read_constraints", counting)
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE people (id int primary key, email text, city text)")
    raw.execute("INSERT INTO people VALUES (1, 'alice@example.com', 'Paris'), (2, 'bob@example.org', 'Lyon')")
    # staging: a human's DDL only warns there, and masking's rules deny as in production
    conn = governed_db.wrap(raw, identity=Identity("dba", kind="human"), environment="staging", audit=False)
    for n in range(3, 6):
        conn.execute(f"INSERT INTO people (id, email) VALUES ({n}, 'p{n}@example.net')")
    assert calls == ["people"]
    # (creating a unique index over stored e-mails is itself refused: it fails exactly when two are equal)
    with pytest.raises(GuardrailViolation, match="new index people_email"):
        conn.execute("CREATE UNIQUE INDEX people_email ON people (email)")
    raw.execute("CREATE UNIQUE INDEX people_email ON people (email)")  # a migration, say
    conn.execute("CREATE INDEX people_city ON people (city)")  # DDL through the connection clears the cache
    with pytest.raises(GuardrailViolation, match="masked-column-constraint"):
        conn.execute("INSERT INTO people (id, email) VALUES (9, 'alice@example.com')")
    assert calls == ["people", "people"]
    assert raw.execute("SELECT count(*) FROM people").fetchone() == (5,)


# -- errors that quote a stored key -------------------------------------------------------------------------
ECHOES = [
    'DETAIL:  Key (email)=(Alice Smith) is still referenced from table "orders".',
    "DETAIL:  Key (email)=(zz@x.io) conflicts with existing key (email)=(Alice Smith).",
    "DETAIL:  Key (lower(ssn))=(Alice Smith) already exists.",
    "DETAIL:  Key (lower(coalesce(a, b)), c)=(Alice Smith, 3) already exists.",
    'Constraint Error: Duplicate key "email: Alice Smith" violates unique constraint.',
    'Constraint Error: Violates foreign key constraint because key "customer_email: Alice Smith" is still referenced',
    'Constraint Error: Violates foreign key constraint because key "email: Alice Smith" does not exist in the table',
]


@pytest.mark.parametrize("message", ECHOES)
def test_errors_quoting_a_stored_key_are_blanked(message: str) -> None:
    """PostgreSQL's referenced-key, exclusion and expression-key details and DuckDB's key echoes lose the value
    (a name, which detection would not find), keeping the rest of the message."""
    out = scrub_message(message)
    assert "Alice Smith" not in out and "[REDACTED]" in out and out.split("[REDACTED]")[0] in message


# -- async connections ---------------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_async_connections_read_constraints_with_await(pg_dsn: str, pg_conn: Any, unique: str) -> None:
    """psycopg's AsyncConnection: the constraints (several dependent catalog reads) are read with ``await``
    before the write is judged: a guessed e-mail is refused, a plain column of the same row is written."""
    import psycopg

    t = f"mu_async_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, email text UNIQUE, city text)")
    pg_conn.execute(f"INSERT INTO {t} VALUES (1, 'alice@example.com', 'Paris'), (2, 'bob@example.org', 'Lyon')")
    raw = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
    try:
        conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
        cur = conn.cursor()
        with pytest.raises(GuardrailViolation, match=rf"masked-column-constraint.*{t}\.email"):
            await cur.execute(f"INSERT INTO {t} (id, email) VALUES (3, 'alice@example.com') ON CONFLICT DO NOTHING")
        await cur.execute(f"UPDATE {t} SET city = 'Nice' WHERE id = 1")
        assert pg_conn.execute(f"SELECT id, email, city FROM {t} ORDER BY id").fetchall() == [
            (1, "alice@example.com", "Nice"),
            (2, "bob@example.org", "Lyon"),
        ]
    finally:
        await raw.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_writes_through_an_updatable_view_fail_closed(dialect: str, request: pytest.FixtureRequest) -> None:
    """A view has no constraints of its own, but a write through it meets its table's: its constraints count as
    unknown, so a guessed e-mail written through it is refused alike for a right and a wrong guess."""
    unique = request.getfixturevalue("unique")
    t, v = f"mu_vt_{unique}", f"mu_v_{unique}"
    raw = request.getfixturevalue("pg_conn" if dialect == "postgres" else "mysql_conn")
    cur = raw.cursor()
    txt = "text" if dialect == "postgres" else "varchar(100)"
    cur.execute(f"CREATE TABLE {t} (id int primary key, email {txt} UNIQUE, city {txt})")
    try:
        cur.execute(f"INSERT INTO {t} VALUES (1, 'alice@example.com', 'Paris'), (2, 'bob@example.org', 'Lyon')")
        cur.execute(f"CREATE VIEW {v} AS SELECT id, email, city FROM {t}")
        conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
        seen = []
        for guess in ("alice@example.com", "alicf@example.com"):
            with pytest.raises(GuardrailViolation, match=rf"masked-column-constraint.*{v}\.email") as info:
                conn.cursor().execute(f"INSERT INTO {v} (id, email) VALUES (3, '{guess}')")
            seen.append(str(info.value).replace(guess, "<G>"))
        assert seen[0] == seen[1]
        cur.execute(f"SELECT count(*) FROM {t}")
        assert cur.fetchone()[0] == 2
    finally:
        cur.execute(f"DROP VIEW IF EXISTS {v}")
        cur.execute(f"DROP TABLE IF EXISTS {t}")


DDL = [
    ("postgres", "ALTER TABLE t ADD CONSTRAINT c CHECK (substr(ssn, 1, 1) = '5')", {"ssn"}),
    ("postgres", "ALTER TABLE t ADD CONSTRAINT u UNIQUE (email)", {"email"}),
    # the parent's referenced column too: a table of guesses checked against it (decision 0321)
    ("postgres", "ALTER TABLE t ADD FOREIGN KEY (email) REFERENCES guesses(g)", {"email", "g"}),
    ("postgres", "ALTER TABLE t ALTER COLUMN ssn SET NOT NULL", {"ssn"}),
    ("postgres", "ALTER TABLE t ALTER COLUMN ssn DROP NOT NULL", set()),
    ("postgres", "ALTER TABLE t ALTER COLUMN ssn TYPE int USING ssn::int", {"ssn"}),
    ("postgres", "ALTER TABLE t ADD COLUMN x int GENERATED ALWAYS AS (length(ssn)) STORED", {"ssn"}),
    ("postgres", "CREATE UNIQUE INDEX ix ON t (substr(email, 1, 1))", {"email"}),
    # (on PostgreSQL every column a btree stores: an entry over 2704 bytes fails the build, decision 0364)
    ("postgres", "CREATE INDEX ix ON t (city) WHERE ssn LIKE '5%'", {"city", "ssn"}),
    ("postgres", "CREATE INDEX ix ON t (email)", {"email"}),
    ("postgres", "CREATE INDEX ix ON t (id) INCLUDE (email)", {"id", "email"}),
    ("mysql", "ALTER TABLE t MODIFY ssn INT", {"ssn"}),
    ("mysql", "ALTER TABLE t CHANGE ssn ssn2 INT", {"ssn"}),
    ("mysql", "ALTER TABLE t ADD CHECK (ssn LIKE '5%')", {"id", "email", "ssn", "city"}),  # opaque: every column
    ("postgres", "ALTER TABLE t VALIDATE CONSTRAINT c", {"id", "email", "ssn", "city"}),
    ("postgres", "CREATE INDEX ix ON t USING hash (email)", set()),  # a hash index stores hash codes
    ("mysql", "CREATE INDEX ix ON t (email)", set()),
    ("postgres", "ALTER TABLE t RENAME COLUMN email TO mail", set()),
    ("postgres", "ALTER TABLE t ADD COLUMN note text", set()),
    ("postgres", "ALTER TABLE t DROP COLUMN city", set()),
    ("postgres", "CREATE TABLE n (id int primary key, email text unique)", set()),
]


@pytest.mark.parametrize(("dialect", "sql", "read"), DDL)
def test_ddl_that_checks_stored_rows_uses_their_columns(dialect: str, sql: str, read: set[str]) -> None:
    """DDL that checks or converts every stored row (new unique keys, CHECKs, foreign keys, type changes,
    generated columns, index expressions and WHERE; on PostgreSQL the columns a new btree stores) uses the columns
    it reads; renames, drops, other plain indexes and new tables use none; an ALTER sqlglot keeps opaque uses every column."""
    from governed_db.masking.constraints import ddl_uses

    uses = ddl_uses(sqlglot.parse_one(sql, read=dialect), _columns_of, dialect)
    assert {c for u in uses for _, c in u[1].sources} == read
    assert all(is_constraint_use(u[0]) for u in uses)
