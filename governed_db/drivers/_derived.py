"""Results whose column names or summary cells the database derives from the data.

Masking works on a result's cells, column by column, as the result's
``description`` names them. Two DuckDB constructs put values where that cannot
reach them:

* ``PIVOT`` (also ``PIVOT_WIDER`` and the standard ``t PIVOT (agg FOR col IN ...)``)
  names result columns after the *values* of its ``ON``/``FOR`` columns: a
  pivot on ``ssn`` puts every SSN into ``cursor.description``. Its ``USING``
  aggregates (``max(ssn)``) and ``UNPIVOT``'s value column carry values into
  cells under names masking cannot trace back.
* A ``PIVOT`` groups its rows by its ``GROUP BY`` columns or, without one, by
  every source column it neither pivots on nor aggregates: how many rows come
  out (and which counts share a row) says whether grouped values are equal,
  so a masked group column confirms a guessed value put next to it by UNION ALL.
* ``SUMMARIZE`` reports ``min``/``max``/quantiles of every column as rows.

Before such a statement runs, each construct's inputs are described with a
zero-row probe (``SELECT <on columns> FROM <source> LIMIT 0``, one per
aggregate) and masking is planned for them, as for ``COPY ... TO``
(:mod:`governed_db.drivers._copy`): if anything would be masked, the statement
is refused. See docs/decisions/0066-data-derived-names-and-summaries.md.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from sqlglot import exp

from governed_db.drivers._copy import Describe, refuse_masked_export
from governed_db.errors import GuardrailViolation
from governed_db.masking.messages import loggable
from governed_db.sql.analysis import analyze, sqlglot_dialect

if TYPE_CHECKING:
    from governed_db.pipeline import Governor

log = logging.getLogger("governed_db")
_MAYBE_DERIVED = re.compile(r"pivot|summarize", re.IGNORECASE)  # also PIVOT_WIDER, UNPIVOT, PIVOT_LONGER

PIVOT_HOW = "PIVOT turns the values of its ON columns into column names (and its aggregates into cells)"
UNPIVOT_HOW = "UNPIVOT moves the values of its columns into a column masking cannot trace"
PIVOT_GROUP_HOW = (
    "PIVOT groups its rows by its GROUP BY columns (without one, by every column it neither pivots on nor "
    "aggregates), which compares their values"
)
SUMMARIZE_HOW = "SUMMARIZE reports min, max and quantiles of the column values"


def derived_probes(text: str, dialect: str) -> list[tuple[str, str]]:
    """``(zero-row probe, why)`` for every PIVOT/UNPIVOT/SUMMARIZE in ``text`` (empty: none)."""
    if not _MAYBE_DERIVED.search(text):
        return []
    out = sqlglot_dialect(dialect)
    probes: list[tuple[str, str]] = []
    for stmt in analyze(text, dialect).statements:
        root = stmt.expression
        if root is None:
            continue
        with_key = "with_" if "with_" in exp.Select.arg_types else "with"  # the key differs by sqlglot release
        for node in root.find_all(exp.Pivot, exp.Summarize):
            with_ = _enclosing_with(node, with_key)
            for select, how in _node_probes(node):
                if with_ is not None:  # the source may be a CTE of the statement
                    select.set(with_key, with_.copy())
                probes.append((select.sql(dialect=out), how))
    return probes


def _enclosing_with(node: exp.Expression, key: str) -> exp.Expression | None:
    """The WITH clause nearest around ``node`` (a relation's SQL wrapped in ``SELECT count(*) FROM (...)``), or
    its own (``WITH x AS (...) PIVOT x ON ...``)."""
    parent: exp.Expr | None = node
    while parent is not None:
        with_ = parent.args.get(key)
        if isinstance(with_, exp.With):
            return with_
        parent = parent.parent
    return None


def refuse_derived_from_masked(gov: Governor, text: str, describe: Describe) -> None:
    """Raise a refusal when a PIVOT/UNPIVOT/SUMMARIZE in ``text`` would expose masked values."""
    try:
        probes = derived_probes(text, gov.dialect)
    except Exception as e:  # an unforeseen tree shape: refuse in production rather than guess
        if not gov.fail_closed:
            log.warning("governed_db could not check PIVOT/SUMMARIZE for masked columns (continuing): %s", loggable(e))
            return
        raise gov.refusal(
            GuardrailViolation(
                f"refused by governed_db: could not tell which columns this PIVOT/UNPIVOT/SUMMARIZE reads "
                f"({type(e).__name__}), so it cannot be checked for masked columns (fail closed). "
                "Next step: select the rows with a plain SELECT instead."
            )
        ) from e
    for probe, how in probes:
        refuse_masked_export(gov, probe, describe, how)


def _node_probes(node: exp.Expression) -> list[tuple[exp.Select, str]]:
    source = _source(node)
    if isinstance(node, exp.Summarize):
        return [(_select([exp.Star()], source), SUMMARIZE_HOW)]
    unpivot = bool(node.args.get("unpivot"))
    fields = node.args.get("fields") or []
    if fields:  # standard: PIVOT (aggs FOR col IN (...)) / UNPIVOT (value FOR name IN (cols))
        ins = [f for f in fields if isinstance(f, exp.In)]
        if unpivot:
            columns = [e for f in ins for e in f.expressions]
            aggregates: list[exp.Expression] = []
        else:
            columns = [f.this for f in ins]
            aggregates = list(node.expressions)
    else:  # duckdb: PIVOT src ON cols [IN (...)] USING aggs / UNPIVOT src ON cols INTO ...
        columns = [e.this if isinstance(e, exp.In) else e for e in node.expressions]
        using = node.args.get("using")
        aggregates = list(using) if isinstance(using, list) else []
    how = UNPIVOT_HOW if unpivot else PIVOT_HOW
    probes = [(_select(columns or [exp.Star()], source), how)]
    # an aggregate next to plain columns would need a GROUP BY: one probe each
    probes.extend((_select([agg], source), how) for agg in aggregates)
    if not unpivot:
        probes.append((_select(_group_columns(node, columns, aggregates), source), PIVOT_GROUP_HOW))
    return probes


def _group_columns(
    node: exp.Expression, columns: list[exp.Expression], aggregates: list[exp.Expression]
) -> list[exp.Expression]:
    """What a PIVOT groups its rows by: its ``GROUP BY``, else ``* EXCLUDE`` (what it pivots on or aggregates)."""
    group = node.args.get("group")
    if isinstance(group, exp.Group) and group.expressions:
        return list(group.expressions)
    used = {c.name.lower() for e in [*columns, *aggregates] for c in e.find_all(exp.Column)}
    if not used:
        return [exp.Star()]
    key = "except_" if "except_" in exp.Star.arg_types else "except"
    # a constant keeps the probe valid when every column is pivoted on or aggregated (nothing is grouped)
    nothing = exp.Alias(this=exp.Null(), alias=exp.to_identifier("governed_db_nothing_grouped"))
    return [exp.Star(**{key: [exp.column(name) for name in sorted(used)]}), nothing]


def _source(node: exp.Expression) -> exp.Expression:
    """What the construct reads: ``PIVOT <src> ON``, ``SUMMARIZE <src>``, or the table a pivot hangs on."""
    source = node.this
    if source is None and isinstance(node.parent, (exp.Table, exp.Subquery)):
        source = node.parent.copy()
        source.set("pivots", None)
    if source is None:
        # cannot tell what it reads: a probe that fails, so the export check refuses (fail closed)
        return exp.to_table("governed_db_unknown_pivot_source")
    source = source.copy()
    if isinstance(source, exp.Table):
        return source
    if not isinstance(source, exp.Subquery):
        source = exp.Subquery(this=source)
    if not source.alias:
        source.set("alias", exp.TableAlias(this=exp.to_identifier("governed_source")))
    return source


def _select(columns: list[exp.Expression], source: exp.Expression) -> exp.Select:
    return exp.Select(expressions=[c.copy() for c in columns]).from_(source, copy=False).limit(0)
