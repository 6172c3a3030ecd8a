"""Rules about privileges, session identity, server settings, transactions, locks and administration."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from governed_db.policy.decision import Action
from governed_db.policy.rules._spec import Finding, approval_remedy, rule

if TYPE_CHECKING:
    from governed_db.policy import RuleContext
    from governed_db.sql.analysis import StatementInfo

#: Settings that switch off auditing/logging, read-only modes or integrity checks (glob patterns).
CRITICAL_SETTINGS = (
    "log_*", "general_log*", "slow_query_log*", "sql_log_bin", "sql_log_off", "log_bin*", "pgaudit.*",
    "read_only", "super_read_only", "transaction_read_only", "default_transaction_read_only", "tx_read_only",
    "session_replication_role", "row_security", "query_only", "writable_schema", "ignore_check_constraints",
    "check_constraint_checks",
    "trusted_schema", "cell_size_check", "foreign_key_checks", "unique_checks", "sql_safe_updates",
    "local_infile", "secure_file_priv", "shared_preload_libraries", "session_preload_libraries",
    "local_preload_libraries", "dynamic_library_path", "allow_system_table_mods", "enable_external_access",
    "allow_unsigned_extensions", "lock_configuration", "sql_mode", "triggers",
)  # fmt: skip
#: Session settings drivers, ORMs and pools set routinely (glob patterns); anything else needs review.
HARMLESS_SETTINGS = (
    "names", "character set", "charset", "character_set_*", "collation_connection", "client_encoding",
    "datestyle", "timezone", "time_zone", "intervalstyle", "application_name", "extra_float_digits",
    "statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "search_path", "transaction",
    "transaction_isolation", "tx_isolation", "default_transaction_isolation", "autocommit",
    "standard_conforming_strings", "client_min_messages", "bytea_output", "max_execution_time",
    "net_read_timeout", "net_write_timeout", "wait_timeout", "innodb_lock_wait_timeout", "sql_auto_is_null",
    "session_track_*", "group_concat_max_len", "foreign_keys", "busy_timeout", "cache_size", "temp_store",
    "journal_mode", "synchronous", "mmap_size", "recursive_triggers", "defer_foreign_keys",
    "wal_autocheckpoint", "analysis_limit", "optimize", "threads", "memory_limit", "jit", "work_mem",
    "constraints", "all", "user_version", "application_id", "wal_checkpoint",
)  # fmt: skip


#: Advisory lock functions: a lock held until released (or the session ends) that other sessions queue on.
ADVISORY_LOCK_FUNCTIONS = frozenset(
    {"pg_advisory_lock", "pg_advisory_lock_shared", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared",
     "pg_try_advisory_lock", "pg_try_advisory_lock_shared", "pg_try_advisory_xact_lock",
     "pg_try_advisory_xact_lock_shared", "get_lock"}
)  # fmt: skip

#: Setting scopes that outlive the session or reach every session.
_SERVER_WIDE = frozenset({"global", "system", "persist", "persist_only", "database"})


def _matches(name: str, patterns: Any) -> bool:
    return any(fnmatchcase(name, str(p).lower()) for p in patterns)


def _critical(stmt: StatementInfo, opts: Mapping[str, Any]) -> list[str]:
    out = []
    for name, scope, write in stmt.settings:
        # RESET (and DISCARD ALL) puts back defaults: it undoes whatever protection the application set up
        if write and (scope in _SERVER_WIDE or scope == "reset" or _matches(name, opts["critical"])):
            out.append(f"{scope} {name}" if scope in _SERVER_WIDE else name)
    return out


@rule(
    "privilege-change",
    family="access",
    rationale="GRANT and REVOKE change who may do what; they belong to administrators.",
    remedy="ask a database administrator to change privileges",
    production=Action.DENY,
    staging=Action.REQUIRE_APPROVAL,
)
def privilege_change(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or stmt.kind != "privilege" or "user-management" in stmt.flags:
        return None
    return Finding(f"{stmt.operation} changes privileges")


@rule(
    "user-management",
    family="access",
    rationale="Creating, altering or dropping users and roles, or setting passwords, changes identities.",
    remedy="ask a database administrator to manage users and roles",
    production=Action.DENY,
)
def user_management(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "user-management" not in stmt.flags:
        return None
    return Finding(f"{stmt.operation} manages users, roles or passwords")


@rule(
    "session-identity",
    family="access",
    rationale="SET ROLE / SET SESSION AUTHORIZATION make later statements run as someone else.",
    remedy="connect as the identity you need; do not switch roles inside a governed session",
    production=Action.DENY,
)
def session_identity(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None:
        return None
    # SET role = x / SET session_authorization = x are SET ROLE spelled as a setting
    if "set-role" not in stmt.flags and not any(w and n in _IDENTITY_SETTINGS for n, _, w in stmt.settings):
        return None
    return Finding(f"{stmt.operation} changes the session's database identity")


_CHECKPOINTS = frozenset({"checkpoint", "force_checkpoint"})
_IDENTITY_SETTINGS = frozenset({"role", "session_authorization"})


@rule(
    "settings-critical",
    family="access",
    rationale="ALTER SYSTEM, SET GLOBAL and switches for logging, read-only modes or integrity checks "
    "(including SQLite PRAGMA foreign_keys = OFF) disable controls for everyone.",
    remedy="ask a database administrator; logging and read-only switches are not changed ad hoc",
    production=Action.DENY,
    options={"critical": CRITICAL_SETTINGS},
)
def settings_critical(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is not None and "integrity-off" in stmt.flags:
        return Finding(f"{stmt.operation} switches off foreign key enforcement")
    if stmt is None or not stmt.settings:
        return None
    names = _critical(stmt, opts)
    return Finding(f"{stmt.operation} changes {', '.join(names)}") if names else None


@rule(
    "lexing-settings",
    family="access",
    rationale="Settings that change how the server lexes later statements (PostgreSQL standard_conforming_strings, "
    "client_encoding, backslash_quote; MySQL/MariaDB SET NAMES, character_set_client/_connection, sql_mode "
    "ANSI_QUOTES/NO_BACKSLASH_ESCAPES) would make the server read text differently from the analyser; "
    "values that keep the analyser's reading (UTF8, standard_conforming_strings = on) pass.",
    remedy="keep the connection's encoding and quoting settings as they are (UTF-8, standard strings); set "
    "them in the connection options, not from SQL",
    production=Action.DENY,
    staging=Action.REQUIRE_APPROVAL,
)
def lexing_settings(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or (not stmt.settings and "set_config" not in stmt.functions):
        return None
    from governed_db.sql._lexing import lexing_changes

    changes = lexing_changes(stmt)
    if not changes:
        return None
    return Finding(f"{stmt.operation} changes how the server reads later statements ({', '.join(changes)})")


@rule(
    "search-path",
    family="access",
    rationale="Changing search_path makes unqualified names resolve to other schemas (a look-alike table or "
    "function shadows the real one); agents may not change it.",
    remedy="qualify names with their schema instead of changing search_path",
    production=Action.DENY,
    staging=Action.REQUIRE_APPROVAL,
)
def search_path(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or ctx.identity is None or ctx.identity.kind != "agent":
        return None
    if not stmt.settings and "set_config" not in stmt.functions:
        return None
    from governed_db.sql._lexing import search_path_changes

    return Finding(f"{stmt.operation} changes search_path") if search_path_changes(stmt) else None


@rule(
    "settings-write",
    family="access",
    rationale="Session settings beyond what drivers set routinely (encoding, time zone, timeouts) change "
    "how later statements behave.",
    remedy=approval_remedy("change a session setting"),
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
    options={"harmless": HARMLESS_SETTINGS, "critical": CRITICAL_SETTINGS},
)
def settings_write(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or not stmt.settings or "user-management" in stmt.flags:
        return None
    critical = set(_critical(stmt, opts))
    names = [
        n for n, scope, write in stmt.settings
        if write and scope not in ("user", "reset") and n not in critical and not _matches(n, opts["harmless"])
        and f"{scope} {n}" not in critical
    ]  # fmt: skip
    return Finding(f"{stmt.operation} changes {', '.join(names)}") if names else None


@rule(
    "transaction-control",
    family="access",
    rationale="BEGIN/COMMIT/ROLLBACK/SAVEPOINT mixed into a multi-statement text (or two-phase commit) change "
    "what the caller's transaction covers; alone they are driver and ORM housekeeping and pass.",
    remedy="send transaction control as its own statement (or use the driver's commit()/rollback())",
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
    options={"standalone": False},
)
def transaction_control(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or stmt.kind != "transaction":
        return None
    if "two-phase" in stmt.flags:
        return Finding(f"{stmt.operation} is two-phase commit control; prepared transactions hold locks")
    if len(ctx.analysis.statements) > 1 or opts.get("standalone"):
        return Finding(f"{stmt.operation} inside user SQL changes the caller's transaction")
    return None


@rule(
    "lock",
    family="access",
    rationale="Explicit LOCK TABLE(S) and advisory locks (pg_advisory_lock, GET_LOCK) can stall every other "
    "session.",
    remedy=approval_remedy("lock tables explicitly"),
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
)
def lock(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None:
        return None
    advisory = sorted(f for f in stmt.functions if f in ADVISORY_LOCK_FUNCTIONS)
    if advisory:
        return Finding(f"calls {', '.join(advisory)}(), which takes a lock other sessions wait on")
    if "lock" not in stmt.flags:
        return None
    return Finding(f"{stmt.operation} takes explicit table locks")


@rule(
    "maintenance",
    family="access",
    rationale="VACUUM, ANALYZE, REINDEX, CLUSTER, OPTIMIZE, REFRESH and CHECKPOINT (DuckDB checkpoint()) can "
    "lock tables and load the server.",
    remedy=approval_remedy("run maintenance"),
    production=Action.REQUIRE_APPROVAL,
    staging=Action.WARN,
)
def maintenance(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is not None and ctx.analysis.dialect.lower() == "duckdb" and stmt.functions & _CHECKPOINTS:
        return Finding("checkpoint() writes the database file and blocks until it is done")
    if stmt is None or "maintenance" not in stmt.flags:
        return None
    return Finding(f"{stmt.operation} is server maintenance")


@rule(
    "server-control",
    family="access",
    rationale="KILL, SHUTDOWN, FLUSH, PURGE, replication and RESET commands act on the whole server.",
    remedy="ask a database administrator",
    production=Action.DENY,
)
def server_control(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "server-control" not in stmt.flags:
        return None
    return Finding(f"{stmt.operation} acts on the whole server")
