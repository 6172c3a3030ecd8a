"""The tamper-evident activity record, fed by governed_db's OpenTelemetry spans.

Interface used by ``governed_db.telemetry``::

    processor = audit_processor(option)   # option: the wrap(audit=...) value
    # -> opentelemetry.sdk.trace.SpanProcessor | None

This minimal version records nothing; the audit work fills it in.
"""

from __future__ import annotations

from typing import Any


def audit_processor(option: Any) -> Any:
    return None
