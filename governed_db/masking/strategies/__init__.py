"""Masking strategies: one small module per operator, one signature each.

Every strategy module exposes ``NAME``, ``SUMMARY`` and
``build(label, options, ctx) -> Masker`` where a ``Masker`` maps one cell
value to its masked form (``None`` stays ``None``). Modules that produce a
recognisable placeholder also expose ``is_output(value) -> bool`` so writing
a placeholder back into the database can be refused.

Adding a strategy is adding a module here and a line to ``_MODULES``; the
reference page ``docs/reference/masking-strategies.md`` must document it (a
test fails otherwise).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from governed_db.errors import ConfigurationError

Masker = Callable[[Any], Any]

_MODULES: dict[str, str] = {
    "redact": "governed_db.masking.strategies.redact",
    "null": "governed_db.masking.strategies.null",
    "partial": "governed_db.masking.strategies.partial",
    "hash": "governed_db.masking.strategies.keyed_hash",
    "tokenize": "governed_db.masking.strategies.tokenization",
    "format_preserving": "governed_db.masking.strategies.format_preserving",
    "generalize": "governed_db.masking.strategies.generalize",
    "bucket": "governed_db.masking.strategies.bucket",
    "spans": "governed_db.masking.strategies.spans",
}

#: every strategy name accepted in configuration and catalogs
STRATEGY_NAMES: tuple[str, ...] = tuple(_MODULES)


@dataclass(slots=True)
class StrategyContext:
    """What strategies share on one connection: the HMAC key and a token vault."""

    key: bytes
    #: token -> original value, only filled by ``tokenize`` with ``vault: true`` (process-local, bounded)
    vault: dict[str, Any] = field(default_factory=dict)
    vault_limit: int = 100_000


def strategy_module(name: str) -> ModuleType:
    path = _MODULES.get(name)
    if path is None:
        raise ConfigurationError(
            f"unknown masking strategy {name!r}; choose one of: {', '.join(STRATEGY_NAMES)}"
        )
    return importlib.import_module(path)


def build_strategy(name: str, label: str, options: Mapping[str, Any], ctx: StrategyContext) -> Masker:
    """The masker for ``label`` with strategy ``name`` and its ``options``."""
    module = strategy_module(name)
    masker: Masker = module.build(label, dict(options), ctx)
    return masker


def looks_masked(value: Any) -> bool:
    """True when ``value`` is a placeholder some strategy produces (refused as a write-back)."""
    if not isinstance(value, str) or not value:
        return False
    for name in STRATEGY_NAMES:
        check = getattr(strategy_module(name), "is_output", None)
        if check is not None and check(value):
            return True
    return False


__all__ = ["STRATEGY_NAMES", "Masker", "StrategyContext", "build_strategy", "looks_masked", "strategy_module"]
