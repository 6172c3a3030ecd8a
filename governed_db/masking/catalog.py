"""The reviewable catalog: what each column holds, written by ``governed-db classify``.

A YAML (or JSON) file people edit and commit. Entries in it are *reviewed*:
they win over anything governed_db would guess online, and ``label: null``
marks a column as not sensitive::

    version: 1
    dialect: sqlite
    tables:
      users:
        email: {label: EMAIL, confidence: 0.99, evidence: {name: ..., values: 100% of 1000 sampled values are EMAIL}}
        ssn: {label: US_SSN, confidence: 0.95, strategy: {strategy: hash}}
        id: {label: null}
        memo: {label: null, provisional: true}

``provisional: true`` marks a ``label: null`` classified while its table was
(nearly) empty: it is ignored, and the column is classified online once data
arrives. Delete the flag to make a reviewed ``label: null`` of it; setting a
label settles the entry too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governed_db.errors import ConfigurationError
from governed_db.masking.classify import ColumnClass
from governed_db.masking.labels import normalize_label
from governed_db.masking.strategies import STRATEGY_NAMES


def table_key(name: str) -> str:
    return ".".join(p.strip('"`[]') for p in name.split(".")).lower()


@dataclass
class Catalog:
    dialect: str | None = None
    #: table key (lower case, possibly schema-qualified) -> column (lower case) -> class
    tables: dict[str, dict[str, ColumnClass]] = field(default_factory=dict)
    source: str | None = None

    def set(self, table: str, column: str, cls: ColumnClass) -> None:
        self.tables.setdefault(table_key(table), {})[column.lower()] = cls

    def lookup(self, table: str, column: str) -> ColumnClass | None:
        """The entry for ``table.column``; an unqualified catalog table matches any schema's table."""
        key = table_key(table)
        col = column.lower()
        found = self.tables.get(key)
        if found is None and "." in key:
            found = self.tables.get(key.rsplit(".", 1)[1])
        if found is None:
            for name, cols in self.tables.items():
                if name.rsplit(".", 1)[-1] == key:
                    found = cols
                    break
        entry = None if found is None else found.get(col)
        # a provisional entry (classified on an empty table) decides nothing: online classification does
        return None if entry is None or entry.provisional else entry

    def has_table(self, table: str) -> bool:
        key = table_key(table)
        return key in self.tables or key.rsplit(".", 1)[-1] in self.tables

    def __iter__(self) -> Iterator[tuple[str, str, ColumnClass]]:
        for t, cols in self.tables.items():
            for c, cls in cols.items():
                yield t, c, cls

    # -- files -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        tables: dict[str, Any] = {}
        for t, cols in sorted(self.tables.items()):
            out: dict[str, Any] = {}
            for c, cls in cols.items():
                entry: dict[str, Any] = {"label": cls.label, "confidence": round(cls.confidence, 2)}
                if cls.evidence:
                    entry["evidence"] = dict(cls.evidence)
                if cls.strategy is not None:
                    entry["strategy"] = {"strategy": cls.strategy[0], **cls.strategy[1]}
                if cls.provisional:
                    entry["provisional"] = True
                out[c] = entry
            tables[t] = out
        return {"version": 1, "dialect": self.dialect, "tables": tables}

    def save(self, path: str | os.PathLike[str], fmt: str | None = None) -> None:
        target = Path(path)
        fmt = fmt or ("json" if target.suffix.lower() == ".json" else "yaml")
        data = self.to_dict()
        if fmt == "json":
            text = json.dumps(data, indent=2, sort_keys=False) + "\n"
        else:
            import yaml

            header = (
                "# governed_db data catalog: review and commit. Edit `label` (null = not sensitive) or add\n"
                "# `strategy: {strategy: hash}`; reviewed entries win over online classification.\n"
            )
            text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
        from governed_db.config_files import open_output_file

        with open_output_file(target, "the catalog") as f:  # a FIFO or device: ConfigurationError, never a wait
            f.write(text)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> Catalog:
        if not isinstance(data, Mapping) or not isinstance(data.get("tables", {}), Mapping):
            raise ConfigurationError(
                f"catalog {source or ''} must be a mapping with a 'tables' mapping".strip()
            )
        cat = cls(dialect=data.get("dialect"), source=source)
        for table, cols in (data.get("tables") or {}).items():
            if not isinstance(cols, Mapping):
                raise ConfigurationError(f"catalog: table {table!r} must map column names to entries")
            for column, entry in cols.items():
                cat.set(str(table), str(column), _entry(str(table), str(column), entry))
        return cat

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Catalog:
        p = Path(path)
        if not p.exists():
            raise ConfigurationError(
                f"catalog file {str(p)!r} does not exist; create it with `governed-db classify`"
            )
        from governed_db.config_files import load_json, load_yaml, read_config_text

        what = f"catalog file {str(p)!r}"
        text = read_config_text(p, "catalog file")  # bounded size and depth: ConfigurationError
        data = load_json(text, what) if p.suffix.lower() == ".json" else (load_yaml(text, what) or {})
        return cls.from_dict(data, source=str(p))


def _entry(table: str, column: str, entry: Any) -> ColumnClass:
    if entry is None or isinstance(entry, str):
        return ColumnClass(normalize_label(entry), 1.0, {"review": "catalog"}, reviewed=True)
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"catalog: {table}.{column} must be a label or a mapping")
    strategy = entry.get("strategy")
    spec: tuple[str, dict[str, Any]] | None = None
    if isinstance(strategy, str):
        spec = (strategy, {})
    elif isinstance(strategy, Mapping):
        opts = dict(strategy)
        spec = (str(opts.pop("strategy", "redact")), opts)
    if spec is not None and spec[0] not in STRATEGY_NAMES:
        raise ConfigurationError(f"catalog: {table}.{column} names unknown strategy {spec[0]!r}")
    evidence = entry.get("evidence") or {}
    label = normalize_label(entry.get("label"))
    # only "not sensitive" is provisional: a label, whoever set it, masks
    provisional = bool(entry.get("provisional", False)) and label is None
    return ColumnClass(
        label,
        float(entry.get("confidence", 1.0)),
        {str(k): str(v) for k, v in evidence.items()} if isinstance(evidence, Mapping) else {},
        spec,
        reviewed=not provisional,
        provisional=provisional,
    )


def load_catalog(source: Any) -> Catalog | None:
    if source is None:
        return None
    if isinstance(source, Catalog):
        return source
    if isinstance(source, Mapping):
        return Catalog.from_dict(source)
    if isinstance(source, (str, os.PathLike)):
        return Catalog.load(source)
    raise ConfigurationError(
        f"masking catalog must be a path, a mapping or a Catalog, got {type(source).__name__}"
    )
