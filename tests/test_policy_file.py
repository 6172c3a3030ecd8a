"""Policy files: valid YAML becomes a policy; every problem names file, line and key; never allow-all."""

from __future__ import annotations

from pathlib import Path

import pytest

from governed_db.errors import ConfigurationError
from governed_db.identity import Identity
from governed_db.policy import evaluate, load_policy
from governed_db.policy.decision import Action
from governed_db.policy.file import PolicyFileError, check_policy_file

GOOD = """\
name: acme
environments:
  qa: staging
  sandbox: observe
rules:
  drop: require_approval
  ddl: {production: deny, staging: warn}
  table-deny: {tables: [payroll]}
overrides:
  - when: {kind: agent, environment: production}
    rules: {write-statement: require_approval}
identities:
  require_verified: [production]
limits:
  - when: {kind: agent}
    statements_per_minute: 60
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return p


def test_valid_file(tmp_path: Path) -> None:
    """A valid file sets actions per environment, environment classes and a limiter."""
    pol = load_policy(_write(tmp_path, GOOD))
    assert pol.name == "acme" and pol.limiter is not None
    verified = Identity("ci", kind="service", verified=True)
    assert evaluate("DROP TABLE t", dialect="postgres", policy=pol, identity=verified).action is Action.REQUIRE_APPROVAL
    assert evaluate("SELECT 1", dialect="postgres", policy=pol).rules == ("identity-unverified",)
    assert evaluate("CREATE TABLE x (a int)", dialect="postgres", environment="qa", policy=pol).action is Action.WARN
    assert evaluate("DROP TABLE t", dialect="postgres", environment="sandbox", policy=pol).action is Action.WARN
    assert evaluate("SELECT * FROM payroll", dialect="postgres", environment="qa", policy=pol).action is Action.DENY


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("rules:\n  dorp: deny\n", 2, "rules.dorp", "did you mean 'drop'"),
        ("rules:\n  drop: maybe\n", 2, "rules.drop", "not an action"),
        ("rules:\n  table-deny:\n    tabels: [x]\n", 3, "rules.table-deny.tabels", "did you mean 'tables'"),
        ("rules:\n  statement-size: {max_chars: -5}\n", 2, "rules.statement-size.max_chars", "positive integer"),
        ("overides: []\n", 1, "overides", "did you mean 'overrides'"),
        ("overrides:\n  - when: {kind: robot}\n    rules: {drop: warn}\n", 2, "overrides[0].when.kind", "identity kind"),
        ("limits:\n  - when: {kind: agent}\n", 2, "limits[0]", "statements_per_minute"),
        ("limits:\n  - when: {tables: [t]}\n    statements_per_minute: 5\n", 2, "limits[0].when", "per identity"),
        ("rules:\n  drop: deny\n  drop: allow\n", 3, "drop", "duplicate key"),
        ("rules: [drop]\n", 1, "rules", "mapping"),
        ("rules:\n  drop: deny\n bad indent: [\n", 3, "<yaml>", "not valid YAML"),
        ("", 1, "<file>", "empty"),
        ("approvals:\n  quorum: 0\n", 2, "approvals.quorum", "positive integer"),
        ("approvals:\n  qourum: 2\n", 2, "approvals.qourum", "did you mean 'quorum'"),
    ],
)
def test_problems_report_file_line_key(tmp_path: Path, text: str, line: int, key: str, words: str) -> None:
    """Each problem names the file, the line and the offending key."""
    path = _write(tmp_path, text)
    _, problems = check_policy_file(path)
    assert problems, "an invalid policy must be reported"
    p = problems[0]
    assert (p.file, p.line, p.key) == (str(path), line, key), p
    assert words in p.message
    with pytest.raises(PolicyFileError) as err:
        load_policy(path)
    assert str(path) in str(err.value) and isinstance(err.value, ConfigurationError)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    """A policy path that does not exist is a configuration error, not the default policy."""
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_policy(tmp_path / "nope.yaml")


def test_file_reloaded_when_changed(tmp_path: Path) -> None:
    """load_policy re-reads a file after it changes, and caches it otherwise."""
    path = _write(tmp_path, "rules:\n  drop: warn\n")
    first = load_policy(path)
    assert load_policy(path) is first
    path.write_text("rules:\n  drop: require_approval\n  truncate: warn\n")
    assert evaluate("DROP TABLE t", dialect="sqlite", policy=path).action is Action.REQUIRE_APPROVAL


def friday_rule(stmt, ctx):  # type: ignore[no-untyped-def]
    """A custom rule referenced from a policy file by name."""
    from governed_db.policy.decision import RuleHit

    if stmt is not None and "friday" in stmt.tables:
        return RuleHit("no-friday", Action.DENY, "not on fridays", "wait for monday")
    return None


def test_python_rules_by_name(tmp_path: Path) -> None:
    """python_rules imports rule callables by 'module:function'; a bad reference is a located problem."""
    pol = load_policy(_write(tmp_path, "python_rules: ['tests.test_policy_file:friday_rule']\n"))
    assert evaluate("SELECT * FROM friday", dialect="sqlite", policy=pol).rules == ("no-friday",)
    assert evaluate("DROP TABLE t", dialect="sqlite", policy=pol).rules == ("drop",)  # the catalog still runs
    _, problems = check_policy_file(_write(tmp_path, "name: x\npython_rules: [no.such.module:f]\n"))
    assert problems[0].line == 2 and problems[0].key == "python_rules[0]" and "cannot import" in problems[0].message


def test_approvals_section_reaches_the_approvals_service(tmp_path: Path) -> None:
    """approvals: review settings are kept on the policy where the approvals service reads them."""
    from governed_db.approvals import resolve_config

    path = _write(tmp_path, "approvals:\n  quorum: 2\n  reviewer_roles: [dba]\n  reason_required: true\n")
    pol = load_policy(path)
    assert pol.extra["approvals"] == {"quorum": 2, "reviewer_roles": ("dba",), "reason_required": True}
    config = resolve_config(None, pol)
    assert config.quorum == 2 and tuple(config.reviewer_roles) == ("dba",)


def test_registered_section(tmp_path: Path) -> None:
    """Other modules register top-level sections; their problems are located like any other."""
    from governed_db.policy import file as policy_file

    def parse(value: object) -> dict[str, object]:
        if not isinstance(value, dict):
            raise ValueError("expected a mapping")
        return dict(value)

    policy_file.register_section("test-extension", parse)
    try:
        pol = load_policy(_write(tmp_path, "test-extension: {a: 1}\n"))
        assert pol.extra["test-extension"] == {"a": 1}
        _, problems = check_policy_file(_write(tmp_path, "name: x\ntest-extension: [1]\n"))
        assert (problems[0].line, problems[0].key, problems[0].message) == (2, "test-extension", "expected a mapping")
    finally:
        policy_file._SECTIONS.pop("test-extension", None)
