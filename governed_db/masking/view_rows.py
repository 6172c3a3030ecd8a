"""A view is read as the query it is defined by (decision 0374 on SQLite, 0382 on the other databases).

A view's columns already take their classes from its definition (decision 0262): one computed from a masked
column is masked whole. What the definition does with masked values besides computing a column was not judged:
``CREATE VIEW v AS SELECT id FROM customers WHERE ssn LIKE '5%'`` (or ``ORDER BY ssn``, ``GROUP BY substr(ssn, 1,
1)``, a join on ``a.ssn < b.ssn``, ``rank() OVER (ORDER BY ssn)``) lets the masked value decide which rows a plain
``SELECT id FROM v`` returns, how many, and in what order. The guard judges the definition as the same query
written in the caller's statement would be, with one relief: a result column that only computes a value (a
``CASE``, a comparison, a cut of the text) is masked whole where it is read, so it is left out of the judgement —
unless the query sorts, groups or deduplicates on it, or it calls anything that may fail.
"""

from __future__ import annotations

from sqlglot import exp

#: nodes of a result column that compute a value and can neither fail nor pick rows: the column is masked whole
#: when read (decision 0262), so what it computes is not judged again
_VALUE_ONLY: tuple[type[exp.Expression], ...] = (
    exp.Alias, exp.Column, exp.Identifier, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.Case, exp.If,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.Like, exp.ILike, exp.Glob, exp.And, exp.Or,
    exp.Not, exp.DPipe, exp.Concat, exp.Substring, exp.Upper, exp.Lower, exp.Coalesce, exp.Nullif, exp.Trim,
)
#: how deep views over views are followed
VIEW_DEPTH = 3


def _referenced(select: exp.Select) -> set[int]:
    """Positions (0-based) of ``select``'s result columns its GROUP BY, HAVING, ORDER BY or a window name, by
    alias or by number."""
    names = {p.alias_or_name.lower(): i for i, p in enumerate(select.expressions)}
    out: set[int] = set()
    for arg in ("group", "having", "order"):
        clause = select.args.get(arg)
        if clause is None:
            continue
        for node in clause.find_all(exp.Column, exp.Literal):
            if isinstance(node, exp.Column) and not node.table and node.name.lower() in names:
                out.add(names[node.name.lower()])
            elif isinstance(node, exp.Literal) and node.is_int and isinstance(node.parent, (exp.Ordered, exp.Group)):
                out.add(int(node.this) - 1)
    return out


#: the types a literal is cast to by the definitions PostgreSQL's ``pg_get_viewdef`` prints (``'a'::text``): a
#: text cast of a literal cannot fail
_TEXT_TYPES = frozenset({
    exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR, exp.DataType.Type.CHAR, exp.DataType.Type.NVARCHAR,
    exp.DataType.Type.NCHAR, exp.DataType.Type.NAME,
})  # fmt: skip


def _literal_text(node: exp.Expression) -> bool:
    """``'a'::text``, ``CAST('a' AS varchar)``: a literal cast to a text type (a constant, which cannot fail)."""
    to = node.args.get("to")
    return (
        type(node) is exp.Cast
        and isinstance(node.this, exp.Literal)
        and isinstance(to, exp.DataType)
        and to.this in _TEXT_TYPES
    )


def _own_row(node: exp.Expression, tables: dict[str, str]) -> bool:
    """``p.*::customers``: PostgreSQL's ``pg_get_viewdef`` prints a whole row ``p`` of ``customers`` cast to its own
    row type, which cannot fail."""
    to = node.args.get("to")
    this = node.this
    return (
        type(node) is exp.Cast
        and isinstance(this, exp.Column)
        and isinstance(this.this, exp.Star)
        and isinstance(to, exp.DataType)
        and to.this == exp.DataType.Type.USERDEFINED
        and isinstance(to.args.get("kind"), exp.Identifier)
        and tables.get(this.table.lower()) == to.args["kind"].name.lower()
    )


def _value_only(node: exp.Expression, tables: dict[str, str]) -> bool:
    todo = [node]
    while todo:
        n = todo.pop()
        if _literal_text(n) or _own_row(n, tables):
            continue
        if not isinstance(n, _VALUE_ONLY):
            return False
        todo.extend(n.iter_expressions())
    return True


def row_deciding(query: exp.Expression) -> exp.Expression:
    """A copy of a view's ``query`` in which the result columns that only compute a value are ``NULL``: what is
    left decides the view's rows, their number and order (and what may fail)."""
    tree = query.copy()
    for select in list(tree.find_all(exp.Select)):
        if select.args.get("distinct") or isinstance(select.parent, (exp.Union, exp.Intersect, exp.Except)):
            continue  # its rows are told apart by every result column
        keep = _referenced(select)
        tables = {t.alias_or_name.lower(): t.name.lower() for t in select.find_all(exp.Table)}
        for i, projection in enumerate(list(select.expressions)):
            if i in keep or isinstance(projection, exp.Star) or not _value_only(projection, tables):
                continue
            if isinstance(projection.unalias(), exp.Column):
                continue  # passed on as itself
            projection.replace(exp.alias_(exp.Null(), projection.alias_or_name or f"c{i}", quoted=True))
    return tree


#: nodes of a query that reads its tables' rows as they are, one result row each, computing nothing that may fail
_PLAIN: tuple[type[exp.Expression], ...] = (
    exp.Select, exp.From, exp.Table, exp.TableAlias, exp.Identifier, exp.Column, exp.Alias, exp.Null, exp.Literal,
    exp.Star,
)


def decides_nothing(query: exp.Expression) -> bool:
    """Does ``query`` (as :func:`row_deciding` leaves it) only pass its one table's rows on, so that no value can
    decide which come back, how many, in what order or whether it fails?"""
    return len(list(query.find_all(exp.Table))) <= 1 and all(isinstance(n, _PLAIN) for n in query.walk())
