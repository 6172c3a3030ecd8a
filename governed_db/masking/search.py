"""Searching free text that holds masked items, without finding the items (decision 0192).

A ``FREE_TEXT`` column with only a few sampled hits stays searchable (decision 0092: one false positive must
not refuse every filter on a description column), while the items found in it come back masked. A search is
then an oracle on those items: ``WHERE notes LIKE '%536-22%'`` finds the row whose note holds that SSN, so the
SSN is recovered digit by digit. The rule: once its sample held items, such a column may be searched only by a
literal without digits, ``-`` or ``_`` (LIKE's one-character wildcard counts characters: an item's format), so
no SSN, phone, card or NHS number can be matched into, whatever the kinds sampled; where IP addresses were
found, no ``.`` or ``:`` either; where items made of letters were (e-mail addresses, IBANs, keys), none of the
characters that join their parts (``@ . + : / =``). Anything else that computes on the column in a predicate,
sort or grouping is refused, as for any masked column.

Residual risk (docs/masking.md): a word search can still confirm a run of *letters* inside an item made of
letters (``'%to alic%'`` matches "to alice@example.com"), and an IPv6 address's hex letters.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from governed_db.masking.origins import Origin

#: what no search of a column holding items may contain: digits and the separators of digit items
_ALWAYS = "-_"
#: more separators, by the kind of item found in the column's sample
_SEPARATORS = {"IP_ADDRESS": ".:"}
#: kinds of item made of digits and separators only (anything else is made of letters too)
_DIGIT_ITEMS = frozenset({"US_SSN", "PHONE", "CREDIT_CARD", "NATIONAL_ID", "UK_NHS", "DATE_OF_BIRTH", "IP_ADDRESS"})
_LETTER_JOINTS = "@.+:/="


def _banned(found: frozenset[str]) -> str:
    """Characters a search literal may not hold besides digits."""
    extra = _ALWAYS
    for kind in sorted(found):
        extra += _SEPARATORS.get(kind, "") if kind in _DIGIT_ITEMS else _LETTER_JOINTS
    return "".join(dict.fromkeys(extra))


def _string(node: exp.Expression | None) -> str | None:
    while isinstance(node, exp.Paren):
        node = node.this
    return str(node.this) if isinstance(node, exp.Literal) and node.is_string else None


def _literals(column: exp.Column) -> list[str | None] | None:
    """The literals ``column`` is searched with (``None`` for a non-literal one), or ``None`` when this
    appearance is not a plain search (``col [NOT] LIKE/ILIKE 'x'``, ``col = 'x'``, ``col <> 'x'``,
    ``col IN ('x', ...)``, also over ``lower(col)``/``upper(col)``)."""
    target: exp.Expression = column
    parent = target.parent
    if isinstance(parent, exp.Is) and isinstance(parent.expression, exp.Null):
        return []  # IS [NOT] NULL: its NULLs show in its masked output anyway
    while isinstance(parent, (exp.Paren, exp.Lower, exp.Upper)):
        target, parent = parent, parent.parent
    if isinstance(parent, (exp.Like, exp.ILike)) and parent.this is target:
        if isinstance(parent.parent, exp.Escape):
            return [None]
        return [_string(parent.expression)]
    if isinstance(parent, (exp.EQ, exp.NEQ)):
        other = parent.expression if parent.this is target else parent.this
        return [_string(other)]
    if isinstance(parent, exp.In) and parent.this is target:
        if parent.args.get("query") is not None or parent.args.get("unnest") is not None:
            return [None]
        return [_string(e) for e in parent.expressions]
    return None


#: where a row source's own projection may sit: it is a row, not a value inside an expression
_ROW_PLACES = (exp.Subquery, exp.Union, exp.CTE, exp.With, exp.From, exp.Join, exp.Lateral)


def _projected(column: exp.Column) -> bool:
    """The column as a result column of its own (``SELECT notes``, also of a FROM subquery or CTE): not a use.
    In a scalar subquery (``WHERE (SELECT notes ...) LIKE ...``) or a set comparison it is one."""
    node: exp.Expression = column
    if isinstance(node.parent, exp.Alias):
        node = node.parent
    select = node.parent
    if not (isinstance(select, exp.Select) and node in select.expressions) or select.args.get("distinct"):
        return False
    child: exp.Expression = select
    up = child.parent
    while up is not None:
        if isinstance(up, exp.Select):
            # a row source of an enclosing query (its FROM, a join, a CTE): rows, not a value
            return child.arg_key in ("from", "from_", "joins", "with", "with_")
        if not isinstance(up, _ROW_PLACES) or (isinstance(up, exp.Union) and up.args.get("distinct")):
            return False
        child, up = up, up.parent
    return True


def _judge(col: exp.Column, extra: str, kinds: str) -> str | None:
    literals = _literals(col)
    if literals is None:
        return "a computation or comparison other than a search by a literal"
    for text in literals:
        if text is None:
            return "a search whose pattern is not a literal (a bind parameter, a column, an ESCAPE)"
        if any(ch.isdigit() or ch in extra for ch in text):
            return (
                f"a search for {text!r}, which could match inside the {kinds} items it holds (no digits "
                f"or {' '.join(repr(c) for c in extra)} in a search of it)"
            )
    return None


def unsafe_search(
    refs: Iterable[tuple[exp.Column, Origin]],
    statements: Iterable[exp.Expression | None],
    ref: tuple[str, str],
    found: frozenset[str],
) -> str | None:
    """Why using free-text column ``ref`` (holding items of the kinds ``found``) could find a masked item in
    it, or ``None`` when every use is a search by a literal that cannot.

    ``refs`` are the column references the lineage walk resolved (an alias of the column counts as it; a
    value computed from it may not be searched at all); ``statements`` are searched by the column's name too,
    for any reference the walk did not resolve."""
    extra, kinds = _banned(found), ", ".join(sorted(found))
    for col, origin in refs:
        if ref not in origin.sources or _projected(col):
            continue
        if origin.kind != "column":
            return "a search of a value computed from it (a replace() can turn what it holds into words)"
        why = _judge(col, extra, kinds)
        if why is not None:
            return why
    name = ref[1].lower()
    for tree in statements:
        for col in tree.find_all(exp.Column) if tree is not None else ():
            if col.name.lower() == name and not _projected(col):
                why = _judge(col, extra, kinds)
                if why is not None:
                    return why
    return None


__all__ = ["unsafe_search"]
