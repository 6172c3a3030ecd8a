"""Rules about code the server runs on the caller's behalf: dynamic SQL, extensions, dangerous functions.

Function lists are matched in every dialect: the names are specific enough,
and a user-defined function with a dangerous name deserves a look anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governed_db.policy.decision import Action
from governed_db.policy.rules._spec import Finding, approval_remedy, rule

if TYPE_CHECKING:
    from governed_db.policy import RuleContext
    from governed_db.sql.analysis import StatementInfo

#: Functions that read or write server files, per dialect.
FILE_FUNCTIONS: dict[str, frozenset[str]] = {
    "postgres": frozenset(
        {"pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_ls_logdir", "pg_ls_waldir",
         "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_file_write", "pg_file_rename", "pg_file_unlink",
         "pg_logdir_ls"}
    ),
    "mysql": frozenset({"load_file"}),
    "sqlite": frozenset({"readfile", "writefile", "edit", "fsdir"}),
    "duckdb": frozenset({"read_text", "read_blob", "read_csv", "read_csv_auto", "read_parquet", "parquet_scan",
                         "read_json", "read_json_auto", "read_ndjson", "read_ndjson_auto", "read_json_objects",
                         "read_ndjson_objects", "read_json_objects_auto", "read_xlsx", "sniff_csv",
                         "parquet_metadata", "parquet_schema", "parquet_file_metadata", "parquet_kv_metadata",
                         "parquet_bloom_probe", "glob", "delta_scan", "iceberg_scan", "iceberg_metadata",
                         "iceberg_snapshots", "sqlite_scan", "sqlite_attach", "postgres_scan", "mysql_scan"}),
}  # fmt: skip
#: DuckDB reader families: every ``read_*`` built-in reads a file or URL.
_DUCKDB_FILE_PREFIXES = ("read_", "parquet_", "iceberg_")
#: Functions that reach other servers.
REMOTE_FUNCTIONS = frozenset({"dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query",
                              "dblink_open", "dblink_fetch", "dblink_get_result"})  # fmt: skip
#: Functions that change server or session state or other sessions.
CONTROL_FUNCTIONS = frozenset(
    {"set_config", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
     "pg_promote", "pg_switch_wal", "pg_create_restore_point", "pg_backup_start", "pg_backup_stop",
     "pg_start_backup", "pg_stop_backup", "pg_wal_replay_pause", "pg_wal_replay_resume",
     "pg_replication_origin_create", "pg_create_logical_replication_slot", "pg_create_physical_replication_slot",
     "pg_drop_replication_slot"}
)  # fmt: skip
#: Functions that stall the server (time-based blind injection, denial of service).
DELAY_FUNCTIONS = frozenset({"pg_sleep", "pg_sleep_for", "pg_sleep_until", "sleep", "benchmark"})
#: load_extension loads a library; SQLite's two-argument fts3_tokenizer registers a raw function pointer.
EXTENSION_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
#: PostgreSQL functions that run SQL text (or dump whole tables, schemas, databases) the analyser never sees.
DYNAMIC_SQL_FUNCTIONS = frozenset(
    {"query_to_xml", "query_to_xmlschema", "query_to_xml_and_xmlschema", "table_to_xml", "table_to_xmlschema",
     "table_to_xml_and_xmlschema", "schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema",
     "database_to_xml", "database_to_xmlschema", "database_to_xml_and_xmlschema", "cursor_to_xml",
     "cursor_to_xmlschema", "ts_stat"}
)  # fmt: skip
#: DuckDB functions that run SQL text, change the parser, copy/import whole databases or reveal secrets.
DUCKDB_DYNAMIC_FUNCTIONS = frozenset(
    {"json_execute_serialized_sql", "copy_database", "import_database",
     "add_grammar_extension", "remove_grammar_extension", "duckdb_secrets", "which_secret",
     "enable_checkpoint_on_shutdown", "disable_checkpoint_on_shutdown"}
)  # fmt: skip
#: Functions that send data out of band (to every listening session).
NOTIFY_FUNCTIONS = frozenset({"pg_notify"})
_ALL_FILE = frozenset().union(*FILE_FUNCTIONS.values())


def _called(stmt: StatementInfo | None, names: frozenset[str], prefix: str | None = None) -> list[str]:
    if stmt is None or not stmt.functions:
        return []
    return sorted(f for f in stmt.functions if f in names or (prefix is not None and f.startswith(prefix)))


def _calls(called: list[str], effect: str) -> Finding | None:
    """The finding for the function rules: which functions were called, and what they do."""
    return Finding(f"calls {', '.join(called)}(), {effect}") if called else None


@rule(
    "dynamic-sql",
    family="execution",
    rationale="DO blocks, PREPARE/EXECUTE, CALL and EXEC run code the analyser cannot see.",
    remedy=approval_remedy("run dynamic SQL"),
    production=Action.REQUIRE_APPROVAL,
)
def dynamic_sql(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "dynamic-sql" not in stmt.flags:
        return None
    return Finding(f"{stmt.operation} runs code that cannot be analysed statically")


@rule(
    "stored-code",
    family="execution",
    rationale="CREATE FUNCTION/PROCEDURE/TRIGGER/EVENT/RULE define code that runs later, out of the analyser's "
    "sight (and, for triggers and events, without anyone calling it).",
    remedy=approval_remedy("define stored code"),
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
)
def stored_code(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "stored-code" not in stmt.flags:
        return None
    return Finding(f"{stmt.operation} defines code that runs later, unanalysed")


@rule(
    "extension-load",
    family="execution",
    rationale="Loading extensions (CREATE EXTENSION, LOAD, INSTALL, load_extension) runs native code.",
    remedy="install extensions through a reviewed migration by an administrator",
    production=Action.DENY,
)
def extension_load(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is not None and "extension" in stmt.flags:
        return Finding(f"{stmt.operation} loads native code into the server")
    called = _called(stmt, EXTENSION_FUNCTIONS)
    return _calls(called, "which loads native code")


@rule(
    "function-file-access",
    family="functions",
    rationale="pg_read_file, pg_ls_dir, lo_*, LOAD_FILE, readfile/writefile and DuckDB's read_*/parquet_*/glob "
    "readers read or write server files (names are matched unquoted and case-folded).",
    remedy="read files outside the database, or ask an administrator",
    production=Action.DENY,
)
def function_file_access(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    called = _called(stmt, _ALL_FILE, "lo_")
    if stmt is not None and stmt.functions and ctx.analysis.dialect.lower() == "duckdb":
        called = sorted({*called, *(f for f in stmt.functions if f.startswith(_DUCKDB_FILE_PREFIXES))})
    return _calls(called, "which touches server files")


@rule(
    "function-remote",
    family="functions",
    rationale="dblink* functions open connections to other servers from inside the database.",
    remedy="query the other database through its own governed connection",
    production=Action.DENY,
)
def function_remote(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    called = _called(stmt, REMOTE_FUNCTIONS, "dblink")
    return _calls(called, "which reaches another server")


@rule(
    "function-server-control",
    family="functions",
    rationale="set_config, pg_terminate_backend, pg_reload_conf and friends change the server or other sessions.",
    remedy="ask a database administrator",
    production=Action.DENY,
)
def function_server_control(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    called = _called(stmt, CONTROL_FUNCTIONS)
    if called == ["set_config"] and stmt is not None and _harmless_set_config(stmt):
        return None
    return _calls(called, "which changes server or session state")


def _harmless_set_config(stmt: StatementInfo) -> bool:
    """set_config('search_path' | 'application_name' | ..., ...) is what frameworks do; judge it like SET."""
    from fnmatch import fnmatchcase

    from sqlglot import exp

    from governed_db.policy.rules.access import HARMLESS_SETTINGS

    if stmt.expression is None:
        return False
    for call in stmt.expression.find_all(exp.Anonymous):
        if call.name.lower() != "set_config":
            continue
        first = call.expressions[0] if call.expressions else None
        if not (isinstance(first, exp.Literal) and first.is_string):
            return False  # a computed setting name could be anything
        name = first.name.lower()
        if not any(fnmatchcase(name, p) for p in HARMLESS_SETTINGS):
            return False
    return True


@rule(
    "function-delay",
    family="functions",
    rationale="pg_sleep, SLEEP and BENCHMARK stall connections (time-based blind injection, denial of service).",
    remedy="remove the delay; wait in the application if you must",
    production=Action.DENY,
)
def function_delay(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    called = _called(stmt, DELAY_FUNCTIONS)
    return _calls(called, "which stalls the connection")


@rule(
    "function-dynamic-sql",
    family="functions",
    rationale="query_to_xml, table_to_xml, schema_to_xml, database_to_xml, cursor_to_xml, ts_stat, the "
    "query form of ts_rewrite, DuckDB's query()/query_table() of SQL built at run time (a literal's SQL is "
    "analysed as part of the statement), json_execute_serialized_sql(), "
    "copy_database(), import_database(), grammar extensions and duckdb_secrets() run SQL text (or dump whole "
    "tables, databases or secrets) the analyser and masking never see.",
    remedy="run the query itself through governed_db, and format the result in the application",
    production=Action.DENY,
)
def function_dynamic_sql(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    called = _called(stmt, DYNAMIC_SQL_FUNCTIONS)
    if ctx.analysis.dialect.lower() == "duckdb":
        called += _called(stmt, DUCKDB_DYNAMIC_FUNCTIONS)
        if stmt is not None and "nested-sql" in stmt.flags:
            called.append("query")  # query()/query_table() of text built at run time
    if stmt is not None and "ts_rewrite" in stmt.functions and _ts_rewrite_query(stmt):
        called.append("ts_rewrite")
    return _calls(called, "which runs SQL the analyser cannot see")


def _ts_rewrite_query(stmt: StatementInfo) -> bool:
    """ts_rewrite(query, 'SELECT ...'): the two-argument form runs its second argument as a query."""
    from sqlglot import exp

    if stmt.expression is None:
        return True
    for call in stmt.expression.find_all(exp.Func):
        name = call.name if isinstance(call, exp.Anonymous) else call.sql_name()
        if name.lower() == "ts_rewrite" and len(list(call.iter_expressions())) < 3:
            return True
    return False


@rule(
    "function-notify",
    family="functions",
    rationale="pg_notify sends any value it is given to every listening session: a side channel past masking "
    "and the result record.",
    remedy=approval_remedy("send notifications from SQL") + "; or NOTIFY from the application",
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
)
def function_notify(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    called = _called(stmt, NOTIFY_FUNCTIONS)
    return _calls(called, "which sends data to other sessions")


@rule(
    "notify",
    family="functions",
    rationale="LISTEN, UNLISTEN and NOTIFY open a channel to and from other sessions: data sent there passes "
    "masking and the result record, and a listener receives what other sessions send.",
    remedy=approval_remedy("use LISTEN/NOTIFY") + "; or listen and notify from the application",
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
)
def notify(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "notify" not in stmt.flags:
        return None
    return Finding(f"{stmt.operation} uses a notification channel shared with other sessions")
