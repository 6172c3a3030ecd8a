"""PostgreSQL cursors a SQL ``FETCH`` may read: only those this governed connection declared by SQL (decision 0371).

A ``FETCH`` statement returns the rows of a cursor that was opened earlier, so its lineage is that cursor's query,
which the ``FETCH`` text does not hold: its result columns were masked only by their names and sampled values. A
cursor declared by SQL through the governed connection (``DECLARE c CURSOR FOR ...``) returns no masked value
(such a ``DECLARE`` is refused, ``masked-column-copy``), so ``FETCH`` from it is safe. But other cursors live in
the same session under names the caller knows: the server-side cursor psycopg and psycopg2 open for
``conn.cursor(name="c")`` (``DECLARE "c" CURSOR FOR <the query, judged as a read, its rows masked on the way
through that cursor>``) and asyncpg's portals (``__asyncpg_portal_9__``). ``FETCH ALL FROM c`` on a plain cursor
returned their rows as stored: ``full_name AS note``, ``length(full_name)``, an SSN the scan did not recognise.

So the masking state keeps the names of the cursors SQL declared through the connection; a ``FETCH`` naming any
other cursor is refused, and so is one naming a cursor the driver opened (a ``DECLARE``d cursor closed at the end
of its transaction may give its name to a driver's; a ``DECLARE`` of a name the driver's cursor holds fails, and a
savepoint rolled back to keeps the driver's cursor). ``MOVE`` returns a count the cursor's own reads
already show, and runs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import Token, TokenType

if TYPE_CHECKING:
    from governed_db.identity import Identity
    from governed_db.masking.engine import MaskingState
    from governed_db.policy.decision import RuleHit
    from governed_db.sql.analysis import Analysis

#: the statements whose cursor name matters, after any leading comments
_CURSOR_STATEMENT = re.compile(r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*(DECLARE|CLOSE|FETCH)\b", re.I | re.S)
#: cursor names a driver gives its own portals (asyncpg counts them): never the caller's to fetch by SQL
_DRIVER_PORTAL = re.compile(r"__asyncpg_")
_PG = frozenset({"postgres", "postgresql"})


def _name(token: Token) -> str:
    """A cursor name as PostgreSQL resolves it: a quoted one exactly, any other folded to lower case."""
    return token.text if token.token_type is TokenType.IDENTIFIER else token.text.lower()


def _tokens(sql: str) -> list[Token] | None:
    try:
        tokens = sqlglot.tokenize(sql, read="postgres")
    except sqlglot.errors.SqlglotError:
        return None
    while tokens and tokens[-1].token_type is TokenType.SEMICOLON:
        tokens.pop()
    return tokens


def note(state: MaskingState, analysis: Analysis) -> tuple[str, str | None] | None:
    """``(verb, cursor name)`` of a PostgreSQL ``DECLARE``, ``CLOSE`` (name ``None``: ``CLOSE ALL``) or ``FETCH``
    statement, or ``None`` for any other (or text whose name cannot be read: ``FETCH`` then names none)."""
    if state.dialect not in _PG:
        return None
    if len(analysis.statements) != 1:
        # a FETCH among several statements (where a policy lets them through) names no cursor we can vouch for
        return ("FETCH", "") if any(str(s.operation).upper() == "FETCH" for s in analysis.statements) else None
    found = _CURSOR_STATEMENT.match(analysis.sql)
    if found is None:
        return None
    verb = found.group(1).upper()
    tokens = _tokens(analysis.sql[found.end() :])  # sqlglot keeps what follows FETCH as one opaque token
    if not tokens:
        return (verb, "") if verb == "FETCH" else None
    if verb == "FETCH":
        return verb, _name(tokens[-1])
    named = tokens[0]
    if verb == "CLOSE" and named.token_type is not TokenType.IDENTIFIER and named.text.upper() == "ALL":
        return verb, None
    return verb, _name(named)


def fetch_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """Refuse a ``FETCH`` from a cursor this connection did not declare by SQL; forget the cursors a ``CLOSE``
    names, and hold the one a ``DECLARE`` names (judged already: this runs once no masking rule refused it) until
    it has run (:func:`declared`): one that fails (DuplicateCursor, over the name of the driver's cursor) declares
    nothing."""
    from governed_db.masking.guard import COPY_RULE, _hit
    from governed_db.masking.plan import Access

    seen = note(state, analysis)
    if seen is None:
        return None
    verb, name = seen
    if verb == "DECLARE" and name is not None:
        state.declaring = (analysis, name)
        return None
    if verb == "CLOSE":
        if name is None:
            state.sql_cursors.clear()
        else:
            state.sql_cursors.discard(name)
        return None
    if name and name in state.sql_cursors and name not in state.driver_cursors and not _DRIVER_PORTAL.match(name):
        return None
    if Access(state, identity).everything:
        return None
    return _hit(
        state,
        analysis,
        identity,
        COPY_RULE,
        f"FETCH from the cursor {name or '(unreadable)'}, which this connection did not declare by SQL (a "
        "server-side cursor the driver opened for cursor(name=...), or a portal of its own): its rows would come "
        "back here as stored, where no lineage follows them",
        "fetch through the cursor object itself (its rows are masked), or DECLARE the cursor by SQL over "
        "columns nothing masks",
    )


def declared(state: MaskingState, analysis: Analysis) -> None:
    """A statement has run: when it is the ``DECLARE`` :func:`fetch_hit` held, its cursor may be fetched by SQL."""
    pending, state.declaring = state.declaring, None
    if pending is not None and pending[0] is analysis:
        state.sql_cursors.add(pending[1])


def driver_cursor(gov: Any, name: Any) -> None:
    """The driver is about to open a server-side cursor named ``name`` (psycopg, psycopg2 ``cursor(name=...)``):
    a ``FETCH`` of that name may read the driver's cursor from now on, whatever SQL declares under it later (a
    ``DECLARE`` of a name the driver's cursor holds fails, inside a savepoint the caller rolls back to)."""
    if gov.dialect not in _PG or not isinstance(name, str) or not name:
        return
    from governed_db.masking.engine import state_for

    state = state_for(gov)
    state.sql_cursors.discard(name)
    state.driver_cursors.add(name)
