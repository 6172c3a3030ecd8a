"""Questions asked of the record: search, who touched what, and per-identity statistics.

The store is a file read front to back; every query here is a single pass, so
memory stays flat however large the store grows.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from governed_db.audit import records as R
from governed_db.audit.store import journal_records, read_records
from governed_db.errors import ConfigurationError
from governed_db.semconv import (
    DB_OPERATION_NAME,
    DB_QUERY_TEXT,
    DB_SYSTEM_NAME,
    GDB_APPROVAL_REQUEST_ID,
    GDB_COLUMNS,
    GDB_ENVIRONMENT,
    GDB_IDENTITY_KIND,
    GDB_IDENTITY_ON_BEHALF_OF,
    GDB_IDENTITY_SUBJECT,
    GDB_MASKED_CELLS,
    GDB_MASKED_COLUMNS,
    GDB_STATEMENT_SPAN_ID,
    GDB_TABLES,
)

if TYPE_CHECKING:
    from governed_db.audit.index import Index

log = logging.getLogger("governed_db.audit")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str | None, *, now: datetime | None = None) -> int | None:
    """``None``, an ISO-8601 time (UTC if no zone), or a duration ago like ``24h``/``7d`` -> epoch ns."""
    if text is None or text == "":
        return None
    m = _DURATION.match(text)
    if m:
        ref = now or datetime.now(timezone.utc)
        try:
            return int((ref - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})).timestamp() * 1e9)
        except (OverflowError, ValueError):  # further back than datetime reaches (9999999999d), or 5,000 digits
            raise ConfigurationError(f"the duration {text.strip()[:40]!r} reaches back before the year 1; "
                                     "use a shorter one (like 7d) or an ISO-8601 time") from None
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"cannot read the time {text!r}: use ISO-8601 (2026-01-31 or 2026-01-31T12:00:00Z) or a duration like 24h, 7d"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1e9)


def iso(ns: Any) -> str:
    if not isinstance(ns, int):
        return ""
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _names_match(recorded: str, wanted: str) -> bool:
    """``users`` matches ``public.users``; comparisons ignore case and quoting."""
    r, w = recorded.strip('"`').lower(), wanted.strip('"`').lower()
    return r == w or r.endswith("." + w) or w.endswith("." + r)


def columns_of(record: dict[str, Any]) -> list[str]:
    """Column names the spans carry: masked columns, and any column list other modules record."""
    cols = R.as_list(R.attr(record, GDB_MASKED_COLUMNS))
    cols += R.as_list(R.attr(record, GDB_COLUMNS))
    return cols


_ALL = frozenset({"*"})


@lru_cache(maxsize=1)
def _whole_row_types() -> tuple[type, ...]:
    # imported on first use: sqlglot costs more to import than most searches take
    from sqlglot import exp

    return tuple(t for t in (exp.Delete, exp.Drop, getattr(exp, "TruncateTable", None)) if isinstance(t, type))


@lru_cache(maxsize=4096)
def statement_columns(text: str, dialect: str | None) -> frozenset[str]:
    """Lower-case column names a statement names; ``{"*"}`` when it touches every column.

    ``SELECT *``, ``INSERT`` without a column list, ``DELETE``, ``DROP`` and ``TRUNCATE``
    touch every column (whole rows or the whole table). Text that
    does not parse falls back to "any identifier in the text".
    """
    from sqlglot import exp

    from governed_db.sql.analysis import analyze

    if dialect is not None:
        analysis = analyze(text, dialect)
        if analysis.error is None and analysis.statements:
            names: set[str] = set()
            for stmt in analysis.statements:
                tree = stmt.expression
                if tree is None:
                    return _ALL
                if tree.find(exp.Star) is not None or isinstance(tree, _whole_row_types()):
                    return _ALL
                for insert in tree.find_all(exp.Insert):
                    if not isinstance(insert.this, exp.Schema):
                        return _ALL  # INSERT INTO t VALUES (...): every column
                    names.update(i.name.lower() for i in insert.this.expressions)
                names.update(c.name.lower() for c in tree.find_all(exp.Column))
                names.update(d.name.lower() for d in tree.find_all(exp.ColumnDef))
            return frozenset(names)
    return frozenset(w.lower() for w in re.findall(r"[A-Za-z_][\w$]*", text)) | (_ALL if "*" in text else frozenset())


#: the sqlglot dialect of each ``db.system.name`` a record carries
DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql", "duckdb": "duckdb"}


def mentions_column(record: dict[str, Any], column: str) -> bool:
    if any(c.lower() == column.lower() for c in columns_of(record)):
        return True
    text = str(R.attr(record, DB_QUERY_TEXT, ""))
    cols = statement_columns(text, DIALECTS.get(str(R.attr(record, DB_SYSTEM_NAME, ""))))
    return column.lower() in cols or "*" in cols


@dataclass(frozen=True, kw_only=True)
class Query:
    """Filters for :func:`search`; every given field must match (AND)."""

    identity: str | None = None
    kind: str | None = None
    environment: str | None = None
    table: str | None = None
    column: str | None = None
    decision: str | None = None
    rule: str | None = None
    since: int | None = None
    until: int | None = None
    #: include result follow-ups, approval transitions and store records, not only statements
    all_records: bool = False

    def matches(self, rec: dict[str, Any]) -> bool:
        if not self.all_records and not R.is_statement(rec):
            return False
        t = rec.get("time")
        if self.since is not None and (not isinstance(t, int) or t < self.since):
            return False
        if self.until is not None and (not isinstance(t, int) or t > self.until):
            return False
        if self.identity is not None and self.identity not in (
            R.attr(rec, GDB_IDENTITY_SUBJECT), R.attr(rec, GDB_IDENTITY_ON_BEHALF_OF)
        ):
            return False
        if self.kind is not None and R.attr(rec, GDB_IDENTITY_KIND) != self.kind:
            return False
        if self.environment is not None and R.attr(rec, GDB_ENVIRONMENT) != self.environment:
            return False
        if self.decision is not None and R.attr(rec, "governed_db.decision") != self.decision:
            return False
        if self.rule is not None and self.rule not in R.as_list(R.attr(rec, "governed_db.rules")):
            return False
        if self.table is not None and not any(
            _names_match(t, self.table) for t in R.as_list(R.attr(rec, GDB_TABLES))
        ):
            return False
        return self.column is None or mentions_column(rec, self.column)


def search(path: str | os.PathLike[str], query: Query | None = None, *, limit: int | None = None,
           index: bool = True, key: str | bytes | None = None) -> Iterator[dict[str, Any]]:
    """Statements (or, with ``all_records``, every record) matching ``query``, in the order a full read gives.

    Statement queries use the sidecar index (:mod:`governed_db.audit.index`) to find candidates and check
    each one read back from the store; without an index (``index=False``, or it cannot be written) the
    store is read front to back. Both give the same answer. An index that is not the one its seal names (with
    ``key``, default ``$GOVERNED_DB_AUDIT_KEY``: sealed with that key) is rebuilt first, never answered from.
    """
    q = query or Query()
    found = _indexed(path, q, key=key) if index and not q.all_records else None
    n = 0
    if found is not None:  # the index covers the store; statements still in journals of ended processes follow
        found = itertools.chain(found, journal_records(path))
    for rec in found if found is not None else read_records(path):
        if q.matches(rec):
            yield rec
            n += 1
            if limit is not None and n >= limit:
                return


def _indexed(path: str | os.PathLike[str], q: Query, *, newest_first: bool = False,
             key: str | bytes | None = None) -> Iterator[dict[str, Any]] | None:
    idx = _open_index(path, key)
    if idx is None:
        return None
    from governed_db.audit.index import LineReader

    def records() -> Iterator[dict[str, Any]]:
        reader = LineReader(idx.store)
        try:
            for ffirst, off, offirst, ooff in idx.candidates(q, newest_first=newest_first):
                rec = reader.record(ffirst, off)
                if rec is None:
                    continue
                if rec.get("type") == R.INTENT:
                    rec = R.merged(rec, reader.record(offirst, ooff))
                yield rec
        finally:
            reader.close()
            idx.close()

    return records()


def _open_index(path: str | os.PathLike[str], key: str | bytes | None) -> Index | None:
    """The store's index, up to date; None when there is none to trust (then the store is read front to back)."""
    import sqlite3

    from governed_db.audit.index import open_index

    try:
        idx = open_index(path, key=key)
    except (sqlite3.Error, OSError) as e:
        log.info("governed_db audit: no index for %s (%s); reading the whole store", path, e)
        return None
    if idx.inexact is not None:
        log.info("governed_db audit: the index of %s cannot answer exactly (%s); reading the whole store",
                 path, idx.inexact)
        idx.close()
        return None
    return idx


def tail(path: str | os.PathLike[str], n: int = 20, query: Query | None = None, *,
         key: str | bytes | None = None) -> list[dict[str, Any]]:
    """The last ``n`` matching statements, oldest first."""
    from collections import deque

    q = query or Query()
    found = _indexed(path, q, newest_first=True, key=key) if not q.all_records else None
    if found is None:
        return list(deque(search(path, q, index=False), maxlen=n))
    out: list[dict[str, Any]] = []
    for rec in found:
        if len(out) >= n:
            break
        if q.matches(rec):
            out.append(rec)
    return out[::-1]


@dataclass
class Touch:
    subject: str
    kind: str
    statements: int = 0
    operations: dict[str, int] = field(default_factory=dict)
    first: int | None = None
    last: int | None = None
    refused: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"identity": self.subject, "kind": self.kind, "statements": self.statements,
                "operations": self.operations, "refused": self.refused,
                "first": iso(self.first), "last": iso(self.last)}


def who_touched(path: str | os.PathLike[str], target: str, *, since: int | None = None,
                until: int | None = None, key: str | bytes | None = None) -> list[Touch]:
    """Who ran statements on ``TABLE`` or ``TABLE.COLUMN`` (most active first).

    Columns are matched from the column names the spans carry and the columns the
    normalised statement names, parsed in its dialect (``SELECT *`` and ``INSERT``
    without a column list count as touching every column). The index's counts are used only while the index
    is the one its seal names (with ``key``, default ``$GOVERNED_DB_AUDIT_KEY``: sealed with that key).
    """
    table, _, column = target.rpartition(".") if target.count(".") >= 1 else (target, "", "")
    if not table:
        table, column = target, ""
    q = Query(table=table, column=column or None, since=since, until=until)
    by: dict[tuple[str, str], Touch] = {}

    def add(who: str, kind: str, op: str, refused: int, n: int, first: Any, last: Any) -> None:
        t = by.get((who, kind)) or by.setdefault((who, kind), Touch(who, kind))
        t.statements += n
        t.operations[op] = t.operations.get(op, 0) + n
        t.refused += refused * n
        if isinstance(first, int):
            t.first = first if t.first is None else min(t.first, first)
        if isinstance(last, int):
            t.last = last if t.last is None else max(t.last, last)

    grouped = _who_touched_indexed(path, q, key)
    # the index covers the store; statements still in journals of ended processes are read as a full read would
    for row in grouped if grouped is not None else ():
        add(*row)
    for rec in journal_records(path) if grouped is not None else search(path, q, index=False):
        if grouped is not None and not q.matches(rec):
            continue
        ts = rec.get("time")
        add(R.subject(rec), str(R.attr(rec, GDB_IDENTITY_KIND, "?")), str(R.attr(rec, DB_OPERATION_NAME, "?")),
            int(R.is_refused(rec)), 1, ts, ts)
    return sorted(by.values(), key=lambda t: (-t.statements, t.subject, t.kind))


def _who_touched_indexed(path: str | os.PathLike[str], q: Query, key: str | bytes | None
                         ) -> list[tuple[str, str, str, int, int, int | None, int | None]] | None:
    """Who-touched from the index: per statement shape (text, tables, columns) the exact table and column
    checks run once, then the index's counts per identity, operation and hour of those shapes are summed.

    The columns a statement text names are kept in the index once worked out (for this version of the
    parser), so that a query in a fresh process need not load the parser at all."""
    idx = _open_index(path, key)
    if idx is None:
        return None
    try:
        import json

        shapes = [(shape, text_id, text, system, json.loads(cols)) for shape, text_id, text, system, tables, cols
                  in idx.shapes(q.table) if q.table is None or any(_names_match(t, q.table) for t in json.loads(tables))]
        if q.column is not None:
            column = q.column.lower()
            # a column the record lists decides without the text; the others need the columns the text names
            undecided = {text_id: (text, system) for _, text_id, text, system, cols in shapes
                         if not any(c.lower() == column for c in cols)}
            analyser = _analyser()
            named = {k: frozenset(json.loads(v)) for k, v in idx.parsed(analyser, undecided).items()}
            new = {k: statement_columns(text, DIALECTS.get(system)) for k, (text, system) in undecided.items()
                   if k not in named}
            if new:
                idx.remember_parsed(analyser, {k: json.dumps(sorted(v)) for k, v in new.items()})
                named.update(new)
            shapes = [s for s in shapes if any(c.lower() == column for c in s[4])
                      or column in named[s[1]] or "*" in named[s[1]]]
        hits = [s[0] for s in shapes]
        return idx.touches(hits, q.since, q.until) if hits else []
    finally:
        idx.close()


@lru_cache(maxsize=1)
def _analyser() -> str:
    """Names the version of the code that works out a statement's columns (governed_db's and sqlglot's), without
    importing sqlglot: column sets the index keeps are reused only by the same version."""
    import hashlib
    import importlib.util

    import governed_db

    files = [__file__, os.path.join(os.path.dirname(os.path.dirname(__file__)), "sql", "analysis.py")]
    spec = importlib.util.find_spec("sqlglot")
    if spec is not None and spec.origin:
        files += [spec.origin, os.path.join(os.path.dirname(spec.origin), "_version.py")]
    parts = [governed_db.__version__]
    for f in files:
        try:
            st = os.stat(f)
            parts.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{f}:-")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


@dataclass
class IdentityStats:
    subject: str
    kind: str
    statements: int = 0
    refusals: int = 0
    approvals: int = 0
    masked_reads: int = 0
    masked_cells: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def stats(records: Iterable[dict[str, Any]], *, since: int | None = None, until: int | None = None
          ) -> list[IdentityStats]:
    """Per identity: statements, refusals, approvals needed/granted, reads that returned masked data."""
    by: dict[tuple[str, str], IdentityStats] = {}
    owner: dict[str, tuple[str, str]] = {}  # statement span id -> identity, for result follow-ups
    for rec in records:
        t = rec.get("time")
        if (since is not None and (not isinstance(t, int) or t < since)) or (
            until is not None and (not isinstance(t, int) or t > until)):
            continue
        if R.is_statement(rec):
            key = (R.subject(rec), str(R.attr(rec, GDB_IDENTITY_KIND, "?")))
            s = by.get(key) or by.setdefault(key, IdentityStats(*key))
            s.statements += 1
            s.refusals += int(R.is_refused(rec))
            s.approvals += int(R.attr(rec, "governed_db.decision") == "require_approval"
                               or bool(R.attr(rec, GDB_APPROVAL_REQUEST_ID)))
            if R.attr(rec, GDB_MASKED_COLUMNS):
                s.masked_reads += 1
            # a result fetched before its statement's outcome was written travels in that outcome
            s.masked_cells += int(R.attr(rec, GDB_MASKED_CELLS, 0) or 0)
            owner[str(rec.get("span_id"))] = key
        elif R.is_result(rec):
            cells = int(R.attr(rec, GDB_MASKED_CELLS, 0) or 0)
            key_ = owner.get(str(R.attr(rec, GDB_STATEMENT_SPAN_ID) or rec.get("parent_span_id")))
            if key_ is not None and cells:
                by[key_].masked_cells += cells
    return sorted(by.values(), key=lambda s: (-s.statements, s.subject))
