"""A tampered search index is detected: search and who-touched never answer from it, and ``verify`` reports it.

Each attack (edit a count, hide an identity, delete the index or its seal, swap in another store's index,
truncate it, put back an older one, cut the store back below what it covers) runs with and without the audit
key. The ground truth is a full read of the store.
"""

from __future__ import annotations

import logging
import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from governed_db.audit import AuditStore
from governed_db.audit import search as S
from governed_db.audit.index import index_path, open_index
from governed_db.audit.index_seal import read_seal, seal_path, write_seal
from governed_db.audit.search import Query, search, who_touched
from governed_db.audit.verify import verify

KEY = b"index-tamper-key"
SUBJECTS = ["alice", "bob", "mallory", "etl"]
T0 = 1_765_000_000_000_000_000


def _write(path: Path, n: int, key: bytes | None, seed: int = 1, **kw: Any) -> None:
    """``n`` statements (intent + outcome) on users/orders by four identities, a minute apart."""
    rnd = random.Random(seed)
    store = AuditStore(path, key=key, fsync_interval=None, checkpoint_interval=None, idle_close=None, **kw)
    start = store.appended
    for i in range(start, start + n):
        table = rnd.choice(["users", "orders"])
        attrs = {"db.system.name": "sqlite", "db.query.text": f"SELECT email, id FROM {table} WHERE id = ?",
                 "db.operation.name": "SELECT", "governed_db.identity.subject": rnd.choice(SUBJECTS),
                 "governed_db.identity.kind": "agent", "governed_db.decision": "allow",
                 "governed_db.tables": [table]}
        when = T0 + i * 60_000_000_000
        seq = store.append({"v": 2, "type": "intent", "time": when, "name": "SELECT", "span_id": f"{i:016x}",
                            "attrs": attrs})
        store.append({"v": 2, "type": "outcome", "intent": seq, "end": when + 5, "status": "UNSET", "attrs": {}})
    store.close()


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOVERNED_DB_AUDIT_KEY", raising=False)


@pytest.fixture(params=[KEY, None], ids=["key", "no-key"])
def key(request: pytest.FixtureRequest) -> bytes | None:
    return request.param  # type: ignore[no-any-return]


def _full_who(path: Path, target: str, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    with monkeypatch.context() as m:
        m.setattr(S, "_who_touched_indexed", lambda *a: None)
        return [t.to_dict() for t in who_touched(path, target)]


def _answers_right(path: Path, key: bytes | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Search and who-touched through the index give what a full read of the store gives."""
    assert [t.to_dict() for t in who_touched(path, "users.email", key=key)] == _full_who(path, "users.email",
                                                                                         monkeypatch)
    q = Query(identity="mallory")
    assert list(search(path, q, key=key)) == list(search(path, q, index=False))


def _problems(path: Path, key: bytes | None) -> list[str]:
    return [p.message for p in verify(path, key=key).problems]


def _indexed(path: Path, key: bytes | None) -> None:
    open_index(path, key=key).close()
    assert _problems(path, key) == []  # a sealed, untouched index is no problem


def _hide_mallory(path: Path) -> None:
    """What someone who wants who-touched to hide an identity does to the index: drop its counts and rows."""
    db = sqlite3.connect(index_path(path))
    db.execute("DELETE FROM touch WHERE who = 'mallory'")
    db.execute("DELETE FROM stmt WHERE subject = 'mallory'")
    db.commit()
    db.close()


@pytest.fixture
def store(tmp_path: Path, key: bytes | None) -> Path:
    path = tmp_path / "audit.jsonl"
    _write(path, 120, key)
    _indexed(path, key)
    return path


def test_an_edited_count_is_detected(store: Path, key: bytes | None, monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    """A count edited in the index: verify reports it, and who-touched rebuilds the index instead of using it."""
    db = sqlite3.connect(index_path(store))
    db.execute("UPDATE touch SET n = n + 1000")
    db.commit()
    db.close()
    assert any("not the file its seal names" in p for p in _problems(store, key))
    with caplog.at_level(logging.WARNING, "governed_db.audit"):
        _answers_right(store, key, monkeypatch)
    assert "not trusted" in caplog.text
    assert _problems(store, key) == []  # rebuilt and sealed again


def test_an_identity_hidden_from_the_index_is_detected(store: Path, key: bytes | None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows and counts of one identity deleted from the index: reported, and never missing from the answer."""
    _hide_mallory(store)
    assert _problems(store, key)
    _answers_right(store, key, monkeypatch)
    assert any(t.subject == "mallory" for t in who_touched(store, "users", key=key))


def test_an_index_edited_and_sealed_again_without_the_key(store: Path, key: bytes | None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone without the key edits the index and writes a new seal (its hash is no secret). With the key the
    seal has no MAC: queries rebuild, verify compares with the store. Without the key, queries cannot tell —
    verify can: it builds the index from the store and compares."""
    _hide_mallory(store)
    seal, _ = read_seal(store)
    assert seal is not None
    write_seal(store, index_path(store), seal["schema"], seal["files"], None)
    problems = _problems(store, key)
    assert any("differs from an index built from the store" in p for p in problems), problems
    if key is not None:
        _answers_right(store, key, monkeypatch)
    else:  # the documented limit: a keyless query trusts a seal anyone can write
        assert not any(t.subject == "mallory" for t in who_touched(store, "users", key=None))


def test_a_seal_forged_with_another_key_is_detected(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the key, a seal whose MAC was made with another key is reported and the index not used."""
    _hide_mallory(store)
    seal, _ = read_seal(store)
    assert seal is not None
    write_seal(store, index_path(store), seal["schema"], seal["files"], b"not-the-key")
    assert any("another key" in p for p in _problems(store, KEY))
    _answers_right(store, KEY, monkeypatch)


@pytest.mark.parametrize("which", ["index", "seal"])
def test_a_deleted_index_file_is_detected(store: Path, key: bytes | None, which: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The index deleted: rebuilt from the store (a note, not a problem). Its seal deleted: the index is not
    trusted — reported, and rebuilt before it answers."""
    victim = index_path(store) if which == "index" else seal_path(store)
    victim.unlink()
    result = verify(store, key=key)
    if which == "index":
        assert result.ok and any("missing" in w for w in result.warnings)
    else:
        assert any("no seal" in p.message for p in result.problems)
    _hide_mallory(store) if which == "seal" else None  # an unsealed index is never read, whatever it holds
    _answers_right(store, key, monkeypatch)
    assert seal_path(store).exists() and _problems(store, key) == []


def test_an_index_swapped_in_from_another_store_is_detected(tmp_path: Path, key: bytes | None,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Another store's index (and its seal, MAC made with the same key) put in place of this one's: reported as
    another store's, and not used for this store's answers."""
    a, b = tmp_path / "a" / "audit.jsonl", tmp_path / "b" / "audit.jsonl"
    a.parent.mkdir()
    b.parent.mkdir()
    _write(a, 100, key, seed=2)
    _write(b, 60, key, seed=3)
    _indexed(a, key)
    _indexed(b, key)
    shutil.copyfile(index_path(b), index_path(a))
    assert any("not the file its seal names" in p for p in _problems(a, key))  # the index alone
    shutil.copyfile(seal_path(b), seal_path(a))
    assert any("another store" in p for p in _problems(a, key))  # index and seal together
    _answers_right(a, key, monkeypatch)


def test_a_truncated_index_is_detected(store: Path, key: bytes | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The index file cut short: reported, and rebuilt (not an error, not a partial answer)."""
    data = index_path(store).read_bytes()
    index_path(store).write_bytes(data[: len(data) // 2])
    assert any("not the file its seal names" in p for p in _problems(store, key))
    _answers_right(store, key, monkeypatch)


def test_an_older_index_put_back(store: Path, key: bytes | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """An older index put back under the current seal is detected. Put back with its own (older) seal, it is
    a true index of the store's beginning: the next query indexes what follows, so nothing is hidden."""
    old_index, old_seal = index_path(store).read_bytes(), seal_path(store).read_bytes()
    _write(store, 40, key, seed=4)  # mallory runs more statements
    _answers_right(store, key, monkeypatch)  # (the index now covers them)
    index_path(store).write_bytes(old_index)
    assert any("not the file its seal names" in p for p in _problems(store, key))
    seal_path(store).write_bytes(old_seal)
    assert _problems(store, key) == []  # behind the store, but true
    _answers_right(store, key, monkeypatch)


def test_a_store_cut_back_below_the_index_is_reported(store: Path, key: bytes | None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The store truncated below what the index covers: verify says the index is stale (besides what it says
    of the store), and queries rebuild it from what the store holds."""
    data = store.read_bytes()
    cut = data.rindex(b"\n", 0, len(data) // 2) + 1
    store.write_bytes(data[:cut])
    assert any("index" in p and "stale" in p for p in _problems(store, key))
    _answers_right(store, key, monkeypatch)


def test_a_rotated_store_checks_every_file(tmp_path: Path, key: bytes | None,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Across rotated files the seal covers each; an edit is still detected and the answers still right."""
    path = tmp_path / "audit.jsonl"
    _write(path, 150, key, rotate_bytes=8_000)
    _indexed(path, key)
    seal, _ = read_seal(path)
    assert seal is not None and len(seal["files"]) > 3
    _hide_mallory(path)
    assert _problems(path, key)
    _answers_right(path, key, monkeypatch)


def test_verify_command_reports_a_tampered_index(store: Path, key: bytes | None, tmp_path: Path) -> None:
    """`governed-db audit verify` exits 1 on a tampered index, saying which file and how to rebuild it; after
    `governed-db audit index --rebuild` it exits 0."""
    from click.testing import CliRunner

    from governed_db.cli.audit import audit

    _hide_mallory(store)
    args = ["--store", str(store)]
    if key is not None:
        key_file = tmp_path / "key"
        key_file.write_bytes(key)
        args += ["--key-file", str(key_file)]
    env = {"GOVERNED_DB_AUDIT_KEY": key.decode()} if key is not None else {}
    broken = CliRunner().invoke(audit, ["verify", *args])
    assert broken.exit_code == 1, broken.output
    assert "audit.jsonl.index.sqlite" in broken.output and "--rebuild" in broken.output
    rebuilt = CliRunner().invoke(audit, ["index", "--store", str(store), "--rebuild"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert CliRunner().invoke(audit, ["verify", *args]).exit_code == 0


def test_a_held_index_lock_never_hangs_a_query(store: Path, key: bytes | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """While another holder keeps the index locked (a hung process), a query waits a bounded time, then reads
    the store front to back: the same answer, no hang."""
    from governed_db.audit import index_seal

    monkeypatch.setattr(index_seal, "LOCK_TIMEOUT", 0.2)
    full = list(search(store, Query(identity="mallory"), index=False))
    with index_seal.locked(store):
        assert list(search(store, Query(identity="mallory"), key=key)) == full
        assert [t.to_dict() for t in who_touched(store, "users.email", key=key)] == _full_who(
            store, "users.email", monkeypatch)


def test_no_index_compare_checks_the_seal_only(store: Path, key: bytes | None) -> None:
    """`compare_index=False` (`--no-index-compare`): an index edited and sealed again without the key is then not
    caught without the key (no index is built to compare), while an edit the seal names still is."""
    _hide_mallory(store)
    assert any("not the file its seal names" in p.message
               for p in verify(store, key=key, compare_index=False).problems)
    seal, _ = read_seal(store)
    assert seal is not None
    write_seal(store, index_path(store), seal["schema"], seal["files"], None)
    quick = verify(store, key=key, compare_index=False)
    assert quick.ok and any("sealed without the audit key" in w for w in quick.warnings) == (key is not None)
    assert not verify(store, key=key).ok


def _query_loop(path: str, rounds: int, out: Any) -> None:
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger("governed_db.audit").addHandler(handler)
    for _ in range(rounds):
        who_touched(Path(path), "users.email", key=KEY)
        list(search(Path(path), Query(identity="mallory"), key=KEY))
    out.put(stream.getvalue())


def test_concurrent_queries_while_the_store_grows_find_no_false_tampering(tmp_path: Path) -> None:
    """Processes querying (and so updating and sealing the index) while statements are appended: none ever finds
    the index untrusted (a read never changes the sealed file, and every write is sealed). (The window the lock
    closes — a check between another process's write and its seal — is too narrow to hit reliably here.)"""
    import multiprocessing

    path = tmp_path / "audit.jsonl"
    _write(path, 50, KEY)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_query_loop, args=(str(path), 25, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for seed in range(20):
        _write(path, 25, KEY, seed=10 + seed)
    logs = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert not any("not trusted" in log for log in logs), logs
    assert _problems(path, KEY) == []
