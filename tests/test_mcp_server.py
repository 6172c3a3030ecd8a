"""The MCP server: governed tools over an in-process MCP client session, and the CLI entry."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")
anyio = pytest.importorskip("anyio")

from click.testing import CliRunner  # noqa: E402
from mcp import Client  # noqa: E402

from governed_db.cli import main  # noqa: E402
from governed_db.errors import ConfigurationError  # noqa: E402
from governed_db.integrations import mcp_server  # noqa: E402

EMAIL = "erin.hidden@example.com"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        f"""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);
        INSERT INTO customers VALUES (1, 'Erin', '{EMAIL}'), (2, 'Frank', 'frank@example.org');
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total REAL);
        INSERT INTO orders VALUES (10, 1, 9.5), (11, 2, 20.0), (12, 2, 3.25);
        """
    )
    conn.commit()
    conn.close()
    return path


def _call(db: Path, calls: list[tuple[str, dict[str, Any]]], spans: Any = None, **kw: Any) -> list[Any]:
    provider = spans[0] if spans is not None else None
    tools = mcp_server.make_tools(str(db), identity="agent:claude@alice", environment="production",
                                  tracer_provider=provider, **kw)
    server = mcp_server.build_server(tools)
    out: list[Any] = []

    async def session() -> None:
        async with Client(server) as client:
            listed = await client.list_tools()
            out.append(sorted(t.name for t in listed.tools))
            for name, args in calls:
                out.append(await client.call_tool(name, args))

    try:
        anyio.run(session)
    finally:
        tools.engine.dispose()
    return out


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def test_tools_are_listed_and_answer(db: Path, spans: Any) -> None:
    """list_tables, describe_table and run_query answer with structured content, recorded as the agent."""
    names, tables, columns, rows = _call(db, [
        ("list_tables", {}),
        ("describe_table", {"table": "customers"}),
        ("run_query", {"sql": "SELECT id, total FROM orders ORDER BY id", "max_rows": 2}),
    ], spans)
    assert names == ["describe_table", "list_tables", "run_query"]
    assert not tables.is_error and tables.structured_content["result"] == ["customers", "orders"]
    cols = columns.structured_content["result"]
    assert [c["name"] for c in cols] == ["id", "name", "email"]
    assert cols[0]["primary_key"] is True and cols[1]["nullable"] is False
    data = rows.structured_content
    assert data["columns"] == ["id", "total"]
    assert data["rows"] == [[10, 9.5], [11, 20.0]] and data["truncated"] is True
    recorded = spans[1].get_finished_spans()
    subjects = {s.attributes.get("governed_db.identity.subject") for s in recorded} - {None}
    assert subjects == {"claude"}
    assert any(s.attributes.get("governed_db.identity.on_behalf_of") == "alice" for s in recorded)


def test_refusal_is_a_readable_tool_error_and_server_keeps_serving(db: Path, spans: Any) -> None:
    """A denied statement comes back as isError text naming the rule and next step; the next call works."""
    _, refused, after = _call(db, [
        ("run_query", {"sql": "DROP TABLE customers"}),
        ("run_query", {"sql": "SELECT count(*) AS n FROM customers"}),
    ], spans)
    assert refused.is_error
    message = _text(refused)
    assert "refused by rule drop" in message and "Next step:" in message
    assert "Traceback" not in message
    assert not after.is_error and after.structured_content["rows"] == [[2]]
    assert any(s.attributes.get("governed_db.refused") for s in spans[1].get_finished_spans())


def test_database_errors_are_tool_errors_too(db: Path) -> None:
    """A query on a missing table is a one-line tool error, not a crash."""
    _, missing = _call(db, [("run_query", {"sql": "SELECT * FROM nope"})])
    assert missing.is_error and "no such table" in _text(missing)


def test_agent_never_sees_raw_email(db: Path) -> None:
    """Rows handed to the agent are masked."""
    _, rows = _call(db, [("run_query", {"sql": "SELECT * FROM customers"})])
    assert EMAIL not in str(rows.structured_content) and EMAIL not in _text(rows)


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("data/app.db", "sqlite:///"),
    ],
)
def test_engine_url(dsn: str, expected: str) -> None:
    """--dsn accepts SQLAlchemy URLs and bare SQLite file paths."""
    assert mcp_server.engine_url(dsn).startswith(expected)


def test_engine_url_rejects_nonsense() -> None:
    """An unusable --dsn is a configuration error that shows the accepted forms."""
    with pytest.raises(ConfigurationError, match="postgresql"):
        mcp_server.engine_url("not a dsn")


def test_identity_and_token_are_exclusive(db: Path) -> None:
    """--identity and --token together are refused."""
    with pytest.raises(ConfigurationError, match="not both"):
        mcp_server.make_tools(str(db), identity="agent:x", token="abc")


def test_default_identity_is_an_agent(db: Path) -> None:
    """Without --identity the server acts as an agent on behalf of the OS user, never as that user."""
    tools = mcp_server.make_tools(str(db))
    with tools.engine.connect() as conn:
        gov = conn.connection.dbapi_connection.governor
        ident = gov.resolve_identity()
    tools.engine.dispose()
    assert ident.kind == "agent" and ident.subject == "mcp-agent" and ident.on_behalf_of


def test_cli_check_lists_tables(db: Path) -> None:
    """`governed-db mcp --check` builds the governed engine, lists tables and exits 0."""
    result = CliRunner().invoke(main, ["mcp", "--dsn", str(db), "--identity", "agent:ci", "--check"])
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["customers", "orders"]


def test_cli_bad_dsn_exits_2() -> None:
    """A bad --dsn is a usage error (exit 2)."""
    result = CliRunner().invoke(main, ["mcp", "--dsn", "nonsense", "--check"])
    assert result.exit_code == 2 and "SQLAlchemy URL" in result.output


def test_rollback_writes_keeps_data(db: Path) -> None:
    """With commit=False (--rollback-writes) an allowed write is reported but not persisted."""
    _, wrote, count = _call(db, [
        ("run_query", {"sql": "UPDATE orders SET total = 0 WHERE id = 10"}),
        ("run_query", {"sql": "SELECT total FROM orders WHERE id = 10"}),
    ], commit=False)
    assert wrote.structured_content["rows_affected"] == 1
    assert count.structured_content["rows"] == [[9.5]]


def test_cli_serves_over_stdio(db: Path, tmp_path: Path) -> None:
    """`governed-db mcp` as a real subprocess speaks MCP over stdio and refuses readably."""
    import os
    import sys

    from mcp.client.stdio import StdioServerParameters

    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNED_DB_")}
    env["GOVERNED_DB_AUDIT"] = str(tmp_path / "audit")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", "from governed_db.cli import main; main()", "mcp", "--dsn", str(db),
              "--identity", "agent:stdio-bot", "--environment", "production"],
        env=env,
    )
    out: list[Any] = []

    async def session() -> None:
        async with Client(params) as client:
            out.append(await client.call_tool("list_tables", {}))
            out.append(await client.call_tool("run_query", {"sql": "DELETE FROM orders"}))

    anyio.run(session)
    tables, refused = out
    assert tables.structured_content["result"] == ["customers", "orders"]
    assert refused.is_error and "refused by rule" in _text(refused) and "Next step:" in _text(refused)


def test_approval_request_reaches_the_agent_and_approval_unblocks_it(db: Path, tmp_path: Path) -> None:
    """A statement needing approval is a tool error naming the request; once approved the same call runs."""
    import re

    from governed_db import Identity, approvals

    store = str(tmp_path / "approvals.db")
    policy = tmp_path / "policy.yaml"
    policy.write_text("name: review-ddl\nrules:\n  ddl: require_approval\n")
    tools = mcp_server.make_tools(str(db), identity="agent:claude@alice", environment="production",
                                  policy=str(policy), approvals=store)
    server = mcp_server.build_server(tools)
    create = {"sql": "CREATE TABLE notes (id INTEGER)"}
    out: list[Any] = []

    async def session() -> None:
        async with Client(server) as client:
            first = await client.call_tool("run_query", create)
            out.append(first)
            found = re.search(r"Request id: (\S+)\.", _text(first))
            assert found is not None, _text(first)
            approvals.approve(found.group(1), reviewer=Identity("dana", roles=("dba",)), store=store)
            out.append(await client.call_tool("run_query", create))

    try:
        anyio.run(session)
    finally:
        tools.engine.dispose()
    pending, done = out
    assert pending.is_error and "approval required by rule ddl" in _text(pending)
    assert "Next step:" in _text(pending)
    assert not done.is_error
