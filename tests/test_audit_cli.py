"""``governed-db audit``: verify, tail, search, who-touched, export (jsonl, csv, OTLP) and stats."""

from __future__ import annotations

import csv
import io
import json
import select
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import governed_db
from governed_db import Identity
from governed_db.audit import AuditStore, read_records, verify
from governed_db.cli.audit import audit
from governed_db.errors import GuardrailViolation
from governed_db.identity import acting_as
from governed_db.policy import evaluate

DROP_RULE = evaluate("DROP TABLE users", dialect="sqlite", environment="production").rules[0]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with statements from a human and an agent, one refusal, and a masked read."""
    path = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE users (id INTEGER, email TEXT)")
    conn = governed_db.wrap(raw, audit=path, environment="production", identity=Identity("alice"))
    conn.execute("SELECT email FROM users WHERE id = 0").fetchall()
    conn.execute("INSERT INTO users VALUES (1, 'a@example.com')")
    with acting_as(Identity("report-bot", kind="agent", on_behalf_of="alice")):
        conn.execute("SELECT email FROM users").fetchall()
        conn.execute("SELECT id FROM users").fetchall()
        with pytest.raises(GuardrailViolation):
            conn.execute("DROP TABLE users")
    # a masked read as the masking engine records it (its attribute names)
    tracer = governed_db.telemetry.tracer_for(None, governed_db.audit.audit_processor(path))
    tracer.start_span("SELECT users", attributes={
        "governed_db.decision": "allow", "governed_db.identity.subject": "report-bot",
        "governed_db.identity.kind": "agent", "governed_db.environment": "production",
        "governed_db.tables": ["users"], "governed_db.masked_columns": ["email"],
        "db.query.text": "SELECT * FROM users", "db.operation.name": "SELECT",
    }).end()
    return path


def _run(*args: str) -> Any:
    return CliRunner().invoke(audit, [str(a) for a in args], catch_exceptions=False)


def test_verify_exit_codes(store: Path, tmp_path: Path) -> None:
    """verify exits 0 when intact, 1 naming the first bad line when edited, 2 when there is no store."""
    ok = _run("verify", "--store", store)
    assert ok.exit_code == 0 and "intact" in ok.output
    lines = store.read_bytes().splitlines(keepends=True)
    edited = next(i for i, ln in enumerate(lines) if b"INSERT" in ln)
    lines[edited] = lines[edited].replace(b"INSERT", b"UPSERT")
    store.write_bytes(b"".join(lines))
    bad = _run("verify", "--store", store, "--format", "json")
    assert bad.exit_code == 1
    data = json.loads(bad.output)
    assert data["ok"] is False and data["first_bad_line"] == edited + 1
    assert _run("verify", "--store", tmp_path / "missing.jsonl").exit_code == 2


def test_verify_uses_key_file(tmp_path: Path) -> None:
    """--key-file checks the checkpoint MACs; a wrong key fails."""
    path = tmp_path / "k.jsonl"
    s = AuditStore(path, key="right", fsync_interval=None)
    s.append({"type": "span"})
    s.close()
    (tmp_path / "key").write_text("right\n")
    (tmp_path / "wrong").write_text("wrong\n")
    out = _run("verify", "--store", path, "--key-file", tmp_path / "key", "--format", "json")
    assert out.exit_code == 0 and json.loads(out.output)["macs_checked"] == 2  # genesis and the closing checkpoint
    assert _run("verify", "--store", path, "--key-file", tmp_path / "wrong").exit_code == 1


SEARCHES: list[tuple[list[str], list[str]]] = [
    (["--identity", "report-bot"], ["SELECT", "SELECT", "DROP TABLE", "SELECT"]),
    (["--identity", "alice"], ["SELECT", "INSERT", "SELECT", "SELECT", "DROP TABLE"]),  # incl. on behalf of
    (["--kind", "human"], ["SELECT", "INSERT"]),
    (["--decision", "deny"], ["DROP TABLE"]),
    (["--rule", DROP_RULE], ["DROP TABLE"]),
    (["--environment", "staging"], []),
    (["--table", "main.users", "--kind", "agent"], ["SELECT", "SELECT", "DROP TABLE", "SELECT"]),
    (["--column", "email", "--kind", "agent"], ["SELECT", "DROP TABLE", "SELECT"]),  # DROP takes every column
    (["--since", "1h"], ["SELECT", "INSERT", "SELECT", "SELECT", "DROP TABLE", "SELECT"]),
    (["--until", "2000-01-01"], []),
]


@pytest.mark.parametrize(("args", "ops"), SEARCHES, ids=[" ".join(a) for a, _ in SEARCHES])
def test_search_filters(store: Path, args: list[str], ops: list[str]) -> None:
    """Each search filter selects exactly the matching statements."""
    out = _run("search", "--store", store, "--format", "json", *args)
    assert out.exit_code == 0, out.output
    assert [r["attrs"]["db.operation.name"] for r in json.loads(out.output)] == ops


def test_search_all_includes_approval_transitions(store: Path) -> None:
    """--all adds approval transitions and result follow-ups to the statements."""
    tracer = governed_db.telemetry.tracer_for(None, governed_db.audit.audit_processor(store))
    tracer.start_span("governed_db.approval.approved", attributes={
        "governed_db.identity.subject": "report-bot", "governed_db.approval.reviewer": "carol"}).end()
    plain = json.loads(_run("search", "--store", store, "--identity", "report-bot", "--format", "json").output)
    full = json.loads(_run("search", "--store", store, "--identity", "report-bot", "--all", "--format", "json").output)
    assert "governed_db.approval.approved" not in [r["name"] for r in plain]
    assert "governed_db.approval.approved" in [r["name"] for r in full]


def test_search_bad_time_is_bad_input(store: Path) -> None:
    """An unreadable --since exits 2 with a hint."""
    out = _run("search", "--store", store, "--since", "yesterday-ish")
    assert out.exit_code == 2


def test_who_touched_table_and_column(store: Path) -> None:
    """who-touched lists identities per table, and narrows to a column."""
    rows = json.loads(_run("who-touched", "users", "--store", store, "--format", "json").output)
    assert {(r["identity"], r["statements"]) for r in rows} == {("alice", 2), ("report-bot", 4)}
    bot = next(r for r in rows if r["identity"] == "report-bot")
    assert bot["refused"] == 1 and bot["operations"]["SELECT"] == 3
    cols = json.loads(_run("who-touched", "users.email", "--store", store, "--format", "json").output)
    # alice: SELECT email, INSERT without a column list; report-bot: SELECT email, DROP (refused), SELECT *
    assert {r["identity"]: r["statements"] for r in cols} == {"alice": 2, "report-bot": 3}
    ids = json.loads(_run("who-touched", "users.id", "--store", store, "--format", "json").output)
    assert {r["identity"]: r["statements"] for r in ids} == {"alice": 2, "report-bot": 3}


def test_stats_per_identity(store: Path) -> None:
    """stats counts statements, refusals and masked reads per identity, as JSON and as a table."""
    rows = {r["subject"]: r for r in json.loads(_run("stats", "--store", store, "--format", "json").output)}
    assert rows["report-bot"]["statements"] == 4 and rows["report-bot"]["refusals"] == 1
    # the masking engine masks email by default: both SELECT email reads count, plus the recorded masked read
    assert rows["report-bot"]["masked_reads"] == 2 and rows["report-bot"]["masked_cells"] == 1
    assert rows["alice"] == {"subject": "alice", "kind": "human", "statements": 2, "refusals": 0, "approvals": 0,
                             "masked_reads": 1, "masked_cells": 0}
    table = _run("stats", "--store", store)
    assert "report-bot" in table.output and "refusals" in table.output


def test_export_jsonl_is_one_verifiable_record_per_line(store: Path, tmp_path: Path) -> None:
    """An unfiltered JSONL export has one record per line and verifies as a store of its own."""
    out = tmp_path / "copy.jsonl"
    res = _run("export", "--store", store, "--format", "jsonl", "-o", out)
    assert res.exit_code == 0
    lines = out.read_text().splitlines()
    assert len(lines) == len(store.read_text().splitlines())
    assert all(json.loads(x)["hash"] for x in lines)
    result = verify(out)
    assert result.ok, result.problems


def test_export_csv(store: Path) -> None:
    """CSV export has a header and one row per statement, with identity and decision columns."""
    res = _run("export", "--store", store, "--format", "csv", "--decision", "deny")
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert len(rows) == 1
    assert rows[0]["identity"] == "report-bot" and rows[0]["rules"] == DROP_RULE
    assert rows[0]["statement"] == "DROP TABLE users"


def test_export_csv_neutralises_formulas(tmp_path: Path) -> None:
    """A recorded identity that looks like a spreadsheet formula is exported as text."""
    path = tmp_path / "f.jsonl"
    s = AuditStore(path, fsync_interval=None)
    s.append({"v": 1, "type": "span", "name": "q", "attrs": {
        "governed_db.decision": "allow", "governed_db.identity.subject": "=HYPERLINK(\"http://x\")"}})
    s.close()
    res = _run("export", "--store", path, "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(res.output)))
    assert row["identity"] == "'=HYPERLINK(\"http://x\")"


class _Collector(BaseHTTPRequestHandler):
    received: list[Any] = []

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        body = self.rfile.read(int(self.headers["Content-Length"]))
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        type(self).received.append((self.path, self.headers.get("Content-Type"), self.headers.get("x-tenant"), req))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    _Collector.received = []
    server = HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_export_otlp_to_a_collector(store: Path, collector: str) -> None:
    """OTLP export POSTs protobuf spans with the recorded ids, attributes and chain position."""
    res = _run("export", "--store", store, "--format", "otlp", "--endpoint", collector, "--header", "x-tenant=t1")
    assert res.exit_code == 0, res.output
    spans = []
    for path, ctype, tenant, req in _Collector.received:
        assert path == "/v1/traces" and ctype == "application/x-protobuf" and tenant == "t1"
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                assert ss.scope.name == "governed_db"
                spans.extend(ss.spans)
    recorded = [r for r in read_records(store) if r["type"] == "span"]  # statements: intent + outcome
    assert len(spans) == len(recorded)
    by_id = {s.span_id.hex(): s for s in spans}
    drop = next(r for r in recorded if r["attrs"].get("governed_db.decision") == "deny")
    sent = by_id[drop["span_id"]]
    assert sent.trace_id.hex() == drop["trace_id"]
    attrs = {a.key: a.value for a in sent.attributes}
    assert attrs["governed_db.decision"].string_value == "deny"
    assert attrs["governed_db.audit.hash"].string_value == drop["hash"]
    assert sent.start_time_unix_nano == drop["time"]


def test_export_otlp_unreachable_endpoint_fails(store: Path) -> None:
    """An endpoint nobody listens on makes the export exit 1 with a message."""
    res = CliRunner().invoke(audit, ["export", "--store", str(store), "--format", "otlp",
                                     "--endpoint", "http://127.0.0.1:9", "--timeout", "1"])
    assert res.exit_code == 1


def test_tail_and_follow(store: Path) -> None:
    """tail prints the last statements; tail -f keeps printing records appended later."""
    out = _run("tail", "--store", store, "-n", "2", "--format", "json")
    assert [json.loads(x)["attrs"]["db.operation.name"] for x in out.output.splitlines()] == ["DROP TABLE", "SELECT"]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from governed_db.cli import main; main()", "audit", "tail", "--store", str(store),
         "-n", "0", "-f", "--poll", "0.05", "--format", "json"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        s = AuditStore(store, fsync_interval=None)
        assert proc.stdout is not None
        # append until the follower prints one: it may not have reached the end of the file yet (slow start)
        for _ in range(120):
            s.append({"v": 1, "type": "span", "name": "later", "attrs": {
                "governed_db.decision": "allow", "db.operation.name": "UPDATE"}})
            if select.select([proc.stdout], [], [], 0.5)[0]:
                break
        line = proc.stdout.readline()
        assert json.loads(line)["attrs"]["db.operation.name"] == "UPDATE"
    finally:
        proc.kill()
        proc.wait()


def test_commands_are_mounted_on_governed_db(store: Path) -> None:
    """`governed-db audit ...` and `governed-db policy replay` resolve through the lazy top-level group."""
    from governed_db.cli import main

    res = CliRunner().invoke(main, ["audit", "verify", "--store", str(store)])
    assert res.exit_code == 0 and "intact" in res.output
    helptext = CliRunner().invoke(main, ["policy", "--help"])
    assert "replay" in helptext.output


def test_documented_commands_and_options_exist() -> None:
    """Every `governed-db audit CMD --option` line in docs/audit.md names a real command and option."""
    import re

    doc = (Path(__file__).resolve().parent.parent / "docs" / "audit.md").read_text()
    lines = re.findall(r"^governed-db audit (\S+)(.*)$", doc, re.M)
    assert len(lines) >= 6
    for name, rest in lines:
        cmd = audit.commands.get(name)
        assert cmd is not None, name
        known = {o for p in cmd.params for o in getattr(p, "opts", [])}
        for opt in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", rest):
            assert opt in known, f"audit {name}: {opt} is documented but not an option"


@pytest.mark.parametrize("content", [b"garbage {{{ not json\n", b"\x00\xff\xfe binary", b'{"a": 1}\n',
                                     b"[" * 100_000 + b"\n"])
@pytest.mark.parametrize("verb", ["tail", "search", "stats", "who-touched"])
def test_reading_verbs_refuse_a_file_that_is_not_a_store(tmp_path: Path, content: bytes, verb: str) -> None:
    """tail/search/stats/who-touched on garbage exit 2 saying it is not an audit store (not 0 with no rows)."""
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(content)
    args = [verb, "--store", str(garbage)] + (["users"] if verb == "who-touched" else [])
    result = _run(*args)
    assert result.exit_code == 2
    assert "is not a governed_db audit store" in result.output


def test_long_rows_are_not_wrapped_when_piped(store: Path) -> None:
    """Piped output keeps each record on one line (no 80-column wrapping of the statement column)."""
    result = _run("tail", "--store", store)
    line = next(ln for ln in result.output.splitlines() if "SELECT email FROM users WHERE id = ?" in ln)
    assert "alice (human)" in line and "production" in line


@pytest.mark.parametrize(("statements", "boxed"), [(100, True), (101, False)])
def test_search_tables_past_100_rows_are_plain_text(tmp_path: Path, statements: int, boxed: bool) -> None:
    """rich measures every cell: 300 rows took a third of a 1M-record search's second (issue 15), so past 100
    rows the table is plain aligned text; every row is still there either way."""
    path = tmp_path / "audit.jsonl"
    store = AuditStore(path, fsync_interval=None, checkpoint_interval=None, idle_close=None)
    for i in range(statements):
        store.append({"v": 2, "type": "span", "name": "SELECT t", "time": i, "attrs": {
            "governed_db.identity.subject": "bob", "governed_db.decision": "allow",
            "db.query.text": f"SELECT {i} FROM t", "db.operation.name": "SELECT"}})
    store.close()
    out = _run("search", "--store", path, "--identity", "bob").output
    assert f"{statements} matching statements" in out
    assert ("│" in out) is boxed
    assert all(f"SELECT {i} FROM t" in out for i in range(statements))
