"""sqlite3 specifics: executescript, backup/iterdump, row factories, the row cap, and unwrap() for C type checks."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db import GuardrailViolation, masking
from governed_db.policy import Policy
from governed_db.policy.decision import Action, RuleHit
from tests._interception_support import MARKER, POLICY, deny_marker, stub_plan_masking


@pytest.fixture(autouse=True)
def _stub_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mask the column ``pii`` only; the real masking is tested on its own."""
    monkeypatch.setattr(masking, "predicate_hit", lambda *a, **k: None)
    monkeypatch.setattr(masking, "plan_masking", stub_plan_masking)


@pytest.fixture
def raw() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE people (id INTEGER, pii TEXT)")
    conn.executemany("INSERT INTO people VALUES (?, ?)", [(i, f"user{i}@example.com") for i in range(1, 6)])
    conn.commit()
    yield conn
    conn.close()


@pytest.fixture
def conn(raw: sqlite3.Connection) -> Any:
    return governed_db.wrap(raw, environment="production", policy=POLICY)


def _limit_three(stmt: Any, ctx: Any) -> RuleHit | None:
    return RuleHit("cap", Action.LIMIT, "at most three rows", None, 3)


@pytest.mark.parametrize(
    "read",
    [
        lambda c: c.execute("SELECT * FROM people").fetchall(),
        lambda c: list(c.execute("SELECT * FROM people")),
        lambda c: c.execute("SELECT * FROM people").fetchmany(10),
        lambda c: [r for r in iter(c.execute("SELECT * FROM people").fetchone, None)],
    ],
    ids=["fetchall", "iteration", "fetchmany", "fetchone"],
)
def test_row_cap_applies_to_every_exit(raw: sqlite3.Connection, read: Any) -> None:
    """A LIMIT decision caps rows through fetchall, iteration, fetchmany and fetchone alike."""
    capped = governed_db.wrap(raw, environment="production", policy=Policy(rules=(_limit_three,)))
    assert len(read(capped)) == 3


def test_executescript_returns_the_governed_cursor_and_is_judged_whole(conn: Any) -> None:
    """executescript() on a cursor returns the proxy; one marker statement refuses the whole script."""
    cur = conn.cursor()
    assert cur.executescript("CREATE TABLE t2 (a); INSERT INTO t2 VALUES (1);") is cur
    with pytest.raises(GuardrailViolation):
        conn.executescript(f"INSERT INTO t2 VALUES (2); DELETE FROM {MARKER}x WHERE 1 = 1;")
    assert conn.execute("SELECT count(*) FROM t2").fetchone() == (1,)  # nothing of the refused script ran


def test_row_factory_rows_keep_their_type_and_are_masked(conn: Any) -> None:
    """conn.row_factory = sqlite3.Row is honoured on every cursor; masking still applies."""
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT id FROM people ORDER BY id").fetchone()
    assert isinstance(row, sqlite3.Row) and row["id"] == 1
    masked = conn.execute("SELECT id, pii FROM people ORDER BY id").fetchone()
    assert tuple(masked) == (1, "***")


def test_backup_to_a_governed_target_and_the_unwrap_answer(conn: Any, tmp_path: Any) -> None:
    """governed.backup(target) is judged; the C type check of raw.backup(governed) is answered by unwrap()."""
    target = governed_db.wrap(sqlite3.connect(tmp_path / "copy.db"), environment="production")
    conn.backup(target)
    assert governed_db.unwrap(target).execute("SELECT count(*) FROM people").fetchone() == (5,)
    plain = sqlite3.connect(":memory:")
    with pytest.raises(TypeError):
        plain.backup(target)  # sqlite3 checks the target's type in C
    plain.backup(governed_db.unwrap(target))  # the documented answer
    denied = governed_db.wrap(
        sqlite3.connect(":memory:"),
        environment="production",
        policy=Policy(rules=(lambda s, c: RuleHit("no-export", Action.DENY, "no exports") if s else None,)),
    )
    with pytest.raises(GuardrailViolation):
        denied.backup(sqlite3.connect(":memory:"))


def test_iterdump_is_judged_as_an_export(raw: sqlite3.Connection) -> None:
    """iterdump() emits every row as SQL text, so a rule refusing exports refuses it."""
    no_export = Policy(rules=(lambda s, c: RuleHit("no-vacuum-into", Action.DENY, "export") if s else None,))
    conn = governed_db.wrap(raw, environment="production", policy=no_export)
    with pytest.raises(GuardrailViolation):
        conn.iterdump()
    allowed = governed_db.wrap(raw, environment="production", policy=Policy(rules=(deny_marker,)))
    assert any("people" in line for line in allowed.iterdump())


def test_cursor_factory_cursors_are_governed(conn: Any) -> None:
    """conn.cursor(factory=...) is wrapped: statements judged, rows masked."""

    class MyCursor(sqlite3.Cursor):
        pass

    cur = conn.cursor(MyCursor)
    assert isinstance(cur, MyCursor)
    assert cur.execute("SELECT pii FROM people").fetchone() == ("***",)
    with pytest.raises(GuardrailViolation):
        cur.execute(f"SELECT * FROM {MARKER}x")


def test_with_connection_commits_and_returns_the_proxy(conn: Any, raw: sqlite3.Connection) -> None:
    """`with conn:` hands back the proxy and commits like sqlite3 does."""
    with conn as c:
        assert c is conn
        c.execute("INSERT INTO people VALUES (9, 'x@example.com')")
    assert raw.execute("SELECT count(*) FROM people").fetchone() == (6,)


def test_refusal_is_also_the_drivers_programming_error(conn: Any) -> None:
    """A refusal is catchable as sqlite3.ProgrammingError and as conn.DatabaseError."""
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute(f"SELECT * FROM {MARKER}x")
    with pytest.raises(conn.DatabaseError):
        conn.execute(f"SELECT * FROM {MARKER}x")


def test_serialize_and_deserialize_are_judged_as_export_and_replacement(raw: sqlite3.Connection) -> None:
    """serialize() is judged as VACUUM INTO and deserialize() as DROP SCHEMA: the default policy refuses both."""
    conn = governed_db.wrap(raw, environment="production")
    with pytest.raises(GuardrailViolation):
        conn.serialize()
    with pytest.raises(GuardrailViolation):
        conn.deserialize(raw.serialize())
    assert raw.execute("SELECT count(*) FROM people").fetchone() == (5,)
    allowed = governed_db.wrap(raw, environment="production", policy=POLICY)
    assert allowed.serialize()[:15] == b"SQLite format 3"


def test_blob_of_a_masked_column_is_refused(conn: Any) -> None:
    """blobopen() hands out a cell's bytes directly, so a masked column is refused; others are allowed."""
    conn.execute("CREATE TABLE files (id INTEGER PRIMARY KEY, body BLOB, pii BLOB)")
    conn.execute("INSERT INTO files VALUES (1, x'00ff', x'00ff')")
    with pytest.raises(GuardrailViolation, match="reads the cell directly"):
        conn.blobopen("files", "pii", 1, readonly=True)
    with conn.blobopen("files", "body", 1, readonly=True) as blob:
        assert blob.read() == b"\x00\xff"


def test_a_withheld_result_does_not_outlive_the_next_statement(
    conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows withheld after a masking fault stay withheld, but the cursor's next statement reads normally."""

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("classifier down")

    cur = conn.cursor()
    monkeypatch.setattr(masking, "plan_masking", broken)
    cur.execute("SELECT id, pii FROM people")
    with pytest.raises(governed_db.GovernanceFault):
        cur.fetchall()
    monkeypatch.setattr(masking, "plan_masking", stub_plan_masking)
    assert cur.execute("SELECT id, pii FROM people WHERE id = 1").fetchall() == [(1, "***")]


class _CountingLimiter:
    """A rate limiter that allows every statement and records the rows it is told about."""

    def __init__(self) -> None:
        self.rows: list[int] = []

    def on_statement(self, identity: Any, environment: Any) -> None:
        return None

    def on_rows(self, identity: Any, n: int, environment: str | None = None) -> None:
        self.rows.append(n)


@pytest.mark.parametrize(
    "read",
    [
        lambda cur: cur.fetchmany(2) + cur.fetchmany(2) + cur.fetchmany(2) + cur.fetchall(),
        lambda cur: [cur.fetchone() for _ in range(5)],
        lambda cur: list(cur) + cur.fetchall(),
    ],
    ids=["fetchmany", "fetchone", "iteration"],
)
def test_row_cap_holds_across_calls_when_rows_are_also_rate_counted(
    raw: sqlite3.Connection, read: Any
) -> None:
    """With a rate limiter counting rows, a LIMIT cap still holds across repeated fetches of one result."""
    limiter = _CountingLimiter()
    policy = Policy(rules=(_limit_three,), limiter=limiter)  # type: ignore[arg-type]
    capped = governed_db.wrap(raw, environment="production", policy=policy)
    rows = [r for r in read(capped.execute("SELECT * FROM people")) if r is not None]
    assert len(rows) == 3
    assert sum(limiter.rows) == 3
