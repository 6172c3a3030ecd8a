"""``generalize``: coarsen a date to its year or month.

A ``date``/``datetime`` stays a date (the first day of its year or month);
text in ISO form (``1984-05-12``) becomes ``1984`` or ``1984-05``. Text that
is not a date is redacted rather than passed through.
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

_ISO = re.compile(r"\s*(\d{4})[-/.](\d{1,2})(?:[-/.]\d{1,2})?(?:[ T].*)?\s*")


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
            return f"{m.group(1)}-{int(m.group(2)):02d}" if by_month else m.group(1)
        return constant_for(value, token)

    return generalize
