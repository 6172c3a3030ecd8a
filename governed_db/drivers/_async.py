"""What async drivers share: catalog reads done with ``await`` before a statement is judged.

Masking reads a table's columns (and a small sample) the first time a
statement touches it (:mod:`governed_db.masking.schema`), synchronously, on a
fresh cursor of the connection. An async connection cannot answer a
synchronous read, so :meth:`AsyncDriver.warm_catalog` runs first, awaited by
:func:`governed_db.async_proxies.govern`: it asks masking's own reader which
statements it would run for each table of the statement (a recording
connection), runs them with the driver's ``await`` (under a savepoint inside
a transaction), and lets masking read the answers from a replaying
connection. Masking's code, SQL and caching stay exactly those of sync
connections; a table whose catalog cannot be read is handled as for sync
connections (names decide, values are checked as they pass, masking when
unsure). Later statements find the table in masking's cache and cost one
dictionary lookup per table.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from governed_db._cache import LRU, STATEMENT_CHARS, STATEMENTS
from governed_db.drivers import Driver

if TYPE_CHECKING:
    from governed_db.pipeline import Governor

log = logging.getLogger("governed_db.masking")

#: statement text -> its table nodes (bounded; analysis itself is cached too)
_TABLES_CACHE = STATEMENTS


class AsyncDriver(Driver):
    """A driver whose connection methods are coroutines."""

    is_async = True

    async def catalog_rows(self, raw: Any, sql: str, params: Any) -> tuple[Any, list[Any]]:
        """``(description, rows)`` of one of masking's catalog reads, run on ``raw`` with ``await``."""
        raise NotImplementedError

    def catalog_connection(self, gov: Governor) -> Any:
        return gov.state.setdefault("catalog_replay", _Replay())

    async def warm_catalog(self, gov: Governor, sql: Any) -> None:
        """Read, with ``await``, the catalog facts masking will ask for when it judges ``sql``."""
        from governed_db import masking
        from governed_db.masking import schema

        state = gov.masking_state or masking._state_for(gov)
        if not state.active:
            return
        nodes = _table_nodes(gov, sql)
        if not nodes:
            return
        from governed_db.masking.catalog import table_key
        from governed_db.masking.engine import RETRY_SECONDS

        replay: _Replay = self.catalog_connection(gov)
        for node in nodes:
            key = table_key(".".join(p.name for p in node.parts))
            info = state.tables.get(key)
            if info is not None and (info.columns is not None or time.monotonic() - info.read_at < RETRY_SECONDS):
                continue
            # which statements masking's reader runs for this table (recorded, not run)
            recording = _Recording()
            bare = node.copy()
            bare.set("alias", None)
            table_sql = bare.sql(dialect=state.sg_dialect)
            db = node.args.get("db")
            db_name = db.name if isinstance(db, exp.Identifier) else None
            schema.read_columns(recording, gov.dialect, table_sql, db_name, node.name)
            if state.config.online and state.config.sample_rows > 0:
                schema.sample(recording, gov.dialect, table_sql, state.config.sample_rows)
            for query, params in recording.asked:
                try:
                    replay.answers[(query, _key(params))] = await self.catalog_rows(gov.raw, query, params)
                except Exception as e:  # unreadable: masking falls back as for a sync connection
                    log.debug("governed_db masking: async catalog read failed: %r", e)
            try:
                state.table(key, node)  # masking reads the answers through the replaying connection
            finally:
                replay.answers.clear()


def _key(params: Any) -> Any:
    return tuple(params) if isinstance(params, (list, tuple)) else params


def _table_nodes(gov: Governor, sql: Any) -> tuple[exp.Table, ...]:
    """The tables ``sql`` names (CTE names left out), cached per statement text."""
    from governed_db.sql.shapes import analysis_for

    cache: LRU[str, tuple[exp.Table, ...]] | None = gov.state.get("async_tables")
    if cache is None:
        cache = gov.state.setdefault("async_tables", LRU("async-tables", _TABLES_CACHE, STATEMENT_CHARS))
    text = sql if type(sql) is str else gov.driver.statement_text(sql, gov.raw)
    found: tuple[exp.Table, ...] | None = cache.get(text)
    if found is not None:
        return found
    nodes: list[exp.Table] = []
    try:
        analysis = analysis_for(text, gov.dialect)
    except Exception:
        return ()  # begin() judges (and refuses) what cannot be analysed
    for stmt in analysis.statements:
        expr = stmt.expression
        if expr is None:
            continue
        ctes = {c.alias_or_name for c in expr.find_all(exp.CTE)}
        nodes.extend(t for t in expr.find_all(exp.Table) if t.name and t.name not in ctes)
    found = tuple(nodes)
    cache.put(text, found, len(text) + 64)
    return found


class _Recording:
    """A connection that notes the statements masking's reader would run, and runs none."""

    autocommit = True

    def __init__(self) -> None:
        self.asked: list[tuple[str, Any]] = []

    def cursor(self) -> _Recording:
        return self

    def execute(self, sql: str, params: Any = None) -> None:
        self.asked.append((sql, params))
        raise LookupError("recorded")  # masking's reader stops here (and logs at debug level)

    def close(self) -> None:
        pass


class _Replay:
    """A connection answering masking's catalog reads with what :meth:`AsyncDriver.warm_catalog` read."""

    autocommit = True

    def __init__(self) -> None:
        self.answers: dict[tuple[str, Any], tuple[Any, list[Any]]] = {}
        self.description: Any = None
        self._rows: list[Any] = []

    def cursor(self) -> _Replay:
        return self

    def execute(self, sql: str, params: Any = None) -> None:
        try:
            self.description, self._rows = self.answers[(sql, _key(params))]
        except KeyError:
            raise LookupError("this catalog read was not done for the async connection") from None

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def close(self) -> None:
        pass


__all__ = ["AsyncDriver"]
