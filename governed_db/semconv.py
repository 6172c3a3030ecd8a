"""One schema for the record: every span, audit and metric key governed_db writes or reads, defined once.

Telemetry, the audit store, search, reports, export, replay, metrics and the CLI use these names; a test
fails when a module spells a key as a string instead (``tests/test_semconv.py``). The OpenTelemetry ones
follow the stable database semantic conventions (``db.*``, ``server.*``, ``error.type``).
"""
from __future__ import annotations

# -- OpenTelemetry database semantic conventions (stable)
DB_CLIENT_OPERATION_DURATION = "db.client.operation.duration"
DB_COLLECTION_NAME = "db.collection.name"
DB_NAMESPACE = "db.namespace"
DB_OPERATION_BATCH_SIZE = "db.operation.batch.size"
DB_OPERATION_NAME = "db.operation.name"
DB_QUERY_TEXT = "db.query.text"
DB_RESPONSE_RETURNED_ROWS = "db.response.returned_rows"
DB_RESPONSE_STATUS_CODE = "db.response.status_code"
DB_SYSTEM_NAME = "db.system.name"

# -- OpenTelemetry server and error attributes
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

# -- OpenTelemetry MCP semantic conventions
MCP_METHOD_NAME = "mcp.method.name"
MCP_SERVER_OPERATION_DURATION = "mcp.server.operation.duration"

# -- governed_db's own record keys, span and metric names
GDB_ANALYSIS_ERROR = "governed_db.analysis.error"
GDB_APPROVAL = "governed_db.approval"
GDB_APPROVAL_APPROVALS = "governed_db.approval.approvals"
GDB_APPROVAL_COMMENT = "governed_db.approval.comment"
GDB_APPROVAL_FINGERPRINT = "governed_db.approval.fingerprint"
GDB_APPROVAL_GRANT = "governed_db.approval.grant"
GDB_APPROVAL_KIND = "governed_db.approval.kind"
GDB_APPROVAL_OPERATIONS = "governed_db.approval.operations"
GDB_APPROVAL_QUORUM = "governed_db.approval.quorum"
GDB_APPROVAL_REASON = "governed_db.approval.reason"
GDB_APPROVAL_REQUEST_ID = "governed_db.approval.request_id"
GDB_APPROVAL_REVIEWER = "governed_db.approval.reviewer"
GDB_APPROVAL_REVIEWER_KIND = "governed_db.approval.reviewer.kind"
GDB_APPROVAL_REVIEWER_PROVENANCE = "governed_db.approval.reviewer.provenance"
GDB_APPROVAL_REVIEWER_ROLES = "governed_db.approval.reviewer.roles"
GDB_APPROVAL_RULES = "governed_db.approval.rules"
GDB_APPROVAL_STATE = "governed_db.approval.state"
GDB_APPROVAL_STATEMENT = "governed_db.approval.statement"
GDB_APPROVAL_TABLES = "governed_db.approval.tables"
GDB_APPROVAL_TRANSITION = "governed_db.approval.transition"
GDB_AUDIT_HASH = "governed_db.audit.hash"
GDB_AUDIT_SEQ = "governed_db.audit.seq"
GDB_COLUMNS = "governed_db.columns"
GDB_ENTRY = "governed_db.entry"
GDB_ENVIRONMENT = "governed_db.environment"
GDB_IDENTITY_ISSUER = "governed_db.identity.issuer"
GDB_IDENTITY_KIND = "governed_db.identity.kind"
GDB_IDENTITY_ON_BEHALF_OF = "governed_db.identity.on_behalf_of"
GDB_IDENTITY_PROVENANCE = "governed_db.identity.provenance"
GDB_IDENTITY_ROLES = "governed_db.identity.roles"
GDB_IDENTITY_SUBJECT = "governed_db.identity.subject"
GDB_IDENTITY_TOKEN_ID = "governed_db.identity.token_id"
GDB_MASKED_CELLS = "governed_db.masked_cells"
GDB_MASKED_COLUMNS = "governed_db.masked_columns"
GDB_OUTCOME = "governed_db.outcome"
GDB_REASON = "governed_db.reason"
GDB_REFUSALS = "governed_db.refusals"
GDB_REFUSED = "governed_db.refused"
GDB_RESULT = "governed_db.result"
GDB_ROWS_AFFECTED = "governed_db.rows_affected"
GDB_ROWS_RETURNED = "governed_db.rows_returned"
GDB_RULE = "governed_db.rule"
GDB_STATEMENT_KINDS = "governed_db.statement.kinds"
GDB_STATEMENT_SPAN_ID = "governed_db.statement_span_id"
GDB_STATEMENTS = "governed_db.statements"
GDB_TABLES = "governed_db.tables"

__all__ = [
    "DB_CLIENT_OPERATION_DURATION",
    "DB_COLLECTION_NAME",
    "DB_NAMESPACE",
    "DB_OPERATION_BATCH_SIZE",
    "DB_OPERATION_NAME",
    "DB_QUERY_TEXT",
    "DB_RESPONSE_RETURNED_ROWS",
    "DB_RESPONSE_STATUS_CODE",
    "DB_SYSTEM_NAME",
    "ERROR_TYPE",
    "GDB_ANALYSIS_ERROR",
    "GDB_APPROVAL",
    "GDB_APPROVAL_APPROVALS",
    "GDB_APPROVAL_COMMENT",
    "GDB_APPROVAL_FINGERPRINT",
    "GDB_APPROVAL_GRANT",
    "GDB_APPROVAL_KIND",
    "GDB_APPROVAL_OPERATIONS",
    "GDB_APPROVAL_QUORUM",
    "GDB_APPROVAL_REASON",
    "GDB_APPROVAL_REQUEST_ID",
    "GDB_APPROVAL_REVIEWER",
    "GDB_APPROVAL_REVIEWER_KIND",
    "GDB_APPROVAL_REVIEWER_PROVENANCE",
    "GDB_APPROVAL_REVIEWER_ROLES",
    "GDB_APPROVAL_RULES",
    "GDB_APPROVAL_STATE",
    "GDB_APPROVAL_STATEMENT",
    "GDB_APPROVAL_TABLES",
    "GDB_APPROVAL_TRANSITION",
    "GDB_AUDIT_HASH",
    "GDB_AUDIT_SEQ",
    "GDB_COLUMNS",
    "GDB_ENTRY",
    "GDB_ENVIRONMENT",
    "GDB_IDENTITY_ISSUER",
    "GDB_IDENTITY_KIND",
    "GDB_IDENTITY_ON_BEHALF_OF",
    "GDB_IDENTITY_PROVENANCE",
    "GDB_IDENTITY_ROLES",
    "GDB_IDENTITY_SUBJECT",
    "GDB_IDENTITY_TOKEN_ID",
    "GDB_MASKED_CELLS",
    "GDB_MASKED_COLUMNS",
    "GDB_OUTCOME",
    "GDB_REASON",
    "GDB_REFUSALS",
    "GDB_REFUSED",
    "GDB_RESULT",
    "GDB_ROWS_AFFECTED",
    "GDB_ROWS_RETURNED",
    "GDB_RULE",
    "GDB_STATEMENTS",
    "GDB_STATEMENT_KINDS",
    "GDB_STATEMENT_SPAN_ID",
    "GDB_TABLES",
    "MCP_METHOD_NAME",
    "MCP_SERVER_OPERATION_DURATION",
    "SERVER_ADDRESS",
    "SERVER_PORT",
]
