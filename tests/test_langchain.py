"""LangChain's SQLDatabase and QuerySQLDatabaseTool over a governed engine (no LLM involved)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_community")

from langchain_community.tools.sql_database.tool import (
    InfoSQLDatabaseTool,
    ListSQLDatabaseTool,
    QuerySQLDatabaseTool,
)
from langchain_community.utilities import SQLDatabase

from governed_db import Identity
from governed_db.errors import ConfigurationError
from governed_db.integrations.langchain import GovernedSQLDatabase, sql_database
from governed_db.integrations.sqlalchemy import create_engine

AGENT = Identity("sql-agent", kind="agent", on_behalf_of="alice")
EMAIL = "heidi.private@example.com"


@pytest.fixture
def url(tmp_path: Path) -> str:
    path = tmp_path / "lc.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        f"""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT);
        INSERT INTO customers VALUES (1, 'Heidi', '{EMAIL}'), (2, 'Ivan', 'ivan@example.org');
        """
    )
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def _db(url: str, **kw: Any) -> GovernedSQLDatabase:
    return sql_database(url, identity=AGENT, environment="production", **kw)


def test_tool_call_gets_a_readable_refusal(url: str) -> None:
    """QuerySQLDatabaseTool returns 'Error: refused by rule …: … Next step: …', no SQL echo or trace."""
    tool = QuerySQLDatabaseTool(db=_db(url))
    answer = tool.invoke({"query": "DROP TABLE customers"})
    assert answer.startswith("Error: refused by rule drop:")
    assert "Next step:" in answer
    assert "[SQL:" not in answer and "Traceback" not in answer and "sqlalche.me" not in answer
    assert tool.invoke({"query": "SELECT id FROM customers ORDER BY id"}) == "[(1,), (2,)]"  # the table survived


def test_plain_sqldatabase_over_governed_engine_is_governed_too(url: str) -> None:
    """Even the stock SQLDatabase class refuses through a governed engine (message less tidy)."""
    db = SQLDatabase(create_engine(url, identity=AGENT, environment="production"))
    answer = QuerySQLDatabaseTool(db=db).invoke({"query": "DROP TABLE customers"})
    assert answer.startswith("Error:") and "drop" in answer


def test_other_database_errors_keep_langchain_format(url: str) -> None:
    """A non-governance error is returned the way LangChain always does."""
    answer = QuerySQLDatabaseTool(db=_db(url)).invoke({"query": "SELECT * FROM missing_table"})
    assert answer.startswith("Error:") and "no such table" in answer


def test_writes_commit_by_default_and_roll_back_on_request(url: str) -> None:
    """SQLDatabase commits an agent's INSERT; commit_writes=False rolls every tool call back."""
    dry = _db(url, commit_writes=False)
    QuerySQLDatabaseTool(db=dry).invoke({"query": "INSERT INTO customers (name) VALUES ('Mallory')"})
    assert dry.run("SELECT count(*) FROM customers") == "[(2,)]"
    wet = _db(url)
    QuerySQLDatabaseTool(db=wet).invoke({"query": "INSERT INTO customers (name) VALUES ('Mallory')"})
    assert wet.run("SELECT count(*) FROM customers") == "[(3,)]"


def test_list_and_info_tools_work(url: str) -> None:
    """The toolkit's catalogue tools run through governance without refusals."""
    db = _db(url)
    assert ListSQLDatabaseTool(db=db).invoke("") == "customers"
    info = InfoSQLDatabaseTool(db=db).invoke({"table_names": "customers"})
    assert "CREATE TABLE customers" in info and "3 rows from customers table" in info


def test_sample_rows_in_prompt_are_masked(url: str) -> None:
    """The sample rows get_table_info() puts into an LLM prompt come out masked."""
    assert EMAIL not in _db(url).get_table_info()


def test_ungoverned_engine_is_rejected() -> None:
    """sql_database() refuses an ungoverned engine rather than silently running ungoverned."""
    import sqlalchemy

    with pytest.raises(ConfigurationError, match="not governed"):
        sql_database(sqlalchemy.create_engine("sqlite://"))
