"""SQLAlchemy: an engine whose every pooled connection is governed.

    from governed_db.integrations.sqlalchemy import create_engine
    engine = create_engine("postgresql+psycopg://app@db/prod", identity=Identity("report-bot", kind="agent"))

The engine is an ordinary :class:`sqlalchemy.engine.Engine`: Core, ORM
sessions, pandas, jupysql and LangChain all use it unchanged. governed_db
hooks the dialect's ``do_connect`` event, so the URL is still turned into
driver arguments by SQLAlchemy and only the finished DB-API connection is
wrapped. Everything SQLAlchemy runs — your statements and its own
housekeeping (pre-ping, PRAGMAs, version and reflection queries, savepoints)
— goes through the pipeline; a refusal is a subclass of the driver's
``ProgrammingError``, so SQLAlchemy raises it as ``sqlalchemy.exc.DBAPIError``
with ``exc.orig`` the :class:`~governed_db.errors.GuardrailViolation`.

The same without this module (the "creator recipe")::

    engine = sqlalchemy.create_engine(
        "sqlite://", creator=lambda: governed_db.wrap(sqlite3.connect("app.db"), identity=...))

``creator=`` bypasses the URL's connection arguments, which is why the helper
uses ``do_connect`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governed_db.errors import ConfigurationError
from governed_db.integrations.tooling import refusal_message, refusal_of
from governed_db.settings import OPTION_DEFAULTS, build_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

#: SQLAlchemy dialect name -> sqlglot dialect governed_db parses with
SQLGLOT_DIALECTS: dict[str, str] = {
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "duckdb": "duckdb",
}

#: the URL schemes this module is tested with (others work when their driver does)
SUPPORTED = (
    "sqlite",
    "sqlite+pysqlite",
    "postgresql+psycopg",
    "postgresql+psycopg2",
    "mysql+pymysql",
    "mariadb+pymysql",
    "duckdb",
)


def create_engine(
    url: Any,
    *,
    identity: Any = None,
    environment: str | None = None,
    policy: Any = None,
    audit: Any = None,
    tracer_provider: Any = None,
    wrap_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Engine:
    """``sqlalchemy.create_engine`` whose connections are governed.

    Keyword arguments named like a :func:`governed_db.wrap` option
    (``masking``, ``approvals``, ``on_fault``, ``sqlcommenter``...) go to
    ``wrap``; ``wrap_options`` passes them explicitly; everything else goes
    to :func:`sqlalchemy.create_engine` (``pool_pre_ping``, ``echo``,
    ``connect_args``...). ``creator=`` is refused: pass the URL instead, or
    use the creator recipe in this module's docstring.
    """
    import sqlalchemy

    options, engine_kwargs = _split(kwargs, wrap_options)
    # fail now, not at the first checkout, on a bad option or identity
    build_settings(
        identity=identity, environment=environment, policy=policy, audit=audit,
        tracer_provider=tracer_provider, options=options,
    )
    try:
        dialect = sqlalchemy.engine.make_url(url).get_dialect()
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError) as e:
        raise ConfigurationError(
            f"{_redacted(url)!r} is not a database URL SQLAlchemy can use ({e}); write it like "
            "sqlite:///app.db, postgresql+psycopg://user@host/db or mysql+pymysql://user@host/db"
        ) from None
    if dialect.driver == "psycopg2":
        install_psycopg2_shim()  # before create_engine: the dialect captures its extras module there
    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    if "dialect" not in options:
        guessed = SQLGLOT_DIALECTS.get(engine.dialect.name)
        if guessed is not None:
            options["dialect"] = guessed
    wrap_kwargs = dict(
        options, identity=identity, environment=environment, policy=policy, audit=audit,
        tracer_provider=tracer_provider,
    )
    govern_engine(engine, **wrap_kwargs)
    return engine


def _redacted(url: Any) -> str:
    """``url`` for a message, without its password."""
    try:
        import sqlalchemy

        return str(sqlalchemy.engine.make_url(url).render_as_string(hide_password=True))
    except Exception:
        return "<the URL>" if "@" in str(url) else str(url)


#: the async URL schemes :func:`create_async_engine` is tested with
SUPPORTED_ASYNC = (
    "postgresql+asyncpg",
    "postgresql+psycopg_async",
    "postgresql+psycopg",
    "sqlite+aiosqlite",
    "mysql+aiomysql",
)


def create_async_engine(
    url: Any,
    *,
    identity: Any = None,
    environment: str | None = None,
    policy: Any = None,
    audit: Any = None,
    tracer_provider: Any = None,
    wrap_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> AsyncEngine:
    """``sqlalchemy.ext.asyncio.create_async_engine`` whose connections are governed.

    Arguments as for :func:`create_engine`. The async dialects (asyncpg,
    psycopg async, aiosqlite, aiomysql) connect with the async driver and
    hand SQLAlchemy an adapter around its connection; the same ``do_connect``
    hook governs the driver's connection inside that adapter, so Core and ORM
    statements run through governed_db's async proxies.
    """
    from sqlalchemy.ext.asyncio import create_async_engine as sa_create_async_engine

    options, engine_kwargs = _split(kwargs, wrap_options)
    build_settings(
        identity=identity, environment=environment, policy=policy, audit=audit,
        tracer_provider=tracer_provider, options=options,
    )
    engine = sa_create_async_engine(url, **engine_kwargs)
    guessed = SQLGLOT_DIALECTS.get(engine.dialect.name)
    if guessed is not None:
        options.setdefault("dialect", guessed)
    govern_engine(
        engine.sync_engine,
        **dict(options, identity=identity, environment=environment, policy=policy, audit=audit,
               tracer_provider=tracer_provider),
    )
    return engine


def _split(kwargs: dict[str, Any], wrap_options: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``wrap()`` options and engine arguments out of one set of keyword arguments."""
    options = dict(wrap_options or {})
    engine_kwargs: dict[str, Any] = {}
    for name, value in kwargs.items():
        (options if name in OPTION_DEFAULTS else engine_kwargs)[name] = value
    if "creator" in engine_kwargs or "async_creator" in engine_kwargs:
        raise ConfigurationError(
            "governed_db.sqlalchemy builds the connections itself; drop creator=/async_creator= and "
            "pass the URL, or wrap the connections yourself (governed_db.wrap) in your creator"
        )
    return options, engine_kwargs


def govern_engine(engine: Engine, **wrap_kwargs: Any) -> Engine:
    """Govern the connections an existing, not yet used engine makes (``do_connect`` hook).

    For engines created elsewhere (jupysql, a framework). Connections already
    in the engine's pool are not governed: call this before the first use, or
    ``engine.dispose()`` first.
    """
    from sqlalchemy import event

    from governed_db.api import wrap

    if getattr(engine, "_governed_db", False):
        raise ConfigurationError("this engine is already governed")
    pool = engine.pool
    in_use = [getattr(pool, name, lambda: 0)() for name in ("checkedin", "checkedout")]
    if any(isinstance(n, int) and n > 0 for n in in_use):
        raise ConfigurationError(
            "this engine already holds ungoverned connections; call engine.dispose() (and return any "
            "checked-out connection) before govern_engine(), or create it with governed_db.sqlalchemy.create_engine"
        )

    def _connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
        raw = dialect.connect(*cargs, **cparams)
        try:
            governed = _wrap_dbapi(raw, wrap, wrap_kwargs)
        except BaseException:
            raw.close()  # never leak (or pool) an ungoverned connection
            raise
        _set_up(governed, True)  # SQLAlchemy's connect-time queries (version, settings) follow
        return governed

    def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        _set_up(dbapi_connection, False)  # the application's statements start here

    event.listen(engine, "do_connect", _connect)
    event.listen(engine, "checkout", _checkout)  # pool event on the engine: survives dispose()
    engine._governed_db = True  # type: ignore[attr-defined]
    # marks the dialect too: the Jupyter extension's class-level listener then leaves this engine alone
    engine.dialect._governed_db = True  # type: ignore[attr-defined]
    return engine


def _set_up(conn: Any, value: bool) -> None:
    """Mark a governed connection as being set up by SQLAlchemy (its queries then spend no rate-limit budget)."""
    gov = getattr(conn, "_self_gov", None)
    if gov is None:  # an async dialect's adapter, or duckdb_engine's wrapper, around the governed connection
        gov = getattr(async_adapted(conn) or _duckdb_engine_inner(conn), "_self_gov", None)
    if gov is not None:
        gov.setting_up = value


def _wrap_dbapi(raw: Any, wrap: Any, wrap_kwargs: dict[str, Any]) -> Any:
    adapted = async_adapted(raw)
    if adapted is not None:
        # an async dialect's adapter (AsyncAdapt_asyncpg_connection...): it calls the driver's connection,
        # so that connection is what gets governed; SQLAlchemy keeps the adapter it knows
        raw._connection = wrap(adapted, **wrap_kwargs)
        return raw
    inner = _duckdb_engine_inner(raw)
    if inner is None:
        return wrap(raw, **wrap_kwargs)
    # duckdb_engine hands SQLAlchemy its own ConnectionWrapper, whose cursors run statements on the
    # duckdb connection itself (``conn.execute``). Govern that inner connection so the duckdb driver's
    # proxies (and duckdb's own error classes, which SQLAlchemy wraps as DBAPIError) apply.
    from duckdb_engine import ConnectionWrapper

    return ConnectionWrapper(wrap(inner, **wrap_kwargs))


def async_adapted(raw: Any) -> Any:
    """The async driver connection inside a SQLAlchemy async adapter (``None``: ``raw`` is no such adapter)."""
    if not type(raw).__module__.startswith("sqlalchemy.") or not type(raw).__name__.startswith("AsyncAdapt"):
        return None
    return getattr(raw, "_connection", None)


def _duckdb_engine_inner(raw: Any) -> Any:
    if type(raw).__module__ != "duckdb_engine" or type(raw).__name__ != "ConnectionWrapper":
        return None
    return raw.__dict__.get("_ConnectionWrapper__c")


class _Psycopg2Extras:
    """``psycopg2.extras`` whose type-registration functions accept a governed connection.

    They are C functions that type-check their connection argument, which no
    proxy passes; SQLAlchemy's psycopg2 dialect calls ``register_uuid`` (and
    ``register_hstore``, ``register_default_json[b]``) on every new connection.
    The registration only installs typecasters, so it is done on the real
    connection underneath; everything else is psycopg2.extras itself.
    """

    _UNWRAP = ("register_uuid", "register_hstore", "register_default_json", "register_default_jsonb")

    def __init__(self, extras: Any) -> None:
        self._extras = extras

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._extras, name)
        if name not in self._UNWRAP:
            return value
        from governed_db.drivers import innermost

        def call(*args: Any, **kwargs: Any) -> Any:
            args = tuple(innermost(a) if hasattr(a, "cursor") else a for a in args)
            kwargs = {k: innermost(v) if k == "conn_or_curs" else v for k, v in kwargs.items()}
            return value(*args, **kwargs)

        return call


def install_psycopg2_shim() -> None:
    """Let SQLAlchemy's psycopg2 dialect register typecasters on governed connections (idempotent)."""
    from psycopg2 import extras
    from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2

    if not isinstance(PGDialect_psycopg2.__dict__.get("_psycopg2_extras"), _Psycopg2Extras):
        setattr(PGDialect_psycopg2, "_psycopg2_extras", _Psycopg2Extras(extras))  # noqa: B010 - replaces a memoized property


def is_governed(engine: Any) -> bool:
    """Whether :func:`create_engine` / :func:`govern_engine` governs ``engine``."""
    return bool(getattr(engine, "_governed_db", False))


__all__ = [
    "SQLGLOT_DIALECTS",
    "SUPPORTED",
    "SUPPORTED_ASYNC",
    "create_async_engine",
    "create_engine",
    "govern_engine",
    "is_governed",
    "refusal_message",
    "refusal_of",
]
