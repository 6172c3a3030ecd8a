"""``governed-db demo``: render :func:`governed_db.demo.run_demo` in the terminal."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from governed_db.semconv import (
    DB_OPERATION_NAME,
    GDB_APPROVAL_REQUEST_ID,
    GDB_APPROVAL_REVIEWER,
    GDB_APPROVAL_REVIEWER_KIND,
    GDB_APPROVAL_TRANSITION,
    GDB_IDENTITY_KIND,
    GDB_IDENTITY_SUBJECT,
    GDB_MASKED_COLUMNS,
    GDB_REFUSED,
)

_STYLE = {"rows": "green", "ok": "green", "refused": "red", "approval": "yellow"}
_LABEL = {"rows": "ALLOWED", "ok": "ALLOWED", "refused": "REFUSED", "approval": "NEEDS APPROVAL"}


@click.command()
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to create the demo database and stores (default: a new temporary directory).")
@click.option("--format", "fmt", type=click.Choice(["rich", "json"]), default="rich", show_default=True)
def demo(workdir: Path | None, fmt: str) -> None:
    """Play an AI agent and a human against an embedded SQLite shop database with PII."""
    from governed_db.demo import run_demo

    started = time.perf_counter()
    result = run_demo(workdir or Path(tempfile.mkdtemp(prefix="governed-db-demo-")))
    elapsed = time.perf_counter() - started
    if fmt == "json":
        click.echo(json.dumps({
            "workdir": str(result.workdir),
            "scenes": [{"title": s.title, "outcome": s.outcome, "rules": list(s.rules), "rows": s.rows,
                        "columns": list(s.columns), "message": s.message, "request_id": s.request_id}
                       for s in result.scenes],
            "records": len(result.records),
            "chain_ok": result.chain_ok,
        }, default=str, indent=2))
        raise SystemExit(0 if result.chain_ok else 1)

    console = Console()
    console.rule("[bold]governed_db demo[/] — an AI agent and a human against a shop database with PII")
    console.print(f"Database, audit trail and approvals live in [cyan]{result.workdir}[/]\n")
    for scene in result.scenes:
        who = f"{scene.who.kind} [bold]{scene.who.subject}[/]"
        if scene.who.on_behalf_of:
            who += f" for {scene.who.on_behalf_of}"
        parts: list[Any] = [Text.from_markup(who), Syntax(scene.sql, "sql", word_wrap=True, background_color="default")]
        if scene.outcome == "rows":
            table = Table(*scene.columns, show_header=True, header_style="bold")
            for row in scene.rows:
                table.add_row(*("NULL" if v is None else str(v) for v in row))
            parts.append(table)
        elif scene.outcome == "ok":
            parts.append(Text(scene.message, style="green"))
        else:
            parts.append(Text(scene.message, style=_STYLE[scene.outcome]))
        style = _STYLE[scene.outcome]
        console.print(Panel(Group(*parts), title=f"[{style}]{_LABEL[scene.outcome]}[/] {scene.title}",
                            title_align="left", border_style=style))

    table = Table(title="Activity record (OpenTelemetry spans, hash-chained)", title_justify="left")
    for col in ("time", "identity", "kind", "operation", "decision", "rules", "masked columns"):
        table.add_column(col)
    for rec in result.records:
        attrs = rec.get("attrs", {})
        when = time.strftime("%H:%M:%S", time.localtime(int(rec.get("time", 0)) / 1e9))
        request = attrs.get(GDB_APPROVAL_REQUEST_ID)
        if "governed_db.decision" in attrs:
            decision = str(attrs["governed_db.decision"])
            if request and not attrs.get(GDB_REFUSED):
                decision = f"approved ({request})"
            table.add_row(
                when,
                str(attrs.get(GDB_IDENTITY_SUBJECT, "")),
                str(attrs.get(GDB_IDENTITY_KIND, "")),
                str(attrs.get(DB_OPERATION_NAME, "")),
                decision,
                ", ".join(attrs.get("governed_db.rules", []) or []),
                ", ".join(attrs.get(GDB_MASKED_COLUMNS, []) or []),
            )
        elif attrs.get(GDB_APPROVAL_TRANSITION) in ("requested", "approved", "denied", "revoked"):
            transition = attrs[GDB_APPROVAL_TRANSITION]
            actor = attrs.get(GDB_APPROVAL_REVIEWER) or attrs.get(GDB_IDENTITY_SUBJECT, "")
            kind = attrs.get(GDB_APPROVAL_REVIEWER_KIND) or attrs.get(GDB_IDENTITY_KIND, "")
            table.add_row(when, str(actor), str(kind), "APPROVAL", f"{transition} ({request})", "", "",
                          style="yellow")
    console.print(table)
    verdict = "[green]intact[/]" if result.chain_ok else "[red]BROKEN[/]"
    console.print(f"Audit chain: {verdict} — {result.chain_summary}")
    console.print(f"\nTry: [bold]governed-db audit verify --store {result.audit}[/]  ·  "
                  f"[bold]governed-db audit search --store {result.audit} --decision deny[/]")
    console.print(f"[dim]demo finished in {elapsed:.1f} s[/]")
    raise SystemExit(0 if result.chain_ok else 1)
