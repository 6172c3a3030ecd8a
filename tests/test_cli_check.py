"""``governed-db check`` and ``governed-db policy lint/test``: output, JSON and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from governed_db.cli import main


def _run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), input=input)
    return result.exit_code, result.output


def test_check_refusal_exits_1_with_rule_and_remedy() -> None:
    """A refused statement prints its rule and next step and exits 1."""
    code, out = _run("check", "DELETE FROM orders")
    assert code == 1
    assert "DENY" in out and "unbounded-write" in out and "WHERE" in out


def test_check_json_and_stdin() -> None:
    """--format json emits the decision; '-' reads SQL from stdin; allowed exits 0."""
    code, out = _run("check", "--format", "json", "--dialect", "mysql", "-", input="SHOW VARIABLES LIKE 'sql_mode'")
    assert code == 0
    data = json.loads(out)
    assert data["action"] == "allow" and data["dialect"] == "mysql" and data["environment"] == "production"


def test_check_environment_identity_and_policy(tmp_path: Path) -> None:
    """--environment, --identity and --policy feed the decision."""
    policy = tmp_path / "p.yaml"
    policy.write_text("overrides:\n  - when: {kind: agent}\n    rules: {write-statement: require_approval}\n")
    code, out = _run("check", "--format", "json", "-i", "agent:bot@alice", "-p", str(policy),
                     "UPDATE t SET a = 1 WHERE id = 2")  # fmt: skip
    assert code == 1 and json.loads(out)["rules"] == ["write-statement"]
    code, out = _run("check", "--format", "json", "-e", "development", "DROP TABLE t")
    assert code == 0 and json.loads(out)["action"] == "warn"


def test_check_bad_input_exits_2(tmp_path: Path) -> None:
    """An invalid policy, identity or dialect is bad input (exit 2), never a silent allow."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  dorp: deny\n")
    code, out = _run("check", "-p", str(bad), "SELECT 1")
    assert code == 2 and "bad.yaml:2" in out and "rules.dorp" in out
    code, _ = _run("check", "-i", "robot:x", "SELECT 1")
    assert code == 2
    code, out = _run("check", "-d", "postgress", "SELECT 1")
    assert code == 2 and "unknown --dialect 'postgress'" in out
    assert _run("check", "-d", "mariadb", "SELECT 1")[0] == 0


def test_policy_lint(tmp_path: Path) -> None:
    """lint exits 0 on a valid file, 1 listing every problem, 2 when the file is missing."""
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  drop: require_approval\n")
    assert _run("policy", "lint", str(good))[0] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  drop: maybe\n  tabel-deny: {}\n")
    code, out = _run("policy", "lint", str(bad))
    assert code == 1 and "bad.yaml:2: rules.drop" in out and "bad.yaml:3: rules.tabel-deny" in out
    code, out = _run("policy", "lint", "--format", "json", str(bad))
    assert code == 1 and len(json.loads(out)["problems"]) == 2
    assert _run("policy", "lint", str(tmp_path / "missing.yaml"))[0] == 2


def test_policy_test_cases(tmp_path: Path) -> None:
    """policy test runs (sql, expected action) cases and exits 1 when one fails."""
    policy = tmp_path / "p.yaml"
    policy.write_text("rules:\n  drop: require_approval\n")
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "defaults: {dialect: postgres}\n"
        "cases:\n"
        "  - {sql: DROP TABLE t, expect: require_approval, rules: [drop]}\n"
        "  - {sql: SELECT 1, expect: allow}\n"
    )
    code, out = _run("policy", "test", "--format", "json", str(policy), str(cases))
    assert code == 0 and json.loads(out)["passed"] == 2
    cases.write_text("cases:\n  - {sql: DELETE FROM t, expect: allow}\n")
    code, out = _run("policy", "test", str(policy), str(cases))
    assert code == 1 and "FAIL" in out
    cases.write_text("cases:\n  - {sql: SELECT 1}\n")
    assert _run("policy", "test", str(policy), str(cases))[0] == 2
