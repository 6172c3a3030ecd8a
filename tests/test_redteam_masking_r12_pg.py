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
from tests.conftest import PG_DSN

AGENT = governed_db.Identity("agent-x", kind="agent", on_behalf_of="bob")
#: row 1's secrets: A's SSN is one the recognizers accept, B's one they reject (serial 0000)
SECRET = {
    "a": ("Alice Smith", "536-22-8726", "alice@example.com"),
    "b": ("Zoe Quinn-Harper", "100-99-0000", "amy@example.com"),
}
SECRETS = ("Alice", "536-22-8726", "alice@", "Zoe", "Quinn", "100-99-0000", "amy@")
OTHERS = [(2, "Bob Jones", "219-45-1234", "bob@example.org"), (3, "Chen Wei", "412-77-9001", "chen@example.net")]


def _connect(driver: str) -> Any:
    if driver == "psycopg":
        import psycopg

        return psycopg.connect(PG_DSN, autocommit=True)
    psycopg2 = pytest.importorskip("psycopg2")
    conn = psycopg2.connect(PG_DSN)
    conn.autocommit = True
    return conn


def _wrap(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)


def _observe(conn: Any, sql: str) -> Any:
    """Everything the caller sees of one statement: column names and rows, or the refusal or error text."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return [d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()]
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    except Exception as e:
        return f"{type(e).__name__}: {e}"


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
    pg_conn.execute(f"CREATE TABLE rt12pg_i_{unique} (id int primary key, price rt12pg_m_{unique}_t, doc jsonb)")
    pg_conn.execute(
        f"INSERT INTO rt12pg_i_{unique} VALUES (1, ROW(10.5, 'EUR'), '{{\"sku\": \"A-1\", \"qty\": 2, \"city\": "
        "\"Paris\"}'), (2, ROW(3, 'USD'), '{\"sku\": \"B-2\", \"qty\": 5, \"city\": \"Lyon\"}')"
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
    "kind,template", READS, ids=["comp", "comp-star", "comp-text", "comp-field", "comp-where", "comp-order",
                                 "doc", "doc-star"]
)
def test_composite_and_document_fields_named_as_personal_data_tell_nothing(
    tables: dict[str, str], driver: str, kind: str, template: str
) -> None:
    raw, gov = _connect(driver), _wrap(_connect(driver))
    try:
        seen = {}
        for v in ("a", "b"):
            name = tables[f"{kind}{v}"]
            sql = template.format(t=name)
            seen[v] = (repr(_observe(raw, sql)).replace(name, "T"), repr(_observe(gov, sql)).replace(name, "T"))
    finally:
        raw.close()
        gov.close()
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
    raw, gov = _connect(driver), _wrap(_connect(driver))
    i, docs = tables["i"], tables["ja"]
    try:
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
    finally:
        raw.close()
        gov.close()
