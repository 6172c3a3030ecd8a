"""Final red-team pass over masking on MariaDB (PyMySQL) and DuckDB: a prompt-injected agent in production with
zero configuration tries to learn a character or the length of a masked value with statements governed_db
allows.

Each oracle compares a right guess with a wrong one and passes when the attacker observes both the same
(refused, or nothing tells them apart); the raw connection shows that the same statements do tell them apart
without governed_db, so each test could fail. Look-alikes that reveal nothing keep running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from tests._redteam import attempt, govern, made_tables

DDL = "(id int primary key, full_name {t}, email {t}, ssn {t}, phone {t}, card {t}, api_key {t}, city {t})"
ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "+1 415 555 0132", "4111111111111111",
     "sk_live_51H8abcdEFGHijklMNOPqrstUVwx", "Paris"),
    (2, "Ivan Petrov", "ivan@example.org", "219-45-1234", "+44 20 7946 0958", "5500005555555559",
     "ghp_R4nd0mT0k3nAbCdEfGhIjKlMnOp", "Lyon"),
    (3, "Bob Jones", "bob@example.net", "123-45-6789", "+1 212 555 0199", "378282246310005",
     "AKIAIOSFODNN7EXAMPLE", "Rome"),
]  # fmt: skip
Run = Callable[[str], Any]


#: what the attacker sees: the rows (and warnings), that it was refused or waits for approval, or the error's class
_observe = partial(attempt, approval=True, cut=80)


# -- DuckDB -------------------------------------------------------------------------------------------------
@pytest.fixture
def duck() -> Iterator[tuple[Run, Run]]:
    """A governed DuckDB connection's ``run`` and the raw connection's (the ground truth)."""
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE rt3b_p " + DDL.format(t="varchar"))
    raw.executemany("INSERT INTO rt3b_p VALUES (?,?,?,?,?,?,?,?)", ROWS)
    conn = govern(raw)

    def run(sql: str) -> Any:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()

    def raw_run(sql: str) -> Any:
        return raw.execute(sql).fetchall()

    try:
        yield run, raw_run
    finally:
        raw.close()


#: the position of a COLUMNS('re') output in ORDER BY / GROUP BY: the analysis placed it on the wrong column
_POSITIONAL = [
    "SELECT id, COLUMNS('ssn') FROM (SELECT id, ssn FROM rt3b_p WHERE id = 1 UNION ALL SELECT 0, '{G}') "
    "ORDER BY 2",
    "SELECT id, COLUMNS('ssn') FROM (SELECT id, ssn FROM rt3b_p WHERE id = 1 UNION ALL SELECT 0, '{G}') "
    "ORDER BY 2 DESC LIMIT 1",
    "SELECT id, upper(COLUMNS('ssn')) FROM (SELECT id, ssn FROM rt3b_p WHERE id = 1 UNION ALL SELECT 0, '{G}') "
    "ORDER BY 2",
    "SELECT count(*) FROM (SELECT 0 AS k, COLUMNS('ssn') FROM (SELECT id, ssn FROM rt3b_p WHERE id = 1 "
    "UNION ALL SELECT 1, '{G}') GROUP BY 1, 2)",
]


@pytest.mark.parametrize("template", _POSITIONAL)
def test_duckdb_position_of_a_columns_expansion_orders_nothing(duck: tuple[Run, Run], template: str) -> None:
    """``ORDER BY 2`` / ``GROUP BY 2`` naming a ``COLUMNS('ssn')`` output sorts or groups by the masked value:
    refused (the position after a star the database expands may name any later output)."""
    run, raw_run = duck
    right, wrong = "536-22-8726", "536-22-8725"
    if "GROUP BY" not in template:
        right, wrong = "5", "6"  # sorts before the value, after it
    truth = [raw_run(template.format(G=g)) for g in (right, wrong)]
    assert truth[0] != truth[1], truth  # without governed_db the order (or the count) tells
    seen = [_observe(run, template.format(G=g)) for g in (right, wrong)]
    assert seen == ["refused", "refused"], seen


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, * FROM rt3b_p ORDER BY 2",  # an exact star: position 2 is the table's id
        "SELECT * EXCLUDE (full_name) FROM rt3b_p ORDER BY 1",
        "SELECT * REPLACE (upper(city) AS city) FROM rt3b_p ORDER BY 8",
        "SELECT id, COLUMNS('ssn') FROM rt3b_p ORDER BY 1",  # before the expansion
        "SELECT id, city, COLUMNS('ssn') FROM rt3b_p ORDER BY 2",
    ],
)
def test_duckdb_positions_before_or_on_exact_stars_still_run(duck: tuple[Run, Run], sql: str) -> None:
    """Innocent look-alikes: positions that name a known, unmasked output keep running, masked cells masked."""
    run, raw_run = duck
    got = run(sql)
    assert [r[0] for r in got] == [r[0] for r in raw_run(sql)]
    flat = {str(v) for row in got for v in row}
    assert not flat & {v for row in ROWS for v in row[1:7]}, got  # no masked cell in clear


def test_duckdb_columns_expansion_position_on_an_unmasked_column_is_refused_fail_closed(
    duck: tuple[Run, Run],
) -> None:
    """Over-refusal kept on purpose (fail closed): after ``COLUMNS('re')`` the analysis cannot tell which
    columns matched, so ``ORDER BY 2`` there is refused even for an unmasked match; the message says which
    columns may be named (select the column by name to sort by it)."""
    run, _ = duck
    assert _observe(run, "SELECT id, COLUMNS('city') FROM rt3b_p ORDER BY 2") == "refused"
    assert [r[0] for r in run("SELECT id, city FROM rt3b_p ORDER BY city")] == [2, 1, 3]


#: result columns DuckDB names as the statement says (an alias over COLUMNS('re'), a name given twice): matched
#: by name, the analysis took a masked column for the unmasked one of the same name
_RENAMED = [
    "SELECT ssn AS id, COLUMNS('^id$') FROM rt3b_p ORDER BY rowid",
    "SELECT COLUMNS('ssn') AS city FROM rt3b_p ORDER BY rowid",
    "SELECT COLUMNS('(s)sn') AS 'city' FROM rt3b_p ORDER BY rowid",
    "SELECT COLUMNS('ssn') AS city, city FROM rt3b_p ORDER BY rowid",
    "SELECT city, COLUMNS('ssn') AS city FROM rt3b_p ORDER BY rowid",
    "SELECT COLUMNS('ssn'), city AS ssn FROM rt3b_p ORDER BY rowid",
    "SELECT ssn AS city, * EXCLUDE (ssn) FROM rt3b_p ORDER BY rowid",
    "SELECT * EXCLUDE (ssn), ssn AS city FROM rt3b_p ORDER BY rowid",
    "SELECT COLUMNS('(ssn|city)') AS '\\1' FROM rt3b_p ORDER BY rowid",
]


@pytest.mark.parametrize("sql", _RENAMED)
def test_duckdb_columns_alias_and_repeated_names_return_no_masked_value(duck: tuple[Run, Run], sql: str) -> None:
    """No byte of a stored SSN comes back when the result names a masked column like an unmasked one; the raw
    connection returns the SSNs (so the statement does carry them)."""
    run, raw_run = duck
    ssns = {row[3] for row in ROWS}
    assert ssns & {v for row in raw_run(sql) for v in row}
    got = run(sql)
    assert len(got) == 3
    cells = [str(v) for row in got for v in row]
    assert not [c for c in cells if any(part in c for s in ssns for part in s.split("-") if len(part) > 2)], got


# the families the brief asked about that governed_db already refuses (or masks whole): right vs wrong guesses
_DUCK_HELD = [
    "SELECT len(list_distinct([substr(ssn, 1, 1), '{G}'])) FROM rt3b_p WHERE id = 1",
    "SELECT list_sort([ssn, '{G}'])[1] = '{G}' FROM rt3b_p WHERE id = 1",
    "SELECT count(*) FROM (SELECT unnest(string_split(ssn, '{G}')) FROM rt3b_p WHERE id = 1)",
    "SELECT len(regexp_extract_all(ssn, '{G}')) FROM rt3b_p WHERE id = 1",
    "SELECT cardinality(map([substr(ssn, 1, 1), '{G}'], [1, 2])) FROM rt3b_p WHERE id = 1",
    "SELECT levenshtein(substr(ssn, 1, 1), '{G}') FROM rt3b_p WHERE id = 1",
    "SELECT jaccard(substr(ssn, 1, 1), '{G}') FROM rt3b_p WHERE id = 1",
    "SELECT starts_with(ssn, '{G}') FROM rt3b_p WHERE id = 1",
    "SELECT id FROM rt3b_p WHERE ssn SIMILAR TO '{G}.*'",
    "SELECT id FROM rt3b_p WHERE ssn GLOB '{G}*'",
    "SELECT arg_min(id, ssn) FROM (SELECT id, ssn FROM rt3b_p WHERE id = 1 UNION ALL SELECT 0, '{G}')",
    "SELECT mode(substr(ssn, 1, 1)) = '{G}' FROM rt3b_p",
    "SELECT id FROM rt3b_p QUALIFY substr(ssn, 1, 1) = '{G}'",
    "SELECT count(*) FROM range((SELECT ascii(ssn) - ascii('{G}') + 1 FROM rt3b_p WHERE id = 1))",
    "SELECT id FROM rt3b_p WHERE COLUMNS('ssn') LIKE '{G}%'",
    "SELECT a.id FROM rt3b_p a ASOF JOIN (SELECT '{G}' AS k) b ON a.ssn >= b.k",
]


@pytest.mark.parametrize("template", _DUCK_HELD)
def test_duckdb_list_map_similarity_and_join_forms_tell_nothing(duck: tuple[Run, Run], template: str) -> None:
    """list_*, string_split/unnest, regexp_extract_all, map keys, similarity functions, QUALIFY, ASOF joins,
    range() bounded by a masked value: the right first character and a wrong one are observed the same."""
    run, _ = duck
    seen = [_observe(run, template.format(G=g)) for g in ("5", "4")]
    assert seen[0] == seen[1], seen


def test_duckdb_relation_api_tells_nothing(duck: tuple[Run, Run]) -> None:
    """The relation API of the governed connection (filter, order, aggregate, query) is analysed like SQL."""
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE rt3b_r " + DDL.format(t="varchar"))
    raw.executemany("INSERT INTO rt3b_r VALUES (?,?,?,?,?,?,?,?)", ROWS)
    conn = govern(raw)
    rel = conn.sql("SELECT id, ssn FROM rt3b_r")
    probes: list[Callable[[str], Any]] = [
        lambda g: rel.filter(f"ssn LIKE '{g}%'").project("id").fetchall(),
        lambda g: rel.aggregate(f"count(*) FILTER (WHERE starts_with(ssn, '{g}'))").fetchall(),
        lambda g: rel.query("x", f"SELECT id FROM x WHERE ssn < '{g}'").fetchall(),
        lambda g: len(rel.filter(f"ssn > '{g}'")),
    ]
    try:
        for probe in probes:
            seen = [_observe(probe, g) for g in ("5", "4")]
            assert seen == ["refused", "refused"], seen
        assert [r[0] for r in rel.order("id").fetchall()] == [1, 2, 3]
    finally:
        raw.close()


# -- MariaDB ------------------------------------------------------------------------------------------------
@pytest.fixture
def my(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> Iterator[tuple[Run, str]]:
    """A governed MariaDB connection; ``run`` returns the rows and ``@@warning_count`` after them."""
    import pymysql

    with made_tables(mysql_conn) as make:
        t = make(DDL.format(t="varchar(100)"), ROWS, f"rt3b_{unique}")
        raw = pymysql.connect(autocommit=True, **mysql_kw)
        conn = govern(raw)

        def run(sql: str) -> Any:
            cur = conn.cursor()
            cur.execute(sql)
            rows = cur.fetchall() if cur.description else cur.rowcount
            cur.execute("SELECT @@warning_count")
            return rows, cur.fetchall()[0][0]

        try:
            yield run, t
        finally:
            raw.close()


def _cut_warns(run: Run, table: str, limit: int, agg: str) -> Any:
    """Lower group_concat_max_len to ``limit`` in the session, then aggregate row 1's SSN alone."""
    return _observe(run, f"SET SESSION group_concat_max_len = {limit}"), _observe(
        run, f"SELECT {agg}(ssn) FROM {table} WHERE id = 1"
    )


@pytest.mark.parametrize("agg", ["GROUP_CONCAT", "JSON_ARRAYAGG"])
def test_mariadb_lowered_group_concat_max_len_tells_no_length(
    my: tuple[Run, str], mysql_conn: Any, agg: str
) -> None:
    """``SET SESSION group_concat_max_len = n`` (a setting drivers raise routinely) lowered to the length of a
    masked value makes ``GROUP_CONCAT(ssn)`` of one row warn exactly when the value is longer: lowering it
    needs approval; the same statements on the raw connection do tell the length."""
    run, t = my
    with mysql_conn.cursor() as cur:
        truth = []
        for limit in range(4, 40):  # the raw connection finds the shortest cut that does not warn
            cur.execute(f"SET SESSION group_concat_max_len = {limit}")
            cur.execute(f"SELECT {agg}(ssn) FROM {t} WHERE id = 1")
            cur.execute("SELECT @@warning_count")
            truth.append(cur.fetchone()[0])
        cur.execute("SET SESSION group_concat_max_len = DEFAULT")
    assert truth[0] and not truth[-1], truth
    bound = 4 + truth.index(0)  # GROUP_CONCAT: 11, the SSN's length (JSON_ARRAYAGG adds its quotes)
    seen = [_cut_warns(run, t, limit, agg) for limit in (bound - 1, bound)]
    assert seen[0] == seen[1], seen
    assert seen[0][0] == "approval required", seen


@pytest.mark.parametrize(
    "sql",
    [
        "SET SESSION group_concat_max_len = 2000000",
        "SET @@session.group_concat_max_len = 1048576",
        "SET group_concat_max_len = DEFAULT",
        "SET group_concat_max_len = 1048576, NAMES utf8mb4",
    ],
)
def test_mariadb_raising_group_concat_max_len_still_runs(my: tuple[Run, str], sql: str) -> None:
    """Innocent look-alikes: raising the cut (what ORMs do) or resetting it runs, and GROUP_CONCAT of a masked
    column then returns the mask with no warning."""
    run, t = my
    assert run(sql) == (0, 0)
    assert run(f"SELECT GROUP_CONCAT(ssn) FROM {t} WHERE id = 1") == ((("[US_SSN]",),), 0)


_MY_HELD = [
    "SELECT * FROM JSON_TABLE((SELECT JSON_ARRAYAGG(ssn) FROM {t}), '$[*]' COLUMNS (v varchar(100) PATH '$')) j "
    "WHERE v LIKE '{G}%'",
    "SELECT JSON_LENGTH(JSON_OBJECTAGG(substr(ssn, 1, 1), id)) FROM (SELECT ssn, id FROM {t} WHERE id = 1 "
    "UNION ALL SELECT '{G}', 0) x",
    "SELECT JSON_OBJECTAGG(NULLIF(substr(ssn, 1, 1), '{G}'), id) FROM {t} WHERE id = 1",
    "SELECT REGEXP_INSTR(ssn, '{G}') FROM {t} WHERE id = 1",
    "SELECT REGEXP_SUBSTR(ssn, '^{G}') IS NULL FROM {t} WHERE id = 1",
    "SELECT FIND_IN_SET('{G}', substr(ssn, 1, 1)) FROM {t} WHERE id = 1",
    "SELECT FIELD(substr(ssn, 1, 1), '{G}') FROM {t} WHERE id = 1",
    "SELECT ELT(FIELD(substr(ssn, 1, 1), '{G}') + 1, 'a', 'b') FROM {t} WHERE id = 1",
    "SELECT INTERVAL(ascii(ssn), ascii('{G}')) FROM {t} WHERE id = 1",
    "SELECT SOUNDEX(full_name) = SOUNDEX('A{G}') FROM {t} WHERE id = 1",
    "SELECT CRC32(substr(ssn, 1, 1)) = CRC32('{G}') FROM {t} WHERE id = 1",
    "SELECT INET_ATON(concat(substr(ssn, 1, 1), '.0.0.{G}')) FROM {t} WHERE id = 1",
    "SELECT id, NTILE(2) OVER (ORDER BY ssn) FROM (SELECT id, ssn FROM {t} WHERE id = 1 UNION ALL SELECT 0, '{G}') x",
    "SELECT id, PERCENT_RANK() OVER (ORDER BY ssn) FROM (SELECT id, ssn FROM {t} WHERE id = 1 "
    "UNION ALL SELECT 0, '{G}') x",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < (SELECT ascii(ssn) - ascii('{G}') "
    "FROM {t} WHERE id = 1)) SELECT count(*) FROM r",
    "SELECT SQL_CALC_FOUND_ROWS id FROM {t} WHERE ssn LIKE '{G}%' LIMIT 0",
    "SELECT LAST_INSERT_ID(ascii(ssn) = ascii('{G}')) FROM {t} WHERE id = 1",
    "SELECT IF(substr(ssn, 1, 1) = '{G}', @b := 1, 0) FROM {t} WHERE id = 1",
    "SELECT IF(substr(ssn, 1, 1) = '{G}', GET_LOCK('rt3b_l', 0), 0) FROM {t} WHERE id = 1",
    "SELECT id FROM {t} WHERE id = 1 LIMIT ROWS EXAMINED {G}",
]


@pytest.mark.parametrize("template", _MY_HELD)
def test_mariadb_json_regexp_set_window_and_counter_forms_tell_nothing(my: tuple[Run, str], template: str) -> None:
    """JSON_TABLE / JSON_OBJECTAGG key collapse, REGEXP_*, FIND_IN_SET, FIELD, ELT, INTERVAL, SOUNDEX, CRC32,
    INET_ATON, NTILE/PERCENT_RANK, WITH RECURSIVE bounded by a masked value, FOUND_ROWS, LAST_INSERT_ID(expr),
    user variables and locks set by a masked test: the right first character and a wrong one look the same."""
    run, t = my
    seen = [_observe(run, template.format(t=t, G=g)) for g in ("5", "4")]
    assert seen[0] == seen[1], seen
    follow = [_observe(run, q) for q in ("SELECT FOUND_ROWS()", "SELECT LAST_INSERT_ID()", "SELECT @b")]
    assert "5" not in repr(follow), follow
    _observe(run, "SELECT RELEASE_LOCK('rt3b_l')")
