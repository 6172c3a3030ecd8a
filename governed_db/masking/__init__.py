"""Dynamic masking: the plan built once per result, applied per row.

Interface used by the execution pipeline (``governed_db.pipeline``)::

    plan = plan_masking(description, analysis, identity=..., gov=...)
    # -> MaskPlan | None   (None: nothing to mask, rows pass through untouched)
    hit = predicate_hit(analysis, identity=..., gov=..., params=...)
    # -> RuleHit | None    (masked columns used in WHERE/JOIN/..., masked placeholders written back)
    scrub_error(exc, gov=..., statement=(analysis, identity))   # remove masked values an error message echoes

A ``MaskPlan`` has ``masked_columns`` (names), ``apply_row(row)``,
``apply_rows(rows)``, ``apply_frame(obj)`` (pandas/polars/pyarrow/numpy
results) and an int ``masked_cells`` counter. ``gov`` is the connection's
:class:`~governed_db.pipeline.Governor`; masking keeps its per-connection
state (configuration, catalog, table labels, lineage cache) in
``gov.masking_state`` (also ``gov.state["masking"]``).

Zero configuration: outside development-like environments every identity
sees sensitive columns masked unless a grant in the ``masking=`` option of
:func:`governed_db.wrap` unmasks them (see :mod:`governed_db.masking.config`
and ``docs/masking.md``). Nothing heavy is imported here: the detectors load
on the first value that needs them (and never spaCy: decision 0090).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from operator import itemgetter
from time import time as _now
from typing import TYPE_CHECKING, Any, Protocol

from governed_db.identity import Identity
from governed_db.policy.decision import RuleHit
from governed_db.sql.analysis import Analysis

if TYPE_CHECKING:
    from governed_db.masking.engine import MaskingState
    from governed_db.masking.rows import RowMasker
    from governed_db.pipeline import Governor


#: the slots of a statement's hot entry (``MaskingState.hot``) after its statements, identity, schema version and
#: good-until time: True when the predicate guard has nothing to check per call; the order guard's ``(spliced,
#: hazard)``; the result's ``(names, plan, description)`` (None: not derived yet). Decision 0423. The same as
#: ``engine.HOT_USES``, ... (spelled here so that the statement path imports nothing heavy)
HOT_USES, HOT_ORDER, HOT_PLAN = 4, 5, 6


class MaskPlan(Protocol):
    masked_columns: tuple[str, ...]
    masked_cells: int

    def apply_row(self, row: Any) -> Any: ...

    def apply_rows(self, rows: list[Any]) -> list[Any]: ...

    def apply_frame(self, frame: Any) -> Any: ...


def plan_masking(
    description: Sequence[Sequence[Any]] | None, analysis: Analysis, *, identity: Identity, gov: Governor
) -> MaskPlan | None:
    """The plan for one result (``None`` when nothing in it is masked for ``identity``)."""
    if not description:
        return None
    state = gov.masking_state or _state_for(gov)
    statements = analysis.statements  # shared by every text of a literal shape (governed_db.sql.shapes)
    # hot path: the entry this statement's predicate_hit found valid (so masking is active), or looked up
    hot = state.current
    if hot is None or hot[0] is not statements or hot[1] is not identity or (planned := hot[HOT_PLAN]) is None:
        if not state.active:
            return None
        hot = state.hot.get(id(statements))
        planned = None if hot is None or hot[0] is not statements or hot[1] is not identity else hot[HOT_PLAN]
    if state.warnings_in_read_order:  # rare: MySQL/MariaDB warnings that may be listed in a masked order
        withheld = _warnings_withheld(description, analysis, identity, state)
        if withheld is not None:
            return withheld
    # the same statement object, identity and result shape as last time (well under 1 us); the entry's
    # validity is checked as in predicate_hit and reorder (the same version and time: decision 0423)
    if (
        planned is not None
        and hot[2] == state.version  # type: ignore[index]
        and hot[3] > _now()  # type: ignore[index]
        # the result's columns: the same description object as last time (a driver that reuses it, psycopg), an
        # equal one (a tuple compare, nothing built), or the same names
        and (
            description is planned[2]
            or description == planned[2]
            or (len(description) == len(planned[0]) and tuple(map(_first, description)) == planned[0])
        )
    ):
        template = planned[1]
    else:
        template = _plan_slow(description, analysis, identity, state)
    # the plan's derived parts are built once per statement shape; each result gets its own counter
    return None if template is None else template.fresh()


def _warnings_withheld(
    description: Sequence[Sequence[Any]], analysis: Analysis, identity: Identity, state: MaskingState
) -> RowMasker | None:
    """``SHOW WARNINGS``/``SHOW ERRORS`` after a statement that listed its warnings in an order an index on a
    masked column may decide: each row's level, code and message withheld (decision 0312)."""
    from governed_db.masking import warnings_order
    from governed_db.masking.plan import Access

    if Access(state, identity).everything:
        return None
    names = [d[0].decode() if isinstance(d[0], bytes) else str(d[0]) for d in description]
    return warnings_order.withheld(state, names, state.facts_for(analysis).diagnostics)


def _unlisted(facts: Any, names: Sequence[str]) -> bool:
    """A result column the statement's top-level star could not have listed from the columns masking knows."""
    lineage = facts.lineage
    if lineage is None or not lineage.listed or lineage.outputs is None:
        return False
    known = {o.name.lower() for o in lineage.outputs}
    return any(n.lower() not in known for n in names)


def _plan_slow(
    description: Sequence[Sequence[Any]], analysis: Analysis, identity: Identity, state: MaskingState
) -> RowMasker | None:
    from governed_db.masking.engine import MISSING
    from governed_db.masking.plan import Access, build_maskers, computed_positions
    from governed_db.masking.rows import RowMasker, compile_tuple_fn

    names = [d[0].decode() if isinstance(d[0], bytes) else str(d[0]) for d in description]
    # read once: DDL on another thread may bump it meanwhile, and the hot entry must carry the version the
    # plan was built under, or a plan of the old schema would pass for one of the new
    version = state.version
    key = ("plan", analysis.key, version, identity, tuple(names))
    found = state.recall(key)
    until = state.memo.peek(key, (0.0, None))[0]
    if found is MISSING:
        access = Access(state, identity)
        facts = None if access.everything else state.facts_for(analysis)
        lineage = None if facts is None else facts.lineage
        if lineage is not None and _unlisted(facts, names) and state.reread(lineage.listed):
            # ``SELECT * FROM u`` returned a column masking did not know ``u`` to have (another connection added
            # it): the table is read again and the statement traced anew before any row is masked (0259)
            version = state.version
            key = ("plan", analysis.key, version, identity, tuple(names))
            access = Access(state, identity)
            facts = state.facts_for(analysis)
        maskers = None if facts is None else build_maskers(names, facts, access)
        if facts is None or maskers is None or not any(m is not None for m in maskers):
            found = None
        else:
            found = RowMasker(names, maskers, compile_tuple_fn(maskers))
            found.computed = computed_positions(names, facts, maskers)
        until = state.good_until(access.grants)
        state.remember(key, found, until)
    # the description itself is kept: plain tuples (sqlite3, PyMySQL) compare as values, a driver's own column
    # objects by identity (psycopg hands out the same list while the fields stay the same), else by name
    state.remember_hot(analysis, identity, version, until, HOT_PLAN, (tuple(names), found, description))
    return found  # type: ignore[no-any-return]


_PG_DIALECTS = frozenset({"postgres", "postgresql"})
#: a compound SELECT's keywords (its declared types come from its first branch: decision 0388)
_COMPOUND = re.compile(r"\b(?:UNION|INTERSECT|EXCEPT)\b", re.IGNORECASE)


def _compound(sql: str) -> bool:
    """Whether ``sql`` may be a compound SELECT. The regular expression costs ~17k instructions on a short text
    (a word boundary and three words tried at every position, case-insensitively): the words are looked for in the
    lower-cased text first, a few hundred."""
    low = sql.lower()
    found = ("union" in low or "intersect" in low or "except" in low) and _COMPOUND.search(sql) is not None
    if len(_COMPOUNDS) >= 4096:
        _COMPOUNDS.clear()
    _COMPOUNDS[sql] = found
    return found


#: texts already looked at by :func:`_compound` (a repeated statement's text is the same object: one dict lookup)
_COMPOUNDS: dict[str, bool] = {}
#: what a DECLARE, CLOSE or FETCH may begin with (a comment, a space): the other statements skip the cursor check
_CURSOR_STARTS = "DdCcFf-/ \t\r\n"


def predicate_hit(analysis: Analysis, *, identity: Identity, gov: Governor, params: Any) -> RuleHit | None:
    """Refuse masked columns in WHERE/JOIN/ORDER BY/GROUP BY/HAVING, copies, and placeholder write-backs."""
    state = gov.masking_state or _state_for(gov)
    state.current = None  # until this statement's entry is found valid below
    if not state.active:
        return None
    statements = analysis.statements
    if state.caller_collations:
        from governed_db.masking import guard

        declared = guard.declares_caller_collation(state, analysis, identity)
        if declared is not None:
            return declared
    if state.warning_count_withheld:  # rare: a MySQL/MariaDB statement failed part-way in a masked order (0344)
        from governed_db.masking import guard

        counted = guard.warning_count_hit(state, analysis, identity)
        if counted is not None:
            return counted
    # the statement's one hot entry, checked once here: its reorder and plan start from it (decision 0423)
    hot = state.hot.get(id(statements))
    if (
        hot is not None
        and hot[0] is statements
        and hot[1] is identity
        and hot[2] == state.version
        and hot[3] > _now()
    ):
        state.current = hot
        if hot[HOT_USES]:
            return _unkept(state, analysis, identity)
    from governed_db.masking import guard

    hit = guard.predicate_hit(state, analysis, identity, params)
    return _unkept(state, analysis, identity) if hit is None else hit


def call_hit(state: MaskingState, analysis: Analysis, identity: Identity, by_text: bool) -> RuleHit | None:
    """:func:`predicate_hit` for a statement whose verdict is kept (``pipeline.Known.verdict``, decision 0423): the
    checks made on every call, whatever the verdict (masking is active, and the statement's hot entry says its
    predicate guard has nothing to check per call). ``by_text``: :func:`unkept_by_text` of the statement."""
    if state.caller_collations:
        from governed_db.masking import guard

        declared = guard.declares_caller_collation(state, analysis, identity)
        if declared is not None:
            return declared
    if state.warning_count_withheld:
        from governed_db.masking import guard

        counted = guard.warning_count_hit(state, analysis, identity)
        if counted is not None:
            return counted
    if by_text or state.caller_collations or state.caller_functions:
        return _unkept(state, analysis, identity)
    return None


def unkept_by_text(state: MaskingState, analysis: Analysis) -> bool:
    """Whether :func:`_unkept` looks further at the statement whatever the application registers: its text may
    name a SQLite converter or be a compound SELECT, or declare or use a PostgreSQL cursor (a pure function of the
    text and dialect, so kept with the statement's verdict)."""
    sql = analysis.sql
    if state.dialect == "sqlite":
        compound = _COMPOUNDS.get(sql)
        if compound is None:
            compound = _compound(sql)
        return "[" in sql or compound
    return state.dialect in _PG_DIALECTS and (sql[:1] in _CURSOR_STARTS or len(analysis.statements) > 1)


def _unkept(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """What no verdict keeps: the application's code registered meanwhile, SQLite's converters, cursors declared."""
    hit = None
    if state.caller_collations or state.caller_functions:
        from governed_db.masking import guard

        # not cached with the verdict: a function registered later changes it (decision 0348)
        hit = guard.calls_caller_code(state, analysis, identity)
    if hit is None and state.dialect == "sqlite":
        sql = analysis.sql
        if "[" in sql:
            from governed_db.masking import converters

            # not cached either: sqlite3.register_converter may add a name at any time (decision 0388)
            hit = converters.converter_hit(state, analysis, identity)
        compound = _COMPOUNDS.get(sql)
        if compound is None:
            compound = _compound(sql)
        if hit is None and compound:
            from governed_db.masking import converters

            hit = converters.compound_hit(state, analysis, identity)
    if hit is None and state.dialect in _PG_DIALECTS and (
        analysis.sql[:1] in _CURSOR_STARTS or len(analysis.statements) > 1
    ):
        from governed_db.masking import cursors

        # not cached either: which cursors SQL declared changes with every DECLARE and CLOSE (decision 0371)
        hit = cursors.fetch_hit(state, analysis, identity)
    return hit


def schema_changed(analysis: Analysis, *, gov: Governor) -> None:
    """A statement that changes the schema (or what names mean) has run: what masking read of its tables while
    judging it — the table a ``CREATE`` makes, read then as missing and so kept with unknown columns for
    ``RETRY_SECONDS`` — is read again on next sight (decision 0277)."""
    state = gov.masking_state
    if state is None or not state.active:
        return
    from governed_db.masking import guard

    if any(guard.renames(s) for s in analysis.statements):
        state.invalidate()


def reorder(sql: Any, text: str, analysis: Analysis, *, identity: Identity, gov: Governor) -> Any:
    """The statement to send for ``sql``: with an ORDER BY on a key where an index on a masked column could
    decide the order of its rows, and stand-ins for masked values an aggregate concatenates (decision 0160);
    ``sql`` itself when nothing needs changing (the usual case, answered from a per-statement cache)."""
    state = gov.masking_state
    if state is None:
        return sql
    statements = analysis.statements
    hot = state.current  # found valid by this statement's predicate_hit (so masking is active), or looked up
    if hot is None or hot[0] is not statements or hot[1] is not identity or hot[HOT_ORDER] is None:
        if not state.active:
            state.read_order = False  # not the flag of a statement run while masking was active (0312, 0334)
            return sql
        hot = state.hot.get(id(statements))
    if (
        hot is not None
        and hot[0] is statements
        and hot[1] is identity
        and hot[2] == state.version
        and hot[3] > _now()
        and (ordered := hot[HOT_ORDER]) is not None
    ):
        spliced, state.read_order = ordered  # (decision 0312)
        if spliced is None:
            return sql
        if text == spliced.base:
            return spliced.text
        from governed_db.masking.splice import apply

        return apply(spliced, text, state.dialect)  # a text of the same literal shape
    from governed_db.masking import guard, order_guard
    from governed_db.masking.plan import Access
    from governed_db.policy.decision import Action

    state.read_order = True  # until the order guard says otherwise (a fault below leaves it so)
    try:
        out = order_guard.rewritten(state, text, analysis, identity)
    except order_guard.Refused:
        # what changed since the statement was judged (a new index) must not let it run unordered, unless the
        # policy relaxes the refusal
        hit = guard.order_refusal(state, analysis, Access(state, identity), identity)
        if hit is not None and hit.action is Action.DENY:
            raise RuntimeError(f"refused on a second look: {hit.reason}") from None
        return sql
    return sql if out is None else out


_first = itemgetter(0)


def _state_for(gov: Governor) -> MaskingState:
    from governed_db.masking.engine import state_for

    return state_for(gov)


def scrub_error(
    exc: BaseException, *, gov: Governor, statement: tuple[Analysis, Identity] | None = None
) -> None:
    """Remove values a database error message echoes (``exc.args`` changed in place, type kept).

    ``statement``: the failing statement's analysis and identity (None: unknown, scrubbed as if it read
    masked columns)."""
    from governed_db.masking.engine import state_for

    try:
        state = state_for(gov)
    except Exception:
        return
    if not state.active:
        return
    from governed_db.masking import guard

    guard.scrub_error(state, exc, statement)


def scrub_warning(text: str, *, gov: Governor) -> str:
    """A warning's message as a governed ``SHOW WARNINGS`` shows it (a driver that reads warnings on its own, as
    aiomysql does, repeats them through this): values it quotes blanked, the optimizer's rewritten statement
    withheld (decision 0274)."""
    from governed_db.masking.engine import state_for

    try:
        state = state_for(gov)
    except Exception:
        return text
    if not state.active:
        return text
    from governed_db.masking.messages import scrub_diagnostic

    return scrub_diagnostic(text)


def listed_warnings(messages: list[str], *, gov: Governor) -> list[str]:
    """The messages of the warnings the statement running now left, as a driver that repeats them on its own
    (aiomysql) may show them: withheld when that statement's rows came in an order an index on a masked column
    may decide (decision 0312)."""
    state = gov.masking_state
    if state is None or not state.active or not state.warnings_kept:
        return messages
    from governed_db.masking import warnings_order

    return warnings_order.python_warnings(state, messages)


_LAZY = {
    "MaskingConfig": "governed_db.masking.config",
    "Grant": "governed_db.masking.config",
    "Catalog": "governed_db.masking.catalog",
    "ColumnClass": "governed_db.masking.classify",
    "classify_column": "governed_db.masking.classify",
    "classify_database": "governed_db.masking.scan",
    "find_spans": "governed_db.masking.detect",
    "STRATEGY_NAMES": "governed_db.masking.strategies",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'governed_db.masking' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "STRATEGY_NAMES",
    "Catalog",
    "ColumnClass",
    "Grant",
    "MaskPlan",
    "MaskingConfig",
    "classify_column",
    "classify_database",
    "find_spans",
    "listed_warnings",
    "plan_masking",
    "predicate_hit",
    "reorder",
    "scrub_error",
    "scrub_warning",
]
