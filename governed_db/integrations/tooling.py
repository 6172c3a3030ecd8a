"""What agent-facing integrations share: readable refusals and three governed SQL tools.

An agent cannot act on a stack trace. :func:`refusal_message` turns a
refusal (however deeply SQLAlchemy, pandas or LangChain wrapped it) into one
paragraph: which rule, why, and the next step. :class:`SQLTools` is the
library behind the MCP server, the LangChain helpers and the example agent
loop: ``list_tables``, ``describe_table`` and ``run_query`` over a governed
SQLAlchemy engine, returning JSON-safe values. Every statement they send —
including the catalogue queries — goes through the pipeline, so it is
judged, masked and recorded like the agent's own SQL.
"""

from __future__ import annotations

import base64
import datetime as _dt
import decimal
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

from governed_db.errors import ApprovalRequired, GovernanceFault, GuardrailViolation

_E = TypeVar("_E", bound=BaseException)

#: rows handed to an agent per query unless the caller asks otherwise
DEFAULT_MAX_ROWS = 200


def refusal_of(exc: BaseException) -> GuardrailViolation | None:
    """The :class:`GuardrailViolation` behind ``exc`` (``exc.orig``, ``__cause__`` chains), or ``None``."""
    return _in_chain(exc, GuardrailViolation)


def _in_chain(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first ``kind`` in ``exc``'s chain: SQLAlchemy's ``.orig``, else ``__cause__``/``__context__``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return None


def refusal_message(exc: BaseException) -> str | None:
    """One readable paragraph for an agent or a notebook user, or ``None`` when ``exc`` is no refusal."""
    refusal = refusal_of(exc)
    if refusal is None:
        fault = _in_chain(exc, GovernanceFault)
        return None if fault is None else f"governance fault, the statement was not run: {fault}"
    decision = refusal.decision
    rules = ", ".join(refusal.rules) or "governed_db"
    reason = "; ".join(h.reason for h in decision.hits if h.action == decision.action) if decision else ""
    reason = reason or str(refusal.args[0] if refusal.args else refusal)
    if isinstance(refusal, ApprovalRequired):
        parts = [f"approval required by rule {rules}: {reason}."]
        if refusal.request_id:
            parts.append(f"Request id: {refusal.request_id}.")
        command = refusal.approve_command or (
            f"governed-db approvals approve {refusal.request_id}" if refusal.request_id else None
        )
        nxt = (
            f"ask a reviewer to run `{command}`, then retry the same statement"
            if command
            else ("ask a reviewer to approve this statement, then retry it unchanged")
        )
        parts.append(f"Next step: {nxt}.")
        return " ".join(parts)
    remedy = refusal.remedy or "rewrite the statement so the rule no longer applies, or ask a human"
    return f"refused by rule {rules}: {reason}. Next step: {remedy}."


def json_safe(value: Any) -> Any:
    """A cell as JSON: numbers, strings, booleans and None pass; the rest become readable text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "base64:" + base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return str(value)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False
    rows_affected: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "rows": self.rows,
            "truncated": self.truncated,
            "rows_affected": self.rows_affected,
        }


@dataclass
class SQLTools:
    """``list_tables`` / ``describe_table`` / ``run_query`` over a governed engine."""

    engine: Any
    max_rows: int = DEFAULT_MAX_ROWS
    #: commit statements that change data (False: roll every statement back — a dry run)
    commit: bool = True
    schema: str | None = None

    def list_tables(self) -> list[str]:
        import sqlalchemy

        inspector = sqlalchemy.inspect(self.engine)
        return sorted(
            inspector.get_table_names(schema=self.schema) + inspector.get_view_names(schema=self.schema)
        )

    def describe_table(self, table: str) -> list[dict[str, Any]]:
        import sqlalchemy

        inspector = sqlalchemy.inspect(self.engine)
        columns = inspector.get_columns(table, schema=self.schema)
        try:
            pk = set(inspector.get_pk_constraint(table, schema=self.schema).get("constrained_columns") or ())
        except NotImplementedError:  # pragma: no cover - dialects without PK reflection
            pk = set()
        return [
            {
                "name": c["name"],
                "type": str(c["type"]),
                "nullable": bool(c.get("nullable", True)),
                "primary_key": c["name"] in pk,
            }
            for c in columns
        ]

    def run_query(self, sql: str, max_rows: int | None = None) -> QueryResult:
        """Run one statement as the engine's identity; refusals raise (see :func:`refusal_message`)."""
        limit = self.max_rows if max_rows is None else max(0, min(int(max_rows), self.max_rows))
        with self.engine.connect() as conn:
            result = conn.exec_driver_sql(sql)
            if result.returns_rows:
                columns = list(result.keys())
                fetched = result.fetchmany(limit + 1)
                result.close()
                rows = [[json_safe(v) for v in row] for row in fetched[:limit]]
                out = QueryResult(columns, rows, truncated=len(fetched) > limit)
            else:
                out = QueryResult([], [], rows_affected=result.rowcount if result.rowcount >= 0 else None)
            if self.commit:
                conn.commit()
            else:
                conn.rollback()
        return out


__all__ = [
    "DEFAULT_MAX_ROWS",
    "QueryResult",
    "SQLTools",
    "json_safe",
    "refusal_message",
    "refusal_of",
]
