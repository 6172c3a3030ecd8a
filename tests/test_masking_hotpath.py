"""The masking hot path: a repeated statement is answered from a per-connection cache keyed by the statement
object, identity, schema version and result shape — and every one of those changing still re-plans."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import governed_db
from governed_db import Identity, masking

BOT = Identity("bot", kind="agent")
SUPPORT = Identity("sam", kind="human", roles=("support",))


def _conn() -> tuple[sqlite3.Connection, Any]:
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE items (id INTEGER, name TEXT, price REAL)")
    raw.execute("INSERT INTO items VALUES (1, 'widget', 2.5)")
    raw.execute("CREATE TABLE users (id INTEGER, email TEXT, ssn TEXT)")
    raw.execute("INSERT INTO users VALUES (1, 'alice@example.com', '536-22-8726')")
    raw.commit()
    conn = governed_db.wrap(
        raw,
        identity=BOT,
        environment="production",
        audit=False,
        masking={"unmask": [{"role": "support", "labels": ["EMAIL"]}]},
    )
    return raw, conn


def _state(conn: Any) -> Any:
    return conn._self_gov.state["masking"]


def test_repeated_statement_is_answered_from_the_hot_cache() -> None:
    """After the first run, a non-sensitive statement's plan and verdict come from the hot caches, exactly."""
    _, conn = _conn()
    cur = conn.cursor()
    for i in range(3):
        cur.execute("SELECT id, name, price FROM items WHERE id = ?", (1,))
        assert cur.fetchall() == [(1, "widget", 2.5)], i
    state = _state(conn)
    assert len(state.hot) == 1  # one entry per statement, holding its verdicts (decision 0423)
    (entry,) = state.hot.values()
    assert entry[masking.HOT_USES] is True and entry[masking.HOT_ORDER] is not None
    assert entry[masking.HOT_PLAN] is not None


def test_hot_cache_is_per_identity() -> None:
    """The same statement under another identity (a grant) is planned for that identity, not reused."""
    _, conn = _conn()
    sql = "SELECT email, ssn FROM users"
    assert conn.execute(sql).fetchone() == ("a***@example.com", "[US_SSN]")
    assert conn.execute(sql).fetchone() == ("a***@example.com", "[US_SSN]")
    with governed_db.acting_as(SUPPORT):
        assert conn.execute(sql).fetchone() == ("alice@example.com", "[US_SSN]")
    assert conn.execute(sql).fetchone() == ("a***@example.com", "[US_SSN]")


def test_hot_cache_follows_schema_changes() -> None:
    """DDL through the connection re-plans: a column added to a plain table is classified and masked."""
    _, conn = _conn()
    sql = "SELECT * FROM items"
    assert conn.execute(sql).fetchall() == [(1, "widget", 2.5)]
    assert conn.execute(sql).fetchall() == [(1, "widget", 2.5)]
    with governed_db.acting_as(Identity("dba")):  # an agent's DDL needs approval (rule agent-ddl)
        conn.execute("ALTER TABLE items ADD COLUMN email TEXT")
    conn.execute("UPDATE items SET email = 'bob@example.org' WHERE id = 1")
    assert conn.execute(sql).fetchall() == [(1, "widget", 2.5, "b***@example.org")]


def test_hot_cache_still_checks_write_backs_each_time() -> None:
    """Writes are never answered from the hot cache: a masked placeholder as a parameter is refused each time."""
    _, conn = _conn()
    sql = "UPDATE items SET name = ? WHERE id = 1"
    conn.execute(sql, ("gadget",))
    with pytest.raises(governed_db.GuardrailViolation) as refused:
        conn.execute(sql, ("[EMAIL]",))
    assert "masked-value-write" in refused.value.decision.rules


def test_hot_cache_still_refuses_predicates() -> None:
    """A refused statement is refused again on repeat (refusals are never cached as allowed)."""
    _, conn = _conn()
    for _ in range(2):
        with pytest.raises(governed_db.GuardrailViolation):
            conn.execute("SELECT id FROM users WHERE ssn LIKE '5%'")


def test_hot_plans_count_masked_cells_per_result() -> None:
    """Each result of a repeated masked statement gets its own plan, so masked_cells never accumulates."""
    from governed_db import masking
    from governed_db.sql.analysis import analyze

    _, conn = _conn()
    sql = "SELECT email, ssn FROM users"
    cur = conn.cursor()
    cur.execute(sql)
    description = cur.description
    gov = conn._self_gov
    analysis = analyze(sql, gov.dialect)
    plans = [masking.plan_masking(description, analysis, identity=BOT, gov=gov) for _ in range(2)]
    assert plans[0] is not None and plans[1] is not None and plans[0] is not plans[1]
    assert (
        plans[0].apply_rows([("alice@example.com", "536-22-8726")] * 3)
        == [("a***@example.com", "[US_SSN]")] * 3
    )
    assert (plans[0].masked_cells, plans[1].masked_cells) == (6, 0)
    assert plans[1].masked_columns == ("email", "ssn")


def test_plan_built_across_a_schema_change_is_not_reused() -> None:
    """A plan built while DDL (another thread) bumped the schema version is never kept as one of the new version."""
    _, conn = _conn()
    sql = "SELECT email FROM users"
    assert conn.execute(sql).fetchall() == [("a***@example.com",)]
    state = _state(conn)
    state.invalidate()
    real = state.facts_for

    def facts_then_ddl(analysis: Any) -> Any:
        facts = real(analysis)
        state.invalidate()  # what a concurrent ALTER/CREATE VIEW through the connection does
        return facts

    state.facts_for = facts_then_ddl
    try:
        assert conn.execute(sql).fetchall() == [("a***@example.com",)]
    finally:
        del state.facts_for
    assert not any(e[2] == state.version and e[masking.HOT_PLAN] is not None for e in state.hot.values())


def test_hot_plan_is_not_reused_for_a_result_with_other_columns() -> None:
    """DDL behind governed_db's back (on the raw connection) changes a statement's columns: the new column is
    planned and masked, not passed through on the old plan."""
    raw, conn = _conn()
    sql = "SELECT * FROM items"
    for _ in range(2):
        assert conn.execute(sql).fetchall() == [(1, "widget", 2.5)]
    raw.execute("ALTER TABLE items ADD COLUMN email TEXT")
    raw.execute("UPDATE items SET email = 'bob@example.org'")
    raw.commit()
    for _ in range(2):
        assert conn.execute(sql).fetchall() == [(1, "widget", 2.5, "b***@example.org")]
