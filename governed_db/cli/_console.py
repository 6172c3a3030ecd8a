"""The rich console every command prints through.

On a terminal, rich uses the terminal's width. Piped or captured, rich would
assume 80 columns and wrap every table cell; there the console is as wide as
the content instead, so lines stay whole for ``grep``/``less -S`` and logs.
``COLUMNS`` still wins when set.
"""

from __future__ import annotations

import os
import sys
from typing import Any

#: wide enough that no table is ever wrapped; tables are sized to their content, so nothing is padded to it
PIPED_WIDTH = 100_000


def console(*, stderr: bool = False) -> Any:
    """A rich Console for stdout (or stderr) that does not wrap tables when the stream is not a terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    piped = not _isatty(stream) and not os.environ.get("COLUMNS")
    return Console(stderr=stderr, soft_wrap=False, width=PIPED_WIDTH if piped else None)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


__all__ = ["PIPED_WIDTH", "console"]
