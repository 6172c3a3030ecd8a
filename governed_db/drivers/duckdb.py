"""DuckDB: the connection is its own cursor, relations are lazy queries, the module has a default connection.

* ``conn.execute()`` returns the connection; rows are then read from it
  (``fetch*``, ``df``, ``fetchnumpy``, ``to_arrow_table``...), so the
  governed connection carries a result state of its own.
* ``sql/query/from_query`` are judged when called (duckdb binds at once, and
  runs any statement that is not a read); a read returns a lazy relation
  judged again each time it produces output
  (:mod:`governed_db.drivers._duckdb_relation`). ``read_csv``/``read_json``/
  ``read_parquet``/``from_*`` open files when called, so they are judged when
  called (as ``SELECT * FROM read_csv('path')``) and again when read.
* ``install_extension``/``load_extension`` are judged as ``INSTALL x``/``LOAD x``.
* ``govern_module(duckdb)``: module functions that use the default connection
  are routed to a governed default connection; the DataFrame helpers that run
  outside any governed connection are refused with a pointer to the way in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from governed_db.drivers import Driver, quote_ident, shadowing
from governed_db.drivers._copy import refuse_unmaskable_copy
from governed_db.drivers._derived import refuse_derived_from_masked
from governed_db.drivers._duckdb_relation import GovernedRelation, _literal, release_stream, wrap_result
from governed_db.errors import ConfigurationError, GuardrailViolation
from governed_db.guards import Unread
from governed_db.masking.flow import known_function_name
from governed_db.pipeline import run
from governed_db.proxies import GovernedConnection, RowsOut, _params, check_placeholders
from governed_db.results import ResultState

log = logging.getLogger("governed_db")

#: connection exits handing out frames
FRAME_OUTPUTS = (
    "df",
    "fetch_df",
    "fetchdf",
    "fetchnumpy",
    "to_arrow_table",
    "fetch_arrow_table",
    "arrow",
    "pl",
    "torch",
    "tf",
    "fetch_df_chunk",
)
READER_OUTPUTS = ("to_arrow_reader", "fetch_record_batch")
FILE_READERS = ("read_csv", "read_json", "read_parquet", "from_csv_auto", "from_parquet")
LAZY_RELATIONS = ("table", "view", "values", "from_df", "from_arrow")
#: connection members that neither take SQL nor hand out rows: reached through the proxy as they are
#: (a relation or connection they return is still governed by ``__getattr__``)
PASS_THROUGH = frozenset({
    "abort", "array_type", "begin", "close", "commit", "complete",
    "decimal_type", "description", "disable_profiling", "dtype", "enum_type",
    "extract_statements", "filesystem_is_registered", "get_profiling_information", "get_table_names",
    "interrupt", "list_filesystems", "list_type", "map_type", "query_progress", "register", "register_filesystem",
    "remove_function", "rollback", "row_type", "rowcount", "sqltype", "string_type", "struct_type", "type",
    "union_type", "unregister", "unregister_filesystem",
})  # fmt: skip
#: DataFrame helpers of the duckdb module that run outside any governed connection
MODULE_REFUSED = frozenset(
    {
        "aggregate",
        "alias",
        "arrow",
        "distinct",
        "filter",
        "limit",
        "order",
        "project",
        "query_df",
        "write_csv",
    }
)


class DuckDBConnection(RowsOut, GovernedConnection):
    __iter__ = None  # type: ignore[assignment]  # like DuckDBPyConnection (wrapt's proxy would forward iter())

    def __init__(self, raw: Any, gov: Any) -> None:
        super().__init__(raw, gov)
        self._self_result = ResultState(raw, gov)

    def _self_wrap(self, value: Any) -> Any:
        return wrap_result(value, self._self_gov, self)

    def __getattr__(self, name: str) -> Any:
        # methods not routed below (begin, commit, append...) may return the raw connection
        value = getattr(self.__wrapped__, name)
        if callable(value) and not name.startswith("__") and not isinstance(value, type):
            return lambda *a, **k: self._self_wrap(value(*a, **k))
        return value

    @property
    def rowcount(self) -> Any:
        # a bounded write's result is given back by a SELECT (restore_result_sql), whose rowcount is -1
        changed = self._self_result.changed
        return changed if changed is not None else self.__wrapped__.rowcount

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return DuckDBConnection(self.__wrapped__.cursor(*args, **kwargs), self._self_gov)

    def checkpoint(self) -> Any:
        # writes the WAL into the database file and blocks until done: judged as the CHECKPOINT it is
        raw = self.__wrapped__
        return self._self_wrap(run(self._self_gov, "connection.checkpoint", "CHECKPOINT", None,
                                   lambda _s: raw.checkpoint()))

    def enable_profiling(self) -> Any:
        # the profile of each later statement reports sizes measured before masking (peak_streaming_buffer_size
        # grows with the length of the masked values a statement returns): judged as the PRAGMA it is
        raw = self.__wrapped__
        return self._self_wrap(run(self._self_gov, "connection.enable_profiling", "PRAGMA enable_profiling", None,
                                   lambda _s: raw.enable_profiling()))

    def duplicate(self) -> Any:
        return DuckDBConnection(self.__wrapped__.duplicate(), self._self_gov)

    def create_function(self, name: str, *args: Any, **kwargs: Any) -> Any:
        # DuckDB lets a Python function take the name of some of its own (concat, hash...) for the argument types
        # it declares: concat(ssn), which masking lets through (masked whole), then calls it with the raw values,
        # and whether it raises is the caller's oracle (decision 0278)
        if shadows_duckdb_function(self.__wrapped__, str(name)):
            raise self._self_gov.refusal(shadowing(name, "function", "DuckDB"))
        return self.__wrapped__.create_function(name, *args, **kwargs)

    # -- in ------------------------------------------------------------------------------------
    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        return self._self_statement("connection.execute", "execute", query, args, kwargs)

    def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        return self._self_statement("connection.executemany", "executemany", query, args, kwargs)

    def _self_statement(self, entry: str, method: str, query: Any, args: Any, kwargs: Any) -> Any:
        gov, raw = self._self_gov, self.__wrapped__
        params = _params(args, kwargs)
        if method == "execute":
            check_placeholders(gov, query, params)
        text = gov.driver.statement_text(query, raw)
        invoke = _checked(gov, raw, text, lambda sql: getattr(raw, method)(sql, *args, **kwargs))
        return self._self_wrap(run(gov, entry, query, params, invoke, self._self_result))

    def sql(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        return self._self_relation_sql("sql", query, args, kwargs)

    def query(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        return self._self_relation_sql("query", query, args, kwargs)

    def from_query(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        return self._self_relation_sql("from_query", query, args, kwargs)

    def _self_relation_sql(self, method: str, query: Any, args: Any, kwargs: Any) -> Any:
        gov, raw = self._self_gov, self.__wrapped__
        text = gov.driver.statement_text(query, raw)
        params = kwargs.get("params")
        check_placeholders(gov, text, params)
        # Judged now, because duckdb binds at once (a read_csv() in the query already opens the file)
        # and runs any statement that is not a read; a read is judged again each time it is read.
        invoke = _checked(gov, raw, text, lambda sql: getattr(raw, method)(sql, *args, **kwargs))
        return self._self_wrap(run(gov, f"connection.{method}", query, params, invoke))

    def install_extension(self, extension: str, *args: Any, **kwargs: Any) -> Any:
        return run(
            self._self_gov,
            "connection.install_extension",
            f"INSTALL {quote_ident(extension)}",
            None,
            lambda _s: self.__wrapped__.install_extension(extension, *args, **kwargs),
        )

    def load_extension(self, extension: str, *args: Any, **kwargs: Any) -> Any:
        return run(
            self._self_gov,
            "connection.load_extension",
            f"LOAD {quote_ident(extension)}",
            None,
            lambda _s: self.__wrapped__.load_extension(extension, *args, **kwargs),
        )

    def append(self, table_name: str, df: Any, *args: Any, **kwargs: Any) -> Any:
        out = run(
            self._self_gov,
            "connection.append",
            f"INSERT INTO {quote_ident(table_name)} SELECT * FROM df",
            None,
            lambda _s: self.__wrapped__.append(table_name, df, *args, **kwargs),
        )
        return self._self_wrap(out)

    def appender(self, table: str, *args: Any, **kwargs: Any) -> Any:
        # judged as the statement its action amounts to: a delete or update keyed on a masked column picks rows
        # by the values it is handed, as ``DELETE ... WHERE ssn = ?`` does (decision 0309)
        text = appender_statement(table, kwargs.get("columns"), kwargs.get("action", "insert"), kwargs.get("key"))
        if text is None:
            raise self._self_gov.refusal(
                GuardrailViolation(
                    f"refused by governed_db: appender(action={kwargs.get('action')!r}) is not an action governed_db "
                    "knows how to judge. Next step: use action 'insert', 'upsert', 'update' or 'delete', or run "
                    "the equivalent SQL statement."
                )
            )
        return run(
            self._self_gov,
            "connection.appender",
            text,
            None,
            lambda _s: self.__wrapped__.appender(table, *args, **kwargs),
        )

    def query_appender(self, dml: Any, *args: Any, **kwargs: Any) -> Any:
        return run(
            self._self_gov,
            "connection.query_appender",
            dml,
            None,
            lambda s: self.__wrapped__.query_appender(s, *args, **kwargs),
        )

    def table_function(self, name: str, parameters: Any = None, *args: Any, **kwargs: Any) -> Any:
        values = (
            parameters
            if isinstance(parameters, (list, tuple))
            else ([] if parameters is None else [parameters])
        )
        text = f"SELECT * FROM {name}({', '.join(_sql_value(v) for v in values)})"
        out = run(
            self._self_gov,
            "connection.table_function",
            text,
            None,
            lambda _s: self.__wrapped__.table_function(name, parameters, *args, **kwargs),
        )
        return self._self_wrap(out)

    def __enter__(self) -> DuckDBConnection:
        self.__wrapped__.__enter__()
        return self


def _file_reader(name: str) -> Callable[..., Any]:
    def reader(self: DuckDBConnection, path: Any, *args: Any, **kwargs: Any) -> Any:
        fn = "read_parquet" if "parquet" in name else ("read_json" if "json" in name else "read_csv")
        text = f"SELECT * FROM {fn}({_sql_value(path)})"
        out = run(
            self._self_gov,
            f"connection.{name}",
            text,
            None,
            lambda _s: getattr(self.__wrapped__, name)(path, *args, **kwargs),
        )
        return self._self_wrap(out)

    reader.__name__ = name
    return reader


def _lazy_relation(name: str) -> Callable[..., Any]:
    def make(self: DuckDBConnection, *args: Any, **kwargs: Any) -> Any:
        return self._self_wrap(getattr(self.__wrapped__, name)(*args, **kwargs))

    make.__name__ = name
    return make


def _frame_output(name: str) -> Callable[..., Any]:
    def output(self: DuckDBConnection, *args: Any, **kwargs: Any) -> Any:
        out = getattr(self.__wrapped__, name)(*args, **kwargs)
        st = self._self_result
        return st.frame(out) if st.active else out

    output.__name__ = name
    return output


def _reader_output(name: str) -> Callable[..., Any]:
    def output(self: DuckDBConnection, *args: Any, **kwargs: Any) -> Any:
        release_stream(self._self_gov, self._self_result, name)
        return getattr(self.__wrapped__, name)(*args, **kwargs)

    output.__name__ = name
    return output


def _install(names: tuple[str, ...], factory: Callable[[str], Callable[..., Any]]) -> None:
    import duckdb

    for name in names:
        if hasattr(duckdb.DuckDBPyConnection, name):  # only what this duckdb version has
            setattr(DuckDBConnection, name, factory(name))


#: the relation an appender's buffered rows are judged as: one row of NULLs under the buffered columns' names (a
#: constant: the rows are the caller's own values, unknown when the appender is made)
_APPENDED = "governed_appended_rows"


def appender_statement(table: str, columns: Any, action: Any, key: Any) -> str | None:
    """The statement ``conn.appender(table, columns=, action=, key=)`` runs at each flush, for judging when the
    appender is made (``None``: an action DuckDB may add later, refused). ``insert`` and ``upsert`` add the rows
    (``upsert`` replacing those that collide on a unique key); ``update`` and ``delete`` pick the rows whose
    ``key`` columns equal a buffered row's, which makes the key columns a filter (decision 0309)."""
    act = str(action or "insert").lower()
    t = quote_ident(table)
    cols = [str(c) for c in columns] if isinstance(columns, (list, tuple)) and columns else None
    keys = [str(k) for k in key] if isinstance(key, (list, tuple)) and key else []

    def source(names: list[str]) -> str:
        return f"(VALUES ({', '.join('NULL' for _ in names)})) AS {_APPENDED}({', '.join(map(quote_ident, names))})"

    def rows(names: list[str] | None) -> str:
        return f"SELECT * FROM {_APPENDED}" if names is None else f"SELECT * FROM {source(names)}"

    target = t if cols is None else f"{t} ({', '.join(map(quote_ident, cols))})"
    if act == "insert":
        return f"INSERT INTO {target} {rows(cols)}"
    if act == "upsert":
        return f"INSERT OR REPLACE INTO {target} {rows(cols)}"
    if act not in ("update", "delete"):
        return None
    # without a key DuckDB refuses the appender; judged as the widest write it could be
    match = " AND ".join(f"{t}.{quote_ident(k)} = {_APPENDED}.{quote_ident(k)}" for k in keys) or "true"
    if act == "delete":
        return f"DELETE FROM {t} USING {source(keys or ['governed_row'])} WHERE {match}"
    buffered = [*(cols or []), *(k for k in keys if k not in (cols or []))] or ["governed_row"]
    sets = [c for c in buffered if c not in keys] or buffered
    assigned = ", ".join(f"{quote_ident(c)} = {_APPENDED}.{quote_ident(c)}" for c in sets)
    return f"UPDATE {t} SET {assigned} FROM {source(buffered)} WHERE {match}"


def _sql_value(value: Any) -> str:
    if isinstance(value, str):
        return _literal(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_sql_value(v) for v in value) + "]"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return _literal(f"<{type(value).__name__}>")


#: DuckDB's own functions, macros and table functions (any schema) of a name
BUILTIN_FUNCTION_SQL = "SELECT 1 FROM duckdb_functions() WHERE lower(function_name) = lower(?) LIMIT 1"


def shadows_duckdb_function(raw: Any, name: str) -> bool:
    """True when a Python function registered as ``name`` could stand in for one DuckDB defines or masking trusts
    (fail closed when the catalog cannot be read). Read on a cursor of its own, so the caller's pending result
    stays."""
    if known_function_name(name, "duckdb"):
        return True
    try:
        cur = raw.cursor()
        try:
            return bool(cur.execute(BUILTIN_FUNCTION_SQL, [name]).fetchall())
        finally:
            cur.close()
    except Exception:
        return True


def _checked(gov: Any, raw: Any, text: str, call: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``call`` preceded by the checks for rows masking cannot reach (COPY ... TO, PIVOT, SUMMARIZE) in ``text``."""

    def invoke(sql: Any) -> Any:
        describe = _describer(raw)
        refuse_unmaskable_copy(gov, text, describe)
        refuse_derived_from_masked(gov, text, describe)
        return call(sql)

    return invoke


def _describer(raw: Any) -> Callable[[str], Any]:
    # On the connection itself (its cursor() would be another connection, blind to this transaction):
    # the statement about to run replaces any pending result anyway.
    return lambda sql: raw.execute(sql).description


_install(FRAME_OUTPUTS, _frame_output)
_install(READER_OUTPUTS, _reader_output)
_install(FILE_READERS, _file_reader)
_install(LAZY_RELATIONS, _lazy_relation)


class DuckDBDriver(Driver):
    name = "duckdb"
    dialect = "duckdb"
    db_system = "duckdb"

    def __init__(self, module: Any = None) -> None:
        if module is None:
            import duckdb

            module = duckdb
        super().__init__(module)

    @property
    def connection_proxy(self) -> type:
        return DuckDBConnection

    def paramstyle_for(self, raw: Any) -> str:
        return "qmark"

    # -- effect guard (docs/guardrails.md) ------------------------------------------------------
    #: DuckDB has no savepoints: a bounded write runs in a transaction of its own, never inside the app's
    savepoints = False
    results_on_connection = True

    def transaction_state(self, gov: Any, raw: Any) -> str:
        # no flag says whether a transaction is open; in autocommit every statement has its own id
        first = raw.execute("SELECT txid_current()").fetchone()[0]
        second = raw.execute("SELECT txid_current()").fetchone()[0]
        return "open" if first == second else "autocommit"

    def guard_connection(self, st: Any) -> Any:
        # a DuckDB cursor is a connection of its own, in a transaction of its own: the statement's one
        return st.result.raw if st.result is not None else st.gov.raw

    def guard_execute(self, raw: Any, sql: str) -> list[Any]:
        raw.execute(sql)
        if isinstance(sql, Unread):  # the application's result, given back: left for it to read
            return []
        return list(raw.fetchall()) if raw.description else []

    def restore_result_sql(self, changed: int) -> str | None:
        return Unread(f'SELECT CAST({int(changed)} AS BIGINT) AS "Count"')

    def on_wrap(self, proxy: Any, gov: Any) -> None:
        # The library must never fetch anything: a query naming an extension DuckDB knows (read_xlsx,
        # FROM 'https://...') would otherwise download it. Autoload of installed ones is left as it is.
        # The setting belongs to the database instance, so the raw connection and its cursors see it too.
        try:
            gov.raw.execute("SET autoinstall_known_extensions = false")
        except Exception as e:  # a connection that cannot change it; nothing else to do here
            log.warning("governed_db could not turn off DuckDB extension auto-install: %r", e)

    def is_closed(self, raw: Any) -> bool:
        try:
            raw.cursor().close()  # no 'closed' flag; a cursor leaves any pending result alone
        except Exception:  # ConnectionException on a closed connection
            return True
        return False

    def statement_text(self, sql: Any, raw: Any) -> str:
        query = getattr(sql, "query", None)  # duckdb.Statement from extract_statements()
        if isinstance(query, str) and type(sql).__name__ == "Statement":
            return query
        return super().statement_text(sql, raw)

    def module_attribute(self, facade: Any, name: str, value: Any) -> Any:
        import duckdb

        if isinstance(value, type) or not callable(value) or name == "set_default_connection":
            return value
        if name == "default_connection":
            return lambda: _governed_default(facade)
        if hasattr(duckdb.DuckDBPyConnection, name):
            return getattr(_governed_default(facade), name)
        if name in MODULE_REFUSED:

            def refused(*_a: Any, **_k: Any) -> Any:
                raise ConfigurationError(
                    f"duckdb.{name}() runs on a DataFrame outside any governed connection; use "
                    f"conn = <governed duckdb>.connect() (or .default_connection()) and conn.from_df(df).{name}(...)"
                )

            return refused
        return value  # expression builders, tokenize, version...


def _governed_default(facade: Any) -> Any:
    from governed_db.api import wrap

    raw = facade.__dict__["_governed_module"].default_connection()
    cached = facade.__dict__.get("_governed_duckdb_default")
    if cached is None or cached[0] is not raw:
        cached = (raw, wrap(raw, **facade.__dict__["_governed_options"]))
        facade.__dict__["_governed_duckdb_default"] = cached
    return cached[1]


__all__ = ["DuckDBConnection", "DuckDBDriver", "GovernedRelation"]
