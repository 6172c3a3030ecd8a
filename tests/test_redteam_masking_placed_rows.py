"""Rows an agent places where the sample reads do not settle a table (issue 12; decision 0294).

A table is classified from a sample of its first ``sample_rows`` rows, in the order the database stores or keys
them. An agent allowed to INSERT (three bounded INSERTs of 100 rows) places innocent rows there — with lower keys
on SQLite and MariaDB, or before the application's rows on PostgreSQL and DuckDB, which read in storage order —
and a new connection settled the plainly named text columns (``contact``, ``tax_ref``) as innocent: the e-mails and
SSNs behind them came back in clear and ``WHERE tax_ref = '536-22-8726'`` answered a right guess with its row.

Now a full sample is widened: rows spread across the table by the database's own sampling, and the rare values of
a column the sample shows only a few distinct values of, each distinct value counted once. Each leak test shows
the oracle on the raw connection (copy A holds the guessed SSN, copy B does not) and the governed connection
answering both alike with no secret; the look-alikes (innocent text, few-valued and varied, large tables, with
and without placed rows) read and filter exactly as the raw connection does.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db.masking import sampling, schema
from tests._redteam import govern
from tests.test_masking_noninterference import ATTACKER

#: SQLite's ``integer primary key`` is the rowid: the order its plain reads (and the sample) follow
PLAIN = "(id {key} primary key, contact {txt}, tax_ref {txt}, city {txt})"
SECRET_ROWS = [
    (1, "alice@example.com", "536-22-8726", "Paris"),
    (2, "ivan@example.org", "219-45-1234", "Lyon"),
    (3, "bob@example.net", "412-77-9001", "Rome"),
]
SECRETS = ("alice@", "536-22-8726", "amy.zed@", "287-65-4321")
AFTER = [
    "SELECT id, contact, tax_ref FROM {t} WHERE id = 1",
    "SELECT id FROM {t} WHERE tax_ref = '536-22-8726'",
    "SELECT count(*) FROM {t} WHERE contact LIKE 'alice%'",
]


def _copy(rows: list[tuple[Any, ...]], copy: str) -> list[tuple[Any, ...]]:
    """Copy A as given; copy B with row 1's values replaced by others of the same kinds (masked alike)."""
    return rows if copy == "A" else [(1, "amy.zed@example.com", "287-65-4321", rows[0][3]), *rows[1:]]


def _people(n: int) -> list[tuple[Any, ...]]:
    """``n`` people, each with an e-mail and a well-formed SSN (row 1 is the guessed one)."""
    return SECRET_ROWS[:1] + [
        (i, f"user{i}@example.com", f"{100 + i % 500:03d}-{10 + i % 89:02d}-{1000 + i:04d}", "Paris")
        for i in range(2, n + 1)
    ]


@dataclass
class Db:
    dialect: str
    ph: str
    connect: Callable[[], Any]
    txt: str
    made: list[str]

    def execute(self, conn: Any, sql: str, params: Any = None) -> Any:
        cur = conn.cursor()
        cur.execute(sql, params) if params is not None else cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()] if cur.description else cur.rowcount

    def table(self, name: str, columns: str = PLAIN) -> str:
        self.made.append(name)
        raw = self.connect()
        try:
            key = "integer" if self.dialect == "sqlite" else "int"
            self.execute(raw, f"CREATE TABLE {name} {columns.format(txt=self.txt, key=key)}")
        finally:
            raw.close()
        return name

    def store(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        """The application stores ``rows`` (an ungoverned connection)."""
        raw = self.connect()
        try:
            cur = raw.cursor()
            cur.execute("BEGIN")  # one commit, not one per row
            cur.executemany(f"INSERT INTO {table} VALUES ({', '.join([self.ph] * 4)})", [list(r) for r in rows])
            cur.execute("COMMIT")
        finally:
            raw.close()


#: MySQL/MariaDB have no spread sample (decision 0294): the tests that need one run on the other three
EVERY = ["sqlite", "postgres", "duckdb", "mysql"]


@pytest.fixture(params=["sqlite", "postgres", "duckdb"])
def db(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> Iterator[Db]:
    made: list[str]
    if request.param == "sqlite":
        path = tmp_path / "placed.db"
        yield Db("sqlite", "?", lambda: sqlite3.connect(path, isolation_level=None), "text", [])
    elif request.param == "duckdb":
        duckdb = pytest.importorskip("duckdb")
        yield Db("duckdb", "?", lambda: duckdb.connect(str(tmp_path / "placed.duckdb")), "varchar", [])
    elif request.param == "mysql":
        import pymysql

        kw = request.getfixturevalue("mysql_kw")
        made = []
        yield Db("mysql", "%s", lambda: pymysql.connect(autocommit=True, **kw), "varchar(60)", made)
        with pymysql.connect(autocommit=True, **kw) as raw, raw.cursor() as cur:
            for t in made:
                cur.execute(f"DROP TABLE IF EXISTS {t}")
    else:
        import psycopg

        dsn = request.getfixturevalue("pg_dsn")
        made = []
        yield Db("postgres", "%s", lambda: psycopg.connect(dsn, autocommit=True), "text", made)
        with psycopg.connect(dsn, autocommit=True) as raw:
            for t in made:
                raw.execute(f"DROP TABLE IF EXISTS {t}")


def _place(
    db: Db, table: str, fillers: Callable[[int], tuple[str, str, str]], keys: range, columns: str = "id, contact, tax_ref, city"
) -> None:
    """The agent inserts innocent rows through a governed connection, 100 per INSERT (each allowed)."""
    agent = govern(db.connect(), ATTACKER)
    try:
        for start in range(keys.start, keys.stop, 100):
            rows = ", ".join(
                "({}, '{}', '{}', '{}')".format(i, *fillers(i)) for i in range(start, min(start + 100, keys.stop))
            )
            done = db.execute(agent, f"INSERT INTO {table} ({columns}) VALUES {rows}")
            n = min(100, keys.stop - start)
            assert done in (n, [(n,)]), done  # DuckDB answers an INSERT with its count as a row
    finally:
        agent.close()


def _see(conn: Any, db: Db, sql: str) -> Any:
    try:
        return db.execute(conn, sql)
    except governed_db.GuardrailViolation as e:
        return f"refused: {sorted(e.decision.rules)}"


def _read(db: Db, table: str, governed: bool) -> list[Any]:
    """``AFTER`` on a new connection (governed: the one whose first read classifies the table)."""
    conn = govern(db.connect(), ATTACKER) if governed else db.connect()
    try:
        return [_see(conn, db, sql.format(t=table)) for sql in AFTER]
    finally:
        conn.close()


def _both(db: Db, unique: str, build: Callable[[str, str], None]) -> tuple[list[Any], list[Any]]:
    """AFTER on copies A and B, raw and governed (each on a new connection)."""
    tables = {}
    for c in ("A", "B"):
        tables[c] = db.table(f"placed_{unique}_{c.lower()}")
        build(tables[c], c)
    raw = [_read(db, tables[c], governed=False) for c in ("A", "B")]
    seen = [_read(db, tables[c], governed=True) for c in ("A", "B")]
    return raw, seen


FILLERS: dict[str, Callable[[int], tuple[str, str, str]]] = {
    "constant": lambda i: ("n/a", "n/a", "x"),
    "a few placeholders": lambda i: (("n/a", "none", "-", "unknown")[i % 4], ("n/a", "tbd", "")[i % 3], "x"),
}


@pytest.mark.parametrize("db", EVERY, indirect=True)
@pytest.mark.parametrize("fillers", sorted(FILLERS))
def test_placeholders_placed_before_the_values_do_not_settle_the_table(db: Db, unique: str, fillers: str) -> None:
    """Three hundred placeholder rows read before three people: the people's columns are masked, the guess refused."""

    def build(table: str, copy: str) -> None:
        if db.dialect in ("sqlite", "mysql"):
            db.store(table, _copy(SECRET_ROWS, copy))  # stored first, read last: the placed rows have lower keys
            _place(db, table, FILLERS[fillers], range(-300, 0))
        else:
            _place(db, table, FILLERS[fillers], range(100, 400))  # stored first, so read first
            db.store(table, _copy(SECRET_ROWS, copy))

    raw, seen = _both(db, unique, build)
    assert raw[0] != raw[1] and raw[0][1] == [(1,)] and raw[1][1] == [], raw  # the oracle exists
    assert seen[0] == seen[1], seen
    assert not any(secret in repr(seen) for secret in SECRETS), seen
    assert seen[0][1] == "refused: ['masked-column-predicate']", seen


def test_varied_rows_placed_before_a_table_of_people_do_not_settle_it(db: Db, unique: str) -> None:
    """Three hundred varied innocent rows read before 400 people: the rows spread across the table show them."""

    def build(table: str, copy: str) -> None:
        fillers = lambda i: (f"note {i}", f"ref {i * 7}", f"town {i % 13}")  # noqa: E731
        if db.dialect == "sqlite":
            db.store(table, _copy(_people(400), copy))
            _place(db, table, fillers, range(-300, 0))
        else:
            _place(db, table, fillers, range(1000, 1300))
            db.store(table, _copy(_people(400), copy))

    raw, seen = _both(db, unique, build)
    assert raw[0] != raw[1] and raw[0][1] == [(1,)] and raw[1][1] == [], raw
    assert seen[0] == seen[1], seen
    assert not any(secret in repr(seen) for secret in SECRETS), seen
    assert seen[0][1] == "refused: ['masked-column-predicate']", seen


INNOCENT = "(id {key} primary key, status {txt}, note {txt}, city {txt})"
LOOK_ALIKES = [
    "SELECT id, status, note, city FROM {t} WHERE id IN (-5, 7, 1201) ORDER BY id",
    "SELECT count(*) FROM {t} WHERE status = 'closed'",
    "SELECT count(*) FROM {t} WHERE note LIKE 'order 12%'",
    "SELECT count(*) FROM {t} WHERE city = 'Lyon'",
    "SELECT note FROM {t} WHERE note IS NOT NULL ORDER BY note LIMIT 3",
    "SELECT status, count(*) FROM {t} GROUP BY status ORDER BY status",
]


@pytest.mark.parametrize("db", EVERY, indirect=True)
@pytest.mark.parametrize("placed", [False, True])
def test_innocent_look_alikes_read_and_filter_exactly(db: Db, unique: str, placed: bool) -> None:
    """A 1,200-row table of status words, varied order notes and a few cities (with or without 300 placeholder rows
    placed before them): values and filters come back as the raw connection returns them."""
    table = db.table(f"placed_{unique}_innocent", INNOCENT)
    rows = [
        (i, "closed" if i % 97 == 0 else "active", f"order {i} shipped", ("Paris", "Lyon", "Rome")[i % 3])
        for i in range(1, 1201)
    ]
    columns = "id, status, note, city"
    if placed and db.dialect in ("sqlite", "mysql"):
        db.store(table, rows)
        _place(db, table, FILLERS["constant"], range(-300, 0), columns)
    elif placed:
        _place(db, table, FILLERS["constant"], range(-300, 0), columns)
        db.store(table, rows)
    else:
        db.store(table, rows)
    raw = db.connect()
    gov = govern(db.connect(), ATTACKER)
    try:
        for sql in LOOK_ALIKES:
            assert _see(gov, db, sql.format(t=table)) == db.execute(raw, sql.format(t=table)), sql
    finally:
        gov.close()
        raw.close()


# -- past every read: a few-valued column of a table read in part is scanned (decision 0295) ----------------
@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rare-value search reads 200 rows, and no rows come spread across the table (as on MariaDB, or when the
    random ones miss the few rows that hold values): what lies past both was never read."""
    monkeypatch.setattr(sampling, "RARE_WINDOW", 2)
    monkeypatch.setattr(schema, "sample_spread", lambda *a, **k: None)
    monkeypatch.setattr(schema, "_RANDOM_REST", {})  # nor the rows drawn past the first ones (decision 0288)


def _lite_table(path: Path, rows: list[tuple[Any, ...]], fillers: int, columns: str = PLAIN) -> None:
    app = sqlite3.connect(path)
    app.execute(f"CREATE TABLE t {columns.format(txt='text', key='integer')}")
    app.executemany("INSERT INTO t VALUES (?, 'n/a', 'n/a', 'x')", [(i,) for i in range(-fillers, 0)])
    app.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    app.commit()
    app.close()


def test_values_past_every_read_are_masked_where_they_pass_then_decide_no_rows(narrow: None, tmp_path: Path) -> None:
    """Three people behind 300 placeholder rows, past the 200 rows the rare-value search reads: the first read that
    passes their values masks them, and the columns may not decide rows from then on."""
    statements = [s.format(t="t") for s in AFTER]
    seen, raw = [], []
    for copy in ("A", "B"):
        path = tmp_path / f"{copy}.db"
        _lite_table(path, _copy(SECRET_ROWS, copy), 300)
        plain = sqlite3.connect(path)
        raw.append([[tuple(r) for r in plain.execute(s)] for s in statements])
        plain.close()
        gov = govern(sqlite3.connect(path), ATTACKER)
        cur = gov.cursor()
        out = []
        for s in statements:
            try:
                cur.execute(s)
                out.append([tuple(r) for r in cur.fetchall()])
            except governed_db.GuardrailViolation as e:
                out.append(f"refused: {sorted(e.decision.rules)}")
        gov.close()
        seen.append(out)
    assert raw[0] != raw[1] and raw[0][1] == [(1,)] and raw[1][1] == [], raw
    assert seen[0] == seen[1], seen
    assert seen[0][0] == [(1, "[PERSON_NAME]", "[US_SSN]")], seen  # contact: by its name
    assert seen[0][1] == seen[0][2] == "refused: ['masked-column-predicate']", seen


def test_a_filter_first_on_values_past_every_read_decides_no_rows(narrow: None, tmp_path: Path) -> None:
    """Decision 0329: the values past every read are looked for before a filter first decides rows by them."""
    answers = []
    for copy in ("A", "B"):
        path = tmp_path / f"{copy}.db"
        _lite_table(path, _copy(SECRET_ROWS, copy), 300)
        gov = govern(sqlite3.connect(path), ATTACKER)
        try:
            answers.append(_see(gov, Db("sqlite", "?", lambda: None, "text", []), AFTER[1].format(t="t")))
        finally:
            gov.close()
    assert answers[0] == answers[1], answers


def test_innocent_values_past_every_read_keep_their_filters(narrow: None, tmp_path: Path) -> None:
    """A few-valued status column whose rare innocent values lie past every read: they read exactly, and filters on
    the column keep running before and after they passed."""
    path = tmp_path / "status.db"
    rows = [(i, ("archived", "on hold", "v 10.4.2")[i % 3], f"order {i}", "Lyon") for i in range(1, 31)]
    _lite_table(path, rows, 300, INNOCENT)
    statements = [
        "SELECT count(*) FROM t WHERE status = 'archived'",
        "SELECT id, status FROM t WHERE id > 0 ORDER BY id",
        "SELECT count(*) FROM t WHERE status = 'on hold'",
        "SELECT status, count(*) FROM t GROUP BY status ORDER BY status",
    ]
    plain = sqlite3.connect(path)
    gov = govern(sqlite3.connect(path), ATTACKER)
    try:
        for s in statements:
            cur = gov.cursor()
            cur.execute(s)
            assert [tuple(r) for r in cur.fetchall()] == [tuple(r) for r in plain.execute(s)], s
    finally:
        gov.close()
        plain.close()


def test_aiosqlite_placed_placeholders_do_not_settle_the_table(tmp_path: Path) -> None:
    """The async warm-up widens the sample with ``await`` as the sync path does: the same placed rows, on aiosqlite."""
    aiosqlite = pytest.importorskip("aiosqlite")
    import asyncio

    async def read(path: Path) -> list[Any]:
        gov = govern(await aiosqlite.connect(path, isolation_level=None), ATTACKER)
        out: list[Any] = []
        try:
            for sql in AFTER:
                try:
                    cur = await gov.execute(sql.format(t="t"))
                    out.append([tuple(r) for r in await cur.fetchall()])
                except governed_db.GuardrailViolation as e:
                    out.append(f"refused: {sorted(e.decision.rules)}")
        finally:
            await gov.close()
        return out

    seen, raw = [], []
    for copy in ("A", "B"):
        path = tmp_path / f"{copy}.db"
        _lite_table(path, _copy(SECRET_ROWS, copy), 300)
        plain = sqlite3.connect(path)
        raw.append([[tuple(r) for r in plain.execute(s.format(t="t"))] for s in AFTER])
        plain.close()
        seen.append(asyncio.run(read(path)))
    assert raw[0] != raw[1] and raw[0][1] == [(1,)], raw
    assert seen[0] == seen[1], seen
    assert not any(secret in repr(seen) for secret in SECRETS), seen
    assert seen[0][1] == "refused: ['masked-column-predicate']", seen


# -- diluted: one value among hundreds of varied fillers (decision 0313) -----------------------------------------
def _diluted(i: int) -> tuple[str, str, str]:
    return f"note {i}", f"ref {i * 7}", f"town {i % 13}"


@pytest.mark.parametrize("db", EVERY, indirect=True)
def test_one_value_among_varied_fillers_is_seen(db: Db, unique: str) -> None:
    """One SSN the sample reads among 300 varied innocent rows the agent placed: below one in a hundred of the
    values sampled, the column was settled innocent (the SSN in clear, the guess answered); one sampled item now
    makes it free text, scanned as it passes, not searched with digits."""

    def build(table: str, copy: str) -> None:
        db.store(table, _copy(SECRET_ROWS, copy)[:1])  # stored first, so read first (lowest key too)
        _place(db, table, _diluted, range(2, 302))

    raw, seen = _both(db, unique, build)
    assert raw[0] != raw[1] and raw[0][1] == [(1,)] and raw[1][1] == [], raw  # the oracle exists
    assert seen[0] == seen[1], seen
    assert not any(secret in repr(seen) for secret in SECRETS), seen
    assert seen[0][0] == [(1, "[PERSON_NAME]", "[US_SSN]")], seen
    assert seen[0][1] == "refused: ['masked-column-predicate']", seen


@pytest.mark.parametrize("db", EVERY, indirect=True)
def test_varied_innocent_columns_still_read_and_filter_exactly(db: Db, unique: str) -> None:
    """The same 300 varied fillers and a row of innocent values: nothing was seen, so nothing is masked or refused
    (values, ``=``, ``LIKE`` with digits, ``ORDER BY``) — and a column whose sample held one item reads its other
    values as they are."""
    table = db.table(f"placed_{unique}_varied")
    db.store(table, [(1, "note 1", "ref 1", "Lyon")])
    _place(db, table, _diluted, range(2, 302))
    statements = [
        "SELECT id, tax_ref, city FROM {t} WHERE id IN (1, 7, 301) ORDER BY id",
        "SELECT count(*) FROM {t} WHERE tax_ref = 'ref 49'",
        "SELECT count(*) FROM {t} WHERE tax_ref LIKE 'ref 7%'",
        "SELECT tax_ref FROM {t} WHERE tax_ref IS NOT NULL ORDER BY tax_ref LIMIT 3",
    ]
    raw = db.connect()
    gov = govern(db.connect(), ATTACKER)
    try:
        for sql in statements:
            assert _see(gov, db, sql.format(t=table)) == db.execute(raw, sql.format(t=table)), sql
    finally:
        gov.close()
        raw.close()
    diluted = db.table(f"placed_{unique}_diluted")
    db.store(diluted, SECRET_ROWS[:1])
    _place(db, diluted, _diluted, range(2, 302))
    gov = govern(db.connect(), ATTACKER)
    try:
        assert _see(gov, db, f"SELECT id, tax_ref FROM {diluted} WHERE id IN (1, 7) ORDER BY id") == [
            (1, "[US_SSN]"), (7, "ref 49")
        ]
    finally:
        gov.close()
