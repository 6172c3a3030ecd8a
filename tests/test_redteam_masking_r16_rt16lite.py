"""Red-team round 16 on SQLite, aiosqlite and DuckDB (helper rt16lite): two databases that differ only in one
customer's secrets (a right and a wrong guess); whatever the governed connection shows must be the same for both.
Each finding shows the difference on the raw connection, that the governed ones answer alike, and that its
innocent look-alikes still run with exact results.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, observe
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, ANNA, CUSTOMERS, OTHERS, _no_clear_value, _sqlite

#: the application's notes: SSNs under a name that says nothing, so only sampled values classify the column
NOTES = ("CREATE TABLE notes (id INTEGER PRIMARY KEY, info TEXT)", "INSERT INTO notes SELECT id, ssn FROM customers")


# -- finding: a connection's row_factory also built the rows of governed_db's own samples (decision 0324) ---------

def _captured(secret: tuple[Any, ...], governed: bool) -> list[Any]:
    """What a capturing ``row_factory`` set on the connection is handed while the agent reads an id."""
    raw = _sqlite(secret, NOTES)
    conn = govern(raw, ATTACKER) if governed else raw
    kept: list[Any] = []
    conn.row_factory = lambda _cur, row: kept.append(tuple(row)) or row
    conn.execute("SELECT id FROM notes WHERE id = 1").fetchall()
    if not governed:  # the oracle, unprotected: the raw connection's own read of the table
        conn.execute("SELECT * FROM notes").fetchall()
    conn.close()
    return kept


def test_a_connections_row_factory_sees_no_sampled_value() -> None:
    """Found in round 16: ``conn.row_factory = f`` on a governed sqlite3 connection was set on the raw connection,
    and governed_db's own catalog reads and samples (run on raw cursors, which inherit it) were built by ``f``:
    a capturing factory was handed every sampled row (``100-99-0000``, ``Anna Quinn``) in clear before the agent
    read anything masked. The caller's factory is now kept on the governed connection and installed, masked, on
    its cursors only."""
    raw = [_captured(s, governed=False) for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = (_captured(s, governed=True) for s in (ALICE, ANNA))
    assert a == b == [(1,)], (a, b)
    _no_clear_value(a)


def _blinded(secret: tuple[Any, ...]) -> list[Any]:
    """A factory that hands governed cursors their rows and blanks every SSN-looking value of any other cursor
    (governed_db's samples), then a read and a filter on the column."""
    conn = govern(_sqlite(secret, NOTES), ATTACKER)
    conn.row_factory = lambda cur, row: row if type(cur) is not sqlite3.Cursor else tuple(
        "x" if isinstance(v, str) and "-" in v else v for v in row)
    seen = [observe(conn, "SELECT id, info FROM notes WHERE id = 1"),
            observe(conn, "SELECT count(*) FROM notes WHERE info LIKE '5%'")]
    conn.close()
    return seen


def test_a_connections_row_factory_cannot_unclassify_a_column() -> None:
    """Found in round 16, the same route the other way: what the factory returned for the samples was what
    classification judged, so a factory that blanked them left ``notes.info`` unclassified: ``SELECT info``
    returned ``100-99-0000`` in clear and ``WHERE info LIKE '5%'`` counted 1 or 0. The samples are now read as
    plain tuples: masked and refused alike."""
    raw = [_sqlite(s, NOTES).execute("SELECT count(*) FROM notes WHERE info LIKE '5%'").fetchall()
           for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _blinded(ALICE), _blinded(ANNA)
    assert a == b, (a, b)
    assert a[0] == (["id", "info"], [(1, "[US_SSN]")]) and "masked-column-predicate" in a[1], a
    _no_clear_value(a)


def test_row_factories_on_the_connection_still_build_rows() -> None:
    """The innocent look-alikes: the documentation's dict factory set on the governed connection builds every
    cursor's rows (clear columns exact, masked ones masked), reads back as set, yields to a cursor's own factory,
    and ``sqlite3.Row`` or ``None`` put back the driver's rows; the raw connection keeps no caller code."""
    raw = _sqlite(ALICE, NOTES)
    conn = govern(raw, ATTACKER)

    def dict_factory(cursor: Any, row: Any) -> dict[str, Any]:
        return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}

    conn.row_factory = dict_factory
    assert conn.row_factory is dict_factory and raw.row_factory is None
    assert conn.execute("SELECT id, city, info FROM notes JOIN customers USING (id) WHERE id < 3 ORDER BY id"
                        ).fetchall() == [{"id": 1, "city": "Paris", "info": "[US_SSN]"},
                                         {"id": 2, "city": "Lyon", "info": "[US_SSN]"}]
    cur = conn.cursor()
    assert cur.execute("SELECT id, amount FROM customers WHERE id = 4").fetchone() == {"id": 4, "amount": 40.0}
    cur.row_factory = lambda _c, row: list(row)
    assert cur.execute("SELECT id, city FROM customers WHERE id = 5").fetchall() == [[5, "Paris"]]
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT id, city FROM customers WHERE id = 2").fetchone()
    assert isinstance(row, sqlite3.Row) and dict(row) == {"id": 2, "city": "Lyon"} and raw.row_factory is sqlite3.Row
    conn.row_factory = None
    assert conn.row_factory is None and conn.execute("SELECT id FROM notes WHERE id = 3").fetchall() == [(3,)]
    conn.close()


def test_a_row_factory_set_before_wrapping_reads_no_sample() -> None:
    """A factory the application set on the raw connection before ``wrap()`` stays its own for its cursors, and
    governed_db's samples are read as plain tuples all the same (a factory returning something else classified
    nothing before): SSNs under a plain name are masked."""
    raw = _sqlite(ANNA, NOTES)
    raw.row_factory = lambda _cur, row: {"row": tuple(row)}
    conn = govern(raw, ATTACKER)
    assert conn.execute("SELECT id, info FROM notes WHERE id = 1").fetchall() == [{"row": (1, "[US_SSN]")}]
    assert raw.row_factory is not None and raw.execute("SELECT id FROM notes WHERE id = 2").fetchall() == [
        {"row": (2,)}]
    conn.close()


# -- finding: aiosqlite read governed_db's samples through the caller's text_factory (decision 0325) ---------------

def _aio_bytes(secret: tuple[Any, ...], factory: Any, governed: bool = True) -> list[Any]:
    """An aiosqlite connection whose caller reads text as ``factory``; a read of the notes and a filter on them."""
    aiosqlite = pytest.importorskip("aiosqlite")

    async def one() -> list[Any]:
        raw = await aiosqlite.connect(":memory:", isolation_level=None)
        for sql in (CUSTOMERS, NOTES[0]):
            await raw.execute(sql)
        await raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", [secret, *OTHERS])
        await raw.execute(NOTES[1])
        conn = govern(raw, ATTACKER) if governed else raw
        conn.text_factory = factory
        seen: list[Any] = []
        for sql in ("SELECT id, info FROM notes WHERE id = 1", "SELECT count(*) FROM notes WHERE info LIKE '5%'"):
            try:
                seen.append([tuple(r) for r in await conn.execute_fetchall(sql)])
            except governed_db.GuardrailViolation as e:
                seen.append(f"refused: {e}")
        await conn.close()
        return seen

    return asyncio.run(one())


@pytest.mark.parametrize("factory", [bytes, bytearray])
def test_aiosqlite_samples_read_text_whatever_the_callers_text_factory(factory: Any) -> None:
    """Found in round 16: aiosqlite ran governed_db's catalog reads and samples on the connection as the caller
    had set it, and ``text_factory = bytes`` (allowed: it keeps nothing) made every sampled SSN bytes, which
    classified nothing: ``notes.info`` was left unmasked, ``SELECT info`` returned ``b'100-99-0000'`` (the
    outgoing scan recognised only the valid SSN ``536-22-8726``) and ``WHERE info LIKE '5%'`` counted 1 or 0.
    The samples are now read as text and tuples on aiosqlite's thread, as sqlite3's are."""
    raw = [_aio_bytes(s, factory, governed=False) for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = (_aio_bytes(s, factory) for s in (ALICE, ANNA))
    assert a == b, (a, b)
    assert a[0][0][0] == 1 and "masked-column-predicate" in a[1], a
    _no_clear_value(a)


def test_aiosqlite_bytes_still_reads_clear_columns_exactly() -> None:
    """The innocent look-alike: under ``text_factory = bytes`` clear text comes back as the caller's bytes, and
    filters on clear columns count exactly; the caller's factory is left as it was set."""
    aiosqlite = pytest.importorskip("aiosqlite")

    async def one() -> None:
        raw = await aiosqlite.connect(":memory:", isolation_level=None)
        await raw.execute(CUSTOMERS)
        await raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", [ALICE, *OTHERS])
        conn = govern(raw, ATTACKER)
        conn.text_factory = bytes
        assert await conn.execute_fetchall("SELECT id, city FROM customers WHERE city = 'Lyon' ORDER BY id") == [
            (2, b"Lyon"), (4, b"Lyon")]
        assert await conn.execute_fetchall("SELECT count(*) FROM customers WHERE city LIKE 'P%'") == [(2,)]
        assert conn.text_factory is bytes and raw.text_factory is bytes
        await conn.close()

    asyncio.run(one())


# -- finding: limits lowered with setlimit made governed_db's own catalog reads fail (decision 0325) -----------------

#: each lowered limit let the agent's short statements run while the catalog reads and samples failed
LIMITS = [("SQLITE_LIMIT_COLUMN", 2), ("SQLITE_LIMIT_EXPR_DEPTH", 1), ("SQLITE_LIMIT_SQL_LENGTH", 40),
          ("SQLITE_LIMIT_VARIABLE_NUMBER", 0)]


def _limited(secret: tuple[Any, ...], name: str, value: int) -> list[Any]:
    raw = _sqlite(secret, NOTES)
    conn = govern(raw, ATTACKER)
    conn.setlimit(getattr(sqlite3, name), value)
    seen = [observe(conn, "SELECT info FROM notes"), observe(conn, "SELECT id FROM notes WHERE info LIKE '5%'"),
            raw.getlimit(getattr(sqlite3, name))]
    conn.close()
    return seen


@pytest.mark.parametrize(("name", "value"), LIMITS)
def test_a_lowered_limit_leaves_no_column_unclassified(name: str, value: int) -> None:
    """Found in round 16: ``setlimit`` refuses only a lower ``SQLITE_LIMIT_LENGTH`` (decision 0170); the other
    limits are the caller's. Below what governed_db's own catalog reads and samples need (two columns, depth 1,
    40 characters of SQL, no parameters) those reads failed while the agent's short statements ran: ``notes`` went
    unclassified, and ``SELECT info FROM notes`` returned ``100-99-0000`` in clear (the scan of outgoing values
    masks only valid SSNs) but ``[US_SSN]`` for ``536-22-8726``. The reads now run with every limit at its hard
    bound, and the caller's limits are put back after them."""
    raw = [_sqlite(s, NOTES).execute("SELECT id FROM notes WHERE info LIKE '5%'").fetchall() for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = (_limited(s, name, value) for s in (ALICE, ANNA))
    assert a == b, (a, b)
    assert a[0] == (["info"], [("[US_SSN]",)] * 5) and "masked-column-predicate" in a[1] and a[2] == value, a
    _no_clear_value(a)


def test_lowered_limits_still_bind_the_callers_statements() -> None:
    """The innocent look-alike: the caller's lowered limits stay in force for its own statements (a statement
    longer than ``SQLITE_LIMIT_SQL_LENGTH`` fails as the driver fails it), short clear reads answer exactly, and
    the limit reads back as the caller set it after governed_db's reads."""
    raw = _sqlite(ALICE, NOTES)
    conn = govern(raw, ATTACKER)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 40)
    assert conn.execute("SELECT id, city FROM customers").fetchall()[1] == (2, "Lyon")
    with pytest.raises(sqlite3.DataError, match="too large"):
        conn.execute("SELECT id FROM customers WHERE city = 'Lyon' AND amount > 0")
    assert raw.getlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH) == 40
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 1000)
    conn.setlimit(sqlite3.SQLITE_LIMIT_COLUMN, 2)
    assert conn.execute("SELECT id, city FROM customers WHERE id = 4").fetchall() == [(4, "Lyon")]
    with pytest.raises(sqlite3.OperationalError, match="too many columns"):
        conn.execute("SELECT id, city, 1 FROM customers")
    assert raw.getlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH) == 1000 and raw.getlimit(sqlite3.SQLITE_LIMIT_COLUMN) == 2
    conn.close()


# -- finding: a DuckDB memory limit set by the agent made governed_db's own catalog reads fail (decision 0325) -------

def _duck_notes(secret: tuple[Any, ...]) -> Any:
    from tests.test_redteam_masking_r13_rt13lite import _duck

    raw = _duck(secret)
    raw.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, info VARCHAR)")
    raw.execute("INSERT INTO notes SELECT id, ssn FROM customers")
    return raw


@pytest.mark.parametrize("environment", ["production", "staging"])
@pytest.mark.parametrize("setting", ["SET memory_limit = '3MB'", "PRAGMA memory_limit = '3MB'",
                                     "SET SESSION max_memory TO '3MB'"])
def test_a_memory_limit_cannot_make_a_table_unclassified(setting: str, environment: str) -> None:
    """Found in round 16: ``memory_limit`` is one of the settings drivers set routinely, so an agent could run
    ``SET memory_limit = '3MB'``. Then governed_db's read of a table's catalog and sample failed with DuckDB's
    out-of-memory error while ``SELECT info FROM notes`` itself still ran: the table was blind, its values only
    scanned as they passed, and ``100-99-0000`` (an SSN the scan does not recognise) came back in clear while
    ``536-22-8726`` came back ``[US_SSN]``. For identities that see masked columns a write of the memory limit is
    now refused, and nothing is changed."""
    from tests.test_redteam_masking_r13_rt13lite import _duck_observe

    raw = [_duck_notes(s).execute("SELECT id FROM notes WHERE info LIKE '5%'").fetchall() for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    seen = []
    for secret in (ALICE, ANNA):
        conn = governed_db.wrap(_duck_notes(secret), identity=ATTACKER, environment=environment, audit=False)
        seen.append([_duck_observe(conn, setting), _duck_observe(conn, "SELECT info FROM notes"),
                     conn.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] != "2.7 MiB"])
        conn.close()
    assert seen[0] == seen[1], seen
    assert "the memory limit" in seen[0][0] and seen[0][1] == (["info"], [("[US_SSN]",)] * 5) and seen[0][2], seen
    _no_clear_value(seen)


def test_memory_limits_stay_settable_where_nothing_is_masked() -> None:
    """The innocent look-alikes: an identity that sees values in clear (an unmask grant) still sets the memory
    limit, an agent still sets ``threads``, and RESET stays the settings rule's to judge alone."""
    from tests.test_redteam_masking_r13_rt13lite import _duck_observe

    owner = governed_db.Identity("dana", roles=["dba"])
    conn = governed_db.wrap(_duck_notes(ALICE), identity=owner, environment="production", audit=False,
                            masking={"unmask": [{"role": "dba"}]})
    assert _duck_observe(conn, "SET memory_limit = '500MB'") == (["Success"], [])
    assert conn.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] in ("476.8 MiB", "500.0 MB")
    conn.close()
    agent = govern(_duck_notes(ALICE), ATTACKER)
    assert _duck_observe(agent, "SET threads = 2") == (["Success"], [])
    assert "the memory limit" not in str(_duck_observe(agent, "RESET memory_limit"))
    assert _duck_observe(agent, "SELECT id FROM notes ORDER BY id LIMIT 2") == (["id"], [(1,), (2,)])
    agent.close()


# -- finding: a trace callback saw the values governed_db's sample bound into its own reads (decision 0324) ---------

def _repeated(secret: tuple[Any, ...]) -> sqlite3.Connection:
    """Notes whose first 4000 rows repeat the customer's SSN: the sample finds one value, and governed_db reads on
    for rows holding another (binding the one it found)."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, info TEXT, city TEXT)")
    raw.executemany("INSERT INTO notes VALUES (?, ?, 'Paris')",
                    [(i, secret[3] if i < 4000 else f"219-45-{1000 + i}") for i in range(4003)])
    return raw


def _traced(secret: tuple[Any, ...], governed: bool) -> list[Any]:
    raw = _repeated(secret)
    conn = govern(raw, ATTACKER) if governed else raw
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    rows = conn.execute("SELECT id, info FROM notes WHERE id = 1").fetchall()
    if not governed:  # the oracle, unprotected: what the same read of rarer values traces on the raw connection
        conn.execute(f"SELECT count(*) FROM notes WHERE info NOT IN ('{secret[3]}')").fetchall()
    conn.set_trace_callback(None)
    conn.close()
    return [rows, seen]


def test_a_trace_callback_sees_no_statement_of_governed_dbs_own() -> None:
    """Found in round 16: ``set_trace_callback`` is allowed, and sqlite3 traces statements with their parameters
    bound. governed_db's read of the rows a sample did not show binds the values the sample found: with a column
    whose first rows repeat one SSN, the callback was handed ``... "info" NOT IN ('100-99-0000', ...)`` in clear
    before the agent read anything masked. The callback set through the governed connection is now skipped for
    governed_db's own catalog reads and samples (it still traces every statement of the caller's)."""
    raw = [_traced(s, governed=False) for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = (_traced(s, governed=True) for s in (ALICE, ANNA))
    assert a == b, (a, b)
    assert a[0] == [(1, "[US_SSN]")] and len(a[1]) == 1 and "notes WHERE id = 1" in a[1][0], a
    _no_clear_value(a)


def test_a_trace_callback_through_aiosqlite_sees_no_sample() -> None:
    """The same through aiosqlite, whose catalog reads run on its own thread: alike, and only the caller's
    statement is traced."""
    aiosqlite = pytest.importorskip("aiosqlite")

    async def one(secret: tuple[Any, ...]) -> list[Any]:
        raw = await aiosqlite.connect(":memory:", isolation_level=None)
        await raw.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, info TEXT, city TEXT)")
        await raw.executemany("INSERT INTO notes VALUES (?, ?, 'Paris')",
                              [(i, secret[3] if i < 4000 else f"219-45-{1000 + i}") for i in range(4003)])
        conn = govern(raw, ATTACKER)
        seen: list[str] = []
        await conn.set_trace_callback(seen.append)
        rows = await conn.execute_fetchall("SELECT id, info FROM notes WHERE id = 1")
        await conn.close()
        return [[tuple(r) for r in rows], [s for s in seen if "notes" in s]]

    a, b = (asyncio.run(one(s)) for s in (ALICE, ANNA))
    assert a == b, (a, b)
    assert a[0] == [(1, "[US_SSN]")] and all("governed_db" not in s for s in a[1]), a
    _no_clear_value(a)


def test_a_trace_callback_still_traces_the_callers_statements() -> None:
    """The innocent look-alike: every statement the caller runs is traced as sqlite3 traces it (parameters bound),
    and ``set_trace_callback(None)`` stops tracing."""
    raw = _sqlite(ALICE, NOTES)
    conn = govern(raw, ATTACKER)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    assert conn.execute("SELECT id, city FROM customers WHERE city = ?", ("Lyon",)).fetchall() == [
        (2, "Lyon"), (4, "Lyon")]
    assert [s for s in seen if "customers" in s] == ["SELECT id, city FROM customers WHERE city = 'Lyon'"]
    conn.set_trace_callback(None)
    conn.execute("SELECT id FROM customers WHERE id = 3").fetchall()
    assert not any("id = 3" in s for s in seen), seen
    conn.close()
