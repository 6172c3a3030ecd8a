"""Where SQLite reads a text otherwise than sqlglot's SQLite dialect does, and how governed_db reads it as SQLite does.

**Names written as strings.** ``'c'.ssn`` is the column ``c.ssn`` to SQLite, a string to the parser.

SQLite's grammar takes a single-quoted string wherever it wants a name and a value cannot stand (``nm ::=
STRING``, kept for compatibility with MySQL): ``'customers'.ssn``, ``c.'ssn'``, ``'main'.'customers'.'ssn'``,
``'c'.*``, ``JOIN ... USING ('ssn')``, ``OVER 'w'``. sqlglot reads those strings as string literals, so analysis
saw ``'customers'.full_name`` as a constant: the names came back in clear and ``WHERE 'c'.ssn LIKE '5%'``
decided rows (decision 0277). Every place governed_db tokenizes or parses SQLite text goes through
:func:`tokenize` / :func:`parse_one`, which give such a string the token of a quoted name (``"customers"``), as
SQLite reads it. The other dialects' tokens are left as they are.

**Parameters in Tcl's spelling.** SQLite's tokenizer reads ``$name(...)``, ``@name(...)``, ``:name(...)`` and
``#name(...)`` (anything up to the next ``)`` without a space), and ``$a::b``, as *one* parameter token: in
``SELECT $a(') FROM customers WHERE ssn LIKE $b(')`` the quotes are inside the two parameters, while sqlglot reads a
string from one quote to the other and so sees no table at all. :func:`tcl_parameter` finds such a parameter (and
``#name``, which sqlglot does not read as one) the way SQLite's tokenizer does, and the statement is refused
unanalysed (decision 0279): applications bind ``?``, ``?NNN``, ``:name``, ``@name`` and ``$name``.

**Plain parameters sqlglot reads as something else.** ``$name`` is a name to sqlglot (a column ``$name``, which the
analyser resolved against the query's tables) and ``?NNN`` a placeholder followed by a number (a parse error); to
SQLite both are one parameter token (DuckDB reads ``?NNN`` so too), and so is ``:NNN``. :func:`as_read` gives each the token of a
placeholder, as ``?`` and ``:name`` already have (decision 0296).
"""

from __future__ import annotations

import re

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


def numbered_placeholders(tokens: list[Token]) -> list[Token]:
    """``tokens`` with each ``?NNN`` (a ``?`` with digits right after it: one numbered parameter to SQLite and
    DuckDB, a placeholder and a number to sqlglot) one placeholder token."""
    out: list[Token] = []
    for tok in tokens:
        if (
            tok.token_type == TokenType.NUMBER
            and out
            and out[-1].token_type == TokenType.PLACEHOLDER
            and out[-1].text == "?"
            and out[-1].end + 1 == tok.start
            and tok.text.isdigit()
        ):
            prev = out.pop()
            tok = Token(TokenType.PLACEHOLDER, f"?{tok.text}", prev.line, tok.col, prev.start, tok.end, prev.comments)
        out.append(tok)
    return out


def sqlite_parameters(tokens: list[Token]) -> list[Token]:
    """``tokens`` with SQLite's ``$name`` (a name token starting with ``$``: SQLite's tokenizer reads every ``$``
    that starts a token as a parameter), ``?NNN`` and ``:NNN`` each one placeholder token, as SQLite reads them."""
    out: list[Token] = []
    for i, tok in enumerate(tokens):
        if tok.token_type == TokenType.VAR and tok.text.startswith("$"):
            tok.token_type = TokenType.PLACEHOLDER
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        if (
            tok.token_type == TokenType.NUMBER
            and out
            and out[-1].token_type == TokenType.COLON
            and out[-1].end + 1 == tok.start
            and tok.text.isdigit()
            and (after is None or after.start > tok.end + 1 or not _ID_CHAR.match(after.text[:1]))
        ):
            # ``:1`` (a name of digits; ``:1a`` is one name to SQLite, left as sqlglot reads it: a parse error)
            prev = out.pop()
            tok = Token(TokenType.PLACEHOLDER, f":{tok.text}", prev.line, tok.col, prev.start, tok.end, prev.comments)
        out.append(tok)
    return numbered_placeholders(out)


def sqlite_tokens(tokens: list[Token]) -> list[Token]:
    """``tokens`` (SQLite's) read as SQLite reads them: names written as strings, plain parameters."""
    return sqlite_parameters(sqlite_names(tokens))


def as_read(gd: str, tokens: list[Token]) -> list[Token]:
    """``tokens`` of dialect ``gd`` (sqlglot's name) read as the server reads them."""
    if gd == "sqlite":
        return sqlite_tokens(tokens)
    if gd == "duckdb":
        return numbered_placeholders(tokens)
    return tokens


#: SQLite's IdChar(): letters, digits, ``_``, ``$`` and every byte of a multi-byte character
_ID_CHAR = re.compile(r"[A-Za-z0-9_$\u0080-\U0010ffff]")
_SPACE = " \t\n\f\r"


#: what a Tcl parameter or ``#name`` looks like anywhere in a text (strings and comments included): only a text
#: holding one is scanned
_MAYBE_TCL = re.compile(r"[$@:#][A-Za-z0-9_$\u0080-\U0010ffff]*(?:\(|::)|#[A-Za-z0-9_$\u0080-\U0010ffff]")


def tcl_parameter(text: str) -> str | None:
    """The first parameter of ``text`` that SQLite reads otherwise than a plain ``[$@:]name`` / ``?NNN`` (Tcl's
    ``$a(...)``, ``$a::b``, or ``#name``), scanning as SQLite's tokenizer does (strings, quoted names, comments);
    ``None`` when there is none."""
    if _MAYBE_TCL.search(text) is None:
        return None
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in "'\"`[":
            close = "]" if c == "[" else c
            j = i + 1
            while j < n:
                if text[j] == close:
                    if close != "]" and text.startswith(close * 2, j):
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif c in "$@:#":
            j, named, tcl = i + 1, 0, False
            while j < n:
                ch = text[j]
                if _ID_CHAR.match(ch):
                    named += 1
                    j += 1
                elif ch == "(" and named:
                    while j < n and text[j] not in _SPACE and text[j] != ")":
                        j += 1
                    tcl, j = True, j + 1
                    break
                elif ch == ":" and text.startswith("::", j):
                    tcl, j = True, j + 2
                else:
                    break
            if named and (tcl or c == "#"):
                return text[i:j]
            i = max(j, i + 1)
        elif _ID_CHAR.match(c):
            while i < n and _ID_CHAR.match(text[i]):
                i += 1  # a name or number: a ``$`` inside it (``a$b``) is part of it
        else:
            i += 1
    return None


def tokenize(d: Dialect, gd: str, text: str) -> list[Token]:
    """``d.tokenize(text)``, with SQLite's names written as strings read as names (``gd`` is sqlglot's name of
    the dialect)."""
    return as_read(gd, d.tokenize(text))


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
