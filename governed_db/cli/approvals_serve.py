"""``governed-db approvals serve``: the reviewer's inbox as a web page (and Slack's buttons), on uvicorn.

Reviewers are verified bearer tokens (``--issuer``/``--audience``/``--jwks``, or the ``GOVERNED_DB_TOKEN_*``
settings) and/or one configured reviewer (``--as``), who is only allowed on a loopback address: on a network
address, everyone who can reach the port would be that reviewer. The Slack signing secret is read from
``GOVERNED_DB_SLACK_SIGNING_SECRET`` (never a command-line argument, which other users can see).

Exit codes: 0 stopped cleanly; 2 bad options (nothing to verify reviewers with, a remote bind with ``--as``).
"""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Any

import click

from governed_db.errors import ConfigurationError, GovernedDBError

SLACK_SECRET_ENV = "GOVERNED_DB_SLACK_SIGNING_SECRET"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_auth(*, as_: str | None, roles: tuple[str, ...], host: str, issuer: str | None, audience: str | None,
               jwks: str | None, slack_reviewers: tuple[str, ...]) -> Any:
    """The :class:`~governed_db.approvals.web.ReviewerAuth` the options describe (ConfigurationError if unsafe)."""
    from governed_db.approvals.web import ReviewerAuth
    from governed_db.cli.approvals import reviewer_identity
    from governed_db.identity import Identity
    from governed_db.tokens import build_verifier, config_from_env

    reviewer = reviewer_identity(as_, roles, None) if as_ else None
    if reviewer is not None and not _loopback(host):
        raise ConfigurationError(
            f"--as makes every visitor the reviewer {reviewer.subject}; bind it to 127.0.0.1, or verify "
            "reviewers' tokens instead (--issuer/--audience or GOVERNED_DB_TOKEN_*)"
        )
    option = {k: v for k, v in (("issuer", issuer), ("audience", audience), ("jwks", jwks)) if v}
    env = config_from_env()
    verifier = build_verifier(option) if option or (env.get("issuer") and env.get("audience")) else None
    mapped: dict[str, Identity] = {}
    for spec in slack_reviewers:
        user, sep, who = spec.partition("=")
        if not sep or not user.strip() or not who.strip():
            raise ConfigurationError(f"--slack-reviewer takes SLACK_USER_ID=REVIEWER (e.g. U024BE7LH=dana), got {spec!r}")
        ident = Identity.parse(who.strip())
        mapped[user.strip()] = Identity(ident.subject, kind=ident.kind, roles=ident.roles,
                                        attributes={"source": "slack", "slack_user": user.strip()})  # fmt: skip
    secret = os.environ.get(SLACK_SECRET_ENV) or None
    if mapped and not secret:
        raise ConfigurationError(f"--slack-reviewer needs the Slack app's signing secret in {SLACK_SECRET_ENV}")
    return ReviewerAuth(verifier=verifier, reviewer=reviewer, slack_reviewers=mapped, slack_signing_secret=secret)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--as", "as_", default=None, metavar="REVIEWER",
              help="one configured reviewer for every visitor (loopback only), e.g. 'dana;roles=dba'")
@click.option("--role", "roles", multiple=True, help="a role the --as reviewer holds (repeatable)")
@click.option("--issuer", default=None, help="verify reviewers' tokens from this issuer [env GOVERNED_DB_TOKEN_ISSUER]")
@click.option("--audience", default=None, help="the tokens' audience [env GOVERNED_DB_TOKEN_AUDIENCE]")
@click.option("--jwks", default=None, metavar="FILE|JSON", help="the issuer's keys, offline [env GOVERNED_DB_TOKEN_JWKS]")
@click.option("--slack-reviewer", "slack_reviewers", multiple=True, metavar="USER_ID=REVIEWER",
              help=f"a Slack user who may click approve/deny (repeatable; needs {SLACK_SECRET_ENV})")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, as_: str | None, roles: tuple[str, ...], issuer: str | None,
          audience: str | None, jwks: str | None, slack_reviewers: tuple[str, ...]) -> None:
    """Serve the pending requests as a web page where reviewers approve or deny (and Slack's buttons)."""
    from governed_db.cli.approvals import _service

    try:
        auth = build_auth(as_=as_, roles=roles, host=host, issuer=issuer, audience=audience, jwks=jwks,
                          slack_reviewers=slack_reviewers)  # fmt: skip
        service = _service(ctx)
        from governed_db.approvals.web import create_app
    except ImportError as e:
        click.echo(f"error: the web app needs its extra: pip install 'governed-db[approvals-web]' ({e})", err=True)
        sys.exit(2)
    except GovernedDBError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    from governed_db.cli._serve import listen, serve

    listen(host, port).close()  # an address that cannot be bound is reported before the banner
    click.echo(f"reviewers: open http://{host}:{port}/ (Ctrl-C stops)", err=True)
    serve(create_app(service, auth), host=host, port=port)
