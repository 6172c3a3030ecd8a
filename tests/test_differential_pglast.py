"""The analyser against PostgreSQL's own parser (pglast, libpg_query) on 12,000 generated statements.

A deterministic generator builds texts that stress how SQL is lexed and split: string literals of every
PostgreSQL form (standard, ``E''`` escapes, dollar quotes, ``U&''``, bit/hex strings, adjacent literals),
nested comments, quoted identifiers holding ``;`` or quotes, unusual whitespace, CTEs with DML, and one to three
statements per text. For each text both readings are compared: the number of statements, which of them only
read, and the tables they touch. Wherever the server would read the text differently from the analyser, the
statement must be refused (an agent in production); where PostgreSQL cannot parse it, nothing runs and
nothing is required.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from governed_db.identity import Identity
from governed_db.policy import evaluate
from governed_db.sql.analysis import analyze

pglast = pytest.importorskip("pglast")

AGENT = Identity("diff-bot", kind="agent")
N = 12_000
SEED = 20261206

TABLES = ["t1", "orders", '"Orders"', "public.t1", "s.items", '"a;b"', '"x""y"', "tbl_9", '"select"', "U&\"t\\0031\""]
LITERALS = [
    "'abc'", "'a;b'", "'it''s'", "'a\\'", "E'a\\'b'", "E'\\\\'", "E'x\\\\'';'", "$$a;b$$", "$q$x;'$q$", "$q$a$$b$q$",
    "U&'\\0041'", "B'101'", "X'ff'", "'a'\n'b'", "'--'", "'/*'", "'*/;'", "42", "-1", "1e3", "NULL", "true",
    "'\\x27; DROP TABLE t1; --'", "E'\\x27; DROP TABLE t1; --'", "'$$'", "$a$;$a$", "e'\\''", "'\\'", "N'x'",
    "'é;'", "$$\n;\n$$", "E'\\047'", "'\\047'",
]  # fmt: skip
SPACES = [" ", " ", " ", "\n", "\t", "\r\n", "  ", "\f", "\u00a0", "\u3000"]
COMMENTS = ["/* c */", "/* a /* nested */ b */", "-- c\n", "/**/", "/* ; */", "--;\n", "/* /* */ ; */", "/* ' */",
            "-- '\n", "/*/ x */"]  # fmt: skip
SETTINGS = ["statement_timeout", "search_path", "application_name", "work_mem", "standard_conforming_strings"]


def _templates(r: random.Random) -> list[str]:
    """One statement as tokens (joined later with generated whitespace and comments)."""
    t, u = r.choice(TABLES), r.choice(TABLES)
    lit, lit2 = r.choice(LITERALS), r.choice(LITERALS)
    n = str(r.randint(0, 9))
    forms = [
        ["SELECT", lit],
        ["SELECT", lit, "AS", "a"],
        ["SELECT", "*", "FROM", t],
        ["SELECT", "id", ",", lit, "FROM", t, "WHERE", "id", "=", n],
        ["SELECT", "*", "FROM", t, "a", "JOIN", u, "b", "ON", "a.id", "=", "b.id"],
        ["SELECT", "count(*)", "FROM", t, "WHERE", "v", "=", lit, "OR", "v", "=", lit2],
        ["INSERT", "INTO", t, "(id,", "v)", "VALUES", "(", n, ",", lit, ")"],
        ["UPDATE", t, "SET", "v", "=", lit, "WHERE", "id", "=", n],
        ["DELETE", "FROM", t, "WHERE", "id", "=", n],
        ["DELETE", "FROM", t, "WHERE", "v", "=", lit],
        ["DELETE", "FROM", t],
        ["WITH", "c", "AS", "(SELECT", "id", "FROM", t, ")", "SELECT", "*", "FROM", "c"],
        ["WITH", "c", "AS", "(DELETE", "FROM", t, "WHERE", "id", "=", n, "RETURNING", "id)", "SELECT", "*", "FROM", "c"],
        ["DROP", "TABLE", t],
        ["CREATE", "TABLE", "new_t", "(id", "int)"],
        ["SET", r.choice(SETTINGS), "=", lit],
        ["BEGIN"],
        ["COMMIT"],
        ["SELECT", lit, "FROM", t, "WHERE", lit2, "=", lit],
        ["SELECT", "v", "FROM", t, "WHERE", "v", "LIKE", lit],
        ["SELECT", "$1", "FROM", t],
    ]
    return r.choice(forms)


def _join(r: random.Random, tokens: list[str]) -> str:
    out = []
    for i, tok in enumerate(tokens):
        if i:
            out.append(r.choice(COMMENTS) if r.random() < 0.12 else r.choice(SPACES) if r.random() < 0.3 else " ")
        out.append(tok)
    return "".join(out)


def generate(n: int = N, seed: int = SEED) -> Iterator[str]:
    r = random.Random(seed)
    for _ in range(n):
        count = r.choice((1, 1, 1, 2, 2, 3))
        parts = [_join(r, _templates(r)) for _ in range(count)]
        sep = [r.choice([";", "; ", ";\n", " ; ", ";" + r.choice(COMMENTS)]) for _ in parts]
        text = "".join(p + (sep[i] if i < len(parts) - 1 else "") for i, p in enumerate(parts))
        if r.random() < 0.2:
            text += ";"
        if r.random() < 0.1:
            text = r.choice(COMMENTS) + text
        yield text


# -- the server's reading ------------------------------------------------------------------------------

_WRITES = ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt")


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def server_reading(text: str) -> list[tuple[str, frozenset[str]]] | None:
    """Per statement: ``read`` / ``write`` / ``other`` and the tables it names; None when PostgreSQL cannot parse it."""
    import json

    try:
        tree = json.loads(pglast.parser.parse_sql_json(text))
    except Exception:
        return None
    out = []
    for raw in tree.get("stmts", []):
        stmt = raw["stmt"]
        (kind_name, body), = stmt.items()
        ctes = {v["ctename"] for k, v in _walk(body) if k == "CommonTableExpr"}
        nodes = [k for k, _ in _walk(stmt)]
        if kind_name == "SelectStmt":
            kind = "write" if any(k in _WRITES for k in nodes) or "intoClause" in body else "read"
        elif kind_name in _WRITES:
            kind = "write"
        else:
            kind = "other"
        tables = set()
        for k, v in _walk(body):
            if k in ("RangeVar", "relation") and isinstance(v, dict) and "relname" in v:
                if v["relname"] in ctes and "schemaname" not in v:
                    continue
                tables.add(v["relname"].lower())
        out.append((kind, frozenset(tables)))
    return out


def analyser_reading(text: str) -> list[tuple[str, frozenset[str]]]:
    a = analyze(text, "postgres")
    out = []
    for st in a.statements:
        kind = "read" if st.kind == "read" else "write" if st.kind == "write" else "other"
        out.append((kind, frozenset(t.rsplit(".", 1)[-1].lower() for t in st.tables)))
    return out


def test_generator_is_deterministic_and_large() -> None:
    """The same seed gives the same 12,000 texts; they are not all alike."""
    first = list(generate(200))
    assert first == list(generate(200))
    assert len(set(generate())) > 10_000


def test_differences_from_postgresql_are_refused() -> None:
    """Whatever PostgreSQL would read differently (statement count, read vs write, tables) is refused."""
    compared = differing = 0
    let_through: list[tuple[str, Any, Any]] = []
    for text in generate():
        server = server_reading(text)
        if server is None:
            continue  # a syntax error anywhere: PostgreSQL runs none of it
        compared += 1
        ours = analyser_reading(text)
        if ours == server:
            continue
        differing += 1
        decision = evaluate(text, dialect="postgres", environment="production", identity=AGENT)
        if decision.allowed:
            let_through.append((text, ours, server))
    assert compared >= 8_000, compared  # most generated texts are valid PostgreSQL
    assert not let_through, f"{len(let_through)} of {differing} differing readings were allowed: {let_through[:5]}"
