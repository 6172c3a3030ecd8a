"""What the order guard (:mod:`governed_db.masking.order`) asks of sqlglot nodes: which aggregates concatenate,
pick or number rows, where a query's own nodes end, how a key column is spelled."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from governed_db.sql._where import CURRENT_OF

#: aggregates whose result depends on the order of their rows, and that take an ORDER BY of their own
ORDERED_AGGS: tuple[type[exp.Expression], ...] = tuple(
    c
    for c in (
        exp.GroupConcat, exp.ArrayAgg, exp.JSONArrayAgg, getattr(exp, "JSONObjectAgg", None),
        getattr(exp, "JSONBObjectAgg", None),  # keeps the last value of a key repeated: in the order read (0303)
    )
    if c is not None
)
#: the same, as sqlglot keeps them when it does not model them (by lower-case name)
ORDERED_AGG_NAMES = frozenset(
    {"json_agg", "jsonb_agg", "json_arrayagg", "json_objectagg", "json_object_agg", "jsonb_object_agg",
     "string_agg", "group_concat", "array_agg", "list", "json_group_array", "json_group_object", "listagg",
     "xmlagg"}
)  # fmt: skip
#: aggregates that pick one row's value by its position (no ORDER BY of their own)
PICKING_AGGS: tuple[type[exp.Expression], ...] = (exp.First, exp.Last, exp.AnyValue)
PICKING_NAMES = frozenset({"first", "last", "any_value", "arbitrary"})
#: aggregates whose data arguments (by position) are concatenated: all of them for MySQL's GROUP_CONCAT
PAIRS = frozenset({"json_objectagg", "json_object_agg", "jsonb_object_agg", "json_group_object"})
#: window functions that number or pick rows by position: their frame does not matter
POSITIONAL: tuple[type[exp.Expression], ...] = tuple(
    c
    for c in (exp.RowNumber, exp.Lag, exp.Lead, getattr(exp, "Ntile", None), exp.FirstValue)
    if c is not None
)
FRAMED: tuple[type[exp.Expression], ...] = tuple(
    c for c in (exp.LastValue, getattr(exp, "NthValue", None)) if c is not None
)
#: functions that hand out values row by row in the order the rows are read: a row number, a counter, a sequence,
#: a time-based UUID (MySQL's ``UUID()`` is version 1), the last value given, the time of the call (MySQL's
#: ``SYSDATE(6)``, unlike ``NOW()``, is read anew for each row: ``max(SYSDATE(6)) ... GROUP BY id`` stamps the rows
#: in the order an index on ``ssn`` read them, decision 0293); whatever ORDER BY the statement has, MariaDB computes
#: them before it sorts (``SELECT id, ROWNUM() FROM t`` numbers the rows in index order)
#: PostgreSQL's ``clock_timestamp()``, ``timeofday()`` and time-based UUIDs likewise stamp the rows as they are read,
#: before any ORDER BY it adds sorts them (decision 0303)
READ_ORDER_NAMES = frozenset(
    {"rownum", "uuid_short", "sys_guid", "nextval", "setval", "last_insert_id", "sysdate", "clock_timestamp",
     "timeofday", "uuidv7", "uuid_generate_v1", "uuid_generate_v1mc"}
)  # fmt: skip
QUERIES = (exp.Select, exp.Union, exp.Intersect, exp.Except)
NOT_SCALAR = (exp.In, exp.Exists, exp.Any, exp.All)


def own_nodes(
    node: exp.Expression, skip: set[int] | None = None, include_self: bool = False
) -> Iterator[exp.Expression]:
    """``node``'s descendants in document order, not entering nested queries (which are yielded) or CTEs."""
    if include_self:
        yield node
        if isinstance(node, (*QUERIES, exp.Subquery)):
            return
    stack = [
        c
        for k, v in reversed(list(node.args.items()))
        if k not in ("with", "with_")
        for c in reversed(v if isinstance(v, list) else [v])
        if isinstance(c, exp.Expression)
    ]
    while stack:
        child = stack.pop()
        if skip is not None and id(child) in skip:
            continue
        yield child
        if isinstance(child, (*QUERIES, exp.Subquery)):
            continue
        stack.extend(
            c for k, v in reversed(list(child.args.items())) for c in reversed(v if isinstance(v, list) else [v])
            if isinstance(c, exp.Expression)
        )  # fmt: skip


def with_ties(node: exp.Expression) -> bool:
    """``FETCH FIRST n ROWS WITH TIES``: the rows kept depend on the ORDER BY's items themselves."""
    for k in ("fetch", "limit"):
        cut = node.args.get(k)
        if not isinstance(cut, exp.Expression):
            continue
        options = cut.args.get("limit_options")
        if cut.args.get("with_ties") or (isinstance(options, exp.Expression) and options.args.get("with_ties")):
            return True
    return False


def limited(node: exp.Expression) -> bool:
    return any(node.args.get(k) is not None for k in ("limit", "offset", "fetch"))


def either(a: bool | None, b: bool | None) -> bool | None:
    if a or b:
        return True
    return None if a is None or b is None else False


def any_of(flags: Iterator[bool | None]) -> bool | None:
    found: bool | None = False
    for f in flags:
        if f:
            return True
        if f is None:
            found = None
    return found


def qualifier(table: exp.Table) -> exp.Identifier | None:
    alias = table.args.get("alias")
    if isinstance(alias, exp.TableAlias) and isinstance(alias.this, exp.Identifier):
        return alias.this
    return table.this if isinstance(table.this, exp.Identifier) else None


def alias_ident(node: exp.Expression) -> exp.Identifier | None:
    alias = node.args.get("alias")
    if isinstance(alias, exp.TableAlias) and isinstance(alias.this, exp.Identifier):
        return alias.this
    return None


def alias(node: exp.Expression) -> str:
    ident = alias_ident(node)
    return ident.name.lower() if ident is not None else ""


def alias_columns(node: exp.Expression) -> list[str]:
    alias = node.args.get("alias")
    if isinstance(alias, exp.TableAlias):
        return [c.name for c in alias.columns]
    return []


def column_sql(name: str, dialect: str) -> str:
    if name.lower() in ("rowid", "ctid", "tableoid"):
        return name.lower()  # row locators, never quoted (a quoted "rowid" could name a real column)
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def norm(sql: str) -> str:
    return sql.replace('"', "").replace("`", "").lower()


def position_of(node: exp.Select, item: exp.Expression) -> int | None:
    """Which output column (0-based) ``item`` of GROUP BY names: by position, expression or output alias."""
    if isinstance(item, exp.Literal) and item.is_int:
        return int(item.name) - 1
    for i, proj in enumerate(node.expressions):
        body = proj.this if isinstance(proj, exp.Alias) else proj
        if body == item:
            return i
        if (
            isinstance(item, exp.Column)
            and not item.table
            and isinstance(proj, exp.Alias)
            and proj.alias.lower() == item.name.lower()
        ):
            return i
    return None


def aggregate_at_top(proj: exp.Expression) -> bool:
    return any(
        aggregate(n) and not isinstance(n.parent, exp.Window) for n in own_nodes(proj, include_self=True)
    )


#: aggregates sqlglot keeps as plain function calls (by lower-case name)
AGGREGATE_NAMES = ORDERED_AGG_NAMES | PICKING_NAMES | frozenset(
    {"bool_and", "bool_or", "every", "bit_and", "bit_or", "bit_xor", "mode", "median", "count_if", "arg_max",
     "arg_min", "max_by", "min_by", "histogram", "corr", "covar_pop", "covar_samp", "regr_slope", "regr_intercept",
     "regr_count", "regr_r2", "regr_avgx", "regr_avgy", "regr_sxx", "regr_syy", "regr_sxy", "approx_count_distinct",
     "product", "fsum", "sumkahan", "kahan_sum", "entropy", "kurtosis", "skewness", "total", "std", "stddev",
     "variance", "var_pop", "var_samp", "bit_count", "json_group_array", "json_group_object"}
)  # fmt: skip


def aggregate(node: exp.Expression) -> bool:
    if isinstance(node, (exp.AggFunc, exp.WithinGroup)):
        return True
    return isinstance(node, exp.Anonymous) and str(node.name).lower() in AGGREGATE_NAMES


def is_grouped(col: exp.Column, part: exp.Expression, groups: list[exp.Expression]) -> bool:
    """``col`` is (inside) an expression the query groups by."""
    node: exp.Expr | None = col
    while node is not None:
        for g in groups:
            if node == g:
                return True
            if (
                node is col
                and isinstance(g, exp.Column)
                and not g.table
                and not col.table
                and g.name == col.name
            ):
                return True
        if node is part:
            break
        node = node.parent
    return False


def concatenates(node: exp.Expression) -> bool:
    if isinstance(node, ORDERED_AGGS):
        return True
    return isinstance(node, exp.Anonymous) and str(node.name).lower() in ORDERED_AGG_NAMES


#: aggregates that add their values up: floating-point rounding and integer overflow follow the order of rows
SUMMING_NAMES = frozenset({"total", "fsum", "kahan_sum", "sumkahan"})


def sums(node: exp.Expression) -> bool:
    """``sum()``, ``avg()``, ``total()``: a result that may depend on the order its rows are added in."""
    return isinstance(node, (exp.Sum, exp.Avg)) or (
        isinstance(node, exp.Anonymous) and str(node.name).lower() in SUMMING_NAMES
    )


def picks(node: exp.Expression) -> bool:
    if isinstance(node, PICKING_AGGS):
        return True
    return isinstance(node, exp.Anonymous) and str(node.name).lower() in PICKING_NAMES


def name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name)
    return node.sql_name().lower() if isinstance(node, exp.Func) else node.key


def unwrap(arg: exp.Expression | None) -> exp.Expression | None:
    while isinstance(arg, (exp.Order, exp.Limit)):
        arg = arg.this
    return arg


def has_distinct(agg: exp.Expression) -> bool:
    return isinstance(unwrap(agg.this), exp.Distinct) or any(
        isinstance(unwrap(e), exp.Distinct) for e in agg.expressions
    )


def data_args(agg: exp.Expression, dialect: str) -> list[exp.Expression]:
    """The arguments whose values an aggregate concatenates (not its separator or ORDER BY)."""
    if isinstance(agg, exp.Anonymous):
        args = [unwrap(e) for e in agg.expressions]
        count = 2 if str(agg.name).lower() in PAIRS else 1
        return [a for a in args[:count] if isinstance(a, exp.Expression)]
    if getattr(exp, "JSONObjectAgg", None) is not None and isinstance(agg, exp.JSONObjectAgg):
        out: list[exp.Expression] = []
        for e in agg.expressions:
            if isinstance(e, exp.JSONKeyValue):
                out.extend(x for x in (e.this, e.expression) if isinstance(x, exp.Expression))
            else:
                out.append(e)
        return out
    if getattr(exp, "JSONBObjectAgg", None) is not None and isinstance(agg, exp.JSONBObjectAgg):
        pair = (unwrap(agg.this), unwrap(agg.args.get("expression")))
        return [a for a in pair if isinstance(a, exp.Expression)]
    first = unwrap(agg.this)
    if isinstance(first, exp.Distinct):
        return list(first.expressions)
    if isinstance(agg, exp.GroupConcat) and dialect == "mysql" and isinstance(first, exp.Concat):
        return list(first.expressions)  # GROUP_CONCAT(a, b): every argument is concatenated
    return [first] if isinstance(first, exp.Expression) else []


def agg_order(agg: exp.Expression) -> exp.Expression | None:
    for part in (agg.this, *agg.expressions, agg.args.get("expression")):
        while isinstance(part, exp.Limit):
            part = part.this
        if isinstance(part, exp.Order):
            return part
    return None


def grouping_sets(group: exp.Group) -> bool:
    """``GROUP BY ROLLUP (...)``, ``CUBE``, ``GROUPING SETS`` (sqlglot keeps them among the items, or in args of
    their own) or DuckDB's ``GROUP BY ALL``: not a plain list of items to order the groups by."""
    if any(group.args.get(k) for k in ("rollup", "cube", "grouping_sets", "all")):
        return True
    kinds = tuple(getattr(exp, n) for n in ("Rollup", "Cube", "GroupingSets") if hasattr(exp, n))
    return any(isinstance(e, kinds) for e in group.expressions)


class _EveryColumn(frozenset[str]):
    """The columns a ``WHERE CURRENT OF <cursor>`` pins: all of them (it is the cursor's current row), so that
    every key ``k`` is ``k <= pinned`` (Python asks the right operand first, a subclass of the left one's type)."""

    def __ge__(self, other: object) -> bool:
        return True


_EVERY_COLUMN = _EveryColumn()


def pinned_columns(where: exp.Expression | None, target: exp.Table) -> frozenset[str]:
    """Lower-case columns of ``target`` that ``where`` sets equal to one constant or parameter (``id = 1 AND ...``):
    rows that hold a whole key of them are at most one. PostgreSQL's ``CURRENT OF <cursor>`` (as the analyser
    marked it) pins every column: one row, the cursor's, which the cursor's own (judged) order chose."""
    if where is None:
        return frozenset()
    if CURRENT_OF in where.meta:
        return _EVERY_COLUMN
    names = {target.name.lower(), target.alias_or_name.lower()}
    constants = (exp.Literal, exp.Placeholder, exp.Parameter)
    out = set()
    for part in where.flatten() if isinstance(where, exp.And) else (where,):
        part = part.unnest()
        if not isinstance(part, exp.EQ):
            continue
        for col, other in ((part.this, part.expression), (part.expression, part.this)):
            if isinstance(col, exp.Column) and isinstance(other, constants) and (
                not col.table or col.table.lower() in names
            ):
                out.add(col.name.lower())
    return frozenset(out)


def bare_columns(part: exp.Expression) -> Iterator[exp.Column]:
    """Columns of ``part`` outside any aggregate (and its FILTER), window or nested query."""
    stack = [part]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Column):
            if not isinstance(node.this, exp.Star):
                yield node
            continue
        if isinstance(node, (exp.Window, exp.Filter, *QUERIES, exp.Subquery)) or aggregate(node):
            continue
        stack.extend(node.iter_expressions())


__all__ = [
    "AGGREGATE_NAMES",
    "FRAMED",
    "NOT_SCALAR",
    "ORDERED_AGGS",
    "ORDERED_AGG_NAMES",
    "PAIRS",
    "PICKING_AGGS",
    "PICKING_NAMES",
    "POSITIONAL",
    "QUERIES",
    "agg_order",
    "aggregate",
    "aggregate_at_top",
    "alias",
    "alias_columns",
    "alias_ident",
    "any_of",
    "bare_columns",
    "column_sql",
    "concatenates",
    "data_args",
    "either",
    "grouping_sets",
    "has_distinct",
    "is_grouped",
    "limited",
    "name",
    "norm",
    "own_nodes",
    "picks",
    "pinned_columns",
    "position_of",
    "qualifier",
    "unwrap",
]


def read_order_value(node: exp.Expression, dialect: str) -> bool:
    """True when ``node`` computes a value per row from the rows read before it (:data:`READ_ORDER_NAMES`; a
    user variable assigned in the row (``@n := @n + 1``); a random number of a known sequence: MySQL's
    ``RAND(seed)``, PostgreSQL's ``random()`` after ``setseed()``; MySQL's time-based ``UUID()``)."""
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower() in READ_ORDER_NAMES
    if isinstance(node, exp.PropertyEQ):
        return isinstance(node.this, (exp.Parameter, getattr(exp, "SessionParameter", exp.Parameter)))
    if isinstance(node, exp.Rand):
        return dialect == "postgres" or node.args.get("this") is not None
    if isinstance(node, getattr(exp, "Uuid", ())):
        return dialect == "mysql"
    return False
