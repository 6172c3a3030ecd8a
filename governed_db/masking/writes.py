"""Lineage of statements that write (INSERT, UPDATE, DELETE, MERGE, CREATE ... AS): what they copy where.

Every value written into a table (``SET a = ...``, ``INSERT ... SELECT``/``VALUES``, ``ON CONFLICT DO
UPDATE``, ``MERGE ... WHEN``) is a *copy* use, and every condition (``WHERE``, ``JOIN ... ON``, ``MERGE ...
ON``, ``WHEN ... AND``) a predicate use; ``RETURNING`` is the result. ``REPLACE INTO`` (opaque to sqlglot)
is re-read as the INSERT it is; ``DECLARE ... CURSOR FOR`` a query keeps what the query returns for a later
FETCH (:func:`trace_command`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlglot
import sqlglot.errors
from sqlglot import exp

from governed_db.masking.origins import (
    CONST,
    QUERY,
    Ctes,
    Lineage,
    Origin,
    Output,
    Scope,
    Source,
    Written,
    computed_columns,
    star_outputs,
)
from governed_db.masking.row_length import Copied, inserted_bytes, value_bytes
from governed_db.sql._sqlite_reading import parse_one

if TYPE_CHECKING:
    from governed_db.masking.lineage import Walker


def trace_write(w: Walker, tree: exp.Expression) -> Lineage:
    """Copies, predicates and RETURNING columns of one write statement, into ``w.lineage``."""
    outputs, exact = walk_write(w, tree, {})
    if outputs is not None:
        w.lineage.outputs, w.lineage.exact = outputs, w.lineage.exact and exact
    return w.lineage


def walk_write(w: Walker, tree: exp.Expression, ctes: Ctes) -> tuple[list[Output] | None, bool]:
    """The copies and predicates of one write (the statement itself, or a data-modifying CTE, with ``ctes`` in
    scope), into ``w.lineage.uses``; returns its RETURNING columns (``None`` without RETURNING) and whether their
    count is exact. A CTE's write returns its rows to the rest of the statement, which may filter, compute on or
    return them like any other table's (decision 0363)."""
    lin = w.lineage
    exact = True
    ctes = w.ctes_of(tree, ctes, None)
    target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    scope = Scope([])
    if isinstance(target, exp.Table):
        scope.sources.append(w.table_source(target, ctes))
    # MySQL's multi-table ``UPDATE s JOIN t ON ... SET`` / ``DELETE s FROM s JOIN t ON ...`` keep the joins on
    # the target table, and ``UPDATE ... FROM a JOIN b ON ...`` / ``DELETE ... USING a JOIN b ON ...`` on the
    # first item after FROM/USING, not on the statement: all are joins, whose ON decides which rows are written
    joins = [*(tree.args.get("joins") or ()), *((target.args.get("joins") or ()) if isinstance(target, exp.Table) else ())]
    # the first item's joins, and parenthesised join groups ``FROM (a JOIN b ON ...)`` anywhere, are flattened
    # by ``add_source`` into ``nested`` (MERGE's USING included: decision 0201)
    nested: list[exp.Join] = []
    for key in ("from_", "from", "using"):
        extra = tree.args.get(key)
        items = extra if isinstance(extra, list) else [extra]
        for item in items:
            node = item.this if isinstance(item, exp.From) else item
            if isinstance(node, exp.Expression):
                w.add_source(scope, node, ctes, None, nested)
    for join in joins:
        w.add_source(scope, join.this, ctes, scope, nested)
    for join in [*joins, *nested]:
        if join.args.get("on") is not None:
            lin.uses.append(("JOIN", w.expr(join.args["on"], scope, ctes)))
        for ident in join.args.get("using") or ():
            name = ident.name if isinstance(ident, exp.Identifier) else None
            lin.uses.append(("JOIN", w.expr(exp.column(name) if name else ident, scope, ctes)))
    query = tree.args.get("expression")
    if isinstance(query, QUERY):
        outs, _ = w.query(query, ctes, None)
        lin.uses.extend(("copy", o.origin) for o in outs)
    if isinstance(tree, exp.Update):
        _assignments(w, tree.expressions, scope, ctes)
    if isinstance(tree, exp.Insert) and isinstance(tree.args.get("conflict"), exp.OnConflict):
        # ON CONFLICT DO UPDATE / ON DUPLICATE KEY UPDATE: ``excluded.x`` / ``new.x`` are the values being
        # inserted (traced above as copies); anything else assigned is copied into the target
        target_src = scope.sources[0] if scope.sources else None
        inserted = [(n, CONST) for n, _ in target_src.columns] if target_src and target_src.columns else None
        upsert = Scope([*scope.sources, Source("excluded", None, inserted), Source("new", None, inserted)])
        _assignments(w, tree.args["conflict"].expressions, upsert, ctes)
        # ``DO UPDATE SET ... WHERE email = ?`` decides whether the row is updated (rowcount 1 or 0)
        for where in tree.args["conflict"].find_all(exp.Where):
            lin.uses.append(("WHERE", w.expr(where.this, upsert, ctes)))
    if isinstance(tree, exp.Merge):
        if tree.args.get("on") is not None:
            lin.uses.append(("JOIN", w.expr(tree.args["on"], scope, ctes)))
        whens = tree.args.get("whens")
        for when in whens.expressions if isinstance(whens, exp.Whens) else []:
            then = when.args.get("then")
            if when.args.get("condition") is not None:
                lin.uses.append(("WHERE", w.expr(when.args["condition"], scope, ctes)))
            if isinstance(then, exp.Update):
                _assignments(w, then.expressions, scope, ctes)
            elif isinstance(then, exp.Insert) and isinstance(then.expression, exp.Expression):
                _assignments(w, [then.expression], scope, ctes)
    where = tree.args.get("where")
    if where is not None:
        lin.uses.append(("WHERE", w.expr(where, scope, ctes)))
    if isinstance(tree, (exp.Update, exp.Delete)):
        # MySQL/MariaDB (and SQLite built with it) ``DELETE FROM t ORDER BY ssn LIMIT 1``: which row is written
        # is the masked values' order (a row of the caller's own holding a guess is deleted, or not); without
        # LIMIT the order still decides which row meets a duplicate key first
        w.orderings(tree.args.get("order"), scope, ctes)
        w.bounds(tree, scope, ctes)
    returning = tree.args.get("returning")
    if returning is None:
        return None, exact
    outputs: list[Output] = []
    # ``UPDATE ... FROM`` / ``DELETE ... USING``: PostgreSQL's ``RETURNING *`` gives the columns of every FROM
    # item after the target's (``FROM (SELECT id, full_name AS label ...) c`` returns c's ``label`` too)
    every = isinstance(tree, (exp.Update, exp.Delete)) and w.dialect in ("postgres", "postgresql")
    starred = scope.sources if every else scope.sources[:1]
    merges = any(j.args.get("using") or str(j.args.get("method") or "").upper() == "NATURAL" for j in [*joins, *nested])
    for proj in returning.expressions:
        if isinstance(proj, exp.Star):
            if not starred:
                exact = False
                outputs.append(Output("*", Origin("unknown")))
            if merges and len(starred) > 1:
                exact = False  # USING / NATURAL columns once, first: matched by name (decision 0229)
            for src in starred:
                if src.columns is None:
                    exact = False
                    outputs.append(Output("*", src.whole_row() if src.table else Origin("unknown")))
                else:
                    exact = exact and not computed_columns(src)
                    outputs.extend(star_outputs([Output(n, o) for n, o in src.columns]))
        else:
            outputs.append(Output(proj.alias_or_name, w.expr(proj, scope, ctes)))
    return outputs, exact


def _assignments(w: Walker, items: Iterable[exp.Expression], scope: Scope, ctes: Ctes) -> None:
    """``SET a = <value>`` / ``INSERT (...) VALUES (<values>)``: every value is copied into the target."""
    for item in items:
        value = item.expression if isinstance(item, exp.EQ) else item
        values = value.expressions if isinstance(value, exp.Tuple) else [value]
        for v in values:
            w.lineage.uses.append(("copy", w.expr(v, scope, ctes)))


_CURSOR_QUERY = re.compile(r"^\s*\S+\s.*?\bCURSOR\b.*?\bFOR\b(.*)$", re.I | re.S)
#: ``PREPARE name [(type, ...)] AS statement`` (PostgreSQL): the statement
_PREPARED_BODY = re.compile(r'^\s*(?:"[^"]+"|[\w$]+)\s*(?:\((?:[^()]|\([^()]*\))*\))?\s*AS\b(.*)$', re.I | re.S)
#: what a statement prepared by SQL keeps for a later EXECUTE (decision 0365's round, 0363)
PREPARED_USE = "a prepared statement (EXECUTE would return it unmasked)"
#: what ``EXECUTE`` (``CREATE TABLE ... AS EXECUTE``) returns: a prepared statement's rows, untraced here
EXECUTE_USE = "a prepared statement's rows, which EXECUTE returns where lineage does not follow them"


def trace_command(w: Walker, tree: exp.Command, dialect: str) -> Lineage:
    """Statements sqlglot keeps opaque whose data flow matters: ``REPLACE INTO`` (SQLite, MariaDB), which
    writes like an INSERT, and ``DECLARE ... CURSOR FOR query`` (PostgreSQL), whose rows a later FETCH returns
    where no lineage follows them. What cannot be re-read exactly is traced as blind (fail closed)."""
    lin = w.lineage
    word = str(tree.this).upper()
    body = tree.expression.this if isinstance(tree.expression, exp.Literal) else None
    if word == "EXECUTE" and dialect in ("postgres", "postgresql"):
        # ``EXECUTE name(...)``: the rows of a statement prepared earlier (by PREPARE, or by the driver under a
        # name such as ``_pg3_0``), which lineage does not follow from here (decision 0363)
        lin.blind = True
        lin.uses.append((EXECUTE_USE, Origin("unknown")))
        return lin
    if word == "PREPARE" and dialect in ("postgres", "postgresql") and isinstance(body, str):
        return _trace_prepared(w, body, dialect)
    if word not in ("REPLACE", "DECLARE") or not isinstance(body, str):
        return lin
    try:
        if word == "REPLACE":
            into = body.lstrip()[:4].upper() == "INTO"
            verb = "INSERT OR REPLACE" if dialect == "sqlite" else "INSERT"
            parsed = parse_one(f"{verb} {'' if into else 'INTO '}{body}", dialect)
            if isinstance(parsed, exp.Insert):
                trace_write(w, parsed)
                record_writes(w, parsed)
                inserted = {x.table for x in lin.writes if x.kind == "insert"}
                deleted = {x.table for x in lin.writes if x.kind == "delete"}
                lin.writes.extend(Written(t, "delete", None) for t in sorted(inserted - deleted))
                return lin
        else:
            found = _CURSOR_QUERY.match(body)
            query = parse_one(found.group(1), dialect) if found else None
            if isinstance(query, QUERY):
                outs, exact = w.query(query, {}, None)
                lin.uses.extend(("a cursor (FETCH would return it unmasked)", o.origin) for o in outs)
                if not exact:
                    lin.uses.append(("a cursor (FETCH would return it unmasked)", Origin("unknown")))
                return lin
    except sqlglot.errors.SqlglotError:
        pass
    lin.blind = True  # what it reads is unknown: any lost value in it may be a masked one
    lin.uses.append(("copy", Origin("unknown")))
    return lin


def _trace_prepared(w: Walker, body: str, dialect: str) -> Lineage:
    """``PREPARE name AS <statement>`` is judged as the statement it prepares (its conditions, copies and writes),
    and whatever it would return counts as kept: a later ``EXECUTE name`` (or ``CREATE TABLE ... AS EXECUTE
    name``) returns those rows where no lineage follows them, as a SQL cursor's FETCH does (decision 0363)."""
    lin = w.lineage
    found = _PREPARED_BODY.match(body)
    try:
        parsed = parse_one(found.group(1), dialect) if found else None
    except sqlglot.errors.SqlglotError:
        parsed = None
    if isinstance(parsed, QUERY):
        outs, exact = w.query(parsed, {}, None)
        lin.uses.extend((PREPARED_USE, o.origin) for o in outs)
        if not exact:
            lin.uses.append((PREPARED_USE, Origin("unknown")))
        return lin
    if isinstance(parsed, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
        record_writes(w, parsed)
        returned, exact = walk_write(w, parsed, {})
        lin.uses.extend((PREPARED_USE, o.origin) for o in returned or ())
        if not exact:
            lin.uses.append((PREPARED_USE, Origin("unknown")))
        return lin
    lin.blind = True  # a statement that cannot be read (or another PREPARE's body): what it reads is unknown
    lin.uses.append(("copy", Origin("unknown")))
    return lin


# -- what each write changes (for the constraints that compare written values with other rows) -----------------
_WRITES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Copy)


def record_writes(w: Walker, tree: exp.Expression) -> None:
    """Every table ``tree`` changes, and which of its columns get a value, into ``w.lineage.writes``: the
    statement itself, data-modifying CTEs, the branches of a MERGE and PostgreSQL/DuckDB ``COPY ... FROM``."""
    for node in tree.find_all(*_WRITES):
        if isinstance(node, (exp.Insert, exp.Update)) and isinstance(node.parent, exp.When):
            continue  # a MERGE branch: written with its MERGE below
        if isinstance(node, exp.Insert):
            _insert_writes(w, node)
        elif isinstance(node, exp.Update):
            _update_writes(w, node)
        elif isinstance(node, exp.Delete):
            _delete_writes(w, node)
        elif isinstance(node, exp.Merge):
            _merge_writes(w, node)
        elif node.args.get("kind") is True:  # COPY t FROM ...: rows inserted, every listed column given
            target = node.this.this if isinstance(node.this, exp.Schema) else node.this
            if isinstance(target, exp.Table):
                key, cols = w.columns_of(target)
                listed = _listed(node.this)
                names = listed if listed is not None else cols
                w.lineage.writes.append(Written(key, "insert", frozenset(names) if names is not None else None))


def _listed(node: exp.Expression) -> list[str] | None:
    """``t (a, b)``: the column list of an INSERT/COPY target, lower case; ``None`` without one."""
    if isinstance(node, exp.Schema) and node.expressions:
        return [e.name.lower() for e in node.expressions]
    return None


def is_default(value: exp.Expression) -> bool:
    """The word DEFAULT where a value goes (sqlglot reads it as a variable, or in MySQL's ``SET x = DEFAULT`` as
    a column named DEFAULT: a reserved word no column can be named unquoted)."""
    while isinstance(value, (exp.Paren, exp.Alias)):
        value = value.this
    if isinstance(value, exp.Var):
        return value.name.upper() == "DEFAULT"
    return (
        isinstance(value, exp.Column)
        and not value.table
        and isinstance(value.this, exp.Identifier)
        and not value.this.quoted
        and value.name.upper() == "DEFAULT"
    )


def _given(value: exp.Expression) -> bool:
    """Whether a written value is one at all: NULL and DEFAULT compare equal to no stored value (a DEFAULT that
    is a value is told by the catalog: ``Written.defaulted``)."""
    while isinstance(value, (exp.Paren, exp.Alias)):
        value = value.this
    return not isinstance(value, exp.Null) and not is_default(value)


def _defaulted(values: exp.Expression | None, names: list[str] | None, every: list[str] | None) -> frozenset[str]:
    """The columns an INSERT gives their DEFAULT: by the word in a VALUES row, or by leaving them out of its
    column list (``every``: the table's columns, when known)."""
    found: set[str] = set()
    if names is not None and every is not None:
        found |= {c.lower() for c in every} - set(names)
    if isinstance(values, exp.Tuple):
        values = exp.Values(expressions=[values])
    if isinstance(values, exp.Values) and names is not None:
        rows = [r.expressions if isinstance(r, exp.Tuple) else [r] for r in values.expressions]
        found |= {n for i, n in enumerate(names) if any(i < len(r) and is_default(r[i]) for r in rows)}
    return frozenset(found)


def _inserted(values: exp.Expression | None, names: list[str] | None, by_name: bool = False) -> frozenset[str] | None:
    """The columns of ``names`` an INSERT's VALUES/SELECT gives a value (by position, or by name for DuckDB's
    ``INSERT ... BY NAME``); ``None`` when they cannot be told."""
    if isinstance(values, exp.Tuple):
        values = exp.Values(expressions=[values])
    if by_name and isinstance(values, exp.Select):
        if any(isinstance(p, exp.Star) or p.find(exp.Star, exp.Columns) for p in values.expressions):
            return None
        return frozenset(p.alias_or_name.lower() for p in values.expressions if _given(p))
    if names is None:
        return None
    if isinstance(values, exp.Values):
        rows = [r.expressions if isinstance(r, exp.Tuple) else [r] for r in values.expressions]
        return frozenset(n for i, n in enumerate(names) if any(i < len(r) and _given(r[i]) for r in rows))
    if isinstance(values, exp.Select) and not any(
        isinstance(p, exp.Star) or p.find(exp.Star, exp.Columns) for p in values.expressions
    ):
        items = values.expressions
        return frozenset(n for i, n in enumerate(names) if i < len(items) and _given(items[i]))
    return frozenset(names)  # a set operation, a subquery, SELECT *: every listed column may get a value


def _insert_writes(w: Walker, node: exp.Insert) -> None:
    target = node.this.this if isinstance(node.this, exp.Schema) else node.this
    if not isinstance(target, exp.Table):
        return
    key, cols = w.columns_of(target)
    listed = _listed(node.this)
    names = listed if listed is not None else ([c.lower() for c in cols] if cols is not None else None)
    given: frozenset[str] | None = frozenset()
    every = [c.lower() for c in cols] if cols is not None else None
    defaulted = frozenset(every or ())  # INSERT ... DEFAULT VALUES gives no value but the defaults
    if not node.args.get("default"):
        given = _inserted(node.expression, names, bool(node.args.get("by_name")))
        defaulted = _defaulted(node.expression, names, every)
    w.lineage.writes.append(Written(key, "insert", given, defaulted=defaulted))
    if str(node.args.get("alternative") or "").upper() == "REPLACE":
        w.lineage.writes.append(Written(key, "delete", None))  # INSERT OR REPLACE deletes the rows in its way
    conflict = node.args.get("conflict")
    if isinstance(conflict, exp.OnConflict) and conflict.expressions:
        # ON CONFLICT DO UPDATE / ON DUPLICATE KEY UPDATE: an UPDATE of the row in the way
        _assigned(w, conflict.expressions, {"": (key, cols)}, key, excluded=inserted_bytes(node.expression))


def _update_writes(w: Walker, node: exp.Update) -> None:
    target = node.this
    if not isinstance(target, exp.Table):
        return
    # SQLite: a column copied from a table the statement names is bounded by its longest stored value, read when it
    # runs (decision 0413); a CTE may share a table's name, so none is resolved in a statement that has one
    spelled: dict[str, tuple[str, ...]] | None = {} if w.dialect == "sqlite" and node.find(exp.CTE) is None else None
    tables = _tables_in(w, target, spelled=spelled)
    for key in ("from_", "from"):
        extra = node.args.get(key)
        for item in extra if isinstance(extra, list) else [extra]:
            inner = item.this if isinstance(item, exp.From) else item
            if isinstance(inner, exp.Table):
                tables.update(_tables_in(w, inner, target=False, spelled=spelled))
            elif item is not None and spelled is not None:
                spelled = None  # a subquery or VALUES among the sources: its columns have no stored values to read
    default = w.columns_of(target)[0]
    _assigned(w, node.expressions, tables, default, multi=bool(target.args.get("joins")), spelled=spelled)


def _tables_in(
    w: Walker, table: exp.Table, target: bool = True, spelled: dict[str, tuple[str, ...]] | None = None
) -> dict[str, tuple[str, list[str] | None]]:
    """Alias (and name) -> (table key, columns) of ``table`` and the tables joined to it; a write's target also
    under ``""``, where the unqualified names of its SET belong. ``spelled`` gathers alias -> the table as
    written, by its parts (a table function or subquery joined: under ``""``, which no column resolves through)."""
    out: dict[str, tuple[str, list[str] | None]] = {}
    for i, node in enumerate([table, *(j.this for j in table.args.get("joins") or ())]):
        if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
            if spelled is not None:
                spelled[""] = ()
            continue
        found = w.columns_of(node)
        out[node.name.lower()] = found
        out[node.alias_or_name.lower()] = found
        if spelled is not None:
            spelled[node.alias_or_name.lower()] = tuple(p.name for p in node.parts)
        if i == 0 and target:
            out[""] = found
    return out


def _assigned(
    w: Walker,
    items: Iterable[exp.Expression],
    tables: dict[str, tuple[str, list[str] | None]],
    default: str,
    multi: bool = False,
    excluded: tuple[int | None, bool] | None = None,
    spelled: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """``SET a = v, t.b = v``: one update per table written, with the columns given a value and those set at
    all (NULL included), and how long its values may be. An unqualified column of a MySQL multi-table UPDATE
    belongs to whichever joined table has it (any, when unknown)."""
    given: dict[str, set[str] | None] = {}
    touched: dict[str, set[str] | None] = {}
    defaulted: dict[str, set[str]] = {}
    grows: int | None = 0
    sized = False
    copies: list[tuple[str, tuple[str, ...], str]] = []
    copied = None if spelled is None else _copies_into(tables, spelled, copies)
    for item in items:
        left = item.this if isinstance(item, exp.EQ) else None
        value = item.expression if isinstance(item, exp.EQ) else None
        own = left.name.lower() if isinstance(left, exp.Column) else ""
        n, p = (None, False) if value is None else value_bytes(value, excluded, own, copied)
        grows, sized = (None if grows is None or n is None else grows + n), sized or p
        targets = left.expressions if isinstance(left, exp.Tuple) else [left]
        for col in targets:
            if not isinstance(col, exp.Column) or isinstance(col.this, exp.Star):
                given[default] = touched[default] = None  # not a plain column: any column of the target may change
                continue
            name = col.name.lower()
            qualifier = col.table.lower()
            if qualifier and qualifier in tables:
                owners = [tables[qualifier][0]]
            elif multi:
                owners = [k for k, cols in tables.values() if cols is None or name in (c.lower() for c in cols)]
            else:
                owners = [default]
            has_value = value is None or isinstance(left, exp.Tuple) or _given(value)
            for owner in owners or [default]:
                _add(touched, owner, name)
                if has_value:
                    _add(given, owner, name)
                else:
                    given.setdefault(owner, set())
                if value is not None and is_default(value):
                    defaulted.setdefault(owner, set()).add(name)
    for owner, columns in touched.items():
        values = given.get(owner, set())
        w.lineage.writes.append(
            Written(
                owner,
                "update",
                None if values is None else frozenset(values),
                None if columns is None else frozenset(columns),
                frozenset(defaulted.get(owner, ())),
                grows,
                sized,
                tuple(dict.fromkeys(copies)) if grows is not None else (),
            )
        )


def _copies_into(
    tables: dict[str, tuple[str, list[str] | None]],
    spelled: dict[str, tuple[str, ...]],
    found: list[tuple[str, tuple[str, ...], str]],
) -> Copied:
    """Resolves a column an UPDATE copies to a stored column of a table it names, as SQLite does (qualified by
    alias or name; unqualified, the one table that has it), gathering it in ``found``; anything else (a schema
    qualifier, a name two tables have, ``rowid``, a table function among the sources) stays unresolved."""

    def copied(col: exp.Column) -> bool:
        if col.args.get("db") or "" in spelled:
            return False
        name = col.name.lower()
        qualifier = col.table.lower()
        aliases = [qualifier] if qualifier else list(dict.fromkeys(a for a in spelled if a))
        hits = [a for a in aliases if a in spelled and a in tables and name in (c.lower() for c in tables[a][1] or ())]
        if len({spelled[a] for a in hits}) != 1 or (not qualifier and len(hits) != 1):
            return False
        key, cols = tables[hits[0]]
        found.append((key, spelled[hits[0]], next(c for c in cols or () if c.lower() == name)))
        return True

    return copied


def _add(found: dict[str, set[str] | None], owner: str, name: str) -> None:
    current = found.setdefault(owner, set())
    if current is not None:
        current.add(name)


def _delete_writes(w: Walker, node: exp.Delete) -> None:
    target = node.this
    if not isinstance(target, exp.Table):
        return
    tables = _tables_in(w, target)
    keys: list[str] = []
    for named in node.args.get("tables") or ():  # MySQL ``DELETE s, c FROM s JOIN t c ...``: by name or alias
        if isinstance(named, exp.Table):
            found = tables.get(named.name.lower())
            key = found[0] if found is not None else w.columns_of(named)[0]
            keys.extend([key] if key not in keys else [])
    for key in keys or [tables[""][0]]:
        w.lineage.writes.append(Written(key, "delete", None))


def _merge_writes(w: Walker, node: exp.Merge) -> None:
    target = node.this
    if not isinstance(target, exp.Table):
        return
    key, cols = w.columns_of(target)
    whens = node.args.get("whens")
    for when in whens.expressions if isinstance(whens, exp.Whens) else []:
        then = when.args.get("then")
        if isinstance(then, exp.Update):
            _assigned(w, then.expressions, {"": (key, cols), target.alias_or_name.lower(): (key, cols)}, key)
        elif isinstance(then, exp.Insert):
            listed = [c.name.lower() for c in then.this.expressions] if isinstance(then.this, exp.Tuple) else None
            names = listed if listed is not None else ([c.lower() for c in cols] if cols is not None else None)
            values = then.expression if isinstance(then.expression, exp.Expression) else None
            w.lineage.writes.append(Written(key, "insert", _inserted(values, names) if values is not None else None))
        else:  # THEN DELETE (and anything sqlglot keeps as a word)
            w.lineage.writes.append(Written(key, "delete", None))
