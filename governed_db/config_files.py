"""Limits for the YAML and JSON files governed_db reads (policies, policy tests, masking config, catalogs).

Configuration is small and shallow; a file that is not — a 5,000-deep nesting, a gigabyte, an alias bomb —
is refused with a clear message before a parser can recurse into a ``RecursionError`` or exhaust memory.
YAML is checked on the parser's event stream, which PyYAML produces without recursion; only then is the
document composed (recursively) into objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from governed_db.errors import ConfigurationError

#: no configuration file needs more than this
MAX_CONFIG_BYTES = 1 << 20
#: nesting of mappings and lists (a policy needs about 6)
MAX_CONFIG_DEPTH = 64
#: YAML aliases (``*name``); a handful is reuse, thousands is an expansion bomb
MAX_CONFIG_ALIASES = 256


def read_config_bytes(path: str | Path, what: str) -> bytes:
    """The bytes of ``path`` if it is a readable file within :data:`MAX_CONFIG_BYTES`; ConfigurationError else."""
    p = Path(path)
    try:
        if p.is_dir():
            raise ConfigurationError(f"{what} {str(p)!r} is a directory; pass a file")
        size = p.stat().st_size
        if size <= MAX_CONFIG_BYTES:
            # read at most one byte past the limit: a device or pipe (/dev/zero) reports size 0 and never ends
            with p.open("rb") as f:
                data = f.read(MAX_CONFIG_BYTES + 1)
            size = max(size, len(data))
        if size > MAX_CONFIG_BYTES:
            raise ConfigurationError(
                f"{what} {str(p)!r} is {'more than ' + str(MAX_CONFIG_BYTES) if size == MAX_CONFIG_BYTES + 1 else size} bytes; "
                f"configuration files are limited to {MAX_CONFIG_BYTES} bytes"
            )
        return data
    except OSError as e:
        raise ConfigurationError(f"cannot read {what} {str(p)!r} ({e.strerror or e})") from None


def read_config_text(path: str | Path, what: str) -> str:
    """The text of ``path`` if it is a readable UTF-8 file within :data:`MAX_CONFIG_BYTES`; ConfigurationError else."""
    data = read_config_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{what} {str(path)!r} is not UTF-8 text") from None


def yaml_problem(text: str) -> str | None:
    """Why ``text`` is too big or too deep to compose as YAML, or None. Syntax errors are left to the parser."""
    if len(text) > MAX_CONFIG_BYTES:
        return f"the document is {len(text)} characters; configuration is limited to {MAX_CONFIG_BYTES}"
    depth = aliases = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_CONFIG_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else "?"
                    return f"nested more than {MAX_CONFIG_DEPTH} levels deep (line {line})"
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_CONFIG_ALIASES:
                    return f"more than {MAX_CONFIG_ALIASES} YAML aliases"
    except yaml.YAMLError:
        return None  # the real load reports the syntax error with its position
    return None


def load_yaml(text: str, what: str) -> Any:
    """``yaml.safe_load`` within the limits; ConfigurationError naming ``what`` otherwise."""
    problem = yaml_problem(text)
    if problem is not None:
        raise ConfigurationError(f"{what} is refused: {problem}")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigurationError(f"{what} is not valid YAML: {getattr(e, 'problem', None) or e}") from None


def load_json(text: str, what: str) -> Any:
    """``json.loads`` within the limits; ConfigurationError naming ``what`` otherwise."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigurationError(f"{what} is refused: larger than {MAX_CONFIG_BYTES} characters")
    try:
        return json.loads(text)
    except RecursionError:  # the C decoder raises it cleanly, before using the stack up
        raise ConfigurationError(f"{what} is refused: nested too deeply") from None
    except json.JSONDecodeError as e:
        raise ConfigurationError(f"{what} is not valid JSON: {e}") from None


__all__ = [
    "MAX_CONFIG_ALIASES",
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_DEPTH",
    "load_json",
    "load_yaml",
    "read_config_text",
    "yaml_problem",
]
