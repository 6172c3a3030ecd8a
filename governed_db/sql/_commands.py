"""Classify statements sqlglot only knows as opaque commands, by their leading keywords.

sqlglot parses many server commands (``SET ROLE``, ``VACUUM INTO``, ``DO``,
``LOCK TABLE``, ``RELEASE SAVEPOINT``...) as an opaque ``Command`` or not at
all. Guessing "probably fine" would be the bypass, so each family we know is
named here; anything else stays ``unknown`` and the policy treats it as high
risk. Statements classified here carry the ``opaque`` flag: their tables are
not known.
"""

from __future__ import annotations

from sqlglot import Token, TokenType

Classified = tuple[str, str, frozenset[str], tuple[tuple[str, str, bool], ...]]

#: PRAGMAs that only report (with or without an argument); everything else with a value writes.
READ_PRAGMAS = frozenset(
    {
        "table_info", "table_xinfo", "table_list", "index_info", "index_list", "index_xinfo",
        "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check", "database_list",
        "collation_list", "function_list", "module_list", "pragma_list", "compile_options",
        "data_version", "freelist_count", "page_count",
    }
)  # fmt: skip
#: PRAGMAs that act even without a value. DuckDB's ``enable_profiling`` makes every later statement report
#: sizes measured before masking (``get_profiling_information()``: peak_streaming_buffer_size, decision 0224).
ACTION_PRAGMAS = frozenset(
    {"optimize", "shrink_memory", "incremental_vacuum", "wal_checkpoint", "enable_profiling", "enable_profile"}
)
#: pragmas whose value is stored in the database file (every later user inherits it): setting one is a write
PERSISTENT_PRAGMAS = frozenset(
    {"journal_mode", "user_version", "application_id", "auto_vacuum", "page_size", "schema_version", "encoding",
     "legacy_file_format", "max_page_count"}
)

#: Keywords that start the statement after EXPLAIN [options].
_STARTERS = frozenset(
    {"SELECT", "WITH", "INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "VALUES", "TABLE", "CREATE",
     "DECLARE", "EXECUTE", "DROP", "ALTER", "TRUNCATE", "CALL", "COPY"}
)  # fmt: skip
_DML = frozenset({"SELECT", "WITH", "INSERT", "UPDATE", "DELETE", "REPLACE"})
_MAINTENANCE = frozenset(
    {"VACUUM", "ANALYZE", "ANALYSE", "REINDEX", "CLUSTER", "CHECKPOINT", "OPTIMIZE", "REPAIR", "CHECK",
     "CHECKSUM", "REFRESH"}
)  # fmt: skip
_SERVER_CONTROL = frozenset({"KILL", "SHUTDOWN", "FLUSH", "PURGE", "CHANGE", "STOP", "UNINSTALL", "RESTART"})
_PRINCIPALS = frozenset({"ROLE", "USER", "GROUP"})
#: Objects whose definition is code the server runs later (an operator or cast is a function call in disguise;
#: a conversion changes how client bytes are read).
_CODE_OBJECTS = frozenset(
    {"FUNCTION", "PROCEDURE", "TRIGGER", "EVENT", "RULE", "OPERATOR", "CAST", "AGGREGATE", "LANGUAGE",
     "CONVERSION", "DEFAULT", "ACCESS", "POLICY", "PUBLICATION", "SUBSCRIPTION", "SERVER", "FOREIGN", "TRANSFORM"}
)  # fmt: skip


def explain_split(words: list[str], tokens: list[Token], gd: str) -> tuple[bool, list[Token]] | None:
    """For ``EXPLAIN [ANALYZE] stmt`` (and MariaDB ``ANALYZE stmt``): (runs the statement?, its tokens)."""
    if not words:
        return None
    if words[0] == "ANALYZE" and gd == "mysql" and len(words) > 1 and words[1] in _DML:
        return True, tokens[1:]  # MariaDB executes the statement and reports on it
    if words[0] != "EXPLAIN":
        return None
    analyse = False
    i = 1
    if i < len(tokens) and tokens[i].token_type == TokenType.L_PAREN:
        depth = 0
        options: list[str] = []
        while i < len(tokens):
            tt = tokens[i].token_type
            depth += tt == TokenType.L_PAREN
            depth -= tt == TokenType.R_PAREN
            options.append(tokens[i].text.upper())
            i += 1
            if depth == 0:
                break
        for j, opt in enumerate(options):
            if opt in ("ANALYZE", "ANALYSE"):
                nxt = options[j + 1] if j + 1 < len(options) else ""
                analyse = analyse or nxt not in ("FALSE", "OFF", "0")
    while i < len(tokens) and tokens[i].text.upper() not in _STARTERS:
        if tokens[i].text.upper() in ("ANALYZE", "ANALYSE"):
            analyse = True
        i += 1
    if i >= len(tokens):
        return None  # MySQL ``EXPLAIN t`` is DESCRIBE t: let the parser have it
    return analyse, tokens[i:]


def _words(tokens: list[Token]) -> list[str]:
    return [t.text.upper() for t in tokens]


def classify_words(words: list[str], tokens: list[Token], text: str, gd: str) -> Classified | None:
    """(kind, operation, flags, settings) for a statement known by its keywords, else ``None``."""
    if not words:
        return None
    w0, w1 = words[0], (words[1] if len(words) > 1 else "")
    op = " ".join(words[:2]) if w1.isalpha() else w0
    mysql = gd == "mysql"
    if mysql and w0 in ("SELECT", "WITH", "TABLE", "(") and _into_outfile(tokens):
        return _c("file", "SELECT INTO OUTFILE", "file-write")
    if mysql and ((w0 == "SHOW" and w1 in ("EXPLAIN", "ANALYZE")) or (w0 == "EXPLAIN" and "CONNECTION" in words)):
        # SHOW EXPLAIN|ANALYZE [FORMAT=JSON] FOR n, EXPLAIN [FORMAT=JSON] FOR CONNECTION n: another session's plan
        return _c("read", op if w0 == "SHOW" else "EXPLAIN FOR CONNECTION", "session-plan")
    if w0 in ("SHOW", "DESCRIBE", "DESC", "EXPLAIN", "SUMMARIZE", "FETCH", "MOVE", "CLOSE"):
        return _c("read", w0)  # reports, and cursor steps over a query already judged at DECLARE
    if w0 in ("EXPORT", "IMPORT") and w1 == "DATABASE":
        return _c("file", op, "file-write" if w0 == "EXPORT" else "file-read")
    if w0 in ("BEGIN", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "XA", "UNLOCK"):
        if w1 == "PREPARED":
            return _c("transaction", op, "two-phase")
        if w0 == "BEGIN" and _read_write(tokens):
            return _c("transaction", "BEGIN", settings=_READ_WRITE)
        return _c("transaction", w0, *(("savepoint",) if w0 in ("SAVEPOINT", "RELEASE") or "TO" in words else ()))
    if w0 == "START" and w1 == "TRANSACTION":
        return _c("transaction", "BEGIN", settings=_READ_WRITE if _read_write(tokens) else ())
    if w0 == "PREPARE" and w1 == "TRANSACTION":
        return _c("transaction", op, "two-phase")
    if w0 == "SET":
        return _set(words, tokens)
    if w0 == "RESET":
        if mysql:
            return _c("admin", op, "server-control")
        if w1 == "ROLE" or words[1:3] == ["SESSION", "AUTHORIZATION"]:
            # back to the login identity: undoes a SET ROLE the application made to narrow its rights
            return _c("session", "RESET ROLE" if w1 == "ROLE" else "RESET SESSION AUTHORIZATION", "set-role")
        # back to the defaults: undoes read-only modes and timeouts the application set up
        return _c("session", "RESET", settings=((w1.lower() or "all", "reset", True),))
    if w0 == "ALTER" and w1 == "SYSTEM":
        name = words[3].lower() if len(words) > 3 and words[2] in ("SET", "RESET") else "all"
        return _c("admin", "ALTER SYSTEM", "alter-system", settings=((name, "system", True),))
    if w0 == "ALTER" and w1 == "DATABASE" and "SET" in words:
        at = words.index("SET")
        name = words[at + 1].lower() if at + 1 < len(words) else "?"
        return _c("admin", "ALTER DATABASE", settings=((name, "database", True),))
    if w0 in ("CREATE", "ALTER") and "DEFINER" in words[1:4]:
        # MySQL/MariaDB ``CREATE [OR REPLACE] DEFINER = `u`@`h` TRIGGER|EVENT|PROCEDURE|FUNCTION ...``: the user's
        # words came between CREATE and what it creates, so a trigger passed as plain DDL (decision 0319)
        every = _words(tokens)  # (``words`` holds the first six only)
        at = every.index("DEFINER") if "DEFINER" in every else len(every)
        what = next((w for w in every[at + 1 : at + 12] if w in _CODE_OBJECTS or w in ("VIEW", "TABLE")), "")
        if what in _CODE_OBJECTS and (w0 == "CREATE" or (what == "EVENT" and "DO" in every)):
            return _c("ddl", f"{w0} {what}", "stored-code")
    if w0 == "ALTER" and w1 == "EVENT" and "DO" in _words(tokens):
        # MariaDB ``ALTER EVENT e DO <body>`` gives an event a new body: code that runs later, as CREATE EVENT's
        return _c("ddl", "ALTER EVENT", "stored-code")
    routine = [w for w in words[1:4] if w not in ("OR", "REPLACE", "DEFINER", "TEMP", "TEMPORARY", "CONSTRAINT")]
    if w0 == "CREATE" and routine[:1] and routine[0] in _CODE_OBJECTS:
        return _c("ddl", f"CREATE {routine[0]}", "stored-code")
    if w0 in ("ALTER", "CREATE", "DROP") and w1 in _PRINCIPALS:
        return _c("privilege", op, "user-management")
    if (w0, w1) in (("RENAME", "USER"), ("REASSIGN", "OWNED"), ("DROP", "OWNED"), ("SECURITY", "LABEL")):
        return _c("privilege", op, "user-management")
    if w0 in ("GRANT", "REVOKE") or (w0 == "ALTER" and w1 == "DEFAULT"):
        return _c("privilege", w0)
    if (w0 == "CREATE" and w1 == "EXTENSION") or (w0 in ("INSTALL", "LOAD") and w1 not in ("DATA", "XML")):
        return _c("exec", op if w0 == "CREATE" else w0, "extension")
    if w0 == "FORCE" and w1 == "INSTALL":
        return _c("exec", "INSTALL", "extension")
    if w0 in ("DO", "CALL", "EXEC", "EXECUTE", "PREPARE"):
        return _c("exec", w0, "dynamic-sql")
    if w0 == "DEALLOCATE":
        return _c("session", w0)
    if w0 == "LOCK":
        return _c("admin", "LOCK", "lock")
    if w0 == "VACUUM" and "INTO" in _words(tokens):
        return _c("file", "VACUUM INTO", "file-write")
    if w0 in _MAINTENANCE:
        return _c("admin", w0, "maintenance")
    if w0 in _SERVER_CONTROL or (w0 == "START" and w1 in ("SLAVE", "REPLICA")):
        return _c("admin", w0, "server-control")
    if w0 == "DISCARD" and w1 == "ALL":
        # DISCARD ALL includes SET SESSION AUTHORIZATION DEFAULT and RESET ALL
        return _c("session", "DISCARD ALL", "set-role", settings=(("all", "reset", True),))
    if w0 in ("LISTEN", "UNLISTEN", "NOTIFY"):
        return _c("session", w0, "notify")  # a channel to and from other sessions, past masking and the record
    if w0 == "DISCARD":
        return _c("session", w0)
    if w0 == "COPY":
        all_words = _words(tokens)
        flags = ["copy-program"] if "PROGRAM" in all_words else []
        if not {"STDIN", "STDOUT"} & set(all_words) or flags:
            flags.append("file-read" if "FROM" in all_words else "file-write")
        return _c("file" if flags else "write", "COPY", *flags)
    if w0 == "LOAD" and w1 in ("DATA", "XML"):
        return _c("file", op, "file-read")
    if w0 == "ATTACH":
        return _c("file", "ATTACH", "attach")
    if w0 == "DETACH":
        return _c("session", "DETACH")
    if w0 == "USE":
        return _c("session", "USE", "use-database")
    if w0 == "RENAME":
        return _c("ddl", op, "schema-rewrite")
    if w0 == "ALTER" and "OWNER" in words[:8] + _words(tokens)[:12] and "TO" in _words(tokens):
        return _c("privilege", op, "owner-change")  # ALTER ... OWNER TO: hands the object and its rights over
    if w0 == "ALTER" and w1 == "TABLE":
        all_words = _words(tokens)
        if "PARTITION" in all_words and {"TRUNCATE", "DROP", "EXCHANGE", "DETACH", "REORGANIZE", "COALESCE",
                                         "REMOVE", "DISCARD", "REBUILD"} & set(all_words):
            return _c("ddl", op, "destructive-alter")  # partition TRUNCATE/DROP/EXCHANGE: rows go or move
        if "DROP" in all_words:
            return _c("ddl", op, "destructive-alter")  # DROP PRIMARY KEY / CONSTRAINT / COLUMN
        if "SET" in all_words and ("SCHEMA" in all_words or "TABLESPACE" in all_words):
            return _c("ddl", op, "schema-rewrite")  # moves the table out from under every caller and policy
        if "DISABLE" in all_words or ("NO" in all_words and "FORCE" in all_words):
            # DISABLE TRIGGER / ROW LEVEL SECURITY switch off protections the database enforces
            what = "row_security" if "SECURITY" in all_words else "triggers"
            return _c("ddl", op, settings=((what, "table", True),))
        if "DISCARD" in all_words:
            return _c("ddl", op, "destructive-alter")  # DISCARD TABLESPACE: the table's data file is deleted
    if w0 == "ALTER" and "RENAME" in _words(tokens):
        return _c("ddl", op, "schema-rewrite")
    if w0 == "TRUNCATE":
        return _c("ddl", "TRUNCATE", "truncate")
    if w0 == "DROP":
        return _c("ddl", op, "drop")
    if w0 in ("CREATE", "ALTER", "COMMENT", "RENAME", "IMPORT"):
        return _c("ddl", op)
    if w0 in ("REPLACE", "UPSERT"):
        return _c("write", w0)
    if w0 == "PRAGMA":
        return _c("session", "PRAGMA", settings=((w1.lower(), "pragma", True),))
    return None


#: Words allowed in the transaction statements governed_db passes unparsed (anything else: refused).
_TX_WORDS = frozenset(
    {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "WORK", "TRANSACTION", "AND", "NO", "CHAIN",
     "RELEASE", "DEFERRED", "IMMEDIATE", "EXCLUSIVE", "ISOLATION", "LEVEL", "READ", "WRITE", "ONLY",
     "COMMITTED", "UNCOMMITTED", "REPEATABLE", "SERIALIZABLE", "NOT", "DEFERRABLE", ",", "WITH", "CONSISTENT",
     "SNAPSHOT"}
)  # fmt: skip
_NAME_TOKENS = frozenset({TokenType.VAR, TokenType.IDENTIFIER})
_TX_HEADS = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "START"})


def known_form(head: str, tokens: list[Token]) -> bool:
    """Is a statement classified by its keywords in a form the server reads as the analyser does?

    Transaction control, LISTEN/UNLISTEN/NOTIFY and DETACH pass unparsed, so their whole text must be a known
    form: ``COMMIT customers`` or ``LISTEN AND`` is something the parser could not read, never housekeeping.
    """
    words = _words(tokens)
    if head in ("COMMIT", "ROLLBACK") and words[1:2] == ["PREPARED"]:
        return len(tokens) == 3 and tokens[2].token_type == TokenType.STRING  # two-phase: judged as such
    if head in _TX_HEADS:
        i = 0
        while i < len(tokens):
            w = words[i]
            if w in ("SAVEPOINT", "TO") or (w == "RELEASE" and i == 0):
                nxt = tokens[i + 1] if i + 1 < len(tokens) else None
                if nxt is not None and words[i + 1] == "SAVEPOINT" and w != "SAVEPOINT":
                    i += 1
                    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
                if nxt is None or nxt.token_type not in _NAME_TOKENS:
                    return False
                i += 2
                continue
            if w not in _TX_WORDS:
                return False
            i += 1
        return True
    if head in ("LISTEN", "UNLISTEN"):
        return len(tokens) == 2 and (tokens[1].token_type in _NAME_TOKENS or (head == "UNLISTEN" and words[1] == "*"))
    if head == "NOTIFY":
        return (len(tokens) == 2 and tokens[1].token_type in _NAME_TOKENS) or (
            len(tokens) == 4 and tokens[1].token_type in _NAME_TOKENS and tokens[2].token_type == TokenType.COMMA
            and tokens[3].token_type == TokenType.STRING
        )  # fmt: skip
    if head == "DETACH":
        rest = tokens[2:] if words[1:2] == ["DATABASE"] else tokens[1:]
        if [t.text.upper() for t in rest[:2]] == ["IF", "EXISTS"]:
            rest = rest[2:]  # DuckDB DETACH [DATABASE] IF EXISTS name
        return len(rest) == 1 and rest[0].token_type in (*_NAME_TOKENS, TokenType.STRING)
    return True


def _c(kind: str, op: str, *flags: str, settings: tuple[tuple[str, str, bool], ...] = ()) -> Classified:
    return kind, op, frozenset((*flags, "opaque")), settings


#: ``READ WRITE`` transaction modes switch off a read-only session: judged as a critical settings write.
_READ_WRITE = (("transaction_read_only", "transaction", True),)


def _read_write(tokens: list[Token]) -> bool:
    words = " ".join(" ".join(_words(tokens)).split())
    return "READ WRITE" in words


def _into_outfile(tokens: list[Token]) -> bool:
    words = _words(tokens)
    return any(w == "INTO" and i + 1 < len(words) and words[i + 1] in ("OUTFILE", "DUMPFILE")
               for i, w in enumerate(words))  # fmt: skip


def _set(words: list[str], tokens: list[Token]) -> Classified:
    rest = [w for w in words[1:] if w not in ("SESSION", "LOCAL")] if len(words) > 1 else []
    scope = "local" if len(words) > 1 and words[1] == "LOCAL" else "session"
    head = rest[0] if rest else ""
    if head == "ROLE":
        return _c("session", "SET ROLE", "set-role")
    if rest[:1] == ["AUTHORIZATION"]:
        return _c("session", "SET SESSION AUTHORIZATION", "set-role")
    if head == "STATEMENT":
        # MariaDB SET STATEMENT a=1, b=2 FOR <statement>: settings for one statement we do not analyse
        all_words = _words(tokens)
        names = tuple((all_words[i - 1].lower(), "session", True) for i, w in enumerate(all_words) if w == "=" and i > 0)
        return _c("session", "SET STATEMENT", "dynamic-sql", settings=names)
    if head == "PASSWORD":
        return _c("privilege", "SET PASSWORD", "user-management")
    if head in ("TRANSACTION", "CHARACTERISTICS", "CONSTRAINTS"):
        if _read_write(tokens):
            name = "default_transaction_read_only" if head == "CHARACTERISTICS" else "transaction_read_only"
            return _c("session", "SET", settings=((name, "session", True),))
        return _c("session", "SET", settings=(("transaction", "transaction", True),))
    if rest[:2] == ["TIME", "ZONE"]:
        return _c("session", "SET", settings=(("timezone", scope, True),))
    if head in ("GLOBAL", "PERSIST", "PERSIST_ONLY"):
        name = rest[1].lower() if len(rest) > 1 else "?"
        return _c("session", "SET", settings=((name, "global", True),))
    return _c("session", "SET", settings=((head.lower() or "?", scope, True),))
