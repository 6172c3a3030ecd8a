"""Red-team regressions for masking on the servers: PostgreSQL (psycopg 3, psycopg2) and MariaDB (PyMySQL).

An agent identity in production with zero configuration tries to learn a character, the length or one bit of a
masked value through what the server says besides the rows: the number of rows a set-returning function
yields, errors, warnings (``@@warning_count``, ``SHOW WARNINGS``). Each oracle compares a right guess with a
wrong one: it passes when both are observed the same (refused, or nothing tells them apart). A control on a
column nothing masks (``city``) shows the same statements do tell characters apart there; look-alikes that
reveal nothing keep running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests._redteam import attempt as _observe
from tests._redteam import govern, made_tables

DDL = (
    "(id int primary key, full_name {t}, email {t}, ssn {t}, phone {t}, api_key {t}, iban {t}, card {t}, "
    "address {t}, city {t})"
)
ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "+1 415 555 0132", "sk_live_51H8abcdEFGHijklMNOPqrstUVwx",
     "DE89370400440532013000", "4111111111111111", "221B Baker Street\nLondon NW1 6XE", "Paris"),
    (2, "Иван Петров", "ivan@example.org", "219-45-1234", "+44 20 7946 0958", "ghp_R4nd0mT0k3nAbCdEfGhIjKlMnOp",
     "GB29NWBK60161331926819", "5500 0055 5555 5559", "1 Main St\nSpringfield", "Lyon"),
]  # fmt: skip
Run = Callable[[str], Any]


@pytest.fixture
def pg_table(pg_conn: Any, unique: str) -> Iterator[str]:
    with made_tables(pg_conn) as make:
        yield make(DDL.format(t="text"), ROWS, f"rtserver_c_{unique}")


@pytest.fixture(params=["psycopg", "psycopg2"])
def pg(request: pytest.FixtureRequest, pg_dsn: str, pg_table: str) -> Iterator[tuple[Run, str]]:
    """A governed PostgreSQL connection of either driver, and the table."""
    if request.param == "psycopg":
        import psycopg

        raw: Any = psycopg.connect(pg_dsn, autocommit=True)
    else:
        psycopg2 = pytest.importorskip("psycopg2")
        raw = psycopg2.connect(pg_dsn)
        raw.autocommit = True
    conn = govern(raw)

    def run(sql: str) -> Any:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall() if cur.description else cur.rowcount

    try:
        yield run, pg_table
    finally:
        raw.close()


@pytest.fixture
def my(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> Iterator[tuple[Run, str, Any]]:
    """A governed MariaDB connection; ``run`` returns the rows and ``@@warning_count`` after them."""
    import pymysql

    with made_tables(mysql_conn) as make:
        t = make(DDL.format(t="varchar(100)"), ROWS, f"rtserver_c_{unique}")
        raw = pymysql.connect(autocommit=True, **mysql_kw)
        conn = govern(raw)

        def run(sql: str) -> Any:
            cur = conn.cursor()
            cur.execute(sql)
            rows = cur.fetchall() if cur.description else cur.rowcount
            cur.execute("SELECT @@warning_count")
            return rows, cur.fetchall()

        try:
            yield run, t, conn
        finally:
            raw.close()


def _tells_apart(run: Run, template: str, table: str, column: str, right: str, wrong: str) -> tuple[Any, Any]:
    """The observations for the right and a wrong guess of the first character of row 1's ``column``.

    ``{R}`` replaces a right guess by a character of the other kind (a digit by a letter, a letter by a digit),
    so that whether the value still reads as a number says whether the guess was right."""
    x = f"substr(c.{column}, 1, 1)"
    r = "x" if right.isdigit() else "1"
    seen = [_observe(run, template.format(t=table, X=x, G=g, R=r)) for g in (right, wrong)]
    return seen[0], seen[1]


# -- PostgreSQL ---------------------------------------------------------------------------------------------
PG_ORACLES = {
    # jsonb keeps one of two equal keys: the number of rows jsonb_each yields says whether they were equal
    "jsonb key dedup row count": "SELECT count(*) FROM {t} c, jsonb_each(to_jsonb(jsonb_build_object({X}, 1, '{G}', 2))) "
    "WHERE c.id = 1",
    "json key dedup row count": "SELECT count(*) FROM {t} c, json_each(to_json(jsonb_build_object({X}, 1, '{G}', 2))) "
    "WHERE c.id = 1",
    "json_object_agg key dedup": "SELECT count(*) FROM jsonb_each(to_jsonb((SELECT json_object_agg(k, 1) FROM "
    "(SELECT {X} AS k FROM {t} c WHERE c.id = 1 UNION ALL SELECT '{G}') q)))",
    "jsonb_each in the select list": "SELECT jsonb_each(to_jsonb(jsonb_build_object({X}, 1, '{G}', 2))) FROM {t} c "
    "WHERE c.id = 1",
    # format('%*s', v, ...) converts v to the width: an error unless v is an integer
    "format width": "SELECT format('%*s', replace({X}, '{G}', '{R}'), 'y') FROM {t} c WHERE c.id = 1",
    "format positional width": "SELECT format('%1$*2$s', 'y', replace({X}, '{G}', '{R}')) FROM {t} c WHERE c.id = 1",
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PG_ORACLES))
def test_postgres_oracles_tell_nothing(pg: tuple[Run, str], name: str) -> None:
    """Row counts of jsonb_each over de-duplicated keys and format() width conversions are refused over a
    masked value: the right first character of the SSN and the name is observed as a wrong one is."""
    run, t = pg
    for column, right, wrong in (("ssn", "5", "4"), ("full_name", "A", "B")):
        hit, miss = _tells_apart(run, PG_ORACLES[name], t, column, right, wrong)
        assert hit == miss == "refused", (name, column, hit, miss)


@pytest.mark.parametrize("name", sorted(PG_ORACLES))
def test_postgres_oracles_work_on_an_unmasked_column(pg: tuple[Run, str], name: str) -> None:
    """Control: on city (not masked) the same statements do tell the right first character from a wrong one."""
    run, t = pg
    hit, miss = _tells_apart(run, PG_ORACLES[name], t, "city", "P", "Q")
    assert hit != miss, (name, hit, miss)


def test_postgres_convert_to_tells_no_script(pg: tuple[Run, str]) -> None:
    """convert_to(full_name, 'LATIN1') failed for the Cyrillic name only (the script a name is written in):
    refused for both rows now; the UTF8 conversion still runs, masked."""
    run, t = pg
    seen = {i: _observe(run, f"SELECT convert_to(full_name, 'LATIN1') FROM {t} WHERE id = {i}") for i in (1, 2)}
    assert seen == {1: "refused", 2: "refused"}, seen
    control = {i: _observe(run, f"SELECT convert_to(city || '{ch}', 'LATIN1') FROM {t} WHERE id = {i}")
               for i, ch in ((1, "e"), (2, "Ж"))}  # fmt: skip
    assert control[1] != control[2], control
    rows = run(f"SELECT convert_to(full_name, 'UTF8'), encode(convert_to(email, 'UTF-8'), 'hex') FROM {t}")
    assert len(rows) == 2 and "Alice" not in repr(rows) and "616c696365" not in repr(rows)


PG_INNOCENT = [
    "SELECT format('%s <%s>', full_name, email), format('%10s', ssn) FROM {t}",
    "SELECT j.key FROM {t} c, jsonb_each(to_jsonb(c)) j",
    "SELECT count(*) FROM jsonb_array_elements(to_jsonb(ARRAY(SELECT email FROM {t})))",
    "SELECT x FROM unnest(ARRAY(SELECT email FROM {t})) AS x",
    "SELECT ssn = 'x', email LIKE 'a%', greatest(email, 'b') FROM {t}",
    "SELECT format('%*s', 3, city) FROM {t}",
]


@pytest.mark.parametrize("sql", PG_INNOCENT)
def test_postgres_look_alikes_keep_running(pg: tuple[Run, str], sql: str) -> None:
    """Plain format() of masked columns, jsonb_each of a whole row, unnest of an array of a column and result
    comparisons still run, and return no masked value in the clear."""
    run, t = pg
    rows = run(sql.format(t=t))
    assert rows, sql
    text = repr(rows)
    for secret in ("Alice", "alice@", "536-22", "sk_live", "Baker"):
        assert secret not in text, (sql, rows)


# -- MariaDB ------------------------------------------------------------------------------------------------
MY_ORACLES = {
    # a text compared with a number is converted, with a warning unless it reads as one
    "comparison with a number": "SELECT replace({X}, '{G}', '{R}') = 0 FROM {t} c WHERE c.id = 1",
    "IN numbers": "SELECT replace({X}, '{G}', '{R}') IN (0, 1) FROM {t} c WHERE c.id = 1",
    "BETWEEN numbers": "SELECT replace({X}, '{G}', '{R}') BETWEEN 0 AND 1 FROM {t} c WHERE c.id = 1",
    "greatest with a number": "SELECT greatest(replace({X}, '{G}', '{R}'), 0) FROM {t} c WHERE c.id = 1",
    "least with a number": "SELECT least(replace({X}, '{G}', '{R}'), 0) FROM {t} c WHERE c.id = 1",
}


@pytest.mark.parametrize("name", sorted(MY_ORACLES))
def test_mariadb_conversion_warnings_tell_nothing(my: tuple[Run, str, Any], name: str) -> None:
    """A masked value compared with a number (in the select list, GREATEST/LEAST) is refused on MariaDB: the
    conversion warning (@@warning_count) said whether replace() had found the guessed character."""
    run, t, _ = my
    hit, miss = _tells_apart(run, MY_ORACLES[name], t, "ssn", "5", "4")
    assert hit == miss == "refused", (name, hit, miss)


@pytest.mark.parametrize("name", sorted(MY_ORACLES))
def test_mariadb_conversion_warnings_work_on_an_unmasked_column(my: tuple[Run, str, Any], name: str) -> None:
    """Control: over city the same statements warn for the right first character only."""
    run, t, _ = my
    hit, miss = _tells_apart(run, MY_ORACLES[name], t, "city", "P", "Q")
    assert hit != miss, (name, hit, miss)


def test_mariadb_length_cast_tells_no_length(my: tuple[Run, str, Any]) -> None:
    """CAST(full_name AS CHAR(n)) warned exactly when the name is longer than n (its length, by bisection): a
    length cast that can truncate a masked column is refused; over city it tells the length."""
    run, t, _ = my
    n = len("Alice Smith")
    seen = [_observe(run, f"SELECT CAST(full_name AS {ty}({k})) FROM {t} WHERE id = 1")
            for ty in ("CHAR", "BINARY", "VARCHAR") for k in (n - 1, n)]  # fmt: skip
    assert set(seen) == {"refused"}, seen
    control = [_observe(run, f"SELECT CAST(city AS CHAR({k})) FROM {t} WHERE id = 1") for k in (4, 5)]
    assert control[0] != control[1], control


def test_mariadb_casts_that_cannot_truncate_keep_running(my: tuple[Run, str, Any]) -> None:
    """A cast without a length, or to a length no shorter than the column's declared one, runs masked."""
    run, t, _ = my
    rows, warnings = run(
        f"SELECT CAST(ssn AS CHAR), CAST(email AS BINARY), CAST(full_name AS CHAR(100)), "
        f"CONVERT(ssn, CHAR(200)) FROM {t}"
    )
    assert len(rows) == 2 and warnings == ((0,),)
    assert "Alice" not in repr(rows) and "536-22" not in repr(rows) and "alice@" not in repr(rows)


def test_mariadb_warnings_do_not_echo_multiline_values(my: tuple[Run, str, Any]) -> None:
    """SUM(address) warns 'Truncated incorrect DOUBLE value' quoting the value; an address spans lines, and the
    scrub stopped at the first one, so SHOW WARNINGS and show_warnings() returned it whole. SUM of a masked
    text column is refused now (decision 0190): the warnings are raised on the session underneath, as a
    statement the analysis missed would, and the governed SHOW WARNINGS still blanks them."""
    run, t, conn = my
    assert _observe(run, f"SELECT sum(address) FROM {t} WHERE id = 1") == "refused"
    under = conn.__wrapped__.cursor()
    under.execute(f"SELECT sum(address) FROM {t} WHERE id = 1")
    cur = conn.cursor()
    cur.execute("SHOW WARNINGS")
    shown = cur.fetchall()
    under.execute(f"SELECT sum(address), sum(full_name) FROM {t}")
    under.fetchall()
    via_driver = conn.show_warnings()
    for seen in (shown, via_driver):
        assert seen and all(w[1] == 1292 for w in seen), seen
        text = repr(seen)
        assert "Baker" not in text and "London" not in text and "Springfield" not in text, seen
        assert "Alice" not in text and "Иван" not in text, seen
        assert "[REDACTED]" in text, seen


def test_duckdb_result_comparison_is_no_conversion_error() -> None:
    """DuckDB casts a text compared with a number and fails when it is not one: a comparison in the select
    list of a masked value is refused there too (the same rule as MariaDB's warnings)."""
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    try:
        raw.execute("CREATE TABLE c (id int, ssn varchar, city varchar)")
        raw.execute("INSERT INTO c VALUES (1, '536-22-8726', 'Paris')")
        conn = govern(raw)
        run: Run = lambda sql: conn.execute(sql).fetchall()  # noqa: E731
        hit, miss = _tells_apart(run, MY_ORACLES["comparison with a number"], "c", "ssn", "5", "4")
        assert hit == miss == "refused", (hit, miss)
        hit, miss = _tells_apart(run, MY_ORACLES["comparison with a number"], "c", "city", "P", "Q")
        assert hit != miss, (hit, miss)
    finally:
        raw.close()


# -- not fixed ----------------------------------------------------------------------------------------------
def test_mariadb_numeric_aggregate_tells_no_format(my: tuple[Run, str, Any]) -> None:
    """SUM(card) of the card with spaces and of the one without are observed alike."""
    run, t, conn = my
    for fn in ("sum", "avg", "round", "floor", "ceil", "year", "std"):
        seen = {i: _observe(run, f"SELECT {fn}(card) FROM {t} WHERE id = {i}") for i in (1, 2)}
        assert seen[1] == seen[2] == "refused", (fn, seen)
    # ground truth: the raw session warns for the card with spaces only
    under = conn.__wrapped__.cursor()
    warned = []
    for i in (1, 2):
        under.execute(f"SELECT sum(card) FROM {t} WHERE id = {i}")
        under.fetchall()
        under.execute("SELECT @@warning_count")
        warned.append(under.fetchall()[0][0])
    assert warned == [0, 1], warned


def test_mariadb_numeric_aggregates_of_numbers_keep_running(
    mysql_conn: Any, mysql_kw: dict[str, Any], unique: str
) -> None:
    """Look-alike: SUM/AVG/ROUND of a masked column declared as a number (salary) and YEAR() of a date run,
    masked, without a warning; SUM of the plain text city still runs (it is not masked)."""
    import pymysql

    t = f"maskfix2_n_{unique}"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id int primary key, salary decimal(10,2), birth_date date, city varchar(40))")
        cur.executemany(f"INSERT INTO {t} VALUES (%s,%s,%s,%s)",
                        [(1, 123456.78, "1980-04-02", "Paris"), (2, 98765.43, "1991-11-30", "Lyon")])  # fmt: skip
    raw = pymysql.connect(autocommit=True, **mysql_kw)
    try:
        conn = govern(raw)
        cur = conn.cursor()
        cur.execute(f"SELECT sum(salary), avg(salary), round(salary), year(birth_date), sum(city) FROM {t}")
        rows = cur.fetchall()
        cur.execute("SELECT @@warning_count")
        assert cur.fetchall() == ((2,),)  # sum(city): the unmasked column still converts, and warns
        assert len(rows) == 1 and "123456" not in repr(rows) and "222222" not in repr(rows), rows
        cur.execute(f"SELECT salary FROM {t} ORDER BY id")
        assert "123456" not in repr(cur.fetchall())
    finally:
        raw.close()
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


def test_free_text_predicates_tell_nothing_of_masked_items(pg_conn: Any, pg_dsn: str, unique: str) -> None:
    """A note holding an SSN (masked when read) cannot be searched for digits of it."""
    import psycopg

    t = f"rtserver_n_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, notes text)")
    notes = ["call Alice back, SSN 536-22-8726"] + [f"delivery {i} left at the door" for i in range(60)]
    with pg_conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s)", list(enumerate(notes, 1)))
    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        conn = govern(raw)
        first = conn.execute(f"SELECT notes FROM {t} WHERE id = 1").fetchall()
        assert "536-22" not in repr(first), first  # the item is masked when read
        run: Run = lambda sql: conn.execute(sql).fetchall()  # noqa: E731
        hit = _observe(run, f"SELECT id FROM {t} WHERE notes LIKE '%536-22%'")
        miss = _observe(run, f"SELECT id FROM {t} WHERE notes LIKE '%999-22%'")
        assert hit == miss == "refused", (hit, miss)
        # ground truth: the same search on the raw connection finds the row
        assert raw.execute(f"SELECT id FROM {t} WHERE notes LIKE '%536-22%'").fetchall() == [(1,)]
        for probe in ("notes LIKE '%SSN 5%'", "notes LIKE '%SSN ___-%'", "notes ILIKE '%ssn -%'",
                      "notes = 'call Alice back, SSN 536-22-8726'", "notes IN ('a', '536')",
                      "notes LIKE %s", "position('536' in notes) > 0", "notes > 'call Alice back, SSN 5'",
                      "notes LIKE '%SSN %' ESCAPE '!'", "length(notes) > 30"):  # fmt: skip
            sql = f"SELECT id FROM {t} WHERE {probe}"
            seen = _observe(lambda q: conn.execute(q, ("%536%",) if "%s" in q else None).fetchall(), sql)
            assert seen == "refused", (probe, seen)
        for sql in (f"SELECT id FROM {t} ORDER BY notes LIMIT 1",
                    f"SELECT id FROM (SELECT id, notes AS n FROM {t}) s WHERE n LIKE '%536%'",
                    f"SELECT id FROM (SELECT id, replace(notes, '5', 'z') AS n FROM {t}) s WHERE n LIKE '%SSN z%'",
                    f"SELECT 1 WHERE (SELECT notes FROM {t} WHERE id = 1) LIKE '%SSN 5%'",
                    f"SELECT count(CASE WHEN notes LIKE '%SSN 5%' THEN 1 END) FROM {t}",
                    f"SELECT notes, count(*) FROM {t} GROUP BY 1",
                    f"SELECT DISTINCT notes FROM {t}",
                    f"SELECT notes FROM {t} INTERSECT SELECT 'call Alice back, SSN 536-22-8726'",
                    f"SELECT id FROM {t} a WHERE EXISTS (SELECT 1 FROM {t} b WHERE b.notes = a.notes AND b.id <> a.id)",
                    f"SELECT id FROM {t} WHERE lower(replace(notes, '5', 'z')) LIKE '%ssn z%'"):  # fmt: skip
            assert _observe(run, sql) == "refused", sql
        # ground truth for two of them: on the raw connection they tell the first digit
        assert raw.execute(f"SELECT count(CASE WHEN notes LIKE '%SSN 5%' THEN 1 END) FROM {t}").fetchall() == [(1,)]
        assert raw.execute(f"SELECT id FROM (SELECT id, replace(notes, '5', 'z') AS n FROM {t}) s "
                           "WHERE n LIKE '%SSN z%'").fetchall() == [(1,)]  # fmt: skip
    finally:
        raw.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def test_free_text_word_searches_keep_running(pg_conn: Any, pg_dsn: str, unique: str) -> None:
    """Look-alike (decision 0092 holds): searches of the same free-text column for words — letters and spaces
    with LIKE/ILIKE/=/IN, also over lower() — still run and find exactly the rows the database finds; a
    free-text column whose sample held no item may be searched for digits too."""
    import psycopg

    t = f"maskfix2_n_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, notes text, memo text)")
    notes = ["call Alice back, SSN 536-22-8726 about the refund"] + [
        f"delivery left at the door, refund {'approved' if i % 3 else 'pending'}" for i in range(60)
    ]
    with pg_conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s)",
                        [(i, n, f"ticket {i} closed") for i, n in enumerate(notes, 1)])  # fmt: skip
    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        conn = govern(raw)
        for where in ("notes LIKE '%refund pending%'", "notes ILIKE '%CALL alice%'", "lower(notes) LIKE '%door%'",
                      "notes NOT LIKE '%approved%'", "notes IN ('nothing', 'delivery left at the door')",
                      "notes = 'x' OR memo LIKE '%ticket 4%'", "notes IS NULL", "memo LIKE '%1_ closed'",
                      "id IN (SELECT id FROM (SELECT id, notes AS n FROM {t}) s WHERE n ILIKE '%pending%')",
                      "CASE WHEN notes LIKE '%refund%' THEN id > 50 END"):  # fmt: skip
            where = where.replace("{t}", t)
            sql = f"SELECT id FROM {t} WHERE {where} ORDER BY id"
            got = conn.execute(sql).fetchall()
            assert got == raw.execute(sql).fetchall(), where
        rows = conn.execute(f"SELECT notes, memo FROM (SELECT * FROM {t}) s WHERE notes LIKE '%Alice%'").fetchall()
        assert len(rows) == 1 and "536-22" not in repr(rows) and "refund" in repr(rows), rows
    finally:
        raw.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def test_free_text_with_letter_items_keeps_word_searches(pg_conn: Any, pg_dsn: str, unique: str) -> None:
    """A free-text column whose sample held an e-mail address (decision 0092's false-positive case): word
    searches still run, while searches with '@', '.', digits or '_' — what anchors a search inside the address —
    are refused (a run of the address's letters can still be confirmed: the residual risk of decision 0192)."""
    import psycopg

    t = f"maskfix2_e_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, notes text)")
    notes = ["write to alice@example.com about the refund"] + [f"parcel {i} left at the door" for i in range(60)]
    with pg_conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s)", list(enumerate(notes, 1)))
    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        conn = govern(raw)
        run: Run = lambda sql: conn.execute(sql).fetchall()  # noqa: E731
        for probe in ("%alice@%", "%@example%", "%example.com%", "%e@e%", "%a_ice%", "%parcel 1%"):
            sql = f"SELECT id FROM {t} WHERE notes LIKE '{probe}'"
            assert raw.execute(sql).fetchall(), probe  # ground truth: each finds rows
            assert _observe(run, sql) == "refused", probe
        for word in ("%refund%", "%parcel%", "%left at the door%"):
            sql = f"SELECT id FROM {t} WHERE notes LIKE '{word}' ORDER BY id"
            assert run(sql) == raw.execute(sql).fetchall(), word
        rows = run(f"SELECT notes FROM {t} WHERE id = 1")
        assert "alice@" not in repr(rows) and "refund" in repr(rows), rows
    finally:
        raw.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")
