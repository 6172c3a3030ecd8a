"""The optional C helpers of the audit record's statement path (``governed_db/_speedups.c``), or ``None``.

Pure Python runs instead when they were not built (no C compiler at install time) or when the environment sets
``GOVERNED_DB_NO_EXTENSIONS=1`` (read once, at import). Both write the same bytes (tests/test_speedups.py).
"""

from __future__ import annotations

import os
from typing import Any

speedups: Any = None
if not os.environ.get("GOVERNED_DB_NO_EXTENSIONS"):
    try:
        from governed_db import _speedups as speedups  # type: ignore[attr-defined,no-redef]
    except ImportError:  # not built: the pure-Python code
        speedups = None
