"""Configuration files have size, depth and alias limits: hostile files are clear errors, never RecursionError."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import governed_db
from governed_db.config_files import MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, load_json, load_yaml
from governed_db.errors import ConfigurationError
from governed_db.masking.catalog import Catalog
from governed_db.masking.config import load_config
from governed_db.policy import load_policy
from governed_db.policy.testing import load_cases

DEEP_YAML = "rules:\n  x: " + "[" * 5000 + "]" * 5000 + "\n"
DEEP_BLOCK_YAML = "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n"
DEEP_JSON = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8)
) + "rules: [" + ", ".join(["*i"] * 300) + "]\n"


@pytest.mark.parametrize(("text", "says"), [
    (DEEP_YAML, f"nested more than {MAX_CONFIG_DEPTH} levels"),
    (DEEP_BLOCK_YAML, f"nested more than {MAX_CONFIG_DEPTH} levels"),
    (ALIAS_BOMB, "aliases"),
    ("rules: " + "x" * (MAX_CONFIG_BYTES + 10), "limited to"),
], ids=["5000-deep flow", "200-deep block", "alias bomb", "over 1 MiB"])
def test_hostile_policy_file_is_a_clear_configuration_error(tmp_path: Path, text: str, says: str) -> None:
    """load_policy and wrap(policy=...) refuse the file with a ConfigurationError saying why."""
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=says):
        load_policy(path)
    with pytest.raises(ConfigurationError, match=says):
        governed_db.wrap(sqlite3.connect(":memory:"), policy=path, audit=False)


def test_policy_path_that_is_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    """A directory passed as the policy file says so."""
    with pytest.raises(ConfigurationError, match="is a directory"):
        load_policy(tmp_path)


def test_ordinary_nesting_and_a_few_aliases_still_load() -> None:
    """A policy-sized document with anchors and aliases loads as before."""
    data = load_yaml("roles: &r [dba, admin]\nrules:\n  a: {roles: *r}\n  b: {roles: *r}\n", "test")
    assert data["rules"]["b"]["roles"] == ["dba", "admin"]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deep_masking_config_and_catalog_are_configuration_errors(tmp_path: Path, suffix: str) -> None:
    """Masking config and catalog files with absurd nesting are ConfigurationErrors (JSON and YAML)."""
    path = tmp_path / f"cfg{suffix}"
    path.write_text(DEEP_JSON if suffix == ".json" else DEEP_YAML)
    with pytest.raises(ConfigurationError, match="nested"):
        load_config(str(path))
    with pytest.raises(ConfigurationError, match="nested"):
        Catalog.load(path)


def test_deep_policy_test_cases_file_is_a_configuration_error(tmp_path: Path) -> None:
    """`governed-db policy test` case files have the same limits."""
    path = tmp_path / "cases.yaml"
    path.write_text(DEEP_YAML)
    with pytest.raises(ConfigurationError, match="nested"):
        load_cases(path)


def test_deep_json_text_is_refused() -> None:
    """load_json turns the decoder's recursion limit into a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="nested too deeply"):
        load_json(DEEP_JSON, "test")
