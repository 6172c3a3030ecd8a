"""Issue 15: every CLI verb, given a FIFO, a device or a hostile file or value where it takes a path or a value.

A FIFO named as ``--key-file``, ``--policy``, a policy or cases file, a claims map, a classify target or an
output (``audit export -o``, ``report -o``, ``classify -o``) waited for the other end for ever; a policy file
holding a NUL or another control character was a ``ReaderError`` traceback out of every verb that reads a
policy. Decision 0327: a path a user gives is opened without blocking and refused unless it is a regular file,
with one ``error:`` line and exit 2. The matrix runs each verb with no store, next to a real store, and with
the arguments that let it reach its file options (a database, a token, an approvals request).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import governed_db
from governed_db.cli import main
from tests.test_cli import NON_SERVING, ON_A_STORE, VERBS, _problem

BOUND_S = 20.0
KEY = "k" * 16


def _run(args: list[str]) -> Result | None:
    box: list[Result] = []
    worker = threading.Thread(target=lambda: box.append(CliRunner().invoke(main, args, input="")), daemon=True)
    worker.start()
    worker.join(BOUND_S)
    return box[0] if box else None  # None: still waiting (a FIFO's open() never returns)


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.chdir(tmp_path)
    try:  # approvals serve returns at once: the matrix checks the input handling, not serving
        import uvicorn

        monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
        monkeypatch.setattr(uvicorn.Server, "run", lambda *args, **kwargs: None)
    except ImportError:
        pass
    (tmp_path / "policy.yaml").write_text("rules: []\n")
    store = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE users (id INTEGER, email TEXT)")
    conn = governed_db.wrap(raw, audit={"path": str(store), "idle_close": None, "key": KEY},
                            identity=governed_db.Identity("a"))
    conn.execute("INSERT INTO users VALUES (1, 'a@example.com')")
    conn.execute("SELECT * FROM users").fetchall()
    governed_db.audit.audit_processor({"path": str(store), "key": KEY}).store.flush()
    db = tmp_path / "db.sqlite"
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE users (id INTEGER, email TEXT)")
    c.commit()
    c.close()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    return {"store": store, "db": db, "fifo": fifo, "dir": tmp_path}


def _contexts(name: str, place: dict[str, Path]) -> list[tuple[str, list[str], list[str]]]:
    """(label, positionals, extra options) under which the verb's options are tried."""
    cmd = dict(VERBS)[name]
    n = sum(isinstance(p, click.Argument) for p in cmd.params)
    plain = ["x"] * n
    out = [("bare", plain, [])]
    if name in ON_A_STORE:
        out.append(("on a store", plain, [*ON_A_STORE[name], "--store", str(place["store"])]))
    valid = {"mcp": ["--dsn", f"sqlite:///{place['db']}"], "whoami": ["--token", "a.b.c"],
             "approvals request": ["--sql", "DELETE FROM users", "--store", str(place["dir"] / "appr.db")]}
    if name in valid:
        out.append(("reaching its files", plain, valid[name]))
    if name == "classify":
        out.append(("on a database", [str(place["db"])], []))
    return out


@pytest.mark.parametrize(("name", "cmd"), VERBS, ids=[name for name, _ in VERBS])
def test_no_verb_waits_on_a_fifo_or_takes_a_device(name: str, cmd: click.Command, place: dict[str, Path]) -> None:
    """Each positional and each value-taking option set to a FIFO, then to /dev/null: the command ends within
    the bound, exit 0/1/2, a failure is one line, no traceback (before: 11 invocations over 8 verbs hung)."""
    fixed = NON_SERVING.get(name, [])
    problems: list[str] = []
    options = [p for p in cmd.params if isinstance(p, click.Option) and not p.is_flag and not p.count]
    for label, positionals, extra in _contexts(name, place):
        for value in (str(place["fifo"]), "/dev/null"):
            cases = []
            if positionals and label == "bare":
                cases.append((f"arguments={value}", [*name.split(), *fixed, *([value] * len(positionals))]))
            for opt in options:
                if opt.opts[-1] in extra or (opt.name == "store" and label == "on a store"):
                    continue
                cases.append((f"{opt.opts[-1]}={value}", [*name.split(), *fixed, *positionals, *extra,
                                                         opt.opts[-1], value]))
            for case, args in cases:
                result = _run(args)
                if result is None:
                    problems.append(f"{label}: {case}: still waiting after {BOUND_S} s")
                else:
                    problems += [f"{label}: {p}" for p in _problem(case, result)]
    assert problems == [], f"governed-db {name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("args", [
    ["audit", "verify", "--store", "{store}", "--key-file", "{fifo}"],
    ["report", "--store", "{store}", "--key-file", "{fifo}"],
    ["audit", "export", "--store", "{store}", "-o", "{fifo}"],
    ["report", "--store", "{store}", "--format", "md", "-o", "{fifo}"],
    ["classify", "{db}", "-o", "{fifo}"],
    ["classify", "{fifo}"],
    ["policy", "lint", "{fifo}"],
    ["policy", "test", "{fifo}", "{fifo}"],
    ["policy", "replay", "--store", "{store}", "--policy", "{fifo}"],
    ["check", "SELECT 1", "--policy", "{fifo}"],
    ["whoami", "--token", "a.b.c", "--claims-map", "{fifo}"],
    ["approvals", "--store", "{dir}/appr.db", "request", "--sql", "DELETE FROM users", "--policy", "{fifo}"],
    ["mcp", "--dsn", "sqlite:///{db}", "--check", "--tools", "{fifo}"],
], ids=lambda a: " ".join(a[:2]) + " " + next(x for x in a if x.startswith("-") or x == "{fifo}"))
def test_a_fifo_is_refused_in_one_line_in_a_real_process(args: list[str], place: dict[str, Path]) -> None:
    """The command as a shell runs it, a FIFO with nobody at the other end: exit 2 within seconds, exactly one
    line saying it is not a regular file; an output FIFO is left a FIFO, and nothing else is written."""
    argv = [a.format(**{k: str(v) for k, v in place.items()}) for a in args]
    p = subprocess.run([sys.executable, "-c", "from governed_db.cli import main; main()", *argv],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1 and "not a regular file" in errors[0], p.stderr
    assert p.stdout.strip() == "" or "fifo" not in p.stdout
    assert place["fifo"].is_fifo()


def test_an_output_that_is_a_file_is_still_written_and_emptied_first(place: dict[str, Path]) -> None:
    """The refusal is only for non-files: an existing longer file is replaced by the export, not appended to."""
    out = place["dir"] / "out.jsonl"
    out.write_text("x" * 100_000)
    result = CliRunner().invoke(main, ["audit", "export", "--store", str(place["store"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines and all(line.startswith("{") for line in lines)


@pytest.mark.parametrize("content", [b"rules: []\n\x00\x01x\n", b"rules: [\x1b[31m]\n", b"rules: []\n\x7f\n",
                                     b"\xef\xbb\xbfrules: []\n\x0c\n"], ids=["NUL", "escape", "DEL", "form feed"])
@pytest.mark.parametrize("verb", [
    ["policy", "lint", "{file}"],
    ["check", "SELECT 1", "--policy", "{file}"],
    ["policy", "replay", "--store", "{store}", "--policy", "{file}"],
    ["approvals", "--store", "{dir}/appr.db", "request", "--sql", "DELETE FROM users", "--policy", "{file}"],
    ["policy", "test", "{file}", "{file}"],
], ids=lambda v: " ".join(v[:2]))
def test_a_policy_file_with_control_characters_is_bad_input(verb: list[str], content: bytes,
                                                           place: dict[str, Path]) -> None:
    """A policy (or cases) file holding a character YAML does not allow: before, a ReaderError traceback
    ("error: unexpected ReaderError"); now the file's problem, on one line (lint exits 1, the others 2)."""
    f = place["dir"] / "bad.yaml"
    f.write_bytes(content)
    args = [a.format(file=str(f), store=str(place["store"]), dir=str(place["dir"])) for a in verb]
    result = CliRunner().invoke(main, args)
    assert _problem(" ".join(verb[:2]), result) == []
    assert result.exit_code in (1, 2), result.output
    assert "unexpected" not in result.output
    assert "not valid YAML" in result.output and "character" in result.output, result.output


def test_the_library_refuses_a_policy_file_with_a_nul_as_configuration(tmp_path: Path) -> None:
    """wrap(policy=<file with a NUL>) is the policy's problem (PolicyFileError, a ConfigurationError), named."""
    from governed_db.errors import ConfigurationError

    f = tmp_path / "p.yaml"
    f.write_bytes(b"rules: []\n\x00\n")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        governed_db.wrap(sqlite3.connect(":memory:"), policy=str(f), audit=False)
