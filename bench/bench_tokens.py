"""Cost of verified identity: cold verification vs the cached hot path, and per statement on sqlite.

Run: python bench/bench_tokens.py. Prints a table of side-by-side figures; not a test.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import governed_db
from governed_db.settings import build_settings
from governed_db.tokens import TokenVerifier, verify_configured

ISS, AUD = "https://idp.example.com/oauth2/default", "api://default"


def _per_call(fn: Callable[[], Any], n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [
        {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "r", "alg": "RS256"},
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "e", "alg": "ES256"},
    ]}
    claims = {"iss": ISS, "aud": AUD, "exp": int(time.time()) + 3600, "sub": "alice@example.com",
              "groups": ["Analysts"], "jti": "AT.1", "cid": "web", "uid": "00u1"}
    rs = jwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": "r"})
    es = jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": "e"})
    uncached = TokenVerifier(issuer=ISS, audience=AUD, jwks=jwks, cache_size=0)
    settings = build_settings(identity=None, environment=None, policy=None, audit=False, tracer_provider=None,
                              options={"token": {"issuer": ISS, "audience": AUD, "jwks": jwks}})

    rows = [
        ("verify RS256, uncached", _per_call(lambda: uncached.verify(rs), 500)),
        ("verify ES256, uncached", _per_call(lambda: uncached.verify(es), 500)),
        ("verify_configured, cached token", _per_call(lambda: verify_configured(rs, settings), 20000)),
    ]

    def conn(identity: Any, **opts: Any) -> Any:
        c = governed_db.wrap(sqlite3.connect(":memory:"), identity=identity, audit=False, **opts)
        governed_db.unwrap(c).execute("CREATE TABLE t (x INTEGER)")
        return c

    plain = conn(governed_db.Identity("alice"))
    tokened = conn(lambda: rs, token={"issuer": ISS, "audience": AUD, "jwks": jwks})
    t_plain = _per_call(lambda: plain.execute("SELECT x FROM t").fetchall(), 5000)
    t_token = _per_call(lambda: tokened.execute("SELECT x FROM t").fetchall(), 5000)
    rows += [("statement, Identity(...)", t_plain), ("statement, token provider", t_token)]

    print(f"{'case':36} {'µs/op':>10}")
    for name, us in rows:
        print(f"{name:36} {us:10.2f}")
    print(f"{'token provider / Identity ratio':36} {t_token / t_plain:10.2f}")


if __name__ == "__main__":
    main()
