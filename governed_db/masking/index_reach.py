"""Can SQLite walk an index on a masked column to read a SELECT's rows? (decision 0337)

SQLite reads a table through an index only to use its columns (a constraint, an ORDER BY, a GROUP BY, ``min()``)
or to cover the query: every column it needs of the table is in the index (the key and rowid are in every one).
A SELECT that names no column of any index holding a masked column, and needs of each such table a column those
indexes do not hold, reads it in rowid order or through an index of clear columns: the caller's functions are
called in an order no masked value decides (decision 0348's refusal does not reach it). Anything not understood
counts as reachable.
"""

from __future__ import annotations

from collections import Counter

from sqlglot import exp

from governed_db.identity import Identity
from governed_db.masking.catalog import table_key
from governed_db.masking.engine import MaskingState
from governed_db.masking.plan import Access
from governed_db.masking.schema import OrderFacts
from governed_db.sql.analysis import Analysis

#: names SQLite gives the rowid of a table that declares no column of that name
_ROWID = frozenset({"rowid", "oid", "_rowid_"})


def masked_index_reachable(state: MaskingState, analysis: Analysis, identity: Identity) -> bool:
    """Whether the (SQLite) statement may read a table through an index holding a column masked for
    ``identity``. Only a lone SELECT is judged; any other statement, any ``*``, a view or a table of unknown
    indexes counts as reachable."""
    trees = [s.expression for s in analysis.statements]
    if len(trees) != 1 or not isinstance(trees[0], exp.Select):
        return True
    tree = trees[0]
    if any(not isinstance(s.parent, exp.Count) for s in tree.find_all(exp.Star)):  # ``count(*)`` reads no column
        return True
    tables = list(tree.find_all(exp.Table))
    columns = list(tree.find_all(exp.Column))
    named = {c.name.lower() for c in columns}
    # a qualifier or an output name that may mean something other than a table read here is attributed to none
    aliases = Counter(t.alias_or_name.lower() for t in tables)
    aliases.update(a.alias.lower() for a in tree.find_all(exp.TableAlias) if a.alias and a.parent is not None
                   and not isinstance(a.parent, exp.Table))  # fmt: skip
    outputs = {a.alias.lower() for a in tree.find_all(exp.Alias)}
    alone = len(tables) == 1 and next(tree.find_all(exp.Subquery, exp.With), None) is None
    access = Access(state, identity)
    for node in tables:
        key = table_key(".".join(p.name for p in node.parts))
        masked = {c.lower() for c in (state.table(key, node).columns or ()) if access.masks(key, c)}
        if not masked:
            continue
        facts = state.order_of(key, node)
        if not isinstance(facts, OrderFacts) or facts.kind != "table":
            return True
        risky = [ix for ix in facts.indexes if not ix or ix & masked]
        if not risky:
            continue
        if any(not ix or ix & named for ix in risky):
            return True  # it names a column such an index holds: SQLite may walk it
        held = frozenset().union(*risky) | _ROWID | {c.lower() for k in facts.keys for c in k}
        own = node.alias_or_name.lower()
        stored = {c.lower() for c in (state.table(key, node).columns or ())}
        needed = {
            c.name.lower() for c in columns
            if (c.table.lower() == own and aliases[own] == 1)
            or (not c.table and alone and c.name.lower() not in outputs)
        } & stored  # fmt: skip
        if not needed - held:
            return True  # those indexes may cover what it reads of the table
    return False


__all__ = ["masked_index_reachable"]
