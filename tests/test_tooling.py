"""governed_db.integrations.tooling: refusals as agent-readable text, JSON-safe cells, the three SQL tools."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from governed_db import ApprovalRequired, GovernanceFault, GuardrailViolation, Identity
from governed_db.integrations.tooling import SQLTools, json_safe, refusal_message, refusal_of
from governed_db.policy.decision import Action, Decision, RuleHit


def _decision(action: Action, rule: str, reason: str, remedy: str | None) -> Decision:
    return Decision.combine([RuleHit(rule, action, reason, remedy)], environment="production")


DENY = GuardrailViolation("refused", _decision(Action.DENY, "drop", "DROP TABLE destroys data", "use a migration"))
APPROVAL = ApprovalRequired("approval required", _decision(Action.REQUIRE_APPROVAL, "ddl", "schema change", None),
                            request_id="r-1", approve_command="governed-db approvals approve r-1 --as <reviewer>")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (DENY, "refused by rule drop: DROP TABLE destroys data. Next step: use a migration."),
        (APPROVAL, "approval required by rule ddl: schema change. Request id: r-1. Next step: ask a reviewer to "
                   "run `governed-db approvals approve r-1 --as <reviewer>`, then retry the same statement."),
        (GovernanceFault("store down"), "governance fault, the statement was not run: store down"),
        (ValueError("nope"), None),
    ],
)
def test_refusal_message(exc: BaseException, expected: str | None) -> None:
    """Each kind of refusal becomes one paragraph naming the rule and the next step; other errors are None."""
    assert refusal_message(exc) == expected


def test_refusal_without_remedy_still_has_a_next_step() -> None:
    """A rule without a remedy still tells the agent what to do."""
    bare = GuardrailViolation("x", _decision(Action.DENY, "custom", "not here", None))
    assert (refusal_message(bare) or "").endswith("Next step: rewrite the statement so the rule no longer "
                                                  "applies, or ask a human.")


class _Wrapper(Exception):
    def __init__(self, orig: BaseException) -> None:
        super().__init__("wrapped")
        self.orig = orig


def test_refusal_of_follows_orig_and_cause_chains() -> None:
    """refusal_of finds the refusal under SQLAlchemy-style .orig and pandas/jupysql-style __cause__."""
    try:
        try:
            raise _Wrapper(DENY)
        except _Wrapper as inner:
            raise RuntimeError("jupysql says no") from inner
    except RuntimeError as outer:
        assert refusal_of(outer) is DENY
    assert refusal_of(ValueError("x")) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None), (True, True), (3, 3), (2.5, 2.5), ("s", "s"),
        (dt.date(2026, 1, 2), "2026-01-02"), (dt.datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05"),
        (decimal.Decimal("1.10"), "1.10"), (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (b"\x00\x01", "base64:AAE="), ((1, "a"), [1, "a"]), ({"k": dt.time(1, 2)}, {"k": "01:02:00"}),
        (object, str(object)),
    ],
)
def test_json_safe(value: Any, expected: Any) -> None:
    """Cells handed to agents are JSON values."""
    assert json_safe(value) == expected


@pytest.fixture
def tools(tmp_path: Path) -> Iterator[SQLTools]:
    from governed_db.integrations.sqlalchemy import create_engine

    path = tmp_path / "t.db"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE n (id INTEGER PRIMARY KEY, v TEXT); "
                       "INSERT INTO n VALUES (1,'a'),(2,'b'),(3,'c'); CREATE VIEW nv AS SELECT id FROM n;")
    conn.close()
    engine = create_engine(f"sqlite:///{path}", identity=Identity("t", kind="agent"), environment="production")
    yield SQLTools(engine, max_rows=2)
    engine.dispose()


def test_sql_tools_cap_rows_and_list_views(tools: SQLTools) -> None:
    """run_query never hands out more than max_rows (flagging truncation); list_tables includes views."""
    assert tools.list_tables() == ["n", "nv"]
    result = tools.run_query("SELECT id FROM n ORDER BY id", max_rows=50)
    assert result.rows == [[1], [2]] and result.truncated
    assert tools.run_query("SELECT id FROM n WHERE id = 3").to_dict() == {
        "columns": ["id"], "rows": [[3]], "truncated": False, "rows_affected": None}


def test_sql_tools_refusal_raises_for_the_caller_to_render(tools: SQLTools) -> None:
    """A refused statement raises; refusal_message renders it."""
    with pytest.raises(Exception) as info:
        tools.run_query("DELETE FROM n")
    assert (refusal_message(info.value) or "").startswith("refused by rule")


def test_refusal_message_finds_a_fault_under_orig_and_cause_chains() -> None:
    """A governance fault wrapped by SQLAlchemy (.orig) and re-raised (__cause__) still reads as a fault."""
    fault = GovernanceFault("audit store down")

    class Wrapped(Exception):
        orig = fault

    try:
        try:
            raise Wrapped("sqlalchemy-style")
        except Wrapped as inner:
            raise RuntimeError("pandas-style") from inner
    except RuntimeError as outer:
        assert refusal_message(outer) == "governance fault, the statement was not run: audit store down"
    assert refusal_message(ValueError("not governance")) is None
