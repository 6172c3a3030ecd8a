"""Notices and log messages a PostgreSQL server sends while a statement runs (``RAISE NOTICE`` in a trigger or a
function, ``WARNING``, ``INFO``): their text is composed by code that reads any value it likes (``RAISE NOTICE
'customer % updated', NEW.full_name``), so for an identity that sees masked columns it is withheld — the
severity and SQLSTATE stay (decision 0230).

The drivers hand callers notices through their own hooks (psycopg ``add_notice_handler``, psycopg2
``connection.notices``, asyncpg ``add_log_listener``); the governed connections pass them through
:func:`notice_text` / :class:`WithheldNotice`.

A notice raised row by row (``to_tsvector`` on a long word: NOTICE 54000; ``pg_advisory_unlock`` of a lock not
held: WARNING 01000) comes in the order the rows are read, and PostgreSQL reads a relation with a masked column
in stored order, which masked widths decide (decisions 0272, 0334): the severities and SQLSTATEs in sequence, how
many came before an error, tell that order. Notices that arrive while such a statement runs, or while rows of one
are fetched from a server-side cursor, are not delivered at all (:func:`dropped`, decision 0340).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from governed_db.pipeline import Governor
    from governed_db.results import ResultState

R = TypeVar("R")
#: psycopg2 keeps the last 50 notices in its own list (``CONN_NOTICES_LIMIT``); :class:`ScrubbedNotices` over it
#: keeps as many
PSYCOPG2_KEPT = 50

#: what a withheld notice says instead of its text
WITHHELD = "[REDACTED: a notice may quote masked values]"
#: the fields of a notice that hold text composed from values (psycopg ``Diagnostic``, asyncpg messages)
TEXT_FIELDS = frozenset(
    {"message_primary", "message_detail", "message_hint", "context", "internal_query", "statement_position",
     "message", "detail", "hint", "where", "query", "internal_position", "position"}
)  # fmt: skip


def withholds(gov: Governor) -> bool:
    """Whether notices on ``gov``'s connection are withheld: masking is on and the current identity sees some
    column masked (fail closed when that cannot be told)."""
    try:
        from governed_db.masking.engine import state_for
        from governed_db.masking.plan import Access

        state = state_for(gov)
        if not state.active:
            return False
        return not Access(state, gov.resolve_identity()).everything
    except Exception:
        return True


def dropped(gov: Governor) -> bool:
    """Whether a notice arriving now on ``gov``'s connection is not delivered: the statement running (or whose rows
    a server-side cursor is fetching) reads a relation whose read order masked values may decide (the order
    guard's flag, decisions 0312, 0334). Fail closed when that cannot be told."""
    try:
        state = gov.masking_state
        return state is not None and state.active and (state.read_order or state.fetching_read_order)
    except Exception:
        return True


def fetched(st: ResultState, fetch: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """``fetch(*args)`` (a fetch from ``st``'s cursor) with notices dropped while it runs when ``st``'s statement
    read in a masked order: a server-side cursor reads its rows, and raises their notices, at the fetch."""
    ms = st.gov.masking_state if st.read_order else None
    if ms is None:
        return fetch(*args, **kwargs)
    before, ms.fetching_read_order = ms.fetching_read_order, True
    try:
        return fetch(*args, **kwargs)
    finally:
        ms.fetching_read_order = before


async def fetched_async(st: ResultState, fetch: Callable[..., Awaitable[R]], *args: Any, **kwargs: Any) -> R:
    """:func:`fetched` for a fetch awaited (asyncpg runs log listeners soon after the message, before the awaiting
    coroutine resumes)."""
    ms = st.gov.masking_state if st.read_order else None
    if ms is None:
        return await fetch(*args, **kwargs)
    before, ms.fetching_read_order = ms.fetching_read_order, True
    try:
        return await fetch(*args, **kwargs)
    finally:
        ms.fetching_read_order = before


def fetched_rows(st: ResultState, rows: Iterator[Any]) -> Iterator[Any]:
    """``rows`` (a server-side cursor's iterator, fetching batches as it goes) each pulled as :func:`fetched`."""
    while True:
        try:
            row = fetched(st, next, rows)
        except StopIteration:
            return
        yield row


def notice_text(gov: Governor, text: Any) -> Any:
    """A notice's text as the caller may see it (psycopg2's ``NOTICE:  ...`` lines keep their severity)."""
    if not isinstance(text, str) or not withholds(gov):
        return text
    head, sep, _ = text.partition(":  ")
    return f"{head}{sep}{WITHHELD}\n" if sep and head.isupper() else WITHHELD


class WithheldNotice:
    """A read-only copy of a notice (psycopg ``Diagnostic``, asyncpg ``PostgresLogMessage``) whose text fields
    say :data:`WITHHELD`; its other attributes (``severity``, ``sqlstate``) are the notice's own."""

    def __init__(self, raw: Any) -> None:
        object.__setattr__(self, "_raw", raw)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._raw, name)
        if name in TEXT_FIELDS and value is not None:
            return WITHHELD
        if name == "as_dict" and callable(value):
            return lambda: {k: (WITHHELD if k in TEXT_FIELDS and v is not None else v) for k, v in value().items()}
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __str__(self) -> str:
        return WITHHELD

    def __repr__(self) -> str:
        return f"<notice {getattr(self._raw, 'severity', '')} {WITHHELD}>"


def scrubbed_callback(gov: Governor, callback: Any, *, connection: Any = None) -> Any:
    """``callback`` receiving withheld copies of the notices; asyncpg's log listeners take the connection first:
    ``connection`` (the governed one) is passed instead of the driver's own."""

    def deliver(*args: Any) -> Any:
        if dropped(gov):
            return None
        notice = args[-1]
        if withholds(gov):
            notice = WithheldNotice(notice)
        return callback(connection, notice) if connection is not None else callback(notice)

    deliver.__wrapped__ = callback  # type: ignore[attr-defined]
    return deliver


class ScrubbedNotices:
    """psycopg2 appends each notice's text to ``connection.notices`` (any object with ``append``): this one
    appends them withheld to the caller's own container (a list, a deque) set in its place, or (``own``) keeps
    them as they are in the driver's own list, trimmed as psycopg2 trims it, for the governed connection to
    withhold as it reads them; either way not those :func:`dropped` says arrive in a masked read order."""

    def __init__(self, gov: Governor, target: Any, *, own: bool = False) -> None:
        self._gov = gov
        self._target = target
        self._own = own

    def append(self, item: Any) -> None:
        if dropped(self._gov):
            return
        if not self._own:
            self._target.append(notice_text(self._gov, item))
            return
        self._target.append(item)
        if isinstance(self._target, list) and len(self._target) > PSYCOPG2_KEPT:
            del self._target[: len(self._target) - PSYCOPG2_KEPT]

    # the raw connection's ``notices`` still reads as a sequence
    def __len__(self) -> int:
        return len(self._target)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._target)

    def __getitem__(self, index: Any) -> Any:
        return self._target[index]


__all__ = [
    "WITHHELD", "ScrubbedNotices", "WithheldNotice", "dropped", "fetched", "fetched_async", "fetched_rows", "notice_text",
    "scrubbed_callback", "withholds",
]  # fmt: skip
