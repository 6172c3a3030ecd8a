"""The application's own functions, which a statement or a view calls, read what their bodies name (decisions 0393,
0397).

A function masking does not know is judged by its arguments (copied) and its result (checked as it passes). Its
body is the application's: ``CREATE FUNCTION is_vip(i int) RETURNS boolean AS $$ SELECT ssn LIKE '5%' FROM
customers WHERE id = i $$`` reads a masked column of a row the caller chose, and ``SELECT id FROM customers WHERE
is_vip(id)`` (or a view ``WHERE is_vip(id)``) returned row 1 exactly when its SSN started with 5; a DuckDB table
macro (``FROM picked()``) or macro, and a MySQL/MariaDB stored function, alike.

This is the one judge of the application's code (PostgreSQL functions of any language, DuckDB macros, MySQL/MariaDB
stored functions): a call of one is refused when its body, or the body of a function it calls (followed
:data:`FUNCTION_DEPTH` calls deep; deeper fails closed), names a table or view with columns masked for the
identity, builds statements at run time, or cannot be read. A body's words inside string literals, and its
parameters and declared variables (outside a place a relation goes), name no relation. Bodies are read once per
name and kept no longer than the catalog comparison of decision 0392.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from governed_db.masking import stored_code
from governed_db.masking.catalog import table_key
from governed_db.masking.schema import _rows, family, guarded

#: how many calls deep a function's callees are followed (f calls g calls h...); an application function deeper
#: than that is judged as unreadable
FUNCTION_DEPTH = 4

_PG_BODIES = (
    "SELECT CASE WHEN p.prokind = 'a' THEN 'pseudo' ELSE l.lanname::text END, CASE WHEN p.prokind = 'a' THEN (SELECT concat_ws(' ', a.aggtransfn::regproc::text "
    "|| '()', nullif(a.aggfinalfn::oid, 0)::regproc::text || '()', nullif(a.aggcombinefn::oid, 0)::regproc::text "
    "|| '()') FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid = p.oid) WHEN coalesce(p.prosrc, '') = '' "
    "THEN pg_catalog.pg_get_functiondef(p.oid) ELSE p.prosrc END, coalesce(array_to_string(p.proargnames, ' '), '') "
    "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
    "JOIN pg_catalog.pg_language l ON l.oid = p.prolang "
    "WHERE lower(p.proname) = lower(%s) AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
)
_MYSQL_BODIES = (
    "SELECT 'sql', ROUTINE_DEFINITION, '' FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION' "
    "AND ROUTINE_NAME = %s"
)
#: what a cast to a PostgreSQL type runs: its cast functions (as calls) and, for a domain, its CHECKs
_PSEUDO_TYPE = "::"
_PG_TYPE_CODE = (
    "SELECT 'pseudo', concat_ws(' ', (SELECT string_agg(c.castfunc::regproc::text || '()', ' ') "
    "FROM pg_catalog.pg_cast c WHERE c.casttarget = t.oid AND c.castfunc <> 0), (SELECT "
    "string_agg(pg_catalog.pg_get_constraintdef(k.oid), ' ') FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid)), "
    "'' FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
    "WHERE t.oid = to_regtype(%s) AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
)
#: what ``OPERATOR(s.op)`` runs: the functions of the application's operators of that name
_PSEUDO_OPERATOR = "operator:"
_PG_OPERATOR_CODE = (
    "SELECT 'pseudo', string_agg(o.oprcode::regproc::text || '()', ' '), '' FROM pg_catalog.pg_operator o "
    "JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace WHERE o.oprname = %s "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') HAVING count(*) > 0"
)
#: DuckDB's own functions answer too (``internal``): a name with no row at all is unlisted (see :class:`Body`)
_DUCKDB_BODIES = (
    "SELECT CASE WHEN internal THEN 'internal' WHEN function_type IN ('macro', 'table_macro') THEN 'sql' "
    "ELSE 'c' END, macro_definition, array_to_string(parameters, ' ') FROM duckdb_functions() "
    "WHERE lower(function_name) = lower(?)"
)
_NAME_WORD = re.compile(r"[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?")
_WORD = re.compile(r"[A-Za-z_][\w$]*")
#: which of some words name a function of the application's (PostgreSQL: one text, the async replay keys by it)
_PG_NAMED_FUNCTIONS = (
    "SELECT DISTINCT lower(p.proname::text) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
    "ON n.oid = p.pronamespace WHERE lower(p.proname::text) = ANY (string_to_array(%s, chr(31))) "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
)
_MYSQL_NAMED_FUNCTIONS = (
    "SELECT DISTINCT lower(ROUTINE_NAME) FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION' "
    "AND lower(ROUTINE_NAME) IN ({})"
)
_DUCKDB_NAMED_FUNCTIONS = (
    "SELECT DISTINCT lower(function_name) FROM duckdb_functions() WHERE NOT internal "
    "AND function_type IN ('macro', 'table_macro') AND lower(function_name) IN ({})"
)
#: languages whose code names no table (compiled code: an extension's C)
_COMPILED = frozenset({"c", "internal"})
#: languages whose string literals are data, not code (elsewhere, plpython's ``plpy.execute('...')``, they run)
_SQL_LANGUAGES = frozenset({"sql", "plpgsql", "pseudo"})
#: DuckDB functions that run a query given as text: a body using one names tables nobody can read from its text
_DUCKDB_DYNAMIC = frozenset({"query", "query_table"})
#: PL/pgSQL's declarations (``DECLARE n int; total numeric := 0; BEGIN``) and MySQL's (``DECLARE a, b INT``)
_DECLARE_BLOCK = re.compile(r"\bDECLARE\b(.*?)\bBEGIN\b", re.IGNORECASE | re.DOTALL)
_DECLARED = re.compile(r"(?:^|;)\s*([A-Za-z_][\w$]*)\s", re.DOTALL)
_MYSQL_DECLARED = re.compile(r"\bDECLARE\s+((?:[A-Za-z_][\w$]*\s*,\s*)*[A-Za-z_][\w$]*)\s", re.IGNORECASE)
#: a string literal as the tokenizer spans it: a quote, after an optional prefix (``E'``, ``U&'``, ``N'``...)
_QUOTED = re.compile(r"^[A-Za-z&]{0,2}(['\"]).*\1$", re.DOTALL)


@dataclass(frozen=True)
class Body:
    """What the application's functions of one name read: the relations their definitions name (table keys) and the
    names of the functions they call. ``defined`` is false for a name that is no function of the application's;
    ``unlisted`` (DuckDB) for a name the catalog does not list at all, a temporary macro of the wrapped connection
    or a Python function, whose reads only a call of it can tell."""

    relations: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    defined: bool = False
    unlisted: bool = False


def called(tree: exp.Expression) -> set[str]:
    """The names (lower case) of the functions ``tree`` calls that masking does not know (sqlglot's anonymous
    calls, qualified or not, a table function's among them); ``pg_catalog.f(...)`` is the server's own. A cast to
    a type of the application's counts as a call ``::type`` (its cast function, a domain's CHECK), and
    ``OPERATOR(s.op)`` as ``operator:op`` (its function): PostgreSQL runs them on the statement's values."""
    names = {
        str(n.name).lower() for n in tree.find_all(exp.Anonymous)
        if n.name and not (isinstance(n.parent, exp.Dot) and n.parent.this.name.lower() == "pg_catalog")
    }  # fmt: skip
    for node in tree.find_all(exp.DataType):
        if node.this == exp.DataType.Type.USERDEFINED and node.args.get("kind") is not None:
            names.add(f"{_PSEUDO_TYPE}{node.args['kind'].sql(dialect='postgres').lower()}")
    for op in tree.find_all(exp.Operator):
        names.add(f"{_PSEUDO_OPERATOR}{str(op.args.get('operator') or '').rsplit('.', 1)[-1]}")
    return names


def describe(name: str) -> str:
    """How a refusal names what ``name`` (from :func:`called`) stands for."""
    if name.startswith(_PSEUDO_TYPE):
        return f"the cast to type {name.removeprefix(_PSEUDO_TYPE)} (its cast functions and CHECKs)"
    if name.startswith(_PSEUDO_OPERATOR):
        return f"the operator {name.removeprefix(_PSEUDO_OPERATOR)} (its function)"
    return f"the application's function {name}"


def read_body(conn: Any, dialect: str, name: str) -> Body | None:
    """What the application's functions called ``name`` read (see :class:`Body`); ``None`` when a definition cannot
    be read or builds statements at run time."""
    fam = family(dialect)
    if fam is None or fam == "sqlite":
        return Body()
    found = guarded(conn, dialect, lambda cur: (body_on(cur, fam, name),))
    return None if found is None else found[0]


def body_on(cur: Any, fam: str, name: str) -> Body | None:
    """:func:`read_body` on a cursor of the catalog (``fam``: ``postgres``, ``mysql`` or ``duckdb``)."""
    pseudo = name.startswith((_PSEUDO_TYPE, _PSEUDO_OPERATOR))
    if pseudo and fam != "postgres":
        return Body()
    if pseudo:
        typed = name.startswith(_PSEUDO_TYPE)
        sql = _PG_TYPE_CODE if typed else _PG_OPERATOR_CODE
        name = name.removeprefix(_PSEUDO_TYPE if typed else _PSEUDO_OPERATOR)
    else:
        sql = {"postgres": _PG_BODIES, "mysql": _MYSQL_BODIES}.get(fam, _DUCKDB_BODIES)
    rows = _rows(cur, sql, (name,))
    if not rows:
        return Body(unlisted=fam == "duckdb")
    words: set[str] = set()
    texts: list[str] = []
    defined = False
    for language, text, params in rows:
        language = str(language).lower()
        if language == "internal" and fam == "duckdb":
            continue  # DuckDB's own
        defined = True
        if language in _COMPILED:
            continue
        body = str(text or "")
        if not body and language == "pseudo":
            continue  # a type without cast functions or CHECKs
        if not body or stored_code.runs_built_statements(body):
            return None  # hidden (MySQL without the privilege) or built at run time
        code = _without_strings(body, fam) if language in _SQL_LANGUAGES else body
        found = stored_code.named_relations(code, fam)
        if found is None or (fam == "duckdb" and _DUCKDB_DYNAMIC & set(found)):
            return None
        local = _local_names(code, str(params or ""))
        words.update(w for w in found if _NAME_WORD.fullmatch(w) and (w not in local or _placed(code, w)))
        texts.append(code)
    if not defined:
        return Body()
    calls = set(calls_in(cur, fam, "\n".join(texts)))
    return Body(_existing(cur, fam, sorted(words)), tuple(sorted(calls - {name.lower()})), defined=True)


def calls_in(cur: Any, fam: str, code: str) -> list[str]:
    """The lower-case words of ``code`` that name a function of the application's (one catalog read): what it
    may call, however the call is spelled (a comment before its parenthesis, a quoted name)."""
    words = sorted({w.lower() for w in _WORD.findall(code)})
    if not words:
        return []
    if fam == "postgres":
        sql, params = _PG_NAMED_FUNCTIONS, ("\x1f".join(words),)
    else:
        marks = ", ".join(["%s" if fam == "mysql" else "?"] * len(words))
        sql, params = (
            (_MYSQL_NAMED_FUNCTIONS if fam == "mysql" else _DUCKDB_NAMED_FUNCTIONS).format(marks),
            tuple(words),
        )
    return sorted(str(r[0]) for r in _rows(cur, sql, params))


def _without_strings(body: str, fam: str) -> str:
    """``body`` with its string literals emptied: their words are data (a body that runs text as a statement is
    refused apart, :func:`stored_code.runs_built_statements`). Dollar-quoted strings are kept (a nested body)."""
    try:
        tokens = Dialect.get_or_raise(fam).tokenize(body)
    except Exception:
        return body
    out, at = [], 0
    for token in tokens:
        if token.token_type.name not in ("STRING", "BYTE_STRING", "UNICODE_STRING", "NATIONAL_STRING"):
            continue
        span = body[token.start : token.end + 1]
        if token.start < at or not _QUOTED.match(span):
            continue  # not a literal as written (sqlglot reads PL/pgSQL's DECLARE as a command's text)
        out += [body[at : token.start], "''"]
        at = token.end + 1
    return "".join(out) + body[at:]


def _local_names(code: str, params: str) -> set[str]:
    """The lower-case names of a body's parameters and declared variables."""
    names = {p.lower() for p in params.split()}
    for block in _DECLARE_BLOCK.findall(code):
        names.update(m.lower() for m in _DECLARED.findall(";" + block))
    for group in _MYSQL_DECLARED.findall(code):
        names.update(n.strip().lower() for n in group.split(","))
    return names


def _placed(code: str, word: str) -> bool:
    """Does ``word`` (a parameter's or variable's name) stand where a relation goes somewhere in ``code`` (after
    FROM, JOIN, UPDATE, INTO, TABLE, ONLY, USING or a comma of a FROM list, qualified or not)?"""
    last = re.escape(word.rsplit(".", 1)[-1])
    pattern = (
        r"(?:\bFROM|\bJOIN|\bUPDATE|\bINTO|\bTABLE|\bONLY|\bUSING|\bCOPY|\bLATERAL|\bFROM\s[^;()]*,)\s*\(?\s*"
        rf"(?:\"?[\w$]+\"?\s*\.\s*)*\"?{last}\"?(?![\w$])"
    )
    return re.search(pattern, code, re.IGNORECASE) is not None


def _existing(cur: Any, fam: str, words: list[str]) -> tuple[str, ...]:
    """The words that name a table or view, as table keys."""
    if not words:
        return ()
    if fam == "postgres":
        values = ", ".join(["(%s)"] * len(words))
        rows = _rows(
            cur,
            f"SELECT DISTINCT c.oid::regclass::text FROM (VALUES {values}) AS u(n) JOIN pg_catalog.pg_class c "
            "ON c.oid = to_regclass(u.n) WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')",
            tuple(words),
        )
        return tuple(sorted(table_key(str(r[0])) for r in rows))
    last = sorted({w.rsplit(".", 1)[-1] for w in words})
    marks = ", ".join(["%s" if fam == "mysql" else "?"] * len(last))
    if fam == "mysql":
        rows = _rows(
            cur,
            f"SELECT DISTINCT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            f"AND TABLE_NAME IN ({marks})",
            tuple(last),
        )
    else:
        rows = _rows(
            cur,
            f"SELECT table_name FROM duckdb_tables() WHERE lower(table_name) IN ({marks}) UNION "
            f"SELECT view_name FROM duckdb_views() WHERE NOT internal AND lower(view_name) IN ({marks})",
            (*last, *last),
        )
    return tuple(sorted(table_key(str(r[0])) for r in rows))


def reached(lookup: Callable[[str], Body | None], name: str) -> tuple[tuple[str, ...], bool] | None:
    """The relations the function ``name`` reads, and those of the functions it calls (:data:`FUNCTION_DEPTH`
    calls deep), with whether ``name`` is unlisted; ``None`` when one cannot be read, or an application function
    lies deeper."""
    first = lookup(name)
    if first is None:
        return None
    relations, seen, frontier = set(first.relations), {name}, list(first.calls)
    for depth in range(FUNCTION_DEPTH + 1):
        inner: list[str] = []
        for callee in frontier:
            if callee in seen:
                continue
            seen.add(callee)
            body = lookup(callee)
            if body is None or (body.defined and depth == FUNCTION_DEPTH):
                return None
            relations.update(body.relations)
            inner += body.calls
        frontier = inner
        if not frontier:
            break
    return tuple(sorted(relations)), first.unlisted


def unread(cache: dict[str, Body | None], names: Iterable[str]) -> list[str]:
    """The names :func:`reached` would look up beyond ``cache`` for ``names`` (read them, then ask again)."""
    missing: list[str] = []

    def lookup(n: str) -> Body | None:
        if n in cache:
            return cache[n]
        missing.append(n)
        return Body()

    for name in names:
        reached(lookup, name)
    return sorted(set(missing))


def relations_reached(cur: Any, fam: str, names: Iterable[str]) -> tuple[str, ...] | None:
    """On a catalog cursor, without memo: the relations the functions ``names`` read, transitively (``None``: one
    cannot be told); for code the catalog runs where a table is written (a default, a check, a trigger)."""
    bodies: dict[str, Body | None] = {}

    def lookup(n: str) -> Body | None:
        if n not in bodies:
            bodies[n] = body_on(cur, fam, n)
        return bodies[n]

    out: set[str] = set()
    for name in sorted(set(names)):
        found = reached(lookup, name)
        if found is None:
            return None
        out.update(found[0])
    return tuple(sorted(out))


def pg_reach(cur: Any, code: str) -> tuple[str, ...] | None:
    """PostgreSQL (``schema.Reach``): the relations the application's functions ``code`` names read, transitively."""
    calls = calls_in(cur, "postgres", code)
    return relations_reached(cur, "postgres", calls) if calls else ()


def masked_reads(
    state: Any, access: Any, names: Iterable[str], probe: Callable[[str], Iterable[str] | None] | None = None
) -> tuple[str, list[str]] | None:
    """The first of the functions ``names`` whose definition, or that of a function it calls, reads a relation with
    columns masked for the identity (and those relations; none when it cannot be told), or ``None``. ``probe``
    tells the tables a call of an unlisted name reads (``None``: it cannot)."""
    cache: dict[str, Body | None] = state.function_reads
    conn = None

    def lookup(n: str) -> Body | None:
        nonlocal conn
        if n in cache:
            return cache[n]
        if conn is None:
            conn = state.gov.driver.catalog_connection(state.gov)
        misses = getattr(conn, "misses", 0)
        body = read_body(conn, state.dialect, n)
        if getattr(conn, "misses", 0) == misses:
            if len(cache) > 1024:
                cache.clear()
            cache[n] = body  # (not a read an async connection's warm-up did not do)
        return body

    for name in sorted(names):
        found = reached(lookup, name)
        tables = None if found is None or not found[1] else (probe(name) if probe is not None else None)
        if found is None or (found[1] and tables is None):
            return name, []
        reads = {*found[0], *(table_key(t) for t in tables or ())}
        masked = []
        for key in sorted(reads):
            hidden = access.hidden_fields(key)
            if hidden is None and not access.blind(key):
                return name, []  # a relation masking cannot classify: fail closed
            if hidden or access.blind(key):
                masked.append(key)
        if masked:
            return name, masked
    return None


__all__ = ["FUNCTION_DEPTH", "Body", "body_on", "called", "describe", "masked_reads", "pg_reach", "reached", "read_body",
           "relations_reached", "unread"]  # fmt: skip
