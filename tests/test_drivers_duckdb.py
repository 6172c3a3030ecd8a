"""DuckDB specifics: the connection is its own cursor, relations are governed lazily, the module facade."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db import GuardrailViolation, masking
from governed_db.drivers import _duckdb_relation as rel_mod
from governed_db.drivers.duckdb import (
    FILE_READERS,
    FRAME_OUTPUTS,
    LAZY_RELATIONS,
    PASS_THROUGH,
    DuckDBConnection,
)
from tests._interception_support import MARKER, POLICY, stub_plan_masking

duckdb = pytest.importorskip("duckdb")


@pytest.fixture(autouse=True)
def _stub_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mask the column ``pii`` only; the real masking is tested on its own."""
    monkeypatch.setattr(masking, "predicate_hit", lambda *a, **k: None)
    monkeypatch.setattr(masking, "plan_masking", stub_plan_masking)


@pytest.fixture
def conn(spans: Any) -> Iterator[Any]:
    raw = duckdb.connect()
    raw.execute("CREATE TABLE people (id INTEGER, pii VARCHAR)")
    raw.execute("INSERT INTO people VALUES (1, 'alice@example.com'), (2, 'bob@example.com')")
    raw.execute("CREATE TABLE plain (id INTEGER, label VARCHAR)")
    raw.execute("INSERT INTO plain VALUES (1, 'a'), (2, 'b')").fetchall()
    yield governed_db.wrap(raw, environment="production", policy=POLICY, tracer_provider=spans[0])
    raw.close()


def test_every_relation_member_is_classified() -> None:
    """Each public DuckDBPyRelation member is a known output, composition, callback or metadata."""
    known = (
        rel_mod.ROW_OUTPUTS | rel_mod.FRAME_OUTPUTS | rel_mod.READER_OUTPUTS | rel_mod.DISPLAY_OUTPUTS
        | rel_mod.FILE_OUTPUTS | rel_mod.TABLE_OUTPUTS | rel_mod.COMPOSITION | rel_mod.CALLBACKS | rel_mod.METADATA
        | rel_mod.STATEMENTS | rel_mod.MEASURES | rel_mod.EAGER
    )  # fmt: skip
    public = {n for n in dir(duckdb.DuckDBPyRelation) if not n.startswith("_")}
    assert public - known == set(), "review these new DuckDBPyRelation members and classify them"


def test_every_connection_member_is_routed_or_passes_through() -> None:
    """Each public DuckDBPyConnection member is governed by the proxy or listed as one that carries no SQL/rows."""
    routed = {n for k in DuckDBConnection.__mro__ if k.__module__.startswith("governed_db") for n in vars(k)}
    public = {n for n in dir(duckdb.DuckDBPyConnection) if not n.startswith("_")}
    assert public - routed - PASS_THROUGH == set(), "review these new DuckDBPyConnection members"
    assert not (set(FRAME_OUTPUTS) | set(FILE_READERS) | set(LAZY_RELATIONS)) & PASS_THROUGH


def test_execute_returns_the_governed_connection(conn: Any) -> None:
    """conn.execute() returns the connection itself: the governed one, never the raw."""
    assert conn.execute("SELECT 1") is conn
    assert isinstance(conn, duckdb.DuckDBPyConnection)


def test_cursor_and_duplicate_are_governed(conn: Any) -> None:
    """cursor()/duplicate() give governed connections whose rows are masked."""
    for other in (conn.cursor(), conn.duplicate()):
        assert isinstance(other, DuckDBConnection)
        assert other.execute("SELECT pii FROM people ORDER BY id").fetchall() == [("***",), ("***",)]
        with pytest.raises(GuardrailViolation):
            other.execute(f"SELECT * FROM {MARKER}x")


def test_methods_returning_the_raw_connection_hand_back_the_proxy(conn: Any) -> None:
    """begin()/commit() and other pass-through methods never leak the raw connection."""
    assert conn.begin() is conn
    assert conn.commit() is conn


def test_relation_reads_are_judged_when_made_and_each_time_read(conn: Any, spans: Any) -> None:
    """sql() of a read is judged when called (duckdb binds at once) and again at every read."""
    exporter = spans[1]
    exporter.clear()
    rel = conn.sql("SELECT * FROM plain ORDER BY id")
    assert isinstance(rel, rel_mod.GovernedRelation)
    assert rel.fetchall() == [(1, "a"), (2, "b")]
    assert rel.fetchall() == [(1, "a"), (2, "b")]
    statements = [s for s in exporter.get_finished_spans() if s.name != "governed_db.result"]
    entries = [s.attributes["governed_db.entry"] for s in statements]
    assert entries == ["connection.sql", "relation.fetchall", "relation.fetchall"]
    with pytest.raises(GuardrailViolation):
        conn.sql(f"SELECT * FROM {MARKER}not_even_bound")  # refused before duckdb binds it


def test_composition_returns_governed_relations(conn: Any) -> None:
    """filter/project/order/aggregate/join and column access all return governed relations."""
    base = conn.table("people")
    made = [
        base.filter("id > 0"),
        base.project("pii"),
        base.order("id"),
        base.aggregate("count(*)"),
        base.set_alias("a").join(conn.table("plain").set_alias("b"), "a.id = b.id"),
        base.pii,
        base["pii"],
        base.limit(1),
    ]
    assert all(isinstance(r, rel_mod.GovernedRelation) for r in made)
    assert base.project("pii").fetchall() == [("***",), ("***",)]


def test_relation_outputs_refuse_what_cannot_be_masked(conn: Any, tmp_path: Any) -> None:
    """Arrow readers, map() and file exports of a masked relation are refused before any row leaves."""
    people = conn.table("people")
    with pytest.raises(GuardrailViolation, match="record batches"):
        people.to_arrow_reader()
    with pytest.raises(GuardrailViolation, match="map"):
        people.map(lambda df: df)
    target = tmp_path / "out.csv"
    with pytest.raises(GuardrailViolation, match="masking cannot"):
        people.write_csv(str(target))
    assert not target.exists()
    conn.table("plain").write_csv(str(target))  # nothing masked: allowed
    assert target.read_text().splitlines()[0] == "id,label"


def test_relation_display_is_masked(conn: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """repr(), str(), show() and preview() of a masked relation draw masked values."""
    people = conn.table("people")
    people.show()
    shown = capsys.readouterr().out
    for text in (
        repr(people),
        str(people),
        people.preview(),
        shown,
        people._repr_mimebundle_()["text/plain"],
    ):
        assert "alice@example.com" not in text and "***" in text


def test_writes_from_relations_are_judged_as_their_sql(conn: Any) -> None:
    """create/insert_into/create_view are judged as CREATE TABLE AS / INSERT ... SELECT / CREATE VIEW."""
    plain = conn.table("plain")
    plain.create("plain_copy")
    plain.insert_into("plain_copy")
    assert conn.execute("SELECT count(*) FROM plain_copy").fetchall() == [(4,)]
    with pytest.raises(GuardrailViolation):
        plain.create(f"{MARKER}copy")


def test_relation_query_and_len_are_judged(conn: Any) -> None:
    """rel.query(view, sql) is judged as that SQL when called; len(rel) is judged as a count of the relation."""
    with pytest.raises(GuardrailViolation):
        conn.table("plain").query("v", f"CREATE TABLE {MARKER}made AS SELECT * FROM v")
    raw = governed_db.unwrap(conn)
    assert raw.execute(
        f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{MARKER}made'"
    ).fetchall() == [(0,)]
    assert len(conn.table("plain")) == 2
    raw.execute(f"CREATE TABLE {MARKER}t AS SELECT 1 AS id")
    with pytest.raises(GuardrailViolation):
        len(conn.table(f"{MARKER}t"))


def test_statement_objects_are_read_as_their_query(conn: Any) -> None:
    """extract_statements() objects are judged by their SQL and passed to duckdb unchanged."""
    stmt = conn.extract_statements(f"SELECT * FROM {MARKER}x")[0]
    with pytest.raises(GuardrailViolation):
        conn.execute(stmt)
    ok = conn.extract_statements("SELECT id FROM plain ORDER BY id")[0]
    assert conn.execute(ok).fetchall() == [(1,), (2,)]


def test_extensions_are_judged_as_install_and_load(conn: Any) -> None:
    """install_extension/load_extension are refused by a rule that sees INSTALL/LOAD of the name."""
    with pytest.raises(GuardrailViolation):
        conn.install_extension(f"{MARKER}ext")
    with pytest.raises(GuardrailViolation):
        conn.load_extension(f"{MARKER}ext")


def test_frames_from_the_connection_are_masked(conn: Any) -> None:
    """df()/fetchnumpy() after execute() go through the frame exit."""
    frame = conn.execute("SELECT * FROM people").df()
    assert list(frame["pii"]) == ["***", "***"]
    arrays = conn.execute("SELECT * FROM people").fetchnumpy()
    assert list(arrays["pii"]) == ["***", "***"]


def test_module_facade_uses_a_governed_default_connection(spans: Any) -> None:
    """govern_module(duckdb): duckdb.sql/execute run on a governed default connection; DataFrame helpers refuse."""
    facade = governed_db.govern_module(
        duckdb, environment="production", policy=POLICY, tracer_provider=spans[0]
    )
    default = facade.default_connection()
    assert isinstance(default, DuckDBConnection)
    assert facade.default_connection() is default
    with pytest.raises(GuardrailViolation):
        facade.sql(f"SELECT * FROM {MARKER}x").fetchall()
    assert facade.execute("SELECT 42").fetchall() == [(42,)]
    with pytest.raises(governed_db.ConfigurationError, match="outside any governed connection"):
        facade.filter(None, "x > 1")
    assert facade.col("x") is not None  # expression builders are pure
    assert isinstance(facade.connect(), DuckDBConnection)


def test_closed_connection_cannot_be_wrapped() -> None:
    """wrap() of a closed duckdb connection names the problem."""
    raw = duckdb.connect()
    raw.close()
    with pytest.raises(governed_db.ConfigurationError, match="closed"):
        governed_db.wrap(raw)


@pytest.mark.parametrize("name", sorted(rel_mod.FRAME_OUTPUTS))
def test_every_relation_frame_output_goes_through_masking(
    conn: Any, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Each frame exit (pl, to_arrow_table, torch, tf...) is masked, shown with a stand-in frame library.

    polars/pyarrow/torch are optional: the raw method is replaced by one returning the pandas frame (or the
    numpy dict) of the same rows, which is what the exit hands to the mask plan's apply_frame.
    """
    make = (
        duckdb.DuckDBPyRelation.fetchnumpy
        if name in ("fetchnumpy", "tf", "torch")
        else duckdb.DuckDBPyRelation.df
    )
    monkeypatch.setattr(duckdb.DuckDBPyRelation, name, lambda self, *a, **k: make(self), raising=False)
    out = getattr(conn.table("people"), name)()
    assert list(out["pii"]) == ["***", "***"]


def test_row_cap_applies_to_frames(spans: Any) -> None:
    """A LIMIT decision caps pandas frames and numpy dicts too, counted across fetch_df_chunk calls."""
    from governed_db.policy import Policy
    from governed_db.policy.decision import Action, RuleHit

    cap = Policy(rules=(lambda s, c: RuleHit("cap", Action.LIMIT, "three rows", None, 3) if s else None,))
    raw = duckdb.connect()
    raw.execute("CREATE TABLE big AS SELECT range AS id FROM range(5000)")
    conn = governed_db.wrap(raw, environment="production", policy=cap)
    assert len(conn.execute("SELECT id FROM big").df()) == 3
    assert len(conn.execute("SELECT id FROM big").fetchnumpy()["id"]) == 3
    assert len(conn.table("big").df()) == 3
    conn.execute("SELECT id FROM big")
    first = conn.fetch_df_chunk()
    second = conn.fetch_df_chunk()
    assert len(first) == 3 and len(second) == 0
    raw.close()


def test_copy_out_that_cannot_be_described_is_refused(conn: Any) -> None:
    """A COPY ... TO whose columns cannot be worked out is refused in production (fail closed)."""
    with pytest.raises(GuardrailViolation, match="could not tell"):
        conn.execute("COPY (SELECT * FROM no_such_table) TO '/nonexistent/out.csv'")


def test_arrow_capsule_export_is_gated(conn: Any) -> None:
    """__arrow_c_stream__ (how polars/pyarrow import a relation) is refused for a masked relation."""
    with pytest.raises(GuardrailViolation, match="record batches"):
        conn.table("people").__arrow_c_stream__()
    assert conn.table("plain").__arrow_c_stream__() is not None


def test_append_and_appender_are_judged_as_inserts(conn: Any) -> None:
    """append(table, df) and appender(table) are judged as INSERT INTO that table."""
    import pandas as pd

    frame = pd.DataFrame({"id": [3], "label": ["c"]})
    assert conn.append("plain", frame) is conn
    assert conn.execute("SELECT count(*) FROM plain").fetchall() == [(3,)]
    with pytest.raises(GuardrailViolation):
        conn.append(f"{MARKER}x", frame)
    with pytest.raises(GuardrailViolation):
        conn.appender(f"{MARKER}x")


def test_extension_autoinstall_is_off_on_a_governed_connection() -> None:
    """wrap() turns off DuckDB's automatic extension downloads (autoload is left as it is)."""
    raw = duckdb.connect()
    autoload = raw.execute("SELECT current_setting('autoload_known_extensions')").fetchone()
    conn = governed_db.wrap(raw, environment="production")
    assert conn.execute("SELECT current_setting('autoinstall_known_extensions')").fetchone() == (False,)
    assert conn.execute("SELECT current_setting('autoload_known_extensions')").fetchone() == autoload
    installed = raw.execute(
        "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'excel'"
    ).fetchone()
    if installed == (False,):  # the setting is the database's: even the raw connection stops, no download
        with pytest.raises(duckdb.Error, match="INSTALL excel"):
            raw.execute("SELECT * FROM read_xlsx('/nonexistent/governed.xlsx')")
    raw.close()


_DATA_NAMED = {
    "PIVOT ... ON masked": "SELECT * FROM (PIVOT (SELECT id, pii FROM people) ON pii USING count(*))",
    "PIVOT table": "FROM (PIVOT people ON pii USING count(*))",
    "PIVOT_WIDER": "SELECT * FROM (PIVOT_WIDER people ON pii)",
    "PIVOT ... IN list": "FROM (PIVOT people ON pii IN ('alice@example.com') USING count(*))",
    "PIVOT USING masked aggregate": "FROM (PIVOT (SELECT id, pii FROM people) ON id USING max(pii) AS pii)",
    "standard PIVOT": "SELECT * FROM people PIVOT (count(*) FOR pii IN ('alice@example.com'))",
    "PIVOT over a CTE": "WITH s AS (SELECT id, pii FROM people) SELECT * FROM (PIVOT s ON pii USING count(*))",
    "UNPIVOT masked": "SELECT * FROM (UNPIVOT people ON pii INTO NAME k VALUE v)",
    "SUMMARIZE table": "SUMMARIZE people",
    "SUMMARIZE query": "SUMMARIZE SELECT pii FROM people",
    "SUMMARIZE nested": "SELECT * FROM (SUMMARIZE people)",
}


@pytest.mark.parametrize("case", sorted(_DATA_NAMED))
def test_results_derived_from_masked_values_are_refused(conn: Any, case: str) -> None:
    """PIVOT (column names from data), UNPIVOT and SUMMARIZE (min/max of values) over masked columns are refused."""
    sql = _DATA_NAMED[case]
    with pytest.raises(GuardrailViolation, match="masked columns"):
        conn.execute(sql)
    with pytest.raises(GuardrailViolation, match="masked columns"):
        conn.sql(sql)
    assert conn.description is None or all("example.com" not in str(d[0]) for d in conn.description)


def test_relation_query_pivot_over_masked_columns_is_refused(conn: Any) -> None:
    """rel.query('v', 'PIVOT v ON pii') is checked like conn.sql()."""
    with pytest.raises(GuardrailViolation, match="masked columns"):
        conn.table("people").query("v", "FROM (PIVOT v ON pii USING count(*))")


@pytest.mark.parametrize(
    "sql",
    [
        "FROM (PIVOT plain ON label USING count(*))",
        "SELECT * FROM (PIVOT (SELECT id, label FROM plain) ON label USING sum(id))",
        "SUMMARIZE plain",
        "FROM (PIVOT people ON id USING count(*) GROUP BY id)",
    ],
)
def test_pivot_and_summarize_without_masked_values_run(conn: Any, sql: str) -> None:
    """PIVOT/SUMMARIZE whose names and cells come from unmasked columns still work."""
    rows = conn.execute(sql).fetchall()
    assert rows


@pytest.mark.parametrize(
    "compose",
    [
        lambda r: r.pivot("id", [1], "max(pii) AS pii"),
        lambda r: r.unpivot("pii"),
    ],
    ids=["pivot", "unpivot"],
)
def test_relation_pivot_and_unpivot_of_masked_columns_are_refused(conn: Any, compose: Any) -> None:
    """rel.pivot()/rel.unpivot() over masked columns are refused at output, like their SQL forms."""
    rel = compose(conn.table("people"))
    with pytest.raises(GuardrailViolation, match="masked columns"):
        rel.fetchall()
    with pytest.raises(GuardrailViolation, match="masked columns"):
        rel.df()
    with pytest.raises(GuardrailViolation, match="masked columns"):
        rel.create("governed_pivot_copy")
    assert sorted(conn.table("plain").pivot("label", ["a"], "count(*)").fetchall()) == [(1, 1), (2, 0)]


def test_pivot_check_that_cannot_be_worked_out_fails_closed(
    conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the PIVOT's inputs cannot be worked out, production refuses instead of running it unchecked."""
    from governed_db.drivers import _derived

    def broken(text: str, dialect: str) -> Any:
        raise KeyError("unforeseen tree")

    monkeypatch.setattr(_derived, "derived_probes", broken)
    with pytest.raises(GuardrailViolation, match="fail closed"):
        conn.execute("FROM (PIVOT plain ON label USING count(*))")


def test_checkpoint_method_is_judged_as_checkpoint(tmp_path: Any) -> None:
    """con.checkpoint() is judged as CHECKPOINT: an agent in production needs approval for it."""
    import duckdb

    raw = duckdb.connect(str(tmp_path / "cp.duckdb"))
    try:
        conn = governed_db.wrap(raw, identity=governed_db.Identity("bot", kind="agent"))
        with pytest.raises(governed_db.GuardrailViolation) as err:
            conn.checkpoint()
        assert "maintenance" in err.value.rules
        app = governed_db.wrap(raw, identity=governed_db.Identity("app", kind="service"),
                               policy={"rules": {"maintenance": "allow"}})
        app.checkpoint()  # allowed by policy: it runs
    finally:
        raw.close()
