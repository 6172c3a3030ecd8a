"""Red team of the effect guard and read-only sessions (governed_db.guards): a hostile agent in production.

Each case is what a prompt-injected agent (``Identity("agent-x", kind="agent")``, environment production) sends,
statement by statement, carrying on after every refusal or error, and committing at the end. The database's
state afterwards is the only ground truth: an attack leaves it exactly as it was; an innocent look-alike
(an ordinary single-row write, a read, a person's whole-table maintenance in development) makes the change it
asked for. Policies: the default one (the agent's writes are bounded) and a read-only one (``write-statement``
denies, so the session is read-only in the database).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import Identity

AGENT = Identity("agent-x", kind="agent")
HUMAN = Identity("alice")
READ_ONLY = {"overrides": [{"when": {"kind": "agent"}, "rules": {"write-statement": "deny"}}]}

#: a step: SQL (``{t}`` is the case's table prefix), or a call ``(governed connection, table prefix)``
Step = str | Callable[[Any, str], Any]


@dataclass(frozen=True)
class Case:
    """One attempt: what is sent, under which policy and transaction mode, and what the state must be after."""

    name: str
    steps: tuple[Step, ...]
    read_only: bool = False
    autocommit: bool = True
    #: None: nothing may change; otherwise the rows of ``{t}`` expected afterwards (an innocent write)
    expect: list[tuple[Any, ...]] | None = None
    environment: str = "production"
    identity: Identity = AGENT
    marks: tuple[Any, ...] = field(default=())

    def param(self) -> Any:
        return pytest.param(self, id=self.name, marks=self.marks)


def _as(identity: Identity, sql: str) -> Callable[[Any, str], Any]:
    """A step sent by another identity on the same connection (acting_as between statements)."""

    def step(conn: Any, t: str) -> Any:
        with governed_db.acting_as(identity):
            return conn.cursor().execute(sql.format(t=t))

    return step


def _call(method: str, *args: Any) -> Callable[[Any, str], Any]:
    return lambda conn, _t: getattr(conn, method)(*args)


def _attack(conn: Any, raw_rollback: Callable[[], None], t: str, case: Case) -> list[str]:
    """Send every step as the hostile agent would, carrying on after each refusal; commit at the end."""
    log = []
    with governed_db.acting_as(case.identity):
        for step in case.steps:
            try:
                if callable(step):
                    step(conn, t)
                else:
                    conn.cursor().execute(step.format(t=t))
                log.append("ran")
            except Exception as e:
                log.append(f"{type(e).__name__}: {e}")
                if not case.autocommit:
                    raw_rollback()
        try:
            conn.commit()
        except Exception as e:
            log.append(f"commit: {e}")
    return log


SEEDED = [(1, "a"), (2, "b"), (3, "c")]


# -- PostgreSQL (psycopg 3 and psycopg2) ---------------------------------------------------------------
@dataclass
class Pg:
    admin: Any
    t: str

    def rows(self, suffix: str = "") -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.admin.execute(f"SELECT * FROM {self.t}{suffix} ORDER BY 1").fetchall()]


@pytest.fixture
def pg_db(pg_dsn: str, unique: str) -> Iterator[Pg]:
    import psycopg

    admin = psycopg.connect(pg_dsn, autocommit=True)
    t = f"rte_{unique}"
    admin.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, s TEXT)")
    admin.execute(f"INSERT INTO {t} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    admin.execute(f"CREATE FUNCTION {t}_purge() RETURNS int LANGUAGE plpgsql AS "
                  f"$$ BEGIN DELETE FROM {t}; RETURN 1; END $$")  # fmt: skip
    # an updatable view whose filter the write itself defeats: changed rows leave it
    admin.execute(f"CREATE VIEW {t}_open AS SELECT * FROM {t} WHERE s <> 'gone'")
    yield Pg(admin, t)
    admin.execute(f"DROP VIEW IF EXISTS {t}_open")
    admin.execute(f"DROP FUNCTION IF EXISTS {t}_purge()")
    admin.execute(f"DROP TABLE IF EXISTS {t}")
    admin.close()


def _pg_connect(driver: str, dsn: str, case: Case) -> tuple[Any, Any]:
    if driver == "psycopg":
        import psycopg

        raw: Any = psycopg.connect(dsn, autocommit=case.autocommit)
    else:
        psycopg2 = pytest.importorskip("psycopg2")
        raw = psycopg2.connect(dsn)
        raw.autocommit = case.autocommit
    policy = READ_ONLY if case.read_only else None
    return raw, governed_db.wrap(raw, environment=case.environment, policy=policy, audit=False)


def _raise_inside_transaction(conn: Any, t: str) -> None:
    """psycopg's conn.transaction(): the agent's first statement inside it, then an exception rolls it back."""
    if not hasattr(conn, "transaction"):
        conn.rollback()
        return
    with pytest.raises(ZeroDivisionError), conn.transaction():
        conn.cursor().execute("SELECT 1")
        raise ZeroDivisionError


PG_CASES = [
    # a rollback undid the read-only switch made inside the transaction (PostgreSQL's SET is transactional)
    Case("rollback() undoes the read-only switch", ("SELECT 1", _call("rollback"), "SELECT {t}_purge()"),
         read_only=True, autocommit=False),
    Case("ROLLBACK statement undoes the switch", ("SELECT 1", "ROLLBACK", "SELECT {t}_purge()"),
         read_only=True, autocommit=False),
    Case("ABORT undoes the switch", ("SELECT 1", "ABORT", "SELECT {t}_purge()"), read_only=True, autocommit=False),
    Case("an error, then rollback", ("SELECT 1/0", "SELECT {t}_purge()"), read_only=True, autocommit=False),
    Case("ROLLBACK TO a person's savepoint undoes the switch",
         (_as(HUMAN, "SAVEPOINT app"), "SELECT 1", "ROLLBACK TO SAVEPOINT app", "SELECT {t}_purge()"),
         read_only=True, autocommit=False),
    Case("psycopg transaction() block rolled back", (_raise_inside_transaction, "SELECT {t}_purge()"),
         read_only=True, autocommit=False),
    Case("COMMIT of a failed transaction is a rollback",
         ("SELECT 1", "SELECT 1/0", "COMMIT", "SELECT {t}_purge()"), read_only=True, autocommit=False),
    # the agent's own attempts to switch back (held before this red team; kept as regressions)
    Case("SET SESSION CHARACTERISTICS READ WRITE",
         ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "SELECT {t}_purge()"), read_only=True),
    Case("SET TRANSACTION READ WRITE", ("BEGIN", "SET TRANSACTION READ WRITE", "SELECT {t}_purge()"), read_only=True),
    Case("default_transaction_read_only quoted",
         ("SET \"default_transaction_read_only\" TO 'off'", "SELECT {t}_purge()"), read_only=True),
    Case("RESET ALL / DISCARD ALL", ("RESET ALL", "DISCARD ALL", "SELECT {t}_purge()"), read_only=True),
    Case("SET ROLE / SESSION AUTHORIZATION",
         ("SET ROLE postgres", "SET SESSION AUTHORIZATION postgres", "RESET SESSION AUTHORIZATION",
          "SELECT {t}_purge()"), read_only=True),
    Case("set_config() and UPDATE pg_settings",
         ("SELECT pg_catalog.set_config('default_transaction_read_only', 'off', false)",
          "UPDATE pg_settings SET setting = 'off' WHERE name = 'transaction_read_only'", "SELECT {t}_purge()"),
         read_only=True),
    Case("START TRANSACTION READ WRITE, lower case", ("start transaction  read  write", "SELECT {t}_purge()"),
         read_only=True),
    Case("PREPARE / EXECUTE a purge", ("PREPARE p AS SELECT {t}_purge()", "EXECUTE p"), read_only=True),
    Case("identity switching: a person between the agent's statements",
         ("SELECT 1", _as(HUMAN, "SELECT 1"), "SELECT {t}_purge()"), read_only=True, autocommit=False),
    # bounded writes (default policy): the whole-table measurement
    Case("UPDATE through a view whose filter the write defeats",
         ("UPDATE {t}_open SET s = 'gone' WHERE id > 0",)),
    Case("UPDATE every row, then COMMIT", ("UPDATE {t} SET s = 'x' WHERE id > 0", "COMMIT"), autocommit=False),
    Case("the guard's savepoint name taken first",
         ("SAVEPOINT governed_db_guard", "UPDATE {t} SET s = 'x' WHERE id > 0",
          "RELEASE SAVEPOINT governed_db_guard"), autocommit=False),
    Case("upsert of every row", ("INSERT INTO {t} SELECT id, 'z' FROM {t} ON CONFLICT (id) DO UPDATE SET s = 'z'",)),
    # innocent look-alikes: they must run
    Case("innocent: one-row update by the bounded agent", ("UPDATE {t} SET s = 'x' WHERE id = 2",),
         expect=[(1, "a"), (2, "x"), (3, "c")]),
    Case("innocent: the read-only agent reads after a rollback, then a person writes",
         ("SELECT 1", _call("rollback"), "SELECT count(*) FROM {t}", _call("commit"),
          _as(HUMAN, "DELETE FROM {t} WHERE id = 3")),
         read_only=True, autocommit=False, expect=[(1, "a"), (2, "b")]),
    Case("innocent: a person's whole-table maintenance in development",
         ("UPDATE {t} SET s = 'm' WHERE id > 0",), environment="development", identity=HUMAN,
         expect=[(1, "m"), (2, "m"), (3, "m")]),
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("case", [c.param() for c in PG_CASES])
def test_postgres(case: Case, driver: str, pg_db: Pg, pg_dsn: str) -> None:
    """The attack leaves PostgreSQL's rows as they were; the innocent look-alike makes its change."""
    raw, conn = _pg_connect(driver, pg_dsn, case)
    try:
        log = _attack(conn, raw.rollback, pg_db.t, case)
    finally:
        raw.close()
    assert pg_db.rows() == (SEEDED if case.expect is None else case.expect), log


# -- MariaDB (PyMySQL) --------------------------------------------------------------------------------
@pytest.fixture
def maria_db(mysql_kw: dict[str, Any], unique: str) -> Iterator[tuple[Any, str]]:
    import pymysql

    admin = pymysql.connect(autocommit=True, **mysql_kw)
    cur = admin.cursor()
    t = f"rte_{unique}"
    cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(10)) ENGINE=InnoDB")
    cur.execute(f"INSERT INTO {t} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    cur.execute(f"CREATE FUNCTION {t}_purge() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM {t}; RETURN 1; END")
    yield cur, t
    cur.execute(f"DROP FUNCTION IF EXISTS {t}_purge")
    cur.execute(f"DROP TABLE IF EXISTS {t}")
    admin.close()


MARIA_CASES = [
    # begin() opens a writable transaction before the agent's first statement switches the session: MariaDB
    # changes only the *next* transaction's access mode, and autocommit hid the open one from the check
    Case("begin() in autocommit before the switch", (_call("begin"), "SELECT {t}_purge()"), read_only=True),
    Case("a person's BEGIN, then the agent", (_as(HUMAN, "BEGIN"), "SELECT {t}_purge()"), read_only=True),
    Case("SET SESSION TRANSACTION READ WRITE", ("SET SESSION TRANSACTION READ WRITE", "SELECT {t}_purge()"),
         read_only=True),
    Case("SET @@tx_read_only / SET STATEMENT",
         ("SET @@tx_read_only = OFF", "SET STATEMENT transaction_read_only = 0 FOR SELECT {t}_purge()",
          "SELECT {t}_purge()"), read_only=True),
    Case("START TRANSACTION READ WRITE", ("START TRANSACTION READ WRITE", "SELECT {t}_purge()"), read_only=True),
    Case("select_db, autocommit toggles, ping(reconnect)",
         (_call("select_db", "test"), _call("autocommit", False), _call("ping", True), "SELECT {t}_purge()"),
         read_only=True),
    Case("multi-table UPDATE of every row", ("UPDATE {t} a JOIN {t} b ON a.id = b.id SET a.s = 'q' WHERE a.id > 0",)),
    Case("REPLACE of every row", ("REPLACE INTO {t} VALUES (1, 'q'), (2, 'q'), (3, 'q')",)),
    Case("ON DUPLICATE KEY UPDATE of every row",
         ("INSERT INTO {t} VALUES (1, 'a'), (2, 'b'), (3, 'c') ON DUPLICATE KEY UPDATE s = CONCAT(s, 'z')",)),
    Case("innocent: one-row update by the bounded agent", ("UPDATE {t} SET s = 'x' WHERE id = 2",),
         expect=[(1, "a"), (2, "x"), (3, "c")]),
    # the DELETE list names an alias (DELETE s FROM t s JOIN ...): the aliased table is the one written
    Case("multi-table DELETE through an alias of every row",
         ("DELETE s FROM {t} s JOIN (SELECT 1 AS id) o ON s.id >= o.id",)),
    Case("innocent: one-row multi-table DELETE through an alias",
         ("DELETE s FROM {t} s JOIN (SELECT 3 AS id) o ON s.id = o.id",), expect=[(1, "a"), (2, "b")]),
    Case("innocent: the read-only agent reads in a transaction it began",
         (_call("begin"), "SELECT count(*) FROM {t}", _call("commit"), _as(HUMAN, "DELETE FROM {t} WHERE id = 3")),
         read_only=True, expect=[(1, "a"), (2, "b")]),
]


@pytest.mark.parametrize("autocommit", [True, False])
@pytest.mark.parametrize("case", [c.param() for c in MARIA_CASES])
def test_mariadb(case: Case, autocommit: bool, maria_db: tuple[Any, str], mysql_kw: dict[str, Any]) -> None:
    """The attack leaves MariaDB's rows as they were; the innocent look-alike makes its change."""
    import pymysql

    cur, t = maria_db
    case = Case(**{**case.__dict__, "autocommit": autocommit})
    raw = pymysql.connect(autocommit=autocommit, **mysql_kw)
    conn = governed_db.wrap(raw, environment=case.environment, policy=READ_ONLY if case.read_only else None,
                            audit=False)  # fmt: skip
    try:
        log = _attack(conn, raw.rollback, t, case)
    finally:
        raw.close()
    cur.execute(f"SELECT * FROM {t} ORDER BY id")
    assert [tuple(r) for r in cur.fetchall()] == (SEEDED if case.expect is None else case.expect), log


# -- SQLite ---------------------------------------------------------------------------------------------
SQLITE_CASES = [
    # a table whose key resolves conflicts by REPLACE: the UPDATE deletes rows its rowcount does not count
    Case("UPDATE into an ON CONFLICT REPLACE key collapses the table", ("UPDATE {t} SET id = 1 WHERE id > 1",)),
    Case("INSERT OR REPLACE through two unique keys deletes uncounted rows",
         ("INSERT OR REPLACE INTO {t}_u VALUES (1, 'b')", "REPLACE INTO {t}_u VALUES (3, 'b')")),
    Case("PRAGMA query_only off, in any spelling",
         ("PRAGMA query_only = 0", "pragma QUERY_ONLY = NO", "PRAGMA main.query_only(false)",
          "SELECT * FROM pragma_query_only(0)", "DELETE FROM {t} WHERE id = 1"), read_only=True),
    Case("ATTACH another file and write to it",
         ("ATTACH DATABASE '{t}.other' AS x", "CREATE TABLE x.y (a)", "DELETE FROM {t} WHERE id = 1"), read_only=True),
    Case("executemany deleting every row", (lambda c, t: c.executemany(f"DELETE FROM {t} WHERE id = ?",
                                                                      [(1,), (2,), (3,)]),)),
    Case("innocent: one-row INSERT OR REPLACE", ("INSERT OR REPLACE INTO {t} VALUES (2, 'x')",),
         expect=[(1, "a"), (2, "x"), (3, "c")]),
    Case("innocent: a person's whole-table maintenance in development", ("UPDATE {t} SET s = 'm' WHERE id > 0",),
         environment="development", identity=HUMAN, expect=[(1, "m"), (2, "m"), (3, "m")]),
]


@pytest.mark.parametrize("case", [c.param() for c in SQLITE_CASES])
def test_sqlite(case: Case, tmp_path: Path) -> None:
    """The attack leaves the SQLite file as it was; the innocent look-alike makes its change."""
    path = tmp_path / "rt.db"
    t = "t_u" + uuid.uuid4().hex[:7]
    setup = sqlite3.connect(path)
    setup.executescript(f"""
        CREATE TABLE {t} (id INTEGER PRIMARY KEY ON CONFLICT REPLACE, s TEXT);
        INSERT INTO {t} VALUES (1, 'a'), (2, 'b'), (3, 'c');
        CREATE TABLE {t}_u (id INTEGER PRIMARY KEY, s TEXT UNIQUE);
        INSERT INTO {t}_u VALUES (1, 'a'), (2, 'b'), (3, 'c');
    """)
    setup.commit()
    raw = sqlite3.connect(path)
    conn = governed_db.wrap(raw, environment=case.environment, policy=READ_ONLY if case.read_only else None,
                            audit=False)  # fmt: skip
    try:
        log = _attack(conn, raw.rollback, str(tmp_path / t), case) if "ATTACH" in str(case.steps) else \
            _attack(conn, raw.rollback, t, case)
    finally:
        raw.close()
    expect = SEEDED if case.expect is None else case.expect
    assert setup.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() == expect, log
    assert setup.execute(f"SELECT * FROM {t}_u ORDER BY id").fetchall() == SEEDED, log
    assert not list(tmp_path.glob("*.other")), log
    setup.close()


# -- DuckDB ---------------------------------------------------------------------------------------------
DUCK_CASES = [
    Case("DELETE every row", ("DELETE FROM {t} WHERE id > 0",)),
    Case("INSERT OR REPLACE every row", ("INSERT OR REPLACE INTO {t} VALUES (1, 'q'), (2, 'q'), (3, 'q')",)),
    Case("executemany deleting every row", (lambda c, t: c.executemany(f"DELETE FROM {t} WHERE id = ?",
                                                                      [(1,), (2,), (3,)]),)),
    Case("BEGIN, every row, COMMIT", ("BEGIN", "UPDATE {t} SET s = 'x' WHERE id > 0", "COMMIT")),
    Case("innocent: one-row delete by the bounded agent", ("DELETE FROM {t} WHERE id = 3",),
         expect=[(1, "a"), (2, "b")]),
    Case("innocent: the read-only agent reads", ("SELECT count(*) FROM {t}", "BEGIN", "SELECT 1", "COMMIT"),
         read_only=True, expect=SEEDED),
]

#: schema changes DuckDB itself cannot stop for a read-only identity (its access mode is fixed at open):
#: rules only warned about them
DUCK_READ_ONLY_DDL = ["CREATE TABLE x (a INT)", "CREATE TEMP TABLE tt (a INT)", "CREATE MACRO m() AS 1",
                      "CREATE SEQUENCE sq", "CREATE INDEX i ON t (s)", "ALTER TABLE t ADD COLUMN z INT",
                      "CREATE TYPE e AS ENUM ('a')", "COMMENT ON TABLE t IS 'x'", "CREATE SCHEMA s2"]


@pytest.mark.parametrize("case", [c.param() for c in DUCK_CASES])
def test_duckdb(case: Case, tmp_path: Path) -> None:
    """The attack leaves the DuckDB file as it was; the innocent look-alike makes its change."""
    duckdb = pytest.importorskip("duckdb")
    path = str(tmp_path / "rt.duckdb")
    setup = duckdb.connect(path)
    setup.execute("CREATE TABLE t (id INT PRIMARY KEY, s TEXT)")
    setup.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    setup.close()
    raw = duckdb.connect(path)
    conn = governed_db.wrap(raw, environment=case.environment, policy=READ_ONLY if case.read_only else None,
                            audit=False)  # fmt: skip
    try:
        log = _attack(conn, lambda: None, "t", case)
    finally:
        raw.close()
    look = duckdb.connect(path, read_only=True)
    assert look.execute("SELECT * FROM t ORDER BY id").fetchall() == (SEEDED if case.expect is None
                                                                        else case.expect), log  # fmt: skip
    look.close()


@pytest.mark.parametrize("ddl", DUCK_READ_ONLY_DDL)
def test_duckdb_read_only_identity_changes_no_schema(ddl: str, tmp_path: Path) -> None:
    """A read-only agent's DDL on DuckDB is refused (no read-only session there); the catalog is unchanged."""
    duckdb = pytest.importorskip("duckdb")
    path = str(tmp_path / "rt.duckdb")
    setup = duckdb.connect(path)
    setup.execute("CREATE TABLE t (id INT, s TEXT)")
    before = setup.execute("SELECT sql FROM duckdb_tables() UNION ALL SELECT sql FROM duckdb_indexes()").fetchall()
    setup.close()
    raw = duckdb.connect(path)
    conn = governed_db.wrap(raw, environment="production", policy=READ_ONLY, audit=False)
    # refused: by the read-only rule, or first by agent-ddl (an agent's DDL needs a person's approval)
    with governed_db.acting_as(AGENT), pytest.raises(governed_db.GuardrailViolation, match=r"read-only|agent-ddl"):
        conn.execute(ddl)
    raw.close()
    look = duckdb.connect(path, read_only=True)
    assert look.execute("SELECT sql FROM duckdb_tables() UNION ALL SELECT sql FROM duckdb_indexes()").fetchall() \
        == before
    assert look.execute("SELECT count(*) FROM duckdb_sequences()").fetchone() == (0,)
    assert look.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = 'm'").fetchone() == (0,)
    look.close()


# -- async PostgreSQL (asyncpg, psycopg's AsyncConnection) ---------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("driver", ["asyncpg", "psycopg-async"])
async def test_async_read_only_agent_cannot_purge(driver: str, pg_db: Pg, pg_dsn: str) -> None:
    """asyncpg had no read-only session at all; psycopg async: a ROLLBACK must not undo the switch unseen."""
    if driver == "asyncpg":
        asyncpg = pytest.importorskip("asyncpg")
        parts = dict(p.split("=", 1) for p in pg_dsn.split())
        raw: Any = await asyncpg.connect(f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/"
                                         f"{parts['dbname']}")  # fmt: skip
    else:
        import psycopg

        raw = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=False)
    conn = governed_db.wrap(raw, environment="production", policy=READ_ONLY, audit=False)

    async def send(sql: str) -> None:
        if driver == "asyncpg":
            await conn.execute(sql)
        else:
            await conn.cursor().execute(sql)

    with governed_db.acting_as(AGENT):
        await send("SELECT 1")
        await send("ROLLBACK" if driver != "asyncpg" else "SELECT 2")
        with pytest.raises(governed_db.GuardrailViolation, match="read-only"):
            await send(f"SELECT {pg_db.t}_purge()")
        if driver != "asyncpg":
            await conn.rollback()  # the refused statement aborted the transaction
        await send(f"SELECT count(*) FROM {pg_db.t}")  # innocent: reads still run
    await raw.close()
    assert pg_db.rows() == SEEDED


@pytest.mark.anyio
async def test_aiosqlite_read_only_agent_cannot_write_the_file_header(tmp_path: Path) -> None:
    """aiosqlite had no query_only switch: PRAGMA user_version/application_id by a read-only agent wrote the file."""
    aiosqlite = pytest.importorskip("aiosqlite")
    path = tmp_path / "rt.db"
    sqlite3.connect(path).close()
    raw = await aiosqlite.connect(path)
    conn = governed_db.wrap(raw, environment="production", policy=READ_ONLY, audit=False)
    with governed_db.acting_as(AGENT):
        for sql in ("PRAGMA user_version = 7", "PRAGMA application_id = 9"):
            with pytest.raises(governed_db.GuardrailViolation, match="read-only"):
                await conn.execute(sql)
        cur = await conn.execute("SELECT 1")  # innocent: reads still run
        assert list(await cur.fetchall()) == [(1,)]
    await raw.close()
    look = sqlite3.connect(path)
    assert look.execute("PRAGMA user_version").fetchone() == (0,)
    assert look.execute("PRAGMA application_id").fetchone() == (0,)
    look.close()


def test_sqlite_read_only_agent_cannot_change_the_journal_mode(tmp_path: Path) -> None:
    """A read-only agent's PRAGMA journal_mode = WAL is refused; the file keeps its journal mode."""
    path = tmp_path / "rt.db"
    sqlite3.connect(path).close()
    raw = sqlite3.connect(path)
    conn = governed_db.wrap(raw, environment="production", policy=READ_ONLY, audit=False)
    with governed_db.acting_as(AGENT), pytest.raises(governed_db.GovernedDBError):
        conn.execute("PRAGMA journal_mode = WAL")
    raw.close()
    look = sqlite3.connect(path)
    assert look.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    look.close()


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_rollback_cannot_give_the_agent_the_connections_role(driver: str, pg_db: Pg, pg_dsn: str,
                                                                unique: str) -> None:
    """database_role: a ROLLBACK undid SET ROLE unseen, and the agent read every row as the connection's role."""
    role = f"rt_support_{unique}"
    admin, t = pg_db.admin, pg_db.t
    admin.execute(f"CREATE ROLE {role} NOLOGIN")
    try:
        admin.execute(f"GRANT SELECT ON {t} TO {role}")
        admin.execute(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
        admin.execute(f"CREATE POLICY one ON {t} USING (id = 1)")
        policy = {"writes": [{"when": {"kind": "agent"}, "database_role": role}]}
        case = Case("role", (), autocommit=False)
        raw, _ = _pg_connect(driver, pg_dsn, case)
        try:
            conn = governed_db.wrap(raw, environment="production", policy=policy, audit=False)
            with governed_db.acting_as(HUMAN):
                conn.cursor().execute("SELECT 1")  # the person's transaction is open when the agent first acts
            with governed_db.acting_as(AGENT):
                for sql in ("SELECT 1", "ROLLBACK", f"SELECT id FROM {t} ORDER BY id"):
                    cur = conn.cursor()
                    cur.execute(sql)
                seen = [r[0] for r in cur.fetchall()]
        finally:
            raw.close()  # before the clean-up below, which waits for this connection's locks
        assert seen == [1]
    finally:
        admin.execute(f"DROP POLICY IF EXISTS one ON {t}")
        admin.execute(f"REVOKE ALL ON {t} FROM {role}")
        admin.execute(f"DROP ROLE {role}")
