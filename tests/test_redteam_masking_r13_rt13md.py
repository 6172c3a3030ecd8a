"""Red-team round 13 over masking on MariaDB (PyMySQL, aiomysql): a prompt-injected agent in production with zero
configuration, no unmask grant.

* ``EXPLAIN EXTENDED SELECT full_name, birth_date FROM t WHERE id = 1`` runs (its plan rows are masked whole), and
  leaves a Note 1003: the statement as the optimizer rewrote it, where every column of a table read by its key is
  written in as a constant, ``select 'Alice Martin' AS `full_name`,'1985-03-02' AS `birth_date` from `t` where
  1``. ``SHOW WARNINGS`` (PyMySQL's ``show_warnings()``, aiomysql's repeated warnings) blanked conversion echoes
  and detected items only: the SSN went, the name and the date of birth came back in clear. Such a note is
  withheld whole now (decision 0274).

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
connection shows that the same statements tell them apart. Look-alikes that reveal nothing keep running.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import governed_db
from governed_db.masking.messages import REWRITTEN_WITHHELD, scrub_diagnostic

AGENT = governed_db.Identity("curious-agent", kind="agent")
COLUMNS = "(id int primary key, full_name varchar(100), birth_date date, tax_ref varchar(20), flags bit(8), city varchar(40))"
ROWS_A = [
    (1, "Alice Martin", "1985-03-02", "536-22-8726", 65, "Paris"),
    (2, "Ivan Petrov", "1990-01-01", "219-45-1234", 0, "Lyon"),
    (3, "Bob Stone", "1970-05-05", "412-77-9001", 0, "Rome"),
]
ROWS_B = [(1, "Amy Zedd", "1985-11-30", "287-65-4321", 66, "Paris"), *ROWS_A[1:]]
SECRETS = ("Alice", "Martin", "03-02", "536-22", "Amy", "Zedd", "11-30", "287-65")
EXPLAINED = "EXPLAIN EXTENDED SELECT full_name, birth_date, tax_ref, flags, city FROM {t} WHERE id = 1"


def _wrap(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)


@pytest.fixture
def tables(mysql_conn: Any, unique: str) -> Iterator[Callable[[list[Any]], str]]:
    made: list[str] = []

    def build(rows: list[Any]) -> str:
        t = f"rt13md_{unique}_{len(made)}"
        made.append(t)
        with mysql_conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {t} {COLUMNS}")
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s, %s, %s, %s)", rows)
        return t

    yield build
    with mysql_conn.cursor() as cur:
        for t in made:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


def _notes(conn: Any, table: str, via: str) -> Any:
    """The EXPLAIN's warnings as the caller reads them: ``SHOW WARNINGS`` or PyMySQL's ``show_warnings()``."""
    cur = conn.cursor()
    cur.execute(EXPLAINED.format(t=table))
    cur.fetchall()
    if via == "show_warnings()":
        rows = conn.show_warnings()
    else:
        cur.execute(via)
        rows = cur.fetchall()
    return [tuple(r) for r in rows]


def _copies(mysql_kw: dict[str, Any], pair: dict[str, str], via: str, governed: bool) -> list[Any]:
    import pymysql

    out = []
    for copy in ("A", "B"):
        raw = pymysql.connect(autocommit=True, **mysql_kw)
        conn = _wrap(raw) if governed else raw
        try:
            # the table name differs between the copies: blank it so that only the values can differ
            out.append(repr(_notes(conn, pair[copy], via)).replace(pair[copy], "<t>"))
        finally:
            conn.close()
    return out


@pytest.mark.parametrize("via", ["SHOW WARNINGS", "SHOW WARNINGS LIMIT 1", "show_warnings()"])
def test_rewritten_statement_note_is_withheld(mysql_kw: dict[str, Any], tables: Any, via: str) -> None:
    pair = {"A": tables(ROWS_A), "B": tables(ROWS_B)}
    raw = _copies(mysql_kw, pair, via, governed=False)
    assert raw[0] != raw[1] and "Alice Martin" in raw[0] and "1985-03-02" in raw[0], raw  # the oracle exists
    seen = _copies(mysql_kw, pair, via, governed=True)
    assert seen[0] == seen[1], seen
    assert not any(s in "".join(seen) for s in SECRETS), seen
    assert seen[0] == repr([("Note", 1003, REWRITTEN_WITHHELD)]), seen  # level and code still say what it was


def test_aiomysql_rewritten_statement_note_is_withheld(mysql_kw: dict[str, Any], tables: Any) -> None:
    """aiomysql repeats a statement's warnings as Python warnings, and has its own ``show_warnings()``."""
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}
    pair = {"A": tables(ROWS_A), "B": tables(ROWS_B)}

    async def read(table: str) -> Any:
        conn = _wrap(await aiomysql.connect(autocommit=True, **kw))
        try:
            cur = await conn.cursor()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                await cur.execute(EXPLAINED.format(t=table))
                await cur.fetchall()
            shown = await conn.show_warnings()
            return repr(([str(w.message) for w in caught], [tuple(r) for r in shown or ()])).replace(table, "<t>")
        finally:
            conn.close()

    seen = [asyncio.run(read(pair[c])) for c in ("A", "B")]
    assert seen[0] == seen[1], seen
    assert not any(s in "".join(seen) for s in SECRETS), seen
    assert REWRITTEN_WITHHELD in seen[0], seen


def test_warnings_look_alikes_keep_their_text(mysql_kw: dict[str, Any], tables: Any) -> None:
    """Warnings that quote no stored value read as the server wrote them; the EXPLAIN and plain reads still run."""
    import pymysql

    t = tables(ROWS_A)
    conn = _wrap(pymysql.connect(autocommit=True, **mysql_kw))
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1/0")
        assert cur.fetchall() == ((None,),)
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall() == (("Warning", 1365, "Division by 0"),)
        cur.execute("CREATE TEMPORARY TABLE IF NOT EXISTS rt13md_tmp (id int)")
        cur.execute("CREATE TEMPORARY TABLE IF NOT EXISTS rt13md_tmp (id int)")
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall() == (("Note", 1050, "Table 'rt13md_tmp' already exists"),)
        cur.execute(EXPLAINED.format(t=t))
        assert len(cur.fetchall()) == 1  # the plan itself (masked whole, as before)
        cur.execute(f"SELECT id, city FROM {t} WHERE id = 1")
        assert cur.fetchall() == ((1, "Paris"),)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "message",
    [
        "select 'Alice Martin' AS `full_name` from `test`.`t` where 1",
        "/* select#1 */ select (/* select#2 */ select 'Alice' from `test`.`t` where 1) AS `x`",
        "with c as (select `t`.`id` AS `id` from `t` where `t`.`id` = 1)select 'Alice' AS `n` from `t` where 1",
        "(select 'Alice' AS `n` from `t` where 1) union (select 'x' AS `x`)",
        "update `test`.`t` set `test`.`t`.`city` = 'x' where `test`.`t`.`id` = 1",
        "delete  from `test`.`t` where `test`.`t`.`id` = 1",
    ],
)
def test_optimizer_rewrites_are_withheld_whole(message: str) -> None:
    assert scrub_diagnostic(message) == REWRITTEN_WITHHELD


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("Division by 0", "Division by 0"),
        ("Select 2 was reduced during optimization", "Select 2 was reduced during optimization"),
        ("Unknown table 'test.x'", "Unknown table 'test.x'"),
        ("Truncated incorrect DOUBLE value: 'Alice Martin'", "Truncated incorrect DOUBLE value: '[REDACTED]'"),
    ],
)
def test_other_warnings_are_scrubbed_as_before(message: str, shown: str) -> None:
    assert scrub_diagnostic(message) == shown
