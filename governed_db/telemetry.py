"""The activity record: one OpenTelemetry CLIENT span per statement.

Attributes follow the stable database semantic conventions (``db.system.name``,
``db.namespace``, ``db.operation.name``, ``db.collection.name``,
``db.query.text`` with literals replaced by placeholders) plus the identity and
the decision under ``governed_db.*``. Raw parameters are recorded only with
``capture_parameters=True``.

The same spans feed the local audit store (:mod:`governed_db.audit`): when a
store is configured its span processor is added to the SDK tracer provider in
use, or — when the application has configured no SDK provider — to a private
one, so the record exists with zero OpenTelemetry set-up.
"""

from __future__ import annotations

import random
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from governed_db import __version__
from governed_db._native import speedups
from governed_db.identity import Identity
from governed_db.policy.decision import Decision
from governed_db.semconv import (
    DB_COLLECTION_NAME,
    DB_OPERATION_BATCH_SIZE,
    DB_OPERATION_NAME,
    DB_QUERY_TEXT,
    DB_RESPONSE_RETURNED_ROWS,
    DB_RESPONSE_STATUS_CODE,
    DB_SYSTEM_NAME,
    ERROR_TYPE,
    GDB_ANALYSIS_ERROR,
    GDB_APPROVAL_REQUEST_ID,
    GDB_ENTRY,
    GDB_ENVIRONMENT,
    GDB_IDENTITY_ISSUER,
    GDB_IDENTITY_KIND,
    GDB_IDENTITY_ON_BEHALF_OF,
    GDB_IDENTITY_PROVENANCE,
    GDB_IDENTITY_SUBJECT,
    GDB_IDENTITY_TOKEN_ID,
    GDB_MASKED_CELLS,
    GDB_MASKED_COLUMNS,
    GDB_REASON,
    GDB_REFUSED,
    GDB_RESULT,
    GDB_ROWS_AFFECTED,
    GDB_ROWS_RETURNED,
    GDB_STATEMENT_SPAN_ID,
    GDB_TABLES,
)
from governed_db.sql.analysis import Analysis

SCOPE = "governed_db"
# the module-level generator, as the SDK's RandomIdGenerator uses: Python reseeds it in forked children
_random = random
_current_context = otel_context.get_current  # the active Context (a mapping), one call
#: the key a Context holds its current span under, learnt through the public API (set_span_in_context)
_SPAN_KEY = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, otel_context.Context())))

_attached: weakref.WeakKeyDictionary[Any, set[int]] = weakref.WeakKeyDictionary()
_private: dict[int, Any] = {}
_lock = threading.Lock()


def _sdk_provider_class() -> Any:
    from opentelemetry.sdk.trace import TracerProvider

    return TracerProvider


class _Scope:
    __slots__ = ("name", "schema_url", "version")

    def __init__(self) -> None:
        self.name, self.version, self.schema_url = SCOPE, __version__, ""


_SCOPE_INFO = _Scope()
_SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED)


class AuditOnlySpan(trace.Span):
    """A span whose only consumer is the local audit store: the same record, without the SDK's per-span work.

    Used when the application has no SDK tracer provider (or its sampler dropped the span). It carries exactly
    what the audit processor reads from an SDK span (context, parent, times, name, kind, status, attributes,
    instrumentation scope) and hands itself to the processor when it ends.
    """

    __slots__ = (
        "_base",
        "_ctx",
        "_ended",
        "_processor",
        "end_time",
        "head",
        "intent",
        "kind",
        "late",
        "name",
        "outcome",
        "parent",
        "span_id",
        "start_time",
        "status",
        "trace_id",
    )

    instrumentation_scope = _SCOPE_INFO
    #: the audit processor builds records straight from ``trace_id``/``span_id`` (no SpanContext needed)
    light = True

    def __init__(self, processor: Any, name: str, kind: SpanKind, start_time: int | None,
                 attributes: Mapping[str, Any] | None, parent_context: Any, head: bytes | None = None) -> None:
        # the current span, as trace.get_current_span() finds it, without its layers of calls (statement path)
        current = (parent_context if parent_context is not None else _current_context()).get(_SPAN_KEY)
        parent = current.get_span_context() if current is not None and isinstance(current, Span) else None
        if parent is not None and parent.is_valid:
            self.trace_id: int = parent.trace_id
            self.parent: trace.SpanContext | None = parent
        else:
            self.trace_id = _random.getrandbits(128)
            self.parent = None
        self.span_id: int = _random.getrandbits(64)
        self._ctx: trace.SpanContext | None = None  # built when someone asks (sqlcommenter, nesting)
        self.name, self.kind = name, kind
        self.start_time = start_time or time.time_ns()
        self.end_time: int | None = None
        #: the attributes it started with (shared with the Recorder's cache when ``head`` is given: never
        #: changed in place; what is set later goes to ``late``)
        self._base: Mapping[str, Any] = attributes if attributes is not None else {}
        self.status: Status | None = None
        self._processor = processor
        self._ended = False
        #: attributes set after the span started: what its outcome record adds to the intent
        self.late: dict[str, Any] = {}
        #: the start of the intent's canonical bytes, serialised once per statement and identity (or None)
        self.head = head
        self.intent: Any = None  # the intent record, once handed to the store
        self.outcome: Any = None  # the outcome record while it waits to be written (results fold into it)
        if head is not None:
            processor.start_prepared(self)  # the intent is recorded now, before the driver runs it
        else:
            processor.on_start(self)

    @property
    def attributes(self) -> Mapping[str, Any]:
        late = self.late
        return {**self._base, **late} if late else self._base

    @property
    def context(self) -> trace.SpanContext:
        ctx = self._ctx
        if ctx is None:
            ctx = self._ctx = trace.SpanContext(self.trace_id, self.span_id, False, _SAMPLED)
        return ctx

    def get_span_context(self) -> trace.SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return not self._ended

    def set_attribute(self, key: str, value: Any) -> None:
        self.late[key] = value

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        self.late.update(attributes)

    def set_status(self, status: Any, description: str | None = None) -> None:
        self.status = status if isinstance(status, Status) else Status(status, description)

    def add_event(self, name: str, attributes: Any = None, timestamp: int | None = None) -> None:
        return None

    def add_link(self, context: Any, attributes: Any = None) -> None:
        return None

    def update_name(self, name: str) -> None:
        self.name = name

    def record_exception(self, exception: BaseException, attributes: Any = None, timestamp: int | None = None,
                         escaped: bool = False) -> None:
        if ERROR_TYPE not in self.late and ERROR_TYPE not in self._base:
            self.set_attribute(ERROR_TYPE, type(exception).__qualname__)

    def end(self, end_time: int | None = None) -> None:
        native = _native[1]
        if native is not None and native(self, end_time) is not None:
            return  # a success's outcome deferred in C, as below (decision 0396)
        if self._ended:
            return
        self._ended = True
        self.end_time = end_time or time.time_ns()
        if self.intent is not None:
            self._processor.end_prepared(self)  # the statement path: its intent went to the store at start
        else:
            self._processor.on_end(self)


class AuditOnlyTracer(trace.Tracer):
    """Starts :class:`AuditOnlySpan` objects for one audit processor."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def start_span(self, name: str, context: Any = None, kind: SpanKind = SpanKind.INTERNAL,
                   attributes: Any = None, links: Any = None, start_time: int | None = None,
                   record_exception: bool = True, set_status_on_exception: bool = True) -> trace.Span:
        return AuditOnlySpan(self.processor, name, kind, start_time, attributes, context)

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - not used
        raise NotImplementedError("governed_db records statement spans with start_span()")


#: the C start and end of an audit-only statement span and the fold of its result's counts (decision 0396) —
#: (start_span, end_span, not configured yet, fold_span)
_native: list[Any] = [None, None, speedups is not None, None]


def _configure_native() -> None:
    """Hand the C span functions what they read (once, at the first audit-only Recorder: the audit modules are
    imported by then)."""
    from governed_db.audit import processor as processor_module
    from governed_db.audit import store as store_module

    _native[2] = False
    if speedups is not None and speedups.span_config(AuditOnlySpan, random, time, _current_context, _SPAN_KEY,
                                                     SpanKind.CLIENT, store_module, processor_module):
        _native[0], _native[1], _native[3] = speedups.start_span, speedups.end_span, speedups.fold_span
        from governed_db import results

        if speedups.rows_config(results.ResultState, AuditOnlyTracer):
            results.native_rows[0] = speedups.rows_all


def _private_tracer(audit_processor: Any) -> trace.Tracer:
    """The audit-only tracer for ``audit_processor`` (one per processor)."""
    with _lock:
        tracer = _private.get(id(audit_processor))
        if tracer is None:
            tracer = _private[id(audit_processor)] = (AuditOnlyTracer(audit_processor), audit_processor)
    return tracer[0]  # type: ignore[no-any-return]


def tracer_for(tracer_provider: Any, audit_processor: Any) -> trace.Tracer:
    """The tracer governed_db records with, with the audit processor attached once."""
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    if audit_processor is not None:
        if hasattr(provider, "add_span_processor"):
            with _lock:
                seen = _attached.setdefault(provider, set())
                if id(audit_processor) not in seen:
                    provider.add_span_processor(audit_processor)
                    seen.add(id(audit_processor))
        else:
            # No SDK provider configured by the application: record through a private one.
            return _private_tracer(audit_processor)
    return provider.get_tracer(SCOPE, __version__)


def recorder_for(
    tracer_provider: Any,
    audit_processor: Any,
    *,
    record_results: bool | None,
    static_attributes: Mapping[str, Any],
    environment: str,
    capture_parameters: bool,
) -> Recorder:
    """The :class:`Recorder` for one governed connection: every tracing decision is taken here, once.

    * statements go to the application's provider (global or given), with the audit processor attached;
      with no SDK provider they go to an audit-only tracer;
    * ``enabled`` is known now, or ``None`` to follow a global provider that may be set later;
    * ``fallback``: where statements the application's sampler drops still reach the audit store;
    * ``results``: where result records go — ``record_results=True`` with the statements, ``None`` to the
      audit store only, ``False`` nowhere.
    """
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    tracer = tracer_for(tracer_provider, audit_processor)
    sdk = hasattr(provider, "add_span_processor")
    audit_only = _private_tracer(audit_processor) if audit_processor is not None else None
    if audit_processor is not None:
        enabled: bool | None = True
    elif isinstance(provider, trace.ProxyTracerProvider):
        enabled = None
    else:
        enabled = not isinstance(provider, trace.NoOpTracerProvider)
    if record_results is True:
        results: trace.Tracer | None = tracer
    elif record_results is None:
        results = audit_only
    else:
        results = None
    limits = getattr(provider, "_span_limits", None)
    whole = limits is not None and getattr(limits, "max_attribute_length", 0) is None
    return Recorder(
        tracer,
        static_attributes=static_attributes,
        environment=environment,
        capture_parameters=capture_parameters,
        enabled=enabled,
        fallback=audit_only if sdk else None,
        results=results,
        audit=audit_processor if sdk and whole and hasattr(audit_processor, "start_prepared") else None,
    )


def identity_attributes(identity: Identity) -> dict[str, Any]:
    """Identity attributes: semconv ``user.*`` plus ``governed_db.identity.*``.

    Kept lean (every attribute costs on the hot path): provenance and issuer
    appear only for verified identities — no such attribute means self-declared.
    """
    attrs: dict[str, Any] = {
        "user.id": identity.subject,
        GDB_IDENTITY_SUBJECT: identity.subject,
        GDB_IDENTITY_KIND: identity.kind,
    }
    if identity.roles:
        attrs["user.roles"] = list(identity.roles)
    if identity.on_behalf_of:
        attrs[GDB_IDENTITY_ON_BEHALF_OF] = identity.on_behalf_of
    if identity.verified:
        attrs[GDB_IDENTITY_PROVENANCE] = "verified"
        if identity.issuer:
            attrs[GDB_IDENTITY_ISSUER] = identity.issuer
        if identity.token_id:
            attrs[GDB_IDENTITY_TOKEN_ID] = identity.token_id
    return attrs


class Recorder:
    """Builds and ends statement spans for one governed connection.

    Hot path: when nothing records, :meth:`start` returns ``None`` without
    building a span or an attribute; when something does, the span name and the
    attributes that depend only on the (cached) analysis, identity or decision
    are built once and merged into one dict handed to ``start_span``.
    """

    __slots__ = ("_by_analysis", "_by_decision", "_by_identity", "_enabled", "_intents", "_light", "_next_check",
                 "audit", "capture_parameters",
                 "environment", "fallback", "results", "static", "tracer")

    def __init__(
        self,
        tracer: trace.Tracer,
        *,
        static_attributes: Mapping[str, Any],
        environment: str,
        capture_parameters: bool,
        enabled: bool | None = None,
        fallback: trace.Tracer | None = None,
        results: trace.Tracer | None = None,
        audit: Any = None,
    ) -> None:
        self.tracer = tracer
        #: audit-only tracer for statements the application's sampler drops
        self.fallback = fallback
        #: where result records go (None: nowhere); see the ``record_results`` option
        self.results = results
        self.static = dict(static_attributes)
        self.environment = environment
        self.capture_parameters = capture_parameters
        #: True/False when known at wrap time; None: follow the global provider (it may be set later)
        self._enabled = enabled
        self._next_check = 0.0
        self._by_analysis: dict[int, tuple[Analysis, str, dict[str, Any]]] = {}
        self._by_identity: dict[Identity, dict[str, Any]] = {}
        self._by_decision: dict[int, tuple[Decision, dict[str, Any]]] = {}
        #: the audit-only tracer (no SDK provider): intents are written from bytes prepared once per
        #: (statement, identity, decision, entry) — see :meth:`_prepare`
        self._light = isinstance(tracer, AuditOnlyTracer)
        if self._light and _native[2]:
            _configure_native()
        #: the audit processor on the application's SDK provider, when its spans keep our attributes whole
        #: (no attribute length limit): intents are then prepared too
        self.audit = audit
        self._intents: dict[tuple[int, Identity, int, str], tuple[Analysis, Decision, str, dict[str, Any],
                                                                  bytes | None]] = {}

    @property
    def enabled(self) -> bool:
        if self._enabled is not None:
            return self._enabled
        # Following the global provider: OpenTelemetry reads os.environ on every get_tracer_provider() call
        # until one is set, so look at most once a second; a global provider can only be set once, so once
        # seen it is final. (Set OpenTelemetry up before wrapping, or pass tracer_provider=, to record from
        # the first statement.)
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + 1.0
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            return False
        self._enabled = True
        return True

    def start(
        self,
        *,
        entry: str,
        analysis: Analysis,
        identity: Identity,
        decision: Decision,
        start_ns: int,
        params: Any = None,
    ) -> Span | None:
        """The statement's span; the caller has checked :attr:`enabled` (it took ``start_ns`` only then)."""
        if self._light and (params is None or not self.capture_parameters):
            key = (id(analysis), identity, id(decision), entry)
            hit = self._intents.get(key)
            if hit is None or hit[0] is not analysis or hit[1] is not decision:
                hit = self._prepare(key, analysis, identity, decision, entry)
            processor = self.tracer.processor  # type: ignore[attr-defined]
            native = _native[0]
            if native is not None and hit[4] is not None:
                span = native(processor, hit[2], start_ns, hit[3], hit[4])
                if span is not None:  # started and its intent journaled in C, as below (decision 0396)
                    return span  # type: ignore[no-any-return]
            return AuditOnlySpan(processor, hit[2], SpanKind.CLIENT, start_ns, hit[3], None, hit[4])
        audit = self.audit
        if audit is not None and (params is None or not self.capture_parameters):
            # an SDK provider with the audit processor attached: its on_start writes the intent from the bytes
            # prepared for this statement, handed over in this thread for the duration of start_span
            key = (id(analysis), identity, id(decision), entry)
            hit = self._intents.get(key)
            if hit is None or hit[0] is not analysis or hit[1] is not decision:
                hit = self._prepare(key, analysis, identity, decision, entry)
            local = audit._local
            local.prepared = hit
            try:
                span = self.tracer.start_span(hit[2], kind=SpanKind.CLIENT, start_time=start_ns, attributes=hit[3])
            finally:
                local.prepared = None
            if self.fallback is not None and not span.is_recording():
                span = self.fallback.start_span(hit[2], kind=SpanKind.CLIENT, start_time=start_ns,
                                                attributes=hit[3])
            return span
        name, attrs = self._attributes(analysis, identity, decision, entry)
        if self.capture_parameters and params is not None:
            attrs.update(_parameter_attributes(params))
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, start_time=start_ns, attributes=attrs)
        if self.fallback is not None and not span.is_recording():
            span = self.fallback.start_span(name, kind=SpanKind.CLIENT, start_time=start_ns, attributes=attrs)
        return span

    def _attributes(self, analysis: Analysis, identity: Identity, decision: Decision, entry: str
                    ) -> tuple[str, dict[str, Any]]:
        cached = self._by_analysis.get(id(analysis))
        if cached is None or cached[0] is not analysis:
            cached = self._remember_analysis(analysis)
        id_attrs = self._by_identity.get(identity)
        if id_attrs is None:
            if len(self._by_identity) > 256:
                self._by_identity.clear()
            id_attrs = self._by_identity[identity] = identity_attributes(identity)
        dec = self._by_decision.get(id(decision))
        if dec is None or dec[0] is not decision:
            dec = self._remember_decision(decision)
        attrs = {**self.static, **cached[2], **id_attrs, **dec[1]}
        if entry != "cursor.execute":
            attrs[GDB_ENTRY] = entry
        return cached[1], attrs

    def _prepare(self, key: tuple[int, Identity, int, str], analysis: Analysis, identity: Identity,
                 decision: Decision, entry: str) -> tuple[Analysis, Decision, str, dict[str, Any], bytes | None]:
        """A statement's span name, attributes and the start of its intent record's canonical bytes.

        ``None`` instead of bytes when an attribute is not plain JSON (a lone surrogate in the text, a
        float): the intent is then built the general way.
        """
        from governed_db.audit import records as audit_records

        name, attrs = self._attributes(analysis, identity, decision, entry)
        head: bytes | None
        try:
            if any(type(v) is float for v in attrs.values()):
                raise TypeError("floats take the general path")
            head = audit_records.intent_head(audit_records.attributes_json(attrs), name, "CLIENT")
        except (TypeError, ValueError):
            head = None
        if len(self._intents) > 1024:
            self._intents.clear()
        hit = self._intents[key] = (analysis, decision, name, attrs, head)
        return hit

    def _remember_analysis(self, analysis: Analysis) -> tuple[Analysis, str, dict[str, Any]]:
        attrs: dict[str, Any] = {DB_QUERY_TEXT: analysis.normalized, GDB_ENVIRONMENT: self.environment}
        op = analysis.operation
        if op:
            attrs[DB_OPERATION_NAME] = op
        tables = analysis.tables
        if tables:
            attrs[GDB_TABLES] = list(tables)
            if len(tables) == 1:
                attrs[DB_COLLECTION_NAME] = tables[0]
        if len(analysis.statements) > 1:
            attrs[DB_OPERATION_BATCH_SIZE] = len(analysis.statements)
        if analysis.error:
            attrs[GDB_ANALYSIS_ERROR] = analysis.error
        if len(self._by_analysis) > 1024:
            self._by_analysis.clear()
        entry = (analysis, _span_name(analysis, self.static), attrs)
        self._by_analysis[id(analysis)] = entry
        return entry

    def _remember_decision(self, decision: Decision) -> tuple[Decision, dict[str, Any]]:
        attrs: dict[str, Any] = {"governed_db.decision": decision.action.value}
        if decision.hits:
            attrs["governed_db.rules"] = list(decision.rules)
            if decision.action.severity > 0:
                attrs[GDB_REASON] = decision.reason
        if len(self._by_decision) > 1024:
            self._by_decision.clear()
        entry = (decision, attrs)
        self._by_decision[id(decision)] = entry
        return entry

    @staticmethod
    def make_current(span: Span | None) -> Any:
        """Attach ``span`` as current (so stacked instrumentation nests under it); returns a detach token."""
        if span is None:
            return None
        return otel_context.attach(trace.set_span_in_context(span))

    @staticmethod
    def detach(token: Any) -> None:
        if token is not None:
            otel_context.detach(token)

    @staticmethod
    def refused(span: Span | None, exc: BaseException) -> None:
        if span is not None and span.is_recording():
            attrs: dict[str, Any] = {GDB_REFUSED: True, ERROR_TYPE: type(exc).__name__}
            request_id = getattr(exc, "request_id", None)
            if request_id:
                attrs[GDB_APPROVAL_REQUEST_ID] = request_id
            span.set_attributes(attrs)
            span.set_status(Status(StatusCode.ERROR, "refused by governed_db"))

    @staticmethod
    def failed(span: Span | None, exc: BaseException) -> None:
        if span is not None and span.is_recording():
            span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
            code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
            if code:
                span.set_attribute(DB_RESPONSE_STATUS_CODE, str(code))
            span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))

    @staticmethod
    def succeeded(span: Span | None, *, rowcount: int | None, masked_columns: tuple[str, ...]) -> None:
        if span is None:
            return
        if rowcount is not None and rowcount >= 0:
            span.set_attribute(GDB_ROWS_AFFECTED, rowcount)
        if masked_columns:
            span.set_attribute(GDB_MASKED_COLUMNS, list(masked_columns))

    def result_consumed(
        self, statement_span: Span, *, rows: int, masked_cells: int, masked_columns: tuple[str, ...]
    ) -> None:
        """How many rows the result set actually handed out: folded into the statement's outcome record while
        that still waits to be written (the usual case: fetched right after execute), else a short follow-up
        record."""
        if self.results is None:
            return
        fold = _native[3]
        # the usual case: into the statement's outcome, waiting in the store, in one C call (decision 0396)
        if fold is not None and type(self.results) is AuditOnlyTracer and fold(
            statement_span, rows, masked_cells, masked_columns
        ):
            if masked_cells:
                self.results.processor.observe_fold(  # type: ignore[attr-defined]
                    statement_span.outcome, rows, masked_cells, masked_columns, self.environment  # type: ignore[attr-defined]
                )
            return
        if isinstance(statement_span, AuditOnlySpan):
            trace_id, span_id = statement_span.trace_id, statement_span.span_id
            outcome: Any = statement_span.outcome
        else:
            sc = statement_span.get_span_context()
            trace_id, span_id = sc.trace_id, sc.span_id
            outcome = span_id
        if outcome is not None and isinstance(self.results, AuditOnlyTracer):
            # audit store only: into the statement's outcome record while that waits to be written
            processor = self.results.processor
            if type(outcome) is int:  # an SDK span's outcome, found by its span id
                folded: dict[str, Any] = {DB_RESPONSE_RETURNED_ROWS: rows, GDB_ROWS_RETURNED: rows,
                                          GDB_MASKED_CELLS: masked_cells}
                if masked_columns:
                    folded[GDB_MASKED_COLUMNS] = list(masked_columns)
                if processor.fold_result(outcome, folded, self.environment):
                    return
            elif processor.fold_counts(outcome, rows, masked_cells, tuple(masked_columns), self.environment):
                return
        attrs: dict[str, Any] = {
            DB_RESPONSE_RETURNED_ROWS: rows,
            GDB_ROWS_RETURNED: rows,
            GDB_MASKED_CELLS: masked_cells,
            GDB_ENVIRONMENT: self.environment,
            GDB_STATEMENT_SPAN_ID: format(span_id, "016x"),
        }
        if masked_columns:
            attrs[GDB_MASKED_COLUMNS] = list(masked_columns)
        if isinstance(self.results, AuditOnlyTracer):
            # audit store only: the record straight from the statement's ids, no span object or context
            self.results.processor.record_result(trace_id, span_id, attrs)
            return
        ctx = trace.set_span_in_context(statement_span)
        span = self.results.start_span(GDB_RESULT, context=ctx, kind=SpanKind.INTERNAL, attributes=attrs)
        if self.fallback is not None and not span.is_recording():
            span = self.fallback.start_span(GDB_RESULT, context=ctx, kind=SpanKind.INTERNAL, attributes=attrs)
        span.end()


def _span_name(analysis: Analysis, static: Mapping[str, Any]) -> str:
    op = analysis.operation
    if not op:
        return str(static.get(DB_SYSTEM_NAME, "db"))
    tables = analysis.tables
    return f"{op} {tables[0]}" if len(tables) == 1 else op


def _parameter_attributes(params: Any) -> dict[str, Any]:
    if isinstance(params, Mapping):
        items = params.items()
    elif isinstance(params, (list, tuple)):
        items = enumerate(params)  # type: ignore[assignment]
    else:
        return {}
    return {f"db.query.parameter.{k}": repr(v)[:256] for k, v in items}
