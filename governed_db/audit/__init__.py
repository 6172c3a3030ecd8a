"""The tamper-evident activity record, fed by governed_db's OpenTelemetry spans.

Interface used by :func:`governed_db.api.wrap` and ``governed_db.telemetry``::

    processor = audit_processor(option)   # option: the wrap(audit=...) value
    # -> opentelemetry.sdk.trace.SpanProcessor | None

``audit=`` accepts:

* ``None`` — the default store: ``$GOVERNED_DB_AUDIT`` if set, else
  ``$XDG_DATA_HOME/governed_db/audit.jsonl`` (``~/.local/share/...``);
* ``False`` — no local store (spans still reach any OpenTelemetry exporter);
* a path (``str`` / ``os.PathLike``; a directory means ``DIR/audit.jsonl``);
* a mapping ``{"path": ..., "key": ..., "fsync_interval": 1.0, "checkpoint_every": 1000,
  "checkpoint_interval": 60.0, "idle_close": 60.0, "rotate_bytes": 64 MiB, "retain_bytes": None,
  "retain_age": None}``;
* an :class:`AuditStore` or :class:`AuditSpanProcessor` built by the application.

The checkpoint HMAC key comes from the mapping's ``key`` or from
``GOVERNED_DB_AUDIT_KEY``. Connections sharing a store share one processor per
process, so the chain has one writer object per process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governed_db.audit.records import env_key
from governed_db.audit.store import AuditStore, AuditStoreError, delete_store, read_records
from governed_db.audit.verify import VerifyResult, verify
from governed_db.errors import ConfigurationError

if TYPE_CHECKING:
    from governed_db.audit.metrics import SpanMetrics
    from governed_db.audit.processor import AuditSpanProcessor, metrics_processor

#: loaded on first use: the span processor brings the OpenTelemetry SDK, which reading the store never needs
_LAZY = {"AuditSpanProcessor": "governed_db.audit.processor", "metrics_processor": "governed_db.audit.processor",
         "SpanMetrics": "governed_db.audit.metrics"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'governed_db.audit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


log = logging.getLogger("governed_db.audit")

_cache: dict[Path, AuditSpanProcessor] = {}
#: the settings (binding digests, and all of them as given) each cached store was opened with
_opened_with: dict[Path, tuple[dict[str, str], dict[str, Any]]] = {}
_by_store: weakref.WeakKeyDictionary[AuditStore, AuditSpanProcessor] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()
_STORE_OPTIONS = frozenset({"path", "key", "fsync_interval", "checkpoint_every", "checkpoint_interval",
                            "idle_close", "rotate_bytes", "retain_bytes", "retain_age", "witness",
                            "witness_table", "stat_interval", "journal"})


def default_store_path() -> Path:
    """``$GOVERNED_DB_AUDIT``, else ``$XDG_DATA_HOME/governed_db/audit.jsonl``."""
    configured = os.environ.get("GOVERNED_DB_AUDIT")
    if configured:
        return Path(configured).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data_home) / "governed_db" / "audit.jsonl"


def _normalise(path: Path) -> Path:
    p = path.expanduser()
    if p.is_dir():
        p = p / "audit.jsonl"
    return p.resolve()


def audit_processor(option: Any) -> AuditSpanProcessor | None:
    """The span processor recording into the store ``option`` names (see the module docs)."""
    if option is False:
        return None
    from governed_db.audit.metrics import SpanMetrics
    from governed_db.audit.processor import AuditSpanProcessor

    if isinstance(option, AuditSpanProcessor):
        return option
    if isinstance(option, AuditStore):
        with _cache_lock:
            found = _by_store.get(option)
            if found is None:
                found = _by_store[option] = AuditSpanProcessor(option, metrics=SpanMetrics())
            return found
    settings: dict[str, Any] = {}
    if option is None or option is True:
        path = default_store_path()
    elif isinstance(option, (str, os.PathLike)):
        if not str(option).strip():
            raise ConfigurationError("audit= is an empty path; pass a file path, False, or leave it out")
        path = Path(option)
    elif isinstance(option, Mapping):
        unknown = set(option) - _STORE_OPTIONS
        if unknown:
            raise ConfigurationError(f"unknown audit option(s) {sorted(unknown)}; valid: {sorted(_STORE_OPTIONS)}")
        settings = {k: v for k, v in option.items() if k != "path"}
        given = option.get("path")
        if given is not None and (not isinstance(given, (str, os.PathLike)) or not str(given).strip()):
            raise ConfigurationError(f"audit path must be a non-empty str or path, got {given!r}")
        path = Path(given) if given is not None else default_store_path()
    else:
        raise ConfigurationError(
            f"audit= takes a path, a mapping, an AuditStore, False or None; got {type(option).__name__}")
    settings.setdefault("key", env_key())
    if os.environ.get("GOVERNED_DB_AUDIT_WITNESS"):
        settings.setdefault("witness", os.environ["GOVERNED_DB_AUDIT_WITNESS"])
    return _cached(_normalise(path), settings, lambda: AuditStore(path, **settings))


#: settings that decide what the record proves or keeps: a second opening must agree on them
_BINDING = ("key", "rotate_bytes", "retain_bytes", "retain_age")


def _fingerprint(settings: Mapping[str, Any]) -> dict[str, str]:
    """Digests of the binding settings (never the key itself), to tell a second, different opening apart."""
    return {k: hashlib.sha256(repr(settings.get(k)).encode()).hexdigest() for k in _BINDING}


def _tuning(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k not in _BINDING}


def _cached(path: Path, settings: Mapping[str, Any], make: Any) -> AuditSpanProcessor:
    from governed_db.audit.metrics import SpanMetrics
    from governed_db.audit.processor import AuditSpanProcessor

    wanted = _fingerprint(settings)
    with _cache_lock:
        processor = _cache.get(path)
        if processor is None:
            processor = _cache[path] = AuditSpanProcessor(make(), metrics=SpanMetrics())
            _opened_with[path] = (wanted, _tuning(settings))
            return processor
        first, first_settings = _opened_with.get(path, (wanted, _tuning(settings)))
    differ = [k for k in _BINDING if first[k] != wanted[k]]
    if differ:
        # one file, one writer per process: a silent share would chain and seal with the first opener's key
        raise ConfigurationError(
            f"the audit store {str(path)!r} is already open in this process with a different "
            f"{' and '.join(differ)}; pass the same audit= settings to every connection that records there, "
            "or give this one another path"
        )
    given = _tuning(settings)
    tuning = sorted(k for k in set(given) | set(first_settings) if given.get(k) != first_settings.get(k))
    if tuning:  # fsync and checkpoint pacing: the first opening's values keep applying, say so
        log.warning("governed_db audit: %s is already open in this process; its first settings for %s apply",
                    path, ", ".join(tuning))
    return processor


__all__ = [
    "AuditSpanProcessor",
    "AuditStore",
    "AuditStoreError",
    "SpanMetrics",
    "VerifyResult",
    "audit_processor",
    "default_store_path",
    "delete_store",
    "metrics_processor",
    "read_records",
    "verify",
]
