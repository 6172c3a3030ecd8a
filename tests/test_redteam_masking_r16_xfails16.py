"""Round 16 on the strict xfails of issue #12: MariaDB errors raised in read order (decision 0328).

A statement stops at the first row whose evaluation fails. Over a table with an index on ``ssn`` (and rows
without one, which an agent may insert), ``... WHERE ssn IS NOT NULL AND CASE id WHEN 1 THEN (SELECT 1 FROM
seq_1_to_2) WHEN 3 THEN EXP(1000) ELSE 0 END = 7`` reads the rows in SSN order and raises the error of the row
whose SSN sorts first: ``1690`` (an overflow, row 3) when row 1's SSN is 536-..., ``1242`` (a subquery of two
rows, row 1) when it is 287-... — how a masked value sorts among the others and among guesses. Such errors are
now withheld (one class, code and message); errors the server raises before reading a row keep theirs.

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
connection shows that the same statements tell them apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from governed_db.masking.errors_order import CODE, ERROR_WITHHELD
from tests._redteam import AGENT, CURIOUS_AGENT, govern, made_tables
from tests._redteam import rows_or_rules as _see

COLUMNS = "(id int primary key, full_name varchar(100), ssn varchar(20), city varchar(40))"
ROWS_A = [
    (1, "Alice Martin-Fitzgerald", "536-22-8726", "Paris"),
    (2, "Ivan Petrov", "219-45-1234", "Lyon"),
    (3, "Bob Stone", "412-77-9001", "Rome"),
]
ROWS_B = [(1, "Amy Zedd", "287-65-4321", "Paris"), *ROWS_A[1:]]

#: a different error per row: a subquery of two rows for row 1, an overflow for row 3
FAILS_PER_ROW = "CASE id WHEN 1 THEN (SELECT 1 FROM seq_1_to_2) WHEN 3 THEN EXP(1000) ELSE 0 END = 7"
#: statements of every kind that read the rows through the index on ssn and fail at the first row read
FAILING = [
    "SELECT id FROM {t} WHERE ssn IS NOT NULL AND " + FAILS_PER_ROW,
    "SELECT count(*) FROM {t} WHERE ssn IS NOT NULL AND " + FAILS_PER_ROW,
    "SELECT id, max(CASE id WHEN 1 THEN (SELECT 1 FROM seq_1_to_2) WHEN 3 THEN EXP(1000) ELSE 0 END) AS m "
    "FROM {t} WHERE ssn IS NOT NULL GROUP BY id",
    "DELETE FROM {t} WHERE ssn IS NOT NULL AND " + FAILS_PER_ROW,
    "UPDATE {t} SET city = 'x' WHERE ssn IS NOT NULL AND " + FAILS_PER_ROW,
]


@pytest.fixture
def indexed(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Two tables differing only in row 1's name and SSN, an index on ``ssn`` and 2,900 rows without an SSN."""
    with made_tables(mysql_conn) as make:
        pair = {c: make(COLUMNS, rows, f"xf16_{unique}_{c.lower()}") for c, rows in (("A", ROWS_A), ("B", ROWS_B))}
        with mysql_conn.cursor() as cur:
            for t in pair.values():
                cur.execute(f"CREATE INDEX {t}_ssn ON {t} (ssn)")
                cur.execute(f"INSERT INTO {t} (id, city) SELECT seq, 'x' FROM seq_100_to_2999")
                cur.execute(f"ANALYZE TABLE {t}")
                cur.fetchall()
        yield pair


def _failure(conn: Any, sql: str, cursor: Any = None) -> tuple[str, Any]:
    import pymysql

    with pytest.raises(pymysql.MySQLError) as failed:
        cur = conn.cursor(cursor) if cursor is not None else conn.cursor()
        cur.execute(sql)
        cur.fetchall()
    return type(failed.value).__name__, failed.value.args


WITHHELD = ("OperationalError", (CODE, ERROR_WITHHELD))


@pytest.mark.parametrize("sql", FAILING)
def test_an_error_raised_in_read_order_is_withheld(
    mysql_kw: dict[str, Any], indexed: dict[str, str], sql: str
) -> None:
    import pymysql

    seen = {}
    for governed in (False, True):
        for c in ("A", "B"):
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            conn = govern(raw, CURIOUS_AGENT) if governed else raw
            try:
                seen[governed, c] = _failure(conn, sql.format(t=indexed[c]))
            finally:
                conn.close()
    # the oracle: 412 < 536 puts row 3 (an overflow) first in copy A, 287 < 412 row 1 (two rows) in copy B
    assert seen[False, "A"][1][0] == 1690 and seen[False, "B"][1][0] == 1242, seen
    assert seen[True, "A"] == seen[True, "B"] == WITHHELD, seen


def test_an_unbuffered_read_withholds_it_too(mysql_kw: dict[str, Any], indexed: dict[str, str]) -> None:
    """PyMySQL's unbuffered cursor: the error may come with the execute or with a fetch."""
    import pymysql

    seen = {}
    for governed in (False, True):
        for c in ("A", "B"):
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            conn = govern(raw, CURIOUS_AGENT) if governed else raw
            try:
                seen[governed, c] = _failure(conn, FAILING[0].format(t=indexed[c]), pymysql.cursors.SSCursor)
            finally:
                conn.close()
    assert seen[False, "A"][1][0] == 1690 and seen[False, "B"][1][0] == 1242, seen
    assert seen[True, "A"] == seen[True, "B"] == WITHHELD, seen


def test_aiomysql_errors_in_read_order_are_withheld(mysql_kw: dict[str, Any], indexed: dict[str, str]) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    import pymysql

    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def run(table: str, governed: bool) -> Any:
        raw = await aiomysql.connect(autocommit=True, **kw)
        conn = govern(raw, CURIOUS_AGENT) if governed else raw
        try:
            cur = await conn.cursor()
            with pytest.raises(pymysql.MySQLError) as failed:
                await cur.execute(FAILING[0].format(t=table))
            return type(failed.value).__name__, failed.value.args
        finally:
            conn.close()

    raw = [asyncio.run(run(indexed[c], False)) for c in ("A", "B")]
    assert raw[0][1][0] == 1690 and raw[1][1][0] == 1242, raw
    assert [asyncio.run(run(indexed[c], True)) for c in ("A", "B")] == [WITHHELD, WITHHELD]


#: errors raised before any row is read (the text alone decides them), over the same indexed table
STATIC_ERRORS = [
    ("SELECT id, no_such FROM {t} WHERE ssn IS NOT NULL", 1054, "OperationalError"),  # unknown column
    ("SELECT t.id FROM {t} t JOIN xf16_no_such n ON n.id = t.id WHERE t.ssn IS NOT NULL", 1146, "ProgrammingError"),
    ("SELECT id FROM {t} WHERE ssn IS NOT NULL AND no_such_fn(id) = 1", 1305, "OperationalError"),
    ("SELECT id FROM {t} a JOIN {t} b USING (city) WHERE a.ssn IS NOT NULL", 1052, "OperationalError"),  # ambiguous
    ("SELECT id FROM {t} WHERE ssn IS NOT NULL AND id = (SELECT 1, 2)", 4078, "OperationalError"),  # types
]


@pytest.mark.parametrize(("sql", "code", "kind"), STATIC_ERRORS)
def test_errors_the_text_decides_keep_their_class_and_code(
    mysql_kw: dict[str, Any], indexed: dict[str, str], sql: str, code: int, kind: str
) -> None:
    """An agent still sees what to fix in its SQL: the same class, code and message as raw."""
    import pymysql

    got = {}
    for governed in (False, True):
        raw = pymysql.connect(autocommit=True, **mysql_kw)
        conn = govern(raw, CURIOUS_AGENT) if governed else raw
        try:
            got[governed] = _failure(conn, sql.format(t=indexed["A"]))
        finally:
            conn.close()
    assert got[False][0] == kind and got[False][1][0] == code, got
    assert got[True] == got[False], got


def test_per_row_errors_without_a_masked_order_keep_their_class_and_code(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str
) -> None:
    """Over a table without an index on a masked column, or read by the key, the error the rows raise passes as
    raw: its order is the key's (or storage's), not a masked value's."""
    import pymysql

    with made_tables(mysql_conn) as make:
        plain = make(COLUMNS, ROWS_A, f"xf16_{unique}_plain")
        for sql in (FAILING[0], "SELECT id FROM {t} WHERE " + FAILS_PER_ROW, "SELECT id FROM {t} WHERE id = 1 AND "
                    + FAILS_PER_ROW):  # fmt: skip
            got = {}
            for governed in (False, True):
                raw = pymysql.connect(autocommit=True, **mysql_kw)
                conn = govern(raw, CURIOUS_AGENT) if governed else raw
                try:
                    got[governed] = _failure(conn, sql.format(t=plain))
                finally:
                    conn.close()
            assert got[False][1][0] in (1242, 1690) and got[True] == got[False], (sql, got)


def test_innocent_reads_of_the_indexed_table_run(mysql_kw: dict[str, Any], indexed: dict[str, str]) -> None:
    """The same shapes that do not fail keep running with their rows (the ssn column masked)."""
    import pymysql

    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        t = indexed["A"]
        assert _see(conn, f"SELECT id FROM {t} WHERE ssn IS NOT NULL AND CASE id WHEN 1 THEN 1 ELSE 0 END = 1") == [
            (1,)
        ]
        assert _see(conn, f"SELECT count(*) FROM {t} WHERE ssn IS NOT NULL") == [(3,)]
        assert _see(conn, f"SELECT id, city FROM {t} WHERE id < 4 ORDER BY id") == [
            (1, "Paris"), (2, "Lyon"), (3, "Rome")
        ]  # fmt: skip
    finally:
        conn.close()


def test_an_identity_with_an_unmask_grant_sees_the_error(mysql_kw: dict[str, Any], indexed: dict[str, str]) -> None:
    """Nothing is masked for it, so nothing is withheld: the error the server raised."""
    import pymysql

    from governed_db import Identity

    dba = Identity("dana", kind="human", roles=["dba"])
    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), dba, masking={"unmask": [{"role": "dba"}]})
    try:
        assert _failure(conn, FAILING[0].format(t=indexed["A"]))[1][0] == 1690
    finally:
        conn.close()
    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), AGENT)
    try:
        assert _failure(conn, FAILING[0].format(t=indexed["A"])) == WITHHELD
    finally:
        conn.close()
