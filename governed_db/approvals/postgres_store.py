"""The shared store for many hosts: PostgreSQL through psycopg 3.

Chosen by URL (``postgresql://user@host/db?schema=governed_db_approvals``);
the ``schema`` query parameter (default ``governed_db_approvals``) is ours and
is removed before connecting. Row locks (``FOR UPDATE``) order reviews of one
request; a transaction-scoped advisory lock per (statement, identity,
environment) orders executes of the same statement, so two processes never
file two requests for it or both consume one grant.

Every operation has one total deadline (``timeout``, default 5 s): the
connection attempt is bounded by ``connect_timeout``, each statement by the
server's ``statement_timeout`` and ``lock_timeout`` (so a session holding a
lock cannot make us wait, and the server gives up our locks with the
statement), and a watchdog shuts the socket down when the whole operation is
out of time (a server that accepts connections and never answers). The
statement that needed the store is then refused with :class:`StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from governed_db.approvals.store import SCHEMA, SQLStore, _Exec
from governed_db.deadline import Deadline, shutdown_fd
from governed_db.errors import ConfigurationError

DEFAULT_SCHEMA = "governed_db_approvals"
#: the total time one store operation (connect + transaction) may take before the statement is refused
DEFAULT_TIMEOUT = 5.0
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: serializes CREATE ... IF NOT EXISTS between processes (it is not race-free on its own)
_SCHEMA_LOCK = 0x6744_6241_7070_7231


def split_url(url: str) -> tuple[str, str]:
    """``(dsn_without_our_parameters, schema)`` from a ``postgresql://`` URL."""
    dsn, schema, _ = split_url_settings(url)
    return dsn, schema


def split_url_settings(url: str) -> tuple[str, str, float | None]:
    """``(dsn_without_our_parameters, schema, timeout)``: ``schema`` and ``timeout`` (seconds) are ours."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), DEFAULT_SCHEMA)
    raw_timeout = next((v for k, v in query if k == "timeout"), None)
    timeout: float | None = None
    if raw_timeout is not None:
        try:
            timeout = float(raw_timeout)
        except ValueError:
            raise ConfigurationError(
                f"the approval store URL's timeout must be a number of seconds, got {raw_timeout!r}"
            ) from None
    rest = urlencode([(k, v) for k, v in query if k not in ("schema", "timeout")])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), schema, timeout


def redact(dsn: str) -> str:
    """The DSN without its password, for messages and commands."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        if parts.password is not None:
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
            netloc = f"{parts.username}:***@{host}{port}"
            return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return dsn
    return re.sub(r"(password\s*=\s*)(\S+)", r"\1***", dsn)


class PostgresStore(SQLStore):
    placeholder = "%s"
    for_update = " FOR UPDATE"

    def __init__(
        self, dsn: str, *, schema: str = DEFAULT_SCHEMA, timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        # connect_timeout: the name of this setting before it bounded the whole operation
        timeout = timeout if timeout is not None else connect_timeout if connect_timeout is not None else DEFAULT_TIMEOUT
        if not isinstance(schema, str) or not _IDENT.match(schema):
            raise ConfigurationError(f"approval store schema must be a plain SQL identifier, got {schema!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise ConfigurationError(f"approval store timeout must be a positive number of seconds, got {timeout!r}")
        super().__init__({
            "requests": f'"{schema}".approval_requests',
            "reviews": f'"{schema}".approval_reviews',
            "meta": f'"{schema}".approval_meta',
            "index": "approval_requests_match",
        })
        self.dsn = dsn
        self.schema = schema
        self.timeout = float(timeout)
        self.url = redact(dsn) + (f" (schema {schema})" if schema != DEFAULT_SCHEMA else "")
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    @contextlib.contextmanager
    def _operation(self) -> Iterator[None]:
        if getattr(self._local, "deadline", None) is not None:
            yield  # nested (schema set-up inside a transaction's operation): one deadline for all of it
            return
        with Deadline(self.timeout).running() as deadline:
            self._local.deadline, self._local.cuts = deadline, {}
            try:
                yield
            finally:
                self._local.deadline = None

    def _connect(self) -> Any:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        deadline: Deadline | None = getattr(self._local, "deadline", None)
        remaining = deadline.remaining() if deadline is not None else self.timeout
        if remaining <= 0:
            raise TimeoutError("no time left for the approval store")
        ms = max(1, int(self.timeout * 1000))
        # server-side limits, so that the server too stops waiting (and drops our locks) at the deadline;
        # options the DSN sets itself come after ours and win
        ours = f"-c statement_timeout={ms} -c lock_timeout={ms} -c idle_in_transaction_session_timeout={ms}"
        theirs = str(conninfo_to_dict(self.dsn).get("options") or "")
        conn = _connect_within(remaining, lambda: psycopg.connect(
            self.dsn, autocommit=True, connect_timeout=max(1, math.ceil(remaining)),
            options=f"{ours} {theirs}".strip(),
        ))
        if deadline is not None:
            fd = conn.pgconn.socket
            self._local.cuts[id(conn)] = deadline.watch(lambda: shutdown_fd(fd))
        return conn

    def _disconnect(self, conn: Any) -> None:
        deadline: Deadline | None = getattr(self._local, "deadline", None)
        handle = getattr(self._local, "cuts", {}).pop(id(conn), None)
        if deadline is None or handle is None:
            conn.close()
        else:
            deadline.release(handle, close=conn.close)  # under the watchdog's lock: never cut a reused fd

    def _down_message(self, e: BaseException) -> str:
        import psycopg

        deadline: Deadline | None = getattr(self._local, "deadline", None)
        timed_out = isinstance(e, (TimeoutError, psycopg.errors.ConnectionTimeout, psycopg.errors.QueryCanceled,
                                   psycopg.errors.LockNotAvailable))
        if (deadline is not None and deadline.expired) or timed_out:
            return (
                f"the approval store at {self.url} did not answer within {self.timeout:g} s (the total deadline "
                "for one store operation); statements that need approval are refused until it answers (fail "
                "closed). Check the store's server and locks, or give it more time with ?timeout=SECONDS in the store URL"
            )
        return super()._down_message(e)

    @contextlib.contextmanager
    def _transaction(self, conn: Any, write: bool) -> Iterator[Any]:
        with conn.transaction(), conn.cursor() as cur:
            yield cur

    def _create_schema(self, ex: _Exec) -> None:
        ex.run("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
        ex.run(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        for stmt in filter(None, (s.strip() for s in SCHEMA.format(**self.t).split(";"))):
            ex.run(stmt)

    def _lock(self, ex: _Exec, key: int) -> None:
        ex.run("SELECT pg_advisory_xact_lock(?)", (key,))

    def _unavailable(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def _connect_within(seconds: float, connect: Any) -> Any:
    """``connect()``, given up after ``seconds``: libpq counts ``connect_timeout`` in whole seconds and at least
    2, so a 1 s deadline was a 2 s wait. Past the deadline the attempt finishes in its thread (bounded by its
    own connect_timeout) and a connection it makes then is closed."""
    lock = threading.Lock()
    box: dict[str, Any] = {}
    done = threading.Event()

    def attempt() -> None:
        try:
            conn = connect()
        except BaseException as e:  # handed back to the caller
            box["error"] = e
            conn = None
        with lock:
            late = box.get("late", False)
            box["conn"] = conn
            done.set()
        if late and conn is not None:
            conn.close()

    threading.Thread(target=attempt, name="governed_db-approvals-connect", daemon=True).start()
    if not done.wait(seconds):
        with lock:
            if not done.is_set():
                box["late"] = True
                raise TimeoutError(f"no connection to the approval store within {seconds:.3g} s")
    if "error" in box:
        raise box["error"]
    return box["conn"]
