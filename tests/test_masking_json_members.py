"""A member of a JSON document column is read as the document's own masking shows it (decision 0301).

``SELECT profile->>'tier' FROM customers`` was refused whenever ``profile`` held personal data anywhere (the
extraction "may fail or decide rows on the value"), although ``SELECT profile`` returns the document with each
member masked by its key or its scan. On a column whose declared type keeps every value valid JSON (PostgreSQL
``json``/``jsonb``, DuckDB ``JSON``) an extraction at a constant path cannot fail, and its result is masked as the
document's masking masks that member: a key that names personal data (``phone``, ``email``, ``ssn``) masks its
value whole, anything else is scanned. A member still decides no row, order or group; on text columns (SQLite,
MariaDB) an extraction fails or warns on malformed JSON, so it stays refused there.

Each oracle compares two tables that differ only in row 1's masked values (identical masks); the raw connection
shows that the same statements tell them apart.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import governed_db
from governed_db import Identity
from tests._redteam import ensure_hstore

AGENT = Identity("curious-agent", kind="agent")
AUDITOR = Identity("auditor", kind="human", roles=("auditor",))


def _doc(i: int, phone: str, email: str, ssn: int, note: str) -> dict[str, Any]:
    return {"phone": phone, "tier": "gold" if i % 2 else "basic", "ssn": ssn, "note": note, "tags": ["a", "b"],
            "contact": {"email": email, "city": "Paris"}, "prefs": {"theme": "dark", "lang": "fr"}}


ROWS_A = [(i, _doc(i, f"+1 415 555 {1200 + i}", f"a{i}@example.com", 536228700 + i, f"mail a{i}@example.com"))
          for i in range(1, 31)]
ROWS_B = [(1, _doc(1, "+1 212 555 9876", "zed@other.org", 219451234, "mail zed@other.org")), *ROWS_A[1:]]
SECRETS = ("415 555 1201", "a1@example.com", "536228701", "212 555 9876", "zed@other.org", "219451234")

#: member reads that run, masked as the whole document masks the member
MEMBERS = [
    "SELECT profile->>'tier', profile->>'phone', profile->>'note' FROM {t} WHERE id = 1",
    "SELECT profile->'prefs'->>'theme', profile->'contact'->>'email', profile->'tags'->>0 FROM {t} WHERE id = 1",
    "SELECT id, profile->>'ssn', profile->'prefs' FROM {t} ORDER BY id LIMIT 3",
    "SELECT profile->>'tier' AS tier, count(*) FROM {t} GROUP BY id, profile ORDER BY id LIMIT 2",
]
#: still refused: a member deciding rows, their order, or a failing extraction
REFUSED = [
    "SELECT count(*) FROM {t} WHERE profile->>'phone' LIKE '+1 415%'",
    "SELECT id FROM {t} ORDER BY profile->>'ssn' LIMIT 1",
    "SELECT profile->>'tier', count(*) FROM {t} GROUP BY profile->>'tier'",
    "SELECT count(*) FROM {t} WHERE profile->>'tier' = 'gold'",
]


def _wrap(raw: Any, identity: Identity = AGENT) -> Any:
    return governed_db.wrap(raw, identity=identity, environment="production", audit=False,
                            masking={"unmask": [{"role": "auditor"}]} if identity is AUDITOR else None)


def _seen(run: Callable[[str], Any], sql: str) -> Any:
    try:
        return [tuple(_plain(v) for v in r) for r in run(sql)]
    except governed_db.GuardrailViolation as e:
        return f"refused: {list(e.rules)}"
    except Exception as e:
        return f"{type(e).__name__}"


def _plain(value: Any) -> Any:
    """JSON as the same Python value whichever driver decoded it (asyncpg and DuckDB return text)."""
    if isinstance(value, str) and value[:1] in '{["':
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _at(doc: Any, path: list[Any]) -> Any:
    """The member of an already masked document at ``path``: a masked parent is the member's mask."""
    for step in path:
        if isinstance(doc, str) and doc.startswith("["):
            return doc
        doc = doc[step] if isinstance(doc, dict | list) else None
    return doc


#: the same reads in MariaDB's syntax (no ``->`` operators): JSON_EXTRACT, JSON_UNQUOTE(JSON_EXTRACT())
MD_MEMBERS = [
    "SELECT JSON_UNQUOTE(JSON_EXTRACT(profile, '$.tier')), JSON_UNQUOTE(JSON_EXTRACT(profile, '$.phone')), "
    "JSON_UNQUOTE(JSON_EXTRACT(profile, '$.note')) FROM {t} WHERE id = 1",
    "SELECT JSON_EXTRACT(profile, '$.prefs.theme'), JSON_EXTRACT(profile, '$.contact.email'), "
    "JSON_UNQUOTE(JSON_EXTRACT(profile, '$.tags[0]')) FROM {t} WHERE id = 1",
    "SELECT id, JSON_EXTRACT(profile, '$.ssn'), JSON_EXTRACT(profile, '$.prefs') FROM {t} ORDER BY id LIMIT 3",
    "SELECT JSON_EXTRACT(profile, '$.tier') AS tier, count(*) FROM {t} GROUP BY id, profile ORDER BY id LIMIT 2",
]
MD_REFUSED = [
    "SELECT count(*) FROM {t} WHERE JSON_EXTRACT(profile, '$.phone') LIKE '%415%'",
    "SELECT id FROM {t} ORDER BY JSON_EXTRACT(profile, '$.ssn') LIMIT 1",
    "SELECT JSON_EXTRACT(profile, '$.tier'), count(*) FROM {t} GROUP BY JSON_EXTRACT(profile, '$.tier')",
    "SELECT count(*) FROM {t} WHERE JSON_UNQUOTE(JSON_EXTRACT(profile, '$.tier')) = 'gold'",
]


def _check(run: Callable[[str], Any], raw_run: Callable[[str], Any], tables: dict[str, str],
           members_sql: list[str] = MEMBERS, refused_sql: list[str] = REFUSED) -> None:
    a, b = tables["A"], tables["B"]
    # the raw connection tells the two tables apart through the same statements: an oracle, were they answered raw
    assert _seen(raw_run, members_sql[0].format(t=a)) != _seen(raw_run, members_sql[0].format(t=b))
    seen = {c: [_seen(run, sql.format(t=t)) for sql in members_sql + refused_sql] for c, t in tables.items()}
    assert seen["A"] == seen["B"], [(x, y) for x, y in zip(seen["A"], seen["B"], strict=True) if x != y]
    flat = repr(seen)
    assert not [s for s in SECRETS if s in flat], flat
    members, refused = seen["A"][: len(members_sql)], seen["A"][len(members_sql):]
    assert all(isinstance(m, list) for m in members), members
    assert all(r == "refused: ['masked-column-predicate']" for r in refused), refused
    # each member is what the whole document, masked, holds at that path
    whole = _seen(run, f"SELECT profile FROM {a} WHERE id = 1")[0][0]
    assert members[0] == [(_at(whole, ["tier"]), _at(whole, ["phone"]), _at(whole, ["note"]))], (members[0], whole)
    assert members[0][0][0] == "gold" and members[0][0][1] == "[PHONE]" and "[EMAIL]" in members[0][0][2]
    assert members[1] == [(_at(whole, ["prefs", "theme"]), _at(whole, ["contact", "email"]),
                           _at(whole, ["tags", 0]))], (members[1], whole)
    assert members[1][0][0] == "dark" and members[1][0][2] == "a"
    assert members[2][0][1] == "[US_SSN]" and members[2][0][2] == {"theme": "dark", "lang": "fr"}, members[2]


@pytest.fixture
def pg_tables(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    tables = {c: f"jmem_{unique}_{c.lower()}" for c in ("A", "B")}
    try:
        for c, rows in (("A", ROWS_A), ("B", ROWS_B)):
            pg_conn.execute(f"CREATE TABLE {tables[c]} (id int PRIMARY KEY, full_name text, profile jsonb)")
            with pg_conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {tables[c]} VALUES (%s, %s, %s)",
                                [(i, f"Alice Martin{i}", json.dumps(d)) for i, d in rows])
        yield tables
    finally:
        for t in tables.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def test_postgres_members_of_a_jsonb_column_read_as_the_document_masks_them(
    pg_conn: Any, pg_dsn: str, pg_tables: dict[str, str]
) -> None:
    import psycopg

    conn = _wrap(psycopg.connect(pg_dsn, autocommit=True))
    try:
        _check(lambda sql: conn.execute(sql).fetchall(), lambda sql: pg_conn.execute(sql).fetchall(), pg_tables)
    finally:
        conn.close()
    granted = _wrap(psycopg.connect(pg_dsn, autocommit=True), AUDITOR)
    try:  # an unmask grant keeps full access
        assert granted.execute(MEMBERS[0].format(t=pg_tables["A"])).fetchall() == [
            ("gold", "+1 415 555 1201", "mail a1@example.com")]
    finally:
        granted.close()


def test_asyncpg_members_read_as_psycopg_reads_them(pg_conn: Any, pg_dsn: str, pg_tables: dict[str, str]) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    parts = dict(p.split("=", 1) for p in pg_dsn.split())
    url = f"postgresql://{parts['user']}@{parts['host']}:{parts.get('port', '5432')}/{parts['dbname']}"
    loop = asyncio.new_event_loop()
    try:
        conn = _wrap(loop.run_until_complete(asyncpg.connect(url)))
        try:
            _check(lambda sql: loop.run_until_complete(conn.fetch(sql)), lambda sql: pg_conn.execute(sql).fetchall(),
                   pg_tables)
        finally:
            loop.run_until_complete(conn.close())
    finally:
        loop.close()


def test_postgres_a_text_column_cast_to_json_stays_refused(pg_conn: Any, pg_dsn: str, unique: str) -> None:
    """``notes::jsonb->>'a'`` fails on a value that is no JSON: a cast of a masked text, refused as before."""
    import psycopg

    t = f"jmem_{unique}_t"
    pg_conn.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, doc text)")
    try:
        with pg_conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s)",
                            [(i, json.dumps({"email": f"a{i}@example.com"})) for i in range(1, 31)])
        conn = _wrap(psycopg.connect(pg_dsn, autocommit=True))
        try:
            for sql in (f"SELECT doc::jsonb->>'email' FROM {t} WHERE id = 1", f"SELECT doc::json->'x' FROM {t}"):
                assert _seen(lambda s: conn.execute(s).fetchall(), sql) == "refused: ['masked-column-predicate']"
        finally:
            conn.close()
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def test_duckdb_members_of_a_json_column_read_as_the_document_masks_them() -> None:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    for c, rows in (("a", ROWS_A), ("b", ROWS_B)):
        raw.execute(f"CREATE TABLE jm_{c} (id INTEGER PRIMARY KEY, full_name VARCHAR, profile JSON)")
        raw.executemany(f"INSERT INTO jm_{c} VALUES (?, ?, ?)", [(i, f"Alice Martin{i}", json.dumps(d)) for i, d in rows])
    conn = _wrap(raw)
    _check(lambda sql: conn.execute(sql).fetchall(), lambda sql: raw.execute(sql).fetchall(), {"A": "jm_a", "B": "jm_b"})


@pytest.mark.parametrize("sql", [
    "SELECT json_extract(profile, '$.tier') FROM people WHERE id = 1",
    "SELECT profile ->> '$.tier' FROM people WHERE id = 1",
])
def test_sqlite_extraction_from_text_stays_refused(sql: str) -> None:
    """SQLite keeps JSON as text: ``json_extract`` fails on malformed JSON ("malformed JSON"), by what it holds."""
    import sqlite3

    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE people (id integer PRIMARY KEY, profile text)")
    raw.executemany("INSERT INTO people VALUES (?, ?)", [(i, json.dumps(d)) for i, d in ROWS_A])
    conn = _wrap(raw)
    assert _seen(lambda s: conn.execute(s).fetchall(), sql) == "refused: ['masked-column-predicate']"


def _runner(conn: Any) -> Callable[[str], Any]:
    return lambda sql: conn.execute(sql).fetchall()


def _keyed_doc(name: str, ssn: int, email: str) -> str:
    return json.dumps({"full_name": name, "ssn": ssn, "plan": "pro", email: "admin"})


KEYED = {"A": ("Alice Martin", 536228701, "alice.k@example.com"), "B": ("Zoe Quint", 219451234, "zq@other.org")}


def _keyed_rows(c: str) -> list[tuple[int, str]]:
    name, ssn, email = KEYED[c]
    return [(1, _keyed_doc(name, ssn, email)),
            *[(i, _keyed_doc(f"Person Number{i}", 536228700 + i, f"p{i}@example.com")) for i in range(2, 31)]]


def _keyed_check(run: Callable[[str], Any], raw_run: Callable[[str], Any], tables: dict[str, str]) -> None:
    """A document's values under keys that name personal data, and addresses used as keys, leave masked."""
    sql = "SELECT profile FROM {t} WHERE id = 1"
    assert _seen(raw_run, sql.format(t=tables["A"])) != _seen(raw_run, sql.format(t=tables["B"]))
    seen = [_seen(run, sql.format(t=tables[c])) for c in ("A", "B")]
    assert seen[0] == seen[1], seen
    flat = repr(seen)
    assert not [s for v in KEYED.values() for s in (*v[0].split(), str(v[1]), v[2]) if s in flat], flat
    doc = seen[0][0][0]
    assert isinstance(doc, dict), doc  # still a JSON document (a replaced number had made the text invalid)
    assert doc["full_name"] == "[PERSON_NAME]" and doc["ssn"] == "[US_SSN]" and doc["plan"] == "pro", doc


@pytest.mark.parametrize("declared", ["text", "json"])
def test_sqlite_and_duckdb_documents_mask_by_key_and_scan_keys(declared: str) -> None:
    import sqlite3

    duckdb = pytest.importorskip("duckdb")
    for raw in (sqlite3.connect(":memory:"), duckdb.connect()):
        for c in ("A", "B"):
            raw.execute(f"CREATE TABLE k_{c} (id INTEGER PRIMARY KEY, profile {declared})")
            raw.executemany(f"INSERT INTO k_{c} VALUES (?, ?)", _keyed_rows(c))
        _keyed_check(_runner(_wrap(raw)), _runner(raw), {"A": "k_A", "B": "k_B"})


@pytest.mark.parametrize("declared", ["jsonb", "text"])
def test_postgres_documents_mask_by_key_and_scan_keys(pg_conn: Any, pg_dsn: str, unique: str, declared: str) -> None:
    """psycopg returns ``jsonb`` decoded (the e-mail key came back in clear) and ``text`` as text."""
    import psycopg

    tables = {c: f"jmem_{unique}_k{c.lower()}" for c in ("A", "B")}
    try:
        for c in ("A", "B"):
            pg_conn.execute(f"CREATE TABLE {tables[c]} (id int PRIMARY KEY, profile {declared})")
            with pg_conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {tables[c]} VALUES (%s, %s)", _keyed_rows(c))
        conn = _wrap(psycopg.connect(pg_dsn, autocommit=True))
        try:
            _keyed_check(lambda s: conn.execute(s).fetchall(), lambda s: pg_conn.execute(s).fetchall(), tables)
        finally:
            conn.close()
    finally:
        for t in tables.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def test_mariadb_documents_mask_by_key_and_scan_keys(mysql_conn: Any, mysql_kw: dict[str, Any], unique: str) -> None:
    import pymysql

    tables = {c: f"jmem_{unique}_k{c.lower()}" for c in ("A", "B")}

    def raw_run(sql: str) -> Any:
        with mysql_conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()

    try:
        for c in ("A", "B"):
            with mysql_conn.cursor() as cur:
                cur.execute(f"CREATE TABLE {tables[c]} (id int PRIMARY KEY, profile json)")
                cur.executemany(f"INSERT INTO {tables[c]} VALUES (%s, %s)", _keyed_rows(c))
        conn = _wrap(pymysql.connect(autocommit=True, **mysql_kw))

        def run(sql: str) -> Any:
            cur = conn.cursor()
            cur.execute(sql)
            return cur.fetchall()

        try:
            _keyed_check(run, raw_run, tables)
        finally:
            conn.close()
    finally:
        with mysql_conn.cursor() as cur:
            for t in tables.values():
                cur.execute(f"DROP TABLE IF EXISTS {t}")


HSTORE_READS = [
    "SELECT attrs -> 'ssn', attrs -> 'tier', attrs -> 'full_name' FROM {t} WHERE id = 1",
    "SELECT count(*) FROM {t} WHERE attrs -> 'ssn' LIKE '5%'",
    "SELECT coalesce(attrs -> 'ssn', 'x'), length(attrs -> 'ssn') FROM {t} WHERE id = 1",
    "SELECT id FROM {t} ORDER BY attrs -> 'ssn' LIMIT 1",
    "SELECT attrs FROM {t} WHERE id = 1",
    "SELECT (attrs -> 'ssn') || '' FROM {t} WHERE id = 1",
    "SELECT attrs ? 'ssn', defined(attrs, 'ssn') FROM {t} WHERE id = 1",
]


def test_postgres_hstore_members_read_as_the_hstore_masks_them(pg_conn: Any, pg_dsn: str, unique: str) -> None:
    """An hstore key's member (``attrs -> 'tier'``) reads as the hstore's own masking shows it (decision 0271):
    under a key naming personal data its placeholder, else scanned; computed from, filtered or ordered by a member
    it tells nothing. Two tables differing only in row 1's SSN and name answer alike; raw tells them apart."""
    import psycopg

    ensure_hstore(pg_conn)
    tables = {c: f"jmem_{unique}_h{c.lower()}" for c in ("A", "B")}
    secrets = {"A": ("536-22-8701", "Alice Martin"), "B": ("219-45-1234", "Zoe Quint")}
    try:
        for c, (ssn, name) in secrets.items():
            pg_conn.execute(f"CREATE TABLE {tables[c]} (id int PRIMARY KEY, attrs hstore)")
            with pg_conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {tables[c]} VALUES (%s, %s::hstore)", [
                    (1, f'"ssn"=>"{ssn}", "tier"=>"gold", "full_name"=>"{name}"'),
                    *[(i, f'"ssn"=>"536-22-{8700 + i}", "tier"=>"basic", "full_name"=>"Bob Stone"') for i in range(2, 31)],
                ])
        raw = [pg_conn.execute(HSTORE_READS[0].format(t=t)).fetchall() for t in tables.values()]
        assert raw[0] != raw[1], raw  # an oracle, were the reads answered raw
        conn = _wrap(psycopg.connect(pg_dsn, autocommit=True))
        try:
            seen = [[_seen(_runner(conn), sql.format(t=t)) for sql in HSTORE_READS] for t in tables.values()]
        finally:
            conn.close()
        assert seen[0] == seen[1], seen
        assert not [s for v in secrets.values() for s in (*v, *v[1].split()) if s in repr(seen)], seen
        assert seen[0][0] == [("[US_SSN]", "gold", "[PERSON_NAME]")], seen
        assert seen[0][1] == seen[0][3] == "refused: ['masked-column-predicate']", seen
    finally:
        for t in tables.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


@pytest.fixture
def md_tables(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    tables = {c: f"jmem_{unique}_m{c.lower()}" for c in ("A", "B")}
    try:
        for c, rows in (("A", ROWS_A), ("B", ROWS_B)):
            with mysql_conn.cursor() as cur:
                cur.execute(f"CREATE TABLE {tables[c]} (id int PRIMARY KEY, full_name text, profile json)")
                cur.executemany(f"INSERT INTO {tables[c]} VALUES (%s, %s, %s)",
                                [(i, f"Alice Martin{i}", json.dumps(d)) for i, d in rows])
        yield tables
    finally:
        with mysql_conn.cursor() as cur:
            for t in tables.values():
                cur.execute(f"DROP TABLE IF EXISTS {t}")


def _md_runner(conn: Any) -> Callable[[str], Any]:
    def run(sql: str) -> Any:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchall()

    return run


def test_mariadb_members_of_a_json_column_read_as_the_document_masks_them(
    mysql_conn: Any, mysql_kw: dict[str, Any], md_tables: dict[str, str]
) -> None:
    """MariaDB's ``JSON`` is ``LONGTEXT`` with ``CHECK (json_valid(col))``: every value is valid JSON, so a member
    at a constant path cannot fail or warn (decision 0318), and reads as on PostgreSQL ``jsonb``."""
    import pymysql

    conn = _wrap(pymysql.connect(autocommit=True, **mysql_kw))
    try:
        _check(_md_runner(conn), _md_runner(mysql_conn), md_tables, MD_MEMBERS, MD_REFUSED)
    finally:
        conn.close()
    granted = _wrap(pymysql.connect(autocommit=True, **mysql_kw), AUDITOR)
    try:  # an unmask grant keeps full access
        assert _md_runner(granted)(MD_MEMBERS[0].format(t=md_tables["A"])) == (
            ("gold", "+1 415 555 1201", "mail a1@example.com"),)
    finally:
        granted.close()


def test_aiomysql_members_read_as_pymysql_reads_them(
    mysql_conn: Any, mysql_kw: dict[str, Any], md_tables: dict[str, str]
) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    loop = asyncio.new_event_loop()
    try:
        conn = _wrap(loop.run_until_complete(aiomysql.connect(
            host=mysql_kw["host"], port=mysql_kw["port"], user=mysql_kw["user"], password=mysql_kw["password"],
            db=mysql_kw["database"], autocommit=True)))

        async def fetch(sql: str) -> Any:
            cur = await conn.cursor()
            await cur.execute(sql)
            return await cur.fetchall()

        try:
            _check(lambda sql: loop.run_until_complete(fetch(sql)), _md_runner(mysql_conn), md_tables,
                   MD_MEMBERS, MD_REFUSED)
        finally:
            conn.close()
    finally:
        loop.close()


def test_mariadb_extraction_from_plain_text_stays_refused(
    mysql_conn: Any, mysql_kw: dict[str, Any], unique: str
) -> None:
    """A ``LONGTEXT`` without the ``json_valid`` check may hold malformed JSON, on which JSON_EXTRACT warns (with
    the position of the error): still refused; so are paths with wildcards, several paths at once, JSON_VALUE,
    and the switch that would let malformed JSON into a checked column."""
    import pymysql

    plain, checked = f"jmem_{unique}_plain", f"jmem_{unique}_chk"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {plain} (id int PRIMARY KEY, profile longtext)")
        cur.execute(f"CREATE TABLE {checked} (id int PRIMARY KEY, profile json)")
        for t in (plain, checked):
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s)", [(i, json.dumps(d)) for i, d in ROWS_A])
    conn = _wrap(pymysql.connect(autocommit=True, **mysql_kw))
    try:
        run = _md_runner(conn)
        assert _seen(run, f"SELECT JSON_EXTRACT(profile, '$.tier') FROM {plain} WHERE id = 1") == (
            "refused: ['masked-column-predicate']")
        # JSON_VALUE is NULL for an object or array: under a key masked whole it would tell which it holds
        for sql in (f"SELECT JSON_EXTRACT(profile, '$.*') FROM {checked} WHERE id = 1",
                    f"SELECT JSON_EXTRACT(profile, '$.tier', '$.ssn') FROM {checked} WHERE id = 1",
                    f"SELECT JSON_VALUE(profile, '$.contact') FROM {checked} WHERE id = 1"):
            assert _seen(run, sql) == "refused: ['masked-column-predicate']", sql
        assert _seen(run, f"SELECT JSON_EXTRACT(profile, '$.tier') FROM {checked} WHERE id = 1") == [("gold",)]
        cur = conn.cursor()
        with pytest.raises(governed_db.GuardrailViolation, match="settings-critical"):
            cur.execute("SET SESSION check_constraint_checks = 0")
        with mysql_conn.cursor() as raw:
            raw.execute("SELECT @@session.check_constraint_checks")
            assert raw.fetchall()[0][0] == 1
    finally:
        conn.close()
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {plain}, {checked}")


ESCAPED = {"A": '{"note": "mail zed\\u0040other.org ssn 219\\u002d45\\u002d1234", "tier": "gold"}',
           "B": '{"note": "mail amy\\u0040other.org ssn 536\\u002d22\\u002d8701", "tier": "gold"}'}


def _escaped_rows(c: str) -> list[tuple[int, str]]:
    return [(1, ESCAPED[c]), *[(i, json.dumps({"note": f"mail p{i}@example.com", "tier": "basic"})) for i in range(2, 31)]]


def _escaped_check(run: Callable[[str], Any], raw_run: Callable[[str], Any], tables: dict[str, str], sql: str) -> None:
    """A member returned as JSON text keeps the document's escapes (``\\u0040`` for ``@``): it is scanned as the
    characters it encodes, as the whole document is."""
    raw = [raw_run(sql.format(t=tables[c])) for c in ("A", "B")]
    assert raw[0] != raw[1] and "u0040" in repr(raw[0]), raw
    seen = [_seen(run, sql.format(t=tables[c])) for c in ("A", "B")]
    assert seen[0] == seen[1], seen
    flat = repr(seen)
    assert not [s for s in ("zed", "amy", "219", "536", "u0040", "u002d") if s in flat], flat
    assert "[EMAIL]" in flat and "[US_SSN]" in flat, flat


def test_mariadb_members_with_escapes_are_scanned_as_what_they_encode(
    mysql_conn: Any, mysql_kw: dict[str, Any], unique: str
) -> None:
    import pymysql

    tables = {c: f"jmem_{unique}_e{c.lower()}" for c in ("A", "B")}
    try:
        with mysql_conn.cursor() as cur:
            for c in ("A", "B"):
                cur.execute(f"CREATE TABLE {tables[c]} (id int PRIMARY KEY, full_name text, profile json)")
                cur.executemany(f"INSERT INTO {tables[c]} VALUES (%s, 'x', %s)", _escaped_rows(c))
        conn = _wrap(pymysql.connect(autocommit=True, **mysql_kw))
        try:
            _escaped_check(_md_runner(conn), _md_runner(mysql_conn), tables,
                           "SELECT JSON_EXTRACT(profile, '$.note') FROM {t} WHERE id = 1")
        finally:
            conn.close()
    finally:
        with mysql_conn.cursor() as cur:
            for t in tables.values():
                cur.execute(f"DROP TABLE IF EXISTS {t}")


def test_duckdb_members_with_escapes_are_scanned_as_what_they_encode() -> None:
    duckdb = pytest.importorskip("duckdb")
    raw = duckdb.connect()
    for c in ("A", "B"):
        raw.execute(f"CREATE TABLE je_{c} (id INTEGER PRIMARY KEY, full_name VARCHAR, profile JSON)")
        raw.executemany(f"INSERT INTO je_{c} VALUES (?, 'x', ?)", _escaped_rows(c))
    conn = _wrap(raw)
    for sql in ("SELECT profile->'note' FROM {t} WHERE id = 1", "SELECT profile FROM {t} WHERE id = 1"):
        raw_out = raw.execute(sql.format(t="je_A")).fetchall()
        if "u0040" not in repr(raw_out):
            continue  # DuckDB wrote the member out unescaped: nothing to decode (the scan sees the characters)
        _escaped_check(_runner(conn), _runner(raw), {"A": "je_A", "B": "je_B"}, sql)
