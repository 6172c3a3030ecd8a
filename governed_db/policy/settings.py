"""What a policy configures: per-rule actions and options, scoped overrides, environments, limits.

Resolution of a rule's action for one statement (first that applies):

1. the last matching ``overrides`` entry naming the rule (or ``"*"``) - later entries win, so a file
   reads top to bottom from general to specific;
2. the rule's own ``action`` in ``rules:``, for the exact environment, then its class, then ``"*"``;
3. the catalog default for the environment's class (``production`` or ``staging``; any unknown
   environment is treated as production - safe by default).

Observe-only environments (development, dev, local, test by default) then downgrade anything stricter
than ``warn`` to ``warn``: everything runs, and is recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from governed_db.policy.decision import Action
from governed_db.settings import DEVELOPMENT_ENVIRONMENTS

if TYPE_CHECKING:
    from governed_db.identity import Identity
    from governed_db.policy.rules import RuleSpec

OBSERVE_ONLY = DEVELOPMENT_ENVIRONMENTS
_CLASSES = {"production": "production", "prod": "production", "staging": "staging", "stage": "staging"}


@dataclass(frozen=True)
class Scope:
    """Who/where/what a policy entry applies to. Empty fields match everything."""

    environments: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    on_behalf_of: tuple[str, ...] | None = None
    verified: bool | None = None
    tables: tuple[str, ...] = ()
    dialects: tuple[str, ...] = ()

    def matches(self, environment: str, identity: Identity | None, dialect: str | None) -> bool:
        if self.environments and environment not in self.environments:
            return False
        if self.dialects and (dialect or "") not in self.dialects:
            return False
        if identity is None:
            return not (self.kinds or self.roles or self.subjects or self.on_behalf_of or self.verified)
        if self.kinds and identity.kind not in self.kinds:
            return False
        if self.roles and not identity.has_role(*self.roles):
            return False
        if self.subjects and not any(fnmatchcase(identity.subject, p) for p in self.subjects):
            return False
        if self.on_behalf_of is not None:
            behalf = identity.on_behalf_of
            if not self.on_behalf_of:  # on_behalf_of: [] / null -> acting for nobody
                if behalf is not None:
                    return False
            elif behalf is None or not any(fnmatchcase(behalf, p) for p in self.on_behalf_of):
                return False
        return self.verified is None or identity.verified == self.verified

    def matches_tables(self, tables: tuple[str, ...]) -> bool:
        if not self.tables:
            return True
        from governed_db.policy.rules.tables import table_matches

        return any(table_matches(t, self.tables) for t in tables)


@dataclass(frozen=True)
class Override:
    when: Scope
    actions: Mapping[str, Action]
    line: int | None = None


@dataclass(frozen=True)
class LimitSpec:
    """Statements and/or rows per minute for the identities in ``when`` (counted per identity)."""

    when: Scope
    statements_per_minute: int | None = None
    rows_per_minute: int | None = None
    action: Action | None = None
    window_seconds: float = 60.0


@dataclass(frozen=True)
class PolicySettings:
    #: rule id -> {environment or class or "*": action}
    actions: Mapping[str, Mapping[str, Action]] = field(default_factory=dict)
    #: rule id -> option overrides
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    overrides: tuple[Override, ...] = ()
    #: environment -> "production" / "staging" / "observe"
    environments: Mapping[str, str] = field(default_factory=dict)
    limits: tuple[LimitSpec, ...] = ()

    def env_class(self, environment: str) -> str:
        declared = self.environments.get(environment)
        if declared is not None:
            return declared
        if environment in OBSERVE_ONLY:
            return "observe"
        return _CLASSES.get(environment, "production")

    def observe_only(self, environment: str) -> bool:
        return self.env_class(environment) == "observe"

    def rule_options(self, spec: RuleSpec) -> Mapping[str, Any]:
        extra = self.options.get(spec.id)
        if not extra:
            return spec.options
        return {**spec.options, **extra}

    def base_action(self, spec: RuleSpec, environment: str) -> Action:
        cls = self.env_class(environment)
        configured = self.actions.get(spec.id)
        if configured:
            for key in (environment, cls, "*"):
                if key in configured:
                    return configured[key]
        return spec.default_action("production" if cls == "observe" else cls)

    def action_for(
        self,
        spec: RuleSpec,
        environment: str,
        identity: Identity | None,
        dialect: str | None,
        tables: tuple[str, ...],
    ) -> Action:
        action = self.base_action(spec, environment)
        for o in self.overrides:
            chosen = o.actions.get(spec.id) or o.actions.get("*")
            if chosen is not None and o.when.matches(environment, identity, dialect) and o.when.matches_tables(tables):
                action = chosen
        return action


DEFAULT_SETTINGS = PolicySettings()
