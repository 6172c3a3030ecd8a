"""The span processor that turns governed_db's spans into audit records.

It only looks at spans of the ``governed_db`` instrumentation scope, so it can
sit on an application's own tracer provider next to its other spans. A
statement's intent is written in ``on_start`` — the pipeline starts the span
before the driver sees the statement — and its outcome in ``on_end``, before
``execute()`` returns: a statement never runs without a record that survives
SIGKILL, and a crash in between leaves an intent whose outcome is unknown.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from governed_db._native import speedups
from governed_db.audit import records as R
from governed_db.audit.metrics import SpanMetrics
from governed_db.audit.store import AuditStore
from governed_db.semconv import (
    DB_RESPONSE_RETURNED_ROWS,
    GDB_ENVIRONMENT,
    GDB_MASKED_CELLS,
    GDB_MASKED_COLUMNS,
    GDB_RESULT,
    GDB_ROWS_RETURNED,
)

log = logging.getLogger("governed_db.audit")


def _scope_name(span: ReadableSpan) -> str | None:
    scope = getattr(span, "instrumentation_scope", None) or getattr(span, "instrumentation_info", None)
    return getattr(scope, "name", None)


class AuditSpanProcessor(SpanProcessor):
    """Records every ``governed_db`` span in an :class:`AuditStore`; statements write-ahead.

    A statement span is recorded twice: its *intent* in ``on_start`` (identity, statement, decision —
    the pipeline starts the span before the driver sees the statement, and refuses in production when
    that write failed) and its *outcome* in ``on_end`` (status, rows, masked columns). Other spans
    (result follow-ups, approval transitions) are one record at their end.
    """

    def __init__(self, store: AuditStore, *, metrics: SpanMetrics | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self.failures = 0
        self._local = threading.local()
        #: span id -> (intent seq or record, attributes recorded with the intent), for statements still running
        self._inflight: dict[int, tuple[int | R.Prepared, dict[str, Any]]] = {}
        #: span id -> deferred outcome of an SDK span (governed_db's own spans keep theirs), for folding results
        self._pending: dict[int, R.PreparedOutcome] = {}

    @property
    def last_error(self) -> BaseException | None:
        """The error of this thread's last record, ``None`` after a success.

        Per thread, so that it describes *this* statement's intent: the pipeline reads it right after
        starting the span and refuses in production while it is set (a statement must not run unrecorded),
        and a success in another thread cannot clear it in between.
        """
        return getattr(self._local, "error", None)

    @last_error.setter
    def last_error(self, value: BaseException | None) -> None:
        self._local.error = value

    def __repr__(self) -> str:
        return f"<AuditSpanProcessor {str(self.store.path)!r}>"

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        prepared = getattr(self._local, "prepared", None)
        if prepared is not None and prepared[4] is not None and prepared[2] == span.name:
            self._start_sdk_prepared(span, prepared)
            return
        attrs = span.attributes
        if not attrs or "governed_db.decision" not in attrs or _scope_name(span) != R.SCOPE:
            return
        try:
            body = R.intent_body(span, pid=_pid[0])
            seq = self.store.append(body)
        except Exception as e:  # never raise into the SDK; the pipeline refuses on last_error
            self._failed(span, e)
            return
        self.last_error = None
        if len(self._inflight) > _MAX_INFLIGHT:  # spans never ended (leaked by a caller): forget the oldest
            for k in list(self._inflight)[: _MAX_INFLIGHT // 2]:
                self._inflight.pop(k, None)
        # an SDK span's outcome is what changed since this snapshot; governed_db's own span tracks that itself
        self._inflight[R.span_id_of(span)] = (seq, _NO_ATTRS if getattr(span, "light", False) else body["attrs"])

    def start_prepared(self, span: Any) -> None:
        """The intent of governed_db's own span from its prepared bytes (the hot path of :meth:`on_start`)."""
        parent = span.parent
        try:
            span.intent = self.store.intent(span.head, parent.span_id if parent is not None else None, _pid[0],
                                            span.span_id, span.start_time, span.trace_id)
        except Exception as e:  # never raise into the pipeline; it refuses on last_error
            self._failed(span, e)
            return
        self._local.error = None

    def _start_sdk_prepared(self, span: Any, prepared: tuple[Any, Any, str, dict[str, Any], bytes]) -> None:
        """An SDK span the Recorder is starting: the intent from the bytes it prepared (see Recorder.start)."""
        ctx, parent = span.context, span.parent
        try:
            seq = self.store.intent(prepared[4], parent.span_id if parent is not None else None, _pid[0], ctx.span_id,
                                    span.start_time, ctx.trace_id)
        except Exception as e:  # never raise into the SDK; the pipeline refuses on last_error
            self._failed(span, e)
            return
        self._local.error = None
        if len(self._inflight) > _MAX_INFLIGHT:
            for k in list(self._inflight)[: _MAX_INFLIGHT // 2]:
                self._inflight.pop(k, None)
        self._inflight[ctx.span_id] = (seq, prepared[3])

    def fold_result(self, outcome: R.PreparedOutcome | int, attrs: dict[str, Any], environment: str) -> bool:
        """Add a result's row counts to its statement's deferred outcome (the record, or its statement's span
        id); False once that was written — the caller then records a separate result record."""
        if type(outcome) is int:
            found = self._pending.pop(outcome, None)
            if found is None:
                return False
            outcome = found
        assert isinstance(outcome, R.PreparedOutcome)
        try:
            if not self.store.amend(outcome, attrs):
                return False
        except Exception:
            return False
        metrics = self.metrics
        if metrics is not None and attrs.get(GDB_MASKED_CELLS):
            try:
                metrics.observe_result({**attrs, GDB_ENVIRONMENT: environment}, outcome.span_id)
            except Exception as e:
                log.warning("governed_db audit: metrics failed for a result: %r", e)
        return True

    def fold_counts(self, outcome: R.PreparedOutcome, rows: int, masked_cells: int, masked_columns: tuple[str, ...],
                    environment: str) -> bool:
        """:meth:`fold_result` of a result's counts into its statement's deferred outcome record — one C call on the
        usual path (decision 0396), the same attributes as the dict the Python code folds."""
        native = _native_fold
        if native is not None:
            try:
                done = native(self.store, outcome, rows, masked_cells, masked_columns)
            except Exception:
                return False
            if done is not None:
                if done and masked_cells:
                    self.observe_fold(outcome, rows, masked_cells, masked_columns, environment)
                return bool(done)
        folded: dict[str, Any] = {DB_RESPONSE_RETURNED_ROWS: rows, GDB_ROWS_RETURNED: rows,
                                  GDB_MASKED_CELLS: masked_cells}
        if masked_columns:
            folded[GDB_MASKED_COLUMNS] = list(masked_columns)
        return self.fold_result(outcome, folded, environment)

    def observe_fold(self, outcome: R.PreparedOutcome, rows: int, masked_cells: int,
                     masked_columns: tuple[str, ...], environment: str) -> None:
        """The masked-cells metric of a result whose counts were folded into its outcome (a failure is logged)."""
        metrics = self.metrics
        if metrics is None:
            return
        attrs = {DB_RESPONSE_RETURNED_ROWS: rows, GDB_ROWS_RETURNED: rows, GDB_MASKED_CELLS: masked_cells,
                 GDB_ENVIRONMENT: environment}
        if masked_columns:
            attrs[GDB_MASKED_COLUMNS] = list(masked_columns)
        try:
            metrics.observe_result(attrs, outcome.span_id)
        except Exception as e:
            log.warning("governed_db audit: metrics failed for a result: %r", e)

    def on_end(self, span: ReadableSpan) -> None:
        if getattr(span, "intent", None) is not None:
            self.end_prepared(span)
            return
        if _scope_name(span) != R.SCOPE:
            return
        light = getattr(span, "light", False)
        started = self._inflight.pop(R.span_id_of(span), None) if light or span.context is not None else None
        try:
            if started is None:
                body = R.span_body(span, pid=_pid[0])  # no intent (not a statement, or its write failed)
                if span.name == RESULT:
                    self.store.defer(body)  # like an outcome: nothing runs on the strength of it
                else:
                    self.store.append(body)
            else:
                out = R.outcome_body(span, intent_seq=started[0], started=started[1])
                if out.status == "ERROR":
                    # refusals and failures are rare and are what an auditor looks for: on disk before the
                    # error reaches the caller
                    self.store.append(out)
                else:
                    # a success travels with the next write (the next statement's intent, or the flusher's
                    # within a bounded time): a crash before then leaves this statement "outcome unknown"
                    self.store.defer(out)
                    pending = self._pending
                    pending[out.span_id] = out  # its result's row counts may still fold into it
                    if len(pending) > _MAX_PENDING:
                        del pending[next(iter(pending))]
            self.last_error = None
        except Exception as e:  # a processor must not break the application's statement
            self._failed(span, e)
        if self.metrics is not None:
            try:
                self.metrics.observe(span)
            except Exception as e:
                log.warning("governed_db audit: metrics failed for %r: %r", span.name, e)

    def end_prepared(self, span: Any) -> None:
        """The outcome of a span whose intent was prepared: deferred on success (results fold into it)."""
        status = span.status
        try:
            if status is None:  # a success (no status set): deferred, its result's row counts may fold into it
                span.outcome = self.store.defer_outcome(span.late, span.end_time, span.intent, span.span_id)
            else:
                late, code = span.late, status.status_code.name
                out = R.PreparedOutcome(dict(late) if late else {}, end=span.end_time, intent=span.intent,
                                        span_id=span.span_id, status=code, status_message=status.description)
                if code == "ERROR":
                    self.store.append(out)  # refusals and failures reach the OS before the error reaches the caller
                else:
                    self.store.defer(out)
                    span.outcome = out
            self._local.error = None
        except Exception as e:  # a processor must not break the application's statement
            self._failed(span, e)
        if self.metrics is not None:
            self._observe_metrics(span)

    def _observe_metrics(self, span: Any) -> None:
        """The span's metrics (a failure is logged, never raised into the statement)."""
        try:
            self.metrics.observe(span)  # type: ignore[union-attr]
        except Exception as e:
            log.warning("governed_db audit: metrics failed for %r: %r", span.name, e)

    def record_result(self, trace_id: int, statement_span_id: int, attrs: dict[str, Any]) -> None:
        """How many rows a statement's result handed out: a ``governed_db.result`` record (deferred), the same
        record a result span would give, built without the span."""
        now = time.time_ns()
        try:
            body = R.result_body(trace_id, statement_span_id, attrs, span_id=_random.getrandbits(64), now=now,
                                 pid=_pid[0])
            self.store.defer(body)
            self.last_error = None
        except Exception as e:
            self.failures += 1
            self.last_error = e
            log.error("governed_db audit: could not record a result in %s (%s: %s)", self.store.path,
                      type(e).__name__, e)
        metrics = self.metrics
        if metrics is not None and attrs.get(GDB_MASKED_CELLS):
            try:
                metrics.observe_result(attrs, statement_span_id)
            except Exception as e:
                log.warning("governed_db audit: metrics failed for a result: %r", e)

    def _failed(self, span: Any, e: Exception) -> None:
        self.failures += 1
        self.last_error = e
        log.error("governed_db audit: could not record %r in %s (%s: %s); fix the store (disk space, "
                  "permissions) — in production statements are refused until it can be written",
                  span.name, self.store.path, type(e).__name__, e)

    def shutdown(self) -> None:
        self.store.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.store.sync()
        return True


#: the C fold of a result's counts into its outcome (decision 0396), or None
_native_fold = speedups.fold if speedups is not None else None
_random = random  # the module-level generator, as for span ids: reseeded in forked children
_MAX_INFLIGHT = 65536
_MAX_PENDING = 64
_NO_ATTRS: dict[str, Any] = {}
RESULT = GDB_RESULT
#: this process's id, kept current over fork (os.getpid() is a system call on every record otherwise)
_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


def metrics_processor(meter_provider: Any = None) -> SpanProcessor:
    """Only the metrics, for applications running with ``audit=False``."""
    return _MetricsOnly(SpanMetrics(meter_provider))


class _MetricsOnly(SpanProcessor):
    def __init__(self, metrics: SpanMetrics) -> None:
        self.metrics = metrics

    def on_end(self, span: ReadableSpan) -> None:
        if _scope_name(span) == R.SCOPE:
            self.metrics.observe(span)
