"""Dynamic masking: the plan built once per result, applied per row.

Interface used by the execution pipeline (``governed_db.pipeline``)::

    plan = plan_masking(description, analysis, identity=..., gov=...)
    # -> MaskPlan | None   (None: nothing to mask, rows pass through untouched)
    hit = predicate_hit(analysis, identity=..., gov=..., params=...)
    # -> RuleHit | None    (masked columns used in WHERE/JOIN/..., masked placeholders written back)
    scrub_error(exc, gov=...)   # remove masked values a database error message echoes

A ``MaskPlan`` has ``masked_columns`` (names), ``apply_row(row)``,
``apply_rows(rows)``, ``apply_frame(obj)`` (pandas/polars/pyarrow/numpy
results) and optionally an int ``masked_cells`` counter. ``gov`` is the
connection's :class:`~governed_db.pipeline.Governor` (``gov.raw``,
``gov.dialect``, ``gov.environment``, ``gov.settings``, and ``gov.state``, a
dict for per-connection caches). This minimal version masks nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from governed_db.analysis import Analysis
from governed_db.decision import RuleHit
from governed_db.identity import Identity

if TYPE_CHECKING:
    from governed_db.pipeline import Governor


class MaskPlan(Protocol):
    masked_columns: tuple[str, ...]

    def apply_row(self, row: Any) -> Any: ...

    def apply_rows(self, rows: list[Any]) -> list[Any]: ...

    def apply_frame(self, frame: Any) -> Any: ...


def plan_masking(
    description: Sequence[Sequence[Any]] | None, analysis: Analysis, *, identity: Identity, gov: Governor
) -> MaskPlan | None:
    return None


def predicate_hit(analysis: Analysis, *, identity: Identity, gov: Governor, params: Any) -> RuleHit | None:
    return None


def scrub_error(exc: BaseException, *, gov: Governor) -> None:
    return None
