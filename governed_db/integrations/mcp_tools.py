"""Curated MCP tools from a YAML file, tool annotations, and the syntax check that keeps typos out of inboxes.

A tools file names parameterised statements an agent may call, each with typed parameters validated when the
file is loaded (never at the first call)::

    sql_tools: true            # also serve list_tables / describe_table / run_query (default true)
    tools:
      - name: orders_for_customer
        description: The newest orders of one customer.
        sql: SELECT id, total FROM orders WHERE customer_id = :customer_id ORDER BY id DESC LIMIT :limit
        parameters:
          customer_id: {type: integer, description: the customer's id}
          limit: {type: integer, default: 20, minimum: 1, maximum: 200}

Parameters are SQLAlchemy ``:name`` binds, sent to the driver as parameters (never spliced into the text), and
the statement runs through the governed engine like any other: judged, masked, recorded. A tool whose SQL only
reads is annotated ``readOnlyHint``; one that writes is ``destructiveHint`` unless the file says
``destructive: false`` (an append-only insert, say).
"""

from __future__ import annotations

import difflib
import keyword
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governed_db.errors import ConfigurationError

#: YAML type name -> Python type (what the MCP input schema and validation use)
TYPES: dict[str, type] = {"string": str, "integer": int, "number": float, "boolean": bool}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_RESERVED = frozenset({"list_tables", "describe_table", "run_query"})
_TOOL_KEYS = ("name", "description", "sql", "parameters", "destructive", "title")
_PARAM_KEYS = ("type", "description", "default", "minimum", "maximum", "enum", "max_length")

#: statements servers accept that sqlglot reads as a bare expression; they stay governed (not syntax errors)
KNOWN_COMMANDS = frozenset({
    "ABORT", "BINLOG", "CACHE", "CHECKPOINT", "CHECKSUM", "CLOSE", "CLUSTER", "DEALLOCATE", "DETACH", "DISCARD",
    "EXPORT", "FETCH", "FLUSH", "FORCE", "HANDLER", "HELP", "IMPORT", "INSTALL", "KILL", "LISTEN", "LOAD", "MOVE",
    "NOTIFY", "OPTIMIZE", "PURGE", "REASSIGN", "REFRESH", "REINDEX", "RELEASE", "REPAIR", "RESET", "RESIGNAL",
    "SECURITY", "SIGNAL", "SUMMARIZE", "UNINSTALL", "UNLISTEN", "UNLOCK", "XA",
})  # fmt: skip
_STATEMENT_WORDS = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "CREATE", "DROP", "ALTER", "EXPLAIN", "SHOW",
                    "DESCRIBE", "MERGE", "VALUES", "TRUNCATE", "GRANT", "REVOKE", "BEGIN", "COMMIT", "ROLLBACK")  # fmt: skip


def syntax_problem(sql: str, dialect: str) -> str | None:
    """Why ``sql`` is not a statement at all (an agent's typo like ``SELEC broken``), or ``None``.

    Only text that parses as a bare expression - which no server runs - counts; statements the parser does not
    know (``VACUUM``, ``LISTEN``) and text it cannot parse are left to the policy, which refuses or asks for
    approval as before. So this never lets anything through; it only stops a typo from reaching reviewers.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        parsed = sqlglot.parse(sql, read=dialect)
    except SqlglotError:
        return None  # the policy's unparseable rule answers, with its reason
    for node in parsed:
        if node is None or not isinstance(node, (exp.Condition, exp.Alias)):
            continue
        rendered = node.sql(dialect=dialect).split(None, 1)
        word = rendered[0].strip("\"'`(") if rendered else "?"
        if word.upper() in KNOWN_COMMANDS:
            continue
        close = difflib.get_close_matches(word.upper(), _STATEMENT_WORDS, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return f"syntax error: {word!r} does not start a {dialect} statement{hint}; fix the SQL and call again"
    return None


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str
    description: str = ""
    default: Any = None
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[Any, ...] = ()
    max_length: int | None = None

    def annotation(self) -> Any:
        """``Annotated[type, Field(...)]``: the MCP input schema and the server-side validation."""
        from typing import Annotated, Literal

        from pydantic import Field

        base: Any = Literal[self.enum] if self.enum else TYPES[self.type]  # type: ignore[valid-type]
        return Annotated[base, Field(description=self.description or None, ge=self.minimum, le=self.maximum,
                                     max_length=self.max_length, strict=self.type != "number")]  # fmt: skip


@dataclass(frozen=True)
class CuratedTool:
    name: str
    description: str
    sql: str
    parameters: tuple[ParamSpec, ...]
    read_only: bool
    destructive: bool
    title: str | None = None


@dataclass(frozen=True)
class ToolsFile:
    tools: tuple[CuratedTool, ...]
    #: also serve the generic list_tables / describe_table / run_query
    sql_tools: bool = True


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def _param(where: str, name: Any, raw: Any) -> ParamSpec:
    if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
        raise ConfigurationError(f"{where}: parameter name {name!r} must be lower_snake_case (a-z, 0-9, _)")
    spec = {"type": raw} if isinstance(raw, str) else raw
    if not isinstance(spec, dict):
        raise ConfigurationError(f"{where}.{name}: expected a type name or {{type:, description:, default:}}")
    unknown = [k for k in spec if k not in _PARAM_KEYS]
    if unknown:
        raise ConfigurationError(f"{where}.{name}: unknown key {unknown[0]!r}; valid: {', '.join(_PARAM_KEYS)}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise ConfigurationError(f"{where}.{name}: type must be one of {', '.join(TYPES)}, got {kind!r}")
    for bound in ("minimum", "maximum"):
        if bound in spec and (kind not in ("integer", "number") or not _type_ok("number", spec[bound])):
            raise ConfigurationError(f"{where}.{name}: {bound} needs a numeric parameter and a number")
    if "max_length" in spec and (kind != "string" or not _type_ok("integer", spec["max_length"])):
        raise ConfigurationError(f"{where}.{name}: max_length needs a string parameter and an integer")
    enum = spec.get("enum") or ()
    if enum and (not isinstance(enum, list) or not all(_type_ok(kind, v) for v in enum)):
        raise ConfigurationError(f"{where}.{name}: enum must be a list of {kind} values")
    has_default = "default" in spec
    if has_default and not _type_ok(kind, spec["default"]):
        raise ConfigurationError(f"{where}.{name}: default {spec['default']!r} is not a {kind}")
    return ParamSpec(name, kind, str(spec.get("description") or ""), spec.get("default"), not has_default,
                     spec.get("minimum"), spec.get("maximum"), tuple(enum), spec.get("max_length"))  # fmt: skip


def _tool(where: str, raw: Any, dialect: str, seen: set[str]) -> CuratedTool:
    from sqlalchemy import text

    from governed_db.sql.analysis import analyze

    if not isinstance(raw, dict):
        raise ConfigurationError(f"{where}: expected a mapping with name, description, sql, parameters")
    unknown = [k for k in raw if k not in _TOOL_KEYS]
    if unknown:
        raise ConfigurationError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(_TOOL_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(f"{where}: name {name!r} must be lower_snake_case (a-z, 0-9, _)")
    where = f"{where} ({name})"
    if name in _RESERVED or name in seen:
        raise ConfigurationError(f"{where}: the name {name} is already taken")
    seen.add(name)
    description, sql = raw.get("description"), raw.get("sql")
    if not isinstance(description, str) or not description.strip():
        raise ConfigurationError(f"{where}: a description is required (it is what the agent reads)")
    if not isinstance(sql, str) or not sql.strip():
        raise ConfigurationError(f"{where}: sql is required")
    params_raw = raw.get("parameters") or {}
    if not isinstance(params_raw, dict):
        raise ConfigurationError(f"{where}.parameters: expected a mapping of name -> type or settings")
    params = tuple(_param(f"{where}.parameters", k, v) for k, v in params_raw.items())
    binds = set(text(sql).compile().params)
    declared = {p.name for p in params}
    if binds - declared:
        raise ConfigurationError(f"{where}: the sql uses :{sorted(binds - declared)[0]}, which is not declared")
    if declared - binds:
        raise ConfigurationError(f"{where}: parameter {sorted(declared - binds)[0]} is declared but not used")
    analysis = analyze(sql, dialect)
    if analysis.error or len(analysis.statements) != 1 or analysis.statements[0].kind == "unknown":
        why = analysis.error or ("one statement" if len(analysis.statements) != 1 else "a known statement")
        raise ConfigurationError(f"{where}: the sql must be exactly one {dialect} statement ({why})")
    read_only = analysis.is_read_only
    destructive = raw.get("destructive", not read_only)
    if not isinstance(destructive, bool) or (read_only and destructive):
        raise ConfigurationError(f"{where}: destructive must be true or false (and false for a read)")
    return CuratedTool(name, description.strip(), sql, params, read_only, destructive, raw.get("title"))


def load_tools_file(path: str | Path, *, dialect: str) -> ToolsFile:
    """Read and validate a tools file for ``dialect``; a :class:`ConfigurationError` names the place."""

    from governed_db.config_files import load_yaml, read_config_text

    where = str(path)
    data = load_yaml(read_config_text(path, "the tools file"), f"the tools file {where}")
    if not isinstance(data, dict) or not isinstance(data.get("tools", []), list):
        raise ConfigurationError(f"{where}: expected a mapping with tools: [...] (and optionally sql_tools:)")
    extra = [k for k in data if k not in ("tools", "sql_tools")]
    if extra:
        raise ConfigurationError(f"{where}: unknown key {extra[0]!r}; valid: tools, sql_tools")
    sql_tools = data.get("sql_tools", True)
    if not isinstance(sql_tools, bool):
        raise ConfigurationError(f"{where}: sql_tools must be true or false")
    seen: set[str] = set()
    tools = tuple(_tool(f"{where}: tools[{i}]", raw, dialect, seen) for i, raw in enumerate(data.get("tools") or []))
    if not tools and not sql_tools:
        raise ConfigurationError(f"{where}: no tools at all (sql_tools: false and an empty tools list)")
    return ToolsFile(tools, sql_tools)


def tool_function(tool: CuratedTool, call: Callable[[CuratedTool, dict[str, Any]], Any]) -> Callable[..., Any]:
    """A function whose signature is the tool's typed parameters (what the MCP SDK builds the schema from)."""
    import inspect

    def run(**kwargs: Any) -> Any:
        return call(tool, kwargs)

    params = [
        inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, annotation=p.annotation(),
                          default=inspect.Parameter.empty if p.required else p.default)
        for p in sorted(tool.parameters, key=lambda p: not p.required)
    ]
    run.__signature__ = inspect.Signature(params, return_annotation=dict[str, Any])  # type: ignore[attr-defined]
    run.__name__ = tool.name
    run.__annotations__ = {p.name: p.annotation() for p in tool.parameters} | {"return": dict[str, Any]}
    return run


def run_curated(engine: Any, tool: CuratedTool, values: Mapping[str, Any], *, max_rows: int, commit: bool) -> Any:
    """Run one curated statement with bound parameters through the governed engine."""
    from sqlalchemy import text

    from governed_db.integrations.tooling import QueryResult, json_safe

    with engine.connect() as conn:
        result = conn.execute(text(tool.sql), dict(values))
        if result.returns_rows:
            columns = list(result.keys())
            fetched = result.fetchmany(max_rows + 1)
            result.close()
            out = QueryResult(columns, [[json_safe(v) for v in row] for row in fetched[:max_rows]],
                              truncated=len(fetched) > max_rows)  # fmt: skip
        else:
            out = QueryResult([], [], rows_affected=result.rowcount if result.rowcount >= 0 else None)
        if commit and not tool.read_only:
            conn.commit()
        else:
            conn.rollback()
    return out


__all__ = [
    "KNOWN_COMMANDS",
    "TYPES",
    "CuratedTool",
    "ParamSpec",
    "ToolsFile",
    "load_tools_file",
    "run_curated",
    "syntax_problem",
    "tool_function",
]
