"""Over-refusals of issue 12 on MariaDB (a curious agent in production, no unmask grant): a plain EXPLAIN over a
table with an index on a masked column (decision 0425), ``UPDATE IGNORE`` and ``LIMIT ROWS EXAMINED`` (decision
0426). Each innocent statement now runs and returns what it should, masked where due, with the table left as
it should be; its hostile neighbour is still refused and leaves the table as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

import governed_db
from tests._redteam import CURIOUS_AGENT, govern

ROWS = [(1, "Alice Smith", "536-22-8726", "Paris"), (2, "Bob Jones", "219-45-1234", "Lyon")]
SECRETS = ("536-22", "8726", "219-45", "1234")


def _run(conn: Any, sql: str) -> Any:
    with closing(conn.cursor()) as cur:
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()] if cur.description else cur.rowcount


def _refused(conn: Any, sql: str) -> str:
    with pytest.raises(governed_db.GuardrailViolation) as info:
        _run(conn, sql)
    assert not [s for s in SECRETS if s in str(info.value)]
    return str(info.value)


@pytest.fixture
def md(mysql_kw: dict[str, Any], unique: str) -> Iterator[tuple[Any, Any, str, str]]:
    """(raw admin session, the agent's governed session, table with an index on ssn, table without masked
    columns)."""
    import pymysql

    admin = pymysql.connect(autocommit=True, **mysql_kw)
    t, clear = f"g12_md_{unique}", f"g12_mdc_{unique}"
    _run(admin, f"CREATE TABLE {t} (id int primary key, full_name varchar(40), ssn varchar(20), "
                "city varchar(20), KEY (ssn), KEY (city))")  # fmt: skip
    _run(admin, f"INSERT INTO {t} VALUES " + ", ".join(f"({i}, '{n}', '{s}', '{c}')" for i, n, s, c in ROWS))
    _run(admin, f"CREATE TABLE {clear} (id int primary key, qty int, city varchar(20), UNIQUE KEY (city))")
    _run(admin, f"INSERT INTO {clear} VALUES (1, 5, 'Paris'), (2, 7, 'Lyon'), (3, 9, 'Nice')")
    gov = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        yield admin, gov, t, clear
    finally:
        gov.close()
        _run(admin, f"DROP TABLE IF EXISTS {t}, {clear}")
        admin.close()


def test_explain_over_an_index_on_a_masked_column_runs(md: tuple[Any, Any, str, str]) -> None:
    """A plain EXPLAIN of an allowed SELECT over a table with an index on ssn runs (it was refused: the ORDER BY the
    SELECT's rows need could not be written into the EXPLAIN's text); its plan is masked as over a table without
    that index, the id of each line clear."""
    admin, gov, t, _ = md
    for sql in (f"EXPLAIN SELECT id, city FROM {t} WHERE id = 1", f"EXPLAIN SELECT id, ssn FROM {t} WHERE city = 'Paris'",
                f"EXPLAIN EXTENDED SELECT id, full_name FROM {t}"):  # fmt: skip
        raw, seen = _run(admin, sql), _run(gov, sql)
        assert len(seen) == len(raw) == 1 and seen[0][0] == raw[0][0] == 1
        assert set(seen[0][1:]) <= {"[SENSITIVE]", None}  # cost-driven cells masked, as without the index
        assert not [s for s in SECRETS if s in repr(seen)]
    # the optimizer's rewritten statement, which quotes a row read by key, stays withheld
    _run(gov, f"EXPLAIN EXTENDED SELECT id, ssn FROM {t} WHERE id = 1")
    notes = _run(gov, "SHOW WARNINGS")
    assert notes and not [s for s in SECRETS if s in repr(notes)]


def test_explain_hostile_neighbours_stay_refused(md: tuple[Any, Any, str, str]) -> None:
    """A WHERE on the masked column (the plan's row estimate counts its index's matches), ANALYZE (runs the SELECT
    and reads its rows in index order) and a subquery the plan may run stay refused."""
    _admin, gov, t, _ = md
    assert "WHERE" in _refused(gov, f"EXPLAIN SELECT id FROM {t} WHERE ssn LIKE '5%'")
    assert "ssn" in _refused(gov, f"EXPLAIN SELECT id FROM {t} WHERE ssn = '536-22-8726'")
    assert "order" in _refused(gov, f"ANALYZE SELECT id, city FROM {t}")
    assert "ssn" in _refused(gov, f"EXPLAIN SELECT id FROM {t} WHERE id IN (SELECT id FROM {t} LIMIT 1)")


def test_update_ignore_runs_where_no_masked_value_can_decide(md: tuple[Any, Any, str, str]) -> None:
    """``UPDATE IGNORE`` was unparseable: over a table without masked columns it runs (a duplicate skipped with a
    warning, as MariaDB does), and over one with masked columns when it names one row by its whole key."""
    admin, gov, t, clear = md
    assert _run(gov, f"UPDATE IGNORE {clear} SET city = 'Lyon' WHERE id = 3") == 0  # a duplicate: skipped
    assert _run(gov, f"UPDATE IGNORE {clear} SET qty = qty + 1 WHERE qty > 5") == 2
    assert _run(admin, f"SELECT id, qty, city FROM {clear} ORDER BY id") == [(1, 5, "Paris"), (2, 8, "Lyon"), (3, 10, "Nice")]
    assert _run(gov, f"UPDATE LOW_PRIORITY IGNORE {t} SET city = 'Nice' WHERE id = 2") == 1
    assert _run(admin, f"SELECT id, ssn, city FROM {t} ORDER BY id") == [
        (1, "536-22-8726", "Paris"), (2, "219-45-1234", "Nice")]  # fmt: skip


def test_update_ignore_over_masked_rows_stays_refused(md: tuple[Any, Any, str, str]) -> None:
    """Over rows with masked columns not named by their key, which rows failed would show: refused, naming the
    clause and what to do; writing the masked column stays refused as without IGNORE. Nothing is written."""
    admin, gov, t, _ = md
    assert "UPDATE IGNORE" in _refused(gov, f"UPDATE IGNORE {t} SET city = 'Nice' WHERE city = 'Lyon'")
    assert "ssn" in _refused(gov, f"UPDATE IGNORE {t} SET ssn = '219-45-1234' WHERE id = 1")
    assert "IGNORE" in _refused(gov, f"UPDATE IGNORE {t} SET city = 'x' WHERE ssn LIKE '5%'")
    assert "WHERE" in _refused(gov, f"UPDATE IGNORE {t} SET city = 'x' WHERE id = 1 AND ssn LIKE '5%'")
    assert _run(admin, f"SELECT id, ssn, city FROM {t} ORDER BY id") == [
        (1, "536-22-8726", "Paris"), (2, "219-45-1234", "Lyon")]  # fmt: skip


def test_limit_rows_examined(md: tuple[Any, Any, str, str]) -> None:
    """``LIMIT ROWS EXAMINED`` was unparseable: it runs over a table without masked columns and for one row named
    by its key; over rows with masked columns it is refused with a message naming the clause."""
    admin, gov, t, clear = md
    sql = f"SELECT id, city FROM {clear} WHERE qty > 1 LIMIT 2 ROWS EXAMINED 10"
    assert _run(gov, sql) == _run(admin, sql) and len(_run(gov, sql)) == 2
    one = _run(gov, f"SELECT id, ssn, city FROM {t} WHERE id = 1 LIMIT ROWS EXAMINED 5")
    assert len(one) == 1 and one[0][0] == 1 and one[0][2] == "Paris" and not [s for s in SECRETS if s in repr(one)]
    assert "ROWS EXAMINED" in _refused(gov, f"SELECT id, city FROM {t} LIMIT 1 ROWS EXAMINED 1")
    assert "ROWS EXAMINED" in _refused(gov, f"SELECT id FROM {t} WHERE ssn LIKE '5%' LIMIT ROWS EXAMINED 1")
    # one row by its key, but a WHERE on the masked column decides whether it comes back
    assert "WHERE" in _refused(gov, f"SELECT id FROM {t} WHERE id = 1 AND ssn LIKE '5%' LIMIT ROWS EXAMINED 5")


def test_duckdb_insert_or_replace_into_a_foreign_key_parent() -> None:
    """DuckDB ``INSERT OR REPLACE`` into a table other rows reference, with no masked column in its keys, runs and
    keeps the row's masked value (issue 12 listed it as refused; it ran already — kept as a regression test); a
    replace over a UNIQUE masked column stays refused and writes nothing."""
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    try:
        raw.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY, city VARCHAR, ssn VARCHAR)")
        raw.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES parent (id))")
        raw.execute("INSERT INTO parent VALUES (1, 'Paris', '536-22-8726'), (2, 'Lyon', '219-45-1234')")
        raw.execute("INSERT INTO child VALUES (10, 1)")
        raw.execute("CREATE TABLE keyed (id INTEGER PRIMARY KEY, ssn VARCHAR UNIQUE)")
        raw.execute("INSERT INTO keyed VALUES (1, '536-22-8726')")
        gov = govern(raw, CURIOUS_AGENT)
        gov.cursor().execute("INSERT OR REPLACE INTO parent (id, city) VALUES (2, 'Nice')")
        gov.cursor().execute("INSERT OR REPLACE INTO parent (id, city) VALUES (3, 'Metz')")
        assert raw.execute("SELECT * FROM parent ORDER BY id").fetchall() == [
            (1, "Paris", "536-22-8726"), (2, "Nice", "219-45-1234"), (3, "Metz", None)]  # fmt: skip
        assert "ssn" in _refused(gov, "INSERT OR REPLACE INTO keyed (id, ssn) VALUES (5, '536-22-8726')")
        assert raw.execute("SELECT count(*) FROM keyed").fetchall() == [(1,)]
    finally:
        raw.close()


@pytest.fixture
def pg_rls(pg_dsn: str, unique: str) -> Iterator[tuple[Any, Any, str, str]]:
    """(raw admin session, the agent's governed session as a role row security applies to, a table whose FOR
    INSERT policy checks the new row's ssn, one whose check reads the other rows' ssn)."""
    import psycopg

    admin = psycopg.connect(pg_dsn, autocommit=True)
    role, row, others = f"g12_agent_{unique}", f"g12_rls_{unique}", f"g12_rlso_{unique}"
    admin.execute(f"CREATE ROLE {role} LOGIN")
    checks = {row: "ssn IS NOT NULL AND length(ssn) = 11",
              others: f"NOT EXISTS (SELECT 1 FROM {others} o WHERE o.ssn = {others}.ssn)"}  # fmt: skip
    for t, check in checks.items():
        admin.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, city text, ssn text)")
        admin.execute(f"INSERT INTO {t} VALUES (1, 'Paris', '536-22-8726'), (2, 'Lyon', '219-45-1234')")
        admin.execute(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
        admin.execute(f"CREATE POLICY g12_sel ON {t} FOR SELECT USING (true)")
        admin.execute(f"CREATE POLICY g12_ins ON {t} FOR INSERT WITH CHECK ({check})")
        admin.execute(f"GRANT SELECT, INSERT ON {t} TO {role}")
    gov = govern(psycopg.connect(f"{pg_dsn} user={role}", autocommit=True), CURIOUS_AGENT)
    try:
        yield admin, gov, row, others
    finally:
        gov.close()
        admin.execute(f"DROP TABLE IF EXISTS {row}, {others}")
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()


def test_postgres_insert_meets_a_row_check_on_its_own_values(pg_rls: tuple[Any, Any, str, str]) -> None:
    """An INSERT of the agent's own VALUES into a table whose FOR INSERT policy checks ssn runs (it was refused as a
    WHERE on ssn): the check compares the agent's values only. The policy's own verdict stands (a NULL ssn is
    the server's error, quoting nothing stored); reads stay masked."""
    admin, gov, row, _ = pg_rls
    assert _run(gov, f"INSERT INTO {row} (id, city, ssn) VALUES (3, 'Nice', '111-22-3333')") == 1
    with pytest.raises(Exception, match="row-level security") as info:
        _run(gov, f"INSERT INTO {row} (id, city) VALUES (4, 'Metz')")
    assert not isinstance(info.value, governed_db.GuardrailViolation)
    assert not [s for s in SECRETS if s in str(info.value)]
    seen = _run(gov, f"SELECT id, ssn FROM {row} ORDER BY id")
    assert [r[0] for r in seen] == [1, 2, 3] and not [s for s in SECRETS if s in repr(seen)]
    assert _run(admin, f"SELECT id, city, ssn FROM {row} ORDER BY id") == [
        (1, "Paris", "536-22-8726"), (2, "Lyon", "219-45-1234"), (3, "Nice", "111-22-3333")]  # fmt: skip


def test_postgres_insert_check_that_reads_other_rows_stays_refused(pg_rls: tuple[Any, Any, str, str]) -> None:
    """A check that compares the new ssn with the stored ones (a subquery), and an INSERT ... SELECT of stored
    values, stay refused; nothing is written."""
    admin, gov, row, others = pg_rls
    assert "row-level security" in _refused(gov, f"INSERT INTO {others} (id, city, ssn) VALUES (3, 'Nice', '536-22-8726')")
    assert "ssn" in _refused(gov, f"INSERT INTO {row} (id, city, ssn) SELECT 5, city, ssn FROM {row} WHERE id = 1")
    for t in (row, others):
        assert _run(admin, f"SELECT count(*) FROM {t}") == [(2,)]


def test_postgres_check_calling_a_function(pg_dsn: str, unique: str) -> None:
    """A CHECK calling a function of the row's own value runs (an INSERT is not refused for it); one whose function
    reads another table's masked column refuses every INSERT (left so, decision 0426: no reading of the INSERT
    can rule out that the stored values decide) and nothing is written."""
    import psycopg

    src, own, reads = f"g12_src_{unique}", f"g12_own_{unique}", f"g12_reads_{unique}"
    f_len, f_known = f"g12_len_{unique}", f"g12_known_{unique}"
    admin = psycopg.connect(pg_dsn, autocommit=True)
    gov = None
    try:
        admin.execute(f"CREATE TABLE {src} (id int PRIMARY KEY, ssn text)")
        admin.execute(f"INSERT INTO {src} VALUES (1, '536-22-8726')")
        admin.execute(f"CREATE FUNCTION {f_len}(v text) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT length(v) $$")
        admin.execute(f"CREATE FUNCTION {f_known}(v text) RETURNS boolean LANGUAGE sql STABLE AS "
                      f"$$ SELECT NOT EXISTS (SELECT 1 FROM {src} WHERE ssn = v) $$")  # fmt: skip
        admin.execute(f"CREATE TABLE {own} (id int PRIMARY KEY, city text, ssn text CHECK ({f_len}(ssn) = 11))")
        admin.execute(f"CREATE TABLE {reads} (id int PRIMARY KEY, city text, ssn text CHECK ({f_known}(ssn)))")
        gov = govern(psycopg.connect(pg_dsn, autocommit=True), CURIOUS_AGENT)
        assert _run(gov, f"INSERT INTO {own} VALUES (1, 'Nice', '111-22-3333')") == 1
        assert "ssn" in _refused(gov, f"INSERT INTO {reads} VALUES (2, 'Nice', '536-22-8726')")
        assert admin.execute(f"SELECT id, ssn FROM {own}").fetchall() == [(1, "111-22-3333")]
        assert admin.execute(f"SELECT count(*) FROM {reads}").fetchall() == [(0,)]
    finally:
        if gov is not None:
            gov.close()
        admin.execute(f"DROP TABLE IF EXISTS {own}, {reads}, {src}")
        admin.execute(f"DROP FUNCTION IF EXISTS {f_len}(text), {f_known}(text)")
        admin.close()
