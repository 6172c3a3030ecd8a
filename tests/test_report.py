"""``governed-db report``: SOC 2 evidence as Markdown and HTML, the HTML checked in a real headless browser."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import governed_db
from governed_db import Identity
from governed_db.audit import audit_processor
from governed_db.audit.report import build_report
from governed_db.audit.report_render import render
from governed_db.cli.report import report
from governed_db.errors import GuardrailViolation
from governed_db.identity import acting_as
from governed_db.telemetry import tracer_for

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Activity from a human, an agent and a service: reads, a change, a refusal, a masked read, an approval."""
    path = tmp_path / "audit.jsonl"
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE customers (id INTEGER, email TEXT)")
    conn = governed_db.wrap(raw, audit=path, environment="production", identity=Identity("alice"))
    conn.execute("SELECT id FROM customers").fetchall()
    with acting_as(Identity("report-bot", kind="agent", on_behalf_of="alice")):
        for _ in range(3):
            conn.execute("SELECT id FROM customers").fetchall()
        with pytest.raises(GuardrailViolation):
            conn.execute("DROP TABLE customers")
    with acting_as(Identity("etl", kind="service")):
        conn.execute("INSERT INTO customers VALUES (1, 'x@example.com')")
    tracer = tracer_for(None, audit_processor(path))
    tracer.start_span("SELECT customers", attributes={
        "governed_db.decision": "allow", "governed_db.identity.subject": "report-bot",
        "governed_db.identity.kind": "agent", "governed_db.environment": "production",
        "governed_db.masked_columns": ["email"], "db.query.text": "SELECT * FROM customers",
    }).end()
    tracer.start_span("ALTER TABLE customers", attributes={  # a change that waited for approval
        "governed_db.decision": "require_approval", "governed_db.identity.subject": "alice",
        "governed_db.identity.kind": "human", "governed_db.environment": "production", "governed_db.refused": True,
        "governed_db.approval.request_id": "req-1", "db.operation.name": "ALTER TABLE",
        "governed_db.statement.kinds": ["ddl"], "db.query.text": "ALTER TABLE customers ADD COLUMN x INTEGER",
    }).end()
    tracer.start_span("governed_db.approval.approved", attributes={
        "governed_db.identity.subject": "report-bot", "governed_db.approval.reviewer": "carol",
        "governed_db.environment": "production",
    }).end()
    return path


def test_report_content_maps_to_soc2(store: Path) -> None:
    """The report gathers access by identity and kind, refusals, approvals with reviewers, masked reads, changes."""
    rep = build_report(store)
    assert rep.verification.ok
    assert rep.totals["statements"] == 8 and rep.totals["identities"] == 3
    assert rep.by_kind == {"human": 2, "agent": 5, "service": 1}
    assert rep.by_provenance == {"self-declared": 8}
    assert [e.operation for e in rep.refused] == ["DROP TABLE", "ALTER TABLE"]
    assert any(e.operation == "ALTER TABLE" and e.extra == "held for approval req-1" for e in rep.approvals)
    assert any(e.extra.startswith("approved") and e.extra.endswith("by carol") for e in rep.approvals)
    assert rep.sensitive == {"report-bot": {"email": 1}}
    assert [e.operation for e in rep.changes] == ["DROP TABLE", "ALTER TABLE"]
    assert set(rep.criteria) == {"CC6.1", "CC6.3", "CC7.2", "CC8.1"}


def test_markdown_report(store: Path) -> None:
    """--format md writes the SOC 2 sections with the refused statement and the chain result."""
    res = CliRunner().invoke(report, ["--store", str(store), "--format", "md"])
    assert res.exit_code == 0, res.output
    for text in ("CC6.1", "CC6.3", "CC7.2", "CC8.1", "DROP TABLE customers", "Chain intact", "report-bot"):
        assert text in res.output


def test_since_limits_the_period(store: Path) -> None:
    """--since in the future leaves no statements in the period."""
    rep = build_report(store, since=2**62)
    assert rep.totals["statements"] == 0 and rep.refused == []


def test_broken_chain_is_reported_and_exits_1(store: Path, tmp_path: Path) -> None:
    """A tampered store yields a report that says BROKEN, and exit code 1."""
    lines = store.read_bytes().splitlines(keepends=True)
    del lines[2]
    store.write_bytes(b"".join(lines))
    out = tmp_path / "r.md"
    res = CliRunner().invoke(report, ["--store", str(store), "--format", "md", "-o", str(out)])
    assert res.exit_code == 1
    assert "Chain BROKEN" in out.read_text()


def test_html_is_self_contained(store: Path) -> None:
    """The HTML fetches nothing: no scripts, no external stylesheets, images or fonts; user text is escaped."""
    html = render(build_report(store), "html")
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    assert html.count("<svg") >= 6


def test_html_escapes_recorded_text(tmp_path: Path) -> None:
    """Text from the record (identities, statements) cannot inject markup into the report."""
    path = tmp_path / "x.jsonl"
    tracer = tracer_for(None, audit_processor(path))
    tracer.start_span("q", attributes={"governed_db.decision": "deny", "governed_db.refused": True,
                                       "governed_db.identity.subject": "<img src=x onerror=alert(1)>",
                                       "db.query.text": "SELECT '<script>'"}).end()
    html = render(build_report(path), "html")
    assert "<img src=x" not in html and "<script>" not in html
    assert "&lt;img src=x" in html


def _chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        if os.environ.get("GOVERNED_DB_REQUIRE_SERVERS") == "1":
            pytest.fail("chromium is not installed and GOVERNED_DB_REQUIRE_SERVERS=1 (apt-get install chromium)")
        pytest.skip("chromium is not installed; apt-get install chromium to run the browser check")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def test_html_renders_in_headless_chromium(store: Path, tmp_path: Path) -> None:
    """A real browser parses the report: the charts are SVG elements with bars, and a screenshot has content."""
    page = tmp_path / "report.html"
    res = CliRunner().invoke(report, ["--store", str(store), "--format", "html", "-o", str(page)])
    assert res.exit_code == 0
    dom = _chromium(["--dump-dom", page.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # the browser's serialised DOM: charts became SVG elements with their bars
    for chart in ("chart-identities", "chart-kinds", "chart-decisions", "chart-rules", "chart-days"):
        m = re.search(rf'<svg[^>]*id="{chart}".*?</svg>', html, re.S)
        assert m is not None, chart
        assert m.group(0).count('class="bar"') >= 1, chart
    assert re.search(r'id="chain-status"[^>]*>Chain intact<', html)
    assert "DROP TABLE customers" in html and "carol" in html

    shot = tmp_path / "report.png"
    png = _chromium([f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri()], tmp_path)
    assert png.returncode == 0 and shot.exists(), png.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 2000)
    assert len(data) > 30_000  # a blank page compresses to a few KB; charts and tables do not


def test_long_lists_say_where_they_were_cut(tmp_path: Path) -> None:
    """250 refusals: the HTML and Markdown say "showing 200 of 250"; totals count all 250."""
    path = tmp_path / "many.jsonl"
    tracer = tracer_for(None, audit_processor(path))
    for i in range(250):
        tracer.start_span("DROP", attributes={"governed_db.decision": "deny", "governed_db.refused": True,
                                              "governed_db.identity.subject": f"bot{i}",
                                              "governed_db.statement.kinds": ["ddl"],
                                              "db.query.text": f"DROP TABLE t{i}"}).end()
    rep = build_report(path)
    assert len(rep.refused) == 200 and rep.listed_of["refused"] == 250
    assert rep.totals["refused"] == 250 and rep.totals["changes"] == 250
    html = render(rep, "html")
    assert 'id="cut-refused">showing 200 of 250' in html
    assert 'id="cut-changes">showing 200 of 250' in html and 'id="cut-approvals"' not in html
    assert "showing 200 of 250" in render(rep, "md")


def test_short_lists_carry_no_cut_note(store: Path) -> None:
    """Lists under the cap say nothing about cutting."""
    assert "showing 200" not in render(build_report(store), "html")


@pytest.mark.parametrize("target", ["missing/dir/x.html", "."])
def test_unwritable_output_is_a_one_line_error(store: Path, tmp_path: Path, target: str) -> None:
    """-o into a missing directory (or onto a directory) exits 2 with a message, not a traceback."""
    out = tmp_path / target
    result = CliRunner().invoke(report, ["--store", str(store), "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert "cannot write the report" in result.output and "Traceback" not in result.output
