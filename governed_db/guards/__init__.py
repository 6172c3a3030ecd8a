"""Guardrails the database enforces: writes judged by their effect, read-only sessions.

Static analysis recognises dangerous SQL by its shape; what slips past it is
caught here by what the statement *does* (see ``docs/guardrails.md``):

* :mod:`.effect` - a write by an identity whose policy bounds writes runs in
  a savepoint; what it changed decides before it is kept (every row of a
  table, or more rows than ``max_affected_rows``: rolled back and refused,
  or sent for approval);
* :mod:`.session` - while an identity whose policy forbids writes acts, the
  session is read-only *in the database*, so a function that writes fails
  there; the identity cannot switch it back.

Both are steps around the driver call, written sans-I/O: :func:`steps`
returns a generator that yields SQL for governance to run (or :data:`RUN`,
"run the statement now") and receives each answer. :func:`drive` runs it
synchronously, :func:`drive_async` with ``await``; the SQL itself goes
through the driver's ``guard_execute`` hook. A statement that needs neither
(every read by an unbounded identity) gets ``None``: reads pay nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governed_db.pipeline import Statement
    from governed_db.policy.settings import WriteBounds
    from governed_db.sql.analysis import Analysis


from governed_db.guards._steps import RUN, Query, Steps, Unread


def needs_no_steps(analysis: Analysis, bounds: WriteBounds | None) -> bool:
    """Whether a statement needs no steps while the session is as the connection came (``AS_CONNECTED``).

    Exactly what :func:`steps` derives in that case: no switch to make (the identity wants the session as it
    came; nothing is pending, which only a switch sets), nothing to measure (no statement in it writes, or
    the identity's writes are not guarded), no read-only bracket. A pure function of the statement and the
    identity's bounds: the pipeline keeps the answer with what it knows about a statement text.
    """
    if bounds is None:
        return True
    return not session.keeps_session(bounds) and not (bounds.guard and effect.changes_rows(analysis))


def steps(st: Statement) -> Steps | None:
    """The steps around the driver call for ``st``, or None when it needs none (the common case; the
    pipeline does not ask when :func:`needs_no_steps` answered for the statement already)."""
    if st.entry in st.gov.driver.unrun_entries:
        return None  # nothing runs (a statement prepared, not executed): judged again when it runs
    bounds = st.bounds
    read_only = bounds is not None and bounds.read_only
    switch = session.switch_sql(st)
    # a read-only identity's writes fail in the database; everyone else's bounded writes are measured
    guard = effect.plan(st) if bounds is not None and bounds.guard and not read_only else None
    ends = session.ends_transaction(st)
    if not switch and guard is None and not read_only and not ends:
        return None
    return _chain(st, switch, guard, read_only, ends)


def _chain(st: Statement, switch: tuple[str, ...], guard: Steps | None, read_only: bool, ends: bool) -> Steps:
    try:
        if switch:
            yield from session.switch(st, switch)
        if guard is not None:
            yield from guard
        elif read_only:
            yield from session.run_read_only(st)
        else:
            yield RUN
    finally:
        if ends:  # a ROLLBACK (TO SAVEPOINT) may have undone what governed_db set on the session
            session.forget(st.gov)


def drive(st: Statement, plan: Steps, invoke: Callable[[Any], Any]) -> Any:
    """Run ``plan`` synchronously: governance's SQL through the driver hook, the statement through ``invoke``."""
    gov = st.gov
    raw = gov.driver.guard_connection(st)
    outcome: Any = None
    request = next(plan)
    while True:
        try:
            if request is RUN:
                prefix = st.prefix
                if prefix is None:
                    outcome = reply = invoke(st.sql)
                else:
                    outcome = reply = gov.driver.run_after(raw, prefix, invoke, st.sql)
            else:
                reply = gov.driver.guard_execute(raw, request)
        except BaseException as e:
            try:
                request = plan.throw(e)
            except StopIteration:
                return outcome
            continue
        try:
            request = plan.send(reply)
        except StopIteration:
            return outcome


async def drive_async(st: Statement, plan: Steps, invoke: Callable[[Any], Awaitable[Any]]) -> Any:
    """:func:`drive` for async drivers: the same steps, each awaited."""
    gov = st.gov
    raw = gov.driver.guard_connection(st)
    outcome: Any = None
    request = next(plan)
    while True:
        try:
            if request is RUN:
                prefix = st.prefix
                if prefix is None:
                    outcome = reply = await invoke(st.sql)
                else:
                    outcome = reply = await gov.driver.run_after_async(raw, prefix, invoke, st.sql)
            else:
                reply = await gov.driver.guard_execute_async(raw, request)
        except BaseException as e:
            try:
                request = plan.throw(e)
            except StopIteration:
                return outcome
            continue
        try:
            request = plan.send(reply)
        except StopIteration:
            return outcome


# the guards themselves (they import RUN and Steps from guards._steps)
from governed_db.guards import effect, session  # noqa: E402

__all__ = ["RUN", "Query", "Steps", "Unread", "drive", "drive_async", "effect", "needs_no_steps", "session", "steps"]
