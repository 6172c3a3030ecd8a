"""LangChain: a ``SQLDatabase`` whose tool errors an agent can read and act on.

    from governed_db.integrations.langchain import sql_database
    db = sql_database("sqlite:///shop.db", identity=Identity("sql-agent", kind="agent", on_behalf_of="alice"))
    toolkit = SQLDatabaseToolkit(db=db, llm=llm)

Plain ``SQLDatabase(governed_engine)`` already works: every statement the
toolkit sends is governed. This subclass adds two things:

* a refusal reaches the agent as ``"Error: refused by rule <id>: <why>.
  Next step: <what to do>."`` (or the approval request and the command a
  reviewer runs) instead of SQLAlchemy's text with the SQL echoed and a
  background link — the tool result an LLM reads is short and actionable;
* ``commit_writes=False`` runs each tool call in a transaction that is
  rolled back, because ``SQLDatabase.run`` otherwise commits whatever the
  agent wrote (it uses ``engine.begin()``).

Sample rows that ``get_table_info()`` puts into prompts are read through the
governed engine, so they come out masked like any other result.
"""

from __future__ import annotations

from typing import Any

from governed_db.errors import ConfigurationError
from governed_db.integrations.tooling import refusal_message

try:
    from langchain_community.utilities.sql_database import SQLDatabase
except ImportError as e:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "governed_db.langchain needs langchain-community: pip install 'governed-db[langchain-community]' "
        "(or use governed_db.integrations.langchain_tools, which needs only langchain-core)"
    ) from e


class GovernedSQLDatabase(SQLDatabase):  # type: ignore[misc]
    """``SQLDatabase`` with readable refusals and optional roll-back of every tool call."""

    def __init__(self, engine: Any, *args: Any, commit_writes: bool = True, **kwargs: Any) -> None:
        super().__init__(engine, *args, **kwargs)
        if not commit_writes and self._schema is not None:
            raise ConfigurationError("commit_writes=False is not supported together with schema=")
        self.commit_writes = commit_writes

    def run_no_throw(self, command: str, *args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return self.run(command, *args, **kwargs)
        except SQLAlchemyError as e:
            # same shape as LangChain's own "Error: ..." (never re-run the statement to get it)
            return f"Error: {refusal_message(e) or e}"

    def _execute(self, command: Any, fetch: Any = "all", *, parameters: Any = None,
                 execution_options: Any = None) -> Any:
        if self.commit_writes:
            return super()._execute(command, fetch, parameters=parameters, execution_options=execution_options)
        from sqlalchemy import text

        statement = text(command) if isinstance(command, str) else command
        with self._engine.connect() as connection:
            try:
                result = connection.execute(statement, parameters or {}, execution_options=execution_options or {})
                if not result.returns_rows:
                    return []
                if fetch == "cursor":
                    return result.freeze()()  # buffered: the transaction ends below
                if fetch == "one":
                    first = result.fetchone()
                    return [] if first is None else [first._asdict()]
                return [row._asdict() for row in result.fetchall()]
            finally:
                connection.rollback()  # the agent's writes never persist


def sql_database(
    engine_or_url: Any,
    *,
    identity: Any = None,
    environment: str | None = None,
    policy: Any = None,
    commit_writes: bool = True,
    sample_rows_in_table_info: int = 3,
    engine_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> GovernedSQLDatabase:
    """A :class:`GovernedSQLDatabase` over a governed engine (built from a URL, or one you pass).

    ``kwargs`` go to ``SQLDatabase`` (``include_tables``, ``max_string_length``...);
    ``engine_kwargs`` to :func:`governed_db.sqlalchemy.create_engine`.
    """
    from governed_db.integrations.sqlalchemy import create_engine, is_governed

    if isinstance(engine_or_url, str):
        engine = create_engine(engine_or_url, identity=identity, environment=environment, policy=policy,
                               **(engine_kwargs or {}))
    else:
        engine = engine_or_url
        if not is_governed(engine):
            raise ConfigurationError(
                "this engine is not governed; build it with governed_db.sqlalchemy.create_engine() "
                "or pass the URL"
            )
    return GovernedSQLDatabase(engine, commit_writes=commit_writes,
                               sample_rows_in_table_info=sample_rows_in_table_info, **kwargs)


__all__ = ["GovernedSQLDatabase", "sql_database"]
