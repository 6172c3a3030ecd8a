"""Helpers the red-team test files share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from typing import Any

import governed_db


def run_script(conn: Any, script: str) -> list[Any]:
    """Run ``;``-separated statements on a DB-API connection (rows, or the row count, of each); whatever happens,
    roll back, so no lock or change outlives the script."""
    out = []
    try:
        for sql in script.split(";"):
            cur = conn.cursor()
            cur.execute(sql)
            out.append(cur.fetchall() if cur.description else cur.rowcount)
    finally:
        conn.rollback()
    return out


def observe(conn: Any, sql: str) -> Any:
    """Everything the caller sees of one statement: column names and rows, or the refusal or error text."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return [d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()]
    except governed_db.GuardrailViolation as e:
        return f"refused: {e}"
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def pg_connect(driver: str, *, autocommit: bool = True) -> Any:
    """A PostgreSQL session of the test server through ``psycopg`` (3) or ``psycopg2`` (skipped if not installed)."""
    import pytest

    from tests.conftest import PG_DSN

    if driver == "psycopg":
        import psycopg

        return psycopg.connect(PG_DSN, autocommit=autocommit)
    psycopg2 = pytest.importorskip("psycopg2")
    conn = psycopg2.connect(PG_DSN)
    conn.autocommit = autocommit
    return conn


# ---- shared red-team scaffolding (testdedup): identities, connections, observers, table pairs -----------------
# One block, appended: other rounds may add helpers above or below it without touching these.

#: the prompt-injected agent of the early rounds: acts for ``bob``, holds no unmask grant
AGENT = governed_db.Identity("agent-x", kind="agent", on_behalf_of="bob")
#: the agent of the later rounds (the same as ``test_masking_noninterference.ATTACKER``): no grant, no principal
CURIOUS_AGENT = governed_db.Identity("curious-agent", kind="agent")


def govern(raw: Any, identity: governed_db.Identity = AGENT, **options: Any) -> Any:
    """``raw`` as the red team attacks it: governed for ``identity`` in production, with no audit store;
    ``options`` (``masking=...``, another ``environment``) go to :func:`governed_db.wrap` as they are."""
    options = {"environment": "production", "audit": False, **options}
    return governed_db.wrap(raw, identity=identity, **options)


def leaked(seen: Any, secrets: Iterable[str]) -> list[str]:
    """The ``secrets`` whose text shows anywhere in ``repr(seen)``: what an attacker's observation gave away."""
    text = repr(seen)
    return [s for s in secrets if s in text]


@contextmanager
def raw_and_governed(driver: str, identity: governed_db.Identity = AGENT) -> Iterator[tuple[Any, Any]]:
    """Two autocommit sessions of the PostgreSQL test server through ``driver`` (see :func:`pg_connect`): the raw one,
    which shows what an oracle tells unprotected, and one governed for ``identity``; both closed afterwards."""
    raw, gov = pg_connect(driver), govern(pg_connect(driver), identity)
    try:
        yield raw, gov
    finally:
        raw.close()
        gov.close()


def seen_apart(
    raw: Any, gov: Any, tables: Mapping[str, str], template: str, see: Callable[[Any, str], Any] = observe
) -> dict[str, tuple[str, str]]:
    """Per variant of ``tables`` (``{"a": name, "b": name}``): what ``raw`` and ``gov`` see of ``template`` run on
    that variant's table (``{t}``), as text with the table's name blanked to ``T`` -- so the two variants compare
    equal exactly where the caller cannot tell them apart."""
    seen = {}
    for v, name in tables.items():
        sql = template.format(t=name)
        seen[v] = (repr(see(raw, sql)).replace(name, "T"), repr(see(gov, sql)).replace(name, "T"))
    return seen


@contextmanager
def made_tables(admin: Any, prefix: str = "") -> Iterator[Callable[..., str]]:
    """``make(columns, rows, name=None)`` creates table ``name`` (by default ``<prefix><n>``, n counting from 0) as
    ``CREATE TABLE <name> <columns>`` through ``admin`` -- a raw connection of a driver with ``%s`` parameters
    (psycopg, psycopg2, PyMySQL) -- inserts ``rows`` and returns the name; every table made is dropped on leaving."""
    made: list[str] = []

    def make(columns: str, rows: Sequence[Sequence[Any]], name: str | None = None) -> str:
        t = name or f"{prefix}{len(made)}"
        made.append(t)
        with closing(admin.cursor()) as cur:
            cur.execute(f"CREATE TABLE {t} {columns}")
            if rows:
                cur.executemany(f"INSERT INTO {t} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)
        return t

    try:
        yield make
    finally:
        with closing(admin.cursor()) as cur:
            for t in made:
                cur.execute(f"DROP TABLE IF EXISTS {t}")


def ensure_hstore(admin: Any) -> None:
    """``CREATE EXTENSION IF NOT EXISTS hstore`` through ``admin``, tolerating another session that creates it at the
    same moment (PostgreSQL then fails the second one with a duplicate key on the extension's name)."""
    try:
        admin.execute("CREATE EXTENSION IF NOT EXISTS hstore")
    except Exception as e:
        if "hstore" not in str(e):
            raise


def rows_or_rules(conn: Any, sql: str) -> Any:
    """What the caller sees of one statement: its rows as tuples (or its row count), or which rules refused it."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()] if cur.description else cur.rowcount
    except governed_db.GuardrailViolation as e:
        assert e.decision is not None, e  # a refusal carries its decision
        return f"refused: {sorted(e.decision.rules)}"


def seen_once(sql: str) -> Any:
    """``see(conn, table)``: what the caller sees of ``sql`` over ``table`` (rolled back), the name blanked to ``T``."""

    def see(conn: Any, table: str) -> Any:
        try:
            seen = rows_or_rules(conn, sql.format(t=table))
        except Exception as e:
            return type(e).__name__
        finally:
            conn.rollback()
        return repr(seen).replace(table, "T")

    return see


def attempt(run: Callable[[str], Any], sql: str, *, approval: bool = False, cut: int | None = None) -> Any:
    """What the attacker sees of ``run(sql)``: its result; ``"refused"`` where masking refused it and ``"refused
    otherwise: <why>"`` (``why`` cut to ``cut`` characters) where another rule did; with ``approval``, ``"approval
    required"`` where the statement waits for one; else the error's class name."""
    try:
        return run(sql)
    except governed_db.GuardrailViolation as e:
        if approval and isinstance(e, governed_db.ApprovalRequired):
            return "approval required"
        why = str(e) if cut is None else str(e)[:cut]
        return "refused" if "masked-column" in str(e) else f"refused otherwise: {why}"
    except Exception as e:
        return type(e).__name__


class MariaTable:
    """A MariaDB table that a subclass (re)builds in :meth:`reset` through ``admin``, a PyMySQL session to it governed
    with ``options`` (see :func:`govern`) and the admin session as the ground truth; :meth:`close` drops the table."""

    def __init__(self, mysql_kw: dict[str, Any], admin: Any, table: str, **options: Any) -> None:
        import pymysql

        self.t, self.admin, self.kw = table, admin, mysql_kw
        self.raw = pymysql.connect(autocommit=True, **mysql_kw)
        self.conn = govern(self.raw, **options)
        self.reset()

    def reset(self) -> None:
        """Drop and make the table again, with its rows."""
        raise NotImplementedError

    def run(self, script: str) -> list[Any]:
        """``script`` on the governed session (see :func:`run_script`)."""
        return run_script(self.conn, script)

    def truth(self, script: str) -> list[Any]:
        """``script`` on the admin session: what the database holds."""
        return run_script(self.admin, script)

    def close(self) -> None:
        self.raw.close()
        with closing(self.admin.cursor()) as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.t}")


# ---- end of the testdedup block -------------------------------------------------------------------------------


#: a name long enough that the rows after it start a page later (PostgreSQL stores about 120 short rows a page)
LONG_NAME = "Zoe " + "Quinn-Harper " * 8


def pg_stored_people(conn: Any, prefix: str) -> dict[str, str]:
    """Per variant a and b, a table of 400 people (``id``, ``full_name``, ``city``) whose rows differ only in row 1's
    name (11 or 108 characters, masked alike), created on ``conn`` (autocommit); names ``{prefix}_s{a,b}``."""
    names: dict[str, str] = {}
    for v, first in (("a", "Alice Smith"), ("b", LONG_NAME)):
        t = f"{prefix}_s{v}"
        conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, city text)")
        conn.execute(f"INSERT INTO {t} VALUES (1, %s, 'Paris')", (first,))
        conn.execute(f"INSERT INTO {t} SELECT g, 'Person Number ' || g, 'Lyon' FROM generate_series(2, 400) g")
        names[v] = t
    return names


@contextmanager
def pg_people(
    conn: Any, prefix: str, secrets: Mapping[str, tuple[str, str, str]]
) -> Iterator[dict[str, str]]:
    """Per variant of ``secrets`` (name, e-mail, SSN), 30 customers (``id``, ``full_name``, ``email``, ``ssn``,
    ``city``) whose row 1 holds that variant's values, created on ``conn`` (autocommit) as ``{prefix}_{variant}``
    and dropped afterwards."""
    names: dict[str, str] = {}
    try:
        for v, (name, email, ssn) in secrets.items():
            t = names[v] = f"{prefix}_{v}"
            conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, email text, ssn text, city text)")
            conn.execute(f"INSERT INTO {t} VALUES (1, %s, %s, %s, 'Paris')", (name, email, ssn))
            conn.execute(f"INSERT INTO {t} SELECT g, 'Person Number ' || g, 'p' || g || '@example.org', "
                         "lpad(g::text, 3, '0') || '-55-' || lpad((g * 37)::text, 4, '0'), 'Lyon' "
                         "FROM generate_series(2, 30) g")  # fmt: skip
        yield names
    finally:
        for t in names.values():
            conn.execute(f"DROP TABLE IF EXISTS {t}")


def pg_moved_places(conn: Any, table: str, read: Any) -> list[Any]:
    """Where rows 5 and 1 come in ``read(conn, table)`` (a list of ids in the order the caller sees them) after an
    UPDATE that sets their columns NULL: PostgreSQL writes the new version on the same page when the rows there
    left room for it, else on the last page. Each attempt is rolled back; a refusal is returned as its text."""
    out: list[Any] = []
    for row in (5, 1):
        try:
            conn.cursor().execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
            ids = list(read(conn, table))
            out.append(ids.index(row) if row in ids else ids)
        except governed_db.GuardrailViolation as e:
            out.append(f"refused: {e}".replace(table, "T"))
        finally:
            conn.rollback()
    return out


def pg_variants(
    driver: str, tables: Mapping[str, str], see: Callable[[Any, str], Any], **options: Any
) -> dict[str, tuple[Any, Any]]:
    """Per variant a and b of ``tables``: what a raw and a governed PostgreSQL session through ``driver`` (not in
    autocommit: ``see`` rolls back what it changes; ``options`` go to :func:`govern`) see of ``see(conn,
    tables[v])``; sessions closed afterwards."""
    seen: dict[str, tuple[Any, Any]] = {}
    for v in ("a", "b"):
        raw, gov = pg_connect(driver, autocommit=False), govern(pg_connect(driver, autocommit=False), **options)
        try:
            seen[v] = (see(raw, tables[v]), see(gov, tables[v]))
        finally:
            raw.close()
            gov.close()
    return seen


def asyncpg_variants(
    tables: Mapping[str, str], see: Callable[[Any, str], Awaitable[Any]], **options: Any
) -> dict[str, tuple[Any, Any]]:
    """:func:`pg_variants` through asyncpg: per variant a and b, what a raw and a governed session (``options`` go to
    :func:`govern`) see of ``await see(conn, tables[v])``; sessions closed afterwards."""
    import asyncpg

    from tests.conftest import PG_DSN

    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"

    async def run() -> dict[str, tuple[Any, Any]]:
        seen: dict[str, tuple[Any, Any]] = {}
        for v in ("a", "b"):
            raw, gov = await asyncpg.connect(url), govern(await asyncpg.connect(url), **options)
            try:
                seen[v] = (await see(raw, tables[v]), await see(gov, tables[v]))
            finally:
                await raw.close()
                await gov.close()
        return seen

    return asyncio.run(run())
