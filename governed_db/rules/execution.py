"""Rules about code the server runs on the caller's behalf: dynamic SQL, extensions, dangerous functions.

Function lists are matched in every dialect: the names are specific enough,
and a user-defined function with a dangerous name deserves a look anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governed_db.decision import Action
from governed_db.rules import Finding, approval_remedy, rule

if TYPE_CHECKING:
    from governed_db.analysis import StatementInfo
    from governed_db.policy import RuleContext

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
                         "read_json", "read_json_auto", "read_ndjson", "glob"}),
}  # fmt: skip
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
EXTENSION_FUNCTIONS = frozenset({"load_extension"})
_ALL_FILE = frozenset().union(*FILE_FUNCTIONS.values())


def _called(stmt: StatementInfo | None, names: frozenset[str], prefix: str | None = None) -> list[str]:
    if stmt is None or not stmt.functions:
        return []
    hits = sorted(f for f in stmt.functions if f in names or (prefix is not None and f.startswith(prefix)))
    return hits


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
    return Finding(f"calls {', '.join(called)}(), which loads native code") if called else None


@rule(
    "function-file-access",
    family="functions",
    rationale="pg_read_file, pg_ls_dir, lo_*, LOAD_FILE, readfile/writefile read or write server files.",
    remedy="read files outside the database, or ask an administrator",
    production=Action.DENY,
)
def function_file_access(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    called = _called(stmt, _ALL_FILE, "lo_")
    return Finding(f"calls {', '.join(called)}(), which touches server files") if called else None


@rule(
    "function-remote",
    family="functions",
    rationale="dblink* functions open connections to other servers from inside the database.",
    remedy="query the other database through its own governed connection",
    production=Action.DENY,
)
def function_remote(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    called = _called(stmt, REMOTE_FUNCTIONS, "dblink")
    return Finding(f"calls {', '.join(called)}(), which reaches another server") if called else None


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
    return Finding(f"calls {', '.join(called)}(), which changes server or session state") if called else None


def _harmless_set_config(stmt: StatementInfo) -> bool:
    """set_config('search_path' | 'application_name' | ..., ...) is what frameworks do; judge it like SET."""
    from fnmatch import fnmatchcase

    from sqlglot import exp

    from governed_db.rules.access import HARMLESS_SETTINGS

    if stmt.expression is None:
        return False
    for call in stmt.expression.find_all(exp.Anonymous):
        if str(call.this).lower() != "set_config":
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
    return Finding(f"calls {', '.join(called)}(), which stalls the connection") if called else None
