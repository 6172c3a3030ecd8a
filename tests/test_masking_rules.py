"""Masking's refusals are catalog rules: listed with the others, settable per scope in a policy file, linted,
and replayed from the findings recorded with each statement."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import Identity
from governed_db.audit.replay import replay
from governed_db.errors import ApprovalRequired, GuardrailViolation
from governed_db.policy.file import check_policy_file
from governed_db.policy.rules import catalog
from governed_db.policy.rules.masking import MASKING_RULES

AGENT = Identity("bot", kind="agent")
ANALYST = Identity("ana", kind="human", roles=("analyst",))

#: analysts may sort on masked columns in production (a reviewed exception); everyone else is refused
SCOPED = """\
name: analysts-may-sort
overrides:
  - when: {roles: [analyst]}
    rules: {masked-column-predicate: warn}
"""


def _db() -> sqlite3.Connection:
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE customers (id int primary key, email text, city text)")
    raw.execute("INSERT INTO customers VALUES (1, 'alice@example.com', 'Paris'), (2, 'bob@example.org', 'Lyon')")
    raw.execute("CREATE TABLE scratch (id int, note text)")
    raw.commit()
    return raw


def test_masking_rules_are_in_the_catalog() -> None:
    """The masking rules are catalog entries of the masking family, denying by default."""
    specs = catalog()
    for rule_id in MASKING_RULES:
        assert specs[rule_id].family == "masking"
        assert specs[rule_id].default_action("production").value == "deny"
        assert specs[rule_id].remedy


def test_policy_scope_sets_the_predicate_rule(tmp_path: Path) -> None:
    """A policy override lets analysts sort on a masked column (warned, still masked); an agent is refused."""
    path = tmp_path / "policy.yaml"
    path.write_text(SCOPED)
    raw = _db()
    analyst = governed_db.wrap(raw, identity=ANALYST, policy=path, environment="production", audit=False)
    rows = analyst.execute("SELECT id, email FROM customers ORDER BY email").fetchall()
    assert rows == [(1, "a***@example.com"), (2, "b***@example.org")]
    agent = governed_db.wrap(raw, identity=AGENT, policy=path, environment="production", audit=False)
    with pytest.raises(GuardrailViolation, match="masked-column-predicate"):
        agent.execute("SELECT id FROM customers ORDER BY email")


def test_policy_can_send_copies_for_approval(tmp_path: Path) -> None:
    """``masked-column-copy: require_approval`` turns the refusal of a copy into a request for approval."""
    path = tmp_path / "policy.yaml"
    path.write_text("rules:\n  masked-column-copy: require_approval\n")
    conn = governed_db.wrap(_db(), identity=AGENT, policy=path, environment="production", audit=False)
    with pytest.raises(ApprovalRequired):
        conn.execute("INSERT INTO scratch SELECT id, email FROM customers")


def test_policy_lint_knows_the_masking_rules(tmp_path: Path) -> None:
    """Linting accepts the masking rules' ids and actions and reports a bad action for one."""
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  masked-column-predicate: {production: deny, staging: warn}\n  masked-value-write: deny\n")
    _, problems = check_policy_file(good)
    assert problems == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  masked-column-copy: sometimes\n")
    _, problems = check_policy_file(bad)
    assert problems and "masked-column-copy" in " ".join(f"{p.key} {p.message}" for p in problems)


def test_replay_applies_the_new_action_to_recorded_masking_findings(tmp_path: Path) -> None:
    """A refusal recorded by masked-column-predicate replays as relaxed under a policy that allows it."""
    store = tmp_path / "audit.jsonl"
    conn = governed_db.wrap(_db(), identity=AGENT, audit=store, environment="production")
    with pytest.raises(GuardrailViolation):
        conn.execute("SELECT id FROM customers WHERE email LIKE 'a%'")
    conn.execute("SELECT id, city FROM customers").fetchall()
    conn.close()
    allow = tmp_path / "allow.yaml"
    allow.write_text("rules:\n  masked-column-predicate: allow\n")
    relaxed = replay(store, allow)
    assert relaxed.relaxed == 1 and relaxed.newly_refused == 0
    same = tmp_path / "same.yaml"
    same.write_text("rules:\n  masked-column-predicate: deny\n")
    kept = replay(store, same)
    assert kept.relaxed == 0 and kept.changes == []
    approval = tmp_path / "approval.yaml"
    approval.write_text("rules:\n  masked-column-predicate: require_approval\n")
    changed: Any = replay(store, approval)
    assert [c.after for c in changed.changes] == ["require_approval"]
    assert "masked-column-predicate" in changed.changes[0].rules


def test_every_statement_of_a_multi_statement_text_is_checked() -> None:
    """Where multiple-statements only warns, a masked use in the second statement is still refused."""
    conn = governed_db.wrap(
        _db(), identity=AGENT, environment="production", audit=False,
        policy={"rules": {"multiple-statements": "warn"}},
    )  # fmt: skip
    with pytest.raises(GuardrailViolation, match="masked-column-predicate"):
        conn.execute("SELECT 1; SELECT count(*) FROM (SELECT email FROM customers INTERSECT SELECT 'x') q")


def test_refusal_names_the_masked_column_not_its_neighbours() -> None:
    """A WHERE mixing a plain key and a masked column is refused naming only the masked one."""
    import sqlite3

    import governed_db

    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE c (id INTEGER PRIMARY KEY, ssn TEXT)")
    raw.executemany("INSERT INTO c VALUES (?, ?)", [(i, f"536-22-87{i:02d}") for i in range(20)])
    conn = governed_db.wrap(raw, identity=governed_db.Identity("a", kind="agent"), environment="production",
                            audit=False)
    try:
        conn.execute("SELECT id FROM c WHERE id = 1 AND ssn > '5'")
    except governed_db.GuardrailViolation as refused:
        assert "masked column(s) c.ssn are used in WHERE" in str(refused)
    else:
        raise AssertionError("a predicate on a masked column ran")
