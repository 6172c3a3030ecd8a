"""Who a statement runs for: :class:`Identity` and :func:`acting_as`.

Resolution order for one statement (first that applies wins):

1. the innermost :func:`acting_as` block (a context variable, so each thread
   and each asyncio task sees its own);
2. the ``identity=`` given to :func:`governed_db.wrap` — an :class:`Identity`,
   or a callable returning one (or returning a token, see
   :mod:`governed_db.tokens`);
3. ``GOVERNED_DB_IDENTITY`` / ``GOVERNED_DB_TOKEN`` read when the connection
   was wrapped;
4. the operating-system user, as a self-declared human.
"""

from __future__ import annotations

import contextlib
import getpass
import inspect
import json
import os
import sys
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import FrameType, MappingProxyType
from typing import Any, Literal

from governed_db.errors import ConfigurationError

IdentityKind = Literal["human", "agent", "service"]
KINDS: tuple[str, ...] = ("human", "agent", "service")

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True, init=False, eq=False)
class Identity:
    """A principal: a human, an AI agent or a service, possibly acting for someone.

    ``verified`` is True only for identities built from a token the identity
    provider signed (:func:`governed_db.identity_from_token`); ``issuer`` and
    ``token_id`` record that provenance. The token itself is never kept.
    """

    subject: str
    kind: IdentityKind
    on_behalf_of: str | None
    roles: tuple[str, ...]
    attributes: Mapping[str, str] = field(compare=False)
    verified: bool
    issuer: str | None
    token_id: str | None
    _attr_items: tuple[tuple[str, str], ...] = field(repr=False)
    _key: tuple[Any, ...] = field(repr=False)
    _hash: int = field(repr=False)

    def __init__(
        self,
        subject: str,
        *,
        kind: IdentityKind = "human",
        on_behalf_of: str | None = None,
        roles: tuple[str, ...] | list[str] | frozenset[str] = (),
        attributes: Mapping[str, Any] | None = None,
        verified: bool = False,
        issuer: str | None = None,
        token_id: str | None = None,
    ) -> None:
        if not isinstance(subject, str) or not subject.strip():
            raise ConfigurationError(
                f"Identity subject must be a non-empty string, got {subject!r}: "
                "pass who runs the statement, e.g. Identity('alice') or Identity('report-bot', kind='agent')"
            )
        if kind not in KINDS:
            raise ConfigurationError(f"Identity kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if on_behalf_of is not None and (not isinstance(on_behalf_of, str) or not on_behalf_of.strip()):
            raise ConfigurationError(f"on_behalf_of must be a non-empty string or None, got {on_behalf_of!r}")
        if isinstance(roles, str):
            raise ConfigurationError(f"roles must be a sequence of role names, not the string {roles!r}")
        role_tuple = tuple(dict.fromkeys(str(r) for r in roles))
        items = tuple(sorted((str(k), str(v)) for k, v in (attributes or {}).items()))
        set_ = object.__setattr__
        set_(self, "subject", subject.strip())
        set_(self, "kind", kind)
        set_(self, "on_behalf_of", on_behalf_of.strip() if on_behalf_of else None)
        set_(self, "roles", role_tuple)
        set_(self, "attributes", MappingProxyType(dict(items)) if items else _EMPTY)
        set_(self, "verified", bool(verified))
        set_(self, "issuer", issuer)
        set_(self, "token_id", token_id)
        set_(self, "_attr_items", items)
        # identities key several per-statement caches: compare and hash a precomputed key
        key = (self.subject, kind, self.on_behalf_of, role_tuple, items, self.verified, issuer, token_id)
        set_(self, "_key", key)
        set_(self, "_hash", hash(key))

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Identity):
            return NotImplemented
        return self._hash == other._hash and self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        return (_make_identity, (self.subject, self.to_dict()))

    @property
    def provenance(self) -> str:
        return "verified" if self.verified else "self-declared"

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "kind": self.kind,
            "on_behalf_of": self.on_behalf_of,
            "roles": list(self.roles),
            "attributes": dict(self.attributes),
            "verified": self.verified,
            "issuer": self.issuer,
            "token_id": self.token_id,
        }

    @classmethod
    def parse(cls, text: str) -> Identity:
        """Parse the ``GOVERNED_DB_IDENTITY`` forms.

        * JSON: ``{"subject": "report-bot", "kind": "agent", "on_behalf_of": "alice", "roles": ["analyst"]}``
        * short: ``agent:report-bot`` or ``agent:report-bot@alice`` (kind, subject, on whose behalf),
          optionally followed by ``;roles=analyst,reader``; a bare ``alice`` is a human.
        """
        text = text.strip()
        if not text:
            raise ConfigurationError("empty identity: set GOVERNED_DB_IDENTITY to e.g. 'agent:report-bot@alice'")
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise ConfigurationError(f"identity JSON is not valid: {e}") from None
            except RecursionError:
                raise ConfigurationError("identity JSON is nested too deeply to be an identity") from None
            if not isinstance(data, dict) or "subject" not in data:
                raise ConfigurationError("identity JSON must be an object with at least a 'subject' key")
            unknown = set(data) - {"subject", "kind", "on_behalf_of", "roles", "attributes"}
            if unknown:
                raise ConfigurationError(f"identity JSON has unknown keys {sorted(unknown)}")
            return cls(
                data["subject"],
                kind=data.get("kind", "human"),
                on_behalf_of=data.get("on_behalf_of"),
                roles=tuple(data.get("roles", ())),
                attributes=data.get("attributes"),
            )
        head, _, tail = text.partition(";")
        roles: tuple[str, ...] = ()
        for part in filter(None, (p.strip() for p in tail.split(";"))):
            key, eq, value = part.partition("=")
            if not eq or key.strip() != "roles":
                raise ConfigurationError(f"identity option {part!r} not understood; only 'roles=a,b' is")
            roles = tuple(r.strip() for r in value.split(",") if r.strip())
        kind = "human"
        if ":" in head:
            kind, _, head = head.partition(":")
            kind = kind.strip()
        subject, _, behalf = head.partition("@")
        return cls(subject, kind=kind, on_behalf_of=behalf or None, roles=roles)  # type: ignore[arg-type]


def _make_identity(subject: str, data: dict[str, Any]) -> Identity:
    data = dict(data)
    data.pop("subject", None)
    data["roles"] = tuple(data.get("roles", ()))
    return Identity(subject, **data)


#: The identities set by :func:`acting_as` in this context, each with the frame of the ``with`` block that set
#: it. Only entries whose frame is on the running stack count: a generator suspended inside ``acting_as`` (or
#: one closed from another thread, where resetting the context variable fails) leaves an entry behind in its
#: caller's context, but its frame is not on the caller's stack, so the caller never acts as that identity.
_current: ContextVar[tuple[tuple[Identity, FrameType], ...]] = ContextVar("governed_db_identity", default=())


class acting_as(contextlib.ContextDecorator):  # a context manager, named like the function it was
    """Run the block's statements as ``identity`` (per thread / asyncio task; never leaks out of generators)."""

    def __init__(self, identity: Identity) -> None:
        if not isinstance(identity, Identity):
            raise ConfigurationError(
                f"acting_as() takes an Identity, got {type(identity).__name__}; "
                "build one with Identity(...) or identity_from_token(...)"
            )
        self.identity = identity
        self._tokens: list[Token[tuple[tuple[Identity, FrameType], ...]]] = []

    def __enter__(self) -> Identity:
        frame = sys._getframe(1)  # the with-block's frame (or ContextDecorator's wrapper, for the call)
        self._tokens.append(_current.set((*_current.get(), (self.identity, frame))))
        return self.identity

    def __exit__(self, *exc: object) -> None:
        token = self._tokens.pop()
        # closed from another thread or context (a generator's close()) reset() raises: nothing of ours is set
        # in this context, and the entry left in the other one is inert once its frame has left every stack
        with contextlib.suppress(ValueError):
            _current.reset(token)


def current_identity() -> Identity | None:
    """The identity of the innermost :func:`acting_as` block that is running in this thread or task.

    Blocks are ranked by where their frame sits on the running stack (the deepest wins, so a generator's own
    block applies inside it). A block in a generator or async generator counts only while that frame is
    running; a block in a plain function or coroutine whose frame is not on this stack still applies (work
    handed to a thread with the context copied, ``asyncio.to_thread``), after any block that is on the stack.
    """
    entries = _current.get()
    if not entries:
        return None
    depth: dict[int, int] = {}
    frame: FrameType | None = sys._getframe(1)
    i = 0
    while frame is not None:
        depth.setdefault(id(frame), i)
        frame, i = frame.f_back, i + 1
    best: tuple[int, Identity] | None = None
    fallback: Identity | None = None
    for ident, owner in entries:
        at = depth.get(id(owner))
        if at is not None:
            if best is None or at <= best[0]:
                best = (at, ident)
        elif not owner.f_code.co_flags & _SUSPENDABLE:
            fallback = ident
    return best[1] if best is not None else fallback


_SUSPENDABLE = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR


def os_identity() -> Identity:
    """The operating-system user as a self-declared human (the last resort)."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return Identity(user or "unknown", kind="human", attributes={"source": "os-user"})


def identity_from_env(environ: Mapping[str, str] | None = None) -> Identity | None:
    env = os.environ if environ is None else environ
    raw = env.get("GOVERNED_DB_IDENTITY")
    if raw:
        try:
            return Identity.parse(raw)
        except ConfigurationError as e:
            raise ConfigurationError(f"GOVERNED_DB_IDENTITY: {e}") from None
    return None
