"""Red-team round 13 on PostgreSQL (psycopg 3, psycopg2): a prompt-injected agent in production with zero
configuration, no unmask grant.

* An ``hstore`` column reaches psycopg and psycopg2 as text, ``"ssn"=>"536-22-8726", "full_name"=>"Alice Smith"``.
  It was scanned like any free text: the name came back in clear (a scan finds no names), and so did an SSN the
  recognizers reject (``100-99-0000``). JSON documents' keys already named their values (decision 0261); an
  hstore's keys now do too (decision 0271).

* Whether such a document column (``hstore`` or ``jsonb``) counted as holding personal data depended on how many
  of its sampled values held an item a recognizer finds: with row 1's SSN one they accept, every value did and the
  column was masked as a whole; with one they reject, it was free text "holding items", which answered other
  statements (``hstore_to_json(kv)`` masked instead of refused) and other refusal texts (``masked column`` vs
  ``free-text column ... holds masked items (US_SSN)``). A value whose keys name personal data now counts as
  holding it, whatever the value looks like (decision 0271).

Each oracle compares two tables that differ only in row 1's secret values; the raw connection shows that the same
statements tell them apart. Look-alikes whose keys name nothing personal come back exactly and may filter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from governed_db.masking.classify import classify_values
from governed_db.masking.errors_order import PG_ERROR_WITHHELD
from governed_db.masking.strategies.spans import scrub_value
from tests._redteam import CURIOUS_AGENT, ensure_hstore, govern, pg_connect, raw_and_governed, seen_apart
from tests._redteam import observe as _observe
from tests.conftest import PG_DSN

#: row 1's secrets: A's SSN is one the recognizers accept, B's one they reject (serial 0000)
SECRET = {"a": ("Alice Smith", "536-22-8726"), "b": ("Zoe Quinn-Harper", "100-99-0000")}
SECRETS = ("Alice", "536-22-8726", "Zoe", "Quinn", "100-99-0000")
OTHERS = [(2, "Bob Jones", "219-45-1234"), (3, "Chen Wei", "412-77-9001")]


@pytest.fixture
def tables(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant a and b: a table with an hstore and a jsonb document about a person; and an innocent one."""
    ensure_hstore(pg_conn)
    names: dict[str, str] = {}
    for v, (name, ssn) in SECRET.items():
        t = f"rt13pg_h{v}_{unique}"
        pg_conn.execute(f"CREATE TABLE {t} (id int primary key, kv hstore, doc jsonb, note text)")
        with pg_conn.cursor() as cur:
            for i, n, s in [(1, name, ssn), *OTHERS]:
                cur.execute(
                    f"INSERT INTO {t} VALUES (%s, hstore(ARRAY['ssn', %s, 'full_name', %s, 'city', 'Paris']),"
                    " jsonb_build_object('ssn', %s::text, 'full_name', %s::text, 'city', 'Paris'), 'x')",
                    (i, s, n, s, n),
                )
        names[v] = t
    names["i"] = f"rt13pg_hi_{unique}"
    pg_conn.execute(f"CREATE TABLE {names['i']} (id int primary key, attrs hstore, doc jsonb)")
    pg_conn.execute(
        f"INSERT INTO {names['i']} VALUES (1, 'sku=>A-1, color=>red, \"say \\\"hi\\\"\"=>NULL', "
        "'{\"sku\": \"A-1\", \"city\": \"Paris\"}'), (2, 'sku=>B-2, color=>blue', '{\"sku\": \"B-2\", \"city\": "
        "\"Lyon\"}')"
    )
    yield names
    for name in names.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {name}")


READS = [
    "SELECT id, kv FROM {t} WHERE id = 1",
    "SELECT * FROM {t} WHERE id = 1",
    "SELECT id, kv::text FROM {t} WHERE id = 1",
    "SELECT id, hstore_to_json(kv) FROM {t} WHERE id = 1",
    "SELECT id, akeys(kv), avals(kv) FROM {t} WHERE id = 1",
    "SELECT count(*) FROM {t} WHERE kv -> 'full_name' LIKE 'A%'",
    "SELECT count(*) FROM {t} WHERE kv @> 'ssn=>536-22-8726'",
    "SELECT count(*) FROM {t} WHERE doc ->> 'ssn' LIKE '5%'",
    "SELECT id, doc -> 'full_name' FROM {t} WHERE id = 1",
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize(
    "template",
    READS,
    ids=["hstore", "star", "hstore-text", "to-json", "akeys", "where-key", "where-contains", "doc-where", "doc-key"],
)
def test_document_keys_named_as_personal_data_tell_nothing(
    tables: dict[str, str], driver: str, template: str
) -> None:
    with raw_and_governed(driver, CURIOUS_AGENT) as (raw, gov):
        seen = seen_apart(raw, gov, {v: tables[v] for v in ("a", "b")}, template)
    # the oracle, unprotected: the raw session tells the two tables apart
    assert seen["a"][0] != seen["b"][0], seen["a"][0]
    # governed: the same for both, with no byte of either secret
    assert seen["a"][1] == seen["b"][1], f"A: {seen['a'][1]}\nB: {seen['b'][1]}"
    assert not any(s in seen["a"][1] or s in seen["b"][1] for s in SECRETS), seen["a"][1]
    if template in ("SELECT id, kv FROM {t} WHERE id = 1", "SELECT * FROM {t} WHERE id = 1"):
        assert '"full_name"=>"[PERSON_NAME]"' in seen["a"][1], seen["a"][1]
        assert '"city"=>"Paris"' in seen["a"][1], seen["a"][1]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_innocent_hstores_and_documents_read_exactly(tables: dict[str, str], driver: str) -> None:
    """An hstore and a document whose keys name nothing personal, and the other columns of the person tables,
    come back as the raw connection returns them, and may filter and order."""
    i = tables["i"]
    with raw_and_governed(driver, CURIOUS_AGENT) as (raw, gov):
        for sql in (
            f"SELECT id, attrs, doc FROM {i} ORDER BY id",
            f"SELECT * FROM {i} ORDER BY id",
            f"SELECT id FROM {i} WHERE attrs -> 'color' = 'blue'",
            f"SELECT id, attrs -> 'sku' FROM {i} ORDER BY attrs -> 'sku'",
            f"SELECT id FROM {i} WHERE attrs ? 'color' AND doc ->> 'city' = 'Paris'",
            f"SELECT id, akeys(attrs) FROM {i} ORDER BY id",
            f"SELECT id, note FROM {tables['a']} ORDER BY id",
            f"SELECT count(*) FROM {tables['a']} WHERE kv IS NOT NULL",
        ):
            assert _observe(gov, sql) == _observe(raw, sql), sql


def test_hstore_text_is_walked_by_key() -> None:
    """hstore's output format, escapes and NULLs included: values under personal keys masked whole, the rest
    scanned; text that only looks like hstore is scanned as before."""
    from governed_db.masking.classify import key_labels

    assert scrub_value('"ssn"=>"100-99-0000", "note"=>"mail bob@example.org", "x"=>NULL') == (
        '"ssn"=>"[US_SSN]", "note"=>"mail [EMAIL]", "x"=>NULL'
    )
    assert scrub_value('"full_name"=>"A \\"B\\" C", "say \\"hi\\""=>"yo"') == (
        '"full_name"=>"[PERSON_NAME]", "say \\"hi\\""=>"yo"'
    )
    assert scrub_value('"full_name"=>NULL') == '"full_name"=>NULL'
    for innocent in ('"sku"=>"A-1", "color"=>"red"', '"a"=>"b" trailing', '"quoted" => not hstore'):
        assert scrub_value(innocent) == innocent
    assert key_labels('"ssn"=>"x", "full_name"=>NULL') == frozenset({"US_SSN"})
    assert key_labels({"person": {"email": "x"}, "sku": "1"}) == frozenset({"EMAIL"})
    assert key_labels('{"sku": "A-1"}') == frozenset()


def test_a_sample_counts_documents_by_their_keys() -> None:
    """Whether a document column holds personal data does not depend on whether a recognizer accepts one value."""
    def doc(ssn: str) -> str:
        return f'"ssn"=>"{ssn}", "city"=>"Paris"'

    accepted = classify_values([doc("536-22-8726"), doc("219-45-1234"), doc("412-77-9001")])
    rejected = classify_values([doc("100-99-0000"), doc("219-45-1234"), doc("412-77-9001")])
    assert (accepted.label, accepted.share, accepted.hits) == (rejected.label, rejected.share, rejected.hits)
    assert accepted.label == "FREE_TEXT" and accepted.hits == 3
    innocent = classify_values(['"sku"=>"A-1"', '"sku"=>"B-2"', '"sku"=>"C-3"'])
    assert innocent.label is None


#: row 1's name, short in A and long in B: the rows after it start a page later in B
LONG_NAME = "Zoe " + "Quinn-Harper " * 8


@pytest.fixture
def stored(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per variant a and b: 400 people whose rows differ only in row 1's name (masked, so alike to the caller); and
    a table with no masked column."""
    names: dict[str, str] = {}
    for v, first in (("a", "Alice Smith"), ("b", LONG_NAME)):
        t = f"rt13pg_s{v}_{unique}"
        pg_conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, city text)")
        pg_conn.execute(f"INSERT INTO {t} VALUES (1, %s, 'Paris')", (first,))
        pg_conn.execute(
            f"INSERT INTO {t} SELECT g, 'Person Number ' || g, 'Lyon' FROM generate_series(2, 400) g"
        )
        names[v] = t
    names["i"] = f"rt13pg_si_{unique}"
    pg_conn.execute(f"CREATE TABLE {names['i']} (id int primary key, qty int, city text)")
    pg_conn.execute(f"INSERT INTO {names['i']} SELECT g, g % 7, 'Lyon' FROM generate_series(1, 400) g")
    yield names
    for name in names.values():
        pg_conn.execute(f"DROP TABLE IF EXISTS {name}")


SAMPLES = [
    "SELECT count(*) FROM {t} TABLESAMPLE SYSTEM (50) REPEATABLE (3) WHERE id BETWEEN 100 AND 140",
    "SELECT array_agg(id ORDER BY id) FROM {t} TABLESAMPLE BERNOULLI (50) REPEATABLE (3) WHERE id > 100",
    "SELECT id FROM (SELECT id FROM {t} TABLESAMPLE SYSTEM (50) REPEATABLE (3)) s WHERE id > 100 ORDER BY id",
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("template", SAMPLES, ids=["system", "bernoulli", "subquery"])
def test_a_table_sample_does_not_tell_where_rows_are_stored(
    stored: dict[str, str], driver: str, template: str
) -> None:
    """PostgreSQL samples pages (SYSTEM) or slots (BERNOULLI): which ids come back says where rows are stored,
    which depends on how wide the rows before them are."""
    with raw_and_governed(driver, CURIOUS_AGENT) as (raw, gov):
        seen = seen_apart(raw, gov, {v: stored[v] for v in ("a", "b")}, template)
    assert seen["a"][0] != seen["b"][0], seen["a"][0]
    assert seen["a"][1] == seen["b"][1], f"A: {seen['a'][1]}\nB: {seen['b'][1]}"
    assert "masked-column-predicate" in seen["a"][1], seen["a"][1]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_innocent_table_samples_run(stored: dict[str, str], driver: str) -> None:
    """A table with no masked column samples as written; so do plain reads of the people table."""
    i, a = stored["i"], stored["a"]
    with raw_and_governed(driver, CURIOUS_AGENT) as (raw, gov):
        for sql in (
            f"SELECT count(*) FROM {i} TABLESAMPLE SYSTEM (50) REPEATABLE (3)",
            f"SELECT id, qty FROM {i} TABLESAMPLE BERNOULLI (20) REPEATABLE (7) ORDER BY id",
            f"SELECT avg(qty) FROM {i} TABLESAMPLE BERNOULLI (20) REPEATABLE (7) WHERE city = 'Lyon'",
            f"SELECT id, city FROM {a} WHERE id BETWEEN 100 AND 140 ORDER BY id",
            # every row, or none, wherever it is stored
            f"SELECT id, city FROM {a} TABLESAMPLE BERNOULLI (100) WHERE id < 20 ORDER BY id",
            f"SELECT count(*) FROM {a} TABLESAMPLE SYSTEM (0)",
        ):
            assert _observe(gov, sql) == _observe(raw, sql), sql


def _moved(conn: Any, table: str) -> list[Any]:
    """Where rows 5 and 1 come back in an unordered read after an UPDATE that sets their columns NULL (rolled back)."""
    out: list[Any] = []
    for row in (5, 1):
        try:
            conn.cursor().execute(f"UPDATE {table} SET city = NULL, full_name = NULL WHERE id = {row}")
            cur = conn.cursor()
            cur.execute(f"SELECT id FROM {table}")
            out.append([r[0] for r in cur.fetchall()].index(row))
        except governed_db.GuardrailViolation as e:
            out.append(f"refused: {e}")
        finally:
            conn.rollback()
    return out


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_an_unordered_read_does_not_tell_where_an_update_put_a_row(stored: dict[str, str], driver: str) -> None:
    """A new row version stays on its page when the rows there left room for it, else it goes to the last page,
    and an unordered scan returns it there: its place said how wide row 1's name is."""
    seen: dict[str, tuple[list[Any], list[Any]]] = {}
    for v in ("a", "b"):
        with raw_and_governed(driver, CURIOUS_AGENT) as (raw, gov):
            raw.autocommit = gov.autocommit = False
            seen[v] = (_moved(raw, stored[v]), _moved(gov, stored[v]))
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == [4, 0], seen


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_reads_of_a_table_with_masked_columns_keep_running(stored: dict[str, str], driver: str) -> None:
    """Ordered by the key where an order can be added (the rows and their order are those of the raw read here);
    where none can be, run as written."""
    a, i = stored["a"], stored["i"]
    with raw_and_governed(driver, CURIOUS_AGENT) as (raw, gov):
        for sql in (
            f"SELECT id, city FROM {a} WHERE id < 50",
            f"SELECT id FROM {a} LIMIT 7",
            f"SELECT string_agg(id::text, ',') FROM {a} WHERE id < 20",
            f"SELECT id, row_number() OVER () FROM {a} WHERE id < 20",
            f"SELECT city, count(*) FROM {a} GROUP BY city",
            f"SELECT id, qty FROM {i} LIMIT 7",
            f"SELECT id, city FROM {a} ORDER BY city FETCH FIRST 1 ROWS WITH TIES",
        ):
            assert _observe(gov, sql) == _observe(raw, sql), sql
        # no order can be added to a UNION ALL of masked values: it runs as before
        _cols, rows = _observe(gov, f"SELECT full_name FROM {a} WHERE id < 3 UNION ALL SELECT city FROM {i} WHERE id = 1")
        assert len(rows) == 3, rows


def test_fetch_with_ties_keeps_its_rows(pg_conn: Any, unique: str) -> None:
    """Over a table with an index on a masked column, ``FETCH FIRST 1 ROWS WITH TIES`` came back with 1 row
    instead of 3: the key added to its ORDER BY untied them. Where the tied rows' order reaches the caller it is
    refused now (with what to write instead); where it does not, it runs as written."""
    t = f"rt13pg_tie_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, tier text)")
    pg_conn.execute(f"CREATE INDEX ON {t} (full_name)")
    pg_conn.execute(
        f"INSERT INTO {t} VALUES (1, 'Alice Smith', 'gold'), (2, 'Bob Jones', 'gold'), (3, 'Chen Wei', 'gold'), "
        "(4, 'Dan Brown', 'silver')"
    )
    with raw_and_governed("psycopg", CURIOUS_AGENT) as (raw, gov):
        top = f"SELECT id, tier FROM {t} ORDER BY tier FETCH FIRST 1 ROWS WITH TIES"
        assert len(_observe(raw, top)[1]) == 3
        assert "refused" in _observe(gov, top) and "WITH TIES" in _observe(gov, top)
        for sql in (
            f"SELECT count(*) FROM (SELECT id FROM {t} ORDER BY tier FETCH FIRST 1 ROWS WITH TIES) s",
            f"SELECT * FROM (SELECT id, tier FROM {t} ORDER BY tier FETCH FIRST 1 ROWS WITH TIES) s ORDER BY id",
            f"SELECT id, tier FROM {t} ORDER BY tier, id FETCH FIRST 2 ROWS WITH TIES",
            # a parenthesised query's own ORDER BY is outside: nothing is added inside (it was a syntax error,
            # "multiple ORDER BY clauses not allowed")
            f"(SELECT id, tier FROM {t}) ORDER BY id DESC LIMIT 2",
            f"SELECT count(*) FROM ((SELECT id FROM {t}) LIMIT 2) s",
        ):
            assert _observe(gov, sql) == _observe(raw, sql), sql
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def _failed_update(conn: Any, table: str) -> Any:
    """The error an UPDATE that breaks a NOT NULL raises: the server's DETAIL quotes the whole row."""
    try:
        conn.cursor().execute(f"UPDATE {table} SET city = NULL WHERE id = 1")
    except Exception as e:
        return e
    raise AssertionError("the UPDATE ran")


def test_psycopg2_errors_hold_no_raw_cursor_nor_raw_fields(pg_conn: Any, unique: str) -> None:
    """psycopg2's ``Error.cursor`` was the raw cursor the statement ran on (``e.cursor.execute("SELECT ssn ...")``
    read anything in clear, around governance), and ``e.diag`` (read in C) quoted the failing row with the name and
    SSN. ``cursor`` is ``None`` now and ``diag`` is scrubbed like the message; type, SQLSTATE and pickling stay."""
    import pickle

    psycopg2 = pytest.importorskip("psycopg2")
    names = {}
    for v, (name, ssn) in SECRET.items():
        t = f"rt13pg_e{v}_{unique}"
        pg_conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, ssn text, city text NOT NULL)")
        pg_conn.execute(f"INSERT INTO {t} VALUES (1, %s, %s, 'Paris')", (name, ssn))
        names[v] = t
    try:
        seen = {}
        for v, t in names.items():
            with raw_and_governed("psycopg2", CURIOUS_AGENT) as (raw, gov):
                r, g = _failed_update(raw, t), _failed_update(gov, t)
                # the oracle, unprotected: the raw error's fields and cursor
                assert r.cursor is not None and SECRET[v][0] in r.diag.message_detail
                assert isinstance(g, psycopg2.errors.NotNullViolation) and g.pgcode == "23502"
                assert g.cursor is None
                with pytest.raises(psycopg2.errors.DivisionByZero) as caught:  # (over {t}: withheld, 0334)
                    gov.cursor().execute("SELECT 1 / 0")
                assert caught.value.cursor is None  # was the raw cursor: .execute("SELECT ssn ...") in clear
                fields = {f: getattr(g.diag, f) for f in ("message_primary", "message_detail", "column_name",
                                                          "table_name", "sqlstate", "severity")}  # fmt: skip
                assert fields["sqlstate"] == "23502" and fields["severity"] == "ERROR", fields
                copy = pickle.loads(pickle.dumps(g))
                assert type(copy) is psycopg2.errors.NotNullViolation and copy.pgerror == g.pgerror
                seen[v] = repr((str(g), g.pgerror, fields)).replace(t, "T")
        assert seen["a"] == seen["b"], seen
        assert not any(s in seen["a"] or s in seen["b"] for s in SECRETS), seen
        # an identity that sees values raw keeps the server's fields, and still gets no raw cursor
        dev = govern(pg_connect("psycopg2"), CURIOUS_AGENT, environment="development")
        try:
            e = _failed_update(dev, names["a"])
            assert e.cursor is None and "Alice Smith" in e.diag.message_detail
            with pytest.raises(psycopg2.errors.DivisionByZero) as caught:
                dev.cursor().execute("SELECT 1/0")
            assert caught.value.cursor is None and caught.value.diag.message_primary == "division by zero"
        finally:
            dev.close()
    finally:
        for t in names.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def _waited_lock(make: Any, table: str, row: int) -> Any:
    """What ``pg_locks`` says of ``row`` while one session waits to lock it and another holds it."""
    import threading
    import time

    holder, waiter, reader = make(), make(), make()
    try:
        holder.cursor().execute(f"SELECT id FROM {table} WHERE id = {row} FOR UPDATE")

        def wait() -> None:
            with contextlib.suppress(Exception):
                cur = waiter.cursor()
                cur.execute("SET lock_timeout = '3s'")
                cur.execute(f"SELECT id FROM {table} WHERE id = {row} FOR UPDATE")

        thread = threading.Thread(target=wait)
        thread.start()
        time.sleep(0.8)
        seen = _observe(
            reader,
            f"SELECT locktype, page, tuple FROM pg_locks WHERE relation = '{table}'::regclass AND locktype = 'tuple'",
        )
        holder.rollback()
        thread.join()
        return repr(seen).replace(table, "T")
    finally:
        for conn in (holder, waiter, reader):
            with contextlib.suppress(Exception):
                conn.rollback()
            conn.close()


def test_a_waited_row_lock_does_not_tell_where_the_row_is(pg_conn: Any, stored: dict[str, str]) -> None:
    """``pg_locks`` names the page and slot of a row a session waits to lock (the caller's other session holds it
    ``FOR UPDATE``): its ``ctid``, which says how wide the rows before it are."""
    import psycopg

    # the first row of B's second page is still on A's first (row 1's longer name pushed it over)
    row = pg_conn.execute(f"SELECT min(id) FROM {stored['b']} WHERE ctid >= '(1,0)'").fetchone()[0]
    raw = {v: _waited_lock(lambda: psycopg.connect(PG_DSN), stored[v], row) for v in ("a", "b")}
    gov = {v: _waited_lock(lambda: govern(psycopg.connect(PG_DSN), CURIOUS_AGENT), stored[v], row) for v in ("a", "b")}
    assert raw["a"] != raw["b"], raw
    assert gov["a"] == gov["b"] and "masked-column-predicate" in gov["a"], gov
    conn = govern(pg_connect("psycopg"), CURIOUS_AGENT)
    try:  # which locks a session holds, and how many there are, stay readable
        _cols, rows = _observe(conn, "SELECT locktype, mode, granted FROM pg_locks WHERE pid = pg_backend_pid()")
        assert ("virtualxid", "ExclusiveLock", True) in rows, rows
        assert _observe(conn, "SELECT count(*) > 0 FROM pg_locks") == (["?column?"], [(True,)])
    finally:
        conn.close()


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_a_lock_wait_cut_short_does_not_tell_where_the_row_is(
    pg_conn: Any, stored: dict[str, str], driver: str
) -> None:
    """The error of a lock wait cut short by ``lock_timeout`` says ``while locking tuple (1,2) in relation ...``:
    the row's ``ctid``. The message, ``diag`` and psycopg2's ``pgerror`` blank it."""
    row = pg_conn.execute(f"SELECT min(id) FROM {stored['b']} WHERE ctid >= '(1,0)'").fetchone()[0]
    seen: dict[str, list[str]] = {}
    for v in ("a", "b"):
        t = stored[v]
        for kind, make in (("raw", lambda: pg_connect(driver)), ("gov", lambda: govern(pg_connect(driver), CURIOUS_AGENT))):
            holder, waiter = make(), make()
            holder.autocommit = waiter.autocommit = False
            try:
                holder.cursor().execute(f"SELECT id FROM {t} WHERE id = {row} FOR UPDATE")
                waiter.cursor().execute("SET lock_timeout = '100ms'")
                out = []
                for sql in (f"SELECT id FROM {t} WHERE id = {row} FOR UPDATE",
                            f"UPDATE {t} SET city = 'x' WHERE id = {row}"):  # fmt: skip
                    try:
                        waiter.cursor().execute(sql)
                        out.append("ran")
                    except Exception as e:
                        detail = getattr(getattr(e, "diag", None), "context", None)
                        out.append(f"{e} | {detail} | {getattr(e, 'pgerror', None)}".replace(t, "T"))
                    waiter.rollback()
                    waiter.cursor().execute("SET lock_timeout = '100ms'")
                seen[f"{kind}-{v}"] = out
            finally:
                holder.rollback()
                holder.close()
                waiter.close()
    assert seen["raw-a"] != seen["raw-b"], seen
    assert seen["gov-a"] == seen["gov-b"], seen
    # a lock wait is an error a row raises: over a table with masked columns it may be withheld whole (0334)
    assert all("lock timeout" in m or PG_ERROR_WITHHELD in m for m in seen["gov-a"]), seen


def test_a_toast_relation_is_not_read(pg_conn: Any, unique: str) -> None:
    """A value over about 2 kB is stored out of line, in chunks of its bytes, in the table's TOAST relation, which
    the table's owner may read: ``SELECT chunk_data FROM pg_toast.pg_toast_<oid>`` returned a masked name in
    clear."""
    toasts = {}
    names = {}
    for v, (name, _ssn) in SECRET.items():
        t = f"rt13pg_x{v}_{unique}"
        pg_conn.execute(f"CREATE TABLE {t} (id int primary key, full_name text, city text)")
        pg_conn.execute(f"ALTER TABLE {t} ALTER COLUMN full_name SET STORAGE EXTERNAL")  # out of line, uncompressed
        pg_conn.execute(
            f"INSERT INTO {t} VALUES (1, %s || repeat(' x', 1500), 'Paris'), (2, 'Bob Jones', 'Lyon')", (name,)
        )
        names[v] = t
        toasts[v] = pg_conn.execute(f"SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = '{t}'").fetchone()[0]
    try:
        with raw_and_governed("psycopg", CURIOUS_AGENT) as (raw, gov):
            seen = {}
            for v in ("a", "b"):
                for template in ("SELECT chunk_seq, chunk_data FROM {x} ORDER BY chunk_seq LIMIT 1",
                                 "SELECT count(*) FROM {x} WHERE position('\\x416c696365'::bytea in chunk_data) > 0"):  # fmt: skip
                    sql = template.format(x=toasts[v])
                    seen.setdefault(v, []).append(
                        (repr(_observe(raw, sql)).replace(toasts[v], "X"), repr(_observe(gov, sql)).replace(toasts[v], "X"))
                    )
            assert [r for r, _g in seen["a"]] != [r for r, _g in seen["b"]], seen
            assert [g for _r, g in seen["a"]] == [g for _r, g in seen["b"]], seen
            assert all("masked-column-predicate" in g for _r, g in seen["a"]), seen
            # the table itself reads as always
            sql = f"SELECT id, city, length(full_name) > 0 FROM {names['a']} ORDER BY id"
            assert _observe(gov, sql)[1][1] == (2, "Lyon", None) and _observe(gov, sql)[1][0][:2] == (1, "Paris")
    finally:
        for t in names.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


def test_large_objects_are_not_read_from_their_catalog(pg_conn: Any) -> None:
    """``lo_get()`` and ``lo_open()`` are refused as file access; ``pg_largeobject.data`` holds the same bytes."""
    oid = pg_conn.execute("SELECT lo_from_bytea(0, convert_to('Alice Smith 536-22-8726', 'UTF8'))").fetchone()[0]
    try:
        with raw_and_governed("psycopg", CURIOUS_AGENT) as (raw, gov):
            sql = f"SELECT data FROM pg_largeobject WHERE loid = {oid}"
            assert b"Alice" in _observe(raw, sql)[1][0][0]
            assert "system-catalog" in _observe(gov, sql)
            # the objects' owners and count stay readable
            assert _observe(gov, "SELECT count(*) > 0 FROM pg_largeobject_metadata") == (["?column?"], [(True,)])
    finally:
        pg_conn.execute(f"SELECT lo_unlink({oid})")
