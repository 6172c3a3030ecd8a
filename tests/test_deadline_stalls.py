"""More stalled approval stores (issue 15, attacked again): the deadline holds for every stage of the wait.

A server that claims TLS and then says nothing held a 1 s deadline for 2 s (libpq counts connect_timeout in
whole seconds, at least 2); a SQLite approvals file whose write lock another process holds held statements
for the 30 s busy timeout.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_deadline import REVIEWED, _within

import governed_db
from governed_db import Identity
from governed_db.approvals.sqlite_store import BUSY_TIMEOUT_S
from governed_db.errors import GovernanceFault

pytest.importorskip("psycopg")


@pytest.fixture
def tls_then_silent() -> Iterator[int]:
    """A "PostgreSQL" that answers the SSLRequest with 'S' and then never speaks (the TLS handshake stalls)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    clients: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            clients.append(c)
            try:
                c.recv(8)
                c.sendall(b"S")
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    yield int(srv.getsockname()[1])
    srv.close()
    for c in clients:
        c.close()


def _governed(store: Any) -> tuple[Any, sqlite3.Connection]:
    raw = sqlite3.connect(":memory:", check_same_thread=False)
    raw.execute("CREATE TABLE t (id INTEGER)")
    raw.execute("INSERT INTO t VALUES (1)")
    conn = governed_db.wrap(raw, identity=Identity("alice"), policy=REVIEWED, audit=False, approvals={"store": store})
    return conn, raw


def test_a_stalled_tls_handshake_is_cut_at_a_sub_two_second_deadline(tls_then_silent: int) -> None:
    conn, raw = _governed(f"postgresql://postgres@127.0.0.1:{tls_then_silent}/test?timeout=1")
    outcome, took = _within(20, lambda: conn.execute("DELETE FROM t"))
    assert isinstance(outcome, GovernanceFault), outcome
    assert "did not answer within 1 s" in str(outcome)
    assert took < 1.7, took  # was 2.0 s: libpq's connect_timeout floor
    assert raw.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_a_locked_sqlite_approvals_store_refuses_within_its_bound(tmp_path: Path) -> None:
    path = tmp_path / "approvals.sqlite3"
    conn, raw = _governed(str(path))
    with pytest.raises(governed_db.ApprovalRequired):
        conn.execute("DELETE FROM t")  # creates the schema and a request
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        outcome, took = _within(60, lambda: conn.execute("DELETE FROM t"))
        assert isinstance(outcome, GovernanceFault), outcome
        assert took < BUSY_TIMEOUT_S + 2.5 and BUSY_TIMEOUT_S <= 5.0, (took, time.monotonic() - started)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert raw.execute("SELECT count(*) FROM t").fetchone() == (1,)
