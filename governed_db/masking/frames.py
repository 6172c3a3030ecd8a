"""Masking whole result frames: pandas, polars, pyarrow, and duckdb's ``fetchnumpy()`` dicts.

Columns are matched to the plan by position (frames keep the result's
column order) and masked value by value; a masked column becomes an
object/string column when the strategy changes its type. An unknown frame
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
        values = [m(None if _isna(v) else v) for v in df.iloc[:, i].tolist()]
        out.isetitem(i, pd.Series(values, index=df.index, dtype=object))
        plan.masked_cells += len(values)
    return out


def _isna(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _polars(plan: RowMasker, df: Any) -> Any:
    pl = importlib.import_module("polars")

    columns = []
    for i, m in _targets(plan, list(df.columns)):
        name = df.columns[i]
        values = [m(v) for v in df.to_series(i).to_list()]
        plan.masked_cells += len(values)
        try:
            columns.append(pl.Series(name, values, strict=False))
        except Exception:
            columns.append(pl.Series(name, [None if v is None else str(v) for v in values]))
    return df.with_columns(columns) if columns else df


def _arrow(plan: RowMasker, table: Any) -> Any:
    pa = importlib.import_module("pyarrow")

    for i, m in _targets(plan, list(table.column_names)):
        values = [m(v) for v in table.column(i).to_pylist()]
        plan.masked_cells += len(values)
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
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        out[names[i]] = arr
    return out
