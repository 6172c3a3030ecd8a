"""The approvals web app over HTTP: who may review, CSRF, no self-approval, Slack's signed buttons.

The store is the ground truth: every refused post is checked to have left the request pending.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient
from test_tokens_idp import FakeIdP, idp_fixture, okta_user  # noqa: F401

from governed_db.approvals import ApprovalConfig, Approvals
from governed_db.approvals.notify import slack_message
from governed_db.approvals.web import CSRF_COOKIE, ReviewerAuth, create_app, verify_slack_signature
from governed_db.identity import Identity
from governed_db.tokens import TokenVerifier

AGENT = Identity("report-bot", kind="agent", on_behalf_of="alice@example.com")
DANA = Identity("dana", roles=("dba",))
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def _service(tmp_path: Path) -> Approvals:
    return Approvals(ApprovalConfig(store=str(tmp_path / "approvals.db")))


def _file(svc: Approvals, sql: str = "DELETE FROM orders WHERE id = 7", who: Identity = AGENT) -> str:
    return svc.request_statement(sql, identity=who, environment="production", dialect="postgres",
                                 reason="ticket OPS-12: duplicate order", rules=("write-statement",)).id  # fmt: skip


def _client(svc: Approvals, **auth: Any) -> TestClient:
    return TestClient(create_app(svc, ReviewerAuth(**auth)), base_url="http://testserver")


def _csrf(client: TestClient) -> str:
    client.get("/login")
    return str(client.cookies[CSRF_COOKIE])


def _state(svc: Approvals, rid: str) -> str:
    return svc.get(rid).state


def test_inbox_shows_what_a_reviewer_needs(tmp_path: Path) -> None:
    """The inbox lists the statement, requester, on-behalf-of, the requester's and the policy's reasons."""
    svc = _service(tmp_path)
    rid = _file(svc)
    page = _client(svc, reviewer=DANA).get("/")
    assert page.status_code == 200
    for text in (rid, "DELETE FROM orders WHERE id = ", "report-bot", "alice@example.com", "ticket OPS-12",
                 "write-statement", "Any data change"):
        assert text in page.text, text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_statement_text_is_escaped(tmp_path: Path) -> None:
    """Markup in a statement or reason is shown as text, never rendered."""
    svc = _service(tmp_path)
    svc.request_statement("UPDATE t SET note = '<script>alert(1)</script>' WHERE id = 1", identity=AGENT,
                          environment="production", dialect="postgres", reason="<b>bold</b>")  # fmt: skip
    page = _client(svc, reviewer=DANA).get("/").text
    assert "<script>alert" not in page and "<b>bold" not in page and "&lt;b&gt;bold" in page


def test_configured_reviewer_approves_with_a_reason(tmp_path: Path) -> None:
    """A form post with the CSRF token approves as the configured reviewer, recording the reason."""
    svc = _service(tmp_path)
    rid = _file(svc)
    client = _client(svc, reviewer=DANA)
    r = client.post(f"/requests/{rid}/approve", data={"csrf": _csrf(client), "comment": "checked OPS-12"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and "approved" in r.headers["location"]
    req = svc.get(rid)
    assert req.state == "approved" and req.reviews[0].reviewer == "dana" and req.reviews[0].comment == "checked OPS-12"


@pytest.mark.parametrize(
    ("data", "headers"),
    [
        ({}, {}),  # no token
        ({"csrf": "forged"}, {}),  # a token that is not the cookie's
        (None, {"origin": "https://evil.example"}),  # right token, another site's page
    ],
    ids=["missing", "mismatch", "cross-origin"],
)
def test_browser_posts_without_valid_csrf_are_refused(tmp_path: Path, data: Any, headers: dict[str, str]) -> None:
    """A post without the matching CSRF token, or from another origin, changes nothing (403)."""
    svc = _service(tmp_path)
    rid = _file(svc)
    client = _client(svc, reviewer=DANA)
    token = _csrf(client)
    r = client.post(f"/requests/{rid}/approve", data={"csrf": token} if data is None else data, headers=headers)
    assert r.status_code == 403 and _state(svc, rid) == "pending"


def test_no_self_approval(tmp_path: Path) -> None:
    """The one the agent acts for cannot approve its request: refused with the reason, still pending."""
    svc = _service(tmp_path)
    rid = _file(svc)
    client = _client(svc, reviewer=Identity("alice@example.com"))
    r = client.post(f"/requests/{rid}/approve", data={"csrf": _csrf(client)})
    assert r.status_code == 403 and "may not approve or deny their own" in r.text
    assert _state(svc, rid) == "pending" and svc.get(rid).reviews == ()


def test_deny_is_final_and_a_second_verdict_conflicts(tmp_path: Path) -> None:
    """Deny records the verdict; approving the denied request afterwards is a 409 and changes nothing."""
    svc = _service(tmp_path)
    rid = _file(svc)
    client = _client(svc, reviewer=DANA)
    csrf = _csrf(client)
    assert client.post(f"/requests/{rid}/deny", data={"csrf": csrf, "comment": "no"}).status_code == 200
    again = client.post(f"/requests/{rid}/approve", data={"csrf": csrf})
    assert again.status_code == 409 and _state(svc, rid) == "denied"
    assert client.post(f"/requests/{rid}/approvex", data={"csrf": csrf}).status_code == 404


def test_without_a_reviewer_the_inbox_asks_to_sign_in(tmp_path: Path, idp: FakeIdP) -> None:
    """Token mode with no token: the inbox redirects to sign-in and a post is refused (nothing changes)."""
    svc = _service(tmp_path)
    rid = _file(svc)
    client = _client(svc, verifier=TokenVerifier(issuer=idp.issuer, audience="api://default",
                                                 allow_insecure_http_for_loopback=True))  # fmt: skip
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    r = client.post(f"/requests/{rid}/approve", data={"csrf": _csrf(client)})
    assert r.status_code == 401 and _state(svc, rid) == "pending"


def test_bearer_token_reviewer(tmp_path: Path, idp: FakeIdP) -> None:
    """A verified bearer token reviews as its subject; a token signed by an unknown key is refused (401)."""
    svc = _service(tmp_path)
    rid = _file(svc)
    client = _client(svc, verifier=TokenVerifier(issuer=idp.issuer, audience="api://default",
                                                 allow_insecure_http_for_loopback=True))  # fmt: skip
    rogue = idp.add_key("ec", publish=False)
    forged = idp.token(okta_user(sub="mallory@example.com", jti="AT.m"), kid=rogue)
    r = client.post(f"/requests/{rid}/approve", headers={"authorization": f"Bearer {forged}"})
    assert r.status_code == 401 and _state(svc, rid) == "pending"
    good = idp.token(okta_user(sub="bob@example.com", jti="AT.b"))
    r = client.post(f"/requests/{rid}/approve", headers={"authorization": f"Bearer {good}"}, data={"comment": "ok"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    review = svc.get(rid).reviews[0]
    assert (review.reviewer, review.verified, svc.get(rid).state) == ("bob@example.com", True, "approved")


def test_sign_in_keeps_the_token_in_an_httponly_cookie(tmp_path: Path, idp: FakeIdP) -> None:
    """Signing in with a token sets a strict HttpOnly cookie; a bad token stays on the sign-in page (401)."""
    svc = _service(tmp_path)
    _file(svc)
    client = _client(svc, verifier=TokenVerifier(issuer=idp.issuer, audience="api://default",
                                                 allow_insecure_http_for_loopback=True))  # fmt: skip
    csrf = _csrf(client)
    bad = client.post("/login", data={"csrf": csrf, "token": "not-a-jwt"})
    assert bad.status_code == 401 and "not accepted" in bad.text
    r = client.post("/login", data={"csrf": csrf, "token": idp.token(okta_user(sub="bob@example.com"))},
                    follow_redirects=False)  # fmt: skip
    cookie = r.headers["set-cookie"].lower()
    assert r.status_code == 303 and "httponly" in cookie and "samesite=strict" in cookie
    assert "bob@example.com" in client.get("/").text


def _slack_body(rid: str, action: str = "governed_db_approve", user: str = "U024BE7LH") -> bytes:
    payload = {"type": "block_actions", "user": {"id": user, "username": "dana"},
               "actions": [{"action_id": action, "value": rid}]}  # fmt: skip
    return urlencode({"payload": json.dumps(payload)}).encode()


def _signed(body: bytes, ts: int, secret: str = SECRET) -> dict[str, str]:
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": str(ts), "x-slack-signature": sig,
            "content-type": "application/x-www-form-urlencoded"}  # fmt: skip


def test_slack_signature_matches_slacks_documented_example() -> None:
    """The verifier accepts the signature from Slack's own documentation and rejects a changed body."""
    body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
            b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
            b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
            b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")  # fmt: skip
    sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert verify_slack_signature(SECRET, "1531420618", body, sig, now=1531420618 + 10)
    assert not verify_slack_signature(SECRET, "1531420618", body + b"x", sig, now=1531420618 + 10)
    assert not verify_slack_signature(SECRET, "1531420618", body, sig, now=1531420618 + 301)  # a replay


def test_signed_slack_click_approves(tmp_path: Path) -> None:
    """A correctly signed click by a mapped Slack user approves as that reviewer."""
    svc = _service(tmp_path)
    rid = _file(svc)
    client = _client(svc, slack_signing_secret=SECRET, slack_reviewers={"U024BE7LH": DANA})
    body = _slack_body(rid)
    r = client.post("/slack/actions", content=body, headers=_signed(body, int(time.time())))
    assert r.status_code == 200 and "approved" in r.json()["text"]
    req = svc.get(rid)
    assert req.state == "approved" and req.reviews[0].reviewer == "dana" and "Slack" in (req.reviews[0].comment or "")


@pytest.mark.parametrize("forgery", ["wrong-secret", "stale", "no-signature", "tampered"])
def test_forged_slack_requests_change_nothing(tmp_path: Path, forgery: str) -> None:
    """Wrong secret, a timestamp over five minutes old, no signature, or a changed body: 401, still pending."""
    svc = _service(tmp_path)
    rid = _file(svc)
    client = _client(svc, slack_signing_secret=SECRET, slack_reviewers={"U024BE7LH": DANA})
    body, now = _slack_body(rid), int(time.time())
    headers = {
        "wrong-secret": _signed(body, now, secret="not-the-secret"),
        "stale": _signed(body, now - 301),
        "no-signature": {"x-slack-request-timestamp": str(now)},
        "tampered": _signed(_slack_body(rid, "governed_db_deny"), now),
    }[forgery]
    r = client.post("/slack/actions", content=body, headers=headers)
    assert r.status_code == 401 and _state(svc, rid) == "pending"


def test_slack_user_must_be_a_mapped_reviewer(tmp_path: Path) -> None:
    """A signed click by a Slack user not mapped to a reviewer gets an ephemeral refusal; nothing changes."""
    svc = _service(tmp_path)
    rid = _file(svc)
    client = _client(svc, slack_signing_secret=SECRET, slack_reviewers={"U024BE7LH": DANA})
    body = _slack_body(rid, user="U999")
    r = client.post("/slack/actions", content=body, headers=_signed(body, int(time.time())))
    assert r.json()["response_type"] == "ephemeral" and _state(svc, rid) == "pending"


def test_slack_message_carries_the_buttons(tmp_path: Path) -> None:
    """A pending request's Slack message has approve/deny buttons whose value is the request id."""
    msg = slack_message({"request_id": "r-1", "state": "pending", "transition": "requested", "statement": "x"})
    actions = msg["blocks"][1]["elements"]
    assert [(a["action_id"], a["value"]) for a in actions] == [("governed_db_approve", "r-1"),
                                                               ("governed_db_deny", "r-1")]  # fmt: skip
    assert len(slack_message({"request_id": "r-1", "state": "approved"})["blocks"]) == 1


def test_server_refuses_to_start_without_a_way_to_know_the_reviewer() -> None:
    """No verifier, no configured reviewer, no Slack secret: a clear configuration error."""
    from governed_db.errors import GovernedDBError

    with pytest.raises(GovernedDBError, match="needs a way to know the reviewer"):
        ReviewerAuth()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {}, "needs a way to know the reviewer"),
        (["--as", "dana", "--host", "0.0.0.0"], {}, "bind it to 127.0.0.1"),
        (["--slack-reviewer", "U1=dana"], {}, "GOVERNED_DB_SLACK_SIGNING_SECRET"),
        (["--slack-reviewer", "dana"], {"GOVERNED_DB_SLACK_SIGNING_SECRET": "s"}, "SLACK_USER_ID=REVIEWER"),
    ],
    ids=["nothing", "remote-as", "slack-no-secret", "slack-bad-map"],
)
def test_serve_refuses_unsafe_or_incomplete_options(args: list[str], env: dict[str, str], message: str,
                                                    tmp_path: Path) -> None:  # fmt: skip
    """`approvals serve` exits 2 with a one-line reason (no traceback) before listening."""
    from click.testing import CliRunner

    from governed_db.cli import main

    result = CliRunner().invoke(main, ["approvals", "--store", str(tmp_path / "a.db"), "serve", *args], env=env)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
