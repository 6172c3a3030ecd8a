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

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from governed_db.errors import GuardrailViolation
from governed_db.guards._steps import RUN, Steps
from governed_db.guards.effect import _refusal
from governed_db.policy.decision import Action, RuleHit

if TYPE_CHECKING:
    from governed_db.identity import Identity
    from governed_db.pipeline import Statement
    from governed_db.policy.settings import WriteBounds
    from governed_db.sql.analysis import Analysis

RULE = "read-only-session"
#: settings whose change would make the session (or its next transaction) writable again
_SWITCHES = frozenset({
    "read_only", "transaction_read_only", "default_transaction_read_only", "tx_read_only", "query_only",
    "session_authorization", "role", "session_replication_role",
})  # fmt: skip
#: settings prefix of the identity claims governed_db passes to the session
CLAIMS_PREFIX = "governed_db."
#: functions that change settings (or the role) from inside a query
_SETTERS = frozenset({"set_config", "pg_catalog.set_config"})


def keeps_session(bounds: WriteBounds) -> bool:
    """Whether governed_db keeps anything on the session for an identity bounded so (read-only, role, claims)."""
    return bounds.read_only or bounds.database_role is not None or bounds.session_claims


def refusal_hit(analysis: Analysis, bounds: WriteBounds) -> RuleHit | None:
    """A refusal when the identity tries to change what governed_db keeps on its session itself."""
    if not (bounds.read_only or bounds.database_role or bounds.session_claims):
        return None
    for stmt in analysis.statements:
        touched = [name for name, _scope, is_write in stmt.settings
                   if is_write and (name.lower() in _SWITCHES or name.lower().startswith(CLAIMS_PREFIX))]
        if "set-role" in stmt.flags:
            touched.append("role")
        setters = stmt.functions & _SETTERS
        if touched or setters or stmt.operation in ("RESET", "DISCARD"):
            what = ", ".join(touched) or ", ".join(f"{f}()" for f in sorted(setters)) or stmt.operation
            return RuleHit(
                RULE,
                Action.DENY,
                f"{what} would change the session state governed_db keeps for this identity (read-only, "
                "database role or identity claims)",
                "this identity cannot switch its session; ask for the access it needs",
            )
    return None


@dataclass(frozen=True, slots=True)
class SessionState:
    """What governed_db set on the session: read-only, the database role, the identity's claims."""

    read_only: bool = False
    #: PostgreSQL role (``SET ROLE``); None: the connection's own
    role: str | None = None
    #: ``governed_db.<name>`` settings for row-level security policies; None: none set
    claims: tuple[tuple[str, str], ...] | None = None


#: the session as the connection came (and as governed_db leaves it for unbounded identities)
AS_CONNECTED = SessionState()


#: the session of a read-only identity without role or claims (the common read-only case, made once)
READ_ONLY = SessionState(read_only=True)


def wanted(st: Statement) -> SessionState:
    """The session state ``st``'s identity needs."""
    bounds = st.bounds
    if bounds is None:
        return AS_CONNECTED
    if bounds.database_role is None and not bounds.session_claims:
        return READ_ONLY if bounds.read_only else AS_CONNECTED
    claims = claims_of(st.identity) if bounds.session_claims else None
    state = SessionState(bounds.read_only, bounds.database_role, claims)
    return AS_CONNECTED if state == AS_CONNECTED else state


def claims_of(identity: Identity) -> tuple[tuple[str, str], ...]:
    """The identity as ``governed_db.*`` session settings (``current_setting('governed_db.subject', true)``)."""
    return (
        ("subject", identity.subject),
        ("kind", identity.kind),
        ("on_behalf_of", identity.on_behalf_of or ""),
        ("roles", ",".join(identity.roles)),
        ("verified", "true" if identity.verified else "false"),
    )


#: ``gov.state`` key: the last switch was made inside a transaction that is still open (PostgreSQL undoes a
#: ``SET`` -- read-only, role, claims -- when the transaction or a savepoint around it is rolled back)
PENDING = "guards.session.pending"
#: statements that end a transaction or roll back to a savepoint: a pending switch may be undone by them
_ENDS = frozenset({"ROLLBACK", "ABORT", "COMMIT", "END", "ROLLBACK PREPARED", "COMMIT PREPARED", "PREPARE TRANSACTION"})


class Switch(str):
    """The session switch's SQL (a driver may run it outside the application's transaction, see PostgreSQL)."""

    __slots__ = ()


def switch_sql(st: Statement) -> tuple[str, ...]:
    """The statements that put the session in the state ``st``'s identity needs (none when it is already)."""
    gov = st.gov
    want = wanted(st)
    current = gov.session_state
    if current is not None and gov.state.get(PENDING):
        raw = gov.driver.guard_connection(st)
        if not gov.driver.in_transaction(gov, raw):
            # the transaction the switch was made in has ended since: committed or rolled back, governed_db
            # cannot tell which, so the session's state is unknown and set again
            forget(gov)
            current = None
    if current is want or current == want:
        return ()
    return gov.driver.session_sql(gov, gov.driver.guard_connection(st), current, want)


def ends_transaction(st: Statement) -> bool:
    """``st`` may undo a pending switch (ROLLBACK, ROLLBACK TO SAVEPOINT, COMMIT of a failed transaction)."""
    return bool(st.gov.state.get(PENDING)) and st.analysis.operation in _ENDS


def forget(gov: Any) -> None:
    """What governed_db set on the session may have been undone: set it again before the next statement."""
    gov.session_state = None
    gov.state.pop(PENDING, None)


def transaction_ended(gov: Any) -> None:
    """A driver method ended (or rolled back part of) the transaction: a pending switch may be undone."""
    if gov.state.get(PENDING):
        forget(gov)


def switch(st: Statement, sqls: tuple[str, ...]) -> Steps:
    """Run the switch; only a successful one changes what governed_db believes the session is."""
    gov = st.gov
    want = wanted(st)
    for sql in sqls:
        try:
            yield Switch(sql)
        except Exception as e:
            forget(gov)  # unknown: the next statement switches again
            raise gov.fault_error("switching the session's state (read-only, role, claims)", e) from e
    raw = gov.driver.guard_connection(st)
    if gov.driver.switch_is_transactional and gov.driver.in_transaction(gov, raw):
        # a rollback of this transaction (or of a savepoint around it) would undo the switch: until it ends,
        # governed_db watches for that. An equal copy keeps every statement off the hot path (which tests
        # identity with AS_CONNECTED), so that a person's ROLLBACK is seen too.
        gov.state[PENDING] = True
        gov.session_state = replace(want)
    else:
        gov.state.pop(PENDING, None)
        gov.session_state = want
    gov.driver.after_session_switch(gov, raw, want.read_only)


#: what a read-only identity may run where the database cannot keep its session read-only (DuckDB)
_PROVABLY_READ_ONLY = frozenset({"read", "session", "transaction"})


def run_read_only(st: Statement) -> Steps:
    """Run the statement; a write the database refuses in the read-only session is recorded as a refusal."""
    if not st.gov.driver.read_only_session:
        # nothing in the database stops a schema change (CREATE TABLE, CREATE MACRO, ALTER ... that rules
        # only warn about): what the analyser cannot prove read-only is refused here instead
        unproven = [s.operation for s in st.analysis.statements if s.kind not in _PROVABLY_READ_ONLY or s.nested_dml]
        if unproven:
            raise _refusal(st, [RuleHit(
                RULE, Action.DENY,
                f"{', '.join(unproven)} is not a read, and {st.gov.driver.name} cannot keep the session of a "
                "read-only identity read-only in the database",
                "this identity is read-only here; ask for write access or an approval",
            )])  # fmt: skip
    try:
        yield RUN
    except Exception as e:
        if not st.gov.driver.is_read_only_error(e):
            raise
        err = _refusal(st, [RuleHit(
            RULE, Action.DENY,
            f"the database refused a write in the read-only session ({type(e).__name__}: {str(e).strip()})",
            "this identity is read-only here; ask for write access or an approval",
        )])  # fmt: skip
        assert isinstance(err, GuardrailViolation)
        raise err from e


def reconnected(gov: Any, before: Any, after: Any) -> None:
    """A driver reconnected under the proxy (``ping(reconnect=True)``, ``connect()``): the new session starts
    read-write, and what masking read of the tables is read again: a name the old session's temporary table
    shadowed (its labels sampled from the caller's own rows) is the stored table again (decision 0234)."""
    if before != after:
        gov.session_state = None
        masking = gov.state.get("masking")
        if masking is not None:
            masking.invalidate()


__all__ = ["AS_CONNECTED", "PENDING", "RULE", "SessionState", "Switch", "claims_of", "ends_transaction", "forget",
           "reconnected", "refusal_hit", "run_read_only", "switch", "switch_sql",
           "transaction_ended"]
