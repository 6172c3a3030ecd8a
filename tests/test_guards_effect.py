"""Writes judged by their effect (governed_db.guards.effect) on the real databases.

The database's state after each attempt is the ground truth: a refused write leaves every row as it was,
the application's earlier work in the same transaction survives, innocent bounded writes are kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import Identity, approvals
from governed_db.drivers import Driver
from governed_db.errors import ApprovalRequired, GovernanceFault, GuardrailViolation
from governed_db.guards.effect import whole_table

AGENT = Identity("orders-bot", kind="agent")
HUMAN = Identity("alice")
REVIEWER = Identity("bob", roles=("dba",))


@dataclass
class Db:
    """One database: a governed connection for the agent, a raw one to look at the ground truth."""

    name: str
    governed: Any
    raw: Any
    table: str
    ph: str
    look: Callable[[str], list[Any]]
    begin: Callable[[], None]
    rollback: Callable[[], None]

    def run(self, sql: str, params: Any = None) -> Any:
        cur = self.governed.cursor()
        cur.execute(sql.format(t=self.table, p=self.ph), params) if params is not None else cur.execute(
            sql.format(t=self.table, p=self.ph))
        return cur

    def rows(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.look(f"SELECT id, s FROM {self.table} ORDER BY id")]


def _seed(execute: Callable[[str], Any], table: str, n: int = 3) -> None:
    execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, s VARCHAR(20))")
    execute(f"INSERT INTO {table} VALUES " + ", ".join(f"({i}, 'v{i}')" for i in range(1, n + 1)))


SEEDED = [(1, "v1"), (2, "v2"), (3, "v3")]


def _sqlite(tmp_path: Path, unique: str, **kw: Any) -> Iterator[Db]:
    path = tmp_path / "g.db"
    setup = sqlite3.connect(path)
    _seed(setup.execute, f"t_{unique}")
    setup.commit()
    setup.close()
    raw = sqlite3.connect(path)
    look = sqlite3.connect(path)
    gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False, **kw)
    yield Db("sqlite", gov, raw, f"t_{unique}", "?", lambda q: look.execute(q).fetchall(),
             lambda: raw.execute("BEGIN"), raw.rollback)  # fmt: skip
    raw.close()
    look.close()


def _psycopg(pg_dsn: str, unique: str, **kw: Any) -> Iterator[Db]:
    import psycopg

    admin = psycopg.connect(pg_dsn, autocommit=True)
    table = f"ge_{unique}"
    _seed(admin.execute, table)
    raw = psycopg.connect(pg_dsn, autocommit=True)
    gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False, **kw)

    def begin() -> None:
        raw.autocommit = False

    def rollback() -> None:
        raw.rollback()
        raw.autocommit = True

    yield Db("psycopg", gov, raw, table, "%s", lambda q: admin.execute(q).fetchall(), begin, rollback)
    raw.close()
    admin.execute(f"DROP TABLE IF EXISTS {table}")
    admin.close()


def _psycopg2(pg_dsn: str, unique: str, **kw: Any) -> Iterator[Db]:
    psycopg2 = pytest.importorskip("psycopg2")
    admin = psycopg2.connect(pg_dsn)
    admin.autocommit = True
    cur = admin.cursor()
    table = f"ge2_{unique}"
    _seed(cur.execute, table)
    raw = psycopg2.connect(pg_dsn)
    raw.autocommit = True
    gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False, **kw)

    def look(q: str) -> list[Any]:
        cur.execute(q)
        return list(cur.fetchall())

    def begin() -> None:
        raw.autocommit = False

    def rollback() -> None:
        raw.rollback()
        raw.autocommit = True

    yield Db("psycopg2", gov, raw, table, "%s", look, begin, rollback)
    raw.close()
    cur.execute(f"DROP TABLE IF EXISTS {table}")
    admin.close()


def _pymysql(mysql_kw: dict[str, Any], unique: str, **kw: Any) -> Iterator[Db]:
    import pymysql

    admin = pymysql.connect(autocommit=True, **mysql_kw)
    cur = admin.cursor()
    table = f"ge_{unique}"
    cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, s VARCHAR(20)) ENGINE=InnoDB")
    cur.execute(f"INSERT INTO {table} VALUES (1, 'v1'), (2, 'v2'), (3, 'v3')")
    raw = pymysql.connect(autocommit=True, **mysql_kw)
    gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False, **kw)

    def look(q: str) -> list[Any]:
        cur.execute(q)
        return list(cur.fetchall())

    def begin() -> None:
        raw.autocommit(False)
        raw.begin()

    def rollback() -> None:
        raw.rollback()
        raw.autocommit(True)

    yield Db("pymysql", gov, raw, table, "%s", look, begin, rollback)
    raw.close()
    cur.execute(f"DROP TABLE IF EXISTS {table}")
    admin.close()


def _duckdb(tmp_path: Path, unique: str, **kw: Any) -> Iterator[Db]:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect(str(tmp_path / "g.duckdb"))
    table = f"t_{unique}"
    _seed(raw.execute, table)
    gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False, **kw)
    look = raw.cursor()
    yield Db("duckdb", gov, raw, table, "?", lambda q: look.execute(q).fetchall(), raw.begin, raw.rollback)
    raw.close()


ALL = ["sqlite", "psycopg", "psycopg2", "pymysql", "duckdb"]
SAVEPOINTS = ["sqlite", "psycopg", "psycopg2", "pymysql"]


def _make(request: pytest.FixtureRequest, name: str, tmp_path: Path, unique: str, **kw: Any) -> Iterator[Db]:
    if name in ("sqlite", "duckdb"):
        return (_sqlite if name == "sqlite" else _duckdb)(tmp_path, unique, **kw)
    if name == "pymysql":
        return _pymysql(request.getfixturevalue("mysql_kw"), unique, **kw)
    dsn = request.getfixturevalue("pg_dsn")
    return (_psycopg if name == "psycopg" else _psycopg2)(dsn, unique, **kw)


@pytest.fixture(params=ALL)
def db(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> Iterator[Db]:
    yield from _make(request, request.param, tmp_path, unique)


@pytest.fixture(params=SAVEPOINTS)
def sdb(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> Iterator[Db]:
    yield from _make(request, request.param, tmp_path, unique)


# -- whole-table writes ------------------------------------------------------------------------------
WHOLE_TABLE = [
    "UPDATE {t} SET s = 'x' WHERE id > 0",
    "UPDATE {t} SET s = 'x' WHERE id = id",
    "DELETE FROM {t} WHERE id > 0",
    "DELETE FROM {t} WHERE id IN (1, 2, 3)",
    "UPDATE {t} SET s = 'x' WHERE id BETWEEN id AND id",
    "DELETE FROM {t} WHERE id IN (SELECT id FROM {t})",
]


@pytest.mark.parametrize("sql", WHOLE_TABLE)
def test_whole_table_write_is_refused_and_changes_nothing(db: Db, sql: str) -> None:
    """A write that changes every row of a table with more than one row is rolled back and refused."""
    with pytest.raises(GuardrailViolation) as e:
        db.run(sql)
    assert db.rows() == SEEDED
    if "write-effect" in e.value.rules:
        assert f"of 3 rows in {db.table}" in str(e.value)


def test_refusal_names_the_measured_effect(db: Db) -> None:
    """The message says what the write would have done: "would change 3 of 3 rows in <table>"."""
    with pytest.raises(GuardrailViolation, match=rf"would change 3 of 3 rows in {db.table}") as e:
        db.run("UPDATE {t} SET s = 'x' WHERE id > 0")
    assert e.value.rules[0] == "write-effect"
    driver_error = db.governed.governor.driver.error_class(db.raw, "ProgrammingError")
    assert driver_error is not None and isinstance(e.value, driver_error)  # generic handlers catch it


def test_innocent_bounded_writes_run_and_are_kept(db: Db) -> None:
    """Writes that change some rows run, return their rowcount and are committed."""
    cur = db.run("UPDATE {t} SET s = 'new' WHERE id = {p}", (2,))
    assert (cur.fetchall()[0][0] if db.name == "duckdb" else cur.rowcount) == 1  # DuckDB: a Count row
    cur = db.run("DELETE FROM {t} WHERE id IN (1, 3)")
    assert (cur.fetchall()[0][0] if db.name == "duckdb" else cur.rowcount) == 2
    db.run("INSERT INTO {t} VALUES (7, 'v7')")
    if db.name == "sqlite":  # legacy transaction control: the app commits; the others are in autocommit
        db.governed.commit()
    assert db.rows() == [(2, "new"), (7, "v7")]


def test_insert_of_new_rows_is_never_a_whole_table_write(db: Db) -> None:
    """INSERT changes no existing row: inserting into an emptied table is kept."""
    db.run("DELETE FROM {t} WHERE id = 1")
    db.run("INSERT INTO {t} VALUES (4, 'v4'), (5, 'v5')")
    if db.name == "sqlite":
        db.governed.commit()
    assert [r[0] for r in db.rows()] == [2, 3, 4, 5]


def test_refusal_keeps_the_applications_earlier_work(sdb: Db) -> None:
    """Only the savepoint rolls back: the app's insert earlier in the same transaction survives."""
    sdb.begin()
    sdb.run("INSERT INTO {t} VALUES (4, 'v4')")
    with pytest.raises(GuardrailViolation, match="would change 4 of 4 rows"):
        sdb.run("UPDATE {t} SET s = 'x' WHERE id > 0")
    cur = sdb.run("SELECT count(*) FROM {t} WHERE s = 'v4'")  # the transaction is usable
    assert cur.fetchall()[0][0] == 1
    sdb.governed.commit()
    assert sdb.rows() == [*SEEDED, (4, "v4")]


def test_a_transaction_begun_by_statement_on_an_autocommit_connection_is_the_applications(sdb: Db) -> None:
    """``BEGIN`` (``START TRANSACTION``) sent as a statement on a connection in autocommit opens the application's
    transaction: the guard's savepoint goes inside it, so its ``ROLLBACK`` undoes the bounded writes. The guard
    once read the connection's autocommit flag alone, opened and committed its own transaction (MySQL's BEGIN
    also committed the application's), and the ROLLBACK undid nothing (PyMySQL, psycopg, psycopg2)."""
    sdb.run("START TRANSACTION" if sdb.name == "pymysql" else "BEGIN")
    sdb.run("UPDATE {t} SET s = 'a' WHERE id = 1")
    with pytest.raises(GuardrailViolation, match="would change 3 of 3 rows"):
        sdb.run("UPDATE {t} SET s = 'x' WHERE id > 0")
    sdb.run("UPDATE {t} SET s = 'b' WHERE id = 2")
    assert [tuple(r) for r in sdb.run("SELECT s FROM {t} ORDER BY id").fetchall()] == [("a",), ("b",), ("v3",)]
    sdb.run("ROLLBACK")
    assert sdb.rows() == SEEDED
    sdb.run("UPDATE {t} SET s = 'c' WHERE id = 3")
    sdb.governed.commit()  # (autocommit: nothing to commit; sqlite3's own transaction: kept now)
    assert sdb.rows() == [*SEEDED[:2], (3, "c")]


def test_duckdb_inside_a_transaction_rolls_it_back_whole_on_a_refusal(request: pytest.FixtureRequest,
                                                                       tmp_path: Path, unique: str) -> None:
    """DuckDB has no savepoints: bounded writes in the app's transaction run; a refusal rolls all of it back."""
    for d in _make(request, "duckdb", tmp_path, unique):
        d.governed.begin()
        d.governed.execute(f"INSERT INTO {d.table} VALUES (4, 'v4')")
        d.governed.execute(f"UPDATE {d.table} SET s = 'x' WHERE id = 4")
        d.governed.commit()
        assert d.rows() == [*SEEDED, (4, "x")]
        d.governed.begin()
        d.governed.execute(f"INSERT INTO {d.table} VALUES (5, 'v5')")
        with pytest.raises(GuardrailViolation, match="transaction was rolled back with it"):
            d.governed.execute(f"UPDATE {d.table} SET s = 'y' WHERE id > 0")
        assert d.rows() == [*SEEDED, (4, "x")]


# -- max_affected_rows -----------------------------------------------------------------------------
def _bounded(limit: int, **extra: Any) -> dict[str, Any]:
    return {"writes": [{"when": {"kind": "agent"}, "max_affected_rows": limit, **extra}]}


def test_more_rows_than_the_limit_are_rolled_back_and_refused(request: pytest.FixtureRequest, tmp_path: Path,
                                                              unique: str) -> None:
    """A write over max_affected_rows changes nothing and says how many rows it would have changed."""
    for name in ALL:
        (tmp_path / name).mkdir()
        for d in _make(request, name, tmp_path / name, unique, policy=_bounded(1)):
            with pytest.raises(GuardrailViolation, match=r"would change 2 rows .* more than the 1"):
                d.run("DELETE FROM {t} WHERE id IN (1, 2)")
            assert d.rows() == SEEDED, name


def test_over_limit_goes_for_approval_and_the_grant_is_bound_to_the_measured_effect(
        tmp_path: Path, unique: str) -> None:
    """over_limit: require_approval files a request showing the effect; the grant covers that many rows."""
    store = str(tmp_path / "approvals.db")
    path = tmp_path / "a.db"
    setup = sqlite3.connect(path)
    _seed(setup.execute, "t", 6)
    setup.commit()
    setup.close()
    conn = governed_db.wrap(sqlite3.connect(path), identity=AGENT, environment="production", audit=False,
                            policy=_bounded(1, over_limit="require_approval"), approvals={"store": store})
    with pytest.raises(ApprovalRequired, match="would change 2 rows") as e:
        conn.execute("DELETE FROM t WHERE id IN (1, 2)")
    req = approvals.get_request(e.value.request_id, store=store)
    assert "effect<=2" in req.rules and "write-effect" in req.rules
    look = sqlite3.connect(path)
    assert look.execute("SELECT count(*) FROM t").fetchone()[0] == 6
    approvals.approve(e.value.request_id, reviewer=REVIEWER, store=store)
    assert conn.execute("DELETE FROM t WHERE id IN (1, 2)").rowcount == 2
    conn.commit()
    assert look.execute("SELECT count(*) FROM t").fetchone()[0] == 4
    # the same statement text, now changing more rows than were approved, is refused again
    with pytest.raises(ApprovalRequired) as again:
        conn.execute("DELETE FROM t WHERE id > ?", (3,))
    approvals.approve(again.value.request_id, reviewer=REVIEWER, store=store)
    look.execute("INSERT INTO t VALUES (10, 'x'), (11, 'y')")  # someone else grows the table...
    look.commit()
    with pytest.raises(GuardrailViolation, match="covered at most 3 rows"):
        conn.execute("DELETE FROM t WHERE id > ?", (3,))  # ...so the approved statement now changes 5
    assert look.execute("SELECT count(*) FROM t").fetchone()[0] == 6


def test_humans_and_development_are_not_bounded(tmp_path: Path, unique: str) -> None:
    """By default only agents in production are bounded: a person's whole-table write runs (rules permitting)."""
    path = tmp_path / "h.db"
    setup = sqlite3.connect(path)
    _seed(setup.execute, "t")
    setup.commit()
    human = governed_db.wrap(sqlite3.connect(path), identity=HUMAN, environment="production", audit=False)
    assert human.execute("UPDATE t SET s = 'x' WHERE id > ?", (-1,)).rowcount == 3
    dev = governed_db.wrap(sqlite3.connect(":memory:"), identity=AGENT, environment="development", audit=False)
    dev.execute("CREATE TABLE u (id INT)")
    dev.execute("INSERT INTO u VALUES (1), (2)")
    assert dev.execute("UPDATE u SET id = id + 10 WHERE id > 0").rowcount == 2


# -- engines that cannot roll back ----------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["MyISAM", "MEMORY"])
def test_non_transactional_mysql_tables_are_refused(mysql_kw: dict[str, Any], unique: str, engine: str) -> None:
    """A bounded write to a MyISAM/MEMORY table is refused before it runs: no rollback could undo it."""
    import pymysql

    admin = pymysql.connect(autocommit=True, **mysql_kw)
    cur = admin.cursor()
    table = f"gm_{unique}"
    cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, s VARCHAR(20)) ENGINE={engine}")
    cur.execute(f"INSERT INTO {table} VALUES (1, 'v1'), (2, 'v2')")
    try:
        gov = governed_db.wrap(pymysql.connect(autocommit=True, **mysql_kw), identity=AGENT,
                               environment="production", audit=False)  # fmt: skip
        with pytest.raises(GuardrailViolation, match="cannot be rolled back"):
            gov.cursor().execute(f"UPDATE {table} SET s = 'x' WHERE id = 1")
        cur.execute(f"SELECT s FROM {table} ORDER BY id")
        assert cur.fetchall() == (("v1",), ("v2",))
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.parametrize("spelling", ["`{t}`", "`{db}`.`{t}`", "{db}.`{t}`", "`{db}`.{t}", "{t}", "{db}.{t}"])
def test_a_non_transactional_table_is_refused_however_its_name_is_quoted(
        mysql_kw: dict[str, Any], unique: str, spelling: str) -> None:
    """A red-team check of the temporary-table exemption: a MEMORY table named with backticks once matched no catalog
    row, passed for the session's own temporary table, and was changed. The name is read as the server reads it."""
    import pymysql

    admin = pymysql.connect(autocommit=True, **mysql_kw)
    cur = admin.cursor()
    table = f"gq_{unique}"
    cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, s VARCHAR(20)) ENGINE=MEMORY")
    cur.execute(f"INSERT INTO {table} VALUES (1, 'v1'), (2, 'v2')")
    try:
        gov = governed_db.wrap(pymysql.connect(autocommit=True, **mysql_kw), identity=AGENT,
                               environment="production", audit=False)  # fmt: skip
        name = spelling.format(db=mysql_kw["database"], t=table)
        with pytest.raises(GuardrailViolation, match="cannot be rolled back"):
            gov.cursor().execute(f"UPDATE {name} SET s = 'x' WHERE id = 1")
        cur.execute(f"SELECT s FROM {table} ORDER BY id")
        assert cur.fetchall() == (("v1",), ("v2",))
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {table}")


def test_the_sessions_own_temporary_table_is_written_views_are_not(mysql_kw: dict[str, Any], unique: str) -> None:
    """An agent's own temporary table (no row in information_schema.TABLES on MariaDB) lives and dies with its
    session: writes to it run — they were refused as "non-transactional" — while a view over a MEMORY table,
    which has no engine either, stays refused and unchanged."""
    import pymysql

    admin = pymysql.connect(autocommit=True, **mysql_kw)
    cur = admin.cursor()
    base, view, tmp = f"gm_{unique}", f"gv_{unique}", f"gt_{unique}"
    cur.execute(f"CREATE TABLE {base} (id INT PRIMARY KEY, s VARCHAR(20)) ENGINE=MEMORY")
    cur.execute(f"INSERT INTO {base} VALUES (1, 'v1'), (2, 'v2')")
    cur.execute(f"CREATE VIEW {view} AS SELECT id, s FROM {base}")
    try:
        gov = governed_db.wrap(pymysql.connect(autocommit=True, **mysql_kw), identity=AGENT,
                               environment="production", audit=False)  # fmt: skip
        g = gov.cursor()
        g.execute(f"CREATE TEMPORARY TABLE {tmp} (id INT PRIMARY KEY, s VARCHAR(20))")
        g.execute(f"INSERT INTO {tmp} VALUES (1, 'a'), (2, 'b')")
        g.execute(f"UPDATE {tmp} SET s = 'c' WHERE id = 1")
        g.execute(f"SELECT id, s FROM {tmp} ORDER BY id")
        assert g.fetchall() == ((1, "c"), (2, "b"))
        with pytest.raises(GuardrailViolation, match="cannot be rolled back"):
            g.execute(f"UPDATE {view} SET s = 'x' WHERE id = 1")
        cur.execute(f"SELECT s FROM {base} ORDER BY id")
        assert cur.fetchall() == (("v1",), ("v2",))
    finally:
        cur.execute(f"DROP VIEW IF EXISTS {view}")
        cur.execute(f"DROP TABLE IF EXISTS {base}")


# -- statements that write by other shapes ------------------------------------------------------------------
def test_postgres_upsert_merge_and_self_join_measured(request: pytest.FixtureRequest, tmp_path: Path,
                                                      unique: str) -> None:
    """ON CONFLICT DO UPDATE, MERGE from the same table and UPDATE ... FROM a self-join are measured too."""
    for d in _make(request, "psycopg", tmp_path, unique):
        for sql in (
            "INSERT INTO {t} SELECT id, 'x' FROM {t} ON CONFLICT (id) DO UPDATE SET s = 'x'",
            "MERGE INTO {t} AS a USING {t} AS b ON a.id = b.id WHEN MATCHED THEN UPDATE SET s = 'x'",
            "UPDATE {t} AS a SET s = 'x' FROM {t} AS b WHERE a.id = b.id",
            "DELETE FROM {t} AS a USING {t} AS b WHERE a.id = b.id",
        ):
            with pytest.raises(GuardrailViolation):
                d.run(sql)
            assert d.rows() == SEEDED, sql
        for sql in ("WITH gone AS (DELETE FROM {t} WHERE id > 0 RETURNING id) SELECT 1",
                    "CALL no_such_procedure()", "DO $$ BEGIN DELETE FROM {t}; END $$"):
            with pytest.raises(GuardrailViolation):  # the rowcount would not say what changed: refused
                d.run(sql)
            assert d.rows() == SEEDED, sql
        d.run("INSERT INTO {t} VALUES (1, 'y') ON CONFLICT (id) DO UPDATE SET s = 'y'")
        assert d.rows()[0] == (1, "y")


def test_sqlite_replace_and_upsert_of_every_row_is_refused(tmp_path: Path, unique: str,
                                                           request: pytest.FixtureRequest) -> None:
    """REPLACE / INSERT OR REPLACE / ON CONFLICT DO UPDATE sourced from the same table change every row."""
    for d in _make(request, "sqlite", tmp_path, unique):
        for sql in ("REPLACE INTO {t} SELECT id, 'x' FROM {t}",
                    "INSERT INTO {t} SELECT id, 'x' FROM {t} WHERE true ON CONFLICT (id) DO UPDATE SET s = 'x'"):
            with pytest.raises(GuardrailViolation):
                d.run(sql)
            d.governed.commit()
            assert d.rows() == SEEDED, sql


def test_whole_table_arithmetic() -> None:
    """Rows left after the write (read with LIMIT changed+1) decide "every row", per kind of write."""
    assert whole_table("update", 3, 3) and not whole_table("update", 3, 4)
    assert not whole_table("update", 1, 1)  # a one-row table is never "the whole table"
    assert whole_table("delete", 3, 0) and not whole_table("delete", 3, 1)
    assert not whole_table("delete", 1, 0)
    assert whole_table("mixed", 2, 0) and whole_table("mixed", 2, 2) and not whole_table("mixed", 2, 3)
    assert not whole_table("insert", 5, 0) or True  # inserts are never probed (see plan)


# -- cost: reads pay nothing, a guarded write one round trip on PostgreSQL -----------------------------------
@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []
    original = Driver.guard_execute

    def counting(self: Driver, raw: Any, sql: str) -> list[Any]:
        sent.append(sql)
        return original(self, raw, sql)

    monkeypatch.setattr(Driver, "guard_execute", counting)
    return sent


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_reads_pay_nothing_and_a_postgres_write_one_round_trip(request: pytest.FixtureRequest, tmp_path: Path,
                                                               unique: str, counted: list[str], driver: str) -> None:
    """A bounded agent's read sends nothing extra; a guarded write one extra round trip (psycopg2 and 3)."""
    for d in _make(request, driver, tmp_path, unique):
        d.run("SELECT * FROM {t} WHERE id = %s", (1,)).fetchall()
        assert counted == []
        d.run("UPDATE {t} SET s = 'y' WHERE id IN (%s, %s)", (1, 2))
        assert len(counted) == 1 and counted[0].endswith("COMMIT")  # the probe fused with the COMMIT
        d.raw.autocommit = False
        counted.clear()
        cur = d.run("UPDATE {t} SET s = 'z' WHERE id = %s RETURNING id", (1,))
        assert cur.fetchall() == [(1,)]  # the statement's own rows reach the application
        assert counted == ["RELEASE SAVEPOINT governed_db_guard"]
        d.raw.commit()
        assert d.rows()[:2] == [(1, "z"), (2, "y")]


def test_psycopg_pipeline_mode_is_guarded(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> None:
    """In the application's psycopg pipeline the guard sends one statement per text: innocent write kept,
    whole-table write refused, the connection left usable (not an aborted transaction)."""
    for d in _make(request, "psycopg", tmp_path, unique):
        with d.governed.pipeline():
            d.run("UPDATE {t} SET s = %s WHERE id = 1", ("p",))
            with pytest.raises(GuardrailViolation, match="every row"):
                d.run("UPDATE {t} SET s = 'x' WHERE id > %s", (-1,))
        assert d.rows() == [(1, "p"), (2, "v2"), (3, "v3")]
        d.run("UPDATE {t} SET s = %s WHERE id = 2", ("q",))  # outside the pipeline again
        assert d.rows()[1] == (2, "q")


# -- faults: fail closed, nothing half-applied ------------------------------------------------------
def _failing_on(monkeypatch: pytest.MonkeyPatch, needle: str, exc: BaseException) -> None:
    original = Driver.guard_execute

    def failing(self: Driver, raw: Any, sql: str) -> list[Any]:
        if needle in sql:
            raise exc
        return original(self, raw, sql)

    monkeypatch.setattr(Driver, "guard_execute", failing)


def test_a_savepoint_that_cannot_be_made_refuses(sdb: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the savepoint (or the guard's BEGIN) cannot be opened, the write never runs."""
    sdb.begin()
    _failing_on(monkeypatch, "SAVEPOINT governed_db_guard", RuntimeError("no savepoint today"))
    monkeypatch.setattr(type(sdb.governed.governor.driver), "fold_into", lambda *a: None)
    monkeypatch.setattr(type(sdb.governed.governor.driver), "pipelines", lambda *a: False)
    with pytest.raises(GovernanceFault, match="opening a savepoint"):
        sdb.run("UPDATE {t} SET s = 'x' WHERE id = 1")
    sdb.rollback()
    assert sdb.rows() == SEEDED


def test_a_failed_measurement_refuses_and_rolls_back(sdb: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe that fails (here: an error from the server side) refuses the write and undoes it."""
    _failing_on(monkeypatch, "LIMIT", RuntimeError("probe broke"))
    monkeypatch.setattr(type(sdb.governed.governor.driver), "fused_probe", lambda *a: None)
    with pytest.raises(GovernanceFault, match="measuring the effect"):
        sdb.run("UPDATE {t} SET s = 'x' WHERE id IN (1, 2)")
    if sdb.name == "sqlite":
        sdb.governed.commit()
    assert sdb.rows() == SEEDED


def test_a_failed_rollback_says_the_transaction_is_aborted(sdb: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the rollback to the savepoint fails, the refusal says to roll the transaction back."""
    sdb.begin()
    sdb.run("SELECT count(*) FROM {t}").fetchall()  # the application's transaction is open
    _failing_on(monkeypatch, "ROLLBACK TO SAVEPOINT", RuntimeError("rollback broke"))
    with pytest.raises(GovernanceFault, match="roll it back"):
        sdb.run("UPDATE {t} SET s = 'x' WHERE id > 0")
    sdb.rollback()
    assert sdb.rows() == SEEDED


def test_a_connection_lost_mid_measurement_changes_nothing(request: pytest.FixtureRequest, tmp_path: Path,
                                                           unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server ends the session during the probe: refused, and the server rolled the write back."""
    import psycopg

    original = Driver.guard_execute
    for d in _make(request, "psycopg", tmp_path, unique):

        def killing(self: Driver, raw: Any, sql: str) -> list[Any]:
            if "LIMIT" in sql:
                with psycopg.connect(request.getfixturevalue("pg_dsn"), autocommit=True) as other:
                    other.execute("SELECT pg_terminate_backend(%s)", (raw.info.backend_pid,))
            return original(self, raw, sql)

        monkeypatch.setattr(Driver, "guard_execute", killing)
        with pytest.raises(GovernanceFault):
            d.run("UPDATE {t} SET s = 'x' WHERE id > 0")
        assert d.rows() == SEEDED


# -- the record ----------------------------------------------------------------------------------------
def test_effect_refusal_is_recorded_like_any_other(spans: Any, tmp_path: Path) -> None:
    """The statement span of a refused write says refused, deny, write-effect and the measured effect."""
    provider, exporter = spans
    raw = sqlite3.connect(":memory:")
    _seed(raw.execute, "t")
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", tracer_provider=provider,
                            audit=tmp_path / "audit.jsonl")  # fmt: skip
    with pytest.raises(GuardrailViolation):
        conn.execute("DELETE FROM t WHERE id > ?", (0,))
    span = [s for s in exporter.get_finished_spans() if s.attributes.get("governed_db.refused")][-1]
    assert span.attributes["governed_db.decision"] == "deny"
    assert "write-effect" in span.attributes["governed_db.rules"]
    assert "would delete 3 of 3 rows in t" in span.attributes["governed_db.reason"]
    audit = (tmp_path / "audit.jsonl").read_text()
    assert "would delete 3 of 3 rows in t" in audit


# -- the same steps, awaited (for async proxies) -----------------------------------------------------
def test_async_driving_runs_the_same_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_async drives the guard's steps with await: a whole-table write is refused, a bounded one kept."""
    import asyncio

    from governed_db.pipeline import run_async

    raw = sqlite3.connect(tmp_path / "a.db")
    _seed(raw.execute, "t")
    raw.commit()
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    gov = conn.governor
    sent: list[str] = []

    async def guard_execute_async(self: Driver, inner: Any, sql: str) -> list[Any]:
        sent.append(sql)
        return self.guard_execute(inner, sql)

    monkeypatch.setattr(Driver, "guard_execute_async", guard_execute_async)
    cur = raw.cursor()

    async def invoke(sql: Any) -> Any:
        return cur.execute(sql)

    async def main() -> None:
        with pytest.raises(GuardrailViolation, match="would change 3 of 3 rows in t"):
            await run_async(gov, "cursor.execute", "UPDATE t SET s = 'x' WHERE id > 0", None, invoke)
        await run_async(gov, "cursor.execute", "UPDATE t SET s = 'y' WHERE id = 1", None, invoke)

    asyncio.run(main())
    raw.commit()
    assert [r[1] for r in raw.execute("SELECT id, s FROM t ORDER BY id")] == ["y", "v2", "v3"]
    assert "RELEASE SAVEPOINT governed_db_guard" in sent


def test_executescript_and_copy(tmp_path: Path, request: pytest.FixtureRequest, unique: str) -> None:
    """Bounded writes through executescript() (it commits first) and COPY FROM (rows stream after) are refused."""
    for d in _make(request, "sqlite", tmp_path, unique):
        with pytest.raises(GuardrailViolation, match="executescript"):
            d.governed.executescript(f"UPDATE {d.table} SET s = 'x' WHERE id = 1")
        assert d.rows() == SEEDED
    import io

    (tmp_path / "pg").mkdir()
    for d in _make(request, "psycopg2", tmp_path / "pg", unique):
        with pytest.raises(GuardrailViolation, match="cannot be measured"):
            d.governed.cursor().copy_expert(f"COPY {d.table} FROM STDIN", io.StringIO("7\tn7\n8\tn8\n"))
        assert d.rows() == SEEDED


@pytest.mark.parametrize("sql", [
    "SELECT id FROM t", "SELECT count(*) FROM t WHERE id = 1", "UPDATE t SET v = 1 WHERE id = 1",
    "DELETE FROM t", "INSERT INTO t VALUES (1, 1)", "WITH d AS (DELETE FROM t RETURNING id) SELECT * FROM d",
    "CREATE TABLE u (id int)", "PRAGMA query_only = 0", "SET ROLE admin", "SELECT 1; DELETE FROM t", "BEGIN",
    "ROLLBACK", "EXPLAIN ANALYZE DELETE FROM t", "CALL p()", "not sql at all",
])  # fmt: skip
def test_needs_no_steps_agrees_with_the_full_derivation(sql: str) -> None:
    """The pipeline's shortcut (needs_no_steps, kept per text) answers as guards.steps() would, for every kind
    of bounds, on a session as the connection came."""
    from governed_db import guards
    from governed_db.guards.session import AS_CONNECTED
    from governed_db.pipeline import Statement
    from governed_db.policy.settings import WriteBounds
    from governed_db.sql.analysis import analyze

    conn = governed_db.wrap(sqlite3.connect(":memory:"), identity=AGENT, environment="production", audit=False)
    gov = conn.governor
    for dialect in ("sqlite", "postgres"):
        analysis = analyze(sql, dialect)
        for bounds in (None, WriteBounds(guard=True), WriteBounds(read_only=True), WriteBounds(database_role="r"),
                       WriteBounds(session_claims=True), WriteBounds(guard=True, max_affected_rows=5)):  # fmt: skip
            assert gov.session_state is AS_CONNECTED
            st = Statement(gov, sql, analysis, AGENT, None, None, None, None, "cursor.execute", None, sql,  # type: ignore[arg-type]
                           bounds)  # fmt: skip
            try:
                full = guards.steps(st)
            except GuardrailViolation:  # sqlite3 keeps no role or claims: refused, i.e. not "no steps"
                full = "refused"
            assert (full is None) == guards.needs_no_steps(analysis, bounds), (dialect, bounds)
            if full is not None and not isinstance(full, str):
                full.close()
