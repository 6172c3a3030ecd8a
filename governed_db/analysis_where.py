"""Is an UPDATE/DELETE bounded? A conservative, dialect-aware judgement of its WHERE clause.

``bounded`` - filters rows on some column; ``missing`` - no WHERE (LIMIT alone does not say which rows);
``tautology`` - true for every row (``1=1``, ``true``, ``a = a``, or no column referenced at all);
``undecidable`` - may match every row but static analysis cannot be sure (``x IS NULL OR x IS NOT NULL``,
``x LIKE '%'``, a bare ``WHERE id`` where the dialect filters on truthiness). The policy decides what each means.
"""

from __future__ import annotations

from sqlglot import exp

_WHERE_RANK = {None: 0, "bounded": 0, "undecidable": 1, "tautology": 2, "missing": 3}


def worst_where(tree: exp.Expr, gd: str) -> str | None:
    worst: str | None = None
    for node in tree.find_all(exp.Update, exp.Delete):
        w = node.args.get("where")
        status = _judge(w.this, truthy=gd != "postgres") if w is not None else _by_joins(node, gd)
        if _WHERE_RANK[status] > _WHERE_RANK[worst] or worst is None:
            worst = status
    return worst


def _by_joins(node: exp.Expr, gd: str) -> str:
    """No WHERE: an inner join's ON condition (MySQL ``UPDATE t JOIN u ON ... SET``) still selects the rows."""
    target = node.this
    joins = target.args.get("joins") if isinstance(target, exp.Table) else None
    best = "missing"
    for j in joins or ():
        on = j.args.get("on")
        if on is None or j.args.get("side"):  # a comma/CROSS join or an outer join keeps every target row
            continue
        status = _judge(on, truthy=gd != "postgres")
        if status == "bounded":
            return status
        if _WHERE_RANK[status] < _WHERE_RANK[best]:
            best = status
    return best


def _judge(cond: exp.Expr, truthy: bool = False) -> str:
    """``bounded`` / ``tautology`` / ``undecidable`` for a WHERE condition (conservative).

    ``truthy``: the dialect filters on any value's truthiness (MySQL, SQLite...), so a bare ``WHERE id`` may
    match every row; in PostgreSQL a bare column must be boolean, a genuine filter.
    """
    while isinstance(cond, exp.Paren):
        cond = cond.this
    if cond.find(exp.Column) is None:
        return "tautology"  # WHERE 1=1, WHERE true, WHERE 'a'='a': no column, nothing is filtered per row
    if isinstance(cond, exp.Or):
        parts = list(cond.flatten())
        statuses = [_judge(p, truthy) for p in parts]
        if "tautology" in statuses:
            return "tautology"
        if "undecidable" in statuses or _complementary(parts):
            return "undecidable"
        return "bounded"
    if isinstance(cond, exp.And):
        statuses = [_judge(p, truthy) for p in cond.flatten()]
        if "bounded" in statuses:
            return "bounded"
        return "tautology" if all(s == "tautology" for s in statuses) else "undecidable"
    if isinstance(cond, (exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ)) and cond.this == cond.expression:
        return "tautology"  # a = a
    if isinstance(cond, exp.Like) and isinstance(cond.expression, exp.Literal) and set(cond.expression.name) <= {"%"}:
        return "undecidable"  # x LIKE '%': every non-NULL x
    if isinstance(cond, exp.Not):
        return "undecidable" if _judge(cond.this, truthy) == "undecidable" else "bounded"
    if truthy and isinstance(cond, (exp.Column, exp.Func)) and not isinstance(cond, (exp.Predicate, exp.Connector)):
        return "undecidable"  # WHERE id / WHERE LENGTH(name): true for most rows
    return "bounded"


_COMPLEMENT: dict[type[exp.Expr], type[exp.Expr]] = {exp.EQ: exp.NEQ, exp.NEQ: exp.EQ, exp.GT: exp.LTE, exp.LTE: exp.GT, exp.LT: exp.GTE, exp.GTE: exp.LT}


def _signature(p: exp.Expr) -> tuple[str, type, str] | None:
    while isinstance(p, exp.Paren):
        p = p.this
    negate = False
    if isinstance(p, exp.Not):
        negate, p = True, p.this
        while isinstance(p, exp.Paren):
            p = p.this
    if isinstance(p, exp.Is):
        neg = negate != bool(p.args.get("negate"))
        return (p.this.sql(), exp.Is, "NOT NULL" if neg else "NULL")
    if type(p) in _COMPLEMENT and not negate:
        return (p.this.sql(), type(p), p.expression.sql())
    return None


def _complementary(parts: list[exp.Expr]) -> bool:
    """``x IS NULL OR x IS NOT NULL``, ``x > 5 OR x <= 5``: every row, but only if you trust NULL handling."""
    sigs = {s for s in (_signature(p) for p in parts) if s is not None}
    for col, op, rhs in sigs:
        if op is exp.Is and (col, exp.Is, "NOT NULL" if rhs == "NULL" else "NULL") in sigs:
            return True
        if op in _COMPLEMENT and (col, _COMPLEMENT[op], rhs) in sigs:
            return True
    return False
