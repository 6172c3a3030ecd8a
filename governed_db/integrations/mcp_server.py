"""A Model Context Protocol server: governed ``list_tables``, ``describe_table`` and ``run_query``.

    governed-db mcp --dsn sqlite:///app.db --identity agent:claude@alice

Any MCP-capable agent then reaches the database only through these three
tools, each backed by :class:`governed_db.tooling.SQLTools` over a governed
engine: every statement (the catalogue queries too) carries the identity, is
judged by the policy, comes back masked and is recorded. A refusal reaches
the agent as a tool error it can read and act on (``isError`` with "refused
by rule …: … Next step: …"), never as a stack trace, and the server keeps
serving.

Requires the ``mcp`` package (``pip install 'governed-db[mcp]'``), imported
only when a server is built.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from governed_db.errors import ConfigurationError
from governed_db.identity import Identity, acting_as, os_identity
from governed_db.integrations.tooling import DEFAULT_MAX_ROWS, SQLTools, refusal_message

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from governed_db.integrations.mcp_tools import ToolsFile

INSTRUCTIONS = (
    "Read-mostly SQL access governed by governed_db. Call list_tables, then describe_table, then run_query "
    "with one statement at a time. Some columns come back masked by design. When a tool returns "
    "'refused by rule …', follow its 'Next step' instead of retrying the same statement."
)


def engine_url(dsn: str) -> str:
    """A SQLAlchemy URL from ``--dsn``: URLs pass through; a bare file path means SQLite."""
    if "://" in dsn:
        return dsn
    if dsn.endswith((".db", ".sqlite", ".sqlite3")) or os.path.exists(dsn):
        return f"sqlite:///{os.path.abspath(dsn)}"
    raise ConfigurationError(
        f"--dsn {dsn!r} is neither a SQLAlchemy URL nor a SQLite file; use e.g. sqlite:///app.db, "
        "postgresql+psycopg://user@host/db, mysql+pymysql://user@host/db or duckdb:///file.duckdb"
    )


def default_identity() -> Identity:
    """Who the server acts as when neither --identity, --token nor GOVERNED_DB_IDENTITY/TOKEN is given."""
    return Identity("mcp-agent", kind="agent", on_behalf_of=os_identity().subject,
                    attributes={"source": "governed-db mcp default"})


def server_version() -> str:
    """The installed package version, announced to clients in ``serverInfo``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("governed-db")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without an install
        return "0+unknown"


def build_server(
    tools: SQLTools,
    *,
    name: str = "governed-db",
    curated: ToolsFile | None = None,
    caller: Callable[[], Identity] | None = None,
    auth: Any = None,
    token_verifier: Any = None,
    meter_provider: Any = None,
) -> MCPServer:
    """An MCP server exposing ``tools`` (not yet running: call ``.run()`` or connect a client).

    ``curated`` adds the tools of a tools file (and may hide the generic three); ``caller`` returns the
    identity each call runs as (HTTP: the verified bearer token's, see :mod:`governed_db.integrations.mcp_http`);
    ``meter_provider`` receives ``mcp.server.operation.duration`` (default: the global provider).
    """
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    from governed_db.integrations.mcp_tools import run_curated, syntax_problem, tool_function
    from governed_db.integrations.sqlalchemy import SQLGLOT_DIALECTS
    from governed_db.metrics import ToolMetrics

    # refusals are answers, not server errors: keep the SDK from logging each one as a failure
    server: MCPServer = MCPServer(name, instructions=INSTRUCTIONS, log_level="WARNING", version=server_version(),
                                  auth=auth, token_verifier=token_verifier)  # fmt: skip
    dialect = SQLGLOT_DIALECTS.get(tools.engine.dialect.name, tools.engine.dialect.name)
    reads = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

    def _tool_error(exc: Exception) -> ToolError:
        message = refusal_message(exc)
        if message is None:
            orig = getattr(exc, "orig", None) or exc
            message = f"the database reported an error: {type(orig).__name__}: {orig}".splitlines()[0]
        return ToolError(message)

    tool_metrics = ToolMetrics(meter_provider)

    def _call(name: str, fn: Callable[[], Any]) -> Any:
        """Run one tool body as the caller; every failure becomes a readable tool error; timed."""
        started, error = time.perf_counter(), None
        try:
            if caller is None:
                return fn()
            with acting_as(caller()):
                return fn()
        except ToolError as e:
            error = e
            raise
        except Exception as e:
            error = _tool_error(e)
            raise error from None
        finally:
            tool_metrics.record(name, time.perf_counter() - started, error)

    if curated is None or curated.sql_tools:

        @server.tool(description="List the tables and views this identity may query.", annotations=reads)
        def list_tables() -> list[str]:
            return _call("list_tables", tools.list_tables)  # type: ignore[no-any-return]

        @server.tool(description="Columns of one table: name, type, nullable, primary_key.", annotations=reads)
        def describe_table(table: str) -> list[dict[str, Any]]:
            return _call("describe_table", lambda: tools.describe_table(table))  # type: ignore[no-any-return]

        @server.tool(
            description=(
                "Run one SQL statement and return columns and rows (at most max_rows; sensitive values are "
                "masked). Statements a policy forbids are refused with the rule and the next step."
            ),
            annotations=ToolAnnotations(read_only_hint=False, destructive_hint=tools.commit, open_world_hint=False),
        )
        def run_query(sql: str, max_rows: int = DEFAULT_MAX_ROWS) -> dict[str, Any]:
            def run() -> dict[str, Any]:
                problem = syntax_problem(sql, dialect)
                if problem is not None:  # a typo is the agent's to fix, not a reviewer's to read
                    raise ToolError(problem)
                return tools.run_query(sql, max_rows=max_rows).to_dict()

            return _call("run_query", run)  # type: ignore[no-any-return]

    for tool in curated.tools if curated is not None else ():
        hints = ToolAnnotations(title=tool.title, read_only_hint=tool.read_only, idempotent_hint=tool.read_only,
                                destructive_hint=tool.destructive, open_world_hint=False)  # fmt: skip

        def call(t: Any, values: dict[str, Any]) -> Any:
            return _call(t.name, lambda: run_curated(tools.engine, t, values, max_rows=tools.max_rows,
                                                     commit=tools.commit).to_dict())  # fmt: skip

        server.add_tool(tool_function(tool, call), name=tool.name, description=tool.description,
                        annotations=hints, structured_output=True)  # fmt: skip

    return server


def make_tools(
    dsn: str,
    *,
    identity: Any = None,
    token: str | None = None,
    environment: str | None = None,
    policy: Any = None,
    audit: Any = None,
    tracer_provider: Any = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    commit: bool = True,
    **wrap_options: Any,
) -> SQLTools:
    """The governed engine and tools behind ``governed-db mcp``."""
    from governed_db.integrations.sqlalchemy import create_engine

    if identity is not None and token:
        raise ConfigurationError("give --identity or --token, not both")
    if isinstance(identity, str):
        identity = Identity.parse(identity)
    if token:
        secret = token
        identity = lambda: secret  # noqa: E731 - verified per statement by governed_db.tokens
    elif identity is None and not (os.environ.get("GOVERNED_DB_IDENTITY") or os.environ.get("GOVERNED_DB_TOKEN")):
        identity = default_identity()
    engine = create_engine(engine_url(dsn), identity=identity, environment=environment, policy=policy,
                           audit=audit, tracer_provider=tracer_provider, wrap_options=wrap_options)
    return SQLTools(engine, max_rows=max_rows, commit=commit)


def serve(dsn: str, **kwargs: Any) -> None:  # pragma: no cover - exercised through the CLI over stdio
    """Serve the governed tools over stdio until the client disconnects."""
    tools = make_tools(dsn, **kwargs)
    try:
        build_server(tools).run("stdio")
    finally:
        tools.engine.dispose()


__all__ = ["INSTRUCTIONS", "build_server", "default_identity", "engine_url", "make_tools", "serve", "server_version"]
