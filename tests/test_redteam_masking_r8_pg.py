"""Red-team round 8 on PostgreSQL (psycopg 3, psycopg2, asyncpg): the columns a ``*`` expands to over a table
function, a join on USING and a row's fields (decision 0229); a nearly empty table's text computed together
with a whole row, other sessions' statements in ``pg_stat_activity`` and server notices (decision 0230); an
UPDATE sized against an index that holds a masked value (decision 0231).

An agent identity in production with zero configuration. Two tables hold the same ids and cities and differ only
in their masked values (names, e-mails, SSNs); each finding shows that the raw connection returns them (so a
statement tells the two tables apart), that the governed one returns the same bytes for both, and that
look-alikes that reveal nothing still run with exact results.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, leaked, made_tables, pg_connect
from tests.conftest import PG_DSN

DDL = "(id int primary key, full_name text, email text, ssn text, city text, scores int[])"
SCORES = [3, 4]
#: the same ids, cities and scores; only the masked values differ (an e-mail's mask keeps its first letter
#: and domain, so those are the same too)
ROWS_A = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "Paris", SCORES),
    (2, "Bob Jones", "bob.jones@example.org", "219-45-1234", "Lyon", SCORES),
]
ROWS_B = [
    (1, "Ivan Petrov", "anna.k@example.com", "478-91-2205", "Paris", SCORES),
    (2, "Carla Diaz", "bert@example.org", "310-77-6642", "Lyon", SCORES),
]
SECRETS = ("Alice", "Smith", "Bob", "Jones", "Ivan", "Carla", "alice@", "anna.k@", "536-22", "478-91", "219-45")


def _observe(conn: Any, sql: str) -> Any:
    """What the attacker sees: the rows and column names, that it was refused (and why), or the error."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return [d[0] for d in cur.description], cur.fetchall()
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    except Exception as e:
        return f"{type(e).__name__}: {e}"


@pytest.fixture
def tables(pg_conn: Any, unique: str) -> Iterator[tuple[str, str]]:
    """Two customer tables that differ only in their masked values."""
    with made_tables(pg_conn) as make:
        yield make(DDL, ROWS_A, f"rt8pg_a_{unique}"), make(DDL, ROWS_B, f"rt8pg_b_{unique}")


#: a ``*`` over a table function whose argument is a whole row: its columns (``key``, ``value``) were looked up
#: by name *in the table* (no column ``value`` there: not masked), so every field came back in the clear
ROW_FUNCTION_STARS = [
    "SELECT * FROM jsonb_each((SELECT to_jsonb(c) FROM {t} c WHERE id = 1))",
    "SELECT j.* FROM jsonb_each((SELECT to_jsonb(c) FROM {t} c WHERE id = 1)) j",
    "SELECT * FROM json_each((SELECT row_to_json(c) FROM {t} c WHERE id = 1))",
    "SELECT * FROM jsonb_each((SELECT to_jsonb(c) FROM {t} c WHERE id = 1)) WITH ORDINALITY",
    "SELECT * FROM ROWS FROM (jsonb_each((SELECT to_jsonb(c) FROM {t} c WHERE id = 1)))",
    "SELECT j.* FROM {t} c, jsonb_each(to_jsonb(c)) j",
    "SELECT * FROM {t} c, jsonb_each(to_jsonb(c)) j",
    "SELECT * FROM {t} c, LATERAL (SELECT * FROM jsonb_each(to_jsonb(c))) l",
    "SELECT * FROM (SELECT * FROM jsonb_each((SELECT to_jsonb(c) FROM {t} c WHERE id = 1))) s",
    "WITH s AS (SELECT to_jsonb(c) AS j FROM {t} c) SELECT e.* FROM s, jsonb_each(s.j) e",
]
#: a ``*`` over a table function was counted as one column (plus its aliases) whatever width the database gives
#: it: ``generate_series(1, 1) g(a)`` counted two and yields one, ``jsonb_each(...)`` counted one and yields two,
#: so with both around a table the counts agreed and every column of the table was matched one place off —
#: ``full_name`` took the origin of ``id`` and came back in the clear
SHIFTED_STARS = [
    "SELECT * FROM generate_series(1, 1) AS g(a), {t} c, jsonb_each('{{\"k\": \"v\"}}') j",
    "SELECT g.*, c.full_name, j.* FROM generate_series(1, 1) AS g(a), {t} c, jsonb_each('{{\"k\": \"v\"}}') j",
    "SELECT g.*, c.full_name, c.ssn, j.* FROM unnest(ARRAY[1]) AS g(a), {t} c, jsonb_each('{{\"k\": 1}}') j",
    "SELECT g.*, c.*, j.* FROM generate_series(1, 1) AS g(a), {t} c, json_each('{{\"k\": \"v\"}}') j",
]

#: ``JOIN ... USING`` / NATURAL JOIN give each join column once (first), so a ``*`` over them has fewer columns
#: than the two sides; ``(c).*`` expands a row into all its fields where one column was counted. Alone, each
#: left the counts unequal (matched by name, safe); together the counts agreed and every column of the table
#: was matched to a constant of the VALUES lists: the whole customer row came back in the clear (five merged
#: columns for the five more ``(c).*`` gives over the six of the table)
MERGED_STARS = [
    "SELECT *, (c).* FROM (VALUES (1, 2, 3, 4, 5)) x(a, b, k, d, e) "
    "JOIN (VALUES (1, 2, 3, 4, 5)) y(a, b, k, d, e) USING (a, b, k, d, e), {t} c",
    "SELECT *, (c).* FROM (VALUES (1, 2, 3, 4, 5)) x(a, b, k, d, e) "
    "NATURAL JOIN (VALUES (1, 2, 3, 4, 5)) y(a, b, k, d, e), {t} c",
    "SELECT * FROM (VALUES (1, 2, 3, 4, 5)) x(a, b, k, d, e) "
    "JOIN (VALUES (1, 2, 3, 4, 5)) y(a, b, k, d, e) USING (a, b, k, d, e), {t} c, LATERAL (SELECT (c).*) l",
    # one merged id and a function counted one column short: the counts agree again
    "SELECT * FROM (SELECT city, id FROM {t}) d JOIN {t} c USING (id), jsonb_each('{{\"k\": \"v\"}}') j",
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("sql", ROW_FUNCTION_STARS + SHIFTED_STARS + MERGED_STARS)
def test_star_over_a_table_function_is_masked(tables: tuple[str, str], driver: str, sql: str) -> None:
    """The columns a ``*`` gives a table function are named and counted by the database: they are matched to the
    description by name, and each may be any of the function's columns, computed from what it reads; the table's
    own columns keep their masks. Both tables are observed alike (and nothing of them in the clear)."""
    raw = pg_connect(driver)
    try:
        seen_raw = [_observe(raw, sql.format(t=t)) for t in tables]
        assert seen_raw[0] != seen_raw[1] and leaked(seen_raw, SECRETS), seen_raw  # the statement reads the values
        gov = govern(raw)
        seen = [_observe(gov, sql.format(t=t)) for t in tables]
        assert seen[0] == seen[1], seen
        assert not leaked(seen, SECRETS), seen
        assert not str(seen[0]).startswith("refused"), seen[0]  # masked, not refused
    finally:
        raw.close()


@pytest.fixture
async def apg(tables: tuple[str, str]) -> AsyncIterator[tuple[Any, Any, tuple[str, str]]]:
    asyncpg = pytest.importorskip("asyncpg")
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    raw = await asyncpg.connect(f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}")
    try:
        yield govern(raw), raw, tables
    finally:
        await raw.close()


@pytest.mark.anyio
@pytest.mark.parametrize("sql", [ROW_FUNCTION_STARS[0], ROW_FUNCTION_STARS[5], SHIFTED_STARS[1], MERGED_STARS[0]])
async def test_asyncpg_star_over_a_table_function_is_masked(
    apg: tuple[Any, Any, tuple[str, str]], sql: str
) -> None:
    """The same through asyncpg, whose Records carry the database's column names."""
    conn, raw, tables = apg
    seen_raw = [[tuple(r) for r in await raw.fetch(sql.format(t=t))] for t in tables]
    assert seen_raw[0] != seen_raw[1] and leaked(seen_raw, SECRETS)
    seen = [[tuple(r) for r in await conn.fetch(sql.format(t=t))] for t in tables]
    assert seen[0] == seen[1] and seen[0], seen
    assert not leaked(seen, SECRETS), seen


LOOK_ALIKES = [
    # a table function over constants: its columns come back exactly
    ("SELECT * FROM jsonb_each('{{\"a\": 1, \"b\": \"x\"}}') ORDER BY key", (["key", "value"], [("a", 1), ("b", "x")])),
    ("SELECT * FROM generate_series(1, 2) WITH ORDINALITY", (["generate_series", "ordinality"], [(1, 1), (2, 2)])),
    # over a column nobody masks (the scores): exact values, next to the table's own columns
    (
        "SELECT c.id, c.city, u.* FROM {t} c, unnest(c.scores) WITH ORDINALITY AS u(score, n) ORDER BY c.id, u.n",
        (["id", "city", "score", "n"], [(1, "Paris", 3, 1), (1, "Paris", 4, 2), (2, "Lyon", 3, 1), (2, "Lyon", 4, 2)]),
    ),
    (
        "SELECT * FROM {t} c, unnest(c.scores) u WHERE c.id = 1 ORDER BY u",
        (
            ["id", "full_name", "email", "ssn", "city", "scores", "u"],
            [(1, "[PERSON_NAME]", "<email>", "[US_SSN]", "Paris", [3, 4], 3), (1, "[PERSON_NAME]", "<email>", "[US_SSN]", "Paris", [3, 4], 4)],
        ),
    ),
    # a series next to the table: the table's columns keep their masks, not refused, ordered by position
    (
        "SELECT * FROM {t} c, generate_series(1, 1) g ORDER BY 1",
        (
            ["id", "full_name", "email", "ssn", "city", "scores", "g"],
            [
                (1, "[PERSON_NAME]", "<email>", "[US_SSN]", "Paris", [3, 4], 1),
                (2, "[PERSON_NAME]", "<email>", "[US_SSN]", "Lyon", [3, 4], 1),
            ],
        ),
    ),
    # a join on USING, a row's fields: masked like the table's own columns (the merged key once)
    (
        "SELECT * FROM (SELECT id, 'vip' AS tier FROM {t}) d JOIN {t} c USING (id) ORDER BY id",
        (
            ["id", "tier", "full_name", "email", "ssn", "city", "scores"],
            [(1, "vip", "[PERSON_NAME]", "<email>", "[US_SSN]", "Paris", [3, 4]), (2, "vip", "[PERSON_NAME]", "<email>", "[US_SSN]", "Lyon", [3, 4])],
        ),
    ),
    (
        "SELECT (c).* FROM {t} c ORDER BY id",
        (
            ["id", "full_name", "email", "ssn", "city", "scores"],
            [(1, "[PERSON_NAME]", "<email>", "[US_SSN]", "Paris", [3, 4]), (2, "[PERSON_NAME]", "<email>", "[US_SSN]", "Lyon", [3, 4])],
        ),
    ),
    (
        "SELECT g.*, c.id, c.city, j.* FROM generate_series(1, 1) AS g(a), {t} c, jsonb_each('{{\"k\": \"v\"}}') j "
        "ORDER BY c.id",
        (["a", "id", "city", "key", "value"], [(1, 1, "Paris", "k", "v"), (1, 2, "Lyon", "k", "v")]),
    ),
]


@pytest.mark.parametrize(("sql", "expected"), LOOK_ALIKES)
def test_stars_over_functions_that_reveal_nothing_still_run(
    tables: tuple[str, str], sql: str, expected: tuple[list[str], list[tuple[Any, ...]]]
) -> None:
    """Look-alikes: functions over constants or over a column nobody masks return their exact values; the
    table's masked columns next to them are masked (an e-mail by its own strategy), nothing is refused."""
    raw = pg_connect("psycopg")
    try:
        for t in tables:
            names, rows = _observe(govern(raw), sql.format(t=t))
            assert names == expected[0], names
            emails = [r[names.index("email")] for r in rows] if "email" in names else []
            assert all("***@" in e for e in emails), emails  # the e-mail keeps its own strategy
            cleaned = [tuple("<email>" if n == "email" else v for n, v in zip(names, r, strict=True)) for r in rows]
            assert cleaned == expected[1], cleaned
    finally:
        raw.close()


# -- a nearly empty table's text next to a whole row --------------------------------------------------------
#: in a table of fewer than 10 rows, text without a name label (``city``) is provisional: an expression over it is
#: scanned, not redacted (decision 0091). An expression over it *and* the whole row was scanned too, so the names
#: in the row (which detection cannot recognise) came back in the clear
PROVISIONAL_WITH_ROWS = [
    "SELECT c.city || to_jsonb(c)::text FROM {t} c ORDER BY c.id",
    "SELECT concat(c.city, c) FROM {t} c ORDER BY c.id",
    "SELECT concat(c.city, to_jsonb(c)) FROM {t} c ORDER BY c.id",
    "SELECT c.city AS value, j.* FROM {t} c, jsonb_each(to_jsonb(c)) j WHERE c.id = 1",
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("sql", PROVISIONAL_WITH_ROWS)
def test_provisional_text_with_a_whole_row_is_masked(tables: tuple[str, str], driver: str, sql: str) -> None:
    """A value computed from a provisional column and a whole row with masked fields is masked whole (the row's
    fields cannot be found by name in it any more): both tables are observed alike (decision 0230)."""
    raw = pg_connect(driver)
    try:
        seen_raw = [_observe(raw, sql.format(t=t)) for t in tables]
        assert seen_raw[0] != seen_raw[1] and leaked(seen_raw, SECRETS), seen_raw
        gov = govern(raw)
        seen = [_observe(gov, sql.format(t=t)) for t in tables]
        assert seen[0] == seen[1], seen
        assert not leaked(seen, SECRETS) and not str(seen[0]).startswith("refused"), seen
    finally:
        raw.close()


def test_provisional_text_alone_is_still_scanned(tables: tuple[str, str]) -> None:
    """Look-alike: expressions over the provisional city alone are scanned, not redacted (exact here)."""
    raw = pg_connect("psycopg")
    try:
        for t in tables:
            seen = _observe(govern(raw), f"SELECT upper(c.city), c.city || '!' FROM {t} c ORDER BY c.id")
            assert seen == (["upper", "?column?"], [("PARIS", "Paris!"), ("LYON", "Lyon!")]), seen
    finally:
        raw.close()


# -- the size of an index entry -------------------------------------------------------------------------------
#: a value of ``n`` characters no compression shrinks (hex digests)
BIG = "(SELECT left(string_agg(md5(i::text), ''), {n}) FROM generate_series(1, 200) i)"
#: (index, the UPDATE; the two tables differ only in their names)
INDEX_SIZE_ORACLES = [
    # an entry holds city and the stored name: 2680 characters fit next to "Alice Smith", not next to a name 19
    # characters longer (and the error names the entry's size: 2728 bytes)
    ("CREATE INDEX ON {t} (city, full_name)", "UPDATE {t} SET city = " + BIG.format(n=2680) + " WHERE id = 1"),
    ("CREATE INDEX ON {t} (city) INCLUDE (full_name)", "UPDATE {t} SET city = " + BIG.format(n=2680) + " WHERE id = 1"),
    # a partial index holds the row only when the stored name starts with an A
    ("CREATE INDEX ON {t} (city) WHERE full_name LIKE 'A%'", "UPDATE {t} SET city = " + BIG.format(n=2710) + " WHERE id = 1"),
    ("CREATE INDEX ON {t} ((city || full_name))", "UPDATE {t} SET city = " + BIG.format(n=2680) + " WHERE id = 1"),
]
NAMES = {"a": "Alice Smith", "b": "Alexandra Smithson-Worthy"}


def _rolled_back(raw: Any, sql: str) -> str:
    """Whether ``sql`` succeeds on the raw connection (then undone), or the error it fails with."""
    cur = raw.cursor()
    cur.execute("BEGIN")
    try:
        cur.execute(sql)
        return "ok"
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    finally:
        cur.execute("ROLLBACK")


@pytest.fixture
def indexed(pg_conn: Any, unique: str) -> Iterator[tuple[str, str]]:
    """Two tables of one row that differ only in the stored name's length (and first letter)."""
    names = (f"rt8pg_ia_{unique}", f"rt8pg_ib_{unique}")
    for name, full_name in zip(names, (NAMES["a"], "Ivan Petrovich Smirnov-Ka"), strict=True):
        pg_conn.execute(f"CREATE TABLE {name} (id int primary key, full_name text, email text, city text, n int)")
        pg_conn.execute(f"INSERT INTO {name} VALUES (1, %s, 'a@example.com', 'Paris', 1)", (full_name,))
    yield names
    for name in names:
        pg_conn.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize(("index", "update"), INDEX_SIZE_ORACLES)
def test_an_update_sized_against_an_index_with_a_masked_column_is_refused(
    pg_conn: Any, indexed: tuple[str, str], driver: str, index: str, update: str
) -> None:
    """An index entry holds the row's values and fails when larger than the index takes: an UPDATE of a column
    sharing an index (its entries, INCLUDE columns, expression or WHERE) with a masked one succeeded or failed by
    the stored name's length or first letter, and the error said the entry's size. Such an UPDATE is refused for
    an identity that sees the name masked, naming it and the index (decision 0231)."""
    for t in indexed:
        pg_conn.execute(index.format(t=t))
    raw = pg_connect(driver)
    try:
        seen_raw = [_rolled_back(raw, update.format(t=t)) for t in indexed]
        assert seen_raw[0] != seen_raw[1], seen_raw  # one fails on the index, the other does not
        gov = govern(raw)
        seen = [_observe(gov, update.format(t=t)) for t in indexed]
        for s, t in zip(seen, indexed, strict=True):
            assert s.startswith("refused") and "masked-column-constraint" in s and f"{t}.full_name" in s, s
            assert "the size of an entry of the index" in s, s
    finally:
        raw.close()


def test_updates_that_cannot_resize_an_index_entry_still_run(pg_conn: Any, indexed: tuple[str, str]) -> None:
    """Look-alikes: a fixed-width column in the index next to the name (its entry keeps its size), a column in an
    index without masked columns, the masked column itself (the caller's own value replaces the stored one), an
    INSERT (every value the caller's) and a DELETE run."""
    t = indexed[0]
    pg_conn.execute(f"CREATE INDEX ON {t} (n, full_name)")
    pg_conn.execute(f"CREATE INDEX ON {t} (email, city)")
    raw = pg_connect("psycopg")
    try:
        gov = govern(raw)
        for sql in (
            f"UPDATE {t} SET n = n + 1 WHERE id = 1",
            f"UPDATE {t} SET city = 'Nice', email = 'b@example.com' WHERE id = 1",
            f"UPDATE {t} SET full_name = 'Someone Else' WHERE id = 1",
            f"INSERT INTO {t} (id, full_name, city, n) VALUES (2, 'Bob Jones', 'Lyon', 0)",
            f"DELETE FROM {t} WHERE id = 2",
        ):
            assert not str(_observe(gov, sql)).startswith("refused"), sql
        assert raw.execute(f"SELECT n, city, full_name FROM {t}").fetchall() == [(2, "Nice", "Someone Else")]
    finally:
        raw.close()


# -- other sessions' statements ---------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT query FROM pg_stat_activity WHERE pid = {pid}",
        "SELECT * FROM pg_catalog.pg_stat_activity WHERE pid = {pid}",
        "SELECT upper(a.query) FROM pg_stat_activity a WHERE a.pid = {pid}",
        "SELECT a FROM pg_stat_activity a WHERE a.pid = {pid}",
        "SELECT count(*) FROM pg_stat_activity WHERE pid = {pid} AND query LIKE '%Alice%'",
        "SELECT query FROM pg_stat_get_activity({pid})",
        "SELECT pg_stat_get_backend_activity(b) FROM pg_stat_get_backend_idset() b",
    ],
)
def test_other_sessions_statements_are_masked(tables: tuple[str, str], driver: str, sql: str) -> None:
    """An application's statement stays in ``pg_stat_activity.query`` while its session is idle, with the values
    it was sent with (``WHERE full_name = 'Alice Smith'``): a scan masked the SSN in it but not the name. The
    column is masked whole and a predicate on it refused; the functions behind it are refused (decision 0230)."""
    import psycopg

    def observed(full_name: str) -> tuple[Any, Any]:
        app = psycopg.connect(PG_DSN, autocommit=True)  # the application: no agent, no masking
        try:
            app.execute(f"SELECT id FROM {tables[0]} WHERE full_name = '{full_name}' AND ssn = '536-22-8726'")
            pid = app.info.backend_pid
            raw = pg_connect(driver)
            try:
                text = sql.format(pid=pid)
                return _observe(raw, text), _scrub_pids(_observe(govern(raw), text))
            finally:
                raw.close()
        finally:
            app.close()

    (raw_a, gov_a), (raw_b, gov_b) = observed("Alice Smith"), observed("Ivan Petrov")
    assert raw_a != raw_b and ("Alice" in repr(raw_a) or raw_a != raw_b), (raw_a, raw_b)
    assert gov_a == gov_b, (gov_a, gov_b)
    assert not leaked(gov_a, SECRETS), gov_a


def _scrub_pids(seen: Any) -> Any:
    """Process ids, times and the session's own statement differ from run to run: keep only what a masked value
    could decide (refusals, and which cells are masked)."""
    if isinstance(seen, str):
        return seen
    names, rows = seen
    keep = [i for i, n in enumerate(names) if n in ("query", "upper", "a", "count", "pg_stat_get_backend_activity")]
    return [names[i] for i in keep], [tuple(r[i] for i in keep) for r in rows]


def test_activity_without_statements_still_runs(pg_dsn: str) -> None:
    """Look-alike: which sessions run, their state and wait events, come back exactly."""
    raw = pg_connect("psycopg")
    try:
        sql = "SELECT pid, backend_type FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        assert _observe(govern(raw), sql) == _observe(raw, sql)
    finally:
        raw.close()


# -- USING against a column the database names ---------------------------------------------------------------
GUESS = "to_jsonb('536-22-8726'::text)"  # the SSN of row 1 of the first table, not of the second
USING_ORACLES = [
    "SELECT count(*) FROM jsonb_each((SELECT to_jsonb(c) FROM {t} c WHERE id = 1)) j "
    f"JOIN (SELECT {GUESS} AS value) g USING (value)",
    f"SELECT count(*) FROM {{t}} c, jsonb_each(to_jsonb(c)) j JOIN (SELECT {GUESS} AS value) g USING (value)",
    "SELECT count(*) FROM ROWS FROM (jsonb_each((SELECT to_jsonb(c) FROM {t} c WHERE id = 1))) j "
    f"JOIN (SELECT {GUESS} AS value) g USING (value)",
    "SELECT count(*) FROM (SELECT * FROM jsonb_each((SELECT to_jsonb(c) FROM {t} c WHERE id = 1))) j "
    f"JOIN (SELECT {GUESS} AS value) g USING (value)",
    "WITH j AS (SELECT * FROM jsonb_each((SELECT to_jsonb(c) FROM {t} c WHERE id = 1))) "
    f"SELECT count(*) FROM j JOIN (SELECT {GUESS} AS value) g USING (value)",
    f"SELECT count(*) FROM {{t}} c, LATERAL (SELECT * FROM jsonb_each(to_jsonb(c))) j JOIN (SELECT {GUESS} AS value) g "
    "USING (value)",
    "SELECT count(*) FROM jsonb_each((SELECT to_jsonb(c) FROM {t} c WHERE id = 1)) j "
    f"NATURAL JOIN (SELECT {GUESS} AS value) g",
    "SELECT count(*) FROM unnest((SELECT array_agg(ssn) FROM {t})) JOIN (SELECT '536-22-8726'::text AS unnest) g "
    "USING (unnest)",
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("sql", USING_ORACLES)
def test_using_a_column_the_database_names_is_a_use(tables: tuple[str, str], driver: str, sql: str) -> None:
    """``JOIN ... USING (value)`` compares the ``value`` of ``jsonb_each`` (or ``unnest``...) though no output of the
    function is named so in the statement: the name was looked up in the guess's side only, and the count said
    whether the guessed SSN was stored (1 or 0). The columns such a FROM item may hold now count as compared."""
    raw = pg_connect(driver)
    try:
        seen_raw = [_observe(raw, sql.format(t=t)) for t in tables]
        assert seen_raw[0] != seen_raw[1], seen_raw  # the guess is right for one table only
        gov = govern(raw)
        seen = [_observe(gov, sql.format(t=t)).replace(t, "<t>") for t in tables]
        assert seen[0] == seen[1] and seen[0].startswith("refused") and "JOIN" in seen[0], seen
    finally:
        raw.close()


@pytest.mark.parametrize(
    ("sql", "count"),
    [
        ("SELECT count(*) FROM jsonb_each_text('{{\"a\": \"1\", \"b\": \"2\"}}') j JOIN (SELECT 'a' AS key) k USING (key)", 1),
        ("SELECT count(*) FROM {t} c, unnest(c.scores) AS u(score) JOIN (SELECT 3 AS score) g USING (score)", 2),
        ("SELECT count(*) FROM {t} c JOIN (SELECT 1 AS id) k USING (id), jsonb_each(to_jsonb(c)) j", 6),
    ],
)
def test_using_over_what_nobody_masks_still_runs(tables: tuple[str, str], sql: str, count: int) -> None:
    """Look-alikes: USING over a function of constants or of a column nobody masks, and a USING join beside a
    function over the whole row (which takes no part in it), run with their exact counts."""
    raw = pg_connect("psycopg")
    try:
        for t in tables:
            assert _observe(govern(raw), sql.format(t=t)) == (["count"], [(count,)])
    finally:
        raw.close()


# -- RETURNING * of UPDATE ... FROM / DELETE ... USING ----------------------------------------------------------
RETURNING_ALL = [
    "UPDATE {w} m SET n = n + 1 FROM (SELECT id, full_name AS label FROM {t}) c WHERE m.id = c.id AND m.id = 1 "
    "RETURNING *",
    "DELETE FROM {w} m USING (SELECT id, full_name AS label FROM {t}) c WHERE m.id = c.id AND m.id = 2 RETURNING *",
    "UPDATE {w} m SET n = n + 1 FROM (SELECT id, email AS label FROM {t}) c WHERE m.id = c.id AND m.id = 1 "
    "RETURNING *",
]


@pytest.fixture
def writable(pg_conn: Any, unique: str) -> Iterator[str]:
    """A table of the agent's own (no masked column), with rows 1 and 2."""
    name = f"rt8pg_w_{unique}"
    pg_conn.execute(f"CREATE TABLE {name} (id int primary key, label text, n int)")
    yield name
    pg_conn.execute(f"DROP TABLE IF EXISTS {name}")


def _reset(pg_conn: Any, w: str) -> None:
    pg_conn.execute(f"DELETE FROM {w}")
    pg_conn.execute(f"INSERT INTO {w} VALUES (1, 'x', 0), (2, 'y', 0)")


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("sql", RETURNING_ALL)
def test_returning_star_of_a_write_with_from_items_is_masked(
    pg_conn: Any, tables: tuple[str, str], writable: str, driver: str, sql: str
) -> None:
    """PostgreSQL's ``RETURNING *`` of ``UPDATE ... FROM`` / ``DELETE ... USING`` gives every FROM item's columns
    after the target's; only the target's were traced, so a FROM column named like one of the target's
    (``full_name AS label``) took its (unmasked) origin and the names came back in the clear (decision 0229)."""
    raw = pg_connect(driver)
    try:
        seen_raw, seen = [], []
        for t in tables:
            _reset(pg_conn, writable)
            seen_raw.append(_observe(raw, sql.format(w=writable, t=t)))
            _reset(pg_conn, writable)
            seen.append(_observe(govern(raw), sql.format(w=writable, t=t)))
        assert seen_raw[0] != seen_raw[1] and leaked(seen_raw, SECRETS), seen_raw
        assert seen[0] == seen[1] and not leaked(seen, SECRETS), seen
        assert not str(seen[0]).startswith("refused"), seen[0]
    finally:
        raw.close()


def test_returning_star_of_a_write_from_a_table_keeps_its_strategies(
    pg_conn: Any, tables: tuple[str, str], writable: str
) -> None:
    """Look-alike: the FROM table's own columns after the target's, each masked by its own strategy."""
    _reset(pg_conn, writable)
    raw = pg_connect("psycopg")
    try:
        sql = f"UPDATE {writable} m SET n = n + 1 FROM {tables[0]} c WHERE m.id = c.id AND m.id = 1 RETURNING *"
        names, rows = _observe(govern(raw), sql)
        assert names == ["id", "label", "n", "id", "full_name", "email", "ssn", "city", "scores"]
        assert rows == [(1, "x", 1, 1, "[PERSON_NAME]", "a***@example.com", "[US_SSN]", "Paris", [3, 4])], rows
    finally:
        raw.close()


# -- notices and notifications --------------------------------------------------------------------------------
@pytest.fixture
def noisy(pg_conn: Any, tables: tuple[str, str], unique: str) -> Iterator[tuple[str, str]]:
    """An application's audit trigger on both tables: ``RAISE NOTICE`` with the row's name and SSN."""
    fn = f"rt8pg_note_{unique}"
    pg_conn.execute(
        f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE NOTICE 'customer % (%) updated', NEW.full_name, NEW.ssn; RETURN NEW; END $$"
    )
    for t in tables:
        pg_conn.execute(f"CREATE TRIGGER {t}_note BEFORE UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {fn}()")
    yield tables
    for t in tables:
        pg_conn.execute(f"DROP TRIGGER IF EXISTS {t}_note ON {t}")
    pg_conn.execute(f"DROP FUNCTION IF EXISTS {fn}()")


def _notices(conn: Any, driver: str, sql: str) -> list[Any]:
    """The notices a caller receives while ``sql`` runs on ``conn`` (governed or raw)."""
    if driver == "psycopg":
        got: list[Any] = []
        conn.add_notice_handler(lambda d: got.append((d.severity, d.message_primary)))
        conn.execute(sql)
        return got
    before = len(conn.notices)
    conn.cursor().execute(sql)
    return list(conn.notices)[before:]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_notices_a_trigger_raises_are_withheld(noisy: tuple[str, str], driver: str) -> None:
    """A trigger's ``RAISE NOTICE 'customer % updated', NEW.full_name`` reached the agent's notice handler (psycopg)
    or ``connection.notices`` (psycopg2) in the clear when it updated a city. Notices are withheld for identities
    that see masked columns: severity kept, text replaced (decision 0230)."""
    sql = "UPDATE {t} SET city = 'Nice' WHERE id = 1"
    seen_raw, seen = [], []
    for t in noisy:
        raw = pg_connect(driver)
        try:
            seen_raw.append(_notices(raw, driver, sql.format(t=t)))
            seen.append(_notices(govern(raw), driver, sql.format(t=t)))
        finally:
            raw.close()
    assert seen_raw[0] != seen_raw[1] and leaked(seen_raw, SECRETS), seen_raw
    assert seen[0] == seen[1] and seen[0] and not leaked(seen, SECRETS), seen


@pytest.mark.anyio
async def test_asyncpg_log_listeners_and_listeners_are_governed(noisy: tuple[str, str]) -> None:
    """asyncpg: a log listener got the notice in the clear and asyncpg's own connection (every statement on it
    ungoverned); ``add_listener`` sent LISTEN unjudged, also handing callbacks the raw connection. Log listeners
    now get the notice withheld and the governed connection; ``add_listener`` is judged as its LISTEN (approval in
    production)."""
    asyncpg = pytest.importorskip("asyncpg")
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    raw = await asyncpg.connect(f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}")
    try:
        conn = govern(raw)
        got: list[Any] = []
        conn.add_log_listener(lambda c, msg: got.append((c, str(msg))))
        await conn.execute(f"UPDATE {noisy[0]} SET city = 'Nice' WHERE id = 1")
        for _ in range(20):
            if got:
                break
            import asyncio

            await asyncio.sleep(0.05)
        assert got and got[0][0] is conn and not leaked(got, SECRETS), got
        with pytest.raises(governed_db.ApprovalRequired, match="LISTEN"):
            await conn.add_listener("rt8pg_channel", lambda *a: None)
    finally:
        await raw.close()


def test_notices_reach_an_identity_with_a_full_grant(noisy: tuple[str, str]) -> None:
    """Look-alike: an identity with an unmask grant for everything gets the trigger's notice as it is."""
    raw = pg_connect("psycopg")
    try:
        service = governed_db.Identity("billing", kind="service")
        conn = govern(raw, service, masking={"unmask": [{"kind": "service"}]})
        got = _notices(conn, "psycopg", f"UPDATE {noisy[0]} SET city = 'Nice' WHERE id = 1")
        assert got == [("NOTICE", "customer Alice Smith (536-22-8726) updated")], got
    finally:
        raw.close()
