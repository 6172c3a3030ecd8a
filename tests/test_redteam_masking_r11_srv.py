"""Red-team round 11 on the server databases (PostgreSQL: psycopg 3, psycopg2): a prompt-injected agent in
production with zero configuration, no unmask grant.

* PostgreSQL reads ``c.f``, where the table ``c`` has no column ``f``, as the function call ``f(c)`` over the
  whole row (attribute notation). The lineage took ``c.row_to_json`` for a column the catalog lacked (decision
  0251: read the column list again, find nothing new) with no label: ``SELECT id, c.row_to_json FROM people c``
  returned every column of the row in clear (name, e-mail, SSN), ``WHERE c.row_to_json::text LIKE
  '%536-22-8726%'`` counted a guess and ``ORDER BY c.to_jsonb ->> 'full_name'`` sorted by the names. The name is
  judged as the call it is now, exactly as ``row_to_json(c.*)`` (decision 0256): masked by keys in a select
  list, refused where it decides rows, exact over a table with no masked column.

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
connection shows that the same statements tell them apart. Look-alikes that reveal nothing keep running.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests.conftest import PG_DSN

AGENT = governed_db.Identity("agent-x", kind="agent", on_behalf_of="bob")
DDL = "(id int primary key, full_name text, email text, ssn text, city text)"
ROWS_A = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "Paris"),
    (2, "Bob Jones", "bob.jones@example.org", "219-45-1234", "Lyon"),
    (3, "Chen Wei", "chen.wei@example.net", "412-77-9001", "Nice"),
]
ROWS_B = [(1, "Zoe Quinn-Harper", "amy@example.com", "100-99-0000", "Paris"), *ROWS_A[1:]]
SECRETS = ("Alice", "alice", "536-22-8726", "Zoe", "amy", "100-99-0000")

#: attribute notation: a function of the whole row named like a column
ATTRIBUTE_READS = [
    "SELECT id, c.row_to_json FROM {t} c WHERE id = 1",
    "SELECT id, {t}.to_jsonb FROM {t} WHERE id = 1",
    "SELECT c.to_json FROM {t} c JOIN {t} d ON d.id = c.id WHERE c.id = 1",
    "SELECT count(*) FROM {t} c WHERE c.row_to_json::text LIKE '%536-22-8726%'",
    "SELECT id FROM {t} c ORDER BY c.to_jsonb ->> 'full_name'",
    "SELECT id FROM {t} c WHERE length(c.row_to_json::text) = 97 ORDER BY id",
]


def _wrap(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)


def _connect(driver: str) -> Any:
    if driver == "psycopg":
        import psycopg

        return psycopg.connect(PG_DSN, autocommit=True)
    psycopg2 = pytest.importorskip("psycopg2")
    conn = psycopg2.connect(PG_DSN)
    conn.autocommit = True
    return conn


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
def tables(pg_conn: Any, unique: str) -> Iterator[tuple[str, str, str]]:
    """Two people tables that differ only in row 1's masked values, and one with no masked column."""
    names = (f"rt11srv_a_{unique}", f"rt11srv_b_{unique}", f"rt11srv_i_{unique}")
    for name, rows in zip(names[:2], (ROWS_A, ROWS_B), strict=True):
        pg_conn.execute(f"CREATE TABLE {name} {DDL}")
        with pg_conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s, %s, %s)", rows)
    pg_conn.execute(f"CREATE TABLE {names[2]} (id int primary key, city text, amount int)")
    with pg_conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {names[2]} VALUES (%s, %s, %s)", [(1, "Paris", 10), (2, "Lyon", 20)])
    yield names
    for name in names:
        pg_conn.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize(
    "template", ATTRIBUTE_READS, ids=["row-to-json", "unaliased", "join", "like", "order", "length"]
)
def test_attribute_notation_of_a_row_function_tells_nothing(
    tables: tuple[str, str, str], driver: str, template: str
) -> None:
    a, b, _ = tables
    raw, gov = _connect(driver), _wrap(_connect(driver))
    try:
        seen = {}
        for name in (a, b):
            sql = template.format(t=name)
            seen[name] = (
                repr(_observe(raw, sql)).replace(name, "T"),
                repr(_observe(gov, sql)).replace(name, "T"),
            )
    finally:
        raw.close()
        gov.close()
    # the oracle, unprotected: the raw session tells the two tables apart
    assert seen[a][0] != seen[b][0], seen[a][0]
    # governed: the same for both, with no byte of either secret
    assert seen[a][1] == seen[b][1], f"A: {seen[a][1]}\nB: {seen[b][1]}"
    assert not any(s in seen[a][1] or s in seen[b][1] for s in SECRETS), seen[a][1]
    if "WHERE id = 1" in template or "c.id = 1" in template:
        assert "refused" not in seen[a][1] and "[US_SSN]" in seen[a][1], seen[a][1]  # masked, not refused
    else:
        assert seen[a][1].startswith("'refused: ") and "masked-column-predicate" in seen[a][1], seen[a][1]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_attribute_notation_look_alikes_still_run(tables: tuple[str, str, str], driver: str) -> None:
    """Over a table with no masked column the attribute form is exact, filters and orders; over people it is
    masked like the call it stands for; a real column of that name is still the column."""
    a, _, innocent = tables
    raw, gov = _connect(driver), _wrap(_connect(driver))
    try:
        for sql in (
            f"SELECT c.row_to_json FROM {innocent} c ORDER BY id",
            f"SELECT id FROM {innocent} c WHERE c.to_jsonb ->> 'city' = 'Paris'",
            f"SELECT id, c.to_json FROM {innocent} c ORDER BY c.to_jsonb ->> 'city'",
        ):
            assert _observe(gov, sql) == _observe(raw, sql), sql
        called = _observe(gov, f"SELECT id, row_to_json(c.*) FROM {a} c ORDER BY id")
        attribute = _observe(gov, f"SELECT id, c.row_to_json FROM {a} c ORDER BY id")
        assert called[1] == attribute[1] and called[1][0][0] == 1, attribute
        assert called[1][0][1]["ssn"] == "[US_SSN]" and called[1][0][1]["city"] == "Paris", called
        assert _observe(gov, f"SELECT c.city FROM {a} c WHERE c.city = 'Lyon'") == (["city"], [("Lyon",)])
        # a typo on a table with no masked column is still the database's error
        assert "does not exist" in repr(_observe(gov, f"SELECT c.cty FROM {innocent} c"))
    finally:
        raw.close()
        gov.close()


@pytest.mark.parametrize(
    "template",
    [
        "UPDATE {t} c SET city = c.to_json::text WHERE id = 1",
        "UPDATE {t} SET city = {t}.to_jsonb ->> 'ssn' WHERE id = 1",
        "INSERT INTO {t} (id, city) SELECT 9, c.row_to_json::text FROM {t} c WHERE id = 1",
    ],
    ids=["update-alias", "update-key", "insert-select"],
)
def test_attribute_notation_is_not_copied_into_a_clear_column(tables: tuple[str, str, str], template: str) -> None:
    """Writing the row function into an innocent column would carry the values out of masking's reach: refused,
    and the table is as it was (read on the raw connection)."""
    a, _, _ = tables
    gov = _wrap(_connect("psycopg"))
    try:
        refused = _observe(gov, template.format(t=a))
    finally:
        gov.close()
    assert isinstance(refused, str) and "masked-column-copy" in refused, refused
    raw = _connect("psycopg")
    try:
        assert _observe(raw, f"SELECT id, city FROM {a} ORDER BY id") == (
            ["id", "city"],
            [(1, "Paris"), (2, "Lyon"), (3, "Nice")],
        )
    finally:
        raw.close()
