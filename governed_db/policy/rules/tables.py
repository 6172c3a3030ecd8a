"""Rules about what is read: table lists, system catalogs, other databases, result size, and who asks.

Table patterns are globs matched case-insensitively; a pattern without a dot
matches the last part of a name (``payroll`` matches ``hr.payroll``), one
with a dot matches the qualified name (``hr.*``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from governed_db.policy.decision import Action
from governed_db.policy.rules._spec import Finding, approval_remedy, rule

if TYPE_CHECKING:
    from governed_db.policy import RuleContext
    from governed_db.sql.analysis import StatementInfo

#: Schemas/databases that are system catalogs (writing them is never routine).
CATALOG_SCHEMAS = frozenset({"pg_catalog", "information_schema", "mysql", "performance_schema", "sys", "pg_toast"})
CATALOG_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_sequence"})
#: Catalog tables that hold credentials or server secrets: even reading them is refused.
CREDENTIAL_TABLES = frozenset(
    {"pg_authid", "pg_shadow", "pg_user_mapping", "pg_user_mappings", "pg_hba_file_rules", "pg_ident_file_mappings",
     "mysql.user", "mysql.global_priv", "mysql.password_history", "mysql.slave_master_info",
     "mysql.replication_connection_configuration",
     # FEDERATED/CONNECT server definitions: a remote server's user name and password in clear
     "mysql.servers"}
)  # fmt: skip
#: Statistics catalogs that hold column *values* (histogram bounds, most common values, samples): reading them
#: reads the data past masking, so they are not schema discovery.
VALUE_CATALOGS = frozenset(
    {"pg_stats", "pg_statistic", "pg_stats_ext", "pg_stats_ext_exprs", "pg_statistic_ext_data",
     # the bytes of every large object, which lo_get()/lo_open() (refused as file access) would have read
     "pg_largeobject",
     "information_schema.column_statistics", "mysql.column_stats", "sqlite_stat4", "sqlite_stat3",
     "sqlite_stat1", "dbstat", "sqlite_stmt", "duckdb_logs", "information_schema.innodb_locks",
     "performance_schema.data_locks",
     "information_schema.innodb_ft_index_table", "information_schema.innodb_ft_index_cache",
     "mysql.innodb_index_stats", "mysql.innodb_table_stats", "mysql.index_stats", "information_schema.partitions",
     "information_schema.innodb_buffer_page", "information_schema.innodb_buffer_page_lru",
     "information_schema.innodb_cmp_per_index", "information_schema.innodb_cmp_per_index_reset",
     "mysql.general_log", "mysql.slow_log", "performance_schema.events_statements_current",
     "performance_schema.events_statements_history", "performance_schema.events_statements_history_long",
     *(f"sys.{x}{v}" for x in ("", "x$") for v in (
         "innodb_buffer_stats_by_table", "innodb_buffer_stats_by_schema", "innodb_lock_waits", "processlist",
         "session", "schema_table_lock_waits", "schema_table_statistics_with_buffer"))}
)  # fmt: skip
# The sys schema's views over them (decision 0247) are the same reads under other names: the buffer statistics
# sum INNODB_BUFFER_PAGE's DATA_SIZE per table and schema (487 bytes with one SSN, 499 with a longer one; the
# table statistics "with buffer" join them), the lock waits join INNODB_LOCKS, the process list and session views
# and the table lock waits read the statement tables
# InnoDB's lock tables show the key of each record a lock waits on or blocks (LOCK_DATA: the values of a unique
# index on ``ssn`` when the lock was taken through it), its full-text tables the words of the indexed texts; the
# index statistics count the distinct values of each index prefix (``n_diff_pfx01``, ``avg_frequency``): after
# rows holding a guess are inserted into a table with an index on ``ssn``, InnoDB's automatic recalculation says
# whether the guess equals a stored value; PARTITIONS counts the rows of each partition, a histogram of the
# partitioning expression (``RANGE (YEAR(dob))``); the buffer pool's pages report DATA_SIZE, the bytes of the
# records on each page (a three-row table's page grows by one byte with an SSN one character longer), and the
# per-index compression statistics how well the values compress. The statement logs (general and slow query
# log tables, the statement history) hold every session's SQL text with its literals: the application's
# ``INSERT ... VALUES (..., '536-22-8726')`` as written
# sqlite_stat1 counts the rows per distinct value of each index prefix (after a row holding a guess is inserted,
# ANALYZE says whether it equals a stored value); SQLite's dbstat reports each page's payload bytes (the summed
# lengths of the values on it); sqlite_stmt lists the connection's prepared statements (the application's too, with
# their literals as written) and how many steps each took over the rows it read: 50 for the application's
# ``CREATE INDEX ... WHERE ssn > '3'`` over ALICE's row, 42 over ANNA's (decision 0405)
#: Table functions that report column values: DuckDB's storage statistics hold each segment's min/max (the first
#: bytes of the values) and string lengths; DuckDB's ``duckdb_table_sample('t')`` is the table's own reservoir
#: sample, its rows in clear under the table's column names (empty in DuckDB 2.0's builds, refused before it is
#: not: masking does not trace a table function's columns to the table named in its argument)
#: DuckDB's log (``duckdb_logs``, a view, and the table functions ``duckdb_logs()``/``duckdb_logs_parsed()``), once
#: the application turned logging on, holds every connection's SQL as written (the application's ``... WHERE ssn =
#: '536-22-8726'``) and what operators did with the values (an adaptive filter's events, hash tables' bytes), the
#: library's own sampling reads included; ``duckdb_prepared_statements()`` the connection's prepared statements as
#: written (the application's literals, as SQLite's ``sqlite_stmt``), ``duckdb_variables()`` the values of the
#: variables the application set (decision 0420)
VALUE_FUNCTIONS = frozenset(
    {"pragma_storage_info", "dbstat", "duckdb_table_sample", "duckdb_logs", "duckdb_logs_parsed",
     "duckdb_prepared_statements", "duckdb_variables"}
)  # fmt: skip
#: The only MySQL/MariaDB status counters a governed session may read: families that count events — connections,
#: commands, threads, time up, TLS sessions — which no value a statement reads can move (decision 0291). Every
#: other counter may measure what the server did with the values before masking, and the server has hundreds, more
#: than a list of known ones kept up with. ``Bytes_sent`` grows by the length of every value sent (``SELECT email
#: ... WHERE id = 1`` tells its length, ``replace(ssn, '5', <100 x>)`` how many 5s it holds, decision 0215), the
#: memory counters by what a statement held, the redo and binary logs' by the bytes of the records a write logs (an
#: allowed ``UPDATE t SET city = 'Nice-sur-mer' WHERE id = 1`` logs the whole row, masked values and all: 428
#: bytes with one name, 440 with a longer one, decision 0247). ``Sort_merge_passes`` and ``Created_tmp_files``
#: say whether a sort of rows carrying a masked value spilled out of the sort buffer (its length, to a character,
#: by the number of rows sorted), ``Aria_pagecache_write_requests`` how many pages its temporary table filled,
#: ``Subquery_cache_hit`` whether a correlated subquery met an outer value it had seen (a stored SSN equal to a
#: row of guesses the caller inserted), ``Handler_*`` and ``Select_*`` what the plan, chosen from statistics of
#: the values, read; the buffer pool's page counts (``Innodb_buffer_pool_pages_data``, ``_split``) how many pages
#: rows fill, a table size as ``DATA_LENGTH`` is (decision 0247). Lower-case name prefixes; ``compression`` (whether
#: the connection compresses) is listed because ``LIKE 'Com_%'`` matches it.
QUIET_COUNTERS = (
    "aborted_", "access_denied_errors", "com_", "compression", "connection_errors_", "connections",
    "max_used_connections", "queries", "questions", "ssl_", "threads", "uptime",
)  # fmt: skip
#: tables of status counters (any of them may hold any counter), per-client statistics with a BYTES_SENT, and the
#: engines' own counter tables, which hold the refused counters under other names (the buffer pool's pages
#: created and written, the key cache's blocks, the compression of pages; decision 0291): no name filter picks
#: quiet counters there, so any read is refused
TRAFFIC_TABLES = frozenset(
    {"information_schema.session_status", "information_schema.global_status", "performance_schema.session_status",
     "performance_schema.global_status", "performance_schema.status_by_thread", "performance_schema.status_by_account",
     "performance_schema.status_by_user", "performance_schema.status_by_host", "information_schema.user_statistics",
     "information_schema.client_statistics", "information_schema.thread_statistics", "sys.metrics",
     "information_schema.innodb_metrics", "information_schema.innodb_buffer_pool_stats",
     "information_schema.key_caches", "information_schema.innodb_cmp", "information_schema.innodb_cmp_reset",
     "information_schema.innodb_cmpmem", "information_schema.innodb_cmpmem_reset",
     # MariaDB's user statistics (userstat=1): the rows each table and index gave, as Handler_read_* counts them
     "information_schema.table_statistics", "information_schema.index_statistics"}
)  # fmt: skip
#: The only performance_schema tables and sys views a governed session may read: configuration, instruments,
#: connections, threads (their statements masked, decision 0246), locks and handles held, variables, replication
#: (decision 0307). Every other one sums the work statements did — per statement digest, thread, user, host, file,
#: socket, index: ``SUM_SORT_MERGE_PASSES``, ``SUM_CREATED_TMP_DISK_TABLES``, the bytes written to the client's
#: socket and to the redo log's file, the memory held, the rows read through each index — the counters decision
#: 0291 refused, under other names (the server's own and MySQL 8's performance_schema has over a hundred such
#: tables, the sys schema another hundred views over them).
QUIET_INSTRUMENTATION = frozenset(
    {*(f"performance_schema.{t}" for t in (
        "accounts", "users", "hosts", "threads", "host_cache", "setup_actors", "setup_consumers", "setup_instruments",
        "setup_objects", "setup_timers", "performance_timers", "cond_instances", "mutex_instances", "rwlock_instances",
        "file_instances", "socket_instances", "session_account_connect_attrs", "session_connect_attrs",
        "metadata_locks", "table_handles", "user_variables_by_thread", "session_variables", "global_variables",
        "variables_by_thread", "replication_applier_configuration", "replication_applier_status",
        "replication_applier_status_by_coordinator", "replication_applier_status_by_worker",
        "replication_connection_configuration", "replication_connection_status")),
     *(f"sys.{t}" for t in (
        "version", "sys_config", "schema_object_overview", "schema_auto_increment_columns",
        "schema_redundant_indexes", "x$schema_flattened_keys", "ps_check_lost_instrumentation",
        "session_ssl_status"))}
)  # fmt: skip
_INSTRUMENTATION_SCHEMAS = ("performance_schema", "sys")
#: tables where a filter on VARIABLE_NAME picks counters (the statistics tables have a column per counter)
_STATUS_TABLES = frozenset(t for t in TRAFFIC_TABLES if not t.endswith("_statistics"))
_LIMIT_KINDS = frozenset({"write", "file", "ddl", "admin"})


def table_matches(name: str, patterns: Iterable[Any]) -> bool:
    low = name.lower()
    last = low.rsplit(".", 1)[-1]
    for p in patterns:
        pat = str(p).lower()
        if fnmatchcase(low if "." in pat else last, pat):
            return True
    return False


def _is_catalog(name: str) -> bool:
    parts = name.lower().split(".")
    if len(parts) == 1 and parts[0].startswith("pg_"):
        return True  # PostgreSQL searches pg_catalog first: an unqualified pg_class IS pg_catalog.pg_class
    return parts[-1] in CATALOG_TABLES or (len(parts) > 1 and parts[-2] in CATALOG_SCHEMAS)


def _credential(name: str) -> bool:
    low = name.lower()
    return low in CREDENTIAL_TABLES or low.rsplit(".", 1)[-1] in CREDENTIAL_TABLES


def _values(name: str) -> bool:
    low = name.lower()
    last2 = ".".join(low.rsplit(".", 2)[-2:])
    return low in VALUE_CATALOGS or last2 in VALUE_CATALOGS or low.rsplit(".", 1)[-1] in VALUE_CATALOGS


@rule(
    "table-deny",
    family="tables",
    rationale="Tables a policy lists as off-limits (e.g. payroll, secrets) are refused in any statement.",
    remedy="this table is off-limits under the policy; ask its owner for an extract",
    production=Action.DENY,
    options={"tables": ()},
)
def table_deny(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or not opts["tables"]:
        return None
    hit = [t for t in stmt.tables if table_matches(t, opts["tables"])]
    return Finding(f"{stmt.operation} touches denied table(s) {', '.join(hit)}") if hit else None


@rule(
    "table-allow",
    family="tables",
    rationale="When a policy lists the tables an identity may use, every other table is refused (fail closed "
    "for statements whose tables cannot be known).",
    remedy="use only the tables the policy allows, or ask for access",
    production=Action.DENY,
    options={"tables": ()},
)
def table_allow(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or not opts["tables"]:
        return None
    outside = [t for t in stmt.tables if not _is_catalog(t) and not table_matches(t, opts["tables"])]
    if outside:
        return Finding(f"{stmt.operation} uses table(s) outside the allow-list: {', '.join(outside)}")
    if "opaque" in stmt.flags and stmt.kind in _LIMIT_KINDS:
        return Finding(f"{stmt.operation}: the tables it touches cannot be known, so the allow-list cannot pass it")
    return None


_SHOW_STATUS = re.compile(r"\s*(?:(?:GLOBAL|SESSION|LOCAL)\s+)?STATUS\b(.*)", re.I | re.S)
_LIKE_TAIL = re.compile(r"\s*LIKE\s+'([^'\\]*)'\s*;?\s*", re.I)
#: MariaDB's ``SHOW USER_STATISTICS`` (``CLIENT_``, ``INDEX_``, ``TABLE_``): the rows of the information_schema
#: tables of the same names, which TRAFFIC_TABLES refuses (bytes sent, rows read per table and index; decision 0345)
_SHOW_STATISTICS = re.compile(r"\s*((?:USER|CLIENT|INDEX|TABLE)_STATISTICS)\b", re.I)


def _quiet_name(name: str) -> bool:
    return name.lower().startswith(QUIET_COUNTERS)


def _quiet_pattern(pattern: str) -> bool:
    """Whether every counter a LIKE pattern can match is of a quiet family: the text before its first ``%``
    starts with a quiet prefix (``_`` stands for the ``_`` of the server's names: no counter differs from a family's
    prefix by the character it matches), or, without ``%``, the pattern is a quiet name."""
    literal, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            i += 1
            literal.append(pattern[i])
        elif ch == "%":
            break
        else:
            literal.append(ch)
        i += 1
    return _quiet_name("".join(literal))


def _picks_counter(cond: exp.Expression, name: str) -> bool | None:
    """Whether a condition on ``name`` (the counter's name column) can keep a counter that is not quiet: ``None``
    when it does not restrict names by literals at all."""
    while isinstance(cond, exp.Paren):
        cond = cond.this
    if isinstance(cond, exp.And):
        found = [_picks_counter(c, name) for c in (cond.this, cond.expression)]
        known = [f for f in found if f is not None]
        return all(known) if known else None  # one conjunct that keeps no counter is enough
    if isinstance(cond, exp.Or):
        found = [_picks_counter(c, name) for c in (cond.this, cond.expression)]
        return None if None in found else any(found)
    column = cond.this if isinstance(cond, (exp.EQ, exp.In, exp.Like)) else None
    if not (isinstance(column, exp.Column) and column.name.lower() == name):
        return None
    values = cond.expressions if isinstance(cond, exp.In) else [cond.expression]
    if not values or not all(isinstance(v, exp.Literal) and v.is_string for v in values):
        return None
    if isinstance(cond, exp.Like):
        return not _quiet_pattern(str(values[0].this))
    return not all(_quiet_name(str(v.this)) for v in values)


_ENGINE_STATUS = re.compile(r"\s*(?:ENGINE\s+\S+\s+STATUS|INNODB\s+STATUS|(?:BINLOG|RELAYLOG)\s+EVENTS)\b", re.I)


#: SHOW statements whose rows are other statements' text as executed (a binary or relay log in statement format)
_LOG_EVENTS = frozenset({"BINLOG EVENTS", "RELAYLOG EVENTS"})


def _engine_status(stmt: StatementInfo) -> bool:
    """``SHOW ENGINE INNODB STATUS``: after a deadlock (two sessions of the caller's locking rows in opposite
    orders) or a failed foreign key, the report dumps the records involved, every column in hex and as text.
    ``SHOW BINLOG EVENTS`` likewise shows the statements written to the binary log, literals included."""
    tree = stmt.expression
    if isinstance(tree, exp.Show):
        name = " ".join(str(tree.name).upper().split())
        return (name == "ENGINE" and not tree.args.get("mutex")) or name in _LOG_EVENTS
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "SHOW":
        body = tree.expression.this if isinstance(tree.expression, exp.Literal) else str(tree.expression or "")
        return _ENGINE_STATUS.match(str(body)) is not None
    return False


def _work_summaries(stmt: StatementInfo) -> list[str]:
    """The performance_schema tables and sys views ``stmt`` reads that are not quiet (``QUIET_INSTRUMENTATION``); the
    status tables are judged by the counters a filter picks (``_traffic``)."""
    out = []
    for t in stmt.tables_read:
        last2 = ".".join(t.lower().rsplit(".", 2)[-2:])
        schema = last2.split(".", 1)[0] if "." in last2 else ""
        if schema in _INSTRUMENTATION_SCHEMAS and last2 not in QUIET_INSTRUMENTATION | TRAFFIC_TABLES:
            out.append(t)
    return out


def _traffic(stmt: StatementInfo) -> str | None:
    """A read of MySQL/MariaDB status counters that may include one that is not quiet (``QUIET_COUNTERS``): one
    measuring what a statement did with the values it read before masking."""
    tree = stmt.expression
    if isinstance(tree, exp.Command) and str(tree.this).upper() == "SHOW":
        # ``SHOW LOCAL STATUS ...`` (sqlglot keeps it a word): a LIKE of a literal is judged, anything else fails
        # closed
        body = tree.expression.this if isinstance(tree.expression, exp.Literal) else str(tree.expression or "")
        listed = _SHOW_STATISTICS.match(str(body))
        if listed is not None:
            return f"SHOW {listed.group(1).upper()}"
        found = _SHOW_STATUS.match(str(body))
        if found is None:
            return None
        like = _LIKE_TAIL.fullmatch(found.group(1))
        if like is not None and _quiet_pattern(like.group(1)):
            return None
        return "SHOW STATUS"
    if isinstance(tree, exp.Show) and str(tree.name).upper() == "STATUS":
        like, where = tree.args.get("like"), tree.args.get("where")
        if isinstance(like, exp.Literal) and like.is_string:
            keeps: bool | None = not _quiet_pattern(str(like.this))
        else:
            keeps = _picks_counter(where.this, "variable_name") if isinstance(where, exp.Where) else None
        return "SHOW STATUS" if keeps is not False else None
    read = [t for t in stmt.tables_read if ".".join(t.lower().rsplit(".", 2)[-2:]) in TRAFFIC_TABLES]
    if not read:
        return None
    if all(".".join(t.lower().rsplit(".", 2)[-2:]) in _STATUS_TABLES for t in read) and isinstance(tree, exp.Select):
        where = tree.args.get("where")
        if isinstance(where, exp.Where) and _picks_counter(where.this, "variable_name") is False:
            return None
    return ", ".join(read)


@rule(
    "system-catalog",
    family="tables",
    rationale="Writing system catalogs (also unqualified, as UPDATE pg_settings), switching to a system database "
    "(USE mysql), or reading credential catalogs (pg_authid, mysql.user) or statistics catalogs that hold "
    "column values (pg_stats, pg_statistic, column_statistics, DuckDB's pragma_storage_info(), SQLite's "
    "sqlite_stat1, dbstat and sqlite_stmt, DuckDB's duckdb_logs, InnoDB's lock and full-text tables, SHOW ENGINE INNODB "
    "STATUS) or status counters "
    "other than those that count events (MySQL's Bytes_sent, sort spills, subquery cache hits measure values "
    "before masking), or performance_schema/sys summaries of the work statements did (the same counters per "
    "digest, thread, file or socket), is never routine; "
    "plain schema discovery stays allowed.",
    remedy="use information_schema views for discovery; ask an administrator for anything else",
    production=Action.DENY,
)
def system_catalog(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None:
        return None
    if "use-database" in stmt.flags and any(q.lower() in CATALOG_SCHEMAS for q in stmt.qualifiers):
        # USE mysql, then unqualified names (user, global_priv) are the catalog's tables
        return Finding(f"USE switches the connection to the system database {', '.join(stmt.qualifiers)}")
    written = [t for t in stmt.tables_written if _is_catalog(t) or _credential(t)]
    if written:
        return Finding(f"{stmt.operation} writes system catalog(s) {', '.join(written)}")
    secret = [t for t in stmt.tables_read if _credential(t)]
    if secret:
        return Finding(f"reads credential catalog(s) {', '.join(secret)}")
    values = [t for t in stmt.tables_read if _values(t)]
    # DuckDB's ``PRAGMA storage_info('t')`` is a call of the table function ``pragma_storage_info('t')``: the same
    # segment statistics, min/max values included (decision 0310)
    called = {f"pragma_{f}" if stmt.operation == "PRAGMA" and f"pragma_{f}" in VALUE_FUNCTIONS else f for f in stmt.functions}
    values += sorted(f"{f}()" for f in called if f in VALUE_FUNCTIONS)
    if _engine_status(stmt):
        values.append("SHOW ENGINE ... STATUS / SHOW BINLOG EVENTS (they dump whole rows, or statements as written)")
    if "session-plan" in stmt.flags:
        # MariaDB's plan of another session's running statement: its conditions with the literals it was sent
        # (``"attached_condition": "customers.full_name = 'Alice Smith'"``), decision 0247
        values.append(f"{stmt.operation} (another session's plan, its conditions quoting the values it was sent)")
    traffic = _traffic(stmt) if not values else None
    measured = _work_summaries(stmt) if not values and traffic is None else []
    if measured:
        return Finding(
            f"reads {', '.join(measured)}, which sum the work statements did (sort spills, temporary tables, bytes "
            "sent and logged, memory, rows read per index) and so measure values before masking; read the "
            "configuration, instruments, threads, connections or variables there only"
        )
    if traffic is not None:
        return Finding(
            f"reads status counters ({traffic}) that may include ones measuring what statements did with values "
            "before masking (Bytes_sent, memory used, bytes logged, sort and temporary-file spills, subquery "
            "cache hits); name counters of the families that count events only (SHOW STATUS LIKE 'Threads%', "
            "'Com_%', 'Uptime', 'Questions', 'Connections', 'Aborted_%')"
        )
    return Finding(f"reads statistics catalog(s) {', '.join(values)}, which hold column values") if values else None


@rule(
    "cross-database",
    family="tables",
    rationale="Statements reaching another database (db-qualified names, USE) leave the connection's scope; "
    "naming the connection's own database is not reaching another.",
    remedy="connect to the other database through its own governed connection",
    production=Action.WARN,
    options={"databases": ()},
)
def cross_database(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None:
        return None
    if "use-database" in stmt.flags:
        return Finding("USE switches the connection to another database")
    allowed = {str(d).lower() for d in opts["databases"]} | CATALOG_SCHEMAS
    if ctx.database:  # `db`.`t` naming the connection's own database (SQLAlchemy's has_table) stays local
        allowed.add(ctx.database.lower())
    other = [q for q in stmt.qualifiers if q.lower() not in allowed]
    return Finding(f"{stmt.operation} reaches other database(s) {', '.join(other)}") if other else None


@rule(
    "select-star",
    family="tables",
    rationale="SELECT * on large or sensitive tables (listed in the policy) pulls columns nobody asked for.",
    remedy="name the columns you need",
    production=Action.WARN,
    options={"tables": ()},
)
def select_star(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or not stmt.star or not opts["tables"]:
        return None
    hit = [t for t in stmt.tables_read if table_matches(t, opts["tables"])]
    return Finding(f"SELECT * on {', '.join(hit)}") if hit else None


@rule(
    "missing-limit",
    family="tables",
    rationale="Reading large tables (listed in the policy) without LIMIT can return millions of rows.",
    remedy="add a LIMIT (rows beyond the cap are not returned)",
    production=Action.LIMIT,
    options={"tables": (), "limit": 1000},
)
def missing_limit(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or stmt.kind != "read" or stmt.limited or not opts["tables"]:
        return None
    hit = [t for t in stmt.tables_read if table_matches(t, opts["tables"])]
    if not hit:
        return None
    return Finding(f"reads {', '.join(hit)} without LIMIT; capped at {opts['limit']} rows", row_limit=int(opts["limit"]))


@rule(
    "max-rows",
    family="tables",
    rationale="A cap on rows returned per statement (set 'limit' to enable; off by default).",
    remedy="narrow the query or add a LIMIT; rows beyond the cap are not returned",
    production=Action.LIMIT,
    options={"limit": None},
)
def max_rows(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    limit = opts["limit"]
    if stmt is None or limit is None or stmt.kind != "read":
        return None
    return Finding(f"results are capped at {int(limit)} rows", row_limit=int(limit))


@rule(
    "identity-unverified",
    family="identity",
    rationale="In environments the policy names (identities.require_verified), only identities from a "
    "verified identity-provider token may run statements.",
    remedy="authenticate with an identity-provider token (GOVERNED_DB_TOKEN or wrap(token=...))",
    production=Action.DENY,
    scope="text",
    options={"environments": ()},
)
def identity_unverified(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    envs = opts["environments"]
    if not envs or (ctx.environment not in envs and "*" not in envs):
        return None
    ident = ctx.identity
    if ident is not None and ident.verified:
        return None
    who = f"{ident.subject} ({ident.provenance})" if ident is not None else "an anonymous caller"
    return Finding(f"{who} is not a verified identity, required in {ctx.environment}")


def _never(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    return None  # fired by the rate limiter (governed_db.policy.ratelimit), not per statement


rule(
    "rate-limit-statements",
    family="limits",
    rationale="Statements per minute per identity (policy 'limits'); agents can fire hundreds a minute.",
    remedy=approval_remedy("exceed the statement rate limit") + "; or wait a minute",
    production=Action.DENY,
)(_never)
rule(
    "rate-limit-unavailable",
    family="limits",
    rationale="The shared rate-limit store (policy 'limit_storage') is unreachable, so the count is unknown.",
    remedy="retry when the rate-limit store (Redis) is back; operators: check the limit_storage url",
    production=Action.DENY,
    staging=Action.WARN,
)(_never)
rule(
    "rate-limit-rows",
    family="limits",
    rationale="Rows read per minute per identity (policy 'limits'): bulk extraction is throttled.",
    remedy="wait a minute or narrow your queries; ask for a higher limit if the volume is legitimate",
    production=Action.DENY,
)(_never)
