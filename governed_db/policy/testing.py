"""Policy test tables: ``(sql, expected action)`` cases a team keeps next to its policy, run in CI.

Cases file (YAML)::

    defaults: {dialect: postgres, environment: production}
    cases:
      - sql: DELETE FROM orders
        expect: deny
      - name: analysts may read
        sql: SELECT id FROM orders WHERE id = 1
        identity: "agent:report-bot@alice;roles=analyst"
        expect: allow
        rules: []            # optional: exact rule ids expected to fire
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governed_db.config_files import load_yaml, read_config_text
from governed_db.errors import ConfigurationError
from governed_db.identity import Identity
from governed_db.policy import evaluate, load_policy
from governed_db.policy.decision import Action

_ACTIONS = tuple(a.value for a in Action)
_KEYS = ("name", "sql", "expect", "dialect", "environment", "identity", "rules")


@dataclass(frozen=True)
class Case:
    name: str
    sql: str
    expect: str
    dialect: str = "postgres"
    environment: str = "production"
    identity: str | None = None
    rules: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CaseResult:
    case: Case
    actual: str
    rules: tuple[str, ...]

    @property
    def passed(self) -> bool:
        if self.actual != self.case.expect:
            return False
        return self.case.rules is None or set(self.case.rules) == set(self.rules)


def load_cases(path: str | Path) -> list[Case]:
    data = load_yaml(read_config_text(path, "cases file"), f"cases file {str(path)!r}")
    if isinstance(data, list):
        data = {"cases": data}
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise ConfigurationError(f"{path}: expected 'cases:' with a list of {{sql:, expect:}} entries")
    defaults = data.get("defaults") or {}
    out = []
    for i, raw in enumerate(data["cases"]):
        if not isinstance(raw, dict):
            raise ConfigurationError(f"{path}: cases[{i}] must be a mapping with sql: and expect:")
        item: dict[str, Any] = {**defaults, **raw}
        unknown = set(item) - set(_KEYS)
        if unknown:
            raise ConfigurationError(f"{path}: cases[{i}] has unknown key(s) {sorted(unknown)}; valid: {_KEYS}")
        if not isinstance(item.get("sql"), str) or str(item.get("expect", "")).lower() not in _ACTIONS:
            raise ConfigurationError(f"{path}: cases[{i}] needs sql: (text) and expect: (one of {', '.join(_ACTIONS)})")
        rules = item.get("rules")
        out.append(Case(
            name=str(item.get("name") or item["sql"].strip().splitlines()[0][:60]),
            sql=item["sql"], expect=str(item["expect"]).lower(),
            dialect=str(item.get("dialect", "postgres")), environment=str(item.get("environment", "production")),
            identity=item.get("identity"), rules=tuple(rules) if rules is not None else None,
        ))  # fmt: skip
    return out


def run_cases(policy: Any, cases: list[Case]) -> list[CaseResult]:
    pol = load_policy(policy)  # raises ConfigurationError (PolicyFileError) on an invalid policy
    results = []
    for c in cases:
        ident = Identity.parse(c.identity) if c.identity else None
        d = evaluate(c.sql, dialect=c.dialect, environment=c.environment, identity=ident, policy=pol)
        results.append(CaseResult(c, d.action.value, d.rules))
    return results


__all__ = ["Case", "CaseResult", "load_cases", "run_cases"]
