"""A policy rule for sites where only identity-provider identities may run statements."""

from __future__ import annotations

from typing import Any

from governed_db.policy.decision import Action, RuleHit


def require_verified_identity(stmt: Any, ctx: Any) -> RuleHit | None:
    """Refuse a statement whose identity is self-declared (add it to ``Policy(rules=...)``).

    Like every rule it follows the policy's environments: observe-only
    environments (development, test) turn the refusal into a warning.
    """
    identity = ctx.identity
    if identity is not None and identity.verified:
        return None
    who = identity.subject if identity is not None else "nobody"
    return RuleHit(
        "verified-identity-required",
        Action.DENY,
        f"the identity {who!r} is self-declared; this policy requires an identity verified by the identity provider",
        "run with a token: wrap(conn, identity=<token source>, token={...}), "
        "acting_as(identity_from_token(...)) or GOVERNED_DB_TOKEN (see docs/identity.md)",
    )


__all__ = ["require_verified_identity"]
