"""Write-back checks over many parameters: resolved once per statement, same verdicts as value by value."""

from __future__ import annotations

import sqlite3

import pytest

import governed_db
from governed_db.masking import strategies
from governed_db.masking.strategies import any_looks_masked, looks_masked, output_checks

PLACEHOLDERS = ["[EMAIL]", "hmac:0123abcd", "TOK_EMAIL_ABCDEFGHIJKLMNOP", "j***@example.com", "***-**-1234"]
PLAIN = ["alice@example.com", "123-45-6789", "street 1", "", "a*b", "note ***"]


@pytest.mark.parametrize("value", PLACEHOLDERS + PLAIN)
def test_any_looks_masked_agrees_with_looks_masked(value: str) -> None:
    """The batch check finds exactly the placeholders the single-value check finds."""
    assert any_looks_masked(["plain", value, 3, None]) == looks_masked(value)


def test_output_checks_are_resolved_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first resolution no strategy module is looked up again, however many values are checked."""
    output_checks()

    def boom(name: str) -> None:
        raise AssertionError(f"strategy {name} resolved per value")

    monkeypatch.setattr(strategies, "strategy_module", boom)
    assert any_looks_masked(["x"] * 1000 + ["[SSN]"])
    assert not any_looks_masked(PLAIN * 100)


def test_executemany_refuses_a_placeholder_in_any_row() -> None:
    """A masked placeholder in row 9,999 of 10,000 refuses the whole executemany; the table stays empty."""
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE a (name TEXT, email TEXT, city TEXT, note TEXT)")
    # a person's load job (agents are also bounded in how many rows one statement may change)
    conn = governed_db.wrap(raw, identity=governed_db.Identity("etl-owner", kind="human"), environment="production",
                            audit=False)
    rows = [(f"n{i}", f"u{i}@example.com", "c", "x") for i in range(10_000)]
    rows[9_998] = ("n", "j***@example.com", "c", "x")
    with pytest.raises(governed_db.GuardrailViolation) as err:
        conn.cursor().executemany("INSERT INTO a VALUES (?, ?, ?, ?)", rows)
    assert "masked-value-write" in err.value.decision.rules
    assert raw.execute("SELECT count(*) FROM a").fetchone() == (0,)
    conn.cursor().executemany("INSERT INTO a VALUES (?, ?, ?, ?)", rows[:9_998])
    assert raw.execute("SELECT count(*) FROM a").fetchone() == (9_998,)
