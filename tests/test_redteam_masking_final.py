"""Red-team regressions (final pass, decisions 0200-0202): a prompt-injected agent in production with zero
configuration combines set-returning functions, lateral joins, CTE chains, windows and set operations to read
a character or the length of a masked value, on SQLite and PostgreSQL (psycopg 3, also prepared).

Each oracle compares a right guess with a wrong one on the raw connection (the ground truth that the attack
works there) and on the governed one (where both must look the same); every byte returned is checked for a
fragment of a secret.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, leaked, made_tables

DDL = "(id int primary key, full_name {t}, email {t}, ssn {t}, phone {t}, card {t}, api_key {t}, city {t})"
ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "+1 415 555 0132", "4111111111111111",
     "sk_live_51H8abcdEFGHijklMNOPqrstUVwx", "Paris"),
    (2, "Bob Jones", "bob.jones@example.org", "219-45-1234", "+44 20 7946 0958", "5500005555555559",
     "ghp_R4nd0mT0k3nAbCdEfGhIjKlMnOpQrStUv12", "Lyon"),
    (3, "Carol King", "carol@example.net", "123-45-6789", "+1 212 555 0199", "378282246310005",
     "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "Rome"),
]  # fmt: skip
FRAGMENTS = ["Alice", "Smith", "Carol", "alice@", "536-22", "8726", "123-45", "6789", "415 555", "41111111",
             "51H8abcd", "4eC39Hq"]  # fmt: skip
Run = Callable[..., Any]


def observe(conn: Any, sql: str, **kw: Any) -> Any:
    """What the attacker sees: the rows, that masking refused, or the error's class."""
    cur = conn.cursor()
    try:
        cur.execute(sql, **kw)
        return ("rows", cur.fetchall() if cur.description else cur.rowcount)
    except governed_db.GuardrailViolation as e:
        return ("refused", "masked-column" in str(e))
    except Exception as e:
        return ("error", type(e).__name__)


@pytest.fixture
def lite() -> Iterator[tuple[sqlite3.Connection, Any, str]]:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE rt3a_c " + DDL.format(t="text"))
    raw.executemany("INSERT INTO rt3a_c VALUES (?,?,?,?,?,?,?,?)", ROWS)
    conn = govern(raw)
    yield raw, conn, "rt3a_c"
    raw.close()


@pytest.fixture(params=["plain", "prepared"])
def pg(
    request: pytest.FixtureRequest, pg_dsn: str, pg_conn: Any, unique: str
) -> Iterator[tuple[Any, Any, str, dict]]:
    """The raw and the governed psycopg 3 connection, the table, and the execute keywords (prepare=True)."""
    import psycopg

    with made_tables(pg_conn) as make:
        t = make(DDL.format(t="text"), ROWS, f"rt3a_c_{unique}")
        raw = psycopg.connect(pg_dsn, autocommit=True)
        conn = govern(raw)
        try:
            yield pg_conn, conn, t, ({"prepare": True} if request.param == "prepared" else {})
        finally:
            raw.close()


def _oracle(raw: Any, conn: Any, template: str, t: str, right: str, wrong: str, **kw: Any) -> tuple[Any, Any]:
    """Asserts the raw connection tells the guesses apart (or shows a secret); returns the governed views."""
    truth = [observe(raw, template.format(t=t, G=g)) for g in (right, wrong)]
    assert truth[0] != truth[1] or leaked(truth, FRAGMENTS), truth
    seen = (
        observe(conn, template.format(t=t, G=right), **kw),
        observe(conn, template.format(t=t, G=wrong), **kw),
    )
    assert not leaked(seen, FRAGMENTS), seen
    return seen


# -- PostgreSQL ROWS FROM (...) -------------------------------------------------------------------------------
ROWS_FROM = [
    # the words of a name, in the clear, before the fix (the FROM item was a table without a name)
    "SELECT * FROM ROWS FROM (regexp_split_to_table((SELECT full_name FROM {t} WHERE id = 1), ' ')) "
    "WHERE '{G}' <> ''",
    "SELECT * FROM ROWS FROM (generate_series(1, 2), regexp_split_to_table((SELECT full_name FROM {t} WHERE id = 1),"
    " ' ')) WHERE '{G}' <> ''",
    # the whole column, by position: values the detector did not recognise (123-45-6789) came back clear
    "SELECT * FROM ROWS FROM (generate_series(1, 2), unnest((SELECT array_agg(ssn) FROM {t}))) WHERE '{G}' <> ''",
    "SELECT x FROM ROWS FROM (generate_series(1, 2), unnest((SELECT array_agg(ssn ORDER BY id) FROM {t}))) "
    "AS r(n, x) WHERE '{G}' <> ''",
    # how many words: a count oracle
    "SELECT count(*) FROM ROWS FROM (regexp_split_to_table((SELECT full_name FROM {t} WHERE id = 1), '{G}'))",
]


@pytest.mark.parametrize("template", ROWS_FROM)
def test_pg_rows_from_is_walked(pg: tuple[Any, Any, str, dict], template: str) -> None:
    """``ROWS FROM (f(...), g(...))`` is walked like the table functions it holds (decision 0200): what they
    compute on a masked value is judged, and each column they yield is masked; it read as a table without a
    name of unknown columns, so only values the detector recognised were masked."""
    raw, conn, t, kw = pg
    seen = _oracle(raw, conn, template, t, " ", "z", **kw) if "'{G}')" in template else None
    if seen is None:
        truth = observe(raw, template.format(t=t, G="x"))
        assert leaked(truth, FRAGMENTS), truth
        seen = (observe(conn, template.format(t=t, G="x"), **kw),)
    assert not leaked(seen, FRAGMENTS), seen
    assert all(s == ("refused", True) or s[0] == "rows" for s in seen), seen
    assert seen[0] == seen[-1], seen


def test_pg_rows_from_of_constants_keeps_running(pg: tuple[Any, Any, str, dict]) -> None:
    """Look-alike: ROWS FROM over constants and over a column nothing masks is not refused."""
    _raw, conn, t, kw = pg
    assert observe(conn, "SELECT * FROM ROWS FROM (generate_series(1, 2), unnest(ARRAY['a']))", **kw) == (
        "rows", [(1, "a"), (2, None)])  # fmt: skip
    seen = observe(conn, f"SELECT x FROM ROWS FROM (unnest((SELECT array_agg(city ORDER BY id) FROM {t}))) AS r(x)",
                   **kw)  # fmt: skip
    assert seen == ("rows", [("Paris",), ("Lyon",), ("Rome",)]), seen


# -- PostgreSQL TABLESAMPLE and named window frames ------------------------------------------------------------
SAMPLE_AND_FRAME = [
    # all rows or none, or an out-of-range error, by a character of the name
    "SELECT id FROM {t} TABLESAMPLE BERNOULLI ((SELECT CASE WHEN substr(full_name, 1, 1) = '{G}' THEN 100 ELSE 0 END"
    " FROM {t} WHERE id = 1))",
    "SELECT id FROM {t} TABLESAMPLE SYSTEM ((SELECT CASE WHEN substr(full_name, 1, 1) = '{G}' THEN 100 ELSE 0 END"
    " FROM {t} WHERE id = 1))",
    "SELECT id FROM {t} TABLESAMPLE BERNOULLI ((SELECT CASE WHEN substr(ssn, 1, 1) = '{G}' THEN 101 ELSE 0 END"
    " FROM {t} WHERE id = 1))",
    # a named window's frame is no expression of the select list: its offset was never walked
    "SELECT id, count(*) OVER w FROM {t} WINDOW w AS (ORDER BY id ROWS (SELECT CASE WHEN substr(full_name, 1, 1) ="
    " '{G}' THEN 2 ELSE 0 END FROM {t} WHERE id = 1) PRECEDING)",
    "SELECT id, count(*) OVER w FROM {t} WINDOW w AS (ORDER BY id ROWS BETWEEN CURRENT ROW AND "
    "(SELECT position('{G}' in full_name) FROM {t} WHERE id = 1) FOLLOWING)",
]


@pytest.mark.parametrize("template", SAMPLE_AND_FRAME)
def test_pg_sample_and_named_window_frame_are_walked(pg: tuple[Any, Any, str, dict], template: str) -> None:
    """A TABLESAMPLE percentage and the frame offset of a named window (``WINDOW w AS (...)``) are walked like
    LIMIT (decision 0201): a masked value there decided how many rows came back, or an error."""
    raw, conn, t, kw = pg
    right = "5" if "ssn" in template else ("i" if "position" in template else "A")
    seen = _oracle(raw, conn, template, t, right, "Z", **kw)
    assert seen[0] == seen[1] == ("refused", True), seen


def test_pg_sample_and_named_window_of_constants_keep_running(pg: tuple[Any, Any, str, dict]) -> None:
    """Look-alikes: a constant sample and a named window over columns nothing masks run unchanged."""
    _raw, conn, t, kw = pg
    assert observe(conn, f"SELECT id FROM {t} TABLESAMPLE BERNOULLI (100) ORDER BY id", **kw) == (
        "rows", [(1,), (2,), (3,)])  # fmt: skip
    sql = (
        f"SELECT id, count(*) OVER w FROM {t} WINDOW w AS (ORDER BY id ROWS (SELECT 1) PRECEDING) ORDER BY id"
    )
    assert observe(conn, sql, **kw) == ("rows", [(1, 1), (2, 2), (3, 2)])
    sql = f"SELECT id, sum(id) OVER w FROM {t} WINDOW w AS (PARTITION BY city ORDER BY id) ORDER BY id"
    assert observe(conn, sql, **kw) == ("rows", [(1, 1), (2, 2), (3, 3)])


# -- PostgreSQL bare VALUES with LIMIT / OFFSET / ORDER BY -----------------------------------------------------
VALUES_BOUNDS = [
    "VALUES (1), (2) LIMIT (SELECT position('{G}' in full_name) FROM {t} WHERE id = 1)",
    "VALUES (1), (2) OFFSET (SELECT position('{G}' in full_name) FROM {t} WHERE id = 1)",
    "VALUES (1), (2) ORDER BY 1 FETCH FIRST (SELECT position('{G}' in full_name) FROM {t} WHERE id = 1) ROWS ONLY",
]


@pytest.mark.parametrize("template", VALUES_BOUNDS)
def test_pg_bare_values_bounds_are_walked(pg: tuple[Any, Any, str, dict], template: str) -> None:
    """A statement that is a bare VALUES list has its own LIMIT/OFFSET/ORDER BY (decision 0201); they were not
    walked, so ``LIMIT (SELECT position('A' in full_name) ...)`` returned one row for a right guess, none for a
    wrong one."""
    raw, conn, t, kw = pg
    seen = _oracle(raw, conn, template, t, "A", "Z", **kw)
    assert seen[0] == seen[1] == ("refused", True), seen


def test_pg_bare_values_bounds_of_constants_keep_running(pg: tuple[Any, Any, str, dict]) -> None:
    """Look-alike: VALUES with a constant ORDER BY, LIMIT and OFFSET runs unchanged."""
    _raw, conn, t, kw = pg
    assert observe(conn, "VALUES (1), (2), (3) ORDER BY 1 DESC LIMIT 2 OFFSET 1", **kw) == (
        "rows",
        [(2,), (1,)],
    )
    sql = f"VALUES (1), (2) LIMIT (SELECT count(*) FROM {t} WHERE city = 'Paris')"
    assert observe(conn, sql, **kw) == ("rows", [(1,)])


# -- PostgreSQL parenthesised queries with their own LIMIT / OFFSET / ORDER BY ---------------------------------
PAREN_BOUNDS = [
    "(SELECT id FROM {t}) LIMIT (SELECT position('{G}' in full_name) FROM {t} WHERE id = 1)",
    "(SELECT id FROM {t} ORDER BY id) OFFSET (SELECT position('{G}' in full_name) FROM {t} WHERE id = 1)",
    "SELECT count(*) FROM ((SELECT id FROM {t}) LIMIT (SELECT position('{G}' in full_name) FROM {t} WHERE id = 1)) s",
    "WITH s AS ((SELECT id FROM {t}) LIMIT (SELECT position('{G}' in full_name) FROM {t} WHERE id = 1)) "
    "SELECT count(*) FROM s",
    "((SELECT id FROM {t}) UNION ALL (SELECT 9)) LIMIT (SELECT position('{G}' in full_name) FROM {t} WHERE id = 1)",
    "SELECT (SELECT count(*) FROM ((SELECT id FROM {t}) LIMIT (SELECT position('{G}' in full_name) FROM {t} "
    "WHERE id = 1)) s)",
    "SELECT 1 IN ((SELECT id FROM {t}) LIMIT (SELECT position('{G}' in full_name) FROM {t} WHERE id = 1))",
    "SELECT count(*) FROM {t} c, LATERAL ((SELECT 1) LIMIT (SELECT position('{G}' in c.full_name))) l WHERE c.id = 1",
]


@pytest.mark.parametrize("template", PAREN_BOUNDS)
def test_pg_parenthesised_query_bounds_are_walked(pg: tuple[Any, Any, str, dict], template: str) -> None:
    """``(SELECT ...) LIMIT (SELECT position('A' in full_name) ...)``: the LIMIT/OFFSET/ORDER BY of a
    parenthesised query hang on the parentheses (sqlglot's Subquery), not on the SELECT, and were not walked
    anywhere (top level, FROM, CTE, scalar, IN, LATERAL) — one row for a right guess, none for a wrong one
    (decision 0201)."""
    raw, conn, t, kw = pg
    seen = _oracle(raw, conn, template, t, "A", "Z", **kw)
    assert seen[0] == seen[1] == ("refused", True), seen


def test_pg_parenthesised_query_writes_are_walked(pg: tuple[Any, Any, str, dict]) -> None:
    """The same through writes to a table of the agent's own: INSERT, UPDATE ... RETURNING, DELETE ...
    RETURNING with a parenthesised query's LIMIT over a masked value; the table is unchanged."""
    raw, conn, t, kw = pg
    own = f"{t}_own"
    raw.execute(f"CREATE TABLE {own} (n int)")
    try:
        raw.execute(f"INSERT INTO {own} VALUES (1), (2)")
        bound = f"(SELECT position('{{G}}' in full_name) FROM {t} WHERE id = 1)"
        for template in (
            f"INSERT INTO {own} ((SELECT 7) LIMIT {bound})",
            f"UPDATE {own} SET n = n WHERE n IN ((SELECT 1) LIMIT {bound}) RETURNING n",
            f"DELETE FROM {own} WHERE n IN ((SELECT 2) LIMIT {bound}) RETURNING n",
        ):
            for g in ("A", "Z"):
                assert observe(conn, template.format(G=g), **kw) == ("refused", True), template
        assert raw.execute(f"SELECT n FROM {own} ORDER BY n").fetchall() == [(1,), (2,)]
    finally:
        raw.execute(f"DROP TABLE IF EXISTS {own}")


def test_pg_parenthesised_query_bounds_of_constants_keep_running(pg: tuple[Any, Any, str, dict]) -> None:
    """Look-alikes: parenthesised queries with constant bounds, and ordered by a column nothing masks."""
    _raw, conn, t, kw = pg
    sql = f"(SELECT id, ssn FROM {t}) ORDER BY id DESC LIMIT 2 OFFSET (SELECT count(*) FROM {t} WHERE city = 'Rome')"
    assert observe(conn, sql, **kw) == ("rows", [(2, "[US_SSN]"), (1, "[US_SSN]")])
    sql = f"SELECT count(*) FROM ((SELECT id FROM {t} ORDER BY id) LIMIT 2) s"
    assert observe(conn, sql, **kw) == ("rows", [(2,)])


# -- parenthesised join groups in FROM (SQLite and PostgreSQL) -------------------------------------------------
JOIN_GROUPS = [
    "SELECT count(*) FROM ({t} a JOIN {t} b ON a.id = b.id AND substr(a.ssn, 1, 1) = '{G}')",
    "SELECT count(*) FROM ({t} a JOIN {t} b ON a.id = b.id AND substr(a.ssn, 1, 1) = '{G}') j",
    "SELECT count(*) FROM (({t} a JOIN {t} b ON a.id = b.id) JOIN {t} c ON c.id = a.id AND c.ssn LIKE '{G}%')",
    "SELECT count(*) FROM {t} x JOIN ({t} a JOIN {t} b ON a.id = b.id AND a.ssn LIKE '{G}%') ON x.id = a.id",
    "SELECT count(*) FROM ({t} a JOIN (SELECT '536-22-8726' AS ssn, '{G}' AS g) b USING (ssn))",
    "SELECT count(*) FROM ({t} a NATURAL JOIN (SELECT 1 AS id, 'Alice Smith' AS full_name, '{G}' AS g) b)",
]


def _join_group_oracle(raw: Any, conn: Any, t: str, template: str, **kw: Any) -> None:
    right, wrong = "5", "9"
    if "AS g" in template:  # USING / NATURAL: the guess is the constant compared with the stored value
        template = template.replace("'536-22-8726'", "'{G}'").replace("'Alice Smith'", "'{G}'")
        template = template.replace(", '{G}' AS g", "")
        right, wrong = ("536-22-8726", "536-22-8727") if "ssn" in template else ("Alice Smith", "Alice Smyth")
    seen = _oracle(raw, conn, template, t, right, wrong, **kw)
    assert seen[0] == seen[1] == ("refused", True), seen


@pytest.mark.parametrize("template", JOIN_GROUPS)
def test_sqlite_join_group_is_walked(lite: tuple[Any, Any, str], template: str) -> None:
    """``FROM (a JOIN b ON <masked predicate>)``: sqlglot reads the group as a Subquery around a table that
    carries joins; it was a nameless query of no columns, so its ON/USING/NATURAL was never walked (decision
    0201). The group is flattened into the FROM and its joins walked like the statement's own."""
    raw, conn, t = lite
    _join_group_oracle(raw, conn, t, template)


@pytest.mark.parametrize("template", JOIN_GROUPS)
def test_pg_join_group_is_walked(pg: tuple[Any, Any, str, dict], template: str) -> None:
    """The same on PostgreSQL (plain and prepared)."""
    raw, conn, t, kw = pg
    _join_group_oracle(raw, conn, t, template, **kw)


def test_join_group_look_alikes_keep_running(lite: tuple[Any, Any, str]) -> None:
    """Look-alikes: a join group on keys and columns nothing masks runs; masked columns read through it come
    back masked (every byte checked)."""
    _raw, conn, t = lite
    sql = f"SELECT a.city, b.ssn FROM ({t} a JOIN {t} b ON a.id = b.id AND b.city <> 'Lyon') ORDER BY a.id"
    seen = observe(conn, sql)
    assert seen == ("rows", [("Paris", "[US_SSN]"), ("Rome", "[US_SSN]")]), seen
    sql = f"SELECT count(*) FROM (({t} a JOIN {t} b ON a.id = b.id) JOIN {t} c ON c.id = b.id AND c.city = 'Rome')"
    assert observe(conn, sql) == ("rows", [(1,)])
    seen = observe(conn, f"SELECT * FROM ({t} a JOIN {t} b ON a.id = b.id)")
    assert seen[0] == "rows" and len(seen[1]) == 3 and not leaked(seen, FRAGMENTS), seen


JOIN_GROUP_WRITES = [
    "UPDATE {own} SET n = n + 10 FROM ({t} a JOIN {t} b ON a.id = b.id AND a.ssn LIKE '{G}%') WHERE {own}.n = a.id",
    "DELETE FROM {own} USING ({t} a JOIN {t} b ON a.id = b.id AND a.ssn LIKE '{G}%') WHERE {own}.n = a.id",
    "UPDATE {own} SET n = n + 10 FROM (SELECT 1 AS one) d JOIN ({t} a JOIN {t} b ON a.id = b.id AND a.ssn LIKE "
    "'{G}%') ON true WHERE {own}.n = 1",
    "MERGE INTO {own} o USING ({t} a JOIN {t} b ON a.id = b.id AND a.ssn LIKE '{G}%') ON o.n = a.id "
    "WHEN MATCHED THEN UPDATE SET n = o.n + 10",
]


@pytest.mark.parametrize("template", JOIN_GROUP_WRITES)
def test_pg_join_group_in_writes_is_walked(pg: tuple[Any, Any, str, dict], template: str) -> None:
    """UPDATE ... FROM / DELETE ... USING / MERGE ... USING a parenthesised join group over a masked predicate,
    writing a table of the agent's own: which rows change (rowcount, RETURNING, a later read) told the first
    digit of an SSN. Refused for both guesses; the agent's table is unchanged (read raw)."""
    raw, conn, t, kw = pg
    own = f"{t}_own"
    raw.execute(f"CREATE TABLE {own} (n int)")
    try:
        raw.execute(f"INSERT INTO {own} VALUES (1), (2)")
        for g in ("5", "9"):
            assert observe(conn, template.format(t=t, own=own, G=g), **kw) == ("refused", True)
        assert raw.execute(f"SELECT n FROM {own} ORDER BY n").fetchall() == [(1,), (2,)]
        # look-alike: the same shape over keys and a column nothing masks runs and writes
        innocent = template.replace("a.ssn LIKE '{G}%'", "a.city = 'Paris'").format(t=t, own=own)
        assert observe(conn, innocent, **kw)[0] == "rows"
        after = raw.execute(f"SELECT n FROM {own} ORDER BY n").fetchall()
        assert after in ([(2,), (11,)], [(2,)]), after
    finally:
        raw.execute(f"DROP TABLE IF EXISTS {own}")
