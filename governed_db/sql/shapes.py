"""Literal SQL judged by its shape: one analysis, decision and lineage per shape, not per text.

AI agents write SQL with literals inline (``... WHERE id = 4711``), so every
text is new and would be parsed, analysed, judged and traced afresh.
:func:`analysis_for` tokenizes the text once in the exact dialect and reuses
the judgement of an earlier text of the same *shape* -- but only where a
literal's value cannot change any judgement.

What may vary between texts of one shape (an *inert* literal), all of:

* a plain literal: digits (``42``, ``4.5``), or a single-quoted string of at
  most 64 characters from ``A-Za-z0-9 _.,@:+=-`` (no ``--``), written as is
  (no escapes, prefixes, dollar quotes, hex/bit/byte/national strings);
* in a statement that is one plain ``SELECT`` (no writes anywhere, no
  session, file or executable effects, no comments in the text, at most
  :data:`MAX_CHARS` characters);
* the direct operand of ``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=`` or an
  ``IN (...)`` list whose other side is a plain column (a number may be negated: ``-5``), inside a ``WHERE``
  reached only through ``AND``/``OR``/``NOT``/parentheses (in SQLite, not a
  double-quoted name: an unknown one is a string there).

Everything else stays part of the shape exactly as written: ``LIMIT 10`` and
``LIMIT 100000`` are two shapes, so are ``WHERE 1=1`` and ``WHERE 1=2``,
``ORDER BY 1`` and ``ORDER BY 2``, every literal of an INSERT/UPDATE/DELETE
(tautologies such as ``id >= 0``, written-back placeholders, the effect
guard), function arguments, patterns (``LIKE '%'``), casts and intervals. The
statement-size rule reads the text's length: decisions are cached per shape *and* length.

A shape is judged on its *template*: the text with its inert literals
replaced by ``?`` parameters, i.e. exactly as the same statement sent with
bind parameters is judged. Nothing judged from a template depends on a value,
and no value of one text can reach another text's record, message or plan.
Before a template is trusted it is checked against a real text of the shape:
the facts of both analyses must be equal and every ``?`` of the template must
stand in an inert position; otherwise the shape is never shared.

The first sighting of a shape is analysed as its own text (as before); the
second builds and checks the template; from the third on, a text of a known
shape costs one tokenization. Approvals still bind to the exact text and
parameters (the pipeline hands them the real text), and the analysis handed
out carries the real ``sql``; its :attr:`~governed_db.sql.analysis.Analysis.key`
is the shape, which the decision and masking caches use.

Contract for code that judges statements: a judgement of a column compared
with a constant in a plain read's ``WHERE`` must not depend on the constant's
value (it is judged as ``?``). A judgement that does must make that position
non-inert here (``_inert_context``); ``tests/test_sql_shapes.py`` holds the
differential test that catches a violation.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from operator import attrgetter
from typing import Any

from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect

from governed_db._cache import LRU, STATEMENT_CHARS, STATEMENTS
from governed_db.sql.analysis import Analysis, StatementInfo, analyze, sqlglot_dialect

#: longer texts are analysed on their own
MAX_CHARS = 4096
_PLAIN_NUMBER = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,18})?")
_PLAIN_STRING = re.compile(r"[A-Za-z0-9 _.,@:+=-]{0,64}")
_CANDIDATES = frozenset({TokenType.NUMBER, TokenType.STRING})
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_CONNECTIVES = (exp.And, exp.Or, exp.Not, exp.Paren)
_FACT_FIELDS = tuple(f.name for f in dataclasses.fields(StatementInfo) if f.name != "expression")
#: every field of Analysis, in its constructor's order (facts added to it later included), read in one call:
#: copy.copy of a slotted dataclass reflects on its fields for every copy (~15% of a literal text's cost)
_ANALYSIS_FIELDS = tuple(f.name for f in dataclasses.fields(Analysis))
_analysis_values = attrgetter(*_ANALYSIS_FIELDS)
_SQL_AT, _SHAPE_AT = _ANALYSIS_FIELDS.index("sql"), _ANALYSIS_FIELDS.index("shape")


@dataclasses.dataclass(frozen=True, slots=True)
class _Shape:
    #: per plain literal of the text, in order: may its value vary within the shape?
    inert: tuple[bool, ...]


#: a template that failed its check: texts of this shape are analysed on their own
_UNSHARED: Any = object()

#: (dialect, text with every plain literal marked) -> which of them are inert
_shapes: LRU[tuple[str, str], _Shape] = LRU("literal-shapes", STATEMENTS, STATEMENT_CHARS)
#: (dialect, template text) -> the template's analysis, or _UNSHARED
_templates: LRU[tuple[str, str], Any] = LRU("shape-templates", STATEMENTS, STATEMENT_CHARS)
#: (text, dialect) -> the analysis handed out for a text judged by its shape
_texts: LRU[tuple[str, str], Analysis] = LRU("shaped-texts", STATEMENTS, STATEMENT_CHARS)
_local = threading.local()


def analysis_for(sql: Any, dialect: str) -> Analysis:
    """:func:`~governed_db.sql.analysis.analyze` for the statement path: a text of a known literal shape gets
    the shape's analysis (with its own ``sql``) without being parsed. Never raises on bad SQL."""
    if type(sql) is not str or len(sql) > MAX_CHARS or "\x00" in sql:
        return analyze(sql, dialect)
    found: Analysis | None = analyze.cached(sql, dialect)  # type: ignore[attr-defined]
    if found is not None:
        return found
    found = _texts.get((sql, dialect))
    if found is not None:
        return found
    try:
        found = _shaped(sql, dialect)
    except Exception:  # a gap in the fingerprint: the text is analysed on its own (never judged by a guess)
        found = None
    if found is None:
        return analyze(sql, dialect)
    _texts.put((sql, dialect), found, len(sql) + 64)
    return found


def clear() -> None:
    """Forget every shape (tests; a changed analyser)."""
    _shapes.clear()
    _templates.clear()
    _texts.clear()


def _tokenizer(gd: str) -> Any:
    tokenizers: dict[str, Any] | None = getattr(_local, "tokenizers", None)
    if tokenizers is None:
        tokenizers = _local.tokenizers = {}
    tk = tokenizers.get(gd)
    if tk is None:
        tk = tokenizers[gd] = Dialect.get_or_raise(gd).tokenizer()  # per thread: tokenizers keep state
    return tk


def _plain(sql: str, tok: Token) -> bool:
    tt = tok.token_type
    if tt == TokenType.NUMBER:
        return _PLAIN_NUMBER.fullmatch(sql, tok.start, tok.end + 1) is not None and tok.text == sql[tok.start : tok.end + 1]
    if tt == TokenType.STRING:
        text = tok.text
        return (
            _PLAIN_STRING.fullmatch(text) is not None
            and "--" not in text
            and sql[tok.start : tok.end + 1] == f"'{text}'"
        )
    return False


def _shaped(sql: str, dialect: str) -> Analysis | None:
    """The shape's analysis for ``sql``, or ``None`` when ``sql`` must be analysed as itself."""
    gd = sqlglot_dialect(dialect)
    tokens = _tokenizer(gd).tokenize(sql)
    plain: list[Token] = []
    parts: list[str] = []
    last = 0
    for tok in tokens:
        if tok.comments:
            return None  # comments (executable ones, hints) are analysed with their text
        if tok.token_type in _CANDIDATES and _plain(sql, tok):
            parts.append(sql[last : tok.start])
            parts.append("\x00n" if tok.token_type == TokenType.NUMBER else "\x00s")
            last = tok.end + 1
            plain.append(tok)
    if not plain:
        return None
    parts.append(sql[last:])
    marked = "".join(parts)
    shape_key = (dialect, marked)
    shape = _shapes.get(shape_key)
    if shape is None:  # first sighting: judged as its own text; learn which literals are inert
        real = analyze(sql, dialect)
        _shapes.put(shape_key, _Shape(_inert_literals(real, plain, gd)), len(marked) + 64)
        return None
    if len(shape.inert) != len(plain) or not any(shape.inert):
        return None
    pieces: list[str] = []
    last = 0
    for tok, inert in zip(plain, shape.inert, strict=True):
        if inert:
            pieces.append(sql[last : tok.start])
            pieces.append("?")
            last = tok.end + 1
    pieces.append(sql[last:])
    template_text = "".join(pieces)
    key = (dialect, template_text)
    template = _templates.get(key)
    if template is None:  # second sighting: build the template and check it against this real text
        real = analyze(sql, dialect)
        checked = _checked_template(template_text, dialect, gd, real, shape)
        _templates.put(key, checked, len(template_text) + 64)
        return None
    if template is _UNSHARED:
        return None
    # every field of the template (facts added to Analysis later included), with this text's own sql
    values = list(_analysis_values(template))
    values[_SQL_AT], values[_SHAPE_AT] = sql, key
    return Analysis(*values)


def _eligible(a: Analysis) -> bool:
    """One plain SELECT, nothing unusual about it."""
    if a.error is not None or a.flags or len(a.statements) != 1:
        return False
    st = a.statements[0]
    return (
        st.kind == "read"
        and st.operation == "SELECT"
        and st.error is None
        and not st.flags
        and not st.settings
        and not st.nested_dml
        and not st.select_into
        and isinstance(st.expression, exp.Select)
    )


def _inert_literals(real: Analysis, plain: list[Token], gd: str) -> tuple[bool, ...]:
    if not _eligible(real):
        return (False,) * len(plain)
    tree = real.statements[0].expression
    assert tree is not None
    at: dict[int, list[exp.Literal]] = {}
    for lit in tree.find_all(exp.Literal):
        start = lit.meta.get("start") if lit._meta else None
        if start is not None:
            at.setdefault(start, []).append(lit)
    out = []
    for tok in plain:
        found = at.get(tok.start, [])
        out.append(len(found) == 1 and found[0].this == tok.text and _inert_context(found[0], gd))
    return tuple(out)


def _inert_context(node: exp.Expr, gd: str) -> bool:
    """``node`` compared with a plain column in a WHERE (through AND/OR/NOT/parentheses only)."""
    parent = node.parent
    numeric = isinstance(node, exp.Placeholder) or (isinstance(node, exp.Literal) and not node.is_string)
    if isinstance(parent, exp.Neg) and parent.this is node and numeric:
        node, parent = parent, parent.parent  # -5: a negative constant
    if isinstance(parent, _COMPARISONS):
        other = parent.expression if parent.this is node else parent.this if parent.expression is node else None
    elif isinstance(parent, exp.In) and any(e is node for e in parent.expressions):
        other = parent.this
    else:
        return False
    if not isinstance(other, exp.Column) or not isinstance(other.this, exp.Identifier):
        return False
    if gd == "sqlite" and other.this.quoted:
        return False  # SQLite reads an unknown "name" as the string 'name'
    up = parent.parent
    while isinstance(up, _CONNECTIVES):
        up = up.parent
    return isinstance(up, exp.Where) and isinstance(up.parent, exp.Select)


def _facts(st: StatementInfo) -> tuple[Any, ...]:
    return tuple(getattr(st, name) for name in _FACT_FIELDS)


def _checked_template(template_text: str, dialect: str, gd: str, real: Analysis, shape: _Shape) -> Any:
    """The template's analysis when it judges exactly like ``real`` would, else :data:`_UNSHARED`."""
    tmpl: Analysis = analyze.__wrapped__(template_text, dialect)  # type: ignore[attr-defined]
    if not (_eligible(real) and _eligible(tmpl)) or tmpl.normalized != real.normalized:
        return _UNSHARED
    if _facts(tmpl.statements[0]) != _facts(real.statements[0]):
        return _UNSHARED
    tree = tmpl.statements[0].expression
    assert tree is not None
    holes = list(tree.find_all(exp.Placeholder))
    if len(holes) != sum(shape.inert) or not all(_inert_context(h, gd) for h in holes):
        return _UNSHARED
    return tmpl


__all__ = ["MAX_CHARS", "analysis_for", "clear"]
