"""Environment classes: which environment names count as development (observe, warn, unmasked).

One definition, read by settings (fail-closed mode), policy (observe-only) and masking (unmasked environments).
"""

from __future__ import annotations

#: environments where governance observes and warns instead of refusing, and masking is off by default
DEVELOPMENT_ENVIRONMENTS = frozenset({"development", "dev", "local", "test"})

__all__ = ["DEVELOPMENT_ENVIRONMENTS"]
