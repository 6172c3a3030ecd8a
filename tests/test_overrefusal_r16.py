"""Over-refusals after red-team round 16 (decision 0332): innocent statements an agent runs on tables with PII.

An agent (no unmask grant) doing ordinary work must get what the raw connection gives wherever a statement cannot
reveal anything about a masked value. Two round-16 refusals reached past their leak:

* MariaDB: an ``INSERT ... VALUES`` into a table with an index on a masked column had its error withheld (decision
  0328: one class, code 1105 and a blank message), so a duplicate key was no ``IntegrityError`` any more. Its rows
  come in the order the caller wrote them and stored rows are looked up by key: nothing comes in a read order.
* PostgreSQL: ``ADD FOREIGN KEY (pid) REFERENCES parent`` (no column list: the parent's primary key) was refused
  when the parent had a UNIQUE key on a masked column (decision 0321 counted every unique key's columns).

Each test also shows the leak its decision closed stays closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

import governed_db
from governed_db.masking.errors_order import CODE
from tests._redteam import AGENT, govern, made_tables

COLUMNS = "(id int primary key, email varchar(100), full_name varchar(100), ssn varchar(20), status varchar(20))"
ROWS = [
    (1, "alice.martin@example.com", "Alice Martin", "536-22-8726", "new"),
    (2, "ivan.petrov@example.org", "Ivan Petrov", "219-45-1234", "old"),
    (3, "bob.stone@example.net", "Bob Stone", "412-77-9001", "new"),
]


def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    with closing(conn.cursor()) as cur:
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]


def _error(conn: Any, sql: str) -> tuple[type[BaseException], Any]:
    with closing(conn.cursor()) as cur, pytest.raises(Exception) as caught:
        cur.execute(sql)
    return type(caught.value), caught.value.args[0]


# ---- MariaDB: an INSERT ... VALUES reads nothing in a masked order (0328's withholding does not apply) ---------
@pytest.fixture
def people(mysql_conn: Any, unique: str) -> Iterator[tuple[str, str]]:
    """Two identical tables of people with an index on ``ssn`` (one for the raw side, one for the governed side)."""
    with made_tables(mysql_conn) as make:
        pair = (make(COLUMNS, ROWS, f"or16_{unique}_r"), make(COLUMNS, ROWS, f"or16_{unique}_g"))
        with closing(mysql_conn.cursor()) as cur:
            for t in pair:
                cur.execute(f"CREATE INDEX {t}_ssn ON {t} (ssn)")
                cur.execute(f"INSERT INTO {t} (id, status) SELECT seq, 'x' FROM seq_100_to_299")
        yield pair


@pytest.fixture
def governed_mysql(mysql_kw: dict[str, Any]) -> Iterator[Any]:
    import pymysql

    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), AGENT)
    yield conn
    conn.close()


def test_mariadb_insert_values_keeps_its_duplicate_key_error(
    mysql_conn: Any, governed_mysql: Any, people: tuple[str, str]
) -> None:
    """A duplicate key in an INSERT ... VALUES is the driver's IntegrityError 1062 through the governed connection,
    as on the raw one, and writes nothing on either."""
    raw_t, gov_t = people
    sql = "INSERT INTO {t} (id, status) VALUES (7, 'new'), (1, 'x')"
    raw_class, raw_code = _error(mysql_conn, sql.format(t=raw_t))
    gov_class, gov_code = _error(governed_mysql, sql.format(t=gov_t))
    assert (gov_class, gov_code) == (raw_class, raw_code) == (raw_class, 1062)
    assert raw_class.__name__ == "IntegrityError"
    count = "SELECT count(*), sum(id) FROM {t}"
    assert _rows(mysql_conn, count.format(t=gov_t)) == _rows(mysql_conn, count.format(t=raw_t))


def test_mariadb_insert_values_upsert_runs_as_raw(
    mysql_conn: Any, governed_mysql: Any, people: tuple[str, str]
) -> None:
    """An upsert of VALUES rows counts and stores what it does on the raw connection."""
    raw_t, gov_t = people
    sql = "INSERT INTO {t} (id, status) VALUES (1, 'done'), (8, 'new') ON DUPLICATE KEY UPDATE status = VALUES(status)"
    counts = []
    for conn, t in ((mysql_conn, raw_t), (governed_mysql, gov_t)):
        with closing(conn.cursor()) as cur:
            cur.execute(sql.format(t=t))
            counts.append(cur.rowcount)
    assert counts[0] == counts[1] == 3
    state = "SELECT id, status FROM {t} WHERE id IN (1, 8) ORDER BY id"
    assert _rows(mysql_conn, state.format(t=gov_t)) == _rows(mysql_conn, state.format(t=raw_t)) == [
        (1, "done"),
        (8, "new"),
    ]


def test_mariadb_insert_select_in_read_order_still_withheld(
    mysql_conn: Any, governed_mysql: Any, people: tuple[str, str]
) -> None:
    """An INSERT that reads the table (its SELECT walks the index on ssn) keeps 0328's withholding."""
    raw_t, gov_t = people
    sql = (
        "INSERT INTO {t} (id, status) SELECT id + 1000, 'x' FROM {t} WHERE ssn IS NOT NULL AND "
        "CASE id WHEN 1 THEN (SELECT 1 FROM seq_1_to_2) WHEN 3 THEN EXP(1000) ELSE 0 END = 7"
    )
    assert _error(mysql_conn, sql.format(t=raw_t))[1] in (1242, 1690)
    gov_class, gov_code = _error(governed_mysql, sql.format(t=gov_t))
    assert (gov_class.__name__, gov_code) == ("OperationalError", CODE)
    assert _rows(mysql_conn, f"SELECT count(*) FROM {gov_t} WHERE id > 1000") == [(0,)]


@pytest.mark.parametrize(
    "sql,code",
    [
        ("UPDATE {t} SET status = 'a status far too long for its column' WHERE id = 1", 1406),
        ("UPDATE {t} SET status = 'x' WHERE id = 2 AND EXP(1000) > 1", 1690),
        ("SELECT id, email FROM {t} WHERE id = 1 AND EXP(1000) > 1", 1690),
        ("DELETE FROM {t} WHERE id = 3 AND EXP(1000) > 1", 1690),
    ],
    ids=["update-too-long", "update-overflow", "select-overflow", "delete-overflow"],
)
def test_mariadb_one_row_by_its_key_keeps_its_error(
    mysql_conn: Any, governed_mysql: Any, people: tuple[str, str], sql: str, code: int
) -> None:
    """A statement of one table that names one row by its key reads that row alone: its error keeps its class and
    code (a value too long, an overflow), as on the raw connection, and the row is unchanged."""
    raw_t, gov_t = people
    raw_class, raw_code = _error(mysql_conn, sql.format(t=raw_t))
    assert _error(governed_mysql, sql.format(t=gov_t)) == (raw_class, raw_code) == (raw_class, code)
    state = "SELECT id, status FROM {t} WHERE id < 100 ORDER BY id"
    assert _rows(mysql_conn, state.format(t=gov_t)) == _rows(mysql_conn, state.format(t=raw_t))


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE {t} SET status = 'a status far too long for its column' WHERE id IN (1, 2)",
        "SELECT id FROM {t} WHERE id = 1 AND (SELECT 1 FROM seq_1_to_2) = 1",
        "SELECT id FROM {t} WHERE ssn IS NOT NULL AND EXP(1000) > 1",
    ],
    ids=["two-keys", "subquery", "no-key"],
)
def test_mariadb_more_than_one_row_stays_withheld(
    mysql_conn: Any, governed_mysql: Any, people: tuple[str, str], sql: str
) -> None:
    """Not one row by a whole key (two keys, a subquery, a filter on ssn): 0328's withholding stands."""
    raw_t, gov_t = people
    assert _error(mysql_conn, sql.format(t=raw_t))[1] != CODE
    gov_class, gov_code = _error(governed_mysql, sql.format(t=gov_t))
    assert (gov_class.__name__, gov_code) == ("OperationalError", CODE)


# ---- PostgreSQL: REFERENCES parent (no column list) names the parent's primary key only --------------------------
PARENT = "(id int primary key, email text unique, full_name text, ssn text)"
PARENT_ROWS = [(r[0], r[1], r[2], r[3]) for r in ROWS]


@pytest.fixture
def staging_pg(pg_dsn: str) -> Iterator[Any]:
    import psycopg

    conn = govern(psycopg.connect(pg_dsn, autocommit=True), AGENT, environment="staging")
    yield conn
    conn.close()


def test_pg_foreign_key_without_columns_references_the_primary_key(
    pg_conn: Any, staging_pg: Any, unique: str
) -> None:
    """``ADD FOREIGN KEY (pid) REFERENCES parent`` checks child ids against the parent's clear primary key: it runs
    for the agent in staging (a UNIQUE key on the masked email does not count) and adds the same constraint."""
    with made_tables(pg_conn) as make:
        parent = make(PARENT, PARENT_ROWS, f"or16_{unique}_p")
        child = make("(id int primary key, pid int)", [(1, 1), (2, 3)], f"or16_{unique}_c")
        with closing(staging_pg.cursor()) as cur:
            cur.execute(f"ALTER TABLE {child} ADD CONSTRAINT {child}_fk FOREIGN KEY (pid) REFERENCES {parent}")
        found = _rows(
            pg_conn,
            "SELECT a.attname::text FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.confrelid "
            f"AND a.attnum = ANY (c.confkey) WHERE c.conname = '{child}_fk'",
        )
        assert found == [("id",)]
        with closing(pg_conn.cursor()) as cur:
            cur.execute(f"DROP TABLE {child}")


def test_pg_foreign_key_without_columns_to_a_masked_primary_key_still_refused(
    pg_conn: Any, staging_pg: Any, unique: str
) -> None:
    """A parent whose primary key is the masked SSN: the same statement tests guesses against it, and stays refused
    (decision 0321), while the raw connection tells a right guess from a wrong one."""
    with made_tables(pg_conn) as make:
        parent = make("(ssn text primary key, full_name text)", [(r[3], r[2]) for r in ROWS], f"or16_{unique}_sp")
        right = make("(id int, s text)", [(1, "536-22-8726")], f"or16_{unique}_right")
        wrong = make("(id int, s text)", [(1, "536-22-8727")], f"or16_{unique}_wrong")
        with closing(pg_conn.cursor()) as cur:
            cur.execute(f"ALTER TABLE {right} ADD FOREIGN KEY (s) REFERENCES {parent}")
            with pytest.raises(Exception, match="foreign key"):
                cur.execute(f"ALTER TABLE {wrong} ADD FOREIGN KEY (s) REFERENCES {parent}")
        with closing(staging_pg.cursor()) as cur, pytest.raises(governed_db.GuardrailViolation, match="masked-column"):
            cur.execute(f"ALTER TABLE {wrong} ADD FOREIGN KEY (s) REFERENCES {parent}")
        with closing(pg_conn.cursor()) as cur:
            cur.execute(f"DROP TABLE {right}")


# ---- look-alikes that run: the same answer and the same database state as the raw connection -------------------
STAGING = "(id int primary key, status varchar(20))"
#: (statement over ``{t}`` (people) and ``{s}`` (a staging table keyed by id), drivers it is written for)
LOOK_ALIKES = [
    ("SELECT status, count(*), sum(id) FROM {t} GROUP BY status ORDER BY status", "pg lite duck maria"),
    ("SELECT id, row_number() OVER (PARTITION BY status ORDER BY id DESC) FROM {t} ORDER BY id", "pg lite duck maria"),
    ("SELECT status, count(*) FROM {t} GROUP BY status UNION ALL SELECT 'total', count(*) FROM {t}", "pg lite duck maria"),
    ("WITH c AS (SELECT status, max(id) AS m FROM {t} GROUP BY status) SELECT * FROM c ORDER BY m", "pg lite duck maria"),
    ("UPDATE {t} SET status = 'done' WHERE id IN (1, 3) RETURNING id, status", "pg"),
    ("UPDATE {t} SET status = s.status FROM {s} s WHERE {t}.id = s.id", "pg lite duck"),
    ("UPDATE {t} SET status = s.status FROM {s} s WHERE {t}.id = s.id RETURNING {t}.id, {t}.status", "pg"),
    ("DELETE FROM {t} USING {s} s WHERE {t}.id = s.id RETURNING {t}.id", "pg"),
    ("DELETE FROM {t} USING {s} s WHERE {t}.id = s.id", "pg duck"),
    ("UPDATE {t} p JOIN {s} s ON p.id = s.id SET p.status = s.status", "maria"),
    ("INSERT INTO {t} (id, status) VALUES (9, 'new')", "pg lite duck maria"),
]


def _connect(driver: str, where: Any) -> Any:
    if driver == "pg":
        import psycopg

        return psycopg.connect(where, autocommit=True)
    if driver == "maria":
        import pymysql

        return pymysql.connect(autocommit=True, **where)
    if driver == "duck":
        duckdb = pytest.importorskip("duckdb")
        return duckdb.connect(where)
    import sqlite3

    return sqlite3.connect(where, isolation_level=None)


def _twin(driver: str, raw: Any, names: tuple[str, str, str, str]) -> None:
    """People (``names[0]``/``names[1]``) and staging tables (``names[2]``/``names[3]``), raw and governed twins."""
    mark = "%s" if driver in ("pg", "maria") else "?"
    with closing(raw.cursor()) as cur:
        for t in names[:2]:
            cur.execute(f"CREATE TABLE {t} {COLUMNS}")
            cur.executemany(f"INSERT INTO {t} VALUES ({', '.join([mark] * 5)})", ROWS)
        for s in names[2:]:
            cur.execute(f"CREATE TABLE {s} {STAGING}")
            cur.executemany(f"INSERT INTO {s} VALUES ({mark}, {mark})", [(2, "moved"), (3, "moved")])


def _place(request: Any, driver: str, tmp_path: Any) -> Any:
    if driver == "pg":
        return request.getfixturevalue("pg_dsn")
    if driver == "maria":
        return request.getfixturevalue("mysql_kw")
    return str(tmp_path / ("db.duckdb" if driver == "duck" else "db.sqlite"))


@pytest.mark.parametrize(
    "driver,sql",
    [(d, sql) for sql, drivers in LOOK_ALIKES for d in drivers.split()],
    ids=[f"{d}-{n}" for n, (_, drivers) in enumerate(LOOK_ALIKES) for d in drivers.split()],
)
def test_innocent_look_alikes_answer_as_raw(request: Any, tmp_path: Any, unique: str, driver: str, sql: str) -> None:
    """Reports, CTEs and keyed writes on a table with emails, names and SSNs: the agent gets the raw answer (rows
    or row count) and leaves the database as the raw connection does."""
    place = _place(request, driver, tmp_path)
    names = (f"or16_{unique}_rp", f"or16_{unique}_gp", f"or16_{unique}_rs", f"or16_{unique}_gs")
    raw = _connect(driver, place)
    gov = govern(_connect(driver, place), AGENT)
    try:
        _twin(driver, raw, names)
        seen = []
        for conn, t, s in ((raw, names[0], names[2]), (gov, names[1], names[3])):
            with closing(conn.cursor()) as cur:
                cur.execute(sql.format(t=t, s=s))
                seen.append(sorted(map(tuple, cur.fetchall())) if cur.description else cur.rowcount)
        assert seen[0] == seen[1]
        state = "SELECT id, email, full_name, ssn, status FROM {t} ORDER BY id"
        assert _rows(raw, state.format(t=names[1])) == _rows(raw, state.format(t=names[0]))
    finally:
        gov.close()
        with closing(raw.cursor()) as cur:
            for t in names:
                cur.execute(f"DROP TABLE IF EXISTS {t}")
        raw.close()


#: staging migrations on clear columns of a table with masked ones (PostgreSQL), each checked in the catalog after
MIGRATIONS = [
    ("ALTER TABLE {t} ADD COLUMN flag int NOT NULL DEFAULT 0", "SELECT count(*) FROM {t} WHERE flag = 0", [(3,)]),
    ("CREATE INDEX {t}_st ON {t} (status)", "SELECT count(*) FROM pg_indexes WHERE indexname = '{t}_st'", [(1,)]),
    ("ALTER TABLE {t} RENAME COLUMN status TO state", "SELECT count(*) FROM {t} WHERE state = 'new'", [(2,)]),
    ("ALTER TABLE {t} ALTER COLUMN status SET NOT NULL",
     "SELECT attnotnull FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attname = 'status'", [(True,)]),
    ("CLUSTER {t} USING {t}_pkey", "SELECT relhasindex FROM pg_class WHERE relname = '{t}'", [(True,)]),
    ("ALTER TABLE {s} ADD FOREIGN KEY (id) REFERENCES {t} (id)",
     "SELECT count(*) FROM pg_constraint WHERE conrelid = '{s}'::regclass AND contype = 'f'", [(1,)]),
]


@pytest.mark.parametrize("ddl,check,expected", MIGRATIONS, ids=[m[0].split()[0] + str(n) for n, m in enumerate(MIGRATIONS)])
def test_staging_migrations_on_clear_columns_run(
    pg_conn: Any, staging_pg: Any, unique: str, ddl: str, check: str, expected: list[tuple[Any, ...]]
) -> None:
    """An agent's schema change in staging that touches only clear columns runs (with its warning) and does what
    it says."""
    with made_tables(pg_conn) as make:
        t = make(COLUMNS, ROWS, f"or16_{unique}_m")
        s = make(STAGING, [(2, "moved")], f"or16_{unique}_ms")
        with closing(staging_pg.cursor()) as cur:
            cur.execute(ddl.format(t=t, s=s))
        assert _rows(pg_conn, check.format(t=t, s=s)) == expected
        with closing(pg_conn.cursor()) as cur:
            cur.execute(f"DROP TABLE {s}")
