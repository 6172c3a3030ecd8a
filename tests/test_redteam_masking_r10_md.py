"""Red-team round 10 over masking on MariaDB (PyMySQL, aiomysql): a prompt-injected agent in production with zero
configuration, no unmask grant.

* The process list shows every session's current statement as it was sent, literals and all:
  ``information_schema.PROCESSLIST.INFO`` (and MariaDB's ``INFO_BINARY``), ``SHOW [FULL] PROCESSLIST``'s ``Info``
  and ``information_schema.INNODB_TRX.trx_query``. An application's ``UPDATE ... WHERE full_name = 'Alice
  Smith'`` waiting on a row lock (which the agent's own second session can hold as long as it likes) came back
  with the e-mail and SSN caught by the free-text scan but the name in clear; ``WHERE info LIKE '%Alice%'``
  counted it. PostgreSQL's ``pg_stat_activity.query`` was masked whole since decision 0230; these are the same
  columns on MariaDB, masked whole now (decision 0246).

* A MyISAM table's ``DATA_LENGTH`` and ``AVG_ROW_LENGTH`` (``information_schema.TABLES``, ``SHOW TABLE STATUS``)
  are the bytes of its records, padded to whole words: 172 bytes with ``Alice Smith`` in row 1, 176 with ``Zoe
  Quinn-Harper``. The live ``CHECKSUM`` of a MyISAM or Aria table made with ``CHECKSUM=1`` is a function of
  every stored value, to check a guess against offline. These size columns are masked (NULL) now, their
  filters refused; the table's name, engine, row count and times stay exact (decision 0247).

* The sys schema's views read the catalogs decision 0234 refused, under other names:
  ``sys.x$innodb_buffer_stats_by_table.data`` (and ``innodb_buffer_stats_by_schema``, the table statistics "with
  buffer") sums INNODB_BUFFER_PAGE's DATA_SIZE — the bytes of a table's records, 487 with one name and 499 with a
  longer one; ``sys.innodb_lock_waits`` joins INNODB_LOCKS; ``sys.processlist``, ``sys.session`` and
  ``sys.schema_table_lock_waits`` read the statement tables. They are refused as those are (decision 0247).

* ``SHOW EXPLAIN FORMAT=JSON FOR <id>`` (also ``SHOW ANALYZE``, ``EXPLAIN ... FOR CONNECTION``) returns another
  session's plan, whose ``attached_condition`` quotes its WHERE with the literals it was sent: the waiting
  application's ``full_name = 'Alice Smith'`` in clear. Refused by ``system-catalog`` like the statement logs
  (decision 0247).

* ``SET character_set_results = latin1`` (or ``SET NAMES latin1``, ``SET CHARACTER SET latin1``...) makes the server
  send result text in latin1 while PyMySQL and aiomysql decode it as UTF-8: ``SELECT replace(ssn, '5', 'é') AS r
  ... WHERE id = 1`` (masked whole, so allowed) then fails exactly when the SSN holds a 5, and the error says at
  which position; a plain read fails for an accented name. Decision 0210 had closed this on PostgreSQL and
  judged MySQL safe because the server sends ``?`` for what the charset lacks — it does, but the driver's
  decoding is the oracle. Refused for identities that see masked columns (decision 0246).

* InnoDB's redo log counters (``Innodb_os_log_written``, ``Innodb_lsn_current``, ``Innodb_lsn_flushed``,
  ``Innodb_checkpoint_age``; ``INNODB_METRICS.os_log_bytes_written``) grow by the bytes a write logs, and an
  allowed ``UPDATE t SET city = 'Nice-sur-mer' WHERE id = 1`` logs the whole row: 428 bytes with copy A's row 1,
  440 with copy B's. The governed connection showed the counters partly masked by value detection
  (``******90``), keeping the last two digits — enough to tell the deltas apart. Refused like ``Bytes_sent``
  (decision 0215), and so is ``Binlog_bytes_written`` (decision 0247). The binary log's position (``SHOW MASTER
  STATUS``, ``SHOW BINARY LOGS``) grows the same way when the binary log is on; the test server runs without one,
  so that stays unproven and open (see the decision).
* Not masking: on an autocommit PyMySQL/aiomysql connection, the effect guard bracketed a bounded write with its
  own ``BEGIN`` ... ``COMMIT`` even inside the agent's explicit ``START TRANSACTION``: the ``BEGIN`` committed what
  the transaction had done so far and the ``COMMIT`` kept the write, so the agent's ``ROLLBACK`` undid nothing.
  The server's in-transaction flag decides now: inside one, the guard uses its savepoint.

Each oracle compares two secrets (or a right and a wrong guess) and passes when the agent observes both alike; the
raw connection shows that the same statements tell them apart. Look-alikes that reveal nothing keep running.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, made_tables
from tests.test_masking_noninterference import Pair

NAMES = ("Alice Smith", "Zoe Quinn-Harper")  # the two secrets an application writes with
DDL = "(id int primary key, full_name varchar(100), email varchar(100), ssn varchar(20), city varchar(40))"
ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "Paris"),
    (2, "Ivan Petrov", "ivan@example.org", "219-45-1234", "Lyon"),
    (3, "Bob Jones", "bob@example.net", "123-45-6789", "Rome"),
]


@pytest.fixture
def people(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> Iterator[str]:
    with made_tables(mysql_conn) as make:
        yield make(DDL, ROWS, f"rt10md_{unique}")


def _waiting_application(
    mysql_kw: dict[str, Any], table: str, name: str, look: Callable[[int], Any], wait: int = 20
) -> Any:
    """An application session whose ``UPDATE ... WHERE full_name = <name>`` waits on a row lock another session
    holds (the agent can hold one as long as it likes); ``look(its connection id)`` runs while it waits."""
    import pymysql

    locker = pymysql.connect(**mysql_kw)
    app = pymysql.connect(**mysql_kw)
    try:
        locker.cursor().execute(f"SELECT id FROM {table} WHERE id = 1 FOR UPDATE")
        app.cursor().execute(f"SET SESSION innodb_lock_wait_timeout = {wait}")
        pid = app.thread_id()
        sql = f"UPDATE {table} SET city = 'Nice' WHERE full_name = '{name}'"  # short: SHOW PROCESSLIST cuts at 100
        done = threading.Event()

        def write() -> None:
            try:
                app.cursor().execute(sql)
            except Exception:  # the lock wait may end either way; only what was seen counts
                pass
            finally:
                done.set()

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        probe = pymysql.connect(autocommit=True, **mysql_kw)
        try:
            # until the statement is in the process list and InnoDB has it waiting on the lock. Polled every 0.15 s:
            # MariaDB refreshes INNODB_TRX only once it has not been read for 0.1 s (its information-schema cache
            # counts from the last read), so a poll every 0.02 s kept reading the rows of before the statement began
            for _ in range(100):
                cur = probe.cursor()
                cur.execute(f"SELECT info FROM information_schema.PROCESSLIST WHERE id = {pid}")
                listed = (cur.fetchone() or (None,))[0]
                cur.execute(f"SELECT trx_state FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = {pid}")
                # (on a loaded machine the process list showed the statement before INNODB_TRX did: the
                # innodb-trx case then read no row over both copies, and its oracle failed)
                if listed and (cur.fetchone() or (None,))[0] == "LOCK WAIT":
                    break
                time.sleep(0.15)
        finally:
            probe.close()
        try:
            return look(pid)
        finally:
            locker.rollback()
            done.wait(20)
            app.rollback()
            thread.join(5)
    finally:
        locker.close()
        app.close()


def _run(conn: Any, sql: str) -> Any:
    """What an agent sees of one statement: the rows and their column names, or the refusal."""
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return [d[0] for d in cur.description or ()], [tuple(r) for r in cur.fetchall()]
    except governed_db.GuardrailViolation as refused:
        return ("refused", tuple(refused.decision.rules) if refused.decision is not None else ())


def _of(pid: int, result: Any) -> Any:
    """The rows of a process-list read that belong to the application's session (first column: its id)."""
    if result[0] == "refused":
        return result
    names, rows = result
    return names, [r for r in rows if r and r[0] == pid]


#: reads of other sessions' statements; each keeps the application's session first in its rows
STATEMENT_READS = [
    "SELECT id, info FROM information_schema.PROCESSLIST WHERE id = {pid}",
    "SELECT id, info_binary FROM information_schema.PROCESSLIST WHERE id = {pid}",
    "SELECT * FROM information_schema.PROCESSLIST WHERE id = {pid}",
    "SELECT p.id, upper(p.info) FROM information_schema.PROCESSLIST p WHERE p.id = {pid}",
    "SELECT id, substr(info, 30) FROM information_schema.processlist WHERE id = {pid}",
    "SHOW PROCESSLIST",
    "SHOW FULL PROCESSLIST",
    "SELECT trx_mysql_thread_id, trx_query FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = {pid}",
    "SELECT {pid}, count(*) FROM information_schema.PROCESSLIST WHERE info LIKE '%Alice%'",
]


def _volatile(pid: int, result: Any) -> Any:
    """Drop what changes from run to run (times, memory, progress) from a read: only text and ids stay."""
    if result[0] == "refused":
        return result
    names, rows = result
    keep = [i for i, n in enumerate(names) if n.lower() in ("id", "info", "info_binary", "upper(p.info)",
                                                            "substr(info, 30)", "trx_mysql_thread_id",
                                                            "trx_query", "count(*)", "user", "db", "command")
            or n == str(pid)]
    return [names[i] for i in keep], [tuple(r[i] for i in keep) for r in rows]


@pytest.mark.parametrize(
    "template", STATEMENT_READS,
    ids=["info", "info-binary", "star", "upper", "substr", "show", "show-full", "innodb-trx", "like-count"],
)
def test_other_sessions_statements_are_masked(
    mysql_kw: dict[str, Any], people: str, template: str
) -> None:
    import pymysql

    seen: dict[str, dict[str, Any]] = {}
    for name in NAMES:
        raw = pymysql.connect(autocommit=True, **mysql_kw)
        gov = govern(pymysql.connect(autocommit=True, **mysql_kw))
        try:
            def look(pid: int, raw: Any = raw, gov: Any = gov) -> dict[str, Any]:
                sql = template.format(pid=pid)
                return {
                    "raw": _volatile(pid, _of(pid, _run(raw, sql))),
                    "gov": _volatile(pid, _of(pid, _run(gov, sql))),
                    "pid": pid,
                }

            seen[name] = _waiting_application(mysql_kw, people, name, look)
        finally:
            raw.close()
            gov.close()
    a, b = (seen[n] for n in NAMES)
    # the oracle, unprotected: the raw reads show (or count) each application's own name
    assert a["raw"] != b["raw"]
    if "count" not in template:
        assert "alice smith" in repr(a["raw"]).lower() and "zoe quinn-harper" in repr(b["raw"]).lower()

    def same(x: dict[str, Any]) -> Any:  # the connection ids differ between the two runs
        return repr(x["gov"]).replace(str(x["pid"]), "PID")

    assert same(a) == same(b), f"A: {a['gov']}\nB: {b['gov']}"
    assert "alice" not in repr(a["gov"]).lower() and "zoe" not in repr(b["gov"]).lower()
    if "LIKE" in template:
        assert a["gov"][0] == "refused" and "masked-column-predicate" in a["gov"][1]
    else:
        rows = a["gov"][1]
        assert rows, a["gov"]  # not refused: the row is there, its statement text masked whole
        assert all(pid == a["pid"] for pid, *_ in rows)


def test_process_list_without_statements_still_reads(mysql_kw: dict[str, Any], people: str) -> None:
    """The process list's other columns stay exact; an identity with an unmask grant sees the statements."""
    import pymysql

    gov = govern(pymysql.connect(autocommit=True, **mysql_kw))
    dba = govern(pymysql.connect(autocommit=True, **mysql_kw), governed_db.Identity("dana", kind="human", roles=["dba"]), masking={"unmask": [{"role": "dba"}]})
    try:
        def look(pid: int) -> Any:
            return (
                _run(gov, f"SELECT id, user, db, command FROM information_schema.PROCESSLIST WHERE id = {pid}"),
                [r for r in _run(gov, "SHOW PROCESSLIST")[1] if r[0] == pid],
                _run(gov, f"SELECT count(*) FROM information_schema.PROCESSLIST WHERE id = {pid} AND info IS NOT NULL"),
                _run(dba, f"SELECT info FROM information_schema.PROCESSLIST WHERE id = {pid}"),
                _run(dba, "SHOW FULL PROCESSLIST"),
            )

        plain, shown, nonnull, granted, granted_show = _waiting_application(mysql_kw, people, "Alice Smith", look)
        pid = plain[1][0][0]
        assert plain == (["id", "user", "db", "command"], [(pid, mysql_kw["user"], mysql_kw["database"], "Query")])
        assert shown and shown[0][:5] == (pid, mysql_kw["user"], shown[0][2], mysql_kw["database"], "Query")
        assert shown[0][7] == "[FREE_TEXT]"
        assert nonnull == (["count(*)"], [(1,)])
        assert "full_name = 'Alice Smith'" in granted[1][0][0]
        assert any("full_name = 'Alice Smith'" in str(r) for r in granted_show[1])
    finally:
        gov.close()
        dba.close()


def test_aiomysql_process_list_is_masked(mysql_kw: dict[str, Any], people: str) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def read(pid: int) -> Any:
        conn = govern(await aiomysql.connect(autocommit=True, **kw))
        try:
            out = []
            for sql in (f"SELECT id, info FROM information_schema.PROCESSLIST WHERE id = {pid}", "SHOW PROCESSLIST"):
                cur = await conn.cursor()
                await cur.execute(sql)
                out.append([tuple(r) for r in await cur.fetchall() if r[0] == pid])
            return out
        finally:
            conn.close()

    by_id, shown = _waiting_application(mysql_kw, people, "Zoe Quinn-Harper", lambda pid: asyncio.run(read(pid)))
    assert by_id and by_id[0][1] == "[FREE_TEXT]", by_id
    assert shown and shown[0][7] == "[FREE_TEXT]", shown


# -- 0247: storage sizes measure the stored values ----------------------------------------------------------------
@pytest.fixture
def sized(mysql_conn: Any, unique: str) -> Iterator[Callable[[str, str], str]]:
    """Make a table of the given engine whose row 1 holds the given name; each is dropped afterwards."""
    with made_tables(mysql_conn, f"rt10md_{unique}_") as make:
        yield lambda engine, name: make(f"{DDL} ENGINE={engine} CHECKSUM=1", [(1, name, *ROWS[0][2:]), *ROWS[1:]])


SIZE_READS = [
    "SELECT data_length, avg_row_length, index_length, data_free, checksum FROM information_schema.TABLES "
    "WHERE table_schema = DATABASE() AND table_name = '{t}'",
    "SELECT * FROM information_schema.TABLES WHERE table_schema = DATABASE() AND table_name = '{t}'",
    "SELECT data_length + 0, checksum DIV 2 FROM information_schema.TABLES WHERE table_name = '{t}'",
    "SHOW TABLE STATUS LIKE '{t}'",
    "SHOW TABLE STATUS WHERE Name = '{t}'",
    "SELECT count(*) FROM information_schema.TABLES WHERE table_name = '{t}' AND data_length > {length}",
    "SELECT count(*) FROM information_schema.TABLES WHERE table_name = '{t}' AND checksum = {checksum}",
]


def _seen(conn: Any, sql: str) -> Any:
    """Rows of a table-status read, with the times (which differ between the two tables) and names left out."""
    got = _run(conn, sql)
    if got[0] == "refused":
        return got
    names, rows = got
    keep = [i for i, n in enumerate(names) if "time" not in n.lower() and n.lower() not in ("name", "table_name")]
    return [names[i] for i in keep], [tuple(r[i] for i in keep) for r in rows]


@pytest.mark.parametrize("engine", ["MyISAM", "Aria"])
@pytest.mark.parametrize(
    "template", SIZE_READS, ids=["sizes", "star", "computed", "show", "show-where", "filter", "filter-count"]
)
def test_table_sizes_tell_no_value(
    mysql_kw: dict[str, Any], sized: Callable[[str, str], str], engine: str, template: str
) -> None:
    import pymysql

    tables = [sized(engine, name) for name in NAMES]
    raw = pymysql.connect(autocommit=True, **mysql_kw)
    gov = govern(pymysql.connect(autocommit=True, **mysql_kw))
    try:
        # a guess: the first table's length and checksum (the attacker computes them for a candidate value)
        length, checksum = _run(raw, SIZE_READS[0].format(t=tables[0]))[1][0][0:5:4]
        guess = {"length": length, "checksum": checksum}
        truth = [_seen(raw, template.format(t=t, **guess)) for t in tables]
        seen = [_seen(gov, template.format(t=t, **guess)) for t in tables]
    finally:
        raw.close()
        gov.close()
    # the oracle, unprotected (an Aria table's pages hold both records alike; its checksum still differs)
    filtering = "{length}" in template or "{checksum}" in template
    assert truth[0] != truth[1] or (engine == "Aria" and "{length}" in template), truth
    assert seen[0] == seen[1], seen
    if filtering:
        assert seen[0][0] == "refused" and "masked-column-predicate" in seen[0][1], seen
    else:
        names, rows = seen[0]
        assert len(rows) == 1 and rows[0], seen
        for column in ("data_length", "avg_row_length", "checksum"):
            at = [i for i, n in enumerate(names) if n.lower() == column]
            assert all(rows[0][i] is None for i in at), (column, seen)


def test_table_sizes_grow_with_a_name(mysql_kw: dict[str, Any], sized: Callable[[str, str], str]) -> None:
    """The premise, on the raw connection: the longer name makes the longer MyISAM table (records are padded to
    whole words, so five characters more are a few bytes more)."""
    import pymysql

    tables = [sized("MyISAM", name) for name in NAMES]
    raw = pymysql.connect(autocommit=True, **mysql_kw)
    try:
        sizes = [_run(raw, SIZE_READS[0].format(t=t))[1][0][0] for t in tables]
    finally:
        raw.close()
    assert sizes[0] < sizes[1], sizes


def test_table_status_without_sizes_still_reads(mysql_kw: dict[str, Any], sized: Callable[[str, str], str]) -> None:
    """Names, engines, row counts and options stay exact, by information_schema and SHOW; a grant shows sizes."""
    import pymysql

    t = sized("MyISAM", NAMES[0])
    gov = govern(pymysql.connect(autocommit=True, **mysql_kw))
    dba = govern(pymysql.connect(autocommit=True, **mysql_kw), governed_db.Identity("dana", kind="human", roles=["dba"]), masking={"unmask": [{"role": "dba"}]})
    try:
        listed = _run(gov, f"SELECT table_name, engine, table_rows, row_format, create_options, table_collation "
                           f"FROM information_schema.TABLES WHERE table_schema = DATABASE() AND table_name = '{t}'")
        assert listed[1] == [(t, "MyISAM", 3, "Dynamic", "checksum=1", "utf8mb4_general_ci")], listed
        shown = _run(gov, f"SHOW TABLE STATUS LIKE '{t}'")
        row = dict(zip(shown[0], shown[1][0], strict=True))
        assert (row["Name"], row["Engine"], row["Rows"], row["Collation"], row["Comment"]) == (
            t, "MyISAM", 3, "utf8mb4_general_ci", ""
        ), row
        assert row["Data_length"] is None and row["Checksum"] is None
        granted = _run(dba, f"SHOW TABLE STATUS LIKE '{t}'")
        assert dict(zip(granted[0], granted[1][0], strict=True))["Data_length"] > 0, granted
        assert _run(gov, "SHOW TABLES")[1]  # discovery keeps running
    finally:
        gov.close()
        dba.close()


# -- 0247: the sys schema's views over refused catalogs -----------------------------------------------------------
SYS_READS = [
    "SELECT object_name, data, rows_cached FROM sys.x$innodb_buffer_stats_by_table "
    "WHERE object_schema = DATABASE() AND object_name = '{t}'",
    "SELECT object_name, data FROM sys.innodb_buffer_stats_by_table WHERE object_name = '{t}'",
    "SELECT * FROM `sys`.`x$innodb_buffer_stats_by_table` WHERE object_name = '{t}'",
    "SELECT data FROM SYS.X$INNODB_BUFFER_STATS_BY_TABLE WHERE object_name = '{t}'",
    "SELECT object_schema, data FROM sys.x$innodb_buffer_stats_by_schema",
    "SELECT table_name, innodb_buffer_data FROM sys.x$schema_table_statistics_with_buffer",
    "SELECT * FROM sys.innodb_lock_waits",
    "SELECT * FROM sys.x$processlist",
    "SELECT * FROM sys.session",
    "SELECT * FROM sys.schema_table_lock_waits",
]


@pytest.mark.parametrize(
    "template",
    SYS_READS,
    ids=["buffer-x", "buffer", "buffer-quoted", "buffer-upper", "buffer-schema", "with-buffer", "lock-waits",
         "processlist", "session", "table-lock-waits"],
)
def test_sys_views_over_refused_catalogs_are_refused(
    mysql_kw: dict[str, Any], sized: Callable[[str, str], str], template: str
) -> None:
    import pymysql

    tables = [sized("InnoDB", name) for name in NAMES]
    raw = pymysql.connect(autocommit=True, **mysql_kw)
    gov = govern(pymysql.connect(autocommit=True, **mysql_kw))
    try:
        for t in tables:  # both tables' pages in the buffer pool
            _run(raw, f"SELECT * FROM {t}")
        if template.startswith("SELECT object_name, data, rows_cached"):
            # the oracle, unprotected: the page bytes of the two tables differ by the names' lengths
            truth = [_run(raw, template.format(t=t))[1] for t in tables]
            assert truth[0][0][1] < truth[1][0][1], truth
        for t in tables:
            got = _run(gov, template.format(t=t))
            assert got == ("refused", ("system-catalog",)), got
    finally:
        raw.close()
        gov.close()


def test_other_sys_views_still_read(mysql_kw: dict[str, Any]) -> None:
    """Views of the sys schema over nothing that holds values keep running (the version, configuration)."""
    import pymysql

    gov = govern(pymysql.connect(autocommit=True, **mysql_kw))
    try:
        assert _run(gov, "SELECT * FROM sys.version")[1]
        assert _run(gov, "SELECT variable, value FROM sys.sys_config")[0] == ["variable", "value"]
    finally:
        gov.close()


# -- 0247: another session's plan -----------------------------------------------------------------------------------
SESSION_PLANS = [
    "SHOW EXPLAIN FORMAT=JSON FOR {pid}",
    "show explain format = json for {pid}",
    "SHOW ANALYZE FORMAT=JSON FOR {pid}",
    "SHOW EXPLAIN FOR {pid}",
    "SHOW ANALYZE FOR {pid}",
    "EXPLAIN FORMAT=JSON FOR CONNECTION {pid}",
    "EXPLAIN FOR CONNECTION {pid}",
]


def test_another_sessions_plan_is_refused(mysql_kw: dict[str, Any], people: str) -> None:
    import pymysql

    gov = govern(pymysql.connect(autocommit=True, **mysql_kw))
    raw = pymysql.connect(autocommit=True, **mysql_kw)
    try:
        for name in NAMES:
            def look(pid: int, name: str = name) -> Any:
                governed = [_run(gov, sql.format(pid=pid)) for sql in SESSION_PLANS]
                # the oracle, unprotected (MariaDB answers once the application's lock wait ends)
                shown = _run(raw, SESSION_PLANS[0].format(pid=pid))[1][0][0]
                return governed, shown

            governed, shown = _waiting_application(mysql_kw, people, name, look, wait=15)  # ends at the locker's rollback, not by timing out
            assert f"full_name = '{name}'" in shown, shown
            assert governed == [("refused", ("system-catalog",))] * len(SESSION_PLANS), governed
    finally:
        gov.close()
        raw.close()


def test_plans_of_own_statements_still_run(mysql_kw: dict[str, Any], people: str) -> None:
    """EXPLAIN of the agent's own statements keeps running (its plan is masked as decision 0223 says)."""
    import pymysql

    gov = govern(pymysql.connect(autocommit=True, **mysql_kw))
    try:
        for sql in (
            f"EXPLAIN SELECT id FROM {people} WHERE city = 'Paris'",
            f"EXPLAIN FORMAT=JSON SELECT id FROM {people} WHERE id = 1",
            f"EXPLAIN SELECT id FROM {people} WHERE city = 'connection'",
        ):
            got = _run(gov, sql)
            assert got[0] != "refused" and got[1], (sql, got)
    finally:
        gov.close()


def test_page_and_memory_measures_are_masked(mysql_kw: dict[str, Any], people: str) -> None:
    """Coarser measures of the same kind (no oracle shown at these sizes: InnoDB counts 16 KB pages, a session's
    memory grows in blocks): InnoDB's table statistics are refused like its index statistics, file sizes and a
    session's memory come back NULL; the columns beside them stay exact."""
    import pymysql

    gov = govern(pymysql.connect(autocommit=True, **mysql_kw))
    try:
        assert _run(gov, f"SELECT * FROM mysql.innodb_table_stats WHERE table_name = '{people}'") == (
            "refused", ("system-catalog",)
        )
        mine = _run(gov, "SELECT id, memory_used, max_memory_used FROM information_schema.PROCESSLIST "
                         "WHERE id = CONNECTION_ID()")
        assert mine[1] == [(gov.thread_id(), None, None)], mine
        files = _run(gov, "SELECT name, file_size, allocated_size FROM information_schema.INNODB_SYS_TABLESPACES "
                          f"WHERE name LIKE '%/{people}'")
        assert files[1] == [(f"{mysql_kw['database']}/{people}", None, None)], files
        stats = _run(gov, "SELECT name, num_rows, clust_index_size FROM information_schema.INNODB_SYS_TABLESTATS "
                          f"WHERE name LIKE '%/{people}'")
        # num_rows counts the rows of each partition of a partitioned table (a histogram of the partitioning
        # expression): NULL like the sizes since decision 0387
        ((name, num_rows, size),) = stats[1]
        assert name == f"{mysql_kw['database']}/{people}" and num_rows is None and size is None, stats
    finally:
        gov.close()


# -- 0246: a result character set the driver cannot decode --------------------------------------------------------
CHARSET_SWITCHES = [
    "SET character_set_results = latin1",
    "SET NAMES latin1",
    "SET CHARACTER SET latin1",
    "SET @@session.character_set_results = 'latin1'",
    "SET SESSION character_set_results = cp1251",
    "SET character_set_results = NULL",
    "SET NAMES DEFAULT",
    "SET @x = 1, character_set_results = latin1",
]
#: what the switch lets a read tell: where row 1's SSN holds a 5 (copy A: 536-22-8726, copy B: 100-99-0000) and
#: whether its name starts with an A (Alice Smith, Zoe Quinn-Harper)
CHARSET_READS = [
    "SELECT replace(ssn, '5', 'é') AS r FROM t WHERE id = 1",
    "SELECT id, replace(full_name, 'A', 'é') AS r FROM t WHERE id = 1",
]


@pytest.mark.parametrize("read", CHARSET_READS, ids=["ssn-digit", "name-letter"])
def test_result_charset_switch_is_refused(read: str) -> None:
    pair = Pair("mysql")
    try:
        program = [CHARSET_SWITCHES[0], read]
        assert pair.raw_differs(program)  # the oracle, unprotected: a decoding error for copy A only
        a, b = pair.governed(program)
        assert a == b, f"A: {a}\nB: {b}"
        assert a[0][0] == "refused" and "masked-column-predicate" in a[0][1], a
        assert a[1][0] == "rows" and ("[US_SSN]" in a[1][1] or "[PERSON_NAME]" in a[1][1]), a
        run = pair._run(pair.gov[0])
        for switch in CHARSET_SWITCHES:
            with pytest.raises(governed_db.GuardrailViolation) as refused:
                run(switch)
            assert "masked-column-predicate" in refused.value.decision.rules, switch
            assert "result character set" in str(refused.value), switch
    finally:
        pair.close()


def test_utf8_charset_switches_still_run(mysql_kw: dict[str, Any], people: str) -> None:
    """UTF-8 switches run and reads stay exact; an identity with an unmask grant may switch to latin1."""
    import pymysql

    gov = govern(pymysql.connect(autocommit=True, **mysql_kw))
    dba = govern(pymysql.connect(autocommit=True, **mysql_kw), governed_db.Identity("dana", kind="human", roles=["dba"]), masking={"unmask": [{"role": "dba"}]})
    try:
        for sql in (
            "SET NAMES utf8mb4",
            "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci'",
            "SET character_set_results = utf8mb4",
            "SET @@session.character_set_results = 'utf8'",
            "SET character_set_client = utf8mb4",
        ):
            _run(gov, sql)
        assert _run(gov, f"SELECT city, full_name FROM {people} WHERE id = 2")[1] == [("Lyon", "[PERSON_NAME]")]
        _run(dba, "SET character_set_results = latin1")
        assert _run(dba, f"SELECT full_name FROM {people} WHERE id = 2")[1] == [("Ivan Petrov",)]
    finally:
        gov.close()
        dba.close()


def test_aiomysql_result_charset_switch_is_refused(mysql_kw: dict[str, Any]) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def switch() -> str:
        conn = govern(await aiomysql.connect(autocommit=True, **kw))
        try:
            cur = await conn.cursor()
            with pytest.raises(governed_db.GuardrailViolation):
                await cur.execute("SET NAMES latin1")
            await cur.execute("SELECT @@character_set_results")
            return str((await cur.fetchone())[0])
        finally:
            conn.close()

    assert asyncio.run(switch()).startswith("utf8")


# -- the effect guard inside an explicit transaction on an autocommit connection ------------------------------------
def test_explicit_transaction_on_autocommit_connection_rolls_back(
    mysql_kw: dict[str, Any], mysql_conn: Any, people: str
) -> None:
    import pymysql

    gov = govern(pymysql.connect(autocommit=True, **mysql_kw))

    def cities() -> list[Any]:
        with mysql_conn.cursor() as cur:
            cur.execute(f"SELECT id, city FROM {people} ORDER BY id")
            return [tuple(r) for r in cur.fetchall()]

    before = cities()
    try:
        for sql in ("START TRANSACTION", f"UPDATE {people} SET city = 'Nice' WHERE id = 1",
                    f"UPDATE {people} SET city = 'Oslo' WHERE id = 2"):
            _run(gov, sql)
        refused = _run(gov, f"UPDATE {people} SET city = 'Rome' WHERE id > 0")  # every row: the guard refuses
        assert refused[0] == "refused", refused
        assert _run(gov, f"SELECT city FROM {people} WHERE id IN (1, 2) ORDER BY id")[1] == [("Nice",), ("Oslo",)]
        _run(gov, "ROLLBACK")
        assert cities() == before  # nothing was kept: not the writes before the refusal, not the refused one
        for sql in ("BEGIN", f"UPDATE {people} SET city = 'Nice' WHERE id = 1", "COMMIT"):
            _run(gov, sql)
        _run(gov, f"UPDATE {people} SET city = 'Oslo' WHERE id = 2")  # autocommit: kept at once
        assert cities()[:2] == [(1, "Nice"), (2, "Oslo")]
    finally:
        gov.close()


def test_aiomysql_explicit_transaction_rolls_back(mysql_kw: dict[str, Any], mysql_conn: Any, people: str) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def run() -> None:
        conn = govern(await aiomysql.connect(autocommit=True, **kw))
        try:
            cur = await conn.cursor()
            for sql in ("START TRANSACTION", f"UPDATE {people} SET city = 'Nice' WHERE id = 1", "ROLLBACK"):
                await cur.execute(sql)
        finally:
            conn.close()

    asyncio.run(run())
    with mysql_conn.cursor() as cur:
        cur.execute(f"SELECT city FROM {people} WHERE id = 1")
        assert cur.fetchone()[0] == "Paris"


# -- 0247: bytes the redo log (and the binary log) wrote ----------------------------------------------------------
REDO_READS = [
    "SHOW GLOBAL STATUS LIKE 'Innodb_os_log_written'",
    "SHOW STATUS LIKE 'Innodb_lsn%'",
    "SHOW GLOBAL STATUS LIKE 'Innodb%'",
    "SHOW GLOBAL STATUS WHERE Variable_name = 'Innodb_checkpoint_age'",
    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_LSN_CURRENT'",
    "SELECT count FROM information_schema.INNODB_METRICS WHERE name = 'os_log_bytes_written'",
    "SHOW GLOBAL STATUS LIKE 'Binlog_bytes_written'",
]


def test_bytes_logged_tell_no_value() -> None:
    pair = Pair("mysql")
    try:
        def delta(conn: Any) -> int:
            """Bytes the redo log grew by around an allowed write of a clear column of row 1 (the least of a
            few tries: other sessions on a shared server only add)."""
            seen = []
            for _ in range(4):
                cur = conn.cursor()
                cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_lsn_current'")
                before = int(cur.fetchone()[1])
                cur.execute("UPDATE t SET city = 'Nice-sur-mer' WHERE id = 1")
                cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_lsn_current'")
                seen.append(int(cur.fetchone()[1]) - before)
                cur.execute("UPDATE t SET city = 'Paris' WHERE id = 1")
            return min(seen)

        deltas = [delta(c) for c in pair.raw]
        assert deltas[0] != deltas[1], deltas  # the oracle, unprotected: the row's size, masked values and all
        program = ["UPDATE t SET city = 'Nice-sur-mer' WHERE id = 1", *REDO_READS, "UPDATE t SET city = 'Paris' "
                   "WHERE id = 1"]
        a, b = pair.governed(program)
        assert a == b, f"A: {a}\nB: {b}"
        for seen in a[1:-1]:
            assert seen[0] == "refused" and "system-catalog" in seen[1], seen
    finally:
        pair.close()


def test_other_innodb_counters_still_read(mysql_kw: dict[str, Any]) -> None:
    import pymysql

    gov = govern(pymysql.connect(autocommit=True, **mysql_kw))
    try:
        # the buffer pool's page counts are refused since decision 0291 (they measure how many pages rows fill)
        for sql in ("SHOW STATUS LIKE 'Threads%'",
                    "SHOW ENGINE INNODB MUTEX", "SHOW SLAVE STATUS"):
            assert _run(gov, sql)[0] != "refused", sql
    finally:
        gov.close()
