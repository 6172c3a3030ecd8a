"""Verify a store: every hash, every link, every checkpoint MAC, and the anchor.

What each kind of tampering looks like to the verifier:

* an edited record no longer matches its own hash;
* a deleted record leaves a gap in ``seq`` and a ``prev`` that names no record;
* reordered or inserted records break ``seq`` order or the ``prev`` link;
* cutting the file back past a checkpoint leaves the anchor naming a record
  that is gone;
* a wholesale rewrite (recomputing every hash) cannot forge the checkpoint
  HMACs without the key.

A crash can leave half a record at the very end (power loss, or a writer killed
in the middle of a large write); that is reported as a torn tail, and everything
before it still verifies. The next writer terminates the fragment and chains a
``recovery`` record that accounts for its bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from governed_db.audit import records as R
from governed_db.audit.store import anchor_path, store_path


@dataclass
class Problem:
    line: int
    seq: int | None
    offset: int
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (seq {self.seq})" if self.seq is not None else "")
        return f"{where}: {self.message}"


@dataclass
class VerifyResult:
    path: str
    ok: bool = True
    records: int = 0
    spans: int = 0
    checkpoints: int = 0
    macs_checked: int = 0
    last_seq: int | None = None
    last_hash: str | None = None
    first_bad: Problem | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["first_bad"] = str(self.first_bad) if self.first_bad else None
        d["first_bad_line"] = self.first_bad.line if self.first_bad else None
        return d


def verify(path: str | os.PathLike[str], *, key: str | bytes | None = None) -> VerifyResult:
    """Check the whole chain of the store at ``path``; stops at the first bad record."""
    p = store_path(path)
    k = R.key_bytes(key)
    result = VerifyResult(str(p))
    # read the anchor first: a writer replaces it only after the log it names is on disk
    anchor = _read_anchor(anchor_path(p), result)
    if not result.ok:
        return result
    hashes: dict[int, str] = {}  # only the record the anchor names (memory stays flat on big stores)
    anchor_seq = int(anchor["seq"]) if anchor else -1
    prev, expected, store_id = R.GENESIS_PREV, 0, None
    pending: tuple[int, int, bytearray] | None = None  # damaged lines waiting for their recovery record
    offset = 0
    with open(p, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            here, offset = offset, offset + len(raw)
            if not raw.endswith(b"\n"):
                result.warnings.append(
                    f"torn last record at line {lineno} ({len(raw)} bytes at offset {here}): a write cut short by a "
                    "crash; every record before it verifies, and the next writer will account for it"
                )
                break
            try:
                rec = json.loads(raw)
                if not isinstance(rec, dict):
                    raise ValueError("not an object")
            except ValueError:
                if pending is None:
                    pending = (lineno, here, bytearray())
                pending[2].extend(raw)
                continue
            seq = rec.get("seq") if isinstance(rec.get("seq"), int) else None
            if pending is not None:
                region = bytes(pending[2])
                # a torn fragment got its newline from the recovering writer; damaged whole lines kept theirs
                candidates = {hashlib.sha256(region).hexdigest(), hashlib.sha256(region[:-1]).hexdigest()}
                ok = (rec.get("type") == R.RECOVERY and rec.get("torn_offset") == pending[1]
                      and rec.get("torn_sha256") in candidates)
                if not ok:
                    return _bad(result, pending[0], None, pending[1],
                                "damaged line (not valid JSON) that no recovery record accounts for")
                result.warnings.append(f"line {pending[0]}: {len(region)} damaged bytes (a record torn by a crash, "
                                       f"or tampering), accounted for by the recovery record at line {lineno}")
                pending = None
            elif rec.get("type") == R.RECOVERY:
                return _bad(result, lineno, seq, here, "recovery record without the torn record it accounts for")
            if rec.get("hash") != R.recompute(rec):
                return _bad(result, lineno, seq, here, "content does not match its hash (the record was edited)")
            if seq != expected:
                what = ("records are missing before it (deleted)" if seq is not None and seq > expected
                        else "it is out of order or duplicated (reordered or inserted)")
                return _bad(result, lineno, seq, here, f"expected seq {expected}: {what}")
            if rec.get("prev") != prev:
                return _bad(result, lineno, seq, here,
                            "it does not link to the record before it (records were removed, inserted or reordered)")
            kind = rec.get("type")
            if expected == 0:
                if kind != R.GENESIS or not rec.get("store"):
                    return _bad(result, lineno, seq, here, "the store does not start with its genesis record")
                store_id = str(rec["store"])
            elif kind == R.GENESIS:
                return _bad(result, lineno, seq, here, "a second genesis record (another store was spliced in)")
            elif kind == R.CHECKPOINT:
                problem = _check_mac(rec, k, store_id or "", result)
                if problem:
                    return _bad(result, lineno, seq, here, problem)
            elif kind == R.SPAN:
                result.spans += 1
            result.records += 1
            if expected == anchor_seq:
                hashes[expected] = rec["hash"]
            prev, expected = rec["hash"], expected + 1
    if pending is not None:
        # a recovering writer terminates a torn fragment and chains its recovery record in one write(),
        # so complete unreadable lines with nothing after them are not something a crash leaves
        return _bad(result, pending[0], None, pending[1],
                    "damaged lines at the end of the store that no crash explains and no recovery record accounts for")
    result.last_seq = expected - 1 if expected else None
    result.last_hash = prev if expected else None
    _check_anchor(anchor, hashes, store_id, result)
    if result.checkpoints and not result.macs_checked:
        result.warnings.append("checkpoint MACs were not checked (no key given: pass --key-file or set "
                               "GOVERNED_DB_AUDIT_KEY); a wholesale rewrite of the file would not be detected")
    return result


def _bad(result: VerifyResult, line: int, seq: int | None, offset: int, message: str) -> VerifyResult:
    result.ok = False
    result.first_bad = Problem(line, seq, offset, message)
    return result


def _check_mac(rec: dict[str, Any], key: bytes | None, store_id: str, result: VerifyResult) -> str | None:
    result.checkpoints += 1
    mac = rec.get("mac")
    if key is None:
        return None
    if not mac:
        return ("checkpoint carries no MAC although a key was given (written without a key, "
                "or rewritten by someone without it)")
    if rec.get("key_id") != R.key_id(key):
        return "checkpoint was sealed with a different key than the one given"
    want = R.checkpoint_mac(key, store=store_id, seq=int(rec["seq"]), prev=str(rec["prev"]), time_ns=int(rec["time"]))
    if not hmac.compare_digest(want, str(mac)):
        return "checkpoint MAC is wrong (the chain up to here was rewritten)"
    result.macs_checked += 1
    return None


def _read_anchor(path: Path, result: VerifyResult) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="ascii"))
        int(data["seq"]), str(data["hash"]), str(data["store"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        _bad(result, 0, None, 0, f"the anchor file {path.name} is damaged")
        return None
    return dict(data)


def _check_anchor(anchor: dict[str, Any] | None, hashes: dict[int, str], store_id: str | None,
                  result: VerifyResult) -> None:
    if not result.ok:
        return
    if anchor is None:
        if result.checkpoints:
            _bad(result, 0, None, 0, "the anchor file is missing although the store has checkpoints "
                 "(deleted, or the store was copied without its .anchor)")
        return
    if anchor["store"] != store_id:
        _bad(result, 0, None, 0, "the anchor belongs to a different store")
        return
    seq = int(anchor["seq"])
    if seq not in hashes:
        _bad(result, (result.records or 0) + 1, seq, 0,
             f"the store ends at seq {result.last_seq} but its anchor names checkpoint seq {seq}: "
             "records were cut off past a checkpoint")
    elif hashes[seq] != anchor["hash"]:
        _bad(result, 0, seq, 0, f"checkpoint seq {seq} differs from the one the anchor names (the store was rewritten)")
