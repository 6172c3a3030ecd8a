"""Getting records out: JSON Lines, CSV, and OTLP to an OpenTelemetry Collector.

JSONL exports the stored lines as they are (hashes included), so an export of
the whole store is itself verifiable. OTLP rebuilds the spans — same trace and
span ids, times, attributes and status — and sends them with the standard
OTLP/HTTP exporter, which is how the record reaches any OpenTelemetry backend.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from typing import IO, Any

from governed_db.audit import records as R
from governed_db.audit.search import iso
from governed_db.errors import ConfigurationError
from governed_db.semconv import (
    DB_OPERATION_NAME,
    DB_QUERY_TEXT,
    DB_SYSTEM_NAME,
    ERROR_TYPE,
    GDB_AUDIT_HASH,
    GDB_AUDIT_SEQ,
    GDB_ENVIRONMENT,
    GDB_IDENTITY_KIND,
    GDB_IDENTITY_ON_BEHALF_OF,
    GDB_IDENTITY_SUBJECT,
    GDB_MASKED_COLUMNS,
    GDB_TABLES,
)

CSV_COLUMNS = (
    "seq", "time", "end", "name", "identity", "kind", "on_behalf_of", "environment", "decision", "rules",
    "operation", "tables", "masked_columns", "statement", "db_system", "status", "error_type",
    "trace_id", "span_id", "hash",
)


def write_jsonl(recs: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """One record per line; a stored record is written back byte for byte as the store holds it."""
    n = 0
    for rec in recs:
        if "hash" in rec and "outcome" not in rec:  # as stored (a merged statement record is not a stored line)
            out.write(R.expected_line(rec, None).decode("utf-8"))
        else:
            out.write(json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n")
        n += 1
    return n


def csv_row(rec: dict[str, Any]) -> dict[str, Any]:
    a = R.attr
    return {
        "seq": rec.get("seq"), "time": iso(rec.get("time")), "end": iso(rec.get("end")), "name": rec.get("name"),
        "identity": a(rec, GDB_IDENTITY_SUBJECT, ""), "kind": a(rec, GDB_IDENTITY_KIND, ""),
        "on_behalf_of": a(rec, GDB_IDENTITY_ON_BEHALF_OF, ""),
        "environment": a(rec, GDB_ENVIRONMENT, ""), "decision": a(rec, "governed_db.decision", ""),
        "rules": " ".join(R.as_list(a(rec, "governed_db.rules"))),
        "operation": a(rec, DB_OPERATION_NAME, ""), "tables": " ".join(R.as_list(a(rec, GDB_TABLES))),
        "masked_columns": " ".join(R.as_list(a(rec, GDB_MASKED_COLUMNS))),
        "statement": a(rec, DB_QUERY_TEXT, ""), "db_system": a(rec, DB_SYSTEM_NAME, ""),
        "status": rec.get("status", ""), "error_type": a(rec, ERROR_TYPE, ""),
        "trace_id": rec.get("trace_id", ""), "span_id": rec.get("span_id", ""), "hash": rec.get("hash"),
    }


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    # recorded text (identities, statements) is attacker-influenced: keep spreadsheets from running it
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(recs: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """CSV for spreadsheets; text cells that would start a formula get a leading apostrophe."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    n = 0
    for rec in recs:
        writer.writerow({k: _cell(v) for k, v in csv_row(rec).items()})
        n += 1
    return n


def to_readable_span(rec: dict[str, Any], resource: Any = None) -> Any:
    """An SDK ``ReadableSpan`` equal to the one that was recorded."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    trace_id = int(rec["trace_id"], 16)
    ctx = SpanContext(trace_id, int(rec["span_id"], 16), is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    parent = None
    if rec.get("parent_span_id"):
        parent = SpanContext(trace_id, int(rec["parent_span_id"], 16), is_remote=False,
                             trace_flags=TraceFlags(TraceFlags.SAMPLED))
    attrs = {k: v for k, v in (rec.get("attrs") or {}).items() if v is not None}
    attrs[GDB_AUDIT_SEQ] = rec["seq"]
    attrs[GDB_AUDIT_HASH] = rec["hash"]
    return ReadableSpan(
        name=str(rec.get("name", "")),
        context=ctx,
        parent=parent,
        resource=resource if resource is not None else Resource.create({"service.name": "governed_db-audit"}),
        attributes=attrs,
        kind=getattr(SpanKind, str(rec.get("kind") or "INTERNAL"), SpanKind.INTERNAL),
        status=Status(getattr(StatusCode, str(rec.get("status") or "UNSET"), StatusCode.UNSET),
                      rec.get("status_message")),
        start_time=rec.get("time"),
        end_time=rec.get("end"),
        instrumentation_scope=InstrumentationScope(R.SCOPE),
    )


def _batches(recs: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for rec in recs:
        if rec.get("type") != R.SPAN or not rec.get("trace_id"):
            continue
        batch.append(rec)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def export_otlp(recs: Iterable[dict[str, Any]], endpoint: str, *, headers: dict[str, str] | None = None,
                timeout: float = 10.0, batch_size: int = 512) -> int:
    """Send span records to an OTLP/HTTP endpoint (e.g. ``http://collector:4318/v1/traces``); returns the count."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import SpanExportResult
    except ImportError:
        raise ConfigurationError(
            "OTLP export needs opentelemetry-exporter-otlp-proto-http: pip install 'governed-db[otlp]'"
        ) from None
    if not endpoint.startswith(("http://", "https://")):
        raise ConfigurationError(f"the OTLP endpoint must be an http(s) URL, got {endpoint!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise ConfigurationError(f"the OTLP timeout must be a positive, finite number of seconds, got {timeout!r}")
    if not endpoint.rstrip("/").endswith("/v1/traces"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers or {}, timeout=timeout)
    sent = 0
    try:
        for batch in _batches(recs, batch_size):
            result = exporter.export([to_readable_span(r) for r in batch])
            if result is not SpanExportResult.SUCCESS:
                raise OSError(f"the OTLP endpoint {endpoint} did not accept the export after {sent} spans; "
                              "check that a Collector listens there and accepts OTLP/HTTP protobuf")
            sent += len(batch)
    finally:
        exporter.shutdown()  # type: ignore[no-untyped-call]
    return sent


def open_output(path: str | os.PathLike[str] | None) -> IO[str]:
    import sys

    from governed_db.config_files import open_output_file

    if path is None or str(path) == "-":
        return sys.stdout
    return open_output_file(os.fspath(path), "the export")  # a FIFO or device: ConfigurationError, never a wait
