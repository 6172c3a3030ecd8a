"""In-process rate and volume limits per identity (sliding one-minute windows).

The pipeline calls ``on_statement(identity, environment)`` for every
statement (before it runs; refused attempts count too - an agent hammering
refusals is still hammering) and ``on_rows(identity, n, environment)`` when a result is
consumed. A breach is a :class:`~governed_db.policy.decision.RuleHit` like any other
(``rate-limit-statements`` / ``rate-limit-rows``), so it is recorded and
enforced by the same pipeline. Limits are never cached with decisions.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from governed_db.policy.decision import Action, RuleHit

if TYPE_CHECKING:
    from governed_db.identity import Identity
    from governed_db.policy.settings import LimitSpec, PolicySettings

#: identities tracked at most (least recently seen are forgotten first)
MAX_TRACKED = 10_000


class _Window:
    __slots__ = ("events", "total")

    def __init__(self) -> None:
        self.events: deque[tuple[float, int]] = deque()
        self.total = 0

    def prune(self, now: float, span: float) -> None:
        ev = self.events
        while ev and now - ev[0][0] >= span:
            self.total -= ev.popleft()[1]

    def add(self, now: float, n: int) -> None:
        self.events.append((now, n))
        self.total += n


class RateLimiter:
    """Counts statements and rows per (limit, identity) and reports breaches."""

    def __init__(
        self, limits: tuple[LimitSpec, ...], settings: PolicySettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._statements: OrderedDict[tuple[int, str], _Window] = OrderedDict()
        self._rows: OrderedDict[tuple[int, str], _Window] = OrderedDict()
        self._last_env: dict[str, str] = {}

    @staticmethod
    def _who(identity: Identity) -> str:
        return f"{identity.kind}:{identity.subject}@{identity.on_behalf_of or ''}"

    def _window(self, table: OrderedDict[tuple[int, str], _Window], key: tuple[int, str]) -> _Window:
        w = table.get(key)
        if w is None:
            w = table[key] = _Window()
            if len(table) > MAX_TRACKED:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        return w

    def on_statement(self, identity: Identity, environment: str) -> RuleHit | None:
        now = self.clock()
        who = self._who(identity)
        hits: list[RuleHit] = []
        with self._lock:
            self._last_env[who] = environment
            if len(self._last_env) > MAX_TRACKED:
                self._last_env.pop(next(iter(self._last_env)))
            for i, limit in enumerate(self.limits):
                if not limit.when.matches(environment, identity, None):
                    continue
                if limit.statements_per_minute is not None:
                    w = self._window(self._statements, (i, who))
                    w.prune(now, limit.window_seconds)
                    w.add(now, 1)
                    if w.total > limit.statements_per_minute:
                        hits.append(self._hit("rate-limit-statements", limit, environment, identity,
                                              f"{w.total} statements in the last minute (limit "
                                              f"{limit.statements_per_minute}) for {identity.subject}"))  # fmt: skip
                if limit.rows_per_minute is not None:
                    w = self._window(self._rows, (i, who))
                    w.prune(now, limit.window_seconds)
                    if w.total >= limit.rows_per_minute:
                        hits.append(self._hit("rate-limit-rows", limit, environment, identity,
                                              f"{w.total} rows read in the last minute (limit "
                                              f"{limit.rows_per_minute}) by {identity.subject}"))  # fmt: skip
        if not hits:
            return None
        return max(hits, key=lambda h: h.action.severity)

    def _hit(self, rule_id: str, limit: LimitSpec, environment: str, identity: Identity, reason: str) -> RuleHit:
        from governed_db.policy.rules import catalog

        spec = catalog()[rule_id]  # one snapshot of the catalog per breach, for both action and remedy
        action = limit.action or self.settings.action_for(spec, environment, identity, None, ())
        if self.settings.observe_only(environment) and action.severity > Action.WARN.severity:
            action = Action.WARN
        return RuleHit(rule_id, action, reason, spec.remedy)

    def on_rows(self, identity: Identity, n: int, environment: str | None = None) -> None:
        """Count ``n`` rows read by ``identity`` in ``environment``.

        Pass the environment the rows were read in: without it they count where this identity last ran a
        statement, which misses a limit scoped to one environment when the identity is active in two.
        """
        if n <= 0:
            return
        now = self.clock()
        who = self._who(identity)
        with self._lock:
            if environment is None:
                environment = self._last_env.get(who, "production")
            for i, limit in enumerate(self.limits):
                if limit.rows_per_minute is None or not limit.when.matches(environment, identity, None):
                    continue
                w = self._window(self._rows, (i, who))
                w.prune(now, limit.window_seconds)
                w.add(now, int(n))

    def reset(self) -> None:
        with self._lock:
            self._statements.clear()
            self._rows.clear()
            self._last_env.clear()


__all__ = ["MAX_TRACKED", "RateLimiter"]
