"""What analysis produces: :class:`StatementInfo` per statement and :class:`Analysis` per text.

Kept apart from :mod:`governed_db.sql.analysis` (which builds them) so that the modules computing the facts
import the model, not their caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import Token, TokenType, exp


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
    #: Why this statement could not be analysed (it is then high risk).
    error: str | None = None
    #: For UPDATE/DELETE anywhere in the statement, the worst of: ``bounded``, ``missing`` (no WHERE),
    #: ``tautology`` (WHERE true for every row, or referencing no column), ``undecidable``.
    where: str | None = None
    #: Lower-case names of the functions called (including table functions).
    functions: frozenset[str] = frozenset()
    #: INSERT/UPDATE/DELETE/MERGE nested below the top (CTE, subquery).
    nested_dml: bool = False
    #: SELECT ... INTO a table, or CREATE TABLE ... AS SELECT.
    select_into: bool = False
    #: DROP/TRUNCATE ... CASCADE.
    cascade: bool = False
    #: A ``SELECT *`` / ``t.*`` projection somewhere.
    star: bool = False
    #: The outermost query carries LIMIT / FETCH FIRST.
    limited: bool = False
    #: Settings touched: ``(name, scope, is_write)``; scope is session/local/global/user/pragma/system/transaction.
    settings: tuple[tuple[str, str, bool], ...] = ()
    #: Facts about what the statement does, e.g. ``explain-analyze``, ``copy-program``, ``file-write``,
    #: ``set-role``, ``user-management``, ``dynamic-sql``, ``lock``, ``maintenance``, ``extension``.
    flags: frozenset[str] = frozenset()
    #: Database / catalog qualifiers referenced (folded), e.g. ``otherdb`` in MySQL ``otherdb.t``.
    qualifiers: tuple[str, ...] = ()

    @property
    def bounded(self) -> bool:
        """False when an UPDATE/DELETE in this statement may touch every row."""
        return self.where in (None, "bounded")

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.tables_written, *self.tables_read)))


@dataclass(frozen=True, slots=True)
class Analysis:
    sql: str
    dialect: str
    statements: tuple[StatementInfo, ...]
    #: The text with literals replaced by placeholders and comments dropped (what the record keeps).
    normalized: str
    #: Why parsing failed, when it did (the statement is then treated as high risk).
    error: str | None = None
    #: Lexical facts about the whole text: ``executable-comment``, ``too-large``, ``too-many-statements``.
    flags: frozenset[str] = field(default=frozenset())
    #: For literal SQL judged by its shape (:mod:`governed_db.sql.shapes`): the shape's key, shared by every
    #: text of that shape. ``None``: the analysis is of this text alone.
    shape: object = field(default=None, compare=False)

    @property
    def key(self) -> object:
        """What judgements of this analysis are cached under: the shape when it has one, else the text."""
        return self.sql if self.shape is None else self.shape

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

    @property
    def size(self) -> int:
        return len(self.sql)


def _split(tokens: list[Token]) -> list[list[Token]]:
    chunks: list[list[Token]] = []
    current: list[Token] = []
    for i, tok in enumerate(tokens):
        if tok.token_type == TokenType.SEMICOLON:
            if current and _in_trigger_body(current, tokens[i + 1 :]):
                current.append(tok)  # CREATE TRIGGER ... BEGIN a; b; END is one statement
                continue
            if current:
                chunks.append(current)
            current = []
        else:
            current.append(tok)
    if current:
        chunks.append(current)
    return chunks


def _trigger_depth(tokens: list[Token]) -> int:
    """How many BEGIN/CASE blocks of a ``CREATE TRIGGER`` body are open after ``tokens`` (0: none, or not a
    trigger)."""
    head = [t.token_type for t in tokens[:6]]
    if not head or head[0] != TokenType.CREATE or TokenType.TRIGGER not in head:
        return 0
    depth = 0
    for t in tokens:
        if t.token_type in (TokenType.BEGIN, TokenType.CASE):
            depth += 1
        elif t.token_type == TokenType.END and depth:
            depth -= 1
    return depth


def _in_trigger_body(current: list[Token], rest: list[Token]) -> bool:
    """A semicolon inside an open trigger body that a later END closes; one that is never closed splits as
    usual (the text is then several statements, not one hidden in another)."""
    depth = _trigger_depth(current)
    if not depth:
        return False
    for t in rest:
        if t.token_type in (TokenType.BEGIN, TokenType.CASE):
            depth += 1
        elif t.token_type == TokenType.END:
            depth -= 1
            if not depth:
                return True
    return False


__all__ = ["Analysis", "StatementInfo", "_split"]
