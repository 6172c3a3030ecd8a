"""Approval notifications: callable hooks and webhooks (JSON, Slack) off the statement path."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import approvals
from governed_db.approvals.notify import Notifier, Webhook, slack_message
from governed_db.errors import ApprovalRequired, ConfigurationError
from governed_db.identity import Identity
from governed_db.policy import Policy
from governed_db.policy.decision import Action, RuleHit


def deletes(stmt: Any, ctx: Any) -> RuleHit | None:
    if stmt is not None and stmt.operation == "DELETE":
        return RuleHit("bulk-delete", Action.REQUIRE_APPROVAL, "DELETE needs a reviewer")
    return None


POLICY = Policy(name="notify-test", rules=(deletes,))


class Receiver:
    """A local HTTP server recording POSTed JSON; answers with the queued statuses, then 200."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.got = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(outer.delay)
                status = outer.statuses.pop(0) if outer.statuses else 200
                if status == 200:
                    outer.bodies.append(json.loads(body))
                    outer.got.set()
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE t (id INTEGER)")
    return str(path)


def _wrap(db: str, cfg: dict[str, Any]) -> Any:
    return governed_db.wrap(sqlite3.connect(db), identity=Identity("alice"), policy=POLICY, approvals=cfg)


def test_hook_receives_each_transition(db: str, tmp_path: Path) -> None:
    """A callable hook gets requested and approved events with the request's facts, never parameters."""
    events: list[dict[str, Any]] = []
    store = str(tmp_path / "a.sqlite3")
    svc = approvals.Approvals(approvals.ApprovalConfig(store=store, notify=(events.append,)))
    conn = governed_db.wrap(sqlite3.connect(db), identity=Identity("alice"), policy=POLICY, approvals=svc)
    with pytest.raises(ApprovalRequired) as e:
        conn.execute("DELETE FROM t WHERE id = ?", (987654,))
    svc.approve(e.value.request_id, Identity("bob"), "ok")
    assert svc.notifier.flush()
    assert [(ev["transition"], ev["state"]) for ev in events] == [("requested", "pending"), ("approved", "approved")]
    first = events[0]
    assert first["request_id"] == e.value.request_id and first["requester"] == "alice"
    assert first["statement"] == "DELETE FROM t WHERE id = ?" and first["rules"] == ["bulk-delete"]
    assert first["approve_command"] == e.value.approve_command
    assert events[1]["reviewer"] == "bob" and events[1]["comment"] == "ok"
    assert "987654" not in json.dumps(events)


def test_failing_or_slow_hook_never_breaks_or_delays_the_statement(db: str, tmp_path: Path) -> None:
    """A hook that raises or sleeps does not change what execute raises, nor how fast."""

    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("receiver down")

    def slow(event: dict[str, Any]) -> None:
        time.sleep(2)

    conn = _wrap(db, {"store": str(tmp_path / "a.sqlite3"), "notify": [broken, slow]})
    start = time.monotonic()
    with pytest.raises(ApprovalRequired):
        conn.execute("DELETE FROM t")
    assert time.monotonic() - start < 1.5


def test_webhook_posts_json(db: str, tmp_path: Path, receiver: Receiver) -> None:
    """The webhook notifier POSTs the event as JSON to the configured URL."""
    conn = _wrap(db, {"store": str(tmp_path / "a.sqlite3"), "webhook": receiver.url})
    with pytest.raises(ApprovalRequired) as e:
        conn.execute("DELETE FROM t")
    assert receiver.got.wait(5)
    assert receiver.bodies[0]["request_id"] == e.value.request_id
    assert receiver.bodies[0]["transition"] == "requested"


def test_webhook_slack_format(receiver: Receiver) -> None:
    """format='slack' sends a Slack incoming-webhook message with text and an mrkdwn block."""
    hook = Webhook.parse({"url": receiver.url, "format": "slack"})
    event = {"request_id": "abcd2345", "transition": "requested", "state": "pending", "requester": "bot",
             "on_behalf_of": "alice", "environment": "production", "rules": ["bulk-delete"], "reason": "cleanup",
             "statement": "DELETE FROM t", "approve_command": "governed-db approvals approve abcd2345 --as <reviewer>"}
    assert hook.send(event)
    body = receiver.bodies[0]
    assert "abcd2345" in body["text"] and "bot on behalf of alice" in body["text"]
    assert body["blocks"][0]["text"]["type"] == "mrkdwn"
    assert "approvals approve abcd2345" in body["text"]
    assert slack_message(event) == body


def test_webhook_retries_server_errors_then_delivers(receiver: Receiver) -> None:
    """5xx answers are retried with backoff; the event arrives once."""
    receiver.statuses = [500, 503]
    hook = Webhook.parse({"url": receiver.url, "retries": 3, "backoff": 0.01})
    assert hook.send({"request_id": "x"})
    assert [b["request_id"] for b in receiver.bodies] == ["x"]


def test_webhook_gives_up_on_client_errors_and_timeouts(receiver: Receiver) -> None:
    """A 4xx is not retried; a receiver slower than the timeout counts as failed after the retries."""
    receiver.statuses = [400]
    assert not Webhook.parse({"url": receiver.url, "retries": 3, "backoff": 0.01}).send({"a": 1})
    assert receiver.statuses == [] and receiver.bodies == []
    receiver.delay = 1.0
    start = time.monotonic()
    assert not Webhook.parse({"url": receiver.url, "timeout": 0.2, "retries": 1, "backoff": 0.01}).send({"a": 1})
    assert time.monotonic() - start < 1.5


def test_unreachable_webhook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listening: the notifier logs a warning naming only the host (the path may hold a secret)."""
    notifier = Notifier(webhooks=({"url": "http://127.0.0.1:1/hooks/secret-token", "retries": 1,
                                   "backoff": 0.01, "timeout": 0.5},))
    with caplog.at_level("WARNING", logger="governed_db.approvals"):
        notifier.emit({"request_id": "x"})
        assert notifier.flush(5)
    assert "127.0.0.1:1" in caplog.text and "secret-token" not in caplog.text


def test_full_queue_drops_instead_of_blocking() -> None:
    """When the queue is full emit() returns at once and drops the event."""
    gate = threading.Event()
    notifier = Notifier(hooks=(lambda e: gate.wait(5),), max_queue=1)
    start = time.monotonic()
    for i in range(20):
        notifier.emit({"request_id": str(i)})
    assert time.monotonic() - start < 0.5
    gate.set()
    assert notifier.flush(5)


@pytest.mark.parametrize(
    "spec",
    ["ftp://example/x", {"url": "http://x", "format": "teams"}, {"nope": 1}, {"url": "http://x", "extra": 1},
     {"url": "http://x", "timeout": "soon"}, {"url": "http://x", "timeout": 0}, {"url": "http://x", "retries": -1},
     {"url": "http://x", "retries": 1000}, {"url": "http://x", "backoff": float("nan")},
     {"url": "http://x", "headers": {"X-Key": 1}}],
)
def test_bad_webhook_settings_are_configuration_errors(spec: Any) -> None:
    """Bad webhook settings are refused when the notifier is built, with the reason."""
    with pytest.raises(ConfigurationError):
        Webhook.parse(spec)


@pytest.mark.parametrize(("header", "seconds"), [
    (None, 0.0), ("", 0.0), ("3", 3.0), ("100000", 60.0), ("soon", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
])
def test_retry_after_is_read_and_capped(header: str | None, seconds: float) -> None:
    """Retry-After in seconds is honoured up to 60 s; a past date, garbage or nothing asks for no extra wait."""
    from governed_db.approvals.notify import retry_after

    assert retry_after(header) == seconds


def test_retry_after_date_in_the_future_is_honoured() -> None:
    """An HTTP-date Retry-After a few seconds ahead waits about that long (never more than the cap)."""
    import email.utils

    from governed_db.approvals.notify import retry_after

    ahead = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 20 < retry_after(ahead) <= 30


def test_trickling_webhook_receiver_is_cut_at_the_attempt_deadline() -> None:
    """A receiver answering one byte a second: each attempt ends at its total timeout, the send gives up."""
    from test_deadline import StalledServer

    server = StalledServer("trickle")
    try:
        hook = Webhook.parse({"url": server.url("/hooks/x"), "timeout": 0.5, "retries": 1, "backoff": 0.01})
        done = threading.Event()
        outcome: list[bool] = []
        threading.Thread(target=lambda: (outcome.append(hook.send({"a": 1})), done.set()), daemon=True).start()
        assert done.wait(20), "the webhook send is still blocked"
        assert outcome == [False] and server.accepted == 2
    finally:
        server.close()
