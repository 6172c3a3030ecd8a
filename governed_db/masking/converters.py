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
from typing import TYPE_CHECKING

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
