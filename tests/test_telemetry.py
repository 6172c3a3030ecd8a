"""The activity record: one CLIENT span per statement with semantic conventions, identity and decision."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import governed_db
from governed_db import GuardrailViolation, Identity
from governed_db.sqlcomment import tag_statement


def _statement_spans(exporter: Any) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.name != "governed_db.result"]


def _conn(provider: Any, **kw: Any) -> Any:
    kw.setdefault("identity", Identity("report-bot", kind="agent", on_behalf_of="alice", roles=("analyst",)))
    kw.setdefault("audit", False)
    conn = governed_db.wrap(sqlite3.connect(":memory:"), tracer_provider=provider, **kw)
    governed_db.unwrap(conn).execute("CREATE TABLE users (id INTEGER, email TEXT, plan TEXT)")
    governed_db.unwrap(conn).execute(
        "INSERT INTO users VALUES (1, 'a@example.com', 'gold'), (2, 'b@example.com', 'basic')"
    )
    return conn


def test_one_client_span_per_statement_with_semantic_conventions(spans: Any) -> None:
    """A statement yields one CLIENT span with db.* attributes, identity and decision; literals are placeholders."""
    provider, exporter = spans
    conn = _conn(provider)
    conn.execute("SELECT email FROM users WHERE plan = 'gold-secret-literal' AND id = 1").fetchall()
    (span,) = _statement_spans(exporter)
    a = span.attributes
    assert span.kind is SpanKind.CLIENT and span.name == "SELECT users"
    assert a["db.system.name"] == "sqlite"
    assert a["db.operation.name"] == "SELECT" and a["db.collection.name"] == "users"
    assert "gold-secret-literal" not in a["db.query.text"] and "?" in a["db.query.text"]
    assert a["governed_db.identity.subject"] == "report-bot" and a["user.id"] == "report-bot"
    assert a["governed_db.identity.kind"] == "agent"
    assert a["governed_db.identity.on_behalf_of"] == "alice"
    assert tuple(a["user.roles"]) == ("analyst",)
    assert a["governed_db.environment"] == "production"
    assert a["governed_db.decision"] == "allow"


def test_parameters_are_never_recorded_by_default(spans: Any) -> None:
    """Raw parameters appear in no attribute unless capture_parameters=True."""
    provider, exporter = spans
    conn = _conn(provider)
    conn.execute("SELECT id FROM users WHERE plan = ?", ("secret@example.com",)).fetchall()
    for span in exporter.get_finished_spans():
        assert "secret@example.com" not in repr(dict(span.attributes or {}))
    exporter.clear()
    conn = _conn(provider, capture_parameters=True)
    conn.execute("SELECT id FROM users WHERE plan = ?", ("secret@example.com",)).fetchall()
    (span,) = _statement_spans(exporter)
    assert span.attributes["db.query.parameter.0"] == "'secret@example.com'"


def test_refused_statement_is_recorded_with_its_decision(spans: Any) -> None:
    """A refusal yields a span too: decision deny, the rules that fired, an error status."""
    provider, exporter = spans
    conn = _conn(provider)
    with pytest.raises(GuardrailViolation):
        conn.execute("DROP TABLE users")
    (span,) = _statement_spans(exporter)
    assert span.attributes["governed_db.decision"] == "deny"
    assert span.attributes["governed_db.rules"]
    assert span.attributes["governed_db.refused"] is True
    assert span.status.status_code is StatusCode.ERROR


def test_driver_error_is_recorded_and_reraised(spans: Any) -> None:
    """A database error marks the span as failed with error.type, and reaches the caller unchanged."""
    provider, exporter = spans
    conn = _conn(provider)
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT nope FROM users")
    (span,) = _statement_spans(exporter)
    assert span.attributes["error.type"] == "OperationalError"
    assert span.status.status_code is StatusCode.ERROR


def test_result_span_counts_rows_handed_out(spans: Any) -> None:
    """With record_results=True a follow-up span says how many rows left the cursor."""
    provider, exporter = spans
    conn = _conn(provider, record_results=True)
    conn.execute("SELECT * FROM users").fetchall()
    (result,) = [s for s in exporter.get_finished_spans() if s.name == "governed_db.result"]
    (stmt,) = _statement_spans(exporter)
    assert result.attributes["governed_db.rows_returned"] == 2
    assert result.parent is not None and result.parent.span_id == stmt.context.span_id


def test_rows_affected_recorded_for_writes(spans: Any) -> None:
    """A write records how many rows it affected."""
    provider, exporter = spans
    conn = _conn(provider)
    conn.execute("UPDATE users SET plan = 'basic' WHERE id = 1")
    (span,) = _statement_spans(exporter)
    assert span.attributes["governed_db.rows_affected"] == 1


def test_spans_nest_under_the_applications_current_span(spans: Any) -> None:
    """The statement span is a child of whatever span the application has open."""
    provider, exporter = spans
    conn = _conn(provider)
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("handle-request") as parent:
        conn.execute("SELECT 1").fetchall()
    (span,) = [s for s in _statement_spans(exporter) if s.name != "handle-request"]
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id


@pytest.mark.parametrize("order", ["governed-outside", "instrumented-outside"])
def test_stacks_with_opentelemetry_dbapi_instrumentation(spans: Any, order: str, tmp_path: Any) -> None:
    """governed_db and opentelemetry-instrumentation-dbapi stack in either order: both record, refusals still hold."""
    from opentelemetry.instrumentation.dbapi import instrument_connection, trace_integration

    provider, exporter = spans
    path = str(tmp_path / "stack.db")
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE t (id INTEGER)")
    raw.commit()
    if order == "governed-outside":
        # instrument the driver's connection, then govern it
        conn = governed_db.wrap(
            instrument_connection("otel-dbapi", raw, "sqlite", tracer_provider=provider),
            tracer_provider=provider, audit=False,
        )
    else:
        # instrument governed_db's module facade: its connect() result is wrapped by the instrumentation
        gsqlite3 = governed_db.govern_module(sqlite3, tracer_provider=provider, audit=False)
        trace_integration(gsqlite3, "connect", "sqlite", tracer_provider=provider)
        conn = gsqlite3.connect(path)
        assert type(conn).__name__ == "TracedConnectionProxy"
    cur = conn.cursor()
    cur.execute("SELECT id FROM t")
    assert cur.fetchall() == []
    by_scope = {s.instrumentation_scope.name: s for s in _statement_spans(exporter)}
    assert len(by_scope) == 2 and "governed_db" in by_scope
    theirs = next(s for name, s in by_scope.items() if name != "governed_db")
    outer, inner = (by_scope["governed_db"], theirs) if order == "governed-outside" else (theirs, by_scope["governed_db"])
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id

    with pytest.raises(GuardrailViolation):
        conn.cursor().execute("DROP TABLE t")
    assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name='t'").fetchone() == (1,)


def test_no_recording_costs_no_attributes() -> None:
    """With no SDK provider and no audit store, statements run and nothing is recorded."""
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=False)
    span = conn.governor.recorder.tracer.start_span("x")
    assert not span.is_recording()
    assert conn.execute("SELECT 1").fetchone() == (1,)


def _gov(paramstyle: str, sqlcommenter: bool = True) -> Any:
    return SimpleNamespace(
        settings=SimpleNamespace(option=lambda name: sqlcommenter if name == "sqlcommenter" else None),
        environment="production",
        driver=SimpleNamespace(paramstyle_for=lambda raw: paramstyle),
        raw=None,
    )


def test_sqlcommenter_comment_carries_identity_and_reaches_the_database(spans: Any) -> None:
    """With sqlcommenter=True the statement the database sees ends with a spec-format comment."""
    provider, _ = spans
    raw = sqlite3.connect(":memory:")
    seen: list[str] = []
    raw.set_trace_callback(seen.append)
    conn = governed_db.wrap(
        raw, identity=Identity("bot", kind="agent"), sqlcommenter=True, tracer_provider=provider, audit=False
    )
    conn.execute("SELECT 1;").fetchall()
    (sent,) = [s for s in seen if s.startswith("SELECT 1")]
    assert sent.endswith("*/;") and "db_user='bot'" in sent and "identity_kind='agent'" in sent
    assert "traceparent='00-" in sent


def test_sqlcommenter_is_off_by_default_and_leaves_commented_statements_alone() -> None:
    """No comment unless enabled; a statement that already has a comment is not touched."""
    ident = Identity("bot")
    assert tag_statement("SELECT 1", _gov("qmark", sqlcommenter=False), ident, None, None) == "SELECT 1"
    assert tag_statement("SELECT 1 /* app */", _gov("qmark"), ident, None, None) == "SELECT 1 /* app */"
    assert tag_statement("SELECT 1 -- x", _gov("qmark"), ident, None, None) == "SELECT 1 -- x"


def test_sqlcommenter_escapes_percent_only_for_format_drivers_with_parameters() -> None:
    """URL-encoding produces '%'; it is doubled only for format/pyformat drivers when parameters are given."""
    ident = Identity("a b")  # space is URL-encoded as %20
    with_params = tag_statement("SELECT %s", _gov("pyformat"), ident, None, (1,))
    assert "a%%20b" in with_params
    without_params = tag_statement("SELECT 1", _gov("pyformat"), ident, None, None)
    assert "a%20b" in without_params and "%%" not in without_params
    qmark = tag_statement("SELECT ?", _gov("qmark"), ident, None, (1,))
    assert "a%20b" in qmark and "%%" not in qmark


def test_audit_record_does_not_depend_on_the_applications_sampler(tmp_path: Any) -> None:
    """Statements the application's sampler drops still reach the audit store (and only sampled ones its exporter)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from governed_db.audit import read_records

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    store = tmp_path / "audit.jsonl"
    conn = governed_db.wrap(sqlite3.connect(":memory:"), tracer_provider=provider, audit=store)
    conn.execute("CREATE TABLE t (id INTEGER)")
    for i in range(20):
        conn.execute("UPDATE t SET id = ? WHERE id = ?", (i, i))
    statements = [r for r in read_records(store) if r.get("type") == "span" and r["name"].startswith("UPDATE")]
    assert len(statements) == 20
    assert exporter.get_finished_spans() == ()


def test_audit_only_records_have_the_shape_of_sdk_span_records(tmp_path: Any, spans: Any) -> None:
    """Without an SDK provider the audit store gets the same record fields as from an SDK span, result span linked."""
    from governed_db.audit import read_records, verify

    provider, _ = spans
    light, sdk = tmp_path / "light.jsonl", tmp_path / "sdk.jsonl"
    for store, tp in ((light, None), (sdk, provider)):
        conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=store, tracer_provider=tp,
                                identity=Identity("bot", kind="agent"))
        conn.execute("SELECT 1").fetchall()
        with pytest.raises(GuardrailViolation):
            conn.execute("DROP TABLE x")
    def spans_of(path: Any) -> list[dict[str, Any]]:
        return [r for r in read_records(path) if r.get("type") == "span"]

    a, b = spans_of(light), spans_of(sdk)
    # the result, fetched before the SELECT's outcome was written, travels in that outcome on both paths
    assert [r["name"] for r in a] == [r["name"] for r in b] == ["SELECT", "DROP TABLE x"]
    for x, y in zip(a, b, strict=True):
        assert set(x) == set(y) and x["kind"] == y["kind"] and x["status"] == y["status"]
        assert x["attrs"] == y["attrs"]
    assert a[0]["attrs"]["governed_db.rows_returned"] == 1
    assert verify(light).ok and verify(sdk).ok


def test_a_result_fetched_after_the_outcome_was_written_is_its_own_linked_record(tmp_path: Any) -> None:
    """A result read after its statement's outcome reached the store gets a result record linked to it."""
    from governed_db.audit import read_records, verify

    store = tmp_path / "audit.jsonl"
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=store, identity=Identity("bot", kind="agent"))
    cur = conn.cursor()
    cur.execute("SELECT 1 UNION ALL SELECT 2")
    conn.execute("SELECT 3").fetchall()  # its intent carries the first SELECT's outcome to the file
    assert cur.fetchall() == [(1,), (2,)]
    recs = [r for r in read_records(store) if r.get("type") == "span"]
    assert [r["name"] for r in recs] == ["SELECT", "SELECT", "governed_db.result"]
    first, result = recs[0], recs[2]
    assert "governed_db.rows_returned" not in first["attrs"]
    assert result["attrs"]["governed_db.rows_returned"] == 2
    assert result["parent_span_id"] == first["span_id"] and result["trace_id"] == first["trace_id"]
    assert verify(store).ok


def test_result_records_go_to_the_audit_store_by_default(spans: Any, tmp_path: Any) -> None:
    """By default rows returned reach the audit store while the exporter gets one span per statement."""
    from governed_db.audit import read_records

    provider, exporter = spans
    store = tmp_path / "audit.jsonl"
    conn = _conn(provider, audit=store)
    conn.execute("SELECT * FROM users").fetchall()
    assert [s.name for s in exporter.get_finished_spans()] == ["SELECT users"]
    (stmt,) = [r for r in read_records(store) if r.get("type") == "span"]  # the result folded into it
    assert stmt["attrs"]["governed_db.rows_returned"] == 2
    statement = exporter.get_finished_spans()[0]
    assert stmt["span_id"] == format(statement.context.span_id, "016x")


def test_record_results_false_records_no_result(spans: Any, tmp_path: Any) -> None:
    """record_results=False keeps result records out of the store and the exporter."""
    from governed_db.audit import read_records

    provider, exporter = spans
    store = tmp_path / "audit.jsonl"
    conn = _conn(provider, audit=store, record_results=False)
    conn.execute("SELECT * FROM users").fetchall()
    assert not [r for r in read_records(store) if r.get("name") == "governed_db.result"]
    assert [s.name for s in exporter.get_finished_spans()] == ["SELECT users"]


def test_global_provider_set_after_wrapping_is_picked_up() -> None:
    """A global SDK provider set after wrap() records statements (checked at most once a second)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import sqlite3, time, governed_db
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=False)
        conn.execute("SELECT 1").fetchall()
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        time.sleep(1.1)
        conn.execute("SELECT 2").fetchall()
        print(sorted(s.name for s in exporter.get_finished_spans()))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['SELECT']"
