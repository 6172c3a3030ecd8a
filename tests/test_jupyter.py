"""The Jupyter extension, executed in a real notebook with a real kernel (nbclient + ipykernel)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

import governed_db  # noqa: E402
from governed_db import Identity  # noqa: E402

# `%load_ext governed_db` needs the one-line re-export in governed_db/__init__.py; the submodule always works
EXT = "governed_db" if hasattr(governed_db, "load_ipython_extension") else "governed_db.integrations.jupyter"


@pytest.fixture(autouse=True)
def _isolated_jupyter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Kernels and shells keep their history and connection files in the test's directory."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))


def _shell() -> Any:
    """The in-process IPython shell (a singleton), created without a history database."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    if InteractiveShell.initialized():
        return InteractiveShell.instance()
    config = Config()
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)


def _run(tmp_path: Path, cells: list[tuple[str, bool]], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Execute ``cells`` (source, raises) in a fresh kernel; returns the executed notebook."""
    monkeypatch.setenv("PLOOMBER_STATS_ENABLED", "false")  # jupysql telemetry: no network, ever
    monkeypatch.setenv("GOVERNED_DB_AUDIT", str(tmp_path / "audit"))
    nb = nbformat.v4.new_notebook()
    for source, raises in cells:
        cell = nbformat.v4.new_code_cell(source)
        if raises:
            cell.metadata["tags"] = ["raises-exception"]
        nb.cells.append(cell)
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return nb


def _text(cell: Any) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("display_data", "execute_result"):
            parts.append(out.data.get("text/html", "") + out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append(out.ename + ": " + out.evalue + "\n" + "\n".join(out.traceback))
    return "".join(parts)


def _html(cell: Any) -> str:
    return "".join(o.data.get("text/html", "") for o in cell.outputs
                   if o.output_type in ("display_data", "execute_result"))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "nb.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, email TEXT)")
    conn.execute("INSERT INTO people VALUES (1, 'Grace', 'grace@example.com')")
    conn.execute("CREATE TABLE widgets (id INTEGER PRIMARY KEY, label TEXT)")
    conn.execute("INSERT INTO widgets VALUES (1, 'sprocket-42')")
    conn.commit()
    conn.close()
    return path


def test_notebook_code_connections_are_governed_and_refusals_render(
    tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite3.connect in a cell is governed with the magic's identity; a refusal renders as an HTML box."""
    nb = _run(tmp_path, [
        (f"%load_ext {EXT}", False),
        ("%governed_db --identity agent:nb-bot@alice --environment production", False),
        (f"import sqlite3\nconn = sqlite3.connect({str(db)!r})\n"
         "print(type(conn).__module__, conn.governor.resolve_identity().subject, conn.governor.environment)", False),
        ("conn.execute('DROP TABLE people')", True),
        ("print(conn.execute('SELECT count(*) FROM people').fetchone()[0])", False),
        ("import pandas as pd\nprint(len(pd.read_sql('SELECT * FROM people', conn)))", False),
        (f"%unload_ext {EXT}", False),
        (f"raw = sqlite3.connect({str(db)!r})\nprint(type(raw).__module__)", False),
        ("1/0", True),
    ], monkeypatch)
    cells = nb.cells
    assert "agent:nb-bot@alice" in _html(cells[1]) and "production" in _html(cells[1])
    assert _text(cells[2]).split() == ["governed_db.drivers.sqlite", "nb-bot", "production"]
    box = _html(cells[3])
    assert "governed_db — Refused" in box and "refused by rule drop" in box and "Next step" in box
    error = next(o for o in cells[3].outputs if o.output_type == "error")
    assert len(error.traceback) == 1  # one readable line, not a stack trace
    assert _text(cells[4]).strip() == "1" and _text(cells[5]).strip() == "1"
    assert _text(cells[7]).strip() == "sqlite3"  # unloading restored sqlite3.connect
    assert "ZeroDivisionError" in _text(cells[8]) and not _html(cells[8])  # other errors: as IPython shows them


def test_jupysql_engines_are_governed(tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """%sql connections (jupysql's own SQLAlchemy engine) are governed: queries run, DROP is refused readably."""
    pytest.importorskip("sql.magic")
    nb = _run(tmp_path, [
        (f"%load_ext {EXT}", False),
        ("%governed_db --identity agent:sql-bot --environment production", False),
        ("%load_ext sql", False),
        (f"%sql sqlite:///{db}", False),
        ("%sql SELECT label FROM widgets", False),
        ("%sql DROP TABLE people", True),
        ("from sql.connection import ConnectionManager\n"
         "dbapi = ConnectionManager.current._connection.connection.dbapi_connection\n"
         "print(type(dbapi).__module__, dbapi.governor.resolve_identity().subject)", False),
    ], monkeypatch)
    cells = nb.cells
    assert "sprocket-42" in _text(cells[4])
    box = _html(cells[5])
    assert "governed_db — Refused" in box and "refused by rule drop" in box
    assert _text(cells[6]).split() == ["governed_db.drivers.sqlite", "sql-bot"]
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM people").fetchone() == (1,)  # the table survived
    conn.close()


def test_token_and_env_settings(tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Environment variables set the defaults; the status never prints a token."""
    monkeypatch.setenv("GOVERNED_DB_ENVIRONMENT", "staging")
    monkeypatch.setenv("GOVERNED_DB_IDENTITY", "service:etl")
    nb = _run(tmp_path, [
        (f"%load_ext {EXT}", False),
        ("%governed_db", False),
        (f"import sqlite3\nc = sqlite3.connect({str(db)!r})\n"
         "print(c.governor.environment, c.governor.resolve_identity().subject)", False),
        ("%governed_db --token not-a-real-secret-token", False),
        ("%governed_db --identity a --token b", True),
    ], monkeypatch)
    cells = nb.cells
    assert "staging" in _html(cells[1])
    assert _text(cells[2]).split() == ["staging", "etl"]
    outputs = json.dumps([c.outputs for c in cells])
    assert "verified token" in _html(cells[3]) and "not-a-real-secret-token" not in outputs
    assert "not both" in _text(cells[4])


def test_refusal_html_escapes_and_names_approval() -> None:
    """refusal_html() escapes the statement and shows an approval request's id and next step."""
    from governed_db import ApprovalRequired
    from governed_db.integrations.jupyter import refusal_html
    from governed_db.policy.decision import Action, Decision, RuleHit

    decision = Decision.combine([RuleHit("bulk-delete", Action.REQUIRE_APPROVAL, "deletes many rows", None)],
                                environment="production")
    exc = ApprovalRequired("approval required", decision, statement="DELETE FROM t WHERE a < '<b>'",
                           request_id="req-42")
    markup = refusal_html(exc)
    assert markup is not None
    assert "Approval required" in markup and "req-42" in markup and "&lt;b&gt;" in markup and "<b>" not in markup
    assert "governed-db approvals approve req-42" in markup
    assert refusal_html(ValueError("x")) is None


def test_in_process_load_unload_and_govern_module() -> None:
    """Loading patches sqlite3.connect (no double wrap through govern_module); unloading restores everything."""
    import sqlite3 as driver

    from governed_db import govern_module
    from governed_db.integrations.jupyter import load_ipython_extension, unload_ipython_extension

    shell = _shell()
    original = driver.connect
    load_ipython_extension(shell)
    try:
        assert driver.connect is not original
        direct = driver.connect(":memory:")
        assert type(direct).__module__ == "governed_db.drivers.sqlite"
        via_module = govern_module(driver).connect(":memory:")  # governed once, with the module's settings
        assert type(via_module).__module__ == "governed_db.drivers.sqlite"
        from governed_db.integrations.jupyter import configure
        from governed_db.integrations.sqlalchemy import create_engine

        configure(identity="agent:notebook")
        own = create_engine("sqlite://", identity=Identity("engine-owner", kind="service"))
        with own.connect() as conn:  # an engine from governed_db.integrations.sqlalchemy keeps its own settings
            assert conn.connection.dbapi_connection.governor.resolve_identity().subject == "engine-owner"
        own.dispose()
        assert shell.custom_exceptions == (Exception,)
        direct.close()
        via_module.close()
    finally:
        unload_ipython_extension(shell)
    assert driver.connect is original
    assert shell.custom_exceptions == ()


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_engines_made_in_the_kernel_are_governed_on_postgres(pg_dsn: str, driver: str) -> None:
    """A plain sqlalchemy.create_engine('postgresql+…') made while loaded connects governed (psycopg2 included)."""
    sa = pytest.importorskip("sqlalchemy")
    from governed_db.integrations.jupyter import configure, load_ipython_extension, unload_ipython_extension

    parts = dict(p.split("=", 1) for p in pg_dsn.split())
    url = f"postgresql+{driver}://{parts['user']}@{parts['host']}:{parts['port']}/{parts['dbname']}"
    shell = _shell()
    load_ipython_extension(shell)
    try:
        configure(identity="agent:pg-nb", environment="production")
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            assert type(dbapi).__module__.startswith("governed_db.drivers")
            assert dbapi.governor.resolve_identity().subject == "pg-nb"
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
        engine.dispose()
    finally:
        unload_ipython_extension(shell)


def test_approval_round_trip_in_a_notebook(tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A statement needing approval renders its request; after a reviewer approves, the same cell runs."""
    import re
    import subprocess
    import sys

    monkeypatch.setenv("PLOOMBER_STATS_ENABLED", "false")
    monkeypatch.setenv("GOVERNED_DB_AUDIT", str(tmp_path / "audit"))
    monkeypatch.setenv("GOVERNED_DB_APPROVALS", str(tmp_path / "approvals.db"))
    policy = tmp_path / "policy.yaml"
    policy.write_text("name: review-ddl\nrules:\n  ddl: require_approval\n")
    sources = [
        f"%load_ext {EXT}",
        f"%governed_db --identity agent:nb-bot@alice --environment production --policy {policy}",
        f"import sqlite3\nconn = sqlite3.connect({str(db)!r})",
        "conn.execute('CREATE TABLE audit_notes (id INTEGER)')",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.cells[3].metadata["tags"] = ["raises-exception"]
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        box = _html(nb.cells[3])
        assert "governed_db — Approval required" in box and "approval required by rule ddl" in box
        found = re.search(r"Request</th><td><code>([^<]+)</code>", box)
        assert found is not None
        approve = subprocess.run(
            [sys.executable, "-c", "from governed_db.cli import main; main()", "approvals", "approve",
             found.group(1), "--as", "dana", "--role", "dba"],
            capture_output=True, text=True, timeout=60,
        )
        assert approve.returncode == 0, approve.stdout + approve.stderr
        retry = nbformat.v4.new_code_cell("conn.execute('CREATE TABLE audit_notes (id INTEGER)')\nprint('created')")
        nb.cells.append(retry)
        client.execute_cell(retry, len(nb.cells) - 1)
    assert _text(retry).strip() == "created"


def test_async_connections_made_in_cells_are_governed(
    tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """await aiosqlite.connect(...) in a cell is governed: e-mails masked, a DROP refused and rendered."""
    pytest.importorskip("aiosqlite")
    nb = _run(tmp_path, [
        (f"%load_ext {EXT}", False),
        ("%governed_db --identity agent:nb-bot@alice --environment production", False),
        (f"import aiosqlite\nconn = await aiosqlite.connect({str(db)!r})\n"
         "print(type(conn).__module__, conn.governor.resolve_identity().subject)", False),
        ("print(await conn.execute_fetchall('SELECT email FROM people'))", False),
        ("await conn.execute('DROP TABLE people')", True),
        (f"async with aiosqlite.connect({str(db)!r}) as c2:\n"
         "    print(type(c2).__module__, await c2.execute_fetchall('SELECT count(*) FROM people'))", False),
    ], monkeypatch)
    cells = nb.cells
    assert _text(cells[2]).split() == ["governed_db.drivers.aiosqlite", "nb-bot"]
    assert "grace@example.com" not in _text(cells[3]) and "@example.com" in _text(cells[3])
    assert "governed_db — Refused" in _html(cells[4])
    assert _text(cells[5]).split()[0] == "governed_db.drivers.aiosqlite" and "(1,)" in _text(cells[5])


def test_loading_patches_and_unloading_restores_async_connects() -> None:
    """Loading replaces the async drivers' connect functions; unloading puts back exactly what was there."""
    from governed_db.integrations.jupyter import (
        ASYNC_CONNECTS,
        load_ipython_extension,
        unload_ipython_extension,
    )

    def current() -> dict[str, Any]:
        import importlib

        out = {}
        for module_name, owner_name, attr in ASYNC_CONNECTS:
            try:
                owner: Any = importlib.import_module(module_name)
            except ImportError:
                continue
            owner = getattr(owner, owner_name) if owner_name else owner
            out[f"{module_name}.{owner_name}.{attr}"] = (
                owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr)
            )
        return out

    shell = _shell()
    before = current()
    assert before, "no async driver installed"
    load_ipython_extension(shell)
    try:
        during = current()
        assert all(during[k] is not v for k, v in before.items())
    finally:
        unload_ipython_extension(shell)
    assert current() == before
