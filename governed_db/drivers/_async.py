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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from governed_db._cache import LRU, STATEMENT_CHARS, STATEMENTS
from governed_db.drivers import Driver
from governed_db.masking.messages import loggable
from governed_db.sql._sqlite_reading import parse_one

if TYPE_CHECKING:
    from governed_db.pipeline import Governor

log = logging.getLogger("governed_db.masking")

#: statement text -> its table nodes (bounded; analysis itself is cached too)
_TABLES_CACHE = STATEMENTS
#: masking's readers run a few statements each, some chosen by an earlier one's answer (an index's columns)
_ROUNDS = 64


class AsyncDriver(Driver):
    """A driver whose connection methods are coroutines."""

    is_async = True

    async def catalog_rows(self, raw: Any, sql: str, params: Any) -> tuple[Any, list[Any]]:
        """``(description, rows)`` of one of masking's catalog reads, run on ``raw`` with ``await``."""
        raise NotImplementedError

    async def note_compiling_async(self, raw: Any, sql: Any, exc: BaseException) -> None:
        """:meth:`Driver.note_compiling`, run with ``await`` (nothing by default)."""

    def catalog_connection(self, gov: Governor) -> Any:
        return gov.state.setdefault("catalog_replay", _Replay())

    async def warm_catalog(self, gov: Governor, sql: Any) -> None:
        """Read, with ``await``, the catalog facts masking will ask for when it judges ``sql``."""
        from governed_db import masking

        state = gov.masking_state or masking._state_for(gov)
        if not state.active:
            return
        _forget_before_ddl(gov, state, sql)
        nodes, writes = _table_nodes(gov, sql)
        replay: _Replay = self.catalog_connection(gov)
        # stored code names its tables in text sqlglot does not parse (a body): read apart (decision 0319)
        await self._warm_stored_code(gov, state, replay, sql)
        if not nodes:
            state.check_catalog(replay, relations=False)  # nothing read: MySQL keeps the last statement's warnings
            await self._warm_functions(gov, state, replay, sql, [])  # SELECT f(): no table, a body (0393)
            return
        if time.time() >= state.catalog_due or state.catalog_pending:
            await self._warm_drift(gov, state, replay)
        from governed_db.masking.catalog import table_key

        keys = [table_key(".".join(p.name for p in node.parts)) for node in nodes]
        for key, node in zip(keys, nodes, strict=True):
            await self._warm_table(gov, state, replay, key, node)
        # a write is judged by the constraints of the tables it names (read once per table), and by the columns of
        # the tables their foreign keys lead to. Read before the watched tables are probed, which traces the
        # statement (traced without them, every write of a small table was judged by unreadable constraints), and
        # again after, for a table that probe sampled anew (decision 0361)
        for key in keys if writes else ():
            await self._warm_constraints(gov, state, replay, key)
        await self._warm_watched(gov, state, replay, sql, nodes)
        for key in keys if writes else ():
            await self._warm_constraints(gov, state, replay, key)
        await self._warm_created(gov, state, replay, sql)
        await self._warm_functions(gov, state, replay, sql, keys)
        await self._warm_row_pickers(gov, state, replay, sql)
        for node in nodes:
            await self._warm_order(gov, state, replay, table_key(".".join(p.name for p in node.parts)), node, 0)

    async def _warm_functions(self, gov: Governor, state: Any, replay: _Replay, sql: Any, keys: list[str]) -> None:
        """Read, with ``await``, what the application's functions the statement (or a view it reads) calls read,
        and those relations (decision 0393)."""
        from governed_db.masking import app_functions
        from governed_db.masking.catalog import table_key
        from governed_db.sql.shapes import analysis_for

        text = sql if type(sql) is str else gov.driver.statement_text(sql, gov.raw)
        try:
            trees = [s.expression for s in analysis_for(text, gov.dialect).statements if s.expression is not None]
        except Exception:
            return
        todo, seen = list(keys), set[str]()
        while todo:  # the views read, and the views they read
            key = todo.pop()
            info = state.tables.get(key)
            if key in seen or info is None or len(seen) > 64:
                continue
            seen.add(key)
            for query in (info.view, info.policy):  # a row-level security policy calls functions as a view does
                try:
                    tree = parse_one(query, state.sg_dialect) if isinstance(query, str) else None
                except Exception:
                    continue
                if not isinstance(tree, exp.Expression):
                    continue
                trees.append(tree)
                todo.extend(table_key(".".join(p.name for p in x.parts)) for x in tree.find_all(exp.Table) if x.name)
        names = set().union(*(app_functions.called(t) for t in trees)) if trees else set()
        cache = state.function_reads
        for _ in range(app_functions.FUNCTION_DEPTH + 2):  # the functions called, then those they call...
            todo = app_functions.unread(cache, names)
            if not todo:
                break
            for name in todo:

                def read(conn: Any, n: str = name) -> None:
                    app_functions.read_body(conn, gov.dialect, n)

                await self._answer(gov, replay, read)
                try:
                    body = cache[name] = app_functions.read_body(replay, gov.dialect, name)
                finally:
                    replay.answers.clear()
                for key in body.relations if body is not None else ():
                    await self._warm_table(gov, state, replay, key, None)

    async def _warm_row_pickers(self, gov: Governor, state: Any, replay: _Replay, sql: Any) -> None:
        """Where a PostgreSQL statement reads the catalog's row counts: the relations whose rows a condition on
        column values picks, and their tables, read with ``await`` (decision 0399)."""
        from governed_db.masking import schema
        from governed_db.masking.catalog import table_key
        from governed_db.masking.guard import ROW_COUNT_COLUMNS, ROW_COUNT_FUNCTIONS

        text = (sql if type(sql) is str else gov.driver.statement_text(sql, gov.raw)).lower()
        if gov.dialect not in ("postgres", "postgresql") or not any(
            w in text for w in (*ROW_COUNT_COLUMNS, *ROW_COUNT_FUNCTIONS, "pg_class", "pg_stat")
        ):
            return
        await self._answer(gov, replay, lambda conn: schema.row_pickers(conn, gov.dialect))
        try:
            found = state.row_pickers()
        finally:
            replay.answers.clear()
        for table in sorted({t for t, _w, _c in found or ()})[:32]:
            await self._warm_table(gov, state, replay, table_key(table), None)

    async def _warm_drift(self, gov: Governor, state: Any, replay: _Replay) -> None:
        """Compare the relations read with the catalog, with ``await`` (decision 0392): changed, they are forgotten
        here, and read again below before the guard judges by them."""
        from governed_db.masking import drift

        sources = [source for _, source, _ in state.catalog_sources()]
        await self._answer(gov, replay, lambda conn: drift.signatures(conn, gov.dialect, sources))
        try:
            state.check_catalog(replay)
        finally:
            replay.answers.clear()

    async def _warm_created(self, gov: Governor, state: Any, replay: _Replay, sql: Any) -> None:
        """Read, with ``await``, the tables and views named like one a CREATE TABLE/VIEW makes (the masking guard
        refuses one that would hide another, decision 0248); kept in ``state.created_names`` for the guard."""
        from governed_db.masking import schema
        from governed_db.masking.guard import created_relation, temporary_names_named

        text = sql if type(sql) is str else gov.driver.statement_text(sql, gov.raw)
        for name in temporary_names_named(state, text, gov.dialect):
            # a temporary table of this connection a stored one may hide since (decision 0258)
            seen: list[list[bool] | None] = []

            def look(conn: Any, name: str = name, into: list[list[bool] | None] = seen) -> None:
                into.append(schema.same_named_relations(conn, gov.dialect, name))

            await self._answer(gov, replay, look)
            state.created_names[name] = seen[-1] if seen else None
            replay.answers.clear()
        if "create" not in text[:200].lower():
            return
        from governed_db.sql.shapes import analysis_for

        try:
            analysis = analysis_for(text, gov.dialect)
        except Exception:
            return
        for stmt in analysis.statements:
            created = created_relation(stmt, gov.dialect)
            if created is None:
                continue
            found: list[list[bool] | None] = []

            def read(conn: Any, name: str = created[0], into: list[list[bool] | None] = found) -> None:
                into.append(schema.same_named_relations(conn, gov.dialect, name))

            await self._answer(gov, replay, read)
            state.created_names[created[0].lower()] = found[-1] if found else None
            replay.answers.clear()

    async def _warm_stored_code(self, gov: Governor, state: Any, replay: _Replay, sql: Any) -> None:
        """Read, with ``await``, which words of a statement defining stored code name a table or view, and those
        tables' columns: the masking guard refuses stored code naming one with masked columns (decision 0319)."""
        from governed_db.masking import schema, stored_code
        from governed_db.masking.catalog import table_key
        from governed_db.sql.shapes import analysis_for

        text = sql if type(sql) is str else gov.driver.statement_text(sql, gov.raw)
        head = text[:200].lower()
        if "create" not in head and "alter" not in head and "do" not in head:
            return
        try:
            analysis = analysis_for(text, gov.dialect)
        except Exception:
            return
        # a PostgreSQL DO block is judged as stored code is (decision 0365)
        anonymous = gov.dialect in ("postgres", "postgresql") and any(
            str(s.operation).upper() == "DO" for s in analysis.statements
        )
        if not anonymous and not any(stored_code.defines_stored_code(s) for s in analysis.statements):
            return
        for name in stored_code.named_relations(text, gov.dialect) or ():
            found: list[list[bool] | None] = []

            def read(conn: Any, name: str = name, into: list[list[bool] | None] = found) -> None:
                into.append(schema.same_named_relations(conn, gov.dialect, name.rpartition(".")[2]))

            await self._answer(gov, replay, read)
            state.stored_code_names[name] = found[-1] if found else None
            replay.answers.clear()
            if found and found[-1]:
                await self._warm_table(gov, state, replay, table_key(name), None)
                state.stored_code_classes[name] = state.table_classes(table_key(name))

    async def _warm_order(self, gov: Governor, state: Any, replay: _Replay, key: str, node: exp.Table | None,
                          depth: int) -> None:
        """Read, with ``await``, a relation's indexes and keys for the order guard (decision 0160), and those of
        the tables a view reads."""
        from governed_db.masking import schema
        from governed_db.masking.catalog import table_key
        from governed_db.masking.engine import ORDER_SECONDS

        info = state.tables.get(key)
        if info is None or info.columns is None or depth > 3 or not state.table_classes(key):
            return  # nothing sensitive in it: the order guard does not ask
        if time.monotonic() - info.order_at >= ORDER_SECONDS:
            table_sql, name, db_name = state._names(key, node)
            try:
                await self._answer(gov, replay, lambda conn: schema.read_order(conn, gov.dialect, table_sql, db_name,
                                                                               name))
                state.order_of(key, node)
            except Exception as e:  # unreadable: the order guard assumes the worst, as for a sync connection
                log.debug("governed_db masking: async catalog read failed: %s", loggable(e))
            finally:
                replay.answers.clear()
        for read in getattr(info.order, "reads", None) or ():
            sub = table_key(read)
            await self._warm_table(gov, state, replay, sub, None)
            await self._warm_order(gov, state, replay, sub, None, depth + 1)

    async def _warm_watched(
        self, gov: Governor, state: Any, replay: _Replay, sql: Any, nodes: tuple[exp.Table, ...]
    ) -> None:
        """Probe, with ``await``, the watched tables (decision 0268) the statement filters on or computes from, as
        the guard does on a sync connection before it judges such a statement; changed, sample them again."""
        from governed_db.masking.catalog import table_key

        keys = [table_key(".".join(p.name for p in node.parts)) for node in nodes]
        watched = [(k, n) for k, n in zip(keys, nodes, strict=True) if getattr(state.tables.get(k), "watch", None)]
        if not watched:
            return
        from governed_db.masking.guard import unsettled_uses
        from governed_db.sql.shapes import analysis_for

        text = sql if type(sql) is str else gov.driver.statement_text(sql, gov.raw)
        try:
            used = unsettled_uses(state, analysis_for(text, gov.dialect))
        except Exception:
            used = {k for k, _ in watched}  # cannot tell: probe them all
        for key, node in watched:
            info = state.tables.get(key)
            if key not in used or info is None or info.provisional:
                continue  # not used so, or probed already as a provisional table

            def probe(conn: Any, key: str = key) -> None:
                state.unchanged(key, conn)

            await self._answer(gov, replay, probe)
            try:
                same = state.unchanged(key, replay)
            finally:
                replay.answers.clear()
            if not same:
                await self._warm_table(gov, state, replay, key, node, force=True)

    async def _warm_table(
        self, gov: Governor, state: Any, replay: _Replay, key: str, node: exp.Table | None, depth: int = 0,
        force: bool = False,
    ) -> None:
        from governed_db.masking import drift, sampling, schema
        from governed_db.masking.engine import RETRY_SECONDS

        info = state.tables.get(key)
        if info is not None and info.columns is None and info.source is not None and not info.provisional:
            # columns not known (missing when first named, or a read that failed): another connection may have made
            # it since; the sync path reads it again before judging a statement that names it (decision 0277)
            source = info.source
            await self._answer(gov, replay, lambda conn: schema.read_columns(conn, gov.dialect, *source))
            try:
                known = schema.read_columns(replay, gov.dialect, *source)
            except Exception:
                known = None
            finally:
                replay.answers.clear()
            if known is None:
                return
            state.forget([key])
            info = None
        if (
            not force
            and info is not None
            and (info.columns is not None or time.monotonic() - info.read_at < RETRY_SECONDS)
            and not info.provisional
            and not state.due(key)
        ):
            return
        # a provisional table is probed first unless due; a due one (values arrived), one its probe changed
        # (force), and one whose catalog read failed (decision 0269) are read again
        provisional = not force and info is not None and info.provisional and info.columns is not None
        if provisional and not state.due(key):
            # sampled (nearly) empty: the statement may filter on what it holds now. The guard cannot read while
            # it judges, so the cheap probe (decision 0267) is read here with ``await``: unchanged, the labels
            # stand; changed (or unreadable), the table is sampled again, here too
            await self._answer(gov, replay, lambda conn: state.unchanged(key, conn))
            try:
                same = state.unchanged(key, replay)
            finally:
                replay.answers.clear()
            if same:
                return
        if node is not None:
            bare = schema.bare_table(node)
            table_sql = bare.sql(dialect=state.sg_dialect)
            db = node.args.get("db")
            db_name, name = (db.name if isinstance(db, exp.Identifier) else None), node.name
        else:
            table_sql, name = key, key.rsplit(".", 1)[-1]
            db_name = key.rsplit(".", 1)[0] if "." in key else None

        definition: list[str | None] = []

        def define(conn: Any) -> None:
            definition.append(schema.read_view_definition(conn, gov.dialect, table_sql))

        await self._answer(gov, replay, define)
        replay.answers.clear()
        if definition and definition[-1] is not None and depth < 3:
            # a PostgreSQL view is classified from its definition (decision 0262): the tables it reads first
            await self._warm_view_sources(gov, state, replay, definition[-1], depth)
        shadowed: list[tuple[str, str] | None] = []
        await self._answer(gov, replay, lambda conn: shadowed.append(schema.fts_source(conn, gov.dialect, name)))
        replay.answers.clear()
        if shadowed and shadowed[-1] is not None and shadowed[-1][1] not in schema.FTS_MODULES and depth < 3:
            # a SQLite full-text index's shadow table takes the labels of the table it indexes: that one first
            from governed_db.masking.catalog import table_key

            await self._warm_table(gov, state, replay, table_key(shadowed[-1][0]), None, depth + 1)

        parents: list[str] = []

        def parents_of(conn: Any) -> None:
            parents.extend(p for _, p, _ in schema.references(conn, gov.dialect, name, db_name))
            parents.extend(schema.sequence_tables(conn, gov.dialect, name))

        await self._answer(gov, replay, parents_of)
        replay.answers.clear()
        if depth < 3:
            # a foreign key's column takes the label of the parent column it holds, sqlite_sequence.seq that of
            # each AUTOINCREMENT key (decision 0388): those tables first
            from governed_db.masking.catalog import table_key as key_of

            for parent in sorted(set(parents)):
                if key_of(parent) != key:
                    await self._warm_table(gov, state, replay, key_of(parent), None, depth + 1)

        def read(conn: Any) -> None:
            # every reader masking's classification of a table runs (MaskingState._read_table), in its order: one
            # left out here leaves its facts unread on an async connection (generated columns over an SSN came
            # back in clear on asyncpg)
            drift.signatures(conn, gov.dialect, [(table_sql, db_name, name)])  # first, as _read_table (0392)
            cols = schema.read_columns(conn, gov.dialect, table_sql, db_name, name)
            if state.config.online and state.config.sample_rows > 0:
                schema.reads_uncommitted(conn, gov.dialect)  # a sample of uncommitted rows is none (0275)
                sampled = schema.sample(conn, gov.dialect, table_sql, state.config.sample_rows)
                if sampled is not None and cols:
                    sampling.wider(conn, gov.dialect, table_sql, sampled, cols, state.config.sample_rows)  # 0294
                    sampling.hidden(conn, gov.dialect, table_sql, sampled[0], cols, state.config.sample_rows)
            schema.fts_source(conn, gov.dialect, name)
            schema.rowid_alias(conn, gov.dialect, name, db_name)
            schema.references(conn, gov.dialect, name, db_name)
            schema.sequence_tables(conn, gov.dialect, name)
            schema.read_generated(conn, gov.dialect, table_sql, db_name, name, [c for c, _ in cols or ()])
            schema.read_composite_fields(conn, gov.dialect, table_sql)
            schema.read_row_policies(conn, gov.dialect, table_sql)
            schema.read_placed(conn, gov.dialect, table_sql)
            schema.read_held_rows(conn, gov.dialect, table_sql)
            if schema.read_view_definition(conn, gov.dialect, table_sql) is not None:
                schema.system_view(conn, gov.dialect, table_sql)

        await self._answer(gov, replay, read)
        try:
            if info is not None and (info.provisional or info.watch is not None):
                state.sample_again(key, node)  # answers derived from the old labels dropped when they changed
            else:
                state.table(key, node)  # masking reads the answers through the replaying connection
        finally:
            replay.answers.clear()

    async def _warm_view_sources(self, gov: Governor, state: Any, replay: _Replay, definition: str, depth: int) -> None:
        from governed_db.masking.catalog import table_key

        try:
            tree = parse_one(definition, state.sg_dialect)
        except Exception:
            return
        ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if table.name and not (len(table.parts) == 1 and table.name.lower() in ctes):
                await self._warm_table(
                    gov, state, replay, table_key(".".join(p.name for p in table.parts)), table, depth + 1
                )

    async def _warm_constraints(self, gov: Governor, state: Any, replay: _Replay, key: str, depth: int = 0) -> None:
        from governed_db.masking import app_functions, schema

        info = state.tables.get(key)
        if info is None or info.columns is None or not state.constraints_due(info):
            return
        table_sql, db_name, name = info.source or (key, None, key)
        await self._answer(
            gov, replay, lambda conn: schema.read_constraints(conn, gov.dialect, table_sql, db_name, name, info.columns,
                                                              app_functions.pg_reach)
        )
        try:
            _, constraints = state.constraints_of(key)
        finally:
            replay.answers.clear()
        for other in sorted({c.other for c in constraints or () if c.other is not None}):
            await self._warm_table(gov, state, replay, other, None)
        if depth < _CASCADE_DEPTH:
            # a child table a foreign key's action writes is judged by its own constraints (decision 0386)
            for child in sorted({c.other for c in constraints or () if c.actions and c.other is not None}):
                await self._warm_constraints(gov, state, replay, child, depth + 1)

    async def _answer(self, gov: Governor, replay: _Replay, read: Callable[[Any], Any]) -> None:
        """Run masking's reader ``read`` on a probing connection until every statement it runs has an answer
        in ``replay`` (one round per statement that depends on an earlier one's answer)."""
        for _ in range(_ROUNDS):
            probe = _Probe(replay.answers)
            read(probe)
            if not probe.asked:
                return
            for query, params in probe.asked:
                try:
                    replay.answers[(query, _key(params))] = await self.catalog_rows(gov.raw, query, params)
                except Exception as e:  # unreadable: masking falls back as for a sync connection
                    log.debug("governed_db masking: async catalog read failed: %s", loggable(e))
                    replay.answers[(query, _key(params))] = e


def _key(params: Any) -> Any:
    return tuple(params) if isinstance(params, (list, tuple)) else params


def _forget_before_ddl(gov: Governor, state: Any, sql: Any) -> None:
    """Judging DDL (or USE, DISCARD...) forgets every table read (their columns may be about to change): on a
    sync connection the guard does it and reads them again as it judges; here it is done before the warm-up, so
    that what is read with ``await`` below is what the guard judges by. Forgotten while judging, the tables of
    an ``ALTER TABLE t ADD CHECK (code < '536-22-87')`` were read again through the replay, which had no answer:
    columns unknown, a content-classified SSN column unmasked, and the CHECK failed by the stored values (0323)."""
    from governed_db.masking.guard import renames
    from governed_db.sql.shapes import analysis_for

    text = sql if type(sql) is str else gov.driver.statement_text(sql, gov.raw)
    try:
        analysis = analysis_for(text, gov.dialect)
    except Exception:
        return
    if any(renames(s) for s in analysis.statements):
        state.invalidate()


def _table_nodes(gov: Governor, sql: Any) -> tuple[tuple[exp.Table, ...], bool]:
    """The tables ``sql`` names (CTE names left out), and whether it writes, cached per statement text."""
    from governed_db.masking.constraints import checksum_tables, command_tables, opaque_unique_index_tables
    from governed_db.masking.mysql_show import show_listing
    from governed_db.sql.analysis import sqlglot_dialect
    from governed_db.sql.shapes import analysis_for

    cache: LRU[str, tuple[tuple[exp.Table, ...], bool]] | None = gov.state.get("async_tables")
    if cache is None:
        cache = gov.state.setdefault("async_tables", LRU("async-tables", _TABLES_CACHE, STATEMENT_CHARS))
    text = sql if type(sql) is str else gov.driver.statement_text(sql, gov.raw)
    found: tuple[tuple[exp.Table, ...], bool] | None = cache.get(text)
    if found is not None:
        return found
    nodes: list[exp.Table] = []
    writes = False
    try:
        analysis = analysis_for(text, gov.dialect)
    except Exception:
        return (), False  # begin() judges (and refuses) what cannot be analysed
    for stmt in analysis.statements:
        expr = stmt.expression
        if expr is None:
            continue
        writes = writes or stmt.kind == "write" or expr.find(exp.Insert, exp.Update, exp.Delete, exp.Merge) is not None
        if gov.dialect in ("mysql", "mariadb"):
            # a SHOW that lists an information_schema table reads that table (masked as it is there, 0306)
            expr = show_listing(expr, sqlglot_dialect(gov.dialect)) or expr
        ctes = {c.alias_or_name for c in expr.find_all(exp.CTE)}
        nodes.extend(t for t in expr.find_all(exp.Table) if t.name and t.name not in ctes)
        # RENAME TABLE, ALTER IGNORE TABLE...: tables named in a command's text (decision 0322)
        nodes.extend(t for t in command_tables(expr, sqlglot_dialect(gov.dialect)) if t.name)
    if any(stmt.operation == "CHECKSUM" for stmt in analysis.statements):
        nodes.extend(t for t in checksum_tables(text, sqlglot_dialect(gov.dialect)) or () if t.name)  # (0322)
    if any(stmt.kind == "ddl" and stmt.expression is None for stmt in analysis.statements):
        nodes.extend(t for t in opaque_unique_index_tables(text, sqlglot_dialect(gov.dialect)) or () if t.name)
    found = (tuple(nodes), writes)
    cache.put(text, found, len(text) + 64)
    return found


#: how many foreign keys' actions deep the async warm-up reads child tables' constraints (deeper: unreadable, refused)
_CASCADE_DEPTH = 8


class _Probe:
    """A connection that answers the statements already read and notes the first one that is not (masking's
    reader stops there, as on any error, and logs at debug level)."""

    autocommit = True

    def __init__(self, answers: dict[tuple[str, Any], Any]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, Any]] = []
        self.description: Any = None
        self._rows: list[Any] = []

    def cursor(self) -> _Probe:
        return self

    def execute(self, sql: str, params: Any = None) -> None:
        found = self.answers.get((sql, _key(params)))
        if found is None:
            self.asked.append((sql, params))
            raise LookupError("recorded")
        if isinstance(found, BaseException):
            raise found
        self.description, self._rows = found

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def close(self) -> None:
        pass


class _Replay:
    """A connection answering masking's catalog reads with what :meth:`AsyncDriver.warm_catalog` read."""

    autocommit = True

    def __init__(self) -> None:
        #: (statement, parameters) -> (description, rows), or the error reading it raised
        self.answers: dict[tuple[str, Any], Any] = {}
        self.description: Any = None
        self._rows: list[Any] = []
        #: reads asked for that the warm-up did not do: masking's reader fails them, but the catalog did not
        #: (a table read again after DDL invalidated it, decision 0269)
        self.misses = 0

    def cursor(self) -> _Replay:
        return self

    def execute(self, sql: str, params: Any = None) -> None:
        try:
            found = self.answers[(sql, _key(params))]
        except KeyError:
            self.misses += 1
            raise LookupError("this catalog read was not done for the async connection") from None
        if isinstance(found, BaseException):
            raise found
        self.description, self._rows = found

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def close(self) -> None:
        pass


__all__ = ["AsyncDriver"]
