"""``governed-db policy``: lint a policy file and put it under test (``replay`` is added from replay.py).

Exit codes: 0 ok; 1 problems found (invalid policy, failing cases); 2 bad input (missing file, bad cases file).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from governed_db.errors import ConfigurationError
from governed_db.policy.file import check_policy_file
from governed_db.policy.testing import CaseResult, load_cases, run_cases


@click.group("policy")
def policy() -> None:
    """Check policy files and test them against tables of statements.

    Exit codes: 0 ok; 1 problems found (invalid policy, failing cases); 2 bad input.
    """


@policy.command("lint")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def lint(file: Path, fmt: str) -> None:
    """Validate FILE; report every problem with file, line and key."""
    if not file.exists():
        click.echo(f"error: policy file {str(file)!r} does not exist", err=True)
        sys.exit(2)
    if not file.is_file():  # a directory, FIFO or device is no policy to lint: bad input, as a missing file is
        kind = "a directory" if file.is_dir() else "not a regular file (a pipe, socket or device)"
        click.echo(f"error: policy file {str(file)!r} is {kind}; pass a file", err=True)
        sys.exit(2)
    pol, problems = check_policy_file(file)
    if fmt == "json":
        click.echo(json.dumps({"file": str(file), "valid": not problems,
                               "problems": [p.__dict__ for p in problems]}, indent=2))  # fmt: skip
    elif problems:
        for p in problems:
            click.echo(str(p))
    else:
        rules = len(pol.settings.actions) + len(pol.settings.options)
        click.echo(f"{file}: ok (policy {pol.name!r}; {rules} rule setting(s), {len(pol.settings.overrides)} "
                   f"override(s), {len(pol.settings.limits)} limit(s))")  # fmt: skip
    sys.exit(1 if problems else 0)


@policy.command("test")
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("cases", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def test(file: Path, cases: Path, fmt: str) -> None:
    """Run the (sql, expected action) table in CASES against policy FILE."""
    try:
        table = load_cases(cases)
        results = run_cases(str(file), table)
    except ConfigurationError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    failed = [r for r in results if not r.passed]
    if fmt == "json":
        click.echo(json.dumps({"passed": len(results) - len(failed), "failed": len(failed),
                               "cases": [_case_dict(r) for r in results]}, indent=2))  # fmt: skip
    else:
        _render(results)
    sys.exit(1 if failed else 0)


def _case_dict(r: CaseResult) -> dict[str, Any]:
    return {"name": r.case.name, "sql": r.case.sql, "expected": r.case.expect, "actual": r.actual,
            "rules": list(r.rules), "passed": r.passed}  # fmt: skip


def _render(results: list[CaseResult]) -> None:
    from rich.table import Table

    from governed_db.cli._console import console as make_console

    table = Table("", "case", "expected", "actual", "rules")
    for r in results:
        mark = "[green]ok[/]" if r.passed else "[red]FAIL[/]"
        table.add_row(mark, r.case.name, r.case.expect, r.actual, ", ".join(r.rules))
    console = make_console()
    console.print(table)
    failed = sum(not r.passed for r in results)
    console.print(f"{len(results) - failed} passed, {failed} failed")
