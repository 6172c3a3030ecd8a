"""Token verification: Okta and Azure AD shapes, kinds, claims maps, JWKS fetching and caching."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path
from typing import Any

import pytest
from test_tokens_idp import (
    FakeIdP,
    azure_app,
    azure_user,
    exchanged,
    idp_fixture,  # noqa: F401  (the idp fixture)
    okta_client,
    okta_user,
)

import governed_db
from governed_db import ConfigurationError
from governed_db.tokens import ClaimsMap, TokenError, TokenVerifier, identity_from_token


def verifier(idp: FakeIdP, **kw: Any) -> TokenVerifier:
    kw.setdefault("allow_insecure_http_for_loopback", True)
    return TokenVerifier(issuer=idp.issuer, audience=kw.pop("audience", "api://default"), **kw)


def test_okta_user_token_is_a_verified_human(idp: FakeIdP) -> None:
    """An Okta user access token becomes a verified human with its groups as roles and its provenance."""
    ident = verifier(idp).verify(idp.token(okta_user()))
    assert ident.to_dict() == {
        "subject": "alice@example.com", "kind": "human", "on_behalf_of": None, "roles": ["Everyone", "Analysts"],
        "verified": True, "issuer": idp.issuer, "token_id": "AT.okta-alice-1",
        "attributes": {"client_id": "0oa-webapp", "idp_subject": "alice@example.com",
                       "scopes": "openid profile orders.read", "token_type": "user"},
    }
    assert ident.provenance == "verified"


def test_azure_user_token_reads_entra_claims(idp: FakeIdP) -> None:
    """An Azure AD v2 delegated token: preferred_username, roles + groups, uti as token id, oid/tid kept."""
    ident = verifier(idp).verify(idp.token(azure_user()))
    assert (ident.subject, ident.kind, ident.on_behalf_of) == ("bob@contoso.com", "human", None)
    assert ident.roles == ("a1b2c3d4-group", "Orders.Admin")
    assert ident.token_id == "uti-bob-1"
    assert ident.attributes["oid"] == "11111111-aaaa"
    assert ident.attributes["tenant"] == "tenant-1"
    assert ident.attributes["idp_subject"] == "pairwise-bob"
    assert ident.attributes["scopes"] == "Orders.Read User.Read"
    assert ident.attributes["client_id"] == "web-app-guid"


def test_azure_v1_token_uses_upn_and_appid(idp: FakeIdP) -> None:
    """A v1 token (upn, appid, no preferred_username) resolves to the upn."""
    claims = azure_user(ver="1.0", upn="bob@contoso.com", appid="legacy-app")
    for k in ("preferred_username", "azp"):
        claims.pop(k)
    ident = verifier(idp).verify(idp.token(claims))
    assert ident.subject == "bob@contoso.com"
    assert ident.attributes["client_id"] == "legacy-app"


@pytest.mark.parametrize(
    ("cmap", "roles"),
    [
        ({"role_map": {"a1b2c3d4-group": "finance"}}, ("finance",)),
        ({"role_map": {"a1b2c3d4-group": ["finance", "reader"]}, "keep_unmapped_roles": True},
         ("finance", "reader", "Orders.Admin")),
        ({"role_map": {"roles:Orders.Admin": "admin", "groups:Orders.Admin": "never"}}, ("admin",)),
        ({"role_claims": ["roles"]}, ("Orders.Admin",)),
        ({"role_claims": ["scp"], "role_map": {"Orders.Read": "reader"}}, ("reader",)),
        ({"role_claims": []}, ()),
    ],
)
def test_role_mapping(idp: FakeIdP, cmap: dict[str, Any], roles: tuple[str, ...]) -> None:
    """Groups/roles/scopes become policy roles through the configurable role_map."""
    assert verifier(idp, claims_map=cmap).verify(idp.token(azure_user())).roles == roles


@pytest.mark.parametrize(
    ("claims", "cmap", "expected"),
    [
        (okta_client(), {}, ("0oa-batch", "service", None)),
        (okta_client(), {"client_names": {"0oa-batch": "nightly-batch"}}, ("nightly-batch", "service", None)),
        (okta_client(), {"client_kind": "agent"}, ("0oa-batch", "agent", None)),
        (okta_client(), {"agent_clients": ["0oa-batch"]}, ("0oa-batch", "agent", None)),
        (azure_app(), {}, ("daemon-app-guid", "service", None)),
        (azure_app(idtyp=None), {}, ("daemon-app-guid", "service", None)),
        # an agent using Azure's on-behalf-of flow: a user token whose client is a known agent
        (azure_user(azp="agent-app"), {"agent_clients": ["agent-app"], "client_names": {"agent-app": "copilot"}},
         ("copilot", "agent", "bob@contoso.com")),
        (okta_user(), {"agent_clients": ["someone-else"]}, ("alice@example.com", "human", None)),
    ],
)
def test_kinds_of_principal(
    idp: FakeIdP, claims: dict[str, Any], cmap: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    """Client credentials are services (or agents when configured); user tokens are humans."""
    ident = verifier(idp, claims_map=cmap).verify(idp.token(claims))
    assert (ident.subject, ident.kind, ident.on_behalf_of) == expected
    assert ident.verified


def test_token_exchange_act_claim_is_an_agent_on_behalf_of_the_user(idp: FakeIdP) -> None:
    """RFC 8693 act: the actor is the agent subject, acting for the token's subject, with the user's groups."""
    ident = verifier(idp).verify(idp.token(exchanged()))
    assert (ident.subject, ident.kind, ident.on_behalf_of) == ("agent-42", "agent", "alice@example.com")
    assert ident.roles == ("Analysts",)
    assert ident.attributes["prior_actors"] == "gateway"
    assert ident.attributes["token_type"] == "delegated"
    assert ident.token_id == "tx-1"


def test_act_without_actor_is_refused(idp: FakeIdP) -> None:
    """An act claim that names nobody is a refusal, not a guess."""
    with pytest.raises(TokenError) as info:
        verifier(idp).verify(idp.token(exchanged(act={"foo": 1})))
    assert info.value.cause == "no_subject"


def test_any_oidc_issuer_through_a_claims_map(idp: FakeIdP) -> None:
    """A Keycloak/Auth0-shaped token: nested and namespaced claims, a custom subject and attributes."""
    claims = {"sub": "f:123", "azp": "portal", "realm_access": {"roles": ["dba", "reader"]},
              "https://example.com/team": "payments", "login": "carol", "jti": "kc-1"}
    cmap = ClaimsMap(subject_claims=("login",), role_claims=("realm_access.roles",),
                     attributes={"team": "https://example.com/team"})
    ident = verifier(idp, claims_map=cmap).verify(idp.token(claims))
    assert (ident.subject, ident.roles) == ("carol", ("dba", "reader"))
    assert ident.attributes["team"] == "payments"


@pytest.mark.parametrize("bad", [{"nope": 1}, {"client_kind": "robot"}, {"role_map": ["x"]}, "x"])
def test_bad_claims_map_is_a_configuration_error(idp: FakeIdP, bad: Any) -> None:
    """A claims map with unknown keys or bad values fails when the verifier is built, saying which."""
    with pytest.raises(ConfigurationError):
        verifier(idp, claims_map=bad)


@pytest.mark.parametrize("kind", ["ec", "ed25519"])
def test_ec_and_eddsa_keys(idp: FakeIdP, kind: str) -> None:
    """ES256 and EdDSA tokens verify against their JWKs as well as RS256 does."""
    kid = idp.add_key(kind)
    assert verifier(idp).verify(idp.token(okta_user(), kid=kid)).subject == "alice@example.com"


def test_jwks_without_alg_fields_like_azure(idp: FakeIdP) -> None:
    """Azure publishes JWKs without 'alg': the key is bound to the token's algorithm if its type fits."""
    idp.jwk_alg = False
    kid = idp.add_key("ec")
    v = verifier(idp)
    assert v.verify(idp.token(okta_user())).verified
    assert v.verify(idp.token(okta_user(), kid=kid)).verified


def test_discovery_fetches_metadata_then_jwks_once_for_many_tokens(idp: FakeIdP) -> None:
    """Keys come from the issuer's metadata; many tokens and repeats cost one metadata + one JWKS fetch."""
    v = verifier(idp)
    for i in range(20):
        tok = idp.token(okta_user(jti=f"AT.{i}"))
        assert v.verify(tok).token_id == f"AT.{i}"
        assert v.verify(tok).token_id == f"AT.{i}"
    assert idp.hits[idp.issuer.removeprefix(idp.base) + "/.well-known/openid-configuration"] == 1
    assert idp.jwks_fetches == 1


def test_jwks_shared_across_verifiers_and_identity_from_token(idp: FakeIdP) -> None:
    """Verifiers and per-request identity_from_token calls with the same URL share one JWKS fetch."""
    for i in range(5):
        verifier(idp, jwks_url=idp.jwks_url).verify(idp.token(okta_user(jti=f"v{i}")))
        ident = identity_from_token(idp.token(okta_user(jti=f"f{i}")), issuer=idp.issuer, audience="api://default",
                                    jwks_url=idp.jwks_url, allow_insecure_http_for_loopback=True)
        assert ident.token_id == f"f{i}"
    assert governed_db.identity_from_token is identity_from_token
    assert idp.jwks_fetches == 1


def test_key_rotation_refreshes_once_on_unknown_kid(idp: FakeIdP) -> None:
    """A token signed with a newly published key triggers exactly one JWKS refresh, then verifies."""
    v = verifier(idp, refresh_cooldown=0)
    v.verify(idp.token(okta_user()))
    new_kid = idp.add_key("rsa")
    idp.published.remove(idp.kid)  # the old key is retired
    assert v.verify(idp.token(okta_user(jti="after-rotation"), kid=new_kid)).token_id == "after-rotation"
    assert idp.jwks_fetches == 2
    for i in range(5):
        v.verify(idp.token(okta_user(jti=f"r{i}"), kid=new_kid))
    assert idp.jwks_fetches == 2


def test_unknown_kid_after_refresh_and_cooldown(idp: FakeIdP) -> None:
    """An unpublished kid fails as unknown_kid; within the cooldown no further fetches happen."""
    v = verifier(idp)  # default cooldown: 30 s
    v.verify(idp.token(okta_user()))
    rogue = idp.add_key("rsa", publish=False)
    for _ in range(10):
        with pytest.raises(TokenError) as info:
            v.verify(idp.token(okta_user(), kid=rogue))
        assert info.value.cause == "unknown_kid"
    assert idp.jwks_fetches == 1


def test_cached_verification_ends_at_exp(idp: FakeIdP) -> None:
    """A cached token is still refused once its exp passes."""
    v = verifier(idp, leeway=0)
    tok = idp.token(okta_user(), exp_in=2)
    assert v.verify(tok).verified
    deadline = json.loads(__import__("base64").urlsafe_b64decode(tok.split(".")[1] + "==")).get("exp")
    time.sleep(max(0.0, deadline - time.time()) + 0.05)
    with pytest.raises(TokenError) as info:
        v.verify(tok)
    assert info.value.cause == "expired"


def test_verification_cache_is_bounded(idp: FakeIdP) -> None:
    """The per-verifier cache never holds more than cache_size tokens, and holds digests, not tokens."""
    v = verifier(idp, cache_size=3)
    tokens = [idp.token(okta_user(jti=f"b{i}")) for i in range(10)]
    for t in tokens:
        v.verify(t)
    assert len(v._cache) == 3
    assert all(isinstance(k, bytes) and len(k) == 32 for k in v._cache)
    assert not any(t.encode() in v._cache for t in tokens)


@pytest.mark.parametrize("form", ["dict", "file", "json", "single-jwk"])
def test_local_jwks_for_air_gapped_sites(idp: FakeIdP, tmp_path: Path, form: str) -> None:
    """A local JWKS (dict, file, JSON text or one JWK) verifies without any HTTP request."""
    doc: Any = idp.jwks()
    if form == "file":
        path = tmp_path / "jwks.json"
        path.write_text(json.dumps(doc))
        doc = str(path)
    elif form == "json":
        doc = json.dumps(doc)
    elif form == "single-jwk":
        doc = doc["keys"][0]
    v = TokenVerifier(issuer=idp.issuer, audience="api://default", jwks=doc)
    assert v.verify(idp.token(okta_user())).subject == "alice@example.com"
    assert sum(idp.hits.values()) == 0


def test_local_jwks_unknown_kid(idp: FakeIdP) -> None:
    """With a local JWKS an unknown kid says to install the issuer's current keys."""
    v = TokenVerifier(issuer=idp.issuer, audience="api://default", jwks=idp.jwks())
    kid = idp.add_key("ec", publish=False)
    with pytest.raises(TokenError, match="current JWKS") as info:
        v.verify(idp.token(okta_user(), kid=kid))
    assert info.value.cause == "unknown_kid"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"issuer": "", "audience": "a", "jwks": {"keys": []}}, "issuer="),
        ({"issuer": "https://x", "audience": "", "jwks": {"keys": []}}, "audience="),
        ({"issuer": "https://x", "audience": "a", "jwks": {"keys": []}, "jwks_url": "https://x/k"}, "not both"),
        ({"issuer": "https://x", "audience": "a", "jwks": {"keys": []}, "algorithms": ["HS256"]}, "never accepted"),
        ({"issuer": "https://x", "audience": "a", "jwks": "/nonexistent/jwks.json"}, "could not read"),
        ({"issuer": "https://x", "audience": "a", "jwks": "{not json"}, "not valid JSON"),
        ({"issuer": "https://x", "audience": "a", "jwks": {"nokeys": 1}}, "not a JWKS"),
        ({"issuer": "http://idp.example.com", "audience": "a"}, "not an https URL"),
        ({"issuer": "https://x", "audience": "a", "jwks_url": "http://idp.example.com/keys",
          "allow_insecure_http_for_loopback": True}, "not an https URL"),
        ({"issuer": "https://x", "audience": "a", "jwks_url": "http://127.0.0.1:9/keys"}, "loopback"),
        ({"issuer": "https://x", "audience": "a", "jwks_url": "file:///etc/passwd"}, "not an https URL"),
    ],
)
def test_bad_verifier_configuration(kwargs: dict[str, Any], match: str) -> None:
    """Missing issuer/audience, insecure URLs, bad local JWKS: a ConfigurationError saying what to fix."""
    with pytest.raises(ConfigurationError, match=match):
        TokenVerifier(**kwargs)


def test_token_error_pickles_with_its_cause() -> None:
    """TokenError survives pickling with its class and cause (multiprocessing, task queues)."""
    err = pickle.loads(pickle.dumps(TokenError("the token has expired", cause="expired")))
    assert type(err) is TokenError and err.cause == "expired" and str(err) == "the token has expired"
    assert isinstance(err, governed_db.GovernedDBError)


def test_bytes_bearer_prefix_and_whitespace_are_accepted(idp: FakeIdP) -> None:
    """A token as bytes, or with a 'Bearer ' prefix and a trailing newline, verifies as the bare token does."""
    v = verifier(idp)
    token = idp.token(okta_user())
    assert v.verify(token.encode()) == v.verify(f"Bearer {token}\n") == v.verify(token)
    with pytest.raises(TokenError) as info:
        v.verify(12345)  # type: ignore[arg-type]
    assert info.value.cause == "malformed"


def test_withdrawn_key_stops_verifying_cached_tokens(idp: FakeIdP, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cached verifications expire (at most MAX_CACHE_SECONDS), so a key removed from the JWKS stops working."""
    from governed_db.tokens import verifier as verifier_module

    monkeypatch.setattr(verifier_module, "MAX_CACHE_SECONDS", 0.0)
    v = verifier(idp, jwks_url=idp.jwks_url, jwks_ttl=0, refresh_cooldown=0)
    token = idp.token(okta_user())
    assert v.verify(token).verified
    idp.published.clear()  # the issuer withdraws its (compromised) key
    with pytest.raises(TokenError) as info:
        v.verify(token)
    assert info.value.cause == "unknown_kid"


@pytest.mark.parametrize(
    ("kwargs", "ok"),
    [
        ({"leeway": "10", "jwks_ttl": "60", "timeout": "2.5", "cache_size": "5"}, True),
        ({"leeway": "ten"}, False),
        ({"leeway": -1}, False),
        ({"timeout": 0}, False),
    ],
)
def test_numeric_settings_from_text(idp: FakeIdP, kwargs: dict[str, Any], ok: bool) -> None:
    """Numbers given as text (env, JSON config) are accepted; nonsense is a ConfigurationError."""
    if ok:
        assert verifier(idp, **kwargs).leeway == float(kwargs["leeway"])
    else:
        with pytest.raises(ConfigurationError):
            verifier(idp, **kwargs)


def test_concurrent_first_use_fetches_the_jwks_once(idp: FakeIdP) -> None:
    """Many threads verifying at once on a cold verifier cause one JWKS fetch and all succeed."""
    import threading

    v = verifier(idp, jwks_url=idp.jwks_url)
    tokens = [idp.token(okta_user(jti=f"c{i}")) for i in range(16)]
    results: list[str | None] = [None] * len(tokens)
    barrier = threading.Barrier(len(tokens))

    def work(i: int) -> None:
        barrier.wait()
        results[i] = v.verify(tokens[i]).token_id

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(tokens))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [f"c{i}" for i in range(16)]
    assert idp.jwks_fetches == 1
