"""MySQL/MariaDB ``SHOW`` statements read as the information_schema queries whose rows they list.

``SHOW TABLE STATUS``, ``SHOW [FULL] PROCESSLIST`` and ``SHOW INDEX|INDEXES|KEYS`` answer with the rows of
``information_schema.TABLES``, ``PROCESSLIST`` and ``STATISTICS`` under names of their own. Masking traces them as
those queries, so a column masked there (a table's sizes, decision 0247; an index's cardinality, decision 0306; other
sessions' statements, decision 0246) is masked in the listing too, and a ``WHERE`` of the SHOW (``SHOW TABLE STATUS
WHERE Data_length > 16384``, ``SHOW INDEX FROM t WHERE Cardinality > 8``) is judged as the filter on those columns
it is: the server evaluates it over the unmasked values (decision 0306).
"""

from __future__ import annotations

import re

from sqlglot import exp
from sqlglot.errors import ParseError

#: what ``SHOW [FULL] PROCESSLIST`` lists: information_schema.PROCESSLIST's rows, under its column names
PROCESSLIST_READ = "information_schema.PROCESSLIST"
TABLES = "information_schema.TABLES"
STATISTICS = "information_schema.STATISTICS"

#: what ``SHOW TABLE STATUS`` lists: information_schema.TABLES's columns, under the names it gives them
TABLE_STATUS_COLUMNS = (
    "TABLE_NAME AS Name", "ENGINE AS Engine", "VERSION AS Version", "ROW_FORMAT AS Row_format",
    "TABLE_ROWS AS `Rows`", "AVG_ROW_LENGTH AS Avg_row_length", "DATA_LENGTH AS Data_length",
    "MAX_DATA_LENGTH AS Max_data_length", "INDEX_LENGTH AS Index_length", "DATA_FREE AS Data_free",
    "AUTO_INCREMENT AS Auto_increment", "CREATE_TIME AS Create_time", "UPDATE_TIME AS Update_time",
    "CHECK_TIME AS Check_time", "TABLE_COLLATION AS Collation", "CHECKSUM AS Checksum",
    "CREATE_OPTIONS AS Create_options", "TABLE_COMMENT AS Comment", "MAX_INDEX_LENGTH AS Max_index_length",
    "TEMPORARY AS Temporary",
)
#: what ``SHOW INDEX`` lists (MariaDB 10.11): information_schema.STATISTICS's columns, under the names it gives them
#: (MySQL 8's ``Visible`` and ``Expression`` are matched by name, as columns of unknown origin)
INDEX_COLUMNS = (
    "TABLE_NAME AS `Table`", "NON_UNIQUE AS Non_unique", "INDEX_NAME AS Key_name", "SEQ_IN_INDEX AS Seq_in_index",
    "COLUMN_NAME AS Column_name", "COLLATION AS `Collation`", "CARDINALITY AS Cardinality", "SUB_PART AS Sub_part",
    "PACKED AS Packed", "NULLABLE AS `Null`", "INDEX_TYPE AS Index_type", "COMMENT AS `Comment`",
    "INDEX_COMMENT AS Index_comment", "IGNORED AS `Ignored`",
)
#: the listing each SHOW reads: (its columns, the catalog table)
_LISTINGS: dict[str, tuple[tuple[str, ...], str]] = {
    "PROCESSLIST": (("*",), PROCESSLIST_READ),
    "TABLE STATUS": (TABLE_STATUS_COLUMNS, TABLES),
    "INDEX": (INDEX_COLUMNS, STATISTICS),
}
#: ``SHOW [EXTENDED] INDEX|INDEXES|KEYS {FROM|IN} t [{FROM|IN} db] [WHERE ...]``, which sqlglot keeps as a command
#: when it spells ``INDEXES``, ``KEYS``, ``EXTENDED`` or a database
_INDEX_COMMAND = re.compile(r"\s*(?:EXTENDED\s+)?(?:INDEX|INDEXES|KEYS)\s+(?:FROM|IN)\s", re.IGNORECASE)
_WHERE = re.compile(r"\bWHERE\b(?P<condition>.*)\Z", re.IGNORECASE | re.DOTALL)


def show_listing(tree: exp.Expression, dialect: str) -> exp.Select | None:
    """The information_schema query whose rows MySQL/MariaDB SHOW ``tree`` lists, with its ``WHERE`` (over the
    names the SHOW gives the columns); ``None`` for any other statement."""
    where: exp.Expression | None
    if isinstance(tree, exp.Show):
        shown = tree.name.upper()
        if shown not in _LISTINGS:
            return None
        found = tree.args.get("where")
        where = found.this if isinstance(found, exp.Where) else None
    elif isinstance(tree, exp.Command) and tree.name.upper() == "SHOW":
        text = tree.expression.name if isinstance(tree.expression, exp.Expression) else str(tree.expression or "")
        if not _INDEX_COMMAND.match(text):
            return None
        shown = "INDEX"
        matched = _WHERE.search(text)
        where = _condition(matched.group("condition"), dialect) if matched else None
    else:
        return None
    columns, listed = _LISTINGS[shown]
    inner = exp.select(*columns, dialect=dialect).from_(listed, dialect=dialect)
    if where is None:
        return inner
    names = [exp.column(e.alias_or_name, quoted=True) for e in inner.expressions]
    return exp.select(*names).from_(inner.subquery("listed")).where(where.copy())


def _condition(text: str, dialect: str) -> exp.Expression:
    """A SHOW's WHERE condition; one that cannot be read is taken to read every column it may name."""
    parsed: exp.Expression | None
    try:
        parsed = exp.maybe_parse(f"SELECT 1 WHERE {text}", dialect=dialect)
    except ParseError:
        parsed = None
    found = parsed.args.get("where") if isinstance(parsed, exp.Select) else None
    if isinstance(found, exp.Where):
        return found.this  # type: ignore[no-any-return]
    names = [exp.column(c.rsplit(" AS ", 1)[-1].strip("`"), quoted=True) for c in INDEX_COLUMNS]
    return exp.Coalesce(this=names[0], expressions=names[1:]).is_(exp.null()).not_()
