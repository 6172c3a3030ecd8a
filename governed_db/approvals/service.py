"""The approval workflow over one store: check an execute, file, review, revoke, wait.

:class:`Approvals` is what both the statement path (:func:`governed_db.approvals.check_approval`)
and the CLI call; it owns nothing durable itself. Each transition the store
commits becomes a span ``governed_db.approval.<transition>`` (instrumentation
scope ``governed_db``, so it reaches the audit store like statement spans) and
a notification event.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from governed_db.approvals.fingerprint import fingerprint, new_request_id, statement_hash
from governed_db.approvals.model import ApprovalConfig, ApprovalRequest
from governed_db.approvals.notify import Notifier
from governed_db.approvals.review import ReviewRefused
from governed_db.approvals.store import SQLStore
from governed_db.approvals.stores import cli_url, open_store
from governed_db.errors import ApprovalRequired, ConfigurationError
from governed_db.identity import Identity
from governed_db.policy.decision import Decision
from governed_db.semconv import (
    GDB_APPROVAL_APPROVALS,
    GDB_APPROVAL_COMMENT,
    GDB_APPROVAL_FINGERPRINT,
    GDB_APPROVAL_GRANT,
    GDB_APPROVAL_KIND,
    GDB_APPROVAL_OPERATIONS,
    GDB_APPROVAL_QUORUM,
    GDB_APPROVAL_REASON,
    GDB_APPROVAL_REQUEST_ID,
    GDB_APPROVAL_REVIEWER,
    GDB_APPROVAL_REVIEWER_KIND,
    GDB_APPROVAL_REVIEWER_PROVENANCE,
    GDB_APPROVAL_REVIEWER_ROLES,
    GDB_APPROVAL_RULES,
    GDB_APPROVAL_STATE,
    GDB_APPROVAL_STATEMENT,
    GDB_APPROVAL_TABLES,
    GDB_APPROVAL_TRANSITION,
    GDB_ENVIRONMENT,
)
from governed_db.sql.analysis import Analysis, analyze
from governed_db.telemetry import SCOPE, identity_attributes

#: how often a blocking ``wait`` looks at the store
POLL_S = 0.25


class Approvals:
    """The approval workflow bound to one configuration and store."""

    def __init__(self, config: ApprovalConfig | None = None, *, tracer: Any = None, store: SQLStore | None = None):
        self.config = config or ApprovalConfig()
        self.store: SQLStore = store if store is not None else open_store(self.config.store)
        self.tracer = tracer if tracer is not None else trace.get_tracer(SCOPE)
        self.notifier = Notifier(self.config.notify, self.config.webhooks)

    # -- the statement path ---------------------------------------------------------------------
    def check(self, decision: Decision, *, analysis: Analysis, identity: Identity, environment: str, sql: str,
              params: Any, reason: str | None = None) -> ApprovalRequest:
        """Return the grant that covers this execute; raise :class:`ApprovalRequired` otherwise."""
        digest = statement_hash(sql, params, key=self.store.hash_key())
        operations = [s.operation for s in analysis.statements]

        def new() -> ApprovalRequest | None:
            if self.config.reason_required and not (reason and reason.strip()):
                return None
            return self._new_request(kind="statement", identity=identity, environment=environment,
                                     dialect=analysis.dialect, statement=analysis.normalized,
                                     statement_hash=digest, operations=operations, tables=analysis.tables,
                                     rules=decision.rules, reason=reason)

        found = self.store.resolve(statement_hash=digest, requester=identity, environment=environment,
                                   operations=operations, tables=analysis.tables, create=new, emit=self._emit)
        deadline = time.monotonic() + self.config.wait
        while found.outcome in ("pending", "created") and time.monotonic() < deadline:
            assert found.request is not None
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
            now = self.store.get(found.request.id)
            if now is None or now.effective_state(self.store.clock()) == "pending":
                continue
            if now.state != "approved":  # denied, revoked or expired while we waited
                raise self._closed(decision, analysis, now)
            found = self.store.resolve(statement_hash=digest, requester=identity, environment=environment,
                                       operations=operations, tables=analysis.tables, create=None,
                                       emit=self._emit)
            if found.outcome == "none":  # revoked or used up between our two looks
                raise self._closed(decision, analysis, self.get(now.id))
        if found.outcome in ("consumed", "window"):
            assert found.request is not None
            span = trace.get_current_span()  # the statement span, when the pipeline made it current
            if span.is_recording():
                span.set_attribute(GDB_APPROVAL_REQUEST_ID, found.request.id)
                span.set_attribute(GDB_APPROVAL_GRANT, "one-time" if found.outcome == "consumed"
                                   else "window")
            return found.request
        raise self._refusal(decision, analysis, found.outcome, found.request, sql)

    def _closed(self, decision: Decision, analysis: Analysis, req: ApprovalRequest) -> ApprovalRequired:
        if req.effective_state(self.store.clock()) == "denied":
            return self._refusal(decision, analysis, "denied", req, analysis.sql)
        return ApprovalRequired(
            f"approval required ({decision.reason}); request {req.id} was "
            f"{req.effective_state(self.store.clock())} while waiting. Run the statement again to file a new one",
            decision, statement=analysis.normalized, request_id=req.id, fingerprint=fingerprint(analysis.normalized),
        )

    def _refusal(self, decision: Decision, analysis: Analysis, outcome: str, req: ApprovalRequest | None,
                 sql: str) -> ApprovalRequired:
        fp = fingerprint(analysis.normalized)
        if req is None:  # the policy wants a reason and none was given: nothing was filed
            ask = self.request_command(sql, analysis.dialect)
            return ApprovalRequired(
                f"approval required ({decision.reason}). This policy needs a reason before a request is filed: "
                "run the statement inside `with governed_db.approvals.reason('why'):`, or ask ahead with:\n"
                f"  {ask}",
                decision, statement=analysis.normalized, fingerprint=fp,
            )
        if outcome == "denied":
            last = next((r for r in reversed(req.reviews) if r.verdict == "deny"), None)
            by = f" by {last.reviewer}" + (f" ({last.comment})" if last and last.comment else "") if last else ""
            return ApprovalRequired(
                f"refused: approval request {req.id} for this statement was denied{by}; a denial is final. "
                "Change the statement, or file a new request with `governed-db approvals request`",
                decision, statement=analysis.normalized, request_id=req.id, fingerprint=fp,
            )
        cmd = self.approve_command(req.id)
        return ApprovalRequired(
            f"approval required ({decision.reason}). Request {req.id} is pending "
            f"({len(req.approvals)}/{req.policy.quorum} approvals, expires {_when(req.expires_at)}). "
            f"A reviewer approves it with:\n  {cmd}\nthen run the same statement again, unchanged.",
            decision, statement=analysis.normalized, request_id=req.id, fingerprint=fp, approve_command=cmd,
        )

    # -- filing ahead of time -------------------------------------------------------------------
    def request_statement(self, sql: str, *, identity: Identity, environment: str, dialect: str,
                          reason: str | None, params: Any = None, rules: Sequence[str] = ()) -> ApprovalRequest:
        """File a one-time request before running ``sql`` (``governed-db approvals request --sql``)."""
        self._need_reason(reason)
        analysis = analyze(sql, dialect)
        if analysis.error:
            raise ConfigurationError(f"the statement could not be analysed in {dialect}: {analysis.error}")
        req = self._new_request(
            kind="statement", identity=identity, environment=environment, dialect=dialect,
            statement=analysis.normalized, statement_hash=statement_hash(sql, params, key=self.store.hash_key()),
            operations=[s.operation for s in analysis.statements], tables=analysis.tables, rules=rules,
            reason=reason,
        )
        return self.store.create(req, self._emit)

    def request_window(self, *, identity: Identity, environment: str, seconds: float, reason: str | None,
                       operations: Sequence[str] = (), tables: Sequence[str] = (),
                       rules: Sequence[str] = ()) -> ApprovalRequest:
        """File a time-bound grant request: these operations / tables, for ``seconds`` after approval."""
        self._need_reason(reason)
        if not operations and not tables:
            raise ConfigurationError("a time-bound grant must name operations (e.g. DELETE) and/or tables")
        if seconds <= 0:
            raise ConfigurationError(f"the window must be longer than 0 seconds, got {seconds}")
        ops = tuple(o.strip().upper() for o in operations if o.strip())
        tabs = tuple(t.strip() for t in tables if t.strip())
        desc = f"window: {', '.join(ops) or 'any operation'} on {', '.join(tabs) or 'any table'}"
        req = self._new_request(kind="window", identity=identity, environment=environment, dialect=None,
                                statement=desc, statement_hash=None, operations=ops, tables=tabs, rules=rules,
                                reason=reason, grant_seconds=float(seconds))
        return self.store.create(req, self._emit)

    def _need_reason(self, reason: str | None) -> None:
        if self.config.reason_required and not (reason and reason.strip()):
            raise ConfigurationError("this policy requires a reason for every approval request (--reason)")

    def _new_request(self, *, kind: str, identity: Identity, environment: str, dialect: str | None,
                     statement: str, statement_hash: str | None, operations: Sequence[str],
                     tables: Sequence[str], rules: Sequence[str], reason: str | None,
                     grant_seconds: float | None = None) -> ApprovalRequest:
        now = self.store.clock()
        return ApprovalRequest(
            id=new_request_id(), kind=kind, state="pending", requester=identity.subject,  # type: ignore[arg-type]
            requester_kind=identity.kind, on_behalf_of=identity.on_behalf_of, environment=environment,
            dialect=dialect, statement=statement, fingerprint=fingerprint(statement) if kind == "statement" else None,
            statement_hash=statement_hash, operations=tuple(dict.fromkeys(operations)), tables=tuple(tables),
            rules=tuple(rules), reason=reason.strip() if reason else None, policy=self.config.review_policy,
            grant_seconds=grant_seconds if grant_seconds is not None else self.config.grant_ttl,
            created_at=now, expires_at=now + self.config.request_ttl,
        )

    # -- review ---------------------------------------------------------------------------------
    def approve(self, request_id: str, reviewer: Identity, comment: str | None = None) -> ApprovalRequest:
        return self.store.review(request_id, reviewer, "approve", comment, self._emit)

    def deny(self, request_id: str, reviewer: Identity, comment: str | None = None) -> ApprovalRequest:
        return self.store.review(request_id, reviewer, "deny", comment, self._emit)

    def revoke(self, request_id: str, actor: Identity, comment: str | None = None) -> ApprovalRequest:
        return self.store.revoke(request_id, actor, comment, self._emit)

    def get(self, request_id: str) -> ApprovalRequest:
        req = self.store.get(request_id)
        if req is None:
            raise ReviewRefused(f"no approval request with id {request_id!r}; list them with "
                                "`governed-db approvals list`", code="unknown", request_id=request_id)
        return req

    def list(self, *, pending: bool = False, limit: int = 200) -> list[ApprovalRequest]:
        return self.store.list(pending=pending, limit=limit)

    def wait(self, request_id: str, timeout: float) -> ApprovalRequest:
        """Block until the request leaves ``pending`` or ``timeout`` seconds pass; returns it as it is then."""
        deadline = time.monotonic() + timeout
        while True:
            req = self.get(request_id)
            if req.effective_state(self.store.clock()) != "pending" or time.monotonic() >= deadline:
                return req
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))

    # -- commands people copy -------------------------------------------------------------------
    def _store_flag(self) -> str:
        url = cli_url(self.store)
        return "" if url == cli_url(open_store(None)) else f" --store {shlex.quote(url)}"

    def approve_command(self, request_id: str) -> str:
        return f"governed-db approvals approve {request_id} --as <reviewer>{self._store_flag()}"

    def request_command(self, sql: str, dialect: str) -> str:
        return (f"governed-db approvals request --sql {shlex.quote(sql)} --dialect {dialect} "
                f"--reason '<why>'{self._store_flag()}")

    # -- the record -----------------------------------------------------------------------------
    def _emit(self, transition: str, req: ApprovalRequest, actor: Identity | None, comment: str | None) -> None:
        attrs: dict[str, Any] = identity_attributes(req.requester_identity)
        attrs.update({
            GDB_APPROVAL_REQUEST_ID: req.id,
            GDB_APPROVAL_TRANSITION: transition,
            GDB_APPROVAL_STATE: req.state,
            GDB_APPROVAL_KIND: req.kind,
            GDB_APPROVAL_STATEMENT: req.statement,
            GDB_APPROVAL_APPROVALS: len(req.approvals),
            GDB_APPROVAL_QUORUM: req.policy.quorum,
            GDB_ENVIRONMENT: req.environment,
        })
        if req.fingerprint:
            attrs[GDB_APPROVAL_FINGERPRINT] = req.fingerprint
        if req.rules:
            attrs[GDB_APPROVAL_RULES] = list(req.rules)
        if req.reason:
            attrs[GDB_APPROVAL_REASON] = req.reason
        if req.tables:
            attrs[GDB_APPROVAL_TABLES] = list(req.tables)
        if req.operations:
            attrs[GDB_APPROVAL_OPERATIONS] = list(req.operations)
        if actor is not None:
            attrs[GDB_APPROVAL_REVIEWER] = actor.subject
            attrs[GDB_APPROVAL_REVIEWER_KIND] = actor.kind
            attrs[GDB_APPROVAL_REVIEWER_PROVENANCE] = actor.provenance
            if actor.roles:
                attrs[GDB_APPROVAL_REVIEWER_ROLES] = list(actor.roles)
        if comment:
            attrs[GDB_APPROVAL_COMMENT] = comment[:1000]
        span = self.tracer.start_span(f"governed_db.approval.{transition}", kind=SpanKind.INTERNAL)
        if span.is_recording():
            span.set_attributes(attrs)
        span.end()
        event = req.to_dict()
        event.update(transition=transition, request_id=req.id, reviewer=actor.subject if actor else None,
                     comment=comment, approve_command=self.approve_command(req.id))
        event.pop("reviews", None)
        self.notifier.emit(event)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
