"""A small web app that adopts governed_db by swapping only its connect() call.

Run:  python examples/webapp.py            # serves http://127.0.0.1:8000 until Ctrl-C
      python examples/webapp.py --selftest # starts on a free port, calls each endpoint, prints, exits

Standard library only (http.server). The application code — handlers, SQL,
error handling — is what it was before governance; the diff is the body of
``connect()``. Refusals are ``sqlite3.ProgrammingError`` subclasses, so the
app's existing ``except sqlite3.Error`` path turns them into an HTTP error
whose body says which rule refused and what to do next.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import governed_db

DB = Path(tempfile.gettempdir()) / "governed-db-webapp-example.db"  # --db overrides


def connect() -> sqlite3.Connection:
    # before: return sqlite3.connect(DB)
    return governed_db.wrap(  # type: ignore[no-any-return]
        sqlite3.connect(DB),
        identity=governed_db.Identity("orders-web", kind="service"),
        environment="production",
    )


# -- everything below is the application as it was -------------------------------------------------
def init_db() -> None:
    raw = sqlite3.connect(DB)  # set-up runs as the deployment, not through the app's connect()
    raw.executescript(
        """
        DROP TABLE IF EXISTS customers;
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, city TEXT);
        INSERT INTO customers VALUES (1, 'Ada Lovelace', 'ada@example.com', 'London'),
                                     (2, 'Alan Turing', 'alan@example.com', 'Manchester');
        """
    )
    raw.commit()
    raw.close()


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        conn = connect()
        try:
            if self.path == "/customers":
                rows = conn.execute("SELECT id, name, email, city FROM customers ORDER BY id").fetchall()
                self._send(200, [dict(zip(("id", "name", "email", "city"), r, strict=True)) for r in rows])
            else:
                self._send(404, {"error": "not found"})
        finally:
            conn.close()

    def do_POST(self) -> None:
        conn = connect()
        try:
            if self.path == "/admin/purge":
                conn.execute("DELETE FROM customers")
                conn.commit()
                self._send(200, {"purged": True})
            else:
                self._send(404, {"error": "not found"})
        except sqlite3.Error as e:  # the app's existing error path; a refusal is a sqlite3.ProgrammingError
            self._send(403 if isinstance(e, governed_db.GuardrailViolation) else 500, {"error": str(e)})
        finally:
            conn.close()

    def log_message(self, format: str, *args: Any) -> None:  # keep the example's output readable
        pass


def selftest() -> list[tuple[str, int, Any]]:
    """Serve on a free port, call each endpoint once, stop; returns (request, status, body)."""
    init_db()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    results = []
    try:
        for method, path in (("GET", "/customers"), ("POST", "/admin/purge"), ("GET", "/customers")):
            request = urllib.request.Request(base + path, method=method, data=b"" if method == "POST" else None)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    results.append((f"{method} {path}", response.status, json.loads(response.read())))
            except urllib.error.HTTPError as e:
                results.append((f"{method} {path}", e.code, json.loads(e.read())))
    finally:
        server.shutdown()
        server.server_close()
    return results


def main() -> None:
    global DB
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--selftest", action="store_true")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", type=Path, help=f"SQLite file the app uses (recreated; default {DB})")
    args = parser.parse_args()
    DB = args.db or DB
    if args.selftest:
        for request, status, body in selftest():
            print(request, status, json.dumps(body))
        return
    init_db()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"serving on http://127.0.0.1:{args.port} (GET /customers, POST /admin/purge)")
    server.serve_forever()


if __name__ == "__main__":
    main()
