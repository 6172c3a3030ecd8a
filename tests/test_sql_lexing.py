"""Session settings that change how the server lexes SQL: refused as statements, and checked at wrap() time."""

from __future__ import annotations

from typing import Any

import pytest

import governed_db
from governed_db.errors import ConfigurationError, GuardrailViolation
from governed_db.identity import Identity
from governed_db.policy import evaluate
from governed_db.sql._lexing import safe_encoding, safe_value, unsafe_session

AGENT = Identity("lex-bot", kind="agent")
APP = Identity("billing", kind="service")


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgres", "SET standard_conforming_strings = off"),
        ("postgres", "SET LOCAL standard_conforming_strings TO false"),
        ("postgres", "SET client_encoding = 'GBK'"),
        ("postgres", "SET client_encoding TO sjis"),
        ("postgres", "SET backslash_quote = on"),
        ("postgres", "SELECT set_config('standard_conforming_strings', 'off', false)"),
        ("postgres", "SELECT set_config('client_encoding', 'BIG5', true)"),
        ("mysql", "SET NAMES gbk"),
        ("mysql", "SET CHARACTER SET big5"),
        ("mysql", "SET character_set_client = cp932"),
        ("mysql", "SET @@session.character_set_connection = 'gbk'"),
        ("mysql", "SET sql_mode = 'ANSI_QUOTES'"),
    ],
)
def test_lexing_change_is_refused_in_production(dialect: str, sql: str) -> None:
    """A change to how the server reads later statements is denied, whoever sends it."""
    for who in (AGENT, APP):
        d = evaluate(sql, dialect=dialect, environment="production", identity=who)
        assert d.action.value == "deny" and {"lexing-settings", "settings-critical"} & set(d.rules), (sql, d.rules)


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgres", "SET client_encoding TO 'UTF8'"),
        ("postgres", "SET standard_conforming_strings = on"),
        ("mysql", "SET NAMES utf8mb4"),
        ("mysql", "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_unicode_ci'"),
        ("mysql", "SET character_set_client = latin1"),
    ],
)
def test_values_that_keep_the_reading_pass(dialect: str, sql: str) -> None:
    """Drivers and pools set UTF-8 and standard strings routinely: those pass."""
    assert evaluate(sql, dialect=dialect, environment="production", identity=AGENT).allowed


def test_search_path_is_refused_for_agents_only() -> None:
    """search_path changes are an agent's way to shadow tables; applications keep setting it."""
    for sql in ("SET search_path = evil, public", "SELECT set_config('search_path', 'evil', false)"):
        d = evaluate(sql, dialect="postgres", environment="production", identity=AGENT)
        assert d.action.value == "deny" and "search-path" in d.rules
        assert evaluate(sql, dialect="postgres", environment="production", identity=APP).allowed


def test_encoding_judgement() -> None:
    """Encodings where 0x5c can end a multi-byte character are unsafe; UTF-8 and single-byte ones are safe."""
    for bad in ("GBK", "sjis", "BIG5", "gb18030", "cp932", "UHC", "johab", "shift_jis_2004"):
        assert not safe_encoding(bad), bad
    for good in ("UTF8", "utf8mb4", "utf-8", "LATIN1", "SQL_ASCII", "EUC_JP", "WIN1252", "koi8r", "binary"):
        assert safe_encoding(good), good
    assert not safe_value("standard_conforming_strings", None)
    assert unsafe_session({"sql_mode": "STRICT_TRANS_TABLES,ANSI_QUOTES"}) == ["sql_mode=STRICT_TRANS_TABLES,ANSI_QUOTES"]
    assert unsafe_session({"sql_mode": "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION", "client_encoding": "UTF8"}) == []


@pytest.mark.postgres
def test_wrap_refuses_postgres_session_without_standard_strings(pg_dsn: str) -> None:
    """psycopg: a session with standard_conforming_strings off (or a GBK client encoding) is not governed."""
    import psycopg

    raw = psycopg.connect(pg_dsn, autocommit=True, options="-c standard_conforming_strings=off")
    try:
        with pytest.raises(ConfigurationError, match="standard_conforming_strings=off"):
            governed_db.wrap(raw, identity=AGENT)
    finally:
        raw.close()
    raw = psycopg.connect(pg_dsn, autocommit=True, client_encoding="GBK")
    try:
        with pytest.raises(ConfigurationError, match="client_encoding=GBK"):
            governed_db.wrap(raw, identity=AGENT)
    finally:
        raw.close()


@pytest.mark.postgres
def test_wrap_refuses_psycopg2_gbk_session(pg_dsn: str) -> None:
    """psycopg2: the same check, from the server's reported parameters."""
    psycopg2 = pytest.importorskip("psycopg2")
    raw = psycopg2.connect(pg_dsn + " client_encoding=SJIS")
    try:
        with pytest.raises(ConfigurationError, match="client_encoding=SJIS"):
            governed_db.wrap(raw, identity=AGENT)
    finally:
        raw.close()


@pytest.mark.postgres
def test_refused_set_leaves_the_session_unchanged(pg_conn: Any) -> None:
    """SET standard_conforming_strings = off never reaches the server: the session still reads standard strings."""
    conn = governed_db.wrap(pg_conn, identity=AGENT)
    cur = conn.cursor()
    with pytest.raises(GuardrailViolation):
        cur.execute("SET standard_conforming_strings = off")
    cur.execute("SHOW standard_conforming_strings")
    assert cur.fetchone() == ("on",)
    assert pg_conn.info.parameter_status("standard_conforming_strings") == "on"


@pytest.mark.mariadb
def test_wrap_refuses_mysql_gbk_and_ansi_quotes(mysql_kw: dict[str, Any]) -> None:
    """PyMySQL: a GBK connection or one with ANSI_QUOTES / NO_BACKSLASH_ESCAPES in sql_mode is not governed."""
    import pymysql

    for extra, needle in (({"charset": "gbk"}, "character_set_client=gbk"),
                          ({"init_command": "SET sql_mode = 'ANSI_QUOTES'"}, "ANSI_QUOTES"),
                          ({"init_command": "SET sql_mode = 'NO_BACKSLASH_ESCAPES'"}, "NO_BACKSLASH_ESCAPES")):
        raw = pymysql.connect(autocommit=True, **{**mysql_kw, **extra})
        try:
            with pytest.raises(ConfigurationError, match=needle):
                governed_db.wrap(raw, identity=AGENT)
        finally:
            raw.close()
    raw = pymysql.connect(autocommit=True, **mysql_kw)
    try:
        conn = governed_db.wrap(raw, identity=AGENT)
        cur = conn.cursor()
        with pytest.raises(GuardrailViolation):
            cur.execute("SET NAMES gbk")
        cur.execute("SELECT @@session.character_set_client")
        assert cur.fetchone()[0] != "gbk"
    finally:
        raw.close()


@pytest.mark.mariadb
def test_wrap_refuses_a_session_in_the_mysql_database(mysql_kw: dict[str, Any]) -> None:
    """A connection whose default database is mysql would read user/global_priv unqualified: not governed."""
    import pymysql

    raw = pymysql.connect(autocommit=True, **{**mysql_kw, "database": "mysql"})
    try:
        with pytest.raises(ConfigurationError, match="mysql system database"):
            governed_db.wrap(raw, identity=AGENT)
    finally:
        raw.close()


_PAYLOADS = ["\u7e67' OR 1=1 -- ", "\\' OR 1=1 -- ", "\u00bf' ; DROP TABLE x; -- ", "a\\", "'; SELECT 1; --"]


@pytest.mark.mariadb
def test_pymysql_parameters_stay_literals_under_the_connection_charset(mysql_kw: dict[str, Any]) -> None:
    """PyMySQL quotes client-side: under the charsets wrap() accepts, every payload comes back as the same text."""
    import pymysql

    for charset in ("utf8mb4", "latin1"):
        raw = pymysql.connect(autocommit=True, **{**mysql_kw, "charset": charset})
        try:
            cur = governed_db.wrap(raw, identity=AGENT).cursor()
            for payload in _PAYLOADS:
                if charset == "latin1" and not all(ord(c) < 256 for c in payload):
                    continue
                cur.execute("SELECT %s", (payload,))
                assert cur.fetchone() == (payload,)
        finally:
            raw.close()


@pytest.mark.postgres
def test_psycopg2_parameters_stay_literals(pg2_conn: Any) -> None:
    """psycopg2 quotes client-side with libpq's encoding-aware escaping: payloads come back unchanged."""
    cur = governed_db.wrap(pg2_conn, identity=AGENT).cursor()
    for payload in _PAYLOADS:
        cur.execute("SELECT %s", (payload,))
        assert cur.fetchone() == (payload,)
