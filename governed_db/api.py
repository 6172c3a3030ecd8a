"""The one-line ways in: :func:`wrap`, :func:`unwrap`, :func:`govern_module`."""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any, TypeVar

from governed_db.audit import audit_processor
from governed_db.drivers import Driver, driver_for, innermost
from governed_db.errors import ConfigurationError
from governed_db.identity import Identity
from governed_db.metrics import StatementMetrics
from governed_db.pipeline import Governor
from governed_db.proxies import GovernedConnection
from governed_db.settings import Settings, build_settings
from governed_db.telemetry import recorder_for


def _is_governed(conn: Any) -> bool:
    return isinstance(conn, GovernedConnection) and type(conn).__module__.startswith("governed_db")


#: the wrapped connection's type: ``wrap(sqlite3.connect(...))`` is typed ``sqlite3.Connection``,
#: ``wrap(await asyncpg.connect(...))`` ``asyncpg.Connection`` (the proxy passes ``isinstance`` as the driver's)
ConnectionT = TypeVar("ConnectionT")


def wrap(
    conn: ConnectionT,
    *,
    identity: Identity | Callable[[], Identity | str] | None = None,
    environment: str | None = None,
    policy: Any = None,
    audit: Any = None,
    tracer_provider: Any = None,
    **options: Any,
) -> ConnectionT:
    """Govern a DB-API 2.0 connection (or an async driver's); returns a proxy typed and behaving like it.

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
    session = _check_lexing(raw, driver)
    governed: ConnectionT = _govern(conn, raw, driver, settings)
    _check_result_encoding(governed, session)
    return governed


def _unknown_async(conn: Any) -> bool:
    """An async connection no driver module covers (the generic proxies would hand out unawaited coroutines)."""
    from governed_db.async_proxies import looks_async

    raw = innermost(conn)
    return looks_async(raw) and not driver_for(conn).is_async
def _check_lexing(raw: Any, driver: Driver) -> dict[str, str | None]:
    """Refuse a session the server would read differently from the analyser (GBK, non-standard strings...)."""
    from governed_db.sql._lexing import unsafe_session

    try:
        values = driver.lexing_settings(raw)
    except Exception as e:  # cannot tell how the server reads SQL: never govern on a guess
        raise ConfigurationError(
            f"could not read the session's encoding and quoting settings ({type(e).__name__}: {e}); "
            "governed_db does not govern a connection it cannot read the SQL of as the server does"
        ) from None
    bad = unsafe_session(values) if values else []
    if bad:
        raise ConfigurationError(
            f"this session's settings make the server read SQL differently from governed_db's analyser "
            f"({', '.join(bad)}); connect with a UTF-8 client encoding, standard_conforming_strings = on and no "
            "ANSI_QUOTES / NO_BACKSLASH_ESCAPES in sql_mode"
        )
    return dict(values or {})


def _check_result_encoding(governed: Any, session: dict[str, str | None]) -> None:
    """Refuse a masked PostgreSQL session whose client encoding lacks characters (decision 0210): the server
    fails to send a value it cannot convert, so whether a plain read of a masked column fails would say what
    the value holds."""
    from governed_db.sql._lexing import lossless_encoding

    gov = getattr(governed, "_self_gov", None)
    if gov is None or gov.dialect not in ("postgres", "postgresql") or "client_encoding" not in session:
        return
    encoding = session["client_encoding"]
    if lossless_encoding(encoding):
        return
    from governed_db import masking

    if masking._state_for(gov).active:
        raise ConfigurationError(
            f"this session's client encoding is {encoding}: PostgreSQL fails to send a value holding a character "
            "it lacks, so which reads of a masked column fail would tell what the values hold; connect with "
            "client_encoding UTF8 (decode on the client if you need another)"
        )


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
    proxy = (driver.connection_proxy or GovernedConnection)(conn, gov)
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
        module = self.__dict__["_governed_module"]
        value = getattr(module, name)
        if value is getattr(module, "connect", None) or _connection_class(value):
            # pymysql.Connect / Connection, sqlite3.Connection(...), psycopg.Connection.connect(...): connections
            # made through any of them are governed too
            return _governed_factory(value, self.__dict__["_governed_options"])
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


def _connection_class(value: Any) -> bool:
    return isinstance(value, type) and callable(getattr(value, "cursor", None)) and (
        callable(getattr(value, "commit", None)) or callable(getattr(value, "close", None))
    )


class _GovernedFactoryMeta(type):
    """A stand-in for a driver's connection class: calling it, or its ``connect()``, gives governed connections;
    ``isinstance(conn, module.Connection)`` keeps answering for the driver's class."""

    _gd_target: Any
    _gd_options: dict[str, Any]

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return _wrap_made(cls._gd_target(*args, **kwargs), cls._gd_options)

    def __getattr__(cls, name: str) -> Any:
        value = getattr(cls._gd_target, name)
        if name in ("connect", "connect_async") and callable(value):
            options = cls._gd_options

            def make(*args: Any, **kwargs: Any) -> Any:
                return _wrap_made(value(*args, **kwargs), options)

            return make
        return value

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls._gd_target)

    def __subclasscheck__(cls, sub: Any) -> bool:
        return isinstance(sub, type) and issubclass(sub, cls._gd_target)

    def __repr__(cls) -> str:
        return f"<governed {cls._gd_target!r}>"


def _wrap_made(made: Any, options: dict[str, Any]) -> Any:
    if inspect.isawaitable(made):  # psycopg AsyncConnection.connect(): wrap what it resolves to

        async def later() -> Any:
            return wrap(await made, **options)

        return later()
    return wrap(made, **options)


def _governed_factory(value: Any, options: dict[str, Any]) -> Any:
    if isinstance(value, type):
        return _GovernedFactoryMeta(value.__name__, (), {"_gd_target": value, "_gd_options": options})

    def make(*args: Any, **kwargs: Any) -> Any:
        return _wrap_made(value(*args, **kwargs), options)

    return make


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
