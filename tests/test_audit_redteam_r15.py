"""Issue 15 red team (round 15): attacks and faults on the audit trail that earlier sets did not try.

* a FIFO planted beside the store (``<store>.x``, read as a rotated file) or as its anchor held every reader and
  every production statement in ``open()`` for ever; a FIFO put at the store's own path while a writer runs
  held the statement in ``write()`` once the pipe was full;
* an anchor whose ``seq`` is not an integer (``1e999``) was an ``OverflowError`` out of ``verify`` and the report.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import governed_db
from governed_db import Identity
from governed_db.audit import audit_processor, verify
from governed_db.audit.store import anchor_path

KEY = "redteam-r15-key"


def _store(path: Path, n: int = 12, **opts: object) -> Path:
    proc = audit_processor({"path": str(path), "key": KEY, "checkpoint_every": 8, "fsync_interval": None,
                            "checkpoint_interval": None, **opts})
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (v INTEGER)")
    conn = governed_db.wrap(raw, audit=proc, identity=Identity("r15"), environment="production")
    for i in range(n):
        conn.execute("INSERT INTO t VALUES (?)", (i,))
    proc.store.close()
    return path


def _run(code: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.parametrize("where", ["rotated", "anchor"])
def test_a_fifo_beside_the_store_holds_no_reader(tmp_path: Path, where: str) -> None:
    store = _store(tmp_path / "audit.jsonl", rotate_bytes=3000)
    assert verify(store, key=KEY).ok
    if where == "rotated":
        os.mkfifo(tmp_path / "audit.jsonl.planted")
    else:
        anchor_path(store).unlink()
        os.mkfifo(anchor_path(store))
    # in a child with a deadline: before the fix, open() of the FIFO never returned
    p = _run(f"""
        from governed_db.audit import verify, read_records
        r = verify({str(store)!r}, key={KEY!r})
        print(r.ok, r.statements, sum(1 for _ in read_records({str(store)!r})))
        print(r.first_bad)
    """)
    assert p.returncode == 0, p.stderr
    ok, statements, _ = p.stdout.splitlines()[0].split()
    assert statements == "12"
    # a pipe is no file of the chain; as the anchor, it is a damaged anchor
    assert ok == ("True" if where == "rotated" else "False")
    if where == "anchor":
        assert "anchor file audit.jsonl.anchor is damaged" in p.stdout


def test_a_fifo_beside_the_store_holds_no_statement(tmp_path: Path) -> None:
    store = _store(tmp_path / "audit.jsonl", rotate_bytes=3000)
    os.mkfifo(tmp_path / "audit.jsonl.planted")
    os.mkfifo(tmp_path / "audit.jsonl.anchor.planted")
    p = _run(f"""
        import sqlite3, governed_db
        from governed_db import Identity
        c = governed_db.wrap(sqlite3.connect(":memory:"), identity=Identity("r15"), environment="production",
                             audit={{"path": {str(store)!r}, "key": {KEY!r}, "rotate_bytes": 3000,
                                    "retain_bytes": 10**9}})
        for i in range(40):
            c.execute("SELECT ?", (i,)).fetchall()
        c.close()
        print("done")
    """)
    assert p.returncode == 0 and "done" in p.stdout, p.stderr
    r = verify(store, key=KEY)
    assert r.ok, r.problems
    assert r.statements == 52


def test_a_fifo_put_at_the_store_path_mid_run_refuses_and_never_hangs(tmp_path: Path) -> None:
    store = tmp_path / "audit.jsonl"
    db = tmp_path / "db.sqlite"
    # in a child with a deadline: before the fix, the write into the full pipe blocked for ever
    p = _run(f"""
        import os, sqlite3, governed_db
        from governed_db import Identity
        from governed_db.errors import GovernanceFault
        setup = sqlite3.connect({str(db)!r})
        setup.execute("CREATE TABLE t (v INTEGER)")
        setup.commit()
        setup.close()
        conn = governed_db.wrap(sqlite3.connect({str(db)!r}), identity=Identity("r15"), environment="production",
                                audit={{"path": {str(store)!r}, "key": {KEY!r}, "journal": False}})
        for i in range(3):
            conn.execute("INSERT INTO t VALUES (?)", (i,))
            conn.commit()
        os.rename({str(store)!r}, {str(store)!r} + ".moved")
        os.mkfifo({str(store)!r})
        refused = 0
        # 200 statements of a few hundred bytes each fill a 64 KiB pipe
        for i in range(200):
            try:
                conn.execute("INSERT INTO t VALUES (?)", (100 + i,))
                conn.commit()
            except GovernanceFault:
                refused += 1
        conn.close()
        print("refused", refused)
    """)
    assert p.returncode == 0, p.stderr
    assert "refused 200" in p.stdout
    # the database is the ground truth: nothing ran after the store turned into a pipe
    assert sqlite3.connect(db).execute("SELECT count(*) FROM t").fetchone()[0] == 3


@pytest.mark.parametrize("seq", ["1e999", "-1e999", "122.0", "true", "\"7\"", "[1]", "null"])
def test_an_anchor_with_a_seq_no_writer_writes_is_damaged(tmp_path: Path, seq: str) -> None:
    store = _store(tmp_path / "audit.jsonl")
    anchor = json.loads(anchor_path(store).read_text())
    text = json.dumps(anchor).replace(f'"seq": {anchor["seq"]}', f'"seq": {seq}')
    assert text != json.dumps(anchor)
    anchor_path(store).write_text(text)
    for key in (KEY, None):
        r = verify(store, key=key)
        assert not r.ok
        assert any("anchor file audit.jsonl.anchor is damaged" in str(p) for p in r.problems), r.problems
    p = _run(f"""
        import sys
        from governed_db.cli import main
        sys.argv = ["governed-db", "audit", "verify", "--store", {str(store)!r}]
        main()
    """)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr and "unexpected" not in p.stderr + p.stdout


def test_every_bit_of_the_anchor_flipped_is_detected_with_the_key(tmp_path: Path) -> None:
    store = _store(tmp_path / "audit.jsonl")
    target = anchor_path(store)
    original = target.read_bytes()
    assert original.endswith(b"\n")
    missed = []
    # every offset, the final newline included (0x0a ^ 0x01 is a vertical tab, which strip() used to drop)
    for i in range(len(original)):
        for bit in (0x01,):
            flipped = bytearray(original)
            flipped[i] ^= bit
            target.write_bytes(bytes(flipped))
            if verify(store, key=KEY).ok:
                missed.append((i, bit))
    target.write_bytes(original)
    assert verify(store, key=KEY).ok
    assert missed == []


@pytest.mark.parametrize("extra", [b" ", b"\n", b"\r", b"\x0b", b"\t"])
def test_an_anchor_respaced_around_its_line_is_damaged(tmp_path: Path, extra: bytes) -> None:
    store = _store(tmp_path / "audit.jsonl")
    target = anchor_path(store)
    line = target.read_bytes()
    for text in {extra + line, line + extra, line[:-1] + extra} - {line}:
        target.write_bytes(text)
        for key in (KEY, None):
            assert not verify(store, key=key).ok, (text[-3:], key)
    target.write_bytes(line[:-1])  # no newline at all: still the line the writer wrote
    assert verify(store, key=KEY).ok


@pytest.mark.parametrize("verb", [["audit", "search"], ["audit", "tail"], ["audit", "stats"],
                                  ["audit", "export", "--format", "jsonl"], ["audit", "who-touched", "t"],
                                  ["report", "--format", "json"]])
@pytest.mark.parametrize("value", ["9999999999d", "99999999999999999999s", "9" * 5000 + "w"])
@pytest.mark.parametrize("option", ["--since", "--until"])
def test_a_duration_past_the_year_1_is_bad_input(tmp_path: Path, verb: list[str], value: str, option: str) -> None:
    from click.testing import CliRunner

    from governed_db.cli import main

    store = _store(tmp_path / "audit.jsonl", n=2)
    r = CliRunner().invoke(main, [*verb, "--store", str(store), option, value])
    # was: "error: unexpected OverflowError: Python int too large to convert to C int", exit 1
    assert r.exit_code == 2, r.output
    assert "reaches back before the year 1" in r.output
    assert "unexpected" not in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("live", ["kept", "rotated away", "emptied"])
@pytest.mark.parametrize("key", [None, "another-key"])
def test_a_rotated_keyed_store_refuses_a_writer_without_its_key(tmp_path: Path, live: str, key: str | None) -> None:
    store = _store(tmp_path / "audit.jsonl", n=30, rotate_bytes=3000)
    assert list(tmp_path.glob("audit.jsonl.0*")), "the store rotated"
    assert b'"type":"segment"' in store.read_bytes().split(b"\n", 1)[0]
    if live == "rotated away":
        store.rename(tmp_path / "audit.jsonl.1")  # logrotate, no writer since
    elif live == "emptied":
        (tmp_path / "audit.jsonl.1").write_bytes(store.read_bytes())  # copytruncate
        store.write_bytes(b"")
    before = verify(store, key=KEY)
    assert before.ok, before.problems
    # before: the segment record names no key, so the writer was taken and chained untagged (or mis-tagged)
    # records that failed verification with the store's key for ever
    audit = {"path": str(store)} if key is None else {"path": str(store), "key": key}
    # another process (in this one, the store's cached settings refuse it first)
    p = _run(f"""
        import sqlite3, governed_db
        from governed_db.errors import ConfigurationError
        try:
            governed_db.wrap(sqlite3.connect(":memory:"), environment="production", audit={audit!r})
            print("taken")
        except ConfigurationError as e:
            print("refused", e)
    """)
    assert p.stdout.startswith("refused") and "sealed with" in p.stdout, p.stdout + p.stderr
    after = verify(store, key=KEY)
    assert after.ok and after.records == before.records
    # the store's own key still continues it
    proc = audit_processor({"path": str(store), "key": KEY, "checkpoint_every": 8, "fsync_interval": None,
                            "checkpoint_interval": None, "rotate_bytes": 3000})
    conn = governed_db.wrap(sqlite3.connect(":memory:"), audit=proc, identity=Identity("r15"),
                            environment="production")
    conn.execute("SELECT 1").fetchall()
    proc.store.close()
    assert verify(store, key=KEY).ok
    assert verify(store, key=KEY).statements == before.statements + 1
