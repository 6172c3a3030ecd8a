"""Red-team round 18 over masking on MariaDB (PyMySQL, aiomysql): a prompt-injected agent in production with zero
configuration and no unmask grant, with three sessions of its own.

* **The order a write locks rows in** (decision 0366). InnoDB locks each row as it reads it, before any sort: an
  ``UPDATE``/``DELETE`` (``ORDER BY id LIMIT`` too) or a ``SELECT ... FOR UPDATE`` whose condition names a column
  of an index that holds a masked column (``WHERE ssn IS NOT NULL``) walks that index and locks the rows in the
  order of the SSNs. With row 1 held by the agent's first session (``SELECT ... WHERE id = 1 FOR UPDATE``), the
  write in its second session waits at row 1 having locked the rows whose SSN sorts before it; the third session's
  ``SELECT id FROM t WHERE id IN (2, 3) FOR UPDATE SKIP LOCKED`` answered ``()`` over copy A (row 3's ``412-...``
  sorts before row 1's ``536-...``) and ``(3,)`` over copy B (``287-...`` before it) -- through governed sessions
  too: 0351 locks PostgreSQL's rows in key order first, MariaDB's were left as read. Decision 0328 withheld the
  error of the waiting write, not what the other sessions see. Such a statement is now refused where the masked
  index may be walked (a condition or a covering read of its columns), unless it names one row by a whole key.

* **An over-refusal on aiomysql** (decision 0368). Every UPDATE or DELETE of a table with masked columns was refused
  there (``masked-column-constraint``: "the constraints of t (unreadable)"), even ``UPDATE t SET city = 'b' WHERE id
  IN (1, 2)``, which runs through PyMySQL: the async warm-up traced the statement for its watched tables before it
  had read the table's constraints, so the trace found them unread and they counted as unreadable for a while.

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
sessions show that the same statements tell them apart. Look-alikes that cannot walk the masked index keep
running, and the table holds exactly what they changed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

import governed_db
from tests._redteam import CURIOUS_AGENT, govern, made_tables

COLUMNS = "(id int primary key, full_name varchar(100), ssn varchar(20), city varchar(40))"
ROWS_A = [
    (1, "Alice Martin-Fitzgerald", "536-22-8726", "Paris"),
    (2, "Ivan Petrov", "219-45-1234", "Lyon"),
    (3, "Bob Stone", "412-77-9001", "Rome"),
]
ROWS_B = [(1, "Amy Zedd", "287-65-4321", "Paris"), *ROWS_A[1:]]
#: the third session's look at which of rows 2 and 3 the write locked before it waited at row 1
PROBE = "SELECT id FROM {t} WHERE id IN (2, 3) FOR UPDATE SKIP LOCKED"


@pytest.fixture
def pair(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Two tables differing only in row 1's name and SSN, with an index on ``ssn`` and 90 rows without one (so
    ``ssn IS NOT NULL`` reads through the index)."""
    with made_tables(mysql_conn) as make:
        names = {c: make(COLUMNS, rows, f"rt18md_{unique}_{c.lower()}") for c, rows in (("A", ROWS_A), ("B", ROWS_B))}
        with mysql_conn.cursor() as cur:
            for t in names.values():
                cur.execute(f"CREATE INDEX {t}_ssn ON {t} (ssn)")
                cur.execute(f"INSERT INTO {t} (id, city) SELECT seq, 'x' FROM seq_100_to_189")
        yield names


def _run(conn: Any, sql: str) -> Any:
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()] if cur.description else cur.rowcount
    except governed_db.GuardrailViolation as e:
        assert e.decision is not None
        return f"refused: {sorted(e.decision.rules)}"
    except Exception as e:
        return type(e).__name__


def _waiting(admin: Any, conn_id: int) -> bool:
    with closing(admin.cursor()) as cur:
        cur.execute("SELECT count(*) FROM information_schema.INNODB_TRX "
                    "WHERE trx_mysql_thread_id = %s AND trx_state = 'LOCK WAIT'", (conn_id,))
        return bool(cur.fetchall()[0][0])


def _locked_before_wait(mysql_kw: dict[str, Any], admin: Any, table: str, write: str, governed: bool) -> Any:
    """Session 1 holds row 1; session 2 runs ``write`` (waiting at row 1, if it reaches it); session 3 then asks which
    of rows 2 and 3 are free. Everything is rolled back. Returns what session 3 saw (and session 2, if refused)."""
    import pymysql

    sessions = [pymysql.connect(autocommit=False, **mysql_kw) for _ in range(3)]
    raw_ids = [s.thread_id() for s in sessions]
    holder, writer, prober = (govern(s, CURIOUS_AGENT) if governed else s for s in sessions)
    seen: dict[str, Any] = {}
    try:
        _run(writer, "SET SESSION innodb_lock_wait_timeout = 10")
        assert _run(holder, f"SELECT id FROM {table} WHERE id = 1 FOR UPDATE") == [(1,)]
        worker = threading.Thread(target=lambda: seen.setdefault("write", _run(writer, write.format(t=table))))
        worker.start()
        deadline = time.monotonic() + 8
        while worker.is_alive() and not _waiting(admin, raw_ids[1]) and time.monotonic() < deadline:
            time.sleep(0.05)
        seen["probe"] = _run(prober, PROBE.format(t=table))
        prober.rollback()
        holder.rollback()
        worker.join()
        writer.rollback()
    finally:
        for s in sessions:
            s.close()
    return seen["probe"] if not str(seen.get("write")).startswith("refused") else (seen["write"], seen["probe"])


#: writes and locking reads whose condition walks the index on ``ssn``
LOCKING = [
    "UPDATE {t} SET city = 'b' WHERE ssn IS NOT NULL",
    "DELETE FROM {t} WHERE ssn IS NOT NULL",
    "UPDATE {t} SET city = 'b' WHERE ssn IS NOT NULL ORDER BY id LIMIT 5",
    "DELETE FROM {t} WHERE ssn IS NOT NULL ORDER BY id LIMIT 5",
    "SELECT count(*) FROM {t} WHERE ssn IS NOT NULL FOR UPDATE",
    # no condition on ssn: the index on it covers the read (EXPLAIN: type index, key <t>_ssn)
    "SELECT id FROM {t} WHERE id > 0 FOR UPDATE",
]


@pytest.mark.parametrize("write", LOCKING)
def test_the_order_a_write_locks_rows_in_tells_no_rank(
    mysql_kw: dict[str, Any], mysql_conn: Any, pair: dict[str, str], write: str
) -> None:
    raw = {c: _locked_before_wait(mysql_kw, mysql_conn, pair[c], write, False) for c in ("A", "B")}
    # the oracle: 219 < 412 < 536 locks rows 2 and 3 before row 1 in copy A, 219 < 287 only row 2 in copy B
    assert raw == {"A": [], "B": [(3,)]}, raw
    gov = {c: _locked_before_wait(mysql_kw, mysql_conn, pair[c], write, True) for c in ("A", "B")}
    assert gov["A"] == gov["B"], gov
    assert gov["A"] == ("refused: ['masked-column-predicate']", [(2,), (3,)]), gov


def test_the_refusal_says_why_and_what_to_do(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    import pymysql

    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        with pytest.raises(governed_db.GuardrailViolation) as refused:
            conn.cursor().execute(LOCKING[0].format(t=pair["A"]))
    finally:
        conn.close()
    text = str(refused.value)
    assert "locks" in text and "ssn" in text and "WHERE id IN" in text and "unmask grant" in text, text


def test_aiomysql_a_write_locking_in_masked_order_is_refused(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def run(table: str) -> Any:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        try:
            cur = await conn.cursor()
            try:
                await cur.execute(LOCKING[4].format(t=table))
            except governed_db.GuardrailViolation as e:
                return f"refused: {sorted(e.decision.rules)}"
            return cur.rowcount
        finally:
            conn.close()

    assert [asyncio.run(run(pair[c])) for c in ("A", "B")] == ["refused: ['masked-column-predicate']"] * 2


#: writes and locking reads that cannot walk the index on ``ssn``: by key, by a clear column, one row by its key;
#: each with the rows it changed or returned
LOOK_ALIKES = [
    ("UPDATE {t} SET city = 'b' WHERE city IN ('Paris', 'Rome', 'Lyon')", 3),
    ("UPDATE {t} SET city = 'b' WHERE id IN (1, 2, 3)", 3),
    ("UPDATE {t} SET city = 'b' WHERE id = 1 AND ssn IS NOT NULL", 1),
    ("UPDATE {t} SET full_name = NULL WHERE id BETWEEN 2 AND 3", 2),
    ("DELETE FROM {t} WHERE id BETWEEN 100 AND 109", 10),
    ("DELETE FROM {t} WHERE city = 'x' ORDER BY id LIMIT 4", 4),
    ("SELECT id, city FROM {t} WHERE id IN (1, 2) FOR UPDATE", [(1, "Paris"), (2, "Lyon")]),
    ("SELECT count(*) FROM {t} WHERE city = 'x' FOR UPDATE", [(90,)]),
]


@pytest.mark.parametrize(("sql", "expected"), LOOK_ALIKES, ids=[s for s, _ in LOOK_ALIKES])
def test_writes_that_cannot_walk_the_masked_index_run(
    mysql_kw: dict[str, Any], mysql_conn: Any, pair: dict[str, str], sql: str, expected: Any
) -> None:
    import pymysql

    t = pair["A"]
    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        assert _run(conn, sql.format(t=t)) == expected
    finally:
        conn.close()
    with closing(mysql_conn.cursor()) as cur:
        cur.execute(f"SELECT count(*), sum(city = 'b'), sum(full_name IS NULL) FROM {t}")
        after = cur.fetchall()[0]
    changed = expected if isinstance(expected, int) else 0
    if sql.startswith("UPDATE") and "full_name" not in sql:
        assert after[1] == changed, after
    elif sql.startswith("UPDATE"):
        assert after[2] == 90 + changed, after  # the 90 rows without a name, and the two named ones
    elif sql.startswith("DELETE"):
        assert after[0] == 93 - changed, after
    else:
        assert after[0] == 93 and not after[1], after


def test_aiomysql_writes_by_key_run_as_on_pymysql(mysql_kw: dict[str, Any], mysql_conn: Any, pair: dict[str, str]) -> None:
    """Writes of clear columns by key run through aiomysql as through PyMySQL, one after another on one session;
    a write giving a masked column a value stays refused on both."""
    aiomysql = pytest.importorskip("aiomysql")
    import pymysql

    t = pair["A"]
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}
    steps = [
        f"UPDATE {t} SET city = 'b' WHERE id IN (1, 2)",
        f"DELETE FROM {t} WHERE id = 150",
        f"UPDATE {t} SET city = 'c' WHERE id = 3",
        f"UPDATE {t} SET ssn = '111-11-1111' WHERE id = 2",
    ]

    async def run() -> list[Any]:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        seen: list[Any] = []
        try:
            cur = await conn.cursor()
            for sql in steps:
                try:
                    await cur.execute(sql)
                    seen.append(cur.rowcount)
                except governed_db.GuardrailViolation as e:
                    seen.append(f"refused: {sorted(e.decision.rules)}")
        finally:
            conn.close()
        return seen

    expected = [2, 1, 1, "refused: ['masked-column-constraint']"]
    assert asyncio.run(run()) == expected
    with closing(mysql_conn.cursor()) as cur:
        cur.execute(f"SELECT id, city, ssn FROM {t} WHERE id IN (1, 2, 3, 150) ORDER BY id")
        assert cur.fetchall() == ((1, "b", "536-22-8726"), (2, "b", "219-45-1234"), (3, "c", "412-77-9001"))
    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        again = [sql.replace("150", "151").replace("'b'", "'d'").replace("'c'", "'e'") for sql in steps]
        assert [_run(conn, sql) for sql in again] == expected  # new values: MariaDB counts changed rows
    finally:
        conn.close()
