"""``governed-db demo``: an AI agent and a human against a small shop database with PII.

Everything runs on an embedded SQLite database the demo creates in a fresh
directory: no server, no configuration, no network. Each scene is a real call
through a governed connection; the output shows what the caller actually got.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governed_db.identity import Identity

_FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis", "Radia", "Tim"]
_LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton", "Ritchie"]
_CITIES = ["Lisbon", "Oslo", "Austin", "Kyoto", "Nairobi", "Toronto", "Lyon", "Pune"]

AGENT = Identity("support-bot", kind="agent", on_behalf_of="alice@shop.example", roles=("support",))
REVIEWER = Identity("dana", kind="human", roles=("dba",))

#: The demo's policy, written next to the database so people can read and edit it.
DEMO_POLICY = """\
# governed_db demo policy. The built-in rule catalog applies (production semantics);
# on top of it: an AI agent's writes in production wait for a human's approval.
overrides:
  - when: {kind: agent, environment: production}
    rules: {write-statement: require_approval}
"""


@dataclass
class Scene:
    """What one step of the demo did and what the caller got back."""

    title: str
    who: Identity
    sql: str
    outcome: str  # "rows", "refused", "approval", "ok"
    columns: Sequence[str] = ()
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    message: str = ""
    rules: tuple[str, ...] = ()
    remedy: str | None = None
    request_id: str | None = None


def create_shop(path: Path, *, customers: int = 40, seed: int = 7) -> None:
    """A realistic little schema with PII and a secret, filled with deterministic fake data."""
    rnd = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE customers (
            id INTEGER PRIMARY KEY, full_name TEXT, email TEXT, phone TEXT, ssn TEXT,
            date_of_birth TEXT, city TEXT, notes TEXT);
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
            total REAL, status TEXT, created_at TEXT);
        CREATE TABLE integrations (id INTEGER PRIMARY KEY, service TEXT, api_key TEXT);
        """
    )
    for i in range(1, customers + 1):
        first, last = rnd.choice(_FIRST), rnd.choice(_LAST)
        email = f"{first}.{last}{i}@mail.example".lower()
        phone = f"+1-555-{rnd.randint(200, 999)}-{rnd.randint(1000, 9999)}"
        ssn = f"{rnd.randint(100, 665):03d}-{rnd.randint(10, 99):02d}-{rnd.randint(1000, 9999):04d}"
        dob = f"{rnd.randint(1950, 2004)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        notes = rnd.choice(
            [
                "Prefers e-mail contact.",
                f"Asked to be reached at {first.lower()}.alt{i}@mail.example instead.",
                "Called about a late delivery.",
                f"Callback number {phone}.",
            ]
        )
        conn.execute(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (i, f"{first} {last}", email, phone, ssn, dob, rnd.choice(_CITIES), notes),
        )
    for j in range(1, customers * 3 + 1):
        conn.execute(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
            (
                j,
                rnd.randint(1, customers),
                round(rnd.uniform(5, 400), 2),
                rnd.choice(["paid", "shipped", "delivered", "refunded"]),
                f"2026-{rnd.randint(1, 11):02d}-{rnd.randint(1, 28):02d}",
            ),
        )
    # a credential-shaped value generated on the spot: nothing secret lives in this source file
    key = "sk_live_" + "".join(rnd.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(24))
    conn.execute("INSERT INTO integrations VALUES (1, 'payments', ?)", (key,))
    conn.commit()
    conn.close()


@dataclass
class DemoResult:
    workdir: Path
    database: Path
    audit: Path
    approvals: Path
    scenes: list[Scene]
    records: list[dict[str, Any]]
    chain_ok: bool
    chain_summary: str


def _query(conn: Any, title: str, who: Identity, sql: str) -> Scene:
    from governed_db.errors import ApprovalRequired, GuardrailViolation
    from governed_db.identity import acting_as

    with acting_as(who):
        try:
            cur = conn.execute(sql)
            rows = [tuple(r) for r in cur.fetchall()]
            columns = [d[0] for d in (cur.description or ())]
        except ApprovalRequired as e:
            return Scene(title, who, sql, "approval", message=str(e), rules=e.rules, remedy=e.approve_command,
                         request_id=e.request_id)
        except GuardrailViolation as e:
            return Scene(title, who, sql, "refused", message=str(e), rules=e.rules, remedy=e.remedy)
    if columns:
        return Scene(title, who, sql, "rows", columns=columns, rows=rows)
    return Scene(title, who, sql, "ok", message=f"{cur.rowcount} row(s) changed")


def run_demo(workdir: Path) -> DemoResult:
    """Create the shop, play the scenes, read back and verify the activity record."""
    import governed_db
    from governed_db.audit import read_records, verify

    workdir.mkdir(parents=True, exist_ok=True)
    db, audit, approvals = workdir / "shop.db", workdir / "audit.jsonl", workdir / "approvals.db"
    policy = workdir / "policy.yaml"
    from governed_db.audit import delete_store

    delete_store(audit)  # the store *and* its anchor: a store deleted alone looks tampered with
    for p in (db, policy):  # the approvals store is kept: earlier requests were consumed or expire
        if p.exists():
            p.unlink()
    create_shop(db)
    policy.write_text(DEMO_POLICY, encoding="utf-8")
    conn = governed_db.wrap(
        sqlite3.connect(db), identity=AGENT, environment="production", audit=audit, policy=policy,
        approvals={"store": str(approvals), "reviewer_roles": ["dba"]},
    )
    scenes = [
        _query(conn, "The agent looks around the schema", AGENT,
               "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"),
        _query(conn, "The agent reads customers: PII comes back masked", AGENT,
               "SELECT id, full_name, email, phone, ssn, city FROM customers ORDER BY id LIMIT 4"),
        _query(conn, "Aliases, expressions and encodings don't slip past masking", AGENT,
               "SELECT id, upper(email) AS contact, hex(ssn) AS x, substr(phone, 1, 20) AS p, notes "
               "FROM customers ORDER BY id LIMIT 4"),
        _query(conn, "Secrets are masked too", AGENT, "SELECT service, api_key FROM integrations"),
        _query(conn, "Non-sensitive data comes back exactly", AGENT,
               "SELECT c.city, count(*) AS orders, round(sum(o.total), 2) AS revenue FROM orders o "
               "JOIN customers c ON c.id = o.customer_id GROUP BY c.city ORDER BY revenue DESC LIMIT 4"),
        _query(conn, "The agent tries to drop a table", AGENT, "DROP TABLE customers"),
        _query(conn, "A second statement smuggled after a comment", AGENT,
               "SELECT 1; -- harmless?\nDELETE FROM orders"),
    ]
    bulk = "UPDATE orders SET status = 'refunded' WHERE created_at < '2026-02-01'"
    needs = _query(conn, "A bulk refund needs a human's approval", AGENT, bulk)
    scenes.append(needs)
    if needs.request_id:
        from governed_db.approvals import approve

        approve(needs.request_id, reviewer=REVIEWER, comment="refunds for the January outage", store=str(approvals),
                audit=audit)
        scenes.append(_query(conn, "Approved by dana (dba): the same call now runs", AGENT, bulk))
    conn.close()
    records = [r for r in read_records(audit) if r.get("type") == "span"]
    result = verify(audit)
    summary = (
        f"{result.records} records, hash chain verified"
        if result.ok
        else f"first bad record: {result.first_bad}"
    )
    return DemoResult(workdir, db, audit, approvals, scenes, records, result.ok, summary)
