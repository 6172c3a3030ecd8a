"""The package layout: concerns live in packages, moved import paths keep working, no top-level families."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from governed_db._compat import MOVED

PACKAGE = Path(__file__).resolve().parents[1] / "governed_db"


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_moved_import_path_is_the_same_module(old: str, new: str) -> None:
    """An import path users already have resolves to the moved module itself, not a copy."""
    assert importlib.import_module(old) is importlib.import_module(new)


def test_moved_package_submodules_are_not_imported_twice() -> None:
    """`governed_db.rules.tables` is `governed_db.policy.rules.tables` (rules register once)."""
    code = (
        "import governed_db.rules.tables as a, governed_db.policy.rules.tables as b, sys;"
        "assert a is b;"
        "assert sum(1 for m in sys.modules.values() if getattr(m, '__file__', '') == b.__file__) >= 1"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_from_old_path_import_names_works() -> None:
    """`from governed_db.sqlalchemy import create_engine` (documented) still works."""
    from governed_db.rules import register_rule
    from governed_db.sqlalchemy import create_engine

    assert callable(create_engine) and callable(register_rule)


def test_no_prefixed_module_family_at_top_level() -> None:
    """Top-level modules do not form prefix families (`analysis_*`, `policy_*`): those are packages."""
    names = [p.stem for p in PACKAGE.glob("*.py")]
    prefixes: dict[str, list[str]] = {}
    for name in names:
        if "_" in name.strip("_"):
            prefixes.setdefault(name.strip("_").split("_")[0], []).append(name)
    families = {k: v for k, v in prefixes.items() if len(v) > 1}
    assert not families
