"""Properties of evaluate(): never raises on arbitrary input, deterministic, bounded on pathological text."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governed_db.policy import evaluate
from governed_db.policy.decision import Action
from governed_db.sql.analysis import analyze

DIALECTS = ("postgres", "mysql", "mariadb", "sqlite", "duckdb")
FRAGMENTS = st.sampled_from([
    "SELECT", "DELETE", "FROM", "t", "WHERE", "1=1", ";", "'", '"', "$$", "/*", "*/", "/*!", "--", "#", "\\",
    "E'", "(", ")", "DROP TABLE", "UPDATE", "SET", "x", "=", "WITH", "AS", "EXPLAIN ANALYZE", "\n", " ",
    "COPY", "PROGRAM", "INTO OUTFILE", "PRAGMA", "BEGIN", "SAVEPOINT", "`", "?", "%s", "\x00", "é",
])  # fmt: skip
SQLISH = st.lists(FRAGMENTS, max_size=25).map(" ".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(max_size=300), SQLISH), dialect=st.sampled_from(DIALECTS))
def test_evaluate_never_raises_and_is_deterministic(text: str, dialect: str) -> None:
    """Any text gives a decision, the same one twice, and an unparseable text is never allowed."""
    analyze.cache_clear()
    first = evaluate(text, dialect=dialect)
    analyze.cache_clear()
    second = evaluate(text, dialect=dialect)
    assert first.action is second.action and first.rules == second.rules
    if analyze(text, dialect).error is not None:
        assert not first.allowed


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=200), dialect=st.sampled_from(DIALECTS))
def test_evaluate_accepts_bytes(data: bytes, dialect: str) -> None:
    """Bytes (even invalid UTF-8) are decoded and judged, never crash."""
    assert isinstance(evaluate(data, dialect=dialect).action, Action)


@pytest.mark.parametrize(
    "text",
    [
        "SELECT " + "(" * 20_000 + "1" + ")" * 20_000,
        " UNION ".join(["SELECT 1"] * 10_000),
        "SELECT '" + "x" * 1_000_000 + "'",
        "SELECT 1;" * 5_000,
        "SELECT " + "+".join(["1"] * 60_000),
    ],
    ids=["deep-nesting", "10k-union", "megabyte", "5k-statements", "long-expression"],
)
def test_pathological_input_is_bounded_and_refused(text: str) -> None:
    """Pathological statements are decided within seconds, and never allowed in production."""
    start = time.perf_counter()
    d = evaluate(text, dialect="postgres")
    assert time.perf_counter() - start < 15
    assert not d.allowed


_NEUTRAL = st.sampled_from(["({})", "{} + 0", "0 + {}", "{} * 1", "1 * {}", "{} / 1", "- -{}", "0 - -{}", "{} - 0"])


@settings(max_examples=120, deadline=None)
@given(
    wraps=st.lists(_NEUTRAL, min_size=1, max_size=4),
    op=st.sampled_from(["=", ">=", "<=", "<=>"]),
    stmt=st.sampled_from(["DELETE FROM v WHERE {}", "UPDATE v SET a = 1 WHERE {}"]),
    dialect=st.sampled_from(["mysql", "mariadb", "postgres"]),
)
def test_disguised_self_comparison_never_allowed(wraps: list[str], op: str, stmt: str, dialect: str) -> None:
    """``id = <id under value-preserving arithmetic>`` (MySQL's id=0--id among them) is never allowed."""
    if op == "<=>" and dialect == "postgres":
        op = "="
    side = "id"
    for w in wraps:
        side = w.format(side)
    d = evaluate(stmt.format(f"id {op} {side}"), dialect=dialect)
    assert not d.allowed, (side, d.rules)
