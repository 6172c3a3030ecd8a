"""Subqueries that stop reading at the first row deciding them, read in an order masked values decide.

``EXISTS``, ``NOT EXISTS``, ``x IN (SELECT ...)``, ``x = ANY (SELECT ...)`` and ``x <> ALL (SELECT ...)`` read their
rows only until one decides the answer, and both engines drop an ORDER BY written inside them; what the rows
evaluated before that one do (warn, fail) then tells the order they came in. The sublinks are found the same way
for every engine (:func:`sublinks`); what may be evaluated per row is judged per engine.

**PostgreSQL** (decision 0342). ``EXISTS (SELECT ...)`` stops at its first row; ``x IN (SELECT ...)``, ``x = ANY
(SELECT ...)`` and ``x <> ALL (SELECT ...)`` (and ``NOT IN``) stop at the first row that decides them where they run
as a plain subplan or a nested-loop semi-join; PostgreSQL drops an ORDER BY inside EXISTS. The rows before that one
are those stored before it, and where rows are stored follows how wide their masked values are (decisions 0272,
0334). An expression that fails on some rows only (``1 / (id - 396)``) then fails the statement or not by that
order: the error is withheld (0334), but *whether* there is one tells the order.

A sublink whose query reads a relation with a column masked for the caller is refused when it evaluates,
row by row, an expression that may fail on some rows and not others: anything but column references,
constants, comparisons, boolean logic, ``IS``, ``BETWEEN``, ``IN`` lists, ``LIKE`` with a constant pattern,
``CASE``, ``COALESCE``/``NULLIF``/``GREATEST``/``LEAST``, ``lower``/``upper``/``length``/``trim``, ``||``,
JSON member reads, a cast to text, ``date_trunc`` — or an expression of constants only (the same on every row).
One table read by a whole key (``c.id = o.customer_id``, a constant, a parameter) reads at most one row each
time: no order, not refused.

**MySQL/MariaDB** (decision 0343). ``EXISTS``, ``NOT EXISTS``, ``x IN (SELECT ...)``, ``x = ANY (SELECT ...)`` and
``x <> ALL (SELECT ...)`` read the subquery's rows only until one decides the answer; MariaDB drops an ORDER BY (and
a LIMIT) written inside them. Over a relation whose read order an index on a masked column may decide (the order
guard's *hazard*), the rows evaluated before that one come in masked order: each leaves its warnings
(``@@warning_count`` counts them) and may fail (whether the statement fails at all). ``EXISTS (SELECT 1 FROM t WHERE
ssn IS NOT NULL AND CASE WHEN id = 1 THEN 1 ELSE CAST(city AS INT) END)`` warned once per SSN sorting before row 1's
— how it ranks among the others and among guesses an agent inserts.

Nothing the order guard can add fixes that order, so such a subquery is refused when what it evaluates per row
could warn or fail: anything but columns, constants, null tests, AND/OR/NOT and comparisons (``=``, ``<``, ``IN``
lists, ``BETWEEN``, ``LIKE``) of a column with a column or constant of the same kind (number with number, text with
text: MariaDB warns when it converts one to the other). ``EXISTS (SELECT 1 FROM people p WHERE p.id = o.person_id
AND p.city = 'Paris')`` keeps running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlglot import exp

from governed_db.masking.order_nodes import pinned_columns

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
    cond = where.this
    pinned = set(pinned_columns(cond, table))  # equal to a constant or parameter
    for part in cond.flatten() if isinstance(cond, exp.And) else (cond,):  # ... or to an outer relation's column
        part = part.unnest()
        if not isinstance(part, exp.EQ):
            continue
        for col, other in ((part.this, part.expression), (part.expression, part.this)):
            if not isinstance(col, exp.Column) or (col.table and col.table.lower() not in names):
                continue
            if isinstance(other, exp.Column) and other.table and other.table.lower() not in names:
                pinned.add(col.name.lower())
    return any(k and k <= pinned for k in keys(table))


def _per_row(node: exp.Expression | None) -> bool:
    """``node`` reads a column (so may differ per row)."""
    return node is not None and (isinstance(node, exp.Column) or node.find(exp.Column) is not None)


def _text(to: object) -> bool:
    return isinstance(to, exp.DataType) and to.this.name in _TEXT_TYPES and not to.expressions


__all__ = ["may_fail", "one_row_by_key", "sublinks"]


# -- MySQL/MariaDB (decision 0343) ------------------------------------------------------------------------------
#: the kinds of declared MySQL/MariaDB types that compare without a conversion (which warns per row when it fails)
_NUMBER = frozenset(
    {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "float", "double",
     "real", "bool", "boolean", "year"}
)  # fmt: skip
_TEXT = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"})
#: nodes a row's evaluation passes through without computing anything that can warn or fail
_QUIET = (
    exp.Column, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.And, exp.Or, exp.Not, exp.Star, exp.Identifier,
    exp.Table, exp.TableAlias, exp.From, exp.Join, exp.Where, exp.Having, exp.Group, exp.Select, exp.Subquery,
    exp.Tuple, exp.Alias, exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Distinct, exp.Exists, exp.Any,
    exp.All, exp.Is, exp.Var,
)  # fmt: skip
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.Like, exp.Between, exp.In)

#: the declared type of a column (``None``: unknown) given the statement's tables by alias
TypeOf = Callable[[exp.Column], "str | None"]


def stopping_subqueries(tree: exp.Expression) -> Iterator[tuple[exp.Expression, exp.Query]]:
    """Each predicate of ``tree`` that stops reading its subquery at a first match, with that subquery (the same
    sublinks PostgreSQL's guard looks at: :func:`sublinks`)."""
    for node, query in sublinks(tree):
        if isinstance(query, exp.Query):
            yield node, query


def quiet(predicate: exp.Expression, query: exp.Query, kind_of: TypeOf) -> bool:
    """Can no row ``predicate`` evaluates of ``query`` warn or fail?"""
    if isinstance(predicate, (exp.In, exp.Any, exp.All)):
        # the value compared with each row the subquery gives: ``0 IN (SELECT city ...)`` converts every city
        compared = predicate if isinstance(predicate, exp.In) else predicate.parent
        left: exp.Expression | None = compared.this if isinstance(compared, (exp.In, exp.Binary)) else None
        lefts = left.expressions if isinstance(left, exp.Tuple) else [left]
        selects = query.selects if isinstance(query, exp.Select) else []
        if len(lefts) != len(selects) or not all(
            a is not None and _same_kind(_kind(a, kind_of), _kind(b.this if isinstance(b, exp.Alias) else b, kind_of))
            for a, b in zip(lefts, selects, strict=True)
        ):
            return False
    return quiet_expression(query, kind_of)


def quiet_expression(root: exp.Expr, kind_of: TypeOf) -> bool:
    """Can nothing ``root`` computes per row warn or fail?"""
    for node in root.walk():
        if isinstance(node, _COMPARISONS):
            if not _quiet_comparison(node, kind_of):
                return False
        elif not isinstance(node, _QUIET):
            return False
        elif isinstance(node, exp.Is) and not isinstance(node.expression, exp.Null):
            return False  # IS TRUE converts the value
    return True


def stopping_joins(tree: exp.Expression) -> Iterator[tuple[exp.Table, list[exp.Expr]]]:
    """Each table joined in ``tree`` that MariaDB may stop reading at a first match, with what it evaluates per
    row of it (the join's ON, the WHERE's and HAVING's conjuncts naming it): a LEFT (or RIGHT) JOIN whose row the
    WHERE may require missing (``... LEFT JOIN t i ON ... WHERE i.id IS NULL``: the "Not exists" plan stops at the
    first match) -- any outer join whose table the WHERE names, however it tests it. A test in the HAVING counts
    too (MariaDB pushes one on grouped columns into the WHERE: ``GROUP BY o.id, i.id HAVING i.id IS NULL``), and
    so does a test in a query around it: a derived table or CTE that hands out a column of the table (``SELECT
    ... FROM (SELECT o.id, i.id AS iid FROM o LEFT JOIN i ...) d WHERE d.iid IS NULL``) is merged into that query,
    its test with it (decision 0358)."""
    for select in tree.find_all(exp.Select):
        joins = select.args.get("joins") or []
        if not joins:
            continue
        # the WHERE's conjuncts, and the HAVING's that aggregate nothing (those MariaDB may push into the WHERE)
        where = _conjuncts(select.args.get("where"))
        having = [p for p in _conjuncts(select.args.get("having")) if p.find(exp.AggFunc) is None]
        tested = {id(p): _tables_named(p, select, having=False) for p in where}
        tested.update({id(p): _tables_named(p, select, having=True) for p in having})
        tests = [*where, *having]
        # the tables they name ("" for an unqualified column: any of them): an IS NULL test, ISNULL(), <=> NULL or
        # COALESCE of such a table's column can make MariaDB stop at the first match
        named = {t for p in tests for t in tested[id(p)]}
        if _feeds_a_testing_query(select):
            # the rows go on to a query that may test what they hand out: the tables whose columns they do
            named |= {c.table.lower() for e in select.expressions for c in e.find_all(exp.Column)}
            if any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
                   for e in select.expressions):  # fmt: skip
                named.add("")
        source = select.args.get("from") or select.args.get("from_")
        first = source.this if isinstance(source, exp.From) else None
        for join in joins:
            side = join.side.upper()
            # the table whose matches are looked up: the joined one of a LEFT JOIN, the first one of a RIGHT JOIN
            table = join.this if side == "LEFT" else first if side == "RIGHT" else None
            if not isinstance(table, exp.Table):
                continue
            alias = table.alias_or_name.lower()
            if alias in named or "" in named:
                on = join.args.get("on")
                parts: list[exp.Expr] = [on] if isinstance(on, exp.Expr) else []
                parts += [p for p in tests if tested[id(p)] & {alias, ""}]
                yield table, parts


def _conjuncts(clause: object) -> list[exp.Expr]:
    """The conjuncts of a WHERE or HAVING (none for anything else)."""
    if not isinstance(clause, (exp.Where, exp.Having)):
        return []
    cond = clause.this
    return list(cond.flatten()) if isinstance(cond, exp.And) else [cond]


def _tables_named(part: exp.Expr, select: exp.Select, *, having: bool) -> set[str]:
    """The tables (aliases, lower case) whose columns ``part`` names, ``""`` for an unqualified column (any of
    them). In a HAVING, an unqualified name of ``select``'s own that is an alias of its select list is that
    expression's columns (``HAVING oid > 1`` over ``o.id AS oid``), unless a GROUP BY column of that name would take
    precedence (MariaDB prefers it) (decision 0380)."""
    aliases = {e.alias.lower(): e.this for e in select.expressions if isinstance(e, exp.Alias)} if having else {}
    group = select.args.get("group")
    grouped = {
        g.name.lower() for g in (group.expressions if isinstance(group, exp.Group) else ())
        if isinstance(g, exp.Column) and not g.table
    }  # fmt: skip
    out: set[str] = set()
    for c in part.find_all(exp.Column):
        name = c.name.lower()
        if not c.table and name in aliases and name not in grouped and c.find_ancestor(exp.Select) is select:
            out |= {x.table.lower() for x in aliases[name].find_all(exp.Column)}
        else:
            out.add(c.table.lower())
    return out


def _feeds_a_testing_query(select: exp.Select) -> bool:
    """``select``'s rows are read by another query of the statement that MariaDB may merge it into, and which may
    test what it hands out: a CTE (any of its readers), or a derived table (a branch of one) of a query with a
    WHERE, an aggregate-free HAVING or a join's ON naming it, or whose own rows go on to such a query. A derived
    table handed out whole to a query that tests nothing of it makes no anti-join (decision 0380)."""
    node: exp.Expr | None = select.parent
    while isinstance(node, (exp.SetOperation, exp.Subquery, exp.Paren)):
        if isinstance(node, exp.Subquery) and isinstance(node.parent, (exp.From, exp.Join)):
            outer = node.parent.parent
            if not isinstance(outer, exp.Select) or _feeds_a_query(outer):
                return True
            joins = outer.args.get("joins") or []
            if any(j.args.get("using") or j.args.get("method") for j in joins):
                return True  # USING, NATURAL: columns compared by name
            own = node.alias_or_name.lower()
            tests: list[exp.Expr] = [*_conjuncts(outer.args.get("where")), *_conjuncts(outer.args.get("having"))]
            tests += [j.args["on"] for j in joins if isinstance(j.args.get("on"), exp.Expr)]
            return any((c.table or "").lower() in (own, "") for t in tests for c in t.find_all(exp.Column))
        node = node.parent
    return isinstance(node, exp.CTE)


def _feeds_a_query(select: exp.Select) -> bool:
    """``select``'s rows are read by another query of the statement (a derived table, a CTE, a branch of either),
    which MariaDB may merge it into."""
    node: exp.Expr | None = select.parent
    while isinstance(node, (exp.SetOperation, exp.Subquery, exp.Paren)):
        if isinstance(node, exp.Subquery) and isinstance(node.parent, (exp.From, exp.Join)):
            return True
        node = node.parent
    return isinstance(node, exp.CTE)


def _quiet_comparison(node: exp.Expression, kind_of: TypeOf) -> bool:
    if isinstance(node, exp.In):
        if node.args.get("query") is not None:
            return True  # a nested subquery: judged as one of its own
        others = node.expressions
    elif isinstance(node, exp.Between):
        others = [node.args.get("low"), node.args.get("high")]
    else:
        others = [node.expression]
    if isinstance(node, exp.Like) and node.args.get("escape") is not None:
        return False
    first = _kind(node.this, kind_of)
    return all(o is not None and _same_kind(first, _kind(o, kind_of)) for o in others)


def _kind(node: exp.Expr, kind_of: TypeOf) -> str | None:
    """``number``, ``text``, ``null`` (compares with anything) or ``None`` (unknown, or computed)."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Null):
        return "null"
    if isinstance(node, exp.Boolean):
        return "number"
    if isinstance(node, exp.Literal):
        return "text" if node.is_string else "number"
    if isinstance(node, exp.Column):
        declared = (kind_of(node) or "").lower().split("(", 1)[0].strip()
        return "number" if declared in _NUMBER else "text" if declared in _TEXT else None
    return None


def _same_kind(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and (a == b or "null" in (a, b))


__all__ = ["quiet", "quiet_expression", "stopping_joins", "stopping_subqueries"]
