"""``governed-db report``: compliance evidence (SOC 2 CC6.1, CC6.3, CC7.2, CC8.1) from the audit store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from governed_db.audit import default_store_path
from governed_db.audit.report import build_report
from governed_db.audit.report_render import render
from governed_db.audit.search import parse_time
from governed_db.errors import ConfigurationError


@click.command("report")
@click.option("--store", type=click.Path(path_type=Path), default=None,
              help="audit store (default: $GOVERNED_DB_AUDIT or ~/.local/share/governed_db/audit.jsonl)")
@click.option("--since", help="start of the period: ISO-8601 or a duration ago (30d)")
@click.option("--until", help="end of the period: ISO-8601 or a duration ago")
@click.option("--format", "fmt", type=click.Choice(["html", "md", "json"]), default="html", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="file to write (default: stdout)")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="checkpoint key for the verification section (default: $GOVERNED_DB_AUDIT_KEY)")
def report(store: Path | None, since: str | None, until: str | None, fmt: str, output: Path | None,
           key_file: Path | None) -> None:
    """Write compliance evidence for a period. Exit 1 when the record's chain is broken."""
    from governed_db.cli.audit import _key

    try:
        key = _key(key_file)
    except ConfigurationError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    try:
        rep = build_report(store or default_store_path(), since=parse_time(since), until=parse_time(until), key=key)
    except ConfigurationError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    if fmt == "json":
        import json

        text = json.dumps(rep.to_dict(), indent=2, sort_keys=True, default=str) + "\n"
    else:
        text = render(rep, fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        from governed_db.config_files import open_output_file

        try:
            with open_output_file(output, "the report") as f:  # a FIFO or device: refused, never waited on
                f.write(text)
        except ConfigurationError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except OSError as e:
            click.echo(f"error: cannot write the report to {str(output)!r} ({e.strerror or e})", err=True)
            sys.exit(2)
        click.echo(f"wrote {fmt} report to {output}", err=True)
    sys.exit(0 if rep.verification.ok else 1)
