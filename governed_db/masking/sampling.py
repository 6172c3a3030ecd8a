"""A sample whose first rows an agent cannot fill for the rest of the table (decision 0294).

A table is classified from a sample: ``SELECT * FROM t LIMIT sample_rows``, the first rows in the order the
database stores or keys them. Whoever may insert rows chooses what lies there — a few hundred rows of ``'n/a'``
with lower keys than the rows that hold e-mails and SSNs — and a new connection then settled the plainly named
text columns as innocent from them. When that first read is full (the table has more rows than it), two more
bounded reads add to it:

* **rows spread across the table**, by the database's own sampling (:func:`schema.sample_spread`): a column is
  judged on what the table holds, not on what its first rows hold;
* **the rare values of a column the sample shows only a few distinct values of** (:func:`schema.sample_rare`):
  among the first ``RARE_WINDOW * sample_rows`` rows (decision 0250's bound), up to ``sample_rows`` rows where
  such a column holds a value the sample did not. Repetition is no evidence: the classification counts each
  distinct value once as well (:func:`classify.classify_sample`), so three SSNs found behind three hundred
  ``'n/a'`` label the column.

Both are reads of masking's own, on the caller's session, as the plain sample is; the async warm-up runs this
module's reader too, with the same answers, so a connection classifies a table the same way on either side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp

from governed_db.masking import schema
from governed_db.masking.classify import FEW_ROWS, non_empty, type_category
from governed_db.sql.analysis import sqlglot_dialect

#: the rare-value search reads this many times ``sample_rows`` rows at most (decision 0250's window)
RARE_WINDOW = 100


def few_values(declared: str | None, values: Sequence[Any], floor: int) -> list[str] | None:
    """The distinct values of a text column whose sample holds at least ``floor`` non-empty values but fewer than
    ``floor`` distinct ones (sorted); ``None`` for any other column (a nearly empty one is decision 0250's)."""
    if type_category(declared) != "text" or non_empty(values) < floor:
        return None
    if any(v is not None and not isinstance(v, str) for v in values):
        return None
    distinct = {v for v in values if v is not None}
    if len({v for v in distinct if v.strip()}) >= floor:
        return None
    return sorted(distinct)


def wider(
    conn: Any,
    dialect: str,
    table_sql: str,
    sampled: tuple[list[str], list[Sequence[Any]]],
    columns: Sequence[tuple[str, str | None]],
    limit: int,
) -> list[Sequence[Any]]:
    """The rows to classify ``table_sql`` with, given ``sampled`` (its first ``limit`` rows): those rows when they
    are the whole table; else the first half of them, up to half as many rows spread across the table, and up to
    half as many rows holding the rare values of its few-valued text columns — about as many values to label as
    before, so classification costs what it did. Reads that fail add nothing (the first rows stand, as before)."""
    names, rows = sampled
    if limit <= 0 or len(rows) < limit:
        return list(rows)
    width = len(names)
    half = max(1, limit // 2)
    spread = [r for r in schema.sample_spread(conn, dialect, table_sql, half) or () if len(r) == width]
    # ``sampled`` may hold more than ``limit`` rows: SQLite's and DuckDB's rows drawn at random past the first ones
    # (decision 0288) are kept with the spread rows
    out = [*rows[: limit - len(spread)], *rows[limit:], *spread]
    declared = {c.lower(): t for c, t in columns}
    floor = min(FEW_ROWS, limit)
    seen: dict[str, list[str]] = {}
    sg = sqlglot_dialect(dialect)
    for i, name in enumerate(names):
        # few-valued in the first rows (placed there) or in what the table holds: its rare values are looked for
        found = few_values(declared.get(name.lower()), [r[i] for r in (*rows, *spread)], floor)
        if found is not None:
            seen[exp.to_identifier(name, quoted=True).sql(dialect=sg)] = found
    if seen:
        rare = schema.sample_rare(conn, dialect, table_sql, seen, half, RARE_WINDOW * limit)
        out.extend(r for r in rare or () if len(r) == width)
    return out


def columns_of(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> Mapping[str, list[Any]]:
    """Each sampled column's values, by its name as the database spells it."""
    return {n: [r[i] for r in rows if i < len(r)] for i, n in enumerate(names)}


def hidden(
    conn: Any,
    dialect: str,
    table_sql: str,
    names: Sequence[str],
    columns: Sequence[tuple[str, str | None]],
    limit: int,
) -> dict[str, list[Any]]:
    """The values of the table's columns that ``SELECT *`` leaves out, by name: MySQL/MariaDB ``INVISIBLE`` columns,
    which the catalog lists and a statement may name. Unsampled, such a column held no value to label it by, and a
    filter on one holding SSNs under an innocent name (``code``) was answered (decision 0402). Up to ``limit`` rows
    where one is not NULL, among the first ``RARE_WINDOW * limit``; nothing is read when there is none, or on
    other databases."""
    if schema.family(dialect) != "mysql":
        return {}
    shown = {n.lower() for n in names}
    left = [c for c, _ in columns if c.lower() not in shown]
    if not left:
        return {}
    sg = sqlglot_dialect(dialect)
    quoted = [exp.to_identifier(c, quoted=True).sql(dialect=sg) for c in left]
    rows = schema.sample_columns(conn, dialect, table_sql, quoted, limit, RARE_WINDOW * limit)
    return {} if rows is None else {c: [r[i] for r in rows if i < len(r)] for i, c in enumerate(left)}
