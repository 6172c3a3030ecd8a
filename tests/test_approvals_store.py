"""Approval stores under contention: SQLite and the real PostgreSQL server, threads and processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db.approvals import ApprovalConfig, Approvals, ReviewRefused, open_store
from governed_db.approvals.postgres_store import PostgresStore, redact, split_url
from governed_db.approvals.sqlite_store import SQLiteStore
from governed_db.approvals.store import SQLStore
from governed_db.errors import ApprovalRequired, ConfigurationError, GovernanceFault
from governed_db.identity import Identity
from governed_db.policy import Policy
from governed_db.policy.decision import Action, RuleHit

ALICE = Identity("alice")
REVIEWERS = [Identity(f"reviewer{i}", roles=("dba",)) for i in range(8)]


def risky_writes(stmt: Any, ctx: Any) -> RuleHit | None:
    if stmt is not None and stmt.operation in ("DELETE", "UPDATE"):
        return RuleHit("risky-write", Action.REQUIRE_APPROVAL, f"{stmt.operation} needs a reviewer")
    return None


POLICY = Policy(name="approvals-store-test", rules=(risky_writes,))


def _pg_store(dsn: str, unique: str) -> Iterator[PostgresStore]:
    import psycopg

    schema = f"gdb_appr_{unique}"
    store = PostgresStore(dsn, schema=schema)
    yield store
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> Iterator[SQLStore]:
    if request.param == "sqlite":
        yield SQLiteStore(tmp_path / "approvals.sqlite3")
    else:
        yield from _pg_store(request.getfixturevalue("pg_dsn"), unique)


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE t (id INTEGER)")
        raw.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
    return str(path)


def _filed(svc: Approvals, sql: str = "DELETE FROM t WHERE id = 1", **cfg: Any) -> str:
    return svc.request_statement(sql, identity=ALICE, environment="production", dialect="sqlite",
                                 reason="test").id


def _race(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(i) in n threads released together; returns results or the exceptions raised."""
    barrier = threading.Barrier(n)

    def go(i: int) -> Any:
        barrier.wait()
        try:
            return fn(i)
        except Exception as e:
            return e

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(go, range(n)))


def test_round_trip_preserves_every_field(store: SQLStore) -> None:
    """A filed request reads back identical, reviews included, on both engines."""
    svc = Approvals(ApprovalConfig(quorum=2, reviewer_roles=("dba",)), store=store)
    rid = _filed(svc)
    svc.approve(rid, REVIEWERS[0], "first")
    got = svc.get(rid)
    assert got.state == "pending" and got.policy.quorum == 2 and got.policy.reviewer_roles == ("dba",)
    assert [(r.reviewer, r.verdict, r.comment, r.roles) for r in got.reviews] == [
        ("reviewer0", "approve", "first", ("dba",))]
    assert got.statement == "DELETE FROM t WHERE id = ?" and got.reason == "test"
    assert [r.id for r in svc.list(pending=True)] == [rid]


def test_racing_reviewers_give_exactly_one_outcome(store: SQLStore) -> None:
    """Eight reviewers approving and denying at once: exactly one verdict lands, the rest are refused."""
    svc = Approvals(ApprovalConfig(), store=store)
    for _ in range(3):
        rid = _filed(svc)
        results = _race(8, lambda i, rid=rid: (svc.approve if i % 2 else svc.deny)(rid, REVIEWERS[i]))
        won = [r for r in results if not isinstance(r, Exception)]
        lost = [r for r in results if isinstance(r, ReviewRefused)]
        assert len(won) == 1 and len(lost) == 7, results
        assert all(e.code == "decided" for e in lost)
        final = svc.get(rid)
        assert final.state == won[0].state and len(final.reviews) == 1


def test_quorum_reached_once_under_contention(store: SQLStore) -> None:
    """With quorum 3 and six racing approvers exactly three reviews count and approval happens once."""
    transitions: list[str] = []
    svc = Approvals(ApprovalConfig(quorum=3), store=store)
    rid = _filed(svc)
    original = svc._emit
    svc._emit = lambda name, *a: (transitions.append(name), original(name, *a))  # type: ignore[method-assign]
    results = _race(6, lambda i: svc.approve(rid, REVIEWERS[i]))
    assert sum(not isinstance(r, Exception) for r in results) == 3
    assert transitions.count("approved") == 1 and transitions.count("reviewed") == 2
    assert len(svc.get(rid).approvals) == 3


def test_one_time_grant_is_consumed_exactly_once(store: SQLStore, db: str) -> None:
    """Eight threads running the approved statement at once: one runs it, the rest need a new approval."""
    svc = Approvals(ApprovalConfig(), store=store)
    rid = _filed(svc)
    svc.approve(rid, REVIEWERS[0])
    conns = [governed_db.wrap(sqlite3.connect(db, check_same_thread=False), identity=ALICE, policy=POLICY,
                              approvals=svc) for _ in range(8)]
    results = _race(8, lambda i: conns[i].execute("DELETE FROM t WHERE id = 1"))
    ran = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, ApprovalRequired)]
    assert len(ran) == 1 and len(refused) == 7, results
    assert len({e.request_id for e in refused}) == 1  # the losers share one new request, not seven
    assert svc.get(rid).state == "consumed"


def test_execute_and_revoke_race_has_one_winner(store: SQLStore, db: str) -> None:
    """An execute racing a revoke: either the statement runs and revoke is refused, or the reverse."""
    svc = Approvals(ApprovalConfig(), store=store)
    conn = governed_db.wrap(sqlite3.connect(db, check_same_thread=False), identity=ALICE, policy=POLICY,
                            approvals=svc)
    for n in range(6):
        sql = f"DELETE FROM t WHERE id = {n}"
        rid = _filed(svc, sql)
        svc.approve(rid, REVIEWERS[0])
        results = _race(2, lambda i, sql=sql, rid=rid: conn.execute(sql) if i == 0
                        else svc.revoke(rid, REVIEWERS[1]))
        executed = not isinstance(results[0], Exception)
        revoked = not isinstance(results[1], Exception)
        assert executed != revoked, results
        assert svc.get(rid).state == ("consumed" if executed else "revoked")


# -- processes ------------------------------------------------------------------------------------

def _store_from(spec: tuple[str, str, str]) -> SQLStore:
    kind, where, schema = spec
    return SQLiteStore(where) if kind == "sqlite" else PostgresStore(where, schema=schema)


def _spec(store: SQLStore) -> tuple[str, str, str]:
    if isinstance(store, PostgresStore):
        return ("postgres", store.dsn, store.schema)
    assert isinstance(store, SQLiteStore)
    return ("sqlite", str(store.path), "")


def _proc_execute(spec: tuple[str, str, str], db: str, start: float) -> str:
    svc = Approvals(ApprovalConfig(), store=_store_from(spec))
    conn = governed_db.wrap(sqlite3.connect(db, timeout=30), identity=ALICE, policy=POLICY, approvals=svc)
    time.sleep(max(0.0, start - time.time()))
    try:
        conn.execute("DELETE FROM t WHERE id = 1")
        conn.commit()
        return "ran"
    except ApprovalRequired:
        return "refused"


def _proc_review(spec: tuple[str, str, str], rid: str, i: int, start: float) -> str:
    svc = Approvals(ApprovalConfig(), store=_store_from(spec))
    time.sleep(max(0.0, start - time.time()))
    try:
        return (svc.approve if i % 2 else svc.deny)(rid, REVIEWERS[i]).state
    except ReviewRefused as e:
        return e.code


def test_processes_consume_a_grant_once_and_review_once(store: SQLStore, db: str) -> None:
    """Four processes executing and four reviewing at once: one execute runs, one verdict lands."""
    svc = Approvals(ApprovalConfig(), store=store)
    rid = _filed(svc)
    svc.approve(rid, REVIEWERS[0])
    pending = _filed(svc, "DELETE FROM t WHERE id = 2")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(8) as pool:
        start = time.time() + 4
        runs = [pool.apply_async(_proc_execute, (_spec(store), db, start)) for _ in range(4)]
        reviews = [pool.apply_async(_proc_review, (_spec(store), pending, i, start)) for i in range(4)]
        ran = [r.get(60) for r in runs]
        verdicts = [r.get(60) for r in reviews]
    assert sorted(ran) == ["ran", "refused", "refused", "refused"]
    assert sum(v in ("approved", "denied") for v in verdicts) == 1 and verdicts.count("decided") == 3
    assert svc.get(rid).state == "consumed" and len(svc.get(pending).reviews) == 1
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT count(*) FROM t WHERE id = 1").fetchone() == (0,)


# -- PostgreSQL specifics -------------------------------------------------------------------------

def test_postgres_store_chosen_by_url_end_to_end(pg_dsn: str, unique: str, db: str, tmp_path: Path) -> None:
    """approvals='postgresql://...?schema=' files, approves and consumes through the real server."""
    import psycopg

    info = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    schema = f"gdb_appr_url_{unique}"
    url = f"postgresql://{info.get('user', 'postgres')}@{info.get('host')}:{info.get('port', 5432)}/" \
          f"{info.get('dbname')}?schema={schema}"
    try:
        conn = governed_db.wrap(sqlite3.connect(db), identity=ALICE, policy=POLICY, approvals=url)
        with pytest.raises(ApprovalRequired) as e:
            conn.execute("DELETE FROM t WHERE id = 3")
        assert isinstance(open_store(url), PostgresStore) and f"schema={schema}" in (e.value.approve_command or "")
        governed_db.approvals.approve(e.value.request_id, reviewer=REVIEWERS[0], store=url)
        conn.execute("DELETE FROM t WHERE id = 3")
        assert governed_db.approvals.get_request(e.value.request_id, store=url).state == "consumed"
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as raw:
            raw.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_unreachable_postgres_store_fails_closed(db: str) -> None:
    """A PostgreSQL store nobody answers refuses approval-needing statements; other statements run."""
    dead = PostgresStore("postgresql://postgres@127.0.0.1:1/test", connect_timeout=1)
    conn = governed_db.wrap(sqlite3.connect(db), identity=ALICE, policy=POLICY, approvals={"store": dead})
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (10,)
    with pytest.raises(GovernanceFault) as info:
        conn.execute("DELETE FROM t")
    # the error contract: a fault leaving a governed call is the driver's error class too
    assert isinstance(info.value, sqlite3.DatabaseError)
    # (the host may be scrubbed from the message by error masking; the store kind and port remain)
    assert "unreachable" in str(info.value) and "postgresql://postgres@" in str(info.value)


@pytest.mark.parametrize(
    ("url", "dsn", "schema"),
    [
        ("postgresql://u@h/db", "postgresql://u@h/db", "governed_db_approvals"),
        ("postgresql://u@h/db?schema=s1&sslmode=require", "postgresql://u@h/db?sslmode=require", "s1"),
    ],
)
def test_split_url_takes_out_our_schema_parameter(url: str, dsn: str, schema: str) -> None:
    """The schema parameter chooses the schema and never reaches libpq."""
    assert split_url(url) == (dsn, schema)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("host=h password=s3cret dbname=db", "host=h password=*** dbname=db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_passwords_never_shown(dsn: str, shown: str) -> None:
    """Store locations in messages and commands carry no password."""
    assert redact(dsn) == shown


@pytest.mark.parametrize("bad", ["mysql://h/db", "sqlite:relative.db", "", 42])
def test_bad_store_specs_are_configuration_errors(bad: Any) -> None:
    """Unsupported URLs and non-strings are refused with a message naming what works."""
    with pytest.raises(ConfigurationError):
        open_store(bad)


def test_bad_schema_name_refused() -> None:
    """The schema name is an identifier, never SQL."""
    with pytest.raises(ConfigurationError):
        PostgresStore("postgresql://u@h/db", schema='x"; DROP TABLE y; --')


def test_governed_postgresql_connection_with_postgresql_store(pg_dsn: str, pg_conn: Any, unique: str) -> None:
    """On PostgreSQL end to end: the refused DELETE never reaches the server; after approval it runs once."""
    import psycopg

    table = f"appr_e2e_{unique}"
    pg_conn.execute(f"CREATE TABLE {table} (id int)")
    pg_conn.execute(f"INSERT INTO {table} SELECT generate_series(1, 5)")
    stores = _pg_store(pg_dsn, unique)
    store = next(stores)
    try:
        conn = governed_db.wrap(psycopg.connect(pg_dsn, autocommit=True), identity=ALICE, policy=POLICY,
                                approvals={"store": store})
        with pytest.raises(ApprovalRequired) as e:
            conn.execute(f"DELETE FROM {table} WHERE id > %s", (3,))
        assert isinstance(e.value, psycopg.ProgrammingError)
        assert pg_conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (5,)
        svc = Approvals(ApprovalConfig(), store=store)
        assert svc.get(e.value.request_id or "").statement.startswith(f"DELETE FROM {table} WHERE id >")
        svc.approve(e.value.request_id or "", REVIEWERS[0], "ok")
        conn.execute(f"DELETE FROM {table} WHERE id > %s", (3,))
        assert pg_conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (3,)
        with pytest.raises(ApprovalRequired):
            conn.execute(f"DELETE FROM {table} WHERE id > %s", (3,))
        conn.close()
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {table}")
        next(stores, None)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("operations", "{not json"),
        ("tables_", "[" * 5000 + "]" * 5000),
        ("rules", '{"a": 1}'),
        ("review_policy", "[1, 2]"),
    ],
)
def test_corrupt_request_row_is_a_governance_fault(store: SQLStore, column: str, value: Any) -> None:
    """A damaged row (bad or deeply nested JSON, wrong shape) is a GovernanceFault naming the request."""
    svc = Approvals(ApprovalConfig(store=store))
    rid = _filed(svc)
    with store._tx() as ex:
        ex.run(f"UPDATE {store.t['requests']} SET {column} = ? WHERE id = ?", (value, rid))
    with pytest.raises(GovernanceFault, match=f"corrupt request row \\(request '{rid}'"):
        store.get(rid)
    with pytest.raises(GovernanceFault, match="corrupt"):
        store.list()


def test_corrupt_review_row_and_hash_key_are_governance_faults(store: SQLStore) -> None:
    """A review whose roles are not a list, or a hash key that is not hex, fails closed with a GovernanceFault."""
    svc = Approvals(ApprovalConfig(store=store))
    rid = _filed(svc)
    svc.approve(rid, REVIEWERS[0])
    with store._tx() as ex:
        ex.run(f"UPDATE {store.t['reviews']} SET roles = ? WHERE request_id = ?", ('"dba"', rid))
        ex.run(f"UPDATE {store.t['meta']} SET value = ? WHERE key = ?", ("zz-not-hex", "hash_key"))
    with pytest.raises(GovernanceFault, match="corrupt review row"):
        store.get(rid)
    store._key = None
    with pytest.raises(GovernanceFault, match="corrupt key row"):
        store.hash_key()


def test_corrupt_row_refuses_the_governed_statement_as_a_fault(store: SQLStore, db: str) -> None:
    """A statement whose pending request row is corrupt is refused: GovernanceFault and the driver's DatabaseError."""
    conn = governed_db.wrap(sqlite3.connect(db), identity=ALICE, policy=POLICY, approvals={"store": store},
                            audit=False)
    with pytest.raises(ApprovalRequired):
        conn.execute("DELETE FROM t WHERE id = 1")  # files the request
    with store._tx() as ex:
        ex.run(f"UPDATE {store.t['requests']} SET tables_ = ?", ("{not json",))
    with pytest.raises(GovernanceFault, match="corrupt request row") as info:
        conn.execute("DELETE FROM t WHERE id = 1")
    assert isinstance(info.value, sqlite3.DatabaseError) and not isinstance(info.value, ApprovalRequired)
    assert governed_db.unwrap(conn).execute("SELECT count(*) FROM t").fetchone() == (10,)  # nothing ran
