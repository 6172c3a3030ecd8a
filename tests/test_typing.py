"""wrap() is typed per driver: the governed connection has the wrapped driver's connection type."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_wrap_returns_the_drivers_connection_type(tmp_path: Path) -> None:
    """mypy sees wrap(sqlite3.connect(...)) as sqlite3.Connection and wrap(psycopg.connect(...)) as psycopg's."""
    api = pytest.importorskip("mypy.api")
    src = tmp_path / "snippet.py"
    src.write_text(
        "import sqlite3\nimport psycopg\nimport governed_db\n"
        "reveal_type(governed_db.wrap(sqlite3.connect(':memory:')))\n"
        "reveal_type(governed_db.wrap(psycopg.connect('')))\n"
        "governed_db.wrap(sqlite3.connect(':memory:')).no_such_method()\n"
    )
    out, _err, _code = api.run([str(src), "--no-incremental", "--cache-dir", str(tmp_path / ".mypy")])
    assert 'Revealed type is "sqlite3.Connection"' in out
    assert 'Revealed type is "psycopg.connection.Connection[' in out
    assert '"Connection" has no attribute "no_such_method"' in out  # a typo is caught by the type checker
