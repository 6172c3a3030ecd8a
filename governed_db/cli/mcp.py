"""``governed-db mcp``: serve governed SQL tools to MCP-capable agents over stdio or streamable HTTP."""

from __future__ import annotations

from typing import Any

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
@click.option("--tools", "tools_file", default=None, metavar="FILE",
              help="Curated, parameterised tools from a YAML file (validated before serving).")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True,
              help="stdio for a local agent; http (streamable HTTP) for remote agents with bearer tokens.")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP: address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="HTTP: port.")
@click.option("--issuer", default=None, help="HTTP: verify bearer tokens from this issuer [env GOVERNED_DB_TOKEN_ISSUER].")
@click.option("--audience", default=None, help="HTTP: the tokens' audience [env GOVERNED_DB_TOKEN_AUDIENCE].")
@click.option("--jwks", default=None, metavar="FILE|JSON", help="HTTP: the issuer's keys, offline [env GOVERNED_DB_TOKEN_JWKS].")
@click.option("--public-url", default=None, metavar="URL",
              help="HTTP: the server's URL as clients reach it (behind a proxy), advertised in its OAuth "
                   "protected-resource metadata [default: http://HOST:PORT/mcp].")
def mcp(dsn: str, identity: str | None, token: str | None, environment: str | None, policy: str | None,
        max_rows: int, rollback_writes: bool, check: bool, tools_file: str | None, transport: str, host: str,
        port: int, issuer: str | None, audience: str | None, jwks: str | None, public_url: str | None) -> None:
    """Serve list_tables / describe_table / run_query (and curated tools) over the Model Context Protocol.

    Over HTTP every request needs a bearer token verified against --issuer/--audience; its subject is the
    identity the statements run as. Exit codes: 0 served (or --check passed); 1 the database or governance
    refused the check; 2 bad input.
    """
    from governed_db.errors import GovernedDBError
    from governed_db.integrations import mcp_server
    from governed_db.integrations.tooling import refusal_message

    http: dict[str, object] = {}
    try:
        if transport == "http":
            from governed_db.integrations import mcp_http

            if identity or token:
                raise ConfigurationError("over HTTP the identity is each request's bearer token; drop --identity/--token")
            verifier = _token_verifier(issuer, audience, jwks)
            bearer = mcp_http.BearerVerifier(verifier)
            identity_source: object = mcp_http.refuse_outside_calls
            http = {"caller": bearer.caller, "token_verifier": bearer,
                    "auth": mcp_http.auth_settings(str(verifier.issuer), public_url or f"http://{host}:{port}/mcp")}
        else:
            identity_source = identity
        tools = mcp_server.make_tools(dsn, identity=identity_source, token=token, environment=environment,
                                      policy=policy, max_rows=max_rows, commit=not rollback_writes)
    except (ConfigurationError, GovernedDBError) as e:
        raise click.UsageError(str(e)) from None
    except ModuleNotFoundError as e:
        raise click.UsageError(f"{e}; install the driver for this URL") from None
    curated = None
    if tools_file:
        from governed_db.integrations.mcp_tools import load_tools_file
        from governed_db.integrations.sqlalchemy import SQLGLOT_DIALECTS

        name = tools.engine.dialect.name
        try:
            curated = load_tools_file(tools_file, dialect=SQLGLOT_DIALECTS.get(name, name))
        except ConfigurationError as e:
            tools.engine.dispose()
            raise click.UsageError(str(e)) from None
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
        server = mcp_server.build_server(tools, curated=curated, **http)  # type: ignore[arg-type]
        if transport == "http":
            from governed_db.integrations import mcp_http

            click.echo(f"MCP over streamable HTTP at http://{host}:{port}/mcp (bearer tokens required)", err=True)
            mcp_http.serve_http(server, host=host, port=port)
        else:
            server.run("stdio")
    except ModuleNotFoundError as e:
        raise click.UsageError(f"{e}; install it with: pip install 'governed-db[mcp]'") from None
    finally:
        tools.engine.dispose()


def _token_verifier(issuer: str | None, audience: str | None, jwks: str | None) -> Any:
    """The token verifier for HTTP: options over GOVERNED_DB_TOKEN_*; without an issuer there is no access."""
    from governed_db.errors import GovernedDBError
    from governed_db.tokens import build_verifier

    option = {k: v for k, v in (("issuer", issuer), ("audience", audience), ("jwks", jwks)) if v}
    try:
        return build_verifier(option)
    except GovernedDBError as e:
        raise ConfigurationError(f"--transport http needs token verification (no token, no access): {e}") from None
