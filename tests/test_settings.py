"""wrap() checks every option when it is called: a bad value is a ConfigurationError naming it, never a late fault."""

from __future__ import annotations

import sqlite3
from pathlib import Path
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
    ("approvals store a device", {"approvals": {"store": "/dev/null"}}, "is not a regular file"),
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
    ("environment a list", {"environment": []}, "environment must be"),
    # issue 15 re-checked: nested values were parsed with int()/float()/bool()/tuple() (TypeError, ValueError,
    # OverflowError out of wrap(), or a bad value taken: key=42 became 42 zero bytes) or only at the first statement
    ("masking unmask a number", {"masking": {"unmask": 42}}, "unmask must be"),
    ("masking strategies a string", {"masking": {"strategies": "hash"}}, "strategies must be a mapping"),
    ("masking key a number", {"masking": {"key": 42}}, "key must be a non-empty string or bytes"),
    ("masking online a string", {"masking": {"online": "no"}}, "online must be True or False"),
    ("masking sample_rows text", {"masking": {"sample_rows": "many"}}, "sample_rows must be an integer"),
    ("masking sample_rows negative", {"masking": {"sample_rows": -1}}, "sample_rows must be an integer"),
    ("masking sample_rows huge", {"masking": {"sample_rows": 10**30}}, "sample_rows must be an integer"),
    ("masking sample_rows infinite", {"masking": {"sample_rows": float("inf")}}, "sample_rows must be an integer"),
    ("masking min_confidence NaN", {"masking": {"min_confidence": float("nan")}}, "min_confidence must be"),
    ("masking min_confidence above 1", {"masking": {"min_confidence": 5}}, "min_confidence must be"),
    ("masking min_confidence text", {"masking": {"min_confidence": "high"}}, "min_confidence must be"),
    ("masking catalog a number", {"masking": {"catalog": 42}}, "catalog must be a path"),
    ("masking catalog missing", {"masking": {"catalog": "/nonexistent/catalog.yaml"}}, "does not exist"),
    ("approvals reviewer_roles a number", {"approvals": {"reviewer_roles": 42}}, "reviewer_roles must be"),
    ("approvals request_ttl NaN", {"approvals": {"request_ttl": float("nan")}}, "request_ttl must be a finite"),
    ("approvals wait infinite", {"approvals": {"wait": float("inf")}}, "wait must be a finite"),
    ("approvals reason_required text", {"approvals": {"reason_required": "no"}}, "reason_required must be True"),
    ("approvals enabled a number", {"approvals": {"enabled": 0}}, "enabled must be True or False"),
    ("approvals notify a number", {"approvals": {"notify": 42}}, "notify must be a callable"),
    ("approvals webhooks a number", {"approvals": {"webhooks": 42}}, "webhooks must be a URL"),
    ("token cache_size infinite", {"token": {"issuer": "https://idp.example", "audience": "a",
                                             "cache_size": float("inf")}}, "cache_size an integer"),
    ("token timeout a bool", {"token": {"issuer": "https://idp.example", "audience": "a", "timeout": True}},
     "must be numbers"),
    ("token required_claims a string", {"token": {"issuer": "https://idp.example", "audience": "a",
                                                  "required_claims": "exp"}}, "required_claims must be a list"),
    ("token insecure flag a number", {"token": {"issuer": "https://idp.example", "audience": "a",
                                                "allow_insecure_http_for_loopback": 1}}, "must be True or False"),
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


def test_good_nested_values_next_to_the_refused_ones_still_wrap(tmp_path: Path) -> None:
    """The innocent neighbours of the values refused above: edges of each range, other accepted shapes."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("tables: {}\n")
    for kwargs in (
        {"environment": ""},  # unset: the default (production)
        {"masking": {"sample_rows": 0, "min_confidence": 0, "online": False, "key": b"k", "unmask": [],
                     "strategies": {}}},
        {"masking": {"sample_rows": 2**31 - 1, "min_confidence": 1.0, "key": "k", "catalog": str(catalog),
                     "unmask": {"role": "support"}}},
        {"approvals": {"reviewer_roles": "dba, security", "request_ttl": 0, "grant_ttl": 60.5, "wait": 0,
                       "reason_required": True, "enabled": False, "notify": [], "webhooks": []}},
        {"approvals": {"reviewer_roles": ["dba"], "notify": print, "webhooks": "https://hooks.example/x"}},
        {"token": {"issuer": "https://idp.example", "audience": "a", "cache_size": 10.0, "timeout": 1,
                   "required_claims": ["exp", "sub"], "allow_insecure_http_for_loopback": False}},
    ):
        conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=False, **kwargs)
        assert conn.execute("SELECT 1").fetchone() == (1,), kwargs


def test_incomplete_token_settings_wait_for_the_environment() -> None:
    """A token dict without issuer/audience is fine at wrap time (GOVERNED_DB_TOKEN_* may complete it later)."""
    governed_db.wrap(sqlite3.connect(":memory:"), audit=False, token={"leeway": 10})


def test_bad_webhook_settings_fail_at_wrap_time() -> None:
    """A webhook with a bad timeout is refused by wrap(), not when the first approval is requested."""
    with pytest.raises(ConfigurationError, match="webhook timeout"):
        governed_db.wrap(sqlite3.connect(":memory:"), audit=False,
                         approvals={"webhook": {"url": "https://hooks.example/x", "timeout": "soon"}})
