"""SQLite's length limit on a whole row: an UPDATE that lengthens a row fails by the masked values beside it.

SQLite refuses to store a row whose record is longer than ``SQLITE_LIMIT_LENGTH`` (``string or blob too big``):
the record holds every column, so ``UPDATE customers SET amount = zeroblob(3933) WHERE id = 1`` (a clear column,
by key) failed under a limit of 4,000 bytes exactly when the name, e-mail and SSN stored beside it took more than
the rest; a binary search on the length measured them. An INSERT (or ``INSERT OR REPLACE``) writes a row of the
caller's values only, and a DELETE makes none, so only an UPDATE (``ON CONFLICT DO UPDATE`` too) keeping masked
values in the row can reach the limit by them.

What an UPDATE may add to a row is read from its text: the bytes of its literals, numbers (at most 32 bytes however
they are stored), ``zeroblob(n)``/``randomblob(n)`` of a literal ``n``, ``printf()`` of literals (its widths
counted), functions whose result is no longer than their arguments (``upper``, ``trim``, ``substr``, ``coalesce``,
``iif``, ``CASE``; over the column written, its own stored value), a concatenation of such values, and the
parameters it is given (counted when it runs). Anything else (``printf()`` of a parameter or a column,
``replace()``, another column, a subquery) has no bound the statement shows. What one UPDATE gives a row may take
at most ``limit / (2 * columns)`` bytes: the values such writes give a row then fill at most half of it, and the
limit is reached only by a row whose other values (masked ones among them) already fill the other half. Decision 0405.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlglot.errors
from sqlglot import exp

from governed_db.sql._sqlite_reading import parse_one

#: the most bytes a number takes in a row, as an integer, a real, or the text of either (``-1.2345678901234e+300``)
NUMBER = 32
#: SQLite's default (and hard) ``SQLITE_MAX_LENGTH``: the limit of a connection whose own cannot be read
DEFAULT_LIMIT = 1_000_000_000

#: values computed as numbers whatever their arguments are (arithmetic yields an integer, a real or NULL)
_NUMERIC: tuple[type[exp.Expression], ...] = tuple(
    c
    for c in (
        exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.BitwiseAnd, exp.BitwiseOr, exp.BitwiseNot,
        exp.BitwiseLeftShift, exp.BitwiseRightShift, exp.Length, exp.Abs, exp.Round, exp.Unicode, exp.StrPosition,
        exp.Sign, exp.Boolean, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Not, exp.And, exp.Or,
        exp.Is, exp.In, exp.Between, exp.Like, getattr(exp, "Ceil", None), getattr(exp, "Floor", None),
        exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime,
    )
    if c is not None
)  # fmt: skip
#: functions SQLite evaluates to a number or a short fixed text (a date, a time), by name
_SHORT_CALLS = frozenset({
    "random", "changes", "total_changes", "last_insert_rowid", "julianday", "unixepoch", "date", "time",
    "datetime", "typeof", "sign", "trunc",
})  # fmt: skip
#: functions that return their first argument as it is (hints to the planner)
_AS_IS_CALLS = frozenset({"likely", "unlikely", "likelihood"})
#: functions whose result is no longer than their longest argument (SQLite's upper/lower change ASCII only)
_NO_LONGER: tuple[type[exp.Expression], ...] = (
    exp.Upper,
    exp.Lower,
    exp.Trim,
    exp.Substring,
    exp.Coalesce,
    exp.If,
    exp.Case,
    exp.Nullif,
    exp.Paren,
    exp.Greatest,
    exp.Least,
)
_DIGITS = re.compile(r"\d+")
_TEXT_TYPES = frozenset({exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR, exp.DataType.Type.CHAR})


#: a column an UPDATE copies, told to the caller that resolves it: True when it keeps the column among those whose
#: longest stored value bounds the copy (decision 0413)
Copied = Callable[[exp.Column], bool]


def value_bytes(
    node: exp.Expression,
    excluded: tuple[int | None, bool] | None = None,
    own: str = "",
    copied: Copied | None = None,
) -> tuple[int | None, bool]:
    """(the most bytes ``node`` can put in a row not counting parameters, whether parameters count too); the
    bytes are ``None`` when the text shows no bound. ``excluded``: the bound of an upsert's inserted values, which
    ``excluded.<column>`` reads; ``own``: the column the value is written to, whose stored value a function no
    longer than its arguments may keep (``SET city = upper(city)`` lengthens no row; ``city || 'x'`` does);
    ``copied``: resolves another column (``s.status``) to one whose longest stored value, read when the statement
    runs, bounds it — its bytes not counted here (decision 0413)."""
    if isinstance(node, exp.Null) or (isinstance(node, exp.Column) and node.name.upper() == "DEFAULT"):
        return 0, False
    if isinstance(node, exp.Var) and node.name.upper() == "DEFAULT":
        return 0, False
    if isinstance(node, exp.Literal):
        return (len(node.this.encode("utf-8", "surrogatepass")) if node.is_string else NUMBER), False
    if isinstance(node, exp.HexString):
        return len(str(node.this)) // 2 + 1, False
    if isinstance(node, (exp.Placeholder, exp.Parameter)):
        return 0, True
    if isinstance(node, exp.Column) and excluded is not None and node.table.lower() == "excluded":
        return excluded
    if isinstance(node, exp.Column) and own and not node.table and node.name.lower() == own:
        return 0, False
    if isinstance(node, exp.Column) and copied is not None:
        return (0, False) if copied(node) else (None, False)
    if isinstance(node, _NUMERIC):
        return NUMBER, False
    if isinstance(node, exp.Anonymous) and node.name.lower() in _SHORT_CALLS:
        return NUMBER * 2, False
    if isinstance(node, exp.Anonymous) and node.name.lower() in _AS_IS_CALLS and node.expressions:
        return value_bytes(node.expressions[0], excluded, own, copied)
    if (
        isinstance(node, exp.Anonymous)
        and node.name.lower() in ("zeroblob", "randomblob")
        and len(node.expressions) == 1
    ):
        size = node.expressions[
            0
        ]  # as long as its literal says (a parameter or a computed size: no bound shown)
        return (
            (max(int(size.this), 1), False)
            if isinstance(size, exp.Literal) and size.this.isdigit()
            else (None, False)
        )
    if isinstance(node, exp.Chr):
        return 4 * len(node.expressions), False  # a character of each code point
    if isinstance(node, exp.Format) or (isinstance(node, exp.Anonymous) and node.name.lower() == "printf"):
        return _formatted(
            [node.this, *node.expressions] if isinstance(node, exp.Format) else node.expressions
        )
    if isinstance(node, exp.Cast):
        to = node.args.get("to")
        if (
            isinstance(to, exp.DataType)
            and to.this not in _TEXT_TYPES
            and to.this != exp.DataType.Type.VARBINARY
        ):
            return (
                (NUMBER, False)
                if to.is_type(*exp.DataType.NUMERIC_TYPES)
                else _longest([node.this], excluded, own, copied)
            )
        return _longest([node.this], excluded, own, copied)
    if isinstance(node, (exp.DPipe, exp.Concat)):
        return _total(node.iter_expressions(), excluded, copied)
    if isinstance(node, _NO_LONGER):
        return _longest(_values_of(node), excluded, own, copied)
    return None, False


def _formatted(args: list[exp.Expression]) -> tuple[int | None, bool]:
    """printf()/format() of literals: no longer than twice its format and text arguments (``%q`` doubles quotes)
    and every number it names (a width or precision, in the format's digits or as a ``*`` argument) together, or
    four times these (``%.*c`` repeats a character of up to four bytes) when a text is not ASCII."""
    if not args or not all(isinstance(a, exp.Literal) for a in args):
        return None, False
    texts = [str(a.this) for a in args if a.is_string]
    wide = 1 if all(t.isascii() for t in texts) else 4
    total = sum(2 * len(t.encode("utf-8", "surrogatepass")) for t in texts)
    total += sum(wide * int(d) for t in texts for d in _DIGITS.findall(t))
    for a in args:
        if not a.is_string:
            try:
                total += 2 * NUMBER + wide * int(min(abs(float(str(a.this))), DEFAULT_LIMIT))
            except ValueError:  # 0x10: a width written in hexadecimal
                return None, False
    return total, False


def _values_of(node: exp.Expression) -> Iterator[exp.Expression]:
    """The arguments whose value may be the result (a CASE's or iif's branches; every argument of the rest)."""
    if isinstance(node, exp.Case):
        yield from (
            i.args["true"]
            for i in node.args.get("ifs") or ()
            if isinstance(i.args.get("true"), exp.Expression)
        )
        default = node.args.get("default")
        if isinstance(default, exp.Expression):
            yield default
        return
    if isinstance(node, exp.If):
        yield from (
            v for v in (node.args.get("true"), node.args.get("false")) if isinstance(v, exp.Expression)
        )
        return
    yield from node.iter_expressions()


def _longest(
    values: Iterable[exp.Expression],
    excluded: tuple[int | None, bool] | None,
    own: str = "",
    copied: Copied | None = None,
) -> tuple[int | None, bool]:
    # the columns copied among them all count (a sum bounds their longest too)
    return _combined(values, excluded, own, max, copied)


def _total(
    values: Iterable[exp.Expression], excluded: tuple[int | None, bool] | None, copied: Copied | None = None
) -> tuple[int | None, bool]:
    return _combined(values, excluded, "", operator.add, copied)


def _combined(
    values: Iterable[exp.Expression],
    excluded: tuple[int | None, bool] | None,
    own: str,
    join: Callable[[int, int], int],
    copied: Copied | None = None,
) -> tuple[int | None, bool]:
    """The values' bounds joined by ``join`` (``max``: one of them is the result; ``add``: all of them are)."""
    bound, sized = 0, False
    for v in values:
        n, p = value_bytes(v, excluded, own, copied)
        if n is None:
            return None, False
        bound, sized = join(bound, n), sized or p
    return bound, sized


def inserted_bytes(values: exp.Expression | None) -> tuple[int | None, bool]:
    """The bound of what an INSERT's VALUES give one row (its longest row), which an upsert's ``excluded.*``
    reads; ``None`` for a SELECT or anything else."""
    if isinstance(values, exp.Tuple):
        values = exp.Values(expressions=[values])
    if not isinstance(values, exp.Values):
        return None, False
    return _longest((exp.Concat(expressions=list(r.expressions)) for r in values.expressions), None)


def unbounded_set(clause: str) -> bool:
    """Whether the SET clause ``clause`` (of an UPDATE in a trigger's body) gives a value no bound its text shows
    (``new.city``: whatever the firing statement wrote); unreadable, it does."""
    try:
        tree = parse_one(f"UPDATE t SET {clause}", "sqlite")
    except sqlglot.errors.SqlglotError:
        return True
    for item in tree.expressions if isinstance(tree, exp.Update) else [None]:
        if not isinstance(item, exp.EQ):
            return True
        own = item.this.name.lower() if isinstance(item.this, exp.Column) else ""
        if value_bytes(item.expression, None, own)[0] is None:
            return True
    return False


def parameter_bytes(params: Any) -> int:
    """The bytes the text and blob parameters of one execution hold (of its longest row, for executemany's rows).
    Parameters of a shape not read here (an object, not a sequence or mapping) count as no bound."""
    if isinstance(params, (list, tuple)) and params and all(_row(r) for r in params):
        return max(_bytes_in(r) for r in params)
    return _bytes_in(params)


def _row(value: Any) -> bool:
    return isinstance(value, (Sequence, Mapping)) and not isinstance(value, (str, bytes, bytearray))


def _bytes_in(params: Any) -> int:
    if params is None:
        return 0
    if not _row(params):
        return DEFAULT_LIMIT
    total = 0
    for v in params.values() if isinstance(params, Mapping) else params:
        if isinstance(v, str):
            total += len(v) if v.isascii() else len(v.encode("utf-8", "surrogatepass"))
        elif isinstance(v, (bytes, bytearray, memoryview)):
            total += len(v)
        elif v is None or isinstance(v, (int, float)):
            total += NUMBER
        else:
            total += DEFAULT_LIMIT  # an adapter registered for its type decides how long it is: no bound
    return total


def most_per_value(limit: int, columns: int) -> int:
    """The most bytes an UPDATE may give a row of a table of ``columns`` columns under the length limit ``limit``."""
    return limit // (2 * max(columns, 1))


__all__ = [
    "DEFAULT_LIMIT",
    "Copied",
    "inserted_bytes",
    "most_per_value",
    "parameter_bytes",
    "unbounded_set",
    "value_bytes",
]
