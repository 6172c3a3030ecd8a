"""What ``verify`` says of the search index: whether it can be trusted to answer for the store.

Two checks. The cheap one: the index is byte for byte the file its seal names (with the key, the seal is
authentic), and what it covers is still in the store — the bytes where it ends in each file end with the chain
hash of the last record it indexed. The thorough one, when the seal proves nothing (no key given, or the index
was sealed without the key — anyone can write such a seal): an index is built afresh from the store, up to
exactly where the existing one ends, and the two are compared row for row (ids resolved, so two builds that met
the statements in other batches compare equal); the statement columns it keeps are worked out again.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from governed_db.audit.index_seal import (
    SCHEMA_VERSION,
    index_path,
    locked,
    read_seal,
    seal_path,
    seal_problem,
    tail_digest,
)
from governed_db.audit.segments import _first_record, store_files

_REBUILD = "; rebuild it with `governed-db audit index --rebuild` (search and who-touched rebuild it themselves)"


def check_index(store: Path, key: bytes | None, *, thorough: bool = True) -> tuple[list[str], list[str]]:
    """``(problems, notes)`` of the store's search index. An index that is behind the store is not a problem
    (the next query indexes the rest); one that is not what its seal names, covers what the store no longer
    holds, or (``thorough``, when the seal proves nothing) differs from an index built from the store, is."""
    index_file = index_path(store)
    name = index_file.name
    if not index_file.exists():
        if seal_path(store).exists():
            return [], [f"the search index {name} is missing (its seal is there): it is built again from the store "
                        "by the next query"]
        return [], []
    try:
        return _check(store, key, index_file, thorough)
    except TimeoutError as e:
        return [], [f"the search index {name} was not checked: {e}"]


def _check(store: Path, key: bytes | None, index_file: Path, thorough: bool) -> tuple[list[str], list[str]]:
    name = index_file.name
    keyless = key is None
    with locked(store, shared=True):
        problem = seal_problem(store, index_file, SCHEMA_VERSION, key)
        seal, _ = read_seal(store)
        if seal is None and problem is not None and _schema_of(index_file) != SCHEMA_VERSION:
            return [], [f"the search index {name} was written by another version of governed_db: the next query "
                        "rebuilds it"]
        if seal is not None and key is not None and not isinstance(seal.get("mac"), str):
            # sealed by a query run without the key: a query with the key rebuilds it before using it; whether it
            # was edited since only its content can tell
            problem = seal_problem(store, index_file, SCHEMA_VERSION, None)
            keyless = True
        if problem is not None or seal is None:
            return [f"the search index {name} is not trusted: {problem}{_REBUILD}"], []
        problems = _coverage(store, name, seal["files"])
        notes = [] if key is None or not keyless else [
            f"the search index {name} was sealed without the audit key: searches with the key rebuild it before "
            "using it" + ("" if thorough else "; it was not compared with the store")]
        if problems or not thorough or not keyless:
            return problems, notes
        # the seal proves nothing without the key: compare with an index built from the store
        ours = _snapshot(index_file)
    if ours is None:
        return [f"the search index {name} cannot be read as an index{_REBUILD}"], []
    digest, covered, inexact = ours
    if inexact is not None:  # queries do not use it (they read the store), whatever it holds
        return [], [f"the search index {name} is not used: {inexact}"]
    present = {(s, first) for s, first, _, _ in covered}
    if not present <= _heads(store).keys():
        return [], [f"the search index {name} covers files retention removed since: compared with the store after "
                    "the next query brings it up to date"]
    fresh = _fresh_digest(store, {(s, first): end for s, first, end, _ in covered})
    if fresh is None or fresh[0] != digest or fresh[2] is not None:
        return [f"the search index {name} differs from an index built from the store up to the same point: it was "
                f"edited and sealed again (without the key anyone can){_REBUILD}"], []
    return [], [f"the search index {name} was compared with an index built from the store (no key to check its "
                "seal's MAC): the same"]


def _heads(store: Path) -> dict[tuple[str, int], Path]:
    heads: dict[tuple[str, int], Path] = {}
    for f in store_files(store):
        head = _first_record(f)
        if head is not None and isinstance(head.get("seq"), int):
            heads[(str(head.get("store")), int(head["seq"]))] = f
    return heads


def _coverage(store: Path, name: str, files: Iterable[tuple[str, int, int, str]]) -> list[str]:
    """Problems with what the index covers: files of another store, a file gone from the middle, bytes changed
    where it ends (the store cut back or rewritten below what was indexed)."""
    heads = _heads(store)
    firsts = [first for _, first in heads]
    ids = {s for s, _ in heads}
    problems = []
    for store_id, first, end, tail in files:
        found = heads.get((store_id, first))
        if found is None:
            if store_id not in ids:
                problems.append(f"the search index {name} covers a file of another store (store id {store_id}, "
                                f"first seq {first}): it was swapped in from another store{_REBUILD}")
            elif not firsts or first > min(firsts):
                problems.append(f"the search index {name} covers a file the store no longer has (first seq "
                                f"{first}), and not one retention removed{_REBUILD}")
            continue  # (the oldest files, removed by retention, leave the index at the next query)
        try:
            stale = found.stat().st_size < end or tail_digest(found, end) != tail
        except OSError:
            stale = True
        if stale:
            problems.append(f"the search index {name} is stale: {found.name} is not what it indexed up to byte "
                            f"{end} (the store was cut back or rewritten there){_REBUILD}")
    return problems


#: the index's content with its ids resolved (two builds number texts and shapes differently)
_CONTENT = (
    "SELECT s.seq, s.ffirst, s.off, s.offirst, s.ooff, s.time, s.subject, s.obo, s.who, s.kind, s.env, s.decision, "
    "s.op, s.refused, s.is_stmt, t.text, t.sys, sh.tables, sh.cols FROM stmt s LEFT JOIN shape sh ON sh.id = s.shape "
    "LEFT JOIN texts t ON t.id = sh.text_id ORDER BY s.seq",
    "SELECT seq, last FROM stmt_table ORDER BY seq, last",
    "SELECT seq, rule FROM stmt_rule ORDER BY seq, rule",
    "SELECT t.text, t.sys, sh.tables, sh.cols, x.hour, x.who, x.kind, x.op, x.refused, x.n, x.first, x.last "
    "FROM touch x LEFT JOIN shape sh ON sh.id = x.shape LEFT JOIN texts t ON t.id = sh.text_id "
    "ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9",
    "SELECT t.text, t.sys, sh.tables, sh.cols, x.last FROM shape_table x LEFT JOIN shape sh ON sh.id = x.shape "
    "LEFT JOIN texts t ON t.id = sh.text_id ORDER BY 1, 2, 3, 4, 5",
    "SELECT store, first_seq, indexed_to, tail FROM files ORDER BY first_seq, store",
)


def _digest(db: sqlite3.Connection) -> str:
    h = hashlib.sha256()
    for sql in _CONTENT:
        h.update(sql.encode())
        cur = db.execute(sql)
        while rows := cur.fetchmany(10_000):
            h.update(orjson.dumps(rows))
    return h.hexdigest()


def _snapshot(index_file: Path) -> tuple[str, list[tuple[str, int, int, str]], str | None] | None:
    """``(content digest, coverage, inexact)`` of an index file, read only; None when it is not an index (it
    matched its seal, but someone who can write the seal wrote both). The statement columns it keeps for this
    version of the parser must be the ones the parser works out."""
    try:
        db = sqlite3.connect(f"{index_file.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        covered = [(str(s), int(f), int(e), str(t)) for s, f, e, t in db.execute(
            "SELECT store, first_seq, indexed_to, tail FROM files ORDER BY first_seq, store")]
        row = db.execute("SELECT v FROM meta WHERE k = 'inexact'").fetchone()
        digest = _digest(db)
        if not _parsed_ok(db):
            digest = "parsed columns differ"
        return digest, covered, None if row is None else str(row[0])
    except (sqlite3.Error, ValueError, TypeError):
        return None
    finally:
        db.close()


def _parsed_ok(db: sqlite3.Connection) -> bool:
    """The columns kept for this version of the parser are the ones it works out (a forged entry could make a
    statement's column look untouched)."""
    from governed_db.audit.search import DIALECTS, _analyser, statement_columns

    cur = db.execute("SELECT t.text, t.sys, p.cols FROM parsed p JOIN texts t ON t.id = p.text_id "
                     "WHERE p.analyser = ?", (_analyser(),))
    for text, system, cols in cur:
        try:
            kept = frozenset(orjson.loads(cols))
        except orjson.JSONDecodeError:
            return False
        if kept != statement_columns(str(text), DIALECTS.get(str(system))):
            return False
    return True


def _fresh_digest(store: Path, upto: dict[tuple[str, int], int]) -> tuple[str, Any, str | None] | None:
    """The content digest of an index built from the store up to ``upto`` (a temporary file, removed)."""
    from governed_db.audit.index import _SCHEMA, Index

    tmp = Path(tempfile.mkdtemp(prefix="governed-db-index-check-"))
    try:
        db = sqlite3.connect(tmp / "index.sqlite", isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.executescript(_SCHEMA)
            index = Index(store, db)
            index.upto = upto
            try:
                index._update()
            except Exception:
                return None
            row = db.execute("SELECT v FROM meta WHERE k = 'inexact'").fetchone()
            return _digest(db), None, None if row is None else str(row[0])
        finally:
            db.close()
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)


def _schema_of(index_file: Path) -> int | None:
    """The schema version an index file says it has (read only), or None."""
    try:
        db = sqlite3.connect(f"{index_file.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT v FROM meta WHERE k = 'schema'").fetchone()
        finally:
            db.close()
        return int(row[0]) if row is not None else None
    except (sqlite3.Error, ValueError, TypeError):
        return None
