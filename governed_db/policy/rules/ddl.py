"""Rules about schema changes: DROP, TRUNCATE, CASCADE, destructive ALTER and other DDL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governed_db.policy.decision import Action
from governed_db.policy.rules._spec import Finding, approval_remedy, rule

if TYPE_CHECKING:
    from governed_db.policy import RuleContext
    from governed_db.sql.analysis import StatementInfo

_MIGRATION = "make the change through a reviewed migration, not ad hoc"
#: statements another, stricter rule already judges (or temporary objects, which are session-private)
_OTHER_RULES = frozenset({"drop", "truncate", "destructive-alter", "schema-rewrite", "temporary", "stored-code"})


def _what(stmt: StatementInfo) -> str:
    return f"{stmt.operation} {', '.join(stmt.tables_written)}".strip()


@rule(
    "drop",
    family="ddl",
    rationale="DROP destroys objects and their data irreversibly.",
    remedy=_MIGRATION,
    production=Action.DENY,
    staging=Action.REQUIRE_APPROVAL,
)
def drop(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "drop" not in stmt.flags or stmt.kind != "ddl":
        return None
    return Finding(f"{_what(stmt)} destroys data")


@rule(
    "truncate",
    family="ddl",
    rationale="TRUNCATE empties tables without row-level triggers or a WHERE clause.",
    remedy=_MIGRATION,
    production=Action.DENY,
    staging=Action.REQUIRE_APPROVAL,
)
def truncate(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "truncate" not in stmt.flags:
        return None
    return Finding(f"{_what(stmt)} deletes every row")


@rule(
    "cascade",
    family="ddl",
    rationale="CASCADE silently extends a DROP or TRUNCATE to every dependent object.",
    remedy="name each object explicitly instead of CASCADE, in a reviewed migration",
    production=Action.DENY,
)
def cascade(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or not stmt.cascade:
        return None
    return Finding(f"{_what(stmt)} CASCADE reaches dependent objects too")


@rule(
    "destructive-alter",
    family="ddl",
    rationale="ALTER ... DROP COLUMN/CONSTRAINT (and MySQL DISCARD TABLESPACE) destroys data or integrity guarantees.",
    remedy=_MIGRATION,
    production=Action.DENY,
    staging=Action.REQUIRE_APPROVAL,
)
def destructive_alter(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "destructive-alter" not in stmt.flags:
        return None
    return Finding(f"{_what(stmt)} drops part of the schema")


@rule(
    "schema-rewrite",
    family="ddl",
    rationale="Renaming tables or columns (which can defeat name-based masking and breaks every caller) and "
    "changing a column's type (ALTER ... TYPE ... USING rewrites every value; a narrower type truncates) "
    "are not additive.",
    remedy=approval_remedy("rename or retype part of the schema") + "; better, a reviewed migration",
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
)
def schema_rewrite(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "schema-rewrite" not in stmt.flags or stmt.flags & {"temporary"}:
        return None
    return Finding(f"{_what(stmt)} renames or retypes existing columns or tables")


@rule(
    "ddl",
    family="ddl",
    rationale="Additive schema changes (CREATE, ALTER, COMMENT, RENAME; temporary tables excepted) belong in "
    "reviewed migrations; they warn by default so applications that create their tables at start-up keep "
    "working (tighten per policy).",
    remedy="make schema changes through reviewed migrations (set ddl: require_approval to enforce)",
    production=Action.WARN,
    staging=Action.WARN,
)
def ddl(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or stmt.kind != "ddl" or stmt.flags & _OTHER_RULES:
        return None
    return Finding(f"{_what(stmt)} changes the schema")


@rule(
    "agent-ddl",
    family="ddl",
    rationale="Schema changes by an agent (CREATE, ALTER, COMMENT, CREATE INDEX...; temporary objects excepted) "
    "need a person's approval in production, as migrations do; applications' own start-up DDL only warns "
    "(rule ddl).",
    remedy=approval_remedy("change the schema"),
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
)
def agent_ddl(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or stmt.kind != "ddl" or stmt.flags & _OTHER_RULES:
        return None  # DROP, TRUNCATE, destructive ALTER...: their own rules judge them (a policy may relax those)
    if ctx.identity is None or ctx.identity.kind != "agent":
        return None
    return Finding(f"an agent's {_what(stmt)} changes the schema")
