"""Is an UPDATE/DELETE bounded? A conservative, dialect-aware judgement of its WHERE clause.

``bounded`` - filters rows on some column; ``missing`` - no WHERE (LIMIT alone does not say which rows);
``tautology`` - true for every row (``1=1``, ``true``, ``a = a``, or no column referenced at all);
``undecidable`` - may match every row but static analysis cannot be sure (``x IS NULL OR x IS NOT NULL``,
``x LIKE '%'``, a bare ``WHERE id`` where the dialect filters on truthiness). The policy decides what each means.

Comparisons are judged after cheap arithmetic clean-up (``+ 0``, ``* 1``, ``- -x``), because MySQL reads
``id=0--id`` as ``id = 0 - (-id)``: a self-comparison. A comparison whose two sides read the same columns is
``undecidable`` (``id = 1 - -id - 1``); one that reads no column at all after clean-up is a ``tautology``
(``id * 0 = 0``). MERGE counts too: its ``WHEN MATCHED ... THEN DELETE/UPDATE`` actions are bounded by the
``ON`` condition (and the action's own ``AND`` condition), ``WHEN NOT MATCHED BY SOURCE`` ones only by theirs.
"""

from __future__ import annotations

from sqlglot import exp

_WHERE_RANK = {None: 0, "bounded": 0, "undecidable": 1, "tautology": 2, "missing": 3}


def worst_where(tree: exp.Expr, gd: str) -> str | None:
    worst: str | None = None
    truthy = gd != "postgres"
    for node in tree.find_all(exp.Update, exp.Delete, exp.Merge):
        if isinstance(node, exp.Merge):
            status: str | None = _merge(node, truthy)
            if status is None:
                continue
        elif isinstance(node.parent, exp.When):
            continue  # a MERGE action: judged with its MERGE
        else:
            w = node.args.get("where")
            status = _judge(w.this, truthy) if w is not None else _by_joins(node, gd)
            if status == "bounded" and w is not None and not _names_target(node, w.this):
                status = "undecidable"  # WHERE u.flag / EXISTS (SELECT 1 FROM u): the same for every row
        if worst is None or _WHERE_RANK[status] > _WHERE_RANK[worst]:
            worst = status
    return worst


def _merge(node: exp.Merge, truthy: bool) -> str | None:
    """The worst bound of a MERGE's UPDATE/DELETE actions (None when it only inserts)."""
    on = node.args.get("on")
    on_status = _judge(on, truthy) if isinstance(on, exp.Expr) else "missing"
    if on_status == "bounded" and isinstance(on, exp.Expr) and not _names_target(node, on):
        on_status = "undecidable"  # ON s.k = 1: every target row matches a qualifying source row
    whens = node.args.get("whens")
    worst: str | None = None
    for when in whens.expressions if whens is not None else ():
        then = when.args.get("then")
        changes = isinstance(then, (exp.Update, exp.Delete)) or (
            isinstance(then, exp.Var) and then.name.upper() == "DELETE"
        )
        if not changes:
            continue
        cond = when.args.get("condition")
        own = _judge(cond, truthy) if cond is not None else None
        if own == "bounded":
            status = "bounded"
        elif when.args.get("source"):
            status = "undecidable"  # NOT MATCHED BY SOURCE: every target row the source lacks
        else:
            status = on_status if own is None or _WHERE_RANK[on_status] < _WHERE_RANK[own] else own
        if worst is None or _WHERE_RANK[status] > _WHERE_RANK[worst]:
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
    if isinstance(cond, exp.Xor):
        parts = [cond.this, cond.expression]
        if any(p.find(exp.Column) is None or _judge(p, truthy) != "bounded" for p in parts):
            return "undecidable"  # c XOR 1 is NOT c: every row but the few c names
        return "bounded"
    if isinstance(cond, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ)):
        return _compare(cond)
    col = _not_null_operand(cond)
    if col is not None:
        if isinstance(col, exp.Column) and col.name.lower() in _ALWAYS_SET:
            return "tautology"  # ctid / rowid IS NOT NULL: a system column every row has
        if isinstance(col, exp.Column) and not col.table and col.name.lower() in _target_names(cond):
            return "undecidable"  # t IS NOT NULL: the whole row, true unless every column is NULL
    if isinstance(cond, exp.In) and _same_table_subquery(cond):
        return "tautology"  # id IN (SELECT id FROM <the table itself>)
    if isinstance(cond, exp.Like) and isinstance(cond.expression, exp.Literal) and set(cond.expression.name) <= {"%"}:
        return "undecidable"  # x LIKE '%': every non-NULL x
    if isinstance(cond, exp.Not):
        return "undecidable" if _judge(cond.this, truthy) == "undecidable" else "bounded"
    if truthy and isinstance(cond, (exp.Column, exp.Func)) and not isinstance(cond, (exp.Predicate, exp.Connector)):
        return "undecidable"  # WHERE id / WHERE LENGTH(name): true for most rows
    return "bounded"


#: System columns every row has (PostgreSQL, SQLite, MySQL): ``x IS NOT NULL`` on them filters nothing.
_ALWAYS_SET = frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "rowid", "_rowid_", "oid", "_rowid"})


def _compare(cond: exp.Expr) -> str:
    left, right = _simplify(cond.this), _simplify(cond.expression)
    if left.find(exp.Column) is None and right.find(exp.Column) is None:
        return "tautology"  # id * 0 = 0: nothing per row is left
    if isinstance(cond, (exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ)) and left == right:
        return "tautology"  # a = a, id = 0 - -id, id = id + 0
    lcols, rcols = _columns(left), _columns(right)
    if lcols and lcols == rcols:
        return "undecidable"  # id = 1 - -id - 1: both sides move with the same row values
    return "bounded"


def _columns(e: exp.Expr) -> frozenset[tuple[str, str]]:
    return frozenset((c.table.lower(), c.name.lower()) for c in e.find_all(exp.Column))


def _is_num(e: exp.Expr, value: str) -> bool:
    return isinstance(e, exp.Literal) and not e.is_string and e.name in (value, f"{value}.0")


def _simplify(e: exp.Expr) -> exp.Expr:
    """Drop arithmetic that does not change a value (``x + 0``, ``x * 1``, ``- -x``); ``x * 0`` is ``0``."""
    while isinstance(e, exp.Paren):
        e = e.this
    if isinstance(e, exp.Neg):
        inner = _simplify(e.this)
        if isinstance(inner, exp.Neg):
            return _simplify(inner.this)
        return e if inner is e.this else exp.Neg(this=inner)
    if not isinstance(e, (exp.Add, exp.Sub, exp.Mul, exp.Div)):
        return e
    a, b = _simplify(e.this), _simplify(e.expression)
    if isinstance(e, exp.Sub) and isinstance(b, exp.Neg):
        e, b = exp.Add(this=a, expression=b.this), _simplify(b.this)
    if isinstance(e, exp.Add):
        if _is_num(b, "0"):
            return a
        if _is_num(a, "0"):
            return b
    elif isinstance(e, exp.Sub):
        if _is_num(b, "0"):
            return a
    elif isinstance(e, exp.Mul):
        if _is_num(a, "0") or _is_num(b, "0"):
            return exp.Literal.number(0)
        if _is_num(b, "1"):
            return a
        if _is_num(a, "1"):
            return b
    elif _is_num(b, "1"):
        return a
    if a is e.this and b is e.expression:
        return e
    return type(e)(this=a, expression=b)


def _not_null_operand(cond: exp.Expr) -> exp.Expr | None:
    """``x`` of ``x IS NOT NULL`` (PostgreSQL parses it as a negated IS, SQLite as NOT (x IS NULL))."""
    negated = False
    if isinstance(cond, exp.Not):
        negated, cond = True, cond.this
        while isinstance(cond, exp.Paren):
            cond = cond.this
    if isinstance(cond, exp.Is) and isinstance(cond.expression, exp.Null) and negated != bool(cond.args.get("negate")):
        operand = cond.this
        return operand if isinstance(operand, exp.Expr) else None
    return None


def _names_target(node: exp.Expr, cond: exp.Expr) -> bool:
    """Could ``cond`` tell the target's rows apart? It must reference a column of the target table: qualified with
    its name or alias, or unqualified outside any subquery. Multi-table forms (joins, MySQL ``DELETE t FROM``)
    are given the benefit of the doubt."""
    target = node.this
    if not isinstance(target, exp.Table) or target.args.get("joins") or node.args.get("tables"):
        return True
    names = {target.name.lower(), target.alias.lower()} - {""}
    for col in cond.find_all(exp.Column):
        qualifier = col.table.lower()
        if (qualifier in names) if qualifier else _outer(col, cond):
            return True
    return False


def _outer(col: exp.Column, cond: exp.Expr) -> bool:
    """No query boundary between ``col`` and the top of ``cond``."""
    node: exp.Expr | None = col.parent
    while node is not None and node is not cond:
        if isinstance(node, (exp.Select, exp.Subquery, exp.Query)):
            return False
        node = node.parent
    return True


def _target_names(node: exp.Expr) -> set[str]:
    stmt = node.find_ancestor(exp.Update, exp.Delete)
    target = stmt.this if stmt is not None else None
    if not isinstance(target, exp.Table):
        return set()
    return {target.name.lower(), target.alias.lower()} - {""}


def _same_table_subquery(cond: exp.In) -> bool:
    """``col IN (SELECT col FROM t)`` with no filter, where t is the statement's own target table."""
    query = cond.args.get("query")
    sub = query.this if isinstance(query, exp.Subquery) else query
    col = cond.this
    if not isinstance(sub, exp.Select) or not isinstance(col, exp.Column) or len(sub.expressions) != 1:
        return False
    if any(sub.args.get(k) for k in ("where", "having", "limit", "group", "joins", "offset", "qualify")):
        return False
    picked, source = sub.expressions[0], sub.args.get("from_") or sub.args.get("from")
    if not isinstance(picked, exp.Column) or picked.name.lower() != col.name.lower() or source is None:
        return False
    stmt = cond.find_ancestor(exp.Update, exp.Delete)
    target = stmt.this if stmt is not None else None
    return (
        isinstance(source.this, exp.Table)
        and isinstance(target, exp.Table)
        and source.this.name.lower() == target.name.lower()
        and source.this.text("db").lower() == target.text("db").lower()
    )


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
    if type(p) in _COMPLEMENT:
        op = _COMPLEMENT[type(p)] if negate else type(p)  # NOT a = b is a <> b
        return (p.this.sql(), op, p.expression.sql())
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
