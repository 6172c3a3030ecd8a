"""Issue 12 acceptance, round 14: the items the issue names, checked as written where earlier rounds had not.

* item 2, psycopg row factories on the **async** peer (``AsyncConnection``): ``class_row(dataclass)`` built no
  row at all (every row withheld), and ``kwargs_row`` / a custom factory were handed the clear values (masked
  only after the factory had seen them) — the sync cursor hands them masked values;
* item 2, error echoes of a date unit: a bare column as the unit of DuckDB's ``date_trunc``/``date_diff`` (and
  PostgreSQL's ``date_part``/``date_trunc``) is read by the parser as a unit keyword, so analysis never saw the
  masked column, and DuckDB's ``extract specifier "Alice Smith" not recognized`` came back in clear;
* item 4, the precision/recall table in ``docs/masking.md`` is the one the labelled set produces today.

Each leak test shows the raw connection is the oracle (a secret fragment, or a told-apart guess) and the
governed one shows nothing; innocent look-alikes keep running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import Identity

ATTACKER = Identity("curious-agent", kind="agent")
ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "Paris"),
    (2, "Bob Jones", "bob.jones@example.org", "219-45-1234", "Lyon"),
]
FRAGMENTS = ["alice", "smith", "536-22", "8726", "bob jones", "219-45"]


def clear(observed: Any) -> list[str]:
    text = repr(observed).lower()
    return [f for f in FRAGMENTS if f in text]


def _wrap(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=ATTACKER, environment="production", audit=False)


def _observe(conn: Any, sql: str) -> Any:
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return ("rows", [tuple(r) for r in cur.fetchall()])
    except Exception as e:
        return ("error", type(e).__name__, str(e))


# -- item 2: psycopg row factories on the async connection ------------------------------------------------
@dataclasses.dataclass
class Customer:
    id: int
    full_name: str
    email: str
    ssn: str
    city: str


def _factories(seen: list[Any]) -> dict[str, Any]:
    from psycopg import rows

    def custom(cursor: Any) -> Any:
        def make(values: Any) -> Any:
            seen.append(tuple(values))
            return ("row", *values)

        return make

    return {
        "class_row(dataclass)": rows.class_row(Customer),
        "kwargs_row": rows.kwargs_row(lambda **kw: seen.append(kw) or kw),
        "args_row": rows.args_row(lambda *a: seen.append(a) or a),
        "custom": custom,
    }


@pytest.fixture
def pg_table(pg_dsn: str, unique: str) -> Iterator[str]:
    import psycopg

    table = f"acc12_f_{unique}"
    with psycopg.connect(pg_dsn, autocommit=True) as raw:
        raw.execute(
            f"CREATE TABLE {table} (id int primary key, full_name text, email text, ssn text, city text)"
        )
        with raw.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s, %s)", ROWS)
        try:
            yield table
        finally:
            raw.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.parametrize("where", ["cursor", "connection", "conn.execute"])
@pytest.mark.parametrize("name", ["class_row(dataclass)", "kwargs_row", "args_row", "custom"])
def test_async_psycopg_row_factory_receives_masked_values(
    pg_dsn: str, pg_table: str, name: str, where: str
) -> None:
    """AsyncConnection: the factory (set on the cursor, or on the connection before it is governed, or used by
    ``conn.execute``) is handed masked values and builds every row, as on the sync connection; raw: clear."""
    import psycopg

    sql = f"SELECT * FROM {pg_table} ORDER BY id"

    async def read(governed: bool) -> tuple[Any, list[Any]]:
        seen: list[Any] = []
        factory = _factories(seen)[name]
        raw = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
        if where != "cursor":
            raw.row_factory = factory
        conn = _wrap(raw) if governed else raw
        try:
            if where == "conn.execute":
                cur = await conn.execute(sql)
            else:
                cur = conn.cursor(row_factory=factory) if where == "cursor" else conn.cursor()
                await cur.execute(sql)
            rows = await cur.fetchall()
        except Exception as e:  # the caller sees this
            rows = [("error", type(e).__name__, str(e))]
        finally:
            await conn.close()
        return rows, seen

    raw_rows, raw_seen = asyncio.run(read(False))
    gov_rows, gov_seen = asyncio.run(read(True))
    assert clear((raw_rows, raw_seen)), "raw: the factory builds rows from clear values"
    assert not clear(gov_seen), f"the governed factory was handed clear values: {gov_seen}"
    assert not clear(gov_rows), gov_rows
    assert len(gov_rows) == len(raw_rows) == 2, gov_rows  # every row built, none withheld
    if name == "class_row(dataclass)":
        assert all(isinstance(r, Customer) for r in gov_rows), gov_rows
        first = gov_rows[0]
        assert (first.id, first.city, first.ssn, first.full_name) == (1, "Paris", "[US_SSN]", "[PERSON_NAME]")
        assert first.email == "a***@example.com"


def test_async_psycopg_row_factory_property_reads_back_the_callers_factory(
    pg_dsn: str, pg_table: str
) -> None:
    """``cur.row_factory`` on the governed async cursor is the factory the caller set (not the masking wrapper),
    and setting it after the cursor exists still hands it masked values."""
    import psycopg
    from psycopg.rows import class_row

    factory = class_row(Customer)

    async def go() -> tuple[Any, Any]:
        conn = _wrap(await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True))
        try:
            cur = conn.cursor()
            cur.row_factory = factory
            await cur.execute(f"SELECT * FROM {pg_table} ORDER BY id")
            return cur.row_factory, await cur.fetchall()
        finally:
            await conn.close()

    got_factory, rows = asyncio.run(go())
    assert got_factory is factory
    assert [r.ssn for r in rows] == ["[US_SSN]", "[US_SSN]"] and [r.city for r in rows] == ["Paris", "Lyon"]


# -- item 2: a bare column as a date unit (DuckDB, PostgreSQL) --------------------------------------------
DUCK_UNITS = [
    "SELECT date_trunc(full_name, now()) FROM {t}",
    "SELECT datetrunc(full_name, now()) FROM {t}",
    "SELECT date_diff(full_name, now(), now()) FROM {t}",
    "SELECT datediff(ssn, now(), now()) FROM {t} WHERE id = 1",
    'SELECT date_trunc("full_name", now()) FROM {t}',
    # a time zone as the third argument: the parser made it a unit keyword (``Unknown TimeZone 'Alice Smith'``)
    "SELECT time_bucket(INTERVAL '1 day', now(), full_name) FROM {t}",
    "SELECT time_bucket(INTERVAL '1 day', DATE '2020-01-01', full_name) FROM {t}",
]
PG_UNITS = [
    "SELECT date_trunc(full_name, now()) FROM {t}",
    "SELECT date_part(full_name, now()) FROM {t}",
    "SELECT date_trunc(ssn, now()::timestamp) FROM {t} WHERE id = 1",
    # date_trunc's time zone (``time zone "Alice Smith" not recognized``)
    "SELECT date_trunc('day', now(), full_name) FROM {t}",
]


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    duckdb = pytest.importorskip("duckdb")
    path = str(tmp_path / "units.duckdb")
    raw = duckdb.connect(path)
    raw.execute(
        "CREATE TABLE customers (id INTEGER, full_name VARCHAR, email VARCHAR, ssn VARCHAR, city VARCHAR)"
    )
    raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", [list(r) for r in ROWS])
    raw.execute("CREATE TABLE periods (id INTEGER, unit VARCHAR, ts TIMESTAMP)")
    raw.execute("INSERT INTO periods VALUES (1, 'month', TIMESTAMP '2024-05-17 10:00:00'), "
                "(2, 'year', TIMESTAMP '2024-05-17 10:00:00')")  # fmt: skip
    gov = _wrap(duckdb.connect(path))
    yield raw, gov
    gov.close()
    raw.close()


@pytest.mark.parametrize("sql", DUCK_UNITS)
def test_duckdb_a_masked_column_as_a_date_unit_is_not_echoed(duck: tuple[Any, Any], sql: str) -> None:
    """DuckDB reads a bare name as the unit argument as a column: raw echoes its value in the error
    (``extract specifier "Alice Smith" not recognized``); governed: no fragment (refused, naming the column)."""
    raw, gov = duck
    text = sql.format(t="customers")
    raw_out, gov_out = _observe(raw, text), _observe(gov, text)
    assert clear(raw_out), raw_out
    assert not clear(gov_out), gov_out
    assert gov_out[0] == "error" and "customers." in gov_out[2], gov_out


def test_duckdb_date_units_innocent_uses_run(duck: tuple[Any, Any]) -> None:
    """A literal unit, a keyword ``extract``, and a non-sensitive column as the unit keep running exactly."""
    raw, gov = duck
    for sql in [
        "SELECT date_trunc('month', ts) FROM periods ORDER BY id",
        "SELECT date_diff('day', ts, ts + INTERVAL 3 DAY) FROM periods ORDER BY id",
        "SELECT extract(month FROM ts) FROM periods ORDER BY id",
        "SELECT date_trunc(unit, ts) FROM periods ORDER BY id",
        "SELECT date_diff(unit, ts, ts + INTERVAL 400 DAY) FROM periods ORDER BY id",
        "SELECT id FROM periods WHERE date_trunc(unit, ts) = TIMESTAMP '2024-01-01' ORDER BY id",
        "SELECT time_bucket(INTERVAL '1 day', ts) FROM periods ORDER BY id",
        "SELECT time_bucket(INTERVAL '1 day', ts, ts - INTERVAL 1 HOUR) FROM periods ORDER BY id",
    ]:
        want = _observe(raw, sql)
        assert want[0] == "rows" and want == _observe(gov, sql), (sql, _observe(gov, sql))


@pytest.mark.parametrize("sql", PG_UNITS)
def test_postgres_a_masked_column_as_a_date_unit_is_judged_as_a_column(
    pg_dsn: str, pg_table: str, sql: str
) -> None:
    """PostgreSQL: ``date_part(full_name, now())`` / ``date_trunc(ssn, ...)`` read the column; raw echoes its
    value; governed refuses, naming the column (analysis sees the use, not only the message scrubber)."""
    import psycopg

    text = sql.format(t=pg_table)
    with (
        psycopg.connect(pg_dsn, autocommit=True) as raw,
        _wrap(psycopg.connect(pg_dsn, autocommit=True)) as gov,
    ):
        raw_out, gov_out = _observe(raw, text), _observe(gov, text)
    assert clear(raw_out), raw_out
    assert gov_out[0] == "error" and gov_out[1] == "GuardrailViolation", gov_out
    # the table's random name may hold a fragment's digits (acc12_f_u78726ff7e): only the rest is checked
    assert f"{pg_table}." in gov_out[2] and not clear(repr(gov_out).replace(pg_table, "T")), gov_out


def test_postgres_date_units_innocent_uses_run(pg_dsn: str, unique: str) -> None:
    """Literal units, ``extract(month FROM ...)`` and a plain column as a unit run exactly as raw."""
    import psycopg

    table = f"acc12_p_{unique}"
    with (
        psycopg.connect(pg_dsn, autocommit=True) as raw,
        _wrap(psycopg.connect(pg_dsn, autocommit=True)) as gov,
    ):
        raw.execute(f"CREATE TABLE {table} (id int, unit text, ts timestamp)")
        try:
            raw.execute(
                f"INSERT INTO {table} VALUES (1, 'month', '2024-05-17 10:00'), (2, 'year', '2024-05-17')"
            )
            for sql in [
                f"SELECT date_trunc('month', ts) FROM {table} ORDER BY id",
                f"SELECT date_part('month', ts) FROM {table} ORDER BY id",
                f"SELECT extract(month FROM ts) FROM {table} ORDER BY id",
                f"SELECT date_trunc(unit, ts) FROM {table} ORDER BY id",
                f"SELECT date_part(unit, ts) FROM {table} ORDER BY id",
                f"SELECT id FROM {table} WHERE date_trunc(unit, ts) = '2024-01-01' ORDER BY id",
                f"SELECT date_trunc('day', ts::timestamptz, 'Europe/Paris') FROM {table} ORDER BY id",
                f"SELECT date_trunc('day', ts::timestamptz, unit) FROM {table} WHERE id = 0",
            ]:
                want = _observe(raw, sql)
                assert want[0] == "rows" and want == _observe(gov, sql), (sql, _observe(gov, sql))
        finally:
            raw.execute(f"DROP TABLE IF EXISTS {table}")


# -- item 4: the reported precision/recall are what the labelled set gives --------------------------------
def _masking_eval() -> Any:
    path = Path(__file__).parent / "data" / "masking_eval.py"
    spec = importlib.util.spec_from_file_location("masking_eval", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["masking_eval"] = module
    spec.loader.exec_module(module)
    return module


def _table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip().replace(" %", "%") for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells and re.fullmatch(r"[A-Z_]+", cells[0]):
            rows.append(cells)
    return rows


def test_docs_masking_precision_recall_table_is_reproduced() -> None:
    """The table and the over-masking figure in docs/masking.md are the ones ``tests/data/masking_eval.py``
    prints now (not only above a floor): a change in detection that moves a number fails here until the
    documentation says so."""
    module = _masking_eval()
    report = module.evaluate()
    docs = (Path(__file__).parent.parent / "docs" / "masking.md").read_text()
    section = docs.split("## Detection quality", 1)[1].split("Known gaps", 1)[0]
    assert _table_rows(section) == _table_rows(module.render(report))
    assert f"{report.cells:,} cells, {report.innocent:,} innocent" in section
    assert f"over-masking {report.over_masking:.2%}".replace("%", " %") in section
    assert report.over_masking <= 0.01


def test_unmask_grant_keeps_clear_rows_through_async_factories_and_date_units(
    pg_dsn: str, pg_table: str
) -> None:
    """An identity with an unmask grant: the async class_row builds rows of clear values, and a date unit naming
    a column runs as the database runs it (its own error, unscrubbed)."""
    import psycopg
    from psycopg.rows import class_row

    def dba(raw: Any) -> Any:
        return governed_db.wrap(
            raw,
            identity=Identity("dana", roles=["dba"]),
            environment="production",
            audit=False,
            masking={"unmask": [{"role": "dba"}]},
        )

    async def go() -> Any:
        conn = dba(await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True))
        try:
            cur = conn.cursor(row_factory=class_row(Customer))
            await cur.execute(f"SELECT * FROM {pg_table} ORDER BY id")
            return await cur.fetchall()
        finally:
            await conn.close()

    rows = asyncio.run(go())
    assert [dataclasses.astuple(r) for r in rows] == ROWS
    sql = f"SELECT date_part(full_name, now()) FROM {pg_table} WHERE id = 1"
    with (
        psycopg.connect(pg_dsn, autocommit=True) as raw,
        dba(psycopg.connect(pg_dsn, autocommit=True)) as gov,
    ):
        assert _observe(gov, sql) == _observe(raw, sql) and "alice smith" in repr(_observe(gov, sql)).lower()
