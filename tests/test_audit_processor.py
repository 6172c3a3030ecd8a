"""The span processor end to end: wrap() -> statements -> records in the store; options; metrics."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import governed_db
from governed_db import Identity
from governed_db.audit import AuditSpanProcessor, AuditStore, audit_processor, default_store_path, verify
from governed_db.audit.metrics import SpanMetrics
from governed_db.audit.store import read_records
from governed_db.errors import ConfigurationError, GuardrailViolation
from governed_db.identity import acting_as
from governed_db.policy import evaluate


def _statements(path: Path) -> list[dict[str, Any]]:
    return [r for r in read_records(path) if r.get("type") == "span" and "governed_db.decision" in r["attrs"]]


def test_wrap_records_allowed_and_refused_statements(tmp_path: Path) -> None:
    """Allowed and refused statements both land in the store, with identity, decision, rules and tables."""
    store = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE users (id INTEGER, email TEXT)")  # schema set up outside governance
    conn = governed_db.wrap(
        raw,
        audit=store,
        environment="production",
        identity=Identity("report-bot", kind="agent", on_behalf_of="alice"),
    )
    conn.execute("INSERT INTO users VALUES (1, 'a@example.com')")
    assert conn.execute("SELECT email FROM users WHERE id = 1").fetchall()
    with pytest.raises(GuardrailViolation):
        conn.execute("DROP TABLE users")

    recs = _statements(store)
    ops = [r["attrs"]["db.operation.name"] for r in recs]
    assert ops == ["INSERT", "SELECT", "DROP TABLE"]
    refused = recs[-1]
    assert refused["attrs"]["governed_db.decision"] == "deny"
    expected = evaluate("DROP TABLE users", dialect="sqlite", environment="production").rules
    assert expected and refused["attrs"]["governed_db.rules"] == list(expected)
    assert refused["attrs"]["error.type"] == "GuardrailViolation"
    assert refused["status"] == "ERROR"
    for r in recs:
        assert r["attrs"]["governed_db.identity.subject"] == "report-bot"
        assert r["attrs"]["governed_db.identity.kind"] == "agent"
        assert r["attrs"]["governed_db.identity.on_behalf_of"] == "alice"
        assert r["attrs"]["governed_db.tables"] == ["users"]
        assert len(r["trace_id"]) == 32 and len(r["span_id"]) == 16
        assert r["time"] <= r["end"]
    # the rows the SELECT handed out travel in its outcome (fetched before the outcome was written)
    assert recs[1]["attrs"]["governed_db.rows_returned"] == 1
    assert recs[1]["attrs"]["db.response.returned_rows"] == 1
    assert not any(r.get("name") == "governed_db.result" for r in read_records(store))
    assert verify(store).ok


def test_literals_and_parameters_are_not_stored_by_default(tmp_path: Path) -> None:
    """Neither literal values in the SQL nor bound parameters reach the store unless capture is enabled."""
    store = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE s (v TEXT)")
    conn = governed_db.wrap(raw, audit=store)
    conn.execute("INSERT INTO s VALUES ('literal-secret-1')")
    conn.execute("INSERT INTO s VALUES (?)", ("param-secret-2",))
    data = store.read_bytes()
    assert b"literal-secret-1" not in data and b"param-secret-2" not in data

    opted = tmp_path / "opted.jsonl"
    raw2 = sqlite3.connect(":memory:")
    raw2.execute("CREATE TABLE s (v TEXT)")
    conn2 = governed_db.wrap(raw2, audit=opted, capture_parameters=True)
    conn2.execute("INSERT INTO s VALUES (?)", ("param-visible-3",))
    assert b"param-visible-3" in opted.read_bytes()


def test_only_governed_db_spans_are_recorded(tmp_path: Path, spans: Any) -> None:
    """On the application's own provider, spans of other instrumentation scopes stay out of the store."""
    provider, exporter = spans
    store = tmp_path / "audit.jsonl"
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=store, tracer_provider=provider)
    with provider.get_tracer("my.app").start_as_current_span("handle request"):
        conn.execute("SELECT 1")
    names = [r["name"] for r in read_records(store) if r["type"] == "span"]
    assert "handle request" not in names
    assert any(n.startswith("SELECT") for n in names)
    assert any(s.name == "handle request" for s in exporter.get_finished_spans())


def test_approval_transition_spans_are_recorded(tmp_path: Path, spans: Any) -> None:
    """governed_db.approval.* spans (emitted by the approvals engine) are part of the record."""
    provider, _ = spans
    proc = audit_processor(tmp_path / "audit.jsonl")
    assert proc is not None
    provider.add_span_processor(proc)
    with provider.get_tracer("governed_db").start_as_current_span(
        "governed_db.approval.approved", attributes={"governed_db.approval.reviewer": "carol"}
    ):
        pass
    (rec,) = [r for r in read_records(tmp_path / "audit.jsonl") if r["type"] == "span"]
    assert rec["name"] == "governed_db.approval.approved"
    assert rec["attrs"]["governed_db.approval.reviewer"] == "carol"


def test_audit_option_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """audit= accepts False, a path, a mapping, a store, a processor; one processor per store path."""
    assert audit_processor(False) is None
    a = audit_processor(tmp_path / "x.jsonl")
    assert a is not None and audit_processor(str(tmp_path / "x.jsonl")) is a
    assert audit_processor(a) is a
    store = AuditStore(tmp_path / "y.jsonl")
    b = audit_processor(store)
    assert isinstance(b, AuditSpanProcessor) and b.store is store and audit_processor(store) is b
    other = AuditStore(tmp_path / "x.jsonl")  # the application's own object for a cached path: it is used
    assert audit_processor(other).store is other  # type: ignore[union-attr]
    c = audit_processor({"path": tmp_path / "z.jsonl", "key": "k", "checkpoint_every": 7})
    assert c is not None and c.store.checkpoint_every == 7 and c.store.key == b"k"
    monkeypatch.setenv("GOVERNED_DB_AUDIT", str(tmp_path / "env.jsonl"))
    d = audit_processor(None)
    assert d is not None and d.store.path == (tmp_path / "env.jsonl").resolve()
    for bad in ("", 42, {"nope": 1}):
        with pytest.raises(ConfigurationError):
            audit_processor(bad)


def test_default_location_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without GOVERNED_DB_AUDIT the default store lives under $XDG_DATA_HOME/governed_db/."""
    monkeypatch.delenv("GOVERNED_DB_AUDIT")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_store_path() == tmp_path / "governed_db" / "audit.jsonl"


def test_key_from_environment_seals_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GOVERNED_DB_AUDIT_KEY is used for the checkpoint MACs when no key is configured."""
    monkeypatch.setenv("GOVERNED_DB_AUDIT_KEY", "env-key")
    proc = audit_processor(tmp_path / "k.jsonl")
    assert proc is not None
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc)
    conn.execute("SELECT 1")
    proc.store.checkpoint()
    result = verify(tmp_path / "k.jsonl", key="env-key")
    assert result.ok and result.macs_checked == result.records == 4  # genesis, intent, outcome, checkpoint
    assert not verify(tmp_path / "k.jsonl", key="another-key").ok


def test_audit_false_records_nothing(tmp_path: Path) -> None:
    """audit=False leaves the default store untouched."""
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=False)
    conn.execute("SELECT 1")
    assert not (tmp_path / "audit-default").exists()


def test_store_failure_outside_production_does_not_break_the_statement(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """In development a store that cannot be written does not stop the statement; the failure is logged."""
    proc = audit_processor(tmp_path / "f.jsonl")
    assert proc is not None

    def boom(body: Any) -> int:
        raise OSError(28, "No space left on device")

    proc.store.append = boom  # type: ignore[method-assign]
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, environment="development")
    assert conn.execute("SELECT 1").fetchall() == [(1,)]
    assert proc.failures >= 1
    assert "could not record" in caplog.text


def _points(reader: InMemoryMetricReader) -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    a = p.attributes
                    out[(m.name, a["governed_db.identity.kind"], a["governed_db.environment"])] = p.value
    return out


def test_metrics_by_identity_kind_and_environment(tmp_path: Path, spans: Any) -> None:
    """Statements, refusals, approvals and masked cells are counted from the spans by kind and environment."""
    provider, _ = spans
    reader = InMemoryMetricReader()
    proc = AuditSpanProcessor(AuditStore(tmp_path / "m.jsonl"), metrics=SpanMetrics(MeterProvider([reader])))
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (a)")
    conn = governed_db.wrap(raw, audit=proc, tracer_provider=provider, environment="production")
    conn.execute("SELECT a FROM t").fetchall()
    with acting_as(Identity("bot", kind="agent")):
        conn.execute("SELECT * FROM t").fetchall()
        with pytest.raises(GuardrailViolation):
            conn.execute("DROP TABLE t")
    with provider.get_tracer("governed_db").start_as_current_span(
        "governed_db.approval.requested",
        attributes={
            "governed_db.identity.kind": "agent",
            "governed_db.environment": "production",
            "governed_db.approval.transition": "requested",
        },
    ):
        pass
    # a result span with masked cells, attributed to its statement's kind
    tracer = provider.get_tracer("governed_db")
    stmt = tracer.start_span(
        "SELECT t",
        attributes={
            "governed_db.decision": "allow",
            "governed_db.identity.kind": "service",
            "governed_db.environment": "production",
        },
    )
    stmt.end()  # as in the pipeline: the statement span ends in execute(), the result is consumed later
    ctx = trace.set_span_in_context(stmt)
    tracer.start_span(
        "governed_db.result",
        context=ctx,
        attributes={"governed_db.masked_cells": 5, "governed_db.environment": "production"},
    ).end()
    points = _points(reader)
    human = points[("governed_db.statements", "human", "production")]
    assert human == 1
    assert points[("governed_db.statements", "agent", "production")] == 2
    assert points[("governed_db.refusals", "agent", "production")] == 1
    assert points[("governed_db.approvals", "agent", "production")] == 1
    assert points[("governed_db.masked_cells", "service", "production")] == 5
    assert ("governed_db.refusals", "human", "production") not in points


def test_second_wrap_on_the_same_store_with_another_key_is_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Same path, another key or retention: ConfigurationError naming the path; other pacing: a warning."""
    path = tmp_path / "shared.jsonl"
    first = audit_processor({"path": str(path), "key": "k" * 32})
    assert audit_processor({"path": str(path), "key": "k" * 32}) is first
    with pytest.raises(ConfigurationError, match=r"shared\.jsonl' is already open in this process with a different key"):
        governed_db.wrap(sqlite3.connect(":memory:"), audit={"path": str(path), "key": "z" * 32})
    with pytest.raises(ConfigurationError, match="different retain_bytes"):
        governed_db.wrap(sqlite3.connect(":memory:"), audit={"path": str(path), "key": "k" * 32,
                                                               "retain_bytes": 10_000_000})
    with caplog.at_level("WARNING", logger="governed_db.audit"):
        shared = audit_processor({"path": str(path), "key": "k" * 32, "checkpoint_every": 7})
    assert shared is first and "its first settings for checkpoint_every apply" in caplog.text
    assert "k" * 32 not in caplog.text


def test_metrics_follow_a_global_meter_provider_set_later(tmp_path: Any) -> None:
    """With no global MeterProvider the proxy instruments drop counts, so SpanMetrics skips the work; once
    the application sets one, statements are counted (checked at most once a second; the test moves the clock)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import sqlite3
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        import governed_db
        from governed_db.audit import audit_processor

        proc = audit_processor({str(tmp_path / "a.jsonl")!r})
        conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, environment="production")
        conn.execute("SELECT 1").fetchall()
        assert proc.metrics.waiting()
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider([reader]))
        proc.metrics._next_check = 0.0
        for _ in range(3):
            conn.execute("SELECT 1").fetchall()
        assert not proc.metrics.waiting()
        points = [p for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                  for m in sm.metrics if m.name == "governed_db.statements" for p in m.data.data_points]
        print(sum(p.value for p in points))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"
