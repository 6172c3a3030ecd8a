"""Session settings that change how the server *reads* later statements, and which of their values are safe.

The analyser reads SQL as the server does under the settings it assumes: PostgreSQL with
``standard_conforming_strings = on`` (a backslash in ``'...'`` is an ordinary character) and a client
encoding in which the byte 0x5c is always a backslash; MySQL/MariaDB with backslash escapes on,
``ANSI_QUOTES`` off and such an encoding too. Under GBK, SJIS, BIG5, GB18030 (and a few more), 0x5c can be
the second byte of a two-byte character, so a quote "escaped" by a backslash is not escaped any more: the
classic way to make a server read a different statement from the one that was checked.

``lexing_changes(stmt)`` lists the changes a statement makes to these settings that leave the analyser's
assumptions (``SET NAMES utf8mb4`` keeps them, ``SET NAMES gbk`` does not); ``unsafe_session(values)`` judges
a session's current values (read at ``wrap()`` time).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlglot import exp

if TYPE_CHECKING:
    from governed_db.sql.analysis import StatementInfo

#: Settings whose value decides how string literals and quotes are lexed.
LEXING_SETTINGS = frozenset(
    {"standard_conforming_strings", "backslash_quote", "client_encoding", "names", "character set", "charset",
     "character_set_client", "character_set_connection", "collation_connection", "sql_mode"}
)  # fmt: skip
#: Client encodings where a multi-byte character can end in 0x5c (backslash) or 0x27 (quote): never safe.
UNSAFE_ENCODINGS = frozenset(
    {"big5", "gbk", "sjis", "shift_jis", "shift_jis_2004", "cp932", "gb18030", "johab", "uhc", "cp949",
     "cp936", "cp950", "ms932", "windows_31j", "mskanji", "big5hkscs", "sjis_2004", "win950", "win936"}
)  # fmt: skip
#: Encodings in which a backslash or quote byte is always that character (the analyser's reading holds).
_SAFE_ENCODING = re.compile(
    r"(utf-?8(mb[34])?|unicode|sql_ascii|(us-?)?ascii|latin[0-9]+|iso[-_]?8859[-_]?[0-9]+|(win|cp|windows-?)"
    r"(125[0-8]|866|874|850|852)|koi8-?[ru]|euc[-_]?(jp|kr|cn|tw|jis_2004)|ujis|euckr|gb2312|binary|"
    r"mule_internal|dec8|hp8|swe7|armscii8|geostd8|greek|hebrew|tis620|keybcs2|macce|macroman|iso_8859_[0-9]+)"
)
_ON = frozenset({"on", "true", "1", "yes"})
_OFF = frozenset({"off", "false", "0", "no"})
#: MySQL sql_mode flags that change lexing (the rest are semantic: strictness, zero dates...).
LEXING_SQL_MODES = frozenset({"ANSI_QUOTES", "NO_BACKSLASH_ESCAPES", "ANSI", "PIPES_AS_CONCAT"})


def safe_encoding(value: str) -> bool:
    low = value.strip().strip("'\"").lower().replace(" ", "")
    return low not in UNSAFE_ENCODINGS and _SAFE_ENCODING.fullmatch(low) is not None


def safe_value(name: str, value: str | None) -> bool:
    """Would setting ``name`` to ``value`` keep the analyser's reading? ``None`` (unknown value) never does."""
    if value is None:
        return False
    low = value.strip().strip("'\"").lower()
    if name in ("client_encoding", "names", "character set", "charset", "character_set_client",
                "character_set_connection"):  # fmt: skip
        return safe_encoding(low)
    if name == "collation_connection":
        # a collation names its character set first (gbk_chinese_ci); setting it sets character_set_connection
        return safe_encoding(low.split("_", 1)[0])
    if name == "standard_conforming_strings":
        return low in _ON
    if name == "backslash_quote":
        # off: the server rejects \' (no other reading); safe_encoding: the default, safe under safe encodings
        return low in _OFF or low == "safe_encoding"
    if name == "sql_mode":
        modes = {m.strip().upper() for m in low.split(",") if m.strip()}
        return not modes & LEXING_SQL_MODES and "@@" not in low and "DEFAULT" not in modes
    return False


def _literal(node: exp.Expr | None) -> str | None:
    if isinstance(node, (exp.Literal, exp.Var, exp.Identifier)):
        return str(node.name)
    if isinstance(node, exp.Column) and not node.table:
        return str(node.name)
    if isinstance(node, exp.Boolean):
        return "on" if node.this else "off"
    return None


def _name(node: exp.Expr | None) -> str:
    if isinstance(node, exp.SessionParameter):
        return str(node.name).lower()
    if isinstance(node, (exp.Column, exp.Identifier, exp.Var)):
        return str(node.name).lower()
    return "" if node is None else node.sql().lower().replace('"', "").replace("`", "")


def _assignments(tree: exp.Expr) -> list[tuple[str, str | None]]:
    """``(name, value)`` of every setting a parsed statement assigns (SET items and set_config calls)."""
    out: list[tuple[str, str | None]] = []
    if isinstance(tree, exp.Set):
        for item in tree.expressions:
            kind = str(item.args.get("kind") or "").lower()
            target = item.this
            if kind in ("names", "character set", "charset"):
                out.append((kind, _literal(target)))
            elif isinstance(target, exp.EQ):
                out.append((_name(target.this), _literal(target.expression)))
    for call in tree.find_all(exp.Anonymous):
        if call.name.lower() == "set_config":
            args = call.expressions
            first = _literal(args[0]) if args and isinstance(args[0], exp.Literal) else None
            name = first.lower() if first is not None else "?"
            out.append((name, _literal(args[1]) if len(args) > 1 and isinstance(args[1], exp.Literal) else None))
    return out


def lexing_changes(stmt: StatementInfo) -> list[str]:
    """The lexing settings ``stmt`` changes to values the analyser does not read by (``name=value``)."""
    found: dict[str, None] = {}
    tree = stmt.expression
    assigned = _assignments(tree) if tree is not None and not isinstance(tree, exp.Command) else []
    known = {n for n, _ in assigned}
    for name, value in assigned:
        if name == "?" or (name in LEXING_SETTINGS and not safe_value(name, value)):
            found.setdefault(f"{name}={value}" if value is not None else name, None)
    for name, _scope, write in stmt.settings:
        # opaque SETs (and MariaDB SET STATEMENT) carry names only: an unknown value is not a safe one
        if write and name in LEXING_SETTINGS and name not in known:
            found.setdefault(name, None)
    return list(found)


#: PostgreSQL settings that choose the encoding the server converts every result value to
_RESULT_ENCODING_SETTINGS = frozenset({"client_encoding", "names"})
#: client encodings that hold every character, so converting a result to them never fails (``default``: the
#: session's own, which ``wrap()`` checks)
_LOSSLESS_ENCODINGS = frozenset({"utf8", "unicode", "default"})


def lossless_encoding(value: str | None) -> bool:
    """Can every character be sent to a PostgreSQL client in this encoding? ``None`` (unknown) cannot."""
    if value is None:
        return False
    return value.strip().strip("'\"").lower().replace("-", "").replace("_", "") in _LOSSLESS_ENCODINGS


def lossy_encoding_changes(stmt: StatementInfo) -> list[str]:
    """PostgreSQL: the client encodings ``stmt`` switches the session to that lack characters (``name=value``).

    The server converts every value of a result to the client encoding and fails on a character it lacks
    (``character with byte sequence 0xd0 0x98 in encoding "UTF8" has no equivalent in encoding "LATIN1"``):
    under LATIN1, whether ``SELECT full_name`` fails says which script a name is written in, and whether
    ``SELECT translate(ssn, '5', chr(1046))`` fails says whether an SSN holds a 5. RESET goes back to the
    session's own encoding."""
    found: dict[str, None] = {}
    tree = stmt.expression
    assigned = _assignments(tree) if tree is not None and not isinstance(tree, exp.Command) else []
    known = {n for n, _ in assigned}
    for name, value in assigned:
        if name == "?" or (name in _RESULT_ENCODING_SETTINGS and not lossless_encoding(value)):
            found.setdefault(f"{name}={value}" if value is not None else name, None)
    for name, scope, write in stmt.settings:
        if write and scope != "reset" and name in _RESULT_ENCODING_SETTINGS and name not in known:
            found.setdefault(name, None)
    return list(found)


#: DuckDB settings that cap the memory every statement may use (the database's, shared by its connections)
_DUCKDB_MEMORY_SETTINGS = frozenset({"memory_limit", "max_memory"})


def duckdb_memory_limit_changes(stmt: StatementInfo) -> list[str]:
    """DuckDB: the memory-limit settings ``stmt`` writes (``SET``, ``PRAGMA``, any scope).

    A limit below what governed_db's own catalog reads and samples need (``SET memory_limit = '3MB'``) made them
    fail with an out-of-memory error while the agent's short statements still ran: the table went unclassified
    and its values were only scanned as they passed, so an SSN the scan does not recognise left in clear
    (decision 0325). What value is safe depends on the data, so no write is judged safe; RESET goes back to
    DuckDB's default (a share of the machine's memory)."""
    settings = stmt.settings
    return list(dict.fromkeys(n for n, scope, write in settings if write and scope != "reset" and n in _DUCKDB_MEMORY_SETTINGS))


#: MySQL/MariaDB settings that choose the character set the server sends result values in (``SET NAMES`` and
#: ``SET CHARACTER SET`` set it too)
_MYSQL_RESULT_CHARSET_SETTINGS = frozenset({"character_set_results", "names", "character set", "charset"})
#: result character sets the drivers decode every value of (they decode text as UTF-8 unless told otherwise)
_MYSQL_LOSSLESS_CHARSETS = frozenset({"utf8", "utf8mb4", "utf8mb3"})


def mysql_result_charset_changes(stmt: StatementInfo) -> list[str]:
    """MySQL/MariaDB: the result character sets other than UTF-8 ``stmt`` switches the session to (``name=value``).

    The server converts result values to it, and PyMySQL/aiomysql, connected in UTF-8, decode them as UTF-8: under
    latin1 an ``é`` arrives as the byte 0xE9 and decoding fails, quoting its position. So whether ``SELECT
    replace(ssn, '5', 'é') AS r`` fails, and where, says where an SSN holds a 5 (decision 0246)."""
    found: dict[str, None] = {}
    tree = stmt.expression
    assigned = _assignments(tree) if tree is not None and not isinstance(tree, exp.Command) else []
    for name, value in assigned:
        short = name.rsplit(".", 1)[-1].lstrip("@")
        lossless = value is not None and value.strip().strip("'\"`").lower() in _MYSQL_LOSSLESS_CHARSETS
        if name == "?" or (short in _MYSQL_RESULT_CHARSET_SETTINGS and not lossless):
            found.setdefault(f"{short}={value}" if value is not None else short, None)
    known = {n.rsplit(".", 1)[-1].lstrip("@") for n, _ in assigned}
    for name, scope, write in stmt.settings:
        if write and scope != "reset" and name in _MYSQL_RESULT_CHARSET_SETTINGS and name not in known:
            found.setdefault(name, None)
    return list(found)


#: MySQL/MariaDB isolation settings, and the values of them that read committed rows only (``tx_isolation``'s
#: numbers are its enum's positions: 0 is READ-UNCOMMITTED; DEFAULT is the server's, read when a table is sampled)
_ISOLATION_SETTINGS = frozenset({"tx_isolation", "transaction_isolation"})
_COMMITTED_LEVELS = frozenset(
    {"read-committed", "repeatable-read", "serializable", "read committed", "repeatable read", "1", "2", "3",
     "default"}
)  # fmt: skip
_READ_UNCOMMITTED = re.compile(r"\bisolation\s+level\s+read\s+uncommitted\b", re.I)


def dirty_read_changes(stmt: StatementInfo, text: str) -> list[str]:
    """MySQL/MariaDB: the isolation settings ``stmt`` (of the SQL ``text``) gives a level that reads uncommitted
    rows, or a value that cannot be read (``name=value``); ``SET [SESSION] TRANSACTION ISOLATION LEVEL READ
    UNCOMMITTED``, which sqlglot keeps opaque, is read from the text (decision 0275)."""
    found: dict[str, None] = {}
    tree = stmt.expression
    assigned = _assignments(tree) if tree is not None and not isinstance(tree, exp.Command) else []
    known = set()
    for name, value in assigned:
        short = name.rsplit(".", 1)[-1].lstrip("@").lower()
        known.add(short)
        if short in _ISOLATION_SETTINGS and (value is None or value.strip().strip("'\"`").lower() not in _COMMITTED_LEVELS):
            found.setdefault(f"{short}={value}" if value is not None else short, None)
    for name, scope, write in stmt.settings:
        if not write or scope == "reset":
            continue
        short = name.rsplit(".", 1)[-1].lstrip("@").lower()
        if short in _ISOLATION_SETTINGS and short not in known:
            found.setdefault(short, None)  # an opaque SET: its value cannot be read
        elif _READ_UNCOMMITTED.search(text):
            # SET [SESSION] TRANSACTION [READ WRITE,] ISOLATION LEVEL READ UNCOMMITTED (named by its other parts)
            found.setdefault("isolation level READ UNCOMMITTED", None)
    return list(found)


def search_path_changes(stmt: StatementInfo) -> bool:
    """Does ``stmt`` change which schema unqualified names resolve to?"""
    if any(write and name == "search_path" for name, _scope, write in stmt.settings):
        return True
    tree = stmt.expression
    return tree is not None and any(name in ("search_path", "?") for name, _ in _assignments(tree) if name)


def unsafe_session(values: Mapping[str, str | None]) -> list[str]:
    """Which of a session's current lexing settings the analyser does not read by (for ``wrap()``)."""
    return [f"{name}={value}" for name, value in values.items() if not safe_value(name, value)]


__all__ = [
    "LEXING_SETTINGS",
    "LEXING_SQL_MODES",
    "UNSAFE_ENCODINGS",
    "dirty_read_changes",
    "lexing_changes",
    "lossless_encoding",
    "lossy_encoding_changes",
    "mysql_result_charset_changes",
    "safe_encoding",
    "safe_value",
    "search_path_changes",
    "unsafe_session",
]
