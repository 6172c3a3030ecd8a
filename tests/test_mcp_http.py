"""MCP over streamable HTTP with verified bearer tokens, tool annotations, curated tools, the server version,
and typos returned as syntax errors - all through the official MCP client."""

from __future__ import annotations

import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from test_tokens_idp import FakeIdP, idp_fixture, okta_user  # noqa: F401

from governed_db import approvals
from governed_db.errors import ConfigurationError
from governed_db.integrations import mcp_http, mcp_server
from governed_db.integrations.mcp_tools import load_tools_file, syntax_problem
from governed_db.tokens import TokenVerifier

EMAIL = "erin.hidden@example.com"
TOOLS_YAML = """
tools:
  - name: orders_for_customer
    description: The orders of one customer, newest first.
    sql: SELECT id, total FROM orders WHERE customer_id = :customer_id ORDER BY id DESC LIMIT :limit
    parameters:
      customer_id: {type: integer, description: the customer's id}
      limit: {type: integer, default: 10, minimum: 1, maximum: 100}
  - name: add_note
    description: Append a note to an order.
    sql: INSERT INTO notes (order_id, body) VALUES (:order_id, :body)
    destructive: false
    parameters:
      order_id: integer
      body: {type: string, max_length: 200}
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript(f"""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT);
        INSERT INTO customers VALUES (1, 'Erin', '{EMAIL}'), (2, 'Frank', 'frank@example.org');
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total REAL);
        INSERT INTO orders VALUES (10, 1, 9.5), (11, 2, 20.0), (12, 2, 3.25);
        CREATE TABLE notes (order_id INTEGER, body TEXT);
    """)  # fmt: skip
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def tools_file(tmp_path: Path) -> Path:
    path = tmp_path / "tools.yaml"
    path.write_text(TOOLS_YAML)
    return path


@pytest.fixture
def http_server(db: Path, idp: FakeIdP, spans: Any, tools_file: Path) -> Iterator[str]:
    """The HTTP MCP server (tokens from the offline IdP) on uvicorn in a thread; yields its /mcp URL."""
    import uvicorn

    verifier = TokenVerifier(issuer=idp.issuer, audience="api://default", allow_insecure_http_for_loopback=True)
    bearer = mcp_http.BearerVerifier(verifier)
    tools = mcp_server.make_tools(str(db), identity=mcp_http.refuse_outside_calls, environment="production",
                                  tracer_provider=spans[0])  # fmt: skip
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    server = mcp_server.build_server(tools, curated=load_tools_file(tools_file, dialect="sqlite"),
                                     caller=bearer.caller, token_verifier=bearer,
                                     auth=mcp_http.auth_settings(idp.issuer, url))  # fmt: skip
    web = uvicorn.Server(uvicorn.Config(mcp_http.http_app(server), log_level="warning"))
    thread = threading.Thread(target=web.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not web.started and thread.is_alive():
        threading.Event().wait(0.02)
    yield url
    web.should_exit = True
    thread.join(10)
    sock.close()
    tools.engine.dispose()


def _session(url: str, token: str | None, body: Any) -> Any:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    out: list[Any] = []

    async def run() -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http, \
                Client(streamable_http_client(url, http_client=http)) as client:  # fmt: skip
            out.append(await body(client))

    anyio.run(run)
    return out[0]


def _text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def test_http_with_a_verified_token_runs_as_its_subject(http_server: str, idp: FakeIdP, spans: Any) -> None:
    """Over HTTP with a verified token, tools answer and every statement is recorded as the token's subject."""

    async def body(client: Client) -> Any:
        listed = await client.list_tools()
        rows = await client.call_tool("run_query", {"sql": "SELECT * FROM customers ORDER BY id"})
        return listed, rows, client.server_info

    token = idp.token(okta_user(sub="bob@example.com", jti="AT.bob"))
    listed, rows, info = _session(http_server, token, body)
    names = sorted(t.name for t in listed.tools)
    assert names == ["add_note", "describe_table", "list_tables", "orders_for_customer", "run_query"]
    assert not rows.is_error and [r[0] for r in rows.structured_content["rows"]] == [1, 2]
    assert EMAIL not in str(rows.structured_content)  # masked over HTTP as over stdio
    from importlib.metadata import version

    assert info is not None and info.version == version("governed-db") and info.version
    recorded = spans[1].get_finished_spans()
    subjects = {s.attributes.get("governed_db.identity.subject") for s in recorded} - {None}
    assert subjects == {"bob@example.com"}
    assert any(s.attributes.get("governed_db.identity.provenance") == "verified" for s in recorded)


@pytest.mark.parametrize("case", ["no-token", "forged", "expired"])
def test_http_without_a_valid_token_is_refused(http_server: str, idp: FakeIdP, case: str) -> None:
    """No token, a token from an unpublished key, or an expired one: 401 before any tool runs."""
    token = {
        "no-token": None,
        "forged": idp.token(okta_user(jti="AT.f"), kid=idp.add_key("ec", publish=False)),
        "expired": idp.token(okta_user(jti="AT.e"), exp_in=-600),
    }[case]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    r = httpx.post(http_server, json=init, headers={**headers, "Accept": "application/json, text/event-stream"})
    assert r.status_code == 401 and "bearer" in r.headers.get("www-authenticate", "").lower()

    async def body(client: Client) -> Any:
        return await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017 - the official client cannot even connect
        _session(http_server, token, body)


def test_tool_annotations_say_what_a_tool_does(http_server: str, idp: FakeIdP) -> None:
    """Reads are readOnlyHint; run_query is destructive; a curated insert marked destructive: false is not."""

    async def body(client: Client) -> Any:
        return {t.name: t for t in (await client.list_tools()).tools}

    tools = _session(http_server, idp.token(okta_user(jti="AT.a")), body)
    assert tools["list_tables"].annotations.read_only_hint is True
    assert tools["describe_table"].annotations.destructive_hint is False
    assert tools["run_query"].annotations.read_only_hint is False and tools["run_query"].annotations.destructive_hint
    assert tools["orders_for_customer"].annotations.read_only_hint is True
    add = tools["add_note"].annotations
    assert add.read_only_hint is False and add.destructive_hint is False
    schema = tools["orders_for_customer"].input_schema
    assert schema["properties"]["customer_id"]["type"] == "integer" and schema["required"] == ["customer_id"]
    assert schema["properties"]["limit"]["maximum"] == 100


def test_curated_tools_bind_typed_parameters(http_server: str, idp: FakeIdP, db: Path) -> None:
    """A curated tool runs its SQL with bound parameters; a wrong type or out-of-range value is refused."""

    async def body(client: Client) -> Any:
        return (
            await client.call_tool("orders_for_customer", {"customer_id": 2, "limit": 1}),
            await client.call_tool("orders_for_customer", {"customer_id": "2 OR 1=1"}),
            await client.call_tool("orders_for_customer", {"customer_id": 2, "limit": 1000}),
            await client.call_tool("add_note", {"order_id": 11, "body": "'); DROP TABLE notes; --"}),
        )

    rows, wrong_type, too_many, note = _session(http_server, idp.token(okta_user(jti="AT.c")), body)
    assert not rows.is_error and rows.structured_content["rows"] == [[12, 3.25]]
    assert wrong_type.is_error and too_many.is_error
    assert not note.is_error and note.structured_content["rows_affected"] == 1
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT order_id, body FROM notes").fetchall() == [(11, "'); DROP TABLE notes; --")]
    conn.close()


def test_a_typo_is_a_syntax_error_not_an_approval_request(http_server: str, idp: FakeIdP) -> None:
    """`SELEC broken` comes back as a syntax error with a hint, and no approval request is filed."""

    async def body(client: Client) -> Any:
        return await client.call_tool("run_query", {"sql": "SELEC broken"})

    result = _session(http_server, idp.token(okta_user(jti="AT.t")), body)
    assert result.is_error and "syntax error" in _text(result) and "did you mean SELECT" in _text(result)
    assert approvals.list_requests() == []


@pytest.mark.parametrize(
    ("sql", "problem"),
    [("SELEC broken", True), ("x + 1", True), ("SELECT 1", False), ("VACUUM", False), ("LISTEN chan", False),
     ("DELET FROM t", False)],
)
def test_syntax_problem_only_flags_text_that_is_no_statement(sql: str, problem: bool) -> None:
    """Bare expressions are typos; statements the parser does not know stay with the policy."""
    assert (syntax_problem(sql, "postgres") is not None) is problem


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("tools: [{name: t, description: d, sql: 'SELECT :x'}]", "uses :x, which is not declared"),
        ("tools: [{name: t, description: d, sql: 'SELECT 1', parameters: {x: integer}}]", "declared but not used"),
        ("tools: [{name: t, description: d, sql: 'SELECT :x', parameters: {x: decimal}}]", "type must be one of"),
        ("tools: [{name: t, description: d, sql: 'SELECT :x', parameters: {x: {type: integer, default: a}}}]",
         "is not a integer"),
        ("tools: [{name: run_query, description: d, sql: 'SELECT 1'}]", "already taken"),
        ("tools: [{name: t, sql: 'SELECT 1'}]", "a description is required"),
        ("tools: [{name: t, description: d, sql: 'SELECT 1; SELECT 2'}]", "exactly one"),
        ("tools: [{name: t, description: d, sql: 'DELETE FROM x WHERE id = 1', destructive: maybe}]", "destructive"),
        ("tools: [{name: T-1, description: d, sql: 'SELECT 1'}]", "lower_snake_case"),
        ("sql_tools: false\ntools: []", "no tools at all"),
        ("tool: []", "unknown key"),
    ],
)
def test_bad_tools_files_fail_at_load_time(tmp_path: Path, yaml_text: str, message: str) -> None:
    """Each mistake in a tools file is a ConfigurationError naming the tool, before anything is served."""
    path = tmp_path / "tools.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigurationError, match=message):
        load_tools_file(path, dialect="sqlite")


def test_sql_tools_false_serves_only_curated_tools(db: Path, tools_file: Path) -> None:
    """With sql_tools: false an agent gets the curated tools and no free-form SQL (in-process client)."""
    text = tools_file.read_text()
    tools_file.write_text("sql_tools: false\n" + text)
    tools = mcp_server.make_tools(str(db), identity="agent:claude@alice", environment="production")
    server = mcp_server.build_server(tools, curated=load_tools_file(tools_file, dialect="sqlite"))

    async def run() -> list[str]:
        async with Client(server) as client:
            return sorted(t.name for t in (await client.list_tools()).tools)

    try:
        assert anyio.run(run) == ["add_note", "orders_for_customer"]
    finally:
        tools.engine.dispose()


def test_cli_http_needs_token_verification(db: Path) -> None:
    """`governed-db mcp --transport http` without an issuer exits 2: no token, no access."""
    from click.testing import CliRunner

    from governed_db.cli import main

    result = CliRunner().invoke(main, ["mcp", "--dsn", str(db), "--transport", "http"])
    assert result.exit_code == 2 and "no token, no access" in result.output and "Traceback" not in result.output


def test_cli_check_with_a_bad_tools_file_exits_2(db: Path, tmp_path: Path) -> None:
    """A tools file problem is reported before serving, with exit code 2."""
    from click.testing import CliRunner

    from governed_db.cli import main

    bad = tmp_path / "tools.yaml"
    bad.write_text("tools: [{name: t, description: d, sql: 'SELECT :x'}]")
    result = CliRunner().invoke(main, ["mcp", "--dsn", str(db), "--tools", str(bad)])
    assert result.exit_code == 2 and "not declared" in result.output


def test_cli_serves_http_to_the_official_client(db: Path, idp: FakeIdP, tmp_path: Path) -> None:
    """`governed-db mcp --transport http` as a real process: a verified token works, no token is refused."""
    import json
    import subprocess
    import sys
    import time

    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(idp.jwks()))  # offline keys: the server never fetches anything
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from governed_db.cli import main; main()", "mcp", "--dsn", str(db), "--transport",
         "http", "--port", str(port), "--issuer", idp.issuer, "--audience", "api://default", "--jwks", str(jwks)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        for _ in range(300):  # waiting for the server to listen, not a timing assertion
            if proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1][-2000:]

        async def body(client: Client) -> Any:
            return await client.call_tool("run_query", {"sql": "SELECT count(*) FROM orders"})

        result = _session(url, idp.token(okta_user(sub="carol@example.com", jti="AT.cli")), body)
        assert not result.is_error and result.structured_content["rows"] == [[3]]
        with pytest.raises(Exception):  # noqa: B017 - refused at the door
            _session(url, None, body)
    finally:
        proc.terminate()
        proc.wait(10)
