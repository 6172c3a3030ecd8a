"""The one-line ways in: :func:`wrap`, :func:`unwrap`, :func:`govern_module`."""

from __future__ import annotations

import types
from typing import Any

from governed_db.audit import audit_processor
from governed_db.drivers import Driver, driver_for, innermost
from governed_db.errors import ConfigurationError
from governed_db.metrics import StatementMetrics
from governed_db.pipeline import Governor
from governed_db.settings import Settings, build_settings
from governed_db.telemetry import recorder_for


def _is_governed(conn: Any) -> bool:
    from governed_db.proxies import GovernedConnection

    return isinstance(conn, GovernedConnection) and type(conn).__module__.startswith("governed_db")


def wrap(
    conn: Any,
    *,
    identity: Any = None,
    environment: str | None = None,
    policy: Any = None,
    audit: Any = None,
    tracer_provider: Any = None,
    **options: Any,
) -> Any:
    """Govern a DB-API 2.0 connection; returns a proxy that behaves like it.

    Every statement then carries ``identity``, is judged by ``policy`` in
    ``environment`` before it reaches the database, comes back masked, and is
    recorded as an OpenTelemetry span (and in the ``audit`` store).
    """
    if conn is not None and _unknown_async(conn):
        raise ConfigurationError(
            f"{type(conn).__module__}.{type(conn).__name__} is an async connection of a driver governed_db "
            "does not know; governed_db governs psycopg.AsyncConnection, asyncpg, aiosqlite and aiomysql "
            "connections (and any DB-API 2.0 sync connection)"
        )
    if conn is None or not callable(getattr(conn, "cursor", None)):
        raise ConfigurationError(
            f"wrap() needs a DB-API 2.0 connection (an object with cursor()), got {type(conn).__name__}; "
            "pass what your driver's connect() returned"
        )
    if type(conn).__name__ == "GovernedConnection" or _is_governed(conn):
        raise ConfigurationError("this connection is already governed; wrap the raw connection once")
    settings = build_settings(
        identity=identity,
        environment=environment,
        policy=policy,
        audit=audit,
        tracer_provider=tracer_provider,
        options=options,
    )
    driver = driver_for(conn)
    raw = innermost(conn)
    if driver.is_closed(raw):
        raise ConfigurationError("the connection is closed; wrap an open connection")
    return _govern(conn, raw, driver, settings)


def _unknown_async(conn: Any) -> bool:
    """An async connection no driver module covers (the generic proxies would hand out unawaited coroutines)."""
    from governed_db.async_proxies import looks_async

    raw = innermost(conn)
    return looks_async(raw) and not driver_for(conn).is_async


def _govern(conn: Any, raw: Any, driver: Driver, settings: Settings) -> Any:
    processor = audit_processor(settings.audit)
    recorder = recorder_for(
        settings.tracer_provider,
        processor,
        record_results=settings.option("record_results"),
        static_attributes=driver.static_attributes(raw),
        environment=settings.environment,
        capture_parameters=bool(settings.option("capture_parameters")),
    )
    gov = Governor(conn, driver, settings, recorder)
    gov.audit = processor
    gov.metrics = StatementMetrics(settings.option("meter_provider"), recorder.static)
    _apply_application_name(raw, gov)
    proxy = driver.connection_proxy(conn, gov)
    on_wrap = getattr(driver, "on_wrap", None)
    if on_wrap is not None:
        on_wrap(proxy, gov)
    return proxy


def _apply_application_name(raw: Any, gov: Governor) -> None:
    """Opt-in: show the identity in pg_stat_activity and the server log, once per session (free per statement).

    Runs only on an idle session; when the driver is not in autocommit mode the
    one statement it runs is committed, so no transaction is left open.
    """
    value = gov.settings.option("application_name")
    if not value:
        return
    if gov.driver.is_async:
        raise ConfigurationError(
            "application_name= is not available for async connections; pass application_name to the "
            "driver's connect() (or use sqlcommenter=True to carry identity per statement)"
        )
    if gov.dialect not in ("postgres", "postgresql"):
        raise ConfigurationError(
            f"application_name= is supported on PostgreSQL connections only (this one speaks {gov.dialect}); "
            "use sqlcommenter=True to carry identity to other databases"
        )
    if value is True:
        ident = gov.resolve_identity()
        value = f"governed_db {ident.kind}:{ident.subject}" + (f" for {ident.on_behalf_of}" if ident.on_behalf_of else "")
    if not isinstance(value, str):
        raise ConfigurationError(f"application_name must be True or a string, got {type(value).__name__}")
    if not _pg_idle(raw):
        raise ConfigurationError("application_name= needs an idle session: wrap the connection before starting a transaction")
    cur = raw.cursor()
    try:
        cur.execute("SELECT set_config('application_name', %s, false)", (value[:63],))
        cur.fetchall()
    finally:
        cur.close()
    if not getattr(raw, "autocommit", True):
        raw.commit()


def _pg_idle(raw: Any) -> bool:
    info = getattr(raw, "info", None)  # psycopg 3
    if info is not None and hasattr(info, "transaction_status"):
        return int(info.transaction_status) == 0
    status = getattr(raw, "get_transaction_status", None)  # psycopg2
    return status is None or int(status()) == 0


def unwrap(conn: Any) -> Any:
    """The connection given to :func:`wrap` (for APIs that type-check in C, e.g. sqlite3 ``backup`` targets)."""
    if not _is_governed(conn):
        raise ConfigurationError(f"unwrap() takes a governed connection, got {type(conn).__name__}")
    return conn.__wrapped__


def _check_audit_option(audit: Any) -> None:
    """The shape of ``audit=`` (the store itself is opened at the first connect)."""
    import os
    from collections.abc import Mapping

    from governed_db.audit import AuditSpanProcessor, AuditStore

    if audit is None or isinstance(audit, (bool, str, os.PathLike, Mapping, AuditStore, AuditSpanProcessor)):
        return
    raise ConfigurationError(
        f"audit= takes a path, a mapping, an AuditStore, False or None; got {type(audit).__name__}"
    )


class GovernedModule(types.ModuleType):
    """A DB-API 2.0 module facade whose ``connect()`` returns governed connections."""

    def __init__(self, module: types.ModuleType, options: dict[str, Any]) -> None:
        super().__init__(module.__name__, getattr(module, "__doc__", None))
        self.__dict__["_governed_module"] = module
        self.__dict__["_governed_options"] = options

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        module = self.__dict__["_governed_module"]
        # looked up at call time, so instrumentation that patched module.connect still applies
        return wrap(module.connect(*args, **kwargs), **self.__dict__["_governed_options"])

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.__dict__["_governed_module"], name)
        # drivers with module-level SQL (duckdb's default connection) route it through governance
        driver = self.__dict__.get("_governed_driver")
        if driver is None:
            from governed_db.drivers import driver_for_module

            driver = self.__dict__["_governed_driver"] = driver_for_module(self.__dict__["_governed_module"])
        return driver.module_attribute(self, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.__dict__["_governed_module"])) | {"connect"})

    def __repr__(self) -> str:
        return f"<governed module {self.__name__!r}>"


_DBAPI_NAMES = ("connect", "apilevel", "paramstyle")


def govern_module(
    dbapi_module: types.ModuleType,
    *,
    identity: Any = None,
    environment: str | None = None,
    policy: Any = None,
    audit: Any = None,
    tracer_provider: Any = None,
    **options: Any,
) -> GovernedModule:
    """``sqlite3 = governed_db.govern_module(sqlite3)``: a drop-in module whose connections are governed."""
    if not isinstance(dbapi_module, types.ModuleType) or not all(hasattr(dbapi_module, n) for n in _DBAPI_NAMES):
        raise ConfigurationError(
            f"govern_module() takes a DB-API 2.0 driver module (with connect, apilevel, paramstyle), "
            f"got {dbapi_module!r}"
        )
    # validate the options now rather than at the first connect()
    settings = build_settings(
        identity=identity, environment=environment, policy=policy, audit=audit,
        tracer_provider=tracer_provider, options=options,
    )
    from governed_db.policy import load_policy

    load_policy(settings.policy)  # cached: the first connect() reuses it
    _check_audit_option(audit)
    opts = dict(options, identity=identity, environment=environment, policy=policy, audit=audit,
                tracer_provider=tracer_provider)
    return GovernedModule(dbapi_module, opts)
