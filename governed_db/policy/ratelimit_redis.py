"""Rate and volume limits shared across processes and hosts, counted in Redis (through ``limits``).

A policy chooses shared counting with a ``limit_storage:`` section; its ``limits:`` entries then count in Redis
instead of in process, so a fleet of workers on several hosts shares one budget per identity::

    limit_storage:
      url: redis://127.0.0.1:6379/0     # or url_env: GOVERNED_DB_REDIS_URL
      key_prefix: governed_db           # optional; keys are <prefix>:<policy>:<limit index>:<identity>
      timeout_seconds: 0.5              # connect and socket timeout (a statement never waits longer)

Statements per minute use the ``limits`` moving window (an exact sliding minute, acquired atomically by a Lua
script, so two processes never both take the last slot). Rows per minute use its sliding-window counter, which
takes a cost in one O(1) call; rows are counted after they are read, so they fill the window up to its limit and
the next statement is refused. Unlike the in-process limiter, a refused statement does not take a slot.

When Redis cannot be reached the statement gets the ``rate-limit-unavailable`` rule - ``deny`` in production,
``warn`` in staging and observe-only environments, configurable in ``rules:`` like any rule - so whether an
outage stops work or waives the limit is a policy choice. See ``docs/decisions/0078-shared-limits-in-redis.md``.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from governed_db.policy.ratelimit import RateLimiter

if TYPE_CHECKING:
    from limits import RateLimitItem
    from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

    from governed_db.identity import Identity
    from governed_db.policy.decision import RuleHit
    from governed_db.policy.settings import LimitSpec, PolicySettings

log = logging.getLogger("governed_db.ratelimit")

#: the longest connect/socket timeout a policy may set: a statement must never hang on the limiter
MAX_TIMEOUT_SECONDS = 10.0
_SCHEMES = ("redis://", "rediss://", "unix://", "redis+unix://", "valkey://", "valkeys://")
_KEYS = ("url", "url_env", "key_prefix", "timeout_seconds")


@dataclass(frozen=True, kw_only=True)
class LimitStorage:
    """Where shared limits count: a Redis URL, a key prefix and a bounded timeout."""

    url: str
    key_prefix: str = "governed_db"
    timeout_seconds: float = 0.5

    def __post_init__(self) -> None:
        if not self.url.startswith(_SCHEMES):
            raise ValueError(f"limit_storage url must start with one of {', '.join(_SCHEMES)}")
        t = self.timeout_seconds
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= MAX_TIMEOUT_SECONDS:
            raise ValueError(
                f"limit_storage timeout_seconds must be a number in (0, {MAX_TIMEOUT_SECONDS:g}]"
            )
        if not self.key_prefix or ":" in self.key_prefix:
            raise ValueError("limit_storage key_prefix must be a non-empty string without ':'")

    def redacted_url(self) -> str:
        """The URL without its password, for messages."""
        scheme, sep, rest = self.url.partition("://")
        _creds, at, host = rest.rpartition("@")
        return f"{scheme}{sep}***@{host}" if at else self.url


def parse_limit_storage(value: Any) -> LimitStorage:
    """Validate a policy's ``limit_storage:`` section (a ``ValueError`` says what is wrong)."""
    if not isinstance(value, dict):
        raise ValueError("expected a mapping like {url: redis://127.0.0.1:6379/0}")
    unknown = [k for k in value if k not in _KEYS]
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; valid: {', '.join(_KEYS)}")
    url = value.get("url")
    if "url_env" in value:
        if url is not None:
            raise ValueError("set url or url_env, not both")
        name = value["url_env"]
        url = os.environ.get(str(name))
        if not url:
            raise ValueError(f"url_env: the environment variable {name} is not set")
    if not isinstance(url, str) or not url:
        raise ValueError("limit_storage needs url: (e.g. redis://127.0.0.1:6379/0) or url_env:")
    kwargs: dict[str, Any] = {"url": url}
    if "key_prefix" in value:
        kwargs["key_prefix"] = str(value["key_prefix"])
    if "timeout_seconds" in value:
        kwargs["timeout_seconds"] = value["timeout_seconds"]
    return LimitStorage(**kwargs)


class _Backend:
    """The ``limits`` storage and strategies, created on first use (loading a policy never connects)."""

    def __init__(self, storage: LimitStorage) -> None:
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        t = float(storage.timeout_seconds)
        # no retries: a retry multiplies the timeout, and the policy already says what an outage means
        self.storage = RedisStorage(storage.url, key_prefix=storage.key_prefix, wrap_exceptions=True,
                                    socket_connect_timeout=t, socket_timeout=t,
                                    retry=Retry(NoBackoff(), 0))  # type: ignore[arg-type]  # fmt: skip
        self.moving: MovingWindowRateLimiter = MovingWindowRateLimiter(self.storage)
        self.sliding: SlidingWindowCounterRateLimiter = SlidingWindowCounterRateLimiter(self.storage)


class SharedRateLimiter(RateLimiter):
    """The :class:`~governed_db.ratelimit.RateLimiter` interface, counted in Redis so processes share budgets."""

    def __init__(
        self, limits: tuple[LimitSpec, ...], settings: PolicySettings, storage: LimitStorage, *, scope: str
    ) -> None:
        super().__init__(limits, settings)
        self.storage = storage
        #: keys are namespaced by the policy's name: two policies sharing one Redis do not share budgets
        self.scope = scope.replace(":", "_")
        self._backend: _Backend | None = None
        self._backend_lock = threading.Lock()
        self._items: list[tuple[RateLimitItem | None, RateLimitItem | None]] = []
        from limits import RateLimitItemPerSecond

        for limit in limits:
            secs = max(1, round(limit.window_seconds))
            spm, rpm = limit.statements_per_minute, limit.rows_per_minute
            self._items.append((
                RateLimitItemPerSecond(spm, secs, namespace="stmt") if spm is not None else None,
                RateLimitItemPerSecond(rpm, secs, namespace="rows") if rpm is not None else None,
            ))  # fmt: skip

    def backend(self) -> _Backend:
        with self._backend_lock:
            if self._backend is None:
                self._backend = _Backend(self.storage)
            return self._backend

    def _key(self, i: int, identity: Identity) -> tuple[str, str, str]:
        return (self.scope, str(i), self._who(identity))

    def on_statement(self, identity: Identity, environment: str) -> RuleHit | None:
        hits: list[RuleHit] = []
        with self._lock:
            who = self._who(identity)
            self._last_env[who] = environment
            if len(self._last_env) > 10_000:
                self._last_env.pop(next(iter(self._last_env)))
        for i, limit in enumerate(self.limits):
            if not limit.when.matches(environment, identity, None):
                continue
            stmt_item, rows_item = self._items[i]
            key = self._key(i, identity)
            try:
                backend = self.backend()
                if stmt_item is not None and not backend.moving.hit(stmt_item, *key):
                    hits.append(self._hit("rate-limit-statements", limit, environment, identity,
                                          f"more than {limit.statements_per_minute} statements in the last minute "
                                          f"for {identity.subject} (shared limit)"))  # fmt: skip
                if rows_item is not None:
                    stats = backend.sliding.get_window_stats(rows_item, *key)
                    if stats.remaining <= 0:
                        hits.append(self._hit("rate-limit-rows", limit, environment, identity,
                                              f"{limit.rows_per_minute} rows read in the last minute (limit) by "
                                              f"{identity.subject} (shared limit)"))  # fmt: skip
            except Exception as e:  # StorageError, or redis refusing the URL: either way the count is unknown
                log.warning(
                    "governed_db shared rate limit unavailable at %s: %r", self.storage.redacted_url(), e
                )
                hits.append(self._unavailable(limit, environment, identity, e))
                break
        if not hits:
            return None
        return max(hits, key=lambda h: h.action.severity)

    def _unavailable(
        self, limit: LimitSpec, environment: str, identity: Identity, error: Exception
    ) -> RuleHit:
        from governed_db.policy.decision import Action, RuleHit
        from governed_db.policy.rules import catalog

        spec = catalog()["rate-limit-unavailable"]
        action = self.settings.action_for(spec, environment, identity, None, ())
        if self.settings.observe_only(environment) and action.severity > Action.WARN.severity:
            action = Action.WARN
        cause = type(getattr(error, "storage_error", None) or error).__name__
        reason = f"the shared rate-limit store at {self.storage.redacted_url()} is unreachable ({cause})"
        return RuleHit("rate-limit-unavailable", action, reason, spec.remedy)

    def on_rows(self, identity: Identity, n: int, environment: str | None = None) -> None:
        if n <= 0:
            return
        who = self._who(identity)
        if environment is None:
            environment = self._last_env.get(who, "production")
        for i, limit in enumerate(self.limits):
            rows_item = self._items[i][1]
            if rows_item is None or not limit.when.matches(environment, identity, None):
                continue
            key = self._key(i, identity)
            try:
                sliding = self.backend().sliding
                if not sliding.hit(rows_item, *key, cost=int(n)):
                    # more than fits: fill the window to its limit, which refuses the next statement
                    remaining = sliding.get_window_stats(rows_item, *key).remaining
                    if remaining > 0:
                        sliding.hit(rows_item, *key, cost=remaining)
            except Exception as e:  # the rows are already read; the next statement meets the outage rule
                log.warning("governed_db could not count %d rows in the shared rate limit: %r", n, e)

    def reset(self) -> None:
        """Forget this process's state (the shared counts in Redis expire on their own)."""
        with self._lock:
            self._last_env.clear()


__all__ = ["MAX_TIMEOUT_SECONDS", "LimitStorage", "SharedRateLimiter", "parse_limit_storage"]
