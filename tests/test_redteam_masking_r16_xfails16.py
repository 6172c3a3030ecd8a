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
from pathlib import Path
from typing import Any

import pytest

from governed_db.masking.errors_order import CODE, ERROR_WITHHELD
from tests._redteam import AGENT, CURIOUS_AGENT, govern, made_tables, pg_connect
from tests._redteam import rows_or_rules as _see
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_placed_rows import INNOCENT, SECRET_ROWS, _copy, _lite_table, narrow

__all__ = ["narrow"]  # the fixture, shared with the round that found the leak (decision 0295)

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
    if sql.startswith(("DELETE", "UPDATE")):
        # such a write locks the rows it reads in SSN order as well: refused before it runs (decision 0366)
        refused = [seen[True, c] for c in ("A", "B")]
        assert all(k == "GuardrailViolation" and "InnoDB locks the rows" in str(a) for k, a in refused), seen
        return
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


# -- 0329: a filter first on a few-valued column's values past every bounded read --------------------------------
#: each statement is the agent's first on a new connection: nothing has read the rows past the sample yet
FIRST_FILTERS = [
    "SELECT id FROM t WHERE tax_ref = '536-22-8726'",
    "SELECT count(*) FROM t WHERE tax_ref > '5'",  # bisecting: 'n/a' sorts after every digit
    "SELECT count(*) FROM t WHERE tax_ref LIKE '536%'",
    "SELECT id FROM t WHERE tax_ref < 'a' ORDER BY tax_ref DESC LIMIT 1",  # which SSN sorts last
    "SELECT count(*) FROM t WHERE substr(tax_ref, 1, 1) = '5'",
    "SELECT count(*) FROM t a JOIN t b ON b.id = a.id AND a.tax_ref = '536-22-8726'",
]


def _first(path: Path, sql: str, governed: bool) -> Any:
    import sqlite3

    import governed_db

    conn = govern(sqlite3.connect(path), ATTACKER) if governed else sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.cursor().execute(sql).fetchall()]
    except governed_db.GuardrailViolation as e:
        return f"refused: {sorted(e.decision.rules)}"
    finally:
        conn.close()


@pytest.mark.parametrize("sql", FIRST_FILTERS)
def test_a_first_filter_on_values_past_every_read_is_refused(narrow: None, tmp_path: Path, sql: str) -> None:
    """Three SSNs in ``tax_ref`` behind 300 ``'n/a'`` rows, past every read of the sample: the raw connection
    answers a right guess (copy A) apart from a wrong one (copy B); governed, the first filter finds them first,
    and both copies are refused alike."""
    raw, seen = [], []
    for copy in ("A", "B"):
        path = tmp_path / f"{copy}.db"
        _lite_table(path, _copy(SECRET_ROWS, copy), 300)
        raw.append(_first(path, sql, False))
        seen.append(_first(path, sql, True))
    assert raw[0] != raw[1], raw  # the oracle
    assert seen[0] == seen[1] == "refused: ['masked-column-predicate']", seen


#: a status column whose values past every read are innocent (and more of them than the probe reads, below)
STATUS_FILTERS = [
    "SELECT count(*) FROM t WHERE status = 'archived'",
    "SELECT count(*) FROM t WHERE status > 'b'",
    "SELECT count(*) FROM t WHERE status LIKE 'on%'",
    "SELECT id, status FROM t WHERE status <> 'n/a' ORDER BY status, id LIMIT 3",
    "SELECT status, count(*) FROM t GROUP BY status ORDER BY status",
    "SELECT count(*) FROM t a JOIN t b ON a.status = b.status WHERE a.id = 5",
]


@pytest.mark.parametrize("varied", [False, True])
@pytest.mark.parametrize("sql", STATUS_FILTERS)
def test_innocent_first_filters_on_values_past_every_read_run(
    narrow: None, tmp_path: Path, sql: str, varied: bool
) -> None:
    """The same shapes on innocent values past every read (three words, or 150 distinct ones: more than the probe
    reads) run as their first statement and answer as the raw connection does."""
    words = [f"v {i}" for i in range(150)] if varied else ["archived", "on hold", "v 10.4.2"]
    rows = [(i, words[i % len(words)], f"order {i}", "Lyon") for i in range(1, 301)]
    path = tmp_path / "status.db"
    _lite_table(path, rows, 300, INNOCENT)
    assert _first(path, sql, True) == _first(path, sql, False), sql


def test_the_values_found_first_are_masked_and_then_refused_in_later_reads(narrow: None, tmp_path: Path) -> None:
    """After the first filter was refused, the column stays observed free text on that connection: its values read
    masked, and later filters are refused (both copies alike)."""
    import sqlite3

    import governed_db

    out = []
    for copy in ("A", "B"):
        path = tmp_path / f"{copy}.db"
        _lite_table(path, _copy(SECRET_ROWS, copy), 300)
        conn = govern(sqlite3.connect(path), ATTACKER)
        seen = []
        try:
            for sql in (FIRST_FILTERS[0], "SELECT id, tax_ref FROM t WHERE id = 1", FIRST_FILTERS[1]):
                try:
                    seen.append([tuple(r) for r in conn.cursor().execute(sql).fetchall()])
                except governed_db.GuardrailViolation as e:
                    seen.append(sorted(e.decision.rules))
        finally:
            conn.close()
        out.append(seen)
    assert out[0] == out[1], out
    assert out[0] == [["masked-column-predicate"], [(1, "[US_SSN]")], ["masked-column-predicate"]], out


def _server(kind: str, mysql_kw: dict[str, Any] | None) -> Any:
    if kind == "mysql":
        import pymysql

        return pymysql.connect(autocommit=True, **(mysql_kw or {}))
    return pg_connect("psycopg")


@pytest.mark.parametrize("kind", ["mysql", "postgres"])
def test_a_first_filter_past_every_read_is_refused_on_the_servers(
    narrow: None, request: pytest.FixtureRequest, unique: str, kind: str
) -> None:
    """The same on MariaDB (placed rows with lower keys) and PostgreSQL (placed rows stored first)."""
    mysql_kw = request.getfixturevalue("mysql_kw") if kind == "mysql" else None
    admin = _server(kind, mysql_kw)
    sql = ["SELECT id FROM {t} WHERE tax_ref = '536-22-8726'", "SELECT count(*) FROM {t} WHERE tax_ref > '5'"]
    innocent = "SELECT count(*) FROM {t} WHERE city = 'x'"
    try:
        with made_tables(admin) as make:
            columns = "(id int primary key, contact varchar(60), tax_ref varchar(40), city varchar(40))"
            raw, seen = [], []
            for copy in ("A", "B"):
                fillers = [(i, "n/a", "n/a", "x") for i in range(-300, 0)]
                t = make(columns, fillers + _copy(SECRET_ROWS, copy), f"xf16_{unique}_{copy.lower()}")
                for governed, out in ((False, raw), (True, seen)):
                    got = []
                    for s in (*sql, innocent):
                        conn = _server(kind, mysql_kw)
                        conn = govern(conn, ATTACKER) if governed else conn
                        try:
                            got.append(_see(conn, s.format(t=t)))
                        finally:
                            conn.close()
                    out.append(got)
        assert raw[0][:2] != raw[1][:2], raw  # the oracle: the guess, and which SSNs sort past '5'
        assert seen[0] == seen[1], seen
        refused = seen[0][0]
        assert isinstance(refused, str) and "masked-column-predicate" in refused, seen
        assert seen[0][2] == raw[0][2] == [(300,)], (seen, raw)  # a filter on the clear city runs
    finally:
        admin.close()


def test_a_lock_wait_beside_a_row_error_tells_no_order(mysql_kw: dict[str, Any], indexed: dict[str, str]) -> None:
    """A row another session holds locked fails with a lock wait, another row with its own error: which comes is
    the order again, so a lock wait is withheld alike (only errors no row can raise keep their code)."""
    import pymysql

    sql = "DELETE FROM {t} WHERE ssn IS NOT NULL AND CASE id WHEN 1 THEN (SELECT 1 FROM seq_1_to_2) ELSE 0 END = 7"
    seen = {}
    for governed in (False, True):
        for c in ("A", "B"):
            holder = pymysql.connect(autocommit=False, **mysql_kw)
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            try:
                with holder.cursor() as cur:
                    cur.execute(f"SELECT id FROM {indexed[c]} WHERE id = 3 FOR UPDATE")
                with raw.cursor() as cur:
                    cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
                conn = govern(raw, CURIOUS_AGENT) if governed else raw
                seen[governed, c] = _failure(conn, sql.format(t=indexed[c]))
            finally:
                holder.rollback()
                holder.close()
                raw.close()
    # the oracle: row 3 (locked) comes before row 1 in copy A (412 < 536), after it in copy B (287 < 412)
    assert seen[False, "A"][1][0] == 1205 and seen[False, "B"][1][0] == 1242, seen
    # the DELETE locks the rows it reads in SSN order: refused before it runs, alike (decision 0366)
    refused = [seen[True, c] for c in ("A", "B")]
    assert all(k == "GuardrailViolation" and "InnoDB locks the rows" in str(a) for k, a in refused), seen
