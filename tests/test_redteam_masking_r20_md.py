"""Red-team round 20 over masking on MariaDB (PyMySQL, aiomysql): a prompt-injected agent in production with zero
configuration and no unmask grant.

* **The application's triggers** (decision 0386). MariaDB runs a table's triggers on the rows of the agent's
  allowed writes, out of masking's sight: with an audit trigger ``AFTER UPDATE ... INSERT INTO hist (id,
  full_name, city) VALUES (OLD.id, OLD.full_name, OLD.city)`` and ``hist.full_name varchar(16)``, the agent's
  ``UPDATE t SET city = 'Nice' WHERE id = 1`` (a clear column, by key) failed ("Data too long for column
  'full_name'") exactly when customer 1's name is longer than 16 characters; a validation trigger (``IF
  OLD.ssn LIKE '5%' THEN SIGNAL ...``) failed an update or a delete by its SSN's first digit; a trigger on a
  clear table the agent writes read the masked one (``IF (SELECT ssn FROM t WHERE id = NEW.cid) LIKE '5%'``).
  Only SQLite's triggers were read (decision 0375). Such a write is now refused where a trigger it fires names a
  masked column; everyday triggers (``SET NEW.city = UPPER(NEW.city)``, an audit of clear columns, of an
  INSERT's own values) keep running.

* **Foreign keys' actions** (decision 0386). With ``customers.region_id REFERENCES regions ON DELETE CASCADE`` and
  ``mailings.email REFERENCES customers(email)``, the agent's ``DELETE FROM regions WHERE id = 1`` failed exactly
  when a mailing held customer 1's e-mail. The child's write is now judged by the child's own constraints.

* **Per-partition row counts** (decision 0387). ``information_schema.INNODB_SYS_TABLESTATS`` has a row per
  partition (``test/t#P#p0``) with ``NUM_ROWS`` and ``MODIFIED_COUNTER``: over a table partitioned by ``RANGE
  COLUMNS (ssn)`` it counted the rows of each SSN range (1 and 2 over copy A, 2 and 1 over copy B: whether
  customer 1's SSN is below ``'3'``), as the refused ``information_schema.PARTITIONS`` and ``SELECT ...
  PARTITION (p0)`` would. Those columns now come back NULL, like its sizes (decision 0247).

* **A temporary table hiding a stored one** (decision 0387). ``CREATE TEMPORARY TABLE t (...)`` over a stored
  ``t`` whose ``code`` holds SSNs (masked by its values) made masking sample the empty temporary table, while the
  application's view over ``t`` (resolved to the stored table) was filtered on the SSNs. Refused now, as on SQLite
  and DuckDB (decision 0248).

Each oracle compares two tables that differ only in row 1's masked values (whose masks are the same); the raw
session shows that the same statements tell them apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

import governed_db
from tests._redteam import CURIOUS_AGENT, govern

COLUMNS = "(id int primary key, full_name varchar(100), ssn varchar(20), city varchar(40))"
ROWS = {
    "A": [(1, "Alice Martin-Fitzgerald", "536-22-8726", "Paris"), (2, "Ivan Petrov", "219-45-1234", "Lyon"),
          (3, "Bob Stone", "412-77-9001", "Rome")],
    "B": [(1, "Amy Zedd", "187-65-4321", "Paris"), (2, "Ivan Petrov", "219-45-1234", "Lyon"),
          (3, "Bob Stone", "412-77-9001", "Rome")],
}  # fmt: skip


def _script(admin: Any, sql: str) -> None:
    with closing(admin.cursor()) as cur:
        for s in filter(str.strip, sql.split(";;")):
            cur.execute(s)


class Copies:
    """Per copy (A, B) a table ``t`` of the rows above, a clear table ``log`` (``hid`` auto-increment, ``cid``,
    ``what``) and a narrow history table ``hist`` (``id``, ``full_name varchar(16)``, ``city``), with the triggers
    ``setup`` makes (``{t}``, ``{log}``, ``{hist}`` stand for the copy's names)."""

    def __init__(self, admin: Any, unique: str, setup: str) -> None:
        self.admin = admin
        self.names = {c: {k: f"gdb_r20md_{unique}_{k}_{c.lower()}" for k in ("t", "log", "hist")} for c in ROWS}
        for c, rows in ROWS.items():
            n = self.names[c]
            _script(admin, f"CREATE TABLE {n['t']} {COLUMNS};; CREATE TABLE {n['log']} (hid int auto_increment "
                           f"primary key, cid int, what varchar(40));; CREATE TABLE {n['hist']} (hid int "
                           "auto_increment primary key, id int, full_name varchar(16), city varchar(40))")  # fmt: skip
            with closing(admin.cursor()) as cur:
                cur.executemany(f"INSERT INTO {n['t']} VALUES (%s, %s, %s, %s)", rows)
            _script(admin, setup.format(**n))

    def state(self, c: str) -> Any:
        """What the database holds after a statement: the table's ids and cities, and the log's rows."""
        n = self.names[c]
        with closing(self.admin.cursor()) as cur:
            cur.execute(f"SELECT id, city FROM {n['t']} ORDER BY id")
            t = cur.fetchall()
            cur.execute(f"SELECT cid, what FROM {n['log']} ORDER BY hid")
            return t, cur.fetchall()

    def drop(self) -> None:
        for n in self.names.values():
            _script(self.admin, ";;".join(f"DROP TABLE IF EXISTS {x}" for x in n.values()))
            _script(self.admin, f"DROP PROCEDURE IF EXISTS {n['t']}_chk")


def _outcome(conn: Any, sql: str) -> Any:
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return cur.rowcount
    except governed_db.GuardrailViolation as e:
        assert e.decision is not None
        return f"refused: {sorted(e.decision.rules)}"
    except Exception as e:
        return f"{type(e).__name__}: {e}"


def _seen(mysql_kw: dict[str, Any], admin: Any, unique: str, setup: str, write: str, governed: bool) -> dict[str, Any]:
    """Per copy: the outcome of ``write`` (raw or governed) on fresh copies, and what the database then holds."""
    import pymysql

    copies = Copies(admin, unique, setup)
    try:
        out = {}
        for c in ROWS:
            raw = pymysql.connect(autocommit=True, **mysql_kw)
            conn = govern(raw, CURIOUS_AGENT) if governed else raw
            try:
                out[c] = (_outcome(conn, write.format(**copies.names[c])), copies.state(c))
            finally:
                conn.close()
        return out
    finally:
        copies.drop()


#: (the application's triggers, the agent's write): the write's outcome depends on customer 1's masked values
TRIGGERED = [
    pytest.param(
        "CREATE TRIGGER {t}_au AFTER UPDATE ON {t} FOR EACH ROW "
        "INSERT INTO {hist} (id, full_name, city) VALUES (OLD.id, OLD.full_name, OLD.city)",
        "UPDATE {t} SET city = 'Nice' WHERE id = 1",
        id="an audit copy into a narrower column fails by the name's length",
    ),
    pytest.param(
        "CREATE TRIGGER {t}_bu BEFORE UPDATE ON {t} FOR EACH ROW "
        "BEGIN IF NEW.ssn LIKE '5%' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'locked'; END IF; END",
        "UPDATE {t} SET city = 'Nice' WHERE id = 1",
        id="a validation of the stored SSN on UPDATE",
    ),
    pytest.param(
        "CREATE TRIGGER {t}_bd BEFORE DELETE ON {t} FOR EACH ROW "
        "BEGIN IF OLD.full_name LIKE 'Al%' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'kept'; END IF; END",
        "DELETE FROM {t} WHERE id = 1",
        id="a validation of the stored name on DELETE",
    ),
    pytest.param(
        "CREATE TRIGGER {t}_ai AFTER INSERT ON {t} FOR EACH ROW "
        "INSERT INTO {log} (cid, what) SELECT id, 'five' FROM {t} WHERE ssn LIKE '5%'",
        "INSERT INTO {t} (id, city) VALUES (9, 'Nice')",
        id="an INSERT trigger reading its own table",
    ),
    pytest.param(
        "CREATE TRIGGER {log}_bi BEFORE INSERT ON {log} FOR EACH ROW "
        "BEGIN IF (SELECT ssn FROM {t} WHERE id = NEW.cid) LIKE '5%' THEN SET NEW.what = 'five'; END IF; END",
        "INSERT INTO {log} (cid, what) VALUES (1, 'note')",
        id="a trigger on a clear table reading the masked one",
    ),
    pytest.param(
        "CREATE PROCEDURE {t}_chk(i int) BEGIN IF (SELECT ssn FROM {t} WHERE id = i) LIKE '5%' THEN "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no'; END IF; END;; "
        "CREATE TRIGGER {t}_bu BEFORE UPDATE ON {t} FOR EACH ROW CALL {t}_chk(OLD.id)",
        "UPDATE {t} SET city = 'Nice' WHERE id = 1",
        id="a trigger calling a procedure that reads the SSN",
    ),
]


@pytest.mark.parametrize(("setup", "write"), TRIGGERED)
def test_a_trigger_the_write_fires_reads_no_masked_value(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str, setup: str, write: str
) -> None:
    raw = _seen(mysql_kw, mysql_conn, unique, setup, write, False)
    assert raw["A"] != raw["B"], raw  # the oracle: the write failed, or changed something, for one copy only
    gov = _seen(mysql_kw, mysql_conn, unique, setup, write, True)
    assert gov["A"] == gov["B"], gov
    assert gov["A"][0] == "refused: ['masked-column-constraint']", gov
    for c in ROWS:  # nothing was written
        fresh = ((1, "Paris"), (2, "Lyon"), (3, "Rome"))
        assert gov[c][1] == (fresh, ()), gov


def test_the_refusal_names_the_trigger_and_the_column(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> None:
    import pymysql

    copies = Copies(mysql_conn, unique, str(TRIGGERED[0].values[0]))
    conn = govern(pymysql.connect(autocommit=True, **mysql_kw), CURIOUS_AGENT)
    try:
        n = copies.names["A"]
        with pytest.raises(governed_db.GuardrailViolation) as refused:
            conn.cursor().execute(f"UPDATE {n['t']} SET city = 'Nice' WHERE id = 1")
    finally:
        conn.close()
        copies.drop()
    text = str(refused.value).replace(n["t"], "T")
    assert "full_name" in text and "trigger T_au" in text and "unmask grant" in text, text
    assert "leave the column out" not in text and "whichever columns the statement names" in text, text


def test_aiomysql_a_trigger_the_write_fires_is_refused(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str
) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}
    copies = Copies(mysql_conn, unique, str(TRIGGERED[0].values[0]))

    async def run(table: str) -> Any:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        try:
            cur = await conn.cursor()
            try:
                await cur.execute(f"UPDATE {table} SET city = 'Nice' WHERE id = 1")
            except governed_db.GuardrailViolation as e:
                assert e.decision is not None
                return f"refused: {sorted(e.decision.rules)}"
            except Exception as e:
                return type(e).__name__
            return cur.rowcount
        finally:
            conn.close()

    try:
        seen = [asyncio.run(run(copies.names[c]["t"])) for c in ROWS]
    finally:
        copies.drop()
    assert seen == ["refused: ['masked-column-constraint']"] * 2


#: everyday triggers: (triggers, write, what the table and the log hold afterwards, the same for both copies)
LOOK_ALIKES = [
    pytest.param(
        "CREATE TRIGGER {t}_bu BEFORE UPDATE ON {t} FOR EACH ROW SET NEW.city = UPPER(NEW.city)",
        "UPDATE {t} SET city = 'Nice' WHERE id = 1",
        (((1, "NICE"), (2, "Lyon"), (3, "Rome")), ()),
        id="a trigger on clear columns",
    ),
    pytest.param(
        "CREATE TRIGGER {t}_au AFTER UPDATE ON {t} FOR EACH ROW "
        "INSERT INTO {log} (cid, what) VALUES (OLD.id, OLD.city)",
        "UPDATE {t} SET city = 'Nice' WHERE id = 1",
        (((1, "Nice"), (2, "Lyon"), (3, "Rome")), ((1, "Paris"),)),
        id="an audit of clear columns",
    ),
    pytest.param(
        "CREATE TRIGGER {t}_ai AFTER INSERT ON {t} FOR EACH ROW "
        "INSERT INTO {log} (cid, what) VALUES (NEW.id, NEW.city)",
        "INSERT INTO {t} (id, full_name, city) VALUES (9, 'Zed Zed', 'Nice')",
        (((1, "Paris"), (2, "Lyon"), (3, "Rome"), (9, "Nice")), ((9, "Nice"),)),
        id="an audit of an INSERT's own values",
    ),
    pytest.param(
        "CREATE TRIGGER {t}_au AFTER UPDATE ON {t} FOR EACH ROW "
        "INSERT INTO {hist} (id, full_name, city) VALUES (OLD.id, OLD.full_name, OLD.city)",
        "INSERT INTO {log} (cid, what) VALUES (1, 'note')",
        (((1, "Paris"), (2, "Lyon"), (3, "Rome")), ((1, "note"),)),
        id="a write to another table fires no trigger of this one",
    ),
]


@pytest.mark.parametrize(("setup", "write", "expected"), LOOK_ALIKES)
def test_trigger_look_alikes_run_exactly(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str, setup: str, write: str, expected: Any
) -> None:
    gov = _seen(mysql_kw, mysql_conn, unique, setup, write, True)
    assert gov == {"A": (1, expected), "B": (1, expected)}, gov


# ---- per-partition statistics (decision 0387) -------------------------------------------------------------------

PARTITIONED = (
    "(id int, full_name varchar(100), ssn varchar(20), city varchar(40), primary key (id, ssn)) "
    "PARTITION BY RANGE COLUMNS (ssn) (PARTITION p0 VALUES LESS THAN ('3'), PARTITION p1 VALUES LESS THAN (MAXVALUE))"
)


@pytest.fixture
def parted(mysql_conn: Any, unique: str) -> Iterator[dict[str, str]]:
    """Two tables partitioned by the SSN's range, differing only in row 1's name and SSN (536-... in p1, 187-...
    in p0)."""
    names = {c: f"gdb_r20md_{unique}_p_{c.lower()}" for c in ROWS}
    try:
        for c, rows in ROWS.items():
            with closing(mysql_conn.cursor()) as cur:
                cur.execute(f"CREATE TABLE {names[c]} {PARTITIONED}")
                cur.executemany(f"INSERT INTO {names[c]} VALUES (%s, %s, %s, %s)", rows)
        yield names
    finally:
        _script(mysql_conn, ";;".join(f"DROP TABLE IF EXISTS {t}" for t in names.values()))


STATS = [
    "SELECT name, num_rows FROM information_schema.INNODB_SYS_TABLESTATS WHERE name LIKE '%{t}#%' ORDER BY name",
    "SELECT name, modified_counter FROM information_schema.INNODB_SYS_TABLESTATS WHERE name LIKE '%{t}#%' "
    "ORDER BY name",
    "SELECT s.name, s.num_rows FROM information_schema.INNODB_SYS_TABLESTATS s JOIN information_schema.INNODB_SYS_TABLES "
    "t USING (table_id) WHERE t.name LIKE '%{t}#%' ORDER BY s.name",
]


def _rows_of(mysql_kw: dict[str, Any], sql: str, governed: bool) -> Any:
    import pymysql

    raw = pymysql.connect(autocommit=True, **mysql_kw)
    conn = govern(raw, CURIOUS_AGENT) if governed else raw
    try:
        cur = conn.cursor()
        try:
            cur.execute(sql)
        except governed_db.GuardrailViolation as e:
            assert e.decision is not None
            return f"refused: {sorted(e.decision.rules)}"
        return cur.fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("sql", STATS)
def test_per_partition_row_counts_tell_no_range(mysql_kw: dict[str, Any], parted: dict[str, str], sql: str) -> None:
    seen = {c: [(n.replace(t, "T"), *rest) for n, *rest in _rows_of(mysql_kw, sql.format(t=t), False)]
            for c, t in parted.items()}  # fmt: skip
    assert seen["A"] != seen["B"], seen  # the oracle: which partition holds row 1
    gov = {c: _rows_of(mysql_kw, sql.format(t=t), True) for c, t in parted.items()}
    assert [[(n.replace(parted[c], "T"), *rest) for n, *rest in gov[c]] for c in ROWS] == [
        [("test/T#P#p0", None), ("test/T#P#p1", None)]
    ] * 2, gov


def test_the_table_list_of_tablestats_still_reads(mysql_kw: dict[str, Any], parted: dict[str, str]) -> None:
    sql = "SELECT name FROM information_schema.INNODB_SYS_TABLESTATS WHERE name LIKE '%{t}#%' ORDER BY name"
    gov = [_rows_of(mysql_kw, sql.format(t=t), True) for t in parted.values()]
    assert [[n.replace(t, "T") for (n,) in g] for g, t in zip(gov, parted.values(), strict=True)] == [
        ["test/T#P#p0", "test/T#P#p1"]
    ] * 2


# ---- writes foreign keys' actions make (decision 0386) ----------------------------------------------------------


def _cascade_tables(admin: Any, unique: str, copy: str, referenced: str) -> dict[str, str]:
    """Regions, customers (``region_id REFERENCES regions ON DELETE CASCADE ON UPDATE CASCADE``, ``email``
    UNIQUE) and mailings whose ``ref`` references the customers' ``referenced`` column; over copy A the one
    mailing holds customer 1's e-mail (or id), over copy B customer 3's."""
    n = {k: f"gdb_r20md_{unique}_{k}_{copy.lower()}" for k in ("regions", "customers", "mailings")}
    kind = "varchar(100)" if referenced == "email" else "int"
    ref = {"email": {"A": "alice@example.com", "B": "zed@example.com"}, "id": {"A": 1, "B": 3}}[referenced][copy]
    _script(admin, f"""CREATE TABLE {n['regions']} (id int primary key, city varchar(40));;
        INSERT INTO {n['regions']} VALUES (1, 'Paris'), (2, 'Lyon');;
        CREATE TABLE {n['customers']} (id int primary key, region_id int, email varchar(100) UNIQUE,
            FOREIGN KEY (region_id) REFERENCES {n['regions']} (id) ON DELETE CASCADE ON UPDATE CASCADE);;
        INSERT INTO {n['customers']} VALUES (1, 1, 'alice@example.com'), (2, 2, 'ivan@example.org'),
            (3, 2, 'zed@example.com');;
        CREATE TABLE {n['mailings']} (id int primary key, ref {kind}, note varchar(20),
            FOREIGN KEY (ref) REFERENCES {n['customers']} ({referenced}))""")
    with closing(admin.cursor()) as cur:
        cur.execute(f"INSERT INTO {n['mailings']} VALUES (1, %s, 'spring')", (ref,))
    return n


def _cascade_seen(
    mysql_kw: dict[str, Any], admin: Any, unique: str, referenced: str, write: str, governed: bool
) -> dict[str, Any]:
    import pymysql

    out = {}
    for c in ROWS:
        n = _cascade_tables(admin, unique, c, referenced)
        raw = pymysql.connect(autocommit=True, **mysql_kw)
        conn = govern(raw, CURIOUS_AGENT) if governed else raw
        try:
            seen = _outcome(conn, write.format(**n))
            with closing(admin.cursor()) as cur:
                cur.execute(f"SELECT id FROM {n['regions']} ORDER BY id")
                out[c] = (seen, cur.fetchall())
        finally:
            conn.close()
            _script(admin, ";;".join(f"DROP TABLE IF EXISTS {n[k]}" for k in ("mailings", "customers", "regions")))
    return out


def test_a_cascaded_delete_is_judged_by_the_childs_constraints(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str
) -> None:
    write = "DELETE FROM {regions} WHERE id = 1"
    raw = _cascade_seen(mysql_kw, mysql_conn, unique, "email", write, False)
    assert raw["A"][0] != raw["B"][0], raw  # the oracle: a mailing holds customer 1's e-mail (fails) or not
    gov = _cascade_seen(mysql_kw, mysql_conn, unique, "email", write, True)
    assert gov == {c: ("refused: ['masked-column-constraint']", ((1,), (2,))) for c in ROWS}, gov


@pytest.mark.parametrize(
    ("referenced", "write", "expected"),
    [
        # the action reaches customers, whose mailings point at their clear ids: decided by clear values only
        ("id", "DELETE FROM {regions} WHERE id = 1", {"A": "IntegrityError", "B": 1}),
        ("email", "UPDATE {regions} SET city = 'Nice' WHERE id = 1", {"A": 1, "B": 1}),
        # ON UPDATE CASCADE writes the customers' region_id, which no mailing points at
        ("email", "UPDATE {regions} SET id = 7 WHERE id = 1", {"A": 1, "B": 1}),
    ],
)
def test_cascade_look_alikes_run_as_raw(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str, referenced: str, write: str, expected: dict[str, Any]
) -> None:
    raw = _cascade_seen(mysql_kw, mysql_conn, unique, referenced, write, False)
    gov = _cascade_seen(mysql_kw, mysql_conn, unique, referenced, write, True)
    assert gov == raw, (gov, raw)
    assert {c: str(gov[c][0]).split(":")[0] if isinstance(gov[c][0], str) else gov[c][0] for c in ROWS} == expected


# ---- a temporary table hiding a stored one (decision 0248, now on MariaDB) --------------------------------------


def _shadow_run(mysql_kw: dict[str, Any], admin: Any, unique: str, steps: list[str], governed: bool) -> dict[str, Any]:
    """Per copy: a table ``t`` whose ``info`` and ``code`` hold e-mail addresses and SSNs (masked by their values,
    not their names), the application's view ``v`` over it, and what ``steps`` show in one session. Over copy A
    row 1's code starts with ``1``, over copy B with ``9``."""
    import pymysql

    out = {}
    for c in ROWS:
        t, v = f"gdb_r20md_{unique}_s_{c.lower()}", f"gdb_r20md_{unique}_sv_{c.lower()}"
        with closing(admin.cursor()) as cur:
            cur.execute(f"CREATE TABLE {t} (id int primary key, info varchar(100), code varchar(20))")
            rows = [(i, f"person{i}@example.com", f"{100 + i:03d}-45-{1000 + i}") for i in range(1, 30)]
            rows[0] = (1, "person1@example.com", "101-45-1001" if c == "A" else "901-45-1001")
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s)", rows)
            cur.execute(f"CREATE VIEW {v} AS SELECT id, info, code FROM {t}")
        raw = pymysql.connect(autocommit=True, **mysql_kw)
        conn = govern(raw, CURIOUS_AGENT) if governed else raw
        try:
            seen = []
            for step in steps:
                cur = conn.cursor()
                try:
                    cur.execute(step.format(t=t, v=v))
                    seen.append(cur.fetchall() if cur.description else cur.rowcount)
                except governed_db.GuardrailViolation as e:
                    assert e.decision is not None
                    seen.append(f"refused: {sorted(e.decision.rules)}")
            out[c] = seen
        finally:
            conn.close()
            _script(admin, f"DROP VIEW IF EXISTS {v};; DROP TABLE IF EXISTS {t}")
    return out


SHADOWS = [
    "CREATE TEMPORARY TABLE {t} (id int primary key, info varchar(100), code varchar(20))",
    "CREATE TEMPORARY TABLE IF NOT EXISTS test.{t} (id int)",
    # a MariaDB sequence is a table: a temporary one hides the stored table as well
    "CREATE TEMPORARY SEQUENCE {t}",
]


@pytest.mark.parametrize("shadow", SHADOWS)
def test_a_temporary_table_may_not_hide_a_stored_one(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str, shadow: str
) -> None:
    """Masking sampled the temporary (empty) table under the stored one's name, so ``code`` looked innocent, while
    the application's view, which MariaDB resolves to the stored table, filtered on the real SSNs."""
    steps = [shadow, "SELECT id FROM {v} WHERE code LIKE '1%' ORDER BY id"]
    raw = _shadow_run(mysql_kw, mysql_conn, unique, steps, False)
    assert raw["A"] != raw["B"], raw  # the oracle: row 1's SSN starts with 1 or not
    gov = _shadow_run(mysql_kw, mysql_conn, unique, steps, True)
    assert gov["A"] == gov["B"] == ["refused: ['masked-column-predicate']"] * 2, gov


def test_a_temporary_table_of_its_own_name_runs(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> None:
    steps = [
        "CREATE TEMPORARY TABLE {t}_tmp (id int primary key, note varchar(20))",
        "INSERT INTO {t}_tmp VALUES (1, 'a'), (2, 'b')",
        "SELECT id, note FROM {t}_tmp ORDER BY id",
        "SELECT id FROM {v} WHERE id < 3 ORDER BY id",
        "CREATE TEMPORARY SEQUENCE {t}_seq",
        "SELECT NEXTVAL({t}_seq)",
    ]
    gov = _shadow_run(mysql_kw, mysql_conn, unique, steps, True)
    assert gov["A"] == gov["B"] == [0, 2, ((1, "a"), (2, "b")), ((1,), (2,)), 0, ((1,),)], gov


def test_aiomysql_a_temporary_table_may_not_hide_a_stored_one(mysql_conn: Any, mysql_kw: dict[str, Any], unique: str) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}
    t = f"gdb_r20md_{unique}_as"
    _script(mysql_conn, f"CREATE TABLE {t} (id int primary key, code varchar(20));; INSERT INTO {t} VALUES (1, '101-45-1001')")

    async def run(sql: str) -> Any:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        try:
            cur = await conn.cursor()
            try:
                await cur.execute(sql)
            except governed_db.GuardrailViolation as e:
                assert e.decision is not None
                return f"refused: {sorted(e.decision.rules)}"
            return cur.rowcount
        finally:
            conn.close()

    try:
        seen = [asyncio.run(run(f"CREATE TEMPORARY TABLE {name} (id int, code varchar(20))")) for name in (t, f"{t}_own")]
    finally:
        _script(mysql_conn, f"DROP TABLE IF EXISTS {t}")
    assert seen == ["refused: ['masked-column-predicate']", 0], seen


def test_aiomysql_a_cascaded_delete_is_judged_by_the_childs_constraints(
    mysql_kw: dict[str, Any], mysql_conn: Any, unique: str
) -> None:
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}

    async def run(sql: str) -> Any:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        try:
            cur = await conn.cursor()
            try:
                await cur.execute(sql)
            except governed_db.GuardrailViolation as e:
                assert e.decision is not None
                return f"refused: {sorted(e.decision.rules)}"
            except Exception as e:
                return type(e).__name__
            return cur.rowcount
        finally:
            conn.close()

    seen = []
    for referenced in ("email", "id"):
        n = _cascade_tables(mysql_conn, unique, "A", referenced)
        try:
            seen.append(asyncio.run(run(f"DELETE FROM {n['regions']} WHERE id = 1")))
        finally:
            _script(mysql_conn, ";;".join(f"DROP TABLE IF EXISTS {n[k]}" for k in ("mailings", "customers", "regions")))
    # by the masked e-mail: refused; by the clear id: the server's own answer (a mailing points at customer 1)
    assert seen == ["refused: ['masked-column-constraint']", "IntegrityError"], seen


def test_aiomysql_trigger_look_alikes_run(mysql_kw: dict[str, Any], mysql_conn: Any, unique: str) -> None:
    """The warm-up answers every catalog read the triggers take (the tables their bodies name, those tables' keys),
    so an audit of clear columns into an empty log runs on aiomysql too."""
    aiomysql = pytest.importorskip("aiomysql")
    kw = {k: v for k, v in mysql_kw.items() if k != "database"} | {"db": mysql_kw["database"]}
    setup, write, expected = LOOK_ALIKES[1].values
    copies = Copies(mysql_conn, unique, str(setup))

    async def run() -> Any:
        conn = govern(await aiomysql.connect(autocommit=True, **kw), CURIOUS_AGENT)
        try:
            cur = await conn.cursor()
            await cur.execute(str(write).format(**copies.names["A"]))
            return cur.rowcount
        finally:
            conn.close()

    try:
        assert asyncio.run(run()) == 1
        assert copies.state("A") == expected
    finally:
        copies.drop()


# ---- the same on PostgreSQL (found while checking that the design holds beyond MariaDB) -------------------------


@pytest.mark.parametrize(("referenced", "expected_a"), [("email", "refused"), ("id", "ForeignKeyViolation")])
def test_postgres_a_cascaded_delete_is_judged_by_the_childs_constraints(
    pg_conn: Any, unique: str, referenced: str, expected_a: str
) -> None:
    """``DELETE FROM regions WHERE id = 1`` failed on PostgreSQL exactly when a mailing held customer 1's e-mail
    (the error quoting it redacted); now refused there too. By a clear id the server's own answer comes back."""
    import psycopg

    from tests.conftest import PG_DSN

    seen = {}
    for c, ref in (("A", {"email": "alice@example.com", "id": 1}), ("B", {"email": "zed@example.com", "id": 3})):
        n = {k: f"gdb_r20md_{unique}_{k}_{c.lower()}" for k in ("regions", "customers", "mailings")}
        kind = "text" if referenced == "email" else "int"
        try:
            pg_conn.execute(f"CREATE TABLE {n['regions']} (id int primary key, city text)")
            pg_conn.execute(f"INSERT INTO {n['regions']} VALUES (1, 'Paris'), (2, 'Lyon')")
            pg_conn.execute(f"CREATE TABLE {n['customers']} (id int primary key, region_id int REFERENCES "
                            f"{n['regions']} (id) ON DELETE CASCADE, email text UNIQUE)")  # fmt: skip
            pg_conn.execute(f"INSERT INTO {n['customers']} VALUES (1, 1, 'alice@example.com'), "
                            "(2, 2, 'ivan@example.org'), (3, 2, 'zed@example.com')")  # fmt: skip
            pg_conn.execute(f"CREATE TABLE {n['mailings']} (id int primary key, ref {kind} REFERENCES "
                            f"{n['customers']} ({referenced}), note text)")  # fmt: skip
            pg_conn.execute(f"INSERT INTO {n['mailings']} VALUES (1, %s, 'spring')", (ref[referenced],))
            conn = govern(psycopg.connect(PG_DSN, autocommit=True), CURIOUS_AGENT)
            try:
                seen[c] = _outcome(conn, f"DELETE FROM {n['regions']} WHERE id = 1")
            finally:
                conn.close()
        finally:
            for k in ("mailings", "customers", "regions"):
                pg_conn.execute(f"DROP TABLE IF EXISTS {n[k]}")
    if referenced == "email":
        assert seen == {"A": "refused: ['masked-column-constraint']", "B": "refused: ['masked-column-constraint']"}
    else:
        assert str(seen["A"]).startswith(expected_a) and seen["B"] == 1, seen
