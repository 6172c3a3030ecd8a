"""``governed-db check``: what the guardrails decide about one statement, without a database.

Exit codes: 0 the statement would run (allow, warn, limit); 1 it would be
refused (deny, require_approval); 2 bad input (unreadable policy, bad identity, unknown dialect).
"""

from __future__ import annotations

import json
import sys

import click

from governed_db.errors import ConfigurationError
from governed_db.identity import Identity
from governed_db.policy import evaluate
from governed_db.policy.decision import Decision


def render_decision(decision: Decision) -> None:
    from rich.table import Table

    from governed_db.cli._console import console as make_console

    console = make_console()
    colour = {"allow": "green", "warn": "yellow", "limit": "cyan"}.get(decision.action.value, "red")
    console.print(f"[bold {colour}]{decision.action.value.upper()}[/] ({decision.environment}, {decision.dialect},"
                  f" policy {decision.policy_name})")  # fmt: skip
    if decision.hits:
        table = Table("rule", "action", "reason", "next step", show_lines=False)
        for h in decision.hits:
            table.add_row(h.rule_id, h.action.value, h.reason + (" (undecidable)" if h.undecidable else ""),
                          h.remedy or "")  # fmt: skip
        console.print(table)
    else:
        console.print("no rule matched")
    if decision.row_limit is not None:
        console.print(f"rows are capped at {decision.row_limit}")


def _known_dialect(dialect: str) -> None:
    """A misspelt --dialect is bad input (exit 2), not a statement the guardrails refuse (exit 1)."""
    from sqlglot.dialects.dialect import Dialect

    from governed_db.sql.analysis import sqlglot_dialect

    try:
        Dialect.get_or_raise(sqlglot_dialect(dialect))
    except ValueError as e:
        raise ConfigurationError(f"unknown --dialect {dialect!r} ({e}); try postgres, mysql, sqlite or duckdb") from None


@click.command("check")
@click.argument("sql")
@click.option("--dialect", "-d", default="postgres", show_default=True,
              help="sqlite, postgres, mysql, mariadb, duckdb (others by sqlglot name)")  # fmt: skip
@click.option("--environment", "-e", default=None, help="default: $GOVERNED_DB_ENVIRONMENT or production")
@click.option("--identity", "-i", "identity_text", default=None,
              help="who runs it: 'agent:report-bot@alice;roles=analyst' or JSON (self-declared)")  # fmt: skip
@click.option("--policy", "-p", "policy_file", default=None, help="policy file (default: $GOVERNED_DB_POLICY or built-in)")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def check(sql: str, dialect: str, environment: str | None, identity_text: str | None, policy_file: str | None,
          fmt: str) -> None:
    """Decide about SQL (or '-' to read it from stdin) as a governed connection would.

    Exit codes: 0 it would run (allow, warn, limit); 1 it would be refused (deny, require_approval); 2 bad input.
    """
    import os

    if sql == "-":
        sql = sys.stdin.read()
    try:
        _known_dialect(dialect)
        identity = Identity.parse(identity_text) if identity_text else None
        decision = evaluate(sql, dialect=dialect, environment=environment, identity=identity,
                            policy=policy_file or os.environ.get("GOVERNED_DB_POLICY") or None)  # fmt: skip
    except ConfigurationError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    if fmt == "json":
        click.echo(json.dumps(decision.to_dict(), indent=2, sort_keys=True))
    else:
        render_decision(decision)
    sys.exit(0 if decision.allowed else 1)
