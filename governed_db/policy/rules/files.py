"""Rules about the server's file system and other database files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governed_db.policy.decision import Action
from governed_db.policy.rules._spec import Finding, approval_remedy, rule

if TYPE_CHECKING:
    from governed_db.policy import RuleContext
    from governed_db.sql.analysis import StatementInfo


@rule(
    "file-io",
    family="files",
    rationale="COPY to/from files, INTO OUTFILE/DUMPFILE, LOAD DATA, VACUUM INTO and DuckDB's FROM '/path/x.csv' "
    "(or an https/s3 URL) move data past every control.",
    remedy="export or import through the application (COPY ... STDIN/STDOUT, fetch and write), not server files",
    production=Action.DENY,
)
def file_io(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or not stmt.flags & {"file-read", "file-write"} or "copy-program" in stmt.flags:
        return None
    if "network" in stmt.flags:
        return Finding(f"{stmt.operation} reads a URL from inside the database (network access)")
    direction = "writes" if "file-write" in stmt.flags else "reads"
    return Finding(f"{stmt.operation} {direction} files on the database server")


@rule(
    "copy-program",
    family="files",
    rationale="COPY ... PROGRAM runs a shell command on the database server.",
    remedy="never run shell commands through SQL; use the application",
    production=Action.DENY,
)
def copy_program(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "copy-program" not in stmt.flags:
        return None
    return Finding("COPY ... PROGRAM runs a shell command on the database server")


@rule(
    "attach",
    family="files",
    rationale="ATTACH opens another database file inside this connection (SQLite, DuckDB).",
    remedy=approval_remedy("attach another database"),
    production=Action.DENY,
    staging=Action.REQUIRE_APPROVAL,
)
def attach(stmt: StatementInfo | None, ctx: RuleContext, opts: Mapping[str, Any]) -> Finding | None:
    if stmt is None or "attach" not in stmt.flags:
        return None
    return Finding("ATTACH opens another database file in this connection")
