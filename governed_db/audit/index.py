"""A SQLite sidecar index over the statements of a store, so that search and who-touched need not read it all.

``<store>.index.sqlite`` maps each statement (an intent and its outcome, or a
whole-span record) to where its lines are, with the fields the filters use:
time, identity, kind, environment, decision, operation, tables, rules, the
normalised statement text and the columns recorded. It is brought up to date
incrementally before each query (only bytes appended since the last update
are read; files are recognised by store id and first ``seq``, so a rename by
rotation costs nothing) and it can be built ahead with ``governed-db audit index``.

The index is a cache, never evidence: a query uses it only to find
*candidates*, and every candidate is read back from the store and checked with
:meth:`Query.matches`; who-touched sums its counts. If the store was rewritten
below what was indexed, the index notices (it keeps a digest of the bytes it
last read) and rebuilds. Every write is sealed (:mod:`governed_db.audit.index_seal`):
an index that is not byte for byte what its seal names — or, with the audit
key, whose seal is not authentic — is rebuilt before anything is answered from it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from governed_db.audit import records as R
from governed_db.audit.index_seal import (
    SCHEMA_VERSION,
    Coverage,
    locked,
    seal_problem,
    tail_digest,
    write_seal,
)
from governed_db.audit.index_seal import index_path as index_path
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE IF NOT EXISTS files (store TEXT, first_seq INTEGER, name TEXT, indexed_to INTEGER, tail TEXT,
                                  PRIMARY KEY (store, first_seq));
CREATE TABLE IF NOT EXISTS texts (id INTEGER PRIMARY KEY, text TEXT, sys TEXT, UNIQUE (text, sys));
CREATE TABLE IF NOT EXISTS shape (id INTEGER PRIMARY KEY, text_id INTEGER, tables TEXT, cols TEXT,
                                  UNIQUE (text_id, tables, cols));
CREATE TABLE IF NOT EXISTS parsed (analyser TEXT, text_id INTEGER, cols TEXT, PRIMARY KEY (analyser, text_id))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS shape_table (last TEXT, shape INTEGER, PRIMARY KEY (last, shape)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stmt (
    seq INTEGER PRIMARY KEY, ffirst INTEGER, off INTEGER, offirst INTEGER, ooff INTEGER,
    time INTEGER, subject TEXT, obo TEXT, who TEXT, kind TEXT, env TEXT, decision TEXT, op TEXT,
    refused INTEGER, is_stmt INTEGER, shape INTEGER);
CREATE TABLE IF NOT EXISTS stmt_table (seq INTEGER, last TEXT);
CREATE TABLE IF NOT EXISTS stmt_rule (seq INTEGER, rule TEXT);
CREATE TABLE IF NOT EXISTS touch (shape INTEGER, hour INTEGER, who TEXT, kind TEXT, op TEXT, refused INTEGER,
                                  n INTEGER, first INTEGER, last INTEGER,
                                  PRIMARY KEY (shape, hour, who, kind, op, refused)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS stmt_subject ON stmt (subject);
CREATE INDEX IF NOT EXISTS stmt_obo ON stmt (obo);
CREATE INDEX IF NOT EXISTS stmt_time ON stmt (time);
CREATE INDEX IF NOT EXISTS stmt_done ON stmt (offirst, ooff);
CREATE INDEX IF NOT EXISTS stmt_open ON stmt (ffirst, off) WHERE ooff IS NULL;
CREATE INDEX IF NOT EXISTS stmt_decision ON stmt (decision);
CREATE INDEX IF NOT EXISTS stmt_env ON stmt (env);
CREATE INDEX IF NOT EXISTS stmt_table_last ON stmt_table (last, seq);
CREATE INDEX IF NOT EXISTS stmt_rule_rule ON stmt_rule (rule, seq);
CREATE INDEX IF NOT EXISTS stmt_table_seq ON stmt_table (seq);
CREATE INDEX IF NOT EXISTS stmt_rule_seq ON stmt_rule (seq);
"""
log = logging.getLogger("governed_db.audit")
_BATCH = 20_000
_OPEN_MAX = 100_000  # intents awaiting their outcome kept in memory; older ones are read back from the store
#: ``touch`` counts statements per hour of their start; a query bounded by time reads single statements only for
#: the hour it starts or ends in
HOUR = 3_600_000_000_000
#: the ``hour`` of statements without a time (they never match --since/--until)
NO_HOUR = -(1 << 62)
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _last(name: str) -> str:
    return name.strip('"`').lower().rsplit(".", 1)[-1]


class Index:
    """The sidecar index of one store (open it with :func:`open_index`)."""

    def __init__(self, store: Path, db: sqlite3.Connection, key: bytes | None = None) -> None:
        self.store = store
        self.db = db
        #: the audit key the index is sealed with (None: sealed with a hash only)
        self.key = key
        #: statements the update made by :func:`open_index` added
        self.added = 0
        self._texts: dict[tuple[str, str], int] = {}
        self._shapes: dict[tuple[int, str, str], int] = {}
        #: why the index cannot answer exactly what a full read answers (queries then read the store), or None
        self.inexact: str | None = None
        row = db.execute("SELECT v FROM meta WHERE k = 'inexact'").fetchone()
        if row is not None:
            self.inexact = str(row[0])
        #: intents seen in this update with no outcome yet: seq -> (record, file, offset)
        self._open: dict[int, tuple[dict[str, Any], int, int]] = {}
        self._reader: LineReader | None = None  # reads back intents indexed by an earlier update
        #: index each file only up to this offset (files not named: not at all) — to rebuild what another index
        #: covers, and compare
        self.upto: dict[tuple[str, int], int] | None = None
        self._reset_batch()

    def close(self) -> None:
        self.db.close()

    def statements(self) -> int:
        """How many statements the index holds."""
        return int(self.db.execute("SELECT count(*) FROM stmt WHERE is_stmt = 1").fetchone()[0])

    # -- keeping up with the store ------------------------------------------------------------------
    def update(self) -> int:
        """Index what was appended since the last update and seal the index again; returns how many statements
        were added. Raises ``sqlite3.DatabaseError`` when the index is no longer the one sealed (then it is not
        used: :func:`open_index` rebuilds it)."""
        with locked(self.store):
            problem = seal_problem(self.store, index_path(self.store), SCHEMA_VERSION, self.key)
            if problem is not None:
                raise sqlite3.DatabaseError(f"the search index is not trusted: {problem}")
            return self._update_sealed()

    def coverage(self) -> list[Coverage]:
        """What of the store the index holds: (store id, first seq, indexed up to, digest of the bytes before)."""
        return [(str(s), int(first), int(end), str(tail)) for s, first, end, tail in self.db.execute(
            "SELECT store, first_seq, indexed_to, tail FROM files ORDER BY first_seq, store")]

    def seal(self) -> None:
        """Seal the index as it is now (the lock held; every write ends with this)."""
        write_seal(self.store, index_path(self.store), SCHEMA_VERSION, self.coverage(), self.key)

    def _update_sealed(self) -> int:
        before = self.db.total_changes
        try:
            return self._update()
        finally:
            if self.db.total_changes != before:
                self.seal()

    def _update(self) -> int:
        added = 0
        files = store_files(self.store)
        heads: list[tuple[str, int, Path]] = []
        for f in files:
            head = _first_record(f)
            if head is None or not isinstance(head.get("seq"), int):
                continue
            heads.append((str(head.get("store")), int(head["seq"]), f))
        firsts = [first for _, first, _ in heads]
        if any(a >= b for a, b in itertools.pairwise(firsts)) or not all(
                _INT64[0] <= s <= _INT64[1] for s in firsts):
            # the index places records by (first seq of their file, offset): files out of seq order (or two
            # with one first seq) would put them in another order than a full read
            self.inexact = "the store's files are not in seq order"
            return 0
        self._forget_removed({(s, first) for s, first, _ in heads})
        self._open.clear()
        try:
            for store_id, first_seq, f in heads:
                stop = None if self.upto is None else self.upto.get((store_id, first_seq), -1)
                if stop != -1:
                    added += self._update_file(f, store_id, first_seq, stop)
        finally:
            self._open.clear()
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        return added

    def _forget_removed(self, present: set[tuple[str, int]]) -> None:
        """Drop what the index holds of files no longer in the store (retention removed the oldest)."""
        indexed = {(str(s), int(first)) for s, first in self.db.execute("SELECT store, first_seq FROM files")}
        gone = indexed - present
        if not gone:
            return
        if present and max(first for _, first in gone) > min(first for _, first in present):
            raise _Stale("a file in the middle of the store was removed")
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for store_id, first in gone:
                db.execute("DELETE FROM stmt_table WHERE seq IN (SELECT seq FROM stmt WHERE ffirst = ?)", (first,))
                db.execute("DELETE FROM stmt_rule WHERE seq IN (SELECT seq FROM stmt WHERE ffirst = ?)", (first,))
                db.execute("DELETE FROM stmt WHERE ffirst = ?", (first,))
                db.execute("DELETE FROM files WHERE store = ? AND first_seq = ?", (store_id, first))
            db.execute("DELETE FROM touch")
            db.execute(f"INSERT INTO touch SELECT shape, CASE WHEN time IS NULL THEN {NO_HOUR} "
                       f"ELSE (time - ((time % {HOUR}) + {HOUR}) % {HOUR}) / {HOUR} END AS h, who, kind, op, "
                       "refused, count(*), min(time), max(time) FROM stmt WHERE is_stmt = 1 AND ooff IS NOT NULL "
                       "GROUP BY shape, h, who, kind, op, refused")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _update_file(self, f: Path, store_id: str, first_seq: int, stop: int | None) -> int:
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
                if start and tail_digest(f, start) != row[1]:
                    raise _Stale(f"{f.name} changed below the indexed end")
            added, end = self._index_from(f, first_seq, start, stop)
            if row is None:
                db.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?)",
                           (store_id, first_seq, f.name, end, tail_digest(f, end)))
            elif end != start:
                db.execute("UPDATE files SET indexed_to = ?, tail = ? WHERE store = ? AND first_seq = ?",
                           (end, tail_digest(f, end), store_id, first_seq))
            if self.inexact is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('inexact', ?)", (self.inexact,))
            db.execute("COMMIT")
            return added
        except BaseException:
            db.execute("ROLLBACK")
            self._open.clear()
            self._reset_batch()
            raise

    def _index_from(self, f: Path, first_seq: int, start: int, stop: int | None = None) -> tuple[int, int]:
        """Index the lines of ``f`` from byte ``start``; reads them as :func:`store.read_records` does (pieces of
        an oversized line skipped, a torn last line left for later), pairing outcomes with their intents."""
        end = start
        added = 0
        continued = False
        limit = R.MAX_LINE
        for offset, line in _lines_from(f, start):
            if stop is not None and offset >= stop:
                break
            complete = line.endswith(b"\n")
            if continued or len(line) > limit:  # a piece of an oversized (damaged) line
                continued = not complete
                if complete:
                    end = offset + len(line)
                continue
            if not complete:
                break  # a torn or still-being-written last line: indexed once it is complete
            end = offset + len(line)
            rec = R.parse_line(line)
            if rec is None:
                continue
            kind = rec.get("type")
            if kind == R.OUTCOME:
                self._outcome(rec, first_seq, offset)
            elif kind == R.INTENT:
                seq = rec.get("seq")
                if isinstance(seq, int):  # (a full read pairs only intents with a seq)
                    added += self._statement(rec, int(seq), first_seq, offset, None)
            elif kind == R.SPAN and R.is_statement(rec):
                seq = rec.get("seq")
                if type(seq) is not int or not _INT64[0] <= seq <= _INT64[1]:
                    self.inexact = "a statement record without a usable seq"
                    continue
                added += self._statement(rec, seq, first_seq, offset, (first_seq, offset))
            if len(self._new) + len(self._settled) >= _BATCH:
                self._flush()
        self._flush()
        return added, end

    def _reset_batch(self) -> None:
        #: statements first seen in this batch: seq -> (record, file, offset, where its outcome is)
        self._new: dict[int, tuple[dict[str, Any], int, int, tuple[int, int] | None]] = {}
        self._settled: list[tuple[Any, ...]] = []  # statements indexed earlier whose outcome came in this batch
        self._tables: list[tuple[int, str]] = []
        self._rules: list[tuple[int, str]] = []
        self._retable: list[tuple[int, list[str], list[str]]] = []  # statements whose outcome set tables/rules
        self._touch: dict[tuple[Any, ...], list[Any]] = {}

    def _statement(self, rec: dict[str, Any], seq: int, first_seq: int, offset: int,
                   done: tuple[int, int] | None) -> int:
        """A statement first seen: an intent (``done`` None, its outcome not yet read) or a whole-span record."""
        if not _INT64[0] <= seq <= _INT64[1]:
            self.inexact = "a statement with a seq out of range"
            return 0
        if seq in self._new or seq in self._open:
            self.inexact = f"two statements with seq {seq}"
            return 0
        # its row is made when the batch is written: an outcome in the same batch is merged in first
        self._new[seq] = (rec, first_seq, offset, done)
        if done is None:
            self._open[seq] = (rec, first_seq, offset)
        return 1

    def _outcome(self, rec: dict[str, Any], first_seq: int, offset: int) -> None:
        """Pair an outcome with its intent as a full read does: the first outcome after the intent wins."""
        seq = rec.get("intent")
        if not isinstance(seq, int) or not _INT64[0] <= seq <= _INT64[1]:
            return
        found = self._open.pop(seq, None)
        if found is None:
            found = self._read_open_intent(seq, first_seq, offset)
            if found is None:
                return
        intent, ffirst, off = found
        try:
            merged = R.merged(intent, rec)
        except (TypeError, ValueError):  # attributes that are not a mapping: a full read stumbles on them too
            self.inexact = f"statement {seq} has attributes that are not a mapping"
            return
        if seq in self._new:
            self._new[seq] = (merged, ffirst, off, (first_seq, offset))
            return
        self._settled.append(self._row(merged, seq, ffirst, off, (first_seq, offset)))
        extra = rec.get("attrs")
        if isinstance(extra, dict) and (GDB_TABLES in extra or "governed_db.rules" in extra):
            # a full read merges the outcome's attributes over the intent's: its tables and rules win
            self._retable.append((seq, R.as_list(R.attr(merged, GDB_TABLES)),
                                  R.as_list(R.attr(merged, "governed_db.rules"))))

    def _read_open_intent(self, seq: int, first_seq: int, offset: int) -> tuple[dict[str, Any], int, int] | None:
        """An intent indexed in an earlier update that is still waiting for its outcome, read back from the store."""
        row = self.db.execute("SELECT ffirst, off FROM stmt WHERE seq = ? AND ooff IS NULL AND (ffirst, off) < (?, ?)",
                              (seq, first_seq, offset)).fetchone()
        if row is None:
            return None
        if self._reader is None:
            self._reader = LineReader(self.store)
        intent = self._reader.record(int(row[0]), int(row[1]))
        if intent is None or intent.get("type") != R.INTENT or intent.get("seq") != seq:
            raise _Stale(f"the intent of statement {seq} is not where the index has it")
        return intent, int(row[0]), int(row[1])

    def _row(self, rec: dict[str, Any], seq: int, first_seq: int, offset: int,
             done: tuple[int, int] | None) -> tuple[Any, ...]:
        """The index row of one statement, from the record a full read yields for it (intent and outcome merged)."""
        attrs = rec.get("attrs")
        get = attrs.get if type(attrs) is dict else {}.get
        text = str(get(DB_QUERY_TEXT, ""))
        system = str(get(DB_SYSTEM_NAME, ""))
        text_id = self._text_id(text, system)
        tables = _dumps(R.as_list(get(GDB_TABLES)))
        shape = self._shape_id(text_id, tables, _dumps(R.as_list(get(GDB_MASKED_COLUMNS)) + R.as_list(get(GDB_COLUMNS))))
        t = rec.get("time")
        if not isinstance(t, int):
            t = None
        elif not _INT64[0] <= t <= _INT64[1]:
            self.inexact = "a statement time out of range"
            t = None
        decision = get("governed_db.decision")
        # what R.is_statement, R.subject and R.is_refused say of the merged record (an intent alone is merged
        # with no outcome: the same attributes)
        is_stmt = rec.get("type") in (R.SPAN, R.INTENT) and decision is not None
        who = str(get(GDB_IDENTITY_SUBJECT) or get("enduser.id") or "?")
        kind, op = str(get(GDB_IDENTITY_KIND, "?")), str(get(DB_OPERATION_NAME, "?"))
        refused = int(bool(get(GDB_REFUSED)) or decision == "deny")
        if done is not None and is_stmt:
            key = (shape, NO_HOUR if t is None else t // HOUR, who, kind, op, refused)
            agg = self._touch.get(key)
            if agg is None:
                self._touch[key] = [1, t, t]
            else:
                agg[0] += 1
                if t is not None:
                    agg[1] = t if agg[1] is None else min(agg[1], t)
                    agg[2] = t if agg[2] is None else max(agg[2], t)
        return (seq, first_seq, offset, None if done is None else done[0], None if done is None else done[1], t,
                _text(get(GDB_IDENTITY_SUBJECT)), _text(get(GDB_IDENTITY_ON_BEHALF_OF)), who, kind,
                _text(get(GDB_ENVIRONMENT)), _text(decision), op, refused, int(is_stmt), shape)

    def _text_id(self, text: str, system: str) -> int:
        key = (text, system)
        text_id = self._texts.get(key)
        if text_id is None:
            self.db.execute("INSERT OR IGNORE INTO texts (text, sys) VALUES (?, ?)", key)
            text_id = int(self.db.execute("SELECT id FROM texts WHERE text = ? AND sys = ?", key).fetchone()[0])
            if len(self._texts) > 100_000:
                self._texts.clear()
            self._texts[key] = text_id
        return text_id

    def _shape_id(self, text_id: int, tables: str, cols: str) -> int:
        """Statements that differ only by who ran them and when share a shape: who-touched decides once per shape
        whether it touches the table and column asked about."""
        key = (text_id, tables, cols)
        shape = self._shapes.get(key)
        if shape is None:
            db = self.db
            found = db.execute("SELECT id FROM shape WHERE text_id = ? AND tables = ? AND cols = ?", key).fetchone()
            if found is None:
                shape = int(db.execute("INSERT INTO shape (text_id, tables, cols) VALUES (?, ?, ?)", key).lastrowid
                            or 0)
                db.executemany("INSERT OR IGNORE INTO shape_table VALUES (?, ?)",
                               [(_last(t), shape) for t in orjson.loads(tables)])
            else:
                shape = int(found[0])
            if len(self._shapes) > 100_000:
                self._shapes.clear()
            self._shapes[key] = shape
        return shape

    def _flush(self) -> None:
        db = self.db
        if self._new:
            rows = []
            for seq, (rec, ffirst, off, done) in self._new.items():
                rows.append(self._row(rec, seq, ffirst, off, done))
                for t in R.as_list(R.attr(rec, GDB_TABLES)):
                    self._tables.append((seq, _last(t)))
                for r in R.as_list(R.attr(rec, "governed_db.rules")):
                    self._rules.append((seq, r))
            before = db.total_changes  # (making rows may add texts and shapes)
            db.executemany("INSERT OR IGNORE INTO stmt VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            if db.total_changes - before != len(rows):
                self.inexact = "two statements with one seq"
            db.executemany("INSERT INTO stmt_table VALUES (?, ?)", self._tables)
            db.executemany("INSERT INTO stmt_rule VALUES (?, ?)", self._rules)
        if self._settled:
            db.executemany("UPDATE stmt SET offirst = ?, ooff = ?, time = ?, subject = ?, obo = ?, who = ?, kind = ?, "
                           "env = ?, decision = ?, op = ?, refused = ?, is_stmt = ?, shape = ? WHERE seq = ?",
                           [(*r[3:], r[0]) for r in self._settled])
        for seq, tables, rules in self._retable:
            db.execute("DELETE FROM stmt_table WHERE seq = ?", (seq,))
            db.execute("DELETE FROM stmt_rule WHERE seq = ?", (seq,))
            db.executemany("INSERT INTO stmt_table VALUES (?, ?)", [(seq, _last(t)) for t in tables])
            db.executemany("INSERT INTO stmt_rule VALUES (?, ?)", [(seq, r) for r in rules])
        if self._touch:
            db.executemany("INSERT INTO touch VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                           "n = n + excluded.n, first = coalesce(min(first, excluded.first), first, excluded.first), "
                           "last = coalesce(max(last, excluded.last), last, excluded.last)",
                           [(*k, *v) for k, v in self._touch.items()])
        if len(self._open) > _OPEN_MAX:
            self._open.clear()  # they are in the index; an outcome still to come reads its intent back
        self._reset_batch()

    # -- queries ---------------------------------------------------------------------------------------
    def candidates(self, q: Any, *, newest_first: bool = False) -> Iterator[tuple[int, int, int | None, int | None]]:
        """``(ffirst, off, offirst, ooff)`` of statements that may match ``q``, in full-scan order.

        That order is: statements by the position of their outcome (a whole-span record is its own), then
        those whose outcome is unknown, by the position of their intent. Two queries, so each can walk an index.
        """
        where, args = _where(q)
        select = "SELECT ffirst, off, offirst, ooff FROM stmt s WHERE"
        done = f"{select} {where} AND s.ooff IS NOT NULL ORDER BY s.offirst, s.ooff"
        unknown = f"{select} {where} AND s.ooff IS NULL ORDER BY s.ffirst, s.off"
        if newest_first:
            done, unknown = (done.replace("s.offirst, s.ooff", "s.offirst DESC, s.ooff DESC"),
                             unknown.replace("s.ffirst, s.off", "s.ffirst DESC, s.off DESC"))
        for sql in ((unknown, done) if newest_first else (done, unknown)):
            yield from self.db.execute(sql, args)

    def shapes(self, table: str | None) -> Iterator[tuple[int, int, str, str, str, str]]:
        """``(shape, text id, text, system, tables, columns)`` of statement shapes naming a table whose last part
        is ``table``'s (every shape for None)."""
        sql = "SELECT sh.id, t.id, t.text, t.sys, sh.tables, sh.cols FROM shape sh JOIN texts t ON t.id = sh.text_id"
        if table is None:
            yield from self.db.execute(sql)
        else:
            yield from self.db.execute(f"{sql} JOIN shape_table st ON st.shape = sh.id WHERE st.last = ?",
                                       (_last(table),))

    def parsed(self, analyser: str, text_ids: Iterable[int]) -> dict[int, str]:
        """Column sets of statement texts that ``analyser`` (a version of the statement parser) worked out before."""
        wanted = list(text_ids)
        found: dict[int, str] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            found.update(self.db.execute(f"SELECT text_id, cols FROM parsed WHERE analyser = ? AND text_id IN "
                                         f"({', '.join('?' * len(chunk))})", (analyser, *chunk)))
        return found

    def remember_parsed(self, analyser: str, cols: dict[int, str]) -> None:
        """Keep column sets worked out by ``analyser``, so that the next query needs no parser (best effort: not
        when the index changed since it was checked — it is then checked again by the next query)."""
        with contextlib.suppress(sqlite3.Error, OSError), locked(self.store):
            if seal_problem(self.store, index_path(self.store), SCHEMA_VERSION, self.key) is not None:
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany("INSERT OR REPLACE INTO parsed VALUES (?, ?, ?)",
                                    [(analyser, k, v) for k, v in cols.items()])
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.seal()

    def touches(self, shapes: Iterable[int], since: int | None, until: int | None
                ) -> list[tuple[str, str, str, int, int, int | None, int | None]]:
        """``(identity, kind, operation, refused, statements, first, last)`` of the statements of ``shapes``
        that started between ``since`` and ``until``: whole hours from the ``touch`` counts, the hours
        ``since`` and ``until`` fall in and statements whose outcome is not known yet from single statements."""
        if (since is not None and since > _INT64[1]) or (until is not None and until < _INT64[0]):
            return []  # no time the index holds is that late (or early)
        since = None if since is None else max(since, _INT64[0])
        until = None if until is None else min(until, _INT64[1])
        db = self.db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM temp.wanted")
        db.executemany("INSERT OR IGNORE INTO temp.wanted VALUES (?)", ((s,) for s in shapes))
        cols = "who, kind, op, refused"
        out: list[tuple[Any, ...]] = []
        hours, args = ["1"], []
        if since is not None or until is not None:
            hours.append(f"hour != {NO_HOUR}")
        if since is not None:
            hours.append("hour > ?")
            args.append(since // HOUR)
        if until is not None:
            hours.append("hour < ?")
            args.append(until // HOUR)
        out += db.execute(f"SELECT {cols}, sum(n), min(first), max(last) FROM touch "
                          f"WHERE shape IN (SELECT id FROM temp.wanted) AND {' AND '.join(hours)} GROUP BY {cols}",
                          args)
        single = f"SELECT {cols}, count(*), min(time), max(time) FROM stmt WHERE is_stmt = 1 AND " \
                 "shape IN (SELECT id FROM temp.wanted)"
        for lo, hi in _edge_ranges(since, until):
            out += db.execute(f"{single} AND ooff IS NOT NULL AND time >= ? AND time <= ? GROUP BY {cols}", (lo, hi))
        bounds, args = [], []
        if since is not None:
            bounds.append(" AND time >= ?")
            args.append(since)
        if until is not None:
            bounds.append(" AND time <= ?")
            args.append(until)
        out += db.execute(f"{single} AND ooff IS NULL{''.join(bounds)} GROUP BY {cols}", args)
        return [(str(w), str(k), str(o), int(r), int(n), f, la) for w, k, o, r, n, f, la in out]


def _edge_ranges(since: int | None, until: int | None) -> list[tuple[int, int]]:
    """The time ranges (inclusive) of the partial hours at the ends of ``[since, until]``, which ``touch``
    cannot answer."""
    if since is not None and until is not None and since > until:
        return []
    hs = None if since is None else since // HOUR
    hu = None if until is None else until // HOUR
    if hs is not None and hs == hu:
        return [(since, until)]  # type: ignore[list-item]
    ranges = []
    if since is not None and hs is not None:
        ranges.append((since, (hs + 1) * HOUR - 1))
    if until is not None and hu is not None:
        ranges.append((hu * HOUR, until))
    return ranges


class _Stale(Exception):
    """The store changed under the index (rewritten, or replaced): it is rebuilt."""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None if value is None else str(value)


def _dumps(value: list[str]) -> str:
    return orjson.dumps(value).decode() if value else "[]"


def _where(q: Any) -> tuple[str, list[Any]]:
    clauses, args = ["s.is_stmt = 1"], []
    if q.identity is not None:
        clauses.append("(s.subject = ? OR s.obo = ?)")
        args += [q.identity, q.identity]
    for column, value in (("kind", q.kind), ("env", q.environment), ("decision", q.decision)):
        if value is not None:
            clauses.append(f"s.{column} = ?")
            args.append(value)
    # (a bound beyond 64 bits is moved to the end of the range: every time the index holds is inside it)
    if q.since is not None:
        clauses.append("s.time >= ?" if q.since <= _INT64[1] else "0")
        args += [max(q.since, _INT64[0])] if q.since <= _INT64[1] else []
    if q.until is not None:
        clauses.append("s.time <= ?" if q.until >= _INT64[0] else "0")
        args += [min(q.until, _INT64[1])] if q.until >= _INT64[0] else []
    if q.table is not None:
        clauses.append("s.seq IN (SELECT seq FROM stmt_table WHERE last = ?)")
        args.append(_last(q.table))
    if q.rule is not None:
        clauses.append("s.seq IN (SELECT seq FROM stmt_rule WHERE rule = ?)")
        args.append(q.rule)
    return " AND ".join(clauses), args



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


def open_index(store: str | os.PathLike[str], *, update: bool = True, rebuild: bool = False,
               key: str | bytes | None = None) -> Index:
    """The index of ``store``, created if missing and (by default) brought up to date.

    An index that is not the one its seal names — edited, truncated, replaced, unsealed, or with ``key`` (default:
    ``$GOVERNED_DB_AUDIT_KEY``) not sealed with it — is rebuilt from the store, never read (a warning is logged).
    Raises ``sqlite3.Error`` or ``OSError`` when it cannot be (a read-only directory, say): callers then
    fall back to reading the store front to back.
    """
    p = store_path(store)
    kb = R.key_bytes(key) if key is not None else R.env_key()
    target = index_path(p)
    with locked(p):
        for attempt in range(3):
            index, fresh = _connect(p, target, kb, rebuild=rebuild or attempt > 0)
            try:
                if fresh:
                    index.seal()
                if update:
                    index.added = index._update_sealed()
            except _Stale:
                index.close()
                continue
            except BaseException:
                index.close()
                raise
            return index
    raise sqlite3.DatabaseError(f"the search index {target} kept changing under its update")


def _connect(p: Path, target: Path, key: bytes | None, *, rebuild: bool) -> tuple[Index, bool]:
    """The index file opened (the lock held), after its seal was checked: ``(index, whether it was made anew)``."""
    for _ in range(2):
        if rebuild:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(str(target) + suffix)
        existed = target.exists()
        db = sqlite3.connect(target, isolation_level=None, timeout=30)
        try:
            # the first read rolls back what a process that died mid-update left (the file is then as sealed)
            db.execute("PRAGMA journal_mode=DELETE")
            db.execute("PRAGMA synchronous=NORMAL")
            # the version is read before the schema is applied: another version's tables may lack its columns
            db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)")
            version = db.execute("SELECT v FROM meta WHERE k = 'schema'").fetchone()
            problem = None
            if existed and (version is None or version[0] != str(SCHEMA_VERSION)):
                problem = "another version's index"
            elif existed:
                problem = seal_problem(p, target, SCHEMA_VERSION, key)
                if problem is not None:
                    log.warning("governed_db audit: the search index %s is not trusted: %s; it is rebuilt from the "
                                "store", target, problem)
            if problem is not None:
                db.close()
                rebuild = True
                continue
            db.executescript(_SCHEMA)
            if version is None:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        except BaseException:
            db.close()
            raise
        return Index(p, db, key), not existed
    raise sqlite3.DatabaseError(f"the search index {target} cannot be rebuilt")


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
