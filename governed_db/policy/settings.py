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

from governed_db.environments import DEVELOPMENT_ENVIRONMENTS
from governed_db.policy.decision import Action

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
        # names compare case-insensitively: "Report-Bot" must not slip past a rule written for "report-*"
        if self.subjects and not any(fnmatchcase(identity.subject.casefold(), p.casefold()) for p in self.subjects):
            return False
        if self.on_behalf_of is not None:
            behalf = identity.on_behalf_of
            if not self.on_behalf_of:  # on_behalf_of: [] / null -> acting for nobody
                if behalf is not None:
                    return False
            elif behalf is None or not any(fnmatchcase(behalf.casefold(), p.casefold()) for p in self.on_behalf_of):
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


#: the default ceiling on rows one guarded write may change (agents in production)
DEFAULT_MAX_AFFECTED_ROWS = 100


@dataclass(frozen=True)
class WriteSpec:
    """One ``writes:`` entry: how writes by the identities in ``when`` are judged by their effect.

    ``None`` fields leave the value of earlier entries (or the default) as it is; later entries win.
    """

    when: Scope
    #: run each write in a savepoint and measure what it changed before keeping it
    guard: bool | None = None
    max_affected_rows: int | None = None
    #: ``deny`` or ``require_approval`` when a write changes more rows than ``max_affected_rows``
    over_limit: Action | None = None
    #: ``deny`` or ``require_approval`` when a write changes every row of a table with more than one row
    whole_table: Action | None = None
    #: the session is read-only in the database while this identity acts
    read_only: bool | None = None
    #: PostgreSQL role the identity's statements run as (``SET LOCAL ROLE``)
    database_role: str | None = None
    #: pass the identity's subject/kind/on-behalf-of to the session for row-level security (PostgreSQL)
    session_claims: bool | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class WriteBounds:
    """What the policy says about writes for one identity in one environment (see ``docs/guardrails.md``)."""

    guard: bool = False
    max_affected_rows: int | None = None
    over_limit: Action = Action.DENY
    whole_table: Action = Action.DENY
    read_only: bool = False
    database_role: str | None = None
    session_claims: bool = False

    @property
    def active(self) -> bool:
        """True when this identity's statements need anything from the database session or the guard."""
        return self.guard or self.read_only or self.database_role is not None or self.session_claims


UNBOUNDED = WriteBounds()


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
    #: ``writes:`` entries (effect guard, read-only sessions, database roles), in file order
    writes: tuple[WriteSpec, ...] = ()

    def write_bounds(self, environment: str, identity: Identity | None, dialect: str | None) -> WriteBounds:
        """How writes by ``identity`` are bounded here: defaults for the environment class, then ``writes:``.

        By default an agent in a production-class environment is bounded (every write measured, at most
        :data:`DEFAULT_MAX_AFFECTED_ROWS` rows, never a whole table), and an identity for which the
        ``write-statement`` rule denies is read-only in the database too. Observe-only environments are
        never bounded (everything runs and is recorded).
        """
        cls = self.env_class(environment)
        if cls == "observe":
            return UNBOUNDED
        agent = identity is not None and identity.kind == "agent" and cls == "production"
        fields: dict[str, Any] = {"guard": agent, "max_affected_rows": DEFAULT_MAX_AFFECTED_ROWS if agent else None}
        from governed_db.policy.rules import catalog

        spec = catalog().get("write-statement")
        if spec is not None and self.action_for(spec, environment, identity, dialect, ()) is Action.DENY:
            fields["read_only"] = True
        for w in self.writes:
            if not w.when.matches(environment, identity, dialect):
                continue
            for name in ("guard", "max_affected_rows", "over_limit", "whole_table", "read_only", "database_role",
                         "session_claims"):
                value = getattr(w, name)
                if value is not None:
                    fields[name] = value
        if fields.get("max_affected_rows") is not None and "guard" not in _explicit(self.writes, environment,
                                                                                     identity, dialect):
            fields["guard"] = True  # a ceiling is only kept by measuring
        return WriteBounds(**fields)

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


def _explicit(writes: tuple[WriteSpec, ...], environment: str, identity: Identity | None,
              dialect: str | None) -> set[str]:
    return {"guard" for w in writes if w.guard is not None and w.when.matches(environment, identity, dialect)}


DEFAULT_SETTINGS = PolicySettings()
