"""Approvals for statements a policy sends for review.

Interface used by the execution pipeline::

    check_approval(decision, analysis=..., identity=..., environment=..., sql=..., params=..., settings=...)

returns normally when a valid grant covers the statement (consuming a
one-time grant atomically) and raises :class:`~governed_db.errors.ApprovalRequired`
otherwise, carrying the request id, the statement fingerprint, the rule(s) and
the command that approves it. When the store cannot be reached the statement
is refused with :class:`~governed_db.errors.GovernanceFault` (fail closed).

Configuration (the ``approvals=`` option of :func:`governed_db.wrap`):

* ``None`` (default) — the store named by ``GOVERNED_DB_APPROVALS``, else the
  per-user SQLite file (see :mod:`governed_db.approvals.stores`);
* a path or URL string — that store;
* a mapping — settings of :class:`ApprovalConfig` (``store``, ``quorum``,
  ``reviewer_roles``, ``reason_required``, ``require_verified_reviewer``,
  ``request_ttl``, ``grant_ttl``, ``notify``, ``webhook(s)``, ``wait``);
* an :class:`ApprovalConfig` or :class:`Approvals`;
* ``False`` — no store: statements needing approval are simply refused.

Review settings in the policy win: a ``Policy`` with an ``approvals`` attribute
or ``extra["approvals"]`` mapping, and decision details named
``approvals.<setting>`` (per rule), override the option's values.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

from governed_db.approvals.model import (
    ApprovalConfig,
    ApprovalRequest,
    Review,
    ReviewPolicy,
    check_store_spec,
    config_from_mapping,
)
from governed_db.approvals.review import ReviewRefused
from governed_db.approvals.service import Approvals
from governed_db.approvals.store import SQLStore, StoreUnavailable
from governed_db.approvals.stores import ENV_VAR, default_path, open_store
from governed_db.errors import ApprovalRequired, ConfigurationError
from governed_db.identity import Identity
from governed_db.policy.decision import Decision
from governed_db.sql.analysis import Analysis

#: review settings a policy may set (the rest — store, hooks, wait — belong to the connection)
POLICY_KEYS = ("quorum", "reviewer_roles", "reason_required", "require_verified_reviewer", "request_ttl", "grant_ttl")

_reason: contextvars.ContextVar[str | None] = contextvars.ContextVar("governed_db_approval_reason", default=None)


@contextlib.contextmanager
def reason(text: str) -> Iterator[str]:
    """Statements in this block that need approval file their request with this reason."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError("an approval reason must be a non-empty string saying why")
    token = _reason.set(text.strip())
    try:
        yield text
    finally:
        _reason.reset(token)


def current_reason() -> str | None:
    return _reason.get()


def _policy_settings(policy_source: Any) -> Mapping[str, Any]:
    from governed_db.policy import Policy, load_policy

    if policy_source is not None and not isinstance(policy_source, Policy):
        # a file or mapping: the governor has loaded it already, so this is a cache hit
        policy_source = load_policy(policy_source)
    if not isinstance(policy_source, Policy):
        return {}
    found = getattr(policy_source, "approvals", None)
    if found is None:
        found = (getattr(policy_source, "extra", None) or {}).get("approvals")
    if found is None:
        return {}
    if isinstance(found, ApprovalConfig):
        return {k: getattr(found, k) for k in POLICY_KEYS}
    if not isinstance(found, Mapping):
        raise ConfigurationError(f"the policy's approvals settings must be a mapping, got {type(found).__name__}")
    return {k: v for k, v in found.items() if k in POLICY_KEYS}


def _decision_settings(decision: Decision | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (decision.details if decision else ()):
        name = key.removeprefix("approvals.")
        if key.startswith("approvals.") and name in POLICY_KEYS:
            if name == "quorum":
                out[name] = int(value)
            elif name in ("request_ttl", "grant_ttl"):
                out[name] = float(value)
            elif name in ("reason_required", "require_verified_reviewer"):
                out[name] = value.strip().lower() in ("1", "true", "yes")
            else:
                out[name] = value
    return out


def resolve_config(option: Any, policy: Any = None, decision: Decision | None = None) -> ApprovalConfig:
    """The :class:`ApprovalConfig` for an ``approvals=`` value, with the policy's review settings on top."""
    if isinstance(option, Approvals):
        base = option.config
    elif option is None or option is True:
        base = ApprovalConfig()
    elif option is False:
        base = ApprovalConfig(enabled=False)
    elif isinstance(option, ApprovalConfig):
        base = option
    elif isinstance(option, Mapping):
        base = config_from_mapping(option)
    elif isinstance(option, (str, os.PathLike, SQLStore)):
        base = ApprovalConfig(store=check_store_spec(option))
    else:
        raise ConfigurationError(
            "approvals= takes a store path or URL, a mapping of settings, an ApprovalConfig or Approvals, "
            f"True, False or None; got {type(option).__name__}"
        )
    overlay = {**_policy_settings(policy), **_decision_settings(decision)}
    return config_from_mapping(overlay, base) if overlay else base


_services: dict[int, tuple[weakref.ref[Any], Approvals]] = {}
_services_lock = threading.Lock()


def approvals_for(settings: Any) -> Approvals:
    """The :class:`Approvals` serving one governed connection's settings (built once)."""
    key = id(settings)
    entry = _services.get(key)
    if entry is not None and entry[0]() is settings:
        return entry[1]
    option = settings.option("approvals")
    if isinstance(option, Approvals):
        service = option
        if _policy_settings(settings.policy):
            service = _with_config(option, resolve_config(option.config, settings.policy))
    else:
        from governed_db.audit import audit_processor
        from governed_db.telemetry import tracer_for

        config = resolve_config(option, settings.policy)
        tracer = tracer_for(settings.tracer_provider, audit_processor(settings.audit))
        service = Approvals(config, tracer=tracer)
    with _services_lock:
        if len(_services) > 256:
            for k in [k for k, (ref, _) in _services.items() if ref() is None]:
                del _services[k]
        _services[key] = (weakref.ref(settings), service)
    return service


def check_approval(
    decision: Decision,
    *,
    analysis: Analysis,
    identity: Identity,
    environment: str,
    sql: str,
    params: Any,
    settings: Any,
) -> ApprovalRequest:
    """Return the grant covering this execute (the pipeline may ignore it), else raise ApprovalRequired."""
    option = settings.option("approvals")
    service = None if option is False else approvals_for(settings)
    if service is None or not service.config.enabled:
        raise ApprovalRequired(
            f"approval required ({decision.reason}); approvals are turned off for this connection "
            "(approvals=False), so the statement cannot run here",
            decision, statement=analysis.normalized,
        )
    if _decision_settings(decision):
        # review settings can differ per rule: a per-statement view over the same store and tracer
        config = resolve_config(service.config, None, decision)
        if config != service.config:
            service = _with_config(service, config)
    # StoreUnavailable (a GovernanceFault) propagates: the statement is refused, fail closed
    return service.check(decision, analysis=analysis, identity=identity, environment=environment, sql=sql,
                         params=params, reason=current_reason())


def _service(store: Any, tracer_provider: Any, audit: Any) -> Approvals:
    from governed_db.audit import audit_processor
    from governed_db.telemetry import tracer_for

    return Approvals(ApprovalConfig(store=store), tracer=tracer_for(tracer_provider, audit_processor(audit)))


def approve(request_id: str, *, reviewer: Identity, comment: str | None = None, store: Any = None,
            tracer_provider: Any = None, audit: Any = None) -> ApprovalRequest:
    """Record ``reviewer``'s approval (the request turns ``approved`` once the quorum is reached)."""
    return _service(store, tracer_provider, audit).approve(request_id, reviewer, comment)


def deny(request_id: str, *, reviewer: Identity, comment: str | None = None, store: Any = None,
         tracer_provider: Any = None, audit: Any = None) -> ApprovalRequest:
    """Deny a pending request; a denial is final."""
    return _service(store, tracer_provider, audit).deny(request_id, reviewer, comment)


def revoke(request_id: str, *, actor: Identity, comment: str | None = None, store: Any = None,
           tracer_provider: Any = None, audit: Any = None) -> ApprovalRequest:
    """Withdraw a pending request or revoke an unused grant."""
    return _service(store, tracer_provider, audit).revoke(request_id, actor, comment)


def get_request(request_id: str, *, store: Any = None) -> ApprovalRequest:
    return Approvals(ApprovalConfig(store=store)).get(request_id)


def list_requests(*, pending: bool = False, store: Any = None, limit: int = 200) -> list[ApprovalRequest]:
    return Approvals(ApprovalConfig(store=store)).list(pending=pending, limit=limit)


def wait_for(request_id: str, timeout: float, *, store: Any = None) -> ApprovalRequest:
    """Block (e.g. in a notebook) until a reviewer decides or ``timeout`` seconds pass."""
    return Approvals(ApprovalConfig(store=store)).wait(request_id, timeout)


def _with_config(service: Approvals, config: ApprovalConfig) -> Approvals:
    clone = Approvals.__new__(Approvals)
    clone.config = config
    clone.store = service.store
    clone.tracer = service.tracer
    clone.notifier = service.notifier
    return clone


__all__ = [
    "ENV_VAR",
    "ApprovalConfig",
    "ApprovalRequest",
    "Approvals",
    "Review",
    "ReviewPolicy",
    "ReviewRefused",
    "SQLStore",
    "StoreUnavailable",
    "approvals_for",
    "approve",
    "check_approval",
    "current_reason",
    "default_path",
    "deny",
    "get_request",
    "list_requests",
    "open_store",
    "reason",
    "resolve_config",
    "revoke",
    "wait_for",
]
