"""Facts about one parsed statement: class, tables, bounded writes, functions, settings.

Everything here reads the sqlglot tree once per kind of fact and never
mutates it. Statements sqlglot only knows as an opaque ``Command`` go to
:mod:`governed_db.sql._commands`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, cast

from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy
from sqlglot.errors import SqlglotError

from governed_db.sql._arrows import json_arrows
from governed_db.sql._commands import classify_words, explain_split, known_form
from governed_db.sql._model import StatementInfo
from governed_db.sql._risks import backslash_quote, duckdb_file_scans, variable_copy
from governed_db.sql._sqlite_reading import tokenize
from governed_db.sql._where import worst_where

_READ = (exp.Query, exp.Values)
_WRITE = (exp.Insert, exp.Update, exp.Delete, exp.Merge)
_DDL = (exp.Create, exp.Drop, exp.Alter, exp.TruncateTable, exp.Comment)
_STATEMENTS = (
    *_READ,
    exp.Pivot,
    *_WRITE,
    *_DDL,
    exp.Grant,
    exp.Revoke,
    exp.Set,
    exp.Use,
    exp.Pragma,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Copy,
    exp.LoadData,
    exp.Describe,
    exp.Show,
    exp.Attach,
    exp.Detach,
    exp.Kill,
)
_OPERATORS = (exp.Binary, exp.Connector, exp.Unary, exp.Paren)


#: the whole analysis of a text (:func:`governed_db.sql.analysis.analyze`), set by that module when it loads: SQL
#: nested in a string (DuckDB ``query('...')``) is analysed like any statement, and this module does not import
#: the module that calls it
nested_analyze: Callable[[str, str], Any] | None = None


def statement_info(
    d: Dialect,
    gd: str,
    text: str,
    tokens: list[Token],
    *,
    parsed_from: list[Token] | None = None,
    full: str | None = None,
) -> StatementInfo:
    """Facts for one statement. ``tokens`` may be a command's re-tokenized arguments (then the parser
    gets the original ``parsed_from`` tokens of the ``full`` text)."""
    marks: frozenset[str] = frozenset()
    if gd == "mysql" and parsed_from is None:
        tokens, marks = _mariadb_clauses(tokens)
    elif gd == "sqlite" and parsed_from is None:
        tokens, marks = _sqlite_update_or(tokens)
    info = _statement_info(d, gd, text, tokens, parsed_from=parsed_from, full=full)
    if marks and info.expression is not None:
        info = dataclasses.replace(info, flags=info.flags | marks)
    if gd == "mysql" and info.kind != "read" and "\\" in text and backslash_quote(text, tokens):
        # MySQL's sql_mode decides whether \' ends the string: the server may run code we read as a literal
        info = dataclasses.replace(info, flags=info.flags | {"backslash-quote"})
    return info




#: SQLite's ``UPDATE OR <resolution>``: the flag each resolution sets (ABORT is the default: no flag)
_UPDATE_OR = {"IGNORE": "or-ignore", "REPLACE": "or-replace", "FAIL": "or-fail", "ROLLBACK": "or-rollback",
              "ABORT": None}  # fmt: skip


def _sqlite_update_or(tokens: list[Token]) -> tuple[list[Token], frozenset[str]]:
    """``tokens`` without the ``OR <resolution>`` of SQLite's ``[WITH ...] UPDATE OR IGNORE|REPLACE|FAIL|ROLLBACK|
    ABORT t ...``, which the parser does not know, and a flag for the resolution (decision 0432). The text keeps it:
    the server reads it as written; what the resolution adds is judged by masking and the write-effect guard."""
    depth = 0
    for i, tok in enumerate(tokens[:-2]):
        kind = tok.token_type
        depth += (kind == TokenType.L_PAREN) - (kind == TokenType.R_PAREN)
        if depth or kind != TokenType.UPDATE:
            continue
        word = tokens[i + 2].text.upper()
        if tokens[i + 1].token_type != TokenType.OR or word not in _UPDATE_OR:
            break
        flag = _UPDATE_OR[word]
        return tokens[: i + 1] + tokens[i + 3 :], frozenset({flag} if flag else ())
    return tokens, frozenset()


def _mariadb_clauses(tokens: list[Token]) -> tuple[list[Token], frozenset[str]]:
    """``tokens`` without the MariaDB clauses the parser does not know, and a flag for each one taken out (decision
    0426): ``UPDATE [LOW_PRIORITY] IGNORE`` (``LOW_PRIORITY`` dropped; ``ignore-errors``: each row's error becomes a warning and the rest
    are still written) and a closing ``LIMIT [n] ROWS EXAMINED m`` (``rows-examined``: the query stops after
    reading ``m`` rows, in whatever order it reads them). The text keeps them: the server reads it as written."""
    marks: set[str] = set()
    words = [t.text.upper() for t in tokens]
    if words[:1] == ["UPDATE"] and words[1:2] == ["LOW_PRIORITY"]:
        # a scheduling hint (only table-locking engines wait on it), which the parser reads as the table's name
        tokens, words = tokens[:1] + tokens[2:], words[:1] + words[2:]
    if words[:1] == ["UPDATE"] and len(tokens) > 1 and tokens[1].token_type == TokenType.IGNORE:
        tokens, words = tokens[:1] + tokens[2:], words[:1] + words[2:]
        marks.add("ignore-errors")
    end = len(tokens) - (tokens[-1].token_type == TokenType.SEMICOLON if tokens else 0)
    if end >= 4 and words[end - 3 : end - 1] == ["ROWS", "EXAMINED"] and tokens[end - 1].token_type == TokenType.NUMBER:
        limit = end - 4 if words[end - 4] == "LIMIT" else end - 5 if words[end - 5 : end - 4] == ["LIMIT"] else None
        depth = sum((t.token_type == TokenType.L_PAREN) - (t.token_type == TokenType.R_PAREN) for t in tokens[:end])
        if limit is not None and depth == 0:
            # ``LIMIT ROWS EXAMINED m`` has no row limit of its own: the LIMIT goes with the clause
            start = limit if limit == end - 4 else end - 3
            tokens = tokens[:start] + tokens[end:]
            marks.add("rows-examined")
    return tokens, frozenset(marks)


def _statement_info(
    d: Dialect,
    gd: str,
    text: str,
    tokens: list[Token],
    *,
    parsed_from: list[Token] | None = None,
    full: str | None = None,
) -> StatementInfo:
    words = [w for t in tokens[:6] for w in t.text.upper().split()][:6]  # some tokens are multi-word
    if words[:1] == ["DECLARE"] and "CURSOR" in words:
        # DECLARE c CURSOR ... FOR <query>: the cursor runs the query; judge the query
        at = next((i for i, t in enumerate(tokens) if t.text.upper() == "FOR" and i > 1), None)
        if at is not None and at + 1 < len(tokens):
            return statement_info(d, gd, text, tokens[at + 1 :])
    if gd == "mysql" and words[:1] == ["DO"] and len(tokens) > 1:
        # MySQL DO evaluates expressions like SELECT without returning them
        sub = "SELECT " + text[tokens[1].start : tokens[-1].end + 1]
        inner = statement_info(d, gd, sub, tokenize(d, gd, sub))
        # keep what the analysis found (a ``@v := (SELECT col ...)`` is a variable copy here as in a SELECT)
        return inner if inner.kind != "read" else dataclasses.replace(inner, operation="DO")
    if words[:1] == ["COPY"] and len(tokens) > 2 and tokens[1].token_type == TokenType.L_PAREN:
        inner_copy = _copy_query(d, gd, text, tokens)
        if inner_copy is not None:
            return inner_copy
    if words[:1] == ["COPY"] and parsed_from is None:
        with_options = _copy_options(text, tokens)
        if with_options is not None:
            return statement_info(d, gd, with_options, tokenize(d, gd, with_options))
    if words[:1] == ["REPLACE"] and gd in ("mysql", "sqlite") and len(tokens) > 1:
        return _replace(d, gd, text, tokens)
    explain = explain_split(words, tokens, gd)
    if explain is not None:
        analyse, rest = explain
        return _explained(d, gd, text, rest, analyse)
    try:
        parsed = d.parser().parse(parsed_from or tokens, full if full is not None else text)
        tree = parsed[0] if parsed else None
        if tree is not None and gd == "duckdb":
            tree = duckdb_spellings(tree, d)
        if tree is not None and gd in _UNIT_AS_EXPRESSION:
            tree = unit_columns(tree, parsed_from or tokens)
        if tree is not None:
            tree = json_arrows(tree, d, gd)
    except SqlglotError as e:
        tree = None
        error: str | None = f"could not parse: {_first_line(e)}"
    else:
        error = None if tree is not None else "empty statement"
    if words and not known_form(words[0], tokens):
        # COMMIT customers, LISTEN AND, DETACH TO x: the server may read it otherwise, or not at all
        return StatementInfo("unknown", words[0], (), (), _as_expression(tree),
                             error=f"{words[0]} in a form governed_db does not know")
    if tree is not None and isinstance(tree, _STATEMENTS) and not isinstance(tree, exp.Command):
        if isinstance(tree, exp.Describe) and isinstance(tree.this, (*_READ, *_WRITE)):
            # ``DESCRIBE <query>`` is judged as ``EXPLAIN <query>`` is: the query's own uses are walked as a
            # read's (a PIVOT, a WHERE on a masked column refused), not counted as copies (decision 0254)
            inner = _from_tree(d, gd, tree.this)
            analyse = str(tree.args.get("style") or "").upper() == "ANALYZE"
            described = _wrap_explain(inner, analyse, inner.expression)
            if gd == "duckdb" and not analyse and described.operation == "EXPLAIN":
                # DuckDB binds the query without running it: its rows are the result's column names and types
                return dataclasses.replace(described, flags=described.flags | {"describe-query"})
            return described
        return _from_tree(d, gd, tree)
    known = classify_words(words, tokens, text, gd)
    if known is not None:
        kind, operation, flags, settings = known
        return StatementInfo(kind, operation, (), (), _as_expression(tree), flags=flags, settings=settings)
    operation = words[0] if words else "UNKNOWN"
    return StatementInfo("unknown", operation, (), (), _as_expression(tree), error=error)


#: DuckDB's column-name filters on a star (``* LIKE 's%'``, ``* SIMILAR TO``, ``* GLOB``; ``* ILIKE`` is the star's own)
_STAR_PATTERNS: tuple[type[exp.Expression], ...] = (exp.Like, exp.ILike, exp.SimilarTo, exp.Glob, exp.RegexpLike)


def _is_star(node: exp.Expression | None) -> bool:
    return isinstance(node, exp.Star) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star))


#: names before a dot that DuckDB reads as the schema (or catalog) of a function, not as a value it is called on
_FUNCTION_SCHEMAS = frozenset({"main", "temp", "system", "memory", "pg_catalog", "information_schema"})


#: dialects whose date functions take their unit as an ordinary argument (``date_trunc(unit, ts)``): a name there
#: is a column, as anywhere else
_UNIT_AS_EXPRESSION = frozenset({"duckdb", "postgres"})
#: date functions whose unit (or time zone) argument the parser turns into a keyword, a bare or quoted name included
_UNIT_NODES: tuple[type[exp.Expression], ...] = tuple(
    c
    for c in (getattr(exp, n, None) for n in ("TimestampTrunc", "DateTrunc", "DatetimeTrunc", "DateDiff",
                                              "TimestampDiff", "DatetimeDiff", "Extract", "DateBin"))
    if c is not None
)  # fmt: skip
_NAME_TOKENS = (TokenType.VAR, TokenType.IDENTIFIER)
_ARGUMENT_START = (TokenType.L_PAREN, TokenType.COMMA)
_ARGUMENT_END = (TokenType.COMMA, TokenType.R_PAREN)


def unit_columns(tree: exp.Expr, tokens: list[Token]) -> exp.Expr:
    """``tree`` with a name given as a date function's unit read as the column it is (DuckDB, PostgreSQL).

    The parser reads ``date_trunc(full_name, now())`` as ``date_trunc('FULL_NAME', now())`` and DuckDB's
    ``time_bucket(width, ts, full_name)`` (a time zone) likewise: a keyword, no column. The database reads the
    column, and its error quotes the value (``extract specifier "Alice Smith" not recognized``, ``Unknown TimeZone
    'Alice Smith'``), so analysis never saw a masked column used where its value steers the call. A name written
    bare or quoted as a whole argument of a call (from the tokens: a string ``'month'`` stays a unit, and so does
    ``month`` in ``extract(month FROM ts)`` or ``INTERVAL 3 DAY``, which are no call arguments) that the parser
    made such a keyword becomes the column again."""
    named: dict[str, exp.Identifier] = {}
    for i in range(1, len(tokens) - 1):
        arg = tokens[i]
        if (
            arg.token_type in _NAME_TOKENS
            and tokens[i - 1].token_type in _ARGUMENT_START
            and tokens[i + 1].token_type in _ARGUMENT_END
        ):
            named[arg.text.upper()] = exp.Identifier(this=arg.text, quoted=arg.token_type == TokenType.IDENTIFIER)
    if not named:
        return tree
    for var in list(tree.find_all(exp.Var)):
        if isinstance(var.parent, _UNIT_NODES) and var.arg_key != "expressions" and var.name.upper() in named:
            column = exp.Column(this=named[var.name.upper()].copy())
            if var is tree:
                return column
            var.replace(column)
    return tree


def duckdb_spellings(tree: exp.Expr, d: Dialect) -> exp.Expr:
    """``tree`` with two DuckDB spellings the parser misreads put as DuckDB reads them (decision 0249).

    A column-name filter on a star (``SELECT * LIKE 's%'``) was a comparison of the star: it is the star. And
    function chaining: ``ssn.upper()`` is ``upper(ssn)``, ``t.ssn.split('-')[1]`` is
    ``split(t.ssn, '-')[1]``. The parser reads ``x.f(...)`` as a dot between an identifier and a call of ``f``
    without ``x``, so analysis saw a function of constants and let ``ssn.starts_with('5')`` through (its value
    unmasked). Each such dot becomes the call with its value as the first argument (re-read, so that a function the
    parser knows gets its own expression); ``main.f(x)`` stays a schema-qualified call (decision 0249)."""
    for pattern in [n for n in tree.find_all(*_STAR_PATTERNS) if _is_star(n.this)]:
        # ``SELECT * LIKE 's%'`` (NOT LIKE, SIMILAR TO, GLOB): the columns whose *names* match, each as it is; the
        # parser read a comparison of the star. Analysis sees the star (its columns are matched by name).
        star: exp.Expression = pattern.this
        target: exp.Expression = pattern.parent if isinstance(pattern.parent, exp.Not) else pattern
        if target is tree:
            return star
        target.replace(star)
    for macro in [n for n in tree.find_all(exp.Anonymous) if _is_histogram_macro(n)]:
        # DuckDB's table macros ``histogram(t, col)`` / ``histogram_values(t, col)`` count the rows of ``t`` by
        # ``col`` (or by bins of it): read as the grouping they run, ``col`` decides rows (decision 0419)
        table = cast(exp.Table, macro.parent)
        query = _histogram_query(macro, d)
        alias = table.args.get("alias")
        if alias is not None:  # without one DuckDB names the call ``unnamed_queryN``: no name of the caller's
            query.set("alias", alias.copy())
        if table is tree:
            return query
        table.replace(query)
    dots = [n for n in tree.find_all(exp.Dot) if isinstance(n.expression, exp.Func)]
    for dot in reversed(dots):  # the innermost first: ``ssn.upper().lower()``
        value = _dotted_value(dot.this)
        if value is None:
            continue
        fn = dot.expression
        name = fn.name if isinstance(fn, exp.Anonymous) else fn.sql_name()
        args = [value.sql(dialect=d), *(a.sql(dialect=d) for a in _call_args(fn))]
        try:
            text = f"SELECT {name}({', '.join(args)})"
            call = d.parser().parse(d.tokenize(text), text)[0]
        except SqlglotError:
            call = None
        rebuilt = call.expressions[0] if isinstance(call, exp.Select) and call.expressions else None
        if rebuilt is None:
            # a call that does not read back: an unknown function of the value (analysis refuses copies into it)
            rebuilt = exp.Anonymous(this=name, expressions=[value, *_call_args(fn)])
        if dot is tree:
            return rebuilt
        dot.replace(rebuilt)
    return tree


#: DuckDB's built-in table macros that group a table's rows by an expression given as an argument
HISTOGRAM_MACROS = frozenset({"histogram", "histogram_values"})


def _is_histogram_macro(call: exp.Anonymous) -> bool:
    return (
        str(call.name).lower() in HISTOGRAM_MACROS
        and isinstance(call.parent, exp.Table)
        and call.arg_key == "this"
        and len(call.expressions) >= 2
    )


def _histogram_query(call: exp.Anonymous, d: Dialect) -> exp.Expression:
    """``histogram(t, col, ...)`` as the query it runs: ``(SELECT col AS bin, count(*) AS count, count(*) AS bar
    FROM t GROUP BY col)`` (``histogram_values`` has no ``bar``). The macro reads ``t`` through
    ``query_table(CAST(t AS VARCHAR))``: a name, or a string naming one; anything else stays a ``query_table()``
    of text computed at run time (nested SQL)."""
    source, column = call.expressions[0], call.expressions[1]
    if (isinstance(source, exp.Column) and not source.args.get("catalog")) or (
        isinstance(source, exp.Literal) and source.is_string
    ):
        name = source.name if isinstance(source, exp.Literal) else source.sql(dialect=d)
        try:
            table: exp.Expression = exp.to_table(name, dialect=d)
        except SqlglotError:
            table = exp.Table(this=exp.Anonymous(this="query_table", expressions=[source.copy()]))
    else:
        table = exp.Table(this=exp.Anonymous(this="query_table", expressions=[source.copy()]))
    outputs: list[exp.Expression] = [] if str(call.name).lower() == "histogram_values" else [
        exp.Alias(this=exp.Count(this=exp.Star()), alias=exp.to_identifier("bar"))
    ]
    select = (
        exp.Select(
            expressions=[
                exp.Alias(this=column.copy(), alias=exp.to_identifier("bin")),
                exp.Alias(this=exp.Count(this=exp.Star()), alias=exp.to_identifier("count")),
                *outputs,
            ]
        )
        .from_(table, copy=False)
        # bin_count := and technique := decide the bins, as the column does
        .group_by(column.copy(), *(_named_value(a).copy() for a in call.expressions[2:]), copy=False)
    )
    return exp.Subquery(this=select)


def _named_value(arg: exp.Expression) -> exp.Expression:
    return arg.expression if isinstance(arg, (exp.PropertyEQ, exp.Kwarg, exp.EQ)) else arg


def _dotted_value(node: exp.Expression) -> exp.Expression | None:
    """What ``node.f()`` is called on: a column for ``ssn`` / ``t.ssn`` / ``s.t.ssn``, the expression itself
    otherwise; ``None`` for a schema name (``main.f(x)``)."""
    if isinstance(node, exp.Paren):
        inner = _dotted_value(node.this)
        return None if inner is None else exp.Paren(this=inner)
    parts: list[exp.Identifier] = []
    probe: exp.Expression = node
    while isinstance(probe, exp.Dot) and isinstance(probe.expression, exp.Identifier):
        parts.insert(0, probe.expression)
        probe = probe.this
    if isinstance(probe, exp.Identifier):
        parts.insert(0, probe)
        if len(parts) == 1 and parts[0].name.lower() in _FUNCTION_SCHEMAS:
            return None
        column, table, db, catalog = [*reversed(parts), None, None, None][:4]
        return exp.Column(this=column, table=table, db=db, catalog=catalog)
    return node if not parts else None


def _call_args(fn: exp.Func) -> list[exp.Expression]:
    """A parsed call's arguments in order (an unknown function keeps them in ``expressions``)."""
    if isinstance(fn, exp.Anonymous):
        return list(fn.expressions)
    out: list[exp.Expression] = []
    for key in fn.arg_types:
        value = fn.args.get(key)
        out.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, exp.Expression))
    return out


def _copy_query(d: Dialect, gd: str, text: str, tokens: list[Token]) -> StatementInfo | None:
    """``COPY (<statement>) TO ...``: PostgreSQL runs the statement inside, DML with RETURNING included."""
    depth, end = 0, -1
    for at in range(1, len(tokens)):
        tt = tokens[at].token_type
        depth += tt == TokenType.L_PAREN
        depth -= tt == TokenType.R_PAREN
        if depth == 0:
            end = at
            break
    if end < 0:
        return None
    inner = statement_info(d, gd, text, tokens[2:end])
    if inner.kind == "read" and not inner.error:
        return None  # COPY (SELECT ...) TO STDOUT: the parser reads it as it is
    rest = [t.text.upper() for t in tokens[end + 1 :]]
    flags = inner.flags | {"copy-dml"}
    if not {"STDOUT", "STDIN"} & set(rest) or "PROGRAM" in rest:
        flags |= {"file-write"} | ({"copy-program"} if "PROGRAM" in rest else set())
    return dataclasses.replace(inner, operation=f"COPY ({inner.operation})", nested_dml=inner.kind == "write",
                               flags=frozenset(flags))


def _copy_options(text: str, tokens: list[Token]) -> str | None:
    """``COPY t TO STDOUT (FORMAT csv)`` with ``WITH`` before the options, which PostgreSQL makes optional and the
    parser needs (it reads ``STDOUT (...)`` as a function call); ``None`` when there is nothing to add."""
    for at in range(2, len(tokens) - 1):
        if (
            tokens[at].text.upper() in ("STDOUT", "STDIN")
            and tokens[at - 1].text.upper() in ("TO", "FROM")
            and tokens[at + 1].token_type == TokenType.L_PAREN
        ):
            paren = tokens[at + 1].start
            return text[tokens[0].start : paren] + "WITH " + text[paren : tokens[-1].end + 1]
    return None


def _replace(d: Dialect, gd: str, text: str, tokens: list[Token]) -> StatementInfo:
    """MySQL/SQLite ``REPLACE INTO``: an INSERT that deletes the rows it collides with; parsed as that INSERT."""
    # (the tokens after REPLACE may come from a re-tokenized command argument: slice by their own offsets)
    sub = "INSERT " + text[tokens[1].start : tokens[-1].end + 1]
    try:
        sub_tokens = tokenize(d, gd, sub)
        parsed = d.parser().parse(sub_tokens, sub)
        tree = parsed[0] if parsed else None
    except SqlglotError as e:
        return StatementInfo("unknown", "REPLACE", (), (), None, error=f"could not parse: {_first_line(e)}")
    if not isinstance(tree, exp.Insert):
        return StatementInfo("unknown", "REPLACE", (), (), None, error="REPLACE in a form governed_db does not know")
    tree.set("alternative", "REPLACE")
    return dataclasses.replace(_from_tree(d, gd, tree), operation="REPLACE")


def _explained(d: Dialect, gd: str, text: str, rest: list[Token], analyse: bool) -> StatementInfo:
    if not rest:
        return StatementInfo("unknown", "EXPLAIN", (), (), None, error="EXPLAIN of nothing")
    inner = statement_info(d, gd, text, rest)
    return _wrap_explain(inner, analyse, inner.expression)


def _wrap_explain(inner: StatementInfo, analyse: bool, tree: exp.Expr | None) -> StatementInfo:
    """EXPLAIN only plans (a read); EXPLAIN ANALYZE *runs* the statement, so it keeps the inner facts."""
    if analyse and inner.kind != "read":
        flags = inner.flags | {"explain-analyze"}
        return StatementInfo(
            inner.kind, inner.operation, inner.tables_read, inner.tables_written, _as_expression(tree), inner.error,
            inner.where, inner.functions, inner.nested_dml, inner.select_into, inner.cascade, inner.star,
            inner.limited, inner.settings, flags, inner.qualifiers,
        )  # fmt: skip
    kind = "read" if inner.kind != "unknown" else "unknown"
    tables = tuple(dict.fromkeys((*inner.tables_read, *inner.tables_written)))
    functions = inner.functions if analyse else frozenset()
    if kind != "read":
        return inner
    # a read that EXPLAIN ANALYZE (MariaDB: ANALYZE SELECT) runs still does what it does: @v := col copies
    flags = inner.flags if analyse else frozenset()
    return StatementInfo(
        "read", "EXPLAIN", tables, (), _as_expression(tree), inner.error, functions=functions, flags=flags
    )  # fmt: skip


def _from_tree(d: Dialect, gd: str, tree: exp.Expr) -> StatementInfo:
    kind, operation, flags, settings = _classify(tree)
    read, written, qualifiers = _tables(d, gd, tree)
    if isinstance(tree, exp.Use) and tree.this is not None:
        qualifiers = (*qualifiers, _fold(tree.this if isinstance(tree.this, exp.Identifier) else tree.this.this,
                                         d.normalization_strategy))
    functions = _functions(tree)
    # a MERGE's own WHEN ... THEN UPDATE/INSERT actions are the MERGE, not DML hidden inside it
    nested = any(n is not tree and not isinstance(n.parent, exp.When) for n in tree.find_all(*_WRITE))
    if nested and kind == "read":
        kind = "write"
    where = worst_where(tree, gd)
    select_into = _select_into(tree)
    cascade = bool(tree.args.get("cascade")) or str(tree.args.get("option") or "").upper() == "CASCADE"
    star = any(isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
               for s in tree.find_all(exp.Select) for p in s.expressions)  # fmt: skip
    limited = isinstance(tree, exp.Query) and (tree.args.get("limit") is not None or tree.args.get("fetch") is not None)
    if gd == "duckdb":
        flags |= duckdb_file_scans(tree)
        embedded = _duckdb_nested(tree)
        if embedded is not None:
            extra_read, extra_functions, extra_flags = embedded
            read = tuple(dict.fromkeys((*read, *extra_read)))
            functions = functions | extra_functions
            flags |= extra_flags
    if gd == "mysql" and variable_copy(tree):
        flags |= {"variable-copy"}
    return StatementInfo(
        kind, operation, read, written, _as_expression(tree), None, where, functions, nested, select_into, cascade, star,
        limited, settings, flags, qualifiers,
    )  # fmt: skip




def _duckdb_nested(tree: exp.Expr) -> tuple[tuple[str, ...], frozenset[str], frozenset[str]] | None:
    """DuckDB ``query('<sql>')`` and ``query_table('<t>')`` run SQL from a string: a literal one is analysed and
    its tables, functions and flags count as the statement's own; one built at run time is ``nested-sql``."""
    analyze = nested_analyze
    calls = [f for f in tree.find_all(exp.Anonymous) if f.name.lower() in ("query", "query_table")]
    if not calls:
        return None
    read: dict[str, None] = {}
    functions: set[str] = set()
    flags: set[str] = set()
    for call in calls:
        args = list(call.expressions)
        first = args[0] if args else None
        if call.name.lower() == "query_table":
            names = list(first.expressions) if isinstance(first, exp.Array) else [first]
            literals = [n for n in names if isinstance(n, exp.Literal) and n.is_string]
            if not names or len(literals) != len(names):
                flags.add("nested-sql")
                continue
            for lit in literals:
                read.setdefault(lit.name.lower(), None)
            continue
        if not (isinstance(first, exp.Literal) and first.is_string) or len(args) != 1:
            flags.add("nested-sql")  # SQL built at run time: nobody can say what it reads or calls
            continue
        if analyze is None:  # the analysis module is not loaded (never the case through it): fail closed
            flags.add("nested-sql")
            continue
        inner = analyze(first.name, "duckdb")
        if inner.error or len(inner.statements) != 1 or inner.statements[0].kind != "read":
            flags.add("nested-sql")
            continue
        st = inner.statements[0]
        read.update(dict.fromkeys(st.tables_read))
        functions |= st.functions
        flags |= st.flags
    return tuple(read), frozenset(functions), frozenset(flags)


def _select_into(tree: exp.Expr) -> bool:
    """SELECT INTO / CREATE TABLE AS into a persistent table (session-private temp tables are not copies out)."""
    if isinstance(tree, exp.Select):
        into = tree.args.get("into")
        if into is None or into.args.get("temporary"):
            return False
        return not (isinstance(into.this, exp.Table) and isinstance(into.this.this, (exp.Parameter, exp.Var)))
    if isinstance(tree, exp.Create) and isinstance(tree.args.get("expression"), exp.Query):
        props = tree.args.get("properties")
        return not (props is not None and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions))
    return False


def _classify(tree: exp.Expr) -> tuple[str, str, frozenset[str], tuple[tuple[str, str, bool], ...]]:
    flags: set[str] = set()
    settings: tuple[tuple[str, str, bool], ...] = ()
    if isinstance(tree, _READ):
        kind, op = ("write" if isinstance(tree, exp.Select) and tree.args.get("into") else "read"), "SELECT"
        if isinstance(tree, exp.Values):
            op = "VALUES"
    elif isinstance(tree, exp.Merge):
        kind, op = "write", "MERGE"
    elif isinstance(tree, _WRITE):
        kind, op = "write", tree.key.upper()
    elif isinstance(tree, (exp.Create, exp.Drop)):
        what = str(tree.args.get("kind") or "").upper()
        kind, op = "ddl", f"{tree.key.upper()} {what}".strip()
        if what in ("FUNCTION", "PROCEDURE", "TRIGGER", "EVENT", "RULE") and isinstance(tree, exp.Create):
            flags.add("stored-code")
        if what in ("USER", "ROLE", "GROUP"):
            kind = "privilege"
            flags.add("user-management")
        if isinstance(tree, exp.Drop):
            flags.add("drop")
        if isinstance(tree, exp.Create) and tree.args.get("replace") and what == "TABLE":
            flags.add("drop")  # CREATE OR REPLACE TABLE drops the table it replaces, rows and all
            op = "CREATE OR REPLACE TABLE"
        props = tree.args.get("properties")
        if tree.args.get("temporary") or (
            props is not None and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions)
        ):
            flags.add("temporary")  # session-private: gone when the connection closes
    elif isinstance(tree, exp.TruncateTable):
        kind, op = "ddl", "TRUNCATE"
        flags.add("truncate")
    elif isinstance(tree, exp.Alter):
        kind, op = "ddl", f"ALTER {str(tree.args.get('kind') or '').upper()}".strip()
        actions = tree.args.get("actions") or ()
        if any(isinstance(a, (exp.Drop, exp.DropPrimaryKey, exp.DropPartition)) for a in actions):
            flags.add("destructive-alter")
        if any(_rewrites(a) for a in (*actions, *(tree.args.get("options") or ()))):
            flags.add("schema-rewrite")
    elif isinstance(tree, _DDL):
        kind, op = "ddl", tree.key.upper()
    elif isinstance(tree, (exp.Grant, exp.Revoke)):
        kind, op = "privilege", tree.key.upper()
    elif isinstance(tree, exp.Set):
        kind, op = "session", "SET"
        settings = tuple(_set_items(tree))
        if any(name == "password" for name, _, _ in settings):
            kind, op = "privilege", "SET PASSWORD"
            flags.add("user-management")
    elif isinstance(tree, exp.Use):
        kind, op = "session", "USE"
        flags.add("use-database")
    elif isinstance(tree, exp.Pragma):
        kind, op, settings = _pragma(tree)
        if _integrity_off(tree):
            flags.add("integrity-off")
    elif isinstance(tree, (exp.Transaction, exp.Commit, exp.Rollback)):
        kind, op = "transaction", {"transaction": "BEGIN"}.get(tree.key, tree.key.upper())
        if isinstance(tree, exp.Transaction) and any(_read_write(str(m)) for m in tree.args.get("modes") or ()):
            # BEGIN READ WRITE overrides a read-only session the application set up: a settings write
            settings = (("transaction_read_only", "transaction", True),)
        if isinstance(tree, exp.Transaction) and str(tree.args.get("this") or "").upper() in ("EXCLUSIVE", "IMMEDIATE"):
            flags.add("row-lock")  # SQLite BEGIN EXCLUSIVE/IMMEDIATE takes the write lock at once
    elif isinstance(tree, exp.Copy):
        kind, op = _copy(tree, flags)
    elif isinstance(tree, exp.LoadData):
        kind, op = "file", "LOAD DATA"
        flags.add("file-read")
    elif isinstance(tree, (exp.Describe, exp.Show)):
        kind, op = "read", ("DESCRIBE" if isinstance(tree, exp.Describe) else "SHOW")
    elif isinstance(tree, exp.Pivot):
        # DuckDB's statement form (``[WITH ...] PIVOT t ON c USING agg``): a query (decision 0235)
        kind, op = "read", ("UNPIVOT" if tree.args.get("unpivot") else "PIVOT")
    elif isinstance(tree, exp.Attach):
        kind, op = "file", "ATTACH"
        flags.add("attach")
    elif isinstance(tree, exp.Detach):
        kind, op = "session", "DETACH"
    elif isinstance(tree, exp.Kill):
        kind, op = "admin", "KILL"
        flags.add("server-control")
    else:  # pragma: no cover - _STATEMENTS and the branches above list the same classes
        kind, op = "unknown", tree.key.upper()
    if isinstance(tree, exp.Select) and isinstance(tree.args.get("into"), exp.Into):
        op = "SELECT INTO"
    if isinstance(tree, exp.Query) and any(s.args.get("locks") for s in tree.find_all(exp.Select)):
        flags.add("row-lock")  # SELECT ... FOR UPDATE / LOCK IN SHARE MODE: a write lock, not a plain read
    return kind, op, frozenset(flags), settings


def _integrity_off(tree: exp.Pragma) -> bool:
    """SQLite ``PRAGMA foreign_keys = OFF`` (or ``(0)``, ``false``, ``no``): foreign keys stop being enforced."""
    node = tree.this
    if isinstance(node, exp.EQ):
        name, value = node.this, node.expression
    elif isinstance(node, exp.Anonymous) and node.expressions:
        name, value = node, node.expressions[0]
    else:
        return False
    label = (name.name if isinstance(name, exp.Expr) else str(name)).lower().rsplit(".", 1)[-1]
    if isinstance(value, exp.Boolean):
        return label == "foreign_keys" and not value.this
    text = (value.name if isinstance(value, exp.Expr) else str(value)).strip("'\"").lower()
    return label == "foreign_keys" and text in ("off", "0", "false", "no")


def _set_items(tree: exp.Set) -> list[tuple[str, str, bool]]:
    out = []
    for item in tree.expressions:
        scope = str(item.args.get("kind") or "session").lower()
        target = item.this
        if scope in ("names", "character set", "charset"):
            out.append((scope, "session", True))
            continue
        if scope == "transaction":
            modes = " ".join(str(m.sql()) for m in item.expressions)
            out.append(("transaction_read_only" if _read_write(modes) else "transaction", "transaction", True))
            continue
        value = target.expression if isinstance(target, exp.EQ) else None
        if isinstance(target, exp.EQ):
            target = target.this
        if isinstance(target, exp.SessionParameter):
            name, scope = target.name.lower(), str(target.args.get("kind") or "session").lower()
        elif isinstance(target, exp.Parameter) or (isinstance(target, exp.Column) and target.name.startswith("@")):
            name, scope = target.sql().lower(), "user"
        elif isinstance(target, (exp.Column, exp.Identifier, exp.Var, exp.Dot)):
            name = target.sql().lower().replace('"', "").replace("`", "")
        else:
            name = (target.sql() if target is not None else "?").lower()
        out.append((_lowered_cut(name, value), scope, True))
    return out


#: MariaDB/MySQL's default ``group_concat_max_len``: applications raise it routinely (a harmless setting)
_GROUP_CONCAT_DEFAULT = 1_048_576


def _lowered_cut(name: str, value: exp.Expression | None) -> str:
    """``group_concat_max_len`` set below its default is another setting: a short cut makes
    ``GROUP_CONCAT(ssn)`` of one row warn exactly when the masked value is longer than the limit (a length
    oracle), so only raising it (or DEFAULT) stays among the settings drivers set routinely."""
    if name.rsplit(".", 1)[-1].lstrip("@") != "group_concat_max_len":
        return name
    if isinstance(value, exp.Var) and value.name.upper() == "DEFAULT":
        return name
    raised = isinstance(value, exp.Literal) and not value.is_string and value.name.isdigit()
    if raised and value is not None and int(value.name) >= _GROUP_CONCAT_DEFAULT:
        return name
    return f"{name} (lowered)"


def _read_write(modes: str) -> bool:
    return " ".join(modes.upper().split()).find("READ WRITE") >= 0


def _rewrites(action: exp.Expr) -> bool:
    """Renames (which defeat name-based masking and break callers), type changes (``USING`` can rewrite
    every value; a narrower type truncates) and engine changes (MySQL ``ENGINE=BLACKHOLE`` discards rows)."""
    if isinstance(action, (exp.RenameColumn, exp.AlterRename, exp.ModifyColumn, exp.EngineProperty)):
        return True
    return isinstance(action, exp.AlterColumn) and action.args.get("dtype") is not None


def _pragma(tree: exp.Pragma) -> tuple[str, str, tuple[tuple[str, str, bool], ...]]:
    from governed_db.sql._commands import ACTION_PRAGMAS, PERSISTENT_PRAGMAS, READ_PRAGMAS

    node = tree.this
    write = False
    if isinstance(node, exp.EQ):
        write, node = True, node.this
    name_node = node.this if isinstance(node, exp.Anonymous) else node
    if isinstance(node, exp.Anonymous):
        name = str(node.this)
        write = name.lower().rsplit(".", 1)[-1] not in READ_PRAGMAS  # PRAGMA x(v) is PRAGMA x = v
    else:
        name = name_node.sql() if isinstance(name_node, exp.Expr) else str(name_node)
    name = name.lower().rsplit(".", 1)[-1]
    if name in READ_PRAGMAS:
        write = False
    if name in ACTION_PRAGMAS:
        write = True
    kind = ("write" if name in PERSISTENT_PRAGMAS else "session") if write else "read"
    return kind, "PRAGMA", ((name, "pragma", write),)


def _copy(tree: exp.Copy, flags: set[str]) -> tuple[str, str]:
    files = [f.name.upper() if isinstance(f, exp.Identifier) else "FILE" for f in tree.args.get("files") or ()]
    from_ = bool(tree.args.get("kind"))
    if "PROGRAM" in files:
        flags.add("copy-program")
    if any(f not in ("STDIN", "STDOUT") for f in files):
        flags.add("file-read" if from_ else "file-write")
        return "file", "COPY"
    return ("write" if from_ else "read"), "COPY"


def _fold(ident: exp.Expr | None, strategy: NormalizationStrategy) -> str:
    if ident is None:
        return ""
    name = ident.name
    if strategy == NormalizationStrategy.CASE_INSENSITIVE:
        return name.lower()
    if strategy == NormalizationStrategy.CASE_SENSITIVE or (isinstance(ident, exp.Identifier) and ident.quoted):
        return name
    return name.upper() if strategy == NormalizationStrategy.UPPERCASE else name.lower()


def _table_name(t: exp.Table, strategy: NormalizationStrategy) -> str:
    parts = [_fold(p, strategy) for p in (t.args.get("catalog"), t.args.get("db"), t.this) if p is not None]
    return ".".join(p for p in parts if p)


def _targets(tree: exp.Expr) -> list[exp.Table]:
    out: list[exp.Table] = []
    for w in (tree, *tree.find_all(*_WRITE, exp.Into)):
        if isinstance(w, exp.Drop):
            cands = list(w.args.get("tables") or ()) or [w.this]
        elif isinstance(w, exp.TruncateTable):
            cands = list(w.expressions)
        elif isinstance(w, exp.Delete) and w.args.get("tables"):
            cands = _delete_list(w)
        elif isinstance(w, exp.Copy):
            cands = [w.this] if w.args.get("kind") else []
        elif isinstance(w, (*_WRITE, *_DDL, exp.Into)):
            cands = [w.this]
        else:
            continue
        for c in cands:
            if isinstance(c, exp.Schema):
                c = c.this
            if isinstance(c, exp.Table) and isinstance(c.this, exp.Identifier):
                out.append(c)
    return out


def _delete_list(node: exp.Delete) -> list[exp.Expr]:
    """The tables a MySQL ``DELETE s, o FROM scratch s JOIN other o`` changes: a name in the list is an alias of
    a table in FROM when one has it (kept as written otherwise, so an unknown name still fails closed)."""
    target = node.this
    sources = [target, *(j.this for j in target.args.get("joins") or ())] if isinstance(target, exp.Table) else []
    tables = [s for s in sources if isinstance(s, exp.Table) and isinstance(s.this, exp.Identifier)]
    out: list[exp.Expr] = []
    for named in node.args["tables"]:
        key = named.name.lower() if isinstance(named, exp.Table) and not named.args.get("db") else None
        by_alias = [s for s in tables if key and s.alias and s.alias.lower() == key]
        out.append(by_alias[0] if len(by_alias) == 1 else named)
    return out


def _delete_names(tree: exp.Expr) -> set[int]:
    """The entries of MySQL ``DELETE <list> FROM ...`` lists: names of targets, not tables read."""
    return {id(t) for d in tree.find_all(exp.Delete) for t in d.args.get("tables") or ()}


def _tables(d: Dialect, gd: str, tree: exp.Expr) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    strategy = d.normalization_strategy
    ctes = {_fold(c.args.get("alias") and c.args["alias"].this, strategy) for c in tree.find_all(exp.CTE)}
    targets = _targets(tree)
    target_ids = {id(t) for t in targets} | _delete_names(tree)
    written = dict.fromkeys(_table_name(t, strategy) for t in targets)
    read: dict[str, None] = {}
    qualifiers: dict[str, None] = {}
    for t in tree.find_all(exp.Table):
        if not isinstance(t.this, exp.Identifier):
            continue  # a table function: recorded with the functions
        # the qualifier naming a *database*: MySQL db.t, SQLite attached.t; PostgreSQL/DuckDB catalog.schema.t
        qual = t.args.get("db") if gd in ("mysql", "sqlite") else t.args.get("catalog")
        if qual is not None and not (gd == "sqlite" and qual.name.lower() in ("main", "temp")):
            qualifiers.setdefault(_fold(qual, strategy), None)
        if id(t) in target_ids:
            continue
        name = _table_name(t, strategy)
        if name and name not in written and not (name in ctes and not t.args.get("db")):
            read.setdefault(name, None)
    return tuple(read), tuple(written), tuple(qualifiers)


def _functions(tree: exp.Expr) -> frozenset[str]:
    """Function names, unquoted and case-folded: ``"pg_read_file"(...)`` and `` `load_file`(...) `` are the
    built-ins (folding a quoted PostgreSQL name can only over-match, never miss)."""
    names: set[str] = set()
    for f in tree.find_all(exp.Func):
        if isinstance(f, exp.Anonymous):
            names.add(f.name.lower() if isinstance(f.this, exp.Identifier) else str(f.this).strip('"`[]').lower())
        elif not isinstance(f, _OPERATORS):
            names.add(f.sql_name().lower())
    return frozenset(names)


def _as_expression(tree: exp.Expr | None) -> exp.Expression | None:
    return cast("exp.Expression | None", tree)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__
