"""Audit records: the canonical bytes that are hashed, authenticated and parsed back, and spans turned into records.

A record is one JSON object per line. Its hash is SHA-256 over the canonical
encoding of every field except ``hash`` (and, from format 2, ``tag``); ``prev``
is inside that content, so each hash also covers the whole history before it.

Two canonical encodings exist, chosen by the record's ``v``:

* format 1 (governed_db 0.1): the standard library's JSON, keys sorted,
  compact separators, ASCII only;
* format 2: orjson with sorted keys (compact, UTF-8) — about ten times
  cheaper to build (docs/decisions/0034-audit-format-2-orjson.md). With a key,
  a format-2 line also carries ``tag``, a keyed MAC of its hash, so every
  record is authenticated, not only checkpoints.

Either way a line must be *exactly* the canonical encoding of what it parses
to: :func:`expected_line` rebuilds it and ``verify`` compares bytes, which
catches duplicate keys, re-spaced or re-escaped JSON and any edit at all.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import math
import os
from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any

import orjson

from governed_db._native import speedups
from governed_db.semconv import (
    DB_RESPONSE_RETURNED_ROWS,
    GDB_APPROVAL,
    GDB_IDENTITY_SUBJECT,
    GDB_MASKED_CELLS,
    GDB_MASKED_COLUMNS,
    GDB_OUTCOME,
    GDB_REFUSED,
    GDB_RESULT,
    GDB_ROWS_RETURNED,
)

#: ``prev`` of the first record of a store.
GENESIS_PREV = "0" * 64
FORMAT_VERSION = 2
SCOPE = "governed_db"

# record types
SPAN = "span"  # a whole span in one record (result follow-ups, approval transitions; statements in format 1)
INTENT = "intent"  # a statement's identity, text and decision, written before the driver sees it
OUTCOME = "outcome"  # how that statement ended (status, rows, masked columns), written after
GENESIS = "genesis"
CHECKPOINT = "checkpoint"
RECOVERY = "recovery"
SEGMENT = "segment"  # the first record of a file that continues the chain of an earlier file
RETENTION = "retention"  # a sealed summary of segments removed by retention

#: a line longer than this is a damaged record (the writer shortens attributes to stay below it)
MAX_LINE = 4 * 1024 * 1024
#: nesting a record may have (records are at most three deep: record -> attrs -> list)
MAX_DEPTH = 8

_dumps_v1 = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode
_OPT = orjson.OPT_SORT_KEYS
_odumps = orjson.dumps
_sha256 = hashlib.sha256
_hexlify = binascii.hexlify


def canonical(body: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash is computed over (``body`` holds neither ``hash`` nor ``tag``)."""
    v = body.get("v")
    if type(v) is int and v >= 2:
        return _odumps(body, option=_OPT)
    return _dumps_v1(body).encode("ascii")


def record_key(key: bytes) -> bytes:
    """The per-record MAC key, derived so that a record tag can never pass for an anchor MAC or vice versa."""
    return hmac.digest(key, b"governed_db.audit.record-tag", "sha256")


def anchor_key(key: bytes) -> bytes:
    return hmac.digest(key, b"governed_db.audit.anchor", "sha256")


def tag(rkey: bytes, digest: str) -> str:
    """128-bit keyed BLAKE2b of a record's hash: the hash covers the record and all history before it."""
    return hashlib.blake2b(digest.encode("ascii"), key=rkey, digest_size=16).hexdigest()


def encode(body: Mapping[str, Any], rkey: bytes | None = None) -> tuple[bytes, str]:
    """``(line, hash)``: the newline-terminated line to append, and the record's hash.

    ``rkey`` (from :func:`record_key`) adds the ``tag`` to format-2 records.
    """
    try:
        canon = canonical(body)
    except (TypeError, ValueError, orjson.JSONEncodeError):
        # out-of-range integers, lone surrogates, ...: stored as text (rare; keeps the record, never the crash)
        body = {k: _safe(v, 0) for k, v in body.items()}
        canon = canonical(body)
    digest = hashlib.sha256(canon).hexdigest()
    # hash (and tag) ride at the end of the line; verification pops them and re-canonicalises
    tail = b',"hash":"' + digest.encode("ascii")
    if rkey is not None and type(body.get("v")) is int and body["v"] >= 2:
        tail += b'","tag":"' + tag(rkey, digest).encode("ascii")
    return canon[:-1] + tail + b'"}\n', digest


class Prepared:
    """A record whose canonical bytes are built from templates — the statement hot path.

    :func:`encode_prepared` makes exactly the line :func:`encode` makes of :meth:`body` (a test checks byte
    equality), without building and sorting a dict per record: the parts that repeat (a statement's
    attributes) are serialised once and reused. ``canonical = head + '"prev":"…","seq":…,' + tail``: ``prev``
    and ``seq`` are adjacent in sorted key order for every prepared record type.
    """

    __slots__ = ("cached", "frame", "seq", "written")
    type = ""
    #: the record's pieces once built for the journal (reused when it is chained into the store)
    cached: Any

    def __init__(self) -> None:
        #: set once encoded for a write or copied into the journal: a pending outcome is no longer amended then
        self.written = False
        self.seq = -1  # its place in the chain, once written to the store
        self.frame = -1  # its frame number in the write-ahead journal, if it went there
        self.cached = None

    def parts(self) -> tuple[bytes, bytes]:  # pragma: no cover - abstract
        raise NotImplementedError

    def body(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


def attributes_json(attrs: Mapping[str, Any]) -> bytes:
    """Canonical bytes of plain attributes (strings, ints, booleans, lists of those); raises otherwise."""
    try:
        return _odumps(attrs, option=_OPT)
    except orjson.JSONEncodeError as e:
        raise ValueError(str(e)) from None


def intent_head(attrs_json: bytes, name: str, kind: str) -> bytes:
    """The start of an intent's canonical bytes, the same for every run of one statement by one identity."""
    return b'{"attrs":' + attrs_json + b',"kind":' + _odumps(kind) + b',"name":' + _odumps(name) + \
        b',"parent_span_id":'


class PreparedIntent(Prepared):
    """A statement's intent, from an :func:`intent_head` (identity, statement, decision) and its ids.

    Its canonical bytes are built at once (they are all it is written as): ``pieces`` = the bytes before and after
    the chain fields; :meth:`body` parses them back on the rare paths that need a dict.
    """

    __slots__ = ("pieces",)
    type = INTENT

    def __init__(self, head: bytes, parent: int | None, pid: int, span_id: int, time_ns: int, trace_id: int) -> None:
        self.written, self.seq, self.frame, self.cached = False, -1, -1, None
        self.pieces = (
            b'%b%b,"pid":%d,' % (head, b"null" if parent is None else b'"%016x"' % parent, pid),
            b'"span_id":"%016x","time":%d,"trace_id":"%032x","type":"intent","v":2}' % (span_id, time_ns, trace_id),
        )

    def parts(self) -> tuple[bytes, bytes]:
        return self.pieces  # type: ignore[no-any-return]

    def body(self) -> dict[str, Any]:
        a, b = self.pieces
        return orjson.loads(a + b)  # type: ignore[no-any-return]


class PreparedOutcome(Prepared):
    """How a statement ended; while deferred, its result's row counts can still be folded in (:meth:`amend`).

    ``intent`` is the intent's seq, or the intent record itself while that waits in the journal: its seq is
    known by the time this is written (a store writes an intent before the outcomes that follow it).
    """

    __slots__ = ("attrs", "end", "intent", "span_id", "status", "status_message")
    type = OUTCOME

    def __init__(self, attrs: dict[str, Any], *, end: int, intent: int | Prepared, span_id: int, status: str,
                 status_message: str | None) -> None:
        self.written, self.seq, self.frame, self.cached = False, -1, -1, None
        self.attrs, self.end, self.intent, self.span_id = attrs, end, intent, span_id
        self.status, self.status_message = status, status_message

    def intent_seq(self) -> int:
        intent = self.intent
        return intent if type(intent) is int else intent.seq  # type: ignore[union-attr]

    def pieces(self) -> tuple[bytes, bytes]:
        """The canonical bytes around the intent's seq and the chain fields: ``pre + seq + "," + chain + tail``."""
        attrs = self.attrs
        msg = self.status_message
        status = _STATUS.get(self.status) or _odumps(self.status)
        return (
            b'{"attrs":%b,"end":%d,"intent":' % (_odumps(attrs, option=_OPT) if attrs else b"{}", self.end),
            b'"span_id":"%016x","status":%b,%b"type":"outcome","v":2}'
            % (self.span_id, status, b'"status_message":' + _odumps(msg) + b"," if msg else b""),
        )

    def parts(self) -> tuple[bytes, bytes]:
        seq = self.intent_seq()
        if seq < 0:
            raise ValueError("the outcome's intent is not in the store yet")
        pre, tail = self.cached or self.pieces()
        return pre + b"%d," % seq, tail

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"v": FORMAT_VERSION, "type": OUTCOME, "intent": self.intent_seq(),
                                "span_id": f"{self.span_id:016x}", "end": self.end, "status": self.status,
                                "attrs": _attributes(self.attrs) if self.attrs else {}}
        if self.status_message:
            body["status_message"] = self.status_message
        return body


#: a span status code's canonical bytes
_STATUS = {code: _odumps(code) for code in ("UNSET", "OK", "ERROR")}
if speedups is not None:
    speedups.bind(PreparedIntent, PreparedOutcome)  # the records its chain() takes the templated way
    # what its outcome pieces and a result's fold are made with (decision 0396)
    speedups.templates(_odumps, _OPT, (DB_RESPONSE_RETURNED_ROWS, GDB_ROWS_RETURNED, GDB_MASKED_CELLS,
                                       GDB_MASKED_COLUMNS))


def encode_prepared(rec: Prepared, seq: int, prev: str, rkey: bytes | None) -> tuple[bytes, str]:
    """``(line, hash)`` of a prepared record: the same bytes :func:`encode` makes of its body with seq/prev."""
    line = chain_prepared(rec, seq, prev.encode("ascii"), rkey)
    end = hash_end(rkey is not None)
    return line, line[end - 64 : end].decode("ascii")


def chain_prepared(rec: Prepared, seq: int, prev: bytes, rkey: bytes | None) -> bytes:
    """The line of a prepared record at ``seq`` after ``prev`` (the previous hash, as ASCII bytes); its hash is the
    64 hex digits that end at :func:`hash_end`. The same bytes as :func:`encode_prepared`,
    for the store's batch chaining: no str round trip of the hash between records."""
    if type(rec) is PreparedIntent:
        head, tail = rec.pieces
    else:
        head, tail = rec.parts()
    canon = b'%b"prev":"%b","seq":%d,%b' % (head, prev, seq, tail)
    digest = _hexlify(_sha256(canon).digest())
    if rkey is not None:
        return b'%b,"hash":"%b","tag":"%b"}\n' % (
            canon[:-1], digest, _hexlify(hashlib.blake2b(digest, key=rkey, digest_size=16).digest()))
    return b'%b,"hash":"%b"}\n' % (canon[:-1], digest)


def hash_end(keyed: bool) -> int:
    """Where a line made by :func:`chain_prepared` ends its 64-hex hash, counted from the end of the line: before
    ``","tag":"`` + 32 hex + ``"}\\n`` when keyed, else before ``"}\\n``."""
    return -44 if keyed else -3


def expected_line(record: Mapping[str, Any], rkey: bytes | None) -> bytes:
    """The exact line a writer produces for the parsed ``record`` (with its tag when ``rkey`` is given)."""
    body = {k: v for k, v in record.items() if k != "hash" and k != "tag"}
    canon = canonical(body)
    digest = hashlib.sha256(canon).hexdigest()
    tail = b',"hash":"' + digest.encode("ascii")
    if "tag" in record:
        tail += b'","tag":"' + (tag(rkey, digest) if rkey is not None else str(record["tag"])).encode()
    return canon[:-1] + tail + b'"}\n'


def recompute(record: Mapping[str, Any]) -> str:
    """The hash ``record`` should carry, from everything but its ``hash`` and ``tag`` fields."""
    body = {k: v for k, v in record.items() if k != "hash" and k != "tag"}
    return hashlib.sha256(canonical(body)).hexdigest()


def _safe(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth < MAX_DEPTH and isinstance(value, Mapping):
        return {str(k): _safe(v, depth + 1) for k, v in value.items()}
    if depth < MAX_DEPTH and isinstance(value, (list, tuple)):
        return [_safe(v, depth + 1) for v in value]
    return str(value)[:4096]


def _depth_ok(value: Any, depth: int = 0) -> bool:
    """Nesting at most MAX_DEPTH (a plain loop: this runs for every line every reader parses)."""
    if depth > MAX_DEPTH:
        return False
    for v in value.values() if type(value) is dict else value:
        t = type(v)
        if (t is dict or t is list) and v and not _depth_ok(v, depth + 1):
            return False
    return True


def _has_float(value: Any, depth: int) -> bool:
    if type(value) is float:
        return True
    if depth < MAX_DEPTH:
        if type(value) is dict:
            return any(_has_float(v, depth + 1) for v in value.values())
        if type(value) is list:
            return any(_has_float(v, depth + 1) for v in value)
    return False


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """The record a line holds, or ``None`` for a damaged line — never an exception, whatever the bytes.

    Oversized and deeply nested lines are damaged records (orjson parses without recursion up to depth
    1024; the depth check keeps later canonicalisation bounded too).
    """
    if len(raw) > MAX_LINE:
        return None
    try:
        rec = orjson.loads(raw)
    except orjson.JSONDecodeError:
        rec = None
    if type(rec) is dict:
        v = rec.get("v")
        if (type(v) is int and v >= 2) or not _has_float(rec, 0):
            # fewer brackets than the depth limit cannot nest past it: skip the walk (nearly every line)
            shallow = raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH
            return rec if shallow or _depth_ok(rec) else None
    # format-1 lines were written by the standard library, which keeps integers beyond 64 bits (orjson reads
    # them as floats) and NaN; its parser is recursive, so it only sees lines that cannot nest deeply
    if raw.count(b"[") + raw.count(b"{") > 500:
        return None
    try:
        rec = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if type(rec) is not dict or not _depth_ok(rec):
        return None
    return rec


def key_bytes(key: str | bytes | None) -> bytes | None:
    if key is None or key == "" or key == b"":
        return None
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def key_id(key: bytes) -> str:
    """A short public fingerprint of the checkpoint key (says *which* key, reveals nothing of it)."""
    return hashlib.sha256(b"governed_db.audit.key-id:" + key).hexdigest()[:16]


def checkpoint_mac(key: bytes, *, store: str, seq: int, prev: str, time_ns: int) -> str:
    """The format-1 checkpoint MAC (format 2 authenticates every record with its ``tag`` instead)."""
    msg = _dumps_v1({"store": store, "seq": seq, "prev": prev, "time": time_ns}).encode("ascii")
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


ANCHOR_FIELDS = ("v", "store", "seq", "hash", "offset", "time", "file")


def anchor_mac(key: bytes, anchor: Mapping[str, Any]) -> str:
    """HMAC-SHA256 over the anchor's fields (domain-separated from record tags)."""
    msg = _odumps({k: anchor.get(k) for k in ANCHOR_FIELDS}, option=_OPT)
    return hmac.new(anchor_key(key), msg, hashlib.sha256).hexdigest()


def env_key() -> bytes | None:
    return key_bytes(os.environ.get("GOVERNED_DB_AUDIT_KEY"))


# -- spans -> records ------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [_plain(v) for v in value]
    return str(value)


_SCALARS = (str, int, bool)


def _attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Span attributes as JSON-ready values; the SDK already cleaned them, so this is mostly a copy.

    Tuples serialise as JSON arrays, which is what a parsed record holds, so hashing stays canonical.
    """
    out = dict(attrs)
    for k, v in out.items():
        t = type(v)
        if t in _SCALARS:
            continue
        if t is float:
            if not math.isfinite(v):
                out[k] = str(v)
        elif t is tuple or t is list:
            if not all(type(x) in _SCALARS for x in v):
                out[k] = [_plain(x) for x in v]
        else:
            out[k] = _plain(v)
    return out


#: SpanKind -> its name (Enum.name is a property lookup per call), filled as kinds are seen: importing
#: opentelemetry to list them up front would cost every reader of the store that import
_KIND_NAMES: dict[Any, str] = {}


def _kind_name(kind: Any) -> str | None:
    if kind is None:
        return None
    name = _KIND_NAMES[kind] = str(kind.name)
    return name


def _head(span: Any, kind: str) -> dict[str, Any]:
    if getattr(span, "light", False):  # governed_db's audit-only span: the ids are plain attributes
        trace_id, span_id = span.trace_id, span.span_id
    else:
        ctx = span.context
        trace_id, span_id = ctx.trace_id, ctx.span_id
    parent = span.parent
    return {
        "v": FORMAT_VERSION,
        "type": kind,
        "time": span.start_time,
        "name": span.name,
        "kind": _KIND_NAMES.get(span.kind) or _kind_name(span.kind),
        "trace_id": f"{trace_id:032x}",
        "span_id": f"{span_id:016x}",
        "parent_span_id": f"{parent.span_id:016x}" if parent is not None else None,
    }


def span_id_of(span: Any) -> int:
    return span.span_id if getattr(span, "light", False) else span.context.span_id  # type: ignore[no-any-return]


def result_body(trace_id: int, statement_span_id: int, attrs: dict[str, Any], *, span_id: int, now: int,
                pid: int) -> dict[str, Any]:
    """The ``governed_db.result`` record of a statement's result, as :func:`span_body` would make it from a result
    span (a child of the statement, INTERNAL, status UNSET) — without building that span."""
    return {
        "v": FORMAT_VERSION,
        "type": SPAN,
        "time": now,
        "name": GDB_RESULT,
        "kind": "INTERNAL",
        "trace_id": f"{trace_id:032x}",
        "span_id": f"{span_id:016x}",
        "parent_span_id": f"{statement_span_id:016x}",
        "end": now,
        "status": "UNSET",
        "attrs": _attributes(attrs),
        "pid": pid,
    }


def span_body(span: Any, *, pid: int) -> dict[str, Any]:
    """The recorded content of a finished SDK span (``ReadableSpan``); seq/prev are added by the store."""
    body = _head(span, SPAN)
    status = span.status
    body["end"] = span.end_time
    body["status"] = status.status_code.name if status is not None else "UNSET"
    body["attrs"] = _attributes(span.attributes or {})
    body["pid"] = pid
    if status is not None and status.description:
        body["status_message"] = status.description
    return body


def intent_body(span: Any, *, pid: int) -> dict[str, Any]:
    """A statement span as it starts: identity, statement, decision — recorded before the driver runs it."""
    body = _head(span, INTENT)
    # governed_db's own span holds only what the Recorder put there (strings, ints, booleans, lists of strings),
    # and the record is encoded before anything changes them: no copy needed
    body["attrs"] = span.attributes if getattr(span, "light", False) else _attributes(span.attributes or {})
    body["pid"] = pid
    return body


def outcome_body(span: Any, *, intent_seq: int | Prepared, started: Mapping[str, Any]) -> PreparedOutcome:
    """How the statement of intent ``intent_seq`` ended: status, end time, the attributes set since it started."""
    status = span.status
    added: dict[str, Any] = {}
    missing = _MISSING
    if getattr(span, "light", False):
        added = dict(span.late)  # governed_db's own span knows what was set after it started
    else:
        # the SDK's BoundedAttributes keeps a plain dict: iterating that skips the Mapping ABC's slow items() (a
        # ReadableSpan hands out its BoundedAttributes behind a MappingProxyType, whose items() is the ABC's)
        plain = getattr(getattr(span, "_attributes", None), "_dict", None)
        attrs = plain if type(plain) is dict else (span.attributes or {})
        snap = _SNAPSHOTS.get(id(started))
        if snap is None or snap[0] is not started:
            snap = _snapshot(started)
        n = snap[3]
        # the usual case, compared in C: the span still starts with exactly the attributes it started with (the SDK
        # keeps insertion order and turns lists into tuples); what follows them was set since
        if len(attrs) >= n and list(attrs)[:n] == snap[1] and list(attrs.values())[:n] == snap[2]:
            if len(attrs) > n:
                added = dict(islice(attrs.items(), n, None))
        else:  # one was overwritten, dropped or reordered: compare them one by one
            for k, v in attrs.items():
                before = started.get(k, missing)
                if before is missing or (before != v and not (type(v) is tuple and list(v) == before)):
                    added[k] = v
    if added and not all(type(v) in _SCALARS or (type(v) in (list, tuple) and all(type(x) in _SCALARS for x in v))
                         for v in added.values()):
        added = _attributes(added)
    return PreparedOutcome(added, end=span.end_time, intent=intent_seq, span_id=span_id_of(span),
                           status=status.status_code.name if status is not None else "UNSET",
                           status_message=status.description if status is not None else None)


_MISSING: Any = object()
#: id(a statement's start attributes) -> (them, their keys, their values as the SDK keeps them, how many)
_SNAPSHOTS: dict[int, tuple[Mapping[str, Any], list[str], list[Any], int]] = {}


def _snapshot(started: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[str], list[Any], int]:
    if len(_SNAPSHOTS) > 2048:
        _SNAPSHOTS.clear()
    snap = _SNAPSHOTS[id(started)] = (started, list(started),
                                      [tuple(v) if type(v) is list else v for v in started.values()], len(started))
    return snap

#: ``status`` (and ``outcome``) of a statement whose intent was recorded but whose outcome never was
UNKNOWN = "UNKNOWN"


def merged(intent: Mapping[str, Any], outcome: Mapping[str, Any] | None) -> dict[str, Any]:
    """One statement record from its intent and outcome, shaped like a whole-span record.

    Without an outcome (the process died between the two, or the statement is still running) the
    record says so: ``status`` and ``outcome`` are ``"UNKNOWN"`` — never a missing statement.
    """
    rec = dict(intent)
    rec["type"] = SPAN
    attrs = dict(intent.get("attrs") or {})
    if outcome is None:
        rec["end"] = None
        rec["status"] = UNKNOWN
        rec["outcome"] = UNKNOWN
        attrs[GDB_OUTCOME] = "unknown"
    else:
        extra = outcome.get("attrs")
        if isinstance(extra, Mapping):
            attrs.update(extra)
        rec["end"] = outcome.get("end")
        rec["status"] = outcome.get("status", "UNSET")
        if outcome.get("status_message"):
            rec["status_message"] = outcome["status_message"]
        rec["outcome"] = "error" if rec["status"] == "ERROR" else "ok"
        rec["outcome_seq"] = outcome.get("seq")
    rec["attrs"] = attrs
    return rec


# -- reading helpers used by search, stats, report and replay ------------------------------------

def attr(record: Mapping[str, Any], name: str, default: Any = None) -> Any:
    attrs = record.get("attrs")
    if type(attrs) is dict:
        return attrs.get(name, default)
    return attrs.get(name, default) if isinstance(attrs, Mapping) else default


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def is_statement(record: Mapping[str, Any]) -> bool:
    """A statement span (not a result follow-up, not an approval transition)."""
    if record.get("type") != SPAN:
        return False
    return attr(record, "governed_db.decision") is not None


def is_result(record: Mapping[str, Any]) -> bool:
    return record.get("type") == SPAN and record.get("name") == GDB_RESULT


def is_approval(record: Mapping[str, Any]) -> bool:
    return record.get("type") == SPAN and str(record.get("name", "")).startswith(GDB_APPROVAL)


def is_refused(record: Mapping[str, Any]) -> bool:
    return bool(attr(record, GDB_REFUSED)) or attr(record, "governed_db.decision") == "deny"


def subject(record: Mapping[str, Any]) -> str:
    return str(attr(record, GDB_IDENTITY_SUBJECT) or attr(record, "enduser.id") or "?")
