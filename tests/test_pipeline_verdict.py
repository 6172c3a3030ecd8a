"""One verdict per statement (decision 0423): a repeated statement's policy decision and masking verdicts are kept on
its ``Known`` and checked by one generation and one time; anything that can change them moves the generation on,
and what must run on every call (rate limits, row caps, masking's unkept checks) still does."""

from __future__ import annotations

import sqlite3
from types import MappingProxyType
from typing import Any

import pytest

import governed_db
from governed_db import Identity, masking
from governed_db._cache import GENERATION
from governed_db.errors import GuardrailViolation
from governed_db.policy.decision import Action, RuleHit
from governed_db.policy.rules import Finding, RuleSpec, register_rule

BOT = Identity("bot", kind="agent")
SUPPORT = Identity("sam", kind="human", roles=("support",))
DBA = Identity("dana", kind="human")
POINT = "SELECT id, name, price FROM items WHERE id = ?"
EMAILS = "SELECT id, email FROM users WHERE id = ?"


def _conn(**options: Any) -> tuple[sqlite3.Connection, Any]:
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    raw.executemany("INSERT INTO items VALUES (?, ?, ?)", [(1, "widget", 2.5), (2, "gadget", 4.0)])
    raw.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    raw.execute("INSERT INTO users VALUES (1, 'alice@example.com')")
    raw.commit()
    options.setdefault("masking", {"unmask": [{"role": "support", "labels": ["EMAIL"]}]})
    conn = governed_db.wrap(raw, identity=BOT, environment="production", audit=False, **options)
    return raw, conn


def _verdict(conn: Any, sql: str) -> Any:
    known = conn._self_gov.known.get(id(sql))
    return None if known is None or known.text is not sql else known.verdict


def _point(conn: Any, times: int = 3) -> None:
    for _ in range(times):
        assert conn.execute(POINT, (1,)).fetchall() == [(1, "widget", 2.5)]


class _Counted:
    """masking.predicate_hit wrapped: how often a statement was judged in full."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = masking.predicate_hit

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(masking, "predicate_hit", counted)


def test_a_repeated_statement_is_answered_from_its_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """Judged in full once or twice (the second fills masking's entry, unless an earlier test's connection filled the
    caches it shares), then kept: no full judgement, the same rows."""
    _, conn = _conn()
    counted = _Counted(monkeypatch)
    _point(conn, 2)
    assert 1 <= counted.calls <= 2
    counted.calls = 0
    _point(conn, 5)
    assert counted.calls == 0
    verdict = _verdict(conn, POINT)
    assert verdict is not None and verdict[0] == GENERATION[0] and verdict[2].action is Action.ALLOW


def test_a_masked_read_kept_still_masks_and_another_identity_is_judged_for_itself() -> None:
    """The verdict is the identity's: a grant's holder sees the value, the bot keeps seeing it masked."""
    _, conn = _conn()
    for _ in range(3):
        assert conn.execute(EMAILS, (1,)).fetchall() == [(1, "a***@example.com")]
    assert _verdict(conn, EMAILS) is not None
    with governed_db.acting_as(SUPPORT):
        for _ in range(3):
            assert conn.execute(EMAILS, (1,)).fetchall() == [(1, "alice@example.com")]
    assert conn.execute(EMAILS, (1,)).fetchall() == [(1, "a***@example.com")]


def _bump_rule() -> None:
    register_rule(RuleSpec("test-verdict-noop", "test", "a rule that finds nothing", lambda s, c, o: None,
                           MappingProxyType({"production": Action.DENY}), "-"), replace=True)  # fmt: skip


def _bump_policy(conn: Any) -> None:
    conn._self_gov.policy.clear_cache()


def _bump_labels(conn: Any) -> None:
    conn._self_gov.masking_state.invalidate()


def _bump_ddl(conn: Any) -> None:
    with governed_db.acting_as(DBA):
        conn.execute("CREATE TABLE other (id INTEGER)")


@pytest.mark.parametrize("bump", ["rule", "policy", "labels", "ddl"])
def test_each_input_moves_the_verdict_on(bump: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule registered, the policy's cache cleared, masking's labels dropped, DDL through the connection: the
    kept verdict is stale, and the next repeat is judged in full again."""
    _, conn = _conn()
    _point(conn)
    assert _verdict(conn, POINT) is not None
    counted = _Counted(monkeypatch)
    try:
        {"rule": lambda c: _bump_rule(), "policy": _bump_policy, "labels": _bump_labels, "ddl": _bump_ddl}[bump](conn)
        assert _verdict(conn, POINT)[0] != GENERATION[0]
        counted.calls = 0  # the DDL was judged too
        _point(conn, 1)
        assert counted.calls == 1
    finally:
        if bump == "rule":
            import governed_db.policy.rules._spec as spec

            del spec._registry["test-verdict-noop"]
            spec._version += 1


def test_a_rule_registered_after_the_verdict_refuses_the_same_text() -> None:
    """The catalog changing is seen by a kept statement: a new rule denying it refuses it on the next call."""
    _, conn = _conn()
    _point(conn)
    assert _verdict(conn, POINT) is not None

    def price(stmt, ctx, opts):  # type: ignore[no-untyped-def]
        return Finding("reads price") if stmt is not None and "price" in stmt.expression.sql() else None

    register_rule(RuleSpec("test-verdict-price", "test", "test rule", price,
                           MappingProxyType({"production": Action.DENY}), "do not read the price"))  # fmt: skip
    try:
        with pytest.raises(GuardrailViolation) as err:
            conn.execute(POINT, (1,))
        assert err.value.rules == ("test-verdict-price",)
    finally:
        import governed_db.policy.rules._spec as spec

        del spec._registry["test-verdict-price"]
        spec._version += 1
    _point(conn)


def test_a_table_refilled_with_sensitive_values_refuses_a_kept_filter() -> None:
    """Masking's labels change under a kept statement (its rows now e-mail addresses, read again after DDL through the
    connection): the same filter is judged again and refused; the innocent read of the key still runs."""
    raw, conn = _conn()
    raw.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, remark TEXT)")
    raw.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"note {i}") for i in range(200)])
    raw.commit()
    sql = "SELECT id FROM people WHERE remark = ?"
    for _ in range(3):
        assert conn.execute(sql, ("note 3",)).fetchall() == [(3,)]
    assert _verdict(conn, sql) is not None
    raw.execute("DELETE FROM people")
    raw.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"user{i}@example.com") for i in range(200)])
    raw.commit()
    with governed_db.acting_as(DBA):
        conn.execute("CREATE TABLE other (id INTEGER)")
    with pytest.raises(GuardrailViolation) as err:
        conn.execute(sql, ("user3@example.com",))
    assert "remark" in str(err.value)
    assert conn.execute("SELECT id FROM people WHERE id = ?", (3,)).fetchall() == [(3,)]


def test_a_rate_limit_counts_every_kept_statement() -> None:
    """The limiter runs on every call: a kept verdict does not spend the budget once."""
    policy = governed_db.policy.load_policy({"limits": [{"when": {"kind": "agent"}, "statements_per_minute": 5}]})
    _, conn = _conn(policy=policy)
    _point(conn, 5)
    assert _verdict(conn, POINT) is not None
    with pytest.raises(GuardrailViolation) as err:
        conn.execute(POINT, (1,))
    assert err.value.rules[0] == "rate-limit-statements"


def test_a_row_cap_is_never_kept_and_caps_every_call() -> None:
    """A decision other than ALLOW (here a row cap) is judged every time, and applied every time."""
    policy = governed_db.policy.load_policy({"rules": {"max-rows": {"limit": 1}}})
    _, conn = _conn(policy=policy)
    sql = "SELECT id, name FROM items"
    for _ in range(4):
        assert conn.execute(sql).fetchall() == [(1, "widget")]
    assert _verdict(conn, sql) is None


def test_an_expired_verdict_is_judged_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its good-until time (a grant's expiry, a table due to be sampled again) the verdict is not used."""
    _, conn = _conn()
    _point(conn)
    known = conn._self_gov.known[id(POINT)]
    known.verdict = (known.verdict[0], 0.0, *known.verdict[2:])
    counted = _Counted(monkeypatch)
    _point(conn, 1)
    assert counted.calls == 1


@pytest.mark.parametrize("how", ["text", "registered"])
def test_masking_checks_made_on_every_call_still_run_for_a_kept_statement(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What no verdict keeps (the caller's code registered meanwhile, SQLite's converters, cursors) is asked on
    every call: for a text that may name a converter (``[``) always, for any other once the application has
    registered a function; a refusal from there refuses a kept statement."""
    _, conn = _conn()
    sql = "SELECT id, name AS [label] FROM items WHERE id = ?" if how == "text" else POINT
    for _ in range(3):
        assert len(conn.execute(sql, (1,)).fetchall()) == 1
    verdict = _verdict(conn, sql)
    assert verdict is not None and verdict[6] is (how == "text")
    refusal = RuleHit("masked-column-predicate", Action.DENY, "a test refusal of the unkept checks", "-")
    monkeypatch.setattr(masking, "_unkept", lambda state, analysis, identity: refusal)
    if how == "registered":
        assert conn.execute(sql, (1,)).fetchall() == [(1, "widget", 2.5)]  # nothing registered: not asked
        conn._self_gov.masking_state.caller_functions.add("tick")
    with pytest.raises(GuardrailViolation) as err:
        conn.execute(sql, (1,))
    assert err.value.rules == ("masked-column-predicate",)


def test_a_statement_changing_the_database_moves_every_verdict_on() -> None:
    """After a USE the connection no longer knows its database: the policy's decisions, made for the old one, are
    judged again (the generation moves on), and a USE is never kept."""
    _, conn = _conn()
    _point(conn)
    gov = conn._self_gov
    known = gov.known[id(POINT)]
    known.moves = True  # as the analysis of a USE says (no such statement on SQLite)
    gov.database = "shop"
    before = GENERATION[0]
    gov.decide(known, (1,))
    assert gov.database is None and GENERATION[0] != before
    gov.keep_verdict(known, GENERATION[0], gov.policy.evaluate(known.analysis, identity=BOT,
                     environment=gov.environment, database=None), POINT)  # fmt: skip
    assert known.verdict is None or known.verdict[0] != GENERATION[0]  # what it kept is stale, nothing new kept


def test_the_hot_entry_slots_are_spelled_alike() -> None:
    """The package's slot numbers (the statement path) and the engine's (the guards that fill them) agree."""
    from governed_db.masking import engine

    assert (masking.HOT_USES, masking.HOT_ORDER, masking.HOT_PLAN) == (engine.HOT_USES, engine.HOT_ORDER,
                                                                        engine.HOT_PLAN)
