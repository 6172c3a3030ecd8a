"""governed_db.integrations.sqlalchemy: governed engines on every supported backend, real drivers and servers."""

from __future__ import annotations

import importlib.util
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

sa = pytest.importorskip("sqlalchemy")

from sqlalchemy import Column, Integer, String, select, text  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Session  # noqa: E402

import governed_db  # noqa: E402
from governed_db import GuardrailViolation, Identity  # noqa: E402
from governed_db.errors import ConfigurationError  # noqa: E402
from governed_db.integrations.sqlalchemy import create_engine, govern_engine, is_governed, refusal_of  # noqa: E402

BOT = Identity("report-bot", kind="agent", on_behalf_of="alice")
EMAIL = "alice.secret@example.com"


def _driver_ready(module: str) -> bool:
    return importlib.util.find_spec(f"governed_db.drivers.{module}") is not None


@dataclass
class Backend:
    name: str
    url: str
    table: str
    ddl_type: str = "VARCHAR(200)"


def _pg_url(dsn: str, driver: str) -> str:
    parts = dict(p.split("=", 1) for p in dsn.split())
    return (
        f"postgresql+{driver}://{parts.get('user', 'postgres')}@{parts.get('host', '127.0.0.1')}:"
        f"{parts.get('port', '5432')}/{parts.get('dbname', 'test')}"
    )


BACKENDS = ["sqlite", "postgresql+psycopg", "postgresql+psycopg2", "mysql+pymysql", "duckdb"]
_NEEDS_DRIVER = {
    "postgresql+psycopg": "psycopg",
    "postgresql+psycopg2": "psycopg2",
    "mysql+pymysql": "pymysql",
    "duckdb": "duckdb",
}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Any, unique: str) -> Iterator[Backend]:
    name: str = request.param
    needed = _NEEDS_DRIVER.get(name)
    if needed and not _driver_ready(needed):
        pytest.skip(f"governed_db.drivers.{needed} is not in this build yet (drivers issue)")
    table = f"gdb_sa_{unique}"
    if name == "sqlite":
        url = f"sqlite:///{tmp_path / 'app.db'}"
    elif name.startswith("postgresql"):
        url = _pg_url(request.getfixturevalue("pg_dsn"), name.split("+")[1])
    elif name == "mysql+pymysql":
        kw = request.getfixturevalue("mysql_kw")
        url = f"mysql+pymysql://{kw['user']}@{kw['host']}:{kw['port']}/{kw['database']}"
    else:
        pytest.importorskip("duckdb_engine")
        url = f"duckdb:///{tmp_path / 'app.duckdb'}"
    yield Backend(name, url, table)
    plain = sa.create_engine(url)  # clean up ungoverned: DROP is refused in production, by design
    with plain.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    plain.dispose()


def _engine(b: Backend, provider: Any = None, **kw: Any) -> Any:
    return create_engine(b.url, identity=BOT, environment="production", tracer_provider=provider, **kw)


def _seed(engine: Any, b: Backend) -> None:
    """Create and fill the table ungoverned: production asks for an approval before DDL, by design."""
    del engine
    plain = sa.create_engine(b.url)
    with plain.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {b.table} (id INTEGER PRIMARY KEY, name {b.ddl_type}, email {b.ddl_type})"
        )
        conn.execute(
            text(f"INSERT INTO {b.table} (id, name, email) VALUES (:i, :n, :e)"),
            [{"i": 1, "n": "Alice", "e": EMAIL}, {"i": 2, "n": "Bob", "e": "bob@example.org"}],
        )
    plain.dispose()


def _expected_rules(sql: str, b: Backend) -> tuple[str, ...]:
    dialect = {"sqlite": "sqlite", "duckdb": "duckdb", "mysql+pymysql": "mysql"}.get(b.name, "postgres")
    return governed_db.evaluate(sql, dialect=dialect, environment="production").rules


def _refused_spans(exporter: Any) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.attributes.get("governed_db.refused")]


def test_refusal_is_dbapierror_wrapping_guardrail_violation(backend: Backend, spans: Any) -> None:
    """A denied statement raises sqlalchemy.exc.DBAPIError whose .orig is the GuardrailViolation."""
    provider, exporter = spans
    engine = _engine(backend, provider)
    _seed(engine, backend)
    with pytest.raises(sa.exc.DBAPIError) as info, engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {backend.table}")
    assert isinstance(info.value.orig, GuardrailViolation)
    assert refusal_of(info.value) is info.value.orig
    assert info.value.orig.rules == _expected_rules(f"DROP TABLE {backend.table}", backend) != ()
    assert "Next step" in str(info.value.orig)
    refused = _refused_spans(exporter)
    assert len(refused) == 1 and refused[0].attributes["governed_db.identity.subject"] == "report-bot"
    engine.dispose()


def test_pool_and_session_keep_working_after_refusal(backend: Backend) -> None:
    """After a refusal the pooled connection is not invalidated and the ORM session goes on."""
    engine = _engine(backend, pool_size=1, max_overflow=0) if backend.name != "duckdb" else _engine(backend)
    _seed(engine, backend)
    with engine.connect() as conn:
        first = conn.connection.dbapi_connection
    with Session(engine) as session:
        with pytest.raises(sa.exc.DBAPIError):
            session.execute(
                text(f"TRUNCATE TABLE {backend.table}")
                if backend.name != "sqlite"
                else text(f"DROP TABLE {backend.table}")
            )
        session.rollback()
        assert session.execute(text(f"SELECT count(*) FROM {backend.table}")).scalar_one() == 2
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection is first  # the same governed connection, back from the pool
        assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    engine.dispose()


def test_dialect_housekeeping_is_never_refused_in_production(backend: Backend, spans: Any) -> None:
    """Pre-ping, first-connect version queries, reflection and savepoints all pass in production, recorded."""
    provider, exporter = spans
    engine = _engine(backend, provider, pool_pre_ping=True)
    _seed(engine, backend)
    for _ in range(2):  # the second checkout pre-pings
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    inspector = sa.inspect(engine)
    assert backend.table in inspector.get_table_names()
    if (
        backend.name != "duckdb"
    ):  # duckdb_engine's column reflection is broken on SQLAlchemy 2.1 (ungoverned too)
        assert [c["name"] for c in inspector.get_columns(backend.table)] == ["id", "name", "email"]
        assert inspector.get_pk_constraint(backend.table)["constrained_columns"] == ["id"]
        metadata = sa.MetaData()
        reflected = sa.Table(backend.table, metadata, autoload_with=engine)
        assert "email" in reflected.c
    if backend.name != "duckdb":  # duckdb has no SAVEPOINT
        with Session(engine) as session, session.begin():
            nested = session.begin_nested()
            session.execute(text(f"UPDATE {backend.table} SET name = 'x' WHERE id = 1"))
            nested.rollback()
        with engine.connect() as conn:
            assert (
                conn.execute(text(f"SELECT name FROM {backend.table} WHERE id = 1")).scalar_one() == "Alice"
            )
    assert _refused_spans(exporter) == []
    recorded = exporter.get_finished_spans()
    assert any(s.attributes.get("governed_db.identity.subject") == "report-bot" for s in recorded)
    engine.dispose()


class _Base(DeclarativeBase):
    pass


def _user_model(table: str) -> type:
    return type(
        f"User_{table}",
        (_Base,),
        {
            "__tablename__": table,
            "id": Column(Integer, primary_key=True),
            "name": Column(String(200)),
            "email": Column(String(200)),
            "__table_args__": {"extend_existing": True},
        },
    )


@pytest.mark.parametrize("api", ["orm", "core"])
def test_email_never_comes_back_raw(backend: Backend, api: str) -> None:
    """The raw email address is masked in ORM and Core results."""
    engine = _engine(backend)
    _seed(engine, backend)
    with Session(engine) as session:
        if api == "orm":
            model: Any = _user_model(backend.table)
            rows = [(u.name, u.email) for u in session.scalars(select(model).order_by(model.id))]
        else:
            rows = [
                tuple(r)
                for r in session.execute(text(f"SELECT name, email FROM {backend.table} ORDER BY id"))
            ]
    assert rows[0][0] == "Alice"
    assert EMAIL not in repr(rows)
    engine.dispose()


def test_orm_unit_of_work_and_executemany_are_governed(backend: Backend, spans: Any) -> None:
    """ORM inserts, updates and deletes by primary key, and a Core executemany, run and are each recorded."""
    provider, exporter = spans
    engine = _engine(backend, provider)
    _seed(engine, backend)
    model: Any = _user_model(backend.table)
    with Session(engine) as session:
        session.add_all([model(id=10, name="Carol", email="c@example.net"), model(id=11, name="Dan", email=None)])
        session.commit()
        carol = session.get(model, 10)
        carol.name = "Caroline"
        session.delete(session.get(model, 11))
        session.commit()
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {backend.table} (id, name) VALUES (:i, :n)"),
                     [{"i": 20 + k, "n": f"n{k}"} for k in range(5)])
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {backend.table}")).scalar_one() == 8
    ops = [s.attributes.get("db.operation.name") for s in exporter.get_finished_spans()]
    assert {"INSERT", "UPDATE", "DELETE", "SELECT"} <= set(ops)
    assert _refused_spans(exporter) == []
    engine.dispose()


def test_streamed_results_are_masked(backend: Backend) -> None:
    """stream_results (server-side / unbuffered cursors) hands out masked rows, partition by partition."""
    engine = _engine(backend)
    _seed(engine, backend)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, max_row_buffer=1).execute(
            text(f"SELECT id, email FROM {backend.table} ORDER BY id"))
        partitions = list(result.partitions(1))
    assert [len(p) for p in partitions] == [1, 1]
    assert partitions[0][0][0] == 1 and EMAIL not in repr(partitions)
    engine.dispose()


def test_wrap_options_and_engine_kwargs_are_split() -> None:
    """Keyword arguments named like wrap() options go to wrap; the rest go to SQLAlchemy."""
    engine = create_engine("sqlite://", identity=BOT, environment="production", sqlcommenter=True, echo=False)
    assert is_governed(engine)
    with engine.connect() as conn:
        assert type(conn.connection.dbapi_connection).__module__.startswith("governed_db")
        assert conn.connection.dbapi_connection.governor.settings.option("sqlcommenter") is True
        assert conn.connection.dbapi_connection.governor.dialect == "sqlite"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"creator": lambda: None}, "drop creator="),
        ({"on_fault": "explode"}, "on_fault"),
        ({"identity": 42}, "identity must be"),
    ],
)
def test_bad_configuration_fails_at_create_engine(kwargs: dict[str, Any], message: str) -> None:
    """Bad options are reported when the engine is created, not at the first checkout."""
    with pytest.raises(ConfigurationError, match=message):
        create_engine("sqlite://", **kwargs)


def test_creator_recipe_governs_too(tmp_path: Any) -> None:
    """The documented creator= recipe gives the same DBAPIError-wrapped refusal."""
    path = tmp_path / "recipe.db"
    sqlite3.connect(path).execute("CREATE TABLE t (id INTEGER)").connection.close()
    engine = sa.create_engine(
        "sqlite://",
        creator=lambda: governed_db.wrap(sqlite3.connect(path), identity=BOT, environment="production"),
    )
    with pytest.raises(sa.exc.ProgrammingError) as info, engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE t")
    assert isinstance(info.value.orig, GuardrailViolation)
    assert isinstance(info.value.orig, sqlite3.ProgrammingError)


def test_govern_engine_refuses_twice() -> None:
    """govern_engine() on an already governed engine is a configuration error, not a double wrap."""
    engine = create_engine("sqlite://", identity=BOT)
    with pytest.raises(ConfigurationError, match="already governed"):
        govern_engine(engine, identity=BOT)


def _review_ddl(stmt: Any, ctx: Any) -> Any:
    from governed_db.policy.decision import Action, RuleHit

    if stmt is not None and stmt.operation.startswith("CREATE"):
        return RuleHit("review-ddl", Action.REQUIRE_APPROVAL, "schema changes are reviewed", None)
    return None


REVIEW_DDL = governed_db.Policy(name="review-ddl", rules=(_review_ddl,))


def test_approval_request_surfaces_through_sqlalchemy(tmp_path: Any) -> None:
    """A statement needing approval raises DBAPIError whose .orig is ApprovalRequired with a request id."""
    from governed_db import ApprovalRequired
    from governed_db.integrations.tooling import refusal_message

    engine = create_engine(
        f"sqlite:///{tmp_path / 'a.db'}",
        identity=BOT,
        environment="production",
        policy=REVIEW_DDL,
        approvals=str(tmp_path / "approvals.db"),
    )
    with pytest.raises(sa.exc.DBAPIError) as info, engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE fresh (id INTEGER)")
    assert isinstance(info.value.orig, ApprovalRequired) and info.value.orig.request_id
    message = refusal_message(info.value)
    assert message is not None and message.startswith("approval required by rule review-ddl")
    assert info.value.orig.request_id in message and "Next step:" in message
    with engine.connect() as conn:  # the pool is fine afterwards
        assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1


def test_govern_engine_refuses_an_engine_with_pooled_connections(tmp_path: Any) -> None:
    """govern_engine() on an engine that already pooled raw connections says so instead of half-governing."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    with pytest.raises(ConfigurationError, match="dispose"):
        govern_engine(engine, identity=BOT)
    engine.dispose()
    govern_engine(engine, identity=BOT)
    with engine.connect() as conn:
        assert type(conn.connection.dbapi_connection).__module__.startswith("governed_db")


def test_development_warns_instead_of_refusing(tmp_path: Any) -> None:
    """In development the same DROP is observed (warned), not refused — environments matter."""
    engine = create_engine(f"sqlite:///{tmp_path / 'dev.db'}", identity=BOT, environment="development")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER)")
        conn.exec_driver_sql("DROP TABLE t")
    assert "t" not in sa.inspect(engine).get_table_names()


def test_connect_housekeeping_spends_no_rate_limit_budget(backend: Backend, spans: Any) -> None:
    """A 2-per-minute limit: SQLAlchemy's first-connect queries are recorded but free; the 3rd own statement is refused."""
    provider, exporter = spans
    limits = {"limits": [{"when": {"kind": "agent"}, "statements_per_minute": 2}]}
    engine = _engine(backend, provider, policy=limits)
    with engine.connect() as conn:
        setup = [s for s in exporter.get_finished_spans() if s.name != "governed_db.result"]
        if backend.name != "duckdb":  # duckdb_engine's dialect runs nothing at connect
            assert setup, "the dialect's connect-time queries went through governance"
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        assert conn.exec_driver_sql("SELECT 2").scalar() == 2
        with pytest.raises(sa.exc.DBAPIError) as info:
            conn.exec_driver_sql("SELECT 3")
        assert refusal_of(info.value) is not None
        assert refusal_of(info.value).rules == ("rate-limit-statements",)  # type: ignore[union-attr]
    engine.dispose()
