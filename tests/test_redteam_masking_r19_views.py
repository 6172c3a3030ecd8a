"""Red-team round 19 on PostgreSQL (psycopg, asyncpg), MariaDB (PyMySQL) and DuckDB: an application's view that
decides its rows on a masked value (decision 0382, extending 0374 beyond SQLite).

The application (a raw connection, as a migration) creates ``CREATE VIEW v AS SELECT id, city FROM customers WHERE
ssn LIKE '5%'``; the agent in production, with no unmask grant, runs ``SELECT id FROM v`` and got row 1 over one
copy and no row over the other (the copies differ only in row 1's masked SSN). Likewise a view ordered by the SSN,
grouped by a comparison of it, joined on it, a view over such a view, and on PostgreSQL a materialized view
(refreshed by the application: its rows were picked by the SSN). Decision 0374 judged a SQLite view as the query
it is defined by; the same judgement now runs on every dialect, the definition read from the catalog
(``pg_get_viewdef``, ``information_schema.VIEWS``, ``duckdb_views()``) and parsed in the connection's dialect.

Look-alikes must keep running exactly: views filtered, grouped, joined or sorted on clear columns, a view over a
table without masked columns, and views that pass masked columns on or compute values from them (masked whole
where read).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, observe
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, ANNA, OTHERS, _duck_observe, _no_clear_value

#: the application's customers and a table without masked columns, ``{p}`` the copy's prefix
TABLES = (
    "CREATE TABLE {p}_c (id INT PRIMARY KEY, full_name TEXT, email TEXT, ssn TEXT, phone TEXT, city TEXT, "
    "amount FLOAT)",
    "CREATE TABLE {p}_o (id INT PRIMARY KEY, customer_id INT, amount FLOAT)",
)
ORDERS = [(10, 1, 12.0), (11, 2, 30.0), (12, 3, 18.0), (13, 5, 7.0)]

#: the application's views (made by the raw connection, as a migration would)
VIEWS = (
    "CREATE VIEW {p}_filter AS SELECT id, city FROM {p}_c WHERE ssn LIKE '5%'",
    "CREATE VIEW {p}_order AS SELECT id, city FROM {p}_c ORDER BY ssn LIMIT 10",
    "CREATE VIEW {p}_group AS SELECT substr(ssn, 1, 1) < '3' AS low, count(*) AS n FROM {p}_c "
    "GROUP BY substr(ssn, 1, 1) < '3'",
    "CREATE VIEW {p}_join AS SELECT a.id FROM {p}_c a JOIN {p}_c b ON a.ssn < b.ssn",
    "CREATE VIEW {p}_plain AS SELECT id, full_name, ssn FROM {p}_c WHERE city = 'Paris'",
    "CREATE VIEW {p}_over AS SELECT id FROM {p}_plain WHERE ssn > '3'",
    # look-alikes
    "CREATE VIEW {p}_city AS SELECT city, count(*) AS n, max(amount) AS top FROM {p}_c GROUP BY city",
    "CREATE VIEW {p}_pairs AS SELECT a.id, b.full_name FROM {p}_c a JOIN {p}_c b ON b.id = a.id + 1",
    "CREATE VIEW {p}_rich AS SELECT id, city FROM {p}_c WHERE amount > 25 ORDER BY amount DESC LIMIT 10",
    "CREATE VIEW {p}_tagged AS SELECT id, upper(full_name) AS who, "
    "CASE WHEN ssn LIKE '5%' THEN 'a' ELSE 'b' END AS k FROM {p}_c",
    "CREATE VIEW {p}_big AS SELECT id, customer_id FROM {p}_o WHERE amount > 15",
    "CREATE VIEW {p}_bought AS SELECT c.id, c.city, o.amount FROM {p}_c c JOIN {p}_o o ON o.customer_id = c.id",
    "CREATE VIEW {p}_lyon AS SELECT id, city FROM {p}_c WHERE city = 'Lyon'",
)
#: PostgreSQL's materialized views (the application refreshes them)
PG_VIEWS = (
    "CREATE MATERIALIZED VIEW {p}_mfilter AS SELECT id, city FROM {p}_c WHERE ssn LIKE '5%'",
    "CREATE MATERIALIZED VIEW {p}_mcity AS SELECT city, count(*) AS n FROM {p}_c GROUP BY city",
)
#: DuckDB's own syntax in a definition
DUCK_VIEWS = (
    "CREATE VIEW {p}_from_first AS FROM {p}_c WHERE ssn LIKE '5%'",
    "CREATE VIEW {p}_qualify AS SELECT id FROM {p}_c QUALIFY row_number() OVER (ORDER BY ssn) = 1",
    "CREATE VIEW {p}_exclude AS SELECT * EXCLUDE (ssn) FROM {p}_c WHERE ssn LIKE '5%'",
    "CREATE VIEW {p}_counted AS SELECT count(*) FILTER (WHERE ssn LIKE '5%') AS n FROM {p}_c",
    "CREATE VIEW {p}_lambda AS SELECT len(list_filter([ssn], lambda x: x LIKE '5%')) AS n FROM {p}_c",
    "CREATE VIEW {p}_paris AS FROM {p}_c WHERE city = 'Paris'",
)

#: each reads a view whose definition lets the SSN decide the rows, their number or order
LEAKS = {
    "filter": "SELECT id FROM {p}_filter",
    "order": "SELECT id FROM {p}_order",
    "group": "SELECT n FROM {p}_group ORDER BY n",
    "join": "SELECT id FROM {p}_join ORDER BY id",
    "view-over-view": "SELECT id FROM {p}_over",
    "in-subquery": "SELECT id FROM {p}_c WHERE id IN (SELECT id FROM {p}_filter) ORDER BY id",
}
PG_LEAKS = {"materialized": "SELECT id FROM {p}_mfilter"}
DUCK_LEAKS = {
    "from-first": "SELECT id FROM {p}_from_first",
    "qualify": "SELECT id FROM {p}_qualify",
    "star-exclude": "SELECT id FROM {p}_exclude",
    "aggregate-filter": "SELECT n FROM {p}_counted",
    "lambda": "SELECT sum(n) FROM {p}_lambda",
}

#: innocent reads: answered alike, and as the raw connection answers where nothing read is masked
LOOK_ALIKES = {
    "masked-passed-on": "SELECT id, ssn FROM {p}_plain ORDER BY id",
    "grouped-by-city": "SELECT city, n, top FROM {p}_city ORDER BY city",
    "joined-by-key": "SELECT id, full_name FROM {p}_pairs ORDER BY id",
    "filtered-on-amount": "SELECT id, city FROM {p}_rich ORDER BY id",
    "computed-masked": "SELECT id, who, k FROM {p}_tagged ORDER BY id",
    "no-masked-table": "SELECT id, customer_id FROM {p}_big ORDER BY id",
    "joined-by-key-clear": "SELECT id, city, amount FROM {p}_bought ORDER BY id",
}
PG_LOOK_ALIKES = {"materialized-city": "SELECT city, n FROM {p}_mcity ORDER BY city"}
DUCK_LOOK_ALIKES = {"from-first-on-city": "SELECT id, amount FROM {p}_paris ORDER BY id"}
#: those whose every column is clear: the governed answer is the raw one
EXACT = {"grouped-by-city", "filtered-on-amount", "no-masked-table", "joined-by-key-clear", "materialized-city",
         "from-first-on-city"}


def _setup(run: Callable[[str], Any], insert: Callable[[str, list[tuple[Any, ...]]], Any], p: str,
           secret: tuple[Any, ...], extra: tuple[str, ...] = ()) -> None:  # fmt: skip
    for sql in TABLES:
        run(sql.format(p=p))
    insert(f"{p}_c", [secret, *OTHERS])
    insert(f"{p}_o", ORDERS)
    for sql in (*VIEWS, *extra):
        run(sql.format(p=p))


# -- the three servers: per copy, what a raw and a governed connection see of each statement ----------------------


def _pg(unique: str, statements: list[str], governed: bool) -> list[list[Any]]:
    from tests._redteam import pg_connect

    out = []
    for v in ("a", "b"):
        p = f"r19vw_{unique}_{v}"
        raw = pg_connect("psycopg")
        conn = govern(raw, ATTACKER) if governed else raw
        try:
            out.append([repr(observe(conn, s.format(p=p))).replace(p, "P") for s in statements])
        finally:
            conn.close()
    return out


@pytest.fixture
def pg_copies(pg_conn: Any, unique: str) -> Iterator[str]:
    def insert(table: str, rows: list[tuple[Any, ...]]) -> None:
        with closing(pg_conn.cursor()) as cur:
            cur.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)

    for v, secret in (("a", ALICE), ("b", ANNA)):
        _setup(pg_conn.execute, insert, f"r19vw_{unique}_{v}", secret, PG_VIEWS)
    yield unique
    for v in ("a", "b"):
        for t in ("c", "o"):
            pg_conn.execute(f"DROP TABLE IF EXISTS r19vw_{unique}_{v}_{t} CASCADE")


def _maria(kw: dict[str, Any], unique: str, statements: list[str], governed: bool) -> list[list[Any]]:
    import pymysql

    out = []
    for v in ("a", "b"):
        p = f"r19vw_{unique}_{v}"
        raw = pymysql.connect(autocommit=True, **kw)
        conn = govern(raw, ATTACKER) if governed else raw
        try:
            out.append([repr(observe(conn, s.format(p=p))).replace(p, "P") for s in statements])
        finally:
            conn.close()
    return out


@pytest.fixture
def maria_copies(mysql_conn: Any, unique: str) -> Iterator[str]:
    def run(sql: str) -> None:
        with closing(mysql_conn.cursor()) as cur:
            cur.execute(sql)

    def insert(table: str, rows: list[tuple[Any, ...]]) -> None:
        with closing(mysql_conn.cursor()) as cur:
            cur.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)

    for v, secret in (("a", ALICE), ("b", ANNA)):
        _setup(run, insert, f"r19vw_{unique}_{v}", secret)
    yield unique
    for v in ("a", "b"):
        p = f"r19vw_{unique}_{v}"
        run("DROP VIEW IF EXISTS " + ", ".join(sql.split()[2].format(p=p) for sql in VIEWS))
        run(f"DROP TABLE IF EXISTS {p}_c, {p}_o")


def _duck(statements: list[str], governed: bool) -> list[list[Any]]:
    duckdb = pytest.importorskip("duckdb")
    out = []
    for secret in (ALICE, ANNA):
        raw = duckdb.connect(":memory:")

        def insert(table: str, rows: list[tuple[Any, ...]], raw: Any = raw) -> None:
            raw.executemany(f"INSERT INTO {table} VALUES ({', '.join(['?'] * len(rows[0]))})", [list(r) for r in rows])

        _setup(raw.execute, insert, "r19vw_d", secret, DUCK_VIEWS)
        conn = govern(raw, ATTACKER) if governed else raw
        out.append([repr(_duck_observe(conn, s.format(p="r19vw_d"))).replace("r19vw_d", "P") for s in statements])
        conn.close()
    return out


def _runs(db: str, request: pytest.FixtureRequest, statements: list[str], governed: bool) -> list[list[Any]]:
    if db == "postgres":
        return _pg(request.getfixturevalue("pg_copies"), statements, governed)
    if db == "mariadb":
        return _maria(request.getfixturevalue("mysql_kw"), request.getfixturevalue("maria_copies"), statements,
                      governed)  # fmt: skip
    return _duck(statements, governed)


DATABASES = ["postgres", "mariadb", "duckdb"]


def _leaks(db: str) -> dict[str, str]:
    return {**LEAKS, **(PG_LEAKS if db == "postgres" else DUCK_LEAKS if db == "duckdb" else {})}


def _look_alikes(db: str) -> dict[str, str]:
    return {**LOOK_ALIKES, **(PG_LOOK_ALIKES if db == "postgres" else DUCK_LOOK_ALIKES if db == "duckdb" else {})}


# -- finding: an application's view decides its rows on a masked value ------------------------------------------------


@pytest.mark.parametrize("db", DATABASES)
def test_a_view_is_judged_as_the_query_it_is_defined_by(db: str, request: pytest.FixtureRequest) -> None:
    """Found in round 19: the view's own WHERE, ORDER BY, GROUP BY, join (and those of a view it reads) ran on the
    raw SSN; the governed connection answered as the raw one did. Each read is now refused alike, naming the view
    (decision 0382)."""
    names, statements = zip(*_leaks(db).items(), strict=True)
    raw = _runs(db, request, list(statements), governed=False)
    differ = [n for n, a, b in zip(names, raw[0], raw[1], strict=True) if a != b]
    assert differ == list(names), (differ, raw)  # the oracle, unprotected: every read tells the copies apart
    a, b = _runs(db, request, list(statements), governed=True)
    assert a == b, list(zip(names, a, b, strict=True))
    _no_clear_value(a)
    for name, seen in zip(names, a, strict=True):
        assert seen[1:].startswith("refused: ") and "the definition of view" in seen, (name, seen)


@pytest.mark.parametrize("db", DATABASES)
def test_view_look_alikes_run_exactly(db: str, request: pytest.FixtureRequest) -> None:
    """Views filtered, grouped, joined or sorted on clear columns, a view over a table without masked columns, and
    views passing masked columns on or computing values from them read as before: alike over both copies, exact
    where nothing read is masked."""
    names, statements = zip(*_look_alikes(db).items(), strict=True)
    raw = _runs(db, request, list(statements), governed=False)
    a, b = _runs(db, request, list(statements), governed=True)
    assert a == b, list(zip(names, a, b, strict=True))
    _no_clear_value(a)
    for name, seen, unprotected in zip(names, a, raw[0], strict=True):
        assert not seen[1:].startswith(("refused", "Programming", "Operational")), (name, seen)
        if name in EXACT:
            assert seen == unprotected, (name, seen, unprotected)


def test_a_view_is_judged_through_asyncpg(pg_copies: str) -> None:
    """The asyncpg connection reads the definition with ``await`` before judging (decision 0382): refused alike,
    the look-alikes exact."""
    asyncpg = pytest.importorskip("asyncpg")
    from tests.conftest import PG_DSN

    parts = dict(x.split("=", 1) for x in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    statements = [LEAKS["filter"], LEAKS["view-over-view"], PG_LEAKS["materialized"], LOOK_ALIKES["grouped-by-city"],
                  LOOK_ALIKES["computed-masked"]]  # fmt: skip

    async def one(v: str, governed: bool) -> list[Any]:
        p = f"r19vw_{pg_copies}_{v}"
        raw = await asyncpg.connect(url)
        conn = govern(raw, ATTACKER) if governed else raw
        seen: list[Any] = []
        try:
            for sql in statements:
                try:
                    seen.append([tuple(r) for r in await conn.fetch(sql.format(p=p))])
                except governed_db.GuardrailViolation as e:
                    seen.append(f"refused: {e}".replace(p, "P"))
        finally:
            await conn.close()
        return seen

    raw = [asyncio.run(one(v, False)) for v in ("a", "b")]
    assert raw[0][:3] != raw[1][:3], raw
    a, b = (asyncio.run(one(v, True)) for v in ("a", "b"))
    assert a == b, (a, b)
    _no_clear_value(a)
    assert all(str(x).startswith("refused: ") and "in the definition of view" in str(x) for x in a[:3]), a
    assert a[3] == raw[0][3], (a, raw)
    assert a[4] == [(i, "[PERSON_NAME]", a[4][0][2]) for i in range(1, 6)], a


def test_a_view_whose_definition_cannot_be_read_is_refused(mysql_kw: dict[str, Any], maria_copies: str) -> None:
    """MariaDB shows a view's definition only to its definer or a user with ``SHOW VIEW``: to another user
    ``VIEW_DEFINITION`` is empty, and the view was read as a table (the SSN picked its rows). Such a view is now
    refused, saying why and what to do; a plain table stays readable (decision 0382)."""
    import pymysql

    user = f"r19vw_{maria_copies}"[:32]
    admin = pymysql.connect(autocommit=True, **mysql_kw)
    db = mysql_kw.get("database") or mysql_kw.get("db") or "test"
    try:
        with closing(admin.cursor()) as cur:
            cur.execute(f"CREATE USER '{user}'@'%'")
            cur.execute(f"CREATE USER '{user}'@'localhost'")
            for v in ("a", "b"):
                for t in ("c", "filter", "city"):
                    for host in ("%", "localhost"):
                        cur.execute(f"GRANT SELECT ON {db}.r19vw_{maria_copies}_{v}_{t} TO '{user}'@'{host}'")
        kw = {**mysql_kw, "user": user, "password": ""}
        seen = []
        for v in ("a", "b"):
            p = f"r19vw_{maria_copies}_{v}"
            conn = govern(pymysql.connect(autocommit=True, **kw), ATTACKER)
            try:
                seen.append([repr(observe(conn, sql.format(p=p))).replace(p, "P") for sql in (
                    LEAKS["filter"], "SELECT n FROM {p}_city", "SELECT id, city FROM {p}_c ORDER BY id",
                )])  # fmt: skip
            finally:
                conn.close()
    finally:
        with closing(admin.cursor()) as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%', '{user}'@'localhost'")
        admin.close()
    a, b = seen
    assert a == b, (a, b)
    assert "the definition of view" in a[0] and "could not be read" in a[0] and "SHOW VIEW" in a[0], a
    assert "refused" in a[1] and "SHOW VIEW" in a[1], a  # fail closed: nothing says what the view reads
    assert a[2] == repr((["id", "city"], [(1, "Paris"), (2, "Lyon"), (3, "Nice"), (4, "Lyon"), (5, "Paris")])), a


def test_a_write_through_a_view_is_judged_by_its_definition(pg_copies: str) -> None:
    """Found in round 19: PostgreSQL writes through a simple view to its table, under the view's own WHERE:
    ``UPDATE v SET city = 'X' WHERE id = 1`` over ``WHERE ssn LIKE '5%'`` changed one row over one copy and none over
    the other (its row count). Refused now, as the view's read is; a write through a view filtering on a clear
    column runs (decision 0382)."""
    from tests._redteam import pg_connect

    statements = [
        "UPDATE {p}_filter SET city = 'X' WHERE id = 1",
        "DELETE FROM {p}_filter WHERE id = 1",
        "UPDATE {p}_lyon SET city = 'Lyon' WHERE id = 2",
    ]

    def rowcounts(governed: bool) -> list[list[Any]]:
        out = []
        for v in ("a", "b"):
            p = f"r19vw_{pg_copies}_{v}"
            raw = pg_connect("psycopg", autocommit=False)
            conn = govern(raw, ATTACKER) if governed else raw
            seen: list[Any] = []
            try:
                for sql in statements:
                    try:
                        seen.append(conn.cursor().execute(sql.format(p=p)).rowcount)
                    except governed_db.GuardrailViolation as e:
                        seen.append(f"refused: {e}".replace(p, "P"))
                    finally:
                        conn.rollback()
            finally:
                conn.close()
            out.append(seen)
        return out

    raw = rowcounts(governed=False)
    assert raw[0][:2] != raw[1][:2], raw
    a, b = rowcounts(governed=True)
    assert a == b, (a, b)
    assert all(str(x).startswith("refused: ") and "in the definition of view" in str(x) for x in a[:2]), a
    assert a[2] == 1, a


def test_a_view_is_judged_through_aiomysql(mysql_kw: dict[str, Any], maria_copies: str) -> None:
    """aiomysql reads the definition with ``await`` in the warm-up async drivers share (decision 0382)."""
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}
    statements = [LEAKS["filter"], LEAKS["view-over-view"], LOOK_ALIKES["grouped-by-city"]]

    async def one(v: str, governed: bool) -> list[Any]:
        p = f"r19vw_{maria_copies}_{v}"
        raw = await aiomysql.connect(autocommit=True, **kw)
        conn = govern(raw, ATTACKER) if governed else raw
        seen: list[Any] = []
        try:
            cur = await conn.cursor()
            for sql in statements:
                try:
                    await cur.execute(sql.format(p=p))
                    seen.append([tuple(r) for r in await cur.fetchall()])
                except governed_db.GuardrailViolation as e:
                    seen.append(f"refused: {e}".replace(p, "P"))
        finally:
            conn.close()
        return seen

    raw = [asyncio.run(one(v, False)) for v in ("a", "b")]
    assert raw[0][:2] != raw[1][:2], raw
    a, b = (asyncio.run(one(v, True)) for v in ("a", "b"))
    assert a == b, (a, b)
    assert all(str(x).startswith("refused: ") and "in the definition of view" in str(x) for x in a[:2]), a
    assert a[2] == raw[0][2], (a, raw)


# -- found reviewing 0382: views deeper than masking follows; schemas named like a server's own ------------------


def test_a_view_deeper_than_masking_follows_is_refused(pg_conn: Any, pg_copies: str) -> None:
    """``SELECT id FROM v4`` over v1..v3 ``SELECT id, city FROM`` the one before and v1 filtering on the SSN
    answered ``[(1,)]`` over one copy and ``[]`` over the other: past three views the definition was no longer
    followed and the rest was read as tables. Now refused alike; a chain of three still is judged and refused by
    what the first one does, and a chain of clear views over the clear orders table runs."""
    for v in ("a", "b"):
        p = f"r19vw_{pg_copies}_{v}"
        pg_conn.execute(f"CREATE VIEW {p}_d1 AS SELECT id, city FROM {p}_filter")
        for i in range(2, 6):
            pg_conn.execute(f"CREATE VIEW {p}_d{i} AS SELECT id, city FROM {p}_d{i - 1}")
        pg_conn.execute(f"CREATE VIEW {p}_k1 AS SELECT id, amount FROM {p}_o")
        for i in range(2, 6):
            pg_conn.execute(f"CREATE VIEW {p}_k{i} AS SELECT id, amount FROM {p}_k{i - 1}")
    deep = ["SELECT id FROM {p}_d3 ORDER BY id", "SELECT id FROM {p}_d4 ORDER BY id", "SELECT id FROM {p}_d5 ORDER BY id"]
    raw = _pg(pg_copies, deep, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _pg(pg_copies, deep, governed=True)
    assert a == b and all("refused" in s for s in a), (a, b)
    clear = ["SELECT id, amount FROM {p}_k5 ORDER BY id"]
    assert _pg(pg_copies, clear, governed=True) == _pg(pg_copies, clear, governed=False)


@pytest.mark.parametrize("schema", ["mysql", '"Pg_Catalog"', "sys"])
def test_a_view_in_a_schema_named_like_a_system_one_is_judged(pg_conn: Any, pg_copies: str, schema: str) -> None:
    """``schema.system_view`` compared the written schema, lower-cased, with one list for every server: on
    PostgreSQL a view of the caller's in a schema named ``mysql``, ``sys`` or ``"Pg_Catalog"`` was taken for the
    server's own and not judged (``SELECT id FROM mysql.v`` over ``WHERE ssn LIKE '5%'`` told copies apart). The
    schema is now the one the catalog resolves, compared exactly with PostgreSQL's own."""
    pg_conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    try:
        pg_conn.execute(f"CREATE SCHEMA {schema}")
        for v in ("a", "b"):
            p = f"r19vw_{pg_copies}_{v}"
            pg_conn.execute(f"CREATE VIEW {schema}.{p}_sv AS SELECT id, city FROM {p}_c WHERE ssn LIKE '5%'")
        statements = [f"SELECT id FROM {schema}.{{p}}_sv ORDER BY id"]
        raw = _pg(pg_copies, statements, governed=False)
        assert raw[0] != raw[1], raw  # the oracle, unprotected
        a, b = _pg(pg_copies, statements, governed=True)
        assert a == b and "refused" in a[0], (a, b)
        system = ["SELECT count(*) > 0 FROM pg_catalog.pg_views WHERE viewname = 'pg_tables'"]
        assert _pg(pg_copies, system, governed=True) == _pg(pg_copies, system, governed=False)
    finally:
        pg_conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
