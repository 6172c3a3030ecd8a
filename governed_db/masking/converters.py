"""sqlite3's converters chosen by a name in the statement (decision 0388).

A connection opened with ``detect_types=sqlite3.PARSE_COLNAMES`` hands each result column whose name holds
``[name]`` to the converter registered under that name (``sqlite3.register_converter``; ``date`` and ``timestamp``
are registered by Python itself), with the value's raw bytes, while rows are fetched and before masking sees them.
A result column's name is the statement's own text: its alias (``full_name AS "n [date]"``) or, unaliased, the
expression as written (``email || '[date]'``). So the caller chooses code that runs on a masked value: the ``date``
converter fails with ``invalid literal for int() with base 10: b'Alice Smith'``, the value in clear; whether a
converter fails at all says what the value holds (``replace(ssn, '536-22-8726', '2000-01-01') AS "d [date]"``);
and a converter registered by the caller is simply handed the value.

A statement whose text names a registered converter in brackets is therefore refused when it reads a column masked
for its identity. Whether the connection parses column names is not asked (sqlite3 does not tell, and aiosqlite's
connection lives on another thread): a masked column aliased ``"x [date]"`` on a connection without it is refused
too, which renaming it answers. Converters the application declared by column type (``PARSE_DECLTYPES``) run on
the stored value whatever the statement asks; their errors are withheld by the sqlite3 cursors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from governed_db.policy.rules.masking import PREDICATE

if TYPE_CHECKING:
    from governed_db.identity import Identity
    from governed_db.masking.engine import MaskingState
    from governed_db.policy.decision import RuleHit
    from governed_db.sql.analysis import Analysis

#: what sqlite3 takes as a converter's name: the text after the last ``[`` before a ``]`` (Modules/_sqlite/cursor.c)
_BRACKETED = re.compile(r"\[([^\[\]]*)\]")
#: a quote doubled inside a quoted name or string stands for one in the column's name
_DOUBLED = re.compile(r"""(["'`])\1""")


def named_converters(text: str) -> list[str]:
    """The registered sqlite3 converters ``text`` names in brackets, as sqlite3 would look them up (upper case)."""
    if "[" not in text:
        return []
    import sqlite3

    registered = sqlite3.converters
    if not registered:
        return []
    found = set()
    for candidate in (text, _DOUBLED.sub(r"\1", text)):
        for m in _BRACKETED.finditer(candidate):
            name = m.group(1).upper()
            if name in registered:
                found.add(name)
    return sorted(found)


def converter_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """A SQLite statement that names a registered converter in brackets and reads a masked column (not cached with
    the verdict: a converter registered later changes it)."""
    names = named_converters(analysis.sql)
    if not names:
        return None
    from governed_db.masking import guard

    if not _returns_masked(state, analysis, identity):
        return None
    return guard._hit(
        state,
        analysis,
        identity,
        PREDICATE,
        f"the statement names the sqlite3 converter [{names[0].lower()}] and reads masked column(s): on a "
        "connection that parses column names (detect_types=PARSE_COLNAMES) the converter would run on a masked "
        "value before masking, and its error quotes the value (or whether it fails tells what the value holds)",
        "remove the [type] from the names of results that read masked columns and convert the fetched (masked) "
        "rows in Python, or ask for an unmask grant (masking.unmask)",
    )


def _returns_masked(state: MaskingState, analysis: Analysis, identity: Identity) -> bool:
    """Whether a result column of the statement may hold a value masked for ``identity`` (converters run on result
    columns only); a result whose columns are not known counts as yes when the statement reads a masked table."""
    from governed_db.masking import guard
    from governed_db.masking.plan import Access

    try:
        lineage = state.facts_for(analysis).lineage
        if lineage is None or lineage.outputs is None or not lineage.exact:
            return guard._reads_masked(state, (analysis, identity))
        access = Access(state, identity)
        if access.everything:
            return False
        tables = list(lineage.tables)
        return any(access.is_masked(o.origin, tables, lineage.blind) for o in lineage.outputs)
    except Exception:
        return True


#: a declared type's converter name, as sqlite3 reads it: up to the first space or parenthesis (``DATE``, ``TIMESTAMP``)
_DECLARED = re.compile(r"[^\s(]+")


def compound_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """A compound SELECT whose later branch computes a masked value under a column the first branch reads from a
    table, with a declared type a registered converter is named for (``SELECT date_of_birth FROM people WHERE 0
    UNION ALL SELECT replace(full_name, 'Alice Smith', '2000-01-01') FROM customers``): sqlite3 takes a compound's
    declared types from its first branch, so with ``detect_types=PARSE_DECLTYPES`` the ``date`` converter runs on
    the computed value, and whether it fails answers the guess (decision 0388). A stored value converted so fails
    or not whatever the statement asks; only a computed one is refused."""
    import sqlite3

    from sqlglot import exp

    from governed_db.masking import guard
    from governed_db.masking.plan import Access

    registered = sqlite3.converters
    if not registered:
        return None
    access = Access(state, identity)
    if access.everything:
        return None
    for stmt in analysis.statements:
        tree = stmt.expression
        if not isinstance(tree, exp.SetOperation):
            continue
        with_ = tree.args.get("with_") or tree.args.get("with")
        leaves = list(_branches(tree))
        if not leaves:
            continue
        traced = []
        for leaf in leaves:
            leaf = leaf.copy()
            if with_ is not None and leaf.args.get("with_") is None and leaf.args.get("with") is None:
                leaf.set("with_" if "with_" in tree.args else "with", with_.copy())
            traced.append(state.trace(leaf).outputs)
        first = traced[0]
        if first is None:
            continue
        for i, out in enumerate(first):
            origin = out.origin
            if origin.kind != "column" or not any(
                (m := _DECLARED.match(str(state.declared_type(t, c) or ""))) and m.group(0).upper() in registered
                for t, c in origin.sources
            ):
                continue
            for outputs in traced[1:]:
                later = None if outputs is None or i >= len(outputs) else outputs[i].origin
                if later is None or (later.kind != "column" and access.is_masked(later)):
                    return guard._hit(
                        state,
                        analysis,
                        identity,
                        PREDICATE,
                        f"a later branch of the compound SELECT computes a masked value under the column "
                        f"{out.name or i + 1}, whose declared type names a sqlite3 converter: on a connection that "
                        "converts declared types (detect_types=PARSE_DECLTYPES) the converter would run on the "
                        "computed value before masking, and whether it fails tells what the value holds",
                        "select the masked column as stored in that branch, or put the branch with the computed "
                        "value first, or ask for an unmask grant (masking.unmask)",
                    )
    return None


def _branches(node: Any) -> Iterator[Any]:
    from sqlglot import exp

    while isinstance(node, exp.Subquery):
        node = node.this
    if isinstance(node, exp.SetOperation):
        yield from _branches(node.this)
        yield from _branches(node.expression)
    else:
        yield node
