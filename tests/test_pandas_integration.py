"""pandas read_sql / to_sql through a governed sqlite3 connection and a governed SQLAlchemy engine."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

pd = pytest.importorskip("pandas")
sa = pytest.importorskip("sqlalchemy")

import governed_db  # noqa: E402
from governed_db import ApprovalRequired, GuardrailViolation, Identity  # noqa: E402
from governed_db.integrations.sqlalchemy import create_engine, refusal_of  # noqa: E402

BOT = Identity("notebook-bot", kind="agent")
EMAIL = "carol.private@example.com"
FRAME = pd.DataFrame({"id": [1, 2], "name": ["Carol", "Dan"], "email": [EMAIL, "dan@example.org"]})


@pytest.fixture(params=["sqlite3", "engine"])
def con(request: pytest.FixtureRequest, tmp_path: Any, spans: Any) -> Any:
    provider, _ = spans
    path = tmp_path / "frames.db"
    # the table exists up front: production sends CREATE TABLE for approval (see the test below)
    plain = sqlite3.connect(path)
    plain.execute("CREATE TABLE people (id INTEGER, name TEXT, email TEXT)")
    plain.commit()
    plain.close()
    opts: dict[str, Any] = {
        "identity": BOT,
        "environment": "production",
        "tracer_provider": provider,
        "approvals": str(tmp_path / "approvals.db"),
    }
    if request.param == "sqlite3":
        conn = governed_db.wrap(sqlite3.connect(path), **opts)
        yield conn
        conn.close()
    else:
        engine = create_engine(f"sqlite:///{path}", **opts)
        yield engine
        engine.dispose()


def test_to_sql_then_read_sql_round_trip(con: Any, spans: Any) -> None:
    """to_sql appends and read_sql reads through the pipeline; every statement is a recorded span."""
    _, exporter = spans
    assert FRAME.to_sql("people", con, index=False, if_exists="append") == 2
    out = pd.read_sql("SELECT id, name FROM people ORDER BY id", con)
    assert out["id"].tolist() == [1, 2]
    recorded = exporter.get_finished_spans()
    ops = {s.attributes.get("db.operation.name") for s in recorded}
    assert {"INSERT", "SELECT"} <= ops
    assert all(
        s.attributes.get("governed_db.identity.subject") == "notebook-bot"
        for s in recorded
        if "db.operation.name" in s.attributes
    )


def test_replace_is_refused_in_production(con: Any) -> None:
    """to_sql(if_exists='replace') drops the table, so production refuses it with a readable reason."""
    FRAME.to_sql("people", con, index=False, if_exists="append")
    with pytest.raises(Exception) as info:
        FRAME.to_sql("people", con, index=False, if_exists="replace")
    refusal = refusal_of(info.value)
    assert isinstance(refusal, GuardrailViolation)
    expected = governed_db.evaluate('DROP TABLE "people"', dialect="sqlite", environment="production")
    assert refusal.rules == expected.rules != ()
    assert len(pd.read_sql("SELECT * FROM people", con)) == 2  # nothing was dropped


def _review_ddl(stmt: Any, ctx: Any) -> Any:
    from governed_db.policy.decision import Action, RuleHit

    if stmt is not None and stmt.operation.startswith("CREATE"):
        return RuleHit("review-ddl", Action.REQUIRE_APPROVAL, "schema changes are reviewed", None)
    return None


def test_new_table_waits_for_approval_under_a_reviewing_policy(tmp_path: Any) -> None:
    """to_sql into a new table is DDL: under a policy that reviews DDL, the approval request reads as text."""
    from governed_db.integrations.tooling import refusal_message

    conn = governed_db.wrap(
        sqlite3.connect(tmp_path / "r.db"),
        identity=BOT,
        environment="production",
        policy=governed_db.Policy(name="review", rules=(_review_ddl,)),
        approvals=str(tmp_path / "approvals.db"),
    )
    with pytest.raises(Exception) as info:
        FRAME.to_sql("brand_new", conn, index=False)
    assert isinstance(refusal_of(info.value), ApprovalRequired)
    assert (refusal_message(info.value) or "").startswith("approval required by rule review-ddl")
    conn.close()


def test_read_sql_masks_email(con: Any) -> None:
    """The raw email never appears in a DataFrame read through governance."""
    FRAME.to_sql("people", con, index=False, if_exists="append")
    out = pd.read_sql("SELECT * FROM people", con)
    assert EMAIL not in out.to_string()
