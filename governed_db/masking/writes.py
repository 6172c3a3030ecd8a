"""Lineage of statements that write (INSERT, UPDATE, DELETE, MERGE, CREATE ... AS): what they copy where.

Every value written into a table (``SET a = ...``, ``INSERT ... SELECT``/``VALUES``, ``ON CONFLICT DO
UPDATE``, ``MERGE ... WHEN``) is a *copy* use, and every condition (``WHERE``, ``JOIN ... ON``, ``MERGE ...
ON``, ``WHEN ... AND``) a predicate use; ``RETURNING`` is the result. ``REPLACE INTO`` (opaque to sqlglot)
is re-read as the INSERT it is; ``DECLARE ... CURSOR FOR`` a query keeps what the query returns for a later
FETCH (:func:`trace_command`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlglot
import sqlglot.errors
from sqlglot import exp

from governed_db.masking.origins import CONST, QUERY, Ctes, Lineage, Origin, Output, Scope, Source

if TYPE_CHECKING:
    from governed_db.masking.lineage import Walker


def trace_write(w: Walker, tree: exp.Expression) -> Lineage:
    """Copies, predicates and RETURNING columns of one write statement, into ``w.lineage``."""
    lin = w.lineage
    ctes = w.ctes_of(tree, {}, None)
    target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    scope = Scope([])
    if isinstance(target, exp.Table):
        scope.sources.append(w.table_source(target, ctes))
    # MySQL's multi-table ``UPDATE s JOIN t ON ... SET`` / ``DELETE s FROM s JOIN t ON ...`` keep the joins on
    # the target table, and ``UPDATE ... FROM a JOIN b ON ...`` / ``DELETE ... USING a JOIN b ON ...`` on the
    # first item after FROM/USING, not on the statement: all are joins, whose ON decides which rows are written
    joins = [*(tree.args.get("joins") or ()), *((target.args.get("joins") or ()) if isinstance(target, exp.Table) else ())]
    for key in ("from_", "from", "using"):
        extra = tree.args.get(key)
        items = extra if isinstance(extra, list) else [extra]
        for item in items:
            node = item.this if isinstance(item, exp.From) else item
            if isinstance(node, exp.Expression):
                scope.sources.append(w.from_item(node, ctes, None))
                joins.extend(node.args.get("joins") or ())
    for join in joins:
        scope.sources.append(w.from_item(join.this, ctes, scope))
    for join in joins:
        if join.args.get("on") is not None:
            lin.uses.append(("JOIN", w.expr(join.args["on"], scope, ctes)))
        for ident in join.args.get("using") or ():
            name = ident.name if isinstance(ident, exp.Identifier) else None
            lin.uses.append(("JOIN", w.expr(exp.column(name) if name else ident, scope, ctes)))
    query = tree.args.get("expression")
    if isinstance(query, QUERY):
        outs, _ = w.query(query, ctes, None)
        lin.uses.extend(("copy", o.origin) for o in outs)
    if isinstance(tree, exp.Update):
        _assignments(w, tree.expressions, scope, ctes)
    if isinstance(tree, exp.Insert) and isinstance(tree.args.get("conflict"), exp.OnConflict):
        # ON CONFLICT DO UPDATE / ON DUPLICATE KEY UPDATE: ``excluded.x`` / ``new.x`` are the values being
        # inserted (traced above as copies); anything else assigned is copied into the target
        target_src = scope.sources[0] if scope.sources else None
        inserted = [(n, CONST) for n, _ in target_src.columns] if target_src and target_src.columns else None
        upsert = Scope([*scope.sources, Source("excluded", None, inserted), Source("new", None, inserted)])
        _assignments(w, tree.args["conflict"].expressions, upsert, ctes)
    if isinstance(tree, exp.Merge):
        if tree.args.get("on") is not None:
            lin.uses.append(("JOIN", w.expr(tree.args["on"], scope, ctes)))
        whens = tree.args.get("whens")
        for when in whens.expressions if isinstance(whens, exp.Whens) else []:
            then = when.args.get("then")
            if when.args.get("condition") is not None:
                lin.uses.append(("WHERE", w.expr(when.args["condition"], scope, ctes)))
            if isinstance(then, exp.Update):
                _assignments(w, then.expressions, scope, ctes)
            elif isinstance(then, exp.Insert) and isinstance(then.expression, exp.Expression):
                _assignments(w, [then.expression], scope, ctes)
    where = tree.args.get("where")
    if where is not None:
        lin.uses.append(("WHERE", w.expr(where, scope, ctes)))
    returning = tree.args.get("returning")
    if returning is not None:
        outputs: list[Output] = []
        for proj in returning.expressions:
            if isinstance(proj, exp.Star):
                src = scope.sources[0] if scope.sources else None
                if src is None or src.columns is None:
                    lin.exact = False
                    outputs.append(Output("*", src.whole_row() if src else Origin("unknown")))
                else:
                    outputs.extend(Output(n, o) for n, o in src.columns)
            else:
                outputs.append(Output(proj.alias_or_name, w.expr(proj, scope, ctes)))
        lin.outputs = outputs
    return lin


def _assignments(w: Walker, items: Iterable[exp.Expression], scope: Scope, ctes: Ctes) -> None:
    """``SET a = <value>`` / ``INSERT (...) VALUES (<values>)``: every value is copied into the target."""
    for item in items:
        value = item.expression if isinstance(item, exp.EQ) else item
        values = value.expressions if isinstance(value, exp.Tuple) else [value]
        for v in values:
            w.lineage.uses.append(("copy", w.expr(v, scope, ctes)))


_CURSOR_QUERY = re.compile(r"^\s*\S+\s.*?\bCURSOR\b.*?\bFOR\b(.*)$", re.I | re.S)


def trace_command(w: Walker, tree: exp.Command, dialect: str) -> Lineage:
    """Statements sqlglot keeps opaque whose data flow matters: ``REPLACE INTO`` (SQLite, MariaDB), which
    writes like an INSERT, and ``DECLARE ... CURSOR FOR query`` (PostgreSQL), whose rows a later FETCH returns
    where no lineage follows them. What cannot be re-read exactly is traced as blind (fail closed)."""
    lin = w.lineage
    word = str(tree.this).upper()
    body = tree.expression.this if isinstance(tree.expression, exp.Literal) else None
    if word not in ("REPLACE", "DECLARE") or not isinstance(body, str):
        return lin
    try:
        if word == "REPLACE":
            into = body.lstrip()[:4].upper() == "INTO"
            verb = "INSERT OR REPLACE" if dialect == "sqlite" else "INSERT"
            parsed = sqlglot.parse_one(f"{verb} {'' if into else 'INTO '}{body}", read=dialect)
            if isinstance(parsed, exp.Insert):
                return trace_write(w, parsed)
        else:
            found = _CURSOR_QUERY.match(body)
            query = sqlglot.parse_one(found.group(1), read=dialect) if found else None
            if isinstance(query, QUERY):
                outs, exact = w.query(query, {}, None)
                lin.uses.extend(("a cursor (FETCH would return it unmasked)", o.origin) for o in outs)
                if not exact:
                    lin.uses.append(("a cursor (FETCH would return it unmasked)", Origin("unknown")))
                return lin
    except sqlglot.errors.SqlglotError:
        pass
    lin.blind = True  # what it reads is unknown: any lost value in it may be a masked one
    lin.uses.append(("copy", Origin("unknown")))
    return lin
