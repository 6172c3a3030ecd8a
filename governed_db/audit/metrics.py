"""Metrics derived from the spans (OpenTelemetry metrics API), so the statement path stays as it is.

==================================  =======  ==========================================
``governed_db.statements``          counter  statements run or refused
``governed_db.refusals``            counter  statements refused (deny, or approval needed)
``governed_db.approvals``           counter  approval transitions (requested, approved, denied, ...)
``governed_db.masked_cells``        counter  cells masked in results handed out
==================================  =======  ==========================================

All carry ``governed_db.identity.kind`` and ``governed_db.environment``; refusals also carry
``governed_db.rule`` (the first rule that decided) and ``governed_db.decision``; masked
cells are attributed to the kind of the statement whose result they came from;
approvals also carry ``governed_db.approval.transition`` and the requester's kind.
A statement that waits for approval counts as a refusal (it did not run).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from opentelemetry import metrics

from governed_db.audit import records as R
from governed_db.semconv import (
    GDB_APPROVAL,
    GDB_APPROVAL_TRANSITION,
    GDB_ENVIRONMENT,
    GDB_IDENTITY_KIND,
    GDB_MASKED_CELLS,
    GDB_REFUSALS,
    GDB_REFUSED,
    GDB_RESULT,
    GDB_RULE,
    GDB_STATEMENTS,
)

_KINDS_REMEMBERED = 4096


class SpanMetrics:
    """Counts statements, refusals, approvals and masked cells from finished spans."""

    def __init__(self, meter_provider: Any = None) -> None:
        from governed_db import __version__

        meter = (meter_provider.get_meter(R.SCOPE, __version__) if meter_provider is not None
                 else metrics.get_meter(R.SCOPE, __version__))  # the global proxy: follows set_meter_provider
        #: following the global provider, which nobody has set yet: the proxy instruments drop every count
        #: until one is set, so counting is skipped until then (checked at most once a second; from then on
        #: for good — a global provider is set once)
        self._waiting = meter_provider is None
        self._next_check = 0.0
        self.statements = meter.create_counter(GDB_STATEMENTS, "{statement}", "statements seen")
        self.refusals = meter.create_counter(GDB_REFUSALS, "{statement}", "statements refused")
        self.approvals = meter.create_counter("governed_db.approvals", "{event}", "approval transitions")
        self.masked_cells = meter.create_counter(GDB_MASKED_CELLS, "{cell}", "cells masked in results")
        # result spans end after their statement span and carry no identity: remember kinds briefly
        self._kind_by_span: OrderedDict[int, str] = OrderedDict()
        #: the label set of each (identity kind, environment): built once (the SDK only reads them)
        self._labels: dict[tuple[str, str], dict[str, str]] = {}

    def waiting(self) -> bool:
        """True while counts would be dropped anyway (no global MeterProvider set yet)."""
        if not self._waiting:
            return False
        now = time.monotonic()
        if now < self._next_check:
            return True
        self._next_check = now + 1.0
        if type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider":
            return True
        self._waiting = False
        return False

    def observe(self, span: Any) -> None:
        if self._waiting and self.waiting():
            return
        attrs = span.attributes or {}
        env = str(attrs.get(GDB_ENVIRONMENT, "unknown"))
        if span.name == GDB_RESULT:
            self.observe_result(attrs, span.parent.span_id if span.parent is not None else 0)
            return
        kind = str(attrs.get(GDB_IDENTITY_KIND, "unknown"))
        labels = self._labels.get((kind, env))
        if labels is None:
            if len(self._labels) > 256:
                self._labels.clear()
            labels = self._labels[(kind, env)] = {GDB_IDENTITY_KIND: kind, GDB_ENVIRONMENT: env}
        if span.name.startswith(GDB_APPROVAL):
            transition = str(attrs.get(GDB_APPROVAL_TRANSITION) or span.name.rpartition(".")[2])
            self.approvals.add(1, {**labels, GDB_APPROVAL_TRANSITION: transition})
            return
        decision = attrs.get("governed_db.decision")
        if decision is None:
            return
        self.statements.add(1, labels)
        if attrs.get(GDB_REFUSED) or decision == "deny":
            rules = attrs.get("governed_db.rules") or ("governed_db",)
            # the rule that decided and the decision: bounded (the rule catalog), and what an alert needs
            self.refusals.add(1, {**labels, GDB_RULE: str(rules[0]), "governed_db.decision": str(decision)})
        remembered = self._kind_by_span
        remembered[R.span_id_of(span)] = kind
        if len(remembered) > _KINDS_REMEMBERED:
            remembered.popitem(last=False)

    def observe_result(self, attrs: Any, statement_span_id: int) -> None:
        """Masked cells of a result, attributed to the kind of the statement it came from."""
        cells = int(attrs.get(GDB_MASKED_CELLS, 0) or 0)
        if cells and not (self._waiting and self.waiting()):
            env = str(attrs.get(GDB_ENVIRONMENT, "unknown"))
            kind = self._kind_by_span.get(statement_span_id, "unknown")
            self.masked_cells.add(cells, {GDB_IDENTITY_KIND: kind, GDB_ENVIRONMENT: env})
