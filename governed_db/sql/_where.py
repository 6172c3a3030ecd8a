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

Whole-table writes by construction are caught where it is cheap (the effect guard measures the rest):

* a write that reads its own table again (a self-join, ``DELETE ... USING t t2``, ``UPDATE ... FROM t``, MySQL
  multi-table forms, ``IN``/``EXISTS`` subqueries over the table, derived tables, CTEs, UNION, a MERGE or an
  upsert/REPLACE sourced from the table) is bounded only by a condition that compares a column of the target
  with constants (``t.id = 5``), or by a plain subquery over the table that is itself so bounded;
* ``id BETWEEN id AND id``, ``id IN (1, id)``, ``id > -1`` / ``id >= 0`` / ``id <> -1``, predicates on ``tableoid``/``xmin``,
  patterns that match every string (``~ ''``, ``SIMILAR TO '%'``, ``RLIKE ''``, ``REGEXP '.*'``, ``GLOB '*'``)
  and SQLite's ``"name" = 'name'`` (an unknown double-quoted name is a string to SQLite) are ``undecidable``.
"""

from __future__ import annotations

import re

from sqlglot import exp

from governed_db.sql._self_reads import (
    conditions,
    constant_bound,
    merge_conditions,
    outer,
    self_sourced,
    sqlite_quoted_string,
    upsert,
)

#: the ``meta`` key the analyser marks PostgreSQL's ``WHERE CURRENT OF <cursor>`` with (its stand-in call)
CURRENT_OF = "gdb_current_of"
_WHERE_RANK = {None: 0, "bounded": 0, "undecidable": 1, "tautology": 2, "missing": 3}


def worst_where(tree: exp.Expr, gd: str) -> str | None:
    worst: str | None = None
    truthy = gd != "postgres"
    for node in tree.find_all(exp.Update, exp.Delete, exp.Merge, exp.Insert):
        if isinstance(node, exp.Insert):
            status: str | None = upsert(node, _judge)
            if status is None:
                continue
        elif isinstance(node, exp.Merge):
            status = _merge(node, truthy)
            if status is None:
                continue
            if status == "bounded" and self_sourced(node) and not constant_bound(node, merge_conditions(node), _judge):
                status = "undecidable"  # MERGE INTO t USING t s ON t.id = s.id: every row matches itself
        elif isinstance(node.parent, exp.When):
            continue  # a MERGE action: judged with its MERGE
        else:
            w = node.args.get("where")
            status = _judge(w.this, truthy) if w is not None else _by_joins(node, gd)
            if w is not None and CURRENT_OF in w.this.meta:
                pass  # CURRENT OF <cursor> (marked by the analyser): one row, the cursor's current one
            elif status == "bounded":
                status = _bounded_still(node, w, gd)
        if worst is None or _WHERE_RANK[status] > _WHERE_RANK[worst]:
            worst = status
    return worst


def _bounded_still(node: exp.Expr, w: exp.Where | None, gd: str) -> str:
    """A write whose WHERE names its rows: ``undecidable`` where they may still be every row."""
    if w is not None and not _names_target(node, w.this):
        return "undecidable"  # WHERE u.flag / EXISTS (SELECT 1 FROM u): the same for every row
    if self_sourced(node) and not constant_bound(node, conditions(node), _judge):
        return "undecidable"  # a self-join or a subquery over the table itself: may pair every row
    if gd == "sqlite" and w is not None and sqlite_quoted_string(w.this):
        return "undecidable"  # WHERE "x" = 'x': SQLite reads an unknown "x" as the string 'x'
    return "bounded"


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
    if CURRENT_OF in cond.meta:
        return "bounded"  # PostgreSQL's CURRENT OF <cursor> (marked by the analyser): the cursor's current row
    inline = _fromless(cond.this) if isinstance(cond, exp.Exists) else None
    if inline is not None:
        # EXISTS (SELECT 1 WHERE t.id = t.id): no FROM, so it is its WHERE evaluated on the outer row
        where = inline.args.get("where")
        return _judge(where.this, truthy) if where is not None else "tautology"
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
    if _system_columns(cond):
        return "undecidable"  # tableoid = 't'::regclass, xmin::text <> '': the same (or unknown) for every row
    if isinstance(cond, (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ)):
        return _compare(cond)
    if isinstance(cond, exp.Between):
        return _between(cond)
    if isinstance(cond, exp.In) and cond.expressions:
        cols = _columns(cond.this)
        if any(cols and _columns(e) & cols for e in cond.expressions):
            return "undecidable"  # id IN (1, id): the row's own value is in the list
        if not cols:
            this = _simplify(cond.this)
            if any(_simplify(e) == this for e in cond.expressions):
                return "tautology"  # 1 IN (1, id): the constant is in its own list
            return "undecidable"  # 2 IN (1, id): one value for the whole row set, not a filter on it
    if isinstance(cond, exp.Escape):
        cond = cond.this
    if isinstance(cond, _PATTERNS) and _matches_all(cond):
        return "undecidable"  # x ~ '', x SIMILAR TO '%', x GLOB '*': every non-NULL x
    col = _not_null_operand(cond)
    if col is not None:
        if isinstance(col, exp.Column) and col.name.lower() in _ALWAYS_SET:
            return "tautology"  # ctid / rowid IS NOT NULL: a system column every row has
        if isinstance(col, exp.Column) and not col.table and col.name.lower() in _target_names(cond):
            return "undecidable"  # t IS NOT NULL: the whole row, true unless every column is NULL
    if isinstance(cond, exp.In) and _same_table_subquery(cond):
        return "tautology"  # id IN (SELECT id FROM <the table itself>)
    if isinstance(cond, exp.Not):
        return "undecidable" if _judge(cond.this, truthy) == "undecidable" else "bounded"
    if truthy and isinstance(cond, (exp.Column, exp.Func)) and not isinstance(cond, (exp.Predicate, exp.Connector)):
        return "undecidable"  # WHERE id / WHERE LENGTH(name): true for most rows
    return "bounded"


#: System columns every row has (PostgreSQL, SQLite, MySQL): ``x IS NOT NULL`` on them filters nothing.
_ALWAYS_SET = frozenset({"ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "rowid", "_rowid_", "oid", "_rowid"})


#: System columns whose value says nothing about which row it is (the table's oid, transaction ids).
_SYSTEM_VALUES = frozenset({"tableoid", "xmin", "xmax", "cmin", "cmax"})
_PATTERNS = (exp.Like, exp.ILike, exp.RegexpLike, exp.RegexpILike, exp.SimilarTo, exp.Glob)
#: Comparisons against a number this far out are true for every realistic key (``id < 2147483647``).
_HUGE = 1_000_000_000


def _system_columns(cond: exp.Expr) -> bool:
    if cond.find(exp.Query) is not None:
        return False
    cols = [c.name.lower() for c in cond.find_all(exp.Column)]
    if any(c in _SYSTEM_VALUES for c in cols):
        return True
    # ctid / rowid locate one row with '=', but ranges over them cover every row
    return isinstance(cond, (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NEQ)) and any(c in _ALWAYS_SET for c in cols)


def _compare(cond: exp.Expr) -> str:
    left, right = _simplify(cond.this), _simplify(cond.expression)
    if left.find(exp.Column) is None and right.find(exp.Column) is None:
        return "tautology"  # id * 0 = 0: nothing per row is left
    if isinstance(cond, (exp.EQ, exp.GTE, exp.LTE, exp.NullSafeEQ)) and left == right:
        return "tautology"  # a = a, id = 0 - -id, id = id + 0
    lcols, rcols = _columns(left), _columns(right)
    if lcols and lcols == rcols:
        return "undecidable"  # id = 1 - -id - 1: both sides move with the same row values
    if _same_names(lcols, rcols):
        return "undecidable"  # id = t.id: the same column, once qualified and once not
    if _open_range(cond, left, right):
        return "undecidable"  # id > -1, id >= 0, id <> -1, id < 2147483647: every key a table usually has
    return "bounded"


def _number(e: exp.Expr) -> float | None:
    neg = False
    while isinstance(e, exp.Neg):
        neg, e = not neg, e.this
    if isinstance(e, exp.Literal):
        try:
            value = float(e.name)  # '-1' too: the server casts it to the column's numeric type
        except ValueError:
            return None
        return -value if neg else value
    return None


_MIRROR: dict[type[exp.Expr], type[exp.Expr]] = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE}


def _open_range(cond: exp.Expr, left: exp.Expr, right: exp.Expr) -> bool:
    """A column compared with a number that keys are never below/above (cheap, conservative)."""
    op: type[exp.Expr] = type(cond)
    if _number(left) is not None and _number(right) is None:
        left, right = right, left
        op = _MIRROR.get(op, op)
    value = _number(right)
    if value is None or not isinstance(left, exp.Column):
        return False
    # id > 0 / qty <> 0 stay bounded: too common as genuine filters (the effect guard measures those)
    if op is exp.GT:
        return value < 0
    if op is exp.GTE:
        return value <= 0
    if op is exp.NEQ:
        return value < 0
    if op in (exp.LT, exp.LTE):
        return value >= _HUGE
    return False


def _between(cond: exp.Between) -> str:
    this = _simplify(cond.this)
    low, high = _simplify(cond.args["low"]), _simplify(cond.args["high"])
    if low == this and high == this:
        return "tautology"  # id BETWEEN id AND id
    cols = _columns(this)
    if cols and (_columns(low) & cols or _columns(high) & cols):
        return "undecidable"  # id BETWEEN id - 1 AND id + 1
    lo, hi = _number(low), _number(high)
    if isinstance(this, exp.Column) and lo is not None and hi is not None and lo <= 0 and hi >= _HUGE:
        return "undecidable"  # id BETWEEN 0 AND 2147483647
    return "bounded"


def _folded_string(e: exp.Expr | None) -> str | None:
    """A string literal, or a concatenation of string literals (``'%' || ''``), as its value; else None."""
    while isinstance(e, exp.Paren):
        e = e.this
    if isinstance(e, exp.Literal) and e.is_string:
        return str(e.name)
    if isinstance(e, exp.DPipe):
        left, right = _folded_string(e.this), _folded_string(e.expression)
        return None if left is None or right is None else left + right
    if isinstance(e, exp.Concat):
        parts = [_folded_string(a) for a in e.expressions]
        return None if any(p is None for p in parts) else "".join(p for p in parts if p is not None)
    return None


def _matches_all(cond: exp.Expr) -> bool:
    """A pattern that matches every non-NULL string, or one that moves with the row itself (``x LIKE x``)."""
    pattern = cond.expression
    folded = _folded_string(pattern)
    if folded is None:
        cols = _columns(cond.this)
        return bool(cols and isinstance(pattern, exp.Expr) and _columns(pattern) & cols)
    text = folded
    if isinstance(cond, (exp.Like, exp.ILike)):
        return text.replace("%", "") == ""
    if isinstance(cond, exp.Glob):
        return text.replace("*", "") == ""
    if isinstance(cond, exp.SimilarTo):
        regex = "".join(".*" if ch == "%" else "." if ch == "_" else ch for ch in text)
    else:
        regex = text
    try:
        # a regular expression searched (or SIMILAR TO matched) that accepts the empty string accepts every
        # string (``''``, ``.*``, ``a*``, ``^``); ``^$``-style ones are over-refused, which is the safe side
        return re.fullmatch(regex, "") is not None or (not isinstance(cond, exp.SimilarTo) and re.search(regex, "") is not None)
    except re.error:
        return True  # a dialect feature Python does not read: cannot judge, so not bounded


def _same_names(a: frozenset[tuple[str, str]], b: frozenset[tuple[str, str]]) -> bool:
    """Both sides read the same column names and one side leaves them unqualified (``id`` vs ``t.id``)."""
    if not a or not b or {n for _, n in a} != {n for _, n in b}:
        return False
    return any(not q for q, _ in a) or any(not q for q, _ in b)


def _columns(e: exp.Expr) -> frozenset[tuple[str, str]]:
    """The row's columns in ``e`` (a subquery's own columns are not the row's)."""
    return frozenset((c.table.lower(), c.name.lower()) for c in e.find_all(exp.Column) if c is e or outer(c, e))


def _is_num(e: exp.Expr, value: str) -> bool:
    return isinstance(e, exp.Literal) and not e.is_string and e.name in (value, f"{value}.0")


def _fromless(e: exp.Expr | None) -> exp.Select | None:
    """``(SELECT <expr> [WHERE ...])`` with no FROM: an expression over the outer row in disguise."""
    while isinstance(e, (exp.Subquery, exp.Paren)):
        e = e.this
    if not isinstance(e, exp.Select) or e.args.get("from_") or e.args.get("from") or e.args.get("joins"):
        return None
    if any(e.args.get(k) for k in ("group", "having", "with_", "with")):
        return None
    return e


def _simplify(e: exp.Expr) -> exp.Expr:
    """Drop arithmetic that does not change a value (``x + 0``, ``x * 1``, ``- -x``); ``x * 0`` is ``0``;
    ``(SELECT id)`` (no FROM, no WHERE) is ``id``."""
    while isinstance(e, exp.Paren):
        e = e.this
    inline = _fromless(e)
    if inline is not None and len(inline.expressions) == 1 and not inline.args.get("where"):
        picked = inline.expressions[0]
        return _simplify(picked.this if isinstance(picked, exp.Alias) else picked)
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
        if (qualifier in names) if qualifier else outer(col, cond):
            return True
    return False


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
