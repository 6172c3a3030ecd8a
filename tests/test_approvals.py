"""Approvals end to end from a governed sqlite3 connection: requests, grants, review rules, record."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import approvals
from governed_db.approvals import ApprovalConfig, Approvals, ReviewRefused, open_store
from governed_db.errors import ApprovalRequired, GovernanceFault
from governed_db.identity import Identity, acting_as
from governed_db.policy import Policy
from governed_db.policy.decision import Action, RuleHit

ALICE = Identity("alice")
BOT = Identity("report-bot", kind="agent", on_behalf_of="alice")
BOB = Identity("bob", roles=("dba",))
CAROL = Identity("carol", roles=("dba",))


def risky_writes(stmt: Any, ctx: Any) -> RuleHit | None:
    if stmt is not None and stmt.operation in ("DELETE", "UPDATE"):
        return RuleHit("risky-write", Action.REQUIRE_APPROVAL, f"{stmt.operation} needs a reviewer")
    return None


POLICY = Policy(name="approvals-test", rules=(risky_writes,))


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "approvals.sqlite3")


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "app.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE t (id INTEGER, v TEXT)")
    raw.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(1, 6)])
    raw.commit()
    raw.close()
    return str(path)


def governed(db: str, store: Any, identity: Identity = ALICE, **kw: Any) -> Any:
    kw.setdefault("approvals", {"store": store} if isinstance(store, str) else store)
    return governed_db.wrap(sqlite3.connect(db), identity=identity, policy=POLICY, **kw)


def refused(conn: Any, sql: str, params: Any = ()) -> ApprovalRequired:
    with pytest.raises(ApprovalRequired) as info:
        conn.execute(sql, params)
    return info.value


def count(db: str) -> int:
    with sqlite3.connect(db) as raw:
        return int(raw.execute("SELECT count(*) FROM t").fetchone()[0])


def test_refusal_carries_request_fingerprint_rule_and_command(db: str, store_path: str) -> None:
    """A statement needing approval raises ApprovalRequired (also sqlite3.ProgrammingError) with what to do next."""
    conn = governed(db, store_path)
    e = refused(conn, "DELETE FROM t WHERE id = ?", (1,))
    assert isinstance(e, sqlite3.ProgrammingError)
    assert e.request_id and len(e.request_id) == 8
    assert e.fingerprint and len(e.fingerprint) == 16
    assert e.rules == ("risky-write",)
    assert e.approve_command is not None
    assert e.approve_command.startswith(f"governed-db approvals approve {e.request_id} --as ")
    assert store_path in e.approve_command  # not the default store: the command names it
    assert e.request_id in str(e) and "risky-write" in str(e)
    req = approvals.get_request(e.request_id, store=store_path)
    assert (req.state, req.requester, req.environment, req.rules) == ("pending", "alice", "production",
                                                                      ("risky-write",))
    assert req.statement == "DELETE FROM t WHERE id = ?" and req.kind == "statement"
    assert count(db) == 5


def test_rerun_after_approval_runs_once_with_no_code_change(db: str, store_path: str) -> None:
    """After approval the same execute runs once; running it again needs a new request."""
    conn = governed(db, store_path)
    first = refused(conn, "DELETE FROM t WHERE id = ?", (1,))
    again = refused(conn, "DELETE FROM t WHERE id = ?", (1,))
    assert again.request_id == first.request_id  # retries do not pile up requests
    approved = approvals.approve(first.request_id, reviewer=BOB, comment="ticket 42", store=store_path)
    assert approved.state == "approved"
    conn.execute("DELETE FROM t WHERE id = ?", (1,))
    conn.commit()
    assert count(db) == 4
    assert approvals.get_request(first.request_id, store=store_path).state == "consumed"
    third = refused(conn, "DELETE FROM t WHERE id = ?", (1,))
    assert third.request_id != first.request_id


@pytest.mark.parametrize(
    ("sql", "params", "identity", "environment"),
    [
        ("DELETE FROM t WHERE id = ?", (2,), ALICE, "production"),  # other parameters
        ("DELETE FROM t WHERE id = 1", (), ALICE, "production"),  # other text, same shape
        ("UPDATE t SET v = 'x' WHERE id = ?", (1,), ALICE, "production"),  # other statement
        ("DELETE FROM t WHERE id = ?", (1,), BOB, "production"),  # other identity
        ("DELETE FROM t WHERE id = ?", (1,), BOT, "production"),  # acting for alice is not alice
        ("DELETE FROM t WHERE id = ?", (1,), ALICE, "staging"),  # other environment
    ],
)
def test_grant_covers_only_its_statement_params_identity_and_environment(
    db: str, store_path: str, sql: str, params: tuple[Any, ...], identity: Identity, environment: str
) -> None:
    """A one-time grant does not cover a different statement, parameters, identity or environment."""
    e = refused(governed(db, store_path), "DELETE FROM t WHERE id = ?", (1,))
    approvals.approve(e.request_id, reviewer=CAROL, store=store_path)
    other = governed(db, store_path, identity=identity, environment=environment)
    assert refused(other, sql, params).request_id != e.request_id
    assert approvals.get_request(e.request_id, store=store_path).state == "approved"


def test_acting_as_identity_is_the_requester(db: str, store_path: str) -> None:
    """The identity from acting_as() files the request, with on_behalf_of recorded."""
    conn = governed(db, store_path)
    with acting_as(BOT):
        e = refused(conn, "DELETE FROM t WHERE id = 3")
    req = approvals.get_request(e.request_id, store=store_path)
    assert (req.requester, req.requester_kind, req.on_behalf_of) == ("report-bot", "agent", "alice")


@pytest.mark.parametrize(
    ("reviewer", "code"),
    [
        (Identity("report-bot"), "self-approval"),  # the requester itself
        (Identity("alice", roles=("dba",)), "self-approval"),  # the one it acts for
        (Identity("Alice "), "self-approval"),  # case and spacing do not disguise her
        (Identity("mallory", on_behalf_of="alice", roles=("dba",)), "self-approval"),  # a proxy for alice
        (Identity("eve"), "not-a-reviewer"),  # lacks the reviewer role
    ],
)
def test_self_approval_and_non_reviewers_are_refused(db: str, store_path: str, reviewer: Identity,
                                                      code: str) -> None:
    """Neither the requester nor the one it acts for, nor a non-reviewer, can approve; nothing changes."""
    conn = governed(db, {"store": store_path, "reviewer_roles": ["dba"]}, identity=BOT)
    e = refused(conn, "DELETE FROM t WHERE id = 1")
    with pytest.raises(ReviewRefused) as info:
        approvals.approve(e.request_id, reviewer=reviewer, store=store_path)
    assert info.value.code == code
    req = approvals.get_request(e.request_id, store=store_path)
    assert req.state == "pending" and req.reviews == ()


def test_quorum_needs_distinct_reviewers_from_named_roles(db: str, store_path: str) -> None:
    """With quorum 2 one approval is not enough, the same reviewer twice does not count, two distinct do."""
    conn = governed(db, {"store": store_path, "quorum": 2, "reviewer_roles": ("dba",)})
    e = refused(conn, "DELETE FROM t WHERE id = 1")
    assert approvals.approve(e.request_id, reviewer=BOB, store=store_path).state == "pending"
    with pytest.raises(ReviewRefused) as dup:
        approvals.approve(e.request_id, reviewer=Identity("BOB", roles=("dba",)), store=store_path)
    assert dup.value.code == "duplicate"
    assert refused(conn, "DELETE FROM t WHERE id = 1").request_id == e.request_id
    done = approvals.approve(e.request_id, reviewer=CAROL, store=store_path)
    assert done.state == "approved" and [r.reviewer for r in done.approvals] == ["bob", "carol"]
    conn.execute("DELETE FROM t WHERE id = 1")
    conn.commit()
    assert count(db) == 4


def test_quorum_and_roles_from_the_policy_win(db: str, store_path: str) -> None:
    """Review settings in the policy (Policy.extra['approvals']) override the connection's option."""
    strict = Policy(name="strict", rules=(risky_writes,), extra={"approvals": {"quorum": 2,
                                                                               "reviewer_roles": ["sre"]}})
    conn = governed_db.wrap(sqlite3.connect(db), identity=ALICE, policy=strict,
                            approvals={"store": store_path, "quorum": 1})
    e = refused(conn, "DELETE FROM t")
    req = approvals.get_request(e.request_id, store=store_path)
    assert (req.policy.quorum, req.policy.reviewer_roles) == (2, ("sre",))
    with pytest.raises(ReviewRefused):
        approvals.approve(e.request_id, reviewer=BOB, store=store_path)  # dba, not sre


def test_denial_is_final(db: str, store_path: str) -> None:
    """A denied request cannot be approved, and the statement stays refused naming the denial."""
    conn = governed(db, store_path)
    e = refused(conn, "DELETE FROM t")
    approvals.deny(e.request_id, reviewer=BOB, comment="use a WHERE clause", store=store_path)
    with pytest.raises(ReviewRefused) as info:
        approvals.approve(e.request_id, reviewer=CAROL, store=store_path)
    assert info.value.code == "decided"
    again = refused(conn, "DELETE FROM t")
    assert again.request_id == e.request_id and "denied by bob" in str(again) and "use a WHERE" in str(again)
    assert again.approve_command is None
    assert count(db) == 5


def test_expiry_of_pending_requests_and_unused_grants(db: str, store_path: str) -> None:
    """A pending request past its TTL cannot be approved; an approved grant past its TTL no longer runs."""
    clock = [time.time()]
    open_store(store_path).clock = lambda: clock[0]
    conn = governed(db, {"store": store_path, "request_ttl": 60, "grant_ttl": 30})
    e = refused(conn, "DELETE FROM t WHERE id = 1")
    clock[0] += 61
    with pytest.raises(ReviewRefused) as info:
        approvals.approve(e.request_id, reviewer=BOB, store=store_path)
    assert info.value.code == "expired"
    assert approvals.get_request(e.request_id, store=store_path).state == "expired"
    e2 = refused(conn, "DELETE FROM t WHERE id = 1")
    assert e2.request_id != e.request_id
    approvals.approve(e2.request_id, reviewer=BOB, store=store_path)
    clock[0] += 31
    e3 = refused(conn, "DELETE FROM t WHERE id = 1")
    assert e3.request_id not in (e.request_id, e2.request_id)
    assert approvals.get_request(e2.request_id, store=store_path).state == "expired"
    assert count(db) == 5


def test_unknown_request_is_a_clear_error(store_path: str) -> None:
    """Approving an id that does not exist names the problem and how to list requests."""
    with pytest.raises(ReviewRefused) as info:
        approvals.approve("zzzzzzzz", reviewer=BOB, store=store_path)
    assert info.value.code == "unknown" and "approvals list" in str(info.value)


def test_revoke_withdraws_an_approved_grant(db: str, store_path: str) -> None:
    """A revoked grant no longer lets the statement run; revoking twice is refused."""
    conn = governed(db, store_path)
    e = refused(conn, "DELETE FROM t")
    approvals.approve(e.request_id, reviewer=BOB, store=store_path)
    assert approvals.revoke(e.request_id, actor=BOB, comment="wrong table", store=store_path).state == "revoked"
    with pytest.raises(ReviewRefused) as info:
        approvals.revoke(e.request_id, actor=ALICE, store=store_path)
    assert info.value.code == "decided"
    assert refused(conn, "DELETE FROM t").request_id != e.request_id
    assert count(db) == 5


def test_time_bound_window_grant_covers_its_tables_and_operations(db: str, store_path: str) -> None:
    """A JIT window allows matching statements repeatedly until it ends; others still need approval."""
    clock = [time.time()]
    svc = Approvals(ApprovalConfig(store=store_path))
    svc.store.clock = lambda: clock[0]
    req = svc.request_window(identity=ALICE, environment="production", seconds=600, reason="cleanup",
                             operations=["delete"], tables=["t"])
    svc.approve(req.id, BOB)
    conn = governed(db, store_path)
    conn.execute("DELETE FROM t WHERE id = 1")
    conn.execute("DELETE FROM main.t WHERE id = ?", (2,))
    conn.commit()
    assert count(db) == 3
    assert refused(conn, "UPDATE t SET v = 'x'").rules == ("risky-write",)  # not an allowed operation
    assert refused(governed(db, store_path, identity=BOB), "DELETE FROM t WHERE id = 3")  # not bob's window
    clock[0] += 601
    refused(conn, "DELETE FROM t WHERE id = 3")
    assert count(db) == 3


def test_reason_required_by_policy(db: str, store_path: str) -> None:
    """With reason_required nothing is filed without a reason; approvals.reason() supplies one."""
    conn = governed(db, {"store": store_path, "reason_required": True})
    e = refused(conn, "DELETE FROM t")
    assert e.request_id is None and "reason" in str(e) and "approvals request" in str(e)
    assert approvals.list_requests(store=store_path) == []
    with approvals.reason("purge test rows, ticket 7"):
        e2 = refused(conn, "DELETE FROM t")
    assert approvals.get_request(e2.request_id, store=store_path).reason == "purge test rows, ticket 7"


def test_approvals_false_refuses_without_a_store(db: str, tmp_path: Path) -> None:
    """approvals=False: statements needing approval are refused and no store is created."""
    conn = governed(db, None, approvals=False)
    e = refused(conn, "DELETE FROM t")
    assert e.request_id is None and "approvals=False" in str(e)


def test_unreachable_store_fails_closed_only_for_statements_needing_approval(db: str, tmp_path: Path) -> None:
    """A store that cannot be opened refuses approval-needing statements with a clear fault; reads still run."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's directory should be")
    conn = governed(db, str(blocker / "sub" / "approvals.sqlite3"))
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (5,)
    with pytest.raises(GovernanceFault) as info:
        conn.execute("DELETE FROM t")
    assert "unreachable" in str(info.value) and "fail closed" in str(info.value)
    assert count(db) == 5


def test_default_store_comes_from_the_environment(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no approvals option, GOVERNED_DB_APPROVALS names the store and the command omits --store."""
    path = tmp_path / "env-store.sqlite3"
    monkeypatch.setenv("GOVERNED_DB_APPROVALS", str(path))
    conn = governed_db.wrap(sqlite3.connect(db), identity=ALICE, policy=POLICY)
    e = refused(conn, "DELETE FROM t")
    assert "--store" not in (e.approve_command or "x --store")
    assert approvals.get_request(e.request_id, store=str(path)).state == "pending"


def test_default_path_is_per_user_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without configuration the store is approvals.sqlite3 under $XDG_STATE_HOME/governed_db."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert approvals.default_path() == tmp_path / "governed_db" / "approvals.sqlite3"


def test_transitions_are_recorded_as_spans_without_parameters(db: str, store_path: str, spans: Any) -> None:
    """Requested, reviewed, approved and consumed each emit a governed_db.approval.* span; parameters never."""
    provider, exporter = spans
    conn = governed(db, {"store": store_path, "quorum": 2}, tracer_provider=provider)
    e = refused(conn, "DELETE FROM t WHERE v = ?", ("secret-value-123",))
    svc = Approvals(ApprovalConfig(store=store_path), tracer=provider.get_tracer("governed_db"))
    svc.approve(e.request_id, BOB, "looks fine")
    svc.approve(e.request_id, CAROL)
    conn.execute("DELETE FROM t WHERE v = ?", ("secret-value-123",))
    done = exporter.get_finished_spans()
    names = [s.name for s in done if s.name.startswith("governed_db.approval.")]
    assert names == ["governed_db.approval.requested", "governed_db.approval.reviewed",
                     "governed_db.approval.approved", "governed_db.approval.consumed"]
    by_name = {s.name: s for s in done}
    requested = by_name["governed_db.approval.requested"].attributes
    assert requested["governed_db.approval.request_id"] == e.request_id
    assert requested["governed_db.approval.state"] == "pending"
    assert requested["governed_db.identity.subject"] == "alice"
    assert by_name["governed_db.approval.requested"].instrumentation_scope.name == "governed_db"
    reviewed = by_name["governed_db.approval.reviewed"].attributes
    assert reviewed["governed_db.approval.reviewer"] == "bob"
    assert reviewed["governed_db.approval.comment"] == "looks fine"
    assert by_name["governed_db.approval.approved"].attributes["governed_db.approval.approvals"] == 2
    consumed = by_name["governed_db.approval.consumed"].attributes
    assert consumed["governed_db.approval.state"] == "consumed"
    assert consumed["governed_db.approval.reviewer"] == "alice"  # the actor of a consume is the requester
    for s in done:
        assert "secret-value-123" not in repr(dict(s.attributes or {}))


def test_wait_blocks_until_a_reviewer_approves(db: str, store_path: str) -> None:
    """With wait=seconds the execute blocks, then runs as soon as a reviewer approves it elsewhere."""
    conn = governed(db, {"store": store_path, "wait": 10})

    def reviewer() -> None:
        for _ in range(200):
            pending = approvals.list_requests(pending=True, store=store_path)
            if pending:
                approvals.approve(pending[0].id, reviewer=BOB, store=store_path)
                return
            time.sleep(0.05)

    t = threading.Thread(target=reviewer)
    t.start()
    start = time.monotonic()
    conn.execute("DELETE FROM t WHERE id = 5")
    t.join()
    conn.commit()
    assert time.monotonic() - start < 8 and count(db) == 4


def test_wait_gives_up_after_its_timeout(db: str, store_path: str) -> None:
    """wait= is bounded: with no reviewer the execute raises ApprovalRequired after about that long."""
    conn = governed(db, {"store": store_path, "wait": 0.5})
    start = time.monotonic()
    refused(conn, "DELETE FROM t")
    assert 0.4 < time.monotonic() - start < 3


def test_statements_not_needing_approval_never_touch_the_store(db: str, tmp_path: Path) -> None:
    """Allowed statements run without creating the store at all."""
    path = tmp_path / "never" / "approvals.sqlite3"
    conn = governed(db, str(path))
    assert conn.execute("SELECT v FROM t WHERE id = 1").fetchone() == ("v1",)
    assert not path.exists()


def test_worked_example_in_the_docs_runs() -> None:
    """The worked example in docs/approvals.md runs as written."""
    text = (Path(__file__).parent.parent / "docs" / "approvals.md").read_text()
    section = text.split("## Worked example", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/approvals.md", "exec"), {"__name__": "docs_example"})


def test_wait_ends_early_when_the_request_is_denied(db: str, store_path: str) -> None:
    """A denial while an execute waits ends the wait at once with the denial, not after the timeout."""
    conn = governed(db, {"store": store_path, "wait": 10})

    def reviewer() -> None:
        for _ in range(200):
            pending = approvals.list_requests(pending=True, store=store_path)
            if pending:
                approvals.deny(pending[0].id, reviewer=BOB, comment="not today", store=store_path)
                return
            time.sleep(0.05)

    t = threading.Thread(target=reviewer)
    t.start()
    start = time.monotonic()
    e = refused(conn, "DELETE FROM t")
    t.join()
    assert time.monotonic() - start < 8 and "denied by bob" in str(e) and "not today" in str(e)


def test_enabled_false_in_a_mapping_turns_approvals_off(db: str, store_path: str) -> None:
    """approvals={'enabled': False} refuses like approvals=False and files nothing."""
    e = refused(governed(db, {"store": store_path, "enabled": False}), "DELETE FROM t")
    assert e.request_id is None and not Path(store_path).exists()


def test_policy_settings_apply_to_a_shared_approvals_object(db: str, store_path: str) -> None:
    """Passing an Approvals object still lets the policy's quorum win."""
    strict = Policy(name="strict", rules=(risky_writes,), extra={"approvals": {"quorum": 3}})
    svc = Approvals(ApprovalConfig(store=store_path, quorum=1))
    conn = governed_db.wrap(sqlite3.connect(db), identity=ALICE, policy=strict, approvals=svc)
    e = refused(conn, "DELETE FROM t")
    assert svc.get(e.request_id or "").policy.quorum == 3


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"quorum": 0}, "quorum"),
        ({"quorum": "2"}, "quorum"),
        ({"grant_ttl": -1}, "grant_ttl"),
        ({"notify": "not callable"}, "notify"),
        ({"colour": "red"}, "unknown approvals setting"),
    ],
)
def test_bad_settings_are_configuration_errors(option: dict[str, Any], message: str) -> None:
    """Bad approvals settings are refused with a message naming the setting."""
    with pytest.raises(governed_db.ConfigurationError, match=message):
        approvals.resolve_config(option)


def test_transitions_reach_the_audit_store(db: str, store_path: str, tmp_path: Path) -> None:
    """With audit=PATH the request, the review (library/CLI side) and the consume land in the chained record."""
    from governed_db.audit import read_records, verify

    audit = tmp_path / "audit.jsonl"
    conn = governed(db, store_path, audit=str(audit))
    e = refused(conn, "DELETE FROM t WHERE id = 2")
    approvals.approve(e.request_id or "", reviewer=BOB, store=store_path, audit=str(audit))
    conn.execute("DELETE FROM t WHERE id = 2")
    names = [r.get("name") for r in read_records(audit)]
    assert [n for n in names if str(n).startswith("governed_db.approval.")] == [
        "governed_db.approval.requested", "governed_db.approval.approved", "governed_db.approval.consumed"]
    assert verify(audit).ok


@pytest.mark.parametrize(
    ("operations", "tables", "covered"),
    [
        (["DELETE"], ["public.t"], True),
        (["DELETE"], ["t"], False),  # a qualified grant table does not cover other schemas' t
        (["DELETE"], [], False),  # tables unknown (opaque statement): outside a table-scoped window
        (["DO"], [], False),
        (["UPDATE"], ["public.t"], False),
    ],
)
def test_table_scoped_window_covers_only_statements_on_its_tables(
    operations: list[str], tables: list[str], covered: bool
) -> None:
    """A window scoped to tables never covers a statement whose tables are unknown."""
    from types import SimpleNamespace

    from governed_db.approvals.review import covers

    grant = SimpleNamespace(operations=("DELETE", "DO"), tables=("public.t",))
    assert covers(grant, operations, tables) is covered  # type: ignore[arg-type]
