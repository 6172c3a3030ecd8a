"""Red-team round 9 over masking on PostgreSQL and MariaDB, hunted with the non-interference harness
(tests/test_masking_noninterference.py): two copies A and B differ only in row 1's masked values, whose masks are
byte-identical; any allowed statement whose governed observations differ between them is a leak.

Sweeps of ~12 000 random programs over shapes the harness's grammar does not have (PostgreSQL: LATERAL, GROUPING
SETS/ROLLUP/CUBE, ordered and DISTINCT string_agg/array_agg, RANGE frames, FILTER, jsonb path functions,
regexp_split_to_table, tsvector, ANY(ARRAY[...]), VALUES and generate_series joins, MERGE, ON CONFLICT,
RETURNING; MariaDB: JSON_TABLE, JSON_EXTRACT/JSON_SEARCH, REGEXP_SUBSTR/REGEXP_INSTR, FIND_IN_SET, ELT/FIELD,
GROUP_CONCAT with ORDER BY/SEPARATOR, WITH ROLLUP, ON DUPLICATE KEY UPDATE, REPLACE, INSERT IGNORE, user
variables, IF/IFNULL/COALESCE chains) and several hundred hand-written ones found one leak:

* MariaDB ``DO @v := (SELECT ssn FROM t WHERE id = 1)`` (or ``DO (SELECT @v := ssn ...)``) copied the clear value
  into a user variable that ``SELECT @v`` then returned: ``DO`` was analysed as the ``SELECT`` it evaluates, but
  the statement facts were rebuilt from a few of that SELECT's fields and lost its flags, ``variable-copy`` among
  them. They are kept now, so ``DO`` is refused wherever the same ``SELECT`` would be.
* MariaDB ``ANALYZE SELECT @v := ssn FROM t WHERE id = 1`` runs the SELECT, so it made
  the same copy; its facts were rebuilt as a plain EXPLAIN's, without the flags. An analysing EXPLAIN of a read
  keeps them now.

Each check runs on both copies: the raw connections tell A from B, the governed ones do not (the statement is
refused), and the innocent look-alikes still run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import governed_db
from tests.test_masking_noninterference import Pair


@pytest.fixture(scope="module")
def maria() -> Iterator[Pair]:
    pair = Pair("mysql")
    yield pair
    pair.close()


DO_COPIES = [
    ["SET @rt9v := 0", "DO @rt9v := (SELECT ssn FROM t WHERE id = 1)", "SELECT @rt9v"],
    ["SET @rt9v := 0", "DO (SELECT @rt9v := ssn FROM t WHERE id = 1)", "SELECT @rt9v"],
    ["SET @rt9v := 0", "DO 1, @rt9v := (SELECT length(full_name) FROM t WHERE id = 1)", "SELECT @rt9v"],
]
ANALYZE_COPIES = [
    ["SET @rt9v := 0", "ANALYZE SELECT @rt9v := ssn FROM t WHERE id = 1", "SELECT @rt9v"],
    ["SET @rt9v := 0", "ANALYZE SELECT id, @rt9v := length(full_name) FROM t WHERE id = 1", "SELECT @rt9v"],
]


@pytest.mark.parametrize("program", DO_COPIES, ids=["assign-subquery", "subquery-assigns", "derived-length"])
def test_do_assigning_a_user_variable_is_refused(maria: Pair, program: list[str]) -> None:
    assert maria.raw_differs(program)  # the copy route, unprotected: SELECT @v shows each copy's own secret
    a, b = maria.governed(program)
    assert a == b, f"A: {a}\nB: {b}"
    refused = a[1]
    assert refused[0] == "refused" and "variable-copy" in refused[1], refused
    with pytest.raises(governed_db.GuardrailViolation) as caught:
        maria._run(maria.gov[0])(program[1])
    assert "DO assigns column values to a user variable" in str(caught.value)


def test_innocent_do_still_runs(maria: Pair) -> None:
    """``DO`` over constants, over a masked value that goes nowhere, and a constant assignment keep running."""
    run = maria._run(maria.gov[0])
    for sql in ("DO 1", "DO (SELECT count(*) FROM t)", "DO (SELECT ssn FROM t WHERE id = 1)", "DO @rt9w := 5"):
        run(sql)
    assert [tuple(r) for r in run("SELECT @rt9w")[0]] == [(5,)]
    assert [tuple(r) for r in run("SELECT ssn FROM t WHERE id = 2")[0]] != [("219-45-1234",)]  # masked, not clear


@pytest.mark.parametrize("program", ANALYZE_COPIES, ids=["ssn", "derived-length"])
def test_analyze_select_assigning_a_user_variable_is_refused(maria: Pair, program: list[str]) -> None:
    assert maria.raw_differs(program)
    a, b = maria.governed(program)
    assert a == b, f"A: {a}\nB: {b}"
    assert a[1][0] == "refused" and "variable-copy" in a[1][1], a[1]


def test_innocent_analyze_still_runs(maria: Pair) -> None:
    """A plain ``ANALYZE SELECT`` over the table and one assigning a constant keep running."""
    run = maria._run(maria.gov[0])
    run("ANALYZE SELECT id FROM t WHERE city = 'Paris'")
    run("ANALYZE SELECT @rt9x := 7")
    assert [tuple(r) for r in run("SELECT @rt9x")[0]] == [(7,)]
