"""Masking strategies: each operator's output, options, determinism and documentation."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governed_db.errors import ConfigurationError
from governed_db.masking.config import KEY_ENV, MaskingConfig, load_config, resolve_key
from governed_db.masking.strategies import (
    STRATEGY_NAMES,
    StrategyContext,
    build_strategy,
    looks_masked,
    strategy_module,
)
from governed_db.masking.strategies.tokenization import detokenize

DOCS = Path(__file__).resolve().parents[1] / "docs" / "reference" / "masking-strategies.md"
CTX = StrategyContext(b"k" * 32)


def mask(name: str, value: Any, label: str = "EMAIL", **options: Any) -> Any:
    return build_strategy(name, label, options, CTX)(value)


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_every_strategy_keeps_null(name: str) -> None:
    """NULL stays NULL whatever the strategy."""
    assert mask(name, None) is None


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_every_strategy_is_documented(name: str) -> None:
    """docs/reference/masking-strategies.md has a section for every registered strategy."""
    text = DOCS.read_text(encoding="utf-8")
    assert f"## `{name}`" in text, f"strategy {name!r} is missing from {DOCS.name}"
    assert strategy_module(name).SUMMARY


@pytest.mark.parametrize(
    ("value", "label", "expected"),
    [
        ("alice@example.com", "EMAIL", "[EMAIL]"),
        (42, "US_SSN", 0),
        (3.5, "SALARY", 0.0),
        (Decimal("9.99"), "SALARY", Decimal(0)),
        (dt.date(1984, 5, 12), "DATE_OF_BIRTH", dt.date(1970, 1, 1)),
        (b"secret", "SECRET", b""),
        ({"a": 1}, "SECRET", {"redacted": "[SECRET]"}),
        (True, "FLAG", False),
    ],
)
def test_redact_is_type_aware(value: Any, label: str, expected: Any) -> None:
    """redact returns a constant of the value's own type."""
    out = mask("redact", value, label)
    assert out == expected and type(out) is type(expected)


def test_null_drops_the_value() -> None:
    """null returns None for any value."""
    assert mask("null", "alice@example.com") is None


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        ("536-22-8726", {"keep_last": 4}, "***-**-8726"),
        ("4111 1111 1111 1111", {"keep_last": 4}, "**** **** **** 1111"),
        ("DE89370400440532013000", {"keep_first": 2, "keep_last": 4}, "DE****************3000"),
        ("ab", {"keep_last": 4}, "*b"),
        ("Zoë-12345", {"keep_first": 1, "keep_last": 2}, "Z**-***45"),
        (4111111111111111, {"keep_last": 4}, "************1111"),
        ("---", {"keep_last": 2}, "***"),
    ],
)
def test_partial_keeps_shape_and_at_most_half(value: Any, options: dict[str, Any], expected: str) -> None:
    """partial keeps separators and the asked-for ends, but never more than half the characters."""
    assert mask("partial", value, "CREDIT_CARD", **options) == expected


@pytest.mark.parametrize(
    ("mode", "expected"), [("keep_domain", "j***@example.com"), ("hide_domain", "j***@***")]
)
def test_partial_email_hides_local_part_length(mode: str, expected: str) -> None:
    """E-mail partial masking shows the first character and three stars, with or without the domain."""
    assert mask("partial", "john.doe.long@example.com", "EMAIL", email=mode) == expected
    assert mask("partial", "j@example.com", "EMAIL", email=mode) == expected


def test_hash_is_deterministic_per_key() -> None:
    """hash gives equal outputs for equal inputs with one key and different ones with another key."""
    a = build_strategy("hash", "EMAIL", {}, CTX)
    b = build_strategy("hash", "EMAIL", {}, StrategyContext(b"other-key"))
    assert a("x@y.org") == a("x@y.org") != a("z@y.org")
    assert a("x@y.org") != b("x@y.org")
    assert re.fullmatch(r"hmac:[0-9a-f]{32}", a("x@y.org"))
    folded = build_strategy("hash", "EMAIL", {"normalize": "casefold"}, CTX)
    assert folded("Alice@X.com") == folded("alice@x.com")


def test_hash_key_comes_from_config_then_environment_then_process() -> None:
    """The HMAC key is taken from configuration, then GOVERNED_DB_MASKING_KEY, else one random key per process."""
    assert resolve_key(MaskingConfig(key=b"configured"), {KEY_ENV: "env"}) == b"configured"
    assert resolve_key(MaskingConfig(), {KEY_ENV: "from-env"}) == b"from-env"
    first = resolve_key(MaskingConfig(), {})
    assert first == resolve_key(MaskingConfig(), {}) and len(first) == 32
    assert load_config({"key": "text-key"}).key == b"text-key"


def test_tokenize_is_stable_and_vault_reverses_in_process() -> None:
    """tokenize yields TOK_<LABEL>_<base32>, stable per value; the vault maps tokens back in-process only."""
    ctx = StrategyContext(b"k")
    tok = build_strategy("tokenize", "EMAIL", {"vault": True}, ctx)
    t1 = tok("alice@example.com")
    assert re.fullmatch(r"TOK_EMAIL_[A-Z2-7]{16}", t1) and tok("alice@example.com") == t1
    assert detokenize(t1, ctx) == "alice@example.com"
    plain = build_strategy("tokenize", "EMAIL", {}, StrategyContext(b"k"))
    assert plain("alice@example.com") == t1


def test_format_preserving_keeps_length_and_classes() -> None:
    """format_preserving keeps length, digit/letter classes and separators, not the characters."""
    value = "Alice.Smith-42@example.com"
    outs = {mask("format_preserving", value) for _ in range(5)}
    for out in outs:
        assert len(out) == len(value)
        for a, b in zip(value, out, strict=True):
            assert a.isdigit() == b.isdigit() and a.isupper() == b.isupper() and a.islower() == b.islower()
            if not a.isalnum():
                assert a == b
    assert value not in outs and len(outs) > 1
    det = build_strategy("format_preserving", "PHONE", {"deterministic": True}, CTX)
    assert det("+1 415-555-2671") == det("+1 415-555-2671")
    assert len(str(mask("format_preserving", 123456, "ID"))) == 6


@pytest.mark.parametrize(
    ("value", "granularity", "expected"),
    [
        (dt.date(1984, 5, 12), "year", dt.date(1984, 1, 1)),
        (dt.date(1984, 5, 12), "month", dt.date(1984, 5, 1)),
        (dt.datetime(1984, 5, 12, 10, 30), "year", dt.datetime(1984, 1, 1)),
        ("1984-05-12", "year", "1984-01-01"),
        ("1984-05-12", "month", "1984-05-01"),
        ("not a date", "year", "[DATE_OF_BIRTH]"),
    ],
)
def test_generalize_dates(value: Any, granularity: str, expected: Any) -> None:
    """generalize keeps only the year or month (ISO text stays a full ISO date), and redacts what is not a date."""
    assert mask("generalize", value, "DATE_OF_BIRTH", granularity=granularity) == expected


def test_bucket_and_noise() -> None:
    """bucket floors to the bucket size; noise stays within the asked fraction; text is redacted."""
    assert mask("bucket", 37, "SALARY", size=10) == 30
    assert mask("bucket", 37.5, "SALARY", size=10) == 30.0
    assert mask("bucket", Decimal("1234.5"), "SALARY", size=100) == Decimal("1200.0")
    assert mask("bucket", "abc", "SALARY", size=10) == "[SALARY]"
    for _ in range(20):
        assert 95 <= mask("bucket", 100, "SALARY", noise=0.05) <= 105


def test_spans_replace_only_detected_parts() -> None:
    """spans replaces detected PII inside text and JSON, leaving the rest exactly."""
    assert mask("spans", "call me at alice@example.com today") == "call me at [EMAIL] today"
    assert mask("spans", "nothing to see here") == "nothing to see here"
    doc = {"note": "card 4111 1111 1111 1111", "n": 3, "tags": ["ok", "ip 192.168.1.20"]}
    assert mask("spans", doc) == {"note": "card [CREDIT_CARD]", "n": 3, "tags": ["ok", "ip [IP_ADDRESS]"]}


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("partial", {"email": "both"}),
        ("generalize", {"granularity": "day"}),
        ("bucket", {"size": 0}),
        ("hash", {"length": 4}),
        ("nope", {}),
    ],
)
def test_bad_options_are_configuration_errors(name: str, options: dict[str, Any]) -> None:
    """Invalid strategy names or options fail with a ConfigurationError saying what is allowed."""
    with pytest.raises(ConfigurationError):
        build_strategy(name, "EMAIL", options, CTX)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[EMAIL]", True),
        ("j***@example.com", True),
        ("***-**-6789", True),
        ("hmac:" + "a" * 32, True),
        ("TOK_EMAIL_ABCDEFGHIJKLMNOP", True),
        ("alice@example.com", False),
        ("Rated *** of 5 by users", False),
        ("", False),
    ],
)
def test_placeholders_are_recognised(value: str, expected: bool) -> None:
    """looks_masked recognises placeholders produced by strategies and nothing else."""
    assert looks_masked(value) is expected


@settings(max_examples=150, deadline=None)
@given(value=st.one_of(st.none(), st.text(max_size=30), st.emails(), st.integers(), st.binary(max_size=10)))
def test_inlined_row_function_matches_the_strategy(value: Any) -> None:
    """The per-row function's inlined fast paths give exactly what the strategies' own functions give."""
    from governed_db.masking.rows import compile_tuple_fn

    maskers = [
        build_strategy("partial", "EMAIL", {}, CTX),
        build_strategy("partial", "EMAIL", {"email": "hide_domain"}, CTX),
        build_strategy("redact", "US_SSN", {}, CTX),
        build_strategy("partial", "CREDIT_CARD", {"keep_last": 4}, CTX),
    ]
    row = compile_tuple_fn(maskers)((value,) * len(maskers))
    assert row == tuple(m(value) for m in maskers)
