"""A tiny offline identity provider for the token tests: keys made here, JWKS served on 127.0.0.1.

Imported by the other ``test_tokens*.py`` files and ``test_whoami.py``; holds no tests itself
except a check that the helper serves what the others rely on.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


@lru_cache(maxsize=8)
def rsa_key(n: int = 0) -> rsa.RSAPrivateKey:
    """RSA keys are slow to make; each index is generated once per test session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private: Any, kid: str, *, alg: str | None) -> dict[str, Any]:
    if isinstance(private, rsa.RSAPrivateKey):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    else:
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "use": "sig"})
    if alg:
        jwk["alg"] = alg
    return jwk


class FakeIdP:
    """Serves ``/.well-known/openid-configuration`` and ``/keys``; mints tokens with its keys."""

    def __init__(self, *, issuer_path: str = "/oauth2/default", jwk_alg: bool = True) -> None:
        self.private: dict[str, tuple[Any, str]] = {}  # kid -> (key, alg)
        self.published: list[str] = []
        self.hits: Counter[str] = Counter()
        self.status = 200
        self.metadata_issuer: str | None = None
        self.jwk_alg = jwk_alg
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                idp.hits[self.path] += 1
                if self.path.endswith("/.well-known/openid-configuration"):
                    body: Any = {"issuer": idp.metadata_issuer or idp.issuer, "jwks_uri": idp.jwks_url}
                elif self.path == "/keys":
                    body = idp.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(idp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = self.base + issuer_path
        self.jwks_url = self.base + "/keys"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        self.kid = self.add_key("rsa")

    def add_key(self, kind: str = "rsa", *, publish: bool = True, index: int | None = None) -> str:
        kid = f"{kind}-{uuid.uuid4().hex[:8]}"
        if kind == "rsa":
            key: Any = rsa_key(len(self.private) if index is None else index)
            alg = "RS256"
        elif kind == "ec":
            key, alg = ec.generate_private_key(ec.SECP256R1()), "ES256"
        else:
            key, alg = ed25519.Ed25519PrivateKey.generate(), "EdDSA"
        self.private[kid] = (key, alg)
        if publish:
            self.published.append(kid)
        return kid

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid in self.published:
            key, alg = self.private[kid]
            keys.append(public_jwk(key, kid, alg=alg if self.jwk_alg else None))
        return {"keys": keys}

    @property
    def jwks_fetches(self) -> int:
        return self.hits["/keys"]

    def token(
        self,
        claims: dict[str, Any] | None = None,
        *,
        kid: str | None = None,
        alg: str | None = None,
        exp_in: float = 300,
        headers: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **extra: Any,
    ) -> str:
        kid = kid or self.kid
        key, key_alg = self.private[kid]
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": "api://default", "iat": now, "exp": now + int(exp_in)}
        payload.update(claims or {})
        payload.update(extra)
        for name in drop:
            payload.pop(name, None)
        return jwt.encode(payload, key, algorithm=alg or key_alg, headers={"kid": kid, **(headers or {})})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def okta_user(**over: Any) -> dict[str, Any]:
    """An Okta custom-authorization-server access token for a user (shape from Okta's docs)."""
    return {"ver": 1, "jti": "AT.okta-alice-1", "cid": "0oa-webapp", "uid": "00u-alice", "sub": "alice@example.com",
            "scp": ["openid", "profile", "orders.read"], "groups": ["Everyone", "Analysts"], **over}


def okta_client(**over: Any) -> dict[str, Any]:
    """An Okta client-credentials access token: no user, sub == cid."""
    return {"ver": 1, "jti": "AT.okta-batch-1", "cid": "0oa-batch", "sub": "0oa-batch", "scp": ["orders.read"], **over}


def azure_user(**over: Any) -> dict[str, Any]:
    """An Azure AD / Entra ID v2.0 delegated access token."""
    return {"ver": "2.0", "uti": "uti-bob-1", "oid": "11111111-aaaa", "sub": "pairwise-bob", "tid": "tenant-1",
            "preferred_username": "bob@contoso.com", "name": "Bob", "scp": "Orders.Read User.Read",
            "roles": ["Orders.Admin"], "groups": ["a1b2c3d4-group"], "azp": "web-app-guid", **over}


def azure_app(**over: Any) -> dict[str, Any]:
    """An Azure AD app-only (client credentials) token: sub == oid, roles, no scp."""
    return {"ver": "2.0", "uti": "uti-daemon-1", "oid": "sp-oid-1", "sub": "sp-oid-1", "tid": "tenant-1",
            "roles": ["Orders.Read.All"], "azp": "daemon-app-guid", "idtyp": "app", **over}


def exchanged(**over: Any) -> dict[str, Any]:
    """An RFC 8693 token-exchange result: agent-42 acting for alice (via a gateway)."""
    return {"jti": "tx-1", "sub": "alice@example.com", "client_id": "agent-42", "scope": "orders.read",
            "groups": ["Analysts"], "act": {"sub": "agent-42", "act": {"sub": "gateway"}}, **over}


@pytest.fixture(name="idp")
def idp_fixture() -> Iterator[FakeIdP]:
    from governed_db.tokens import clear_caches

    server = FakeIdP()
    yield server
    server.close()
    clear_caches()


def test_fake_idp_serves_metadata_and_keys(idp: FakeIdP) -> None:
    """The helper IdP answers discovery and JWKS requests the way the verifier expects."""
    import urllib.request

    with urllib.request.urlopen(idp.issuer + "/.well-known/openid-configuration", timeout=5) as r:
        meta = json.load(r)
    assert meta["jwks_uri"] == idp.jwks_url
    assert [k["kid"] for k in idp.jwks()["keys"]] == [idp.kid]
