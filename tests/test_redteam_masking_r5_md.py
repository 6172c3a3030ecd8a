"""Red-team round 5 over masking on MariaDB (PyMySQL) and DuckDB: a prompt-injected agent in production with
zero configuration learns a bit of a masked value through what the server counts or pairs, not what it returns.

* MariaDB counts an UPDATE's affected rows as the rows it *changed*: ``UPDATE t SET ssn = '<guess>' WHERE id =
  1`` inside a transaction rolled back afterwards says 0 exactly for the stored SSN (also multi-table UPDATE
  and ``ON DUPLICATE KEY UPDATE``).
* MariaDB ``DELETE``/``UPDATE ... ORDER BY ssn LIMIT 1`` write the row the masked values' order picks: a row of
  the caller's own holding a guess is written, or not.
* MariaDB's ``Bytes_sent`` status counter grows by the length of every value sent before masking:
  ``SELECT email ... WHERE id = 1`` tells the e-mail's length, ``replace(ssn, '5', <100 x>)`` how many 5s.
* DuckDB ``UNION [ALL] BY NAME`` pairs columns by name; the analysis paired them by position, so ``SELECT 1 AS
  id, 'x' AS city UNION ALL BY NAME SELECT ssn AS city, id FROM t`` returned every SSN in clear.

Each oracle compares a right guess with a wrong one and passes when the attacker observes both the same; the
raw connection shows that the same statements do tell them apart, so each test can fail. Look-alikes that
reveal nothing keep running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

import governed_db
from governed_db.policy.rules.tables import _traffic
from governed_db.sql.analysis import analyze
from tests._redteam import MariaTable, attempt, govern

SERVICE = governed_db.Identity("billing-service", kind="service")
DDL = "(id int primary key, full_name {t}, email {t}, ssn {t}, phone {t}, card {t}, city {t})"
ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "+1 415 555 0132", "4111111111111111", "Paris"),
    (2, "Ivan Petrov", "ivan@example.org", "219-45-1234", "+44 20 7946 0958", "5500005555555559", "Lyon"),
    (3, "Bob Jones", "bob@example.net", "123-45-6789", "+1 212 555 0199", "378282246310005", "Rome"),
]  # fmt: skip
SSNS = {r[3] for r in ROWS}
Run = Callable[[str], Any]


#: what the attacker sees: the rows or row count, that it was refused (and by which rule) or waits for approval,
#: or the error's class
_observe = partial(attempt, approval=True, cut=60)


# -- MariaDB ------------------------------------------------------------------------------------------------
class My(MariaTable):
    """A MariaDB table of three people, a governed connection to it and the raw one (the ground truth)."""

    def reset(self) -> None:
        with self.admin.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.t}")
            cur.execute(f"CREATE TABLE {self.t} " + DDL.format(t="varchar(100)"))
            cur.executemany(f"INSERT INTO {self.t} VALUES (%s,%s,%s,%s,%s,%s,%s)", ROWS)

    def both(self, template: str, right: str, wrong: str) -> tuple[list[Any], list[Any]]:
        """The raw and the governed observations of ``template`` for both guesses, each on fresh rows."""
        truth, seen = [], []
        for guess in (right, wrong):
            self.reset()
            truth.append(_observe(self.truth, template.format(t=self.t, G=guess)))
        for guess in (right, wrong):
            self.reset()
            seen.append(_observe(self.run, template.format(t=self.t, G=guess)))
        return truth, seen


@pytest.fixture
def my(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> Iterator[My]:
    db = My(mysql_kw, mysql_conn, f"rt5md_{unique}")
    try:
        yield db
    finally:
        db.close()


#: an UPDATE giving a masked column a value: MariaDB reports the row as affected only when the value differs
_CHANGED_ROWS = [
    "START TRANSACTION; UPDATE {t} SET ssn = '{G}' WHERE id = 1; ROLLBACK",
    "START TRANSACTION; UPDATE {t} SET ssn = '{G}', city = city WHERE id = 1; SELECT ROW_COUNT(); ROLLBACK",
    "START TRANSACTION; UPDATE {t} a JOIN {t} b ON a.id = b.id SET a.ssn = '{G}' WHERE a.id = 1; ROLLBACK",
    "START TRANSACTION; INSERT INTO {t} (id, ssn) VALUES (1, '{G}') ON DUPLICATE KEY UPDATE ssn = VALUES(ssn); "
    "ROLLBACK",
    "START TRANSACTION; INSERT INTO {t} (id, city) VALUES (1, 'x') ON DUPLICATE KEY UPDATE ssn = '{G}'; ROLLBACK",
    # REPLACE reports 1 for a row replaced by an identical one, 2 otherwise
    "START TRANSACTION; REPLACE INTO {t} VALUES (1, 'Alice Smith', 'alice@example.com', '{G}', '+1 415 555 0132', "
    "'4111111111111111', 'Paris'); ROLLBACK",
    "START TRANSACTION; REPLACE INTO {t} SET id = 1, full_name = 'Alice Smith', email = 'alice@example.com', "
    "ssn = '{G}', phone = '+1 415 555 0132', card = '4111111111111111', city = 'Paris'; ROLLBACK",
]


@pytest.mark.parametrize("template", _CHANGED_ROWS)
def test_mariadb_affected_rows_tell_no_equality(my: My, template: str) -> None:
    """Writing a guess into a masked column and rolling back: the affected-row count (0 for the stored value,
    1 or 2 otherwise) is an equality test; refused for both guesses, naming the column and what to do."""
    truth, seen = my.both(template, "536-22-8726", "536-22-8725")
    assert truth[0] != truth[1], truth  # without governed_db the count tells
    assert seen == ["refused", "refused"], seen
    with pytest.raises(governed_db.GuardrailViolation) as refused:
        my.run(template.format(t=my.t, G="536-22-8725"))
    message = str(refused.value)
    assert "masked-column-constraint" in message and f"{my.t}.ssn" in message and "unmask grant" in message
    assert [r[3] for r in my.truth(f"SELECT * FROM {my.t} ORDER BY id")[0]] == [r[3] for r in ROWS]


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE {t} SET ssn = NULL WHERE id = 1",  # NULL-ness is what the mask keeps anyway
        "UPDATE {t} SET city = 'Nice' WHERE id = 1",
        "INSERT INTO {t} (id, city) VALUES (1, 'x') ON DUPLICATE KEY UPDATE city = 'Nice'",
        "INSERT INTO {t} (id, ssn) VALUES (9, '999-99-9999')",  # no key compares it with the stored ones
        "REPLACE INTO {t} (id, city) VALUES (1, 'Paris')",  # the SSN becomes NULL: 2 whatever it was
    ],
)
def test_mariadb_innocent_writes_keep_running(my: My, sql: str) -> None:
    """Look-alikes: writes that give a masked column no value (or are no UPDATE of it) keep running with the
    database's own row count."""
    my.reset()
    expected = my.truth(sql.format(t=my.t))
    my.reset()
    assert my.run(sql.format(t=my.t)) == expected


def test_mariadb_unmask_grant_still_updates(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> None:
    """An identity with an unmask grant for SSNs updates them and sees MariaDB's own count."""
    grant = {"unmask": [{"kind": "service", "labels": ["US_SSN"]}]}
    db = My(mysql_kw, mysql_conn, f"rt5md_g_{unique}", identity=SERVICE, masking=grant)
    try:
        assert db.run(f"UPDATE {db.t} SET ssn = '536-22-8726' WHERE id = 1") == [0]
        assert db.run(f"UPDATE {db.t} SET ssn = '536-22-8725' WHERE id = 1") == [1]
    finally:
        db.close()


#: the order of a masked column picks the row a bounded write changes (a row of the caller's own holds a guess)
_ORDERED_WRITES = [
    "INSERT INTO {t} (id, ssn) VALUES (0, '{G}'); DELETE FROM {t} WHERE id IN (0, 1) ORDER BY ssn LIMIT 1; "
    "SELECT id FROM {t} ORDER BY id",
    "INSERT INTO {t} (id, ssn) VALUES (0, '{G}'); UPDATE {t} SET city = 'X' WHERE id IN (0, 1) ORDER BY ssn DESC "
    "LIMIT 1; SELECT id, city FROM {t} ORDER BY id",
    "INSERT INTO {t} (id, ssn) VALUES (0, '{G}'); UPDATE {t} SET city = 'X' WHERE id IN (0, 1) "
    "ORDER BY upper(ssn) LIMIT 1; SELECT id, city FROM {t} ORDER BY id",
    "INSERT INTO {t} (id, ssn) VALUES (0, '{G}'); DELETE FROM {t} WHERE id IN (0, 1) ORDER BY concat(ssn, ''), id LIMIT 1; "
    "SELECT id FROM {t} ORDER BY id",
]


@pytest.mark.parametrize("template", _ORDERED_WRITES)
def test_mariadb_write_order_by_a_masked_column_is_refused(my: My, template: str) -> None:
    """``DELETE``/``UPDATE ... ORDER BY ssn LIMIT 1``: which row is written says whether the guess sorts before
    the SSN; refused for both guesses."""
    truth, seen = my.both(template, "4", "6")
    assert truth[0] != truth[1], truth
    assert seen == ["refused", "refused"], seen


def test_mariadb_write_order_by_other_columns_runs(my: My) -> None:
    """Look-alike: a bounded write ordered by unmasked columns runs and changes the row the raw one does."""
    sql = f"UPDATE {my.t} SET city = 'X' WHERE id IN (1, 2) ORDER BY id DESC LIMIT 1; SELECT id, city FROM {my.t}"
    my.reset()
    expected = my.truth(sql)
    my.reset()
    assert my.run(sql) == expected == [1, ((1, "Paris"), (2, "X"), (3, "Rome"))]


def _bytes_sent(run: Run, sql: str) -> int:
    """How much the server sent for ``sql``, by the session's Bytes_sent counter."""
    before = run("SHOW SESSION STATUS LIKE 'Bytes_sent'")[0][0][1]
    run(sql)
    after = run("SHOW SESSION STATUS LIKE 'Bytes_sent'")[0][0][1]
    return int(after) - int(before)


_COUNTERS = [
    "SHOW SESSION STATUS LIKE 'Bytes_sent'",
    "SHOW STATUS LIKE 'bytes%'",
    "SHOW GLOBAL STATUS",
    "SHOW STATUS WHERE Variable_name = 'Bytes_sent'",
    "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'BYTES_SENT'",
    "SELECT * FROM information_schema.GLOBAL_STATUS",
    "SELECT (SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'BYTES_SENT')",
    "SELECT BYTES_SENT FROM information_schema.CLIENT_STATISTICS",
]


def test_mariadb_bytes_sent_tells_no_length(my: My) -> None:
    """``Bytes_sent`` measures the result before masking: on the raw connection it tells the three e-mails'
    lengths apart (17, 16, 15) and counts the 5s of an SSN through a short ``replace()``; governed, every way
    to read the counter is refused, so the masked read itself tells nothing."""
    # five copies: the counter's own digits add a byte now and then
    five = "SELECT email, email, email, email, email FROM " + my.t + " WHERE id = {i}"
    lengths = [_bytes_sent(my.truth, five.format(i=i)) for i in (1, 2, 3)]
    assert lengths[0] - 3 > lengths[1] > lengths[2] + 3, lengths
    sql = "SELECT replace(ssn, '{g}', '" + "x" * 100 + "') FROM " + my.t + " WHERE id = 1"
    grown = [_bytes_sent(my.truth, sql.format(g=g)) for g in "54"]
    assert grown[0] - grown[1] >= 98, grown
    for sql in _COUNTERS:
        with pytest.raises(governed_db.GuardrailViolation) as refused:
            my.run(sql)
        assert "system-catalog" in str(refused.value) and "Bytes_sent" in str(refused.value), sql
    assert my.run(f"SELECT email FROM {my.t} WHERE id = 1") == [(("a***@example.com",),)]
    assert my.run(five.format(i=1)) == [(("a***@example.com",) * 5,)]


@pytest.mark.parametrize(
    "sql",
    [
        "SHOW STATUS LIKE 'Threads%'",
        "SHOW GLOBAL STATUS LIKE 'Uptime'",
        "SHOW STATUS WHERE Variable_name IN ('Threads_connected', 'Questions')",
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'THREADS_CONNECTED'",
        "SHOW VARIABLES LIKE 'max_allowed_packet'",
    ],
)
def test_mariadb_other_status_counters_still_read(my: My, sql: str) -> None:
    """Look-alikes: monitoring reads of counters that measure no value keep running."""
    rows = my.run(sql)[0]
    assert rows and all(len(r) in (1, 2) for r in rows), rows


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("SHOW STATUS", True),
        ("SHOW LOCAL STATUS LIKE '%sent'", True),
        ("SHOW STATUS LIKE 'bytes\\_sent'", True),
        ("SHOW STATUS LIKE 'Max%'", True),  # Max_memory_used
        ("SHOW STATUS WHERE Variable_name LIKE 'Thr%' OR Value > 0", True),
        ("SELECT * FROM performance_schema.status_by_thread", True),
        ("SELECT * FROM sys.metrics WHERE Variable_name = 'bytes_sent'", True),
        ("SHOW STATUS LIKE 'Threads_connected'", False),
        ("SHOW STATUS WHERE Variable_name = 'Uptime' AND Value > 0", False),
        ("SELECT * FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME IN ('UPTIME', 'QUESTIONS')", False),
        ("SHOW VARIABLES", False),
    ],
)
def test_status_counter_reads_are_judged_by_the_names_they_can_keep(sql: str, refused: bool) -> None:
    """Which reads of status counters may include Bytes_sent or the memory counters (fail closed on anything
    but literal names, ``=``/``IN``/``LIKE`` of the name column)."""
    assert (_traffic(analyze(sql, "mysql").statements[0]) is not None) is refused


def _warned(my: My, sql: str) -> Any:
    """The rows of ``sql`` and the warnings it left (``SHOW WARNINGS``), on the governed connection."""
    return my.run(f"{sql}; SHOW WARNINGS")


#: a value converted to a number or a truth value by an operator: MariaDB warns unless it reads as a number
_X = "replace(substr(ssn, 1, 1), '{G}', 'x')"
_MY_OPERATORS = [
    f"SELECT {_X} AND 1 FROM {{t}} WHERE id = 1",
    f"SELECT {_X} OR 0 FROM {{t}} WHERE id = 1",
    f"SELECT {_X} || 0 FROM {{t}} WHERE id = 1",  # a logical OR on MariaDB (no PIPES_AS_CONCAT)
    f"SELECT {_X} XOR 0 FROM {{t}} WHERE id = 1",
    f"SELECT NOT {_X} FROM {{t}} WHERE id = 1",
    f"SELECT -{_X} FROM {{t}} WHERE id = 1",
    f"SELECT ~{_X} FROM {{t}} WHERE id = 1",
    f"SELECT {_X} & 1 FROM {{t}} WHERE id = 1",
    f"SELECT {_X} << 1 FROM {{t}} WHERE id = 1",
    f"SELECT {_X} DIV 1 FROM {{t}} WHERE id = 1",
    f"SELECT {_X} / 1 FROM {{t}} WHERE id = 1",
    f"SELECT {_X} % 2 FROM {{t}} WHERE id = 1",
    f"SELECT count(*) FROM {{t}} WHERE id = 1 AND NOT {_X}",
]


@pytest.mark.parametrize("template", _MY_OPERATORS)
def test_mariadb_operators_tell_nothing(my: My, template: str) -> None:
    """Logical, bitwise and unary operators, a dividend: each converts its operand with a warning exactly when
    it is no number (here: exactly for the right first character); refused for both guesses."""
    truth = [my.truth(template.format(t=my.t, G=g) + "; SHOW WARNINGS") for g in "54"]
    assert truth[0][-1] != truth[1][-1], truth  # the warning tells
    seen = [_observe(lambda sql: _warned(my, sql), template.format(t=my.t, G=g)) for g in "54"]
    assert seen == ["refused", "refused"], seen


def test_mariadb_operators_over_a_column_own_value_tell_nothing(my: My) -> None:
    """Over a masked column's own value the warning says whether it reads as a number (a card number with
    spaces or not): refused too."""
    for sql in (f"SELECT card DIV 1 FROM {my.t}", f"SELECT NOT card FROM {my.t}", f"SELECT -phone FROM {my.t}"):
        assert _observe(lambda q: _warned(my, q), sql) == "refused", sql


def test_mariadb_operators_over_other_columns_run(my: My) -> None:
    """Look-alikes: the same operators over unmasked columns, and truth values of comparisons with them."""
    sql = (
        f"SELECT id, -id, ~id & 7, id DIV 2, id % 2, NOT id, id AND 1, id XOR 1 FROM {my.t} "
        f"WHERE id > 1 AND NOT (email IS NULL) ORDER BY id"
    )
    assert my.run(sql) == my.truth(sql)


def test_mariadb_operators_over_masked_numbers_still_run(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> None:
    """Look-alikes: over a masked column declared as a number (a salary), or a number computed from one, MySQL
    converts nothing: dividing, negating or testing it runs (a number derived from a masked value is NULL);
    the same over a text or a text aggregate is refused."""
    import pymysql

    t = f"rt5md_s_{unique}"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id int primary key, full_name varchar(50), salary decimal(10,2))")
        cur.executemany(f"INSERT INTO {t} VALUES (%s,%s,%s)", [(1, "Alice Smith", 85000), (2, "Bob Jones", 62000)])
    raw = pymysql.connect(autocommit=True, **mysql_kw)
    conn = govern(raw)

    def run(sql: str) -> Any:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()

    try:
        assert run(f"SELECT salary / 12, -salary, salary DIV 1000, NOT salary FROM {t} WHERE id = 1") == (
            (None, None, None, None),
        )
        assert run(f"SELECT avg(salary) / 12, -(sum(salary)), length(full_name) DIV 2 FROM {t}") == ((None, None, None),)
        for sql in (f"SELECT max(full_name) / 1 FROM {t}", f"SELECT -full_name FROM {t}", f"SELECT NOT full_name FROM {t}"):
            assert _observe(run, sql) == "refused", sql
    finally:
        raw.close()
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


# -- DuckDB -------------------------------------------------------------------------------------------------
@pytest.fixture
def duck() -> Iterator[tuple[Run, Run]]:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE rt5md_p " + DDL.format(t="varchar"))
    raw.executemany("INSERT INTO rt5md_p VALUES (?,?,?,?,?,?,?)", ROWS)
    conn = govern(raw)

    def run(sql: str) -> Any:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall() if cur.description else None

    try:
        yield run, lambda sql: raw.execute(sql).fetchall()
    finally:
        raw.close()


#: result columns UNION BY NAME fills from a masked column under the name of an unmasked one (or a new name)
_BY_NAME = [
    "SELECT 1 AS id, 'x' AS city UNION ALL BY NAME SELECT ssn AS city, id FROM rt5md_p",
    "SELECT 'x' AS city, 1 AS id UNION ALL BY NAME SELECT id, ssn AS city FROM rt5md_p",
    "SELECT 'x' AS note UNION ALL BY NAME SELECT id, ssn AS city FROM rt5md_p",
    "SELECT city FROM (SELECT 1 AS id, 'x' AS city UNION ALL BY NAME SELECT ssn AS city, id FROM rt5md_p)",
    "WITH a AS (SELECT 'x' AS city), b AS (SELECT ssn AS city FROM rt5md_p) FROM a UNION ALL BY NAME FROM b",
    "SELECT id, city FROM rt5md_p UNION ALL BY NAME SELECT id, ssn AS city FROM rt5md_p",
]


@pytest.mark.parametrize("sql", _BY_NAME)
def test_duckdb_union_by_name_returns_no_masked_value(duck: tuple[Run, Run], sql: str) -> None:
    """No stored SSN comes back from a UNION BY NAME that puts it under another column's name; the raw
    connection returns them (so the statement does carry them)."""
    run, raw_run = duck
    assert {v for row in raw_run(sql) for v in row} >= SSNS
    got = run(sql)
    assert len(got) == len(raw_run(sql))
    assert not SSNS & {v for row in got for v in row}, got


_BY_NAME_ORACLES = [
    "SELECT id FROM (SELECT 0 AS id, 'x' AS city UNION ALL BY NAME SELECT ssn AS city, id FROM rt5md_p "
    "WHERE id = 1) WHERE city LIKE '{G}%'",
    "SELECT * FROM (SELECT 0 AS id, '{G}' AS city UNION ALL BY NAME SELECT ssn AS city, id FROM rt5md_p "
    "WHERE id = 1) ORDER BY 2",
    "SELECT id FROM (SELECT 0 AS id, '{G}' AS city UNION ALL BY NAME SELECT ssn AS city, id FROM rt5md_p "
    "WHERE id = 1) ORDER BY city",
]


@pytest.mark.parametrize("template", _BY_NAME_ORACLES)
def test_duckdb_union_by_name_decides_nothing(duck: tuple[Run, Run], template: str) -> None:
    """A filter or a sort on the column UNION BY NAME fills with SSNs is a use of the SSN: refused."""
    run, raw_run = duck
    right, wrong = ("5", "4") if "LIKE" in template else ("4", "6")
    truth = [raw_run(template.format(G=g)) for g in (right, wrong)]
    assert truth[0] != truth[1], truth
    assert [_observe(run, template.format(G=g)) for g in (right, wrong)] == ["refused", "refused"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 0 AS id, 'x' AS city UNION ALL BY NAME SELECT city, id FROM rt5md_p ORDER BY id",
        "SELECT id, city FROM rt5md_p UNION ALL BY NAME SELECT city, id FROM rt5md_p ORDER BY id, city",
        "SELECT id FROM rt5md_p UNION ALL BY NAME SELECT city FROM rt5md_p ORDER BY id NULLS LAST, city",
        "SELECT id, city FROM rt5md_p WHERE id > 1 UNION BY NAME SELECT city, id FROM rt5md_p ORDER BY id",
    ],
)
def test_duckdb_union_by_name_of_unmasked_columns_is_exact(duck: tuple[Run, Run], sql: str) -> None:
    """Look-alikes: UNION BY NAME of unmasked columns comes back exactly as the raw connection returns it."""
    run, raw_run = duck
    assert run(sql) == raw_run(sql)


def test_duckdb_union_by_name_keeps_masked_columns_masked(duck: tuple[Run, Run]) -> None:
    """The SSN column of a by-name union stays masked under its own name, wherever the branches put it."""
    run, _ = duck
    got = run("SELECT id, ssn FROM rt5md_p UNION ALL BY NAME SELECT ssn, id FROM rt5md_p ORDER BY id")
    assert [r[0] for r in got] == [1, 1, 2, 2, 3, 3]
    assert {r[1] for r in got} == {"[US_SSN]"}


def test_duckdb_updates_of_masked_columns_still_run(duck: tuple[Run, Run]) -> None:
    """DuckDB counts the rows an UPDATE matched, not those it changed: writing a masked column stays allowed
    there (and says nothing: the same count for the stored value and another)."""
    run, _ = duck
    assert run("UPDATE rt5md_p SET ssn = '536-22-8726' WHERE id = 1") == run(
        "UPDATE rt5md_p SET ssn = '536-22-8725' WHERE id = 1"
    )


#: DuckDB converts text to BOOLEAN for AND/OR/NOT and a FILTER, failing for text that is no boolean
_T = "replace(substr(ssn, 1, 1), '{G}', 'true')"
_DUCK_TRUTH = [
    f"SELECT {_T} AND true FROM rt5md_p WHERE id = 1",
    f"SELECT {_T} OR false FROM rt5md_p WHERE id = 1",
    f"SELECT NOT {_T} FROM rt5md_p WHERE id = 1",
    f"SELECT count(*) FILTER (WHERE {_T}) FROM rt5md_p WHERE id = 1",
    f"SELECT count(*) FILTER ({_T}) FROM rt5md_p WHERE id = 1",
    "SELECT sum(id) FILTER (WHERE ssn LIKE '{G}%') FROM rt5md_p",
]


@pytest.mark.parametrize("template", _DUCK_TRUTH)
def test_duckdb_truth_values_of_masked_text_tell_nothing(duck: tuple[Run, Run], template: str) -> None:
    """The conversion fails exactly for a wrong first character (``Could not convert string '5' to BOOL``), and
    a FILTER counts the rows its condition keeps: refused for both guesses."""
    run, raw_run = duck
    assert _observe(raw_run, template.format(G="5")) != _observe(raw_run, template.format(G="4"))
    assert [_observe(run, template.format(G=g)) for g in "54"] == ["refused", "refused"]


def test_duckdb_filters_and_logic_over_other_columns_run(duck: tuple[Run, Run]) -> None:
    """Look-alikes: FILTER and logical operators over unmasked columns (and NULL tests of masked ones) run."""
    run, raw_run = duck
    sql = (
        "SELECT count(*) FILTER (WHERE city = 'Paris'), count(*) FILTER (WHERE ssn IS NOT NULL AND id > 1), "
        "bool_and(id > 0 OR city = 'x'), sum(-id), sum(id // 2) FROM rt5md_p"
    )
    assert run(sql) == raw_run(sql) == [(1, 2, True, -6, 2)]


def test_duckdb_group_by_all_leaves_aggregates_out(duck: tuple[Run, Run]) -> None:
    """Over-refusal: DuckDB's ``GROUP BY ALL`` (which the relation API adds to ``rel.max('ssn')``,
    ``rel.list()``, ``rel.describe()``...) groups by the outputs that hold no aggregate; ``max(ssn)`` there is
    no grouping by the SSN. A bare or computed SSN still is."""
    run, raw_run = duck
    assert run("SELECT max(ssn), city FROM rt5md_p GROUP BY ALL ORDER BY city") == [
        ("[US_SSN]", "Lyon"), ("[US_SSN]", "Paris"), ("[US_SSN]", "Rome")
    ]  # fmt: skip
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE rt5md_r " + DDL.format(t="varchar"))
    raw.executemany("INSERT INTO rt5md_r VALUES (?,?,?,?,?,?,?)", ROWS)
    rel = govern(raw).sql("SELECT id, ssn, city FROM rt5md_r")
    try:
        assert rel.max("ssn").fetchall() == [("[US_SSN]",)]
        assert rel.string_agg("ssn").fetchall() == [("[US_SSN]",)]
        described = {r[0]: r for r in rel.describe().fetchall()}
        assert described["min"][1:] == (1.0, "[US_SSN]", "Lyon") and described["max"][3] == "Rome"
    finally:
        raw.close()
    for sql in (
        "SELECT ssn, count(*) FROM rt5md_p GROUP BY ALL",
        "SELECT upper(ssn), max(id) FROM rt5md_p GROUP BY ALL",
        "SELECT lower(ssn), string_agg(city) FROM rt5md_p GROUP BY ALL",
    ):
        assert len(raw_run(sql)) == 3
        assert _observe(run, sql) == "refused", sql


def test_duckdb_filter_searches_free_text_like_a_where() -> None:
    """A FILTER's condition is judged like a WHERE: a word search of a note that holds SSNs runs and counts
    what the WHERE would (it came back NULL: the count was taken as derived from the note), a search that
    could match inside an SSN is refused for a right and a wrong guess alike."""
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE rt5md_n (id int, notes varchar)")
    notes = ["refund requested, SSN 536-22-8726", "call about refund 219-45-1234", "ssn on file 078-05-1120",
             "shipping delayed", "refund done", "nothing"]  # fmt: skip
    raw.executemany("INSERT INTO rt5md_n VALUES (?, ?)", list(enumerate(notes)))
    conn = govern(raw)

    def run(sql: str) -> Any:
        return conn.execute(sql).fetchall()

    try:
        assert run("SELECT count(*) FILTER (WHERE notes LIKE '%refund%') FROM rt5md_n") == [(3,)]
        assert run("SELECT count(*) FROM rt5md_n WHERE notes LIKE '%refund%'") == [(3,)]
        probe = "SELECT count(*) FILTER (WHERE notes LIKE '%{G}-22%') FROM rt5md_n"
        assert raw.execute(probe.format(G="536")).fetchall() != raw.execute(probe.format(G="537")).fetchall()
        assert [_observe(run, probe.format(G=g)) for g in ("536", "537")] == ["refused", "refused"]
    finally:
        raw.close()
