"""Red-team round 13 on SQLite, aiosqlite and DuckDB: two databases that differ only in one customer's secrets (a right
and a wrong guess); a statement the governed connection answers differently for them is a leak. Each finding shows
the difference on the raw connection, that the governed ones answer alike (every byte: rows, names, errors), and
that its innocent look-alikes still run with exact data.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, observe
from tests.test_masking_noninterference import ATTACKER

#: the customer the attacker guesses about, in two versions whose masked forms are byte-identical
ALICE = (1, "Alice Smith", "alice@example.com", "536-22-8726", "+1 415-555-2671", "Paris", 10.0)
ANNA = (1, "Anna Quinn", "anna@example.com", "100-99-0000", "+1 415-555-9971", "Paris", 10.0)
OTHERS = [
    (2, "Bob Jones", "bob@example.org", "219-45-1002", "+1 415-555-0102", "Lyon", 20.0),
    (3, "Carol White", "carol@example.net", "219-45-1003", "+1 415-555-0103", "Nice", 30.0),
    (4, "Dan Brown", "dan@example.com", "219-45-1004", "+1 415-555-0104", "Lyon", 40.0),
    (5, "Eve Black", "eve@example.com", "219-45-1005", "+1 415-555-0105", "Paris", 50.0),
]
CUSTOMERS = ("CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT, email TEXT, ssn TEXT, phone TEXT, "
             "city TEXT, amount REAL)")
CLEAR = ("Alice", "Anna", "536-22", "100-99", "alice@", "anna@", "2671", "9971")


def _sqlite(secret: tuple[Any, ...], setup: tuple[str, ...] = ()) -> sqlite3.Connection:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute(CUSTOMERS)
    raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", [secret, *OTHERS])
    for sql in setup:
        raw.execute(sql)
    return raw


def _sqlite_runs(steps: tuple[str, ...], setup: tuple[str, ...] = (), governed: bool = True) -> list[list[Any]]:
    """What the attacker sees of ``steps`` on each of the two databases."""
    out = []
    for secret in (ALICE, ANNA):
        raw = _sqlite(secret, setup)
        conn = govern(raw, ATTACKER) if governed else raw
        out.append([observe(conn, sql) for sql in steps])
        conn.close()
    return out


def _aiosqlite_runs(steps: tuple[str, ...], setup: tuple[str, ...] = ()) -> list[list[Any]]:
    aiosqlite = pytest.importorskip("aiosqlite")

    async def one(secret: tuple[Any, ...]) -> list[Any]:
        raw = await aiosqlite.connect(":memory:", isolation_level=None)
        await raw.execute(CUSTOMERS)
        await raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", [secret, *OTHERS])
        for sql in setup:
            await raw.execute(sql)
        conn = govern(raw, ATTACKER)
        seen: list[Any] = []
        for sql in steps:
            try:
                cur = await conn.execute(sql)
                seen.append(([d[0] for d in cur.description or ()], [tuple(r) for r in await cur.fetchall()]))
            except governed_db.GuardrailViolation as e:
                seen.append(f"refused: {e}")
            except Exception as e:
                seen.append(f"{type(e).__name__}: {e}")
        await conn.close()
        return seen

    return [asyncio.run(one(secret)) for secret in (ALICE, ANNA)]


def _no_clear_value(seen: Any) -> None:
    text = repr(seen)
    assert not any(v in text for v in CLEAR), text


# -- finding 1: SQLite reads a single-quoted string as a name where its grammar wants one (decision 0277) --------

#: each reads a masked column through a name SQLite takes from a string: the value itself, or a predicate on it
QUOTED_NAMES = [
    "SELECT 'customers'.full_name FROM customers WHERE id = 1",
    "SELECT 'c'.'email' FROM customers AS c WHERE id = 1",
    "SELECT upper('customers'.full_name) FROM customers WHERE id = 1",
    "SELECT 'c'.* FROM customers AS c WHERE id = 1",
    "SELECT 'customers'.* FROM customers WHERE id = 1",
    "SELECT count(*) FROM customers WHERE 'customers'.ssn LIKE '5%'",
    "SELECT count(*) FROM customers c WHERE 'c'.ssn LIKE '5%'",
    "SELECT count(*) FROM customers WHERE 'main'.'customers'.'ssn' LIKE '5%'",
    "SELECT id FROM customers ORDER BY 'customers'.ssn LIMIT 1",
    "SELECT count(*) FROM customers a JOIN (SELECT '536-22-8726' AS ssn) b USING ('ssn')",
]


@pytest.mark.parametrize("sql", QUOTED_NAMES)
def test_a_name_written_as_a_string_is_the_column_it_names(sql: str) -> None:
    """Found in round 13: SQLite takes a single-quoted string as a name where its grammar wants a name (``nm ::=
    STRING``): ``'customers'.full_name`` is the column, ``USING ('ssn')`` joins on it. sqlglot read those strings
    as string literals, so analysis saw a constant: ``SELECT 'customers'.full_name`` and ``'c'.*`` returned names,
    e-mails and SSNs in clear, and ``WHERE 'c'.ssn LIKE '5%'`` answered 1 or 0 by the SSN. SQLite text is now
    tokenized as SQLite reads it (decision 0277)."""
    raw = _sqlite_runs((sql,), governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _sqlite_runs((sql,))
    assert a == b, (a, b)
    _no_clear_value(a)


def test_a_name_written_as_a_string_through_aiosqlite() -> None:
    """The same reads through aiosqlite: masked or refused alike."""
    steps = ("SELECT 'customers'.full_name FROM customers WHERE id = 1",
             "SELECT count(*) FROM customers c WHERE 'c'.ssn LIKE '5%'")
    a, b = _aiosqlite_runs(steps)
    assert a == b, (a, b)
    assert a[0] == (["full_name"], [("[PERSON_NAME]",)]), a
    assert str(a[1]).startswith("refused: ") and "masked-column-predicate" in str(a[1]), a
    _no_clear_value(a)


VIEW = ("CREATE VIEW v AS SELECT 'c'.id AS id, 'c'.full_name AS who, c.city AS city FROM customers c",)


def test_a_view_and_a_copy_that_name_a_column_with_a_string() -> None:
    """Found in round 13 with the same spelling: an application's view ``SELECT 'c'.full_name AS who`` was traced as
    a constant (its names came back in clear), and ``INSERT INTO tt(a) SELECT 'c'.full_name ...`` was no copy of a
    masked column, so the names read back from the agent's own temporary table in clear."""
    steps = ("SELECT who, city FROM v ORDER BY id", "CREATE TEMP TABLE tt (a TEXT)",
             "INSERT INTO tt(a) SELECT 'c'.full_name FROM customers c WHERE id = 1", "SELECT a FROM tt")
    raw = _sqlite_runs(steps, VIEW, governed=False)
    assert raw[0][0] != raw[1][0] and raw[0][3] != raw[1][3], raw
    a, b = _sqlite_runs(steps, VIEW)
    assert a == b, (a, b)
    assert a[0][1][0] == ("[PERSON_NAME]", "Paris"), a
    assert "masked-column-copy" in str(a[2]) and a[3] == (["a"], []), a
    _no_clear_value(a)


def test_names_written_as_strings_over_innocent_columns_still_run() -> None:
    """The innocent look-alikes: the same spellings over columns nobody masked, string constants, and a window
    named by a string, run as written with exact results."""
    steps = (
        "SELECT 'c'.city, 'c'.id, c.'amount' FROM customers AS c WHERE 'c'.city = 'Paris' ORDER BY 'c'.id",
        "SELECT count(*) FROM customers a JOIN customers b USING ('id', 'city')",
        "SELECT 'plain string', 'a' || 'b', 'x' = 'x' FROM customers WHERE id = 1",
        "SELECT id, row_number() OVER 'w' FROM customers WINDOW 'w' AS (ORDER BY id) ORDER BY id LIMIT 2",
        "SELECT id, 'customers'.city FROM customers WHERE city = 'Lyon' ORDER BY id",
    )
    a, b = _sqlite_runs(steps)
    assert a == b, (a, b)
    assert a == [
        (["city", "id", "amount"], [("Paris", 1, 10.0), ("Paris", 5, 50.0)]),
        (["count(*)"], [(5,)]),
        (["'plain string'", "'a' || 'b'", "'x' = 'x'"], [("plain string", "ab", 1)]),
        (["id", "row_number() OVER 'w'"], [(1, 1), (2, 2)]),
        (["id", "city"], [(2, "Lyon"), (4, "Lyon")]),
    ], a


# -- finding 2: a DuckDB Python function may take the name of one of DuckDB's own (decision 0278) ----------------

duckdb = pytest.importorskip("duckdb")


def _duck(secret: tuple[Any, ...]) -> Any:
    raw = duckdb.connect(":memory:")
    raw.execute(CUSTOMERS.replace("REAL", "DOUBLE"))
    raw.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?)", [list(secret), *map(list, OTHERS)])
    return raw


def _starts_with_5(value: str | None) -> str:
    """The attacker's function: it fails exactly when the value it is given begins with a 5."""
    if value is not None and value.startswith("5"):
        raise ValueError("a five")
    return "k"


def _register_and_read(conn: Any, name: str, sql: str) -> list[Any]:
    seen: list[Any] = []
    try:
        conn.create_function(name, _starts_with_5, ["VARCHAR"], "VARCHAR")
        seen.append("registered")
    except governed_db.GuardrailViolation as e:
        seen.append(f"refused: {e}")
    seen.append(observe(conn, sql))
    return seen


@pytest.mark.parametrize("name", ["concat", "hash", "CONCAT"])
def test_a_python_function_may_not_take_the_name_of_a_duckdb_function(name: str) -> None:
    """Found in round 13: DuckDB lets ``create_function('concat', f, ['VARCHAR'], 'VARCHAR')`` stand in for its own
    ``concat`` (and ``hash``...) for the argument types it declares, and the governed connection passed
    ``create_function`` through. ``SELECT concat(ssn) ...``, which masking lets through (masked whole), then called
    ``f`` with the raw SSN, and whether it raised told a 5 from any other first digit. A Python function may no
    longer take a name DuckDB or masking knows (decision 0278)."""
    sql = f"SELECT {name}(ssn) FROM customers WHERE id = 1"
    raw = [_register_and_read(_duck(s), name, sql) for s in (ALICE, ANNA)]
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    assert "a five" in str(raw[0][1]) and raw[1][1][1] == [("k",)], raw
    a, b = (_register_and_read(govern(_duck(s), ATTACKER), name, sql) for s in (ALICE, ANNA))
    assert a == b, (a, b)
    assert a[0].startswith("refused: ") and "would replace one DuckDB" in a[0], a
    _no_clear_value(a)


def test_a_python_function_of_its_own_name_still_registers() -> None:
    """The innocent look-alike: a function under a name of its own registers and runs over innocent columns; given a
    masked column it is refused as a copy, as before; the caller's pending result survives the name check."""
    conn = govern(_duck(ALICE), ATTACKER)
    conn.execute("SELECT id FROM customers WHERE id < 3 ORDER BY id")
    conn.fetchall()
    conn.create_function("city_tag", lambda v: f"<{v}>", ["VARCHAR"], "VARCHAR")
    assert observe(conn, "SELECT city_tag(city) FROM customers WHERE id = 2") == (["city_tag(city)"], [("<Lyon>",)])
    assert "masked-column-copy" in str(observe(conn, "SELECT city_tag(ssn) FROM customers WHERE id = 2"))
    conn.execute("SELECT id FROM customers WHERE id < 3 ORDER BY id")
    with pytest.raises(governed_db.GuardrailViolation):
        conn.create_function("upper", lambda v: v, ["VARCHAR"], "VARCHAR")
    assert conn.fetchall() == [(1,), (2,)]
    conn.close()


# -- finding 3: SQLite reads a Tcl-style parameter as one token, quotes and all (decision 0279) ------------------

#: each hides what it reads from a parser that takes the quote inside ``$a(')`` for the start of a string
TCL_PARAMETERS = [
    ("SELECT $a(') FROM customers WHERE ssn LIKE $b(')", {"a(')": 1, "b(')": "5%"}),
    ("SELECT $a(') FROM customers WHERE id = 1 UNION ALL SELECT full_name FROM customers WHERE id = $b(')",
     {"a(')": "x", "b(')": 1}),
    ("SELECT :a(') FROM customers WHERE ssn LIKE :b(')", {"a(')": 1, "b(')": "5%"}),
    ("SELECT @a::b, full_name FROM customers WHERE id = 1", {"a::b": 1}),
    ("SELECT #a, full_name FROM customers WHERE id = 1", {"a": 1}),
]


def _bound(conn: Any, sql: str, params: dict[str, Any]) -> Any:
    try:
        cur = conn.execute(sql, params)
        return [tuple(r) for r in cur.fetchall()]
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    except Exception as e:
        return f"{type(e).__name__}: {e}"


@pytest.mark.parametrize(("sql", "params"), TCL_PARAMETERS)
def test_a_tcl_parameter_cannot_hide_sql_from_the_analyser(sql: str, params: dict[str, Any]) -> None:
    """Found in round 13: SQLite's tokenizer reads ``$a(...)`` (also ``@a(...)``, ``:a(...)``: anything up to the
    next ``)`` without a space) as one parameter, so in ``SELECT $a(') FROM customers WHERE ssn LIKE $b(')`` the
    two quotes are inside parameters; the analyser read a string from one to the other and saw ``SELECT $a('...')``
    reading no table. The rows answered the SSN's first digit, and ``UNION ALL SELECT full_name ...`` returned the
    names in clear. A Tcl-style parameter (or ``#name``) is now refused unanalysed (decision 0279); the ``:a(')``,
    ``@a::b`` and ``#a`` spellings happened to fail to parse before (refused as unparseable), now by the same rule."""
    seen = [[_bound(govern(_sqlite(s), ATTACKER), sql, params)] for s in (ALICE, ANNA)]
    assert seen[0] == seen[1], seen
    assert str(seen[0][0]).startswith("refused: ") and "one parameter" in str(seen[0][0]), seen
    _no_clear_value(seen)


def test_the_tcl_parameter_oracle_exists_unprotected() -> None:
    """The raw connection: the first statement answers by the SSN, the second returns the name."""
    first, second = TCL_PARAMETERS[0], TCL_PARAMETERS[1]
    assert [_bound(_sqlite(s), *first) for s in (ALICE, ANNA)] == [[(1,)], []]
    assert [_bound(_sqlite(s), *second)[1] for s in (ALICE, ANNA)] == [("Alice Smith",), ("Anna Quinn",)]


def test_parameters_as_applications_bind_them_still_run() -> None:
    """The innocent look-alikes: named and positional parameters, and Tcl-looking text inside strings, quoted names
    and comments, run as before."""
    conn = govern(_sqlite(ALICE), ATTACKER)
    assert _bound(conn, "SELECT city FROM customers WHERE id = :c", {"c": 2}) == [("Lyon",)]
    assert _bound(conn, "SELECT city FROM customers WHERE id = @one", {"one": 1}) == [("Paris",)]
    assert _bound(conn, "SELECT city, '$a(x)', 'a#b' AS \"$b(c)\" FROM customers WHERE id = 3 -- $c(')\n", {}) == [
        ("Nice", "$a(x)", "a#b")]
    assert _bound(conn, "SELECT /* @x::y */ city FROM customers WHERE id = ?", (4,)) == [("Lyon",)]  # type: ignore[arg-type]
    assert _bound(conn, "SELECT full_name FROM customers WHERE id = :id", {"id": 1}) == [("[PERSON_NAME]",)]


# -- finding 4: a subquery's name that its own table lacks is the enclosing query's column (decision 0277) ----------

SSNS = ("536-22-8726", "100-99-0000")  # ``100-99-0000`` is no valid SSN: only the column's label masks it


def _info_table(raw: Any, secret: str) -> None:
    """A column of SSNs under a name that says nothing (``info``): masked by what its sample holds."""
    raw.execute("CREATE TABLE v (id int, info text, town text)")
    rows = [(1, secret, "Paris")] + [(i, f"219-45-{1000 + i}", "Lyon") for i in range(2, 20)]
    raw.executemany("INSERT INTO v VALUES (?, ?, ?)", rows)


CORRELATED = (
    "SELECT count(*) FROM v WHERE EXISTS (SELECT 1 FROM g WHERE w = info)",
    "SELECT count(*) FROM v WHERE EXISTS (SELECT 1 FROM g WHERE info LIKE '5%')",
    "SELECT (SELECT upper(info) FROM g) FROM v WHERE id = 1",
)


def _fresh_temporary_table(secret: str, db: str, governed: bool = True) -> list[Any]:
    raw = sqlite3.connect(":memory:", isolation_level=None) if db == "sqlite" else duckdb.connect(":memory:")
    _info_table(raw, secret)
    conn = govern(raw, ATTACKER) if governed else raw
    run = (lambda sql: observe(conn, sql)) if db == "sqlite" else (lambda sql: _duck_observe(conn, sql))
    seen = [run(sql) for sql in ("CREATE TEMP TABLE g (w TEXT)", "INSERT INTO g VALUES ('536-22-8726')", *CORRELATED)]
    conn.close()
    return seen


def _duck_observe(conn: Any, sql: str) -> Any:
    """``observe`` on DuckDB's connection itself (its ``cursor()`` is another connection, without the temporary
    table)."""
    try:
        conn.execute(sql)
        return [d[0] for d in conn.description or ()], [tuple(r) for r in conn.fetchall()] if conn.description else []
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    except Exception as e:
        return f"{type(e).__name__}: {e}"


@pytest.mark.parametrize("db", ["sqlite", "duckdb"])
def test_a_correlated_name_through_a_fresh_temporary_table(db: str) -> None:
    """Found in round 13: ``g``, a temporary table the agent had just created, was read by masking while its CREATE was
    judged (missing then) and kept with unknown columns for 30 s; an unqualified ``info`` in a subquery over ``g`` was
    then taken for ``g.info`` (unlabelled), while the database reads the enclosing ``v.info`` (SSNs): ``EXISTS
    (SELECT 1 FROM g WHERE w = info)`` counted a guessed SSN and ``(SELECT upper(info) FROM g)`` returned
    ``100-99-0000`` in clear. Masking now reads tables again after DDL runs, and a name a table of unknown columns
    may lack is also the enclosing query's column (decision 0277)."""
    raw = [_fresh_temporary_table(s, db, governed=False) for s in SSNS]
    assert raw[0][2:] != raw[1][2:], raw  # the oracle, unprotected
    a, b = (_fresh_temporary_table(s, db) for s in SSNS)
    assert a == b, (a, b)
    assert all("masked-column-predicate" in str(x) for x in a[2:4]), a
    assert a[4][1] == [("[US_SSN]",)], a
    assert "100-99" not in repr(a), a


def _other_connection(secret: str, path: str) -> list[Any]:
    """The governed connection looks for ``g`` before it exists (no such table); another connection (the
    application's) then creates it; the governed one reads ``v.info`` through a subquery over ``g``."""
    raw = sqlite3.connect(path, isolation_level=None)
    _info_table(raw, secret)
    conn = govern(raw, ATTACKER)
    seen = [observe(conn, "SELECT count(*) FROM g")]
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE g (w TEXT)")
    other.execute("INSERT INTO g VALUES ('536-22-8726')")
    other.close()
    seen += [observe(conn, sql) for sql in CORRELATED]
    conn.close()
    return seen


def test_a_correlated_name_through_a_table_another_connection_made(tmp_path: Any) -> None:
    """The same through a table whose columns this connection does not know yet (another connection created it after
    this one found it missing): the subquery's ``info`` is the enclosing ``v.info`` or ``g.info``, and either way a
    predicate on it is refused and its value masked."""
    a, b = (_other_connection(s, str(tmp_path / f"{i}.db")) for i, s in enumerate(SSNS))
    assert a == b, (a, b)
    assert all("masked-column-predicate" in str(x) for x in a[1:3]), a
    assert a[3][1] == [("[US_SSN]",)], a
    assert "100-99" not in repr(a), a


def _made_elsewhere(secret: str, path: str, governed: bool = True) -> list[Any]:
    """The governed connection names ``w`` before it exists; the application then creates ``w`` and fills it with
    SSNs; the governed connection filters on it at once (well within ``RETRY_SECONDS``)."""
    raw = sqlite3.connect(path, isolation_level=None)
    conn = govern(raw, ATTACKER) if governed else raw
    seen = [observe(conn, "SELECT count(*) FROM w")]
    other = sqlite3.connect(path, isolation_level=None)
    _info_table(other, secret)
    other.execute("ALTER TABLE v RENAME TO w")
    other.close()
    seen += [observe(conn, sql) for sql in ("SELECT count(*) FROM w WHERE info LIKE '5%'", "SELECT info FROM w WHERE id = 1")]
    conn.close()
    return seen


def test_a_table_another_connection_made_since_is_read_before_it_is_judged(tmp_path: Any) -> None:
    """Found in round 13 (the case round 12 left open, reached without any hook): a table this connection had found
    missing was remembered without columns for 30 s, so once another connection made it, ``WHERE info LIKE '5%'``
    ran on its SSNs (1 against 0) and ``100-99-0000`` came back in clear. A table whose columns are not known is
    read again before a statement naming it is judged (decision 0277)."""
    raw = [_made_elsewhere(s, str(tmp_path / f"raw{i}.db"), governed=False) for i, s in enumerate(SSNS)]
    assert raw[0][1] != raw[1][1], raw
    a, b = (_made_elsewhere(s, str(tmp_path / f"gov{i}.db")) for i, s in enumerate(SSNS))
    assert a == b, (a, b)
    assert "masked-column-predicate" in str(a[1]) and a[2] == (["info"], [("[US_SSN]",)]), a
    assert "100-99" not in repr(a), a


def _made_elsewhere_async(secret: str, path: str) -> list[Any]:
    """``_made_elsewhere`` through aiosqlite, whose catalog reads are made (awaited) before a statement is judged."""
    aiosqlite = pytest.importorskip("aiosqlite")

    async def go() -> list[Any]:
        conn = govern(await aiosqlite.connect(path, isolation_level=None), ATTACKER)

        async def run(sql: str) -> Any:
            try:
                cur = await conn.execute(sql)
                return [tuple(r) for r in await cur.fetchall()]
            except governed_db.GuardrailViolation as e:
                return f"refused: {e}"
            except Exception as e:
                return f"{type(e).__name__}: {e}"

        seen = [await run("SELECT count(*) FROM w")]
        other = sqlite3.connect(path, isolation_level=None)
        _info_table(other, secret)
        other.execute("ALTER TABLE v RENAME TO w")
        other.close()
        for sql in ("SELECT count(*) FROM w WHERE info LIKE '5%'", "SELECT info FROM w WHERE id = 1",
                    "SELECT id, town FROM w WHERE id < 3 ORDER BY id"):
            seen.append(await run(sql))
        await conn.close()
        return seen

    return asyncio.run(go())


def test_a_table_another_connection_made_since_through_aiosqlite(tmp_path: Any) -> None:
    """The same through aiosqlite (found leaking after the sqlite3 fix: its catalog is read before the statement is
    judged, and a table remembered without columns was not read again there): refused and masked alike, and the
    innocent read of the new table runs."""
    a, b = (_made_elsewhere_async(s, str(tmp_path / f"a{i}.db")) for i, s in enumerate(SSNS))
    assert a == b, (a, b)
    assert "masked-column-predicate" in str(a[1]) and a[2] == [("[US_SSN]",)], a
    assert a[3] == [(1, "Paris"), (2, "Lyon")], a
    assert "100-99" not in repr(a), a


def test_subqueries_over_fresh_tables_that_name_their_own_or_innocent_columns_still_run() -> None:
    """The innocent look-alikes: correlated subqueries over a fresh temporary table that compare its column with an
    innocent one, and plain reads of the new table, run with exact answers."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    _info_table(raw, SSNS[0])
    conn = govern(raw, ATTACKER)
    steps = ("CREATE TEMP TABLE t2 (w TEXT, n INT)", "INSERT INTO t2 VALUES ('Paris', 1), ('Nice', 2)",
             "SELECT count(*) FROM v WHERE EXISTS (SELECT 1 FROM t2 WHERE w = town)",
             "SELECT id, (SELECT n FROM t2 WHERE w = town) FROM v WHERE id < 3 ORDER BY id",
             "SELECT w, n FROM t2 WHERE n > 1", "SELECT count(*) FROM v WHERE town IN (SELECT w FROM t2)")
    seen = [observe(conn, sql) for sql in steps]
    assert seen[2:] == [(["count(*)"], [(1,)]), (["id", "(SELECT n FROM t2 WHERE w = town)"], [(1, 1), (2, None)]),
                        (["w", "n"], [("Nice", 2)]), (["count(*)"], [(1,)])], seen
    conn.close()
