"""Identity from identity-provider tokens: verified OIDC/JWT (Okta, Azure AD/Entra ID, any OIDC issuer).

    identity = governed_db.identity_from_token(
        bearer, issuer="https://dev-123.okta.com/oauth2/default", audience="api://default"
    )
    with governed_db.acting_as(identity):
        ...

    conn = governed_db.wrap(raw, identity=get_access_token,          # a callable returning a token
                            token={"issuer": ..., "audience": ...})  # how to verify it

Verification uses PyJWT (no hand-written crypto); keys come from the issuer's
JWKS over HTTPS (cached, refreshed on key rotation) or a local JWKS. See
``docs/identity.md``.
"""

from __future__ import annotations

from governed_db.tokens.claims import DEFAULT_CLAIMS_MAP, ClaimsMap, identity_from_claims
from governed_db.tokens.config import (
    ENV_VARS,
    Resolution,
    build_verifier,
    clear_caches,
    config_from_env,
    identity_from_token,
    resolve,
    verify_configured,
)
from governed_db.tokens.errors import CAUSES, TokenError
from governed_db.tokens.keys import RemoteJWKS, StaticJWKS
from governed_db.tokens.rules import require_verified_identity
from governed_db.tokens.verifier import DEFAULT_ALGORITHMS, TokenVerifier, VerifiedToken

__all__ = [
    "CAUSES",
    "DEFAULT_ALGORITHMS",
    "DEFAULT_CLAIMS_MAP",
    "ENV_VARS",
    "ClaimsMap",
    "RemoteJWKS",
    "Resolution",
    "StaticJWKS",
    "TokenError",
    "TokenVerifier",
    "VerifiedToken",
    "build_verifier",
    "clear_caches",
    "config_from_env",
    "identity_from_claims",
    "identity_from_token",
    "require_verified_identity",
    "resolve",
    "verify_configured",
]
