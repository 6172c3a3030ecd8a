"""SQLite names written as strings: ``'c'.ssn`` is the column ``c.ssn`` to SQLite, a string to the parser.

SQLite's grammar takes a single-quoted string wherever it wants a name and a value cannot stand (``nm ::=
STRING``, kept for compatibility with MySQL): ``'customers'.ssn``, ``c.'ssn'``, ``'main'.'customers'.'ssn'``,
``'c'.*``, ``JOIN ... USING ('ssn')``, ``OVER 'w'``. sqlglot reads those strings as string literals, so analysis
saw ``'customers'.full_name`` as a constant: the names came back in clear and ``WHERE 'c'.ssn LIKE '5%'``
decided rows (decision 0277). Every place governed_db tokenizes or parses SQLite text goes through
:func:`tokenize` / :func:`parse_one`, which give such a string the token of a quoted name (``"customers"``), as
SQLite reads it. The other dialects' tokens are left as they are.
"""

from __future__ import annotations

from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect

_STRING = TokenType.STRING


def sqlite_names(tokens: list[Token]) -> list[Token]:
    """``tokens`` (SQLite's) with each string SQLite reads as a name re-typed as a quoted name, in place: one
    before or after a ``.`` (a qualified name: SQLite has no ``.`` operator on values), one after ``OVER``
    (a named window) and the strings of a ``USING (...)`` list (the join's column names)."""
    using_at: int | None = None  # the index of the ``(`` of a ``USING (`` list we are in
    for i, tok in enumerate(tokens):
        kind = tok.token_type
        if using_at is not None and kind == TokenType.R_PAREN:
            using_at = None
        if kind == TokenType.L_PAREN and i > 0 and tokens[i - 1].token_type == TokenType.USING:
            using_at = i
            continue
        if kind != _STRING:
            continue
        before = tokens[i - 1].token_type if i > 0 else None
        after = tokens[i + 1].token_type if i + 1 < len(tokens) else None
        if TokenType.DOT in (before, after) or before == TokenType.OVER or (
            using_at is not None and before in (TokenType.L_PAREN, TokenType.COMMA)
        ):
            tok.token_type = TokenType.IDENTIFIER
    return tokens


def tokenize(d: Dialect, gd: str, text: str) -> list[Token]:
    """``d.tokenize(text)``, with SQLite's names written as strings read as names (``gd`` is sqlglot's name of
    the dialect)."""
    tokens = d.tokenize(text)
    return sqlite_names(tokens) if gd == "sqlite" else tokens


def parse(text: str, gd: str) -> list[exp.Expr | None]:
    """Every statement of ``text`` parsed as the server reads it (``sqlglot.parse(text, read=gd)`` but for
    SQLite's names written as strings)."""
    d = Dialect.get_or_raise(gd)
    return d.parser().parse(tokenize(d, gd, text), text)


def parse_one(text: str, gd: str) -> exp.Expr:
    """The one statement of ``text`` (``sqlglot.parse_one(text, read=gd)``, SQLite's names as it reads them)."""
    if gd != "sqlite":
        import sqlglot

        return sqlglot.parse_one(text, read=gd)
    for tree in parse(text, gd):
        if tree is None:
            break
        return tree
    from sqlglot.errors import ParseError

    raise ParseError(f"No expression was parsed from {text[:40]!r}")
