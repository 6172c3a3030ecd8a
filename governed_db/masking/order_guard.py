"""The order guard for one connection and identity (decision 0160): plan, refuse, or hand out the edited text.

:mod:`governed_db.masking.order` plans on the parsed statement and :mod:`governed_db.masking.splice` writes the
plan into the text; this module supplies what they need from the connection (which columns are masked for the
identity, which indexes and keys each relation has) and caches the outcome per statement shape, identity and
schema version, like every other masking judgement. The predicate guard turns a refusal into
``masked-column-predicate``; the pipeline sends the edited text.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass, replace

from sqlglot import exp

from governed_db.identity import Identity
from governed_db.masking import early_stop, write_locks
from governed_db.masking import order_nodes as nodes
from governed_db.masking.catalog import table_key
from governed_db.masking.engine import HOT_ORDER, MISSING, MaskingState
from governed_db.masking.order import Edit, Planner, Relation
from governed_db.masking.plan import Access
from governed_db.masking.splice import Spliced, Unspliceable, apply, splice
from governed_db.sql.analysis import Analysis

#: ``DECLARE c CURSOR FOR <query>``: judged as its query, whose edits cannot be written into the DECLARE's text; a
#: later FETCH returns the rows in the order the query reads them, so that refusal stands (decision 0303)
_DECLARE_CURSOR = re.compile(r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*DECLARE\s.*?\bCURSOR\b", re.I | re.S)
#: MySQL/MariaDB plain ``EXPLAIN [EXTENDED|PARTITIONS|FORMAT=...] SELECT``: plans the SELECT without reading its
#: rows (``ANALYZE SELECT`` and MySQL's ``EXPLAIN ANALYZE`` run it and do not match), decision 0425
_MYSQL_PLAIN_EXPLAIN = re.compile(
    r"^\s*EXPLAIN\s+(?:(?:EXTENDED|PARTITIONS|FORMAT\s*=\s*(?:TRADITIONAL|JSON))\s+)?SELECT\b", re.I
)
#: how deep views over views are followed to the tables they read
_VIEW_DEPTH = 3
#: SQLite orders rows inside an aggregate (``group_concat(x, ',' ORDER BY k)``) from 3.44
_SQLITE_ORDERED_AGGREGATES = sqlite3.sqlite_version_info >= (3, 44)


class Refused(Exception):
    """The order guard refuses a statement the predicate guard let through a moment ago (its answer is cached
    longer): the caller asks the policy again."""


@dataclass(frozen=True)
class Outcome:
    """What the order guard decided for one statement shape and identity."""

    #: the edits to make (None: send the statement as written)
    spliced: Spliced | None = None
    #: (reason, remedy) when the order cannot be made deterministic here
    refusal: tuple[str, str] | None = None
    #: the masked columns whose indexes may decide the order (``table.column``), for the refusal's message
    columns: tuple[str, ...] = ()
    #: it reads a relation whose order an index on a masked column may decide: whatever it computes row by row
    #: (the warnings MySQL/MariaDB list) comes in that order (decision 0312)
    hazard: bool = False
    #: the refusal stands whatever makes the relations hazards (:attr:`Plan.firm`)
    firm: bool = False


NOTHING = Outcome()
HAZARD = Outcome(hazard=True)


def outcome(
    state: MaskingState, analysis: Analysis, identity: Identity, access: Access | None = None
) -> Outcome:
    """The order guard's outcome for ``analysis`` run by ``identity`` (memoised like the predicate verdicts)."""
    version = state.version
    key = ("order", analysis.key, version, identity)
    found = state.recall(key)
    if found is MISSING:
        access = access or Access(state, identity)
        found = NOTHING if access.everything else _decide(state, analysis, access)
        state.remember(key, found, state.good_until(access.grants))
    return found  # type: ignore[no-any-return]


def rewritten(state: MaskingState, sql: str, analysis: Analysis, identity: Identity) -> str | None:
    """The text to send instead of ``sql`` (``None``: send it as it is)."""
    statements = analysis.statements
    hot = state.hot.get(id(statements))
    if (
        hot is not None
        and hot[0] is statements
        and hot[1] is identity
        and hot[2] == state.version
        and hot[3] > time.time()
        and hot[HOT_ORDER] is not None
    ):
        spliced, state.read_order = hot[HOT_ORDER]
        return None if spliced is None else apply(spliced, sql, state.dialect)
    version = state.version
    found = outcome(state, analysis, identity)
    if found.refusal is not None:
        raise Refused(found.refusal[0])
    state.read_order = found.hazard
    until = state.memo.peek(("order", analysis.key, version, identity), (0.0, None))[0]
    state.remember_hot(analysis, identity, version, until, HOT_ORDER, (found.spliced, found.hazard))
    return None if found.spliced is None else apply(found.spliced, sql, state.dialect)


def _decide(state: MaskingState, analysis: Analysis, access: Access) -> Outcome:
    facts = state.facts_for(analysis)
    lineage = facts.lineage
    # the statement's own tables too: ``COPY t (a) TO`` reads a table no result column is traced to
    tables = list(dict.fromkeys([*(lineage.tables if lineage is not None else ()), *analysis.tables]))
    if not any(access.hidden_fields(t) or _placed_beneath(state, access, table_key(t)) for t in tables):
        # nothing masked here for this identity (nor a partitioned table's placement beneath a view, 0384):
        # nothing to order or stand in for
        return NOTHING
    trees = [s.expression for s in analysis.statements]
    if analysis.error is not None or any(t is None for t in trees):
        return NOTHING  # refused by the policy as unparseable; masking found no lineage either
    quiet = all(in_no_read_order(state, access, t) for t in trees)
    if state.sg_dialect == "postgres":
        # a scan reads a relation with a masked column in stored order (below), whatever order is added after it:
        # the error of the row read first comes out; an INSERT's target is not scanned (decision 0334)
        read = _scanned(trees, tables)
        stop = _pg_stops_early(state, access, trees)
        if stop is not None:
            return Outcome(refusal=stop, firm=True, hazard=True)
        hazard = not quiet and (
            _reads_hazard(state, access, read) or any(access.hidden_fields(t) for t in read)
        ) and not _one_row(state, access, trees)
        # a PostgreSQL scan walks the pages, and which page a row (or its new version, after an UPDATE that sets a
        # column NULL) went to depends on how much room the rows before it left: how wide they are. Every relation
        # with a masked column is ordered by its key where an order can be added; where it cannot, the statement
        # runs as it would without this (only an index on a masked column refuses it) (decision 0272)
        found = _settle(state, analysis, access, trees, stored_order=True)
        if found.refusal is None or found.firm:
            return _with_hazard(found, hazard, quiet)
    else:
        hazard = not quiet and _reads_hazard(state, access, tables)
        stopping = _mysql_stops_early(state, access, trees) if hazard and state.sg_dialect == "mysql" else None
        if stopping is not None:
            return stopping
    return _with_hazard(_settle(state, analysis, access, trees, stored_order=False), hazard, quiet)


def _reads_hazard(state: MaskingState, access: Access, tables: list[str]) -> bool:
    """Does the statement read a relation whose order an index on a masked column may decide — in any clause,
    the table an UPDATE or DELETE walks included (decision 0312)? A relation of unknown columns counts."""
    cache: dict[str, Relation | None] = {}
    for name in tables:
        rel = _relation(state, access, table_key(name), None, cache, 0)
        if rel is None or rel.hazard:
            return True
    return False


def _mysql_stops_early(state: MaskingState, access: Access, trees: list[exp.Expression | None]) -> Outcome | None:
    """MySQL/MariaDB: the refusal of a subquery that stops at its first match (EXISTS, IN, ANY, ALL), or of an
    anti-join, over a relation an index on a masked column may order, when a row it
    evaluates could warn or fail (decision 0343): which rows it evaluated before stopping follows that order, and
    no ORDER BY inside such a subquery is kept."""
    cache: dict[str, Relation | None] = {}

    def keys(node: exp.Table) -> tuple[frozenset[str], ...]:
        rel = _relation(state, access, table_key(".".join(p.name for p in node.parts)), node, cache, 0)
        return () if rel is None else rel.keys

    for tree in trees:
        if tree is None:
            continue
        for predicate, query in early_stop.stopping_subqueries(tree):
            if early_stop.one_row_by_key(query, keys):
                continue  # one row each time it runs, looked up by its key: nothing comes before it (0337)
            read = [
                _relation(state, access, table_key(".".join(p.name for p in t.parts)), t, cache, 0)
                for t in query.find_all(exp.Table)
            ]
            if not any(rel is None or rel.hazard for rel in read):
                continue
            if not early_stop.quiet(predicate, query, _declared_types(state, tree)):
                return _stopped(state, cache)
        for table, parts in early_stop.stopping_joins(tree):
            rel = _relation(state, access, table_key(".".join(p.name for p in table.parts)), table, cache, 0)
            if rel is not None and not rel.hazard:
                continue
            if rel is not None and _looked_up_by_key(table, rel.keys):
                continue  # one row per outer row, looked up by its key: nothing comes before it (0337)
            kind_of = _declared_types(state, tree)
            if not all(early_stop.quiet_expression(p, kind_of) for p in parts):
                return _stopped(state, cache)
    return None


def _looked_up_by_key(table: exp.Table, keys: tuple[frozenset[str], ...]) -> bool:
    """The ON of ``table``'s join sets a whole key of it equal to constants or columns of other tables (``LEFT
    JOIN t i ON i.id = o.tid AND ...``): MariaDB looks the one matching row up by that key (``eq_ref``)."""
    join = table.parent
    on = join.args.get("on") if isinstance(join, exp.Join) else None
    if not isinstance(on, exp.Expression):
        return False
    own = table.alias_or_name.lower()
    pinned: set[str] = set()
    for part in on.flatten() if isinstance(on, exp.And) else (on,):
        part = part.unnest()
        if not isinstance(part, exp.EQ):
            continue
        for col, other in ((part.this, part.expression), (part.expression, part.this)):
            if not isinstance(col, exp.Column) or col.table.lower() != own:
                continue
            outer = isinstance(other, exp.Column) and bool(other.table) and other.table.lower() != own
            if outer or isinstance(other, (exp.Literal, exp.Placeholder, exp.Parameter)):
                pinned.add(col.name.lower())
    return any(k and k <= pinned for k in keys)


def _stopped(state: MaskingState, cache: dict[str, Relation | None]) -> Outcome:
    return Outcome(refusal=(
        "an EXISTS, IN, ANY or ALL subquery, or an anti-join (LEFT JOIN ... WHERE <its column> IS NULL), stops "
        "reading at the first row that decides it (MariaDB drops an ORDER BY written inside a subquery), so which "
        "rows it evaluated -- the warnings they leave, whether one fails -- would follow that order",
        "keep per-row computations (casts, functions, arithmetic, comparisons that convert a type) out of such "
        "a subquery or join, or ask for an unmask grant (masking.unmask)",
    ), columns=_indexed(state, cache), hazard=True)  # fmt: skip


def _declared_types(state: MaskingState, tree: exp.Expression) -> early_stop.TypeOf:
    """A column's declared type, looked up in the tables ``tree`` names (by alias, or the one table that has a
    column of that name); ``None`` when unknown or ambiguous."""
    by_alias: dict[str, list[dict[str, str | None]]] = {}
    for t in tree.find_all(exp.Table):
        types = state.table(table_key(".".join(p.name for p in t.parts)), t).types
        by_alias.setdefault(t.alias_or_name.lower(), []).append(types)
        by_alias.setdefault(t.name.lower(), []).append(types)

    def kind_of(col: exp.Column) -> str | None:
        name = col.name.lower()
        pools = by_alias.get(col.table.lower(), []) if col.table else [ts for v in by_alias.values() for ts in v]
        found = {types.get(name) for types in pools if name in types}
        return found.pop() if len(found) == 1 else None

    return kind_of


def _scanned(trees: list[exp.Expression | None], tables: list[str]) -> list[str]:
    """PostgreSQL: the relations of ``tables`` whose rows the statement reads (decision 0334) — every one but an
    INSERT's target its source (or a subquery) does not also read: ``INSERT ... VALUES`` rows come in the order
    written."""
    targets: set[str] = set()
    read: set[str] = set()
    for tree in trees:
        if tree is None:
            continue
        target = tree.this.this if isinstance(tree, exp.Insert) and isinstance(tree.this, exp.Schema) else tree.this
        for t in tree.find_all(exp.Table):
            name = table_key(exp.table_name(t))
            (targets if isinstance(tree, exp.Insert) and t is target else read).add(name)
    only_written = targets - read
    return [t for t in tables if table_key(t) not in only_written]


def _pg_stops_early(state: MaskingState, access: Access, trees: list[exp.Expression | None]
                    ) -> tuple[str, str] | None:
    """PostgreSQL: (reason, remedy) where a sublink that stops at its first deciding row reads a relation with a
    masked column and evaluates an expression that may fail on some rows only (decision 0342)."""
    cache: dict[str, Relation | None] = {}
    ctes = {c.alias_or_name.lower(): c.this for t in trees if t is not None for c in t.find_all(exp.CTE)}

    def relation(node: exp.Table) -> Relation | None:
        return _relation(state, access, table_key(exp.table_name(node)), node, cache, 0, True)

    def reads_masked(query: exp.Expression, seen: frozenset[str]) -> bool:
        for t in query.find_all(exp.Table):
            if not isinstance(t.this, exp.Identifier):
                continue  # a function in FROM (generate_series) reads no table
            name = t.name.lower()
            if not t.args.get("db") and name in ctes and name not in seen:
                if reads_masked(ctes[name], seen | {name}):
                    return True
                continue
            rel = relation(t)
            if rel is None or rel.masked or rel.redacted:  # unknown columns: fail closed
                return True
        return False

    def keys(node: exp.Table) -> tuple[frozenset[str], ...]:
        rel = relation(node)
        return () if rel is None else rel.keys

    for tree in trees:
        if tree is None:
            continue
        for link, query in early_stop.sublinks(tree):
            if not reads_masked(query, frozenset()) or early_stop.one_row_by_key(query, keys):
                continue
            bad = early_stop.may_fail(query)
            if bad is None:
                continue
            kind = "EXISTS" if isinstance(link, exp.Exists) else "a subquery compared with IN, ANY or ALL"
            return (
                f"{kind} stops reading at the first row that decides it, and {bad.sql(dialect='postgres')} may "
                "fail on some rows and not on others: whether the statement fails would follow where the rows are "
                "stored, which how wide their masked values are decides",
                "compute that expression outside the subquery, or test it on a table without masked columns, or "
                "count the rows instead ((SELECT count(*) FROM ... WHERE ...) > 0 reads them all), or ask for an "
                "unmask grant (masking.unmask)",
            )
    return None


def _one_row(state: MaskingState, access: Access, trees: list[exp.Expression | None]) -> bool:
    """PostgreSQL: one statement reading one table (no join, no subquery) whose WHERE names one row by a whole key
    of it (``UPDATE t SET ... WHERE id = 1``): at most one row can fail, so its error tells no order (0334)."""
    if len(trees) != 1 or not isinstance(tree := trees[0], (exp.Select, exp.Update, exp.Delete)):
        return False
    found = list(tree.find_all(exp.Table))
    if len(found) != 1:
        return False
    target = found[0]
    where = tree.args.get("where")
    rel = _relation(state, access, table_key(exp.table_name(target)), None, {}, 0)
    pinned = nodes.pinned_columns(where.this if isinstance(where, exp.Where) else None, target)
    return rel is not None and any(k and k <= pinned for k in rel.keys)


def in_no_read_order(state: MaskingState, access: Access, tree: exp.Expression | None) -> bool:
    """Nothing ``tree`` raises or warns of can come in a read order (decision 0332): an INSERT of VALUES rows
    that reads no relation (its rows come in the order the caller wrote them, stored rows are looked up by key
    only), or a SELECT, UPDATE or DELETE of one table, without a join or subquery, whose WHERE names one row by a
    whole key (``WHERE id = 5 AND ...``: at most one row is read, as decision 0331 exempts)."""
    if tree is None or next(tree.find_all(exp.Subquery), None) is not None:
        return False
    if next((s for s in tree.find_all(exp.Select) if s is not tree), None) is not None:
        return False
    if isinstance(tree, exp.Insert):
        return isinstance(tree.expression, exp.Values)
    if isinstance(tree, exp.Select):
        source = tree.args.get("from") or tree.args.get("from_")
        target = source.this if isinstance(source, exp.From) else None
        joined = bool(tree.args.get("joins"))
    elif isinstance(tree, (exp.Update, exp.Delete)):
        target = tree.this
        joined = any(tree.args.get(k) for k in ("from", "from_", "using", "joins"))
    else:
        return False
    if joined or not isinstance(target, exp.Table):
        return False
    rel = _relation(state, access, table_key(".".join(p.name for p in target.parts)), target, {}, 0)
    where = tree.args.get("where")
    pinned = nodes.pinned_columns(where.this if isinstance(where, exp.Where) else None, target)
    return rel is not None and any(k and k <= pinned for k in rel.keys)


def _with_hazard(found: Outcome, hazard: bool, quiet: bool = False) -> Outcome:
    if quiet:  # it reads no row in an order (decision 0332)
        return found if not found.hazard else replace(found, hazard=False)
    if found.hazard or not hazard:
        return found
    return HAZARD if found is NOTHING else Outcome(found.spliced, found.refusal, found.columns, True, found.firm)


def _settle(
    state: MaskingState, analysis: Analysis, access: Access, trees: list[exp.Expression | None], stored_order: bool
) -> Outcome:
    """The edits (or the refusal) for ``trees`` when the relations whose order may follow masked values are those
    with an index on a masked column (and, with ``stored_order``, every one with a masked column)."""
    cache: dict[str, Relation | None] = {}

    def relation(node: exp.Table) -> Relation | None:
        key = table_key(".".join(p.name for p in node.parts))
        return _relation(state, access, key, node, cache, 0, stored_order)

    keyed_cache: dict[str, Relation | None] = {}

    def keyed(node: exp.Table) -> Relation | None:
        key = table_key(".".join(p.name for p in node.parts))
        return _relation(state, access, key, node, keyed_cache, 0, stored_order, keyed=True)

    dialect = state.sg_dialect
    ordered = _SQLITE_ORDERED_AGGREGATES if dialect == "sqlite" else True
    plans = [
        Planner(dialect, relation, ordered_aggregates=ordered, keyed=keyed).statement(t)
        for t in trees if t is not None
    ]  # fmt: skip
    refusing = sorted((p for p in plans if p.refusal is not None), key=lambda p: not p.firm)
    if refusing:
        return Outcome(refusal=refusing[0].refusal, columns=_indexed(state, cache), firm=refusing[0].firm)
    # a relation of unknown columns (None) is read as it comes, in whatever order
    hazard = any(rel is None or rel.hazard for rel in cache.values())
    edits = [e for p in plans for e in p.edits]
    if edits and dialect == "mysql" and _plans_only(analysis, trees, edits):
        # its lines are the plan's, not rows read in an order: the ORDER BY it would need changes nothing it
        # returns, and the EXPLAIN text has no place for it (decision 0425)
        edits = []
    if edits and dialect == "mysql" and _one_row_examined(state, analysis, access, trees, edits):
        edits = []
    if not edits:
        return HAZARD if hazard else NOTHING
    if len(trees) != 1 or "executable-comment" in analysis.flags:
        # firm: with no edit the rows come as stored, which on PostgreSQL follows masked widths (a text of several
        # statements, as staging allows with a warning, ran unordered)
        return Outcome(refusal=(
            "the order of its rows must be fixed by an ORDER BY governed_db adds, which it does only to a text "
            "of one statement",
            "send one statement per call, or ask for an unmask grant (masking.unmask)",
        ), columns=_indexed(state, cache), firm=True)  # fmt: skip
    base = analysis.shape[1] if isinstance(analysis.shape, tuple) else analysis.sql  # a shape's template text
    tree = trees[0]
    assert tree is not None
    try:
        return Outcome(spliced=splice(base, state.dialect, tree, edits), hazard=hazard)
    except Unspliceable as e:
        joined = next((ed.node for ed in edits if ed.kind == "lock-joined"), None)
        if joined is not None:
            masked = tuple(sorted(f"{key}.{c}" for key, rel in cache.items() if rel is not None and rel.hazard
                                  for c in rel.masked | rel.redacted))  # fmt: skip
            return Outcome(refusal=write_locks.unwritten(joined, masked, str(e)), columns=_indexed(state, cache),
                           firm=True)  # fmt: skip
        wanted = "; ".join(sorted({", ".join(ed.items) for ed in edits if ed.kind != "stand-in"})) or "a key"
        return Outcome(refusal=(
            f"its rows must be ordered by values nobody has masked, and governed_db could not add that to the text "
            f"with certainty ({e})",
            f"add the ORDER BY yourself ({wanted}), or ask for an unmask grant (masking.unmask)",
        ), columns=_indexed(state, cache), firm=bool(_DECLARE_CURSOR.match(analysis.sql)) or any(
            # a write's RETURNING, or rows reached through another relation, has no unordered fallback (0331, 0354)
            ed.kind in ("returning-order", "lock-joined") for ed in edits
        ))  # fmt: skip


def _plans_only(analysis: Analysis, trees: list[exp.Expression | None], edits: list[Edit]) -> bool:
    """A MySQL/MariaDB plain EXPLAIN of one SELECT without a subquery whose only edit is the ORDER BY of its own
    rows: the server plans it and reads no row (a const table's one row is read by key), so no order is
    handed out."""
    if len(trees) != 1 or analysis.statements[0].operation != "EXPLAIN":
        return False
    tree = trees[0]
    if not isinstance(tree, exp.Select) or not _MYSQL_PLAIN_EXPLAIN.match(analysis.sql):
        return False
    if next(tree.find_all(exp.Subquery), None) is not None or any(s is not tree for s in tree.find_all(exp.Select)):
        return False
    return all(e.kind == "order" and e.node is tree for e in edits)


def _one_row_examined(
    state: MaskingState, analysis: Analysis, access: Access, trees: list[exp.Expression | None], edits: list[Edit]
) -> bool:
    """A ``SELECT ... LIMIT ROWS EXAMINED n`` (whose text has no place for an ORDER BY) of one row named by its whole
    key: at most one row is read, so there is no order to fix (decision 0426)."""
    if len(trees) != 1 or "rows-examined" not in analysis.statements[0].flags:
        return False
    tree = trees[0]
    return isinstance(tree, exp.Select) and in_no_read_order(state, access, tree) and all(
        e.kind == "order" and e.node is tree for e in edits
    )


def _indexed(state: MaskingState, cache: dict[str, Relation | None]) -> tuple[str, ...]:
    """``table.column`` of the masked columns an index of a relation read holds (all masked ones of a view)."""
    from governed_db.masking.schema import OrderFacts

    out: set[str] = set()
    for key, rel in cache.items():
        if rel is None or not rel.hazard:
            continue
        info = state.tables.get(key)
        facts = info.order if info is not None else None
        if isinstance(facts, OrderFacts) and facts.kind == "table":
            out.update(f"{key}.{c}" for ix in facts.indexes for c in (ix or rel.masked) & rel.masked)
        else:
            out.update(f"{key}.{c}" for c in rel.masked)
    return tuple(sorted(out))


def _relation(
    state: MaskingState, access: Access, key: str, node: exp.Table | None, cache: dict[str, Relation | None],
    depth: int, stored_order: bool = False, keyed: bool = False,
) -> Relation | None:  # fmt: skip
    """What the order guard knows of relation ``key``; with ``keyed``, the keys of one nothing is masked of too
    (a written table whose rows another relation's order reaches, decision 0354)."""
    if key in cache:
        return cache[key]
    cache[key] = None  # a view that reads itself: unknown
    info = state.table(key, node)
    columns = info.columns
    if columns is None:
        return None  # unknown columns: values are checked as they pass; nothing to order by either
    masked = frozenset(c.lower() for c in columns if access.masks(key, c))
    variants = frozenset(c.lower() for c in columns if _varies(info.types.get(c.lower())))
    redacted = frozenset(c.lower() for c in columns if access.redacts(key, c))
    alias = info.rowid_alias
    if alias is not None and alias in masked | redacted:
        # SQLite's ``rowid`` is the masked INTEGER PRIMARY KEY by another name: no clear key (decision 0388)
        masked |= _ROWID_NAMES if alias in masked else frozenset()
        redacted |= _ROWID_NAMES if alias in redacted else frozenset()
    if not masked and not redacted and keyed:
        facts = state.order_of(key, node)
        inherited = getattr(facts, "inherited", False)
        whole = () if inherited or getattr(facts, "kind", None) != "table" else tuple(
            frozenset(c.lower() for c in k) for k in getattr(facts, "keys", ())
        )
        found = Relation(False, None, tuple(columns), masked, redacted, whole, variants=variants)
    elif not masked and not redacted:
        # a view that shows no masked column may still read its rows in an order one decides: a table partitioned
        # by one, whose rows come partition by partition (decision 0384). Ordered by its columns, all clear
        beneath = _placed_beneath(state, access, key)
        found = Relation(beneath, tuple(columns) if beneath else None, tuple(columns), masked, redacted,
                         variants=variants)  # fmt: skip
    else:
        facts = state.order_of(key, node)
        hazard, keys = _hazard(state, access, facts, masked, cache, depth, stored_order)
        placed: frozenset[str] = getattr(facts, "placed", frozenset())
        # a partitioned table's ``tableoid`` is the partition its key's values picked (decision 0384)
        keys = tuple(k for k in keys if not ("tableoid" in {c.lower() for c in k} and placed & (masked | redacted)))
        usable = next((k for k in keys if not {c.lower() for c in k} & masked), None)
        if usable is None:
            # no key without a masked column (a view; a MariaDB table without a primary key): every column nobody
            # masked, in order, leaves ties only between rows equal in all of them
            usable = tuple(c for c in columns if c.lower() not in masked) or None
        hidden = masked | redacted
        inherited = getattr(facts, "inherited", False)  # keys that hold for the parent's own rows only
        whole = () if inherited else tuple(
            frozenset(c.lower() for c in k) for k in keys if not {c.lower() for c in k} & hidden
        )
        facts_unique = getattr(facts, "unique", ())
        checked = tuple(facts_unique) + tuple(frozenset(c.lower() for c in k) for k in getattr(facts, "keys", ()))
        texts = frozenset(c for c in redacted if _text_type(info.types.get(c)))
        found = Relation(hazard, usable, tuple(columns), masked, redacted, whole, checked,
                         tuple(getattr(facts, "unique_whole", ())), bool(getattr(facts, "triggered", True)),
                         _risky(facts, masked) if hazard else frozenset(), texts, variants)
    cache[key] = found
    return found


def _risky(facts: object, masked: frozenset[str]) -> frozenset[str] | None:
    """The lower-case columns of a table's indexes that hold a masked column (``None``: any column may lead to
    one — an index over an expression, a view, indexes unknown). A MariaDB system-versioned table (``other``)
    lists its indexes as a table does."""
    from governed_db.masking.schema import OrderFacts

    if not isinstance(facts, OrderFacts) or facts.kind not in ("table", "other"):
        return None  # a view: whichever indexes its tables have
    risky = [ix for ix in facts.indexes if not ix or ix & masked]
    return None if any(not ix for ix in risky) else frozenset().union(*risky)


#: declared types of a text (PostgreSQL's names): a stand-in '' keeps their type
_TEXT_TYPES = ("text", "character varying", "varchar", "character", "char", "bpchar", "citext", "name")


#: MySQL/MariaDB types whose values compare under a collation (one that may hold different texts equal)
_COLLATED_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json")


#: SQLite's names of a rowid table's rowid
_ROWID_NAMES = frozenset({"rowid", "oid", "_rowid_"})


def _varies(declared: str | None) -> bool:
    """May two different values of a column of type ``declared`` compare equal (``None``: unknown, so they may)?
    A text under a ``_bin`` collation still pads (``'a' = 'a '``)."""
    if declared is None:
        return True
    return declared.lower().split("(", 1)[0].strip() in _COLLATED_TYPES or "char" in declared.lower()


def _text_type(declared: str | None) -> bool:
    return declared is not None and declared.lower().split("(", 1)[0].strip() in _TEXT_TYPES


def _placed_beneath(state: MaskingState, access: Access, key: str, depth: int = 0) -> bool:
    """Does the view ``key`` read (through views, as deep as the guard follows them) a table whose partitions a
    column masked for the identity picks (0384)? Its rows then come in an order that column decides."""
    from governed_db.sql._sqlite_reading import parse_one

    info = state.tables.get(key)
    if info is None or info.view is None or depth >= _VIEW_DEPTH:
        return False
    try:
        query = parse_one(info.view, state.sg_dialect)
    except Exception:
        return False  # an unreadable definition is refused where the view is judged (0382)
    if not isinstance(query, exp.Expression):
        return False
    ctes = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        if not table.name or (len(table.parts) == 1 and table.name.lower() in ctes):
            continue
        inner = table_key(".".join(p.name for p in table.parts))
        if inner == key:
            continue
        sub = state.table(inner)
        hidden = frozenset(c.lower() for c in sub.columns or () if access.masks(inner, c) or access.redacts(inner, c))
        if sub.placed & hidden or _placed_beneath(state, access, inner, depth + 1):
            return True
    return False


def _hazard(
    state: MaskingState, access: Access, facts: object, masked: frozenset[str], cache: dict[str, Relation | None],
    depth: int, stored_order: bool = False,
) -> tuple[bool, tuple[tuple[str, ...], ...]]:  # fmt: skip
    """Whether an index on a masked column (with ``stored_order``: any masked column, whose width decides where
    rows are stored) may decide the relation's order, and its keys."""
    from governed_db.masking.schema import OrderFacts

    if not isinstance(facts, OrderFacts):
        return True, ()  # indexes unknown: assume the worst
    if facts.kind == "table":
        return stored_order or any(not ix or ix & masked for ix in facts.indexes), facts.keys
    if facts.kind == "view" and facts.reads is not None and depth < _VIEW_DEPTH:
        for name in facts.reads:
            rel = _relation(state, access, table_key(name), None, cache, depth + 1, stored_order)
            if rel is None or rel.hazard:
                return True, ()
        return False, ()
    return True, ()


__all__ = ["NOTHING", "Outcome", "Refused", "outcome", "rewritten"]
