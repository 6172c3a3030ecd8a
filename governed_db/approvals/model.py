"""The approval records: requests, reviews, the review policy and the configuration.

A request is one of two kinds:

``statement``
    a one-time grant: that exact statement text with those parameters (by
    their keyed hash, never the values), for that identity, in that
    environment, usable once within ``grant_ttl`` after approval;
``window``
    a time-bound (just-in-time) grant: for a window after approval,
    statements of the listed operations and/or on the listed tables are
    allowed for that identity in that environment (``grant_seconds`` long).

States move only forward: ``pending`` -> ``approved`` | ``denied`` |
``revoked`` | ``expired``; ``approved`` -> ``consumed`` | ``revoked`` |
``expired``. Expiry is also computed on read (:meth:`ApprovalRequest.effective_state`),
so a request past its time is never usable even before anything records it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from governed_db.errors import ConfigurationError
from governed_db.identity import Identity

RequestKind = Literal["statement", "window"]
State = Literal["pending", "approved", "denied", "revoked", "expired", "consumed"]
STATES: tuple[str, ...] = ("pending", "approved", "denied", "revoked", "expired", "consumed")
#: states after which nothing else can happen
FINAL_STATES = frozenset({"denied", "revoked", "expired", "consumed"})


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    """Who may decide a request, frozen into the request when it is filed."""

    quorum: int = 1
    #: a reviewer needs at least one of these roles (empty: any identity other than the requester)
    reviewer_roles: tuple[str, ...] = ()
    #: only reviewers whose identity came from a verified token count
    require_verified: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"quorum": self.quorum, "reviewer_roles": list(self.reviewer_roles),
                "require_verified": self.require_verified}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReviewPolicy:
        return cls(int(data.get("quorum", 1)), tuple(data.get("reviewer_roles", ())),
                   bool(data.get("require_verified", False)))


@dataclass(frozen=True, slots=True)
class Review:
    """One reviewer's verdict on a request."""

    reviewer: str
    verdict: Literal["approve", "deny"]
    roles: tuple[str, ...]
    verified: bool
    comment: str | None
    at: float


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    id: str
    kind: RequestKind
    state: State
    requester: str
    requester_kind: str
    on_behalf_of: str | None
    environment: str
    dialect: str | None
    #: the normalized statement (literals as placeholders); for a window, a description
    statement: str
    fingerprint: str | None
    #: keyed hash of the exact statement text and parameters (``statement`` kind only)
    statement_hash: str | None
    operations: tuple[str, ...]
    tables: tuple[str, ...]
    rules: tuple[str, ...]
    reason: str | None
    policy: ReviewPolicy
    created_at: float
    expires_at: float
    #: how long the grant lasts once approved (one-time: usable within; window: the window's length)
    grant_seconds: float = 3600.0
    decided_at: float | None = None
    grant_expires_at: float | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    close_comment: str | None = None
    reviews: tuple[Review, ...] = ()

    def effective_state(self, now: float) -> State:
        if self.state == "pending" and now >= self.expires_at:
            return "expired"
        if self.state == "approved" and self.grant_expires_at is not None and now >= self.grant_expires_at:
            return "expired"
        return self.state

    @property
    def approvals(self) -> tuple[Review, ...]:
        return tuple(r for r in self.reviews if r.verdict == "approve")

    @property
    def requester_identity(self) -> Identity:
        """The requester as recorded (for the activity record; not a verified identity)."""
        return Identity(self.requester, kind=self.requester_kind, on_behalf_of=self.on_behalf_of)  # type: ignore[arg-type]

    def with_state(self, state: State, **changes: Any) -> ApprovalRequest:
        return replace(self, state=state, **changes)

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state if now is None else self.effective_state(now),
            "requester": self.requester,
            "requester_kind": self.requester_kind,
            "on_behalf_of": self.on_behalf_of,
            "environment": self.environment,
            "dialect": self.dialect,
            "statement": self.statement,
            "fingerprint": self.fingerprint,
            "operations": list(self.operations),
            "tables": list(self.tables),
            "rules": list(self.rules),
            "reason": self.reason,
            "quorum": self.policy.quorum,
            "reviewer_roles": list(self.policy.reviewer_roles),
            "approvals": len(self.approvals),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "grant_seconds": self.grant_seconds,
            "decided_at": self.decided_at,
            "grant_expires_at": self.grant_expires_at,
            "closed_at": self.closed_at,
            "closed_by": self.closed_by,
            "close_comment": self.close_comment,
            "reviews": [
                {"reviewer": r.reviewer, "verdict": r.verdict, "roles": list(r.roles), "verified": r.verified,
                 "comment": r.comment, "at": r.at}
                for r in self.reviews
            ],
        }


@dataclass(frozen=True)
class ApprovalConfig:
    """How approvals work for one governed connection (the ``approvals=`` option).

    Review settings (``quorum``, ``reviewer_roles``, ``reason_required``,
    ``require_verified_reviewer``, the TTLs) given by the policy win over the
    ones given here; see :func:`governed_db.approvals.resolve_config`.
    """

    #: store URL or path (``None``: ``GOVERNED_DB_APPROVALS`` or the per-user default), or a store object
    store: Any = None
    quorum: int = 1
    reviewer_roles: tuple[str, ...] = ()
    reason_required: bool = False
    require_verified_reviewer: bool = False
    #: how long a pending request waits for its reviewers (seconds)
    request_ttl: float = 24 * 3600.0
    #: how long an approved one-time grant stays usable (seconds)
    grant_ttl: float = 3600.0
    #: callables ``hook(event: dict)`` run in a background thread on every transition
    notify: tuple[Callable[[dict[str, Any]], Any], ...] = ()
    #: webhook URLs, or mappings ``{"url": ..., "format": "json"|"slack", "timeout": s, "retries": n}``
    webhooks: tuple[Any, ...] = ()
    #: block up to this many seconds for a reviewer before raising (interactive notebooks)
    wait: float = 0.0
    #: ``False``: no store at all; statements needing approval are simply refused
    enabled: bool = True

    @property
    def review_policy(self) -> ReviewPolicy:
        return ReviewPolicy(self.quorum, self.reviewer_roles, self.require_verified_reviewer)


_KEYS = {
    "store", "quorum", "reviewer_roles", "reason_required", "require_verified_reviewer", "request_ttl",
    "grant_ttl", "notify", "webhooks", "webhook", "wait", "enabled",
}


def config_from_mapping(data: Mapping[str, Any], base: ApprovalConfig | None = None) -> ApprovalConfig:
    """Overlay ``data`` on ``base``; unknown keys and bad values are a :class:`ConfigurationError`."""
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConfigurationError(
            f"unknown approvals setting(s) {', '.join(unknown)}; valid settings are: {', '.join(sorted(_KEYS))}"
        )
    cfg = base or ApprovalConfig()
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key == "quorum":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"approvals quorum must be an integer >= 1, got {value!r}")
            changes[key] = value
        elif key == "reviewer_roles":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple, set, frozenset)) or not all(
                isinstance(v, str) and v for v in value
            ):
                raise ConfigurationError(
                    f"approvals reviewer_roles must be role names (a list, or a comma-separated string), got {value!r}"
                )
            changes[key] = tuple(value)
        elif key in ("request_ttl", "grant_ttl", "wait"):
            if (
                not isinstance(value, (int, float)) or isinstance(value, bool)
                or not 0 <= value < math.inf  # NaN fails this too
            ):
                raise ConfigurationError(f"approvals {key} must be a finite number of seconds >= 0, got {value!r}")
            changes[key] = float(value)
        elif key in ("reason_required", "require_verified_reviewer", "enabled"):
            if not isinstance(value, bool):
                raise ConfigurationError(f"approvals {key} must be True or False, got {value!r}")
            changes[key] = value
        elif key == "notify":
            hooks = (value,) if callable(value) else tuple(value) if isinstance(value, (list, tuple)) else None
            if hooks is None or not all(callable(h) for h in hooks):
                raise ConfigurationError(
                    f"approvals notify must be a callable or a list of callables, got {type(value).__name__}"
                )
            changes[key] = hooks
        elif key in ("webhooks", "webhook"):
            from governed_db.approvals.notify import Webhook

            if isinstance(value, (str, Mapping)):
                hooks = (value,)
            elif isinstance(value, (list, tuple)):
                hooks = tuple(value)
            else:
                raise ConfigurationError(
                    f"approvals {key} must be a URL, a webhook mapping or a list of them, got {type(value).__name__}"
                )
            for hook in hooks:
                Webhook.parse(hook)  # bad webhook settings fail at wrap(), not at the first approval request
            changes["webhooks"] = hooks
        elif key == "store":
            changes[key] = check_store_spec(value)
        else:
            changes[key] = value
    return replace(cfg, **changes)


#: what a store object answers (``governed_db.approvals.store.SQLStore`` and its subclasses): checked by shape, so
#: that this module (which the store imports) does not import the store
_STORE_METHODS = ("get", "list", "create", "resolve", "review", "revoke", "hash_key")


def check_store_spec(value: Any) -> Any:
    """``value`` if it can name an approval store (None, a path or URL, a store object); else ConfigurationError."""
    if value is None or isinstance(value, os.PathLike) or all(callable(getattr(value, m, None)) for m in _STORE_METHODS):
        return value
    if isinstance(value, str) and value.strip():
        return value
    raise ConfigurationError(
        f"the approval store must be a path, a sqlite:/// or postgresql:// URL, or a store object; got {value!r}"
    )
