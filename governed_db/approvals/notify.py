"""Telling people about approval requests: callable hooks and webhooks, off the statement path.

Events go onto a bounded queue served by one daemon thread per
:class:`Notifier`; ``emit`` never blocks and never raises, so a slow or broken
receiver cannot delay or fail a statement. A full queue drops the event (with a
warning) rather than grow without bound. Webhooks are plain HTTP POSTs of JSON
(``format="json"``: the event itself; ``format="slack"``: a Slack-compatible
``{"text": ..., "blocks": [...]}`` message). Each attempt has one total
deadline (``timeout``: connect to last byte, so a receiver trickling its answer
cannot hold the thread); network errors and 5xx/429 answers are retried with
exponential backoff, or after the receiver's ``Retry-After`` (capped). The loop
is ours, not tenacity's or urllib3's Retry: see decision 0057.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import math
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from governed_db.deadline import Deadline, deadline_handlers
from governed_db.errors import ConfigurationError

log = logging.getLogger("governed_db.approvals")

#: a receiver asking for a longer pause than this holds up every later notification: it gets this much
MAX_RETRY_AFTER = 60.0
MAX_RETRIES = 20
#: a webhook's answer is not used; read at most this much of it
MAX_ANSWER_BYTES = 1 << 16

Hook = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Webhook:
    url: str
    format: str = "json"
    timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: Any) -> Webhook:
        if isinstance(spec, Webhook):
            return spec
        if isinstance(spec, str):
            spec = {"url": spec}
        if not isinstance(spec, Mapping) or not isinstance(spec.get("url"), str):
            raise ConfigurationError(f"a webhook is a URL or a mapping with 'url', got {spec!r}")
        if not spec["url"].startswith(("http://", "https://")):
            raise ConfigurationError(f"webhook URL must be http(s)://..., got {spec['url']!r}")
        fmt = spec.get("format", "json")
        if fmt not in ("json", "slack"):
            raise ConfigurationError(f"webhook format must be 'json' or 'slack', got {fmt!r}")
        unknown = set(spec) - {"url", "format", "timeout", "retries", "backoff", "headers"}
        if unknown:
            raise ConfigurationError(f"unknown webhook setting(s) {sorted(unknown)}")
        timeout, backoff = spec.get("timeout", 5.0), spec.get("backoff", 0.5)
        retries, headers = spec.get("retries", 3), spec.get("headers", {})
        if not _number(timeout) or timeout <= 0:
            raise ConfigurationError(f"webhook timeout must be a positive number of seconds, got {timeout!r}")
        if not _number(backoff) or backoff < 0:
            raise ConfigurationError(f"webhook backoff must be a number of seconds >= 0, got {backoff!r}")
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= MAX_RETRIES:
            raise ConfigurationError(f"webhook retries must be an integer from 0 to {MAX_RETRIES}, got {retries!r}")
        if not isinstance(headers, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in headers.items()):
            raise ConfigurationError("webhook headers must be a mapping of header names to string values")
        return cls(spec["url"], fmt, float(timeout), retries, float(backoff), dict(headers))

    def body(self, event: Mapping[str, Any]) -> bytes:
        doc = slack_message(event) if self.format == "slack" else dict(event)
        return json.dumps(doc, default=str).encode("utf-8")

    def send(self, event: Mapping[str, Any]) -> bool:
        """POST once per attempt until one succeeds; False when every attempt failed."""
        data = self.body(event)
        headers = {"Content-Type": "application/json", "User-Agent": "governed-db", **self.headers}
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            wait = self.backoff * (2**attempt)
            with Deadline(self.timeout).running() as deadline:
                opener = urllib.request.build_opener(*deadline_handlers(deadline))
                try:
                    with opener.open(req, timeout=self.timeout) as resp:
                        resp.read(MAX_ANSWER_BYTES)
                        if 200 <= resp.status < 300 and not deadline.expired:
                            return True
                except urllib.error.HTTPError as e:
                    if e.code < 500 and e.code != 429:  # the receiver rejects the message: retrying won't help
                        log.warning("approval webhook %s refused the event (HTTP %s)", _host(self.url), e.code)
                        return False
                    wait = max(wait, retry_after(e.headers.get("Retry-After")))
                except (OSError, ValueError, http.client.HTTPException) as e:
                    log.debug("approval webhook %s attempt %d failed: %r", _host(self.url), attempt + 1, e)
            if attempt < self.retries:
                time.sleep(wait)
        log.warning("approval webhook %s unreachable after %d attempts", _host(self.url), self.retries + 1)
        return False


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def retry_after(value: str | None) -> float:
    """Seconds a 429/503 answer's ``Retry-After`` asks for (delta-seconds or an HTTP date), capped; 0 if none."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return 0.0
        if when is None:
            return 0.0
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _host(url: str) -> str:
    # never log the path: chat webhooks carry their secret in it
    from urllib.parse import urlsplit

    return urlsplit(url).netloc


def slack_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message (also understood by Mattermost and Rocket.Chat)."""
    rid = event.get("request_id")
    state = event.get("state")
    head = f"*governed_db approval {rid}* — {event.get('transition')} ({state})"
    who = event.get("requester")
    if event.get("on_behalf_of"):
        who = f"{who} on behalf of {event['on_behalf_of']}"
    lines = [
        head,
        f"*Requester:* {who} · *Environment:* {event.get('environment')}",
        f"*Rules:* {', '.join(event.get('rules') or []) or '-'}",
        f"*Reason:* {event.get('reason') or '-'}",
        f"```{event.get('statement')}```",
    ]
    if event.get("reviewer"):
        lines.append(f"*Reviewer:* {event['reviewer']}" + (f" — {event['comment']}" if event.get("comment") else ""))
    if state == "pending" and event.get("approve_command"):
        lines.append(f"Approve with: `{event['approve_command']}`")
    text = "\n".join(lines)
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if state == "pending" and rid:
        # clicked in Slack, these post to `governed-db approvals serve` at /slack/actions (signature-checked)
        blocks.append({"type": "actions", "block_id": f"governed_db_review_{rid}", "elements": [
            {"type": "button", "action_id": "governed_db_approve", "value": str(rid), "style": "primary",
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": "governed_db_deny", "value": str(rid), "style": "danger",
             "text": {"type": "plain_text", "text": "Deny"}},
        ]})  # fmt: skip
    return {"text": text, "blocks": blocks}


_STOP = object()


class Notifier:
    """Runs hooks and webhooks for approval events in one background daemon thread."""

    def __init__(self, hooks: tuple[Hook, ...] = (), webhooks: tuple[Any, ...] = (), *, max_queue: int = 1000):
        self.hooks = tuple(hooks)
        self.webhooks = tuple(Webhook.parse(w) for w in webhooks)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self.hooks or self.webhooks)

    def emit(self, event: dict[str, Any]) -> None:
        """Queue ``event``; never blocks, never raises."""
        if not self.active:
            return
        try:
            self._start()
            self._queue.put_nowait(event)
        except queue.Full:
            log.warning("approval notification queue full; dropped event for %s", event.get("request_id"))
        except Exception as e:
            log.warning("approval notification could not be queued: %r", e)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event has been handled (for tests and orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="governed_db-approvals-notify", daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            event = self._queue.get()
            try:
                if event is _STOP:
                    return
                self._deliver(event)
            finally:
                self._queue.task_done()

    def _deliver(self, event: dict[str, Any]) -> None:
        for hook in self.hooks:
            try:
                hook(dict(event))
            except Exception as e:
                log.warning("approval notify hook %r failed: %r", getattr(hook, "__name__", hook), e)
        for webhook in self.webhooks:
            try:
                webhook.send(event)
            except Exception as e:
                log.warning("approval webhook %s failed: %r", _host(webhook.url), e)
