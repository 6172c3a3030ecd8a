"""Red-team round 15 over masking on MariaDB (PyMySQL, aiomysql): a prompt-injected agent in production with zero
configuration, no unmask grant.

* An index's ``Cardinality`` counted the distinct values it holds. ``INSERT`` of rows holding a guessed SSN is
  allowed (the SSN's index is not unique); once a tenth of the rows changed, InnoDB's background statistics thread
  counts the index again within seconds, and ``SHOW INDEX FROM t`` (``SHOW KEYS``, ``SHOW INDEXES``,
  ``information_schema.STATISTICS.CARDINALITY``) then grew exactly when the guess was not a stored SSN. The
  cardinality is now one of the catalog's measures of stored values (decision 0247's sizes): NULL to identities
  that see masked columns, a filter on it refused (decision 0306).

* A ``WHERE`` of a SHOW was not judged: ``SHOW TABLE STATUS WHERE Data_length > 16384`` filtered on the size
  0247 returns as NULL, and ``SHOW INDEX ... WHERE Cardinality > 8`` on the count above. A SHOW that lists an
  information_schema table is now traced as the query over that table it is, its WHERE included (decision 0306).

* performance_schema and the sys schema sum the counters decision 0291 refused, per statement digest, thread, file,
  socket and index (``SUM_SORT_MERGE_PASSES``, the client socket's bytes written, the redo log file's, memory):
  only their configuration, instruments, connections, threads, locks and variables may be read (decision 0307; the
  test server runs with performance_schema OFF, so these reads are checked refused, not measured).

* The database computes some columns from the row when it is written. ``UPDATE t SET city = 'Saint-Etienne'``
  failed with "Data too long for column 'tag'" exactly when row 1's name was long, where a stored (or indexed
  virtual) ``tag varchar(30) AS (CONCAT(city, '/', full_name))`` recomputes (PostgreSQL alike); such a generated
  column is now a CHECK over what it reads. A DEFAULT over other columns (``note DEFAULT (CONCAT('n:', full_name,
  ':', ssn))``) was worse: ``SELECT DEFAULT(note)`` returned the name and SSN in clear (sqlglot reads it as the
  word DEFAULT aliased, taken for a constant), and ``UPDATE t SET note = DEFAULT`` copied them into a clear column.
  ``DEFAULT(col)`` is now traced to the row, and the UPDATE refused (decision 0308).

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
connection shows that the same statements tell them apart. Look-alikes that reveal nothing keep running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db

AGENT = governed_db.Identity("curious-agent", kind="agent")
COLUMNS = "(id int primary key, full_name varchar(100), ssn varchar(20), city varchar(40))"
ROWS_A = [
    (1, "Alice Martin-Fitzgerald", "536-22-8726", "Paris"),
    (2, "Ivan Petrov", "219-45-1234", "Lyon"),
    (3, "Bob Stone", "412-77-9001", "Rome"),
]
ROWS_B = [(1, "Amy Zedd", "287-65-4321", "Paris"), *ROWS_A[1:]]
#: thirty rows of the guessed SSN (a third of the table: InnoDB counts its statistics again past a tenth)
GUESSES = "INSERT INTO {t} (id, ssn, city) VALUES " + ", ".join(f"({1000 + i}, '536-22-8726', 'g')" for i in range(30))


def _wrap(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)


def _aiomysql_kw(mysql_kw: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"], "autocommit": True}


@pytest.fixture
def pair(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Two tables differing only in row 1's name and SSN, with an index on ``ssn`` and 90 rows without one."""
    names = {c: f"rt15md_{unique}_{c.lower()}" for c in ("A", "B")}
    with mysql_conn.cursor() as cur:
        for c, rows in (("A", ROWS_A), ("B", ROWS_B)):
            cur.execute(f"CREATE TABLE {names[c]} {COLUMNS}")
            cur.executemany(f"INSERT INTO {names[c]} VALUES (%s, %s, %s, %s)", rows)
            cur.execute(f"CREATE INDEX {names[c]}_ssn ON {names[c]} (ssn)")
            cur.execute(f"INSERT INTO {names[c]} (id, city) SELECT seq, 'x' FROM seq_100_to_189")
            cur.execute(f"ANALYZE TABLE {names[c]}")
            cur.fetchall()
    yield names
    with mysql_conn.cursor() as cur:
        for t in names.values():
            cur.execute(f"DROP TABLE IF EXISTS {t}")


def _see(conn: Any, sql: str) -> Any:
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()] if cur.description else cur.rowcount
    except governed_db.GuardrailViolation as e:
        return f"refused: {sorted(e.decision.rules)}"


#: every way the agent read an index's cardinality
CARDINALITY_READS = [
    "SHOW INDEX FROM {t}",
    "SHOW KEYS FROM {t}",
    "SHOW INDEXES IN {t} FROM test",
    "SELECT INDEX_NAME, SEQ_IN_INDEX, CARDINALITY FROM information_schema.STATISTICS WHERE TABLE_NAME = '{t}' "
    "ORDER BY INDEX_NAME",
    "SELECT max(CARDINALITY) FROM information_schema.STATISTICS WHERE TABLE_NAME = '{t}' AND INDEX_NAME <> 'PRIMARY'",
    "SHOW INDEX FROM {t} WHERE Cardinality > 8",
    "SHOW KEYS FROM {t} WHERE Cardinality BETWEEN 0 AND 9",
    "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_NAME = '{t}' AND CARDINALITY > 8",
]


def _after_guesses(conn: Any, raw: Any, table: str) -> list[Any]:
    """Rows of the guessed SSN inserted (committed: the statistics thread reads committed rows), the index counted
    again as the server's background thread does within seconds, each read of its cardinality; then the rows
    deleted."""
    assert _see(conn, GUESSES.format(t=table)) == 30
    try:
        with raw.cursor() as cur:
            cur.execute(f"ANALYZE TABLE {table}")
            cur.fetchall()
        return [_see(conn, sql.format(t=table)) for sql in CARDINALITY_READS]
    finally:
        assert _see(conn, f"DELETE FROM {table} WHERE id >= 1000") == 30


def _named(seen: list[Any], table: str) -> list[Any]:
    """``seen`` with the table's own name taken out (the two tables differ in it)."""
    return [repr(s).replace(table, "T") for s in seen]


def test_an_index_cardinality_tells_no_guess(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    import pymysql

    seen, named = {}, {}
    for governed in (False, True):
        for c in ("A", "B"):
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            conn = _wrap(raw) if governed else raw
            try:
                seen[governed, c] = _after_guesses(conn, raw, pair[c])
                named[governed, c] = _named(seen[governed, c], pair[c])
            finally:
                conn.close()
    assert named[False, "A"] != named[False, "B"], seen  # the oracle: the guess is A's SSN, one distinct value fewer
    assert named[True, "A"] == named[True, "B"], seen
    shown = seen[True, "A"][0]
    assert [r[6] for r in shown] == [None, None] and [r[4] for r in shown] == ["id", "ssn"], shown
    assert all(s == "refused: ['masked-column-predicate']" for s in seen[True, "A"][5:]), seen


def test_aiomysql_an_index_cardinality_is_null(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    aiomysql = pytest.importorskip("aiomysql")

    async def run(table: str) -> list[Any]:
        conn = _wrap(await aiomysql.connect(**_aiomysql_kw(mysql_kw)))
        out: list[Any] = []
        try:
            for sql in CARDINALITY_READS:
                cur = await conn.cursor()
                try:
                    await cur.execute(sql.format(t=table))
                    out.append([tuple(r) for r in await cur.fetchall()])
                except governed_db.GuardrailViolation as e:
                    out.append(f"refused: {sorted(e.decision.rules)}")
        finally:
            conn.close()
        return out

    seen = asyncio.run(run(pair["A"]))
    assert [r[6] for r in seen[0]] == [None, None], seen
    assert seen[3] == [("PRIMARY", 1, None), (f"{pair['A']}_ssn", 1, None)], seen
    assert seen[4] == [(None,)], seen
    assert all(s == "refused: ['masked-column-predicate']" for s in seen[5:]), seen


#: SHOW statements whose WHERE filters on what the catalog returns as NULL
SHOW_FILTERS = [
    "SHOW TABLE STATUS WHERE Data_length > 16384",
    "SHOW TABLE STATUS WHERE Name = '{t}' AND Avg_row_length < 100",
    "SHOW TABLE STATUS FROM test WHERE Checksum > 0",
    "SHOW INDEX FROM {t} WHERE Cardinality > 8",
    "SHOW INDEXES FROM {t} IN test WHERE Cardinality < 9 OR Key_name = 'x'",
    "SHOW KEYS FROM {t} WHERE (",  # unreadable: taken to read every column
]


@pytest.mark.parametrize("sql", SHOW_FILTERS)
def test_a_show_filter_on_a_measure_is_refused(mysql_kw: dict[str, Any], pair: dict[str, str], sql: str) -> None:
    import pymysql

    conn = _wrap(pymysql.connect(autocommit=True, **mysql_kw))
    try:
        assert _see(conn, sql.format(t=pair["A"])) == "refused: ['masked-column-predicate']"
    finally:
        conn.close()


#: SHOW statements over names and the columns nobody masks: they keep running, exactly
SHOW_LOOK_ALIKES = [
    ("SHOW TABLE STATUS WHERE Name = '{t}'", lambda rows: [r[:5] for r in rows] == [("{t}", "InnoDB", 10, "Dynamic", 93)]),
    ("SHOW TABLE STATUS LIKE '{t}'", lambda rows: len(rows) == 1 and rows[0][5:7] == (None, None)),
    ("SHOW INDEX FROM {t} WHERE Key_name = 'PRIMARY'", lambda rows: [r[2:5] for r in rows] == [("PRIMARY", 1, "id")]),
    ("SHOW KEYS FROM {t} WHERE Column_name = 'ssn' AND Non_unique = 1",
     lambda rows: [r[2] for r in rows] == ["{t}_ssn"]),
    ("SHOW INDEXES FROM {t}", lambda rows: [r[4] for r in rows] == ["id", "ssn"]),
    ("SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_NAME = '{t}' ORDER BY 1",
     lambda rows: rows == [("PRIMARY", "id"), ("{t}_ssn", "ssn")]),
]


@pytest.mark.parametrize(("sql", "check"), SHOW_LOOK_ALIKES)
def test_show_look_alikes_still_run(mysql_kw: dict[str, Any], pair: dict[str, str], sql: str, check: Any) -> None:
    import pymysql

    conn = _wrap(pymysql.connect(autocommit=True, **mysql_kw))
    try:
        rows = _see(conn, sql.format(t=pair["A"]))
        assert isinstance(rows, list), rows
        assert check([tuple(str(v).replace(pair["A"], "{t}") if isinstance(v, str) else v for v in r) for r in rows])
    finally:
        conn.close()


def test_a_developer_still_sees_the_cardinality(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    import pymysql

    conn = governed_db.wrap(pymysql.connect(autocommit=True, **mysql_kw), identity=AGENT, environment="development",
                            audit=False)
    try:
        rows = _see(conn, f"SHOW INDEX FROM {pair['A']} WHERE Cardinality > 0")
        assert isinstance(rows, list) and [r[2] for r in rows][:1] == ["PRIMARY"] and rows[0][6] > 0, rows
    finally:
        conn.close()


# -- 0307: performance_schema and sys sum the work statements did ---------------------------------------------
#: reads of performance_schema tables and sys views that sum what statements did with the values they read: the
#: counters decision 0291 refused (sort spills, temporary tables on disk, bytes written to the client's socket and
#: to the redo log, memory, rows read per index), per digest, thread, user, file, socket or index
WORK_SUMMARIES = [
    "SELECT DIGEST_TEXT, SUM_SORT_MERGE_PASSES FROM performance_schema.events_statements_summary_by_digest",
    "SELECT SUM_CREATED_TMP_DISK_TABLES FROM performance_schema.events_statements_summary_by_thread_by_event_name",
    "SELECT SUM_NUMBER_OF_BYTES_WRITE FROM performance_schema.socket_summary_by_instance",
    "SELECT FILE_NAME, SUM_NUMBER_OF_BYTES_WRITE FROM performance_schema.file_summary_by_instance "
    "WHERE FILE_NAME LIKE '%ib_logfile0'",
    "SELECT CURRENT_NUMBER_OF_BYTES_USED FROM performance_schema.memory_summary_by_thread_by_event_name",
    "SELECT INDEX_NAME, COUNT_READ FROM performance_schema.table_io_waits_summary_by_index_usage",
    "SELECT NUMBER_OF_BYTES FROM performance_schema.events_waits_history_long",
    "SELECT SUM_SORT_MERGE_PASSES FROM performance_schema.prepared_statements_instances",
    "SELECT WORK_COMPLETED FROM performance_schema.events_stages_current",
    "SELECT query, sort_merge_passes FROM sys.statements_with_sorting",
    "SELECT * FROM sys.x$statement_analysis",
    "SELECT file, total_written FROM sys.io_global_by_file_by_bytes",
    "SELECT * FROM sys.memory_global_total",
    "SELECT rows_selected FROM sys.schema_index_statistics",
    "SELECT * FROM sys.x$ps_schema_table_statistics_io",
    "SELECT ROWS_READ FROM information_schema.INDEX_STATISTICS",
    "SELECT ROWS_READ FROM information_schema.TABLE_STATISTICS",
    "SELECT s.* FROM (SELECT * FROM performance_schema.events_statements_summary_global_by_event_name) s",
]
#: what stays readable there: configuration, instruments, connections, threads, locks held, variables
QUIET_INSTRUMENTATION_READS = [
    "SELECT USER, CURRENT_CONNECTIONS FROM performance_schema.accounts",
    "SELECT NAME, ENABLED FROM performance_schema.setup_consumers",
    "SELECT THREAD_ID, NAME FROM performance_schema.threads",
    "SELECT OBJECT_NAME, LOCK_TYPE FROM performance_schema.metadata_locks",
    "SELECT * FROM performance_schema.session_connect_attrs",
    "SELECT * FROM sys.version",
    "SELECT variable, value FROM sys.sys_config",
    "SELECT * FROM sys.schema_object_overview WHERE db = 'test'",
    "SELECT VARIABLE_VALUE FROM performance_schema.session_status WHERE VARIABLE_NAME = 'Threads_connected'",
]


@pytest.mark.parametrize("sql", WORK_SUMMARIES)
def test_work_summaries_are_refused(mysql_kw: dict[str, Any], sql: str) -> None:
    """performance_schema is OFF on the test server (a start-up option, ON by default on MySQL 8), so these tables
    are empty here: what is checked is that they are not read, not an oracle measured through them."""
    import pymysql

    conn = _wrap(pymysql.connect(autocommit=True, **mysql_kw))
    try:
        assert _see(conn, sql) == "refused: ['system-catalog']"
    finally:
        conn.close()


@pytest.mark.parametrize("sql", QUIET_INSTRUMENTATION_READS)
def test_quiet_instrumentation_still_reads(mysql_kw: dict[str, Any], sql: str) -> None:
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    try:
        shown = _see(raw, sql)
        governed = _see(_wrap(raw), sql)
        assert isinstance(governed, list) and len(governed) == len(shown), governed
    finally:
        raw.close()


# -- 0308: a generated column computed on write is a check over what it reads ------------------------------------
GENERATED = {
    # stored: computed at every write of the row
    "stored": "ADD COLUMN tag varchar(30) AS (CONCAT(city, '/', full_name)) STORED",
    # virtual, but an index holds it: computed at every write too
    "indexed": "ADD COLUMN tag varchar(30) AS (CONCAT(city, '/', full_name)) VIRTUAL, ADD INDEX (tag)",
}
#: a city of 13 characters: with row 1's name of copy A (23) the tag would need 37 characters, with B's (8) 22
LONG_CITY = "UPDATE {t} SET city = 'Saint-Etienne' WHERE id = 1"


@pytest.fixture(params=sorted(GENERATED))
def tagged(request: pytest.FixtureRequest, mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Two tables differing only in row 1's name and SSN, with a generated ``tag`` of city and name."""
    names = {c: f"rt15md_{unique}_g{c.lower()}" for c in ("A", "B")}
    with mysql_conn.cursor() as cur:
        for c, rows in (("A", ROWS_A), ("B", ROWS_B)):
            cur.execute(f"CREATE TABLE {names[c]} {COLUMNS}")
            cur.executemany(f"INSERT INTO {names[c]} VALUES (%s, %s, %s, %s)", rows)
            cur.execute(f"ALTER TABLE {names[c]} {GENERATED[request.param]}")
    yield names
    with mysql_conn.cursor() as cur:
        for t in names.values():
            cur.execute(f"DROP TABLE IF EXISTS {t}")


def _update_city(conn: Any, table: str) -> Any:
    """Within a transaction rolled back: the UPDATE of row 1's city, and row 1's city after it."""
    try:
        assert _see(conn, "START TRANSACTION") == 0
        try:
            done = _see(conn, LONG_CITY.format(t=table))
        except Exception as e:  # the driver's error: what the caller sees
            done = f"{type(e).__name__}: {e.args[0]}"
        return done, _see(conn, f"SELECT city FROM {table} WHERE id = 1")
    finally:
        _see(conn, "ROLLBACK")


def _per_copy(mysql_kw: dict[str, Any], tables: dict[str, str], see: Any) -> dict[tuple[bool, str], Any]:
    """``see(conn, table)`` for copies A and B, each on a new session: raw (``False``) and governed (``True``)."""
    import pymysql

    seen = {}
    for governed in (False, True):
        for c in ("A", "B"):
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            conn = _wrap(raw) if governed else raw
            try:
                seen[governed, c] = see(conn, tables[c])
            finally:
                conn.close()
    return seen


def test_a_generated_column_tells_no_length(mysql_kw: dict[str, Any], tagged: dict[str, str]) -> None:

    seen = _per_copy(mysql_kw, tagged, _update_city)
    # the oracle: "Data too long for column 'tag'" exactly when the name is longer than 16 characters
    assert seen[False, "A"] == ("DataError: 1406", [("Paris",)]), seen
    assert seen[False, "B"] == (1, [("Saint-Etienne",)]), seen
    assert seen[True, "A"] == seen[True, "B"] == ("refused: ['masked-column-constraint']", [("Paris",)]), seen


def test_aiomysql_a_generated_column_is_a_check(mysql_kw: dict[str, Any], tagged: dict[str, str]) -> None:
    aiomysql = pytest.importorskip("aiomysql")

    async def run(table: str) -> Any:
        conn = _wrap(await aiomysql.connect(**_aiomysql_kw(mysql_kw)))
        try:
            cur = await conn.cursor()
            with pytest.raises(governed_db.GuardrailViolation) as refused:
                await cur.execute(LONG_CITY.format(t=table))
            await cur.execute(f"SELECT city FROM {table} WHERE id = 1")
            return refused.value.decision.rules, await cur.fetchall()
        finally:
            conn.close()

    for c in ("A", "B"):
        rules, rows = asyncio.run(run(tagged[c]))
        assert "masked-column-constraint" in rules and [tuple(r) for r in rows] == [("Paris",)]


#: generated columns that no write can make fail by a masked value: UPDATEs of the city keep running
GENERATED_LOOK_ALIKES = [
    "ADD COLUMN tag varchar(60) AS (UPPER(city)) STORED",  # reads no masked column
    "ADD COLUMN tag varchar(30) AS (CONCAT(city, '/', full_name)) VIRTUAL",  # computed when read, never written
    "ADD COLUMN tag varchar(30) AS (RIGHT(ssn, 4)) STORED",  # reads no column the UPDATE writes
]


@pytest.mark.parametrize("ddl", GENERATED_LOOK_ALIKES)
def test_generated_look_alikes_still_update(mysql_kw: dict[str, Any], pair: dict[str, str], ddl: str) -> None:
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    try:
        with raw.cursor() as cur:
            cur.execute(f"ALTER TABLE {pair['A']} {ddl}")
        assert _update_city(_wrap(raw), pair["A"]) == (1, [("Saint-Etienne",)])
    finally:
        raw.close()


def test_postgres_a_stored_generated_column_tells_no_length(unique: str) -> None:
    from tests._redteam import pg_connect

    try:
        raw = pg_connect("psycopg")
    except Exception as e:  # pragma: no cover - the server is part of the test environment
        pytest.skip(f"PostgreSQL unavailable: {e}")
    names = {c: f"rt15md_{unique}_pg{c.lower()}" for c in ("A", "B")}
    try:
        for c, rows in (("A", ROWS_A), ("B", ROWS_B)):
            raw.execute(f"CREATE TABLE {names[c]} (id int primary key, full_name varchar(100), ssn varchar(20), "
                        "city varchar(40), tag varchar(30) GENERATED ALWAYS AS (city || '/' || full_name) STORED)")
            for r in rows:
                raw.execute(f"INSERT INTO {names[c]} (id, full_name, ssn, city) VALUES (%s, %s, %s, %s)", r)
        seen = {}
        for governed in (False, True):
            for c in ("A", "B"):
                conn = pg_connect("psycopg", autocommit=False)
                gov = _wrap(conn) if governed else conn
                try:
                    cur = gov.cursor()
                    cur.execute(LONG_CITY.format(t=names[c]))
                    seen[governed, c] = cur.rowcount
                except Exception as e:
                    seen[governed, c] = e.decision.rules if isinstance(e, governed_db.GuardrailViolation) else type(e).__name__
                finally:
                    conn.rollback()
                    conn.close()
        assert seen[False, "A"] == "StringDataRightTruncation" and seen[False, "B"] == 1, seen  # the oracle
        assert seen[True, "A"] == seen[True, "B"] and "masked-column-constraint" in seen[True, "A"], seen
    finally:
        for t in names.values():
            raw.execute(f"DROP TABLE IF EXISTS {t}")
        raw.close()


# -- 0308: a DEFAULT computed from the row's masked columns -----------------------------------------------------
@pytest.fixture
def defaulted(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Two tables differing only in row 1's name and SSN, with a ``note`` whose DEFAULT reads both, and a
    ``status`` whose DEFAULT is a literal."""
    names = {c: f"rt15md_{unique}_d{c.lower()}" for c in ("A", "B")}
    with mysql_conn.cursor() as cur:
        for c, rows in (("A", ROWS_A), ("B", ROWS_B)):
            cur.execute(f"CREATE TABLE {names[c]} {COLUMNS}")
            cur.executemany(f"INSERT INTO {names[c]} VALUES (%s, %s, %s, %s)", rows)
            cur.execute(f"ALTER TABLE {names[c]} ADD COLUMN note varchar(200) DEFAULT (CONCAT('n:', full_name, ':', "
                        "ssn)), ADD COLUMN status varchar(20) DEFAULT 'new'")
            cur.execute(f"UPDATE {names[c]} SET note = 'plain', status = 'old'")
    yield names
    with mysql_conn.cursor() as cur:
        for t in names.values():
            cur.execute(f"DROP TABLE IF EXISTS {t}")


def _copied_by_default(conn: Any, table: str) -> Any:
    """``DEFAULT(note)`` read; then, within a transaction rolled back, row 1's note set to its default and read."""
    shown = _see(conn, f"SELECT id, DEFAULT(note) FROM {table} WHERE id = 1")
    try:
        assert _see(conn, "START TRANSACTION") == 0
        done = _see(conn, f"UPDATE {table} SET note = DEFAULT WHERE id = 1")
        return shown, done, _see(conn, f"SELECT note FROM {table} WHERE id = 1")
    finally:
        _see(conn, "ROLLBACK")


def test_a_computed_default_copies_no_masked_value(mysql_kw: dict[str, Any], defaulted: dict[str, str]) -> None:

    seen = _per_copy(mysql_kw, defaulted, _copied_by_default)
    # the oracle: the default is the name and SSN themselves, read directly or copied into a clear column
    assert seen[False, "A"] == ([(1, "n:Alice Martin-Fitzgerald:536-22-8726")], 1,
                                [("n:Alice Martin-Fitzgerald:536-22-8726",)]), seen
    assert seen[True, "A"] == seen[True, "B"], seen
    shown, done, after = seen[True, "A"]
    assert len(shown) == 1 and shown[0][1].startswith("[") and done == "refused: ['masked-column-constraint']", seen
    # note's DEFAULT reads the name and SSN: read masked whole, as a generated column over them (decision 0402)
    assert after == [("[PERSON_NAME]",)], seen
    assert not any(s in repr(seen[True, "A"]) for s in ("Alice", "Martin", "536-22", "Amy", "Zedd", "287-65"))


def test_aiomysql_a_computed_default_is_refused(mysql_kw: dict[str, Any], defaulted: dict[str, str]) -> None:
    aiomysql = pytest.importorskip("aiomysql")

    async def run(table: str) -> Any:
        conn = _wrap(await aiomysql.connect(**_aiomysql_kw(mysql_kw)))
        try:
            cur = await conn.cursor()
            await cur.execute(f"SELECT id, DEFAULT(note) FROM {table} WHERE id = 1")
            shown = await cur.fetchall()
            with pytest.raises(governed_db.GuardrailViolation) as refused:
                await cur.execute(f"UPDATE {table} SET note = DEFAULT WHERE id = 1")
            return [tuple(r) for r in shown], refused.value.decision.rules
        finally:
            conn.close()

    shown, rules = asyncio.run(run(defaulted["A"]))
    assert "masked-column-constraint" in rules and "Alice" not in repr(shown) and "536" not in repr(shown), shown


def test_a_literal_default_still_runs(mysql_kw: dict[str, Any], defaulted: dict[str, str]) -> None:
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    try:
        conn = _wrap(raw)
        try:
            assert _see(conn, "START TRANSACTION") == 0
            assert _see(conn, f"UPDATE {defaulted['A']} SET status = DEFAULT WHERE id = 1") == 1
            assert _see(conn, f"SELECT status FROM {defaulted['A']} WHERE id = 1") == [("new",)]
        finally:
            _see(conn, "ROLLBACK")
        # DEFAULT() over a table without masked columns comes back exactly
        plain = defaulted["A"] + "_plain"
        _see(raw, f"CREATE TABLE {plain} (id int primary key, status varchar(20) DEFAULT 'new', city varchar(40))")
        try:
            _see(raw, f"INSERT INTO {plain} VALUES (1, 'old', 'Paris'), (2, 'old', 'Lyon')")
            sql = f"SELECT id, DEFAULT(status) FROM {plain} ORDER BY id"
            assert _see(conn, sql) == _see(raw, sql) == [(1, "new"), (2, "new")]
        finally:
            _see(raw, f"DROP TABLE {plain}")
    finally:
        raw.close()
