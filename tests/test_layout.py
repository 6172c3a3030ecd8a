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


def test_no_import_cycle_at_run_time() -> None:
    """No module imports (at module level or inside a function) a module that imports it back, transitively."""
    import ast

    modules: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def targets(name: str, node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = node.module or ""
        if node.level:
            pkg = name.split(".") if modules[name].name == "__init__.py" else name.split(".")[:-1]
            base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
        return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        todo: list[ast.AST] = [ast.parse(path.read_text())]
        while todo:
            node = todo.pop()
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                todo.extend(node.orelse)
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in targets(name, node):
                    while target and target not in modules:
                        target = target.rpartition(".")[0]
                    if target and target != name:
                        deps.add(target)
            todo.extend(ast.iter_child_nodes(node))
        graph[name] = deps

    cycles = []
    for start in graph:  # a path from a module back to itself
        seen: set[str] = set()
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert cycles == [], "import cycles:\n" + "\n".join(sorted(set(cycles))[:20])
