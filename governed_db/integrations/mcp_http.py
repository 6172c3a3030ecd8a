"""The MCP server over streamable HTTP: every request carries a bearer token, and its subject is the identity.

    governed-db mcp --dsn postgresql+psycopg://app@db/shop --transport http --port 8000 \\
        --issuer https://dev-123.okta.com/oauth2/default --audience api://mcp

The MCP SDK's bearer middleware asks :class:`BearerVerifier` about each request's token; it verifies it with
:mod:`governed_db.tokens` (PyJWT, the issuer's keys, audience, expiry) and a request without a valid token gets
``401`` before any tool runs - no token, no access. Inside a tool call the verified identity (cached by token
digest, decision 0053) is set with :func:`governed_db.acting_as`, so every statement the call sends carries the
caller, not the server. The engine's own identity refuses: a statement outside a verified call cannot run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from governed_db.errors import ConfigurationError, GovernedDBError
from governed_db.identity import Identity

if TYPE_CHECKING:
    from mcp.server.auth.provider import AccessToken

    from governed_db.tokens import TokenVerifier


class BearerVerifier:
    """The MCP SDK's ``TokenVerifier`` protocol over a :class:`governed_db.tokens.TokenVerifier`."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier

    def identity(self, token: str) -> Identity:
        ident = self.verifier.verify(token)
        if not isinstance(ident, Identity) or not ident.verified:  # pragma: no cover - the verifier guarantees it
            raise ConfigurationError("the token did not yield a verified identity")
        return ident

    async def verify_token(self, token: str) -> AccessToken | None:
        import anyio.to_thread
        from mcp.server.auth.provider import AccessToken

        try:  # may fetch the issuer's keys: off the event loop
            ident = await anyio.to_thread.run_sync(self.identity, token)
        except GovernedDBError:
            return None  # the SDK answers 401 with WWW-Authenticate
        scopes = str(ident.attributes.get("scopes") or "").split()
        return AccessToken(token=token, client_id=str(ident.attributes.get("client_id") or ident.subject),
                           scopes=scopes, subject=ident.subject)  # fmt: skip

    def caller(self) -> Identity:
        """The verified identity of the current MCP request (raises when there is none)."""
        from mcp.server.auth.middleware.auth_context import get_access_token

        access = get_access_token()
        if access is None:
            raise ConfigurationError("no verified caller: this MCP server needs a bearer token on every request")
        return self.identity(access.token)


def refuse_outside_calls() -> Any:
    """The engine's identity source in HTTP mode: refuse anything not run inside a verified tool call."""
    raise ConfigurationError("no verified caller: statements run only inside an authenticated MCP tool call")


def auth_settings(issuer: str, url: str) -> Any:
    """The SDK's resource-server settings; our verifier checks the audience itself."""
    from mcp.server.auth.settings import AuthSettings

    return AuthSettings(issuer_url=issuer, resource_server_url=url, validate_token_resource=False)  # type: ignore[arg-type]


def http_app(server: Any, *, host: str = "127.0.0.1", path: str = "/mcp") -> Any:
    """The Starlette app serving ``server`` over streamable HTTP at ``path``."""
    return server.streamable_http_app(streamable_http_path=path, host=host)


def serve_http(server: Any, *, host: str, port: int) -> None:  # pragma: no cover - run by the CLI
    from governed_db.cli._serve import serve

    serve(http_app(server, host=host), host=host, port=port)


__all__ = ["BearerVerifier", "auth_settings", "http_app", "refuse_outside_calls", "serve_http"]
