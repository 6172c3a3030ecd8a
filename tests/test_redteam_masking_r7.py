"""Red-team round 7 on SQLite: the order an index on a masked column reads rows in (decision 0160) still showed
through a ``count()`` over a frame of rows and through sums whose rounding or overflow depends on the order
their rows are added in (decision 0225); and, on the over-refusal side, a SQLite trigger's ``BEGIN ... END`` body
was split into several statements (decision 0226).

An agent identity in production with zero configuration. Each finding shows the oracle on the raw connection
(two tables that differ only in how their names sort), that the governed one observes both alike, and that
look-alikes that reveal nothing still run with exact results.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import governed_db
from tests._redteam import govern

# the same ids and cities; only the names differ, so an index on full_name reads the rows in another order
NAMES_A = ["Ivan Petrov", "Alice Smith", "Bob Jones"]  # index order: ids 2, 3, 1
NAMES_B = ["Alice Smith", "Bob Jones", "Ivan Petrov"]  # index order: ids 1, 2, 3


def _pair(names: list[str]) -> tuple[Any, Any]:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE t (id integer primary key, full_name text, email text, city text, amount real)")
    raw.execute("CREATE INDEX t_name ON t(full_name)")  # an application's index: SQLite scans it (covering)
    raw.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        [(i + 1, n, f"user{i}@example.com", "Lyon", 0.5 * (i + 1)) for i, n in enumerate(names)],
    )
    return raw, govern(raw)


def _observe(conn: Any, sql: str) -> Any:
    """What the attacker sees: the rows, that it was refused (and why), or the error."""
    try:
        return conn.execute(sql).fetchall()
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    except sqlite3.Error as e:
        return f"{type(e).__name__}: {e}"


ORDER_READERS = [
    # a frame of rows: the first row read has no row before it, so it alone counts 1
    "SELECT id, count(*) OVER (ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t",
    "SELECT id, count(id) OVER (ROWS 1 PRECEDING) FROM t",
    "SELECT id, count(*) OVER (ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE NO OTHERS) FROM t",
    "SELECT id, count(*) OVER w FROM t WINDOW w AS (ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)",
    # floating-point addition is not associative: 0.1 + 0.2 + 0.3 differs from 0.3 + 0.2 + 0.1 in the last bit
    "SELECT total(id * 0.1) FROM t",
    "SELECT sum(id * 0.1) FROM t",
    "SELECT avg(id * 0.1) FROM t",
    "SELECT sum(DISTINCT id * 0.1) FROM t",
    "SELECT total(x) FROM (SELECT id * 0.1 AS x FROM t)",
    "SELECT id, total(id * 0.1) OVER () FROM t",
    # an integer sum fails with "integer overflow" only if a running total passes 2**63 on the way
    "SELECT sum(CASE id WHEN 1 THEN 9223372036854775807 WHEN 2 THEN 1 ELSE -10 END) FROM t",
]


@pytest.mark.parametrize("sql", ORDER_READERS)
def test_results_that_follow_the_read_order_are_refused(sql: str) -> None:
    """With an index on ``full_name`` SQLite reads the rows in name order. A ``count()`` over a ROWS frame was
    exempt from ordering (only the whole partition's count is order-free), a named window's frame was not
    looked up, and sums were not seen as order-sensitive: which id counted 1, or a last-bit difference in a
    float sum (or an overflow error), said how the stored names sort. These are now ordered by the row key
    where SQL can say so, or refused naming the masked column."""
    (raw_a, gov_a), (raw_b, gov_b) = _pair(NAMES_A), _pair(NAMES_B)
    assert _observe(raw_a, sql) != _observe(raw_b, sql)  # the oracle is real
    seen_a, seen_b = _observe(gov_a, sql), _observe(gov_b, sql)
    assert seen_a == seen_b, (seen_a, seen_b)
    if sql in KEY_ORDERED:
        assert seen_a == KEY_ORDERED[sql], seen_a
    else:
        assert "refused" in seen_a and "full_name" in seen_a, seen_a


#: a frame first in its window gets the key before it (it was written after, which did not parse, and refused:
#: decision 0320): counted in key order
KEY_ORDERED = {
    ORDER_READERS[0]: [(1, 1), (2, 2), (3, 2)],
    ORDER_READERS[1]: [(1, 1), (2, 2), (3, 2)],
    ORDER_READERS[2]: [(1, 2), (2, 3), (3, 2)],
}


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("SELECT sum(amount), total(amount), avg(id), sum(1), count(*) FROM t", [(3.0, 3.0, 2.0, 3, 3)]),
        ("SELECT total(x) FROM (SELECT amount AS x FROM t)", [(3.0,)]),
        (
            "SELECT id, count(*) OVER (ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) FROM t ORDER BY id",
            [(1, 3), (2, 3), (3, 3)],
        ),
        (
            "SELECT id, count(*) OVER (ORDER BY id ROWS 1 PRECEDING) FROM t ORDER BY id",
            [(1, 1), (2, 2), (3, 2)],
        ),
        (
            "SELECT id, count(*) OVER (PARTITION BY city ROWS 1 PRECEDING) FROM t ORDER BY id",
            [(1, 1), (2, 2), (3, 2)],
        ),
        (
            "SELECT id, sum(amount) OVER (PARTITION BY city) FROM t ORDER BY id",
            [(1, 3.0), (2, 3.0), (3, 3.0)],
        ),
        (
            "SELECT id, total(id * 0.5) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) FROM t ORDER BY id",
            [(1, 0.5), (2, 1.5), (3, 3.0)],
        ),
        ("SELECT city, sum(amount) FROM t GROUP BY city", [("Lyon", 3.0)]),
        ("SELECT id, total(id * 0.5) OVER (ORDER BY rowid) FROM t ORDER BY id", [(1, 0.5), (2, 1.5), (3, 3.0)]),
    ],
)
def test_sums_and_frames_that_do_not_follow_the_read_order_still_run(sql: str, rows: list[Any]) -> None:
    """Look-alikes: sums of a stored column or a constant, a whole-partition count, and frames ordered by the
    key (or ordered by governed_db: the PARTITION BY frame gets ``ORDER BY id``) run with exact results."""
    for names in (NAMES_A, NAMES_B):
        _, gov = _pair(names)
        assert gov.execute(sql).fetchall() == rows


def test_computed_sums_run_where_no_index_holds_a_masked_column() -> None:
    """Without an index on a masked column the rows are read in rowid order: nothing to refuse."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE t (id integer primary key, full_name text, email text)")
    raw.executemany(
        "INSERT INTO t VALUES (?, ?, ?)",
        [(1, "Ivan Petrov", "i@example.org"), (2, "Alice Smith", "a@example.org")],
    )
    gov = govern(raw)
    assert gov.execute("SELECT total(id * 0.5), avg(id * 2) FROM t").fetchall() == [(1.5, 3.0)]
    assert gov.execute("SELECT id, count(*) OVER (ROWS 1 PRECEDING) FROM t").fetchall() == [(1, 1), (2, 2)]


# -- a SQLite trigger is one statement -------------------------------------------------------------------------
def test_a_sqlite_trigger_body_is_one_statement_that_needs_approval() -> None:
    """``CREATE TRIGGER ... BEGIN a; b; END`` was split at its inner semicolons and refused as "2 statements in one
    call (CREATE TRIGGER;END)" with advice nobody can follow (a trigger cannot be sent in pieces). It is one
    statement: an agent in production gets the stored-code approval request; a person in development creates
    it and it fires."""
    from governed_db.sql.analysis import analyze

    body = "CREATE TEMP TRIGGER tr AFTER INSERT ON x BEGIN UPDATE x SET b = CASE WHEN a > 0 THEN 1 END; SELECT 1; END"
    assert [s.operation for s in analyze(body, "sqlite").statements] == ["CREATE TRIGGER"]
    # a body that is never closed, or a statement after the END, still counts as several statements
    assert (
        len(analyze("CREATE TRIGGER tr AFTER INSERT ON x BEGIN SELECT 1; DROP TABLE x", "sqlite").statements)
        == 2
    )
    assert len(analyze(body + "; DROP TABLE x", "sqlite").statements) == 2
    assert len(analyze("BEGIN; UPDATE x SET b = 1; END", "sqlite").statements) == 3

    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE x (a int, b int)")
    agent = govern(raw)
    with pytest.raises(governed_db.ApprovalRequired, match="stored-code"):
        agent.execute(body)
    person = governed_db.wrap(
        raw, identity=governed_db.Identity("dana", kind="human"), environment="development", audit=False
    )
    person.execute(body)  # runs, with a logged warning (stored-code)
    person.execute("INSERT INTO x (a) VALUES (1)")
    assert raw.execute("SELECT a, b FROM x").fetchall() == [(1, 1)]
