"""The optional C helpers of the audit record's statement path (``governed_db/_speedups.c``), or ``None``.

Pure Python runs instead when they were not built (no C compiler at install time), when the environment sets
``GOVERNED_DB_NO_EXTENSIONS=1`` (read once, at import), or when the built module is an older build that lacks a
function this version calls (an editable install updated without ``pip install -e .``). Both write the same bytes
(tests/test_speedups.py).
"""

from __future__ import annotations

import logging
import os
from typing import Any

#: every function of the extension this version of governed_db calls
REQUIRED = ("frame", "copy_frame", "chain", "bind", "guard_install", "journal_intent", "defer_outcome", "templates",
            "outcome_pieces", "fold", "span_config", "start_span", "end_span", "fold_span", "native_sha256",
            "rows_config", "rows_all")


def usable(module: Any) -> Any:
    """``module`` if it offers every function in :data:`REQUIRED`, else ``None`` (with a warning saying how to
    rebuild it): a stale build must not fail ``wrap()`` half-way, nor run half native."""
    if module is None:
        return None
    missing = [name for name in REQUIRED if not callable(getattr(module, name, None))]
    if missing:
        logging.getLogger("governed_db").warning(
            "governed_db: the built C helpers (%s) are from another version (no %s); the pure-Python code runs "
            "instead — rebuild them with `pip install -e .` (or reinstall governed_db)",
            getattr(module, "__file__", None) or getattr(module, "__name__", "?"), ", ".join(missing))
        return None
    return module


speedups: Any = None
if not os.environ.get("GOVERNED_DB_NO_EXTENSIONS"):
    try:
        from governed_db import _speedups as speedups  # type: ignore[attr-defined,no-redef]
    except ImportError:  # not built: the pure-Python code
        speedups = None
    speedups = usable(speedups)
