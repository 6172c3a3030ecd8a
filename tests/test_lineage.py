"""Lineage: every result column and every predicate traced to its source columns through the SQL shapes."""

from __future__ import annotations

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from governed_db.masking.lineage import Lineage, Origin, trace

SCHEMA = {
    "users": ["id", "name", "email", "ssn", "city"],
    "orders": ["id", "user_id", "total", "note"],
}


def columns_of(node: exp.Table) -> tuple[str, list[str] | None]:
    key = node.name.lower()
    return key, SCHEMA.get(key)


def run(sql: str, dialect: str = "postgres") -> Lineage:
    return trace(sqlglot.parse_one(sql, read=dialect), columns_of, dialect)


def shape(o: Origin) -> tuple[str, set[str]]:
    return o.kind, {f"{t}.{c}" for t, c in o.sources} | {f"{t}.*" for t in o.rows}


E = {"users.email"}
CASES = [
    ("SELECT email FROM users", [("column", E)]),
    ("SELECT email AS e, id FROM users", [("column", E), ("column", {"users.id"})]),
    ("SELECT u.email FROM users AS u", [("column", E)]),
    ("SELECT upper(email) FROM users", [("expr", E)]),
    ("SELECT email || 'x' FROM users", [("expr", E)]),
    ("SELECT substr(ssn, 1, 3) FROM users", [("expr", {"users.ssn"})]),
    ("SELECT replace(ssn, '-', '') FROM users", [("expr", {"users.ssn"})]),
    (
        "SELECT CASE WHEN id > 1 THEN email ELSE city END FROM users",
        [("expr", {"users.id", "users.email", "users.city"})],
    ),
    ("SELECT CAST(ssn AS TEXT) FROM users", [("expr", {"users.ssn"})]),
    ("SELECT x.e FROM (SELECT email AS e FROM users) AS x", [("column", E)]),
    ("WITH c AS (SELECT email FROM users) SELECT email FROM c", [("column", E)]),
    ("WITH c(m) AS (SELECT email FROM users) SELECT m FROM c", [("column", E)]),
    (
        "SELECT email FROM users UNION ALL SELECT note FROM orders",
        [("column", {"users.email", "orders.note"})],
    ),
    (
        "SELECT upper(email) FROM users UNION SELECT note FROM orders",
        [("expr", {"users.email", "orders.note"})],
    ),
    ("SELECT string_agg(email, ',') FROM users", [("expr", E)]),
    ("SELECT json_agg(email) FROM users", [("expr", E)]),
    ("SELECT count(*), count(email) FROM users", [("const", set()), ("const", set())]),
    ("SELECT row_to_json(u) FROM users AS u", [("row", {"users.*"})]),
    ("SELECT u FROM users AS u", [("row", {"users.*"})]),
    ("SELECT (SELECT email FROM users LIMIT 1) AS s", [("expr", E)]),
    ("SELECT 1 AS one, 'a' AS two", [("const", set()), ("const", set())]),
    (
        "SELECT o.total, u.email FROM orders AS o JOIN users AS u ON u.id = o.user_id",
        [("column", {"orders.total"}), ("column", E)],
    ),
]


@pytest.mark.parametrize(("sql", "expected"), CASES)
def test_outputs_trace_to_sources(sql: str, expected: list[tuple[str, set[str]]]) -> None:
    """Each output column's origin kind and source columns match the SQL shape."""
    lin = run(sql)
    assert lin.outputs is not None and lin.exact
    assert [shape(o.origin) for o in lin.outputs] == expected


def test_star_expands_with_the_schema() -> None:
    """SELECT * and u.* expand to every column of the (aliased) table, in order."""
    lin = run("SELECT * FROM users")
    assert [o.name for o in lin.outputs or []] == SCHEMA["users"]
    lin = run("SELECT o.*, u.email FROM orders o JOIN users u ON u.id = o.user_id")
    assert [o.name for o in lin.outputs or []] == [*SCHEMA["orders"], "email"]


def test_star_over_unknown_table_is_inexact() -> None:
    """A * over a table whose columns are unknown marks the lineage inexact, as a whole-row origin."""
    lin = run("SELECT * FROM mystery")
    assert not lin.exact and lin.outputs is not None
    assert shape(lin.outputs[0].origin) == ("row", {"mystery.*"})


def test_unknown_table_columns_stay_attributed() -> None:
    """A column of a table with unknown columns is still attributed to that table (for name checks)."""
    lin = run("SELECT a FROM mystery")
    assert shape((lin.outputs or [])[0].origin) == ("column", {"mystery.a"})


@pytest.mark.parametrize(
    ("sql", "clause", "sources"),
    [
        ("SELECT id FROM users WHERE ssn LIKE '5%'", "WHERE", {"users.ssn"}),
        ("SELECT id FROM users ORDER BY email", "ORDER BY", E),
        ("SELECT email AS e FROM users ORDER BY e", "ORDER BY", E),
        ("SELECT email FROM users ORDER BY 1", "ORDER BY", E),
        ("SELECT count(*) FROM users GROUP BY city", "GROUP BY", {"users.city"}),
        ("SELECT city FROM users GROUP BY city HAVING max(email) > 'm'", "HAVING", E),
        (
            "SELECT o.id FROM orders o JOIN users u ON u.email = o.note",
            "JOIN",
            {"users.email", "orders.note"},
        ),
        (
            "SELECT id FROM orders WHERE user_id IN (SELECT id FROM users WHERE ssn = '1')",
            "WHERE",
            {"users.ssn"},
        ),
        ("SELECT row_number() OVER (PARTITION BY ssn) FROM users", "PARTITION BY", {"users.ssn"}),
        ("UPDATE users SET city = ssn WHERE id = 1", "copy", {"users.ssn"}),
        ("INSERT INTO orders (note) SELECT email FROM users", "copy", E),
        ("DELETE FROM users WHERE email = 'a@b.c'", "WHERE", E),
        ("SELECT DISTINCT ON (ssn) id FROM users", "DISTINCT ON", {"users.ssn"}),
        ("SELECT my_udf(email) FROM users", "copy", E),
        ("SELECT set_config('a.b', (SELECT email FROM users LIMIT 1), false)", "copy", E),
        (
            "SELECT id FROM users WHERE EXISTS (SELECT 1 FROM orders o WHERE o.note = users.email)",
            "WHERE",
            {"orders.note", "users.email"},
        ),
    ],
)
def test_uses_are_collected(sql: str, clause: str, sources: set[str]) -> None:
    """Columns used to filter, join, sort, group, partition or copy are collected with their clause."""
    uses = {(c, frozenset(shape(o)[1])) for c, o in run(sql).uses}
    assert (clause, frozenset(sources)) in uses


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        ("SELECT email INTO @v FROM users", "mysql"),
        ("SET @v = (SELECT email FROM users LIMIT 1)", "mysql"),
        ("SELECT email INTO TEMP t2 FROM users", "postgres"),
    ],
)
def test_stashing_a_value_is_a_copy(sql: str, dialect: str) -> None:
    """SELECT ... INTO and SET from a query move the value where masking does not follow: a copy use."""
    uses = {(c, frozenset(shape(o)[1])) for c, o in run(sql, dialect).uses}
    assert ("copy", frozenset(E)) in uses


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        ("SELECT @v AS x", "mysql"),
        ("SELECT @@hostname AS x", "mysql"),
        ("SELECT current_setting('a.b') AS x", "postgres"),
        ("SELECT lookup(id) AS x FROM users", "postgres"),
    ],
)
def test_state_and_unknown_functions_are_untraced(sql: str, dialect: str) -> None:
    """Session variables, settings and functions sqlglot does not know are 'unknown' (checked by value), never const."""
    assert (run(sql, dialect).outputs or [])[0].origin.kind == "unknown"


def test_returning_is_traced() -> None:
    """UPDATE ... RETURNING exposes its output columns like a SELECT."""
    lin = run("UPDATE users SET city = 'x' WHERE id = 1 RETURNING email, id")
    assert [shape(o.origin) for o in lin.outputs or []] == [("column", E), ("column", {"users.id"})]


def test_statement_tree_is_not_mutated() -> None:
    """trace works on a copy: the shared analysis tree is left exactly as it was."""
    tree = sqlglot.parse_one("WITH c AS (SELECT email FROM users) SELECT * FROM c u", read="postgres")
    before = tree.sql()
    trace(tree, columns_of, "postgres")
    assert tree.sql() == before


@settings(max_examples=60, deadline=None)
@given(
    col=st.sampled_from(["email", "ssn", "name"]),
    wrap=st.sampled_from(
        [
            "upper({})",
            "lower({})",
            "{} || ''",
            "substr({}, 2)",
            "trim({})",
            "coalesce({}, '')",
            "CAST({} AS TEXT)",
            "md5({})",
            "concat({}, 'a')",
            "reverse({})",
        ]
    ),
    depth=st.integers(min_value=0, max_value=2),
    via=st.sampled_from(["plain", "subquery", "cte"]),
)
def test_any_expression_over_a_column_keeps_its_source(col: str, wrap: str, depth: int, via: str) -> None:
    """However deep the function nesting and whatever the query shape, the sensitive source is kept."""
    expr = col
    for _ in range(depth + 1):
        expr = wrap.format(expr)
    inner = f"SELECT {expr} AS v FROM users"
    sql = {
        "plain": inner,
        "subquery": f"SELECT s.v FROM ({inner}) AS s",
        "cte": f"WITH c AS ({inner}) SELECT v FROM c",
    }[via]
    lin = run(sql)
    kind, sources = shape((lin.outputs or [])[0].origin)
    assert f"users.{col}" in sources and kind == "expr"


NEW_SHAPES = [
    ("VALUES ((SELECT email FROM users))", "postgres", [("expr", E)]),
    ("SELECT x FROM (VALUES ((SELECT ssn FROM users))) AS v(x)", "postgres", [("expr", {"users.ssn"})]),
    ("SELECT d FROM users AS s(a, b, d)", "postgres", [("column", E)]),
    (
        "SELECT v FROM users, unnest(ARRAY[email, ssn]) AS v",
        "postgres",
        [("expr", {"users.email", "users.ssn"})],
    ),
    ("SELECT l.x FROM users, LATERAL (SELECT ssn AS x) AS l", "postgres", [("column", {"users.ssn"})]),
    ("SELECT #3 FROM users", "duckdb", [("column", E)]),
    ("SELECT x FROM users, generate_series(1, 3) AS x", "postgres", [("const", set())]),
    ("SELECT rowid FROM users", "sqlite", [("const", set())]),
    ("SELECT count(upper(email)) FROM users", "postgres", [("expr", E)]),
    ("SELECT email IS NULL FROM users", "postgres", [("const", set())]),  # exact: decision 0209
    ("SELECT upper(email) IS NULL FROM users", "postgres", [("expr", E)]),
    ("SELECT * FROM query('SELECT email FROM users')", "duckdb", [("column", E)]),
]


@pytest.mark.parametrize(("sql", "dialect", "expected"), NEW_SHAPES)
def test_values_renames_table_functions_and_positions_are_traced(
    sql: str, dialect: str, expected: list[tuple[str, set[str]]]
) -> None:
    """VALUES cells, alias column lists, unnest/LATERAL, #n, row locators, count(f(x)) and query() trace."""
    lin = run(sql, dialect)
    assert lin.outputs is not None
    assert [shape(o.origin) for o in lin.outputs] == expected


@pytest.mark.parametrize(
    ("sql", "clause", "sources"),
    [
        (
            "SELECT 1 FROM orders LIMIT (SELECT count(*) FROM users WHERE ssn LIKE '5%')",
            "WHERE",
            {"users.ssn"},
        ),
        ("SELECT 1 / (CASE WHEN ssn LIKE '5%' THEN 0 ELSE 1 END) FROM users", "CASE", {"users.ssn"}),
        ("SELECT 1 / (length(ssn) - 11) FROM users", "division", {"users.ssn"}),
        ("SELECT count(nullif(ssn, 'x')) FROM users", "a comparison", {"users.ssn"}),
        ("SELECT (ascii(ssn) - 53) * 99 FROM users", "arithmetic", {"users.ssn"}),
        (
            "MERGE INTO orders o USING users u ON u.id = o.user_id WHEN MATCHED THEN UPDATE SET note = u.ssn",
            "copy",
            {"users.ssn"},
        ),
        (
            "INSERT INTO orders (id, note) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET note = "
            "(SELECT email FROM users LIMIT 1)",
            "copy",
            E,
        ),
    ],
)
def test_oracles_and_copies_are_uses(sql: str, clause: str, sources: set[str]) -> None:
    """LIMIT subqueries, CASE conditions, divisors, nested comparisons, MERGE and upserts are collected."""
    uses = {(c, frozenset(shape(o)[1])) for c, o in run(sql).uses}
    assert (clause, frozenset(sources)) in uses


def test_lost_and_opaque_unknowns_differ() -> None:
    """A UDF result is opaque (inputs traced); an unresolvable name is lost (fails closed over PII)."""
    udf, lost = run("SELECT my_udf(id), nosuchcol FROM users").outputs or []
    assert udf.origin.kind == "unknown" and not udf.origin.lost
    assert lost.origin.lost
    top = run("SELECT email IS NULL AS gone FROM users")
    assert not [u for u in top.uses if u[0] == "a comparison"]  # a result column, not a predicate
