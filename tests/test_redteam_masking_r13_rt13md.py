"""Red-team round 13 over masking on MariaDB (PyMySQL, aiomysql): a prompt-injected agent in production with zero
configuration, no unmask grant.

* ``EXPLAIN EXTENDED SELECT full_name, birth_date FROM t WHERE id = 1`` runs (its plan rows are masked whole), and
  leaves a Note 1003: the statement as the optimizer rewrote it, where every column of a table read by its key is
  written in as a constant, ``select 'Alice Martin' AS `full_name`,'1985-03-02' AS `birth_date` from `t` where
  1``. ``SHOW WARNINGS`` (PyMySQL's ``show_warnings()``, aiomysql's repeated warnings) blanked conversion echoes
  and detected items only: the SSN went, the name and the date of birth came back in clear. Such a note is
  withheld whole now (decision 0274).

* Classification samples a table on the caller's own session, so the sample sees what the session sees. An agent
  inserts innocent rows, deletes the rows that hold values (each write bounded) and, still in its transaction,
  makes masking read the table again (``USE test``, ``CREATE TEMPORARY TABLE``, even a refused ``DROP``): the
  sample reads innocent text, the labels call the plainly named columns innocent, and after ``ROLLBACK`` the SSNs
  come back in clear and ``WHERE tax_ref = '536-22-8726'`` counts a guess. The same from a second session, with the
  first one at READ UNCOMMITTED. A sample that may see uncommitted rows now counts as failed (decision 0264: no
  evidence of innocence), and READ UNCOMMITTED is refused to masked identities (decision 0275).

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
connection shows that the same statements tell them apart. Look-alikes that reveal nothing keep running.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import governed_db
from governed_db.masking.messages import REWRITTEN_WITHHELD, scrub_diagnostic
from tests._redteam import CURIOUS_AGENT, govern, made_tables
from tests._redteam import rows_or_rules as _see
from tests.conftest import MYSQL_DB

COLUMNS = "(id int primary key, full_name varchar(100), birth_date date, tax_ref varchar(20), flags bit(8), city varchar(40))"
ROWS_A = [
    (1, "Alice Martin", "1985-03-02", "536-22-8726", 65, "Paris"),
    (2, "Ivan Petrov", "1990-01-01", "219-45-1234", 0, "Lyon"),
    (3, "Bob Stone", "1970-05-05", "412-77-9001", 0, "Rome"),
]
ROWS_B = [(1, "Amy Zedd", "1985-11-30", "287-65-4321", 66, "Paris"), *ROWS_A[1:]]
SECRETS = ("Alice", "Martin", "03-02", "536-22", "Amy", "Zedd", "11-30", "287-65")
EXPLAINED = "EXPLAIN EXTENDED SELECT full_name, birth_date, tax_ref, flags, city FROM {t} WHERE id = 1"


@pytest.fixture
def tables(mysql_conn: Any, unique: str) -> Iterator[Callable[[list[Any]], str]]:
    with made_tables(mysql_conn, f"rt13md_{unique}_") as make:
        yield lambda rows: make(COLUMNS, rows)


def _notes(conn: Any, table: str, via: str) -> Any:
    """The EXPLAIN's warnings as the caller reads them: ``SHOW WARNINGS`` or PyMySQL's ``show_warnings()``."""
    cur = conn.cursor()
    cur.execute(EXPLAINED.format(t=table))
    cur.fetchall()
    if via == "show_warnings()":
        rows = conn.show_warnings()
    else:
        cur.execute(via)
        rows = cur.fetchall()
    return [tuple(r) for r in rows]


def _copies(mysql_kw: dict[str, Any], pair: dict[str, str], via: str, governed: bool) -> list[Any]:
    import pymysql

    out = []
    for copy in ("A", "B"):
        raw = pymysql.connect(autocommit=True, **mysql_kw)
        conn = govern(raw, CURIOUS_AGENT) if governed else raw
        try:
            # the table name differs between the copies: blank it so that only the values can differ
            out.append(repr(_notes(conn, pair[copy], via)).replace(pair[copy], "<t>"))
        finally:
            conn.close()
    return out


@pytest.mark.parametrize("via", ["SHOW WARNINGS", "SHOW WARNINGS LIMIT 1", "show_warnings()"])
def test_rewritten_statement_note_is_withheld(mysql_kw: dict[str, Any], tables: Any, via: str) -> None:
    pair = {"A": tables(ROWS_A), "B": tables(ROWS_B)}
    raw = _copies(mysql_kw, pair, via, governed=False)
    assert raw[0] != raw[1] and "Alice Martin" in raw[0] and "1985-03-02" in raw[0], raw  # the oracle exists
    seen = _copies(mysql_kw, pair, via, governed=True)
    assert seen[0] == seen[1], seen
    assert not any(s in "".join(seen) for s in SECRETS), seen
    assert seen[0] == repr([("Note", 1003, REWRITTEN_WITHHELD)]), seen  # level and code still say what it was


def test_aiomysql_rewritten_statement_note_is_withheld(mysql_kw: dict[str, Any], tables: Any) -> None:
    """aiomysql repeats a statement's warnings as Python warnings, and has its own ``show_warnings()``."""
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}
    pair = {"A": tables(ROWS_A), "B": tables(ROWS_B)}

    async def read(table: str) -> Any:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        try:
            cur = await conn.cursor()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                await cur.execute(EXPLAINED.format(t=table))
                await cur.fetchall()
            shown = await conn.show_warnings()
            return repr(([str(w.message) for w in caught], [tuple(r) for r in shown or ()])).replace(table, "<t>")
        finally:
            conn.close()

    seen = [asyncio.run(read(pair[c])) for c in ("A", "B")]
    assert seen[0] == seen[1], seen
    assert not any(s in "".join(seen) for s in SECRETS), seen
    assert REWRITTEN_WITHHELD in seen[0], seen


def test_warnings_look_alikes_keep_their_text(mysql_kw: dict[str, Any], tables: Any) -> None:
    """Warnings that quote no stored value read as the server wrote them; the EXPLAIN and plain reads still run."""
    import pymysql

    t = tables(ROWS_A)
    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1/0")
        assert cur.fetchall() == ((None,),)
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall() == (("Warning", 1365, "Division by 0"),)
        cur.execute("CREATE TEMPORARY TABLE IF NOT EXISTS rt13md_tmp (id int)")
        cur.execute("CREATE TEMPORARY TABLE IF NOT EXISTS rt13md_tmp (id int)")
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall() == (("Note", 1050, "Table 'rt13md_tmp' already exists"),)
        cur.execute(EXPLAINED.format(t=t))
        assert len(cur.fetchall()) == 1  # the plan itself (masked whole, as before)
        cur.execute(f"SELECT id, city FROM {t} WHERE id = 1")
        assert cur.fetchall() == ((1, "Paris"),)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "message",
    [
        "select 'Alice Martin' AS `full_name` from `test`.`t` where 1",
        "/* select#1 */ select (/* select#2 */ select 'Alice' from `test`.`t` where 1) AS `x`",
        "with c as (select `t`.`id` AS `id` from `t` where `t`.`id` = 1)select 'Alice' AS `n` from `t` where 1",
        "(select 'Alice' AS `n` from `t` where 1) union (select 'x' AS `x`)",
        "update `test`.`t` set `test`.`t`.`city` = 'x' where `test`.`t`.`id` = 1",
        "delete  from `test`.`t` where `test`.`t`.`id` = 1",
    ],
)
def test_optimizer_rewrites_are_withheld_whole(message: str) -> None:
    assert scrub_diagnostic(message) == REWRITTEN_WITHHELD


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("Division by 0", "Division by 0"),
        ("Select 2 was reduced during optimization", "Select 2 was reduced during optimization"),
        ("Unknown table 'test.x'", "Unknown table 'test.x'"),
        ("Truncated incorrect DOUBLE value: 'Alice Martin'", "Truncated incorrect DOUBLE value: '[REDACTED]'"),
    ],
)
def test_other_warnings_are_scrubbed_as_before(message: str, shown: str) -> None:
    assert scrub_diagnostic(message) == shown


# -- 0275: a sample that sees uncommitted rows ---------------------------------------------------------------------
PLAIN = "(id int primary key, contact varchar(100), tax_ref varchar(20), city varchar(40))"
PLAIN_A = [
    (1, "alice@example.com", "536-22-8726", "Paris"),
    (2, "ivan@example.org", "219-45-1234", "Lyon"),
    (3, "bob@example.net", "412-77-9001", "Rome"),
]
PLAIN_B = [(1, "amy.zed@example.com", "287-65-4321", "Paris"), *PLAIN_A[1:]]
PLAIN_SECRETS = ("alice@", "536-22-8726", "amy.zed@", "287-65-4321")
INNOCENT = ", ".join(f"({i}, 'n/a', 'n/a', 'x')" for i in range(100, 150))
AFTER = [
    "SELECT id, contact, tax_ref FROM {t} WHERE id = 1",
    "SELECT id FROM {t} WHERE tax_ref = '536-22-8726'",
]


@pytest.fixture
def plain(mysql_conn: Any, unique: str) -> Iterator[Callable[[list[Any]], str]]:
    with made_tables(mysql_conn, f"rt13md_{unique}_p") as make:
        yield lambda rows: make(PLAIN, rows)


def _hide_and_restore(mysql_kw: dict[str, Any], table: str, trick: str, governed: bool) -> list[Any]:
    """In one transaction: innocent rows in, the rows holding values out, ``trick`` (masking reads the table
    again), a read of an innocent row (the sample), ROLLBACK; then ``AFTER``."""
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    conn = govern(raw, CURIOUS_AGENT) if governed else raw
    try:
        assert _see(conn, "START TRANSACTION") == 0
        assert _see(conn, f"INSERT INTO {table} (id, contact, tax_ref, city) VALUES {INNOCENT}") == 50
        for i in (1, 2, 3):
            assert _see(conn, f"DELETE FROM {table} WHERE id = {i}") == 1
        _see(conn, trick)
        assert _see(conn, f"SELECT id, city FROM {table} WHERE id = 100") == [(100, "x")]
        assert _see(conn, "ROLLBACK") == 0
        return [_see(conn, sql.format(t=table)) for sql in AFTER]
    finally:
        conn.close()


@pytest.mark.parametrize("trick", ["USE {db}", "CREATE TEMPORARY TABLE rt13md_tmp (i int)", "DROP TEMPORARY TABLE IF EXISTS rt13md_x"])
def test_a_sample_of_rows_rolled_back_is_no_evidence(mysql_kw: dict[str, Any], plain: Any, trick: str) -> None:
    trick = trick.format(db=MYSQL_DB)  # (the id stays the same in every test process)
    tables = {"A": plain(PLAIN_A), "B": plain(PLAIN_B)}
    raw = [_hide_and_restore(mysql_kw, tables[c], trick, governed=False) for c in ("A", "B")]
    assert raw[0] != raw[1], raw
    seen = [_hide_and_restore(mysql_kw, tables[c], trick, governed=True) for c in ("A", "B")]
    assert seen[0] == seen[1], seen
    assert not any(secret in repr(seen) for secret in PLAIN_SECRETS), seen
    assert seen[0][1] == "refused: ['masked-column-predicate']", seen


def _read_dirty(mysql_kw: dict[str, Any], table: str, reader: Any) -> list[Any]:
    """A second session of the agent's hides the values in an open transaction while ``reader`` (at READ
    UNCOMMITTED) reads an innocent row, then rolls back; ``reader`` runs ``AFTER``."""
    import pymysql

    hider = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        assert _see(hider, "START TRANSACTION") == 0
        assert _see(hider, f"INSERT INTO {table} (id, contact, tax_ref, city) VALUES {INNOCENT}") == 50
        for i in (1, 2, 3):
            assert _see(hider, f"DELETE FROM {table} WHERE id = {i}") == 1
        _see(reader, f"SELECT id, city FROM {table} WHERE id = 100")
        assert _see(hider, "ROLLBACK") == 0
        return [_see(reader, sql.format(t=table)) for sql in AFTER]
    finally:
        hider.close()


def test_a_session_at_read_uncommitted_samples_nothing(mysql_kw: dict[str, Any], plain: Any) -> None:
    """A session opened at READ UNCOMMITTED (the server's default, or the application's connect options)."""
    import pymysql

    tables = {"A": plain(PLAIN_A), "B": plain(PLAIN_B)}
    dirty = "SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED"
    seen: list[Any] = []
    for governed in (False, True):
        for c in ("A", "B"):
            raw = pymysql.connect(autocommit=True, init_command=dirty, **mysql_kw)
            reader = govern(raw, CURIOUS_AGENT) if governed else raw
            try:
                seen.append(_read_dirty(mysql_kw, tables[c], reader))
            finally:
                reader.close()
    assert seen[0] != seen[1], seen  # the raw sessions tell the copies apart
    assert seen[2] == seen[3], seen
    assert not any(secret in repr(seen[2:]) for secret in PLAIN_SECRETS), seen
    assert seen[2][1] == "refused: ['masked-column-predicate']", seen


@pytest.mark.parametrize(
    "sql",
    [
        "SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
        "SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
        "SET SESSION TRANSACTION READ WRITE, ISOLATION LEVEL READ UNCOMMITTED",
        "SET tx_isolation = 'READ-UNCOMMITTED'",
        "SET SESSION tx_isolation = 0",
        "SET @@session.tx_isolation = @level",
    ],
)
def test_read_uncommitted_is_refused(mysql_kw: dict[str, Any], sql: str) -> None:
    import pymysql

    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        assert "'masked-column-predicate'" in _see(conn, sql)
        assert _see(conn, "SELECT @@tx_isolation") == [("REPEATABLE-READ",)]
    finally:
        conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "SET tx_isolation = 'REPEATABLE-READ'",
        "SET TRANSACTION READ ONLY",
    ],
)
def test_other_isolation_levels_run(mysql_kw: dict[str, Any], sql: str) -> None:
    import pymysql

    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        assert _see(conn, sql) == 0
    finally:
        conn.close()


def test_writes_in_a_transaction_look_alikes(mysql_kw: dict[str, Any], plain: Any) -> None:
    """Reads and filters keep running in a transaction that wrote (tables sampled before the write), and, once it
    ends, on a table first sampled while it was open; a transaction that only reads (PyMySQL's default, no
    autocommit) filters as before."""
    import pymysql

    first, later = plain(PLAIN_A), plain([(1, "n/a", "n/a", "Paris"), (2, "n/a", "n/a", "Lyon")])
    conn = govern(pymysql.connect(**mysql_kw), CURIOUS_AGENT)  # autocommit off: every statement is in a transaction
    try:
        assert _see(conn, f"SELECT id FROM {first} WHERE city = 'Lyon'") == [(2,)]
        assert _see(conn, f"UPDATE {first} SET city = 'Nice' WHERE id = 2") == 1
        assert _see(conn, f"SELECT id, city FROM {first} WHERE city = 'Nice'") == [(2, "Nice")]
        assert _see(conn, f"SELECT id, city FROM {later} WHERE id = 1") == [(1, "Paris")]
        conn.commit()
        assert _see(conn, f"SELECT id FROM {later} WHERE city = 'Lyon'") == [(2,)]
        assert _see(conn, f"SELECT id FROM {later} WHERE tax_ref = 'n/a' ORDER BY id") == [(1,), (2,)]
        conn.rollback()
    finally:
        conn.close()
    reader = govern(pymysql.connect(**mysql_kw), CURIOUS_AGENT)
    try:
        assert _see(reader, f"SELECT id FROM {later} WHERE tax_ref = 'n/a' ORDER BY id") == [(1,), (2,)]
    finally:
        reader.close()


def test_aiomysql_a_sample_of_rows_rolled_back_is_no_evidence(mysql_kw: dict[str, Any], plain: Any) -> None:
    """aiomysql reads the catalog (and samples) with ``await`` before a statement is judged: the same holds."""
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}
    tables = {"A": plain(PLAIN_A), "B": plain(PLAIN_B)}

    async def run(table: str, init: str | None) -> list[Any]:
        conn = govern(await aiomysql.connect(autocommit=True, init_command=init, **kw), CURIOUS_AGENT)
        try:
            async def see(sql: str) -> Any:
                cur = await conn.cursor()
                try:
                    await cur.execute(sql)
                    return [tuple(r) for r in await cur.fetchall()] if cur.description else cur.rowcount
                except governed_db.GuardrailViolation as e:
                    return f"refused: {sorted(e.decision.rules)}"

            if init is None:  # the session's own writes, rolled back
                await see("START TRANSACTION")
                assert await see(f"INSERT INTO {table} (id, contact, tax_ref, city) VALUES {INNOCENT}") == 50
                for i in (1, 2, 3):
                    assert await see(f"DELETE FROM {table} WHERE id = {i}") == 1
                await see("CREATE TEMPORARY TABLE rt13md_tmp (i int)")
                assert await see(f"SELECT id, city FROM {table} WHERE id = 100") == [(100, "x")]
                await see("ROLLBACK")
                return [await see(sql.format(t=table)) for sql in AFTER]
            import pymysql

            hider = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
            try:  # another session's, read at READ UNCOMMITTED
                assert _see(hider, "START TRANSACTION") == 0
                assert _see(hider, f"INSERT INTO {table} (id, contact, tax_ref, city) VALUES {INNOCENT}") == 50
                for i in (1, 2, 3):
                    assert _see(hider, f"DELETE FROM {table} WHERE id = {i}") == 1
                await see(f"SELECT id, city FROM {table} WHERE id = 100")
                assert _see(hider, "ROLLBACK") == 0
            finally:
                hider.close()
            return [await see(sql.format(t=table)) for sql in AFTER]
        finally:
            conn.close()

    for init in (None, "SET SESSION TRANSACTION ISOLATION LEVEL READ UNCOMMITTED"):
        seen = [asyncio.run(run(tables[c], init)) for c in ("A", "B")]
        assert seen[0] == seen[1], (init, seen)
        assert not any(secret in repr(seen) for secret in PLAIN_SECRETS), seen
        assert seen[0][1] == "refused: ['masked-column-predicate']", seen


def test_innocent_rows_placed_before_the_values_do_not_settle_the_table(mysql_kw: dict[str, Any], plain: Any) -> None:
    import pymysql

    tables = {"A": plain(PLAIN_A), "B": plain(PLAIN_B)}
    seen = []
    for c in ("A", "B"):
        agent = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
        try:
            for low in (-300, -200, -100):
                rows = ", ".join(f"({i}, 'n/a', 'n/a', 'x')" for i in range(low, low + 100))
                assert _see(agent, f"INSERT INTO {tables[c]} (id, contact, tax_ref, city) VALUES {rows}") == 100
        finally:
            agent.close()
        reader = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
        try:
            seen.append([_see(reader, sql.format(t=tables[c])) for sql in AFTER])
        finally:
            reader.close()
    assert seen[0] == seen[1], seen
    assert not any(secret in repr(seen) for secret in PLAIN_SECRETS), seen


@pytest.mark.parametrize("trick", ["CREATE TEMP TABLE rt13md_tmp (i int)", "DISCARD TEMP"])
def test_postgres_a_sample_of_rows_rolled_back_is_no_evidence(pg_dsn: str, pg_conn: Any, unique: str, trick: str) -> None:
    """The same on PostgreSQL (psycopg): the session's own uncommitted rows, a re-read forced by DDL or DISCARD."""
    import psycopg

    tables = {c: f"rt13md_{unique}_{c.lower()}" for c in ("A", "B")}
    try:
        for c, rows in (("A", PLAIN_A), ("B", PLAIN_B)):
            pg_conn.execute(f"CREATE TABLE {tables[c]} {PLAIN}")
            with pg_conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {tables[c]} VALUES (%s, %s, %s, %s)", rows)
        seen = []
        for c in ("A", "B"):
            conn = govern(psycopg.connect(pg_dsn, autocommit=True), CURIOUS_AGENT)
            try:
                _see(conn, "BEGIN")
                assert _see(conn, f"INSERT INTO {tables[c]} (id, contact, tax_ref, city) VALUES {INNOCENT}") == 50
                for i in (1, 2, 3):
                    assert _see(conn, f"DELETE FROM {tables[c]} WHERE id = {i}") == 1
                _see(conn, trick)
                assert _see(conn, f"SELECT id, city FROM {tables[c]} WHERE id = 100") == [(100, "x")]
                _see(conn, "ROLLBACK")
                seen.append([_see(conn, sql.format(t=tables[c])) for sql in AFTER])
            finally:
                conn.close()
        assert seen[0] == seen[1], seen
        assert not any(secret in repr(seen) for secret in PLAIN_SECRETS), seen
        assert seen[0][1] == "refused: ['masked-column-predicate']", seen
    finally:
        for t in tables.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {t}")
