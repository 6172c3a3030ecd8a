"""Rules about data changes: unbounded writes, hidden DML, statements that run what they only seem to plan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governed_db.policy.decision import Action
from governed_db.policy.rules._spec import Finding, approval_remedy, rule

if TYPE_CHECKING:
    from governed_db.policy import RuleContext
    from governed_db.sql.analysis import StatementInfo


def _target(stmt: StatementInfo) -> str:
    return ", ".join(stmt.tables_written) or "the table"


@rule(
    "unbounded-write",
    family="dml",
    rationale="UPDATE or DELETE without WHERE changes every row; LIMIT alone does not say which rows.",
    remedy="add a WHERE clause that selects the rows to change",
    production=Action.DENY,
    staging=Action.REQUIRE_APPROVAL,
)
def unbounded_write(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or stmt.where != "missing":
        return None
    return Finding(f"{stmt.operation} without WHERE changes every row of {_target(stmt)}")


@rule(
    "tautological-where",
    family="dml",
    rationale="WHERE 1=1, WHERE true or a WHERE that references no column filters nothing.",
    remedy="add a WHERE clause on a column that selects the rows to change",
    production=Action.DENY,
    staging=Action.REQUIRE_APPROVAL,
)
def tautological_where(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or stmt.where != "tautology":
        return None
    return Finding(f"{stmt.operation} has a WHERE clause that is true for every row of {_target(stmt)}")


@rule(
    "undecidable-where",
    family="dml",
    rationale="Some conditions (x IS NULL OR x IS NOT NULL, x LIKE '%') may match every row; static analysis "
    "cannot be sure, so a person decides.",
    remedy=approval_remedy("run a write whose WHERE may match every row"),
    production=Action.REQUIRE_APPROVAL,
)
def undecidable_where(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or stmt.where != "undecidable":
        return None
    return Finding(
        f"cannot decide statically whether the WHERE of {stmt.operation} bounds the rows of {_target(stmt)}",
        undecidable=True,
    )


@rule(
    "dml-in-cte",
    family="dml",
    rationale="INSERT/UPDATE/DELETE inside a CTE or subquery makes a statement that reads like a SELECT write.",
    remedy=approval_remedy("run a statement with nested data changes"),
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
)
def dml_in_cte(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or not stmt.nested_dml:
        return None
    return Finding(f"{stmt.operation} contains a nested data change (writes {_target(stmt)})")


@rule(
    "explain-analyze",
    family="dml",
    rationale="EXPLAIN ANALYZE (and MariaDB ANALYZE) executes the statement it explains.",
    remedy="use plain EXPLAIN, or run the statement itself through review",
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
)
def explain_analyze(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "explain-analyze" not in stmt.flags:
        return None
    return Finding(f"EXPLAIN ANALYZE executes the {stmt.operation} it explains")


@rule(
    "select-into",
    family="dml",
    rationale="SELECT INTO and CREATE TABLE AS copy data into new tables, outside existing controls.",
    remedy=approval_remedy("copy data into a new table"),
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
)
def select_into(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or not stmt.select_into:
        return None
    return Finding(f"{stmt.operation} copies query results into {_target(stmt)}")


@rule(
    "variable-copy",
    family="dml",
    rationale="MySQL SELECT @v := column copies raw values into a session variable, where masking of the "
    "result does not follow them (like SELECT ... INTO @v).",
    remedy="select the columns themselves, or use window functions (ROW_NUMBER(), LAG()) instead of user "
    "variables",
    production=Action.DENY,
    staging=Action.REQUIRE_APPROVAL,
)
def variable_copy(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "variable-copy" not in stmt.flags:
        return None
    return Finding(f"{stmt.operation} assigns column values to a user variable (@v := ...)")


@rule(
    "write-statement",
    family="dml",
    rationale="Any data change (and write locks: SELECT ... FOR UPDATE / LOCK IN SHARE MODE, BEGIN EXCLUSIVE); "
    "off by default, for making identities or environments read-only.",
    remedy="this identity is read-only here; ask for write access or an approval",
    production=Action.ALLOW,
)
def write_statement(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    # CREATE TABLE ... AS SELECT is classed as DDL but copies data all the same: read-only means no copy either
    if stmt is not None and "row-lock" in stmt.flags and stmt.kind in ("read", "transaction"):
        # SELECT ... FOR UPDATE / LOCK IN SHARE MODE / SQLite BEGIN EXCLUSIVE take write locks
        return Finding(f"{stmt.operation} takes row or database write locks")
    if stmt is None or (stmt.kind != "write" and not stmt.select_into):
        return None
    return Finding(f"{stmt.operation} changes data in {_target(stmt)}")
