"""Two-phase commit methods (``tpc_*``, DB-API optional extension) judged as the statements they send.

psycopg and psycopg2 run ``PREPARE TRANSACTION`` / ``COMMIT PREPARED`` / ``ROLLBACK PREPARED`` from C or
Python without going through a cursor: forwarded raw, they would leave prepared transactions (which hold their
locks until someone resolves them) out of the policy and the record.
"""

from __future__ import annotations

from typing import Any

from governed_db.pipeline import run


class TwoPhase:
    """Mixin for connection proxies of drivers with ``tpc_*`` methods."""

    __wrapped__: Any
    _self_gov: Any

    def _self_tpc(self, name: str, sql: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.__wrapped__, name)
        return run(self._self_gov, f"connection.{name}", sql, None, lambda _s: method(*args, **kwargs))

    def tpc_begin(self, xid: Any) -> Any:
        return self._self_tpc("tpc_begin", "BEGIN", xid)

    def tpc_prepare(self) -> Any:
        return self._self_tpc("tpc_prepare", "PREPARE TRANSACTION 'tpc'")

    def tpc_commit(self, xid: Any = None) -> Any:
        sql = "COMMIT PREPARED 'tpc'"
        return self._self_tpc("tpc_commit", sql) if xid is None else self._self_tpc("tpc_commit", sql, xid)

    def tpc_rollback(self, xid: Any = None) -> Any:
        if xid is None:
            # this connection's own two-phase transaction (prepared or not): undoing it is always allowed
            return self._self_tpc("tpc_rollback", "ROLLBACK")
        return self._self_tpc("tpc_rollback", "ROLLBACK PREPARED 'tpc'", xid)  # another session's, by its id

    def tpc_recover(self) -> Any:
        return self._self_tpc("tpc_recover", "SELECT gid FROM pg_catalog.pg_prepared_xacts")
