"""Red-team round 11 on the server databases (PostgreSQL: psycopg 3, psycopg2): a prompt-injected agent in
production with zero configuration, no unmask grant.

* PostgreSQL reads ``c.f``, where the table ``c`` has no column ``f``, as the function call ``f(c)`` over the
  whole row (attribute notation). The lineage took ``c.row_to_json`` for a column the catalog lacked (decision
  0251: read the column list again, find nothing new) with no label: ``SELECT id, c.row_to_json FROM people c``
  returned every column of the row in clear (name, e-mail, SSN), ``WHERE c.row_to_json::text LIKE
  '%536-22-8726%'`` counted a guess and ``ORDER BY c.to_jsonb ->> 'full_name'`` sorted by the names. The name is
  judged as the call it is now, exactly as ``row_to_json(c.*)`` (decision 0256): masked by keys in a select
  list, refused where it decides rows, exact over a table with no masked column.

* A text column that is NULL in the first 10 000 rows of a larger table (added by a migration and filled for new
  rows only) was provisional (decision 0250: its values scanned as they pass, so the SSNs came back masked) but
  filterable, for as long as the table lived: every re-sample read the same first rows and found the column
  still nearly empty. ``WHERE tax_ref = '536-22-0007'`` answered a right guess with its row and a wrong one with
  none, on PostgreSQL and MariaDB. A nearly empty column of a table with rows the classification never read may
  not decide rows now (decision 0257); its values still come back as the scan leaves them.

* PostgreSQL's ``"Info"`` and ``info`` are two columns; masking kept one class per lower-case name, filled from the
  last one sampled: ``"Info"`` holding SSNs beside an innocent ``info`` came back in clear and filterable. Each is
  classified from its own values now and the more sensitive class holds for both; a twin another connection adds
  later makes the table be read again, as a missing name does (decision 0256).

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
connection shows that the same statements tell them apart. Look-alikes that reveal nothing keep running.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests._redteam import govern, pg_connect, raw_and_governed, seen_apart
from tests._redteam import observe as _observe
from tests.conftest import MYSQL_KW, PG_DSN

DDL = "(id int primary key, full_name text, email text, ssn text, city text)"
ROWS_A = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "Paris"),
    (2, "Bob Jones", "bob.jones@example.org", "219-45-1234", "Lyon"),
    (3, "Chen Wei", "chen.wei@example.net", "412-77-9001", "Nice"),
]
ROWS_B = [(1, "Zoe Quinn-Harper", "amy@example.com", "100-99-0000", "Paris"), *ROWS_A[1:]]
SECRETS = ("Alice", "alice", "536-22-8726", "Zoe", "amy", "100-99-0000")

#: attribute notation: a function of the whole row named like a column
ATTRIBUTE_READS = [
    "SELECT id, c.row_to_json FROM {t} c WHERE id = 1",
    "SELECT id, {t}.to_jsonb FROM {t} WHERE id = 1",
    "SELECT c.to_json FROM {t} c JOIN {t} d ON d.id = c.id WHERE c.id = 1",
    "SELECT count(*) FROM {t} c WHERE c.row_to_json::text LIKE '%536-22-8726%'",
    "SELECT id FROM {t} c ORDER BY c.to_jsonb ->> 'full_name'",
    "SELECT id FROM {t} c WHERE length(c.row_to_json::text) = 97 ORDER BY id",
]


@pytest.fixture
def tables(pg_conn: Any, unique: str) -> Iterator[tuple[str, str, str]]:
    """Two people tables that differ only in row 1's masked values, and one with no masked column."""
    names = (f"rt11srv_a_{unique}", f"rt11srv_b_{unique}", f"rt11srv_i_{unique}")
    for name, rows in zip(names[:2], (ROWS_A, ROWS_B), strict=True):
        pg_conn.execute(f"CREATE TABLE {name} {DDL}")
        with pg_conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s, %s, %s)", rows)
    pg_conn.execute(f"CREATE TABLE {names[2]} (id int primary key, city text, amount int)")
    with pg_conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {names[2]} VALUES (%s, %s, %s)", [(1, "Paris", 10), (2, "Lyon", 20)])
    yield names
    for name in names:
        pg_conn.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize(
    "template", ATTRIBUTE_READS, ids=["row-to-json", "unaliased", "join", "like", "order", "length"]
)
def test_attribute_notation_of_a_row_function_tells_nothing(
    tables: tuple[str, str, str], driver: str, template: str
) -> None:
    a, b, _ = tables
    with raw_and_governed(driver) as (raw, gov):
        seen = seen_apart(raw, gov, {a: a, b: b}, template)
    # the oracle, unprotected: the raw session tells the two tables apart
    assert seen[a][0] != seen[b][0], seen[a][0]
    # governed: the same for both, with no byte of either secret
    assert seen[a][1] == seen[b][1], f"A: {seen[a][1]}\nB: {seen[b][1]}"
    assert not any(s in seen[a][1] or s in seen[b][1] for s in SECRETS), seen[a][1]
    if "WHERE id = 1" in template or "c.id = 1" in template:
        assert "refused" not in seen[a][1] and "[US_SSN]" in seen[a][1], seen[a][1]  # masked, not refused
    else:
        assert seen[a][1].startswith("'refused: ") and "masked-column-predicate" in seen[a][1], seen[a][1]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_attribute_notation_look_alikes_still_run(tables: tuple[str, str, str], driver: str) -> None:
    """Over a table with no masked column the attribute form is exact, filters and orders; over people it is
    masked like the call it stands for; a real column of that name is still the column."""
    a, _, innocent = tables
    with raw_and_governed(driver) as (raw, gov):
        for sql in (
            f"SELECT c.row_to_json FROM {innocent} c ORDER BY id",
            f"SELECT id FROM {innocent} c WHERE c.to_jsonb ->> 'city' = 'Paris'",
            f"SELECT id, c.to_json FROM {innocent} c ORDER BY c.to_jsonb ->> 'city'",
        ):
            assert _observe(gov, sql) == _observe(raw, sql), sql
        called = _observe(gov, f"SELECT id, row_to_json(c.*) FROM {a} c ORDER BY id")
        attribute = _observe(gov, f"SELECT id, c.row_to_json FROM {a} c ORDER BY id")
        assert called[1] == attribute[1] and called[1][0][0] == 1, attribute
        assert called[1][0][1]["ssn"] == "[US_SSN]" and called[1][0][1]["city"] == "Paris", called
        assert _observe(gov, f"SELECT c.city FROM {a} c WHERE c.city = 'Lyon'") == (["city"], [("Lyon",)])
        # a typo on a table with no masked column is still the database's error
        assert "does not exist" in repr(_observe(gov, f"SELECT c.cty FROM {innocent} c"))


@pytest.mark.parametrize(
    "template",
    [
        "UPDATE {t} c SET city = c.to_json::text WHERE id = 1",
        "UPDATE {t} SET city = {t}.to_jsonb ->> 'ssn' WHERE id = 1",
        "INSERT INTO {t} (id, city) SELECT 9, c.row_to_json::text FROM {t} c WHERE id = 1",
    ],
    ids=["update-alias", "update-key", "insert-select"],
)
def test_attribute_notation_is_not_copied_into_a_clear_column(
    tables: tuple[str, str, str], template: str
) -> None:
    """Writing the row function into an innocent column would carry the values out of masking's reach: refused,
    and the table is as it was (read on the raw connection)."""
    a, _, _ = tables
    gov = govern(pg_connect("psycopg"))
    try:
        refused = _observe(gov, template.format(t=a))
    finally:
        gov.close()
    assert isinstance(refused, str) and "masked-column-copy" in refused, refused
    raw = pg_connect("psycopg")
    try:
        assert _observe(raw, f"SELECT id, city FROM {a} ORDER BY id") == (
            ["id", "city"],
            [(1, "Paris"), (2, "Lyon"), (3, "Nice")],
        )
    finally:
        raw.close()


#: past SPARSE_WINDOW x sample_rows (10 000 by default): the rows the sparse read looks at
BIG = 10_050


def _big_table(dialect: str, name: str, filled: str) -> Any:
    """``name``: BIG rows whose ``tax_ref`` is NULL but in the last 50, which hold ``filled`` values."""
    if dialect == "postgres":
        import psycopg

        conn = psycopg.connect(PG_DSN, autocommit=True)
        conn.execute(f"CREATE TABLE {name} (id int primary key, city text, tax_ref text)")
        conn.execute(
            f"INSERT INTO {name} SELECT g, 'Paris', CASE WHEN g > {BIG - 50} THEN {filled} END "
            f"FROM generate_series(1, {BIG}) g"
        )
        return conn
    import pymysql

    conn = pymysql.connect(autocommit=True, **MYSQL_KW)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {name} (id int primary key, city varchar(20), tax_ref varchar(40))")
        cur.execute(
            f"INSERT INTO {name} SELECT seq, 'Paris', CASE WHEN seq > {BIG - 50} THEN {filled} END "
            f"FROM seq_1_to_{BIG}"
        )
    return conn


def _governed(dialect: str) -> Any:
    if dialect == "postgres":
        import psycopg

        return govern(psycopg.connect(PG_DSN, autocommit=True))
    import pymysql

    return govern(pymysql.connect(autocommit=True, **MYSQL_KW))


def _drop(conn: Any, name: str) -> None:
    conn.cursor().execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()


def _ssn(dialect: str) -> str:
    g = "g" if dialect == "postgres" else "seq"
    if dialect == "postgres":
        return f"'536-22-' || lpad(({g} - {BIG - 50})::text, 4, '0')"
    return f"concat('536-22-', lpad({g} - {BIG - 50}, 4, '0'))"


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_a_column_filled_past_the_sparse_window_decides_no_rows(dialect: str, unique: str) -> None:
    name = f"rt11srv_sp_{unique}"
    raw = _big_table(dialect, name, _ssn(dialect))
    gov = _governed(dialect)
    try:
        seen = {}
        for guess in ("536-22-0007", "536-22-9999"):
            sql = f"SELECT id FROM {name} WHERE tax_ref = '{guess}'"
            seen[guess] = (repr(_observe(raw, sql)), repr(_observe(gov, sql)).replace(guess, "G"))
        # the oracle, unprotected: a right guess finds its row, a wrong one none
        assert seen["536-22-0007"][0] != seen["536-22-9999"][0]
        assert seen["536-22-0007"][1] == seen["536-22-9999"][1]
        assert "refused" in seen["536-22-0007"][1] and "tax_ref" in seen["536-22-0007"][1], seen
        for sql in (
            f"SELECT count(*) FROM {name} WHERE tax_ref LIKE '536-22-000%'",
            f"SELECT id FROM {name} WHERE tax_ref IS NOT NULL ORDER BY tax_ref LIMIT 1",
        ):
            assert "refused" in repr(_observe(gov, sql)), sql
        # the values are scanned as they pass: masked, not in clear; the null test and other columns stay exact
        values = _observe(gov, f"SELECT id, tax_ref FROM {name} WHERE id > {BIG - 2} ORDER BY id")
        assert values == (["id", "tax_ref"], [(BIG - 1, "[US_SSN]"), (BIG, "[US_SSN]")]), values
        count = f"SELECT count(*) FROM {name} WHERE tax_ref IS NOT NULL AND city = 'Paris'"
        assert _observe(gov, count) == _observe(raw, count) and _observe(raw, count)[1] == [(50,)]
    finally:
        gov.close()
        _drop(raw, name)


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_a_sparse_innocent_column_of_a_large_table_reads_exactly(dialect: str, unique: str) -> None:
    """The cost: a nearly empty innocent column past the window cannot be filtered by value, but its values,
    its null test and the table's other filters are exact."""
    name = f"rt11srv_si_{unique}"
    raw = _big_table(dialect, name, "'express'")
    gov = _governed(dialect)
    try:
        for sql in (
            f"SELECT id, tax_ref FROM {name} WHERE id > {BIG - 3} ORDER BY id",
            f"SELECT count(*) FROM {name} WHERE tax_ref IS NULL",
            f"SELECT count(*) FROM {name} WHERE city = 'Paris' AND id > 100",
        ):
            assert _observe(gov, sql) == _observe(raw, sql), sql
        assert _observe(gov, f"SELECT tax_ref FROM {name} WHERE id = {BIG}") == (["tax_ref"], [("express",)])
    finally:
        gov.close()
        _drop(raw, name)


def _case_twins(name: str, upper: str, lower: str) -> Any:
    import psycopg

    conn = psycopg.connect(PG_DSN, autocommit=True)
    conn.execute(f'CREATE TABLE {name} (id int primary key, "Info" text, info text)')
    conn.execute(f"INSERT INTO {name} SELECT g, {upper}, {lower} FROM generate_series(1, 40) g")
    return conn


def test_a_column_whose_name_differs_only_in_case_is_classified(unique: str) -> None:
    """PostgreSQL's "Info" and info are two columns; masking kept one entry per lower-case name, filled from
    the last one sampled: "Info" full of SSNs beside an innocent info came back in clear and filterable."""
    name = f"rt11srv_ci_{unique}"
    raw = _case_twins(name, "'536-22-' || lpad((8700 + g)::text, 4, '0')", "'note ' || g")
    gov = _governed("postgres")
    try:
        seen = {}
        for guess in ("536-22-8707", "536-22-9999"):
            sql = f"SELECT id FROM {name} WHERE \"Info\" = '{guess}'"
            seen[guess] = (repr(_observe(raw, sql)), repr(_observe(gov, sql)).replace(guess, "G"))
        assert seen["536-22-8707"][0] != seen["536-22-9999"][0]
        assert seen["536-22-8707"][1] == seen["536-22-9999"][1] and "refused" in seen["536-22-8707"][1], seen
        rows = _observe(gov, f'SELECT id, "Info" FROM {name} WHERE id < 3 ORDER BY id')
        assert rows == (["id", "Info"], [(1, "[US_SSN]"), (2, "[US_SSN]")]), rows
        assert "536-22" not in repr(_observe(gov, f"SELECT * FROM {name} WHERE id < 3 ORDER BY id"))
    finally:
        gov.close()
        _drop(raw, name)


def test_innocent_case_twins_read_exactly(unique: str) -> None:
    name = f"rt11srv_cj_{unique}"
    raw = _case_twins(name, "'Paris'", "'note ' || g")
    gov = _governed("postgres")
    try:
        for sql in (
            f'SELECT id, "Info", info FROM {name} WHERE id < 3 ORDER BY id',
            f"SELECT count(*) FROM {name} WHERE \"Info\" = 'Paris' AND info LIKE 'note 1%'",
        ):
            assert _observe(gov, sql) == _observe(raw, sql), sql
    finally:
        gov.close()
        _drop(raw, name)


def test_a_case_twin_added_later_is_classified(unique: str) -> None:
    """A twin ("Info" beside a classified info) added by another connection: a quoted name that matches a known
    column only when case is ignored makes the table be read again (decision 0256), as a missing name does."""
    import psycopg

    name = f"rt11srv_ck_{unique}"
    raw = psycopg.connect(PG_DSN, autocommit=True)
    raw.execute(f"CREATE TABLE {name} (id int primary key, info text)")
    raw.execute(f"INSERT INTO {name} SELECT g, 'note ' || g FROM generate_series(1, 40) g")
    gov = _governed("postgres")
    try:
        assert _observe(gov, f"SELECT info FROM {name} WHERE id = 1") == (["info"], [("note 1",)])
        raw.execute(f'ALTER TABLE {name} ADD COLUMN "Info" text')
        raw.execute(f"UPDATE {name} SET \"Info\" = '536-22-' || lpad((8700 + id)::text, 4, '0')")
        assert "refused" in repr(_observe(gov, f"SELECT id FROM {name} WHERE \"Info\" = '536-22-8707'"))
        assert "536-22" not in repr(_observe(gov, f'SELECT id, "Info" FROM {name} WHERE id < 3'))
        assert "536-22" not in repr(_observe(gov, f"SELECT * FROM {name} WHERE id < 3"))
    finally:
        gov.close()
        _drop(raw, name)
