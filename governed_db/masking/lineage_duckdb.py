"""DuckDB's extensions to SQL, as the lineage walk sees them.

* ``#n`` positional columns;
* ``* EXCLUDE (...) REPLACE (expr AS name) RENAME (a AS b)``: a replaced column is an expression, not the
  plain column it is named after (``* REPLACE (reverse(email) AS email)`` must not get e-mail masking);
* ``query('SELECT ...')`` / ``query_table('t')``: SQL in a string, traced like a subquery; SQL built at run
  time makes the statement *blind* (every untraced value in it is masked).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlglot
import sqlglot.errors
from sqlglot import exp

from governed_db.masking.origins import QUERY, Ctes, Origin, Output, Scope, combine

if TYPE_CHECKING:
    from governed_db.masking.lineage import Walker

#: table functions that run SQL given as text
EMBEDDED_SQL = frozenset({"query", "query_table"})


def embedded(w: Walker, call: exp.Anonymous) -> list[tuple[str, Origin]]:
    """DuckDB ``query('SELECT ...')`` / ``query_table('t')``: SQL in a string, traced like a subquery.

    Anything else (SQL computed at run time, text that does not parse) makes the statement *blind*.
    """
    args = call.expressions
    texts = [a.name for a in args if isinstance(a, exp.Literal) and a.is_string]
    if str(call.name).lower() == "query_table" and len(args) == 1 and isinstance(args[0], exp.Array):
        texts = [a.name for a in args[0].expressions if isinstance(a, exp.Literal) and a.is_string]
        args = args[0].expressions
    if not texts or len(texts) != len(args):
        w.lineage.blind = True
        return [("*", Origin("unknown", hint=str(call.name)))]
    try:
        if str(call.name).lower() == "query":
            parsed = [p for p in sqlglot.parse(texts[0], read=w.dialect) if p is not None]
            if len(parsed) != 1 or not isinstance(parsed[0], QUERY):
                raise ValueError("not one query")
            outs, exact = w.query(parsed[0], {}, None)
            if exact:
                return unique_names([(o.name.lower(), o.origin) for o in outs], "duckdb") or []
            every = combine(o.origin for o in outs)
        else:
            tables = [w.table_source(exp.to_table(t, dialect=w.dialect), {}) for t in texts]
            if len(tables) == 1 and tables[0].columns is not None:
                return list(tables[0].columns)
            every = combine(src.whole_row() for src in tables)
    except (sqlglot.errors.SqlglotError, ValueError):
        w.lineage.blind = True
        return [("*", Origin("unknown", hint=str(call.name)))]
    return [("*", Origin("unknown", every.sources, every.rows, str(call.name)))]


#: a name no expression's text can be: the database names a computed output after its text, which never is one
_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_$]*")


def unique_names(columns: list[tuple[str, Origin]] | None, dialect: str) -> list[tuple[str, Origin]] | None:
    """The column names of a subquery or CTE as the database makes them unique, left to right (decision 0376).

    DuckDB gives a name taken before (any case) ``_1``, or the first of ``_2``, ``_3``... not taken so far:
    ``(SELECT city, ssn AS city, city AS city_1)`` has the columns ``city``, ``city_1`` (the SSN) and
    ``city_1_1``. SQLite drops a ``:<digits>`` ending and appends ``:1``, ``:2``... (after four tries a random
    number: a column no name finds). Read by the names as written, ``city_1`` was the clear city, and
    ``WHERE city_1 LIKE '5%'`` counted the SSN. A ``*`` entry (columns the database names) is kept as it is."""
    if dialect not in ("duckdb", "sqlite") or not columns:
        return columns
    taken: set[str] = set()
    out: list[tuple[str, Origin]] = []
    #: the outputs from the first one the database names after its text (``upper(ssn)``, ``CAST(ssn AS
    #: VARCHAR)``, ``'x'``) on: a later alias of that text is renamed ``upper(ssn)_1``, and the ones after it
    #: in turn; a name of that kind (never a plain name: the text has a bracket, a quote, a space, or a digit
    #: first) may be any of them (decision 0377)
    since_unnamed: list[Origin] | None = None
    for name, origin in columns:
        if since_unnamed is not None:
            since_unnamed.append(origin)
        if name == "*":
            out.append((name, origin))
            continue
        if not name:
            since_unnamed = since_unnamed or [origin]
            out.append((name, origin))
            continue
        if not _PLAIN_NAME.fullmatch(name):
            # the parser drops a unary plus: ``+ssn`` is named so by the database, and read as ``ssn`` here
            bare = name.replace("+", "").replace("(", "").replace(")", "").strip()
            alike = [o for n, o in columns[: len(out)] if n == bare]
            if since_unnamed is not None or alike:
                origin = combine([*(since_unnamed or [origin]), *alike])
        unique, tries = name, 0
        while unique in taken:
            tries += 1
            if dialect == "duckdb":
                unique = f"{name}_{tries}"
                continue
            if tries > 4:
                unique = "*"  # a random number: the column the database names so, found by no name
                break
            j = len(unique) - 1
            while j > 0 and unique[j].isdigit():
                j -= 1
            unique = f"{unique[:j] if unique[j] == ':' else unique}:{tries}"
        if unique != "*":
            taken.add(unique)
        out.append((unique, origin))
    return out


def star_modifiers(
    w: Walker, star: exp.Expression, scope: Scope, ctes: Ctes
) -> dict[str, Origin | None] | None:
    """``* EXCLUDE (a) REPLACE (f(b) AS b) RENAME (c AS d)``: name -> new origin (``None``: dropped)."""
    out: dict[str, Origin | None] = {}
    for col in star.args.get("except_") or star.args.get("except") or ():
        out[col.name.lower()] = None
    for alias in star.args.get("replace") or ():
        out[alias.alias_or_name.lower()] = w.expr(alias, scope, ctes)
    for alias in star.args.get("rename") or ():
        if isinstance(alias, exp.Alias):
            old = alias.this.name.lower()
            found = next((o for src in scope.sources for n, o in src.columns or () if n == old), None)
            out[old] = None
            out[alias.alias.lower()] = found if found is not None else Origin("unknown", hint=old)
    return out or None


def expand_columns(w: Walker, proj: exp.Expression, scope: Scope, ctes: Ctes) -> list[Output] | None:
    """DuckDB ``f(COLUMNS(*))`` / ``f(COLUMNS('re'))``: one result column per matched column of the FROM
    clause, named after it, each traced as ``f`` of that one column (``max(COLUMNS(*))`` is ``max(id)``,
    ``max(email)``, ...). Every column is given, whether the pattern matches it or not: the description is
    matched by name. ``None`` (the whole FROM clause, masked) when the names or columns cannot be told: an
    alias (every column gets it), unknown columns, a lambda, a star with REPLACE, RENAME or a qualified EXCLUDE, several patterns, a
    subquery."""
    nodes = list(proj.find_all(exp.Columns))
    if not nodes or isinstance(proj, exp.Alias) or any(proj.find(q) is not None for q in QUERY):
        return None
    arg = nodes[0].this
    excluded = _excluded(arg) if isinstance(arg, exp.Star) else None
    if excluded is None and not (isinstance(arg, exp.Literal) and arg.is_string):
        return None
    if len({n.sql() for n in nodes}) != 1 or any(n.expressions for n in nodes):
        return None
    by_name: dict[str, list[Origin]] = {}
    for src in scope.sources:
        if src.columns is None or (src.columns[:1] and src.columns[0][0] == "*"):
            return None
        for name, _ in src.columns:
            if excluded and name.lower() in excluded:
                continue  # ``* EXCLUDE (ssn)``: no output of it (the description is matched by name)
            one = proj.copy()
            for node in list(one.find_all(exp.Columns)):
                node.replace(exp.column(name, table=src.alias or None, quoted=True))
            by_name.setdefault(name.lower(), []).append(w.expr(one, scope, ctes))
    # the same name in two FROM items: DuckDB names both alike, so each is masked as either could be
    return [Output(n, found[0] if len(found) == 1 else combine(found)) for n, found in by_name.items()]


def _excluded(star: exp.Star) -> frozenset[str] | None:
    """The names ``*`` or ``* EXCLUDE (a, b)`` leaves out (lower case); ``None`` for any other modifier, or an
    excluded name that is qualified (``t.ssn``: which FROM item's it is, is not told here)."""
    if any(v for k, v in star.args.items() if k != "except_"):
        return None
    names = star.args.get("except_") or []
    if not all(isinstance(c, exp.Column) and not c.table and isinstance(c.this, exp.Identifier) for c in names):
        return None
    return frozenset(c.name.lower() for c in names)


#: a regular expression RE2 (DuckDB's) and Python's ``re`` read alike: letters, digits, ``_``, ``-`` and spaces,
#: ``.``, anchors, alternation, plain groups and classes of letters and digits, one quantifier at a time
_SIMPLE_REGEX = re.compile(r"(?:[A-Za-z0-9_\- .^$|()]|\[\^?[A-Za-z0-9_\-]+\]|(?<![*+?(])[*+?])*")


def columns_named(node: exp.Columns) -> Callable[[str], bool] | None:
    """Which column names ``COLUMNS('re')`` / ``COLUMNS(['a', 'b'])`` names, judged over-wide (a name it might
    name counts as named); ``None`` when it cannot be told (a lambda, a star, a pattern not simple enough to be
    read alike by RE2 and Python, a name holding a line break where the two may differ): every column."""
    arg = node.this
    if node.expressions or any(v for k, v in node.args.items() if k != "this"):
        return None
    if isinstance(arg, exp.Lambda):
        return _lambda_named(arg)
    if isinstance(arg, exp.Array) and arg.expressions and all(
        isinstance(e, exp.Literal) and e.is_string for e in arg.expressions
    ):
        names = {str(e.this).lower() for e in arg.expressions}
        return lambda name: name.lower() in names
    if not (isinstance(arg, exp.Literal) and arg.is_string) or not _SIMPLE_REGEX.fullmatch(str(arg.this)):
        return None
    try:
        # DuckDB matches anywhere in the name, case-sensitively: a search ignoring case names no fewer
        pattern = re.compile(str(arg.this), re.IGNORECASE)
    except re.error:
        return None
    return lambda name: "\n" in name or "\r" in name or pattern.search(name) is not None


def _lambda_named(fn: exp.Lambda) -> Callable[[str], bool] | None:
    """``COLUMNS(lambda c: c IN ('id', 'city'))`` / ``c = 'id'``: the names it compares its one parameter with
    (matched ignoring case, over-wide); ``None`` for any other body."""
    params = fn.expressions
    if len(params) != 1 or not isinstance(params[0], exp.Identifier):
        return None
    body = fn.this
    while isinstance(body, exp.Paren):
        body = body.this
    if isinstance(body, exp.In) and not body.args.get("query") and not body.args.get("unnest"):
        subject, values = body.this, body.expressions
    elif isinstance(body, exp.EQ):
        subject, values = body.this, [body.expression]
    else:
        return None
    param = params[0].name.lower()
    if not (isinstance(subject, (exp.Identifier, exp.Column)) and subject.name.lower() == param):
        return None
    if isinstance(subject, exp.Column) and subject.table:
        return None
    if not values or not all(isinstance(v, exp.Literal) and v.is_string for v in values):
        return None
    names = {str(v.this).lower() for v in values}
    return lambda name: name.lower() in names


def positional(node: exp.PositionalColumn, scope: Scope) -> Origin:
    """DuckDB ``#n``: the n-th column of the FROM clause when its columns are known."""
    columns: list[tuple[str, Origin]] = []
    for src in scope.sources:
        if src.columns is None or (src.columns[:1] and src.columns[0][0] == "*"):
            return Origin("unknown", hint=f"#{node.name}")
        columns.extend(src.columns)
    idx = int(node.name) - 1 if node.name.isdigit() else -1
    return columns[idx][1] if 0 <= idx < len(columns) else Origin("unknown", hint=f"#{node.name}")


def modified(columns: list[tuple[str, Origin]], modified: dict[str, Origin | None] | None) -> list[Output]:
    if not modified:
        return [Output(n, o) for n, o in columns]
    out: list[Output] = []
    for n, o in columns:
        new = modified.get(n, o)
        if new is not None:
            out.append(Output(n, new))
    known = {n for n, _ in columns}
    out.extend(Output(n, o) for n, o in modified.items() if o is not None and n not in known)
    return out
