"""``governed-db audit``: verify, tail, search, who-touched, export and stats over an audit store.

Exit codes: 0 fine; 1 the chain is broken (``verify``) or an export failed; 2 bad input.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from governed_db.audit import default_store_path
from governed_db.audit import records as R
from governed_db.audit.search import Query, iso, parse_time, search, stats, who_touched
from governed_db.errors import ConfigurationError
from governed_db.semconv import DB_OPERATION_NAME, DB_QUERY_TEXT, GDB_ENVIRONMENT, GDB_TABLES

F = TypeVar("F", bound=Callable[..., Any])


def _console() -> Any:
    from governed_db.cli._console import console

    return console()


def store_option(f: F) -> F:
    return click.option("--store", "store", type=click.Path(path_type=Path), default=None,
                        help="audit store (default: $GOVERNED_DB_AUDIT or ~/.local/share/governed_db/audit.jsonl)")(f)


def format_option(*choices: str, default: str = "table") -> Callable[[F], F]:
    return click.option("--format", "fmt", type=click.Choice(choices), default=default, show_default=True,
                        help="output format")


def filter_options(f: F) -> F:
    opts = [
        click.option("--identity", help="subject (or on-behalf-of) of the identity"),
        click.option("--kind", type=click.Choice(["human", "agent", "service"]), help="identity kind"),
        click.option("--environment", help="environment, e.g. production"),
        click.option("--table", help="table read or written (schema optional)"),
        click.option("--column", help="column (masked columns, column lists, identifiers in the statement)"),
        click.option("--decision", type=click.Choice(["allow", "warn", "limit", "require_approval", "deny"])),
        click.option("--rule", help="id of a rule that fired"),
        click.option("--since", help="ISO-8601 time or a duration ago: 24h, 7d"),
        click.option("--until", help="ISO-8601 time or a duration ago"),
        click.option("--all", "all_records", is_flag=True,
                     help="also approval transitions, result follow-ups and store records, not only statements"),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _query(kw: dict[str, Any]) -> Query:
    return Query(identity=kw.get("identity"), kind=kw.get("kind"), environment=kw.get("environment"),
                 table=kw.get("table"), column=kw.get("column"), decision=kw.get("decision"), rule=kw.get("rule"),
                 since=parse_time(kw.get("since")), until=parse_time(kw.get("until")),
                 all_records=bool(kw.get("all_records")))


def bad_input(f: F) -> F:
    """ConfigurationError and missing files become a clear message and exit 2."""

    @functools.wraps(f)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except ConfigurationError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)

    return run  # type: ignore[return-value]


def _path(store: Path | None) -> Path:
    return store if store is not None else default_store_path()


#: a store's first line is a record of a few hundred bytes; reading more than this proves nothing
_FIRST_LINE_MAX = 1 << 16


def _store(store: Path | None) -> Path:
    """The store to read, refused (ConfigurationError → exit 2) when the file is not an audit store at all.

    Damage inside a store is `verify`'s business; a file whose first line is not a chained record (a log,
    a binary, someone else's JSON) is bad input, not an empty store.
    """
    from governed_db.audit.store import store_path

    path = store_path(_path(store))
    try:
        with open(path, "rb") as f:
            first = f.readline(_FIRST_LINE_MAX)
    except OSError as e:
        raise ConfigurationError(f"cannot read the audit store {str(path)!r} ({e.strerror or e})") from None
    if not first.strip():
        return path  # an empty store: nothing recorded yet
    try:
        record = json.loads(first)
    except (ValueError, RecursionError):
        record = None
    if not isinstance(record, dict) or "seq" not in record or "hash" not in record:
        raise ConfigurationError(
            f"{str(path)!r} is not a governed_db audit store (its first line is not a chained record); "
            "pass --store with the audit store's path"
        )
    return path


def _index_note(path: Path) -> None:
    """Say so when this query first has to index a large store (later queries read only what was appended)."""
    from governed_db.audit.index import index_path
    from governed_db.audit.segments import store_files
    from governed_db.audit.store import store_path

    p = store_path(path)
    if index_path(p).exists():
        return
    size = sum(f.stat().st_size for f in store_files(p))
    if size > 32 * 1024 * 1024:
        click.echo(f"building the search index for {size / 1e6:.0f} MB of records (once; `governed-db audit index` "
                   "does it ahead of time) ...", err=True)


def _key(key_file: Path | None) -> bytes | None:
    """The key from ``--key-file`` (bounded read; an empty file is bad input, never "no key"), else the variable."""
    if key_file is not None:
        from governed_db.config_files import read_config_bytes

        key = read_config_bytes(key_file, "the key file").strip()
        if not key:
            raise ConfigurationError(f"the key file {str(key_file)!r} is empty")
        return key
    return R.env_key()


#: above this many rows tables are printed as plain aligned text: rich measures every cell, which for
#: thousands of rows takes longer than the query (300 rows took 0.2-0.35 s, a third of a 1M-record search)
_RICH_ROWS = 100
_RECORD_COLUMNS = ("seq", "time (UTC)", "identity", "env", "decision", "operation", "tables", "statement", "status")


def record_rows(recs: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in recs:
        who = f"{R.subject(r)} ({R.attr(r, 'governed_db.identity.kind', '?')})" if R.is_statement(r) else ""
        rows.append([str(r.get("seq")), iso(r.get("time")), who, str(R.attr(r, GDB_ENVIRONMENT, "") or ""),
                     str(R.attr(r, "governed_db.decision", "") or ""),
                     str(R.attr(r, DB_OPERATION_NAME, r.get("name"))),
                     " ".join(R.as_list(R.attr(r, GDB_TABLES))), str(R.attr(r, DB_QUERY_TEXT, ""))[:120],
                     "outcome unknown" if r.get("outcome") == R.UNKNOWN else str(r.get("status", r.get("type")))])
    return rows


def record_table(recs: list[dict[str, Any]], title: str) -> Any:
    return _table(title, _RECORD_COLUMNS, record_rows(recs), decision_column=4)


def _table(title: str, headers: tuple[str, ...], rows: list[list[str]], *, decision_column: int | None = None) -> Any:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title, show_lines=False)
    for col in headers:
        t.add_column(col, overflow="fold")
    for row in rows:
        cells = [escape(c) for c in row]
        if decision_column is not None:
            style = {"deny": "red", "require_approval": "yellow", "warn": "yellow"}.get(row[decision_column], "")
            if style:
                cells[decision_column] = f"[{style}]{cells[decision_column]}[/]"
        t.add_row(*cells)
    return t


def _print_table(title: str, headers: tuple[str, ...], rows: list[list[str]], *,
                 decision_column: int | None = None) -> None:
    if len(rows) <= _RICH_ROWS:
        _console().print(_table(title, headers, rows, decision_column=decision_column))
        return
    widths = [min(60, max([len(h)] + [len(r[i]) for r in rows])) for i, h in enumerate(headers)]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    click.echo("\n".join(lines))  # one write: a line at a time costs more than the query for a large table


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@click.group("audit")
def audit() -> None:
    """Inspect the tamper-evident activity record."""


@audit.command("verify")
@store_option
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="file holding the checkpoint key (default: $GOVERNED_DB_AUDIT_KEY)")
@click.option("--witness", envvar="GOVERNED_DB_AUDIT_WITNESS",
              help="PostgreSQL DSN of the audit witness (default: $GOVERNED_DB_AUDIT_WITNESS)")
@click.option("--witness-table", default=None, help="table of the witness (default: governed_db_audit_witness)")
@click.option("--no-index-compare", is_flag=True,
              help="without the key, check the search index against its seal only (do not build one to compare)")
@format_option("text", "json", default="text")
@bad_input
def verify_cmd(store: Path | None, key_file: Path | None, witness: str | None, witness_table: str | None,
               no_index_compare: bool, fmt: str) -> None:
    """Check every line, hash, link, MAC, the anchor and the search index; exit 1 listing every problem."""
    from governed_db.audit.verify import verify
    from governed_db.audit.witness import DEFAULT_TABLE, Witness

    checker = Witness(witness, table=witness_table or DEFAULT_TABLE) if witness else None
    result = verify(_path(store), key=_key(key_file), witness=checker, compare_index=not no_index_compare)
    if fmt == "json":
        _emit_json(result.to_dict())
    else:
        console = _console()
        for w in result.warnings:
            console.print(f"[yellow]warning:[/] {w}")
        if result.ok:
            unknown = f", {result.outcome_unknown} outcome unknown" if result.outcome_unknown else ""
            console.print(f"[green]intact[/]: {result.records} records ({result.statements} statements{unknown}, "
                          f"{result.checkpoints} checkpoints, {result.macs_checked} MACs checked) in {result.path}")
        else:
            console.print(f"[red]BROKEN[/]: {result.problem_count} problem(s) in {result.path}; keep a copy of the "
                          "files and investigate who had write access to them.")
            for problem in result.problems[:50]:
                console.print(f"  {problem}", markup=False, highlight=False)
            if result.problem_count > 50:
                console.print(f"  ... and {result.problem_count - 50} more (--format json lists up to 1000)")
    sys.exit(0 if result.ok else 1)


def _follow(path: Path, poll: float) -> Iterator[dict[str, Any]]:
    from governed_db.audit.store import store_path

    p = store_path(path)
    pending: dict[int, dict[str, Any]] = {}
    with open(p, "rb") as f:
        f.seek(0, os.SEEK_END)
        buf = b""
        while True:
            chunk = f.read()
            if not chunk:
                time.sleep(poll)
                continue
            buf += chunk
            *lines, buf = buf.split(b"\n")
            if len(buf) > R.MAX_LINE:
                buf = b""  # an oversized line: damaged, skipped (verify reports it)
            for line in lines:
                rec = R.parse_line(line)
                if rec is not None and rec.get("type") not in (R.INTENT, R.OUTCOME):
                    yield rec
                elif rec is not None:
                    yield _followed(rec, pending)


def _followed(rec: dict[str, Any], pending: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Live view of write-ahead records: an intent shows as running, its outcome completes it."""
    if rec.get("type") == R.INTENT:
        if len(pending) > 10_000:
            pending.clear()
        pending[int(rec.get("seq", -1))] = rec
        shown = R.merged(rec, None)
        shown["status"] = shown["outcome"] = "RUNNING"
        return shown
    intent = pending.pop(rec.get("intent"), None)  # type: ignore[arg-type]
    return R.merged(intent, rec) if intent is not None else rec


@audit.command("tail")
@store_option
@click.option("-n", "lines", default=20, show_default=True, type=click.IntRange(min=0),
              help="how many recent statements")
@click.option("-f", "--follow", is_flag=True, help="keep printing new records as they are written")
@click.option("--poll", default=0.5, hidden=True)
@filter_options
@format_option("table", "json", default="table")
@bad_input
def tail_cmd(store: Path | None, lines: int, follow: bool, poll: float, fmt: str, **filters: Any) -> None:
    """The most recent statements (JSON Lines with --format json)."""
    from governed_db.audit.search import tail

    path, q = _store(store), _query(filters)
    _index_note(path)
    recent = tail(path, lines, q)
    if fmt == "json":
        for r in recent:
            click.echo(json.dumps(r, sort_keys=True))
    else:
        _print_table(f"last {len(recent)} statements in {path}", _RECORD_COLUMNS, record_rows(recent),
                     decision_column=4)
    if follow:
        try:
            for r in _follow(path, poll):
                if not q.matches(r):
                    continue
                if fmt == "json":
                    click.echo(json.dumps(r, sort_keys=True))
                else:
                    _console().print(record_table([r], ""), end="")
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass


@audit.command("search")
@store_option
@filter_options
@click.option("--limit", type=int, default=None, help="stop after this many matches")
@format_option("table", "json", "jsonl", default="table")
@bad_input
def search_cmd(store: Path | None, limit: int | None, fmt: str, **filters: Any) -> None:
    """Statements matching every given filter."""
    path = _store(store)
    _index_note(path)
    found = search(path, _query(filters), limit=limit)
    if fmt == "jsonl":
        for r in found:
            click.echo(json.dumps(r, sort_keys=True))
    elif fmt == "json":
        _emit_json(list(found))
    else:
        recs = list(found)
        _print_table(f"{len(recs)} matching statements", _RECORD_COLUMNS, record_rows(recs), decision_column=4)


@audit.command("who-touched")
@click.argument("target")
@store_option
@click.option("--since")
@click.option("--until")
@format_option("table", "json")
@bad_input
def who_touched_cmd(target: str, store: Path | None, since: str | None, until: str | None, fmt: str) -> None:
    """Who ran statements on TABLE or TABLE.COLUMN."""
    path = _store(store)
    _index_note(path)
    rows = who_touched(path, target, since=parse_time(since), until=parse_time(until))
    if fmt == "json":
        _emit_json([r.to_dict() for r in rows])
        return
    table = [[r.subject, r.kind, str(r.statements), ", ".join(f"{k} x{v}" for k, v in sorted(r.operations.items())),
              str(r.refused), iso(r.first), iso(r.last)] for r in rows]
    _print_table(f"who touched {target}", ("identity", "kind", "statements", "operations", "refused", "first",
                                            "last"), table)


@audit.command("export")
@store_option
@format_option("jsonl", "csv", "otlp", default="jsonl")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="file to write (default: stdout)")
@click.option("--endpoint", help="OTLP/HTTP endpoint for --format otlp, e.g. http://collector:4318")
@click.option("--header", "headers", multiple=True, help="extra HTTP header for OTLP, KEY=VALUE")
@click.option("--timeout", default=10.0, show_default=True, help="seconds to keep retrying an OTLP batch")
@filter_options
@bad_input
def export_cmd(store: Path | None, fmt: str, output: Path | None, endpoint: str | None,
               headers: tuple[str, ...], timeout: float, **filters: Any) -> None:
    """Export records: jsonl (one record per line, hashes kept), csv, or OTLP to a Collector."""
    from governed_db.audit import export as X
    from governed_db.audit.store import read_raw, read_records

    path = _store(store)
    filtered = any(v not in (None, False) for v in filters.values())
    # an unfiltered JSONL export keeps every record (checkpoints too), so the copy verifies on its own
    if filtered or fmt == "csv":
        recs = search(path, _query(filters))
    elif fmt == "otlp":
        recs = read_records(path)  # statements as one span each (intent and outcome merged)
    else:
        recs = read_raw(path)
    if fmt == "otlp":
        if not endpoint:
            raise ConfigurationError("--format otlp needs --endpoint URL (e.g. http://127.0.0.1:4318)")
        bad = [h for h in headers if "=" not in h or not h.split("=", 1)[0].strip()]
        if bad:
            raise ConfigurationError(f"--header must be KEY=VALUE, got {bad[0]!r}")
        hdrs = dict(h.split("=", 1) for h in headers)
        import logging

        # the exporter logs each retry and failure on its own lines; the command says it once, in one line
        quiet = logging.getLogger("opentelemetry.exporter.otlp")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            n = X.export_otlp(recs, endpoint, headers=hdrs, timeout=timeout)
        except OSError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        finally:
            quiet.setLevel(level)
        click.echo(f"sent {n} spans to {endpoint}", err=True)
        return
    try:
        out = X.open_output(output)
    except OSError as e:
        raise ConfigurationError(f"cannot write the export to {str(output)!r} ({e.strerror or e})") from None
    try:
        n = X.write_jsonl(recs, out) if fmt == "jsonl" else X.write_csv(recs, out)
    finally:
        if out is not sys.stdout:
            out.close()
    if output is not None:
        click.echo(f"wrote {n} records to {output}", err=True)


@audit.command("index")
@store_option
@click.option("--rebuild", is_flag=True, help="drop the index and build it again from the store")
@bad_input
def index_cmd(store: Path | None, rebuild: bool) -> None:
    """Build or bring up to date the search index (<store>.index.sqlite); search does this by itself too."""
    import sqlite3

    from governed_db.audit.index import index_path, open_index

    started = time.monotonic()
    try:
        idx = open_index(_path(store), rebuild=rebuild)
        try:
            added = idx.added
            total = idx.statements()
        finally:
            idx.close()
    except (sqlite3.Error, OSError) as e:
        click.echo(f"error: cannot write the index next to the store: {e}", err=True)
        sys.exit(1)
    click.echo(f"indexed {added} new statement(s), {total} in all, in {time.monotonic() - started:.1f} s: "
               f"{index_path(Path(idx.store))}")


@audit.command("stats")
@store_option
@click.option("--since")
@click.option("--until")
@format_option("table", "json")
@bad_input
def stats_cmd(store: Path | None, since: str | None, until: str | None, fmt: str) -> None:
    """Per identity: statements, refusals, approvals, masked reads."""
    from governed_db.audit.store import read_records

    rows = stats(read_records(_store(store)), since=parse_time(since), until=parse_time(until))
    if fmt == "json":
        _emit_json([r.to_dict() for r in rows])
        return
    from rich.table import Table

    t = Table(title="activity by identity")
    for col in ("identity", "kind", "statements", "refusals", "approvals", "masked reads", "masked cells"):
        t.add_column(col, justify="right" if col not in ("identity", "kind") else "left")
    for r in rows:
        t.add_row(r.subject, r.kind, str(r.statements), str(r.refusals), str(r.approvals), str(r.masked_reads),
                  str(r.masked_cells))
    _console().print(t)
