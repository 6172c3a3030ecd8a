"""Applying a plan to rows of every shape a driver hands out, keeping the shape.

Built once per result: a per-row function generated for the result's width
(``lambda r: (r[0], m1(r[1]), r[2])``) so the common tuple path is one call
per row and one call per masked cell. Other shapes — ``sqlite3.Row``, dicts
(pymysql ``DictCursor``, psycopg ``dict_row``, psycopg2 ``RealDictCursor``),
named tuples (psycopg ``namedtuple_row``), lists and psycopg2 ``DictRow`` —
go through the same maskers and come back as the same type.
"""

from __future__ import annotations

import copy
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from governed_db.masking.strategies import Masker

_row_lock = threading.Lock()
_row_cursors: dict[tuple[str, ...], sqlite3.Cursor] = {}


def _sqlite_row(values: tuple[Any, ...], names: tuple[str, ...]) -> sqlite3.Row:
    """A ``sqlite3.Row`` over ``values`` (its constructor wants a cursor with the right description)."""
    cur = _row_cursors.get(names)
    if cur is None:
        with _row_lock:
            if len(_row_cursors) > 256:
                _row_cursors.clear()
            conn = sqlite3.connect(":memory:", check_same_thread=False)
            cols = ", ".join('NULL AS "{}"'.format(n.replace('"', '""')) for n in names) or "NULL"
            cur = conn.execute(f"SELECT {cols}")
            _row_cursors[names] = cur
    return sqlite3.Row(cur, values)


def compile_tuple_fn(maskers: Sequence[Masker | None]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """``lambda r: (r[0], m1(r[1]), ...)`` for this width: no loop, no per-cell branch."""
    env: dict[str, Any] = {}
    parts = []
    for i, m in enumerate(maskers):
        if m is None:
            parts.append(f"r[{i}]")
        else:
            env[f"m{i}"] = m
            constant = getattr(m, "text_constant", None)
            inline = getattr(m, "inline", None)
            if isinstance(constant, str):
                env[f"c{i}"] = constant
                parts.append(f"(c{i} if r[{i}].__class__ is str else m{i}(r[{i}]))")
            elif inline is not None:
                # a strategy's fast path for text, spelled out in the row function (no call per cell)
                template, consts = inline
                for name, value in consts.items():
                    env[f"{name}{i}"] = value
                names = {name: f"{name}{i}" for name in consts}
                parts.append(template.format(v=f"v{i}", x=f"x{i}", r=f"r[{i}]", m=f"m{i}", **names))
            else:
                parts.append(f"m{i}(r[{i}])")
    body = ", ".join(parts) + ("," if len(parts) == 1 else "")
    fn: Callable[[Sequence[Any]], tuple[Any, ...]] = eval(f"lambda r: ({body})", env)
    return fn


class RowMasker:
    """Masks one result's rows; ``masked_cells`` counts cells that went through a masker."""

    __slots__ = (
        "_by_name", "_fn", "_idx", "computed", "masked_cells", "masked_columns", "maskers", "names", "width",
    )

    def __init__(
        self,
        names: Sequence[str],
        maskers: Sequence[Masker | None],
        fn: Callable[[Sequence[Any]], tuple[Any, ...]] | None = None,
    ) -> None:
        self.names = tuple(names)
        self.maskers = tuple(maskers)
        self.width = len(maskers)
        self._idx = tuple((i, m) for i, m in enumerate(maskers) if m is not None)
        self.masked_columns = tuple(self.names[i] for i, _ in self._idx)
        self._by_name = {self.names[i]: m for i, m in self._idx}
        self._fn = fn if fn is not None else compile_tuple_fn(maskers)
        self.masked_cells = 0
        #: masked positions whose value the statement computes (set by the planner; all of them if unknown)
        self.computed = frozenset(i for i, _ in self._idx)

    def fresh(self) -> RowMasker:
        """A plan over the same columns with its own ``masked_cells`` counter, nothing re-derived.

        The masking hot path keeps one plan per statement shape as a template and hands each result a
        fresh copy, so counters are never shared between results (or threads).
        """
        new = RowMasker.__new__(RowMasker)
        new.names, new.maskers, new.width = self.names, self.maskers, self.width
        new._idx, new.masked_columns, new._by_name, new._fn = (
            self._idx,
            self.masked_columns,
            self._by_name,
            self._fn,
        )
        new.masked_cells = 0
        new.computed = self.computed
        return new

    @property
    def masked_positions(self) -> tuple[tuple[int, Masker], ...]:
        """``(index, masker)`` for each masked column of the result."""
        return self._idx

    @property
    def maskers_by_name(self) -> dict[str, Masker]:
        """Masked column name -> masker (for shapes keyed by name: dict rows, frames)."""
        return self._by_name

    def apply_row(self, row: Any) -> Any:
        if row is None:
            return None
        self.masked_cells += len(self._idx)
        if type(row) is tuple and len(row) == self.width:
            return self._fn(row)
        return self._other(row)

    def apply_rows(self, rows: list[Any]) -> list[Any]:
        if not rows:
            return rows
        self.masked_cells += len(self._idx) * len(rows)
        if type(rows[0]) is tuple and type(rows[-1]) is tuple and len(rows[0]) == self.width:
            fn = self._fn
            return [fn(r) for r in rows]
        other = self._other
        return [other(r) for r in rows]

    # -- other shapes ----------------------------------------------------------------------------
    def _other(self, row: Any) -> Any:
        if isinstance(row, sqlite3.Row):
            return _sqlite_row(self._fn(tuple(row)), tuple(row.keys()))
        if isinstance(row, Mapping):
            return self._mapping(row)
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
            raise TypeError(f"governed_db cannot mask a row of type {type(row).__name__}; rows are withheld")
        if len(row) != self.width:
            # a row_factory dropped or added values: positions no longer say which cells are masked
            raise TypeError(
                f"governed_db cannot mask a row of {len(row)} values for a result of {self.width} columns; "
                "rows are withheld (use a row factory that keeps every column in order)"
            )
        if isinstance(row, tuple):
            make = getattr(row, "_make", None)  # namedtuple
            masked = self._fn(row)
            return (
                make(masked) if make is not None else type(row)(masked) if type(row) is not tuple else masked
            )
        if type(row) is list:
            return list(self._fn(row))
        if isinstance(row, list):
            for i, m in self._idx:  # list subclasses (psycopg2 DictRow) keep their index: mask in place
                row[i] = m(row[i])
            return row
        return self._fn(row)

    def _mapping(self, row: Mapping[Any, Any]) -> Any:
        keys = list(row.keys())
        pairs: list[tuple[Any, Masker]]
        unknown = set(keys).difference(self.names) if tuple(keys) != self.names else ()
        if not unknown:
            # keys are column names: by name, whatever their order (a factory may sort them; duplicate names
            # collapse to one key — psycopg dict_row keeps the last)
            pairs = [(k, self._by_name[k]) for k in keys if k in self._by_name]
        elif len(keys) == self.width:
            # renamed but as wide as the result (pymysql DictCursor: the second ``email`` becomes ``o.email``):
            # the keys are in column order
            pairs = [(keys[i], m) for i, m in self._idx]
        else:
            # a key that names no column, and not one key per column: nothing says which are masked
            raise TypeError(
                f"governed_db cannot mask a row with key(s) {sorted(map(str, unknown))} that name no column "
                "of the result; rows are withheld (use a row factory that keeps the column names)"
            )
        if type(row) is dict:
            out: Any = dict(row)
        else:
            try:
                out = copy.copy(row)
            except Exception:
                out = row
            if type(out) is not type(row):
                out = row
        for k, m in pairs:
            out[k] = m(row[k])
        return out

    def apply_frame(self, frame: Any) -> Any:
        from governed_db.masking.frames import mask_frame

        return mask_frame(self, frame)
