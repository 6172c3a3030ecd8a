"""Errors raised in read order: MySQL/MariaDB (decision 0328), PostgreSQL (decision 0334), SQLite (decision 0346).

A statement stops at the first row whose evaluation fails. Over a relation whose read order an index on a masked
column may decide, an expression that fails differently per row (``CASE id WHEN 1 THEN (SELECT 1 FROM
seq_1_to_2) WHEN 3 THEN EXP(1000) ELSE 0 END = 7 ... WHERE ssn IS NOT NULL``) raises the error of the row whose
masked value sorts first: its code, message and PyMySQL class (chosen by the code) tell how the masked value sorts
among the others, as the warnings of decision 0312 did.

Which expressions can fail per row cannot be told from the text, so the statement is not refused: its error is
withheld when it is one the server raises while reading rows. Errors the server raises before reading any row
(a syntax error, an unknown name, a missing grant, a read-only session...) depend on the text alone: they keep
their class, code and message, so an agent can still fix its SQL. Client errors (a lost connection) pass too.

PostgreSQL reads a relation in stored order, which how wide the masked values of the rows before a row are may
decide (decision 0272): every relation with a masked column is such a relation, and an order added after the scan
does not change which row fails first. There, SQLSTATE classes say little (``('t' || id)::regclass`` raises 42P01
per row, ``to_tsquery`` 42601, ``nextval`` 25006 or 42501, a lock 55P03 or 40001, a sleep 57014): what passes is
an error parse analysis raised, which points into the statement's text (a position, no context), an error that
ends the session or came before the statement (08, 57P01-57P03, 25P02, 28), and an error with no SQLSTATE (the
client's own).

SQLite walks an index on a masked column wherever its planner finds it cheaper (``WHERE ssn IS NOT NULL``, a
covering scan for ``count(*)``), and an ORDER BY added to the result does not change the order rows are filtered
and computed in. Compile errors and a function's error at a row share one result code (``SQLITE_ERROR``): an error
passes when compiling the statement alone (``EXPLAIN``) raises it again (the driver marks it, as
:func:`mark_compiling` says), or when its code says no row raised it (busy, locked, read-only, I/O, interrupted);
the client's own errors (``ProgrammingError``: bindings, a closed cursor) pass too.
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


def withhold(state: MaskingState, exc: BaseException, *, read_order: bool | None = None) -> None:
    """``exc`` in place, withheld when the statement that raised it read a relation whose order a masked value may
    decide (``read_order``, else the flag of the statement that ran last) and it is an error a row may raise (the
    driver's family picks the rules)."""
    if not (state.read_order if read_order is None else read_order):
        return
    family = type(exc).__module__.split(".")[0]
    if family == "pymysql":
        _withhold_mysql(state, exc)
    elif family in _PG_FAMILIES:
        _withhold_pg(family, exc)
    elif family == "sqlite3":
        _withhold_sqlite(exc)


def _withhold_mysql(state: MaskingState, exc: BaseException) -> None:
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


#: PostgreSQL: the message of such an error (a scan reads rows in stored order, which masked values may decide)
PG_ERROR_WITHHELD = (
    "[withheld: an error a row may raise, raised while reading a table with masked columns in stored order; "
    "where masked values are stored decides which row is read first. Check the expressions per row on a table "
    "without masked columns, or ask for an unmask grant]"
)
#: PostgreSQL: the SQLSTATE every withheld error carries (``internal_error``, the class of no ordinary row error)
PG_SQLSTATE = "XX000"
#: errors no row raises: the session ended (08: connection; 57P01-57P03: the server shuts down or cannot take
#: connections; pools read them to discard it), the transaction had failed before the statement (25P02), a login
#: (28)
_PG_PASSING = ("08", "28", "57P01", "57P02", "57P03", "25P02")
_PG_FAMILIES = ("psycopg", "psycopg2", "asyncpg")


def pg_withheld_kind(family: str, exc: BaseException) -> bool:
    """``exc`` (a psycopg, psycopg2 or asyncpg error) may be the error of one row among others: a server error,
    neither raised by parse analysis (a position in the statement, no context) nor ending the session."""
    from governed_db.errors import GovernedDBError

    if isinstance(exc, GovernedDBError):
        return False
    if family == "asyncpg":
        sqlstate = getattr(exc, "sqlstate", None)
        position, context, internal = (getattr(exc, n, None) for n in ("position", "context", "internal_query"))
    else:
        sqlstate = getattr(exc, "pgcode" if family == "psycopg2" else "sqlstate", None)
        diag = getattr(exc, "diag", None)
        position, context, internal = (
            getattr(diag, n, None) for n in ("statement_position", "context", "internal_query")
        )
    if not isinstance(sqlstate, str) or not sqlstate or sqlstate.startswith(_PG_PASSING):
        return False
    return not (position and context is None and internal is None)


def _withhold_pg(family: str, exc: BaseException) -> None:
    """One class (the driver's for ``XX000``), SQLSTATE, message and no other field for every withheld error."""
    if not pg_withheld_kind(family, exc):
        return
    with contextlib.suppress(Exception):
        if family == "psycopg":
            _psycopg(exc)
        elif family == "psycopg2":
            _psycopg2(exc)
        else:
            _asyncpg(exc)


def _psycopg(exc: BaseException) -> None:
    from psycopg import errors
    from psycopg.pq import DiagnosticField

    exc.__class__ = errors.lookup(PG_SQLSTATE)
    exc.__dict__.pop("sqlstate", None)  # set on the object for a SQLSTATE psycopg has no class for
    exc._info = {  # type: ignore[attr-defined]
        DiagnosticField.SEVERITY: b"ERROR",
        DiagnosticField.SEVERITY_NONLOCALIZED: b"ERROR",
        DiagnosticField.SQLSTATE: PG_SQLSTATE.encode(),
        DiagnosticField.MESSAGE_PRIMARY: PG_ERROR_WITHHELD.encode(),
    }
    exc.args = (PG_ERROR_WITHHELD,)


def _psycopg2(exc: BaseException) -> None:
    import types

    from psycopg2 import errors

    from governed_db.drivers._psycopg2_errors import DIAG_FIELDS, sealed_class

    exc.__class__ = sealed_class(errors.lookup(PG_SQLSTATE))
    diag: dict[str, str | None] = dict.fromkeys(DIAG_FIELDS)
    diag.update(
        severity="ERROR", severity_nonlocalized="ERROR", sqlstate=PG_SQLSTATE, message_primary=PG_ERROR_WITHHELD
    )
    exc.__dict__["_governed_diag"] = types.SimpleNamespace(**diag)
    exc.__setstate__({"pgerror": f"ERROR:  {PG_ERROR_WITHHELD}\n", "pgcode": PG_SQLSTATE})  # type: ignore[attr-defined]
    exc.args = (PG_ERROR_WITHHELD,)


def _asyncpg(exc: BaseException) -> None:
    from asyncpg import exceptions

    exc.__class__ = exceptions.InternalServerError
    for name in exceptions.InternalServerError._field_map.values():  # every field of the server's (as_dict())
        exc.__dict__.pop(name, None)
    exc.__dict__.update(severity="ERROR", severity_en="ERROR", sqlstate=PG_SQLSTATE, message=PG_ERROR_WITHHELD)
    exc.args = (PG_ERROR_WITHHELD,)


#: SQLite: the message of such an error
SQLITE_ERROR_WITHHELD = (
    "[withheld: an error a row may raise, raised while reading a table with an index on a masked column, which "
    "SQLite may walk in the order of the masked values; the row read first would tell how they sort. Check the "
    "expressions per row on a table without masked columns, or ask for an unmask grant]"
)
#: SQLite primary result codes no row raises: busy (5), locked (6), out of memory (7), read-only (8),
#: interrupted (9: the deadline), I/O (10), corrupt (11), cannot open (14), protocol (15), misuse (21),
#: authorization (23: at compile), a parameter index (25), not a database (26)
_SQLITE_PASSING = frozenset({5, 6, 7, 8, 9, 10, 11, 14, 15, 21, 23, 25, 26})
#: the attribute a driver sets on an error that compiling the statement alone raised again
COMPILING = "_governed_db_compiling"


def sqlite_withheld_kind(exc: BaseException) -> bool:
    """``exc`` (a sqlite3 error) may be the error of one row among others."""
    import sqlite3

    from governed_db.errors import GovernedDBError

    if isinstance(exc, GovernedDBError) or not isinstance(exc, sqlite3.DatabaseError):
        return False  # the client's own (bindings, a closed cursor, one statement at a time)
    if getattr(exc, COMPILING, False):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    return not (isinstance(code, int) and code & 0xFF in _SQLITE_PASSING)


def _withhold_sqlite(exc: BaseException) -> None:
    """One class (``OperationalError``), code and message for every withheld error."""
    import sqlite3

    if not sqlite_withheld_kind(exc):
        return
    with contextlib.suppress(TypeError, AttributeError):
        exc.__class__ = sqlite3.OperationalError
        exc.args = (SQLITE_ERROR_WITHHELD,)
        exc.sqlite_errorcode = 1  # type: ignore[attr-defined]
        exc.sqlite_errorname = "SQLITE_ERROR"  # type: ignore[attr-defined]


def mark_compiling(exc: BaseException, again: BaseException | None) -> None:
    """Mark ``exc`` as an error of compiling the statement when ``again`` (what compiling it alone raised, or
    None) is the same error: it depends on the text and the schema, not on any row."""
    if again is not None and type(again) is type(exc) and str(again) == str(exc):
        with contextlib.suppress(TypeError, AttributeError):
            setattr(exc, COMPILING, True)


__all__ = [
    "COMPILING",
    "ERROR_WITHHELD",
    "PG_ERROR_WITHHELD",
    "PG_SQLSTATE",
    "SQLITE_ERROR_WITHHELD",
    "mark_compiling",
    "pg_withheld_kind",
    "sqlite_withheld_kind",
    "withheld_kind",
    "withhold",
]
