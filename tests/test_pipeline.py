"""The pipeline: identity resolution, fail-closed faults, approvals hook, row caps."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import governed_db
from governed_db import Action, GovernanceFault, GuardrailViolation, Identity, RuleHit, acting_as
from governed_db.policy import Policy


def _conn(**kw: Any) -> Any:
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=False, **kw)
    governed_db.unwrap(conn).execute("CREATE TABLE t (id INTEGER, name TEXT)")
    governed_db.unwrap(conn).executemany("INSERT INTO t VALUES (?, ?)", [(i, f"n{i}") for i in range(10)])
    return conn


def _broken_rule(stmt: Any, ctx: Any) -> RuleHit | None:
    raise RuntimeError("policy bug")


def test_governance_fault_fails_closed_in_production() -> None:
    """A bug inside a rule refuses the statement in production, as the driver's DatabaseError."""
    conn = _conn(policy=Policy(name="broken", rules=(_broken_rule,)))
    with pytest.raises(GovernanceFault, match="fail closed") as info:
        conn.execute("DELETE FROM t")
    assert isinstance(info.value, sqlite3.DatabaseError)
    assert governed_db.unwrap(conn).execute("SELECT count(*) FROM t").fetchone() == (10,)


def test_governance_fault_warns_and_continues_in_development(caplog: pytest.LogCaptureFixture) -> None:
    """In development a governance fault is logged and the statement runs."""
    conn = _conn(policy=Policy(name="broken", rules=(_broken_rule,)), environment="development")
    with caplog.at_level("WARNING", logger="governed_db"):
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (10,)
    assert any("fault" in r.getMessage() for r in caplog.records)


def test_on_fault_option_overrides_the_environment() -> None:
    """on_fault='fail' fails closed even in development."""
    conn = _conn(policy=Policy(name="broken", rules=(_broken_rule,)), environment="development", on_fault="fail")
    with pytest.raises(GovernanceFault):
        conn.execute("SELECT 1")


def test_masking_fault_withholds_rows_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the masking plan cannot be built, no row leaves the cursor (fail closed)."""
    from governed_db import masking

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("lineage bug")

    monkeypatch.setattr(masking, "plan_masking", boom)
    conn = _conn()
    cur = conn.execute("SELECT name FROM t")
    with pytest.raises(GovernanceFault, match="withheld"):
        cur.fetchall()
    with pytest.raises(GovernanceFault):
        cur.fetchone()


def test_identity_provider_is_called_per_statement_and_acting_as_wins() -> None:
    """A callable identity is resolved per statement; acting_as overrides it for its block."""
    seen: list[str] = []

    def rule(stmt: Any, ctx: Any) -> RuleHit | None:
        seen.append(ctx.identity.subject)
        return None

    current = {"who": "svc-a"}
    conn = _conn(identity=lambda: Identity(current["who"], kind="service"), policy=Policy(rules=(rule,)))
    conn.execute("SELECT 1")
    current["who"] = "svc-b"
    conn.execute("SELECT 2")
    with acting_as(Identity("alice")):
        conn.execute("SELECT 3")
    assert seen == ["svc-a", "svc-b", "alice"]


def test_identity_provider_returning_garbage_refuses() -> None:
    """An identity provider that returns neither an Identity nor a token refuses the statement."""
    conn = _conn(identity=lambda: 42)
    with pytest.raises(GuardrailViolation, match="identity"):
        conn.execute("SELECT 1")


def test_require_approval_without_a_grant_raises_before_execution() -> None:
    """A require_approval decision raises ApprovalRequired and the statement does not run."""

    def needs_approval(stmt: Any, ctx: Any) -> RuleHit | None:
        if stmt is not None and stmt.operation == "DELETE":
            return RuleHit("delete-needs-approval", Action.REQUIRE_APPROVAL, "deletes need a reviewer")
        return None

    conn = _conn(policy=Policy(rules=(needs_approval,)))
    with pytest.raises(governed_db.ApprovalRequired) as info:
        conn.execute("DELETE FROM t")
    assert isinstance(info.value, sqlite3.ProgrammingError)
    assert "delete-needs-approval" in info.value.rules
    assert governed_db.unwrap(conn).execute("SELECT count(*) FROM t").fetchone() == (10,)


def test_limit_action_caps_rows_on_every_exit() -> None:
    """A limit decision caps rows for fetchall, fetchmany, fetchone and iteration alike."""

    def cap(stmt: Any, ctx: Any) -> RuleHit | None:
        return RuleHit("row-cap", Action.LIMIT, "at most 3 rows", row_limit=3)

    conn = _conn(policy=Policy(rules=(cap,)))
    assert len(conn.execute("SELECT * FROM t").fetchall()) == 3
    assert len(list(conn.execute("SELECT * FROM t"))) == 3
    cur = conn.execute("SELECT * FROM t")
    assert len(cur.fetchmany(2)) == 2 and len(cur.fetchmany(5)) == 1 and cur.fetchone() is None


def test_invalid_statements_are_clear_errors() -> None:
    """None, numbers and undecodable bytes are refused with a message naming the problem."""
    conn = _conn()
    with pytest.raises(TypeError, match="None"):
        conn.execute(None)
    with pytest.raises(TypeError, match="str or bytes"):
        conn.execute(42)
    with pytest.raises(TypeError, match="UTF-8"):
        conn.execute(b"SELECT '\xff'")
    # valid UTF-8 bytes are read for analysis and handed to the driver unchanged; sqlite3 itself refuses bytes
    with pytest.raises(TypeError) as governed_err:
        conn.execute(b"SELECT 7")
    with pytest.raises(TypeError) as raw_err:
        sqlite3.connect(":memory:").execute(b"SELECT 7")  # type: ignore[arg-type]
    assert str(governed_err.value) == str(raw_err.value)


def test_driver_errors_pass_through_unchanged() -> None:
    """An error the database raises reaches the caller as the driver's own exception."""
    conn = _conn()
    raw = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.OperationalError) as governed_err:
        conn.execute("SELECT * FROM missing_table")
    with pytest.raises(sqlite3.OperationalError) as raw_err:
        raw.execute("SELECT * FROM missing_table")
    assert type(governed_err.value) is type(raw_err.value)
    assert str(governed_err.value) == str(raw_err.value)


def test_identity_failure_is_a_recorded_refusal(spans: Any) -> None:
    """A token source that fails refuses the statement and leaves a span saying so (no fallback identity)."""
    from governed_db.errors import GovernedDBError

    provider, exporter = spans

    def broken_token_source() -> Identity:
        raise GovernedDBError("token expired")

    conn = _conn(identity=broken_token_source, tracer_provider=provider)
    with pytest.raises(GuardrailViolation, match="no trustworthy identity") as info:
        conn.execute("SELECT 1")
    assert isinstance(info.value, sqlite3.ProgrammingError)
    (span,) = [s for s in exporter.get_finished_spans() if s.name != "governed_db.result"]
    assert span.attributes["governed_db.decision"] == "deny"
    assert span.attributes["governed_db.rules"] == ("identity-unverified",)
    assert span.attributes["governed_db.identity.subject"] == "unverified"


def test_crashing_identity_provider_fails_closed_in_production() -> None:
    """An identity provider that crashes refuses the statement in production (a governance fault)."""

    def crash() -> Identity:
        raise RuntimeError("refresh endpoint down")

    with pytest.raises(GovernanceFault, match="resolving the identity"):
        _conn(identity=crash).execute("SELECT 1")


def test_statement_run_under_an_approval_names_its_grant(spans: Any, tmp_path: Any) -> None:
    """After approval the same call runs, and its span names the request that allowed it."""
    from governed_db.approvals import approve

    provider, exporter = spans

    def needs_approval(stmt: Any, ctx: Any) -> RuleHit | None:
        if stmt is not None and stmt.operation == "DELETE":
            return RuleHit("delete-needs-approval", Action.REQUIRE_APPROVAL, "deletes need a reviewer")
        return None

    store = str(tmp_path / "approvals.db")
    conn = _conn(policy=Policy(rules=(needs_approval,)), approvals={"store": store}, tracer_provider=provider,
                 identity=Identity("bot", kind="agent"))
    with pytest.raises(governed_db.ApprovalRequired) as info:
        conn.execute("DELETE FROM t WHERE id = 3")
    approve(info.value.request_id, reviewer=Identity("dana", roles=("dba",)), store=store)
    exporter.clear()
    conn.execute("DELETE FROM t WHERE id = 3")
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "DELETE t"]
    assert span.attributes["governed_db.approval.request_id"] == info.value.request_id
    assert governed_db.unwrap(conn).execute("SELECT count(*) FROM t").fetchone() == (9,)


def test_bad_approval_settings_fail_at_wrap_time() -> None:
    """A malformed approvals= option is refused when wrapping, not at the first risky statement."""
    with pytest.raises(governed_db.ConfigurationError):
        governed_db.wrap(sqlite3.connect(":memory:"), approvals={"quorum": "many"}, audit=False)


def test_unwritable_audit_store_fails_closed_in_production(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    """In production a statement whose record (its intent) cannot be written is refused, from the first one on
    (a store writing every intent itself; with the journal see tests/test_audit_journal.py)."""
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit={"path": str(tmp_path / "audit.jsonl"),
                                                                 "journal": False})
    store = conn.governor.audit.store
    real_append = store.append

    def disk_full(body: Any) -> int:
        raise OSError(28, "No space left on device")

    conn.execute("SELECT 1").fetchall()
    store.append = disk_full
    with caplog.at_level("ERROR"), pytest.raises(GovernanceFault, match="audit store") as info:
        conn.execute("SELECT 2")  # its intent could not be written: it never reaches the driver
    assert any("could not record" in r.getMessage() for r in caplog.records)
    assert isinstance(info.value, sqlite3.DatabaseError)
    with pytest.raises(GovernanceFault):
        conn.execute("SELECT 3")
    store.append = real_append  # the disk has room again: the next statement's intent is written, it runs
    assert conn.execute("SELECT 4").fetchone() == (4,)


def test_unwritable_audit_store_only_warns_in_development(tmp_path: Any) -> None:
    """In development a broken audit store is logged and statements keep running."""
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=tmp_path / "audit.jsonl", environment="development")
    conn.governor.audit.store.append = lambda body: (_ for _ in ()).throw(OSError(28, "full"))
    conn.execute("SELECT 1").fetchall()
    assert conn.execute("SELECT 2").fetchone() == (2,)


def test_governance_fault_refusal_is_recorded(spans: Any) -> None:
    """A fault that refuses a statement in production still leaves a span naming it."""
    provider, exporter = spans
    conn = _conn(policy=Policy(name="broken", rules=(_broken_rule,)), tracer_provider=provider)
    with pytest.raises(GovernanceFault):
        conn.execute("SELECT 1")
    (span,) = [s for s in exporter.get_finished_spans() if s.name != "governed_db.result"]
    assert span.attributes["governed_db.decision"] == "deny"
    assert span.attributes["governed_db.rules"] == ("governance-fault",)
    assert span.attributes["error.type"] == "GovernanceFault"


def test_rule_raising_a_governed_db_error_is_a_recorded_fault(spans: Any) -> None:
    """A custom rule that raises one of governed_db's own errors is a governance fault, recorded and refused."""
    from governed_db.errors import ConfigurationError

    def misconfigured(stmt: Any, ctx: Any) -> RuleHit | None:
        raise ConfigurationError("rule needs a table list")

    provider, exporter = spans
    conn = _conn(policy=Policy(name="bad", rules=(misconfigured,)), tracer_provider=provider)
    with pytest.raises(GovernanceFault, match="rule needs a table list"):
        conn.execute("SELECT 1")
    (span,) = [s for s in exporter.get_finished_spans() if s.name != "governed_db.result"]
    assert span.attributes["governed_db.rules"] == ("governance-fault",)


def test_rows_read_in_development_do_not_count_against_a_production_limit() -> None:
    """Rows are counted in the environment of the connection that read them."""
    from governed_db.policy import load_policy

    policy = load_policy(
        {"limits": [{"when": {"kind": "agent", "environment": "production"}, "rows_per_minute": 5, "action": "deny"}]}
    )
    bot = Identity("bot", kind="agent")
    dev = _conn(policy=policy, environment="development", identity=bot)
    prod = _conn(policy=policy, environment="production", identity=bot)
    dev_cur = dev.execute("SELECT * FROM t")
    assert len(prod.execute("SELECT * FROM t WHERE id < 3").fetchall()) == 3  # production ran last...
    assert len(dev_cur.fetchall()) == 10  # ...but these 10 rows were read in development
    prod.execute("SELECT * FROM t WHERE id < 3").fetchall()  # 6 rows read in production: over the limit now
    with pytest.raises(GuardrailViolation):
        prod.execute("SELECT 1")


def test_a_repeated_text_is_judged_again_for_each_identity() -> None:
    """The same text object by a person runs; by a bounded agent its whole-table write is refused, every time."""
    conn = _conn(identity=Identity("dora", kind="human"), environment="production")
    raw = governed_db.unwrap(conn)
    sql = "UPDATE t SET name = ? WHERE id >= ?"
    cur = conn.cursor()
    for round_ in range(2):
        cur.execute(sql, (f"person{round_}", 0))
        assert raw.execute("SELECT count(*) FROM t WHERE name = ?", (f"person{round_}",)).fetchone() == (10,)
        with acting_as(Identity("bot", kind="agent")), pytest.raises(GuardrailViolation, match="10 of 10 rows"):
            cur.execute(sql, (f"agent{round_}", 0))
        assert raw.execute("SELECT count(*) FROM t WHERE name = ?", (f"agent{round_}",)).fetchone() == (0,)


def test_a_repeated_read_switches_the_session_for_each_identity() -> None:
    """The same SELECT object alternately by a read-only agent and a person: the session follows each one."""
    conn = _conn(identity=Identity("dora", kind="human"), environment="production",
                 policy={"writes": [{"when": {"subject": "ro-bot"}, "read_only": True}]})  # fmt: skip
    raw = governed_db.unwrap(conn)
    sql = "SELECT count(*) FROM t"
    cur = conn.cursor()
    for _ in range(2):
        with acting_as(Identity("ro-bot", kind="agent")):
            assert cur.execute(sql).fetchall() == [(10,)]
            assert raw.execute("PRAGMA query_only").fetchone() == (1,)
            with pytest.raises(GuardrailViolation):
                cur.execute("UPDATE t SET name = 'x' WHERE id = 1")
        assert cur.execute(sql).fetchall() == [(10,)]
        assert raw.execute("PRAGMA query_only").fetchone() == (0,)
    assert raw.execute("SELECT count(*) FROM t WHERE name = 'x'").fetchone() == (0,)


def test_known_texts_are_bounded() -> None:
    """What a connection keeps per text stays bounded: distinct texts, long texts and non-str statements."""
    from governed_db import pipeline

    conn = _conn(identity=Identity("dora", kind="human"), environment="production")
    cur = conn.cursor()
    for i in range(pipeline._KNOWN_ENTRIES * 2 + 1):
        cur.execute(f"SELECT id FROM t WHERE id = {i}").fetchall()
    known = conn.governor.known
    assert 0 < len(known) <= pipeline._KNOWN_ENTRIES
    known.clear()
    cur.execute("SELECT id FROM t" + " " * pipeline._KNOWN_CHARS).fetchall()

    class Text(str):  # a statement object the driver reads as text (SQLAlchemy's quoted names, ...)
        pass

    cur.execute(Text("SELECT id FROM t")).fetchall()
    assert not known
