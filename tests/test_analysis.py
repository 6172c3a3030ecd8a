"""Analysis in the exact dialect: splitting, classes, tables, bounded writes, functions, red flags."""

from __future__ import annotations

import pytest

from governed_db.sql.analysis import MAX_ANALYSIS_CHARS, analyze


@pytest.mark.parametrize(
    ("dialect", "sql", "kinds"),
    [
        ("postgres", "SELECT 1", ["read"]),
        ("postgres", "INSERT INTO t VALUES (1)", ["write"]),
        ("postgres", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", ["write"]),
        ("postgres", "CREATE TABLE t (a int)", ["ddl"]),
        ("postgres", "GRANT SELECT ON t TO bob", ["privilege"]),
        ("postgres", "SET datestyle TO ISO", ["session"]),
        ("postgres", "SAVEPOINT s", ["transaction"]),
        ("postgres", "DO $$ BEGIN END $$", ["exec"]),
        ("postgres", "COPY t TO '/tmp/x'", ["file"]),
        ("postgres", "VACUUM t", ["admin"]),
        ("postgres", "frobnicate", ["unknown"]),
        ("sqlite", "PRAGMA table_info(t)", ["read"]),
        ("sqlite", "PRAGMA foreign_keys = ON", ["session"]),
        ("mysql", "SHOW TABLES", ["read"]),
        ("mysql", "SELECT 1; DROP TABLE t", ["read", "ddl"]),
    ],
)
def test_statement_classes(dialect: str, sql: str, kinds: list[str]) -> None:
    """Each statement gets its class after a split in the exact dialect."""
    assert [s.kind for s in analyze(sql, dialect).statements] == kinds


@pytest.mark.parametrize(
    ("dialect", "sql", "count"),
    [
        ("postgres", "SELECT E'\\'; DROP TABLE t; --'", 1),  # E'' escapes the quote
        ("postgres", "SELECT 'a\\'; DROP TABLE t; --'", 2),  # standard strings: the backslash is literal
        ("postgres", "SELECT $x$ ; $x$", 1),
        ("postgres", "SELECT 1 /* /* ; */ DROP TABLE t; */", 1),  # nested comments
        ("mysql", "SELECT 'a\\'; DROP TABLE t; -- '", 1),  # backslash escapes in MySQL
        ("mysql", "SELECT 1 --1\n; DROP TABLE t", 2),  # '--1' is not a comment in MySQL
        ("mysql", "SELECT 1 /*!50000 ; DROP TABLE t */", 2),  # executable comment: the server runs it
        ("sqlite", "SELECT 'a\\'; DROP TABLE t; --'", 2),
    ],
)
def test_split_follows_server_quoting(dialect: str, sql: str, count: int) -> None:
    """Quoting tricks split exactly as the server would split them."""
    a = analyze(sql, dialect)
    assert a.error is None
    assert len(a.statements) == count


def test_tables_schema_qualified_and_folded() -> None:
    """Unquoted identifiers fold per dialect; quoted keep their case; CTE names are not tables."""
    a = analyze('WITH r AS (SELECT 1) SELECT * FROM Sales.Orders o JOIN "Mixed".T ON true JOIN r ON true', "postgres")
    assert a.statements[0].tables_read == ("sales.orders", "Mixed.t")
    assert analyze("SELECT * FROM Main.T", "sqlite").tables == ("main.t",)
    assert analyze("SELECT * FROM Db.T", "mysql").tables == ("Db.T",)


def test_written_and_read_tables() -> None:
    """INSERT ... SELECT writes its target and reads its source."""
    s = analyze("INSERT INTO archive SELECT * FROM orders WHERE id < 5", "postgres").statements[0]
    assert s.tables_written == ("archive",) and s.tables_read == ("orders",)


@pytest.mark.parametrize(
    ("sql", "where"),
    [
        ("DELETE FROM t", "missing"),
        ("DELETE FROM t WHERE 1 = 1", "tautology"),
        ("DELETE FROM t WHERE 'a' = 'a'", "tautology"),
        ("DELETE FROM t WHERE a = a", "tautology"),
        ("DELETE FROM t WHERE (a = 1) OR TRUE", "tautology"),
        ("DELETE FROM t WHERE a IS NULL OR a IS NOT NULL", "undecidable"),
        ("DELETE FROM t WHERE a > 5 OR a <= 5", "undecidable"),
        ("DELETE FROM t WHERE a = 1", "bounded"),
        ("DELETE FROM t WHERE a = 1 AND 1 = 1", "bounded"),
        ("DELETE FROM t WHERE a = 1 OR a = 2", "bounded"),
        ("SELECT 1", None),
    ],
)
def test_where_boundedness(sql: str, where: str | None) -> None:
    """UPDATE/DELETE are judged bounded, missing, tautological or undecidable."""
    assert analyze(sql, "postgres").statements[0].where == where


@pytest.mark.parametrize(
    ("sql", "where"),
    [
        ("UPDATE t JOIN u ON t.a = u.a SET t.b = 1", "bounded"),
        ("DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id", "bounded"),
        ("DELETE t1 FROM t1 JOIN t2 ON 1 = 1", "tautology"),
        ("UPDATE t LEFT JOIN u ON t.a = u.a SET t.b = 1", "missing"),
        ("UPDATE t, u SET t.b = 1", "missing"),
        ("DELETE FROM t WHERE id", "undecidable"),
    ],
)
def test_mysql_join_bounds_and_truthiness(sql: str, where: str) -> None:
    """MySQL multi-table writes are bounded by inner-join conditions; a bare column is only truthiness."""
    assert analyze(sql, "mysql").statements[0].where == where


def test_functions_and_flags() -> None:
    """Functions called anywhere are listed; EXPLAIN ANALYZE keeps the inner statement's facts."""
    s = analyze("SELECT pg_sleep(1) FROM t WHERE x IN (SELECT lo_import('/x'))", "postgres").statements[0]
    assert {"pg_sleep", "lo_import"} <= s.functions
    e = analyze("EXPLAIN ANALYZE DELETE FROM t", "postgres").statements[0]
    assert e.kind == "write" and "explain-analyze" in e.flags and e.where == "missing"
    plain = analyze("EXPLAIN DELETE FROM t", "postgres").statements[0]
    assert plain.kind == "read" and plain.where is None


def test_normalized_drops_literals_and_comments() -> None:
    """The record keeps the shape of the statement, never its literal values or comments."""
    a = analyze("SELECT * FROM users WHERE email = 'alice@example.com' /* secret */ AND id = 42", "postgres")
    assert "alice" not in a.normalized and "42" not in a.normalized and "secret" not in a.normalized
    assert a.normalized == "SELECT * FROM users WHERE email = ? AND id = ?"


def test_limits_fail_closed() -> None:
    """Oversized or over-nested text is refused unanalysed, quickly."""
    big = analyze("SELECT '" + "x" * MAX_ANALYSIS_CHARS + "'", "postgres")
    assert big.error and "too-large" in big.flags
    deep = analyze("SELECT " + "(" * 5000 + "1" + ")" * 5000, "postgres")
    assert deep.error is not None


def test_cached_and_shared() -> None:
    """The same text and dialect return the same (cached) analysis object."""
    assert analyze("SELECT 1", "postgres") is analyze("SELECT 1", "postgres")
    assert analyze("SELECT 1", "postgres") is not analyze("SELECT 1", "mysql")


def test_unknown_dialect_fails_closed() -> None:
    """An unknown dialect name is an analysis error, not a crash."""
    assert analyze("SELECT 1", "no-such-dialect").error is not None
