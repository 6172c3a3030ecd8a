"""What a governed cursor does to rows on their way out.

A :class:`ResultState` is armed once per executed statement with the masking
plan and the row cap, then every exit (``fetchone``, ``fetchmany``,
``fetchall``, iteration, driver extras) passes rows through it. When nothing
needs doing it is left disarmed and rows pass through untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governed_db.identity import Identity
    from governed_db.masking import MaskPlan
    from governed_db.pipeline import Governor


#: the C path of a result read whole (``fetchall()``), unmasked and uncapped: ``rows_all(state, rows)`` counts the
#: rows and folds the count into an audit-only span's deferred outcome, or returns False having changed nothing
#: (then :meth:`ResultState.many` runs). Set at the first audit-only Recorder (telemetry._configure_native); tests
#: set it to None to run the Python reference (docs/decisions/0412-a-result-read-whole-counted-in-c.md)
native_rows: list[Any] = [None]


class ResultState:
    __slots__ = (
        "active",
        "changed",
        "gov",
        "identity",
        "limit",
        "masked_cells",
        "masked_columns",
        "plan",
        "poisoned",
        "premasked",
        "raw",
        "read_order",
        "reported",
        "rows",
        "span",
    )

    def __init__(self, raw: Any, gov: Governor) -> None:
        self.raw = raw
        self.gov = gov
        #: rows reach the caller already masked (the driver's row factory was given masked values)
        self.premasked = False
        #: the statement read a relation whose order masked values may decide: an error raised while its rows are
        #: fetched (a server-side cursor) may be the error of the row read first (decision 0334)
        self.read_order = False
        #: how many rows the last write changed, where governance's SQL replaced its result on the
        #: connection (DuckDB's bounded writes); None: the driver's rowcount says it
        self.changed: int | None = None
        self.reset()

    def reset(self) -> None:
        # keep in step with arm()
        self.active = False
        self.plan: MaskPlan | None = None
        #: the plan's masked column names, read once per result (the result record, the counters)
        self.masked_columns: tuple[str, ...] = ()
        self.limit: int | None = None
        self.span: Any = None
        self.identity: Identity | None = None
        self.poisoned: BaseException | None = None
        self.rows = 0
        self.reported = 0  # of ``rows``, how many the rate limiter has been told about
        self.masked_cells = 0

    def arm(self, plan: MaskPlan | None, row_limit: int | None, span: Any, identity: Identity) -> None:
        if self.span is not None or self.gov.limiter is not None:
            self.finish()  # (with neither, finish() has nothing to do)
        # a new statement's result: nothing of the last one (its poison included) carries over (reset(),
        # spelled out: this runs for every statement)
        self.active = plan is not None or row_limit is not None or span is not None
        self.plan = plan
        self.masked_columns = plan.masked_columns if plan is not None else ()
        self.limit = row_limit
        self.span = span
        self.identity = identity
        self.poisoned = None
        self.rows = 0
        self.reported = 0
        self.masked_cells = 0

    def rowcount(self) -> int | None:
        """The last statement's rowcount: the driver's, or the rows a restored write changed."""
        return self.changed if self.changed is not None else self.gov.driver.rowcount(self.raw)

    def poison(self, exc: BaseException) -> None:
        """Withhold every row of this result (a fault happened while planning masking)."""
        self.finish()
        self.poisoned = exc
        self.active = True

    @property
    def touches_rows(self) -> bool:
        """Whether rows of this result are withheld, masked or capped (False: they would leave as they are)."""
        return self.poisoned is not None or self.plan is not None or self.limit is not None

    # -- exits -----------------------------------------------------------------------------------
    def one(self, row: Any) -> Any:
        if self.poisoned is not None:
            raise self.poisoned
        if row is None:
            self.finish()
            return None
        if self.limit is not None and self.rows >= self.limit:
            self.finish()
            return None
        self.rows += 1
        return self.plan.apply_row(row) if self.plan is not None and not self.premasked else row

    def many(self, rows: list[Any], *, complete: bool) -> list[Any]:
        """``rows`` capped and masked: a new list when anything is done to them (``rows`` itself is not changed)."""
        if self.poisoned is not None:
            raise self.poisoned
        if self.limit is not None:
            room = max(self.limit - self.rows, 0)
            if len(rows) > room:
                rows = rows[:room]
                complete = True
        self.rows += len(rows)
        out = self.plan.apply_rows(rows) if self.plan is not None and rows and not self.premasked else rows
        if complete:
            self.finish()
        return out

    def iterate(self, rows: Iterable[Any]) -> Iterator[Any]:
        if self.poisoned is not None:
            raise self.poisoned
        plan = None if self.premasked else self.plan
        for row in rows:
            if self.limit is not None and self.rows >= self.limit:
                break
            self.rows += 1
            yield plan.apply_row(row) if plan is not None else row
        self.finish()

    def frame(self, frame: Any) -> Any:
        """A whole result as a frame (pandas, polars, Arrow, or a dict of column arrays), capped and masked."""
        if self.poisoned is not None:
            raise self.poisoned
        n = _frame_rows(frame)
        if self.limit is not None:
            room = max(self.limit - self.rows, 0)
            if n is None or n > room:  # counted across chunks (fetch_df_chunk)
                frame = _frame_head(frame, room)
                n = room
        out = self.plan.apply_frame(frame) if self.plan is not None else frame
        self.rows += n or 0
        self.finish()
        return out

    def finish(self) -> None:
        """Record how many rows this result handed out (once)."""
        span, self.span = self.span, None
        if span is not None:
            plan = self.plan
            masked_columns = self.masked_columns
            counted = getattr(plan, "masked_cells", None)
            self.masked_cells = counted if isinstance(counted, int) else self.rows * len(masked_columns)
            self.gov.recorder.result_consumed(
                span, rows=self.rows, masked_cells=self.masked_cells, masked_columns=masked_columns
            )
        limiter = self.gov.limiter  # the policy's, looked up once per connection
        # only the rows not yet reported: ``rows`` itself keeps counting, since the row cap is measured on it
        if limiter is not None and self.identity is not None and self.rows > self.reported:
            limiter.on_rows(self.identity, self.rows - self.reported, environment=self.gov.environment)
            self.reported = self.rows


def _frame_rows(frame: Any) -> int | None:
    if isinstance(frame, dict):  # fetchnumpy / torch / tf: column name -> array
        return len(next(iter(frame.values()))) if frame else 0
    try:
        return len(frame)
    except TypeError:
        return None


def _frame_head(frame: Any, n: int) -> Any:
    """The first ``n`` rows, in the frame's own type."""
    if isinstance(frame, dict):
        return {k: v[:n] for k, v in frame.items()}
    if hasattr(frame, "iloc"):  # pandas: [:n] would slice rows too, but iloc says so
        return frame.iloc[:n]
    if callable(getattr(frame, "slice", None)):  # polars DataFrame, pyarrow Table
        return frame.slice(0, n)
    return frame[:n]
