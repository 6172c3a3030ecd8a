"""Red-team round 8 over masking on MariaDB (PyMySQL) and DuckDB: a prompt-injected agent in production with
zero configuration, no unmask grant.

* MariaDB: an INSERT giving a uniquely indexed SSN its DEFAULT (by the word, or by leaving it out) fails with a
  duplicate key exactly when a stored SSN equals a default that is a value; ``UPDATE t SET ssn = DEFAULT`` (and
  ``ON DUPLICATE KEY UPDATE ssn = DEFAULT``) would say the same by the changed-row count, and was refused only
  because the word DEFAULT was read as a column named "default" (which also refused the innocent ``SET city =
  DEFAULT``). The catalog now says which defaults are values (decision 0232).
* MariaDB turns a string longer than ``max_allowed_packet`` into NULL with a warning: ``CONCAT(ssn, REPEAT('x',
  16777216 - g))`` is NULL exactly when the SSN is longer than ``g`` characters (also ``CONCAT_WS``,
  ``JSON_ARRAY``, ``JSON_OBJECT``, a 16 MB user variable). A long or computed text beside a masked value in a
  concatenation is now a use of it; so is a ``REGEXP_REPLACE`` whose pattern can backtrack, which PCRE stops at
  its match limit with a warning depending on what the value holds (decision 0233).
* InnoDB shows stored values where no masking reaches: ``SHOW ENGINE INNODB STATUS`` after a deadlock between
  two of the agent's own sessions dumps both locked rows (every column in hex), ``information_schema.INNODB_LOCKS``
  shows the key a lock waits on (an SSN, when taken through an index on it), and ``mysql.innodb_index_stats``
  counts the distinct values of an index on ``ssn`` (after rows holding a guess are inserted: one more exactly
  when the guess is new); ``INNODB_BUFFER_PAGE.DATA_SIZE`` sums the bytes of a page's records (the SSN's length).
  They are statistics catalogs that hold column values. ``SELECT id FROM t PARTITION (p0)`` on a table
  partitioned by the SSN reads the rows whose SSN falls in ``p0``: a WHERE on it (decision 0234).
* MariaDB hands out ``ROWNUM()``, a seeded ``RAND(7)``, a ``@n := @n + 1`` counter, ``LAST_INSERT_ID(id)`` row by
  row as it reads, before any ORDER BY: over a table with an index on ``ssn`` they numbered the rows in SSN order
  past the order the guard adds. Refused there (decision 0234).
* Names that came to mean another table kept their labels: a temporary table's colours (sampled after any DDL
  attempt) lent ``code`` its labels, and after a reconnect (``ping``, ``connect()``) — or PostgreSQL's ``DISCARD
  TEMP`` — the stored SSNs came back in clear; after ``USE other`` another database's same-named table's SSNs
  did; so did ``rt8md_x`` read after ``Rt8md_x`` (case-sensitive names, one lower-cased key). These now make
  masking read the tables again (decision 0234).
* DuckDB: the same unique-key test through a DEFAULT that is a value (0232); DuckDB's list, struct, map and lambda
  functions, COLUMNS(*), SUMMARIZE, approx_count_distinct, min_by/arg_max, QUALIFY, ASOF joins, COPY/read_csv,
  ATTACH, CREATE MACRO/TYPE, query()/query_table() and the relation API were probed and found closed.
* Over-masking: the invisible period columns of a system-versioned table (``ROW_START``, ``ROW_END``) came back
  NULL and could not order its history.

Each oracle compares a right guess with a wrong one and passes when the attacker observes both alike; the raw
connection shows that the same statements tell them apart. Look-alikes that reveal nothing keep running.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import MariaTable, govern
from tests.conftest import MYSQL_DB

DDL = (
    "(id int primary key, full_name varchar(100), email varchar(100), ssn varchar(100){ssn_default}, "
    "phone varchar(100), card varchar(100), city varchar(100) DEFAULT 'Paris'{keys})"
)
ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "+1 415 555 0132", "4111111111111111", "Paris"),
    (2, "Ivan Petrov", "ivan@example.org", "219-45-1234", "+44 20 7946 0958", "5500005555555559", "Lyon"),
    (3, "Bob Jones", "bob@example.net", "123-45-6789", "+1 212 555 0199", "378282246310005", "Rome"),
]  # fmt: skip
#: MariaDB's default max_allowed_packet: a longer string result is NULL with a warning
PACKET = 16 * 1024 * 1024
Run = Callable[[str], Any]


def _observe(run: Run, sql: str) -> Any:
    """What the attacker sees: the rows, row counts and warnings, that it was refused, or the error's class."""
    try:
        return run(sql)
    except governed_db.ApprovalRequired:
        return "approval required"
    except governed_db.GuardrailViolation as e:
        return (
            "refused"
            if "masked-column" in str(e) or "system-catalog" in str(e)
            else f"refused: {str(e)[:80]}"
        )
    except Exception as e:
        return type(e).__name__


class My(MariaTable):
    """A MariaDB table of three people (its SSN column's DEFAULT chosen per test), a governed connection to it
    and the raw one (the ground truth)."""

    def reset(self, ssn_default: str | None = None, unique: bool = False) -> None:
        default = f" DEFAULT '{ssn_default}'" if ssn_default is not None else ""
        keys = ", UNIQUE KEY (ssn)" if unique else ""
        with self.admin.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.t}")
            cur.execute(f"CREATE TABLE {self.t} " + DDL.format(ssn_default=default, keys=keys))
            cur.executemany(f"INSERT INTO {self.t} VALUES (%s,%s,%s,%s,%s,%s,%s)", ROWS)


@pytest.fixture
def my(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> Iterator[My]:
    db = My(mysql_kw, mysql_conn, f"rt8md_{unique}")
    try:
        yield db
    finally:
        db.close()


# -- 0232: a DEFAULT that is a value is a value ---------------------------------------------------------------
#: writes giving the SSN its DEFAULT: MariaDB counts the row as changed (or fails on the unique key) exactly when
#: the default differs from (or equals) the stored SSN
_DEFAULT_WRITES = [
    "START TRANSACTION; UPDATE {t} SET ssn = DEFAULT WHERE id = 1; ROLLBACK",
    "START TRANSACTION; UPDATE {t} SET city = city, ssn = DEFAULT WHERE id = 1; SELECT ROW_COUNT(); ROLLBACK",
    "START TRANSACTION; UPDATE {t} a JOIN {t} b ON a.id = b.id SET a.ssn = DEFAULT WHERE a.id = 1; ROLLBACK",
    "START TRANSACTION; INSERT INTO {t} (id, city) VALUES (1, 'x') ON DUPLICATE KEY UPDATE ssn = DEFAULT; ROLLBACK",
    # with a unique key on ssn: an INSERT giving it the default (or leaving it out) fails on a stored equal one
    "START TRANSACTION; INSERT INTO {t} (id, ssn) VALUES (9, DEFAULT); ROLLBACK",
    "START TRANSACTION; INSERT INTO {t} (id, city) VALUES (9, 'Nice'); ROLLBACK",
]


@pytest.mark.parametrize("template", _DEFAULT_WRITES)
def test_mariadb_a_default_that_is_a_value_tells_no_equality(my: My, template: str) -> None:
    """The SSN column's DEFAULT is a value (here the guess, as a schema may hold a placeholder SSN or a common
    postcode): giving the column its default compares that value with the stored one through the changed-row
    count or the unique key. Refused for both guesses, naming the column."""
    sql = template.format(t=my.t)
    truth, seen = [], []
    for default in ("536-22-8726", "536-22-8725"):
        my.reset(default, unique=True)
        truth.append(_observe(my.truth, sql))
        my.reset(default, unique=True)
        seen.append(_observe(my.run, sql))
    assert truth[0] != truth[1], truth  # without governed_db the count (or the error) tells
    assert seen == ["refused", "refused"], seen
    with pytest.raises(governed_db.GuardrailViolation) as refused:
        my.run(sql)
    assert f"{my.t}.ssn" in str(refused.value) and "column(s) default" not in str(refused.value)


@pytest.mark.parametrize(
    ("ssn_default", "sql"),
    [
        (None, "UPDATE {t} SET ssn = DEFAULT WHERE id = 1"),  # a NULL default: what the mask keeps anyway
        (None, "UPDATE {t} SET email = DEFAULT, city = DEFAULT WHERE id = 1"),
        (None, "INSERT INTO {t} (id, ssn, city) VALUES (9, DEFAULT, DEFAULT)"),
        (None, "INSERT INTO {t} (id, city) VALUES (1, 'x') ON DUPLICATE KEY UPDATE email = DEFAULT"),
        ("000-00-0000", "UPDATE {t} SET city = DEFAULT WHERE id = 2"),  # an unmasked column's default
        (
            "000-00-0000",
            "UPDATE {t} SET email = DEFAULT WHERE id = 1",
        ),  # a masked column whose default is NULL
        ("000-00-0000", "INSERT INTO {t} (id, ssn, city) VALUES (9, NULL, DEFAULT)"),
    ],
)
def test_mariadb_defaults_that_reveal_nothing_still_run(my: My, ssn_default: str | None, sql: str) -> None:
    """Look-alikes: DEFAULT for an unmasked column, or for a masked one whose default is NULL, runs with the
    database's own counts (before, ``SET city = DEFAULT`` was refused as a copy of a column named "default")."""
    my.reset(ssn_default, unique=True)
    expected = my.truth(sql.format(t=my.t))
    my.reset(ssn_default, unique=True)
    assert my.run(sql.format(t=my.t)) == expected


def test_default_word_is_read_as_the_keyword() -> None:
    """Unit: the writes an UPDATE/INSERT records carry the columns given DEFAULT (and those an INSERT leaves
    out), and the catalog's default constraint turns them into given values only where the default is one."""
    from governed_db.masking.constraints import changed_row_uses, constraint_uses
    from governed_db.masking.origins import Written
    from governed_db.masking.schema import Constraint

    update = Written("t", "update", frozenset(), frozenset({"ssn"}), frozenset({"ssn"}))
    cols = ["id", "ssn", "city"]
    valued = [Constraint("default", "DEFAULT", frozenset({"ssn"}))]
    assert changed_row_uses([update], lambda t: (cols, valued), "mysql")
    assert not changed_row_uses([update], lambda t: (cols, []), "mysql")  # its default is NULL
    assert changed_row_uses([update], lambda t: (cols, None), "mysql")  # unknown: fail closed
    assert not changed_row_uses([update], lambda t: (cols, valued), "postgres")  # counts matched rows
    insert = Written("t", "insert", frozenset({"id", "city"}), frozenset(), frozenset({"ssn"}))
    key = [Constraint("unique", "u", frozenset({"ssn"}))]
    assert constraint_uses([insert], lambda t: (cols, key + valued))
    assert not constraint_uses([insert], lambda t: (cols, key))


# -- 0233: a long text beside a masked value measures it -----------------------------------------------------
#: ``{N}`` is chosen so the result is exactly max_allowed_packet long when the SSN has ``g`` characters: a longer
#: SSN makes it NULL with a warning
_LENGTH_LIMITS = [
    ("SELECT id, LENGTH(CONCAT(ssn, REPEAT('x', {N}))) FROM {t} WHERE id = 1; SHOW WARNINGS", 0),
    ("SELECT id, CONCAT(ssn, REPEAT('x', {N})) FROM {t} WHERE id = 1; SHOW WARNINGS", 0),
    ("SELECT id, LENGTH(CONCAT_WS(',', ssn, REPEAT('x', {N}))) FROM {t} WHERE id = 1; SHOW WARNINGS", 1),
    ("SELECT id, LENGTH(JSON_ARRAY(ssn, REPEAT('x', {N}))) FROM {t} WHERE id = 1; SHOW WARNINGS", 8),
    ("SELECT id, LENGTH(JSON_OBJECT('a', ssn, 'b', SPACE({N}))) FROM {t} WHERE id = 1; SHOW WARNINGS", 18),
    ("SET @b = REPEAT('x', {N}); SELECT id, LENGTH(CONCAT(ssn, @b)) FROM {t} WHERE id = 1; SHOW WARNINGS", 0),
    ("SELECT id, LENGTH(CONCAT(city, ssn, REPEAT('x', {N} - 5))) FROM {t} WHERE id = 1; SHOW WARNINGS", 0),
]


@pytest.mark.parametrize(("template", "overhead"), _LENGTH_LIMITS)
def test_mariadb_a_length_limit_tells_no_length(my: My, template: str, overhead: int) -> None:
    """``CONCAT(ssn, REPEAT('x', 16777216 - g))`` is NULL with a warning ("larger than max_allowed_packet")
    exactly when the SSN is longer than ``g``: a binary search of its length. The constant was bounded only when
    the masked value itself had been multiplied; now any long or computed text beside it is a use."""
    truth, seen = [], []
    for guess in (11, 10):  # the SSN has 11 characters
        sql = template.format(t=my.t, N=PACKET - guess - overhead)
        truth.append(_observe(my.truth, sql))
        seen.append(_observe(my.run, sql))
    assert truth[0] != truth[1], [str(t)[:300] for t in truth]
    assert seen == ["refused", "refused"], [str(s)[:300] for s in seen]


def test_mariadb_concatenations_of_short_texts_still_run(my: My) -> None:
    """Look-alikes: concatenations of masked values with columns and short literals come back masked; long
    constants beside unmasked columns come back exact."""
    rows = my.run(
        f"SELECT id, CONCAT(full_name, ' (', city, ')'), CONCAT_WS(', ', full_name, email), "
        f"JSON_OBJECT('name', full_name, 'city', city), JSON_ARRAY(ssn, 'x', id) FROM {my.t} WHERE id = 1"
    )[0]
    assert rows[0][0] == 1 and all("Alice" not in str(v) and "alice" not in str(v) for v in rows[0][1:])
    assert my.run(
        f"SELECT CONCAT(city, REPEAT('-', 300)), LENGTH(CONCAT(city, SPACE(1000))) FROM {my.t} WHERE id = 2"
    ) == [(("Lyon" + "-" * 300, 1004),)]
    assert my.run(f"SELECT CONCAT(ssn, '-', id) FROM {my.t} WHERE id = 3") == [(("[US_SSN]",),)]


# -- 0234: InnoDB's own reports of rows and keys -------------------------------------------------------------
def _deadlock(connect: Callable[[], Any], t: str) -> None:
    """Two sessions lock rows 1 and 2 in opposite orders: InnoDB picks a victim and records the deadlock."""
    c1, c2 = connect(), connect()
    k1, k2 = c1.cursor(), c2.cursor()
    k1.execute(f"SELECT id FROM {t} WHERE id = 1 FOR UPDATE")
    k2.execute(f"SELECT id FROM {t} WHERE id = 2 FOR UPDATE")

    def first() -> None:
        with contextlib.suppress(Exception):
            k1.execute(f"SELECT id FROM {t} WHERE id = 2 FOR UPDATE")

    waiter = threading.Thread(target=first)
    waiter.start()
    time.sleep(0.5)
    with contextlib.suppress(Exception):
        k2.execute(f"SELECT id FROM {t} WHERE id = 1 FOR UPDATE")
    c2.rollback()
    waiter.join()
    c1.rollback()
    c1.close()
    c2.close()


def test_mariadb_deadlock_report_is_a_value_catalog(my: My) -> None:
    """Two governed sessions of the agent's, locking rows 1 and 2 by id in opposite orders, make a deadlock
    whose report in ``SHOW ENGINE INNODB STATUS`` dumps both rows: every column in hex (the SSN included) and
    the names as text. Reading it is refused like the statistics catalogs; the locking reads still run."""
    import pymysql

    def governed() -> Any:
        raw = pymysql.connect(autocommit=False, **my.kw)
        return govern(raw)

    _deadlock(governed, my.t)
    report = my.truth("SHOW ENGINE INNODB STATUS")[0][0][2]
    assert "3533362d32322d38373236" in report  # hex('536-22-8726'): the raw report holds the stored SSN
    for sql in ("SHOW ENGINE INNODB STATUS", "show engine InnoDB status"):
        with pytest.raises(governed_db.GuardrailViolation, match="system-catalog"):
            my.run(sql)
    assert my.run("SHOW ENGINE INNODB MUTEX")[0] == my.truth("SHOW ENGINE INNODB MUTEX")[0]
    assert any(r[0] == "InnoDB" for r in my.run("SHOW ENGINES")[0])


def test_mariadb_lock_tables_are_value_catalogs(my: My) -> None:
    """The application's sessions lock rows through a unique index on ``ssn`` and one waits:
    ``information_schema.INNODB_LOCKS`` shows the SSN of the record waited on (LOCK_DATA). Refused."""
    import pymysql

    my.reset(unique=True)
    c1 = pymysql.connect(autocommit=False, **my.kw)
    c2 = pymysql.connect(autocommit=False, **my.kw)
    sql = f"SELECT ssn FROM {my.t} FORCE INDEX (ssn) FOR UPDATE"
    c1.cursor().execute(sql)
    waiter = threading.Thread(target=lambda: c2.cursor().execute(sql))
    waiter.start()
    try:
        time.sleep(0.5)
        with my.admin.cursor() as cur:
            cur.execute(
                f"SELECT lock_data FROM information_schema.INNODB_LOCKS WHERE lock_table LIKE '%{my.t}%'"
            )
            assert any("123-45-6789" in str(r[0]) for r in cur.fetchall())  # the smallest SSN, in clear
        for read in (
            "SELECT lock_data FROM information_schema.INNODB_LOCKS",
            "SELECT * FROM information_schema.innodb_locks WHERE lock_mode = 'X'",
        ):
            with pytest.raises(governed_db.GuardrailViolation, match="system-catalog"):
                my.run(read)
    finally:
        c1.rollback()
        waiter.join()
        c2.rollback()
        c1.close()
        c2.close()
    assert my.run("SELECT trx_state FROM information_schema.INNODB_TRX")[0] is not None  # no values there


def test_mariadb_index_statistics_tell_no_equality(my: My) -> None:
    """With an (application's) index on ``ssn``, rows holding a guess are inserted: after InnoDB recalculates
    the index statistics (automatically, or an ANALYZE TABLE), ``n_diff_pfx01`` counts one distinct value more
    exactly when the guess is new. The agent's insert runs; reading the statistics is refused."""
    sql = (
        "SELECT stat_value FROM mysql.innodb_index_stats WHERE table_name = '{t}' AND index_name = 'by_ssn' "
        "AND stat_name = 'n_diff_pfx01'"
    )
    counts = []
    for guess in ("536-22-8726", "536-22-8725"):
        my.reset()
        with my.admin.cursor() as cur:
            cur.execute(f"CREATE INDEX by_ssn ON {my.t} (ssn)")
        my.run(f"INSERT INTO {my.t} (id, ssn) VALUES (9, '{guess}')")  # the agent's own row (autocommit)
        with my.admin.cursor() as cur:
            cur.execute(f"ANALYZE TABLE {my.t}")
            cur.fetchall()
        counts.append(my.truth(sql.format(t=my.t))[0])
        for read in (sql, "SELECT * FROM mysql.innodb_index_stats", "SELECT * FROM mysql.index_stats"):
            with pytest.raises(governed_db.GuardrailViolation, match="system-catalog"):
                my.run(read.format(t=my.t))
    assert counts[0] != counts[1], counts
    assert my.run(f"SELECT COUNT(*) FROM {my.t}") == [((4,),)]


# -- system-versioned tables ----------------------------------------------------------------------------------
def test_mariadb_system_versioned_history_is_masked_and_its_period_readable(my: My) -> None:
    """A system-versioned table keeps every old row version: they come back masked like the current ones, and a
    masked column stays unusable in their WHERE. The implicit period columns ``ROW_START``/``ROW_END`` are not in
    the catalog (they are invisible); they were taken for unknown columns, masked to NULL and refused in ORDER BY.
    They say when a row version was written, not what it holds: returned exactly."""
    with my.admin.cursor() as cur:
        cur.execute(f"ALTER TABLE {my.t} ADD SYSTEM VERSIONING")
    my.run(f"UPDATE {my.t} SET city = 'Nice' WHERE id = 1")
    history = my.run(
        f"SELECT id, ssn, city FROM {my.t} FOR SYSTEM_TIME ALL WHERE id = 1 ORDER BY id, row_end"
    )[0]
    assert history == ((1, "[US_SSN]", "Paris"), (1, "[US_SSN]", "Nice"))  # the old version ended first
    period = my.run(f"SELECT id, ROW_START, ROW_END FROM {my.t} WHERE id = 2")[0]
    assert period == my.truth(f"SELECT id, ROW_START, ROW_END FROM {my.t} WHERE id = 2")[0]
    assert period[0][1] is not None and period[0][2] is not None
    for sql in (
        f"SELECT id FROM {my.t} FOR SYSTEM_TIME ALL WHERE ssn LIKE '5%'",
        f"SELECT id FROM {my.t} FOR SYSTEM_TIME ALL ORDER BY ssn, row_end",
    ):
        assert _observe(my.run, sql) == "refused", sql


# -- the same on aiomysql -------------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_aiomysql_refuses_the_round_8_oracles(my: My) -> None:
    """aiomysql drives the same statement object: the length limit, the DEFAULT that is a value and InnoDB's
    reports are refused there too (the raw counterparts are shown on PyMySQL above); a plain read runs masked."""
    aiomysql = pytest.importorskip("aiomysql")
    my.reset("536-22-8726", unique=True)
    kw = my.kw
    raw = await aiomysql.connect(
        host=kw["host"],
        port=kw["port"],
        user=kw["user"],
        password=kw["password"],
        db=kw["database"],
        autocommit=True,
    )
    try:
        conn = govern(raw)
        for sql in (
            f"SELECT LENGTH(CONCAT(ssn, REPEAT('x', {PACKET - 11}))) FROM {my.t} WHERE id = 1",
            f"INSERT INTO {my.t} (id, city) VALUES (9, 'Nice')",
            f"UPDATE {my.t} SET ssn = DEFAULT WHERE id = 1",
            "SHOW ENGINE INNODB STATUS",
            "SELECT lock_data FROM information_schema.INNODB_LOCKS",
        ):
            async with conn.cursor() as cur:
                with pytest.raises(governed_db.GuardrailViolation):
                    await cur.execute(sql)
        async with conn.cursor() as cur:
            await cur.execute(f"SELECT id, ssn, CONCAT(city, SPACE(3)) FROM {my.t} WHERE id = 2")
            assert await cur.fetchall() == ((2, "[US_SSN]", "Lyon   "),)
    finally:
        raw.close()
    assert [r[3] for r in my.truth(f"SELECT * FROM {my.t} ORDER BY id")[0]] == [r[3] for r in ROWS]


# -- partitions -----------------------------------------------------------------------------------------------
PARTITIONED = (
    "(id int, full_name varchar(100), email varchar(100), ssn varchar(100), city varchar(100), "
    "PRIMARY KEY (id, ssn)) PARTITION BY RANGE COLUMNS (ssn) (PARTITION p0 VALUES LESS THAN ('5'), "
    "PARTITION p1 VALUES LESS THAN (MAXVALUE))"
)


def _partitioned(my: My, first_ssn: str) -> None:
    """The three people in a table partitioned by SSN ranges (an application's design: by a date of birth,
    a postcode...); only the first person's SSN differs between the two datasets compared."""
    with my.admin.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {my.t}")
        cur.execute(f"CREATE TABLE {my.t} {PARTITIONED}")
        rows = [(r[0], r[1], r[2], first_ssn if r[0] == 1 else r[3], r[6]) for r in ROWS]
        cur.executemany(f"INSERT INTO {my.t} VALUES (%s,%s,%s,%s,%s)", rows)


_PARTITION_READS = [
    "SELECT id FROM {t} PARTITION (p0) ORDER BY id",
    "SELECT count(*) FROM {t} PARTITION (p1)",
    "START TRANSACTION; UPDATE {t} PARTITION (p0) SET city = 'X' WHERE id = 1; ROLLBACK",
    "SELECT id, ssn FROM {t} PARTITION (p0, p1) WHERE id = 1",
    "SELECT PARTITION_NAME, TABLE_ROWS FROM information_schema.PARTITIONS WHERE TABLE_NAME = '{t}'",
]


@pytest.mark.parametrize("template", _PARTITION_READS)
def test_mariadb_partition_selection_is_a_predicate(my: My, template: str) -> None:
    """``SELECT id FROM t PARTITION (p0)`` reads the rows whose partitioning expression falls in ``p0``: a WHERE
    on the SSN (here ``ssn < '5'``). It ran, and said which SSNs begin with a digit below 5; the partitions' row
    counts in information_schema say how many. Refused naming ``ssn`` (the catalog says which columns the
    partitioning reads), and the statistics view with the other value catalogs."""
    sql = template.format(t=my.t)
    truth, seen = [], []
    for first in ("536-22-8726", "436-22-8726"):
        _partitioned(my, first)
        truth.append(_observe(my.truth, sql))
        seen.append(_observe(my.run, sql))
    if "PARTITION (p0, p1)" not in sql:
        assert truth[0] != truth[1], truth
    assert seen == ["refused", "refused"], seen


def test_mariadb_partitions_of_unmasked_columns_still_run(my: My) -> None:
    """Look-alike: a table partitioned by its id: selecting a partition picks rows by the id only, and runs."""
    with my.admin.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {my.t}")
        cur.execute(
            f"CREATE TABLE {my.t} (id int primary key, ssn varchar(100), city varchar(100)) "
            "PARTITION BY HASH (id) PARTITIONS 2"
        )
        cur.executemany(f"INSERT INTO {my.t} VALUES (%s,%s,%s)", [(r[0], r[3], r[6]) for r in ROWS])
    sql = f"SELECT id, ssn, city FROM {my.t} PARTITION (p1) ORDER BY id"
    assert my.run(sql) == [((1, "[US_SSN]", "Paris"), (3, "[US_SSN]", "Rome"))]
    assert my.run(f"UPDATE {my.t} PARTITION (p0) SET city = 'Nice' WHERE id = 2") == [1]


def test_partitioning_columns_are_read_from_the_catalog(mysql_conn: Any, unique: str) -> None:
    """Unit: MariaDB's constraints name the columns a partitioning expression reads (KEY () reads the primary
    key); a PARTITION selection of a table whose constraints are unknown uses every column."""
    from governed_db.masking import schema
    from governed_db.masking.constraints import partition_uses

    t = f"rt8md_p_{unique}"
    cur = mysql_conn.cursor()
    found = {}
    try:
        for ddl in (
            "(id int, dob date, ssn varchar(20), PRIMARY KEY (id, dob)) PARTITION BY RANGE (YEAR(dob)) "
            "(PARTITION p0 VALUES LESS THAN (1990), PARTITION p1 VALUES LESS THAN MAXVALUE)",
            "(id int, ssn varchar(20), PRIMARY KEY (id, ssn)) PARTITION BY KEY () PARTITIONS 2",
            "(id int primary key, ssn varchar(20))",
        ):
            cur.execute(f"DROP TABLE IF EXISTS {t}")
            cur.execute(f"CREATE TABLE {t} {ddl}")
            cols = [c for c, _ in schema.read_columns(mysql_conn, "mysql", t, None, t) or []]
            read = schema.read_constraints(mysql_conn, "mysql", t, None, t, cols) or []
            found[ddl[:20]] = {tuple(sorted(c.columns)) for c in read if c.kind == "partition"}
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {t}")
    assert list(found.values()) == [{("dob",)}, {("id", "ssn")}, set()]
    assert partition_uses(["t"], lambda k: (["id", "ssn"], None))[0][1].sources == {("t", "id"), ("t", "ssn")}


# -- values handed out in read order --------------------------------------------------------------------------
#: the same ids and cities; the SSNs differ, so an index on ssn reads the rows in another order
SSNS_A = ["219-45-1234", "536-22-8726", "123-45-6789", "444-12-3456"]  # index order: ids 3, 1, 4, 2
SSNS_B = ["123-45-6789", "219-45-1234", "444-12-3456", "536-22-8726"]  # index order: ids 1, 2, 3, 4


def _indexed(my: My, ssns: list[str], index: bool = True) -> None:
    with my.admin.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {my.t}")
        cur.execute(
            f"CREATE TABLE {my.t} (id int primary key, full_name varchar(100), ssn varchar(20), city varchar(20)"
            + (
                ", KEY by_ssn (ssn))" if index else ")"
            )  # an application's index: InnoDB scans it for SELECT id
        )
        cur.executemany(
            f"INSERT INTO {my.t} VALUES (%s,%s,%s,%s)",
            [
                (i + 1, n, s, c)
                for i, (n, s, c) in enumerate(
                    zip(["A B", "C D", "E F", "G H"], ssns, ["Paris", "Lyon", "Rome", "Oslo"], strict=True)
                )
            ],
        )


_READ_ORDER_VALUES = [
    "SELECT id, ROWNUM() FROM {t}",
    "SELECT id FROM {t} WHERE ROWNUM() <= 1",
    "SELECT id, RAND(7) FROM {t} ORDER BY RAND(1)",
    "SELECT id, RAND(7) AS r FROM {t} ORDER BY r",
    "SET @n = 0; SELECT id, @n := @n + 1 FROM {t} ORDER BY RAND()",
    "SELECT id, LAST_INSERT_ID(id) FROM {t} ORDER BY RAND(1); SELECT LAST_INSERT_ID()",
    "SELECT x.id, ROWNUM() FROM (SELECT id FROM {t}) x",
]


@pytest.mark.parametrize("template", _READ_ORDER_VALUES)
def test_mariadb_values_handed_out_in_read_order_are_refused(my: My, template: str) -> None:
    """InnoDB reads ``SELECT id FROM t`` through the (covering) index on ``ssn``. The order guard sorts the
    result by the key, but MariaDB hands out ``ROWNUM()``, a seeded ``RAND(7)``, a ``@n := @n + 1`` counter or
    ``LAST_INSERT_ID(id)`` row by row as it reads, before any sort: the numbers said how the SSNs sort. Two
    datasets differing only in their SSNs: raw outputs differ, governed refuses both, naming ``ssn``."""
    sql = template.format(t=my.t)
    truth, seen = [], []
    for ssns in (SSNS_A, SSNS_B):
        _indexed(my, ssns)
        truth.append(_observe(my.truth, sql))
        seen.append(_observe(my.run, sql))
    assert truth[0] != truth[1], truth
    assert seen == ["refused", "refused"], seen
    with pytest.raises(governed_db.GuardrailViolation, match=rf"{my.t}\.ssn would decide the order"):
        my.run(sql)


def test_mariadb_read_order_values_that_reveal_nothing_still_run(my: My) -> None:
    """Look-alikes: an unseeded ``RAND()`` (nobody can predict it), ``ROW_NUMBER() OVER (ORDER BY id)``, and
    ``ROWNUM()`` over a table without an index on a masked column run."""
    _indexed(my, SSNS_A)
    assert len(my.run(f"SELECT id, RAND() FROM {my.t}")[0]) == 4
    assert my.run(f"SELECT id FROM {my.t} ORDER BY RAND() LIMIT 2")[0][0][0] in (1, 2, 3, 4)
    assert my.run(f"SELECT id, ROW_NUMBER() OVER (ORDER BY id) FROM {my.t}") == [
        ((1, 1), (2, 2), (3, 3), (4, 4))
    ]
    with my.admin.cursor() as cur:
        cur.execute(f"DROP TABLE {my.t}")
    my.t += "_x"  # another table (the connection keeps what it read of the first one's indexes for a while)
    _indexed(my, SSNS_A, index=False)
    sql = f"SELECT id, ROWNUM(), ssn FROM {my.t}"
    assert my.run(sql) == [tuple((r[0], r[1], "[US_SSN]") for r in my.truth(sql)[0])]


# -- DuckDB -----------------------------------------------------------------------------------------------------
def _duck(ssn_default: str | None) -> tuple[Any, Any]:
    import duckdb

    raw = duckdb.connect()
    default = f" DEFAULT '{ssn_default}'" if ssn_default is not None else ""
    raw.execute(
        f"CREATE TABLE t (id INTEGER PRIMARY KEY, full_name VARCHAR, ssn VARCHAR UNIQUE{default}, city VARCHAR)"
    )
    raw.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", [(r[0], r[1], r[3], r[6]) for r in ROWS])
    return raw, govern(raw)


def _duck_observe(conn: Any, sql: str) -> Any:
    try:
        return conn.execute(sql).fetchall()
    except governed_db.GuardrailViolation as e:
        return "refused" if "masked-column" in str(e) else f"refused: {str(e)[:80]}"
    except Exception as e:
        return type(e).__name__


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t (id, city) VALUES (9, 'Nice')",
        "INSERT INTO t (id, ssn, city) VALUES (9, DEFAULT, 'Nice')",
    ],
)
def test_duckdb_a_default_that_is_a_value_tells_no_equality(sql: str) -> None:
    """DuckDB counts matched rows, but a unique key still compares: an INSERT giving a uniquely indexed SSN its
    DEFAULT fails exactly when a stored SSN equals that default. DuckDB's catalog now says which defaults are
    values too (decision 0232)."""
    truth = [_duck_observe(_duck(d)[0], sql) for d in ("536-22-8726", "536-22-8725")]
    seen = [_duck_observe(_duck(d)[1], sql) for d in ("536-22-8726", "536-22-8725")]
    assert truth[0] != truth[1], truth
    assert seen == ["refused", "refused"], seen


def test_duckdb_defaults_that_reveal_nothing_still_run() -> None:
    """Look-alikes: a NULL default, an explicit NULL, and the concatenations that stay short run on DuckDB."""
    raw, gov = _duck(None)
    gov.execute("INSERT INTO t (id, city) VALUES (9, 'Nice')")
    raw2, gov2 = _duck("000-00-0000")
    gov2.execute("INSERT INTO t (id, ssn, city) VALUES (9, NULL, 'Nice')")
    assert (
        raw.execute("SELECT count(*) FROM t").fetchall()
        == raw2.execute("SELECT count(*) FROM t").fetchall()
        == [(4,)]
    )
    assert gov.execute(
        "SELECT concat(city, repeat('-', 3)), concat(ssn, '-', id) FROM t WHERE id = 1"
    ).fetchall() == [("Paris---", "[US_SSN]")]
    assert _duck_observe(gov, "SELECT concat(ssn, repeat('x', 100000)) FROM t WHERE id = 1") == "refused"


# -- regular expressions that backtrack -----------------------------------------------------------------------
_BACKTRACKING = [
    "SELECT id, REGEXP_REPLACE(CONCAT(ssn, '111111111111111111111111111111'), '^{G}(\\\\d|\\\\d|-)*[^\\\\d-]', '') "
    "FROM {t} WHERE id = 1; SHOW WARNINGS",
    "SELECT id, REGEXP_REPLACE(REPLACE(ssn, '-', '1111111111'), '^{G}(\\\\d|\\\\d)*[^\\\\d]', '') FROM {t} "
    "WHERE id = 1; SHOW WARNINGS",
    "SELECT id, REGEXP_REPLACE(REPLACE(ssn, '-', '1111111111'), '^{G}\\\\d*\\\\d*\\\\d*\\\\d*\\\\d*\\\\d*\\\\d*\\\\d*\\\\d*\\\\d*[^\\\\d]', '') "
    "FROM {t} WHERE id = 1; SELECT @@warning_count",
]


@pytest.mark.parametrize("template", _BACKTRACKING)
def test_mariadb_a_regex_match_limit_tells_nothing(my: My, template: str) -> None:
    """MariaDB's PCRE gives up at its match limit with warning 1139 ("Regex error 'match limit exceeded'"):
    ``REGEXP_REPLACE(CONCAT(ssn, '111...'), '^5(\\\\d|\\\\d|-)*[^\\\\d-]', '')`` tries 2**n ways only when the SSN
    begins with a 5, so the warning said so (the result itself came back masked). A pattern that can backtrack
    over a masked value is now a use of it."""
    truth, seen = [], []
    for guess in ("5", "4"):
        sql = template.format(t=my.t, G=guess)
        truth.append(_observe(my.truth, sql))
        seen.append(_observe(my.run, sql))
    assert truth[0] != truth[1], truth
    assert seen == ["refused", "refused"], seen


def test_mariadb_simple_patterns_over_masked_values_still_run(my: My) -> None:
    """Look-alikes: a character class, one quantifier, a fixed count: linear, no warning; masked results."""
    sql = (
        f"SELECT id, REGEXP_REPLACE(ssn, '[^0-9]', ''), REGEXP_REPLACE(phone, '\\\\s+', ' '), "
        f"REGEXP_REPLACE(ssn, '^\\\\d{{3}}-', 'xxx-') FROM {my.t} WHERE id = 1"
    )
    rows = my.run(sql)[0]
    assert rows[0][0] == 1 and rows[0][1] == rows[0][3] == "[US_SSN]" and "0132" not in str(rows)
    assert my.run("SHOW WARNINGS") == [()]


def test_mariadb_buffer_pool_pages_tell_no_length(my: My) -> None:
    """``information_schema.INNODB_BUFFER_PAGE`` reports each cached page's DATA_SIZE, the bytes of its records:
    with one SSN a character longer, the table's page (and its index's) is a byte larger. Refused like SQLite's
    dbstat; the plain read runs."""
    sql = (
        "SELECT INDEX_NAME, NUMBER_RECORDS, DATA_SIZE FROM information_schema.INNODB_BUFFER_PAGE "
        f"WHERE TABLE_NAME LIKE '%{my.t}%' ORDER BY INDEX_NAME"
    )
    truth, seen = [], []
    for ssn in ("536-22-8726", "536-22-87260"):
        my.reset(unique=True)
        with my.admin.cursor() as cur:
            cur.execute(f"UPDATE {my.t} SET ssn = %s WHERE id = 1", (ssn,))
        assert my.run(f"SELECT ssn FROM {my.t} WHERE id = 1") == [(("[US_SSN]",),)]  # pages now in the pool
        truth.append(_observe(my.truth, sql))
        seen.append(_observe(my.run, sql))
        seen.append(_observe(my.run, "SELECT * FROM information_schema.INNODB_BUFFER_PAGE_LRU LIMIT 1"))
    assert truth[0] != truth[1], truth
    assert seen == ["refused"] * 4, seen


def test_mariadb_statement_logs_are_value_catalogs(my: My) -> None:
    """The binary log in statement format (``SHOW BINLOG EVENTS``), the relay log, the general and slow query
    log tables and the statement history hold every session's SQL as written: the application's ``INSERT ...
    VALUES (..., '536-22-8726')`` with its literals. The test server logs none of them (turning them on is
    global), so this checks the refusal only; what lists logs without their statements still runs."""
    for sql in (
        "SHOW BINLOG EVENTS",
        "SHOW BINLOG EVENTS LIMIT 5",
        "SHOW RELAYLOG EVENTS",
        "SELECT sql_text FROM mysql.slow_log",
        "SELECT argument FROM mysql.general_log",
        "SELECT SQL_TEXT FROM performance_schema.events_statements_history_long",
    ):
        with pytest.raises(governed_db.GuardrailViolation, match="system-catalog"):
            my.run(sql)
    assert my.run("SHOW MASTER STATUS") == my.truth("SHOW MASTER STATUS")
    assert _observe(my.run, "SHOW BINARY LOGS") == _observe(my.truth, "SHOW BINARY LOGS")


# -- names that come to mean another table ---------------------------------------------------------------------
def _sessions_table(my: My, values: list[str], table: str | None = None) -> None:
    t = table or my.t
    with my.admin.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"CREATE TABLE {t} (id int primary key, code varchar(20))")
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s)", list(enumerate(values, start=1)))


SSN_CODES = [f"{100 + i:03d}-45-{1000 + i:04d}" for i in range(1, 40)]  # SSNs under a name that says nothing


@pytest.mark.parametrize("how", ["ping", "connect"])
def test_mariadb_a_new_session_forgets_labels_sampled_from_a_temporary_table(my: My, how: str) -> None:
    """A temporary table shadows the stored one of the same name for its session: the agent creates one full
    of colours, any DDL attempt (even refused) makes governed_db read the name's columns again, and the sample
    now comes from the colours: ``code`` is no longer sensitive. A new session (``ping(reconnect=True)`` after
    the connection dropped, or ``connect()``) drops the temporary table, and the stored SSNs came back in
    clear. A new session now reads the tables again."""
    import pymysql

    _sessions_table(my, SSN_CODES)
    raw = pymysql.connect(autocommit=True, **my.kw)
    gov = govern(raw)
    cur = gov.cursor()
    # a governed session may no longer make a temporary table hiding a stored one (decision 0386): the shadow
    # is made on the same session outside governance, as an application's own code could
    with raw.cursor() as own:
        own.execute(f"CREATE TEMPORARY TABLE {my.t} (id int primary key, code varchar(20)) ENGINE=InnoDB")
        own.execute(f"INSERT INTO {my.t} VALUES " + ", ".join(f"({i}, 'colour{i}')" for i in range(1, 40)))
    with pytest.raises(governed_db.GovernedDBError):
        cur.execute(f"RENAME TABLE {my.t} TO {my.t}_gone")  # refused, but the schema is read again
    cur.execute(f"SELECT id, code FROM {my.t} WHERE id = 1")
    assert cur.fetchall() == ((1, "colour1"),)  # the caller's own rows, in clear
    if how == "ping":
        with my.admin.cursor() as admin:
            admin.execute(
                f"KILL {raw.thread_id()}"
            )  # the connection drops (a timeout, a restart, a failover)
        gov.ping(reconnect=True)
    else:
        gov.connect()
    cur = gov.cursor()
    cur.execute(f"SELECT id, code FROM {my.t} WHERE id = 1")
    assert cur.fetchall() == ((1, "[US_SSN]"),)
    raw.close()


def test_mariadb_use_forgets_labels_of_the_other_databases_tables(my: My, unique: str) -> None:
    """``USE other`` (a warning in production) makes unqualified names another database's tables: labels read
    for ``test.t`` (colours) were kept for ``other.t`` (SSNs), which came back in clear; also through
    ``select_db()``, and after switching back and forth. USE now reads the tables again."""
    import pymysql

    other = f"rt8md_db_{unique}"
    _sessions_table(my, [f"colour{i}" for i in range(1, 40)])
    with my.admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {other}")
    try:
        _sessions_table(my, SSN_CODES, table=f"{other}.{my.t}")
        raw = pymysql.connect(autocommit=True, **my.kw)
        gov = govern(raw)
        read = f"SELECT id, code FROM {my.t} WHERE id = 1"
        cur = gov.cursor()
        cur.execute(read)
        assert cur.fetchall() == ((1, "colour1"),)
        seen = []
        for switch in (f"USE {other}", f"USE {MYSQL_DB}", f"USE {other}"):
            cur.execute(switch)
            cur.execute(read)
            seen.append(cur.fetchall())
        gov.select_db(MYSQL_DB)
        cur.execute(read)
        gov.select_db(other)
        cur.execute(read)
        seen.append(cur.fetchall())
        assert seen == [((1, "[US_SSN]"),), ((1, "colour1"),), ((1, "[US_SSN]"),), ((1, "[US_SSN]"),)]
        raw.close()
    finally:
        with my.admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {other}")


def test_postgres_discard_temp_forgets_labels_sampled_from_a_temporary_table(
    pg_conn: Any, pg_dsn: str, unique: str
) -> None:
    """The same on PostgreSQL, where the caller can end the shadow itself: ``DISCARD TEMP`` (allowed) drops the
    temporary table whose colours the columns were last read from, and the stored SSNs came back in clear.
    DISCARD and RESET now make masking read the tables again."""
    import psycopg

    t = f"rt8md_pg_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, code text)")
    try:
        with pg_conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s)", list(enumerate(SSN_CODES, start=1)))
        gov = govern(psycopg.connect(pg_dsn, autocommit=True))
        gov.execute(f"CREATE TEMP TABLE {t} (id int primary key, code text)")
        gov.execute(f"INSERT INTO {t} SELECT i, 'colour' || i FROM generate_series(1, 39) i")
        with pytest.raises(governed_db.GovernedDBError):
            gov.execute(f"ALTER TABLE {t} RENAME TO {t}_gone")  # refused, but the schema is read again
        read = f"SELECT id, code FROM {t} WHERE id = 1"
        assert gov.execute(read).fetchall() == [(1, "colour1")]
        gov.execute("DISCARD TEMP")
        assert gov.execute(read).fetchall() == [(1, "[US_SSN]")]
        gov.close()
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def test_mariadb_names_differing_in_case_are_different_tables(my: My) -> None:
    """MariaDB on Linux keeps table names case-sensitive (``lower_case_table_names = 0``): ``Rt8md_x`` (colours)
    and ``rt8md_x`` (SSNs) are two tables, but masking keys tables by their lower-cased name: read after the
    colours, the SSNs came back in clear. Another spelling of a key is now read too, and a column is masked when
    either table says so (the colours are then masked as well: fail closed)."""
    import pymysql

    upper = my.t.capitalize()
    with my.admin.cursor() as cur:
        cur.execute("SELECT @@lower_case_table_names")
        if cur.fetchall()[0][0] != 0:
            pytest.skip("this server folds table names: the two spellings are one table")
    _sessions_table(my, [f"colour{i}" for i in range(1, 40)], table=upper)
    _sessions_table(my, SSN_CODES)
    try:
        raw = pymysql.connect(autocommit=True, **my.kw)
        gov = govern(raw)
        cur = gov.cursor()
        cur.execute(f"SELECT id, code FROM {upper} WHERE id = 1")
        assert cur.fetchall() == ((1, "colour1"),)
        for spelled in (my.t, f"`{my.t}`"):
            cur.execute(f"SELECT id, code FROM {spelled} WHERE id = 1")
            assert cur.fetchall() == ((1, "[US_SSN]"),), spelled
        raw.close()
    finally:
        with my.admin.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {upper}")


def test_postgres_quoted_names_differing_in_case_are_different_tables(
    pg_conn: Any, pg_dsn: str, unique: str
) -> None:
    """PostgreSQL: ``"Rt8md_x"`` (quoted, colours) and ``rt8md_x`` (SSNs) are two tables sharing one lower-cased
    key; the SSNs came back in clear after the colours were read. Read under both spellings now."""
    import psycopg

    upper, lower = f'"Rt8md_pc_{unique}"', f"rt8md_pc_{unique}"
    pg_conn.execute(f"CREATE TABLE {upper} (id int primary key, code text)")
    pg_conn.execute(f"CREATE TABLE {lower} (id int primary key, code text)")
    try:
        with pg_conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {upper} VALUES (%s, %s)", [(i, f"colour{i}") for i in range(1, 40)])
            cur.executemany(f"INSERT INTO {lower} VALUES (%s, %s)", list(enumerate(SSN_CODES, start=1)))
        gov = govern(psycopg.connect(pg_dsn, autocommit=True))
        assert gov.execute(f"SELECT id, code FROM {upper} WHERE id = 1").fetchall() == [(1, "colour1")]
        assert gov.execute(f"SELECT id, code FROM {lower} WHERE id = 1").fetchall() == [(1, "[US_SSN]")]
        gov.close()
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {upper}, {lower}")
