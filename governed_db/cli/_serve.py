"""Serving an ASGI app from a command: the listening socket is bound here, before uvicorn starts.

uvicorn reports an address it cannot bind (in use, not on this host, not permitted) with a log line and
``sys.exit(3)`` — an exit code outside the CLI's 0/1/2. Binding first turns that into an ``OSError`` the
command group reports as bad input (exit 2, one line).
"""

from __future__ import annotations

import socket
from typing import Any

from governed_db.errors import ConfigurationError


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening: uvicorn's server does that), or ConfigurationError."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as e:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {e}") from None
    if not infos:  # pragma: no cover - getaddrinfo raises instead
        raise ConfigurationError(f"cannot listen on {host}:{port}: the address does not resolve")
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.set_inheritable(True)
    except OSError as e:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def serve(app: Any, *, host: str, port: int) -> None:
    """Run ``app`` on uvicorn at ``host:port``; an address that cannot be bound is a ConfigurationError."""
    import uvicorn

    sock = listen(host, port)
    try:
        config = uvicorn.Config(app, host=host, port=port, log_level="warning")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


__all__ = ["listen", "serve"]
