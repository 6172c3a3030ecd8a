"""`import governed_db` stays light: heavy dependencies load only when used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("presidio_analyzer", "spacy", "opentelemetry.sdk", "sqlglot", "psycopg", "psycopg2", "pymysql", "duckdb",
         "pandas", "rich", "click", "jwt", "yaml")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        check=True, capture_output=True, text=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_loads_no_heavy_dependency() -> None:
    """Importing the package pulls in none of Presidio, spaCy, the OTel SDK, sqlglot, drivers or the CLI stack."""
    loaded = _modules_after("import governed_db")
    assert not [m for m in HEAVY if m in loaded]


def test_public_names_resolve() -> None:
    """Every name in __all__ resolves (lazy ones included)."""
    import governed_db

    for name in governed_db.__all__:
        assert getattr(governed_db, name) is not None, name
