"""Static analysis of SQL text in an exact dialect, with sqlglot (+ sqlglotc).

``analyze(sql, dialect)`` is a pure function of its arguments, cached in a
bounded LRU. Its result is shared between callers: treat the sqlglot trees in
it as read-only (``copy()`` before transforming).

How one text becomes statements:

1. tokenize once with the dialect's own tokenizer, so quoting rules are the
   server's (PostgreSQL ``E'\\''`` and dollar quotes, MySQL backslash escapes
   and ``--1``, nested comments);
2. MySQL/MariaDB executable comments (``/*! ... */``) are code to the server
   but comments to a parser: when one is present the text is analysed *as the
   server runs it* and the statement is flagged (``executable-comment``);
3. split at statement separators and parse each statement on its own, so one
   statement the parser does not know cannot hide the others;
4. statements sqlglot only knows as an opaque ``Command`` (or cannot parse at
   all) are classified by their leading keywords
   (:mod:`governed_db.sql._commands`); what is still unknown stays
   ``unknown`` and the policy treats it as high risk (fail closed).

Facts per statement (class, tables, boundedness of writes, functions, ...)
come from :mod:`governed_db.sql._facts`.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

from governed_db._cache import STATEMENT_CHARS, STATEMENTS, memoize
from governed_db.sql import _facts
from governed_db.sql._facts import statement_info
from governed_db.sql._model import Analysis, StatementInfo, _split
from governed_db.sql._risks import other_reading_differs
from governed_db.sql._sqlite_reading import tcl_parameter, tokenize
from governed_db.sql._where import CURRENT_OF, worst_where

#: governed_db dialect name -> sqlglot dialect name
SQLGLOT_DIALECTS = {
    "sqlite": "sqlite",
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "duckdb": "duckdb",
}

#: Texts longer than this are not parsed at all: the statement is refused as too large to analyse.
MAX_ANALYSIS_CHARS = 256_000
#: More statements than this in one text is not a query, it is a script: refused unanalysed.
MAX_STATEMENTS = 1_000

#: ``read / write / ddl / privilege / session / transaction / exec / file / admin / unknown``
KINDS = ("read", "write", "ddl", "privilege", "session", "transaction", "exec", "file", "admin", "unknown")


def sqlglot_dialect(dialect: str) -> str:
    return SQLGLOT_DIALECTS.get(dialect.lower(), dialect.lower())


class _DropFallbackNotice(logging.Filter):
    """sqlglot logs a warning each time it falls back to an opaque Command; we classify those ourselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_DropFallbackNotice())

_LITERAL_TOKENS = frozenset(
    getattr(TokenType, n)
    for n in (
        "STRING",
        "NUMBER",
        "NATIONAL_STRING",
        "RAW_STRING",
        "HEREDOC_STRING",
        "HEX_STRING",
        "BIT_STRING",
        "BYTE_STRING",
        "UNICODE_STRING",
    )
    if hasattr(TokenType, n)
)
_NO_SPACE_BEFORE = frozenset({TokenType.COMMA, TokenType.R_PAREN, TokenType.DOT, TokenType.R_BRACKET})
_NO_SPACE_AFTER = frozenset({TokenType.L_PAREN, TokenType.DOT, TokenType.L_BRACKET})
_EXEC_COMMENT = re.compile(r"/\*M?!(?:\d{5,6})?(.*?)\*/", re.DOTALL)
_MYSQL_FAMILY = frozenset({"mysql", "mariadb", "singlestore", "doris", "starrocks"})
#: ``--`` then a non-ASCII space: a comment to the parser (``str.isspace``), code to MySQL (ASCII only)
_DASH_UNICODE_SPACE = re.compile(r"--[^\x00-\x7f]")


def _placeholder_end(tokens: list[Token], i: int) -> int:
    """Index past the driver placeholder starting at ``tokens[i]`` (``%s``, ``%(name)s``, ``:name``, ``$1``,
    ``?1``, ``@name``, and ``%%``, the driver's escaped ``%``), or ``i`` when none starts there.

    The tokenizer splits these into adjacent tokens; the record keeps them exactly as the driver got them.
    A number after ``$``/``?`` is a parameter index, never a literal value.
    """
    n = len(tokens)

    def adjacent(k: int, token_type: TokenType | None = None, text: str | None = None) -> bool:
        if k >= n or tokens[k].start != tokens[k - 1].end + 1:
            return False
        return (token_type is None or tokens[k].token_type == token_type) and (text is None or tokens[k].text == text)

    tt = tokens[i].token_type
    if tt == TokenType.MOD:
        if adjacent(i + 1, TokenType.VAR, "s") or adjacent(i + 1, TokenType.MOD):
            return i + 2
        if (adjacent(i + 1, TokenType.L_PAREN) and i + 4 < n and tokens[i + 3].token_type == TokenType.R_PAREN
                and adjacent(i + 4, TokenType.VAR, "s")):  # fmt: skip
            return i + 5
    elif (tt == TokenType.COLON and adjacent(i + 1, TokenType.VAR)) or (
        tt in (TokenType.PARAMETER, TokenType.PLACEHOLDER)
        and (adjacent(i + 1, TokenType.NUMBER) or adjacent(i + 1, TokenType.VAR))
    ):
        return i + 2
    return i


def _normalize(
    text: str, tokens: list[Token], originals: dict[int, str] | None = None,
    spans: dict[int, tuple[int, str]] | None = None,
) -> str:
    """Literals become ``?``; comments vanish; identifiers keep their quotes; placeholders stay exactly as
    written (``originals``: what a rewritten token was in the driver's text, by offset; ``spans``: what the
    ``n`` tokens from an offset were, as ``(n, text)``). Cheap: no tree."""
    out: list[str] = []
    prev: Token | None = None
    i, n = 0, len(tokens)
    while i < n:
        tok = tokens[i]
        tt = tok.token_type
        if tt == TokenType.SEMICOLON:
            if out and out[-1] != "; ":
                out.append("; ")
            prev = None
            i += 1
            continue
        end = _placeholder_end(tokens, i)
        if end > i:
            piece = text[tok.start : tokens[end - 1].end + 1]
        elif originals and tok.start in originals:
            piece, end = originals[tok.start], i + 1
        elif spans and tok.start in spans:
            count, piece = spans[tok.start]
            end = min(n, i + count)
        else:
            piece, end = ("?" if tt in _LITERAL_TOKENS else text[tok.start : tok.end + 1]), i + 1
        if prev is not None and tt not in _NO_SPACE_BEFORE and prev.token_type not in _NO_SPACE_AFTER:
            out.append(" ")
        out.append(piece)
        prev = tokens[end - 1]
        i = end
    if out and out[-1] == "; ":
        out.pop()
    return "".join(out)


def _pyformat_to_qmark(
    text: str, tokens: list[Token], originals: dict[int, str] | None = None, *, placeholders: bool = True
) -> str | None:
    """``%s`` / ``%(name)s`` (pymysql, psycopg2) become ``?`` so every dialect's parser reads them.

    The driver interpolates an escaped literal there, so a placeholder is what the server will see.
    ``%%`` outside strings is the driver's escaped ``%``. Returns None when there is nothing to do.
    ``originals`` receives, by offset in the rewritten text, what each rewritten token was.
    ``placeholders=False``: only ``%%`` (PostgreSQL, whose parser reads ``%s`` placeholders itself).
    """
    originals = {} if originals is None else originals
    length = 0  # characters of the rewritten text emitted so far
    out: list[str] = []
    last = 0
    i, n = 0, len(tokens)
    changed = False
    while i < n:
        tok = tokens[i]
        if tok.token_type == TokenType.MOD:
            nxt = tokens[i + 1] if i + 1 < n else None
            if placeholders and nxt is not None and nxt.start == tok.end + 1 and nxt.text == "s":
                length += tok.start - last
                originals[length] = text[tok.start : nxt.end + 1]
                out.append(text[last : tok.start] + "?")
                length += 1
                last, i, changed = nxt.end + 1, i + 2, True
                continue
            if (
                placeholders
                and i + 4 < n
                and nxt is not None
                and nxt.token_type == TokenType.L_PAREN
                and nxt.start == tok.end + 1
                and tokens[i + 3].token_type == TokenType.R_PAREN
                and tokens[i + 4].text == "s"
                and tokens[i + 4].start == tokens[i + 3].end + 1
            ):
                length += tok.start - last
                originals[length] = text[tok.start : tokens[i + 4].end + 1]
                out.append(text[last : tok.start] + "?")
                length += 1
                last, i, changed = tokens[i + 4].end + 1, i + 5, True
                continue
            if nxt is not None and nxt.token_type == TokenType.MOD and nxt.start == tok.end + 1:
                length += tok.start - last
                originals[length] = "%%"
                out.append(text[last : tok.start] + "%")
                length += 1
                last, i, changed = nxt.end + 1, i + 2, True
                continue
        i += 1
    if not changed:
        return None
    out.append(text[last:])
    return "".join(out)


#: what PostgreSQL's ``WHERE CURRENT OF <cursor>`` (sqlglot does not read it) is parsed as: a call marked, once
#: parsed, with ``CURRENT_OF`` in its ``meta`` (a call of that name the caller wrote is an unknown function, unmarked;
#: decision 0360)
_CURRENT_OF_STAND_IN = "gdb_current_of()"


def _current_of_stand_ins(text: str, tokens: list[Token]) -> tuple[str, dict[int, tuple[int, str]]] | None:
    """PostgreSQL ``UPDATE/DELETE ... WHERE CURRENT OF <cursor>`` with each ``CURRENT OF <cursor>`` as
    :data:`_CURRENT_OF_STAND_IN`, and what each stand-in was (by its offset in the new text: its three tokens and
    the text as written); None when there is none."""
    out: list[str] = []
    spans: dict[int, tuple[int, str]] = {}
    last = length = 0
    n = len(tokens)
    for i, tok in enumerate(tokens):
        if not (
            tok.token_type == TokenType.WHERE
            and i + 3 < n
            and tokens[i + 1].token_type == TokenType.VAR
            and tokens[i + 1].text.upper() == "CURRENT"
            and tokens[i + 2].token_type == TokenType.VAR
            and tokens[i + 2].text.upper() == "OF"
            and tokens[i + 3].token_type in (TokenType.VAR, TokenType.IDENTIFIER)
            and (i + 4 == n or tokens[i + 4].token_type in (TokenType.RETURNING, TokenType.SEMICOLON))
        ):
            continue
        start, end = tokens[i + 1].start, tokens[i + 3].end + 1
        out.append(text[last:start])
        length += start - last
        spans[length] = (3, text[start:end])
        out.append(_CURRENT_OF_STAND_IN)
        length += len(_CURRENT_OF_STAND_IN)
        last = end
    if not spans:
        return None
    out.append(text[last:])
    return "".join(out), spans


def _mark_current_of(stmts: list[StatementInfo], spans: dict[int, tuple[int, str]], gd: str) -> None:
    """Mark the stand-ins :func:`_current_of_stand_ins` wrote, where they are the whole WHERE of an UPDATE or
    DELETE (anywhere else PostgreSQL refuses ``CURRENT OF`` itself), and judge that WHERE again: one row."""
    for k, st in enumerate(stmts):
        tree = st.expression
        if not isinstance(tree, (exp.Update, exp.Delete)):
            continue
        where = tree.args.get("where")
        call = where.this if isinstance(where, exp.Where) else None
        if (
            isinstance(call, exp.Anonymous)
            and call.name.lower() == CURRENT_OF
            and not call.expressions
            and call.meta.get("start") in spans
        ):
            call.meta[CURRENT_OF] = spans[call.meta["start"]][1]
            stmts[k] = dataclasses.replace(st, where=worst_where(tree, gd), functions=st.functions - {CURRENT_OF})


def _has_exec_comment(tokens: list[Token]) -> bool:
    return any(c.lstrip().startswith(("!", "M!")) for tok in tokens for c in (tok.comments or ()))


def _ambiguous_dash(text: str, tokens: list[Token]) -> bool:
    """MySQL starts a ``--`` comment only before ASCII whitespace/control characters; where the two readings
    differ (a Unicode space outside any string or quoted name) nothing can be judged: refuse, never guess."""
    for m in _DASH_UNICODE_SPACE.finditer(text):
        if not m.group()[2].isspace():
            continue
        at = m.start()
        if not any(tok.start <= at <= tok.end for tok in tokens):
            return True
    return False


#: the flag of a PostgreSQL statement whose ``%%`` (outside strings) was read as the pyformat drivers' escaped ``%``
ESCAPED_PERCENT = "escaped-percent"

_LINE_COMMENT = re.compile(r"--[^\n]*")
_HASH_COMMENT = re.compile(r"#[^\n]*")


def _strip_comments(gap: str, gd: str) -> str:
    """The text between two tokens without its comments (block comments nest in PostgreSQL and DuckDB)."""
    out: list[str] = []
    i, n = 0, len(gap)
    depth = 0
    nests = gd in ("postgres", "duckdb")
    while i < n:
        if gap.startswith("/*", i):
            depth = depth + 1 if (nests or depth == 0) else depth
            i += 2
            continue
        if depth and gap.startswith("*/", i):
            depth -= 1
            i += 2
            continue
        if not depth:
            out.append(gap[i])
        i += 1
    rest = _LINE_COMMENT.sub("", "".join(out))
    return _HASH_COMMENT.sub("", rest) if gd in _MYSQL_FAMILY else rest


def _unicode_space(text: str, tokens: list[Token], gd: str) -> bool:
    """Servers lex only ASCII whitespace; a Unicode space (U+00A0, U+3000...) between tokens is, to them, part of
    a name: ``v\u00a0FROM t`` is one identifier to PostgreSQL, two words to the parser. Refuse, never guess."""
    gaps = []
    prev_end = -1
    for tok in tokens:
        gaps.append(text[prev_end + 1 : tok.start])
        prev_end = max(prev_end, tok.end)
    gaps.append(text[prev_end + 1 :])
    for gap in gaps:
        if gap and not gap.isascii() and any(ch.isspace() and not ch.isascii() for ch in _strip_comments(gap, gd)):
            return True
    return False


def _failed(sql: str, dialect: str, reason: str, flags: frozenset[str] = frozenset()) -> Analysis:
    stmt = StatementInfo("unknown", "UNKNOWN", (), (), None, error=reason)
    return Analysis(sql, dialect, (stmt,), "<statement could not be analysed>", error=reason, flags=flags)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _weight(sql: object, dialect: str) -> int:
    return (len(sql) if isinstance(sql, (str, bytes, bytearray)) else 0) + 64


@memoize("analysis", STATEMENTS, STATEMENT_CHARS, weigh=_weight)
def analyze(sql: str, dialect: str) -> Analysis:
    """Split, parse and classify ``sql`` in ``dialect``. Never raises on bad SQL; fails closed."""

    if not isinstance(sql, str):
        sql = bytes(sql).decode("utf-8", errors="replace") if isinstance(sql, (bytes, bytearray)) else str(sql)
    if len(sql) > MAX_ANALYSIS_CHARS:
        reason = f"statement too large to analyse ({len(sql)} characters; the limit is {MAX_ANALYSIS_CHARS})"
        return _failed(sql, dialect, reason, frozenset({"too-large"}))
    if "\x00" in sql:
        # servers and parsers disagree about NUL (end of text, error, or ignored): never guess
        return _failed(sql, dialect, "the statement contains a NUL character", frozenset({"nul"}))
    gd = sqlglot_dialect(dialect)
    try:
        d = Dialect.get_or_raise(gd)
    except Exception as e:
        return _failed(sql, dialect, f"unknown SQL dialect {dialect!r} ({_first_line(e)})")
    flags: set[str] = set()
    text = sql
    try:
        tokens = tokenize(d, gd, text)
        if gd in _MYSQL_FAMILY and ("/*!" in text or "/*M!" in text) and (not tokens or _has_exec_comment(tokens)):
            # (a text that is nothing but comments has no tokens to carry them: the substring decides)
            # the server executes the comment's content; analyse what it runs
            flags.add("executable-comment")
            text = _EXEC_COMMENT.sub(lambda m: f" {m.group(1)} ", text)
            tokens = tokenize(d, gd, text)
        if not text.isascii() and _unicode_space(text, tokens, gd):
            reason = ("a non-ASCII space outside strings and comments is whitespace to the analyser but part of a "
                      "name to the server (ambiguous)")
            return _failed(sql, dialect, reason, frozenset({*flags, "ambiguous-space"}))
        if gd == "sqlite" and tcl_parameter(text) is not None:
            reason = (f"SQLite reads {tcl_parameter(text)!r} as one parameter (Tcl's spelling), which the analyser "
                      "reads otherwise (ambiguous); bind ?, :name, @name or $name")
            return _failed(sql, dialect, reason, frozenset({*flags, "ambiguous-parameter"}))
        if gd in _MYSQL_FAMILY and "--" in text and _ambiguous_dash(text, tokens):
            reason = "'--' followed by a non-ASCII space is code to MySQL but a comment to the analyser (ambiguous)"
            return _failed(sql, dialect, reason, frozenset({*flags, "ambiguous-comment"}))
        spans: dict[int, tuple[int, str]] = {}
        if gd == "postgres" and "current" in text.lower():
            stood_in = _current_of_stand_ins(text, tokens)
            if stood_in is not None:
                text, spans = stood_in
                tokens = tokenize(d, gd, text)
        originals: dict[int, str] = {}  # rewritten placeholder offset -> the driver's own text, for the record
        if "%" in text:
            rewritten = _pyformat_to_qmark(text, tokens, originals, placeholders=gd != "postgres")
            if rewritten is not None:
                if gd == "postgres":
                    # the driver's escaped ``%`` only where it is handed parameters; else the server reads an
                    # operator ``%%`` (one of the caller's own: CREATE OPERATOR) — refused then (pipeline)
                    flags.add(ESCAPED_PERCENT)
                text = rewritten
                tokens = tokenize(d, gd, text)
                if spans:  # each '%%' before a stand-in moved it one character back
                    moved = sorted(originals)
                    spans = {k - sum(1 for j, o in enumerate(moved) if o + j < k): v for k, v in spans.items()}
        chunks = _split(tokens)
        if len(chunks) > MAX_STATEMENTS:
            flags.add("too-many-statements")
            reason = f"{len(chunks)} statements in one text (the limit is {MAX_STATEMENTS})"
            return _failed(sql, dialect, reason, frozenset(flags))
        stmts: list[StatementInfo] = []
        pieces: list[str] = []
        commands = d.tokenizer_class.COMMANDS
        for chunk in chunks:
            if len(chunk) > 1 and chunk[0].token_type in commands and chunk[1].token_type == TokenType.STRING:
                # the tokenizer keeps an opaque command's arguments as one string: look inside
                rest = chunk[1].text
                inner = tokenize(d, gd, rest)
                stmts.append(statement_info(d, gd, rest, [chunk[0], *inner], parsed_from=chunk, full=text))
                pieces.append(f"{chunk[0].text.upper()} {_normalize(rest, inner)}".strip())
            else:
                stmts.append(statement_info(d, gd, text, chunk))
                pieces.append(_normalize(text, chunk, originals, spans))
        if spans:
            _mark_current_of(stmts, spans, gd)
        normalized = "; ".join(p for p in pieces if p)
        if gd == "mysql" and "\\" in text and other_reading_differs(text, tokens, stmts, statement_info):
            # under NO_BACKSLASH_ESCAPES the server would run something else: needs a person
            stmts = [dataclasses.replace(st, flags=st.flags | {"backslash-quote"}) for st in stmts]
    except RecursionError:
        return _failed(sql, dialect, "statement nested too deeply to analyse", frozenset({*flags, "too-deep"}))
    except SqlglotError as e:
        return _failed(sql, dialect, f"could not parse: {_first_line(e)}", frozenset(flags))
    except Exception as e:  # a gap in the analyser must refuse, never allow
        return _failed(sql, dialect, f"analysis failed ({type(e).__name__}: {_first_line(e)})", frozenset(flags))
    error = next((s.error for s in stmts if s.error), None)
    return Analysis(sql, dialect, tuple(stmts), normalized, error=error, flags=frozenset(flags))



_facts.nested_analyze = analyze  # SQL nested in a string is analysed by the same function

__all__ = ["KINDS", "MAX_ANALYSIS_CHARS", "Analysis", "StatementInfo", "analyze", "sqlglot_dialect"]
