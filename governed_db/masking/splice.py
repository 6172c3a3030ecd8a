"""Writing planned edits (:mod:`governed_db.masking.order`) into the statement as its author wrote it.

The statement is not regenerated from its parsed tree (a generator may spell a construct differently from what
the server expects, and drops comments): each edit is an insertion at a token boundary of the original text —
``ORDER BY <key>`` (or ``, <key>``) before a query's LIMIT, inside an aggregate's or a window's parentheses, and
``CASE WHEN (`` ... ``) IS NULL THEN NULL ELSE '' END`` around a masked aggregate argument. The insertion points
are found from the tokens and the positions the parser kept on names and literals; the result is parsed again and
must equal the original tree with the edits made to it, or nothing is sent (the caller refuses).

Edits are planned once per statement shape (the template of a literal shape, :mod:`governed_db.sql.shapes`) and
kept as (token, text) pairs, so a text of the same shape gets them by one tokenization.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect

from governed_db.masking.order import Edit
from governed_db.masking.order_nodes import data_args, own_nodes
from governed_db.sql._sqlite_reading import as_read, parse, tokenize
from governed_db.sql.analysis import _pyformat_to_qmark, sqlglot_dialect
from governed_db.sql.shapes import _tokenizer

#: tokens that end a query's ORDER BY list (or where one would go)
_AFTER_ORDER = frozenset(
    {TokenType.LIMIT, TokenType.OFFSET, TokenType.FETCH, TokenType.FOR, TokenType.LOCK, TokenType.RETURNING,
     TokenType.SEMICOLON, TokenType.INTO}
)  # fmt: skip
#: tokens that end a set operation's branch written without parentheses (at its depth)
_BRANCH_END = frozenset(
    {TokenType.UNION, TokenType.INTERSECT, TokenType.EXCEPT, TokenType.ORDER_BY, TokenType.LIMIT, TokenType.OFFSET,
     TokenType.FETCH, TokenType.FOR, TokenType.SEMICOLON, TokenType.R_PAREN}
)  # fmt: skip
_QUERY_START = frozenset({TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN, TokenType.VALUES})
_FRAME = frozenset({"ROWS", "RANGE", "GROUPS", "EXCLUDE"})
#: what an aggregate's call is spelled as, by sqlglot class
_CALL_NAMES: dict[str, frozenset[str]] = {
    "GroupConcat": frozenset({"group_concat", "string_agg", "listagg"}),
    "ArrayAgg": frozenset({"array_agg", "list", "array_agg_distinct"}),
    "JSONArrayAgg": frozenset({"json_agg", "json_group_array", "json_arrayagg"}),
    "JSONObjectAgg": frozenset(
        {"json_object_agg", "json_objectagg", "json_group_object", "jsonb_object_agg"}
    ),
    "JSONBObjectAgg": frozenset({"jsonb_object_agg"}),
    "Min": frozenset({"min"}),
    "Max": frozenset({"max"}),
}
_STAND_IN = ("CASE WHEN (", ") IS NULL THEN NULL ELSE '' END")
#: a LIMIT that cuts nothing, so MariaDB keeps a derived table's ORDER BY (its documented idiom)
_MAX_ROWS = 18446744073709551615
_KEPT = f" LIMIT {_MAX_ROWS}"
#: the name of the data-modifying CTE an ``UPDATE/DELETE ... RETURNING`` becomes on PostgreSQL (0330)
_CHANGED = "gdb_changed"
#: the frame a window without ORDER BY or frame clause has (its whole partition), written after the key it gets
_WHOLE_FRAME = " ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"


class Unspliceable(Exception):
    """The edits could not be written into the text with certainty."""


@dataclass(frozen=True)
class Spliced:
    """Edits for the texts of one shape: ``inserts`` are ``(token index, after?, text)`` of ``base``'s tokens."""

    base: str
    inserts: tuple[tuple[int, bool, str], ...]
    #: the token types of ``base`` (a text of the same shape must line up with them)
    kinds: tuple[TokenType, ...]
    #: ``base`` with the edits made
    text: str
    #: where each insert goes in ``base`` (characters): a text whose end matches from there gets it at the same
    #: distance from its end, without being tokenized (a shape's literals are in its WHERE, before the edits)
    positions: tuple[int, ...] = ()


def splice(base: str, dialect: str, tree: exp.Expression, edits: list[Edit]) -> Spliced:
    """Write ``edits`` (planned on ``tree``, parsed from ``base``) into ``base``; :class:`Unspliceable` when the
    result does not parse back to the edited tree."""
    gd = sqlglot_dialect(dialect)
    d = Dialect.get_or_raise(gd)
    base_tokens = tokenize(d, gd, base)
    parsed_text, back = _as_parsed(base, base_tokens, gd, d)
    tokens = tokenize(d, gd, parsed_text)
    text = _Text(tokens, parsed_text)
    inserts: list[tuple[int, str]] = []
    for edit in edits:
        inserts.extend(_locate(text, edit, tree, gd))
    edited = _apply(parsed_text, inserts)
    expected = _expected(tree, edits, gd)
    try:
        found = parse(edited, gd)
    except Exception as e:
        raise Unspliceable(f"the edited statement does not parse ({type(e).__name__})") from e
    # a comment after the last ``;`` parses as a statement of its own (a bare ``Semicolon``): nothing runs there
    found = [f for f in found if not isinstance(f, exp.Semicolon)]
    if len(found) != 1 or found[0] != expected:
        raise Unspliceable("the edited statement does not parse to the planned one")
    # positions of the parsed form (placeholders rewritten) back to the text as written, then to its tokens
    starts = {t.start: i for i, t in enumerate(base_tokens)}
    ends = {t.end + 1: i for i, t in enumerate(base_tokens)}
    anchored: list[tuple[int, bool, str]] = []
    for pos, add in inserts:
        at = back(pos)
        if at in ends:
            anchored.append((ends[at], True, add))
        elif at in starts:
            anchored.append((starts[at], False, add))
        else:
            raise Unspliceable("an edit falls inside a token")
    kinds = tuple(t.token_type for t in base_tokens)
    done = Spliced(base, tuple(anchored), kinds, "")
    positions = tuple(base_tokens[i].end + 1 if after else base_tokens[i].start for i, after, _ in anchored)
    return Spliced(base, done.inserts, kinds, apply(done, base, dialect, base_tokens), positions)


def apply(spliced: Spliced, sql: str, dialect: str, tokens: list[Token] | None = None) -> str:
    """``sql`` (``spliced.base`` or a text of the same shape) with the edits made."""
    if sql == spliced.base and spliced.text:
        return spliced.text
    base = spliced.base
    if spliced.positions and all(sql.endswith(base[p:]) for p in spliced.positions):
        shift = len(sql) - len(base)
        return _apply(sql, [(p + shift, add) for p, (_i, _a, add) in zip(spliced.positions, spliced.inserts, strict=True)])
    if tokens is None:
        gd = sqlglot_dialect(dialect)
        tokens = _tokenizer(gd).tokenize(sql)
        tokens = as_read(gd, tokens)
    if len(tokens) != len(spliced.kinds) or any(
        t.token_type != k and {t.token_type, k} - {TokenType.PLACEHOLDER, TokenType.NUMBER, TokenType.STRING}
        for t, k in zip(tokens, spliced.kinds, strict=True)
    ):
        raise Unspliceable("the text does not line up with its shape")
    inserts = [(tokens[i].end + 1 if after else tokens[i].start, add) for i, after, add in spliced.inserts]
    return _apply(sql, inserts)


def _apply(sql: str, inserts: list[tuple[int, str]]) -> str:
    out = sql
    # stable for inserts at one position: the earlier-planned one stays first
    for pos, add in sorted(inserts, key=lambda pa: pa[0], reverse=True):
        out = out[:pos] + add + out[pos:]
    return out


def _as_parsed(base: str, tokens: list[Token], gd: str, d: Dialect) -> tuple[str, Callable[[int], int]]:
    """The text as the analyser parsed it (pyformat placeholders as ``?``), and a map of its positions back."""
    if "%" not in base:
        return base, lambda pos: pos
    originals: dict[int, str] = {}
    rewritten = _pyformat_to_qmark(base, tokens, originals, placeholders=gd != "postgres")
    if rewritten is None:
        return base, lambda pos: pos
    offsets = sorted(originals)
    growth = [0]
    for o in offsets:
        growth.append(growth[-1] + len(originals[o]) - 1)

    def back(pos: int) -> int:
        return pos + growth[bisect_right(offsets, pos - 1)]

    return rewritten, back


class _Text:
    """The tokens of the parsed text, their parentheses and depths."""

    def __init__(self, tokens: list[Token], sql: str = "") -> None:
        self.tokens = tokens
        #: the text they were read from (what a repeated part of it is copied from)
        self.sql = sql
        self.starts = [t.start for t in tokens]
        self.match: dict[int, int] = {}
        self.depth: list[int] = []
        stack: list[int] = []
        for i, t in enumerate(tokens):
            if t.token_type == TokenType.R_PAREN and stack:
                self.match[stack[-1]] = i
                self.match[i] = stack.pop()
            self.depth.append(len(stack))
            if t.token_type == TokenType.L_PAREN:
                stack.append(i)

    def at(self, pos: int) -> int:
        return max(0, bisect_right(self.starts, pos) - 1)

    def groups_around(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Parenthesised groups (open, close) that hold tokens ``lo`` to ``hi``, innermost first."""
        out = []
        for o, c in self.match.items():
            if self.tokens[o].token_type == TokenType.L_PAREN and o < lo and c > hi:
                out.append((o, c))
        return sorted(out, key=lambda oc: oc[1] - oc[0])

    def level(self, lo: int, hi: int) -> list[int]:
        """Token indexes in ``lo..hi`` (exclusive) at the depth of ``lo`` (not inside nested parentheses)."""
        base = self.depth[lo]
        return [
            i
            for i in range(lo, hi)
            if self.depth[i] == base and self.tokens[i].token_type != TokenType.R_PAREN
        ]


def _anchors(node: exp.Expression) -> list[int]:
    """Positions the parser kept (names, literals) inside ``node``, not inside nested queries."""
    found = []
    nodes = (
        [node.this, node.expression] if isinstance(node, (exp.Union, exp.Intersect, exp.Except)) else [node]
    )
    for n in nodes:
        if isinstance(n, exp.Subquery):
            n = n.this
        if isinstance(n, (exp.Union, exp.Intersect, exp.Except)):
            found.extend(_anchors(n))
            continue
        if not isinstance(n, exp.Expression):
            continue
        for sub in [n, *own_nodes(n)]:
            start = sub.meta.get("start") if isinstance(sub, (exp.Identifier, exp.Literal)) else None
            if isinstance(start, int):
                found.append(start)
            if isinstance(sub, exp.Column | exp.Table):
                for ident in sub.find_all(exp.Identifier):
                    start = ident.meta.get("start")
                    if isinstance(start, int):
                        found.append(start)
    return found


def _query_range(text: _Text, node: exp.Expression) -> tuple[int, int]:
    """The tokens of a query: inside its parentheses, or (the statement's own query) from its first keyword."""
    anchors = _anchors(node)
    if not anchors:
        raise Unspliceable("a query with nothing to locate it by")
    lo, hi = text.at(min(anchors)), text.at(max(anchors))
    parent = node.parent
    if isinstance(parent, exp.Insert) and node is not parent.this and parent.parent is not None:
        # the query of an INSERT that is itself a WITH query (``d AS (INSERT INTO t SELECT ... RETURNING k)``):
        # from its first keyword to the INSERT's closing parenthesis (0363)
        if isinstance(node, exp.Subquery):
            raise Unspliceable("a parenthesised query of a nested INSERT")
        for o, c in text.groups_around(lo, hi):
            if text.tokens[o + 1].token_type == TokenType.INSERT:
                starts = [i for i in text.level(o + 1, c) if text.tokens[i].token_type in _QUERY_START - {TokenType.L_PAREN}]
                if starts:
                    return starts[0], c
        raise Unspliceable("a nested INSERT's query was not found")
    top = (
        parent is None
        or (isinstance(parent, (exp.Insert, exp.Create, exp.Copy)) and node is not parent.this)
        or (isinstance(parent, exp.Copy) and node is parent.this and not isinstance(node, exp.Subquery))
    )
    if not top or isinstance(node, exp.Subquery):
        for o, c in text.groups_around(lo, hi):
            if text.tokens[o + 1].token_type in _QUERY_START:
                return o + 1, c
        raise Unspliceable("a subquery's parentheses were not found")
    start = 0
    if not isinstance(node, (exp.Update, exp.Delete)):
        starts = [
            i
            for i in text.level(0, lo + 1)
            if text.tokens[i].token_type in _QUERY_START - {TokenType.L_PAREN}
        ]
        start = starts[0] if starts else 0
    return start, len(text.tokens)


def _write_range(text: _Text, write: exp.Expression) -> tuple[int, int]:
    """The tokens of a write: the whole text, or (a data-modifying WITH query) inside its parentheses (0363)."""
    if write.parent is None:
        return 0, len(text.tokens)
    anchors = _anchors(write)
    if not anchors:
        raise Unspliceable("a write with nothing to locate it by")
    lo, hi = text.at(min(anchors)), text.at(max(anchors))
    for o, c in text.groups_around(lo, hi):
        if text.tokens[o + 1].token_type in (TokenType.UPDATE, TokenType.DELETE):
            return o + 1, c
    raise Unspliceable("a nested write's parentheses were not found")


def _write_end(text: _Text, start: int, stop: int) -> int:
    """The token after the last of a write without WHERE (tokens ``start..stop``): its RETURNING, the ``;`` or
    ``stop``."""
    level = text.level(start, stop)
    if any(text.tokens[i].token_type == TokenType.WHERE for i in level):
        raise Unspliceable("a WHERE the planned write does not have")
    end = next((i for i in level if text.tokens[i].token_type in (TokenType.RETURNING, TokenType.SEMICOLON)), stop)
    if end <= start + 1:
        raise Unspliceable("a write without tokens")
    return end


def _write_condition(text: _Text, start: int, stop: int) -> tuple[int, int]:
    """The WHERE token of a write (outside parentheses) between tokens ``start`` and ``stop`` and the end of its
    condition: its RETURNING, the ``;`` or ``stop``."""
    level = text.level(start, stop)
    where = [i for i in level if text.tokens[i].token_type == TokenType.WHERE]
    if len(where) != 1:
        raise Unspliceable("the write's WHERE was not found")
    end = next((i for i in level if i > where[0] and text.tokens[i].token_type in
                (TokenType.RETURNING, TokenType.SEMICOLON)), stop)  # fmt: skip
    if end <= where[0] + 1:
        raise Unspliceable("a write's WHERE without a condition")
    return where[0], end


def _write_sources(text: _Text, write: exp.Expression, start: int, where: int) -> int:
    """The first token of an UPDATE's FROM list (a DELETE's USING list), outside parentheses, between the write's
    first token ``start`` and its WHERE."""
    kind = TokenType.FROM if isinstance(write, exp.Update) else TokenType.USING
    found = [i for i in text.level(start, where) if text.tokens[i].token_type == kind]
    if len(found) != 1 or found[0] + 1 >= where:
        raise Unspliceable(f"the write's {kind.name} list was not found")
    return found[0] + 1


def _no_positional(text: _Text, lo: int, hi: int) -> None:
    """Tokens ``lo..hi`` repeated would repeat their positional parameters (``%s``, ``?``), and the parameters
    would no longer match them; named ones (``%(name)s``, ``$1``) may be repeated."""
    t = text.tokens
    for i in range(lo, hi):
        if t[i].token_type == TokenType.PLACEHOLDER and t[i].text in ("?", "%s"):
            raise Unspliceable("a positional parameter in a part the locking subquery repeats")
        if (t[i].token_type == TokenType.MOD and i + 1 < len(t) and t[i + 1].start == t[i].end + 1
                and t[i + 1].text in ("s", "b", "t")):  # fmt: skip
            raise Unspliceable("a positional parameter in a part the locking subquery repeats")


def _target_sql(write: exp.Expression, gd: str) -> str:
    """The written table as the write names it (``ONLY``, schema and alias kept): the subquery's columns then
    resolve as the write's condition read them."""
    target = write.this
    if not isinstance(target, exp.Table):
        raise Unspliceable("a write to something other than a table")
    return target.sql(dialect=gd)


def _lock_strength(write: exp.Expression) -> str:
    """The row lock the write itself takes: a DELETE's ``FOR UPDATE``; an UPDATE's ``FOR NO KEY UPDATE`` (it
    takes ``FOR UPDATE`` only where it changes a key column, an upgrade PostgreSQL makes row by row)."""
    return "FOR UPDATE" if isinstance(write, exp.Delete) else "FOR NO KEY UPDATE"


def _branch_range(text: _Text, node: exp.Expression) -> tuple[int, int]:
    """The tokens of a ``UNION ALL`` branch written without parentheses: from its SELECT to the set operator,
    the enclosing parenthesis, or the clauses of the whole set operation that follow it."""
    anchors = _anchors(node)
    if not anchors:
        raise Unspliceable("a branch with nothing to locate it by")
    at = [text.at(a) for a in anchors]
    depth = min(text.depth[i] for i in at)
    lo = next((i for i in range(min(at), -1, -1)
               if text.tokens[i].token_type == TokenType.SELECT and text.depth[i] == depth), None)  # fmt: skip
    if lo is None:
        raise Unspliceable("a branch's SELECT was not found")
    hi = len(text.tokens)
    for i in range(max(at) + 1, len(text.tokens)):
        if text.depth[i] < depth or (text.depth[i] == depth and text.tokens[i].token_type in _BRANCH_END):
            hi = i
            break
    return lo, hi


def _order_insert(
    text: _Text, lo: int, hi: int, items: tuple[str, ...], stops: frozenset[TokenType]
) -> tuple[int, str]:
    level = text.level(lo, hi)
    order = [i for i in level if text.tokens[i].token_type == TokenType.ORDER_BY]
    # with no ORDER BY, a stop may be the first token: ``OVER (ROWS UNBOUNDED PRECEDING)`` (decision 0320)
    after = order[-1] if order else lo - 1
    froms = [i for i in level if text.tokens[i].token_type == TokenType.FROM]

    def stops_here(i: int) -> bool:
        kind = text.tokens[i].token_type
        if kind == TokenType.INTO:  # SELECT ... FROM t INTO @v ends the query; SELECT x INTO t FROM / INSERT INTO
            return any(f < i for f in froms)  # do not
        return kind in stops or _on_conflict(text, i)

    stop = next((i for i in level if i > after and stops_here(i)), None)
    last = (stop if stop is not None else hi) - 1
    while last > lo and text.tokens[last].token_type == TokenType.SEMICOLON:
        last -= 1
    glue = ", " if order else " ORDER BY "
    tail = " " if stop == lo else ""  # before a first token (``OVER (ROWS ...)``): keep a space between them
    return text.tokens[last].end + 1, glue + ", ".join(items) + tail


def _on_conflict(text: _Text, i: int) -> bool:
    """``ON CONFLICT`` / ``ON DUPLICATE KEY``: the end of an INSERT's query."""
    t = text.tokens
    return (
        t[i].token_type == TokenType.ON
        and i + 1 < len(t)
        and t[i + 1].text.upper() in ("CONFLICT", "DUPLICATE")
    )


def _call_group(text: _Text, node: exp.Expression) -> tuple[int, int]:
    """The parentheses of an aggregate call."""
    anchors = _anchors(node)
    if not anchors:
        raise Unspliceable("an aggregate with nothing to locate it by")
    names = (
        frozenset({str(node.name).lower()})
        if isinstance(node, exp.Anonymous)
        else _CALL_NAMES.get(type(node).__name__, frozenset())
    )
    for o, c in text.groups_around(text.at(min(anchors)), text.at(max(anchors))):
        if o > 0 and text.tokens[o - 1].text.lower() in names:
            return o, c
    raise Unspliceable(f"the call of {names and sorted(names)[0]} was not found")


def _locate(text: _Text, edit: Edit, tree: exp.Expression, gd: str) -> list[tuple[int, str]]:
    node = edit.node
    if edit.kind in ("order", "order-kept"):
        lo, hi = _query_range(text, node)
        at, add = _order_insert(text, lo, hi, edit.items, _AFTER_ORDER)
        return [(at, add + (_KEPT if edit.kind == "order-kept" else ""))]
    if edit.kind == "branch-order":
        lo, hi = _branch_range(text, node)
        at, add = _order_insert(text, lo, hi, edit.items, _AFTER_ORDER)
        return [(text.tokens[lo].start, "("), (at, add + ")")]
    if edit.kind == "lock-order":
        # the write's condition moves inside a key-ordered, locking subquery of the same table (0351); a write
        # without one (approved: the unbounded-write rule) gets one that locks every row in key order (0378)
        listed = ", ".join(edit.items)
        keys = f"({listed})" if len(edit.items) > 1 else listed
        if not isinstance(node.args.get("where"), exp.Where):
            end = _write_end(text, *_write_range(text, node))
            return [(text.tokens[end - 1].end + 1, f" WHERE {keys} IN (SELECT {listed} FROM "
                     f"{_target_sql(node, gd)} ORDER BY {listed} {_lock_strength(node)})")]  # fmt: skip
        lo, hi = _write_condition(text, *_write_range(text, node))
        # a composite key compares as a row, its subquery selects the columns (a selected ROW is one column)
        return [(text.tokens[lo].end + 1, f" {keys} IN (SELECT {listed} FROM {_target_sql(node, gd)} WHERE"),
                (text.tokens[hi - 1].end + 1, f" ORDER BY {', '.join(edit.items)} {_lock_strength(node)})")]
    if edit.kind == "lock-joined":
        # FROM/USING stays; the locking subquery repeats it and the condition, which both keep (decision 0354)
        *key, owner = edit.items
        w_lo, w_hi = _write_range(text, node)
        lo, hi = _write_condition(text, w_lo, w_hi)
        first = _write_sources(text, node, w_lo, lo)
        _no_positional(text, first, hi)
        listed = ", ".join(key)
        row = f"({listed})" if len(key) > 1 else listed
        sources = text.sql[text.tokens[first].start : text.tokens[lo - 1].end + 1]
        cond = text.sql[text.tokens[lo + 1].start : text.tokens[hi - 1].end + 1]
        return [(text.tokens[lo].end + 1, " ("),
                (text.tokens[hi - 1].end + 1, f") AND {row} IN (SELECT {listed} FROM {_target_sql(node, gd)}, "
                 f"{sources} WHERE {cond} ORDER BY {listed} {_lock_strength(node)} OF {owner})")]
    if edit.kind == "returning-order":
        # the whole write becomes a data-modifying CTE, its rows selected in key order (PostgreSQL; 0330)
        last = len(text.tokens) - 1
        while last > 0 and text.tokens[last].token_type == TokenType.SEMICOLON:
            last -= 1
        if node.parent is not None or not text.tokens:
            raise Unspliceable("RETURNING of a write inside another statement")
        return [(text.tokens[0].start, f"WITH {_CHANGED} AS ("),
                (text.tokens[last].end + 1, f") SELECT * FROM {_CHANGED} ORDER BY " + ", ".join(edit.items))]
    if edit.kind == "agg-order":
        o, c = _call_group(text, node)
        stops = frozenset({TokenType.SEPARATOR, TokenType.LIMIT})
        return [_order_insert(text, o + 1, c, edit.items, stops)]
    if edit.kind in ("window-order", "window-whole") and isinstance(node, exp.Window):
        o, c = _over_group(text, node)
        stops = frozenset(t.token_type for t in text.tokens[o + 1 : c] if t.text.upper() in _FRAME)
        at, add = _order_insert(text, o + 1, c, edit.items, stops)
        return [(at, add + (_WHOLE_FRAME if edit.kind == "window-whole" else ""))]
    if edit.kind == "exists-whole" and (isinstance(node, exp.SetOperation) or edit.items == ("derived",)):
        # a compound (or a query with an OFFSET) inside EXISTS (...) becomes the derived table of one group:
        # EXISTS (SELECT 1 FROM (...) GROUP BY NULL)
        lo, hi = _query_range(text, node)
        if node.parent is None or hi >= len(text.tokens) or text.tokens[hi].token_type != TokenType.R_PAREN:
            raise Unspliceable("a compound EXISTS query outside its parentheses")
        return [(text.tokens[lo].start, "SELECT 1 FROM ("), (text.tokens[hi].start, ") GROUP BY NULL")]
    if edit.kind == "min-max-whole":
        o, c = _call_group(text, node)
        first, last = _argument(text, o, c, 0)
        return [(text.tokens[first].start, "+("), (text.tokens[last].end + 1, ")")]
    if edit.kind == "exists-whole":
        lo, hi = _query_range(text, node)
        ends = (TokenType.ORDER_BY, TokenType.LIMIT, TokenType.WINDOW, *_AFTER_ORDER)
        stop = next((i for i in text.level(lo, hi) if text.tokens[i].token_type in ends), None)
        if stop is not None and stop > lo:
            # after the token before it, where an added ORDER BY goes too (planned after it, it comes first)
            return [(text.tokens[stop - 1].end + 1, " GROUP BY NULL")]
        last = hi - 1
        while last > lo and text.tokens[last].token_type == TokenType.SEMICOLON:
            last -= 1
        return [(text.tokens[last].end + 1, " GROUP BY NULL")]
    if edit.kind == "stand-in" and not edit.items:
        # a column merged beside a stored text (decision 0359): its tokens, from the first name to the last
        if isinstance(node, exp.Subquery):
            lo, hi = _query_range(text, node)  # inside its parentheses: the stand-in goes around them
            first, last = lo - 1, hi
        elif isinstance(node, exp.Column) and (anchors := _anchors(node)):
            first, last = text.at(min(anchors)), text.at(max(anchors))
        else:
            raise Unspliceable("a merged value with nothing to locate it by")
        return [(text.tokens[first].start, "(" + _STAND_IN[0]), (text.tokens[last].end + 1, _STAND_IN[1] + ")")]
    if edit.kind == "stand-in":
        o, c = _call_group(text, node)
        first, last = _argument(text, o, c, int(edit.items[0]))
        return [(text.tokens[first].start, _STAND_IN[0]), (text.tokens[last].end + 1, _STAND_IN[1])]
    if edit.kind == "force-primary":
        # MariaDB: a table read by a list of keys is read by PRIMARY (decision 0383): the hint follows its name or
        # alias
        starts = [i.meta.get("start") for i in node.find_all(exp.Identifier)]
        if not starts or not all(isinstance(p, int) for p in starts):
            raise Unspliceable("a table with nothing to locate it by")
        last = text.at(max(p for p in starts if isinstance(p, int)))
        return [(text.tokens[last].end + 1, " FORCE INDEX (PRIMARY)")]
    raise Unspliceable(f"unknown edit {edit.kind}")


def _argument(text: _Text, o: int, c: int, index: int) -> tuple[int, int]:
    """First and last token of the ``index``-th argument of the call in parentheses ``o..c``."""
    args: list[list[int]] = [[]]
    for i in range(o + 1, c):
        t = text.tokens[i]
        top = text.depth[i] == text.depth[o + 1] and t.token_type != TokenType.R_PAREN
        if top and t.token_type in (TokenType.ORDER_BY, TokenType.SEPARATOR, TokenType.LIMIT):
            break
        if top and t.token_type == TokenType.COMMA:
            args.append([])
            continue
        if top and not args[-1] and t.token_type in (TokenType.DISTINCT, TokenType.ALL):
            continue
        args[-1].append(i)
    if index >= len(args) or not args[index]:
        raise Unspliceable("an aggregate argument was not found")
    return args[index][0], args[index][-1]


def _over_group(text: _Text, win: exp.Window) -> tuple[int, int]:
    """The parentheses after the window's OVER: the k-th OVER of its query, as its windows come in order."""
    select = win.find_ancestor(exp.Select)
    if select is None:
        raise Unspliceable("a window outside a query")
    lo, hi = _query_range(text, select)
    nested = [(o, c) for o, c in text.match.items() if text.tokens[o].token_type == TokenType.L_PAREN
              and lo <= o < hi and text.tokens[o + 1].token_type in (TokenType.SELECT, TokenType.WITH)]  # fmt: skip
    overs = [
        i for i in range(lo, hi)
        if text.tokens[i].token_type == TokenType.OVER and not any(o < i < c for o, c in nested)
    ]  # fmt: skip
    windows = [w for w in own_nodes(select) if isinstance(w, exp.Window) and w.args.get("over")]
    if len(overs) != len(windows):
        raise Unspliceable("the windows of a query could not be told apart")
    k = next(i for i, w in enumerate(windows) if w is win)
    at = overs[k] + 1
    if at >= len(text.tokens) or text.tokens[at].token_type != TokenType.L_PAREN:
        raise Unspliceable("a named window")
    return at, text.match[at]


# -- the edited tree the text must parse to ------------------------------------------------------------
def _expected(tree: exp.Expression, edits: list[Edit], gd: str) -> exp.Expression:
    copy = tree.copy()
    index = {id(n): i for i, n in enumerate(tree.walk())}
    nodes: list[Any] = list(copy.walk())
    wrap: Edit | None = None
    for edit in edits:
        target = nodes[index[id(edit.node)]]
        if edit.kind == "returning-order":
            wrap = edit
        elif edit.kind == "lock-order":
            _lock_in_key_order(target, edit.items, gd)
        elif edit.kind == "lock-joined":
            _lock_joined_in_key_order(target, edit.items, gd)
        elif edit.kind == "branch-order":
            target.set("order", exp.Order(expressions=_ordered(edit.items, gd)))
            wrapper = exp.Subquery()
            target.replace(wrapper)  # the same node inside the parentheses: other edits may still reach into it
            wrapper.set("this", target)
        elif edit.kind in ("order", "order-kept", "window-order", "window-whole"):
            items = _ordered(edit.items, gd)
            order = target.args.get("order")
            if isinstance(order, exp.Order):
                order.set("expressions", [*order.expressions, *items])
            else:
                target.set("order", exp.Order(expressions=items))
            if edit.kind == "order-kept":
                target.set("limit", exp.Limit(expression=exp.Literal.number(_MAX_ROWS)))
            if edit.kind == "window-whole":
                target.set("spec", exp.WindowSpec(
                    kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="UNBOUNDED", end_side="FOLLOWING"
                ))  # fmt: skip
        elif edit.kind == "agg-order":
            _order_aggregate(target, _ordered(edit.items, gd))
        elif edit.kind == "exists-whole" and (isinstance(target, exp.SetOperation) or edit.items == ("derived",)):
            outer = exp.Select(expressions=[exp.Literal.number(1)], group=exp.Group(expressions=[exp.Null()]))
            target.replace(outer)
            outer.set("from_", exp.From(this=exp.Subquery(this=target)))
        elif edit.kind == "exists-whole":
            target.set("group", exp.Group(expressions=[exp.Null()]))
        elif edit.kind == "min-max-whole":
            holder = target.this if isinstance(target.this, exp.Distinct) else None
            if holder is not None and holder.expressions:
                holder.set("expressions", [exp.Paren(this=holder.expressions[0]), *holder.expressions[1:]])
            else:
                target.set("this", exp.Paren(this=target.this))
        elif edit.kind == "force-primary":
            target.set("hints", [exp.IndexTableHint(this="FORCE", expressions=[exp.to_identifier("PRIMARY")])])
        elif edit.kind == "stand-in" and not edit.items:
            made = Dialect.get_or_raise(gd).parse(f"SELECT ({_STAND_IN[0]}{target.sql(dialect=gd)}{_STAND_IN[1]})")
            target.replace(made[0].expressions[0])  # type: ignore[union-attr]
        elif edit.kind == "stand-in":
            arg = data_args(target, gd)[int(edit.items[0])]
            wrapped = Dialect.get_or_raise(gd).parse(
                f"SELECT {_STAND_IN[0]}{arg.sql(dialect=gd)}{_STAND_IN[1]}"
            )
            arg.replace(wrapped[0].expressions[0])  # type: ignore[union-attr]
    if wrap is not None:
        outer = exp.select("*").from_(_CHANGED).with_(_CHANGED, as_=copy, copy=False)
        outer.set("order", exp.Order(expressions=_ordered(wrap.items, gd)))
        return outer
    return copy


def _locking_where(write: exp.Expression, gd: str, condition: str) -> tuple[exp.Where, exp.Where, exp.Select]:
    """``write``'s WHERE, and ``WHERE <condition>`` (a template holding one locking subquery) as the parser builds
    it, with that subquery; for the two key-order locks below."""
    where = write.args.get("where")
    if not isinstance(where, exp.Where):
        raise Unspliceable("a write without a condition")
    made, inner = _locking_template(gd, condition)
    return where, made, inner


def _locking_template(gd: str, condition: str) -> tuple[exp.Where, exp.Select]:
    """``WHERE <condition>`` as the parser builds it, and the locking subquery it holds."""
    template = Dialect.get_or_raise(gd).parse(f"SELECT 1 WHERE {condition}")[0]
    made = template.args.get("where") if template is not None else None
    inner = made.find(exp.Select) if isinstance(made, exp.Where) else None
    if not isinstance(made, exp.Where) or inner is None:
        raise Unspliceable("the locking subquery does not parse")
    return made, inner


def _lock_in_key_order(write: exp.Expression, items: tuple[str, ...], gd: str) -> None:
    """``write``'s condition moved into ``<key> IN (SELECT <key> FROM <target> WHERE <condition> ORDER BY <key>
    FOR ... UPDATE)``, as the parser builds it."""
    listed = ", ".join(items)
    keys = f"({listed})" if len(items) > 1 else listed
    condition = (
        f"{keys} IN (SELECT {listed} FROM {_target_sql(write, gd)} WHERE TRUE ORDER BY {listed} "
        f"{_lock_strength(write)})"
    )
    where = write.args.get("where")
    if where is None:  # a write of every row (approved): its rows locked in key order all the same (0378)
        made, inner = _locking_template(gd, condition)
        inner.set("where", None)
    else:
        where, made, inner = _locking_where(write, gd, condition)
        inner.set("where", exp.Where(this=where.this.copy()))
    write.set("where", made)


def _lock_joined_in_key_order(write: exp.Expression, items: tuple[str, ...], gd: str) -> None:
    """``write``'s condition ``c`` as ``(c) AND <key> IN (SELECT <key> FROM <target>, <its FROM/USING list>
    WHERE c ORDER BY <key> FOR ... UPDATE OF <target>)``, as the parser builds it."""
    *keys, owner = items
    listed = ", ".join(keys)
    row = f"({listed})" if len(keys) > 1 else listed
    where, made, inner = _locking_where(write, gd, (
        f"(TRUE) AND {row} IN (SELECT {listed} FROM {_target_sql(write, gd)}, gdb_sources WHERE TRUE ORDER BY "
        f"{listed} {_lock_strength(write)} OF {owner})"
    ))  # fmt: skip
    if not isinstance(made.this, exp.And):
        raise Unspliceable("the locking subquery does not parse")
    paren = made.this.this
    placeholder = (inner.args.get("joins") or [None])[0]
    if not isinstance(paren, exp.Paren) or not isinstance(placeholder, exp.Join):
        raise Unspliceable("the locking subquery does not parse")
    paren.set("this", where.this.copy())
    inner.set("where", exp.Where(this=where.this.copy()))
    # a comma list as a SELECT's FROM reads it: its first item a join of its own, the joins after it follow
    listed_sources = write.args.get("from_") or write.args.get("from")
    parts = [listed_sources.this] if isinstance(listed_sources, exp.From) else list(write.args.get("using") or [])
    joins: list[exp.Expression] = []
    for part in parts:
        first = part.copy()
        attached = first.args.get("joins") or []
        first.set("joins", None)
        join = placeholder.copy()
        join.set("this", first)
        joins.extend([join, *(j.copy() for j in attached)])
    if not joins:
        raise Unspliceable("the write's FROM/USING list was not found")
    inner.set("joins", joins)
    write.set("where", made)


def _ordered(items: tuple[str, ...], gd: str) -> list[exp.Expression]:
    parsed = Dialect.get_or_raise(gd).parse(f"SELECT 1 ORDER BY {', '.join(items)}")[0]
    order = parsed.args.get("order") if parsed is not None else None
    if not isinstance(order, exp.Order):
        raise Unspliceable("an ORDER BY item does not parse")
    return list(order.expressions)


def _order_aggregate(agg: exp.Expression, items: list[exp.Expression]) -> None:
    """``agg(x ORDER BY k)`` as the parser builds it: the (last) argument wrapped in an Order."""
    if type(agg).__name__ == "JSONBObjectAgg" and isinstance(agg.args.get("expression"), exp.Expression):
        holder, key = agg, "expression"  # jsonb_object_agg(k, v ORDER BY ...): the Order wraps the value
        inner = holder.args[key]
        if isinstance(inner, exp.Order):
            inner.set("expressions", [*inner.expressions, *items])
        else:
            holder.set(key, exp.Order(this=inner, expressions=items))
        return
    if agg.this is not None and not isinstance(agg, exp.Anonymous):
        holder, key = agg, "this"
    elif agg.expressions:
        holder, key = agg, "expressions"
    else:
        raise Unspliceable("an aggregate without arguments")
    if key == "this":
        inner = holder.args["this"]
        while isinstance(inner, exp.Limit):
            holder, inner = inner, inner.this
        if isinstance(inner, exp.Order):
            inner.set("expressions", [*inner.expressions, *items])
        else:
            holder.set("this", exp.Order(this=inner, expressions=items))
        return
    args = list(agg.expressions)
    last = args[-1]
    if isinstance(last, exp.Order):
        last.set("expressions", [*last.expressions, *items])
    else:
        args[-1] = exp.Order(this=last, expressions=items)
        agg.set("expressions", args)


__all__ = ["Spliced", "Unspliceable", "apply", "splice"]
