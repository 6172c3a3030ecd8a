"""``governed-db mcp``: serve governed SQL tools to MCP-capable agents over stdio."""

from __future__ import annotations

import click

from governed_db.errors import ConfigurationError


@click.command("mcp")
@click.option("--dsn", required=True, envvar="GOVERNED_DB_DSN",
              help="SQLAlchemy URL (sqlite:///app.db, postgresql+psycopg://…, mysql+pymysql://…, duckdb:///…) "
                   "or a SQLite file path.")
@click.option("--identity", "identity", default=None,
              help="Who the agent is, e.g. 'agent:claude@alice;roles=analyst' (default: GOVERNED_DB_IDENTITY, "
                   "else agent 'mcp-agent' on behalf of the OS user).")
@click.option("--token", default=None, envvar="GOVERNED_DB_MCP_TOKEN",
              help="An identity-provider token to verify instead of --identity.")
@click.option("--environment", default=None, help="Environment name (default: GOVERNED_DB_ENVIRONMENT or production).")
@click.option("--policy", default=None, help="Policy file (default: GOVERNED_DB_POLICY or the built-in policy).")
@click.option("--max-rows", default=200, show_default=True, type=click.IntRange(1, 100_000),
              help="Most rows one run_query hands to the agent.")
@click.option("--rollback-writes", is_flag=True,
              help="Roll back every run_query instead of committing (agents explore, nothing persists).")
@click.option("--check", is_flag=True, help="Build the server, list the tables once, print them and exit.")
def mcp(dsn: str, identity: str | None, token: str | None, environment: str | None, policy: str | None,
        max_rows: int, rollback_writes: bool, check: bool) -> None:
    """Serve list_tables / describe_table / run_query over the Model Context Protocol (stdio).

    Exit codes: 0 served (or --check passed); 1 the database or governance refused the check; 2 bad input.
    """
    from governed_db.integrations import mcp_server
    from governed_db.integrations.tooling import refusal_message

    try:
        tools = mcp_server.make_tools(dsn, identity=identity, token=token, environment=environment,
                                      policy=policy, max_rows=max_rows, commit=not rollback_writes)
    except ConfigurationError as e:
        raise click.UsageError(str(e)) from None
    except ModuleNotFoundError as e:
        raise click.UsageError(f"{e}; install the driver for this URL") from None
    if check:
        try:
            names = tools.list_tables()
        except Exception as e:
            click.echo(refusal_message(e) or f"error: {type(e).__name__}: {e}", err=True)
            raise SystemExit(1) from None
        finally:
            tools.engine.dispose()
        click.echo("\n".join(names) if names else "(no tables)")
        return
    try:
        mcp_server.build_server(tools).run("stdio")
    except ModuleNotFoundError as e:
        raise click.UsageError(f"{e}; install it with: pip install 'governed-db[mcp]'") from None
    finally:
        tools.engine.dispose()
