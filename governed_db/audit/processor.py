"""The span processor that turns governed_db's spans into audit records.

It only looks at spans of the ``governed_db`` instrumentation scope, so it can
sit on an application's own tracer provider next to its other spans. The write
happens inside ``on_end`` — the pipeline ends the statement span before
``execute()`` returns — which is what makes a returned statement's record
survive SIGKILL.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from governed_db.audit import records as R
from governed_db.audit.metrics import SpanMetrics
from governed_db.audit.store import AuditStore

log = logging.getLogger("governed_db.audit")


def _scope_name(span: ReadableSpan) -> str | None:
    scope = getattr(span, "instrumentation_scope", None) or getattr(span, "instrumentation_info", None)
    return getattr(scope, "name", None)


class AuditSpanProcessor(SpanProcessor):
    """Appends every finished ``governed_db`` span to an :class:`AuditStore`."""

    def __init__(self, store: AuditStore, *, metrics: SpanMetrics | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self.failures = 0
        #: the last append error, cleared by the next successful append; the pipeline refuses
        #: statements in production while it is set (a statement must not run unrecorded)
        self.last_error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<AuditSpanProcessor {str(self.store.path)!r}>"

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if _scope_name(span) != R.SCOPE:
            return
        try:
            self.store.append(R.span_body(span, pid=os.getpid()))
            self.last_error = None
        except Exception as e:  # a processor must not break the application's statement
            self.failures += 1
            self.last_error = e
            log.error("governed_db audit: could not record %r in %s (%s: %s); fix the store (disk space, "
                      "permissions) — statements are not being recorded", span.name, self.store.path,
                      type(e).__name__, e)
        if self.metrics is not None:
            try:
                self.metrics.observe(span)
            except Exception as e:
                log.warning("governed_db audit: metrics failed for %r: %r", span.name, e)

    def shutdown(self) -> None:
        self.store.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.store.sync()
        return True


def metrics_processor(meter_provider: Any = None) -> SpanProcessor:
    """Only the metrics, for applications running with ``audit=False``."""
    return _MetricsOnly(SpanMetrics(meter_provider))


class _MetricsOnly(SpanProcessor):
    def __init__(self, metrics: SpanMetrics) -> None:
        self.metrics = metrics

    def on_end(self, span: ReadableSpan) -> None:
        if _scope_name(span) == R.SCOPE:
            self.metrics.observe(span)
