"""Approvals for statements a policy sends for review.

Interface used by the execution pipeline::

    check_approval(decision, analysis=..., identity=..., environment=..., sql=..., params=..., settings=...)

returns normally when a valid grant covers the statement (consuming a
one-time grant) and raises :class:`~governed_db.errors.ApprovalRequired`
otherwise. This minimal version has no store: it always refuses.
"""

from __future__ import annotations

from typing import Any

from governed_db.analysis import Analysis
from governed_db.decision import Decision
from governed_db.errors import ApprovalRequired
from governed_db.identity import Identity


def check_approval(
    decision: Decision,
    *,
    analysis: Analysis,
    identity: Identity,
    environment: str,
    sql: str,
    params: Any,
    settings: Any,
) -> None:
    raise ApprovalRequired(
        f"approval required: {decision.reason}", decision, statement=analysis.normalized
    )
