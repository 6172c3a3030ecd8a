"""psycopg2 errors leaving a governed statement: no raw cursor, a scrubbed ``diag`` (decision 0273).

Kept apart from :mod:`governed_db.drivers.psycopg2` (which imports the pipeline) so that masking's error scrubbing
can use it without importing the driver module back.
"""

from __future__ import annotations

import contextlib
import functools
import types
from typing import Any

__all__ = ["DIAG_FIELDS", "seal_error", "sealed_class"]

#: the fields of psycopg2's ``Error.diag`` (a ``Diagnostics`` read in C from the server's error result)
DIAG_FIELDS = (
    "column_name", "constraint_name", "context", "datatype_name", "internal_position", "internal_query",
    "message_detail", "message_hint", "message_primary", "schema_name", "severity", "severity_nonlocalized",
    "source_file", "source_function", "source_line", "sqlstate", "statement_position", "table_name",
)  # fmt: skip


@functools.lru_cache(maxsize=256)
def _sealed_class(cls: type) -> type:
    """A subclass of psycopg2's error class ``cls`` (same name, module and behaviour) whose ``cursor`` is ``None``
    and whose ``diag`` is the scrubbed copy masking left (the server's own fields when there is none)."""
    base_diag = cls.__dict__.get("diag") or next(k.__dict__["diag"] for k in cls.__mro__ if "diag" in k.__dict__)

    def diag(self: Any) -> Any:
        kept = self.__dict__.get("_governed_diag")
        return kept if kept is not None else base_diag.__get__(self, cls)

    def cursor(self: Any) -> None:
        return None

    def __reduce__(self: Any) -> Any:
        return (cls, self.args, {"pgerror": self.pgerror, "pgcode": self.pgcode})

    return type(cls.__name__, (cls,), {
        "__module__": cls.__module__, "__qualname__": cls.__qualname__, "__doc__": cls.__doc__,
        "diag": property(diag), "cursor": property(cursor), "__reduce__": __reduce__, "_governed_sealed": True,
    })  # fmt: skip


def seal_error(exc: BaseException, diag: dict[str, Any] | None = None) -> None:
    """psycopg2's ``Error.cursor`` is the raw cursor the statement ran on: ``e.cursor.execute(...)`` ran anything
    around governance, and ``e.diag`` (read in C) quoted the failing row (``Failing row contains (1, Alice Smith,
    ...)``). Both are read-only, so the error's class becomes a subclass that answers ``cursor`` with ``None`` and
    ``diag`` with ``diag`` (a scrubbed copy) when given. The object stays the one raised: same type for ``except``,
    same ``pgcode``/``pgerror``, picklable as its base class (decision 0273)."""
    cls: type = type(exc)
    if not hasattr(cls, "pgcode") or not cls.__module__.startswith("psycopg2"):
        return
    if not getattr(cls, "_governed_sealed", False):
        with contextlib.suppress(TypeError):  # psycopg2.Error itself is a static type: never raised alone
            exc.__class__ = _sealed_class(cls)
    if diag is not None and getattr(type(exc), "_governed_sealed", False):
        exc.__dict__["_governed_diag"] = types.SimpleNamespace(**diag)


#: the sealed subclass of a psycopg2 error class (a withheld error takes that of ``XX000``, decision 0334)
sealed_class = _sealed_class
