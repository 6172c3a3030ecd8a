"""Whether a PostgreSQL statement that reads row counts of the catalog can read those of a TOAST relation.

PostgreSQL stores a long value (over about 2 kB) out of line, as chunks of at most ~2,000 of its stored bytes, one
row each in the table's TOAST relation (``pg_toast.pg_toast_<oid>``). The relation's row counts are then the number
of chunks: ``n_live_tup`` of ``pg_stat_all_tables`` for it (current as soon as the inserting transaction ends),
``pg_stat_get_live_tuples(reltoastrelid)``, ``reltuples`` after a vacuum, ``idx_tup_fetch`` of its index after a
read of the value. They tell how long a masked value is as stored — compressed, so how repetitive its text is too
(decision 0416). Reading the relation itself is refused already (decision 0272).

The views an application's monitoring reads (``pg_stat_user_tables``, ``pg_stat_user_indexes``) leave TOAST
relations out; ``pg_class`` and the ``_all_``/``_sys_`` views list them. A statement over one of those reaches no
TOAST relation when its WHERE names the relation (``oid = 't'::regclass``, ``relname = 't'``), its schema
(``schemaname = 'public'``) or a kind other than TOAST (``relkind = 'r'``) by a literal; a row-count function reaches
none when it is given a relation by name (``pg_stat_get_live_tuples('t'::regclass)``). Anything else — a statement
that mentions TOAST at all (``reltoastrelid``, ``pg_toast``), an oid computed or given as a number — may reach one.
"""

from __future__ import annotations

from sqlglot import exp

#: catalogs and statistics views whose rows include TOAST relations (and their indexes)
TOAST_LISTING = frozenset(
    {"pg_class", "pg_stat_all_tables", "pg_stat_sys_tables", "pg_stat_xact_all_tables", "pg_stat_xact_sys_tables",
     "pg_stat_all_indexes", "pg_stat_sys_indexes"}
)  # fmt: skip
#: columns that, equal to a text literal, name a relation or a schema
_NAME_COLUMNS = frozenset({"relname", "schemaname", "nspname", "indexrelname"})
#: columns that, equal to a literal cast to ``regclass``/``regnamespace``, name a relation or a schema
_OID_COLUMNS = frozenset({"oid", "relid", "relnamespace", "indexrelid"})
_NAMING_TYPES = frozenset({"regclass", "regnamespace"})


def reaches_toast(tree: exp.Expression | None, sql: str, counters: frozenset[str]) -> bool:
    """Whether ``tree`` (the statement ``sql``) may read the row counts of a TOAST relation: through a function of
    ``counters`` given anything but a relation's name, or from a :data:`TOAST_LISTING` catalog no literal in its
    WHERE keeps to other relations."""
    if "toast" in sql.lower():
        return True
    if tree is None:
        return True
    for call in tree.find_all(exp.Anonymous):
        if str(call.name).lower().rsplit(".", 1)[-1] in counters and not (
            call.expressions and _given_relation(call.expressions[0], call.find_ancestor(exp.Select))
        ):
            return True
    for select in tree.find_all(exp.Select):
        if _lists_toast(select) and not _pinned(select.args.get("where")):
            return True
    return False


def _given_relation(arg: exp.Expression, select: exp.Select | None) -> bool:
    """A row-count function's argument that names a relation: by a literal, or the ``oid``/``relid`` column of
    a catalog the enclosing ``select`` reads alone and keeps to named relations (or of a view of the application's
    own relations, ``pg_stat_user_tables``)."""
    if _names_relation(arg):
        return True
    if not (isinstance(arg, exp.Column) and arg.name.lower() in _OID_COLUMNS and select is not None):
        return False
    sources = _sources(select)
    if len(sources) != 1 or not isinstance(sources[0], exp.Table):
        return False
    name = sources[0].name.lower()
    return name in _USER_ONLY or (name in TOAST_LISTING and _pinned(select.args.get("where")))


#: statistics views that list the application's relations only (no TOAST relation, no system catalog)
_USER_ONLY = frozenset({"pg_stat_user_tables", "pg_stat_xact_user_tables", "pg_stat_user_indexes"})


def _sources(select: exp.Select) -> list[exp.Expression]:
    sources = []
    source = select.args.get("from") or select.args.get("from_")
    if source is not None:
        sources.append(source.this)
    sources += [j.this for j in select.args.get("joins") or []]
    return sources


def _lists_toast(select: exp.Select) -> bool:
    """Whether ``select`` reads a :data:`TOAST_LISTING` catalog in its own FROM or JOINs."""
    return any(isinstance(s, exp.Table) and s.name.lower() in TOAST_LISTING for s in _sources(select))


def _pinned(where: exp.Expression | None) -> bool:
    """A WHERE one of whose ANDed conditions keeps the rows to relations a literal names (or to a kind of relation
    other than TOAST)."""
    if where is None:
        return False
    cond = where.this if isinstance(where, exp.Where) else where
    return (
        any(_pins(c) for c in cond.flatten() if isinstance(c, exp.Expression))
        if isinstance(cond, exp.And)
        else _pins(cond)
    )


def _pins(cond: exp.Expression) -> bool:
    while isinstance(cond, exp.Paren):
        cond = cond.this
    if isinstance(cond, exp.EQ):
        pairs = [(cond.this, [cond.expression]), (cond.expression, [cond.this])]
    elif isinstance(cond, exp.In) and not cond.args.get("query"):
        pairs = [(cond.this, list(cond.expressions))]
    else:
        return False
    for column, values in pairs:
        if not isinstance(column, exp.Column) or not values:
            continue
        name = column.name.lower()
        if name in _NAME_COLUMNS and all(_text(v) for v in values):
            return True
        if name in _OID_COLUMNS and all(_names_relation(v) for v in values):
            return True
        if name == "relkind" and all(_text(v) and str(v.this) != "t" for v in values):
            return True
    return False


def _text(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _names_relation(node: exp.Expression) -> bool:
    """``'t'::regclass`` (``::oid`` after it too), ``to_regclass('t')``, ``'public'::regnamespace``: a relation or
    schema named by a literal."""
    while isinstance(node, exp.Cast) and str(node.to).lower() == "oid":
        node = node.this
    if isinstance(node, exp.Cast):
        return str(node.to).lower() in _NAMING_TYPES and _a_name(node.this)
    if isinstance(node, exp.Anonymous) and str(node.name).lower() == "to_regclass":
        return len(node.expressions) == 1 and _a_name(node.expressions[0])
    return False


def _a_name(node: exp.Expression) -> bool:
    """A text literal that is a name: ``'18929'::regclass`` is the relation of that oid."""
    return _text(node) and not str(node.this).strip().isdigit()
