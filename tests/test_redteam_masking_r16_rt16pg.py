"""Red-team round 16 on PostgreSQL (psycopg 3, psycopg2, asyncpg): a prompt-injected agent in production with zero
configuration, no unmask grant.

Decision 0272 orders every read of a table with masked columns by its key, because where a row comes back in an
unordered read tells how wide the masked values stored before it are; where that plan refused, the statement was
planned as before and ran in storage order. Three shapes fell back that need not (decision 0320):

* ``SELECT id, full_name FROM t UNION ALL SELECT 0, 'x'``: a ``UNION ALL`` with a masked column was never ordered
  (sorting by every column would sort by the masked one); it is now sorted by its clear columns when they hold a
  key of each branch's rows;
* ``nth_value(id, 14) OVER ()`` / ``last_value(id) OVER (PARTITION BY city)``: an ORDER BY added to the window would
  cut its frame to the rows up to the current one; the whole frame is now written beside it;
* ``sum(id) OVER (ROWS UNBOUNDED PRECEDING)``: the key was written after the frame (``OVER (ROWS ... ORDER BY
  id)``, which does not parse) when the frame came first in the parentheses.

Each oracle compares two tables of 400 people that differ only in row 1's name (11 or 108 characters); the raw
connection tells them apart after ``UPDATE t SET city = NULL, full_name = NULL WHERE id = 5`` (or ``= 1``, rolled
back). Look-alikes: the same windows and unions give the raw connection's answer on tables as stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests._redteam import (
    CURIOUS_AGENT,
    govern,
    pg_connect,
    pg_moved_places,
    pg_stored_people,
    pg_variants,
    rows_or_rules,
)
from tests.conftest import PG_DSN

#: rows whose ids are on the first and the last page: where row 5 (or 1) comes among them says where it went
SOME = "id < 10 OR id > 395"


@pytest.fixture
def stored(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant a and b: 400 people differing only in row 1's name; ``i``: a table without masked columns."""
    names = pg_stored_people(pg_conn, f"rt16pg_{unique}")
    names["i"] = f"rt16pg_{unique}_i"
    pg_conn.execute(f"CREATE TABLE {names['i']} (id int primary key, qty int, city text)")
    pg_conn.execute(f"INSERT INTO {names['i']} SELECT g, g % 7, 'Lyon' FROM generate_series(1, 400) g")
    yield names
    for v in ("a", "b", "i"):
        pg_conn.execute(f"DROP TABLE IF EXISTS {names[v]}")


def _values(rows: list[Any]) -> list[Any]:
    return [r[0] for r in rows]


def _places(driver: str, stored: dict[str, str], sql: str) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per variant: (raw, governed) places of rows 5 and 1 in the first column of ``sql`` after the UPDATE."""

    def read(conn: Any, t: str) -> list[Any]:
        cur = conn.cursor()
        cur.execute(sql.format(t=t))
        return _values(cur.fetchall())

    return pg_variants(driver, stored, lambda conn, t: pg_moved_places(conn, t, read), identity=CURIOUS_AGENT)


#: shape -> (statement, what the governed connection answers in both tables: the rows read in key order)
FELL_BACK = {
    # the place of row 5 (1) among the union's rows: 5th (1st) of the table's, after the constant row 0
    "union-all-with-a-masked-column": (f"SELECT id, full_name FROM {{t}} WHERE {SOME} UNION ALL SELECT 0, 'x'",
                                       [5, 1]),
    # three branches: the inner UNION ALL's clear columns hold its branches' keys (row 1 comes twice: 0, 1, 1)
    "nested-union-all": (f"SELECT id, full_name FROM {{t}} WHERE {SOME} UNION ALL SELECT 0, 'x' UNION ALL "
                         "SELECT 1, 'y'", [6, 1]),
    # the 14th row read: row 400 in key order (row 5 where it went last, row 1 in the other table)
    "nth-value-over-the-whole-partition": (f"SELECT nth_value(id, 14) OVER () FROM {{t}} WHERE {SOME} LIMIT 1",
                                           [[400], [400]]),
    # a named window is not edited (others may share it): refused, with or without an index on a masked column
    "named-window": (f"SELECT nth_value(id, 14) OVER w FROM {{t}} WHERE {SOME} WINDOW w AS () LIMIT 1", None),
    "last-value-per-partition": (f"SELECT last_value(id) OVER (PARTITION BY id % 2) FROM {{t}} WHERE {SOME}",
                                 [[399, 400, 399, 400, 399, 400, 399, 400, 399, 400, 399, 400, 399, 400]] * 2),
    # the sums of the ids read before each row (row 1: the 2nd, 1; no 5 among them: the whole list)
    "running-sum-with-the-frame-first": (f"SELECT sum(id) OVER (ROWS UNBOUNDED PRECEDING) - id FROM {{t}} WHERE {SOME}",
                                         [[0, 1, 3, 6, 10, 15, 21, 28, 36, 45, 441, 838, 1236, 1635], 1]),
}  # fmt: skip


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("shape", list(FELL_BACK), ids=list(FELL_BACK))
def test_reads_that_fell_back_to_stored_order_are_ordered(stored: dict[str, str], driver: str, shape: str) -> None:
    sql, expected = FELL_BACK[shape]
    seen = _places(driver, stored, sql)
    assert seen["a"][0] != seen["b"][0], seen  # the oracle: the raw connection tells the tables apart
    if expected is None:
        assert seen["a"][1] == seen["b"][1], seen
        assert all(isinstance(s, str) and "masked-column-predicate" in s for s in seen["a"][1]), seen
    else:
        assert seen["a"][1] == seen["b"][1] == expected, seen


def _asyncpg_url() -> str:
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    return f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"


async def _asyncpg_places(governed: bool, table: str, sql: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_url())
    if governed:
        conn = govern(conn, CURIOUS_AGENT)
    out: list[Any] = []
    try:
        for row in (5, 1):
            tr = conn.transaction()
            await tr.start()
            try:
                await conn.execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
                ids = [r[0] for r in await conn.fetch(sql.format(t=table))]
                out.append(ids.index(row) if row in ids else ids)
            finally:
                await tr.rollback()
    finally:
        await conn.close()
    return out


@pytest.mark.parametrize("shape", ["union-all-with-a-masked-column", "nth-value-over-the-whole-partition"])
def test_asyncpg_reads_that_fell_back_are_ordered(stored: dict[str, str], shape: str) -> None:
    pytest.importorskip("asyncpg")
    sql, expected = FELL_BACK[shape]
    seen = {v: (asyncio.run(_asyncpg_places(False, stored[v], sql)),
                asyncio.run(_asyncpg_places(True, stored[v], sql))) for v in ("a", "b")}  # fmt: skip
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == expected, seen


#: statements whose answer does not depend on the read order once rows are stored as inserted (in key order), and
#: where it would (a partition PostgreSQL sorts by another column), the answer in key order the raw one spells out
LOOK_ALIKES = [
    (f"SELECT id, full_name, city FROM {{t}} WHERE {SOME} UNION ALL SELECT 0, 'x', 'y'", None),
    ("SELECT id, city FROM {t} WHERE id < 4 UNION ALL SELECT id, city FROM {t} WHERE id > 398", None),
    (f"SELECT nth_value(id, 3) OVER (), id FROM {{t}} WHERE {SOME}", None),
    (f"SELECT last_value(id) OVER (PARTITION BY city), id FROM {{t}} WHERE {SOME}",
     f"SELECT last_value(id) OVER (PARTITION BY city ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED "
     f"FOLLOWING), id FROM {{t}} WHERE {SOME}"),
    (f"SELECT first_value(city) OVER (PARTITION BY id % 3), id FROM {{t}} WHERE {SOME}", None),
    (f"SELECT sum(id) OVER (ROWS UNBOUNDED PRECEDING), id FROM {{t}} WHERE {SOME}", None),
    (f"SELECT count(*) OVER (ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), id FROM {{t}} WHERE {SOME}", None),
    (f"SELECT last_value(id) OVER (ORDER BY id), id FROM {{t}} WHERE {SOME}", None),
    ("SELECT id, full_name FROM {t} WHERE id < 3 UNION ALL SELECT 0, 'x' UNION ALL SELECT id, full_name FROM {t} "
     "WHERE id > 398", None),
    (f"SELECT id, row_number() OVER w, sum(id) OVER w FROM {{t}} WHERE {SOME} WINDOW w AS (ORDER BY id)", None),
]  # fmt: skip


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("sql,spelled", LOOK_ALIKES)
def test_innocent_windows_and_unions_keep_their_meaning(
    stored: dict[str, str], driver: str, sql: str, spelled: str | None
) -> None:
    """Ordered by the key, the same windows and unions answer what the raw connection answers over rows stored in
    key order (the whole frame a window had is kept), and a table without masked columns reads as written."""
    raw, gov = pg_connect(driver), govern(pg_connect(driver), CURIOUS_AGENT)
    try:
        for t in (stored["a"], stored["i"]):
            text, truth = sql.format(t=t), (spelled or sql).format(t=t)
            if t == stored["i"]:
                text = text.replace("full_name", "qty").replace("'x'", "1")
                truth = truth.replace("full_name", "qty").replace("'x'", "1")
            cur = raw.cursor()
            cur.execute(truth)
            want = [tuple(r) for r in cur.fetchall()]
            cur = gov.cursor()
            cur.execute(text)
            got = [tuple(r) for r in cur.fetchall()]
            if t == stored["a"]:
                # a union's column is masked in every row when one branch's is, the constant's too
                want = [tuple("[PERSON_NAME]" if c in ("Alice Smith", "x") or str(c).startswith("Person") else c
                              for c in r) for r in want]  # fmt: skip
            assert sorted(got, key=repr) == sorted(want, key=repr), text
            assert len(got) == len(want) > 0
    finally:
        raw.close()
        gov.close()


#: decision 0320's Open, ordered now (decision 0349): each branch read in its own key order
OPEN = {
    # a query over a UNION ALL with a masked column: the union's rows have no key (rows of its branches may
    # share one); the union's own order is pushed into it
    "query-over-a-union-all": f"SELECT * FROM (SELECT id, full_name FROM {{t}} WHERE {SOME} UNION ALL SELECT 0, 'x') s",
    # a UNION ALL whose clear columns hold no key of a branch's rows
    "union-all-without-a-key": f"SELECT city, id % 400, full_name FROM {{t}} WHERE {SOME} UNION ALL SELECT 'x', 0, 'y'",
}  # fmt: skip


@pytest.mark.parametrize("shape", list(OPEN), ids=list(OPEN))
def test_reads_that_still_fall_back(stored: dict[str, str], shape: str) -> None:
    seen = _places("psycopg", stored, OPEN[shape])
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1], seen


# -- DDL whose check over stored rows a masked value decides (decision 0321) ---------------------------------
#: the right guess (row 1's SSN) and a wrong one
GUESSES = ("123-45-6789", "123-45-0000")


@pytest.fixture
def people(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """``p``: four people (one with no name) keyed by id, a unique masked SSN; ``m``: a table of the agent's own."""
    names = {"p": f"rt16pg_{unique}_p", "m": f"rt16pg_{unique}_m", "c": f"rt16pg_{unique}_c"}
    yield names
    pg_conn.execute(f"DROP TABLE IF EXISTS {names['m']}, {names['c']}, {names['p']} CASCADE")


def _reset(admin: Any, names: dict[str, str], guess: str, fk: str = "") -> None:
    """The tables anew, the caller's holding the guess; ``fk``: a constraint the administrator adds to it."""
    p, m = names["p"], names["m"]
    admin.execute(f"DROP TABLE IF EXISTS {m}, {names['c']}, {p} CASCADE")
    admin.execute(f"CREATE TABLE {p} (id int primary key, full_name text, ssn text unique, city text not null)")
    admin.execute(f"INSERT INTO {p} VALUES (1, 'Alice Smith', '123-45-6789', 'Paris'), (2, 'Bob Jones', "
                  f"'987-65-4321', 'Lyon'), (3, NULL, '555-12-3456', 'Nice')")  # fmt: skip
    admin.execute(f"CREATE TABLE {m} (id int, s text)")
    admin.execute(f"INSERT INTO {m} VALUES (1, %s)", (guess,))
    if fk:
        admin.execute(f"ALTER TABLE {m} ADD {fk}")


def _ddl_seen(admin: Any, names: dict[str, str], env: str, script: str, fk: str = "") -> dict[str, tuple[str, str]]:
    """Per guess: what the raw and the governed session see of ``script``'s last statement (tables made anew)."""
    seen = {}
    for guess in GUESSES:
        out = []
        for governed in (False, True):
            _reset(admin, names, guess, fk)
            conn = pg_connect("psycopg")
            if governed:
                conn = govern(conn, CURIOUS_AGENT, environment=env)
            try:
                for sql in script.format(**names, guess=guess).split(";"):
                    last = rows_or_rules(conn, sql)
            except Exception as e:
                last = f"{type(e).__name__}"
            finally:
                conn.close()
            out.append(repr(last))
        seen[guess] = (out[0], out[1])
    return seen


DDL = {
    "foreign-key-to-a-masked-column": "ALTER TABLE {m} ADD CONSTRAINT {m}_fk FOREIGN KEY (s) REFERENCES {p}(ssn)",
    "column-with-a-foreign-key": "ALTER TABLE {m} ADD COLUMN t text DEFAULT '{guess}' REFERENCES {p}(ssn)",
    "a-copy-of-guesses-then-a-foreign-key": (
        "CREATE TABLE {c} AS SELECT '{guess}'::text s; ALTER TABLE {c} ADD FOREIGN KEY (s) REFERENCES {p}(ssn)"
    ),
    # whether a masked value is NULL: the name of row 3 is (the guess plays no part; the oracle is the table
    # with row 3's name set)
    "set-not-null": "ALTER TABLE {p} ALTER COLUMN full_name SET NOT NULL",
}


@pytest.mark.parametrize("env", ["staging", "production"])
@pytest.mark.parametrize("shape", list(DDL), ids=list(DDL))
def test_ddl_checking_stored_rows_against_masked_values_is_refused(
    pg_conn: Any, people: dict[str, str], env: str, shape: str
) -> None:
    """Staging lets an agent's DDL run (production asks for an approval, after which it would run as well): the
    check a new foreign key makes of the caller's rows of guesses against the masked parent column, and SET NOT
    NULL's of the masked values, succeeded or failed with the stored values. Refused by masked-column-constraint
    in both environments, before any approval is asked for."""
    script = DDL[shape]
    seen = _ddl_seen(pg_conn, people, env, script)
    if shape == "set-not-null":
        # the oracle: with row 3's name given, SET NOT NULL succeeds; without it, it fails
        raw = pg_connect("psycopg")
        try:
            _reset(pg_conn, people, GUESSES[0])
            pg_conn.execute(f"UPDATE {people['p']} SET full_name = 'Carol White' WHERE id = 3")
            assert rows_or_rules(raw, script.format(**people, guess="")) == -1
        finally:
            raw.close()
        assert "NotNullViolation" in seen[GUESSES[0]][0], seen
    else:
        assert seen[GUESSES[0]][0] != seen[GUESSES[1]][0], seen  # the raw session tells a right guess apart
    assert seen[GUESSES[0]][1] == seen[GUESSES[1]][1], seen
    assert "masked-column-constraint" in seen[GUESSES[0]][1], seen


def test_validating_a_foreign_key_to_a_masked_column_is_refused(pg_conn: Any, people: dict[str, str]) -> None:
    """A foreign key added NOT VALID (by an administrator, over the caller's rows of guesses) is checked by
    ``ALTER TABLE m VALIDATE CONSTRAINT``, which sqlglot keeps opaque: its target's masked column decides."""
    fk = f"CONSTRAINT {people['m']}_fk FOREIGN KEY (s) REFERENCES {people['p']} (ssn) NOT VALID"
    script = "ALTER TABLE {m} VALIDATE CONSTRAINT {m}_fk"
    seen = _ddl_seen(pg_conn, people, "staging", script, fk=fk)
    assert seen[GUESSES[0]][0] != seen[GUESSES[1]][0], seen
    assert seen[GUESSES[0]][1] == seen[GUESSES[1]][1], seen
    assert "masked-column-constraint" in seen[GUESSES[0]][1], seen


INNOCENT_DDL = [
    "ALTER TABLE {m} ADD FOREIGN KEY (id) REFERENCES {p}(id)",
    "ALTER TABLE {p} ALTER COLUMN city SET NOT NULL",
    "ALTER TABLE {p} ALTER COLUMN full_name DROP NOT NULL",
    "ALTER TABLE {m} ADD COLUMN k int REFERENCES {p}(id)",
    # checks nothing of the stored rows (a later INSERT or VALIDATE does, and is judged then)
    "ALTER TABLE {m} ADD FOREIGN KEY (s) REFERENCES {p} (ssn) NOT VALID",
]


@pytest.mark.parametrize("sql", INNOCENT_DDL)
def test_innocent_ddl_runs_in_staging(pg_conn: Any, people: dict[str, str], sql: str) -> None:
    """A foreign key to a clear key column, SET NOT NULL on a clear column and DROP NOT NULL run as written."""
    _reset(pg_conn, people, GUESSES[1])
    conn = govern(pg_connect("psycopg"), CURIOUS_AGENT, environment="staging")
    try:
        assert rows_or_rules(conn, sql.format(**people)) == -1
    finally:
        conn.close()
    fks = pg_conn.execute(
        "SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'", (people["m"],)
    ).fetchone()[0]
    assert fks == (1 if "REFERENCES" in sql else 0)


# -- index entries read: HOT updates (decision 0320) -----------------------------------------------------------
def _index_reads(governed: bool, table: str, probe: str) -> Any:
    """After ``UPDATE t SET city = NULL, full_name = NULL WHERE id = 5`` and a read of row 5 by its key (rolled
    back): what ``probe`` tells of the key's index."""
    conn = pg_connect("psycopg", autocommit=False)
    if governed:
        conn = govern(conn, CURIOUS_AGENT)
    try:
        conn.cursor().execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = 5")
        conn.cursor().execute(f"SELECT id FROM {table} WHERE id = 5")
        return rows_or_rules(conn, probe.format(t=table))
    finally:
        conn.rollback()
        conn.close()


INDEX_READS = [
    "SELECT pg_stat_get_xact_tuples_returned('{t}_pkey'::regclass)",
    "SELECT pg_stat_get_tuples_returned(indexrelid) FROM pg_index WHERE indrelid = '{t}'::regclass",
    "SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelid = '{t}_pkey'::regclass",
    "SELECT s.* FROM pg_stat_all_indexes s WHERE indexrelid = '{t}_pkey'::regclass",
]


@pytest.mark.parametrize("probe", INDEX_READS)
def test_index_entries_read_do_not_tell_whether_an_update_stayed_on_its_page(
    stored: dict[str, str], probe: str
) -> None:
    """An UPDATE whose new version fits on its page is a HOT update and adds no index entry; one that does not
    adds one, and a read by the key then reads 2 entries instead of 1 (row 5 fits in table B, not in A, whose row
    1's long name left no room). ``n_tup_hot_upd`` was refused (decision 0244); the entries read were not."""
    oracle = [_index_reads(False, stored[v], INDEX_READS[0]) for v in ("a", "b")]
    assert oracle[0] != oracle[1], oracle
    seen = [_index_reads(True, stored[v], probe) for v in ("a", "b")]
    assert seen[0] == seen[1] and "masked-column-predicate" in seen[0], seen


def test_innocent_index_statistics_stay_readable(stored: dict[str, str]) -> None:
    """Scan counts and the rows index scans fetched (live rows, whatever the storage) come back as stored."""
    gov = govern(pg_connect("psycopg"), CURIOUS_AGENT)
    try:
        seen = rows_or_rules(gov, f"SELECT idx_scan >= 0, idx_tup_fetch >= 0 FROM pg_stat_user_indexes "
                                  f"WHERE indexrelid = '{stored['a']}_pkey'::regclass")  # fmt: skip
        assert seen == [(True, True)], seen
        seen = rows_or_rules(gov, f"SELECT pg_stat_get_xact_tuples_fetched('{stored['a']}_pkey'::regclass)")
        assert seen == [(0,)], seen
    finally:
        gov.close()


# -- the order a multi-row UPDATE locks rows in: key order first (decision 0351) -------------------------------
def _locked_first(admin: Any, table: str) -> Any:
    """Three governed sessions: one holds row 200, one runs an UPDATE of rows 5 and 200 that locks them in the
    order it reads them (and waits at 200), the third asks for row 5 with NOWAIT: refused when the UPDATE read
    row 5 before row 200 (it stayed on its page), granted when it read 200 first (it moved to the last page)."""
    import threading
    import time

    first = govern(pg_connect("psycopg"), CURIOUS_AGENT)
    first.cursor().execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = 5")  # (committed)
    first.close()
    holder, updater, prober = (govern(pg_connect("psycopg", autocommit=False), CURIOUS_AGENT) for _ in range(3))
    try:
        holder.cursor().execute(f"SELECT id FROM {table} WHERE id = 200 FOR UPDATE")
        pid = updater.info.backend_pid
        update = threading.Thread(
            target=lambda: updater.cursor().execute(f"UPDATE {table} SET city = 'b' WHERE city IS NULL OR id = 200")
        )
        update.start()
        for _ in range(100):  # until the UPDATE waits for row 200
            if admin.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = %s", (pid,)).fetchone()[0]:
                break
            time.sleep(0.05)
        try:
            return rows_or_rules(prober, f"SELECT id FROM {table} WHERE id = 5 FOR UPDATE NOWAIT")
        except Exception as e:
            return type(e).__name__
        finally:
            prober.rollback()
            holder.rollback()
            update.join()
            updater.rollback()
    finally:
        for c in (holder, updater, prober):
            c.close()


def test_the_order_an_update_locks_rows_in_tells_nothing(pg_conn: Any, stored: dict[str, str]) -> None:
    seen = [_locked_first(pg_conn, stored[v]) for v in ("a", "b")]
    assert seen[0] == seen[1], seen


# -- CLUSTER on an index of a masked column (decision 0320) ---------------------------------------------------
#: per variant, rows 1 and 2's SSNs: row 1's is the smaller in A, the larger in B
CLUSTERED = {"a": ("123-45-6789", "987-65-4321"), "b": ("987-65-4321", "123-45-6789")}


def _clustered_order(admin: Any, table: str, ssns: tuple[str, str], governed: bool, sql: str) -> Any:
    admin.execute(f"DROP TABLE IF EXISTS {table}")
    admin.execute(f"CREATE TABLE {table} (id int primary key, full_name text, ssn text unique, city text)")
    admin.execute(f"INSERT INTO {table} VALUES (1, 'Alice Smith', %s, 'Paris'), (2, 'Bob Jones', %s, 'Lyon'), "
                  f"(3, 'Carol White', '555-12-3456', 'Nice')", ssns)  # fmt: skip
    conn = pg_connect("psycopg")
    if governed:
        conn = govern(conn, CURIOUS_AGENT, environment="staging")
    try:
        done = rows_or_rules(conn, sql.format(t=table))
        # a read no ORDER BY can be added to comes in storage order (decision 0320 Open): Paris before Lyon?
        return done, rows_or_rules(conn, f"SELECT city, full_name FROM {table} UNION ALL SELECT 'x', 'y'")
    finally:
        conn.close()


@pytest.mark.parametrize(
    "sql", ["CLUSTER {t} USING {t}_ssn_key", "CLUSTER VERBOSE {t} USING {t}_ssn_key",
            "ALTER TABLE {t} CLUSTER ON {t}_ssn_key", "CLUSTER {t} USING no_such_index"],
)  # fmt: skip
def test_cluster_on_a_masked_column_is_refused(pg_conn: Any, unique: str, sql: str) -> None:
    """Staging runs an agent's CLUSTER (maintenance, with a warning): stored in SSN order, the rows of a read that
    follows storage came in the order of the masked values. Refused now (an index the catalog does not list
    counts as every masked column)."""
    table = f"rt16pg_{unique}_k"
    try:
        raw = [_clustered_order(pg_conn, table, CLUSTERED[v], False, "CLUSTER {t} USING {t}_ssn_key")
               for v in ("a", "b")]  # fmt: skip
        assert raw[0][1] != raw[1][1], raw  # the oracle: Paris first in A, Lyon first in B
        seen = [_clustered_order(pg_conn, table, CLUSTERED[v], True, sql) for v in ("a", "b")]
        assert seen[0] == seen[1], seen
        assert "masked-column-predicate" in seen[0][0], seen
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.parametrize(
    "sql", ["CLUSTER {t} USING {t}_pkey", "ALTER TABLE {t} CLUSTER ON {t}_pkey", "CLUSTER {t}"]
)
def test_innocent_cluster_runs(pg_conn: Any, unique: str, sql: str) -> None:
    """On the primary key (or the index an administrator chose, with no USING) CLUSTER runs in staging."""
    table = f"rt16pg_{unique}_k"
    try:
        if sql == "CLUSTER {t}":
            _clustered_order(pg_conn, table, CLUSTERED["a"], False, "ALTER TABLE {t} CLUSTER ON {t}_pkey")
            conn = govern(pg_connect("psycopg"), CURIOUS_AGENT, environment="staging")
            try:
                assert rows_or_rules(conn, sql.format(t=table)) == -1
            finally:
                conn.close()
        else:
            done, _rows = _clustered_order(pg_conn, table, CLUSTERED["a"], True, sql)
            assert done == -1, done
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {table}")
