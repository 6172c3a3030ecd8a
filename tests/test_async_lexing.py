"""wrap() reads an async session's lexing settings without awaiting (asyncpg, aiomysql) and refuses unsafe ones."""

from __future__ import annotations

from typing import Any

import pytest

import governed_db
from governed_db import ConfigurationError
from tests.conftest import MYSQL_KW, pg_url

pytestmark = pytest.mark.anyio


async def test_asyncpg_session_with_a_backslash_hiding_encoding_is_refused(pg_dsn: str) -> None:
    """asyncpg: a UTF-8 session is governed; after SET client_encoding = 'SJIS' wrap() refuses it."""
    asyncpg = pytest.importorskip("asyncpg")
    raw = await asyncpg.connect(pg_url())
    try:
        assert await governed_db.wrap(raw, audit=False).fetchval("SELECT 1") == 1
        await raw.execute("SET client_encoding = 'SJIS'")
        with pytest.raises(ConfigurationError, match="client_encoding"):
            governed_db.wrap(raw, audit=False)
    finally:
        await raw.close()


async def test_aiomysql_session_charset_is_checked(mysql_kw: dict[str, Any]) -> None:
    """aiomysql: a utf8mb4 connection is governed; a GBK one (its handshake charset) is refused."""
    aiomysql = pytest.importorskip("aiomysql")
    kw = dict(MYSQL_KW)
    args = {"host": kw["host"], "port": kw["port"], "user": kw["user"], "password": kw["password"], "db": kw["database"]}
    ok = await aiomysql.connect(**args, charset="utf8mb4")
    gbk = await aiomysql.connect(**args, charset="gbk")
    try:
        async with governed_db.wrap(ok, audit=False).cursor() as cur:
            await cur.execute("SELECT 1")
            assert await cur.fetchall() == ((1,),)
        with pytest.raises(ConfigurationError, match="character_set"):
            governed_db.wrap(gbk, audit=False)
    finally:
        ok.close()
        gbk.close()


async def test_aiomysql_sql_mode_given_at_connect_is_checked(mysql_kw: dict[str, Any]) -> None:
    """aiomysql: sql_mode='ANSI_QUOTES' passed to connect() is seen at wrap() and refused."""
    aiomysql = pytest.importorskip("aiomysql")
    kw = dict(MYSQL_KW)
    raw = await aiomysql.connect(host=kw["host"], port=kw["port"], user=kw["user"], password=kw["password"],
                                 db=kw["database"], sql_mode="ANSI_QUOTES")
    try:
        with pytest.raises(ConfigurationError, match="sql_mode"):
            governed_db.wrap(raw, audit=False)
    finally:
        raw.close()
