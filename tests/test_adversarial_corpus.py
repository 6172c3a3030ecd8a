"""The adversarial corpus (tests/data/adversarial.yaml) against the real servers, the database state as ground truth.

Each case runs through ``governed_db.wrap`` as an agent in production on PostgreSQL (psycopg 3), MariaDB
(PyMySQL), SQLite and DuckDB. A ``refuse`` case must be refused by governance *and* leave the tables, the
schema objects and the session's lexing settings exactly as they were; a ``run`` case (an innocent look-alike)
must run. Known misses are marked in the data file and run as strict xfails, so fixing one fails the suite until
the mark is removed (and the published score in docs/threat-model.md is updated).
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

import governed_db
from governed_db.errors import GovernedDBError
from governed_db.identity import Identity
from governed_db.policy import load_policy
from tests.conftest import MYSQL_KW, PG_DSN

DATA = Path(__file__).resolve().parent / "data" / "adversarial.yaml"
DIALECTS = ("pg", "my", "lite", "duck")
AGENT = Identity("adv-bot", kind="agent", on_behalf_of="alice")
READONLY = load_policy({"rules": {"write-statement": "deny"}})
#: (labels, not person names: the corpus is about guardrails, and masking would rightly hide names)
T_ROWS = [(1, "alpha", 10, "a"), (2, "beta", 20, "b"), (3, "gamma", 30, None)]
U_ROWS = [(1, 1, 1), (2, 2, 0)]


@dataclass(frozen=True)
class Case:
    db: str
    sql: str
    expect: str
    as_: str = "agent"
    miss: bool = False
    over: bool = False


def load_corpus(path: Path = DATA) -> list[Case]:
    """The corpus expanded per dialect (``all`` means the four)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]
    out: list[Case] = []
    for entry in raw:
        dbs = DIALECTS if entry["db"] == "all" else tuple(entry["db"])
        assert set(dbs) <= set(DIALECTS) and entry["expect"] in ("refuse", "run"), entry
        for db in dbs:
            out.append(Case(db, entry["sql"], entry["expect"], entry.get("as", "agent"), bool(entry.get("miss")),
                            bool(entry.get("over"))))
    return out


CORPUS = load_corpus()


def _params() -> list[Any]:
    params = []
    seen: dict[str, int] = {}
    for case in CORPUS:
        marks: list[Any] = []
        if case.db == "pg":
            marks.append(pytest.mark.postgres)
        if case.db == "my":
            marks.append(pytest.mark.mariadb)
        if case.miss or case.over:
            what = "known miss" if case.miss else "known over-refusal"
            marks.append(pytest.mark.xfail(strict=True, reason=f"{what} (docs/threat-model.md, published score)"))
        key = f"{case.db}-{case.expect}-{case.as_}-{case.sql[:60]}"
        seen[key] = seen.get(key, 0) + 1
        params.append(pytest.param(case, id=key if seen[key] == 1 else f"{key}#{seen[key]}", marks=marks))
    return params


# -- one environment per dialect: raw connection, governed agent and read-only agent, state fingerprint ----

@dataclass
class Env:
    name: str
    prefix: str
    connect: Callable[[], Any]
    setup: list[str]
    fingerprint_sql: list[str]
    raw: Any = None
    agent: Any = None
    readonly: Any = None
    baseline: Any = None
    extra_close: list[Any] = field(default_factory=list)

    @property
    def t(self) -> str:
        return f"{self.prefix}_t"

    @property
    def u(self) -> str:
        return f"{self.prefix}_u"

    def open(self) -> None:
        self.raw = self.connect()
        self.agent = governed_db.wrap(self.raw, identity=AGENT, environment="production")
        self.readonly = governed_db.wrap(self.connect(), identity=AGENT, environment="production", policy=READONLY)

    def close(self) -> None:
        for c in (self.raw, getattr(self.readonly, "__wrapped__", None)):
            try:
                if c is not None:
                    c.close()
            except Exception:
                pass

    def raw_exec(self, sql: str) -> list[Any]:
        cur = self.raw.cursor()
        try:
            cur.execute(sql)
            try:
                rows = cur.fetchall()
            except Exception:
                rows = []
            return [tuple(r) for r in rows or []]
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def settle(self) -> None:
        """Back out of any transaction the last statement left open."""
        try:
            if self.name == "lite":
                if self.raw.in_transaction:
                    self.raw.rollback()
            elif self.name == "duck":
                with contextlib.suppress(Exception):
                    self.raw.execute("ROLLBACK")
            else:
                self.raw.rollback()
                if self.name == "pg" and self.raw.info.transaction_status != 0:
                    self.raw_exec("ROLLBACK")
        except Exception:
            pass

    def state(self) -> list[Any]:
        self.settle()
        out: list[Any] = []
        for q in self.fingerprint_sql:
            q = q.replace("{t}", self.t).replace("{u}", self.u).replace("{p}", self.prefix)
            try:
                out.append(sorted(self.raw_exec(q), key=repr))
            except Exception as e:  # a dropped table reads as an error: that is state too
                self.settle()
                out.append(f"error: {type(e).__name__}")
        return out

    def reset(self) -> None:
        """Fresh connections and fresh tables, as at the start."""
        self.close()
        self.open()
        for q in self.setup:
            self.raw_exec(q.replace("{t}", self.t).replace("{u}", self.u).replace("{p}", self.prefix))
        if self.name == "lite":
            self.raw.commit()
        self.baseline = self.state()

    def run(self, gov: Any, sql: str) -> BaseException | None:
        cur = gov.cursor()
        try:
            if self.name == "pg" and sql.lstrip().lower().startswith("copy"):
                with cur.copy(sql) as copy:
                    for _ in copy:
                        pass
            else:
                cur.execute(sql)
                if cur.description:
                    cur.fetchall()
        except BaseException as e:
            return e
        finally:
            with contextlib.suppress(Exception):
                cur.close()
        return None


def _rows(table: str, rows: list[tuple[Any, ...]]) -> str:
    def lit(v: Any) -> str:
        return "NULL" if v is None else str(v) if isinstance(v, int) else f"'{v}'"

    return f"INSERT INTO {table} VALUES " + ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows)


def _setup(drop_objects: list[str], t_def: str) -> list[str]:
    return [
        *drop_objects,
        f"CREATE TABLE {{t}} ({t_def})",
        "CREATE TABLE {u} (id int PRIMARY KEY, t_id int, flag int)",
        _rows("{t}", T_ROWS),
        _rows("{u}", U_ROWS),
    ]


_ROWS_SQL = ["SELECT * FROM {t}", "SELECT * FROM {u}"]


def _pg_env(prefix: str) -> Env:
    psycopg = pytest.importorskip("psycopg")
    dsn = PG_DSN + " connect_timeout=3"
    try:
        psycopg.connect(dsn).close()
    except Exception as e:
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not available: {e}")
    drop = [f"DROP TABLE IF EXISTS {{t}}_{s} CASCADE" for s in ("new", "copy", "gone")] + [
        "DROP VIEW IF EXISTS {t}_v", "DROP SEQUENCE IF EXISTS {t}_seq", "DROP SCHEMA IF EXISTS {t}_s CASCADE",
        "DROP FUNCTION IF EXISTS {t}_f()", "DROP TABLE IF EXISTS {t} CASCADE", "DROP TABLE IF EXISTS {u} CASCADE",
    ]  # fmt: skip
    return Env(
        "pg", prefix, lambda: psycopg.connect(dsn, autocommit=True),
        _setup(drop, "id int PRIMARY KEY, label text, total int, tag text"),
        [*_ROWS_SQL,
         "SELECT c.relname, c.relkind, n.nspname, pg_get_userbyid(c.relowner) FROM pg_class c "
         "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname LIKE '{p}%'",
         "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = '{t}'::regclass AND attnum > 0",
         "SELECT tgname FROM pg_trigger WHERE tgname LIKE '{p}%' OR tgrelid = '{t}'::regclass",
         "SELECT rulename FROM pg_rules WHERE tablename LIKE '{p}%'",
         "SELECT name, setting FROM pg_settings WHERE name IN ('standard_conforming_strings', 'client_encoding', "
         "'backslash_quote', 'search_path', 'session_replication_role', 'default_transaction_read_only')",
         "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
         "SELECT pg_listening_channels()"],
    )  # fmt: skip


def _my_env(prefix: str) -> Env:
    pymysql = pytest.importorskip("pymysql")
    kw = dict(MYSQL_KW)
    try:
        pymysql.connect(connect_timeout=3, **kw).close()
    except Exception as e:
        pytest.skip(f"MariaDB on 127.0.0.1:3306 is not available: {e}")
    drop = [f"DROP TABLE IF EXISTS {{t}}_{s}" for s in ("new", "copy", "gone")] + [
        "DROP VIEW IF EXISTS {t}_v", "DROP EVENT IF EXISTS {t}_e", "DROP TABLE IF EXISTS {t}",
        "DROP TABLE IF EXISTS {u}",
    ]  # fmt: skip
    return Env(
        "my", prefix, lambda: pymysql.connect(autocommit=True, **kw),
        _setup(drop, "id int PRIMARY KEY, label varchar(50), total int, tag varchar(50)"),
        [*_ROWS_SQL,
         "SELECT table_name, table_type, engine FROM information_schema.tables WHERE table_name LIKE '{p}%'",
         "SELECT table_name, column_name, column_type, column_key FROM information_schema.columns "
         "WHERE table_name LIKE '{p}%'",
         "SELECT index_name, column_name FROM information_schema.statistics WHERE table_name LIKE '{p}%'",
         "SELECT trigger_name FROM information_schema.triggers WHERE trigger_name LIKE '{p}%'",
         "SELECT event_name FROM information_schema.events WHERE event_name LIKE '{p}%'",
         "SELECT @@session.sql_mode, @@session.character_set_client, @@session.character_set_connection, "
         "@@session.foreign_key_checks, DATABASE()",
         "SELECT IS_USED_LOCK('x_{t}'), IS_USED_LOCK('y_{t}')"],
    )  # fmt: skip


def _lite_env(prefix: str, tmp: Path) -> Env:
    path = tmp / f"{prefix}.db"
    return Env(
        "lite", prefix, lambda: sqlite3.connect(path, isolation_level=None),
        _setup([f"DROP TABLE IF EXISTS {{t}}_{s}" for s in ("new", "copy", "gone")]
               + ["DROP VIEW IF EXISTS {t}_v", "DROP TABLE IF EXISTS {t}", "DROP TABLE IF EXISTS {u}"],
               "id INTEGER PRIMARY KEY, label text, total int, tag text"),
        [*_ROWS_SQL, "SELECT type, name, tbl_name, sql FROM sqlite_master",
         "PRAGMA foreign_keys", "PRAGMA writable_schema", "PRAGMA query_only", "PRAGMA ignore_check_constraints",
         "PRAGMA trusted_schema"],
    )  # fmt: skip


def _duck_env(prefix: str, tmp: Path) -> Env:
    duckdb = pytest.importorskip("duckdb")
    path = str(tmp / f"{prefix}.duckdb")
    return Env(
        "duck", prefix, lambda: duckdb.connect(path),
        _setup([f"DROP TABLE IF EXISTS {{t}}_{s}" for s in ("new", "copy", "gone")]
               + ["DROP VIEW IF EXISTS {t}_v", "DROP SEQUENCE IF EXISTS {t}_seq", "DROP SCHEMA IF EXISTS {t}_s",
                  "DROP TABLE IF EXISTS {t}", "DROP TABLE IF EXISTS {u}"],
               "id int PRIMARY KEY, label text, total int, tag text"),
        [*_ROWS_SQL,
         "SELECT database_name, schema_name, table_name, column_count FROM duckdb_tables() WHERE NOT temporary",
         "SELECT view_name FROM duckdb_views() WHERE NOT internal", "SELECT index_name FROM duckdb_indexes()",
         "SELECT sequence_name FROM duckdb_sequences()", "SELECT schema_name FROM duckdb_schemas()",
         "SELECT database_name FROM duckdb_databases()",
         "SELECT current_setting('enable_external_access')"],
    )  # fmt: skip


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Environments made on first use (a dialect whose server is absent skips its cases)."""
    tmp = tmp_path_factory.mktemp("adversarial")
    made: dict[str, Env] = {}
    tag = "u" + uuid.uuid4().hex[:7]
    factories = {
        "pg": lambda: _pg_env(f"gdadv{tag}"),
        "my": lambda: _my_env(f"gdadv{tag}"),
        "lite": lambda: _lite_env(f"gdadv{tag}", tmp),
        "duck": lambda: _duck_env(f"gdadv{tag}", tmp),
    }

    def get(name: str) -> Env:
        if name not in made:
            env = factories[name]()
            env.reset()
            made[name] = env
        return made[name]

    yield {"get": get}
    for env in made.values():
        try:
            env.close()
            env.open()
            for q in env.setup[:-4]:  # the DROP statements: leave nothing behind on shared servers
                env.raw_exec(q.replace("{t}", env.t).replace("{u}", env.u).replace("{p}", env.prefix))
            env.raw_exec(f"DROP TABLE IF EXISTS {env.t}")
            env.raw_exec(f"DROP TABLE IF EXISTS {env.u}")
            if env.name == "lite":
                env.raw.commit()
        finally:
            env.close()


@pytest.mark.parametrize("case", _params())
def test_adversarial_case(case: Case, envs: dict[str, Any]) -> None:
    """Refused statements are refused and change nothing in the database; innocent look-alikes run."""
    env: Env = envs["get"](case.db)
    sql = case.sql.replace("{t}", env.t).replace("{u}", env.u)
    gov = env.readonly if case.as_ == "readonly" else env.agent
    err = env.run(gov, sql)
    after = env.state()
    changed = after != env.baseline
    try:
        if case.expect == "refuse":
            assert isinstance(err, GovernedDBError), f"not refused by governance: {err!r}"
            assert not changed, "a refused statement changed the database"
        else:
            assert not isinstance(err, GovernedDBError), f"innocent statement refused: {err}"
            assert err is None, f"innocent statement failed in the database: {err!r}"
    finally:
        if changed or case.expect == "run" or (err is not None and not isinstance(err, GovernedDBError)):
            env.reset()


def test_corpus_is_large_and_balanced() -> None:
    """At least 500 cases across the four databases, with innocent look-alikes for each."""
    assert len(CORPUS) >= 500
    for db in DIALECTS:
        assert any(c.db == db and c.expect == "refuse" for c in CORPUS)
        assert sum(c.db == db and c.expect == "run" for c in CORPUS) >= 10


NAMES = {"pg": "PostgreSQL", "my": "MariaDB", "lite": "SQLite", "duck": "DuckDB"}


def score() -> dict[str, tuple[int, int, int, int]]:
    """Per dialect: (attacks, known misses, innocent look-alikes, known over-refusals)."""
    out = {}
    for db, name in NAMES.items():
        cases = [c for c in CORPUS if c.db == db]
        attacks = [c for c in cases if c.expect == "refuse"]
        innocent = [c for c in cases if c.expect == "run"]
        out[name] = (len(attacks), sum(c.miss for c in attacks), len(innocent), sum(c.over for c in innocent))
    return out


def test_published_score_matches_the_corpus() -> None:
    """docs/threat-model.md states the corpus's current misses and over-refusals per dialect, as they are."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "threat-model.md").read_text(encoding="utf-8")
    for name, (attacks, misses, innocent, over) in score().items():
        row = f"| {name} | {attacks} | {misses} | {innocent} | {over} |"
        assert row in text, f"update the published score in docs/threat-model.md: {row}"
