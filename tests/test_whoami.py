"""``governed-db whoami``: the resolved identity, roles and provenance; exit codes; the token never printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_tokens_idp import FakeIdP, exchanged, idp_fixture, okta_user  # noqa: F401

from governed_db.cli import main


@pytest.fixture
def jwks_file(idp: FakeIdP, tmp_path: Path) -> str:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(idp.jwks()))
    return str(path)


def _run(args: list[str], **kw: Any) -> Any:
    return CliRunner().invoke(main, ["whoami", *args], catch_exceptions=False, **kw)


def test_verified_token_as_json(idp: FakeIdP, jwks_file: str) -> None:
    """--token with issuer/audience/JWKS shows the verified identity, roles, issuer, token id and expiry."""
    token = idp.token(okta_user())
    result = _run(["--token", token, "--issuer", idp.issuer, "--audience", "api://default",
                   "--jwks", jwks_file, "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["subject"] == "alice@example.com"
    assert data["roles"] == ["Everyone", "Analysts"]
    assert data["provenance"] == "verified" and data["verified"] is True
    assert data["issuer"] == idp.issuer and data["token_id"] == "AT.okta-alice-1"
    assert data["source"] == "token" and data["expires_at"].endswith("+00:00")
    assert token not in result.output and token.split(".")[2] not in result.output


def test_human_output_from_stdin_with_bearer_prefix(idp: FakeIdP, jwks_file: str) -> None:
    """--token - reads the token from stdin (no shell history); the table shows the agent and its principal."""
    token = idp.token(exchanged())
    result = _run(["--token", "-", "--issuer", idp.issuer, "--audience", "api://default", "--jwks", jwks_file],
                  input=f"Bearer {token}\n")
    assert result.exit_code == 0, result.output
    for expected in ("agent-42", "agent", "alice@example.com", "Analysts", "verified", "tx-1"):
        assert expected in result.output
    assert token.split(".")[1] not in result.output


def test_env_configuration(idp: FakeIdP, jwks_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With GOVERNED_DB_TOKEN and GOVERNED_DB_TOKEN_* set, plain `whoami` verifies the environment's token."""
    monkeypatch.setenv("GOVERNED_DB_TOKEN", idp.token(okta_user()))
    monkeypatch.setenv("GOVERNED_DB_TOKEN_ISSUER", idp.issuer)
    monkeypatch.setenv("GOVERNED_DB_TOKEN_AUDIENCE", "api://default")
    monkeypatch.setenv("GOVERNED_DB_TOKEN_JWKS", jwks_file)
    data = json.loads(_run(["--format", "json"]).output)
    assert (data["subject"], data["source"], data["verified"]) == ("alice@example.com", "GOVERNED_DB_TOKEN", True)


@pytest.mark.parametrize(
    ("env", "subject", "source"),
    [
        ({"GOVERNED_DB_IDENTITY": "agent:report-bot@alice;roles=analyst"}, "report-bot", "GOVERNED_DB_IDENTITY"),
        ({}, None, "operating-system user"),
    ],
)
def test_self_declared_identities(
    env: dict[str, str], subject: str | None, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a token, whoami shows the self-declared identity and says where it came from."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    data = json.loads(_run(["--format", "json"]).output)
    assert data["provenance"] == "self-declared" and data["source"] == source
    if subject:
        assert data["subject"] == subject


def test_claims_map_option(idp: FakeIdP, jwks_file: str) -> None:
    """--claims-map JSON maps groups to policy roles."""
    result = _run(["--token", idp.token(okta_user()), "--issuer", idp.issuer, "--audience", "api://default",
                   "--jwks", jwks_file, "--claims-map", '{"role_map": {"Analysts": "analyst"}}', "--format", "json"])
    assert json.loads(result.output)["roles"] == ["analyst"]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--audience", "api://default"], 2, "no issuer"),
        (["--issuer", "https://idp.example.com", "--audience", "a", "--jwks", "/nonexistent.json"], 2,
         "could not read"),
        (["--issuer", "https://idp.example.com", "--audience", "a", "--jwks", "JWKS", "--claims-map", "{bad"], 2,
         "not valid JSON"),
        (["--issuer", "https://idp.example.com", "--audience", "api://default", "--jwks", "JWKS"], 1, "wrong_issuer"),
    ],
)
def test_problems_and_exit_codes(
    idp: FakeIdP, jwks_file: str, args: list[str], code: int, says: str
) -> None:
    """Missing configuration or bad input exits 2; a refused token exits 1 naming the cause; never prints it."""
    token = idp.token(okta_user())
    args = [jwks_file if a == "JWKS" else a for a in args]
    result = _run(["--token", token, *args, "--format", "json"])
    assert result.exit_code == code
    assert says in result.output
    assert token not in result.output


def test_expired_token_text_output(idp: FakeIdP, jwks_file: str) -> None:
    """An expired token exits 1 with the cause on stderr."""
    result = CliRunner().invoke(main, ["whoami", "--token", idp.token(okta_user(), exp_in=-300), "--issuer",
                                       idp.issuer, "--audience", "api://default", "--jwks", jwks_file])
    assert result.exit_code == 1
    assert "token refused (expired)" in result.output
