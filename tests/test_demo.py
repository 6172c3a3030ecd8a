"""`governed-db demo`: every promised scene happens for real, and nothing touches the network."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from governed_db.demo import run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return run_demo(tmp_path_factory.mktemp("demo"))


def _scene(demo, fragment: str):  # type: ignore[no-untyped-def]
    return next(s for s in demo.scenes if fragment in s.title)


def _raw_values(db: Path, sql: str) -> set[str]:
    return {str(v) for row in sqlite3.connect(db).execute(sql) for v in row if v is not None}


def test_demo_refuses_the_destructive_statement(demo) -> None:  # type: ignore[no-untyped-def]
    """DROP TABLE is refused with a rule and a next step, and the table is still there."""
    drop = _scene(demo, "drop a table")
    assert drop.outcome == "refused" and drop.rules and drop.remedy
    assert sqlite3.connect(demo.database).execute("SELECT count(*) FROM customers").fetchone()[0] > 0


def test_demo_refuses_the_smuggled_second_statement(demo) -> None:  # type: ignore[no-untyped-def]
    """A DELETE hidden after a comment in a multi-statement string is refused, not run."""
    assert _scene(demo, "second statement").outcome == "refused"
    assert sqlite3.connect(demo.database).execute("SELECT count(*) FROM orders").fetchone()[0] == 120


def test_demo_masks_pii_through_columns_expressions_and_secrets(demo) -> None:  # type: ignore[no-untyped-def]
    """No raw e-mail, phone, SSN, API key — nor their upper-case or hex forms — appears in what the agent got."""
    secrets = _raw_values(demo.database, "SELECT email, phone, ssn FROM customers") | _raw_values(
        demo.database, "SELECT api_key FROM integrations"
    )
    encodings = secrets | {s.upper() for s in secrets} | {s.encode().hex().upper() for s in secrets}
    for fragment in ("PII comes back masked", "Aliases, expressions", "Secrets are masked"):
        scene = _scene(demo, fragment)
        assert scene.outcome == "rows" and scene.rows
        shown = " ".join(str(v) for row in scene.rows for v in row)
        assert not [s for s in encodings if s in shown], fragment


def test_demo_leaves_non_sensitive_columns_exact(demo) -> None:  # type: ignore[no-untyped-def]
    """Over-masking is a bug: cities and aggregates come back exactly as the database computed them."""
    scene = _scene(demo, "Non-sensitive")
    raw = sqlite3.connect(demo.database).execute(scene.sql).fetchall()
    assert scene.rows == [tuple(r) for r in raw]


def test_demo_approval_flow_runs_the_statement_after_review(demo) -> None:  # type: ignore[no-untyped-def]
    """The bulk update needs approval (with a request id), and the same call runs once dana approved."""
    asked = _scene(demo, "needs a human's approval")
    assert asked.outcome == "approval" and asked.request_id and "approve" in (asked.remedy or "")
    assert _scene(demo, "Approved by dana").outcome == "ok"


def test_demo_activity_record_is_complete_and_verifies(demo) -> None:  # type: ignore[no-untyped-def]
    """Every scene left a record, refusals included, and the hash chain verifies."""
    decisions = [r["attrs"].get("governed_db.decision") for r in demo.records]
    assert "deny" in decisions and "allow" in decisions and "require_approval" in decisions
    assert demo.chain_ok


_GUARD = textwrap.dedent(
    """
    import socket, sys
    attempts = []
    def _deny(*args, **kwargs):
        attempts.append(repr(args)[:120])
        raise OSError("network disabled by the test")
    _connect = socket.socket.connect
    def _guard_connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            return _deny(address)
        return _connect(self, address)
    socket.socket.connect = _guard_connect
    socket.getaddrinfo = _deny
    socket.create_connection = _deny
    import atexit
    atexit.register(lambda: attempts and sys.stderr.write("NETWORK ATTEMPTS: " + "; ".join(attempts) + "\\n"))
    from governed_db.cli import main
    main(["demo", "--format", "json", "--dir", sys.argv[1]])
    """
)


def test_demo_cli_runs_offline(tmp_path: Path) -> None:
    """The CLI demo finishes with exit 0 and never tries to open a network connection or resolve a name."""
    proc = subprocess.run(
        [sys.executable, "-c", _GUARD, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert "NETWORK ATTEMPTS" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["chain_ok"] and out["records"] > 0


def test_demo_can_run_twice_in_the_same_directory(tmp_path: Path) -> None:
    """Re-running the demo in one directory starts a fresh store whose chain verifies."""
    run_demo(tmp_path)
    again = run_demo(tmp_path)
    assert again.chain_ok, again.chain_summary
