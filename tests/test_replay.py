"""Policy replay: re-evaluating recorded statements under a new policy."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import governed_db
from governed_db import Identity
from governed_db.audit import replay as replay_mod
from governed_db.audit.replay import replay
from governed_db.cli.replay import replay as replay_cmd
from governed_db.errors import GuardrailViolation
from governed_db.identity import acting_as
from governed_db.policy import Policy, RuleContext, default_policy
from governed_db.policy.decision import Action, RuleHit


def _no_agent_deletes(stmt: Any, ctx: RuleContext) -> RuleHit | None:
    if stmt is not None and stmt.operation == "DELETE" and ctx.identity is not None and ctx.identity.kind == "agent":
        return RuleHit("agent-delete", Action.DENY, "agents may not delete")
    return None


def _approve_updates(stmt: Any, ctx: RuleContext) -> RuleHit | None:
    if stmt is not None and stmt.operation == "UPDATE":
        return RuleHit("update-approval", Action.REQUIRE_APPROVAL, "updates need a reviewer")
    return None


def _warn_on_orders(stmt: Any, ctx: RuleContext) -> RuleHit | None:
    if stmt is not None and "orders" in stmt.tables_read + stmt.tables_written:
        return RuleHit("orders-watch", Action.WARN, "orders are watched")
    return None


STRICT = default_policy().with_rules(_no_agent_deletes, _approve_updates, _warn_on_orders)
LAX = Policy(name="lax", rules=())

#: a real policy file: agents may not write in production
AGENT_NO_WRITES = """\
name: agents-read-only
overrides:
  - when: {kind: agent, environment: production}
    rules: {write-statement: deny}
"""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE orders (id INTEGER, total REAL)")
    conn = governed_db.wrap(raw, audit=path, environment="production", identity=Identity("alice"))
    conn.execute("INSERT INTO orders VALUES (1, 9.5)")
    with acting_as(Identity("cleanup-bot", kind="agent")):
        conn.execute("DELETE FROM orders WHERE id = 1")
        conn.execute("SELECT id FROM orders").fetchall()
        with pytest.raises(GuardrailViolation):
            conn.execute("DROP TABLE orders")
    conn.execute("UPDATE orders SET total = 0 WHERE id = 2")
    conn.execute("DELETE FROM orders WHERE id = 3")  # alice is human: still allowed
    return path


def test_stricter_policy_shows_what_it_would_stop(store: Path) -> None:
    """A stricter policy reports statements that ran but would now be refused, need approval, or be warned."""
    result = replay(store, STRICT)
    assert result.statements == result.replayed == 6
    assert result.newly_refused == 1      # the agent's DELETE
    assert result.newly_approval == 1     # alice's UPDATE
    assert result.newly_warned == 3       # INSERT, SELECT and the human DELETE touch orders
    changed = {(c.identity, c.statement.split()[0], c.before, c.after) for c in result.changes}
    assert ("cleanup-bot", "DELETE", "allow", "deny") in changed
    assert ("alice", "UPDATE", "allow", "require_approval") in changed
    agent_delete = next(c for c in result.changes if c.after == "deny")
    assert agent_delete.rules[0] == "agent-delete" and agent_delete.kind == "agent"
    assert result.after["deny"] == 2  # the DROP stays refused


def test_laxer_policy_shows_what_it_would_let_through(store: Path) -> None:
    """A policy without the drop rule reports the previously refused DROP as relaxed."""
    result = replay(store, LAX)
    assert result.relaxed == 1 and result.newly_refused == 0
    (change,) = result.changes
    assert change.before == "deny" and change.after == "allow" and change.statement == "DROP TABLE orders"


def test_yaml_policy_file(store: Path, tmp_path: Path) -> None:
    """A real YAML policy file is loaded with load_policy and replayed per identity kind."""
    policy_file = tmp_path / "agents.yaml"
    policy_file.write_text(AGENT_NO_WRITES)
    result = replay(store, policy_file)
    assert result.policy == "agents-read-only"
    assert [(c.identity, c.before, c.after) for c in result.changes] == [("cleanup-bot", "allow", "deny")]


def test_replay_uses_recorded_environment(store: Path) -> None:
    """The recorded environment is used unless overridden (observe-only environments turn deny into warn)."""
    assert replay(store, STRICT, environment="development").newly_refused == 0


def test_unreplayable_statements_are_counted(tmp_path: Path) -> None:
    """Statements the record holds no parseable text for are counted, not guessed at."""
    path = tmp_path / "a.jsonl"
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=path, environment="production")
    with pytest.raises(GuardrailViolation):
        conn.execute("SELEC nonsense FROM")
    result = replay(path, LAX)
    assert result.statements == 1 and result.not_replayable == 1 and result.replayed == 0


def test_cli_replay(store: Path, tmp_path: Path) -> None:
    """`governed-db policy replay --policy FILE.yaml` prints the summary and the changed statements."""
    policy_file = tmp_path / "agents.yaml"
    policy_file.write_text(AGENT_NO_WRITES)
    out = CliRunner().invoke(replay_cmd, ["--store", str(store), "--policy", str(policy_file), "--format", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["newly_refused"] == 1 and data["replayed"] == 6
    table = CliRunner().invoke(replay_cmd, ["--store", str(store), "--policy", str(policy_file)])
    assert "Would newly refuse" in table.output and "cleanup-bot" in table.output


def test_cli_replay_library_policy(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI hands the --policy path to load_policy unchanged."""
    seen: list[Any] = []

    def fake_load(source: Any) -> Policy:
        seen.append(source)
        return STRICT

    monkeypatch.setattr(replay_mod, "load_policy", fake_load)
    out = CliRunner().invoke(replay_cmd, ["--store", str(store), "--policy", str(tmp_path / "x.yaml"),
                                          "--format", "json"])
    assert out.exit_code == 0, out.output
    assert seen == [tmp_path / "x.yaml"]
    assert json.loads(out.output)["newly_approval"] == 1


def test_cli_replay_invalid_policy_is_bad_input(store: Path, tmp_path: Path) -> None:
    """An invalid policy file exits 2 with the loader's message."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: {no-such-rule: deny}\n")
    out = CliRunner().invoke(replay_cmd, ["--store", str(store), "--policy", str(bad)])
    assert out.exit_code == 2 and "error:" in out.output


def test_cli_replay_bad_policy_is_bad_input(store: Path, tmp_path: Path) -> None:
    """A policy file that does not exist exits 2."""
    out = CliRunner().invoke(replay_cmd, ["--store", str(store), "--policy", str(tmp_path / "missing.yaml")])
    assert out.exit_code == 2 and "error:" in out.output


def test_replay_postgres_record(pg_conn: Any, unique: str, tmp_path: Path) -> None:
    """Statements recorded on PostgreSQL (%s placeholders) replay in the postgres dialect."""
    table = f"audit_replay_{unique}"
    pg_conn.execute(f"CREATE TABLE {table} (id integer)")
    try:
        path = tmp_path / "pg.jsonl"
        conn = governed_db.wrap(pg_conn, audit=path, environment="production",
                                identity=Identity("etl-bot", kind="agent"))
        cur = conn.cursor()
        cur.execute(f"INSERT INTO {table} VALUES (%s)", (1,))
        cur.execute(f"DELETE FROM {table} WHERE id = 1")
        policy_file = tmp_path / "agents.yaml"
        policy_file.write_text(AGENT_NO_WRITES)
        result = replay(path, policy_file)
        assert result.replayed == 2 and result.not_replayable == 0
        assert {c.statement.split()[0] for c in result.changes} == {"INSERT", "DELETE"}
        assert all(c.after == "deny" for c in result.changes)
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {table}")
