"""One schema for the record: every span/audit/metric key is defined once, in governed_db/semconv.py."""

from __future__ import annotations

import re
from pathlib import Path

import governed_db.semconv as semconv

PACKAGE = Path(__file__).resolve().parents[1] / "governed_db"
#: a record key spelled as a string (not a module path, a logger name, a template or a byte-string domain tag)
_KEY = re.compile(r'(?<![A-Za-z])"((?:governed_db|db|server|mcp|error)\.[a-z_][a-z0-9_.]*)"')
_NOT_KEYS = {"governed_db.ratelimit", "governed_db.approvals.audit", "error.html"}


def _modules() -> set[str]:
    out = set()
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        out.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def test_no_module_spells_a_record_key() -> None:
    """Outside semconv.py no module writes a record key as a string literal: they use the constants."""
    modules = _modules()
    spelled = []
    for p in PACKAGE.rglob("*.py"):
        if p.name == "semconv.py":
            continue
        for n, line in enumerate(p.read_text().splitlines(), 1):
            if line.lstrip().startswith("#") or "getLogger(" in line:
                continue
            for m in _KEY.finditer(line):
                key = m.group(1)
                if key in modules or key in _NOT_KEYS or key.startswith(("governed_db.masking.", "governed_db.integrations.")):
                    continue
                spelled.append(f"{p.relative_to(PACKAGE.parent)}:{n}: {key}")
    assert spelled == [], "use governed_db.semconv constants:\n" + "\n".join(spelled)


def test_every_constant_is_a_distinct_key() -> None:
    """Each name in semconv is defined once and no two names share a key."""
    values = [getattr(semconv, n) for n in semconv.__all__]
    assert len(values) == len(set(values))
    assert all(isinstance(v, str) and "." in v for v in values)


def test_the_stable_database_conventions_are_spelled_as_opentelemetry_does() -> None:
    """The db.* keys are the stable OpenTelemetry database semantic conventions' names."""
    assert semconv.DB_QUERY_TEXT == "db.query.text"
    assert semconv.DB_SYSTEM_NAME == "db.system.name"
    assert semconv.DB_OPERATION_NAME == "db.operation.name"
    assert semconv.DB_NAMESPACE == "db.namespace"
