"""Governed DuckDB relations: lazy queries judged when they produce output.

``conn.sql("SELECT ...")``, ``conn.table("t")`` and friends return a
``DuckDBPyRelation``: a query that runs each time it is read, and that can be
composed (``.filter()``, ``.project()``, ``.join()``...). The proxy judges the
SQL the relation amounts to (``rel.sql_query()``) every time it is read, plans
masking from ``rel.description`` and hands the output through a fresh
:class:`~governed_db.results.ResultState`. Composition returns governed
relations. Every public member of ``DuckDBPyRelation`` is classified below;
an unclassified method may only return a relation (governed) or nothing, so a
new DuckDB release cannot open a silent way around (see
docs/decisions/0062-duckdb-relations.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import wrapt

from governed_db.drivers import quote_ident
from governed_db.drivers._copy import refuse_masked_export, refuse_unmaskable_copy
from governed_db.drivers._derived import refuse_derived_from_masked
from governed_db.errors import GovernanceFault, GuardrailViolation
from governed_db.masking.exports import export_masked_columns
from governed_db.pipeline import Governor, run
from governed_db.results import ResultState
from governed_db.sql.analysis import analyze

#: exits handing out rows (lists, iterators)
ROW_OUTPUTS = frozenset({"fetchall", "fetchone", "fetchmany", "to_dicts", "iter_rows"})
#: exits handing out a frame (pandas, polars, Arrow tables, numpy/tensor dicts)
FRAME_OUTPUTS = frozenset(
    {
        "df",
        "fetchdf",
        "to_df",
        "pl",
        "fetch_arrow_table",
        "to_arrow_table",
        "fetchnumpy",
        "tf",
        "torch",
    }
)
#: exits handing out a stream the proxy cannot mask batch by batch
READER_OUTPUTS = frozenset({"arrow", "to_arrow_reader", "fetch_arrow_reader", "fetch_record_batch"})
#: exits that print or render rows
DISPLAY_OUTPUTS = frozenset({"show", "preview"})
#: exits the database engine writes to a file itself
FILE_OUTPUTS = frozenset({"write_csv", "to_csv", "write_parquet", "to_parquet"})
#: exits that write the rows into a table or define a view
TABLE_OUTPUTS = frozenset({"create", "to_table", "insert_into", "create_view", "to_view", "insert", "update"})
#: composition: each returns another (governed) relation, read through the gates above
COMPOSITION = frozenset({
    "aggregate", "any_value", "apply", "arg_max", "arg_min", "avg", "bit_and", "bit_or", "bit_xor",
    "bitstring_agg", "bool_and", "bool_or", "count", "cross", "cume_dist", "dense_rank", "describe", "distinct",
    "drop", "except_", "favg", "filter", "first", "first_value", "fsum", "geomean", "group_by", "head",
    "histogram", "intersect", "join", "lag", "last", "last_value", "lead", "limit", "list", "max",
    "mean", "median", "min", "mode", "n_tile", "nth_value", "offset", "order", "percent_rank", "pivot", "product",
    "project", "quantile", "quantile_cont", "quantile_disc", "rank", "rank_dense", "rename", "row_number",
    "sample", "select", "select_dtypes", "select_types", "set_alias", "sort", "std", "stddev", "stddev_pop",
    "stddev_samp", "string_agg", "sum", "union", "union_by_name", "unique", "unnest", "unpivot", "value_counts",
    "var", "var_pop", "var_samp", "variance", "with_columns",
})  # fmt: skip
#: hands every row to a Python function: refused when the relation has masked columns
CALLBACKS = frozenset({"map"})
#: takes SQL of its own: judged when called
STATEMENTS = frozenset({"query"})
#: members that describe the relation and hand out no row
METADATA = frozenset(
    {
        "alias",
        "columns",
        "description",
        "dtypes",
        "sql_query",
        "type",
        "types",
        "close",
    }
)
#: members that run (or plan) the relation to measure it: ``shape`` counts its rows, ``explain(type="analyze")``
#: reports the rows each operator produced (``explain()`` the rows the statistics predict): judged like ``len()``
MEASURES = frozenset({"shape", "explain"})
#: members that run the relation at once and keep its rows in a new relation (whose SQL then names only a
#: DuckDB-made source): judged as a read of it when called
EAGER = frozenset({"materialize"})


class GovernedRelation(wrapt.ObjectProxy[Any]):
    def __init__(self, raw: Any, gov: Governor, connection: Any) -> None:
        super().__init__(raw)
        self._self_gov = gov
        self._self_connection = connection

    # -- the gate every output passes -------------------------------------------------------
    def _self_emit(
        self, entry: str, produce: Callable[[], Any], sql: str | None = None
    ) -> tuple[Any, ResultState]:
        raw, gov = self.__wrapped__, self._self_gov
        st = ResultState(raw, gov)
        text = sql or raw.sql_query()

        def invoke(_s: Any) -> Any:
            # rel.pivot()/unpivot() compose PIVOT/UNPIVOT, whose lineage masking cannot follow (decision 0066)
            refuse_derived_from_masked(gov, text, _relation_describer(raw))
            return produce()

        out = run(gov, f"relation.{entry}", text, None, invoke, st)
        return out, st

    def _self_wrap(self, value: Any) -> Any:
        return wrap_result(value, self._self_gov, self._self_connection)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.__wrapped__, name)
        if name in METADATA or name.startswith("__"):
            return value
        if callable(value) and not isinstance(value, type):
            return _composer(self, name, value)
        return self._self_wrap(value)  # rel.col_name: a projection

    def map(self, map_function: Any, *args: Any, **kwargs: Any) -> Any:
        raw = self.__wrapped__
        # judged as a read of the relation: the function sees every row before any masking
        _, st = self._self_emit("map", lambda: None)
        if st.poisoned is not None:
            raise st.poisoned
        masked = st.masked_columns if st.plan is not None else ()
        if masked:
            # columns only scanned because their table was nearly empty are checked at the source instead
            gov = self._self_gov
            masked = export_masked_columns(
                raw.description, analyze(raw.sql_query(), gov.dialect), identity=st.identity or gov.resolve_identity(), gov=gov
            )
        if masked:
            raise self._self_gov.refusal(
                GuardrailViolation(
                    "refused by governed_db: map() hands unmasked rows to a Python function, and this relation has "
                    f"masked columns ({', '.join(masked)}). Next step: project those columns away first, "
                    "or fetch the rows (masked) and transform them in Python."
                )
            )
        st.finish()
        return self._self_wrap(raw.map(map_function, *args, **kwargs))

    def query(self, virtual_table_name: str, sql_query: Any) -> Any:
        # runs at once when sql_query is not a read (like conn.sql): judged now, and again when read
        raw, gov = self.__wrapped__, self._self_gov
        text = gov.driver.statement_text(sql_query, None)

        def invoke(sql: Any) -> Any:
            refuse_derived_from_masked(
                gov, text, lambda probe: raw.query(virtual_table_name, probe).description
            )
            return raw.query(virtual_table_name, sql)

        out = run(gov, "relation.query", sql_query, None, invoke)
        return self._self_wrap(out)

    def __len__(self) -> int:
        raw = self.__wrapped__
        out, _ = self._self_emit(
            "len", lambda: len(raw), f"SELECT count(*) FROM ({raw.sql_query()}) AS governed_len"
        )
        return int(out)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), len(self.__wrapped__.columns)

    def explain(self, *args: Any, **kwargs: Any) -> Any:
        # a plan counts the rows each step yields (or predicts them from the columns' statistics): a filter on
        # a masked column shows "1 row" or "0 rows" there; judged as the count __len__ is
        raw = self.__wrapped__
        out, _ = self._self_emit(
            "explain",
            lambda: raw.explain(*args, **kwargs),
            f"SELECT count(*) FROM ({raw.sql_query()}) AS governed_explain",
        )
        return out

    def materialize(self, *args: Any, **kwargs: Any) -> Any:
        # runs the relation now and keeps its rows in a table DuckDB makes (``__duckdb_source_...``), which later
        # relations read as a table of their own: ``filter("ssn LIKE '5%'").materialize().count('*')`` counted
        # the guess, and ``reverse(ssn)`` or a renamed ``full_name`` kept there came back in clear (a sample of
        # that table finds no SSN in a reversed one). Judged as a read of the relation whose rows leave masking's
        # reach, as an export to a file is: a filter on a masked column is refused, and so is keeping a masked
        # column (decision 0290)
        raw, gov = self.__wrapped__, self._self_gov
        sql = raw.sql_query()

        def produce() -> Any:
            refuse_masked_export(gov, sql, lambda _probe: raw.description,
                                 "materialize() keeps the rows in a table masking reads as a new one")
            refuse_derived_from_masked(gov, sql, _relation_describer(raw))
            return raw.materialize(*args, **kwargs)

        return self._self_wrap(run(gov, "relation.materialize", sql, None, lambda _s: produce()))

    def __getitem__(self, name: Any) -> Any:
        return self._self_wrap(self.__wrapped__[name])

    def __iter__(self) -> Any:
        raise TypeError("'DuckDBPyRelation' object is not iterable")

    # -- displays -----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return self._self_render("repr", repr)

    def __str__(self) -> str:
        return self._self_render("str", str)

    def _repr_mimebundle_(self, *args: Any, **kwargs: Any) -> Any:
        text = self._self_render("repr", repr)
        return {"text/plain": text}

    def preview(self, limit: int = 10) -> str:
        return self._self_render("preview", lambda r: r.preview(limit))

    def show(self, **kwargs: Any) -> None:
        print(self._self_render("show", lambda r: r.preview(kwargs.get("max_rows") or 10000)))

    def _self_render(self, entry: str, render: Callable[[Any], str]) -> str:
        raw = self.__wrapped__
        limited = raw.limit(10000)
        rows, st = self._self_emit(entry, limited.fetchall, raw.sql_query())
        if not st.touches_rows:
            st.many(list(rows), complete=True)  # counted; duckdb draws its own box
            return render(raw)
        masked = st.many(list(rows), complete=True)
        return _box([d[0] for d in raw.description], masked)

    # -- streams the proxy cannot mask --------------------------------------------------------
    def _self_reader(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return _reader_gate(self, name, args, kwargs)

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._self_reader("__arrow_c_stream__", (requested_schema,), {})


def _composer(rel: GovernedRelation, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        out = method(*_unwrap_args(args), **{k: _unwrap(v) for k, v in kwargs.items()})
        wrapped = rel._self_wrap(out)
        if wrapped is out and out is not None and not isinstance(out, (str, bool, int)):
            raise rel._self_gov.refusal(
                GuardrailViolation(
                    f"DuckDBPyRelation.{name}() returned {type(out).__name__}, which governed_db does not know how "
                    "to govern; its output was withheld. Read the relation with fetchall()/df() instead."
                )
            )
        return wrapped

    call.__name__ = name
    return call


def _unwrap(value: Any) -> Any:
    return value.__wrapped__ if isinstance(value, GovernedRelation) else value


def _unwrap_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_unwrap(a) for a in args)


def wrap_result(value: Any, gov: Governor, connection: Any) -> Any:
    """A relation becomes a governed relation, the raw connection becomes the governed one."""
    import duckdb

    if isinstance(value, duckdb.DuckDBPyRelation) and not isinstance(value, GovernedRelation):
        return GovernedRelation(value, gov, connection)
    if isinstance(value, duckdb.DuckDBPyConnection) and not isinstance(value, wrapt.ObjectProxy):
        if value is getattr(connection, "__wrapped__", None):
            return connection
        return type(connection)(value, gov)
    return value


def _row_output(name: str) -> Callable[..., Any]:
    def output(self: GovernedRelation, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.__wrapped__, name)
        out, st = self._self_emit(name, lambda: method(*args, **kwargs))
        if not st.active:
            return out
        if name == "iter_rows":
            return st.iterate(out)
        if name == "fetchone":
            return st.one(out)
        return st.many(list(out), complete=True)

    output.__name__ = name
    return output


def _frame_output(name: str) -> Callable[..., Any]:
    def output(self: GovernedRelation, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.__wrapped__, name)
        out, st = self._self_emit(name, lambda: method(*args, **kwargs))
        return st.frame(out) if st.active else out

    output.__name__ = name
    return output


def _reader_output(name: str) -> Callable[..., Any]:
    def output(self: GovernedRelation, *args: Any, **kwargs: Any) -> Any:
        return self._self_reader(name, args, kwargs)

    output.__name__ = name
    return output


def _reader_gate(self: GovernedRelation, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    method = getattr(self.__wrapped__, name)
    # judged and planned first; the stream is only opened when nothing would need masking
    _, st = self._self_emit(name, lambda: None)
    release_stream(self._self_gov, st, name)
    return method(*args, **kwargs)


def release_stream(gov: Governor, st: ResultState, name: str) -> None:
    """Let a record-batch stream (``name``) out only when nothing would be done to its rows; else refuse."""
    if st.poisoned is not None:
        raise st.poisoned
    if st.plan is not None or st.limit is not None:
        raise gov.refusal(
            GuardrailViolation(
                f"refused by governed_db: {name}() streams record batches that cannot be masked or capped one by "
                "one, and this result has masked columns or a row limit. Next step: use to_arrow_table() or df()."
            )
        )
    st.finish()


def _relation_describer(raw: Any) -> Callable[[str], Any]:
    # binds the probe in the relation's own context (no rows, and the connection's pending result is untouched)
    return lambda probe: raw.query("governed_relation", probe).description


def _file_output(name: str) -> Callable[..., Any]:
    def output(self: GovernedRelation, file_name: Any, *args: Any, **kwargs: Any) -> Any:
        raw, gov = self.__wrapped__, self._self_gov
        target = file_name if isinstance(file_name, str) else "<file>"
        text = f"COPY ({raw.sql_query()}) TO {_literal(target)}"

        def produce() -> Any:
            refuse_unmaskable_copy(gov, text, lambda _probe: raw.description)
            refuse_derived_from_masked(gov, text, _relation_describer(raw))
            return getattr(raw, name)(file_name, *args, **kwargs)

        return run(gov, f"relation.{name}", text, None, lambda _s: produce())

    output.__name__ = name
    return output


def _table_output(name: str) -> Callable[..., Any]:
    def output(self: GovernedRelation, *args: Any, **kwargs: Any) -> Any:
        raw, gov = self.__wrapped__, self._self_gov
        sql = raw.sql_query()
        target = quote_ident(args[0] if args else next(iter(kwargs.values()), raw.alias))
        text = {
            "create": f"CREATE TABLE {target} AS {sql}",
            "to_table": f"CREATE TABLE {target} AS {sql}",
            "insert_into": f"INSERT INTO {target} {sql}",
            "create_view": f"CREATE OR REPLACE VIEW {target} AS {sql}",
            "to_view": f"CREATE OR REPLACE VIEW {target} AS {sql}",
            "insert": f"INSERT INTO {quote_ident(raw.alias)} SELECT * FROM ({sql}) AS governed_rows",
            "update": f"UPDATE {quote_ident(raw.alias)} SET governed_column = NULL",
        }[name]

        def invoke(_s: Any) -> Any:
            refuse_derived_from_masked(gov, sql, _relation_describer(raw))
            return getattr(raw, name)(*args, **kwargs)

        return self._self_wrap(run(gov, f"relation.{name}", text, None, invoke))

    output.__name__ = name
    return output


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _box(columns: list[str], rows: list[Any]) -> str:
    """A plain text table of (already masked) rows."""
    cells = [[str(c) for c in columns]] + [
        [("NULL" if v is None else str(v)) for v in _values(r)] for r in rows
    ]
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(len(columns))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line, "| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=False)) + " |", line]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |" for r in cells[1:]]
    out += [line, f"{len(rows)} rows (governed)"]
    return "\n".join(out)


def _values(row: Any) -> Iterator[Any]:
    return iter(row.values()) if isinstance(row, dict) else iter(row)


for _name in ROW_OUTPUTS:
    setattr(GovernedRelation, _name, _row_output(_name))
for _name in FRAME_OUTPUTS:
    setattr(GovernedRelation, _name, _frame_output(_name))
for _name in READER_OUTPUTS:
    setattr(GovernedRelation, _name, _reader_output(_name))
for _name in FILE_OUTPUTS:
    setattr(GovernedRelation, _name, _file_output(_name))
for _name in TABLE_OUTPUTS:
    setattr(GovernedRelation, _name, _table_output(_name))

__all__ = ["GovernanceFault", "GovernedRelation", "wrap_result"]
