"""Who sees what: the ``masking=`` option of :func:`governed_db.wrap`.

Zero configuration means: outside development-like environments
(``development``, ``dev``, ``local``, ``test``) every identity — agent,
service or human — sees sensitive columns masked unless a grant unmasks
them. The option accepts a :class:`MaskingConfig`, a dict with the same keys,
or a path to a YAML/JSON file holding that dict::

    wrap(conn, masking={
        "catalog": "governed-db-catalog.yaml",       # from `governed-db classify`
        "unmask": [
            {"role": "support", "labels": ["EMAIL", "PHONE"], "expires": "2026-12-31T00:00:00Z"},
            {"subject": "alice", "columns": ["users.*"]},
        ],
        "strategies": {"EMAIL": "hash", "users.ssn": {"strategy": "partial", "keep_last": 4}},
    })
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import logging
import os
import secrets as _secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governed_db.environments import DEVELOPMENT_ENVIRONMENTS
from governed_db.errors import ConfigurationError
from governed_db.identity import Identity
from governed_db.masking.labels import DEFAULT_STRATEGIES, normalize_label
from governed_db.masking.strategies import STRATEGY_NAMES

log = logging.getLogger("governed_db.masking")

#: the largest ``sample_rows`` (it becomes a LIMIT, which drivers hold in 64 bits)
MAX_SAMPLE_ROWS = 2**31 - 1

#: environments where masking is off unless ``mode: "on"``
UNMASKED_ENVIRONMENTS = DEVELOPMENT_ENVIRONMENTS
KEY_ENV = "GOVERNED_DB_MASKING_KEY"


@dataclass(frozen=True, slots=True)
class Grant:
    """Unmask ``labels``/``columns`` for identities with ``role`` or ``subject``, until ``expires``."""

    role: str | None = None
    subject: str | None = None
    kind: str | None = None
    labels: frozenset[str] = frozenset()  # empty = every label
    columns: tuple[str, ...] = ()  # ``table.column`` globs; empty = every column
    environments: frozenset[str] = frozenset()  # empty = every environment
    expires: _dt.datetime | None = None
    reason: str | None = None

    def applies(self, identity: Identity, environment: str, now: _dt.datetime) -> bool:
        if self.expires is not None and now >= self.expires:
            return False
        if self.environments and environment not in self.environments:
            return False
        if self.subject is not None and identity.subject != self.subject:
            return False
        if self.kind is not None and identity.kind != self.kind:
            return False
        return self.role is None or identity.has_role(self.role)

    def unmasks(self, table: str, column: str, label: str) -> bool:
        if self.labels and label not in self.labels:
            return False
        if not self.columns:
            return True
        qualified = f"{table}.{column}".lower()
        return any(
            fnmatch.fnmatchcase(qualified, p) or fnmatch.fnmatchcase(column.lower(), p) for p in self.columns
        )


@dataclass(frozen=True, slots=True)
class MaskingConfig:
    #: "auto" (masked outside development-like environments), "on" (always) or "off" (never)
    mode: str = "auto"
    catalog: Any = None
    unmask: tuple[Grant, ...] = ()
    #: label or ``table.column`` -> (strategy name, options)
    strategies: Mapping[str, tuple[str, Mapping[str, Any]]] = field(default_factory=dict)
    key: bytes | None = None
    #: what using a masked column in WHERE/JOIN/ORDER BY/GROUP BY does: "deny" or "require_approval"
    predicate_action: str = "deny"
    #: classify columns missing from the catalog from a sample of their table, on first sight
    online: bool = True
    sample_rows: int = 100
    #: a label needs at least this confidence to mask
    min_confidence: float = 0.5

    def active_in(self, environment: str) -> bool:
        if self.mode == "on":
            return True
        if self.mode == "off":
            return False
        return environment not in UNMASKED_ENVIRONMENTS

    def strategy_for(self, table: str, column: str, label: str) -> tuple[str, Mapping[str, Any]]:
        for key in (f"{table}.{column}".lower(), column.lower(), label):
            if key in self.strategies:
                return self.strategies[key]
        return DEFAULT_STRATEGIES.get(label, ("redact", {}))


def _parse_time(value: Any) -> _dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        moment = value
    elif isinstance(value, _dt.date):
        moment = _dt.datetime(value.year, value.month, value.day)
    else:
        try:
            moment = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ConfigurationError(
                f"masking: expires must be an ISO 8601 date/time, got {value!r}"
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.timezone.utc)


def _grant(raw: Any) -> Grant:
    if isinstance(raw, Grant):
        return raw
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"masking: each unmask entry must be a mapping, got {raw!r}")
    unknown = set(raw) - {"role", "subject", "kind", "labels", "columns", "environments", "expires", "reason"}
    if unknown:
        raise ConfigurationError(f"masking: unknown unmask key(s) {sorted(unknown)}")
    if not any(raw.get(k) for k in ("role", "subject", "kind")):
        raise ConfigurationError("masking: an unmask grant needs a role, a subject or a kind (who it is for)")
    labels = raw.get("labels") or ()
    if isinstance(labels, str):
        labels = [labels]
    columns = raw.get("columns") or ()
    if isinstance(columns, str):
        columns = [columns]
    envs = raw.get("environments") or ()
    if isinstance(envs, str):
        envs = [envs]
    return Grant(
        role=raw.get("role"),
        subject=raw.get("subject"),
        kind=raw.get("kind"),
        labels=frozenset(filter(None, (normalize_label(x) for x in labels))),
        columns=tuple(str(c).lower() for c in columns),
        environments=frozenset(str(e).lower() for e in envs),
        expires=_parse_time(raw.get("expires")),
        reason=raw.get("reason"),
    )


def _strategy_spec(key: str, raw: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(raw, str):
        name, options = raw, {}
    elif isinstance(raw, Mapping) and "strategy" in raw:
        name, options = str(raw["strategy"]), {k: v for k, v in raw.items() if k != "strategy"}
    else:
        raise ConfigurationError(f"masking: strategy for {key!r} must be a name or a mapping with 'strategy'")
    if name not in STRATEGY_NAMES:
        raise ConfigurationError(
            f"masking: unknown strategy {name!r} for {key!r}; choose from {STRATEGY_NAMES}"
        )
    return name, options


def _read_file(path: Path) -> Mapping[str, Any]:
    if not path.exists():
        raise ConfigurationError(f"masking configuration file {str(path)!r} does not exist")
    from governed_db.config_files import load_json, load_yaml, read_config_text

    what = f"masking configuration {str(path)!r}"
    text = read_config_text(path, "masking configuration")  # bounded size and depth: ConfigurationError
    data = load_json(text, what) if path.suffix.lower() == ".json" else load_yaml(text, what)
    if isinstance(data, Mapping) and "masking" in data and isinstance(data["masking"], Mapping):
        data = data["masking"]  # the keys may sit under a top-level "masking:" section
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"masking configuration {str(path)!r} must hold a mapping")
    return data


def load_config(source: Any) -> MaskingConfig:
    """A :class:`MaskingConfig` from ``None``, a config, a mapping or a YAML/JSON path."""
    if source is None:
        return MaskingConfig()
    if isinstance(source, MaskingConfig):
        return source
    if isinstance(source, (str, os.PathLike)):
        base = Path(source).parent
        data = dict(_read_file(Path(source)))
        cat = data.get("catalog")
        if isinstance(cat, str) and not Path(cat).is_absolute():
            data["catalog"] = str(base / cat)
        source = data
    if not isinstance(source, Mapping):
        raise ConfigurationError(
            f"masking must be a MaskingConfig, a mapping or a path, got {type(source).__name__}"
        )
    allowed = {
        "mode",
        "catalog",
        "unmask",
        "strategies",
        "key",
        "predicate_action",
        "online",
        "sample_rows",
        "min_confidence",
    }
    unknown = set(source) - allowed
    if unknown:
        raise ConfigurationError(f"masking: unknown key(s) {sorted(unknown)}; valid keys: {sorted(allowed)}")
    mode = str(source.get("mode", "auto"))
    if mode not in ("auto", "on", "off"):
        raise ConfigurationError(f"masking: mode must be 'auto', 'on' or 'off', got {mode!r}")
    action = str(source.get("predicate_action", "deny"))
    if action not in ("deny", "require_approval"):
        raise ConfigurationError("masking: predicate_action must be 'deny' or 'require_approval'")
    grants = source.get("unmask") or ()
    if isinstance(grants, (Mapping, Grant)):
        grants = [grants]
    if not isinstance(grants, (list, tuple)):
        raise ConfigurationError(f"masking: unmask must be a grant (mapping) or a list of them, got {grants!r}")
    raw_strategies = source.get("strategies") or {}
    if not isinstance(raw_strategies, Mapping):
        raise ConfigurationError(
            f"masking: strategies must be a mapping of label or table.column to strategy, got {raw_strategies!r}"
        )
    strategies: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for k, v in raw_strategies.items():
        label = normalize_label(k)
        key = str(k).lower() if "." in str(k) or label not in DEFAULT_STRATEGIES else str(label)
        strategies[key] = _strategy_spec(str(k), v)
    from governed_db.masking.catalog import Catalog

    catalog = source.get("catalog")
    if catalog is not None and not isinstance(catalog, (str, os.PathLike, Mapping, Catalog)):
        raise ConfigurationError(f"masking catalog must be a path, a mapping or a Catalog, got {catalog!r}")
    key_value = source.get("key")
    if key_value is not None and (not isinstance(key_value, (str, bytes)) or not key_value):
        # bytes(42) would be 42 zero bytes: a key anyone can guess
        raise ConfigurationError(f"masking: key must be a non-empty string or bytes, got {type(key_value).__name__}")
    online = source.get("online", True)
    if not isinstance(online, bool):
        raise ConfigurationError(f"masking: online must be True or False, got {online!r}")
    sample_rows = source.get("sample_rows", 100)
    if isinstance(sample_rows, bool) or not isinstance(sample_rows, int) or not 0 <= sample_rows <= MAX_SAMPLE_ROWS:
        raise ConfigurationError(f"masking: sample_rows must be an integer from 0 to {MAX_SAMPLE_ROWS}, got {sample_rows!r}")
    min_confidence = source.get("min_confidence", 0.5)
    if (
        isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float))
        or not 0.0 <= min_confidence <= 1.0  # NaN fails this too
    ):
        raise ConfigurationError(f"masking: min_confidence must be a number from 0 to 1, got {min_confidence!r}")
    return MaskingConfig(
        mode=mode,
        catalog=catalog,
        unmask=tuple(_grant(g) for g in grants),
        strategies=strategies,
        key=key_value.encode() if isinstance(key_value, str) else key_value,
        predicate_action=action,
        online=online,
        sample_rows=sample_rows,
        min_confidence=float(min_confidence),
    )


_process_key: bytes | None = None


def resolve_key(config: MaskingConfig, environ: Mapping[str, str] | None = None) -> bytes:
    """The HMAC key: configuration, then ``GOVERNED_DB_MASKING_KEY``, then a random per-process key."""
    global _process_key
    if config.key:
        return bytes(config.key)
    env = os.environ if environ is None else environ
    from_env = env.get(KEY_ENV)
    if from_env:
        return from_env.encode("utf-8")
    if _process_key is None:
        _process_key = _secrets.token_bytes(32)
        log.info(
            "governed_db masking: no %s set; keyed hashes and tokens use a random per-process key "
            "(deterministic within this process only)",
            KEY_ENV,
        )
    return _process_key


def unmask_grants(config: MaskingConfig, identity: Identity, environment: str) -> Sequence[Grant]:
    now = _dt.datetime.now(_dt.timezone.utc)
    return [g for g in config.unmask if g.applies(identity, environment, now)]
