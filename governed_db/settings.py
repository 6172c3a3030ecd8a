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

from governed_db.environments import DEVELOPMENT_ENVIRONMENTS
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
LENIENT_ENVIRONMENTS = DEVELOPMENT_ENVIRONMENTS


@dataclass(frozen=True, kw_only=True, slots=True)
class Options:
    """The ``wrap(**options)`` values, checked and typed once at wrap time (see :data:`OPTION_DEFAULTS`).

    ``masking``, ``approvals`` and ``token`` keep the shape the caller gave (their modules own the
    parsing) but have been parsed once already, so a bad value never waits for the first statement.
    """

    dialect: str | None = None
    capture_parameters: bool = False
    sqlcommenter: bool = False
    application_name: bool | str | None = None
    on_fault: str = "auto"
    masking: Any = None
    approvals: Any = None
    token: Any = None
    record_results: bool | None = None
    meter_provider: Any = None


def _flag(name: str, value: Any, *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        allowed = "True, False or None" if optional else "True or False"
        raise ConfigurationError(f"{name} must be {allowed}, got {value!r}")
    return value


def _dialect(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"dialect must be a SQL dialect name such as 'postgres' or 'mysql', got {value!r}")
    from sqlglot.dialects.dialect import Dialect

    from governed_db.sql.analysis import SQLGLOT_DIALECTS, sqlglot_dialect

    name = value.strip().lower()
    try:
        Dialect.get_or_raise(sqlglot_dialect(name))
    except Exception:
        known = ", ".join(sorted(SQLGLOT_DIALECTS))
        raise ConfigurationError(
            f"unknown SQL dialect {value!r}; use one governed_db knows ({known}) or any sqlglot dialect name"
        ) from None
    return name


def build_options(options: Mapping[str, Any], *, policy: Any = None) -> Options:
    """Check every ``wrap(**options)`` value now; ConfigurationError naming the option otherwise."""
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {', '.join(unknown)}; valid options are: {', '.join(sorted(OPTION_DEFAULTS))}"
        )

    def get(name: str) -> Any:
        return options.get(name, OPTION_DEFAULTS[name])

    on_fault = get("on_fault")
    if on_fault not in ("auto", "fail", "warn"):
        raise ConfigurationError(f"on_fault must be 'auto', 'fail' or 'warn', got {on_fault!r}")
    application_name = get("application_name")
    if application_name is False:
        application_name = None
    if application_name is not None and application_name is not True and (
        not isinstance(application_name, str) or not application_name.strip()
    ):
        raise ConfigurationError(
            f"application_name must be True (derived from the identity) or a non-empty string, got {application_name!r}"
        )
    masking = get("masking")
    if masking is not None:
        from governed_db.masking.catalog import load_catalog
        from governed_db.masking.config import load_config

        # the catalog too (a missing or malformed file refused every statement instead of this wrap)
        load_catalog(load_config(masking).catalog)
    approvals = get("approvals")
    if approvals is not None:
        from governed_db.approvals import open_store, resolve_config

        config = resolve_config(approvals, policy)
        if config.enabled and isinstance(config.store, (str, os.PathLike)):
            open_store(config.store)  # parses the URL (scheme, schema, timeout); connects only when used
    token = get("token")
    if token is not None:
        from governed_db.tokens.config import check_option

        check_option(token)
    return Options(
        dialect=_dialect(get("dialect")),
        capture_parameters=_flag("capture_parameters", get("capture_parameters")),
        sqlcommenter=_flag("sqlcommenter", get("sqlcommenter")),
        application_name=application_name,
        on_fault=on_fault,
        masking=masking,
        approvals=approvals,
        token=token,
        record_results=_flag("record_results", get("record_results"), optional=True),
        meter_provider=_meter_provider(get("meter_provider")),
    )


def _meter_provider(value: Any) -> Any:
    if value is not None and not callable(getattr(value, "get_meter", None)):
        raise ConfigurationError(
            f"meter_provider must be an OpenTelemetry MeterProvider (with get_meter()), got {type(value).__name__}"
        )
    return value


@dataclass(frozen=True, kw_only=True)
class Settings:
    identity: Identity | Callable[[], Any] | None
    environment: str
    policy: Any
    audit: Any
    tracer_provider: Any
    #: the options as given (kept for introspection); :attr:`opts` is what governance reads
    options: Mapping[str, Any] = field(default_factory=dict)
    opts: Options = field(default_factory=Options)

    def option(self, name: str) -> Any:
        return getattr(self.opts, name)

    @property
    def fail_closed(self) -> bool:
        mode = self.opts.on_fault
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
    if identity is not None and not isinstance(identity, Identity) and not callable(identity):
        raise ConfigurationError(
            f"identity must be an Identity, a callable returning one (or a token), or None; got {type(identity).__name__}"
        )
    if environment is not None and not isinstance(environment, str):
        raise ConfigurationError(f"environment must be a non-empty string, got {environment!r}")  # 0, [] as well
    environment = environment or env.get("GOVERNED_DB_ENVIRONMENT") or "production"
    if not isinstance(environment, str) or not environment.strip():
        raise ConfigurationError(f"environment must be a non-empty string, got {environment!r}")
    if policy is None and env.get("GOVERNED_DB_POLICY"):
        policy = env["GOVERNED_DB_POLICY"]
    if tracer_provider is not None and not callable(getattr(tracer_provider, "get_tracer", None)):
        raise ConfigurationError(
            f"tracer_provider must be an OpenTelemetry TracerProvider (with get_tracer()), got "
            f"{type(tracer_provider).__name__}"
        )
    opts = build_options(options, policy=policy)
    return Settings(
        identity=identity,
        environment=environment.strip().lower(),
        policy=policy,
        audit=audit,
        tracer_provider=tracer_provider,
        options=dict(options),
        opts=opts,
    )
