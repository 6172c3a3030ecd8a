"""Red-team round 20 on views and what masking keeps of them (decisions 0392, 0393), on SQLite, DuckDB, PostgreSQL
and MariaDB.

The agent (production, no unmask grant) reads what the application made; the application (a raw connection, as a
migration on another process would) changes it between two of the agent's statements on one long-lived governed
connection. The copies differ only in row 1's masked values (ALICE's SSN starts with 5, ANNA's ``100-99-0000`` is
recognised by no scan). Every read must answer alike over both copies, and no masked value may come back in clear:

* a view replaced (dropped and made again, ``CREATE OR REPLACE``, renamed away and another made under its name, a
  table replaced by a view) kept the definition and column classes masking first read: ``ssn AS code`` came back
  in clear under a column first read as ``city AS code``, and a new ``WHERE ssn LIKE '5%'`` picked the rows;
* a table and a view whose names differ only by case (PostgreSQL's quoted names, MariaDB's case-sensitive table
  names) shared one entry, the view read as the table;
* a view definition read that failed was taken for a table;
* PostgreSQL rules (``CREATE RULE``) and ``INSTEAD OF`` triggers ran on the stored SSN on the agent's writes;
* an application function (PostgreSQL SQL function, DuckDB macro and table macro, MariaDB stored function) reading
  the SSN decided a view's rows, or a statement's.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import time
from contextlib import closing
from typing import Any

import pytest

import governed_db
from governed_db.masking import engine, schema
from tests._redteam import govern
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, ANNA, OTHERS

CUSTOMERS = (
    "CREATE TABLE {p}_c (id INT PRIMARY KEY, full_name TEXT, email TEXT, ssn TEXT, phone TEXT, city TEXT, "
    "amount FLOAT)"
)
ORDERS = "CREATE TABLE {p}_o (id INT PRIMARY KEY, customer_id INT, amount FLOAT)"
ORDER_ROWS = [(10, 1, 12.0), (11, 2, 30.0), (12, 3, 18.0), (13, 5, 7.0)]
#: what the catalog comparison waits in these tests (the library's default is a second)
SETTLE = 0.3
#: ANNA's SSN, which no recogniser masks when it passes: it may come back only where a class says so
ANNA_SSN = ANNA[3]


def observe(conn: Any, sql: str) -> Any:
    """What the agent sees of one statement: rows, the row count of a write, or the refusal or error text."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        if cur.description:
            return [d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()]
        return "rowcount", cur.rowcount
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def _duck_observe(conn: Any, sql: str) -> Any:
    try:
        conn.execute(sql)
        return [d[0] for d in conn.description or ()], [tuple(r) for r in conn.fetchall()] if conn.description else []
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    except Exception as e:
        return f"{type(e).__name__}: {e}"


class _Copy:
    """One copy of the application's database: ``app`` runs the application's statements (raw), ``conn`` is the
    agent's governed connection, made once and kept (a pooled connection)."""

    def __init__(self, db: str, p: str) -> None:
        self.db, self.p = db, p
        if db == "sqlite":
            path = os.path.join(tempfile.mkdtemp(), "app.db")
            self.app: Any = sqlite3.connect(path, isolation_level=None)
            raw: Any = sqlite3.connect(path, isolation_level=None)
        elif db == "duckdb":
            duckdb = pytest.importorskip("duckdb")
            raw = duckdb.connect(":memory:")
            self.app = raw.cursor()  # another connection to the same database
        elif db == "postgres":
            from tests._redteam import pg_connect

            self.app, raw = pg_connect("psycopg"), pg_connect("psycopg")
        else:
            import pymysql

            from tests.conftest import MYSQL_KW

            self.app = pymysql.connect(autocommit=True, **MYSQL_KW)
            raw = pymysql.connect(autocommit=True, **MYSQL_KW)
        self.conn = govern(raw, ATTACKER)

    def run(self, sql: str) -> None:
        with closing(self.app.cursor()) as cur:
            cur.execute(sql.format(p=self.p))

    def insert(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        mark = "?" if self.db in ("sqlite", "duckdb") else "%s"
        with closing(self.app.cursor()) as cur:
            cur.executemany(f"INSERT INTO {table.format(p=self.p)} VALUES ({', '.join([mark] * len(rows[0]))})",
                            [list(r) for r in rows])  # fmt: skip

    def see(self, sql: str) -> str:
        text = sql.format(p=self.p)
        seen = _duck_observe(self.conn, text) if self.db == "duckdb" else observe(self.conn, text)
        return repr(seen).replace(self.p, "P")

    def close(self, drops: tuple[str, ...]) -> None:
        try:
            if self.db in ("postgres", "mysql"):
                self.conn.close()
                for sql in drops:
                    self.run(sql)
                cascade = " CASCADE" if self.db == "postgres" else ""
                self.run(f"DROP TABLE IF EXISTS {{p}}_c, {{p}}_o{cascade}")
        finally:
            self.app.close()
            if self.db not in ("postgres", "mysql"):
                self.conn.close()


def _server(db: str, request: pytest.FixtureRequest) -> None:
    if db == "postgres":
        request.getfixturevalue("pg_dsn")
    elif db == "mysql":
        request.getfixturevalue("mysql_kw")


def _play(
    db: str, request: pytest.FixtureRequest, unique: str, setup: list[str], steps: list[str],
    drops: tuple[str, ...] = (),
) -> list[list[str]]:  # fmt: skip
    """Per copy (ALICE's, ANNA's), what the agent saw of each of its ``steps``; a step ``app: <sql>`` is the
    application's, ``wait`` lets the catalog comparison come due."""
    _server(db, request)
    out = []
    for v, secret in (("a", ALICE), ("b", ANNA)):
        copy = _Copy(db, f"gdb_r20v_{unique}_{v}")
        seen: list[str] = []
        try:
            copy.run(CUSTOMERS)
            copy.run(ORDERS)
            copy.insert("{p}_c", [secret, *OTHERS])
            copy.insert("{p}_o", ORDER_ROWS)
            for sql in setup:
                copy.run(sql)
            for step in steps:
                if step == "wait":
                    time.sleep(SETTLE)
                elif step.startswith("app: "):
                    copy.run(step[5:])
                else:
                    seen.append(copy.see(step))
        finally:
            copy.close(drops)
        out.append(seen)
    return out


def _alike_and_masked(seen: list[list[str]]) -> None:
    a, b = seen
    assert a == b, "\n".join(f"{x}\n  vs {y}" for x, y in zip(a, b, strict=True) if x != y)
    assert not any(ANNA_SSN in s or ALICE[3] in s for s in a + b), b


def _refused(seen: str) -> bool:
    return seen.lstrip("'\"").startswith("refused: ")


@pytest.fixture(autouse=True)
def _quick_catalog_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "CATALOG_SECONDS", SETTLE / 2, raising=False)


DBS = ["sqlite", "duckdb", "postgres", "mysql"]
VIEW_DROPS = ("DROP VIEW IF EXISTS {p}_v", "DROP VIEW IF EXISTS {p}_old")

# -- finding 1: a view replaced by the application keeps the definition masking read first (decision 0392) --------

#: the view the agent reads first: a key and a city under the name ``code``
FIRST = "CREATE VIEW {p}_v AS SELECT id, city AS code FROM {p}_c WHERE id = 1"
READ = "SELECT id, code FROM {p}_v ORDER BY id"
#: the application's replacements, each: the statements it runs
REPLACED = {
    "dropped-and-made-again": [
        "app: DROP VIEW {p}_v",
        "app: CREATE VIEW {p}_v AS SELECT id, ssn AS code FROM {p}_c WHERE id = 1",
    ],
    "filter-on-the-ssn": [
        "app: DROP VIEW {p}_v",
        "app: CREATE VIEW {p}_v AS SELECT id, city AS code FROM {p}_c WHERE ssn LIKE '5%'",
    ],
}
#: on the databases that have them
OR_REPLACE = ["app: CREATE OR REPLACE VIEW {p}_v AS SELECT id, ssn AS code FROM {p}_c WHERE id = 1"]
RENAMED = {
    "postgres": ["app: ALTER VIEW {p}_v RENAME TO {p}_old",
                 "app: CREATE VIEW {p}_v AS SELECT id, ssn AS code FROM {p}_c WHERE id = 1"],
    "mysql": ["app: RENAME TABLE {p}_v TO {p}_old",
              "app: CREATE VIEW {p}_v AS SELECT id, ssn AS code FROM {p}_c WHERE id = 1"],
    "duckdb": ["app: ALTER VIEW {p}_v RENAME TO {p}_old",
               "app: CREATE VIEW {p}_v AS SELECT id, ssn AS code FROM {p}_c WHERE id = 1"],
}  # fmt: skip


def _replacements(db: str) -> dict[str, list[str]]:
    found = dict(REPLACED)
    if db != "sqlite":
        found["create-or-replace"] = OR_REPLACE
    if db in RENAMED:
        found["renamed-away"] = RENAMED[db]
    return found


@pytest.mark.parametrize("db", DBS)
def test_a_view_the_application_replaces_is_read_again(db: str, request: pytest.FixtureRequest, unique: str) -> None:
    """After the application replaces a view the agent read, the agent's reads of it answer alike over both copies
    and return no SSN in clear (before: ANNA's ``100-99-0000`` came back under ``code``, and the new filter on
    the SSN picked row 1 over one copy only)."""
    for name, change in _replacements(db).items():
        seen = _play(db, request, f"{unique}{name[:3]}", [FIRST], [READ, "SELECT id FROM {p}_v", *change, "wait",
                                                                    READ, "SELECT id FROM {p}_v"], VIEW_DROPS)
        _alike_and_masked(seen)
        assert seen[0][0] == "(['id', 'code'], [(1, 'Paris')])", seen  # read exactly before the change


@pytest.mark.parametrize("db", DBS)
def test_a_table_the_application_replaces_by_a_view_is_judged_as_one(
    db: str, request: pytest.FixtureRequest, unique: str
) -> None:
    """A table read first, then dropped and made again as a view filtering on the SSN under the same name: judged by
    the view's definition (before: read as the table it was, the SSN picked the rows)."""
    setup = ["CREATE TABLE {p}_v (id INT, code TEXT)", "INSERT INTO {p}_v VALUES (1, 'Paris'), (2, 'Lyon')"]
    steps = ["SELECT id FROM {p}_v ORDER BY id", "app: DROP TABLE {p}_v",
             "app: CREATE VIEW {p}_v AS SELECT id, city AS code FROM {p}_c WHERE ssn LIKE '5%'", "wait",
             "SELECT id FROM {p}_v ORDER BY id"]  # fmt: skip
    seen = _play(db, request, unique, setup, steps, ("DROP VIEW IF EXISTS {p}_v", "DROP TABLE IF EXISTS {p}_v"))
    _alike_and_masked(seen)
    assert seen[0][0] == "(['id'], [(1,), (2,)])"


@pytest.mark.parametrize("db", DBS)
def test_an_unchanged_catalog_keeps_what_was_read(
    db: str, request: pytest.FixtureRequest, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Look-alike: when nothing changed, the comparison forgets nothing (no table is read again, no verdict lost),
    and views and tables keep answering exactly."""
    forgotten: list[int] = []
    real = engine.MaskingState.invalidate

    def invalidate(self: Any) -> None:
        forgotten.append(1)
        real(self)

    monkeypatch.setattr(engine.MaskingState, "invalidate", invalidate)
    setup = [FIRST, "CREATE VIEW {p}_lyon AS SELECT id, city FROM {p}_c WHERE city = 'Lyon'"]
    steps = [READ, "SELECT id, city FROM {p}_lyon ORDER BY id", "wait", READ, "SELECT id, amount FROM {p}_o ORDER BY id",
             "wait", "SELECT id, city FROM {p}_lyon ORDER BY id"]  # fmt: skip
    seen = _play(db, request, unique, setup, steps, (*VIEW_DROPS, "DROP VIEW IF EXISTS {p}_lyon"))
    _alike_and_masked(seen)
    assert seen[0][0] == seen[0][2] == "(['id', 'code'], [(1, 'Paris')])"
    assert seen[0][1] == seen[0][4] == "(['id', 'city'], [(2, 'Lyon'), (4, 'Lyon')])"
    assert not forgotten


def test_a_view_replaced_is_read_again_through_asyncpg(pg_dsn: str, unique: str) -> None:
    """The same through asyncpg, whose warm-up compares the catalog with await (before: the new filter on the SSN
    picked row 1 over one copy only)."""
    asyncpg = pytest.importorskip("asyncpg")
    import psycopg

    from tests.conftest import PG_DSN

    parts = dict(x.split("=", 1) for x in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"

    async def play(p: str) -> list[str]:
        gov = govern(await asyncpg.connect(url), ATTACKER)
        seen = []
        try:
            for sql in (READ, "app: DROP VIEW {p}_v",
                        "app: CREATE VIEW {p}_v AS SELECT id, city AS code FROM {p}_c WHERE ssn LIKE '5%'", "wait", READ,
                        "SELECT id FROM {p}_v"):
                if sql == "wait":
                    await asyncio.sleep(SETTLE)
                elif sql.startswith("app: "):
                    app.execute(sql[5:].format(p=p))
                else:
                    try:
                        seen.append(repr([tuple(r) for r in await gov.fetch(sql.format(p=p))]).replace(p, "P"))
                    except governed_db.GuardrailViolation as e:
                        seen.append(f"refused: {e}".replace(p, "P"))
        finally:
            await gov.close()
        return seen

    out = []
    for v, secret in (("a", ALICE), ("b", ANNA)):
        p = f"gdb_r20v_{unique}_{v}"
        with psycopg.connect(PG_DSN, autocommit=True) as app:
            app.execute(CUSTOMERS.format(p=p))
            with closing(app.cursor()) as cur:
                cur.executemany(f"INSERT INTO {p}_c VALUES (%s, %s, %s, %s, %s, %s, %s)", [secret, *OTHERS])
            app.execute(FIRST.format(p=p))
            try:
                out.append(asyncio.run(play(p)))
            finally:
                app.execute(f"DROP TABLE IF EXISTS {p}_c CASCADE")
    _alike_and_masked(out)


# -- finding 2: a table and a view named apart by case share one entry (decision 0393) ---------------------------

CASED = {
    "postgres": ('"{p}_V"', "DROP VIEW IF EXISTS \"{p}_V\""),
    "mysql": ("`{p}_V`", "DROP VIEW IF EXISTS `{p}_V`"),
}


@pytest.mark.parametrize("db", ["postgres", "mysql"])
def test_a_view_named_like_a_table_but_for_case_is_judged(db: str, request: pytest.FixtureRequest, unique: str) -> None:
    """``SELECT id FROM "V"`` after ``SELECT id FROM v`` (a table): the view, filtering on the SSN, is judged by its
    definition (before: read as the table, its rows picked by the SSN)."""
    view, drop = CASED[db]
    setup = ["CREATE TABLE {p}_v (id INT, city TEXT)", "INSERT INTO {p}_v VALUES (1, 'Paris'), (2, 'Lyon')",
             f"CREATE VIEW {view} AS SELECT id, city FROM {{p}}_c WHERE ssn LIKE '5%'"]  # fmt: skip
    steps = ["SELECT id FROM {p}_v ORDER BY id", f"SELECT id FROM {view} ORDER BY id",
             f"SELECT id, city FROM {view} ORDER BY id"]  # fmt: skip
    seen = _play(db, request, unique, setup, steps, (drop, "DROP TABLE IF EXISTS {p}_v"))
    _alike_and_masked(seen)
    assert seen[0][0] == "(['id'], [(1,), (2,)])"  # the table, read first, exactly


# -- finding 3: a view definition that cannot be read is no table (decision 0393) --------------------------------


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_a_view_whose_definition_read_fails_is_refused(
    db: str, request: pytest.FixtureRequest, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read of a view's definition fails (an error, not an empty answer): the view is refused, not read as a
    table (before: its filter on the SSN picked the rows); a table stays readable."""
    real_rows = schema._rows

    def failing(cur: Any, sql: str, params: Any = ()) -> Any:
        if "pg_get_viewdef" in sql and "pg_class c" in sql and "relkind IN ('v', 'm')" in sql and "WHERE c.oid" in sql:
            raise RuntimeError("the definition read failed")
        return real_rows(cur, sql, params)

    def failing_sqlite(cur: Any, db: str | None, name: str) -> Any:
        raise sqlite3.OperationalError("the definition read failed")

    monkeypatch.setattr(schema, "_rows", failing)
    monkeypatch.setattr(schema, "_sqlite_view_sql", failing_sqlite)
    setup = ["CREATE VIEW {p}_v AS SELECT id, city FROM {p}_c WHERE ssn LIKE '5%'"]
    seen = _play(db, request, unique, setup, ["SELECT id FROM {p}_v ORDER BY id"], ("DROP VIEW IF EXISTS {p}_v",))
    _alike_and_masked(seen)
    assert _refused(seen[0][0]), seen


# -- finding 4: PostgreSQL rules and INSTEAD OF triggers run on raw rows (decision 0393) --------------------------

PG_REWRITES = [
    "CREATE TABLE {p}_log (id INT)",
    "CREATE TABLE {p}_log2 (id INT)",
    "CREATE RULE {p}_r AS ON UPDATE TO {p}_c WHERE old.ssn LIKE '5%' DO INSTEAD NOTHING",
    "CREATE VIEW {p}_cv AS SELECT id, city FROM {p}_c",
    "CREATE RULE {p}_rv AS ON UPDATE TO {p}_cv DO INSTEAD UPDATE {p}_o SET amount = amount + 1 "
    "WHERE customer_id = old.id AND EXISTS (SELECT 1 FROM {p}_c WHERE id = old.id AND ssn LIKE '5%')",
    "CREATE VIEW {p}_tv AS SELECT id, city FROM {p}_c",
    "CREATE FUNCTION {p}_f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE {p}_o SET amount = 0 "
    "WHERE customer_id = OLD.id AND (SELECT ssn FROM {p}_c WHERE id = OLD.id) LIKE '5%'; "
    "IF FOUND THEN RETURN NEW; END IF; RETURN NULL; END $$",
    "CREATE TRIGGER {p}_t INSTEAD OF UPDATE ON {p}_tv FOR EACH ROW EXECUTE FUNCTION {p}_f()",
    "CREATE RULE {p}_ri AS ON INSERT TO {p}_log DO ALSO INSERT INTO {p}_log2 "
    "SELECT id FROM {p}_c WHERE id = new.id AND ssn LIKE '5%'",
    "CREATE VIEW {p}_dv AS SELECT id, city FROM {p}_c",
    "CREATE RULE {p}_rd AS ON DELETE TO {p}_dv DO INSTEAD DELETE FROM {p}_o "
    "WHERE customer_id = old.id AND (SELECT ssn FROM {p}_c WHERE id = old.id) LIKE '5%'",
]
#: look-alikes: rules and an INSTEAD OF trigger over clear columns and tables
PG_CLEAR_REWRITES = [
    "CREATE TABLE {p}_log (id INT)",
    "CREATE VIEW {p}_ov AS SELECT id, customer_id, amount FROM {p}_o",
    "CREATE RULE {p}_ro AS ON UPDATE TO {p}_ov DO INSTEAD UPDATE {p}_o SET amount = new.amount WHERE id = old.id",
    "CREATE RULE {p}_rc AS ON UPDATE TO {p}_c WHERE new.city = 'Nowhere' DO ALSO INSERT INTO {p}_log VALUES (new.id)",
    "CREATE FUNCTION {p}_g() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN UPDATE {p}_o SET amount = NEW.amount "
    "WHERE id = OLD.id; RETURN NEW; END $$",
    "CREATE VIEW {p}_gv AS SELECT id, amount FROM {p}_o",
    "CREATE TRIGGER {p}_tg INSTEAD OF UPDATE ON {p}_gv FOR EACH ROW EXECUTE FUNCTION {p}_g()",
]
PG_REWRITE_DROPS = ("DROP TABLE IF EXISTS {p}_c, {p}_o, {p}_log, {p}_log2 CASCADE",
                    "DROP FUNCTION IF EXISTS {p}_f()", "DROP FUNCTION IF EXISTS {p}_g()")  # fmt: skip
STATE = "SELECT c.id, c.city, o.amount FROM {p}_c c LEFT JOIN {p}_o o ON o.customer_id = c.id ORDER BY c.id, o.id"


def test_postgres_rules_and_instead_of_triggers_run_on_no_masked_value(
    request: pytest.FixtureRequest, unique: str
) -> None:
    """The agent's writes that fire a rule or an INSTEAD OF trigger reading the SSN are refused alike (before: the
    row counts, and the rows left, told the copies apart)."""
    steps = ["UPDATE {p}_c SET city = 'X' WHERE id = 1", STATE, "UPDATE {p}_cv SET city = 'Y' WHERE id = 1", STATE,
             "UPDATE {p}_tv SET city = 'Z' WHERE id = 1", STATE, "INSERT INTO {p}_log VALUES (1)",
             "SELECT count(*) FROM {p}_log2", "DELETE FROM {p}_dv WHERE id = 1", STATE]  # fmt: skip
    seen = _play("postgres", request, unique, PG_REWRITES, steps, PG_REWRITE_DROPS)
    _alike_and_masked(seen)
    for i in (0, 2, 4, 6, 8):
        assert _refused(seen[0][i]), seen[0][i]


def test_postgres_rule_and_trigger_look_alikes_run(request: pytest.FixtureRequest, unique: str) -> None:
    """Rules and INSTEAD OF triggers over clear columns and tables keep running, exactly as on a raw connection."""
    steps = ["UPDATE {p}_ov SET amount = 99 WHERE id = 10", "UPDATE {p}_gv SET amount = 98 WHERE id = 11",
             "UPDATE {p}_c SET city = 'Nowhere' WHERE id = 2", "SELECT id FROM {p}_log ORDER BY id",
             "SELECT id, amount FROM {p}_o ORDER BY id"]  # fmt: skip
    seen = _play("postgres", request, unique, PG_CLEAR_REWRITES, steps, PG_REWRITE_DROPS)
    _alike_and_masked(seen)
    assert seen[0] == ["('rowcount', 1)", "('rowcount', 1)", "('rowcount', 1)", "(['id'], [(2,)])",
                       "(['id', 'amount'], [(10, 99.0), (11, 98.0), (12, 18.0), (13, 7.0)])"]  # fmt: skip


# -- finding 5: an application function reading the SSN decides a view's rows (decision 0393) --------------------

FUNCTIONS = {
    "postgres": [
        "CREATE FUNCTION {p}_f(i int) RETURNS boolean LANGUAGE sql STABLE AS "
        "$$ SELECT ssn LIKE '5%' FROM {p}_c WHERE id = i $$",
        "CREATE FUNCTION {p}_tax(x float) RETURNS float LANGUAGE sql IMMUTABLE AS $$ SELECT x * 1.5 $$",
        "CREATE FUNCTION {p}_spent(i int) RETURNS float LANGUAGE sql STABLE AS "
        "$$ SELECT coalesce(sum(amount), 0) FROM {p}_o WHERE customer_id = i $$",
    ],
    "duckdb": [
        "CREATE MACRO {p}_f(i) AS (SELECT max(ssn LIKE '5%') FROM {p}_c c2 WHERE c2.id = i)",
        "CREATE MACRO {p}_tm() AS TABLE SELECT id, city FROM {p}_c WHERE ssn LIKE '5%'",
        "CREATE MACRO {p}_tax(x) AS x * 1.5",
        "CREATE MACRO {p}_spent(i) AS (SELECT coalesce(sum(amount), 0) FROM {p}_o o2 WHERE o2.customer_id = i)",
    ],
    "mysql": [
        "CREATE FUNCTION {p}_f(i INT) RETURNS INT READS SQL DATA "
        "RETURN (SELECT ssn LIKE '5%' FROM {p}_c WHERE id = i)",
        "CREATE FUNCTION {p}_tax(x DOUBLE) RETURNS DOUBLE DETERMINISTIC RETURN x * 1.5",
        "CREATE FUNCTION {p}_spent(i INT) RETURNS DOUBLE READS SQL DATA "
        "RETURN (SELECT coalesce(sum(amount), 0) FROM {p}_o WHERE customer_id = i)",
    ],
}
FUNCTION_VIEWS = [
    "CREATE VIEW {p}_vf AS SELECT c.id, c.city FROM {p}_c c WHERE {p}_f(c.id)",
    "CREATE VIEW {p}_vk AS SELECT c.id, {p}_f(c.id) AS k FROM {p}_c c",
    "CREATE VIEW {p}_vt AS SELECT c.id, {p}_tax(c.amount) AS taxed, {p}_spent(c.id) AS spent FROM {p}_c c",
]
FUNCTION_LEAKS = ["SELECT id FROM {p}_vf ORDER BY id", "SELECT c.id FROM {p}_c c WHERE {p}_f(c.id) ORDER BY c.id",
                  "SELECT id FROM {p}_vk WHERE k ORDER BY id"]  # fmt: skip
FUNCTION_LOOK_ALIKES = ["SELECT id, taxed, spent FROM {p}_vt ORDER BY id",
                        "SELECT c.id FROM {p}_c c WHERE {p}_spent(c.id) > 15 ORDER BY c.id"]  # fmt: skip
FUNCTION_DROPS = {
    "postgres": ("DROP TABLE IF EXISTS {p}_c, {p}_o CASCADE", "DROP FUNCTION IF EXISTS {p}_f(int)",
                 "DROP FUNCTION IF EXISTS {p}_tax(float)", "DROP FUNCTION IF EXISTS {p}_spent(int)"),
    "mysql": ("DROP VIEW IF EXISTS {p}_vf, {p}_vk, {p}_vt", "DROP FUNCTION IF EXISTS {p}_f",
              "DROP FUNCTION IF EXISTS {p}_tax", "DROP FUNCTION IF EXISTS {p}_spent"),
    "duckdb": (),
}  # fmt: skip


@pytest.mark.parametrize("db", ["postgres", "duckdb", "mysql"])
def test_an_application_function_reading_masked_values_decides_no_row(
    db: str, request: pytest.FixtureRequest, unique: str
) -> None:
    """A view (or a statement) calling the application's function that reads the SSN is refused alike (before:
    row 1 came back over one copy only); functions over clear values and tables answer exactly."""
    setup = [*FUNCTIONS[db], *FUNCTION_VIEWS]
    leaks = list(FUNCTION_LEAKS)
    if db == "duckdb":
        setup.append("CREATE VIEW {p}_vtm AS SELECT id FROM {p}_tm()")
        leaks += ["SELECT id FROM {p}_vtm ORDER BY id", "SELECT id FROM {p}_tm() ORDER BY id"]
    seen = _play(db, request, unique, setup, leaks + FUNCTION_LOOK_ALIKES, FUNCTION_DROPS[db])
    _alike_and_masked(seen)
    for s in seen[0][: len(leaks)]:
        assert _refused(s), s
    assert seen[0][len(leaks):] == [
        "(['id', 'taxed', 'spent'], [(1, 15.0, 12.0), (2, 30.0, 30.0), (3, 45.0, 18.0), (4, 60.0, 0.0), "
        "(5, 75.0, 7.0)])",
        "(['id'], [(2,), (3,)])",
    ]


def test_an_application_function_is_judged_through_asyncpg(pg_dsn: str, unique: str) -> None:
    """asyncpg reads the application's function bodies, and the relations they name, in its warm-up: the view over
    the SSN-reading function is refused alike, the one over clear functions answers exactly."""
    asyncpg = pytest.importorskip("asyncpg")
    import psycopg

    from tests.conftest import PG_DSN

    parts = dict(x.split("=", 1) for x in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    statements = [FUNCTION_LEAKS[0], FUNCTION_LEAKS[1], *FUNCTION_LOOK_ALIKES]

    async def play(p: str) -> list[str]:
        gov = govern(await asyncpg.connect(url), ATTACKER)
        seen = []
        try:
            for sql in statements:
                try:
                    seen.append(repr([tuple(r) for r in await gov.fetch(sql.format(p=p))]).replace(p, "P"))
                except governed_db.GuardrailViolation as e:
                    seen.append(f"refused: {e}".replace(p, "P"))
        finally:
            await gov.close()
        return seen

    out = []
    for v, secret in (("a", ALICE), ("b", ANNA)):
        p = f"gdb_r20v_{unique}_{v}"
        with psycopg.connect(PG_DSN, autocommit=True) as app:
            for sql in (CUSTOMERS, ORDERS, *FUNCTIONS["postgres"], *FUNCTION_VIEWS):
                app.execute(sql.format(p=p))
            with closing(app.cursor()) as cur:
                cur.executemany(f"INSERT INTO {p}_c VALUES (%s, %s, %s, %s, %s, %s, %s)", [secret, *OTHERS])
                cur.executemany(f"INSERT INTO {p}_o VALUES (%s, %s, %s)", ORDER_ROWS)
            try:
                out.append(asyncio.run(play(p)))
            finally:
                for sql in FUNCTION_DROPS["postgres"]:
                    app.execute(sql.format(p=p))
    _alike_and_masked(out)
    assert _refused(out[0][0]) and _refused(out[0][1]), out[0]
    assert out[0][2:] == ["[(1, 15.0, 12.0), (2, 30.0, 30.0), (3, 45.0, 18.0), (4, 60.0, 0.0), (5, 75.0, 7.0)]",
                          "[(2,), (3,)]"]  # fmt: skip


def test_the_comparison_keeps_what_mariadb_keeps_of_the_last_statement(mysql_kw: dict[str, Any], unique: str) -> None:
    """Look-alike: with the comparison due, ``SELECT @@warning_count`` and ``SHOW WARNINGS`` after a statement that
    warned answer as on the raw connection (a catalog read in between would reset them), and the next statement
    naming a table still compares first."""
    import pymysql

    p = f"gdb_r20v_{unique}"
    app = pymysql.connect(autocommit=True, **mysql_kw)
    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), ATTACKER)
    try:
        with closing(app.cursor()) as cur:
            cur.execute(f"CREATE TABLE {p}_t (id INT, city TEXT, ssn TEXT)")
            cur.execute(f"INSERT INTO {p}_t VALUES (1, 'Paris', '{ANNA_SSN}')")
            cur.execute(f"CREATE VIEW {p}_v AS SELECT id, city AS code FROM {p}_t")
        assert observe(conn, f"SELECT id, code FROM {p}_v") == (["id", "code"], [(1, "Paris")])
        assert observe(conn, "SELECT 1 + 'a'")[1] == [(1,)]
        time.sleep(SETTLE)  # the comparison is due as the warnings are read
        assert observe(conn, "SELECT @@warning_count") == (["@@warning_count"], [(1,)])
        assert "Truncated" in repr(observe(conn, "SHOW WARNINGS"))
        with closing(app.cursor()) as cur:
            cur.execute(f"CREATE OR REPLACE VIEW {p}_v AS SELECT id, ssn AS code FROM {p}_t")
        seen = observe(conn, f"SELECT id, code FROM {p}_v")
        assert ANNA_SSN not in repr(seen), seen  # compared first: the view is read again
    finally:
        conn.close()
        with closing(app.cursor()) as cur:
            cur.execute(f"DROP VIEW IF EXISTS {p}_v")
            cur.execute(f"DROP TABLE IF EXISTS {p}_t")
        app.close()
