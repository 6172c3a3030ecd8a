"""Red-team round 12 over masking on MariaDB (PyMySQL, aiomysql): a prompt-injected agent in production with zero
configuration, no unmask grant.

* A table read as ``t FOR SYSTEM_TIME ALL`` (``AS OF``, ``BETWEEN``...) was sampled as sqlglot prints that FROM item,
  ``SELECT * FROM t FOR TIMESTAMP ALL LIMIT n``, which MariaDB rejects: the sample failed, the columns were classified
  by their names and types alone, and e-mails and SSNs held in columns with plain names came back in clear on a
  connection whose first read of the table was that one. ``SELECT id FROM t FOR SYSTEM_TIME ALL WHERE tax_ref =
  '536-22-8726'`` counted a guess. The same FROM item with ``PARTITION (p1)`` sampled only that partition, which the
  agent can fill with innocent rows: the labels, kept for the whole table, then let every later plain read of the
  other partitions through in clear. Catalog reads and samples name the table alone now (decision 0263).

* A system-versioned table keeps every row an UPDATE or DELETE replaced, and ``FOR SYSTEM_TIME ALL`` reads them;
  the sample read the current rows only. The agent inserts innocent rows (allowed), deletes the rows that hold the
  values one at a time (each a bounded write) and, on a new connection, reads them from the history in clear. A
  sample of such a table reads all of its row versions now (decision 0263).

* A sample that failed left a table's plainly named text columns unlabelled, in clear and filterable. The agent
  makes it fail with allowed statements: a SERIALIZABLE transaction (plain reads lock what they read) with a
  1-second lock wait, while another session holds row 2; the sample waits and fails, ``WHERE id = 1`` reads row 1
  alone. Such columns are now scanned as they pass and may not decide rows until a sample succeeds (decision 0264).

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
connection shows that the same statements tell them apart. Look-alikes that reveal nothing keep running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, made_tables

# plain column names: what they hold is known from their values only
COLUMNS = "(id int primary key, contact varchar(100), tax_ref varchar(20), city varchar(40))"
ROWS_A = [
    (1, "alice@example.com", "536-22-8726", "Paris"),
    (2, "ivan@example.org", "219-45-1234", "Lyon"),
    (3, "bob@example.net", "412-77-9001", "Rome"),
]
ROWS_B = [(1, "amy.zed@example.com", "287-65-4321", "Paris"), *ROWS_A[1:]]
SECRETS = ("alice@", "536-22-8726", "amy.zed@", "287-65-4321")
INNOCENT = ", ".join(f"({i}, 'n/a', 'n/a', 'x')" for i in range(100, 150))


def _see(conn: Any, sql: str) -> Any:
    """What the caller sees of one statement: column names and rows (or the row count), or the refusal."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        if cur.description is None:
            return cur.rowcount
        return [d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()]
    except governed_db.GuardrailViolation as e:
        return f"refused: {sorted(e.decision.rules)}"


@pytest.fixture
def make(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> Iterator[Callable[[str, list[Any]], str]]:
    """Make a table ``<COLUMNS> <options>`` holding ``rows``; each is dropped afterwards."""
    with made_tables(mysql_conn, f"rt12md_{unique}_") as make:
        yield lambda options, rows: make(f"{COLUMNS} {options}", rows)


def _fresh(mysql_kw: dict[str, Any]) -> Any:
    import pymysql

    return govern(pymysql.connect(autocommit=True, **mysql_kw))


def _raw(mysql_kw: dict[str, Any]) -> Any:
    import pymysql

    return pymysql.connect(autocommit=True, **mysql_kw)


def _oracle(mysql_kw: dict[str, Any], tables: dict[str, str], statements: list[str], governed: bool) -> list[Any]:
    """Each statement on a connection that has read nothing before, for copy A and copy B."""
    out = []
    for copy in ("A", "B"):
        for sql in statements:
            conn = _fresh(mysql_kw) if governed else _raw(mysql_kw)
            try:
                out.append((copy, sql, _see(conn, sql.format(t=tables[copy]))))
            finally:
                conn.close()
    return out


def _alike(seen: list[Any]) -> None:
    half = len(seen) // 2
    assert [s[2] for s in seen[:half]] == [s[2] for s in seen[half:]], seen
    assert not any(secret in repr([s[2] for s in seen]) for secret in SECRETS), seen
    first = seen[0][2]
    assert first[0] == ["id", "contact", "tax_ref"] and len(first[1]) == 1 and first[1][0][0] == 1, seen


def _differ(seen: list[Any]) -> None:
    half = len(seen) // 2
    assert [s[2] for s in seen[:half]] != [s[2] for s in seen[half:]], seen


# -- a FROM item's FOR SYSTEM_TIME / PARTITION made the sample fail or read part of the table ---------------------
VERSIONED_READS = [
    "SELECT id, contact, tax_ref FROM {t} FOR SYSTEM_TIME ALL WHERE id = 1 ORDER BY id, row_end",
    "SELECT id, contact, tax_ref FROM {t} FOR SYSTEM_TIME AS OF TIMESTAMP '2100-01-01 00:00:00' WHERE id = 1 ORDER BY id",
    "SELECT id FROM {t} FOR SYSTEM_TIME ALL WHERE tax_ref = '536-22-8726'",
]


def test_for_system_time_read_first_is_masked(mysql_kw: dict[str, Any], make: Any) -> None:
    tables = {"A": make("WITH SYSTEM VERSIONING", ROWS_A), "B": make("WITH SYSTEM VERSIONING", ROWS_B)}
    _differ(_oracle(mysql_kw, tables, VERSIONED_READS, governed=False))
    seen = _oracle(mysql_kw, tables, VERSIONED_READS, governed=True)
    _alike(seen)


def test_partition_read_first_does_not_label_the_table(mysql_kw: dict[str, Any], make: Any) -> None:
    options = "PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN MAXVALUE)"
    tables = {"A": make(options, ROWS_A), "B": make(options, ROWS_B)}
    seen = []
    for copy in ("A", "B"):
        agent = _fresh(mysql_kw)
        try:
            assert _see(agent, f"INSERT INTO {tables[copy]} (id, contact, tax_ref, city) VALUES {INNOCENT}") == 50
        finally:
            agent.close()
        agent = _fresh(mysql_kw)
        try:
            # the first read names the partition of innocent rows: its sample decided the whole table's labels
            first = _see(agent, f"SELECT id, city FROM {tables[copy]} PARTITION (p1) WHERE id = 100")
            assert first == (["id", "city"], [(100, "x")])  # the look-alike runs, exact
            seen.append(_see(agent, f"SELECT id, contact, tax_ref FROM {tables[copy]} WHERE id = 1"))
            seen.append(_see(agent, f"SELECT id FROM {tables[copy]} WHERE tax_ref = '536-22-8726'"))
        finally:
            agent.close()
    assert seen[:2] == seen[2:], seen
    assert seen[0][0] == ["id", "contact", "tax_ref"] and len(seen[0][1]) == 1, seen
    assert not any(secret in repr(seen) for secret in SECRETS), seen


def test_versioned_look_alikes_run(mysql_kw: dict[str, Any], mysql_conn: Any, make: Any) -> None:
    t = make("WITH SYSTEM VERSIONING", ROWS_A)
    agent = _fresh(mysql_kw)
    try:
        assert _see(agent, f"UPDATE {t} SET city = 'Nice' WHERE id = 1") == 1
        assert _see(agent, f"SELECT id, city FROM {t} FOR SYSTEM_TIME ALL WHERE city IN ('Paris', 'Nice') "
                           "ORDER BY id, row_end") == (["id", "city"], [(1, "Paris"), (1, "Nice")])
        assert _see(agent, f"SELECT count(*) FROM {t} FOR SYSTEM_TIME ALL") == (["count(*)"], [(4,)])
        assert _see(agent, f"SELECT id, city FROM {t} WHERE id = 2") == (["id", "city"], [(2, "Lyon")])
    finally:
        agent.close()


# -- the history of a system-versioned table: rows the sample never read ------------------------------------------
def _emptied(mysql_kw: dict[str, Any], table: str) -> None:
    """The agent's allowed writes: innocent rows in, the rows that hold the values out, one at a time."""
    agent = _fresh(mysql_kw)
    try:
        assert _see(agent, f"INSERT INTO {table} (id, contact, tax_ref, city) VALUES {INNOCENT}") == 50
        for i in (1, 2, 3):
            assert _see(agent, f"DELETE FROM {table} WHERE id = {i}") == 1
    finally:
        agent.close()


HISTORY_READS = [
    "SELECT id, contact, tax_ref FROM {t} FOR SYSTEM_TIME ALL WHERE id = 1 ORDER BY id, row_end",
    "SELECT id FROM {t} FOR SYSTEM_TIME ALL WHERE tax_ref = '536-22-8726'",
    "SELECT id FROM {t} FOR SYSTEM_TIME ALL WHERE contact LIKE 'alice%'",
]


def test_history_of_deleted_rows_is_masked(mysql_kw: dict[str, Any], make: Any) -> None:
    tables = {"A": make("WITH SYSTEM VERSIONING", ROWS_A), "B": make("WITH SYSTEM VERSIONING", ROWS_B)}
    for t in tables.values():
        _emptied(mysql_kw, t)
    _differ(_oracle(mysql_kw, tables, HISTORY_READS, governed=False))
    seen = _oracle(mysql_kw, tables, HISTORY_READS, governed=True)
    _alike(seen)
    # the innocent rows still read exactly, from now and from history
    agent = _fresh(mysql_kw)
    try:
        t = tables["A"]
        assert _see(agent, f"SELECT id, city FROM {t} FOR SYSTEM_TIME ALL WHERE id IN (1, 100) ORDER BY id") == (
            ["id", "city"], [(1, "Paris"), (100, "x")]
        )
        assert _see(agent, f"SELECT count(*) FROM {t} WHERE city = 'x'") == (["count(*)"], [(50,)])
    finally:
        agent.close()


def test_aiomysql_for_system_time_read_first_is_masked(mysql_kw: dict[str, Any], make: Any) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}
    tables = {"A": make("WITH SYSTEM VERSIONING", ROWS_A), "B": make("WITH SYSTEM VERSIONING", ROWS_B)}
    for t in tables.values():
        _emptied(mysql_kw, t)

    async def read(sql: str) -> Any:
        conn = govern(await aiomysql.connect(autocommit=True, **kw))
        try:
            cur = await conn.cursor()
            try:
                await cur.execute(sql)
            except governed_db.GuardrailViolation as e:
                return f"refused: {sorted(e.decision.rules)}"
            return [d[0] for d in cur.description], [tuple(r) for r in await cur.fetchall()]
        finally:
            conn.close()

    seen = [(c, s, asyncio.run(read(s.format(t=tables[c])))) for c in ("A", "B") for s in HISTORY_READS]
    _alike(seen)


def test_classify_lists_system_versioned_tables(mysql_kw: dict[str, Any], make: Any) -> None:
    """``governed-db classify`` of the whole database labels a system-versioned table too, from every row version."""
    from governed_db.masking.scan import classify_database

    t = make("WITH SYSTEM VERSIONING", ROWS_A)
    _emptied(mysql_kw, t)
    raw = _raw(mysql_kw)
    try:
        catalog = classify_database(raw, "mysql")
    finally:
        raw.close()
    assert t in catalog.tables, sorted(catalog.tables)
    assert catalog.lookup(t, "tax_ref") is not None and catalog.lookup(t, "tax_ref").label, catalog.tables[t]
    assert not catalog.lookup(t, "city").label, catalog.tables[t]


# -- 0264: a sample the session's own state makes fail ------------------------------------------------------------
LOCKED_READS = [
    "SELECT id, contact, tax_ref FROM {t} WHERE id = 1",
    "SELECT id FROM {t} WHERE id = 1 AND tax_ref = '536-22-8726'",
    "SELECT id, city FROM {t} WHERE id = 1",
]


def _while_locked(mysql_kw: dict[str, Any], table: str, conn: Any) -> list[Any]:
    """``LOCKED_READS`` in a SERIALIZABLE transaction (plain reads lock what they read) with a 1-second lock wait,
    while another session holds row 2: the sample of the table times out; the statements read row 1 only."""
    locker = _raw(mysql_kw)
    try:
        held = locker.cursor()
        held.execute("START TRANSACTION")
        held.execute(f"UPDATE {table} SET city = 'Lyon 2' WHERE id = 2")
        for sql in ("SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                    "SET SESSION innodb_lock_wait_timeout = 1", "START TRANSACTION"):
            conn.cursor().execute(sql)
        try:
            return [_see(conn, sql.format(t=table)) for sql in LOCKED_READS]
        finally:
            conn.rollback()
    finally:
        locker.rollback()
        locker.close()


def test_a_sample_that_times_out_masks_and_refuses(mysql_kw: dict[str, Any], make: Any) -> None:
    tables = {"A": make("", ROWS_A), "B": make("", ROWS_B)}
    raw = [_while_locked(mysql_kw, tables[c], _raw(mysql_kw)) for c in ("A", "B")]
    assert raw[0][:2] != raw[1][:2], raw
    seen = []
    for c in ("A", "B"):
        conn = _fresh(mysql_kw)
        try:
            seen.append(_while_locked(mysql_kw, tables[c], conn))
        finally:
            conn.close()
    assert seen[0] == seen[1], seen
    assert not any(secret in repr(seen) for secret in SECRETS), seen
    assert seen[0][1] == "refused: ['masked-column-predicate']", seen
    assert seen[0][2] == (["id", "city"], [(1, "Paris")]), seen  # the innocent column still reads exactly
