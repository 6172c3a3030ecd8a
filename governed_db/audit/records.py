"""Audit records: the canonical bytes that are hashed, and spans turned into records.

A record is one JSON object per line. Its hash is SHA-256 over the canonical
encoding of every field except ``hash`` itself (keys sorted, compact separators,
ASCII only); ``prev`` is inside that content, so each hash also covers the
whole history before it. Canonical means verification can re-derive the exact
bytes from a parsed line: JSON round-trips str, int, bool, None and finite
floats exactly, which is all a record holds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

#: ``prev`` of the first record of a store.
GENESIS_PREV = "0" * 64
FORMAT_VERSION = 1
SCOPE = "governed_db"

# record types
SPAN = "span"
GENESIS = "genesis"
CHECKPOINT = "checkpoint"
RECOVERY = "recovery"

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode


def canonical(body: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash is computed over (``body`` must not contain ``hash``)."""
    return _dumps(body).encode("ascii")


def encode(body: Mapping[str, Any]) -> tuple[bytes, str]:
    """``(line, hash)``: the line to append (newline-terminated) and the record's hash."""
    canon = canonical(body)
    digest = hashlib.sha256(canon).hexdigest()
    # the hash rides at the end of the line; verification pops it and re-canonicalises
    return canon[:-1] + b',"hash":"' + digest.encode("ascii") + b'"}\n', digest


def recompute(record: Mapping[str, Any]) -> str:
    """The hash ``record`` should carry, from everything but its ``hash`` field."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def key_bytes(key: str | bytes | None) -> bytes | None:
    if key is None or key == "" or key == b"":
        return None
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def key_id(key: bytes) -> str:
    """A short public fingerprint of the checkpoint key (says *which* key, reveals nothing of it)."""
    return hashlib.sha256(b"governed_db.audit.key-id:" + key).hexdigest()[:16]


def checkpoint_mac(key: bytes, *, store: str, seq: int, prev: str, time_ns: int) -> str:
    msg = canonical({"store": store, "seq": seq, "prev": prev, "time": time_ns})
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


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


def span_body(span: Any, *, pid: int) -> dict[str, Any]:
    """The recorded content of a finished SDK span (``ReadableSpan``); seq/prev are added by the store."""
    ctx = span.context
    parent = span.parent
    status = span.status
    attrs = span.attributes or {}
    body: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "type": SPAN,
        "time": span.start_time,
        "end": span.end_time,
        "name": span.name,
        "kind": span.kind.name if span.kind is not None else None,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(parent.span_id, "016x") if parent is not None else None,
        "status": status.status_code.name if status is not None else "UNSET",
        "attrs": _attributes(attrs),
        "pid": pid,
    }
    if status is not None and status.description:
        body["status_message"] = status.description
    return body


# -- reading helpers used by search, stats, report and replay ------------------------------------

def attr(record: Mapping[str, Any], name: str, default: Any = None) -> Any:
    attrs = record.get("attrs")
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
    return record.get("type") == SPAN and record.get("name") == "governed_db.result"


def is_approval(record: Mapping[str, Any]) -> bool:
    return record.get("type") == SPAN and str(record.get("name", "")).startswith("governed_db.approval")


def is_refused(record: Mapping[str, Any]) -> bool:
    return bool(attr(record, "governed_db.refused")) or attr(record, "governed_db.decision") == "deny"


def subject(record: Mapping[str, Any]) -> str:
    return str(attr(record, "governed_db.identity.subject") or attr(record, "enduser.id") or "?")
