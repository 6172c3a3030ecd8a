"""``generalize``: coarsen a date to its year or month.

A ``date``/``datetime`` stays a date (the first day of its year or month);
text in ISO form stays text in the same form, so it still parses as a date
(SQLite keeps dates as text, and SQLAlchemy's ``Date`` reads them back):
``1984-05-12`` becomes ``1984-01-01`` (or ``1984-05-01`` by month), and a
time part is zeroed (``1984-05-12 10:11:12`` -> ``1984-01-01 00:00:00``). A
bare year or year-month stays as coarse as it is. Text that is not a date is
redacted rather than passed through.
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
        if isinstance(value, str):
            m = _ISO.fullmatch(value)
            if m is None:
                return token
            year, sep, month, day, rest = m.groups()
            month_out = month if by_month else "1".zfill(len(month))
            out = f"{year}{sep}{month_out}"
            if day is not None:
                out += f"{sep}{'1'.zfill(len(day))}"
            # the time of day (and a zone offset, which could narrow the place) is zeroed, keeping its shape
            return out + _DIGIT.sub("0", rest)
        return constant_for(value, token)

    return generalize
