"""Over-refusal round 14: innocent statements that were refused or over-masked, and their guilty neighbours.

* SQLite ``$name`` and ``?NNN`` parameters (DuckDB ``?NNN`` too) are parameters, not a column ``$name`` or a parse
  error (decision 0296); Tcl's spellings stay refused (0279).
* An FTS5 ``MATCH`` whose column filters name only innocent columns decides rows by those columns alone (0296); one
  that reaches a masked column stays refused, and so does an FTS3/FTS4 ``col MATCH``, whose query may name any
  column (a leak found here).
* ``COALESCE(email, 'n/a')`` masks its own column only; the literal is not shown (it would be a guess check), the
  NULL test is the exact way to say 'n/a' (0209, 0297).
* A masked column grouped beside a UNIQUE NOT NULL key of its own table runs on the four databases (0297).
* An ordinary analytics workload over customers and orders runs with the database's answers on the four databases.

Leak cases compare a right and a wrong guess: the raw connection shows the difference, the governed one does not.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import governed_db
from governed_db import Identity
from tests._redteam import observe
from tests.test_redteam_masking_r13_rt13lite import TCL_PARAMETERS

AGENT = Identity("curious-agent", kind="agent")


def _gov(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)


def _bound(conn: Any, sql: str, params: Any = ()) -> Any:
    """Rows of ``sql`` bound with ``params`` (or the refusal / error text)."""
    try:
        cur = conn.cursor()
        cur.execute(sql, params)
        return [tuple(r) for r in cur.fetchall()] if cur.description else cur.rowcount
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    except Exception as e:
        return f"{type(e).__name__}: {e}"


# -- 1. SQLite parameters as applications bind them ------------------------------------------------------------
def _customers(ssn: str = "536-22-8726") -> sqlite3.Connection:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT, email TEXT, ssn TEXT, city TEXT)")
    raw.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
        [
            (1, "Alice Smith", "alice@example.com", ssn, "Paris"),
            (2, "Bob Jones", None, "219-45-1002", "Lyon"),
            (3, "Carol White", "carol@example.net", "219-45-1003", "Nice"),
        ],
    )
    return raw


PLAIN_PARAMETERS = [
    ("SELECT city FROM customers WHERE id = $id", {"id": 1}, [("Paris",)]),
    ("SELECT city FROM customers WHERE id = ?1 OR id = ?2 ORDER BY id", (1, 2), [("Paris",), ("Lyon",)]),
    ("SELECT ?3, ?1", (1, 2, 3), [(3, 1)]),
    ("SELECT city FROM customers WHERE id = :id", {"id": 2}, [("Lyon",)]),
    ("SELECT city FROM customers WHERE id = :1 OR id = :2 ORDER BY id", (2, 3), [("Lyon",), ("Nice",)]),
    ("SELECT city FROM customers WHERE id = @id", {"id": 3}, [("Nice",)]),
    ("SELECT city FROM customers WHERE city = $c ORDER BY id LIMIT $n OFFSET $o", {"c": "Paris", "n": 5, "o": 0},
     [("Paris",)]),
    ("SELECT id FROM customers WHERE city LIKE $p || '%' ORDER BY id", {"p": "Ly"}, [(2,)]),
    ("SELECT id, full_name FROM customers WHERE id = $id", {"id": 1}, [(1, "[PERSON_NAME]")]),
    # a parameter named like a masked column is the value bound, not the column
    ("SELECT $ssn FROM customers WHERE id = 1", {"ssn": "x"}, [("x",)]),
]


@pytest.mark.parametrize(("sql", "params", "rows"), PLAIN_PARAMETERS)
def test_plain_sqlite_parameters_run(sql: str, params: Any, rows: list[Any]) -> None:
    """``$name`` was a column ``$name`` to the analyser (``WHERE id = $id`` refused as a masked predicate) and
    ``?NNN`` a parse error; both now read as SQLite reads them, with the database's answers."""
    assert _bound(_gov(_customers()), sql, params) == rows
    raw = _bound(_customers(), sql, params)
    assert [r for r, g in zip(raw, rows, strict=True) if "[PERSON_NAME]" not in g] == [
        g for g in rows if "[PERSON_NAME]" not in g
    ]


ZED = {"id": 9, "name": "Zed", "city": "Rome"}


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("INSERT INTO customers (id, full_name, city) VALUES ($id, $name, $city)", ZED),
        ("INSERT INTO customers (id, full_name, city) VALUES (?1, ?2, ?3)", (9, "Zed", "Rome")),
        ("INSERT INTO customers (id, full_name, city) VALUES (:id, :name, :city)", ZED),
        ("INSERT INTO customers (id, full_name, city) VALUES (@id, @name, @city)", ZED),
    ],
)
def test_innocent_writes_with_parameters_run(sql: str, params: Any) -> None:
    raw = _customers()
    conn = _gov(raw)
    assert _bound(conn, sql, params) == 1
    assert _bound(conn, "UPDATE customers SET city = $c WHERE id = $id", {"c": "Lima", "id": 9}) == 1
    assert _bound(conn, "UPDATE customers SET city = ?2 WHERE id = ?1", (9, "Oslo")) == 1
    assert raw.execute("SELECT id, full_name, city FROM customers WHERE id = 9").fetchall() == [(9, "Zed", "Oslo")]
    assert _bound(conn, "DELETE FROM customers WHERE id = $id", {"id": 9}) == 1


def test_a_parameter_beside_a_masked_column_is_still_a_predicate_on_it() -> None:
    """The parameter changes nothing for the masked column: ``ssn LIKE $p`` decides rows by the SSN. Raw: one row
    for the right guess, none for the wrong one; governed: refused alike."""
    sql, params = "SELECT id FROM customers WHERE ssn LIKE $p", {"p": "536%"}
    assert [_bound(_customers(s), sql, params) for s in ("536-22-8726", "100-99-0000")] == [[(1,)], []]
    seen = [_bound(_gov(_customers(s)), sql, params) for s in ("536-22-8726", "100-99-0000")]
    assert seen[0] == seen[1] and "masked-column-predicate" in str(seen[0]), seen
    seen = [_bound(_gov(_customers(s)), "SELECT id FROM customers WHERE ssn = ?1", ("536-22-8726",))
            for s in ("536-22-8726", "100-99-0000")]
    assert seen[0] == seen[1] and "masked-column-predicate" in str(seen[0]), seen


@pytest.mark.parametrize(("sql", "params"), TCL_PARAMETERS)
def test_tcl_parameters_stay_refused(sql: str, params: dict[str, Any]) -> None:
    """Decision 0279 holds: Tcl's spellings (``$a(...)``, ``@a::b``, ``#a``) are refused unanalysed."""
    seen = _bound(_gov(_customers()), sql, params)
    assert str(seen).startswith("refused: ") and "one parameter" in str(seen), seen


def test_a_numbered_parameter_in_a_limit_the_order_guard_edits() -> None:
    """The order guard writes ``ORDER BY`` into the text before ``LIMIT ?1``: the spliced text parses back with the
    numbered parameter as one token."""
    raw = _customers()
    raw.execute("CREATE INDEX c_name ON customers (full_name, id)")
    seen = _bound(_gov(raw), "SELECT id, full_name FROM customers GROUP BY id, full_name LIMIT ?1", (2,))
    assert seen == [(1, "[PERSON_NAME]"), (2, "[PERSON_NAME]")], seen


def test_duckdb_numbered_parameters_run() -> None:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, full_name VARCHAR, city VARCHAR)")
    raw.execute("INSERT INTO c VALUES (1, 'Alice Smith', 'Paris'), (2, 'Bob Jones', 'Lyon')")
    conn = _gov(raw)
    assert _bound(conn, "SELECT city, ?2 FROM c WHERE id = ?1", [2, "x"]) == [("Lyon", "x")]
    assert _bound(conn, "SELECT full_name FROM c WHERE id = $1", [1]) == [("[PERSON_NAME]",)]


# -- 2. SQLite full-text search ----------------------------------------------------------------------------------
OWNERS = ("alice@example.com", "zed@example.com")  # the guess below is "alice": right for the first


def _docs(owner: str, module: str = "fts5", governed: bool = True) -> Any:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute(f"CREATE VIRTUAL TABLE docs USING {module}(title, body, owner_email)")
    raw.executemany(
        "INSERT INTO docs VALUES (?, ?, ?)",
        [("foo report", "quarterly numbers", owner), ("bar notes", "foo things", "bob@example.org"),
         ("baz", "nothing", "carol@example.net")],
    )
    raw.execute(f"CREATE VIRTUAL TABLE pub USING {module}(title, body)")
    raw.executemany("INSERT INTO pub VALUES (?, ?)", [("foo report", "numbers"), ("bar", "foo things")])
    return _gov(raw) if governed else raw


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("SELECT rowid, title FROM docs WHERE docs MATCH 'title: foo'", [(1, "foo report")]),
        ("SELECT rowid, title FROM docs WHERE docs MATCH 'title:foo'", [(1, "foo report")]),
        ("SELECT rowid FROM docs WHERE docs MATCH '{title body}: foo' ORDER BY rowid", [(1,), (2,)]),
        ("SELECT rowid FROM docs WHERE docs MATCH '- owner_email : foo' ORDER BY rowid", [(1,), (2,)]),
        ("SELECT rowid FROM docs WHERE docs MATCH 'title: (foo OR baz) AND body: \"quarterly numbers\"'", [(1,)]),
        ("SELECT rowid FROM docs WHERE docs MATCH 'title: NEAR(foo report, 2)'", [(1,)]),
        ("SELECT rowid FROM docs WHERE docs MATCH 'title: fo*'", [(1,)]),
        ("SELECT rowid, owner_email FROM docs('title: foo')", [(1, "a***@example.com")]),
        ("SELECT rowid FROM docs WHERE title MATCH 'foo'", [(1,)]),
        # FTS5 intersects the left column with the query's filter: nothing of owner_email is read
        ("SELECT rowid FROM docs WHERE title MATCH 'owner_email: alice'", []),
        ("SELECT rowid FROM pub WHERE pub MATCH 'foo' ORDER BY rowid", [(1,), (2,)]),
    ],
)
def test_fts5_column_filters_over_innocent_columns_run(sql: str, rows: list[Any]) -> None:
    """``docs MATCH 'title: foo'`` was refused ("masked column(s) docs"): the whole table's text decided. Its rows
    are decided by ``title`` alone; they are the database's, for either owner."""
    seen = [_bound(_docs(o), sql) for o in OWNERS]
    assert seen[0] == rows, seen
    assert [[r[:1] for r in s] for s in seen] == [[r[:1] for r in _bound(_docs(o, governed=False), sql)]
                                                  for o in OWNERS]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT rowid FROM docs WHERE docs MATCH 'owner_email: alice'",
        "SELECT rowid FROM docs WHERE docs MATCH '{title owner_email}: alice'",
        "SELECT rowid FROM docs WHERE docs MATCH 'alice'",  # every column
        "SELECT rowid FROM docs WHERE docs MATCH 'title: foo alice'",  # the filter binds to ``foo`` only
        "SELECT rowid FROM docs WHERE docs MATCH 'title: baz OR alice'",
        "SELECT rowid FROM docs WHERE docs MATCH '\"owner_email\": alice'",
        "SELECT rowid FROM docs WHERE docs MATCH '- title : alice'",
        "SELECT rowid FROM docs('owner_email: alice')",
    ],
)
def test_fts5_queries_that_reach_a_masked_column_stay_refused(sql: str) -> None:
    raw = [_bound(_docs(o, governed=False), sql) for o in OWNERS]
    assert raw[0] != raw[1], raw  # the oracle: alice's document comes back only when the guess is right
    seen = [_bound(_docs(o), sql) for o in OWNERS]
    assert seen[0] == seen[1] and "masked-column-predicate" in str(seen[0]), seen


def test_an_fts5_query_bound_as_a_parameter_stays_refused() -> None:
    sql = "SELECT rowid FROM docs WHERE docs MATCH ?"
    assert [_bound(_docs(o, governed=False), sql, ("owner_email: alice",)) for o in OWNERS] == [[(1,)], []]
    seen = [_bound(_docs(o), sql, ("owner_email: alice",)) for o in OWNERS]
    assert seen[0] == seen[1] and "masked-column-predicate" in str(seen[0]), seen


def test_fts5_rank_reads_every_column() -> None:
    """bm25 weighs a hit by the whole row's length: ``ORDER BY rank`` of a title-only query follows the length of
    the masked e-mail (raw), so it stays refused."""
    rows = [("foo report", "numbers", "alice@example.com"), ("foo bar", "things", "bob@example.org")]
    sql = "SELECT rowid FROM docs WHERE docs MATCH 'title: foo' ORDER BY rank"
    seen_raw, seen_gov = [], []
    for owner in ("alice@example.com", "zedzedzed.quux.long.address@example.com"):
        raw = sqlite3.connect(":memory:", isolation_level=None)
        raw.execute("CREATE VIRTUAL TABLE docs USING fts5(title, body, owner_email)")
        raw.executemany("INSERT INTO docs VALUES (?, ?, ?)", [(rows[0][0], rows[0][1], owner), rows[1]])
        seen_raw.append(_bound(raw, sql))
        seen_gov.append(_bound(_gov(raw), sql))
    assert seen_raw[0] != seen_raw[1], seen_raw
    assert seen_gov[0] == seen_gov[1] and "masked-column-predicate" in str(seen_gov[0]), seen_gov


@pytest.mark.parametrize("module", ["fts3", "fts4"])
def test_an_fts4_column_match_reads_every_column(module: str) -> None:
    """Found in this round: FTS3/FTS4 let a query's column prefix override the left operand, so ``title MATCH
    'owner_email:alice'`` searched the masked e-mail and ran (the document came back for the right guess only). A
    column MATCH on such a table now reads the whole row; over a table with no masked column it still runs."""
    sql = "SELECT rowid FROM docs WHERE title MATCH 'owner_email:alice'"
    assert [_bound(_docs(o, module, governed=False), sql) for o in OWNERS] == [[(1,)], []]
    seen = [_bound(_docs(o, module), sql) for o in OWNERS]
    assert seen[0] == seen[1] and "masked-column-predicate" in str(seen[0]), seen
    assert _bound(_docs(OWNERS[0], module), "SELECT rowid FROM pub WHERE title MATCH 'foo'") == [(1,)]
    assert _bound(_docs(OWNERS[0], module), "SELECT rowid FROM pub WHERE pub MATCH 'title:foo'") == [(1,)]


# -- 3. COALESCE over a masked column --------------------------------------------------------------------------
def test_coalesce_masks_its_own_column_only() -> None:
    """``COALESCE(email, 'n/a')`` comes back as the label in every row (a NULL e-mail's 'n/a' too: a cell equal to
    the literal may be a stored value equal to it, and showing it would check a guess); the id and city beside it,
    and the rows, are the database's. The NULL test says 'n/a' exactly (decision 0209)."""
    raw = _customers()
    conn = _gov(raw)
    sql = "SELECT id, COALESCE(email, 'n/a') AS e, IFNULL(email, 'n/a') AS f, city FROM customers ORDER BY id"
    assert _bound(conn, sql) == [(1, "[EMAIL]", "[EMAIL]", "Paris"), (2, "[EMAIL]", "[EMAIL]", "Lyon"),
                                 (3, "[EMAIL]", "[EMAIL]", "Nice")]
    sql = "SELECT id, CASE WHEN email IS NULL THEN 'n/a' END AS e, email, city FROM customers ORDER BY id"
    assert _bound(conn, sql) == [(1, None, "a***@example.com", "Paris"), (2, "n/a", None, "Lyon"),
                                 (3, None, "c***@example.net", "Nice")]


def test_coalesce_with_a_guess_tells_nothing() -> None:
    """Were the literal shown, ``COALESCE(ssn, '<guess>')`` would show it in clear exactly where the stored SSN is
    the guess (beside the masked SSNs of the others): right and wrong guesses come back alike."""
    sql = "SELECT id, COALESCE(ssn, '536-22-8726') FROM customers ORDER BY id"
    seen = [_bound(_gov(_customers(s)), sql) for s in ("536-22-8726", "100-99-0000")]
    assert seen[0] == seen[1] and "536-22" not in repr(seen), seen


# -- 4. UNIQUE NOT NULL keys on the four databases -----------------------------------------------------------------
@pytest.fixture(params=["sqlite", "duckdb", "postgres", "mysql"])
def db(request: pytest.FixtureRequest, unique: str) -> Iterator[tuple[str, Any, Callable[[str], None], str]]:
    """(kind, raw connection, execute-on-raw, table prefix); the tables are dropped afterwards."""
    kind = request.param
    if kind == "sqlite":
        raw: Any = sqlite3.connect(":memory:", isolation_level=None)
    elif kind == "duckdb":
        raw = pytest.importorskip("duckdb").connect()
    elif kind == "postgres":
        import psycopg

        raw = psycopg.connect(request.getfixturevalue("pg_dsn"), autocommit=True)
    else:
        import pymysql

        raw = pymysql.connect(autocommit=True, **request.getfixturevalue("mysql_kw"))
    prefix = f"overrefuse_{unique}"

    def run(sql: str) -> None:
        raw.cursor().execute(sql)

    yield kind, raw, run, prefix
    for t in ("o", "c", "k", "n", "w"):
        with contextlib.suppress(Exception):
            run(f"DROP TABLE IF EXISTS {prefix}_{t}")
    raw.close()


NAMES = ["Bob Jones", "Carla Mendez", "David Okafor", "Eva Novak", "Frank Miller", "Gina Ross"]


def _keyed(run: Callable[[str], None], p: str) -> None:
    run(f"CREATE TABLE {p}_k (code VARCHAR(20) NOT NULL UNIQUE, full_name VARCHAR(60), city VARCHAR(20))")
    run(f"CREATE TABLE {p}_o (id INTEGER PRIMARY KEY, code VARCHAR(20), total DECIMAL(8, 2))")
    run(f"INSERT INTO {p}_k VALUES " + ", ".join(f"('k{i:02d}', '{NAMES[i % 6]} {i}', 'Paris')" for i in range(12)))
    run(f"INSERT INTO {p}_o VALUES " + ", ".join(f"({i}, 'k{i % 6:02d}', {i}.50)" for i in range(18)))


def test_grouped_beside_a_unique_not_null_key_runs(db: tuple[str, Any, Any, str]) -> None:
    """``GROUP BY k.code, k.full_name`` where ``code`` is UNIQUE NOT NULL (no primary key): every group is one
    row of the table, as beside a primary key (0283). Counts and sums are the database's, ties in key order."""
    _kind, raw, run, p = db
    _keyed(run, p)
    conn = _gov(raw)
    sql = (f"SELECT k.code, k.full_name, count(o.id) AS n, sum(o.total) AS s FROM {p}_k k JOIN {p}_o o "
           f"ON o.code = k.code GROUP BY k.code, k.full_name ORDER BY n DESC LIMIT 3")
    seen = observe(conn, sql)
    assert not isinstance(seen, str), seen
    assert [(r[0], r[1], r[2], float(r[3])) for r in seen[1]] == [
        ("k00", "[PERSON_NAME]", 3, 19.5), ("k01", "[PERSON_NAME]", 3, 22.5), ("k02", "[PERSON_NAME]", 3, 25.5)]
    seen = observe(conn, f"SELECT DISTINCT k.code, k.full_name FROM {p}_k k JOIN {p}_o o ON o.code = k.code")
    assert not isinstance(seen, str) and [r[0] for r in seen[1]] == [f"k{i:02d}" for i in range(6)], seen
    assert "Bob" not in repr(seen)


def test_a_nullable_unique_column_is_no_key(db: tuple[str, Any, Any, str]) -> None:
    """UNIQUE lets NULLs repeat and GROUP BY puts them together: two NULL codes are split by their names (3 groups
    for 2 codes, raw). Without NOT NULL the column is no key."""
    _kind, raw, run, p = db
    run(f"CREATE TABLE {p}_n (code VARCHAR(20) UNIQUE, full_name VARCHAR(60))")
    run(f"INSERT INTO {p}_n VALUES (NULL, 'Alice Smith'), (NULL, 'Bob Jones'), ('k1', 'Carla Mendez')")
    sql = f"SELECT count(*) FROM (SELECT code FROM {p}_n GROUP BY code, full_name) t"
    assert observe(raw, sql)[1] == [(3,)]
    seen = observe(_gov(raw), sql)
    assert isinstance(seen, str) and "masked-column-predicate" in seen, seen


def test_sqlite_group_order_follows_the_key_not_the_name() -> None:
    """SQLite groups by walking an index on (full_name, code): the raw order puts the secret's row first or last by
    its name; governed, the groups come back by code."""
    sql = "SELECT code, full_name FROM k GROUP BY code, full_name LIMIT 4"
    seen: dict[bool, list[Any]] = {True: [], False: []}
    for secret in ("Aaron Kim", "Zed Quux"):
        for governed in (False, True):
            raw = sqlite3.connect(":memory:", isolation_level=None)
            raw.execute("CREATE TABLE k (code TEXT NOT NULL UNIQUE, full_name TEXT, city TEXT)")
            raw.execute("CREATE INDEX k_name ON k (full_name, code)")
            raw.executemany("INSERT INTO k VALUES (?, ?, 'Paris')",
                            [(f"k{i:02d}", secret if i == 7 else f"{NAMES[i % 6]} {i}") for i in range(12)])
            raw.execute("ANALYZE")
            seen[governed].append(observe(_gov(raw) if governed else raw, sql))
    assert seen[False][0] != seen[False][1], seen[False]
    assert seen[True][0] == seen[True][1], seen[True]
    assert [r[0] for r in seen[True][0][1]] == ["k00", "k01", "k02", "k03"], seen[True]


def test_sqlite_unique_keys_that_compare_otherwise_are_none() -> None:
    """A unique index that keeps apart what GROUP BY merges (a NOCASE column under a BINARY unique index: ``a1``
    and ``A1`` are two rows, one group split by the names), a partial unique index, or one over an expression, is no
    key; a whole unique index over NOT NULL columns is one."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE w (code TEXT COLLATE NOCASE NOT NULL, full_name TEXT, UNIQUE (code COLLATE BINARY))")
    raw.executemany("INSERT INTO w VALUES (?, ?)", [("a1", "Alice Smith"), ("A1", "Bob Jones")])
    sql = "SELECT count(*) FROM (SELECT code FROM w GROUP BY code, full_name) t"
    assert observe(raw, sql)[1] == [(2,)]  # one code under NOCASE, split in two by the names
    raw.execute("CREATE TABLE pa (code TEXT NOT NULL, full_name TEXT)")
    raw.execute("CREATE UNIQUE INDEX pa_code ON pa (code) WHERE code <> 'x'")
    raw.execute("CREATE TABLE ex (code TEXT NOT NULL, full_name TEXT)")
    raw.execute("CREATE UNIQUE INDEX ex_code ON ex (lower(code))")
    raw.execute("CREATE TABLE ok (code TEXT NOT NULL, full_name TEXT)")
    raw.execute("CREATE UNIQUE INDEX ok_code ON ok (code)")
    raw.execute("INSERT INTO ok VALUES ('b', 'Alice Smith'), ('a', 'Bob Jones')")
    conn = _gov(raw)
    for table in ("w", "pa", "ex"):
        seen = observe(conn, f"SELECT count(*) FROM (SELECT code FROM {table} GROUP BY code, full_name) t")
        assert isinstance(seen, str) and "masked-column-predicate" in seen, (table, seen)
    assert observe(conn, "SELECT code, full_name FROM ok GROUP BY code, full_name") == (
        ["code", "full_name"], [("a", "[PERSON_NAME]"), ("b", "[PERSON_NAME]")])


def test_postgresql_unique_keys_that_may_repeat_are_none(pg_conn: Any, unique: str) -> None:
    """A DEFERRABLE UNIQUE constraint holds only at commit (a second row of one code fits in a transaction), a
    unique index may be partial or compare under another collation: only an immediate UNIQUE constraint over NOT
    NULL columns is a key."""
    p = f"overrefuse_{unique}"
    run = pg_conn.cursor().execute
    try:
        run(f"CREATE TABLE {p}_d (code text NOT NULL UNIQUE DEFERRABLE INITIALLY DEFERRED, full_name text)")
        run(f"CREATE TABLE {p}_i (code text NOT NULL, full_name text)")
        run(f"CREATE UNIQUE INDEX {p}_i_code ON {p}_i (code) WHERE code <> 'x'")
        run(f"CREATE TABLE {p}_u (code text NOT NULL, full_name text, CONSTRAINT {p}_u_code UNIQUE (code))")
        run(f"INSERT INTO {p}_u VALUES ('b', 'Alice Smith'), ('a', 'Bob Jones')")
        conn = _gov(pg_conn)
        for t in ("d", "i"):
            seen = observe(conn, f"SELECT count(*) FROM (SELECT code FROM {p}_{t} GROUP BY code, full_name) t")
            assert isinstance(seen, str) and "masked-column-predicate" in seen, (t, seen)
        assert observe(conn, f"SELECT code, full_name FROM {p}_u GROUP BY code, full_name") == (
            ["code", "full_name"], [("a", "[PERSON_NAME]"), ("b", "[PERSON_NAME]")])
        # the oracle a deferrable key leaves open: inside a transaction one code holds two names
        pg_conn.autocommit = False
        run(f"INSERT INTO {p}_d VALUES ('k', 'Alice Smith'), ('k', 'Bob Jones')")
        assert observe(pg_conn, f"SELECT count(*) FROM (SELECT code FROM {p}_d GROUP BY code, full_name) t")[1] == [
            (2,)]
        pg_conn.rollback()
    finally:
        pg_conn.rollback()
        pg_conn.autocommit = True
        for t in ("d", "i", "u"):
            run(f"DROP TABLE IF EXISTS {p}_{t}")


# -- 5. an ordinary workload over customers and orders ---------------------------------------------------------
PII = {"full_name", "email", "phone", "ssn"}
_PEOPLE = ["Alice Smith", "Bob Jones", "Carol White", "Dan Brown", "Eve Adams", "Frank Miller", "Grace Hall",
           "Hank Green"]
_SSNS = ["536-22-8726", "219-45-1234", "078-05-1120", "123-45-6789", "987-65-4321", "321-54-9876", "234-56-7890",
         "345-67-8901"]
_CITIES = ["Paris", "Lyon", "Berlin", "London", "Paris", "Madrid", "Lyon", "Paris"]


def _shop(run: Callable[[str], None], p: str) -> None:
    run(f"CREATE TABLE {p}_c (id INTEGER PRIMARY KEY, full_name VARCHAR(60), email VARCHAR(80), phone VARCHAR(30), "
        "ssn VARCHAR(11), city VARCHAR(30), country VARCHAR(2), tier VARCHAR(10), created_at DATE)")
    run(f"CREATE TABLE {p}_o (id INTEGER PRIMARY KEY, customer_id INTEGER, total DECIMAL(10, 2), status VARCHAR(10), "
        "created_at DATE)")
    rows = []
    for i in range(8):
        email = "NULL" if i == 3 else f"'{_PEOPLE[i].split()[0].lower()}@example.com'"
        phone = "NULL" if i == 4 else f"'+1 415 555 01{i:02d}'"
        tier = "NULL" if i == 6 else f"'{['gold', 'silver', 'bronze'][i % 3]}'"
        country = "FR" if _CITIES[i] in ("Paris", "Lyon") else "XX"
        rows.append(f"({i + 1}, '{_PEOPLE[i]}', {email}, {phone}, '{_SSNS[i]}', '{_CITIES[i]}', '{country}', {tier}, "
                    f"'2024-0{i + 1}-15')")
    run(f"INSERT INTO {p}_c VALUES " + ", ".join(rows))
    orders = [f"({j + 1}, {j % 7 + 1}, {(j * 37) % 250 + 10}.50, '{['paid', 'refunded', 'pending'][j % 3]}', "
              f"'2024-{j % 12 + 1:02d}-0{j % 9 + 1}')" for j in range(20)]
    run(f"INSERT INTO {p}_o VALUES " + ", ".join(orders))


WORKLOAD = [
    "SELECT id, full_name, email FROM {C} ORDER BY id LIMIT 3 OFFSET 2",
    "SELECT city, count(*) AS n FROM {C} GROUP BY city ORDER BY n DESC, city",
    "SELECT c.city, sum(o.total) AS spent FROM {C} c JOIN {O} o ON o.customer_id = c.id GROUP BY c.city "
    "ORDER BY spent DESC",
    "SELECT o.id, o.total, c.full_name FROM {O} o JOIN {C} c ON c.id = o.customer_id WHERE o.status = 'paid' "
    "ORDER BY o.id LIMIT 5",
    "SELECT id, city, row_number() OVER (PARTITION BY city ORDER BY id) AS rn FROM {C} ORDER BY id",
    "SELECT id, customer_id, total, sum(total) OVER (PARTITION BY customer_id ORDER BY id) AS running FROM {O} "
    "ORDER BY id",
    "WITH spend AS (SELECT customer_id, sum(total) AS s FROM {O} GROUP BY customer_id) SELECT c.id, c.full_name, "
    "s.s FROM {C} c JOIN spend s ON s.customer_id = c.id ORDER BY s.s DESC, c.id LIMIT 5",
    "SELECT id, full_name FROM {C} WHERE id IN (SELECT customer_id FROM {O} WHERE total > 100) ORDER BY id",
    "SELECT id, email, city FROM {C} WHERE city LIKE 'Par%' ORDER BY id",
    "SELECT c.tier, avg(o.total) AS a FROM {O} o JOIN {C} c ON c.id = o.customer_id GROUP BY c.tier ORDER BY c.tier",
    "SELECT c.id FROM {C} c WHERE EXISTS (SELECT 1 FROM {O} o WHERE o.customer_id = c.id AND o.status = 'refunded') "
    "ORDER BY c.id",
    "SELECT c.id, c.email FROM {C} c LEFT JOIN {O} o ON o.customer_id = c.id WHERE o.id IS NULL ORDER BY c.id",
    "SELECT count(DISTINCT customer_id) AS buyers FROM {O}",
    "SELECT id, CASE WHEN total > 100 THEN 'big' ELSE 'small' END AS size FROM {O} ORDER BY id",
    "SELECT status, min(created_at) AS first_at, max(created_at) AS last_at FROM {O} GROUP BY status ORDER BY status",
    "SELECT customer_id, count(*) AS n FROM {O} GROUP BY customer_id HAVING count(*) > 2 ORDER BY customer_id",
    "SELECT id, customer_id, total, rank() OVER (ORDER BY total DESC, id) AS r FROM {O} ORDER BY id",
    "SELECT id, full_name FROM {C} WHERE id > 3 ORDER BY id LIMIT 3",
    "SELECT city FROM {C} UNION SELECT 'Remote' ORDER BY 1",
    "SELECT id, total, lag(total) OVER (ORDER BY id) AS prev FROM {O} ORDER BY id",
    "SELECT c.country, count(DISTINCT c.id) AS customers, sum(o.total) AS spent FROM {C} c JOIN {O} o "
    "ON o.customer_id = c.id GROUP BY c.country ORDER BY c.country",
    "SELECT * FROM {C} WHERE id = 3",
    "SELECT c.id, c.full_name, c.email, count(o.id) AS n FROM {C} c LEFT JOIN {O} o ON o.customer_id = c.id "
    "GROUP BY c.id, c.full_name, c.email ORDER BY n DESC, c.id LIMIT 4",
    "SELECT id, COALESCE(tier, 'none') AS tier FROM {C} ORDER BY id",
    "SELECT status, round(100.0 * count(*) / (SELECT count(*) FROM {O}), 1) AS pct FROM {O} GROUP BY status "
    "ORDER BY status",
    "SELECT o.* FROM {O} o WHERE o.customer_id = (SELECT id FROM {C} WHERE city = 'Berlin') ORDER BY o.id",
    "SELECT c.id, c.full_name, max(o.created_at) AS last_order FROM {C} c JOIN {O} o ON o.customer_id = c.id "
    "GROUP BY c.id, c.full_name ORDER BY last_order DESC, c.id LIMIT 3",
    "SELECT DISTINCT city, country FROM {C} ORDER BY city",
    "SELECT id, full_name, email FROM {C} WHERE tier = 'gold' AND city IN ('Paris', 'Lyon') "
    "ORDER BY created_at DESC, id",
    "SELECT c.city, o.status, count(*) AS n FROM {C} c JOIN {O} o ON o.customer_id = c.id GROUP BY c.city, o.status "
    "ORDER BY c.city, o.status",
    "SELECT id, ntile(3) OVER (ORDER BY total, id) AS bucket FROM {O} ORDER BY id",
    "SELECT count(*) FROM {C} WHERE email IS NOT NULL",
    "SELECT id, full_name, email FROM {C} ORDER BY id DESC LIMIT 2",
    "SELECT customer_id, sum(total) AS s FROM {O} WHERE created_at >= '2024-03-01' GROUP BY customer_id "
    "ORDER BY s DESC, customer_id LIMIT 3",
    "SELECT c.id, (SELECT count(*) FROM {O} o WHERE o.customer_id = c.id) AS n FROM {C} c ORDER BY c.id",
    "SELECT full_name, city, count(*) OVER (PARTITION BY city) AS in_city FROM {C} ORDER BY id",
    "SELECT DISTINCT c.id, c.full_name FROM {C} c JOIN {O} o ON o.customer_id = c.id ORDER BY c.id",
    "SELECT c.full_name, o.total FROM {O} o JOIN {C} c ON c.id = o.customer_id ORDER BY o.total DESC, o.id LIMIT 3",
    "SELECT city, count(*) AS n FROM {C} WHERE created_at BETWEEN '2024-01-01' AND '2024-06-30' GROUP BY city "
    "ORDER BY city",
    "SELECT max(total) - min(total) AS spread FROM {O}",
    "SELECT c.id, c.email, o.status FROM {C} c JOIN {O} o ON o.customer_id = c.id WHERE o.total BETWEEN 50 AND 150 "
    "ORDER BY o.id",
    "SELECT id, upper(city) AS city_u, length(city) AS l, substr(city, 1, 3) AS s FROM {C} ORDER BY id",
    "SELECT c.*, o.total FROM {C} c JOIN {O} o ON o.customer_id = c.id WHERE o.id = 4",
    "SELECT id, full_name FROM {C} ORDER BY created_at DESC, id LIMIT 5",
    "SELECT tier, count(*) AS n, count(email) AS with_email FROM {C} GROUP BY tier ORDER BY tier",
    "SELECT o.status, avg(o.total) AS a FROM {O} o WHERE o.customer_id IN (SELECT id FROM {C} WHERE country = 'FR') "
    "GROUP BY o.status ORDER BY o.status",
    "WITH ranked AS (SELECT id, customer_id, total, row_number() OVER (PARTITION BY customer_id ORDER BY total DESC, "
    "id) AS rn FROM {O}) SELECT r.customer_id, c.full_name, r.total FROM ranked r JOIN {C} c ON c.id = r.customer_id "
    "WHERE r.rn = 1 ORDER BY r.customer_id",
    "SELECT id, full_name, email, phone FROM {C} WHERE id BETWEEN 2 AND 4 ORDER BY id",
]


def _norm(v: Any) -> Any:
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, datetime.datetime):
        return v.date().isoformat()
    if isinstance(v, datetime.date):
        return v.isoformat()
    return v


def _fetch(conn: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cur = conn.cursor()
    cur.execute(sql)
    return [d[0].lower() for d in cur.description], [tuple(_norm(x) for x in r) for r in cur.fetchall()]


def test_an_ordinary_workload_runs_with_the_databases_answers(db: tuple[str, Any, Any, str]) -> None:
    """48 statements an application or analyst sends (joins, grouping and windows over innocent columns, CTEs,
    subqueries, LIKE, pagination): none refused, every innocent cell the database's, every PII cell masked."""
    kind, raw, run, p = db
    _shop(run, p)
    conn = _gov(raw)
    problems = []
    for template in WORKLOAD:
        sql = template.format(C=f"{p}_c", O=f"{p}_o")
        names, want = _fetch(raw, sql)
        try:
            _names, got = _fetch(conn, sql)
        except Exception as e:
            problems.append((sql, f"{type(e).__name__}: {str(e)[:160]}"))
            continue
        if len(got) != len(want):
            problems.append((sql, f"{len(got)} rows, not {len(want)}"))
            continue
        for w, g in zip(want, got, strict=True):
            for name, a, b in zip(names, w, g, strict=True):
                if name not in PII and a != b:
                    problems.append((sql, f"over-masked {name}: {b!r} for {a!r}"))
                elif name in PII and a is not None and a == b:
                    problems.append((sql, f"leaked {name}"))
    assert problems == [], (kind, problems)


def test_fts_readings_through_aiosqlite(tmp_path: Any) -> None:
    """The full-text module is read by the async warm-up too: the FTS5 filter runs, the FTS4 column MATCH oracle
    is refused alike."""
    aiosqlite = pytest.importorskip("aiosqlite")
    import asyncio

    async def seen(owner: str, module: str, sql: str) -> Any:
        path = str(tmp_path / f"{module}-{owner[:3]}.db")
        raw = sqlite3.connect(path)
        raw.execute(f"CREATE VIRTUAL TABLE docs USING {module}(title, body, owner_email)")
        raw.executemany("INSERT INTO docs VALUES (?, ?, ?)",
                        [("foo report", "numbers", owner), ("bar", "foo things", "bob@example.org")])
        raw.commit()
        raw.close()
        conn = _gov(await aiosqlite.connect(path))
        try:
            cur = await conn.execute(sql)
            return [tuple(r) for r in await cur.fetchall()]
        except governed_db.GuardrailViolation as e:
            return f"refused: {e}"
        finally:
            await conn.close()

    async def go() -> None:
        assert [await seen(o, "fts5", "SELECT rowid FROM docs WHERE docs MATCH 'title: foo'") for o in OWNERS] == [
            [(1,)], [(1,)]]
        leak = [await seen(o, "fts4", "SELECT rowid FROM docs WHERE title MATCH 'owner_email:alice'") for o in OWNERS]
        assert leak[0] == leak[1] and "masked-column-predicate" in str(leak[0]), leak

    asyncio.run(go())
