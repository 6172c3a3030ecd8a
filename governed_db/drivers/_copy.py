"""COPY ... TO: rows that leave in a format the database writes itself.

``COPY t TO STDOUT`` (psycopg ``copy()``, psycopg2 ``copy_to``/``copy_expert``)
and DuckDB's ``COPY (...) TO 'file'`` hand out rows that never pass through a
cursor, so masking cannot reach them. The statement is still judged by the
pipeline like any other; in addition, before it runs, the columns it would
export are described with a zero-row probe and masking is planned for them:
if anything would be masked, the COPY is refused (fail closed) and the caller
is told to select the rows instead. See docs/decisions/0061-copy-out-masking.md.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from governed_db.errors import GuardrailViolation
from governed_db.masking.engine import state_for
from governed_db.masking.exports import export_masked_columns
from governed_db.masking.messages import loggable
from governed_db.sql.analysis import analyze, sqlglot_dialect

if TYPE_CHECKING:
    from governed_db.pipeline import Governor

log = logging.getLogger("governed_db")
_MAYBE_COPY = re.compile(r"\bcopy\b", re.IGNORECASE)

Describe = Callable[[str], Any]


def copy_out_probe(text: str, dialect: str) -> str | None:
    """A zero-row SELECT with the columns a ``COPY ... TO`` in ``text`` exports (None: no COPY TO)."""
    if not _MAYBE_COPY.search(text):
        return None
    analysis = analyze(text, dialect)
    out = sqlglot_dialect(dialect)
    for stmt in analysis.statements:
        node = stmt.expression
        if not isinstance(node, exp.Copy) or node.args.get("kind"):  # kind=True is COPY ... FROM
            continue
        source = node.this
        if isinstance(source, exp.Subquery):
            return f"SELECT * FROM ({source.this.sql(dialect=out)}) AS governed_copy LIMIT 0"
        if isinstance(source, exp.Schema) and isinstance(source.this, exp.Table):
            cols = ", ".join(c.sql(dialect=out) for c in source.expressions) or "*"
            return f"SELECT {cols} FROM {source.this.sql(dialect=out)} LIMIT 0"
        if isinstance(source, exp.Table):
            return f"SELECT * FROM {source.sql(dialect=out)} LIMIT 0"
        if isinstance(source, exp.Expression):  # duckdb: COPY (SELECT ...) without a Subquery wrapper
            return f"SELECT * FROM ({source.sql(dialect=out)}) AS governed_copy LIMIT 0"
    return None


def refuse_unmaskable_copy(gov: Governor, text: str, describe: Describe) -> None:
    """Raise a refusal when the rows a COPY ... TO exports would have masked columns."""
    probe = copy_out_probe(text, gov.dialect)
    if probe is not None:
        refuse_masked_export(gov, probe, describe, "COPY ... TO exports rows the database formats itself")
    else:
        refuse_unread_copy(gov, text)


def refuse_unread_copy(gov: Governor, text: str) -> None:
    """A COPY whose exported columns no probe describes (unparsed; ``COPY (DELETE ... RETURNING ...) TO``) is
    refused while masking is active: what it exports cannot be checked for masked columns."""
    if _MAYBE_COPY.search(text) and state_for(gov).active:
        unread = _unread_copy(text, gov.dialect)
        if unread is not None:
            undescribable(gov, ValueError(unread))


def _unread_copy(text: str, dialect: str) -> str | None:
    """Why a COPY in ``text`` exports columns no probe can describe (``None``: there is none)."""
    for stmt in analyze(text, dialect).statements:
        if not stmt.operation.upper().startswith("COPY"):
            continue
        if stmt.expression is None:
            return "the COPY statement could not be parsed"
        if "copy-dml" in stmt.flags:
            return f"{stmt.operation} exports what a data change returns"
    return None


def refuse_masked_export(gov: Governor, probe: str, describe: Describe, how: str) -> None:
    """Raise a refusal when the columns of ``probe`` (a zero-row SELECT) would be masked.

    ``how`` says why masking cannot follow the data (it becomes part of the message).
    """
    try:
        description = describe(probe)
    except Exception as e:
        undescribable(gov, e)
        return
    refuse_masked_columns(gov, probe, description, how)


def undescribable(gov: Governor, exc: Exception) -> None:
    """The export's columns could not be described: refuse (fail closed), or warn in development."""
    if not gov.fail_closed:
        log.warning("governed_db could not check COPY ... TO for masked columns (continuing): %s", loggable(exc))
        return
    raise gov.refusal(
        GuardrailViolation(
            f"refused by governed_db: could not tell which columns this export reads "
            f"({type(exc).__name__}: {exc}), so it cannot be checked for masked columns (fail closed). "
            "Next step: select the rows with execute() instead."
        )
    ) from exc


def refuse_masked_columns(gov: Governor, probe: str, description: Any, how: str) -> None:
    """Raise a refusal when ``description`` (of ``probe``) has columns masking would change.

    The describing is the caller's (sync or awaited); this is the judgement both share.
    """
    if not description:
        return
    masked = export_masked_columns(description, analyze(probe, gov.dialect), identity=gov.resolve_identity(), gov=gov)
    if masked:
        raise gov.refusal(
            GuardrailViolation(
                f"refused by governed_db: {how}, so masking cannot reach the data, and it has masked columns "
                f"({', '.join(masked)}). Next step: select the rows with execute() and fetch them (they come "
                "back masked), or leave those columns out."
            )
        )


def describe_with(raw_conn: Any) -> Describe:
    """A describer running the probe on a fresh cursor of ``raw_conn`` (ungoverned: it returns no rows)."""

    def describe(sql: str) -> Any:
        cur = raw_conn.cursor()
        try:
            cur.execute(sql)
            return cur.description
        finally:
            cur.close()

    return describe
