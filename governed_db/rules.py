"""Moved to :mod:`governed_db.policy.rules`; this import path keeps working (it is the same module)."""

from typing import TYPE_CHECKING

from governed_db._compat import alias

if TYPE_CHECKING:  # type checkers see the names; at run time this path is the moved module itself
    from governed_db.policy.rules import *  # noqa: F403

alias(__name__)
