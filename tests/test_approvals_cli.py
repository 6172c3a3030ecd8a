"""``governed-db approvals``: the CLI drives the whole workflow (click's CliRunner, real stores)."""

from __future__ import annotations

import json
import shlex
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import governed_db
from governed_db.cli import main
from governed_db.errors import ApprovalRequired
from governed_db.identity import Identity
from governed_db.policy import Policy
from governed_db.policy.decision import Action, RuleHit


def deletes(stmt: Any, ctx: Any) -> RuleHit | None:
    if stmt is not None and stmt.operation == "DELETE":
        return RuleHit("bulk-delete", Action.REQUIRE_APPROVAL, "DELETE needs a reviewer")
    return None


POLICY = Policy(name="cli-test", rules=(deletes,))


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "approvals.sqlite3")


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE t (id INTEGER)")
        raw.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(5)])
    return str(path)


def cli(store: str, *args: str, obj: Any = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["approvals", "--store", store, *args], obj=obj, env=env)


def pending_request(db: str, store: str, sql: str = "DELETE FROM t WHERE id = 1", who: str = "alice",
                    **cfg: Any) -> ApprovalRequired:
    conn = governed_db.wrap(sqlite3.connect(db), identity=Identity(who), policy=POLICY,
                            approvals={"store": store, **cfg})
    with pytest.raises(ApprovalRequired) as info:
        conn.execute(sql)
    return info.value


def run_as(db: str, sql: str, who: str = "alice") -> None:
    conn = governed_db.wrap(sqlite3.connect(db), identity=Identity(who), policy=POLICY,
                            approvals={"store": str(Path(db).parent / "approvals.sqlite3")})
    conn.execute(sql)
    conn.commit()


def test_the_printed_approve_command_works_and_the_rerun_succeeds(db: str, store: str) -> None:
    """Copying the command from the error (with a reviewer name) approves; the same execute then runs."""
    e = pending_request(db, store)
    argv = shlex.split(e.approve_command or "")
    assert argv[:3] == ["governed-db", "approvals", "approve"]
    argv = [a if a != "<reviewer>" else "bob" for a in argv[1:]]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert f"request {e.request_id} is approved" in result.output
    run_as(db, "DELETE FROM t WHERE id = 1")
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT count(*) FROM t").fetchone() == (4,)


def test_list_pending_and_show(db: str, store: str) -> None:
    """list --pending shows the inbox (table and JSON); show prints the request with its reviews."""
    e = pending_request(db, store, quorum=2)
    table = cli(store, "list", "--pending")
    assert table.exit_code == 0 and e.request_id in table.output and "pending" in table.output
    data = json.loads(cli(store, "list", "--pending", "--format", "json").output)
    assert [r["id"] for r in data] == [e.request_id]
    assert data[0]["requester"] == "alice" and data[0]["quorum"] == 2 and "statement_hash" not in data[0]
    assert cli(store, "approve", e.request_id, "--as", "bob", "-m", "fine by me").exit_code == 0
    shown = json.loads(cli(store, "show", e.request_id, "--format", "json").output)
    assert shown["state"] == "pending" and shown["reviews"][0]["comment"] == "fine by me"
    human = cli(store, "show", e.request_id)
    assert human.exit_code == 0 and "fine by me" in human.output and "1/2" in human.output


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["approve", "{id}", "--as", "alice"], 1, "may not approve or deny their own"),
        (["approve", "{id}", "--as", "eve"], 1, "not a reviewer"),
        (["approve", "nosuchid", "--as", "bob", "--role", "dba"], 2, "no approval request"),
        (["approve", "{id}"], 2, "who is reviewing"),
        (["request", "--sql", "DELETE FROM t", "--params", "{not json"], 2, "not valid JSON"),
        (["request"], 2, "say what to approve"),
        (["request", "--tables", "t", "--for", "soon"], 2, "not a duration"),
    ],
)
def test_refusals_and_bad_input_exit_codes(db: str, store: str, args: list[str], code: int, says: str) -> None:
    """Refused reviews exit 1, bad input exits 2, each with a message saying what is wrong."""
    e = pending_request(db, store, reviewer_roles=["dba"])
    result = cli(store, *[a.replace("{id}", e.request_id or "") for a in args])
    assert result.exit_code == code, result.output
    assert says in result.output
    assert cli(store, "show", e.request_id or "", "--format", "json").exit_code == 0


def test_reviewer_never_comes_from_the_application_identity(db: str, store: str) -> None:
    """GOVERNED_DB_IDENTITY (the requester's setting) does not make anyone a reviewer; GOVERNED_DB_REVIEWER does."""
    e = pending_request(db, store, reviewer_roles=["dba"])
    ignored = cli(store, "approve", e.request_id or "", env={"GOVERNED_DB_IDENTITY": "bob;roles=dba"})
    assert ignored.exit_code == 2 and "who is reviewing" in ignored.output
    ok = cli(store, "approve", e.request_id or "", env={"GOVERNED_DB_REVIEWER": "bob;roles=dba"})
    assert ok.exit_code == 0, ok.output
    assert "approved" in ok.output


def test_roles_from_the_command_line(db: str, store: str) -> None:
    """--role gives the reviewer the role the request needs."""
    e = pending_request(db, store, reviewer_roles=["dba"])
    assert cli(store, "approve", e.request_id or "", "--as", "bob").exit_code == 1
    assert cli(store, "approve", e.request_id or "", "--as", "bob", "--role", "dba").exit_code == 0


def test_deny_is_final_and_revoke_withdraws(db: str, store: str) -> None:
    """After deny, approve exits 1; revoke closes an approved grant so the statement is refused again."""
    e = pending_request(db, store)
    assert cli(store, "deny", e.request_id or "", "--as", "bob", "-m", "no").exit_code == 0
    again = cli(store, "approve", e.request_id or "", "--as", "carol")
    assert again.exit_code == 1 and "already denied" in again.output
    e2 = pending_request(db, store, "DELETE FROM t WHERE id = 2")
    assert cli(store, "approve", e2.request_id or "", "--as", "bob").exit_code == 0
    revoked = cli(store, "revoke", e2.request_id or "", "--as", "alice", "--format", "json")
    assert revoked.exit_code == 0 and json.loads(revoked.output)["state"] == "revoked"
    with pytest.raises(ApprovalRequired):
        run_as(db, "DELETE FROM t WHERE id = 2")


def test_request_ahead_then_run(db: str, store: str) -> None:
    """request --sql files the exact statement; once approved the governed execute runs with no change."""
    sql = "DELETE FROM t WHERE id = ?"
    filed = cli(store, "request", "--sql", sql, "--params", "[3]", "--reason", "ticket 9", "--dialect", "sqlite",
                "--identity", "alice", "--format", "json")
    assert filed.exit_code == 0, filed.output
    rid = json.loads(filed.output)["id"]
    assert cli(store, "approve", rid, "--as", "bob").exit_code == 0
    conn = governed_db.wrap(sqlite3.connect(db), identity=Identity("alice"), policy=POLICY,
                            approvals={"store": store})
    conn.execute(sql, (3,))
    with pytest.raises(ApprovalRequired):
        conn.execute(sql, (4,))  # other parameters: not covered


def test_request_time_bound_window(db: str, store: str) -> None:
    """request --tables/--operations/--for files a window grant that covers repeated matching statements."""
    filed = cli(store, "request", "--tables", "t", "--operations", "DELETE", "--for", "30m", "--reason", "cleanup",
                "--identity", "alice")
    assert filed.exit_code == 0, filed.output
    rid = filed.output.split()[3]
    assert f"approvals approve {rid}" in filed.output
    assert cli(store, "approve", rid, "--as", "bob").exit_code == 0
    run_as(db, "DELETE FROM t WHERE id = 0")
    run_as(db, "DELETE FROM t WHERE id = 4")
    data = json.loads(cli(store, "show", rid, "--format", "json").output)
    assert data["kind"] == "window" and data["grant_seconds"] == 1800 and data["state"] == "approved"


def test_cli_transitions_are_recorded(db: str, store: str, spans: Any) -> None:
    """CLI reviews emit governed_db.approval.* spans through the tracer provider it is given."""
    provider, exporter = spans
    e = pending_request(db, store)
    assert cli(store, "approve", e.request_id or "", "--as", "bob", obj={"tracer_provider": provider}).exit_code == 0
    span = next(s for s in exporter.get_finished_spans() if s.name == "governed_db.approval.approved")
    assert span.attributes["governed_db.approval.reviewer"] == "bob"
    assert span.attributes["governed_db.approval.request_id"] == e.request_id


def test_unreachable_store_exits_1(tmp_path: Path) -> None:
    """A store that cannot be opened is reported as a problem (exit 1), not a crash."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli(str(blocker / "sub" / "a.sqlite3"), "list")
    assert result.exit_code == 1 and "unreachable" in result.output


def test_verified_reviewer_token(db: str, store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reviewer token verified against the issuer's keys approves where verified reviewers are required."""
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", alg="RS256", use="sig")
    monkeypatch.setenv("GOVERNED_DB_TOKEN_ISSUER", "https://idp.example")
    monkeypatch.setenv("GOVERNED_DB_TOKEN_AUDIENCE", "governed-db")
    monkeypatch.setenv("GOVERNED_DB_TOKEN_JWKS", json.dumps({"keys": [jwk]}))
    now = int(time.time())
    token = jwt.encode({"iss": "https://idp.example", "aud": "governed-db", "sub": "dana", "groups": ["dba"],
                        "iat": now, "exp": now + 300}, key, algorithm="RS256", headers={"kid": "k1"})
    e = pending_request(db, store, reviewer_roles=["dba"], require_verified_reviewer=True)
    self_declared = cli(store, "approve", e.request_id or "", "--as", "dana", "--role", "dba")
    assert self_declared.exit_code == 1 and "verified token" in self_declared.output
    forged = cli(store, "approve", e.request_id or "", "--token", token[:-4] + "AAAA")
    assert forged.exit_code == 2 and "approved" not in forged.output
    ok = cli(store, "approve", e.request_id or "", "--format", "json", env={"GOVERNED_DB_REVIEWER_TOKEN": token})
    assert ok.exit_code == 0, ok.output
    review = json.loads(ok.output)["reviews"][0]
    assert (review["reviewer"], review["verified"], json.loads(ok.output)["state"]) == ("dana", True, "approved")
