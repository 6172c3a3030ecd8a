"""The order guard (decision 0160): rows an index on a masked column could order come back in a key's order.

The attack: a row of the attacker's own holds a guessed e-mail; an unordered read (or a LIMIT, an aggregate that
concatenates, a window, a scalar subquery, an INSERT ... SELECT) shows where that row falls against the secret's —
whether the guess sorts before the e-mail. Each test runs it on the real database, with a guess just below and
just above the secret, and compares every byte that comes back: governed, they must be the same; raw, they are
not (the attack works), except on DuckDB, whose scans never follow an index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlglot import exp

import governed_db
from governed_db.masking.order import Planner, Relation
from governed_db.masking.splice import splice
from governed_db.sql.analysis import analyze
from tests.test_masking_extraction import ATTACKER, ROWS

#: the secret is alice@example.com: one guess sorts just below it, one just above; another domain keeps the
#: attacker's own row apart from the secret's once both are masked (a***@zzz.example vs a***@example.com)
BELOW, ABOVE = "alicd@zzz.example", "alicf@zzz.example"
DDL = "(id int primary key, full_name {txt}, email {txt}, ssn {txt}, api_key {txt}, city {txt})"
SCRATCH = {
    "sqlite": "(n INTEGER PRIMARY KEY AUTOINCREMENT, v int)",
    "postgres": "(n serial PRIMARY KEY, v int)",
    "mysql": "(n int AUTO_INCREMENT PRIMARY KEY, v int)",
    "duckdb": "(n int, v int)",
}
#: rows without an e-mail: enough for PostgreSQL's planner to read ``email IS NOT NULL`` through the index
FILLER = 3000

COMMON = [
    "SELECT id FROM {t} WHERE email IS NOT NULL",
    "SELECT id, email FROM {t}",
    "SELECT id, email FROM {t} WHERE email IS NOT NULL",
    "SELECT id FROM {t} WHERE email IS NOT NULL LIMIT 1",
    "SELECT id FROM {t} WHERE email IS NOT NULL LIMIT 1 OFFSET 1",
    "SELECT count(*) FROM (SELECT id FROM {t} WHERE email IS NOT NULL LIMIT 1) x WHERE id = 77",
    "SELECT id FROM {t} WHERE email IS NOT NULL ORDER BY city",
    "SELECT id FROM {t} WHERE email IS NOT NULL ORDER BY city LIMIT 1",
    "WITH c AS (SELECT id AS k, full_name FROM {t} WHERE email IS NOT NULL) SELECT k FROM c",
    "SELECT s.e FROM (SELECT email AS e FROM {t}) s",
    "SELECT s.n FROM (SELECT full_name AS n FROM {t} WHERE email IS NOT NULL) s",
    "WITH c AS (SELECT full_name, ssn FROM {t} WHERE email IS NOT NULL) SELECT * FROM c",
    "SELECT id, row_number() OVER () FROM {t} WHERE email IS NOT NULL",
    "SELECT id, row_number() OVER (PARTITION BY city) FROM {t} WHERE email IS NOT NULL",
    "SELECT id, lag(id) OVER (ORDER BY city) FROM {t} WHERE email IS NOT NULL",
    "SELECT city, count(*) FROM {t} WHERE email IS NOT NULL GROUP BY city",
    "SELECT DISTINCT city FROM {t} WHERE email IS NOT NULL",
]
DIALECT = {
    "sqlite": [
        "SELECT rowid, email FROM {t}",
        "SELECT rowid FROM {t} WHERE email IS NOT NULL",
        "SELECT group_concat(id) FROM {t} WHERE email IS NOT NULL",
        "SELECT (SELECT id FROM {t} WHERE email IS NOT NULL)",
        "SELECT id, max(email) FROM {t}",
        "SELECT city, id FROM {t} WHERE email IS NOT NULL GROUP BY city",
        "SELECT json_group_array(id) FROM {t} WHERE email IS NOT NULL",
    ],
    "postgres": [
        "SELECT string_agg(id::text, ',') FROM {t} WHERE email IS NOT NULL",
        "SELECT array_agg(id), json_agg(city) FROM {t} WHERE email IS NOT NULL",
        "SELECT ARRAY(SELECT id FROM {t} WHERE email IS NOT NULL)",
        "SELECT DISTINCT ON (city) id FROM {t} WHERE email IS NOT NULL",
        "SELECT x FROM unnest(ARRAY(SELECT email FROM {t})) AS x",
    ],
    "mysql": [
        "SELECT GROUP_CONCAT(id) FROM {t} WHERE email IS NOT NULL",
        "SELECT JSON_ARRAYAGG(id) FROM {t}",
        "SELECT city, id FROM {t} WHERE email IS NOT NULL GROUP BY city",
        "SELECT id FROM {t} USE INDEX FOR ORDER BY (PRIMARY) WHERE email IS NOT NULL",
    ],
    "duckdb": [
        "SELECT string_agg(CAST(id AS VARCHAR), ',') FROM {t} WHERE email IS NOT NULL",
        "SELECT list(id) FROM {t} WHERE email IS NOT NULL",
    ],
}
#: rows the attacker's INSERT ... SELECT numbers in the order it reads them
NUMBERED = ("INSERT INTO {s} (v) SELECT id FROM {t} WHERE email IS NOT NULL", "SELECT v FROM {s} ORDER BY n")


class Db:
    def __init__(self, dialect: str, governed: Any, raw: Any, table: str, scratch: str, ph: str) -> None:
        self.dialect, self.governed, self.raw, self.table, self.scratch, self.ph = (
            dialect, governed, raw, table, scratch, ph)  # fmt: skip

    def fetch(self, conn: Any, sql: str) -> Any:
        cur = conn.cursor()
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()] if cur.description else None


def _blank(value: Any, guess: str) -> Any:
    """``value`` with the guess itself blanked (the raw connection returns it as written)."""
    if isinstance(value, str):
        return value.replace(guess, "GUESS")
    if isinstance(value, (list, tuple)):
        return type(value)(_blank(v, guess) for v in value)
    return value


def _seen(db: Db, conn: Any, guess: str) -> list[Any]:
    """What each read returns after a row of the attacker's own holding ``guess`` is added (then removed), the
    guess itself blanked."""
    t, s = db.table, db.scratch
    db.fetch(db.raw, f"INSERT INTO {t} (id, email, city) VALUES (77, '{guess}', 'Paris')")
    out: list[Any] = []
    try:
        for sql in COMMON + DIALECT[db.dialect] + ["!numbered"]:
            try:
                if sql == "!numbered":
                    db.fetch(db.raw, f"DELETE FROM {s}")
                    db.fetch(conn, NUMBERED[0].format(t=t, s=s))
                    out.append(db.fetch(db.raw, NUMBERED[1].format(t=t, s=s)))
                else:
                    out.append(_blank(db.fetch(conn, sql.format(t=t)), guess))
            except governed_db.GuardrailViolation as e:
                out.append(("refused", e.decision.rules))
    finally:
        db.fetch(db.raw, f"DELETE FROM {t} WHERE id = 77")
    return out


def _differences(db: Db, conn: Any) -> list[str]:
    below, above = _seen(db, conn, BELOW), _seen(db, conn, ABOVE)
    reads = COMMON + DIALECT[db.dialect] + [NUMBERED[0]]
    return [f"{sql}: {b!r} vs {a!r}" for sql, b, a in zip(reads, below, above, strict=True) if b != a]


def _load(raw: Any, dialect: str, table: str, scratch: str, ph: str) -> None:
    txt = {"sqlite": "text", "postgres": "text", "mysql": "varchar(100)", "duckdb": "varchar"}[dialect]
    cur = raw.cursor()
    cur.execute(f"CREATE TABLE {table} " + DDL.format(txt=txt))
    cur.execute(f"CREATE TABLE {scratch} " + SCRATCH[dialect])
    cur.execute(f"CREATE INDEX {table}_email ON {table} (email)")
    cur.execute(f"CREATE INDEX {table}_ssn ON {table} (ssn)")
    values = ", ".join([ph] * 6)
    rows = [list(r) for r in ROWS] + [[1000 + i, None, None, None, None, "Lyon"] for i in range(FILLER)]
    cur.executemany(f"INSERT INTO {table} VALUES ({values})", rows)
    if dialect == "postgres":
        cur.execute(f"ANALYZE {table}")


def _governed(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=ATTACKER, environment="production", audit=False)


@pytest.fixture
def sqlite_db() -> Iterator[Db]:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    _load(raw, "sqlite", "customers", "numbered", "?")
    yield Db("sqlite", _governed(raw), raw, "customers", "numbered", "?")
    raw.close()


@pytest.fixture
def duckdb_db() -> Iterator[Db]:
    duckdb = pytest.importorskip("duckdb")
    # one thread: DuckDB's parallel operators may return rows in a different order from run to run, which would
    # make two identical reads look different (the test compares orders; DuckDB never follows an index)
    raw = duckdb.connect(config={"threads": 1})
    _load(raw, "duckdb", "customers", "numbered", "?")
    yield Db("duckdb", _governed(raw), raw, "customers", "numbered", "?")
    raw.close()


@pytest.fixture
def postgres_db(pg_dsn: str, pg_conn: Any, unique: str) -> Iterator[Db]:
    import psycopg

    t, s = f"mo_c_{unique}", f"mo_s_{unique}"
    _load(pg_conn, "postgres", t, s, "%s")
    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        yield Db("postgres", _governed(raw), pg_conn, t, s, "%s")
    finally:
        raw.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}, {s}")


@pytest.fixture
def mysql_db(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> Iterator[Db]:
    import pymysql

    t, s = f"mo_c_{unique}", f"mo_s_{unique}"
    _load(mysql_conn, "mysql", t, s, "%s")
    raw = pymysql.connect(autocommit=True, **mysql_kw)
    try:
        yield Db("mysql", _governed(raw), mysql_conn, t, s, "%s")
    finally:
        raw.close()
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}, {s}")


DATABASES = ["sqlite_db", "postgres_db", "mysql_db", "duckdb_db"]


@pytest.mark.parametrize("fixture", DATABASES)
def test_no_read_tells_where_a_guess_sorts(fixture: str, request: pytest.FixtureRequest) -> None:
    """Governed, every read returns the same bytes (or the same refusal) whether the guess sorts below or above
    the masked e-mail: unordered reads, LIMIT, aggregates, windows, scalar subqueries, INSERT ... SELECT."""
    db: Db = request.getfixturevalue(fixture)
    assert not _differences(db, db.governed)


@pytest.mark.parametrize("fixture", DATABASES)
def test_the_same_reads_tell_it_raw(fixture: str, request: pytest.FixtureRequest) -> None:
    """Control: on the raw connection the same reads do follow the index (DuckDB's never do: nothing to fix)."""
    db: Db = request.getfixturevalue(fixture)
    found = _differences(db, db.raw)
    if db.dialect == "duckdb":
        assert not found, found
    else:
        assert len(found) >= 3, found


@pytest.mark.parametrize("fixture", DATABASES)
def test_ordinary_reads_of_an_indexed_table_keep_running(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    """Over-refusal is a bug too: everyday reads of a table with indexes on masked columns run, in key order,
    and return what the raw connection returns in that order (masked)."""
    db: Db = request.getfixturevalue(fixture)
    t = db.table
    # DuckDB adds nothing (its scans keep insertion order, here the id's)
    ordered = db.fetch(db.raw, f"SELECT id, city FROM {t} ORDER BY id")
    assert db.fetch(db.governed, f"SELECT id, city FROM {t}") == ordered
    assert (
        db.fetch(db.governed, f"SELECT id, city FROM {t} WHERE city = 'Lyon' LIMIT 3")
        == [r for r in ordered if r[1] == "Lyon"][:3]
    )
    rows = db.fetch(db.governed, f"SELECT id, email, ssn FROM {t} WHERE id < 3")
    assert [r[0] for r in rows] == [1, 2] and "alice" not in repr(rows) and "536" not in repr(rows)
    assert db.fetch(db.governed, f"SELECT count(*) FROM {t}") == [(2 + FILLER,)]
    groups = db.fetch(db.governed, f"SELECT city, count(*) FROM {t} GROUP BY city")
    distinct = db.fetch(db.governed, f"SELECT DISTINCT city FROM {t}")
    if db.dialect != "duckdb":  # (DuckDB's hash aggregates come in any order, none a masked value's)
        assert groups == sorted(groups) and distinct == sorted(distinct)
    assert sorted(groups) == [("Lyon", FILLER + 1), ("Paris", 1)] and sorted(distinct) == [
        ("Lyon",),
        ("Paris",),
    ]
    assert db.fetch(db.governed, f"SELECT id FROM {t} ORDER BY city DESC, id LIMIT 2") == [(1,), (2,)]
    numbered = db.fetch(db.governed, f"SELECT id, row_number() OVER (ORDER BY id) FROM {t} WHERE id < 3")
    assert numbered == [(1, 1), (2, 2)]
    kept = db.fetch(db.governed, f"WITH c AS (SELECT id, email FROM {t} WHERE id < 3) SELECT * FROM c")
    assert [r[0] for r in kept] == [1, 2] and "alice" not in repr(kept)
    joined = db.fetch(db.governed, f"SELECT a.id, b.id FROM {t} a JOIN {t} b ON b.id = a.id WHERE a.id < 3")
    assert joined == [(1, 1), (2, 2)]
    concat = {"postgres": "string_agg(email, ',')", "duckdb": "string_agg(email, ',')"}.get(
        db.dialect, "group_concat(email)"
    )
    masked = db.fetch(db.governed, f"SELECT {concat} FROM {t}")
    assert masked == [("[EMAIL]",)], masked


def test_tables_without_a_masked_index_run_as_written() -> None:
    """Unmasked tables (and masked ones with no index on a masked column) pay nothing: the text sent is the
    text written; an identity with an unmask grant gets its text as written too."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE plain " + DDL.format(txt="text"))
    raw.execute("CREATE TABLE indexed " + DDL.format(txt="text"))
    raw.execute("CREATE INDEX ix ON indexed (email)")
    raw.execute("CREATE TABLE items (id int primary key, name text, price real)")
    raw.execute("CREATE INDEX ix_name ON items (name)")
    for t in ("plain", "indexed"):
        raw.executemany(f"INSERT INTO {t} VALUES (?,?,?,?,?,?)", ROWS)
    sent: list[str] = []
    raw.set_trace_callback(sent.append)
    conn = _governed(raw)
    texts = ["SELECT id, email FROM plain", "SELECT name FROM items WHERE name IS NOT NULL",
             "SELECT group_concat(name) FROM items"]  # fmt: skip
    for sql in texts:
        sent.clear()
        conn.execute(sql).fetchall()
        assert sent[-1] == sql
    sent.clear()
    conn.execute("SELECT id FROM indexed WHERE email IS NOT NULL").fetchall()
    assert sent[-1] == "SELECT id FROM indexed WHERE email IS NOT NULL ORDER BY indexed.rowid"
    trusted = governed_db.wrap(
        raw, identity=ATTACKER, environment="production", audit=False,
        masking={"unmask": [{"subject": "curious-agent"}]},
    )  # fmt: skip
    sent.clear()
    assert trusted.execute("SELECT id FROM indexed WHERE email IS NOT NULL").fetchall()
    assert sent[-1] == "SELECT id FROM indexed WHERE email IS NOT NULL"


def test_literal_shapes_get_the_key_too() -> None:
    """Texts that differ only in a literal share one plan (decision 0130): each is sent with the key, its own
    literal kept."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE c " + DDL.format(txt="text"))
    raw.execute("CREATE INDEX ix ON c (email)")
    raw.executemany("INSERT INTO c VALUES (?,?,?,?,?,?)", ROWS)
    sent: list[str] = []
    raw.set_trace_callback(sent.append)
    conn = _governed(raw)
    for n in (1, 2, 1, 2, 3):
        sql = f"SELECT id, city FROM c WHERE id < {n} AND email IS NOT NULL"
        assert conn.execute(sql).fetchall() == [r for r in [(1, "Paris"), (2, "Lyon")] if r[0] < n]
        assert sent[-1] == sql + " ORDER BY c.rowid"
    for n in (1, 2, 1, 2, 3):  # the literal after the edit: the text is lined up with its shape token by token
        sql = f"SELECT x.id FROM (SELECT id FROM c WHERE email IS NOT NULL LIMIT 5) x WHERE x.id = {n}"
        assert conn.execute(sql).fetchall() == ([(n,)] if n < 3 else [])
        assert sent[-1] == sql.replace("NULL LIMIT", "NULL ORDER BY c.rowid LIMIT")


def test_refusals_say_which_column_and_what_to_add() -> None:
    """Where no key can be added (a UNION ALL of masked columns, a view of masked columns only, a loose GROUP BY
    column), the refusal names the indexed masked column and the way forward."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE c " + DDL.format(txt="text"))
    raw.execute("CREATE INDEX ix ON c (email)")
    raw.execute("CREATE VIEW v AS SELECT email AS contact FROM c")
    raw.execute("CREATE VIEW w AS SELECT id, email AS contact FROM c")
    raw.executemany("INSERT INTO c VALUES (?,?,?,?,?,?)", ROWS)
    conn = _governed(raw)
    for sql in ("SELECT email FROM c UNION ALL SELECT full_name FROM c", "SELECT contact FROM v",
                "SELECT city, id FROM c GROUP BY city"):  # fmt: skip
        with pytest.raises(governed_db.GuardrailViolation) as info:
            conn.execute(sql).fetchall()
        text = str(info.value)
        assert "c.email" in text and "masked-column-predicate" in text and "unmask grant" in text, text
    assert [r[0] for r in conn.execute("SELECT id, contact FROM w").fetchall()] == [1, 2]


# -- the planner on its own, table-driven -------------------------------------------------------------
_CUSTOMERS = Relation(True, ("id",), ("id", "email", "city"), frozenset({"email"}), frozenset({"email"}))
_ORDERS = Relation(False, ("id",), ("id", "customer_id", "amount"))
PLANS = [
    ("postgres", "SELECT id FROM customers", 'SELECT id FROM customers ORDER BY customers."id"'),
    ("postgres", "SELECT id FROM customers ORDER BY id", "SELECT id FROM customers ORDER BY id"),
    ("postgres", "SELECT id, amount FROM orders", "SELECT id, amount FROM orders"),
    ("postgres", "SELECT c.id FROM customers c JOIN orders o ON o.customer_id = c.id ORDER BY o.amount LIMIT 5",
     'SELECT c.id FROM customers c JOIN orders o ON o.customer_id = c.id ORDER BY o.amount, c."id" LIMIT 5'),
    ("mysql", "SELECT id FROM customers WHERE id = %s FOR UPDATE",
     "SELECT id FROM customers WHERE id = %s ORDER BY customers.`id` FOR UPDATE"),
    ("mysql", "SELECT id FROM customers -- why", "SELECT id FROM customers ORDER BY customers.`id` -- why"),
    ("postgres", "SELECT city, count(*) FROM customers GROUP BY city",
     "SELECT city, count(*) FROM customers GROUP BY city ORDER BY 1"),
    ("postgres", "SELECT count(*) FROM customers", "SELECT count(*) FROM customers"),
    ("postgres", "SELECT string_agg(email, ',') FROM customers",
     "SELECT string_agg(CASE WHEN (email) IS NULL THEN NULL ELSE '' END, ',') FROM customers"),
    ("mysql", "SELECT GROUP_CONCAT(email SEPARATOR ';'), GROUP_CONCAT(id) FROM customers",
     "SELECT GROUP_CONCAT(CASE WHEN (email) IS NULL THEN NULL ELSE '' END SEPARATOR ';'), "
     "GROUP_CONCAT(id ORDER BY customers.`id`) FROM customers"),
    ("postgres", "SELECT row_number() OVER (PARTITION BY city), id FROM customers",
     'SELECT row_number() OVER (PARTITION BY city ORDER BY customers."id"), id FROM customers '
     'ORDER BY customers."id"'),
    ("mysql", "UPDATE customers SET city = 'x' WHERE email IS NOT NULL LIMIT 1",
     "UPDATE customers SET city = 'x' WHERE email IS NOT NULL ORDER BY customers.`id` LIMIT 1"),
    ("mysql", "WITH c AS (SELECT email FROM customers) SELECT * FROM c",
     "WITH c AS (SELECT email FROM customers ORDER BY customers.`id` LIMIT 18446744073709551615) SELECT * FROM c"),
    ("postgres", "INSERT INTO orders (customer_id) SELECT id FROM customers",
     'INSERT INTO orders (customer_id) SELECT id FROM customers ORDER BY customers."id"'),
    ("postgres", "CREATE TABLE copy AS SELECT id FROM customers",
     'CREATE TABLE copy AS SELECT id FROM customers ORDER BY customers."id"'),
    ("postgres", "CREATE VIEW v AS SELECT id FROM customers", "CREATE VIEW v AS SELECT id FROM customers"),
    ("sqlite", "SELECT group_concat(id) FROM customers", None),
    ("mysql", "SELECT city, id FROM customers GROUP BY city", None),
]  # fmt: skip


@pytest.mark.parametrize(("dialect", "sql", "expected"), PLANS)
def test_planned_text(dialect: str, sql: str, expected: str | None) -> None:
    """What the planner adds to a statement as written (``None``: refused)."""
    relations = {"customers": _CUSTOMERS, "orders": _ORDERS}

    def relation(node: exp.Table) -> Relation | None:
        return relations.get(node.name.lower())

    tree = analyze(sql, dialect).statements[0].expression
    assert tree is not None
    plan = Planner(dialect, relation, ordered_aggregates=dialect != "sqlite").statement(tree)
    if expected is None:
        assert plan.refusal is not None
        return
    assert plan.refusal is None
    assert (splice(sql, dialect, tree, plan.edits).text if plan.edits else sql) == expected


#: ``{k}``: what the index holds besides the e-mail (SQLite's rowid; PostgreSQL reads the table through it)
ASYNC_READS = [
    "SELECT {k} FROM {t} WHERE email IS NOT NULL",
    "SELECT {k} FROM {t} WHERE email IS NOT NULL LIMIT 1",
    "SELECT s.r FROM (SELECT {k} AS r FROM {t} WHERE email IS NOT NULL) s",
]


async def _async_seen(conn: Any, admin: Any, table: str, guess: str) -> list[Any]:
    admin.execute(f"INSERT INTO {table} (id, email, city) VALUES (77, '{guess}', 'Paris')")
    try:
        out = []
        for template in ASYNC_READS:
            sql = template.replace("{k}", "rowid" if isinstance(admin, sqlite3.Connection) else "id")
            cur = await conn.execute(sql.format(t=table))
            out.append(_blank([tuple(r) for r in await cur.fetchall()], guess))
        return out
    finally:
        admin.execute(f"DELETE FROM {table} WHERE id = 77")


@pytest.mark.anyio
async def test_async_connections_read_the_indexes_too(
    tmp_path: Any, pg_dsn: str, pg_conn: Any, unique: str
) -> None:
    """aiosqlite and psycopg's AsyncConnection read indexes and keys with ``await`` before judging: the same
    reads tell nothing there either (and the raw connections do tell)."""
    aiosqlite = pytest.importorskip("aiosqlite")
    import psycopg

    path = tmp_path / "app.db"
    admin = sqlite3.connect(path, isolation_level=None)
    _load(admin, "sqlite", "customers", "numbered", "?")
    raw = await aiosqlite.connect(path)
    t = f"mo_a_{unique}"
    _load(pg_conn, "postgres", t, t + "_s", "%s")
    pg_raw = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
    try:
        for conn, table, admin_conn in ((raw, "customers", admin), (pg_raw, t, pg_conn)):
            governed = _governed(conn)
            assert await _async_seen(governed, admin_conn, table, BELOW) == await _async_seen(
                governed, admin_conn, table, ABOVE
            )
            assert await _async_seen(conn, admin_conn, table, BELOW) != await _async_seen(
                conn, admin_conn, table, ABOVE
            )
    finally:
        await raw.close()
        await pg_raw.close()
        admin.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}, {t}_s")
