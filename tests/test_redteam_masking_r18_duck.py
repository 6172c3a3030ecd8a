"""Red-team round 18 on DuckDB: two databases that differ only in one customer's secrets (a right and a wrong guess).
DuckDB's scans follow no index, so the round tried its own functions on the values: lists, structs, maps, PIVOT and
UNPIVOT, QUALIFY, samples, ``string_split``, ``regexp_extract``, ``approx_count_distinct``, ``hash``,
``bit_count``, ``arg_max``/``arg_min``, ``list_sort``, ``COLUMNS(...)`` in a WHERE, star modifiers, column lists
given to a table, lateral unnests, catalog functions and error messages. None told the copies apart through the
governed connection; the attempts are kept as regressions, beside look-alikes over clear columns that must answer
exactly as the raw connection does.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests._redteam import govern
from tests.test_masking_noninterference import ATTACKER
from tests.test_redteam_masking_r13_rt13lite import ALICE, ANNA, _duck, _duck_observe, _no_clear_value

pytest.importorskip("duckdb")

W = "FROM customers WHERE id = 1"
ATTEMPTS = [
    f"SELECT list_sort([ssn, '3'])[1] = '3' {W}",
    f"SELECT list_position(list_sort([ssn, '3']), '3') {W}",
    f"SELECT cardinality(map([ssn, '536-22-8726'], [1, 2])) {W}",
    f"SELECT len(list_distinct([ssn, '536-22-8726'])) {W}",
    f"SELECT len(string_split(ssn, '5')) {W}",
    f"SELECT regexp_extract(ssn, '^5') {W}",
    f"SELECT hash(ssn) = hash('536-22-8726') {W}",
    f"SELECT md5(ssn) = md5('536-22-8726') {W}",
    f"SELECT levenshtein(ssn, '536-22-8726') {W}",
    f"SELECT len([x FOR x IN [ssn] IF x LIKE '5%']) {W}",
    f"SELECT starts_with(ssn, '5') {W}",
    "SELECT approx_count_distinct(x) FROM (SELECT ssn AS x FROM customers UNION ALL SELECT '536-22-8726')",
    "SELECT arg_max(id, ssn) FROM customers",
    "SELECT arg_min(city, ssn) FROM customers",
    "SELECT first(id ORDER BY ssn) FROM customers",
    "SELECT id FROM customers QUALIFY row_number() OVER (ORDER BY ssn) = 1",
    "SELECT * FROM (PIVOT customers ON ssn USING count(*) GROUP BY city)",
    "SELECT * FROM (UNPIVOT (SELECT id, ssn, email FROM customers) ON ssn, email INTO NAME k VALUE v) WHERE v LIKE '5%'",
    "SELECT count(*) FILTER (ssn LIKE '5%') FROM customers",
    "SELECT count(*) FROM customers c WHERE c::VARCHAR LIKE '%536%'",
    "SELECT count(*) FROM customers WHERE COLUMNS(lambda c: c = 'ssn') LIKE '5%'",
    "SELECT count(*) FROM customers WHERE COLUMNS('^ss') LIKE '5%'",
    # 0379: what COLUMNS(...) names is read over-wide, and a pattern not simple enough is every column
    "SELECT count(*) FROM customers WHERE COLUMNS(['SSN']) LIKE '5%'",
    "SELECT count(*) FROM customers WHERE COLUMNS('^x|s[s]n$') LIKE '5%'",
    "SELECT count(*) FROM customers WHERE COLUMNS('(?i)^SS') LIKE '5%'",
    "SELECT count(*) FROM customers WHERE COLUMNS('^\\x73s') LIKE '5%'",
    # a lookup in a map built from a masked value (or by one) stays refused
    f"SELECT map([ssn], [1])['536-22-8726'] {W}",
    f"SELECT map(['536-22-8726'], [1])[ssn] {W}",
    f"SELECT map_from_entries([(ssn, 1)])['536-22-8726'] {W}",
    "SELECT count(*) FROM (SELECT * RENAME (ssn AS x) FROM customers) WHERE x LIKE '5%'",
    "SELECT count(*) FROM (SELECT * LIKE 'ss%' FROM customers) t WHERE t.ssn LIKE '5%'",
    "SELECT count(*) FROM customers t(a, b, c, d) WHERE d LIKE '5%'",
    "SELECT count(*) FROM customers WHERE customers['ssn'] LIKE '5%'",
    "SELECT count(*) FROM customers c, LATERAL (SELECT c.ssn AS q) WHERE q LIKE '5%'",
    "SELECT count(*) FROM customers c, (SELECT unnest([{'q': c.ssn}], recursive := true)) WHERE q LIKE '5%'",
    "SELECT count(*) FROM (SELECT union_value(k := ssn) AS s FROM customers) WHERE s.k LIKE '5%'",
    f"SELECT cast(ssn AS INT) {W}",
    f"SELECT error(ssn) {W}",
    "SUMMARIZE customers",
]


def _runs(sql: str, governed: bool) -> list[Any]:
    out = []
    for secret in (ALICE, ANNA):
        raw = _duck(secret)
        conn = govern(raw, ATTACKER) if governed else raw
        out.append(_duck_observe(conn, sql))
        conn.close()
    return out


@pytest.mark.parametrize("sql", ATTEMPTS, ids=lambda s: s[:60])
def test_attempts_are_answered_alike(sql: str) -> None:
    raw = _runs(sql, governed=False)
    assert raw[0] != raw[1], raw  # the oracle, unprotected
    a, b = _runs(sql, governed=True)
    assert a == b, (a, b)
    _no_clear_value(a)


#: the same functions over clear columns: exact
LOOK_ALIKES = [
    f"SELECT list_sort([city, 'A']) {W}",
    "SELECT arg_max(city, amount), arg_min(id, amount) FROM customers",
    f"SELECT hash(city) = hash('Paris'), len(string_split(city, 'a')), regexp_extract(city, '^P') {W}",
    "SELECT id FROM customers QUALIFY row_number() OVER (ORDER BY amount DESC) = 1",
    "SELECT * FROM (PIVOT (SELECT city, amount FROM customers) ON city USING sum(amount)) ",
    "SELECT approx_count_distinct(city), bit_count(id) FROM customers GROUP BY id ORDER BY id LIMIT 1",
    f"SELECT {{'c': city, 'n': id}}.c {W}",
    "SELECT id FROM customers USING SAMPLE 100% (bernoulli, 7) ORDER BY id",
    # over-refusal and over-masking noticed in round 18 (decision 0379): COLUMNS(...) in a WHERE is the columns it
    # names (a simple regular expression, which RE2 and Python read alike, or a list of names); a lookup in a map
    # the statement builds from clear columns is no member of a masked document
    "SELECT count(*) FROM customers WHERE COLUMNS('^ci') LIKE 'P%'",
    "SELECT count(*) FROM customers WHERE COLUMNS(['city']) LIKE 'P%'",
    "SELECT count(*) FROM customers WHERE COLUMNS(['CITY']) LIKE 'P%' AND COLUMNS('^am|^id$') > 1",
    f"SELECT map([city], [amount])[city] {W}",
    f"SELECT (map([city], [amount]))['Paris'], map_from_entries([(city, amount)])[city] {W}",
]


@pytest.mark.parametrize("sql", LOOK_ALIKES, ids=lambda s: str(s)[:60])
def test_look_alikes_answer_as_raw(sql: str) -> None:
    raw = _runs(sql, governed=False)
    gov = _runs(sql, governed=True)
    assert gov == raw and not str(gov[0]).startswith(("refused", "Binder", "Parser")), (gov, raw)
