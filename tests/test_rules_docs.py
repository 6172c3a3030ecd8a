"""The rule reference and the policy guide are tested: every rule documented, every example valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from governed_db.policy.file import policy_from_mapping
from governed_db.policy.rules import catalog
from governed_db.policy.testing import load_cases, run_cases

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)


def test_every_catalog_rule_has_a_reference_entry() -> None:
    """A rule in the catalog without a '### `id`' entry in docs/reference/rules.md fails the suite."""
    import governed_db.masking  # noqa: F401  - modules that register rules are loaded first

    text = (DOCS / "reference" / "rules.md").read_text()
    documented = set(re.findall(r"^### `([a-z0-9-]+)`$", text, flags=re.MULTILINE))
    missing = sorted(set(catalog()) - documented)
    assert not missing, f"document these rules in docs/reference/rules.md: {missing}"


def test_reference_lists_no_unknown_rules() -> None:
    """Every entry in the reference is a rule that exists (no stale ids)."""
    import governed_db.masking  # noqa: F401

    text = (DOCS / "reference" / "rules.md").read_text()
    documented = set(re.findall(r"^### `([a-z0-9-]+)`$", text, flags=re.MULTILINE))
    assert documented <= set(catalog())


def test_policy_guide_examples_are_valid_and_pass(tmp_path: Path) -> None:
    """The policy file examples in docs/policy.md load; its cases table passes against the main example."""
    blocks = _yaml_blocks((DOCS / "policy.md").read_text())
    policies = [yaml.safe_load(b) for b in blocks if "cases:" not in b and "python_rules" not in b]
    assert len(policies) >= 2
    built = [policy_from_mapping(p, source_name="docs/policy.md") for p in policies]
    cases_file = tmp_path / "cases.yaml"
    cases_file.write_text(next(b for b in blocks if "cases:" in b))
    results = run_cases(built[0], load_cases(cases_file))
    assert results and all(r.passed for r in results), [(r.case.name, r.actual, r.rules) for r in results]
