"""wrap() checks every option when it is called: a bad value is a ConfigurationError naming it, never a late fault."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import governed_db
from governed_db.errors import ConfigurationError
from governed_db.settings import Options, build_options

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("dialect not a string", {"dialect": 42}, "dialect must be"),
    ("dialect unknown", {"dialect": "nosuchsql"}, "unknown SQL dialect 'nosuchsql'"),
    ("dialect empty", {"dialect": " "}, "dialect must be"),
    ("approvals a number", {"approvals": 42}, "approvals= takes"),
    ("approvals store a number", {"approvals": {"store": 42}}, "approval store must be"),
    ("approvals store of another kind", {"approvals": "mysql://h/db"}, "mysql:// is not supported"),
    ("approvals store timeout", {"approvals": "postgresql://u@h/db?timeout=soon"}, "timeout must be a number"),
    ("approvals unknown setting", {"approvals": {"quorom": 2}}, "unknown approvals setting"),
    ("token a number", {"token": 42}, "token option must be"),
    ("token unknown key", {"token": {"isuer": "https://x"}}, "unknown key"),
    ("token bad timeout", {"token": {"issuer": "https://idp.example", "audience": "a", "timeout": "x"}},
     "must be numbers"),
    ("token plain http", {"token": {"issuer": "http://idp.example", "audience": "a"}}, "not an https URL"),
    ("masking a number", {"masking": 42}, "masking must be"),
    ("capture_parameters text", {"capture_parameters": "yes"}, "capture_parameters must be True or False"),
    ("sqlcommenter number", {"sqlcommenter": 1}, "sqlcommenter must be True or False"),
    ("record_results text", {"record_results": "x"}, "record_results must be True, False or None"),
    ("application_name number", {"application_name": 5}, "application_name must be True"),
    ("on_fault unknown", {"on_fault": "ignore"}, "on_fault must be"),
    ("unknown option", {"dialekt": "sqlite"}, "unknown option"),
    ("identity a number", {"identity": 42}, "identity must be"),
    ("environment a number", {"environment": 42}, "environment must be"),
    ("policy a number", {"policy": 42}, "policy must be"),
    ("audit a number", {"audit": 42}, "audit= takes"),
    ("tracer_provider a number", {"tracer_provider": 42}, "tracer_provider must be"),
]


@pytest.mark.parametrize(("kwargs", "says"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_option_fails_at_wrap_time(kwargs: dict[str, Any], says: str) -> None:
    """Each bad option is a ConfigurationError from wrap() itself, saying what is wrong."""
    with pytest.raises(ConfigurationError, match=says):
        governed_db.wrap(sqlite3.connect(":memory:"), **kwargs)


@pytest.mark.parametrize(("kwargs", "says"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_option_fails_at_govern_module_time(kwargs: dict[str, Any], says: str) -> None:
    """govern_module() checks the same options before any connect()."""
    with pytest.raises(ConfigurationError, match=says):
        governed_db.govern_module(sqlite3, **kwargs)


def test_options_are_parsed_once_into_a_frozen_object() -> None:
    """The options object is typed, frozen and normalises the dialect name; defaults fill the rest."""
    opts = build_options({"dialect": " PostgreSQL ", "sqlcommenter": True})
    assert isinstance(opts, Options)
    assert (opts.dialect, opts.sqlcommenter, opts.capture_parameters, opts.on_fault) == (
        "postgresql", True, False, "auto")
    with pytest.raises(AttributeError):
        opts.dialect = "mysql"  # type: ignore[misc]


def test_good_options_are_accepted_and_govern() -> None:
    """Valid options of every kind wrap a connection that still runs statements."""
    conn = governed_db.wrap(
        sqlite3.connect(":memory:"), audit=False, environment="development", dialect="sqlite",
        capture_parameters=True, sqlcommenter=True, record_results=False, on_fault="fail",
        approvals={"quorum": 2}, token={"issuer": "https://idp.example", "audience": "api"},
    )
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_incomplete_token_settings_wait_for_the_environment() -> None:
    """A token dict without issuer/audience is fine at wrap time (GOVERNED_DB_TOKEN_* may complete it later)."""
    governed_db.wrap(sqlite3.connect(":memory:"), audit=False, token={"leeway": 10})


def test_bad_webhook_settings_fail_at_wrap_time() -> None:
    """A webhook with a bad timeout is refused by wrap(), not when the first approval is requested."""
    with pytest.raises(ConfigurationError, match="webhook timeout"):
        governed_db.wrap(sqlite3.connect(":memory:"), audit=False,
                         approvals={"webhook": {"url": "https://hooks.example/x", "timeout": "soon"}})
