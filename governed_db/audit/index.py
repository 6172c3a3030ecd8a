"""A SQLite sidecar index over the statements of a store, so that search and who-touched need not read it all.

``<store>.index.sqlite`` maps each statement (an intent and its outcome, or a
whole-span record) to where its lines are, with the fields the filters use:
time, identity, kind, environment, decision, operation, tables, rules, the
normalised statement text and the columns recorded. It is brought up to date
incrementally before each query (only bytes appended since the last update
are read; files are recognised by store id and first ``seq``, so a rename by
rotation costs nothing) and it can be built ahead with ``governed-db audit index``.

The index is a cache, never evidence: ``verify`` does not read it, a query
uses it only to find *candidates*, and every candidate is read back from the
store and checked with :meth:`Query.matches` — so a search answers exactly what
a full scan answers. If the store was rewritten below what was indexed, the
index notices (it keeps a digest of the bytes it last read) and rebuilds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from governed_db.audit import records as R
from governed_db.audit.segments import _first_record, _open_segment, raw_lines, store_files
from governed_db.audit.store import store_path
from governed_db.semconv import (
    DB_OPERATION_NAME,
    DB_QUERY_TEXT,
    DB_SYSTEM_NAME,
    GDB_COLUMNS,
    GDB_ENVIRONMENT,
    GDB_IDENTITY_KIND,
    GDB_IDENTITY_ON_BEHALF_OF,
    GDB_IDENTITY_SUBJECT,
    GDB_MASKED_COLUMNS,
    GDB_REFUSED,
    GDB_TABLES,
)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE IF NOT EXISTS files (store TEXT, first_seq INTEGER, name TEXT, indexed_to INTEGER, tail TEXT,
                                  PRIMARY KEY (store, first_seq));
CREATE TABLE IF NOT EXISTS texts (id INTEGER PRIMARY KEY, text TEXT, sys TEXT, UNIQUE (text, sys));
CREATE TABLE IF NOT EXISTS stmt (
    seq INTEGER PRIMARY KEY, pos INTEGER, ffirst INTEGER, off INTEGER, offirst INTEGER, ooff INTEGER,
    time INTEGER, subject TEXT, obo TEXT, who TEXT, kind TEXT, env TEXT, decision TEXT, op TEXT,
    refused INTEGER, text_id INTEGER, tables TEXT, cols TEXT, ocols TEXT);
CREATE TABLE IF NOT EXISTS stmt_table (seq INTEGER, last TEXT);
CREATE TABLE IF NOT EXISTS stmt_rule (seq INTEGER, rule TEXT);
CREATE INDEX IF NOT EXISTS stmt_subject ON stmt (subject);
CREATE INDEX IF NOT EXISTS stmt_obo ON stmt (obo);
CREATE INDEX IF NOT EXISTS stmt_time ON stmt (time);
CREATE INDEX IF NOT EXISTS stmt_pos ON stmt (pos);
CREATE INDEX IF NOT EXISTS stmt_decision ON stmt (decision);
CREATE INDEX IF NOT EXISTS stmt_env ON stmt (env);
CREATE INDEX IF NOT EXISTS stmt_table_last ON stmt_table (last, seq);
CREATE INDEX IF NOT EXISTS stmt_rule_rule ON stmt_rule (rule, seq);
"""
_TAIL = 256  # bytes before the indexed end whose digest tells an appended file from a rewritten one
_BATCH = 20_000


def index_path(store: Path) -> Path:
    return store.with_name(store.name + ".index.sqlite")


def _last(name: str) -> str:
    return name.strip('"`').lower().rsplit(".", 1)[-1]


class Index:
    """The sidecar index of one store (open it with :func:`open_index`)."""

    def __init__(self, store: Path, db: sqlite3.Connection) -> None:
        self.store = store
        self.db = db
        self._texts: dict[tuple[str, str], int] = {}

    def close(self) -> None:
        self.db.close()

    # -- keeping up with the store ------------------------------------------------------------------
    def update(self) -> int:
        """Index what was appended since the last update; returns how many statements were added."""
        added = 0
        files = store_files(self.store)
        for f in files:
            head = _first_record(f)
            if head is None or not isinstance(head.get("seq"), int):
                continue
            added += self._update_file(f, str(head.get("store")), int(head["seq"]))
        return added

    def _update_file(self, f: Path, store_id: str, first_seq: int) -> int:
        db = self.db
        db.execute("BEGIN IMMEDIATE")  # one updater at a time; the others then find the work done
        try:
            row = db.execute("SELECT indexed_to, tail, name FROM files WHERE store = ? AND first_seq = ?",
                             (store_id, first_seq)).fetchone()
            start = 0
            if row is not None:
                start = int(row[0])
                if row[2] != f.name:
                    db.execute("UPDATE files SET name = ? WHERE store = ? AND first_seq = ?",
                               (f.name, store_id, first_seq))
                if start and _tail_digest(f, start) != row[1]:
                    raise _Stale(f"{f.name} changed below the indexed end")
            added, end = self._index_from(f, first_seq, start)
            if row is None:
                db.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?)",
                           (store_id, first_seq, f.name, end, _tail_digest(f, end)))
            elif end != start:
                db.execute("UPDATE files SET indexed_to = ?, tail = ? WHERE store = ? AND first_seq = ?",
                           (end, _tail_digest(f, end), store_id, first_seq))
            db.execute("COMMIT")
            return added
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _index_from(self, f: Path, first_seq: int, start: int) -> tuple[int, int]:
        stmts: list[tuple[Any, ...]] = []
        tables: list[tuple[int, str]] = []
        rules: list[tuple[int, str]] = []
        outcomes: list[tuple[Any, ...]] = []
        end = start
        added = 0
        for offset, line in _lines_from(f, start):
            if not line.endswith(b"\n"):
                break  # a torn or still-being-written last line: indexed once it is complete
            end = offset + len(line)
            rec = R.parse_line(line)
            if rec is None or type(rec.get("seq")) is not int:
                continue
            kind = rec.get("type")
            if kind == R.OUTCOME and isinstance(rec.get("intent"), int):
                outcomes.append(self._outcome_row(rec, first_seq, offset))
            elif kind == R.INTENT or (kind == R.SPAN and R.is_statement(rec)):
                seq = int(rec["seq"])
                stmts.append(self._statement_row(rec, first_seq, offset, whole=kind == R.SPAN))
                for t in R.as_list(R.attr(rec, GDB_TABLES)):
                    tables.append((seq, _last(t)))
                for r in R.as_list(R.attr(rec, "governed_db.rules")):
                    rules.append((seq, r))
                added += 1
            if len(stmts) + len(outcomes) >= _BATCH:
                self._flush(stmts, tables, rules, outcomes)
        self._flush(stmts, tables, rules, outcomes)
        return added, end

    def _flush(self, stmts: list[tuple[Any, ...]], tables: list[tuple[int, str]], rules: list[tuple[int, str]],
               outcomes: list[tuple[Any, ...]]) -> None:
        db = self.db
        if stmts:
            db.executemany("INSERT OR REPLACE INTO stmt VALUES "
                           "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", stmts)
            db.executemany("INSERT INTO stmt_table VALUES (?, ?)", tables)
            db.executemany("INSERT INTO stmt_rule VALUES (?, ?)", rules)
        if outcomes:
            db.executemany("UPDATE stmt SET pos = ?, offirst = ?, ooff = ?, refused = max(refused, ?), ocols = ? "
                           "WHERE seq = ?", outcomes)
        stmts.clear()
        tables.clear()
        rules.clear()
        outcomes.clear()

    def _statement_row(self, rec: dict[str, Any], first_seq: int, offset: int, *, whole: bool) -> tuple[Any, ...]:
        attrs = rec.get("attrs")
        get = attrs.get if type(attrs) is dict else {}.get
        seq = int(rec["seq"])
        text = str(get(DB_QUERY_TEXT, ""))
        system = str(get(DB_SYSTEM_NAME, ""))
        key = (text, system)
        text_id = self._texts.get(key)
        if text_id is None:
            self.db.execute("INSERT OR IGNORE INTO texts (text, sys) VALUES (?, ?)", key)
            text_id = int(self.db.execute("SELECT id FROM texts WHERE text = ? AND sys = ?", key).fetchone()[0])
            if len(self._texts) > 100_000:
                self._texts.clear()
            self._texts[key] = text_id
        t = rec.get("time")
        subject = get(GDB_IDENTITY_SUBJECT)
        decision = get("governed_db.decision")
        return (seq, seq if whole else None, first_seq, offset, None, None, t if isinstance(t, int) else None,
                _text(subject), _text(get(GDB_IDENTITY_ON_BEHALF_OF)), R.subject(rec),
                str(get(GDB_IDENTITY_KIND, "?")), _text(get(GDB_ENVIRONMENT)), _text(decision),
                str(get(DB_OPERATION_NAME, "?")), int(bool(get(GDB_REFUSED)) or decision == "deny"),
                text_id, _dumps(R.as_list(get(GDB_TABLES))), _cols(get), "[]")

    @staticmethod
    def _outcome_row(rec: dict[str, Any], first_seq: int, offset: int) -> tuple[Any, ...]:
        attrs = rec.get("attrs")
        get = attrs.get if type(attrs) is dict else {}.get
        return (int(rec["seq"]), first_seq, offset, int(bool(get(GDB_REFUSED))), _cols(get),
                int(rec["intent"]))

    # -- queries ---------------------------------------------------------------------------------------
    def candidates(self, q: Any, *, newest_first: bool = False) -> Iterator[tuple[int, int, int | None, int | None]]:
        """``(ffirst, off, offirst, ooff)`` of statements that may match ``q``, in full-scan order.

        That order is: statements by the position of their outcome (a whole-span record is its own), then
        those whose outcome is unknown, by intent. Two queries, so each can walk an index.
        """
        where, args = _where(q)
        select = "SELECT ffirst, off, offirst, ooff FROM stmt s WHERE"
        done = f"{select} {where} AND s.pos IS NOT NULL ORDER BY s.pos"
        unknown = f"{select} {where} AND s.pos IS NULL ORDER BY s.seq"
        for sql in ((unknown + " DESC", done + " DESC") if newest_first else (done, unknown)):
            yield from self.db.execute(sql, args)

    def groups(self, q: Any) -> list[tuple[Any, ...]]:
        """Statements matching ``q`` (table and column not yet checked exactly) grouped for who-touched."""
        where, args = _where(q)
        sql = ("SELECT s.who, s.kind, s.op, t.text, t.sys, s.tables, s.cols, s.ocols, s.refused, count(*), "
               f"min(s.time), max(s.time) FROM stmt s JOIN texts t ON t.id = s.text_id WHERE {where} "
               "GROUP BY s.who, s.kind, s.op, s.text_id, s.tables, s.cols, s.ocols, s.refused")
        return list(self.db.execute(sql, args))


class _Stale(Exception):
    """The store changed under the index (rewritten, or replaced): it is rebuilt."""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None if value is None else str(value)


def _dumps(value: list[str]) -> str:
    return orjson.dumps(value).decode() if value else "[]"


def _cols(get: Any) -> str:
    """The column names a record carries (what ``search.columns_of`` reads), as JSON."""
    return _dumps(R.as_list(get(GDB_MASKED_COLUMNS)) + R.as_list(get(GDB_COLUMNS)))


def _where(q: Any) -> tuple[str, list[Any]]:
    clauses, args = ["1"], []
    if q.identity is not None:
        clauses.append("(s.subject = ? OR s.obo = ?)")
        args += [q.identity, q.identity]
    for column, value in (("kind", q.kind), ("env", q.environment), ("decision", q.decision)):
        if value is not None:
            clauses.append(f"s.{column} = ?")
            args.append(value)
    if q.since is not None:
        clauses.append("s.time >= ?")
        args.append(q.since)
    if q.until is not None:
        clauses.append("s.time <= ?")
        args.append(q.until)
    if q.table is not None:
        clauses.append("s.seq IN (SELECT seq FROM stmt_table WHERE last = ?)")
        args.append(_last(q.table))
    if q.rule is not None:
        clauses.append("s.seq IN (SELECT seq FROM stmt_rule WHERE rule = ?)")
        args.append(q.rule)
    return " AND ".join(clauses), args


def _tail_digest(f: Path, end: int) -> str:
    start = max(0, end - _TAIL)
    with _open_segment(f) as fh:
        fh.seek(start)
        return hashlib.sha256(fh.read(end - start)).hexdigest()


def _lines_from(f: Path, start: int) -> Iterator[tuple[int, bytes]]:
    if start == 0:
        yield from raw_lines(f)
        return
    limit = R.MAX_LINE + 1
    offset = start
    with _open_segment(f) as fh:
        fh.seek(start)
        while True:
            line = fh.readline(limit)
            if not line:
                return
            yield offset, line
            offset += len(line)


def open_index(store: str | os.PathLike[str], *, update: bool = True, rebuild: bool = False) -> Index:
    """The index of ``store``, created if missing and (by default) brought up to date.

    Raises ``sqlite3.Error`` or ``OSError`` when it cannot be (a read-only directory, say): callers then
    fall back to reading the store front to back.
    """
    p = store_path(store)
    target = index_path(p)
    if rebuild:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(target) + suffix)
    db = sqlite3.connect(target, isolation_level=None, timeout=30)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        version = db.execute("SELECT v FROM meta WHERE k = 'schema'").fetchone()
        if version is None:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif version[0] != str(SCHEMA_VERSION):
            db.close()
            return open_index(store, update=update, rebuild=True)
    except BaseException:
        db.close()
        raise
    index = Index(p, db)
    if update:
        try:
            index.update()
        except _Stale:
            index.close()
            return open_index(store, update=update, rebuild=True)
    return index


class LineReader:
    """Reads single lines by file and offset (files named by their first ``seq``)."""

    def __init__(self, store: Path) -> None:
        self.files: dict[int, Path] = {}
        for f in store_files(store):
            head = _first_record(f)
            if head is not None and isinstance(head.get("seq"), int):
                self.files[int(head["seq"])] = f
        self._open: dict[int, Any] = {}

    def record(self, first_seq: int | None, offset: int | None) -> dict[str, Any] | None:
        if first_seq is None or offset is None:
            return None
        fh = self._open.get(first_seq)
        if fh is None:
            f = self.files.get(first_seq)
            if f is None:
                return None
            fh = self._open[first_seq] = _open_segment(f)
        fh.seek(offset)
        line = fh.readline(R.MAX_LINE + 1)
        return R.parse_line(line) if line.endswith(b"\n") else None

    def close(self) -> None:
        for fh in self._open.values():
            fh.close()
        self._open.clear()
