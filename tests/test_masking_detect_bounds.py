"""Detection time is bounded by the value's size (decision 0434): long digit-heavy values (an array literal of phone
numbers, pg_stats' most common values) are scanned in about linear time, and what is not parsed is masked, never
leaked; a statement the policy refuses is refused before masking reads (and classifies) what it names."""

from __future__ import annotations

import re
from typing import Any

import pytest

import governed_db
from bench.bench_detect_bounds import _phone_array
from governed_db.errors import GuardrailViolation
from governed_db.identity import Identity
from governed_db.masking import detect, engine, recognizers

AGENT = Identity("pgs-bot", kind="agent")




def test_phones_past_the_parsed_head_are_masked_not_leaked() -> None:
    """Every phone of a 100 kB array literal is masked, those past what phonenumbers parses included."""
    text = _phone_array(100_000)
    assert len(text) > 10 * recognizers.PHONE_PARSE_CHARS
    masked = detect.replace_spans(text, detect.find_spans(text))
    assert re.search(r"\d{3}-555-\d{4}", masked) is None
    assert masked.count("[") == text.count('"') // 2


def test_short_values_are_parsed_as_before() -> None:
    """Under the cap nothing changes: a phone is found, an order number and a version are left alone."""
    assert [s.label for s in detect.find_spans("call +44 20 7946 0958 today")] == ["PHONE"]
    assert detect.find_spans("order 4155550142 shipped") == []
    assert detect.find_spans("Chrome/93.0.1001.155") == []


@pytest.mark.postgres
def test_refused_pg_stats_read_never_samples_pg_stats(pg_conn: Any, unique: str, monkeypatch: Any) -> None:
    """``SELECT most_common_vals::text FROM pg_stats`` by an agent is refused by the policy before masking samples
    and classifies pg_stats (minutes of phone parsing before); a read of the table itself is still masked."""
    table = f"pgs_stats_{unique}"
    phones = [f"+1 415-555-{100 + i % 40:04d}" for i in range(400)]
    with pg_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, phone text)")
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", list(enumerate(phones)))
        cur.execute(f"ANALYZE {table}")
    classified: list[str] = []
    real = engine.classify_sample

    def spy(key: str, column: str, *args: Any, **kwargs: Any) -> Any:
        classified.append(key)
        return real(key, column, *args, **kwargs)

    monkeypatch.setattr(engine, "classify_sample", spy)
    try:
        conn = governed_db.wrap(pg_conn, identity=AGENT, environment="production", audit=False)
        cur = conn.cursor()
        for sql in (
            f"SELECT most_common_vals::text FROM pg_stats WHERE tablename = '{table}'",
            f"SELECT most_common_vals FROM pg_stats WHERE tablename = '{table}'",
        ):
            with pytest.raises(GuardrailViolation) as refused:
                cur.execute(sql)
            assert "system-catalog" in refused.value.decision.rules
            assert "415-555" not in str(refused.value)
        assert not [k for k in classified if "pg_stats" in k]
        # the look-alike: the table's own phones are read masked (masking still judges what the policy allows)
        cur.execute(f"SELECT id, phone FROM {table} ORDER BY id")
        rows = cur.fetchall()
        assert len(rows) == 400 and all("415-555" not in str(r[1]) for r in rows)
        with pytest.raises(GuardrailViolation):
            cur.execute(f"SELECT id FROM {table} WHERE phone = '+1 415-555-0100'")
    finally:
        with pg_conn.cursor() as raw:
            raw.execute(f"DROP TABLE IF EXISTS {table}")
