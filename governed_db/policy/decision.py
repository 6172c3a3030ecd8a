"""What the guardrails decided about one statement.

A :class:`Decision` is a plain, immutable value: the action, the rules that
fired and why, and what to do next. It is produced by a policy (see
:mod:`governed_db.policy`) and consumed by the execution pipeline, the
activity record and the error raised on refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Action(str, Enum):
    """What happens to a statement. Ordered from least to most restrictive."""

    ALLOW = "allow"
    WARN = "warn"
    LIMIT = "limit"
    REQUIRE_APPROVAL = "require_approval"
    DENY = "deny"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def runs(self) -> bool:
        """True when a statement with this action reaches the database as is."""
        return self in (Action.ALLOW, Action.WARN, Action.LIMIT)

    def __str__(self) -> str:
        return self.value


_SEVERITY = {a: i for i, a in enumerate(Action)}


@dataclass(frozen=True, slots=True)
class RuleHit:
    """One rule that fired on a statement."""

    rule_id: str
    action: Action
    reason: str
    remedy: str | None = None
    #: Row cap requested by a ``limit`` rule.
    row_limit: int | None = None
    #: True when static analysis could not decide (e.g. ``WHERE x IS NULL OR x IS NOT NULL``).
    undecidable: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of evaluating one statement against a policy.

    ``action`` is the most restrictive action among the rules that fired
    (``allow`` when none did). ``rules`` lists the ids of the rules that fired,
    most restrictive first.
    """

    action: Action
    hits: tuple[RuleHit, ...] = ()
    environment: str = "production"
    dialect: str | None = None
    policy_name: str | None = None
    row_limit: int | None = None
    #: Free-form facts for the record (e.g. rate-limit counters); never parameters.
    details: tuple[tuple[str, str], ...] = field(default=())

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(h.rule_id for h in self.hits)

    @property
    def reason(self) -> str:
        blocking = [h for h in self.hits if h.action == self.action] or list(self.hits)
        if not blocking:
            return "no rule matched"
        return "; ".join(f"{h.rule_id}: {h.reason}" for h in blocking)

    @property
    def remedy(self) -> str | None:
        for h in self.hits:
            if h.action == self.action and h.remedy:
                return h.remedy
        return None

    @property
    def allowed(self) -> bool:
        return self.action.runs

    @property
    def undecidable(self) -> bool:
        return any(h.undecidable for h in self.hits)

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action.value,
            "rules": list(self.rules),
            "reason": self.reason,
            "remedy": self.remedy,
            "environment": self.environment,
            "dialect": self.dialect,
            "row_limit": self.row_limit,
            "undecidable": self.undecidable,
            "hits": [
                {
                    "rule": h.rule_id,
                    "action": h.action.value,
                    "reason": h.reason,
                    "remedy": h.remedy,
                    "undecidable": h.undecidable,
                }
                for h in self.hits
            ],
        }

    @classmethod
    def combine(
        cls,
        hits: list[RuleHit] | tuple[RuleHit, ...],
        *,
        environment: str,
        dialect: str | None = None,
        policy_name: str | None = None,
        details: tuple[tuple[str, str], ...] = (),
    ) -> Decision:
        """Most restrictive wins; hits are kept most restrictive first."""
        ordered = tuple(sorted(hits, key=lambda h: -h.action.severity))
        action = ordered[0].action if ordered else Action.ALLOW
        limits = [h.row_limit for h in ordered if h.row_limit is not None]
        return cls(
            action=action,
            hits=ordered,
            environment=environment,
            dialect=dialect,
            policy_name=policy_name,
            row_limit=min(limits) if limits else None,
            details=details,
        )


ALLOW_ALL = Decision(Action.ALLOW)

__all__ = ["ALLOW_ALL", "Action", "Decision", "RuleHit"]
