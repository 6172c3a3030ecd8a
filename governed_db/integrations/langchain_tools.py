"""LangChain tools on ``langchain-core`` alone: governed SQL tools any LangChain agent can call.

    from governed_db.integrations.langchain_tools import sql_tools
    tools = sql_tools("postgresql+psycopg://agent_ro@db/shop",
                      identity=Identity("sql-agent", kind="agent", on_behalf_of="alice"),
                      tools_file="tools.yaml")            # optional curated, parameterised tools
    agent = create_agent(model, tools)                    # any tool-calling agent

``langchain-community`` (and its ``SQLDatabase``) is being sunset; these tools rest on ``langchain_core.tools``
only. They are the MCP server's tools as LangChain ``StructuredTool`` objects - ``list_tables``,
``describe_table``, ``run_query`` over :class:`governed_db.integrations.tooling.SQLTools`, plus the curated tools of a tools
file (:mod:`governed_db.integrations.mcp_tools`) - so every statement is judged, masked and recorded, a refusal reaches the
model as a tool error it can act on (``refused by rule …: … Next step: …``), and a typo comes back as a syntax
error instead of an approval request.
"""

from __future__ import annotations

import functools
from typing import Any

from governed_db.errors import ConfigurationError
from governed_db.integrations.mcp_tools import (
    ToolsFile,
    load_tools_file,
    run_curated,
    syntax_problem,
    tool_function,
)
from governed_db.integrations.tooling import DEFAULT_MAX_ROWS, SQLTools, refusal_message

try:
    from langchain_core.tools import BaseTool, StructuredTool, ToolException
except ImportError as e:  # pragma: no cover - the extra is not installed
    raise ImportError("governed_db.integrations.langchain_tools needs langchain-core: pip install 'governed-db[langchain]'") from e


def _tool_error(exc: BaseException) -> ToolException:
    message = refusal_message(exc)
    if message is None:
        orig = getattr(exc, "orig", None) or exc
        message = f"the database reported an error: {type(orig).__name__}: {orig}".splitlines()[0]
    return ToolException(message)


def _guarded(fn: Any) -> Any:
    @functools.wraps(fn)  # keeps the signature the tool's schema is inferred from
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ToolException:
            raise
        except Exception as e:
            raise _tool_error(e) from None

    return run


def tools_for(sql: SQLTools, *, curated: ToolsFile | None = None) -> list[BaseTool]:
    """LangChain tools over ``sql`` (a :class:`SQLTools` on a governed engine) and the curated tools."""
    from governed_db.integrations.sqlalchemy import SQLGLOT_DIALECTS

    dialect = SQLGLOT_DIALECTS.get(sql.engine.dialect.name, sql.engine.dialect.name)
    out: list[BaseTool] = []
    if curated is None or curated.sql_tools:

        def list_tables() -> list[str]:
            """List the tables and views this identity may query."""
            return sql.list_tables()

        def describe_table(table: str) -> list[dict[str, Any]]:
            """Columns of one table: name, type, nullable, primary_key."""
            return sql.describe_table(table)

        def run_query(query: str, max_rows: int = DEFAULT_MAX_ROWS) -> dict[str, Any]:
            """Run one SQL statement; returns columns and rows (sensitive values masked). A refusal names the
            rule and the next step: follow it instead of retrying the same statement."""
            problem = syntax_problem(query, dialect)
            if problem is not None:
                raise ToolException(problem)
            return sql.run_query(query, max_rows=max_rows).to_dict()

        for fn in (list_tables, describe_table, run_query):
            out.append(StructuredTool.from_function(_guarded(fn), handle_tool_error=True))
    for tool in curated.tools if curated is not None else ():

        def call(t: Any, values: dict[str, Any]) -> Any:
            return run_curated(sql.engine, t, values, max_rows=sql.max_rows, commit=sql.commit).to_dict()

        out.append(StructuredTool.from_function(_guarded(tool_function(tool, call)), name=tool.name,
                                                description=tool.description, handle_tool_error=True))  # fmt: skip
    return out


def sql_tools(
    engine_or_url: Any,
    *,
    identity: Any = None,
    environment: str | None = None,
    policy: Any = None,
    tools_file: str | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    commit_writes: bool = True,
    engine_kwargs: dict[str, Any] | None = None,
) -> list[BaseTool]:
    """Governed LangChain tools over a URL (a governed engine is built) or a governed engine you pass."""
    from governed_db.integrations.sqlalchemy import SQLGLOT_DIALECTS, create_engine, is_governed

    if isinstance(engine_or_url, str):
        engine = create_engine(engine_or_url, identity=identity, environment=environment, policy=policy,
                               **(engine_kwargs or {}))  # fmt: skip
    else:
        engine = engine_or_url
        if not is_governed(engine):
            raise ConfigurationError(
                "this engine is not governed; build it with governed_db.sqlalchemy.create_engine() or pass the URL"
            )
    curated = None
    if tools_file is not None:
        curated = load_tools_file(tools_file, dialect=SQLGLOT_DIALECTS.get(engine.dialect.name, engine.dialect.name))
    return tools_for(SQLTools(engine, max_rows=max_rows, commit=commit_writes), curated=curated)


__all__ = ["sql_tools", "tools_for"]
