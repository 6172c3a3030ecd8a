"""``generalize``: coarsen a date to its year or month.

A ``date``/``datetime`` stays a date (the first day of its year or month);
text in ISO form stays text in the same form, so it still parses as a date
(SQLite keeps dates as text, and SQLAlchemy's ``Date`` reads them back):
``1984-05-12`` becomes ``1984-01-01`` (or ``1984-05-01`` by month), and a
time part is zeroed (``1984-05-12 10:11:12`` -> ``1984-01-01 00:00:00``). A
bare year or year-month stays as coarse as it is. A day-first or month-first
date (``12/03/1985``, ``21.07.1990``) keeps its separators (``01/01/1985``); a
date kept as the number ``19850312`` stays a number (``19850101``), a year
alone (``1985``) as it is. Text that is not a date is redacted rather than
passed through.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from governed_db.errors import ConfigurationError
from governed_db.masking.strategies import Masker, StrategyContext
from governed_db.masking.strategies.redact import constant_for

NAME = "generalize"
SUMMARY = "Date generalization: keep only the year (default) or year and month; non-dates are redacted."

_ISO = re.compile(r"(\s*\d{4})([-/.])(\d{1,2})(?:\2(\d{1,2}))?((?:[ T].*)?\s*)", re.S)
_DIGIT = re.compile(r"\d")
#: a day and month before the year (``12/03/1985``, ``21.07.1990``, ``3-7-1985``): Europe's order and America's
_DAY_FIRST = re.compile(r"(\s*)(\d{1,2})([-/.])(\d{1,2})\3(\d{4})((?:[ T].*)?\s*)", re.S)


def build(label: str, options: dict[str, Any], ctx: StrategyContext) -> Masker:
    granularity = options.get("granularity", "year")
    if granularity not in ("year", "month"):
        raise ConfigurationError(f"generalize: granularity must be 'year' or 'month', got {granularity!r}")
    by_month = granularity == "month"
    token = f"[{label}]"

    def generalize(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, _dt.datetime):
            return value.replace(
                month=value.month if by_month else 1, day=1, hour=0, minute=0, second=0, microsecond=0
            )
        if isinstance(value, _dt.date):
            return value.replace(month=value.month if by_month else 1, day=1)
        if isinstance(value, int) and not isinstance(value, bool) and 1000 <= value <= 9999:
            return value  # a year alone is as coarse as year granularity gets
        if isinstance(value, int) and not isinstance(value, bool) and 10000101 <= value <= 99991231:
            # a date kept as the number yyyymmdd (19850312): the first of its year or month, still a number
            number_month, number_day = value // 100 % 100, value % 100
            if 1 <= number_month <= 12 and 1 <= number_day <= 31:
                return value // 10000 * 10000 + (number_month if by_month else 1) * 100 + 1
        if isinstance(value, str):
            m = _ISO.fullmatch(value)
            if m is None:
                return _day_first(value, by_month, token)
            year, sep, month, day, rest = m.groups()
            month_out = month if by_month else "1".zfill(len(month))
            out = f"{year}{sep}{month_out}"
            if day is not None:
                out += f"{sep}{'1'.zfill(len(day))}"
            # the time of day (and a zone offset, which could narrow the place) is zeroed, keeping its shape
            return out + _DIGIT.sub("0", rest)
        return constant_for(value, token)

    return generalize


def _day_first(value: str, by_month: bool, token: str) -> str:
    """``12/03/1985`` -> ``01/01/1985``, in the value's own separators and widths (decision 0394). By month, the
    month is kept only where the order is plain (a part above 12 is the day); an ambiguous one is redacted."""
    m = _DAY_FIRST.fullmatch(value)
    if m is None:
        return token
    lead, first, sep, second, year, rest = m.groups()
    a, b = int(first), int(second)
    if not (1 <= a <= 31 and 1 <= b <= 31 and min(a, b) <= 12):
        return token
    one_first, one_second = "1".zfill(len(first)), "1".zfill(len(second))
    if by_month:
        if a > 12:  # day first: 21/07/1990
            one_second = second
        elif b > 12:  # month first: 07/21/1990
            one_first = first
        else:
            return token
    return f"{lead}{one_first}{sep}{one_second}{sep}{year}{_DIGIT.sub('0', rest)}"
