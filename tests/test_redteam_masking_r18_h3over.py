"""Round 18 over-refusals (h3over, issue 12): innocent PostgreSQL statements masking refused, now run — and the
leak guards that show the allowance opened nothing (decisions 0360-0362).

* ``%%`` in a statement run with parameters (psycopg, psycopg2) is the driver's escaped ``%``: it was refused as
  unparseable; it is read as ``%`` now. Without parameters (and through asyncpg) the server reads an operator
  ``%%`` (one the caller may define): refused, saying so (0360).
* asyncpg UPDATE/DELETE of a small (watched) table with masked columns was refused as ``masked-column-constraint``
  ("constraints unreadable"): the watched-table probe traced the write before its constraints were read with
  await, and the failed replayed read was kept as the catalog's answer (0361).
* ``UPDATE/DELETE ... WHERE CURRENT OF c`` was refused as unparseable: it is the cursor's current row, one row,
  chosen by the cursor's own (judged) query and order (0360).
* ``SELECT ... INTO TEMP t`` of clear columns was refused by the effect guard as a write of every row of ``t``
  (it makes ``t``); of a masked column it is refused as ``CREATE TABLE AS`` is, ``masked-column-copy`` (0362).
* ``concat(full_name, p::varchar(10))``: a text of another table cast to a short type counted as a long partner
  (0350); PostgreSQL cuts it to the length, so it is short (0362).

Every leak guard runs the statement over two copies of the people that differ in row 1's masked values (the
guessed SSN stored, or another; an 11- or 108-character name) and asserts the governed outcome is the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db.sql.analysis import analyze
from tests._redteam import (
    AGENT,
    CURIOUS_AGENT,
    LONG_NAME,
    asyncpg_variants,
    govern,
    pg_connect,
    pg_stored_people,
)

pytestmark = pytest.mark.usefixtures("pg_dsn")

GUESS = "536-22-8726"
#: row 1 per copy: the guessed SSN and a short name, or another SSN and a long name
FIRST = {"a": ("Alice Smith", GUESS), "b": (LONG_NAME, "123-45-6789")}


def _make(admin: Any, table: str, variant: str) -> None:
    admin.execute(
        f"CREATE TABLE {table} (id int primary key, full_name text, email text UNIQUE, ssn text, city text, "
        "score int)"
    )
    admin.execute(f"CREATE INDEX ON {table} (ssn)")
    name, ssn = FIRST[variant]
    admin.execute(f"INSERT INTO {table} VALUES (1, %s, 'alice@example.com', %s, 'Paris', 1)", (name, ssn))
    admin.execute(
        f"INSERT INTO {table} SELECT g, 'Person Number ' || g, 'p' || g || '@example.com', "
        f"'536-22-' || (1000 + g), CASE WHEN g % 2 = 0 THEN 'Lyon' ELSE 'Paris' END, g FROM generate_series(2, 30) g"
    )


@pytest.fixture
def people(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per copy a and b: 30 people (a small table: masking reads it whole, 0268) differing only in row 1."""
    names = {v: f"r18h3_{unique}_{v}" for v in ("a", "b")}
    for v, t in names.items():
        _make(pg_conn, t, v)
    yield names
    for t in names.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def _run(conn: Any, sql: str, params: Any = None) -> Any:
    """Rows (or the row count) of ``sql`` on a DB-API connection, or the refusal's rules, or the error's class."""
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return [tuple(r) for r in cur.fetchall()] if cur.description else cur.rowcount
    except governed_db.GuardrailViolation as e:
        return f"refused: {sorted(e.decision.rules) if e.decision else e}"
    except Exception as e:
        return type(e).__name__


def _rows(admin: Any, table: str) -> list[tuple[Any, ...]]:
    return admin.execute(f"SELECT id, city, score, email FROM {table} ORDER BY id").fetchall()


# -- '%%' with parameters (0360) ----------------------------------------------------------------------------------
PERCENT_READS = [
    ("SELECT id, score %% 7 FROM {t} WHERE id < %s ORDER BY id", (4,)),
    ("SELECT id, score %% 7 FROM {t} WHERE city LIKE 'P%%' AND id < %(n)s ORDER BY id", {"n": 6}),
    # the order guard adds the key order (an index on the masked ssn) through the '%%'
    ("SELECT id, score %% 7, ssn FROM {t} WHERE id < %s LIMIT 3", (9,)),
    ("SELECT count(*) FROM {t} WHERE score %% 10 = %s", (1,)),
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize(("sql", "params"), PERCENT_READS)
def test_escaped_percent_with_parameters_runs(
    people: dict[str, str], driver: str, sql: str, params: Any
) -> None:
    """The raw connection's rows, the masked SSN masked (it was refused as unparseable)."""
    raw, gov = pg_connect(driver), govern(pg_connect(driver))
    try:
        text = sql.format(t=people["a"])
        want, got = _run(raw, text, params), _run(gov, text, params)
    finally:
        raw.close()
        gov.close()
    assert isinstance(got, list) and got, got
    if "ssn" in sql:
        want = [(*r[:-1], "[US_SSN]") for r in sorted(want)]
    assert got == want


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_escaped_percent_in_a_write_changes_the_raw_rows(
    pg_conn: Any, people: dict[str, str], driver: str
) -> None:
    """``UPDATE ... score %% 5 WHERE id %% 10 = %s`` (a multi-row write locked in key order, 0351): the same rows
    as the raw connection changes in the other copy."""
    sql = "UPDATE {t} SET score = score %% 5 WHERE id %% 10 = %s"
    raw, gov = pg_connect(driver), govern(pg_connect(driver))
    try:
        assert _run(raw, sql.format(t=people["b"]), (1,)) == 3
        assert _run(gov, sql.format(t=people["a"]), (1,)) == 3
    finally:
        raw.close()
        gov.close()
    got, want = _rows(pg_conn, people["a"]), _rows(pg_conn, people["b"])
    assert got == want and [r[2] for r in got if r[0] in (1, 11, 21)] == [1, 1, 1], got


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_escaped_percent_without_parameters_is_refused_saying_why(
    people: dict[str, str], driver: str
) -> None:
    """Without parameters the driver sends '%%' as it is: an operator '%%' the server would run (one the caller may
    have defined), which the analyser cannot judge. Refused with the reason and the remedy, in both copies."""
    gov = govern(pg_connect(driver))
    seen = []
    try:
        for t in people.values():
            try:
                gov.cursor().execute(f"SELECT id, score %% 7 FROM {t} WHERE id < 3")
                seen.append("ran")
            except governed_db.GuardrailViolation as e:
                seen.append(str(e).replace(t, "T"))
    finally:
        gov.close()
    assert seen[0] == seen[1], seen
    assert "'%%' outside a string is the driver's escaped '%' only when" in seen[0], seen
    assert "write '%' where no parameters are passed" in seen[0], seen


def test_escaped_percent_is_no_disguise_for_a_masked_predicate(people: dict[str, str]) -> None:
    """``ssn LIKE '536%%'`` with parameters filters on the masked SSN: refused in both copies (the right guess
    and a wrong one), as without the '%%'."""
    raw, gov = pg_connect("psycopg"), govern(pg_connect("psycopg"))
    try:
        sql = "SELECT id FROM {t} WHERE ssn LIKE %s AND id = %s"
        oracle = [_run(raw, sql.format(t=t), ("536-22-87%%", 1)) for t in people.values()]
        seen = [_run(gov, sql.format(t=t), ("536-22-87%%", 1)) for t in people.values()]
        pct = [
            _run(gov, f"SELECT id FROM {t} WHERE ssn LIKE '536-22-87%%' AND id = %s", (1,))
            for t in people.values()
        ]
    finally:
        raw.close()
        gov.close()
    assert oracle[0] != oracle[1], oracle  # the raw connection tells the right guess
    assert seen[0] == seen[1] == pct[0] == pct[1] == "refused: ['masked-column-predicate']", (seen, pct)


def test_asyncpg_sends_percent_as_it_is_and_is_refused(people: dict[str, str]) -> None:
    """asyncpg never unescapes: '%%' is an operator there, refused saying so."""

    async def run() -> str:
        import asyncpg

        from tests.conftest import PG_DSN

        parts = dict(p.split("=", 1) for p in PG_DSN.split())
        conn = govern(await asyncpg.connect(f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/"
                                            f"{parts['dbname']}"))  # fmt: skip
        try:
            await conn.fetch(f"SELECT id, score %% 7 FROM {people['a']} WHERE id < $1", 3)
            return "ran"
        except governed_db.GuardrailViolation as e:
            return str(e)
        finally:
            await conn.close()

    assert "escaped '%' only when the statement is passed parameters" in asyncio.run(run())


def test_percent_outside_strings_only_is_read_as_escaped() -> None:
    """The analysis reads '%%' outside strings as '%' (flagged), keeps a string's text, and records the text as
    the driver got it."""
    a = analyze("SELECT score %% 7, 'a%%' FROM t WHERE id = %s", "postgres")
    assert a.error is None and "escaped-percent" in a.flags
    assert a.normalized == "SELECT score %% ?, ? FROM t WHERE id = %s"
    assert "escaped-percent" not in analyze("SELECT score % 7, 'a%%' FROM t", "postgres").flags


# -- asyncpg writes of a small table (0361) -----------------------------------------------------------------------
def _asyncpg(script: Any, identity: governed_db.Identity | None = AGENT) -> Any:
    """``await script(conn)`` on an asyncpg session (governed for ``identity``, or raw for ``None``)."""
    import asyncpg

    from tests.conftest import PG_DSN

    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"

    async def run() -> Any:
        conn = await asyncpg.connect(url)
        if identity is not None:
            conn = govern(conn, identity)
        try:
            return await script(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


ASYNC_WRITES = [
    ("execute", "UPDATE {t} SET city = 'Nice' WHERE score < 4", ()),
    ("execute", "UPDATE {t} SET city = $1 WHERE score < $2", ("Nice", 4)),
    ("execute", "DELETE FROM {t} WHERE id = $1", (2,)),
    ("fetch", "UPDATE {t} SET city = 'Nice' WHERE score < 4 RETURNING id, city", ()),
    ("execute", "UPDATE {t} SET score = score + 1 WHERE city = 'Lyon'", ()),
]


@pytest.mark.parametrize(("method", "sql", "args"), ASYNC_WRITES)
def test_asyncpg_writes_of_a_small_masked_table_run(
    pg_conn: Any, people: dict[str, str], method: str, sql: str, args: tuple[Any, ...]
) -> None:
    """The first statement of the session writes the table (its constraints never read before): it runs, with the
    raw connection's result, and the table holds what the raw write made of the other copy."""

    def script(text: str) -> Any:
        async def go(conn: Any) -> Any:
            out = await getattr(conn, method)(text, *args)
            return [tuple(r) for r in out] if isinstance(out, list) else out

        return go

    want = _asyncpg(script(sql.format(t=people["b"])), None)
    got = _asyncpg(script(sql.format(t=people["a"])))
    assert got == want, got
    assert _rows(pg_conn, people["a"]) == _rows(pg_conn, people["b"])


def test_asyncpg_write_of_a_masked_unique_column_is_refused_by_its_key(people: dict[str, str]) -> None:
    """The constraints are read now: an UPDATE giving the masked, unique e-mail a guessed value is refused by the
    unique key (not as unreadable), the same in both copies; the raw connection tells the copies apart."""

    def script(t: str) -> Any:
        async def go(conn: Any) -> Any:
            try:
                return await conn.execute(f"UPDATE {t} SET email = $1 WHERE id = 2", "alice@example.com")
            except governed_db.GuardrailViolation as e:
                return str(e).replace(t, "T")
            except Exception as e:
                return type(e).__name__

        return go

    seen = [_asyncpg(script(t)) for t in people.values()]
    assert seen[0] == seen[1], seen
    assert (
        "masked-column-constraint" in seen[0] and "unique key" in seen[0] and "unreadable" not in seen[0]
    ), seen


# -- UPDATE/DELETE ... WHERE CURRENT OF (0360) --------------------------------------------------------------------
CURSOR_SCRIPT = [
    "DECLARE r18c CURSOR FOR SELECT id, city FROM {t} WHERE id > 1 ORDER BY id FOR UPDATE",
    "FETCH 2 FROM r18c",
    "UPDATE {t} SET city = 'Nice', score = score * 10 WHERE CURRENT OF r18c RETURNING id, city, score",
    "FETCH NEXT FROM r18c",
    "DELETE FROM {t} WHERE CURRENT OF r18c",
    "CLOSE r18c",
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_where_current_of_changes_the_cursors_row(pg_conn: Any, people: dict[str, str], driver: str) -> None:
    """What the raw connection sees of the script over copy b, the governed one sees over copy a; committed, the
    two tables hold the same rows (row 3 changed, row 4 deleted)."""

    def script(conn: Any, t: str) -> list[Any]:
        out = [_run(conn, s.format(t=t)) for s in CURSOR_SCRIPT]
        conn.commit()
        return out

    raw, gov = pg_connect(driver, autocommit=False), govern(pg_connect(driver, autocommit=False))
    try:
        want, got = script(raw, people["b"]), script(gov, people["a"])
    finally:
        raw.close()
        gov.close()
    assert got == want, got
    assert got[2] == [(3, "Nice", 30)] and got[4] == 1, got
    rows = _rows(pg_conn, people["a"])
    assert rows == _rows(pg_conn, people["b"]) and len(rows) == 29
    assert (3, "Nice", 30, "p3@example.com") in rows and all(r[0] != 4 for r in rows)


def test_where_current_of_tells_no_masked_value(people: dict[str, str]) -> None:
    """Over both copies (the guessed SSN stored in row 1 or not; a short or a long name), the same script answers
    the same: which row is current is the cursor's key order; writing a guess into the masked unique e-mail is
    still refused (its key compares it with the stored ones)."""
    script = [
        "DECLARE r18g CURSOR FOR SELECT id FROM {t} ORDER BY id FOR UPDATE",
        "FETCH NEXT FROM r18g",
        "UPDATE {t} SET city = 'Nice' WHERE CURRENT OF r18g RETURNING id, city",
        "UPDATE {t} SET email = 'p2@example.com' WHERE CURRENT OF r18g",
    ]
    seen = []
    for t in people.values():
        gov = govern(pg_connect("psycopg", autocommit=False))
        try:
            seen.append([_run(gov, s.format(t=t)) for s in script[:3]])
            gov.rollback()
            _run(gov, script[0].format(t=t))
            _run(gov, script[1])
            seen[-1].append(_run(gov, script[3].format(t=t)))
        finally:
            gov.rollback()
            gov.close()
    assert seen[0] == seen[1], seen
    assert seen[0][2] == [(1, "Nice")] and seen[0][3] == "refused: ['masked-column-constraint']", seen


def test_a_call_spelled_like_the_stand_in_is_not_current_of() -> None:
    """Only the analyser's own stand-in counts as CURRENT OF: ``WHERE gdb_current_of()`` written by a caller (a
    function it may have defined) filters by no column — a tautology, as before."""
    mine = analyze("UPDATE t SET city = 'b' WHERE CURRENT OF c RETURNING id", "postgres").statements[0]
    forged = analyze("UPDATE t SET city = 'b' WHERE gdb_current_of()", "postgres").statements[0]
    assert mine.where == "bounded" and forged.where == "tautology"
    assert analyze('DELETE FROM t WHERE current of "My c"', "postgres").normalized == (
        'DELETE FROM t WHERE current of "My c"'
    )


# -- SELECT ... INTO TEMP (0362) ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "want"),
    [
        ("SELECT id, city INTO TEMP r18h3_tmp FROM {t} WHERE id < 4 ORDER BY id", [(1, "Paris"), (2, "Lyon"),
                                                                                   (3, "Paris")]),
        ("SELECT city INTO TEMP TABLE r18h3_tmp FROM {t} WHERE id = 2", [("Lyon",)]),
    ],
)  # fmt: skip
def test_select_into_temp_of_clear_columns_runs(people: dict[str, str], sql: str, want: list[Any]) -> None:
    """It makes a table (like CREATE TABLE AS): no row of an existing table is changed, none refused."""
    gov = govern(pg_connect("psycopg", autocommit=False))
    try:
        assert _run(gov, sql.format(t=people["a"])) == len(want)
        # (no ORDER BY: a table sampled nearly empty is provisional, and its text columns may not decide the order)
        assert sorted(_run(gov, "SELECT * FROM r18h3_tmp")) == want
    finally:
        gov.rollback()
        gov.close()


def test_select_into_temp_of_a_masked_column_is_refused_as_create_table_as(people: dict[str, str]) -> None:
    """``SELECT ssn INTO TEMP`` copies the masked SSN where masking does not follow: refused by the documented rule,
    as ``CREATE TEMP TABLE ... AS`` is, the same in both copies, and no table is made."""
    seen = []
    gov = govern(pg_connect("psycopg", autocommit=False))
    try:
        for t in people.values():
            for sql in (f"SELECT id, ssn INTO TEMP r18h3_tmp FROM {t}",
                        f"CREATE TEMP TABLE r18h3_tmp AS SELECT id, ssn FROM {t}"):  # fmt: skip
                seen.append(_run(gov, sql))
                gov.rollback()
        made = _run(gov, "SELECT to_regclass('pg_temp.r18h3_tmp') IS NULL")
    finally:
        gov.rollback()
        gov.close()
    assert set(seen) == {"refused: ['masked-column-copy']"}, seen
    assert made == [(True,)]


# -- a text of another table cast to a short type (0362) ----------------------------------------------------------
@pytest.fixture
def padded(pg_conn: Any, people: dict[str, str], unique: str) -> Iterator[str]:
    """A table of one long text of the caller's own (1 MB)."""
    name = f"r18h3_{unique}_pad"
    pg_conn.execute(f"CREATE TABLE {name} AS SELECT repeat('x', 1000000) p")
    yield name
    pg_conn.execute(f"DROP TABLE IF EXISTS {name}")


SHORT_CASTS = [
    "SELECT c.id, concat(c.full_name, p::varchar(10)) FROM {t} c, {pad} WHERE c.id < 3 ORDER BY 1",
    "SELECT c.id, c.full_name || CAST(p AS varchar(20)) FROM {t} c, {pad} WHERE c.id < 3 ORDER BY 1",
    "SELECT c.id, ARRAY[c.full_name, p::char(4)] FROM {t} c, {pad} WHERE c.id < 3 ORDER BY 1",
]


@pytest.mark.parametrize("sql", SHORT_CASTS)
def test_a_masked_value_beside_another_tables_text_cast_short_runs(
    pg_conn: Any, people: dict[str, str], padded: str, sql: str
) -> None:
    """PostgreSQL cuts ``p::varchar(10)`` to 10 characters (raw: a 1 MB text comes back 10 long), so the merge
    cannot reach a length limit whatever was stored: it runs, masked, and answers the same over both copies."""
    assert pg_conn.execute(f"SELECT length(p::varchar(10)), length(p) FROM {padded}").fetchone() == (
        10,
        1000000,
    )
    gov = govern(pg_connect("psycopg"))
    try:
        seen = [_run(gov, sql.format(t=t, pad=padded)) for t in people.values()]
    finally:
        gov.close()
    assert seen[0] == seen[1], seen
    assert isinstance(seen[0], list) and [r[0] for r in seen[0]] == [1, 2], seen
    assert "Alice" not in repr(seen) and "Quinn" not in repr(seen) and "Person" not in repr(seen)


LONG_PARTNERS = [
    # the masked value cut short beside an unbounded text: its (short) length still meets the limit
    "SELECT concat(c.full_name::varchar(10), p) FROM {t} c, {pad}",
    "SELECT c.full_name::varchar(10) || p FROM {t} c, {pad}",
    # a cast that bounds nothing
    "SELECT concat(c.full_name, p::text) FROM {t} c, {pad}",
    "SELECT concat(c.full_name, p::varchar) FROM {t} c, {pad}",
]


@pytest.mark.parametrize("sql", LONG_PARTNERS)
def test_a_long_partner_is_still_refused(people: dict[str, str], padded: str, sql: str) -> None:
    gov = govern(pg_connect("psycopg"))
    try:
        seen = [_run(gov, sql.format(t=t, pad=padded)) for t in people.values()]
    finally:
        gov.close()
    assert seen[0] == seen[1] == "refused: ['masked-column-predicate']", seen


# -- asyncpg fetchval/fetchrow of a write with RETURNING (0361) ---------------------------------------------------
@pytest.fixture
def stored(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per copy a and b: 400 people differing only in row 1's name (11 or 108 characters): where an UPDATE puts
    row 5's new version differs (``pg_stored_people``)."""
    names = pg_stored_people(pg_conn, f"r18h3_{unique}")
    yield names
    for t in names.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


@pytest.mark.parametrize("method", ["fetchval", "fetchrow"])
def test_asyncpg_one_row_of_a_write_returning_comes_in_key_order(stored: dict[str, str], method: str) -> None:
    """``fetchval("DELETE ... RETURNING id")`` was refused by the effect guard on a table with masked columns: the
    write is sent wrapped in key order (0330) and a one-row fetch left its status unread. Fetched whole now, it
    runs; the row it answers is the first in key order in both copies, where the raw connection answers the row
    stored first (row 5 moved to the last page, or not, by row 1's name length)."""

    async def see(conn: Any, t: str) -> Any:
        tr = conn.transaction()
        await tr.start()
        try:
            await conn.execute(f"UPDATE {t} SET city = NULL, full_name = NULL WHERE id = 5")
            got = await getattr(conn, method)(f"DELETE FROM {t} WHERE id IN (5, 396) RETURNING id")
            left = await conn.fetchval(f"SELECT count(*) FROM {t} WHERE id IN (5, 396)")
            return (got if method == "fetchval" else tuple(got)), left
        except governed_db.GuardrailViolation as e:
            return f"refused: {e}"
        finally:
            await tr.rollback()

    seen = asyncpg_variants(stored, see, identity=CURIOUS_AGENT)
    (raw_a, gov_a), (raw_b, gov_b) = seen["a"], seen["b"]
    assert raw_a != raw_b, seen  # the oracle: the raw connection answers the row stored first
    one = 5 if method == "fetchval" else (5,)
    assert gov_a == gov_b == (one, 0), seen  # key order, and both rows deleted
