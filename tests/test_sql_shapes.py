"""Literal SQL judged by its shape: shared only where a literal's value cannot change any judgement.

The ground truth is the uncached judgement of each text on its own (``analyze`` + ``Policy.evaluate``) and,
through a governed connection, the database state and every byte that reaches the caller.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

import governed_db
from governed_db.policy import load_policy
from governed_db.sql import shapes
from governed_db.sql.analysis import Analysis, analyze
from governed_db.sql.shapes import analysis_for

AGENT = governed_db.Identity("agent-7", kind="agent", on_behalf_of="alice")
DIALECTS = ("sqlite", "postgres", "mysql", "duckdb")


@pytest.fixture(autouse=True)
def _fresh_shapes() -> None:
    shapes.clear()


def warm(texts: list[str], dialect: str = "sqlite") -> list[Analysis]:
    """Each text through the statement path (so its shape is learnt and its template built)."""
    return [analysis_for(t, dialect) for t in texts]


def facts(a: Analysis) -> list[tuple[Any, ...]]:
    return [tuple(getattr(s, f) for f in shapes._FACT_FIELDS) for s in a.statements]


def verdict(a: Analysis, policy: Any = None) -> tuple[Any, ...]:
    d = load_policy(policy).evaluate(a, identity=AGENT, environment="production")
    return d.action, tuple(sorted(d.rules)), tuple(sorted((h.rule_id, h.row_limit) for h in d.hits))


# -- what is shared ------------------------------------------------------------------------------------------


def test_third_text_of_a_shape_reuses_the_template() -> None:
    """From the third text of a shape on, the analysis is the template's, carrying the text's own sql."""
    texts = [f"SELECT id, name FROM items WHERE id = {i} AND price > -{i + 10}" for i in range(5)]
    got = warm(texts)
    assert [a.shape is None for a in got] == [True, True, False, False, False]
    assert got[2].statements is got[4].statements  # one tree for the shape
    assert [a.sql for a in got] == texts
    for field in dataclasses.fields(Analysis):  # every other fact is the template's own
        if field.name not in ("sql", "shape"):
            assert getattr(got[3], field.name) is getattr(got[4], field.name), field.name
    assert got[4].normalized == "SELECT id, name FROM items WHERE id = ? AND price > - ?"
    tree = got[4].statements[0].expression
    assert tree is not None and not list(tree.find_all(exp.Literal))  # no value of any text in the shared tree


def test_shared_analysis_judges_like_the_text_alone() -> None:
    """Facts and decision of a shape-judged text equal those of the text analysed on its own."""
    texts = [f"SELECT a, b FROM t WHERE a IN ({i}, {i + 1}) AND b = 'user{i}@example.com'" for i in range(6)]
    for a, text in zip(warm(texts, "postgres"), texts, strict=True):
        alone = analyze(text, "postgres")
        assert facts(a) == facts(alone) and verdict(a) == verdict(alone)


@pytest.mark.parametrize(
    "make",
    [
        lambda i: f"DELETE FROM t WHERE id = {i}",  # writes: never shared (tautologies, effect guard)
        lambda i: f"UPDATE t SET name = 'n{i}' WHERE id = {i}",
        lambda i: f"INSERT INTO t VALUES ({i}, 'x{i}')",  # written literals are checked for masked placeholders
        lambda i: f"SELECT a FROM t WHERE a = 1 LIMIT {i + 1}",  # LIMIT caps
        lambda i: f"SELECT a FROM t ORDER BY {i % 2 + 1}",  # ordinals name columns
        lambda i: f"SELECT a FROM t WHERE {i} = {i}",  # no column: tautology or not by value
        lambda i: f"SELECT a FROM t WHERE a LIKE 'x{i}%'",  # patterns
        lambda i: f"SELECT a + {i} FROM t",  # projections
        lambda i: f"SELECT a FROM t WHERE length(a) = {i} /* hint */",  # comments
        lambda i: f"SELECT a FROM t WHERE a = 'it''s {i}'",  # escaped quote
        lambda i: f"SELECT a FROM t WHERE a = '{i}; DROP TABLE t'",  # a string holding SQL
        lambda i: f'SELECT a FROM t WHERE "name" = \'v{i}\'',  # SQLite: an unknown "name" is a string
        lambda i: f"SELECT a FROM t WHERE a = {i} OR 1 = 1",  # a literal-only comparison keeps the shape apart
    ],
)
def test_literal_dependent_positions_are_never_shared(make: Any) -> None:
    """Texts whose literals may matter are analysed on their own, whatever was seen before."""
    texts = [make(i) for i in range(6)]
    for a, text in zip(warm(texts), texts, strict=True):
        alone = analyze(text, "sqlite")
        assert a.shape is None or facts(a) == facts(alone)
        if a.shape is not None:  # only the column comparison may vary; the rest is kept as written
            assert "?" in a.shape[1]  # type: ignore[index]
    # the literal-dependent part never became a hole
    last = warm([make(100)])[0]
    assert last.shape is None or make(100).count("?") < last.shape[1].count("?")  # type: ignore[index]


@pytest.mark.parametrize(
    ("dialect", "literal"),
    [
        ("postgres", "E'\\x41'"),
        ("postgres", "$$a$$"),
        ("postgres", "U&'\\0041'"),
        ("mysql", "X'41'"),
        ("mysql", "b'01'"),
        ("mysql", '"dq"'),
        ("mysql", "'a\\'b'"),
        ("mysql", "_utf8mb4'x'"),
        ("duckdb", "'\\x'"),
        ("sqlite", "X'41'"),
    ],
)
def test_dialect_specific_literals_stay_as_written(dialect: str, literal: str) -> None:
    """E'..', $$..$$, X'..', b'..', "..", escapes and introducers are never holes: the shape keeps them verbatim."""
    texts = [f"SELECT a FROM t WHERE id = {i} AND b = {literal}" for i in range(5)]
    got = warm(texts, dialect)
    for a, text in zip(got, texts, strict=True):
        assert a.sql == text
        if a.shape is not None:
            assert literal in a.shape[1]  # type: ignore[index]
            assert facts(a) == facts(analyze(text, dialect))


def test_limit_value_reaches_the_judgement() -> None:
    """Warm with LIMIT 10, then LIMIT 100000: the analysis of the second carries 100000, not 10."""
    warm([f"SELECT a FROM t WHERE id = {i} LIMIT 10" for i in range(4)])
    a = warm(["SELECT a FROM t WHERE id = 99 LIMIT 100000"])[0]
    tree = a.statements[0].expression
    assert tree is not None
    limit = tree.args["limit"].expression
    assert isinstance(limit, exp.Literal) and limit.name == "100000"


def test_decisions_are_cached_per_length() -> None:
    """The statement-size rule reads the text's length: a longer text of the same shape is judged for its own."""
    policy = {"rules": {"statement-size": {"max_chars": 60}}}
    pol = load_policy(policy)
    short = [f"SELECT a FROM t WHERE b = '{'x' * 3}{i}'" for i in range(4)]
    warm(short)
    for a in warm(short):
        assert "statement-size" not in pol.evaluate(a, identity=AGENT, environment="production").rules
    long = warm([f"SELECT a FROM t WHERE b = '{'x' * 40}'"])[0]
    assert long.shape is not None
    assert "statement-size" in pol.evaluate(long, identity=AGENT, environment="production").rules


# -- the differential test: shape-judged == judged alone, for values at every boundary -----------------------

_TEMPLATES = [
    "SELECT a, b FROM t WHERE a = {v}",
    "SELECT a, b FROM t WHERE a >= {v}",
    "SELECT a, b FROM t WHERE a > -{v}",
    "SELECT a, b FROM t WHERE a <> {v} AND b < {w}",
    "SELECT a FROM t WHERE a IN ({v}, {w}) OR b = '{s}'",
    "SELECT a FROM t WHERE NOT (a < {v}) LIMIT {w}",
    "SELECT a FROM t WHERE b = '{s}' ORDER BY a",
    "SELECT count(*) FROM t WHERE a = {v} GROUP BY b",
    "SELECT a FROM t JOIN u ON u.id = t.a WHERE u.x = {v}",
    "SELECT a FROM t WHERE a IN (SELECT id FROM u WHERE y = '{s}')",
    "SELECT a FROM pg_stats WHERE a = {v}",
]
_NUMBERS = st.sampled_from(["0", "1", "2", "5", "1000000000", "2147483647", "0.0", "1.5"])
_STRINGS = st.sampled_from(["", "a", "a", "id", "name", "x@example.com", "1=1", "DROP TABLE t", "%", "--", "b"])
_POLICIES = [None, {"rules": {"max-rows": {"limit": 5}, "missing-limit": {"tables": ["t"], "limit": 3}}}]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    template=st.sampled_from(_TEMPLATES),
    dialect=st.sampled_from(DIALECTS),
    values=st.lists(st.tuples(_NUMBERS, _NUMBERS, _STRINGS), min_size=3, max_size=6),
)
def test_shape_judgement_equals_the_judgement_alone(template: str, dialect: str, values: list[Any]) -> None:
    """For boundary values (0, -1, huge, '', names of columns...) every judgement equals the uncached one."""
    for v, w, s in values:
        text = template.format(v=v, w=w, s=s)
        shared = analysis_for(text, dialect)
        alone = analyze.__wrapped__(text, dialect)
        assert shared.sql == text and shared.normalized == alone.normalized
        assert facts(shared) == facts(alone)
        for policy in _POLICIES:
            assert verdict(shared, policy) == verdict(alone, policy), text


# -- through a governed connection: database state and returned bytes -----------------------------------------


def _customers() -> tuple[Any, sqlite3.Connection]:
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT, email TEXT, ssn TEXT)")
    raw.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?)",
        [(i, f"Alice Example{i}", f"alice{i}@example.com", f"{100 + i:03d}-45-{1000 + i}") for i in range(50)],
    )
    raw.commit()
    return governed_db.wrap(raw, identity=AGENT, environment="production", audit=False), raw


def test_masked_values_stay_masked_for_every_text_of_a_shape() -> None:
    """Ten literal point reads of one shape: no e-mail or SSN byte reaches the caller, for any of them."""
    conn, raw = _customers()
    cur = conn.cursor()
    for i in range(10):
        rows = cur.execute(f"SELECT id, email, ssn FROM customers WHERE id = {i}").fetchall()
        assert rows and rows[0][0] == i
        real = raw.execute(f"SELECT email, ssn FROM customers WHERE id = {i}").fetchone()
        assert real[0] not in repr(rows) and real[1] not in repr(rows)
    assert shapes._templates  # the shape was shared


def test_masked_column_predicate_refused_for_every_text_of_a_shape() -> None:
    """WHERE ssn = '...' is refused for each of eight texts; no refusal quotes another text's value."""
    conn, _raw = _customers()
    cur = conn.cursor()
    values = [f"{100 + i:03d}-45-{1000 + i}" for i in range(8)]
    for i, v in enumerate(values):
        with pytest.raises(governed_db.GuardrailViolation) as err:
            cur.execute(f"SELECT id FROM customers WHERE ssn = '{v}'").fetchall()
        assert "masked-column-predicate" in err.value.decision.rules
        others = [o for j, o in enumerate(values) if j != i]
        assert not any(o in str(err.value) for o in others)


def test_tautological_delete_refused_after_bounded_ones() -> None:
    """DELETE ... WHERE id = 5 runs; the same shape with id = id is refused and the table keeps its rows."""
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    raw.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x") for i in range(20)])
    raw.commit()
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    for i in range(3):
        conn.execute(f"DELETE FROM t WHERE id = {i}")
    for bad in ("DELETE FROM t WHERE id = id", "DELETE FROM t WHERE 1=1", "DELETE FROM t WHERE id * 0 = 0"):
        with pytest.raises(governed_db.GuardrailViolation):
            conn.execute(bad)
    assert raw.execute("SELECT count(*) FROM t").fetchone() == (17,)


def test_row_cap_holds_for_every_text_of_a_shape() -> None:
    """A max-rows cap of 2 holds for warm texts whatever their LIMIT says."""
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE items (id INTEGER, g INTEGER)")
    raw.executemany("INSERT INTO items VALUES (?, ?)", [(i, i % 3) for i in range(60)])
    conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False,
                            policy={"rules": {"max-rows": {"limit": 2}}})
    for i in range(3):
        assert len(conn.execute(f"SELECT id FROM items WHERE g = {i} LIMIT 10").fetchall()) == 2
    assert len(conn.execute("SELECT id FROM items WHERE g = 1 LIMIT 100000").fetchall()) == 2


def test_identities_do_not_share_decisions_through_a_shape() -> None:
    """A policy denying one identity: the shape learnt for another identity does not let it through."""
    raw = sqlite3.connect(":memory:")
    raw.execute("CREATE TABLE payroll (id INTEGER, amount INTEGER)")
    policy = {"rules": {"table-deny": {"tables": ["payroll"], "action": "allow"}},
              "overrides": [{"when": {"subject": "intern-*"}, "rules": {"table-deny": "deny"}}]}
    boss = governed_db.wrap(raw, identity=governed_db.Identity("boss", kind="human"), environment="production",
                            audit=False, policy=policy)
    intern = governed_db.wrap(raw, identity=governed_db.Identity("intern-1", kind="human"),
                              environment="production", audit=False, policy=policy)
    for i in range(4):
        boss.execute(f"SELECT amount FROM payroll WHERE id = {i}").fetchall()
    with pytest.raises(governed_db.GuardrailViolation):
        intern.execute("SELECT amount FROM payroll WHERE id = 9").fetchall()


# -- real servers -------------------------------------------------------------------------------------------


def _server_customers(conn: Any, table: str) -> None:
    cur = conn.cursor()
    cur.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, email varchar(100), ssn varchar(20), city varchar(40))")
    cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s)",
                    [(i, f"alice{i}@example.com", f"{100 + i:03d}-45-{1000 + i}", "Springfield") for i in range(40)])


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_literal_reads_on_servers_stay_masked_and_guarded(
    server: str, request: pytest.FixtureRequest, unique: str
) -> None:
    """PostgreSQL (psycopg) and MariaDB (PyMySQL): literal point reads of one shape are masked, predicates on
    masked columns refused, and a dialect-specific literal keeps its own judgement."""
    raw = request.getfixturevalue("pg_conn" if server == "postgres" else "mysql_conn")
    table = f"shape_{unique}"
    _server_customers(raw, table)
    try:
        conn = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
        cur = conn.cursor()
        for i in range(8):
            cur.execute(f"SELECT id, email, ssn, city FROM {table} WHERE id = {i} AND city = 'Springfield'")
            rows = cur.fetchall()
            assert len(rows) == 1 and rows[0][0] == i and rows[0][3] == "Springfield"
            assert f"alice{i}@example.com" not in repr(rows) and f"-45-{1000 + i}" not in repr(rows)
        for i in range(4):
            with pytest.raises(governed_db.GuardrailViolation):
                cur.execute(f"SELECT id FROM {table} WHERE ssn = '{100 + i:03d}-45-{1000 + i}'")
        special = "E'Springfield'" if server == "postgres" else "X'537072696e676669656c64'"
        cur.execute(f"SELECT id, city FROM {table} WHERE id = 3 AND city = {special}")
        assert [tuple(r) for r in cur.fetchall()] == [(3, "Springfield")]
    finally:
        raw.cursor().execute(f"DROP TABLE {table}")


def test_approval_binds_to_the_exact_literal_text(tmp_path: Any) -> None:
    """An approval granted for `... WHERE id = 1` runs that text once; another text of its shape stays refused."""
    from governed_db import approvals
    from governed_db.errors import ApprovalRequired
    from governed_db.policy import Policy
    from governed_db.policy.decision import Action, RuleHit

    def reads_need_review(stmt: Any, ctx: Any) -> RuleHit | None:
        return RuleHit("read-review", Action.REQUIRE_APPROVAL, "reads need a reviewer") if stmt is not None else None

    db, store = str(tmp_path / "app.db"), str(tmp_path / "approvals.sqlite3")
    raw = sqlite3.connect(db)
    raw.execute("CREATE TABLE t (id INTEGER, v TEXT)")
    raw.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(1, 6)])
    raw.commit()
    conn = governed_db.wrap(raw, identity=governed_db.Identity("alice"), environment="production", audit=False,
                            policy=Policy(name="review", rules=(reads_need_review,)), approvals={"store": store})
    requests = {}
    for i in (1, 2, 3, 4):  # the shape is learnt and shared meanwhile
        with pytest.raises(ApprovalRequired) as err:
            conn.execute(f"SELECT v FROM t WHERE id = {i}").fetchall()
        requests[i] = err.value.request_id
    assert len(set(requests.values())) == 4  # one request per exact text
    approvals.approve(requests[1], reviewer=governed_db.Identity("bob", roles=("dba",)), store=store)
    with pytest.raises(ApprovalRequired):
        conn.execute("SELECT v FROM t WHERE id = 4").fetchall()
    assert conn.execute("SELECT v FROM t WHERE id = 1").fetchall() == [("v1",)]
    with pytest.raises(ApprovalRequired):
        conn.execute("SELECT v FROM t WHERE id = 1").fetchall()  # used once
