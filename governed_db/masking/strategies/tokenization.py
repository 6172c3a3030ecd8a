"""``tokenize``: deterministic tokenization, ``TOK_<LABEL>_<base32>``.

Like ``hash`` the token is derived with HMAC from the connection's key, so it
is stable (joins work) and unguessable; unlike a hash it is short, says what
it stands for, and — with ``vault: true`` — can be turned back into the value
by trusted code in the same process (:func:`detokenize`), never by the
database client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

from governed_db.masking.strategies import Masker, StrategyContext

NAME = "tokenize"
SUMMARY = "Deterministic token TOK_<LABEL>_<16 base32 chars> derived with HMAC; optional in-process vault."

_OUTPUT = re.compile(r"TOK_[A-Z0-9_]+_[A-Z2-7]{16}")


def token_for(key: bytes, label: str, value: Any) -> str:
    data = bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else str(value).encode()
    mac = hmac.new(key, b"tok\x00" + data, hashlib.sha256).digest()
    return f"TOK_{label}_{base64.b32encode(mac[:10]).decode()}"


def build(label: str, options: dict[str, Any], ctx: StrategyContext) -> Masker:
    keep = bool(options.get("vault", False))
    key = ctx.key

    def tokenize(value: Any) -> Any:
        if value is None:
            return None
        token = token_for(key, label, value)
        if keep and len(ctx.vault) < ctx.vault_limit:
            ctx.vault[token] = value
        return token

    return tokenize


def detokenize(token: str, ctx: StrategyContext) -> Any:
    """The value behind ``token`` if this process tokenized it with ``vault: true`` (KeyError otherwise)."""
    return ctx.vault[token]


def is_output(value: str) -> bool:
    return _OUTPUT.fullmatch(value) is not None
