"""What a catalog rule is, and the registry rules add themselves to (:func:`rule`, :func:`register_rule`).

The rule modules import this, not the package: the package loads them (:func:`governed_db.policy.rules.catalog`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from governed_db._cache import new_generation
from governed_db.policy.decision import Action, RuleHit

if TYPE_CHECKING:
    from governed_db.policy import RuleContext
    from governed_db.sql.analysis import StatementInfo


@dataclass(frozen=True, slots=True)
class Finding:
    """What a check found; the policy turns it into a :class:`RuleHit` with the configured action."""

    reason: str
    remedy: str | None = None
    undecidable: bool = False
    row_limit: int | None = None


Check = Callable[["StatementInfo | None", "RuleContext", Mapping[str, Any]], "Finding | None"]

#: Environment classes a rule has defaults for; any other environment uses ``production``.
ENV_CLASSES = ("production", "staging")


@dataclass(frozen=True)
class RuleSpec:
    """A catalog entry. ``defaults`` maps an environment class to the action taken when the check fires."""

    id: str
    family: str
    rationale: str
    check: Check
    defaults: Mapping[str, Action]
    remedy: str
    #: ``statement``: checked per statement; ``text``: once per analysed text (stmt is the first or None)
    scope: str = "statement"
    #: rule-specific options with their defaults (a policy file may set them under the rule's id)
    options: Mapping[str, Any] = field(default_factory=dict)

    def default_action(self, env_class: str) -> Action:
        return self.defaults.get(env_class, self.defaults["production"])


class CatalogRule:
    """A :class:`RuleSpec` as a rule callable ``rule(stmt, ctx) -> RuleHit | None``."""

    __slots__ = ("id", "spec")

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.id = spec.id

    def __call__(self, stmt: StatementInfo | None, ctx: RuleContext) -> RuleHit | None:
        spec = self.spec
        if spec.scope == "text" and stmt is not None and ctx.analysis.statements and stmt is not ctx.analysis.statements[0]:
            return None
        options = ctx.options_for(spec)
        found = spec.check(stmt, ctx, options)
        if found is None:
            return None
        action = ctx.action_for(spec, stmt)
        if action is Action.ALLOW:
            return None
        row_limit = found.row_limit if action is Action.LIMIT else None
        if action is Action.LIMIT and row_limit is None:
            row_limit = int(options.get("limit") or 0) or None
        return RuleHit(spec.id, action, found.reason, found.remedy or spec.remedy, row_limit, found.undecidable)

    def __repr__(self) -> str:
        return f"<rule {self.id}>"


def approval_remedy(what: str) -> str:
    """The standard next step for ``require_approval`` decisions."""
    return f"request approval with: governed-db approvals request --sql '<statement>' --reason '<why you need to {what}>'"


_lock = threading.Lock()
_registry: dict[str, RuleSpec] = {}
_version = 0


def register_rule(spec: RuleSpec, *, replace: bool = False) -> RuleSpec:
    """Add ``spec`` to the default catalog (every policy that uses the catalog picks it up).

    Ids are unique; pass ``replace=True`` to redefine one on purpose. Document
    the rule in ``docs/reference/rules.md``.
    """
    global _version
    if not spec.id or spec.id != spec.id.strip().lower() or " " in spec.id:
        raise ValueError(f"rule id must be lower-case kebab-case, got {spec.id!r}")
    if "production" not in spec.defaults:
        raise ValueError(f"rule {spec.id!r} needs a default action for 'production'")
    with _lock:
        if spec.id in _registry and not replace:
            raise ValueError(f"a rule with id {spec.id!r} is already registered")
        _registry[spec.id] = spec
        _version += 1
    new_generation()  # a verdict judged by the catalog before it changed is judged again (decision 0423)
    return spec


def rule(
    id: str,
    *,
    family: str,
    rationale: str,
    remedy: str,
    production: Action,
    staging: Action | None = None,
    scope: str = "statement",
    options: Mapping[str, Any] | None = None,
) -> Callable[[Check], Check]:
    """Decorator form of :func:`register_rule` for a check function."""

    def deco(check: Check) -> Check:
        defaults = {"production": production, "staging": staging if staging is not None else production}
        register_rule(
            RuleSpec(id, family, rationale, check, MappingProxyType(defaults), remedy, scope,
                     MappingProxyType(dict(options or {})))
        )  # fmt: skip
        return check

    return deco


__all__ = ["ENV_CLASSES", "CatalogRule", "Check", "Finding", "RuleSpec", "approval_remedy", "register_rule", "rule"]
