"""One time limit for a whole external call on the statement path (JWKS fetch, approval store query).

A socket timeout bounds each read, not the call: a server that sends one byte
a second, or accepts a connection and never answers, keeps a per-read timeout
from ever firing. A :class:`Deadline` bounds the total. Code doing the I/O
registers a *cut* for each connection it opens (shut its socket down); when the
deadline passes, a watchdog thread runs the cuts, the blocked read returns at
once with an error, and the caller turns that into a refusal naming the
deadline. Cuts and the connection's close are serialized by one lock, so a cut
never reaches a file descriptor that was closed (and perhaps reused) meanwhile.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

Cut = Callable[[], None]


class Deadline:
    """``seconds`` from now; :meth:`watch` registers cuts that run when it passes (once, in a watchdog)."""

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"a deadline needs a positive number of seconds, got {seconds!r}")
        self.seconds = float(seconds)
        self.expires = time.monotonic() + self.seconds
        self.expired = False
        self._lock = threading.Lock()
        self._cuts: dict[int, Cut] = {}
        self._next = 0
        self._timer: threading.Timer | None = None
        self._done = False

    def remaining(self) -> float:
        """Seconds left (0.0 once passed)."""
        return max(0.0, self.expires - time.monotonic())

    def watch(self, cut: Cut) -> int:
        """Run ``cut`` when the deadline passes (at once if it has); returns a handle for :meth:`release`."""
        with self._lock:
            if self.expired:
                _quietly(cut)
                return -1
            handle = self._next
            self._next += 1
            self._cuts[handle] = cut
            if self._timer is None and not self._done:
                self._timer = threading.Timer(self.remaining(), self._fire)
                self._timer.daemon = True
                self._timer.start()
            return handle

    def release(self, handle: int, close: Callable[[], None] | None = None) -> None:
        """Forget a cut (its connection is done), running ``close`` under the lock so no cut races it."""
        with self._lock:
            self._cuts.pop(handle, None)
            if close is not None:
                _quietly(close)

    def finish(self) -> None:
        """The call is over: stop the watchdog."""
        with self._lock:
            self._done = True
            self._cuts.clear()
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def expire(self) -> None:
        """Pass the deadline now: run every registered cut."""
        self._fire()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            cuts, self._cuts = list(self._cuts.values()), {}
            for cut in cuts:
                _quietly(cut)

    @contextlib.contextmanager
    def running(self) -> Iterator[Deadline]:
        try:
            yield self
        finally:
            self.finish()


def shutdown_socket(sock: socket.socket | None) -> None:
    """Make a blocked read on ``sock`` return at once (bypasses TLS: the TCP connection is shut down)."""
    if sock is not None and sock.fileno() != -1:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def shutdown_fd(fd: int) -> None:
    """:func:`shutdown_socket` for a socket known only by its descriptor (libpq's)."""
    if fd < 0:
        return
    dup = socket.socket(fileno=os.dup(fd))
    try:
        dup.shutdown(socket.SHUT_RDWR)
    finally:
        dup.close()


def _deadline_connection(base: type[http.client.HTTPConnection], deadline: Deadline) -> type[Any]:
    """``base`` whose sockets the deadline's watchdog shuts down when the whole fetch runs out of time."""

    class DeadlineConnection(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            create: Any = getattr(self, "_create_connection")  # noqa: B009 - typeshed does not declare it

            def create_connection(*a: Any, **kw: Any) -> socket.socket:
                sock: socket.socket = create(*a, **kw)
                deadline.watch(lambda: shutdown_socket(sock))
                return sock

            self._create_connection = create_connection

        def connect(self) -> None:
            super().connect()
            # after TLS, the raw socket is detached: cut the wrapped one (the response reads through it)
            sock = self.sock
            deadline.watch(lambda: shutdown_socket(sock))

    return DeadlineConnection


class _DeadlineHTTP(urllib.request.HTTPHandler):
    """``http://`` through connections the deadline can cut."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: Any) -> Any:
        return self.do_open(_deadline_connection(http.client.HTTPConnection, self.deadline), req)  # type: ignore[arg-type]


class _DeadlineHTTPS(urllib.request.HTTPSHandler):
    """``https://`` through connections the deadline can cut."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: Any) -> Any:
        return self.do_open(_deadline_connection(http.client.HTTPSConnection, self.deadline), req)  # type: ignore[arg-type]


def deadline_handlers(deadline: Deadline) -> list[urllib.request.BaseHandler]:
    """urllib handlers whose connections ``deadline`` shuts down when it passes (for ``build_opener``)."""
    return [_DeadlineHTTP(deadline), _DeadlineHTTPS(deadline)]


def _quietly(fn: Callable[[], None]) -> None:
    with contextlib.suppress(OSError):  # already closed or never connected: nothing left to cut
        fn()


__all__ = ["Deadline", "deadline_handlers", "shutdown_fd", "shutdown_socket"]
