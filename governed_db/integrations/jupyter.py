"""Jupyter: ``%load_ext governed_db`` governs every connection a notebook makes.

    %load_ext governed_db
    %governed_db --identity agent:nb-bot@alice --environment production

While the extension is loaded, in this kernel only:

* ``sqlite3.connect``, and ``psycopg.connect``, ``psycopg2.connect``,
  ``pymysql.connect``, ``duckdb.connect`` for those drivers that are
  installed, are replaced by functions that return governed connections;
  so are the async drivers' ``aiosqlite.connect``, ``asyncpg.connect``,
  ``aiomysql.connect`` and ``psycopg.AsyncConnection.connect`` (awaited, or
  in ``async with``, they give governed async connections)
  (calls from IPython's and ipykernel's own modules, e.g. the history
  database, are left alone; so are SQLAlchemy's, see below). Names bound *before* loading
  (``from sqlite3 import connect``) keep the original.
* one class-level SQLAlchemy ``do_connect`` listener governs every engine
  the kernel creates — jupysql's ``%sql`` engines, ``sqlalchemy.create_engine``
  in cells, ``pandas.read_sql("sqlite:///…")``. Engines from
  :func:`governed_db.sqlalchemy.create_engine` keep their own settings.
* a custom exception handler shows refusals and approval requests as a
  readable HTML box (rule, reason, next step) instead of a stack trace; other
  errors are shown as IPython would.

Settings come from magic arguments, else ``GOVERNED_DB_IDENTITY`` /
``GOVERNED_DB_TOKEN`` / ``GOVERNED_DB_ENVIRONMENT`` / ``GOVERNED_DB_POLICY``,
else governed_db's defaults. ``%unload_ext governed_db`` restores everything.
"""

from __future__ import annotations

import functools
import html
import importlib
import importlib.util
import shlex
import sys
from typing import Any

from governed_db.errors import ApprovalRequired, ConfigurationError
from governed_db.identity import Identity
from governed_db.integrations.tooling import refusal_message, refusal_of

#: driver modules whose ``connect`` is replaced while loaded (when installed)
PATCHED_MODULES = ("sqlite3", "psycopg", "psycopg2", "pymysql", "duckdb")
#: async drivers' connect functions replaced while loaded: (module, object in it or "", attribute);
#: the replacement returns what the original does (awaitable, and ``async with`` where it is), governed
ASYNC_CONNECTS = (
    ("aiosqlite", "", "connect"),
    ("asyncpg", "", "connect"),
    ("aiomysql", "", "connect"),
    ("psycopg", "AsyncConnection", "connect"),
)
#: callers left alone by the patched ``connect``: the kernel's own machinery (history database...),
#: SQLAlchemy / duckdb_engine, whose connections the ``do_connect`` listener governs instead, and
#: governed_db itself (``govern_module`` wraps what it opens; classification reads the schema)
_EXEMPT_CALLERS = (
    "IPython.", "ipykernel.", "jupyter_client.", "jupyter_core.", "traitlets.", "sqlalchemy.", "duckdb_engine",
    "governed_db.",
)


class _Session:
    """What the extension changed in this kernel, so unloading can undo exactly that."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}
        self.originals: dict[str, Any] = {}
        #: "module.attr" -> (owner object, attribute, what was there before: restored as it was)
        self.async_originals: dict[str, tuple[Any, str, Any]] = {}
        self.listener: Any = None
        self.previous_custom: tuple[tuple[type, ...], Any] | None = None


_session: _Session | None = None


def wrap_options() -> dict[str, Any]:
    """The ``wrap()`` keyword arguments the notebook currently uses."""
    return dict(_session.options) if _session is not None else {}


def configure(
    *, identity: Any = None, token: str | None = None, environment: str | None = None, policy: Any = None
) -> dict[str, Any]:
    """Set who the notebook runs as and where (new connections only); returns the effective settings."""
    if _session is None:
        raise ConfigurationError("load the extension first: %load_ext governed_db")
    if identity is not None and token:
        raise ConfigurationError("give --identity or --token, not both")
    opts = _session.options
    if isinstance(identity, str):
        identity = Identity.parse(identity)
    if identity is not None:
        opts["identity"] = identity
    if token:
        secret = token
        opts["identity"] = lambda: secret  # verified per statement by governed_db.tokens
    if environment:
        opts["environment"] = environment
    if policy:
        opts["policy"] = policy
    from governed_db.settings import build_settings

    build_settings(  # validate now, in the cell that set it
        identity=opts.get("identity"), environment=opts.get("environment"), policy=opts.get("policy"),
        audit=None, tracer_provider=None, options={},
    )
    return dict(opts)


# -- governing connections ---------------------------------------------------------------------
def _govern(conn: Any) -> Any:
    from governed_db.api import _is_governed, wrap

    if _is_governed(conn):
        return conn
    return wrap(conn, **wrap_options())


def _patched_connect(original: Any) -> Any:
    @functools.wraps(original)
    def connect(*args: Any, **kwargs: Any) -> Any:
        conn = original(*args, **kwargs)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith(_EXEMPT_CALLERS):
            return conn
        try:
            return _govern(conn)
        except BaseException:
            conn.close()
            raise

    connect.__governed_db_original__ = original  # type: ignore[attr-defined]
    return connect


class _GovernedConnect:
    """What a patched async ``connect(...)`` returns: awaited (or ``async with``), a governed connection."""

    def __init__(self, pending: Any) -> None:
        self._pending = pending
        self._conn: Any = None

    def __await__(self) -> Any:
        return self._connect().__await__()

    async def _connect(self) -> Any:
        from governed_db.async_proxies import maybe_await

        raw = await self._pending
        try:
            return _govern(raw)
        except BaseException:
            await maybe_await(raw.close())
            raise

    async def __aenter__(self) -> Any:
        self._conn = await self._connect()
        return self._conn

    async def __aexit__(self, *exc: Any) -> None:
        from governed_db.async_proxies import maybe_await

        await maybe_await(self._conn.close())


def _governed_pending(pending: Any, caller: str) -> Any:
    if caller.startswith(_EXEMPT_CALLERS):  # SQLAlchemy's async dialects: the do_connect listener governs
        return pending
    return _GovernedConnect(pending)


def _patched_async_connect(original: Any) -> Any:
    if isinstance(original, classmethod):  # psycopg.AsyncConnection.connect: keep ``cls`` (subclasses)
        func = original.__func__

        @functools.wraps(func)
        def connect_cls(cls: Any, *args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            return _governed_pending(func(cls, *args, **kwargs), caller)

        connect_cls.__governed_db_original__ = original  # type: ignore[attr-defined]
        return classmethod(connect_cls)

    @functools.wraps(original)
    def connect(*args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        return _governed_pending(original(*args, **kwargs), caller)

    connect.__governed_db_original__ = original  # type: ignore[attr-defined]
    return connect


def _patch_async_connects(session: _Session) -> None:
    for module_name, owner_name, attr in ASYNC_CONNECTS:
        if module_name not in sys.modules and importlib.util.find_spec(module_name) is None:
            continue
        owner: Any = importlib.import_module(module_name)
        if owner_name:
            owner = getattr(owner, owner_name)
        before = owner.__dict__.get(attr)  # a classmethod stays one (not the bound method getattr gives)
        if before is None or hasattr(getattr(owner, attr), "__governed_db_original__"):
            continue
        session.async_originals[f"{module_name}.{owner_name}".rstrip(".") + f".{attr}"] = (owner, attr, before)
        setattr(owner, attr, _patched_async_connect(before))


def _do_connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
    if getattr(dialect, "_governed_db", False):
        return None  # an engine from governed_db.sqlalchemy: its own hook governs it
    from governed_db.api import _is_governed, wrap
    from governed_db.integrations.sqlalchemy import (
        SQLGLOT_DIALECTS,
        _duckdb_engine_inner,
        _wrap_dbapi,
        async_adapted,
    )

    raw = dialect.connect(*cargs, **cparams)
    inner = _duckdb_engine_inner(raw)
    if inner is None:
        inner = async_adapted(raw)
    if _is_governed(raw) or (inner is not None and _is_governed(inner)):
        return raw  # already governed by a patched driver connect()
    opts = wrap_options()
    guessed = SQLGLOT_DIALECTS.get(dialect.name)
    if guessed:
        opts.setdefault("dialect", guessed)
    try:
        return _wrap_dbapi(raw, wrap, opts)
    except BaseException:
        raw.close()
        raise


# -- showing refusals ------------------------------------------------------------------------------
def refusal_html(exc: BaseException) -> str | None:
    """A small HTML box for a refusal or approval request, or ``None`` when ``exc`` is neither."""
    refusal = refusal_of(exc)
    message = refusal_message(exc)
    if message is None:
        return None
    approval = isinstance(refusal, ApprovalRequired)
    title = "Approval required" if approval else ("Refused" if refusal is not None else "Governance fault")
    colour = "#b26b00" if approval else "#b00020"
    rows = []
    if refusal is not None:
        rows.append(("Rules", ", ".join(refusal.rules) or "—"))
        if refusal.statement:
            rows.append(("Statement", refusal.statement))
        if isinstance(refusal, ApprovalRequired) and refusal.request_id:
            rows.append(("Request", refusal.request_id))
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
        f"<td><code>{html.escape(str(v))}</code></td></tr>"
        for k, v in rows
    )
    return (
        f"<div class='governed-db-refusal' style='border-left:4px solid {colour};padding:.5em 1em;"
        f"margin:.25em 0'><strong style='color:{colour}'>governed_db — {title}</strong>"
        f"<p>{html.escape(message)}</p><table>{cells}</table></div>"
    )


def _custom_exc(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> Any:
    # IPython calls this instead of showing the error; what it returns is not displayed, so show it here
    markup = refusal_html(value)
    if markup is not None:
        from IPython.display import HTML, display

        display(HTML(markup))  # type: ignore[no-untyped-call]
        line = f"{type(refusal_of(value) or value).__name__}: {refusal_message(value)}"
        shell._showtraceback(etype, value, [line])  # the cell still fails, with one readable line
        return [line]
    previous = _session.previous_custom if _session is not None else None
    if previous and previous[0] and previous[1] is not None and issubclass(etype, previous[0]):
        return previous[1](etype, value, tb, tb_offset=tb_offset)  # another extension's handler, bound
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    return None


# -- the magic ---------------------------------------------------------------------------------
def governed_db_magic(line: str) -> Any:
    """``%governed_db [--identity ID | --token TOKEN] [--environment ENV] [--policy FILE]``; no args: status."""
    args = shlex.split(line)
    given: dict[str, str] = {}
    names = {"--identity": "identity", "--token": "token", "--environment": "environment", "--policy": "policy"}
    i = 0
    while i < len(args):
        flag, _, inline = args[i].partition("=")
        if flag not in names:
            raise ConfigurationError(f"%governed_db: unknown argument {args[i]!r}; use {', '.join(names)}")
        if inline:
            given[names[flag]] = inline
        elif i + 1 < len(args):
            i += 1
            given[names[flag]] = args[i]
        else:
            raise ConfigurationError(f"%governed_db: {flag} needs a value")
        i += 1
    if given:
        configure(**given)
    return status()


def status() -> Any:
    """An HTML summary of the notebook's governance settings (never shows a token)."""
    from IPython.display import HTML

    from governed_db.settings import build_settings

    opts = wrap_options()
    ident = opts.get("identity")
    who = "verified token" if callable(ident) else (
        f"{ident.kind}:{ident.subject}" + (f"@{ident.on_behalf_of}" if ident.on_behalf_of else "")
        if isinstance(ident, Identity) else "default (GOVERNED_DB_IDENTITY / token / OS user)")
    env = build_settings(identity=None, environment=opts.get("environment"), policy=None, audit=None,
                         tracer_provider=None, options={}).environment
    patched = ", ".join(sorted([*_session.originals, *_session.async_originals])) if _session else "nothing"
    rows = [("identity", who), ("environment", env), ("policy", str(opts.get("policy") or "default")),
            ("governed connect()", patched), ("SQLAlchemy engines", "governed (do_connect)")]
    body = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return HTML(f"<table class='governed-db-status'>{body}</table>")  # type: ignore[no-untyped-call]


# -- IPython entry points ------------------------------------------------------------------------
def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext governed_db``: govern this kernel's connections until unloaded."""
    global _session
    if _session is not None:
        return
    session = _Session()
    _session = session
    configure()  # env-var defaults are read by wrap() itself; this validates them
    for name in PATCHED_MODULES:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        original = getattr(module, "connect", None)
        if original is None or hasattr(original, "__governed_db_original__"):
            continue
        session.originals[name] = original
        setattr(module, "connect", _patched_connect(original))  # noqa: B010 - module attribute by name
    _patch_async_connects(session)
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except ImportError:
        pass
    else:
        event.listen(Engine, "do_connect", _do_connect)
        session.listener = _do_connect
        if importlib.util.find_spec("psycopg2") is not None:
            from governed_db.integrations.sqlalchemy import install_psycopg2_shim

            install_psycopg2_shim()  # `%sql postgresql://` uses psycopg2 (see governed_db.sqlalchemy)
    session.previous_custom = (tuple(ipython.custom_exceptions), getattr(ipython, "CustomTB", None))
    ipython.set_custom_exc((Exception,), _custom_exc)
    ipython.register_magic_function(governed_db_magic, magic_kind="line", magic_name="governed_db")


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext governed_db``: restore the drivers' ``connect`` and SQLAlchemy; existing connections stay governed."""
    global _session
    session, _session = _session, None
    if session is None:
        return
    for name, original in session.originals.items():
        setattr(sys.modules[name], "connect", original)  # noqa: B010
    for owner, attr, before in session.async_originals.values():
        setattr(owner, attr, before)
    if session.listener is not None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.remove(Engine, "do_connect", session.listener)
    prev_types, prev_handler = session.previous_custom or ((), None)
    if prev_types and prev_handler is not None:
        ipython.custom_exceptions = prev_types
        ipython.CustomTB = prev_handler
    else:
        ipython.set_custom_exc((), None)


__all__ = [
    "ASYNC_CONNECTS",
    "PATCHED_MODULES",
    "configure",
    "governed_db_magic",
    "load_ipython_extension",
    "refusal_html",
    "status",
    "unload_ipython_extension",
    "wrap_options",
]
