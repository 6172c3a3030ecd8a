"""The life of one statement.

Every way SQL enters a governed connection becomes a :class:`Statement`,
whose steps read top to bottom::

    begin():      resolve identity -> analyse -> decide -> (approval) -> tag
    steps():      governance's own SQL around the driver call, when the identity's
                  writes are bounded or its session read-only (governed_db.guards)
    the proxy:    run on the driver (sync, or awaited by an async proxy)
    succeeded():  plan masking from cursor.description -> record
    end():        the record is complete

Each step is a small function owned by the module of its concern; this module
only sequences them and decides what a fault inside governance means (refuse
in production, warn in development). A :class:`Governor` holds what one
governed connection needs for that: its settings, driver, policy and recorder.
:func:`run` and :func:`run_async` are the two drivers of a statement: the
driver call is theirs, everything else is the statement's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from governed_db import approvals, guards, masking
from governed_db._cache import GENERATION, new_generation
from governed_db.drivers import innermost as driver_innermost
from governed_db.errors import (
    ConfigurationError,
    DependencyUnavailable,
    GovernanceFault,
    GovernedDBError,
    GuardrailViolation,
    InvalidStatement,
    flavour,
    retyped,
)
from governed_db.guards import session as guard_session
from governed_db.identity import Identity, identity_from_env, os_identity
from governed_db.identity import current_identity as _current_identity
from governed_db.masking import cursors, errors_order, warnings_order
from governed_db.masking.messages import loggable
from governed_db.policy import load_policy
from governed_db.policy.decision import Action, Decision, RuleHit
from governed_db.semconv import DB_NAMESPACE, GDB_APPROVAL_REQUEST_ID, GDB_REASON
from governed_db.settings import Settings
from governed_db.sql.analysis import ESCAPED_PERCENT, Analysis, analyze
from governed_db.sql.shapes import analysis_for
from governed_db.sqlcomment import tag_statement
from governed_db.telemetry import Recorder

if TYPE_CHECKING:
    from governed_db.drivers import Driver
    from governed_db.guards import Steps
    from governed_db.guards.session import SessionState
    from governed_db.masking.engine import MaskingState
    from governed_db.policy.settings import WriteBounds
    from governed_db.results import ResultState

log = logging.getLogger("governed_db")
R = TypeVar("R")
_now = time.time
#: read once: an enum member looked up on its class costs ~70 ns, and these are read for every statement
_ALLOW = Action.ALLOW
_LIMIT = Action.LIMIT


#: ``%%`` read as the driver's escaped ``%`` in a statement the driver sends as written (decision 0360)
_UNESCAPED_PERCENT = RuleHit(
    "unparseable",
    Action.DENY,
    "'%%' outside a string is the driver's escaped '%' only when the statement is passed parameters; without them "
    "the server reads an operator '%%' (one a user may define), which the analyser cannot judge",
    "write '%' where no parameters are passed, or pass the statement its parameters",
)


class Governor:
    """Per-connection governance state and the steps of :func:`run`."""

    def __init__(self, raw: Any, driver: Driver, settings: Settings, recorder: Recorder) -> None:
        self.raw = raw
        self.driver = driver
        self.settings = settings
        self.recorder = recorder
        self.dialect: str = settings.option("dialect") or driver.dialect_for(raw)
        self.environment = settings.environment
        self.policy = load_policy(settings.policy)
        self.fail_closed = settings.fail_closed
        self.tagging = bool(settings.option("sqlcommenter"))
        #: the wrapped connection is itself a proxy (instrumentation): our span must be its parent
        self.nested = raw is not driver_innermost(raw)
        self.record_results = recorder.results is not None
        self.limiter = getattr(self.policy, "limiter", None)
        #: the database this connection is in, as the driver reports it at wrap time (None: unknown)
        self.database: str | None = _database(driver, raw)
        #: set while an ORM or driver sets a new connection up (SQLAlchemy's first-connect queries): those
        #: statements are judged and recorded as usual but do not count against an identity's rate limits
        self.setting_up = False
        #: the audit span processor, when this connection records to a local store
        self.audit: Any = None
        #: OpenTelemetry metrics (governed_db.metrics.StatementMetrics), set at wrap time
        self.metrics: Any = None
        self._default_identity = _identity_source(settings)
        #: per-connection caches owned by other modules (masking schema, ...), keyed by module name
        self.state: dict[str, Any] = {}
        #: masking's per-connection state (``state["masking"]``), kept as an attribute for the statement path
        self.masking_state: MaskingState | None = None
        #: what governed_db set on the session (read-only, role, claims); None: unknown, set it again
        self.session_state: SessionState | None = guard_session.AS_CONNECTED
        self._bounds: dict[Identity, WriteBounds | None] = {}
        #: what this connection derived from a statement text for an identity (:class:`Known`), by ``id(text)``
        self.known: dict[int, Known] = {}

    def learn(self, text: str, identity: Identity, analysis: Analysis, keep: bool) -> Known:
        """What a repeat of ``text`` by ``identity`` needs no work for; kept in :attr:`known` when ``keep``."""
        bounds = self.bounds_for(identity)
        known = Known(
            text,
            identity,
            self.dialect,
            analysis,
            bounds,
            guard_session.refusal_hit(analysis, bounds) if bounds is not None else None,
            guards.needs_no_steps(analysis, bounds),
            any("use-database" in s.flags for s in analysis.statements),
        )
        if keep and len(text) <= _KNOWN_CHARS:
            memo = self.known
            if len(memo) >= _KNOWN_ENTRIES:
                memo.clear()  # many distinct texts: rebuilding is cheap, and this stays bounded
            memo[id(text)] = known
        return known

    def bounds_for(self, identity: Identity) -> WriteBounds | None:
        """How the policy bounds ``identity``'s writes here (None: not at all); cached per identity."""
        try:
            return self._bounds[identity]
        except KeyError:
            pass
        found = self.policy.settings.write_bounds(self.environment, identity, self.dialect)
        if len(self._bounds) > 256:
            self._bounds.clear()
        self._bounds[identity] = value = found if found.active else None
        return value

    def begin(self, entry: str, sql: Any, params: Any, result: ResultState | None = None) -> Statement:
        """Judge one statement; the :class:`Statement` to run, or the (recorded) refusal raised."""
        return begin(self, entry, sql, params, result)

    # -- step 1: who ---------------------------------------------------------------------------
    def resolve_identity(self) -> Identity:
        ident = _current_identity()
        if ident is not None:
            return ident
        source = self._default_identity
        if isinstance(source, Identity):
            return source
        produced = source()
        if isinstance(produced, Identity):
            return produced
        if isinstance(produced, (str, bytes)):
            from governed_db import tokens

            return tokens.verify_configured(produced, self.settings)
        raise ConfigurationError(
            f"the identity provider returned {type(produced).__name__}; it must return an Identity or a token string"
        )

    # -- step 3: decide ------------------------------------------------------------------------
    def decide(self, known: Known, params: Any) -> Decision:
        analysis, identity = known.analysis, known.identity
        if known.moves and self.database is not None:
            self.database = None  # after USE we no longer know where we are: every qualified name counts again
            new_generation()  # and every verdict judged where we were is judged again (decision 0423)
        decision: Decision = self.policy.evaluate(
            analysis, identity=identity, environment=self.environment, database=self.database
        )
        limiter = self.limiter
        limited = (
            limiter.on_statement(identity, self.environment) if limiter is not None and not self.setting_up else None
        )
        if decision.action is Action.DENY and "system-catalog" in decision.rules:
            # refused whatever masking would add: its checks would read and classify the catalog views the
            # statement names (pg_stats' arrays of values: minutes of detection), so the cheap refusal comes first
            # (decision 0434); other refusals keep masking's reasons beside the policy's
            ms = self.masking_state
            if ms is not None:
                ms.current = None  # no entry of this statement's: nothing runs
            return self._with_hits(known, params, decision, limited, None)
        masked = masking.predicate_hit(analysis, identity=identity, gov=self, params=params)
        return self._with_hits(known, params, decision, limited, masked)

    def decide_kept(self, known: Known, params: Any, verdict: tuple[Any, ...]) -> Decision:
        """:meth:`decide` for a statement whose kept verdict is good (decision 0423): the policy's decision and
        masking's verdicts as kept; the rate limits and what masking asks on every call asked, in the same order."""
        limiter = self.limiter
        limited = (
            limiter.on_statement(known.identity, self.environment)
            if limiter is not None and not self.setting_up
            else None
        )
        ms = self.masking_state
        masked = (
            masking.call_hit(ms, known.analysis, known.identity, verdict[6])  # type: ignore[arg-type]
            if verdict[3]
            and (verdict[6] or ms.caller_collations or ms.caller_functions or ms.warning_count_withheld)  # type: ignore[union-attr]
            else None
        )
        return self._with_hits(known, params, verdict[2], limited, masked)

    def _with_hits(
        self, known: Known, params: Any, decision: Decision, limited: RuleHit | None, masked: RuleHit | None
    ) -> Decision:
        """The policy's decision with what was asked on this call: the rate limits (``limited``), masking
        (``masked``), the driver's escaped ``%``, the session state the identity would change."""
        if masked is None and ESCAPED_PERCENT in known.analysis.flags and not self.driver.unescapes_percent(params):
            masked = _UNESCAPED_PERCENT
        switch = known.switch  # the identity changing the session state governed_db keeps for it
        if limited is not None or masked is not None or switch is not None:
            extra = [hit for hit in (limited, masked, switch) if hit is not None]
            decision = Decision.combine(
                (*decision.hits, *extra),
                environment=self.environment,
                dialect=decision.dialect,
                policy_name=decision.policy_name,
                details=decision.details,
            )
        return decision

    def keep_verdict(self, known: Known, generation: int, decision: Decision, sent: Any) -> None:
        """Keep what was judged of ``known`` in its verdict, when every part of it is an answer its layer would
        give again from its own hot cache until the generation moves on (decision 0423): the policy's decision
        (``decision``, when the statement's decision is the policy's own), and masking's verdicts (nothing to
        check per call in its predicates, the text its order guard sends: ``sent``)."""
        analysis, identity = known.analysis, known.identity
        if known.moves or self.known.get(id(known.text)) is not known:
            return
        if not self.policy.answers_hot(analysis, identity, self.environment, self.database, decision):
            return  # the policy derives it again (a combined decision, or one it does not keep)
        ms = self.masking_state
        if ms is None:
            return
        by_text = False
        if not ms.active:
            until, active, read_order = float("inf"), False, False
        else:
            statements = analysis.statements
            hot = ms.hot.get(id(statements))
            if (
                hot is None
                or hot[0] is not statements
                or hot[1] is not identity
                or hot[2] != ms.version
                or not hot[masking.HOT_USES]
                or hot[masking.HOT_ORDER] is None
            ):
                return  # not (yet) answered from masking's hot entry: judged in full again
            until, active, read_order = hot[3], True, hot[masking.HOT_ORDER][1]
            by_text = masking.unkept_by_text(ms, analysis)
        known.verdict = (generation, until, decision, active, sent, read_order, by_text)

    # -- step 4: refuse, or check for an approval -----------------------------------------------
    def enforce(self, decision: Decision, analysis: Analysis, identity: Identity, text: str, params: Any) -> Any:
        """Raise the refusal, or return the approval grant that lets the statement run (``None`` otherwise)."""
        if decision.action is Action.DENY:
            remedy = f" Next step: {decision.remedy}." if decision.remedy else ""
            raise GuardrailViolation(
                f"refused by governed_db: {decision.reason}.{remedy}",
                decision,
                statement=analysis.normalized,
            )
        if decision.action is Action.REQUIRE_APPROVAL:
            return approvals.check_approval(
                decision,
                analysis=analysis,
                identity=identity,
                environment=self.environment,
                sql=text,
                params=params,
                settings=self.settings,
            )
        if decision.action is Action.WARN:
            log.warning(
                "governed_db warning (%s) for %s: %s", ",".join(decision.rules), identity.subject, decision.reason
            )
        return None

    # -- faults inside governance ---------------------------------------------------------------
    def fault_error(self, stage: str, exc: BaseException) -> GovernedDBError:
        """The refusal a fault inside governance becomes (the driver's DatabaseError as well)."""
        err = flavour(
            GovernanceFault(
                f"governance failed while {stage} ({loggable(exc)}); the statement was refused "
                "(fail closed). Fix the cause, or use on_fault='warn' where continuing is acceptable."
            ),
            self.driver.error_class(self.raw, "DatabaseError"),
        )
        err.__cause__ = exc
        return err

    def fault(self, stage: str, exc: BaseException) -> Decision:
        """Fail closed in production (raise); in development warn and let the statement through."""
        if self.fail_closed:
            raise self.fault_error(stage, exc)
        log.warning("governed_db fault while %s (continuing, on_fault=warn): %s", stage, loggable(exc))
        hit = RuleHit("governance-fault", Action.WARN, f"governance failed while {stage}: {type(exc).__name__}")
        return Decision.combine([hit], environment=self.environment, dialect=self.dialect)

    def faulted(self, stage: str, exc: BaseException) -> tuple[Decision, GovernedDBError | None]:
        """Like :meth:`fault`, but hand back the refusal so that it is raised where it gets recorded."""
        if not self.fail_closed:
            return self.fault(stage, exc), None
        hit = RuleHit("governance-fault", Action.DENY, f"governance failed while {stage}: {type(exc).__name__}")
        decision = Decision.combine([hit], environment=self.environment, dialect=self.dialect)
        return decision, self.fault_error(stage, exc)

    def fault_error_of(self, exc: GovernedDBError) -> GovernedDBError:
        """``exc`` as the driver's error: refusals as its ProgrammingError, everything else as its DatabaseError."""
        if isinstance(exc, (GuardrailViolation, InvalidStatement)):
            return self.refusal(exc)
        return flavour(exc, self.driver.error_class(self.raw, "DatabaseError"))

    def refusal(self, exc: GovernedDBError) -> GovernedDBError:
        return flavour(exc, self.driver.error_class(self.raw, "ProgrammingError"))

    def unavailable(self, exc: GovernanceFault) -> GovernedDBError:
        """A dependency governance needs is down (the approval store): the driver's DatabaseError as well."""
        return flavour(exc, self.driver.error_class(self.raw, "DatabaseError"))


#: texts longer than this, or more distinct texts than this, are not kept in ``Governor.known``
_KNOWN_CHARS = 1024
_KNOWN_ENTRIES = 128


class Known:
    """What a connection derived from one statement text for one identity, none of it dependent on the call.

    A pure function of (text, dialect, identity, the connection's policy), so a repeat of the same text
    object by the same identity skips the analysis cache, the write-bounds lookup and the guard's derivation.
    Its :attr:`verdict` keeps what the policy and masking judged of it, checked by one generation and one time
    (decision 0423); what must run on every call (rate limits, approvals, masking's unkept checks) still does.
    """

    __slots__ = ("analysis", "bounds", "dialect", "identity", "moves", "plain", "switch", "text", "verdict")

    def __init__(
        self,
        text: str,
        identity: Identity,
        dialect: str,
        analysis: Analysis,
        bounds: WriteBounds | None,
        switch: RuleHit | None,
        plain: bool,
        moves: bool,
    ) -> None:
        self.text = text
        self.identity = identity
        self.dialect = dialect
        self.analysis = analysis
        #: how the policy bounds the identity's writes and session (None: not at all)
        self.bounds = bounds
        #: the refusal when the statement changes the session state governed_db keeps for the identity
        self.switch = switch
        #: no guard steps while the session is as the connection came
        self.plain = plain
        #: the statement changes the current database (USE)
        self.moves = moves
        #: what was judged of the statement, kept until anything that can change it moves the generation on
        #: (:meth:`Governor.keep_verdict`, decision 0423): ``(generation, good until, the policy's decision,
        #: masking active, the text to send, the read-order flag, whether masking's unkept checks look at the
        #: text)``; None: judged in full
        self.verdict: tuple[Any, ...] | None = None


class Statement:
    """One governed statement, from its judgement to its record.

    :meth:`Governor.begin` resolves the identity, analyses, decides, enforces
    and starts the record; it returns a ``Statement`` only when the statement
    may run (a refusal is raised, already recorded). The proxy then runs
    :attr:`sql` on the driver itself -- synchronously or with ``await`` -- and
    reports back through :meth:`succeeded` or :meth:`failed`, then
    :meth:`end`. The I/O is the caller's, so the sync and async proxies drive
    the same object (as psycopg's ``Cursor`` and ``AsyncCursor`` share one
    generator)::

        st = gov.begin(entry, sql, params, result)
        try:
            plan = st.steps()                  # governance's own SQL around the call (None: usually)
            if plan is None:
                outcome = driver_call(st.sql)  # or: await driver_call(st.sql)
            else:
                outcome = guards.drive(st, plan, driver_call)  # or: await guards.drive_async(...)
            st.succeeded()
        except BaseException as e:
            st.failed(e)
            raise
        finally:
            st.end()
    """

    __slots__ = ("analysis", "bounds", "decision", "entry", "error", "gov", "grant", "identity", "params",
                 "plain", "prefix", "restored", "result", "span", "sql", "started", "text", "token")  # fmt: skip

    def __init__(
        self,
        gov: Governor,
        sql: Any,
        analysis: Analysis,
        identity: Identity,
        decision: Decision,
        span: Any,
        token: Any,
        result: ResultState | None,
        entry: str = "cursor.execute",
        params: Any = None,
        text: str = "",
        bounds: WriteBounds | None = None,
        plain: bool = False,
    ) -> None:
        self.gov = gov
        self.entry = entry
        self.params = params
        #: the statement text as analysed (what approvals hash)
        self.text = text
        #: how the policy bounds this identity's writes and session (None: not at all)
        self.bounds = bounds
        #: no guard steps while the session is as the connection came (:func:`governed_db.guards.needs_no_steps`)
        self.plain = plain
        #: the approval grant consumed when the statement was judged (its effect ceiling binds the guard)
        self.grant: Any = None
        #: governance's SQL the driver sends in the statement's own round trip (a pipelined savepoint)
        self.prefix: str | None = None
        #: how many rows the write changed, where governance's SQL replaced the driver's result (DuckDB's
        #: bounded writes): the driver's own rowcount no longer says it
        self.restored: int | None = None
        #: the statement to send to the driver (tagged when sqlcommenter is on)
        self.sql = sql
        self.analysis = analysis
        self.identity = identity
        self.decision = decision
        self.span = span
        self.token = token
        self.result = result
        #: for the duration metric: when the driver call started (set once judged; 0.0: not timed, the
        #: metric goes nowhere), and how the statement ended
        self.started = 0.0
        self.error: BaseException | None = None

    def steps(self) -> Steps | None:
        """Governance's own steps around the driver call (effect guard, session switch); None: just run it.

        A proxy with steps drives them with :func:`governed_db.guards.drive` (or ``drive_async``) instead
        of calling the driver itself; they yield the statement back to it to run.
        """
        if self.plain and self.gov.session_state is guard_session.AS_CONNECTED:
            return None  # the hot path: a read, or an unbounded identity, on a session governed_db never switched
        return guards.steps(self)

    def decided(self, decision: Decision) -> None:
        """What was measured decided again (the effect guard): the record carries the new decision."""
        self.decision = decision
        span = self.span
        if span is not None and span.is_recording():
            span.set_attributes({"governed_db.decision": decision.action.value,
                                 "governed_db.rules": list(decision.rules),
                                 GDB_REASON: decision.reason})  # fmt: skip

    # 7. plan masking for the result, once; record success
    def succeeded(self) -> None:
        """The driver answered: arm the result with its masking plan and row limit, record success."""
        gov, result, span = self.gov, self.result, self.span
        statements = self.analysis.statements
        if len(statements) != 1 or statements[0].kind != "read":  # a plain read (the hot path) changes nothing
            if gov.masking_state is not None:
                gov.masking_state.ran(self.analysis)
            if any(st.kind != "read" for st in statements):
                masking.schema_changed(self.analysis, gov=gov)
        ms = gov.masking_state
        if ms is not None and ms.declaring is not None:  # a SQL cursor now exists (decision 0371)
            cursors.declared(ms, self.analysis)
        if ms is not None and ms.warnings_kept:  # MySQL/MariaDB: which warnings it left, in what order (0312)
            count = gov.driver.warning_count(result.raw) if result is not None else None
            warnings_order.ran(ms, count, warnings_order.uses_table(self.analysis.tables))
        if result is not None:
            _arm_result(gov, result, self.analysis, self.identity, self.decision, span)
            result.changed = self.restored
            result.read_order = ms is not None and ms.read_order
        if span is not None:
            gov.recorder.succeeded(
                span,
                rowcount=result.rowcount() if result is not None else None,
                masked_columns=result.masked_columns if result is not None else (),
            )

    def failed(self, exc: BaseException) -> None:
        """The driver (or :meth:`succeeded`) raised: scrub the error of masked values, record the failure."""
        self.error = exc
        if self.result is not None:
            self.result.changed = None
        if isinstance(exc, GuardrailViolation):
            self.gov.recorder.refused(self.span, exc)
            return
        ms = self.gov.masking_state
        if ms is not None:
            ms.ran(self.analysis)  # a failed write may have left rows (decision 0275)
            if ms.warnings_kept:
                warnings_order.failed(ms, exc)
            if ms.read_order and isinstance(self.sql, str):
                self.gov.driver.note_compiling(self.gov.raw, self.sql, exc)  # compile errors pass (0346)
            errors_order.withhold(ms, exc)  # an error raised per row, in a masked read order (0328, 0334, 0346)
        # the statement's own analysis; a stand-in (governance failed before analysing it) is unknown: scrub all
        known = (self.analysis, self.identity) if self.analysis.sql == self.text else None
        self.gov.driver.seal_error(exc)
        masking.scrub_error(exc, gov=self.gov, statement=known)
        self.gov.recorder.failed(self.span, exc)

    # 8. record: the span ends (and reaches the audit store) before execute() returns
    def end(self) -> None:
        if self.token is not None:
            self.gov.recorder.detach(self.token)
        if self.span is not None:
            self.span.end()
        metrics = self.gov.metrics
        if metrics is not None and self.started:
            error = self.error
            metrics.record(self.analysis, error, error is not None and isinstance(error, GuardrailViolation),
                           time.perf_counter() - self.started)


def begin(
    gov: Governor, entry: str, sql: Any, params: Any, result: ResultState | None = None
) -> Statement:
    """Steps 1-5 of one statement: who, what, is it allowed, (approval), tag.

    Returns the :class:`Statement` to run, or raises the refusal (recorded,
    and the driver's own error class). ``result``, when given, is the
    cursor's result state, armed by :meth:`Statement.succeeded`.
    """
    recorder = gov.recorder
    start_ns = time.time_ns() if recorder.enabled else 0
    text = sql if type(sql) is str else gov.driver.statement_text(sql, gov.raw)  # InvalidStatement on None...

    # 1. who (a token that fails verification is a recorded refusal, never a fallback)
    identity_problem: Decision | None = None
    unavailable = False
    pending: GovernedDBError | None = None  # a governance fault, raised once the span records it
    try:
        identity = gov.resolve_identity()
    except GovernedDBError as e:
        identity, identity_problem = UNVERIFIED, _unverified(gov, e)
        # the identity provider did not answer (in time): a fault of a dependency, not a bad token
        unavailable = getattr(e, "cause", None) == "jwks_unreachable"
    except Exception as e:
        identity = UNVERIFIED
        identity_problem, pending = gov.faulted("resolving the identity", e)

    # 2-3. what, and is it allowed (analysis is cached by text + dialect, literal SQL by its shape (sql.shapes);
    # policies cache decisions)
    analysis: Analysis | None = None
    bounds: WriteBounds | None = None  # how the policy bounds this identity's writes: looked up once
    plain = True
    verdict: tuple[Any, ...] | None = None
    known: Known | None = None
    try:
        if identity_problem is None:
            # a repeat of the same text object by the same identity: what it derived is known (Known)
            known = gov.known.get(id(text))
            if (
                known is None
                or known.text is not text
                or known.identity is not identity
                or known.dialect is not gov.dialect
            ):
                analysis = analysis_for(text, gov.dialect)
                # kept for texts that recur as the same object (not for literal SQL judged by its shape: a
                # new text every time)
                known = gov.learn(text, identity, analysis, keep=text is sql and analysis.shape is None)
            analysis, bounds, plain = known.analysis, known.bounds, known.plain
            # what was judged of it last time, while nothing that can change it moved the generation on (0423)
            verdict = known.verdict
            if verdict is not None and (verdict[0] != GENERATION[0] or verdict[1] <= _now()):
                verdict = known.verdict = None
            if verdict is None:
                generation = GENERATION[0]  # read before judging: a change meanwhile leaves the verdict stale
            decision = gov.decide(known, params) if verdict is None else gov.decide_kept(known, params, verdict)
        else:
            analysis = analysis_for(text, gov.dialect)
            decision = identity_problem
    except Exception as e:  # a broken rule or policy, ours or the user's: refused (and recorded) in production
        analysis = analysis or analyze("", gov.dialect)
        decision, pending = gov.faulted("deciding about the statement", e)

    span = recorder.start(
        entry=entry, analysis=analysis, identity=identity, decision=decision, start_ns=start_ns, params=params
    ) if start_ns else None
    # made current only when another layer below us may record (e.g. the OTel dbapi instrumentation)
    token = recorder.make_current(span) if gov.nested else None
    if pending is not None:
        bounds, plain = None, True
    st = Statement(gov, sql, analysis, identity, decision, span, token, result, entry, params, text, bounds, plain)
    try:
        if pending is not None:
            raise pending
        # 4. refuse, or look for an approval
        if decision.action is not _ALLOW:
            try:
                grant = gov.enforce(decision, analysis, identity, text, params)
            except GuardrailViolation as refused:
                if unavailable and refused.rules == ("identity-unverified",):
                    refused = retyped(refused, DependencyUnavailable)  # type: ignore[assignment]
                raise gov.refusal(refused) from None
            except GovernanceFault as down:  # the approval store is unreachable or out of time: refused
                raise gov.unavailable(down) from down
            st.grant = grant
            if grant is not None and span is not None:
                span.set_attribute(GDB_APPROVAL_REQUEST_ID, str(getattr(grant, "id", grant)))
        # a statement must not run unrecorded: in production, refuse while the audit store cannot be written
        if gov.audit is not None and gov.audit.last_error is not None and gov.fail_closed:
            gov.fault("recording to the audit store", gov.audit.last_error)
        # 5. what runs: rows a masked index could order get an ORDER BY on a key, masked values an aggregate
        # concatenates a stand-in (masking, decision 0160); then the tag
        if verdict is not None:
            ms = gov.masking_state
            ms.read_order = verdict[5]  # type: ignore[union-attr]  # (decisions 0312, 0334)
            if verdict[3]:
                ms.current = ms.hot.get(id(analysis.statements))  # type: ignore[union-attr]  # the plan starts there
            st.sql = verdict[4]
        elif identity_problem is None:
            try:
                st.sql = masking.reorder(sql, text, analysis, identity=identity, gov=gov)
            except Exception as e:
                raise gov.fault_error("ordering rows by a key (masking)", e) from e
            if known is not None and known.verdict is None and decision.action is _ALLOW and not gov.setting_up:
                gov.keep_verdict(known, generation, decision, st.sql)
        if gov.tagging:
            st.sql = tag_statement(st.sql, gov, identity, span, params)
        metrics = gov.metrics
        if metrics is not None and metrics.live:
            st.started = time.perf_counter()  # the operation the duration metric times is the driver call
    except GovernedDBError as e:
        st.started = time.perf_counter()  # never reached the database: no driver call to time
        # a refusal or fault leaving a governed call is the driver's error too (an approvals store that is down)
        err = e if e._flavoured_with is not None else gov.fault_error_of(e)
        st.failed(err)
        st.end()
        if err is e:
            raise
        raise err from e.__cause__
    except BaseException as e:
        st.started = time.perf_counter()
        st.failed(e)
        st.end()
        raise
    return st


def run(
    gov: Governor,
    entry: str,
    sql: Any,
    params: Any,
    invoke: Callable[..., R],
    result: ResultState | None = None,
    args: tuple[Any, ...] = (),
) -> R:
    """Govern one statement run synchronously: ``invoke(statement, *args)`` is the driver call (step 6).

    ``args``: the driver call's further positional arguments (the parameters), so that a proxy needs no
    closure per statement.
    """
    st = begin(gov, entry, sql, params, result)
    try:
        plan = st.steps()
        if plan is None:
            outcome = invoke(st.sql, *args)
        else:
            outcome = guards.drive(st, plan, (lambda s: invoke(s, *args)) if args else invoke)
        st.succeeded()
        return outcome
    except BaseException as e:
        st.failed(e)
        raise
    finally:
        st.end()


async def run_async(
    gov: Governor,
    entry: str,
    sql: Any,
    params: Any,
    invoke: Callable[[Any], Awaitable[R]],
    result: ResultState | None = None,
) -> R:
    """Govern one statement run by an async driver: ``await invoke(statement)`` is the driver call."""
    st = begin(gov, entry, sql, params, result)
    try:
        plan = st.steps()
        outcome = await invoke(st.sql) if plan is None else await guards.drive_async(st, plan, invoke)
        st.succeeded()
        return outcome
    except BaseException as e:
        ms = gov.masking_state
        if ms is not None and ms.read_order and isinstance(st.sql, str) and isinstance(e, Exception):
            with contextlib.suppress(Exception):  # on the driver's own thread; sync drivers' in failed() (0346)
                await gov.driver.note_compiling_async(gov.raw, st.sql, e)  # type: ignore[attr-defined]
        st.failed(e)
        raise
    finally:
        st.end()


def judged_call(gov: Any, entry: str, sql: str, call: Callable[[], Any], *, resets: bool = False) -> Any:
    """A driver method that changes the session, judged as the statement it sends (refused like it).

    ``resets``: the method puts the session back to the server's defaults, so what governed_db set there
    (the read-only state) is set again before the next statement.
    """
    out = run(gov, entry, sql, None, lambda _s: call())
    if resets:
        gov.session_state = None
    return out


async def judged_call_async(
    gov: Any, entry: str, sql: str, call: Callable[[], Awaitable[Any]], *, resets: bool = False
) -> Any:
    """:func:`judged_call` for an async driver's method (``await call()`` is the driver call)."""
    out = await run_async(gov, entry, sql, None, lambda _s: call())
    if resets:
        gov.session_state = None
    return out


#: who a statement runs as when its identity could not be established (it is then refused)
UNVERIFIED = Identity("unverified", kind="human", attributes={"source": "identity-failure"})


def _unverified(gov: Governor, exc: GovernedDBError) -> Decision:
    hit = RuleHit(
        "identity-unverified",
        Action.DENY,
        f"no trustworthy identity ({exc})",
        "supply a valid identity-provider token (see `governed-db whoami`), or fix the token settings",
    )
    return Decision.combine([hit], environment=gov.environment, dialect=gov.dialect)


def _arm_result(
    gov: Governor, result: ResultState, analysis: Analysis, identity: Identity, decision: Decision, span: Any
) -> None:
    """Step 7: build the masking plan once for this result, from its description."""
    description = gov.driver.description(result.raw)
    if not description:
        result.arm(None, None, None, identity)
        return
    try:
        plan = masking.plan_masking(description, analysis, identity=identity, gov=gov)
    except Exception as e:
        if gov.fail_closed:
            result.poison(gov.fault_error("planning masking (rows are withheld)", e))
            return
        log.warning("governed_db masking fault (continuing unmasked, on_fault=warn): %s", loggable(e))
        plan = None
    result.arm(
        plan,  # the masking plan
        decision.row_limit if decision.action is _LIMIT else None,  # the row cap
        span if span is not None and gov.record_results and span.is_recording() else None,  # the result record
        identity,
    )
    if gov.limiter is not None and not gov.setting_up:
        result.active = True  # rows read per minute are counted on the way out


def _database(driver: Driver, raw: Any) -> str | None:
    try:
        name = driver.static_attributes(raw).get(DB_NAMESPACE)
    except Exception:  # metadata only: unknown means "every qualified name is another database"
        return None
    return name if isinstance(name, str) and name else None


def _identity_source(settings: Settings) -> Identity | Callable[[], Any]:
    if settings.identity is not None:
        return settings.identity
    from_env = identity_from_env()
    if from_env is not None:
        return from_env
    token = os.environ.get("GOVERNED_DB_TOKEN")
    if token:
        return lambda: token
    return os_identity()


__all__ = ["Governor", "Known", "Statement", "begin", "judged_call", "judged_call_async", "run", "run_async"]
