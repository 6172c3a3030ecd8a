"""``null``: replace the value with SQL NULL (``None``)."""

from __future__ import annotations

from typing import Any

from governed_db.masking.strategies import Masker, StrategyContext

NAME = "null"
SUMMARY = "Replace the value with NULL (None): the column stays, its content is gone."


def build(label: str, options: dict[str, Any], ctx: StrategyContext) -> Masker:
    def null(value: Any) -> None:
        return None

    return null
