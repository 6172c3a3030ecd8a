"""The database as a second layer (governed_db.guards.session): read-only sessions for read-only identities.

Ground truth is the database: a function that deletes, or nextval(), fails *in the database* while a read-only
identity acts, the rows are still there, and the failure is recorded as a refusal.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db import Identity
from governed_db.errors import GuardrailViolation
from governed_db.policy import Policy
from governed_db.policy.file import PolicyFileError, policy_from_mapping
from tests.conftest import MYSQL_DB

READER = Identity("report-bot", kind="agent")
HUMAN = Identity("alice")
READ_ONLY_AGENTS = {"writes": [{"when": {"kind": "agent"}, "read_only": True}]}


@pytest.fixture(params=["psycopg", "psycopg2"])
def pg(request: pytest.FixtureRequest, pg_dsn: str, unique: str) -> Iterator[tuple[Any, Any, str]]:
    """(governed connection, admin cursor-like execute, suffix) with a table, a purging function, a sequence."""
    import psycopg

    admin = psycopg.connect(pg_dsn, autocommit=True)
    admin.execute(f"CREATE TABLE ro_{unique} (id INT)")
    admin.execute(f"INSERT INTO ro_{unique} VALUES (1), (2)")
    admin.execute(f"CREATE FUNCTION purge_{unique}() RETURNS int LANGUAGE plpgsql AS "
                  f"$$ BEGIN DELETE FROM ro_{unique}; RETURN 1; END $$")  # fmt: skip
    admin.execute(f"CREATE SEQUENCE seq_{unique}")
    if request.param == "psycopg":
        raw: Any = psycopg.connect(pg_dsn, autocommit=True)
    else:
        psycopg2 = pytest.importorskip("psycopg2")
        raw = psycopg2.connect(pg_dsn)
        raw.autocommit = True
    gov = governed_db.wrap(raw, environment="production", policy=READ_ONLY_AGENTS, audit=False)
    yield gov, admin, unique
    raw.close()
    admin.execute(f"DROP FUNCTION purge_{unique}(); DROP TABLE ro_{unique}; DROP SEQUENCE seq_{unique}")
    admin.close()


def _count(admin: Any, unique: str) -> int:
    return int(admin.execute(f"SELECT count(*) FROM ro_{unique}").fetchone()[0])


def test_a_function_that_deletes_fails_in_the_database(pg: tuple[Any, Any, str]) -> None:
    """SELECT purge() (plpgsql DELETE) by a read-only agent fails in PostgreSQL and is a recorded refusal."""
    gov, admin, u = pg
    with governed_db.acting_as(READER), pytest.raises(GuardrailViolation, match="read-only") as e:
        gov.cursor().execute(f"SELECT purge_{u}()")
    assert e.value.rules == ("read-only-session",)
    assert _count(admin, u) == 2


def test_nextval_fails_in_the_database(pg: tuple[Any, Any, str]) -> None:
    """nextval() is a write to PostgreSQL: refused in the read-only session, the sequence does not move."""
    gov, admin, u = pg
    with governed_db.acting_as(READER), pytest.raises(GuardrailViolation, match="nextval"):
        gov.cursor().execute(f"SELECT nextval('seq_{u}')")
    assert admin.execute(f"SELECT last_value, is_called FROM seq_{u}").fetchone() == (1, False)


def test_reads_run_and_a_human_after_the_agent_writes_again(pg: tuple[Any, Any, str]) -> None:
    """The switch follows the acting identity: reads work read-only, the next person's write is kept."""
    gov, admin, u = pg
    cur = gov.cursor()
    with governed_db.acting_as(READER):
        cur.execute(f"SELECT count(*) FROM ro_{u}")
        assert cur.fetchall()[0][0] == 2
    with governed_db.acting_as(HUMAN):
        cur.execute(f"SELECT purge_{u}()")
    assert _count(admin, u) == 0


def test_the_agent_cannot_switch_the_session_back(pg: tuple[Any, Any, str]) -> None:
    """SET ... READ WRITE, set_config() and BEGIN READ WRITE from the read-only identity are refused."""
    gov, admin, u = pg
    cur = gov.cursor()
    with governed_db.acting_as(READER):
        for sql in ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
                    "SET default_transaction_read_only = off",
                    "SELECT set_config('default_transaction_read_only', 'off', false)",
                    "BEGIN READ WRITE", "RESET ALL"):
            with pytest.raises(GuardrailViolation):
                cur.execute(sql)
        with pytest.raises(GuardrailViolation):
            cur.execute(f"SELECT purge_{u}()")
    assert _count(admin, u) == 2


def test_driver_methods_that_undo_read_only_are_judged(pg: tuple[Any, Any, str]) -> None:
    """psycopg read_only=False / set_read_only(False), psycopg2 readonly=False / set_session / reset()."""
    gov, admin, u = pg
    raw = governed_db.unwrap(gov)
    with governed_db.acting_as(READER):
        gov.cursor().execute("SELECT 1")
        if hasattr(raw, "set_read_only"):
            with pytest.raises(GuardrailViolation):
                gov.read_only = False
            with pytest.raises(GuardrailViolation):
                gov.set_read_only(False)
            assert raw.read_only is None
        else:
            with pytest.raises(GuardrailViolation):
                gov.readonly = False
            with pytest.raises(GuardrailViolation):
                gov.set_session(readonly=False)
            with pytest.raises(GuardrailViolation):
                gov.reset()
        gov.autocommit = False  # autocommit toggles keep the session's default: still read-only
        with pytest.raises(GuardrailViolation):
            gov.cursor().execute(f"SELECT purge_{u}()")
        gov.rollback()
        gov.autocommit = True
    assert _count(admin, u) == 2


def test_read_only_inside_an_open_transaction(pg: tuple[Any, Any, str]) -> None:
    """A transaction opened before the read-only agent acts turns read-only too (not just the next one)."""
    gov, admin, u = pg
    gov.autocommit = False
    cur = gov.cursor()
    with governed_db.acting_as(HUMAN):
        cur.execute(f"SELECT count(*) FROM ro_{u}")
    with governed_db.acting_as(READER), pytest.raises(GuardrailViolation):
        cur.execute(f"SELECT purge_{u}()")
    gov.rollback()
    gov.autocommit = True
    assert _count(admin, u) == 2


def test_write_statement_deny_makes_the_session_read_only(pg_dsn: str, unique: str) -> None:
    """An identity for which the write-statement rule denies gets a read-only session without writes: config."""
    import psycopg

    policy = {"overrides": [{"when": {"kind": "agent"}, "rules": {"write-statement": "deny"}}]}
    raw = psycopg.connect(pg_dsn, autocommit=True)
    gov = governed_db.wrap(raw, environment="production", policy=policy, audit=False)
    with governed_db.acting_as(READER):
        gov.execute("SELECT 1")
    assert raw.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
    raw.close()


def test_switch_costs_a_round_trip_only_when_the_identity_changes(pg_dsn: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Statements by the same identity send nothing extra; a change of identity sends one switch."""
    import psycopg

    from governed_db.drivers import Driver

    sent: list[str] = []
    original = Driver.guard_execute
    monkeypatch.setattr(Driver, "guard_execute", lambda self, raw, sql: (sent.append(sql), original(self, raw, sql))[1])
    raw = psycopg.connect(pg_dsn, autocommit=True)
    gov = governed_db.wrap(raw, environment="production", policy=READ_ONLY_AGENTS, audit=False)
    with governed_db.acting_as(HUMAN):
        gov.execute("SELECT 1")
    assert sent == []
    with governed_db.acting_as(READER):
        gov.execute("SELECT 1")
        gov.execute("SELECT 2")
    assert len(sent) == 1 and "READ ONLY" in sent[0]
    with governed_db.acting_as(HUMAN):
        gov.execute("SELECT 1")
        gov.execute("SELECT 2")
    assert len(sent) == 2 and "READ WRITE" in sent[1]
    raw.close()


# -- MariaDB -------------------------------------------------------------------------------------------
@pytest.fixture
def maria(mysql_kw: dict[str, Any], unique: str) -> Iterator[tuple[Any, Any, str]]:
    import pymysql

    admin = pymysql.connect(autocommit=True, **mysql_kw)
    cur = admin.cursor()
    cur.execute(f"CREATE TABLE ro_{unique} (id INT) ENGINE=InnoDB")
    cur.execute(f"INSERT INTO ro_{unique} VALUES (1), (2)")
    cur.execute(f"CREATE SEQUENCE seq_{unique}")
    raw = pymysql.connect(autocommit=True, **mysql_kw)
    gov = governed_db.wrap(raw, environment="production", policy=READ_ONLY_AGENTS, audit=False)
    yield gov, cur, unique
    raw.close()
    cur.execute(f"DROP TABLE ro_{unique}")
    cur.execute(f"DROP SEQUENCE seq_{unique}")
    admin.close()


def test_mariadb_session_is_read_only(maria: tuple[Any, Any, str]) -> None:
    """NEXTVAL fails in MariaDB's read-only session; switching back is refused; a person writes afterwards."""
    gov, cur, u = maria
    g = gov.cursor()
    with governed_db.acting_as(READER):
        with pytest.raises(GuardrailViolation, match="read-only"):
            g.execute(f"SELECT NEXTVAL(seq_{u})")
        with pytest.raises(GuardrailViolation):
            g.execute("SET SESSION TRANSACTION READ WRITE")
        g.execute(f"SELECT count(*) FROM ro_{u}")
        assert g.fetchall()[0][0] == 2
    with governed_db.acting_as(HUMAN):
        g.execute(f"DELETE FROM ro_{u} WHERE id = 1")
    cur.execute(f"SELECT count(*) FROM ro_{u}")
    assert cur.fetchone()[0] == 1


def test_mariadb_refuses_a_read_only_identity_in_an_open_writable_transaction(
        maria: tuple[Any, Any, str]) -> None:
    """MariaDB changes only the next transaction's access mode: inside an open one the agent is refused."""
    gov, _cur, u = maria
    gov.autocommit(False)
    g = gov.cursor()
    with governed_db.acting_as(HUMAN):
        g.execute(f"SELECT count(*) FROM ro_{u}")
    with governed_db.acting_as(READER), pytest.raises(GuardrailViolation, match="commit or roll back"):
        g.execute(f"SELECT count(*) FROM ro_{u}")
    gov.rollback()
    with governed_db.acting_as(READER):
        g.execute(f"SELECT count(*) FROM ro_{u}")
        gov.autocommit(True)  # judged as SET AUTOCOMMIT = 1: allowed, and the session stays read-only
        with pytest.raises(GuardrailViolation, match="read-only"):
            g.execute(f"SELECT NEXTVAL(seq_{u})")


@pytest.mark.filterwarnings("ignore:The 'reconnect' argument is deprecated:DeprecationWarning")
def test_mariadb_reconnect_reapplies_the_session(maria: tuple[Any, Any, str]) -> None:
    """ping(reconnect=True) after the server dropped the session: the next statement is read-only again."""
    gov, cur, u = maria
    g = gov.cursor()
    with governed_db.acting_as(READER):
        g.execute("SELECT 1")
        cur.execute(f"KILL {governed_db.unwrap(gov).thread_id()}")
        gov.ping(reconnect=True)
        with pytest.raises(GuardrailViolation, match="read-only"):
            g = gov.cursor()
            g.execute(f"SELECT NEXTVAL(seq_{u})")


def test_select_db_is_judged_as_use(mysql_kw: dict[str, Any]) -> None:
    """select_db('mysql') is judged as USE `mysql`: refused where the policy refuses USE, database unchanged."""
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    gov = governed_db.wrap(raw, environment="production", policy={"rules": {"cross-database": "deny"}},
                           audit=False)  # fmt: skip
    with governed_db.acting_as(READER), pytest.raises(GuardrailViolation, match="cross-database"):
        gov.select_db("mysql")
    cur = raw.cursor()
    cur.execute("SELECT DATABASE()")
    assert cur.fetchone() == (MYSQL_DB,)
    raw.close()


# -- SQLite ------------------------------------------------------------------------------------------
def test_sqlite_query_only_follows_the_identity(tmp_path: Any) -> None:
    """PRAGMA query_only is on while the read-only agent acts, off again for a person; the agent cannot flip it."""
    raw = sqlite3.connect(tmp_path / "s.db")
    raw.execute("CREATE TABLE t (id INT)")
    raw.commit()
    gov = governed_db.wrap(raw, environment="production", policy=READ_ONLY_AGENTS, audit=False)
    with governed_db.acting_as(READER):
        gov.execute("SELECT * FROM t").fetchall()
        assert raw.execute("PRAGMA query_only").fetchone() == (1,)
        with pytest.raises(GuardrailViolation):
            gov.execute("PRAGMA query_only = OFF")
    with governed_db.acting_as(HUMAN):
        gov.execute("INSERT INTO t VALUES (1)")
        gov.commit()
    assert raw.execute("PRAGMA query_only").fetchone() == (0,)
    assert raw.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_sqlite_write_through_a_function_fails_in_the_database(tmp_path: Any) -> None:
    """A Python function registered on the connection that writes fails under query_only: recorded refusal."""
    raw = sqlite3.connect(tmp_path / "f.db", isolation_level=None)
    raw.execute("CREATE TABLE t (id INT)")
    raw.execute("INSERT INTO t VALUES (1), (2)")

    def purge() -> int:
        raw.execute("DELETE FROM t")
        return 1

    raw.create_function("purge", 0, purge)
    gov = governed_db.wrap(raw, environment="production", policy=READ_ONLY_AGENTS, audit=False)
    with governed_db.acting_as(READER), pytest.raises(Exception):  # noqa: B017 - sqlite wraps the UDF error
        gov.execute("SELECT purge()").fetchall()
    assert raw.execute("SELECT count(*) FROM t").fetchone() == (2,)


# -- policy files --------------------------------------------------------------------------------------
def test_writes_section_is_validated() -> None:
    """writes: entries are checked like the rest of a policy file: unknown keys, bad actions, bad numbers."""
    with pytest.raises(PolicyFileError) as e:
        policy_from_mapping({"writes": [{"when": {"kind": "agent"}, "max_affected_rows": -1, "over_limit": "allow",
                                         "read_olny": True}]})  # fmt: skip
    keys = {p.key for p in e.value.problems}
    assert {"writes[0].max_affected_rows", "writes[0].over_limit", "writes[0].read_olny"} <= keys


def test_writes_section_resolves_per_identity() -> None:
    """Later entries win per field; a ceiling turns the guard on; observe-only environments are never bounded."""
    policy = policy_from_mapping({"writes": [
        {"when": {"kind": "agent"}, "max_affected_rows": 500, "over_limit": "require_approval"},
        {"when": {"subject": "etl-*"}, "guard": False},
        {"when": {"role": "analyst"}, "read_only": True},
    ]})  # fmt: skip
    s = policy.settings
    agent = s.write_bounds("production", Identity("bot", kind="agent"), "postgres")
    assert (agent.guard, agent.max_affected_rows, agent.over_limit.value) == (True, 500, "require_approval")
    assert not s.write_bounds("production", Identity("etl-nightly", kind="agent"), "postgres").guard
    assert s.write_bounds("production", Identity("carol", roles=("analyst",)), "postgres").read_only
    assert not s.write_bounds("development", Identity("bot", kind="agent"), "postgres").active
    default = Policy().settings.write_bounds("production", Identity("bot", kind="agent"), "postgres")
    assert default.guard and default.max_affected_rows == 100 and not default.read_only
    assert not Policy().settings.write_bounds("production", HUMAN, "postgres").active


# -- database roles and row-level security (the docs example) ---------------------------------------------
def test_docs_rls_example_filters_rows_per_end_user(pg_dsn: str, unique: str) -> None:
    """docs/guardrails.md's RLS example runs: each end user's rows only, through a mapped database role."""
    import re
    from pathlib import Path

    import psycopg

    page = (Path(__file__).resolve().parent.parent / "docs" / "guardrails.md").read_text()
    code = re.search(r"^```py\n(.*?)^```", page, re.S | re.M)
    assert code is not None
    role, table = f"support_agent_{unique}", f"tickets_{unique}"
    text = code.group(1).replace("support_agent", role).replace("tickets", table)
    try:
        exec(compile(text, "docs/guardrails.md", "exec"), {"DSN": pg_dsn, "__name__": "docs"})
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(f"DROP TABLE IF EXISTS {table}")
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_identity_cannot_leave_its_database_role(pg_dsn: str, unique: str) -> None:
    """RESET ROLE / SET ROLE / set_config('governed_db.on_behalf_of', ...) by the mapped identity are refused."""
    import psycopg

    role = f"gdb_role_{unique}"
    admin = psycopg.connect(pg_dsn, autocommit=True)
    admin.execute(f"CREATE ROLE {role} NOLOGIN")
    try:
        policy = {"writes": [{"when": {"kind": "agent"}, "database_role": role, "session_claims": True}]}
        raw = psycopg.connect(pg_dsn, autocommit=True)
        gov = governed_db.wrap(raw, environment="production", policy=policy, audit=False)
        agent = Identity("assistant", kind="agent", on_behalf_of="alice")
        with governed_db.acting_as(agent):
            assert gov.execute("SELECT current_user, current_setting('governed_db.on_behalf_of')").fetchone() == (
                role, "alice")
            for sql in ("RESET ROLE", "SET ROLE postgres", "SET governed_db.on_behalf_of = 'bob'",
                        "SELECT set_config('governed_db.on_behalf_of', 'bob', false)"):
                with pytest.raises(GuardrailViolation):
                    gov.execute(sql)
            assert gov.execute("SELECT current_user").fetchone() == (role,)
        with governed_db.acting_as(HUMAN):
            assert gov.execute("SELECT current_user, current_setting('governed_db.subject')").fetchone() == (
                "postgres", "")
        raw.close()
    finally:
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()


def test_roles_and_claims_are_refused_off_postgres(tmp_path: Any) -> None:
    """A policy mapping identities to database roles cannot be kept on SQLite: the statement is refused."""
    gov = governed_db.wrap(sqlite3.connect(tmp_path / "r.db"), environment="production", audit=False,
                           policy={"writes": [{"when": {"kind": "agent"}, "database_role": "reader"}]})
    with governed_db.acting_as(READER), pytest.raises(GuardrailViolation, match="PostgreSQL only"):
        gov.execute("SELECT 1")
