"""Red-team round 8 through the integration and async surfaces: what reaches the caller by a route other than a
governed statement's rows — the async sqlite driver's fetches (decision 0238) and the library's own log lines and
fault messages (decision 0239).

An agent identity in production with zero configuration. Each finding shows the leak (or the oracle) on the raw
connection, that the governed one observes a right and a wrong guess alike (or no clear value), and that a
look-alike that reveals nothing still runs with exact results.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, leaked

ROWS = [(1, "Alice Smith", "536-22-8726", "Paris"), (2, "Ivan Petrov", "219-45-1234", "Lyon")]
SECRETS = ("Alice", "Smith", "536-22", "8726", "Ivan", "219-45")
FF = "CAST(x'ff' AS TEXT)"


def _db(path: Path, rows: list[tuple[Any, ...]] = ROWS) -> Path:
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE customers (id integer primary key, full_name text, ssn text, city text)")
    raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", rows)
    raw.commit()
    raw.close()
    return path


# -- aiosqlite: fetch-time decoding (decision 0238) ----------------------------------------------------------
aiosqlite = pytest.importorskip("aiosqlite")


@pytest.fixture
async def apair(tmp_path: Path) -> AsyncIterator[tuple[Any, Any, Path]]:
    path = _db(tmp_path / "r8.db")
    raw = await aiosqlite.connect(path)
    gov = govern(await aiosqlite.connect(path))
    yield raw, gov, path
    await raw.close()
    await gov.close()


async def _outcome(conn: Any, sql: str, exit: str = "fetchall") -> Any:
    """What the attacker sees through one exit: the rows, or the error's class and message."""
    try:
        if exit == "execute_fetchall":
            return "rows", [tuple(r) for r in await conn.execute_fetchall(sql)]
        cur = await conn.execute(sql)
        if exit == "fetchone":
            rows = []
            while (row := await cur.fetchone()) is not None:
                rows.append(row)
        elif exit == "fetchmany":
            rows = [*(await cur.fetchmany(1)), *(await cur.fetchmany(size=5))]
        elif exit == "iterate":
            rows = [r async for r in cur]
        else:
            rows = await cur.fetchall()
        return "rows", [tuple(r) for r in rows]
    except governed_db.GuardrailViolation as e:
        return "refused", str(e)
    except sqlite3.Error as e:
        return "error", type(e).__name__, str(e)


EXITS = ["fetchall", "fetchone", "fetchmany", "iterate", "execute_fetchall"]


@pytest.mark.anyio
@pytest.mark.parametrize("exit", EXITS)
async def test_aiosqlite_decoding_is_no_oracle(apair: tuple[Any, Any, Path], exit: str) -> None:
    """``ltrim('5' || x'ff', substr(ssn, 1, 1) || x'ff')`` is valid UTF-8 only when the first SSN character is 5:
    sqlite3 fails the fetch for every wrong guess. The sync sqlite3 cursor fetched such results leniently
    (decision 0191) but the aiosqlite one did not, so whether the fetch failed told the character. Now the right
    and the wrong guess come back alike, masked, by every exit."""
    raw, gov, _ = apair
    sql = f"SELECT id, ltrim('{{g}}' || {FF}, substr(ssn, 1, 1) || {FF}) AS v, city FROM customers WHERE id = 1"
    right, wrong = sql.format(g="5"), sql.format(g="4")
    assert (await _outcome(raw, right, exit))[0] != (await _outcome(raw, wrong, exit))[0]  # the oracle is real
    seen_right, seen_wrong = await _outcome(gov, right, exit), await _outcome(gov, wrong, exit)
    assert seen_right == seen_wrong == ("rows", [(1, "[US_SSN]", "Paris")]), (
        seen_right,
        seen_wrong,
    )


@pytest.mark.anyio
@pytest.mark.parametrize("exit", EXITS)
async def test_aiosqlite_fetch_errors_quote_no_masked_value(apair: tuple[Any, Any, Path], exit: str) -> None:
    """sqlite3 quotes the cell it cannot decode (``... with text '536-22-8726\\ufffd'``); on aiosqlite the fetch
    error reached the caller as it was. A computed masked value made undecodable now comes back masked, and a
    masked column's own stored bytes that cannot be decoded still fail — with the value blanked."""
    raw, gov, _ = apair
    sql = f"SELECT ssn || {FF} AS s FROM customers WHERE id = 1"
    truth = await _outcome(raw, sql, exit)
    assert truth[0] == "error" and "536-22-8726" in truth[2]
    seen = await _outcome(gov, sql, exit)
    assert seen == ("rows", [("[US_SSN]",)]) and not leaked(seen, SECRETS), seen
    # the stored value itself undecodable: it fails whatever the statement (no guess steers it), scrubbed
    await raw.execute(f"UPDATE customers SET ssn = ssn || {FF} WHERE id = 2")
    await raw.commit()
    plain = "SELECT id, ssn FROM customers ORDER BY id"
    assert "219-45-1234" in str(await _outcome(raw, plain, exit))
    seen = await _outcome(gov, plain, exit)
    assert seen[0] == "error" and seen[1] == "OperationalError" and not leaked(seen, SECRETS), seen
    assert gov.text_factory is str


@pytest.mark.anyio
@pytest.mark.parametrize("exit", EXITS)
async def test_aiosqlite_undecodable_unmasked_cell_still_fails(tmp_path: Path, exit: str) -> None:
    """Look-alike: an undecodable value of a column nothing masks fails as sqlite3 fails, beside masked
    columns too; valid text, computed or not, decodes as text with exact results."""
    rows = [(i, f"Person {i}", f"{500 + i}-22-87{10 + i}", f"Town {i}") for i in range(1, 13)]
    path = _db(tmp_path / "places.db", rows)
    gov = govern(await aiosqlite.connect(path))
    try:
        innocent = "SELECT id, upper(city), 'é' || city, ssn FROM customers WHERE id <= 2 ORDER BY id"
        assert await _outcome(gov, innocent, exit) == (
            "rows", [(1, "TOWN 1", "éTown 1", "[US_SSN]"), (2, "TOWN 2", "éTown 2", "[US_SSN]")]
        )
        for sql in (f"SELECT id, 'Ly' || {FF} AS c FROM customers WHERE id = 2",
                    f"SELECT ssn || {FF}, 'Ly' || {FF} AS c FROM customers WHERE id = 2"):  # fmt: skip
            seen = await _outcome(gov, sql, exit)
            assert seen[:2] == ("error", "OperationalError") and "column 'c'" in seen[2], seen
    finally:
        await gov.close()


# -- the library's own log lines and fault messages (decision 0239) ------------------------------------------
def test_catalog_read_failures_are_logged_without_the_value(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """governed_db samples a table's values to classify its columns; when a sample read failed, the DEBUG line
    quoted the driver's error, and sqlite3's quotes the stored value it could not decode: a clear SSN in the
    application's log. The line now names the error with the quoted value blanked."""
    rows = [(i, "Alice Smith", f"536-22-87{i:02d}", "Paris") for i in range(1, 20)]
    raw = sqlite3.connect(_db(tmp_path / "log.db", rows))
    raw.execute(f"UPDATE customers SET ssn = ssn || {FF} WHERE id = 3")
    with pytest.raises(sqlite3.OperationalError, match="536-22-8703"):  # the driver's error quotes it
        raw.execute("SELECT ssn FROM customers").fetchall()
    gov = govern(raw)
    with caplog.at_level(logging.DEBUG, logger="governed_db"):
        with pytest.raises(sqlite3.OperationalError) as failed:
            gov.execute("SELECT id, ssn FROM customers WHERE id < 5").fetchall()
        assert gov.execute("SELECT id, city FROM customers WHERE id < 3").fetchall() == [(1, "Paris"), (2, "Paris")]
    assert "536-22" not in str(failed.value)
    logged = [r.getMessage() for r in caplog.records]
    assert any("catalog read failed: OperationalError: Could not decode" in m for m in logged), logged
    assert not [m for m in logged if "536-22" in m], logged


def test_loggable_blanks_quoted_values_and_keeps_plain_messages() -> None:
    """What a log line or a fault message says of an exception: its class, and its text with a quoted value
    blanked; a message quoting nothing is kept as it is (look-alike)."""
    from governed_db.masking.messages import loggable

    echo = sqlite3.OperationalError("Could not decode to UTF-8 column 'ssn' with text '536-22-8726\ufffd'")
    assert loggable(echo) == "OperationalError: Could not decode to UTF-8 column 'ssn' with text '[REDACTED]'"
    conv = ValueError('invalid input syntax for type integer: "Alice Smith"')
    assert "Alice" not in loggable(conv) and loggable(conv).startswith("ValueError: invalid input syntax")
    assert loggable(sqlite3.OperationalError("no such table: t")) == "OperationalError: no such table: t"
    assert loggable(KeyError()) == "KeyError"


def test_a_fault_message_quotes_no_value(tmp_path: Path) -> None:
    """A fault inside governance becomes a refusal whose message names its cause: the cause's quoted value is
    blanked (the agent reads the message), its class and the stage stay."""
    raw = sqlite3.connect(_db(tmp_path / "fault.db"))
    gov = govern(raw)
    cause = sqlite3.OperationalError("Could not decode to UTF-8 column 'ssn' with text '536-22-8726\ufffd'")
    err = gov.governor.fault_error("planning masking (rows are withheld)", cause)
    assert "536-22" not in str(err) and "OperationalError" in str(err) and "planning masking" in str(err)
    assert isinstance(err, sqlite3.DatabaseError)


# -- decoders registered through a governed connection (decision 0238) ---------------------------------------
PG_ROWS = "(1, 'Alice Smith', '536-22-8726', 'Paris'), (2, 'Ivan Petrov', '219-45-1234', 'Lyon')"


@pytest.fixture
def pg_table(pg_conn: Any, unique: str) -> Any:
    t = f"rt8int_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, ssn text, city text)")
    pg_conn.execute(f"INSERT INTO {t} VALUES {PG_ROWS}")
    yield t
    pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def _spy_loader(seen: list[Any]) -> Any:
    from psycopg.types.string import TextLoader

    class Spy(TextLoader):
        def load(self, data: Any) -> Any:
            value = super().load(data)
            seen.append(value)
            return value

    return Spy


@pytest.mark.parametrize("where", ["connection", "cursor"])
def test_psycopg_loaders_registered_through_the_governed_connection_are_refused(
    pg_dsn: str, pg_table: str, where: str
) -> None:
    """A loader registered with ``conn.adapters`` (or a cursor's) is called with every cell before masking —
    governed_db's own value samples included — and kept the clear SSNs. It is refused now; the rows stay
    masked. On the raw connection the same loader sees them (the leak is real)."""
    import psycopg

    seen: list[Any] = []
    with psycopg.connect(pg_dsn, autocommit=True) as raw:
        raw.adapters.register_loader("text", _spy_loader(seen))
        raw.execute(f"SELECT ssn FROM {pg_table}").fetchall()
    assert "536-22-8726" in seen
    seen.clear()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        gov = govern(conn)
        target = gov.adapters if where == "connection" else gov.cursor().adapters
        with pytest.raises(governed_db.GuardrailViolation, match="register_loader"):
            target.register_loader("text", _spy_loader(seen))
        assert gov.execute(f"SELECT id, ssn FROM {pg_table} ORDER BY id").fetchall() == [
            (1, "[US_SSN]"), (2, "[US_SSN]"),
        ]  # fmt: skip
    assert seen == []


@pytest.mark.anyio
async def test_psycopg_async_loaders_are_checked_too(pg_dsn: str, pg_table: str) -> None:
    """The same on psycopg's ``AsyncConnection`` and its cursors; psycopg's own loaders still register."""
    import psycopg
    from psycopg.types.string import TextLoader

    seen: list[Any] = []
    raw = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
    gov = govern(raw)
    try:
        for target in (gov.adapters, gov.cursor().adapters):
            with pytest.raises(governed_db.GuardrailViolation, match="register_loader"):
                target.register_loader("text", _spy_loader(seen))
        gov.adapters.register_loader("inet", TextLoader)
        cur = await gov.execute(f"SELECT id, ssn, '1.2.3.4'::inet FROM {pg_table} WHERE id = 1")
        assert await cur.fetchall() == [(1, "[US_SSN]", "1.2.3.4")]
    finally:
        await raw.close()
    assert seen == []


def test_psycopg_own_loaders_still_register(pg_dsn: str, pg_table: str) -> None:
    """Look-alikes: psycopg's own loaders (text for inet, JSON with json.loads, an enum's TypeInfo) register
    through the governed connection and decode as before; a JSON loader with a function of the caller's own
    is refused like any loader."""
    import json

    import psycopg
    from psycopg.types.enum import EnumInfo, register_enum
    from psycopg.types.json import set_json_loads
    from psycopg.types.string import TextLoader

    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        gov = govern(conn)
        gov.adapters.register_loader("inet", TextLoader)
        set_json_loads(json.loads, gov)
        conn.execute("DROP TYPE IF EXISTS rt8int_mood")
        conn.execute("CREATE TYPE rt8int_mood AS ENUM ('sad', 'ok')")
        try:
            info = EnumInfo.fetch(gov, "rt8int_mood")
            assert info is not None
            register_enum(info, gov)
            row = gov.execute("SELECT '1.2.3.4'::inet, '{\"a\": 1}'::json, 'ok'::rt8int_mood").fetchone()
            assert row is not None and row[:2] == ("1.2.3.4", {"a": 1}) and row[2].name == "ok"
        finally:
            conn.execute("DROP TYPE IF EXISTS rt8int_mood")
        with pytest.raises(governed_db.GuardrailViolation, match="register_loader"):
            set_json_loads(lambda s: json.loads(s), gov)
        assert gov.execute(f"SELECT full_name, city FROM {pg_table} WHERE id = 1").fetchall() == [
            ("[PERSON_NAME]", "Paris")
        ]


@pytest.mark.anyio
async def test_asyncpg_type_codecs_with_a_decoder_of_the_caller_are_refused(pg_dsn: str, pg_table: str) -> None:
    """``conn.set_type_codec('text', decoder=f)`` calls ``f`` with every text value before masking: refused on a
    governed connection (the raw one hands ``f`` the clear SSNs). ``str`` as the decoder keeps working (and
    SQLAlchemy's JSON codecs, set while it sets the connection up: tests/test_sqlalchemy_async.py)."""
    asyncpg = pytest.importorskip("asyncpg")
    from tests.test_drivers_asyncpg import _url

    seen: list[Any] = []

    def spy(value: Any) -> Any:
        seen.append(value)
        return value

    raw = await asyncpg.connect(_url())
    try:
        await raw.set_type_codec("text", schema="pg_catalog", encoder=str, decoder=spy, format="text")
        await raw.fetch(f"SELECT ssn FROM {pg_table}")
    finally:
        await raw.close()
    assert "536-22-8726" in seen
    seen.clear()
    gov = govern(await asyncpg.connect(_url()))
    try:
        with pytest.raises(governed_db.GuardrailViolation, match="set_type_codec"):
            await gov.set_type_codec("text", schema="pg_catalog", encoder=str, decoder=spy, format="text")
        await gov.set_type_codec("text", schema="pg_catalog", encoder=str, decoder=str, format="text")
        rows = await gov.fetch(f"SELECT id, ssn, city FROM {pg_table} ORDER BY id")
        assert [tuple(r) for r in rows] == [(1, "[US_SSN]", "Paris"), (2, "[US_SSN]", "Lyon")]
    finally:
        await gov.close()
    assert seen == []


@pytest.fixture
def my_table(mysql_conn: Any, unique: str) -> Any:
    t = f"rt8int_{unique}"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id int primary key, full_name varchar(40), ssn varchar(40), city varchar(40))")
        cur.execute(f"INSERT INTO {t} VALUES {PG_ROWS}")
    yield t
    with mysql_conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {t}")


def test_pymysql_decoders_set_through_the_governed_connection_are_checked(mysql_kw: dict[str, Any], my_table: str) -> None:
    """PyMySQL calls ``conn.decoders[type]`` with every cell of that type before masking: setting a function of
    the caller's own there (item or whole dict) is refused (on the raw connection it receives the clear SSNs);
    reading the decoders and setting PyMySQL's own converters keep working."""
    import pymysql
    from pymysql import converters
    from pymysql.constants import FIELD_TYPE

    seen: list[Any] = []

    def spy(value: Any) -> Any:
        seen.append(value)
        return value

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    raw.decoders[FIELD_TYPE.VAR_STRING] = spy
    with raw.cursor() as cur:
        cur.execute(f"SELECT ssn FROM {my_table}")
        cur.fetchall()
    raw.close()
    assert "536-22-8726" in seen
    seen.clear()
    gov = govern(pymysql.connect(autocommit=True, **mysql_kw))  # fmt: skip
    try:
        with pytest.raises(governed_db.GuardrailViolation, match="decoders"):
            gov.decoders[FIELD_TYPE.VAR_STRING] = spy
        with pytest.raises(governed_db.GuardrailViolation, match="decoders"):
            gov.decoders = {**gov.decoders, FIELD_TYPE.STRING: spy}
        assert gov.decoders[FIELD_TYPE.DATETIME] is converters.convert_datetime
        gov.decoders[FIELD_TYPE.DATETIME] = converters.convert_datetime  # the driver's own: allowed
        with gov.cursor() as cur:
            cur.execute(f"SELECT id, ssn, city FROM {my_table} ORDER BY id")
            assert cur.fetchall() == ((1, "[US_SSN]", "Paris"), (2, "[US_SSN]", "Lyon"))
    finally:
        gov.close()
    assert seen == []


@pytest.mark.anyio
async def test_aiomysql_decoders_set_through_the_governed_connection_are_checked(
    mysql_kw: dict[str, Any], my_table: str
) -> None:
    """The same for aiomysql, whose connection keeps PyMySQL's ``decoders`` (and a cursor class of the caller's
    own is refused as for PyMySQL, while aiomysql's ``DictCursor`` runs)."""
    aiomysql = pytest.importorskip("aiomysql")
    from pymysql.constants import FIELD_TYPE

    kw = {("db" if k == "database" else k): v for k, v in mysql_kw.items()}
    gov = govern(await aiomysql.connect(autocommit=True, **kw))  # fmt: skip
    try:
        with pytest.raises(governed_db.GuardrailViolation, match="decoders"):
            gov.decoders[FIELD_TYPE.VAR_STRING] = lambda v: v
        with pytest.raises(governed_db.GuardrailViolation, match="own on every row"):  # a cursor class, too
            await gov.cursor(_spy_class(aiomysql.Cursor, []))
        async with gov.cursor(aiomysql.DictCursor) as cur:  # the driver's own
            await cur.execute(f"SELECT id, ssn FROM {my_table} WHERE id = 1")
            assert await cur.fetchall() == [{"id": 1, "ssn": "[US_SSN]"}]
        async with gov.cursor() as cur:
            await cur.execute(f"SELECT id, ssn FROM {my_table} ORDER BY id")
            assert await cur.fetchall() == ((1, "[US_SSN]"), (2, "[US_SSN]"))
    finally:
        gov.close()


# -- aiomysql: warnings read on the raw connection (decision 0238) -------------------------------------------
@pytest.fixture
def my_view(mysql_conn: Any, unique: str) -> Any:
    """A view that converts a masked name to a number: reading it warns, quoting the name."""
    t = f"rt8int_{unique}"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id int, full_name text, city text)")
        cur.execute(f"INSERT INTO {t} VALUES (1, 'Alice Smith', 'Paris')")
        cur.execute(f"CREATE VIEW {t}_v AS SELECT CAST(full_name AS DOUBLE) AS d FROM {t}")
        cur.execute(f"CREATE VIEW {t}_w AS SELECT CAST(city AS DOUBLE) AS d FROM {t}")
    yield t
    with mysql_conn.cursor() as cur:
        cur.execute(f"DROP VIEW IF EXISTS {t}_v, {t}_w")
        cur.execute(f"DROP TABLE IF EXISTS {t}")


async def _aiomysql(mysql_kw: dict[str, Any], governed: bool = True) -> Any:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {("db" if k == "database" else k): v for k, v in mysql_kw.items()}
    raw = await aiomysql.connect(autocommit=True, **kw)
    return govern(raw) if governed else raw


@pytest.mark.anyio
async def test_aiomysql_warnings_quote_no_masked_value(mysql_kw: dict[str, Any], my_view: str) -> None:
    """aiomysql's ``conn.show_warnings()`` ran SHOW WARNINGS on the raw connection, and its cursor repeats every
    warning of a statement as a Python ``Warning``: both quoted the masked name (``Truncated incorrect DOUBLE
    value: 'Alice Smith'``) where the SHOW WARNINGS statement blanks it. Both are blanked now; and since decision
    0382 the view is judged as its definition, so the cast that warns on the name is refused before it runs."""
    import warnings

    seen: dict[str, Any] = {}
    for governed in (False, True):
        conn = await _aiomysql(mysql_kw, governed)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                async with conn.cursor() as cur:
                    try:
                        await cur.execute(f"SELECT d FROM {my_view}_v")
                        assert await cur.fetchall() == ((0.0,),)
                    except governed_db.GuardrailViolation as e:
                        seen[f"refused {governed}"] = str(e)
            seen[f"python warnings {governed}"] = [str(w.message) for w in caught]
            seen[f"show_warnings {governed}"] = await conn.show_warnings()
        finally:
            conn.close()
    assert "Alice Smith" in repr(seen["python warnings False"]) and "Alice Smith" in repr(seen["show_warnings False"])
    assert f"in the definition of view {my_view}_v" in seen["refused True"], seen
    assert not leaked(seen["python warnings True"], SECRETS) and not leaked(seen["show_warnings True"], SECRETS)
    assert not leaked(seen["refused True"], SECRETS)


@pytest.mark.anyio
async def test_aiomysql_warnings_of_other_statements_still_show(mysql_kw: dict[str, Any], my_view: str) -> None:
    """Look-alike: a warning still reaches the caller, as a Python warning and from ``show_warnings()``, and a
    statement without warnings shows none."""
    import warnings

    import pymysql

    conn = await _aiomysql(mysql_kw)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async with conn.cursor() as cur:
                await cur.execute(f"SELECT d FROM {my_view}_w")
                assert await cur.fetchall() == ((0.0,),)
        assert [w.category for w in caught] == [pymysql.err.Warning]  # aiomysql's own category
        assert "Truncated incorrect DOUBLE value" in str(caught[0].message)
        assert (await conn.show_warnings())[0][1] == 1292
        async with conn.cursor() as cur:
            await cur.execute(f"SELECT id, city FROM {my_view}")
            assert await cur.fetchall() == ((1, "Paris"),)
        assert await conn.show_warnings() == ()
    finally:
        conn.close()


# -- asyncpg query loggers (decision 0238) -------------------------------------------------------------------
@pytest.mark.anyio
async def test_asyncpg_query_loggers_get_the_error_scrubbed(pg_conn: Any, pg_table: str) -> None:
    """asyncpg hands a query logger each statement's exception as the server sent it, on the next loop turn —
    before governed_db had scrubbed it, since the pipeline awaits its rollback first: the logger read ``Failing
    row contains (1, Alice Smith, 536-22-8726, null)``. It gets a scrubbed copy now, by every way of adding one;
    the error the caller catches is scrubbed as before."""
    asyncpg = pytest.importorskip("asyncpg")
    from tests.test_drivers_asyncpg import _url

    pg_conn.execute(f"ALTER TABLE {pg_table} ALTER COLUMN city SET NOT NULL")
    failing = f"UPDATE {pg_table} SET city = NULL WHERE id = 1"

    async def run(conn: Any, how: str) -> list[Any]:
        seen: list[Any] = []

        def sync_cb(record: Any) -> None:
            seen.append((str(record.exception), getattr(record.exception, "detail", None)))

        async def async_cb(record: Any) -> None:
            seen.append((str(record.exception), getattr(record.exception, "detail", None)))

        cb = async_cb if how == "async" else sync_cb
        if how == "context":
            with conn.query_logger(cb):
                with pytest.raises(asyncpg.NotNullViolationError):
                    await conn.execute(failing)
                await anyio_sleep()
        else:
            conn.add_query_logger(cb)
            with pytest.raises(asyncpg.NotNullViolationError):
                await conn.execute(failing)
            await anyio_sleep()
            conn.remove_query_logger(cb)
        return [s for s in seen if s[0] != "None"]

    raw = await asyncpg.connect(_url())
    try:
        assert "536-22-8726" in repr(await run(raw, "sync"))  # the raw logger reads the row
    finally:
        await raw.close()
    gov = govern(await asyncpg.connect(_url()))
    try:
        for how in ("sync", "async", "context"):
            seen = await run(gov, how)
            assert seen and not leaked(seen, SECRETS), (how, seen)
            assert "Failing row contains ([REDACTED])" in repr(seen)
        # removed: no longer called
        assert await run_removed(gov) == []
    finally:
        await gov.close()


async def anyio_sleep() -> None:
    import anyio

    for _ in range(3):  # asyncpg calls loggers with call_soon / create_task
        await anyio.sleep(0)


async def run_removed(conn: Any) -> list[Any]:
    seen: list[Any] = []
    cb = seen.append
    conn.add_query_logger(cb)
    conn.remove_query_logger(cb)
    await conn.execute("SELECT 1")
    await anyio_sleep()
    return seen


@pytest.mark.anyio
async def test_asyncpg_query_loggers_keep_innocent_records(pg_dsn: str, pg_table: str) -> None:
    """Look-alike: a logger still sees every statement, its arguments, and an error that quotes no masked value
    as it is (``division by zero``)."""
    asyncpg = pytest.importorskip("asyncpg")
    from tests.test_drivers_asyncpg import _url

    gov = govern(await asyncpg.connect(_url()))
    seen: list[Any] = []
    try:
        gov.add_query_logger(seen.append)
        assert await gov.fetchval(f"SELECT city FROM {pg_table} WHERE id = $1", 2) == "Lyon"
        with pytest.raises(asyncpg.DivisionByZeroError):
            await gov.fetchval("SELECT 1 / $1::int", 0)
        await anyio_sleep()
    finally:
        await gov.close()
    mine = [r for r in seen if pg_table in r.query or "1 / $1" in r.query]
    assert [(r.args, r.exception is None) for r in mine] == [((2,), True), ((0,), False)]
    assert str(mine[1].exception) == "division by zero"


# -- cursor classes of the caller's own (decision 0238) ------------------------------------------------------
def _spy_class(base: type, stolen: list[Any]) -> type:
    """A subclass of a driver's cursor that keeps every row its fetchall() returns."""

    def fetchall(self: Any) -> Any:
        rows = base.fetchall(self)  # type: ignore[attr-defined]
        stolen.extend(rows)
        return rows

    return type("Spy", (base,), {"fetchall": fetchall})


def _sqlite_conn(tmp_path: Path) -> tuple[Any, Any]:
    raw = sqlite3.connect(_db(tmp_path / "cls.db"))
    return raw, sqlite3.connect(tmp_path / "cls.db")


CURSOR_CLASS_ROUTES = ["sqlite3 cursor(factory)", "psycopg cursor_factory", "psycopg2 cursor(cursor_factory=)",
                       "psycopg2 cursor_factory", "pymysql cursor(cls)", "pymysql cursorclass"]  # fmt: skip


@pytest.mark.parametrize("route", CURSOR_CLASS_ROUTES)
def test_cursor_classes_of_the_caller_are_refused(route: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """A cursor class of the caller's own runs the driver's fetch inside its own methods: a subclass overriding
    ``fetchall`` kept every clear row while the governed cursor handed back masked ones (psycopg's
    ``cursor_factory`` even saw governed_db's own samples). On the raw connection the same class steals the
    SSNs; through the governed connection it is refused, and the rows stay masked."""
    driver = route.split()[0]
    if driver == "sqlite3":
        raw, fresh, base, sql = *_sqlite_conn(tmp_path), sqlite3.Cursor, "SELECT id, ssn FROM customers"
    elif driver.startswith("psycopg"):
        pg_dsn, table = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_table")
        mod = pytest.importorskip(driver)
        base = mod.Cursor if driver == "psycopg" else mod.extensions.cursor
        raw, fresh, sql = mod.connect(pg_dsn), mod.connect(pg_dsn), f"SELECT id, ssn FROM {table}"
    else:
        import pymysql

        kw, table = request.getfixturevalue("mysql_kw"), request.getfixturevalue("my_table")
        raw, fresh, base = pymysql.connect(**kw), pymysql.connect(**kw), pymysql.cursors.Cursor
        sql = f"SELECT id, ssn FROM {table}"
    stolen: list[Any] = []
    spy = _spy_class(base, stolen)

    def read(conn: Any) -> Any:
        if route.endswith("cursor_factory") or route.endswith("cursorclass"):
            setattr(conn, route.split()[1], spy)
            cur = conn.cursor()
        elif driver == "psycopg2":
            cur = conn.cursor(cursor_factory=spy)
        else:
            cur = conn.cursor(spy)
        cur.execute(sql)
        return cur.fetchall()

    try:
        read(raw)
        assert "536-22-8726" in repr(stolen)
        stolen.clear()
        gov = govern(fresh)
        with pytest.raises(governed_db.GuardrailViolation, match="own on every row"):
            read(gov)
        cur = gov.cursor()
        cur.execute(sql + " ORDER BY id")
        assert [tuple(r) for r in cur.fetchall()] == [(1, "[US_SSN]"), (2, "[US_SSN]")]
        assert stolen == []
    finally:
        for c in (raw, fresh):
            with contextlib.suppress(Exception):
                c.rollback()
            c.close()


def test_drivers_own_cursor_classes_keep_working(
    tmp_path: Path, pg_dsn: str, pg_table: str, mysql_kw: dict[str, Any], my_table: str
) -> None:
    """Look-alikes: the drivers' own cursor classes (dict rows, server-side and client-side cursors) and a
    subclass that adds nothing run through the governed connection, rows masked."""
    import psycopg
    import psycopg2
    import psycopg2.extras
    import pymysql

    def gov(conn: Any) -> Any:
        return govern(conn)

    class Plain(sqlite3.Cursor):
        pass

    s = gov(sqlite3.connect(_db(tmp_path / "own.db")))
    assert s.cursor(Plain).execute("SELECT id, ssn FROM customers WHERE id = 1").fetchall() == [(1, "[US_SSN]")]
    with psycopg.connect(pg_dsn) as raw3:
        g3 = gov(raw3)
        g3.cursor_factory = psycopg.ClientCursor
        assert g3.cursor().execute(f"SELECT id, ssn FROM {pg_table} WHERE id = %s", (1,)).fetchall() == [
            (1, "[US_SSN]")
        ]
    raw2 = psycopg2.connect(pg_dsn)
    try:
        cur = gov(raw2).cursor(cursor_factory=psycopg2.extras.RealDictCursor)
        cur.execute(f"SELECT id, ssn FROM {pg_table} WHERE id = 1")
        assert [dict(r) for r in cur.fetchall()] == [{"id": 1, "ssn": "[US_SSN]"}]
    finally:
        raw2.close()
    gm = gov(pymysql.connect(**mysql_kw))
    try:
        for cls in (pymysql.cursors.DictCursor, pymysql.cursors.SSCursor):
            with gm.cursor(cls) as cur:
                cur.execute(f"SELECT id, ssn FROM {my_table} WHERE id = 1")
                assert [tuple(r.values()) if isinstance(r, dict) else r for r in cur.fetchall()] == [(1, "[US_SSN]")]
    finally:
        gm.close()


# -- the MCP server's results, error payloads, spans and audit bytes (no finding: regression) -------------------
def test_mcp_results_errors_spans_and_audit_carry_no_masked_value(
    pg_conn: Any, pg_table: str, spans: Any, tmp_path: Path
) -> None:
    """Through a real MCP client on PostgreSQL: rows come back masked; a failing write whose server error quotes
    the whole row (``Failing row contains (1, Alice Smith, 536-22-8726, null)``, as the raw connection shows)
    comes back as a tool error without it; and neither the exported spans (real SDK, in-memory exporter) nor the
    audit store's bytes hold a clear value."""
    pytest.importorskip("mcp")
    import anyio
    import psycopg
    from mcp import Client

    from governed_db.integrations import mcp_server
    from tests.conftest import PG_DSN

    pg_conn.execute(f"ALTER TABLE {pg_table} ALTER COLUMN city SET NOT NULL")
    failing = f"UPDATE {pg_table} SET city = NULL WHERE id = 1"
    with pytest.raises(psycopg.errors.NotNullViolation) as truth:
        pg_conn.execute(failing)
    assert "536-22-8726" in str(truth.value.diag.message_detail)
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    url = f"postgresql+psycopg://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    tools = mcp_server.make_tools(url, identity="agent:claude@alice", environment="production",
                                  tracer_provider=spans[0], audit=tmp_path / "audit")  # fmt: skip
    server = mcp_server.build_server(tools)
    out: list[Any] = []

    async def session() -> None:
        async with Client(server) as client:
            out.append(await client.call_tool("run_query", {"sql": f"SELECT * FROM {pg_table} ORDER BY id"}))
            out.append(await client.call_tool("run_query", {"sql": failing}))

    try:
        anyio.run(session)
    finally:
        tools.engine.dispose()
    rows, error = out
    assert not rows.is_error and rows.structured_content["rows"] == [
        [1, "[PERSON_NAME]", "[US_SSN]", "Paris"], [2, "[PERSON_NAME]", "[US_SSN]", "Lyon"],
    ]  # fmt: skip
    text = "".join(getattr(c, "text", "") for c in error.content)
    assert error.is_error and "NotNullViolation" in text and not leaked(text, SECRETS), text
    exported = repr([(s.name, dict(s.attributes or {}), [dict(e.attributes or {}) for e in s.events],
                      s.status.description) for s in spans[1].get_finished_spans()])  # fmt: skip
    assert pg_table in exported and not leaked(exported, SECRETS)
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("audit*") if p.is_file())
    # a fragment of digits only ("8726") also turns up inside a record's hex hashes, ids and nanosecond times by
    # chance (a flaky failure once): it counts where it stands apart from other hex digits, as in "536-22-8726"
    found = [s for s in SECRETS if re.search(rb"(?<![0-9a-f])" + re.escape(s.encode()) + rb"(?![0-9a-f])", stored)]
    assert stored and not found, found


# -- a driver's own decoder for another type (decision 0238) ---------------------------------------------------
def test_psycopg_own_loader_for_another_type_is_refused(pg_dsn: str, pg_table: str) -> None:
    """psycopg's own ``IntLoader`` registered for ``text`` fails on every SSN quoting it (``invalid literal for
    int() with base 10: '536-22-8726'``), and on a computed value exactly when it is not a number: refused.
    A type's own loader (``TextLoader`` for text, a JSON loader built on psycopg's) still registers."""
    import psycopg
    from psycopg.types.numeric import IntLoader
    from psycopg.types.string import TextLoader

    with psycopg.connect(pg_dsn, autocommit=True) as raw:
        raw.adapters.register_loader("text", IntLoader)
        with pytest.raises(ValueError, match="536-22-8726"):
            raw.execute(f"SELECT ssn FROM {pg_table} WHERE id = 1").fetchall()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        gov = govern(conn)
        with pytest.raises(governed_db.GuardrailViolation, match="not its decoder"):
            gov.adapters.register_loader("text", IntLoader)
        gov.adapters.register_loader("text", TextLoader)
        gov.adapters.register_loader("int4", IntLoader)
        assert gov.execute(f"SELECT id, ssn FROM {pg_table} WHERE id = 1").fetchall() == [(1, "[US_SSN]")]


@pytest.mark.anyio
async def test_asyncpg_builtin_codec_for_another_type_is_no_oracle(pg_dsn: str, pg_table: str) -> None:
    """``set_builtin_type_codec('text', codec_name='int8', format='binary')`` decodes text as an 8-byte integer:
    ``replace(substr(ssn, 1, 1), '5', '12345678')`` is 8 bytes exactly when the first character is 5, so the fetch
    failed for every wrong guess. Refused; a type's own codec and text as text keep working."""
    asyncpg = pytest.importorskip("asyncpg")
    from tests.test_drivers_asyncpg import _url

    sql = f"SELECT id, replace(substr(ssn, 1, 1), '{{g}}', '12345678') AS v FROM {pg_table} WHERE id = 1"

    async def outcome(conn: Any, g: str) -> Any:
        try:
            return [tuple(r) for r in await conn.fetch(sql.format(g=g))]
        except Exception as e:
            return type(e).__name__

    raw = await asyncpg.connect(_url())
    try:
        await raw.set_builtin_type_codec("text", schema="pg_catalog", codec_name="int8", format="binary")
        assert await outcome(raw, "5") != await outcome(raw, "4")  # the oracle is real
    finally:
        await raw.close()
    gov = govern(await asyncpg.connect(_url()))
    try:
        with pytest.raises(governed_db.GuardrailViolation, match="not its decoder"):
            await gov.set_builtin_type_codec("text", schema="pg_catalog", codec_name="int8", format="binary")
        assert await outcome(gov, "5") == await outcome(gov, "4") == [(1, "[US_SSN]")]
        await gov.set_builtin_type_codec("int4", schema="pg_catalog", codec_name="int4")
        await gov.set_builtin_type_codec("varchar", schema="pg_catalog", codec_name="text")
        assert [tuple(r) for r in await gov.fetch(f"SELECT id, city FROM {pg_table} ORDER BY id")] == [
            (1, "Paris"), (2, "Lyon"),
        ]  # fmt: skip
    finally:
        await gov.close()


# -- fetch errors of PostgreSQL drivers (decision 0238) ----------------------------------------------------------
@pytest.fixture
def pg_dob(pg_conn: Any, unique: str) -> Any:
    """A masked date of birth no Python date can hold (year 12345), beside an ordinary one."""
    t = f"rt8int_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, date_of_birth date, city text)")
    pg_conn.execute(f"INSERT INTO {t} VALUES (1, 'Alice Smith', '12345-03-14', 'Paris'), "
                    "(2, 'Ivan Petrov', '1990-07-01', 'Lyon')")  # fmt: skip
    yield t
    pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("exit", ["fetchall", "fetchone", "fetchmany", "iterate"])
def test_fetch_errors_quote_no_masked_date(pg_dsn: str, pg_dob: str, driver: str, exit: str) -> None:
    """A stored date the driver cannot build fails every read of it (no guess steers that), but the error quoted
    it: psycopg ``date too large (after year 10K): '12345-03-14'`` (raised while fetching, where errors were not
    scrubbed), psycopg2 ``year 12345 is out of range``. The error is kept, the value blanked."""
    mod = pytest.importorskip(driver)

    def read(conn: Any) -> Any:
        cur = conn.cursor()
        cur.execute(f"SELECT id, date_of_birth FROM {pg_dob} ORDER BY id")
        try:
            if exit == "fetchone":
                return cur.fetchone()
            if exit == "fetchmany":
                return cur.fetchmany(2)
            return list(cur) if exit == "iterate" else cur.fetchall()
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        finally:
            conn.rollback()

    raw = mod.connect(pg_dsn)
    try:
        assert "12345" in str(read(raw))
        gov = govern(raw)
        seen = read(gov)
        assert isinstance(seen, str) and "12345" not in seen and "[REDACTED]" in seen, seen
        cur = gov.cursor()  # the ordinary date reads (masked, its year only)
        cur.execute(f"SELECT id, date_of_birth, city FROM {pg_dob} WHERE id = 2")
        assert [tuple(r) for r in cur.fetchall()] == [(2, __import__("datetime").date(1990, 1, 1), "Lyon")]
    finally:
        raw.close()


@pytest.mark.anyio
async def test_async_fetch_errors_quote_no_masked_date(pg_dsn: str, pg_dob: str) -> None:
    """The same through psycopg's AsyncConnection (every exit) and asyncpg."""
    import psycopg

    asyncpg = pytest.importorskip("asyncpg")
    from tests.test_drivers_asyncpg import _url

    sql = f"SELECT id, date_of_birth FROM {pg_dob} ORDER BY id"
    raw = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
    gov = govern(raw)
    try:
        for exit in ("fetchall", "fetchone", "fetchmany", "iterate"):
            cur = await gov.execute(sql)
            with pytest.raises(psycopg.DataError) as failed:
                if exit == "iterate":
                    [r async for r in cur]
                else:
                    await getattr(cur, exit)(*((2,) if exit == "fetchmany" else ()))
            assert "12345" not in str(failed.value) and "[REDACTED]" in str(failed.value), (exit, failed.value)
    finally:
        await raw.close()
    agov = govern(await asyncpg.connect(_url()))
    try:
        with pytest.raises(ValueError) as failed:
            await agov.fetch(sql)
        assert "12345" not in str(failed.value), failed.value
    finally:
        await agov.close()


@pytest.mark.anyio
async def test_rows_decoded_after_the_statement_have_their_errors_scrubbed(pg_dsn: str, pg_dob: str) -> None:
    """Rows a stream or a server-side cursor decodes after the statement returned (psycopg's ``stream()``, sync and
    async; asyncpg's cursor by iteration, ``fetch`` and ``fetchrow``): the undecodable date comes second, and its
    error is scrubbed too."""
    import psycopg

    asyncpg = pytest.importorskip("asyncpg")
    from tests.test_drivers_asyncpg import _url

    sql = f"SELECT id, date_of_birth FROM {pg_dob} ORDER BY id DESC"  # the ordinary row first
    failures: dict[str, str] = {}
    with psycopg.connect(pg_dsn, autocommit=True) as raw:
        gov = govern(raw)
        with pytest.raises(psycopg.DataError) as failed:
            list(gov.cursor().stream(sql))
        failures["stream"] = str(failed.value)
    araw = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
    try:
        agov = govern(araw)
        with pytest.raises(psycopg.DataError) as failed:
            [r async for r in agov.cursor().stream(sql)]
        failures["async stream"] = str(failed.value)
    finally:
        await araw.close()
    pg = govern(await asyncpg.connect(_url()))
    try:
        for how in ("iterate", "fetch", "fetchrow"):
            async with pg.transaction():
                with pytest.raises(ValueError) as failed:
                    if how == "iterate":
                        [r async for r in pg.cursor(sql, prefetch=1)]
                    else:
                        cur = await pg.cursor(sql)
                        for _ in range(2):
                            await (cur.fetch(1) if how == "fetch" else cur.fetchrow())
                failures[f"asyncpg cursor {how}"] = str(failed.value)
    finally:
        await pg.close()
    assert len(failures) == 5 and not [k for k, v in failures.items() if "12345" in v], failures
