"""sqlite3: connection shortcuts, ``executescript``, and the non-SQL ways data leaves.

``backup``, ``iterdump``, ``serialize``, ``deserialize``, ``load_extension`` and
``blobopen`` move data or code without a SQL statement; each is judged as the
statement it amounts to, so the same rules apply (``VACUUM INTO``,
``DROP SCHEMA``, ``load_extension()``, a read or update of one column; a blob
of a masked column is refused, since its bytes never pass through a cursor).

The connection's factories and limits are the caller's too (decision 0170): a
``row_factory`` is handed masked values only (as psycopg's row factories are),
a ``text_factory`` other than ``str``/``bytes``/``bytearray`` is refused (it
would see every value before masking, and ``int`` quotes it in its error), and
``setlimit`` may not lower the string length limit (past it a computed value
fails or turns NULL exactly when it holds what the statement looks for). ``set_authorizer`` and
``set_progress_handler`` (with a handler) are refused: they act on governed_db's own catalog reads and samples
too, and could leave a column unclassified (decision 0265).
"""

from __future__ import annotations

import codecs
import operator
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from governed_db import masking
from governed_db.drivers import Driver, innermost, quote_ident, shadowing
from governed_db.drivers._copy import describe_with, refuse_masked_export
from governed_db.errors import GovernedDBError, GuardrailViolation
from governed_db.masking.flow import known_function_name
from governed_db.masking.row_length import DEFAULT_LIMIT
from governed_db.pipeline import run
from governed_db.proxies import GovernedConnection, GovernedCursor, governed_executescript, many_out

#: text factories built into Python that never fail and keep nothing: rows are masked after them
_NATIVE_TEXT = (str, bytes, bytearray)

#: how many cells the lenient text factory could not decode (process-wide: a change only says "look closer")
_undecodable = [0]


def _count_undecodable(exc: UnicodeError) -> tuple[str | bytes, int]:
    _undecodable[0] += 1
    return codecs.lookup_error("surrogateescape")(exc)


codecs.register_error("governed-db-sqlite-undecodable", _count_undecodable)
#: ``bytes.decode`` that cannot fail: invalid UTF-8 becomes lone surrogates (and is counted); valid text runs no
#: Python code (a methodcaller is the cheapest C callable measured: ~0.15 us a cell over ``str``)
_LENIENT = operator.methodcaller("decode", "utf-8", "governed-db-sqlite-undecodable")


def _undecoded(value: Any) -> bool:
    """A text cell the lenient factory could not decode (it holds a lone surrogate)."""
    if value.__class__ is not str or value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def settle(row: Any, names: tuple[str, ...], masked: frozenset[int]) -> Any:
    """``row`` as the driver's ``str`` factory would have given it: an undecodable cell of a column masking
    does not cover fails as sqlite3 fails; one it covers becomes U+FFFD and is masked like any value (whether
    a *computed* masked value is valid UTF-8 may depend on what it holds: it must not decide an error)."""
    values = tuple(row)
    out = list(values)
    for i, v in enumerate(values):
        if not _undecoded(v):
            continue
        if i not in masked:
            name = names[i] if i < len(names) else str(i)
            shown = v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            raise sqlite3.OperationalError(f"Could not decode to UTF-8 column '{name}' with text '{shown}'")
        out[i] = v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if out == list(values) and all(a is b for a, b in zip(out, values, strict=True)):
        return row
    if isinstance(row, sqlite3.Row):
        from governed_db.masking.rows import _sqlite_row

        return _sqlite_row(tuple(out), tuple(row.keys()))
    return type(row)(out) if isinstance(row, list) else tuple(out)


def masked_indexes(plan: Any, names: tuple[str, ...]) -> frozenset[int]:
    """The result positions ``plan`` masks (by name when it has no positions: a column named like a masked one
    counts as masked, so it never fails)."""
    positions = getattr(plan, "masked_positions", None)
    if positions is not None:
        return frozenset(i for i, _ in positions)
    return frozenset(i for i, n in enumerate(names) if plan is not None and n in plan.masked_columns)


def lenient_fetch(conn: Any, fetch: Any, *args: Any) -> tuple[Any, bool]:
    """``fetch(*args)`` while ``conn`` decodes text with :data:`_LENIENT`, and whether a cell could not be decoded.

    For a connection only one thread uses at a time (aiosqlite's worker runs one call after another): the
    factory is swapped and restored inside the call, so nothing else on the connection sees it."""
    if conn.text_factory is not str:
        return fetch(*args), False  # bytes/bytearray never fail; another factory was refused at the proxy
    seen = _undecodable[0]
    conn.text_factory = _LENIENT
    try:
        return fetch(*args), _undecodable[0] != seen
    finally:
        conn.text_factory = str


class _Lenient:
    """While a governed cursor fetches a result with masked columns, the raw connection decodes text with
    :data:`_LENIENT` instead of ``str`` (a depth count, so concurrent fetches on one connection agree)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0

    def enter(self, raw: Any) -> bool:
        with self.lock:
            if self.depth == 0:
                if raw.text_factory is not str:
                    return False  # bytes/bytearray never fail; another factory was refused at the proxy
                raw.text_factory = _LENIENT
            self.depth += 1
            return True

    def leave(self, raw: Any) -> None:
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and raw.text_factory is _LENIENT:
                raw.text_factory = str


_lenient_lock = threading.Lock()


def _masked_factory(user: Any, cursor: SqliteCursor) -> Any:
    """A sqlite3 row factory that hands ``user`` the row's values masked (and the governed cursor)."""
    st = cursor._self_result

    def factory(_raw_cursor: Any, row: tuple[Any, ...]) -> Any:
        if st.poisoned is not None:
            raise st.poisoned
        plan = st.plan
        if cursor._self_dirty():
            row = cursor._self_settle(row)
        return user(cursor, plan.apply_row(row) if plan is not None else row)

    factory.governed_user_factory = user  # type: ignore[attr-defined]
    return factory


class SqliteCursor(GovernedCursor):
    def __init__(self, raw: Any, gov: Any, connection: Any) -> None:
        super().__init__(raw, gov, connection)
        #: the undecodable count when this fetch began (``None``: fetching with the caller's own factory)
        self._self_seen: int | None = None
        # the caller's own factory set through the governed connection is kept off the raw one (decision 0324)
        self._install_factory(getattr(connection, "_self_row_factory", None) or raw.row_factory)

    def _install_factory(self, factory: Any) -> None:
        raw, st = self.__wrapped__, self._self_result
        factory = getattr(factory, "governed_user_factory", factory)
        if factory is None or factory is sqlite3.Row:
            st.premasked = False  # tuples and Rows are masked as they leave
            raw.row_factory = factory
        else:
            # any other factory is the caller's code: it builds its row from masked values only (a
            # ``row_factory = print`` or a list's ``append`` would otherwise receive every value in clear)
            st.premasked = True
            raw.row_factory = _masked_factory(factory, self)

    @property
    def row_factory(self) -> Any:
        factory = self.__wrapped__.row_factory
        return getattr(factory, "governed_user_factory", factory)

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._install_factory(factory)

    def executescript(self, sql_script: Any) -> Any:
        return governed_executescript(self, sql_script)

    # sqlite3 decodes text while rows are fetched: an error then quotes the cell (``Could not decode to UTF-8
    # column ... with text '536-22-8726\xff'``), so fetch errors are scrubbed as statement errors are. And
    # *whether* it fails is an oracle when a masked value decides it (``ltrim('5' || x'ff', substr(ssn, 1, 1) ||
    # x'ff')`` is valid UTF-8 only for a 5): a result with masked columns is fetched through a text factory
    # that cannot fail, and only a column masking does not cover fails, as the driver would (decision 0191)
    def fetchone(self) -> Any:
        row = self._self_fetch(self.__wrapped__.fetchone)
        if self._self_seen is not None and row is not None and self._self_dirty() and not self._self_result.premasked:
            row = self._self_settle(row)
        st = self._self_result
        return st.one(row) if st.active else row

    def fetchmany(self, *args: Any, **kwargs: Any) -> Any:
        rows = self._self_settled(self._self_fetch(self.__wrapped__.fetchmany, *args, **kwargs))
        return many_out(self, rows, args, kwargs)

    def fetchall(self) -> Any:
        rows = self._self_fetch(self.__wrapped__.fetchall)
        return many_out(self, rows if self._self_seen is None else self._self_settled(rows), None, None)

    def __next__(self) -> Any:
        st = self._self_result
        try:
            row = self._self_fetch(next, self.__wrapped__)
        except StopIteration:
            if st.active:
                st.finish()
            raise
        if self._self_seen is not None and self._self_dirty() and not st.premasked:
            row = self._self_settle(row)
        if not st.active:
            return row
        out = st.one(row)
        if out is None:  # the row cap was reached
            raise StopIteration
        return out

    def __iter__(self) -> Iterator[Any]:
        while True:
            try:
                row = self.__next__()
            except StopIteration:
                return
            yield row

    def _self_dirty(self) -> bool:
        """Whether the lenient factory met undecodable text since this fetch began."""
        seen = self._self_seen
        return seen is not None and seen != _undecodable[0]

    def _self_settled(self, rows: list[Any]) -> list[Any]:
        if not self._self_dirty() or self._self_result.premasked:
            return rows
        return [self._self_settle(r) for r in rows]

    def _self_settle(self, row: Any) -> Any:
        plan = self._self_result.plan
        names = tuple(str(d[0]) for d in self.__wrapped__.description or ())
        return settle(row, names, masked_indexes(plan, names))

    def _self_fetch_failed(self, exc: BaseException) -> None:
        fetch_failed(self, exc)

    def _self_fetch(self, fetch: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one raw fetch with its errors scrubbed; through the lenient decoder when the result has a computed
        masked column (plain try/finally: this is every fetch's path)."""
        plan = self._self_result.plan
        if plan is None:  # nothing masked: the driver's own decoder (the usual case)
            self._self_seen = None
            try:
                return fetch(*args, **kwargs)
            except sqlite3.Error as e:
                self._self_fetch_failed(e)
                raise
        lenient: _Lenient | None = None
        if bool(getattr(plan, "computed", True)):
            # only a computed masked value can be made valid UTF-8 or not by a guess; a plain column's stored
            # value fails (scrubbed) or not whatever the statement, so plain reads keep the C decoder
            lenient = _lenient_of(self._self_connection)
            if not lenient.enter(self.__wrapped__.connection):
                lenient = None
        self._self_seen = _undecodable[0] if lenient is not None else None
        try:
            return fetch(*args, **kwargs)
        except sqlite3.Error as e:
            self._self_fetch_failed(e)
            raise
        except Exception as e:
            converter_failed(e)
            raise
        finally:
            if lenient is not None:
                lenient.leave(self.__wrapped__.connection)


def _lenient_of(connection: Any) -> _Lenient:
    found: _Lenient | None = getattr(connection, "_self_lenient", None)
    if found is None:
        with _lenient_lock:
            found = getattr(connection, "_self_lenient", None)
            if found is None:
                found = _Lenient()
                connection._self_lenient = found
    return found


_BUILTIN_COLLATIONS = frozenset({"BINARY", "NOCASE", "RTRIM"})


def shadows_known_function(raw: Any, name: str) -> bool:
    """True when a user function called ``name`` would replace one SQLite defines or masking trusts.

    Masking lets a value through functions it knows to be total (``upper(ssn)``, ``reverse(ssn)``: masked whole at
    the output); a Python function registered under such a name would be called with the raw values instead.
    """
    if known_function_name(name, "sqlite"):
        return True
    try:
        rows = raw.execute(BUILTIN_FUNCTION_SQL, (name.lower(),)).fetchall()
    except Exception:
        return True  # cannot tell: fail closed
    return bool(rows)


BUILTIN_FUNCTION_SQL = "SELECT 1 FROM pragma_function_list WHERE name = ? AND builtin = 1"
_SCHEMA_SQL = (
    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL UNION ALL "
    "SELECT sql FROM sqlite_temp_master WHERE sql IS NOT NULL"
)


def schema_collation(raw: Any, name: str) -> bool:
    """True when a table, index or view of the schema names the collation ``name`` (fail closed)."""
    pattern = re.compile(r"\bCOLLATE\s+[\"'`\[]?" + re.escape(name) + r"(?![\w$])", re.IGNORECASE)
    try:
        rows = raw.execute(_SCHEMA_SQL).fetchall()
    except Exception:
        return True
    return any(pattern.search(str(sql)) for (sql,) in rows)


def harmless_callable(func: Any) -> bool:
    """A C function of :mod:`math` (SQLAlchemy registers ``floor`` as ``math.floor`` on every connection): it
    keeps nothing and writes nowhere, so it may stand in for a function of the same name."""
    owner = getattr(func, "__self__", None)
    return type(func).__name__ == "builtin_function_or_method" and getattr(owner, "__name__", None) in ("math", "cmath")


def own_reads_untraced(callback: Any) -> Any:
    """The caller's trace callback, called for every statement but governed_db's own catalog reads and samples.

    sqlite3 traces statements with their parameters bound: the read of a table's rarer values binds the values
    a sample found (``... NOT IN ('100-99-0000')``), so a trace set through the governed connection was handed
    sampled SSNs in clear (decision 0324)."""
    if callback is None:
        return None
    from governed_db.masking.schema import reading_own

    def traced(statement: str) -> None:
        if not reading_own():
            callback(statement)

    return traced


def caller_code(gov: Any, name: str, registered: bool) -> None:
    """Remember (or forget, when ``registered`` is false: removed) a function of the caller's code SQLite calls
    under ``name``: a statement calling it over a table a masked index may order is refused (decision 0348)."""
    from governed_db.masking.engine import state_for

    names = state_for(gov).caller_functions
    if registered:
        names.add(str(name).lower())
    else:
        names.discard(str(name).lower())


#: what a withheld converter error says instead
CONVERTER_WITHHELD = (
    "a converter or row factory failed while rows with masked columns were fetched; its message is withheld, since "
    "it may quote a masked value (decision 0388). Convert the fetched (masked) rows in Python instead"
)


def converter_failed(exc: BaseException) -> None:
    """``exc``, raised by Python code while a result with masked columns was fetched, with its message withheld (type
    kept). sqlite3 hands a converter the raw bytes of each column whose declared type names it (``detect_types=
    PARSE_DECLTYPES``), before masking: Python's own ``date`` converter fails on ``12/04/1985`` with ``invalid
    literal for int() with base 10: b'12/04/1985'``, a date of birth in clear (decision 0388)."""
    if isinstance(exc, (GovernedDBError, StopIteration)):
        return  # a refusal, or the end of the rows
    exc.args = (CONVERTER_WITHHELD,)
    exc.__cause__ = None
    exc.__suppress_context__ = True
    if hasattr(exc, "__notes__"):
        del exc.__notes__


def fetch_failed(cursor: Any, exc: BaseException) -> None:
    """``exc``, raised stepping to a later row of ``cursor``'s result, scrubbed; withheld when the statement read a
    table an index on a masked column may order (no compile error comes this late: decision 0346)."""
    from governed_db.masking import errors_order

    gov = cursor._self_gov
    ms = gov.masking_state
    if ms is not None:
        errors_order.withhold(ms, exc, read_order=bool(getattr(cursor._self_result, "read_order", False)))
    masking.scrub_error(exc, gov=gov)


def compiled_again(conn: sqlite3.Connection, sql: str, exc: BaseException) -> None:
    """Mark ``exc`` (raised running ``sql`` on ``conn``) as an error of compiling when ``EXPLAIN <sql>``, which
    compiles the statement and runs none of it, raises it again. Compile errors (an unknown column or function, a
    misused aggregate) and a row's error (``json('x')``, an overflow, a constraint) share ``SQLITE_ERROR``; only
    the second may come from whichever row SQLite read first, in the order of an index on a masked column, and is
    withheld (decision 0346). No parameters are bound: compiling does not need them (missing ones fail after
    it, as a ``ProgrammingError``)."""
    from governed_db.masking import errors_order
    from governed_db.masking.schema import own_statement

    if not isinstance(exc, sqlite3.DatabaseError):
        return
    again: BaseException | None = None
    with own_statement():
        cur = conn.cursor()
        try:
            cur.execute("EXPLAIN " + sql)
        except sqlite3.ProgrammingError:
            pass  # compiled: the bindings are missing
        except sqlite3.Error as e:
            again = e
        finally:
            cur.close()
    errors_order.mark_compiling(exc, again)


def hook_refusal(what: str) -> GuardrailViolation:
    """``set_authorizer`` and ``set_progress_handler`` also act on governed_db's own statements: the ones that read
    the catalog and sample a table to classify its columns. An authorizer that answers ``SQLITE_IGNORE`` to reads of
    a column, or a handler that interrupts the sample, leaves a column of SSNs looking empty (or unread), so it
    was neither masked nor kept out of a ``WHERE`` (decision 0265)."""
    return GuardrailViolation(
        f"refused by governed_db: {what} would also act on governed_db's own reads of the catalog and of sampled "
        "rows, so a column could escape classification and masking. Next step: set it on the connection before "
        "governed_db.wrap()."
    )


class SqliteConnection(GovernedConnection):
    # conn.execute/executemany/executescript: GovernedConnection runs them on a new governed cursor
    cursor_proxy = SqliteCursor
    #: a ``row_factory`` of the caller's code set through this proxy: each governed cursor hands it masked rows
    _self_row_factory: Any = None

    @property
    def row_factory(self) -> Any:
        return self._self_row_factory or self.__wrapped__.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        # the raw connection's factory also builds the rows of governed_db's own catalog reads and samples: a
        # caller's function there was handed every sampled value in clear (``row_factory = print``), and what it
        # returned decided how columns were classified. The raw connection keeps only factories masking reads
        # natively; any other is installed, masked, on each governed cursor (decision 0324)
        if factory is None or factory is sqlite3.Row:
            self._self_row_factory = None
            self.__wrapped__.row_factory = factory
        else:
            self._self_row_factory = factory
            if self.__wrapped__.row_factory not in (None, sqlite3.Row):
                self.__wrapped__.row_factory = None

    @property
    def text_factory(self) -> Any:
        factory = self.__wrapped__.text_factory
        return str if factory is _LENIENT else factory

    @text_factory.setter
    def text_factory(self, factory: Any) -> None:
        if factory not in _NATIVE_TEXT:
            raise self._self_gov.refusal(
                GuardrailViolation(
                    f"refused by governed_db: text_factory = {getattr(factory, '__name__', type(factory).__name__)} "
                    "would be called with every text value before masking (and its errors quote them). "
                    "Next step: keep str, bytes or bytearray, and convert the fetched (masked) values instead."
                )
            )
        self.__wrapped__.text_factory = factory

    def setlimit(self, category: int, limit: int, /) -> Any:
        raw = self.__wrapped__
        if category == getattr(sqlite3, "SQLITE_LIMIT_LENGTH", 0) and 0 <= limit < raw.getlimit(category):
            # a lower length limit makes any computed value an oracle: replace(substr(ssn, 1, 1), '5', 'xx')
            # fails (or printf() turns NULL) exactly when the character is a 5
            raise self._self_gov.refusal(
                GuardrailViolation(
                    "refused by governed_db: lowering SQLITE_LIMIT_LENGTH lets a statement's success depend on "
                    "how long a computed value is, which reveals masked values. Next step: set limits on the "
                    "connection before governed_db.wrap()."
                )
            )
        return raw.setlimit(category, limit)

    def set_authorizer(self, *args: Any, **kwargs: Any) -> Any:
        raise self._self_gov.refusal(hook_refusal("set_authorizer()"))

    def set_progress_handler(self, handler: Any, *args: Any, **kwargs: Any) -> Any:
        if handler is not None:
            raise self._self_gov.refusal(hook_refusal("set_progress_handler() with a handler"))
        return self.__wrapped__.set_progress_handler(handler, *args, **kwargs)

    def set_trace_callback(self, trace_callback: Any) -> Any:
        return self.__wrapped__.set_trace_callback(own_reads_untraced(trace_callback))

    def create_function(self, name: str, *args: Any, **kwargs: Any) -> Any:
        func = args[1] if len(args) > 1 else kwargs.get("func")
        if not harmless_callable(func):
            self._self_own_name(name, "function")
        out = self.__wrapped__.create_function(name, *args, **kwargs)
        caller_code(self._self_gov, name, func is not None and not harmless_callable(func))
        return out

    def create_aggregate(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self._self_own_name(name, "aggregate")
        out = self.__wrapped__.create_aggregate(name, *args, **kwargs)
        caller_code(self._self_gov, name, (args[1] if len(args) > 1 else kwargs.get("aggregate_class")) is not None)
        return out

    def create_window_function(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self._self_own_name(name, "window function")
        out = self.__wrapped__.create_window_function(name, *args, **kwargs)
        caller_code(self._self_gov, name, (args[1] if len(args) > 1 else kwargs.get("aggregate_class")) is not None)
        return out

    def create_collation(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if str(name).upper() in _BUILTIN_COLLATIONS:
            raise self._self_gov.refusal(shadowing(name, "collation"))
        func = args[0] if args else kwargs.get("callable")
        if func is not None and schema_collation(self.__wrapped__, str(name)):
            # a column or index declared ``COLLATE name`` compares stored values with it (max(), an index
            # insert): a function registered now would be called with them (decision 0236)
            raise self._self_gov.refusal(
                GuardrailViolation(
                    f"refused by governed_db: the schema declares columns or indexes with COLLATE {name}, so a "
                    "collation registered under that name would be called with their stored values before "
                    "masking. Next step: register the application's collation on the connection before "
                    "governed_db.wrap(), or use a collation name of your own."
                )
            )
        out = self.__wrapped__.create_collation(name, *args, **kwargs)
        # no statement may declare it from now on: SQLite would call it with the values compared under the
        # declared collation, which masking sees nowhere in the statements that compare them (decision 0289)
        from governed_db.masking.engine import state_for

        names = state_for(self._self_gov).caller_collations
        if func is None:
            names.discard(str(name).upper())
        else:
            names.add(str(name).upper())
        return out

    def _self_own_name(self, name: str, what: str) -> None:
        if shadows_known_function(self.__wrapped__, str(name)):
            raise self._self_gov.refusal(shadowing(name, what))

    def backup(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        # A backup copies every row unmasked: judged as writing the database to a file.
        raw_target = innermost(target)
        return whole_copy(
            self._self_gov, "connection.backup", lambda _s: self.__wrapped__.backup(raw_target, *args, **kwargs)
        )

    def iterdump(self, *args: Any, **kwargs: Any) -> Any:
        # iterdump() emits every row as SQL text, which masking cannot reach: judged as a file export.
        lines: list[str] = whole_copy(
            self._self_gov, "connection.iterdump", lambda _s: list(self.__wrapped__.iterdump(*args, **kwargs))
        )
        return iter(lines)

    def load_extension(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        return run(
            self._self_gov,
            "connection.load_extension",
            "SELECT load_extension(?)",
            None,
            lambda _s: self.__wrapped__.load_extension(path, *args, **kwargs),
        )

    def blobopen(self, table: str, column: str, row: int, /, **kwargs: Any) -> Any:
        # incremental blob I/O reads (or writes) a cell directly: judged as reading/updating that
        # column, and refused when that column is masked (its bytes never pass through a cursor)
        gov, t, c = self._self_gov, quote_ident(table), quote_ident(column)
        read = f"SELECT {c} FROM {t} WHERE rowid = ?"
        sql = read if kwargs.get("readonly", False) else f"UPDATE {t} SET {c} = ? WHERE rowid = ?"

        def invoke(_s: Any) -> Any:
            probe = f"SELECT {c} FROM {t} LIMIT 0"
            refuse_masked_export(
                gov, probe, describe_with(self.__wrapped__), "blobopen() reads the cell directly"
            )
            return self.__wrapped__.blobopen(table, column, row, **kwargs)

        try:
            return run(gov, "connection.blobopen", sql, (row,), invoke)
        except GuardrailViolation as e:
            if "write-effect" in e.rules:
                # the stand-in UPDATE's rowcount is unknown: say what blobopen() does, not what the stand-in lacks
                reword(
                    e,
                    f"blobopen() opens {table}.{column} for writing: blob I/O changes the stored bytes directly, "
                    "around the statements governed_db judges, measures and masks, so the change cannot be measured "
                    f"(it is judged as {sql})",
                    f"open it with readonly=True to read the cell, or write it with execute('{sql}', (value, "
                    "rowid)), whose effect is measured",
                )
            raise

    def serialize(self, *args: Any, **kwargs: Any) -> Any:
        # the whole database as bytes, unmasked: judged as writing the database to a file
        return whole_copy(self._self_gov, "connection.serialize", lambda _s: self.__wrapped__.serialize(*args, **kwargs))

    def deserialize(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        # replaces every table of the schema at once: judged as dropping it
        schema = kwargs.get("name", args[0] if args else "main")
        return run(
            self._self_gov,
            "connection.deserialize",
            f"DROP SCHEMA {quote_ident(schema)}",
            None,
            lambda _s: self.__wrapped__.deserialize(data, *args, **kwargs),
        )


#: what each whole-database copy of the connection's API does, for its refusal (decision 0433)
_COPIES = {
    "connection.iterdump": "iterdump() would write out every stored value of the database as SQL text",
    "connection.serialize": "serialize() would return the whole database file as bytes",
    "connection.backup": "backup() would copy the whole database into another connection",
}
_COPY_REMEDY = (
    "select the rows you need with execute() and fetch them (masked columns come back masked), or have a person "
    "with an unmask grant copy the database"
)


def reword(e: GuardrailViolation, what: str, remedy: str) -> None:
    """Give the refusal ``e`` of an API call judged as a stand-in statement the call's own reason and remedy, in
    place (its decision and rules kept): the stand-in's text (``VACUUM INTO``, an UPDATE's rowcount) is not what
    the caller did (decision 0433). An approval request keeps its text (it names the request)."""
    from governed_db.errors import ApprovalRequired

    if isinstance(e, ApprovalRequired):
        return
    rules = ", ".join(e.rules)
    e.args = (f"refused by governed_db: {rules + ': ' if rules else ''}{what}. Next step: {remedy}.",)


def whole_copy(gov: Any, entry: str, invoke: Any) -> Any:
    """Run ``invoke`` (``entry``: a copy of the whole database) judged as ``VACUUM INTO`` (a copy to a file); a
    refusal says what the call would have copied."""
    with copy_refusal(entry):
        return run(gov, entry, copy_stand_in(entry), None, invoke)


def copy_stand_in(entry: str) -> str:
    """The statement a whole-database copy of the connection's API (``entry``) is judged as."""
    return f"VACUUM INTO '{'backup-target' if entry == 'connection.backup' else entry.rpartition('.')[2]}'"


@contextmanager
def copy_refusal(entry: str) -> Iterator[None]:
    """A refusal of ``entry`` (a whole-database copy judged as ``VACUUM INTO``) raised inside, reworded to say what
    the call would have copied where its text speaks of the stand-in (sqlite3 and aiosqlite alike)."""
    try:
        yield
    except GuardrailViolation as e:
        if "VACUUM INTO" in str(e):
            reword(e, f"{_COPIES[entry]}, masked columns included, past masking (it is judged as VACUUM INTO, a "
                      "copy of the database to a file)", _COPY_REMEDY)  # fmt: skip
        raise


class SqliteDriver(Driver):
    name = "sqlite3"
    dialect = "sqlite"
    db_system = "sqlite"

    returning_in_progress = True

    def __init__(self, module: Any = None) -> None:
        super().__init__(module or sqlite3)

    def length_limit(self, gov: Any) -> int | None:
        conn = innermost(gov.raw)
        getlimit = getattr(conn, "getlimit", None)
        if getlimit is None:
            return DEFAULT_LIMIT  # before Python 3.11 no limit can be lowered either
        try:
            return int(getlimit(getattr(sqlite3, "SQLITE_LIMIT_LENGTH", 0)))
        except sqlite3.Error:
            return None

    def longest_value(self, gov: Any, table: tuple[str, ...], column: str) -> int | None:
        # an UPDATE copying the column is bounded by its longest value (decision 0413): of a stored column of a
        # table only (a view's or a generated column's values are computed, from masked ones as well), named by
        # one table only (a temporary table of the same name would be the one read)
        conn = innermost(gov.raw)
        name, schema = table[-1], (table[-2] if len(table) > 1 else None)
        try:
            found = conn.execute(
                "SELECT schema, type FROM pragma_table_list WHERE name = ? COLLATE NOCASE"
                + (" AND schema = ? COLLATE NOCASE" if schema is not None else ""),
                (name,) if schema is None else (name, schema),
            ).fetchall()
            if len(found) != 1 or found[0][1] != "table":
                return None
            where = found[0][0]
            hidden = conn.execute(
                "SELECT hidden FROM pragma_table_xinfo(?, ?) WHERE name = ? COLLATE NOCASE", (name, where, column)
            ).fetchall()
            if hidden != [(0,)]:
                return None
            # a text's bytes (its length counts characters up to a NUL); a blob's, from its header (not loaded)
            c = quote_ident(column)
            row = conn.execute(
                f"SELECT max(CASE WHEN typeof({c}) = 'blob' THEN length({c}) ELSE length(CAST({c} AS BLOB)) END) "
                f"FROM {quote_ident(where)}.{quote_ident(name)}"
            ).fetchone()
        except sqlite3.Error:
            return None
        return int(row[0] or 0) if row is not None and isinstance(row[0], (int, type(None))) else None

    @property
    def connection_proxy(self) -> type:
        return SqliteConnection

    def paramstyle_for(self, raw: Any) -> str:
        return "qmark"

    def transaction_state(self, gov: Any, raw: Any) -> str:
        if raw.in_transaction:  # also a BEGIN of the application's in autocommit mode (isolation_level None)
            return "open"
        if raw.isolation_level is None or getattr(raw, "autocommit", -1) is True:
            return "autocommit"
        # legacy transaction control opens a transaction before a data change, so the guard does too
        return "implicit"

    def open_guard(self, state: str) -> tuple[str, ...]:
        if state == "implicit":
            return ("BEGIN", self.savepoint_sql)
        return super().open_guard(state)

    read_only_session = True

    def replace_keys_sql(self, gov: Any, tables: tuple[str, ...]) -> str | None:
        # changes() counts the row a REPLACE inserts, not the rows it deletes: one unique key deletes at most
        # the row it replaces; two or more (a rowid alias and a UNIQUE column) can delete several per row
        parts = []
        for name in tables:
            schema, _, table = name.rpartition(".")
            args = f"{self.quote_literal(table)}, {self.quote_literal(schema or 'main')}"
            parts.append(
                f"SELECT {self.quote_literal(name)} AS t, "
                f"(SELECT count(*) FROM pragma_index_list({args}) WHERE \"unique\") + "
                f"(SELECT count(*) = 1 AND max(pk = 1 AND upper(type) = 'INTEGER') FROM pragma_table_info({args}) "
                "WHERE pk > 0) AS k"
            )
        return " UNION ALL ".join(parts)

    def session_read_only_sql(self, gov: Any, raw: Any, read_only: bool) -> tuple[str, ...]:
        return ("PRAGMA query_only = ON",) if read_only else ("PRAGMA query_only = OFF",)

    def is_read_only_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "readonly database" in str(exc)

    def note_compiling(self, raw: Any, sql: Any, exc: BaseException) -> None:
        if isinstance(raw, sqlite3.Connection):
            compiled_again(raw, sql, exc)

    def is_closed(self, raw: Any) -> bool:
        try:
            raw.total_changes  # noqa: B018 - raises ProgrammingError on a closed connection
        except sqlite3.ProgrammingError:
            return True
        return False
