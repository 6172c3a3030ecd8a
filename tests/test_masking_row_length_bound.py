"""SQLite: an UPDATE copying another column is bounded by that column's longest stored value (decision 0413).

Under SQLite's default length limit (10^9 bytes) an UPDATE whose value its text does not bound ran (a copy of a
staging column is everyday work). An agent could build a long value in a table of its own by bounded writes, then
``UPDATE customers SET city = substr(s.big, 1, K) FROM stage s ...`` beside masked values: whether it failed
(``string or blob too big``) told their total length, found by a search on ``K``. A copied column now counts its
longest stored value, read when the statement runs; past ``limit / (2 * columns)`` the write is refused alike for
every row, and short copies (round 16's ``UPDATE ... FROM``, round 21's ``upper(remark)``) run.

The limit is lowered to 4,000 bytes on the raw connection (as the application may) to keep the search fast. At the
default limit the oracle needs a value of about 10^9 bytes, which took SQLite ~12 s to store and ~50 s per probe
in memory on this machine (and masking's sample of a staged table classifies the value again at each statement:
minutes for 100 MB), so the default-limit test gives the length the driver reads (100 MB, past the 71 MB a copy
may give a row of seven columns there) and checks the copy is refused, where it ran before; the driver's read of a
real 100 MB value is checked apart.
"""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace
from typing import Any

import pytest

import governed_db
from tests._redteam import govern
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, ANNA, _no_clear_value, _sqlite

LENGTH = sqlite3.SQLITE_LIMIT_LENGTH
STAGE = "CREATE TABLE stage (id INTEGER PRIMARY KEY, big TEXT, small TEXT, n INTEGER)"


def _seen(raw: sqlite3.Connection, sql: str, governed: bool) -> Any:
    conn = govern(raw, ATTACKER) if governed else raw
    try:
        conn.execute(sql)
        seen: Any = "ran"
    except governed_db.GuardrailViolation as e:
        seen = f"refused: {e}"
    except sqlite3.Error as e:
        seen = f"{type(e).__name__}: {e}"
    after = raw.execute("SELECT city FROM customers WHERE id = 1").fetchone()
    return seen, (after[0][:20], len(after[0])) if after and after[0] else after


def _staged(secret: tuple[Any, ...], big: int, limit: int | None = 4000, setup: tuple[str, ...] = ()) -> Any:
    """customers (``secret`` in row 1) beside the agent's staging table, whose ``big`` it filled by writes of its
    own (an INSERT of its values, then an append: stage keeps no masked value, so neither is judged by length)."""
    raw = _sqlite(secret)
    if limit is not None:
        raw.setlimit(LENGTH, limit)
    raw.execute(STAGE)
    agent = govern(raw, ATTACKER)
    agent.execute("INSERT INTO stage VALUES (1, ?, 'abc', 5)", ("x" * (big - 1),))
    agent.execute("UPDATE stage SET big = big || 'x' WHERE id = 1")  # stage keeps no masked value: runs
    assert raw.execute("SELECT length(big) FROM stage").fetchone() == (big,)
    for sql in setup:
        raw.execute(sql)
    return raw


COPY = "UPDATE customers SET city = {v} FROM stage s WHERE customers.id = 1 AND s.id = 1"

#: copies of the staged value bounded by it: each K-byte prefix is the oracle the raw connection answers
BOUNDED_BY_SOURCE = [
    "substr(s.big, 1, {k})",
    "substr(s.big, 1, {k}) || ''",
    "upper(substr(s.big, 1, {k}))",
    "coalesce(substr(s.big, 1, {k}), 'x')",
    "CAST(substr(s.big, 1, {k}) AS TEXT)",
    "substr(s.big || s.small, 1, {k})",
]


def _oracle(value: str) -> int:
    """The K at which the copy fails over ALICE's row and runs over ANNA's (raw connections, limit 4,000)."""
    pair = [_staged(s, 3990) for s in (ALICE, ANNA)]
    try:
        for k in range(3850, 3990):
            sql = COPY.format(v=value.format(k=k))
            seen = [_seen(raw, sql, governed=False)[0] for raw in pair]
            for raw in pair:
                raw.execute("UPDATE customers SET city = 'Paris' WHERE id = 1")
            if seen[0] != seen[1]:
                return k
    finally:
        for raw in pair:
            raw.close()
    raise AssertionError("the oracle found no length that tells the rows apart")


def test_a_copy_of_a_long_staged_value_tells_no_length() -> None:
    """A copy of the staged value (a prefix of K bytes, found by a search) failed over ALICE's row and ran over
    ANNA's; governed, each copy of it is refused alike for both, names the masked columns, and writes nothing."""
    k = _oracle(BOUNDED_BY_SOURCE[0])
    pair = [_staged(s, 3990) for s in (ALICE, ANNA)]
    try:
        for value in BOUNDED_BY_SOURCE:
            seen = [_seen(raw, COPY.format(v=value.format(k=k)), governed=True) for raw in pair]
            assert seen[0] == seen[1], seen
            assert seen[0][0].startswith("refused: ") and "customers.ssn" in seen[0][0], seen
            assert seen[0][1] == ("Paris", 5), seen
            _no_clear_value(seen)
    finally:
        for raw in pair:
            raw.close()


#: values whose length no stored column bounds (or whose source cannot be read safely): refused as before
UNBOUNDED = [
    "replace(s.small, 'a', s.big)",
    "hex(s.small)",
    "printf('%.*c', s.n, 'x')",
    "zeroblob(s.n)",
    "randomblob(s.n)",
    "(SELECT small FROM stage)",
    "s.small || hex(s.small)",
]


@pytest.mark.parametrize("value", UNBOUNDED)
@pytest.mark.parametrize("limit", [4000, None], ids=["lowered", "default"])
def test_values_no_column_bounds_are_refused(value: str, limit: int | None) -> None:
    """replace(), hex(), printf()/zeroblob()/randomblob() of a column, a subquery: refused under either limit."""
    raw = _staged(ALICE, 10, limit=limit)
    seen = _seen(raw, COPY.format(v=value), governed=True)
    assert seen[0].startswith("refused: ") and "a length its text does not bound" in seen[0], seen
    assert seen[1] == ("Paris", 5)
    raw.close()


#: sources that name a short table but read another: a CTE, a view, a temporary table, a subquery in FROM
SHADOWED = [
    ("WITH stage AS (SELECT 1 AS id, big FROM bigs) UPDATE customers SET city = s.big FROM stage s "
     "WHERE customers.id = 1 AND s.id = 1", ()),
    ("UPDATE customers SET city = s.big FROM v s WHERE customers.id = 1 AND s.id = 1",
     ("CREATE VIEW v AS SELECT 1 AS id, big FROM bigs",)),
    ("UPDATE customers SET city = s.big FROM stage s WHERE customers.id = 1 AND s.id = 1",
     ("CREATE TEMP TABLE stage (id INTEGER PRIMARY KEY, big TEXT)", "INSERT INTO temp.stage SELECT 1, big FROM bigs")),
    ("UPDATE customers SET city = s.big FROM (SELECT 1 AS id, big FROM bigs) s WHERE customers.id = 1 AND s.id = 1",
     ()),
    ("UPDATE customers SET city = s.g FROM gen s WHERE customers.id = 1 AND s.id = 1",
     ("CREATE TABLE gen (id INTEGER PRIMARY KEY, g TEXT GENERATED ALWAYS AS (printf('%.*c', 3000, 'x')))",
      "INSERT INTO gen(id) VALUES (1)")),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "setup"), SHADOWED, ids=["cte", "view", "temp", "subquery", "generated"])
def test_sources_that_are_not_the_stored_column_are_refused(sql: str, setup: tuple[str, ...]) -> None:
    """The bound is read from the stored column the name resolves to; a name that may read something else (a CTE or
    a temporary table of the same name, a view, a generated column) is not measured but refused."""
    raw = _staged(ALICE, 10, setup=("CREATE TABLE bigs (big TEXT)", "INSERT INTO bigs VALUES (printf('%.*c', 3000, 'x'))",
                                    *setup))  # fmt: skip
    seen = _seen(raw, sql, governed=True)
    assert seen[0].startswith("refused: "), seen
    assert seen[1] == ("Paris", 5)
    raw.close()


def test_a_masked_source_is_not_measured() -> None:
    """A copy of a masked column is judged without its length (its longest value would be the answer)."""
    raw = _staged(ALICE, 10, limit=None)
    seen = _seen(raw, "UPDATE customers SET city = c.email FROM customers c WHERE customers.id = 1 AND c.id = 2", True)
    assert seen[0].startswith("refused: "), seen
    raw.close()


def test_a_copy_past_the_bound_is_refused_at_the_default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the default limit (10^9 bytes) a copy of a staged value longer than the 71 MB a copy may give a row of
    seven columns is refused (it ran before, decision 0413), and a copy of a short column of it runs. The length is
    what the driver reads (checked on a real 100 MB value below): masking samples a staged table again at each
    statement, and classifying a 100 MB value takes minutes, so the value read is given here."""
    from governed_db.drivers.sqlite import SqliteDriver

    real = SqliteDriver.longest_value
    monkeypatch.setattr(
        SqliteDriver, "longest_value",
        lambda self, gov, table, column: 100_000_000 if column == "big" else real(self, gov, table, column),
    )  # fmt: skip
    raw = _staged(ALICE, 10, limit=None)
    try:
        seen = _seen(raw, COPY.format(v="substr(s.big, 1, 100000000)"), governed=True)
        assert seen[0].startswith("refused: ") and "SQLITE_LIMIT_LENGTH, 1000000000" in seen[0], seen
        assert "customers.ssn" in seen[0] and seen[1] == ("Paris", 5), seen
        assert _seen(raw, COPY.format(v="s.small"), governed=True) == ("ran", ("abc", 3))
    finally:
        raw.close()


def test_the_longest_value_is_read_from_the_stored_column() -> None:
    """The driver reads a blob's bytes from its header (a 100 MB value, at once) and a text's bytes (not characters);
    a view, a generated column or a name two schemas hold is not read."""
    from governed_db.drivers.sqlite import SqliteDriver

    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE s (id INTEGER PRIMARY KEY, b BLOB, t TEXT, g TEXT GENERATED ALWAYS AS (t || t))")
    raw.execute("INSERT INTO s(id, b, t) VALUES (1, zeroblob(100000000), 'Nîmes'), (2, x'00', NULL)")
    raw.execute("CREATE VIEW v AS SELECT t FROM s")
    gov = SimpleNamespace(raw=raw)  # the driver reads through the governor's raw connection
    try:
        d = SqliteDriver()
        assert d.longest_value(gov, ("s",), "b") == 100_000_000
        assert d.longest_value(gov, ("main", "s"), "t") == 6
        assert d.longest_value(gov, ("v",), "t") is None
        assert d.longest_value(gov, ("s",), "g") is None
        raw.execute("CREATE TEMP TABLE s (t TEXT)")
        assert d.longest_value(gov, ("s",), "t") is None
        assert d.longest_value(gov, ("temp", "s"), "t") == 0
    finally:
        raw.close()


#: innocent copies of short stored values: run under the lowered and the default limit, writing what was asked
INNOCENT = [
    (COPY.format(v="s.small"), "abc"),
    (COPY.format(v="upper(s.small) || '-' || s.small"), "ABC-abc"),
    (COPY.format(v="coalesce(s.small, customers.city)"), "abc"),
    ("UPDATE customers SET city = city || s.small FROM stage s WHERE customers.id = 1 AND s.id = 1", "Parisabc"),
    ("UPDATE customers SET city = small FROM stage WHERE customers.id = 1 AND stage.id = 1", "abc"),
    ("UPDATE customers SET city = upper(phone) WHERE id = 1", None),
]


@pytest.mark.parametrize(("sql", "expected"), INNOCENT, ids=range(len(INNOCENT)))
@pytest.mark.parametrize("limit", [4000, None], ids=["lowered", "default"])
def test_short_copies_run(sql: str, expected: str | None, limit: int | None) -> None:
    """Copies of short clear columns (of the staging table or the row itself) run as raw: before, they were refused
    under a lowered limit (no bound shown). ``upper(phone)`` copies a masked column: refused as before."""
    raw = _staged(ALICE, 10, limit=limit)
    seen = _seen(raw, sql, governed=True)
    if expected is None:
        assert seen[0].startswith("refused: "), seen
    else:
        assert seen == ("ran", (expected, len(expected))), seen
    raw.close()


def test_round_16_and_21_look_alikes_run() -> None:
    """Round 16's ``UPDATE t SET status = s.status FROM s`` and round 21's ``SET city = upper(remark)`` are covered by
    their own tests (tests/test_overrefusal_r16.py, tests/test_redteam_masking_r21_blind.py); here under a lowered
    limit, where they were refused before."""
    raw = _sqlite(ALICE)
    raw.setlimit(LENGTH, 4000)
    raw.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT, remark TEXT)")
    raw.execute("CREATE TABLE st (id INTEGER PRIMARY KEY, status TEXT)")
    raw.executemany("INSERT INTO orders VALUES (?, 'new', 'call back Tuesday')", [(i,) for i in range(1, 4)])
    raw.executemany("INSERT INTO st VALUES (?, 'shipped')", [(i,) for i in range(1, 4)])
    conn = govern(raw, ATTACKER)
    try:
        conn.execute("UPDATE customers SET city = s.status FROM st s WHERE customers.id = s.id")
        conn.execute("UPDATE orders SET status = upper(remark) WHERE id = 1")
        assert raw.execute("SELECT city FROM customers WHERE id = 2").fetchone() == ("shipped",)
        assert raw.execute("SELECT status FROM orders WHERE id = 1").fetchone() == ("CALL BACK TUESDAY",)
    finally:
        conn.close()
