"""``governed-db approvals serve``: the reviewer's inbox in a browser, and Slack's approve/deny buttons.

A small server-rendered Starlette app (Jinja2 templates, no JavaScript) over the same
:class:`~governed_db.approvals.Approvals` service the CLI uses, so the review rules - no self-approval, reviewer
roles, quorum, verified reviewers - are the store's, checked in the transaction that records the verdict.

Who is reviewing (:class:`ReviewerAuth`):

- a bearer token verified by :mod:`governed_db.tokens` - in an ``Authorization: Bearer`` header, or pasted once
  on the sign-in page and kept in an HttpOnly, SameSite=Strict cookie (verified again on every request); or
- a reviewer identity configured when the server starts (``--as``), for one reviewer on their own machine.

Every POST from a browser carries a CSRF token (double submit: a random cookie echoed in the form, compared in
constant time) and, when the browser sends one, an ``Origin`` equal to the server's own. Requests authenticated
by an ``Authorization`` header carry no ambient credential and need no CSRF token.

Slack's interactive buttons post to ``/slack/actions``; a request is accepted only with a valid ``v0`` signature
(HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the app's signing secret, timestamp within five minutes), and the
clicking Slack user must be mapped to a reviewer identity. See ``docs/approvals.md`` and decision 0079.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from governed_db.approvals.review import ReviewRefused, Verdict
from governed_db.errors import GovernanceFault, GovernedDBError
from governed_db.identity import Identity

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from governed_db.approvals.model import ApprovalRequest
    from governed_db.approvals.service import Approvals

TOKEN_COOKIE = "gdb_reviewer_token"
CSRF_COOKIE = "gdb_csrf"
#: Slack rejects replays older than five minutes; so do we
SLACK_MAX_AGE_SECONDS = 300
SLACK_ACTIONS = {"governed_db_approve": "approve", "governed_db_deny": "deny"}
#: a reviewer's reason is a sentence or two, not a document
MAX_COMMENT = 2000
_TEMPLATES = Path(__file__).with_name("templates")
_PAST = {"approve": "approved", "deny": "denied"}


@dataclass(frozen=True, kw_only=True)
class ReviewerAuth:
    """How the server knows who is reviewing: a token verifier, a configured reviewer, or both."""

    #: verifies bearer tokens (``governed_db.tokens.TokenVerifier``); only verified identities are accepted
    verifier: Any = None
    #: the reviewer when no token is presented (one reviewer on their own machine)
    reviewer: Identity | None = None
    #: Slack user id -> reviewer identity, for the interactive buttons
    slack_reviewers: Mapping[str, Identity] = field(default_factory=dict)
    #: the Slack app's signing secret; ``None`` turns ``/slack/actions`` off
    slack_signing_secret: str | None = None

    def __post_init__(self) -> None:
        if self.verifier is None and self.reviewer is None and not self.slack_signing_secret:
            raise GovernedDBError(
                "approvals serve needs a way to know the reviewer: token verification (--issuer/--jwks or "
                "GOVERNED_DB_TOKEN_* settings), a configured reviewer (--as NAME), or a Slack signing secret"
            )

    def from_token(self, token: str) -> Identity:
        if self.verifier is None:
            raise _Unauthorized("this server does not accept tokens (no issuer configured)")
        try:
            ident = self.verifier.verify(token.strip())
        except GovernedDBError as e:
            raise _Unauthorized(f"the token was not accepted: {e}") from None
        if not isinstance(ident, Identity) or not ident.verified:
            raise _Unauthorized("the token did not yield a verified identity")
        return ident


class _Unauthorized(Exception):
    pass


def verify_slack_signature(
    secret: str, timestamp: str | None, body: bytes, signature: str | None, *, now: float | None = None
) -> bool:
    """True when ``signature`` is Slack's v0 signature of ``body`` at ``timestamp`` (within five minutes)."""
    if not secret or not timestamp or not signature:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > SLACK_MAX_AGE_SECONDS:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def _rationale(rule_id: str) -> str:
    from governed_db.policy.rules import catalog

    spec = catalog().get(rule_id)
    return spec.rationale if spec is not None else ""


def _view(req: ApprovalRequest, now: float) -> dict[str, Any]:
    """What the page shows of a request (plain values; the template escapes them)."""
    data = req.to_dict(now)
    return {
        **data,
        "policy_reasons": [(r, _rationale(r)) for r in req.rules],
        # a request carries a measured effect only when whoever filed it measured one (e.g. a dry run)
        "effect": data.get("effect"),
        "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(req.created_at)),
        "expires": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(req.expires_at)),
    }


def create_app(service: Approvals, auth: ReviewerAuth, *, clock: Callable[[], float] = time.time) -> Starlette:
    """The Starlette application: inbox, request page, approve/deny, sign-in, Slack actions."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse
    from starlette.routing import Route
    from starlette.templating import Jinja2Templates

    templates = Jinja2Templates(directory=str(_TEMPLATES))

    def reviewer_of(request: Request) -> tuple[Identity | None, bool]:
        """(reviewer, authenticated by header); raises _Unauthorized for a bad token."""
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _Unauthorized("use Authorization: Bearer <token>")
            return auth.from_token(token), True
        cookie = request.cookies.get(TOKEN_COOKIE)
        if cookie:
            return auth.from_token(cookie), False
        return auth.reviewer, False

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = templates.TemplateResponse(request, name, {"csrf": csrf, **context}, status_code=status)
        if request.cookies.get(CSRF_COOKIE) != csrf:
            response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https", path="/")  # fmt: skip
        _harden(response)
        return response

    async def checked_form(request: Request, by_header: bool) -> dict[str, str]:
        """The posted form, after the CSRF checks a browser post needs."""
        form = await request.form()
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        if by_header:
            return values
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin is not None and origin != own:
            raise _Forbidden(f"cross-origin post from {origin} refused")
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = values.get("csrf", "")
        if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
            raise _Forbidden("the form's CSRF token is missing or does not match; reload the page and try again")
        return values

    async def inbox(request: Request) -> Response:
        try:
            reviewer, _ = reviewer_of(request)
        except _Unauthorized as e:
            return page(request, "login.html", 401, error=str(e))
        if reviewer is None:
            return RedirectResponse("/login", status_code=303)
        now = clock()
        try:
            reqs = await run_in_threadpool(service.list, pending=True)
        except GovernanceFault as e:
            return page(request, "error.html", 503, reviewer=reviewer, error=str(e))
        pending = [_view(r, now) for r in reqs if r.effective_state(now) == "pending"]
        return page(request, "inbox.html", reviewer=reviewer, requests=pending,
                    done=request.query_params.get("done"))  # fmt: skip

    async def detail(request: Request) -> Response:
        try:
            reviewer, _ = reviewer_of(request)
        except _Unauthorized as e:
            return page(request, "login.html", 401, error=str(e))
        if reviewer is None:
            return RedirectResponse("/login", status_code=303)
        try:
            req = await run_in_threadpool(service.get, request.path_params["rid"])
        except ReviewRefused as e:
            return page(request, "error.html", 404, reviewer=reviewer, error=str(e))
        return page(request, "request.html", reviewer=reviewer, r=_view(req, clock()))

    async def review(request: Request) -> Response:
        if request.path_params["verdict"] not in ("approve", "deny"):
            return PlainTextResponse("not found", status_code=404)
        verdict: Verdict = "approve" if request.path_params["verdict"] == "approve" else "deny"
        rid = request.path_params["rid"]
        try:
            reviewer, by_header = reviewer_of(request)
            if reviewer is None:
                raise _Unauthorized("sign in with a token first")
            values = await checked_form(request, by_header)
        except _Unauthorized as e:
            return page(request, "login.html", 401, error=str(e))
        except _Forbidden as e:
            return page(request, "error.html", 403, reviewer=None, error=str(e))
        comment = values.get("comment", "").strip()[:MAX_COMMENT] or None
        act = service.approve if verdict == "approve" else service.deny
        try:
            req = await run_in_threadpool(act, rid, reviewer, comment)
        except ReviewRefused as e:
            status = 404 if e.code == "unknown" else 409 if e.code in ("decided", "expired") else 403
            return page(request, "error.html", status, reviewer=reviewer, error=str(e))
        except GovernanceFault as e:
            return page(request, "error.html", 503, reviewer=reviewer, error=str(e))
        done = f"{req.id}: {_PAST[verdict]} by {reviewer.subject} (now {req.state})"
        return RedirectResponse(f"/?done={quote(done)}", status_code=303)

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return page(request, "login.html", error=None)
        try:
            values = await checked_form(request, False)
            ident = auth.from_token(values.get("token", ""))
        except _Forbidden as e:
            return page(request, "error.html", 403, reviewer=None, error=str(e))
        except _Unauthorized as e:
            return page(request, "login.html", 401, error=str(e))
        response = RedirectResponse("/", status_code=303)
        exp = ident.attributes.get("expires_at")
        max_age = max(0, int(float(exp) - clock())) if exp else 3600
        response.set_cookie(TOKEN_COOKIE, values["token"].strip(), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/", max_age=max_age)  # fmt: skip
        return response

    async def logout(request: Request) -> Response:
        try:
            await checked_form(request, False)
        except _Forbidden as e:
            return page(request, "error.html", 403, reviewer=None, error=str(e))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(TOKEN_COOKIE, path="/")
        return response

    async def slack_actions(request: Request) -> Response:
        secret = auth.slack_signing_secret
        if not secret:
            return PlainTextResponse("Slack actions are not configured on this server", status_code=404)
        body = await request.body()
        if not verify_slack_signature(secret, request.headers.get("x-slack-request-timestamp"), body,
                                      request.headers.get("x-slack-signature"), now=clock()):  # fmt: skip
            return PlainTextResponse("invalid Slack signature", status_code=401)
        try:
            payload = json.loads(parse_qs(body.decode())["payload"][0])
            action = payload["actions"][0]
            verdict = SLACK_ACTIONS[action["action_id"]]
            rid, user = str(action["value"]), str(payload["user"]["id"])
        except (KeyError, IndexError, TypeError, ValueError, UnicodeDecodeError):
            return PlainTextResponse("not a governed_db approval action", status_code=400)
        reviewer = auth.slack_reviewers.get(user)
        if reviewer is None:
            return JSONResponse({"response_type": "ephemeral", "replace_original": False,
                                 "text": f"Slack user {user} is not a configured reviewer"})  # fmt: skip
        name = payload["user"].get("username") or user
        act = service.approve if verdict == "approve" else service.deny
        try:
            req = await run_in_threadpool(act, rid, reviewer, f"{_PAST[verdict]} in Slack by {name}")
        except (ReviewRefused, GovernanceFault) as e:
            return JSONResponse({"response_type": "ephemeral", "replace_original": False, "text": str(e)})
        return JSONResponse({"replace_original": False,
                             "text": f"{req.id}: {_PAST[verdict]} by {reviewer.subject} (now {req.state})"})  # fmt: skip

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[
        Route("/", inbox),
        Route("/requests/{rid}", detail),
        Route("/requests/{rid}/{verdict:str}", review, methods=["POST"]),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/slack/actions", slack_actions, methods=["POST"]),
        Route("/healthz", health),
    ])  # fmt: skip


class _Forbidden(Exception):
    pass


def _harden(response: Response) -> None:
    # no scripts, no framing, no referrer (request ids) to other sites; same-origin keeps a real Origin on posts
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"


__all__ = ["ReviewerAuth", "create_app", "verify_slack_signature"]
