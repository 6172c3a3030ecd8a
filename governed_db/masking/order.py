"""Row order that an index on a masked column could decide: ordered by a key instead, or refused (0160).

A read without ORDER BY comes back in whatever order the database walks the rows, and that may be the order of
an index on a masked column (InnoDB's covering index for ``SELECT id, email``, SQLite's for ``WHERE email IS NOT
NULL``, PostgreSQL's index scan once most e-mails are NULL). With a row of the caller's own holding a guess, the
order says whether the guess sorts before the secret: a binary search of the value. The same order decides which
rows a LIMIT keeps, what ``string_agg(id, ',')`` and ``row_number() OVER ()`` say, which row a SQLite scalar
subquery or a MySQL loose ``GROUP BY`` column picks, and the ids an ``INSERT ... SELECT`` hands out.

For a relation with an index over a column masked for the identity (or a view, whose indexes are not ours to
see), every place where that order shows gets a deterministic order made of values nobody has masked: the
relation's key (its primary key, ``rowid``, ``ctid``), or the grouped, distinct or output columns. Adding an
ORDER BY only picks one of the orders the statement already allowed, so its meaning does not change (never to the
ORDER BY of a ``FETCH ... WITH TIES``, where it would tie fewer rows: decision 0272). Where no such
order can be added without changing the meaning (``last_value`` over peers, an aggregate SQLite cannot order),
the statement is refused with what to add.

Independently, an aggregate that concatenates a masked value (``GROUP_CONCAT(email)``, ``string_agg``,
``json_agg``...) is cut, warns or fails at a length limit reached by enough rows: ~58,000 copies of one row make
MariaDB's 1 MB ``group_concat_max_len`` say how long the e-mail is. Its result is masked whole anyway (a derived
value: the placeholder, or NULL), so the masked argument is replaced by a *stand-in* of the same NULL-ness:
``CASE WHEN (email) IS NULL THEN NULL ELSE '' END``. What the caller sees is unchanged; its length no longer
depends on the value, nor its order.

This module plans those edits on the parsed statement (:class:`Edit`); :mod:`governed_db.masking.splice` writes
them into the statement's own text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from sqlglot import exp

from governed_db.masking import flow, write_locks
from governed_db.masking import order_nodes as nodes


@dataclass(frozen=True)
class Relation:
    """What the planner knows of one relation in the FROM clause, for one identity."""

    #: its unordered rows may come back in the order of a masked value (an index over a masked column; a view)
    hazard: bool
    #: the columns (as stored) of a key no masked value is part of, or ``None``
    key: tuple[str, ...] | None
    #: its columns as stored (``None``: unknown)
    columns: tuple[str, ...] | None
    #: lower-case columns masked for the identity (may decide nothing) / masked whole when computed on
    masked: frozenset[str] = frozenset()
    redacted: frozenset[str] = frozenset()
    #: lower-case columns of every key that is never NULL and has no masked column (grouping by one decides the
    #: groups: the rest of its row's columns follow, decision 0283)
    keys: tuple[frozenset[str], ...] = ()
    #: lower-case columns of each unique index and key (an empty set: over an expression, any column), which
    #: SQLite checks row by row as an UPDATE changes them (decision 0347)
    unique: tuple[frozenset[str], ...] = ()
    #: those of them over columns, not partial: a WHERE setting each one equal to a constant picks one row at most
    unique_whole: tuple[frozenset[str], ...] = ()
    #: a trigger may fire on its rows (SQLite; unknown: True): a write changes more than the columns it names
    triggered: bool = True
    #: lower-case columns of the indexes that hold a masked column, which a read may walk in the masked values'
    #: order (``None``: any column may lead to one — an index over an expression, a view, indexes unknown);
    #: :func:`governed_db.masking.order_guard` fills it from the catalog for every relation with masked columns
    risky: frozenset[str] | None = frozenset()
    #: lower-case columns masked whole when computed on whose declared type is a text (of any length)
    texts: frozenset[str] = frozenset()
    #: lower-case columns whose values a collation may hold equal while they differ (MySQL/MariaDB texts:
    #: ``'Paris'``, ``'PARIS'``, ``'Paris '``; a type unknown counts), decision 0372
    variants: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Edit:
    """One change to the statement: ``order`` (a query's ORDER BY), ``agg-order`` (an aggregate's),
    ``window-order`` (a window's), ``window-whole`` (a window's, with the whole partition as its frame, which a
    window without ORDER BY or frame had), ``branch-order`` (an unparenthesised branch of a ``UNION ALL`` put in
    parentheses with an ORDER BY), ``lock-order`` (a PostgreSQL write's rows locked in key order first),
    ``lock-joined`` (the same for a write with FROM/USING: its condition and list repeated in the locking subquery;
    ``items`` the key qualified, then the name the target goes by),
    ``stand-in`` (a masked aggregate argument replaced), ``returning-order``
    (a PostgreSQL ``UPDATE/DELETE ... RETURNING`` run as a CTE whose rows are selected in key order),
    ``exists-whole`` (a SQLite ``EXISTS`` query given ``GROUP BY NULL``, so it reads every row before answering; a
    compound one, or one with an OFFSET, read as a derived table of one group), ``min-max-whole`` (a SQLite
    ``min(x)``/``max(x)`` whose name does not show written ``min(+(x))``, which no index answers by stopping at the
    first row)."""

    kind: str
    node: exp.Expression
    items: tuple[str, ...] = ()


@dataclass
class Plan:
    edits: list[Edit] = field(default_factory=list)
    #: why the order cannot be made deterministic here, and what to do (the refusal's reason and remedy)
    refusal: tuple[str, str] | None = None
    #: the refusal stands even where PostgreSQL's stored order is all that makes a relation a hazard (decision
    #: 0303): the statement has no way to run as written without handing out rows, or values, in that order
    firm: bool = False


@dataclass
class _Out:
    name: str
    ident: exp.Identifier | None
    masked: bool | None  # None: unknown
    redacted: bool = False
    #: (source name, column) when the output is a source's column passed through as it is
    origin: tuple[str, str] | None = None
    #: may hold different values a collation holds equal (a MySQL/MariaDB text; unknown: yes), decision 0372
    varies: bool = True
    #: computed only from columns an index holding a masked column holds (with the key), so that reading it
    #: alone a read may walk that index (unknown: yes), decision 0372
    held: bool = True


@dataclass
class _Shape:
    """A query's rows as its consumer sees them."""

    outs: list[_Out] | None
    hazard: bool
    #: indexes into ``outs`` that identify a row ([]: at most one row; None: nothing known)
    key: list[int] | None = None
    #: a plain SELECT over tables (no grouping, DISTINCT or aggregate): the query, and the key of its rows as
    #: its own scope names them (where an outer query without a key of its own can have it ordered)
    node: exp.Expression | None = None
    row_key: list[str] | None = None
    #: a ``UNION ALL``'s clear columns that hold a key of each branch's rows (rows of different branches may
    #: tie on them): what an enclosing ``UNION ALL`` may sort by (decision 0320)
    branch_key: list[int] | None = None
    #: a ``UNION ALL`` without a key: the edits that put its rows in an order no masked value decides (sorted by
    #: its clear columns, or each branch by its own key), for an outer query over it to add (decision 0349)
    orders: list[Edit] | None = None
    #: PostgreSQL: rows of a recursive CTE (or of a query over one) that read a relation in an order masked
    #: values may decide: no key is known of them to order them by (rt17new)
    recursive: bool = False
    #: MySQL/MariaDB: some source may be read through an index holding a masked column (decision 0372)
    walked: bool = True


@dataclass
class _Source:
    name: str
    qualifier: exp.Identifier | None
    relation: Relation | None = None
    shape: _Shape | None = None

    @property
    def hazard(self) -> bool:
        if self.relation is not None:
            return self.relation.hazard
        return self.shape is not None and self.shape.hazard

    def columns(self) -> list[str] | None:
        if self.relation is not None:
            return list(self.relation.columns) if self.relation.columns is not None else None
        if self.shape is not None and self.shape.outs is not None:
            return [o.name for o in self.shape.outs]
        return None


@dataclass
class _Scope:
    sources: list[_Source]
    parent: _Scope | None = None


class Planner:
    """Plans the edits for one statement; ``relation(table)`` answers for a base relation (``None``: unknown)."""

    def __init__(
        self,
        dialect: str,
        relation: Callable[[exp.Table], Relation | None],
        *,
        ordered_aggregates: bool = True,
        keyed: Callable[[exp.Table], Relation | None] | None = None,
    ) -> None:
        self.dialect = dialect
        self.relation = relation
        #: a written table with its keys even where nothing of it is masked (decision 0354)
        self.keyed = keyed or relation
        #: the dialect takes ``agg(x ORDER BY k)`` (SQLite only from 3.44)
        self.ordered_aggregates = ordered_aggregates
        self.plan = Plan()
        self._shapes: dict[int, _Shape] = {}
        #: ids of the SELECTs a deduplicating set operation combines (decision 0372)
        self._deduplicated: set[int] = set()
        #: the statement only reads (no write, no SELECT INTO): a value it merges goes nowhere but to the caller
        self._reads_only = False
        #: the nodes given a stand-in (a column in nested merges is stood in for once)
        self._stood_in: set[int] = set()

    # -- the statement ---------------------------------------------------------------------------
    def statement(self, tree: exp.Expression) -> Plan:
        self._reads_only = isinstance(tree, (*nodes.QUERIES, exp.Subquery)) and not any(
            isinstance(n, (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Into)) for n in tree.walk()
        )
        if isinstance(tree, (*nodes.QUERIES, exp.Subquery)):
            self.query(tree, {}, None, need=True)
        elif _fills_rows(tree) and isinstance(tree.expression, (*nodes.QUERIES, exp.Subquery)):
            # the order rows are inserted in hands out AUTO_INCREMENT / serial ids, and the physical order; a
            # WITH written before INSERT names what its query reads (``WITH x AS (SELECT ...) INSERT ... FROM x``)
            self.query(tree.expression, self._ctes(tree, {}, None), None, need=True)
            self._nested_in(tree, skip={id(tree.expression)})
        elif isinstance(tree, exp.Copy) and isinstance(tree.this, (*nodes.QUERIES, exp.Subquery)):
            self.query(tree.this, {}, None, need=True)
        elif isinstance(tree, exp.Copy) and not tree.args.get("kind"):
            self._copied_table(tree)
        elif isinstance(tree, (exp.Update, exp.Delete)) and tree.args.get("limit") is not None:
            self._bounded_write(tree)
        else:
            self._nested_in(tree, skip=set())
        if isinstance(tree, (exp.Update, exp.Delete)):
            self._written_in_read_order(tree)
            self._joined_picks(tree)
            if isinstance(tree, exp.Update) and self.dialect == "sqlite":
                self._reads_own_changes(tree)
            if tree.args.get("returning") is not None:
                self._returned_rows(tree)
        self._locked_in_key_order(tree)
        self._locked_in_read_order(tree)
        if self.dialect == "sqlite" and self.plan.refusal is None:
            self._exists_read_whole(tree)
        if self.dialect in ("sqlite", "postgres") and self.plan.refusal is None:
            self._min_max_read_whole(tree)
        return self.plan

    def _locked_in_key_order(self, tree: exp.Expression) -> None:
        """PostgreSQL: a write locks the rows it changes in the order it reaches them, which masked values may
        decide; they are locked in key order first: ``WHERE "id" IN (SELECT "id" FROM t WHERE <its condition>
        ORDER BY "id" FOR NO KEY UPDATE)`` (decision 0351), or the write is refused (decision 0354)."""
        inner = write_locks.nested(tree, self.relation) if self.dialect == "postgres" else None
        if inner is not None:
            self._refuse(*inner, firm=True)
            return
        found = write_locks.plan(tree, self.dialect, self.relation, self.keyed)
        if found is not None and found.refusal is not None:
            self._refuse(*found.refusal, firm=True)
        elif found is not None and found.joined is not None:
            self.plan.edits.append(Edit("lock-joined", tree, (*found.items, found.joined)))
        elif found is not None:
            self.plan.edits.append(Edit("lock-order", tree, found.items))

    def _locked_in_read_order(self, tree: exp.Expression) -> None:
        """MySQL/MariaDB: InnoDB locks each row as it reads it, before any ORDER BY sorts them. A write, or a
        ``SELECT ... FOR UPDATE/SHARE``, that may read a table through an index holding a masked column (a
        condition on one of its columns, ``ssn IS NOT NULL``; a read its columns cover, ``count(*)``) locks the
        rows in the order of the masked values: another session of the caller's, holding one row, sees which rows
        the statement locked before it waited there (``FOR UPDATE SKIP LOCKED``). No ORDER BY or key order can be
        added to change that, and MariaDB takes no index hint on a single-table DELETE: refused unless the rows
        are named by a whole key (decision 0366)."""
        if self.dialect != "mysql":
            return
        scopes: list[exp.Expression] = [s for s in tree.find_all(exp.Select) if s.args.get("locks")]
        if isinstance(tree, (exp.Update, exp.Delete)):
            scopes.insert(0, tree)
        targets = {id(t) for t in _written_tables(tree)}
        for scope in scopes:
            carried = self._pinned_by_join(scope)
            listed = self._pinned_by_join(scope, _listed_columns) if isinstance(scope, exp.Select) else {}
            for table in scope.find_all(exp.Table):
                rel = self.relation(table)
                if rel is None or not rel.hazard:
                    continue
                where = scope.args.get("where")
                pinned = nodes.pinned_columns(where.this if isinstance(where, exp.Where) else None, table)
                if any(k and k <= pinned for k in (*rel.keys, *rel.unique)):
                    continue  # one row by its key: nothing is locked before it
                if any(k and k <= carried.get(id(table), frozenset()) for k in rel.keys):
                    continue  # one row by a key equal to a key given a constant: a const table as well (0380)
                walked = _walked_index(scope, table, rel, whole_row=id(table) in targets)
                if walked is None:
                    continue
                if (
                    isinstance(scope, exp.Select)
                    and not table.args.get("hints")
                    and rel.keys
                    and (
                        _listed_by_key(scope, table, rel)
                        # a join partner whose key equals a listed key, naming no masked column of its own: both
                        # read by PRIMARY, each row looked up by its key in key order (decision 0406)
                        or (
                            any(k and k <= listed.get(id(table), frozenset()) for k in rel.keys)
                            and _walked_index(scope, table, rel, whole_row=True) is None
                        )
                    )
                ):
                    # rows named by a list of keys: read by PRIMARY, in key order, whatever the table's size
                    self.plan.edits.append(Edit("force-primary", table, ()))
                    continue
                self._refuse(
                    f"InnoDB locks the rows of {table.name} as it reads them, before any ORDER BY, and this "
                    f"statement may read them through an index on {walked}: another session would see which rows "
                    "it locked before it waited (FOR UPDATE SKIP LOCKED), in the order of the masked values",
                    f"name the rows by their key (WHERE id IN (...)) without a condition on {walked}, or ask for "
                    "an unmask grant (masking.unmask)",
                    firm=True,
                )
                return

    def _pinned_by_join(
        self,
        scope: exp.Expression,
        given: Callable[[exp.Expression | None, exp.Table], frozenset[str]] = nodes.pinned_columns,
    ) -> dict[int, frozenset[str]]:
        """For each table of ``scope`` (by id), its columns given one constant by the WHERE or by an equality with
        such a column of another copy of the same table (decision 0380): ``t a JOIN t b ON b.id = a.id WHERE a.id =
        2`` makes ``a`` a const table and MariaDB carries the constant over the equality (EXPLAIN: ``b`` const by
        PRIMARY too), both read while the statement is planned, before any other row. Equalities count from the
        top-level AND of the WHERE and of an inner join's ON (a LEFT JOIN's for the table it joins), both columns
        qualified, of one table and one name, so of one type: an equality across types may not be carried to the
        key. With ``given`` = :func:`_listed_columns`, the columns given a list of constants (``a.id IN (1, 2)``)
        are carried the same way: such a partner is read FORCE INDEX (PRIMARY) as the listed table is (0406)."""
        tables = {
            t.alias_or_name.lower(): t
            for t in scope.find_all(exp.Table)
            if _statement_of(t) is scope and isinstance(t.parent, (exp.From, exp.Join, exp.Update, exp.Delete))
        }
        if len(tables) < 2:
            return {}
        cond = scope.args.get("where")
        where = cond.this if isinstance(cond, exp.Where) else None
        pairs: list[tuple[str, str, str]] = []  # (table, other table, column), both ways

        def equalities(on: exp.Expression | None, only: str | None) -> None:
            for part in on.flatten() if isinstance(on, exp.And) else (on,) if on is not None else ():
                part = part.unnest()
                if not isinstance(part, exp.EQ):
                    continue
                x, y = part.this, part.expression
                if not (isinstance(x, exp.Column) and isinstance(y, exp.Column) and x.table and y.table):
                    continue
                tx, ty = tables.get(x.table.lower()), tables.get(y.table.lower())
                if tx is None or ty is None or tx is ty or x.name.lower() != y.name.lower():
                    continue
                if _table_key(tx) != _table_key(ty):
                    continue
                for mine, other in ((x.table.lower(), y.table.lower()), (y.table.lower(), x.table.lower())):
                    if only is None or mine == only:
                        pairs.append((mine, other, x.name.lower()))

        equalities(where, None)
        for join in scope.find_all(exp.Join):
            if _statement_of(join) is not scope or not isinstance(join.this, exp.Table):
                continue
            side = str(join.args.get("side") or "").upper()
            if side in ("", "LEFT") and not join.args.get("using"):
                equalities(join.args.get("on"), join.this.alias_or_name.lower() if side else None)
        pinned = {name: set(given(where, t)) for name, t in tables.items()}
        changed = True
        while changed:
            changed = False
            for mine, other, col in pairs:
                if col in pinned[other] and col not in pinned[mine]:
                    pinned[mine].add(col)
                    changed = True
        return {id(t): frozenset(pinned[name]) for name, t in tables.items()}

    def _exists_read_whole(self, tree: exp.Expression) -> None:
        """SQLite stops an ``EXISTS (SELECT ...)`` at its first row, read in the order an index on a masked column
        may give, and drops any ORDER BY in it: whether a later row's expression fails (``CASE id WHEN 1 THEN 1
        WHEN 2 THEN json('x') END``) told which row came first. ``GROUP BY NULL`` makes it read every row first
        (one group when any row is found, none otherwise: the same answer) (decision 0346)."""
        for ex in tree.find_all(exp.Exists):
            sub = ex.this
            if isinstance(sub, exp.SetOperation):
                # a compound stops at its first row too (``UNION ALL`` branch by branch; a merge of sorted
                # branches): it is read whole as a derived table of one group (h2early)
                if any((rel := self.relation(t)) is None or rel.hazard for t in sub.find_all(exp.Table)):
                    self.plan.edits.append(Edit("exists-whole", sub))
                continue
            if not isinstance(sub, exp.Select) or sub.args.get("group") is not None:
                continue
            if any(isinstance(n, exp.AggFunc) for n in nodes.own_nodes(sub)):
                continue  # an aggregate without GROUP BY reads every row already
            tables = list(sub.find_all(exp.Table))
            if len(tables) == 1 and not sub.args.get("joins"):
                rel, where = self.relation(tables[0]), sub.args.get("where")
                pinned = nodes.pinned_columns(where.this if isinstance(where, exp.Where) else None, tables[0])
                if rel is not None and any(k and k <= pinned for k in (*rel.keys, *rel.unique_whole)):
                    continue  # one row by its key: nothing comes before it
            if any((rel := self.relation(t)) is None or rel.hazard for t in tables):
                # an OFFSET would skip the one group GROUP BY NULL makes: such a query is read whole as a derived
                # table instead (its rows, not one group, are what the OFFSET skips)
                wrap = ("derived",) if sub.args.get("offset") is not None else ()
                self.plan.edits.append(Edit("exists-whole", sub, wrap))

    def _min_max_read_whole(self, tree: exp.Expression) -> None:
        """SQLite answers ``SELECT min(x) FROM t WHERE ...`` (no GROUP BY or HAVING, one aggregate) by walking an
        index on ``x`` and stopping at the first row its WHERE keeps: the rows before it are those whose ``x``
        sorts first. Over a relation an index on a masked column may order (``min(ssn)``; ``min(city)`` over an
        index on ``(city, ssn)``), whether a row after that one fails told the order. The argument is written
        ``+(x)`` (the same value, type and collation; no index matches it) wherever that changes no column's
        name: inside EXISTS, IN or a scalar subquery, a branch of a compound, an aliased output. An output named
        by its text gets ``ORDER BY count(*)`` instead (one row: nothing to sort), a query of two aggregates,
        which SQLite answers by reading every row the WHERE keeps (decision 0357). A whole key of one column
        (``max(id)``) keeps its index: its order is no masked value's. PostgreSQL reads ``min(ssn)`` as ``ORDER BY
        ssn LIMIT 1`` over an index on ``ssn`` the same way: there the query gets ``ORDER BY count(*)`` (in
        parentheses for a compound's branch) whenever the argument reads a masked column."""
        for select in tree.find_all(exp.Select):
            group = select.args.get("group")
            # ``GROUP BY ()`` is one group of every row, and PostgreSQL's planagg takes a HAVING along: both read
            # min(x) over an index on x there as without them
            grouped = isinstance(group, exp.Group) and not (
                self.dialect == "postgres" and not nodes.grouping_sets(group)
                and all(isinstance(e, exp.Tuple) and not e.expressions for e in group.expressions)
            )
            if grouped or (select.args.get("having") is not None and self.dialect != "postgres"):
                continue
            source = select.args.get("from")
            plain = source is not None and isinstance(source.this, exp.Table) and not select.args.get("joins")
            if plain and not isinstance(select.args.get("where"), exp.Where):
                continue  # nothing is evaluated on the rows before the first: nothing tells their order
            tables = [t for t in nodes.own_nodes(select) if isinstance(t, exp.Table)]
            if source is None or not tables:
                # SQLite flattens a derived table or CTE into the query around it (its WHERE becomes that query's),
                # and ``(SELECT min(x))`` over an outer column aggregates the outer query: the rows min() walks
                # are those of the tables read anywhere in the statement
                tables = list(tree.find_all(exp.Table))
            rels = [self.relation(t) for t in tables]
            if not any(rel is None or rel.hazard for rel in rels):
                continue
            for call in nodes.own_nodes(select):
                if not isinstance(call, (exp.Min, exp.Max)) or call.expressions:
                    continue  # min(a, b) of several arguments is a scalar function
                if isinstance(call.parent, exp.Window) or not isinstance(call.this, exp.Expression):
                    continue
                arg = call.this
                if arg.find(exp.Column) is None:
                    continue  # the same on every row
                rel = rels[0] if len(rels) == 1 and plain else None
                if isinstance(arg, exp.Column) and rel is not None and (
                    arg.name.lower() in _ROWIDS or frozenset({arg.name.lower()}) in rel.keys
                ):
                    continue
                if self.dialect == "postgres":
                    # PostgreSQL reads min(x) as ``SELECT x ... ORDER BY x LIMIT 1`` over an index on x: the order
                    # is a masked value's where x reads one (ties of a clear x: the stored order, left as 0334
                    # leaves it). An aggregate other than min/max keeps it from doing so (planagg); a branch of a
                    # compound takes it in parentheses. No unary + there to hide x from its index.
                    if rel is not None and not any(c.name.lower() in rel.masked for c in arg.find_all(exp.Column)):
                        continue
                    kind = "branch-order" if isinstance(select.parent, exp.SetOperation) else "order"
                    self.plan.edits.append(Edit(kind, select, ("count(*)",)))
                    break
                if _names_its_output(select) and not _aliased(call, select):
                    self.plan.edits.append(Edit("order", select, ("count(*)",)))
                    break  # one is enough for the whole query
                self.plan.edits.append(Edit("min-max-whole", call))

    def _nested_in(self, tree: exp.Expression, skip: set[int]) -> None:
        for node in nodes.own_nodes(tree):
            if isinstance(node, (*nodes.QUERIES, exp.Subquery)) and id(node) not in skip:
                # a SQLite scalar subquery in a write (``INSERT INTO m VALUES ((SELECT id FROM t ...))``, a SET, a
                # WHERE) answers with its first row as its SELECT's twin does (decision 0367)
                self.query(node, {}, None, need=self._order_read(node))

    def _order_read(self, sub: exp.Expression) -> bool:
        """Whether the context of nested query ``sub`` reads its rows in order: a SQLite scalar subquery answers
        with its first row (MySQL and PostgreSQL fail on a second one); ``ARRAY(...)`` keeps them in order."""
        parent_node = sub.parent
        first_row = self.dialect == "sqlite" and not isinstance(parent_node, (*nodes.NOT_SCALAR, exp.Subquery))
        return first_row or isinstance(parent_node, exp.Array)

    def _bounded_write(self, tree: exp.Expression) -> None:
        """``UPDATE t ... LIMIT 1`` (MySQL, SQLite): which rows it changes is the order they are read in."""
        target = tree.this if isinstance(tree, exp.Update) else tree.this or tree.args.get("from")
        if isinstance(target, exp.From):
            target = target.this
        self._nested_in(tree, skip=set())
        if not isinstance(target, exp.Table):
            return
        rel = self.relation(target)
        if rel is None or not rel.hazard:
            return
        src = _Source(target.alias_or_name.lower(), nodes.qualifier(target), rel)
        items = self._key_items(src)
        if items is None:
            self._refuse(
                f"{target.name} has an index on a masked column and no key without one, so which rows this "
                "LIMIT changes would follow the masked values",
                "change rows chosen by a key (WHERE id IN (...)) instead of LIMIT, or ask for an unmask grant",
            )
            return
        if not self._ordered_by(tree.args.get("order"), items):
            self.plan.edits.append(Edit("order", tree, tuple(items)))

    def _copied_table(self, tree: exp.Copy) -> None:
        """``COPY t (a, b) TO STDOUT`` exports the rows in the order they are stored, and no ORDER BY can be added
        to it: where that order may follow masked values (an index; on PostgreSQL, where an UPDATE put a row's new
        version, which depends on how wide the rows are), it is refused; its query form is ordered (0303)."""
        source = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if not isinstance(source, exp.Table):
            return
        rel = self.relation(source)
        if rel is None or not rel.hazard:
            return
        columns = [c.sql(dialect=self.dialect) for c in tree.this.expressions] if isinstance(
            tree.this, exp.Schema
        ) else ["*"]
        key = ", ".join(nodes.column_sql(c, self.dialect) for c in rel.key or ()) or "its key"
        self._refuse(
            f"COPY {source.sql(dialect=self.dialect)} TO exports its rows in the order they are stored, which how "
            "wide their masked values are may decide",
            f"COPY (SELECT {', '.join(columns)} FROM {source.sql(dialect=self.dialect)} ORDER BY {key}) TO STDOUT, "
            "or ask for an unmask grant (masking.unmask)",
            firm=True,
        )

    def _written_in_read_order(self, tree: exp.Update | exp.Delete) -> None:
        """A value handed out row by row (``nextval('s')``, ``clock_timestamp()``, ``random()`` after ``setseed``,
        ``@n := @n + 1``) anywhere in an UPDATE or DELETE is computed in the order the write reads its rows, which
        the stored order (or an index on a masked column) decides: the values in the changed rows, the rows a
        WHERE keeps, or those RETURNING hands out number the rows in that order, and no ORDER BY added outside
        the write renumbers them. Refused unless the write changes one row, named by a whole key (0331)."""
        found = next(
            (n for n in tree.walk() if isinstance(n, exp.Expression) and nodes.read_order_value(n, self.dialect)),
            None,
        )
        if found is None:
            return
        tables = [t for t in nodes.own_nodes(tree) if isinstance(t, exp.Table)]
        target = tree.this
        joined = any(tree.args.get(k) for k in ("from", "from_", "using", "joins"))
        if isinstance(target, exp.Table) and not joined:
            rel = self.relation(target)
            where = tree.args.get("where")
            pinned = nodes.pinned_columns(where.this if isinstance(where, exp.Where) else None, target)
            if rel is not None and any(k and k <= pinned for k in rel.keys):
                return  # one row at most: no order among the rows
        if not any((rel := self.relation(t)) is None or rel.hazard for t in tables):
            return
        self._refuse(
            f"{found.sql(dialect=self.dialect)} is computed row by row in the order {tree.key.upper()} reads the "
            "rows, which an index on a masked column (on PostgreSQL, how wide the stored rows are) may decide, and "
            "no ORDER BY can be added to a write",
            "compute the value once (now() rather than clock_timestamp(); a value SELECTed first), or change one "
            "row at a time by its key (WHERE id = ...), or leave it out, or ask for an unmask grant (masking.unmask)",
            firm=True,
        )

    def _joined_picks(self, tree: exp.Update | exp.Delete) -> None:
        """``UPDATE t ... FROM s`` (``DELETE FROM t USING s``) changes a row of ``t`` joined to several rows of ``s``
        once, with the values of the one read first ("not readily predictable", PostgreSQL's manual): where ``s``
        may be read in an order masked values decide, a value of ``s`` written by SET or handed out by RETURNING
        tells that order. Refused unless ``s`` is joined by a whole key of it, to a constant or a column of ``t``
        (one row of ``s`` per row of ``t``) (0331)."""
        clause = tree.args.get("from_") or tree.args.get("from") or tree.args.get("using")
        target = tree.this
        if not clause or not isinstance(target, exp.Table):
            return
        parts = clause if isinstance(clause, list) else [clause]
        sources = [n for p in parts for n in nodes.own_nodes(p, include_self=True)
                   if isinstance(n, (exp.Table, exp.Subquery, exp.Values))]  # fmt: skip
        written = [*(tree.expressions if isinstance(tree, exp.Update) else ()), tree.args.get("returning")]
        read = [c for w in written if isinstance(w, exp.Expression) for c in w.find_all(exp.Column, exp.Star)]
        mine = {target.name.lower(), target.alias_or_name.lower()}
        own = self.relation(target)
        own_columns = {c.lower() for c in own.columns or ()} if own is not None else set()
        equal = self._equalities(tree, mine)
        for src in sources:
            name = src.alias_or_name.lower()
            # the names its columns go by: a parenthesised join's tables answer for themselves
            names = {name, *(t.alias_or_name.lower() for t in src.find_all(exp.Table))} - {""}
            if isinstance(src, exp.Table):
                rel = self.relation(src)
                if rel is not None and not rel.hazard:
                    continue
                if rel is not None and any(k and k <= equal.get(name, frozenset()) for k in rel.keys):
                    continue  # one row of it per row written
            else:
                shape = self._shapes.get(id(src))
                if shape is None and not any((r := self.relation(t)) is None or r.hazard
                                             for t in src.find_all(exp.Table)):  # fmt: skip
                    continue  # VALUES
                if shape is not None and not shape.hazard:
                    continue  # a query of relations read in an order nobody masked
                if shape is not None and shape.key is not None and shape.outs is not None and name and {
                    shape.outs[i].name.lower() for i in shape.key
                } <= equal.get(name, frozenset()):
                    continue  # one of its rows per row written
            shown = any(
                isinstance(c, exp.Star) or (isinstance(c, exp.Column) and isinstance(c.this, exp.Star)
                                            and c.table.lower() in names)
                or (isinstance(c, exp.Column) and (c.table.lower() in names or (
                    not c.table and c.name.lower() not in own_columns)))
                for c in read
            )  # fmt: skip
            if shown:
                self._refuse(
                    f"{tree.key.upper()} joined to {src.sql(dialect=self.dialect)} takes, for a row joined to several "
                    "of its rows, the values of the one read first, an order masked values may decide",
                    f"join {name} by its whole key (a column of the written table or a constant per key column), or "
                    "take its values from a subquery that picks one row by an ORDER BY of its key, or ask for an "
                    "unmask grant (masking.unmask)",
                    firm=True,
                )
                return

    def _written(self, tree: exp.Update | exp.Delete) -> tuple[exp.Table, Relation, frozenset[str]] | None:
        """The table a write changes, its relation and the columns its WHERE pins to constants, when the rows it
        reaches may come in an order masked values decide (its relation is a hazard); None otherwise."""
        target = tree.this
        if not isinstance(target, exp.Table):
            return None
        rel = self.relation(target)
        if rel is None or not rel.hazard:
            return None
        where = tree.args.get("where")
        return target, rel, nodes.pinned_columns(where.this if isinstance(where, exp.Where) else None, target)

    def _reads_own_changes(self, tree: exp.Update) -> None:
        """SQLite changes the rows of an UPDATE one by one as it reads them: it checks a unique index on a column it
        writes per row (whether ``code = code + 1`` collides depends on which row came first), and a subquery of
        its SET or WHERE
        correlated to the row (run again per row) reads the table as the rows changed so far left it:
        ``SET amount = (SELECT count(*) FROM t t2 WHERE t2.amount < 0 AND t2.id <> t.id) - 1 ... WHERE ssn IS NOT
        NULL`` numbers the rows in the order of an index on ``ssn``. No ORDER BY can be added to an UPDATE, so
        such a write of several rows of a table an index on a masked column may order is refused; a subquery run
        once (not correlated: ``WHERE id IN (SELECT id FROM t WHERE ...)``) reads the table before any change
        (decision 0347)."""
        found = self._written(tree)
        if found is None:
            return
        target, rel, pinned = found
        if any(k and k <= pinned for k in (*rel.keys, *rel.unique_whole)):
            return  # one row at most: nothing changed before it
        written = {
            e.this.name.lower() for e in tree.expressions if isinstance(e, exp.EQ) and isinstance(e.this, exp.Column)
        }
        checked = next((ix for ix in rel.unique if not ix or ix & written), None)
        if checked is not None or not all(isinstance(e, exp.EQ) for e in tree.expressions):
            # ``SET code = code + 1`` over codes 1 and 2 fails when the row holding 1 comes first, and passes
            # when the other does: whether it fails tells the order (SQLite checks a unique index per row)
            shown = ", ".join(sorted(checked)) if checked else "an expression"
            self._refuse(
                f"UPDATE {target.sql(dialect=self.dialect)} changes a column of a unique key or index ({shown}) of "
                "several rows one by one, in the order it reads them, which an index on a masked column may decide: "
                "whether a row collides with one not yet changed depends on that order",
                "change one row at a time by its key (WHERE id = ...), or ask for an unmask grant (masking.unmask)",
                firm=True,
            )
            return
        name = target.name.lower()
        plain = all(isinstance(e.this, exp.Column) for e in tree.expressions)  # no ``SET (a, b) = (...)``
        parts = [*tree.expressions, tree.args.get("where")]
        for part in parts:
            if not isinstance(part, exp.Expression):
                continue
            for sub in part.find_all(*nodes.QUERIES):
                if not any(t.name.lower() == name for t in sub.find_all(exp.Table)):
                    continue
                if not _correlated(sub) or not self._reads_written(sub, written, rel, plain):
                    continue
                self._refuse(
                    f"UPDATE {target.sql(dialect=self.dialect)} changes its rows one by one in the order it reads "
                    "them, which an index on a masked column may decide, and the subquery "
                    f"{sub.sql(dialect=self.dialect)[:80]} reads them again per row, with the changes made so far",
                    "compute the values first (a SELECT ordered by the key) and write them by key, or change one "
                    "row at a time by its key (WHERE id = ...), or ask for an unmask grant (masking.unmask)",
                    firm=True,
                )
                return

    def _reads_written(self, sub: exp.Query, written: set[str], target: Relation, plain: bool) -> bool:
        """``sub`` may read a column the UPDATE writes (named under any qualifier, through ``*``, or a column
        its tables do not list, such as a generated one): only then do the rows changed so far give it another
        answer (``SET status = 'dup' WHERE EXISTS (SELECT 1 FROM t t2 WHERE t2.city = t.city AND t2.id < t.id)``
        reads none of them, decision 0337) — unless a trigger fires on the table, which may write any column."""
        if not plain or target.triggered or any(not isinstance(s.parent, exp.Count) for s in sub.find_all(exp.Star)):
            return True  # (a trigger may write any column, row by row, as the UPDATE goes)
        known = {c.lower() for c in target.columns or ()}
        for table in sub.find_all(exp.Table):
            rel = self.relation(table)
            if rel is None or rel.columns is None:
                return True
            known |= {c.lower() for c in rel.columns}
        names = {c.name.lower() for c in sub.find_all(exp.Column)}
        return bool(names & written) or not names <= known

    @staticmethod
    def _equalities(tree: exp.Expression, target: set[str]) -> dict[str, frozenset[str]]:
        """Per source name, its lower-case columns set equal (WHERE, JOIN ... ON, ANDed) to a constant or a column
        of the written table."""
        constants = (exp.Literal, exp.Placeholder, exp.Parameter)
        conditions = [w.this for w in tree.find_all(exp.Where) if w.parent is tree]
        conditions += [
            j.args["on"]
            for j in nodes.own_nodes(tree)
            if isinstance(j, exp.Join) and isinstance(j.args.get("on"), exp.Expression)
        ]
        out: dict[str, set[str]] = {}
        for cond in conditions:
            for part in cond.flatten() if isinstance(cond, exp.And) else (cond,):
                part = part.unnest()
                if not isinstance(part, exp.EQ):
                    continue
                for col, other in ((part.this, part.expression), (part.expression, part.this)):
                    if not isinstance(col, exp.Column) or not col.table or col.table.lower() in target:
                        continue
                    if isinstance(other, constants) or (
                        isinstance(other, exp.Column) and other.table.lower() in target
                    ):
                        out.setdefault(col.table.lower(), set()).add(col.name.lower())
        return {k: frozenset(v) for k, v in out.items()}

    def _returned_rows(self, tree: exp.Update | exp.Delete) -> None:
        """``UPDATE/DELETE ... RETURNING`` returns the rows in the order the change reads them, which the stored
        order (or an index on a masked column) decides, and no ORDER BY can be added: refused unless it changes
        one row, named by a whole key (0303)."""
        found = self._written(tree)
        if found is None:
            return
        target, rel, pinned = found
        # a key every row the write reaches holds (an inheritance parent's holds for its own rows only: 0331)
        if any(k and k <= pinned for k in rel.keys):
            return
        if self.dialect == "postgres":
            key = _returned_key(tree, target, rel)
            if key is not None:
                # PostgreSQL takes the write as a data-modifying CTE: its rows handed out in key order (0330)
                self.plan.edits.append(Edit("returning-order", tree, tuple(nodes.column_sql(c, self.dialect)
                                                                                for c in key)))
                return
        shown = ", ".join(nodes.column_sql(c, self.dialect) for c in rel.key or ()) if rel.key else "its key"
        self._refuse(
            f"{tree.key.upper()} ... RETURNING returns the rows it changes in the order they are stored, which how "
            "wide their masked values are may decide",
            (f"return the key ({shown}) as a column of RETURNING, so the rows can be handed out in its order, or "
             if self.dialect == "postgres" and rel.key and _whole_key(rel) else "")
            + "change one row at a time by its key (WHERE id = ...), or SELECT the rows ORDER BY their key first, "
            "or leave RETURNING out, or ask for an unmask grant (masking.unmask)",
            firm=True,
        )

    # -- queries ---------------------------------------------------------------------------------
    def query(
        self, node: exp.Expression, ctes: dict[str, _Shape], parent: _Scope | None, need: bool
    ) -> _Shape:
        ctes = self._ctes(node, ctes, parent)
        if isinstance(node, exp.Subquery) and node.args.get("order") is not None:
            shape = self._parenthesised(node, ctes, parent, need)
        elif isinstance(node, exp.Subquery):
            # ``(SELECT id FROM t) LIMIT 2``: the cut outside needs the rows inside in a fixed order, which an
            # ORDER BY inside the parentheses gives (a second LIMIT there would not be allowed, an ORDER BY is)
            cut = any(node.args.get(k) is not None for k in _CUTS) and not nodes.with_ties(node)
            shape = self.query(node.this, ctes, parent, need or cut)
        elif isinstance(node, (exp.Union, exp.Intersect, exp.Except)):
            shape = self._set_operation(node, ctes, parent, need)
        elif isinstance(node, exp.Select):
            shape = self._select(node, ctes, parent, need)
        elif isinstance(node, (exp.Insert, exp.Update, exp.Delete)):
            shape = self._cte_write(node, ctes, parent)
        else:
            shape = _Shape(None, hazard=False)
        self._shapes[id(node)] = shape
        return shape

    def _cte_write(self, node: exp.Insert | exp.Update | exp.Delete, ctes: dict[str, _Shape],
                   parent: _Scope | None) -> _Shape:
        """A data-modifying CTE (PostgreSQL ``WITH d AS (UPDATE t ... RETURNING id) SELECT id FROM d``) is judged
        as the write it is when it stands alone: what it hands out row by row, the rows it locks, and the rows it
        inserts are put in key order or refused. Its RETURNING rows come in the order the write read them, which
        where masked values are stored decides: they are a source in that order, ordered by the key they return
        (or refused where the statement needs an order and they return none) (decision 0363)."""
        skip = set()
        if isinstance(node, exp.Insert) and isinstance(node.expression, (*nodes.QUERIES, exp.Subquery)):
            # the rows it inserts (serial ids, their stored order) follow the order its query reads them in
            self.query(node.expression, ctes, parent, need=True)
            skip.add(id(node.expression))
        self._nested_in(node, skip=skip)
        if not isinstance(node, (exp.Update, exp.Delete)):
            return _Shape(None, hazard=False)
        self._written_in_read_order(node)
        self._joined_picks(node)
        self._locked_in_key_order(node)
        found = self._written(node)
        if found is None:
            return _Shape(None, hazard=False)
        target, rel, pinned = found
        if any(k and k <= pinned for k in rel.keys):
            return _Shape(None, hazard=False)  # one row at most
        outs = _returned_outs(node, target, rel)
        key = _returned_key(node, target, rel)
        if outs is None or key is None:
            return _Shape(outs, hazard=True)
        names = [o.name for o in outs]
        return _Shape(outs, hazard=True, key=[names.index(c.lower()) for c in key])

    def _parenthesised(
        self, node: exp.Subquery, ctes: dict[str, _Shape], parent: _Scope | None, need: bool
    ) -> _Shape:
        """``(SELECT id, ssn FROM t) ORDER BY id DESC LIMIT 2``: the ORDER BY outside the parentheses is the
        query's own, and PostgreSQL refuses a second one inside (``multiple ORDER BY clauses not allowed``): an
        order is never added inside. The outer ORDER BY must already sort by the key's outputs."""
        shape = self.query(node.this, ctes, parent, need=False)
        if not shape.hazard or not (need or (nodes.limited(node) and not nodes.with_ties(node))):
            return shape
        order = node.args.get("order")
        keyed = shape.key is not None and shape.outs is not None
        by_position = [str(i + 1) for i in shape.key or ()] if keyed else None
        by_name = [shape.outs[i].name for i in shape.key or ()] if keyed and shape.outs is not None else None
        if not (
            (by_position is not None and self._ordered_by(order, by_position))
            or (by_name is not None and self._ordered_by(order, by_name))
        ):
            self._refuse(
                "the rows of a parenthesised query with its own ORDER BY or LIMIT come from a table whose read "
                "order may follow masked values, and governed_db adds no second ORDER BY to it",
                "ORDER BY columns that identify a row (a primary key) after the parentheses, or ask for an unmask "
                "grant (masking.unmask)",
            )
        return _Shape(shape.outs, False, shape.key)

    def _ctes(
        self, node: exp.Expression, ctes: dict[str, _Shape], parent: _Scope | None
    ) -> dict[str, _Shape]:
        with_ = node.args.get("with_") or node.args.get("with")
        if not isinstance(with_, exp.With):
            return ctes
        local = dict(ctes)
        for cte in with_.expressions:
            name = cte.alias_or_name.lower()
            local[name] = _Shape(None, hazard=True)  # a recursive reference to itself: unknown
            body = cte.this
            recursive = False
            if isinstance(body, exp.Union) and any(
                isinstance(t, exp.Table) and not t.args.get("db") and t.name.lower() == name
                for t in body.expression.find_all(exp.Table)
            ):
                # a recursive CTE: its own rows, as the step reads them, come from its anchor (and from steps
                # that read what the anchor read): they follow a masked index only when the anchor's may
                anchor = self.query(body.this, local, parent, need=False)
                local[name] = _Shape(None, hazard=anchor.hazard, recursive=anchor.hazard)
                recursive = True
            shape = self.query(cte.this, local, parent, need=False)
            if recursive and shape.hazard:
                shape = replace(shape, recursive=True)
            alias = cte.args.get("alias")
            renamed = [c for c in alias.columns] if isinstance(alias, exp.TableAlias) else []
            if renamed and shape.outs is not None and len(renamed) == len(shape.outs):
                shape = _Shape(
                    [
                        _Out(i.name.lower(), i, o.masked, o.redacted, varies=o.varies, held=o.held)
                        for i, o in zip(renamed, shape.outs, strict=True)
                    ],
                    shape.hazard,
                    shape.key,
                    recursive=shape.recursive,
                )
            local[name] = shape
        return local

    def _set_operation(
        self, node: exp.Expression, ctes: dict[str, _Shape], parent: _Scope | None, need: bool
    ) -> _Shape:
        if not isinstance(node, exp.Union) or node.args.get("distinct") is not False:
            self._deduplicated.update(id(leaf) for leaf in _set_leaves(node))
        left = self.query(node.this, ctes, parent, need=False)
        right = self.query(node.expression, ctes, parent, need=False)
        # subqueries of its own ORDER BY, LIMIT and OFFSET (``... UNION ALL SELECT 2 LIMIT (SELECT id FROM t)``)
        for sub in nodes.own_nodes(node, skip={id(node.this), id(node.expression)}):
            if isinstance(sub, (*nodes.QUERIES, exp.Subquery)):
                self.query(sub, ctes, parent, need=self._order_read(sub))
        hazard = left.hazard or right.hazard
        outs = None
        if left.outs is not None and right.outs is not None and len(left.outs) == len(right.outs):
            outs = [
                _Out(a.name, a.ident, nodes.either(a.masked, b.masked), a.redacted or b.redacted,
                     varies=a.varies or b.varies,
                     held=(left.walked and a.held) or (right.walked and b.held))
                for a, b in zip(left.outs, right.outs, strict=True)
            ]
        deduplicated = not isinstance(node, exp.Union) or node.args.get("distinct") is not False
        limited = nodes.limited(node)
        if hazard and (need or limited):
            if outs is not None and (deduplicated or all(o.masked is False for o in outs)):
                # rows that tie on every column are the same row to whoever reads them
                self._order(node, [str(i + 1) for i in range(len(outs))])
                hazard = False
            elif outs is not None and (clear := _keyed_clear(outs, left, right)):
                # ``SELECT id, name FROM t UNION ALL SELECT 0, 'x'``: each branch's rows differ in their clear
                # columns, which the ORDER BY sorts by; a masked one is never sorted by (decision 0320)
                self._order(node, [str(i + 1) for i in clear])
                hazard = False
            elif not deduplicated and (branch_orders := self._branch_orders(node)) is not None:
                # no key among the clear columns: each branch read in its own key order, one after the other
                # (PostgreSQL appends a UNION ALL's branches in turn; decision 0349)
                self.plan.edits.extend(branch_orders)
                hazard = False
            else:
                self._refuse(
                    "the rows of this set operation come from a table whose read order may follow masked "
                    "values, and governed_db found no key to order them by",
                    "select a key (id) of each table in every branch and ORDER BY it, or ask for an unmask grant",
                    firm=self.dialect == "postgres",  # run as written, they would come in stored order (0349)
                )
        key = list(range(len(outs))) if outs is not None and deduplicated else None
        branches = None if deduplicated or outs is None else (_keyed_clear(outs, left, right) or None)
        orders = None
        if hazard and not deduplicated and not limited:
            orders = (
                [Edit("order", node, tuple(str(i + 1) for i in branches))]
                if branches is not None
                else self._branch_orders(node)
            )
        return _Shape(outs, hazard, key, branch_key=branches, orders=orders, walked=left.walked or right.walked)

    def _branch_orders(self, node: exp.Expression) -> list[Edit] | None:
        """PostgreSQL: the edits that order each branch of a ``UNION ALL`` whose rows may come in an order masked
        values decide by that branch's own key (``(SELECT ... ORDER BY t.id) UNION ALL ...``): its rows then come
        branch after branch, each in key order. ``None`` where a branch cannot be ordered so (it groups, it has no
        key, or this is another engine, which may interleave or reorder the branches)."""
        if self.dialect != "postgres":
            return None
        edits: list[Edit] = []
        for leaf in _union_all_branches(node):
            shape = self._shapes.get(id(leaf))
            if shape is None:
                return None
            if not shape.hazard:
                continue
            inner = leaf.this if isinstance(leaf, exp.Subquery) else leaf
            if not isinstance(inner, exp.Select) or shape.node is not inner or shape.row_key is None:
                return None
            if nodes.limited(inner) or nodes.limited(leaf):
                return None
            if not self._ordered_by(inner.args.get("order"), shape.row_key):
                kind = "order" if isinstance(inner.parent, exp.Subquery) else "branch-order"
                edits.append(Edit(kind, inner, tuple(shape.row_key)))
        return edits

    def _select(self, node: exp.Select, ctes: dict[str, _Shape], parent: _Scope | None, need: bool) -> _Shape:
        if self.dialect == "postgres" and node.args.get("locks"):
            # FOR UPDATE/SHARE locks rows as they reach it: another session of the caller's sees (NOWAIT) which
            # it locked before waiting at a row held elsewhere, in a subquery, CTE or EXISTS too (rt17new)
            need = True
        scope = _Scope([], parent)
        seen: set[int] = set()
        from_ = node.args.get("from_") or node.args.get("from")
        items = ([from_.this] if isinstance(from_, exp.From) else []) + [
            j.this for j in node.args.get("joins") or () if isinstance(j, exp.Join)
        ]
        for item in items:
            seen.add(id(item))
            scope.sources.append(self._source(item, ctes, scope))
        # subqueries in expressions: a SQLite scalar subquery answers with its first row; ARRAY(...) keeps order
        for sub in nodes.own_nodes(node, skip=seen):
            if isinstance(sub, (*nodes.QUERIES, exp.Subquery)):
                self.query(sub, ctes, scope, need=self._order_read(sub))
        outs = self._outputs(node, scope)
        hazard = any(s.hazard for s in scope.sources)
        group = node.args.get("group")
        grouped = isinstance(group, exp.Group)
        aggregated = grouped or any(nodes.aggregate_at_top(p) for p in node.expressions)
        distinct = node.args.get("distinct")
        distinct_on = isinstance(distinct, exp.Distinct) and distinct.args.get("on") is not None
        plain_distinct = isinstance(distinct, exp.Distinct) and not distinct_on
        row_key = self._row_key(scope) if hazard else None
        if hazard and row_key is None and self._read_in_source_order(node, scope):
            hazard = False  # its one source comes in its key order now
        recursive = hazard and any(s.shape is not None and s.shape.recursive for s in scope.sources)
        if hazard and self.dialect == "mysql":
            self._representatives(node, scope, plain_distinct or id(node) in self._deduplicated)
        listed = (need and not aggregated) or nodes.limited(node)
        if recursive and ((listed and node.args.get("order") is None) or self._order_sensitive(node, True)):
            # its rows come as the recursion produced them: the anchor's and each step's in stored order (an
            # ORDER BY of the caller's sorts them; only rows tied under it keep that order, as 0320's unions)
            self._refuse(
                "a recursive WITH query reads a table whose stored order may follow masked values, and "
                "governed_db knows no key of its rows to order them by",
                "count or aggregate its rows without an order (count(*), sum of a column), or select from the "
                "table by its key without recursion, or ask for an unmask grant (masking.unmask)",
                firm=self.dialect == "postgres",
            )
        # masked columns grouped (or made DISTINCT) beside a key of their own row, which the predicate guard lets
        # through: they split no group, but a hash or sort over them orders the groups (decision 0283)
        beside = self._beside_keys(node, scope, group, plain_distinct)

        # a window over the groups reads them in the order the grouping made, which a masked value grouped beside
        # its key decides (a hash or sort over it): it numbers, picks or frames them by their key instead
        group_key = self._group_key(group, beside) if isinstance(group, exp.Group) and beside else None
        self._aggregates(node, scope, hazard, row_key, windowed=hazard or group_key is not None)
        self._merged_stand_ins(node, scope)
        if hazard:
            self._windows(node, scope, row_key)
            if self.dialect != "postgres":
                self._read_order_values(node, seen)
        elif group_key is not None:
            self._windows(node, scope, group_key)
        if (
            aggregated
            and self.dialect in ("mysql", "sqlite")
            and (hazard or self._masked_extreme(node, scope))
        ):
            self._loose_columns(node, scope)
        if hazard and distinct_on and isinstance(distinct, exp.Distinct):
            on = distinct.args["on"]
            lead = (
                []
                if node.args.get("order") is not None
                else [e.sql(dialect=self.dialect) for e in on.expressions]
            )
            self._order_by_key(node, lead, row_key, "DISTINCT ON")

        ordered = False
        # a cut WITH TIES keeps the same rows in any read order (all those tied with the last): only an order the
        # caller sees needs fixing there
        cut = nodes.limited(node) and not nodes.with_ties(node)
        if (hazard or beside) and (need or cut) and not distinct_on:
            if isinstance(group, exp.Group):
                keys = self._group_items(node, group, beside)
                if keys is None and self.dialect == "mysql" and not beside and _with_rollup(group):
                    # MySQL/MariaDB compute a WITH ROLLUP's groups from rows sorted by the grouped items, and hand
                    # them out in that order (MariaDB takes no ORDER BY beside it): no read order shows (0373)
                    ordered = True
                elif keys is None:
                    self._refuse(
                        "the groups of this query come from a table with an index on a masked column, so their "
                        "order would follow the masked values",
                        "ORDER BY the grouped columns, or ask for an unmask grant (masking.unmask)",
                    )
                else:
                    if keys and not self._ordered_by(node.args.get("order"), self._group_key(group, beside)):
                        self._order(node, keys)  # (already ordered by the grouped items by name: nothing to add)
                    ordered = True
            elif plain_distinct:
                if outs is None:
                    self._refuse(
                        "SELECT DISTINCT * over a table with an index on a masked column: its order would follow "
                        "the masked values",
                        "name the columns and ORDER BY them, or ask for an unmask grant (masking.unmask)",
                    )
                else:
                    self._order(node, [str(i + 1) for i in range(len(outs)) if i not in beside])
                    ordered = True
            elif not aggregated:
                if row_key is None and self._pushed_down(node, scope, need):
                    pass  # the one source's own query is ordered instead
                else:
                    self._order_by_key(node, [], row_key, "the result", outs)
                ordered = True
        if hazard and self.dialect == "postgres":
            # PostgreSQL computes a volatile output after the ORDER BY sorts the rows: one of the result's own,
            # ordered here by the key, is handed out in that order; anywhere else in read order (decision 0303)
            self._read_order_values(node, seen, sorted_outputs=ordered)
        single = aggregated and not grouped
        key: list[int] | None
        if single:
            key = []
        elif isinstance(group, exp.Group):
            key = self._output_positions(node, group, outs, beside)
        elif plain_distinct and outs is not None:
            key = [i for i in range(len(outs)) if i not in beside]
        else:
            key = self._key_outputs(scope, outs)
        plain = not (aggregated or grouped or isinstance(distinct, exp.Distinct))
        return _Shape(
            outs,
            (hazard or bool(beside)) and not ordered and not single,
            key,
            node if plain else None,
            row_key if plain else None,
            recursive=recursive and not single,
            # what an outer query reads of it decides: its own outputs count only there (MariaDB merges it)
            walked=any(self._walked(s, node, scope, {id(p) for p in node.expressions}) for s in scope.sources),
        )

    # -- FROM items ------------------------------------------------------------------------------
    def _source(self, item: exp.Expression, ctes: dict[str, _Shape], scope: _Scope) -> _Source:
        if isinstance(item, exp.Table) and isinstance(item.this, exp.Identifier):
            name = item.alias_or_name.lower()
            if not item.args.get("db") and item.name.lower() in ctes:
                return _Source(name, nodes.qualifier(item), shape=ctes[item.name.lower()])
            rel = self.relation(item)
            if rel is None:
                return _Source(name, nodes.qualifier(item), shape=_Shape(None, hazard=False))
            renamed = nodes.alias_columns(item)
            if renamed and rel.columns is not None:
                # ``t AS s(a, b)``: the key's columns go by their new names
                mapping = {c.lower(): renamed[i] for i, c in enumerate(rel.columns) if i < len(renamed)}
                outs = [
                    _Out(
                        mapping.get(c.lower(), c).lower(),
                        None,
                        c.lower() in rel.masked,
                        c.lower() in rel.redacted,
                        varies=c.lower() in rel.variants,
                    )
                    for c in rel.columns
                ]
                key = None
                if rel.key is not None:
                    names = [o.name for o in outs]
                    wanted = [mapping.get(k.lower(), k).lower() for k in rel.key]
                    key = [names.index(k) for k in wanted] if all(k in names for k in wanted) else None
                return _Source(name, nodes.qualifier(item), shape=_Shape(outs, rel.hazard, key))
            return _Source(name, nodes.qualifier(item), rel)
        if isinstance(item, (exp.Subquery, *nodes.QUERIES)):
            shape = self.query(
                item, ctes, scope.parent if not isinstance(item, exp.Lateral) else scope, need=False
            )
            return _Source(nodes.alias(item), nodes.alias_ident(item), shape=shape)
        if isinstance(item, exp.Lateral) and isinstance(item.this, (exp.Subquery, *nodes.QUERIES)):
            shape = self.query(item.this, ctes, scope, need=False)
            return _Source(nodes.alias(item), nodes.alias_ident(item), shape=shape)
        # a table function, VALUES, UNNEST...: rows made of its arguments, in its own order; whatever subqueries
        # it holds are planned on their own
        for sub in nodes.own_nodes(item):
            if isinstance(sub, (*nodes.QUERIES, exp.Subquery)):
                self.query(sub, ctes, scope, need=True)
        return _Source(nodes.alias(item), nodes.alias_ident(item), shape=_Shape(None, hazard=False))

    # -- outputs and keys ------------------------------------------------------------------------
    def _outputs(self, node: exp.Select, scope: _Scope) -> list[_Out] | None:
        outs: list[_Out] = []
        for proj in node.expressions:
            star = (
                proj
                if isinstance(proj, exp.Star)
                else proj.this
                if isinstance(proj, exp.Column) and isinstance(proj.this, exp.Star)
                else None
            )
            if star is not None:
                chosen = scope.sources
                if isinstance(proj, exp.Column) and proj.table:
                    chosen = [s for s in scope.sources if s.name == proj.table.lower()]
                for src in chosen:
                    rel, shape = src.relation, src.shape
                    if rel is not None and rel.columns is not None:
                        outs.extend(
                            _Out(
                                c.lower(),
                                None,
                                c.lower() in rel.masked,
                                c.lower() in rel.redacted,
                                (src.name, c.lower()),
                                c.lower() in rel.variants,
                                self._holds(src, c.lower()),
                            )
                            for c in rel.columns or ()
                        )
                    elif shape is not None and shape.outs is not None:
                        outs.extend(
                            _Out(o.name, o.ident, o.masked, o.redacted, (src.name, o.name), o.varies, o.held)
                            for o in shape.outs
                        )
                    else:
                        return None
                continue
            alias = proj.args.get("alias") if isinstance(proj, exp.Alias) else None
            ident = (
                alias
                if isinstance(alias, exp.Identifier)
                else proj.this
                if isinstance(proj, exp.Column) and isinstance(proj.this, exp.Identifier)
                else None
            )
            body = proj.this if isinstance(proj, exp.Alias) else proj
            origin = None
            if isinstance(body, exp.Column) and not isinstance(body.this, exp.Star):
                found, column = self._resolve(body, scope)
                origin = (found.name, column) if found is not None else None
            outs.append(
                _Out(
                    proj.alias_or_name.lower(),
                    ident,
                    self._masked(body, scope),
                    self._redacted(body, scope),
                    origin,
                    any(self._varies(c, scope) for c in body.find_all(exp.Column)),
                    all(self._holds(*self._resolve(c, scope)) for c in body.find_all(exp.Column)),
                )
            )
        return outs

    def _varies(self, col: exp.Column, scope: _Scope) -> bool:
        """May ``col`` hold different values that a collation holds equal (decision 0372)? Unknown: yes."""
        src, name = self._resolve(col, scope)
        if src is None:
            return True
        if src.relation is not None:
            return name in src.relation.variants
        outs = src.shape.outs if src.shape is not None else None
        found = [o for o in outs or () if o.name == name]
        return not found or any(o.varies for o in found)

    def _row_key(self, scope: _Scope) -> list[str] | None:
        """The qualified key columns of every source whose rows may come in a masked order (None: one has none)."""
        items: list[str] = []
        for src in scope.sources:
            if not src.hazard:
                continue
            found = self._key_items(src)
            if found is None:
                return None
            items.extend(found)
        return items

    def _key_items(self, src: _Source) -> list[str] | None:
        qualifier = src.qualifier.sql(dialect=self.dialect) + "." if src.qualifier is not None else ""
        if src.relation is not None:
            key = src.relation.key
            if key is None:
                return None
            return [qualifier + nodes.column_sql(c, self.dialect) for c in key]
        shape = src.shape
        if shape is None or shape.key is None or shape.outs is None:
            return None
        out = []
        for i in shape.key:
            o = shape.outs[i]
            if not o.name:
                return None
            ident = (
                o.ident.sql(dialect=self.dialect)
                if o.ident is not None
                else nodes.column_sql(o.name, self.dialect)
            )
            out.append(qualifier + ident)
        return out

    def _key_outputs(self, scope: _Scope, outs: list[_Out] | None) -> list[int] | None:
        """Positions of the outputs that carry every hazardous source's key, as plain columns (for an outer query)."""
        if outs is None:
            return None
        wanted: list[tuple[str, str]] = []
        for src in scope.sources:
            if not src.hazard:
                continue
            if src.relation is not None:
                if src.relation.key is None:
                    return None
                wanted.extend((src.name, k.lower()) for k in src.relation.key)
            elif src.shape is not None and src.shape.key is not None and src.shape.outs is not None:
                wanted.extend((src.name, src.shape.outs[i].name) for i in src.shape.key)
            else:
                return None
        found = []
        for w in wanted:
            at = [i for i, o in enumerate(outs) if o.origin == w]
            if not at or outs[at[0]].name in [o.name for j, o in enumerate(outs) if j != at[0]]:
                return None  # not passed through, or under a name another output shares
            found.append(at[0])
        return found

    def _beside_keys(
        self, node: exp.Select, scope: _Scope, group: exp.Expression | None, plain_distinct: bool
    ) -> set[int]:
        """GROUP BY items (``id`` of the node) or DISTINCT output positions that are masked columns grouped beside
        a whole key of their own table reference (decision 0283); the predicate guard refuses any other masked
        column grouped (unless the policy approved it)."""
        if isinstance(group, exp.Group):
            if nodes.grouping_sets(group):
                return set()
            items: list[tuple[int, exp.Expression]] = [(id(g), g) for g in group.expressions]
        elif plain_distinct:
            items = [(i, p.unalias()) for i, p in enumerate(node.expressions)]
        else:
            return set()
        found: list[tuple[int, _Source, str]] = []
        named: dict[int, set[str]] = {}
        for tag, item in items:
            if not isinstance(item, exp.Column) or isinstance(item.this, exp.Star):
                continue
            src, name = self._resolve(item, scope)
            if src is None or src.relation is None:
                continue
            found.append((tag, src, name))
            named.setdefault(id(src), set()).add(name)
        out: set[int] = set()
        for tag, src, name in found:
            rel = src.relation
            assert rel is not None
            if name not in rel.masked and name not in rel.redacted:
                continue
            if any(key <= named[id(src)] for key in rel.keys):
                out.add(tag)
        return out

    def _group_key(self, group: exp.Group, beside: set[int]) -> list[str]:
        """The grouped items other than the masked ones grouped beside their key, as expressions (a window's
        ORDER BY cannot name an output position): they hold that key, so they tell every group apart."""
        return [item.sql(dialect=self.dialect) for item in group.expressions if id(item) not in beside]

    def _group_items(self, node: exp.Select, group: exp.Group, beside: set[int]) -> list[str] | None:
        if nodes.grouping_sets(group):
            return None
        out = []
        for item in group.expressions:
            if id(item) in beside:
                continue  # follows from the key grouped beside it: ordering by it would sort by a masked value
            if isinstance(item, exp.Tuple) and not item.expressions:
                continue  # ``GROUP BY ()``: one group of every row, nothing to sort (``ORDER BY ()`` does not parse)
            pos = nodes.position_of(node, item)
            out.append(str(pos + 1) if pos is not None else item.sql(dialect=self.dialect))
        return out

    def _output_positions(
        self, node: exp.Select, group: exp.Group, outs: list[_Out] | None, beside: set[int]
    ) -> list[int] | None:
        if outs is None:
            return None
        found = [nodes.position_of(node, item) for item in group.expressions if id(item) not in beside]
        return None if any(p is None for p in found) else [p for p in found if p is not None]

    # -- masked values ---------------------------------------------------------------------------
    def _columns_in(self, expr: exp.Expression, scope: _Scope) -> Iterator[tuple[_Source | None, str, bool]]:
        """(source, column, whole row?) of each column ``expr`` reads in ``scope``; the source ``None`` when it
        cannot be told."""
        for node in nodes.own_nodes(expr, include_self=True):
            if isinstance(node, exp.Column):
                yield (*self._resolve(node, scope), isinstance(node.this, exp.Star))

    def _resolve(self, col: exp.Column, scope: _Scope) -> tuple[_Source | None, str]:
        name = col.name.lower()
        qualifier = col.table.lower()
        s: _Scope | None = scope
        while s is not None:
            if qualifier:
                for src in s.sources:
                    if src.name == qualifier:
                        return src, name
            else:
                hits = [src for src in s.sources if name in [c.lower() for c in src.columns() or ()]]
                if len(hits) == 1:
                    return hits[0], name
                if hits:
                    return None, name
                rows = [src for src in s.sources if src.name == name]
                if rows:
                    return rows[0], "*"
                if any(src.columns() is None for src in s.sources):
                    return None, name
            s = s.parent
        return None, name

    def _masked(self, expr: exp.Expression, scope: _Scope) -> bool | None:
        found: bool | None = False
        for sub in nodes.own_nodes(expr, include_self=True):
            if isinstance(sub, (*nodes.QUERIES, exp.Subquery)):
                shape = self._shapes.get(id(sub)) or self._shapes.get(
                    id(sub.this) if isinstance(sub, exp.Subquery) else 0
                )
                if shape is None or shape.outs is None:
                    found = None if found is False else found
                elif any(o.masked for o in shape.outs):
                    return True
        for src, column, whole in self._columns_in(expr, scope):
            if src is None:
                found = None if found is False else found
                continue
            flag = _column_masked(src, column, whole)
            if flag:
                return True
            if flag is None:
                found = None
        return found

    def _redacted(self, expr: exp.Expression, scope: _Scope) -> bool:
        """True when ``expr`` computes on a column masked whole for the identity (its result is masked whole)."""
        for src, column, whole in self._columns_in(expr, scope):
            if src is None or whole or column == "*":
                continue
            if src.relation is not None and column in src.relation.redacted:
                return True
            outs = src.shape.outs if src.shape is not None else None
            if outs is not None and any(o.name == column and o.redacted for o in outs):
                return True
        return False

    # -- merges measured by a length limit ------------------------------------------------------
    def _merged_stand_ins(self, node: exp.Select, scope: _Scope) -> None:
        """PostgreSQL fails a value merged past 1 GB (a jsonb past 256 MB): ``to_jsonb(ARRAY[full_name, city])``
        with 256 MB stored in ``city`` beforehand failed exactly when the name was long enough, and the stored text
        may be the masked value's own row's or another row's of its own table (``FROM t a, t b``), which decision
        0350 lets through (``full_name || ' (' || city || ')'`` must run). Such a merge is masked whole for the
        caller, so what it is made of shows only in its NULL-ness and its length: in a statement that only reads,
        each text column masked whole merged beside a part reading a column is replaced by a stand-in of the same
        NULL-ness, ``(CASE WHEN (full_name) IS NULL THEN NULL ELSE '' END)`` -- the answer the caller sees is the
        same, and its length no longer the value's (decision 0359)."""
        if self.dialect != "postgres" or not self._reads_only:
            return
        for merge in nodes.own_nodes(node):
            if not flow.merges(merge) or isinstance(merge, exp.AggFunc) or nodes.concatenates(merge):
                continue  # aggregates get 0161's stand-ins
            if any(nodes.concatenates(a) for a in _ancestors(merge, node)):
                continue  # inside one: its argument is stood in for whole already
            parts = [c for c in _parts(merge) if not isinstance(c, (exp.Literal, exp.Null, exp.Boolean))]
            reading = [p for p in parts if p.find(exp.Column) is not None]
            if len(reading) < 2:
                continue  # nothing stored beside it: a constant part is bounded by the statement (0285)
            for part in reading:
                for col in nodes.own_nodes(part, include_self=True):
                    if id(col) in self._stood_in:
                        continue
                    if isinstance(col, exp.Column) and not isinstance(col.this, exp.Star) and self._masked_text(
                        col, scope
                    ):
                        self._stood_in.add(id(col))
                        self.plan.edits.append(Edit("stand-in", col))
                    elif isinstance(col, exp.Subquery) and isinstance(col.parent, exp.Expression) and (
                        shape := self._shapes.get(id(col))
                    ) is not None and shape.outs is not None and len(shape.outs) == 1 and shape.outs[0].redacted:
                        # a scalar subquery's masked value (``ARRAY[(SELECT full_name ...), city]``)
                        self._stood_in.add(id(col))
                        self.plan.edits.append(Edit("stand-in", col))

    def _masked_text(self, col: exp.Column, scope: _Scope) -> bool:
        """``col`` is a text masked whole for the identity: of a table's column declared as a text, or a derived
        table's output masked whole (its type unknown: a text, as masked values mostly are)."""
        src, column = self._resolve(col, scope)
        if src is None:
            return False
        if src.relation is not None:
            return column in src.relation.texts
        outs = src.shape.outs if src.shape is not None else None
        return outs is not None and any(o.name.lower() == column and o.redacted for o in outs)

    # -- aggregates, windows, loose columns ------------------------------------------------------
    def _aggregates(
        self, node: exp.Select, scope: _Scope, hazard: bool, row_key: list[str] | None, windowed: bool = False
    ) -> None:
        """``windowed``: a window here reads rows in an order a masked value may decide (``hazard``, or groups
        made beside a masked column)."""
        for agg in nodes.own_nodes(node):
            window = isinstance(agg.parent, exp.Window)
            if nodes.concatenates(agg):
                data = nodes.data_args(agg, self.dialect)
                masked = [i for i, a in enumerate(data) if self._redacted(a, scope)]
                if masked:
                    # its result is masked whole: the value's length must not decide a cut or an error, nor
                    # its order
                    self.plan.edits.extend(Edit("stand-in", agg, (str(i),)) for i in masked)
                    continue
                if not hazard or not data or window:
                    if windowed and window and not masked:
                        self._refuse(
                            f"{nodes.name(agg)}() over a window reads rows in an order an index on a masked column "
                            "may decide",
                            "use it as a plain aggregate with ORDER BY a key, or ask for an unmask grant",
                        )
                    continue
                if nodes.has_distinct(agg):
                    items = [  # distinct values: ordered by themselves (JSON_ARRAYAGG(DISTINCT id): by id, 0373)
                        e.sql(dialect=self.dialect)
                        for a in data
                        for e in (a.expressions if isinstance(a, exp.Distinct) else [a])
                    ]
                elif row_key is None:
                    self._refuse(
                        f"{nodes.name(agg)}() concatenates rows in the order of an index on a masked column, and the "
                        "table has no key without a masked column to order them by",
                        f"add ORDER BY inside {nodes.name(agg)}() on columns that identify a row, or ask for an "
                        "unmask grant (masking.unmask)",
                    )
                    continue
                else:
                    items = row_key
                if not self.ordered_aggregates:
                    self._refuse(
                        f"{nodes.name(agg)}() concatenates rows in the order of an index on a masked column, and this "
                        "SQLite (before 3.44) cannot order an aggregate",
                        "aggregate in the application, or ask for an unmask grant (masking.unmask)",
                    )
                    continue
                if not self._ordered_by(nodes.agg_order(agg), items):
                    self.plan.edits.append(Edit("agg-order", agg, tuple(items)))
            elif hazard and not window and nodes.sums(agg) and not self._summed_as_stored(agg, scope):
                # a sum of floats rounds differently, and an integer sum overflows or not, depending on the order
                # the rows are added in: the order of an index on a masked column
                if row_key is not None and self._orders_any_aggregate() and not nodes.has_distinct(agg):
                    if not self._ordered_by(nodes.agg_order(agg), row_key):
                        self.plan.edits.append(Edit("agg-order", agg, tuple(row_key)))
                else:
                    self._refuse(
                        f"{nodes.name(agg)}() of a computed value adds rows in the order of an index on a masked "
                        "column, and its rounding (or integer overflow) depends on that order",
                        f"sum a column itself, add ORDER BY inside {nodes.name(agg)}() on columns that identify a "
                        "row (SQLite 3.44+), or ask for an unmask grant (masking.unmask)",
                    )
            elif hazard and not window and nodes.picks(agg) and not self._redacted(agg, scope):
                self._refuse(
                    f"{nodes.name(agg)}() picks a row by the order rows are read in, which an index on a masked "
                    "column may decide",
                    "use min() or max() of the column, or ask for an unmask grant (masking.unmask)",
                )

    def _read_order_values(self, node: exp.Select, skip: set[int], sorted_outputs: bool = False) -> None:
        """A value handed out row by row in read order (``ROWNUM()``, ``RAND(7)``, ``@n := @n + 1``, a sequence)
        numbers the rows in the order an index on a masked column reads them: MariaDB computes it before any
        ORDER BY sorts them, so no added order helps. PostgreSQL computes the outputs of a sorted query after the
        sort (``sorted_outputs``): there only those outside the outputs (a WHERE, an aggregate's argument, a
        window's) or of a query left unsorted count."""
        found = next((n for n in nodes.own_nodes(node, skip=skip) if nodes.read_order_value(n, self.dialect)), None)
        if found is not None and sorted_outputs:
            found = next(
                (n for n in nodes.own_nodes(node, skip=skip) if nodes.read_order_value(n, self.dialect)
                 and not _sorted_output(n, node)),
                None,
            )  # fmt: skip
        if found is not None:
            self._refuse(
                f"{found.sql(dialect=self.dialect)} is computed row by row in the order the rows are read, which an "
                "index on a masked column (on PostgreSQL, how wide the stored rows are) may decide (MariaDB computes "
                "it before sorting, PostgreSQL too outside a sorted result's own columns)",
                "number rows with ROW_NUMBER() OVER (ORDER BY the table's key), or compute it only in the result's "
                "own columns, or leave it out, or ask for an unmask grant (masking.unmask)",
                firm=True,
            )

    def _windows(self, node: exp.Select, scope: _Scope, row_key: list[str] | None) -> None:
        defined = {
            d.this.name.lower(): d
            for d in node.args.get("windows") or ()
            if isinstance(d, exp.Window) and isinstance(d.this, exp.Identifier)
        }
        for win in nodes.own_nodes(node):
            if not isinstance(win, exp.Window) or (
                win.args.get("over") is None and win.args.get("alias") is None
            ):
                continue
            fn = win.this
            spec = win.args.get("spec")
            base = win.args.get("alias")
            if spec is None and isinstance(base, exp.Identifier) and base.name.lower() in defined:
                # OVER w: the frame is the one WINDOW w AS (...) gives
                spec = defined[base.name.lower()].args.get("spec")
            rows_frame = (
                isinstance(spec, exp.WindowSpec) and str(spec.args.get("kind") or "").upper() == "ROWS"
            )
            whole_frame = (
                isinstance(spec, exp.WindowSpec)
                and str(spec.args.get("start") or "").upper() == "UNBOUNDED"
                and str(spec.args.get("end") or "").upper() == "UNBOUNDED"
            )
            order = win.args.get("order")
            if order is None and isinstance(base, exp.Identifier) and base.name.lower() in defined:
                order = defined[base.name.lower()].args.get("order")  # OVER w: the order WINDOW w AS (...) gives
            kind = "window-order"
            if isinstance(fn, nodes.POSITIONAL) or (
                isinstance(fn, exp.Anonymous) and str(fn.name).lower() in ("ntile", "row_number")
            ):
                needs = True
            elif isinstance(fn, nodes.FRAMED):
                needs = True
                if spec is None and order is None:
                    # ``last_value(id) OVER ()``: the frame is the whole partition; an ORDER BY alone would cut it
                    # to the rows up to the current one, so the whole frame is written beside it (decision 0320)
                    kind = "window-whole"
                elif not (rows_frame or whole_frame) and (order is not None or spec is None):
                    self._refuse(
                        f"{nodes.name(fn)}() over peers of a non-unique order reads rows in an order an index on a "
                        "masked column may decide",
                        "order the window by columns that identify a row and give it a ROWS frame, or ask for "
                        "an unmask grant (masking.unmask)",
                    )
                    continue
            elif nodes.sums(fn) and not self._summed_as_stored(fn, scope):
                # rounding or overflow depends on the order rows are added in, whatever the frame
                needs = True
                if not rows_frame and not (row_key is not None and self._ordered_by(order, row_key)):
                    self._refuse(
                        f"{nodes.name(fn)}() of a computed value over a window adds rows in an order an index on a "
                        "masked column may decide, and its rounding (or integer overflow) depends on that order",
                        "sum a column itself, or ORDER BY columns that identify a row inside OVER (...) with a ROWS "
                        "frame, or ask for an unmask grant (masking.unmask)",
                    )
                    continue
            else:
                # a frame of rows counts (and sums) the rows nearest in the order rows are read in: which rows
                # are at its edges follows an index on a masked column unless the frame is the whole partition
                needs = rows_frame and not (whole_frame and isinstance(fn, exp.Count))
            if not needs:
                continue
            named = isinstance(win.args.get("alias"), exp.Identifier) and not any(
                win.args.get(k) for k in ("partition_by", "order", "spec")
            )  # OVER w: its definition is elsewhere (WINDOW w AS ...), shared by others
            if row_key is None or (named and not self._ordered_by(order, row_key)):
                # a named window's definition is shared by every call naming it, and is not edited: refused
                # whatever makes the relations hazards, as it would run in storage order (decision 0320)
                self._refuse(
                    f"{nodes.name(fn)}() numbers or picks rows in an order an index on a masked column may decide",
                    "ORDER BY columns that identify a row inside OVER (...), or ask for an unmask grant",
                    firm=named,
                )
                continue
            if not self._ordered_by(order, row_key):
                self.plan.edits.append(Edit(kind, win, tuple(row_key)))

    def _summed_as_stored(self, agg: exp.Expression, scope: _Scope) -> bool:
        """Whether a sum adds a stored column as it is (``sum(amount)``): the caller chose no value that rounds
        or overflows by the order it is added in (a stored REAL column still may: docs/masking.md Limits)."""
        args = [nodes.unwrap(a) for a in nodes.data_args(agg, self.dialect)]
        if len(args) == 1 and isinstance(args[0], exp.Literal):
            return True  # one value added n times: every order gives the same
        if len(args) != 1 or not isinstance(args[0], exp.Column) or isinstance(args[0].this, exp.Star):
            return False
        src, name = self._resolve(args[0], scope)
        if src is None:
            return False
        if src.relation is not None:
            return True
        outs = src.shape.outs if src.shape is not None else None
        return outs is not None and any(o.name.lower() == name and o.origin is not None for o in outs)

    def _orders_any_aggregate(self) -> bool:
        """``sum(x ORDER BY k)``: SQLite 3.44+, PostgreSQL, DuckDB; MariaDB orders only GROUP_CONCAT."""
        return self.ordered_aggregates and self.dialect != "mysql"

    def _masked_extreme(self, node: exp.Select, scope: _Scope) -> bool:
        """SQLite's ``SELECT id, max(email)``: the bare column comes from the row holding the largest e-mail."""
        return self.dialect == "sqlite" and any(
            isinstance(n, (exp.Max, exp.Min)) and self._masked(n, scope) is not False
            for n in nodes.own_nodes(node)
        )

    def _loose_columns(self, node: exp.Select, scope: _Scope) -> None:
        """MySQL and SQLite return a bare column of an aggregate query from whichever row came first (SQLite: the
        row of its min/max): which row that is follows the order they are read in, or the masked value."""
        group = node.args.get("group")
        groups = list(group.expressions) if isinstance(group, exp.Group) else []
        aliases = {p.alias.lower() for p in node.expressions if isinstance(p, exp.Alias)}
        keyed = self._grouped_by_keys(scope, groups)
        parts = [(p, True) for p in node.expressions] + [
            (p, False) for p in (node.args.get("having"), node.args.get("order")) if p is not None
        ]
        for part, projection in parts:
            for col in nodes.bare_columns(part):
                if nodes.is_grouped(col, part, groups):
                    continue
                if not projection and not col.table and col.name.lower() in aliases:
                    continue  # HAVING n > 1 / ORDER BY n: an output column
                src, _ = self._resolve(col, scope)
                if src is not None and src.name in keyed:
                    continue
                self._refuse(
                    f"the column {col.sql(dialect=self.dialect)} is neither grouped nor aggregated, so it comes from "
                    "whichever row is read first (in an order an index on a masked column may decide), or from the "
                    "row holding the min()/max() of a masked value",
                    "GROUP BY it, or aggregate it (min(), max()), or ask for an unmask grant (masking.unmask)",
                )
                return

    def _representatives(self, node: exp.Select, scope: _Scope, deduplicated: bool) -> None:
        """MySQL/MariaDB keep one value of those a collation holds equal (``'Paris'``, ``'PARIS'``, ``'Paris '``
        under ``utf8mb4_general_ci``): a group's, a DISTINCT's or UNION's row, min()/max() -- the first read. Where
        a read may walk an index holding a masked column, which one that is follows the masked values (decision
        0372): such a text column is refused there."""
        sites: list[exp.Expression] = []
        if deduplicated:
            sites.extend(node.expressions)
        group = node.args.get("group")
        if isinstance(group, exp.Group):
            sites.extend(group.expressions)
        for n in nodes.own_nodes(node):
            if isinstance(n, (exp.Min, exp.Max)):
                sites.append(n)
            elif isinstance(n, exp.Distinct) and n.expressions and not isinstance(n.parent, exp.Count):
                sites.append(n)  # an aggregate's DISTINCT (GROUP_CONCAT, JSON_ARRAYAGG): count(DISTINCT) keeps none
        keyed = self._grouped_by_keys(scope, [
            c for c in (node.expressions if deduplicated else group.expressions if isinstance(group, exp.Group) else [])
            if isinstance(c, exp.Column)
        ])
        for site in sites:
            for col in site.find_all(exp.Column):
                if _as_bytes(col, site):
                    continue  # ``BINARY city``: texts equal as bytes only
                if not self._varies(col, scope):
                    continue
                src, _ = self._resolve(col, scope)
                if src is not None and src.name in keyed and not isinstance(site, (exp.Min, exp.Max, exp.Distinct)):
                    continue  # a key among the items: one row each, no value to choose
                if not any(self._walked(s, node, scope) for s in scope.sources):
                    continue  # no source read through a masked index: none of its rows' order follows a masked value
                self._refuse(
                    f"the column {col.sql(dialect=self.dialect)} is grouped, made DISTINCT or compared by min()/max() "
                    "under a collation that holds different texts equal ('Paris', 'PARIS', 'Paris '): the server "
                    "keeps the first one it reads, in an order an index on a masked column may decide",
                    "compare it as bytes (BINARY city, CAST(city AS BINARY)), or group by a key, or ask for an "
                    "unmask grant (masking.unmask)",
                )
                return

    def _read_of(
        self, node: exp.Select, scope: _Scope, skip: set[int] | None = None
    ) -> Iterator[tuple[_Source | None, str]]:
        """(source, column) of each column ``node`` reads but in the subtrees ``skip`` (``*``: every column)."""
        for col in nodes.own_nodes(node, skip=skip):
            if isinstance(col, exp.Column) and isinstance(col.this, exp.Star):
                for s in scope.sources:
                    if s.name == col.table.lower():
                        yield from ((s, c.lower()) for c in s.columns() or ["*"])
            elif isinstance(col, exp.Column):
                yield self._resolve(col, scope)
            elif isinstance(col, exp.Star) and col.parent is node:
                for s in scope.sources:
                    yield from ((s, c.lower()) for c in s.columns() or ["*"])

    def _holds(self, src: _Source | None, name: str) -> bool:
        """Does an index holding a masked column of ``src`` (or its key) hold its column ``name``?"""
        if src is None:
            return True
        rel = src.relation
        if rel is None:
            outs = src.shape.outs if src.shape is not None else None
            return outs is None or any(o.held for o in outs if o.name == name)
        return rel.risky is None or name in rel.risky or name in {k.lower() for k in rel.key or ()}

    def _walked(self, src: _Source, node: exp.Select, scope: _Scope, skip: set[int] | None = None) -> bool:
        """May ``src`` be read through an index holding a masked column, its rows (and those joined to them) coming
        in the masked values' order? Only if every column of it ``node`` reads (but the subtrees ``skip``) is in
        such an index or its key (a covering read); a view, or indexes unknown, may be; a derived table if what is
        read of it may be."""
        if not src.hazard:
            return False
        rel = src.relation
        if rel is None:
            # a derived table MariaDB merges into the query reads what the query reads of it
            shape = src.shape
            if shape is None or shape.outs is None:
                return True
            held_outs = {o.name for o in shape.outs if o.held}
            return shape.walked and all(
                name in held_outs for s, name in self._read_of(node, scope, skip) if s is src
            )
        if rel.risky is None:
            return True
        held = set(rel.risky) | {k.lower() for k in rel.key or ()}
        every = {c.lower() for c in rel.columns or ()}
        for col in nodes.own_nodes(node, skip=skip):
            if isinstance(col, exp.Column) and isinstance(col.this, exp.Star):
                if col.table.lower() == src.name and not every <= held:
                    return False  # ``t.*``: every column
            elif isinstance(col, exp.Column):
                owner, name = self._resolve(col, scope)
                if owner is src and name not in held:
                    return False
            elif isinstance(col, exp.Star) and col.parent is node and not every <= held:
                return False  # ``SELECT *``: every column
        return True

    def _grouped_by_keys(self, scope: _Scope, groups: list[exp.Expression]) -> set[str]:
        """Sources grouped by their whole key: one row per group, so a bare column of theirs is determined."""
        named = {(g.table.lower(), g.name.lower()) for g in groups if isinstance(g, exp.Column)}
        out = set()
        for src in scope.sources:
            key = src.relation.key if src.relation is not None else None
            if key and all((src.name, k.lower()) in named or ("", k.lower()) in named for k in key):
                out.add(src.name)
        return out

    # -- edits -----------------------------------------------------------------------------------
    def _order_by_key(
        self, node: exp.Expression, lead: list[str], row_key: list[str] | None, what: str,
        outs: list[_Out] | None = None,
    ) -> None:  # fmt: skip
        if row_key is None:
            if outs is not None and not lead and all(o.masked is False for o in outs) and outs:
                # no key to order by, but nothing masked is returned: rows that tie on every output are the same
                self._order(node, [str(i + 1) for i in range(len(outs))])
                return
            self._refuse(
                f"the order of {what} would follow an index on a masked column, and a table it reads has no key "
                "without a masked column to order by",
                "ORDER BY columns that identify a row (a primary key), or ask for an unmask grant (masking.unmask)",
            )
            return
        self._order(node, [*lead, *row_key])

    def _pushed_down(self, node: exp.Select, scope: _Scope, need: bool) -> bool:
        """``SELECT s.e FROM (SELECT email AS e FROM t) s`` / ``WITH c AS (...) SELECT * FROM c``: the one source
        returns no key to order by, so its own query is ordered by its tables' key instead. Every engine here
        streams a subquery's sorted rows through a plain outer query (PostgreSQL does not flatten a sorted
        subquery; MariaDB keeps a derived table's ORDER BY only with a LIMIT, so one is added that cuts
        nothing); anything more (a join, a window, an aggregate, a WHERE on a subquery's column) is refused."""
        if not need or len(scope.sources) != 1 or node.args.get("joins") or nodes.limited(node):
            return False
        if any(isinstance(n, exp.Window) for n in nodes.own_nodes(node)):
            return False
        return self._source_ordered(scope)

    def _source_ordered(self, scope: _Scope) -> bool:
        """The one source of ``scope``, a derived table or CTE, ordered by its own query's key (or a ``UNION ALL``
        without a key by its clear columns or branch by branch); False where it has no such order."""
        shape = scope.sources[0].shape
        if shape is not None and shape.node is None and shape.orders is not None:
            # a UNION ALL without a key: sorted by its clear columns, or each branch by its key (decision 0349);
            # MariaDB keeps a derived table's ORDER BY only with a LIMIT
            kept = "order-kept" if self.dialect == "mysql" else "order"
            self.plan.edits.extend(Edit(kept, e.node, e.items) if e.kind == "order" else e for e in shape.orders)
            return True
        if shape is None or shape.node is None or shape.row_key is None or nodes.limited(shape.node):
            return False
        if not self._ordered_by(shape.node.args.get("order"), shape.row_key):
            kept = "order-kept" if self.dialect == "mysql" else "order"
            self.plan.edits.append(Edit(kept, shape.node, tuple(shape.row_key)))
        return True

    def _read_in_source_order(self, node: exp.Select, scope: _Scope) -> bool:
        """PostgreSQL: an aggregate or a window over one derived table (or CTE) that returns no key of its rows
        (``array_agg(n) FROM (SELECT id % 7 n FROM t) s``, ``row_number() OVER () FROM (... UNION ALL ...) s``)
        reads them as the derived table hands them out: that table's own query is ordered by its key instead
        (PostgreSQL never flattens a sorted subquery, and a plain aggregate or window reads its input as it
        comes). Before, the planner refused softly and the text ran in stored order (rt17new)."""
        if self.dialect != "postgres" or len(scope.sources) != 1 or node.args.get("joins"):
            return False
        if not self._order_sensitive(node):
            return False
        return self._source_ordered(scope)

    @staticmethod
    def _order_sensitive(node: exp.Select, unordered: bool = False) -> bool:
        """A window, or an aggregate whose result follows the order its rows come in (``unordered``: one without
        an ORDER BY of its own)."""
        for n in nodes.own_nodes(node):
            window = isinstance(n, exp.Window)
            if not (window or nodes.concatenates(n) or nodes.sums(n) or nodes.picks(n)):
                continue
            if not unordered or (n.args.get("order") if window else nodes.agg_order(n)) is None:
                return True
        return False

    def _order(self, node: exp.Expression, items: list[str]) -> None:
        if self._ordered_by(node.args.get("order"), items):
            return
        if nodes.with_ties(node):
            # ``FETCH FIRST 2 ROWS WITH TIES`` keeps every row tied with the last: items added to its ORDER BY
            # would tie fewer rows and change the result (3 rows came back as 1), not just pick an order
            self._refuse(
                "FETCH ... WITH TIES keeps every row tied with the last one, and the order of the tied rows would "
                "follow an index on a masked column; a key added to its ORDER BY would keep fewer rows",
                f"order the rows outside (SELECT * FROM (...) s ORDER BY ..., {', '.join(items)}), or ask for an "
                "unmask grant (masking.unmask)",
            )
            return
        self.plan.edits.append(Edit("order", node, tuple(items)))

    def _ordered_by(self, order: exp.Expression | None, items: list[str]) -> bool:
        """True when ``order`` already sorts by every item (nothing to add)."""
        if not isinstance(order, exp.Order):
            return False
        have = set()
        for o in order.expressions:
            target = o.this if isinstance(o, exp.Ordered) else o
            have.add(nodes.norm(target.sql(dialect=self.dialect)))
            if isinstance(target, exp.Column) and not target.table:
                have.add("*." + target.name.lower())  # ORDER BY id: the key's column, however qualified
        return all(nodes.norm(i) in have or "*." + nodes.norm(i).rsplit(".", 1)[-1] in have for i in items)

    def _refuse(self, reason: str, remedy: str, firm: bool = False) -> None:
        if self.plan.refusal is None or (firm and not self.plan.firm):
            self.plan.refusal = (reason, remedy)
            self.plan.firm = firm


# -- helpers ---------------------------------------------------------------------------------------
def _as_bytes(col: exp.Column, site: exp.Expression) -> bool:
    """Is ``col`` compared as bytes in ``site`` (``BINARY col``, ``CAST(col AS BINARY)``, ``CONVERT(col USING
    binary)``), so that no two different values of it are equal?"""
    node: exp.Expr | None = col.parent
    while node is not None:
        if isinstance(node, exp.Cast):
            to = node.args.get("to")
            if isinstance(to, exp.DataType) and (
                to.this in (exp.DataType.Type.BINARY, exp.DataType.Type.VARBINARY)
                or str(to.args.get("kind") or "").lower() == "binary"
            ):
                return True
        if node is site:
            break
        node = node.parent
    return False


def _with_rollup(group: exp.Group) -> bool:
    """MySQL's ``GROUP BY a, b WITH ROLLUP`` (sqlglot keeps a bare ``Rollup`` beside the items): no ``CUBE``,
    ``GROUPING SETS`` or ``ROLLUP (...)`` of items."""
    rollup = group.args.get("rollup") or []
    return (
        bool(rollup)
        and all(isinstance(r, exp.Rollup) and not r.expressions for r in rollup)
        and not any(group.args.get(k) for k in ("cube", "grouping_sets", "all"))
        and not nodes.grouping_sets(exp.Group(expressions=list(group.expressions)))
    )


def _set_leaves(node: exp.Expression) -> list[exp.Expression]:
    """The SELECTs a set operation combines, through nested ones and parentheses."""
    while isinstance(node, exp.Subquery):
        node = node.this
    if isinstance(node, (exp.Union, exp.Intersect, exp.Except)):
        return [*_set_leaves(node.this), *_set_leaves(node.expression)]
    return [node]


def _correlated(sub: exp.Query) -> bool:
    """``sub`` (a query) may name a column of an enclosing query: a column qualified by a name none of its own
    sources go by, or, unless the table it reads directly may answer it, one not qualified at all."""
    # a table read under an alias goes by that alias only
    own = {t.alias_or_name.lower() for t in sub.find_all(exp.Table)} | {
        a.name.lower() for a in sub.find_all(exp.TableAlias) if a.name
    }
    direct = isinstance(sub, exp.Select) and isinstance(sub.args.get("from") or sub.args.get("from_"), exp.From)
    for col in sub.find_all(exp.Column):
        if col.table:
            if col.table.lower() not in own:
                return True
        elif not direct:
            return True
    return False


def _table_key(table: exp.Table) -> tuple[str, ...]:
    """The table a FROM item names, as written (catalog, schema, name; lower case)."""
    parts = (table.args.get(k) for k in ("catalog", "db", "this"))
    return tuple(str(p.name).lower() if isinstance(p, exp.Expression) else "" for p in parts)


def _statement_of(node: exp.Expression) -> exp.Expression | None:
    """The nearest query, UPDATE or DELETE around ``node``."""
    up = node.parent
    while up is not None and not isinstance(up, (*nodes.QUERIES, exp.Subquery, exp.Update, exp.Delete)):
        up = up.parent
    return up


def _written_tables(tree: exp.Expression) -> list[exp.Table]:
    """The tables an UPDATE or DELETE changes (their whole rows are read: no index of a few columns covers them)."""
    if isinstance(tree, exp.Update) and isinstance(tree.this, exp.Table):
        return [tree.this]
    if isinstance(tree, exp.Delete):
        named = [t for t in tree.args.get("tables") or () if isinstance(t, exp.Table)]
        return named or [t for t in (tree.this,) if isinstance(t, exp.Table)]
    return []


def _walked_index(scope: exp.Expression, table: exp.Table, rel: Relation, *, whole_row: bool) -> str | None:
    """The masked columns of ``rel``'s indexes (as text) when ``scope`` may read ``table`` through one of them:
    it names a column such an index holds (an assigned column of an UPDATE does not count), or, unless
    ``whole_row``, everything it reads of the table is in such an index and the key; ``None`` otherwise."""
    masked = ", ".join(sorted(rel.masked & rel.risky if rel.risky is not None else rel.masked)) or "a masked column"
    if rel.risky is None:
        return masked
    own = table.alias_or_name.lower()
    assigned = {
        id(e.this) for e in (scope.expressions if isinstance(scope, exp.Update) else ()) if isinstance(e, exp.EQ)
    }
    named = {
        c.name.lower() for c in scope.find_all(exp.Column)
        if id(c) not in assigned and (not c.table or c.table.lower() == own)
    }  # fmt: skip
    if named & rel.risky:
        return masked
    if whole_row or any(not isinstance(s.parent, exp.Count) for s in scope.find_all(exp.Star)):
        return None
    held = rel.risky | frozenset().union(*rel.keys)
    if not named <= held:
        return None
    # everything read is in an index on a masked column: even a list of keys (``id IN (1, 2, 3)``) is read
    # through it over a small table, in the masked values' order — unless the statement is sent FORCE INDEX
    # (PRIMARY), which :meth:`Planner._locked_in_read_order` adds then (decision 0383)
    return masked


def _listed_by_key(scope: exp.Expression, table: exp.Table, rel: Relation) -> bool:
    """Does ``scope``'s WHERE name ``table``'s rows by a list of whole keys (``id IN (2, 3)``, ``id = 1 OR id =
    2``), so that a read by PRIMARY looks them up in key order?"""
    where = scope.args.get("where")
    listed = _listed_columns(where.this if isinstance(where, exp.Where) else None, table)
    return any(k and k <= listed for k in (*rel.keys, *rel.unique))


def _listed_columns(where: exp.Expression | None, table: exp.Table) -> frozenset[str]:
    """Lower-case columns of ``table`` that ``where`` (its top-level AND) sets equal to a constant or to one of a
    list of constants (``id IN (2, 3)``): a key of them is read by lookups of its values, not a scan."""
    out = set(nodes.pinned_columns(where, table))
    names = {table.name.lower(), table.alias_or_name.lower()}
    for part in where.flatten() if isinstance(where, exp.And) else (where,) if where is not None else ():
        part = part.unnest()
        if isinstance(part, exp.Or):
            part = _or_as_list(part)
        col = part.this if isinstance(part, exp.In) else None
        if isinstance(col, exp.Column) and (not col.table or col.table.lower() in names) and part.expressions and all(
            isinstance(e, (exp.Literal, exp.Placeholder, exp.Parameter)) for e in part.expressions
        ):
            out.add(col.name.lower())
    return frozenset(out)


def _or_as_list(part: exp.Or) -> exp.Expression:
    """``id = 1 OR id = 2`` (each side a column equal to a constant, the same column throughout) as ``id IN (1,
    2)``, the list it is; ``part`` itself otherwise."""
    col: exp.Column | None = None
    values: list[exp.Expression] = []
    sides: list[exp.Expression] = [part]
    while sides:
        side = sides.pop(0).unnest()
        if isinstance(side, exp.Or):
            sides[:0] = [side.this, side.expression]
            continue
        if not isinstance(side, exp.EQ):
            return part
        pair = (side.this, side.expression)
        if isinstance(pair[1], exp.Column):
            pair = (pair[1], pair[0])
        c, v = pair
        if not isinstance(c, exp.Column) or (col is not None and (c.name.lower(), c.table.lower()) != (
            col.name.lower(), col.table.lower()
        )):
            return part
        col = c
        values.append(v)
    return exp.In(this=col, expressions=values) if col is not None else part


def _returned_outs(tree: exp.Update | exp.Delete, target: exp.Table, rel: Relation) -> list[_Out] | None:
    """The columns ``tree``'s RETURNING hands out, by the names PostgreSQL gives them, each marked masked when it
    is the written table's masked column passed through (unknown when computed); ``None`` when a star over other
    tables makes them unknown here."""
    returning = tree.args.get("returning")
    if not isinstance(returning, exp.Returning) or rel.columns is None:
        return None
    joined = any(tree.args.get(k) for k in ("from", "from_", "using", "joins"))
    names = {target.name.lower(), target.alias_or_name.lower()}
    outs: list[_Out] = []
    for proj in returning.expressions:
        inner = proj.this if isinstance(proj, exp.Alias) else proj
        if isinstance(inner, exp.Star) or (isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star)):
            if (isinstance(inner, exp.Column) and inner.table.lower() not in names) or (
                joined and isinstance(inner, exp.Star)
            ):
                return None
            outs.extend(_Out(c.lower(), None, c.lower() in rel.masked, c.lower() in rel.redacted) for c in rel.columns)
            continue
        ident = proj.args.get("alias") if isinstance(proj, exp.Alias) else None
        ident = ident.this if isinstance(ident, exp.TableAlias) else ident
        own = isinstance(inner, exp.Column) and (not inner.table or inner.table.lower() in names)
        if not isinstance(ident, exp.Identifier) and isinstance(inner, exp.Column):
            ident = inner.this if isinstance(inner.this, exp.Identifier) else None
        name = ident.this if isinstance(ident, exp.Identifier) and ident.quoted else proj.alias_or_name.lower()
        masked = (inner.name.lower() in rel.masked) if own else None
        redacted = own and inner.name.lower() in rel.redacted
        outs.append(_Out(name, ident if isinstance(ident, exp.Identifier) else None, masked, redacted))
    return outs


def _keyed_clear(outs: list[_Out], left: _Shape, right: _Shape) -> list[int]:
    """The positions of a ``UNION ALL``'s clear columns when they hold a key of each branch's rows (none else):
    sorted by them, only rows of different branches that agree on every clear column can tie."""
    clear = [i for i, o in enumerate(outs) if o.masked is False and not o.redacted]
    keys = [s.key if s.key is not None else s.branch_key for s in (left, right)]
    if clear and all(k is not None and set(k) <= set(clear) for k in keys):
        return clear
    return []


def _union_all_branches(node: exp.Expression) -> Iterator[exp.Expression]:
    """The branches of a ``UNION ALL`` (those of a nested ``UNION ALL`` too), in the order they are appended."""
    for side in (node.this, node.expression):
        if isinstance(side, exp.Union) and side.args.get("distinct") is False and not nodes.limited(side):
            yield from _union_all_branches(side)
        else:
            yield side


#: the clauses a parenthesised query may carry after its parentheses
_CUTS = ("order", "limit", "offset", "fetch")


def _fills_rows(tree: exp.Expression) -> bool:
    """INSERT ... SELECT and CREATE TABLE ... AS (a view's query is planned where the view is read)."""
    if isinstance(tree, exp.Insert):
        return True
    return isinstance(tree, exp.Create) and str(tree.args.get("kind") or "").upper() == "TABLE"


def _sorted_output(value: exp.Expression, select: exp.Select) -> bool:
    """``value`` is computed in one of ``select``'s outputs, outside any aggregate or window (after the sort)."""
    node: exp.Expr | None = value
    while node is not None and node.parent is not select:
        if isinstance(node, exp.Window) or (isinstance(node, exp.Expression) and nodes.aggregate(node)):
            return False
        node = node.parent
    return node is not None and node.arg_key == "expressions"


def _column_masked(src: _Source, column: str, whole: bool) -> bool | None:
    if src.relation is not None:
        if whole or column == "*":
            return bool(src.relation.masked)
        return column in src.relation.masked
    shape = src.shape
    if shape is None or shape.outs is None:
        return None
    if whole or column == "*":
        return nodes.any_of(o.masked for o in shape.outs)
    for o in shape.outs:
        if o.name == column:
            return o.masked
    return None


__all__ = ["Edit", "Plan", "Planner", "Relation"]

#: a row's location (PostgreSQL's ``ctid``, ``tableoid``; SQLite's ``rowid`` is a value), which orders rows as stored
def _ancestors(node: exp.Expression, stop: exp.Expression) -> Iterator[exp.Expression]:
    """``node``'s ancestors below ``stop``."""
    parent = node.parent
    while isinstance(parent, exp.Expression) and parent is not stop:
        yield parent
        parent = parent.parent


def _names_its_output(select: exp.Select) -> bool:
    """The names of ``select``'s outputs are seen: the statement's own result, a derived table's or a CTE's columns
    (not a compound's branch, nor a query inside EXISTS, IN or an expression)."""
    parent = select.parent
    if parent is None or isinstance(parent, (exp.CTE, exp.Insert, exp.Create)):
        return True
    return isinstance(parent, exp.Subquery) and isinstance(parent.parent, (exp.From, exp.Join))


def _aliased(call: exp.Expression, select: exp.Select) -> bool:
    """``call`` is part of an output of ``select`` that has a name of its own (``min(x) AS m``), or of none."""
    node: exp.Expr = call
    while node.parent is not None and node.parent is not select:
        node = node.parent
    return isinstance(node, exp.Alias) or not any(node is e for e in select.expressions)


def _parts(merge: exp.Expression) -> list[exp.Expression]:
    """The values ``merge`` builds one value of: its arguments (nested merges count as parts of their own)."""
    return [
        c for v in merge.args.values() for c in (v if isinstance(v, list) else [v]) if isinstance(c, exp.Expression)
    ]


_LOCATORS = frozenset({"ctid", "tableoid"})
#: SQLite's names of a rowid table's key (an INTEGER PRIMARY KEY is one too, named in its keys)
_ROWIDS = frozenset({"rowid", "_rowid_", "oid"})


def _whole_key(rel: Relation) -> bool:
    """``rel.key`` is a key every row read holds, and no row's location (0331)."""
    key = frozenset(c.lower() for c in rel.key or ())
    return bool(key) and not key & _LOCATORS and key in rel.keys


def _returned_key(tree: exp.Update | exp.Delete, target: exp.Table, rel: Relation) -> tuple[str, ...] | None:
    """A key of the written table (as stored) that ``tree``'s RETURNING hands out, each column plainly and under
    its own name, once: what the changed rows can be ordered by outside the write (0330). ``None`` otherwise
    (a key column missing, renamed, computed, or its name given to another output too)."""
    returning = tree.args.get("returning")
    if not isinstance(returning, exp.Returning) or rel.columns is None:
        return None
    joined = any(tree.args.get(k) for k in ("from", "from_", "using", "joins"))  # (a plain DELETE: using=False)
    names = {target.name.lower(), target.alias_or_name.lower()}
    outs: list[str] = []  # output names as PostgreSQL gives them
    plain: set[str] = set()  # of those, the ones that are the written table's column of that name
    for proj in returning.expressions:
        inner = proj.this if isinstance(proj, exp.Alias) else proj
        star = isinstance(inner, exp.Star) or (isinstance(inner, exp.Column) and isinstance(inner.this, exp.Star))
        if star:
            if isinstance(inner, exp.Column) and inner.table.lower() not in names:
                return None  # another table's columns: names unknown here
            if joined and isinstance(inner, exp.Star):
                return None  # every FROM/USING table's columns
            outs.extend(rel.columns)
            plain.update(rel.columns)
            continue
        ident = proj.args.get("alias") if isinstance(proj, exp.Alias) else None
        ident = ident.this if isinstance(ident, exp.TableAlias) else ident
        if isinstance(inner, exp.Column) and (not inner.table or inner.table.lower() in names):
            col = inner.this
            name = col.this if isinstance(col, exp.Identifier) and col.quoted else inner.name.lower()
            out = name
            if isinstance(ident, exp.Identifier):
                out = ident.this if ident.quoted else ident.this.lower()
            outs.append(out)
            if out == name:
                plain.add(name)
            continue
        if isinstance(ident, exp.Identifier):
            outs.append(ident.this if ident.quoted else ident.this.lower())
        else:
            outs.append(proj.output_name.lower() if proj.output_name else "?column?")
    # only a key that holds for every row the write reaches (never an inheritance parent's, whose children may
    # repeat it; never the columns of a view, nor ``ctid``, which is the stored order itself): rows tied on
    # anything less come in the order they were read (0331)
    real = [k for k in rel.keys if not k & _LOCATORS]
    candidates = [tuple(rel.key)] if rel.key and _whole_key(rel) else []
    candidates += [tuple(sorted(k)) for k in real]
    stored = {c.lower(): c for c in rel.columns}
    for key in candidates:
        cols = [stored.get(c.lower(), c) for c in key]
        if cols and all(c in plain and outs.count(c) == 1 for c in cols):
            return tuple(cols)
    return None
