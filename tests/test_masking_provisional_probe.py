"""A filter on a provisional column is judged on what the column holds now, cheaply (decision 0267).

Decision 0250 samples a provisional table again (catalog and sample) before every statement that filters, joins,
orders or copies one of its provisional columns. A cheap probe comes first now: one bounded query reading only
the provisional columns' non-NULL values, compared with the values the labels were derived from; the table is
sampled again only when they differ. These tests count the catalog reads with a spy (the probe runs, the full
sample does not while nothing changed) and check that a change only the probe can see — the scheduled re-check
pushed an hour away — still gets the filter refused, for the right and the wrong guess alike, whether another
connection or the governed connection itself wrote the values.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db.masking import engine, schema

SERVICE = governed_db.Identity("svc-poller", kind="service")
AGENT = governed_db.Identity("agent-x", kind="agent", on_behalf_of="bob")
SSNS = [f"{500 + i}-22-8726" for i in range(30)]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts masking's catalog reads (columns, sample, probe) and keeps the scheduled re-check an hour away, so
    that only the probe can notice new values."""
    seen: Counter[str] = Counter()
    for name in ("read_columns", "sample", "sample_columns"):
        real = getattr(schema, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            seen[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(schema, name, spy)
    monkeypatch.setattr(engine, "RECHECK_FIRST", 3600.0)
    monkeypatch.setattr(engine, "RECHECK_MAX", 3600.0)
    return seen


def _jobs(path: Path) -> sqlite3.Connection:
    app = sqlite3.connect(path, isolation_level=None)
    app.execute("CREATE TABLE jobs (id integer primary key, status text, payload text)")
    app.execute("INSERT INTO jobs (status, payload) VALUES ('queued', 'x')")
    return app


def _poll(conn: Any, status: str = "queued") -> list[Any]:
    cur = conn.cursor()
    cur.execute("SELECT id FROM jobs WHERE status = ?", (status,))
    return [tuple(r) for r in cur.fetchall()]


def test_polling_a_nearly_empty_table_probes_it_and_does_not_sample_it_again(
    tmp_path: Path, calls: Counter[str]
) -> None:
    app = _jobs(tmp_path / "q.db")
    gov = governed_db.wrap(sqlite3.connect(tmp_path / "q.db", isolation_level=None), identity=SERVICE,
                           environment="production", audit=False)
    assert _poll(gov) == [(1,)]
    info = gov.governor.masking_state.tables["jobs"]  # type: ignore[union-attr]
    assert info.provisional and info.classes["status"].provisional  # the case the guard samples again
    calls.clear()
    for _ in range(20):
        assert _poll(gov) == [(1,)]
    assert calls == Counter({"sample_columns": 20})  # one probe per filter, no catalog read, no sample
    # a new innocent row changes the probe's answer: sampled again (once), then probed only
    app.execute("INSERT INTO jobs (status, payload) VALUES ('queued', 'y')")
    calls.clear()
    assert _poll(gov) == [(1,), (2,)]
    assert calls["read_columns"] == 1 and calls["sample"] == 1
    calls.clear()
    assert _poll(gov) == [(1,), (2,)]
    assert calls == Counter({"sample_columns": 1})
    gov.close()
    app.close()


def test_values_only_the_probe_sees_get_the_filter_refused(tmp_path: Path, calls: Counter[str]) -> None:
    """Another connection fills the provisional column with SSNs; the scheduled re-check is an hour away, so the
    probe is all that can notice: the filter is refused for the right and the wrong guess alike."""
    app = _jobs(tmp_path / "q.db")
    gov = governed_db.wrap(sqlite3.connect(tmp_path / "q.db", isolation_level=None), identity=AGENT,
                           environment="production", audit=False)
    assert _poll(gov) == [(1,)]
    assert _poll(gov) == [(1,)]
    app.executemany("INSERT INTO jobs (status, payload) VALUES (?, 'p')", [(s,) for s in SSNS])
    raw = [app.execute("SELECT count(*) FROM jobs WHERE status LIKE ?", (g,)).fetchone()[0] for g in ("5%", "6%")]
    assert raw == [30, 0]  # a real oracle on the raw connection
    calls.clear()
    for guess in ("5%", "6%"):
        cur = gov.cursor()
        with pytest.raises(governed_db.GuardrailViolation, match="status") as refused:
            cur.execute("SELECT count(*) FROM jobs WHERE status LIKE ?", (guess,))
        assert "8726" not in str(refused.value)
    assert calls["read_columns"] >= 1 and calls["sample"] >= 1  # the probe's answer differed: sampled again
    cur = gov.cursor()
    cur.execute("SELECT status FROM jobs WHERE id = 2")
    assert "8726" not in repr(cur.fetchall())  # returned masked
    gov.close()
    app.close()


def test_the_connections_own_writes_are_seen_by_the_probe(tmp_path: Path, calls: Counter[str]) -> None:
    """``PRAGMA data_version`` would not change for the governed connection's own INSERT; the probe reads the
    values themselves (through the same connection), so its own writes count too."""
    app = _jobs(tmp_path / "q.db")
    gov = governed_db.wrap(sqlite3.connect(tmp_path / "q.db", isolation_level=None), identity=SERVICE,
                           environment="production", audit=False)
    assert _poll(gov) == [(1,)]
    cur = gov.cursor()
    cur.executemany("INSERT INTO jobs (status, payload) VALUES (?, 'p')", [(s,) for s in SSNS])
    assert app.execute("SELECT count(*) FROM jobs WHERE status LIKE '5%'").fetchone()[0] == 30
    for guess in ("5%", "6%"):
        with pytest.raises(governed_db.GuardrailViolation, match="status"):
            gov.cursor().execute("SELECT count(*) FROM jobs WHERE status LIKE ?", (guess,))
    cur.execute("SELECT status FROM jobs WHERE id = 3")
    assert "8726" not in repr(cur.fetchall())
    gov.close()
    app.close()


def test_a_nearly_empty_column_of_a_populated_table_is_probed_too(tmp_path: Path, calls: Counter[str]) -> None:
    """A populated table whose ``info`` is NULL everywhere (decision 0250): the probe reads ``info`` and the
    watched text column ``code`` (the sample read the whole table, decision 0268); a change of the number column
    does not sample it again, a change of ``code`` samples it once, a value in ``info`` is refused."""
    app = sqlite3.connect(tmp_path / "f.db", isolation_level=None)
    app.execute("CREATE TABLE f (id int, info text, code text)")
    app.executemany("INSERT INTO f VALUES (?, NULL, ?)", [(i, f"c{i}") for i in range(20)])
    gov = governed_db.wrap(sqlite3.connect(tmp_path / "f.db", isolation_level=None), identity=AGENT,
                           environment="production", audit=False)

    def count(pattern: str) -> Any:
        cur = gov.cursor()
        cur.execute("SELECT count(*) FROM f WHERE info LIKE ?", (pattern,))
        return cur.fetchall()[0][0]

    assert count("5%") == 0
    app.execute("UPDATE f SET id = id + 100")
    calls.clear()
    assert count("5%") == 0
    assert calls == Counter({"sample_columns": 1})
    app.execute("UPDATE f SET code = 'k' || id")
    calls.clear()
    assert count("5%") == 0
    assert calls["sample"] == 1 and calls["sample_columns"] >= 1
    calls.clear()
    assert count("5%") == 0
    assert calls == Counter({"sample_columns": 1})
    app.execute("UPDATE f SET info = ? WHERE id < 112", (SSNS[0],))
    for guess in ("5%", "6%"):
        with pytest.raises(governed_db.GuardrailViolation, match="info"):
            count(guess)
    gov.close()
    app.close()


def test_aiosqlite_reads_the_probe_with_await(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The async warm-up reads the probe with ``await`` and samples again only when its answer changed."""
    aiosqlite = pytest.importorskip("aiosqlite")
    monkeypatch.setattr(engine, "RECHECK_FIRST", 3600.0)
    monkeypatch.setattr(engine, "RECHECK_MAX", 3600.0)
    path = tmp_path / "q.db"
    app = _jobs(path)
    sent: list[str] = []

    async def main() -> list[Any]:
        raw = await aiosqlite.connect(path, isolation_level=None)
        gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
        driver_cls = type(gov.governor.driver)
        real = driver_cls.catalog_rows

        async def spy(self: Any, conn: Any, sql: str, params: Any) -> Any:
            sent.append(sql)
            return await real(self, conn, sql, params)

        monkeypatch.setattr(driver_cls, "catalog_rows", spy)
        seen: list[Any] = []

        async def filt(pattern: str) -> Any:
            try:
                cur = await gov.execute("SELECT count(*) FROM jobs WHERE status LIKE ?", (pattern,))
                return await cur.fetchall()
            except governed_db.GuardrailViolation as e:
                return ("refused", "status" in str(e), "8726" in str(e))

        try:
            seen.append(await filt("q%"))
            sent.clear()
            for _ in range(5):
                seen.append(await filt("q%"))
            seen.append(sorted(Counter("probe" if "IS NOT NULL" in s else "other" for s in sent).items()))
            app.executemany("INSERT INTO jobs (status, payload) VALUES (?, 'p')", [(s,) for s in SSNS])
            for guess in ("5%", "6%"):
                seen.append(await filt(guess))
        finally:
            await raw.close()
        return seen

    assert asyncio.run(main()) == [[(1,)]] * 6 + [
        [("probe", 5)], ("refused", True, False), ("refused", True, False)
    ]
    app.close()
