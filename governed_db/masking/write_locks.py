"""The order a PostgreSQL write locks its rows in: key order first, or refused (decisions 0351, 0354).

A write locks each row it changes as it reaches it, in the order its plan reads them: the order the written table
is stored in (where an earlier UPDATE put a row's new version, which how wide the masked values stored before it
are decides), or, for a write reached through a join or a subquery (``UPDATE i ... WHERE id IN (SELECT id FROM
t ...)``, ``UPDATE ... FROM``, ``DELETE ... USING``, ``MERGE``), the order in which another relation is read. A
session of the caller's holding one of the rows sees whether the write locked another before it waited there
(``FOR UPDATE NOWAIT``, ``SKIP LOCKED``, a deadlock): a bit of the order, so of the masked values.

Where a relation that decides that order has a column masked for the identity, the rows are locked in key order
first by a subquery: the write's condition moves into it (splice edit ``lock-order``), or, for ``UPDATE ...
FROM``/``DELETE ... USING``, the subquery repeats the list and the condition, which the write keeps (``lock-
joined``). Where that cannot be written with certainty (a MERGE, a write inside another statement, a positional
parameter or an unknown function the subquery would repeat), the write is refused with what to write instead. A
write that names one row by a whole key locks one row: it runs as it is. A write without WHERE (which runs only
once approved, rule ``unbounded-write``) of a table with masked columns locks every row of it in the order it is
stored in: it gets a locking subquery without a condition (``WHERE "id" IN (SELECT "id" FROM t ORDER BY "id" FOR
NO KEY UPDATE)``, decision 0378); one of a table without them reads no masked value first and runs as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from governed_db.masking import order_nodes as nodes

if TYPE_CHECKING:
    from governed_db.masking.order import Relation

#: PostgreSQL's row locators: no key, whatever an index says
_LOCATORS = frozenset({"ctid", "tableoid"})
#: calls a repeated condition may not repeat: a function sqlglot does not know (it may have effects, or be
#: volatile), a random number or UUID (the repeated condition would keep other rows); a TABLESAMPLE without
#: REPEATABLE is drawn anew each time it is read, so it may not be repeated either
_UNREPEATABLE: tuple[type[exp.Expression], ...] = (exp.Anonymous, exp.Rand, getattr(exp, "Uuid", exp.Anonymous))
#: what a write reads its rows through (its SET and RETURNING decide nothing of the order)
_READ_ARGS = ("where", "from", "from_", "using", "joins", "on")


@dataclass(frozen=True)
class Locking:
    """What a write needs: ``items`` (its key, as SQL) to lock its rows by, or a ``refusal`` (reason, remedy)."""

    items: tuple[str, ...] = ()
    refusal: tuple[str, str] | None = None
    #: a write with FROM/USING: the name its target goes by (``FOR ... UPDATE OF`` it), its key items qualified
    joined: str | None = None


def plan(
    tree: exp.Expression,
    dialect: str,
    relation: Callable[[exp.Table], Relation | None],
    keyed: Callable[[exp.Table], Relation | None],
) -> Locking | None:
    """How ``tree`` (an UPDATE, DELETE or MERGE at the top of a statement) must lock its rows; ``None``: as it is.
    ``relation`` answers for a relation as the order guard sees it, ``keyed`` for the written table with its keys
    even where nothing of it is masked."""
    if dialect != "postgres" or not isinstance(tree, (exp.Update, exp.Delete, exp.Merge)):
        return None
    target = tree.this
    if not isinstance(target, exp.Table):
        return None
    if isinstance(tree, exp.Merge) and not _merge_locks(tree):
        return None  # only WHEN NOT MATCHED ... INSERT: no row of the target is locked
    own = relation(target)
    if own is None or own.columns is None:
        return None  # unknown columns: as before
    deciding = _deciding(tree, target, own, relation)
    if not deciding:
        return None
    sources = any(tree.args.get(k) for k in ("from", "from_", "using", "joins"))
    if not (own.hazard or sources or isinstance(tree, exp.Merge) or isinstance(tree.args.get("where"), exp.Where)):
        return None  # every row of a table without masked columns, in the order it stores them (0378)
    rel = own if own.hazard else keyed(target)
    if rel is None or rel.columns is None:
        return None
    cond = tree.args.get("on") if isinstance(tree, exp.Merge) else tree.args.get("where")
    cond = cond.this if isinstance(cond, exp.Where) else cond
    pinned = nodes.pinned_columns(cond, target)
    if isinstance(tree, exp.Merge):
        pinned |= _matched_to_one_row(tree, target)
    if any(k and k <= pinned for k in rel.keys):
        return None  # one row at most: nothing is locked before another
    if not target.args.get("db") and target.name.lower() in _cte_names(tree):
        # the locking subquery's FROM would read the write's WITH query of that name, not its table (0352)
        return Locking(refusal=(
            f"a WITH query named {target.name} hides the table {target.name} this write changes from the "
            "subquery that locks its rows in key order (where masked values are stored decides the order it "
            "would lock them in otherwise)",
            f"rename the WITH query, or name the table with its schema (UPDATE schema.{target.name} ...)",
        ))  # fmt: skip
    # a column whose lower-case name two columns share ("ID" and "id") is not told apart: no key of it (0352)
    names = [c.lower() for c in rel.columns]
    stored = {c.lower(): c for c in rel.columns if names.count(c.lower()) == 1}
    keys = sorted(
        (sorted(k) for k in rel.keys if k and not k & _LOCATORS and all(c in stored for c in k)),
        key=lambda k: (len(k), k),
    )
    if not keys:
        # no key to lock by (an inheritance parent's holds for its own rows only; a table without one): as before
        # (decisions 0351, 0354 Open)
        return None
    verb = tree.key.upper()
    masked = ", ".join(deciding)
    why = (
        f"{verb} {target.sql(dialect='postgres')} locks the rows it changes in the order it reaches them, which "
        f"how wide the masked values stored in {masked} are decides (another session sees which row it locked "
        "first)"
    )
    joined = sources
    if isinstance(tree, exp.Merge):
        return Locking(refusal=(
            why + "; governed_db cannot make a MERGE lock its rows in key order",
            f"write it as an UPDATE (or DELETE) of {target.name} WHERE <key> IN (SELECT ...) and an INSERT ... "
            "WHERE NOT EXISTS (...), which governed_db locks in key order, or change one row at a time by its key, "
            "or ask for an unmask grant (masking.unmask)",
        ))  # fmt: skip
    clause = "FROM" if isinstance(tree, exp.Update) else "USING"
    remedy = ""
    if joined:
        remedy = (
            f"name the other tables in subqueries instead of {clause} (SET c = (SELECT ...), WHERE EXISTS (SELECT "
            "...)), or change one row at a time by its key (WHERE id = ...), or ask for an unmask grant "
            "(masking.unmask)"
        )
        if not isinstance(tree.args.get("where"), exp.Where):
            return Locking(refusal=(why + f"; a {verb} ... {clause} without WHERE cannot be locked in key order",
                                    remedy))  # fmt: skip
        called = next((f for arg in ("where", "from", "from_", "using", "joins")
                       for part in _parts(tree.args.get(arg)) for f in part.find_all(*_UNREPEATABLE, exp.TableSample)
                       if not (isinstance(f, exp.TableSample) and f.args.get("seed"))), None)  # fmt: skip
        if called is not None:
            # its rows are locked first by a subquery that repeats the condition and the FROM list: a function
            # governed_db does not know would run twice
            twice = (
                f"the sample {called.sql(dialect='postgres')} would be drawn twice (two samples: the write would "
                "change the rows both drew)"
                if isinstance(called, exp.TableSample)
                else f"{called.sql(dialect='postgres')} would run twice"
            )
            return Locking(refusal=(
                why + f"; governed_db would lock them in key order with a subquery that repeats the {clause} list "
                f"and the condition, and {twice}",
                remedy + (", or give the sample a seed (TABLESAMPLE ... REPEATABLE (n))"
                          if isinstance(called, exp.TableSample) else ""),
            ))  # fmt: skip
    items = tuple(nodes.column_sql(stored[c], dialect) for c in keys[0])
    if not joined:
        return Locking(items=items)
    # beside the other relations, the key is named by the target's alias (or name); its rows alone are locked
    named = target.args.get("alias")
    ident = named.this if isinstance(named, exp.TableAlias) and named.this else target.this
    owner = ident.sql(dialect=dialect)
    return Locking(items=tuple(f"{owner}.{c}" for c in items), joined=owner)


def nested(tree: exp.Expression, relation: Callable[[exp.Table], Relation | None]) -> tuple[str, str] | None:
    """PostgreSQL: a write inside another statement (``WITH u AS (UPDATE t ... RETURNING id) SELECT ...``) whose
    rows masked values may order: its text cannot be edited with certainty, so it is refused (decision 0354)."""
    for node in tree.walk():
        if node is tree or not isinstance(node, (exp.Update, exp.Delete, exp.Merge)):
            continue
        if isinstance(node.parent, exp.When):
            continue  # a MERGE's action: judged with its MERGE
        if isinstance(node, (exp.Update, exp.Delete)) and isinstance(node.parent, exp.CTE) and isinstance(
            tree, exp.Query
        ):
            continue  # a data-modifying WITH query of a query: the planner orders it as the write it is (0363)
        target = node.this
        if not isinstance(target, exp.Table):
            continue
        own = relation(target)
        if own is None or own.columns is None:
            continue
        deciding = _deciding(node, target, own, relation)
        cond = node.args.get("on") if isinstance(node, exp.Merge) else node.args.get("where")
        cond = cond.this if isinstance(cond, exp.Where) else cond
        if not deciding or any(k and k <= nodes.pinned_columns(cond, target) for k in own.keys):
            continue
        return (
            f"the {node.key.upper()} of {target.sql(dialect='postgres')} inside this statement locks its rows in "
            f"the order it reaches them, which how wide the masked values stored in {', '.join(deciding)} are "
            "decides (another session sees which row it locked first)",
            "run the write as a statement of its own (governed_db locks its rows in key order there), or change "
            "one row at a time by its key, or ask for an unmask grant (masking.unmask)",
        )
    return None


def unwritten(write: exp.Expression, columns: tuple[str, ...], why: str) -> tuple[str, str]:
    """The refusal of a write with FROM/USING whose locking subquery could not be written with certainty."""
    clause = "FROM" if isinstance(write, exp.Update) else "USING"
    target = write.this.sql(dialect="postgres") if isinstance(write.this, exp.Table) else "its table"
    return (
        f"{write.key.upper()} {target} locks the rows it changes in the order it reaches them, which how wide the "
        f"masked values stored in {', '.join(columns) or 'its relations'} are decides (another session sees which "
        f"row it locked first); governed_db locks them in key order with a subquery that repeats the {clause} list "
        f"and the condition, and could not write it with certainty ({why})",
        "send the parameters by name (%(name)s) rather than by position, or name the other tables in subqueries "
        f"instead of {clause}, or change one row at a time by its key, or ask for an unmask grant (masking.unmask)",
    )


def _parts(value: object) -> list[exp.Expression]:
    return [p for p in (value if isinstance(value, list) else [value]) if isinstance(p, exp.Expression)]


def _matched_to_one_row(tree: exp.Merge, target: exp.Table) -> frozenset[str]:
    """Lower-case columns of the target a MERGE's ON sets equal to a column of a source of one row (``USING (VALUES
    (5, 'x')) v(k, c) ON t.id = v.k``, ``USING (SELECT 5 AS k) v``): as pinned as a constant."""
    source = tree.args.get("using")
    inner = source.this if isinstance(source, exp.Subquery) else source
    one = (isinstance(inner, exp.Values) and len(inner.expressions) == 1) or (
        isinstance(inner, exp.Select) and not (inner.args.get("from") or inner.args.get("from_"))
        and not any(inner.args.get(k) for k in ("where", "group", "having", "joins"))
        and not any(isinstance(n, (exp.AggFunc, exp.Window, exp.Explode, exp.Unnest)) for n in inner.walk())
    )  # fmt: skip
    on = tree.args.get("on")
    if not one or not isinstance(source, exp.Expression) or not isinstance(on, exp.Expression):
        return frozenset()
    mine = {target.name.lower(), target.alias_or_name.lower()}
    theirs = source.alias_or_name.lower()
    out = set()
    for part in on.flatten() if isinstance(on, exp.And) else (on,):
        part = part.unnest()
        if not isinstance(part, exp.EQ):
            continue
        for col, other in ((part.this, part.expression), (part.expression, part.this)):
            if (isinstance(col, exp.Column) and col.table.lower() in mine and isinstance(other, exp.Column)
                    and other.table.lower() == theirs and theirs):  # fmt: skip
                out.add(col.name.lower())
    return frozenset(out)


def _merge_locks(tree: exp.Merge) -> bool:
    """A MERGE locks rows of its target where a WHEN MATCHED (or NOT MATCHED BY SOURCE) clause acts on them."""
    whens = tree.args.get("whens")
    found = whens.expressions if isinstance(whens, exp.Whens) else tree.expressions
    return any(isinstance(w, exp.When) and (w.args.get("matched") or w.args.get("source")) for w in found)


def _deciding(
    tree: exp.Expression, target: exp.Table, own: Relation,
    relation: Callable[[exp.Table], Relation | None],
) -> list[str]:  # fmt: skip
    """``table.column`` of the masked columns whose widths may decide the order ``tree`` reaches its target's rows
    in: the target's own, and those of every relation its condition, FROM/USING list or MERGE source reads."""
    found: dict[str, None] = {}

    def add(table: exp.Table, rel: Relation) -> None:
        for c in sorted(rel.masked | rel.redacted):
            found[f"{table.name}.{c}"] = None

    if own.hazard:
        add(target, own)
    ctes = _cte_names(tree)
    for arg in _READ_ARGS:
        for part in _parts(tree.args.get(arg)):
            for table in part.find_all(exp.Table):
                if not table.args.get("db") and table.name.lower() in ctes:
                    continue  # a WITH query: its own tables are read below
                rel = relation(table)
                if rel is not None and rel.hazard:
                    add(table, rel)
    with_ = tree.args.get("with_") or tree.args.get("with")
    if isinstance(with_, exp.With):
        for table in with_.find_all(exp.Table):
            rel = relation(table)
            if rel is not None and rel.hazard:
                add(table, rel)
    return list(found)


def _cte_names(write: exp.Expression) -> set[str]:
    """The lower-case names of the WITH queries written before a write (``WITH x AS (...) UPDATE``), and, for a
    write that is itself a WITH query (decision 0363), those of every WITH of its statement."""
    if write.parent is not None:
        return {cte.alias_or_name.lower() for cte in write.root().find_all(exp.CTE)}
    with_ = write.args.get("with_") or write.args.get("with")
    if not isinstance(with_, exp.With):
        return set()
    return {cte.alias_or_name.lower() for cte in with_.expressions}


__all__ = ["Locking", "nested", "plan", "unwritten"]
