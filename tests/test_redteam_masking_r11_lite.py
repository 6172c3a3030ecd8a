"""Red-team round 11 on SQLite, DuckDB and aiosqlite, against the code merged in round 10 (decisions 0248-0255):
two runs that differ only in a secret (a right and a wrong guess); a statement sequence the governed connection
answers differently for them is a leak. Each finding shows the difference on the raw connection, that the
governed ones answer alike, and that the innocent look-alike still runs with correct data.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import governed_db
from tests._redteam import govern
from tests.test_masking_noninterference import ATTACKER

SECRETS = ("536-22-8726", "100-99-0000")
OTHERS = [(2, "Bob Jones", "219-45-1234"), (3, "Chen Wei", "412-77-9001")]


def _observe(run: Callable[[str], Any], statements: list[str]) -> list[Any]:
    seen: list[Any] = []
    for sql in statements:
        try:
            seen.append(("rows", repr(run(sql))))
        except governed_db.GuardrailViolation as refused:
            rules = tuple(refused.decision.rules) if refused.decision is not None else ()
            seen.append(("refused", rules, str(refused)))
        except Exception as e:
            seen.append(("error", type(e).__name__, str(e)))
    return seen


def _late_stored_table(kind: str, path: Path, secret: str, before: list[str], after: list[str],
                       governed: bool = True) -> list[Any]:
    """A temporary ``u`` made on the (governed) connection, then a stored ``u`` with PII made by another
    connection (a migration), then ``after`` run on the first connection."""
    app = sqlite3.connect(path, isolation_level=None)
    app.execute("CREATE TABLE other (id int)")

    def store() -> None:
        app.execute("CREATE TABLE u (id int primary key, full_name text, ssn text)")
        app.executemany("INSERT INTO u VALUES (?, ?, ?)", [(1, "Alice Smith", secret), *OTHERS])

    if kind == "sqlite":
        raw = sqlite3.connect(path, isolation_level=None)
        conn = govern(raw, ATTACKER) if governed else raw

        def run(sql: str) -> Any:
            cur = conn.cursor()
            cur.execute(sql)
            return cur.fetchall() if cur.description else cur.rowcount

        seen = _observe(run, before)
        store()
        seen += _observe(run, after)
        conn.close()
    else:
        aiosqlite = pytest.importorskip("aiosqlite")
        loop = asyncio.new_event_loop()
        raw = loop.run_until_complete(aiosqlite.connect(path, isolation_level=None))
        aconn = govern(raw, ATTACKER) if governed else raw

        def arun(sql: str) -> Any:
            async def go() -> Any:
                cur = await aconn.execute(sql)
                return await cur.fetchall() if cur.description else cur.rowcount

            return loop.run_until_complete(go())

        seen = _observe(arun, before)
        store()
        seen += _observe(arun, after)
        loop.run_until_complete(aconn.close())
        loop.close()
    app.close()
    return seen


@pytest.mark.parametrize("kind", ["sqlite", "aiosqlite"])
def test_a_stored_table_made_after_a_temporary_one_of_its_name_is_not_judged_by_it(kind: str, tmp_path: Path) -> None:
    """Decision 0248 refuses a temporary table beside a stored one of its name, at CREATE. The stored one may
    come later: another connection (a migration) makes ``u`` with an ``ssn`` after the agent made a temporary
    ``u (id, note)``. SQLite's ``pragma_table_info('u')`` then answered from the temporary table, ``main.u.ssn``
    was a column masking did not know, and ``SELECT count(*) FROM main.u WHERE main.u.ssn < '5'`` ran: 2 rows for
    one SSN, 3 for the other. A statement naming a temporary table of the connection is now refused while a
    stored one of the same name exists (decision 0258)."""
    before = ["CREATE TEMP TABLE u (id int, note text)", "INSERT INTO u VALUES (1, 'n/a')", "SELECT * FROM u"]
    after = [
        "SELECT count(*) FROM main.u WHERE main.u.ssn < '5'",
        "SELECT count(*) FROM main.u WHERE main.u.ssn < '5'",  # again: no memo or hot cache answers it
        "SELECT ssn FROM main.u ORDER BY id",
        "SELECT * FROM u",
    ]
    raw = [_late_stored_table(kind, tmp_path / f"raw{i}.db", s, before, after, governed=False)
           for i, s in enumerate(SECRETS)]
    assert raw[0] != raw[1] and raw[0][3] == ("rows", "[(2,)]"), raw  # the oracle, unprotected
    a, b = (_late_stored_table(kind, tmp_path / f"gov{i}.db", s, before, after) for i, s in enumerate(SECRETS))
    assert a == b, (a, b)
    assert a[2][0] == "rows" and "n/a" in a[2][1], a  # the temporary table alone: as before
    for seen in a[3:]:
        assert seen[0] == "refused" and "masked-column-predicate" in seen[1] and "temporary" in seen[2], seen
    assert "536" not in repr(a) and "100-99" not in repr(a)


@pytest.mark.parametrize("kind", ["sqlite", "aiosqlite"])
def test_temporary_tables_of_their_own_names_still_run(kind: str, tmp_path: Path) -> None:
    """The innocent look-alikes: temporary tables with no stored namesake are read, filtered and joined with the
    stored ``u`` another connection made meanwhile, exactly (its masked column masked, not refused)."""
    before = [
        "CREATE TEMP TABLE scratch11 (id int, v text)",
        "INSERT INTO scratch11 VALUES (1, 'a'), (2, 'b')",
        "CREATE TEMP VIEW scratch11v AS SELECT id, v FROM scratch11",
    ]
    after = [
        "SELECT v FROM scratch11 WHERE v > 'a' ORDER BY id",
        "SELECT s.v, u.id, u.ssn FROM scratch11v s JOIN main.u u ON u.id = s.id ORDER BY s.id",
        "SELECT count(*) FROM u WHERE id < 3",
    ]
    a, b = (_late_stored_table(kind, tmp_path / f"gov{i}.db", s, before, after) for i, s in enumerate(SECRETS))
    assert a == b, (a, b)
    assert a[3] == ("rows", "[('b',)]"), a
    assert a[4] == ("rows", "[('a', 1, '[US_SSN]'), ('b', 2, '[US_SSN]')]"), a
    assert a[5] == ("rows", "[(2,)]"), a


def _filled_after_sample(path: Path, secret: str, governed: bool) -> list[Any]:
    """A populated table whose ``info`` is NULL everywhere when the governed connection samples it (a nearly empty
    column: provisional, filterable, decision 0250); another connection fills it, and the first one filters it at
    once, before the re-check time comes."""
    app = sqlite3.connect(path, isolation_level=None)
    app.execute("CREATE TABLE f (id int, info text, code text)")
    app.executemany("INSERT INTO f VALUES (?, NULL, ?)", [(i, f"c{i}") for i in range(20)])
    raw = sqlite3.connect(path, isolation_level=None)
    conn = govern(raw, ATTACKER) if governed else raw

    def run(sql: str) -> Any:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()

    seen = _observe(run, ["SELECT id, info FROM f WHERE id < 2"])
    app.execute("UPDATE f SET info = 'x' || id || '@example.com'")
    app.execute("UPDATE f SET info = ? WHERE id = 1", (secret,))
    seen += _observe(run, ["SELECT count(*) FROM f WHERE info LIKE '5%'"])
    conn.close()
    app.close()
    return seen


def test_a_nearly_empty_column_filled_meanwhile_is_not_filterable_before_its_recheck(tmp_path: Path) -> None:
    """Found in round 11: a nearly empty column is provisional and filterable (decision 0250); the table was
    sampled again at most ``RECHECK_MAX`` (5 s) after the last sample, and a filter passes no value through the
    result scan, so for up to 5 s after another connection filled the column ``WHERE info LIKE '5%'`` answered 1
    for one SSN and 0 for the other. A filter on a provisional column now has its table sampled first."""
    raw = [_filled_after_sample(tmp_path / f"raw{i}.db", s, governed=False) for i, s in enumerate(SECRETS)]
    assert raw[0][1] != raw[1][1], raw
    a, b = (_filled_after_sample(tmp_path / f"gov{i}.db", s, governed=True) for i, s in enumerate(SECRETS))
    assert a == b, (a, b)


def _column_added_meanwhile(kind: str, path: Path, secret: str, statements: list[str],
                            governed: bool = True) -> list[Any]:
    """``u (id, code)`` read by the (governed) connection; the agent's temporary ``g3 (id, code, info)`` holds a
    guess; another connection adds ``info`` to ``u`` and fills it with SSNs; then ``statements``."""
    if kind == "sqlite":
        app: Any = sqlite3.connect(path, isolation_level=None)
        raw: Any = sqlite3.connect(path, isolation_level=None)
    else:
        duckdb = pytest.importorskip("duckdb")
        raw = duckdb.connect()
        app = raw.cursor()  # another connection to the same database
    app.execute("CREATE TABLE u (id int, code text)")
    app.executemany("INSERT INTO u VALUES (?, ?)", [(i, f"c{i}") for i in range(20)])
    conn = govern(raw, ATTACKER) if governed else raw

    def run(sql: str) -> Any:
        cur = conn.cursor() if kind == "sqlite" else conn  # a DuckDB cursor() would not see g3
        cur.execute(sql)
        return cur.fetchall() if cur.description else None

    seen = _observe(run, [
        "SELECT * FROM u WHERE id < 2",
        "CREATE TEMP TABLE g3 (id int, code text, info text)",
        "INSERT INTO g3 VALUES (1, 'c1', '536-22-8726')",
        "SELECT count(*) FROM u NATURAL JOIN g3",  # before the column exists: one row (id, code)
    ])
    app.execute("ALTER TABLE u ADD COLUMN info text")
    app.execute("UPDATE u SET info = '219-45-' || CAST(1000 + id AS VARCHAR)")
    app.execute("UPDATE u SET info = ? WHERE id = 1", (secret,))
    # (SQLite compiles a statement against the schema it last read: the first one after another connection's
    # ALTER may fail on the old column count, so one plain statement goes first)
    seen += _observe(run, ["SELECT count(*) FROM u", *statements])
    conn.close()
    if kind == "sqlite":
        app.close()
    return seen


WHOLE_ROWS = [
    "SELECT count(*) FROM u NATURAL JOIN g3",  # the same text as before the column existed
    "SELECT count(*) FROM (SELECT * FROM u INTERSECT SELECT * FROM g3)",
    "SELECT count(*) FROM (SELECT * FROM u EXCEPT SELECT * FROM g3)",
    "SELECT count(*) FROM (SELECT u.* FROM u INTERSECT SELECT * FROM g3)",
    "SELECT count(*) FROM (SELECT * FROM u UNION SELECT * FROM g3)",
    "SELECT count(*) FROM (SELECT DISTINCT * FROM (SELECT * FROM u UNION ALL SELECT * FROM g3))",
]


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
@pytest.mark.parametrize("sql", WHOLE_ROWS)
def test_whole_rows_of_a_table_that_gained_a_column_are_judged_with_it(kind: str, sql: str, tmp_path: Path) -> None:
    """Decision 0251 reads a table's column list again when a statement names a column it lacks. A statement
    that takes a table's columns as a whole names none of them: after another connection added ``info`` (SSNs)
    to ``u``, ``SELECT * FROM u INTERSECT SELECT * FROM g3`` (a temporary table holding a guess), ``EXCEPT``,
    ``UNION``, ``DISTINCT *`` and ``u NATURAL JOIN g3`` compared ``info`` with the guess while masking still knew
    ``u`` as ``(id, code)``: 1 row for a right guess, 0 for a wrong one. Now a star, a whole row or a NATURAL
    JOIN anywhere but the statement's own top-level output list has its tables' column lists read again at every
    execution (decision 0259)."""
    raw = [_column_added_meanwhile(kind, tmp_path / f"raw{i}.db", s, [sql], governed=False)
           for i, s in enumerate(SECRETS)]
    assert raw[0][-1] != raw[1][-1], raw  # the oracle, unprotected
    a, b = (_column_added_meanwhile(kind, tmp_path / f"gov{i}.db", s, [sql]) for i, s in enumerate(SECRETS))
    assert a == b, (a, b)
    assert a[3] == ("rows", "[(1,)]"), a  # before the column existed: the innocent NATURAL JOIN ran
    assert a[-1][0] == "refused" and "masked-column-predicate" in a[-1][1], a
    assert "536" not in repr(a[4:]) and "100-99" not in repr(a)


@pytest.mark.parametrize("kind", ["sqlite", "duckdb"])
def test_stars_over_a_table_that_gained_a_column_still_run(kind: str, tmp_path: Path) -> None:
    """The innocent look-alikes: a top-level star shows the new column masked; a star in a subquery, a set
    operation over the clear columns and a NATURAL JOIN of clear columns run with exact results."""
    statements = [
        "SELECT * FROM u WHERE id < 2 ORDER BY id",
        "SELECT count(*) FROM (SELECT * FROM u) s WHERE id < 3",
        "SELECT count(*) FROM (SELECT id, code FROM u INTERSECT SELECT id, code FROM g3)",
        "SELECT count(*) FROM u NATURAL JOIN (SELECT id, code FROM g3) x",
    ]
    a, b = (_column_added_meanwhile(kind, tmp_path / f"gov{i}.db", s, statements) for i, s in enumerate(SECRETS))
    assert a == b, (a, b)
    assert a[4] == ("rows", "[(20,)]"), a[4]
    assert a[5] == ("rows", "[(0, 'c0', '[US_SSN]'), (1, 'c1', '[US_SSN]')]"), a[5]
    assert a[6:] == [("rows", "[(3,)]"), ("rows", "[(1,)]"), ("rows", "[(1,)]")], a[5:]


def test_duckdb_columns_star_in_a_predicate_over_a_table_that_gained_a_column(tmp_path: Path) -> None:
    """DuckDB's ``WHERE COLUMNS(*)::VARCHAR NOT LIKE '5%'`` tests every column, the one another connection added
    too: 18 rows for one SSN, 19 for another while masking knew ``u`` as ``(id, code)``. Refused alike now."""
    sql = "SELECT count(*) FROM u WHERE COLUMNS(*)::VARCHAR NOT LIKE '5%'"
    raw = [_column_added_meanwhile("duckdb", tmp_path / f"raw{i}.db", s, [sql], governed=False)
           for i, s in enumerate(SECRETS)]
    assert raw[0][-1] != raw[1][-1], raw
    a, b = (_column_added_meanwhile("duckdb", tmp_path / f"gov{i}.db", s, [sql]) for i, s in enumerate(SECRETS))
    assert a == b, (a, b)
    assert a[-1][0] == "refused" and "u.info" in a[-1][2], a
