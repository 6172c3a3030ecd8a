"""Shared pieces of the interception and driver tests: a marker-denying policy and a stub mask plan.

The stub plan masks the column named ``pii`` in whatever shape a driver hands
rows out (tuples, dicts, sqlite3.Row, psycopg2 DictRow, pandas frames, numpy
dicts), so an exit that skips the result state shows up as an unmasked value.
"""

from __future__ import annotations

from typing import Any

from governed_db.policy import Policy, RuleContext
from governed_db.policy.decision import Action, RuleHit

MASK = "***"
MARKER = "forbidden_"


def deny_marker(stmt: Any, ctx: RuleContext) -> RuleHit | None:
    """Deny any statement whose tables (or text) mention the marker."""
    tables = (*stmt.tables_read, *stmt.tables_written) if stmt is not None else ()
    if any(MARKER in t.lower() for t in tables) or MARKER in ctx.analysis.sql.lower():
        return RuleHit("marker", Action.DENY, "the statement touches a marker table", "leave it alone")
    return None


POLICY = Policy(name="interception-test", rules=(deny_marker,), observe_only=frozenset())


class StubPlan:
    masked_columns = ("pii",)

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.index = names.index("pii")

    def apply_row(self, row: Any) -> Any:
        if isinstance(row, dict):
            return {**row, "pii": MASK}
        if hasattr(row, "keys") and not isinstance(row, tuple):  # sqlite3.Row, psycopg2 DictRow
            return tuple(MASK if k == "pii" else row[k] for k in row.keys())  # noqa: SIM118 - sqlite3.Row iterates values
        values = list(row)
        values[self.index] = MASK
        return tuple(values)

    def apply_rows(self, rows: list[Any]) -> list[Any]:
        return [self.apply_row(r) for r in rows]

    def apply_frame(self, frame: Any) -> Any:
        if isinstance(frame, dict):  # fetchnumpy / torch / tf: column -> array
            import numpy as np

            return {
                k: (np.array([MASK] * len(v), dtype=object) if k == "pii" else v) for k, v in frame.items()
            }
        frame = frame.copy()
        frame["pii"] = MASK
        return frame


def stub_plan_masking(description: Any, analysis: Any, *, identity: Any, gov: Any) -> StubPlan | None:
    names = [str(d[0]).lower() for d in description or ()]
    return StubPlan(names) if "pii" in names else None


def values_of(out: Any) -> list[Any]:
    """Every cell of a result, whatever its shape."""
    if out is None:
        return []
    if hasattr(out, "to_dict") and hasattr(out, "columns"):  # pandas
        return [v for col in out.columns for v in out[col].tolist()]
    if isinstance(out, dict):
        return [v for col in out.values() for v in list(col)]
    cells: list[Any] = []
    for row in out:
        if isinstance(row, dict):
            cells.extend(row.values())
        elif hasattr(row, "keys") and not isinstance(row, tuple):
            cells.extend(row[k] for k in row.keys())  # noqa: SIM118 - sqlite3.Row iterates values
        else:
            cells.extend(row)
    return cells


def assert_masked(out: Any) -> None:
    cells = values_of(out)
    assert MASK in cells, f"no masked cell in {out!r}"
    assert "alice@example.com" not in cells, f"an unmasked pii value left: {out!r}"
