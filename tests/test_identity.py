"""Identity: construction, parsing of GOVERNED_DB_IDENTITY, acting_as across threads and tasks."""

from __future__ import annotations

import asyncio
import pickle
import threading
from typing import Any

import pytest

from governed_db import ConfigurationError, Identity, acting_as, current_identity
from governed_db.identity import identity_from_env, os_identity


def test_identity_is_frozen_hashable_and_normalised() -> None:
    """Identities are values: equal when their fields are, usable as dict keys, immutable."""
    a = Identity("bot", kind="agent", on_behalf_of="alice", roles=["reader", "reader", "analyst"])
    b = Identity("bot", kind="agent", on_behalf_of="alice", roles=("reader", "analyst"))
    assert a == b and hash(a) == hash(b)
    assert a.roles == ("reader", "analyst")
    with pytest.raises(AttributeError):
        a.subject = "x"  # type: ignore[misc]
    assert {a: 1}[b] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"subject": ""}, "non-empty"),
        ({"subject": None}, "non-empty"),
        ({"subject": "x", "kind": "robot"}, "kind must be one of"),
        ({"subject": "x", "roles": "admin"}, "not the string"),
        ({"subject": "x", "on_behalf_of": " "}, "on_behalf_of"),
    ],
)
def test_bad_identity_is_a_clear_error(kwargs: dict, message: str) -> None:
    """Bad identity input names the problem."""
    subject = kwargs.pop("subject")
    with pytest.raises(ConfigurationError, match=message):
        Identity(subject, **kwargs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice", Identity("alice")),
        ("agent:report-bot", Identity("report-bot", kind="agent")),
        ("agent:report-bot@alice", Identity("report-bot", kind="agent", on_behalf_of="alice")),
        ("service:etl;roles=loader,reader", Identity("etl", kind="service", roles=("loader", "reader"))),
        (
            '{"subject": "bot", "kind": "agent", "on_behalf_of": "bob", "roles": ["analyst"]}',
            Identity("bot", kind="agent", on_behalf_of="bob", roles=("analyst",)),
        ),
    ],
)
def test_parse_identity_forms(text: str, expected: Identity) -> None:
    """GOVERNED_DB_IDENTITY accepts the short form and JSON."""
    assert Identity.parse(text) == expected


@pytest.mark.parametrize("text", ["", "{not json", '{"kind": "agent"}', '{"subject": "x", "colour": 1}', "x;color=red"])
def test_parse_identity_rejects_bad_text(text: str) -> None:
    """Unparseable identity text is refused rather than guessed."""
    with pytest.raises(ConfigurationError):
        Identity.parse(text)


def test_identity_from_env_names_the_variable() -> None:
    """An error in the environment variable says which variable is wrong."""
    assert identity_from_env({}) is None
    assert identity_from_env({"GOVERNED_DB_IDENTITY": "agent:x"}) == Identity("x", kind="agent")
    with pytest.raises(ConfigurationError, match="GOVERNED_DB_IDENTITY"):
        identity_from_env({"GOVERNED_DB_IDENTITY": "robot:x"})


def test_identity_pickles() -> None:
    """Identities survive pickling (multiprocessing, caches)."""
    ident = Identity("bot", kind="agent", roles=("r",), attributes={"team": "data"}, verified=True, issuer="https://i")
    again = pickle.loads(pickle.dumps(ident))
    assert again == ident and again.attributes == {"team": "data"} and again.verified


def test_os_identity_is_self_declared_human() -> None:
    """The last-resort identity is the OS user, marked self-declared."""
    ident = os_identity()
    assert ident.kind == "human" and not ident.verified and ident.provenance == "self-declared"


def test_acting_as_nests_and_restores() -> None:
    """acting_as sets the identity for the block and restores the outer one after it, even on error."""
    a, b = Identity("a"), Identity("b")
    assert current_identity() is None
    with acting_as(a):
        assert current_identity() is a
        with pytest.raises(RuntimeError), acting_as(b):
            assert current_identity() is b
            raise RuntimeError
        assert current_identity() is a
    assert current_identity() is None


def test_acting_as_is_per_thread() -> None:
    """Each thread sees only its own acting_as identity."""
    seen: dict[str, str | None] = {}
    barrier = threading.Barrier(2)

    def worker(name: str) -> None:
        with acting_as(Identity(name)):
            barrier.wait()
            ident = current_identity()
            seen[name] = ident.subject if ident else None

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("t1", "t2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"t1": "t1", "t2": "t2"}


def test_acting_as_is_per_asyncio_task() -> None:
    """Concurrent asyncio tasks each see their own identity."""

    async def task(name: str) -> str | None:
        with acting_as(Identity(name)):
            await asyncio.sleep(0.01)
            ident = current_identity()
            return ident.subject if ident else None

    async def main() -> list[str | None]:
        return list(await asyncio.gather(task("x"), task("y"), task("z")))

    assert asyncio.run(main()) == ["x", "y", "z"]


def test_acting_as_requires_identity() -> None:
    """acting_as refuses a bare string, saying how to build an Identity."""
    with pytest.raises(ConfigurationError, match="Identity"), acting_as("alice"):  # type: ignore[arg-type]
        pass


def test_acting_as_in_a_suspended_generator_does_not_leak_to_the_caller() -> None:
    """A generator paused inside acting_as() leaves the caller acting as before, and acts as it inside."""
    admin = Identity("admin")
    seen = []

    def gen() -> Any:
        with acting_as(admin):
            seen.append(current_identity())
            yield 1
            seen.append(current_identity())
            yield 2

    g = gen()
    next(g)
    assert current_identity() is None  # suspended: the caller is not admin
    with acting_as(Identity("bot", kind="agent")) as bot:
        next(g)
        assert current_identity() is bot
    assert seen == [admin, admin]
    g.close()
    assert current_identity() is None


def test_acting_as_in_an_async_generator_does_not_leak() -> None:
    """The same for async generators."""
    async def agen() -> Any:
        with acting_as(Identity("admin")):
            yield 1

    async def main() -> Any:
        g = agen()
        await g.__anext__()
        leaked = current_identity()
        await g.aclose()
        return leaked

    assert asyncio.run(main()) is None


def test_generator_closed_from_another_thread_leaves_no_identity() -> None:
    """Closing a paused generator from another thread neither raises nor leaves its identity set anywhere."""
    def gen() -> Any:
        with acting_as(Identity("admin")):
            yield 1

    g = gen()
    next(g)
    seen: list[Any] = []
    t = threading.Thread(target=lambda: (g.close(), seen.append(current_identity())))
    t.start()
    t.join()
    assert seen == [None]
    assert current_identity() is None


def test_acting_as_still_reaches_threads_given_the_context() -> None:
    """Work handed to a thread with the context copied (asyncio.to_thread) keeps the block's identity."""
    async def main() -> Any:
        with acting_as(Identity("alice")) as alice:
            got = await asyncio.to_thread(current_identity)
            return got is alice

    assert asyncio.run(main())
