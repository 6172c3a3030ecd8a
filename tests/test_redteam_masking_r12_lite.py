"""Red-team round 12 on SQLite and aiosqlite: two runs that differ only in a secret (a right and a wrong guess); a
sequence the governed connection answers differently for them is a leak. Each finding shows the difference on the raw
connection, that the governed ones answer alike, and that the innocent look-alike still runs with correct data.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

import governed_db
from tests._redteam import govern
from tests.test_masking_noninterference import ATTACKER

SECRETS = ("536-22-8726", "100-99-0000")


def _ignore_info(action: int, arg1: Any, arg2: Any, db: Any, source: Any) -> int:
    """An authorizer that blanks every read of a column named ``info`` (SQLite answers NULL for it)."""
    return sqlite3.SQLITE_IGNORE if action == sqlite3.SQLITE_READ and arg2 == "info" else sqlite3.SQLITE_OK


def _interrupt() -> int:
    return 1  # interrupt whatever statement runs


def _observe(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", repr(call()))
    except governed_db.GuardrailViolation as refused:
        return ("refused", str(refused))
    except Exception as e:
        return ("error", type(e).__name__, str(e))


def _fill(raw: Any, secret: str) -> list[tuple[Any, ...]]:
    rows = [(1, secret)] + [(i, f"219-45-{1000 + i}") for i in range(2, 20)]  # a column of SSNs named ``info``
    return rows


STEPS = ("SELECT info FROM v WHERE id = 1", "SELECT info FROM v WHERE id = 1", "SELECT count(*) FROM v WHERE info LIKE '5%'")


def _sqlite(secret: str, hook: str, governed: bool) -> list[Any]:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE v (id int, info text)")
    raw.executemany("INSERT INTO v VALUES (?, ?)", _fill(raw, secret))
    conn = govern(raw, ATTACKER) if governed else raw
    seen = []
    if hook == "authorizer":
        seen.append(_observe(lambda: conn.set_authorizer(_ignore_info)))
    else:
        seen.append(_observe(lambda: conn.set_progress_handler(_interrupt, 1)))
    seen.append(_observe(lambda: conn.execute(STEPS[0]).fetchall()))  # the first read of v: its sample
    if hook == "authorizer":
        seen.append(_observe(lambda: conn.set_authorizer(None)))
    else:
        seen.append(_observe(lambda: conn.set_progress_handler(None, 1)))
    seen += [_observe(lambda sql=sql: conn.execute(sql).fetchall()) for sql in STEPS[1:]]
    conn.close()
    return seen


def _aiosqlite(secret: str, hook: str, governed: bool) -> list[Any]:
    aiosqlite = pytest.importorskip("aiosqlite")

    async def go() -> list[Any]:
        raw = await aiosqlite.connect(":memory:", isolation_level=None)
        await raw.execute("CREATE TABLE v (id int, info text)")
        await raw.executemany("INSERT INTO v VALUES (?, ?)", _fill(raw, secret))
        conn = govern(raw, ATTACKER) if governed else raw

        async def observe(coro: Callable[[], Any]) -> Any:
            try:
                return ("ok", repr(await coro()))
            except governed_db.GuardrailViolation as refused:
                return ("refused", str(refused))
            except Exception as e:
                return ("error", type(e).__name__, str(e))

        async def fetch(sql: str) -> Any:
            cur = await conn.execute(sql)
            return await cur.fetchall()

        seen = []
        if hook == "authorizer":
            seen.append(await observe(lambda: conn.set_authorizer(_ignore_info)))
        else:
            seen.append(await observe(lambda: conn.set_progress_handler(_interrupt, 1)))
        seen.append(await observe(lambda: fetch(STEPS[0])))
        if hook == "authorizer":
            seen.append(await observe(lambda: conn.set_authorizer(None)))
        else:
            seen.append(await observe(lambda: conn.set_progress_handler(None, 1)))
        for sql in STEPS[1:]:
            seen.append(await observe(lambda sql=sql: fetch(sql)))
        await conn.close()
        return seen

    return asyncio.run(go())


RUNNERS = {"sqlite": _sqlite, "aiosqlite": _aiosqlite}


@pytest.mark.parametrize("kind", ["sqlite", "aiosqlite"])
@pytest.mark.parametrize("hook", ["authorizer", "progress"])
def test_connection_hooks_cannot_blind_the_sample_that_classifies_a_table(kind: str, hook: str) -> None:
    """Found in round 12: ``set_authorizer`` and ``set_progress_handler`` were the driver's, and act on governed_db's
    own statements too. An authorizer answering ``SQLITE_IGNORE`` to reads of ``info`` made the sample of ``v`` all
    NULL (a column of SSNs looked empty); a handler interrupting every statement made the sample fail. Either way,
    once the hook was removed, ``info`` was neither masked nor kept out of ``WHERE``: ``count(*) ... LIKE '5%'``
    answered 1 for one SSN and 0 for the other (and ``100-99-0000`` came back in clear after an interrupted
    sample). Both setters are now refused with a callback (decision 0265)."""
    run = RUNNERS[kind]
    raw = [run(s, hook, governed=False) for s in SECRETS]
    assert raw[0][-1] != raw[1][-1], raw  # the oracle, unprotected
    a, b = (run(s, hook, governed=True) for s in SECRETS)
    assert a == b, (a, b)
    assert a[0][0] == "refused" and "before governed_db.wrap()" in a[0][1], a
    assert a[-1][0] == "refused" and "masked-column-predicate" in a[-1][1], a  # info is known masked
    assert a[1] == ("ok", "[('[US_SSN]',)]"), a
    assert "536" not in repr(a) and "100-99" not in repr(a)


def test_hooks_that_leave_classification_alone_still_work() -> None:
    """The innocent look-alikes: clearing the progress handler, a trace callback, and a handler or authorizer the
    application set before ``wrap()`` (it sees governed_db's statements too, as the application chose)."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE v (id int, info text)")
    raw.executemany("INSERT INTO v VALUES (?, ?)", _fill(raw, SECRETS[0]))
    calls = [0]

    def count() -> int:
        calls[0] += 1
        return 0

    raw.set_progress_handler(count, 100)
    conn = govern(raw, ATTACKER)
    traced: list[str] = []
    conn.set_trace_callback(traced.append)
    assert conn.execute("SELECT id, info FROM v WHERE id < 3 ORDER BY id").fetchall() == [
        (1, "[US_SSN]"), (2, "[US_SSN]")]
    assert calls[0] > 0 and any("FROM v" in t for t in traced)
    conn.set_progress_handler(None, 100)
    assert conn.execute("SELECT count(*) FROM v WHERE id > 10").fetchall() == [(9,)]
    conn.close()


def _app_deadline(secret: str, trips_on: str, governed: bool, steps: tuple[str, ...] = (*STEPS, STEPS[-1])) -> list[Any]:
    """The application's own progress handler (a deadline, set before ``wrap()``) interrupts the first statement
    whose text contains ``trips_on``, once; then the agent reads and filters ``v.info``."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE v (id int, info text)")
    raw.executemany("INSERT INTO v VALUES (?, ?)", _fill(raw, secret))
    state = {"trip": False, "done": False}

    def trace(sql: str) -> None:
        state["trip"] = trips_on in sql and not state["done"]
        state["done"] = state["done"] or state["trip"]

    raw.set_trace_callback(trace)
    raw.set_progress_handler(lambda: 1 if state["trip"] else 0, 1)
    conn = govern(raw, ATTACKER) if governed else raw
    seen = [_observe(lambda sql=sql: conn.execute(sql).fetchall()) for sql in steps]
    conn.close()
    return seen


VALID = ("536-22-8726", "412-77-9002")  # both well-formed SSNs: a scan masks either


def test_a_sample_that_failed_leaves_the_table_provisional() -> None:
    """Found in round 12: when the sample of a table failed (here the application's deadline interrupted it), its
    columns were classified by their names alone, for good: ``info`` (SSNs) was neither masked nor kept out of
    ``WHERE``, so ``SELECT info`` returned the SSN in clear and ``count(*) ... LIKE '5%'`` told two SSNs apart. The
    table is now provisional (decision 0266): scanned as it passes, and sampled again before a filter."""
    raw = [_app_deadline(s, "LIMIT 100", governed=False) for s in VALID]
    assert raw[0][-1] != raw[1][-1], raw
    a, b = (_app_deadline(s, "LIMIT 100", governed=True) for s in VALID)
    assert a == b, (a, b)
    assert a[0] == ("ok", "[('[US_SSN]',)]"), a
    assert a[2][0] == "refused" and "masked-column-predicate" in a[2][1], a
    assert "536" not in repr(a) and "412-77" not in repr(a)
    # the innocent look-alike: the same table, filtered on its other column, exactly
    innocent = _app_deadline(VALID[0], "LIMIT 100", governed=True, steps=(
        "SELECT id, info FROM v WHERE id < 3 ORDER BY id", "SELECT count(*) FROM v WHERE id > 10"))
    assert innocent == [("ok", "[(1, '[US_SSN]'), (2, '[US_SSN]')]"), ("ok", "[(9,)]")], innocent


def test_a_catalog_read_that_failed_keeps_the_table_blind() -> None:
    """Left open in round 12, closed in round 13: when the catalog read itself is interrupted (the application's
    deadline trips on ``pragma_table_info``), the table was remembered without columns for ``RETRY_SECONDS``, and a
    filter on ``info`` ran meanwhile (1 against 0). The table is now blind until a read succeeds (decision 0269), and
    a statement naming a table whose columns are not known reads them again before it is judged (decision 0277)."""
    raw = [_app_deadline(s, "pragma_table_info", governed=False) for s in VALID]
    assert raw[0][-1] != raw[1][-1], raw
    a, b = (_app_deadline(s, "pragma_table_info", governed=True) for s in VALID)
    assert a == b, (a, b)
    assert a[-1][0] == "refused" and "masked-column-predicate" in a[-1][1], a
    assert "536" not in repr(a) and "412-77" not in repr(a)


def _hidden_catalog(secret: str, create: str, governed: bool) -> list[Any]:
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE v (id int, info text)")
    raw.executemany("INSERT INTO v VALUES (?, ?)", _fill(raw, secret))
    conn = govern(raw, ATTACKER) if governed else raw
    seen = [_observe(lambda sql=sql: conn.execute(sql).fetchall()) for sql in (create, *STEPS)]
    conn.close()
    return seen


@pytest.mark.parametrize("create", [
    "CREATE TEMP TABLE pragma_table_info (a int, name text, type text)",
    "CREATE TEMP VIEW PRAGMA_TABLE_INFO AS SELECT 'id' AS name, 'int' AS type",
    "CREATE TEMP TABLE pragma_table_list (type text, wr int)",
])
def test_a_table_may_not_hide_the_table_valued_functions_masking_reads_the_catalog_with(create: str) -> None:
    """Found in round 12, with SQL alone: a temporary table named ``pragma_table_info`` hides SQLite's table-valued
    function of that name for unqualified calls (``'pragma_table_info' is not a function``), so masking's catalog
    read of ``v`` failed, ``v`` had no known columns, and ``SELECT count(*) FROM v WHERE info LIKE '5%'`` ran on a
    column of SSNs: 1 for one, 0 for the other. A table or view may not take the name of a SQLite table-valued
    function (decision 0265)."""
    raw = [_hidden_catalog(s, create, governed=False) for s in VALID]
    assert raw[0][-1] != raw[1][-1], raw
    a, b = (_hidden_catalog(s, create, governed=True) for s in VALID)
    assert a == b, (a, b)
    assert a[0][0] == "refused" and "table-valued function" in a[0][1], a
    assert a[-1][0] == "refused" and "masked-column-predicate" in a[-1][1], a
    assert "536" not in repr(a) and "412-77" not in repr(a)


def test_tables_named_like_catalog_functions_but_not_them_still_run() -> None:
    """The innocent look-alikes: names that merely contain a pragma's name, and the catalog functions themselves."""
    seen = _hidden_catalog(VALID[0], "CREATE TEMP TABLE table_info_pragma (id int, note text)", governed=True)
    assert seen[0] == ("ok", "[]") and seen[1] == ("ok", "[('[US_SSN]',)]"), seen
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE v (id int, info text)")
    conn = govern(raw, ATTACKER)
    conn.execute("CREATE TEMP TABLE my_json_each (k text)")
    conn.execute("INSERT INTO my_json_each VALUES ('a')")
    assert conn.execute("SELECT k FROM my_json_each").fetchall() == [("a",)]
    assert conn.execute("SELECT name FROM pragma_table_info('v') ORDER BY cid").fetchall() == [("id",), ("info",)]
    assert conn.execute("SELECT value FROM json_each('[1,2]')").fetchall() == [(1,), (2,)]
    conn.close()
