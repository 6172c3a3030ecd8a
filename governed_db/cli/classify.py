"""``governed-db classify TARGET``: label sensitive columns and write a reviewable catalog.

TARGET is a SQLite or duckdb file, or a database URL (``postgresql://``,
``postgresql+psycopg://``, ``mysql+pymysql://``, ``sqlite:///``, ``duckdb:///``:
the forms SQLAlchemy takes). Progress goes to stderr. Exit
codes: 0 catalog written; 1 sensitive columns were found and ``--fail-on-found``
was given; 2 bad input (unknown target or table, unreadable database).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from governed_db.errors import ConfigurationError


@click.command("classify")
@click.argument("target")
@click.option(
    "-o",
    "--output",
    default="governed-db-catalog.yaml",
    show_default=True,
    help="Catalog file to write (.yaml or .json).",
)
@click.option(
    "--sample-rows",
    default=1000,
    show_default=True,
    type=click.IntRange(min=0),
    help="Rows sampled per table for value-based detection (0: names and types only).",
)
@click.option("--table", "tables", multiple=True, help="Only these tables (repeatable).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Summary format on stdout.",
)
@click.option("--fail-on-found", is_flag=True, help="Exit 1 when any sensitive column is found (for CI).")
def classify(
    target: str, output: str, sample_rows: int, tables: tuple[str, ...], fmt: str, fail_on_found: bool
) -> None:
    """Scan TARGET's schema, label sensitive columns, write an editable catalog and print a summary."""
    from governed_db.masking.scan import connect

    try:
        conn, dialect = connect(target)
    except ConfigurationError as e:
        raise click.UsageError(str(e)) from None
    except Exception as e:
        click.echo(f"error: cannot open {target!r}: {type(e).__name__}: {e}", err=True)
        sys.exit(2)
    started = time.perf_counter()
    try:
        catalog = _with_progress(conn, dialect, sample_rows, tables)
    except ConfigurationError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    finally:
        conn.close()
    try:
        catalog.save(output)
    except ConfigurationError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:
        click.echo(f"error: cannot write the catalog to {output!r} ({e.strerror or e})", err=True)
        sys.exit(2)
    elapsed = time.perf_counter() - started
    found = [(t, c, cls) for t, c, cls in catalog if cls.label]
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "catalog": output,
                    "seconds": round(elapsed, 3),
                    "tables": len(catalog.tables),
                    "sensitive": [
                        {
                            "table": t,
                            "column": c,
                            "label": cls.label,
                            "confidence": cls.confidence,
                            "evidence": cls.evidence,
                        }
                        for t, c, cls in found
                    ],
                },
                indent=2,
            )
        )
    else:
        _summary(found, output, len(catalog.tables), elapsed)
    sys.exit(1 if fail_on_found and found else 0)


def _with_progress(conn: Any, dialect: str, sample_rows: int, tables: tuple[str, ...]) -> Any:
    """Classify with progress on stderr: a live bar on a terminal, one line per table when piped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from governed_db.cli._console import console
    from governed_db.masking.scan import classify_database

    err = console(stderr=True)
    if not err.is_terminal:  # piped or in CI: a live bar renders nothing, so say what is happening line by line
        started = time.perf_counter()

        def on_line(name: str, i: int, n: int) -> None:
            click.echo(f"classifying {i + 1}/{n} {name} ({time.perf_counter() - started:.1f}s)", err=True)

        return classify_database(conn, dialect, sample_rows=sample_rows, tables=tables or None, on_table=on_line)
    with Progress(
        TextColumn("[bold]classifying[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=None)

        def on_table(name: str, i: int, n: int) -> None:
            progress.update(task, description=name, completed=i, total=n)

        catalog = classify_database(
            conn, dialect, sample_rows=sample_rows, tables=tables or None, on_table=on_table
        )
        progress.update(task, completed=len(catalog.tables))
    return catalog


def _summary(found: list[Any], output: str, n_tables: int, elapsed: float) -> None:
    from rich.table import Table

    from governed_db.cli._console import console as make_console

    console = make_console()
    table = Table(title=f"Sensitive columns ({len(found)} in {n_tables} tables, {elapsed:.1f}s)")
    for header in ("table", "column", "label", "confidence", "evidence"):
        table.add_column(header)
    for t, c, cls in found:
        evidence = "; ".join(str(v) for v in cls.evidence.values())
        table.add_row(t, c, cls.label, f"{cls.confidence:.2f}", evidence)
    console.print(table)
    console.print(
        f"catalog written to [bold]{output}[/]: review it, edit labels, commit it, and pass "
        f"masking={{'catalog': '{output}'}} to governed_db.wrap()"
    )
