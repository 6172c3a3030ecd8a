"""Results that leave in a form masking cannot reach (``COPY ... TO``, DuckDB ``map()``): which of their columns
would be masked, so that the export is refused.

A column of a table that had too few rows to classify, or with too few values (a *provisional* label,
:func:`classify.provisional_class`) is not masked but scanned as it passes, in case personal data arrives. An
export cannot be scanned on its way out, so those columns are scanned here instead, at the source and in full:
a provisional column had fewer non-NULL values than the sample size, so reading that many of them reads all
(when it has grown since, it is classified again first). A column counts as masked when it holds anything the scan would mask, when it is computed from
a masked column, or when its lineage is not known for certain. Decision 0195.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from governed_db.identity import Identity
from governed_db.masking import schema
from governed_db.masking.classify import FEW_ROWS
from governed_db.masking.engine import UNREADABLE, MaskingState, state_for
from governed_db.masking.lineage import Origin, Ref
from governed_db.masking.plan import Access, detect_masker, origins_for
from governed_db.sql.analysis import Analysis

if TYPE_CHECKING:
    from governed_db.pipeline import Governor


def export_masked_columns(
    description: Sequence[Sequence[Any]] | None, analysis: Analysis, *, identity: Identity, gov: Governor
) -> tuple[str, ...]:
    """The columns of a result (``description`` of ``analysis``) that masking would change, for an export."""
    from governed_db import masking

    for attempt in range(2):
        plan = masking.plan_masking(description, analysis, identity=identity, gov=gov)
        masked = tuple(getattr(plan, "masked_columns", ()) or ()) if plan is not None else ()
        if not masked or description is None:
            return masked
        state = state_for(gov)
        scanned = _scanned(description, analysis, Access(state, identity), state, getattr(plan, "maskers", None))
        if scanned is None:
            return masked
        tables = {t: sql for refs in scanned.values() for t, sql, _c, _cls in refs or ()}
        grown = [t for t in tables if _grown(state, t)]
        if grown and attempt == 0:
            for t in grown:
                state.data_arrived(t)  # classified again by the next plan
            continue
        dirty = set(grown)
        for t, sql in tables.items():
            columns = {c: cls for refs in scanned.values() for t2, _s, c, cls in refs or () if t2 == t}
            if t not in dirty and not _clean(state, t, sql, columns):
                dirty.add(t)
        return tuple(
            name for name in masked if scanned.get(name) is None or any(r[0] in dirty for r in scanned[name] or ())
        )
    return ()  # not reached: the second attempt returns


#: (table key, its SQL, column, class) of a provisional column a result column is made of
_Scan = tuple[str, str, str, Any]


def _scanned(
    description: Sequence[Sequence[Any]],
    analysis: Analysis,
    access: Access,
    state: MaskingState,
    maskers: Sequence[Any] | None,
) -> dict[str, list[_Scan] | None] | None:
    """result column -> the provisional columns it is made of, or ``None`` when it is masked for any other
    reason (a label, lost or unknown lineage, a whole row, a masker in the plan other than their scan);
    ``None`` overall when lineage or the plan's maskers are unknown."""
    if maskers is None or len(maskers) != len(description):
        return None
    facts = state.facts_for(analysis)
    lineage = facts.lineage
    if lineage is None or lineage.blind or facts.diagnostics:
        return None
    names = [d[0].decode() if isinstance(d[0], bytes) else str(d[0]) for d in description]
    origins, _tables = origins_for(names, facts)
    out: dict[str, list[_Scan] | None] = {}
    for name, origin, masker in zip(names, origins, maskers, strict=True):
        refs = _provisional_refs(origin, access)
        if refs is not None and any(t not in lineage.tables for t, _c, _cls in refs):
            refs = None
        if refs and masker is not None and not _scans(state, refs, masker):
            refs = None
        found = None if refs is None else [(t, lineage.tables[t], c, cls) for t, c, cls in refs]
        # the same name twice: either reason counts
        out[name] = None if name in out and out[name] is None else found
    return out


def _provisional_refs(origin: Origin, access: Access) -> list[tuple[str, str, Any]] | None:
    if origin.kind == "const":
        return []
    if origin.kind not in ("column", "expr") or origin.rows:
        return None
    refs: list[tuple[str, str, Any]] = []
    for t, c in sorted(origin.sources):
        cls = access.hidden(t, c)
        if cls is None:
            continue
        if cls is UNREADABLE or not cls.provisional:
            return None
        refs.append((t, c, cls))
    return refs


def _scans(state: MaskingState, refs: list[tuple[str, str, Any]], masker: Any) -> bool:
    """Is ``masker`` (the plan's) the scan of these provisional columns, not a mask for another reason?"""
    scanners = {id(state.masker(t, c, cls)) for t, c, cls in refs}
    scanners.add(id(state.watching(refs[0][0], detect_masker(state))))
    return id(masker) in scanners


def _grown(state: MaskingState, key: str) -> bool:
    """Has ``key`` stopped being provisional (re-sampled since, or about to be)?"""
    info = state.tables.get(key)
    return info is None or not info.provisional or info.recheck_at == 0.0


def _sample_limit(state: MaskingState) -> int:
    return min(FEW_ROWS, state.config.sample_rows)


def _clean(state: MaskingState, key: str, table_sql: str, columns: dict[str, Any]) -> bool:
    """Read every value of ``columns`` (nearly empty: of a nearly empty table, or nearly all NULL, decision
    0250) now: True when the scan would mask none of them."""
    raw = state.gov.driver.catalog_connection(state.gov)
    limit = _sample_limit(state)
    info = state.tables.get(key)
    spelled = {n.lower(): n for n in (info.columns or ())} if info is not None else {}
    names = [spelled.get(c.lower()) for c in columns]
    if not names or any(n is None for n in names):
        return False
    quoted = [exp.to_identifier(n, quoted=True).sql(dialect=state.sg_dialect) for n in names if n is not None]
    rows = schema.sample_columns(raw, state.dialect, table_sql, quoted, limit)
    if rows is None:
        return False
    if len(rows) >= limit:
        state.data_arrived(key)  # it has grown: classified again at the next statement
        return False
    for i, (c, cls) in enumerate(columns.items()):
        masker = state.masker(key, c, cls)
        for row in rows:
            value = row[i]
            out = masker(value)
            if out is not value and out != value:
                return False
    return True


__all__ = ["Ref", "export_masked_columns"]
