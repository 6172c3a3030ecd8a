"""``governed-db whoami``: the identity statements would run under, its roles and where it came from.

Exit codes: 0 resolved; 1 the token was refused (the message names why);
2 bad input (no issuer/audience configured, unreadable JWKS file, ...).
The token itself is never printed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from governed_db.errors import ConfigurationError


def _read_token(value: str | None) -> str | None:
    if value is None:
        return None
    if value == "-":  # from stdin: keeps the token out of shell history and `ps`
        value = sys.stdin.read()
    value = value.strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    if not value:
        raise click.UsageError("the token is empty")
    return value


@click.command()
@click.option("--token", "token", metavar="TOKEN|-", help="A JWT to verify ('-' reads it from stdin). "
              "Default: GOVERNED_DB_IDENTITY, then GOVERNED_DB_TOKEN, then the OS user.")
@click.option("--issuer", help="Expected issuer (default: GOVERNED_DB_TOKEN_ISSUER).")
@click.option("--audience", multiple=True, help="Expected audience; repeatable (default: GOVERNED_DB_TOKEN_AUDIENCE).")
@click.option("--jwks-url", help="Fetch the JWKS here instead of discovering it from the issuer.")
@click.option("--jwks", "jwks", metavar="PATH", help="A local JWKS file (air-gapped sites).")
@click.option("--claims-map", metavar="JSON|PATH", help="Claims map as JSON, or a file holding it.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def whoami(
    token: str | None,
    issuer: str | None,
    audience: tuple[str, ...],
    jwks_url: str | None,
    jwks: str | None,
    claims_map: str | None,
    fmt: str,
) -> None:
    """Show the resolved identity, its roles and its provenance (verified or self-declared)."""
    from governed_db.tokens import TokenError, resolve

    option: dict[str, Any] = {}
    if issuer:
        option["issuer"] = issuer
    if audience:
        option["audience"] = list(audience)
    if jwks_url:
        option["jwks_url"] = jwks_url
    if jwks:
        option["jwks"] = jwks
    try:
        if claims_map:
            option["claims_map"] = _load_claims_map(claims_map)
        resolution = resolve(_read_token(token), token_option=option or None)
    except TokenError as e:
        code = 2 if e.cause == "not_configured" else 1
        _fail(f"token refused ({e.cause}): {e}", fmt, code, cause=e.cause)
    except ConfigurationError as e:
        _fail(f"bad configuration: {e}", fmt, 2, cause="configuration")
    ident = resolution.identity
    data: dict[str, Any] = {**ident.to_dict(), "provenance": ident.provenance, "source": resolution.source}
    data["expires_at"] = resolution.expires_at.isoformat() if resolution.expires_at is not None else None
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    _print_table(data)


def _load_claims_map(value: str) -> Any:
    text = value
    if not value.lstrip().startswith("{"):
        from governed_db.config_files import read_config_text

        try:
            text = read_config_text(value, "the claims map file")
        except ConfigurationError as e:
            raise ConfigurationError(f"could not read the claims map file {value!r}: {e}") from None
    from governed_db.config_files import load_json

    return load_json(text, "the claims map")


def _print_table(data: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from governed_db.cli._console import console as make_console

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("subject", data["subject"]),
        ("kind", data["kind"]),
        ("on behalf of", data["on_behalf_of"] or "-"),
        ("roles", ", ".join(data["roles"]) or "-"),
        ("provenance", data["provenance"]),
        ("issuer", data["issuer"] or "-"),
        ("token id", data["token_id"] or "-"),
        ("expires", data["expires_at"] or "-"),
        ("source", data["source"]),
    ]
    rows += [(f"  {k}", v) for k, v in sorted(data["attributes"].items())]
    for key, value in rows:
        table.add_row(key, Text(str(value)))  # Text: claim values are data, never rich markup
    make_console().print(table)


def _fail(message: str, fmt: str, code: int, *, cause: str) -> Any:
    if fmt == "json":
        click.echo(json.dumps({"error": message, "cause": cause}))
    else:
        click.echo(f"Error: {message}", err=True)
    sys.exit(code)
