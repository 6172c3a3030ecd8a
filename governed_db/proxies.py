"""Thin wrapt proxies: every way SQL goes in and rows come out meets the pipeline.

The proxies hold no logic of their own beyond routing: statements go to
:func:`governed_db.pipeline.run`, rows go through
:class:`governed_db.results.ResultState`. Driver-specific entry points live in
``governed_db.drivers.<driver>`` as small subclasses of these two.

Conventions (wrapt): proxy state uses the ``_self_`` prefix; the real object
is ``__wrapped__``; any method that would hand back the raw cursor or
connection hands back the proxy instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import wrapt

from governed_db.pipeline import Governor, run
from governed_db.results import ResultState


class GovernedCursor(wrapt.ObjectProxy):  # type: ignore[misc]
    """A DB-API cursor whose statements are governed and whose rows are masked."""

    def __init__(self, raw: Any, gov: Governor, connection: Any) -> None:
        super().__init__(raw)
        self._self_gov = gov
        self._self_connection = connection
        self._self_result = ResultState(raw, gov)

    # -- the proxy itself is what callers get back -------------------------------------------
    def _self_out(self, value: Any) -> Any:
        if value is self.__wrapped__:
            return self
        if value is self._self_gov.raw:
            return self._self_connection
        return value

    @property
    def connection(self) -> Any:
        return self._self_connection

    def __enter__(self) -> GovernedCursor:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        self._self_result.finish()
        return self.__wrapped__.__exit__(*exc)

    def __repr__(self) -> str:
        return f"<governed {self.__wrapped__!r}>"

    # -- in ------------------------------------------------------------------------------------
    def execute(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        raw = self.__wrapped__
        out = run(
            self._self_gov,
            "cursor.execute",
            operation,
            _params(args, kwargs),
            lambda sql: raw.execute(sql, *args, **kwargs),
            self._self_result,
        )
        return self._self_out(out)

    def executemany(self, operation: Any, seq_of_parameters: Any, *args: Any, **kwargs: Any) -> Any:
        raw = self.__wrapped__
        if not isinstance(seq_of_parameters, (list, tuple)):
            seq_of_parameters = list(seq_of_parameters)  # consumed once, by the record and the driver alike
        out = run(
            self._self_gov,
            "cursor.executemany",
            operation,
            seq_of_parameters,
            lambda sql: raw.executemany(sql, seq_of_parameters, *args, **kwargs),
            self._self_result,
        )
        return self._self_out(out)

    def callproc(self, procname: Any, *args: Any, **kwargs: Any) -> Any:
        raw = self.__wrapped__
        name = procname if isinstance(procname, str) else str(procname)
        params = args[0] if args else None
        placeholders = ", ".join("?" for _ in (params or ()))
        out = run(
            self._self_gov,
            "cursor.callproc",
            f"CALL {name}({placeholders})",
            params,
            lambda _sql: raw.callproc(procname, *args, **kwargs),
            self._self_result,
        )
        return self._self_out(out)

    # -- out -----------------------------------------------------------------------------------
    def fetchone(self) -> Any:
        row = self.__wrapped__.fetchone()
        st = self._self_result
        return st.one(row) if st.active else row

    def fetchmany(self, *args: Any, **kwargs: Any) -> list[Any]:
        rows = self.__wrapped__.fetchmany(*args, **kwargs)
        st = self._self_result
        if not st.active:
            return rows  # type: ignore[no-any-return]
        size = args[0] if args else kwargs.get("size", getattr(self.__wrapped__, "arraysize", 1))
        return st.many(list(rows), complete=len(rows) < (size or 1))

    def fetchall(self) -> list[Any]:
        rows = self.__wrapped__.fetchall()
        st = self._self_result
        return st.many(list(rows), complete=True) if st.active else rows

    def __iter__(self) -> Iterator[Any]:
        # Always a generator: some drivers' iter(cursor) is the raw cursor itself.
        st = self._self_result
        raw_iter = iter(self.__wrapped__)
        if st.active:
            return st.iterate(raw_iter)
        return (row for row in raw_iter)

    def __next__(self) -> Any:
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row

    def nextset(self, *args: Any, **kwargs: Any) -> Any:
        self._self_result.finish()
        out = self.__wrapped__.nextset(*args, **kwargs)
        # the next result set has its own columns: refuse to hand them out unplanned
        if out and self._self_result.plan is not None:
            from governed_db.errors import GuardrailViolation

            self._self_result.poison(
                self._self_gov.refusal(
                    GuardrailViolation("a second result set of a masked statement is withheld; run statements one by one")
                )
            )
        return self._self_out(out)

    def close(self) -> Any:
        self._self_result.finish()
        return self.__wrapped__.close()


class GovernedConnection(wrapt.ObjectProxy):  # type: ignore[misc]
    """A DB-API connection whose cursors, shortcuts and context managers stay governed."""

    cursor_proxy: type[GovernedCursor] = GovernedCursor

    def __init__(self, raw: Any, gov: Governor) -> None:
        super().__init__(raw)
        self._self_gov = gov

    def cursor(self, *args: Any, **kwargs: Any) -> GovernedCursor:
        return self.cursor_proxy(self.__wrapped__.cursor(*args, **kwargs), self._self_gov, self)

    def __enter__(self) -> GovernedConnection:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self.__wrapped__.__exit__(*exc)

    def __repr__(self) -> str:
        return f"<governed {self.__wrapped__!r} environment={self._self_gov.environment!r}>"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a governed connection cannot be pickled (neither can the driver's connection)")

    @property
    def governor(self) -> Governor:
        """governed_db's state for this connection (settings, dialect, policy)."""
        return self._self_gov


def _params(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    for key in ("parameters", "params", "vars", "args"):
        if key in kwargs:
            return kwargs[key]
    return None
