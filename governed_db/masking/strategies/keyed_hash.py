"""``hash``: keyed hash (HMAC-SHA256), deterministic for one key.

Equal inputs give equal outputs, so joins, ``GROUP BY`` and ``COUNT(DISTINCT)``
over the masked values still work, while the key (from configuration or
``GOVERNED_DB_MASKING_KEY``, never in code) keeps a dictionary attack on
low-entropy values (SSNs, phone numbers) out of reach. Text is normalised
per ``normalize`` (``none`` by default; ``casefold`` makes
``Alice@X.com`` and ``alice@x.com`` hash alike).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from governed_db.errors import ConfigurationError
from governed_db.masking.strategies import Masker, StrategyContext

NAME = "hash"
SUMMARY = "Keyed HMAC-SHA256 of the value (hmac:<32 hex>): deterministic per key, so joins and GROUP BY work."

_OUTPUT = re.compile(r"hmac:[0-9a-f]{8,64}")


def digest(key: bytes, label: str, value: Any, length: int = 32) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        data = str(value).encode("utf-8", errors="surrogatepass")
    # the label is not mixed in: equal values in differently labelled columns must still join
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:length]


def build(label: str, options: dict[str, Any], ctx: StrategyContext) -> Masker:
    length = int(options.get("length", 32))
    if not 8 <= length <= 64:
        raise ConfigurationError("hash: length must be between 8 and 64 hex characters")
    normalize = options.get("normalize", "none")
    if normalize not in ("none", "casefold", "strip"):
        raise ConfigurationError("hash: normalize must be 'none', 'casefold' or 'strip'")
    key = ctx.key

    def keyed_hash(value: Any) -> Any:
        if value is None:
            return None
        if normalize != "none" and isinstance(value, str):
            value = value.strip().casefold() if normalize == "casefold" else value.strip()
        return "hmac:" + digest(key, label, value, length)

    return keyed_hash


def is_output(value: str) -> bool:
    return _OUTPUT.fullmatch(value) is not None
