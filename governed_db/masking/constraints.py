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

* unique key, INSERT: the key's columns the statement gives a value (NULL and DEFAULT compare equal to no
  other row); UPDATE of any column of the key: every column of the key (the row's stored values are part of
  the new key);
* foreign key, INSERT or UPDATE of its columns: the parent's referenced columns;
* referenced by a child's foreign key, DELETE (a REPLACE deletes too) or UPDATE of the referenced columns (on
  DuckDB, of any indexed column: such an UPDATE is a delete and an insert there): the referenced columns;
* CHECK, UPDATE of one of its columns: its columns the statement leaves as stored (an INSERT gives the whole
  row, so a CHECK compares values of the caller's only).

When a table's constraints could not be read (or it is a view, a foreign or a virtual table, whose writes land
where other constraints apply), every column written (any column, for a DELETE or UPDATE) is treated as part
of a unique key (fail closed); when even its columns are unknown, the columns the statement names are.
"""

from __future__ import annotations

from collections.abc import Callable

from governed_db.masking.origins import Origin, Written
from governed_db.masking.schema import Constraint

#: table key -> (its columns, its constraints), either ``None`` when unknown
ConstraintsOf = Callable[[str], "tuple[list[str] | None, list[Constraint] | None]"]

#: how every clause of a constraint use begins (the guard tells them from predicates by it)
USE_PREFIXES = ("the unique key", "the foreign key", "the CHECK constraint", "the constraints of")


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
        return (clause, _origin(w.table, c.columns))
    if c.kind == "check":
        if w.kind != "update" or not written:
            return None
        kept = c.columns if w.columns is None else c.columns - w.columns
        if not kept:
            return None
        return (f"the CHECK constraint {c.name} on {w.table}({_cols(c.columns)})", _origin(w.table, kept))
    return None


def _origin(table: str, columns: frozenset[str]) -> Origin:
    return Origin("expr", frozenset((table, c) for c in columns))


def constraint_uses(writes: list[Written], constraints_of: ConstraintsOf) -> list[tuple[str, Origin]]:
    """The uses of stored values that the constraints of the tables in ``writes`` make."""
    uses: list[tuple[str, Origin]] = []
    for w in writes:
        columns, constraints = constraints_of(w.table)
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
            found = _use(w, c)
            if found is not None and found[1].sources:
                uses.append(found)
    return uses


__all__ = ["USE_PREFIXES", "ConstraintsOf", "constraint_uses", "is_constraint_use"]
