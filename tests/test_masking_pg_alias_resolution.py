"""A bare name that is both an output alias and a column of FROM, resolved as each engine resolves it (decision 0430).

PostgreSQL reads a name in WHERE, JOIN ON, HAVING and a window as a column of FROM (never an output alias); in GROUP
BY a FROM column wins over an output alias; a whole ORDER BY item that names an output sorts by that output, a name
within an ORDER BY expression by the FROM column. ``SELECT full_name AS id FROM t WHERE id < 3`` filters on the clear
``id`` and ``SELECT id AS full_name FROM t ORDER BY full_name`` sorts by it: both run. A name the query's FROM lacks
is an enclosing query's column in WHERE on PostgreSQL and MariaDB, even when an output alias spells it
(``EXISTS (SELECT id AS full_name FROM i WHERE full_name < 'M')`` compares the outer masked name): refused.

Each case compares the raw session's rows with the governed one's: the same rows in the same order, no name shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

import governed_db
from tests._redteam import govern, leaked, pg_connect

pytestmark = pytest.mark.usefixtures("pg_dsn")

NAMES = ("Zed Zulu", "Alice Smith", "Bob Brown")


@pytest.fixture
def tables(pg_conn: Any, unique: str) -> Iterator[tuple[str, str]]:
    """A customers table ``t`` (``id``, masked ``full_name``, ``city``; ids not in name order) and a table ``i``
    without ``full_name``."""
    t, i = f"fxpg_{unique}_t", f"fxpg_{unique}_i"
    try:
        pg_conn.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, full_name text, city text)")
        pg_conn.execute(f"INSERT INTO {t} VALUES (1, 'Zed Zulu', 'Paris'), (2, 'Alice Smith', 'Lyon'), (3, 'Bob Brown', 'Nice')")
        pg_conn.execute(f"CREATE TABLE {i} (id int, note text)")
        pg_conn.execute(f"INSERT INTO {i} VALUES (1, 'x'), (2, 'y')")
        yield t, i
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")
        pg_conn.execute(f"DROP TABLE IF EXISTS {i}")


#: statements that read ``full_name`` only as an output (masked in the rows), never to filter, group or sort
RUNS = [
    "SELECT full_name AS id FROM {t} WHERE id < 3",
    "SELECT full_name AS id FROM {t} JOIN {i} USING (id) WHERE id < 2",
    "SELECT id AS full_name FROM {t} ORDER BY full_name",
    "SELECT id AS full_name FROM {t} ORDER BY full_name DESC NULLS LAST",
    "SELECT id AS full_name, full_name AS id FROM {t} ORDER BY full_name",
    "SELECT full_name AS id FROM {t} ORDER BY id + 0",
    "SELECT full_name AS id, count(*) FROM {t} GROUP BY id ORDER BY min(id)",
    "SELECT * FROM (SELECT id AS full_name FROM {t} ORDER BY full_name LIMIT 2) s",
    "SELECT id AS full_name FROM {t} UNION SELECT id FROM {i} ORDER BY full_name",
]

#: statements that filter, group or sort by the masked ``full_name`` although an alias spells another name
REFUSED = [
    "SELECT id AS x, full_name FROM {t} WHERE full_name < 'M'",
    "SELECT id AS full_name FROM {t} WHERE full_name < 'M'",
    "SELECT full_name AS id FROM {t} ORDER BY id",
    "SELECT id AS full_name, full_name AS id FROM {t} ORDER BY id",
    "SELECT id AS full_name FROM {t} ORDER BY full_name || ''",
    "SELECT id AS full_name FROM {t} x ORDER BY x.full_name",
    "SELECT id AS full_name, count(*) FROM {t} GROUP BY id HAVING max(full_name) > 'M'",
    "SELECT id AS full_name, row_number() OVER (ORDER BY full_name) FROM {t}",
    "SELECT id FROM {t} WHERE EXISTS (SELECT id AS full_name FROM {i} WHERE full_name < 'M')",
]


def _blank(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(None if isinstance(v, str) else v for v in row) for row in rows]


@pytest.mark.parametrize("template", RUNS)
def test_a_name_postgresql_reads_as_a_clear_column_runs(tables: tuple[str, str], template: str) -> None:
    """The same rows in the same order as the raw session (names masked, not shown)."""
    sql = template.format(t=tables[0], i=tables[1])
    with closing(pg_connect("psycopg")) as raw, closing(govern(pg_connect("psycopg"))) as gov:
        want = raw.execute(sql).fetchall()
        got = gov.cursor().execute(sql).fetchall()
    assert _blank(got) == _blank(want)
    assert leaked(got, NAMES) == []


@pytest.mark.parametrize("template", REFUSED)
def test_a_name_postgresql_reads_as_the_masked_column_is_refused(tables: tuple[str, str], template: str) -> None:
    """Refused, naming the column and how to unmask it; no name in the message."""
    sql = template.format(t=tables[0], i=tables[1])
    with closing(pg_connect("psycopg")) as raw:
        raw.execute(sql).fetchall()  # a valid statement: the refusal is governed_db's
    with closing(govern(pg_connect("psycopg"))) as gov, pytest.raises(governed_db.GuardrailViolation) as e:
        gov.cursor().execute(sql)
    assert "full_name" in str(e.value) and "unmask" in str(e.value)
    assert leaked(str(e.value), NAMES) == []


def test_an_outer_column_spelled_like_an_alias_is_refused_on_mariadb(mysql_kw: dict[str, Any], unique: str) -> None:
    """MariaDB reads WHERE ``full_name`` of a subquery without that column as the outer table's, not the alias."""
    import pymysql

    t, i = f"fxpg_{unique}_mt", f"fxpg_{unique}_mi"
    admin = pymysql.connect(**mysql_kw, autocommit=True)
    try:
        with closing(admin.cursor()) as cur:
            cur.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, full_name text)")
            cur.execute(f"INSERT INTO {t} VALUES (1, 'Zed Zulu'), (2, 'Alice Smith')")
            cur.execute(f"CREATE TABLE {i} (id int, note text)")
            cur.execute(f"INSERT INTO {i} VALUES (1, 'x')")
            sql = f"SELECT id FROM {t} WHERE EXISTS (SELECT id AS full_name FROM {i} WHERE full_name < 'M')"
            cur.execute(sql)
            assert cur.fetchall() == ((2,),)  # the outer name decides
        gov = govern(pymysql.connect(**mysql_kw, autocommit=True))
        try:
            with pytest.raises(governed_db.GuardrailViolation, match="full_name"):
                gov.cursor().execute(sql)
        finally:
            gov.close()
    finally:
        with closing(admin.cursor()) as cur:
            cur.execute(f"DROP TABLE IF EXISTS {t}")
            cur.execute(f"DROP TABLE IF EXISTS {i}")
        admin.close()
