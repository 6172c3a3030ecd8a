"""The one error token verification raises, with a machine-readable cause."""

from __future__ import annotations

from governed_db.errors import GovernedDBError

#: Every value :attr:`TokenError.cause` can take, with what it means.
CAUSES: dict[str, str] = {
    "not_configured": "a token was supplied but no issuer/audience/keys are configured to verify it",
    "malformed": "the token is not a well-formed JWS compact JWT",
    "alg_none": "the token is unsigned (alg 'none')",
    "alg_not_allowed": "the token's algorithm is not on the allow-list (e.g. HS256: algorithm confusion)",
    "bad_signature": "the signature does not verify with the issuer's key",
    "unknown_kid": "no key with the token's key id, even after refreshing the JWKS",
    "key_mismatch": "the key named by the token cannot verify the token's algorithm",
    "expired": "the token's exp is in the past",
    "not_yet_valid": "the token's nbf or iat is in the future",
    "wrong_issuer": "the token's iss is not the configured issuer",
    "wrong_audience": "the token's aud does not include the configured audience",
    "missing_claim": "a required claim is missing",
    "no_subject": "no claim names who the token is for",
    "jwks_unreachable": "the JWKS (or the issuer metadata) could not be fetched or read",
    "insecure_url": "a JWKS or issuer URL is not https",
    "invalid": "the token failed another validation",
}


class TokenError(GovernedDBError):
    """A token could not be verified; the message names the cause and what to do next.

    ``cause`` is one of :data:`CAUSES` (e.g. ``"expired"``, ``"bad_signature"``),
    for code that reacts to specific failures. The token itself is never part
    of the message.
    """

    def __init__(self, message: str, *, cause: str = "invalid") -> None:
        super().__init__(message)
        self.cause = cause if cause in CAUSES else "invalid"


__all__ = ["CAUSES", "TokenError"]
