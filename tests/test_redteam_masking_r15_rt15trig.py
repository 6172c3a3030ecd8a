"""Red-team round 15 (helper rt15trig): stored code on PostgreSQL and MariaDB in ``staging``.

Decision 0311 refused, on SQLite and DuckDB, a trigger whose text names a table with masked columns. In
``staging`` the ``stored-code`` rule only warns, and the server databases' triggers, functions, procedures, rules
and events ran later on the raw rows, out of masking's sight: ``CREATE FUNCTION f() ... INSERT INTO log VALUES
(NEW.ssn)`` + ``CREATE TRIGGER ... AFTER UPDATE ON customers ... EXECUTE FUNCTION f()`` + an allowed ``UPDATE
customers SET city = 'X'`` put the SSN into the agent's table, where ``100-99-0000`` (which no scan recognises)
came back in clear and ``536-22-8726`` as ``[US_SSN]`` -- a right-vs-wrong oracle. A rule (``DO ALSO INSERT ...
new.ssn``), a function that reads the table, and a MariaDB trigger did alike. Every statement that creates stored
code naming a table with columns masked for the identity (or building its statements at run time) is now refused
by masking whatever the environment's DDL policy (decision 0319); stored code over the agent's own clear tables
still runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, observe, pg_connect

AGENT = governed_db.Identity("curious-agent", kind="agent")
SECRETS = ("536-22-8726", "100-99-0000")  # the scan recognises the first, not the second


def _drop_pg(admin: Any, prefix: str) -> None:
    for name in (f"{prefix}_c", f"{prefix}_log", f"{prefix}_own"):
        admin.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
    for fn in ("f", "g", "h", "k"):
        admin.execute(f"DROP FUNCTION IF EXISTS {prefix}_{fn}() CASCADE")


PG_ROUTES = {
    "trigger function": [
        "CREATE FUNCTION {p}_f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO {p}_log VALUES "
        "(NEW.ssn); RETURN NEW; END $$",
        "CREATE TRIGGER {p}_t AFTER UPDATE ON {p}_c FOR EACH ROW EXECUTE FUNCTION {p}_f()",
        "UPDATE {p}_c SET city = 'X' WHERE id = 1",
    ],
    "rule": [
        "CREATE RULE {p}_r AS ON UPDATE TO {p}_c DO ALSO INSERT INTO {p}_log VALUES (new.ssn)",
        "UPDATE {p}_c SET city = 'X' WHERE id = 1",
    ],
    "function reading the table": [
        "CREATE FUNCTION {p}_g() RETURNS void LANGUAGE sql AS 'INSERT INTO {p}_log SELECT ssn FROM {p}_c WHERE id = 1'",
        "SELECT {p}_g()",
    ],
    # the table's name spelled with a Unicode escape, inside an E-string body: no word of the text is the name
    "escaped name": [
        r"""CREATE FUNCTION {p}_g() RETURNS void LANGUAGE sql AS E'INSERT INTO {p}_log SELECT ssn FROM U&"{p}\\005fc"'""",
        "SELECT {p}_g()",
    ],
    "application view": [
        "CREATE FUNCTION {p}_g() RETURNS void LANGUAGE sql AS 'INSERT INTO {p}_log SELECT code FROM {p}_av WHERE id = 1'",
        "SELECT {p}_g()",
    ],
    "dynamic statement": [
        "CREATE FUNCTION {p}_h() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'INSERT INTO {p}_log SELECT ssn "
        "FROM ' || '{p}' || '_c WHERE id = 1'; END $$",
        "SELECT {p}_h()",
    ],
}


def _pg_run(secret: str, route: str, environment: str | None, p: str) -> tuple[list[Any], list[Any], Any]:
    """What the caller sees of ``route`` and of its log table (``environment`` None: the raw connection), and what
    stored code the database holds afterwards."""
    admin = pg_connect("psycopg")
    try:
        _drop_pg(admin, p)
        admin.execute(f"CREATE TABLE {p}_c (id int primary key, full_name text, ssn text, city text)")
        admin.execute(
            f"INSERT INTO {p}_c VALUES (1, 'Alice Smith', %s, 'Paris'), (2, 'Ivan Petrov', '219-45-1234', 'Lyon')",
            (secret,),
        )
        admin.execute(f"CREATE VIEW {p}_av AS SELECT id, ssn AS code FROM {p}_c")  # the application's view
        raw = pg_connect("psycopg")
        conn = raw if environment is None else govern(raw, AGENT, environment=environment)
        seen = [observe(conn, f"CREATE TABLE {p}_log (v text)")]
        seen += [observe(conn, sql.format(p=p)) for sql in PG_ROUTES[route]]
        log = observe(conn, f"SELECT v FROM {p}_log")
        conn.close()
        stored = admin.execute(
            "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname LIKE %s), (SELECT count(*) FROM pg_rewrite WHERE "
            "rulename LIKE %s), (SELECT count(*) FROM pg_proc WHERE proname IN (%s, %s)), (SELECT count(*) FROM "
            f"{p}_log), (SELECT string_agg(city, ',' ORDER BY id) FROM {p}_c)",
            (f"{p}_t%", f"{p}_r%", f"{p}_g", f"{p}_h"),
        ).fetchall()
        return [str(s).replace(secret, "S") for s in seen], log, stored
    finally:
        _drop_pg(admin, p)
        admin.close()


@pytest.mark.parametrize("route", sorted(PG_ROUTES))
def test_postgresql_stored_code_reads_no_masked_value(pg_dsn: str, route: str, unique: str) -> None:
    p = f"rt15trig_{unique}"
    raw = [_pg_run(s, route, None, p)[1] for s in SECRETS]
    assert raw[0] != raw[1] and SECRETS[1] in repr(raw[1]), raw  # the oracle, unprotected
    a, b = (_pg_run(s, route, "staging", p) for s in SECRETS)
    assert a[:2] == b[:2], (a, b)
    assert any("masked-column-copy" in s for s in a[0]), a[0]
    assert not any(s in repr(x) for s in SECRETS for x in (a, b)), (a, b)
    # the database is the ground truth: no stored code over the masked table, nothing copied
    assert a[2][0][:2] == (0, 0) and a[2][0][3] == 0, a[2]
    assert b[2][0][:2] == (0, 0) and b[2][0][3] == 0, b[2]


def test_postgresql_stored_code_over_own_clear_tables_runs(pg_dsn: str, unique: str) -> None:
    p = f"rt15trig_{unique}"
    admin = pg_connect("psycopg")
    conn = govern(pg_connect("psycopg"), AGENT, environment="staging")
    try:
        _drop_pg(admin, p)
        for sql in (
            f"CREATE TABLE {p}_own (id int, city text)",
            f"CREATE TABLE {p}_log (v text)",
            f"CREATE FUNCTION {p}_k() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO {p}_log VALUES "
            "(NEW.city); RETURN NEW; END $$",
            f"CREATE TRIGGER {p}_t AFTER INSERT ON {p}_own FOR EACH ROW EXECUTE FUNCTION {p}_k()",
            f"CREATE RULE {p}_r AS ON UPDATE TO {p}_own DO ALSO INSERT INTO {p}_log VALUES ('rule:' || new.city)",
            f"INSERT INTO {p}_own VALUES (1, 'Paris')",
            f"UPDATE {p}_own SET city = 'Lyon' WHERE id = 1",
        ):
            conn.cursor().execute(sql)
        assert admin.execute(f"SELECT v FROM {p}_log ORDER BY v").fetchall() == [("Paris",), ("rule:Lyon",)]
    finally:
        conn.close()
        _drop_pg(admin, p)
        admin.close()


# -- MariaDB --------------------------------------------------------------------------------------------------

MARIA_ROUTES = {
    "trigger": [
        "CREATE TRIGGER {p}_t AFTER UPDATE ON {p}_c FOR EACH ROW INSERT INTO {p}_log VALUES (NEW.ssn)",
        "UPDATE {p}_c SET city = 'X' WHERE id = 1",
    ],
    # the definer's words came between CREATE and TRIGGER: not even flagged as stored code before (decision 0319)
    "definer trigger": [
        "CREATE DEFINER = CURRENT_USER TRIGGER {p}_t AFTER UPDATE ON {p}_c FOR EACH ROW INSERT INTO {p}_log "
        "VALUES (NEW.ssn)",
        "UPDATE {p}_c SET city = 'X' WHERE id = 1",
    ],
    "procedure": [
        "CREATE PROCEDURE {p}_pr() INSERT INTO {p}_log SELECT ssn FROM {p}_c WHERE id = 1",
        "CALL {p}_pr()",
    ],
    "dynamic procedure": [
        "CREATE PROCEDURE {p}_pr() BEGIN SET @q = CONCAT('INSERT INTO {p}_log SELECT ssn FROM ', '{p}', '_c'); "
        "PREPARE s FROM @q; EXECUTE s; END",
        "CALL {p}_pr()",
    ],
}


@pytest.fixture
def maria(mysql_kw: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield mysql_kw


def _drop_maria(cur: Any, p: str) -> None:
    cur.execute(f"DROP PROCEDURE IF EXISTS {p}_pr")
    cur.execute(f"DROP EVENT IF EXISTS {p}_ev")
    cur.execute(f"DROP EVENT IF EXISTS {p}_ev2")
    for t in ("c", "log", "own"):
        cur.execute(f"DROP TABLE IF EXISTS {p}_{t}")  # its triggers go with it


def _maria_run(kw: dict[str, Any], secret: str, route: str, environment: str | None, p: str) -> Any:
    import pymysql

    admin = pymysql.connect(autocommit=True, **kw)
    try:
        with closing(admin.cursor()) as cur:
            _drop_maria(cur, p)
            cur.execute(f"CREATE TABLE {p}_c (id int primary key, full_name varchar(60), ssn varchar(20), "
                        "city varchar(20))")
            cur.execute(f"INSERT INTO {p}_c VALUES (1, 'Alice Smith', %s, 'Paris'), "
                        "(2, 'Ivan Petrov', '219-45-1234', 'Lyon')", (secret,))
        raw = pymysql.connect(autocommit=True, **kw)
        conn = raw if environment is None else govern(raw, AGENT, environment=environment)
        seen = [observe(conn, f"CREATE TABLE {p}_log (v varchar(40))")]
        seen += [observe(conn, sql.format(p=p)) for sql in MARIA_ROUTES[route]]
        log = observe(conn, f"SELECT v FROM {p}_log")
        conn.close()
        with closing(admin.cursor()) as cur:
            cur.execute(
                "SELECT (SELECT count(*) FROM information_schema.TRIGGERS WHERE TRIGGER_NAME LIKE %s), "
                "(SELECT count(*) FROM information_schema.ROUTINES WHERE ROUTINE_NAME = %s), "
                f"(SELECT count(*) FROM {p}_log)",
                (f"{p}_t%", f"{p}_pr"),
            )
            stored = cur.fetchall()
        return [str(s).replace(secret, "S") for s in seen], log, stored
    finally:
        with closing(admin.cursor()) as cur:
            _drop_maria(cur, p)
        admin.close()


@pytest.mark.parametrize("route", sorted(MARIA_ROUTES))
def test_mariadb_stored_code_reads_no_masked_value(maria: dict[str, Any], route: str, unique: str) -> None:
    p = f"rt15trig_{unique}"
    raw = [_maria_run(maria, s, route, None, p)[1] for s in SECRETS]
    assert raw[0] != raw[1] and SECRETS[1] in repr(raw[1]), raw  # the oracle, unprotected
    a, b = (_maria_run(maria, s, route, "staging", p) for s in SECRETS)
    assert a[:2] == b[:2], (a, b)
    assert any("masked-column-copy" in s for s in a[0]), a[0]
    assert not any(s in repr(x) for s in SECRETS for x in (a, b)), (a, b)
    assert a[2] == b[2] == ((0, 0, 0),), (a[2], b[2])  # nothing stored over the masked table, nothing copied


def test_mariadb_stored_code_over_own_clear_tables_runs(maria: dict[str, Any], unique: str) -> None:
    import pymysql

    p = f"rt15trig_{unique}"
    admin = pymysql.connect(autocommit=True, **maria)
    conn = govern(pymysql.connect(autocommit=True, **maria), AGENT, environment="staging")
    try:
        with closing(admin.cursor()) as cur:
            _drop_maria(cur, p)
        for sql in (
            f"CREATE TABLE {p}_own (id int, city varchar(20))",
            f"CREATE TABLE {p}_log (v varchar(40))",
            f"CREATE TRIGGER {p}_t AFTER INSERT ON {p}_own FOR EACH ROW INSERT INTO {p}_log VALUES (NEW.city)",
            f"CREATE PROCEDURE {p}_pr() INSERT INTO {p}_own VALUES (2, 'Lyon')",
            f"INSERT INTO {p}_own VALUES (1, 'Paris')",
        ):
            conn.cursor().execute(sql)  # (a CALL waits for an approval in staging: dynamic-sql)
        with closing(admin.cursor()) as cur:
            cur.execute(f"SELECT v FROM {p}_log ORDER BY v")
            assert cur.fetchall() == (("Paris",),)
            cur.execute("SELECT count(*) FROM information_schema.ROUTINES WHERE ROUTINE_NAME = %s", (f"{p}_pr",))
            assert cur.fetchall() == ((1,),)
    finally:
        conn.close()
        with closing(admin.cursor()) as cur:
            _drop_maria(cur, p)
        admin.close()


def test_mariadb_events_over_a_masked_table_are_refused(maria: dict[str, Any], unique: str) -> None:
    """An event runs its body later on the raw rows (the test server's scheduler is off, so only the refusal and
    the catalog are checked): one whose body names the masked table is refused, created or altered, with or
    without a definer; one over the agent's own table is created."""
    import pymysql

    p = f"rt15trig_{unique}"
    admin = pymysql.connect(autocommit=True, **maria)
    conn = govern(pymysql.connect(autocommit=True, **maria), AGENT, environment="staging")
    try:
        with closing(admin.cursor()) as cur:
            _drop_maria(cur, p)
            cur.execute(f"CREATE TABLE {p}_c (id int primary key, ssn varchar(20), city varchar(20))")
            cur.execute(f"INSERT INTO {p}_c VALUES (1, '536-22-8726', 'Paris'), (2, '219-45-1234', 'Lyon')")
        conn.cursor().execute(f"CREATE TABLE {p}_log (v varchar(40))")
        conn.cursor().execute(f"CREATE EVENT {p}_ev2 ON SCHEDULE EVERY 1 DAY DISABLE DO INSERT INTO {p}_log "
                              "VALUES ('tick')")
        seen = [observe(conn, sql.format(p=p)) for sql in (
            "CREATE EVENT {p}_ev ON SCHEDULE EVERY 1 DAY DISABLE DO INSERT INTO {p}_log SELECT ssn FROM {p}_c",
            "CREATE DEFINER = CURRENT_USER EVENT {p}_ev ON SCHEDULE EVERY 1 DAY DISABLE DO INSERT INTO {p}_log "
            "SELECT ssn FROM {p}_c",
            "ALTER EVENT {p}_ev2 DO INSERT INTO {p}_log SELECT ssn FROM {p}_c",
        )]
        assert all("masked-column-copy" in str(s) for s in seen), seen
        with closing(admin.cursor()) as cur:
            cur.execute("SELECT EVENT_NAME, EVENT_DEFINITION FROM information_schema.EVENTS WHERE EVENT_NAME LIKE %s",
                        (f"{p}_ev%",))
            assert cur.fetchall() == ((f"{p}_ev2", f"INSERT INTO {p}_log VALUES ('tick')"),)
    finally:
        conn.close()
        with closing(admin.cursor()) as cur:
            _drop_maria(cur, p)
        admin.close()


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_async_postgresql_stored_code_is_judged_by_its_tables(pg_dsn: str, driver: str, unique: str) -> None:
    """An async connection reads the catalog with ``await`` before a statement is judged, and judging DDL forgets
    the tables read: the words of stored code are looked up (and their tables classified) beforehand, so a function
    reading the masked table is refused and one over the agent's own clear table is created (not refused for want
    of a catalog, nor let through)."""
    import asyncio

    p = f"rt15trig_{unique}"
    admin = pg_connect("psycopg")

    async def attempt_both() -> list[str]:
        if driver == "psycopg":
            import psycopg

            raw: Any = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
        else:
            asyncpg = pytest.importorskip("asyncpg")
            raw = await asyncpg.connect(**_asyncpg_kw(pg_dsn))
        conn = govern(raw, AGENT, environment="staging")
        out = []
        try:
            for sql in (
                f"CREATE FUNCTION {p}_g() RETURNS text LANGUAGE sql AS 'SELECT ssn FROM {p}_c WHERE id = 1'",
                f"CREATE FUNCTION {p}_k() RETURNS text LANGUAGE sql AS 'SELECT city FROM {p}_own WHERE id = 1'",
            ):
                try:
                    if driver == "psycopg":
                        await conn.cursor().execute(sql)
                    else:
                        await conn.execute(sql)
                    out.append("created")
                except governed_db.GuardrailViolation as e:
                    out.append(f"refused: {e}")
        finally:
            await raw.close()
        return out

    try:
        _drop_pg(admin, p)
        admin.execute(f"CREATE TABLE {p}_c (id int primary key, full_name text, ssn text, city text)")
        admin.execute(f"INSERT INTO {p}_c VALUES (1, 'Alice Smith', '536-22-8726', 'Paris')")
        admin.execute(f"CREATE TABLE {p}_own (id int, city text)")
        seen = asyncio.run(attempt_both())
        assert "masked-column-copy" in seen[0] and f"{p}_c" in seen[0], seen
        assert seen[1] == "created", seen
        made = admin.execute("SELECT proname FROM pg_proc WHERE proname IN (%s, %s)", (f"{p}_g", f"{p}_k")).fetchall()
        assert made == [(f"{p}_k",)], made
    finally:
        _drop_pg(admin, p)
        admin.close()


def _asyncpg_kw(dsn: str) -> dict[str, Any]:
    parts = dict(kv.split("=", 1) for kv in dsn.split())
    return {"host": parts.get("host"), "port": int(parts.get("port", 5432)), "database": parts.get("dbname"),
            "user": parts.get("user")}
