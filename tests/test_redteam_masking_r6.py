"""Red-team round 6 on DuckDB: a PIVOT groups its rows, and the standard PIVOT's columns.

An agent identity in production with zero configuration. The finding shows the oracle on the raw connection,
that the governed one observes a right and a wrong guess alike, and that look-alikes that reveal nothing still
run (and are not over-masked).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import govern

duckdb = pytest.importorskip("duckdb")

ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "Paris"),
    (2, "Ivan Petrov", "ivan@example.org", "219-45-1234", "Lyon"),
]
RIGHT, WRONG = "Alice Smith", "Bob Jones"


@pytest.fixture
def conns() -> Iterator[tuple[Any, Any]]:
    raw = duckdb.connect()
    raw.execute("CREATE TABLE t (id int primary key, full_name text, email text, ssn text, city text)")
    raw.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [list(r) for r in ROWS])
    yield raw, govern(raw)
    raw.close()


def _observe(conn: Any, sql: str) -> Any:
    """What the attacker sees: the rows, that it was refused, or the error's class."""
    try:
        return conn.execute(sql).fetchall()
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    except Exception as e:
        return type(e).__name__


# a guessed name put next to the stored ones: a PIVOT groups equal names into one row, so how many rows come
# out (or which counts share a row) says whether the guess is a stored name
PIVOT_GROUPING = [
    "SELECT count(*) FROM (PIVOT (SELECT full_name, city FROM t UNION ALL SELECT '{g}', 'Paris') ON city "
    "USING count(*))",
    "SELECT count(*) FROM (PIVOT (SELECT full_name, city FROM t UNION ALL SELECT '{g}', 'Paris') ON city)",
    "SELECT count(*) FROM (PIVOT (SELECT id, full_name, city FROM t UNION ALL SELECT 9, '{g}', 'Paris') "
    "ON city USING max(id) GROUP BY full_name)",
    "SELECT * FROM (PIVOT (SELECT full_name, city FROM t WHERE id = 1 UNION ALL SELECT '{g}', 'Lyon') ON city "
    "USING count(*))",
    "SELECT count(*) FROM (SELECT * FROM (SELECT full_name, city FROM t UNION ALL SELECT '{g}', 'Paris') "
    "PIVOT (count(*) FOR city IN ('Paris', 'Lyon')))",
]


@pytest.mark.parametrize("sql", PIVOT_GROUPING)
def test_pivot_groups_by_masked_columns_are_refused(conns: tuple[Any, Any], sql: str) -> None:
    """A PIVOT groups its rows by its GROUP BY or, without one, by every column it neither pivots on nor
    aggregates. Only its ON columns and aggregates were checked, so grouping by a masked name beside a
    guessed one said (by the number of rows) whether the guess was stored: an equality oracle. The grouped
    columns are now checked too, and a masked one is refused, naming it."""
    raw, gov = conns
    assert _observe(raw, sql.format(g=RIGHT)) != _observe(raw, sql.format(g=WRONG))  # the oracle is real
    right, wrong = _observe(gov, sql.format(g=RIGHT)), _observe(gov, sql.format(g=WRONG))
    assert right == wrong, (right, wrong)
    assert "refused" in right and "full_name" in right and "GROUP BY" in right, right


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("SELECT * FROM (PIVOT (SELECT id, city FROM t) ON city USING count(*))", [(1, 0, 1), (2, 1, 0)]),
        ("SELECT * FROM (PIVOT t ON city USING max(id) GROUP BY id)", [(1, None, 1), (2, 2, None)]),
        ("SELECT * FROM (PIVOT (SELECT id, city FROM t) ON city USING max(id))", [(2, 1)]),
        (
            "SELECT * FROM t PIVOT (count(*) FOR city IN ('Paris', 'Lyon') GROUP BY id)",
            [(1, 1, 0), (2, 0, 1)],
        ),
        (
            "SELECT * FROM (SELECT id, city FROM t) PIVOT (count(*) FOR city IN ('Paris', 'Lyon'))",
            [(1, 1, 0), (2, 0, 1)],
        ),
        (
            "SELECT p.Paris, id FROM t PIVOT (count(*) FOR city IN ('Paris', 'Lyon') GROUP BY id) p",
            [(1, 1), (0, 2)],
        ),
        (
            "SELECT * FROM (SELECT id, city FROM t) s PIVOT (count(*) AS c, max(id) FOR city IN ('Paris', 'Lyon'))",
            [(1, 1, 1, 2)],
        ),
    ],
)
def test_pivots_grouped_by_unmasked_columns_run_exactly(
    conns: tuple[Any, Any], sql: str, rows: list[Any]
) -> None:
    """Look-alikes grouped by unmasked columns still run, with exact cells: the standard form's columns
    named after its IN values (``Paris``) were untraceable and masked to NULL; they are now traced to the
    aggregates of the FOR column's rows (nothing sensitive here), and a pivot that groups by nothing is no
    longer refused for an empty probe."""
    raw, gov = conns
    assert raw.execute(sql).fetchall() == rows
    assert gov.execute(sql).fetchall() == rows


def test_standard_pivot_of_masked_cells_is_refused(conns: tuple[Any, Any]) -> None:
    """``max(full_name)`` under a standard PIVOT's IN-value column is refused (masking cannot follow it)."""
    _, gov = conns
    with pytest.raises(governed_db.GuardrailViolation, match="full_name"):
        gov.execute("SELECT * FROM t PIVOT (max(full_name) FOR city IN ('Paris', 'Lyon') GROUP BY id)")


# -- relation members that run the relation to measure it ------------------------------------------------------
MEASURES = {
    "filter().shape": lambda c, g: c.table("t").filter(f"full_name = '{g}'").shape,
    "distinct().shape": lambda c, g: c.sql(f"SELECT full_name FROM t UNION ALL SELECT '{g}'").distinct().shape,
    "pivot().shape": lambda c, g: c.sql(f"SELECT full_name, city FROM t UNION ALL SELECT '{g}', 'Paris'")
    .pivot("city", ["Paris"], "count(*)")
    .shape,
    "explain(type='analyze')": lambda c, g: c.table("t").filter(f"full_name = '{g}'").explain(type="analyze"),
}


def _measure(conn: Any, case: str, guess: str) -> Any:
    try:
        out = MEASURES[case](conn, guess)
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    # a plan names the guess itself (its filter): what it says about the rows is the counts
    return out if not isinstance(out, str) else out.replace(guess, "GUESS").count("0 rows")


@pytest.mark.parametrize("case", sorted(MEASURES))
def test_relation_measures_are_judged_like_len(conns: tuple[Any, Any], case: str) -> None:
    """``rel.shape`` counts the relation's rows and ``rel.explain(type='analyze')`` runs it and reports the rows
    each operator produced; both were passed through as metadata, so a filter, DISTINCT or PIVOT refused on
    every read still answered through them (``(1, 5)`` vs ``(0, 5)``, "1 row" vs "0 rows"). They are now
    judged like ``len(rel)``."""
    raw, gov = conns
    assert _measure(raw, case, RIGHT) != _measure(raw, case, WRONG)  # the oracle is real
    right, wrong = _measure(gov, case, RIGHT), _measure(gov, case, WRONG)
    assert right == wrong, (right, wrong)
    assert "refused" in str(right) and "full_name" in str(right), right


def test_relation_measures_of_innocent_relations_still_answer(conns: tuple[Any, Any]) -> None:
    """Look-alikes that filter or pivot on unmasked columns keep their shape and plan."""
    raw, gov = conns
    assert gov.table("t").shape == raw.table("t").shape == (2, 5)
    assert gov.table("t").filter("id = 1").shape == (1, 5)
    pivot = "SELECT id, city FROM t"
    assert gov.sql(pivot).pivot("city", ["Paris"], "count(*)").shape == (2, 2)
    assert len(gov.sql(pivot).pivot("city", ["Paris"], "count(*)")) == 2  # was refused: its CTE was not found
    assert "1 row" in gov.table("t").filter("id = 1").explain(type="analyze")
    assert "Seq Scan" in gov.table("t").explain() or "SCAN" in gov.table("t").explain().upper()


# -- query profiles -----------------------------------------------------------------------------------------------
def _profiled_buffer(conn: Any, enable: Any) -> Any:
    """What the attacker reads back after profiling ``SELECT full_name FROM t``: the streaming buffer's size."""
    try:
        enable(conn)
    except governed_db.GuardrailViolation as e:
        return f"refused: {type(e).__name__}"
    conn.execute("SELECT full_name FROM t").fetchall()
    import json

    return json.loads(conn.get_profiling_information())["system"]["peak_streaming_buffer_size"]


@pytest.mark.parametrize(
    "enable",
    [lambda c: c.enable_profiling(), lambda c: c.execute("PRAGMA enable_profiling")],
    ids=["enable_profiling()", "PRAGMA enable_profiling"],
)
def test_profiling_is_a_setting_that_needs_approval(enable: Any) -> None:
    """A query profile measures the result before masking: ``peak_streaming_buffer_size`` grows with the length
    of the names a plain ``SELECT full_name`` returns (masked). ``conn.enable_profiling()`` passed through and
    the bare ``PRAGMA enable_profiling`` was read as a report, while ``SET enable_profiling`` already needed
    approval; both now do (a settings write), so a short and a long name look alike."""
    raw_sizes, gov_sizes = [], []
    for name in ("Al", "Alice Smith-Jones " * 40):
        raw = duckdb.connect()
        raw.execute("CREATE TABLE t (id int primary key, full_name text, city text)")
        raw.executemany("INSERT INTO t VALUES (?, ?, ?)", [[1, name, "Paris"], [2, "Ivan Petrov", "Lyon"]])
        gov = govern(raw)
        gov_sizes.append(_profiled_buffer(gov, enable))
        raw_sizes.append(_profiled_buffer(raw, lambda c: c.execute("PRAGMA enable_profiling = 'no_output'")))
        raw.close()
    assert raw_sizes[0] != raw_sizes[1]  # the oracle is real on the raw connection
    assert gov_sizes == ["refused: ApprovalRequired"] * 2, gov_sizes


def test_profiling_still_runs_where_no_approval_is_needed() -> None:
    """A person in development profiles as before (the look-alike)."""
    gov = governed_db.wrap(
        duckdb.connect(), identity=governed_db.Identity("dana", kind="human"), environment="development", audit=False
    )
    gov.enable_profiling()
    gov.execute("PRAGMA enable_profiling = 'no_output'")
    gov.execute("SELECT 42").fetchall()
    assert "operator" in gov.get_profiling_information()
