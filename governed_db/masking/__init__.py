"""Dynamic masking: the plan built once per result, applied per row.

Interface used by the execution pipeline (``governed_db.pipeline``)::

    plan = plan_masking(description, analysis, identity=..., environment=..., settings=...)
    # -> MaskPlan | None   (None: nothing to mask, rows pass through untouched)

A ``MaskPlan`` has ``masked_columns`` (names), ``apply_row(row)``,
``apply_rows(rows)`` and ``apply_frame(obj)`` (pandas/polars/pyarrow/numpy
results). This minimal version masks nothing; the masking work fills it in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from governed_db.analysis import Analysis
from governed_db.identity import Identity


class MaskPlan(Protocol):
    masked_columns: tuple[str, ...]

    def apply_row(self, row: Any) -> Any: ...

    def apply_rows(self, rows: list[Any]) -> list[Any]: ...

    def apply_frame(self, frame: Any) -> Any: ...


def plan_masking(
    description: Sequence[Sequence[Any]] | None,
    analysis: Analysis,
    *,
    identity: Identity,
    environment: str,
    settings: Any,
) -> MaskPlan | None:
    return None
