"""OpenTelemetry done right: dbapi instrumentation under our spans, exact placeholders, metrics per the conventions.

Spans and metrics are read from the real SDK's in-memory exporter and reader; statements run on real drivers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.instrumentation.dbapi import instrument_connection
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import governed_db
from governed_db import GuardrailViolation, Identity
from governed_db.errors import ConfigurationError
from tests.conftest import pg_url

AGENT = Identity("report-bot", kind="agent", on_behalf_of="alice")


@pytest.fixture
def meter() -> Iterator[tuple[MeterProvider, InMemoryMetricReader]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider, reader
    provider.shutdown()


def _points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    found = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == name:
                    found.extend(m.data.data_points)
    return found


def _by_scope(exporter: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for s in exporter.get_finished_spans():
        if s.name != "governed_db.result":
            out.setdefault(s.instrumentation_scope.name, []).append(s)
    return out


# -- stacking with opentelemetry-instrumentation-dbapi -------------------------------------------


def test_official_instrument_connection_cannot_trace_a_governed_connection(spans: Any) -> None:
    """The dbapi instrumentation hands a governed connection back untraced (why instrument_dbapi exists)."""
    provider, exporter = spans
    conn = governed_db.wrap(sqlite3.connect(":memory:"), tracer_provider=provider, audit=False)
    assert instrument_connection("otel", conn, "sqlite", tracer_provider=provider) is conn
    conn.execute("SELECT 1").fetchall()
    assert set(_by_scope(exporter)) == {"governed_db"}


@pytest.mark.parametrize("driver", ["sqlite3", "psycopg2", "pymysql"])
def test_instrument_dbapi_puts_its_spans_under_ours(request: pytest.FixtureRequest, spans: Any, unique: str,
                                                    driver: str) -> None:  # fmt: skip
    """After wrap, instrument_dbapi(conn) traces the driver: each dbapi span is a child of governed_db's span."""
    provider, exporter = spans
    if driver == "sqlite3":
        raw: Any = sqlite3.connect(":memory:")
    else:
        raw = request.getfixturevalue("pg2_conn" if driver == "psycopg2" else "mysql_conn")
    table = f"otel_{unique}"
    raw.cursor().execute(f"CREATE TABLE {table} (id int)")
    try:
        conn = governed_db.wrap(raw, identity=AGENT, environment="production", tracer_provider=provider, audit=False)
        assert governed_db.instrument_dbapi(conn, tracer_provider=provider) is conn
        governed_db.instrument_dbapi(conn, tracer_provider=provider)  # a second call changes nothing
        cur = conn.cursor()
        cur.execute(f"SELECT id FROM {table}")
        assert list(cur.fetchall()) == []
        scopes = _by_scope(exporter)
        ours = scopes.pop("governed_db")
        (theirs,) = scopes.values()
        # (its other spans are governed_db's own catalog reads for masking, made outside any statement)
        children = [s for s in theirs if s.parent is not None]
        assert len(ours) == 1 and len(children) == 1
        assert children[0].parent.span_id == ours[0].context.span_id and children[0].name == "SELECT"
        with pytest.raises(GuardrailViolation):
            conn.cursor().execute(f"DROP TABLE {table}")
        after = [s for s in _by_scope(exporter)[theirs[0].instrumentation_scope.name]]
        assert not any(s.name.startswith("DROP") for s in after)  # the refused DROP never reached the driver
        probe = raw.cursor()
        probe.execute(f"SELECT count(*) FROM {table}")
        assert probe.fetchone()[0] == 0  # the table is still there
    finally:
        raw.cursor().execute(f"DROP TABLE IF EXISTS {table}")


def test_instrument_dbapi_needs_a_governed_connection() -> None:
    """A plain connection is a clear error pointing at the official function."""
    with pytest.raises(ConfigurationError, match="instrument_connection"):
        governed_db.instrument_dbapi(sqlite3.connect(":memory:"))


# -- db.query.text keeps the driver's placeholders ---------------------------------------------------


def _recorded_text(exporter: Any) -> list[str]:
    return [s.attributes["db.query.text"] for s in _by_scope(exporter)["governed_db"]]


@pytest.mark.postgres
def test_psycopg2_placeholders_are_recorded_exactly(pg2_conn: Any, spans: Any, unique: str) -> None:
    """psycopg2's %s and %(name)s reach db.query.text as written; the literal is still replaced."""
    provider, exporter = spans
    conn = governed_db.wrap(pg2_conn, identity=AGENT, environment="production", tracer_provider=provider,
                            audit=False)  # fmt: skip
    cur = conn.cursor()
    cur.execute("SELECT %s AS a, %(pk_1)s AS b, 5 AS c".replace("%s", "%(x)s"), {"x": 1, "pk_1": 2})
    cur.execute("SELECT %s, 'literal' WHERE 1 = %s", (1, 1))
    assert _recorded_text(exporter) == ["SELECT %(x)s AS a, %(pk_1)s AS b, ? AS c", "SELECT %s, ? WHERE ? = %s"]


@pytest.mark.postgres
def test_sqlalchemy_orm_get_records_its_bind_name(pg_dsn: str, pg_conn: Any, spans: Any, unique: str) -> None:
    """An ORM primary-key lookup over psycopg2 records `WHERE ... = %(pk_1)s`, not `% (pk_1) s`."""
    import sqlalchemy as sa

    from governed_db.integrations.sqlalchemy import create_engine

    provider, exporter = spans
    table = f"orm_{unique}"
    pg_conn.execute(f"CREATE TABLE {table} (id int primary key, n int)")
    try:
        engine = create_engine(pg_url("postgresql+psycopg2"), identity=AGENT,
                               environment="production", tracer_provider=provider, audit=False)  # fmt: skip
        t = sa.Table(table, sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer))
        with engine.connect() as c:
            c.execute(sa.select(t.c.n).where(t.c.id == 7)).fetchall()
        engine.dispose()
        texts = [x for x in _recorded_text(exporter) if table in x]
        assert texts == [f"SELECT {table}.n FROM {table} WHERE {table}.id = %(id_1)s"]
    finally:
        pg_conn.execute(f"DROP TABLE {table}")


@pytest.mark.mariadb
def test_pymysql_placeholders_are_recorded_exactly(mysql_conn: Any, spans: Any) -> None:
    """PyMySQL's %s and %(name)s are recorded as written (not rewritten to ?), %% stays %%."""
    provider, exporter = spans
    conn = governed_db.wrap(mysql_conn, identity=AGENT, environment="production", tracer_provider=provider,
                            audit=False)  # fmt: skip
    cur = conn.cursor()
    cur.execute("SELECT %s, 7 %% 2 WHERE 'a' LIKE %s", (1, "a%"))
    cur.execute("SELECT %(n)s", {"n": 1})
    assert _recorded_text(exporter) == ["SELECT %s, ? %% ? WHERE ? LIKE %s", "SELECT %(n)s"]


def test_sqlite_placeholders_are_recorded_exactly(spans: Any) -> None:
    """sqlite3's ? and :name are recorded as written."""
    provider, exporter = spans
    conn = governed_db.wrap(sqlite3.connect(":memory:"), identity=AGENT, tracer_provider=provider, audit=False)
    conn.execute("SELECT ?, 'x'", (1,)).fetchall()
    conn.execute("SELECT :name, 3", {"name": 1}).fetchall()
    assert _recorded_text(exporter) == ["SELECT ?, ?", "SELECT :name, ?"]


# -- metrics -------------------------------------------------------------------------------------------


def test_statement_duration_and_refusals_are_metrics(
    spans: Any, meter: tuple[MeterProvider, InMemoryMetricReader]
) -> None:
    """Statements that ran feed db.client.operation.duration (error.type on failure); refusals count by rule."""
    from governed_db.audit import metrics_processor

    tracer_provider, _ = spans
    provider, reader = meter
    tracer_provider.add_span_processor(metrics_processor(provider))
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE orders (id int)")
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", meter_provider=provider,
                            tracer_provider=tracer_provider, audit=False)  # fmt: skip
    conn.execute("SELECT id FROM orders").fetchall()
    conn.execute("SELECT id FROM orders").fetchall()
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT id FROM missing_table")
    with pytest.raises(GuardrailViolation):
        conn.execute("DROP TABLE orders")
    durations = {tuple(sorted(p.attributes.items())): p for p in _points(reader, "db.client.operation.duration")}
    ok = durations[(("db.collection.name", "orders"), ("db.operation.name", "SELECT"), ("db.system.name", "sqlite"))]
    assert ok.count == 2 and ok.sum > 0
    failed = [p for k, p in durations.items() if ("error.type", "OperationalError") in k]
    assert len(failed) == 1 and failed[0].count == 1
    assert not any(("db.operation.name", "DROP TABLE") in k for k in durations)  # refused: never an operation
    (refusal,) = _points(reader, "governed_db.refusals")
    assert refusal.value == 1 and refusal.attributes["governed_db.rule"] == "drop"
    assert refusal.attributes["governed_db.decision"] == "deny"
    every = [dict(p.attributes) for p in _points(reader, "db.client.operation.duration")]
    assert not any("report-bot" in str(a) or "alice" in str(a) for a in every)  # no identity in metrics


def test_a_global_meter_provider_set_after_wrap_times_the_next_statements() -> None:
    """Without a provider statements are not timed (the API's proxy drops it); one set later gets the next ones."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import sqlite3
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        import governed_db

        raw = sqlite3.connect(":memory:")
        raw.execute("CREATE TABLE orders (id int)")
        conn = governed_db.wrap(raw, identity=governed_db.Identity("a"), environment="production", audit=False)
        conn.execute("SELECT id FROM orders").fetchall()
        assert not conn.governor.metrics.live
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        assert conn.governor.metrics.live
        conn.execute("SELECT id FROM orders").fetchall()
        conn.execute("SELECT id FROM orders").fetchall()
        points = [p for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                  for m in sm.metrics if m.name == "db.client.operation.duration" for p in m.data.data_points]
        print(sum(p.count for p in points), min(p.sum for p in points) > 0)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "True"]


def test_mcp_tool_calls_are_timed(tmp_path: Any, meter: tuple[MeterProvider, InMemoryMetricReader]) -> None:
    """Each MCP tool call records mcp.server.operation.duration with the tool name; tool errors carry error.type."""
    pytest.importorskip("mcp")
    import anyio
    from mcp import Client

    from governed_db.integrations import mcp_server

    provider, reader = meter
    path = tmp_path / "m.db"
    sqlite3.connect(path).executescript("CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
    tools = mcp_server.make_tools(str(path), identity="agent:claude@alice", environment="production")
    server = mcp_server.build_server(tools, meter_provider=provider)

    async def run() -> None:
        async with Client(server) as client:
            await client.call_tool("run_query", {"sql": "SELECT id FROM t"})
            await client.call_tool("run_query", {"sql": "DROP TABLE t"})

    try:
        anyio.run(run)
    finally:
        tools.engine.dispose()
    points = {p.attributes.get("error.type"): p for p in _points(reader, "mcp.server.operation.duration")}
    assert points[None].attributes["gen_ai.tool.name"] == "run_query" and points[None].count == 1
    assert points["tool_error"].attributes["mcp.method.name"] == "tools/call"
