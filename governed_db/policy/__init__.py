"""Policy: which rules apply, with which action, where and to whom.

What lives here:

* :mod:`.decision` - the verdict of one statement (``Action``, ``RuleHit``, ``Decision``);
* :mod:`.rules` - the rule catalog (every rule documented in ``docs/reference/rules.md``);
* :mod:`.engine` - ``Policy``, ``load_policy``, ``evaluate`` (rules applied, decisions cached);
* :mod:`.file` - policy YAML files, validated into a ``Policy``; :mod:`.settings` the per-scope settings;
* :mod:`.ratelimit` - per-identity rate and row limits; :mod:`.testing` - ``governed-db policy test``.

The engine's names are importable from here (``from governed_db.policy import load_policy``); they are
loaded on first use so that ``import governed_db`` (which needs only :mod:`.decision`) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governed_db.policy.engine import *  # noqa: F403


def __getattr__(name: str) -> Any:
    engine = importlib.import_module("governed_db.policy.engine")
    if name in engine.__all__:
        return getattr(engine, name)
    raise AttributeError(f"module 'governed_db.policy' has no attribute {name!r}")


def __dir__() -> list[str]:
    engine = importlib.import_module("governed_db.policy.engine")
    return sorted({*globals(), *engine.__all__})
