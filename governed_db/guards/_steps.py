"""The vocabulary of governance's steps around a driver call: what a step yields and what it asks to run."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any


class _Run:
    def __repr__(self) -> str:
        return "RUN"


#: yielded by the steps: run the statement on the driver now (the answer is the driver call's outcome)
RUN: Any = _Run()

Steps = Generator[Any, Any, None]


class Unread(str):
    """Governance's SQL whose rows are the application's to read (a result given back): run, not fetched."""

    __slots__ = ()


class Query(str):
    """Governance's SQL whose rows it reads (a probe, a catalog check): one statement, fetched.

    Every other request may be several statements in one text (``ROLLBACK TO ...; RELEASE ...``) whose rows
    nobody reads; drivers that run the two kinds differently (asyncpg) tell them apart by this type.
    """

    __slots__ = ()


__all__ = ["RUN", "Query", "Steps", "Unread"]
