"""Render a :class:`~governed_db.audit.report.Report` as Markdown or self-contained HTML.

The HTML carries its charts as inline SVG generated here: no scripts, no
fonts or stylesheets fetched, so it opens the same offline, in a mail
attachment, or in an evidence locker years later.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from governed_db.audit.report import Event, Report

_PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
_DECISION_COLOURS = {"allow": "#16a34a", "warn": "#d97706", "limit": "#0891b2",
                     "require_approval": "#7c3aed", "deny": "#dc2626"}


# -- SVG charts -------------------------------------------------------------------------------------

def bar_chart(title: str, items: Sequence[tuple[str, int]], *, colours: dict[str, str] | None = None,
              chart_id: str = "") -> str:
    """Horizontal bars, one per (label, value); labels and values printed so the chart reads without hover."""
    items = list(items)[:15]
    row, label_w, bar_w = 26, 170, 360
    height = 34 + row * max(1, len(items))
    top = max((v for _, v in items), default=0) or 1
    parts = [f'<svg class="chart" id="{escape(chart_id)}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 70}" height="{height}" '
             f'viewBox="0 0 {label_w + bar_w + 70} {height}">',
             f"<title>{escape(title)}</title>",
             f'<text x="0" y="16" class="chart-title">{escape(title)}</text>']
    if not items:
        parts.append('<text x="0" y="44" class="muted">no data in this period</text>')
    for i, (label, value) in enumerate(items):
        y = 28 + i * row
        w = max(2, round(bar_w * value / top)) if value else 0
        colour = (colours or {}).get(label, _PALETTE[i % len(_PALETTE)])
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(label[:28])}</text>')
        parts.append(f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w}" height="{row - 8}" '
                     f'fill="{colour}"><title>{escape(label)}: {value}</title></rect>')
        parts.append(f'<text x="{label_w + w + 6}" y="{y + 15}">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def column_chart(title: str, items: Sequence[tuple[str, int]], *, chart_id: str = "") -> str:
    """Vertical columns over time (one per day)."""
    items = list(items)[-60:]
    width, height, base = 640, 200, 170
    top = max((v for _, v in items), default=0) or 1
    step = min(60.0, (width - 40) / max(1, len(items)))
    parts = [f'<svg class="chart" id="{escape(chart_id)}" role="img" aria-label="{escape(title)}" '
             f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             f"<title>{escape(title)}</title>", f'<text x="0" y="16" class="chart-title">{escape(title)}</text>',
             f'<line x1="30" y1="{base}" x2="{width}" y2="{base}" stroke="#9ca3af"/>']
    if not items:
        parts.append('<text x="40" y="100" class="muted">no data in this period</text>')
    for i, (label, value) in enumerate(items):
        h = round((base - 30) * value / top)
        x = 34 + i * step
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{base - h}" width="{max(2.0, step - 4):.1f}" height="{h}" '
                     f'fill="#2563eb"><title>{escape(label)}: {value}</title></rect>')
        if len(items) <= 14 or i % max(1, len(items) // 7) == 0:
            parts.append(f'<text x="{x:.1f}" y="{base + 16}" class="tick">{escape(label[5:])}</text>')
    parts.append(f'<text x="0" y="34" class="tick">{top}</text></svg>')
    return "".join(parts)


# -- HTML -------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#111827;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #e5e7eb;padding-bottom:.3rem}
.muted,.tick{fill:#6b7280;color:#6b7280;font-size:12px}.chart-title{font-weight:600}svg text{font-size:12px}
table{border-collapse:collapse;width:100%;margin:.6rem 0}th,td{border:1px solid #e5e7eb;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f9fafb}code{font-size:12px;word-break:break-all}.ok{color:#15803d;font-weight:600}.bad{color:#b91c1c;font-weight:600}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #e5e7eb;border-radius:8px;padding:.7rem 1rem;min-width:120px}
.card b{display:block;font-size:1.5rem}.charts{display:flex;gap:2rem;flex-wrap:wrap}.criterion{font-weight:700;color:#1d4ed8}
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    if not rows:
        return '<p class="muted">None in this period.</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _events(events: list[Event], with_extra: str = "") -> list[list[str]]:
    return [[e.time, f"{e.identity} ({e.kind})", e.environment, e.operation, e.tables, e.decision, e.rules,
             e.extra if with_extra else e.reason, e.statement] for e in events]


def _cut_html(rep: Report, name: str) -> str:
    note = rep.shown(name)
    return f'<p class="muted cut" id="cut-{name}">{escape(note)}.</p>' if note else ""


def _cut_md(rep: Report, name: str) -> str:
    note = rep.shown(name)
    return f"_{note}._\n" if note else ""


def _verification_html(rep: Report) -> str:
    v = rep.verification
    if v.ok:
        text = (f'<p class="ok" id="chain-status">Chain intact</p><p>{v.records} records, {v.checkpoints} checkpoints, '
                f"{v.macs_checked} MACs verified.</p>")
    else:
        text = f'<p class="bad" id="chain-status">Chain BROKEN</p><p>First bad record: {escape(str(v.first_bad))}</p>'
    return text + "".join(f'<p class="muted">Note: {escape(w)}</p>' for w in v.warnings)


def html_page(rep: Report) -> str:
    t = rep.totals
    cards = "".join(f'<div class="card"><b>{t.get(k, 0)}</b>{escape(label)}</div>' for k, label in (
        ("statements", "statements"), ("identities", "identities"), ("refused", "refused"),
        ("approvals", "approval events"), ("masked_reads", "masked reads"), ("changes", "changes"),
        ("outcome_unknown", "outcome unknown")))
    per_identity = [(s.subject, s.statements) for s in rep.by_identity]
    crit = "".join(f'<tr><td class="criterion">{c}</td><td>{escape(n)}</td><td>{escape(d)}</td>'
                   f'<td><a href="#{c.replace(".", "")}">evidence</a></td></tr>' for c, (n, d) in rep.criteria.items())
    sensitive_rows = [[who, col, n] for who, cols in sorted(rep.sensitive.items()) for col, n in sorted(cols.items())]
    sections = [
        f'<h2 id="CC61">CC6.1 — Logical access: who accessed the data</h2>'
        f'<div class="charts">{bar_chart("Statements by identity", per_identity, chart_id="chart-identities")}'
        f'{bar_chart("Statements by identity kind", sorted(rep.by_kind.items()), chart_id="chart-kinds")}'
        f'{bar_chart("Identity provenance", sorted(rep.by_provenance.items()), chart_id="chart-provenance")}</div>'
        + _table(("identity", "kind", "statements", "refusals", "approvals", "masked reads", "masked cells"),
                 [[s.subject, s.kind, s.statements, s.refusals, s.approvals, s.masked_reads, s.masked_cells]
                  for s in rep.by_identity]),
        f'<h2 id="CC63">CC6.3 — Role-based access: refusals and approvals</h2>'
        f'<div class="charts">{bar_chart("Decisions", sorted(rep.by_decision.items()), colours=_DECISION_COLOURS, chart_id="chart-decisions")}'
        f'{bar_chart("Rules that fired", list(rep.by_rule.items()), chart_id="chart-rules")}</div>'
        "<h3>Refused actions</h3>"
        + _cut_html(rep, "refused")
        + _table(("time", "identity", "env", "operation", "tables", "decision", "rules", "reason", "statement"),
                 _events(rep.refused))
        + "<h3>Approvals (requests and reviewer decisions)</h3>"
        + _cut_html(rep, "approvals")
        + _table(("time", "identity", "env", "operation", "tables", "decision", "rules", "approval", "statement"),
                 _events(rep.approvals, with_extra="1")),
        '<h2 id="CC72">CC7.2 — Monitoring: record integrity and sensitive-data access</h2>'
        + _verification_html(rep)
        + column_chart("Statements per day", list(rep.by_day.items()), chart_id="chart-days")
        + "<h3>Sensitive columns read (returned masked)</h3>"
        + _table(("identity", "column", "reads"), sensitive_rows),
        '<h2 id="CC81">CC8.1 — Change management: schema, privilege and admin statements</h2>'
        + _cut_html(rep, "changes")
        + _table(("time", "identity", "env", "operation", "tables", "decision", "rules", "reason", "statement"),
                 _events(rep.changes)),
    ]
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>governed_db compliance evidence</title><style>{_CSS}</style></head><body>"
        f"<h1>Database activity — compliance evidence</h1>"
        f'<p class="muted">Period: {escape(rep.since)} to {escape(rep.until)} · generated {escape(rep.generated)} '
        f"· store <code>{escape(rep.store)}</code></p>"
        f'<div class="cards">{cards}</div>'
        "<h2>SOC 2 criteria supported</h2>"
        f"<table><thead><tr><th>criterion</th><th>name</th><th>what this record shows</th><th></th></tr></thead>"
        f"<tbody>{crit}</tbody></table>"
        + "".join(sections)
        + "</body></html>\n"
    )


# -- Markdown ---------------------------------------------------------------------------------------

def _md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return "_None in this period._\n"

    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def markdown(rep: Report) -> str:
    v = rep.verification
    chain = (f"**Chain intact** — {v.records} records, {v.checkpoints} checkpoints, {v.macs_checked} MACs verified."
             if v.ok else f"**Chain BROKEN** — first bad record: {v.first_bad}")
    out = [
        "# Database activity — compliance evidence\n",
        f"Period: {rep.since} to {rep.until} · generated {rep.generated} · store `{rep.store}`\n",
        _md_table(("metric", "value"), sorted(rep.totals.items())),
        "## SOC 2 criteria supported\n",
        _md_table(("criterion", "name", "what this record shows"), [[c, n, d] for c, (n, d) in rep.criteria.items()]),
        "## CC6.1 — Logical access: who accessed the data\n",
        _md_table(("identity", "kind", "statements", "refusals", "approvals", "masked reads"),
                  [[s.subject, s.kind, s.statements, s.refusals, s.approvals, s.masked_reads] for s in rep.by_identity]),
        _md_table(("identity kind", "statements"), sorted(rep.by_kind.items())),
        _md_table(("provenance", "statements"), sorted(rep.by_provenance.items())),
        "## CC6.3 — Role-based access: refusals and approvals\n",
        _md_table(("decision", "statements"), sorted(rep.by_decision.items())),
        "### Refused actions\n",
        _cut_md(rep, "refused"),
        _md_table(("time", "identity", "env", "operation", "tables", "decision", "rules", "reason", "statement"),
                  _events(rep.refused)),
        "### Approvals\n",
        _cut_md(rep, "approvals"),
        _md_table(("time", "identity", "env", "operation", "tables", "decision", "rules", "approval", "statement"),
                  _events(rep.approvals, with_extra="1")),
        "## CC7.2 — Monitoring: record integrity and sensitive-data access\n",
        chain + "\n",
        *[f"- note: {w}\n" for w in v.warnings],
        _md_table(("identity", "column", "reads"),
                  [[w, c, n] for w, cols in sorted(rep.sensitive.items()) for c, n in sorted(cols.items())]),
        "## CC8.1 — Change management: schema, privilege and admin statements\n",
        _cut_md(rep, "changes"),
        _md_table(("time", "identity", "env", "operation", "tables", "decision", "rules", "reason", "statement"),
                  _events(rep.changes)),
    ]
    return "\n".join(out)


def render(rep: Report, fmt: str) -> str:
    if fmt == "md":
        return markdown(rep)
    if fmt == "html":
        return html_page(rep)
    raise ValueError(f"unknown report format {fmt!r}: use html or md")
