"""A tool-calling agent loop against SQLite, governed — with a scripted agent instead of an LLM.

Run:  python examples/agent_loop.py [--db PATH]

The "model" below is a fixed script that reacts to tool results the way an LLM
agent would: it explores the schema, tries a destructive shortcut, reads the
refusal ("refused by rule …: … Next step: …") and follows the next step. The
tools are governed_db's SQLTools over a governed SQLAlchemy engine — the same
three tools `governed-db mcp` serves — so every statement carries the agent's
identity, is judged in production, comes back masked and is recorded.
Deterministic and offline: no LLM, no network.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from governed_db import Identity
from governed_db.sqlalchemy import create_engine
from governed_db.tooling import SQLTools, refusal_message

AGENT = Identity("support-agent", kind="agent", on_behalf_of="alice")


def build_sample_db(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, plan TEXT);
        INSERT INTO customers VALUES
          (1, 'Ada Lovelace', 'ada@example.com', 'pro'),
          (2, 'Alan Turing', 'alan@example.com', 'free'),
          (3, 'Grace Hopper', 'grace@example.com', 'pro');
        CREATE TABLE tickets (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT, subject TEXT);
        INSERT INTO tickets VALUES
          (10, 1, 'open', 'cannot log in'), (11, 2, 'closed', 'billing'),
          (12, 3, 'open', 'export fails'), (13, 1, 'stale', 'old question');
        """
    )
    conn.commit()
    conn.close()


Call = tuple[str, dict[str, Any]]


def scripted_agent() -> Generator[Call, dict[str, Any], None]:
    """The 'model': yields tool calls; receives each result (a dict) via send()."""
    tables = yield ("list_tables", {})
    for table in tables["result"]:
        yield ("describe_table", {"table": table})
    # a careless shortcut an LLM might take to "clean up stale tickets"
    answer = yield ("run_query", {"sql": "DELETE FROM tickets"})
    if answer.get("error", "").startswith("refused by rule"):
        # it reads the next step and narrows the statement to the rows it means
        yield ("run_query", {"sql": "DELETE FROM tickets WHERE status = 'stale'"})
    yield ("run_query", {"sql": "SELECT c.name, c.email, count(t.id) AS open_tickets FROM customers c "
                                "JOIN tickets t ON t.customer_id = c.id WHERE t.status = 'open' "
                                "GROUP BY c.id ORDER BY c.id"})


def dispatch(tools: SQLTools) -> dict[str, Callable[..., Any]]:
    return {
        "list_tables": tools.list_tables,
        "describe_table": tools.describe_table,
        "run_query": lambda sql: tools.run_query(sql).to_dict(),
    }


def run(db: Path) -> list[dict[str, Any]]:
    """Run the loop; returns the transcript (one entry per tool call)."""
    engine = create_engine(f"sqlite:///{db}", identity=AGENT, environment="production")
    tools = SQLTools(engine, max_rows=50)
    handlers = dispatch(tools)
    transcript: list[dict[str, Any]] = []
    agent = scripted_agent()
    try:
        call = next(agent)
        while True:
            name, args = call
            try:
                result: dict[str, Any] = {"result": handlers[name](**args)}
            except Exception as e:  # what a tool-calling framework hands back to the model
                result = {"error": refusal_message(e) or f"{type(e).__name__}: {e}"}
            transcript.append({"tool": name, "args": args, **result})
            call = agent.send(result)
    except StopIteration:
        pass
    finally:
        engine.dispose()
    return transcript


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="SQLite file to create (default: a temporary file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "support.db"
        build_sample_db(db)
        for step in run(db):
            print(json.dumps(step))


if __name__ == "__main__":
    main()
