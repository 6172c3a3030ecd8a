"""The approval store: one SQL implementation, two engines (SQLite, PostgreSQL).

Every state change is a single transaction that reads the request row under a
write lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``SELECT ... FOR UPDATE``
plus a transaction-scoped advisory lock per statement key), checks the review
rules on what it read, and writes guarded by the state it read
(``UPDATE ... WHERE state = 'approved'``). Two reviewers racing, approve
against deny, execute against revoke, two executes of one one-time grant: the
database serializes them and exactly one outcome wins.

Observers (spans, notifications) are told about transitions only after the
transaction commits, through the ``emit`` callable each mutating call takes.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from governed_db.approvals.fingerprint import lock_key
from governed_db.approvals.model import ApprovalRequest, Review, ReviewPolicy
from governed_db.approvals.review import (
    ReviewRefused,
    Verdict,
    check_review,
    check_revoke,
    covers,
    outcome,
)
from governed_db.errors import GovernanceFault
from governed_db.identity import Identity

#: ``emit(transition, request_after, actor, comment)`` — called after commit
Emit = Callable[[str, ApprovalRequest, "Identity | None", "str | None"], None]
Outcome = Literal["consumed", "window", "pending", "denied", "created", "none"]


class StoreUnavailable(GovernanceFault):
    """The approval store could not be reached or used; statements needing approval are refused."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """What the store found for one execute that needs approval."""

    outcome: Outcome
    request: ApprovalRequest | None


_COLUMNS = (
    "id", "kind", "state", "requester", "requester_kind", "on_behalf_of", "environment", "dialect", "statement",
    "fingerprint", "statement_hash", "operations", "tables_", "rules", "reason", "review_policy", "grant_seconds",
    "created_at", "expires_at", "decided_at", "grant_expires_at", "closed_at", "closed_by", "close_comment",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS {requests} (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,
  requester TEXT NOT NULL, requester_kind TEXT NOT NULL, on_behalf_of TEXT NOT NULL,
  environment TEXT NOT NULL, dialect TEXT, statement TEXT NOT NULL, fingerprint TEXT, statement_hash TEXT,
  operations TEXT NOT NULL, tables_ TEXT NOT NULL, rules TEXT NOT NULL, reason TEXT,
  review_policy TEXT NOT NULL, grant_seconds DOUBLE PRECISION NOT NULL,
  created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
  decided_at DOUBLE PRECISION, grant_expires_at DOUBLE PRECISION,
  closed_at DOUBLE PRECISION, closed_by TEXT, close_comment TEXT
);
CREATE INDEX IF NOT EXISTS {index} ON {requests} (statement_hash, requester, environment);
CREATE TABLE IF NOT EXISTS {reviews} (
  request_id TEXT NOT NULL, reviewer TEXT NOT NULL, verdict TEXT NOT NULL, roles TEXT NOT NULL,
  verified INTEGER NOT NULL, comment TEXT, at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (request_id, reviewer)
);
CREATE TABLE IF NOT EXISTS {meta} (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class _Exec:
    """A cursor speaking one placeholder style; rows come back as dicts."""

    def __init__(self, cursor: Any, placeholder: str) -> None:
        self.cursor = cursor
        self.placeholder = placeholder

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.cursor.execute(sql.replace("?", self.placeholder) if self.placeholder != "?" else sql, tuple(params))
        return int(self.cursor.rowcount)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.run(sql, params)
        names = [d[0] for d in self.cursor.description]
        return [dict(zip(names, row, strict=True)) for row in self.cursor.fetchall()]


class SQLStore:
    """The transitions, in SQL both engines accept; subclasses supply connections and locks."""

    placeholder = "?"
    for_update = ""
    #: a display form of where the store lives (never carries a password)
    url: str = ""

    def __init__(self, tables: dict[str, str]) -> None:
        self.t = tables
        self.clock: Callable[[], float] = time.time
        self._ready = False
        self._ready_lock = threading.Lock()
        self._key: bytes | None = None

    # -- engine hooks ---------------------------------------------------------------------------
    def _connect(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transaction(self, conn: Any, write: bool) -> contextlib.AbstractContextManager[Any]:  # pragma: no cover
        raise NotImplementedError

    def _create_schema(self, ex: _Exec) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prepare(self, conn: Any) -> None:
        """Once per process, before the schema is created (outside any transaction)."""

    def _lock(self, ex: _Exec, key: int) -> None:
        """Serialize work on one statement key (SQLite's write lock already does)."""

    def _unavailable(self, exc: BaseException) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _operation(self) -> contextlib.AbstractContextManager[Any]:
        """Bounds one whole store operation (connect, schema, transaction) in time; engines that can hang do."""
        return contextlib.nullcontext()

    def _disconnect(self, conn: Any) -> None:
        conn.close()

    # -- plumbing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self, write: bool = True) -> Iterator[_Exec]:
        with self._operation():
            self._ensure()
            conn = self._open()
            try:
                with self._reachable(), self._transaction(conn, write) as cur:
                    yield _Exec(cur, self.placeholder)
            finally:
                self._disconnect(conn)

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """Turn the driver's "cannot reach the store" errors into :class:`StoreUnavailable` (fail closed)."""
        try:
            yield
        except (ReviewRefused, GovernanceFault):
            raise
        except Exception as e:
            if self._unavailable(e):
                raise StoreUnavailable(self._down_message(e)) from e
            raise

    def _open(self) -> Any:
        try:
            return self._connect()
        except Exception as e:
            raise StoreUnavailable(self._down_message(e)) from e

    def _down_message(self, e: BaseException) -> str:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return (
            f"the approval store at {self.url} is unreachable ({type(e).__name__}: {first}); statements that "
            "need approval are refused until it is back (fail closed). Check the store, or point "
            "GOVERNED_DB_APPROVALS / approvals={'store': ...} at a reachable one"
        )

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            conn = self._open()
            try:
                with self._reachable():
                    self._prepare(conn)
                    with self._transaction(conn, True) as cur:
                        self._create_schema(_Exec(cur, self.placeholder))
            finally:
                self._disconnect(conn)
            self._ready = True

    def hash_key(self) -> bytes:
        """The store's random key for statement hashes (created on first use, shared by all users)."""
        if self._key is None:
            with self._tx() as ex:
                ex.run(f"INSERT INTO {self.t['meta']} (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                       ("hash_key", secrets.token_hex(32)))
                value = ex.rows(f"SELECT value FROM {self.t['meta']} WHERE key = ?", ("hash_key",))[0]["value"]
            with self._row("hash_key", "key"):
                key = bytes.fromhex(value)
                if len(key) < 16:
                    raise ValueError("hash key too short")
            self._key = key
        return self._key

    # -- rows <-> requests ----------------------------------------------------------------------
    def _insert(self, ex: _Exec, r: ApprovalRequest) -> None:
        values = (
            r.id, r.kind, r.state, r.requester, r.requester_kind, r.on_behalf_of or "", r.environment, r.dialect,
            r.statement, r.fingerprint, r.statement_hash, json.dumps(list(r.operations)), json.dumps(list(r.tables)),
            json.dumps(list(r.rules)), r.reason, json.dumps(r.policy.to_dict()), r.grant_seconds, r.created_at,
            r.expires_at, r.decided_at, r.grant_expires_at, r.closed_at, r.closed_by, r.close_comment,
        )
        marks = ", ".join("?" for _ in _COLUMNS)
        ex.run(f"INSERT INTO {self.t['requests']} ({', '.join(_COLUMNS)}) VALUES ({marks})", values)

    def _requests(self, ex: _Exec, where: str, params: Sequence[Any], suffix: str = "") -> list[ApprovalRequest]:
        rows = ex.rows(f"SELECT * FROM {self.t['requests']} WHERE {where}{suffix}", params)
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = ", ".join("?" for _ in ids)
        reviews: dict[str, list[Review]] = {}
        for v in ex.rows(f"SELECT * FROM {self.t['reviews']} WHERE request_id IN ({marks}) ORDER BY at", ids):
            with self._row(v.get("request_id"), "review"):
                reviews.setdefault(v["request_id"], []).append(
                    Review(v["reviewer"], v["verdict"], _str_tuple(v["roles"]), bool(v["verified"]),
                           v["comment"], float(v["at"]))
                )
        out = []
        for r in rows:
            with self._row(r.get("id"), "request"):
                out.append(_to_request(r, tuple(reviews.get(r["id"], ()))))
        return out

    @contextlib.contextmanager
    def _row(self, row_id: Any, what: str) -> Iterator[None]:
        """A row that cannot be read back (edited by hand, damaged) is a GovernanceFault naming it: fail closed."""
        try:
            yield
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
            raise GovernanceFault(
                f"the approval store at {self.url} holds a corrupt {what} row (request {str(row_id)[:40]!r}: "
                f"{type(e).__name__}); statements it concerns are refused (fail closed). Inspect or remove the "
                "row in the store"
            ) from None

    def _load(self, ex: _Exec, request_id: str, *, lock: bool) -> ApprovalRequest | None:
        found = self._requests(ex, "id = ?", (request_id,), self.for_update if lock else "")
        return found[0] if found else None

    def _close(self, ex: _Exec, r: ApprovalRequest, state: str, now: float, by: str | None, comment: str | None,
               *, expect: Sequence[str]) -> ApprovalRequest:
        marks = ", ".join("?" for _ in expect)
        n = ex.run(
            f"UPDATE {self.t['requests']} SET state = ?, closed_at = ?, closed_by = ?, close_comment = ? "
            f"WHERE id = ? AND state IN ({marks})",
            (state, now, by, comment, r.id, *expect),
        )
        if n != 1:  # the row is locked, so this means a bug, not a race
            raise GovernanceFault(f"approval request {r.id} changed underneath a locked update")
        return r.with_state(state, closed_at=now, closed_by=by, close_comment=comment)  # type: ignore[arg-type]

    # -- reads ----------------------------------------------------------------------------------
    def get(self, request_id: str) -> ApprovalRequest | None:
        with self._tx(write=False) as ex:
            return self._load(ex, request_id.strip().lower(), lock=False)

    def list(self, *, pending: bool = False, limit: int = 200) -> list[ApprovalRequest]:
        with self._tx(write=False) as ex:
            if pending:
                return self._requests(ex, "state = 'pending' AND expires_at > ?", (self.clock(),),
                                      f" ORDER BY created_at DESC LIMIT {int(limit)}")
            return self._requests(ex, "1 = 1", (), f" ORDER BY created_at DESC LIMIT {int(limit)}")

    # -- writes ---------------------------------------------------------------------------------
    def create(self, request: ApprovalRequest, emit: Emit) -> ApprovalRequest:
        with self._tx() as ex:
            self._insert(ex, request)
        emit("requested", request, None, None)
        return request

    def resolve(
        self,
        *,
        statement_hash: str,
        requester: Identity,
        environment: str,
        operations: Sequence[str],
        tables: Sequence[str],
        create: Callable[[], ApprovalRequest | None] | None,
        emit: Emit,
    ) -> Resolution:
        """Consume a one-time grant, find a covering window, or find / file the pending request."""
        now = self.clock()
        # bound to the identity kind too: a grant made for agent "etl" does not serve a human or service "etl"
        who = (requester.subject, requester.kind, requester.on_behalf_of or "", environment)
        events: list[tuple[str, ApprovalRequest]] = []
        result = Resolution("none", None)
        with self._tx() as ex:
            self._lock(ex, lock_key(statement_hash, *who))
            match = "requester = ? AND requester_kind = ? AND on_behalf_of = ? AND environment = ?"
            grant = self._requests(
                ex, f"kind = 'statement' AND state = 'approved' AND statement_hash = ? AND {match} "
                "AND grant_expires_at > ?", (statement_hash, *who, now),
                f" ORDER BY created_at LIMIT 1{self.for_update}",
            )
            if grant:
                used = self._close(ex, grant[0], "consumed", now, requester.subject, None, expect=("approved",))
                events.append(("consumed", used))
                result = Resolution("consumed", used)
            else:
                windows = self._requests(
                    ex, f"kind = 'window' AND state = 'approved' AND {match} AND grant_expires_at > ?", (*who, now)
                )
                window = next((w for w in windows if covers(w, operations, tables)), None)
                if window is not None:
                    result = Resolution("window", window)
                else:
                    latest = self._requests(ex, f"kind = 'statement' AND statement_hash = ? AND {match}",
                                            (statement_hash, *who), " ORDER BY created_at DESC LIMIT 1")
                    last = latest[0] if latest else None
                    state = last.effective_state(now) if last else None
                    if last is not None and state == "pending":
                        result = Resolution("pending", last)
                    elif last is not None and state == "denied" and now < last.expires_at:
                        result = Resolution("denied", last)
                    else:
                        if last is not None and state == "expired" and last.state in ("pending", "approved"):
                            events.append(("expired", self._close(ex, last, "expired", now, None, None,
                                                                  expect=(last.state,))))
                        new = create() if create is not None else None
                        if new is not None:
                            self._insert(ex, new)
                            events.append(("requested", new))
                            result = Resolution("created", new)
        for name, req in events:
            emit(name, req, requester if name == "consumed" else None, None)
        return result

    def review(self, request_id: str, reviewer: Identity, verdict: Verdict, comment: str | None,
               emit: Emit) -> ApprovalRequest:
        now = self.clock()
        refusal: ReviewRefused | None = None
        events: list[tuple[str, ApprovalRequest]] = []
        after: ApprovalRequest | None = None
        with self._tx() as ex:
            req = self._load(ex, request_id.strip().lower(), lock=True)
            if req is None:
                refusal = ReviewRefused(f"no approval request with id {request_id!r}; list them with "
                                        "`governed-db approvals list --pending`", code="unknown")
            else:
                try:
                    check_review(req, reviewer, verdict, now)
                except ReviewRefused as e:
                    refusal = e
                    if e.code == "expired" and req.state in ("pending", "approved"):
                        events.append(("expired", self._close(ex, req, "expired", now, None, None,
                                                              expect=(req.state,))))
                else:
                    after = self._record_verdict(ex, req, reviewer, verdict, comment, now)
                    events.append((after.state if after.state != "pending" else "reviewed", after))
        for name, r in events:
            emit(name, r, reviewer if name != "expired" else None, comment if name != "expired" else None)
        if refusal is not None:
            raise refusal
        assert after is not None
        return after

    def _record_verdict(self, ex: _Exec, req: ApprovalRequest, reviewer: Identity, verdict: Verdict,
                        comment: str | None, now: float) -> ApprovalRequest:
        ex.run(
            f"INSERT INTO {self.t['reviews']} (request_id, reviewer, verdict, roles, verified, comment, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (req.id, reviewer.subject, verdict, json.dumps(list(reviewer.roles)), int(reviewer.verified),
             comment, now),
        )
        review = Review(reviewer.subject, verdict, reviewer.roles, reviewer.verified, comment, now)
        state = outcome(req, verdict)
        reviews = (*req.reviews, review)
        if state == "pending":
            return req.with_state("pending", reviews=reviews)
        grant_until = now + req.grant_seconds if state == "approved" else None
        n = ex.run(
            f"UPDATE {self.t['requests']} SET state = ?, decided_at = ?, grant_expires_at = ? "
            "WHERE id = ? AND state = 'pending'",
            (state, now, grant_until, req.id),
        )
        if n != 1:
            raise GovernanceFault(f"approval request {req.id} changed underneath a locked update")
        return req.with_state(state, decided_at=now, grant_expires_at=grant_until, reviews=reviews)

    def revoke(self, request_id: str, actor: Identity, comment: str | None, emit: Emit) -> ApprovalRequest:
        now = self.clock()
        with self._tx() as ex:
            req = self._load(ex, request_id.strip().lower(), lock=True)
            if req is None:
                raise ReviewRefused(f"no approval request with id {request_id!r}", code="unknown")
            check_revoke(req, actor, now)
            after = self._close(ex, req, "revoked", now, actor.subject, comment, expect=("pending", "approved"))
        emit("revoked", after, actor, comment)
        return after


#: JSON columns hold short flat lists; anything nested deeper is damage, not data
_MAX_JSON_CHARS = 1 << 20


def _json(text: Any) -> Any:
    if not isinstance(text, str) or len(text) > _MAX_JSON_CHARS:
        raise ValueError("not a JSON text of a sane size")
    return json.loads(text)


def _str_tuple(text: Any) -> tuple[str, ...]:
    value = _json(text)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("not a JSON list of strings")
    return tuple(value)


def _to_request(row: dict[str, Any], reviews: tuple[Review, ...]) -> ApprovalRequest:
    def num(key: str) -> float | None:
        return None if row[key] is None else float(row[key])

    return ApprovalRequest(
        id=row["id"], kind=row["kind"], state=row["state"], requester=row["requester"],
        requester_kind=row["requester_kind"], on_behalf_of=row["on_behalf_of"] or None,
        environment=row["environment"], dialect=row["dialect"], statement=row["statement"],
        fingerprint=row["fingerprint"], statement_hash=row["statement_hash"],
        operations=_str_tuple(row["operations"]), tables=_str_tuple(row["tables_"]),
        rules=_str_tuple(row["rules"]), reason=row["reason"],
        policy=ReviewPolicy.from_dict(_json(row["review_policy"])), grant_seconds=float(row["grant_seconds"]),
        created_at=float(row["created_at"]), expires_at=float(row["expires_at"]), decided_at=num("decided_at"),
        grant_expires_at=num("grant_expires_at"), closed_at=num("closed_at"), closed_by=row["closed_by"],
        close_comment=row["close_comment"], reviews=reviews,
    )
