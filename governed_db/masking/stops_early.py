"""PostgreSQL: a sublink that stops at the first row deciding it, over a table read in stored order (decision 0342).

``EXISTS (SELECT ...)`` stops at its first row; ``x IN (SELECT ...)``, ``x = ANY (SELECT ...)`` and ``x <> ALL
(SELECT ...)`` (and ``NOT IN``) stop at the first row that decides them where they run as a plain subplan or a
nested-loop semi-join; PostgreSQL drops an ORDER BY inside EXISTS. The rows before that one are those stored
before it, and where rows are stored follows how wide their masked values are (decisions 0272, 0334). An
expression that fails on some rows only (``1 / (id - 396)``) then fails the statement or not by that order:
the error is withheld (0334), but *whether* there is one tells the order.

A sublink whose query reads a relation with a column masked for the caller is refused when it evaluates,
row by row, an expression that may fail on some rows and not others: anything but column references,
constants, comparisons, boolean logic, ``IS``, ``BETWEEN``, ``IN`` lists, ``LIKE`` with a constant pattern,
``CASE``, ``COALESCE``/``NULLIF``/``GREATEST``/``LEAST``, ``lower``/``upper``/``length``/``trim``, ``||``,
JSON member reads, a cast to text, ``date_trunc`` — or an expression of constants only (the same on every row).
One table read by a whole key (``c.id = o.customer_id``, a constant, a parameter) reads at most one row each
time: no order, not refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlglot import exp

#: what cannot fail on one row and not another (whatever the column values; a bad constant fails on every row)
_SAFE: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, name)
    for name in (
        # structure
        "Select", "From", "Join", "Where", "Having", "Group", "Order", "Ordered", "Limit", "Offset", "Fetch",
        "Table", "TableAlias", "Alias", "Identifier", "Star", "Column", "Dot", "Subquery", "Paren", "Tuple",
        "Distinct", "With", "CTE", "Union", "Intersect", "Except", "Exists", "Any", "All", "Var",
        # values
        "Literal", "Boolean", "Null", "Placeholder", "Parameter", "DataType", "Interval",
        "CurrentDate", "CurrentTimestamp", "CurrentTime",
        # predicates and logic
        "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "Is", "NullSafeEQ", "NullSafeNEQ", "And", "Or", "Not", "Between",
        "In", "Case", "If",
        # functions that take any value of their type
        "Coalesce", "Nullif", "Greatest", "Least", "Lower", "Upper", "Length", "Trim", "DPipe", "Concat",
        "JSONExtract", "JSONExtractScalar", "TimestampTrunc", "DateTrunc",
    )
    if hasattr(exp, name)
)  # fmt: skip
_TEXT_TYPES = frozenset({"TEXT", "VARCHAR", "CHAR", "NAME", "BPCHAR"})


def sublinks(tree: exp.Expression) -> Iterator[tuple[exp.Expression, exp.Expression]]:
    """``(sublink, its query)`` for each EXISTS, ``IN (SELECT ...)``, ``ANY``/``ALL (SELECT ...)`` in ``tree``."""
    for node in tree.walk():
        query: exp.Expression | None = None
        if isinstance(node, exp.Exists):
            query = node.this
        elif isinstance(node, exp.In):
            query = node.args.get("query")
        elif isinstance(node, (exp.Any, exp.All)):
            query = node.this
        while isinstance(query, (exp.Subquery, exp.Paren)):
            query = query.this
        if isinstance(node, exp.Expression) and isinstance(query, (exp.Select, exp.Union, exp.Intersect, exp.Except)):
            yield node, query


def may_fail(query: exp.Expression) -> exp.Expression | None:
    """The first expression of ``query`` (its nested queries included) that may fail on some rows and not others,
    or None."""
    for node in query.walk():
        if isinstance(node, _SAFE):
            continue
        if isinstance(node, (exp.Like, exp.ILike)):
            if _per_row(node.expression):  # a pattern that changes per row may be a bad one on some rows
                return node
            continue
        if isinstance(node, exp.Cast) and _text(node.args.get("to")):
            continue
        if isinstance(node, exp.Expression) and _per_row(node):
            return node
    return None


def one_row_by_key(query: exp.Expr, keys: Callable[[exp.Table], tuple[frozenset[str], ...]]) -> bool:
    """``query`` reads one table (no join, no nested query) and its WHERE sets a whole key of it (``keys``) equal to
    a constant, a parameter or a column of another (outer) relation: one row each time it runs."""
    if not isinstance(query, exp.Select) or query.args.get("joins"):
        return False
    if any(q is not query for q in query.find_all(exp.Select)):
        return False
    tables = list(query.find_all(exp.Table))
    if len(tables) != 1:
        return False
    table = tables[0]
    where = query.args.get("where")
    if not isinstance(where, exp.Where):
        return False
    names = {table.name.lower(), table.alias_or_name.lower()}
    pinned: set[str] = set()
    cond = where.this
    for part in cond.flatten() if isinstance(cond, exp.And) else (cond,):
        part = part.unnest()
        if not isinstance(part, exp.EQ):
            continue
        for col, other in ((part.this, part.expression), (part.expression, part.this)):
            if not isinstance(col, exp.Column) or (col.table and col.table.lower() not in names):
                continue
            outer = isinstance(other, exp.Column) and bool(other.table) and other.table.lower() not in names
            if outer or isinstance(other, (exp.Literal, exp.Placeholder, exp.Parameter)):
                pinned.add(col.name.lower())
    return any(k and k <= pinned for k in keys(table))


def _per_row(node: exp.Expression | None) -> bool:
    """``node`` reads a column (so may differ per row)."""
    return node is not None and (isinstance(node, exp.Column) or node.find(exp.Column) is not None)


def _text(to: object) -> bool:
    return isinstance(to, exp.DataType) and to.this.name in _TEXT_TYPES and not to.expressions


__all__ = ["may_fail", "one_row_by_key", "sublinks"]
