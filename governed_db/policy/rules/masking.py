"""Masking's refusals as catalog rules: ids, rationale, default actions, and per-scope actions in a policy.

Whether one fires depends on the connection (which columns are masked for this identity, under which
grants), so the finding is made by masking's guard (:mod:`governed_db.masking.guard`) for each statement,
before the database sees it. The catalog entry is what makes the refusal a rule like every other: the action
comes from the policy (``rules: {masked-column-predicate: {production: require_approval}}``, or an
``overrides:`` entry scoped to identities, environments or tables), a policy file naming it is linted like
any other, and a replay re-applies the new policy's action to the masking findings recorded with each
statement (a policy evaluated without a connection finds nothing new, since it cannot know what is masked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governed_db.policy.decision import Action
from governed_db.policy.rules._spec import Finding, rule

if TYPE_CHECKING:
    from governed_db.policy import RuleContext
    from governed_db.sql.analysis import StatementInfo

PREDICATE = "masked-column-predicate"
COPY = "masked-column-copy"
WRITE_BACK = "masked-value-write"
CONSTRAINT = "masked-column-constraint"
#: every rule whose finding masking's guard makes
MASKING_RULES = (PREDICATE, COPY, WRITE_BACK, CONSTRAINT)


def _found_by_masking(stmt: StatementInfo | None, ctx: RuleContext, options: Mapping[str, Any]) -> Finding | None:
    return None  # the guard makes the finding, with the connection's masking state (see the module docstring)


rule(
    PREDICATE,
    family="masking",
    production=Action.DENY,
    staging=Action.DENY,
    rationale="A masked value may leave the database only as itself, masked: any computation on it that decides "
    "which rows come back, how many, in what order or whether an error happens (WHERE, JOIN, GROUP BY, "
    "ORDER BY, DISTINCT, INTERSECT/EXCEPT/UNION, windows, LIMIT subqueries, CASE/NULLIF/comparisons, casts "
    "and other functions that can fail) lets a guess be checked one character at a time.",
    remedy="select the column plainly (it comes back masked) and filter, join, sort or group on non-sensitive "
    "columns, or ask for an unmask grant (masking.unmask)",
)(_found_by_masking)
rule(
    COPY,
    family="masking",
    production=Action.DENY,
    staging=Action.DENY,
    rationale="Copying a masked column elsewhere (INSERT/REPLACE ... SELECT, UPDATE ... SET, CREATE TABLE AS, "
    "a cursor fetched later, a function that stores its argument) puts the value where masking does not "
    "follow it.",
    remedy="copy the data through a reviewed migration, or ask for an unmask grant (masking.unmask)",
)(_found_by_masking)
rule(
    WRITE_BACK,
    family="masking",
    production=Action.DENY,
    staging=Action.DENY,
    rationale="Writing a masked placeholder ([EMAIL], j***@example.com, hmac:...) back would destroy the real "
    "value.",
    remedy="write real values only: re-read the row through an identity allowed to see it, or leave the "
    "column out of the statement",
)(_found_by_masking)
rule(
    CONSTRAINT,
    family="masking",
    production=Action.DENY,
    staging=Action.DENY,
    rationale="A UNIQUE key, primary key, unique index or exclusion constraint compares a written value with every "
    "stored one, a foreign key with the parent's, and a CHECK with the row's other columns: whether an INSERT, "
    "UPDATE, upsert, REPLACE, MERGE or DELETE fails, skips a row or changes how many rows it affects tells whether "
    "a chosen value equals a masked one (a membership test, one guess per statement).",
    remedy="leave the column out of the statement, or run it as an identity with an unmask grant for the column "
    "(masking.unmask), such as the application's service identity",
)(_found_by_masking)
