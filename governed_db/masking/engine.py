"""Per-connection masking state: configuration, catalog, table classifications, lineage cache.

Kept in ``gov.state["masking"]``. Table facts (columns, labels) are read
once per connection and schema version (DDL through the connection bumps
the version); lineage is computed once per (statement text, schema version)
and shared by the predicate guard (before the statement runs — the best
moment to read the catalog) and the result plan (after).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from governed_db._cache import LRU, STATEMENT_CHARS, STATEMENTS, new_generation
from governed_db.identity import Identity
from governed_db.masking import app_functions, drift, sampling, schema
from governed_db.masking.catalog import Catalog, load_catalog, table_key
from governed_db.masking.classify import (
    FEW_ROWS,
    OBSERVED_TEXT,
    ColumnClass,
    classify_name,
    classify_sample,
    key_label,
    non_empty,
    provisional_class,
    scanned_while_provisional,
    sparse_text,
    type_category,
)
from governed_db.masking.config import Grant, MaskingConfig, load_config, resolve_key, unmask_grants
from governed_db.masking.constraints import (
    changed_row_uses,
    constraint_uses,
    ddl_uses,
    default_uses,
    partition_uses,
    rename_uses,
    row_check_uses,
    stored_order_uses,
)
from governed_db.masking.lineage import Lineage, Origin, trace
from governed_db.masking.mysql_show import show_listing
from governed_db.masking.names import SCHEMA_PRAGMAS
from governed_db.masking.origins import combine
from governed_db.masking.schema import Constraint
from governed_db.masking.strategies import Masker, StrategyContext, build_strategy
from governed_db.masking.strategies.redact import is_date_label
from governed_db.masking.writes import EXECUTE_USE
from governed_db.sql._arrows import json_arrows
from governed_db.sql._sqlite_reading import parse_one
from governed_db.sql.analysis import Analysis, sqlglot_dialect

if TYPE_CHECKING:
    from governed_db.pipeline import Governor

#: ``DECLARE name ... CURSOR``, after any leading comments
def _schema_pragma(tree: exp.Expression) -> bool:
    """``PRAGMA table_info(t)`` / ``PRAGMA main.index_list('t')``: a schema pragma over a name (not a query)."""
    if not isinstance(tree, exp.Pragma):
        return False
    call = tree.this
    if isinstance(call, exp.EQ):
        name, args = call.this, [call.expression]
    elif isinstance(call, exp.Anonymous):
        name, args = call.this, list(call.expressions)
    else:
        name, args = call, []
    name = name.name if isinstance(name, exp.Expression) else name
    simple = (exp.Column, exp.Identifier, exp.Literal, exp.Var)
    return str(name).lower() in SCHEMA_PRAGMAS and all(isinstance(a, simple) for a in args)


_DECLARE_CURSOR = re.compile(r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*DECLARE\s.*?\bCURSOR\b", re.I | re.S)
CURSOR_USE = "a cursor (FETCH would return it unmasked)"
#: a table whose catalog could not be read is tried again after this many seconds
RETRY_SECONDS = 30.0
#: a table sampled (nearly) empty is sampled again after this many seconds, then twice as long each time it is
#: still nearly empty, up to RECHECK_MAX; a value the scan finds masked brings the next sample forward. The cap
#: bounds how long an expression over such a column (scanned, not redacted) can outlive the data's arrival
RECHECK_FIRST = 1.0
RECHECK_MAX = 5.0
#: a settled table the sample read whole is classified again this long after it was, at the earliest, once values
#: it did not hold pass by (decision 0268; one that the scan masks brings it forward)
WATCH_SECONDS = 5.0
#: a column nearly empty in the sample is looked for in this many times as many rows (decision 0250): a bounded
#: read, whatever the table's size
SPARSE_WINDOW = 100
#: the id-keyed hot caches are an accelerator in front of ``memo``; emptied when they outgrow this
_HOT_CACHE = STATEMENTS
#: the slots of a statement's hot entry (``MaskingState.hot``) after its statements, identity, schema version and
#: good-until time: True when the predicate guard has nothing to check per call; the order guard's ``(spliced,
#: hazard)``; the result's ``(names, plan, description)`` (None: not derived yet). Decision 0423. The package
#: spells them again (it imports nothing heavy): tests/test_pipeline_verdict.py checks the two agree.
HOT_USES, HOT_ORDER, HOT_PLAN = 4, 5, 6
#: identity-dependent answers are re-derived at least this often (grants may change meaning with time)
MEMO_SECONDS = 60.0
#: a table's indexes and keys are read again after this many seconds (an index created by a migration is seen)
ORDER_SECONDS = 60.0
#: the catalog signatures of the relations read are compared with the catalog at most this often, and no verdict
#: or plan derived from them is reused past the next comparison (decision 0392)
CATALOG_SECONDS = 1.0
MISSING = object()
#: columns of a full-text index's token tables that only number its rows, segments or pages
_FTS_STRUCTURE = frozenset(
    {"id", "rowid", "docid", "segid", "pgno", "blockid", "level", "idx", "k", "doc", "cnt", "col", "offset"}
)


@dataclass
class TableInfo:
    key: str
    columns: list[str] | None
    classes: dict[str, ColumnClass] = field(default_factory=dict)
    read_at: float = 0.0
    #: sampled (nearly) empty: its labels are provisional until ``recheck_at`` (``time.time()``)
    provisional: bool = False
    recheck_at: float = 0.0
    backoff: float = RECHECK_FIRST
    #: the sample was wanted but could not be read (a view whose rows cannot be computed): its labels stay
    #: provisional and its errors are scrubbed as sensitive
    sample_failed: bool = False
    unsampled: bool = False
    #: declared type of each column (lower-cased name): a MySQL CAST(x AS CHAR(n)) of a column declared no
    #: longer than n cannot truncate (and so cannot warn)
    types: dict[str, str | None] = field(default_factory=dict)
    #: a SQLite full-text table's module (``fts3``, ``fts4``, ``fts5``): which columns a MATCH reads (0296)
    fulltext: str | None = None
    #: a SQLite table's INTEGER PRIMARY KEY, the rowid under a name (decision 0388)
    rowid_alias: str | None = None
    #: (table SQL, schema, name) the catalog was read with, for the constraints read on first write
    source: tuple[str, str | None, str] | None = None
    #: unique keys, foreign keys and CHECKs (read when a statement first writes the table); ``None``: unreadable
    constraints: list[Constraint] | None = None
    #: when they were read (``time.monotonic()``); ``None``: not yet
    constraints_read: float | None = None
    #: what decides the order of its unordered rows (indexes, keys), read when a statement needs it, and when
    order: schema.OrderFacts | None = None
    order_at: float = -ORDER_SECONDS
    #: the spellings (``Customers``, ``customers``) its name was read under: on MySQL with case-sensitive table
    #: names (``lower_case_table_names = 0``) and PostgreSQL (quoted names) they may be different tables
    spellings: set[str] = field(default_factory=set)
    #: the cheap change signal of a provisional or watched table (decision 0267): (table SQL, quoted columns, the
    #: columns, each column's non-NULL values as the classification saw them); ``None``: none, sample it again
    probe: tuple[str, tuple[str, ...], tuple[str, ...], tuple[object, ...]] | None = None
    #: the read of its catalog failed (an error, not an empty answer): its columns are unknown, so none of them
    #: may decide rows until a read succeeds, which is tried again as for a provisional table (decision 0269)
    catalog_failed: bool = False
    #: the read of its catalog did not answer (failed, or an async connection's warm-up did not do it)
    unread: bool = False
    #: a view's defining query, judged where the view is read (decisions 0374, 0382); ``None`` for a table,
    #: ``schema.UNREADABLE_VIEW`` for a view whose definition could not be read
    view: str | None = None
    #: PostgreSQL: the rows its active row-level security policies admit, as a query over it judged where the table
    #: is read (decision 0385); ``None``: no policy applies to the connection's user
    policy: str | None = None
    #: PostgreSQL: the policies of :attr:`policy` that a plain SELECT applies (``FOR ALL`` and ``FOR SELECT``): a
    #: policy for writes only picks no row a read returns (decision 0400)
    read_policy: str | None = None
    #: PostgreSQL: the columns whose values pick the table of its family a row of this partitioned table (or
    #: inheritance parent) is stored in (decisions 0384, 0399); empty for any other relation
    placed: frozenset[str] = frozenset()
    #: PostgreSQL: an inheritance child's rows out of its family's, as a query over it judged where it is read
    #: (its own CHECK constraints, decision 0399); ``None`` for any other relation
    held: str | None = None
    #: a settled table the sample read whole (decision 0268): each clear text-like column's values as the
    #: classification saw them. A value outside them arrived since: it is scanned as it passes, and a statement
    #: that filters on (or computes from) such a column has the table probed first; ``None``: not watched
    watch: dict[str, frozenset[Any]] | None = None
    #: when it was classified (``time.time()``), for the earliest re-classification of a watched table
    classified_at: float = 0.0
    #: what identified it in the catalog, read before anything else of it (decision 0392): compared with the
    #: catalog every ``CATALOG_SECONDS``; ``None``: unread
    signature: drift.Signature | None = None
    #: a table the sample read in part (decision 0295): each clear text column whose widened sample held only a
    #: few distinct values, with those values. Another value is scanned as it passes; one the scan masks makes
    #: the column observed free text (masked where found, refused where it decides rows). ``None``: none
    scanned: dict[str, frozenset[Any]] | None = None
    #: the scanned columns whose values past every read were looked for before a statement first used them to
    #: decide rows (decision 0329)
    scanned_probed: set[str] = field(default_factory=set)


@dataclass
class StatementFacts:
    """What masking needs to know about one statement, identity-independent."""

    lineage: Lineage | None
    #: string literals written by INSERT/UPDATE/MERGE (checked for masked placeholders)
    written_literals: tuple[str, ...] = ()
    writes: bool = False
    #: ``SHOW WARNINGS``/``SHOW ERRORS``: messages that quote values of earlier statements
    diagnostics: bool = False
    #: PostgreSQL EXPLAIN: what every line of the plan may depend on (each column the explained statement
    #: reads, wherever it reads it); ``None`` for any other statement
    explain: Origin | None = None
    #: a SQLite schema pragma (``PRAGMA table_info(t)``), a DuckDB ``DESCRIBE <query>`` (decision 0254): column
    #: names and types, never values
    schema: bool = False


_PG = frozenset({"postgres", "postgresql"})
#: statement kinds that change no row (any other may: DML, DDL, a procedure call, an unknown statement)
_NOT_WRITING = frozenset({"read", "session", "transaction", "privilege"})
#: statements that end the open transaction, taking its writes back or making them everyone's (not to a savepoint,
#: not a two-phase step)
_ENDING = frozenset({"COMMIT", "END", "ROLLBACK", "ABORT"})
_NOT_ENDING = frozenset({"savepoint", "two-phase"})
#: PostgreSQL views whose columns hold the text of other sessions' statements
STATEMENT_TEXT: dict[str, tuple[str, ...]] = {"pg_stat_activity": ("query",)}
_SESSION_STATEMENTS = ("current_statement", "last_statement")
#: the same on MySQL/MariaDB, by schema-qualified name (decision 0246): the process list (MariaDB also keeps the
#: text as bytes, ``INFO_BINARY``), the open transactions' current statements, the threads (and MySQL 8's
#: process list) of the performance schema, the prepared statements' texts, and the sys views over them
MYSQL_STATEMENT_TEXT: dict[str, tuple[str, ...]] = {
    "information_schema.processlist": ("info", "info_binary"),
    "information_schema.innodb_trx": ("trx_query",),
    "performance_schema.threads": ("processlist_info",),
    "performance_schema.processlist": ("info",),
    "performance_schema.prepared_statements_instances": ("sql_text",),
    "sys.processlist": _SESSION_STATEMENTS,
    "sys.x$processlist": _SESSION_STATEMENTS,
    "sys.session": _SESSION_STATEMENTS,
    "sys.x$session": _SESSION_STATEMENTS,
    "sys.innodb_lock_waits": ("waiting_query", "blocking_query"),
    "sys.x$innodb_lock_waits": ("waiting_query", "blocking_query"),
}


#: MySQL/MariaDB catalog columns that measure the stored values of the table a row describes (decision 0247):
#: a MyISAM table's DATA_LENGTH and AVG_ROW_LENGTH are the bytes of its records (a longer name, more bytes),
#: INDEX_LENGTH those of its packed keys, DATA_FREE those of deleted records, and the live CHECKSUM of a MyISAM or
#: Aria table made with CHECKSUM=1 is a function of every stored value; InnoDB's sizes count pages, which fill
#: with the values' bytes. An index's CARDINALITY is InnoDB's count of the distinct values it holds, counted again
#: whenever a tenth of the rows changed: after rows of guessed SSNs are inserted, whether it grew says whether a
#: guess was a stored SSN (decision 0306). InnoDB's table statistics have a row per partition (``test/t#P#p0``):
#: over ``PARTITION BY RANGE COLUMNS (ssn)`` its NUM_ROWS and MODIFIED_COUNTER count the rows of each range of
#: SSNs, as the refused PARTITIONS catalog does (decision 0387)
MYSQL_SIZE_MEASURES: dict[str, tuple[str, ...]] = {
    "information_schema.tables": ("avg_row_length", "data_length", "index_length", "data_free", "checksum"),
    "information_schema.statistics": ("cardinality",),
    "information_schema.innodb_sys_tablestats": ("clust_index_size", "other_index_size", "num_rows", "modified_counter"),
    "information_schema.innodb_sys_tablespaces": ("file_size", "allocated_size"),
    # a session's memory, of the kind of the Memory_used counters decision 0215 refused
    "information_schema.processlist": ("memory_used", "max_memory_used"),
}
def size_measure_columns(dialect: str, key: str) -> tuple[str, ...]:
    """The columns of catalog table ``key`` whose numbers measure the values stored in the tables it describes."""
    if dialect in ("mysql", "mariadb"):
        return MYSQL_SIZE_MEASURES.get(".".join(key.lower().rsplit(".", 2)[-2:]), ())
    return ()


def statement_text_columns(dialect: str, key: str) -> tuple[str, ...]:
    """The columns of table ``key`` that hold other sessions' statements as they were sent."""
    if dialect in _PG:
        return STATEMENT_TEXT.get(key.rsplit(".", 1)[-1].lower(), ())
    if dialect in ("mysql", "mariadb"):
        return MYSQL_STATEMENT_TEXT.get(".".join(key.lower().rsplit(".", 2)[-2:]), ())
    return ()


#: ``CREATE TABLE ... AS EXECUTE name``: a table filled with a prepared statement's rows (PostgreSQL)
_AS_EXECUTE = re.compile(r"\bAS\s+EXECUTE\b", re.IGNORECASE)


def _explained(lineage: Lineage) -> Origin:
    """What a PostgreSQL plan may tell of: EXPLAIN ANALYZE reports the memory a sort or hash of the rows took
    (``Sort Method: quicksort  Memory: 1862kB`` grows with a masked name read in a CTE and never returned), and
    plain EXPLAIN the widths the statistics give; so every line depends on every column read, not only on the
    ones returned (decision 0213). The costs, row estimates and buffer counts of a scan count the table's pages,
    and how many row versions fit on a page depends on how wide they are: every line depends on the whole rows
    of every table read too (decision 0244)."""
    parts = [o.origin for o in lineage.outputs or ()]
    if lineage.tables:
        parts.append(Origin("row", rows=frozenset(lineage.tables)))
    parts += [origin for _, origin in lineage.refs]
    parts += [origin for _, origin in lineage.uses]
    if lineage.outputs is None or not lineage.exact:
        parts.append(Origin("unknown"))
    found = combine(parts)
    # a plan is computed from those rows, never one of them: masked whole (a JSON plan too), not field by field
    return Origin("expr", found.sources, found.rows) if found.kind == "row" else found


def _summary(columns: list[list[Any]]) -> tuple[object, ...]:
    """Each column's non-NULL values, order aside (a probe may read rows in another order than the sample): how
    often each occurs, or, for values that cannot be counted (a PostgreSQL array, a JSON document), a digest of
    each. Counting runs in C: a probe of a watched 90-row table compares without hashing each value in Python."""
    out: list[object] = []
    for values in columns:
        present = [v for v in values if v is not None]
        try:
            out.append(Counter(present))
        except TypeError:
            out.append(tuple(sorted(_digest(v) for v in present)))
    return tuple(out)


def _labels(info: TableInfo) -> tuple[Any, ...]:
    """What answers derived from a table depend on: its columns, their labels, and the values it watches."""
    return info.columns, {c: (cls.label, cls.provisional) for c, cls in info.classes.items()}, info.watch


def _seen(values: list[Any]) -> frozenset[Any]:
    """The values a watched column held, as a set (values that cannot be hashed are left out: scanned when they
    pass)."""
    try:
        return frozenset(v for v in values if v is not None and getattr(v, "__hash__", None) is not None)
    except TypeError:
        return frozenset()


def _digest(value: Any) -> bytes:
    return hashlib.blake2b(f"{type(value).__name__}:{value!r}".encode("utf-8", "surrogatepass"), digest_size=16).digest()



#: a value of the type a SQLite column of that affinity stores numbers as (an untyped or BLOB column: none)
_NATIVE: dict[str, Any] = {"INTEGER": 1, "NUMERIC": 1, "REAL": 1.0}
_CONSTANTS: dict[type, Any] = {int: 0, float: 0.0}


def one_type(inner: Masker, affinity: str, token: str) -> Masker:
    """``inner``, whose result always has one type for the column's ``affinity`` (decision 0422).

    A SQLite column of any affinity but TEXT stores each value as the type the value converts to: an untyped
    ``pin`` holds ``1234`` as an integer and ``ab12`` as text, a NUMERIC one ``12`` as an integer and ``12.5`` as a
    real, an INTEGER one ``4111-1111`` as text. A type-aware strategy (``redact``: text -> ``[LABEL]``, numbers ->
    0) then showed which: whether the value was all digits, or a whole number. The one type is what the strategy
    makes of a number of the column's own type (text for an untyped column); a result of another type becomes
    that type's constant (0, 0.0, the placeholder). NULL stays NULL."""
    try:
        probe = inner(_NATIVE[affinity]) if affinity in _NATIVE else token
    except Exception:
        probe = token
    if probe is None:
        return inner  # a strategy that answers NULL to everything
    kind = probe.__class__
    constant = _CONSTANTS.get(kind, token)

    def one(value: Any) -> Any:
        out = inner(value)
        if out is None or out.__class__ is kind:
            return out
        return constant

    return one


class MaskingState:
    def __init__(self, gov: Governor) -> None:
        self.gov = gov
        self.config: MaskingConfig = load_config(gov.settings.option("masking"))
        self.catalog: Catalog | None = load_catalog(self.config.catalog)
        self.ctx = StrategyContext(resolve_key(self.config))
        self.dialect = gov.dialect
        self.sg_dialect = sqlglot_dialect(gov.dialect)
        self.tables: dict[str, TableInfo] = {}
        #: parents being read for a foreign key's column (decision 0388): a cycle of keys stops there
        self._referencing: set[str] = set()
        #: tables and views named like the one a CREATE TABLE/VIEW about to be judged makes (is each temporary?),
        #: read with await for an async connection (``None``: unreadable); taken by the guard (decision 0248)
        self.created_names: dict[str, list[bool] | None] = {}
        #: the same for each word of a statement that defines stored code (decision 0319), read with await
        self.stored_code_names: dict[str, list[bool] | None] = {}
        #: and the column classes of those that are tables, read then (judging DDL forgets the tables read)
        self.stored_code_classes: dict[str, Any] = {}
        #: names (lower case) of the temporary tables and views this connection made: another connection may
        #: store a table of the same name later, which one side then hides (decision 0258)
        self.temporary_names: set[str] = set()
        #: names (upper case) of the collations the caller registered through this (sqlite3) connection: Python
        #: code SQLite calls with every pair of values it compares under them, so no later statement may declare
        #: one (decision 0289)
        self.caller_collations: set[str] = set()
        #: lower-case names of SQLite functions, aggregates and window functions of the caller's code registered
        #: through the governed connection: SQLite calls them row by row in the order it reads (decision 0348)
        self.caller_functions: set[str] = set()
        #: names of the PostgreSQL cursors declared by SQL through this connection, as the server resolves them:
        #: the only ones a SQL FETCH may read (decision 0371)
        self.sql_cursors: set[str] = set()
        #: and of the server-side cursors the driver opened for ``cursor(name=...)``: never read by a SQL FETCH
        self.driver_cursors: set[str] = set()
        #: a DECLARE judged and about to run, and the name of its cursor (noted in sql_cursors once it has run)
        self.declaring: tuple[Analysis, str] | None = None
        #: an aiosqlite connection's SQLITE_LIMIT_LENGTH, read on its thread before an UPDATE (decision 0405)
        self.length_limit: int | None = None
        self.version = 0
        #: lineage per (statement text or shape, schema version); sized and evicted as every statement cache
        self.facts: LRU[tuple[object, int], StatementFacts] = LRU("masking-lineage", STATEMENTS, STATEMENT_CHARS)
        self.maskers: dict[tuple[str, str, str], Masker] = {}
        #: identity-dependent results (plans, predicate verdicts), each with a time it is good until
        #: (plans and verdicts: per statement and identity, two kinds)
        self.memo: LRU[tuple[Any, ...], tuple[float, Any]] = LRU("masking-memo", 2 * STATEMENTS)
        self.lock = threading.RLock()
        #: the hot verdicts, keyed by ``id(analysis.statements)`` (analyses are cached objects, so a repeated
        #: statement has the same statements; every text of a literal shape shares its template's): one entry per
        #: statement holds the statements tuple itself (checked with ``is``, so a recycled id never matches), the
        #: identity, the schema version and a good-until time, then the three verdicts derived under them
        #: (``HOT_USES``: True when the predicate guard has nothing to check per call; ``HOT_ORDER``: the order
        #: guard's ``(spliced, hazard)``; ``HOT_PLAN``: the result's ``(names, plan, description)``; None: not
        #: derived yet), answered without hashing the statement text or the identity
        self.hot: dict[int, tuple[Any, ...]] = {}
        #: the entry :func:`governed_db.masking.predicate_hit` last found valid: the statement's reorder and plan
        #: read it without a lookup (after the same checks but the lookup's; None: look it up)
        self.current: tuple[Any, ...] | None = None
        #: statements (analysis keys) naming a column their tables lacked when traced: no verdict or plan of
        #: theirs is reused without reading those tables' columns again (decision 0251)
        self.volatile: set[Any] = set()
        self._active_for: tuple[str, bool] | None = None
        #: the earliest time a provisional table is sampled again (answers derived from it expire by then)
        self.next_recheck = float("inf")
        #: a statement that may write ran since the last look (cleared when no transaction is open at a sample): a
        #: sample in the transaction sees its uncommitted rows, which a rollback takes back (decision 0275)
        self.wrote = False
        #: MySQL/MariaDB keep a statement's warnings after it, listed in the order its rows were read (decision
        #: 0312): the statement about to run reads a relation whose order an index on a masked column may decide
        #: (set by the order guard), and the warnings listed now may be in such an order
        self.warnings_kept = self.dialect == "mysql"
        self.read_order = False
        #: rows of a statement that read in such an order are being fetched from a server-side cursor: notices
        #: arriving now come in that order (decision 0340)
        self.fetching_read_order = False
        self.warnings_in_read_order = False
        #: the last such statement failed part-way: how many warnings it left is how far it read (decision 0344)
        self.warning_count_withheld = False
        #: when the relations read are next compared with the catalog (``time.time()``, decision 0392)
        self.catalog_due = 0.0
        #: the relations read were not compared when the comparison came due (a statement named none)
        self.catalog_pending = False
        #: what the application's functions of each name read and call (``None``: cannot be told), kept until the
        #: next comparison with the catalog (decisions 0393, 0397)
        self.function_reads: dict[str, app_functions.Body | None] = {}
        #: PostgreSQL: the relations whose rows a condition on column values picks (``schema.row_pickers``) and
        #: when they were read (``time.monotonic()``), kept ``CATALOG_SECONDS`` (decision 0399)
        self.picked_rows: tuple[float, list[tuple[str, str, frozenset[str]]] | None] | None = None

    def row_pickers(self) -> list[tuple[str, str, frozenset[str]]] | None:
        """What ``schema.row_pickers`` answers on the catalog connection, read at most every ``CATALOG_SECONDS``
        (an async connection's warm-up reads it with ``await`` first); ``None``: unreadable."""
        now = time.monotonic()
        if self.picked_rows is None or now - self.picked_rows[0] >= CATALOG_SECONDS:
            found = schema.row_pickers(self.gov.driver.catalog_connection(self.gov), self.dialect)
            self.picked_rows = (now, found)
        return self.picked_rows[1]

    @property
    def active(self) -> bool:
        env = self.gov.environment
        seen = self._active_for
        if seen is None or seen[0] is not env:
            seen = self._active_for = (env, self.config.active_in(env))
        return seen[1]

    def remember_hot(
        self, analysis: Any, identity: Any, version: int, until: float, slot: int, value: Any
    ) -> None:
        """Keep ``value`` in ``slot`` of the statement's hot entry, judged under ``version`` and good until
        ``until``: one entry per statement, so a repeat checks its validity once (decision 0423)."""
        if analysis.key in self.volatile:
            return  # names a column its tables lacked: checked again at every execution (decision 0251)
        statements = analysis.statements
        with self.lock:
            if version != self.version:
                return  # judged under labels since replaced (the caches were emptied meanwhile)
            cache = self.hot
            old = cache.get(id(statements))
            if (
                old is not None
                and old[0] is statements
                and old[1] is identity
                and old[2] == version
                and old[3] > time.time()
            ):
                entry = list(old)
                entry[3] = min(old[3], until)  # the entry is as good as its shortest-lived verdict
            else:
                if len(cache) >= _HOT_CACHE:
                    cache.clear()  # rare: many distinct statements; rebuilding is cheap and keeps this bounded
                entry = [statements, identity, version, until, None, None, None]
            entry[slot] = value
            cache[id(statements)] = tuple(entry)

    # -- tables ----------------------------------------------------------------------------------
    def ran(self, analysis: Analysis) -> None:
        """A statement reached the database: one that may write (DML, DDL, a procedure call, an unknown statement)
        leaves rows the open transaction can still take back (decision 0275); a COMMIT or ROLLBACK in SQL ends
        them, as the driver's own calls do (a session that begins every transaction in SQL, as on DuckDB, is seen
        out of one only between them)."""
        for s in analysis.statements:
            if s.kind not in _NOT_WRITING:
                self.wrote = True
            elif self.wrote and s.kind == "transaction" and s.operation in _ENDING and not s.flags & _NOT_ENDING:
                self.wrote = False

    def uncommitted_view(self, raw: Any) -> bool:
        """Would a sample read now see rows no transaction has committed? The open transaction's own writes (a
        rollback, to a savepoint too, takes them back), or, on MySQL/MariaDB at READ UNCOMMITTED, other sessions'
        (decision 0275). Such a sample is no evidence of what the table holds."""
        if self.wrote:
            if self.gov.driver.in_transaction(self.gov, self.gov.raw):
                return True
            self.wrote = False  # committed, or rolled back: what a sample reads now is what others read
        return schema.reads_uncommitted(raw, self.dialect)

    def _drop_derived(self) -> None:
        """Every plan and verdict derived from labels (caller holds ``lock``): the version they were judged under
        moves on, and the caches that hold them are emptied (lineage is kept: it depends on columns, not labels)."""
        self.version += 1
        self.memo.clear()
        self.hot.clear()
        self.current = None
        new_generation()  # and the connection's statement verdicts holding them (decision 0423)

    def invalidate(self) -> None:
        with self.lock:
            self.tables.clear()
            self.function_reads.clear()
            self.picked_rows = None
            self.facts.clear()
            self._drop_derived()

    def catalog_sources(self) -> list[tuple[str, drift.Source, drift.Signature]]:
        """The relations read whose catalog signature is known: (key, how they are named, signature)."""
        return [(k, i.source, i.signature) for k, i in self.tables.items()
                if i.signature is not None and i.source is not None]  # fmt: skip

    def check_catalog(self, conn: Any = None, relations: bool = True) -> None:
        """At most once every ``CATALOG_SECONDS``: read the catalog signatures of the relations read (on ``conn``,
        by default the catalog connection) and forget every relation read when one differs or the read fails: the
        application replaced a view, renamed or made again a table, and what masking read of it no longer holds
        (decision 0392). Before a statement naming no relation (``relations`` false) nothing is read: a read
        would reset what MySQL/MariaDB keep of the last statement (``@@warning_count``, ``ROW_COUNT()``,
        ``FOUND_ROWS()``); the next statement naming one compares first."""
        now = time.time()
        if now < self.catalog_due and not (relations and self.catalog_pending):
            return
        with self.lock:
            if now >= self.catalog_due:
                self.catalog_due = now + CATALOG_SECONDS
                self.catalog_pending = True
                self.function_reads.clear()  # a function replaced leaves no signature of a relation changed
            if not relations:
                return
            self.catalog_pending = False
            known = self.catalog_sources()
            if not known:
                return
            raw = conn if conn is not None else self.gov.driver.catalog_connection(self.gov)
            found = drift.signatures(raw, self.dialect, [source for _, source, _ in known])
            if found is None or any(seen != was for seen, (_, _, was) in zip(found, known, strict=True)):
                self.invalidate()

    def recall(self, key: tuple[Any, ...]) -> Any:
        """A memoised identity-dependent result, or :data:`MISSING` when absent or stale."""
        if len(key) > 1 and key[1] in self.volatile:
            return MISSING  # re-derived through facts_for, which checks the tables' columns again
        found = self.memo.get(key)
        if found is None or found[0] < time.time():
            return MISSING
        return found[1]

    def remember(self, key: tuple[Any, ...], value: Any, good_until: float) -> None:
        self.memo.put(key, (good_until, value))

    def columns_of(self, node: exp.Table) -> tuple[str, list[str] | None]:
        key = table_key(".".join(p.name for p in node.parts))
        info = self.table(key, node)
        return key, info.columns

    def fulltext_module(self, key: str) -> str | None:
        """The full-text module (``fts3``, ``fts4``, ``fts5``) of SQLite table ``key``; ``None`` otherwise."""
        return self.table(key).fulltext

    def rowid_of(self, key: str) -> str | None:
        """The column of SQLite table ``key`` that is its rowid under a name (``None``: none, or unknown)."""
        return self.table(key).rowid_alias

    def declared_type(self, key: str, column: str) -> str | None:
        """The declared type of ``key.column`` as the catalog reads it (``None`` when unknown)."""
        return self.table(key).types.get(column.lower())

    def table(self, key: str, node: exp.Table | None = None) -> TableInfo:
        info = self.tables.get(key)
        if info is not None and node is not None and self.sg_dialect in ("mysql", "postgres"):
            spelled = ".".join(p.name for p in node.parts)
            if info.spellings and spelled not in info.spellings:
                return self._respelled(info, key, node, spelled)
        if info is not None and (
            time.time() < info.recheck_at
            if info.provisional or info.watch is not None
            else info.columns is not None or time.monotonic() - info.read_at < RETRY_SECONDS
        ):
            return info
        with self.lock:
            old = info
            info = self._read_table(key, node)
            if (
                old is not None
                and old.provisional
                and (info.sample_failed or info.columns is None)
                and (old.columns is not None or info.unread)
            ):
                # a failed re-sample proves nothing: keep scanning under the provisional labels (or stay blind),
                # try again later
                info = old
                info.provisional = True
            elif old is not None and old.classes and info.sample_failed and info is not old:
                # nor does one of a settled table (a transaction that wrote, decision 0275): no column is known
                # less than before -- a free text keeps the items its clean sample found, a column of SSNs its
                # label (decision 0408)
                for column, cls in old.classes.items():
                    kept = info.classes.get(column)
                    if kept is not None and _rank(cls) > _rank(kept):
                        info.classes[column] = cls
            if node is not None:
                info.spellings = (old.spellings if old is not None else set()) | {".".join(p.name for p in node.parts)}
            if old is not None and len(old.spellings) > 1 and info is not old:
                # a key two spellings share: what was read under the other one still holds (fail closed)
                for column, cls in old.classes.items():
                    kept = info.classes.get(column)
                    if kept is None or (not kept.label and cls.label):
                        info.classes[column] = cls
            if info.provisional:
                # still nearly empty: look again later, less often each time
                backoff = (
                    RECHECK_FIRST if old is None or not old.provisional else min(old.backoff * 2, RECHECK_MAX)
                )
                info.backoff = backoff
                info.recheck_at = time.time() + backoff
                self.next_recheck = min(self.next_recheck, info.recheck_at)
            self.tables[key] = info
            if old is not None and (old.provisional or old.watch is not None) and _labels(old) != _labels(info):
                # classified again and found different: every plan and verdict derived from the old labels goes
                self._drop_derived()
        return info

    def _respelled(self, info: TableInfo, key: str, node: exp.Table, spelled: str) -> TableInfo:
        """``rt8md_case`` after ``Rt8md_case``: on a server with case-sensitive table names (MariaDB on Linux;
        PostgreSQL's quoted names) two tables that share one key. Labels read under one spelling must not
        pass for the other's (the colours of one, the SSNs of the other): the other is read too, and a column is
        masked when either says so; columns that differ make the table's columns unknown (fail closed)."""
        with self.lock:
            other = self._read_table(key, node)
            merged = info if info.columns == other.columns else other
            if info.columns != other.columns:
                merged.columns = None
            for column, cls in other.classes.items():
                kept = merged.classes.get(column)
                if kept is None or (not kept.label and cls.label):
                    merged.classes[column] = cls
            for column, cls in info.classes.items():
                kept = merged.classes.get(column)
                if kept is None or (not kept.label and cls.label):
                    merged.classes[column] = cls
            merged.provisional = info.provisional or other.provisional
            if info.view != other.view:
                # a table and a view (or two views) under one key: each read is judged by the view's definition,
                # by neither when they differ (refused where a masked value may lie beneath, decision 0393)
                views = {v for v in (info.view, other.view) if v is not None}
                merged.view = views.pop() if len(views) == 1 else schema.UNREADABLE_VIEW
            merged.constraints, merged.constraints_read, merged.order_at = None, None, -ORDER_SECONDS
            merged.spellings = info.spellings | {spelled}
            self._drop_derived()  # plans and verdicts made under the old labels are stale
            self.tables[key] = merged
        return merged

    def constraints_of(self, key: str) -> tuple[list[str] | None, list[Constraint] | None]:
        """The columns and constraints of ``key`` (read once per schema version, on the first write)."""
        info = self.table(key)
        if info.columns is None or not self.constraints_due(info):
            return info.columns, info.constraints
        with self.lock:
            if self.constraints_due(info):
                table_sql, schema_name, name = info.source or (key, None, key)
                raw = self.gov.driver.catalog_connection(self.gov)
                misses = getattr(raw, "misses", 0)
                info.constraints = schema.read_constraints(raw, self.dialect, table_sql, schema_name, name, info.columns,
                                                           app_functions.pg_reach)
                if getattr(raw, "misses", 0) == misses:
                    # a read an async connection's warm-up did not do is no unreadable catalog: asked again, with
                    # await, before the next write is judged (and judged as unreadable meanwhile: fail closed)
                    info.constraints_read = time.monotonic()
        return info.columns, info.constraints

    @staticmethod
    def constraints_due(info: TableInfo) -> bool:
        """Never read, or unreadable and not tried for a while (meanwhile writes into masked columns fail closed)."""
        if info.constraints_read is None:
            return True
        return info.constraints is None and time.monotonic() - info.constraints_read >= RETRY_SECONDS

    def trace(self, tree: exp.Expression) -> Lineage:
        """Lineage of one statement, with the uses the constraints of the tables it writes make."""
        lineage = trace(tree, self.columns_of, self.sg_dialect, self.declared_type, self.fulltext_module, self.rowid_of)
        if lineage.missing and self.reread(lineage.missing):
            # a column the catalog did not know: read the tables again (and their labels) and trace anew
            lineage = trace(tree, self.columns_of, self.sg_dialect, self.declared_type, self.fulltext_module, self.rowid_of)
        if lineage.partitioned:
            lineage.uses.extend(partition_uses(lineage.partitioned, self.constraints_of))
        if lineage.writes:
            lineage.uses.extend(constraint_uses(lineage.writes, self.constraints_of))
            lineage.uses.extend(changed_row_uses(lineage.writes, self.constraints_of, self.sg_dialect))
        if isinstance(tree, (exp.Create, exp.Alter, exp.Command)):
            lineage.uses.extend(ddl_uses(tree, self.columns_of, self.sg_dialect, self.constraints_of))
            lineage.uses.extend(rename_uses(tree, self.columns_of, self.sg_dialect))
            lineage.uses.extend(stored_order_uses(tree, self.columns_of, self.sg_dialect))
            lineage.uses.extend(default_uses(tree, self.columns_of, self.sg_dialect))
        if self.dialect == "sqlite":
            checked = row_check_uses(tree, self.columns_of, self.constraints_of, self.every_table)
            # tables that could not be listed may be any: the check's lost use fails closed
            lineage.blind = lineage.blind or any(o.lost for _, o in checked)
            lineage.uses.extend(checked)
        return lineage

    def placement_uses(self, lineage: Lineage) -> list[tuple[str, Origin]]:
        """PostgreSQL's ``tableoid`` of a partitioned table is the partition a row is stored in, which the values of
        its partition key picked (``tableoid::regclass`` said ``t_lo`` for a name before 'N'): a use of the
        key's columns where a statement names it (decision 0384). Asked when the statement is judged, not traced:
        a lineage is cached, and the columns are read with the table's catalog (the async warm-up's too)."""
        uses: list[tuple[str, Origin]] = []
        for key in sorted(lineage.tables):
            info = self.tables.get(key)
            placed = info.placed if info is not None else frozenset()
            if placed:
                clause = f"tableoid of {key}, the table its columns ({', '.join(sorted(placed))}) put a row in"
                uses.append((clause, Origin("expr", frozenset((key, c) for c in placed))))
        return uses

    def every_table(self) -> list[str] | None:
        """The names of the database's tables (``None`` when unreadable)."""
        return schema.list_tables(self.gov.driver.catalog_connection(self.gov), self.dialect)

    def reread(self, keys: set[str]) -> bool:
        """Read the column lists of ``keys`` (they lack a name a statement uses: a column added by another
        connection?) and forget the tables whose columns changed, with every plan and verdict derived from them;
        True when any was forgotten (decision 0251). One catalog query per table; a name no table has (a typo)
        changes nothing else."""
        raw = self.gov.driver.catalog_connection(self.gov)
        stale = []
        for key in sorted(keys):
            info = self.tables.get(key)
            if info is None or info.source is None:
                continue
            # (a table whose columns could not be read, or that was missing when first named, is read again too:
            # another connection may have made it since, or the read was interrupted; until then a name in a
            # subquery over it may be the enclosing query's, decision 0277)
            cols = schema.read_columns(raw, self.dialect, *info.source)
            if cols is None:
                continue  # unreadable now: a blind table is read again by the guard itself (decision 0269)
            now = [c for c, _ in cols]
            if (info.columns is None and now) or (info.columns is not None and now != list(info.columns)):
                stale.append(key)
        if not stale:
            return False
        self.forget(stale)
        return True

    def forget(self, keys: list[str]) -> None:
        """Forget what was read of the tables ``keys`` (read and classified anew on next sight), with every plan and
        verdict derived from them."""
        with self.lock:
            for key in keys:
                self.tables.pop(key, None)
            self._drop_derived()

    def resample(self, key: str) -> None:
        """Sample provisional or watched ``key`` again now (a statement is about to filter on, or compute from, what
        it holds) unless its cheap probe shows that the values its labels were derived from are still all there is
        (decisions 0267, 0268); every answer derived from its labels is dropped only when they changed, so a nearly
        empty queue table polled by a filter keeps the connection's other caches warm. A table whose catalog read
        failed has no probe: its catalog is read again (decision 0269)."""
        old = self.tables.get(key)
        if old is None or not (old.provisional or old.watch is not None):
            return
        if self.gov.driver.is_async:
            return  # cannot read while judging: the warm-up probed it (and sampled it again) with await
        if time.time() < old.recheck_at and self.unchanged(key):
            return  # not due (a scan masked nothing since), and the probe saw the same values
        self.sample_again(key)

    def unchanged(self, key: str, conn: Any = None) -> bool:
        """Does the provisional or watched table ``key`` hold exactly the values its labels were derived from? One
        bounded query reading only its probed columns' non-NULL values (the bound of the sparse search); ``False``
        when it cannot tell (no probe, unreadable, or more values than the probe reads)."""
        info = self.tables.get(key)
        if info is None or info.probe is None:
            return False
        table_sql, quoted, names, seen = info.probe
        raw = conn if conn is not None else self.gov.driver.catalog_connection(self.gov)
        if self.uncommitted_view(raw):
            return False  # what it reads now may be rolled back: sample again (and fail) instead
        limit = self.config.sample_rows
        rows = schema.sample_columns(raw, self.dialect, table_sql, quoted, limit, SPARSE_WINDOW * limit)
        if rows is None or len(rows) >= limit:
            return False
        return _summary([[r[i] if i < len(r) else None for r in rows] for i in range(len(names))]) == seen

    def sample_again(self, key: str, node: exp.Table | None = None) -> None:
        """Read provisional or watched ``key``'s catalog and sample again now; every answer derived from its labels
        is dropped when they changed (:meth:`table`)."""
        with self.lock:
            old = self.tables.get(key)
            if old is None or not (old.provisional or old.watch is not None):
                return
            old.recheck_at = 0.0
        self.table(key, node)

    def due(self, key: str) -> bool:
        """Is provisional or watched ``key`` to be classified again at its next use?"""
        info = self.tables.get(key)
        return info is not None and (info.provisional or info.watch is not None) and time.time() >= info.recheck_at

    def data_arrived(self, key: str, masked: bool = True) -> None:
        """A provisional column's scan masked a value, or a watched column passed one its table did not hold when
        classified: classify the table again at the next statement — when nothing was masked, not before
        :data:`WATCH_SECONDS` after it was classified (a small table that grows is not sampled per statement)."""
        with self.lock:
            info = self.tables.get(key)
            if info is None or info.recheck_at == 0.0:
                return
            if info.watch is not None and not masked:
                due = max(time.time(), info.classified_at + WATCH_SECONDS)
                if due < info.recheck_at:
                    info.recheck_at = due
                    self.next_recheck = min(self.next_recheck, due)
                return
            if not masked or not (info.provisional or info.watch is not None):
                return
            info.recheck_at = 0.0
            # every plan and verdict derived from the old labels is dropped (lineage is kept: it depends on the
            # columns, not their labels)
            self._drop_derived()

    def order_of(self, key: str, node: exp.Table | None = None) -> schema.OrderFacts | None:
        """What decides the order of ``key``'s unordered rows (decision 0160); ``None`` when unreadable."""
        info = self.table(key, node)
        now = time.monotonic()
        if now - info.order_at < ORDER_SECONDS:
            return info.order
        raw = self.gov.driver.catalog_connection(self.gov)
        if node is None and info.source is not None:
            # the spelling its columns were read under: the key alone lost a quoted name's case ("Orders")
            table_sql, schema_name, name = info.source
        else:
            table_sql, name, schema_name = self._names(key, node)
        info.order = schema.read_order(raw, self.dialect, table_sql, schema_name, name)
        info.order_at = now
        return info.order

    def spelled_once(self, key: str) -> bool:
        """Whether ``key`` names one table: not two spellings a case-sensitive server tells apart (``"Orders"`` and
        ``orders``), whose facts would pass for each other's."""
        info = self.tables.get(key)
        return info is None or len(info.spellings) <= 1

    def _names(self, key: str, node: exp.Table | None) -> tuple[str, str, str | None]:
        """(the table as SQL, its name, its schema) for catalog reads."""
        if node is not None:
            bare = schema.bare_table(node)
            db = node.args.get("db")
            return bare.sql(dialect=self.sg_dialect), node.name, db.name if isinstance(db, exp.Identifier) else None
        return key, key.rsplit(".", 1)[-1], (key.rsplit(".", 1)[0] if "." in key else None)

    def _read_table(self, key: str, node: exp.Table | None) -> TableInfo:
        raw = self.gov.driver.catalog_connection(self.gov)  # async drivers: the answers read with await
        table_sql, name, schema_name = self._names(key, node)
        misses = getattr(raw, "misses", 0)
        # first: a change after it is seen at the next comparison with the catalog (decision 0392)
        signature = drift.signatures(raw, self.dialect, [(table_sql, schema_name, name)])
        cols = schema.read_columns(raw, self.dialect, table_sql, schema_name, name)
        info = TableInfo(
            key, [c for c, _ in cols] if cols else None, read_at=time.monotonic(), source=(table_sql, schema_name, name)
        )
        info.signature = signature[0] if signature else None
        if cols is None:
            info.unread = True
            if getattr(raw, "misses", 0) == misses:
                # the read failed (interrupted by the application's deadline, a lock, a failed transaction): nothing
                # says what its columns hold, so the table is blind — a predicate on any of its columns is refused,
                # its values are scanned — and read again like a provisional table, before any statement that
                # would be refused (decision 0269). An empty answer (no such table) is no failure, nor a read an
                # async connection's warm-up did not do (its catalog was not asked)
                info.catalog_failed = info.provisional = True
            return info
        if not cols:
            return info
        types = info.types = {c.lower(): t for c, t in cols}
        missing = [c for c, _ in cols if self.catalog is None or self.catalog.lookup(key, c) is None]
        values: dict[str, list[Any]] = {}
        #: by the name as the database spells it: PostgreSQL's "Info" and info are two columns (decision 0256)
        exact: dict[str, list[Any]] = {}
        declared_as = dict(cols)
        sampled_rows: int | None = None
        if missing and self.config.online and self.config.sample_rows > 0:
            # a view of uncommitted rows counts as a failed sample: the session can take them back and leave
            # labels read from innocent stand-ins over the values they hid (decision 0275)
            dirty = self.uncommitted_view(raw)
            sampled = None if dirty else schema.sample(raw, self.dialect, table_sql, self.config.sample_rows)
            info.sample_failed = info.unsampled = sampled is None
            if sampled is not None:
                sampled_rows = len(sampled[1])
                # a full sample is the first rows, which whoever inserts rows may choose: rows spread across the
                # table and the rare values of few-valued text columns join it (decision 0294)
                rows = sampling.wider(raw, self.dialect, table_sql, sampled, cols, self.config.sample_rows)
                for n, seen in sampling.columns_of(sampled[0], rows).items():
                    values[n.lower()] = exact[n] = seen
                for n, seen in sampling.hidden(raw, self.dialect, table_sql, sampled[0], cols, self.config.sample_rows).items():
                    values[n.lower()] = exact[n] = seen  # INVISIBLE columns, which SELECT * leaves out (0402)
        # labels from a (nearly) empty table cannot be trusted to last: pooled connections live for days
        floor = min(FEW_ROWS, self.config.sample_rows)
        info.provisional = nearly_empty = sampled_rows is not None and sampled_rows < floor
        more: list[Any] | None = None
        # a sample that failed read no row: names and types alone are no evidence that a text column is innocent.
        # The session's own state can make it fail and leave the statement's read standing (a SERIALIZABLE
        # transaction turns the sample into a locking read that times out on a row another session holds; the
        # statement reads row 1 by key): scanned as it passes, refused where it decides rows, sampled again later
        # like a nearly empty table (decisions 0264, 0266: also a view failing on its own values, a statement
        # interrupted by the application's progress handler)
        failed = bool(info.sample_failed and missing)
        info.provisional = info.provisional or failed
        sparse = set() if sampled_rows is None or info.provisional else self._sparse(info, missing, values)
        unseen = False
        if sparse and sampled_rows is not None and sampled_rows >= self.config.sample_rows:
            # the sample did not read the whole table: look for the nearly empty columns' values in the rest
            names = [c for c in missing if c.lower() in sparse]
            quoted = [exp.to_identifier(c, quoted=True).sql(dialect=self.sg_dialect) for c in names]
            limit = self.config.sample_rows
            more = schema.sample_columns(raw, self.dialect, table_sql, quoted, limit, SPARSE_WINDOW * limit)
            if more is not None:
                for i, c in enumerate(names):
                    values[c.lower()] = exact[c] = [r[i] for r in more if i < len(r)]
                sparse = self._sparse(info, names, values)
            if sparse:
                # rows past the window were never read: values there (a column added and filled for new rows
                # only) are unknown, so the column may not decide rows (decision 0257); unreadable: the same
                unseen = more is None or schema.rows_past(raw, self.dialect, table_sql, SPARSE_WINDOW * limit) is not False
        for c in missing:
            declared = declared_as.get(c, types.get(c.lower()))
            cls = classify_sample(key, c, declared, exact.get(c, values.get(c.lower())))
            if failed:
                cls = provisional_class(cls, declared, 0, c)
                if cls.label == "FREE_TEXT" and scanned_while_provisional(declared):
                    # free text by its name (``note``) stands as a label, but which items it holds is unknown: it
                    # may not decide rows either, or a search by digits finds its items (decision 0408)
                    cls.provisional = True
                if cls.provisional:
                    cls.confidence = OBSERVED_TEXT
                    cls.evidence["sample"] = "the sample failed: its values are unknown, so it may not decide rows"
            elif info.provisional:
                cls = provisional_class(cls, declared, sampled_rows or 0, c)
                if info.sample_failed:
                    cls.evidence["sample"] = "the table could not be sampled; classified again at the next look"
            elif c.lower() in sparse:
                # a column with (almost) no values yet (added later, filled later) is not known to be innocent
                # either: scanned as it passes and classified again, like a nearly empty table (decision 0250)
                count = non_empty(values.get(c.lower()))
                cls = provisional_class(cls, declared, sampled_rows or 0, c, values=count)
                if unseen and cls.provisional:
                    # still scanned as it passes, but filtered on like observed free text: refused (0257)
                    cls.confidence = OBSERVED_TEXT
                    cls.evidence["window"] = (
                        f"rows past the first {SPARSE_WINDOW * self.config.sample_rows} were not read: values "
                        "there are unknown, so it may not decide rows"
                    )
            twin = info.classes.get(c.lower())
            if twin is None or _rank(cls) > _rank(twin):
                # columns whose names differ only in case ("Info" and info) share one entry, and masking and the
                # lineage read both through it: the more sensitive class holds for both (decision 0256)
                info.classes[c.lower()] = cls
        unlisted = {m.lower() for m in missing}
        for c in size_measure_columns(self.dialect, key):
            if c in unlisted:  # a reviewed catalog entry wins
                info.classes[c] = ColumnClass(
                    "SENSITIVE", 1.0, {"storage size": "bytes or a checksum of the stored values"},
                    strategy=("null", {}),
                )
        texts = statement_text_columns(self.dialect, key)
        if texts:
            # other sessions' statements as they sent them: any literal in them may be a masked value (an
            # application's ``WHERE full_name = 'Alice Smith'``), which a scan does not recognise (decisions 0230,
            # 0246)
            for c in texts:
                if c in {m.lower() for m in missing}:
                    info.classes[c] = ColumnClass(
                        "FREE_TEXT", 1.0, {"statement text": "statements of other sessions, literals and all"},
                        strategy=("redact", {}),
                    )
        if not info.provisional and any(cls.provisional for cls in info.classes.values()):
            info.provisional = True  # sampled again later (its nearly empty columns)
        if nearly_empty:
            # the sample read every row: all the values the labels were derived from
            self._set_probe(info, table_sql, missing, exact, values)
        elif info.provisional and sampled_rows is not None and (
            sampled_rows < self.config.sample_rows or (more is not None and len(more) < self.config.sample_rows)
        ):
            # the nearly empty columns' values came from the whole table, or from the sparse search, which read
            # fewer rows than it may (the probe's bound): all of them in its window
            names = [c for c in missing if (known := info.classes.get(c.lower())) is not None and known.provisional]
            self._set_probe(info, table_sql, names, exact, values)
        fts = schema.fts_source(raw, self.dialect, name)
        info.rowid_alias = schema.rowid_alias(raw, self.dialect, name, schema_name)
        if fts is not None and fts[1] in schema.FTS_MODULES:
            info.fulltext = fts[1] if schema_name is None else None  # another database's table of that name: unsure
        elif fts is not None:
            self._inherit_fts(info, missing, *fts)
        generated = schema.read_generated(raw, self.dialect, table_sql, schema_name, name, info.columns or [])
        unlisted = {m.lower() for m in missing}
        self._inherit_references(info, unlisted, schema.references(raw, self.dialect, name, schema_name))
        counted = schema.sequence_tables(raw, self.dialect, name)
        if counted:
            # sqlite_sequence.seq is the largest key each AUTOINCREMENT table has held (decision 0388)
            self._inherit_references(info, unlisted, [("seq", t, None) for t in counted])
        for column, reads in (generated or {}).items():
            # a generated column is computed from others (search_name AS lower(full_name)), as a MySQL/MariaDB
            # DEFAULT over them is for every row written without it (ref DEFAULT (LEFT(ssn, 3)), decision 0402): a
            # value derived from a masked column, masked whole like any expression over it, whatever its own name
            # and values say
            if column not in unlisted:
                continue  # a reviewed catalog entry wins
            sources = [info.classes.get(r) for r in sorted(reads)]
            found = next((c for c in sources if c is not None and c.label and not c.provisional), None)
            if found is not None and found.label != "FREE_TEXT":
                info.classes[column] = ColumnClass(
                    found.label,
                    found.confidence,
                    {"generated": f"computed from {', '.join(sorted(reads))}"},
                    strategy=("redact", {}),
                )
        for column, fields in (schema.read_composite_fields(raw, self.dialect, table_sql) or {}).items():
            # a PostgreSQL composite value is a row of named fields, which comes back as one text
            # ``("Alice Smith",536-22-8726,Paris)``: a field named like personal data (holder, ssn) is read by
            # no scan (names) or not always (an SSN the recognizers reject), so the column is masked whole under
            # that field's label, like a generated column over a masked one (decision 0261)
            if column not in unlisted:
                continue  # a reviewed catalog entry wins
            label = next((found for found in map(key_label, fields) if found is not None), None)
            if label is not None:
                info.classes[column] = ColumnClass(
                    label, 0.9, {"fields": f"composite type with field(s) {', '.join(fields)}"},
                    strategy=("redact", {}),
                )
        info.policy, info.read_policy = schema.read_row_policies(raw, self.dialect, table_sql) or (None, None)
        info.placed = schema.read_placed(raw, self.dialect, table_sql)
        info.held = schema.read_held_rows(raw, self.dialect, table_sql)
        definition = schema.read_view_definition(raw, self.dialect, table_sql)
        if definition is not None:
            if not schema.system_view(raw, self.dialect, table_sql):
                info.view = definition  # the server's own views are read under the system-catalog rules (0382)
            self._inherit_view(info, unlisted, definition)
        if sampled_rows is not None and floor <= sampled_rows < self.config.sample_rows:
            # the sample read every row: the labels of its clear text columns rest on all they held, so a value
            # outside those arrived since (decision 0268)
            self._watch(info, table_sql, missing, exact, values)
        elif sampled_rows is not None and sampled_rows >= self.config.sample_rows:
            self._scan_few(info, missing, exact, values)
        return info

    def _scan_few(
        self, info: TableInfo, missing: list[str], exact: dict[str, list[Any]], values: dict[str, list[Any]]
    ) -> None:
        """Scan the clear few-valued text columns of a table the sample read in part (decision 0295): the rows
        past the sample, the rare-value search's window and the spread sample were never read, and a column of
        ``'n/a'`` may hold SSNs there. Its values are few, so a set lookup passes nearly every cell."""
        floor = min(FEW_ROWS, self.config.sample_rows)
        scanned: dict[str, frozenset[Any]] = {}
        for c in missing:
            low = c.lower()
            cls = info.classes.get(low)
            if cls is not None and cls.label is not None and cls.confidence >= self.config.min_confidence:
                continue
            seen = exact.get(c, values.get(low)) or []
            # few-valued in the rows read before the rare-value search (they come first): its values are few,
            # whatever rare ones the search found in its window
            if sampling.few_values(info.types.get(low), seen[: self.config.sample_rows], floor) is not None:
                scanned[low] = _seen(seen)
        info.scanned = scanned or None

    def probe_scanned(self, key: str, columns: Iterable[str], masks: Callable[[Any], bool]) -> None:
        """Before a statement first decides rows by the scanned few-valued ``columns`` of ``key`` (decision 0295),
        read the distinct values they hold outside the values the sample saw, bounded (decision 0329): one that
        ``masks`` (the value scan) makes the column observed free text (refused where it decides rows), as when a
        read passes it; innocent ones join the values that pass unscanned. A read that fails counts as one that
        masked: nothing says what lies there. An async connection cannot read while judging: unprobed."""
        info = self.tables.get(key)
        if info is None or info.scanned is None or info.source is None or self.gov.driver.is_async:
            return
        todo = [c for c in columns if c in info.scanned and c not in info.scanned_probed]
        if not todo:
            return
        raw = self.gov.driver.catalog_connection(self.gov)
        spelled = {c.lower(): c for c in info.columns or ()}
        limit = max(self.config.sample_rows, FEW_ROWS)
        for column in todo:
            info.scanned_probed.add(column)
            known = info.scanned.get(column, frozenset()) if info.scanned is not None else frozenset()
            literals = [exp.convert(v).sql(dialect=self.sg_dialect) for v in known if isinstance(v, (str, int, float))]
            quoted = exp.to_identifier(spelled.get(column, column), quoted=True).sql(dialect=self.sg_dialect)
            found = schema.values_outside(raw, self.dialect, info.source[0], quoted, literals, limit)
            if found is None or any(masks(v) for v in found):
                self.personal_data_seen(key, column)
                continue
            with self.lock:
                if info.scanned is not None and column in info.scanned:
                    info.scanned[column] = info.scanned[column] | _seen(found)

    def personal_data_seen(self, key: str, column: str) -> None:
        """A scanned few-valued column (decision 0295) passed a value the scan masked: from now on it is observed
        free text — scanned as it passes, refused where it decides rows — and every answer derived from its old
        class is dropped."""
        with self.lock:
            info = self.tables.get(key)
            if info is None or info.scanned is None or column not in info.scanned:
                return
            cls = provisional_class(ColumnClass(None, 0.0, {}), info.types.get(column), 0, column)
            if cls.provisional:
                cls.confidence = OBSERVED_TEXT
                cls.evidence["sample"] = "a value read past the sample holds personal data: it may not decide rows"
                info.classes[column] = cls
            del info.scanned[column]
            if not info.scanned:
                info.scanned = None
            self._drop_derived()

    def _watch(
        self, info: TableInfo, table_sql: str, missing: list[str], exact: dict[str, list[Any]],
        values: dict[str, list[Any]],
    ) -> None:
        """Watch the clear text-like columns of a table the sample read whole (decision 0268), and probe them with
        its provisional columns, if any (all their values were read too)."""
        info.classified_at = time.time()
        watch: dict[str, frozenset[Any]] = {}
        probed: list[str] = []
        for c in missing:
            low = c.lower()
            cls = info.classes.get(low)
            seen = exact.get(c, values.get(low))
            if seen is None:
                continue
            if cls is not None and cls.provisional:
                probed.append(c)
            elif (
                cls is None or cls.label is None or cls.confidence < self.config.min_confidence
            ) and scanned_while_provisional(info.types.get(low)):
                watch[low] = _seen(seen)
                probed.append(c)
        if not watch:
            return
        info.watch = watch
        if not info.provisional:
            info.recheck_at = float("inf")  # until values it did not hold pass by (data_arrived)
        self._set_probe(info, table_sql, probed, exact, values)

    def _set_probe(
        self, info: TableInfo, table_sql: str, names: list[str], exact: dict[str, list[Any]],
        values: dict[str, list[Any]],
    ) -> None:
        """Remember the cheap change signal of provisional ``info`` (decision 0267): the columns ``names`` whose
        values its labels were derived from, and those values as the classification saw them (all of them: the
        caller knows the reads covered what the probe reads)."""
        seen = [exact.get(c, values.get(c.lower())) for c in names]
        if not names or any(v is None for v in seen):
            return
        quoted = tuple(exp.to_identifier(c, quoted=True).sql(dialect=self.sg_dialect) for c in names)
        info.probe = (table_sql, quoted, tuple(names), _summary([v or [] for v in seen]))

    def _inherit_view(self, info: TableInfo, unlisted: set[str], definition: str) -> None:
        """A view's (or PostgreSQL materialized view's) columns are its query's results: one that passes a
        masked column on (``full_name AS who``) takes its class, one computed from masked columns or whole rows
        (``full_name || '/' || city``, ``p AS whole``) is masked whole under their label, whatever its own name
        and sampled values say (a scan finds no names). A definition that cannot be traced keeps the sample's
        classes (decision 0262)."""
        try:
            tree = parse_one(definition, self.sg_dialect)
            if not isinstance(tree, exp.Expression):
                raise TypeError("not a query")
            # ``concat(profile->'contact')`` as the server reads it, not as a lambda hiding the column (0302)
            tree = json_arrows(tree, Dialect.get_or_raise(self.sg_dialect), self.sg_dialect)
            if not isinstance(tree, exp.Expression):
                raise TypeError("not a query")
            lineage = trace(tree, self.columns_of, self.sg_dialect, self.declared_type, self.fulltext_module, self.rowid_of)
        except Exception:
            self._untraced_view(info, unlisted, definition)
            return
        outputs, columns = lineage.outputs, info.columns or []
        if outputs is None or not lineage.exact or len(outputs) != len(columns):
            self._untraced_view(info, unlisted, definition)
            return
        for column, output in zip(columns, outputs, strict=True):
            low = column.lower()
            if low not in unlisted:
                continue  # a reviewed catalog entry wins
            origin = output.origin
            found: list[ColumnClass] = []
            for table, source in sorted(origin.sources):
                cls = self.column_class(table, source)
                if cls is not None and cls is not UNREADABLE and cls.label:
                    found.append(cls)
            for table in sorted(origin.rows):
                found.extend(c for c in (self.table_classes(table) or {}).values() if c.label)
            if not found:
                continue
            if origin.kind == "column" and len(origin.sources) == 1 and not origin.rows:
                first = found[0]
                info.classes[low] = ColumnClass(
                    first.label, first.confidence, {"view": f"passes on {next(iter(origin.sources))[1]}"},
                    strategy=first.strategy, provisional=first.provisional, found=first.found,
                )
                continue
            settled = [c for c in found if not c.provisional]
            if not settled:
                continue  # over a nearly empty table, scanned as its own sample says (as the table's are, 0091)
            label = next((c.label for c in settled if c.label != "FREE_TEXT"), settled[0].label)
            # a member of a JSON document, or a value computed from one (``profile->'ssn'->>1``): NULL where the
            # document has no such member, which its masking may hide: NULL is masked too (decision 0302)
            nulls = origin.member is not None or origin.from_member
            info.classes[low] = ColumnClass(
                label, max(c.confidence for c in settled), {"view": "computed from masked columns"},
                strategy=("redact", {"nulls": True} if nulls else {}),
            )

    def _untraced_view(self, info: TableInfo, unlisted: set[str], definition: str) -> None:
        """A view whose definition the walk cannot follow, over a table with a labelled column: its unlabelled
        text columns are redacted whole (fail closed; a scan finds no names), its numbers and dates exact."""
        try:
            read = {table_key(".".join(p.name for p in t.parts))
                    for t in parse_one(definition, self.sg_dialect).find_all(exp.Table)}
        except Exception:
            read = None
        if read is not None and not any(
            c.label for key in read if key != info.key for c in (self.table_classes(key) or {}).values()
        ):
            return  # it reads nothing masked: the sample's classes stand
        for column in info.columns or []:
            low = column.lower()
            cls = info.classes.get(low)
            if low in unlisted and (cls is None or not cls.label or cls.provisional) and type_category(
                info.types.get(low)
            ) in ("text", "unknown", "json", "binary"):
                info.classes[low] = ColumnClass(
                    "FREE_TEXT", 1.0, {"view": "a definition masking cannot follow, over masked columns"},
                    strategy=("redact", {}),
                )

    def _sparse(self, info: TableInfo, columns: list[str], values: dict[str, list[Any]]) -> set[str]:
        """The text-like columns among ``columns`` whose sample holds fewer than a few non-empty values."""
        floor = min(FEW_ROWS, self.config.sample_rows)
        return {
            c.lower() for c in columns if sparse_text(info.types.get(c.lower()), values.get(c.lower()), floor)
        }

    def _inherit_references(
        self, info: TableInfo, unlisted: set[str], refs: list[tuple[str, str, str | None]]
    ) -> None:
        """A column a foreign key declares holds the values of the parent column it references (``visits.patient
        REFERENCES patients(ssn)``: every patient's SSN): it takes that column's label, whatever its own name and
        values say (decision 0388). A parent being read already (a cycle of keys) is left out."""
        for column, parent, to in refs:
            known = info.classes.get(column)
            if column not in unlisted or (known is not None and known.label not in (None, "FREE_TEXT")):
                continue
            key = table_key(parent)
            if key == info.key:
                target = to or info.rowid_alias
                found = info.classes.get(target) if target else None
            else:
                if key in self._referencing:
                    continue
                self._referencing.add(key)
                try:
                    top = self.table(key)
                    target = to or top.rowid_alias
                    found = self.column_class(key, target) if target and top.columns is not None else None
                finally:
                    self._referencing.discard(key)
            if found is not None and found.label and found.label != "FREE_TEXT":
                info.classes[column] = ColumnClass(
                    found.label, found.confidence, {"references": f"holds {parent}.{target}"},
                    strategy=found.strategy,
                )

    def _inherit_fts(self, info: TableInfo, columns: list[str], parent: str, what: str) -> None:
        """A full-text index's shadow table (``t_content``, ``t_data``...) or vocabulary holds the indexed text
        (or its tokens) under names of its own: ``c0`` in ``t_content`` is ``t``'s first column, labelled as
        it is; every column of the token tables is masked whole when ``t`` has a masked column."""
        top = self.table(table_key(parent))
        if top.columns is None:
            return
        labels = [(i, self.column_class(top.key, c)) for i, c in enumerate(top.columns)]
        sensitive = [(i, cls) for i, cls in labels if cls is not None and cls.label]
        if not sensitive:
            return
        for c in columns:
            low = c.lower()
            if what == schema.FTS_CONTENT:
                index = re.match(r"c(\d+)", low)
                found = [cls for i, cls in sensitive if index is not None and int(index.group(1)) == i]
                if found:
                    info.classes[low] = found[0]
            elif low not in _FTS_STRUCTURE:
                first = sensitive[0][1]
                info.classes[low] = ColumnClass(
                    first.label, first.confidence, {"full-text": f"tokens of {parent}, which holds {first.label}"}
                )

    def column_class(self, key: str, column: str) -> ColumnClass | None:
        """The label of ``key.column`` (catalog first, then online); ``None`` when not sensitive.

        For a table whose catalog cannot be read, the name alone decides, and
        :data:`UNREADABLE` says that values must be checked as they pass.
        """
        if self.catalog is not None:
            found = self.catalog.lookup(key, column)
            if found is not None:
                return found if found.label else None
        info = self.table(key)
        if info.columns is None:
            by_name = classify_name(key, column, None)
            return by_name if by_name is not None else UNREADABLE
        cls = info.classes.get(column.lower())
        if cls is None or cls.label is None or cls.confidence < self.config.min_confidence:
            return None
        return cls

    def table_classes(self, key: str) -> dict[str, ColumnClass] | None:
        """Sensitive columns of a table (``None`` when its columns are unknown)."""
        info = self.table(key)
        out: dict[str, ColumnClass] = {}
        names = set(info.columns or ())
        if self.catalog is not None:
            for t, c, _cls in self.catalog:
                if t == key or t.rsplit(".", 1)[-1] == key.rsplit(".", 1)[-1]:
                    names.add(c)
        if info.columns is None and not names:
            return None
        for c in names:
            cls = self.column_class(key, c)
            if cls is not None and cls is not UNREADABLE:
                out[c.lower()] = cls
        return out

    # -- statements ------------------------------------------------------------------------------
    def facts_for(self, analysis: Analysis) -> StatementFacts:
        key = (analysis.key, self.version)
        found = self.facts.get(key)
        if found is not None:
            missing = found.lineage.missing if found.lineage is not None else None
            if not missing or not self.reread(missing):
                return found  # type: ignore[no-any-return]
            key = (analysis.key, self.version)  # a table gained a column since: traced anew
        raw = self.gov.driver.catalog_connection(self.gov)
        misses = getattr(raw, "misses", 0)
        facts = self._facts(analysis)
        if getattr(raw, "misses", 0) != misses:
            return facts  # traced on a catalog read the async warm-up had not done yet: not kept
        if facts.lineage is not None and facts.lineage.missing:
            with self.lock:
                if len(self.volatile) >= _HOT_CACHE:
                    self.volatile.clear()
                self.volatile.add(analysis.key)
        self.facts.put(key, facts, len(analysis.normalized) + 64)
        return facts

    def _facts(self, analysis: Analysis) -> StatementFacts:
        stmts = [s for s in analysis.statements if s.expression is not None]
        if analysis.error is not None or len(stmts) != 1:
            return StatementFacts(None)
        tree = stmts[0].expression
        assert tree is not None
        # the process list, the table status and the indexes under their own names: masked as the
        # information_schema tables they list, their WHERE judged as a filter on those (0246, 0247, 0306)
        listing = show_listing(tree, self.sg_dialect) if self.dialect in ("mysql", "mariadb") else None
        lineage = self.trace(tree if listing is None else listing)
        if _DECLARE_CURSOR.match(analysis.sql) and lineage.outputs is not None:
            # DECLARE c CURSOR FOR <query> (judged as its query): its rows come back later, by FETCH, where no
            # lineage follows them, so every value it would return counts as kept for later
            kept = [o.origin for o in lineage.outputs] + ([] if lineage.exact else [Origin("unknown")])
            lineage.uses.extend((CURSOR_USE, o) for o in kept)
        if (
            self.dialect in _PG
            and isinstance(tree, exp.Create)
            and tree.args.get("expression") is None
            and _AS_EXECUTE.search(analysis.sql)
        ):
            # ``CREATE TABLE t AS EXECUTE name(...)`` (which sqlglot reads as a bare CREATE TABLE) copies the rows of
            # a prepared statement, whatever it returns, into a table of the caller's own (decision 0363)
            lineage.blind = True
            lineage.uses.append((EXECUTE_USE, Origin("unknown")))
        writes = isinstance(tree, (exp.Insert, exp.Update, exp.Merge)) or stmts[0].kind == "write"
        literals = (
            tuple(
                lit.this for lit in tree.find_all(exp.Literal) if lit.is_string and isinstance(lit.this, str)
            )
            if writes
            else ()
        )
        diagnostics = isinstance(tree, exp.Show) and tree.name.upper() in ("WARNINGS", "ERRORS")
        explain = _explained(lineage) if stmts[0].operation == "EXPLAIN" and self.dialect in _PG else None
        # a SQLite schema pragma, a DuckDB ``DESCRIBE <query>``: column names and types, never values
        schema = _schema_pragma(tree) or "describe-query" in stmts[0].flags
        return StatementFacts(lineage, literals, writes, diagnostics, explain, schema)

    # -- who sees what ---------------------------------------------------------------------------
    def grants(self, identity: Identity) -> list[Grant]:
        return list(unmask_grants(self.config, identity, self.gov.environment))

    def good_until(self, grants: list[Grant]) -> float:
        """When answers derived from ``grants`` must be re-derived: soon, never after one expires, and never
        after a provisional table is to be sampled again."""
        now = time.time()
        until = min(now + MEMO_SECONDS, self.catalog_due)
        if self.next_recheck <= now:
            with self.lock:
                pending = [
                    t.recheck_at for t in self.tables.values()
                    if (t.provisional or t.watch is not None) and t.recheck_at > now
                ]
                self.next_recheck = min(pending, default=float("inf"))
        until = min(until, self.next_recheck)
        for g in grants:
            if g.expires is not None:
                until = min(until, g.expires.timestamp())
        return until

    def affinity(self, key: str, column: str) -> str | None:
        """SQLite: the affinity of ``key.column`` (``TEXT``, ``INTEGER``, ``REAL``, ``NUMERIC``, ``BLOB``), read from
        its declared type as SQLite reads it; ``None`` on other databases or when the type is unknown."""
        if self.dialect != "sqlite":
            return None
        declared = self.declared_type(key, column)
        return None if declared is None else schema.sqlite_affinity(declared)

    def masker(self, key: str, column: str, cls: ColumnClass) -> Masker:
        label = cls.label or "SENSITIVE"
        name, options = cls.strategy or self.config.strategy_for(key, column, label)
        masker = self._strategy(f"{key}.{column}", label, name, options)
        if name == "redact" and not is_date_label(label):
            # redact answers by the value's type: on SQLite, the column's type instead (decision 0422). Dates keep
            # their shape (an ISO text date stays one), and scanning strategies pass what they find nothing in
            affinity = self.affinity(key, column)
            if affinity is not None and affinity != "TEXT":
                masker = one_type(masker, affinity, f"[{label}]")
        if cls.provisional:
            return self.watching(key, masker)
        return masker

    def keyed(self, key: str, column: str, cls: ColumnClass) -> bool:
        """Does the column's strategy derive its output from the value with the connection's key (``hash``,
        ``tokenize``, deterministic ``format_preserving``)? Then the output of a value the caller chose is one
        only the key could compute: a guess check against the stored values' outputs (decision 0236)."""
        name, options = cls.strategy or self.config.strategy_for(key, column, cls.label or "SENSITIVE")
        return name in _KEYED or (name == "format_preserving" and bool(options.get("deterministic")))

    def watching(self, key: str, inner: Masker) -> Masker:
        """``inner``, telling the state when it masks something: data has arrived in a provisional table."""
        cache_key = (key, "<provisional>", str(id(inner)))
        found = self.maskers.get(cache_key)
        if found is not None:
            return found

        def provisional(value: Any) -> Any:
            out = inner(value)
            if out is not value and out != value:
                self.data_arrived(key)
            return out

        self.maskers[cache_key] = provisional
        return provisional

    def label_masker(self, label: str) -> Masker:
        """The configured strategy for a label found in a value (no column to tell it apart)."""
        name, options = self.config.strategy_for("", "", label)
        return self._strategy("", label, name, options)

    def _strategy(self, where: str, label: str, name: str, options: Mapping[str, Any]) -> Masker:
        # built once per column (or label) and strategy, then shared by every plan that masks it
        cache_key = (where, label, name)
        found = self.maskers.get(cache_key)
        if found is None:
            found = self.maskers[cache_key] = build_strategy(name, label, dict(options), self.ctx)
        return found


#: strategies whose output is a keyed function of the value (``format_preserving`` too when deterministic)
_KEYED = frozenset({"hash", "tokenize"})
#: marker class: the table's columns are unknown, so values are checked as they pass
UNREADABLE = ColumnClass("UNKNOWN", 1.0, {"catalog": "table catalog could not be read"})


def state_for(gov: Governor) -> MaskingState:
    st = gov.state.get("masking")
    if st is None:
        st = gov.state.setdefault("masking", MaskingState(gov))
    gov.masking_state = st  # the statement path reads it as an attribute (one lookup fewer per statement)
    return st  # type: ignore[no-any-return]


def _rank(cls: ColumnClass) -> tuple[bool, bool, float]:
    """How much a class masks: a label over none, a settled one over a provisional one, then confidence."""
    return cls.label is not None, not cls.provisional, cls.confidence
