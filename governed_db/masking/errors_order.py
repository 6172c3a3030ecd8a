"""MySQL/MariaDB errors raised in read order (decision 0328).

A statement stops at the first row whose evaluation fails. Over a relation whose read order an index on a masked
column may decide, an expression that fails differently per row (``CASE id WHEN 1 THEN (SELECT 1 FROM
seq_1_to_2) WHEN 3 THEN EXP(1000) ELSE 0 END = 7 ... WHERE ssn IS NOT NULL``) raises the error of the row whose
masked value sorts first: its code, message and PyMySQL class (chosen by the code) tell how the masked value sorts
among the others, as the warnings of decision 0312 did.

Which expressions can fail per row cannot be told from the text, so the statement is not refused: its error is
withheld when it is one the server raises while reading rows. Errors the server raises before reading any row
(a syntax error, an unknown name, a missing grant, a read-only session...) depend on the text alone: they keep
their class, code and message, so an agent can still fix its SQL. Client errors (a lost connection) pass too.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from governed_db.masking.engine import MaskingState

#: what the caller sees in place of the message of such an error
ERROR_WITHHELD = (
    "[withheld: an error raised while reading rows in an order an index on a masked column may decide; "
    "the rows read first would tell how masked values sort. Check the expressions per row on a table without "
    "masked columns, or ask for an unmask grant]"
)
#: its code: the server's own "unknown error", one for all
CODE = 1105

#: errors the server raises while parsing, resolving names, checking grants or opening tables — before any row
#: is read, so the same for every order (MariaDB/MySQL error numbers). None may be one a row can raise: a row's
#: error passed beside another row's withheld one would tell which row came first
STATIC = frozenset({
    1044, 1045, 1046, 1049, 1050, 1051, 1052, 1054, 1055, 1056, 1057, 1058, 1060, 1064, 1065, 1066, 1093,
    1102, 1103, 1109, 1110, 1111, 1113, 1128, 1136, 1140, 1142, 1143, 1146, 1149, 1176, 1221, 1222, 1227,
    1235, 1241, 1247, 1248, 1250, 1267, 1270, 1271, 1273, 1290, 1305, 1318, 1356, 1370, 1582, 1583, 1584,
    1630, 1792, 4078, 4079,
})  # fmt: skip
#: the connection ended (server shutdown, killed, idle timeout): no row raised it, and pools must see it to
#: discard the connection (SQLAlchemy's ``is_disconnect`` reads the code)
DISCONNECTED = frozenset({1053, 1927, 4031})


def withhold(state: MaskingState, exc: BaseException) -> None:
    """``exc`` (raised by a MySQL/MariaDB driver for the statement that just failed) in place: class, code and
    message withheld when the statement read a relation a masked index may order and the error is raised per
    row. The caller's ``except`` catches this very object, now the driver's ``OperationalError``."""
    if not state.read_order or not withheld_kind(exc):
        return
    uniform = getattr(sys.modules.get(type(exc).__module__), "OperationalError", None)
    with contextlib.suppress(TypeError, AttributeError):
        exc.args = (CODE, ERROR_WITHHELD)
        if isinstance(uniform, type) and issubclass(uniform, Exception) and type(exc) is not uniform:
            exc.__class__ = uniform


def withheld_kind(exc: BaseException) -> bool:
    """``exc`` is a server error of the PyMySQL family (aiomysql raises the same) raised while reading rows."""
    from governed_db.errors import GovernedDBError

    if isinstance(exc, GovernedDBError) or type(exc).__module__.split(".")[0] != "pymysql":
        return False
    args = getattr(exc, "args", ())
    code = args[0] if args else None
    if not isinstance(code, int):
        return False
    return not (code < 1000 or 2000 <= code < 3000 or code in STATIC or code in DISCONNECTED)


__all__ = ["ERROR_WITHHELD", "withheld_kind", "withhold"]
