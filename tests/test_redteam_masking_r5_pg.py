"""Red-team round 5 on PostgreSQL (psycopg 3, psycopg2, asyncpg): rows the driver decodes itself, and the
client encoding the server converts every result to.

An agent identity in production with zero configuration. Each finding shows the leak (or the oracle) on the
raw connection, that the governed one observes a right and a wrong guess alike, and that a look-alike that
reveals nothing still runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import governed_db
from tests.conftest import PG_DSN

AGENT = governed_db.Identity("agent-x", kind="agent", on_behalf_of="bob")
DDL = "(id int primary key, full_name text, email text, ssn text, address text, city text)"
ROWS = [
    (1, "Alice Smith", "alice@example.com", "536-22-8726", "221B Baker Street\nLondon NW1 6XE", "Paris"),
    (2, "Иван Петров", "ivan@example.org", "219-45-1234", "1 Main St\nSpringfield", "Lyon"),
]
SECRETS = ("Alice", "Smith", "Иван", "alice@", "536-22", "Baker", "Springfield")


def _wrap(raw: Any) -> Any:
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)


def _leaks(value: Any) -> list[str]:
    text = repr(value)
    return [s for s in SECRETS if s in text]


def _observe(run: Any, sql: str) -> Any:
    """What the attacker sees: the rows, that it was refused, or the error's class."""
    try:
        return run(sql)
    except governed_db.GuardrailViolation as e:
        return "refused" if "masked-column" in str(e) else f"refused otherwise: {e}"
    except Exception as e:
        return type(e).__name__


@pytest.fixture
def table(pg_conn: Any, unique: str) -> Iterator[str]:
    t = f"rt5pg_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} {DDL}")
    with pg_conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s, %s, %s, %s)", ROWS)
    yield t
    pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def _url() -> str:
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    return f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"


# -- rows the driver decodes itself ---------------------------------------------------------------------------
WHOLE_ROWS = [
    "SELECT array_agg(c) FROM {t} c",
    "SELECT array_agg(c.*) FROM {t} c",
    "SELECT ARRAY(SELECT c FROM {t} c)",
    "SELECT ARRAY[c] FROM {t} c",
    "SELECT (SELECT array_agg(c) FROM {t} c)",
    "SELECT x FROM (SELECT array_agg(c) AS x FROM {t} c) s",
    "SELECT array_agg(b) FROM {t} a JOIN {t} b ON a.id = b.id",
    "SELECT c FROM {t} c",
]


@pytest.fixture
async def apg(pg_dsn: str, table: str) -> AsyncIterator[tuple[Any, Any, str]]:
    asyncpg = pytest.importorskip("asyncpg")
    raw = await asyncpg.connect(_url())
    try:
        yield _wrap(raw), raw, table
    finally:
        await raw.close()


@pytest.mark.anyio
@pytest.mark.parametrize("sql", WHOLE_ROWS)
async def test_asyncpg_arrays_of_whole_rows_are_masked_field_by_field(apg: tuple[Any, Any, str], sql: str) -> None:
    """asyncpg decodes an array of a table's rows (array_agg(c), ARRAY[c]) into Records inside a list: the row
    masker scanned each Record as an opaque value and returned it whole, every name, e-mail and SSN in the
    clear. Each row is now masked by its field names, like a JSON row; the city stays exact."""
    conn, raw, t = apg
    assert _leaks(await raw.fetch(sql.format(t=t))), sql  # ground truth: the values are in the result
    rows = await conn.fetch(sql.format(t=t))
    assert rows and not _leaks(rows), (sql, rows)
    assert "Paris" in repr(rows) and "[PERSON_NAME]" in repr(rows), rows


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("sql", ["SELECT array_agg(c) FROM {t} c", "SELECT c FROM {t} c"])
def test_psycopg_registered_composites_are_masked_field_by_field(
    pg_dsn: str, table: str, binary: bool, sql: str
) -> None:
    """psycopg with the table's row type registered (register_composite, a DB-API adaptation) loads rows into
    named tuples: inside an array they were only scanned, so names and addresses (which detection cannot
    recognise) came back. Now masked by field name."""
    import psycopg
    from psycopg.types.composite import CompositeInfo, register_composite

    raw = psycopg.connect(pg_dsn, autocommit=True)
    try:
        register_composite(CompositeInfo.fetch(raw, table), raw)
        assert _leaks(raw.cursor(binary=binary).execute(sql.format(t=table)).fetchall())
        rows = _wrap(raw).cursor(binary=binary).execute(sql.format(t=table)).fetchall()
        assert rows and not _leaks(rows), rows
        assert "Paris" in repr(rows), rows
    finally:
        raw.close()


def test_scanned_records_are_scanned_by_field() -> None:
    """Value-based detection (a UDF's result, an untraced column) of a decoded row scans its fields."""
    from collections import namedtuple

    from governed_db.masking.strategies.spans import scrub_value

    Row = namedtuple("Row", "id email note")
    out = scrub_value([Row(1, "alice@example.com", "call +1 415-555-2671")])
    assert "alice@" not in repr(out) and "415-555" not in repr(out) and "1" in repr(out), out
