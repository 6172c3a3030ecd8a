"""An application's view passes masked columns on under other names: on SQLite, DuckDB and MariaDB too.

Decision 0262 took a PostgreSQL view's column classes from its definition; on the other databases a view was
still classified from its own column names and sampled values, so ``CREATE VIEW v AS SELECT full_name AS who,
full_name || '/' || city AS label ...`` returned names in clear (no scan recognises a name) and answered
``WHERE who LIKE 'Alice%'``. The agent needs no DDL: the view is the application's. The definition is now read
there too (SQLite's and DuckDB's stored ``CREATE VIEW``, MariaDB's ``VIEW_DEFINITION``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db

AGENT = governed_db.Identity("agent-x", kind="agent", on_behalf_of="bob")
NAMES = ("Alice Smith", "Ivan Petrov")


def _ddl(table: str, view: str, concat: str) -> list[str]:
    return [
        f"CREATE TABLE {table} (id int primary key, full_name varchar(80), ssn varchar(20), city varchar(40))",
        f"CREATE VIEW {view} AS SELECT id, full_name AS who, {concat} AS label, city AS town FROM {table}",
    ]


@pytest.fixture(params=["sqlite", "duckdb", "mysql"])
def db(request: pytest.FixtureRequest, unique: str) -> Iterator[tuple[str, Any, str, str]]:
    kind = request.param
    raw: Any
    if kind == "mysql":
        raw = request.getfixturevalue("mysql_conn")
    elif kind == "duckdb":
        raw = pytest.importorskip("duckdb").connect()
    else:
        raw = sqlite3.connect(":memory:", isolation_level=None)
    table, view = f"vc_{unique}", f"vcv_{unique}"
    concat = "concat(full_name, '/', city)" if kind == "mysql" else "full_name || '/' || city"
    cur = raw.cursor()
    for sql in _ddl(table, view, concat):
        cur.execute(sql)
    ph = "%s" if kind == "mysql" else "?"
    cur.executemany(
        f"INSERT INTO {table} VALUES ({ph}, {ph}, {ph}, {ph})",
        [(1, NAMES[0], "536-22-8726", "Paris"), (2, NAMES[1], "219-45-1234", "Lyon")] + [
            (i, f"Person Number{i}", f"{300 + i}-45-1234", "Paris") for i in range(3, 40)
        ],
    )
    try:
        yield kind, raw, table, view
    finally:
        cur.execute(f"DROP VIEW {view}")
        cur.execute(f"DROP TABLE {table}")


def _fetch(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    cur.execute(sql)
    return [tuple(r) for r in cur.fetchall()]


def test_view_columns_over_masked_columns_are_masked_and_refused(db: tuple[str, Any, str, str]) -> None:
    _, raw, _, view = db
    gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    sql = f"SELECT id, who, label, town FROM {view} WHERE id < 3 ORDER BY id"
    assert _fetch(raw, sql)[0][1] == "Alice Smith"  # the view carries the name
    rows = _fetch(gov, sql)
    assert [r[0] for r in rows] == [1, 2] and [r[3] for r in rows] == ["Paris", "Lyon"]
    assert not any(n.split()[0] in repr(rows) for n in NAMES), rows
    for guess in ("Alice%", "Zed%"):
        with pytest.raises(governed_db.GuardrailViolation, match="who"):
            _fetch(gov, f"SELECT count(*) FROM {view} WHERE who LIKE '{guess}'")
    assert _fetch(gov, f"SELECT count(*) FROM {view} WHERE town = 'Paris'") == [(38,)]  # clear columns: exact


def test_aiosqlite_reads_the_view_definition_too(tmp_path: Any) -> None:
    aiosqlite = pytest.importorskip("aiosqlite")
    path = str(tmp_path / "v.db")
    setup = sqlite3.connect(path)
    for sql in _ddl("people", "v", "full_name || '/' || city"):
        setup.execute(sql)
    setup.executemany("INSERT INTO people VALUES (?, ?, ?, ?)",
                      [(i, f"Alice Example{i}", f"{500 + i}-22-8726", "Paris") for i in range(30)])
    setup.commit()
    setup.close()

    async def main() -> tuple[Any, Any]:
        raw = await aiosqlite.connect(path)
        gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
        try:
            cur = await gov.execute("SELECT who, label FROM v ORDER BY id LIMIT 2")
            rows = await cur.fetchall()
            try:
                await gov.execute("SELECT count(*) FROM v WHERE who LIKE 'Alice%'")
                refused: Any = False
            except governed_db.GuardrailViolation:
                refused = True
            return rows, refused
        finally:
            await raw.close()

    rows, refused = asyncio.run(main())
    assert "Alice" not in repr(rows) and refused


def test_a_view_definition_masking_cannot_follow_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the walk cannot follow a view's definition (a syntax it does not read), the view's text columns over a
    table with masked columns are redacted whole rather than judged by their sampled values (a scan finds no
    names); its numbers stay exact, and a view over clear tables keeps its sample's classes."""
    from governed_db.masking import engine

    real = engine.trace

    def blind(tree: Any, *args: Any, **kwargs: Any) -> Any:
        if "full_name AS who" in tree.sql():  # the definition of v, not a statement
            raise ValueError("a definition the walk cannot follow")
        return real(tree, *args, **kwargs)

    monkeypatch.setattr(engine, "trace", blind)
    raw = sqlite3.connect(":memory:", isolation_level=None)
    for sql in _ddl("people", "v", "full_name || '/' || city"):
        raw.execute(sql)
    raw.execute("CREATE TABLE places (id int, town text)")
    raw.execute("CREATE VIEW w AS SELECT id, town AS who FROM places")
    raw.executemany("INSERT INTO people VALUES (?, ?, ?, ?)",
                    [(i, f"Alice Example{i}", f"{500 + i}-22-8726", "Paris") for i in range(30)])
    raw.executemany("INSERT INTO places VALUES (?, ?)", [(i, "Paris") for i in range(30)])
    gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    rows = _fetch(gov, "SELECT id, who, town FROM v ORDER BY id LIMIT 2")
    assert rows == [(0, "[FREE_TEXT]", "[FREE_TEXT]"), (1, "[FREE_TEXT]", "[FREE_TEXT]")]
    with pytest.raises(governed_db.GuardrailViolation, match="who"):
        _fetch(gov, "SELECT count(*) FROM v WHERE who LIKE 'Alice%'")
    assert _fetch(gov, "SELECT who FROM w ORDER BY id LIMIT 1") == [("Paris",)]  # reads nothing masked
