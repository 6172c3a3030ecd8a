"""The review rules, as pure functions over a request (no store, no clock of their own).

The store calls these inside the transaction that records a verdict, so the
rule check and the write see the same row and a race has exactly one outcome.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from governed_db.approvals.model import ApprovalRequest, State
from governed_db.errors import GovernedDBError
from governed_db.identity import Identity

Verdict = Literal["approve", "deny"]


class ReviewRefused(GovernedDBError):
    """A review, revocation or lookup was refused; nothing was changed.

    ``code`` says why: ``unknown``, ``expired``, ``decided``, ``self-approval``,
    ``not-a-reviewer``, ``unverified``, ``duplicate``, ``not-allowed``.
    """

    def __init__(self, message: str, *, code: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and canonical_name(a) == canonical_name(b)


#: Characters that render as nothing (zero-width spaces and joiners, soft hyphen, BOM, bidi marks).
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e"
                                    "\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064"
                                    "\u2066\u2067\u2068\u2069\u3164\ufeff\uffa0"))
#: Letters from other scripts that look like Latin ones (the common confusables of Unicode TR39).
_CONFUSABLE = str.maketrans(
    "аеорсухіјѕԁԛԝһӏвкмнтАВЕКМНОРСТХІЈЅԌԚԜΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοριυνκτ",
    "aeopcyxijsdqwhlbkmhtabekmhopctxijsgqwabezhikmnoptyxaopiuvkt",
)


def canonical_name(name: str) -> str:
    """A name as a person reads it: NFKC, confusable letters folded, invisible characters removed, casefolded.

    ``\u0430lice`` (Cyrillic a), ``alice\u200b`` and fullwidth ``\uff21\uff2c\uff29\uff23\uff25`` are all
    ``alice``: a requester cannot approve their own request under a look-alike name.
    """
    import unicodedata

    text = unicodedata.normalize("NFKC", name).translate(_INVISIBLE)
    text = text.casefold().translate(_CONFUSABLE)
    return unicodedata.normalize("NFKC", text).strip()


def is_party(request: ApprovalRequest, person: Identity) -> bool:
    """True when ``person`` is the requester or the one the requester acts for (either way round)."""
    parties = (request.requester, request.on_behalf_of)
    return any(_same(person.subject, p) or _same(person.on_behalf_of, p) for p in parties)


def check_open(request: ApprovalRequest, now: float, *, allowed: Iterable[State] = ("pending",)) -> None:
    state = request.effective_state(now)
    if state in allowed:
        return
    if state == "expired":
        raise ReviewRefused(
            f"request {request.id} has expired; file a new one with `governed-db approvals request`",
            code="expired", request_id=request.id,
        )
    raise ReviewRefused(
        f"request {request.id} is already {state}"
        + (" (a denial is final; file a new request if circumstances changed)" if state == "denied" else ""),
        code="decided", request_id=request.id,
    )


def check_review(request: ApprovalRequest, reviewer: Identity, verdict: Verdict, now: float) -> None:
    """Raise :class:`ReviewRefused` unless ``reviewer`` may give ``verdict`` on ``request`` now."""
    check_open(request, now)
    if is_party(request, reviewer):
        raise ReviewRefused(
            f"{reviewer.subject} cannot review request {request.id}: requesters (and those they act for) "
            "may not approve or deny their own requests; ask another reviewer",
            code="self-approval", request_id=request.id,
        )
    roles = request.policy.reviewer_roles
    if roles and not reviewer.has_role(*roles):
        raise ReviewRefused(
            f"{reviewer.subject} is not a reviewer for request {request.id}: a reviewer needs one of the "
            f"roles {', '.join(roles)} (has: {', '.join(reviewer.roles) or 'none'})",
            code="not-a-reviewer", request_id=request.id,
        )
    if request.policy.require_verified and not reviewer.verified:
        raise ReviewRefused(
            f"request {request.id} needs a reviewer identity from a verified token "
            "(pass --token or GOVERNED_DB_REVIEWER_TOKEN)",
            code="unverified", request_id=request.id,
        )
    if any(_same(r.reviewer, reviewer.subject) for r in request.reviews):
        raise ReviewRefused(
            f"{reviewer.subject} has already reviewed request {request.id}; a quorum needs distinct reviewers",
            code="duplicate", request_id=request.id,
        )


def outcome(request: ApprovalRequest, verdict: Verdict) -> State:
    """The state after one more valid verdict: a denial is final, approvals count to the quorum."""
    if verdict == "deny":
        return "denied"
    return "approved" if len(request.approvals) + 1 >= request.policy.quorum else "pending"


def check_revoke(request: ApprovalRequest, actor: Identity, now: float) -> None:
    """The requester may withdraw; an eligible reviewer may revoke; only pending or approved requests."""
    check_open(request, now, allowed=("pending", "approved"))
    if is_party(request, actor):
        return
    roles = request.policy.reviewer_roles
    if roles and not actor.has_role(*roles):
        raise ReviewRefused(
            f"{actor.subject} may not revoke request {request.id}: only the requester or a reviewer "
            f"(roles {', '.join(roles)}) can",
            code="not-allowed", request_id=request.id,
        )


def covers(grant: ApprovalRequest, operations: Iterable[str], tables: Iterable[str]) -> bool:
    """True when a window grant's scope includes every operation and table of a statement."""
    ops = {o.upper() for o in operations}
    tabs = {t.casefold() for t in tables}
    if not grant.operations and not grant.tables:
        return False  # a window must name what it allows; an empty scope allows nothing
    if grant.operations and not ops <= {o.upper() for o in grant.operations}:
        return False
    if not grant.tables:
        return True
    if not tabs:
        return False  # a statement whose tables are unknown (DO, CALL, ...) is outside any table-scoped window
    allowed = {t.casefold() for t in grant.tables}
    # an unqualified grant table ("orders") covers a qualified use ("public.orders"), not the reverse
    return all(t in allowed or t.rsplit(".", 1)[-1] in allowed for t in tabs)
