"""PostgreSQL: the relations a catalog row-count read names by literal (decision 0431).

``SELECT relname, reltuples FROM pg_class WHERE relname = 'orders'`` returns the counts of the relations named
``orders`` only: where no relation of that name is picked by a masked column (a partial index, an inheritance child,
a materialized view, decision 0399), its count tells nothing of masked values. Only the plainest shape is read: one
SELECT over one catalog relation that has ``relname``, no join, subquery, set operation or CTE, no row-count function
(``pg_stat_get_live_tuples(oid)`` counts any relation), and a WHERE whose top-level AND holds ``relname = '<name>'``
or ``relname IN ('<name>', ...)``. Anything else: ``None`` (the counts of any relation, judged as before).
"""

from __future__ import annotations

from sqlglot import exp

#: the catalog relations whose rows are one relation each, named by ``relname``
NAMED_BY_RELNAME = frozenset(
    {"pg_class", "pg_stat_user_tables", "pg_stat_all_tables", "pg_stat_xact_user_tables", "pg_stat_xact_all_tables"}
)


def named_relations(tree: exp.Expression | None) -> frozenset[str] | None:
    """The lower-case names that bound the rows ``tree`` reads (see the module), or ``None``."""
    if not isinstance(tree, exp.Select) or tree.args.get("with") or tree.args.get("joins"):
        return None
    source = tree.args.get("from_")
    table = source.this if isinstance(source, exp.From) else None
    if not isinstance(table, exp.Table) or table.name.lower() not in NAMED_BY_RELNAME:
        return None
    if table.db and table.db.lower() != "pg_catalog":
        return None
    nested = (exp.Select, exp.Subquery, exp.SetOperation, exp.Anonymous)  # a call by name may count any relation
    if any(isinstance(n, nested) for n in tree.walk() if n is not tree):
        return None
    where = tree.args.get("where")
    if not isinstance(where, exp.Where):
        return None
    names: frozenset[str] | None = None
    for conjunct in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        found = _relname_literals(conjunct) if isinstance(conjunct, exp.Expression) else None
        if found is not None:
            names = found if names is None else names & found
    return names


def _relname_literals(node: exp.Expression) -> frozenset[str] | None:
    """``relname = 'x'`` (either side) or ``relname IN ('x', 'y')``: the lower-case names; else ``None``."""
    if isinstance(node, exp.EQ):
        sides = [node.this, node.expression]
        cols = [s for s in sides if _is_relname(s)]
        lits = [s for s in sides if _plain_text(s)]
        if len(cols) == 1 and len(lits) == 1:
            return frozenset({_as_name(lits[0].name)})
        return None
    if isinstance(node, exp.In) and _is_relname(node.this) and not node.args.get("query"):
        items = node.expressions
        if items and all(_plain_text(i) for i in items):
            return frozenset(_as_name(i.name) for i in items)
    return None


def _plain_text(node: exp.Expression) -> bool:
    """A quoted text as written: no escape string (``E'...'``, ``U&'...'``, a dollar-quoted one) and no backslash
    (an escape where ``standard_conforming_strings`` is off)."""
    return type(node) is exp.Literal and node.is_string and "\\" not in node.name


def _as_name(text: str) -> str:
    """``text`` as PostgreSQL compares it with a ``name``: cut to 63 bytes (NAMEDATALEN - 1), here in lower case."""
    return text.encode()[:63].decode(errors="ignore").lower()


def _is_relname(node: exp.Expression) -> bool:
    return isinstance(node, exp.Column) and node.name.lower() == "relname"


def bare_name(qualified: str) -> str:
    """``public."Foo"`` -> ``foo``: a relation's name without schema or quotes, in lower case (comparing more names
    equal refuses more, never less)."""
    return qualified.rsplit(".", 1)[-1].strip('"').lower()


__all__ = ["NAMED_BY_RELNAME", "bare_name", "named_relations"]
