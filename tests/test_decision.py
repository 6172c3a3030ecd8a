"""Decision: most restrictive wins, reasons and remedies are carried through."""

from __future__ import annotations

from governed_db import Action, Decision, RuleHit


def test_most_restrictive_action_wins() -> None:
    """combine() picks the most restrictive action and orders hits by severity."""
    hits = [
        RuleHit("a", Action.WARN, "w"),
        RuleHit("b", Action.DENY, "d", "do x"),
        RuleHit("c", Action.REQUIRE_APPROVAL, "r"),
    ]
    d = Decision.combine(hits, environment="production")
    assert d.action is Action.DENY
    assert d.rules == ("b", "c", "a")
    assert d.reason == "b: d" and d.remedy == "do x"
    assert not d.allowed


def test_no_hits_means_allow() -> None:
    """A statement no rule fires on is allowed."""
    d = Decision.combine([], environment="production")
    assert d.action is Action.ALLOW and d.allowed and d.reason == "no rule matched"


def test_limit_takes_the_smallest_row_cap_and_still_runs() -> None:
    """Several limit rules cap at the smallest limit; a limited statement still runs."""
    d = Decision.combine(
        [RuleHit("x", Action.LIMIT, "cap", row_limit=100), RuleHit("y", Action.LIMIT, "cap", row_limit=10)],
        environment="production",
    )
    assert d.action is Action.LIMIT and d.row_limit == 10 and d.allowed


def test_action_compares_as_string_and_orders() -> None:
    """Action values are the documented strings and severities are ordered."""
    assert Action.REQUIRE_APPROVAL == "require_approval"
    assert [a.value for a in sorted(Action, key=lambda a: a.severity)] == [
        "allow", "warn", "limit", "require_approval", "deny",
    ]


def test_to_dict_is_json_ready() -> None:
    """to_dict() exposes action, rules, reason and remedy for machines."""
    import json

    d = Decision.combine([RuleHit("r", Action.DENY, "because", "fix", undecidable=True)], environment="staging")
    data = json.loads(json.dumps(d.to_dict()))
    assert data["action"] == "deny" and data["rules"] == ["r"] and data["undecidable"] is True
