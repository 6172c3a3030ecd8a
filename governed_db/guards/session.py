"""The database as a second layer: read-only sessions while a read-only identity acts.

An identity whose policy forbids writes (the ``write-statement`` rule denies
for it, or a ``writes:`` entry says ``read_only: true``) acts on a session
the database itself keeps read-only: PostgreSQL and MariaDB read-only
transaction characteristics, SQLite ``PRAGMA query_only``. A function that
writes (``SELECT purge_orders()``) or ``nextval()`` then fails *in the
database*, and the failure is recorded as a refusal.

The switch is made when the acting identity changes (one extra round trip
then, none otherwise) and only by governed_db: the identity's own attempts
to change the setting are refused (:func:`refusal_hit`), and driver methods
that would undo it are judged as the statements they amount to (see the
driver modules). DuckDB has no per-session read-only switch (its access mode
is fixed when the database is opened); read-only identities there rely on
the analyser alone (``docs/guardrails.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from governed_db.errors import GuardrailViolation
from governed_db.guards import RUN, Steps
from governed_db.policy.decision import Action, RuleHit

if TYPE_CHECKING:
    from governed_db.pipeline import Statement
    from governed_db.policy.settings import WriteBounds
    from governed_db.sql.analysis import Analysis

RULE = "read-only-session"
#: settings whose change would make the session (or its next transaction) writable again
_SWITCHES = frozenset({
    "read_only", "transaction_read_only", "default_transaction_read_only", "tx_read_only", "query_only",
    "session_authorization", "role", "session_replication_role",
})  # fmt: skip
#: functions that change settings (or the role) from inside a query
_SETTERS = frozenset({"set_config", "pg_catalog.set_config"})


def refusal_hit(analysis: Analysis, bounds: WriteBounds) -> RuleHit | None:
    """A refusal when a read-only identity tries to change the session's read-only state itself."""
    if not bounds.read_only:
        return None
    for stmt in analysis.statements:
        touched = [name for name, _scope, is_write in stmt.settings if is_write and name.lower() in _SWITCHES]
        if "set-role" in stmt.flags:
            touched.append("role")
        setters = stmt.functions & _SETTERS
        if touched or setters or stmt.operation in ("RESET", "DISCARD"):
            what = ", ".join(touched) or ", ".join(f"{f}()" for f in sorted(setters)) or stmt.operation
            return RuleHit(
                RULE,
                Action.DENY,
                f"this identity is read-only here, and {what} would change the session governed_db keeps "
                "read-only",
                "read-only identities cannot switch the session; ask for write access",
            )
    return None


def switch_sql(st: Statement) -> tuple[str, ...]:
    """The statements that put the session in the state ``st``'s identity needs (none when it is already)."""
    gov = st.gov
    want = st.bounds is not None and st.bounds.read_only
    if gov.session_read_only is want:
        return ()
    return gov.driver.session_read_only_sql(gov, gov.driver.guard_connection(st), want)


def switch(st: Statement, sqls: tuple[str, ...]) -> Steps:
    """Run the switch; only a successful one changes what governed_db believes the session is."""
    gov = st.gov
    want = st.bounds is not None and st.bounds.read_only
    for sql in sqls:
        try:
            yield sql
        except Exception as e:
            gov.session_read_only = None  # unknown: the next statement switches again
            raise gov.fault_error("switching the session's read-only state", e) from e
    gov.session_read_only = want
    gov.driver.after_session_switch(gov, gov.driver.guard_connection(st), want)


def run_read_only(st: Statement) -> Steps:
    """Run the statement; a write the database refuses in the read-only session is recorded as a refusal."""
    try:
        yield RUN
    except Exception as e:
        if not st.gov.driver.is_read_only_error(e):
            raise
        from governed_db.guards.effect import _refusal

        err = _refusal(st, [RuleHit(
            RULE, Action.DENY,
            f"the database refused a write in the read-only session ({type(e).__name__}: {str(e).strip()})",
            "this identity is read-only here; ask for write access or an approval",
        )])  # fmt: skip
        assert isinstance(err, GuardrailViolation)
        raise err from e


def judged_call(gov: Any, entry: str, sql: str, call: Callable[[], Any], *, resets: bool = False) -> Any:
    """A driver method that changes the session, judged as the statement it sends (refused like it).

    ``resets``: the method puts the session back to the server's defaults, so what governed_db set there
    (the read-only state) is set again before the next statement.
    """
    from governed_db.pipeline import run

    out = run(gov, entry, sql, None, lambda _s: call())
    if resets:
        gov.session_read_only = None
    return out


def reconnected(gov: Any, before: Any, after: Any) -> None:
    """A driver reconnected under the proxy (``ping(reconnect=True)``): the new session starts read-write."""
    if before != after:
        gov.session_read_only = None


__all__ = ["RULE", "judged_call", "reconnected", "refusal_hit", "run_read_only", "switch", "switch_sql"]
