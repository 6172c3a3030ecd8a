"""Shared rate limits in Redis: one budget across processes, a bounded timeout, an outage is a policy choice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from governed_db.identity import Identity
from governed_db.policy import load_policy
from governed_db.policy.decision import Action
from governed_db.policy.file import PolicyFileError, policy_from_mapping
from governed_db.policy.ratelimit_redis import LimitStorage, SharedRateLimiter, parse_limit_storage

AGENT = Identity("report-bot", kind="agent", on_behalf_of="alice")
OTHER = Identity("etl-bot", kind="agent")
DBA = Identity("dora", kind="human")
#: nothing listens here: connecting is refused at once
DEAD_URL = "redis://127.0.0.1:1/0"


def _policy(url: str, prefix: str, **limit: Any) -> Any:
    return load_policy({
        "name": "shared",
        "limit_storage": {"url": url, "key_prefix": prefix, "timeout_seconds": 0.5},
        "limits": [{"when": {"kind": "agent"}, **limit}],
    })  # fmt: skip


def test_policy_file_chooses_the_shared_limiter(redis_url: str, unique: str) -> None:
    """limit_storage: makes the policy's limiter the Redis-backed one, with the configured storage."""
    pol = _policy(redis_url, f"t{unique}", statements_per_minute=3)
    assert isinstance(pol.limiter, SharedRateLimiter)
    assert pol.limiter.storage == LimitStorage(url=redis_url, key_prefix=f"t{unique}", timeout_seconds=0.5)


def test_two_limiters_share_one_budget(redis_url: str, unique: str) -> None:
    """Two limiters (as in two processes) on one Redis refuse the 4th statement between them, per identity."""
    a = _policy(redis_url, f"t{unique}", statements_per_minute=3).limiter
    b = _policy(redis_url, f"t{unique}", statements_per_minute=3).limiter
    results = [lim.on_statement(AGENT, "production") for lim in (a, b, a, b, a)]
    assert results[:3] == [None, None, None]
    assert all(
        r is not None and r.rule_id == "rate-limit-statements" and r.action is Action.DENY
        for r in results[3:]
    )
    assert b.on_statement(OTHER, "production") is None  # another identity has its own budget
    assert b.on_statement(DBA, "production") is None  # humans are not in this limit


def test_rows_fill_the_shared_window(redis_url: str, unique: str) -> None:
    """Rows read through one limiter refuse the next statement through another once the budget is used."""
    a = _policy(redis_url, f"t{unique}", rows_per_minute=100).limiter
    b = _policy(redis_url, f"t{unique}", rows_per_minute=100).limiter
    assert a.on_statement(AGENT, "production") is None
    a.on_rows(AGENT, 60, environment="production")
    assert b.on_statement(AGENT, "production") is None
    b.on_rows(AGENT, 500, environment="production")  # more than fits: the window fills to its limit
    hit = a.on_statement(AGENT, "production")
    assert hit is not None and hit.rule_id == "rate-limit-rows" and hit.action is Action.DENY


def test_unreachable_redis_fails_closed_in_production(unique: str) -> None:
    """Redis down: production refuses with rate-limit-unavailable; staging and observe environments warn."""
    lim = _policy(DEAD_URL, f"t{unique}", statements_per_minute=3).limiter
    hit = lim.on_statement(AGENT, "production")
    assert hit is not None and hit.rule_id == "rate-limit-unavailable" and hit.action is Action.DENY
    assert "127.0.0.1:1" in hit.reason and "unreachable" in hit.reason
    assert lim.on_statement(AGENT, "staging").action is Action.WARN
    assert lim.on_statement(AGENT, "development").action is Action.WARN
    lim.on_rows(AGENT, 10, environment="production")  # rows already read: logged, never raised


def test_outage_behaviour_is_a_policy_choice(unique: str) -> None:
    """rules: {rate-limit-unavailable: warn} keeps statements running through an outage (recorded as a warning)."""
    pol = load_policy({
        "limit_storage": {"url": DEAD_URL, "key_prefix": f"t{unique}"},
        "limits": [{"when": {"kind": "agent"}, "statements_per_minute": 3}],
        "rules": {"rate-limit-unavailable": "warn"},
    })  # fmt: skip
    hit = pol.limiter.on_statement(AGENT, "production")
    assert hit is not None and hit.action is Action.WARN


def test_timeout_is_bounded_and_retries_are_off(redis_url: str, unique: str) -> None:
    """The Redis client gets the policy's connect and socket timeout and no retries (a statement never hangs)."""
    lim = _policy(redis_url, f"t{unique}", statements_per_minute=3).limiter
    client = lim.backend().storage.storage
    kw = client.connection_pool.connection_kwargs
    assert kw["socket_connect_timeout"] == 0.5 and kw["socket_timeout"] == 0.5
    assert client.get_retry()._retries == 0


def test_loading_a_policy_never_connects() -> None:
    """A policy naming an unreachable Redis loads (the check comes with the first statement)."""
    pol = _policy(DEAD_URL, "x", statements_per_minute=3)
    assert isinstance(pol.limiter, SharedRateLimiter) and pol.limiter._backend is None


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"url": "http://x"}, "must start with one of"),
        ({"url": "redis://x", "timeout_seconds": 60}, "timeout_seconds"),
        ({"url": "redis://x", "timeout_seconds": 0}, "timeout_seconds"),
        ({"url": "redis://x", "key_prefix": "a:b"}, "key_prefix"),
        ({"url": "redis://x", "hosts": 1}, "unknown key 'hosts'"),
        ({"url_env": "GOVERNED_DB_NO_SUCH_VAR"}, "is not set"),
        ({}, "needs url"),
        ("redis://x", "expected a mapping"),
    ],
)
def test_bad_limit_storage_is_a_located_problem(section: Any, message: str) -> None:
    """A bad limit_storage section is a policy problem naming the key, never a limiter that fails later."""
    with pytest.raises(PolicyFileError) as e:
        policy_from_mapping({"limit_storage": section, "limits": [{"statements_per_minute": 1}]})
    assert e.value.key == "limit_storage" and message in str(e.value)


def test_limit_storage_without_limits_is_a_problem() -> None:
    """limit_storage with nothing to count is a mistake, reported at load time."""
    with pytest.raises(PolicyFileError, match="no limits"):
        policy_from_mapping({"limit_storage": {"url": "redis://127.0.0.1:6379/0"}})


def test_url_from_environment_and_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    """url_env reads the URL from the environment; messages never show its password."""
    monkeypatch.setenv("GOVERNED_DB_TEST_LIMIT_URL", "redis://:s3cret@127.0.0.1:1/0")
    storage = parse_limit_storage({"url_env": "GOVERNED_DB_TEST_LIMIT_URL"})
    assert storage.url == "redis://:s3cret@127.0.0.1:1/0" and "s3cret" not in storage.redacted_url()
    lim = SharedRateLimiter(load_policy({"limits": [{"statements_per_minute": 1}]}).settings.limits,
                            load_policy(None).settings, storage, scope="p")  # fmt: skip
    hit = lim.on_statement(AGENT, "production")
    assert hit is not None and "s3cret" not in hit.reason


_WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import psycopg
    import governed_db
    from governed_db.errors import GuardrailViolation

    policy, table, go, name = sys.argv[1:5]
    conn = psycopg.connect(os.environ["GOVERNED_DB_TEST_PG"], autocommit=True)
    gov = governed_db.wrap(conn, policy=policy, environment="production", audit=False,
                           identity=governed_db.Identity("fleet-bot", kind="agent"))
    while not Path(go).exists():
        time.sleep(0.01)
    ran = refused = 0
    for i in range(15):
        try:
            gov.execute(f"INSERT INTO {table} (worker, n) VALUES (%s, %s)", (name, i))
            ran += 1
        except GuardrailViolation as e:
            assert e.decision.rules == ("rate-limit-statements",), e.decision.rules
            refused += 1
    print(ran, refused)
    """
)


@pytest.mark.postgres
def test_two_processes_never_exceed_a_shared_limit_together(
    redis_url: str, pg_conn: Any, unique: str, tmp_path: Path
) -> None:
    """Two real processes, one Redis-backed limit of 10 statements a minute: exactly 10 rows reach the table."""
    table = f"shared_limit_{unique}"
    pg_conn.execute(f"CREATE TABLE {table} (worker text, n int)")
    try:
        policy = tmp_path / "policy.yaml"
        policy.write_text(textwrap.dedent(f"""
            name: fleet
            limit_storage: {{url: "{redis_url}", key_prefix: "t{unique}"}}
            limits:
              - when: {{kind: agent}}
                statements_per_minute: 10
            """))  # fmt: skip
        go = tmp_path / "go"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _WORKER, str(policy), table, str(go), name],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("a", "b")
        ]
        time.sleep(0.5)  # not a timing assertion: lets both processes import before the start signal
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
        ran = [tuple(map(int, o[0].split())) for o in outs]
        assert sum(r for r, _ in ran) == 10 and sum(f for _, f in ran) == 20
        rows = pg_conn.execute(f"SELECT worker, count(*) FROM {table} GROUP BY worker").fetchall()
        assert sum(n for _, n in rows) == 10  # the database is the ground truth
    finally:
        pg_conn.execute(f"DROP TABLE {table}")
