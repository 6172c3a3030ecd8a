"""governed_db: identity, guardrails, masking and a tamper-evident record for any DB-API 2.0 connection.

    conn = governed_db.wrap(sqlite3.connect("app.db"), identity=governed_db.Identity("bot", kind="agent"))

Heavy parts (the OpenTelemetry SDK, phone-number parsing, the drivers) load lazily, so
``import governed_db`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0.dev0"

from governed_db.errors import (
    ApprovalRequired,
    ConfigurationError,
    DependencyUnavailable,
    GovernanceFault,
    GovernedDBError,
    GuardrailViolation,
    InvalidStatement,
)
from governed_db.identity import Identity, acting_as, current_identity
from governed_db.policy.decision import Action, Decision, RuleHit

if TYPE_CHECKING:
    from governed_db.api import govern_module, unwrap, wrap
    from governed_db.otel import instrument_dbapi
    from governed_db.policy import Policy, evaluate

_LAZY = {
    "wrap": "governed_db.api",
    "unwrap": "governed_db.api",
    "govern_module": "governed_db.api",
    "evaluate": "governed_db.policy",
    "Policy": "governed_db.policy",
    "load_policy": "governed_db.policy",
    "identity_from_token": "governed_db.tokens",
    "TokenError": "governed_db.tokens",
    "TokenVerifier": "governed_db.tokens",
    "ClaimsMap": "governed_db.tokens",
    "approvals": "governed_db.approvals",
    "RuleContext": "governed_db.policy",
    "PolicyFileError": "governed_db.policy.file",
    "register_rule": "governed_db.policy.rules",
    "RuleSpec": "governed_db.policy.rules",
    "Finding": "governed_db.policy.rules",
    "AuditStore": "governed_db.audit",
    "instrument_dbapi": "governed_db.otel",
    # `%load_ext governed_db` (IPython looks these up on the package; not in __all__: IPython is optional)
    "load_ipython_extension": "governed_db.integrations.jupyter",
    "unload_ipython_extension": "governed_db.integrations.jupyter",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'governed_db' has no attribute {name!r}")
    import importlib

    imported = importlib.import_module(module)
    value = imported if module.endswith("." + name) else getattr(imported, name)
    globals()[name] = value
    return value


__all__ = [
    "Action",
    "ApprovalRequired",
    "AuditStore",
    "ClaimsMap",
    "ConfigurationError",
    "Decision",
    "DependencyUnavailable",
    "Finding",
    "GovernanceFault",
    "GovernedDBError",
    "GuardrailViolation",
    "Identity",
    "InvalidStatement",
    "Policy",
    "PolicyFileError",
    "RuleContext",
    "RuleHit",
    "RuleSpec",
    "TokenError",
    "TokenVerifier",
    "__version__",
    "acting_as",
    "approvals",
    "current_identity",
    "evaluate",
    "govern_module",
    "identity_from_token",
    "instrument_dbapi",
    "load_policy",
    "register_rule",
    "unwrap",
    "wrap",
]
