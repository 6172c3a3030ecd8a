"""End to end through governed_db.wrap: refused statements never reach SQLite, PostgreSQL or MariaDB."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db.errors import GuardrailViolation
from governed_db.identity import Identity

AGENT = Identity("e2e-bot", kind="agent", on_behalf_of="alice")


def _count(raw: Any, table: str) -> int:
    cur = raw.cursor()
    cur.execute(f"SELECT COUNT(*) FROM {table}")
    n = cur.fetchone()[0]
    cur.close()
    return int(n)


# -- SQLite ---------------------------------------------------------------------------------------

@pytest.fixture
def lite(tmp_path: Path) -> Any:
    raw = sqlite3.connect(tmp_path / "e2e.db")
    raw.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER)")
    raw.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i * 10) for i in range(1, 6)])
    raw.commit()
    yield raw
    raw.close()


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM orders",
        "UPDATE orders SET total = 0 WHERE 1 = 1",
        "DROP TABLE orders",
        "delete\n  from ORDERS -- tidy up\n",
        "WITH gone AS (SELECT 1) DELETE FROM orders",
        "SELECT 1; DROP TABLE orders",
        "SELECT 'a\\'; DROP TABLE orders; --'",
    ],
)
def test_sqlite_refused_statement_never_runs(lite: sqlite3.Connection, sql: str) -> None:
    """A refused statement raises (also as sqlite3.ProgrammingError) and the rows are still there."""
    conn = governed_db.wrap(lite, identity=AGENT)
    with pytest.raises(GuardrailViolation) as err:
        conn.execute(sql)
    assert isinstance(err.value, sqlite3.ProgrammingError)
    assert err.value.rules and err.value.remedy
    assert _count(lite, "orders") == 5


def test_sqlite_housekeeping_and_bounded_work_allowed(lite: sqlite3.Connection) -> None:
    """Schema discovery, savepoints and bounded writes run in production with zero config."""
    conn = governed_db.wrap(lite, identity=AGENT)
    assert conn.execute("PRAGMA table_info(orders)").fetchall()
    assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == [("orders",)]
    conn.execute("SAVEPOINT sp1")
    conn.execute("UPDATE orders\n   SET total = total + 1\n WHERE id = 1")
    conn.execute("RELEASE SAVEPOINT sp1")
    conn.commit()
    assert conn.execute("SELECT total FROM orders WHERE id = 1").fetchone() == (11,)
    assert conn.execute("SELECT 'DROP TABLE orders' AS s").fetchone() == ("DROP TABLE orders",)


def test_sqlite_development_observes_only(lite: sqlite3.Connection) -> None:
    """In development the same DELETE runs (warned and recorded)."""
    conn = governed_db.wrap(lite, identity=AGENT, environment="development")
    conn.execute("DELETE FROM orders")
    assert _count(lite, "orders") == 0


def test_sqlite_rate_limit_and_row_cap(lite: sqlite3.Connection) -> None:
    """A policy's statement budget refuses the excess; max-rows caps what comes back."""
    policy = governed_db.policy.load_policy({
        "rules": {"max-rows": {"limit": 2}},
        "limits": [{"when": {"kind": "agent"}, "statements_per_minute": 3}],
    })  # fmt: skip
    conn = governed_db.wrap(lite, identity=AGENT, policy=policy)
    assert len(conn.execute("SELECT * FROM orders").fetchall()) == 2
    conn.execute("SELECT 1")
    conn.execute("SELECT 2")
    with pytest.raises(GuardrailViolation) as err:
        conn.execute("SELECT 3")
    assert err.value.rules[0] == "rate-limit-statements"


def test_sqlite_rows_per_minute(lite: sqlite3.Connection) -> None:
    """Rows read count per identity; past the budget the next statement is refused."""
    policy = governed_db.policy.load_policy({"limits": [{"when": {"kind": "agent"}, "rows_per_minute": 4}]})
    conn = governed_db.wrap(lite, identity=AGENT, policy=policy)
    assert len(conn.execute("SELECT * FROM orders").fetchall()) == 5
    with pytest.raises(GuardrailViolation) as err:
        conn.execute("SELECT 1")
    assert err.value.rules[0] == "rate-limit-rows"
    other = governed_db.wrap(lite, identity=Identity("other-bot", kind="agent"), policy=policy)
    assert other.execute("SELECT 1").fetchone() == (1,)


# -- PostgreSQL -----------------------------------------------------------------------------------

@pytest.mark.postgres
def test_postgres_refusals_never_reach_server(pg_conn: Any, unique: str) -> None:
    """DROP, smuggled second statements and DML in a CTE are refused; the table and rows remain."""
    table = f"gd_e2e_{unique}"
    with pg_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, total int)")
        cur.execute(f"INSERT INTO {table} VALUES (1, 10), (2, 20)")
    try:
        conn = governed_db.wrap(pg_conn, identity=AGENT)
        cur = conn.cursor()
        for sql in (
            f"DROP TABLE {table}",
            f"TRUNCATE {table}",
            f"SELECT 'a\\'; DROP TABLE {table}; --'",
            f"WITH d AS (DELETE FROM {table} RETURNING *) SELECT * FROM d",
            f"EXPLAIN ANALYZE DELETE FROM {table}",
            f"DO $$ BEGIN EXECUTE 'DROP TABLE {table}'; END $$",
            "SELECT pg_sleep(5)",
        ):
            with pytest.raises(GuardrailViolation):
                cur.execute(sql)
        assert _count(pg_conn, table) == 2
        cur.execute(f"SELECT E'\\'; DROP TABLE {table}; --' AS s")
        assert cur.fetchone()[0].startswith("'")
        for ok in ("SELECT 1", "SELECT version()", "SHOW server_version",
                   "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
                   "SET datestyle TO ISO", f"UPDATE {table} SET total = 11 WHERE id = 1"):  # fmt: skip
            cur.execute(ok)
        assert _count(pg_conn, table) == 2
    finally:
        with pg_conn.cursor() as raw:
            raw.execute(f"DROP TABLE IF EXISTS {table}")


# -- MariaDB --------------------------------------------------------------------------------------

@pytest.mark.mariadb
def test_mariadb_refusals_never_reach_server(mysql_conn: Any, unique: str) -> None:
    """MySQL-specific tricks are refused before the server; driver housekeeping passes."""
    table = f"gd_e2e_{unique}"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, total int)")
        cur.execute(f"INSERT INTO {table} VALUES (1, 10), (2, 20)")
    try:
        conn = governed_db.wrap(mysql_conn, identity=AGENT)
        cur = conn.cursor()
        for sql in (
            f"DELETE FROM {table} LIMIT 1",
            f"DROP TABLE {table}",
            f"SELECT 1 /*!50000 , (SELECT COUNT(*) FROM {table}) */",
            f"ANALYZE DELETE FROM {table}",
            "SELECT SLEEP(3)",
            f"SELECT * FROM {table} INTO OUTFILE '/tmp/{table}.txt'",
            "SET GLOBAL general_log = 0",
        ):
            with pytest.raises(GuardrailViolation):
                cur.execute(sql)
        assert _count(mysql_conn, table) == 2
        for ok in ("SET NAMES utf8mb4", "SHOW VARIABLES LIKE 'sql_mode'", "SELECT DATABASE()", "SELECT @@version",
                   f"DESCRIBE {table}", f"DELETE FROM {table} WHERE id = 2"):  # fmt: skip
            cur.execute(ok)
        assert _count(mysql_conn, table) == 1
    finally:
        with mysql_conn.cursor() as raw:
            raw.execute(f"DROP TABLE IF EXISTS {table}")


# -- security review: the evasions against real servers ------------------------------------------

@pytest.mark.mariadb
def test_mariadb_review_evasions_refused(mysql_conn: Any, unique: str) -> None:
    """id=0--id, sql_mode writes, backslash-quoted writes, READ WRITE and @v := never reach MariaDB."""
    table = f"gd_rv_{unique}"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name varchar(20))")
        cur.execute(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    try:
        conn = governed_db.wrap(mysql_conn, identity=AGENT, environment="production")
        cur = conn.cursor()
        for sql in (
            f"DELETE FROM {table} WHERE id=0--id",
            "SET SESSION sql_mode='NO_BACKSLASH_ESCAPES'",
            f"DELETE FROM {table} WHERE name = 'x\\' OR 1=1 -- '",
            "SET SESSION TRANSACTION READ WRITE",
            f"SELECT @q := name FROM {table}",
            "SELECT `load_file`('/etc/hostname')",
        ):
            with pytest.raises(GuardrailViolation):
                cur.execute(sql)
        assert _count(mysql_conn, table) == 3
        cur.execute("SELECT @@sql_mode")
        assert "NO_BACKSLASH_ESCAPES" not in cur.fetchone()[0]
        for ok in (f"DELETE FROM {table} WHERE id = 3 -- tidy", f"SELECT id - -1 FROM {table} WHERE id = 1",
                   "START TRANSACTION", "COMMIT"):  # fmt: skip
            cur.execute(ok)
        assert _count(mysql_conn, table) == 2
    finally:
        with mysql_conn.cursor() as raw:
            raw.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.postgres
def test_postgres_review_evasions_refused(pg_conn: Any, unique: str) -> None:
    """MERGE ON true, RESET ROLE/ALL, READ WRITE, query_to_xml, quoted pg_read_file, pg_stats: refused."""
    table = f"gd_rv_{unique}"
    with pg_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text)")
        cur.execute(f"INSERT INTO {table} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    try:
        conn = governed_db.wrap(pg_conn, identity=AGENT, environment="production")
        cur = conn.cursor()
        for sql in (
            f"MERGE INTO {table} USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE",
            f"ALTER TABLE {table} ALTER COLUMN name TYPE text USING NULL",
            f"ALTER TABLE {table} RENAME COLUMN name TO label",
            "RESET ALL",
            "RESET ROLE",
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            "SELECT query_to_xml('SELECT rolname FROM pg_authid', true, false, '')",
            "SELECT \"pg_read_file\"('/etc/hostname')",
            f"SELECT most_common_vals FROM pg_stats WHERE tablename = '{table}'",
        ):
            with pytest.raises(GuardrailViolation):
                cur.execute(sql)
        assert _count(pg_conn, table) == 3
        with pg_conn.cursor() as raw:
            raw.execute(f"SELECT count(name) FROM {table}")
            assert raw.fetchone()[0] == 3
        cur.execute(f"MERGE INTO {table} t USING (SELECT 3 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE")
        for ok in ("BEGIN", "COMMIT", "BEGIN READ ONLY", "ROLLBACK"):
            cur.execute(ok)
        assert _count(pg_conn, table) == 2
    finally:
        with pg_conn.cursor() as raw:
            raw.execute(f"DROP TABLE IF EXISTS {table}")


def test_duckdb_file_scan_refused(tmp_path: Path) -> None:
    """DuckDB's FROM '/path/file.csv' and quoted read_text() never read the file; plain tables still work."""
    duckdb = pytest.importorskip("duckdb")
    secret = tmp_path / "secret.csv"
    secret.write_text("a,b\n1,file-secret\n")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE orders (id int)")
    conn = governed_db.wrap(raw, identity=AGENT, environment="production")
    for sql in (f"SELECT * FROM '{secret}'", f"SELECT * FROM \"read_text\"('{secret}')",
                f"SELECT * FROM read_json_objects('{secret}')", "SELECT * FROM 'https://example.com/x.csv'"):  # fmt: skip
        with pytest.raises(GuardrailViolation):
            conn.execute(sql)
    assert conn.execute("SELECT count(*) FROM orders").fetchall() == [(0,)]


CROSS_DB_DENIED = {"rules": {"cross-database": "deny"}}


def test_mariadb_own_database_qualifier_is_not_cross_database(mysql_conn: Any, mysql_kw: dict[str, Any],
                                                               unique: str) -> None:
    """`db`.`t` naming the connected database runs (DESCRIBE, SELECT); another database is still refused."""
    table, db = f"gdx_{unique}", mysql_kw["database"]
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int)")
    try:
        conn = governed_db.wrap(mysql_conn, identity=AGENT, environment="production", policy=CROSS_DB_DENIED,
                                audit=False)
        with conn.cursor() as cur:
            cur.execute(f"DESCRIBE `{db}`.`{table}`")
            assert [r[0] for r in cur.fetchall()] == ["id"]
            cur.execute(f"SELECT count(*) FROM `{db}`.`{table}`")
            assert cur.fetchone() == (0,)
            with pytest.raises(GuardrailViolation) as other:
                cur.execute(f"SELECT * FROM `other_{unique}`.`{table}`")
            assert other.value.rules == ("cross-database",)
    finally:
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")


def test_mariadb_after_use_every_qualifier_counts_again(mysql_conn: Any, mysql_kw: dict[str, Any], unique: str,
                                                        spans: Any) -> None:
    """Once USE ran, the connection's database is unknown: `db`.`t` is flagged (warned) again."""
    provider, exporter = spans
    table, db = f"gdx_{unique}", mysql_kw["database"]
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int)")
    try:
        conn = governed_db.wrap(mysql_conn, identity=AGENT, environment="production", audit=False,
                                tracer_provider=provider)
        with conn.cursor() as cur:
            cur.execute(f"DESCRIBE `{db}`.`{table}`")
            cur.execute(f"USE `{db}`")
            cur.execute(f"DESCRIBE `{db}`.`{table}`")
        rules = [tuple(s.attributes.get("governed_db.rules") or ()) for s in exporter.get_finished_spans()
                 if s.name != "governed_db.result"]
        assert ["cross-database" in r for r in rules] == [False, True, True]
    finally:
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")


def test_mariadb_sqlalchemy_has_table_is_not_cross_database(mysql_conn: Any, mysql_kw: dict[str, Any],
                                                            unique: str, spans: Any) -> None:
    """SQLAlchemy's has_table sends DESCRIBE `db`.`t`: it passes under a policy denying cross-database."""
    sa = pytest.importorskip("sqlalchemy")
    from governed_db.integrations.sqlalchemy import create_engine

    provider, exporter = spans
    table = f"gdx_{unique}"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int)")
    try:
        kw = mysql_kw
        engine = create_engine(f"mysql+pymysql://{kw['user']}@{kw['host']}:{kw['port']}/{kw['database']}",
                               identity=AGENT, environment="production", policy=CROSS_DB_DENIED,
                               tracer_provider=provider, audit=False)
        inspector = sa.inspect(engine)
        assert inspector.has_table(table) and not inspector.has_table(f"{table}_missing")
        describes = [s for s in exporter.get_finished_spans()
                     if str(s.attributes.get("db.query.text", "")).upper().startswith("DESCRIBE")]
        assert describes and all("cross-database" not in (s.attributes.get("governed_db.rules") or ())
                                 for s in describes)
        engine.dispose()
    finally:
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
