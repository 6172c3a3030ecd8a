"""Compliance evidence from the record, mapped to SOC 2 criteria.

:func:`build_report` reads the store once and gathers what an auditor asks
for; :mod:`governed_db.audit.report_render` turns it into Markdown or a
self-contained HTML page with inline SVG charts (no scripts, no network).

=========  =================================================================
CC6.1      logical access: every statement attributed to an identity, by kind
           and provenance (verified token vs self-declared)
CC6.3      role-based access: refusals by rule, approvals and their reviewers
CC7.2      monitoring: chain verification, refused actions, sensitive-data
           access (masked columns)
CC8.1      change management: schema, privilege and admin statements, who ran
           them and under which decision
=========  =================================================================
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from governed_db.audit import records as R
from governed_db.audit.search import IdentityStats, iso, stats
from governed_db.audit.store import read_records, store_path
from governed_db.audit.verify import VerifyResult, verify
from governed_db.semconv import (
    DB_OPERATION_NAME,
    DB_QUERY_TEXT,
    ERROR_TYPE,
    GDB_APPROVAL_GRANT,
    GDB_APPROVAL_OPERATIONS,
    GDB_APPROVAL_REQUEST_ID,
    GDB_APPROVAL_REVIEWER,
    GDB_APPROVAL_RULES,
    GDB_APPROVAL_STATE,
    GDB_APPROVAL_STATEMENT,
    GDB_APPROVAL_TABLES,
    GDB_ENVIRONMENT,
    GDB_IDENTITY_KIND,
    GDB_IDENTITY_PROVENANCE,
    GDB_MASKED_COLUMNS,
    GDB_REASON,
    GDB_STATEMENT_KINDS,
    GDB_TABLES,
)

CHANGE_KINDS = frozenset({"ddl", "privilege", "admin"})
#: operation prefixes that are changes even when a statement kind is not recorded
CHANGE_OPERATIONS = ("CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "GRANT", "REVOKE", "COMMENT")
_LIST_CAP = 200

CRITERIA: dict[str, tuple[str, str]] = {
    "CC6.1": ("Logical access security",
              "Every statement is attributed to an identity (human, agent or service) and its provenance."),
    "CC6.3": ("Role-based access and authorization",
              "Policy rules refuse out-of-role actions; risky actions wait for a named reviewer's approval."),
    "CC7.2": ("Monitoring of system components",
              "A tamper-evident, verified record of activity; refused actions and sensitive-data access surfaced."),
    "CC8.1": ("Change management",
              "Schema, privilege and administrative changes are recorded with who made them and the decision."),
}


@dataclass
class Event:
    """One notable statement, flattened for the report."""

    time: str
    identity: str
    kind: str
    environment: str
    operation: str
    tables: str
    decision: str
    rules: str
    reason: str
    statement: str
    extra: str = ""


@dataclass
class Report:
    store: str
    generated: str
    since: str
    until: str
    verification: VerifyResult
    totals: dict[str, int] = field(default_factory=dict)
    by_identity: list[IdentityStats] = field(default_factory=list)
    by_kind: dict[str, int] = field(default_factory=dict)
    by_provenance: dict[str, int] = field(default_factory=dict)
    by_decision: dict[str, int] = field(default_factory=dict)
    by_rule: dict[str, int] = field(default_factory=dict)
    by_day: dict[str, int] = field(default_factory=dict)
    refused: list[Event] = field(default_factory=list)
    approvals: list[Event] = field(default_factory=list)
    sensitive: dict[str, dict[str, int]] = field(default_factory=dict)  # identity -> column -> reads
    changes: list[Event] = field(default_factory=list)
    criteria: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(CRITERIA))
    #: how many events each list (refused, approvals, changes) had before it was cut at its first 200
    listed_of: dict[str, int] = field(default_factory=dict)

    def shown(self, name: str) -> str | None:
        """"showing 200 of N" when the list ``name`` was cut, else None."""
        total, shown = self.listed_of.get(name, 0), len(getattr(self, name))
        return f"showing {shown} of {total} (the first {shown}; lists are cut at {_LIST_CAP})" if total > shown else None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d["verification"] = self.verification.to_dict()
        return d


def _event(rec: dict[str, Any], extra: str = "") -> Event:
    a = R.attr
    return Event(
        time=iso(rec.get("time")), identity=R.subject(rec), kind=str(a(rec, GDB_IDENTITY_KIND, "")),
        environment=str(a(rec, GDB_ENVIRONMENT, "")), operation=str(a(rec, DB_OPERATION_NAME, "")),
        tables=", ".join(R.as_list(a(rec, GDB_TABLES))), decision=str(a(rec, "governed_db.decision", "")),
        rules=", ".join(R.as_list(a(rec, "governed_db.rules"))), reason=str(a(rec, GDB_REASON, "")),
        statement=str(a(rec, DB_QUERY_TEXT, ""))[:500], extra=extra,
    )


def _approval_event(rec: dict[str, Any]) -> Event:
    """An approval transition, described with the request's own statement, tables and rules."""
    a = R.attr
    transition = str(rec.get("name", "")).rpartition(".")[2]
    actor = _reviewer(rec)  # whoever made the transition: a reviewer, or the requester consuming a grant
    ev = _event(rec, extra=f"{transition} {a(rec, 'governed_db.approval.request_id', '')}"
                           + (f" by {actor}" if actor else ""))
    ev.operation = ev.operation or ", ".join(R.as_list(a(rec, GDB_APPROVAL_OPERATIONS)))
    ev.tables = ev.tables or ", ".join(R.as_list(a(rec, GDB_APPROVAL_TABLES)))
    ev.rules = ev.rules or ", ".join(R.as_list(a(rec, GDB_APPROVAL_RULES)))
    ev.decision = ev.decision or str(a(rec, GDB_APPROVAL_STATE, ""))
    ev.statement = ev.statement or str(a(rec, GDB_APPROVAL_STATEMENT, ""))[:500]
    return ev


def _reviewer(rec: dict[str, Any]) -> str:
    attrs = rec.get("attrs") or {}
    if attrs.get(GDB_APPROVAL_REVIEWER):
        return str(attrs[GDB_APPROVAL_REVIEWER])
    for k, v in attrs.items():
        if any(w in k for w in ("reviewer", "approver", "approved_by", "decided_by")) and v:
            return str(v)
    return ""


def _count(listed: Counter[str], name: str) -> bool:
    """Count one more event for list ``name``; True while the list is still under its cap (keep the event)."""
    listed[name] += 1
    return listed[name] <= _LIST_CAP


def build_report(path: str | os.PathLike[str], *, since: int | None = None, until: int | None = None,
                 key: str | bytes | None = None) -> Report:
    p = store_path(path)
    rep = Report(store=str(p), generated=iso(time.time_ns()),
                 since=iso(since) or "beginning of the record", until=iso(until) or "now",
                 verification=verify(p, key=key, compare_index=False))  # (the report reads the store, not the index)
    kinds: Counter[str] = Counter()
    prov: Counter[str] = Counter()
    decisions: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    listed: Counter[str] = Counter()
    days: Counter[str] = Counter()
    identities: set[str] = set()
    unknown = 0
    for rec in read_records(p):
        t = rec.get("time")
        if (since is not None and (not isinstance(t, int) or t < since)) or (
                until is not None and (not isinstance(t, int) or t > until)):
            continue
        if R.is_approval(rec):
            if _count(listed, "approvals"):
                rep.approvals.append(_approval_event(rec))
            continue
        if not R.is_statement(rec):
            continue
        identities.add(R.subject(rec))
        unknown += rec.get("outcome") == R.UNKNOWN  # intent recorded, outcome never (a crash in between)
        kinds[str(R.attr(rec, GDB_IDENTITY_KIND, "unknown"))] += 1
        # telemetry records provenance only for verified identities: absent means self-declared
        prov[str(R.attr(rec, GDB_IDENTITY_PROVENANCE) or "self-declared")] += 1
        decision = str(R.attr(rec, "governed_db.decision"))
        decisions[decision] += 1
        rules.update(R.as_list(R.attr(rec, "governed_db.rules")))
        days[iso(t)[:10]] += 1
        if R.is_refused(rec) and _count(listed, "refused"):
            rep.refused.append(_event(rec, extra=str(R.attr(rec, ERROR_TYPE, ""))))
        if decision == "require_approval" and _count(listed, "approvals"):
            rid = R.attr(rec, GDB_APPROVAL_REQUEST_ID, "-")
            grant = R.attr(rec, GDB_APPROVAL_GRANT)
            ran = not R.is_refused(rec)
            rep.approvals.append(_event(rec, extra=f"ran under grant {rid}" + (f" ({grant})" if grant else "")
                                        if ran else f"held for approval {rid}"))
        for col in R.as_list(R.attr(rec, GDB_MASKED_COLUMNS)):
            cols = rep.sensitive.setdefault(R.subject(rec), {})
            cols[col] = cols.get(col, 0) + 1
        stmt_kinds = set(R.as_list(R.attr(rec, GDB_STATEMENT_KINDS)))
        op = str(R.attr(rec, DB_OPERATION_NAME, "")).upper()
        if (stmt_kinds & CHANGE_KINDS or op.startswith(CHANGE_OPERATIONS)) and _count(listed, "changes"):
            rep.changes.append(_event(rec))
    rep.by_identity = stats(read_records(p), since=since, until=until)  # second pass: memory stays flat
    rep.by_kind, rep.by_provenance = dict(kinds), dict(prov)
    rep.by_decision, rep.by_rule = dict(decisions), dict(rules.most_common())
    rep.by_day = dict(sorted(days.items()))
    # the file is in end-of-span order; people read these lists by start time
    for events in (rep.refused, rep.approvals, rep.changes):
        events.sort(key=lambda e: e.time)
    rep.listed_of = dict(listed)
    rep.totals = {
        "statements": sum(decisions.values()),
        "identities": len(identities),
        "refused": sum(s.refusals for s in rep.by_identity),
        "approvals": listed["approvals"],
        "masked_reads": sum(s.masked_reads for s in rep.by_identity),
        "changes": listed["changes"],
        "outcome_unknown": unknown,
    }
    return rep


