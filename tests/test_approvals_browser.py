"""The approvals page in a real headless Chromium (Playwright): sign in, read, approve, deny, self-approval.

Runs the app on uvicorn on a free loopback port. Set ``GOVERNED_DB_SCREENSHOTS=docs/img`` to refresh the
screenshots in ``docs/approvals.md``.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_tokens_idp import FakeIdP, idp_fixture, okta_user  # noqa: F401

from governed_db.approvals import ApprovalConfig, Approvals
from governed_db.approvals.web import ReviewerAuth, create_app
from governed_db.identity import Identity
from governed_db.tokens import TokenVerifier

CHROMIUM = os.environ.get("GOVERNED_DB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (.ci/run installs it)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def served(tmp_path: Path, idp: FakeIdP) -> Iterator[tuple[str, Approvals]]:
    """The app on uvicorn in a thread, verifying tokens from the offline IdP; yields (base URL, service)."""
    import uvicorn

    svc = Approvals(ApprovalConfig(store=str(tmp_path / "approvals.db")))
    verifier = TokenVerifier(issuer=idp.issuer, audience="api://default", allow_insecure_http_for_loopback=True)
    app = create_app(svc, ReviewerAuth(verifier=verifier))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", svc
    server.should_exit = True
    thread.join(10)
    sock.close()


def _shot(page: Any, tmp_path: Path, name: str) -> None:
    out = Path(os.environ.get("GOVERNED_DB_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / name), full_page=True)


def test_reviewer_signs_in_approves_and_denies_in_a_browser(
    browser: Any, served: tuple[str, Approvals], idp: FakeIdP, tmp_path: Path
) -> None:
    """In Chromium: sign in with a token, see the request's context, approve one and deny another with reasons."""
    base, svc = served
    agent = Identity("report-bot", kind="agent", on_behalf_of="alice@example.com")
    first = svc.request_statement("DELETE FROM orders WHERE created_at < '2020-01-01'", identity=agent,
                                  environment="production", dialect="postgres",
                                  reason="GDPR retention job, ticket OPS-12", rules=("write-statement",)).id
    second = svc.request_statement("DROP TABLE staging_import", identity=Identity("etl-bot", kind="agent"),
                                   environment="production", dialect="postgres", reason="cleanup",
                                   rules=("drop",)).id  # fmt: skip
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    page.goto(base + "/")
    assert page.url.endswith("/login")
    page.fill("#token", idp.token(okta_user(sub="dana@example.com", jti="AT.dana")))
    page.click("#sign-in")
    assert page.text_content("#reviewer") == "dana@example.com"
    card = page.locator(f"#req-{first}")
    assert "DELETE FROM orders" in card.locator(".statement").text_content()
    assert "report-bot" in card.locator(".requester").text_content()
    assert card.locator(".on-behalf-of").text_content() == "alice@example.com"
    _shot(page, tmp_path, "approvals-inbox.png")

    page.click(f"a[href='/requests/{first}']")
    assert "write-statement" in page.text_content(".policy-reason")
    page.fill("#comment", "retention job checked against OPS-12")
    _shot(page, tmp_path, "approvals-request.png")
    page.click("#approve")
    assert "approved" in page.text_content("#done")
    req = svc.get(first)
    assert req.state == "approved" and (req.reviews[0].reviewer, req.reviews[0].verified) == ("dana@example.com", True)
    assert req.reviews[0].comment == "retention job checked against OPS-12"

    page.click(f"a[href='/requests/{second}']")
    page.fill("#comment", "drop it with the migration, not by hand")
    page.click("#deny")
    assert "denied" in page.text_content("#done")  # waits for the page after the redirect
    assert svc.get(second).state == "denied"
    assert page.locator(".request").count() == 0 and page.is_visible("#empty")


def test_self_approval_is_refused_in_the_browser(
    browser: Any, served: tuple[str, Approvals], idp: FakeIdP, tmp_path: Path
) -> None:
    """In Chromium: the person an agent acts for clicks Approve and sees the refusal; the request stays pending."""
    base, svc = served
    rid = svc.request_statement("UPDATE accounts SET limit_cents = 0 WHERE id = 9",
                                identity=Identity("support-bot", kind="agent", on_behalf_of="alice@example.com"),
                                environment="production", dialect="postgres", reason="fraud hold").id  # fmt: skip
    page = browser.new_page(viewport={"width": 1100, "height": 600})
    page.goto(base + "/login")
    page.fill("#token", idp.token(okta_user()))  # alice@example.com
    page.click("#sign-in")
    page.goto(f"{base}/requests/{rid}")
    page.click("#approve")
    assert "may not approve or deny their own requests" in page.text_content("#error")
    _shot(page, tmp_path, "approvals-self-approval.png")
    assert svc.get(rid).state == "pending" and svc.get(rid).reviews == ()
