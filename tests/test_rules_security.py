"""Security-review holes, each both ways: the evasion refused in production, its innocent look-alike allowed."""

from __future__ import annotations

import pytest

from governed_db.policy import evaluate
from governed_db.sql.analysis import analyze

# (hole, dialect, sql, rule expected to fire, production action)
REFUSED = [
    # 1. MySQL reads `--x` as two minus signs: id=0--id is id = 0 - (-id), true for every row
    ("1 mysql --x", "mysql", "DELETE FROM v WHERE id=0--id", "tautological-where", "deny"),
    ("1 mysql --x", "mysql", "UPDATE v SET a = 1 WHERE id=0--id+0", "tautological-where", "deny"),
    ("1 mysql --x", "mysql", "DELETE FROM v WHERE id = 1--id-1", "undecidable-where", "require_approval"),
    ("1 mysql --x", "mariadb", "DELETE FROM v WHERE id=0--id", "tautological-where", "deny"),
    ("1 mysql --nbsp", "mysql", "DELETE FROM v WHERE id=1 --\u00a0x\nOR 1=1", "unparseable", "deny"),
    # 2. sql_mode and backslash-escaped quotes
    ("2 sql_mode", "mysql", "SET SESSION sql_mode='NO_BACKSLASH_ESCAPES'", "settings-critical", "deny"),
    ("2 sql_mode", "mysql", "SET sql_mode = 'ANSI_QUOTES'", "settings-critical", "deny"),
    ("2 sql_mode", "mysql", "SET @@session.sql_mode = 'NO_BACKSLASH_ESCAPES'", "settings-critical", "deny"),
    ("2 sql_mode", "mysql", "SET GLOBAL sql_mode = ''", "settings-critical", "deny"),
    ("2 backslash", "mysql", "DELETE FROM v WHERE name = 'x\\' OR 1=1 -- '", "backslash-quote", "require_approval"),
    ("2 backslash", "mariadb", "UPDATE v SET a = 'p\\\\\\'q' WHERE id = 1", "backslash-quote", "require_approval"),
    ("2 backslash", "mysql", 'INSERT INTO v (name) VALUES ("x\\" OR 1=1 -- ")', "backslash-quote", "require_approval"),
    # a read whose other reading (NO_BACKSLASH_ESCAPES set outside governed_db) reaches elsewhere
    ("2 backslash", "mysql",
     "SELECT * FROM v WHERE name = 'x\\' UNION SELECT authentication_string FROM mysql.user -- '",
     "backslash-quote", "require_approval"),
    ("2 backslash", "mysql", "SELECT * FROM v WHERE name = 'x\\' OR SLEEP(5) -- '", "backslash-quote",
     "require_approval"),
    # 3. MERGE with an unbounded ON
    ("3 merge", "postgres", "MERGE INTO v USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE", "tautological-where",
     "deny"),
    ("3 merge", "postgres", "MERGE INTO v USING (SELECT 1 AS k) s ON 1 = 1 WHEN MATCHED THEN UPDATE SET a = 0",
     "tautological-where", "deny"),
    ("3 merge", "postgres", "MERGE INTO v USING s ON v.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE",
     "undecidable-where", "require_approval"),
    ("3 merge", "duckdb", "MERGE INTO v USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE", "tautological-where",
     "deny"),
    # 4. functions that run SQL the analyser never sees; pg_notify
    ("4 dynamic", "postgres", "SELECT query_to_xml('SELECT rolname FROM pg_authid', true, false, '')",
     "function-dynamic-sql", "deny"),
    ("4 dynamic", "postgres", "SELECT query_to_xml_and_xmlschema('SELECT 1', true, false, '')",
     "function-dynamic-sql", "deny"),
    ("4 dynamic", "postgres", "SELECT query_to_xmlschema('SELECT 1', true, false, '')", "function-dynamic-sql", "deny"),
    ("4 dynamic", "postgres", "SELECT table_to_xml('customers', true, false, '')", "function-dynamic-sql", "deny"),
    ("4 dynamic", "postgres", "SELECT schema_to_xml('public', true, false, '')", "function-dynamic-sql", "deny"),
    ("4 dynamic", "postgres", "SELECT database_to_xml(true, false, '')", "function-dynamic-sql", "deny"),
    ("4 dynamic", "postgres", "SELECT cursor_to_xml('c', 10, true, false, '')", "function-dynamic-sql", "deny"),
    ("4 dynamic", "postgres", "SELECT word FROM ts_stat('SELECT to_tsvector(name) FROM t')", "function-dynamic-sql",
     "deny"),
    ("4 dynamic", "postgres", "SELECT ts_rewrite('a'::tsquery, 'SELECT t, s FROM aliases')", "function-dynamic-sql",
     "deny"),
    ("4 notify", "postgres", "SELECT pg_notify('c', (SELECT ssn FROM t LIMIT 1))", "function-notify",
     "require_approval"),
    # 5. statements that undo database-side protections
    ("5 reset", "postgres", "RESET ALL", "settings-critical", "deny"),
    ("5 reset", "postgres", "RESET default_transaction_read_only", "settings-critical", "deny"),
    ("5 reset", "postgres", "RESET statement_timeout", "settings-critical", "deny"),
    ("5 read write", "postgres", "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "settings-critical",
     "deny"),
    ("5 read write", "postgres", "BEGIN READ WRITE", "settings-critical", "deny"),
    ("5 read write", "postgres", "START TRANSACTION READ WRITE", "settings-critical", "deny"),
    ("5 read write", "postgres", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE", "settings-critical",
     "deny"),
    ("5 read write", "postgres", "SET TRANSACTION READ WRITE", "settings-critical", "deny"),
    ("5 role", "postgres", "RESET ROLE", "session-identity", "deny"),
    ("5 role", "postgres", "RESET SESSION AUTHORIZATION", "session-identity", "deny"),
    ("5 role", "postgres", "DISCARD ALL", "session-identity", "deny"),
    ("5 read write", "mysql", "SET SESSION TRANSACTION READ WRITE", "settings-critical", "deny"),
    ("5 read write", "mysql", "SET TRANSACTION READ WRITE", "settings-critical", "deny"),
    ("5 read write", "mysql", "START TRANSACTION READ WRITE", "settings-critical", "deny"),
    # 6. renames and type changes
    ("6 rename", "postgres", "ALTER TABLE t RENAME COLUMN ssn TO note", "schema-rewrite", "require_approval"),
    ("6 rename", "postgres", "ALTER TABLE t RENAME TO u", "schema-rewrite", "require_approval"),
    ("6 retype", "postgres", "ALTER TABLE t ALTER COLUMN name TYPE text USING NULL", "schema-rewrite",
     "require_approval"),
    ("6 retype", "postgres", "ALTER TABLE t ALTER COLUMN name SET DATA TYPE varchar(2)", "schema-rewrite",
     "require_approval"),
    ("6 rename", "mysql", "ALTER TABLE t RENAME COLUMN ssn TO note", "schema-rewrite", "require_approval"),
    ("6 rename", "mysql", "RENAME TABLE t TO u", "schema-rewrite", "require_approval"),
    ("6 retype", "mysql", "ALTER TABLE t MODIFY COLUMN name varchar(2)", "schema-rewrite", "require_approval"),
    ("6 retype", "mysql", "ALTER TABLE t CHANGE ssn note text", "schema-rewrite", "require_approval"),
    ("6 rename", "sqlite", "ALTER TABLE t RENAME COLUMN ssn TO note", "schema-rewrite", "require_approval"),
    # 7. quoted function names
    ("7 quoted", "postgres", "SELECT \"pg_read_file\"('/etc/hostname')", "function-file-access", "deny"),
    ("7 quoted", "postgres", "SELECT pg_catalog.\"pg_read_file\"('/etc/hostname')", "function-file-access", "deny"),
    ("7 quoted", "postgres", 'SELECT "pg_sleep"(1)', "function-delay", "deny"),
    ("7 quoted", "postgres", "SELECT \"lo_import\"('/etc/passwd')", "function-file-access", "deny"),
    ("7 quoted", "postgres", "SELECT * FROM \"pg_ls_dir\"('.')", "function-file-access", "deny"),
    ("7 quoted", "postgres", "SELECT \"set_config\"('log_statement', 'none', false)", "function-server-control",
     "deny"),
    ("7 quoted", "mysql", "SELECT `load_file`('/etc/hostname')", "function-file-access", "deny"),
    ("7 quoted", "mysql", "SELECT `sleep`(1)", "function-delay", "deny"),
    ("7 quoted", "duckdb", "SELECT content FROM \"read_text\"('/etc/hostname')", "function-file-access", "deny"),
    # 8. DuckDB file and network reads
    ("8 duckdb", "duckdb", "SELECT * FROM '/path/file.csv'", "file-io", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM '/data/events.json'", "file-io", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM 'data/*.parquet'", "file-io", "deny"),
    ("8 duckdb", "duckdb", 'SELECT * FROM "x.parquet"', "file-io", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM 'https://example.com/x.parquet'", "file-io", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM 's3://bucket/key'", "file-io", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM t JOIN 'gcs://b/k.csv' f ON t.id = f.id", "file-io", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM read_json_objects('/x.json')", "function-file-access", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM read_ndjson_objects('/x.json')", "function-file-access", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM read_json_objects_auto('/x.json')", "function-file-access", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM read_ndjson_auto('/x.json')", "function-file-access", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM sniff_csv('/x.csv')", "function-file-access", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM parquet_metadata('/x.parquet')", "function-file-access", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM parquet_schema('/x.parquet')", "function-file-access", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM read_xlsx('/x.xlsx')", "function-file-access", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM read_blob('/etc/hostname')", "function-file-access", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM glob('/etc/*')", "function-file-access", "deny"),
    ("8 duckdb", "duckdb", "SELECT * FROM read_csv('https://example.com/x.csv')", "file-io", "deny"),
    # 9. statistics catalogs hold column values
    ("9 stats", "postgres", "SELECT most_common_vals FROM pg_stats WHERE tablename = 'customers'", "system-catalog",
     "deny"),
    ("9 stats", "postgres", "SELECT * FROM pg_catalog.pg_statistic", "system-catalog", "deny"),
    ("9 stats", "postgres", "SELECT * FROM pg_stats_ext", "system-catalog", "deny"),
    ("9 stats", "postgres", "SELECT * FROM pg_stats_ext_exprs", "system-catalog", "deny"),
    ("9 stats", "mysql", "SELECT histogram FROM information_schema.column_statistics", "system-catalog", "deny"),
    ("9 stats", "mysql", "SELECT min_value FROM mysql.column_stats", "system-catalog", "deny"),
    ("9 stats", "sqlite", "SELECT sample FROM sqlite_stat4", "system-catalog", "deny"),
    # 10. user-variable assignment inside SELECT
    ("10 @v :=", "mysql", "SELECT @q := full_name FROM t", "variable-copy", "deny"),
    ("10 @v :=", "mysql", "SELECT id, @q := (SELECT ssn FROM t LIMIT 1) FROM u", "variable-copy", "deny"),
    # 11. always-true WHERE forms
    ("11 where", "postgres", "DELETE FROM v WHERE id = id + 0", "tautological-where", "deny"),
    ("11 where", "postgres", "DELETE FROM v WHERE id * 1 = id", "tautological-where", "deny"),
    ("11 where", "postgres", "DELETE FROM v WHERE id * 0 = 0", "tautological-where", "deny"),
    ("11 where", "postgres", "DELETE FROM v WHERE ctid IS NOT NULL", "tautological-where", "deny"),
    ("11 where", "sqlite", "DELETE FROM v WHERE rowid IS NOT NULL", "tautological-where", "deny"),
    ("11 where", "postgres", "DELETE FROM v WHERE v IS NOT NULL", "undecidable-where", "require_approval"),
    ("11 where", "postgres", "DELETE FROM v WHERE id IN (SELECT id FROM v)", "tautological-where", "deny"),
    ("11 where", "postgres", "UPDATE v SET a = 1 WHERE id <> id + 1", "undecidable-where", "require_approval"),
    ("11 where", "mysql", "DELETE FROM v WHERE id = 1 XOR 1", "undecidable-where", "require_approval"),
    ("11 where", "postgres", "DELETE FROM v USING u WHERE u.x = 1", "undecidable-where", "require_approval"),
    ("11 where", "postgres", "DELETE FROM v WHERE EXISTS (SELECT 1 FROM u WHERE u.a = 1)", "undecidable-where",
     "require_approval"),
    ("11 where", "postgres", "UPDATE v SET a = 1 FROM u WHERE u.id = 5", "undecidable-where", "require_approval"),
    ("3 merge", "postgres", "MERGE INTO v USING s ON s.k = 1 WHEN MATCHED THEN DELETE", "undecidable-where",
     "require_approval"),
    ("5 table switches", "postgres", "ALTER TABLE t DISABLE TRIGGER ALL", "settings-critical", "deny"),
    ("5 table switches", "postgres", "ALTER TABLE t DISABLE ROW LEVEL SECURITY", "settings-critical", "deny"),
    ("5 table switches", "postgres", "ALTER TABLE t NO FORCE ROW LEVEL SECURITY", "settings-critical", "deny"),
    ("6 engine", "mysql", "ALTER TABLE t ENGINE=BLACKHOLE", "schema-rewrite", "require_approval"),
    ("6 tablespace", "mysql", "ALTER TABLE t DISCARD TABLESPACE", "destructive-alter", "deny"),
    ("11 where", "mysql", "DELETE FROM t WHERE NOT id = 0 OR id = 0", "undecidable-where", "require_approval"),
    # SET role = x is SET ROLE; MariaDB SET STATEMENT sql_mode=... FOR <statement>
    ("5 role", "postgres", "SET role = postgres", "session-identity", "deny"),
    ("5 role", "postgres", "SET session_authorization = postgres", "session-identity", "deny"),
    ("2 sql_mode", "mariadb", "SET STATEMENT sql_mode='NO_BACKSLASH_ESCAPES' FOR DELETE FROM v WHERE id = 1",
     "settings-critical", "deny"),
]

# Look-alikes that must keep passing in production with no configuration.
INNOCENT = [
    ("mysql", "SELECT 1 -- a comment"),
    ("mysql", "SELECT 1 --\ta tab comment"),
    ("mysql", "SELECT id - -1 FROM v"),
    ("mysql", "SELECT '--\u00a0x' AS s"),
    ("mysql", "DELETE FROM v WHERE id = 0 - 1"),
    ("mysql", "DELETE FROM v WHERE id = 1 -- trailing comment"),
    ("mysql", "SET NAMES utf8mb4"),
    ("mysql", "SHOW VARIABLES LIKE 'sql_mode'"),
    ("mysql", "SELECT @@sql_mode"),
    ("mysql", "SELECT * FROM v WHERE name = 'x\\' OR 1=1 -- '"),  # reads stay allowed: the same table either way
    ("mysql", "SELECT 'it\\'s' AS s"),
    ("mysql", "SELECT * FROM v WHERE note LIKE '%\\'%'"),
    ("mysql", "UPDATE v SET name = 'O''Brien' WHERE id = 1"),
    ("mysql", "UPDATE v SET name = 'C:\\\\temp\\\\' WHERE id = 1"),
    ("mysql", "UPDATE v SET name = %s WHERE id = %s"),
    ("postgres", "MERGE INTO v USING src s ON v.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a"),
    ("postgres", "MERGE INTO v USING (SELECT 1) s ON true WHEN MATCHED AND v.id = 3 THEN DELETE"),
    ("postgres", "MERGE INTO v USING src s ON v.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)"),
    ("postgres", "SELECT xmlelement(name a, id) FROM t"),
    ("postgres", "SELECT ts_rewrite('a & b'::tsquery, 'a'::tsquery, 'c'::tsquery)"),
    ("postgres", "NOTIFY jobs, 'ready'"),
    ("postgres", "LISTEN jobs"),
    ("postgres", "BEGIN"),
    ("postgres", "BEGIN READ ONLY"),
    ("postgres", "START TRANSACTION"),
    ("postgres", "START TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
    ("postgres", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"),
    ("postgres", "SET TRANSACTION READ ONLY"),
    ("postgres", "DISCARD TEMP"),
    ("mysql", "START TRANSACTION"),
    ("mysql", "START TRANSACTION READ ONLY"),
    ("mysql", "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"),
    ("sqlite", "BEGIN"),
    ("postgres", "SELECT \"PG_READ_FILE\" FROM t"),
    ("postgres", "SELECT \"pg_read_file_note\"('x')"),
    ("mysql", "SELECT `name` FROM `load_files`"),
    ("duckdb", 'SELECT * FROM "orders"'),
    ("duckdb", "SELECT * FROM orders o JOIN customers c ON o.cid = c.id"),
    ("duckdb", "SELECT 'https://example.com' AS url"),
    ("duckdb", "SELECT upper('https://example.com'), regexp_matches(url, 's3://') FROM links"),
    ("duckdb", "SELECT * FROM t WHERE path = '/etc/x.csv'"),
    ("postgres", "SELECT * FROM read_csv_metadata"),
    ("postgres", "SELECT c.relname FROM pg_catalog.pg_class c"),
    ("postgres", "SELECT attname FROM pg_attribute WHERE attrelid = 't'::regclass"),
    ("postgres", "SELECT relname, n_live_tup FROM pg_stat_user_tables"),
    ("mysql", "SELECT @n := @n + 1 AS rownum, id FROM t"),
    ("mysql", "SELECT id INTO @last FROM t WHERE id = 1"),
    ("mysql", "SET @x := 5"),
    ("postgres", "DELETE FROM v WHERE id = 3"),
    ("postgres", "DELETE FROM v WHERE id > -1"),  # undecidable statically: left alone by design
    ("postgres", "DELETE FROM v WHERE processed_at IS NOT NULL"),
    ("postgres", "DELETE FROM v WHERE id IN (SELECT id FROM v WHERE stale)"),
    ("postgres", "DELETE FROM v WHERE id IN (SELECT v_id FROM gone)"),
    ("postgres", "DELETE FROM v WHERE EXISTS (SELECT 1 FROM u WHERE u.v_id = v.id)"),
    ("postgres", "UPDATE v SET a = u.a FROM u WHERE u.id = v.id"),
    ("postgres", "DELETE FROM v AS x WHERE x.id = 1"),
    ("mysql", "DELETE v FROM v JOIN u ON u.id = v.id WHERE u.x = 1"),
    ("postgres", "MERGE INTO v t USING s ON t.id = s.id WHEN MATCHED THEN DELETE"),
    ("postgres", "UPDATE v SET a = 1 WHERE updated_at > created_at"),
    ("postgres", "DELETE FROM v WHERE id * 2 = 8"),
    ("mysql", "DELETE FROM v WHERE a = 1 XOR b = 2"),
    ("postgres", "ALTER TABLE t ADD COLUMN note text"),  # additive DDL keeps warning
    ("postgres", "CREATE INDEX i ON t (a)"),
    ("postgres", "ALTER TABLE t ALTER COLUMN a SET DEFAULT 0"),
    ("postgres", "ALTER TABLE t ENABLE ROW LEVEL SECURITY"),
    ("mysql", "DELETE FROM t WHERE NOT id = 0 OR id = 1"),
]


@pytest.mark.parametrize(("hole", "dialect", "sql", "rule", "action"), REFUSED, ids=[f"{r[0]}:{r[2][:40]}" for r in REFUSED])
def test_hole_refused_in_production(hole: str, dialect: str, sql: str, rule: str, action: str) -> None:
    """Each reported evasion is refused in production by the named rule with the expected action."""
    d = evaluate(sql, dialect=dialect)
    assert rule in d.rules, (hole, d.rules, d.reason)
    assert d.action.value == action, (hole, d.action, d.reason)
    assert not d.allowed


@pytest.mark.parametrize(("dialect", "sql"), INNOCENT)
def test_look_alike_still_allowed(dialect: str, sql: str) -> None:
    """Innocent look-alikes pass in production (additive DDL only warns)."""
    d = evaluate(sql, dialect=dialect)
    assert d.allowed, (d.action, d.rules, d.reason)
    assert d.action.value in ("allow", "warn")
    assert d.action.value == "allow" or d.rules == ("ddl",), d.rules


def test_mysql_double_dash_is_read_as_minus_signs() -> None:
    """MySQL `0--id` is arithmetic, exactly as the server reads it (not a comment hiding the rest)."""
    stmt = analyze("DELETE FROM v WHERE id=0--id", "mysql").statements[0]
    assert stmt.where == "tautology"
    assert "-" in stmt.expression.sql(dialect="mysql").split("WHERE", 1)[1]


def test_backslash_quote_flag_only_for_mysql_writes() -> None:
    """The ambiguity is a MySQL-family one: PostgreSQL standard strings and MySQL reads are not flagged."""
    sql = "UPDATE v SET a = 'x\\' OR 1=1 -- ' WHERE id = 1"
    assert "backslash-quote" in analyze(sql, "mysql").statements[0].flags
    assert "backslash-quote" not in analyze("SELECT 'x\\' OR 1=1 -- '", "mysql").statements[0].flags


def test_staging_is_lighter_for_review_rules() -> None:
    """Staging warns where production waits for approval (schema rewrites, backslash quotes, pg_notify)."""
    for dialect, sql in [("postgres", "ALTER TABLE t RENAME COLUMN a TO b"),
                         ("mysql", "UPDATE v SET a = 'x\\'y' WHERE id = 1"),
                         ("postgres", "SELECT pg_notify('c', 'x')")]:  # fmt: skip
        assert evaluate(sql, dialect=dialect, environment="staging").action.value == "warn", sql
