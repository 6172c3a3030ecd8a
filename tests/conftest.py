"""Shared fixtures: real databases, an in-memory span exporter, an isolated environment.

Server-backed fixtures skip with a clear reason when the server is absent,
and fail instead when ``GOVERNED_DB_REQUIRE_SERVERS=1`` (as in CI).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

#: pytest-xdist runs test files in two processes at once (``-n 2`` in pyproject.toml); each worker after the first
#: has its own databases on the shared servers, so two files running at the same time never share a table
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
TEST_DB = "test" if _WORKER == "gw0" else f"test_{_WORKER}"
PG_DSN = os.environ.get("GOVERNED_DB_TEST_PG", f"host=127.0.0.1 port=5432 dbname={TEST_DB} user=postgres")
PG_DB = dict(p.split("=", 1) for p in PG_DSN.split()).get("dbname", TEST_DB)
#: MariaDB: one database, ``test``, for both processes (tests there name it in expected outputs; their tables carry
#: unique names)
MYSQL_DB = "test"
MYSQL_KW = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": MYSQL_DB}
# subprocesses the tests start connect to the same database
os.environ.setdefault("GOVERNED_DB_TEST_PG", PG_DSN)
REQUIRE_SERVERS = os.environ.get("GOVERNED_DB_REQUIRE_SERVERS") == "1"
#: variables that say where the test servers are, kept by the isolated environment
_KEPT_ENV = (
    "GOVERNED_DB_REQUIRE_SERVERS",
    "GOVERNED_DB_REQUIRE_SPEEDUPS",
    "GOVERNED_DB_TEST_PG",
    "GOVERNED_DB_TEST_REDIS",
    "GOVERNED_DB_SCREENSHOTS",
)


def pg_url(scheme: str = "postgresql") -> str:
    """The PostgreSQL test database as a URL (``postgresql+psycopg2://…``) for SQLAlchemy, asyncpg and the CLI."""
    parts = dict(p.split("=", 1) for p in PG_DSN.split())
    return f"{scheme}://{parts.get('user', 'postgres')}@{parts.get('host', '127.0.0.1')}:{parts.get('port', '5432')}/{PG_DB}"


def mysql_url(scheme: str = "mysql") -> str:
    """The MariaDB test database as a URL."""
    return f"{scheme}://root@127.0.0.1:3306/{MYSQL_DB}"


def pytest_configure(config: Any) -> None:
    """An xdist worker's own databases exist before its first test (the first worker uses ``test``, which
    .ci/run creates); a server that is down is reported by the fixtures, not here."""
    if TEST_DB == "test":
        return
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 dbname=postgres user=postgres", autocommit=True,
                             connect_timeout=3) as admin:  # fmt: skip
            if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (TEST_DB,)).fetchone():
                admin.execute(f"CREATE DATABASE {TEST_DB}")
    except Exception:
        pass
    try:
        import pymysql

        admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", connect_timeout=3)
        try:
            admin.cursor().execute(f"CREATE DATABASE IF NOT EXISTS {TEST_DB}")
        finally:
            admin.close()
    except Exception:
        pass


def _unavailable(what: str, exc: BaseException) -> None:
    msg = f"{what} is not reachable ({type(exc).__name__}: {exc})"
    if REQUIRE_SERVERS:
        pytest.fail(msg + " and GOVERNED_DB_REQUIRE_SERVERS=1", pytrace=False)
    pytest.skip(msg + "; start it (see .ci/run) or set GOVERNED_DB_REQUIRE_SERVERS=1 to make this a failure")


_MISSING_INSTALL = ("could not import", "is not installed", "No module named")


def _hides_missing_install(report: Any) -> bool:
    return bool(report.skipped) and any(m in str(report.longrepr) for m in _MISSING_INSTALL)


_missing_modules: list[str] = []


def pytest_collectreport(report: Any) -> None:
    """In CI a test module skipped for a missing package is a missing install step: fail it."""
    if REQUIRE_SERVERS and _hides_missing_install(report):
        report.outcome = "failed"
        _missing_modules.append(f"{report.nodeid}: {report.longrepr}")


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if _missing_modules:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _missing_modules:
        terminalreporter.write_line(f"MISSING INSTALL STEP (GOVERNED_DB_REQUIRE_SERVERS=1): {line}", red=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_SERVERS and _hides_missing_install(report):
        report.outcome = "failed"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No test reads the developer's GOVERNED_DB_* variables or writes the default audit store."""
    for key in list(os.environ):
        if key.startswith("GOVERNED_DB_") and key not in _KEPT_ENV:
            monkeypatch.delenv(key, raising=False)
    # pytest-xdist's workers are started with COLUMNS=80 and LINES=24, which would make the CLI's output an
    # 80-column terminal's instead of a pipe's
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
    monkeypatch.setenv("GOVERNED_DB_AUDIT", str(tmp_path / "audit-default"))
    monkeypatch.setenv("GOVERNED_DB_APPROVALS", str(tmp_path / "approvals-default.db"))


@pytest.fixture
def unique() -> str:
    """A short unique suffix for table names on shared servers.

    It starts with a letter: an all-digit suffix (about 1 in 100 hex strings) reads as a phone number, and
    error messages quoting the table name would then come back partly masked.
    """
    return "u" + uuid.uuid4().hex[:9]


@pytest.fixture
def pg_dsn() -> str:
    psycopg = pytest.importorskip("psycopg")
    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except Exception as e:
        _unavailable("PostgreSQL on 127.0.0.1:5432", e)
    return PG_DSN


@pytest.fixture
def pg_conn(pg_dsn: str) -> Iterator[Any]:
    import psycopg

    conn = psycopg.connect(pg_dsn, autocommit=True)
    yield conn
    conn.close()


@pytest.fixture
def pg2_conn(pg_dsn: str) -> Iterator[Any]:
    psycopg2 = pytest.importorskip("psycopg2")
    conn = psycopg2.connect(pg_dsn)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def mysql_kw() -> dict[str, Any]:
    pymysql = pytest.importorskip("pymysql")
    try:
        pymysql.connect(connect_timeout=3, **MYSQL_KW).close()
    except Exception as e:
        _unavailable("MariaDB/MySQL on 127.0.0.1:3306", e)
    return dict(MYSQL_KW)


@pytest.fixture
def mysql_conn(mysql_kw: dict[str, Any]) -> Iterator[Any]:
    import pymysql

    conn = pymysql.connect(autocommit=True, **mysql_kw)
    yield conn
    conn.close()


@pytest.fixture
def redis_url() -> str:
    """The Redis server for shared rate limits (tests namespace their keys with a unique key_prefix)."""
    redis = pytest.importorskip("redis")
    url = os.environ.get("GOVERNED_DB_TEST_REDIS", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except Exception as e:
        _unavailable("Redis on 127.0.0.1:6379", e)
    return url


@pytest.fixture
def spans() -> Iterator[Any]:
    """A real SDK tracer provider with an in-memory exporter: ``(provider, exporter)``."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``, anyio's pytest plugin) run on asyncio, as the async drivers need."""
    return "asyncio"


EMAILS = ("alice@example.com", "bob@example.com")


def leaked(value: Any) -> list[str]:
    """The raw e-mail addresses of the async tests' tables that appear anywhere in ``value`` (repr)."""
    text = repr(value)
    return [e for e in EMAILS if e in text]


def audit_names(path: Any) -> list[tuple[str, str]]:
    """(span name, decision) of every record in the audit store at ``path``."""
    from governed_db.audit.store import read_records

    return [
        (str(r.get("name")), str(r.get("attrs", {}).get("governed_db.decision")))
        for r in read_records(path)
        if r.get("type") == "span"
    ]
