"""One cache policy: bounded LRU by entries and by text weight, shared by every statement-keyed cache."""

from __future__ import annotations

import sqlite3

import governed_db
from governed_db._cache import LRU, STATEMENTS, memoize
from governed_db.masking.engine import state_for
from governed_db.sql.analysis import analyze


def test_lru_evicts_the_least_recently_used() -> None:
    """A read makes an entry recent: the untouched oldest one leaves first."""
    c: LRU[str, int] = LRU("t", maxsize=3)
    for k in "abc":
        c.put(k, ord(k))
    assert c.get("a") == ord("a")
    c.put("d", 4)
    assert "b" not in c and list(c) == ["c", "a", "d"]


def test_lru_bounds_total_weight() -> None:
    """Heavy entries push out old ones until the total weight fits; a replaced entry's weight is released."""
    c: LRU[str, str] = LRU("t", maxsize=100, maxweight=10)
    c.put("a", "x", 4)
    c.put("b", "x", 4)
    c.put("a", "y", 2)  # replacing: weight 2 instead of 4
    assert c.weight == 6
    c.put("c", "x", 5)
    assert list(c) == ["a", "c"] and c.weight == 7


def test_lru_size_zero_keeps_nothing() -> None:
    """A cache sized 0 stores nothing (caching turned off)."""
    c: LRU[str, int] = LRU("t", maxsize=0)
    c.put("a", 1)
    assert len(c) == 0 and c.get("a") is None


def test_memoize_computes_once_and_clears() -> None:
    """A memoized function runs once per argument tuple until cache_clear()."""
    calls = []

    @memoize("t", maxsize=2)
    def f(x: int) -> int:
        calls.append(x)
        return x * 2

    assert [f(1), f(1), f(2), f(1)] == [2, 2, 4, 2] and calls == [1, 2]
    f.cache_clear()  # type: ignore[attr-defined]
    f(1)
    assert calls == [1, 2, 1]


def test_analysis_cache_holds_a_working_set_of_4000_texts() -> None:
    """4,000 distinct texts cycled twice: the second pass is answered from the cache (same objects)."""
    texts = [f"SELECT a FROM t WHERE id = {i} AND b > {i}" for i in range(4000)]
    first = [analyze(t, "sqlite") for t in texts]
    assert all(analyze(t, "sqlite") is a for t, a in zip(texts, first, strict=True))


def test_analysis_cache_is_bounded_by_text_size() -> None:
    """Long statements cannot hold more than the character budget: the cache stays bounded."""
    cache = analyze.cache  # type: ignore[attr-defined]
    for i in range(300):
        analyze(f"SELECT a FROM t WHERE b = '{'x' * 10_000}{i}'", "sqlite")
    assert cache.weight <= cache.maxweight and len(cache) <= STATEMENTS


def test_statement_caches_share_one_size() -> None:
    """Decisions, lineage, plans and placeholder verdicts are sized from the one constant."""
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (id INTEGER, b TEXT)")  # an agent's DDL needs approval: made beforehand
    conn = governed_db.wrap(raw, identity=governed_db.Identity("a", kind="agent"), environment="production",
                            audit=False)
    conn.execute("SELECT id FROM t WHERE id = ?", (1,)).fetchall()
    gov = conn._self_gov
    state = state_for(gov)
    assert gov.policy._cache.maxsize == STATEMENTS
    assert state.facts.maxsize == STATEMENTS and state.memo.maxsize == 2 * STATEMENTS
    assert gov.driver.placeholder_verdicts.maxsize == STATEMENTS
