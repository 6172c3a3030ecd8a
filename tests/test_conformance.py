"""A governed connection behaves like the raw one wherever the raw one works, for all five drivers.

Each test runs the same steps on the raw connection and on a governed wrap of
an identical one, and compares what comes back: exceptions exposed on the
connection, rowcount, description, lastrowid, arraysize, context managers,
iteration, commit/rollback, autocommit, driver errors (same type, same
message), and the clear errors for bad input.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import governed_db
from governed_db import ConfigurationError, InvalidStatement

DRIVERS = ["sqlite3", "psycopg", "psycopg2", "pymysql", "duckdb"]
DBAPI_ERRORS = (
    "Error", "Warning", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
    "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError",
)  # fmt: skip


@dataclass
class Pair:
    """A raw connection, a governed one, and what differs between drivers."""

    name: str
    module: Any
    raw: Any  # a second raw connection, used as the reference
    gov: Any
    table: str
    ph: str  # placeholder
    connection_class: type
    cursor_of: Callable[[Any], Any]  # conn -> something with execute/fetch* (duckdb: the connection)


def _sqlite(request: pytest.FixtureRequest, tmp_path: Any, unique: str) -> Pair:
    path = str(tmp_path / "conf.db")
    raw = sqlite3.connect(path)
    gov = governed_db.wrap(sqlite3.connect(path), environment="production")
    request.addfinalizer(raw.close)
    return Pair("sqlite3", sqlite3, raw, gov, f"conf_{unique}", "?", sqlite3.Connection, lambda c: c.cursor())


def _psycopg(request: pytest.FixtureRequest, tmp_path: Any, unique: str) -> Pair:
    import psycopg

    dsn = request.getfixturevalue("pg_dsn")
    raw = psycopg.connect(dsn, autocommit=True)
    gov = governed_db.wrap(psycopg.connect(dsn, autocommit=True), environment="production")
    request.addfinalizer(raw.close)
    return Pair(
        "psycopg", psycopg, raw, gov, f"conf_{unique}", "%s", psycopg.Connection, lambda c: c.cursor()
    )


def _psycopg2(request: pytest.FixtureRequest, tmp_path: Any, unique: str) -> Pair:
    pytest.importorskip("psycopg2")
    import psycopg2
    import psycopg2.extensions

    dsn = request.getfixturevalue("pg_dsn")
    raw, other = psycopg2.connect(dsn), psycopg2.connect(dsn)
    raw.autocommit = other.autocommit = True
    gov = governed_db.wrap(other, environment="production")
    request.addfinalizer(raw.close)
    return Pair(
        "psycopg2",
        psycopg2,
        raw,
        gov,
        f"conf_{unique}",
        "%s",
        psycopg2.extensions.connection,
        lambda c: c.cursor(),
    )


def _pymysql(request: pytest.FixtureRequest, tmp_path: Any, unique: str) -> Pair:
    import pymysql

    kw = request.getfixturevalue("mysql_kw")
    raw = pymysql.connect(autocommit=True, **kw)
    gov = governed_db.wrap(pymysql.connect(autocommit=True, **kw), environment="production")
    request.addfinalizer(raw.close)
    return Pair(
        "pymysql",
        pymysql,
        raw,
        gov,
        f"conf_{unique}",
        "%s",
        pymysql.connections.Connection,
        lambda c: c.cursor(),
    )


def _duckdb(request: pytest.FixtureRequest, tmp_path: Any, unique: str) -> Pair:
    duckdb = pytest.importorskip("duckdb")
    path = str(tmp_path / "conf.duckdb")
    raw = duckdb.connect(path)
    gov = governed_db.wrap(raw.cursor(), environment="production")  # same database, its own connection
    request.addfinalizer(raw.close)
    return Pair(
        "duckdb", duckdb, raw, gov, f"conf_{unique}", "?", duckdb.DuckDBPyConnection, lambda c: c.cursor()
    )


MAKERS = {
    "sqlite3": _sqlite,
    "psycopg": _psycopg,
    "psycopg2": _psycopg2,
    "pymysql": _pymysql,
    "duckdb": _duckdb,
}


@pytest.fixture(params=DRIVERS)
def pair(request: pytest.FixtureRequest, tmp_path: Any, unique: str) -> Iterator[Pair]:
    p = MAKERS[request.param](request, tmp_path, unique)
    cur = p.cursor_of(p.raw)
    cur.execute(f"CREATE TABLE {p.table} (n INTEGER, label VARCHAR(20))")
    _commit(p.raw)
    yield p
    with contextlib.suppress(Exception):  # a test may have closed it already
        p.gov.close()
    cur = p.cursor_of(p.raw)
    cur.execute(f"DROP TABLE IF EXISTS {p.table}")
    _commit(p.raw)


def _commit(conn: Any) -> None:
    if not getattr(conn, "autocommit", False):
        conn.commit()


def _both(p: Pair, step: Callable[[Any], Any]) -> tuple[Any, Any]:
    return step(p.raw), step(p.gov)


def _fill(p: Pair, conn: Any) -> Any:
    cur = p.cursor_of(conn)
    cur.execute(f"DELETE FROM {p.table} WHERE n > 0")
    cur.executemany(
        f"INSERT INTO {p.table} (n, label) VALUES ({p.ph}, {p.ph})", [(1, "a"), (2, "b"), (3, "c")]
    )
    _commit(conn)
    return cur


def test_governed_connection_is_an_instance_of_the_driver_connection(pair: Pair) -> None:
    """isinstance(governed, driver.Connection) stays true."""
    assert isinstance(pair.gov, pair.connection_class)


def test_exceptions_exposed_on_the_connection_are_the_drivers(pair: Pair) -> None:
    """conn.Error, conn.ProgrammingError... are the driver's own classes wherever the raw exposes them."""
    for name in DBAPI_ERRORS:
        if hasattr(pair.raw, name):
            assert getattr(pair.gov, name) is getattr(pair.raw, name)
        else:
            assert not hasattr(pair.gov, name)


def test_description_and_rows_match_the_raw_connection(pair: Pair) -> None:
    """description, fetchone/fetchmany/fetchall and iteration give what the raw connection gives."""

    def read(conn: Any) -> tuple[Any, ...]:
        cur = pair.cursor_of(conn)
        cur.execute(f"SELECT n, label FROM {pair.table} ORDER BY n")
        desc = [tuple(d)[:2] for d in cur.description]
        one = cur.fetchone()
        many = cur.fetchmany(1)
        rest = cur.fetchall()
        cur.execute(f"SELECT n, label FROM {pair.table} ORDER BY n")
        iterated = list(cur) if getattr(type(cur), "__iter__", None) else cur.fetchall()
        return desc, one, many, rest, iterated

    _fill(pair, pair.raw)
    raw, gov = _both(pair, read)
    assert gov == raw
    assert gov[1] == (1, "a") and gov[4] == [(1, "a"), (2, "b"), (3, "c")]


def test_rowcount_lastrowid_and_arraysize_match(pair: Pair) -> None:
    """rowcount after a write, lastrowid and arraysize behave as on the raw cursor."""

    def write(conn: Any) -> tuple[Any, ...]:
        cur = _fill(pair, conn)
        cur.execute(f"UPDATE {pair.table} SET label = {pair.ph} WHERE n >= {pair.ph}", ("z", 2))
        _commit(conn)
        out: list[Any] = [getattr(cur, "rowcount", None)]
        out.append(hasattr(cur, "lastrowid"))
        if hasattr(cur, "arraysize"):
            out.append(cur.arraysize)
            cur.arraysize = 7
            out.append(cur.arraysize)
        return tuple(out)

    raw, gov = _both(pair, write)
    assert gov == raw


def test_cursor_context_manager_behaves_like_the_raw(pair: Pair) -> None:
    """`with conn.cursor() as c` hands back the governed cursor, or fails the same way the raw one does."""
    raw_cur, gov_cur = pair.cursor_of(pair.raw), pair.cursor_of(pair.gov)
    if hasattr(type(raw_cur), "__enter__"):
        with gov_cur as entered:
            assert entered is gov_cur
            assert type(entered).__module__.startswith("governed_db")
    else:
        with pytest.raises(TypeError) as raw_err, raw_cur:
            pass
        with pytest.raises(TypeError) as gov_err, gov_cur:
            pass
        assert "context manager" in str(raw_err.value) and "context manager" in str(gov_err.value)


def test_connection_context_manager_hands_back_the_proxy(pair: Pair) -> None:
    """`with conn as c` gives the governed connection, whose statements stay governed."""
    with pair.gov as entered:
        assert entered is pair.gov
        pair.cursor_of(entered).execute(f"SELECT n FROM {pair.table}")


def test_cursor_connection_is_the_governed_connection(pair: Pair) -> None:
    """cursor.connection never leaks the raw connection."""
    cur = pair.gov.cursor()
    if pair.name == "duckdb":
        assert type(cur) is type(pair.gov)  # duckdb's cursor is another (governed) connection
    else:
        assert cur.connection is pair.gov


def test_methods_returning_the_cursor_return_the_proxy(pair: Pair) -> None:
    """execute() returns what the raw returns, with the proxy in place of the raw object."""
    cur, raw_cur = pair.cursor_of(pair.gov), pair.cursor_of(pair.raw)
    out = cur.execute(f"SELECT n FROM {pair.table}")
    raw_out = raw_cur.execute(f"SELECT n FROM {pair.table}")
    if raw_out is raw_cur:
        assert out is cur
    else:
        assert out == raw_out  # None (psycopg2), the number of rows (PyMySQL)


def test_commit_and_rollback_behave_the_same(pair: Pair) -> None:
    """A rolled-back insert disappears and a committed one stays, as on the raw connection."""
    duck = pair.name == "duckdb"  # autocommit until begin(); its cursor() is another connection

    def txn(conn: Any) -> tuple[int, int]:
        _fill(pair, conn)
        _set_autocommit(pair, conn, False)
        if duck:
            conn.begin()
        cur = conn if duck else conn.cursor()
        cur.execute(f"INSERT INTO {pair.table} (n, label) VALUES (9, 'x')")
        conn.rollback()
        cur = conn if duck else conn.cursor()
        cur.execute(f"SELECT count(*) FROM {pair.table}")
        after_rollback = cur.fetchone()[0]
        if duck:
            conn.begin()
        cur.execute(f"INSERT INTO {pair.table} (n, label) VALUES (9, 'x')")
        conn.commit()
        cur.execute(f"SELECT count(*) FROM {pair.table}")
        after_commit = cur.fetchone()[0]
        if not duck:
            conn.commit()
        _set_autocommit(pair, conn, True)
        return after_rollback, after_commit

    raw, gov = _both(pair, txn)
    assert raw == gov == (3, 4)


def _set_autocommit(pair: Pair, conn: Any, on: bool) -> None:
    if pair.name == "pymysql":
        conn.autocommit(on)  # a method in PyMySQL
    elif pair.name not in ("sqlite3", "duckdb"):
        conn.autocommit = on


def test_autocommit_reads_and_writes_through(pair: Pair) -> None:
    """autocommit is the raw connection's own setting, read and set through the proxy (or absent like on it)."""
    if pair.name in ("sqlite3", "duckdb"):
        # no autocommit switch in these drivers' DB-API surface (sqlite3 has one from Python 3.12):
        # the proxy must not invent one
        raw_has = hasattr(governed_db.unwrap(pair.gov), "autocommit")
        assert hasattr(pair.gov, "autocommit") is raw_has
        return
    _set_autocommit(pair, pair.gov, False)
    inner = governed_db.unwrap(pair.gov)
    now = inner.get_autocommit() if pair.name == "pymysql" else inner.autocommit
    assert not now
    _set_autocommit(pair, pair.gov, True)
    now = pair.gov.get_autocommit() if pair.name == "pymysql" else pair.gov.autocommit
    assert now


def test_driver_errors_pass_through_unchanged(pair: Pair) -> None:
    """A statement the database rejects raises the driver's exception: same type, same message."""

    def fail(conn: Any) -> BaseException:
        cur = pair.cursor_of(conn)
        try:
            cur.execute(f"SELECT no_such_column FROM {pair.table}")
        except Exception as e:
            return e
        finally:
            if pair.name in ("psycopg", "psycopg2") and not getattr(conn, "autocommit", True):
                conn.rollback()
        raise AssertionError("the database accepted a bad column")

    raw, gov = _both(pair, fail)
    if pair.name == "psycopg2":
        # a same-named subclass whose ``cursor`` is not the raw cursor (decision 0273): every ``except`` that
        # catches the driver's class catches it
        assert isinstance(gov, type(raw)) and type(gov).__name__ == type(raw).__name__
        assert gov.cursor is None and raw.cursor is not None  # type: ignore[attr-defined]
    else:
        assert type(gov) is type(raw)
    assert str(gov) == str(raw)


@pytest.mark.parametrize("bad", [None, 42, object()], ids=["None", "int", "object"])
def test_non_string_sql_gives_a_clear_error(pair: Pair, bad: Any) -> None:
    """None or a non-string statement raises InvalidStatement (a TypeError) naming the problem."""
    cur = pair.cursor_of(pair.gov)
    with pytest.raises(InvalidStatement) as err:
        cur.execute(bad)
    assert isinstance(err.value, TypeError)
    assert "statement" in str(err.value)


def test_wrong_paramstyle_gives_a_clear_error(pair: Pair) -> None:
    """A placeholder of another paramstyle is refused with both styles named, as the driver's ProgrammingError."""
    wrong = "?" if pair.ph == "%s" else "%s"
    with pytest.raises(InvalidStatement) as err:
        pair.cursor_of(pair.gov).execute(f"SELECT n FROM {pair.table} WHERE n = {wrong}", (1,))
    assert wrong in str(err.value) and pair.ph in str(err.value)
    driver_error = getattr(pair.module, "ProgrammingError", None) or getattr(pair.module, "Error", None)
    if isinstance(driver_error, type):
        assert isinstance(err.value, driver_error)


def test_closed_connection_gives_the_drivers_error(pair: Pair) -> None:
    """After close() the governed connection fails like the raw one; wrapping a closed one is refused."""

    def after_close(conn: Any) -> type[BaseException]:
        conn.close()
        try:
            pair.cursor_of(conn).execute("SELECT 1")
        except Exception as e:
            return type(e)
        raise AssertionError("a closed connection executed a statement")

    raw_t, gov_t = after_close(_fresh_raw(pair)), after_close(pair.gov)
    assert gov_t is raw_t
    closed = _fresh_raw(pair)
    closed.close()
    with pytest.raises(ConfigurationError, match="closed"):
        governed_db.wrap(closed)


def _fresh_raw(pair: Pair) -> Any:
    if pair.name == "duckdb":
        return pair.raw.cursor()
    if pair.name == "sqlite3":
        return sqlite3.connect(":memory:")
    if pair.name == "psycopg":
        return pair.module.connect(pair.raw.info.dsn)
    if pair.name == "psycopg2":
        return pair.module.connect(pair.raw.dsn)
    return pair.module.connect(
        host=pair.raw.host, port=pair.raw.port, user=pair.raw.user, password="", database=pair.raw.db
    )


@pytest.mark.parametrize("thing", [None, "dsn-string", 42, object()], ids=["None", "str", "int", "object"])
def test_wrapping_something_that_is_not_a_connection_is_refused(thing: Any) -> None:
    """wrap() of something without cursor() names the problem and the fix."""
    with pytest.raises(ConfigurationError, match=r"DB-API 2\.0 connection"):
        governed_db.wrap(thing)


def test_cursor_surface_matches_the_raw_cursor(pair: Pair) -> None:
    """The governed cursor has exactly the optional DB-API methods the raw cursor has."""
    raw_cur, gov_cur = pair.cursor_of(pair.raw), pair.cursor_of(pair.gov)
    for name in (
        "callproc",
        "nextset",
        "executescript",
        "copy",
        "stream",
        "scroll",
        "setinputsizes",
        "mogrify",
    ):
        assert hasattr(gov_cur, name) == hasattr(raw_cur, name), name


def test_iterability_matches_the_raw_cursor(pair: Pair) -> None:
    """iter() works on the governed cursor exactly when it works on the raw one."""

    def iterable(cur: Any) -> bool:
        try:
            iter(cur)
        except TypeError:
            return False
        return True

    for conn in (pair.raw, pair.gov):
        pair.cursor_of(conn).execute(f"SELECT n FROM {pair.table}")
    assert iterable(pair.cursor_of(pair.gov)) == iterable(pair.cursor_of(pair.raw))


_FRAGMENTS = [
    "SELECT", "n", "label", "FROM", "conf", "WHERE", "=", "1", "'a'", ",", "(", ")", ";", "*", "ORDER BY",
    "INSERT INTO", "VALUES", "UPDATE", "SET", "DELETE", "--", "/*", "*/", "?", "%s", "x'00'", "NULL", "AND",
]  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(_FRAGMENTS), max_size=12).map(" ".join)))
def test_any_text_is_either_refused_or_behaves_like_the_raw_driver(text: str) -> None:
    """For arbitrary statement text, a governed sqlite3 connection refuses it or does exactly what sqlite3 does."""

    def make() -> sqlite3.Connection:
        c = sqlite3.connect(":memory:")
        c.execute("CREATE TABLE conf (n INTEGER, label TEXT)")
        c.execute("INSERT INTO conf VALUES (1, 'a'), (2, 'b')")
        return c

    def outcome(conn: Any) -> tuple[str, Any]:
        try:
            return "rows", conn.execute(text).fetchall()
        except (governed_db.GuardrailViolation, InvalidStatement):
            return "refused", None
        except Exception as e:
            return "error", (type(e), str(e))

    raw_conn = make()
    gov = governed_db.wrap(make(), environment="production", policy=governed_db.Policy(rules=()))
    raw_out, gov_out = outcome(raw_conn), outcome(gov)
    if gov_out[0] != "refused":
        assert gov_out == raw_out


class _OtherCursor:
    """A cursor of a driver governed_db has no module for (DB-API 2.0 with callproc and nextset)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._cur = conn.cursor()
        self.arraysize = 1

    description = property(lambda self: self._cur.description)
    rowcount = property(lambda self: self._cur.rowcount)

    def execute(self, sql: str, params: Any = ()) -> None:
        self._cur.execute(sql, params)

    def executemany(self, sql: str, seq: Any) -> None:
        self._cur.executemany(sql, seq)

    def callproc(self, name: str, params: Any = ()) -> Any:
        self._cur.execute(f"SELECT {name}({', '.join('?' for _ in params)})", params)
        return params

    def nextset(self) -> None:
        return None

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchmany(self, size: int = 1) -> Any:
        return self._cur.fetchmany(size)

    def fetchall(self) -> Any:
        return self._cur.fetchall()

    def close(self) -> None:
        self._cur.close()


class _OtherConnection:
    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:")

    def cursor(self) -> _OtherCursor:
        return _OtherCursor(self._conn)

    def commit(self) -> None:
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()


def test_unknown_drivers_need_a_dialect_and_are_then_governed() -> None:
    """A driver without a governed_db module asks for dialect=; with it, execute and callproc are governed."""
    from tests._interception_support import MARKER, POLICY

    with pytest.raises(ConfigurationError, match="dialect="):
        governed_db.wrap(_OtherConnection())
    conn = governed_db.wrap(_OtherConnection(), dialect="sqlite", environment="production", policy=POLICY)
    cur = conn.cursor()
    assert hasattr(cur, "callproc") and hasattr(cur, "nextset")
    cur.execute("SELECT ? + 1", (1,))
    assert cur.fetchone() == (2,)
    assert cur.callproc("abs", (-3,)) == (-3,)
    assert cur.fetchone() == (3,)
    with pytest.raises(governed_db.GuardrailViolation):
        cur.execute(f"SELECT * FROM {MARKER}x")
    with pytest.raises(governed_db.GuardrailViolation):
        cur.callproc(f"{MARKER}fn", ())


class _ShortcutConnection(_OtherConnection):
    """An unknown driver with pyodbc-style connection shortcuts that make a cursor and run on it."""

    def execute(self, sql: str, params: Any = ()) -> _OtherCursor:
        cur = self.cursor()
        cur.execute(sql, params)
        return cur

    def executemany(self, sql: str, seq: Any) -> _OtherCursor:
        cur = self.cursor()
        cur.executemany(sql, seq)
        return cur


def test_unknown_drivers_connection_shortcuts_are_governed() -> None:
    """conn.execute()/executemany() of an unknown driver run on a governed cursor; absent ones stay absent."""
    from tests._interception_support import MARKER, POLICY

    plain = governed_db.wrap(_OtherConnection(), dialect="sqlite", environment="production", policy=POLICY)
    assert not hasattr(plain, "execute") and not hasattr(plain, "executemany")
    conn = governed_db.wrap(_ShortcutConnection(), dialect="sqlite", environment="production", policy=POLICY)
    assert conn.execute("SELECT ? + 1", (1,)).fetchone() == (2,)
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    with pytest.raises(governed_db.GuardrailViolation):
        conn.execute(f"SELECT * FROM {MARKER}x")
    with pytest.raises(governed_db.GuardrailViolation):
        conn.executemany(f"INSERT INTO {MARKER}x VALUES (?)", [(1,)])


class _ScriptCursor(_OtherCursor):
    """A sqlite3-compatible driver's cursor (pysqlite3, sqlcipher) with executescript()."""

    def executescript(self, script: str) -> _ScriptCursor:
        self._cur.executescript(script)
        return self


class _ScriptConnection(_ShortcutConnection):
    def cursor(self) -> _ScriptCursor:
        return _ScriptCursor(self._conn)

    def executescript(self, script: str) -> _ScriptCursor:
        return self.cursor().executescript(script)


def test_unknown_drivers_executescript_is_governed() -> None:
    """An unknown driver's cursor.executescript()/conn.executescript() are judged as one text before they run."""
    from tests._interception_support import MARKER, POLICY

    plain = governed_db.wrap(_OtherConnection(), dialect="sqlite", environment="production", policy=POLICY)
    assert not hasattr(plain.cursor(), "executescript") and not hasattr(plain, "executescript")
    conn = governed_db.wrap(_ScriptConnection(), dialect="sqlite", environment="production", policy=POLICY)
    cur = conn.cursor()
    assert cur.executescript("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);") is cur
    conn.executescript("INSERT INTO t VALUES (2);")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    for run_script in (cur.executescript, conn.executescript):
        with pytest.raises(governed_db.GuardrailViolation):
            run_script(f"CREATE TABLE {MARKER}x (x INTEGER); SELECT 1;")
    raw = governed_db.unwrap(conn)._conn
    created = raw.execute("SELECT name FROM sqlite_master WHERE name LIKE 'forbidden%'").fetchall()
    assert created == []  # the refused scripts never reached the driver
