"""JSON arrows inside function arguments, put back as the server reads them (decision 0302).

sqlglot reads ``->`` inside any function's arguments as a lambda: ``format('%s', profile->'contact')`` became
``Lambda(this='contact', expressions=[profile])``, whose ``profile`` is a lambda's parameter, not the column — so
no analysis saw the column at all, and the member came back in clear (``coalesce(profile->'ssn', '1')``, a
``WHERE length(profile->'ssn'::text) = 11`` deciding rows; SQLite's ``printf('%s', profile->'$.ssn')``). PostgreSQL,
SQLite and MySQL have no lambdas: every such ``->`` is a JSON extraction. DuckDB reads ``->`` as a lambda only
inside the list functions that take one (and, by default since 2.0, not even there); anywhere else it is a JSON
extraction too.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

#: DuckDB's list functions whose argument may be a real lambda (sqlglot's names for them, and unmapped spellings),
#: and ``COLUMNS(lambda c: ...)``, whose argument must be a constant: a JSON extraction there fails to bind
_LAMBDA_TAKERS: tuple[type[exp.Expression], ...] = (exp.Transform, exp.ArrayFilter, exp.Columns)
_LAMBDA_NAMES = frozenset({
    "list_transform", "array_transform", "apply", "list_apply", "array_apply", "list_filter", "array_filter",
    "filter", "list_reduce", "array_reduce", "reduce",
})


def json_arrows(tree: exp.Expr, d: Dialect, gd: str) -> exp.Expr:
    """``tree`` with each lambda the server reads as a JSON extraction rebuilt as that extraction; one that does
    not read back is made an unknown function of its parameters (as columns) and body, which analysis judges as a
    use of every column it names (fail closed)."""
    for lam in reversed(list(tree.find_all(exp.Lambda))):  # the innermost first
        if gd == "duckdb" and _takes_lambda(lam.parent):
            continue
        params = [p.sql(dialect=d) for p in lam.expressions]
        head = params[0] if len(params) == 1 else f"({', '.join(params)})"
        text = f"SELECT {head} -> {lam.this.sql(dialect=d)}"  # as written (DuckDB prints a lambda ``LAMBDA x : b``)
        try:
            parsed = d.parser().parse(d.tokenize(text), text)[0]
        except SqlglotError:
            parsed = None
        rebuilt = parsed.expressions[0] if isinstance(parsed, exp.Select) and len(parsed.expressions) == 1 else None
        if rebuilt is None or isinstance(rebuilt, exp.Lambda) or rebuilt.find(exp.Lambda) is not None:
            params = [exp.column(p.name) if isinstance(p, exp.Identifier) else p for p in lam.expressions]
            rebuilt = exp.Anonymous(this="json_arrow", expressions=[*params, lam.this])
        if lam is tree:
            return rebuilt
        lam.replace(rebuilt)
    return tree


def _takes_lambda(parent: exp.Expr | None) -> bool:
    if isinstance(parent, _LAMBDA_TAKERS):
        return True
    return isinstance(parent, exp.Anonymous) and str(parent.name).lower() in _LAMBDA_NAMES
