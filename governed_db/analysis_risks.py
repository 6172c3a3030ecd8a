"""Facts about statements that read one way to the analyser and may run another way on the server.

* MySQL/MariaDB string literals with a backslash-escaped quote: ``\\'`` ends the string or not depending on
  ``sql_mode`` (``NO_BACKSLASH_ESCAPES``), which may be set outside governed_db;
* DuckDB "replacement scans": a quoted name that looks like a path, glob, data file or URL is read from the
  file system or the network (``FROM '/data/x.csv'``, ``FROM 'https://...'``);
* MySQL user-variable assignment inside a query (``SELECT @v := col``), a copy past result masking.
"""

from __future__ import annotations

import re

from sqlglot import Token, TokenType, exp

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


__all__ = ["backslash_quote", "duckdb_file_scans", "variable_copy"]
