"""Verify a JWT with PyJWT and turn it into a verified Identity, caching the result until it expires.

Checks, in order, each failing with a :class:`TokenError` that names the cause:
the token is a JWS compact JWT; its ``alg`` is on the allow-list (asymmetric
only: ``none`` and the HMAC family are refused, which closes algorithm
confusion — an HS256 token "signed" with the issuer's public RSA key); a key
with its ``kid`` exists (JWKS refreshed once if not) and can do that
algorithm; the signature verifies; ``iss``, ``aud``, ``exp``, ``nbf`` and
``iat`` hold within ``leeway`` seconds.

The governed hot path asks for the same token on every statement, so a
verified token is remembered — keyed by its SHA-256, never the token itself —
until its ``exp``: a repeat costs a hash and a dict lookup (a few µs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import jwt

from governed_db.errors import ConfigurationError
from governed_db.identity import Identity
from governed_db.tokens.claims import ClaimsMap, identity_from_claims
from governed_db.tokens.errors import TokenError
from governed_db.tokens.keys import (
    DEFAULT_REFRESH_COOLDOWN,
    DEFAULT_TIMEOUT,
    DEFAULT_TTL,
    KeySource,
    StaticJWKS,
    check_url,
    remote_jwks,
)

#: Asymmetric algorithms only. HS* would let anyone holding the (public) key mint tokens.
DEFAULT_ALGORITHMS: tuple[str, ...] = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)
DEFAULT_LEEWAY = 30.0
DEFAULT_CACHE_SIZE = 1024
#: a verified token is re-verified at least this often, so a key withdrawn from the JWKS stops working
#: within minutes even for long-lived tokens already seen
MAX_CACHE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """What a token proved: the identity, when the proof lapses, and the verified claims."""

    identity: Identity
    expires_at: dt.datetime | None
    claims: Mapping[str, Any]


class TokenVerifier:
    """Verifies tokens of one issuer for one audience; reusable and thread-safe.

    Give exactly one key source: ``jwks`` (dict, JSON text or file — air-gapped),
    ``jwks_url`` (fetched over HTTPS), or neither, to discover the JWKS from
    ``{issuer}/.well-known/openid-configuration``.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Sequence[str],
        jwks: Any = None,
        jwks_url: str | None = None,
        claims_map: ClaimsMap | Mapping[str, Any] | None = None,
        leeway: float = DEFAULT_LEEWAY,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        required_claims: Sequence[str] = ("exp",),
        jwks_ttl: float = DEFAULT_TTL,
        refresh_cooldown: float = DEFAULT_REFRESH_COOLDOWN,
        timeout: float = DEFAULT_TIMEOUT,
        allow_insecure_http_for_loopback: bool = False,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if not isinstance(issuer, str) or not issuer.strip():
            raise ConfigurationError("token verification needs issuer= (e.g. 'https://dev-123.okta.com/oauth2/default')")
        if isinstance(audience, str):
            audience = (audience,)
        if not audience or not all(isinstance(a, str) and a for a in audience):
            raise ConfigurationError("token verification needs audience= (the API's audience, e.g. 'api://default')")
        if jwks is not None and jwks_url is not None:
            raise ConfigurationError("give jwks= (local keys) or jwks_url= (fetched), not both")
        bad = [a for a in algorithms if a not in DEFAULT_ALGORITHMS]
        if bad or not algorithms:
            raise ConfigurationError(
                f"algorithms must be a non-empty subset of {', '.join(DEFAULT_ALGORITHMS)}; got {list(algorithms)} "
                "(symmetric HS* and 'none' are never accepted)"
            )
        try:
            if any(isinstance(x, bool) for x in (leeway, jwks_ttl, refresh_cooldown, timeout)):
                raise TypeError("a bool is not a number of seconds")
            leeway, jwks_ttl, refresh_cooldown, timeout = (
                float(leeway), float(jwks_ttl), float(refresh_cooldown), float(timeout)
            )
            if isinstance(cache_size, bool) or (isinstance(cache_size, float) and cache_size != math.floor(cache_size)):
                raise ValueError(cache_size)
            cache_size = int(cache_size)  # an infinite one is an OverflowError
        except (TypeError, ValueError, OverflowError):
            raise ConfigurationError(
                "leeway, jwks_ttl, refresh_cooldown and timeout must be numbers of seconds, cache_size an integer"
            ) from None
        if not all(math.isfinite(x) for x in (leeway, jwks_ttl, refresh_cooldown, timeout)):
            # NaN passes every comparison below, and an infinite timeout is no deadline
            raise ConfigurationError("leeway, jwks_ttl, refresh_cooldown and timeout must be finite numbers of "
                                     f"seconds, got {leeway!r}, {jwks_ttl!r}, {refresh_cooldown!r}, {timeout!r}")
        if min(leeway, jwks_ttl, refresh_cooldown, cache_size) < 0 or timeout <= 0:
            raise ConfigurationError("leeway, jwks_ttl, refresh_cooldown and cache_size must not be negative, "
                                     "timeout must be positive")
        if isinstance(required_claims, (str, bytes)) or not all(
            isinstance(c, str) and c for c in required_claims
        ):
            raise ConfigurationError(f"required_claims must be a list of claim names, got {required_claims!r}")
        if not isinstance(allow_insecure_http_for_loopback, bool):
            raise ConfigurationError(
                f"allow_insecure_http_for_loopback must be True or False, got {allow_insecure_http_for_loopback!r}"
            )
        self.issuer = issuer
        self.audience: tuple[str, ...] = tuple(audience)
        self.claims_map = ClaimsMap.from_value(claims_map)
        self.leeway = leeway
        self.algorithms = tuple(algorithms)
        self.required_claims = tuple(dict.fromkeys(("iss", "aud", *required_claims)))
        self.keys: KeySource
        if jwks is not None:
            self.keys = StaticJWKS(jwks)
        else:
            try:
                if jwks_url is None:
                    check_url(issuer, allow_insecure_http_for_loopback=allow_insecure_http_for_loopback,
                              what="issuer URL")
            except TokenError as e:
                raise ConfigurationError(f"{e}; or give jwks= with the issuer's keys") from None
            self.keys = remote_jwks(
                jwks_url=jwks_url,
                issuer=None if jwks_url is not None else issuer,
                ttl=jwks_ttl,
                refresh_cooldown=refresh_cooldown,
                timeout=timeout,
                allow_insecure_http_for_loopback=allow_insecure_http_for_loopback,
            )
        self.cache_size = cache_size
        self._cache: dict[bytes, tuple[float, VerifiedToken]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenVerifier(issuer={self.issuer!r}, audience={list(self.audience)!r}, keys={self.keys.description!r})"

    def verify(self, token: str | bytes) -> Identity:
        """The verified Identity ``token`` stands for; :class:`TokenError` naming the cause otherwise."""
        return self.inspect(token).identity

    def inspect(self, token: str | bytes) -> VerifiedToken:
        """Like :meth:`verify`, with the expiry and the verified claims (for ``governed-db whoami``)."""
        raw = _raw_token(token)
        digest = hashlib.sha256(raw).digest()
        hit = self._cache.get(digest)
        if hit is not None:
            if time.time() < hit[0]:
                return hit[1]
            self._cache.pop(digest, None)
        verified = self._verify(raw)
        if self.cache_size:
            exp = verified.claims.get("exp")
            until = time.time() + MAX_CACHE_SECONDS
            if isinstance(exp, (int, float)):
                until = min(until, float(exp))
            with self._lock:
                while len(self._cache) >= self.cache_size:
                    try:
                        self._cache.pop(next(iter(self._cache)), None)  # oldest first
                    except (RuntimeError, StopIteration):  # a reader dropped an expired entry meanwhile
                        continue
                self._cache[digest] = (until, verified)
        return verified

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- the checks ------------------------------------------------------------------------------
    def _verify(self, raw: bytes) -> VerifiedToken:
        header = _header(raw)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise TokenError("the token is unsigned (alg 'none'); only signed tokens are accepted", cause="alg_none")
        if alg not in self.algorithms:
            confusion = " (a symmetric algorithm: accepting it would enable algorithm confusion)" if alg.startswith(
                "HS") else ""
            raise TokenError(
                f"the token's algorithm {alg!r} is not allowed{confusion}; accepted: {', '.join(self.algorithms)}",
                cause="alg_not_allowed",
            )
        kid = header.get("kid")
        key = self.keys.key_for(kid if isinstance(kid, str) else None, alg)
        try:
            claims = jwt.decode(
                raw,
                key,
                algorithms=[alg],
                audience=list(self.audience),
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(self.required_claims), "verify_iat": True},
            )
        except jwt.PyJWTError as e:
            raise _explain(e, self, raw) from None
        except (ValueError, TypeError, OverflowError):  # a time claim PyJWT could not compare (inf, 1e400)
            raise TokenError("the token's time claims (exp, nbf, iat) are not valid times", cause="invalid") from None
        expires_at = _expiry(claims.get("exp"))
        identity = identity_from_claims(claims, self.claims_map, issuer=self.issuer)
        return VerifiedToken(identity, expires_at, MappingProxyType(claims))


#: 9999-12-31T23:59:59Z: the last instant a datetime can hold; a later exp is not a time but a "never"
MAX_EXP = 253_402_300_799


def _expiry(exp: Any) -> dt.datetime | None:
    """``exp`` as a datetime; an absurd value (beyond year 9999, inf, NaN) is a refused token, not a ValueError."""
    if exp is None:
        return None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not -MAX_EXP <= exp <= MAX_EXP:
        raise TokenError(
            f"the token's exp claim {str(exp)[:32]!r} is not a valid time (it must be seconds since 1970, before "
            "year 10000); the identity provider issued a malformed token",
            cause="invalid",
        )
    return dt.datetime.fromtimestamp(float(exp), tz=dt.timezone.utc)


def _raw_token(token: str | bytes) -> bytes:
    """The token as bytes, without surrounding whitespace or an HTTP ``Bearer`` prefix."""
    if isinstance(token, str):
        raw = token.encode("utf-8", "replace")
    elif isinstance(token, (bytes, bytearray, memoryview)):
        raw = bytes(token)
    else:
        raise TokenError(f"a token must be str or bytes, got {type(token).__name__}", cause="malformed")
    raw = raw.strip()
    if raw[:7].lower() == b"bearer ":
        raw = raw[7:].lstrip()
    return raw


def _header(raw: bytes) -> dict[str, Any]:
    if raw.count(b".") != 2:
        parts = raw.count(b".") + 1
        hint = " (5 parts: an encrypted JWE, which is not supported)" if parts == 5 else ""
        raise TokenError(
            f"the token is malformed: a JWT has 3 dot-separated parts, this has {parts}{hint}; "
            "pass the access or ID token itself",
            cause="malformed",
        )
    try:
        header = jwt.get_unverified_header(raw)
    except jwt.PyJWTError as e:
        raise TokenError(f"the token is malformed ({e})", cause="malformed") from None
    return dict(header)


def _claimed(raw: bytes, name: str) -> str:
    """What the (unverified, possibly hostile) token claims for ``name``, shortened, for error messages."""
    try:
        value = jwt.decode(raw, options={"verify_signature": False}).get(name)
    except Exception:  # a message helper must never fail the failure path
        return "?"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _explain(e: jwt.PyJWTError, verifier: TokenVerifier, raw: bytes) -> TokenError:
    """One PyJWT failure as a TokenError that says what happened and what to do next."""
    if isinstance(e, jwt.ExpiredSignatureError):
        return TokenError(
            f"the token has expired (leeway {verifier.leeway:g} s); get a fresh token from the identity provider",
            cause="expired",
        )
    if isinstance(e, (jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError)):
        return TokenError(
            f"the token is not valid yet ({e}); check the clocks, or raise leeway (now {verifier.leeway:g} s)",
            cause="not_yet_valid",
        )
    if isinstance(e, jwt.InvalidIssuerError):
        return TokenError(
            f"the token was issued by {_claimed(raw, 'iss')}, not the configured {verifier.issuer!r}; "
            "use a token from the configured issuer, or fix issuer=",
            cause="wrong_issuer",
        )
    if isinstance(e, jwt.InvalidAudienceError):
        return TokenError(
            f"the token is for audience {_claimed(raw, 'aud')}, not {' or '.join(map(repr, verifier.audience))}; "
            "request a token for this API, or fix audience=",
            cause="wrong_audience",
        )
    if isinstance(e, jwt.MissingRequiredClaimError):
        return TokenError(f"the token lacks the required claim {e.claim!r}", cause="missing_claim")
    if isinstance(e, jwt.InvalidSignatureError):
        return TokenError(
            "the token's signature does not verify with the issuer's key; it was altered or signed by someone else",
            cause="bad_signature",
        )
    if isinstance(e, jwt.InvalidAlgorithmError):
        return TokenError(f"the token's algorithm was refused ({e})", cause="alg_not_allowed")
    if isinstance(e, jwt.InvalidKeyError):
        return TokenError(f"the issuer's key cannot verify this token ({e})", cause="key_mismatch")
    if isinstance(e, jwt.DecodeError):
        return TokenError(f"the token is malformed ({e})", cause="malformed")
    return TokenError(f"the token is invalid ({type(e).__name__}: {e})", cause="invalid")


__all__ = ["DEFAULT_ALGORITHMS", "DEFAULT_LEEWAY", "TokenVerifier", "VerifiedToken"]
