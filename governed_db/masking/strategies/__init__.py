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
from collections.abc import Callable, Iterable, Mapping
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


_output_checks: tuple[Callable[[str], bool], ...] | None = None


def output_checks() -> tuple[Callable[[str], bool], ...]:
    """Every strategy's ``is_output``, resolved once: write-back checks run per parameter (executemany of 10k
    rows), and an ``import_module`` per strategy per value cost more than the statement itself."""
    global _output_checks
    checks = _output_checks
    if checks is None:
        found = (getattr(strategy_module(name), "is_output", None) for name in STRATEGY_NAMES)
        checks = _output_checks = tuple(c for c in found if c is not None)
    return checks


def any_looks_masked(values: Iterable[Any]) -> bool:
    """:func:`looks_masked` over many values (the parameters of an executemany), one strategy at a time."""
    strs = [v for v in values if isinstance(v, str) and v]
    return any(any(map(check, strs)) for check in _output_checks or output_checks())


def looks_masked(value: Any) -> bool:
    """True when ``value`` is a placeholder some strategy produces (refused as a write-back)."""
    if not isinstance(value, str) or not value:
        return False
    return any(check(value) for check in _output_checks or output_checks())


__all__ = [
    "STRATEGY_NAMES",
    "Masker",
    "StrategyContext",
    "any_looks_masked",
    "build_strategy",
    "looks_masked",
    "output_checks",
    "strategy_module",
]
