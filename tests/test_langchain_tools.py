"""LangChain tools on langchain-core alone: governed, masked, refusals and typos as tool results (no LLM)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool

from governed_db import Identity, approvals
from governed_db.errors import ConfigurationError
from governed_db.integrations.langchain_tools import sql_tools

AGENT = Identity("sql-agent", kind="agent", on_behalf_of="alice")
EMAIL = "heidi.private@example.com"


@pytest.fixture
def url(tmp_path: Path) -> str:
    path = tmp_path / "lc.db"
    conn = sqlite3.connect(path)
    conn.executescript(f"""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT);
        INSERT INTO customers VALUES (1, 'Heidi', '{EMAIL}'), (2, 'Ivan', 'ivan@example.org');
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
        INSERT INTO notes VALUES (1, 'keep me');
    """)  # fmt: skip
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def _tools(url: str, **kw: Any) -> dict[str, BaseTool]:
    return {t.name: t for t in sql_tools(url, identity=AGENT, environment="production", **kw)}


def test_tools_need_only_langchain_core(url: str) -> None:
    """The module imports nothing from langchain_community; the three tools are StructuredTools with schemas."""
    import sys

    import governed_db.integrations.langchain_tools as module

    tools = _tools(url)
    assert sorted(tools) == ["describe_table", "list_tables", "run_query"]
    assert tools["run_query"].args["query"]["type"] == "string"
    assert not any(name.startswith("langchain_community") for name in vars(module))
    assert "langchain_core.tools" in sys.modules


def test_rows_are_masked_and_tables_listed(url: str) -> None:
    """run_query hands the model masked rows; list_tables and describe_table answer."""
    tools = _tools(url)
    assert tools["list_tables"].invoke({}) == ["customers", "notes"]
    assert [c["name"] for c in tools["describe_table"].invoke({"table": "customers"})] == ["id", "name", "email"]
    out = tools["run_query"].invoke({"query": "SELECT * FROM customers ORDER BY id"})
    assert [r[0] for r in out["rows"]] == [1, 2] and EMAIL not in str(out)


def test_refusal_is_the_tool_result_and_nothing_changes(url: str) -> None:
    """A refused DELETE comes back as readable text (no exception); the row is still there."""
    tools = _tools(url)
    text = tools["run_query"].invoke({"query": "DELETE FROM notes"})
    assert text.startswith("refused by rule unbounded-write") and "Next step:" in text
    path = url.removeprefix("sqlite:///")
    assert sqlite3.connect(path).execute("SELECT count(*) FROM notes").fetchone() == (1,)


def test_typo_is_a_syntax_error_not_an_approval_request(url: str) -> None:
    """`SELEC broken` is a syntax error the model can fix; no approval request is filed."""
    text = _tools(url)["run_query"].invoke({"query": "SELEC broken"})
    assert text.startswith("syntax error") and "did you mean SELECT" in text
    assert approvals.list_requests() == []


def test_database_error_is_a_tool_result(url: str) -> None:
    """A missing table is a one-line tool result, not a crash."""
    text = _tools(url)["run_query"].invoke({"query": "SELECT * FROM nope"})
    assert text.startswith("the database reported an error") and "no such table" in text


def test_curated_tools_from_a_tools_file(url: str, tmp_path: Path) -> None:
    """A tools file adds typed, parameterised tools; bad arguments are refused by the schema."""
    spec = tmp_path / "tools.yaml"
    spec.write_text(
        "sql_tools: false\n"
        "tools:\n"
        "  - name: note_by_id\n"
        "    description: One note.\n"
        "    sql: SELECT body FROM notes WHERE id = :note_id\n"
        "    parameters: {note_id: {type: integer, minimum: 1}}\n"
    )
    tools = _tools(url, tools_file=str(spec))
    assert sorted(tools) == ["note_by_id"]
    assert tools["note_by_id"].invoke({"note_id": 1})["rows"] == [["keep me"]]
    with pytest.raises(Exception, match="greater than or equal to 1"):
        tools["note_by_id"].invoke({"note_id": 0})


def test_commit_writes_false_rolls_back(url: str) -> None:
    """With commit_writes=False an allowed write is rolled back."""
    tools = _tools(url, commit_writes=False)
    out = tools["run_query"].invoke({"query": "UPDATE notes SET body = 'changed' WHERE id = 1"})
    assert out["rows_affected"] == 1
    path = url.removeprefix("sqlite:///")
    assert sqlite3.connect(path).execute("SELECT body FROM notes").fetchone() == ("keep me",)


def test_ungoverned_engine_is_refused() -> None:
    """A plain SQLAlchemy engine is a configuration error, never silently ungoverned."""
    import sqlalchemy

    with pytest.raises(ConfigurationError, match="not governed"):
        sql_tools(sqlalchemy.create_engine("sqlite://"))
