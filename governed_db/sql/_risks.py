"""Facts about statements that read one way to the analyser and may run another way on the server.

* MySQL/MariaDB string literals with a backslash-escaped quote: ``\\'`` ends the string or not depending on
  ``sql_mode`` (``NO_BACKSLASH_ESCAPES``), which may be set outside governed_db. Writes with one are flagged;
  reads only when the other reading would do something else (another table, a function, a second statement);
* DuckDB "replacement scans": a quoted name that looks like a path, glob, data file or URL is read from the
  file system or the network (``FROM '/data/x.csv'``, ``FROM 'https://...'``);
* MySQL user-variable assignment inside a query (``SELECT @v := col``), a copy past result masking.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import SqlglotError

if TYPE_CHECKING:
    from governed_db.sql.analysis import StatementInfo

_STRING_TOKENS = frozenset({TokenType.STRING, TokenType.NATIONAL_STRING})
#: an odd run of backslashes before a quote: the quote is escaped, unless NO_BACKSLASH_ESCAPES is on
_ESCAPED_QUOTE = re.compile(r"(?<!\\)(?:\\\\)*\\['\"]")


def backslash_quote(text: str, tokens: list[Token]) -> bool:
    """A string literal among ``tokens`` holds an odd run of backslashes before its own quote character."""
    for tok in tokens:
        if tok.token_type not in _STRING_TOKENS:
            continue
        raw = text[tok.start : tok.end + 1]
        at = min((i for i in (raw.find("'"), raw.find('"')) if i >= 0), default=-1)
        if at < 0:
            continue
        quote, body = raw[at], raw[at + 1 : -1]
        if any(m.group()[-1] == quote for m in _ESCAPED_QUOTE.finditer(body)):
            return True
    return False


#: A name DuckDB reads as a file (its "replacement scan"): a path, a glob, a URL or a data-file extension.
_FILE_NAME = re.compile(
    r"[/\\*?~]|://|\.(?:csv|tsv|txt|json|jsonl|ndjson|parquet|xlsx|arrow|feather|avro|orc|db|duckdb|sqlite3?"
    r"|gz|zst|bz2|xz|lz4|tbl|dat|log)$",
    re.IGNORECASE,
)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def duckdb_file_scans(tree: exp.Expr) -> frozenset[str]:
    """``FROM '/data/x.csv'`` (or ``"x.parquet"``, a glob, an https/s3 URL): DuckDB reads the file or URL."""
    found: set[str] = set()
    for t in tree.find_all(exp.Table):
        ident = t.this
        if not isinstance(ident, exp.Identifier) or not ident.quoted or t.args.get("db"):
            continue
        if _FILE_NAME.search(ident.name):
            found.add("file-read")
            if _URL.match(ident.name):
                found.add("network")
    for lit in tree.find_all(exp.Literal):
        call = lit.parent
        if lit.is_string and isinstance(call, exp.Func) and _URL.match(lit.name) and _reader(call):
            found |= {"file-read", "network"}  # read_csv('https://...'): a reader given a URL
    return frozenset(found)


def _reader(call: exp.Func) -> bool:
    name = call.name if isinstance(call, exp.Anonymous) else call.sql_name()
    return name.lower().startswith(_READERS)


_READERS = ("read_", "parquet_", "iceberg_", "delta_", "sniff_", "glob", "sqlite_", "postgres_", "mysql_")


def variable_copy(tree: exp.Expr) -> bool:
    """MySQL ``SELECT @v := col``: the raw value lands in a session variable, past masking of the result."""
    for node in tree.find_all(exp.PropertyEQ):
        target = node.this
        if isinstance(target, exp.Parameter) or (isinstance(target, exp.Column) and target.name.startswith("@")):
            value = node.expression
            if value is not None and value.find(exp.Column) is not None:
                return True
    return False


class _MySQLNoBackslashEscapes(MySQL):
    """MySQL as the server reads it under ``sql_mode = NO_BACKSLASH_ESCAPES``: only a doubled quote escapes."""

    class Tokenizer(MySQL.Tokenizer):
        STRING_ESCAPES = ["'", '"']


_NBE: Dialect | None = None


def other_reading_differs(
    text: str, tokens: list[Token], stmts: Sequence[StatementInfo], statement_info: Callable[..., StatementInfo]
) -> bool:
    """Would ``text`` do something else if the server did not treat backslash as an escape?

    Only texts with a backslash-escaped quote have two readings. When the other reading does not parse, the
    server would reject it too (nothing runs); when it parses to the same kinds, tables, functions and flags,
    the difference is inside a value. Anything else (another table, a function, a second statement) differs.
    """
    global _NBE
    if not backslash_quote(text, tokens):
        return False
    from governed_db.sql._model import _split

    if _NBE is None:
        _NBE = _MySQLNoBackslashEscapes()
    try:
        chunks = _split(_NBE.tokenize(text))
        other = [statement_info(_NBE, "mysql", text, chunk) for chunk in chunks]
    except SqlglotError:  # the server would not run it either
        return False
    except Exception:  # a gap in the analyser must refuse, never allow
        return True
    if any(st.error for st in other):
        return False
    return [_effect(st) for st in other] != [_effect(st) for st in stmts]


def _effect(st: StatementInfo) -> tuple[object, ...]:
    flags = st.flags - {"backslash-quote"}
    return (st.kind, st.tables_read, st.tables_written, st.functions, flags, st.settings, st.where, st.select_into)


__all__ = ["backslash_quote", "duckdb_file_scans", "other_reading_differs", "variable_copy"]
