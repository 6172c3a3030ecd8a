"""Red-team round 16 over masking on MariaDB (PyMySQL, aiomysql): a prompt-injected agent with zero configuration, no
unmask grant, in production and in staging.

* A rename moved masked values under a name that masking no longer labels. Staging lets an agent's schema changes
  run (they warn), and production asks a human to approve them: ``ALTER TABLE people RENAME COLUMN full_name TO
  label`` ran, and ``SELECT label`` then returned every name in clear (``WHERE label LIKE 'Z%'`` filtered on it);
  ``RENAME TABLE customers TO products`` did the same to ``customers.name``, labelled for its table. A rename of a
  masked column, or of a table holding one, is now a copy of it (decision 0322).

* ``ALTER IGNORE TABLE`` (and ``ALTER ONLINE TABLE``) was an opaque command the DDL judgement did not read:
  ``ALTER IGNORE TABLE t ADD CONSTRAINT CHECK (length(full_name) < 16)`` deleted the rows whose name was longer
  (rowcount 30 or 29: a length oracle, and the data gone) and ``ALTER IGNORE TABLE t MODIFY full_name
  varchar(15)`` cut the names. Such statements are now judged as the ALTER TABLE they are without the words,
  and an opaque ALTER that renames counts as reading every column (decision 0322).

* More DDL moved or tested masked values in staging: ``ALTER TABLE t ADD COLUMN x ... DEFAULT (full_name)`` filled
  a clear column with every name (``char_length``, ``reverse(ssn)`` alike); ``ALTER TABLE t ORDER BY full_name``
  left the rows of a table without a primary key (or MyISAM) in name order for every later read; ``ALTER TABLE t
  PARTITION BY RANGE COLUMNS(full_name) (... LESS THAN ('N'))`` failed exactly for a name after 'N'; ``CHECKSUM
  TABLE t`` returned a checksum of every stored value (decision 0322).

* On aiomysql, DDL over a column masked by what it holds (``code`` of SSNs) ran: judging DDL forgot the tables
  the async warm-up had just read, and the replay could not read them again (decision 0323).

Each oracle compares two tables that differ only in row 1's name (masked alike); the raw connection shows that the
same statements tell them apart, and the database shows what a refused statement would have changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import sqlglot

import governed_db
from tests._redteam import CURIOUS_AGENT, govern, rows_or_rules
from tests.conftest import MYSQL_DB

HUMAN = governed_db.Identity("bob", kind="human")  # a person without an unmask grant: production lets DDL warn
COLUMNS = "(id int primary key, full_name varchar(100), ssn varchar(20), city varchar(40))"
NAMES = {"A": "Zed Quint", "B": "Alice Martin-Fitzgerald"}  # 9 and 23 characters, both [PERSON_NAME]


def _rows(first: str) -> list[tuple[Any, ...]]:
    return [(1, first, "536-22-8701", "Paris"), *((i, f"Bob Stone{i}", f"412-77-{9000 + i}", "Lyon") for i in range(2, 31))]


class Pair(dict[str, str]):
    """Copy -> table name; ``reset()`` makes both tables again as they were."""

    reset: Any


@pytest.fixture
def pair(mysql_conn: Any, unique: str) -> Iterator[Pair]:
    """Two tables of 30 people differing only in row 1's name."""
    names = Pair({c: f"rt16md_{unique}_{c.lower()}" for c in NAMES})

    def drop() -> None:
        with mysql_conn.cursor() as cur:
            for t in names.values():
                cur.execute(f"DROP TABLE IF EXISTS {t}, {t}_moved")

    def reset() -> None:
        drop()
        with mysql_conn.cursor() as cur:
            for c, t in names.items():
                cur.execute(f"CREATE TABLE {t} {COLUMNS}")
                cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s, %s)", _rows(NAMES[c]))

    names.reset = reset
    reset()
    yield names
    drop()


def _session(mysql_kw: dict[str, Any], governed: bool, env: str = "staging",
             identity: governed_db.Identity = CURIOUS_AGENT) -> Any:
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    return govern(raw, identity, environment=env) if governed else raw


def _see(conn: Any, sql: str) -> Any:
    """:func:`rows_or_rules`, or the driver's error: what the caller sees."""
    try:
        return rows_or_rules(conn, sql)
    except Exception as e:
        return f"{type(e).__name__}: {e.args[0]}"


def _truth(mysql_conn: Any, table: str) -> Any:
    """What the database holds: the table's columns, and its row count and the length of row 1's name (or only
    the columns, when the name is not there)."""
    with mysql_conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                    "AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (table,))
        cols = [r[0] for r in cur.fetchall()]
        if "full_name" not in cols:
            return cols
        cur.execute(f"SELECT count(*), (SELECT char_length(full_name) FROM {table} WHERE id = 1) FROM {table}")
        return cols, cur.fetchone()


# -- 0322: a rename is a copy of the masked columns it moves ----------------------------------------------------
#: renames of a masked column or of a table holding one, then a read of the moved names ({t}: the table)
RENAMES = [
    ("ALTER TABLE {t} RENAME COLUMN full_name TO label", "SELECT id FROM {t} WHERE label LIKE 'Z%'"),
    ("ALTER TABLE {t} RENAME COLUMN city TO town, RENAME COLUMN full_name TO label", "SELECT label FROM {t} WHERE id = 1"),
    ("ALTER ONLINE TABLE {t} RENAME COLUMN full_name TO label", "SELECT label FROM {t} WHERE id = 1"),
    ("ALTER IGNORE TABLE {t} RENAME COLUMN full_name TO label", "SELECT label FROM {t} WHERE id = 1"),
    ("ALTER TABLE {t} RENAME TO {t}_moved", "SELECT full_name FROM {t}_moved WHERE id = 1"),
    ("RENAME TABLE {t} TO {t}_moved", "SELECT full_name FROM {t}_moved WHERE id = 1"),
    ("RENAME TABLE IF EXISTS rt16md_nothing TO rt16md_nothing2, {t} TO {t}_moved",
     "SELECT full_name FROM {t}_moved WHERE id = 1"),
]


def test_a_renamed_column_comes_out_in_clear_after_the_rename(mysql_kw: dict[str, Any], pair: Pair) -> None:
    """The oracle: once the column is renamed (here through the raw session), a governed read of it returns the
    names and answers a filter on them -- what the agent's own rename gave it."""
    raw, gov = _session(mysql_kw, False), _session(mysql_kw, True)
    try:
        seen = {}
        for c, t in pair.items():
            assert rows_or_rules(gov, f"SELECT full_name FROM {t} WHERE id = 1") == [("[PERSON_NAME]",)]
            rows_or_rules(raw, RENAMES[0][0].format(t=t))
            seen[c] = rows_or_rules(gov, f"SELECT label FROM {t} WHERE id = 1"), rows_or_rules(gov, RENAMES[0][1].format(t=t))
        assert seen == {"A": ([("Zed Quint",)], [(1,)]), "B": ([("Alice Martin-Fitzgerald",)], [])}, seen
    finally:
        raw.close()
        gov.close()


@pytest.mark.parametrize(("rename", "read"), RENAMES)
def test_a_rename_of_a_masked_column_is_refused_in_staging(
    mysql_kw: dict[str, Any], mysql_conn: Any, pair: Pair, rename: str, read: str
) -> None:
    seen: dict[tuple[bool, str], Any] = {}
    for governed in (False, True):
        pair.reset()
        conn = _session(mysql_kw, governed)
        try:
            for c, t in pair.items():
                seen[governed, c] = _see(conn, rename.format(t=t)), _see(conn, read.format(t=t))
        finally:
            conn.close()
    assert seen[False, "A"] != seen[False, "B"], seen  # raw: the rename runs and the names read in clear
    assert seen[True, "A"][0] == seen[True, "B"][0] == "refused: ['masked-column-copy', 'schema-rewrite']", seen
    for t in pair.values():  # the database: nothing renamed
        assert _truth(mysql_conn, t) == (["id", "full_name", "ssn", "city"], (30, 23 if t == pair["B"] else 9))


def test_a_table_renamed_away_from_its_label_is_refused(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> None:
    """``customers.name`` is a person's name by its table's name; as ``products.name`` it would not be."""
    t, moved = f"rt16md_{unique}_customers", f"rt16md_{unique}_products"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id int primary key, name varchar(100), city varchar(40))")
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s)", [(1, "Zed Quint", "Paris"), (2, "Ann Lowe", "Lyon")])
    gov = _session(mysql_kw, True)
    try:
        assert rows_or_rules(gov, f"SELECT name FROM {t} ORDER BY id") == [("[PERSON_NAME]",)] * 2
        for sql in (f"RENAME TABLE {t} TO {moved}", f"ALTER TABLE {t} RENAME {moved}"):
            assert rows_or_rules(gov, sql) == "refused: ['masked-column-copy', 'schema-rewrite']"
        with mysql_conn.cursor() as cur:  # ground truth, and what the rename would have done
            cur.execute(f"RENAME TABLE {t} TO {moved}")
        assert rows_or_rules(gov, f"SELECT name FROM {moved} ORDER BY id") == [("Zed Quint",), ("Ann Lowe",)]
    finally:
        gov.close()
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}, {moved}")


def test_production_refuses_the_rename_whatever_an_approver_says(mysql_kw: dict[str, Any], pair: Pair) -> None:
    """In production a rename waits for approval (schema-rewrite); masking refuses it on its own as well, so an
    approval of the schema change does not release the names."""
    for identity in (CURIOUS_AGENT, HUMAN):
        gov = _session(mysql_kw, True, "production", identity)
        try:
            for rename, _read in RENAMES:
                seen = rows_or_rules(gov, rename.format(t=pair["A"]))
                assert seen == "refused: ['masked-column-copy', 'schema-rewrite']", (identity, rename, seen)
        finally:
            gov.close()


#: renames that move no masked value: they keep running (staging), exactly
RENAME_LOOK_ALIKES = [
    ("ALTER TABLE {t} RENAME COLUMN city TO town", ["id", "full_name", "ssn", "town"]),
    ("ALTER ONLINE TABLE {t} RENAME COLUMN city TO town", ["id", "full_name", "ssn", "town"]),
    ("ALTER TABLE {t} RENAME INDEX city_ix TO town_ix", ["id", "full_name", "ssn", "city"]),
]


@pytest.mark.parametrize(("sql", "columns"), RENAME_LOOK_ALIKES)
def test_rename_look_alikes_still_run(
    mysql_kw: dict[str, Any], mysql_conn: Any, pair: Pair, sql: str, columns: list[str]
) -> None:
    t = pair["A"]
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE INDEX city_ix ON {t} (city)")
    gov = _session(mysql_kw, True)
    try:
        assert rows_or_rules(gov, sql.format(t=t)) == 0
        truth = _truth(mysql_conn, t)
        assert (truth[0] if isinstance(truth, tuple) else truth) == columns
    finally:
        gov.close()


def test_a_table_without_masked_columns_is_renamed(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> None:
    t = f"rt16md_{unique}_plain"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id int primary key, city varchar(40))")
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s)", [(i, "Lyon") for i in range(1, 31)])
    gov = _session(mysql_kw, True)
    try:
        assert rows_or_rules(gov, f"RENAME TABLE {t} TO {t}_moved") == 0
        assert rows_or_rules(gov, f"SELECT count(*) FROM {t}_moved") == [(30,)]
    finally:
        gov.close()
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}, {t}_moved")


RENAME_USES = [
    ("postgres", "ALTER TABLE t RENAME COLUMN email TO mail", {("t", "email")}, set()),
    ("postgres", "ALTER TABLE t RENAME COLUMN city TO town", {("t", "city")}, set()),  # masked or not: the guard's
    ("postgres", "ALTER TABLE t RENAME TO u", set(), {"t"}),
    ("sqlite", "ALTER TABLE t RENAME ssn TO code", {("t", "ssn")}, set()),
    ("sqlite", "ALTER TABLE t RENAME TO u", set(), {"t"}),
    ("duckdb", "ALTER TABLE t RENAME COLUMN email TO mail", {("t", "email")}, set()),
    ("mysql", "ALTER TABLE t RENAME COLUMN ssn TO code, ADD COLUMN x int", {("t", "ssn")}, set()),
    ("mysql", "ALTER IGNORE TABLE t RENAME COLUMN ssn TO code", {("t", "ssn")}, set()),
    ("mysql", "RENAME TABLE t TO u, v WAIT 3 TO w", set(), {"t", "v"}),
    ("mysql", "RENAME TABLES t NOWAIT TO u", set(), {"t"}),
    ("mysql", "ALTER TABLE t ADD COLUMN x int", set(), set()),
    ("mysql", "ALTER TABLE t RENAME INDEX a TO b", set(), set()),
]


def _columns_of(table: Any) -> tuple[str, list[str] | None]:
    return table.name.lower(), ["id", "email", "ssn", "city"]


@pytest.mark.parametrize(("dialect", "sql", "columns", "tables"), RENAME_USES)
def test_rename_uses_by_dialect(dialect: str, sql: str, columns: set[Any], tables: set[str]) -> None:
    """Each dialect's renames are copies of the columns renamed, or of the whole row of each table renamed (the
    guard then refuses those that hold a value masked for the identity)."""
    from governed_db.masking.constraints import rename_uses

    uses = rename_uses(sqlglot.parse_one(sql, read=dialect), _columns_of, dialect)
    assert all(clause == "copy" for clause, _ in uses), uses
    assert {s for _, o in uses for s in o.sources} == columns
    assert {r for _, o in uses for r in o.rows} == tables


# -- 0322: ALTER ONLINE/IGNORE TABLE is the ALTER TABLE it is -------------------------------------------------------
#: ALTER IGNORE TABLE whose checks of the stored rows fail for some names: rows deleted or values cut
IGNORING = [
    "ALTER IGNORE TABLE {t} ADD CONSTRAINT CHECK (char_length(full_name) < 16)",
    "ALTER IGNORE TABLE {t} MODIFY full_name varchar(15)",
    "ALTER ONLINE IGNORE TABLE {t} ADD UNIQUE (full_name), LOCK=SHARED",
    "ALTER IGNORE TABLE {t} ADD COLUMN n int AS (char_length(full_name)) STORED CHECK (n < 16)",
    "ALTER ONLINE TABLE {t} ADD CONSTRAINT CHECK (char_length(full_name) < 16), LOCK=SHARED",
]


@pytest.mark.parametrize("sql", IGNORING)
@pytest.mark.parametrize(("env", "identity"), [("staging", CURIOUS_AGENT), ("production", HUMAN)])
def test_alter_ignore_tells_no_length(
    mysql_kw: dict[str, Any], mysql_conn: Any, pair: Pair, sql: str, env: str, identity: Any
) -> None:
    seen: dict[tuple[bool, str], Any] = {}
    for governed in (False, True):
        pair.reset()
        conn = _session(mysql_kw, governed, env, identity)
        try:
            for c, t in pair.items():
                seen[governed, c] = _see(conn, sql.format(t=t)), _truth(mysql_conn, t)
        finally:
            conn.close()
    assert seen[False, "A"] != seen[False, "B"], seen  # raw: 30 rows or 29, a name cut to 15, or an error
    assert seen[True, "A"][0] == seen[True, "B"][0], seen
    assert "masked-column-constraint" in seen[True, "A"][0], seen
    cols = ["id", "full_name", "ssn", "city"]
    assert seen[True, "A"][1] == (cols, (30, 9)) and seen[True, "B"][1] == (cols, (30, 23)), seen


#: ALTER ONLINE/IGNORE TABLE that reads no masked value: it keeps running (staging), exactly
IGNORE_LOOK_ALIKES = [
    ("ALTER IGNORE TABLE {t} ADD COLUMN note varchar(20)", 0),
    ("ALTER ONLINE TABLE {t} ADD COLUMN note varchar(20)", 0),
    ("ALTER IGNORE TABLE {t} ADD UNIQUE (city, id)", 30),
    ("ALTER IGNORE TABLE {t} ADD CONSTRAINT CHECK (id > 0)", 30),
]


@pytest.mark.parametrize(("sql", "count"), IGNORE_LOOK_ALIKES)
def test_alter_ignore_look_alikes_still_run(
    mysql_kw: dict[str, Any], mysql_conn: Any, pair: Pair, sql: str, count: int
) -> None:
    gov = _session(mysql_kw, True)
    try:
        assert rows_or_rules(gov, sql.format(t=pair["A"])) == count
        assert _truth(mysql_conn, pair["A"])[1] == (30, 9)
    finally:
        gov.close()


def test_aiomysql_renames_and_alter_ignore_are_refused(
    mysql_kw: dict[str, Any], mysql_conn: Any, pair: Pair
) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"], "autocommit": True}
    t = pair["A"]

    async def run() -> list[Any]:
        conn = govern(await aiomysql.connect(**kw), CURIOUS_AGENT, environment="staging")
        out: list[Any] = []
        try:
            for sql in (RENAMES[0][0], RENAMES[5][0], IGNORING[0], "ALTER TABLE {t} RENAME COLUMN city TO town"):
                cur = await conn.cursor()
                try:
                    await cur.execute(sql.format(t=t))
                    out.append(cur.rowcount)
                except governed_db.GuardrailViolation as e:
                    out.append(sorted(e.decision.rules))
        finally:
            conn.close()
        return out

    assert asyncio.run(run()) == [
        ["masked-column-copy", "schema-rewrite"],
        ["masked-column-copy", "schema-rewrite"],
        ["agent-ddl", "ddl", "masked-column-constraint"],
        0,
    ]
    assert _truth(mysql_conn, t) == (["id", "full_name", "ssn", "town"], (30, 9))


# -- 0323: an async connection judges DDL by the tables its warm-up read ------------------------------------------
#: DDL that checks every stored row, over ``code`` (SSNs: masked by what it holds, not by its name)
ASYNC_DDL = [
    "ALTER TABLE {t} ADD CONSTRAINT CHECK (code >= '5')",
    "CREATE UNIQUE INDEX {t}_ux ON {t} (code)",
    "ALTER TABLE {t} MODIFY code int",
]
#: row 1's code (both masked [US_SSN]); copy B's fails the CHECK, and B repeats it in row 2
CODES = {"A": ("536-22-8701", "536-22-8702"), "B": ("219-45-1234", "219-45-1234")}


@pytest.fixture
def coded(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    names = {c: f"rt16md_{unique}_c{c.lower()}" for c in CODES}

    def reset() -> None:
        with mysql_conn.cursor() as cur:
            for c, t in names.items():
                cur.execute(f"DROP TABLE IF EXISTS {t}")
                cur.execute(f"CREATE TABLE {t} (id int primary key, code varchar(20), city varchar(40))")
                cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s)", [
                    (1, CODES[c][0], "Paris"), (2, CODES[c][1], "Lyon"),
                    *((i, f"536-22-{8700 + i}", "Lyon") for i in range(3, 31)),
                ])

    reset()
    yield names
    with mysql_conn.cursor() as cur:
        for t in names.values():
            cur.execute(f"DROP TABLE IF EXISTS {t}")


def _schema(mysql_conn: Any, table: str) -> Any:
    """What the database holds of ``table``'s schema: its check constraints, indexes and ``code``'s type."""
    with mysql_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.CHECK_CONSTRAINTS WHERE TABLE_NAME = %s", (table,))
        checks = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM information_schema.STATISTICS WHERE TABLE_NAME = %s", (table,))
        indexes = cur.fetchone()[0]
        cur.execute("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_NAME = %s AND COLUMN_NAME = 'code'",
                    (table,))
        return checks, indexes, cur.fetchone()[0]


def test_aiomysql_ddl_over_a_column_masked_by_content_is_refused(
    mysql_kw: dict[str, Any], mysql_conn: Any, coded: dict[str, str]
) -> None:
    """On aiomysql the guard forgot, as it judged any DDL, the tables the warm-up had just read with await, and
    read them again through a replay that had no answer: ``code`` (SSNs, a name that says nothing) was unknown
    and the CHECK ran -- failing exactly for copy B's row 1. The sync connection refused it."""
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"], "autocommit": True}

    async def run(governed: bool) -> dict[str, list[Any]]:
        raw = await aiomysql.connect(**kw)
        conn = govern(raw, CURIOUS_AGENT, environment="staging") if governed else raw
        out: dict[str, list[Any]] = {c: [] for c in coded}
        try:
            for sql in ASYNC_DDL:
                for c, t in coded.items():
                    cur = await conn.cursor()
                    try:
                        await cur.execute(f"SELECT code FROM {t} WHERE id = 1")  # the table read, as an agent would
                        await cur.fetchall()
                        await cur.execute(sql.format(t=t))
                        out[c].append(cur.rowcount)
                    except governed_db.GuardrailViolation as e:
                        out[c].append(sorted(e.decision.rules))
                    except Exception as e:
                        out[c].append(type(e).__name__)
                    out[c].append(_schema(mysql_conn, t))
                coded_reset(mysql_conn, coded)
        finally:
            conn.close()
        return out

    raw_seen, gov_seen = asyncio.run(run(False)), asyncio.run(run(True))
    assert raw_seen["A"] != raw_seen["B"], raw_seen  # the CHECK, the unique key and the cast fail for B only
    assert gov_seen["A"] == gov_seen["B"], gov_seen
    refusals = gov_seen["A"][0::2]
    assert refusals == [
        ["agent-ddl", "ddl", "masked-column-constraint"],
        ["agent-ddl", "ddl", "masked-column-constraint"],
        ["masked-column-constraint", "schema-rewrite"],
    ], gov_seen
    assert gov_seen["A"][1::2] == [(0, 1, "varchar")] * 3, gov_seen  # nothing added, nothing converted


def coded_reset(mysql_conn: Any, coded: dict[str, str]) -> None:
    """The ``coded`` tables as the fixture made them (a raw statement may have changed them)."""
    with mysql_conn.cursor() as cur:
        for c, t in coded.items():
            cur.execute(f"DROP TABLE IF EXISTS {t}")
            cur.execute(f"CREATE TABLE {t} (id int primary key, code varchar(20), city varchar(40))")
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s)", [
                (1, CODES[c][0], "Paris"), (2, CODES[c][1], "Lyon"),
                *((i, f"536-22-{8700 + i}", "Lyon") for i in range(3, 31)),
            ])


def test_aiomysql_ddl_look_alikes_still_run(mysql_kw: dict[str, Any], mysql_conn: Any, coded: dict[str, str]) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"], "autocommit": True}
    t = coded["A"]

    async def run() -> list[Any]:
        conn = govern(await aiomysql.connect(**kw), CURIOUS_AGENT, environment="staging")
        out: list[Any] = []
        try:
            for sql in (f"ALTER TABLE {t} ADD CONSTRAINT CHECK (id > 0)", f"CREATE INDEX {t}_city ON {t} (city)",
                        f"ALTER TABLE {t} RENAME COLUMN city TO town", f"SELECT code, town FROM {t} WHERE id = 1"):
                cur = await conn.cursor()
                await cur.execute(sql)
                out.append([tuple(r) for r in await cur.fetchall()] if cur.description else cur.rowcount)
        finally:
            conn.close()
        return out

    assert asyncio.run(run()) == [30, 0, 0, [("[US_SSN]", "Paris")]]
    assert _schema(mysql_conn, t) == (1, 2, "varchar")


# -- 0322: ALTER TABLE ... ORDER BY writes the rows in the order of a masked column -------------------------------
#: row 1's name sorts last in copy A ("Zed Quint") and first in copy B ("Aaron Abel"); both [PERSON_NAME]
SORTED_NAMES = {"A": "Zed Quint", "B": "Aaron Abel"}


@pytest.mark.parametrize("engine", ["InnoDB", "MyISAM"])
@pytest.mark.parametrize(("env", "identity"), [("staging", CURIOUS_AGENT), ("production", HUMAN)])
def test_alter_table_order_by_a_masked_column_is_refused(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str, engine: str, env: str, identity: Any
) -> None:
    """A table without a primary key keeps its rows in the order ``ALTER TABLE t ORDER BY full_name`` wrote them,
    so a read without ORDER BY afterwards (``SELECT id FROM t LIMIT 3``, ``GROUP_CONCAT(id)``) told where row 1's
    name sorts."""
    names = {c: f"rt16md_{unique}_o{c.lower()}" for c in SORTED_NAMES}
    reads = ["ALTER TABLE {t} ORDER BY full_name", "SELECT id FROM {t} LIMIT 3", "SELECT GROUP_CONCAT(id) FROM {t}"]
    seen: dict[tuple[bool, str], Any] = {}
    try:
        for governed in (False, True):
            with mysql_conn.cursor() as cur:
                for c, t in names.items():
                    cur.execute(f"DROP TABLE IF EXISTS {t}")
                    cur.execute(f"CREATE TABLE {t} (id int, full_name varchar(100), city varchar(40)) ENGINE={engine}")
                    cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s)",
                                    [(1, SORTED_NAMES[c], "Paris"), *((i, f"Bob Stone{i}", "Lyon") for i in range(2, 31))])
            conn = _session(mysql_kw, governed, env, identity)
            try:
                for c, t in names.items():
                    seen[governed, c] = [_see(conn, sql.format(t=t)) for sql in reads]
            finally:
                conn.close()
    finally:
        with mysql_conn.cursor() as cur:
            for t in names.values():
                cur.execute(f"DROP TABLE IF EXISTS {t}")
    assert seen[False, "A"][1] == [(10,), (11,), (12,)] and seen[False, "B"][1] == [(1,), (10,), (11,)], seen
    assert seen[True, "A"] == seen[True, "B"], seen
    assert "masked-column-predicate" in seen[True, "A"][0], seen
    assert seen[True, "A"][1] == [(1,), (2,), (3,)], seen  # still as inserted


def test_alter_table_order_by_a_clear_column_still_runs(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> None:
    t = f"rt16md_{unique}_oc"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id int, full_name varchar(100), city varchar(40))")
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s)",
                        [(1, "Zed Quint", "Rome"), *((i, f"Bob Stone{i}", "Lyon") for i in range(2, 31))])
    gov = _session(mysql_kw, True)
    try:
        assert rows_or_rules(gov, f"ALTER TABLE {t} ORDER BY city") == 30
        assert rows_or_rules(gov, f"SELECT id FROM {t} LIMIT 2") == [(2,), (3,)]  # Lyon first: row 1 (Rome) last
    finally:
        gov.close()
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


# -- 0322: a DEFAULT over the row's masked columns fills a clear column with them ---------------------------------
#: an ALTER that gives a column a DEFAULT reading masked columns, and the read of what it filled
DEFAULTS = [
    ("ALTER TABLE {t} ADD COLUMN x varchar(100) DEFAULT (full_name)", "SELECT x FROM {t} WHERE id = 1"),
    ("ALTER TABLE {t} ADD COLUMN x int DEFAULT (char_length(full_name)) FIRST", "SELECT x FROM {t} WHERE id = 1"),
    ("ALTER TABLE {t} ADD COLUMN x varchar(100) DEFAULT (reverse(ssn)), ALGORITHM=COPY", "SELECT x FROM {t} WHERE id = 1"),
    ("ALTER IGNORE TABLE {t} ADD x varchar(100) DEFAULT (concat(city, full_name))", "SELECT x FROM {t} WHERE id = 1"),
    # a later write copies its row's name: the agent's own insert stands for the application's next one
    ("ALTER TABLE {t} ALTER COLUMN city SET DEFAULT (full_name)",
     "INSERT INTO {t} (id, full_name) SELECT 99, 'Ann Lowe' FROM DUAL"),
]


@pytest.mark.parametrize(("ddl", "read"), DEFAULTS)
def test_a_default_over_masked_columns_is_a_copy(
    mysql_kw: dict[str, Any], mysql_conn: Any, pair: Pair, ddl: str, read: str
) -> None:
    seen: dict[tuple[bool, str], Any] = {}
    for governed in (False, True):
        pair.reset()
        conn = _session(mysql_kw, governed)
        try:
            for c, t in pair.items():
                seen[governed, c] = _see(conn, ddl.format(t=t)), _see(conn, read.format(t=t)), _truth(mysql_conn, t)
        finally:
            conn.close()
    if "SET DEFAULT" in ddl:  # no raw oracle at once: the default copies the names of rows written later
        with mysql_conn.cursor() as cur:
            cur.execute("SELECT COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_NAME = %s "
                        "AND COLUMN_NAME = 'city'", (pair["A"],))
            assert cur.fetchone()[0] in (None, "NULL")  # governed: refused, no default
    else:
        assert seen[False, "A"] != seen[False, "B"], seen  # raw: the new column holds the name (or its length)
    assert seen[True, "A"][0] == seen[True, "B"][0], seen
    assert "masked-column-copy" in seen[True, "A"][0], seen
    cols = ["id", "full_name", "ssn", "city"]
    assert seen[True, "A"][2] == (cols, (30 + ("INSERT" in read), 9)), seen  # nothing added


def test_a_constant_default_still_adds_its_column(mysql_kw: dict[str, Any], mysql_conn: Any, pair: Pair) -> None:
    gov = _session(mysql_kw, True)
    try:
        for sql in ("ALTER TABLE {t} ADD COLUMN note varchar(20) DEFAULT 'full_name'",
                    "ALTER TABLE {t} ADD COLUMN seen datetime DEFAULT CURRENT_TIMESTAMP",
                    "ALTER TABLE {t} ALTER COLUMN city SET DEFAULT 'Lyon'"):
            assert rows_or_rules(gov, sql.format(t=pair["A"])) == 0
        assert rows_or_rules(gov, f"SELECT note FROM {pair['A']} WHERE id = 1") == [("full_name",)]
    finally:
        gov.close()


# -- 0322: a new partitioning moves every row by its expression ------------------------------------------------------
#: partitionings that fail exactly when a stored value fits no partition (row 1: "Zed Quint" and 91,000 in copy A,
#: "Aaron Abel" and 41,000 in copy B)
PARTITIONINGS = [
    "ALTER TABLE {t} PARTITION BY RANGE COLUMNS(full_name) (PARTITION p0 VALUES LESS THAN ('N'))",
    "ALTER TABLE {t} PARTITION BY LIST COLUMNS(full_name) (PARTITION p0 VALUES IN ('Aaron Abel', "
    + ", ".join(f"'Bob Stone{i}'" for i in range(2, 31)) + "))",
    "ALTER TABLE {t} PARTITION BY RANGE (salary) (PARTITION p0 VALUES LESS THAN (50000))",
    "ALTER IGNORE TABLE {t} PARTITION BY RANGE (salary) (PARTITION p0 VALUES LESS THAN (50000))",
]


@pytest.mark.parametrize("sql", PARTITIONINGS)
def test_a_partitioning_by_a_masked_column_is_refused(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str, sql: str
) -> None:
    names = {c: f"rt16md_{unique}_p{c.lower()}" for c in SORTED_NAMES}
    seen: dict[tuple[bool, str], Any] = {}
    try:
        for governed in (False, True):
            with mysql_conn.cursor() as cur:
                for c, t in names.items():
                    cur.execute(f"DROP TABLE IF EXISTS {t}")
                    cur.execute(f"CREATE TABLE {t} (id int, full_name varchar(100), salary int, city varchar(40))")
                    cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s, %s)", [
                        (1, SORTED_NAMES[c], 91000 if c == "A" else 41000, "Paris"),
                        *((i, f"Bob Stone{i}", 30000 + i, "Lyon") for i in range(2, 31)),
                    ])
            conn = _session(mysql_kw, governed)
            try:
                for c, t in names.items():
                    with mysql_conn.cursor() as cur:
                        seen[governed, c] = _see(conn, sql.format(t=t))
                        cur.execute("SELECT count(*) FROM information_schema.PARTITIONS WHERE TABLE_NAME = %s "
                                    "AND PARTITION_NAME IS NOT NULL", (t,))
                        partitions = cur.fetchone()[0]
                        cur.execute(f"SELECT count(*) FROM {t}")
                        seen[governed, c, "partitions"] = partitions, cur.fetchone()[0]
            finally:
                conn.close()
    finally:
        with mysql_conn.cursor() as cur:
            for t in names.values():
                cur.execute(f"DROP TABLE IF EXISTS {t}")
    # raw: "Table has no partition for value" for one copy only (with IGNORE: that copy's row 1 is gone)
    assert (seen[False, "A"], seen[False, "A", "partitions"]) != (seen[False, "B"], seen[False, "B", "partitions"])
    assert seen[True, "A"] == seen[True, "B"] and "masked-column-constraint" in seen[True, "A"], seen
    assert seen[True, "A", "partitions"] == seen[True, "B", "partitions"] == (0, 30), seen


def test_a_partitioning_by_clear_columns_still_runs(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> None:
    t = f"rt16md_{unique}_pc"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id int, full_name varchar(100), city varchar(40))")
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s)", [(i, f"Bob Stone{i}", "Lyon") for i in range(1, 31)])
    gov = _session(mysql_kw, True)
    try:
        assert rows_or_rules(gov, f"ALTER TABLE {t} PARTITION BY HASH(id) PARTITIONS 2") == 30
        assert rows_or_rules(gov, f"ALTER TABLE {t} REMOVE PARTITIONING") == 30
        sql = f"ALTER TABLE {t} PARTITION BY RANGE COLUMNS(city) (PARTITION p0 VALUES LESS THAN ('Z'))"
        assert rows_or_rules(gov, sql) == 30
    finally:
        gov.close()
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


# -- 0322: CHECKSUM TABLE is a function of every stored value ------------------------------------------------------
CHECKSUMS = ["CHECKSUM TABLE {t}", "CHECKSUM TABLE {t} EXTENDED", "checksum tables {db}.{t} QUICK"]


@pytest.mark.parametrize("sql", CHECKSUMS)
def test_checksum_table_tells_no_value(mysql_kw: dict[str, Any], pair: Pair, sql: str) -> None:
    """Staging lets maintenance statements run (they warn): ``CHECKSUM TABLE`` returned a checksum of every row,
    which tells the two copies apart (and matches a table of guesses exactly when they are right)."""
    seen: dict[tuple[bool, str], Any] = {}
    for governed in (False, True):
        conn = _session(mysql_kw, governed)
        try:
            for c, t in pair.items():
                seen[governed, c] = repr(_see(conn, sql.format(t=t, db=MYSQL_DB))).replace(t, "T")
        finally:
            conn.close()
    if "QUICK" not in sql:  # (QUICK reads the live checksum only MyISAM/Aria keep: NULL for InnoDB)
        assert seen[False, "A"] != seen[False, "B"], seen
    assert seen[True, "A"] == seen[True, "B"] == '"refused: [\'maintenance\', \'masked-column-predicate\']"', seen


def test_checksum_of_a_table_without_masked_columns_still_runs(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str
) -> None:
    t = f"rt16md_{unique}_ck"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id int primary key, city varchar(40))")
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s)", [(i, "Lyon") for i in range(1, 31)])
    gov = _session(mysql_kw, True)
    try:
        rows = rows_or_rules(gov, f"CHECKSUM TABLE {t}")
        assert isinstance(rows, list) and len(rows) == 1 and rows[0][0] == f"{MYSQL_DB}.{t}", rows
    finally:
        gov.close()
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}")


def test_aiomysql_checksum_table_is_refused(mysql_kw: dict[str, Any], pair: Pair) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"], "autocommit": True}

    async def run() -> Any:
        conn = govern(await aiomysql.connect(**kw), CURIOUS_AGENT, environment="staging")
        try:
            cur = await conn.cursor()
            with pytest.raises(governed_db.GuardrailViolation) as refused:
                await cur.execute(f"CHECKSUM TABLE {pair['A']}")
            return sorted(refused.value.decision.rules)
        finally:
            conn.close()

    assert asyncio.run(run()) == ["maintenance", "masked-column-predicate"]


# -- 0322: unique indexes sqlglot reads wrongly or not at all ---------------------------------------------------------
#: unique indexes over ``code`` (SSNs): copy B's row 1 repeats row 2's SSN, so they fail on B only
UNIQUE_INDEXES = [
    "CREATE UNIQUE INDEX {t}_u ON {t} (code) ALGORITHM=COPY",
    "CREATE UNIQUE INDEX {t}_u ON {t} (code) LOCK=SHARED",
    "CREATE UNIQUE INDEX {t}_u USING BTREE ON {t} (code)",
    "CREATE UNIQUE INDEX {t}_u ON {t} (code(11))",  # a prefix, read by sqlglot as a call of code()
    "ALTER TABLE {t} ADD UNIQUE (code(11))",
]


@pytest.mark.parametrize("sql", UNIQUE_INDEXES)
def test_unique_index_forms_tell_no_duplicate(
    mysql_kw: dict[str, Any], mysql_conn: Any, coded: dict[str, str], sql: str
) -> None:
    seen: dict[tuple[bool, str], Any] = {}
    for governed in (False, True):
        coded_reset(mysql_conn, coded)
        conn = _session(mysql_kw, governed)
        try:
            for c, t in coded.items():
                seen[governed, c] = repr(_see(conn, sql.format(t=t, db=MYSQL_DB))).replace(t, "T"), _schema(mysql_conn, t)
        finally:
            conn.close()
    assert seen[False, "A"] != seen[False, "B"], seen  # raw: "Duplicate entry" for B only
    assert seen[True, "A"] == seen[True, "B"], seen
    assert "masked-column-constraint" in seen[True, "A"][0] and seen[True, "A"][1] == (0, 1, "varchar"), seen


def test_index_look_alikes_still_run(mysql_kw: dict[str, Any], mysql_conn: Any, coded: dict[str, str]) -> None:
    t = coded["A"]
    gov = _session(mysql_kw, True)
    try:
        for sql in ("CREATE INDEX {t}_p ON {t} (code(6))", "CREATE UNIQUE INDEX {t}_u ON {t} (id, city)",
                    "CREATE INDEX {t}_c ON {t} (city) ALGORITHM=INPLACE"):
            assert rows_or_rules(gov, sql.format(t=t)) == 0, sql
        assert _schema(mysql_conn, t) == (0, 5, "varchar")  # (one row per indexed column)
    finally:
        gov.close()
