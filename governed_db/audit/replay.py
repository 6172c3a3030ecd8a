"""Policy replay: what would a new policy have done with the activity already recorded?

Each recorded statement is re-evaluated from what the record keeps — the
normalised text (literals are placeholders, which parse like parameters), the
dialect (from ``db.system.name``), the identity and the environment — with
:func:`governed_db.policy.load_policy` and ``Policy.evaluate``. Only the policy
is replayed: rate limits depended on live state and are not re-run. Masking's
rules (``masked-column-predicate``, ``masked-column-copy``, ``masked-value-write``)
depended on what was masked for the identity then: their recorded findings are
carried over and the new policy's action for them applies. Statements whose text
could not be parsed when they ran (the record keeps no text for them) are counted
as not replayable.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from governed_db.audit import records as R
from governed_db.audit.search import DIALECTS, iso
from governed_db.audit.store import read_records, store_path
from governed_db.identity import KINDS, Identity
from governed_db.policy import load_policy
from governed_db.policy.decision import Action, Decision, RuleHit
from governed_db.policy.rules import catalog
from governed_db.policy.rules.masking import MASKING_RULES
from governed_db.semconv import (
    DB_QUERY_TEXT,
    DB_SYSTEM_NAME,
    GDB_ANALYSIS_ERROR,
    GDB_ENVIRONMENT,
    GDB_IDENTITY_ISSUER,
    GDB_IDENTITY_KIND,
    GDB_IDENTITY_ON_BEHALF_OF,
    GDB_IDENTITY_PROVENANCE,
    GDB_IDENTITY_ROLES,
)
from governed_db.sql.analysis import analyze

#: db.system.name -> governed_db dialect
_UNREPLAYABLE = ("<unparsed statement>", "<statement could not be normalized>")
_RAN = frozenset({"allow", "warn", "limit"})


@dataclass
class Change:
    seq: int
    time: str
    identity: str
    kind: str
    environment: str
    statement: str
    before: str
    after: str
    rules: list[str]
    reason: str


@dataclass
class ReplayResult:
    policy: str
    statements: int = 0
    replayed: int = 0
    not_replayable: int = 0
    after: dict[str, int] = field(default_factory=dict)
    #: statements that ran but the new policy would refuse / send for approval / warn about
    newly_refused: int = 0
    newly_approval: int = 0
    newly_warned: int = 0
    #: statements the old policy stopped that the new one would let run
    relaxed: int = 0
    changes: list[Change] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _with_masking(decision: Decision, rec: dict[str, Any], pol: Any, analysis: Any, identity: Identity, env: str) -> Decision:
    """The decision with the masking findings recorded for the statement, under the new policy's actions."""
    recorded = [r for r in R.as_list(R.attr(rec, "governed_db.rules")) if r in MASKING_RULES]
    if not recorded:
        return decision
    specs = catalog()
    hits = list(decision.hits)
    declared = env in pol.settings.environments
    observe = pol.settings.observe_only(env) if declared else env in pol.observe_only
    for rule_id in recorded:
        action = pol.settings.action_for(specs[rule_id], env, identity, dialect=analysis.dialect, tables=analysis.tables)
        if observe and action.severity > Action.WARN.severity:
            action = Action.WARN
        if action is not Action.ALLOW:
            hits.append(RuleHit(rule_id, action, f"{rule_id} (recorded finding)", specs[rule_id].remedy))
    return Decision.combine(hits, environment=env, dialect=analysis.dialect, policy_name=decision.policy_name)


def _identity(rec: dict[str, Any]) -> Identity:
    kind = str(R.attr(rec, GDB_IDENTITY_KIND, "human"))
    return Identity(
        R.subject(rec) if R.subject(rec) != "?" else "unknown",
        kind=kind if kind in KINDS else "human",  # type: ignore[arg-type]
        on_behalf_of=R.attr(rec, GDB_IDENTITY_ON_BEHALF_OF) or None,
        roles=tuple(R.as_list(R.attr(rec, GDB_IDENTITY_ROLES))),
        verified=R.attr(rec, GDB_IDENTITY_PROVENANCE) == "verified",
        issuer=R.attr(rec, GDB_IDENTITY_ISSUER) or None,
    )


def replay(path: str | os.PathLike[str], policy: Any, *, since: int | None = None, until: int | None = None,
           environment: str | None = None, max_changes: int = 1000) -> ReplayResult:
    """Re-evaluate every recorded statement in the period with ``policy`` (a Policy or a policy file)."""
    pol = load_policy(policy)
    result = ReplayResult(policy=str(getattr(pol, "name", policy)))
    after: Counter[str] = Counter()
    for rec in read_records(store_path(path)):
        if not R.is_statement(rec):
            continue
        t = rec.get("time")
        if (since is not None and (not isinstance(t, int) or t < since)) or (
                until is not None and (not isinstance(t, int) or t > until)):
            continue
        result.statements += 1
        text = R.attr(rec, DB_QUERY_TEXT)
        dialect = DIALECTS.get(str(R.attr(rec, DB_SYSTEM_NAME, "")))
        if not text or text in _UNREPLAYABLE or dialect is None or R.attr(rec, GDB_ANALYSIS_ERROR):
            result.not_replayable += 1
            continue
        env = environment or str(R.attr(rec, GDB_ENVIRONMENT, "production"))
        analysis = analyze(str(text), dialect)
        identity = _identity(rec)
        decision = pol.evaluate(analysis, identity=identity, environment=env)
        decision = _with_masking(decision, rec, pol, analysis, identity, env)
        result.replayed += 1
        new, old = decision.action.value, str(R.attr(rec, "governed_db.decision"))
        after[new] += 1
        if new == old:
            continue
        if old in _RAN:
            if decision.action is Action.DENY:
                result.newly_refused += 1
            elif decision.action is Action.REQUIRE_APPROVAL:
                result.newly_approval += 1
            elif decision.action is Action.WARN and old == "allow":
                result.newly_warned += 1
        elif new in _RAN:
            result.relaxed += 1
        if len(result.changes) < max_changes:
            result.changes.append(Change(
                seq=int(rec.get("seq", -1)), time=iso(t), identity=R.subject(rec),
                kind=str(R.attr(rec, GDB_IDENTITY_KIND, "")), environment=env, statement=str(text)[:500],
                before=old, after=new, rules=list(decision.rules), reason=decision.reason,
            ))
    result.after = dict(after)
    return result
