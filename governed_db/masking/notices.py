"""Notices and log messages a PostgreSQL server sends while a statement runs (``RAISE NOTICE`` in a trigger or a
function, ``WARNING``, ``INFO``): their text is composed by code that reads any value it likes (``RAISE NOTICE
'customer % updated', NEW.full_name``), so for an identity that sees masked columns it is withheld — the
severity and SQLSTATE stay (decision 0230).

The drivers hand callers notices through their own hooks (psycopg ``add_notice_handler``, psycopg2
``connection.notices``, asyncpg ``add_log_listener``); the governed connections pass them through
:func:`notice_text` / :class:`WithheldNotice`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governed_db.pipeline import Governor

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
        notice = args[-1]
        if withholds(gov):
            notice = WithheldNotice(notice)
        return callback(connection, notice) if connection is not None else callback(notice)

    deliver.__wrapped__ = callback  # type: ignore[attr-defined]
    return deliver


class ScrubbedNotices:
    """psycopg2 appends each notice's text to ``connection.notices`` (any object with ``append``): this one
    appends them withheld to the caller's own container (a list, a deque) set in its place."""

    def __init__(self, gov: Governor, target: Any) -> None:
        self._gov = gov
        self._target = target

    def append(self, item: Any) -> None:
        self._target.append(notice_text(self._gov, item))


__all__ = ["WITHHELD", "ScrubbedNotices", "WithheldNotice", "notice_text", "scrubbed_callback", "withholds"]
