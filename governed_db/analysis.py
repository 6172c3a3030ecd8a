"""Static analysis of SQL text in an exact dialect, with sqlglot.

``analyze(sql, dialect)`` is a pure function of its arguments, cached in a
bounded LRU. Its result is shared between callers: treat the sqlglot trees in
it as read-only (``copy()`` before transforming).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

#: governed_db dialect name -> sqlglot dialect name
SQLGLOT_DIALECTS = {
    "sqlite": "sqlite",
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "duckdb": "duckdb",
}


def sqlglot_dialect(dialect: str) -> str:
    return SQLGLOT_DIALECTS.get(dialect.lower(), dialect.lower())


@dataclass(frozen=True, slots=True)
class StatementInfo:
    """One statement after splitting in the exact dialect."""

    #: read / write / ddl / privilege / session / transaction / exec / file / admin / unknown
    kind: str
    #: Upper-case operation name for ``db.operation.name`` (``SELECT``, ``DELETE``, ``CREATE TABLE``...).
    operation: str
    tables_read: tuple[str, ...]
    tables_written: tuple[str, ...]
    #: The parsed tree; ``None`` when parsing failed. Shared: do not mutate.
    expression: exp.Expression | None


@dataclass(frozen=True, slots=True)
class Analysis:
    sql: str
    dialect: str
    statements: tuple[StatementInfo, ...]
    #: The text with literals replaced by placeholders (what the record keeps).
    normalized: str
    #: Why parsing failed, when it did (the statement is then treated as high risk).
    error: str | None = None

    @property
    def operation(self) -> str | None:
        ops = list(dict.fromkeys(s.operation for s in self.statements))
        if not ops:
            return None
        return ops[0] if len(ops) == 1 else ";".join(ops)

    @property
    def tables(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for s in self.statements:
            for t in (*s.tables_written, *s.tables_read):
                seen.setdefault(t, None)
        return tuple(seen)

    @property
    def is_read_only(self) -> bool:
        return self.error is None and bool(self.statements) and all(s.kind == "read" for s in self.statements)


_READ = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values)
_WRITE = (exp.Insert, exp.Update, exp.Delete, exp.Merge)
_DDL = (exp.Create, exp.Drop, exp.Alter, exp.TruncateTable)


def _kind_of(node: exp.Expression) -> str:
    if isinstance(node, _READ):
        # a read that contains DML anywhere (CTE, subquery) is a write
        return "write" if any(node.find_all(*_WRITE)) else "read"
    if isinstance(node, _WRITE):
        return "write"
    if isinstance(node, _DDL):
        return "ddl"
    if isinstance(node, (exp.Grant, exp.Revoke)):
        return "privilege"
    if isinstance(node, (exp.Set, exp.Use)):
        return "session"
    if isinstance(node, (exp.Transaction, exp.Commit, exp.Rollback)):
        return "transaction"
    if isinstance(node, (exp.Copy, exp.LoadData)):
        return "file"
    if isinstance(node, (exp.Describe, exp.Show)):
        return "read"
    if isinstance(node, exp.Pragma):
        return "session"
    return "unknown"


def _operation_of(node: exp.Expression) -> str:
    if isinstance(node, (exp.Create, exp.Drop)):
        kind = node.args.get("kind")
        return f"{node.key.upper()} {kind}".strip() if kind else node.key.upper()
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, (exp.Union, exp.Intersect, exp.Except)):
        return "SELECT"
    if isinstance(node, exp.TruncateTable):
        return "TRUNCATE"
    return node.key.upper()


def _table_name(t: exp.Table, dialect: str) -> str:
    parts = [p.name for p in (t.args.get("catalog"), t.args.get("db"), t.this) if p is not None and p.name]
    return ".".join(parts)


def _tables(node: exp.Expression, dialect: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    cte_names = {c.alias_or_name for c in node.find_all(exp.CTE)}
    written: dict[str, None] = {}
    for w in node.find_all(*_WRITE, *_DDL):
        target = w.this if not isinstance(w, exp.Insert) else w.this
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.Table):
            written.setdefault(_table_name(target, dialect), None)
    read: dict[str, None] = {}
    for t in node.find_all(exp.Table):
        name = _table_name(t, dialect)
        if name and name not in written and name not in cte_names:
            read.setdefault(name, None)
    return tuple(read), tuple(written)


def _normalize(trees: list[exp.Expression], dialect: str) -> str:
    def _placeholder(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Literal):
            return exp.Placeholder()
        return node

    out = []
    for tree in trees:
        out.append(tree.copy().transform(_placeholder, copy=False).sql(dialect=dialect))
    return "; ".join(out)


@lru_cache(maxsize=4096)
def analyze(sql: str, dialect: str) -> Analysis:
    """Split, parse and classify ``sql`` in ``dialect``. Never raises on bad SQL."""
    gd = sqlglot_dialect(dialect)
    try:
        trees = [t for t in sqlglot.parse(sql, read=gd) if t is not None]
    except (ParseError, TokenError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return Analysis(sql, dialect, (), "<unparsed statement>", error=f"could not parse: {first}")
    stmts = []
    for tree in trees:
        read, written = _tables(tree, gd)
        stmts.append(StatementInfo(_kind_of(tree), _operation_of(tree), read, written, tree))
    try:
        normalized = _normalize(trees, gd)
    except Exception:  # generation gaps in sqlglot must not leak the literal text
        normalized = "<statement could not be normalized>"
    return Analysis(sql, dialect, tuple(stmts), normalized)
