"""The policy engine: custom rules, scoping, caching, the extension point, rate limits."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from governed_db.identity import Identity
from governed_db.policy import Policy, RuleContext, evaluate, load_policy
from governed_db.policy.decision import Action, RuleHit
from governed_db.policy.ratelimit import RateLimiter
from governed_db.policy.rules import Finding, RuleSpec, catalog, register_rule
from governed_db.sql.analysis import analyze

AGENT = Identity("report-bot", kind="agent", on_behalf_of="alice", roles=("analyst",))
DBA = Identity("dora", kind="human", roles=("dba",))


def test_custom_callable_rules() -> None:
    """Policy(rules=(callable,)) runs the callable with ctx.analysis/.identity/.environment."""
    seen: list[RuleContext] = []

    def no_orders(stmt, ctx):  # type: ignore[no-untyped-def]
        seen.append(ctx)
        if stmt is not None and "orders" in stmt.tables:
            return RuleHit("no-orders", Action.DENY, "orders are off-limits", "use the view")
        return None

    p = Policy(name="custom", rules=(no_orders,))
    d = p.evaluate(analyze("SELECT * FROM orders", "sqlite"), identity=AGENT, environment="production")
    assert d.action is Action.DENY and d.rules == ("no-orders",) and d.policy_name == "custom"
    assert seen[0].identity == AGENT and seen[0].environment == "production"
    # custom rule sets still fail closed on what cannot be parsed
    assert p.evaluate(analyze("SELECT 'x", "sqlite"), identity=None, environment="production").action is Action.DENY


def test_most_restrictive_wins_and_reasons_named() -> None:
    """Several rules fire: the strictest action wins and every rule is named."""
    d = evaluate("DROP TABLE t CASCADE", dialect="postgres")
    assert d.action is Action.DENY and {"drop", "cascade"} <= set(d.rules)
    assert "drop" in d.reason and d.remedy


def test_overrides_scope_by_identity_and_table() -> None:
    """Overrides apply by kind, role, subject glob, on_behalf_of and table; later entries win."""
    pol = load_policy({
        "rules": {"write-statement": "allow"},
        "overrides": [
            {"when": {"kind": "agent"}, "rules": {"write-statement": "require_approval"}},
            {"when": {"subject": "report-*", "on_behalf_of": "alice"}, "rules": {"write-statement": "warn"}},
            {"when": {"roles": ["dba"]}, "rules": {"drop": "require_approval"}},
            {"when": {"tables": ["scratch_*"]}, "rules": {"drop": "allow"}},
        ],
    })  # fmt: skip
    write = "UPDATE t SET a = 1 WHERE id = 1"
    assert evaluate(write, dialect="postgres", identity=AGENT, policy=pol).action is Action.WARN
    other_agent = Identity("etl", kind="agent")
    assert evaluate(write, dialect="postgres", identity=other_agent, policy=pol).action is Action.REQUIRE_APPROVAL
    assert evaluate(write, dialect="postgres", identity=DBA, policy=pol).action is Action.ALLOW
    assert evaluate("DROP TABLE t", dialect="postgres", identity=DBA, policy=pol).action is Action.REQUIRE_APPROVAL
    assert evaluate("DROP TABLE scratch_1", dialect="postgres", identity=AGENT, policy=pol).action is Action.ALLOW
    assert evaluate("DROP TABLE t", dialect="postgres", identity=AGENT, policy=pol).action is Action.DENY


def test_identity_unverified_rule() -> None:
    """Self-declared identities pass by default; require_verified refuses them where configured."""
    assert evaluate("SELECT 1", dialect="sqlite", identity=AGENT).action is Action.ALLOW
    pol = load_policy({"identities": {"require_verified": ["production"]}})
    d = evaluate("SELECT 1", dialect="sqlite", identity=AGENT, policy=pol)
    assert d.action is Action.DENY and d.rules == ("identity-unverified",)
    verified = Identity("report-bot", kind="agent", verified=True, issuer="https://idp")
    assert evaluate("SELECT 1", dialect="sqlite", identity=verified, policy=pol).action is Action.ALLOW
    assert evaluate("SELECT 1", dialect="sqlite", identity=AGENT, policy=pol, environment="staging").allowed


def test_row_caps() -> None:
    """max-rows and missing-limit produce a limit decision with the smallest cap."""
    pol = load_policy({"rules": {"max-rows": {"limit": 500}, "missing-limit": {"tables": ["events"], "limit": 100}}})
    d = evaluate("SELECT * FROM events", dialect="postgres", policy=pol)
    assert d.action is Action.LIMIT and d.row_limit == 100
    assert evaluate("SELECT * FROM events LIMIT 10", dialect="postgres", policy=pol).row_limit == 500


def test_cached_decision_is_reused_and_keyed_by_identity() -> None:
    """The second evaluation is a cache hit; a different identity or environment is not."""
    calls: list[int] = []

    def counting(stmt, ctx):  # type: ignore[no-untyped-def]
        calls.append(1)
        return None

    p = Policy(rules=(counting,))
    a = analyze("SELECT 42", "sqlite")
    first = p.evaluate(a, identity=AGENT, environment="production")
    assert p.evaluate(a, identity=AGENT, environment="production") is first
    p.evaluate(a, identity=DBA, environment="production")
    p.evaluate(a, identity=AGENT, environment="staging")
    assert len(calls) == 3


def test_hot_decision_is_exact_per_analysis_identity_environment_database() -> None:
    """A repeated statement is answered without running rules; any part of the key changing runs them again."""
    calls: list[str] = []

    def counting(stmt, ctx):  # type: ignore[no-untyped-def]
        calls.append(ctx.database or "-")
        return None

    p = Policy(rules=(counting,))
    a = analyze("SELECT 42", "sqlite")
    first = p.evaluate(a, identity=AGENT, environment="production", database="main")
    for _ in range(3):
        assert p.evaluate(a, identity=AGENT, environment="production", database="main") is first
    assert calls == ["main"]
    p.evaluate(a, identity=AGENT, environment="production", database="other")
    p.evaluate(a, identity=AGENT, environment="production", database=None)
    p.evaluate(analyze("SELECT 42 ", "sqlite"), identity=AGENT, environment="production", database="main")
    assert calls == ["main", "other", "-", "main"]
    p.clear_cache()  # clearing the cache clears the hot answers too
    p.evaluate(a, identity=AGENT, environment="production", database="main")
    assert calls == ["main", "other", "-", "main", "main"]
    uncached = Policy(rules=(counting,), cache_size=0)  # caching off: no hot answers either
    for _ in range(2):
        uncached.evaluate(a, identity=AGENT, environment="production", database="main")
    assert len(calls) == 7


def test_hot_decisions_are_bounded() -> None:
    """Distinct statements do not grow the hot answers past their bound; long texts are never kept there."""
    from governed_db.policy import engine

    p = Policy(name="bounded")
    for i in range(engine._HOT_ENTRIES * 2):
        p.evaluate(analyze(f"SELECT {i}", "sqlite"), identity=AGENT, environment="production")
    assert 0 < len(p._hot) <= engine._HOT_ENTRIES
    p.clear_cache()
    long = analyze("SELECT 1" + " " * engine._HOT_CHARS, "sqlite")
    p.evaluate(long, identity=AGENT, environment="production")
    assert not p._hot and len(p._cache) == 1


def test_register_rule_extends_default_catalog() -> None:
    """register_rule adds a rule every catalog policy picks up (and invalidates cached decisions)."""
    before = evaluate("SELECT secret_col FROM t", dialect="sqlite")
    assert before.action is Action.ALLOW

    def secret(stmt, ctx, opts):  # type: ignore[no-untyped-def]
        return Finding("reads secret_col") if stmt is not None and "secret_col" in stmt.expression.sql() else None

    spec = RuleSpec("test-secret-col", "test", "test rule", secret,
                    MappingProxyType({"production": Action.DENY}), "do not")  # fmt: skip
    register_rule(spec)
    try:
        assert evaluate("SELECT secret_col FROM t", dialect="sqlite").rules == ("test-secret-col",)
        with pytest.raises(ValueError, match="already registered"):
            register_rule(spec)
    finally:
        import governed_db.policy.rules._spec as r

        register_rule(RuleSpec("test-secret-col", "test", "off", lambda s, c, o: None,
                               MappingProxyType({"production": Action.ALLOW}), "-"), replace=True)  # fmt: skip
        assert "test-secret-col" in catalog()
        del r._registry["test-secret-col"]
        r._version += 1


def test_rate_limit_statements_per_identity() -> None:
    """The limiter refuses beyond the per-minute budget, per identity, and recovers after the window."""
    now = [1000.0]
    pol = load_policy({"limits": [{"when": {"kind": "agent"}, "statements_per_minute": 3}]})
    assert isinstance(pol.limiter, RateLimiter)
    pol.limiter.clock = lambda: now[0]
    results = [pol.limiter.on_statement(AGENT, "production") for _ in range(4)]
    assert results[:3] == [None, None, None]
    assert results[3] is not None and results[3].rule_id == "rate-limit-statements" and results[3].action is Action.DENY
    assert pol.limiter.on_statement(DBA, "production") is None  # humans are not in this limit
    now[0] += 61
    assert pol.limiter.on_statement(AGENT, "production") is None
    assert pol.limiter.on_statement(AGENT, "development") is None


def test_refused_attempts_count_against_the_rate_limit() -> None:
    """Decision 0056: statements refused by another rule spend budget too (an agent hammering refusals is limited)."""
    import sqlite3

    import governed_db
    from governed_db.errors import GuardrailViolation

    conn = governed_db.wrap(sqlite3.connect(":memory:"), identity=AGENT, audit=False,
                            policy={"limits": [{"when": {"kind": "agent"}, "statements_per_minute": 3}]})
    for _ in range(2):
        with pytest.raises(GuardrailViolation) as refused:
            conn.execute("DROP TABLE IF EXISTS t")
        assert "rate-limit-statements" not in refused.value.rules
    assert conn.execute("SELECT 1").fetchone() == (1,)  # the 3rd attempt, within budget
    with pytest.raises(GuardrailViolation) as limited:
        conn.execute("SELECT 1")
    assert "rate-limit-statements" in limited.value.rules


def test_rate_limit_rows_and_observe_only() -> None:
    """Rows read count against the budget; in development a breach only warns."""
    pol = load_policy({"limits": [{"when": {"kind": "agent"}, "rows_per_minute": 100, "action": "require_approval"}]})
    lim = pol.limiter
    assert lim is not None and lim.on_statement(AGENT, "production") is None
    lim.on_rows(AGENT, 150)
    hit = lim.on_statement(AGENT, "production")
    assert hit is not None and hit.rule_id == "rate-limit-rows" and hit.action is Action.REQUIRE_APPROVAL
    dev = lim.on_statement(AGENT, "development")
    assert dev is not None and dev.action is Action.WARN


def test_default_policy_has_no_limiter() -> None:
    """Zero configuration sets no rate limits (the pipeline skips the limiter)."""
    assert load_policy(None).limiter is None


def test_failed_catalog_load_is_not_remembered_as_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A built-in rule module that fails to import fails every catalog read, never a silently partial catalog."""
    import sys

    import governed_db.policy.rules as r

    monkeypatch.setattr(r, "_loaded", False)
    monkeypatch.delattr(r, "tables")
    monkeypatch.setitem(sys.modules, "governed_db.policy.rules.tables", None)  # the import now raises ImportError
    for _ in range(2):
        with pytest.raises(ImportError):
            r.catalog_rules()
    monkeypatch.undo()
    assert "table-deny" in catalog()


def test_decision_made_while_catalog_changes_is_not_cached() -> None:
    """A rule registered while a decision is being made applies to the next evaluation of the same SQL."""
    import governed_db.policy.rules._spec as r

    sql = "SELECT late_col FROM t"
    late = RuleSpec("test-late-rule", "test", "test rule",
                    lambda s, c, o: Finding("late") if s is not None and "late_col" in s.expression.sql() else None,
                    MappingProxyType({"production": Action.DENY}), "do not")  # fmt: skip

    def registers_meanwhile(stmt, ctx):  # type: ignore[no-untyped-def]
        if "test-late-rule" not in r._registry:
            register_rule(late)  # another thread registers a rule ...
            pol.active_rules()  # ... and evaluates something, clearing the cache, while this decision runs
        return None

    pol = Policy(name="racy", extra_rules=(registers_meanwhile,))
    try:
        assert pol.evaluate(analyze(sql, "sqlite"), identity=None, environment="production").action is Action.ALLOW
        again = pol.evaluate(analyze(sql, "sqlite"), identity=None, environment="production")
        assert again.rules == ("test-late-rule",) and again.action is Action.DENY
    finally:
        r._registry.pop("test-late-rule", None)
        r._version += 1


def test_rows_count_in_the_environment_they_were_read_in() -> None:
    """on_rows(environment=) counts rows under that environment's limit, whatever the identity ran since."""
    pol = load_policy({"limits": [{"when": {"environment": "production"}, "rows_per_minute": 100}]})
    lim = pol.limiter
    assert lim is not None and lim.on_statement(AGENT, "production") is None
    assert lim.on_statement(AGENT, "development") is None  # same identity, another connection, meanwhile
    lim.on_rows(AGENT, 150, environment="production")
    hit = lim.on_statement(AGENT, "production")
    assert hit is not None and hit.rule_id == "rate-limit-rows"


@pytest.mark.parametrize(
    ("sql", "fires"),
    [
        ("CREATE TABLE t2 AS SELECT * FROM t", True),
        ("SELECT * INTO t2 FROM t", True),
        ("INSERT INTO t VALUES (1)", True),
        ("CREATE TABLE t2 (a INT)", False),
        ("SELECT * FROM t", False),
    ],
)
def test_write_statement_covers_copies_into_new_tables(sql: str, fires: bool) -> None:
    """A read-only policy (write-statement: deny) also refuses copying data into a new table, even in staging."""
    d = evaluate(sql, dialect="postgres", environment="staging", policy={"rules": {"write-statement": "deny"}})
    assert ("write-statement" in d.rules) is fires
    if fires:
        assert d.action is Action.DENY


def test_subject_globs_match_case_insensitively() -> None:
    """An override for subject report-* also binds Report-Bot and REPORT-BOT (no case games past a rule)."""
    pol = load_policy({"overrides": [{"when": {"subject": "report-*"}, "rules": {"write-statement": "deny"}}]})
    for subject in ("report-bot", "Report-Bot", "REPORT-BOT"):
        d = evaluate("UPDATE t SET a = 1 WHERE id = 1", dialect="postgres", policy=pol, identity=Identity(subject, kind="agent"))
        assert d.action is Action.DENY, subject
