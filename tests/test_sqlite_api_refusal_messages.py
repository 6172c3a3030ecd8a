"""The sqlite3 (and aiosqlite) connection methods judged as a stand-in statement say what *they* would do when
refused (decision 0433): ``iterdump()``, ``serialize()`` and ``backup()`` were refused with "VACUUM INTO writes
files on the database server", and a writable ``blobopen()`` of a clear column with "the driver did not say how
many rows UPDATE changed". The refusals stand; their text names the call, why, and what to do instead.
"""

from __future__ import annotations

import asyncio
import pickle
import sqlite3
from typing import Any

import pytest

import governed_db
from tests._redteam import govern
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, _sqlite

SETUP = ("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, b BLOB)", "INSERT INTO items VALUES (1, 'a', x'0011')")


def _refusal(call: Any) -> governed_db.GuardrailViolation:
    """The refusal ``call`` raises; fails the test if it returns anything."""
    with pytest.raises(governed_db.GuardrailViolation) as info:
        returned = call()
        pytest.fail(f"returned {returned!r}")
    return info.value


@pytest.mark.parametrize(
    ("method", "what"),
    [
        ("iterdump", "iterdump() would write out every stored value of the database as SQL text"),
        ("serialize", "serialize() would return the whole database file as bytes"),
        ("backup", "backup() would copy the whole database into another connection"),
    ],
)
def test_whole_database_copies_say_what_they_copy(method: str, what: str) -> None:
    """Refused as before (file-io), with the call's own reason (masked values included) and a remedy; no stand-in."""
    raw = _sqlite(ALICE, SETUP)
    conn = govern(raw, ATTACKER)
    args = (sqlite3.connect(":memory:"),) if method == "backup" else ()
    e = _refusal(lambda: list(getattr(conn, method)(*args)) if method == "iterdump" else getattr(conn, method)(*args))
    text = str(e)
    assert e.rules == ("file-io",)
    assert what in text and "masked columns included" in text
    assert "Next step: select the rows you need with execute()" in text
    assert "writes files on the database server" not in text
    assert ALICE[1] not in text
    assert isinstance(e, sqlite3.ProgrammingError)  # still the driver's error class
    assert str(pickle.loads(pickle.dumps(e))) == text
    conn.close()


def test_writable_blobopen_of_a_clear_column_says_blob_io_goes_around() -> None:
    """A writable blob of a clear column stays refused (write-effect), saying blob I/O goes around what governed_db
    judges and measures, with the readonly / execute(UPDATE) remedies; the cell is left as it was."""
    raw = _sqlite(ALICE, SETUP)
    conn = govern(raw, ATTACKER)
    e = _refusal(lambda: conn.blobopen("items", "b", 1))
    text = str(e)
    assert e.rules == ("write-effect",)
    assert "blobopen() opens items.b for writing: blob I/O changes the stored bytes directly" in text
    assert "readonly=True" in text and "UPDATE \"items\" SET \"b\" = ? WHERE rowid = ?" in text
    assert "did not say how many rows" not in text
    assert raw.execute("SELECT b FROM items").fetchall() == [(b"\x00\x11",)]
    # the look-alike that reads runs, and a masked column's blob keeps its own message
    with conn.blobopen("items", "b", 1, readonly=True) as blob:
        assert blob.read() == b"\x00\x11"
    masked = _refusal(lambda: conn.blobopen("customers", "full_name", 1, readonly=True))
    assert "masking cannot reach the data" in str(masked) and ALICE[1] not in str(masked)
    conn.close()


@pytest.mark.parametrize("method", ["iterdump", "backup"])
def test_aiosqlite_copies_say_what_they_copy(method: str) -> None:
    """aiosqlite's iterdump() and backup() give the same text as sqlite3's."""
    aiosqlite = pytest.importorskip("aiosqlite")

    async def go() -> str:
        raw = await aiosqlite.connect(":memory:", isolation_level=None)
        conn = govern(raw, ATTACKER)
        target = await aiosqlite.connect(":memory:")
        try:
            with pytest.raises(governed_db.GuardrailViolation) as info:
                if method == "iterdump":
                    returned: Any = [line async for line in conn.iterdump()]
                else:
                    returned = await conn.backup(target)
                pytest.fail(f"returned {returned!r}")
            return str(info.value)
        finally:
            await target.close()
            await conn.close()

    text = asyncio.run(go())
    assert f"{method}() would " in text and "writes files on the database server" not in text
