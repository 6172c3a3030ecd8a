"""docs/identity.md stays true: its Okta and Azure AD examples verify to the identities it promises."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from test_tokens_idp import FakeIdP, idp_fixture  # noqa: F401

from governed_db.tokens import CAUSES, ENV_VARS, ClaimsMap, TokenVerifier

DOC = Path(__file__).resolve().parent.parent / "docs" / "identity.md"


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"### {title}")
    end = text.find("\n### ", start + 1)
    return text[start:end]


def _blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section, flags=re.S)


@pytest.mark.parametrize(
    ("title", "subject", "roles"),
    [("Okta", "alice@example.com", ("analyst",)), ("Azure AD / Entra ID", "bob@contoso.com", ("finance", "admin"))],
)
def test_provider_examples_verify_as_documented(idp: FakeIdP, title: str, subject: str, roles: tuple[str, ...]) -> None:
    """The documented claims + configuration produce the documented subject and roles."""
    section = _section(title)
    claims: dict[str, Any] = json.loads(_blocks(section, "json")[0])
    namespace: dict[str, Any] = {}
    exec(_blocks(section, "python")[0], namespace)
    config = namespace["token"]
    audience = config["audience"] if isinstance(config["audience"], str) else config["audience"][0]
    claims.update(iss=config["issuer"], aud=audience, exp=int(time.time()) + 300)
    token = idp.token(claims)
    verifier = TokenVerifier(jwks=idp.jwks(), **config)
    ident = verifier.verify(token)
    assert (ident.subject, ident.kind, ident.roles, ident.verified) == (subject, "human", roles, True)
    shown = "(" + ", ".join(f'"{r}"' for r in roles) + ("," if len(roles) == 1 else "") + ")"
    assert f'Identity("{subject}", kind="human", roles={shown}' in section


def test_generic_issuer_example_builds() -> None:
    """The 'any other OIDC issuer' example is a valid ClaimsMap."""
    namespace: dict[str, Any] = {}
    exec(_blocks(_section("Any other OIDC issuer"), "python")[0], namespace)
    assert isinstance(namespace["keycloak"], ClaimsMap)


def test_every_cause_and_env_var_is_documented() -> None:
    """Each TokenError cause and GOVERNED_DB_TOKEN_* variable appears in docs/identity.md."""
    text = DOC.read_text(encoding="utf-8")
    missing = [c for c in CAUSES if f"`{c}`" not in text] + [v for v in ENV_VARS if f"`{v}`" not in text]
    assert missing == []
