"""wrap / unwrap / govern_module: the one-line ways in, and their bad-input errors."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import governed_db
from governed_db import ConfigurationError, GuardrailViolation, Identity


def test_wrap_keeps_the_connection_type_and_unwrap_returns_it() -> None:
    """A governed connection still is a sqlite3.Connection; unwrap() gives back the exact object."""
    raw = sqlite3.connect(":memory:")
    conn = governed_db.wrap(raw, audit=False)
    assert isinstance(conn, sqlite3.Connection)
    assert governed_db.unwrap(conn) is raw


def test_refused_statement_never_reaches_the_database(tmp_path: Any) -> None:
    """DROP TABLE is refused in production before execution: the table is still there."""
    path = tmp_path / "app.db"
    conn = governed_db.wrap(sqlite3.connect(path), audit=False)
    conn.execute("CREATE TABLE keep_me (id INTEGER)")
    with pytest.raises(GuardrailViolation) as info:
        conn.execute("DROP TABLE keep_me")
    assert isinstance(info.value, sqlite3.DatabaseError)
    assert "DROP" in str(info.value) and info.value.decision is not None
    check = sqlite3.connect(path)
    assert check.execute("SELECT name FROM sqlite_master WHERE name='keep_me'").fetchone() == ("keep_me",)


def test_development_environment_observes_instead_of_refusing(caplog: pytest.LogCaptureFixture) -> None:
    """In development a would-be refusal runs, and is logged as a warning."""
    conn = governed_db.wrap(sqlite3.connect(":memory:"), environment="development", audit=False)
    conn.execute("CREATE TABLE t (id INTEGER)")
    with caplog.at_level("WARNING", logger="governed_db"):
        conn.execute("DROP TABLE t")
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name='t'").fetchone() == (0,)
    assert any("governed_db warning" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (None, "DB-API 2.0 connection"),
        (object(), "DB-API 2.0 connection"),
        ("sqlite:///x.db", "DB-API 2.0 connection"),
    ],
)
def test_wrap_rejects_what_is_not_a_connection(target: Any, message: str) -> None:
    """Passing something that is not a connection says so and what to pass instead."""
    with pytest.raises(ConfigurationError, match=message):
        governed_db.wrap(target)


def test_wrap_rejects_closed_and_already_governed_connections() -> None:
    """A closed connection, or wrapping twice, are clear errors."""
    raw = sqlite3.connect(":memory:")
    conn = governed_db.wrap(raw, audit=False)
    with pytest.raises(ConfigurationError, match="already governed"):
        governed_db.wrap(conn)
    raw.close()
    with pytest.raises(ConfigurationError, match="closed"):
        governed_db.wrap(raw)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"colour": "blue"}, "unknown option"),
        ({"on_fault": "ignore"}, "on_fault"),
        ({"environment": "   "}, "environment"),
        ({"identity": "alice"}, "identity must be"),
        ({"policy": "/nonexistent/policy.yaml"}, "does not exist"),
    ],
)
def test_wrap_rejects_bad_configuration(kwargs: dict[str, Any], message: str) -> None:
    """Bad options are refused at wrap time with a message naming the problem."""
    with pytest.raises(ConfigurationError, match=message):
        governed_db.wrap(sqlite3.connect(":memory:"), **kwargs)


def test_unwrap_rejects_raw_connections() -> None:
    """unwrap() of something that is not governed is an error, not a silent no-op."""
    with pytest.raises(ConfigurationError, match="governed connection"):
        governed_db.unwrap(sqlite3.connect(":memory:"))


def test_unknown_driver_needs_a_dialect() -> None:
    """A connection from a driver governed_db doesn't know must name its dialect."""

    class Conn:
        def cursor(self) -> Any:
            return sqlite3.connect(":memory:").cursor()

    with pytest.raises(ConfigurationError, match="dialect="):
        governed_db.wrap(Conn(), audit=False)


def test_govern_module_is_a_drop_in_for_sqlite3(tmp_path: Any) -> None:
    """govern_module(sqlite3) exposes the driver's DB-API names and connect() returns governed connections."""
    gsqlite3 = governed_db.govern_module(sqlite3, audit=False)
    assert gsqlite3.apilevel == "2.0" and gsqlite3.paramstyle == sqlite3.paramstyle
    assert gsqlite3.threadsafety == sqlite3.threadsafety
    assert gsqlite3.DatabaseError is sqlite3.DatabaseError and gsqlite3.Binary is sqlite3.Binary
    assert gsqlite3.Row is sqlite3.Row
    conn = gsqlite3.connect(str(tmp_path / "m.db"))
    assert isinstance(conn, sqlite3.Connection)
    conn.execute("CREATE TABLE t (id INTEGER)")
    with pytest.raises(gsqlite3.DatabaseError):
        conn.execute("DROP TABLE t")


def test_govern_module_rejects_non_modules_and_bad_options() -> None:
    """govern_module validates its arguments immediately."""
    with pytest.raises(ConfigurationError, match=r"DB-API 2\.0 driver module"):
        governed_db.govern_module(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="unknown option"):
        governed_db.govern_module(sqlite3, bogus=True)


def test_govern_module_calls_connect_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Instrumentation that patches module.connect after govern_module() still applies."""
    gsqlite3 = governed_db.govern_module(sqlite3, audit=False)
    calls: list[tuple[Any, ...]] = []
    real = sqlite3.connect

    def patched(*a: Any, **k: Any) -> Any:
        calls.append(a)
        return real(*a, **k)

    monkeypatch.setattr(sqlite3, "connect", patched)
    gsqlite3.connect(":memory:")
    assert calls == [(":memory:",)]


def test_environment_variables_configure_a_plain_wrap(monkeypatch: pytest.MonkeyPatch, spans: Any) -> None:
    """GOVERNED_DB_IDENTITY and GOVERNED_DB_ENVIRONMENT apply to a wrap() with no arguments."""
    provider, exporter = spans
    monkeypatch.setenv("GOVERNED_DB_IDENTITY", "agent:nightly-report@carol")
    monkeypatch.setenv("GOVERNED_DB_ENVIRONMENT", "Staging")
    conn = governed_db.wrap(sqlite3.connect(":memory:"), tracer_provider=provider, audit=False)
    conn.execute("SELECT 1").fetchall()
    (span,) = [s for s in exporter.get_finished_spans() if s.name != "governed_db.result"]
    assert span.attributes["governed_db.identity.subject"] == "nightly-report"
    assert span.attributes["governed_db.identity.kind"] == "agent"
    assert span.attributes["governed_db.identity.on_behalf_of"] == "carol"
    assert span.attributes["governed_db.environment"] == "staging"


def test_explicit_arguments_beat_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """wrap(environment=...) and identity= win over the environment variables."""
    monkeypatch.setenv("GOVERNED_DB_ENVIRONMENT", "development")
    monkeypatch.setenv("GOVERNED_DB_IDENTITY", "agent:x")
    conn = governed_db.wrap(
        sqlite3.connect(":memory:"), environment="production", identity=Identity("alice"), audit=False
    )
    assert conn.governor.environment == "production"
    assert conn.governor.resolve_identity() == Identity("alice")


def test_evaluate_is_pure_and_needs_a_dialect() -> None:
    """evaluate() decides without a connection, and asks for the dialect when missing."""
    d = governed_db.evaluate("DROP TABLE users", dialect="postgres")
    assert d.action == "deny" and d.rules
    assert governed_db.evaluate("SELECT 1", dialect="postgres").action == "allow"
    with pytest.raises(ConfigurationError, match="dialect"):
        governed_db.evaluate("SELECT 1", dialect="")


def test_govern_module_connection_classes_give_governed_connections(tmp_path: Any) -> None:
    """govern_module(m).Connection(...) / .Connect(...) / .Connection.connect(...) are governed like connect()."""
    import sqlite3

    mod = governed_db.govern_module(sqlite3, identity=governed_db.Identity("bot", kind="agent"))
    conn = mod.Connection(str(tmp_path / "m.db"))
    assert isinstance(conn, mod.Connection) and isinstance(conn, sqlite3.Connection)
    with pytest.raises(governed_db.GuardrailViolation):
        conn.execute("PRAGMA foreign_keys = OFF")
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (0,)  # a read, allowed


@pytest.mark.mariadb
def test_govern_module_pymysql_aliases(mysql_kw: dict[str, Any]) -> None:
    """PyMySQL's Connect and Connection aliases of connect() return governed connections."""
    import pymysql

    mod = governed_db.govern_module(pymysql, identity=governed_db.Identity("bot", kind="agent"))
    for factory in (mod.Connect, mod.Connection):
        conn = factory(**mysql_kw)
        try:
            with pytest.raises(governed_db.GuardrailViolation):
                conn.cursor().execute("USE mysql")
            with pytest.raises(governed_db.GuardrailViolation):
                conn.select_db("mysql")
        finally:
            conn.close()


@pytest.mark.postgres
def test_govern_module_psycopg_connection_connect(pg_dsn: str) -> None:
    """psycopg.Connection.connect(...) through the governed module returns a governed connection."""
    import psycopg

    mod = governed_db.govern_module(psycopg, identity=governed_db.Identity("bot", kind="agent"))
    conn = mod.Connection.connect(pg_dsn, autocommit=True)
    try:
        assert isinstance(conn, psycopg.Connection)
        with pytest.raises(governed_db.GuardrailViolation):
            conn.execute("SET standard_conforming_strings = off")
    finally:
        conn.close()
