"""The rule catalog: one small check per rule, registered with an id, rationale and defaults.

A catalog rule is a :class:`RuleSpec`: a pure ``check(stmt, ctx, options) ->
Finding | None`` that says *what* it found, plus the action it takes by
default per environment class. Which action actually applies (per
environment, identity, table) is the policy's business, so the same check
serves every policy. Each spec becomes a plain rule callable
``rule(stmt, ctx) -> RuleHit | None`` (:class:`CatalogRule`), the same shape
as hand-written Python rules.

Other modules contribute rules with :func:`register_rule` (masking does);
every registered rule must have an entry in ``docs/reference/rules.md`` (a
test enforces it).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType

from governed_db.policy.rules import _spec
from governed_db.policy.rules._spec import (
    ENV_CLASSES,
    CatalogRule,
    Finding,
    RuleSpec,
    approval_remedy,
    register_rule,
    rule,
)

_snapshot: tuple[int, tuple[CatalogRule, ...]] = (-1, ())


def catalog() -> Mapping[str, RuleSpec]:
    """Every registered rule, by id (a read-only snapshot)."""
    _load_builtin()
    with _spec._lock:
        return MappingProxyType(dict(_spec._registry))


def catalog_version() -> int:
    return _spec._version


def catalog_rules() -> tuple[CatalogRule, ...]:
    """The catalog as rule callables, in registration order (cached until the catalog changes)."""
    global _snapshot
    _load_builtin()
    if _snapshot[0] != _spec._version:
        with _spec._lock:
            _snapshot = (_spec._version, tuple(CatalogRule(s) for s in _spec._registry.values()))
    return _snapshot[1]


_loaded = False
_load_lock = threading.Lock()


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    # Marked loaded only once every module has registered, under a lock: a thread that saw the flag set
    # early would snapshot a partial catalog and decide with rules missing; a failed import is retried.
    with _load_lock:
        if not _loaded:
            # registration order is the order in which rules run and appear in the reference
            from governed_db.policy.rules import statements, dml, ddl, execution, files, access, tables, masking  # noqa: F401, I001

            _loaded = True


__all__ = [
    "ENV_CLASSES",
    "CatalogRule",
    "Finding",
    "RuleSpec",
    "approval_remedy",
    "catalog",
    "catalog_rules",
    "catalog_version",
    "register_rule",
    "rule",
]
