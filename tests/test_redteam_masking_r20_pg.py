"""Round 20 red team (r20pg), PostgreSQL through psycopg 3, psycopg2 and asyncpg: a table partitioned by a masked
column.

The application (a raw connection, as a migration) keeps its customers in a table partitioned by the name
(``PARTITION BY RANGE (full_name)``: ``_lo`` below 'N', ``_hi`` from it) or by a hash of the e-mail. A partition
holds exactly the rows whose key its bound admits, so reading one is a filter on the masked value that the
statement does not spell: ``SELECT count(*) FROM t_lo`` counted the names before 'N', ``SELECT id FROM t_lo WHERE
id = 1`` said on which side of 'N' row 1's name lies, and ``UPDATE t_lo SET city = 'X' WHERE id = 1`` changed one
row or none. A binary search over partitions the agent may not create, but a range split the application made
tells one bit per boundary, and a hash split a few bits of the value's hash. The parent tells the same: its
``tableoid`` is the partition a row is stored in (``tableoid::regclass`` said ``t_lo``, ``WHERE tableoid = ...``
kept the row or not, ``count(DISTINCT tableoid)``), and its rows read without ORDER BY come partition by
partition, so ``SELECT id FROM t`` put row 1 first or last (and ``LIMIT 3`` kept it or not).

Decision 0384: a partition is judged as ``SELECT * FROM <root> WHERE <its partition constraint>`` (the view
machinery of 0382); a partitioned table's ``tableoid`` is a use of the columns its partition keys read; and those
columns decide its stored order as an index over them would (0160), so its rows are ordered by values nobody masked
and never by ``(tableoid, ctid)``.

Oracles compare two copies that differ only in row 1's name (``Alice Smith`` or ``Zoe Quinn``, masked alike) and,
for the hash split, its e-mail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import governed_db
from tests._redteam import asyncpg_variants, leaked, pg_variants, seen_once

pytestmark = pytest.mark.usefixtures("pg_dsn")

#: row 1 per copy: (name, e-mail); the names fall either side of 'N', the e-mails in different hash partitions of 4
SECRETS = {"a": ("Alice Smith", "alice@example.com"), "b": ("Zoe Quinn", "zed@example.com")}
REFUSED = "refused: ['masked-column-predicate']"


@pytest.fixture
def split(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per copy a and b, ``{t}`` partitioned by range of the name (``{t}_lo``, ``{t}_hi``) and ``{t}h`` by a hash of
    the e-mail (``{t}h_0`` .. ``{t}h_3``): 10 customers, row 1 holding the copy's name and e-mail, the others names
    before 'N'."""
    names: dict[str, str] = {}
    try:
        for v, (name, email) in SECRETS.items():
            t = names[v] = f"gdb_r20pg_{unique}_{v}"
            pg_conn.execute(f"CREATE TABLE {t} (id int, full_name text, email text, city text) "
                            "PARTITION BY RANGE (full_name)")  # fmt: skip
            pg_conn.execute(f"CREATE TABLE {t}_lo PARTITION OF {t} FOR VALUES FROM (MINVALUE) TO ('N')")
            pg_conn.execute(f"CREATE TABLE {t}_hi PARTITION OF {t} FOR VALUES FROM ('N') TO (MAXVALUE)")
            pg_conn.execute(f"CREATE TABLE {t}h (id int, email text, city text) PARTITION BY HASH (email)")
            for r in range(4):
                pg_conn.execute(f"CREATE TABLE {t}h_{r} PARTITION OF {t}h FOR VALUES WITH (MODULUS 4, REMAINDER {r})")
            for table, values in ((t, (1, name, email, "Paris")), (f"{t}h", (1, email, "Paris"))):
                pg_conn.execute(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(values))})", values)
            pg_conn.execute(f"INSERT INTO {t} SELECT g, 'Aaron Number ' || g, 'p' || g || '@example.org', 'Lyon' "
                            "FROM generate_series(2, 10) g")  # fmt: skip
            # the application's views over it: one naming each row's partition, one keeping a partition's rows by
            # tableoid, one passing the clear columns on
            pg_conn.execute(f"CREATE VIEW {t}_v AS SELECT tableoid::regclass::text AS part, id, city FROM {t}")
            pg_conn.execute(f"CREATE VIEW {t}_w AS SELECT id, city FROM {t} WHERE tableoid = '{t}_lo'::regclass")
            pg_conn.execute(f"CREATE VIEW {t}_y AS SELECT id, city FROM {t}")
        yield names
    finally:
        for t in names.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {t}, {t}h CASCADE")




#: name -> statement; over the raw connection, the two copies answer differently
TOLD = {
    "a-partition-counted": "SELECT count(*) FROM {t}_lo",
    "a-partition-read-by-key": "SELECT id FROM {t}_lo WHERE id = 1",
    "only-the-partition": "SELECT id FROM ONLY {t}_hi ORDER BY id",
    "a-write-through-a-partition": "UPDATE {t}_lo SET city = 'Nice' WHERE id = 1",
    "a-delete-through-a-partition": "DELETE FROM {t}_hi WHERE id = 1",
    "a-hash-partition": "SELECT id FROM {t}h_1",
    "the-partition-a-row-is-in": "SELECT tableoid::regclass, id FROM {t} ORDER BY id",
    "rows-of-one-partition-by-tableoid": "SELECT id FROM {t} WHERE tableoid = '{t}_hi'::regclass",
    "partitions-counted-by-tableoid": "SELECT count(DISTINCT tableoid) FROM {t}",
    "the-hash-partition-a-row-is-in": "SELECT c.relname FROM {t}h x JOIN pg_class c ON c.oid = x.tableoid",
    "a-view-naming-the-partition": "SELECT part, id FROM {t}_v ORDER BY id",
    "a-view-keeping-a-partition-by-tableoid": "SELECT id FROM {t}_w ORDER BY id",
}  # fmt: skip


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("name", list(TOLD), ids=list(TOLD))
def test_a_partition_by_a_masked_column_picks_no_rows(split: dict[str, str], driver: str, name: str) -> None:
    seen = pg_variants(driver, split, seen_once(TOLD[name]))
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1] == repr(REFUSED), seen


#: name -> statement read without ORDER BY (or one the rows' stored order decides): partition by partition, raw
UNORDERED = {
    "every-row": "SELECT id FROM {t}",
    "the-first-three": "SELECT id, city FROM {t} LIMIT 3",
    "numbered-as-read": "SELECT id, row_number() OVER () FROM {t}",
    "joined-into-one-text": "SELECT string_agg(id::text, ',') FROM {t}",
    "a-view-of-its-clear-columns": "SELECT id FROM {t}_y",
}  # fmt: skip


@pytest.mark.parametrize("name", list(UNORDERED), ids=list(UNORDERED))
def test_a_table_partitioned_by_a_masked_column_is_read_in_no_order_it_decides(
    split: dict[str, str], name: str
) -> None:
    seen = pg_variants("psycopg", split, seen_once(UNORDERED[name]))
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1], seen
    assert "refused" not in seen["a"][1], seen  # ordered by values nobody masked, not refused


def test_a_partition_by_a_masked_column_through_asyncpg(split: dict[str, str]) -> None:
    """The partition's bound and the parent's placement are read by the async warm-up too, beneath a view too."""
    pytest.importorskip("asyncpg")
    statements = [
        "SELECT count(*) FROM {t}_lo",
        "SELECT tableoid::regclass FROM {t} WHERE id = 1",
        "SELECT id FROM {t}",
        "SELECT id FROM {t}h_1",
        "SELECT part FROM {t}_v WHERE id = 1",
        "SELECT id FROM {t}_y",
    ]

    async def see(conn: Any, table: str) -> Any:
        out: list[Any] = []
        for sql in statements:
            try:
                out.append([tuple(r) for r in await conn.fetch(sql.format(t=table))])
            except governed_db.GuardrailViolation as e:
                assert e.decision is not None
                out.append(f"refused: {sorted(e.decision.rules)}")
        return repr(out).replace(table, "T")

    seen = asyncpg_variants(split, see)
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1], seen
    assert seen["a"][1].count(REFUSED) == 4 and not leaked(seen["a"][1], SECRETS["a"]), seen


@pytest.fixture
def by_id(pg_conn: Any, unique: str) -> Iterator[str]:
    """Customers partitioned by id (``{t}_lo`` below 6, ``{t}_hi`` from it): no masked column in the key."""
    t = f"gdb_r20pg_{unique}_i"
    try:
        pg_conn.execute(f"CREATE TABLE {t} (id int, full_name text, city text) PARTITION BY RANGE (id)")
        pg_conn.execute(f"CREATE TABLE {t}_lo PARTITION OF {t} FOR VALUES FROM (MINVALUE) TO (6)")
        pg_conn.execute(f"CREATE TABLE {t}_hi PARTITION OF {t} FOR VALUES FROM (6) TO (MAXVALUE)")
        pg_conn.execute(f"INSERT INTO {t} SELECT 11 - g, 'Person Number ' || g, 'Lyon' FROM generate_series(1, 10) g")
        yield t
    finally:
        pg_conn.execute(f"DROP TABLE IF EXISTS {t}")


#: innocent look-alikes over a table partitioned by id: each answers exactly as over the raw connection
BY_ID = [
    "SELECT count(*) FROM {t}_lo",
    "SELECT id, full_name FROM {t}_hi ORDER BY id",
    "SELECT tableoid::regclass, id FROM {t} ORDER BY id",
    "SELECT id FROM {t} WHERE tableoid = '{t}_hi'::regclass ORDER BY id",
    "SELECT id, city FROM {t}",
    "UPDATE {t}_lo SET city = 'Nice' WHERE id = 1",
]


@pytest.mark.parametrize("sql", BY_ID, ids=range(len(BY_ID)))
def test_partitions_by_a_clear_column_still_run(by_id: str, sql: str) -> None:
    seen = pg_variants("psycopg", {"a": by_id, "b": by_id}, seen_once(sql))
    raw, gov = seen["a"]
    assert "refused" not in gov and "Error" not in gov, seen
    assert gov == raw.replace("Person Number", "[PERSON_NAME]") or "[PERSON_NAME]" in gov, seen


def test_a_table_partitioned_by_a_masked_column_still_answers_by_key(split: dict[str, str]) -> None:
    """Reading the parent by its clear columns, in their order, and writing it by key, still run."""

    def see(conn: Any, table: str) -> Any:
        return [seen_once(sql)(conn, table) for sql in (
            "SELECT id, full_name, city FROM {t} WHERE id < 4 ORDER BY id",
            "SELECT count(*) FROM {t} WHERE city = 'Lyon'",
            "UPDATE {t} SET city = 'Nice' WHERE id = 1",
        )]  # fmt: skip

    seen = pg_variants("psycopg", split, see)
    assert seen["a"][1] == seen["b"][1] == [
        "[(1, '[PERSON_NAME]', 'Paris'), (2, '[PERSON_NAME]', 'Lyon'), (3, '[PERSON_NAME]', 'Lyon')]", "[(9,)]", "1",
    ], seen  # fmt: skip


# -- row-level security policies over a masked column (decision 0385) --------------------------------------------
#: the application's policies: which rows its users see, one over the name, one over the e-mail and a setting the
#: application gives each session
POLICIES = ("USING (full_name < 'N')", "USING (email = current_setting('app.email', true))")


@pytest.fixture
def guarded_rows(pg_conn: Any, unique: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A login role of its own (the application's users are no superusers: row security binds them) and, per copy,
    10 customers under ``POLICIES`` (and one copy under a policy over the city): ``(role, tables)``."""
    role, names = f"gdb_r20pg_{unique}", {}
    pg_conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        for v, (name, email) in {**SECRETS, "city": SECRETS["a"]}.items():
            t = names[v] = f"gdb_r20pg_{unique}_rls_{v}"
            pg_conn.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, full_name text, email text, city text)")
            pg_conn.execute(f"INSERT INTO {t} VALUES (1, %s, %s, 'Paris')", (name, email))
            pg_conn.execute(f"INSERT INTO {t} SELECT g, 'Aaron Number ' || g, 'p' || g || '@example.org', 'Lyon' "
                            "FROM generate_series(2, 10) g")  # fmt: skip
            pg_conn.execute(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
            for n, policy in enumerate(POLICIES if v != "city" else ("USING (city = 'Lyon')",)):
                pg_conn.execute(f"CREATE POLICY {t}_{n} ON {t} {policy}")
            pg_conn.execute(f"GRANT SELECT, UPDATE ON {t} TO {role}")
        yield role, names
    finally:
        for t in names.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {t}")
        pg_conn.execute(f"DROP ROLE IF EXISTS {role}")


def _as_role(driver: str, role: str, tables: dict[str, str], sql: str) -> dict[str, tuple[Any, Any]]:
    """Per copy: what a raw and a governed session of ``role`` through ``driver`` see of ``sql`` (rolled back)."""
    from tests._redteam import govern
    from tests.conftest import PG_DSN

    dsn = " ".join(p for p in PG_DSN.split() if not p.startswith("user=")) + f" user={role}"
    if driver == "psycopg":
        import psycopg

        connect: Any = lambda: psycopg.connect(dsn)  # noqa: E731
    else:
        psycopg2 = pytest.importorskip("psycopg2")
        connect = lambda: psycopg2.connect(dsn)  # noqa: E731
    seen: dict[str, tuple[Any, Any]] = {}
    for v, t in tables.items():
        raw, gov = connect(), govern(connect())
        try:
            seen[v] = (seen_once(sql)(raw, t), seen_once(sql)(gov, t))
        finally:
            raw.close()
            gov.close()
    return seen


#: name -> statement; over the raw connection, the policy on the name tells the copies apart
POLICED = {
    "rows-counted": "SELECT count(*) FROM {t}",
    "a-row-by-key": "SELECT id, city FROM {t} WHERE id = 1",
    "ordered-by-key": "SELECT id FROM {t} ORDER BY id",
    "a-write-by-key": "UPDATE {t} SET city = 'Nice' WHERE id = 1",
}  # fmt: skip


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("name", list(POLICED), ids=list(POLICED))
def test_a_row_security_policy_over_a_masked_column_picks_no_rows(
    guarded_rows: tuple[str, dict[str, str]], driver: str, name: str
) -> None:
    role, tables = guarded_rows
    seen = _as_role(driver, role, {v: tables[v] for v in "ab"}, POLICED[name])
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1] == repr(REFUSED), seen


def test_a_row_security_policy_refusal_says_which(guarded_rows: tuple[str, dict[str, str]]) -> None:
    """The refusal names the table's policies and the masked column, and the next step."""
    import psycopg

    from tests._redteam import govern
    from tests.conftest import PG_DSN

    role, tables = guarded_rows
    dsn = " ".join(p for p in PG_DSN.split() if not p.startswith("user=")) + f" user={role}"
    with psycopg.connect(dsn) as raw:
        conn = govern(raw)
        with pytest.raises(governed_db.GuardrailViolation) as e:
            conn.cursor().execute(f"SELECT count(*) FROM {tables['a']}")
        conn.rollback()
    assert f"row-level security policies of table {tables['a']}" in str(e.value), e.value
    assert "full_name" in str(e.value) and "unmask" in str(e.value), e.value


def test_a_row_security_policy_over_a_clear_column_still_runs(guarded_rows: tuple[str, dict[str, str]]) -> None:
    """A policy on the city reads as the raw session does; so does every policed table for a superuser, whom
    row security does not bind."""
    role, tables = guarded_rows
    for sql in ("SELECT id, city FROM {t} ORDER BY id", "UPDATE {t} SET city = 'Nice' WHERE id = 2"):
        raw, gov = _as_role("psycopg", role, {"city": tables["city"]}, sql)["city"]
        assert gov == raw and "refused" not in gov, (raw, gov)
    seen = pg_variants("psycopg", {v: tables[v] for v in "ab"}, seen_once("SELECT id, city FROM {t} ORDER BY id"))
    assert seen["a"][1] == seen["b"][1] == seen["a"][0], seen  # the superuser sees every row, as stored


def test_a_row_security_policy_through_asyncpg(guarded_rows: tuple[str, dict[str, str]]) -> None:
    """The policies are read by the async warm-up too."""
    asyncpg = pytest.importorskip("asyncpg")
    import asyncio

    from tests._redteam import govern
    from tests.conftest import PG_DSN

    role, tables = guarded_rows
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    url = f"postgresql://{role}@{parts['host']}:{parts['port']}/{parts['dbname']}"

    async def see(conn: Any, table: str) -> Any:
        try:
            return [tuple(r) for r in await conn.fetch(f"SELECT id FROM {table} WHERE id = 1")]
        except governed_db.GuardrailViolation as e:
            assert e.decision is not None
            return f"refused: {sorted(e.decision.rules)}"

    async def run() -> dict[str, tuple[Any, Any]]:
        out: dict[str, tuple[Any, Any]] = {}
        for v in "ab":
            raw, gov = await asyncpg.connect(url), govern(await asyncpg.connect(url))
            try:
                out[v] = (await see(raw, tables[v]), await see(gov, tables[v]))
            finally:
                await raw.close()
                await gov.close()
        return out

    seen = asyncio.run(run())
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == REFUSED, seen


# -- triggers and rules a write fires (decision 0385) -------------------------------------------------------------
@pytest.fixture
def fired(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per copy a and b, ``{t}`` with rules that skip an UPDATE or DELETE of a row whose name is from 'N' on,
    ``{t}_tr`` with a BEFORE UPDATE trigger that does the same and a BEFORE DELETE one whose notice divides by the
    name's length less 11, ``{t}_ok`` with the innocent kind (an ``updated_at`` stamp, a log of ids, a notice of the
    row's values, a rule on the city, an INSERT trigger on the caller's own row)."""
    names: dict[str, str] = {}

    def people(table: str, name: str, extra: str = "") -> None:
        pg_conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, full_name text, city text{extra})")
        pg_conn.execute(f"INSERT INTO {table} (id, full_name, city) VALUES (1, %s, 'Paris')", (name,))
        pg_conn.execute(f"INSERT INTO {table} (id, full_name, city) SELECT g, 'Aaron Number ' || g, 'Lyon' "
                        "FROM generate_series(2, 10) g")  # fmt: skip

    try:
        for v, (name, _email) in SECRETS.items():
            t = names[v] = f"gdb_r20pg_{unique}_{v}"
            people(t, name)
            people(f"{t}_tr", name)
            people(f"{t}_ok", name, ", updated_at timestamptz")
            pg_conn.execute(f"CREATE TABLE {t}_log (id int, at timestamptz)")
            for event in ("UPDATE", "DELETE"):
                pg_conn.execute(f"CREATE RULE {t}_{event.lower()} AS ON {event} TO {t} "
                                "WHERE old.full_name >= 'N' DO INSTEAD NOTHING")  # fmt: skip
            pg_conn.execute(f"CREATE FUNCTION {t}_skip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                            "IF OLD.full_name >= 'N' THEN RETURN NULL; END IF; RETURN NEW; END $$")  # fmt: skip
            pg_conn.execute(f"CREATE TRIGGER {t}_skip BEFORE UPDATE ON {t}_tr FOR EACH ROW EXECUTE FUNCTION {t}_skip()")
            pg_conn.execute(f"CREATE FUNCTION {t}_div() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                            "RAISE NOTICE 'gone: %', 1 / (length(OLD.full_name) - 11); RETURN OLD; END $$")
            pg_conn.execute(f"CREATE TRIGGER {t}_div BEFORE DELETE ON {t}_tr FOR EACH ROW EXECUTE FUNCTION {t}_div()")
            pg_conn.execute(f"CREATE FUNCTION {t}_note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                            "RAISE NOTICE 'customer % (%) moved', NEW.full_name, NEW.city; RETURN NEW; END $$")
            pg_conn.execute(f"CREATE TRIGGER {t}_note AFTER UPDATE ON {t}_ok FOR EACH ROW EXECUTE FUNCTION {t}_note()")
            pg_conn.execute(f"CREATE FUNCTION {t}_stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                            f"NEW.updated_at := now(); INSERT INTO {t}_log VALUES (OLD.id, now()); RETURN NEW; END $$")
            pg_conn.execute(f"CREATE TRIGGER {t}_stamp BEFORE UPDATE ON {t}_ok FOR EACH ROW EXECUTE FUNCTION {t}_stamp()")
            pg_conn.execute(f"CREATE FUNCTION {t}_upper() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                            "NEW.full_name := upper(NEW.full_name); RETURN NEW; END $$")  # fmt: skip
            pg_conn.execute(f"CREATE TRIGGER {t}_upper BEFORE INSERT ON {t}_ok FOR EACH ROW EXECUTE FUNCTION {t}_upper()")
            pg_conn.execute(f"CREATE RULE {t}_ok_city AS ON DELETE TO {t}_ok WHERE old.city = 'Nowhere' "
                            "DO INSTEAD NOTHING")  # fmt: skip
        yield names
    finally:
        for t in names.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {t}, {t}_tr, {t}_ok, {t}_log")
            for f in ("skip", "div", "note", "stamp", "upper"):
                pg_conn.execute(f"DROP FUNCTION IF EXISTS {t}_{f}()")


#: name -> statement; over the raw connection, the rule or trigger on the name tells the copies apart
FIRED = {
    "an-update-a-rule-skips": "UPDATE {t} SET city = 'Nice' WHERE id = 1",
    "a-delete-a-rule-skips": "DELETE FROM {t} WHERE id = 1",
    "an-update-a-trigger-skips": "UPDATE {t}_tr SET city = 'Nice' WHERE id = 1",
    "every-row-a-trigger-skips": "UPDATE {t}_tr SET city = 'Nice' WHERE id < 5",
    "a-notice-that-divides": "DELETE FROM {t}_tr WHERE id = 1",
}  # fmt: skip


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("name", list(FIRED), ids=list(FIRED))
def test_a_rule_or_trigger_over_a_masked_column_decides_no_row_count(
    fired: dict[str, str], driver: str, name: str
) -> None:
    seen = pg_variants(driver, fired, seen_once(FIRED[name]))
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1] == repr("refused: ['masked-column-constraint']"), seen


def test_a_rule_or_trigger_through_asyncpg(fired: dict[str, str]) -> None:
    """The triggers and rules are read with the constraints the async warm-up reads."""
    pytest.importorskip("asyncpg")

    async def see(conn: Any, table: str) -> Any:
        out: list[Any] = []
        for sql in ("UPDATE {t} SET city = 'Nice' WHERE id = 1", "UPDATE {t}_tr SET city = 'Nice' WHERE id = 1"):
            tr = conn.transaction()
            await tr.start()
            try:
                out.append(await conn.execute(sql.format(t=table)))
            except governed_db.GuardrailViolation as e:
                assert e.decision is not None
                out.append(f"refused: {sorted(e.decision.rules)}")
            finally:
                await tr.rollback()
        return out

    seen = asyncpg_variants(fired, see)
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == ["refused: ['masked-column-constraint']"] * 2, seen


#: innocent look-alikes on ``{t}_ok``: a stamp and a log of ids, a notice of the row's values (withheld, 0230), a rule
#: on the city, an INSERT trigger on the caller's own row; each answers as the raw connection does
FIRED_OK = [
    "UPDATE {t}_ok SET city = 'Nice' WHERE id = 1",
    "DELETE FROM {t}_ok WHERE id = 2",
    "INSERT INTO {t}_ok (id, full_name, city) VALUES (99, 'Ann Lee', 'Nice')",
]


@pytest.mark.parametrize("sql", FIRED_OK, ids=range(len(FIRED_OK)))
def test_innocent_triggers_and_rules_still_run(fired: dict[str, str], sql: str) -> None:
    seen = pg_variants("psycopg", fired, seen_once(sql))
    assert seen["a"][1] == seen["b"][1] == seen["a"][0] == "1", seen


# -- the application's SQL functions over a masked table (decision 0385) --------------------------------------------
@pytest.fixture
def looked_up(pg_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Per copy a and b, 10 customers and the application's functions ``{t}_name(id)`` (SQL: the name of a
    customer), ``{t}_has(email)`` (SQL: whether a customer has that e-mail), ``{t}_len(id)`` (PL/pgSQL: the length of a
    name); and the innocent kind: ``{t}_plus(i)`` (no table) and ``{t}_town(id)`` (a table without personal data)."""
    names: dict[str, str] = {}
    try:
        for v, (name, email) in SECRETS.items():
            t = names[v] = f"gdb_r20pg_{unique}_{v}"
            pg_conn.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, full_name text, email text, city text)")
            pg_conn.execute(f"INSERT INTO {t} VALUES (1, %s, %s, 'Paris')", (name, email))
            pg_conn.execute(f"INSERT INTO {t} SELECT g, 'Aaron Number ' || g, 'p' || g || '@example.org', 'Lyon' "
                            "FROM generate_series(2, 10) g")  # fmt: skip
            pg_conn.execute(f"CREATE TABLE {t}_towns (id int PRIMARY KEY, town text)")
            pg_conn.execute(f"INSERT INTO {t}_towns VALUES (1, 'Paris'), (2, 'Lyon')")
            pg_conn.execute(f"CREATE FUNCTION {t}_name(i int) RETURNS text LANGUAGE sql STABLE "
                            f"AS $$ SELECT full_name FROM {t} WHERE id = i $$")  # fmt: skip
            pg_conn.execute(f"CREATE FUNCTION {t}_has(e text) RETURNS bool LANGUAGE sql STABLE "
                            f"AS $$ SELECT EXISTS (SELECT 1 FROM {t} WHERE email = e) $$")  # fmt: skip
            pg_conn.execute(f"CREATE FUNCTION {t}_len(i int) RETURNS int LANGUAGE plpgsql STABLE AS $$ DECLARE n int; "
                            f"BEGIN SELECT length(full_name) INTO n FROM {t} WHERE id = i; RETURN n; END $$")
            pg_conn.execute(f"CREATE FUNCTION {t}_plus(i int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT i + 1 $$")
            pg_conn.execute(f"CREATE FUNCTION {t}_town(i int) RETURNS text LANGUAGE sql STABLE "
                            f"AS $$ SELECT town FROM {t}_towns WHERE id = i $$")  # fmt: skip
            # views over them: one naming each town's first customer, one each town's name
            pg_conn.execute(f"CREATE VIEW {t}_v AS SELECT id, {t}_name(id) AS who FROM {t}_towns")
            pg_conn.execute(f"CREATE VIEW {t}_tv AS SELECT id, {t}_town(id) AS town FROM {t}_towns")
        yield names
    finally:
        for t in names.values():
            pg_conn.execute(f"DROP VIEW IF EXISTS {t}_v, {t}_tv")
            pg_conn.execute(f"DROP FUNCTION IF EXISTS {t}_name(int), {t}_has(text), {t}_len(int), {t}_plus(int), "
                            f"{t}_town(int)")  # fmt: skip
            pg_conn.execute(f"DROP TABLE IF EXISTS {t}, {t}_towns")


#: name -> statement; over the raw connection, the copies answer differently
CALLED = {
    "a-name-returned": "SELECT {t}_name(1)",
    "an-e-mail-tested": "SELECT {t}_has('alice@example.com')",
    "a-length-from-plpgsql": "SELECT {t}_len(1)",
    "in-a-where": "SELECT id FROM {t} WHERE {t}_name(id) LIKE 'A%'",
    "through-a-view": "SELECT who FROM {t}_v WHERE id = 1",
}  # fmt: skip


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize("name", list(CALLED), ids=list(CALLED))
def test_an_application_function_over_a_masked_table_is_not_run(
    looked_up: dict[str, str], driver: str, name: str
) -> None:
    """``CREATE FUNCTION name(i int) ... AS $$ SELECT full_name FROM customers WHERE id = i $$``, made by the
    application: ``SELECT name(1)`` returned ``Alice Smith`` as stored (no scan recognises a name), and
    ``has('...')`` said whether a customer holds a guessed e-mail. masking.md listed such functions among its
    limits; 0319 refused only stored code the caller defines."""
    seen = pg_variants(driver, looked_up, seen_once(CALLED[name]))
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1] == repr(REFUSED), seen


def test_an_application_function_through_asyncpg(looked_up: dict[str, str]) -> None:
    """The functions' bodies, and the tables they name, are read by the async warm-up."""
    pytest.importorskip("asyncpg")

    async def see(conn: Any, table: str) -> Any:
        out: list[Any] = []
        for sql in ("SELECT {t}_name(1)", "SELECT {t}_has('alice@example.com')", "SELECT {t}_town(1), {t}_plus(1)",
                    "SELECT who FROM {t}_v WHERE id = 1"):
            try:
                out.append([tuple(r) for r in await conn.fetch(sql.format(t=table))])
            except governed_db.GuardrailViolation as e:
                assert e.decision is not None
                out.append(f"refused: {sorted(e.decision.rules)}")
        return out

    seen = asyncpg_variants(looked_up, see)
    assert seen["a"][0] != seen["b"][0], seen
    assert seen["a"][1] == seen["b"][1] == [REFUSED, REFUSED, [("Paris", 2)], REFUSED], seen


@pytest.mark.parametrize("sql", ["SELECT {t}_plus(1)", "SELECT {t}_town(2)", "SELECT id, {t}_town(id) FROM {t}_towns "
                                 "ORDER BY id", "SELECT pg_catalog.upper('x'), lpad('7', 3, '0')",
                                 "SELECT town FROM {t}_tv ORDER BY id"],
                         ids=["no-table", "a-clear-table", "over-its-rows", "the-servers-own", "a-view"])  # fmt: skip
def test_functions_over_no_masked_column_still_run(looked_up: dict[str, str], sql: str) -> None:
    seen = pg_variants("psycopg", looked_up, seen_once(sql))
    assert seen["a"][1] == seen["b"][1] == seen["a"][0], seen
    assert "refused" not in seen["a"][1], seen
