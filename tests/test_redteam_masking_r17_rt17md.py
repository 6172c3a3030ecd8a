"""Red-team round 17 over masking on MariaDB (PyMySQL, aiomysql): a prompt-injected agent in production with zero
configuration, no unmask grant.

* **A subquery that stops at its first match** (decision 0343). ``EXISTS``, ``NOT EXISTS``, ``x IN (SELECT ...)``,
  ``x = ANY (...)`` and ``x <> ALL (...)`` read the subquery's rows only until one decides the answer, and MariaDB
  drops an ORDER BY (and LIMIT) written inside them. Over a table with an index on ``ssn`` (``WHERE ssn IS NOT
  NULL`` reads through it; rows without an SSN can be inserted by the agent), the rows evaluated before the
  deciding one come in SSN order. With ``CASE WHEN id = 1 THEN 1 ELSE CAST(city AS INT) END`` each of them warns:
  ``@@warning_count`` was 2 when row 1's SSN sorts after two others and 1 when it sorts after one — its rank among
  the others and among guesses inserted beside them (decision 0312 kept the count, taken to depend on no order;
  0328 withheld the error's text, not whether one happened). With ``... WHEN 3 THEN EXP(1000) ...`` the statement
  failed over one copy and answered over the other. Such a subquery over such a table is now refused when what it
  evaluates per row could warn or fail.

  The same held for an anti-join (``LEFT JOIN t i ON ... WHERE o.id = 2 AND i.id IS NULL``), which MariaDB stops
  at the first matching row of ``i``.

* **How many warnings a failed read left** (decision 0344). A statement that fails at a row stops there: over the
  same table, ``... WHERE ssn IS NOT NULL AND (CASE WHEN id = 1 THEN EXP(1000) ELSE CAST(city AS INT) END) = 5``
  warns for each row read before row 1 and fails on it. 0328 withholds the error and 0312 the warnings' text, but
  ``@@warning_count`` (3 over copy A, 2 over copy B), ``@@error_count``, ``SHOW COUNT(*) WARNINGS`` and the number
  of rows ``SHOW WARNINGS`` lists still counted them. Reads of that count are now refused until a statement that
  reads a table (or warns) replaces the list.

* **MariaDB's user statistics under SHOW** (decision 0345). Decisions 0291 and 0307 refuse
  ``information_schema.CLIENT_STATISTICS``/``USER_STATISTICS`` (``Bytes_sent``, ``Rows_read``: 0215's length oracle)
  and ``TABLE_STATISTICS``/``INDEX_STATISTICS`` (rows read per table and index); ``SHOW CLIENT_STATISTICS``,
  ``SHOW USER_STATISTICS``, ``SHOW INDEX_STATISTICS`` and ``SHOW TABLE_STATISTICS`` list the same rows and ran. The
  test server runs with ``userstat=0`` (they are empty there; a server setting, not changed here), so they are
  checked refused like their tables, not measured.

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
connection shows that the same statements tell them apart. Look-alikes that reveal nothing keep running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlglot import exp, parse_one

from governed_db.masking import early_stop
from tests._redteam import CURIOUS_AGENT, govern, made_tables, observe
from tests._redteam import rows_or_rules as _see

COLUMNS = "(id int primary key, full_name varchar(100), ssn varchar(20), city varchar(40))"
ROWS_A = [
    (1, "Alice Martin-Fitzgerald", "536-22-8726", "Paris"),
    (2, "Ivan Petrov", "219-45-1234", "Lyon"),
    (3, "Bob Stone", "412-77-9001", "Rome"),
]
ROWS_B = [(1, "Amy Zedd", "287-65-4321", "Paris"), *ROWS_A[1:]]
#: warns for every row but row 1, where the subquery stops
WARNS = "(CASE WHEN id = 1 THEN 1 ELSE CAST(city AS INT) END)"
#: fails on row 3, stops on row 1: whichever of the two comes first in SSN order decides
FAILS = "(CASE WHEN id = 1 THEN 1 WHEN id = 3 THEN EXP(1000) ELSE 0 END)"
SSN_ORDER = "ssn IS NOT NULL AND "

#: statements whose subquery stops early, each followed by the count of warnings it left
STOPPING = [
    f"SELECT EXISTS (SELECT 1 FROM {{t}} WHERE {SSN_ORDER}{WARNS})",
    f"SELECT NOT EXISTS (SELECT 1 FROM {{t}} WHERE {SSN_ORDER}{WARNS})",
    f"SELECT 1 FROM DUAL WHERE EXISTS (SELECT 1 FROM {{t}} WHERE {SSN_ORDER}{WARNS})",
    # an ORDER BY and LIMIT inside EXISTS are dropped by MariaDB: the order guard's own edit would not help
    f"SELECT EXISTS (SELECT 1 FROM {{t}} WHERE {SSN_ORDER}{WARNS} ORDER BY id LIMIT 1)",
    f"SELECT 'Paris' IN (SELECT city FROM {{t}} WHERE {SSN_ORDER}{WARNS})",
    f"SELECT 'Paris' = ANY (SELECT city FROM {{t}} WHERE {SSN_ORDER}{WARNS})",
    f"SELECT 'Paris' <> ALL (SELECT city FROM {{t}} WHERE {SSN_ORDER}{WARNS})",
    # an anti-join: MariaDB's "Not exists" plan stops reading i at its first match for the row of o
    f"SELECT o.id FROM {{t}} o LEFT JOIN {{t}} i ON i.{SSN_ORDER}{WARNS.replace('id', 'i.id').replace('city', 'i.city')}"
    " WHERE o.id = 2 AND i.id IS NULL",
]
#: fails (copy A: row 3 first) or answers (copy B: row 1 first)
FAILING = [
    f"SELECT EXISTS (SELECT 1 FROM {{t}} WHERE {SSN_ORDER}{FAILS})",
    f"SELECT id FROM {{t}} WHERE id = 2 AND EXISTS (SELECT 1 FROM {{t}} x WHERE x.{SSN_ORDER}"
    f"{FAILS.replace('id', 'x.id')})",
]


@pytest.fixture
def pair(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Two tables differing only in row 1's name and SSN, with an index on ``ssn`` and 90 rows without one."""
    with made_tables(mysql_conn) as make:
        names = {c: make(COLUMNS, rows, f"rt17md_{unique}_{c.lower()}") for c, rows in (("A", ROWS_A), ("B", ROWS_B))}
        with mysql_conn.cursor() as cur:
            for t in names.values():
                cur.execute(f"CREATE INDEX {t}_ssn ON {t} (ssn)")
                cur.execute(f"INSERT INTO {t} (id, city) SELECT seq, 'x' FROM seq_100_to_189")
        yield names


def _with_count(conn: Any, sql: str) -> Any:
    """What the caller sees of ``sql`` and of the count of warnings it left."""
    seen = _see(conn, sql)
    cur = conn.cursor()
    cur.execute("SELECT @@warning_count")
    return seen, cur.fetchall()[0][0]


def _both(mysql_kw: dict[str, Any], pair: dict[str, str], sql: str, see: Any) -> dict[tuple[bool, str], Any]:
    """``see(conn, sql)`` over copy A and B, raw and governed, each on a new session; the tables' names blanked."""
    import pymysql

    seen = {}
    for governed in (False, True):
        for c in ("A", "B"):
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            conn = govern(raw, CURIOUS_AGENT) if governed else raw
            try:
                seen[governed, c] = repr(see(conn, sql.format(t=pair[c]))).replace(pair[c], "T")
            finally:
                conn.close()
    return seen


@pytest.mark.parametrize("sql", STOPPING)
def test_the_warnings_of_a_subquery_that_stops_early_tell_no_rank(
    mysql_kw: dict[str, Any], pair: dict[str, str], sql: str
) -> None:
    seen = _both(mysql_kw, pair, sql, _with_count)
    # the oracle: 219 < 412 < 536 evaluates two rows before row 1 in copy A, 219 < 287 one in copy B
    assert seen[False, "A"].endswith(", 2)") and seen[False, "B"].endswith(", 1)"), seen
    assert seen[True, "A"] == seen[True, "B"], seen
    assert "refused: ['masked-column-predicate']" in seen[True, "A"], seen


@pytest.mark.parametrize("sql", FAILING)
def test_whether_a_subquery_that_stops_early_fails_tells_no_rank(
    mysql_kw: dict[str, Any], pair: dict[str, str], sql: str
) -> None:
    seen = _both(mysql_kw, pair, sql, observe)
    assert "1690" in seen[False, "A"] and "1690" not in seen[False, "B"], seen
    assert seen[True, "A"] == seen[True, "B"], seen
    assert "stops reading at the first row that decides it" in seen[True, "A"], seen
    assert "ask for an unmask grant" in seen[True, "A"], seen


def test_aiomysql_a_subquery_that_stops_early_is_refused(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    import governed_db

    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def run(table: str, governed: bool) -> Any:
        raw = await aiomysql.connect(autocommit=True, **kw)
        conn = govern(raw, CURIOUS_AGENT) if governed else raw
        try:
            cur = await conn.cursor()
            try:
                await cur.execute(STOPPING[0].format(t=table))
            except governed_db.GuardrailViolation as e:
                return f"refused: {sorted(e.decision.rules)}"
            await cur.fetchall()
            await cur.execute("SELECT @@warning_count")
            return (await cur.fetchall())[0][0]
        finally:
            conn.close()

    assert [asyncio.run(run(pair[c], False)) for c in ("A", "B")] == [2, 1]
    assert [asyncio.run(run(pair[c], True)) for c in ("A", "B")] == ["refused: ['masked-column-predicate']"] * 2


#: subqueries that stop early but evaluate nothing per row that can warn or fail, over the same tables
LOOK_ALIKES = [
    "SELECT id FROM {t} o WHERE EXISTS (SELECT 1 FROM {t} i WHERE i.id = o.id AND i.city = 'Paris') ORDER BY id",
    "SELECT id FROM {t} WHERE id IN (SELECT id FROM {t} WHERE city = 'Lyon') ORDER BY id",
    "SELECT 'Paris' IN (SELECT city FROM {t} WHERE ssn IS NOT NULL)",
    "SELECT NOT EXISTS (SELECT 1 FROM {t} WHERE ssn IS NULL AND city LIKE 'P%')",
    "SELECT EXISTS (SELECT 1 FROM {t} WHERE id BETWEEN 2 AND 3 AND full_name IS NOT NULL)",
    "SELECT id FROM {t} WHERE id = ANY (SELECT id FROM {t} WHERE city <> 'x') ORDER BY id",
    "SELECT (id, city) IN (SELECT id, city FROM {t} WHERE ssn IS NOT NULL) FROM {t} WHERE id = 2",
    "SELECT o.id FROM {t} o LEFT JOIN {t} i ON i.id = o.id AND i.city = 'Paris' WHERE i.id IS NULL AND o.id < 4 "
    "ORDER BY o.id",
    # joins that do not stop early keep their per-row computations
    "SELECT o.id FROM {t} o JOIN {t} i ON i.id = o.id WHERE CAST(i.city AS INT) = 0 AND o.id < 4 ORDER BY o.id",
    # (compared as bytes: ``DISTINCT o.city`` keeps the first-read of 'Paris' and 'PARIS', and ``i``, read for its
    # key alone, may be read through the index on ``ssn``: refused since round 19, decision 0372)
    "SELECT DISTINCT BINARY o.city FROM {t} o JOIN {t} i ON i.id = o.id WHERE o.id < 5 ORDER BY 1",
]


@pytest.mark.parametrize("sql", LOOK_ALIKES)
def test_quiet_subqueries_that_stop_early_still_run(mysql_kw: dict[str, Any], pair: dict[str, str], sql: str) -> None:
    seen = _both(mysql_kw, pair, sql, _with_count)
    assert seen[True, "A"] == seen[False, "A"] and seen[True, "B"] == seen[False, "B"], seen


def test_a_stopping_subquery_over_a_table_without_a_masked_index_runs(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str
) -> None:
    """No index on a masked column: the rows come in key order, whatever the subquery computes."""
    import pymysql

    with made_tables(mysql_conn) as make:
        t = make(COLUMNS, ROWS_A, f"rt17md_{unique}_plain")
        sql = f"SELECT EXISTS (SELECT 1 FROM {t} WHERE {SSN_ORDER}{WARNS})"
        raw = pymysql.connect(autocommit=True, **mysql_kw)
        conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
        try:
            assert _with_count(conn, sql) == _with_count(raw, sql) == ([(1,)], 0)
        finally:
            raw.close()
            conn.close()


TYPES = {"id": "int", "city": "varchar", "born": "date"}
#: (predicate, quiet?): what a subquery that stops early evaluates per row, judged by ``early_stop.quiet``
JUDGED = [
    ("EXISTS (SELECT 1 FROM t WHERE id = 1 AND city = 'x')", True),
    ("EXISTS (SELECT 1 FROM t WHERE id IN (1, 2) OR city LIKE 'P%' OR city IS NULL)", True),
    ("EXISTS (SELECT * FROM t WHERE NOT (id BETWEEN 1 AND 5))", True),
    ("'x' IN (SELECT city FROM t WHERE id > 0)", True),
    ("(1, 'x') IN (SELECT id, city FROM t)", True),
    ("EXISTS (SELECT 1 FROM t WHERE city = 0)", False),  # converts every city to a number
    ("0 IN (SELECT city FROM t)", False),
    ("EXISTS (SELECT 1 FROM t WHERE CAST(city AS INT) = 1)", False),
    ("EXISTS (SELECT 1 FROM t WHERE id + 1 = 2)", False),
    ("EXISTS (SELECT 1 FROM t WHERE born = '2020-01-01')", False),  # a date: its conversions may warn
    ("EXISTS (SELECT 1 FROM t WHERE nosuch = 1)", False),  # unknown type
    ("EXISTS (SELECT 1 FROM t WHERE id IS TRUE)", False),
    ("EXISTS (SELECT 1 FROM t WHERE city LIKE 'a' ESCAPE '!')", False),
]


@pytest.mark.parametrize(("sql", "expected"), JUDGED)
def test_what_a_stopping_subquery_evaluates_is_judged_by_kind(sql: str, expected: bool) -> None:
    tree = parse_one(f"SELECT {sql}", read="mysql")
    found = list(early_stop.stopping_subqueries(tree))
    assert len(found) == 1, found

    def kind_of(col: exp.Column) -> str | None:
        return TYPES.get(col.name.lower())

    predicate, query = found[0]
    assert early_stop.quiet(predicate, query, kind_of) is expected


#: statements that fail at row 1 after warning for every row read before it
FAILS_MIDWAY = [
    f"SELECT id FROM {{t}} WHERE {SSN_ORDER}(CASE WHEN id = 1 THEN EXP(1000) ELSE CAST(city AS INT) END) = 5",
    f"SELECT (SELECT id FROM {{t}} WHERE {SSN_ORDER}(CASE WHEN id IN (1, 2) THEN 1 ELSE CAST(city AS INT) END))",
]
#: every way to read how many warnings the statement before left, without replacing them
COUNTS = [
    "SELECT @@warning_count",
    "SELECT @@session.error_count + @@SESSION.warning_count",
    "SHOW COUNT(*) WARNINGS",
    "SHOW WARNINGS",
    "SHOW WARNINGS LIMIT 10",
]


def _after_failure(failing: str, read: str) -> Any:
    def see(conn: Any, sql: str) -> Any:
        import pymysql

        cur = conn.cursor()
        with pytest.raises(pymysql.MySQLError):
            cur.execute(sql)
        if read == "show_warnings()":
            try:
                return len(conn.show_warnings())
            except Exception as e:
                return type(e).__name__
        return _see(conn, read)

    return see


@pytest.mark.parametrize("read", [*COUNTS, "show_warnings()"])
@pytest.mark.parametrize("failing", FAILS_MIDWAY)
def test_how_many_warnings_a_failed_read_left_tells_no_rank(
    mysql_kw: dict[str, Any], pair: dict[str, str], failing: str, read: str
) -> None:
    seen = _both(mysql_kw, pair, failing, _after_failure(failing, read))
    # the oracle: copy A read one more row before failing (or, for the subquery, between its two matches)
    assert seen[False, "A"] != seen[False, "B"], seen
    assert seen[True, "A"] == seen[True, "B"], seen
    assert "refused" in seen[True, "A"] or "GuardrailViolation" in seen[True, "A"], seen


def test_an_unbuffered_read_that_fails_at_a_fetch_withholds_the_count(
    mysql_kw: dict[str, Any], pair: dict[str, str]
) -> None:
    """PyMySQL's SSCursor: the rows come with the fetch, and so does the error."""
    import pymysql

    def see(conn: Any, sql: str) -> Any:
        cur = conn.cursor(pymysql.cursors.SSCursor)
        with pytest.raises(pymysql.MySQLError):
            cur.execute(sql)
            cur.fetchall()
        cur.close()
        return _see(conn, "SELECT @@warning_count")

    seen = _both(mysql_kw, pair, FAILS_MIDWAY[0], see)
    assert seen[False, "A"] == "[(3,)]" and seen[False, "B"] == "[(2,)]", seen
    assert seen[True, "A"] == seen[True, "B"] == repr("refused: ['masked-column-predicate']"), seen


def test_the_count_reads_again_once_a_statement_replaced_the_list(
    mysql_kw: dict[str, Any], pair: dict[str, str]
) -> None:
    """A statement that reads a table clears the list; one that warns fills it with its own warnings."""
    import pymysql

    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        t = pair["A"]
        cur = conn.cursor()
        with pytest.raises(pymysql.MySQLError):
            cur.execute(FAILS_MIDWAY[0].format(t=t))
        assert _see(conn, "SELECT @@warning_count") == "refused: ['masked-column-predicate']"
        assert _see(conn, "SELECT 1") == [(1,)]  # uses no table: the list stays, and so does the refusal
        assert _see(conn, "SHOW COUNT(*) WARNINGS") == "refused: ['masked-column-predicate']"
        assert _see(conn, "SHOW ERRORS") == "refused: ['masked-column-predicate']"
        assert _see(conn, "SELECT @@warning_count FROM DUAL") == "refused: ['masked-column-predicate']"
        # a statement that uses a table reads the count of the list it cleared first
        assert _see(conn, f"SELECT @@warning_count FROM {t} WHERE id = 2") == [(0,)]
        assert _see(conn, f"SELECT city FROM {t} WHERE id = 2") == [("Lyon",)]
        assert _see(conn, "SELECT @@warning_count") == [(0,)]
        assert _see(conn, "SHOW WARNINGS") == []
        assert _see(conn, "SELECT CAST('1x' AS INT)") == [(1,)]  # its own warning
        assert _see(conn, "SELECT @@warning_count") == [(1,)]
        assert len(conn.show_warnings()) == 1
    finally:
        conn.close()


def test_counts_that_follow_no_order_stay_readable(
    mysql_kw: dict[str, Any], mysql_conn: Any, pair: dict[str, str], unique: str
) -> None:
    """A read of the indexed table that warns for every row it reads (0312: text withheld, count kept), and a
    failure part-way over a table without a masked index (read by its key)."""
    import pymysql

    with made_tables(mysql_conn) as make:
        plain = make(COLUMNS, ROWS_A, f"rt17md_{unique}_plain")
        for governed in (False, True):
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            conn = govern(raw, CURIOUS_AGENT) if governed else raw
            try:
                assert _with_count(conn, f"SELECT count(*) FROM {pair['A']} WHERE {SSN_ORDER}{WARNS}") == ([(1,)], 2)
                with pytest.raises(pymysql.MySQLError):
                    conn.cursor().execute(FAILS_MIDWAY[0].format(t=plain))
                assert _see(conn, "SELECT @@warning_count") == [(1,)]  # row 1 first, by key: no warning before it
            finally:
                conn.close()


def test_aiomysql_the_count_after_a_failed_read_is_refused(mysql_kw: dict[str, Any], pair: dict[str, str]) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    import pymysql

    import governed_db

    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def run(table: str, governed: bool) -> Any:
        raw = await aiomysql.connect(autocommit=True, **kw)
        conn = govern(raw, CURIOUS_AGENT) if governed else raw
        try:
            cur = await conn.cursor()
            with pytest.raises(pymysql.MySQLError):
                await cur.execute(FAILS_MIDWAY[0].format(t=table))
            try:
                await cur.execute("SELECT @@warning_count")
            except governed_db.GuardrailViolation as e:
                return f"refused: {sorted(e.decision.rules)}"
            return (await cur.fetchall())[0][0]
        finally:
            conn.close()

    assert [asyncio.run(run(pair[c], False)) for c in ("A", "B")] == [3, 2]
    assert [asyncio.run(run(pair[c], True)) for c in ("A", "B")] == ["refused: ['masked-column-predicate']"] * 2


#: MariaDB's user statistics, as SHOW statements and as the information_schema tables they list
USER_STATISTICS = [
    *(f"SHOW {name}" for name in ("USER_STATISTICS", "CLIENT_STATISTICS", "index_statistics", "TABLE_STATISTICS")),
    "SELECT BYTES_SENT FROM information_schema.CLIENT_STATISTICS",
    "SELECT ROWS_READ FROM information_schema.TABLE_STATISTICS",
]


@pytest.mark.parametrize("sql", USER_STATISTICS)
def test_user_statistics_are_refused_under_every_name(mysql_kw: dict[str, Any], sql: str) -> None:
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        assert isinstance(_see(raw, sql), list)  # the server answers it (empty while userstat is off)
        assert _see(conn, sql) == "refused: ['system-catalog']"
        # quiet counters and other listings stay readable
        assert _see(conn, "SHOW STATUS LIKE 'Uptime'")[0][0] == "Uptime"
        assert ("InnoDB",) in [r[:1] for r in _see(conn, "SHOW ENGINES")]
    finally:
        raw.close()
        conn.close()


#: (statement, the joined tables MariaDB may stop reading at a first match)
JOINS = [
    ("SELECT o.id FROM o LEFT JOIN i ON i.id = o.id WHERE i.id IS NULL", ["i"]),
    ("SELECT o.id FROM o LEFT JOIN i ON i.id = o.id WHERE ISNULL(i.id) AND o.id = 2", ["i"]),
    ("SELECT o.id FROM o LEFT JOIN i ON i.id = o.id WHERE flag IS NULL", ["i"]),  # unqualified: any of them
    ("SELECT i.id FROM o RIGHT JOIN i ON i.id = o.id WHERE o.id IS NULL", ["o"]),
    ("SELECT o.id FROM o JOIN i ON i.id = o.id WHERE i.id IS NULL", []),  # an inner join reads every match
    ("SELECT o.id FROM o LEFT JOIN i ON i.id = o.id WHERE o.id = 2", []),  # nothing asks about i's rows
    ("SELECT o.id FROM o LEFT JOIN i ON i.id = o.id", []),
]


@pytest.mark.parametrize(("sql", "tables"), JOINS)
def test_which_outer_joins_may_stop_early(sql: str, tables: list[str]) -> None:
    tree = parse_one(sql, read="mysql")
    assert [t.name for t, _parts in early_stop.stopping_joins(tree)] == tables
