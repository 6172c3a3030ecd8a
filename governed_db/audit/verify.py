"""Verify a store: every line, hash, link, MAC and the anchor — across rotated files, reporting every problem.

What each kind of tampering looks like to the verifier:

* an edited record, a duplicate key, re-spaced or re-escaped JSON: the line is not byte for byte the
  canonical encoding of what it parses to (and its hash no longer matches);
* a deleted record leaves a gap in ``seq`` and a ``prev`` that names no record;
* reordered or inserted records break ``seq`` order or the ``prev`` link;
* with the key, every format-2 record carries a ``tag`` (a keyed MAC of its hash, which covers all
  history before it): rewriting the file, dropping checkpoints and re-hashing, or forging records after
  the last checkpoint all need the key;
* cutting the file back past the anchored checkpoint leaves the anchor naming a record that is gone;
  the anchor itself is authenticated (HMAC) — it cannot be re-pointed without the key — and every
  checkpoint records what the anchor named when it was written, so an older anchor put back is seen.

A crash can leave half a record at the very end (power loss, or a writer killed in the middle of a large
write); that is reported as a torn tail, and everything before it still verifies. A complete last record
that lost only its newline is a record. The next writer terminates a fragment and chains a ``recovery``
record that accounts for its bytes.

Verification never stops at the first problem: damaged regions are reported and the chain is picked up
again at the next readable record, so one bad line does not hide the state of everything after it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from governed_db.audit import journal as J
from governed_db.audit import records as R
from governed_db.audit.index_check import check_index
from governed_db.audit.segments import raw_lines, store_files
from governed_db.audit.store import _read_anchor, anchor_path, store_path

#: problems kept in the result (all are counted)
MAX_PROBLEMS = 1000


@dataclass
class Problem:
    line: int
    seq: int | None
    offset: int
    message: str
    file: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (seq {self.seq})" if self.seq is not None else "")
        if self.file:
            where = f"{self.file} {where}"
        return f"{where}: {self.message}"


@dataclass
class VerifyResult:
    path: str
    ok: bool = True
    records: int = 0
    spans: int = 0
    statements: int = 0
    #: statements whose intent is recorded but whose outcome is not (a crash in between, or still running)
    outcome_unknown: int = 0
    checkpoints: int = 0
    macs_checked: int = 0
    last_seq: int | None = None
    last_hash: str | None = None
    first_bad: Problem | None = None
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["first_bad"] = str(self.first_bad) if self.first_bad else None
        d["first_bad_line"] = self.first_bad.line if self.first_bad else None
        d["problems"] = [str(p) for p in self.problems]
        return d

    def bad(self, line: int, seq: int | None, offset: int, message: str, file: str = "") -> None:
        self.ok = False
        self.problem_count += 1
        problem = Problem(line, seq, offset, message, file)
        if self.first_bad is None:
            self.first_bad = problem
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


def verify(path: str | os.PathLike[str], *, key: str | bytes | None = None, witness: Any = None,
           compare_index: bool = True) -> VerifyResult:
    """Check the whole chain of the store at ``path`` (and its rotated files); reports every problem.

    ``witness`` (a PostgreSQL DSN or :class:`~governed_db.audit.witness.Witness`) adds the check that the
    store still reaches the newest checkpoint the witness saw. The search index is checked against its seal
    and the store; when the seal proves nothing (no key, or an index sealed without it) it is compared with an
    index built from the store, unless ``compare_index`` is False.
    """
    p = store_path(path, key=key, missing_ok=True)
    verifier = _Verifier(p, R.key_bytes(key), witness)
    verifier.compare_index = compare_index
    return verifier.run()


class _Verifier:
    def __init__(self, path: Path, key: bytes | None, witness: Any = None) -> None:
        self.path = path
        self.witness = witness
        self.witnessed: dict[str, Any] | None = None
        self.witness_hash: str | None = None
        self.key = key
        self.rkey = R.record_key(key) if key is not None else None
        self.result = VerifyResult(str(path))
        self.prev = R.GENESIS_PREV
        self.expected = 0
        self.store_id: str | None = None
        self.anchor_seq = -1
        self.anchor_hash: str | None = None  # hash of the record the anchor names, once seen
        self.max_anchored = -1
        self.last_checkpoint: tuple[int, str] | None = None  # (seq, reason)
        self.last_kind = ""
        self.unauthenticated: int | None = None  # first seq of format-1 records no MAC covers yet
        self.intents: set[int] = set()
        self.v2 = False
        self.needs_retention: tuple[int, str] | None = None  # (seq, prev) of a chain starting mid-way
        self.retained: set[tuple[int, str]] = set()
        self.file = ""
        self.untagged = 0
        self.compare_index = True

    # -- driver ------------------------------------------------------------------------------------
    def run(self) -> VerifyResult:
        result = self.result
        # read the anchor first: a writer replaces it only after the log it names is on disk
        anchor = self._anchor()
        files = store_files(self.path)
        if self.witness is not None:
            self._ask_witness(files)
        result.files = [str(f) for f in files]
        if not self.path.exists():
            result.warnings.append(
                f"the live file {self.path.name} is missing: rotated away with no writer since (the next writer "
                "continues the chain), or deleted — the anchor shows which"
            )
        self._check_names(files)
        for i, f in enumerate(files):
            self.file = f.name if len(files) > 1 else ""
            self._file(f, last=i == len(files) - 1, first=i == 0)
        result.last_seq = self.expected - 1 if self.expected else None
        result.last_hash = self.prev if self.expected else None
        result.outcome_unknown = len(self.intents)
        if self.intents:
            result.warnings.append(
                f"{len(self.intents)} statement(s) with outcome unknown: the intent (identity, statement, "
                "decision) was recorded before the driver ran it, but no outcome followed — the process died "
                "in between, or the statement is still running"
            )
        waiting = _journaled(self.path)
        if waiting:
            result.warnings.append(
                f"{waiting} record(s) wait in the write-ahead journal of a process that ended "
                f"({J.wal_dir(self.path).name}/): written with another key than the one given, so not chained "
                "here — they are chained when the store is next opened with that key; search shows them"
            )
        rejected = _rejected(self.path)
        if rejected:
            result.warnings.append(
                f"{len(rejected)} journal(s) in {J.wal_dir(self.path).name}/ hold frames whose tag fails for this "
                f"store (planted or copied from another store, or damaged) and were not chained: "
                f"{', '.join(rejected[:5])}"
            )
        self._finish(anchor)
        self._check_witness()
        self._check_index()
        return result

    def _check_index(self) -> None:
        """The search index must be the one its seal names and cover what the store still holds (it is not
        evidence, but who-touched trusts its counts: an index edited to hide an identity is reported)."""
        problems, notes = check_index(self.path, self.key, thorough=self.compare_index)
        for message in problems:
            self.result.bad(0, None, 0, message)
        self.result.warnings.extend(notes)

    def _check_names(self, files: list[Path]) -> None:
        """A file governed_db rotated is named for its first seq (``<name>.<20 digits>``, then ``.n`` or ``.gz``):
        readers order files by content, so names swapped between rotated files hide nothing from the chain, but
        no writer or log rotation renames them so — it is a sign of someone rearranging the evidence."""
        from governed_db.audit.segments import _first_record

        pattern = re.compile(re.escape(self.path.name) + r"\.(\d{20})(?:\.\d+)?(?:\.gz)?")
        for f in files:
            m = pattern.fullmatch(f.name)
            if m is None:
                continue
            head = _first_record(f)
            seq = head.get("seq") if head is not None else None
            if type(seq) is int and seq != int(m.group(1)):
                self.result.bad(1, seq, 0, f"the file is named for seq {int(m.group(1))} but starts at seq {seq}: "
                                "rotated files were renamed or their contents swapped", f.name)

    def _ask_witness(self, files: list[Path]) -> None:
        from governed_db.audit.segments import _first_record
        from governed_db.audit.witness import Witness, authentic

        first = _first_record(files[0]) if files else None
        if first is None:
            return
        try:
            w = self.witness if isinstance(self.witness, Witness) else Witness(str(self.witness))
            row = w.latest(str(first.get("store")))
        except Exception as e:  # unreachable witness: say so; the local checks still run
            self.result.bad(0, None, 0, f"the witness could not be read ({type(e).__name__}: {e})")
            return
        if row is None:
            self.result.warnings.append("the witness holds no checkpoint of this store")
            return
        if not authentic(row, self.key):
            self.result.bad(0, row["seq"], 0, "the witness row for this store does not carry a valid MAC "
                            "(written by someone without the key)")
            return
        self.witnessed = row

    def _check_witness(self) -> None:
        row = self.witnessed
        if row is None:
            return
        seq = int(row["seq"])
        if self.witness_hash is None:
            if self.needs_retention is None or seq >= self.needs_retention[0]:
                self.result.bad(self.result.records + 1, seq, 0, f"the witness saw checkpoint seq {seq} but the "
                                f"store ends at seq {self.result.last_seq}: store and anchor were rolled back or "
                                "cut off")
        elif self.witness_hash != row["hash"]:
            self.result.bad(0, seq, 0, f"checkpoint seq {seq} differs from the one the witness saw (the store was "
                            "rewritten)")

    def _file(self, f: Path, *, last: bool, first: bool) -> None:
        result = self.result
        pending: _Damage | None = None  # damaged lines waiting for their recovery record
        lineno = 0
        continued = False  # the previous piece was part of an oversized line
        for here, raw in raw_lines(f):
            if not continued:
                lineno += 1
            complete = raw.endswith(b"\n")
            if continued or len(raw) > R.MAX_LINE:
                # an oversized line, read in bounded pieces: damaged, never loaded whole
                continued = not complete
                if pending is None:
                    pending = _Damage(lineno, here)
                pending.add(raw)
                continue
            if not complete:
                rec = R.parse_line(raw)
                if rec is not None and _is_record(rec) and _exact(rec, raw + b"\n", None):
                    result.warnings.append(
                        f"{self._where(lineno)}: the last record lost its final newline to a crash; the record "
                        "is complete and verifies"
                    )
                    self._pending_check(pending, rec, lineno, here)
                    pending = None
                    self._record(rec, raw + b"\n", lineno, here, first_line=lineno == 1)
                    continue
                if pending is not None:
                    break  # reported below, with the fragment
                result.warnings.append(
                    f"torn last record at {self._where(lineno)} ({len(raw)} bytes at offset {here}): a write cut "
                    "short by a crash; every record before it verifies, and the next writer will account for it"
                )
                break
            rec = R.parse_line(raw)
            if rec is None or not _is_record(rec):
                if pending is None:
                    pending = _Damage(lineno, here)
                pending.add(raw)
                continue
            self._pending_check(pending, rec, lineno, here)
            pending = None
            self._record(rec, raw, lineno, here, first_line=lineno == 1)
        if pending is not None:
            # a recovering writer terminates a torn fragment and chains its recovery record in one write(),
            # so complete unreadable lines with nothing after them are not something a crash leaves
            result.bad(pending.line, None, pending.offset, "damaged lines at the end of the store that no crash "
                       "explains and no recovery record accounts for", self.file)

    def _pending_check(self, pending: _Damage | None, rec: dict[str, Any], lineno: int, here: int) -> None:
        if pending is None:
            if rec.get("type") == R.RECOVERY:
                self.result.bad(lineno, _seq(rec), here, "recovery record without the torn record it accounts for",
                                self.file)
            return
        # a torn fragment got its newline from the recovering writer; damaged whole lines kept theirs
        if (rec.get("type") == R.RECOVERY and rec.get("torn_offset") == pending.offset
                and rec.get("torn_sha256") in pending.digests()):
            self.result.warnings.append(
                f"{self._where(pending.line)}: {pending.size} damaged bytes (a record torn by a crash, or "
                f"tampering), accounted for by the recovery record at line {lineno}")
        else:
            self.result.bad(pending.line, None, pending.offset, "damaged line(s) (not a readable record: invalid "
                            "JSON, nested too deep or too long) that no recovery record accounts for", self.file)

    def _where(self, lineno: int) -> str:
        return f"{self.file} line {lineno}" if self.file else f"line {lineno}"

    # -- one record ------------------------------------------------------------------------------
    def _record(self, rec: dict[str, Any], raw: bytes, lineno: int, here: int, *, first_line: bool) -> None:
        result = self.result
        seq = _seq(rec)
        bad = self._form(rec, raw)

        def problem(message: str) -> None:
            result.bad(lineno, seq, here, message, self.file)

        if bad:
            problem(bad)
        kind = rec.get("type")
        stored_hash = str(rec.get("hash"))
        # the chain: seq and prev
        if seq is None:
            problem("the record has no sequence number")
            return
        if seq != self.expected:
            if first_line and kind == R.SEGMENT and self.expected == 0:
                self.needs_retention = (seq, str(rec.get("prev")))  # earlier files removed by retention
            else:
                what = ("records are missing before it (deleted)" if seq > self.expected
                        else "it is out of order or duplicated (reordered or inserted)")
                problem(f"expected seq {self.expected}: {what}")
        elif rec.get("prev") != self.prev:
            problem("it does not link to the record before it (records were removed, inserted or reordered)")
        # what kind of record, where
        if kind == R.GENESIS:
            if seq != 0 or self.store_id is not None:
                problem("a second genesis record (another store was spliced in)")
            elif not rec.get("store"):
                problem("the genesis record names no store")
            else:
                self.store_id = str(rec["store"])
                self._key_id(rec, problem)
        elif self.store_id is None and not (first_line and kind == R.SEGMENT):
            problem("the store does not start with its genesis record")
            self.store_id = ""  # reported once
        if kind == R.SEGMENT:
            if not first_line:
                problem("a segment record in the middle of a file")
            if self.store_id is None:
                self.store_id = str(rec.get("store"))
            elif rec.get("store") != self.store_id:
                problem("a file of another store was spliced in")
        elif kind == R.CHECKPOINT:
            result.checkpoints += 1
            self._checkpoint(rec, problem)
            self.last_checkpoint = (seq, str(rec.get("reason", "")))
        elif kind == R.SPAN:
            result.spans += 1
            if R.attr(rec, "governed_db.decision") is not None:
                result.statements += 1
        elif kind == R.INTENT:
            result.spans += 1
            result.statements += 1
            self.intents.add(seq)
        elif kind == R.OUTCOME:
            intent = rec.get("intent")
            if isinstance(intent, int) and intent in self.intents:
                self.intents.discard(intent)
            elif isinstance(intent, int) and intent >= self.expected - 1:
                problem("outcome of a statement whose intent is not before it")
        elif kind == R.RETENTION:
            through = rec.get("through_seq")
            if isinstance(through, int):
                self.retained.add((through + 1, str(rec.get("through_hash"))))
        result.records += 1
        if seq == self.anchor_seq:
            self.anchor_hash = stored_hash
        if self.witnessed is not None and seq == self.witnessed["seq"]:
            self.witness_hash = stored_hash
        self.prev, self.expected, self.last_kind = stored_hash, seq + 1, str(kind)

    def _form(self, rec: dict[str, Any], raw: bytes) -> str | None:
        """Why the line is not exactly what a writer writes (and, with the key, authenticated), or None."""
        v = rec.get("v")
        v2 = type(v) is int and v >= 2
        self.v2 = self.v2 or v2
        try:
            exact = _exact(rec, raw, self.rkey if v2 else None)
        except (TypeError, ValueError, RecursionError):
            return "the record cannot be re-encoded (damaged or tampered with)"
        if self.key is not None:
            if v2:
                if "tag" not in rec:
                    return ("the record carries no MAC (tag) although a key was given: written without the key, "
                            "or rewritten by someone without it")
            elif self.unauthenticated is None and rec.get("type") != R.CHECKPOINT:
                self.unauthenticated = _seq(rec)
        if exact:
            if self.key is not None and v2:
                self.result.macs_checked += 1
                self.unauthenticated = None  # the tag covers the hash chain, so everything before it
            return None
        if rec.get("hash") != R.recompute(rec):
            return "content does not match its hash (the record was edited)"
        if self.key is not None and v2 and "tag" in rec:
            digest = str(rec.get("hash"))
            if not hmac.compare_digest(R.tag(self.rkey or b"", digest), str(rec.get("tag"))):
                return ("its MAC (tag) is wrong: the record was forged or the chain rewritten by someone without "
                        "the key (or it was sealed with a different key)")
        return ("the line is not in the exact form governed_db writes (duplicate keys, re-encoded or re-spaced "
                "JSON): it was edited")

    def _key_id(self, rec: dict[str, Any], problem: Any) -> None:
        if self.key is not None and rec.get("key_id") not in (None, R.key_id(self.key)):
            problem("sealed with a different key than the one given")

    def _checkpoint(self, rec: dict[str, Any], problem: Any) -> None:
        anchored = rec.get("anchored")
        if isinstance(anchored, int):
            self.max_anchored = max(self.max_anchored, anchored)
        v = rec.get("v")
        if type(v) is int and v >= 2:
            self._key_id(rec, problem)
            return
        if self.key is None:
            return
        mac = rec.get("mac")
        if not mac:
            problem("checkpoint carries no MAC although a key was given (written without a key, "
                    "or rewritten by someone without it)")
            return
        if rec.get("key_id") != R.key_id(self.key):
            problem("checkpoint was sealed with a different key than the one given")
            return
        try:
            want = R.checkpoint_mac(self.key, store=self.store_id or "", seq=int(rec["seq"]), prev=str(rec["prev"]),
                                    time_ns=int(rec["time"]))
        except (KeyError, TypeError, ValueError):
            want = ""
        if not hmac.compare_digest(want, str(mac)):
            problem("checkpoint MAC is wrong (the chain up to here was rewritten)")
            return
        self.result.macs_checked += 1
        self.unauthenticated = None

    # -- anchor -------------------------------------------------------------------------------------
    def _anchor(self) -> dict[str, Any] | None:
        target = anchor_path(self.path)
        data = _read_anchor(target)
        if data is None:
            return None
        # a writer always writes an integer seq and text hash and store id; anything else (1e999, true, "7", a
        # list) is a damaged anchor — never an OverflowError out of verify
        if type(data.get("seq")) is not int or type(data.get("hash")) is not str or type(data.get("store")) is not str:
            self.result.bad(0, None, 0, f"the anchor file {target.name} is damaged")
            return {}
        extra = sorted(set(data) - {*R.ANCHOR_FIELDS, "mac"})
        if extra:
            # the MAC covers the fields a writer writes; one it never writes is an edit the MAC cannot see
            self.result.bad(0, None, 0, f"the anchor file {target.name} carries field(s) no writer writes "
                            f"({', '.join(extra)[:100]}): it was edited")
        self.anchor_seq = int(data["seq"])
        return data

    def _finish(self, anchor: dict[str, Any] | None) -> None:
        result = self.result
        end_line = result.records + 1
        if result.records and self.key is None:
            result.warnings.append("MACs were not checked (no key given: pass --key-file or set "
                                   "GOVERNED_DB_AUDIT_KEY); a wholesale rewrite of the file would not be detected")
        if self.needs_retention is not None and self.needs_retention not in self.retained:
            result.bad(1, self.needs_retention[0], 0, "the store's earliest files are missing and no retention "
                       "record accounts for them (deleted)", Path(result.files[0]).name if result.files else "")
        if self.key is not None and self.unauthenticated is not None:
            result.bad(end_line, self.unauthenticated, 0, "records from this seq on are not covered by any MAC: "
                       "records after the last checkpoint were forged, or checkpoints were removed")
        if self.key is not None and result.records and not result.macs_checked:
            result.bad(end_line, None, 0, "no MAC could be checked although a key was given: the store was "
                       "written without the key, or its checkpoints were removed")
        if anchor == {}:
            return  # damaged: already reported
        if anchor is None:
            if result.checkpoints or (self.key is not None and self.v2 and result.records):
                result.bad(0, None, 0, "the anchor file is missing although the store has been anchored "
                           "(deleted, or the store was copied without its .anchor)")
            return
        if self.key is not None:
            mac = anchor.get("mac")
            if not mac:
                result.bad(0, None, 0, "the anchor file is not authenticated (no MAC) although a key was given: "
                           "it was re-pointed, or written by governed_db 0.1 (the next checkpoint re-seals it)")
            elif not hmac.compare_digest(R.anchor_mac(self.key, anchor), str(mac)):
                result.bad(0, None, 0, "the anchor file's MAC is wrong: it was re-pointed or forged")
        if self.store_id and anchor["store"] != self.store_id:
            result.bad(0, None, 0, "the anchor belongs to a different store")
            return
        seq = int(anchor["seq"])
        if self.anchor_hash is None:
            if self.needs_retention is None or seq >= self.needs_retention[0]:
                result.bad(end_line, seq, 0, f"the store ends at seq {result.last_seq} but its anchor names "
                           f"checkpoint seq {seq}: records were cut off past a checkpoint")
        elif self.anchor_hash != anchor["hash"]:
            result.bad(0, seq, 0, f"checkpoint seq {seq} differs from the one the anchor names (the store was "
                       "rewritten)")
        if seq < self.max_anchored:
            result.bad(0, seq, 0, f"the anchor names seq {seq}, older than the anchor seq {self.max_anchored} a "
                       "later checkpoint records: an older anchor was put back (replayed)")
        elif (self.last_checkpoint is not None and self.last_kind == R.CHECKPOINT
              and self.last_checkpoint[1] == "close" and seq < self.last_checkpoint[0]):
            result.bad(0, seq, 0, f"the store was sealed on close at seq {self.last_checkpoint[0]} but the anchor "
                       f"names seq {seq}: an older anchor was put back (replayed)")


class _Damage:
    """A run of unreadable bytes, hashed as it is read (it may be far larger than memory should hold)."""

    def __init__(self, line: int, offset: int) -> None:
        self.line, self.offset, self.size = line, offset, 0
        self._all = hashlib.sha256()
        self._but_last = hashlib.sha256()  # the run without its final byte (the newline a recovery added)
        self._last = b""

    def add(self, data: bytes) -> None:
        if not data:
            return
        self._all.update(data)
        self._but_last.update(self._last + data[:-1])
        self._last = data[-1:]
        self.size += len(data)

    def digests(self) -> set[str]:
        return {self._all.hexdigest(), self._but_last.hexdigest()}


def _seq(rec: dict[str, Any]) -> int | None:
    seq = rec.get("seq")
    return seq if type(seq) is int else None


def _is_record(rec: dict[str, Any]) -> bool:
    return "hash" in rec


def _exact(rec: dict[str, Any], raw: bytes, rkey: bytes | None) -> bool:
    return R.expected_line(rec, rkey) == raw


def _rejected(path: Path) -> list[str]:
    """Journals a writer refused to chain (kept as ``.rejected``: their tags fail for this store)."""
    try:
        return sorted(n for n in os.listdir(J.wal_dir(path)) if n.endswith(".rejected"))
    except OSError:
        return []


def _journaled(path: Path) -> int:
    """How many records journals of ended processes still hold (those this verify could not chain in)."""
    total = 0
    for orphan in J.orphans(path, None):
        total += len(orphan.records)
        orphan.release(remove=False)
    return total
