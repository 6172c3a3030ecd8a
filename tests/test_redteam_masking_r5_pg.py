"""Red-team round 5 on PostgreSQL (psycopg 3, psycopg2, asyncpg): rows the driver decodes itself, and the
client encoding the server converts every result to.

An agent identity in production with zero configuration. Each finding shows the leak (or the oracle) on the
raw connection, that the governed one observes a right and a wrong guess alike, and that a look-alike that
reveals nothing still runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import attempt as _observe
from tests._redteam import govern, leaked
from tests.conftest import PG_DSN

DDL = "(id int primary key, full_name text, email text, ssn text, address text, city text)"
ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "221B Baker Street\nLondon NW1 6XE", "Paris"),
    (2, "Иван Петров", "ivan@example.org", "219-45-1234", "1 Main St\nSpringfield", "Lyon"),
]
SECRETS = ("Alice", "Smith", "Иван", "alice@", "536-22", "Baker", "Springfield")


@pytest.fixture
def table(pg_conn: Any, unique: str) -> Iterator[str]:
    t = f"rt5pg_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} {DDL}")
    with pg_conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s, %s, %s, %s)", ROWS)
    yield t
    pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def _url() -> str:
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    return f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"


# -- rows the driver decodes itself ---------------------------------------------------------------------------
WHOLE_ROWS = [
    "SELECT array_agg(c) FROM {t} c",
    "SELECT array_agg(c.*) FROM {t} c",
    "SELECT ARRAY(SELECT c FROM {t} c)",
    "SELECT ARRAY[c] FROM {t} c",
    "SELECT (SELECT array_agg(c) FROM {t} c)",
    "SELECT x FROM (SELECT array_agg(c) AS x FROM {t} c) s",
    "SELECT array_agg(b) FROM {t} a JOIN {t} b ON a.id = b.id",
    "SELECT c FROM {t} c",
]


@pytest.fixture
async def apg(pg_dsn: str, table: str) -> AsyncIterator[tuple[Any, Any, str]]:
    asyncpg = pytest.importorskip("asyncpg")
    raw = await asyncpg.connect(_url())
    try:
        yield govern(raw), raw, table
    finally:
        await raw.close()


@pytest.mark.anyio
@pytest.mark.parametrize("sql", WHOLE_ROWS)
async def test_asyncpg_arrays_of_whole_rows_are_masked_field_by_field(apg: tuple[Any, Any, str], sql: str) -> None:
    """asyncpg decodes an array of a table's rows (array_agg(c), ARRAY[c]) into Records inside a list: the row
    masker scanned each Record as an opaque value and returned it whole, every name, e-mail and SSN in the
    clear. Each row is now masked by its field names, like a JSON row; the city stays exact."""
    conn, raw, t = apg
    assert leaked(await raw.fetch(sql.format(t=t)), SECRETS), sql  # ground truth: the values are in the result
    rows = await conn.fetch(sql.format(t=t))
    assert rows and not leaked(rows, SECRETS), (sql, rows)
    assert "Paris" in repr(rows) and "[PERSON_NAME]" in repr(rows), rows


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("sql", ["SELECT array_agg(c) FROM {t} c", "SELECT c FROM {t} c"])
def test_psycopg_registered_composites_are_masked_field_by_field(
    pg_dsn: str, table: str, binary: bool, sql: str
) -> None:
    """psycopg with the table's row type registered (register_composite, a DB-API adaptation) loads rows into
    named tuples: inside an array they were only scanned, so names and addresses (which detection cannot
    recognise) came back. Now masked by field name."""
    import psycopg
    from psycopg.types.composite import CompositeInfo, register_composite

    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        register_composite(CompositeInfo.fetch(raw, table), raw)
        assert leaked(raw.cursor(binary=binary).execute(sql.format(t=table)).fetchall(), SECRETS)
        rows = govern(raw).cursor(binary=binary).execute(sql.format(t=table)).fetchall()
        assert rows and not leaked(rows, SECRETS), rows
        assert "Paris" in repr(rows), rows
    finally:
        raw.close()


def test_scanned_records_are_scanned_by_field() -> None:
    """Value-based detection (a UDF's result, an untraced column) of a decoded row scans its fields."""
    from collections import namedtuple

    from governed_db.masking.strategies.spans import scrub_value

    Row = namedtuple("Row", "id email note")
    out = scrub_value([Row(1, "alice@example.com", "call +1 415-555-2671")])
    assert "alice@" not in repr(out) and "415-555" not in repr(out) and "1" in repr(out), out


# -- the client encoding ----------------------------------------------------------------------------------------
def _pg_runner(driver: str, pg_dsn: str, options: str = "") -> tuple[Any, Any]:
    """A raw PostgreSQL connection of ``driver`` and a ``run(sql)`` on it returning the rows."""
    if driver == "psycopg":
        import psycopg

        raw: Any = psycopg.connect(pg_dsn + options, autocommit=True)
    else:
        psycopg2 = pytest.importorskip("psycopg2")
        raw = psycopg2.connect(pg_dsn + options)
        raw.autocommit = True
    return raw, _runner(raw)


def _runner(conn: Any) -> Any:
    def run(sql: str) -> Any:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall() if cur.description else cur.rowcount

    return run


ENCODING_ORACLES = [
    # the script a name is written in: a plain read of the Cyrillic name fails under LATIN1
    ("SELECT full_name FROM {t} WHERE id = {i}", None),
    # a digit of an SSN: translate() is total, but its result holds a Ж exactly where the SSN held the guess
    ("SELECT translate(ssn, '{g}', chr(1046)) FROM {t} WHERE id = 1", ("5", "4")),
]
SWITCHES = [
    "SET client_encoding TO 'LATIN1'",
    "SET SESSION client_encoding = latin1",
    "SET LOCAL client_encoding TO 'WIN1252'",
    "SELECT set_config('client_encoding', 'LATIN1', false)",
    "SELECT pg_catalog.set_config('client_encoding', 'SQL_ASCII', false)",
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("switch", SWITCHES)
def test_client_encoding_that_lacks_characters_is_refused(pg_dsn: str, table: str, driver: str, switch: str) -> None:
    """Under a client encoding that lacks characters, PostgreSQL fails to send a result value holding one:
    a plain read of a masked name told its script, and translate(ssn, '5', chr(1046)) whether the SSN holds a
    5 (one character per statement). Switching the session's encoding away from UTF8 is refused for a masked
    identity, so a right and a wrong guess are observed alike."""
    raw, run_raw = _pg_runner(driver, pg_dsn)
    try:
        run_raw("SET client_encoding TO 'LATIN1'")
        # ground truth on the raw session: each oracle tells the two apart
        assert _observe(run_raw, ENCODING_ORACLES[0][0].format(t=table, i=1)) == [("Alice Smith",)]
        assert _observe(run_raw, ENCODING_ORACLES[0][0].format(t=table, i=2)) == "UntranslatableCharacter"
        tr = ENCODING_ORACLES[1][0]
        assert _observe(run_raw, tr.format(t=table, g="5")) == "UntranslatableCharacter"
        assert _observe(run_raw, tr.format(t=table, g="4")) == [("536-22-8726",)]
        run_raw("SET client_encoding TO 'UTF8'")
        conn = govern(raw)
        run = _runner(conn)
        seen = _observe(run, switch)
        assert seen == "refused", (switch, seen)
        assert str(raw.info.encoding if driver == "psycopg" else raw.encoding).lower().replace("-", "") in (
            "utf8", "unicode"
        )  # the refused statement never reached the server
        names = [_observe(run, ENCODING_ORACLES[0][0].format(t=table, i=i)) for i in (1, 2)]
        digits = [_observe(run, tr.format(t=table, g=g)) for g in ("5", "4")]
        assert names[0] == names[1] == [("[PERSON_NAME]",)], names
        assert digits[0] == digits[1] == [("[US_SSN]",)], digits
    finally:
        raw.close()


def test_psycopg2_set_client_encoding_is_judged(pg_dsn: str, table: str) -> None:
    """psycopg2's connection.set_client_encoding() sent the SET around governance: it is judged as that SET
    now (refused for LATIN1), and setting UTF8 still works."""
    raw, _ = _pg_runner("psycopg2", pg_dsn)
    try:
        conn = govern(raw)
        with pytest.raises(governed_db.GuardrailViolation, match="client encoding"):
            conn.set_client_encoding("LATIN1")
        assert raw.encoding == "UTF8"
        conn.set_client_encoding("UTF8")
        cur = conn.cursor()
        cur.execute(f"SELECT full_name FROM {table} WHERE id = 2")
        assert cur.fetchall() == [("[PERSON_NAME]",)]
    finally:
        raw.close()


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_masked_session_in_a_lossy_encoding_is_not_governed(pg_dsn: str, driver: str) -> None:
    """A connection opened with client_encoding=LATIN1 is refused by wrap() where masking is on (production),
    naming the setting and what to do; in development (masking off) it is still governed."""
    raw, _ = _pg_runner(driver, pg_dsn, " client_encoding=LATIN1")
    try:
        with pytest.raises(governed_db.ConfigurationError, match=r"client encoding is LATIN1.*client_encoding UTF8"):
            govern(raw)
        dev = govern(raw, environment="development")
        assert _runner(dev)("SELECT 1") == [(1,)]
    finally:
        raw.close()


@pytest.mark.parametrize("sql", [
    "SET client_encoding TO 'UTF8'",
    "SET client_encoding = 'unicode'",
    "SELECT set_config('client_encoding', 'UTF8', false)",
    "SET timezone TO 'UTC'",
])  # fmt: skip
def test_utf8_encoding_switches_keep_running(pg_dsn: str, table: str, sql: str) -> None:
    """Look-alikes: drivers and pools that set client_encoding UTF8 (and other harmless settings) still run."""
    raw, _ = _pg_runner("psycopg", pg_dsn)
    try:
        run = _runner(govern(raw))
        run(sql)
        assert run(f"SELECT city, full_name FROM {table} ORDER BY id") == [("Paris", "[PERSON_NAME]"),
                                                                          ("Lyon", "[PERSON_NAME]")]  # fmt: skip
    finally:
        raw.close()


@pytest.mark.anyio
async def test_asyncpg_client_encoding_switch_is_refused(apg: tuple[Any, Any, str]) -> None:
    """asyncpg: the same SET is refused; a session opened in LATIN1 is not governed."""
    asyncpg = pytest.importorskip("asyncpg")
    conn, _raw, t = apg
    with pytest.raises(governed_db.GuardrailViolation, match="client encoding"):
        await conn.execute("SET client_encoding TO 'LATIN1'")
    assert await conn.fetch(f"SELECT full_name FROM {t} WHERE id = 2") == [("[PERSON_NAME]",)]
    latin = await asyncpg.connect(_url(), server_settings={"client_encoding": "LATIN1"})
    try:
        with pytest.raises(governed_db.ConfigurationError, match="client encoding"):
            govern(latin)
    finally:
        await latin.close()


# -- asyncpg's error fields ---------------------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("setup", "sql"),
    [
        ("ALTER TABLE {t} ALTER COLUMN city SET NOT NULL", "UPDATE {t} SET city = NULL WHERE id = 1"),
        ("ALTER TABLE {t} ADD CHECK (length(city) < 20)", "UPDATE {t} SET city = repeat('x', 30) WHERE id = 1"),
    ],
)
async def test_asyncpg_error_fields_do_not_echo_the_row(apg: tuple[Any, Any, str], setup: str, sql: str) -> None:
    """An UPDATE of a non-masked column that breaks a NOT NULL or CHECK constraint: PostgreSQL's DETAIL quotes the
    whole new row ("Failing row contains (1, Alice Smith, alice@example.com, 536-22-8726, ...)"). asyncpg keeps
    it in exc.detail and exc.as_dict(), which were left as the server sent them (only exc.args was scrubbed)."""
    asyncpg = pytest.importorskip("asyncpg")
    conn, raw, t = apg
    await raw.execute(setup.format(t=t))
    with pytest.raises(asyncpg.exceptions.IntegrityConstraintViolationError) as seen_raw:
        await raw.execute(sql.format(t=t))
    assert leaked(seen_raw.value.detail, SECRETS)  # ground truth: the server echoes the row
    with pytest.raises(asyncpg.exceptions.IntegrityConstraintViolationError) as seen:
        await conn.execute(sql.format(t=t))
    exc = seen.value
    for shown in (exc.detail, exc.as_dict(), exc.args, str(exc)):
        assert not leaked(shown, SECRETS), shown
    assert exc.sqlstate == seen_raw.value.sqlstate and "Failing row contains" in exc.detail


# -- recursive CTE clauses -------------------------------------------------------------------------------------
RECURSION_ORACLES = [
    # CYCLE stops the recursion where a new row's value equals one on its path: 2 rows for a right guess, 3 else
    "WITH RECURSIVE r(s) AS (SELECT substr(ssn, 1, 1) FROM {t} WHERE id = 1 UNION ALL SELECT '{g}' FROM r) "
    "CYCLE s SET is_c USING p SELECT count(*) FROM r",
    # SEARCH ... BY orders the rows by the value: whether the SSN's row sorts before a guess (5 after 4, before 6)
    "WITH RECURSIVE r(s, id) AS (SELECT CASE WHEN id = 1 THEN substr(ssn, 1, 1) ELSE '{g}' END, id FROM {t} "
    "UNION ALL SELECT s, id FROM r WHERE false) SEARCH DEPTH FIRST BY s SET o SELECT id FROM r ORDER BY o",
]
GUESSES = {RECURSION_ORACLES[0]: ("5", "4"), RECURSION_ORACLES[1]: ("6", "4")}


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("template", RECURSION_ORACLES)
def test_recursive_cycle_and_search_clauses_are_walked(pg_dsn: str, table: str, driver: str, template: str) -> None:
    """The CYCLE and SEARCH clauses of WITH RECURSIVE compare and order the column they name; sqlglot hangs them
    on the WITH, where the walk did not look: the number of rows told whether an SSN began with a guess."""
    raw, run_raw = _pg_runner(driver, pg_dsn)
    try:
        truth = [_observe(run_raw, template.format(t=table, g=g)) for g in GUESSES[template]]
        assert truth[0] != truth[1], truth
        run = _runner(govern(raw))
        seen = [_observe(run, template.format(t=table, g=g)) for g in GUESSES[template]]
        assert seen == ["refused", "refused"], seen
    finally:
        raw.close()


@pytest.mark.parametrize("sql", [
    "WITH RECURSIVE r(i, s) AS (SELECT id, full_name FROM {t} UNION ALL SELECT i, s FROM r) CYCLE i SET c USING p "
    "SELECT i, c, p, s FROM r ORDER BY i, c",
    "WITH RECURSIVE r(i, n, s) AS (SELECT id, 1, ssn FROM {t} UNION ALL SELECT i, n + 1, s FROM r WHERE n < 2) "
    "SEARCH DEPTH FIRST BY i SET o SELECT i, n, s FROM r ORDER BY o",
])  # fmt: skip
def test_recursive_clauses_over_other_columns_keep_running(pg_dsn: str, table: str, sql: str) -> None:
    """Look-alikes: CYCLE/SEARCH over the id run, their added columns (the path, the ordering) come back
    exactly, and the masked column carried along is masked (ORDER BY o was refused before: o was untraced)."""
    raw, run_raw = _pg_runner("psycopg", pg_dsn)
    try:
        expected = run_raw(sql.format(t=table))
        got = _runner(govern(raw))(sql.format(t=table))
        assert len(got) == len(expected) == 4 and not leaked(got, SECRETS), got
        assert [r[:-1] for r in got] == [r[:-1] for r in expected]
        assert {r[-1] for r in got} <= {"[PERSON_NAME]", "[US_SSN]"}, got
    finally:
        raw.close()


# -- over-refusal: asyncpg's catalog read of a relation's kind --------------------------------------------------
@pytest.mark.anyio
async def test_asyncpg_reads_the_relation_kind_like_psycopg(apg: tuple[Any, Any, str], pg_dsn: str) -> None:
    """asyncpg decodes pg_class.relkind ("char") as bytes, so every table read as a relation of unknown kind
    whose order an index on a masked column might decide: a whole-row aggregate over a subquery was refused on
    asyncpg while psycopg ran it. Now both run it and return the same masked result."""
    import psycopg

    conn, _raw, t = apg
    sql = f"SELECT array_agg(s) FROM (SELECT full_name AS n, id FROM {t}) s"
    got = await conn.fetch(sql)
    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        expected = govern(raw).execute(sql).fetchall()
    finally:
        raw.close()
    assert [tuple(r) for r in got] == expected and not leaked(got, SECRETS), (got, expected)


# -- EXPLAIN ---------------------------------------------------------------------------------------------------
EXPLAIN_ORACLE = (
    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) WITH w AS MATERIALIZED ("
    "SELECT replace(substr(c.ssn, 1, 1), '{g}', '" + "x" * 200 + "') AS n, g FROM {t} c, generate_series(1, 5000) g "
    "WHERE c.id = 1 ORDER BY g) SELECT count(*) FROM w"
)


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_explain_analyze_memory_tells_nothing(pg_dsn: str, table: str, driver: str) -> None:
    """EXPLAIN ANALYZE reports the memory a sort took ("Sort Method: quicksort  Memory: 1862kB"): a masked value
    computed in a CTE and never returned still decides it, so a replace() that grows the value only for the right
    first digit of an SSN showed in the plan. Every line of a PostgreSQL plan now depends on every column the
    explained statement reads: masked whole when one is masked."""
    raw, run_raw = _pg_runner(driver, pg_dsn)
    try:
        truth = [run_raw(EXPLAIN_ORACLE.format(t=table, g=g)) for g in ("5", "4")]
        memory = [[line for (line,) in plan if "Memory" in line] for plan in truth]
        assert memory[0] != memory[1], memory  # ground truth: the sort's memory tells the digit
        run = _runner(govern(raw))
        seen = [run(EXPLAIN_ORACLE.format(t=table, g=g)) for g in ("5", "4")]
        assert seen[0] == seen[1] and len(seen[0]) == len(truth[0]), seen
        assert not any("Memory" in line for (line,) in seen[0]), seen
    finally:
        raw.close()


@pytest.mark.parametrize("sql", [
    "EXPLAIN SELECT id, city FROM {t} WHERE id = 1 ORDER BY city",
    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM {t} WHERE city <> 'x'",
    "EXPLAIN (FORMAT JSON) SELECT id FROM {t} c WHERE EXISTS (SELECT 1 FROM {t} d WHERE d.id = c.id)",
])  # fmt: skip
def test_explain_of_other_columns_keeps_running(pg_conn: Any, pg_dsn: str, table: str, sql: str) -> None:
    """Look-alikes: plans of statements over a table without masked columns come back as the database gives
    them. Over a table with masked columns, even one reading none of them, a plan's costs, row estimates and
    buffers count the table's pages, whose number depends on how wide the rows are: masked whole (decision
    0244)."""
    plain = f"{table}_plain"
    pg_conn.execute(f"CREATE TABLE {plain} AS SELECT id, city FROM {table}")
    raw, run_raw = _pg_runner("psycopg", pg_dsn)
    try:
        run = _runner(govern(raw))
        got = run(sql.format(t=plain))
        assert got == run_raw(sql.format(t=plain)) and "Scan" in repr(got), got
        masked = run(sql.format(t=table))
        assert masked and "Scan" not in repr(masked) and "cost" not in repr(masked), masked
    finally:
        raw.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {plain}")


# -- resource counters ------------------------------------------------------------------------------------------
SPILL = (
    "WITH w AS MATERIALIZED (SELECT replace(substr(c.ssn, 1, 1), '{g}', '" + "x" * 200 + "') AS n, g "
    "FROM {t} c, generate_series(1, 20000) g WHERE c.id = 1 ORDER BY g) SELECT count(*) FROM w"
)
TEMP_BYTES = "SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()"


def test_temporary_bytes_counter_tells_nothing(pg_dsn: str, table: str) -> None:
    """A sort of a masked value a statement never returns spills to temporary files by its size: with work_mem
    at 64kB, pg_stat_database.temp_bytes grew by 9 MB when the SSN began with the guessed 5 and by 1 MB for a
    4. The sort still runs (its result is a count); reading the counter is refused for a masked identity, and
    still runs for one that sees no masked column."""
    import time

    import psycopg

    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        raw.execute("SET work_mem = '64kB'")

        def grown(g: str) -> int:
            before = raw.execute(TEMP_BYTES).fetchone()[0]
            raw.execute(SPILL.format(t=table, g=g)).fetchall()
            for _ in range(30):  # the server publishes a session's counters within a second or so of it idling
                time.sleep(0.2)
                raw.execute("SELECT pg_stat_clear_snapshot()")
                after = raw.execute(TEMP_BYTES).fetchone()[0]
                if after != before:
                    break
            return int(after - before)

        # ground truth: the counter tells the digit. It counts the whole database, so another session's spill
        # can only add to a reading: the smallest of a few readings of the wrong guess is its own
        right, wrong = grown("5"), grown("4")
        for _ in range(3):
            if right > wrong + 4_000_000:
                break
            wrong = min(wrong, grown("4"))
        assert right > wrong + 4_000_000, (right, wrong)
        conn = govern(raw)
        run = _runner(conn)
        assert run(SPILL.format(t=table, g="5")) == [(20000,)]  # the computation itself still runs
        for probe in (TEMP_BYTES, "SELECT pg_stat_get_db_temp_bytes(oid) FROM pg_database",
                      "SELECT sum(used_bytes) FROM pg_backend_memory_contexts"):  # fmt: skip
            assert _observe(run, probe) == "refused", probe
        dev = govern(raw, environment="development")
        assert len(_runner(dev)(TEMP_BYTES)) == 1
    finally:
        raw.close()


def test_activity_and_table_statistics_keep_running(pg_dsn: str, table: str) -> None:
    """Look-alikes: pg_stat_activity and per-table statistics hold no size of what statements computed."""
    raw, _ = _pg_runner("psycopg", pg_dsn)
    try:
        run = _runner(govern(raw))
        assert run("SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid()") == [(1,)]
        assert run(f"SELECT relname FROM pg_stat_user_tables WHERE relname = '{table}'") == [(table,)]
    finally:
        raw.close()


@pytest.mark.parametrize("sql", ["SELECT array_agg(c) FROM {t} c", "SELECT ARRAY[c] FROM {t} c"])
def test_psycopg2_registered_composites_are_masked_field_by_field(pg_dsn: str, table: str, sql: str) -> None:
    """psycopg2.extras.register_composite: the same named tuples inside arrays, masked by field name."""
    extras = pytest.importorskip("psycopg2.extras")

    raw = extras.psycopg2.connect(pg_dsn)
    raw.autocommit = True
    try:
        extras.register_composite(table, raw)
        assert leaked(_runner(raw)(sql.format(t=table)), SECRETS)
        rows = _runner(govern(raw))(sql.format(t=table))
        assert rows and not leaked(rows, SECRETS) and "Paris" in repr(rows), rows
    finally:
        raw.close()


@pytest.mark.anyio
async def test_asyncpg_prepared_explain_tells_nothing(apg: tuple[Any, Any, str]) -> None:
    """asyncpg's PreparedStatement.explain(analyze=True) runs its own EXPLAIN and returned the parsed plan as is:
    the sort's "Sort Space Used" told the first digit of an SSN. The plan is now masked like any result; the
    plan of a statement that reads no masked column comes back whole."""
    conn, raw, t = apg
    sql = EXPLAIN_ORACLE.split(") WITH ", 1)[1].join(["WITH ", ""])

    def space(plan: Any) -> list[Any]:
        found: list[Any] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                found.extend(v for k, v in node.items() if k == "Sort Space Used")
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(plan)
        return found

    truth = [space(await (await raw.prepare(sql.format(t=t, g=g))).explain(analyze=True)) for g in ("5", "4")]
    assert truth[0] != truth[1], truth
    seen = [await (await conn.prepare(sql.format(t=t, g=g))).explain(analyze=True) for g in ("5", "4")]
    assert seen[0] == seen[1] and not space(seen[0]), seen
    # a plan over a table with masked columns is masked whole even where it reads none of them (its costs count
    # the table's pages: decision 0244); over a table without, it comes back as the database gives it
    plan = await (await conn.prepare(f"SELECT id, city FROM {t} WHERE id = $1")).explain(1)
    assert "Relation Name" not in repr(plan) and "Cost" not in repr(plan), plan
    await raw.execute(f"CREATE TABLE {t}_plain AS SELECT id, city FROM {t}")
    try:
        plan = await (await conn.prepare(f"SELECT id, city FROM {t}_plain WHERE id = $1")).explain(1)
        assert plan[0]["Plan"]["Relation Name"] == f"{t}_plain", plan
    finally:
        await raw.execute(f"DROP TABLE IF EXISTS {t}_plain")
