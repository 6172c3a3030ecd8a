"""Red-team round 21 over masking on MariaDB (PyMySQL, aiomysql): a prompt-injected agent in production with zero
configuration and no unmask grant, on a long-lived governed connection as a pool keeps them.

* **A table made again within the second it was made** (decision 0401). Masking compares what it read of a
  relation with the catalog every second (decision 0392); on MariaDB the signature was the table's kind, its
  ``CREATE_TIME`` and its column names. ``CREATE_TIME`` counts whole seconds (a rename or an ALTER moves it, to
  the second), so a table dropped and made again, or altered, within the second it was made kept its signature
  when the new one had the same column names: with ``code varchar(40) AS (city)`` made again as ``AS (ssn)``, the
  agent's ``SELECT id, code`` returned customer 1's SSN in clear and ``WHERE code LIKE '5%'`` picked row 1 over
  one copy only; with a ``UNIQUE (ssn)`` added, ``INSERT ... (ssn) VALUES ('5362')`` failed over one copy only
  (the constraints read on the first write were kept). The signature now holds each column's type,
  nullability, key, default and generation expression, and each index's columns.

* **A DEFAULT computed from a masked column** (decision 0402). MariaDB (and MySQL 8) let a column's DEFAULT be
  an expression over the row's other columns: with ``ref varchar(10) DEFAULT (LEFT(ssn, 3))``, every row the
  application writes without ``ref`` stores the SSN's first three digits there. Masking read a generated column
  over a masked one as masked, but not such a column (its name and values say nothing): ``SELECT id, ref``
  returned ``536`` and ``187`` in clear, and ``WHERE ref LIKE '5%'`` picked row 1 over one copy only. Such a
  column is now masked like a generated column over the same columns; a DEFAULT over clear columns or a literal
  stays exact.

* **An INVISIBLE column** (decision 0402). MariaDB's (and MySQL 8's) ``INVISIBLE`` columns are listed by the
  catalog and may be named, but ``SELECT *`` leaves them out, and masking's sample is a ``SELECT *``: such a
  column held no value to be labelled by. With ``ref varchar(20) INVISIBLE`` holding the SSNs, ``WHERE ref LIKE
  '5%'`` picked row 1 over one copy only (and a value the scan does not recognise came back in clear). Those
  columns' values are now read by name after the sample.

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
session shows that the same statements tell them apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any

import pytest

import governed_db
from governed_db.masking import engine
from tests._redteam import CURIOUS_AGENT, govern, observe

#: customer 1's SSN per copy: no pattern the scan recognises (the column is masked by its name)
SSNS = {"A": "5362", "B": "1876"}


def _admin_run(admin: Any, sql: str) -> Any:
    with closing(admin.cursor()) as cur:
        cur.execute(sql)
        return cur.fetchall()


def _fill(admin: Any, t: str, ssn: str) -> None:
    _admin_run(admin, f"INSERT INTO {t} (id, ssn, city) VALUES (1, '{ssn}', 'Paris')")
    _admin_run(
        admin, f"INSERT INTO {t} (id, ssn, city) SELECT seq, CONCAT('9', seq), 'Lyon' FROM seq_2_to_300"
    )


def _created(admin: Any, t: str) -> Any:
    return _admin_run(admin, f"SELECT CREATE_TIME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                             f"AND TABLE_NAME = '{t}'")  # fmt: skip


#: a session of the agent: what it sees of one statement, and how to close it
Session = tuple[Callable[[str], Any], Callable[[], None]]


def _pymysql_session(mysql_kw: dict[str, Any], governed: bool) -> Session:
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    conn = govern(raw, CURIOUS_AGENT) if governed else raw
    return (lambda sql: observe(conn, sql)), conn.close


def _aiomysql_session(mysql_kw: dict[str, Any], governed: bool) -> Session:
    """An aiomysql session driven from synchronous code on an event loop of its own."""
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}
    loop = asyncio.new_event_loop()
    raw = loop.run_until_complete(aiomysql.connect(autocommit=True, **kw))
    conn = govern(raw, CURIOUS_AGENT) if governed else raw

    async def see(sql: str) -> Any:
        cur = await conn.cursor()
        try:
            await cur.execute(sql)
            return cur.rowcount if cur.description is None else await cur.fetchall()
        except governed_db.GuardrailViolation as e:
            return f"refused: {sorted(e.decision.rules) if e.decision else e}"
        except Exception as e:
            return f"{type(e).__name__}: {e}"

    def close() -> None:
        conn.close()
        loop.close()

    return (lambda sql: loop.run_until_complete(see(sql))), close


def _remade(
    admin: Any, t: str, ssn: str, first: str, then: str, before: list[str], after: list[str],
    session: Callable[[], Session]
) -> list[Any]:  # fmt: skip
    """What a ``session()`` sees of ``before``, then of ``after`` once the application dropped table ``t`` (made
    as ``first``) and made it again as ``then`` within the second it was made, and a comparison with the catalog
    is due."""
    for _ in range(8):
        _admin_run(admin, f"DROP TABLE IF EXISTS {t}")
        while time.time() % 1 > 0.05:  # all of it within one second of the server's clock
            time.sleep(0.005)
        _admin_run(admin, f"CREATE TABLE {t} {first}")
        _fill(admin, t, ssn)
        made = _created(admin, t)
        see, close = session()
        try:
            seen = [see(q.format(t=t)) for q in before]
            _admin_run(admin, f"DROP TABLE {t}")
            _admin_run(admin, f"CREATE TABLE {t} {then}")
            _fill(admin, t, ssn)
            if _created(admin, t) != made:
                continue  # the second ended in between: try again
            time.sleep(engine.CATALOG_SECONDS + 0.2)
            return [*seen, *(see(q.format(t=t)) for q in after)]
        finally:
            close()
            _admin_run(admin, f"DROP TABLE IF EXISTS {t}")
    pytest.skip("the server took more than a second to drop and make a table again")


def _copies(run: Callable[[str, str], list[Any]], unique: str) -> dict[str, str]:
    """Per copy A and B, what ``run(table, ssn)`` saw, with the table's name blanked."""
    out = {}
    for c, ssn in SSNS.items():
        t = f"m21_{unique}_{c.lower()}"
        out[c] = repr(run(t, ssn)).replace(t, "T")
    return out


#: (the table as first made, as made again within that second, the agent's statements before, after)
REMADE = [
    pytest.param(
        "(id int primary key, ssn varchar(20), city varchar(40), code varchar(40) AS (city))",
        "(id int primary key, ssn varchar(20), city varchar(40), code varchar(40) AS (ssn))",
        ["SELECT id, code FROM {t} WHERE id IN (1, 2)"],
        ["SELECT id, code FROM {t} WHERE id = 1", "SELECT id FROM {t} WHERE code LIKE '5%'"],
        id="a generated column computed from the SSN instead of the city",
    ),
    pytest.param(
        "(id int primary key, ssn varchar(20), city varchar(40))",
        "(id int primary key, ssn varchar(20), city varchar(40), UNIQUE (ssn))",
        ["INSERT INTO {t} (id, city) VALUES (500, 'Nice')"],
        ["INSERT INTO {t} (id, ssn, city) VALUES (501, '5362', 'Nice')"],
        id="a unique key on the SSN added",
    ),
]


@pytest.mark.parametrize("driver", [_pymysql_session, _aiomysql_session], ids=["pymysql", "aiomysql"])
@pytest.mark.parametrize(("first", "then", "before", "after"), REMADE)
def test_a_table_made_again_within_its_second_is_read_again(
    mysql_kw: dict[str, Any],
    mysql_conn: Any,
    unique: str,
    first: str,
    then: str,
    before: list[str],
    after: list[str],
    driver: Callable[[dict[str, Any], bool], Session],
) -> None:
    """The agent's statements after the table was made again answer alike over both copies (before: customer 1's
    SSN came back in clear, and a filter or a unique key on it told the copies apart); the raw session tells them
    apart. Through aiomysql the comparison is the warm-up's, with await."""

    def run(governed: bool) -> dict[str, str]:
        return _copies(lambda t, ssn: _remade(mysql_conn, t, ssn, first, then, before, after,
                                              lambda: driver(mysql_kw, governed)), unique)  # fmt: skip

    raw = run(False)
    assert raw["A"] != raw["B"], raw
    seen = run(True)
    assert seen["A"] == seen["B"], seen
    assert "5362" not in seen["A"] and "1876" not in seen["B"], seen


def test_an_unchanged_table_of_every_kind_of_column_keeps_what_was_read(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Look-alike: a table with generated columns, defaults, an auto-increment key, indexes and system versioning
    that the application writes (its row count, auto-increment and update time move) is not forgotten at the
    comparisons, and answers exactly."""
    import pymysql

    forgotten: list[int] = []
    real = engine.MaskingState.invalidate
    monkeypatch.setattr(engine.MaskingState, "invalidate", lambda self: (forgotten.append(1), real(self))[1])
    t = f"m21_{unique}_keep"
    _admin_run(mysql_conn, f"CREATE TABLE {t} (id int auto_increment primary key, ssn varchar(20), city varchar(40) "
                           "DEFAULT 'Lyon', code varchar(40) AS (upper(city)), at timestamp DEFAULT CURRENT_TIMESTAMP, "
                           "UNIQUE (city, id), KEY (code)) WITH SYSTEM VERSIONING")  # fmt: skip
    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        _admin_run(mysql_conn, f"INSERT INTO {t} (ssn, city) VALUES ('5362', 'Paris')")
        seen = [observe(conn, f"SELECT id, city, code FROM {t} ORDER BY id")]
        for city in ("Rome", "Oslo"):
            _admin_run(mysql_conn, f"INSERT INTO {t} (ssn, city) VALUES ('1876', '{city}')")
            _admin_run(mysql_conn, f"UPDATE {t} SET city = 'Nice' WHERE id = 1")
            time.sleep(engine.CATALOG_SECONDS + 0.2)
            seen.append(observe(conn, f"SELECT id, city, code FROM {t} WHERE id > 1 ORDER BY id"))
    finally:
        conn.close()
        _admin_run(mysql_conn, f"DROP TABLE IF EXISTS {t}")
    assert seen == [(["id", "city", "code"], [(1, "Paris", "PARIS")]),
                    (["id", "city", "code"], [(2, "Rome", "ROME")]),
                    (["id", "city", "code"], [(2, "Rome", "ROME"), (3, "Oslo", "OSLO")])]  # fmt: skip
    assert not forgotten


#: per kind of column masking read nothing of: the application's table (``ref`` holds what it derives from the
#: SSN, ``tag`` from the city) and what it runs after inserting customers 1-3
HIDDEN = {
    "a DEFAULT over the SSN": (
        "(id int primary key, ssn varchar(20), city varchar(40), ref varchar(20) DEFAULT (LEFT(ssn, 3)), "
        "tag varchar(40) DEFAULT (UPPER(city)), n int DEFAULT 7)",
        "",
    ),
    "an INVISIBLE copy of the SSN": (
        "(id int primary key, ssn varchar(20), city varchar(40), ref varchar(20) INVISIBLE, "
        "tag varchar(40) INVISIBLE, n int INVISIBLE DEFAULT 7)",
        "UPDATE {t} SET ref = ssn, tag = UPPER(city)",
    ),
}
HIDDEN_READS = ["SELECT id, ref FROM {t} ORDER BY id", "SELECT id FROM {t} WHERE ref LIKE '5%'"]


@contextmanager
def _hidden(admin: Any, unique: str, kind: str) -> Iterator[dict[str, str]]:
    """Per copy A and B, the table of ``kind`` with customers 1-3 (row 1's SSN that copy's); dropped afterwards."""
    ddl, then = HIDDEN[kind]
    names = {}
    try:
        for c, ssn in {"A": "536-22-8726", "B": "187-65-4321"}.items():
            t = names[c] = f"m21_{unique}_h{c.lower()}"
            _admin_run(admin, f"CREATE TABLE {t} {ddl}")
            _admin_run(admin, f"INSERT INTO {t} (id, ssn, city) VALUES (1, '{ssn}', 'Paris'), "
                              "(2, '219-45-1234', 'Lyon'), (3, '412-77-9001', 'Rome')")  # fmt: skip
            if then:
                _admin_run(admin, then.format(t=t))
        yield names
    finally:
        for t in names.values():
            _admin_run(admin, f"DROP TABLE IF EXISTS {t}")


@pytest.mark.parametrize("kind", HIDDEN)
def test_a_column_derived_from_or_hiding_the_ssn_is_masked(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str, kind: str
) -> None:
    """``ref`` comes back masked and may not filter: both copies answer alike (before: the SSN, or its first
    digits, in clear where the scan does not recognise it, and ``WHERE ref LIKE '5%'`` picked row 1 over one copy
    only); the raw session tells them apart."""
    import pymysql

    seen: dict[str, list[Any]] = {"raw": [], "governed": []}
    with _hidden(mysql_conn, unique, kind) as names:
        for how in seen:
            for t in names.values():
                raw = pymysql.connect(autocommit=True, **mysql_kw)
                conn = govern(raw, CURIOUS_AGENT) if how == "governed" else raw
                try:
                    seen[how].append(
                        repr([observe(conn, q.format(t=t)) for q in HIDDEN_READS]).replace(t, "T")
                    )
                finally:
                    conn.close()
    assert seen["raw"][0] != seen["raw"][1]
    assert seen["governed"][0] == seen["governed"][1], seen
    assert "536" not in seen["governed"][0] and "masked-column-predicate" in seen["governed"][0], seen


@pytest.mark.parametrize("kind", HIDDEN)
def test_aiomysql_a_column_derived_from_or_hiding_the_ssn_is_masked(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str, kind: str
) -> None:
    """The same through aiomysql, whose warm-up reads the catalog and the sample with await."""
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def run(t: str) -> list[Any]:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        out: list[Any] = []
        try:
            for sql in HIDDEN_READS:
                cur = await conn.cursor()
                try:
                    await cur.execute(sql.format(t=t))
                    out.append(await cur.fetchall())
                except governed_db.GuardrailViolation as e:
                    out.append(f"refused: {sorted(e.decision.rules) if e.decision else e}")
        finally:
            conn.close()
        return out

    with _hidden(mysql_conn, unique, kind) as names:
        seen = [asyncio.run(run(t)) for t in names.values()]
    assert seen[0] == seen[1], seen
    assert "536" not in repr(seen) and "masked-column-predicate" in repr(seen), seen


@pytest.mark.parametrize("kind", HIDDEN)
def test_such_columns_over_clear_values_stay_exact(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str, kind: str
) -> None:
    """Look-alike: ``tag`` (the city in capitals, a DEFAULT over it or an INVISIBLE column) and ``n`` (a literal
    DEFAULT) come back as stored and may filter."""
    import pymysql

    with _hidden(mysql_conn, unique, kind) as names:
        conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
        try:
            seen = observe(conn, f"SELECT id, tag, n FROM {names['A']} WHERE tag <> 'ROME' ORDER BY id")
        finally:
            conn.close()
    assert seen == (["id", "tag", "n"], [(1, "PARIS", 7), (2, "LYON", 7)])
