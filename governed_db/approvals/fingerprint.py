"""Statement identity for approvals: fingerprints, keyed statement hashes, request ids.

* The **fingerprint** names a statement *shape* (its normalized text, literals
  as placeholders) — shown to reviewers and put in the error, safe to log.
* The **statement hash** decides whether a one-time grant covers an execute:
  an HMAC-SHA256, under a random key kept in the store, over the exact text
  and a canonical form of the parameters. Parameters are never stored; the key
  stops anyone holding only the hash (a copied request, a log line) from
  confirming guessed values offline.
* **Request ids** are short, lower-case and free of look-alike characters so
  they survive being read aloud or copied from a chat message.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

#: no 0/o, 1/l/i: unambiguous when read or typed
_ID_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
ID_LENGTH = 8


def new_request_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))


def fingerprint(normalized: str) -> str:
    """16 hex characters naming the normalized statement."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()[:16]


def _canonical(value: Any) -> Any:
    # Tagged by type so 1, 1.0, True and "1" hash differently; tuples and lists alike,
    # since drivers treat them alike.
    if value is None:
        return None
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", str(value)]
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, str):
        return ["str", value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["bytes", bytes(value).hex()]
    if isinstance(value, decimal.Decimal):
        return ["decimal", str(value)]
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return [type(value).__name__, value.isoformat()]
    if isinstance(value, uuid.UUID):
        return ["uuid", str(value)]
    if isinstance(value, Mapping):
        return ["map", sorted([str(k), _canonical(v)] for k, v in value.items())]
    if isinstance(value, (list, tuple)):
        return ["seq", [_canonical(v) for v in value]]
    return [f"{type(value).__module__}.{type(value).__qualname__}", str(value)]


def statement_hash(sql: str, params: Any, *, key: bytes) -> str:
    """Keyed hash of the exact statement text plus its parameters."""
    if isinstance(params, (list, tuple, Mapping)) and not params:
        params = None  # execute(sql), execute(sql, ()) and execute(sql, {}) run the same statement
    doc = json.dumps({"sql": sql, "params": _canonical(params)}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, doc.encode("utf-8"), hashlib.sha256).hexdigest()


def lock_key(*parts: str) -> int:
    """A signed 64-bit key (for PostgreSQL advisory locks) derived from ``parts``."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
