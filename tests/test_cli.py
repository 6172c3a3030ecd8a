"""Every CLI verb, with missing, malformed and hostile arguments: exit 0/1/2 with a message, never a traceback.

The verbs are discovered from the click group, so a verb added later is in the matrix without editing this
file. Each verb runs with no arguments, with every positional argument set to each hostile value, and with
each value-taking option set to each hostile value in turn. Verbs that would serve forever get their
non-serving flag (``mcp --check``) or a web server that returns at once (``approvals serve``: uvicorn.run is
replaced); anything still running after a generous bound fails the test instead of hanging the suite.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from governed_db.cli import main

#: flags that make a verb return instead of serving or following
NON_SERVING: dict[str, list[str]] = {"mcp": ["--check"]}
#: verbs that only serve (nothing to check without a client); named by their path
SKIP: set[str] = set()
BOUND_S = 60.0


def _verbs() -> list[tuple[str, click.Command]]:
    ctx = click.Context(main)
    out: list[tuple[str, click.Command]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None:
                    walk(sub, [*path, name])
        else:
            out.append((" ".join(path), cmd))

    walk(main, [])
    return out


VERBS = [(name, cmd) for name, cmd in _verbs() if name not in SKIP]


@pytest.fixture
def hostile(tmp_path: Path) -> dict[str, str]:
    """Hostile values by name: missing and wrong-kind paths, garbage and nested files, bad URLs, odd text."""
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\xff\xfe garbage {{{ \n not yaml: [ \n" * 50)
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    deep_yaml = tmp_path / "deep.yaml"
    deep_yaml.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    return {
        "missing path": str(tmp_path / "missing" / "dir" / "x.html"),
        "directory": str(tmp_path),
        "garbage file": str(garbage),
        "nested JSON file": str(nested),
        "deep YAML file": str(deep_yaml),
        "bad URL": "nosuchdriver://x",
        "half URL": "postgresql+psycopg://u:p@h:notaport/db",
        "unicode": "ünïcødé ☃ \u202e \U0001d518 '\"; DROP TABLE x; --",
        "empty": "",
        "negative": "-1",
        "huge number": "9" * 40,
        "nested JSON text": '{"a": ' * 5000 + "1" + "}" * 5000,
        "long text": "x" * 50_000,
        # a file argument that never ends: sizes from stat() say 0 (policy lint, --key-file and --store hung)
        "device": "/dev/zero" if Path("/dev/zero").exists() else str(garbage),
    }


#: the values each option is tried with (positionals get every value)
OPTION_VALUES = ["missing path", "directory", "garbage file", "nested JSON file", "bad URL", "unicode", "empty",
                 "negative", "nested JSON text", "device"]


def _invocations(name: str, cmd: click.Command, values: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    path = name.split()
    fixed = NON_SERVING.get(name, [])
    positionals = [p for p in cmd.params if isinstance(p, click.Argument)]
    options = [p for p in cmd.params if isinstance(p, click.Option) and not p.is_flag and not p.count]
    yield "no arguments", [*path, *fixed]
    for label, value in values.items() if positionals else ():
        yield f"arguments={label}", [*path, *fixed, *([value] * len(positionals))]
    plain = ["x"] * len(positionals)
    for opt in options:
        for label in OPTION_VALUES:
            yield f"{opt.opts[-1]}={label}", [*path, *fixed, *plain, opt.opts[-1], values[label]]


def _run(args: list[str]) -> Result:
    box: list[Result] = []
    runner = CliRunner()
    worker = threading.Thread(target=lambda: box.append(runner.invoke(main, args, input="")), daemon=True)
    worker.start()
    worker.join(BOUND_S)
    assert not worker.is_alive(), f"governed-db {args!r} still running after {BOUND_S} s"
    return box[0]


@pytest.mark.parametrize(("name", "cmd"), VERBS, ids=[name for name, _ in VERBS])
def test_every_verb_survives_hostile_arguments(
    name: str, cmd: click.Command, hostile: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each invocation exits 0, 1 or 2; a failure says something; no traceback, no unexpected error."""
    monkeypatch.chdir(tmp_path)  # verbs that write (catalogs, demo files) write here
    try:  # web servers (approvals serve) return at once: the matrix checks the input handling, not serving
        import uvicorn

        monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
        monkeypatch.setattr(uvicorn.Server, "run", lambda *args, **kwargs: None)  # the socket is still bound
    except ImportError:
        pass
    problems: list[str] = []
    count = 0
    for label, args in _invocations(name, cmd, hostile):
        count += 1
        problems += _problem(label, _run(args))
    assert count > 1
    assert problems == [], f"governed-db {name}: " + "\n".join(problems)


def _problem(label: str, result: Result) -> list[str]:
    """What is wrong with one invocation's ending: a raise, another exit code, a traceback, a silent failure."""
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return [f"{label}: raised {type(result.exception).__name__}: {result.exception}"[:300]]
    if result.exit_code not in (0, 1, 2):
        return [f"{label}: exit {result.exit_code}"]
    if "Traceback (most recent call last)" in output:
        return [f"{label}: traceback in output"]
    if "unexpected" in output and "error: unexpected" in output:
        return [f"{label}: {output.strip().splitlines()[-1][:300]}"]
    if result.exit_code != 0 and not output.strip():
        return [f"{label}: exit {result.exit_code} without a message"]
    errors = [line for line in output.splitlines() if line.lower().startswith(("error:", "usage:"))]
    if result.exit_code == 2 and (len(errors) != 1 or errors[0].lower().startswith("usage:")):
        # bad input is one line saying what is wrong (click's usage block was four)
        return [f"{label}: exit 2 without exactly one 'error: ...' line: {output.strip().splitlines()[-3:]}"[:300]]
    return []


#: invocations that reach past the store check: each option of the reading verbs is then given each value
ON_A_STORE = {
    "audit search": [], "audit tail": [], "audit stats": [], "audit index": [], "audit verify": [],
    "audit who-touched": ["users"], "audit export": ["--format", "csv"], "report": ["--format", "md"],
    "policy replay": ["--policy", "policy.yaml"],
}
STORE_VALUES = ["huge number", "negative", "nested JSON text", "unicode", "empty", "device", "directory"]


def test_hostile_options_on_a_real_store(hostile: dict[str, str], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The matrix above names a store that is not there, so most options are never read: here every option of
    the reading verbs gets each value next to a real store (--limit 10**40, -n -1, --since with nested text,
    ...) — issue 15's bad-input matrix, past the first check."""
    import sqlite3

    import governed_db

    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text("rules: []\n")
    store = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE users (id INTEGER, email TEXT)")
    conn = governed_db.wrap(raw, audit={"path": str(store), "idle_close": None}, identity=governed_db.Identity("a"))
    conn.execute("INSERT INTO users VALUES (1, 'a@example.com')")
    conn.execute("SELECT * FROM users").fetchall()
    governed_db.audit.audit_processor(str(store)).store.flush()
    commands = dict(VERBS)
    problems: list[str] = []
    for name, fixed in ON_A_STORE.items():
        base = [*name.split(), *fixed, "--store", str(store)]
        assert _run(base).exit_code in (0, 1), (name, _run(base).output)
        for opt in commands[name].params:
            if not isinstance(opt, click.Option) or opt.is_flag or opt.name in ("store", "fmt", "policy_file"):
                continue
            for label in STORE_VALUES:
                args = [*base, opt.opts[-1], hostile[label]]
                problems += _problem(f"{name} {opt.opts[-1]}={label}", _run(args))
    assert problems == []


def test_the_matrix_covers_every_verb() -> None:
    """The discovered verbs include the known ones (the matrix cannot silently shrink)."""
    names = {name for name, _ in VERBS}
    assert {"check", "classify", "report", "whoami", "mcp", "demo", "audit tail", "audit verify", "audit search",
            "policy lint", "policy test", "approvals approve", "approvals list"} <= names


def test_unexpected_errors_are_one_line_not_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug inside a verb is reported as one line with exit 1; GOVERNED_DB_DEBUG=1 lets the traceback through."""
    import governed_db.cli.check as check_module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(check_module, "evaluate", broken)
    result = CliRunner().invoke(main, ["check", "SELECT 1"])
    assert result.exit_code == 1
    assert "error: unexpected RuntimeError: bug" in result.output and "Traceback" not in result.output
    monkeypatch.setenv("GOVERNED_DB_DEBUG", "1")
    result = CliRunner().invoke(main, ["check", "SELECT 1"])
    assert isinstance(result.exception, RuntimeError)


@pytest.mark.parametrize(("args", "says"), [
    (["report", "--store", "{store}", "-o", "/missing/dir/x.html"], "cannot write the report"),
    (["mcp", "--dsn", "nosuchdriver://x", "--check"], "nosuchdriver"),
    (["classify", "nosuchdriver://x"], "not supported"),
    (["audit", "tail", "--store", "{garbage}"], "not a governed_db audit store"),
])
def test_known_bad_inputs_exit_2_with_one_line(
    args: list[str], says: str, hostile: dict[str, str], tmp_path: Path
) -> None:
    """The cases from the issue: exit 2, the message says what is wrong, no traceback."""
    import sqlite3

    import governed_db

    store = tmp_path / "audit.jsonl"
    governed_db.wrap(sqlite3.connect(":memory:"), audit=store).execute("SELECT 1").fetchall()
    args = [a.replace("{garbage}", hostile["garbage file"]).replace("{store}", str(store)) for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert says in result.output and "Traceback" not in result.output
