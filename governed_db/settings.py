"""Configuration of one governed connection: explicit, frozen, keyword-only.

Environment variables are a documented convenience read once, when a
connection is wrapped (never per statement):

==============================  ===============================================
``GOVERNED_DB_IDENTITY``        identity when ``identity=`` is not given
``GOVERNED_DB_TOKEN``           an identity-provider token to verify instead
``GOVERNED_DB_ENVIRONMENT``     environment when ``environment=`` is not given
``GOVERNED_DB_POLICY``          policy file when ``policy=`` is not given
``GOVERNED_DB_AUDIT``           audit store path when ``audit=`` is not given
==============================  ===============================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from governed_db.errors import ConfigurationError
from governed_db.identity import Identity

#: Options accepted by ``wrap(**options)`` besides the named parameters, with their defaults.
OPTION_DEFAULTS: dict[str, Any] = {
    # force the SQL dialect (needed for drivers governed_db does not know)
    "dialect": None,
    # record raw statement parameters in spans (off: they may hold personal data)
    "capture_parameters": False,
    # append a sqlcommenter comment carrying identity to each statement
    "sqlcommenter": False,
    # set the session's application_name (PostgreSQL) to carry identity; True derives it
    "application_name": None,
    # what a fault inside governance does: "fail" (refuse), "warn" (log, continue) or "auto"
    "on_fault": "auto",
    # masking configuration (see governed_db.masking); None = zero-config defaults
    "masking": None,
    # approvals store / notifier configuration (see governed_db.approvals)
    "approvals": None,
    # how to verify identity-provider tokens (see governed_db.tokens)
    "token": None,
    # follow-up record when a result set is consumed (rows returned, masked cells): None = to the audit store
    # only (cheap); True = also as a span to the application's OpenTelemetry exporter; False = nowhere
    "record_results": None,
    # OpenTelemetry MeterProvider for db.client.operation.duration and governed_db.refusals (None: the global)
    "meter_provider": None,
}

#: Development-like environments: the policy only observes (refusals become warnings), masking is off, and a
#: governance fault warns instead of refusing (``on_fault="auto"``). The one definition; others import it.
DEVELOPMENT_ENVIRONMENTS = frozenset({"development", "dev", "local", "test"})
LENIENT_ENVIRONMENTS = DEVELOPMENT_ENVIRONMENTS


@dataclass(frozen=True, kw_only=True)
class Settings:
    identity: Identity | Callable[[], Any] | None
    environment: str
    policy: Any
    audit: Any
    tracer_provider: Any
    options: Mapping[str, Any] = field(default_factory=dict)

    def option(self, name: str) -> Any:
        return self.options.get(name, OPTION_DEFAULTS[name])

    @property
    def fail_closed(self) -> bool:
        mode = self.option("on_fault")
        if mode == "auto":
            return self.environment not in LENIENT_ENVIRONMENTS
        return bool(mode == "fail")


def build_settings(
    *,
    identity: Any,
    environment: str | None,
    policy: Any,
    audit: Any,
    tracer_provider: Any,
    options: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {', '.join(unknown)}; valid options are: {', '.join(sorted(OPTION_DEFAULTS))}"
        )
    if options.get("on_fault", "auto") not in ("auto", "fail", "warn"):
        raise ConfigurationError(f"on_fault must be 'auto', 'fail' or 'warn', got {options['on_fault']!r}")
    if identity is not None and not isinstance(identity, Identity) and not callable(identity):
        raise ConfigurationError(
            f"identity must be an Identity, a callable returning one (or a token), or None; got {type(identity).__name__}"
        )
    environment = environment or env.get("GOVERNED_DB_ENVIRONMENT") or "production"
    if not isinstance(environment, str) or not environment.strip():
        raise ConfigurationError(f"environment must be a non-empty string, got {environment!r}")
    if policy is None and env.get("GOVERNED_DB_POLICY"):
        policy = env["GOVERNED_DB_POLICY"]
    return Settings(
        identity=identity,
        environment=environment.strip().lower(),
        policy=policy,
        audit=audit,
        tracer_provider=tracer_provider,
        options=dict(options),
    )
