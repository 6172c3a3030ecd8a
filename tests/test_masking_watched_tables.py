"""Labels that would go stale: a settled table the sample read whole is watched, a table whose catalog read failed
is blind (decisions 0268, 0269).

A table sampled with ``FEW_ROWS`` or more rows but fewer than ``sample_rows`` was settled for good: twelve rows of
``'n/a'`` made ``info`` innocent, and SSNs another connection stored there later came back in clear and could be
filtered on. Now the values of its clear text columns are remembered: a value outside them is scanned as it
passes (and has the table classified again), and a statement that filters on such a column, or returns it
computed, has the table probed first. Each leak test shows the oracle on the raw connection and the governed
connection answering a right and a wrong guess alike; the look-alikes (an unchanged or innocently growing table)
keep their exact answers, and the point read by key reads nothing from the catalog.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db.masking import engine, schema
from tests.test_masking_noninterference import ATTACKER

SECRETS = ("536-22-8726", "412-77-9002")  # two well-formed SSNs: a right and a wrong guess of one another


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts masking's catalog reads (columns, sample, probe)."""
    seen: Counter[str] = Counter()
    for name in ("read_columns", "sample", "sample_columns"):
        real = getattr(schema, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            seen[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(schema, name, spy)
    return seen


def _observe(run: Callable[[str], Any], statements: list[str]) -> list[Any]:
    seen: list[Any] = []
    for sql in statements:
        try:
            seen.append(("rows", repr(run(sql))))
        except governed_db.GuardrailViolation as refused:
            seen.append(("refused", str(refused)))
        except Exception as e:
            seen.append(("error", type(e).__name__, str(e)))
    return seen


def _placeholders(path: Path) -> sqlite3.Connection:
    """The application's connection to a table of 12 placeholder rows (settled, read whole by the sample)."""
    app = sqlite3.connect(path, isolation_level=None)
    app.execute("CREATE TABLE p (id integer primary key, info text, n int)")
    app.executemany("INSERT INTO p VALUES (?, 'n/a', ?)", [(i, i) for i in range(1, 13)])
    return app


ARRIVE = {
    "insert": "INSERT INTO p VALUES (13, ?, 13)",
    "update": "UPDATE p SET info = ? WHERE id = 5",  # no row more: only the values say it changed
}
AFTER = [
    "SELECT count(*) FROM p WHERE info LIKE '536-22-87%'",
    "SELECT id FROM p WHERE info = '536-22-8726'",
    "SELECT id FROM p ORDER BY info DESC, id LIMIT 1",
    "SELECT reverse(info) AS r FROM p WHERE id IN (5, 13)",
    "SELECT substr(info, 1, 3) AS s FROM p WHERE id IN (5, 13)",
    "SELECT info FROM p WHERE id IN (5, 13)",
]


def _arrival(path: Path, secret: str, how: str, governed: bool) -> list[Any]:
    app = _placeholders(path)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.create_function("reverse", 1, lambda v: v[::-1] if isinstance(v, str) else v)
    conn = governed_db.wrap(raw, identity=ATTACKER, environment="production", audit=False) if governed else raw

    def run(sql: str) -> Any:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()

    seen = _observe(run, ["SELECT id, info FROM p WHERE id = 1", "SELECT count(*) FROM p WHERE info = 'n/a'"])
    app.execute(ARRIVE[how], (secret,))
    seen += _observe(run, AFTER)
    conn.close()
    app.close()
    return seen


@pytest.mark.parametrize("how", sorted(ARRIVE))
def test_pii_arriving_in_a_settled_small_table_is_neither_filtered_nor_returned(how: str, tmp_path: Path) -> None:
    """Before: 'n/a' x 12 settled ``info`` for good; an SSN stored later (a new row, or an update of a placeholder)
    was an oracle for ``WHERE info LIKE ...`` and came back in clear, plain or reversed."""
    raw = [_arrival(tmp_path / f"raw{i}.db", s, how, governed=False) for i, s in enumerate(SECRETS)]
    assert raw[0][2] != raw[1][2] and raw[0][2] == ("rows", "[(1,)]"), raw  # the oracle, unprotected
    a, b = (_arrival(tmp_path / f"gov{i}.db", s, how, governed=True) for i, s in enumerate(SECRETS))
    assert a == b, (a, b)
    assert a[0] == ("rows", "[(1, 'n/a')]") and a[1] == ("rows", "[(12,)]"), a  # the placeholders, exact
    for seen in a[2:5]:
        assert seen[0] == "refused" and "masked-column-predicate" in seen[1] and "p.info" in seen[1], seen
    rows = repr([seen for seen in a if seen[0] == "rows"])  # (the refusals quote the statement's own literal)
    assert not any(part in rows for part in ("536", "412", "8726", "6278", "9002", "2009")), a
    assert "[US_SSN]" in a[-1][1], a


def _innocent(path: Path, run_after: list[str], arrive: list[tuple[Any, ...]]) -> list[Any]:
    app = _placeholders(path)
    conn = governed_db.wrap(sqlite3.connect(path, isolation_level=None), identity=ATTACKER,
                            environment="production", audit=False)

    def run(sql: str) -> Any:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()

    seen = _observe(run, ["SELECT info FROM p WHERE id = 1"])
    app.executemany("INSERT INTO p VALUES (?, ?, ?)", arrive)
    seen += _observe(run, run_after)
    conn.close()
    app.close()
    return seen


def test_innocent_values_arriving_in_a_watched_table_read_and_filter_exactly(tmp_path: Path) -> None:
    """The look-alike: new innocent values (words, a version number, a date) come back exact, and filters, orders
    and expressions on the watched column answer as the raw connection does once the probe saw them."""
    arrive = [(13, "pending", 13), (14, "v 10.4.2", 14), (15, "2026-12-06", 15)]
    after = [
        "SELECT id, info FROM p WHERE id > 11 ORDER BY id",
        "SELECT count(*) FROM p WHERE info LIKE 'pen%'",
        "SELECT id FROM p ORDER BY info DESC, id LIMIT 2",
        "SELECT upper(info) FROM p WHERE id = 13",
        "SELECT count(*) FROM p WHERE info = 'n/a'",
    ]
    seen = _innocent(tmp_path / "g.db", after, arrive)
    assert seen == [
        ("rows", "[('n/a',)]"),
        ("rows", "[(12, 'n/a'), (13, 'pending'), (14, 'v 10.4.2'), (15, '2026-12-06')]"),
        ("rows", "[(1,)]"),
        ("rows", "[(14,), (13,)]"),
        ("rows", "[('PENDING',)]"),
        ("rows", "[(12,)]"),
    ], seen


def test_an_unchanged_watched_table_costs_a_probe_per_filter_and_nothing_per_point_read(
    tmp_path: Path, calls: Counter[str]
) -> None:
    """The point read by key (no use of a watched column but returning it) reads nothing from the catalog; a filter
    on the watched column reads the probe only (one bounded query), never the catalog or the sample again."""
    app = _placeholders(tmp_path / "g.db")
    gov = governed_db.wrap(sqlite3.connect(tmp_path / "g.db", isolation_level=None), identity=ATTACKER,
                           environment="production", audit=False)
    cur = gov.cursor()
    cur.execute("SELECT id, info FROM p WHERE id = ?", (1,))
    assert cur.fetchall() == [(1, "n/a")]
    info = gov.governor.masking_state.tables["p"]  # type: ignore[union-attr]
    assert info.watch == {"info": frozenset({"n/a"})} and not info.provisional and info.probe is not None
    calls.clear()
    for i in range(1, 13):
        cur.execute("SELECT id, info FROM p WHERE id = ?", (i,))
        assert cur.fetchall() == [(i, "n/a")]
    assert calls == Counter()
    for _ in range(5):
        cur.execute("SELECT count(*) FROM p WHERE info = ?", ("n/a",))
        assert cur.fetchall() == [(12,)]
    assert calls == Counter({"sample_columns": 5})
    gov.close()
    app.close()


def test_a_table_read_only_in_part_by_the_sample_is_not_watched(tmp_path: Path) -> None:
    """A table with more rows than the sample reads was classified from a sample, not from all it held: not watched
    (no per-value work on its reads), as before."""
    path = tmp_path / "big.db"
    app = sqlite3.connect(path, isolation_level=None)
    app.execute("CREATE TABLE items (id integer primary key, name text)")
    app.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"item {i}") for i in range(150)])
    gov = governed_db.wrap(sqlite3.connect(path, isolation_level=None), identity=ATTACKER,
                           environment="production", audit=False)
    assert gov.execute("SELECT name FROM items WHERE id = 3").fetchall() == [("item 3",)]
    assert gov.governor.masking_state.tables["items"].watch is None  # type: ignore[union-attr]
    gov.close()
    app.close()


def test_aiosqlite_probes_a_watched_table_before_a_filter(tmp_path: Path) -> None:
    """The async warm-up probes a watched table with ``await`` before a statement that filters on its watched
    column, and samples it again when it changed: both guesses refused alike after another connection's insert."""
    aiosqlite = pytest.importorskip("aiosqlite")
    path = tmp_path / "a.db"
    app = _placeholders(path)

    async def main() -> list[Any]:
        raw = await aiosqlite.connect(path, isolation_level=None)
        gov = governed_db.wrap(raw, identity=ATTACKER, environment="production", audit=False)
        seen: list[Any] = []

        async def run(sql: str) -> Any:
            try:
                cur = await gov.execute(sql)
                return await cur.fetchall()
            except governed_db.GuardrailViolation as e:
                # the message quotes the statement's own literal: compared without it
                return ("refused", "p.info" in str(e), str(e).replace(SECRETS[0], "?").replace(SECRETS[1], "?"))

        try:
            seen.append(await run("SELECT count(*) FROM p WHERE info = 'n/a'"))
            app.execute("INSERT INTO p VALUES (13, ?, 13)", (SECRETS[0],))
            for guess in ("'536-22-8726'", "'412-77-9002'"):
                seen.append(await run(f"SELECT count(*) FROM p WHERE info = {guess}"))
            seen.append(await run("SELECT info FROM p WHERE id = 13"))
        finally:
            await raw.close()
        return seen

    out = asyncio.run(main())
    assert out[0] == [(12,)] and out[1] == out[2] and out[1][:2] == ("refused", True), out
    assert out[3] == [("[US_SSN]",)], out
    app.close()


# -- a catalog read that failed (decision 0269) ---------------------------------------------------------------
def _failing_catalog(secret: str, governed: bool, heal_after: int | None = None) -> list[Any]:
    """The application's deadline (a progress handler set before ``wrap()``) interrupts every read of
    ``pragma_table_info`` — masking's catalog read — until ``heal_after`` statements ran."""
    raw = sqlite3.connect(":memory:", isolation_level=None)
    raw.execute("CREATE TABLE v (id int, info text)")
    raw.executemany("INSERT INTO v VALUES (?, ?)", [(1, secret)] + [(i, f"219-45-{1000 + i}") for i in range(2, 20)])
    state = {"trip": False, "statements": 0}

    def trace(sql: str) -> None:
        state["trip"] = "pragma_table_info" in sql and (heal_after is None or state["statements"] < heal_after)

    def deadline() -> int:
        # interrupts the catalog read at its first step, and only it: masking may read the catalog again while the
        # application's own statement is between steps (after it ran, before its rows are fetched)
        tripped, state["trip"] = state["trip"], False
        return 1 if tripped else 0

    raw.set_trace_callback(trace)
    raw.set_progress_handler(deadline, 1)
    conn = governed_db.wrap(raw, identity=ATTACKER, environment="production", audit=False) if governed else raw
    steps = [
        "SELECT info FROM v",
        "SELECT count(*) FROM v WHERE info LIKE '5%'",
        "SELECT count(*) FROM v WHERE id > 10",
        "SELECT id FROM v ORDER BY info LIMIT 1",
        "SELECT count(*) FROM v WHERE info LIKE '5%'",
        "SELECT count(*) FROM v WHERE id > 10",
    ]
    seen = []
    for sql in steps:
        seen += _observe(lambda s: conn.execute(s).fetchall(), [sql])
        state["statements"] += 1
    conn.close()
    return seen


def test_a_table_whose_catalog_cannot_be_read_decides_no_rows() -> None:
    """Every catalog read of ``v`` fails: its values are scanned, and none of its columns may decide rows (``id``
    either: nothing says which column is which), with a refusal that says what failed and to run the statement
    again; the two secrets are answered alike."""
    raw = [_failing_catalog(s, governed=False) for s in SECRETS]
    assert raw[0][1] != raw[1][1], raw
    a, b = (_failing_catalog(s, governed=True) for s in SECRETS)
    assert a == b, (a, b)
    assert a[0][0] == "rows" and a[0][1].count("[US_SSN]") == 19, a
    for seen in a[1:]:
        assert seen[0] == "refused" and "could not be read from the catalog" in seen[1], seen
        assert "run the statement again" in seen[1], seen
    assert "536" not in repr(a) and "412" not in repr(a)


def test_a_table_whose_catalog_read_succeeds_again_is_judged_by_its_labels() -> None:
    """The look-alike: the deadline trips on the first statements only; the statement run again (the refusal's
    advice) reads the catalog first and is judged by the labels: ``id`` filters exactly, ``info`` is refused as
    a masked column."""
    a, b = (_failing_catalog(s, governed=True, heal_after=3) for s in SECRETS)
    assert a == b, (a, b)
    assert a[1][0] == "refused" and "could not be read from the catalog" in a[1][1], a
    assert a[3][0] == "refused" and "could not be read" not in a[3][1] and "v.info" in a[3][1], a
    assert a[4][0] == "refused" and "masked column(s) v.info" in a[4][1], a
    assert a[5] == ("rows", "[(9,)]"), a


def test_an_empty_catalog_answer_is_no_failure() -> None:
    """A table the catalog does not list (a typo) is no failed read: the database's own error comes back."""
    conn = governed_db.wrap(sqlite3.connect(":memory:"), identity=ATTACKER, environment="production", audit=False)
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        conn.execute("SELECT id FROM nosuch WHERE id = 1")
    conn.close()


def test_watched_values_that_cannot_be_hashed_are_scanned() -> None:
    """A watched value that cannot be kept in a set is scanned as it passes rather than failing the read."""
    assert engine._seen(["a", None, ["x"]]) == frozenset({"a"})  # type: ignore[list-item]


def test_an_export_of_a_watched_column_is_checked_at_the_source(pg_dsn: str, unique: str) -> None:
    """``COPY ... TO`` cannot be scanned on its way out (PostgreSQL): a watched column exports while its table holds
    what it was classified from, and is refused once an SSN arrived (classified again first)."""
    import psycopg

    table = f"stale_w_{unique}"
    app = psycopg.connect(pg_dsn, autocommit=True)
    gov = governed_db.wrap(psycopg.connect(pg_dsn, autocommit=True), identity=ATTACKER, environment="production",
                           audit=False)

    def copy() -> Any:
        try:
            with gov.cursor().copy(f"COPY (SELECT id, info FROM {table} ORDER BY id) TO STDOUT") as cp:
                return b"".join(bytes(b) for b in cp)
        except governed_db.GuardrailViolation as e:
            return str(e)

    try:
        app.execute(f"CREATE TABLE {table} (id int, info text)")
        app.execute(f"INSERT INTO {table} SELECT i, 'n/a' FROM generate_series(1, 12) i")
        assert copy().startswith(b"1\tn/a\n2\tn/a\n")
        assert gov.governor.masking_state.tables[table].watch is not None  # type: ignore[union-attr]
        app.execute(f"INSERT INTO {table} VALUES (13, %s)", (SECRETS[0],))
        out = copy()
        assert isinstance(out, str) and "info" in out and SECRETS[0] not in out, out
    finally:
        app.execute(f"DROP TABLE IF EXISTS {table}")
        app.close()
        gov.close()
