"""Total deadlines on the statement path: stalled identity providers and approval stores never hang a statement.

The stalled servers here are real sockets on 127.0.0.1: one that accepts and never answers, one that answers
one byte a second (a per-read timeout never fires on it). Each test bounds the wait generously (many times
the deadline, far below what the stalled server would take) — the point is "ends", not "how fast".
"""

from __future__ import annotations

import pickle
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_tokens_idp import FakeIdP, idp_fixture, okta_user  # noqa: F401

import governed_db
import governed_db.approvals
from governed_db import Action, Identity, RuleHit
from governed_db.approvals.postgres_store import PostgresStore
from governed_db.deadline import Deadline
from governed_db.errors import ApprovalRequired, ConfigurationError, GovernanceFault, GuardrailViolation
from governed_db.policy import Policy
from governed_db.tokens import TokenError, TokenVerifier
from governed_db.tokens.keys import fetch_json

#: far longer than any deadline below, far shorter than the stalled servers would take
BOUND_S = 20.0


class StalledServer:
    """127.0.0.1 server: ``mode="silent"`` accepts and never answers; ``"trickle"`` sends a valid reply byte by byte."""

    def __init__(self, mode: str, body: bytes = b'{"keys": []}', interval: float = 1.0) -> None:
        self.mode, self.interval = mode, interval
        self.reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body), body)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self.cut = threading.Event()  # a client hung up mid-reply
        self._stop = threading.Event()
        self._clients: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, path: str = "/keys") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._clients.append(client)
            if self.mode == "trickle":
                threading.Thread(target=self._trickle, args=(client,), daemon=True).start()

    def _trickle(self, client: socket.socket) -> None:
        client.recv(65536)
        for byte in self.reply:
            if self._stop.wait(self.interval):
                return
            try:
                client.sendall(bytes([byte]))
            except OSError:
                self.cut.set()
                return

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for c in self._clients:
            c.close()


@pytest.fixture
def silent() -> Iterator[StalledServer]:
    server = StalledServer("silent")
    yield server
    server.close()


@pytest.fixture
def trickle() -> Iterator[StalledServer]:
    server = StalledServer("trickle")
    yield server
    server.close()


def _within(bound: float, fn: Any) -> tuple[Any, float]:
    """(what fn raised or returned, seconds taken), failing if it has not ended within ``bound``."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as e:  # handed back to the test
            box.append(e)

    start = time.monotonic()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(bound)
    assert not t.is_alive(), f"still blocked after {bound} s"
    return box[0], time.monotonic() - start


# -- the deadline itself ------------------------------------------------------------------------
def test_deadline_runs_cuts_once_when_it_passes() -> None:
    """A registered cut runs when the deadline passes; a released one and a finished deadline run nothing."""
    d = Deadline(0.05)
    ran: list[str] = []
    d.watch(lambda: ran.append("a"))
    released = d.watch(lambda: ran.append("b"))
    d.release(released)
    d.expire()
    d.expire()
    assert ran == ["a"] and d.expired
    d.watch(lambda: ran.append("late"))  # registered after expiry: runs at once
    assert ran == ["a", "late"]
    done = Deadline(60)
    done.watch(lambda: ran.append("never"))
    done.finish()
    done.expire()
    assert "never" not in ran and not done.expired


def test_deadline_needs_a_positive_time() -> None:
    """Zero or negative seconds is refused at once."""
    with pytest.raises(ValueError, match="positive"):
        Deadline(0)


# -- JWKS and discovery ---------------------------------------------------------------------------
def test_trickling_jwks_server_is_cut_at_the_total_deadline(trickle: StalledServer) -> None:
    """One byte a second: the fetch ends at its 1 s total deadline (jwks_unreachable), and the socket is cut."""
    outcome, _ = _within(BOUND_S, lambda: fetch_json(trickle.url(), timeout=1.0,
                                                      allow_insecure_http_for_loopback=True))
    assert isinstance(outcome, TokenError) and outcome.cause == "jwks_unreachable"
    assert "within 1 s" in str(outcome) and "total deadline" in str(outcome)
    assert trickle.cut.wait(BOUND_S)  # the helper's connection was shut down, not left trickling


def test_silent_jwks_server_is_cut_at_the_total_deadline(silent: StalledServer) -> None:
    """A server that accepts and never answers: refused at the deadline, naming the URL."""
    outcome, _ = _within(BOUND_S, lambda: fetch_json(silent.url(), timeout=1.0,
                                                      allow_insecure_http_for_loopback=True))
    assert isinstance(outcome, TokenError) and silent.url() in str(outcome)
    assert silent.accepted == 1


def test_trickling_discovery_shares_one_deadline_with_the_jwks(idp: FakeIdP, trickle: StalledServer) -> None:
    """OIDC discovery that trickles: the verifier refuses the token within its one total timeout."""
    issuer = trickle.url("/oauth2/default")
    v = TokenVerifier(issuer=issuer, audience="api://default", timeout=1.0, allow_insecure_http_for_loopback=True)
    outcome, _ = _within(BOUND_S, lambda: v.verify(idp.token(okta_user(), iss=issuer)))
    assert isinstance(outcome, TokenError) and outcome.cause == "jwks_unreachable"
    assert "/.well-known/openid-configuration" in str(outcome) and "within 1 s" in str(outcome)


def test_trickling_jwks_refuses_a_governed_statement(idp: FakeIdP, trickle: StalledServer) -> None:
    """Through a governed connection: the statement is refused as identity-unverified, not left hanging."""
    token = idp.token(okta_user())
    conn = governed_db.wrap(
        sqlite3.connect(":memory:", check_same_thread=False), identity=lambda: token, audit=False,
        token={"issuer": idp.issuer, "audience": "api://default", "jwks_url": trickle.url(), "timeout": 1.0,
               "allow_insecure_http_for_loopback": True},
    )
    outcome, _ = _within(BOUND_S, lambda: conn.execute("SELECT 1"))
    assert isinstance(outcome, GuardrailViolation) and isinstance(outcome, sqlite3.DatabaseError)
    assert isinstance(outcome, GovernanceFault) and isinstance(outcome, governed_db.DependencyUnavailable)
    assert "identity-unverified" in outcome.rules
    assert "total deadline" in str(outcome)
    again = pickle.loads(pickle.dumps(outcome))  # stays both kinds across processes
    assert isinstance(again, governed_db.DependencyUnavailable) and isinstance(again, sqlite3.DatabaseError)


# -- the PostgreSQL approval store ----------------------------------------------------------------
def _needs_review(stmt: Any, ctx: Any) -> RuleHit | None:
    if stmt is not None and stmt.operation == "DELETE":
        return RuleHit("risky-write", Action.REQUIRE_APPROVAL, "DELETE needs a reviewer")
    return None


REVIEWED = Policy(name="deadline-test", rules=(_needs_review,))


def _governed(store: Any) -> Any:
    raw = sqlite3.connect(":memory:", check_same_thread=False)
    raw.execute("CREATE TABLE t (id INTEGER)")
    raw.execute("INSERT INTO t VALUES (1)")
    return governed_db.wrap(raw, identity=Identity("alice"), policy=REVIEWED, audit=False,
                            approvals={"store": store})


def test_silent_postgres_store_refuses_the_statement_at_its_deadline(silent: StalledServer) -> None:
    """A "PostgreSQL" that accepts and never answers: the statement is refused (GovernanceFault + DatabaseError)."""
    conn = _governed(f"postgresql://postgres@127.0.0.1:{silent.port}/test?timeout=1")
    outcome, _ = _within(BOUND_S, lambda: conn.execute("DELETE FROM t"))
    assert isinstance(outcome, GovernanceFault) and isinstance(outcome, sqlite3.DatabaseError)
    assert "did not answer within 1 s" in str(outcome) and "fail closed" in str(outcome)
    assert governed_db.unwrap(conn).execute("SELECT count(*) FROM t").fetchone() == (1,)  # nothing ran


@pytest.fixture
def pg_store(pg_dsn: str, unique: str) -> Iterator[PostgresStore]:
    import psycopg

    schema = f"gdb_deadline_{unique}"
    store = PostgresStore(pg_dsn, schema=schema, timeout=1.0)
    store.hash_key()  # schema and key exist before anyone holds a lock
    yield store
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_postgres_session_holding_a_lock_cannot_hang_statements(pg_store: PostgresStore, pg_dsn: str) -> None:
    """Another session locks the requests table: refused at the deadline, our locks are gone, later it works."""
    import psycopg

    conn = _governed(pg_store)
    with psycopg.connect(pg_dsn) as holder:
        holder.execute(f'LOCK TABLE "{pg_store.schema}".approval_requests IN ACCESS EXCLUSIVE MODE')
        outcome, _ = _within(BOUND_S, lambda: conn.execute("DELETE FROM t"))
        assert isinstance(outcome, GovernanceFault) and isinstance(outcome, sqlite3.DatabaseError)
        assert "did not answer within 1 s" in str(outcome)
        # the server stops waiting for us too (its lock_timeout runs out within moments of our deadline):
        # no lock request is left behind
        waiting = None
        with psycopg.connect(pg_dsn, autocommit=True) as probe:
            for _ in range(30):
                waiting = probe.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                    "WHERE NOT l.granted AND a.query LIKE %s AND a.pid <> pg_backend_pid()",
                    (f"%{pg_store.schema}%",),
                ).fetchone()
                if waiting == (0,):
                    break
                time.sleep(0.1)
        assert waiting == (0,)
        holder.rollback()
    with pytest.raises(ApprovalRequired):  # the store answers again once the lock is gone
        conn.execute("DELETE FROM t")
    assert governed_db.unwrap(conn).execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_store_timeout_must_be_a_positive_number() -> None:
    """A bad deadline for the store is a ConfigurationError at once."""
    for bad in (0, -1, "soon", True, float("inf")):
        with pytest.raises(ConfigurationError, match="timeout"):
            PostgresStore("postgresql://u@h/db", timeout=bad)
    with pytest.raises(ConfigurationError, match="timeout"):
        governed_db.approvals.open_store("postgresql://u@h/db?timeout=soon")


class StallingProxy:
    """127.0.0.1 proxy to the real PostgreSQL that lets the connection start, then swallows every query.

    The server answers the startup (authentication, ReadyForQuery); from then on the client's bytes are
    dropped, so its first query waits for an answer that never comes — neither connect_timeout nor the
    server's statement_timeout can help; only our own deadline can.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 5432) -> None:
        self.target = (host, port)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.swallowed = 0
        self._closing: list[socket.socket] = [self.sock]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._closing += [client, server]
            ready = threading.Event()
            threading.Thread(target=self._upstream, args=(client, server, ready), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client, ready), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket, ready: threading.Event) -> None:
        while data := _recv(client):
            if ready.is_set():
                self.swallowed += len(data)  # the query goes nowhere
            else:
                server.sendall(data)

    def _downstream(self, server: socket.socket, client: socket.socket, ready: threading.Event) -> None:
        buf = b""
        while data := _recv(server):
            if not ready.is_set():
                buf += data
                while len(buf) >= 5:  # typed messages: type byte, int32 length (including itself)
                    length = int.from_bytes(buf[1:5], "big")
                    if len(buf) < 1 + length:
                        break
                    if buf[:1] == b"Z":
                        ready.set()  # ReadyForQuery: the connection is up; queries are swallowed from now
                    buf = buf[1 + length:]
            client.sendall(data)

    def close(self) -> None:
        for s in self._closing:
            s.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def test_postgres_that_swallows_queries_is_cut_at_the_deadline(pg_dsn: str, unique: str) -> None:
    """Startup succeeds, queries never arrive: our watchdog cuts the socket at 1 s; the statement is refused."""
    proxy = StallingProxy()
    try:
        url = (f"postgresql://postgres@127.0.0.1:{proxy.port}/test?sslmode=disable&gssencmode=disable"
               f"&schema=gdb_swallow_{unique}&timeout=1")
        conn = _governed(url)
        outcome, _ = _within(BOUND_S, lambda: conn.execute("DELETE FROM t"))
        assert isinstance(outcome, GovernanceFault) and isinstance(outcome, sqlite3.DatabaseError)
        assert "did not answer within 1 s" in str(outcome)
        assert proxy.swallowed > 0  # the store did reach the query stage
        assert governed_db.unwrap(conn).execute("SELECT count(*) FROM t").fetchone() == (1,)
    finally:
        proxy.close()
