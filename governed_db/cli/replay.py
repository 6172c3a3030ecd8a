"""``governed-db policy replay``: what a new policy would have done with the recorded activity.

Exit codes: 0 replayed (whatever it found); 2 bad input (no store, unreadable policy).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from governed_db.audit import default_store_path
from governed_db.audit.replay import replay as run_replay
from governed_db.audit.search import parse_time
from governed_db.errors import ConfigurationError


@click.command("replay")
@click.option("--store", type=click.Path(path_type=Path), default=None,
              help="audit store (default: $GOVERNED_DB_AUDIT or ~/.local/share/governed_db/audit.jsonl)")
@click.option("--policy", "policy_file", required=True, type=click.Path(path_type=Path),
              help="the new policy file to try")
@click.option("--since", help="ISO-8601 time or a duration ago (7d)")
@click.option("--until", help="ISO-8601 time or a duration ago")
@click.option("--environment", help="evaluate as if every statement ran in this environment")
@click.option("--show", default=30, show_default=True, help="how many changed statements to list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def replay(store: Path | None, policy_file: Path, since: str | None, until: str | None, environment: str | None,
           show: int, fmt: str) -> None:
    """Show what NEW policy would have refused, warned about or sent for approval in the recorded activity."""
    try:
        result = run_replay(store or default_store_path(), policy_file, since=parse_time(since),
                            until=parse_time(until), environment=environment)
    except ConfigurationError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
        return
    from rich.table import Table

    from governed_db.cli._console import console as make_console

    console = make_console()
    console.print(f"Replayed [bold]{result.replayed}[/] of {result.statements} recorded statements against "
                  f"{policy_file} ({result.not_replayable} not replayable).")
    console.print(f"Would newly refuse [red]{result.newly_refused}[/], need approval for "
                  f"[yellow]{result.newly_approval}[/], warn about [yellow]{result.newly_warned}[/]; "
                  f"would let [green]{result.relaxed}[/] previously stopped statements run.")
    summary = Table(title="decisions under the new policy")
    summary.add_column("decision")
    summary.add_column("statements", justify="right")
    for action, n in sorted(result.after.items()):
        summary.add_row(action, str(n))
    console.print(summary)
    if result.changes:
        t = Table(title=f"changed decisions (first {min(show, len(result.changes))})")
        for col in ("seq", "identity", "env", "before", "after", "rules", "statement"):
            t.add_column(col, overflow="fold")
        for c in result.changes[:show]:
            t.add_row(str(c.seq), f"{c.identity} ({c.kind})", c.environment, c.before, c.after, ", ".join(c.rules),
                      c.statement[:100])
        console.print(t)
