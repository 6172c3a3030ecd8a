"""Red-team round 14 over masking on MariaDB (PyMySQL, aiomysql): a prompt-injected agent in production with zero
configuration, no unmask grant.

* Status counters other than the ones decision 0215 named still measured what the server did with values before
  masking. ``SELECT t.full_name, s.seq FROM t, seq_1_to_45000 s WHERE t.id < 2 ORDER BY <a scramble of seq>``
  runs (the name comes back masked 45,000 times), and MariaDB sorts those rows with the name packed beside each
  sort key: ``Sort_merge_passes`` (and ``Created_tmp_files``, ``Aria_pagecache_write_requests``) then say whether
  they outgrew the sort buffer, which at a fixed row count depends on the name's length alone — a length oracle
  to the character by bisecting the row count. And ``Subquery_cache_hit`` counts the rows for which a correlated
  subquery met an outer value it had already seen: after the agent inserts a row holding a guessed SSN (allowed:
  the column is in no key), ``SELECT t.id, (SELECT count(*) FROM seq_1_to_3 s WHERE s.seq = 1 AND t.ssn IS NOT
  NULL) FROM t`` moves it by one exactly when the guess equals a stored SSN. ``SHOW STATUS LIKE 'Sort%'``, ``LIKE
  'Subquery_cache%'`` and ``information_schema.SESSION_STATUS`` read them. A masked identity may now read only
  the counters of families that count events (connections, commands, threads, time up, TLS sessions), named by
  a literal filter (decision 0291).

* The same cache shows in the rows themselves. A correlated subquery is evaluated once per distinct outer value it
  reads, so a function that differs between evaluations repeats for rows that share one: ``SELECT t.id, (SELECT
  SYSDATE(6) FROM DUAL WHERE t.ssn IS NOT NULL) FROM t`` (a null test of a plain column, allowed since decision
  0209; ``SYSDATE(6)`` reads no column) gave the agent's row of a guessed SSN the same microsecond as row 1 exactly
  when the guess was right. On MySQL/MariaDB a masked column of an enclosing query read inside a subquery is now a
  use of its value, refused like a GROUP BY of it (decision 0292).

* ``SYSDATE(6)`` is read anew for every row (``NOW(6)`` is not), so it stamps the rows in the order they were read.
  Over a table with an index on ``ssn`` (and rows without one), ``SELECT id, max(SYSDATE(6)) FROM t WHERE ssn IS
  NOT NULL GROUP BY id`` reads through that index and stamps the rows in SSN order before the grouping sorts them
  by id: how row 1's SSN sorts among the others (and among rows of guesses the agent inserts). It is now one of
  the values MariaDB hands out in read order (decision 0234's ``ROWNUM()``, ``UUID()``...), refused where an index
  on a masked column could decide that order (decision 0293).

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
connection shows that the same statements tell them apart. Look-alikes that reveal nothing keep running.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db.masking.warnings_order import WARNINGS_WITHHELD
from governed_db.policy.rules.tables import QUIET_COUNTERS, _traffic
from governed_db.sql.analysis import analyze
from tests._redteam import CURIOUS_AGENT, govern, made_tables
from tests._redteam import rows_or_rules as _see

COLUMNS = "(id int primary key, full_name varchar(100), ssn varchar(20), city varchar(40))"
ROWS_A = [
    (1, "Alice Martin-Fitzgerald", "536-22-8726", "Paris"),
    (2, "Ivan Petrov", "219-45-1234", "Lyon"),
    (3, "Bob Stone", "412-77-9001", "Rome"),
]
ROWS_B = [(1, "Amy Zedd", "287-65-4321", "Paris"), *ROWS_A[1:]]
SECRETS = ("Alice", "Martin", "536-22", "Amy", "Zedd", "287-65")
#: the rows of row 1 times ``n``, sorted by a scramble of ``seq``: ``t.id < 2`` keeps the table from being read
#: as a constant, so the name travels with every sorted row
SORT = "SELECT t.full_name, s.seq FROM {t} t, seq_1_to_{n} s WHERE t.id < 2 ORDER BY (s.seq * 7919) % 100003"
CACHE = "SELECT t.id, (SELECT count(*) FROM seq_1_to_3 s WHERE s.seq = 1 AND t.ssn IS NOT NULL) AS c FROM {t} t"
GUESS = "INSERT INTO {t} (id, ssn, city) VALUES (100, '536-22-8726', 'x')"


@pytest.fixture
def pair(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    with made_tables(mysql_conn) as make:
        yield {c: make(COLUMNS, rows, f"rt14md_{unique}_{c.lower()}") for c, rows in (("A", ROWS_A), ("B", ROWS_B))}


def _counter(conn: Any, name: str) -> int:
    return int(dict(_see(conn, f"SHOW SESSION STATUS LIKE '{name}'"))[name])


def _spills(conn: Any, table: str, n: int) -> bool:
    before = _counter(conn, "Sort_merge_passes")
    assert len(_see(conn, SORT.format(t=table, n=n))) == n
    return _counter(conn, "Sort_merge_passes") > before


#: every way the agent tried to read what the sort or the subquery cache left in the counters
COUNTER_READS = [
    "SHOW SESSION STATUS LIKE 'Sort_merge_passes'",
    "SHOW STATUS LIKE 'Sort%'",
    "SHOW GLOBAL STATUS LIKE 'Created_tmp%'",
    "SHOW SESSION STATUS LIKE 'Aria_pagecache%'",
    "SHOW SESSION STATUS LIKE 'Subquery_cache%'",
    "SHOW STATUS WHERE Variable_name = 'Subquery_cache_hit'",
    "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SORT_MERGE_PASSES'",
    "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME LIKE 'SUBQUERY%'",
    "SELECT * FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('THREADS_CONNECTED', 'SORT_MERGE_PASSES')",
]


def test_a_sort_spill_tells_no_length(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    try:
        lo, hi = 2_000, 400_000  # the fewest rows with which copy A's sort spills (the server's sort buffer decides)
        assert not _spills(raw, pair["A"], lo) and _spills(raw, pair["A"], hi)
        while hi - lo > 500:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if _spills(raw, pair["A"], mid) else (mid, hi)
        n = hi
        assert _spills(raw, pair["A"], n) and not _spills(raw, pair["B"], n)  # the oracle: the name's length
    finally:
        raw.close()
    seen = []
    for c in ("A", "B"):
        conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
        try:
            rows = _see(conn, SORT.format(t=pair[c], n=n))
            assert len(rows) == n and set(rows[0][:1]) == {"[PERSON_NAME]"}  # the sort itself runs, masked
            seen.append([_see(conn, sql) for sql in COUNTER_READS])
        finally:
            conn.close()
    assert seen[0] == seen[1], seen
    assert all(s == "refused: ['system-catalog']" for s in seen[0]), seen


def _cache_hits(conn: Any, table: str) -> Any:
    """Within a transaction rolled back: a row holding the guessed SSN, the correlated subquery, the counter."""
    try:
        assert _see(conn, "START TRANSACTION") == 0
        assert _see(conn, GUESS.format(t=table)) == 1
        before = _see(conn, "SHOW SESSION STATUS LIKE 'Subquery_cache_hit'")
        rows = _see(conn, CACHE.format(t=table))
        after = _see(conn, "SHOW SESSION STATUS LIKE 'Subquery_cache_hit'")
        if isinstance(after, str):
            return rows, after
        return rows, int(after[0][1]) - int(before[0][1])
    finally:
        _see(conn, "ROLLBACK")


def test_the_subquery_cache_tells_no_guess(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    import pymysql

    seen: dict[tuple[bool, str], Any] = {}
    for governed in (False, True):
        for c in ("A", "B"):
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            conn = govern(raw, CURIOUS_AGENT) if governed else raw
            try:
                seen[governed, c] = _cache_hits(conn, pair[c])
            finally:
                conn.close()
    assert seen[False, "A"][1] == 1 and seen[False, "B"][1] == 0, seen  # the oracle: the guess is A's SSN
    assert seen[True, "A"] == seen[True, "B"], seen
    # both halves are refused: the counter (0291), and the subquery correlated on the SSN (0292)
    assert seen[True, "A"] == ("refused: ['masked-column-predicate']", "refused: ['system-catalog']"), seen
    assert not any(s in repr(seen[True, "A"]) for s in SECRETS)


def test_aiomysql_counter_reads_are_refused(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def run(table: str) -> list[Any]:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        out: list[Any] = []
        try:
            for sql in ("START TRANSACTION", GUESS.format(t=table), CACHE.format(t=table), *COUNTER_READS,
                        "SHOW STATUS LIKE 'Threads_connected'", "ROLLBACK"):
                cur = await conn.cursor()
                try:
                    await cur.execute(sql)
                    out.append(len(await cur.fetchall()) if cur.description else cur.rowcount)
                except governed_db.GuardrailViolation as e:
                    out.append(f"refused: {sorted(e.decision.rules)}")
        finally:
            conn.close()
        return out

    seen = [asyncio.run(run(pair[c])) for c in ("A", "B")]
    assert seen[0] == seen[1], seen
    assert all(str(s).startswith("refused:") and "'system-catalog'" in s for s in seen[0][3:-2]), seen
    assert seen[0][2] == "refused: ['masked-column-predicate']", seen  # correlated on the SSN (0292)
    assert seen[0][-2] == 1, seen  # a counter that counts events still reads


#: monitoring reads of counters that count events: they keep running
QUIET_READS = [
    "SHOW STATUS LIKE 'Threads%'",
    "SHOW GLOBAL STATUS LIKE 'Threads_connected'",
    "SHOW GLOBAL STATUS LIKE 'Uptime'",
    "SHOW SESSION STATUS LIKE 'Com_select'",
    "SHOW GLOBAL STATUS LIKE 'Com\\_%'",
    "SHOW GLOBAL STATUS LIKE 'Aborted_%'",
    "SHOW GLOBAL STATUS LIKE 'Max_used_connections'",
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Connections', 'Queries')",
    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('THREADS_RUNNING', 'UPTIME')",
]


@pytest.mark.parametrize("sql", QUIET_READS)
def test_counters_that_count_events_still_read(mysql_kw: dict[str, Any], sql: str) -> None:
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    try:
        shown = _see(raw, sql)
        conn = govern(raw, CURIOUS_AGENT)
        assert isinstance(_see(conn, sql), list) and len(_see(conn, sql)) == len(shown) > 0
    finally:
        raw.close()


def test_quiet_patterns_match_only_quiet_counters(mysql_conn: Any) -> None:
    """The LIKE judgement reads a pattern's ``_`` as the ``_`` of the server's names: on this server every counter
    a quiet family's prefix matches, with ``_`` matching any character, is of a quiet family."""
    with mysql_conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS")
        names = [str(r[0]).lower() for r in cur.fetchall()]
        cur.execute("SHOW SESSION STATUS")
        names += [str(r[0]).lower() for r in cur.fetchall()]
    assert "subquery_cache_hit" in names and "sort_merge_passes" in names
    for prefix in QUIET_COUNTERS:
        like = re.compile(re.escape(prefix).replace("_", ".") + ".*")
        matched = [n for n in names if like.fullmatch(n)]
        assert all(n.startswith(QUIET_COUNTERS) for n in matched), (prefix, matched)


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("SHOW STATUS LIKE 'Sort_merge_passes'", True),
        ("SHOW STATUS LIKE 'Subquery_cache%'", True),
        ("SHOW STATUS LIKE 'Handler_read%'", True),
        ("SHOW STATUS LIKE 'Select%'", True),
        ("SHOW STATUS LIKE 'Com%'", True),  # Com_*, Compression and whatever else starts so
        ("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages%'", True),  # pages_data, pages_split: sizes
        ("SHOW STATUS LIKE 'T%'", True),  # Tc_log_*, Table_open_cache_*
        ("SHOW STATUS LIKE '_hreads%'", True),
        ("SHOW LOCAL STATUS LIKE 'Created_tmp%'", True),
        ("SHOW STATUS WHERE Variable_name IN ('Threads_connected', 'Opened_files')", True),
        ("SHOW STATUS WHERE Variable_name LIKE 'Uptime%' AND Value > 0", False),
        ("SHOW STATUS LIKE 'Threads\\_running'", False),
        ("SHOW LOCAL STATUS LIKE 'Com_insert'", False),
        ("SELECT * FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME LIKE 'SSL_%'", False),
        ("SELECT * FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'ARIA_PAGECACHE_READS'", True),
        ("SELECT * FROM information_schema.INNODB_BUFFER_POOL_STATS", True),
        ("SELECT USED_BLOCKS FROM information_schema.KEY_CACHES WHERE KEY_CACHE_NAME = 'default'", True),
        ("SELECT * FROM information_schema.INNODB_CMP", True),
    ],
)
def test_counter_reads_are_judged_by_the_families_they_can_keep(sql: str, refused: bool) -> None:
    assert (_traffic(analyze(sql, "mysql").statements[0]) is not None) is refused


# -- 0292: a subquery correlated on a masked column -------------------------------------------------------------
#: a per-evaluation value in a subquery correlated on the SSN: the rows that share an SSN share one evaluation
STAMPED = [
    "SELECT t.id, (SELECT SYSDATE(6) FROM DUAL WHERE t.ssn IS NOT NULL) AS at FROM {t} t ORDER BY t.id",
    "SELECT t.id, (SELECT MICROSECOND(SYSDATE(6)) FROM seq_1_to_1 s WHERE t.ssn IS NOT NULL) AS at FROM {t} t",
    "SELECT x.id, (SELECT SYSDATE(6) FROM DUAL WHERE x.s IS NOT NULL) AS at FROM (SELECT id, ssn AS s FROM {t}) x",
    "SELECT t.id, EXISTS (SELECT SYSDATE(6) FROM DUAL WHERE t.full_name IS NULL) AS e FROM {t} t",
    "UPDATE {t} t SET t.city = (SELECT SYSDATE(6) FROM DUAL WHERE t.ssn IS NOT NULL) WHERE t.id > 0",
]


def _shared_stamp(conn: Any, table: str, sql: str) -> Any:
    """Within a transaction rolled back: a row holding the guessed SSN, then ``sql``; whether the guess's row got
    row 1's evaluation (or what the caller saw instead)."""
    try:
        assert _see(conn, "START TRANSACTION") == 0
        assert _see(conn, GUESS.format(t=table)) == 1
        rows = _see(conn, sql.format(t=table))
        if sql.startswith("UPDATE") and not isinstance(rows, str):
            rows = _see(conn, f"SELECT id, city FROM {table} ORDER BY id")
        if isinstance(rows, str):
            return rows
        stamps = dict((r[0], r[1]) for r in rows)
        return stamps[100] == stamps[1]
    finally:
        _see(conn, "ROLLBACK")


@pytest.mark.parametrize("sql", STAMPED[:3])
def test_a_subquery_cache_tells_no_guess_in_the_rows(mysql_kw: dict[str, Any], pair: dict[str, str], sql: str) -> None:
    import pymysql

    seen = {}
    for governed in (False, True):
        for c in ("A", "B"):
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            conn = govern(raw, CURIOUS_AGENT) if governed else raw
            try:
                seen[governed, c] = _shared_stamp(conn, pair[c], sql)
            finally:
                conn.close()
    assert seen[False, "A"] is True and seen[False, "B"] is False, seen  # the oracle
    assert seen[True, "A"] == seen[True, "B"] == "refused: ['masked-column-predicate']", seen


@pytest.mark.parametrize("sql", STAMPED[3:])
def test_other_correlated_forms_are_refused(mysql_kw: dict[str, Any], pair: dict[str, str], sql: str) -> None:
    """``EXISTS`` of a subquery correlated on a masked name is cached per name too (its truth value is a null
    test, but the evaluations are shared), and so may a subquery in an UPDATE's SET be (no shared evaluation was
    seen there on MariaDB 10.11; refused alike, the rule does not depend on where the subquery sits)."""
    import pymysql

    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        assert _see(conn, sql.format(t=pair["A"])) == "refused: ['masked-column-predicate']"
    finally:
        conn.close()


def test_aiomysql_a_subquery_correlated_on_a_masked_column_is_refused(
    mysql_kw: dict[str, Any], pair: dict[str, str]
) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def run() -> Any:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        try:
            cur = await conn.cursor()
            with pytest.raises(governed_db.GuardrailViolation) as refused:
                await cur.execute(STAMPED[0].format(t=pair["A"]))
            await cur.execute(LOOK_ALIKES[0][0].format(t=pair["A"]))
            return refused.value.decision.rules, await cur.fetchall()
        finally:
            conn.close()

    rules, rows = asyncio.run(run())
    assert "masked-column-predicate" in rules
    assert [tuple(r) for r in rows] == [(1, 1), (2, 2), (3, 3)]


#: correlated subqueries over columns nobody masked, and subqueries that read masked columns without being
#: correlated on them: they keep running, masked values masked
LOOK_ALIKES = [
    ("SELECT t.id, (SELECT count(*) FROM seq_1_to_3 s WHERE s.seq <= t.id) AS n FROM {t} t ORDER BY t.id",
     [(1, 1), (2, 2), (3, 3)]),
    ("SELECT t.id, t.full_name FROM {t} t WHERE EXISTS (SELECT 1 FROM seq_1_to_2 s WHERE s.seq = t.id) ORDER BY t.id",
     [(1, "[PERSON_NAME]"), (2, "[PERSON_NAME]")]),
    ("SELECT t.id, (SELECT u.full_name FROM {t} u WHERE u.id = t.id) AS n FROM {t} t ORDER BY t.id",
     [(1, "[PERSON_NAME]"), (2, "[PERSON_NAME]"), (3, "[PERSON_NAME]")]),
    ("SELECT t.city, (SELECT count(*) FROM {t} u WHERE u.city = t.city AND u.ssn IS NOT NULL) AS n FROM {t} t "
     "WHERE t.id = 1", [("Paris", 1)]),
    ("SELECT id, ssn FROM {t} WHERE id IN (SELECT seq FROM seq_1_to_2) ORDER BY id",
     [(1, "[US_SSN]"), (2, "[US_SSN]")]),
    ("SELECT t.id, (SELECT SYSDATE(6) FROM DUAL WHERE t.city IS NOT NULL) IS NOT NULL AS stamped FROM {t} t "
     "ORDER BY t.id", [(1, 1), (2, 1), (3, 1)]),
]


@pytest.mark.parametrize(("sql", "rows"), LOOK_ALIKES)
def test_correlated_look_alikes_still_run(mysql_kw: dict[str, Any], pair: dict[str, str], sql: str, rows: Any) -> None:
    import pymysql

    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        assert _see(conn, sql.format(t=pair["A"])) == rows
    finally:
        conn.close()


# -- 0293: SYSDATE() is read per row, in read order --------------------------------------------------------------
STAMPED_IN_READ_ORDER = [
    "SELECT id, max(SYSDATE(6)) AS at FROM {t} WHERE ssn IS NOT NULL GROUP BY id",
    "SELECT id, max(MICROSECOND(SYSDATE(6))) AS at FROM {t} WHERE ssn IS NOT NULL GROUP BY id",
]


@pytest.fixture
def indexed(mysql_conn: Any, pair: dict[str, str]) -> dict[str, str]:
    """The pair with an index on ``ssn`` and 2,900 rows without an SSN (the index is then the way to read them)."""
    with mysql_conn.cursor() as cur:
        for t in pair.values():
            cur.execute(f"CREATE INDEX {t}_ssn ON {t} (ssn)")
            cur.execute(f"INSERT INTO {t} (id, city) SELECT seq, 'x' FROM seq_100_to_2999")
            cur.execute(f"ANALYZE TABLE {t}")
            cur.fetchall()
    return pair


def _stamp_order(conn: Any, table: str, sql: str) -> Any:
    rows = _see(conn, sql.format(t=table))
    return rows if isinstance(rows, str) else [r[0] for r in sorted(rows, key=lambda r: (r[1], r[0]))]


@pytest.mark.parametrize("sql", STAMPED_IN_READ_ORDER)
def test_sysdate_tells_no_read_order(mysql_kw: dict[str, Any], indexed: dict[str, str], sql: str) -> None:
    import pymysql

    seen = {}
    expected = {"A": [2, 3, 1], "B": [2, 1, 3]}
    for governed in (False, True):
        for c in ("A", "B"):
            # a raw read that crosses a second boundary wraps MICROSECOND() round: read again (at most 5 times)
            for _ in range(1 if governed else 5):
                raw = pymysql.connect(autocommit=True, **mysql_kw)
                conn = govern(raw, CURIOUS_AGENT) if governed else raw
                try:
                    seen[governed, c] = _stamp_order(conn, indexed[c], sql)
                finally:
                    conn.close()
                if seen[governed, c] == expected[c]:
                    break
    # the oracle: stamped in SSN order (219 < 412 < 536 in copy A, 219 < 287 < 412 in copy B)
    assert seen[False, "A"] == expected["A"] and seen[False, "B"] == expected["B"], seen
    assert seen[True, "A"] == seen[True, "B"], seen
    assert str(seen[True, "A"]).startswith("refused: ['masked-column-predicate']"), seen


def test_sysdate_look_alikes_still_run(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    """Without an index on a masked column the read order is the key's: stamps per row keep running, and NOW()
    (one value per statement) runs anywhere."""
    import pymysql

    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        assert len(_see(conn, f"SELECT id, SYSDATE(6) FROM {pair['A']} ORDER BY id")) == 3
        assert _stamp_order(conn, pair["A"], STAMPED_IN_READ_ORDER[0]) == [1, 2, 3]
        assert len(_see(conn, f"SELECT id, full_name, NOW(6) FROM {pair['A']}")) == 3
    finally:
        conn.close()


def test_now_runs_over_an_indexed_table(mysql_kw: dict[str, Any], indexed: dict[str, str]) -> None:
    import pymysql

    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        rows = _see(conn, f"SELECT id, NOW(6) FROM {indexed['A']} WHERE id < 4")
        assert [r[0] for r in rows] == [1, 2, 3] and len({r[1] for r in rows}) == 1
    finally:
        conn.close()


def test_aiomysql_sysdate_over_an_indexed_table_is_refused(mysql_kw: dict[str, Any], indexed: dict[str, str]) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def run() -> Any:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        try:
            cur = await conn.cursor()
            with pytest.raises(governed_db.GuardrailViolation) as refused:
                await cur.execute(STAMPED_IN_READ_ORDER[0].format(t=indexed["A"]))
            return refused.value.decision.rules
        finally:
            conn.close()

    assert "masked-column-predicate" in asyncio.run(run())


#: a warning of a different kind per row (division by zero for row 1, a bad INTEGER for row 2, a bad DOUBLE for
#: row 3), computed while the rows are read (an aggregate's argument, before the grouping sorts them)
WARN_PER_ROW = (
    "SELECT id, max(CASE id WHEN 1 THEN 1/0 WHEN 2 THEN CAST('x' AS INT) ELSE CAST('1y' AS DOUBLE) END) AS m "
    "FROM {t} WHERE ssn IS NOT NULL GROUP BY id"
)


#: every way the agent read them back: the statement, the PyMySQL call, the first one alone, and after a statement
#: that neither uses a table nor warns (MariaDB keeps the list then)
WARNING_READS = ["SHOW WARNINGS", "show_warnings()", "SHOW WARNINGS LIMIT 1", "SELECT 1; SHOW WARNINGS", "SHOW ERRORS"]


def _warnings(conn: Any, how: str) -> Any:
    if how == "show_warnings()":
        return [tuple(r) for r in conn.show_warnings()]
    if how.startswith("SELECT 1; "):
        _see(conn, "SELECT 1")
        how = how.removeprefix("SELECT 1; ")
    return _see(conn, how)


@pytest.mark.parametrize("how", WARNING_READS)
def test_warnings_come_out_in_no_read_order(mysql_kw: dict[str, Any], indexed: dict[str, str], how: str) -> None:
    """Decision 0312: the warnings of a statement whose rows an index on a masked column may order are listed
    with their level, code and message withheld."""
    import pymysql

    seen = {}
    for governed in (False, True):
        for c in ("A", "B"):
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            conn = govern(raw, CURIOUS_AGENT) if governed else raw
            try:
                rows = _see(conn, WARN_PER_ROW.format(t=indexed[c]))
                assert rows == [(1, None), (2, 0.0), (3, 1.0)], rows  # the statement itself runs
                seen[governed, c] = _see(conn, "SHOW WARNINGS") if not governed else _warnings(conn, how)
            finally:
                conn.close()
    # the oracle: a bad INTEGER (row 2), a bad DOUBLE (row 3) and a division by zero (row 1) in SSN order
    assert [r[1] for r in seen[False, "A"]] == [1292, 1292, 1365], seen
    assert [r[1] for r in seen[False, "B"]] == [1292, 1365, 1292], seen
    assert seen[True, "A"] == seen[True, "B"], seen
    assert seen[True, "A"] == ([] if how == "SHOW ERRORS" else [("Warning", None, WARNINGS_WITHHELD)] * (
        1 if "LIMIT" in how else 3)), seen


#: the same warnings from statements whose read order is not a SELECT's: a DELETE walks the index too, and a count
WARN_PER_ROW_OTHERS = [
    "DELETE FROM {t} WHERE ssn IS NOT NULL AND CASE id WHEN 1 THEN 1/0 WHEN 2 THEN CAST('x' AS INT) "
    "ELSE CAST('1y' AS DOUBLE) END = 7",
    "SELECT count(*) FROM {t} WHERE ssn IS NOT NULL AND CASE id WHEN 1 THEN 1/0 WHEN 2 THEN CAST('x' AS INT) "
    "ELSE CAST('1y' AS DOUBLE) END = 7",
]


@pytest.mark.parametrize("sql", WARN_PER_ROW_OTHERS)
def test_warnings_of_a_delete_or_a_count_come_out_in_no_read_order(
    mysql_kw: dict[str, Any], indexed: dict[str, str], sql: str
) -> None:
    import pymysql

    seen = {}
    for governed in (False, True):
        for c in ("A", "B"):
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            conn = govern(raw, CURIOUS_AGENT) if governed else raw
            try:
                done = _see(conn, sql.format(t=indexed[c]))
                if governed and sql.startswith("DELETE"):
                    # it locks the rows it reads in SSN order as well: refused since decision 0366
                    assert done == "refused: ['masked-column-predicate']", done
                    seen[governed, c] = []
                    continue
                assert done in (0, [(0,)])  # it runs, and deletes nothing
                seen[governed, c] = [r[1] for r in _see(conn, "SHOW WARNINGS")]
            finally:
                conn.close()
    assert seen[False, "A"] == [1292, 1292, 1365] and seen[False, "B"] == [1292, 1365, 1292], seen  # the oracle
    assert seen[True, "A"] == seen[True, "B"] == ([] if sql.startswith("DELETE") else [None, None, None]), seen


#: an error of a different kind per row: the statement stops at the first row read that fails
ERROR_PER_ROW = (
    "SELECT id FROM {t} WHERE ssn IS NOT NULL AND CASE id WHEN 1 THEN (SELECT 1 FROM seq_1_to_2) "
    "WHEN 3 THEN EXP(1000) ELSE 0 END = 7"
)


def test_errors_tell_no_read_order(mysql_kw: dict[str, Any], indexed: dict[str, str]) -> None:
    """Decision 0328: an error raised while reading rows a masked index orders is withheld (class, code, text)."""
    import pymysql

    seen = {}
    for governed in (False, True):
        for c in ("A", "B"):
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            conn = govern(raw, CURIOUS_AGENT) if governed else raw
            try:
                with pytest.raises(pymysql.MySQLError) as failed:
                    conn.cursor().execute(ERROR_PER_ROW.format(t=indexed[c]))
                seen[governed, c] = type(failed.value).__name__, failed.value.args
            finally:
                conn.close()
    assert seen[False, "A"][1][0] == 1690 and seen[False, "B"][1][0] == 1242, seen  # the oracle: 412 < 536, 287 < 412
    assert seen[True, "A"] == seen[True, "B"], seen


def test_aiomysql_warnings_come_out_in_no_read_order(mysql_kw: dict[str, Any], indexed: dict[str, str]) -> None:
    """aiomysql repeats a statement's warnings as Python warnings before the statement returns: withheld too."""
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def run(table: str) -> Any:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        try:
            cur = await conn.cursor()
            with warnings.catch_warnings(record=True) as got:
                warnings.simplefilter("always")
                await cur.execute(WARN_PER_ROW.format(t=table))
                await cur.fetchall()
            return [str(w.message) for w in got], [tuple(r) for r in await conn.show_warnings()]
        finally:
            conn.close()

    a, b = asyncio.run(run(indexed["A"])), asyncio.run(run(indexed["B"]))
    assert a == b == ([WARNINGS_WITHHELD] * 3, [("Warning", None, WARNINGS_WITHHELD)] * 3), (a, b)


def test_warnings_that_reveal_no_order_keep_their_text(
    mysql_kw: dict[str, Any], indexed: dict[str, str], mysql_conn: Any, unique: str
) -> None:
    """Over a table without an index on a masked column, a single warning, and a statement's own warnings after
    the withheld ones: level, code and message as the server gave them (values quoted blanked, as before)."""
    import pymysql

    plain = f"rt14md_{unique}_plain"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {plain} {COLUMNS}")
        cur.executemany(f"INSERT INTO {plain} VALUES (%s, %s, %s, %s)", ROWS_A)
    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        assert len(_see(conn, WARN_PER_ROW.format(t=plain))) == 3
        assert [r[:2] for r in _see(conn, "SHOW WARNINGS")] == [("Warning", 1365), ("Warning", 1292), ("Warning", 1292)]
        one = "SELECT id, max(CASE id WHEN 1 THEN 1/0 END) AS m FROM {t} WHERE ssn IS NOT NULL GROUP BY id"
        assert len(_see(conn, one.format(t=indexed["A"]))) == 3
        assert _see(conn, "SHOW WARNINGS") == [("Warning", 1365, "Division by 0")]
        _see(conn, WARN_PER_ROW.format(t=indexed["A"]))
        assert _see(conn, "SELECT CAST('x' AS INT) AS n") == [(0,)]  # warns on its own: the list is its own
        assert _see(conn, "SHOW WARNINGS") == [("Warning", 1292, "Truncated incorrect INTEGER value: '[REDACTED]'")]
        assert len(_see(conn, WARN_PER_ROW.format(t=indexed["A"]))) == 3
        assert _see(conn, "SHOW COUNT(*) WARNINGS") == [(3,)]  # the count says nothing of the order
    finally:
        conn.close()
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {plain}")
