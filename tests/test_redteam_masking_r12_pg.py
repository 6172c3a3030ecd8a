"""Red-team round 12 on PostgreSQL (psycopg 3, psycopg2): a prompt-injected agent in production with zero
configuration, no unmask grant.

* A column of a composite type (``info addr`` where ``addr AS (holder text, ssn text, city text)``) comes back as
  one text, ``("Alice Smith",536-22-8726,Paris)``. It was classified from its values only: scanned, so the
  holder's name came back in clear (a scan finds no names), and an SSN the recognizers reject (``100-99-0000``)
  too. The composite's field names now label the column: masked whole under the first field that names personal
  data, and refused where it decides rows (decision 0261).

* A JSON document column (``doc jsonb``) was scanned value by value: ``{"full_name": "Alice Smith", ...}`` came
  back with the name in clear. A key that names personal data (``full_name``, ``ssn``, ``email``, ``holder``)
  now masks its value whole, as a column of that name would be; other keys are scanned as before (0261).

Each oracle compares two tables that differ only in row 1's secret values; the raw connection shows that the
same statements tell them apart. Look-alikes that hold no personal data come back exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, raw_and_governed, seen_apart
from tests._redteam import observe as _observe
from tests.conftest import PG_DSN

#: row 1's secrets: A's SSN is one the recognizers accept, B's one they reject (serial 0000)
SECRET = {
    "a": ("Alice Smith", "536-22-8726", "alice@example.com"),
    "b": ("Zoe Quinn-Harper", "100-99-0000", "amy@example.com"),
}
SECRETS = ("Alice", "536-22-8726", "alice@", "Zoe", "Quinn", "100-99-0000", "amy@")
OTHERS = [
    (2, "Bob Jones", "219-45-1234", "bob@example.org"),
    (3, "Chen Wei", "412-77-9001", "chen@example.net"),
]


def _seen_pair(driver: str, names: dict[str, str], kind: str, template: str) -> dict[str, tuple[str, str]]:
    """What the raw and the governed session see of ``template`` over variants a and b (table names blanked)."""
    with raw_and_governed(driver) as (raw, gov):
        return seen_apart(raw, gov, {v: names[f"{kind}{v}"] for v in ("a", "b")}, template)


@pytest.fixture
def tables(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant a and b: a table with a composite column and one with a JSON document column."""
    names: dict[str, str] = {}
    for v, (name, ssn, email) in SECRET.items():
        comp, docs = f"rt12pg_c{v}_{unique}", f"rt12pg_j{v}_{unique}"
        pg_conn.execute(f"CREATE TYPE {comp}_t AS (holder text, ssn text, city text)")
        pg_conn.execute(f"CREATE TABLE {comp} (id int primary key, info {comp}_t, note text)")
        pg_conn.execute(f"CREATE TABLE {docs} (id int primary key, doc jsonb)")
        with pg_conn.cursor() as cur:
            for i, n, s, e in [(1, name, ssn, email), *OTHERS]:
                cur.execute(f"INSERT INTO {comp} VALUES (%s, ROW(%s, %s, 'Paris'), 'x')", (i, n, s))
                cur.execute(
                    f"INSERT INTO {docs} VALUES (%s, jsonb_build_object('full_name', %s::text, 'email', %s::text,"
                    " 'city', 'Paris'))",
                    (i, n, e),
                )
        names[f"c{v}"], names[f"j{v}"] = comp, docs
    pg_conn.execute(f"CREATE TYPE rt12pg_m_{unique}_t AS (amount numeric, currency text)")
    pg_conn.execute(
        f"CREATE TABLE rt12pg_i_{unique} (id int primary key, price rt12pg_m_{unique}_t, doc jsonb)"
    )
    pg_conn.execute(
        f'INSERT INTO rt12pg_i_{unique} VALUES (1, ROW(10.5, \'EUR\'), \'{{"sku": "A-1", "qty": 2, "city": '
        '"Paris"}\'), (2, ROW(3, \'USD\'), \'{"sku": "B-2", "qty": 5, "city": "Lyon"}\')'
    )
    names["i"] = f"rt12pg_i_{unique}"
    yield names
    for key, name in names.items():
        pg_conn.execute(f"DROP TABLE IF EXISTS {name}")
        if key.startswith("c"):
            pg_conn.execute(f"DROP TYPE IF EXISTS {name}_t")
    pg_conn.execute(f"DROP TYPE IF EXISTS rt12pg_m_{unique}_t")


READS = [
    ("c", "SELECT id, info FROM {t} WHERE id = 1"),
    ("c", "SELECT * FROM {t} WHERE id = 1"),
    ("c", "SELECT id, info::text FROM {t} c WHERE id = 1"),
    ("c", "SELECT id, (info).holder FROM {t} WHERE id = 1"),
    ("c", "SELECT count(*) FROM {t} WHERE (info).holder = 'Alice Smith'"),
    ("c", "SELECT id FROM {t} ORDER BY (info).holder"),
    ("j", "SELECT id, doc FROM {t} WHERE id = 1"),
    ("j", "SELECT * FROM {t} WHERE id = 1"),
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize(
    "kind,template",
    READS,
    ids=["comp", "comp-star", "comp-text", "comp-field", "comp-where", "comp-order", "doc", "doc-star"],
)
def test_composite_and_document_fields_named_as_personal_data_tell_nothing(
    tables: dict[str, str], driver: str, kind: str, template: str
) -> None:
    seen = _seen_pair(driver, tables, kind, template)
    # the oracle, unprotected: the raw session tells the two tables apart
    assert seen["a"][0] != seen["b"][0], seen["a"][0]
    # governed: the same for both, with no byte of either secret
    assert seen["a"][1] == seen["b"][1], f"A: {seen['a'][1]}\nB: {seen['b'][1]}"
    assert not any(s in seen["a"][1] or s in seen["b"][1] for s in SECRETS), seen["a"][1]
    if "WHERE id = 1" in template:
        assert "refused" not in seen["a"][1], seen["a"][1]
        assert "[PERSON_NAME]" in seen["a"][1], seen["a"][1]
    else:
        assert "masked-column-predicate" in seen["a"][1], seen["a"][1]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_innocent_composites_and_documents_read_exactly(tables: dict[str, str], driver: str) -> None:
    """A composite whose fields name nothing personal, a document whose keys do not, and the other columns of
    the tables above come back as the raw connection returns them, and may filter and order."""
    i, docs = tables["i"], tables["ja"]
    with raw_and_governed(driver) as (raw, gov):
        for sql in (
            f"SELECT id, price, doc FROM {i} ORDER BY id",
            f"SELECT * FROM {i} ORDER BY id",
            f"SELECT id, (price).currency FROM {i} WHERE (price).amount > 5",
            f"SELECT id FROM {i} WHERE doc ->> 'sku' = 'B-2'",
            f"SELECT id FROM {i} ORDER BY (price).amount",
            f"SELECT id, note FROM {tables['ca']} ORDER BY id",
        ):
            assert _observe(gov, sql) == _observe(raw, sql), sql
        _cols, rows = _observe(gov, f"SELECT id, doc FROM {docs} ORDER BY id")
        # keys that name nothing personal keep their values; the others are masked whole
        assert rows[1][1] == {"full_name": "[PERSON_NAME]", "email": "[EMAIL]", "city": "Paris"}, rows


@pytest.fixture
def views(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant a and b: a people table and, over it, a view and a materialized view that rename and compute
    on its masked columns under innocent names."""
    names: dict[str, str] = {}
    for v, (name, ssn, email) in SECRET.items():
        t = f"rt12pg_p{v}_{unique}"
        pg_conn.execute(
            f"CREATE TABLE {t} (id int primary key, full_name text, email text, ssn text, city text)"
        )
        with pg_conn.cursor() as cur:
            for i, n, s, e in [(1, name, ssn, email), *OTHERS]:
                cur.execute(f"INSERT INTO {t} VALUES (%s, %s, %s, %s, 'Paris')", (i, n, e, s))
        pg_conn.execute(
            f"CREATE VIEW {t}_v AS SELECT id, full_name AS who, full_name || '/' || city AS label, city, "
            f"p AS whole FROM {t} p"
        )
        pg_conn.execute(f"CREATE MATERIALIZED VIEW {t}_m AS SELECT id, full_name AS who, city FROM {t}")
        names[f"v{v}"], names[f"m{v}"], names[f"p{v}"] = f"{t}_v", f"{t}_m", t
    yield names
    for v in SECRET:
        pg_conn.execute(f"DROP TABLE IF EXISTS {names[f'p{v}']} CASCADE")


VIEW_READS = [
    ("v", "SELECT * FROM {t} WHERE id = 1"),
    ("v", "SELECT id, who, label FROM {t} WHERE id = 1"),
    ("v", "SELECT count(*) FROM {t} WHERE who LIKE 'Alice%'"),
    ("v", "SELECT count(*) FROM {t} WHERE label LIKE 'Alice%'"),
    ("v", "SELECT id FROM {t} ORDER BY who"),
    ("m", "SELECT * FROM {t} WHERE id = 1"),
    ("m", "SELECT count(*) FROM {t} WHERE who LIKE 'Alice%'"),
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize(
    "kind,template",
    VIEW_READS,
    ids=["view-star", "view", "view-where", "view-computed", "view-order", "matview", "matview-where"],
)
def test_view_columns_over_masked_columns_tell_nothing(
    views: dict[str, str], driver: str, kind: str, template: str
) -> None:
    """A view's column is its query's result: ``full_name AS who`` is the name whatever it is called (decision
    0262); before, a view or materialized view was classified from its own names and values only, so the
    renamed names came back in clear and answered ``LIKE 'Alice%'``."""
    seen = _seen_pair(driver, views, kind, template)
    assert seen["a"][0] != seen["b"][0], seen["a"][0]
    assert seen["a"][1] == seen["b"][1], f"A: {seen['a'][1]}\nB: {seen['b'][1]}"
    assert not any(s in seen["a"][1] or s in seen["b"][1] for s in SECRETS), seen["a"][1]
    if "WHERE id = 1" in template:
        assert "refused" not in seen["a"][1] and "[PERSON_NAME]" in seen["a"][1], seen["a"][1]
    else:
        assert "masked-column-predicate" in seen["a"][1], seen["a"][1]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_innocent_view_columns_read_exactly(
    views: dict[str, str], unique: str, pg_conn: Any, driver: str
) -> None:
    """Columns of a view that pass on innocent columns, and views over a table without masked columns, come
    back as on the raw connection, and filter and order."""
    pg_conn.execute(f"CREATE TABLE rt12pg_o_{unique} (id int primary key, city text, amount int)")
    pg_conn.execute(f"INSERT INTO rt12pg_o_{unique} VALUES (1, 'Paris', 10), (2, 'Lyon', 20)")
    pg_conn.execute(
        f"CREATE VIEW rt12pg_o_{unique}_v AS SELECT id, upper(city) AS town, amount * 2 AS twice FROM rt12pg_o_{unique}"
    )
    with raw_and_governed(driver) as (raw, gov):
        for sql in (
            f"SELECT id, city FROM {views['va']} WHERE city = 'Paris' ORDER BY id",
            f"SELECT id, city FROM {views['ma']} ORDER BY city, id",
            f"SELECT * FROM rt12pg_o_{unique}_v WHERE town LIKE 'P%' ORDER BY twice",
        ):
            assert _observe(gov, sql) == _observe(raw, sql), sql
        assert _observe(gov, f"SELECT id, town FROM rt12pg_o_{unique}_v ORDER BY id") == (
            ["id", "town"],
            [(1, "PARIS"), (2, "LYON")],
        )
        pg_conn.execute(f"DROP TABLE IF EXISTS rt12pg_o_{unique} CASCADE")


def test_asyncpg_documents_as_text_are_masked_by_key(tables: dict[str, str]) -> None:
    """asyncpg returns ``jsonb`` as text: the text is walked as the document it is, so its keys name their values
    as psycopg's decoded dicts do; a composite comes back as a record with its fields masked; an innocent
    document is the raw text."""
    import asyncio

    asyncpg = pytest.importorskip("asyncpg")
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"

    async def read(sql: str, governed: bool) -> list[Any]:
        conn = await asyncpg.connect(url)
        target = govern(conn) if governed else conn
        try:
            return [tuple(r) for r in await target.fetch(sql)]
        finally:
            await target.close()

    seen = {}
    for v in ("a", "b"):
        sql = (
            f"SELECT d.doc, c.info FROM {tables['j' + v]} d JOIN {tables['c' + v]} c USING (id) WHERE id = 1"
        )
        seen[v] = (repr(asyncio.run(read(sql, False))), repr(asyncio.run(read(sql, True))))
    assert seen["a"][0] != seen["b"][0]
    assert seen["a"][1] == seen["b"][1], seen
    assert not any(s in seen["a"][1] or s in seen["b"][1] for s in SECRETS), seen["a"][1]
    assert "[PERSON_NAME]" in seen["a"][1] and "Paris" in seen["a"][1], seen["a"][1]
    innocent = f"SELECT doc FROM {tables['i']} ORDER BY id"
    assert asyncio.run(read(innocent, True)) == asyncio.run(read(innocent, False))


def test_asyncpg_view_columns_over_masked_columns_tell_nothing(views: dict[str, str]) -> None:
    """asyncpg: masking's catalog reads are answered ahead with ``await``; the view's definition and the tables
    it reads are among them, so a view is classified as on the other drivers."""
    import asyncio

    asyncpg = pytest.importorskip("asyncpg")
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"

    async def read(sql: str, governed: bool) -> str:
        conn = await asyncpg.connect(url)
        target = govern(conn) if governed else conn
        try:
            return repr([tuple(r) for r in await target.fetch(sql)])
        except governed_db.GuardrailViolation as e:
            return f"refused: {e}"
        finally:
            await target.close()

    for template in (
        "SELECT id, who, label, city FROM {t} WHERE id = 1",
        "SELECT count(*) FROM {t} WHERE who LIKE 'Alice%'",
    ):
        seen = {}
        for v in ("a", "b"):
            name = views[f"v{v}"]
            sql = template.format(t=name)
            seen[v] = (asyncio.run(read(sql, False)), asyncio.run(read(sql, True)).replace(name, "T"))
        assert seen["a"][0] != seen["b"][0]
        assert seen["a"][1] == seen["b"][1], seen
        assert not any(s in seen["a"][1] for s in SECRETS), seen["a"][1]
    assert seen["a"][1].startswith("refused") and "masked-column-predicate" in seen["a"][1]
    innocent = f"SELECT id, city FROM {views['va']} WHERE city = 'Paris' ORDER BY id"
    assert asyncio.run(read(innocent, True)) == asyncio.run(read(innocent, False))
