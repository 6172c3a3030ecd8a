"""A file option given a pipe (decision 0333): read to its end within a deadline, never waited on for ever.

``--key-file <(pass show audit-key)`` keeps a key off the disk, which is what a secrets manager is for; decision
0327 refused every pipe because a FIFO nobody writes made commands wait for ever. A pipe is now read without
blocking: its bytes up to its end, within ``PIPE_DEADLINE`` seconds in all; a pipe with no writer or nothing in it
is refused at once, one that never ends once the deadline passes, one past the size limit as a file would be.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import governed_db
from governed_db import config_files
from governed_db.audit import audit_processor
from governed_db.cli import main

KEY = "pipe-test-key"
ROOT = Path(__file__).resolve().parents[1]
CLI = f"{shlex.quote(sys.executable)} -c 'from governed_db.cli import main; main()'"


def _bash(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    proc = audit_processor({"path": str(path), "key": KEY, "fsync_interval": None, "checkpoint_interval": None})
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, environment="production")
    for i in range(3):
        conn.execute(f"SELECT {i}").fetchall()
    conn.close()
    proc.shutdown()
    return path


def test_a_key_from_process_substitution_verifies(store: Path) -> None:
    """The key read from ``<(printf ...)`` is the key: the store verifies with it, and not with another one."""
    right = _bash(f"{CLI} audit verify --store {shlex.quote(str(store))} --key-file <(printf %s {KEY})")
    assert right.returncode == 0, right.stdout + right.stderr
    assert "Traceback" not in right.stderr
    wrong = _bash(f"{CLI} audit verify --store {shlex.quote(str(store))} --key-file <(printf %s other-key)")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_a_policy_from_a_pipe_is_read() -> None:
    """The policy read from a pipe decides: a table it denies is denied, as with no policy it is allowed."""
    piped = _bash(f"{CLI} check 'SELECT * FROM payroll' --policy <(printf 'rules:\\n  table-deny: {{tables: [payroll]}}\\n')")
    plain = _bash(f"{CLI} check 'SELECT * FROM payroll'")
    assert "Traceback" not in piped.stderr and "error:" not in piped.stderr, piped.stderr
    assert piped.returncode == 1 and piped.stdout.startswith("DENY") and "table-deny" in piped.stdout, piped.stdout
    assert plain.returncode == 0 and plain.stdout.startswith("ALLOW"), plain.stdout


def test_a_pipe_past_the_size_limit_is_refused_as_a_file_would_be() -> None:
    size = config_files.MAX_CONFIG_BYTES + 10
    p = _bash(f"{CLI} check 'SELECT 1' --policy <(head -c {size} /dev/zero | tr '\\\\0' a)")
    assert p.returncode == 2, p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.lower().startswith("error:")]
    assert len(errors) == 1 and "limited to" in errors[0], p.stderr


def test_a_pipe_that_never_ends_is_refused_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_files, "PIPE_DEADLINE", 0.5)
    r, w = os.pipe()
    try:
        os.write(w, b"rules: []\n")  # a start, and then nothing more, and never an end
        start = time.monotonic()
        result = CliRunner().invoke(main, ["check", "SELECT 1", "--policy", f"/dev/fd/{r}"])
        took = time.monotonic() - start
    finally:
        os.close(w)
        os.close(r)
    assert result.exit_code == 2, result.output
    assert "did not finish within 0.5 s" in result.output and "Traceback" not in result.output
    assert took < 5, took


def test_an_empty_pipe_and_a_fifo_nobody_writes_are_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    for source in (shlex.quote(str(fifo)), "<(true)"):
        start = time.monotonic()
        p = _bash(f"{CLI} check 'SELECT 1' --policy {source}")
        assert time.monotonic() - start < 30
        assert p.returncode == 2, p.stderr
        errors = [ln for ln in p.stderr.splitlines() if ln.lower().startswith("error:")]
        assert len(errors) == 1 and "a pipe that gave nothing" in errors[0], p.stderr
    assert fifo.is_fifo()
