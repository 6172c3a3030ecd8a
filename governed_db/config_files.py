"""Limits for the YAML and JSON files governed_db reads (policies, policy tests, masking config, catalogs).

Configuration is small and shallow; a file that is not — a 5,000-deep nesting, a gigabyte, an alias bomb —
is refused with a clear message before a parser can recurse into a ``RecursionError`` or exhaust memory.
YAML is checked on the parser's event stream, which PyYAML produces without recursion; only then is the
document composed (recursively) into objects.
"""

from __future__ import annotations

import errno
import json
import os
import select
import stat
import time
from pathlib import Path
from typing import IO, Any

import yaml

from governed_db.errors import ConfigurationError

#: no configuration file needs more than this
MAX_CONFIG_BYTES = 1 << 20
#: seconds a pipe given as a file (``--key-file <(...)``) may take to be written and closed, in all
PIPE_DEADLINE = 10.0
#: nesting of mappings and lists (a policy needs about 6)
MAX_CONFIG_DEPTH = 64
#: YAML aliases (``*name``); a handful is reuse, thousands is an expansion bomb
MAX_CONFIG_ALIASES = 256


def open_regular_file(path: str | Path, what: str, *, pipes: bool = False) -> int:
    """A read-only descriptor of ``path`` if it is a regular file; ConfigurationError for anything else.

    Opened without blocking, then checked: ``open()`` of a FIFO waits for a writer for ever, and a device or
    socket is no file a user meant to pass (decisions 0316, 0327). The descriptor is blocking again on return.
    With ``pipes``, a pipe or FIFO is returned too, still non-blocking: :func:`read_config_bytes` reads it with a
    deadline (``--key-file <(pass show audit-key)``, decision 0333).
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise ConfigurationError(f"cannot read {what} {str(p)!r} ({getattr(e, 'strerror', None) or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigurationError(f"{what} {str(p)!r} is a directory; pass a file")
        if pipes and stat.S_ISFIFO(mode):
            return fd
        if not stat.S_ISREG(mode):
            raise ConfigurationError(f"{what} {str(p)!r} is not a regular file (a pipe, socket or device); "
                                     "pass a file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_output_file(path: str | Path, what: str) -> IO[str]:
    """``path`` opened for writing text (created, or emptied) if it is, or will be, a regular file;
    ConfigurationError else — a FIFO would wait for a reader for ever, a device is no file to keep."""
    p = Path(path)
    try:
        # not O_TRUNC: nothing is emptied before it is known to be a file
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, 0o666)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        if isinstance(e, OSError) and e.errno == errno.ENXIO:  # a FIFO nobody reads
            raise ConfigurationError(f"{what} {str(p)!r} is not a regular file (a pipe); pass a file") from None
        raise ConfigurationError(f"cannot write {what} {str(p)!r} ({getattr(e, 'strerror', None) or e})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigurationError(f"{what} {str(p)!r} is not a regular file (a pipe, socket or device); "
                                     "pass a file")
        os.set_blocking(fd, True)
        os.ftruncate(fd, 0)
    except OSError as e:
        os.close(fd)
        raise ConfigurationError(f"cannot write {what} {str(p)!r} ({e.strerror or e})") from None
    except BaseException:
        os.close(fd)
        raise
    return open(fd, "w", encoding="utf-8", newline="")


def read_config_bytes(path: str | Path, what: str) -> bytes:
    """The bytes of ``path`` if it is a readable regular file within :data:`MAX_CONFIG_BYTES`; ConfigurationError
    else."""
    p = Path(path)
    fd = open_regular_file(p, what, pipes=True)
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            return _read_pipe(fd, p, what)
        size = os.fstat(fd).st_size
        if size <= MAX_CONFIG_BYTES:
            # read at most one byte past the limit: a file may grow while it is read
            with open(fd, "rb", closefd=False) as f:
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
    finally:
        os.close(fd)


def _read_pipe(fd: int, p: Path, what: str) -> bytes:
    """A pipe's bytes up to its end, within :data:`PIPE_DEADLINE` seconds in all: a pipe with no writer (a FIFO
    nobody opened) or nothing in it is refused at once, one that never ends once the deadline passes."""
    deadline = time.monotonic() + PIPE_DEADLINE
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:  # a writer is there and has sent nothing more yet
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConfigurationError(
                    f"{what} {str(p)!r} is not a regular file: a pipe whose writer did not finish within "
                    f"{PIPE_DEADLINE:g} s; pass a file"
                ) from None
            select.select([fd], [], [], left)
            continue
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_CONFIG_BYTES:
            raise ConfigurationError(
                f"{what} {str(p)!r} is more than {MAX_CONFIG_BYTES} bytes; configuration files are limited to "
                f"{MAX_CONFIG_BYTES} bytes"
            )
    if not chunks:
        raise ConfigurationError(
            f"{what} {str(p)!r} is not a regular file: a pipe that gave nothing (no writer, or an empty one); pass "
            "a file, or a pipe something writes to"
        )
    return b"".join(chunks)


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
        raise ConfigurationError(f"{what} is not valid YAML: {yaml_message(e)}") from None


def yaml_message(e: yaml.YAMLError) -> str:
    """What is wrong, on one line (a ReaderError's text spans two: an error is one line, exit 2)."""
    return " ".join(str(getattr(e, "problem", None) or e).split())


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
    "open_output_file",
    "open_regular_file",
    "read_config_bytes",
    "read_config_text",
    "yaml_message",
    "yaml_problem",
]
