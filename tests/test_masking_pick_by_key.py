"""``arg_max(x, key)`` / ``max_by`` (DuckDB): the key picks the row, the value comes back masked.

"The name of the customer with the largest total" is an everyday analytics question. It was refused whenever
``x`` was masked, because the function was unknown to the data-flow analysis. The key (and the optional count)
decides which row's value is returned, as an ORDER BY would: a masked key stays a refused use. The value is
returned like ``max(x)``: derived, masked whole.
"""

from __future__ import annotations

from typing import Any

import pytest

import governed_db

duckdb = pytest.importorskip("duckdb")

AGENT = governed_db.Identity("agent-x", kind="agent", on_behalf_of="bob")


def _customers(second_ssn: str = "123-45-1001") -> tuple[Any, Any]:
    raw = duckdb.connect()
    raw.execute(
        "CREATE TABLE customers (id INT, full_name VARCHAR, email VARCHAR, ssn VARCHAR, city VARCHAR, total DOUBLE)"
    )
    raw.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
        [
            (1, "Alice Smith", "alice@example.com", "536-22-8726", "Paris", 120.0),
            (2, "Bob Jones", "bob@example.org", second_ssn, "Lyon", 75.5),
            (3, "Carol White", "carol@example.net", "219-45-1234", "Paris", 310.25),
        ],
    )
    return raw, governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT arg_max(full_name, total) FROM customers", [("[PERSON_NAME]",)]),
        ("SELECT max_by(email, total) FROM customers", [("[EMAIL]",)]),
        (
            "SELECT city, arg_max(full_name, total) AS top FROM customers GROUP BY city ORDER BY city",
            [("Lyon", "[PERSON_NAME]"), ("Paris", "[PERSON_NAME]")],
        ),
        ("SELECT arg_min(id, total), arg_max(city, total) FROM customers", [(2, "Paris")]),
        ("SELECT min_by(id, total) FILTER (WHERE city = 'Paris') FROM customers", [(1,)]),
    ],
)
def test_the_value_of_the_row_a_plain_key_picks_is_returned_masked(sql: str, expected: list[tuple[Any, ...]]) -> None:
    raw, gov = _customers()
    assert gov.execute(sql).fetchall() == expected
    # the unmasked parts are the database's own answer
    if "full_name" not in sql and "email" not in sql:
        assert raw.execute(sql).fetchall() == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT arg_max(id, ssn) FROM customers",
        "SELECT min_by(id, ssn) FROM customers",
        "SELECT arg_max(full_name, length(ssn)) FROM customers",
        "SELECT arg_max(id, total, length(ssn)) FROM customers",
        "SELECT arg_max(id, substr(ssn, 1, 1)) FROM customers WHERE id IN (1, 2)",
    ],
)
def test_a_masked_key_is_refused_and_would_be_an_oracle(sql: str) -> None:
    """The second row's SSN sorts before or after the first's: the raw answer tells which; governed, both are
    refused with the same reason, before anything runs."""
    answers = []
    for ssn in ("123-45-1001", "900-45-1001"):
        raw, gov = _customers(ssn)
        answers.append(raw.execute(sql).fetchall())
        with pytest.raises(governed_db.GuardrailViolation, match=r"ssn.*arg_m(ax|in)\(\) \(it picks the row\)"):
            gov.execute(sql)
    if "length" not in sql:
        assert answers[0] != answers[1]  # a real oracle on the raw connection


def test_a_guess_unioned_in_comes_back_masked_whichever_row_wins() -> None:
    """``arg_max(v, k)`` over a masked value UNION ALL a guess: the winning row is decided by the plain key,
    and the value is masked either way (the guess is not shown back in clear)."""
    raw, gov = _customers()
    for k1, k2 in ((1, 2), (2, 1)):
        sql = (
            f"SELECT arg_max(v, k) FROM (SELECT ssn AS v, {k1} AS k FROM customers WHERE id = 2 "
            f"UNION ALL SELECT '123-45-1001', {k2})"
        )
        assert raw.execute(sql).fetchall() == [("123-45-1001",)]
        assert gov.execute(sql).fetchall() == [("[US_SSN]",)]


def test_elsewhere_a_function_of_that_name_is_the_users_own_and_stays_refused() -> None:
    """SQLite has no ``arg_max``: one registered on the raw connection is an application's own function, which
    sees the value it is given (here it could store it anywhere); over a masked value it stays refused."""
    import sqlite3

    seen: list[object] = []
    raw = sqlite3.connect(":memory:")
    raw.create_aggregate("arg_max", 2, type("Spy", (), {
        "__init__": lambda self: None,
        "step": lambda self, v, k: seen.append(v),
        "finalize": lambda self: "x",
    }))  # fmt: skip
    raw.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, full_name TEXT, ssn TEXT, total REAL)")
    raw.execute("INSERT INTO customers VALUES (1, 'Alice Smith', '536-22-8726', 10.0)")
    gov = governed_db.wrap(raw, identity=AGENT, environment="production", audit=False)
    with pytest.raises(governed_db.GuardrailViolation, match="ssn"):
        gov.execute("SELECT arg_max(ssn, total) FROM customers")
    assert seen == []  # refused before the database (and the function) saw anything
    assert gov.execute("SELECT arg_max(id, total) FROM customers").fetchall() == [("x",)]
