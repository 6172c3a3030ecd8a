"""Closing the side doors of masking: predicates, write-backs and error messages.

* A column masked for an identity cannot be used by it to filter, join, sort or
  group (``WHERE ssn LIKE '5%'`` would reveal the value one character at a
  time), nor copied into another column (``UPDATE t SET note = ssn``).
* A masked placeholder (``[EMAIL]``, ``j***@example.com``, ``hmac:...``,
  ``TOK_...``) written back by INSERT/UPDATE would destroy the real value: refused.
* Database errors that echo values (``Key (email)=(alice@example.com) already
  exists``, ``Duplicate entry '...'``, ``Failing row contains (...)``) are
  scrubbed in place, keeping the exception's type.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from itertools import chain
from typing import Any

from governed_db.identity import Identity
from governed_db.masking.engine import MISSING, MaskingState
from governed_db.masking.plan import Access
from governed_db.masking.strategies import any_looks_masked
from governed_db.masking.strategies.spans import scrub_text
from governed_db.policy.decision import Action, RuleHit
from governed_db.sql.analysis import Analysis

PREDICATE_RULE = "masked-column-predicate"
COPY_RULE = "masked-column-copy"
WRITE_BACK_RULE = "masked-value-write"

_ECHOES = (
    re.compile(r"(Key \([^)]*\)=\()(.*?)(\)(?: already exists| is not present| conflicts))", re.S),
    re.compile(r"(Failing row contains \()(.*)(\))", re.S),
    re.compile(r"(Duplicate entry ')(.*?)(' for key)", re.S),
    re.compile(r"(Incorrect \w+ value: ')(.*?)(')", re.S),
    re.compile(r"(Data truncated for column '[^']*' at row \d+: ')(.*?)(')", re.S),
)


#: uses found inside expressions; a named clause (WHERE, JOIN...) holding them makes the clearer message
_INNER_CLAUSES = frozenset({"a comparison", "arithmetic", "division", "CASE"})


def _action(state: MaskingState) -> Action:
    return Action.REQUIRE_APPROVAL if state.config.predicate_action == "require_approval" else Action.DENY


#: quoted values a database echoes when it cannot convert, cast or parse one (``invalid input syntax for type
#: integer: "Alice Smith"``, DuckDB ``Could not convert string '536-22-8726' to INT32``, ``Token "Alice" is
#: invalid``, MySQL ``Truncated incorrect DOUBLE value: '...'``); the statement's own text (``LINE 1: ...``) is
#: kept. Applied to errors of statements that read masked columns.
_CONVERSION_ECHOES = (
    re.compile(
        r"(?im)^((?!LINE \d+:)[^\n]*?\b(?:syntax|convert|cast|value|input|format|invalid|malformed|token|"
        r"truncated|incorrect|parse|parsing|out of range)\b[^\"'\n]*?)([\"'])([^\n]*)\2"
    ),
    re.compile(r"(?m)^((?:CONTEXT:\s+)?JSON data, line \d+: )(.*)$"),
)


def predicate_hit(state: MaskingState, analysis: Analysis, identity: Identity, params: Any) -> RuleHit | None:
    state.current.statement = (analysis, identity)
    if any(s.kind == "ddl" for s in analysis.statements):
        state.invalidate()  # the schema is changing: re-read it on next sight
    if not analysis.statements or not any(
        s.kind in ("read", "write", "ddl", "session", "exec") for s in analysis.statements
    ):
        return None
    version = state.version  # read once, as in plan_masking: the hot entry carries the version judged under
    key = ("uses", analysis.key, version, identity)
    verdict = state.recall(key)
    if verdict is MISSING:
        access = Access(state, identity)
        verdict = None if access.everything else _uses_hit(state, analysis, access)
        state.remember(key, verdict, state.good_until(access.grants))
    if verdict is not None:
        return verdict  # type: ignore[no-any-return]
    facts = state.facts_for(analysis)
    if not facts.writes and not any(s.kind == "ddl" for s in analysis.statements):
        # nothing to check per call (no parameters can carry a placeholder back): answer from the hot cache
        # next time, until the grants' answers must be re-derived
        until = state.memo.peek(key, (0.0, None))[0]
        state.remember_hot(
            state.hot_uses, analysis, (analysis.statements, identity, version, until)
        )
    if facts.writes and any_looks_masked(chain(facts.written_literals, _param_strings(params))):
        return RuleHit(
            WRITE_BACK_RULE,
            Action.DENY,
            "the statement writes a masked placeholder back to the database, which would destroy the real value",
            "write real values only: re-read the row through an identity allowed to see it, or leave "
            "the column out of the statement",
        )
    return None


def _uses_hit(state: MaskingState, analysis: Analysis, access: Access) -> RuleHit | None:
    facts = state.facts_for(analysis)
    if facts.lineage is not None:
        tables = list(facts.lineage.tables)
        # a named clause (WHERE, JOIN...) makes the clearer message when a comparison is also found inside it
        for clause, origin in sorted(facts.lineage.uses, key=lambda use: use[0] in _INNER_CLAUSES):
            if not access.is_masked(origin, tables, facts.lineage.blind):
                continue
            cols = ", ".join(sorted(f"{t}.{c}" for t, c in origin.sources)) or ", ".join(sorted(origin.rows))
            cols = cols or (origin.hint or "a masked column")
            if clause == "copy":
                return RuleHit(
                    COPY_RULE,
                    _action(state),
                    f"the statement copies masked column(s) {cols} into another place, where masking would not follow",
                    "copy the data through a reviewed migration, or ask for an unmask grant (masking.unmask)",
                )
            return RuleHit(
                PREDICATE_RULE,
                _action(state),
                f"masked column(s) {cols} are used in {clause}; filtering or sorting on a masked value reveals it",
                "filter on a non-sensitive key (an id) instead, or ask for an unmask grant (masking.unmask) "
                "for your role",
            )
    return None


def _param_strings(params: Any, depth: int = 0) -> Iterator[str]:
    if depth == 0 and type(params) in (list, tuple) and all(type(row) in (list, tuple) for row in params):
        # executemany's rows of values (the common shape): the strings of each row, without a generator per
        # value; values nested deeper than a row's are not looked into, as below
        yield from (v for row in params for v in row if isinstance(v, str))
        return
    if params is None or depth > 2:
        return
    if isinstance(params, str):
        yield params
    elif isinstance(params, Mapping):
        for v in params.values():
            yield from _param_strings(v, depth + 1)
    elif isinstance(params, (list, tuple)):
        for v in params:
            yield from _param_strings(v, depth + 1)


def scrub_message(text: str, *, conversions: bool = False) -> str:
    """``text`` without echoed values; ``conversions`` also blanks values quoted by conversion errors."""
    for pattern in _ECHOES:
        text = pattern.sub(lambda m: m.group(1) + "[REDACTED]" + m.group(3), text)
    if conversions:
        text = _CONVERSION_ECHOES[0].sub(lambda m: f"{m.group(1)}{m.group(2)}[REDACTED]{m.group(2)}", text)
        text = _CONVERSION_ECHOES[1].sub(lambda m: m.group(1) + "[REDACTED]", text)
    return scrub_text(text)


def _reads_masked(state: MaskingState) -> bool:
    """Whether the failing statement (this thread's last) reads a column masked for its identity.

    Unknown (no statement seen, or one that could not be traced) counts as yes: scrubbing a message that
    held nothing sensitive costs a little debugging, leaving a value in it is a leak.
    """
    current = getattr(state.current, "statement", None)
    if current is None:
        return True
    analysis, identity = current
    try:
        facts = state.facts_for(analysis)
        if facts.lineage is None:
            return bool(analysis.statements)
        access = Access(state, identity)
        return not access.everything and access.reads_hidden(list(facts.lineage.tables), facts.lineage.blind)
    except Exception:
        return True


def scrub_error(state: MaskingState, exc: BaseException) -> None:
    """Replace echoed values in ``exc.args`` (and its notes) in place."""
    try:
        args = exc.args
    except AttributeError:
        return
    conversions = _reads_masked(state)
    changed = False
    new_args = []
    for a in args:
        if isinstance(a, str):
            s = scrub_message(a, conversions=conversions)
            changed = changed or s != a
            new_args.append(s)
        else:
            new_args.append(a)
    if changed:
        with contextlib.suppress(AttributeError, TypeError):
            exc.args = tuple(new_args)
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        notes[:] = [scrub_message(n, conversions=conversions) if isinstance(n, str) else n for n in notes]
    _scrub_psycopg(exc, conversions)
    _scrub_psycopg2(exc, conversions)


def _scrub_psycopg(exc: BaseException, conversions: bool) -> None:
    """psycopg 3 keeps the server's fields (``exc.diag``) in ``_info``: replace them by scrubbed copies."""
    info = getattr(exc, "_info", None)
    if info is None or type(exc).__module__.split(".")[0] != "psycopg":
        return
    try:
        from psycopg.pq import DiagnosticField

        fields = (
            {f: info.error_field(f) for f in DiagnosticField} if hasattr(info, "error_field") else dict(info)
        )
        scrubbed = {
            k: scrub_message(v.decode("utf-8", "replace"), conversions=conversions).encode()
            if isinstance(v, bytes)
            else v
            for k, v in fields.items()
        }
        exc._info = scrubbed  # type: ignore[attr-defined]
    except Exception:
        return


def _scrub_psycopg2(exc: BaseException, conversions: bool) -> None:
    """psycopg2's ``pgerror`` is read-only but restorable through ``__setstate__`` (its ``diag`` is not)."""
    pgerror = getattr(exc, "pgerror", None)
    if not isinstance(pgerror, str) or type(exc).__module__.split(".")[0] != "psycopg2":
        return
    cleaned = scrub_message(pgerror, conversions=conversions)
    if cleaned != pgerror:
        with contextlib.suppress(Exception):
            exc.__setstate__({"pgerror": cleaned, "pgcode": getattr(exc, "pgcode", None)})  # type: ignore[attr-defined,unused-ignore]
