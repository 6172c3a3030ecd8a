"""Column lineage: which source columns each result column (and each predicate) is made of.

A walk over the statement's sqlglot tree (copied, never mutated), scope by
scope: ``FROM`` items (tables, subqueries, CTEs) become sources whose columns
come from the database catalog (``columns_of``); each projection becomes an
:class:`Origin`:

* ``column`` — a plain source column passed through (aliases, subqueries,
  CTEs and UNION branches keep it plain);
* ``expr`` — computed from source columns (``upper``, ``||``, ``hex``, CASE,
  casts, aggregates...): masked whole when any source is sensitive;
* ``row`` — a whole row (``row_to_json(u)``, ``SELECT u``): sensitive fields
  (or the whole value) masked;
* ``const`` — no column involved (literals, ``count(*)``);
* ``unknown`` — the result of a function or session variable governed_db
  does not know (``opaque``: its inputs are traced, its value is checked as
  it passes), or a value whose lineage was *lost* (``#4``, a FROM item sqlglot
  does not model): over a table with masked columns a lost value is masked
  whole and may not be used as a predicate (fail closed).

VALUES rows, ``t AS s(a, b)`` column lists, LATERAL subqueries and table
functions (``unnest(ARRAY[email, ssn]) v``) are traced like subqueries.

Columns used in WHERE/JOIN/GROUP BY/HAVING/ORDER BY/window clauses, in
LIMIT/OFFSET subqueries, in CASE/IF conditions and divisors anywhere (error
oracles), and columns copied by INSERT/UPDATE/MERGE/CREATE TABLE AS
(:mod:`governed_db.masking.writes`) are collected as *uses* for the guard.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from sqlglot import exp

from governed_db.masking import detect, flow
from governed_db.masking import lineage_duckdb as duck
from governed_db.masking.classify import type_category
from governed_db.masking.fulltext import fts5_columns
from governed_db.masking.names import (
    PURE_FUNCTIONS,
    SCHEMA_PRAGMA_COLUMNS,
    SCHEMA_PRAGMA_FUNCTIONS,
    STORAGE_FUNCTIONS,
)
from governed_db.masking.order_nodes import own_nodes
from governed_db.masking.origins import (
    COMPUTED_STAR,
    CONST,
    LONG_CONST,
    QUERY,
    ColumnsOf,
    Ctes,
    Lineage,
    Origin,
    Output,
    Ref,
    Scope,
    Source,
    combine,
    computed_columns,
    computed_star,
    star_outputs,
)
from governed_db.masking.schema import bare_table, sqlite_affinity
from governed_db.masking.writes import is_default, record_writes, trace_command, trace_write, walk_write

#: pseudo-columns that locate a row (SQLite, PostgreSQL, DuckDB, Oracle-style): never data, never sensitive
_ROW_LOCATORS = frozenset({"rowid", "_rowid_", "oid", "ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"})
#: MariaDB's implicit period of a system-versioned table: invisible, so absent from the catalog's columns; when
#: and by which transaction a row version was written, not what it holds
_MYSQL_LOCATORS = _ROW_LOCATORS | {"row_start", "row_end"}
#: SQLite's names of a rowid table's rowid
_SQLITE_ROWIDS = frozenset({"rowid", "_rowid_", "oid"})
#: aggregates whose result says nothing about the values they read
_OPAQUE = (exp.Count, exp.Exists)
#: nodes that compare values: a bit about a masked value that further SQL can turn into a count, an error
#: (``abs(-9223372036854775807 - (ssn LIKE '5%'))`` overflows) or a NULL (``nullif``)
_COMPARISONS = (exp.Predicate, exp.Nullif, exp.Greatest, exp.Least)
#: number operators: each operand is converted to a number (MySQL warns, DuckDB may fail) and the result can
#: overflow
_ARITHMETIC: tuple[type[exp.Expression], ...] = (exp.Add, exp.Sub, exp.Mul, exp.Pow)
#: number operators whose operands MySQL converts with a warning when they are text (a dividend, a unary minus,
#: bitwise operators); elsewhere text there is a type error before any row is read (PostgreSQL, DuckDB) or a
#: silent conversion (SQLite), and a number cannot overflow them
_CONVERTING_OPERATORS: tuple[type[exp.Expression], ...] = (
    exp.Div, exp.Mod, exp.IntDiv, exp.Neg, exp.BitwiseNot, exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseXor,
    exp.BitwiseLeftShift, exp.BitwiseRightShift,
)  # fmt: skip
#: nodes whose result is a number whatever they are given (their own conversions are judged where they are):
#: an operand of a number operator that converts nothing on MySQL (``avg(salary) / 12``)
_NUMBERS: tuple[type[exp.Expression], ...] = (
    *flow.CONVERTING, exp.Count, exp.Length, *_ARITHMETIC, *_CONVERTING_OPERATORS, exp.Literal,
)  # fmt: skip
#: logical operators, and the operands that already are truth values (comparisons are recorded as such); a
#: value that is none converts with a warning on MySQL and with an error (text that is no boolean) on DuckDB
_LOGICAL: tuple[type[exp.Expression], ...] = (exp.And, exp.Or, exp.Xor, exp.Not)
_CONVERTING_LOGIC = frozenset({"mysql", "duckdb"})
#: extractions of a document's member (``->``, ``->>``, ``json_extract``...) and, by dialect, the declared column
#: types that hold valid JSON only (a value is checked when it is stored), so that the extraction cannot fail
_JSON_MEMBERS: tuple[type[exp.Expression], ...] = (
    exp.JSONExtract, exp.JSONExtractScalar, exp.JSONBExtract, exp.JSONBExtractScalar,
)
#: (MariaDB's ``JSON`` is ``LONGTEXT`` with a ``CHECK (JSON_VALID(col))`` the catalog read reports as ``json``,
#: decision 0318; MySQL 8's ``JSON`` validates what it stores)
_JSON_TYPED = {"postgres": frozenset({"jsonb", "hstore"}), "duckdb": frozenset({"json"}), "mysql": frozenset({"json"})}
#: (``hstore``: a value of its own type, never malformed; ``->`` of a key gives the value or NULL, and the
#: document is masked by its keys as JSON is, decision 0271)
#: a key that reads as itself in every dialect's path syntax (no dots, brackets, quotes, wildcards or ``$``)
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ -]*")
_DIGIT = re.compile(r"[0-9]")


def _shown_key(key: str) -> bool:
    """A key the masked document shows as it is: a plain key that no scan masks (and short of the digits a phone,
    SSN, card or account number needs, so that no scan of the whole text masks it either). Whether a member
    under a key the scan masks (``profile->>'536-22-8701'``, a phone number keying a map) is NULL says whether
    the document holds that key, which its masking hides (decision 0302)."""
    return (
        _PLAIN_KEY.fullmatch(key) is not None
        and len(_DIGIT.findall(key)) < 5
        and not detect.find_spans(key)
    )
_TRUTH_VALUES: tuple[type, ...] = (
    exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.Null, exp.Exists,
)  # fmt: skip
#: dialects where comparing a text with a number converts it silently or fails at plan time, never per value:
#: there a comparison that *is* a result column is just a derived value. MySQL converts with a warning
#: (``SELECT replace(substr(ssn, 1, 1), '5', 'x') = 0`` warns exactly for a 5) and DuckDB with an error.
_QUIET_COMPARISONS = frozenset({"postgres", "sqlite"})
#: the declared type of a table's column (``None`` when unknown)
Declared = Callable[[str, str], "str | None"]
#: the full-text module (``fts3``, ``fts4``, ``fts5``) of a SQLite table, by key; ``None``: none, or not known
FullText = Callable[[str], "str | None"]
#: clauses sqlglot may hang on a parenthesised query besides ORDER BY / LIMIT / OFFSET: each decides rows
#: (its ``joins`` are FROM items of an UPDATE ... FROM (...) d JOIN t, walked with the statement's sources)
_SUBQUERY_CLAUSES = ("where", "group", "having", "qualify", "connect", "match", "prewhere")
#: dialects whose engine evaluates a correlated subquery once per distinct outer value and reuses the result for
#: the rows that repeat it (MariaDB's subquery cache): there the subquery groups the outer rows by the values it
#: reads from them, and anything in it that differs between evaluations (``SYSDATE(6)``) says which rows share one
#: (decision 0292)
_SUBQUERY_CACHES = frozenset({"mysql"})
#: the use recorded for an enclosing query's column read inside a subquery there
CORRELATED = "a correlated subquery (the server evaluates it once per distinct value it reads from the outer row)"



#: passes over a recursive CTE's step before its columns are given up as untraceable
_FIXPOINT_ROUNDS = 6


def _named(columns: list[str], outs: list[Output], exact: bool) -> tuple[list[Output], bool]:
    """A CTE's outputs under its column list (``r(n) AS (...)``)."""
    if columns and len(columns) == len(outs):
        outs = [Output(c, o.origin) for c, o in zip(columns, outs, strict=True)]
    return outs, exact

def _nearest_tables(scope: Scope | None) -> list[str]:
    """The tables of the innermost scope that reads any (where an unqualified locator belongs)."""
    while scope is not None:
        tables = [src.table for src in scope.sources if src.table is not None]
        if tables:
            return tables
        scope = scope.parent
    return []


def _samples_all_or_none(sample: exp.Expression) -> bool:
    """``TABLESAMPLE BERNOULLI (100)`` (or ``(0)``): a constant percentage that keeps every row, or none, wherever
    they are stored."""
    percent = sample.args.get("percent") or sample.args.get("size")
    if not isinstance(percent, exp.Literal) or percent.is_string:
        return False
    try:
        value = float(percent.this)
    except ValueError:
        return False
    return value >= 100 or value <= 0


#: the parts of a table reference that leave its rows as stored (:attr:`Source.plain`)
_PLAIN_TABLE_ARGS = frozenset({"this", "db", "catalog", "alias", "only", "joins"})


class Walker:
    def __init__(
        self,
        columns_of: ColumnsOf,
        dialect: str,
        declared: Declared | None = None,
        fulltext: FullText | None = None,
        rowid: FullText | None = None,
    ) -> None:
        self.columns_of = columns_of
        self.dialect = dialect
        self.fulltext = fulltext
        #: a SQLite table's rowid alias (its INTEGER PRIMARY KEY), by table key
        self.rowid = rowid
        self.locators = _MYSQL_LOCATORS if dialect == "mysql" else _ROW_LOCATORS
        self.declared = declared
        self.lineage = Lineage()
        #: the statement's own top-level SELECT: a star there only lists columns, each masked as it passes
        self.output_root: exp.Expression | None = None
        #: the projection being traced, unwrapped: a comparison *there* is the result (masked like any
        #: derived value); a comparison nested anywhere else is a predicate
        self.top: exp.Expression | None = None
        #: the column names of each table as the database spells them (PostgreSQL: "Info" is not info)
        self.spelled: dict[str, frozenset[str]] = {}

    # -- sources ---------------------------------------------------------------------------------
    def table_source(self, node: exp.Table, ctes: Ctes) -> Source:
        alias = (node.alias_or_name or node.name).lower()
        if not node.args.get("db") and node.name.lower() in ctes:
            outs, exact = ctes[node.name.lower()]
            return Source(alias, None, _query_columns(outs, exact, self.dialect))
        key, cols = self.columns_of(node)
        if cols is not None:
            self.spelled[key] = frozenset(cols)
        self.lineage.tables.setdefault(key, bare_table(node).sql(dialect=self.dialect))
        sample = node.args.get("sample")
        if isinstance(sample, exp.Expression):
            # ``TABLESAMPLE BERNOULLI ((SELECT CASE WHEN ssn LIKE '5%' THEN 100 ELSE 0 END ...))``: the
            # percentage, size or seed decides how many rows come back (or an out-of-range error)
            self.lineage.uses.append(("TABLESAMPLE", self.expr(sample, Scope([]), ctes)))
            # PostgreSQL's methods pick pages (SYSTEM) or slots (BERNOULLI) by hashing their numbers with the seed:
            # which rows come back is where they are stored, which depends on how wide every row before them is
            # (an id sampled with the rows of the first page or the second tells a longer masked name from a
            # shorter one), as ``ctid`` does (decision 0272)
            if not _samples_all_or_none(sample):
                self.lineage.uses.append(("TABLESAMPLE", self.locator("ctid", [key])))
        if isinstance(node.args.get("indexed"), exp.Expression) or node.args.get("hints"):
            # ``INDEXED BY ix_email`` / ``FORCE INDEX (ix_email)``: rows come back in the order of the index's
            # values, so an unordered read of an index on a masked column is an ORDER BY on it (with a row
            # of the caller's own, a binary search of the value)
            self.lineage.uses.append(("an index hint", Origin("row", rows=frozenset({key}))))
        columns = (
            None
            if cols is None
            else [(c.lower(), Origin("column", frozenset({(key, c.lower())}))) for c in cols]
        )
        renamed = _alias_columns(node)
        if renamed and columns is None:
            # ``t AS s(a, b)`` over a table of unknown columns: the new names cannot be traced to the old ones
            return Source(alias, None, [(n, Origin("unknown", hint=n)) for n in renamed])
        # anything but a name, an alias and ONLY (a temporal clause, a sample, partitions, hints) may return rows
        # other than one per key value
        plain = not renamed and all(not v or k in _PLAIN_TABLE_ARGS for k, v in node.args.items())
        return Source(alias, key, _rename(columns, renamed) if columns is not None else None, plain)

    def from_item(self, node: exp.Expression, ctes: Ctes, scope: Scope | None) -> Source:
        pivots = node.args.get("pivots") if isinstance(node, (exp.Table, exp.Subquery)) else None
        if pivots:
            pivoted = self.pivoted_source(node, pivots, ctes, scope)
            if pivoted is not None:
                return pivoted
        if isinstance(node, exp.Table) and node.args.get("rows_from"):
            # PostgreSQL ``ROWS FROM (f(...), g(...))``: each function is walked like a table function (so what
            # it computes on is judged), and every column it yields is made of all their arguments
            parts = [self.from_item(item, ctes, scope) for item in node.args["rows_from"]]
            inner = combine(o for p in parts for _, o in p.columns or [("*", Origin("unknown"))])
            if inner.kind == "column":
                inner = Origin("expr", inner.sources, inner.rows)
            names = _alias_columns(node)
            return Source(_alias_name(node), None, [("*", inner)] + [(n, inner) for n in names])
        if isinstance(node, exp.Table):
            if node.this is None or isinstance(node.this, (exp.Identifier, str)):
                return self.table_source(node, ctes)
            # a table function (unnest, generate_series, json_each...): its columns come from its arguments
            return self.function_source(node, node.this, scope, ctes)
        if isinstance(node, exp.Lateral) and isinstance(node.this, (exp.Subquery, *QUERY)):
            inner_src = self.from_item(node.this, ctes, scope)
            columns = _rename(inner_src.columns, _alias_columns(node))
            return Source(_alias_name(node), None, duck.unique_names(columns, self.dialect))
        if isinstance(node, exp.Lateral):  # LATERAL func(...) / LATERAL VIEW explode(...)
            return self.function_source(node, node.this, scope, ctes)
        if isinstance(node, exp.Unnest):
            return self.function_source(node, exp.Tuple(expressions=list(node.expressions)), scope, ctes)
        if isinstance(node, (exp.Subquery, *QUERY)):
            outs, exact = self.query(node, ctes, scope)  # a Subquery's own LIMIT/ORDER BY too
            columns = _query_columns(outs, exact, self.dialect, _alias_columns(node))
            return Source(_alias_name(node), None, columns)
        # anything else in FROM (a PIVOT, a function sqlglot does not model...) is untraceable, but what it
        # reads is known: keep it so a lost value over a sensitive table is still masked
        inner = combine(self.expr(child, scope or Scope([]), ctes) for child in node.iter_expressions())
        return Source(_alias_name(node), None, [("*", Origin("unknown", inner.sources, inner.rows))])

    def pivoted_source(
        self, node: exp.Expression, pivots: list[exp.Expression], ctes: Ctes, scope: Scope | None
    ) -> Source | None:
        """``t PIVOT (agg FOR col IN (...) [GROUP BY ...])``: the group columns, then one per IN value.

        The group columns keep their origin by name; a column named after an IN value holds the aggregates
        of the ``FOR`` columns' rows, made of what those read (checked value by value when that is nothing
        sensitive). ``None``: a shape not modelled here (an UNPIVOT, several pivots, unknown columns).
        """
        pivot = pivots[0]
        names = [c.name.lower() for c in pivot.args.get("columns") or []]
        fields = [f for f in pivot.args.get("fields") or [] if isinstance(f, exp.In)]
        if len(pivots) == 1 and pivot.args.get("unpivot") and len(fields) == 1:
            return self.unpivoted_source(node, pivot, fields[0], ctes, scope)
        if len(pivots) != 1 or pivot.args.get("unpivot") or not names or not fields:
            return None
        base = node.copy()
        base.set("pivots", None)
        src = self.from_item(base, ctes, scope)
        if src.columns is None:
            return None
        inner_scope = Scope([src])
        made = [self.expr(e, inner_scope, ctes) for e in [*pivot.expressions, *(f.this for f in fields)]]
        inner = combine(made)
        # the cells are aggregates of what the FOR columns and aggregates read (checked before it runs, 0066)
        cell = inner if inner.kind != "column" else Origin("expr", inner.sources, inner.rows)
        group = pivot.args.get("group")
        if isinstance(group, exp.Group) and group.expressions:
            kept = [(g.alias_or_name.lower(), self.expr(g, inner_scope, ctes)) for g in group.expressions]
        else:  # grouped by every column neither pivoted on nor aggregated
            used = {c.name.lower() for e in [*pivot.expressions, *fields] for c in e.find_all(exp.Column)}
            kept = [(n, o) for n, o in src.columns if n not in used]
        alias = pivot.alias or _alias_name(node)
        return Source(alias.lower() if alias else alias, None, kept + [(n, cell) for n in names])

    def pivot(self, node: exp.Pivot, ctes: Ctes, parent: Scope | None) -> tuple[list[Output], bool]:
        """DuckDB's ``PIVOT src ON cols USING aggs [GROUP BY ...]`` as a query: the group columns keep their
        origin by name, then the pivoted cells (named by the database after the ON values: one ``*``), made of
        what the ON columns and aggregates read. Its ON columns, aggregates and groups are checked before it
        runs (decision 0066, 0222): this only keeps what the walk knows about them (decision 0235)."""
        if not isinstance(node.this, exp.Expression):
            return [], False
        src = self.from_item(node.this, ctes, parent)  # walked first: what it reads is known even if lost below
        if src.columns is None:
            return [], False
        if node.args.get("unpivot"):
            return self.unpivot(node, src, ctes, parent)
        inner_scope = Scope([src], parent)
        using = node.args.get("using")
        aggregates = list(using) if isinstance(using, list) else []
        ons = [e.this if isinstance(e, exp.In) else e for e in node.expressions]
        inner = combine(self.expr(e, inner_scope, ctes) for e in [*ons, *aggregates])
        cell = inner if inner.kind != "column" else Origin("expr", inner.sources, inner.rows)
        group = node.args.get("group")
        if isinstance(group, exp.Group) and group.expressions:
            kept = [Output(g.alias_or_name, self.expr(g, inner_scope, ctes)) for g in group.expressions]
        else:  # grouped by every column neither pivoted on nor aggregated
            used = {c.name.lower() for e in [*ons, *aggregates] for c in e.find_all(exp.Column)}
            kept = [Output(n, o) for n, o in src.columns if n not in used and n != "*"]
        return [*kept, Output("*", cell)], True

    def unpivot(self, node: exp.Pivot, src: Source, ctes: Ctes, parent: Scope | None) -> tuple[list[Output], bool]:
        """``UNPIVOT src ON cols INTO NAME n VALUE v``: the columns it does not unpivot pass through as they are,
        then the name column (the unpivoted columns' names), then the value columns, made of the unpivoted
        columns (checked before it runs, decision 0066). A column passed through is the source's own: a masked
        one stays masked (decision 0236)."""
        if any(isinstance(e, (exp.Columns, exp.Star)) or e.find(exp.Star) for e in node.expressions):
            return [Output("*", combine((o for _, o in src.columns or ()), kind="expr"))], False
        inner_scope = Scope([src], parent)
        used = {c.name.lower() for e in node.expressions for c in e.find_all(exp.Column)}
        value = combine((self.expr(e, inner_scope, ctes) for e in node.expressions), kind="expr")
        if value.kind == "column":
            value = Origin("expr", value.sources, value.rows)
        into = node.args.get("into")
        name = into.this.name if isinstance(into, exp.Expression) and isinstance(into.this, exp.Expression) else "name"
        values = [e.name for e in into.expressions] if isinstance(into, exp.Expression) and into.expressions else []
        kept = [Output(n, o) for n, o in src.columns or () if n not in used and n != "*"]
        return [*kept, Output(name, CONST), *(Output(v, value) for v in values or ["value"])], True

    def unpivoted_source(
        self, node: exp.Expression, pivot: exp.Expression, field: exp.In, ctes: Ctes, scope: Scope | None
    ) -> Source:
        """``t UNPIVOT (v FOR k IN (a, b))``: the columns it does not unpivot pass through as they are, then ``k``
        (the unpivoted columns' names) and ``v`` (their values). Never the table's own columns by position: the
        unpivoted ones are gone and the rest moved (decision 0236)."""
        base = node.copy()
        base.set("pivots", None)
        src = self.from_item(base, ctes, scope)  # walked even when its columns are unknown: what it reads counts
        alias = pivot.alias or _alias_name(node)
        alias = alias.lower() if alias else alias
        if src.columns is None:
            return Source(alias, None, None)
        inner_scope = Scope([src])
        value = combine((self.expr(e, inner_scope, ctes) for e in field.expressions), kind="expr")
        if value.kind == "column":
            value = Origin("expr", value.sources, value.rows)
        used = {c.name.lower() for e in field.expressions for c in e.find_all(exp.Column)}
        kept = [(n, o) for n, o in src.columns if n not in used and n != "*"]
        values = [
            (i.name.lower(), value)
            for e in pivot.expressions
            for i in (e.expressions if isinstance(e, exp.Tuple) else [e])
        ]
        named = [(field.this.name.lower(), CONST)]
        return Source(alias, None, kept + (values + named if pivot.args.get("value_columns_first") else named + values))

    def function_source(
        self,
        node: exp.Expression,
        call: exp.Expression,
        scope: Scope | None,
        ctes: Ctes,
    ) -> Source:
        if isinstance(call, exp.Anonymous) and str(call.name).lower() in duck.EMBEDDED_SQL:
            columns = duck.embedded(self, call)
            return Source(_alias_name(node), None, _rename(columns, _alias_columns(node)))
        if self.dialect == "sqlite" and isinstance(call, exp.Anonymous) and _maybe_table(str(call.name)):
            table = exp.Table(this=exp.to_identifier(str(call.name)))
            key, cols = self.columns_of(table)
            if cols:
                # ``SELECT rowid FROM notes_fts('alice')``: a full-text table called as a function is
                # ``notes_fts MATCH 'alice'``: which rows come back says whether its text holds the words
                src = self.table_source(table, ctes)
                args = call.expressions
                read = None
                if (
                    len(args) == 1
                    and isinstance(args[0], exp.Literal)
                    and args[0].is_string
                    and self.fulltext is not None
                    and self.fulltext(key) == "fts5"
                ):
                    read = fts5_columns(args[0].this, list(cols), None)  # ``docs('title: foo')`` (decision 0296)
                found = (
                    Origin("row", rows=frozenset({key}))
                    if read is None or read == frozenset(c.lower() for c in cols)
                    else combine([Origin("column", frozenset({(key, c)})) for c in sorted(read)], kind="expr")
                )
                self.lineage.uses.append(("a full-text MATCH", found))
                for arg in args:
                    self.expr(arg, scope or Scope([]), ctes)
                return Source(_alias_name(node) or src.alias, src.table, src.columns)
        inner = self.expr(call, scope or Scope([]), ctes)
        names = _alias_columns(node)
        if inner.kind == "const":
            # generate_series(1, 3) x: made of constants (its columns are named by the database); a schema
            # pragma's columns are known by name (pragma_table_info('t') ORDER BY cid)
            if isinstance(call, exp.Anonymous) and not names:
                names = list(SCHEMA_PRAGMA_COLUMNS.get(str(call.name).lower(), ()))
            return Source(_alias_name(node), None, [("*", CONST)] + [(n, CONST) for n in names])
        # every column it yields is made of its arguments (unnest(ARRAY[email, ssn]) v: v is email or ssn); a
        # whole row it is given (``json_each(to_json(c))``) comes out as keys and values, no longer the row's
        # own columns by name (decision 0236)
        if inner.kind in ("column", "row"):
            inner = Origin("expr", inner.sources, inner.rows)
        columns = [("*", inner)] + [(n, inner) for n in names]
        return Source(_alias_name(node), None, columns)

    # -- columns ---------------------------------------------------------------------------------
    def column(self, col: exp.Column, scope: Scope) -> Origin:
        name = col.name.lower()
        qualifier = col.table.lower()
        s: Scope | None = scope
        while s is not None:
            if qualifier:
                # DuckDB reads ``info.city`` as the field ``city`` of a column ``info`` of this query when no table
                # of this query named ``info`` has a column ``city`` — before any enclosing query's ``info``
                field = self.struct_field(col, s, scope)
                for src in _qualified(s, qualifier):
                    if isinstance(col.this, exp.Star):
                        self.implicit(None, src)
                        return src.whole_row()
                    found = src.find(name)
                    if found is not None:
                        self.twin(col, [src])
                        found = self.correlated(found, s, scope)
                        # ``x.info.ssn``: schema ``x``'s table ``info`` or table ``x``'s struct ``info``, either
                        return found if field is None or not col.args.get("db") else combine([found, field])
                    if field is not None:
                        return field
                    if src.table is not None:
                        if name in self.locators and src.columns is not None:
                            return self.locator(name, [src.table])
                        # a name the catalog lacks, or a table whose columns are not known (yet): read again
                        self.lineage.missing.add(src.table)
                        if src.columns is not None and self.dialect in ("postgres", "postgresql"):
                            return self.attribute_call(col, scope)
                        return Origin("column", frozenset({(src.table, name)}))
                    if src.columns is not None and src.columns[:1] and src.columns[0][0] == "*":
                        return src.columns[0][1]
                    return Origin("unknown", hint=name)
                if field is not None:
                    return field
            else:
                hits = [o for src in s.sources if (o := src.find(name)) is not None]
                if hits:
                    self.twin(col, s.sources)
                if len(hits) == 1:
                    return self.correlated(hits[0], s, scope)
                if hits:
                    return self.correlated(combine(hits), s, scope)
                rows = [src for src in s.sources if src.alias == name]
                if rows:
                    src = rows[0]
                    if src.columns is not None and src.columns[:1] and src.columns[0][0] == "*":
                        return src.columns[0][1]  # unnest(...) v: ``v`` is the function's value
                    self.implicit(None, src)
                    return src.whole_row()
                unknown = [
                    src for src in s.sources if src.columns is None or src.columns[:1] == [("*", CONST)]
                ]
                if unknown:
                    candidates = [Origin("column", frozenset({(u.table, name)})) for u in unknown if u.table]
                    self.lineage.missing.update(u.table for u in unknown if u.table)  # read again: known now?
                    if candidates and len(candidates) == len(unknown):
                        # a table whose columns are not known may lack the name: then the database takes it from
                        # an enclosing query (``EXISTS (SELECT 1 FROM g WHERE w = info)`` reads the outer
                        # ``v.info``), so it is either (decision 0277)
                        candidates += self.enclosing(name, s.parent)
                        return combine(candidates, kind="column" if len(unknown) == 1 else "expr")
                    return Origin("unknown", hint=name)
                # a function's value (``unnest(...)``), or columns the database names (a PIVOT's cells)
                fn = [o for src in s.sources for n, o in src.columns or () if n == "*"]
                if fn:
                    return combine(fn)
                for out in s.projections:  # ORDER BY / GROUP BY an output alias
                    if out.name.lower() == name:
                        # where the engine takes no output alias (PostgreSQL's and MariaDB's WHERE), the name is an
                        # enclosing query's column: ``EXISTS (SELECT id AS full_name FROM i WHERE full_name < 'M')``
                        # compares the outer ``full_name``; both count (decision 0430)
                        # (SQLite and DuckDB take the alias there)
                        outer = self.enclosing(name, s.parent) if self.dialect in _NO_WHERE_ALIAS else []
                        return combine([out.origin, *outer]) if outer else out.origin
            s = s.parent
        if name in self.locators and not qualifier:
            # rowid, xmin...: where or when a row was stored, not what it holds
            return self.locator(name, _nearest_tables(scope))
        if not qualifier:
            # no table in reach has a column of that name: one of them may have gained it since it was read
            s = scope
            while s is not None:
                self.lineage.missing.update(src.table for src in s.sources if src.table and src.columns is not None)
                s = s.parent
        return Origin("unknown", hint=name)

    def given_name(self, proj: exp.Expression, scope: Scope) -> str:
        """The name the database gives an output (``""``: one it makes of the expression's text, unknown here).

        An alias, and a column (``t.ssn``, a struct's ``s.a``), name themselves. On DuckDB and SQLite the rest
        is named as the database writes it, which is never a plain name but for a column in parentheses
        (``(ssn)`` is ``ssn``), DuckDB's ``#4`` (the fourth column's name) and SQLite's ``ssn COLLATE nocase``
        (``ssn``; newer releases name ``likely(ssn)`` so too); the parser's ``alias_or_name`` gives ``""``, ``4`` and ``x`` for
        ``'x'`` (DuckDB names it
        ``'x'``). Read so, ``(SELECT (ssn), city AS ssn)`` was ``ssn`` = city, where DuckDB renames the city
        ``ssn_1`` (decision 0377)."""
        if self.dialect not in ("duckdb", "sqlite") or isinstance(proj, exp.Alias):
            return proj.alias_or_name
        inner = proj
        while True:
            if isinstance(inner, exp.Paren) or (self.dialect == "sqlite" and isinstance(inner, exp.Collate)):
                inner = inner.this
            elif self.dialect == "sqlite" and isinstance(inner, exp.Func) and _skipped_by_sqlite(inner):
                inner = inner.expressions[0] if isinstance(inner, exp.Anonymous) else inner.this
            else:
                break
        if isinstance(inner, exp.Column) and not isinstance(inner.this, exp.Star):
            return inner.name
        if isinstance(inner, exp.PositionalColumn) and inner.name.isdigit():
            columns = [n for src in scope.sources for n, _ in src.columns or [("*", CONST)]]
            at = int(inner.name) - 1
            return columns[at] if "*" not in columns and 0 <= at < len(columns) else ""
        return ""

    def correlated(self, origin: Origin, found_in: Scope, scope: Scope) -> Origin:
        """A column of an enclosing query read inside a subquery: where the engine caches the subquery's result
        per outer value, a use of that value (rows with equal values share one evaluation)."""
        if found_in is not scope and self.dialect in _SUBQUERY_CACHES:
            self.lineage.uses.append((CORRELATED, origin))
        return origin

    @staticmethod
    def enclosing(name: str, scope: Scope | None) -> list[Origin]:
        """What an unqualified ``name`` is in the nearest enclosing query whose known columns include it (none:
        ``[]``)."""
        while scope is not None:
            hits = [o for src in scope.sources if (o := src.find(name)) is not None]
            if hits:
                return hits
            scope = scope.parent
        return []

    def twin(self, col: exp.Column, sources: list[Source]) -> None:
        """A quoted name that matches a known column only when case is ignored (``"Info"`` where ``info`` was
        read): on PostgreSQL another column, added since the table was read; its table is read again (0256)."""
        ident = col.this
        if self.dialect not in ("postgres", "postgresql") or not isinstance(ident, exp.Identifier):
            return
        if not ident.args.get("quoted") or ident.name == ident.name.lower():
            return
        for src in sources:
            names = self.spelled.get(src.table or "")
            if names is not None and ident.name not in names and src.find(ident.name.lower()) is not None:
                self.lineage.missing.add(src.table or "")

    def attribute_call(self, col: exp.Column, scope: Scope) -> Origin:
        """PostgreSQL reads ``c.f``, where the table ``c`` has no column ``f``, as the call ``f(c)`` of the whole
        row (attribute notation): ``SELECT c.row_to_json FROM people c`` returned every column in clear and
        ``WHERE c.row_to_json::text LIKE '%536-22-871%'`` counted a guess. Judged as that call, so it is masked
        and refused exactly as ``row_to_json(c.*)`` is. A column added since the table was read is read again
        (``missing``) and the statement traced anew, as for any name the catalog lacks (decision 0256)."""
        row = exp.Column(this=exp.Star(), table=col.args.get("table"), db=col.args.get("db"),
                         catalog=col.args.get("catalog"))  # fmt: skip
        call = exp.Anonymous(this=col.this.copy(), expressions=[row.copy()])
        return self.expr(call, scope, {})

    def locator(self, name: str, tables: list[str]) -> Origin:
        """A row locator's value. PostgreSQL's ``ctid`` is the page and slot of a row version, and where a
        version goes depends on how wide it and every version before it are: after a few dozen ``UPDATE t SET
        amount = amount WHERE id = 1``, ``SELECT ctid FROM t WHERE id = 1`` tells a longer name from a shorter
        one. It is computed from the whole rows of the tables it may belong to (masked whole, and a use where it
        decides anything, when they hold masked columns). Others (SQLite's ``rowid``, ``xmin``...) are numbered
        by the writes, whatever the values."""
        if name == "ctid" and self.dialect in ("postgres", "postgresql") and tables:
            return Origin("expr", rows=frozenset(tables))
        if self.dialect == "sqlite" and name in _SQLITE_ROWIDS and self.rowid is not None:
            # a table's INTEGER PRIMARY KEY is its rowid under a name: ``rowid`` reads that column (decision 0388)
            aliases = frozenset((t, a) for t in tables if (a := self.rowid(t)) is not None)
            if aliases:
                return Origin("column", aliases)
        return CONST

    def comprehension(self, node: exp.Comprehension, scope: Scope, ctes: Ctes) -> Origin:
        """DuckDB's ``[f(x) FOR x IN list IF cond]``: ``x`` is each element of ``list``, bound in a scope of its own
        (it was an unknown column, and refused as if it could be any of the table's). Which elements the condition
        keeps, and whether ``f`` fails, depend on them: a use of what the list is made of."""
        iterator = node.args.get("iterator")
        element = self.expr(iterator, scope, ctes) if isinstance(iterator, exp.Expression) else CONST
        var = node.expression
        names = [v.name.lower() for v in (var.expressions if isinstance(var, exp.Tuple) else [var])
                 if isinstance(v, (exp.Identifier, exp.Column))]
        inner = Scope([Source("", None, [(n, element) for n in names])], parent=scope)
        body = self.expr(node.this, inner, ctes) if isinstance(node.this, exp.Expression) else CONST
        condition = node.args.get("condition")
        if isinstance(condition, exp.Expression):
            self.expr(condition, inner, ctes)
        self.lineage.uses.append(("a list comprehension", element))
        return combine([body, element], kind="expr")

    def default_of(self, node: exp.Aliases, scope: Scope, ctes: Ctes) -> Origin:
        """MySQL ``DEFAULT(note)`` (sqlglot reads it as a column DEFAULT aliased ``note``): the column's DEFAULT
        evaluated over the row, which may read any of its columns (``DEFAULT (CONCAT(full_name, ':', ssn))``), so a
        value computed from the whole rows of the tables its argument names (decision 0308)."""
        found = combine([self.expr(exp.column(i.name), scope, ctes) for i in node.expressions], kind="expr")
        tables = {t for t, _ in found.sources} | set(found.rows)
        rows: list[Origin] = []
        s: Scope | None = scope
        while s is not None:
            rows += [src.whole_row() for src in s.sources if src.table is not None and src.table in tables]
            s = s.parent
        return combine([found, *rows] if rows else [found, Origin("unknown")], kind="expr")

    def expr(self, node: exp.Expression, scope: Scope, ctes: Ctes) -> Origin:
        if isinstance(node, exp.Aliases) and isinstance(node.this, exp.Column) and is_default(node.this):
            return self.default_of(node, scope, ctes)
        if isinstance(node, exp.Column) and is_default(node):
            return CONST  # ``SET x = DEFAULT``: the column's default (a value of the schema's, judged by the writes)
        if isinstance(node, exp.Column):
            found = self.column(node, scope)
            if found.sources:
                self.lineage.refs.append((node, found))
            if found.kind == "row" and found.long and (found.sources or found.rows):
                # a derived table's whole row holding a masked value and a long text (``SELECT full_name,
                # repeat('x', n) FROM ...``) is one value as long as both: a length limit measures the masked one
                self.lineage.uses.append(
                    ("a whole row holding a masked value and a long text (a length limit would decide)", found)
                )
            return found
        if isinstance(node, (exp.Alias, exp.Paren)):
            return self.expr(node.this, scope, ctes)
        if isinstance(node, exp.Func) and not isinstance(node, exp.Anonymous) and _foreign_schema(node, self.dialect):
            # a call qualified by a schema is the caller's own function of that name, whatever sqlglot made of it:
            # what it is given may be stored anywhere (decision 0365)
            given = combine(self.expr(c, scope, ctes) for c in node.iter_expressions())
            if given.sources or given.rows:
                self.lineage.uses.append(("copy", given))
            return Origin("unknown", given.sources, given.rows, flow.name_of(node), not given.lost)
        if isinstance(node, exp.Match) and self.dialect == "sqlite" and isinstance(node.this, exp.Column):
            matched = self.fulltext_match(node, scope, ctes)
            if matched is not None:
                return matched
        if isinstance(node, exp.Comprehension):
            return self.comprehension(node, scope, ctes)
        if isinstance(node, exp.PositionalColumn):
            return duck.positional(node, scope)
        if isinstance(node, exp.Columns):
            # COLUMNS('re') inside an expression is each column of the FROM clause it names (any of them, when
            # what it names cannot be told for certain)
            for src in scope.sources:
                self.implicit(None, src)  # a column added since would be among them, unseen (0259)
            named = duck.columns_named(node)
            every = [o for src in scope.sources for n, o in src.columns or () if named is None or named(n)]
            every.extend(src.whole_row() for src in scope.sources if src.columns is None)
            return combine(every, kind="expr")
        if isinstance(node, (exp.Case, exp.If)):
            self.conditions(node, scope, ctes)
        if isinstance(node, (exp.Div, exp.Mod, exp.IntDiv)):
            # ``1 / (ascii(ssn) - 53)`` fails exactly when the value is what the divisor tests: an error oracle
            self.lineage.uses.append(("division", self.expr(node.expression, scope, ctes)))
        if isinstance(node, _ARITHMETIC):
            # ``(ascii(ssn) - 53) * 4611686018427387904`` overflows exactly for some values: an error oracle
            # (and the result would be NULL anyway: a number derived from a masked value)
            self.lineage.uses.append(
                ("arithmetic", combine(self.expr(c, scope, ctes) for c in node.iter_expressions()))
            )
        elif isinstance(node, _CONVERTING_OPERATORS) and self.dialect == "mysql":
            # MySQL converts every operand to a number, with a warning unless it reads as one:
            # ``replace(substr(ssn, 1, 1), '5', 'x') DIV 1`` warns exactly for a 5, ``-card`` says whether the
            # card number holds spaces; a column's own value declared as a number (a masked salary) converts
            # nothing
            for child in node.iter_expressions():
                value = self.expr(child, scope, ctes)
                while isinstance(child, exp.Paren):
                    child = child.this
                if isinstance(child, _NUMBERS):
                    continue  # a number already (its own conversions are judged where it is computed)
                if value.kind not in ("column", "const") or not flow.declared_numbers(self.categories([value])):
                    self.lineage.uses.append(("arithmetic", value))
        if isinstance(node, (exp.Literal, exp.Null, exp.Boolean, exp.Placeholder, exp.Star)):
            return LONG_CONST if flow.lengthens(node) else CONST
        if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
            tested = self.expr(node.this, scope, ctes)
            if tested.kind in ("column", "const") or self.coalesced_columns(node.this, scope):
                # ``WHERE email IS NOT NULL``, ``SELECT email IS NOT NULL``: a plain column's NULLs show in its
                # masked output anyway (every strategy keeps NULL as NULL), so its null test tells nothing more
                # and is returned exactly (decision 0209, refining 0027). IS NULL converts nothing, so it is no
                # comparison that could warn or fail on any engine. Over anything computed it stays a use.
                return CONST
        if isinstance(node, exp.Typeof) and isinstance(node.this, exp.Column) and self.typed(node.this, scope):
            # ``typeof(full_name)``: the type the column's declaration fixes, a function of its NULL-ness at most
            # (which decision 0209 returns exactly): exact (decision 0235)
            return CONST
        if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Literal):
            return LONG_CONST  # a positional bind parameter ($1): as long as the caller binds
        if isinstance(node, (exp.Parameter, exp.SessionParameter)):
            # a session variable (@v, @@x) may hold anything a previous statement put there
            return Origin("unknown", hint=node.name or None, opaque=True)
        if isinstance(node, QUERY):
            outs, exact = self.query(node, ctes, scope)  # a Subquery's own LIMIT/ORDER BY too
            return combine((o.origin for o in outs), kind="expr") if exact else Origin("unknown")
        if isinstance(node, exp.TsOrDsToDate) and self.dialect == "mysql" and node.args.get("format") is None:
            # sqlglot reads MySQL's YEAR(d) as YEAR(TS_OR_DS_TO_DATE(d)): the date itself, converted (with a
            # warning) only when ``d`` is text
            inner = self.expr(node.this, scope, ctes)
            why = flow.converts_text(node, self.dialect, self.categories([inner]))
            if why is not None or inner.kind not in ("column", "const"):
                self.lineage.uses.append((why or "a date conversion of a computed value", inner))
            return inner
        keyed: list[tuple[str, int, Origin]] = []
        for key, value in node.args.items():
            for i, item in enumerate(value if isinstance(value, list) else [value]):
                if isinstance(item, exp.Expression):
                    keyed.append((key, i, self.expr(item, scope, ctes)))
        parts = [o for _, _, o in keyed]
        if (
            self.dialect == "mysql"
            and isinstance(node, exp.Anonymous)
            and str(node.name).lower() == "json_unquote"
            and len(parts) == 1
            and parts[0].member is not None
            and not parts[0].rows
        ):
            # JSON_UNQUOTE(JSON_EXTRACT(profile, '$.tier')), MariaDB's ``->>``: the member's text, unquoted from
            # the valid JSON the extraction gives (it cannot fail); masked as the member (decision 0318)
            return parts[0]
        if self.dialect == "duckdb" and isinstance(node, flow.PICK_BY_KEY):
            # arg_max(full_name, total) / max_by: the key (and a count) decides which row's value comes back, as
            # an ORDER BY would — a use; the value itself is returned, derived (masked whole, as max() is). On
            # other engines no such function is built in: one of that name is a user's, of unknown behaviour
            self.lineage.uses.append(
                (f"the key of {flow.name_of(node)}() (it picks the row)", combine(o for k, _, o in keyed if k != "this"))
            )
            return combine((o for k, _, o in keyed if k == "this"), kind="expr")
        unknown_fn = isinstance(node, exp.Anonymous) and not self.pure_call(node, parts)
        why = (
            None  # recorded below as a copy: what it is given may be stored anywhere
            if unknown_fn
            else flow.hazard(node, [(k, i, o.kind) for k, i, o in keyed], self.dialect)
        )
        if why is not None and isinstance(node, exp.Cast) and self.cast_fits(node, parts):
            why = None
        member = self.json_member(node, keyed) if isinstance(node, _JSON_MEMBERS) else self.struct_path(node, keyed)
        if member is not None:
            why = None  # a constant path into a value the column's type keeps valid: it cannot fail
        if why is None and self.dialect == "mysql" and isinstance(node, flow.CONVERTING):
            why = flow.converts_text(node, self.dialect, self.categories(parts))
        if why is None and self.dialect == "duckdb" and isinstance(node, (exp.Sum, exp.Avg)):
            why = self.sum_overflows(node, parts)
        if why is not None:
            self.lineage.uses.append((why, combine(parts)))
        elif self.dialect == "sqlite" and not unknown_fn and member is None:
            grown = flow.grows(node, [(k, i, o.kind) for k, i, o in keyed])
            if grown is not None:
                # judged against the connection's length limit as the statement runs (decision 0421)
                self.lineage.uses.append((grown, combine(parts)))
        self.merged(node, keyed)
        if isinstance(node, exp.Collate) and self.dialect == "sqlite" and not _builtin_collation(node):
            # ``max(ssn COLLATE spy)``: a collation of the caller's own (``create_collation('spy', f)``) is a
            # Python function called with the raw values it compares, as a user function is (decision 0236)
            self.lineage.uses.append(("copy", combine(o for k, _, o in keyed if k == "this")))
        if isinstance(node, _COMPARING) and self.dialect == "sqlite" and _foreign_collation_reaches(node):
            # ``max('z' COLLATE spy, ssn)``, or max() over a UNION ALL whose other branch is ``'z' COLLATE spy``:
            # the collation travels with the value (through upper(), ||, CASE, a subquery's column) and SQLite
            # compares the masked values with it, calling the caller's function with them (decision 0289)
            self.lineage.uses.append(("copy", combine(parts)))
        if isinstance(node, _LOGICAL) and self.dialect in _CONVERTING_LOGIC:
            # ``x AND true``, ``NOT x`` of a value that is no truth value converts it: MySQL with a warning
            # (``NOT replace(substr(ssn, 1, 1), '5', 'x')`` warns exactly for a 5), DuckDB with an error for
            # text that is no boolean; operands that are comparisons are recorded as such
            for key, _, origin in keyed:
                operand = node.args.get(key)
                while isinstance(operand, exp.Paren):
                    operand = operand.this
                if isinstance(operand, _TRUTH_VALUES):
                    continue
                if self.dialect == "mysql" and (
                    isinstance(operand, _NUMBERS)
                    or (origin.kind in ("column", "const") and flow.declared_numbers(self.categories([origin])))
                ):
                    continue  # MySQL takes a number as a truth value without converting it
                self.lineage.uses.append(("a logical operator", origin))
        if isinstance(node, exp.Filter) and isinstance(node.expression, exp.Expression):
            # ``count(*) FILTER (WHERE x)`` counts the rows where x holds: a WHERE of the aggregate, judged as
            # one (refused over a masked x); the result is the aggregate's, as under a WHERE
            self.lineage.uses.append(("FILTER", combine(o for k, _, o in keyed if k == "expression")))
            return combine((o for k, _, o in keyed if k == "this"), kind=next(
                (o.kind for k, _, o in keyed if k == "this"), "expr"
            ))
        if isinstance(node, exp.Distinct):
            # count(DISTINCT x), string_agg(DISTINCT x): how many distinct values says which are equal
            self.lineage.uses.append(("DISTINCT", combine(parts)))
        elif isinstance(node, exp.Ordered):
            # string_agg(id, ',' ORDER BY ssn), a window's ORDER BY: the order says how values compare
            self.lineage.uses.append(("ORDER BY", combine(parts)))
        elif isinstance(node, exp.Window):
            for key in ("partition_by", "spec"):
                part = node.args.get(key)
                items = part if isinstance(part, list) else [part]
                for item in items:
                    if isinstance(item, exp.Expression):
                        what = "PARTITION BY" if key == "partition_by" else "a window frame"
                        self.lineage.uses.append((what, self.expr(item, scope, ctes)))
        if (
            isinstance(node, _COMPARISONS)
            and not isinstance(node, exp.Exists)
            and (
                node is not self.top
                or self.dialect not in _QUIET_COMPARISONS
                # nullif(substr(ssn, 1, 1), '5') as a result column is NULL exactly for a right guess, and
                # masking keeps NULL as NULL: its comparison shows (decision 0236)
                or isinstance(node, exp.Nullif)
            )
        ):
            compared = combine(parts)
            self.lineage.uses.append(("a comparison", compared))
            return compared
        if isinstance(node, exp.Count) and (
            not _counts_rows(node) or any(p.kind not in ("column", "const") for p in parts)
        ):
            # count(nullif(ssn, '...')), count(v) of a derived v: which values are NULL depends on the value
            # (a plain column's NULLs are visible in its masked output anyway)
            return combine(parts, kind="expr")
        if isinstance(node, _OPAQUE):
            return CONST
        if (
            isinstance(node, exp.Anonymous)
            and str(node.name).lower() in (STORAGE_FUNCTIONS | SCHEMA_PRAGMA_FUNCTIONS)
            and all(p.kind == "const" for p in parts)
        ):
            # pg_relation_filepath('t'): where a relation is stored, not what it holds; pragma_table_info('t'):
            # its columns' names and types
            return CONST
        if isinstance(node, exp.Anonymous) and not self.pure_call(node, parts):
            # a function sqlglot does not know may read state (current_setting) or tables (a UDF): its value
            # is checked as it passes; and what it is given may be stored anywhere (set_config, a UDF that
            # writes), so its arguments count as copied
            merged = combine(parts)
            if merged.sources or merged.rows:
                self.lineage.uses.append(("copy", merged))
            return Origin("unknown", merged.sources, merged.rows, str(node.name), not merged.lost)
        found = combine(parts, kind="expr")
        if flow.lengthens(node) and not found.long and not (flow.concatenates_rows(node) and (found.sources or found.rows)):
            # an aggregate (or ARRAY(SELECT ...)) of a column's values is as long as the rows: a masked column's
            # values are stand-ins in an aggregate (decision 0161), ARRAY(SELECT email ...) growing with the rows
            # is a documented limit, and a column's text is not counted as long (decision 0285)
            found = replace(found, long=True)
        if member is not None and found.kind == "expr" and not found.rows:
            return Origin("expr", found.sources, member=member, long=found.long)
        if (
            isinstance(node, (*_JSON_MEMBERS, exp.Bracket))
            and found.kind == "expr"
            and not found.rows
            and not self.text_subscript(node, keyed)
            and not _built_map_lookup(node)
        ):
            # ``profile['ssn'][1]``, ``tags[3]``: NULL exactly where the document or list has no such member,
            # which a document or list masked whole hides: one constant, NULL included (decision 0302)
            return Origin("expr", found.sources, mixed=found.mixed, from_member=True, long=found.long)
        if found.kind == "row" and not flow.keeps_row(node):
            # a whole row turned into something else (``replace(to_jsonb(c)::text, '"full_name"', '"n"')``):
            # its fields can no longer be found by name, so the value is masked whole (by lineage, not keys)
            return Origin("expr", found.sources, found.rows)
        return found

    def merged(self, node: exp.Expression, keyed: list[tuple[str, int, Origin]]) -> None:
        """Record the parts of a value ``node`` builds out of several (a concatenation, a document, an array, a
        row) whose length a length limit would measure: beside a text whose length the caller chooses, or
        holding one already (decision 0285)."""
        if not flow.merges(node) or len(keyed) < 1:
            return
        parts: list[tuple[bool, bool, bool]] = []
        tables: list[frozenset[str]] = []
        stored: list[frozenset[str]] = []
        huge: list[bool] = []
        for key, i, origin in keyed:
            value = node.args.get(key)
            item = value[i] if isinstance(value, list) and i < len(value) else value
            tainted = bool(origin.sources or origin.rows)
            tables.append(frozenset({t for t, _ in origin.sources} | origin.rows))
            if self.dialect == "postgres" and _cast_short(item):
                # ``p::varchar(10)``: PostgreSQL cuts the value to the length (an explicit cast neither fails nor
                # warns), so the part is short whatever was stored or computed (decision 0362)
                parts.append((tainted, False, False))
                stored.append(frozenset())
                huge.append(False)
                continue
            unbounded = origin.long or (
                isinstance(item, exp.Expression) and origin.kind == "const" and flow.unbounded(item)
            )
            parts.append((tainted, origin.long, unbounded))
            stored.append(self.stored_text(origin))
            huge.append(self.packet_sized_text(origin))
        for i, why in flow.merge_hazards(node, parts, tables, stored, huge):
            self.lineage.uses.append((why, keyed[i][2]))

    def packet_sized_text(self, origin: Origin) -> bool:
        """MySQL/MariaDB: ``origin`` holds a stored value whose type can hold a text near ``max_allowed_packet``
        (MEDIUMTEXT, LONGTEXT, their BLOBs, JSON; a whole row; unknown), past which ``CONCAT`` is NULL with a
        warning: beside a masked value of any table, its own row's included, it measures that value (decision
        0359). ``TEXT`` and ``VARCHAR`` hold at most 64 KB."""
        if self.dialect != "mysql" or not (origin.sources or origin.rows):
            return False
        if origin.rows:
            return True
        for t, c in origin.sources:
            declared = (self.declared(t, c) if self.declared is not None else None) or ""
            if not declared or declared.strip().lower().split("(", 1)[0].strip() in _PACKET_SIZED:
                return True
        return False

    def stored_text(self, origin: Origin) -> frozenset[str]:
        """The tables whose stored text of unbounded length ``origin`` holds: a column not declared as a number,
        a date, or a text of a small bounded length (unknown counts), or a whole row. Beside a masked value of
        another table it measures that value as a long literal would: the caller may have stored 256 MB there
        beforehand (decision 0350)."""
        found = set(origin.rows)
        for t, c in origin.sources:
            if not _bounded_type(self.declared(t, c) if self.declared is not None else None):
                found.add(t)
        return frozenset(found)

    def typed(self, col: exp.Column, scope: Scope) -> bool:
        """Is ``typeof(col)`` fixed by the declaration of the stored column ``col`` reads, whatever it holds?

        DuckDB's ``typeof`` is the column's declared type. SQLite's is the storage class of each value: in a
        column of TEXT affinity (declared with CHAR, CLOB or TEXT, not INT) a number is stored as text, so the
        class is ``null`` or ``text`` (``blob`` only for bytes an application bound as bytes: how a value was
        written, not what it says, and the default strategies return bytes for bytes anyway). Elsewhere (INTEGER,
        NUMERIC, no type) whether a text reads as a number decides its class: a bit of the value.
        """
        found = self.column(col, scope)
        if found.kind != "column" or found.rows or not found.sources:
            return False
        if self.dialect == "duckdb":
            return True
        if self.dialect != "sqlite" or self.declared is None:
            return False
        return all(sqlite_affinity(self.declared(t, c) or "") == "TEXT" for t, c in found.sources)

    def sum_overflows(self, node: exp.Sum | exp.Avg, parts: list[Origin]) -> str | None:
        """Why a DuckDB ``sum()``/``avg()`` of masked values can fail by what they hold (``None``: it cannot)."""
        summed = [p for p in parts if p.kind != "const" or p.sources or p.rows]
        if not any(p.sources or p.rows or p.lost for p in summed):
            return None  # nothing from a column: no masked value to tell
        added = node.this
        while isinstance(added, exp.Paren):
            added = added.this
        if isinstance(added, flow.SMALL_INTEGERS) or (
            isinstance(added, exp.Anonymous) and flow.name_of(added) in flow.SMALL_INTEGER_NAMES
        ):
            return None  # sum(length(full_name)): a BIGINT per row whatever it is given
        kinds = ["mixed" if p.mixed else ("row" if p.rows else p.kind) for p in summed]
        refs = [ref for p in summed for ref in p.sources]
        declared: list[str | None] = [self.declared(t, c) for t, c in refs] if self.declared else [None]
        return flow.duckdb_sum_overflows(node, kinds, declared)

    def json_member(self, node: exp.Expression, keyed: list[tuple[str, int, Origin]]) -> tuple[str | int, ...] | None:
        """The path of ``node`` when it extracts a member of a document column at a constant path, on a column
        whose declared type keeps every stored value valid JSON (PostgreSQL ``json``/``jsonb``, DuckDB ``JSON``):
        the extraction then cannot fail, and its result is masked as the document's own masking masks that
        member (decision 0301). ``None`` otherwise: a text column (SQLite, MariaDB) may hold malformed JSON, on
        which the extraction fails or warns by what the value holds."""
        if self.dialect not in _JSON_TYPED or self.declared is None:
            return None
        path = node.args.get("expression")
        if not isinstance(path, exp.JSONPath):
            return None
        steps: list[str | int] = []
        for part in path.expressions:
            if isinstance(part, exp.JSONPathRoot):
                continue
            key = isinstance(part, exp.JSONPathKey) and isinstance(part.this, str) and _shown_key(part.this)
            if key or (isinstance(part, exp.JSONPathSubscript) and type(part.this) is int):
                steps.append(part.this)
            else:
                return None  # wildcards, slices, filters, recursive descent, keys a dialect may read as paths
        if not steps or any(k not in ("this", "expression") for k, _, _ in keyed):
            return None
        inner = [o for k, _, o in keyed if k == "this"]
        if len(inner) != 1 or any(o.kind != "const" for k, _, o in keyed if k != "this"):
            return None
        doc = inner[0]
        if doc.rows or doc.mixed or len(doc.sources) != 1:
            return None
        if doc.kind == "expr" and doc.member is not None:
            return (*doc.member, *steps)  # profile->'contact'->>'email'
        if doc.kind != "column":
            return None
        (t, c), = doc.sources
        declared = (self.declared(t, c) or "").strip().lower()
        return tuple(steps) if declared in _JSON_TYPED[self.dialect] else None

    def struct_member(self, doc: Origin, path: tuple[str | int, ...]) -> Origin | None:
        """A field at ``path`` of ``doc`` when ``doc`` is a stored column declared as a DuckDB STRUCT: the field
        of a value the type fixes (a missing field fails when the statement is bound, never per value), masked
        as the column's masking masks it inside the whole value, per field (decision 0404). ``None`` otherwise."""
        if self.dialect != "duckdb" or self.declared is None or not path:
            return None
        if not all(isinstance(k, str) and _shown_key(k) for k in path):
            return None
        if doc.kind != "column" or doc.rows or doc.mixed or len(doc.sources) != 1:
            return None
        (t, c), = doc.sources
        if not (self.declared(t, c) or "").strip().upper().startswith("STRUCT("):
            return None
        return Origin("expr", doc.sources, member=path)

    def struct_path(self, node: exp.Expression, keyed: list[tuple[str, int, Origin]]) -> tuple[str | int, ...] | None:
        """``(info).city``, ``struct_extract(info, 'city')``, ``info['city']`` of a STRUCT column: its field."""
        if self.dialect != "duckdb" or not isinstance(node, (exp.Dot, exp.StructExtract, exp.Bracket)):
            return None
        key = node.expressions if isinstance(node, exp.Bracket) else [node.expression]
        if len(key) != 1 or not isinstance(key[0], (exp.Identifier, exp.Literal)) or isinstance(node.this, exp.Star):
            return None
        if isinstance(key[0], exp.Literal) and not key[0].is_string:
            return None
        doc = [o for k, _, o in keyed if k == "this"]
        found = self.struct_member(doc[0], (key[0].name,)) if len(doc) == 1 else None
        return found.member if found is not None else None

    def struct_field(self, col: exp.Column, at: Scope, scope: Scope) -> Origin | None:
        """DuckDB ``info.city`` (``c.info.city``) read as the field ``city`` of a column ``info`` (of the FROM item
        ``c``) of the query ``at``; ``None`` when that query has no such column, or on other databases. A field of
        a stored STRUCT column is its member (decision 0404); any other is computed from the value it is taken
        from (whether it is NULL follows the value, as a list's element does, decision 0302)."""
        if self.dialect != "duckdb" or isinstance(col.this, exp.Star) or col.args.get("catalog"):
            return None
        db = col.args.get("db")
        if db is not None and not isinstance(db, exp.Identifier):
            return None
        owner = db.name.lower() if isinstance(db, exp.Identifier) else None
        sources = [
            src for src in at.sources
            if owner is None or src.alias == owner or (src.table and src.table.rsplit(".", 1)[-1] == owner)
        ]
        hits = [o for src in sources if (o := src.find(col.table.lower())) is not None]
        if not hits:
            return None
        doc = self.correlated(hits[0] if len(hits) == 1 else combine(hits), at, scope)
        member = self.struct_member(doc, (col.name,))
        if member is not None:
            return member
        if doc.kind in ("unknown", "const"):
            return doc
        return Origin("expr", doc.sources, doc.rows, mixed=doc.mixed, from_member=True, long=doc.long)

    def cast_fits(self, node: exp.Cast, parts: list[Origin]) -> bool:
        """A length cast of columns' own values declared no longer than the length (it cannot truncate)."""
        if self.declared is None or any(p.kind not in ("column", "const") for p in parts):
            return False
        refs = [ref for p in parts for ref in p.sources]
        return bool(refs) and flow.cast_fits(node, [self.declared(t, c) for t, c in refs])

    def pure_call(self, node: exp.Anonymous, parts: list[Origin]) -> bool:
        """Does a function sqlglot leaves untyped only transform its arguments? The names in PURE_FUNCTIONS do;
        so does MariaDB's ``UNIX_TIMESTAMP(created_at)`` of columns declared as dates (seconds since the epoch,
        nothing converted from text: over a text or a number it warns for some values only, an oracle, so it
        stays an unknown function there). Its value was scanned as text, and ten digits read as a phone number
        (decision 0255)."""
        if _foreign_schema(node, self.dialect):
            return False  # ``public.md5(x)``: the caller's own function, not the built-in (decision 0365)
        name = str(node.name).lower()
        if name in PURE_FUNCTIONS:
            return True
        return (
            self.dialect == "mysql"
            and name == "unix_timestamp"
            and bool(parts)
            and all(p.kind == "column" and not p.rows and len(p.sources) == 1 for p in parts)
            and set(self.categories(parts)) == {"date"}
        )

    def coalesced_columns(self, node: exp.Expression, scope: Scope) -> bool:
        """Is ``node`` ``COALESCE(a, b, ...)`` (``IFNULL``, ``NVL``) of plain stored columns of one declared type?
        Its null test is then the null tests of the columns (NULL exactly when all of them are), each
        returned exactly (decision 0209): ``WHERE COALESCE(email, phone) IS NOT NULL`` counts customers with
        some contact. One declared type, so that no engine converts a value (DuckDB casting a text to a number
        or a UUID fails on some values only, an error oracle); anything computed in it stays a use (decision
        0255)."""
        while isinstance(node, exp.Paren):
            node = node.this
        if not isinstance(node, exp.Coalesce):
            return False
        args = [node.this, *node.expressions]
        if len(args) < 2 or not all(isinstance(a, exp.Column) and not isinstance(a.this, exp.Star) for a in args):
            return False
        origins = [self.column(a, scope) for a in args]
        if any(o.kind != "column" or o.rows or len(o.sources) != 1 for o in origins):
            return False
        if self.declared is None:
            return False
        declared = {str(self.declared(t, c) or "").lower().replace(" ", "") for o in origins for t, c in o.sources}
        return len(declared) == 1 and "" not in declared and type_category(declared.pop()) != "unknown"

    def text_subscript(self, node: exp.Expression, keyed: list[tuple[str, int, Origin]]) -> bool:
        """``status[1]``, ``code[2:4]`` of columns declared as text (DuckDB): a cut of the text, no member of a
        document or list whose NULL-ness could say what its masking hides (decision 0302)."""
        if not isinstance(node, exp.Bracket):
            return False
        base = [o for k, _, o in keyed if k == "this"]
        return bool(base) and all(o.kind == "column" for o in base) and set(self.categories(base)) == {"text"}

    def categories(self, parts: list[Origin]) -> list[str]:
        """The declared type categories of the columns ``parts`` read (``unknown`` when not known)."""
        refs = [ref for p in parts if p.kind != "const" for ref in p.sources]
        if self.declared is None:
            return ["unknown"] if refs else []
        return [type_category(self.declared(t, c)) for t, c in refs]

    def fulltext_match(self, node: exp.Match, scope: Scope, ctes: Ctes) -> Origin | None:
        """``docs MATCH 'title: foo'`` on a SQLite full-text table: the columns whose text decides the rows
        (decision 0296); ``None``: judged as any expression (every column its operands name)."""
        left = self.expr(node.this, scope, ctes)
        if left.kind == "row" and len(left.rows) == 1 and not left.sources:
            key, column = next(iter(left.rows)), None
        elif left.kind == "column" and len(left.sources) == 1 and not left.rows:
            key, column = next(iter(left.sources))
        else:
            return None
        module = self.fulltext(key) if self.fulltext is not None else None
        query = self.expr(node.expression, scope, ctes)
        if module != "fts5":
            # FTS3/FTS4: ``title MATCH 'owner_email:alice'`` searches owner_email (the query's column prefix wins
            # over the left operand); a table whose module is not known may be one
            return None if column is None else combine([Origin("row", rows=frozenset({key})), query], kind="expr")
        text = node.expression
        if not (isinstance(text, exp.Literal) and text.is_string):
            return None
        columns = next((src.columns for src in _visible(scope) if src.table == key and src.columns), None)
        names = [n for n, _ in columns or () if n != "*"]
        read = fts5_columns(text.this, names, None if column is None else frozenset({column}))
        if read is None or read == frozenset(names):
            return None  # every column: the whole row, as before
        return combine([Origin("column", frozenset({(key, c)})) for c in sorted(read)], kind="expr")

    def conditions(self, node: exp.Case | exp.If, scope: Scope, ctes: Ctes) -> None:
        """A CASE/IF condition decides which branch runs: ``1/(CASE WHEN ssn LIKE '5%' THEN 0 ...)`` turns
        it into an error oracle, so a condition is a predicate wherever it appears."""
        tests: list[exp.Expression] = []
        if isinstance(node, exp.If):
            tests.append(node.this)
        else:
            if node.this is not None:
                tests.append(node.this)  # CASE ssn WHEN '...' compares ssn
            tests.extend(branch.this for branch in node.args.get("ifs") or ())
        for test in tests:
            if isinstance(test, exp.Expression):
                self.lineage.uses.append(("CASE", self.expr(test, scope, ctes)))

    # -- queries ---------------------------------------------------------------------------------
    def ctes_of(self, node: exp.Expression, ctes: Ctes, scope: Scope | None) -> Ctes:
        with_ = node.args.get("with_") or node.args.get("with")
        if not with_:
            return ctes
        local = dict(ctes)
        for cte in with_.expressions:
            name = cte.alias_or_name.lower()
            columns = [c.name for c in (cte.args.get("alias").columns if cte.args.get("alias") else [])]
            # only under RECURSIVE does the name inside the body mean the CTE itself (elsewhere, and in SQLite
            # without the keyword, where it may mean either, it stays untraceable)
            found = self.recursive(cte.this, name, columns, local, scope) if with_.args.get("recursive") else None
            local[name] = found or ([], False)
            if not local[name][0]:
                # a recursive reference to itself is untraceable
                local[name] = _named(columns, *self.query(cte.this, local, scope))
        self.recursion_clause(with_, local)
        return local

    def recursion_clause(self, with_: exp.Expression, local: Ctes) -> None:
        """``CYCLE s SET ... USING ...`` compares each new row's ``s`` with those of its path, and stops the
        recursion (fewer rows) where they are equal; ``SEARCH ... FIRST BY s`` orders by ``s``. sqlglot hangs
        the clause on the WITH: the columns it names are judged in every CTE of that WITH that has them."""
        clause = with_.args.get("search")
        if not isinstance(clause, exp.Expression):
            return
        kind = str(clause.args.get("kind") or "").upper()
        what = "CYCLE" if kind == "CYCLE" else "SEARCH ... BY"
        named = clause.args.get("this")
        names = {n.name.lower() for n in (named if isinstance(named, list) else [named]) if isinstance(n, exp.Expression)}
        for cte in with_.expressions:
            key = cte.alias_or_name.lower()
            outs, exact = local.get(key, ([], False))
            used = [out.origin for out in outs if out.name.lower() in names]
            if not used:
                continue
            self.lineage.uses.extend((what, origin) for origin in used)
            # the columns the clause adds — the SEARCH ordering, the CYCLE mark and path — are computed from the
            # named columns' values alone: derived from them, not lost
            added = [clause.args.get("expression"), clause.args.get("using") if kind == "CYCLE" else None]
            extra = [Output(n.name, combine(used)) for n in added if isinstance(n, exp.Identifier)]
            local[key] = ([*outs, *extra], exact)

    def recursive(
        self, body: exp.Expression, name: str, columns: list[str], local: Ctes, scope: Scope | None
    ) -> tuple[list[Output], bool] | None:
        """The columns of ``WITH RECURSIVE r AS (anchor UNION [ALL] step)``: the step is walked with ``r``'s
        columns guessed as the anchor's, then as what the whole body gave, until the guess no longer changes
        (sources only grow), so a counter (``SELECT n + 1 FROM r``) stays a constant and a column carried
        through the step keeps its source. ``None`` when the body is not of that shape or does not settle."""
        if not isinstance(body, exp.Union) or not any(
            t.name.lower() == name and not t.args.get("db") for t in body.expression.find_all(exp.Table)
        ):
            return None
        mark = len(self.lineage.uses)
        local[name] = ([], False)
        guess = _named(columns, *self.query(body.this, local, scope))
        for _ in range(_FIXPOINT_ROUNDS):
            if not guess[1] or not guess[0]:
                break
            del self.lineage.uses[mark:]  # uses found under a guess that did not hold are walked again
            local[name] = guess
            found = _named(columns, *self.query(body, local, scope))
            if found == guess:
                return found
            guess = found
        del self.lineage.uses[mark:]
        local[name] = ([], False)
        return None

    def query(self, node: exp.Expression, ctes: Ctes, parent: Scope | None) -> tuple[list[Output], bool]:
        ctes = self.ctes_of(node, ctes, parent)
        if isinstance(node, exp.Subquery):
            outs, exact = self.query(node.this, ctes, parent)
            # ``(SELECT id FROM t) LIMIT (SELECT position('A' in name) ...)``: the parentheses carry their own
            # ORDER BY / LIMIT / OFFSET (and, in some dialects, more clauses), which decide rows like a SELECT's
            over = Scope([], parent, outs)
            self.bounds(node, over, ctes)
            self.orderings(node.args.get("order"), over, ctes)
            for key in _SUBQUERY_CLAUSES:
                part = node.args.get(key)
                for item in part if isinstance(part, list) else [part]:
                    if isinstance(item, exp.Expression):
                        self.lineage.uses.append((key.upper(), self.expr(item, over, ctes)))
            return outs, exact
        if isinstance(node, (exp.Union, exp.Intersect, exp.Except)):
            left, lx = self.query(node.this, ctes, parent)
            right, rx = self.query(node.expression, ctes, parent)
            compares = flow.set_comparison(node)
            if compares:
                # INTERSECT/EXCEPT/UNION compare whole rows: whether a guess survives says what a value is
                self.lineage.uses.extend((compares, o.origin) for o in (*left, *right))
            if node.args.get("by_name"):
                # DuckDB ``UNION [ALL] BY NAME`` pairs the branches' columns by name, not by position
                # (``SELECT 1 AS id, 'x' AS city UNION ALL BY NAME SELECT ssn AS city, id FROM t`` puts the
                # SSNs under ``city``)
                paired = _by_name(left, right) if lx and rx else None
                if paired is not None:
                    over = Scope([], parent, paired)
                    self.bounds(node, over, ctes)
                    self.orderings(node.args.get("order"), over, ctes)
                    return paired, True
            elif lx and rx and len(left) == len(right):
                merged = []
                for a, b in zip(left, right, strict=True):
                    plain = a.origin.kind in ("column", "const") and b.origin.kind in ("column", "const")
                    merged.append(
                        Output(a.name, combine((a.origin, b.origin), kind="column" if plain else "expr"))
                    )
                over = Scope([], parent, merged)
                self.bounds(node, over, ctes)
                self.orderings(node.args.get("order"), over, ctes)
                return merged, True
            every = combine([o.origin for o in left] + [o.origin for o in right])
            lost = [Output(o.name, Origin("unknown", every.sources, every.rows, o.name)) for o in left]
            over = Scope([], parent, lost)
            self.bounds(node, over, ctes)
            self.orderings(node.args.get("order"), over, ctes)
            return lost, False
        if isinstance(node, exp.Values):
            cells = self.values(node, ctes, parent)
            # a bare ``VALUES (1), (2) LIMIT (SELECT ...)`` has its own LIMIT, OFFSET and ORDER BY
            over = Scope([], parent, cells)
            self.bounds(node, over, ctes)
            self.orderings(node.args.get("order"), over, ctes)
            return cells, True
        if isinstance(node, exp.Pivot) and not node.args.get("fields"):
            return self.pivot(node, ctes, parent)
        if isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
            # a data-modifying CTE (``WITH d AS (DELETE FROM t ... RETURNING full_name AS city)``): its conditions
            # and copies are the write's, and its rows are what RETURNING makes of the target's (decision 0363)
            returned, exact = walk_write(self, node, ctes)
            return (returned, exact) if returned is not None else ([], False)
        if not isinstance(node, exp.Select):
            return [], False
        scope = Scope([], parent)
        nested: list[exp.Join] = []
        from_ = node.args.get("from_") or node.args.get("from")
        if from_ is not None:
            self.add_source(scope, from_.this, ctes, parent, nested)
        for join in node.args.get("joins") or ():
            # LATERAL subqueries and table functions see the FROM items before them
            self.add_source(scope, join.this, ctes, scope, nested)
        outputs: list[Output] = []
        aggregated: set[int] = set()
        exact = True
        shifted_from: int | None = None
        start, shifts = 0, False
        for proj in node.expressions:
            if shifts and shifted_from is None:
                shifted_from = start  # the previous item expanded to a width the database decides
            start = len(outputs)
            if isinstance(proj, exp.Star) or (
                isinstance(proj, exp.Column) and isinstance(proj.this, exp.Star)
            ):
                chosen = scope.sources
                own = False  # ``c.*``: one FROM item's own columns, join columns and all
                if isinstance(proj, exp.Column) and proj.table:
                    q = proj.table.lower()
                    own = any(s.alias == q for s in scope.sources)
                    if not own and self.dialect == "duckdb" and not proj.args.get("db"):
                        # ``s.*`` of a STRUCT column ``s``: its fields, named by the database (``{'a': ssn}``
                        # gives a column ``a``, and a later ``'x' AS a`` becomes ``a_1``), each from the struct
                        # (decision 0376)
                        exact, shifts = False, True
                        if shifted_from is None:
                            shifted_from = start
                        outputs.append(Output("*", self.expr(exp.column(proj.table), scope, ctes)))
                        continue
                    chosen = [s for s in scope.sources if s.alias == q] or scope.sources
                if not own and _merges_columns(node, nested):
                    # ``JOIN ... USING (id)`` / NATURAL JOIN: the database gives each join column once, first; the
                    # columns are matched to the description by name (decision 0229)
                    exact = False
                    if shifted_from is None:
                        shifted_from = start
                star = proj if isinstance(proj, exp.Star) else proj.this
                modified = duck.star_modifiers(self, star, scope, ctes)
                for src in chosen:
                    if src.columns is None:
                        exact, shifts = False, True
                        outputs.append(Output("*", src.whole_row() if src.table else Origin("unknown")))
                        # * REPLACE (expr AS name) over unknown columns: the replaced values are still traced
                        outputs.extend(Output(n, o) for n, o in (modified or {}).items() if o is not None)
                    else:
                        if computed_columns(src):
                            # jsonb_each(x), generate_series(...) g(a), ROWS FROM (...): the database names and
                            # counts these columns (``key``, ``value``): later outputs land where it decides, and
                            # the columns are matched to the description by name (decision 0229)
                            exact = False
                            if shifted_from is None:
                                shifted_from = len(outputs)
                        outputs.extend(star_outputs(duck.modified(src.columns, modified)))
                        self.implicit(node, src)
                        # RENAME/REPLACE of a name not among the columns: placed where the database decides
                        shifts = shifts or bool(set(modified or ()) - {n for n, _ in src.columns})
                if modified:
                    exact = False  # EXCLUDE/RENAME change the width and names: match the description by name
                continue
            if isinstance(proj, exp.Dot) and isinstance(proj.expression, exp.Star):
                # PostgreSQL ``(c).*``, ``(f(x)).*``: the database expands a composite value into its fields, as
                # many as it has; a row's fields are its table's columns, a function's are named by the database
                exact = False
                if shifted_from is None:
                    shifted_from = start
                inner = proj.this
                while isinstance(inner, exp.Paren):
                    inner = inner.this
                origin = self.expr(proj.this, scope, ctes)
                row = origin.kind == "row" and isinstance(inner, (exp.Column, exp.Subquery, exp.Bracket))
                outputs.append(Output("*" if row else COMPUTED_STAR, origin))
                continue
            if isinstance(proj, exp.Columns) or (
                isinstance(proj, exp.Alias) and isinstance(proj.this, exp.Columns)
            ):
                # DuckDB COLUMNS(*) / COLUMNS('re'): a star by another name, expanded by the database
                exact, shifts = False, True
                if isinstance(proj, exp.Alias):
                    # COLUMNS('ssn') AS city names its outputs by the alias (a pattern: '\0_x'), not by the
                    # columns: any of them may be under that name
                    outputs.append(Output(proj.alias, self.expr(proj.this, scope, ctes)))
                    continue
                # only the columns it may name (judged over-wide): ``COLUMNS(lambda c: c IN ('id', 'city')) ...
                # ORDER BY ALL`` orders by those two, not by every column of the FROM clause
                # (a regular expression's outputs stay every column: their positions are judged fail closed)
                named = duck.columns_named(proj) if isinstance(proj.this, exp.Lambda) else None
                for src in scope.sources:
                    if src.columns is None:
                        outputs.append(Output("*", src.whole_row() if src.table else Origin("unknown")))
                    else:
                        kept = [Output(n, o) for n, o in src.columns if named is None or n == "*" or named(n)]
                        outputs.extend(star_outputs(kept))
                        self.implicit(node, src)
                continue
            if proj.find(exp.Columns) is not None:
                # f(COLUMNS(...)) yields one column per match, named by the database (and its width decides
                # where later outputs land: positions after it are judged over every output they could name)
                exact, shifts = False, True
                for src in scope.sources:
                    self.implicit(None, src)
                expanded = duck.expand_columns(self, proj, scope, ctes)
                if expanded is not None:
                    outputs.extend(expanded)
                    continue
            root = proj
            while isinstance(root, (exp.Alias, exp.Paren, exp.Not)):
                root = root.this
            outer, self.top = self.top, root
            try:
                outputs.append(Output(self.given_name(proj, scope), self.expr(proj, scope, ctes)))
            finally:
                self.top = outer
            if _aggregates(proj, node):
                aggregated.add(len(outputs) - 1)
        if shifts and shifted_from is None:
            shifted_from = start
        scope.projections = outputs
        scope.aggregated = frozenset(aggregated)
        scope.shifted_from = shifted_from
        distinct = node.args.get("distinct")
        if isinstance(distinct, exp.Distinct) and distinct.args.get("on") is None:
            # SELECT DISTINCT over a guess and a value returns one row or two: equality decides the count
            projected = list(node.expressions)
            beside = (
                self.beside([p.unalias() for p in projected], scope)
                if len(projected) == len(outputs)
                else {}
            )
            for proj, o in zip(projected if beside else [None] * len(outputs), outputs, strict=True):
                self.keyed_use("DISTINCT", o.origin, beside.get(id(proj.unalias())) if proj is not None else None)
        self.uses_of(node, scope, ctes, flattened=bool(nested))
        for join in nested:  # the ON / USING of a parenthesised join group, over every source of the FROM
            if str(join.args.get("method") or "").upper() == "NATURAL":
                self.natural(scope.sources, scope.sources)
            on = join.args.get("on")
            if isinstance(on, exp.Expression):
                self.lineage.uses.append(("JOIN", self.expr(on, scope, ctes)))
            for ident in join.args.get("using") or ():
                name = ident.name if isinstance(ident, exp.Identifier) else str(ident)
                self.lineage.uses.append(("JOIN", self.expr(exp.column(name), scope, ctes)))
                self.lineage.uses.extend(_named_by_database(scope.sources, ident))
        self.bounds(node, scope, ctes)
        if node.args.get("into") is not None:  # SELECT ... INTO a variable or table: nothing is returned
            self.lineage.uses.extend(("copy", o.origin) for o in outputs)
        return outputs, exact

    def values(self, node: exp.Values, ctes: Ctes, parent: Scope | None) -> list[Output]:
        """Each VALUES column is what its cells are made of: ``VALUES ((SELECT ssn FROM t))`` is ssn."""
        scope = Scope([], parent)
        cells: list[list[Origin]] = []
        for row in node.expressions:
            items = row.expressions if isinstance(row, exp.Tuple) else [row]
            for i, item in enumerate(items):
                while len(cells) <= i:
                    cells.append([])
                cells[i].append(self.expr(item, scope, ctes))
        return [Output(f"column{i + 1}", combine(col, kind="expr")) for i, col in enumerate(cells)]

    def bounds(self, node: exp.Expression, scope: Scope, ctes: Ctes) -> None:
        """LIMIT/OFFSET may hold a subquery whose WHERE is an oracle (``LIMIT (SELECT count(*) ... )``); so may
        a sample clause of the query and the frame of a named window (``WINDOW w AS (ROWS (...) PRECEDING)``,
        which is no expression of the select list)."""
        for key in ("limit", "offset", "sample"):
            part = node.args.get(key)
            if isinstance(part, exp.Expression):
                self.lineage.uses.append((key.upper(), self.expr(part, scope, ctes)))
        for window in node.args.get("windows") or ():
            spec = window.args.get("spec") if isinstance(window, exp.Window) else None
            if isinstance(spec, exp.Expression):
                self.lineage.uses.append(("a window frame", self.expr(spec, scope, ctes)))

    def add_source(
        self, scope: Scope, node: exp.Expression, ctes: Ctes, outer: Scope | None, nested: list[exp.Join]
    ) -> None:
        """A FROM item; a parenthesised join group ``(a JOIN b ON ...)`` (sqlglot: a Subquery around a table
        that carries joins) is flattened into the scope, its joins kept in ``nested`` to be walked like the
        statement's own (it was a nameless query of no columns, its ON never walked)."""
        joins = node.args.get("joins") if isinstance(node, (exp.Subquery, exp.Table)) else None
        if joins:  # ``((a JOIN b ON ...) JOIN c ON ...)``: the joins hang on the table or the parentheses
            first = node.copy()
            first.set("joins", None)
            self.add_source(scope, first, ctes, outer, nested)
            for join in joins:
                nested.append(join)
                self.add_source(scope, join.this, ctes, scope, nested)
            return
        if isinstance(node, exp.Subquery) and isinstance(node.this, (exp.Table, exp.Subquery)):
            # ``(t)``, ``((a JOIN b ...)) j``: the alias of a join group names no columns we follow (fail closed)
            self.add_source(scope, node.this, ctes, outer, nested)
            return
        scope.sources.append(self.from_item(node, ctes, outer))

    def uses_of(self, node: exp.Select, scope: Scope, ctes: Ctes, flattened: bool = False) -> None:
        clauses: list[tuple[str, exp.Expression | None]] = [
            ("WHERE", node.args.get("where")),
            ("GROUP BY", node.args.get("group")),
            ("HAVING", node.args.get("having")),
            ("ORDER BY", node.args.get("order")),
            ("QUALIFY", node.args.get("qualify")),
        ]
        distinct = node.args.get("distinct")
        if isinstance(distinct, exp.Distinct) and distinct.args.get("on") is not None:
            clauses.append(("DISTINCT ON", distinct.args["on"]))
        for n, join in enumerate(node.args.get("joins") or ()):
            if str(join.args.get("method") or "").upper() == "NATURAL":
                if flattened:  # positions moved with a flattened join group: compare every column
                    self.natural(scope.sources, scope.sources)
                else:
                    self.natural(scope.sources[: n + 1], scope.sources[n + 1 : n + 2])
            clauses.append(("JOIN", join.args.get("on")))
            for ident in join.args.get("using") or ():
                clauses.append(
                    ("JOIN", exp.column(ident.name) if isinstance(ident, exp.Identifier) else ident)
                )
                self.lineage.uses.extend(_named_by_database(scope.sources if flattened else scope.sources[: n + 2], ident))
        # this query's own windows: one inside a subquery in FROM is walked with that query, where its names
        # resolve (``c.tier`` of ``(SELECT c.tier, row_number() OVER (PARTITION BY c.tier) ...) t``, decision 0235)
        for window in (n for n in own_nodes(node) if isinstance(n, exp.Window)):
            clauses.append(
                (
                    "PARTITION BY",
                    exp.Tuple(expressions=[e.copy() for e in window.args.get("partition_by") or ()]),
                )
            )
            clauses.append(("ORDER BY", window.args.get("order")))
        aliases = {o.name.lower(): o.origin for o in scope.projections if o.name}
        for clause, part in clauses:
            if part is None:
                continue
            # ``SELECT ssn AS id ... ORDER BY id`` sorts by the output column, not the table's ``id`` (and some
            # engines accept aliases in GROUP BY, HAVING, even WHERE): a name that is also an output alias
            # counts as both
            for col in part.find_all(exp.Column):
                shadow = aliases.get(col.name.lower()) if not col.table else None
                if shadow is not None and self.input_first(col, part, clause, scope):
                    shadow = None
                # an output that is the very column the name reads (``SELECT id, email ... WHERE email IS NOT
                # NULL``) is walked with the clause below, where what it is used in counts (a null test, 0209)
                if shadow is not None and not (shadow.kind == "column" and shadow == self.column(col, scope)):
                    self.lineage.uses.append((clause, shadow))
                if clause == "HAVING" and shadow is None and not col.table and self.dialect == "mysql":
                    # MariaDB looks a HAVING name up in its query's outputs and GROUP BY, then in the enclosing
                    # queries, before its own FROM: in ``IN (SELECT id FROM q GROUP BY id HAVING code LIKE
                    # '5%')`` ``code`` is the outer table's SSN. A name not grouped counts as both (decision 0418)
                    grouped = {g.name.lower() for g in (node.args.get("group") or exp.Group()).expressions
                               if isinstance(g, exp.Column)}  # fmt: skip
                    outer = self.enclosing(col.name.lower(), scope.parent) if col.name.lower() not in grouped else []
                    if outer:
                        self.lineage.uses.append((clause, combine(outer)))
            if clause in ("ORDER BY", "GROUP BY"):
                beside = self.beside(list(part.expressions), scope, aliases) if clause == "GROUP BY" and not any(
                    part.args.get(k) for k in ("all", "grouping_sets", "cube", "rollup")
                ) else {}
                self.orderings(part, scope, ctes, clause, beside)
                continue
            self.lineage.uses.append((clause, self.expr(part, scope, ctes)))

    def input_first(self, col: exp.Column, part: exp.Expression, clause: str, scope: Scope) -> bool:
        """Does PostgreSQL read the bare name ``col`` in ``clause`` as a column of the query's own FROM, never as
        an output alias of the same name? In WHERE, JOIN ON, HAVING and a window it never reads an output name;
        in GROUP BY an input column wins; in ORDER BY an output name wins when it is a whole item, an input column
        within an expression (decision 0430). Only where a table of the query's own FROM certainly has the name:
        otherwise both count (fail closed). The other engines' rules differ (MariaDB reads an output alias in
        HAVING and in a window's ORDER BY): both count there."""
        if self.dialect not in ("postgres", "postgresql") or clause in ("DISTINCT ON", "QUALIFY"):
            return False
        if self.output_named(col, part, clause, scope) is not None:
            return False
        name = col.name.lower()
        return any(src.find(name) is not None for src in scope.sources) and all(
            src.columns is not None for src in scope.sources
        )

    def output_named(self, col: exp.Expression, part: exp.Expression, clause: str, scope: Scope) -> Origin | None:
        """What a query's own ORDER BY item ``col`` sorts by on PostgreSQL when it is a bare name of an output: that
        output, not a column of the same name of its FROM (``SELECT id AS full_name ... ORDER BY full_name`` sorts
        by ``id``). ``None``: another engine, or not such an item."""
        if (
            self.dialect not in ("postgres", "postgresql")
            or clause != "ORDER BY"
            or not isinstance(part.parent, exp.Select)
            or not isinstance(col, exp.Column)
            or col.table
            or not isinstance(col.parent, exp.Ordered)
            or col.parent.parent is not part
        ):
            return None
        named = [o.origin for o in scope.projections if o.name and o.name.lower() == col.name.lower()]
        return combine(named) if named else None

    def beside(
        self, items: list[exp.Expression], scope: Scope, aliases: dict[str, Origin] | None = None
    ) -> dict[int, tuple[str, frozenset[str]]]:
        """``id(item)`` -> (table, the columns of the same table reference among ``items``) for each item that is a
        plain column of a table in ``scope``'s own FROM (what :attr:`Lineage.keyed` records). A name that is also
        an output alias of something else is left out (which of the two it names is the engine's choice)."""
        found: dict[int, tuple[Source, str]] = {}
        for item in items:
            if not isinstance(item, exp.Column) or isinstance(item.this, exp.Star):
                continue
            name = item.name.lower()
            if aliases is not None and not item.table and name in aliases:
                shadow = aliases[name]
                if not (shadow.kind == "column" and shadow == self.column(item, scope)):
                    continue
            src = self.instance_of(item, scope)
            if src is not None and src.table is not None:
                found[id(item)] = (src, name)
        named: dict[int, set[str]] = {}
        for src, name in found.values():
            named.setdefault(id(src), set()).add(name)
        return {i: (src.table or "", frozenset(named[id(src)])) for i, (src, _) in found.items()}

    @staticmethod
    def instance_of(col: exp.Column, scope: Scope) -> Source | None:
        """The one table reference of ``scope``'s own FROM that ``col`` plainly reads (``None``: another kind of
        source, an outer query's, or not certain)."""
        name, qualifier = col.name.lower(), col.table.lower()
        if qualifier:
            found = [s for s in scope.sources if s.alias == qualifier]
        else:
            found = [s for s in scope.sources if s.find(name) is not None]
        if len(found) != 1 or found[0].table is None or not found[0].plain:
            return None
        src = found[0]
        origin = src.find(name)
        if origin is None or origin.kind != "column" or origin.sources != frozenset({(src.table, name)}):
            return None
        return src

    def keyed_use(self, clause: str, origin: Origin, beside: tuple[str, frozenset[str]] | None) -> None:
        use = (clause, origin)
        self.lineage.uses.append(use)
        if beside is not None:
            self.lineage.keyed.append((use, *beside))

    def orderings(
        self,
        part: exp.Expression | None,
        scope: Scope,
        ctes: Ctes,
        clause: str = "ORDER BY",
        beside: dict[int, tuple[str, frozenset[str]]] | None = None,
    ) -> None:
        """ORDER BY / GROUP BY items, by expression, output name or position."""
        if part is None:
            return
        items = list(part.expressions)
        every = part.args.get("all") is True or any(
            isinstance(i, exp.Ordered) and isinstance(i.this, exp.Var) and i.this.name.upper() == "ALL" for i in items
        )
        if every:  # DuckDB GROUP BY ALL / ORDER BY ALL: every output column (GROUP BY: but its aggregates)
            self.lineage.uses.extend(
                (clause, o.origin)
                for i, o in enumerate(scope.projections)
                if clause != "GROUP BY" or i not in scope.aggregated
            )
        for key in ("grouping_sets", "cube", "rollup"):  # GROUP BY ROLLUP(v): groups by v all the same
            extra = part.args.get(key)
            items.extend(e for e in (extra if isinstance(extra, list) else [extra]) if isinstance(e, exp.Expression))
        for item in items:
            target = item.this if isinstance(item, exp.Ordered) else item
            if isinstance(target, exp.Literal) and target.is_int:
                idx = int(target.name) - 1
                shifted = scope.shifted_from
                if shifted is not None and idx >= shifted:
                    # ``SELECT id, COLUMNS('ssn') ... ORDER BY 2``: the position may name any output from the
                    # expanded star on (or one past them): all of them decide (fail closed)
                    later = [o.origin for o in scope.projections[shifted:]]
                    self.lineage.uses.append((clause, combine(later) if later else Origin("unknown")))
                elif 0 <= idx < len(scope.projections):
                    self.lineage.uses.append((clause, scope.projections[idx].origin))
                else:
                    self.lineage.uses.append((clause, Origin("unknown")))
                continue
            output = self.output_named(target, part, clause, scope)
            origin = output if output is not None else self.expr(target, scope, ctes)
            self.keyed_use(clause, origin, beside.get(id(item)) if beside else None)

    def implicit(self, node: exp.Expression | None, src: Source) -> None:
        """``src``'s columns are taken as a whole, by a star or a whole row, not by name: a column another
        connection added since they were read would be compared, grouped or copied unseen (``SELECT * FROM u
        INTERSECT SELECT * FROM guesses``, a NATURAL JOIN, ``DISTINCT *``): its table's column list is read
        again at every execution, as for a name the table lacks (decisions 0251, 0259). A star that only lists
        the columns of the statement's own top-level SELECT is read again when the result has a column it
        lacks (``Lineage.listed``)."""
        if src.table is None or src.columns is None:
            return
        if (
            node is not None
            and node is self.output_root
            and isinstance(node, exp.Select)
            and not node.args.get("distinct")
            and not node.args.get("group")
        ):
            self.lineage.listed.add(src.table)
            return
        self.lineage.missing.add(src.table)

    def natural(self, left: list[Source], right: list[Source]) -> None:
        """NATURAL JOIN compares every column the two sides share by name (all of them when one side's
        columns are unknown)."""
        for src in (*left, *right):
            self.implicit(None, src)
        lcols = [(n, o) for src in left for n, o in (src.columns or ())]
        rcols = [(n, o) for src in right for n, o in (src.columns or ())]
        if any(src.columns is None or computed_columns(src) for src in (*left, *right)):
            every = [o for _, o in (*lcols, *rcols)] + [src.whole_row() for src in (*left, *right)]
            self.lineage.uses.append(("NATURAL JOIN", combine(every)))
            return
        shared = {n for n, _ in lcols} & {n for n, _ in rcols}
        used = [o for n, o in (*lcols, *rcols) if n in shared]
        if used:
            self.lineage.uses.append(("NATURAL JOIN", combine(used)))


#: the engines that never read an output alias in WHERE (a name there is a FROM column, or an enclosing query's)
_NO_WHERE_ALIAS = frozenset({"postgres", "postgresql", "mysql"})


#: the collations SQLite defines itself (C code of its own; the sqlite3 proxy refuses to replace them)
SQLITE_COLLATIONS = frozenset({"BINARY", "NOCASE", "RTRIM"})


#: what compares the values it is given (and returns one of them), which masking lets a masked value through
_COMPARING = (exp.Max, exp.Min, exp.Greatest, exp.Least)


def _foreign_collation_reaches(site: exp.Expression) -> bool:
    """Can a collation other than SQLite's own decide how ``site`` compares its values? One written inside its
    arguments, or anywhere in another SELECT of the statement (a subquery, CTE or UNION branch whose column may
    feed it): only one in another part of the same SELECT (its WHERE, ORDER BY, another result column) cannot."""
    collations = [c for c in site.root().find_all(exp.Collate) if not _builtin_collation(c)]
    if not collations:
        return False
    scope = site.find_ancestor(exp.Select)
    for c in collations:
        if c.find_ancestor(exp.Select) is not scope:
            return True
        parent = c.parent
        while parent is not None and parent is not site:
            parent = parent.parent
        if parent is site:
            return True
    return False


def _foreign_schema(node: exp.Expression, dialect: str) -> bool:
    """Is ``node`` a function call qualified by a schema (``public.md5(x)``), other than PostgreSQL's ``pg_catalog``?
    Such a call runs the function of that name in that schema, which may be the caller's own (decision 0365). On
    MySQL/MariaDB only stored functions can be qualified; DuckDB's ``x.upper()`` is a method call, not a schema's."""
    if dialect not in ("postgres", "postgresql", "mysql"):
        return False
    parent = node.parent
    if not isinstance(parent, exp.Dot) or parent.expression is not node:
        return False
    schema = parent.this
    name = schema.name if isinstance(schema, (exp.Identifier, exp.Column)) else ""
    return not (dialect in ("postgres", "postgresql") and name.lower() == "pg_catalog")


def _builtin_collation(node: exp.Collate) -> bool:
    name = node.expression
    return isinstance(name, exp.Expression) and name.name.upper() in SQLITE_COLLATIONS


def _by_name(left: list[Output], right: list[Output]) -> list[Output] | None:
    """The columns of ``left UNION [ALL] BY NAME right``: the left branch's names in order, then the right's
    new ones; each is what both branches hold under that name (a branch without it gives NULL). ``None`` when
    a name repeats within a branch (which of them is meant cannot be told)."""
    sides: list[dict[str, Output]] = []
    for side in (left, right):
        named = {o.name.lower(): o for o in side}
        if len(named) != len(side) or "*" in named or "" in named:
            return None
        sides.append(named)
    order = [o.name for o in left] + [o.name for o in right if o.name.lower() not in sides[0]]
    paired = []
    for name in order:
        found = [s[name.lower()].origin for s in sides if name.lower() in s]
        plain = all(o.kind in ("column", "const") for o in found)
        paired.append(Output(name, combine(found, kind="column" if plain else "expr")))
    return paired


def _aggregates(proj: exp.Expression, query: exp.Select) -> bool:
    """Whether a select-list item holds an aggregate of ``query`` itself (not of a subquery, not a window):
    DuckDB's ``GROUP BY ALL`` leaves such items out of the grouping."""
    return any(agg.find_ancestor(exp.Window, exp.Select) is query for agg in proj.find_all(exp.AggFunc))


def _counts_rows(node: exp.Count) -> bool:
    """``count(*)``, ``count(col)``, ``count(DISTINCT a, b)``: the answer says how many, not which values."""
    arg = node.this
    items = arg.expressions if isinstance(arg, exp.Distinct) else [arg]
    return all(a is None or isinstance(a, (exp.Star, exp.Column, exp.Literal)) for a in items)


def _merges_columns(node: exp.Select, nested: list[exp.Join]) -> bool:
    """Whether a join of the SELECT (or of a parenthesised join group in its FROM) merges columns."""
    return any(
        join.args.get("using") or str(join.args.get("method") or "").upper() == "NATURAL"
        for join in [*(node.args.get("joins") or ()), *nested]
    )


def _query_columns(
    outs: list[Output], exact: bool, dialect: str = "", renamed: list[str] | None = None
) -> list[tuple[str, Origin]] | None:
    """The columns of a subquery or CTE: by name when exact. When a ``*`` in it has a width the database decides
    (``SELECT * FROM jsonb_each(...)``), its named outputs by name and, first, a ``*`` any other column may be:
    made of every output (``USING (value)`` against it compares the function's ``value``, decision 0229).
    ``renamed``: the names of an ``AS s(a, b)`` given to it, positionally. On DuckDB, the names as the database
    makes them unique (decision 0376)."""
    if exact:
        columns = _rename([(o.name.lower(), o.origin) for o in outs], renamed or [])
        return duck.unique_names(columns, dialect)
    if not any(o.name in ("*", COMPUTED_STAR) for o in outs):
        return None
    every = combine(o.origin for o in outs)
    named: list[tuple[str, Origin]] = []
    after_star = False
    for o in outs:
        if o.name in ("*", COMPUTED_STAR):
            after_star = True
        elif dialect in ("duckdb", "sqlite") and after_star:
            # ``(SELECT s.*, 'x' AS a ...)``: a column of the star may already be ``a``, and DuckDB then names
            # this one ``a_1`` (SQLite ``a:1``); the name is either (decision 0376)
            named.append((o.name.lower(), every))
        else:
            named.append((o.name.lower(), o.origin))
    return [("*", every), *(duck.unique_names(named, dialect) or [])]


def _named_by_database(sources: list[Source], ident: exp.Expression) -> list[tuple[str, Origin]]:
    """``USING (value)``: a FROM item whose columns the database names (``jsonb_each`` gives ``value``) may hold
    the column compared, though no output of it is named so (decision 0229)."""
    name = (ident.name if isinstance(ident, (exp.Identifier, exp.Column)) else str(ident)).lower()
    return [
        ("JOIN", star)
        for src in sources
        if (star := computed_star(src)) is not None and star.kind != "const" and src.find(name) is None
    ]




def _alias_columns(node: exp.Expression) -> list[str]:
    alias = node.args.get("alias")
    if isinstance(alias, exp.TableAlias):
        return [c.name.lower() for c in alias.columns]
    return []


def _skipped_by_sqlite(call: exp.Func) -> bool:
    """``likely(x)``, ``unlikely(x)``, ``likelihood(x, p)``: SQLite names the output after ``x`` (a column's name)."""
    name = call.name if isinstance(call, exp.Anonymous) else call.sql_name()
    args = call.expressions if isinstance(call, exp.Anonymous) else [call.this]
    return name.lower() in ("likely", "unlikely", "likelihood") and bool(args) and args[0] is not None


def _qualified(scope: Scope, qualifier: str) -> list[Source]:
    """The FROM items of ``scope`` a column qualified ``qualifier.`` reads: those under that alias; only where none
    is, a table of that name. A table given an alias of its own is no longer named by its name on any engine, so
    where an enclosing query has an item under that alias, the server reads that one: with ``FROM q AS x JOIN
    customers AS q``, ``q.ssn`` is the customers' column, not one of ``q``'s (decision 0417)."""
    aliased = [src for src in scope.sources if src.alias == qualifier]
    if aliased:
        return aliased
    outer = scope.parent
    while outer is not None:
        if any(src.alias == qualifier for src in outer.sources):
            return []
        outer = outer.parent
    return [src for src in scope.sources if src.table and src.table.rsplit(".", 1)[-1] == qualifier]


def _alias_name(node: exp.Expression) -> str:
    alias = node.args.get("alias")
    if isinstance(alias, exp.TableAlias):
        return alias.name.lower()
    return str(getattr(node, "alias_or_name", "") or "").lower()


def _rename(columns: list[tuple[str, Origin]] | None, names: list[str]) -> list[tuple[str, Origin]] | None:
    """``AS s(a, b, ...)`` renames the first columns positionally (PostgreSQL, DuckDB)."""
    if columns is None or not names:
        return columns
    if columns[:1] and columns[0][0] == "*":
        return columns
    return [(names[i] if i < len(names) else n, o) for i, (n, o) in enumerate(columns)]


def _maybe_table(name: str) -> bool:
    """A table-valued call that may name a table of the database (a full-text table), not a known function."""
    low = name.lower()
    return not (
        low in PURE_FUNCTIONS
        or low in flow.SET_RETURNING
        or low.startswith(("json", "pragma_"))
        or low in ("generate_series", "dbstat", "fts5vocab", "zipfile", "csv")
    )


def _visible(scope: Scope | None) -> list[Source]:
    out: list[Source] = []
    while scope is not None:
        out.extend(scope.sources)
        scope = scope.parent
    return out


def trace(
    statement: exp.Expression,
    columns_of: ColumnsOf,
    dialect: str,
    declared: Declared | None = None,
    fulltext: FullText | None = None,
    rowid: FullText | None = None,
) -> Lineage:
    """Lineage of one parsed statement (the tree is copied, not modified); ``declared`` gives a column's
    declared type, where a judgement depends on it, ``fulltext`` a SQLite table's full-text module, ``rowid`` its
    rowid alias."""
    tree = statement.copy()
    w = Walker(columns_of, dialect, declared, fulltext, rowid)
    lin = w.lineage
    if isinstance(tree, exp.Command):
        return trace_command(w, tree, dialect)
    record_writes(w, tree)
    for table in tree.find_all(exp.Table):
        if isinstance(table.args.get("partition"), exp.Partition):
            lin.partitioned.append(columns_of(table)[0])
    if isinstance(tree, (*QUERY, exp.Pivot)):
        w.output_root = tree
        outs, exact = w.query(tree, {}, None)
        lin.outputs, lin.exact = outs, exact
        return lin
    if isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Merge)):
        return trace_write(w, tree)
    # SET @v = (SELECT ...), CALL p((SELECT ...)), DO ...: whatever a query inside reads is copied somewhere
    for query in tree.find_all(exp.Select):
        if query.find_ancestor(exp.Select) is None:
            outs, _ = w.query(query, {}, None)
            lin.uses.extend(("copy", o.origin) for o in outs)
    return lin


__all__ = ["CONST", "ColumnsOf", "FullText", "Lineage", "Origin", "Output", "Ref", "Walker", "combine", "trace"]


#: the longest declared text length counted as bounded (a merge of a few such values stays far below PostgreSQL's
#: 256 MB jsonb and 1 GB text limits)
_BOUNDED_LENGTH = 65535
#: MySQL/MariaDB types that hold more than 64 KB (up to the packet size and beyond)
_PACKET_SIZED = frozenset({"mediumtext", "longtext", "mediumblob", "longblob", "json", "long", "long varchar"})


def _built_map_lookup(node: exp.Expression) -> bool:
    """``map([city], [amount])[city]``: a lookup in a map the statement builds from its own values, no member of a
    stored document. The map is no carrier (its keys and values are judged as a use: refused over a masked value,
    as a duplicate key fails) and the subscript is one of its controls, so what decides the NULL is a comparison
    of values the caller may already compare; nothing a document's masking hides (decision 0379)."""
    if not isinstance(node, exp.Bracket):
        return False
    base = node.this
    while isinstance(base, exp.Paren):
        base = base.this
    return isinstance(base, (exp.Map, exp.MapFromEntries))


def _cast_short(item: object) -> bool:
    """Is ``item`` an explicit cast to a text of a small declared length (``x::varchar(10)``, ``CAST(x AS
    char(4))``)? Only those: PostgreSQL's grammar reads ``varchar(n)``/``char(n)`` as its own types whatever the
    search path, and a type of the caller's own takes no length."""
    while isinstance(item, exp.Paren):
        item = item.this
    if not isinstance(item, exp.Cast) or isinstance(item, exp.TryCast):
        return False
    to = item.to.sql("postgres")
    return type_category(to) == "text" and _bounded_type(to)


def _bounded_type(declared: str | None) -> bool:
    """Whether a column declared as ``declared`` holds values of a small bounded length: a number, a date or
    time, a boolean, an address, a uuid, or a text declared with a length of at most ``_BOUNDED_LENGTH``."""
    if not declared:
        return False
    if type_category(declared) in ("int", "float", "date", "bool", "inet", "other"):
        return "[" not in declared  # an array of numbers is as long as the caller makes it
    low = declared.strip().lower()
    if low.startswith("uuid"):
        return "[" not in low
    sized = re.fullmatch(r"(?:character varying|varchar|character|char|nvarchar|nchar|bpchar)\s*\((\d+)\)", low)
    return sized is not None and int(sized.group(1)) <= _BOUNDED_LENGTH
