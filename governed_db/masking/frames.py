"""Masking whole result frames: pandas, polars, pyarrow, and duckdb's ``fetchnumpy()`` dicts.

Columns are matched to the plan by position (frames keep the result's
column order) and masked value by value. A masked column keeps its dtype
whenever the masked values still fit it: a generalized date stays
``datetime64``, text stays a string dtype, and a number NULLed because it was
derived from a masked column becomes a *nullable* integer (``Int64``,
``<NA>``) rather than ``object`` or ``float``. Only values that no longer fit
(``[EMAIL]`` in a date column) make it an object column. An unknown frame
type is refused rather than handed out unmasked.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governed_db.masking.rows import RowMasker


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


def mask_frame(plan: RowMasker, frame: Any) -> Any:
    if frame is None:
        return None
    mod = _module(frame)
    if mod == "pandas" and hasattr(frame, "iloc"):
        return _pandas(plan, frame)
    if mod == "polars" and hasattr(frame, "with_columns"):
        return _polars(plan, frame)
    if mod == "pyarrow" and hasattr(frame, "set_column"):
        return _arrow(plan, frame)
    if isinstance(frame, Mapping):
        return _numpy_dict(plan, frame)
    if isinstance(frame, list):
        return plan.apply_rows(frame)
    raise TypeError(f"governed_db cannot mask a result of type {type(frame).__name__}; it is withheld")


def _targets(plan: RowMasker, names: list[str]) -> list[tuple[int, Any]]:
    """(position, masker) per masked column: by position when the frame is as wide as the result, else by name."""
    if len(names) == plan.width:
        return list(plan.masked_positions)
    unknown = set(names).difference(plan.names)
    if unknown:  # renamed columns: nothing says whether they are masked
        raise TypeError(
            f"governed_db cannot mask a result with column(s) {sorted(unknown)} that name no column of the "
            "statement's result; it is withheld"
        )
    by_name = plan.maskers_by_name
    return [(i, by_name[n]) for i, n in enumerate(names) if n in by_name]


def _pandas(plan: RowMasker, df: Any) -> Any:
    pd = importlib.import_module("pandas")

    out = df.copy()
    for i, m in _targets(plan, [str(c) for c in df.columns]):
        column = df.iloc[:, i]
        missing = column.isna().tolist()  # NaN, NaT, pd.NA -> None, found in one vectorised pass
        values = [m(None if na else v) for v, na in zip(column.tolist(), missing, strict=True)]
        out.isetitem(i, _pandas_series(pd, values, column))
        plan.masked_cells += len(values)
    return out


def _pandas_series(pd: Any, values: list[Any], original: Any) -> Any:
    """``values`` as a Series of the original column's dtype when they fit it, else of the nearest that does."""
    dtype = original.dtype
    kind = getattr(dtype, "kind", "O")
    present = [v for v in values if v is not None]
    target: Any = None
    if kind in "iu" or str(dtype) in (
        "Int8",
        "Int16",
        "Int32",
        "Int64",
        "UInt8",
        "UInt16",
        "UInt32",
        "UInt64",
    ):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            # a NULL (a number derived from a masked column) needs the nullable integer dtype, not float
            target = dtype if len(present) == len(values) else _nullable_int(pd, dtype)
    elif kind == "f":
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            target = dtype
    elif kind == "b" or str(dtype) == "boolean":
        if all(isinstance(v, bool) for v in present):
            target = dtype if len(present) == len(values) else "boolean"
    elif kind in "Mm":
        import datetime as _dt

        wanted = _dt.datetime if kind == "M" else _dt.timedelta
        if all(isinstance(v, wanted) for v in present):
            target = dtype
    elif isinstance(dtype, pd.StringDtype) and all(isinstance(v, str) for v in present):
        target = dtype
    if target is not None:
        try:
            return pd.Series(values, index=original.index, dtype=target, name=original.name)
        except (TypeError, ValueError, OverflowError):
            pass
    return pd.Series(values, index=original.index, dtype=object, name=original.name)


def _nullable_int(pd: Any, dtype: Any) -> Any:
    name = str(dtype)
    if name[:1] in ("I", "U"):
        return dtype  # already a pandas nullable integer
    return {"u": "UInt", "i": "Int"}[dtype.kind] + str(dtype.itemsize * 8)


def _polars(plan: RowMasker, df: Any) -> Any:
    pl = importlib.import_module("polars")

    columns = []
    for i, m in _targets(plan, list(df.columns)):
        name = df.columns[i]
        original = df.to_series(i)
        values = [m(v) for v in original.to_list()]
        plan.masked_cells += len(values)
        try:  # the original dtype when every masked value still fits it (strict: no silent nulls)
            columns.append(pl.Series(name, values, dtype=original.dtype, strict=True))
            continue
        except Exception:
            pass
        try:
            columns.append(pl.Series(name, values, strict=False))
        except Exception:
            columns.append(pl.Series(name, [None if v is None else str(v) for v in values]))
    return df.with_columns(columns) if columns else df


def _arrow(plan: RowMasker, table: Any) -> Any:
    pa = importlib.import_module("pyarrow")

    for i, m in _targets(plan, list(table.column_names)):
        original = table.column(i)
        values = [m(v) for v in original.to_pylist()]
        plan.masked_cells += len(values)
        try:  # the original type when every masked value still fits it
            array = pa.array(values, type=original.type)
        except Exception:
            try:
                array = pa.array(values)
            except Exception:
                array = pa.array([None if v is None else str(v) for v in values])
        table = table.set_column(i, table.column_names[i], array)
    return table


def _numpy_dict(plan: RowMasker, data: Mapping[str, Any]) -> Any:
    import numpy as np

    names = list(data)
    out = dict(data)
    for i, m in _targets(plan, names):
        column = data[names[i]]
        raw = column.tolist() if hasattr(column, "tolist") else list(column)
        mask = getattr(column, "mask", None)
        if mask is not None and getattr(mask, "shape", ()) == getattr(column, "shape", None):
            raw = [None if bool(flag) else v for v, flag in zip(raw, mask.tolist(), strict=False)]
        values = [m(v) for v in raw]
        plan.masked_cells += len(values)
        out[names[i]] = _numpy_column(np, values, column, mask is not None)
    return out


def _numpy_fits(kind: str, present: list[Any]) -> bool:
    import datetime as _dt

    if kind in "iu":
        return all(isinstance(v, int) and not isinstance(v, bool) for v in present)
    if kind == "f":
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
    if kind == "b":
        return all(isinstance(v, bool) for v in present)
    if kind == "M":
        return all(isinstance(v, (_dt.datetime, _dt.date)) for v in present)
    if kind == "m":
        return all(isinstance(v, _dt.timedelta) for v in present)
    return False


def _numpy_column(np: Any, values: list[Any], original: Any, was_masked: bool) -> Any:
    """``values`` in the original column's dtype when they fit it (duckdb hands a column with NULLs over as a
    masked array: a number NULLed because it is derived from a masked column stays an ``int64`` masked array,
    a generalized date a ``datetime64``), else an object array (masked where the original was)."""
    missing = [v is None for v in values]
    dtype = getattr(original, "dtype", None)
    present = [v for v in values if v is not None]
    if dtype is not None and dtype.kind in "iufbMm" and _numpy_fits(dtype.kind, present):
        try:
            data = np.zeros(len(values), dtype=dtype)
            for j, v in enumerate(values):
                if v is not None:
                    data[j] = v
        except (TypeError, ValueError, OverflowError):
            pass
        else:
            return np.ma.MaskedArray(data, mask=missing) if was_masked or any(missing) else data
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return np.ma.MaskedArray(arr, mask=missing) if was_masked else arr
