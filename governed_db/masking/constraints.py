"""Constraints that compare a written value with stored ones: a write whose outcome a masked value decides.

A UNIQUE key (primary key, unique index, PostgreSQL exclusion constraint) compares a written value with every
other row's: ``INSERT INTO customers (id, email) VALUES (9, 'alice@example.com')`` fails (or, with ``ON
CONFLICT DO NOTHING``/``INSERT IGNORE``, writes no row) exactly when some stored e-mail is that guess. A
foreign key does the same against the parent's column (``orders.customer_email REFERENCES customers(email)``
accepts a guess only when a customer has it), and a parent row that child rows point at cannot be deleted or
re-keyed. A CHECK over several columns of a row (``dob < hired``) compares a written value with the row's
stored ones. Each such write is a *use* of the masked columns the constraint reads — the same kind as a WHERE
on them — and the guard refuses it for identities that see them masked (rule ``masked-column-constraint``).

Per write (:class:`~governed_db.masking.origins.Written`) and constraint of the table written, the masked
columns that would decide the outcome:

* unique key, INSERT: the key's columns the statement gives a value (NULL, and a DEFAULT that is NULL,
  compare equal to no other row; a DEFAULT that is a value counts where the catalog says so); UPDATE of any
  column of the key: every column of the key (the row's stored values are part of the new key);
* foreign key, INSERT or UPDATE of its columns: the parent's referenced columns;
* referenced by a child's foreign key, DELETE (a REPLACE deletes too) or UPDATE of the referenced columns (on
  DuckDB, of any indexed column: such an UPDATE is a delete and an insert there): the referenced columns, and
  the child's columns that point at them (whether a child row holds the value decides too);
* CHECK, UPDATE of one of its columns: its columns the statement leaves as stored (an INSERT gives the whole
  row, so a CHECK compares values of the caller's only);
* any PostgreSQL index, UPDATE giving one of its variable-length columns a value: its columns the statement
  leaves as stored. An index entry holds the row's values and fails when larger than the index takes (``index
  row size 2728 exceeds btree version 4 maximum 2704``): ``UPDATE customers SET city = <2680 characters>`` with
  an index on ``(city, full_name)`` fails exactly when the stored name is long enough, and the error tells the
  entry's size (decision 0231).

When a table's constraints could not be read (or it is a view, a foreign or a virtual table, whose writes land
where other constraints apply), every column written (any column, for a DELETE or UPDATE) is treated as part
of a unique key (fail closed); when even its columns are unknown, the columns the statement names are.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import sqlglot
import sqlglot.errors
from sqlglot import exp

from governed_db.masking.origins import ColumnsOf, Origin, Written
from governed_db.masking.schema import Constraint

#: table key -> (its columns, its constraints), either ``None`` when unknown
ConstraintsOf = Callable[[str], "tuple[list[str] | None, list[Constraint] | None]"]

#: how every clause of a constraint use begins (the guard tells them from predicates by it)
USE_PREFIXES = ("the DEFAULT of", "the affected-row count", "the unique key", "the foreign key", "the CHECK constraint", "the constraints of", "the new index", "the DDL on", "the size of an entry of the index", "the trigger")


def is_constraint_use(clause: str) -> bool:
    return clause.startswith(USE_PREFIXES)


def _cols(columns: frozenset[str]) -> str:
    return ", ".join(sorted(columns))


def _unreadable(w: Written, columns: list[str] | None) -> tuple[str, Origin] | None:
    every = frozenset(c.lower() for c in columns or ())
    given = every if w.columns is None or w.kind != "insert" else w.columns
    if not given:
        return None
    return (f"the constraints of {w.table} (unreadable)", Origin("expr", frozenset((w.table, c) for c in given)))


def _use(w: Written, c: Constraint) -> tuple[str, Origin] | None:
    """The use of ``c`` by write ``w``: (clause, the columns whose masked values decide), or ``None``."""
    written = c.columns if w.columns is None else w.columns & c.columns
    if c.kind == "unique":
        if w.kind == "delete" or not written:
            return None
        deciding = written if w.kind == "insert" else c.columns
        return (f"the unique key {c.name} on {w.table}({_cols(c.columns)})", _origin(w.table, deciding))
    if c.kind == "foreign key":
        if w.kind == "delete" or not written or c.other is None:
            return None
        clause = f"the foreign key {c.name}, {w.table}({_cols(c.columns)}) -> {c.other}({_cols(c.other_columns)})"
        return (clause, _origin(c.other, c.other_columns))
    if c.kind == "referenced":
        updated = c.columns if c.updated is None else c.updated
        changed = w.changed
        if w.kind == "insert" or (w.kind == "update" and changed is not None and not changed & updated):
            return None
        clause = f"the foreign key {c.name}, {c.other}({_cols(c.other_columns)}) -> {w.table}({_cols(c.columns)})"
        # the child's stored values decide as much as the parent's: with a clear ``codes.code`` and a masked
        # ``kids.ssn REFERENCES codes(code)``, ``DELETE FROM codes WHERE code = 'k7'`` fails (or cascades) exactly
        # when a kid's SSN is 'k7' (decision 0403)
        mine = {(w.table, col) for col in c.columns}
        theirs = {(c.other, col) for col in c.other_columns} if c.other is not None else set()
        return (clause, Origin("expr", frozenset(mine | theirs)))
    if c.kind == "check":
        if w.kind != "update" or not written:
            return None
        kept = c.columns if w.columns is None else c.columns - w.columns
        if not kept:
            return None
        return (f"the CHECK constraint {c.name} on {w.table}({_cols(c.columns)})", _origin(w.table, kept))
    if c.kind == "computed default":
        given = (c.updated or frozenset()) & w.defaulted
        if w.kind == "insert" or not given:
            return None  # an INSERT computes it from the caller's own row
        clause = f"the DEFAULT of {w.table}({_cols(given)}), computed from the row's {_cols(c.columns)}"
        return (clause, _origin(w.table, c.columns))
    if c.kind == "unknown":
        return _unreadable(w, list(c.columns))  # a view's: what it writes into is not its own (decision 0393)
    if c.kind in ("trigger", "code"):
        if w.kind not in c.events:
            return None
        changed = w.changed
        if w.kind == "update" and c.updated is not None and changed is not None and not changed & c.updated:
            return None  # UPDATE OF other columns: it does not fire
        table, cols = (c.other, c.other_columns) if c.other is not None else (w.table, c.columns)
        if not cols:
            return None
        what = f"the trigger {c.name}" if c.kind == "trigger" else c.name  # ``code``: a CHECK's, a DEFAULT's call
        return (f"{what} on {w.table}, which reads {table}({_cols(cols)})", _origin(table, cols))
    if c.kind == "index":
        grows = c.columns if c.updated is None else c.updated
        given = grows if w.columns is None else w.columns & grows
        if w.kind != "update" or not given:
            return None
        kept = c.columns if w.columns is None else c.columns - w.columns
        if not kept:
            return None
        clause = f"the size of an entry of the index {c.name} on {w.table}({_cols(c.columns)})"
        return (clause, _origin(w.table, kept))
    return None


def _origin(table: str, columns: frozenset[str]) -> Origin:
    return Origin("expr", frozenset((table, c) for c in columns))


def with_defaults(w: Written, constraints: list[Constraint] | None) -> Written:
    """``w`` with the columns it gives a DEFAULT that is a value (``DEFAULT '000-00-0000'``, or '' for a NOT NULL
    column without one) counted as given: ``UPDATE t SET ssn = DEFAULT`` compares that value with the stored
    one as much as ``SET ssn = '000-00-0000'`` does. Unknown constraints: an UPDATE's DEFAULT counts (fail
    closed); the columns an INSERT leaves out do not (every insert without a masked column would be refused)."""
    if not w.defaulted or w.columns is None:
        return w
    if constraints is None:
        valued = w.defaulted if w.kind == "update" else frozenset()
    else:
        valued = frozenset().union(*(c.columns for c in constraints if c.kind == "default")) & w.defaulted
    return replace(w, columns=w.columns | valued) if valued else w


def _cascaded(w: Written, c: Constraint) -> Written | None:
    """The write a child table's foreign key action makes when ``w`` deletes or re-keys the rows it points at
    (``ON DELETE CASCADE`` deletes the child's rows, ``ON UPDATE CASCADE`` gives its columns the caller's new key,
    ``SET NULL`` sets them NULL), judged by the child's own constraints in turn: with ``customers.region_id
    REFERENCES regions ON DELETE CASCADE`` and ``mailings.email REFERENCES customers(email)``, ``DELETE FROM regions
    WHERE id = 1`` failed exactly when a mailing held customer 1's e-mail (decision 0386)."""
    if c.kind != "referenced" or c.other is None or not c.actions:
        return None
    changed = w.changed
    if w.kind == "delete":
        event = "delete"
    elif w.kind == "update" and (changed is None or changed & (c.columns if c.updated is None else c.updated)):
        event = "update"
    else:
        return None
    if f"{event} cascade" in c.actions:
        return Written(c.other, "delete", frozenset()) if event == "delete" else Written(c.other, "update", c.other_columns)
    if f"{event} set null" in c.actions:
        return Written(c.other, "update", frozenset(), touched=c.other_columns)
    return None


#: how many writes foreign keys' actions may chain before the rest is judged unreadable (fail closed)
_CASCADE_LIMIT = 32


def constraint_uses(writes: list[Written], constraints_of: ConstraintsOf) -> list[tuple[str, Origin]]:
    """The uses of stored values that the constraints of the tables in ``writes`` make, and those of the writes
    their foreign keys' actions make on child tables (whose triggers MySQL/MariaDB do not fire)."""
    uses: list[tuple[str, Origin]] = []
    pending = [(w, False) for w in writes]
    seen: set[tuple[str, str, frozenset[str] | None, frozenset[str] | None]] = set()
    while pending:
        w, cascaded = pending.pop(0)
        if cascaded:
            mark = (w.table, w.kind, w.columns, w.touched)
            if mark in seen:
                continue
            seen.add(mark)
            if len(seen) > _CASCADE_LIMIT:
                every = frozenset(c.lower() for c in constraints_of(w.table)[0] or ())
                uses.append((f"the constraints of {w.table} (unreadable)", _origin(w.table, every)))
                break
        columns, constraints = constraints_of(w.table)
        w = with_defaults(w, constraints)
        if columns is None:
            # a table of unknown columns: what is known to be written counts, masked when its name says so
            given = w.columns if w.kind == "insert" else w.changed
            if given:
                uses.append((f"the constraints of {w.table} (unreadable)", _origin(w.table, given)))
            continue
        if constraints is None:
            found = _unreadable(w, columns)
            if found is not None:
                uses.append(found)
            continue
        for c in constraints:
            if cascaded and c.kind == "trigger":
                continue
            found = _use(w, c)
            if found is not None and found[1].sources:
                uses.append(found)
            follow = _cascaded(w, c)
            if follow is not None:
                pending.append((follow, True))
    return uses


#: what MySQL/MariaDB report as affected: only rows whose stored value differs from the one written
_CHANGED_ROWS = (
    "the affected-row count of {table} (MySQL counts a row only when the value written differs from the "
    "stored one, so 0 or 1 says whether a chosen value equals it)"
)


def changed_row_uses(
    writes: list[Written], constraints_of: ConstraintsOf, dialect: str
) -> list[tuple[str, Origin]]:
    """MySQL/MariaDB count an UPDATE's (and ``ON DUPLICATE KEY UPDATE``'s, ``REPLACE``'s) affected rows as the
    rows it *changed*: ``UPDATE t SET ssn = '536-22-8726' WHERE id = 1`` reports 0 exactly when that is the stored
    SSN (``ROW_COUNT()``, and an ``ON UPDATE CURRENT_TIMESTAMP`` column, say the same), and a transaction
    rolled back afterwards keeps the value. So on MySQL every column an UPDATE gives a value (NULL compares
    nothing a masked value hides; DEFAULT only where the column's default is NULL) is a use of its stored
    value; on the other databases an UPDATE counts the rows it matched."""
    if dialect != "mysql":
        return []
    uses: list[tuple[str, Origin]] = []
    # ``REPLACE INTO t VALUES (...)`` reports 1 when the row it replaces is the same as the new one and 2 when
    # it differs: the values it gives are compared with the stored row's the same way
    replaced = {w.table for w in writes if w.kind == "delete"}
    for w in writes:
        if w.kind != "update" and not (w.kind == "insert" and w.table in replaced):
            continue
        given = with_defaults(w, constraints_of(w.table)[1]).columns
        if given is None:  # any column may be given a value: every column of the table (fail closed)
            columns, _ = constraints_of(w.table)
            given = frozenset(c.lower() for c in columns or ())
        if given:
            uses.append((_CHANGED_ROWS.format(table=w.table), _origin(w.table, given)))
    return uses


def partition_uses(tables: list[str], constraints_of: ConstraintsOf) -> list[tuple[str, Origin]]:
    """``SELECT id FROM customers PARTITION (p1980s)`` (or an UPDATE/DELETE/INSERT naming partitions) reads the
    rows whose partitioning expression (``RANGE (YEAR(dob))``, ``KEY (ssn)``) falls in them: a WHERE on the
    columns it reads, which the catalog names (``partition`` constraints); unknown, every column (fail closed)."""
    uses: list[tuple[str, Origin]] = []
    for key in dict.fromkeys(tables):
        columns, constraints = constraints_of(key)
        if constraints is None:
            deciding = frozenset(c.lower() for c in columns or ())
        else:
            deciding = frozenset().union(*(c.columns for c in constraints if c.kind == "partition"))
        clause = f"PARTITION (...) of {key}, which picks rows by its partitioning expression"
        if deciding:
            uses.append((clause, _origin(key, deciding)))
        elif columns is None:
            uses.append((clause, Origin("unknown", hint=key)))
    return uses


# -- DDL that checks or converts the stored rows ------------------------------------------------------------
#: parts of ALTER TABLE ... ADD that the database checks against every stored row
_CHECKED = (
    exp.CheckColumnConstraint,
    exp.UniqueColumnConstraint,
    exp.PrimaryKey,
    exp.PrimaryKeyColumnConstraint,
    exp.ForeignKey,
    exp.ComputedColumnConstraint,
)
#: a new partitioning of the table that sqlglot parses (the rest stays opaque)
_PARTITIONING = (exp.PartitionByRangeProperty, exp.PartitionByListProperty)
#: an ALTER TABLE sqlglot keeps opaque: the table, and whether it may add, change, validate or rename anything
#: (MariaDB's ``ALTER [ONLINE] [IGNORE] TABLE``; PostgreSQL's ``SET SCHEMA`` moves the table under another name)
_OPAQUE_ALTER = re.compile(
    r"^\s*(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?([^\s(]+)", re.I
)
_OPAQUE_CHECKS = re.compile(
    r"\b(?:ADD|ALTER|MODIFY|CHANGE|VALIDATE|CONVERT|ATTACH|EXCLUDE|CHECK|UNIQUE|RENAME|SCHEMA)\b", re.I
)
#: an opaque ALTER that partitions the table anew (every row moved by the expression, failing where none fits) or
#: maintains its partitions; the expression of PARTITION BY [LINEAR] RANGE|LIST|HASH|KEY [COLUMNS] (...)
_PARTITION = re.compile(r"\bPARTITION\b", re.I)
_PARTITION_BY = re.compile(
    r"\bPARTITION\s+BY\s+(?:LINEAR\s+)?\w+(?:\s+COLUMNS)?\s*\(((?:[^()]|\([^()]*\))*)\)", re.I
)
_WORD = re.compile(r"`[^`]+`|[A-Za-z_][\w$]*")
#: a CREATE UNIQUE INDEX sqlglot keeps opaque, and the table it indexes
_OPAQUE_UNIQUE_INDEX = re.compile(
    r"^\s*(?:OR\s+REPLACE\s+)?(?:ONLINE\s+|OFFLINE\s+)?UNIQUE\s+(?:INDEX|KEY)\b.*?\bON\s+([^\s(]+)", re.I | re.S
)
#: MariaDB's words before TABLE that sqlglot does not parse: ONLINE only asks for no lock; IGNORE turns a row
#: that fails a new key, CHECK or type into a row deleted or a value cut (same checks, other outcome)
_ALTER_WORDS = re.compile(r"^\s*(?:ONLINE\s+)?(?:IGNORE\s+)?(?=TABLE\b)", re.I)
#: MariaDB's ``RENAME TABLE[S] [IF EXISTS] a [WAIT n | NOWAIT] TO b [, c TO d ...]``: the tables renamed
_RENAMED_TABLE = re.compile(
    r"(?:^\s*TABLES?\s+(?:IF\s+EXISTS\s+)?|,\s*)([^\s,]+)(?:\s+(?:WAIT\s+\d+|NOWAIT))?\s+TO\s+[^\s,]+",
    re.I,
)
#: ``ALTER TABLE t VALIDATE CONSTRAINT c`` (sqlglot keeps it opaque): a foreign key added NOT VALID checked now
_VALIDATE = re.compile(r"\bVALIDATE\s+CONSTRAINT\s+(\"(?:[^\"]|\"\")+\"|[^\s;]+)", re.I)


def _named(node: exp.Expression) -> set[str]:
    """Column names in ``node`` (identifiers of a key list too), leaving out a REFERENCES target's."""
    return {
        n.name.lower()
        for n in node.find_all(exp.Column, exp.Identifier)
        if n.find_ancestor(exp.Reference) is None and not isinstance(n.parent, exp.Column)
    }


def _ddl_use(clause: str, key: str, cols: list[str] | None, names: set[str]) -> list[tuple[str, Origin]]:
    known = {c.lower() for c in cols} if cols is not None else None
    found = frozenset(names & known if known is not None else names)
    return [(clause, _origin(key, found))] if found else []


def _referenced(
    key: str, ref: exp.Reference, columns_of: ColumnsOf, constraints_of: ConstraintsOf | None
) -> list[tuple[str, Origin]]:
    """A foreign key added to ``key``'s stored rows checks each of their values against the parent's referenced
    columns: rows of guesses the caller wrote (``INSERT INTO mine VALUES ('123-45-6789')``) make the ALTER fail
    exactly when no parent row holds one (decision 0321). Without a column list it references the parent's
    primary key: its columns count (decision 0332), every column of the parent's unique keys when none is marked
    primary, all its columns when they are unreadable."""
    target = ref.this.this if isinstance(ref.this, exp.Schema) else ref.this
    if not isinstance(target, exp.Table):
        return []
    parent, cols = columns_of(target)
    named = {i.name.lower() for i in ref.this.expressions} if isinstance(ref.this, exp.Schema) else set()
    if not named:
        constraints = constraints_of(parent)[1] if constraints_of is not None else None
        if constraints is None:
            named = {c.lower() for c in cols or ()}
        else:
            primary = [c.columns for c in constraints if c.kind == "unique" and c.primary]
            named = set(primary[0]) if primary else set().union(*(c.columns for c in constraints if c.kind == "unique"))
    return _ddl_use(f"the DDL on {key}: a foreign key to {parent}", parent, cols, named)


def _validated(key: str, body: str, constraints_of: ConstraintsOf | None) -> list[tuple[str, Origin]]:
    """``ALTER TABLE t VALIDATE CONSTRAINT c``: a foreign key of ``t`` checks its stored rows against the
    parent's referenced columns now (unknown constraints: every foreign key of ``t``)."""
    found = _VALIDATE.search(body)
    if found is None or constraints_of is None:
        return []
    name = found.group(1)
    name = name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
    constraints = constraints_of(key)[1]
    if constraints is None:
        return [(f"the DDL on {key}: a constraint validated (unreadable)", Origin("unknown", hint=key))]
    keys = [c for c in constraints if c.kind == "foreign key" and c.other is not None]
    chosen = [c for c in keys if c.name.split("(", 1)[0].lower() == name.lower()] or keys
    return [
        (f"the DDL on {key}: the foreign key {c.name} validated", _origin(str(c.other), c.other_columns))
        for c in chosen
        if c.other_columns
    ]


def ddl_uses(
    tree: exp.Expression, columns_of: ColumnsOf, dialect: str, constraints_of: ConstraintsOf | None = None
) -> list[tuple[str, Origin]]:
    """DDL that runs a check or a conversion over every stored row fails exactly for some stored values: a new
    unique index or key (two equal values), a CHECK, a foreign key (a value absent from its target, which may
    be a table of guesses), an index expression or WHERE that fails for some value, a column type change, a
    generated column, ``SET NOT NULL`` (a NULL among them). The masked columns it reads are a use of them, and
    so are the parent's columns a foreign key added to (or validated on) a table of the caller's references;
    an ALTER TABLE sqlglot keeps opaque that may do any of it counts as reading every column (fail closed)."""
    if isinstance(tree, exp.Create) and isinstance(tree.this, exp.Index):
        table, params = tree.this.args.get("table"), tree.this.args.get("params")
        if not isinstance(table, exp.Table) or not isinstance(params, exp.Expression):
            return []
        key, cols = columns_of(table)
        if tree.args.get("unique"):
            # (MySQL's prefix ``code(6)`` reads as a call of ``code``: equal prefixes fail a unique index too)
            names = _named(params) | {str(f.name).lower() for f in params.find_all(exp.Anonymous)}
        else:  # a plain index fails on nothing but what it computes: its expressions and its WHERE
            computed = [c for c in params.args.get("columns") or () if not isinstance(_unordered(c), exp.Column)]
            where = params.args.get("where")
            names = set().union(*(_named(c) for c in computed), _named(where) if where is not None else set())
            if dialect in ("postgres", "postgresql") and str(params.args.get("using") or "").lower() != "hash":
                # ... and, on PostgreSQL, on how long what it stores is: an entry over the index's limit (a btree's
                # 2704 bytes) fails the build ("index row size 4016 exceeds ..."), so ``CREATE INDEX ON t (city,
                # full_name) WHERE id = 1`` after ``UPDATE t SET city = <n random characters> WHERE id = 1`` measured
                # the masked name by n. Every column it stores counts, INCLUDE too (a hash index stores a hash)
                stored = [*(params.args.get("columns") or ()), *(params.args.get("include") or ())]
                names |= set().union(*(_named(c) if isinstance(c, exp.Expression) else set() for c in stored))
        return _ddl_use(f"the new index {tree.this.name} on {key}", key, cols, names)
    if isinstance(tree, exp.Alter) and isinstance(tree.this, exp.Table):
        key, cols = columns_of(tree.this)
        altered: set[str] = set()
        uses: list[tuple[str, Origin]] = []
        for action in tree.args.get("actions") or ():
            if isinstance(action, exp.AlterColumn) and (action.args.get("dtype") or action.args.get("using")):
                altered |= _named(action)  # a type change converts every stored value
            elif isinstance(action, exp.AlterColumn) and action.args.get("allow_null") is False:
                altered |= _named(action)  # SET NOT NULL fails when a stored value is NULL (decision 0321)
            elif isinstance(action, exp.ModifyColumn):
                altered |= _named(action)
                altered |= {action.args["rename_from"].name.lower()} if action.args.get("rename_from") else set()
            for checked in action.find_all(*_CHECKED):
                altered |= _named(checked)
            for ref in () if tree.args.get("not_valid") else action.find_all(exp.Reference):
                uses += _referenced(key, ref, columns_of, constraints_of)  # (NOT VALID: VALIDATE checks later)
        for option in tree.args.get("options") or ():
            if isinstance(option, _PARTITIONING):
                # PARTITION BY RANGE/LIST (expr): every row moved by its expression, failing where none fits
                altered |= set().union(*(_named(e) for e in option.args.get("partition_expressions") or ()))
        return _ddl_use(f"the DDL on {key}", key, cols, altered) + uses
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "CREATE":
        # CREATE UNIQUE INDEX u ON t (code) ALGORITHM=COPY (or USING BTREE, LOCK=...): opaque to sqlglot, it
        # still fails on two equal stored values; every column of the table counts (fail closed)
        found = _OPAQUE_UNIQUE_INDEX.match(_body(tree))
        if found is None:
            return []
        try:
            table = exp.to_table(found.group(1), dialect=dialect)
        except (sqlglot.errors.SqlglotError, ValueError):
            return [(f"the new index on {found.group(1)} (not analysed)", Origin("unknown"))]
        key, cols = columns_of(table)
        return _ddl_use(f"the new index on {key} (not analysed)", key, cols, set(cols or ()))
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "ALTER":
        bare = _bare_alter(tree, dialect)
        if bare is not None:
            return ddl_uses(bare, columns_of, dialect, constraints_of)
        body = _body(tree)
        found = _OPAQUE_ALTER.match(body)
        checks = _OPAQUE_CHECKS.search(body) is not None
        partitions = _PARTITION.search(body) is not None
        if found is None or not (checks or partitions):
            return []
        try:
            table = exp.to_table(found.group(1), dialect=dialect)
        except (sqlglot.errors.SqlglotError, ValueError):
            return []
        key, cols = columns_of(table)
        by = _PARTITION_BY.search(body)
        if by is not None and not checks:
            # MariaDB's ALTER TABLE t PARTITION BY RANGE COLUMNS(full_name) (PARTITION p0 VALUES LESS THAN
            # ('N')) moves every row into the partition its expression picks and fails for one that has none: the
            # expression's columns decide (a partition by a clear column keeps running)
            named = {w.strip("`").lower() for w in _WORD.findall(by.group(1))}
            return _ddl_use(f"the DDL on {key} (its partitioning)", key, cols, named)
        # (any other partition maintenance moves rows by an expression not in the text: every column)
        return _ddl_use(f"the DDL on {key} (not analysed)", key, cols, set(cols or ())) + _validated(
            key, body, constraints_of
        )
    return []


def _body(tree: exp.Command) -> str:
    return tree.expression.this if isinstance(tree.expression, exp.Literal) else str(tree.expression or "")


def _bare_alter(tree: exp.Command, dialect: str) -> exp.Alter | None:
    """MariaDB's ``ALTER ONLINE/IGNORE TABLE ...`` (an opaque command to sqlglot) as the ALTER TABLE it is once
    the words are left out: IGNORE deletes the rows a new CHECK or key fails and cuts the values a narrower type
    no longer holds, so the same stored values decide it, by how many rows the statement changes."""
    body = _body(tree)
    words = _ALTER_WORDS.match(body)
    if words is None or words.end() == 0:
        return None
    try:
        bare = sqlglot.parse_one(f"ALTER {body[words.end():]}", read=dialect)
    except (sqlglot.errors.SqlglotError, ValueError):
        return None
    return bare if isinstance(bare, exp.Alter) else None


def rename_uses(tree: exp.Expression, columns_of: ColumnsOf, dialect: str) -> list[tuple[str, Origin]]:
    """DDL that renames a column or a table moves the stored values under another name: a column's label may
    come from its own name (``full_name``) or its table's (``customers.name``), and masking configuration names
    both, so the values would be classified again where none of that follows them (names in clear, filtered
    at will). A copy of each masked column renamed, and of every one of a table renamed (decision 0322)."""
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "RENAME":
        return [("copy", _whole(name, columns_of, dialect)) for name in _RENAMED_TABLE.findall(_body(tree))]
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "ALTER":
        bare = _bare_alter(tree, dialect)
        return rename_uses(bare, columns_of, dialect) if bare is not None else []
    if not isinstance(tree, exp.Alter) or not isinstance(tree.this, exp.Table):
        return []
    key, cols = columns_of(tree.this)
    renamed: set[str] = set()
    for action in tree.args.get("actions") or ():
        if isinstance(action, exp.AlterRename):
            return [("copy", Origin("expr", rows=frozenset({key})))]
        if isinstance(action, exp.RenameColumn) and isinstance(action.this, exp.Expression):
            renamed.add(action.this.name.lower())
    known = {c.lower() for c in cols} if cols is not None else None
    found = frozenset(renamed & known if known is not None else renamed)
    return [("copy", _origin(key, found))] if found else []


def stored_order_uses(tree: exp.Expression, columns_of: ColumnsOf, dialect: str) -> list[tuple[str, Origin]]:
    """MariaDB's ``ALTER TABLE t ORDER BY full_name`` writes the rows in the order of the columns named: a table
    without a primary key (InnoDB's own row id then follows it) or of an engine that keeps rows where written
    (MyISAM, Aria) hands them out in that order to every read without an ORDER BY afterwards, so ``SELECT id FROM
    t LIMIT 1`` names the first name. An ORDER BY of those columns (decision 0322)."""
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "ALTER":
        bare = _bare_alter(tree, dialect)
        return stored_order_uses(bare, columns_of, dialect) if bare is not None else []
    if not isinstance(tree, exp.Alter) or not isinstance(tree.this, exp.Table):
        return []
    orders = [o for o in tree.args.get("options") or () if isinstance(o, exp.Order)]
    if not orders:
        return []
    key, cols = columns_of(tree.this)
    named = set().union(*(_named(o) for o in orders))
    known = {c.lower() for c in cols} if cols is not None else None
    found = frozenset(named & known if known is not None else named)
    return [("ORDER BY", _origin(key, found))] if found else []


def default_uses(tree: exp.Expression, columns_of: ColumnsOf, dialect: str) -> list[tuple[str, Origin]]:
    """A DEFAULT over other columns of the row that an ALTER TABLE gives a column: ``ADD COLUMN x varchar(100)
    DEFAULT (full_name)`` fills the new column of every stored row with its name (``char_length(full_name)``,
    ``reverse(ssn)``: what no scan of the new column finds), and ``ALTER COLUMN city SET DEFAULT (full_name)``
    copies the name of every row written later into ``city``. A copy of the columns it reads (decision 0322)."""
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "ALTER":
        bare = _bare_alter(tree, dialect)
        return default_uses(bare, columns_of, dialect) if bare is not None else []
    if not isinstance(tree, exp.Alter) or not isinstance(tree.this, exp.Table):
        return []
    read: set[str] = set()
    for action in tree.args.get("actions") or ():
        defaults = [d.this for d in action.find_all(exp.DefaultColumnConstraint) if isinstance(d.this, exp.Expression)]
        if isinstance(action, exp.AlterColumn) and isinstance(action.args.get("default"), exp.Expression):
            defaults.append(action.args["default"])
        for default in defaults:
            read |= {c.name.lower() for c in default.find_all(exp.Column)}
    if not read:
        return []
    key, cols = columns_of(tree.this)
    known = {c.lower() for c in cols} if cols is not None else None
    found = frozenset(read & known if known is not None else read)
    return [("copy", _origin(key, found))] if found else []


def command_tables(tree: exp.Expression, dialect: str) -> list[exp.Table]:
    """The tables a RENAME TABLE or an ALTER TABLE that sqlglot keeps opaque names: what :func:`ddl_uses` and
    :func:`rename_uses` read the columns of (an async connection reads them with ``await`` first)."""
    if not isinstance(tree, exp.Command):
        return []
    word = str(tree.this).upper()
    names: list[str] = []
    if word == "RENAME":
        names = _RENAMED_TABLE.findall(_body(tree))
    elif word == "CREATE":
        index = _OPAQUE_UNIQUE_INDEX.match(_body(tree))
        names = [index.group(1)] if index is not None else []
    elif word == "ALTER":
        bare = _bare_alter(tree, dialect)
        if bare is not None:
            return [bare.this] if isinstance(bare.this, exp.Table) else []
        found = _OPAQUE_ALTER.match(_body(tree))
        names = [found.group(1)] if found is not None else []
    tables = []
    for name in names:
        try:
            tables.append(exp.to_table(name, dialect=dialect))
        except (sqlglot.errors.SqlglotError, ValueError):
            continue
    return tables


#: MariaDB's ``CHECKSUM TABLE[S] a, b [QUICK | EXTENDED]`` (sqlglot does not parse it)
_CHECKSUM = re.compile(r"\bCHECKSUM\s+TABLES?\s+((?:[^\s,;]+\s*,\s*)*[^\s,;]+)", re.I)


def opaque_unique_index_tables(text: str, dialect: str) -> list[exp.Table] | None:
    """The table a ``CREATE [OR REPLACE] UNIQUE INDEX ... ON t`` that did not parse at all indexes (MariaDB's
    ``USING BTREE`` before ON): ``[]`` when ``text`` is no such statement, ``None`` when its table does not parse."""
    body = re.sub(r"^\s*CREATE\s+", "", text, flags=re.I)
    if body == text:
        return []
    found = _OPAQUE_UNIQUE_INDEX.match(body)
    if found is None:
        return []
    try:
        return [exp.to_table(found.group(1), dialect=dialect)]
    except (sqlglot.errors.SqlglotError, ValueError):
        return None


def checksum_tables(text: str, dialect: str) -> list[exp.Table] | None:
    """The tables whose checksum ``text`` asks for (``None``: a CHECKSUM whose table names do not parse)."""
    tables: list[exp.Table] = []
    for found in _CHECKSUM.finditer(text):
        for name in found.group(1).split(","):
            try:
                tables.append(exp.to_table(name.strip(), dialect=dialect))
            except (sqlglot.errors.SqlglotError, ValueError):
                return None
    return tables


def _whole(name: str, columns_of: ColumnsOf, dialect: str) -> Origin:
    """The whole row of the table ``name`` (a name that does not parse: a value of unknown lineage)."""
    try:
        table = exp.to_table(name, dialect=dialect)
    except (sqlglot.errors.SqlglotError, ValueError):
        return Origin("unknown")
    key, _cols = columns_of(table)
    return Origin("expr", rows=frozenset({key}))


def _unordered(node: exp.Expression) -> exp.Expression:
    return node.this if isinstance(node, exp.Ordered) else node


__all__ = [
    "USE_PREFIXES",
    "ConstraintsOf",
    "changed_row_uses",
    "checksum_tables",
    "command_tables",
    "constraint_uses",
    "ddl_uses",
    "default_uses",
    "is_constraint_use",
    "opaque_unique_index_tables",
    "partition_uses",
    "rename_uses",
    "row_check_uses",
    "stored_order_uses",
    "with_defaults",
]


#: SQLite's checks of stored rows against the schema: the foreign key check lists child rows without a parent;
#: ``integrity_check``/``quick_check`` list rows that fail a CHECK constraint (and NOT NULL, which 0209 shows)
_ROW_CHECKS = {"foreign_key_check": "foreign key", "integrity_check": "check", "quick_check": "check"}


def _row_check_targets(tree: exp.Expression) -> list[tuple[str, list[exp.Expression]]]:
    """(constraint kind, argument list) of every SQLite row check in ``tree`` (an empty list: every table)."""
    found: list[tuple[str, list[exp.Expression]]] = []
    if isinstance(tree, exp.Pragma):
        call = tree.this
        name, args = (call.this, [call.expression]) if isinstance(call, exp.EQ) else (call, [])
        if isinstance(call, exp.Anonymous):
            name, args = call.this, list(call.expressions)
        if isinstance(name, exp.Dot):
            name = name.expression
        kind = _ROW_CHECKS.get((name.name if isinstance(name, exp.Expression) else str(name)).lower())
        if kind is not None:
            found.append((kind, args))
    for fn in tree.find_all(exp.Anonymous, exp.Table):
        if isinstance(fn, exp.Table) and not isinstance(fn.this, exp.Identifier):
            continue  # a table function: its call is an Anonymous of its own
        name = str(fn.name).lower()
        kind = _ROW_CHECKS.get(name.removeprefix("pragma_"))
        if kind is not None and name.startswith("pragma_"):
            # ``pragma_integrity_check`` without parentheses is a table: every table is checked
            found.append((kind, list(fn.expressions) if isinstance(fn, exp.Anonymous) else []))
    return found


def row_check_uses(
    tree: exp.Expression,
    columns_of: ColumnsOf,
    constraints_of: ConstraintsOf,
    every_table: Callable[[], list[str] | None],
) -> list[tuple[str, Origin]]:
    """SQLite's checks of the rows already stored return them by what their values are: the foreign key check
    lists the child rows whose key no parent row holds (a join of the child's columns with the parent's: an
    orphan ``orders`` row says no customer has its ``customer_email``), the integrity checks the rows a CHECK
    constraint fails. Each constraint a check evaluates on a table it checks is a use of the columns it reads
    (both sides of a foreign key); a check whose tables cannot be told (no table named, a row limit, a computed
    argument) checks every table. Decision 0237."""
    uses: list[tuple[str, Origin]] = []
    for kind, args in _row_check_targets(tree):
        names: list[str] | None
        named = len(args) == 1 and isinstance(args[0], (exp.Column, exp.Identifier, exp.Var))
        named = named or (len(args) == 1 and isinstance(args[0], exp.Literal) and args[0].is_string)
        if named:
            names = [args[0].name]
        else:
            names = every_table()
            if names is None:
                uses.append(("the constraints of every table (unreadable)", Origin("unknown")))
                continue
        for name in names:
            key, _ = columns_of(exp.to_table(name))
            columns, constraints = constraints_of(key)
            if columns is None or constraints is None:
                uses.append((f"the constraints of {key} (unreadable)", Origin("row", rows=frozenset({key}))))
                continue
            for c in constraints:
                if c.kind != kind or (kind == "foreign key" and c.other is None):
                    continue
                compared = frozenset((key, col) for col in c.columns)
                if c.other is not None:
                    compared |= frozenset((c.other, col) for col in c.other_columns)
                if kind == "foreign key":
                    clause = f"the foreign key check of {c.name}, {key}({_cols(c.columns)}) -> {c.other}"
                else:
                    clause = f"the CHECK constraint {c.name} on {key}({_cols(c.columns)}), as an integrity check runs it"
                uses.append((clause, Origin("expr", compared)))
    return uses
