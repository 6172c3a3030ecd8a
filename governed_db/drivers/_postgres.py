"""What psycopg and psycopg2 share about PostgreSQL sessions: the effect guard's SQL and read-only sessions.

The guard's bracket costs one round trip on PostgreSQL: the probe that
measures a write raises (a failed cast naming the table and the rows left)
when the write changed every row, and otherwise keeps the write in the same
text (``...; RELEASE SAVEPOINT``). The read-only switch sets the session's
default *and* the open transaction, so a transaction already under way turns
read-only as well (PostgreSQL allows that at any point; the reverse it does
not, so an identity switch back to read-write takes effect at the next
transaction).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from governed_db.drivers import quote_ident
from governed_db.guards.session import Switch, transaction_ended

#: the claims governed_db passes as ``governed_db.<name>`` (see governed_db.guards.session.claims_of)
CLAIMS = ("subject", "kind", "on_behalf_of", "roles", "verified")


def _literal(value: str) -> str:
    """An E'' literal: read the same whatever standard_conforming_strings says."""
    if "\x00" in value:
        raise ValueError("an identity claim cannot contain NUL")
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


_VIOLATION = re.compile(r'governed_db-effect (\d+) (.*?)"')

#: SQLSTATE 25006 read_only_sql_transaction
READ_ONLY_SQLSTATE = "25006"


class PostgresSession:
    """Mixin for the PostgreSQL drivers' :class:`~governed_db.drivers.Driver` classes."""

    #: ``SET`` (session characteristics, role, ``set_config(..., false)``) is undone when its transaction
    #: (or a savepoint around it) rolls back: a switch made inside one is watched until it ends
    switch_is_transactional = True
    read_only_session = True

    if TYPE_CHECKING:  # the driver class this is mixed into has it

        def transaction_state(self, gov: Any, raw: Any) -> str: ...

    def guard_execute(self, raw: Any, sql: str) -> list[Any]:
        if (isinstance(sql, Switch) and not raw.autocommit and getattr(raw, "_pipeline", None) is None
                and self.transaction_state(None, raw) == "implicit"):  # fmt: skip
            # no transaction is open: the driver would open one for the switch, and the application's next
            # rollback would undo it. Made in autocommit it holds (no round trip for the toggle itself).
            raw.autocommit = True
            try:
                return super().guard_execute(raw, sql)  # type: ignore[misc,no-any-return]
            finally:
                raw.autocommit = False
        return super().guard_execute(raw, sql)  # type: ignore[misc,no-any-return]

    release_sql = "RELEASE SAVEPOINT governed_db_guard"
    rollback_to_sql = "ROLLBACK TO SAVEPOINT governed_db_guard"

    def undo_sql(self) -> tuple[str, ...]:
        return (f"{self.rollback_to_sql}; {self.release_sql}",)

    def fused_probe(self, probe: str, violation: str, keep: str) -> str | None:
        return (
            f"SELECT CAST('governed_db-effect ' || v.c || ' ' || v.t AS integer) FROM ({probe}) AS v "
            f"WHERE {violation}; {keep}"
        )

    def probe_violation(self, exc: BaseException) -> tuple[str, int] | None:
        found = _VIOLATION.search(str(exc))
        return (found.group(2), int(found.group(1))) if found else None

    def session_read_only_sql(self, gov: Any, raw: Any, read_only: bool) -> tuple[str, ...]:
        if read_only:
            return ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "SET TRANSACTION READ ONLY")
        return ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",)

    def session_sql(self, gov: Any, raw: Any, current: Any, want: Any) -> tuple[str, ...]:
        # one text, one round trip: read-only state, role and claims together, only what changed
        parts: list[str] = []
        if current is None or current.read_only != want.read_only:
            parts.extend(self.session_read_only_sql(gov, raw, want.read_only))
        if current is None or current.role != want.role:
            parts.append(f"SET ROLE {quote_ident(want.role)}" if want.role else "RESET ROLE")
        if current is None or current.claims != want.claims:
            values = dict(want.claims or ())  # an identity without claims clears those of the last one
            parts.append("SELECT " + ", ".join(
                f"set_config('governed_db.{name}', {_literal(values.get(name, ''))}, false)" for name in CLAIMS))
        if not parts:
            return ()
        single: Any = getattr(self, "single_statements", None)
        return tuple(parts) if single is not None and single(raw) else ("; ".join(parts),)

    def is_read_only_error(self, exc: BaseException) -> bool:
        code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        return code == READ_ONLY_SQLSTATE


class EndsTransactions:
    """Connection-proxy mixin: ``commit()``/``rollback()`` and ``with conn:`` end the transaction on the raw
    connection, so a session switch made inside it may be undone (governed_db sets it again)."""

    __wrapped__: Any
    _self_gov: Any

    def commit(self) -> Any:
        try:
            return self.__wrapped__.commit()
        finally:
            transaction_ended(self._self_gov)

    def rollback(self) -> Any:
        try:
            return self.__wrapped__.rollback()
        finally:
            transaction_ended(self._self_gov)

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc)
        finally:
            transaction_ended(self._self_gov)
