"""Round 18 on the order PostgreSQL writes lock their rows in (decision 0351 Open), psycopg 3 and psycopg2.

A write locks each row it changes as it reaches it. Decision 0351 locked a multi-row UPDATE/DELETE's rows in key
order first, but not a write whose rows are reached through another relation: ``UPDATE ... FROM``, ``DELETE ...
USING``, ``MERGE``, a write of a table without masked columns reached through a subquery or join over one with
them (``UPDATE i ... WHERE id IN (SELECT id FROM t ...)``), nor a write inside a data-modifying CTE. One session
of the agent's holds row 200, the write waits there, a third asks for row 5 with ``NOWAIT``: raw, the answer told
two copies of a 400-people table apart that differ only in row 1's masked name (where row 5's new version went),
and so did the governed answer. Now the rows are locked in key order first where the text allows it (a clear
target written without FROM/USING), else the write is refused, naming the masked column (decision 0354).

Every attempt is committed and the tables are then read through the admin session: the database is the ground
truth. ``INSERT ... SELECT ... ON CONFLICT DO UPDATE`` and ``SELECT ... FOR UPDATE`` over a join were already
locked in key order (their query is ordered, decisions 0341, 0352): kept as regressions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import CURIOUS_AGENT, govern, pg_connect, pg_stored_people, rows_or_rules


@pytest.fixture
def tables(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """``a``/``b``: 400 people differing only in row 1's name; ``i``: 400 rows without a masked column."""
    prefix = f"h1lock_{unique}"
    names = {**pg_stored_people(pg_conn, prefix), "i": f"{prefix}_i", "prefix": prefix}
    pg_conn.execute(f"CREATE TABLE {names['i']} (id int primary key, qty int, city text)")
    pg_conn.execute(f"INSERT INTO {names['i']} SELECT g, g % 7, 'Lyon' FROM generate_series(1, 400) g")
    pg_conn.execute("CREATE OR REPLACE FUNCTION h1lock_two_hundred() RETURNS int LANGUAGE sql AS 'SELECT 200'")
    yield names
    pg_conn.execute(f"DROP TABLE IF EXISTS {names['a']}, {names['b']}, {names['i']}")
    pg_conn.execute("DROP FUNCTION IF EXISTS h1lock_two_hundred()")


def _fresh(admin: Any, names: dict[str, str]) -> None:
    """The people tables as they were made (an attempt moved row 5 and may have written)."""
    admin.execute(f"DROP TABLE {names['a']}, {names['b']}")
    pg_stored_people(admin, names["prefix"])


def _fresh_clear(admin: Any, names: dict[str, str]) -> None:
    """``i`` as it was made: each copy's attempt finds rows 5 and 200 there."""
    admin.execute(f"TRUNCATE {names['i']}")
    admin.execute(f"INSERT INTO {names['i']} SELECT g, g % 7, 'Lyon' FROM generate_series(1, 400) g")


def _locked_first(
    admin: Any, people: str, clear: str, locked: str, write: str, governed: bool, env: str, params: Any = None
) -> Any:
    """Row 5 of ``people`` moved to the last page (or not); one session holds row 200 of ``locked``, a second runs
    ``write`` (``{t}`` the people, ``{i}`` the clear table; it waits at 200), a third asks for row 5 of ``locked``
    with NOWAIT: refused when the write locked row 5 before it waited. A refusal (or a failure) of the write
    itself is returned as its text."""

    def connect() -> Any:
        conn = pg_connect("psycopg", autocommit=False)
        return govern(conn, CURIOUS_AGENT, environment=env) if governed else conn

    admin.execute(f"UPDATE {people} SET city = NULL, full_name = NULL WHERE id = 5")
    holder, writer, prober = connect(), connect(), connect()
    refused: list[str] = []

    def run() -> None:
        try:
            writer.cursor().execute(write.format(t=people, i=clear), params)
        except governed_db.GuardrailViolation as e:
            refused.append(f"refused: {e}".replace(people, "T"))
        except Exception as e:
            refused.append(f"failed: {type(e).__name__}")

    try:
        holder.cursor().execute(f"SELECT id FROM {locked} WHERE id = 200 FOR UPDATE")
        pid = (writer.__wrapped__ if governed else writer).info.backend_pid
        thread = threading.Thread(target=run)
        thread.start()
        for _ in range(100):  # until the write waits for row 200 (or was refused)
            if refused or admin.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = %s",
                                        (pid,)).fetchone()[0]:  # fmt: skip
                break
            time.sleep(0.05)
        try:
            seen = rows_or_rules(prober, f"SELECT id FROM {locked} WHERE id = 5 FOR UPDATE NOWAIT")
        except Exception as e:
            seen = type(e).__name__
        finally:
            prober.rollback()
            holder.rollback()
            thread.join()
            writer.commit()
        return refused[0] if refused else seen
    finally:
        for c in (holder, writer, prober):
            c.close()


def _state(admin: Any, names: dict[str, str], v: str) -> tuple[Any, Any, Any, Any]:
    """What copy ``v`` and ``i`` hold where the writes below may have changed them."""
    people = admin.execute(f"SELECT id, city FROM {names[v]} WHERE city IS DISTINCT FROM 'Lyon' "
                           "ORDER BY id").fetchall()  # fmt: skip
    count = admin.execute(f"SELECT count(*) FROM {names[v]}").fetchone()[0]
    clear = admin.execute(f"SELECT id, qty FROM {names['i']} WHERE qty <> id % 7 ORDER BY id").fetchall()
    return people, count, clear, admin.execute(f"SELECT count(*) FROM {names['i']}").fetchone()[0]


UNTOUCHED = ([(1, "Paris"), (5, None)], 400, [], 400)
#: write -> (the statement, the environment it runs in, which table's rows are locked, what it changes raw)
LEAKS: dict[str, tuple[str, str, str, Any]] = {
    "update-from-positional-parameter": (
        "UPDATE {t} SET city = 'b' FROM (VALUES (1)) v(x) WHERE {t}.city IS NULL OR {t}.id = %s",
        "production", "t", ([(1, "Paris"), (5, "b"), (200, "b")], 400, [], 400)),
    "delete-using-unknown-function": (
        "DELETE FROM {t} USING (VALUES (1)) v(x) WHERE {t}.city IS NULL OR {t}.id = h1lock_two_hundred()",
        "production", "t", ([(1, "Paris")], 398, [], 400)),
    "merge": (
        "MERGE INTO {t} USING (VALUES (1)) v(x) ON {t}.city IS NULL OR {t}.id = 200 "
        "WHEN MATCHED THEN UPDATE SET city = 'b'",
        "production", "t", ([(1, "Paris"), (5, "b"), (200, "b")], 400, [], 400)),
    "clear-table-merge": (
        "MERGE INTO {i} USING (SELECT id FROM {t} WHERE city IS NULL OR id = 200) s ON {i}.id = s.id "
        "WHEN MATCHED THEN UPDATE SET qty = 9",
        "production", "i", ([(1, "Paris"), (5, None)], 400, [(5, 9), (200, 9)], 400)),
    # a write in the WITH of another write is refused (a WITH query of a query is ordered: decision 0363)
    "write-in-the-with-of-a-write": (
        "WITH d AS (UPDATE {t} SET city = 'b' WHERE city IS NULL OR id = 200 RETURNING id) "
        "UPDATE {i} SET qty = 9 WHERE id = 1",
        "staging", "t", ([(1, "Paris"), (5, "b"), (200, "b")], 400, [(1, 9)], 400)),
}
#: writes locked in key order through governed connections (the rewrite of 0351, or an ordered query)
ORDERED: dict[str, tuple[str, str, str, Any]] = {
    "update-from": (
        "UPDATE {t} SET city = 'b' FROM (VALUES (1)) v(x) WHERE {t}.city IS NULL OR {t}.id = 200",
        "production", "t", ([(1, "Paris"), (5, "b"), (200, "b")], 400, [], 400)),
    "delete-using": (
        "DELETE FROM {t} USING (VALUES (1)) v(x) WHERE {t}.city IS NULL OR {t}.id = 200",
        "production", "t", ([(1, "Paris")], 398, [], 400)),
    "clear-table-update-from": (
        "UPDATE {i} SET qty = 9 FROM {t} WHERE {i}.id = {t}.id AND ({t}.city IS NULL OR {t}.id = 200)",
        "production", "i", ([(1, "Paris"), (5, None)], 400, [(5, 9), (200, 9)], 400)),
    "update-from-named-parameter": (
        "UPDATE {t} SET city = 'b' FROM (VALUES (1)) v(x) WHERE {t}.city IS NULL OR {t}.id = %(n)s",
        "production", "t", ([(1, "Paris"), (5, "b"), (200, "b")], 400, [], 400)),
    "clear-table-delete-using": (
        "DELETE FROM {i} AS c USING {t} p WHERE p.id = c.id AND (p.city IS NULL OR p.id = 200)",
        "production", "i", ([(1, "Paris"), (5, None)], 400, [], 398)),
    "clear-table-update-in": (
        "UPDATE {i} SET qty = 9 WHERE id IN (SELECT id FROM {t} WHERE city IS NULL OR id = 200)",
        "production", "i", ([(1, "Paris"), (5, None)], 400, [(5, 9), (200, 9)], 400)),
    "clear-table-delete-exists": (
        "DELETE FROM {i} WHERE EXISTS (SELECT 1 FROM {t} WHERE {t}.id = {i}.id AND ({t}.city IS NULL "
        "OR {t}.id = 200))",
        "production", "i", ([(1, "Paris"), (5, None)], 400, [], 398)),
    "insert-on-conflict": (
        "INSERT INTO {t} (id, city) SELECT id, 'b' FROM {t} WHERE id >= 5 AND id <= 200 AND (city IS NULL "
        "OR id = 200) ON CONFLICT (id) DO UPDATE SET city = 'b'",
        "production", "t", ([(1, "Paris"), (5, "b"), (200, "b")], 400, [], 400)),
    "select-join-for-update-of": (
        "SELECT p.id FROM {t} p JOIN (VALUES (1)) v(x) ON true WHERE p.city IS NULL OR p.id = 200 "
        "FOR UPDATE OF p",
        "production", "t", UNTOUCHED),
    # data-modifying WITH queries: judged and locked as the writes they are (decision 0363)
    "write-in-a-cte": (
        "WITH u AS (UPDATE {t} SET city = 'b' WHERE city IS NULL OR id = 200 RETURNING id) SELECT count(*) FROM u",
        "staging", "t", ([(1, "Paris"), (5, "b"), (200, "b")], 400, [], 400)),
}


#: the parameters a write is sent with
PARAMS: dict[str, Any] = {"update-from-positional-parameter": (200,), "update-from-named-parameter": {"n": 200}}


def _oracle(admin: Any, names: dict[str, str], case: tuple[str, str, str, Any], governed: bool) -> dict[str, Any]:
    """Per copy: what the prober saw, then what the tables hold; the tables made afresh afterwards."""
    write, env, locked, _ = case
    params = next((PARAMS[k] for k, c in {**LEAKS, **ORDERED}.items() if c is case and k in PARAMS), None)
    out = {}
    for v in ("a", "b"):
        held = names["i"] if locked == "i" else names[v]
        seen = _locked_first(admin, names[v], names["i"], held, write, governed, env, params)
        out[v] = (seen, _state(admin, names, v))
        _fresh_clear(admin, names)
    _fresh(admin, names)
    return out


@pytest.mark.parametrize("case", list(LEAKS), ids=list(LEAKS))
def test_a_write_reached_through_another_order_is_refused(pg_conn: Any, tables: dict[str, str], case: str) -> None:
    """Raw, the prober tells the copies apart; governed, the write is refused alike in both, naming the masked
    column and what to write instead, and nothing is written."""
    raw = _oracle(pg_conn, tables, LEAKS[case], governed=False)
    assert raw["a"][0] != raw["b"][0], raw  # the oracle: row 5 locked before the wait in one copy only
    assert raw["a"][1] == raw["b"][1] == LEAKS[case][3], raw
    seen = _oracle(pg_conn, tables, LEAKS[case], governed=True)
    assert seen["a"] == seen["b"], seen
    said, held = seen["a"]
    assert said.startswith("refused: ") and "masked-column-predicate" in said, said
    assert "T.full_name" in said and "unmask grant" in said, said
    assert "Person Number" not in said and "Alice" not in said and "Quinn" not in said, said
    assert held == UNTOUCHED, held  # nothing written


@pytest.mark.parametrize("case", list(ORDERED), ids=list(ORDERED))
def test_a_write_reached_through_another_order_locks_in_key_order(
    pg_conn: Any, tables: dict[str, str], case: str
) -> None:
    """Raw, the prober tells the copies apart; governed, row 5 is locked first in both, and the write changes
    exactly what it changes raw."""
    raw = _oracle(pg_conn, tables, ORDERED[case], governed=False)
    assert raw["a"][0] != raw["b"][0], raw
    assert raw["a"][1] == raw["b"][1] == ORDERED[case][3], raw
    seen = _oracle(pg_conn, tables, ORDERED[case], governed=True)
    assert seen["a"][0] == seen["b"][0] == "LockNotAvailable", seen
    assert seen["a"][1] == seen["b"][1] == ORDERED[case][3], seen


# -- innocent look-alikes: they run, and change what they change raw ------------------------------------------
LOOK_ALIKES = {
    "update-from-one-row-by-key": "UPDATE {t} SET city = v.c FROM (VALUES ('b')) v(c) WHERE {t}.id = 5",
    "delete-using-one-row-by-key": "DELETE FROM {t} USING (VALUES (1)) v(x) WHERE {t}.id = 7 AND v.x = 1",
    "merge-one-row-by-key": "MERGE INTO {t} USING (VALUES (1)) v(x) ON {t}.id = 5 WHEN MATCHED THEN UPDATE SET "
    "city = 'b'",
    "merge-upsert-one-row": "MERGE INTO {t} p USING (VALUES (5, 'x')) v(k, c) ON p.id = v.k WHEN MATCHED THEN "
    "UPDATE SET city = v.c WHEN NOT MATCHED THEN INSERT (id, city) VALUES (v.k, v.c)",
    "merge-upsert-one-selected-row": "MERGE INTO {t} p USING (SELECT 401 AS k) v ON p.id = v.k WHEN MATCHED THEN "
    "DELETE WHEN NOT MATCHED THEN INSERT (id, city) VALUES (v.k, 'new')",
    "merge-insert-only": "MERGE INTO {t} USING (VALUES (401, 'x')) v(k, c) ON {t}.id = v.k WHEN NOT MATCHED THEN "
    "INSERT (id, city) VALUES (v.k, v.c)",
    "clear-update-from-clear": "UPDATE {i} SET qty = v.q FROM (VALUES (5, 1), (200, 2)) v(k, q) WHERE {i}.id = v.k",
    "clear-delete-using-clear": "DELETE FROM {i} USING (VALUES (5), (200)) v(k) WHERE {i}.id = v.k",
    "clear-merge-clear": "MERGE INTO {i} USING (VALUES (5, 1), (401, 2)) v(k, q) ON {i}.id = v.k WHEN MATCHED "
    "THEN UPDATE SET qty = v.q WHEN NOT MATCHED THEN INSERT VALUES (v.k, v.q, 'x')",
    "clear-update-set-reads-masked": "UPDATE {i} SET qty = (SELECT count(*) FROM {t} WHERE city IS NULL) "
    "WHERE id < 4",
    "insert-values-on-conflict": "INSERT INTO {t} (id, city) VALUES (200, 'b'), (5, 'b') ON CONFLICT (id) DO "
    "UPDATE SET city = excluded.city",
    "update-in-key-order": "UPDATE {t} SET city = 'b' WHERE city IS NULL OR id = 200",
}


def _run(conn: Any, sql: str, params: Any = None) -> Any:
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return [tuple(r) for r in cur.fetchall()] if cur.description else cur.rowcount
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"


def _everything(conn: Any, names: dict[str, str]) -> Any:
    cur = conn.cursor()
    cur.execute(f"SELECT id, city, full_name IS NULL FROM {names['a']} ORDER BY id")
    people = cur.fetchall()
    cur.execute(f"SELECT id, qty, city FROM {names['i']} ORDER BY id")
    return people, cur.fetchall()


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("case", list(LOOK_ALIKES), ids=list(LOOK_ALIKES))
def test_look_alikes_run_as_raw(pg_conn: Any, tables: dict[str, str], case: str, driver: str) -> None:
    """The same row count and the same tables afterwards as through the raw connection (each rolled back)."""
    pg_conn.execute(f"UPDATE {tables['a']} SET city = NULL, full_name = NULL WHERE id = 5")
    sql = LOOK_ALIKES[case].format(t=tables["a"], i=tables["i"])
    raw = pg_connect(driver, autocommit=False)
    gov = govern(pg_connect(driver, autocommit=False), CURIOUS_AGENT)
    try:
        want = (_run(raw, sql), _everything(raw, tables))
        raw.rollback()
        got = _run(gov, sql)
        gov.commit()
        after = _everything(pg_conn, tables)
    finally:
        raw.close()
        gov.close()
    assert got == want[0], (got, want)
    assert after == want[1], case  # the database holds what the raw write left


WRITES = {**LEAKS, **ORDERED}


@pytest.mark.parametrize("case", list(WRITES), ids=list(WRITES))
def test_an_identity_with_an_unmask_grant_writes_as_raw(pg_conn: Any, tables: dict[str, str], case: str) -> None:
    """Nothing is masked for it: the writes run as written, and leave what the raw write leaves."""
    write, env, _, changed = WRITES[case]
    dba = governed_db.Identity("dana", kind="human", roles=["dba"])
    pg_conn.execute(f"UPDATE {tables['a']} SET city = NULL, full_name = NULL WHERE id = 5")
    gov = govern(pg_connect("psycopg", autocommit=False), dba, environment=env,
                 masking={"unmask": [{"role": "dba"}]})  # fmt: skip
    try:
        got = _run(gov, write.format(t=tables["a"], i=tables["i"]), PARAMS.get(case))
        gov.commit()
    finally:
        gov.close()
    assert not str(got).startswith("refused"), got
    assert _state(pg_conn, tables, "a") == changed


# -- a write with FROM/USING locked in key order changes what it changes raw --------------------------------
JOINED = {
    "values-returning": "UPDATE {t} AS p SET city = v.c FROM (VALUES (5, 'x'), (200, 'y'), (7, 'z')) v(k, c) "
    "WHERE p.id = v.k AND v.c <> 'z' RETURNING p.id, v.c",
    "only-clear-table": "UPDATE ONLY {t} p SET city = 'b' FROM {i} q WHERE q.id = p.id AND q.qty = 3",
    "schema-no-alias": "UPDATE public.{t} SET city = 'b' FROM {i} WHERE {i}.id = {t}.id AND {i}.qty = 3",
    "self-join": "UPDATE {t} p SET city = q.city || '!' FROM {t} q WHERE q.id = p.id AND p.id < 10",
    "with-before": "WITH w AS (SELECT id FROM {i} WHERE qty = 2) UPDATE {t} p SET city = 'w' FROM w "
    "WHERE w.id = p.id",
    "join-in-from": "UPDATE {t} p SET city = 'j' FROM {i} q JOIN (VALUES (3)) v(x) ON q.qty = v.x "
    "WHERE q.id = p.id",
    "parenthesised-join": "UPDATE {t} p SET city = 'j' FROM ({i} q JOIN (VALUES (3)) v(x) ON q.qty = v.x) "
    "WHERE q.id = p.id",
    "two-items": "UPDATE {t} p SET city = 'two' FROM {i} q, (VALUES (4)) v(x) WHERE q.id = p.id AND q.qty = v.x",
    "delete-returning": "DELETE FROM {t} p USING {i} q WHERE q.id = p.id AND q.qty = 4 RETURNING p.id, q.qty",
    "comments": "UPDATE {t} p SET city = 'c' /* x */ FROM {i} q -- note\n WHERE q.id = p.id /* y */ AND q.qty = 5 "
    "-- end",
    "clear-target-key-changed": "UPDATE {i} c SET id = c.id + 1000 FROM {t} p WHERE p.id = c.id AND p.city IS NULL",
    "composite-key": "UPDATE {c} k SET city = 'k' FROM {i} q WHERE q.id = k.a AND q.qty = 6",
    "named-parameter": "UPDATE {t} p SET city = %(c)s FROM {i} q WHERE q.id = p.id AND q.qty = %(q)s",
    "positional-parameter-in-set": "UPDATE {t} p SET city = %s FROM {i} q WHERE q.id = p.id AND q.qty = 2",
}


def _holds(conn: Any, names: dict[str, str]) -> Any:
    cur = conn.cursor()
    out = []
    for sql in (f"SELECT id, city, full_name IS NULL FROM {names['a']} ORDER BY id",
                f"SELECT id, qty, city FROM {names['i']} ORDER BY id",
                f"SELECT a, b, city FROM {names['c']} ORDER BY a, b"):  # fmt: skip
        cur.execute(sql)
        out.append([tuple(r) for r in cur.fetchall()])
    return out


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("case", list(JOINED), ids=list(JOINED))
def test_a_joined_write_locked_in_key_order_changes_the_raw_rows(
    pg_conn: Any, tables: dict[str, str], case: str, driver: str
) -> None:
    """The row count, the RETURNING rows and the tables afterwards are the raw connection's."""
    names = {**tables, "c": f"{tables['prefix']}_c"}
    pg_conn.execute(f"CREATE TABLE {names['c']} (a int, b int, full_name text, city text, PRIMARY KEY (a, b))")
    pg_conn.execute(f"INSERT INTO {names['c']} SELECT g % 50, g / 50, 'Person ' || g, 'Lyon' "
                    "FROM generate_series(1, 400) g")  # fmt: skip
    pg_conn.execute(f"UPDATE {names['a']} SET city = NULL, full_name = NULL WHERE id IN (5, 9)")
    sql = JOINED[case].format(t=names["a"], i=names["i"], c=names["c"])
    params = {"c": "named", "q": 2} if "%(" in sql else ("set",) if "%s" in sql else None
    raw = pg_connect(driver, autocommit=False)
    gov = govern(pg_connect(driver, autocommit=False), CURIOUS_AGENT)
    try:
        cur = raw.cursor()
        cur.execute(sql, params)
        want = (cur.rowcount, sorted(map(tuple, cur.fetchall())) if cur.description else None, _holds(raw, names))
        raw.rollback()
        cur = gov.cursor()
        cur.execute(sql, params)
        got = (cur.rowcount, sorted(map(tuple, cur.fetchall())) if cur.description else None)
        gov.commit()
        after = _holds(pg_conn, names)
    finally:
        raw.close()
        gov.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {names['c']}")
    assert want[0] > 1, want  # several rows: locked in key order
    assert got == want[:2], (got, want[:2])
    assert after == want[2]


def test_asyncpg_writes_are_locked_in_key_order_or_refused_alike(pg_conn: Any, tables: dict[str, str]) -> None:
    """Through asyncpg (numbered parameters, repeated as they are): an ``UPDATE ... FROM`` and a ``DELETE ...
    USING`` change what they change raw, a MERGE is refused alike over both copies; the tables are the raw ones."""
    from tests._redteam import asyncpg_variants

    writes = [
        ("UPDATE {t} SET city = 'b' FROM (VALUES (1)) v(x) WHERE {t}.city IS NULL OR {t}.id = $1", 200),
        ("DELETE FROM {t} USING (VALUES (1)) v(x) WHERE {t}.city IS NULL OR {t}.id = $1", 300),
        ("MERGE INTO {t} USING (VALUES (1)) v(x) ON {t}.city IS NULL OR {t}.id = $1 WHEN MATCHED THEN "
         "UPDATE SET city = 'b'", 200),
    ]  # fmt: skip

    async def see(conn: Any, t: str) -> list[Any]:
        out: list[Any] = []
        for sql, arg in writes:
            tr = conn.transaction()
            await tr.start()
            try:
                await conn.execute(f"UPDATE {t} SET city = NULL, full_name = NULL WHERE id = 5")
                out.append(await conn.execute(sql.format(t=t), arg))
                rows = await conn.fetch(f"SELECT id, city FROM {t} WHERE city IS DISTINCT FROM 'Lyon' ORDER BY id")
                out.append([tuple(r) for r in rows])
            except governed_db.GuardrailViolation as e:
                out.append(f"refused: {e}".replace(t, "T"))
            finally:
                await tr.rollback()
        return out

    seen = asyncpg_variants({"a": tables["a"], "b": tables["b"]}, see, identity=CURIOUS_AGENT)
    assert seen["a"][1] == seen["b"][1], seen
    raw, gov = seen["a"]
    assert gov[:4] == raw[:4] == ["UPDATE 2", [(1, "Paris"), (5, "b"), (200, "b")], "DELETE 2", [(1, "Paris")]]
    assert raw[4] == "MERGE 2" and gov[4].startswith("refused: ") and "T.full_name" in gov[4], gov
    for v in ("a", "b"):  # every attempt rolled back
        assert pg_conn.execute(f"SELECT count(*) FROM {tables[v]} WHERE city = 'Lyon'").fetchone()[0] == 399
