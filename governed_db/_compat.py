"""Import paths that moved keep working: the old name is the new module, not a copy.

``governed_db.sqlalchemy`` is ``governed_db.integrations.sqlalchemy`` (same
module object, so monkeypatching, ``isinstance`` and rule registration see
one thing). A package's submodules are aliased too, so
``import governed_db.rules.tables`` does not import the module twice.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from types import ModuleType

#: old import path -> where the module lives now
MOVED: dict[str, str] = {
    "governed_db.decision": "governed_db.policy.decision",
    "governed_db.rules": "governed_db.policy.rules",
    "governed_db.policy_file": "governed_db.policy.file",
    "governed_db.sqlalchemy": "governed_db.integrations.sqlalchemy",
    "governed_db.jupyter": "governed_db.integrations.jupyter",
    "governed_db.langchain": "governed_db.integrations.langchain",
    "governed_db.mcp_server": "governed_db.integrations.mcp_server",
    "governed_db.tooling": "governed_db.integrations.tooling",
}


def alias(old: str) -> ModuleType:
    """Make the module being imported as ``old`` the module it moved to (and its submodules)."""
    new = MOVED[old]
    module = importlib.import_module(new)
    sys.modules[old] = module
    path = getattr(module, "__path__", None)
    if path is not None:
        for info in pkgutil.iter_modules(path):
            sys.modules[f"{old}.{info.name}"] = importlib.import_module(f"{new}.{info.name}")
    return module
