"""Round 19: an approved PostgreSQL UPDATE/DELETE without WHERE locks its rows in key order (decision 0378).

Decision 0351 locked a multi-row write's rows in key order first, and left the write without WHERE to the
``unbounded-write`` rule (0351 Open): refused in production, but in staging it runs once a reviewer approves it.
Such a write locks every row of its table as it reaches it, in the order the table is stored in, which where an
earlier UPDATE put a row's new version (how wide the masked values stored before it are) decides. One session of
the agent's holds row 200, the approved write waits there, a third asks for row 5 with ``NOWAIT``: over two copies
of a 400-people table that differ only in row 1's masked name, the answer told the copies apart (``LockNotAvailable``
in one, the row in the other) through governed connections too. Now the rows are locked in key order first:
``... WHERE "id" IN (SELECT "id" FROM t ORDER BY "id" FOR NO KEY UPDATE)``.

Every attempt goes through a real approval (a request filed by the refused call, approved by a DBA, consumed by the
same call), is committed, and the tables are then read through the admin session: the database is the ground truth.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db import Identity, approvals
from tests._redteam import CURIOUS_AGENT, govern, pg_connect, pg_stored_people, rows_or_rules

#: the reviewer who approves the agent's requests
DBA = Identity("dana", kind="human", roles=("dba",))


@pytest.fixture
def tables(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """``a``/``b``: 400 people differing only in row 1's name; ``i``: 400 rows without a masked column."""
    prefix = f"r19nw_{unique}"
    names = {**pg_stored_people(pg_conn, prefix), "i": f"{prefix}_i", "prefix": prefix}
    pg_conn.execute(f"CREATE TABLE {names['i']} (id int primary key, qty int, city text)")
    pg_conn.execute(f"INSERT INTO {names['i']} SELECT g, g % 7, 'Lyon' FROM generate_series(1, 400) g")
    yield names
    pg_conn.execute(f"DROP TABLE IF EXISTS {names['a']}, {names['b']}, {names['i']}")


def _fresh(admin: Any, names: dict[str, str]) -> None:
    """The people tables as they were made (an attempt moved row 5 and wrote)."""
    admin.execute(f"DROP TABLE {names['a']}, {names['b']}")
    pg_stored_people(admin, names["prefix"])


#: a deployment that lets a reviewer approve a write without WHERE in production (the catalog refuses it there)
APPROVABLE = {"rules": {"unbounded-write": {"production": "require_approval"}}}


def _connect(governed: bool, env: str, store: str, policy: Any = None) -> Any:
    conn = pg_connect("psycopg", autocommit=False)
    if not governed:
        return conn
    return govern(conn, CURIOUS_AGENT, environment=env, approvals={"store": store}, policy=policy)


def _approve(conn: Any, sql: str, store: str) -> str:
    """The approval ``sql`` waits for on ``conn``, filed by running it and granted by a DBA: its request id."""
    with pytest.raises(governed_db.ApprovalRequired) as asked:
        conn.cursor().execute(sql)
    assert {"unbounded-write", "undecidable-where"} & set(asked.value.rules), asked.value
    conn.rollback()
    approvals.approve(asked.value.request_id or "", reviewer=DBA, store=store)
    return asked.value.request_id or ""


def _locked_first(admin: Any, table: str, sql: str, governed: bool, env: str, store: str, policy: Any = None) -> Any:
    """One session holds row 200 of ``table``, a second runs ``sql`` (approved where it must be; it waits at 200),
    a third asks for row 5 with NOWAIT: refused when the write locked row 5 before it waited. Returns what the
    prober saw, what the write answered (its row count and rows, or its refusal or failure) and the text the
    server received for it (as it waited)."""
    holder, writer, prober = (_connect(governed, env, store, policy) for _ in range(3))
    done: list[Any] = []
    sent = None

    def run() -> None:
        try:
            cur = writer.cursor()
            cur.execute(sql)
            done.append((cur.rowcount, [tuple(r) for r in cur.fetchall()] if cur.description else None))
        except governed_db.GuardrailViolation as e:
            done.append(f"refused: {e}".replace(table, "T"))
        except Exception as e:
            done.append(f"failed: {type(e).__name__}")

    try:
        if governed and env != "development":
            _approve(writer, sql, store)
        holder.cursor().execute(f"SELECT id FROM {table} WHERE id = 200 FOR UPDATE")
        pid = (writer.__wrapped__ if governed else writer).info.backend_pid
        thread = threading.Thread(target=run)
        thread.start()
        for _ in range(100):  # until the write waits for row 200 (or ended)
            if done or admin.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = %s",
                                     (pid,)).fetchone()[0]:  # fmt: skip
                sent = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]
                break
            time.sleep(0.05)
        try:
            seen = rows_or_rules(prober, f"SELECT id FROM {table} WHERE id = 5 FOR UPDATE NOWAIT")
        except Exception as e:
            seen = type(e).__name__
        finally:
            prober.rollback()
            holder.rollback()
            thread.join()
            writer.commit()
        return seen, done[0] if done else None, sent
    finally:
        for c in (holder, writer, prober):
            c.close()


def _state(admin: Any, table: str) -> tuple[Any, Any]:
    """What the write left: the people whose city is not the one they were made with, and how many there are."""
    changed = admin.execute(f"SELECT id, city FROM {table} WHERE city IS DISTINCT FROM 'Lyon' ORDER BY id LIMIT 3")
    return changed.fetchall(), admin.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


#: an approved write without WHERE -> what the tables hold after it (as the raw write leaves them)
EVERYTHING = ([(1, "b"), (2, "b"), (3, "b")], 400)
NOTHING: tuple[Any, Any] = ([], 0)
UNBOUNDED: dict[str, tuple[str, Any]] = {
    "update": ("UPDATE {t} SET city = 'b'", EVERYTHING),
    "update-aliased": ("UPDATE {t} AS p SET city = 'b'", EVERYTHING),
    "update-returning": ("UPDATE {t} SET city = 'b' RETURNING id", EVERYTHING),
    "delete": ("DELETE FROM {t}", NOTHING),
    "delete-only": ("DELETE FROM ONLY {t};", NOTHING),
    "delete-returning": ("DELETE FROM {t} p RETURNING p.id, p.city", NOTHING),
}


def _oracle(admin: Any, names: dict[str, str], case: str, governed: bool, store: str, env: str) -> dict[str, Any]:
    """Per copy: what the prober saw, what the write answered, what the table then holds and what the server
    received (the table named ``T``)."""
    out = {}
    for v in ("a", "b"):
        sql = UNBOUNDED[case][0].format(t=names[v])
        # row 5's new version stays on its page, or goes to the last one, as row 1's masked name is short or long
        admin.execute(f"UPDATE {names[v]} SET city = NULL, full_name = NULL WHERE id = 5")
        seen, answered, sent = _locked_first(admin, names[v], sql, governed, env, store,
                                             APPROVABLE if env == "production" else None)
        out[v] = (seen, answered, _state(admin, names[v]), (sent or "").replace(names[v], "T").split(" /*")[0])
    _fresh(admin, names)
    return out


@pytest.mark.parametrize("case", list(UNBOUNDED), ids=list(UNBOUNDED))
def test_an_approved_write_without_where_locks_in_key_order(
    pg_conn: Any, tables: dict[str, str], case: str, tmp_path: Any
) -> None:
    """Raw, the prober tells the copies apart; governed and approved (staging), row 5 is locked first in both, and
    the write answers and changes exactly what it does raw (RETURNING rows in key order)."""
    store = str(tmp_path / "approvals.db")
    raw = _oracle(pg_conn, tables, case, governed=False, store=store, env="staging")
    assert raw["a"][0] != raw["b"][0], raw  # the oracle: row 5 locked before the wait in one copy only
    assert raw["a"][2] == raw["b"][2] == UNBOUNDED[case][1], raw
    seen = _oracle(pg_conn, tables, case, governed=True, store=store, env="staging")
    assert seen["a"] == seen["b"], seen
    assert seen["a"][0] == "LockNotAvailable", seen
    assert seen["a"][2] == UNBOUNDED[case][1], seen
    assert '"id" IN (SELECT "id" FROM ' in seen["a"][3] and "ORDER BY" in seen["a"][3], seen  # what ran
    count, rows = seen["a"][1]
    assert count == raw["a"][1][0] == 400, (seen, raw)
    if rows is not None:
        assert [r[0] for r in rows] == list(range(1, 401)), rows[:5]  # RETURNING in key order (0330)
        assert sorted(rows) == sorted(raw["a"][1][1]), case  # the raw write's rows


@pytest.mark.parametrize("case", ["update", "delete"])
def test_an_approved_write_measured_in_production_locks_in_key_order(
    pg_conn: Any, tables: dict[str, str], case: str, tmp_path: Any
) -> None:
    """Production, a policy that lets a reviewer approve a write without WHERE: the effect guard runs the approved
    write to measure it and refuses it (every row of the table) — having locked the rows as it ran. Governed, row 5
    is locked first over both copies, the refusal is the same, and nothing is written."""
    store = str(tmp_path / "approvals.db")
    seen = _oracle(pg_conn, tables, case, governed=True, store=store, env="production")
    assert seen["a"] == seen["b"], seen
    assert seen["a"][0] == "LockNotAvailable", seen
    said = seen["a"][1]
    assert said.startswith("refused: ") and "write-effect" in said and "every row" in said, said
    assert seen["a"][2] == ([(1, "Paris"), (5, None)], 400), seen  # nothing written


# -- every write without WHERE locked in key order changes what it changes raw ---------------------------------
WHOLE = {
    "schema-qualified": ("UPDATE public.{t} SET city = 'b'", None),
    "composite-key": ("UPDATE {c} SET city = 'k' RETURNING a, b", None),
    "composite-key-delete": ("DELETE FROM {c} k", None),
    "set-reads-the-table": ("UPDATE {t} p SET city = (SELECT q.city FROM {t} q WHERE q.id = p.id + 1)", None),
    "comments": ("UPDATE {t} SET city = 'c' /* x */ -- end", None),
    "returning-expression": ("DELETE FROM {t} RETURNING id, id * 2 AS d, full_name IS NULL", None),
    "with-before": ("WITH w AS (SELECT 'w' AS c) UPDATE {t} SET city = (SELECT c FROM w)", None),
    "write-in-a-cte": ("WITH d AS (DELETE FROM {t} RETURNING id) SELECT count(*) FROM d", None),
    "positional-parameter": ("UPDATE {t} SET city = %s", ("p",)),
    "named-parameter": ("UPDATE {t} SET city = %(c)s RETURNING id, city", {"c": "n"}),
}


def _holds(conn: Any, names: dict[str, str]) -> Any:
    cur = conn.cursor()
    out = []
    for sql in (f"SELECT id, city, full_name IS NULL FROM {names['a']} ORDER BY id",
                f"SELECT a, b, city FROM {names['c']} ORDER BY a, b"):  # fmt: skip
        cur.execute(sql)
        out.append([tuple(r) for r in cur.fetchall()])
    return out


def _approved_run(conn: Any, sql: str, params: Any, store: str) -> Any:
    """Row count and rows of ``sql`` run on ``conn``, approved first where it waits for an approval."""
    for _ in range(2):
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
        except governed_db.ApprovalRequired as e:
            conn.rollback()
            approvals.approve(e.request_id or "", reviewer=DBA, store=store)
            continue
        return cur.rowcount, [tuple(r) for r in cur.fetchall()] if cur.description else None
    raise AssertionError("approved, and still waiting for an approval")


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("case", list(WHOLE), ids=list(WHOLE))
def test_a_write_without_where_locked_in_key_order_changes_the_raw_rows(
    pg_conn: Any, tables: dict[str, str], case: str, driver: str, tmp_path: Any
) -> None:
    """The row count, the RETURNING rows (as a set) and the tables afterwards are the raw connection's."""
    names = {**tables, "c": f"{tables['prefix']}_c"}
    pg_conn.execute(f"CREATE TABLE {names['c']} (a int, b int, full_name text, city text, PRIMARY KEY (a, b))")
    pg_conn.execute(f"INSERT INTO {names['c']} SELECT g % 50, g / 50, 'Person ' || g, 'Lyon' "
                    "FROM generate_series(1, 400) g")  # fmt: skip
    pg_conn.execute(f"UPDATE {names['a']} SET city = NULL, full_name = NULL WHERE id IN (5, 9)")
    write, params = WHOLE[case]
    sql = write.format(t=names["a"], c=names["c"])
    store = str(tmp_path / "approvals.db")
    raw = pg_connect(driver, autocommit=False)
    gov = govern(pg_connect(driver, autocommit=False), CURIOUS_AGENT, environment="staging",
                 approvals={"store": store})  # fmt: skip
    try:
        cur = raw.cursor()
        cur.execute(sql, params)
        want = (cur.rowcount, [tuple(r) for r in cur.fetchall()] if cur.description else None, _holds(raw, names))
        raw.rollback()
        got = _approved_run(gov, sql, params, store)
        gov.commit()
        after = _holds(pg_conn, names)
    finally:
        raw.close()
        gov.close()
        pg_conn.execute(f"DROP TABLE IF EXISTS {names['c']}")
    assert got[0] == want[0], (got[0], want[0])
    assert (got[1] is None) == (want[1] is None) and sorted(got[1] or []) == sorted(want[1] or []), case
    assert after == want[2]


def test_the_approval_is_bound_to_the_statement_the_reviewer_saw(
    pg_conn: Any, tables: dict[str, str], tmp_path: Any
) -> None:
    """The request shows the statement as the agent wrote it (not the locking subquery governed_db adds), the grant
    is consumed by that statement, and a second run needs a new approval."""
    store = str(tmp_path / "approvals.db")
    sql = f"UPDATE {tables['a']} SET city = 'b'"
    gov = _connect(True, "staging", store)
    try:
        request = _approve(gov, sql, store)
        (filed,) = [r for r in approvals.list_requests(store=store) if r.id == request]
        assert " IN " not in filed.statement.upper() and "WHERE" not in filed.statement.upper(), filed.statement
        cur = gov.cursor()
        cur.execute(sql)
        assert cur.rowcount == 400
        gov.commit()
        with pytest.raises(governed_db.ApprovalRequired):
            gov.cursor().execute(sql)  # the one-time grant was consumed
    finally:
        gov.close()
    assert _state(pg_conn, tables["a"]) == EVERYTHING


# -- innocent look-alikes: what is not masked runs as written -------------------------------------------------
CLEAR = [
    "UPDATE {i} SET qty = 9",
    "DELETE FROM {i}",
    "UPDATE {i} SET qty = 9 RETURNING id",
    "UPDATE {i} SET qty = (SELECT count(*) FROM {t})",
    "WITH w AS (SELECT full_name FROM {t}) UPDATE {i} SET qty = (SELECT count(*) FROM w)",
    "DELETE FROM {i} WHERE qty >= 0",
]


@pytest.mark.parametrize("write", CLEAR)
def test_a_table_without_masked_columns_is_written_as_sent(
    pg_conn: Any, tables: dict[str, str], write: str, tmp_path: Any
) -> None:
    """A write (approved) of every row of a table with no masked column (its SET may read one) reaches the server
    unchanged, and changes every row."""
    sql = write.format(t=tables["a"], i=tables["i"])
    _, (count, _), sent = _locked_first(pg_conn, tables["i"], sql, True, "staging", str(tmp_path / "a.db"))
    assert sent is not None and sent.split(" /*")[0] == sql, sent
    assert count == 400, count


@pytest.mark.parametrize("case", ["update-returning", "delete"])
def test_development_writes_as_sent(pg_conn: Any, tables: dict[str, str], case: str, tmp_path: Any) -> None:
    """In development nothing is masked: a write without WHERE runs unapproved, as written, and as raw."""
    sql = UNBOUNDED[case][0].format(t=tables["a"])
    _, (count, _), sent = _locked_first(pg_conn, tables["a"], sql, True, "development", str(tmp_path / "a.db"))
    assert sent is not None and sent.split(" /*")[0] == sql, sent
    assert count == 400 and _state(pg_conn, tables["a"]) == UNBOUNDED[case][1]


def test_production_still_refuses_a_write_without_where(pg_conn: Any, tables: dict[str, str], tmp_path: Any) -> None:
    """The rewrite changes nothing of the rule: in production a write without WHERE is refused, nothing written."""
    gov = _connect(True, "production", str(tmp_path / "approvals.db"))
    try:
        with pytest.raises(governed_db.GuardrailViolation, match="unbounded-write"):
            gov.cursor().execute(f"DELETE FROM {tables['a']}")
        gov.rollback()
    finally:
        gov.close()
    assert _state(pg_conn, tables["a"]) == ([(1, "Paris")], 400)
