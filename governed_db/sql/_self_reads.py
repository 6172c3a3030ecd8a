"""Writes that read their own table again: self-joins, subqueries, CTEs, MERGE and upserts over the target.

A write whose sources include its own target table can pair every row with itself (``DELETE FROM t USING t t2
WHERE t.id = t2.id``), so its WHERE is no evidence of a bound. Such a write is bounded only by a condition that
compares a target column with constants, a plain subquery over the table that is itself so bounded, or an
uncorrelated scalar subquery. The condition judge of :mod:`governed_db.sql._where` is passed in.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

#: ``bounded`` / ``tautology`` / ``undecidable`` for one condition
Judge = Callable[[exp.Expr], str]


def _target_tables(node: exp.Expr) -> list[exp.Table]:
    """The tables a write changes (MySQL ``DELETE t1, t2 FROM ...`` names aliases; they are resolved)."""
    target = node.this
    if isinstance(target, exp.Schema):
        target = target.this
    if not isinstance(target, exp.Table):
        return []
    named = node.args.get("tables") if isinstance(node, exp.Delete) else None
    if not named:
        return [target]
    sources = [target, *(j.this for j in target.args.get("joins") or () if isinstance(j.this, exp.Table))]
    out = []
    for n in named:
        key = n.name.lower()
        by_alias = [s for s in sources if s.alias.lower() == key]
        out.extend(by_alias or [s for s in sources if not s.alias and s.name.lower() == key])
    return out or [target]


def _among(key: tuple[str, str], keys: set[tuple[str, str]]) -> bool:
    """Is ``key`` one of ``keys``? An unqualified name may be the qualified one (``t`` and ``public.t``)."""
    if key in keys:
        return True
    name, db = key
    return any(n == name and (not db or not d) for n, d in keys)


def _key(t: exp.Table) -> tuple[str, str]:
    return t.name.lower(), t.text("db").lower()


def self_sourced(node: exp.Expr) -> bool:
    """Does the write read one of its own target tables again (join, USING/FROM, subquery, CTE, source)?"""
    targets = _target_tables(node)
    keys = {_key(t) for t in targets}
    if len({name for name, _ in keys}) < len(targets):
        return True  # MySQL DELETE t1, t2 FROM t t1 JOIN t t2: the same table twice
    ids = {id(t) for t in targets}
    if isinstance(node, exp.Delete):
        ids |= {id(t) for t in node.args.get("tables") or ()}  # MySQL DELETE t FROM t: the list names the target
    return any(isinstance(t.this, exp.Identifier) and id(t) not in ids and _among(_key(t), keys)
               for t in node.find_all(exp.Table))  # fmt: skip


def conditions(node: exp.Expr) -> list[exp.Expr]:
    """The WHERE of an UPDATE/DELETE and the ON of its inner joins, split at AND."""
    out: list[exp.Expr] = []
    w = node.args.get("where")
    if w is not None:
        out.append(w.this)
    target = node.this
    for j in (target.args.get("joins") or ()) if isinstance(target, exp.Table) else ():
        on = j.args.get("on")
        if on is not None and not j.args.get("side"):
            out.append(on)
    return [c for cond in out for c in _conjuncts(cond)]


def merge_conditions(node: exp.Merge) -> list[exp.Expr]:
    out = list(_conjuncts(node.args["on"])) if isinstance(node.args.get("on"), exp.Expr) else []
    whens = node.args.get("whens")
    conds = [w.args.get("condition") for w in (whens.expressions if whens is not None else ())]
    # every changing action must be bounded by its own condition unless ON is: the ON conjuncts count for all
    return out + [c for cond in conds if cond is not None for c in _conjuncts(cond)]


def _conjuncts(cond: exp.Expr) -> list[exp.Expr]:
    while isinstance(cond, exp.Paren):
        cond = cond.this
    if isinstance(cond, exp.And):
        return [c for part in cond.flatten() for c in _conjuncts(part)]
    return [cond]


def constant_bound(node: exp.Expr, conds: list[exp.Expr], judge: Judge) -> bool:
    """Some condition compares a column of the target with constants only (``t.id = 5``, ``id IN (1, 2)``),
    or with a plain, bounded subquery over the target table (``id IN (SELECT id FROM t WHERE total > 9)``)."""
    targets = _target_tables(node)
    names = {n for t in targets for n in (t.name.lower(), t.alias.lower()) if n}
    keys = _with_ctes(node, {_key(t) for t in targets})
    for cond in conds:
        if judge(cond) != "bounded" or isinstance(cond, (exp.Not, exp.Or, exp.Xor)):
            continue
        outer_cols = [c for c in cond.find_all(exp.Column) if outer(c, cond)]
        qualifiers = {c.table.lower() for c in outer_cols}
        if len(qualifiers) != 1 or not qualifiers <= names | {""}:
            continue  # t.id = t2.id pairs rows, it does not pick them
        # = (SELECT ...) is one value; = ANY (SELECT ...) is a set, judged like IN
        scalars = {id(q) for side in (cond.this, cond.expression) if isinstance(side, exp.Subquery)
                   for q in (side, side.this)} if isinstance(cond, (exp.EQ, exp.NullSafeEQ)) else set()  # fmt: skip
        if all(not _reads(q, keys) or plain_bounded(q, keys, judge) or (id(q) in scalars and _uncorrelated(q, names))
               for q in _top_selects(cond)):  # fmt: skip
            return True
    return False


def _uncorrelated(q: exp.Expr, outer: set[str]) -> bool:
    """A scalar subquery that does not look at the outer row: one value for every row (``= (SELECT max(id)
    FROM t)``); a correlated one (``= (SELECT t2.id FROM t t2 WHERE t2.id = t.id)``) matches each row itself."""
    own = {(t.alias or t.name).lower() for t in q.find_all(exp.Table)}  # FROM t t2: only t2 names the inner row
    return not any(c.table and c.table.lower() in outer - own for c in q.find_all(exp.Column))


def _with_ctes(node: exp.Expr, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """``keys`` plus the names of the statement's CTEs that read one of them (``WITH c AS (SELECT id FROM t)``)."""
    out = set(keys)
    ctes = [c for c in node.find_all(exp.CTE) if c.alias]
    changed = True
    while changed:
        changed = False
        for cte in ctes:
            key = (cte.alias.lower(), "")
            if key not in out and _reads(cte.this, out):
                out.add(key)
                changed = True
    return out


def _top_selects(cond: exp.Expr) -> list[exp.Query]:
    """The outermost queries inside a condition."""
    out: list[exp.Query] = []
    for q in cond.find_all(exp.Query):
        parent = q.parent
        while parent is not None and parent is not cond and not isinstance(parent, exp.Query):
            parent = parent.parent
        if parent is None or parent is cond:
            out.append(q)
    return out


def _reads(q: exp.Expr, keys: set[tuple[str, str]]) -> bool:
    return any(isinstance(t.this, exp.Identifier) and _among(_key(t), keys) for t in q.find_all(exp.Table))


def plain_bounded(q: exp.Query, keys: set[tuple[str, str]], judge: Judge) -> bool:
    """``SELECT col FROM t WHERE <constant bound on t>``: one source, the table itself, no set operation."""
    while isinstance(q, exp.Subquery):
        q = q.this
    if not isinstance(q, exp.Select) or q.args.get("joins") or q.args.get("with_") or q.args.get("with"):
        return False
    source = q.args.get("from_") or q.args.get("from")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table) or not _among(_key(table), keys):
        return False
    w = q.args.get("where")
    if w is None:
        return False
    names = {table.name.lower(), table.alias.lower()} - {""}
    for cond in _conjuncts(w.this):
        if judge(cond) != "bounded" or isinstance(cond, (exp.Not, exp.Or, exp.Xor)) or cond.find(exp.Query):
            continue
        qualifiers = {c.table.lower() for c in cond.find_all(exp.Column)}
        if len(qualifiers) == 1 and qualifiers <= names | {""}:
            return True  # t2.id = t.id is a correlation with the outer row, not a bound
    return False


def upsert(node: exp.Insert, judge: Judge) -> str | None:
    """INSERT ... SELECT that replaces or updates existing rows from the table itself (``ON CONFLICT DO UPDATE``,
    ``ON DUPLICATE KEY UPDATE``, ``REPLACE``, ``INSERT OR REPLACE``): it changes the rows it reads."""
    conflict = node.args.get("conflict")
    updates = str(node.args.get("alternative") or "").upper() == "REPLACE" or (
        conflict is not None and "UPDATE" in str(conflict.args.get("action") or "").upper()
    )
    source = node.args.get("expression")
    if not updates or not isinstance(source, exp.Query):
        return None
    keys = _with_ctes(node, {_key(t) for t in _target_tables(node)})
    if not _reads(source, keys):
        return None
    return "bounded" if plain_bounded(source, keys, judge) else "undecidable"


def sqlite_quoted_string(cond: exp.Expr) -> bool:
    """``"x" = 'x'``, ``"x" IS NOT NULL``, ``"x" <> 'y'``: an unknown double-quoted name is a string in SQLite."""
    for col in cond.find_all(exp.Column):
        ident = col.this
        if col.table or not isinstance(ident, exp.Identifier) or not ident.quoted:
            continue
        parent = col.parent
        while isinstance(parent, exp.Paren):
            parent = parent.parent
        if isinstance(parent, (exp.EQ, exp.NullSafeEQ, exp.Is)):
            other = parent.expression if parent.this is col else parent.this
            if isinstance(other, exp.Literal) and other.is_string and other.name == ident.name:
                return True
            if isinstance(parent, exp.Is):
                return True
        if isinstance(parent, (exp.NEQ, exp.Like, exp.Glob, exp.Not)):
            return True
    return False


def outer(col: exp.Column, cond: exp.Expr) -> bool:
    """No query boundary between ``col`` and the top of ``cond``."""
    node: exp.Expr | None = col.parent
    while node is not None and node is not cond:
        if isinstance(node, (exp.Select, exp.Subquery, exp.Query)):
            return False
        node = node.parent
    return True
