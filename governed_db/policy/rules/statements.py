"""Rules about the text as a whole: what could not be analysed, size, stacked statements, hidden code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governed_db.policy.decision import Action
from governed_db.policy.rules._spec import Finding, approval_remedy, rule

if TYPE_CHECKING:
    from governed_db.policy import RuleContext
    from governed_db.sql.analysis import StatementInfo

_LIMIT_FLAGS = frozenset({"too-large", "too-deep", "too-many-statements"})


@rule(
    "unparseable",
    family="fail-closed",
    rationale="What cannot be parsed in the connection's dialect cannot be judged: fail closed.",
    remedy="rewrite the statement in the connection's dialect (check quoting and the dialect name)",
    production=Action.DENY,
)
def unparseable(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or stmt.error is None or ctx.analysis.flags & _LIMIT_FLAGS:
        return None
    return Finding(f"the statement could not be analysed ({stmt.error}); governed_db fails closed")


@rule(
    "unknown-statement",
    family="fail-closed",
    rationale="A statement whose class the analyser does not know is high risk, never 'probably fine'.",
    remedy=approval_remedy("run an unrecognised statement"),
    production=Action.REQUIRE_APPROVAL,
)
def unknown_statement(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or stmt.kind != "unknown" or stmt.error is not None:
        return None
    return Finding(f"{stmt.operation} is not a statement governed_db can classify")


@rule(
    "analysis-limit",
    family="fail-closed",
    rationale="Text too large, too deeply nested or with too many statements to analyse is refused unanalysed.",
    remedy="split the work into smaller statements and pass values as parameters",
    production=Action.DENY,
    scope="text",
)
def analysis_limit(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if not ctx.analysis.flags & _LIMIT_FLAGS:
        return None
    return Finding(f"{ctx.analysis.error or 'the statement exceeds analysis limits'}; governed_db fails closed")


@rule(
    "statement-size",
    family="statements",
    rationale="Huge statements hide payloads and exhaust resources; real queries pass data as parameters.",
    remedy="pass values as parameters (executemany) or split the statement",
    production=Action.DENY,
    scope="text",
    options={"max_chars": 100_000},
)
def statement_size(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    limit = int(opts["max_chars"])
    if ctx.analysis.size <= limit or ctx.analysis.flags & _LIMIT_FLAGS:
        return None
    return Finding(f"the statement is {ctx.analysis.size} characters long (the limit is {limit})")


@rule(
    "multiple-statements",
    family="statements",
    rationale="Stacked statements are how injection smuggles a second command past the first.",
    remedy="send one statement per execute() call",
    production=Action.DENY,
    staging=Action.WARN,
    scope="text",
)
def multiple_statements(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    n = len(ctx.analysis.statements)
    if n <= 1:
        return None
    return Finding(f"{n} statements in one call ({ctx.analysis.operation})")


@rule(
    "executable-comment",
    family="statements",
    rationale="MySQL /*! ... */ comments are executed by the server yet invisible to most parsers.",
    remedy="write the SQL without /*! ... */ executable comments",
    production=Action.REQUIRE_APPROVAL,
    scope="text",
)
def executable_comment(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if "executable-comment" not in ctx.analysis.flags:
        return None
    return Finding("the text contains a MySQL executable comment (/*! ... */); it was analysed as the server runs it")


@rule(
    "backslash-quote",
    family="statements",
    rationale="In MySQL/MariaDB, whether \\' ends a string depends on sql_mode (NO_BACKSLASH_ESCAPES), which "
    "can be set outside governed_db: a data change whose literal holds a backslash-escaped quote may run "
    "code the analyser read as text.",
    remedy="pass values as parameters (%s) instead of quoting them in the SQL text; or "
    + approval_remedy("run a write with a backslash-escaped quote"),
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
)
def backslash_quote(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "backslash-quote" not in stmt.flags:
        return None
    return Finding(f"{stmt.operation} has a string literal with a backslash-escaped quote, which reads "
                   "differently under NO_BACKSLASH_ESCAPES")
