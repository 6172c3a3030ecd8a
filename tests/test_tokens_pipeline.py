"""Tokens through a governed connection: verified identity on every statement, refusals, spans, policies."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from test_tokens_idp import FakeIdP, azure_user, exchanged, idp_fixture, okta_client, okta_user  # noqa: F401

import governed_db
from governed_db import Action, GuardrailViolation, Identity, RuleHit, acting_as, identity_from_token
from governed_db.policy import Policy


def _conn(idp: FakeIdP, provider: Any, *, token: Any = "default", **kw: Any) -> Any:
    if token == "default":
        token = {"issuer": idp.issuer, "audience": "api://default", "allow_insecure_http_for_loopback": True}
    conn = governed_db.wrap(sqlite3.connect(":memory:"), identity=provider, token=token, audit=False, **kw)
    raw = governed_db.unwrap(conn)
    raw.execute("CREATE TABLE orders (id INTEGER, region TEXT)")
    raw.executemany("INSERT INTO orders VALUES (?, ?)", [(i, "eu" if i % 2 else "us") for i in range(10)])
    return conn


def _attrs(exporter: Any) -> list[dict[str, Any]]:
    """Attributes of the statement spans (not the governed_db.result follow-ups)."""
    return [dict(s.attributes or {}) for s in exporter.get_finished_spans() if s.name != "governed_db.result"]


def _all_attrs(exporter: Any) -> list[dict[str, Any]]:
    return [dict(s.attributes or {}) for s in exporter.get_finished_spans()]


def test_token_provider_gives_every_statement_a_verified_identity(idp: FakeIdP, spans: Any) -> None:
    """identity=callable returning a token: spans carry subject, roles, issuer, token id; JWKS fetched once."""
    provider, exporter = spans
    token = idp.token(okta_user())
    conn = _conn(idp, lambda: token, tracer_provider=provider)
    for _ in range(50):
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (10,)
    statement_spans = _attrs(exporter)
    assert len(statement_spans) == 50
    first = statement_spans[0]
    assert first["governed_db.identity.subject"] == "alice@example.com"
    assert first["governed_db.identity.provenance"] == "verified"
    assert first["governed_db.identity.issuer"] == idp.issuer
    assert first["governed_db.identity.token_id"] == "AT.okta-alice-1"
    assert tuple(first["user.roles"]) == ("Everyone", "Analysts")
    assert idp.jwks_fetches == 1


def test_the_token_never_reaches_a_span(idp: FakeIdP, spans: Any) -> None:
    """No span attribute contains the token or any of its parts, even with parameters captured."""
    provider, exporter = spans
    token = idp.token(azure_user())
    conn = _conn(idp, lambda: token, tracer_provider=provider, capture_parameters=True, sqlcommenter=True)
    conn.execute("SELECT * FROM orders WHERE id = ?", (1,)).fetchall()
    with pytest.raises(GuardrailViolation):
        conn.execute("DROP TABLE orders")
    pieces = [token, *token.split(".")]
    found = [(k, v) for a in _all_attrs(exporter) for k, v in a.items() for p in pieces if p in str(v)]
    assert found == []
    assert exporter.get_finished_spans()


def test_refreshed_token_is_picked_up(idp: FakeIdP, spans: Any) -> None:
    """A provider that hands out a new token (refresh) changes the recorded token id with no refetch."""
    provider, exporter = spans
    tokens = iter([idp.token(okta_user(jti=f"AT.{i}")) for i in range(3)])
    current = {"t": next(tokens)}
    conn = _conn(idp, lambda: current["t"], tracer_provider=provider)
    seen = []
    for _ in range(3):
        conn.execute("SELECT 1").fetchall()
        seen.append(_attrs(exporter)[-1]["governed_db.identity.token_id"])
        current["t"] = next(tokens, current["t"])
    assert seen == ["AT.0", "AT.1", "AT.2"]
    assert idp.jwks_fetches == 1


@pytest.mark.parametrize(
    ("make", "cause_text"),
    [
        (lambda i: i.token(okta_user(), exp_in=-300), "expired"),
        (lambda i: i.token(okta_user(aud="api://other")), "audience"),
        (lambda i: "garbage", "malformed"),
    ],
)
def test_bad_token_refuses_the_statement(idp: FakeIdP, make: Any, cause_text: str) -> None:
    """A token that fails verification refuses the statement (also as sqlite3's ProgrammingError); nothing runs."""
    token = make(idp)
    conn = _conn(idp, lambda: token)
    with pytest.raises(GuardrailViolation, match=cause_text) as info:
        conn.execute("DELETE FROM orders")
    assert isinstance(info.value, sqlite3.ProgrammingError)
    assert token not in str(info.value)
    assert governed_db.unwrap(conn).execute("SELECT count(*) FROM orders").fetchone() == (10,)


def test_token_without_verification_config_is_refused_not_self_declared(idp: FakeIdP) -> None:
    """A token source with no issuer/audience configured refuses: it never falls back to self-declared."""
    conn = _conn(idp, lambda: idp.token(okta_user()), token=None)
    with pytest.raises(GuardrailViolation, match="GOVERNED_DB_TOKEN_ISSUER"):
        conn.execute("SELECT 1")


def test_unreachable_jwks_refuses_in_development_too(idp: FakeIdP) -> None:
    """An identity that cannot be verified is refused even where rules only warn (development)."""
    token = idp.token(okta_user())
    idp.status = 500
    conn = _conn(idp, lambda: token, environment="development")
    with pytest.raises(GuardrailViolation, match="HTTP 500"):
        conn.execute("SELECT 1")


def test_env_vars_configure_token_and_verification(idp: FakeIdP, monkeypatch: pytest.MonkeyPatch, spans: Any) -> None:
    """GOVERNED_DB_TOKEN + GOVERNED_DB_TOKEN_ISSUER/AUDIENCE/JWKS verify with no code configuration."""
    provider, exporter = spans
    monkeypatch.setenv("GOVERNED_DB_TOKEN", idp.token(okta_client()))
    monkeypatch.setenv("GOVERNED_DB_TOKEN_ISSUER", idp.issuer)
    monkeypatch.setenv("GOVERNED_DB_TOKEN_AUDIENCE", "api://other, api://default")
    monkeypatch.setenv("GOVERNED_DB_TOKEN_JWKS", __import__("json").dumps(idp.jwks()))
    monkeypatch.setenv("GOVERNED_DB_TOKEN_CLAIMS_MAP", '{"client_names": {"0oa-batch": "nightly-batch"}}')
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=False, tracer_provider=provider)
    conn.execute("SELECT 1").fetchall()
    attrs = _attrs(exporter)[0]
    assert attrs["governed_db.identity.subject"] == "nightly-batch"
    assert attrs["governed_db.identity.kind"] == "service"
    assert attrs["governed_db.identity.provenance"] == "verified"


def test_option_dict_wins_over_env(idp: FakeIdP, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys given in the token option override the GOVERNED_DB_TOKEN_* variables; env fills the rest."""
    monkeypatch.setenv("GOVERNED_DB_TOKEN_ISSUER", "https://wrong.example.com")
    monkeypatch.setenv("GOVERNED_DB_TOKEN_AUDIENCE", "api://default")
    monkeypatch.setenv("GOVERNED_DB_TOKEN_JWKS_URL", "https://unused.example.com/keys")
    token = idp.token(okta_user())
    conn = _conn(idp, lambda: token, token={"issuer": idp.issuer, "jwks": idp.jwks()})
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_shared_token_verifier_object(idp: FakeIdP) -> None:
    """The token option also takes a TokenVerifier, shared by many connections."""
    from governed_db.tokens import TokenVerifier

    verifier = TokenVerifier(issuer=idp.issuer, audience="api://default", jwks=idp.jwks())
    token = idp.token(okta_user())
    for _ in range(3):
        assert _conn(idp, lambda: token, token=verifier).execute("SELECT 1").fetchone() == (1,)
    assert len(verifier._cache) == 1


def _only_group(group: str) -> Any:
    def rule(stmt: Any, ctx: Any) -> RuleHit | None:
        if stmt is None or stmt.operation != "DELETE" or group in ctx.identity.roles:
            return None
        return RuleHit("deletes-need-group", Action.DENY, f"only members of {group} may delete",
                       f"ask to be added to {group}")

    return rule


def _agents_for_group(group: str) -> Any:
    def rule(stmt: Any, ctx: Any) -> RuleHit | None:
        ident = ctx.identity
        if ident.kind != "agent" or (ident.on_behalf_of and group in ident.roles):
            return None
        return RuleHit("agents-for-group", Action.DENY, f"agents may act only for members of {group}")

    return rule


def test_policy_allows_one_group_and_refuses_another(idp: FakeIdP) -> None:
    """End to end: the same DELETE runs for a token in group Ops and is refused for one in Analysts."""
    policy = Policy(name="ops-only-deletes", rules=(_only_group("Ops"),))
    ops = idp.token(okta_user(sub="olga@example.com", groups=["Everyone", "Ops"], jti="AT.olga"))
    analyst = idp.token(okta_user())
    conn_ops = _conn(idp, lambda: ops, policy=policy)
    conn_ops.execute("DELETE FROM orders WHERE id = 1")
    assert governed_db.unwrap(conn_ops).execute("SELECT count(*) FROM orders").fetchone() == (9,)
    conn_analyst = _conn(idp, lambda: analyst, policy=policy)
    with pytest.raises(GuardrailViolation, match="only members of Ops may delete") as info:
        conn_analyst.execute("DELETE FROM orders WHERE id = 1")
    assert info.value.rules == ("deletes-need-group",)
    assert governed_db.unwrap(conn_analyst).execute("SELECT count(*) FROM orders").fetchone() == (10,)


def test_policy_on_agents_acting_for_members_of_a_group(idp: FakeIdP) -> None:
    """A token-exchange agent acting for an Analyst may read; the same agent acting for others may not."""
    policy = Policy(name="agents", rules=(_agents_for_group("Analysts"),))
    for_analyst = idp.token(exchanged())
    for_guest = idp.token(exchanged(sub="guest@example.com", groups=["Everyone"], jti="tx-2"))
    assert _conn(idp, lambda: for_analyst, policy=policy).execute("SELECT count(*) FROM orders").fetchone() == (10,)
    with pytest.raises(GuardrailViolation, match="agents may act only for members of Analysts"):
        _conn(idp, lambda: for_guest, policy=policy).execute("SELECT count(*) FROM orders")


def test_acting_as_per_request_in_a_web_app(idp: FakeIdP, spans: Any) -> None:
    """The web-app pattern: one connection, acting_as(identity_from_token(bearer)) per request."""
    provider, exporter = spans
    conn = governed_db.wrap(sqlite3.connect(":memory:"), identity=Identity("web-app", kind="service"),
                            audit=False, tracer_provider=provider)
    cfg = {"issuer": idp.issuer, "audience": "api://default", "allow_insecure_http_for_loopback": True}
    for claims in (okta_user(), azure_user(), exchanged()):
        bearer = idp.token(claims)
        with acting_as(identity_from_token(bearer, **cfg)):
            conn.execute("SELECT 1").fetchall()
    conn.execute("SELECT 1").fetchall()
    subjects = [(a["governed_db.identity.subject"], a.get("governed_db.identity.provenance", "self-declared"))
                for a in _attrs(exporter)]
    assert subjects == [("alice@example.com", "verified"), ("bob@contoso.com", "verified"),
                        ("agent-42", "verified"), ("web-app", "self-declared")]
    assert idp.jwks_fetches == 1


def test_require_verified_identity_rule(idp: FakeIdP) -> None:
    """The require_verified_identity rule refuses self-declared identities and lets verified ones run."""
    from governed_db.tokens import require_verified_identity

    policy = Policy(name="verified-only", rules=(require_verified_identity,))
    token = idp.token(okta_user())
    assert _conn(idp, lambda: token, policy=policy).execute("SELECT 1").fetchone() == (1,)
    self_declared = governed_db.wrap(sqlite3.connect(":memory:"), identity=Identity("mallory"), policy=policy,
                                     audit=False)
    with pytest.raises(GuardrailViolation, match="'mallory' is self-declared") as info:
        self_declared.execute("SELECT 1")
    assert info.value.rules == ("verified-identity-required",)
