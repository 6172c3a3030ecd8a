"""OpenTelemetry metrics on the statement path: operation duration (database semantic conventions), MCP calls.

* ``db.client.operation.duration`` (histogram, seconds) for every statement that reached the database, with
  ``db.system.name``, ``db.namespace``, ``db.operation.name``, ``db.collection.name`` (one table only) and
  ``error.type`` when the driver raised - the stable database client metric. A refused statement never
  reached the database, so it is not an operation: refusals are counted by ``governed_db.refusals``, which the
  audit span processor (or ``governed_db.audit.metrics_processor()``) derives from the spans, by rule;
* ``mcp.server.operation.duration`` (histogram, seconds) for each MCP tool call, with ``mcp.method.name``
  ``tools/call``, ``gen_ai.tool.name`` and ``error.type`` when the call ended in a tool error (MCP conventions).

Instruments come from the ``meter_provider=`` option or the global provider (a provider set after ``wrap()``
still receives them: the API's proxy instruments forward once it is set). No identity, statement text or
parameter is ever a metric attribute: those are unbounded and personal; they belong to the audit record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics

from governed_db import __version__
from governed_db.semconv import (
    DB_CLIENT_OPERATION_DURATION,
    DB_COLLECTION_NAME,
    DB_NAMESPACE,
    DB_OPERATION_NAME,
    DB_SYSTEM_NAME,
    ERROR_TYPE,
    MCP_METHOD_NAME,
    MCP_SERVER_OPERATION_DURATION,
    SERVER_ADDRESS,
    SERVER_PORT,
)

if TYPE_CHECKING:
    from governed_db.sql.analysis import Analysis

SCOPE = "governed_db"
#: the semantic conventions' advisory buckets for db.client.operation.duration (seconds)
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
_STATIC_KEYS = (DB_SYSTEM_NAME, DB_NAMESPACE, SERVER_ADDRESS, SERVER_PORT)


def _meter(meter_provider: Any) -> metrics.Meter:
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    return provider.get_meter(SCOPE, __version__)


class StatementMetrics:
    """The per-connection instruments; :meth:`record` is called once per statement by the pipeline."""

    __slots__ = ("_by_analysis", "duration", "static")

    def __init__(self, meter_provider: Any, static_attributes: Mapping[str, Any]) -> None:
        meter = _meter(meter_provider)
        self.duration = meter.create_histogram(
            DB_CLIENT_OPERATION_DURATION, unit="s", description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )  # fmt: skip
        self.static = {k: static_attributes[k] for k in _STATIC_KEYS if k in static_attributes}
        self._by_analysis: dict[int, tuple[Analysis, dict[str, Any]]] = {}

    @property
    def live(self) -> bool:
        """False while what is recorded goes nowhere: no provider was passed and the global one is not set yet
        (the API's proxy instrument drops every measurement until it is). The pipeline then does not time the
        statement at all; once a provider is set, the next statement is timed."""
        return getattr(self.duration, "_real_instrument", self) is not None

    def _attributes(self, analysis: Analysis) -> dict[str, Any]:
        cached = self._by_analysis.get(id(analysis))
        if cached is not None and cached[0] is analysis:
            return cached[1]
        attrs = dict(self.static)
        if analysis.operation:
            attrs[DB_OPERATION_NAME] = analysis.operation
        if len(analysis.tables) == 1:
            attrs[DB_COLLECTION_NAME] = analysis.tables[0]
        if len(self._by_analysis) > 1024:
            self._by_analysis.clear()
        self._by_analysis[id(analysis)] = (analysis, attrs)
        return attrs

    def record(self, analysis: Analysis, error: BaseException | None, refused: bool, seconds: float) -> None:
        if refused:
            return  # never reached the database (counted as a refusal from the span)
        cached = self._by_analysis.get(id(analysis))  # _attributes' hot path, inlined (once per statement)
        attrs = cached[1] if cached is not None and cached[0] is analysis else self._attributes(analysis)
        if error is not None:
            attrs = {**attrs, ERROR_TYPE: type(error).__qualname__}
        self.duration.record(seconds, attrs)


class ToolMetrics:
    """``mcp.server.operation.duration`` for tool calls (MCP semantic conventions)."""

    def __init__(self, meter_provider: Any = None) -> None:
        self.duration = _meter(meter_provider).create_histogram(
            MCP_SERVER_OPERATION_DURATION, unit="s", description="Duration of MCP requests on the server.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )  # fmt: skip

    def record(self, tool: str, seconds: float, error: BaseException | None) -> None:
        attrs = {MCP_METHOD_NAME: "tools/call", "gen_ai.tool.name": tool, "gen_ai.operation.name": "execute_tool"}
        if error is not None:
            attrs[ERROR_TYPE] = "tool_error" if type(error).__name__ == "ToolError" else type(error).__qualname__
        self.duration.record(seconds, attrs)


__all__ = ["DURATION_BUCKETS", "StatementMetrics", "ToolMetrics"]
