"""Carry identity into the database's own logs.

Two opt-in ways:

* ``sqlcommenter=True`` appends a comment in the sqlcommenter format
  (``/*key='value',...*/``) with the identity and the W3C ``traceparent``.
  Off by default: a comment that changes per request or per identity makes
  every statement text unique and defeats the driver's and the server's
  statement caches (psycopg prepared statements, MySQL's digest tables,
  ``pg_stat_statements`` grouping).
* ``application_name=True`` (PostgreSQL) sets the session's
  ``application_name`` once at wrap time; visible in ``pg_stat_activity`` and
  the server log, and free per statement.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from governed_db.identity import Identity
    from governed_db.pipeline import Governor

# a statement that already carries a comment is left alone (sqlcommenter spec)
_HAS_COMMENT = re.compile(r"--|/\*")


def _serialize(key: str, value: str) -> str:
    # sqlcommenter: URL-encode, then escape single quotes (meta characters)
    return f"{quote(key, safe='')}='{quote(value, safe='').replace(chr(39), chr(92) + chr(39))}'"


def build_comment(fields: dict[str, str]) -> str:
    return "/*" + ",".join(_serialize(k, v) for k, v in sorted(fields.items()) if v) + "*/"


def tag_statement(sql: Any, gov: Governor, identity: Identity, span: Any, params: Any) -> Any:
    """Step 5: the statement to send, with a sqlcommenter comment when enabled."""
    if not gov.settings.option("sqlcommenter") or not isinstance(sql, str):
        return sql
    if _HAS_COMMENT.search(sql):
        return sql
    fields = {
        "db_user": identity.subject,
        "identity_kind": identity.kind,
        "on_behalf_of": identity.on_behalf_of or "",
        "environment": gov.environment,
        "framework": "governed_db",
    }
    ctx = span.get_span_context() if span is not None else None
    if ctx is not None and ctx.is_valid:
        fields["traceparent"] = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    comment = build_comment(fields)
    if params is not None and gov.driver.paramstyle_for(gov.raw) in ("format", "pyformat"):
        comment = comment.replace("%", "%%")
    stripped = sql.rstrip()
    if stripped.endswith(";"):
        return f"{stripped[:-1]} {comment};"
    return f"{stripped} {comment}"
