"""Every bad token and unreachable key source is a TokenError naming its cause — never an identity."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_tokens_idp import FakeIdP, idp_fixture, okta_user, rsa_key  # noqa: F401

from governed_db.tokens import TokenError, TokenVerifier


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(idp: FakeIdP, alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "kid": idp.kid, "typ": "JWT"}).encode())
    now = int(time.time())
    payload = _b64(json.dumps({**okta_user(), "iss": idp.issuer, "aud": "api://default", "exp": now + 300}).encode())
    return f"{header}.{payload}."


def _hs256_with_public_key(idp: FakeIdP) -> str:
    """The classic algorithm-confusion forgery: HMAC keyed with the issuer's public RSA key (PEM)."""
    pem = rsa_key(0).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "kid": idp.kid, "typ": "JWT"}).encode())
    now = int(time.time())
    payload = _b64(json.dumps({**okta_user(), "iss": idp.issuer, "aud": "api://default", "exp": now + 300}).encode())
    sig = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(sig)}"


def _other_key_same_kid(idp: FakeIdP) -> str:
    now = int(time.time())
    payload = {**okta_user(), "iss": idp.issuer, "aud": "api://default", "exp": now + 300}
    return jwt.encode(payload, rsa_key(7), algorithm="RS256", headers={"kid": idp.kid})


def _tampered(idp: FakeIdP) -> str:
    header, payload, sig = idp.token(okta_user()).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["groups"] = ["Admins"]  # privilege escalation attempt
    return f"{header}.{_b64(json.dumps(claims).encode())}.{sig}"


def _es256_naming_rsa_kid(idp: FakeIdP) -> str:
    now = int(time.time())
    payload = {**okta_user(), "iss": idp.issuer, "aud": "api://default", "exp": now + 300}
    return jwt.encode(payload, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": idp.kid})


CASES: list[tuple[str, Callable[[FakeIdP], str], str, str]] = [
    ("expired", lambda i: i.token(okta_user(), exp_in=-120), "expired", "fresh token"),
    ("not yet valid (nbf)", lambda i: i.token(okta_user(nbf=int(time.time()) + 600)), "not_yet_valid", "not valid yet"),
    ("issued in the future", lambda i: i.token(okta_user(iat=int(time.time()) + 600)), "not_yet_valid", "clocks"),
    ("wrong issuer", lambda i: i.token(okta_user(iss="https://evil.example.com")), "wrong_issuer", "issued by 'https://evil.example.com', not"),
    ("wrong audience", lambda i: i.token(okta_user(aud="api://other")), "wrong_audience", "for audience 'api://other'"),
    ("no audience", lambda i: i.token(okta_user(), drop=("aud",)), "missing_claim", "'aud'"),
    ("no exp", lambda i: i.token(okta_user(), drop=("exp",)), "missing_claim", "'exp'"),
    ("signed by another key", _other_key_same_kid, "bad_signature", "signature"),
    ("payload tampered", _tampered, "bad_signature", "altered"),
    ("alg none", _unsigned, "alg_none", "unsigned"),
    ("alg None", lambda i: _unsigned(i, "None"), "alg_none", "unsigned"),
    ("HS256 with the RSA public key", _hs256_with_public_key, "alg_not_allowed", "algorithm confusion"),
    ("ES256 naming an RSA key", _es256_naming_rsa_kid, "key_mismatch", "cannot verify"),
    ("unknown kid", lambda i: i.token(okta_user(), kid=i.add_key("rsa", publish=False, index=3)), "unknown_kid",
     "even after refreshing"),
    ("no subject claims", lambda i: i.token({"jti": "x"}), "no_subject", "subject_claims"),
    ("one part", lambda i: "not-a-token", "malformed", "3 dot-separated parts"),
    ("two parts", lambda i: "abc.def", "malformed", "3 dot-separated parts"),
    ("encrypted JWE", lambda i: "a.b.c.d.e", "malformed", "JWE"),
    ("garbage header", lambda i: "!!!.e30.c2ln", "malformed", "malformed"),
    ("empty", lambda i: "", "malformed", "3 dot-separated parts"),
    ("garbage payload", lambda i: i.token(okta_user()).split(".")[0] + ".%%%." + "c2ln", "malformed", "malformed"),
]


@pytest.mark.parametrize(("name", "make", "cause", "says"), CASES, ids=[c[0] for c in CASES])
def test_bad_token_is_refused_naming_the_cause(
    idp: FakeIdP, name: str, make: Callable[[FakeIdP], str], cause: str, says: str
) -> None:
    """Each bad token fails with its own cause and a message that names it, never echoing the token."""
    v = TokenVerifier(issuer=idp.issuer, audience="api://default", allow_insecure_http_for_loopback=True)
    v.verify(idp.token(okta_user()))  # keys loaded: failures below are about the token, not the fetch
    token = make(idp)
    with pytest.raises(TokenError) as info:
        v.verify(token)
    assert info.value.cause == cause
    assert says in str(info.value)
    for part in filter(lambda p: len(p) > 8, token.split(".")):
        assert part not in str(info.value)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_unreachable_jwks_is_refused_and_not_retried_within_the_cooldown(idp: FakeIdP) -> None:
    """No JWKS server: jwks_unreachable naming the URL; repeated statements do not hammer the network."""
    url = f"http://127.0.0.1:{_closed_port()}/keys"
    v = TokenVerifier(issuer=idp.issuer, audience="api://default", jwks_url=url, allow_insecure_http_for_loopback=True)
    for _ in range(3):
        with pytest.raises(TokenError, match="could not fetch") as info:
            v.verify(idp.token(okta_user()))
        assert info.value.cause == "jwks_unreachable" and url in str(info.value)
    assert v.keys.fetches == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        (lambda i: setattr(i, "status", 500), "HTTP 500"),
        (lambda i: setattr(i, "metadata_issuer", "https://impostor.example.com"), "names issuer"),
    ],
)
def test_broken_issuer_endpoints(idp: FakeIdP, setup: Callable[[FakeIdP], None], says: str) -> None:
    """An erroring JWKS endpoint or metadata naming another issuer is jwks_unreachable, saying which."""
    setup(idp)
    v = TokenVerifier(issuer=idp.issuer, audience="api://default", allow_insecure_http_for_loopback=True)
    with pytest.raises(TokenError, match=says) as info:
        v.verify(idp.token(okta_user()))
    assert info.value.cause == "jwks_unreachable"


def test_stale_keys_are_kept_when_a_refresh_fails(idp: FakeIdP) -> None:
    """When the JWKS cannot be refreshed after its TTL, the cached keys keep verifying (IdP outage)."""
    v = TokenVerifier(issuer=idp.issuer, audience="api://default", jwks_url=idp.jwks_url, jwks_ttl=0,
                      refresh_cooldown=0, allow_insecure_http_for_loopback=True)
    v.verify(idp.token(okta_user()))
    idp.status = 503
    assert v.verify(idp.token(okta_user(jti="during-outage"))).token_id == "during-outage"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_arbitrary_input_is_a_token_error(idp: FakeIdP, junk: Any) -> None:
    """Whatever the input, verification fails with a TokenError — never another exception, never an identity."""
    v = TokenVerifier(issuer=idp.issuer, audience="api://default", jwks=idp.jwks())
    with pytest.raises(TokenError):
        v.verify(junk)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_single_character_change_is_caught(idp: FakeIdP, data: st.DataObject) -> None:
    """Changing any one character of a valid token is refused (or, for base64 padding bits, harmless)."""
    v = TokenVerifier(issuer=idp.issuer, audience="api://default", jwks=idp.jwks(), cache_size=0)
    token = idp.token(okta_user(), exp_in=3600)
    original = v.verify(token)
    pos = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from("ABCxyz019-_.="))
    mutated = token[:pos] + char + token[pos + 1:]
    try:
        got: Any = v.verify(mutated)
    except TokenError:
        return
    assert got == original


def test_alg_allow_list_can_be_narrowed(idp: FakeIdP) -> None:
    """With algorithms=['ES256'] an RS256 token is refused as alg_not_allowed."""
    v = TokenVerifier(issuer=idp.issuer, audience="api://default", jwks=idp.jwks(), algorithms=["ES256"])
    with pytest.raises(TokenError, match="not allowed") as info:
        v.verify(idp.token(okta_user()))
    assert info.value.cause == "alg_not_allowed"


@pytest.mark.parametrize("exp", [10**12, -(10**12), float("inf"), float("nan"), 1e300])
def test_absurd_exp_is_a_refused_token_not_a_crash(idp: FakeIdP, exp: Any) -> None:
    """exp beyond year 9999, infinite or NaN: a TokenError (invalid, expired or malformed), never ValueError."""
    v = TokenVerifier(issuer=idp.issuer, audience="api://default", allow_insecure_http_for_loopback=True)
    with pytest.raises(TokenError) as info:
        v.verify(idp.token(okta_user(), exp=exp))
    assert info.value.cause in ("invalid", "expired", "malformed")


def test_absurd_exp_refuses_a_governed_statement_as_identity_unverified(idp: FakeIdP) -> None:
    """Through wrap(): a token with exp=10**12 refuses the statement as identity-unverified, naming exp."""
    import sqlite3

    import governed_db
    from governed_db.errors import GuardrailViolation

    token = idp.token(okta_user(), exp=10**12)
    conn = governed_db.wrap(sqlite3.connect(":memory:"), identity=lambda: token, audit=False,
                            token={"issuer": idp.issuer, "audience": "api://default",
                                   "allow_insecure_http_for_loopback": True})
    with pytest.raises(GuardrailViolation) as info:
        conn.execute("SELECT 1")
    assert info.value.rules == ("identity-unverified",) and "exp claim" in str(info.value)
    assert not isinstance(info.value, governed_db.GovernanceFault)  # a bad token, not a dependency fault
