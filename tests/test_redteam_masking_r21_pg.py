"""Round 21 red team (pg21), PostgreSQL through psycopg 3 (sync and async) and psycopg2: tables split by inheritance
on a masked column, row counts of the catalog, and two over-refusals.

The application keeps its customers the old way: ``CREATE TABLE t_lo (CHECK (full_name < 'N')) INHERITS (t)`` and a
``t_hi`` for the other names, each row inserted into the child whose CHECK admits it. A child then holds the rows
whose name meets its CHECK, and everything decision 0384 closed for a declarative partition was open again:
``SELECT count(*) FROM t_lo`` (10 or 9), ``SELECT id FROM ONLY t_hi``, ``UPDATE t_lo ... WHERE id = 1`` (1 or 0
rows), the parent's ``tableoid`` (``tableoid::regclass`` said ``t_lo`` or ``t_hi``, ``count(DISTINCT tableoid)``),
and the parent's unordered rows, which masking ordered by ``ctid`` alone (a ctid is one child's: row 1 came second
where it was the first of ``t_hi``). The catalog counted the same rows: ``pg_class.reltuples`` and
``pg_stat_user_tables.n_live_tup`` of ``t_lo``, and of a partial index ``CREATE INDEX ... WHERE full_name < 'N'``
over a plain table (decision 0399).

Over-refusals (decision 0400): an INSERT of the caller's own values into a partition of a table partitioned by a
masked column, and a SELECT from a table whose only policy over a masked column is ``FOR INSERT``.

Oracles compare two copies that differ only in row 1's name (``Alice Smith`` or ``Zoe Quinn``, masked alike).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, pg_variants, seen_once

pytestmark = pytest.mark.usefixtures("pg_dsn")

#: row 1's name per copy: either side of 'N'
SECRETS = {"a": "Alice Smith", "b": "Zoe Quinn"}
REFUSED = "refused: ['masked-column-predicate']"




@pytest.fixture
def family(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per copy a and b, ``{t}`` with children ``{t}_lo`` (CHECK name < 'N') and ``{t}_hi`` (CHECK name >= 'N',
    one more column of its own), 10 customers each in the child its name belongs to (row 1, stored first, the
    copy's; the others before 'N'), the children analysed; and the application's views: ``{t}_v`` naming each row's child, ``{t}_y``
    of the clear columns."""
    names: dict[str, str] = {}
    try:
        for v, name in SECRETS.items():
            t = names[v] = f"p21_{unique}_{v}"
            pg_conn.execute(f"CREATE TABLE {t} (id int, full_name text, city text)")
            pg_conn.execute(f"CREATE TABLE {t}_lo (CHECK (full_name < 'N')) INHERITS ({t})")
            pg_conn.execute(f"CREATE TABLE {t}_hi (since date, CHECK (full_name >= 'N')) INHERITS ({t})")
            pg_conn.execute(
                f"INSERT INTO {t}_{'lo' if name < 'N' else 'hi'} VALUES (1, %s, 'Paris')", (name,)
            )
            pg_conn.execute(
                f"INSERT INTO {t}_lo SELECT g, 'Aaron Number ' || g, 'Lyon' FROM generate_series(2, 10) g"
            )
            pg_conn.execute(f"ANALYZE {t}_lo")
            pg_conn.execute(
                f"CREATE VIEW {t}_v AS SELECT tableoid::regclass::text AS part, id, city FROM {t}"
            )
            pg_conn.execute(f"CREATE VIEW {t}_y AS SELECT id, city FROM {t}")
        yield names
    finally:
        for t in names.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {t} CASCADE")


#: name -> statement; over the raw connection, the two copies answer differently
TOLD = {
    "a-child-counted": "SELECT count(*) FROM {t}_lo",
    "a-child-read-by-key": "SELECT id FROM {t}_lo WHERE id = 1",
    "only-the-child": "SELECT id FROM ONLY {t}_hi ORDER BY id",
    "a-child-read-whole": "SELECT * FROM {t}_hi",
    "a-write-through-a-child": "UPDATE {t}_lo SET city = 'Nice' WHERE id = 1",
    "a-delete-through-a-child": "DELETE FROM {t}_hi WHERE id = 1",
    "the-child-a-row-is-in": "SELECT tableoid::regclass, id FROM {t} ORDER BY id",
    "rows-of-one-child-by-tableoid": "SELECT id FROM {t} WHERE tableoid = '{t}_hi'::regclass",
    "children-counted-by-tableoid": "SELECT count(DISTINCT tableoid) FROM {t}",
    "counted-per-child": "SELECT count(*) FROM {t} GROUP BY tableoid ORDER BY 1",
    "the-child-by-pg_class": "SELECT c.relname FROM {t} x JOIN pg_class c ON c.oid = x.tableoid WHERE id = 1",
    "a-view-naming-the-child": "SELECT part, id FROM {t}_v ORDER BY id",
    "the-child-s-reltuples": "SELECT reltuples FROM pg_class WHERE oid = '{t}_lo'::regclass",
}  # fmt: skip


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("name", list(TOLD), ids=list(TOLD))
def test_an_inheritance_child_by_a_masked_column_picks_no_rows(
    family: dict[str, str], driver: str, name: str
) -> None:
    seen = pg_variants(driver, family, seen_once(TOLD[name]))
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1] == repr(REFUSED), seen


#: name -> statement read without ORDER BY: child by child, and within each in the order stored
UNORDERED = {
    "every-row": "SELECT id FROM {t}",
    "the-first-three": "SELECT id, city FROM {t} LIMIT 3",
    "numbered-as-read": "SELECT id, row_number() OVER () FROM {t}",
    "a-view-of-its-clear-columns": "SELECT id FROM {t}_y",
}  # fmt: skip


@pytest.mark.parametrize("name", list(UNORDERED), ids=list(UNORDERED))
def test_an_inheritance_parent_is_read_in_no_order_a_masked_column_decides(
    family: dict[str, str], name: str
) -> None:
    seen = pg_variants("psycopg", family, seen_once(UNORDERED[name]))
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected: row 1 first or last
    assert seen["a"][1] == seen["b"][1], seen
    assert "refused" not in seen["a"][1] and "(1," in seen["a"][1], (
        seen
    )  # ordered by clear values, not refused


def test_the_refusal_names_the_child_s_check(family: dict[str, str]) -> None:
    """The refusal says which constraint decides and what to do."""
    assert "CHECK constraints that keep table" in _refusal(f"SELECT id FROM {family['a']}_lo"), family
    assert "full_name" in _refusal(f"SELECT id FROM {family['a']}_lo")


def _refusal(sql: str) -> str:
    """The text of the refusal of ``sql`` on a governed psycopg session (which must refuse it)."""
    import psycopg

    from tests.conftest import PG_DSN

    with psycopg.connect(PG_DSN) as raw, pytest.raises(governed_db.GuardrailViolation) as e:
        govern(raw).cursor().execute(sql)
    assert "unmask" in str(e.value), e.value
    return str(e.value)


def test_an_inheritance_child_through_psycopg_async(family: dict[str, str]) -> None:
    """An ``AsyncConnection`` reads the children's CHECKs and the parent's placement too."""
    import psycopg

    from tests.conftest import PG_DSN

    statements = [
        "SELECT count(*) FROM {t}_lo",
        "SELECT tableoid::regclass FROM {t} WHERE id = 1",
        "SELECT id FROM {t}",
    ]

    async def see(table: str, governed: bool) -> list[Any]:
        conn = await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True)
        conn = govern(conn) if governed else conn
        out: list[Any] = []
        try:
            for sql in statements:
                try:
                    cur = await conn.execute(sql.format(t=table))
                    out.append([tuple(r) for r in await cur.fetchall()])
                except governed_db.GuardrailViolation:
                    out.append("refused")
        finally:
            await conn.close()
        return out

    seen = {v: (asyncio.run(see(t, False)), asyncio.run(see(t, True))) for v, t in family.items()}
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == ["refused", "refused", [(i,) for i in range(1, 11)]], seen


@pytest.fixture
def by_id(pg_conn: Any, unique: str) -> Iterator[str]:
    """Customers split by inheritance on the id (``{t}_lo`` below 6, ``{t}_hi`` from it): no masked column decides."""
    t = f"p21_{unique}_i"
    try:
        pg_conn.execute(f"CREATE TABLE {t} (id int, full_name text, city text)")
        pg_conn.execute(f"CREATE TABLE {t}_lo (CHECK (id < 6)) INHERITS ({t})")
        pg_conn.execute(f"CREATE TABLE {t}_hi (CHECK (id >= 6)) INHERITS ({t})")
        for part, ids in (("hi", "6, 10"), ("lo", "1, 5")):
            pg_conn.execute(f"INSERT INTO {t}_{part} SELECT g, 'Person Number ' || g, 'Lyon' "
                            f"FROM generate_series({ids}) g")  # fmt: skip
        yield t
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {t} CASCADE")


#: innocent look-alikes over a family split by id: each answers exactly as over the raw connection
BY_ID = [
    "SELECT count(*) FROM {t}_lo",
    "SELECT id, full_name FROM ONLY {t}_hi ORDER BY id",
    "SELECT tableoid::regclass, id FROM {t} ORDER BY id",
    "SELECT id FROM {t} WHERE tableoid = '{t}_hi'::regclass ORDER BY id",
    "SELECT id, city FROM {t}",
    "UPDATE {t}_lo SET city = 'Nice' WHERE id = 1",
    "INSERT INTO {t}_lo VALUES (0, 'Bob Jones', 'Nice')",
]


@pytest.mark.parametrize("sql", BY_ID, ids=range(len(BY_ID)))
def test_inheritance_by_a_clear_column_still_runs(by_id: str, sql: str) -> None:
    seen = pg_variants("psycopg", {"a": by_id, "b": by_id}, seen_once(sql))
    raw, gov = seen["a"]
    assert "refused" not in gov and "Error" not in gov, seen
    assert gov == raw.replace("Person Number", "[PERSON_NAME]") or "[PERSON_NAME]" in gov, seen


def test_the_family_still_answers_by_key(family: dict[str, str]) -> None:
    """The parent read by its clear columns in their order, written by key, and an INSERT of the caller's own values
    into a child, still run."""

    def see(conn: Any, table: str) -> Any:
        return [seen_once(sql)(conn, table) for sql in (
            "SELECT id, full_name, city FROM {t} WHERE id < 3 ORDER BY id",
            "UPDATE {t} SET city = 'Nice' WHERE id = 1",
            "INSERT INTO {t}_lo (id, full_name, city) VALUES (11, 'Bob Jones', 'Nice')",
        )]  # fmt: skip

    seen = pg_variants("psycopg", family, see)
    assert (
        seen["a"][1]
        == seen["b"][1]
        == ["[(1, '[PERSON_NAME]', 'Paris'), (2, '[PERSON_NAME]', 'Lyon')]", "1", "1"]
    )


@pytest.fixture
def keyed(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per copy a and b, ``{t}`` partitioned by range of the name with a unique index on the id of ``{t}_lo`` alone,
    and ``{t}i`` split by inheritance with a primary key on the id of ``{t}i_lo`` alone: row 1 in the part its
    name belongs to."""
    names: dict[str, str] = {}
    try:
        for v, name in SECRETS.items():
            t = names[v] = f"p21_{unique}_k{v}"
            pg_conn.execute(
                f"CREATE TABLE {t} (id int, full_name text, city text) PARTITION BY RANGE (full_name)"
            )
            pg_conn.execute(f"CREATE TABLE {t}_lo PARTITION OF {t} FOR VALUES FROM (MINVALUE) TO ('N')")
            pg_conn.execute(f"CREATE TABLE {t}_hi PARTITION OF {t} FOR VALUES FROM ('N') TO (MAXVALUE)")
            pg_conn.execute(f"CREATE UNIQUE INDEX {t}_lo_id ON {t}_lo (id)")
            pg_conn.execute(f"INSERT INTO {t} VALUES (1, %s, 'Paris')", (name,))
            pg_conn.execute(f"CREATE TABLE {t}i (id int, full_name text, city text)")
            pg_conn.execute(
                f"CREATE TABLE {t}i_lo (PRIMARY KEY (id), CHECK (full_name < 'N')) INHERITS ({t}i)"
            )
            pg_conn.execute(f"CREATE TABLE {t}i_hi (CHECK (full_name >= 'N')) INHERITS ({t}i)")
            pg_conn.execute(
                f"INSERT INTO {t}i_{'lo' if name < 'N' else 'hi'} VALUES (1, %s, 'Paris')", (name,)
            )
        yield names
    finally:
        for t in names.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {t}, {t}i CASCADE")


#: name -> statement; over the raw connection, whether the id conflicts says where row 1 is stored
CONFLICTS = {
    "through-the-parent": "INSERT INTO {t} VALUES (1, 'Bob Jones', 'Nice')",
    "through-the-parent-on-conflict": "INSERT INTO {t} VALUES (1, 'Bob Jones', 'Nice') ON CONFLICT DO NOTHING",
    "into-the-partition": "INSERT INTO {t}_lo VALUES (1, 'Bob Jones', 'Nice')",
    "into-the-child": "INSERT INTO {t}i_lo VALUES (1, 'Bob Jones', 'Nice')",
}  # fmt: skip


@pytest.mark.parametrize("name", list(CONFLICTS), ids=list(CONFLICTS))
def test_a_unique_index_of_one_part_compares_no_stored_row(keyed: dict[str, str], name: str) -> None:
    seen = pg_variants("psycopg", keyed, seen_once(CONFLICTS[name]))
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected: a UniqueViolation or a row inserted
    assert seen["a"][1] == seen["b"][1] == repr("refused: ['masked-column-constraint']"), seen


# -- a partial index over a masked column: the catalog counts its rows (decision 0399) --------------------------
@pytest.fixture
def indexed(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per copy a and b, 10 customers (row 1 the copy's name) with the application's partial index ``{t}_lo`` over
    the ids of the names before 'N' and its materialized view ``{t}_mv`` of those customers, analysed."""
    names: dict[str, str] = {}
    try:
        for v, name in SECRETS.items():
            t = names[v] = f"p21_{unique}_x{v}"
            pg_conn.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, full_name text, city text)")
            pg_conn.execute(f"INSERT INTO {t} VALUES (1, %s, 'Paris')", (name,))
            pg_conn.execute(
                f"INSERT INTO {t} SELECT g, 'Aaron Number ' || g, 'Lyon' FROM generate_series(2, 10) g"
            )
            pg_conn.execute(f"CREATE INDEX {t}_lo ON {t} (id) WHERE full_name < 'N'")
            pg_conn.execute(
                f"CREATE MATERIALIZED VIEW {t}_mv AS SELECT id, city FROM {t} WHERE full_name < 'N'"
            )
            pg_conn.execute(f"ANALYZE {t}_mv")
        yield names
    finally:
        for t in names.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {t} CASCADE")


#: statements reading the catalog's row counts; the first tells the copies apart over the raw connection
COUNTS = [
    "SELECT reltuples FROM pg_class WHERE oid = '{t}_lo'::regclass",
    "SELECT c.reltuples::int FROM pg_class c WHERE c.relname = '{t}_lo'",
    "SELECT to_jsonb(c) ->> 'reltuples' FROM pg_class c WHERE c.oid = '{t}_lo'::regclass",
    "SELECT n_live_tup, n_tup_ins FROM pg_stat_user_tables WHERE relid = '{t}'::regclass",
    "SELECT pg_stat_get_live_tuples('{t}_lo'::regclass)",
    "SELECT reltuples FROM pg_class WHERE oid = '{t}_mv'::regclass",
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_partial_index_over_a_masked_column_counts_no_rows(indexed: dict[str, str], driver: str) -> None:
    seen = pg_variants(driver, indexed, lambda conn, t: [seen_once(sql)(conn, t) for sql in COUNTS])
    assert seen["a"][0][0] != seen["b"][0][0] and seen["a"][0][-1] != seen["b"][0][-1], (
        seen
    )  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1] == [repr(REFUSED)] * len(COUNTS), seen


def test_row_counts_name_the_relation_and_stay_readable_without_one(pg_conn: Any, unique: str) -> None:
    """The refusal names the partial index; with it over a clear column, row counts read as raw (unless another
    session's relation is picked by a masked column at that moment: then the refusal names that one, not ours)."""
    t = f"p21_{unique}_c"
    pg_conn.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, full_name text, city text)")
    try:
        pg_conn.execute(
            f"INSERT INTO {t} SELECT g, 'Aaron Number ' || g, 'Lyon' FROM generate_series(1, 10) g"
        )
        pg_conn.execute(f"CREATE INDEX {t}_p ON {t} (id) WHERE city = 'Paris'")
        raw, gov = pg_variants("psycopg", {"a": t, "b": t}, seen_once(COUNTS[0]))["a"]
        if "refused" in gov:
            why = _refusal(f"SELECT reltuples FROM pg_class WHERE oid = '{t}'::regclass")
            assert t not in why, why  # refused for our own index over the city: an over-refusal
            pytest.skip(f"another session's relation is picked by a masked column: {why}")
        assert gov == raw, (raw, gov)
        pg_conn.execute(f"CREATE INDEX {t}_n ON {t} (id) WHERE full_name > 'M'")
        why = _refusal(f"SELECT reltuples FROM pg_class WHERE oid = '{t}'::regclass")
        assert "count rows" in why and "full_name" in why, why
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


# -- over-refusals (decision 0400) ---------------------------------------------------------------------------------
@pytest.fixture
def split(pg_conn: Any, unique: str) -> Iterator[str]:
    """Customers partitioned by range of the name (``{t}_lo`` below 'N', ``{t}_hi`` from it), row 1 Alice."""
    t = f"p21_{unique}_p"
    try:
        pg_conn.execute(
            f"CREATE TABLE {t} (id int, full_name text, city text) PARTITION BY RANGE (full_name)"
        )
        pg_conn.execute(f"CREATE TABLE {t}_lo PARTITION OF {t} FOR VALUES FROM (MINVALUE) TO ('N')")
        pg_conn.execute(f"CREATE TABLE {t}_hi PARTITION OF {t} FOR VALUES FROM ('N') TO (MAXVALUE)")
        pg_conn.execute(f"INSERT INTO {t} VALUES (1, 'Alice Smith', 'Paris')")
        yield t
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


#: statement -> what the governed session sees: the caller's own values are checked against the bound; a copy of
#: stored values, or a conflict with stored rows, is still refused
PARTITION_INSERTS = {
    "INSERT INTO {t}_lo VALUES (5, 'Bob Jones', 'Nice')": 1,
    "INSERT INTO {t}_lo (id, full_name, city) VALUES (5, 'Bob Jones', 'Nice') RETURNING id": [(5,)],
    "INSERT INTO {t}_lo VALUES (5, 'Zed Jones', 'Nice')": "CheckViolation",  # (the error's class name)
    "INSERT INTO {t}_hi SELECT * FROM {t} WHERE id = 1": "refused: ['masked-column-copy']",
    "INSERT INTO {t}_lo VALUES ((SELECT id FROM {t} WHERE full_name < 'N'), 'Bob', 'Nice')": REFUSED,
}


@pytest.mark.parametrize("sql", list(PARTITION_INSERTS), ids=range(len(PARTITION_INSERTS)))
def test_an_insert_of_own_values_into_a_partition_runs(split: str, sql: str) -> None:
    seen = pg_variants("psycopg", {"a": split, "b": split}, seen_once(sql))
    assert seen["a"][1] in (repr(PARTITION_INSERTS[sql]), PARTITION_INSERTS[sql]), seen


@pytest.fixture
def policed(pg_conn: Any, unique: str) -> Iterator[tuple[str, str]]:
    """A login role of its own and a table of customers whose policies over the name are for writes only
    (``FOR INSERT``, ``FOR UPDATE``), its reads allowed by a ``FOR SELECT USING (true)``: ``(role, table)``."""
    role, t = f"p21_{unique}", f"p21_{unique}_r"
    pg_conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        pg_conn.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, full_name text, city text)")
        pg_conn.execute(f"INSERT INTO {t} VALUES (1, 'Alice Smith', 'Paris'), (2, 'Zoe Quinn', 'Lyon')")
        pg_conn.execute(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
        pg_conn.execute(f"CREATE POLICY {t}_s ON {t} FOR SELECT USING (true)")
        pg_conn.execute(f"CREATE POLICY {t}_i ON {t} FOR INSERT WITH CHECK (full_name <> '')")
        pg_conn.execute(f"CREATE POLICY {t}_u ON {t} FOR UPDATE USING (full_name < 'N')")
        pg_conn.execute(f"GRANT SELECT, INSERT, UPDATE ON {t} TO {role}")
        yield role, t
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")
        pg_conn.execute(f"DROP ROLE IF EXISTS {role}")


#: statement -> what the role's governed session sees: a plain read meets only the SELECT policy; a write, or a
#: read that locks rows (``FOR UPDATE`` applies the UPDATE policy), is judged by every policy
POLICED = {
    "SELECT id, city FROM {t} ORDER BY id": [(1, "Paris"), (2, "Lyon")],
    "SELECT count(*) FROM {t}": [(2,)],
    "SELECT id FROM {t} WHERE id = 2 FOR UPDATE": REFUSED,
    "UPDATE {t} SET city = 'Nice' WHERE id = 2": REFUSED,
}


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("sql", list(POLICED), ids=range(len(POLICED)))
def test_a_policy_for_writes_does_not_refuse_a_read(policed: tuple[str, str], driver: str, sql: str) -> None:
    from tests.conftest import PG_DSN

    role, t = policed
    dsn = " ".join(p for p in PG_DSN.split() if not p.startswith("user=")) + f" user={role}"
    if driver == "psycopg":
        import psycopg

        raw: Any = psycopg.connect(dsn)
    else:
        raw = pytest.importorskip("psycopg2").connect(dsn)
    conn = govern(raw)
    try:
        assert seen_once(sql)(conn, t) == repr(POLICED[sql])
    finally:
        conn.close()


def test_row_counts_through_psycopg_async(pg_conn: Any, unique: str) -> None:
    """An ``AsyncConnection`` reads what picks the relations' rows in its warm-up: row counts run where nothing
    masked picks them (unreadable before: refused always), and are refused where a masked column does."""
    import psycopg

    from tests.conftest import PG_DSN

    t = f"p21_{unique}_as"

    async def reltuples() -> Any:
        conn = govern(await psycopg.AsyncConnection.connect(PG_DSN, autocommit=True))
        try:
            cur = await conn.execute(f"SELECT reltuples::int FROM pg_class WHERE oid = '{t}'::regclass")
            return await cur.fetchall()
        except governed_db.GuardrailViolation as e:
            return f"refused: {e}"
        finally:
            await conn.close()

    pg_conn.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, full_name text, city text)")
    try:
        pg_conn.execute(
            f"INSERT INTO {t} SELECT g, 'Aaron Number ' || g, 'Lyon' FROM generate_series(1, 10) g"
        )
        pg_conn.execute(f"CREATE INDEX {t}_p ON {t} (id) WHERE city = 'Paris'")
        seen = asyncio.run(reltuples())
        if "refused" in str(seen) and t not in str(seen):
            pytest.skip(f"another session's relation is picked by a masked column: {seen}")
        assert seen == [(10,)], seen
        pg_conn.execute(f"CREATE INDEX {t}_n ON {t} (id) WHERE full_name > 'M'")
        seen = asyncio.run(reltuples())
        # refused; by this index, unless another session's relation picked by a masked column came first (the
        # refusal names the first it finds: on a shared server that may be another test's)
        assert str(seen).startswith("refused: "), seen
        assert f"{t}_n" in str(seen) or "reltuples" in str(seen), seen
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")
