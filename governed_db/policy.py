"""Policies: which rules apply, with which action, where and to whom.

This is the minimal engine the core ships with; the guardrails work replaces
the rule set with the full catalog (see ``docs/reference/rules.md``).

A rule is a callable ``rule(stmt, ctx) -> RuleHit | None`` (structlog-style:
one signature, one job each, composed as a list).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from governed_db.analysis import Analysis, StatementInfo, analyze
from governed_db.decision import Action, Decision, RuleHit
from governed_db.errors import ConfigurationError
from governed_db.identity import Identity

DEFAULT_ENVIRONMENT = "production"


@dataclass(frozen=True, slots=True)
class RuleContext:
    analysis: Analysis
    identity: Identity | None
    environment: str


Rule = Callable[[StatementInfo | None, RuleContext], "RuleHit | None"]


def _parse_failure(stmt: StatementInfo | None, ctx: RuleContext) -> RuleHit | None:
    if ctx.analysis.error is None:
        return None
    return RuleHit(
        "unparseable",
        Action.DENY,
        f"the statement could not be analysed ({ctx.analysis.error}); governed_db fails closed",
        "rewrite the statement in the connection's dialect, or run it through an approved channel",
    )


def _drop_truncate(stmt: StatementInfo | None, ctx: RuleContext) -> RuleHit | None:
    if stmt is None or not (stmt.operation.startswith("DROP") or stmt.operation == "TRUNCATE"):
        return None
    return RuleHit(
        "drop-truncate",
        Action.DENY,
        f"{stmt.operation} destroys data",
        "drop or truncate through a reviewed migration, not ad hoc",
    )


DEFAULT_RULES: tuple[Rule, ...] = (_parse_failure, _drop_truncate)


@dataclass(frozen=True)
class Policy:
    """An immutable set of rules and per-environment actions."""

    name: str = "default"
    rules: tuple[Rule, ...] = DEFAULT_RULES
    #: environments where rules are observe-only (deny/approval become warn)
    observe_only: frozenset[str] = frozenset({"development", "dev", "local", "test"})
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def evaluate(self, analysis: Analysis, *, identity: Identity | None, environment: str) -> Decision:
        ctx = RuleContext(analysis, identity, environment)
        hits: list[RuleHit] = []
        targets: Sequence[StatementInfo | None] = analysis.statements or (None,)
        for rule in self.rules:
            for stmt in targets:
                hit = rule(stmt, ctx)
                if hit is not None:
                    hits.append(hit)
        if environment in self.observe_only:
            hits = [
                RuleHit(h.rule_id, Action.WARN, h.reason, h.remedy, None, h.undecidable)
                if h.action.severity > Action.WARN.severity
                else h
                for h in hits
            ]
        return Decision.combine(hits, environment=environment, dialect=analysis.dialect, policy_name=self.name)


_DEFAULT = Policy()


def default_policy() -> Policy:
    return _DEFAULT


def load_policy(source: Policy | str | os.PathLike[str] | None) -> Policy:
    """A :class:`Policy` from a policy object, a file path, or ``None`` (the default)."""
    if source is None:
        return _DEFAULT
    if isinstance(source, Policy):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ConfigurationError(f"policy file {str(path)!r} does not exist")
        raise ConfigurationError("policy files are not supported by this build yet")
    raise ConfigurationError(f"policy must be a Policy, a path or None, got {type(source).__name__}")


@lru_cache(maxsize=1)
def _env_policy(path: str) -> Policy:
    return load_policy(path)


def evaluate(
    sql: str,
    *,
    dialect: str,
    environment: str | None = None,
    identity: Identity | None = None,
    policy: Policy | str | os.PathLike[str] | None = None,
) -> Decision:
    """Decide about ``sql`` without a connection. Pure; never raises on bad SQL."""
    if isinstance(sql, (bytes, bytearray, memoryview)):
        sql = bytes(sql).decode("utf-8", errors="replace")
    if not isinstance(sql, str):
        raise ConfigurationError(f"evaluate() takes SQL text (str or bytes), got {type(sql).__name__}")
    if not isinstance(dialect, str) or not dialect:
        raise ConfigurationError("evaluate() needs dialect=, e.g. 'postgres', 'mysql', 'sqlite' or 'duckdb'")
    env = environment or os.environ.get("GOVERNED_DB_ENVIRONMENT") or DEFAULT_ENVIRONMENT
    return load_policy(policy).evaluate(analyze(sql, dialect), identity=identity, environment=env)
