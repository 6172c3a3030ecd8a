"""An external witness: every anchored checkpoint also goes to a PostgreSQL table.

A local store and its anchor can be rolled back together to an earlier,
genuine state (or deleted together); nothing on the host can show that. A
witness keeps the checkpoints somewhere else — for example the database of the
approvals store — so ``verify --witness DSN`` can tell that the store no longer
reaches the newest checkpoint the witness saw, or differs from it.

Writing to the witness never holds up a statement: checkpoints are queued and
sent by a background thread with connect and statement timeouts; when the
witness is unreachable the writer logs an ERROR and keeps recording locally
(the witness then lags, which ``verify`` cannot tell from a rollback of that
lag — see docs/audit.md). Rows carry the anchor's HMAC, so a row forged by
someone without the key is not taken as evidence.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
from collections.abc import Mapping
from typing import Any

from governed_db.audit import records as R
from governed_db.errors import ConfigurationError

log = logging.getLogger("governed_db.audit")

DEFAULT_TABLE = "governed_db_audit_witness"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
#: seconds: connecting, and any one statement, before the witness is considered unreachable
TIMEOUT = 5.0


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigurationError("an audit witness needs psycopg: pip install 'governed-db[postgres]'") from None
    return psycopg


class Witness:
    """Sends anchored checkpoints to ``table`` in the PostgreSQL database at ``dsn``."""

    def __init__(self, dsn: str, *, table: str = DEFAULT_TABLE) -> None:
        if not isinstance(dsn, str) or not dsn.strip():
            raise ConfigurationError("the audit witness needs a PostgreSQL connection string (witness=DSN)")
        if not isinstance(table, str) or not _IDENT.match(table):
            raise ConfigurationError(f"witness_table must be a plain SQL name like {DEFAULT_TABLE!r}, got {table!r}")
        _psycopg()
        self.dsn = dsn
        self.table = table
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=10_000)
        self._thread: threading.Thread | None = None
        self._pid = -1
        self._lock = threading.Lock()
        self.failures = 0

    def __repr__(self) -> str:
        return f"<Witness table={self.table!r}>"

    # -- writing (background) ---------------------------------------------------------------------------
    def submit(self, anchor: Mapping[str, Any], reason: str = "") -> None:
        """Queue an anchored checkpoint; returns at once."""
        row = {k: anchor.get(k) for k in ("store", "seq", "hash", "time", "offset", "file", "mac")}
        row["reason"] = reason
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self.failures += 1
            log.error("governed_db audit: the witness queue is full (witness unreachable?); a checkpoint was not "
                      "witnessed")
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="governed_db-audit-witness", daemon=True)
                self._thread.start()

    def flush(self, timeout: float = TIMEOUT) -> bool:
        """Wait (at most ``timeout`` s) until every queued checkpoint was sent; True when it was."""
        done = threading.Event()

        def waiter() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)

    def _run(self) -> None:
        conn = None
        while True:
            try:
                row = self._queue.get(timeout=60)
            except queue.Empty:
                if conn is not None:
                    conn.close()
                return
            try:
                if conn is None or conn.closed:
                    conn = self._connect()
                    self._ensure_table(conn)
                conn.execute(
                    f"INSERT INTO {self.table} (store, seq, hash, time, off, file, mac, reason) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (store, seq) DO NOTHING",
                    (row["store"], row["seq"], row["hash"], row["time"], row["offset"], row["file"], row["mac"],
                     row["reason"]))
            except Exception as e:  # unreachable, timed out, refused: record locally, keep going
                self.failures += 1
                log.error("governed_db audit: could not send checkpoint seq %s to the witness (%s: %s)",
                          row.get("seq"), type(e).__name__, e)
                if conn is not None:
                    conn.close()
                conn = None
            finally:
                self._queue.task_done()

    def _connect(self) -> Any:
        psycopg = _psycopg()
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=int(TIMEOUT),
                               options=f"-c statement_timeout={int(TIMEOUT * 1000)}")

    def _ensure_table(self, conn: Any) -> None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (store text NOT NULL, seq bigint NOT NULL, "
                     "hash text NOT NULL, time bigint, off bigint, file text, mac text, reason text, "
                     "written_at timestamptz DEFAULT now(), "
                     "PRIMARY KEY (store, seq))")

    # -- reading (verify) ---------------------------------------------------------------------------------
    def latest(self, store: str) -> dict[str, Any] | None:
        """The newest checkpoint the witness holds for ``store``, or None."""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT seq, hash, time, off, file, mac FROM {self.table} WHERE store = %s "
                                "ORDER BY seq DESC LIMIT 1", (store,)).fetchall()
        if not rows:
            return None
        seq, digest, time_ns, offset, file, mac = rows[0]
        return {"v": R.FORMAT_VERSION, "store": store, "seq": int(seq), "hash": digest, "time": time_ns,
                "offset": offset, "file": file, "mac": mac}


def authentic(row: Mapping[str, Any], key: bytes | None) -> bool:
    """Whether a witness row carries the anchor MAC the key gives (a row is the anchor it witnessed)."""
    if key is None:
        return True
    import hmac

    mac = row.get("mac")
    return isinstance(mac, str) and hmac.compare_digest(R.anchor_mac(key, row), mac)
