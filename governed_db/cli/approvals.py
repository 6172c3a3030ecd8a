"""``governed-db approvals``: the reviewer's inbox, review, revoke, and asking ahead.

Each command is a thin shell over :class:`governed_db.approvals.Approvals`.
The reviewer is who the command line says (``--as NAME [--role R]``,
``GOVERNED_DB_REVIEWER``) or who a verified token says (``--token`` /
``GOVERNED_DB_REVIEWER_TOKEN``) — never the identity of a governed
application (``GOVERNED_DB_IDENTITY`` is ignored here on purpose).

Exit codes: 0 done; 1 refused (self-approval, not a reviewer, already
decided, expired, store unreachable); 2 bad input (unknown id, bad options).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from governed_db.approvals import ApprovalConfig, ApprovalRequest, Approvals, ReviewRefused, resolve_config
from governed_db.errors import ConfigurationError, GovernanceFault, GovernedDBError
from governed_db.identity import Identity

REVIEWER_ENV = "GOVERNED_DB_REVIEWER"
REVIEWER_TOKEN_ENV = "GOVERNED_DB_REVIEWER_TOKEN"


def _set_store(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:  # after the subcommand it overrides the group's --store (so copied commands work as printed)
        ctx.meta["governed_db.approvals.store"] = value


_STORE = click.option("--store", default=None, metavar="URL|PATH", expose_value=False, callback=_set_store,
                      help="approval store (same as the group option)")
_FORMAT_OPTION = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
                       help="rich table for people, json for machines")


def _FORMAT(f: Any) -> Any:
    return _STORE(_FORMAT_OPTION(f))


def _service(ctx: click.Context, config: ApprovalConfig | None = None) -> Approvals:
    from governed_db.audit import audit_processor
    from governed_db.telemetry import tracer_for

    opts = ctx.find_root().obj if isinstance(ctx.find_root().obj, dict) else {}
    # ctx.obj lets an embedding program (or a test) hand in a tracer provider, store or clock
    store = opts.get("store") or ctx.meta.get("governed_db.approvals.store")
    tracer = tracer_for(opts.get("tracer_provider"), audit_processor(ctx.meta.get("governed_db.approvals.audit")))
    service = Approvals(config or ApprovalConfig(store=store), tracer=tracer)
    if "clock" in opts:
        service.store.clock = opts["clock"]
    return service


@contextmanager
def _outcomes() -> Iterator[None]:
    """Map library errors to messages and exit codes."""
    try:
        yield
    except ReviewRefused as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2 if e.code == "unknown" else 1)
    except GovernanceFault as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except (ConfigurationError, GovernedDBError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)


def reviewer_identity(as_: str | None, roles: tuple[str, ...], token: str | None) -> Identity:
    """The reviewer from a verified token, ``--as``/``--role``, or ``GOVERNED_DB_REVIEWER``."""
    token = token or os.environ.get(REVIEWER_TOKEN_ENV)
    if token:
        try:
            from governed_db.tokens import build_verifier
        except ImportError as e:  # pragma: no cover - the hook when token support is absent
            raise ConfigurationError("reviewer tokens need governed_db.tokens, which is not available") from e
        ident = build_verifier(None).verify(token.strip())
        if not isinstance(ident, Identity) or not ident.verified:
            raise ConfigurationError("the reviewer token did not yield a verified identity")
        return ident
    spec = as_ or os.environ.get(REVIEWER_ENV)
    if not spec:
        raise ConfigurationError(
            f"who is reviewing? pass --as NAME (with --role ROLE as needed), set {REVIEWER_ENV}, or pass a "
            f"verified identity token with --token / {REVIEWER_TOKEN_ENV}"
        )
    ident = Identity.parse(spec)
    if roles:
        ident = Identity(ident.subject, kind=ident.kind, on_behalf_of=ident.on_behalf_of,
                         roles=(*ident.roles, *roles), attributes={"source": "cli"})
    return ident


def _ts(value: float | None) -> str:
    return "-" if value is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


def _print(reqs: list[ApprovalRequest], now: float, fmt: str, *, title: str) -> None:
    if fmt == "json":
        click.echo(json.dumps([r.to_dict(now) for r in reqs], indent=2))
        return
    from rich.table import Table

    from governed_db.cli._console import console

    table = Table(title=title)
    for col in ("id", "state", "approvals"):
        table.add_column(col, no_wrap=True)  # ids must stay copyable
    for col in ("requester", "env", "statement", "rules", "expires"):
        table.add_column(col, overflow="fold")
    for r in reqs:
        who = r.requester + (f" for {r.on_behalf_of}" if r.on_behalf_of else "")
        state = r.effective_state(now)
        until = r.grant_expires_at if state == "approved" else r.expires_at
        table.add_row(r.id, state, f"{len(r.approvals)}/{r.policy.quorum}", who, r.environment,
                      r.statement[:120], ", ".join(r.rules), _ts(until))
    console().print(table)


def _show(req: ApprovalRequest, now: float, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(req.to_dict(now), indent=2))
        return
    from rich.table import Table

    from governed_db.cli._console import console as make_console

    info = Table(show_header=False, title=f"approval request {req.id}")
    info.add_column(no_wrap=True)
    info.add_column(overflow="fold")
    who = req.requester + f" ({req.requester_kind})" + (f" on behalf of {req.on_behalf_of}" if req.on_behalf_of else "")
    rows = [
        ("state", req.effective_state(now)), ("kind", req.kind), ("requester", who),
        ("environment", req.environment), ("statement", req.statement), ("fingerprint", req.fingerprint or "-"),
        ("rules", ", ".join(req.rules) or "-"), ("reason", req.reason or "-"),
        ("approvals", f"{len(req.approvals)}/{req.policy.quorum}"
         + (f" from roles {', '.join(req.policy.reviewer_roles)}" if req.policy.reviewer_roles else "")),
        ("created", _ts(req.created_at)), ("expires", _ts(req.expires_at)),
        ("grant", f"{int(req.grant_seconds)} s after approval" + (f", until {_ts(req.grant_expires_at)}"
                                                                   if req.grant_expires_at else "")),
    ]
    if req.closed_at:
        rows.append(("closed", f"{_ts(req.closed_at)} by {req.closed_by or '-'} {req.close_comment or ''}".strip()))
    for k, v in rows:
        info.add_row(k, str(v))
    console = make_console()
    console.print(info)
    if req.reviews:
        reviews = Table(title="reviews")
        for col in ("reviewer", "verdict", "roles", "verified", "comment", "at"):
            reviews.add_column(col)
        for rv in req.reviews:
            reviews.add_row(rv.reviewer, rv.verdict, ", ".join(rv.roles), "yes" if rv.verified else "no",
                            rv.comment or "", _ts(rv.at))
        console.print(reviews)


@click.group("approvals")
@click.option("--store", envvar="GOVERNED_DB_APPROVALS", default=None, metavar="URL|PATH",
              help="approval store: a SQLite path or postgresql:// URL [env GOVERNED_DB_APPROVALS; "
                   "default: the per-user SQLite file]")
@click.option("--audit", default=None, metavar="PATH", help="audit store that records the transitions "
              "(default: the audit default)")
@click.pass_context
def approvals(ctx: click.Context, store: str | None, audit: str | None) -> None:
    """Review statements that need approval: list, show, approve, deny, revoke, request."""
    ctx.meta["governed_db.approvals.store"] = store
    ctx.meta["governed_db.approvals.audit"] = audit


@approvals.command("list")
@click.option("--pending", is_flag=True, help="only requests still waiting for reviewers")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 10000))
@_FORMAT
@click.pass_context
def list_(ctx: click.Context, pending: bool, limit: int, fmt: str) -> None:
    """The newest requests (the reviewer's inbox with --pending)."""
    with _outcomes():
        svc = _service(ctx)
        reqs = svc.list(pending=pending, limit=limit)
        _print(reqs, svc.store.clock(), fmt, title="pending approval requests" if pending else "approval requests")


@approvals.command()
@click.argument("request_id")
@_FORMAT
@click.pass_context
def show(ctx: click.Context, request_id: str, fmt: str) -> None:
    """One request with its reviews."""
    with _outcomes():
        svc = _service(ctx)
        _show(svc.get(request_id), svc.store.clock(), fmt)


def _review_options(f: Any) -> Any:
    f = click.option("--comment", "-m", default=None, help="why (recorded with the verdict)")(f)
    f = click.option("--token", default=None, help=f"a verified identity token for the reviewer [env {REVIEWER_TOKEN_ENV}]")(f)
    f = click.option("--role", "roles", multiple=True, help="a role the reviewer holds (repeatable)")(f)
    f = click.option("--as", "as_", default=None, metavar="REVIEWER",
                     help=f"who reviews, e.g. dana or 'dana;roles=dba' [env {REVIEWER_ENV}]")(f)
    return _FORMAT(f)


def _verdict(ctx: click.Context, action: str, request_id: str, as_: str | None, roles: tuple[str, ...],
             token: str | None, comment: str | None, fmt: str) -> None:
    with _outcomes():
        who = reviewer_identity(as_, roles, token)
        svc = _service(ctx)
        req = getattr(svc, action)(request_id, who, comment)
        now = svc.store.clock()
        if fmt == "json":
            click.echo(json.dumps(req.to_dict(now), indent=2))
            return
        state = req.effective_state(now)
        extra = ""
        if state == "pending":
            extra = f" ({len(req.approvals)}/{req.policy.quorum} approvals; waiting for more reviewers)"
        elif state == "approved":
            extra = f"; {req.requester} can now run it (until {_ts(req.grant_expires_at)})"
        click.echo(f"request {req.id} is {state}{extra}")


@approvals.command()
@click.argument("request_id")
@_review_options
@click.pass_context
def approve(ctx: click.Context, request_id: str, as_: str | None, roles: tuple[str, ...], token: str | None,
            comment: str | None, fmt: str) -> None:
    """Approve a pending request (counts toward its quorum)."""
    _verdict(ctx, "approve", request_id, as_, roles, token, comment, fmt)


@approvals.command()
@click.argument("request_id")
@_review_options
@click.pass_context
def deny(ctx: click.Context, request_id: str, as_: str | None, roles: tuple[str, ...], token: str | None,
         comment: str | None, fmt: str) -> None:
    """Deny a pending request (final)."""
    _verdict(ctx, "deny", request_id, as_, roles, token, comment, fmt)


@approvals.command()
@click.argument("request_id")
@_review_options
@click.pass_context
def revoke(ctx: click.Context, request_id: str, as_: str | None, roles: tuple[str, ...], token: str | None,
           comment: str | None, fmt: str) -> None:
    """Withdraw a pending request or revoke an approved, unused grant."""
    _verdict(ctx, "revoke", request_id, as_, roles, token, comment, fmt)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``2h``, ``1d`` -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ConfigurationError(f"not a duration: {text!r} (use e.g. 90s, 30m, 2h, 1d)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


@approvals.command()
@click.option("--sql", default=None, help="the exact statement you will run ('-' reads stdin)")
@click.option("--params", default=None, help="its parameters as JSON (a list or an object), if any")
@click.option("--tables", default=None, help="time-bound grant: comma-separated tables it covers")
@click.option("--operations", default=None, help="time-bound grant: operations it covers, e.g. DELETE,UPDATE")
@click.option("--for", "duration", default=None, help="time-bound grant: how long once approved (30m, 2h, 1d)")
@click.option("--reason", default=None, help="why this is needed (mandatory when the policy says so)")
@click.option("--dialect", default="postgres", show_default=True)
@click.option("--environment", default=None, help="[env GOVERNED_DB_ENVIRONMENT; default production]")
@click.option("--identity", default=None, help="who will run it, e.g. 'agent:bot@alice' [env GOVERNED_DB_IDENTITY]")
@click.option("--policy", default=None, help="policy file whose approval settings apply [env GOVERNED_DB_POLICY]")
@_FORMAT
@click.pass_context
def request(ctx: click.Context, sql: str | None, params: str | None, tables: str | None, operations: str | None,
            duration: str | None, reason: str | None, dialect: str, environment: str | None,
            identity: str | None, policy: str | None, fmt: str) -> None:
    """Ask for approval before running: one statement (--sql) or a time-bound grant (--tables/--operations)."""
    from governed_db.identity import identity_from_env, os_identity
    from governed_db.policy import load_policy

    with _outcomes():
        who = Identity.parse(identity) if identity else (identity_from_env() or os_identity())
        env = (environment or os.environ.get("GOVERNED_DB_ENVIRONMENT") or "production").strip().lower()
        pol = load_policy(policy or os.environ.get("GOVERNED_DB_POLICY") or None)
        root = ctx.meta.get("governed_db.approvals.store")
        opts = ctx.find_root().obj if isinstance(ctx.find_root().obj, dict) else {}
        if sql is not None:
            if tables or operations or duration:
                raise ConfigurationError("--sql asks for one statement; --tables/--operations/--for for a window")
            text = sys.stdin.read() if sql == "-" else sql
            try:
                values = json.loads(params) if params else None
            except json.JSONDecodeError as e:
                raise ConfigurationError(f"--params is not valid JSON: {e}") from None
            from governed_db.policy import evaluate

            decision = evaluate(text, dialect=dialect, environment=env, identity=who, policy=pol)
            svc = _service(ctx, resolve_config({"store": opts.get("store") or root}, pol, decision))
            req = svc.request_statement(text, identity=who, environment=env, dialect=dialect, reason=reason,
                                        params=values, rules=decision.rules)
        elif tables or operations:
            svc = _service(ctx, resolve_config({"store": opts.get("store") or root}, pol))
            req = svc.request_window(
                identity=who, environment=env, seconds=parse_duration(duration or "1h"), reason=reason,
                operations=(operations or "").split(","), tables=(tables or "").split(","),
            )
        else:
            raise ConfigurationError("say what to approve: --sql STATEMENT, or --tables/--operations [--for 2h]")
        if fmt == "json":
            click.echo(json.dumps(req.to_dict(svc.store.clock()), indent=2))
        else:
            click.echo(f"filed approval request {req.id} ({req.kind}, {req.policy.quorum} approval(s) needed)")
            click.echo(f"a reviewer approves it with: {svc.approve_command(req.id)}")
