"""MySQL/MariaDB warnings listed in read order (decision 0312).

MariaDB keeps a statement's warnings in the order it evaluated the rows, and keeps them after the statement until
another one that uses a table or warns replaces them. Over a relation whose read order an index on a masked column
may decide, a warning of a different kind per row (``max(CASE id WHEN 1 THEN 1/0 WHEN 2 THEN CAST('x' AS INT)
...) ... WHERE ssn IS NOT NULL GROUP BY id``) lists the rows in SSN order: ``SHOW WARNINGS`` (PyMySQL's
``show_warnings()``, aiomysql's Python warnings) then tells how a masked value sorts among the others — the order
the same index gives ``ROWNUM()`` and ``SYSDATE(6)`` (decisions 0234, 0293). Past ``max_error_count`` the order
also decides which warnings are kept.

Which expressions warn cannot be told from the text (any conversion, division, cast...), so the statement is not
refused: its warnings are. When such a statement warned more than once (a single warning has no order), every
warning it left is listed with its level, code and message withheld, until a statement that warns on its own (or
an error) replaces them. The count stays (``@@warning_count``, the number of rows): it does not depend on the
order. Warnings of statements over tables without such an index keep their text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governed_db.masking.engine import MaskingState
    from governed_db.masking.rows import RowMasker

#: what the caller sees in place of each message of such a statement's warnings
WARNINGS_WITHHELD = (
    "[withheld: a warning of a statement whose rows were read in an order an index on a masked column may decide]"
)
#: its level: one for all (Note and Warning interleaved are an order too)
LEVEL = "Warning"


def ran(state: MaskingState, count: int | None, uses_table: bool = False) -> None:
    """A statement ran; ``count``: how many warnings it left (``None``: not known yet, as for an unbuffered
    result before its last row); ``uses_table``: it names a table (the server then clears the list first)."""
    if state.read_order:
        state.warnings_in_read_order = count is None or count >= 2
        state.warning_count_withheld = False  # it read every row it reads: its count follows no order
    elif count:
        state.warnings_in_read_order = False  # its own warnings replaced the ones listed before
        state.warning_count_withheld = False
    elif uses_table:
        state.warning_count_withheld = False  # the list it cleared counts none


def failed(state: MaskingState, exc: BaseException | None = None) -> None:
    """A statement failed: the error may follow warnings it listed in read order (an error raised before the
    statement reached the server replaces nothing, so a flag already set stays). An error the server raises
    before it reads any row (``exc`` of :data:`errors_order.STATIC`: an unknown column, a syntax error) follows
    no order: it sets nothing either (decision 0337)."""
    from governed_db.masking import errors_order

    if exc is not None and not errors_order.withheld_kind(exc) and _server_code(exc) in errors_order.STATIC:
        return
    if state.read_order:
        state.warnings_in_read_order = True
        # it stopped at the row that failed: the warnings the rows read before it left count them (0344)
        state.warning_count_withheld = True


def _server_code(exc: BaseException) -> object:
    args = getattr(exc, "args", ())
    return args[0] if args and type(exc).__module__.split(".")[0] == "pymysql" else None


def withheld(state: MaskingState, names: Sequence[str], diagnostics: bool) -> RowMasker | None:
    """The plan for a ``SHOW WARNINGS``/``SHOW ERRORS`` result while the warnings listed may be in such an order
    (``None``: another statement, or warnings that keep their text)."""
    if not diagnostics or not state.warnings_in_read_order:
        return None
    from governed_db.masking.rows import RowMasker

    def level(_value: Any) -> Any:
        return LEVEL

    def code(_value: Any) -> Any:
        return None

    def message(_value: Any) -> Any:
        return WARNINGS_WITHHELD

    by_name = {"level": level, "code": code, "message": message}
    return RowMasker(names, [by_name.get(n.lower()) for n in names])


#: statements that read how many warnings and errors the last statement left without replacing them: the session
#: variables, ``SHOW COUNT(*) WARNINGS``, and ``SHOW WARNINGS``/``SHOW ERRORS``, which list one row each
_READS_COUNT = re.compile(r"\b(?:warning_count|error_count)\b|\bSHOW\s+(?:COUNT\b|WARNINGS\b|ERRORS\b)", re.I)


def uses_table(tables: Sequence[str]) -> bool:
    """Does a statement naming ``tables`` use one (MySQL/MariaDB then clear the warnings listed before it runs;
    ``FROM DUAL`` is no table)?"""
    return any(t.lower() != "dual" for t in tables)


def reads_count(state: MaskingState, sql: str, tables: Sequence[str]) -> bool:
    """Does ``sql`` (naming ``tables``) read how many warnings a statement left that failed part-way through rows
    read in an order an index on a masked column may decide (decision 0344)? A statement that uses a table reads
    the count of a list it cleared first (``SELECT error_count FROM jobs`` runs)."""
    return state.warning_count_withheld and not uses_table(tables) and _READS_COUNT.search(sql) is not None


def python_warnings(state: MaskingState, messages: list[str]) -> list[str]:
    """The messages aiomysql repeats as Python warnings right after the statement that left them (which
    :func:`ran` has not seen yet)."""
    if state.read_order and len(messages) >= 2:
        return [WARNINGS_WITHHELD] * len(messages)
    return messages


__all__ = ["WARNINGS_WITHHELD", "failed", "python_warnings", "ran", "reads_count", "uses_table", "withheld"]
