"""Closing the side doors of masking: predicates, write-backs and error messages.

* A column masked for an identity cannot be used by it to filter, join, sort or
  group (``WHERE ssn LIKE '5%'`` would reveal the value one character at a
  time), nor copied into another column (``UPDATE t SET note = ssn``).
* A masked placeholder (``[EMAIL]``, ``j***@example.com``, ``hmac:...``,
  ``TOK_...``) written back by INSERT/UPDATE would destroy the real value: refused.
* Database errors that echo values (``Key (email)=(alice@example.com) already
  exists``, ``Duplicate entry '...'``, ``Failing row contains (...)``) are
  scrubbed in place, keeping the exception's type.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from itertools import chain
from typing import Any

from sqlglot import exp

from governed_db.identity import Identity
from governed_db.masking import app_functions, flow, index_reach, order_guard, schema, stored_code, view_rows
from governed_db.masking.catalog import table_key
from governed_db.masking.constraints import checksum_tables, is_constraint_use, opaque_unique_index_tables
from governed_db.masking.engine import HOT_USES, MISSING, UNREADABLE, MaskingState
from governed_db.masking.flow import known_function_name
from governed_db.masking.lineage import Lineage, Origin
from governed_db.masking.messages import scrub_message
from governed_db.masking.named_counts import bare_name, named_relations
from governed_db.masking.origins import Written
from governed_db.masking.plan import Access, detect_masker
from governed_db.masking.row_length import DEFAULT_LIMIT, most_per_value, parameter_bytes
from governed_db.masking.search import unsafe_search
from governed_db.masking.strategies import any_looks_masked
from governed_db.masking.toast_counts import reaches_toast
from governed_db.masking.writes import EXECUTE_USE
from governed_db.policy.decision import Action, RuleHit
from governed_db.policy.rules import catalog
from governed_db.policy.rules.masking import CONSTRAINT, COPY, PREDICATE, WRITE_BACK
from governed_db.sql._sqlite_reading import parse_one
from governed_db.sql.analysis import Analysis

PREDICATE_RULE = PREDICATE
COPY_RULE = COPY
WRITE_BACK_RULE = WRITE_BACK
CONSTRAINT_RULE = CONSTRAINT



#: uses found inside expressions; a named clause (WHERE, JOIN...) holding them makes the clearer message
_INNER_CLAUSES = frozenset({"a comparison", "arithmetic", "division", "CASE"})


def _action(state: MaskingState, rule_id: str, analysis: Analysis, identity: Identity) -> Action:
    """The action the connection's policy gives ``rule_id`` for this statement (catalog rules, settable per
    environment, identity, dialect and table in a policy file; observe-only environments only warn)."""
    spec = catalog()[rule_id]
    policy = state.gov.policy
    env = state.gov.environment
    action = policy.settings.action_for(spec, env, identity, analysis.dialect, analysis.tables)
    if action is Action.DENY and rule_id != WRITE_BACK_RULE and state.config.predicate_action == "require_approval":
        action = Action.REQUIRE_APPROVAL  # masking's own option (docs/masking.md), kept for existing setups
    declared = env in policy.settings.environments
    observe = policy.settings.observe_only(env) if declared else env in policy.observe_only
    if observe and action.severity > Action.WARN.severity:
        action = Action.WARN
    return action


def _hit(
    state: MaskingState, analysis: Analysis, identity: Identity, rule_id: str, reason: str, remedy: str
) -> RuleHit | None:
    action = _action(state, rule_id, analysis, identity)
    return None if action is Action.ALLOW else RuleHit(rule_id, action, reason, remedy)




def _masked_tables(state: MaskingState, identity: Identity, tables: list[exp.Table] | None) -> list[str] | None:
    """Which of ``tables`` (named in a statement's text) have a column masked for ``identity``, or whose catalog
    could not be read; ``[]`` when their names did not parse (``None``): refused as unknown. ``None``: nothing
    to refuse (no such table, or an identity that sees everything)."""
    access = Access(state, identity)
    if access.everything:
        return None
    masked = []
    for table in tables or ():
        key, _cols = state.columns_of(table)
        if access.hidden_fields(key) or access.blind(key):
            masked.append(key)
    return masked if tables is None or masked else None


def _checksum_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """MariaDB's ``CHECKSUM TABLE t`` (an admin statement: no result masking, no lineage) returns a checksum of
    every stored value of ``t``: it changes exactly when a masked value does, and it equals the checksum of a
    table of guesses exactly when they are right. Refused over a table with a column masked for the identity, or
    whose catalog could not be read (decision 0322)."""
    masked = _masked_tables(state, identity, checksum_tables(analysis.sql, state.sg_dialect))
    if masked is None:
        return None
    what = ", ".join(masked) or "tables whose names could not be read"
    return _hit(
        state,
        analysis,
        identity,
        PREDICATE_RULE,
        f"CHECKSUM TABLE computes a checksum of every stored value of {what}, masked columns included: it "
        "changes exactly when a masked value does, and matches a table of guesses exactly when they are right",
        "compare data through its non-sensitive columns (count(*), max(updated_at)), or ask for an unmask grant "
        "(masking.unmask)",
    )


#: MariaDB clauses the analysis reads the statement without (decision 0426): what each does, for the refusal
_CLAUSE_WHY = {
    "ignore-errors": (
        "UPDATE IGNORE turns each row's error into a warning and goes on with the other rows, so the warnings "
        "and the count of rows changed say which rows failed",
        "write without IGNORE, or name one row by its whole key (WHERE id = ...)",
    ),
    "rows-examined": (
        "LIMIT ROWS EXAMINED stops the query after reading that many rows, so the rows it returns follow the "
        "order the server reads them in",
        "use LIMIT n (governed_db fixes the order of the rows), or name one row by its whole key",
    ),
    # SQLite's UPDATE OR <resolution> (decision 0432)
    "or-ignore": (
        "UPDATE OR IGNORE skips each row whose change breaks a constraint and goes on with the other rows, so "
        "the count of rows changed says which rows failed",
        "write without OR IGNORE, or name one row by its whole key (WHERE id = ...)",
    ),
    "or-fail": (
        "UPDATE OR FAIL keeps the rows changed before the first one that breaks a constraint, so what is left "
        "changed says which row failed",
        "write without OR FAIL, or name one row by its whole key (WHERE id = ...)",
    ),
    "or-rollback": (
        "UPDATE OR ROLLBACK ends the whole transaction when a row breaks a constraint, so whether the "
        "transaction survives says whether some row failed",
        "write without OR ROLLBACK, or name one row by its whole key (WHERE id = ...)",
    ),
    "or-replace": (
        "UPDATE OR REPLACE deletes every other row whose unique values the changed rows take, so which rows are "
        "left says which values were stored",
        "write without OR REPLACE (a conflict then fails the statement whole)",
    ),
}
_MARIADB_CLAUSES = frozenset(_CLAUSE_WHY)
#: clauses whose effect reaches rows other than the one a whole key names: no one-row exception
_OTHER_ROWS = frozenset({"or-replace"})


def _mariadb_clause_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """``UPDATE IGNORE`` and ``LIMIT ROWS EXAMINED`` over a relation with a column masked for ``identity`` (or
    whose catalog could not be read), unless the statement reads one table and names one row by its whole key
    (decision 0426): what they add to the statement without them is per-row -- which rows failed, where reading
    stopped -- and those rows come in the order the server reads them."""
    access = Access(state, identity)
    if access.everything:
        return None
    for stmt in analysis.statements:
        marks = sorted(stmt.flags & _MARIADB_CLAUSES)
        tree = stmt.expression
        if not marks or (
            tree is not None and not (stmt.flags & _OTHER_ROWS) and order_guard.in_no_read_order(state, access, tree)
        ):
            continue
        masked = _masked_tables(state, identity, list(tree.find_all(exp.Table)) if tree is not None else None)
        if masked is None:
            continue
        reason, remedy = _CLAUSE_WHY[marks[0]]
        what = ", ".join(masked) or "tables whose names could not be read"
        return _hit(state, analysis, identity, PREDICATE_RULE,
                    f"{reason}, and {what} has masked columns whose values could decide that", remedy)  # fmt: skip
    return None


def _opaque_index_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """``CREATE UNIQUE INDEX u USING BTREE ON t (code)`` does not parse at all (no tree, so no lineage): it still
    fails on two equal stored values. Refused over a table with a column masked for the identity (decision 0322)."""
    masked = _masked_tables(state, identity, opaque_unique_index_tables(analysis.sql, state.sg_dialect))
    if masked is None:
        return None
    what = ", ".join(masked) or "a table whose name could not be read"
    return _hit(
        state,
        analysis,
        identity,
        CONSTRAINT,
        f"masked column(s) of {what} may take part in the new unique index (the statement could not be "
        "analysed): whether it fails would depend on their stored values",
        "index columns nobody has masked, or run it as an identity with an unmask grant (masking.unmask)",
    )


def declares_caller_collation(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """A schema change that names a collation the caller registered through this connection (``CREATE TEMP TABLE
    g (a TEXT COLLATE spy)``, a view or index with ``COLLATE spy``): SQLite would then call the caller's function
    with the values it compares under that collation, masked ones included (``max(a, ssn)``, ``max()`` over a
    ``UNION ALL`` whose first branch is ``g.a``), while the statement that compares them names no collation at
    all (decision 0289). Registering one the schema already declares is refused by the sqlite3 proxy."""
    if not any(s.kind in ("ddl", "unknown") for s in analysis.statements):
        return None
    names = sorted(n for n in state.caller_collations if collation_named(analysis.sql, n))
    if not names or Access(state, identity).everything:
        return None
    return _hit(
        state,
        analysis,
        identity,
        COPY_RULE,
        f"the statement declares COLLATE {names[0]}, a collation registered through this governed connection: "
        "SQLite would call it with the stored values it compares under it, masked ones included",
        "register the application's collations on the connection before governed_db.wrap(), or declare one of "
        "SQLite's own (BINARY, NOCASE, RTRIM)",
    )


def calls_caller_code(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """A statement that calls a function, aggregate or window function the caller registered through this
    connection, or compares under its collation, while it reads a table an index on a masked column may order
    (SQLite): SQLite calls that code row by row in the order it reads the rows, whatever ORDER BY the result has,
    so the sequence of calls (``tick(id)`` handed 2, 3, 4, 5, 1) or of compared pairs tells how the masked values
    sort (decision 0348)."""
    from governed_db.masking import order_guard

    text = analysis.sql
    called = sorted(n for n in state.caller_functions if function_called(text, n))
    collated = sorted(n for n in state.caller_collations if collation_named(text, n))
    if not called and not collated:
        return None
    access = Access(state, identity)
    if access.everything or not order_guard.outcome(state, analysis, identity, access).hazard:
        return None
    if not index_reach.masked_index_reachable(state, analysis, identity):
        return None  # no index on a masked column can order what it reads (decision 0337)
    what = f"the function {called[0]}()" if called else f"the collation {collated[0]}"
    return _hit(
        state,
        analysis,
        identity,
        PREDICATE_RULE,
        f"{what}, registered through this governed connection, would be called row by row in the order SQLite "
        "reads a table an index on a masked column may order: the order of the calls tells how the masked "
        "values sort",
        "call it on the fetched rows in Python instead, or register it on the connection before governed_db.wrap(), "
        "or ask for an unmask grant (masking.unmask)",
    )


def function_called(text: str, name: str) -> bool:
    """Does ``text`` call the function ``name`` (any quoting, any case, a space before its parenthesis)?"""
    pattern = r"(?<![\w$.])[\"`\[]?" + re.escape(name) + r"[\"`\]]?(?:\s|/\*.*?\*/|--[^\n]*\n)*\("
    return re.search(pattern, text, re.IGNORECASE) is not None


def collation_named(text: str, name: str) -> bool:
    """Does ``text`` name the collation ``name`` after a ``COLLATE`` (any quoting, any case)?"""
    pattern = r"\bCOLLATE\s+[\"'`\[]?" + re.escape(name) + r"(?![\w$])"
    return re.search(pattern, text, re.IGNORECASE) is not None


def predicate_hit(state: MaskingState, analysis: Analysis, identity: Identity, params: Any) -> RuleHit | None:
    if not state.gov.driver.is_async:
        # what was read of the relations still holds? (an async connection's warm-up compares, with await: 0392)
        state.check_catalog(relations=any(
            s.expression is not None and s.expression.find(exp.Table) is not None for s in analysis.statements
        ))
    switches = any(renames(s) for s in analysis.statements)
    if switches and not state.gov.driver.is_async:
        # the schema is changing, or unqualified names are about to mean other tables (USE: another database's;
        # DISCARD TEMP: the stored ones a temporary table shadowed), whose columns hold other values: re-read
        # them on next sight (decision 0234). An async connection forgot them before its warm-up read them
        # again with await (decision 0323)
        state.invalidate()
    if any(s.operation == "CHECKSUM" for s in analysis.statements):
        hit = _checksum_hit(state, analysis, identity)
        if hit is not None:
            return hit
    if any(s.flags & _MARIADB_CLAUSES for s in analysis.statements):
        hit = _mariadb_clause_hit(state, analysis, identity)
        if hit is not None:
            return hit
    if any(s.kind == "ddl" and s.expression is None for s in analysis.statements):
        hit = _opaque_index_hit(state, analysis, identity)
        if hit is not None:
            return hit
    if _CLUSTER.match(analysis.sql) is not None:
        # CLUSTER is maintenance, judged by no other check here (decision 0320)
        access = Access(state, identity)
        clustered = None if access.everything else _cluster_hit(state, analysis, access, identity)
        if clustered is not None:
            return clustered
    if not analysis.statements or not any(
        s.kind in ("read", "write", "ddl", "session", "exec") for s in analysis.statements
    ):
        return None
    temporary = _temporary_names(state, analysis)
    if temporary:
        # checked at every execution, before any memo: the stored table may appear at any time (decision 0258)
        clash = _temporary_clash(state, analysis, identity, temporary)
        if clash is not None:
            return clash
    unsettled = unsettled_uses(state, analysis)
    for table in unsettled:
        # a filter, join, order or copy of a column sampled (nearly) empty: what it holds now decides, not what it
        # held when sampled — its table is sampled again before the statement is judged, every time (a value that
        # arrived since is otherwise compared before any result shows it, decision 0250)
        # (unless a cheap probe shows that the values its labels came from are still all it holds, decision 0267)
        state.resample(table)
    for table, columns in scanned_uses(state, analysis).items():
        # a few-valued column of a table read in part decides rows before any read passed what lies past the
        # sample: what it holds there is looked for first, once (decision 0329)
        state.probe_scanned(table, columns, _scan_masks(state))
    version = state.version  # read once, as in plan_masking: the hot entry carries the version judged under
    key = ("uses", analysis.key, version, identity)
    # a verdict is kept under the schema version: labels that changed when sampled again bumped it (decision 0267)
    verdict: Any = state.recall(key)
    if verdict is MISSING:
        access = Access(state, identity)
        verdict = None if access.everything else _uses_hit(state, analysis, access, identity)
        state.remember(key, verdict, state.good_until(access.grants))
    if verdict is not None:
        return verdict  # type: ignore[no-any-return]
    facts = state.facts_for(analysis)
    if not facts.writes and not switches and not unsettled and not temporary:
        # nothing to check per call (no parameters can carry a placeholder back): answer from the hot cache
        # next time, until the grants' answers must be re-derived
        until = state.memo.peek(key, (0.0, None))[0]
        state.remember_hot(analysis, identity, version, until, HOT_USES, True)
    if facts.writes and state.dialect == "sqlite" and facts.lineage is not None:
        hit = _row_length_hit(state, analysis, identity, facts.lineage, params)
        if hit is not None:
            return hit
    if facts.writes and any_looks_masked(chain(facts.written_literals, _param_strings(params))):
        return _hit(
            state,
            analysis,
            identity,
            WRITE_BACK_RULE,
            "the statement writes a masked placeholder back to the database, which would destroy the real value",
            "write real values only: re-read the row through an identity allowed to see it, or leave "
            "the column out of the statement",
        )
    return None


def _row_length_hit(
    state: MaskingState, analysis: Analysis, identity: Identity, lineage: Lineage, params: Any
) -> RuleHit | None:
    """SQLite: an UPDATE that may lengthen a row by more than :func:`~governed_db.masking.row_length.most_per_value`
    while the row keeps masked values. Past ``SQLITE_LIMIT_LENGTH`` the row is not stored (``string or blob too
    big``), so whether ``SET amount = zeroblob(3933) WHERE id = 1`` failed told how long the name, e-mail and SSN
    beside it were (decision 0405). Checked at every execution: the parameters' bytes count."""
    access: Access | None = None
    limit: int | None = None
    for w in lineage.writes:
        if w.kind != "update" or (w.grows == 0 and not w.sized and not w.copies):
            continue
        columns = state.constraints_of(w.table)[0]
        if access is None:
            access = Access(state, identity)
            if access.everything:
                return None
            limit = state.gov.driver.length_limit(state.gov)
        changed = w.changed
        kept = sorted(c for c in columns or () if (changed is None or c.lower() not in changed)
                      and access.masks(w.table, c))  # fmt: skip
        if columns is not None and not kept:
            continue
        most = most_per_value(limit or 0, len(columns or ()))
        # a copy of another column counts its longest stored value, read now (decision 0413)
        copied = None if w.grows is None else _copied_bytes(state, access, w)
        grows = None if w.grows is None or copied is None else w.grows + copied
        if grows is not None and grows + (parameter_bytes(params) if w.sized else 0) <= most:
            continue
        cols = ", ".join(f"{w.table}.{c}" for c in kept) or f"the columns of {w.table} (unreadable)"
        by = f"more than {most} bytes" if grows is not None else "a length its text does not bound"
        return _hit(
            state,
            analysis,
            identity,
            CONSTRAINT_RULE,
            f"the statement may lengthen a row of {w.table} by {by} while the row keeps masked column(s) {cols}: "
            f"SQLite stores no row longer than its length limit (SQLITE_LIMIT_LENGTH, {limit or 'unreadable'}), "
            "so whether the write failed would tell how long their values are",
            f"give the row at most {most} bytes per statement, as literals, parameters, numbers, zeroblob(<n>), "
            "another clear column of a table whose values are no longer, or upper/lower/trim/substr/coalesce/|| of "
            "them (not printf(), replace(), hex() or a subquery), or run it as an identity with an unmask grant for "
            "the column (masking.unmask)",
        )
    return None


def _copied_bytes(state: MaskingState, access: Access, w: Written) -> int | None:
    """The bytes the columns an UPDATE copies may give a row: each one's longest stored value, read now (decision
    0413: a gigabyte value built by bounded writes, copied by ``substr(s.big, 1, K)``, is not bounded by the text).
    ``None`` when one is masked for the identity (its longest value would be the answer) or cannot be read."""
    total = 0
    for key, table, column in w.copies:
        n = None if access.masks(key, column) else state.gov.driver.longest_value(state.gov, table, column)
        if n is None:
            return None
        total += n
    return total


def unsettled_uses(state: MaskingState, analysis: Analysis) -> set[str]:
    """Tables whose labels may no longer say what their columns hold, used by the statement in a way no result scan
    can check: provisional tables (sampled nearly empty, or a column with almost no values) and tables whose catalog
    read failed, whose provisional columns — or whole rows — the statement uses other than by returning them;
    watched tables (settled, read whole by the sample: decision 0268), whose clear text columns it uses so, or
    returns computed (``reverse(info)``: no scan finds an SSN in it) or as whole rows."""
    found: set[str] = set()
    lineages = _lineages(state, analysis)  # reads the tables it names first
    tables = state.tables
    if not any(info.provisional or info.watch is not None for info in tables.values()):
        return found  # the usual case: nothing provisional anywhere, nothing to walk
    for lineage in lineages:
        for _clause, origin in lineage.uses:
            _unsettled(tables, origin, found)
            if origin.lost:
                # lineage lost inside the use: it may be any column of the tables read
                found.update(t for t in lineage.tables if (info := tables.get(t)) is not None and info.watch)
        for output in lineage.outputs or ():
            origin = output.origin
            if output.name != "*" and (origin.kind != "column" or origin.rows):
                _unsettled(tables, origin, found, watched_only=True)
    return found


def _scan_masks(state: MaskingState) -> Callable[[Any], bool]:
    """Does the value scan (the one values of scanned columns pass through) mask any part of a value?"""
    scan = detect_masker(state)

    def masks(value: Any) -> bool:
        out = scan(value)
        return out is not value and out != value

    return masks


def scanned_uses(state: MaskingState, analysis: Analysis) -> dict[str, set[str]]:
    """The scanned few-valued columns (decision 0295) not yet probed that the statement uses other than by
    returning them as stored — filters, joins, orders, copies, computed results — by table (decision 0329)."""
    found: dict[str, set[str]] = {}
    tables = state.tables
    if not any(info.scanned is not None for info in tables.values()):
        return found  # the usual case
    for lineage in _lineages(state, analysis):
        origins = [origin for _clause, origin in lineage.uses]
        origins += [o.origin for o in lineage.outputs or () if o.name != "*" and o.origin.kind != "column"]
        for origin in origins:
            for table, column in origin.sources:
                info = tables.get(table)
                if info is None or info.scanned is None:
                    continue
                if column in info.scanned and column not in info.scanned_probed:
                    found.setdefault(table, set()).add(column)
            if origin.lost:  # it may be any column of the tables read
                for table in lineage.tables:
                    info = tables.get(table)
                    if info is not None and info.scanned is not None:
                        found.setdefault(table, set()).update(set(info.scanned) - info.scanned_probed)
    return found


def _unsettled(tables: Mapping[str, Any], origin: Origin, found: set[str], watched_only: bool = False) -> None:
    """Add the tables of ``origin`` that are to be checked before it is used (see :func:`_unsettled_uses`)."""
    for table, column in origin.sources:
        info = tables.get(table)
        if info is None:
            continue
        if info.watch is not None and column in info.watch:
            found.add(table)
        elif info.provisional and not watched_only:
            cls = info.classes.get(column)
            if cls is None or cls.provisional:
                found.add(table)
    for table in origin.rows:
        info = tables.get(table)
        if info is not None and (info.watch is not None or (info.provisional and not watched_only)):
            found.add(table)


#: session statements after which a table name may mean another table: PostgreSQL's DISCARD TEMP/ALL drops the
#: temporary tables that shadowed stored ones, RESET (search_path) changes where names are looked up
_RENAMING = ("DISCARD", "RESET")


def renames(stmt: Any) -> bool:
    """A statement after which a table's name may stand for other columns (DDL, USE, DISCARD TEMP...)."""
    return stmt.kind == "ddl" or "use-database" in stmt.flags or str(stmt.operation).startswith(_RENAMING)


def _order(use: tuple[str, object]) -> int:
    """Which use makes the clearest message: a named clause (WHERE, JOIN, INTERSECT...), then a copy, then a
    use found inside an expression (a comparison, a cast...)."""
    clause = use[0]
    if clause in _INNER_CLAUSES:
        return 2
    if clause.startswith((flow.GROWN_USE, flow.ADDED_USE)):
        return 3  # refused only under a lowered length limit: any other reason is the clearer one (decision 0421)
    if clause[:1].isupper():
        return 0
    return 1 if clause == "copy" or clause.startswith("a cursor") or is_constraint_use(clause) else 2


def _lineages(state: MaskingState, analysis: Analysis) -> list[Lineage]:
    """The statement's lineage; for a text of several statements (allowed where ``multiple-statements`` only
    warns), one per statement, so none of them escapes the check."""
    facts = state.facts_for(analysis)
    if facts.lineage is not None:
        return [facts.lineage]
    return [
        state.trace(s.expression)
        for s in analysis.statements
        if s.expression is not None
    ]


def _uses_hit(state: MaskingState, analysis: Analysis, access: Access, identity: Identity) -> RuleHit | None:
    hit = (
        _encoding_hit(state, analysis, identity)
        or _names_apart_by_case_hit(state, analysis, identity)
        or _resource_counter_hit(state, analysis, identity)
        or _duckdb_variable_hit(state, analysis, identity)
        or _row_count_hit(state, analysis, access, identity)
        or _statement_text_hit(state, analysis, identity)
        or _toast_hit(state, analysis, identity)
        or _shadowing_hit(state, analysis, identity)
        or _server_shadowing_hit(state, analysis, identity)
        or _trigger_hit(state, analysis, access, identity)
        or _code_hit(state, analysis, access, identity)
    )
    if hit is not None:
        return hit
    for lineage in _lineages(state, analysis):
        lineage = _with_placement(state, analysis, lineage)
        hit = _lineage_hit(state, analysis, access, identity, lineage) or _view_hit(
            state, analysis, access, identity, lineage
        )
        if hit is not None:
            return hit
    return order_refusal(state, analysis, access, identity)



def _relation_names(tree: exp.Expression, dialect: str) -> set[str]:
    """The names a statement gives its FROM items (aliases, CTE names, unaliased tables), spelled as the server
    reads them: as written on MySQL/MariaDB, whose aliases and table names are case-sensitive under
    ``lower_case_table_names = 0``; on PostgreSQL as written when quoted, folded to lower case otherwise."""
    found = [a.this for a in tree.find_all(exp.TableAlias)]
    found += [t.this for t in tree.find_all(exp.Table) if not t.alias]
    names = set()
    for ident in found:
        if isinstance(ident, exp.Identifier):
            quoted = bool(ident.args.get("quoted"))
            names.add(ident.name if dialect != "postgres" or quoted else ident.name.lower())
    return names


def _names_apart_by_case_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """``FROM q AS t JOIN customers AS T ... WHERE T.ssn LIKE '5%'``: MariaDB (``lower_case_table_names = 0``) and
    PostgreSQL (quoted names) read ``t`` and ``T`` as two tables, while lineage compares names in lower case and
    took ``T.ssn`` for ``q``'s column — a filter on the SSN ran and ``reverse(T.ssn)`` came back in clear. A
    statement naming two FROM items apart only by case, beside a table with columns masked for the identity, is
    refused (decision 0417)."""
    if state.sg_dialect not in ("mysql", "postgres"):
        return None  # SQLite and DuckDB read every name case-insensitively, as lineage does
    clashes: set[str] = set()
    tables: list[exp.Table] = []
    for stmt in analysis.statements:
        if stmt.expression is None:
            continue
        names = _relation_names(stmt.expression, state.sg_dialect)
        lowered: dict[str, set[str]] = {}
        for name in names:
            lowered.setdefault(name.lower(), set()).add(name)
        clashes |= {n for spellings in lowered.values() if len(spellings) > 1 for n in spellings}
        tables += list(stmt.expression.find_all(exp.Table))
    if not clashes:
        return None
    masked = _masked_tables(state, identity, tables)
    if masked is None:
        return None
    spelled = ", ".join(sorted(clashes))
    return _hit(
        state,
        analysis,
        identity,
        PREDICATE_RULE,
        f"the statement names relations apart only by case ({spelled}) beside masked columns of "
        f"{', '.join(masked) or 'its tables'}: the server reads them as different tables, and masking could not "
        "tell which one a qualified column reads",
        "give the tables and subqueries aliases that differ by more than case (c, q), or ask for an unmask grant "
        "(masking.unmask)",
    )


def _with_placement(state: MaskingState, analysis: Analysis, lineage: Lineage) -> Lineage:
    """``lineage`` with the uses PostgreSQL's ``tableoid`` of a table partitioned by a masked column makes where
    the statement names it (decision 0384). Named in a Unicode-escaped identifier (``U&"t\\0061bleoid"``) too."""
    if state.sg_dialect != "postgres" or not lineage.tables:
        return lineage
    text = analysis.sql.lower()
    if "tableoid" not in text and "u&" not in text:
        return lineage
    extra = state.placement_uses(lineage)
    return replace(lineage, uses=[*lineage.uses, *extra]) if extra else lineage


def _code_hit(state: MaskingState, analysis: Analysis, access: Access, identity: Identity) -> RuleHit | None:
    """The application's functions the statement calls, and those the views it reads (and their row-level security
    policies) call, judged before its lineage: a view's column computed by one is classified by values the
    function computed (decisions 0391, 0397)."""
    if access.everything:
        return None
    trees = [s.expression for s in analysis.statements if isinstance(s.expression, exp.Expression)]
    for tree in trees:
        hit = _functions_hit(state, analysis, access, identity, tree)
        if hit is not None:
            return hit
    pending = [table_key(".".join(p.name for p in t.parts)) for tree in trees for t in tree.find_all(exp.Table)]
    seen: set[str] = set()
    while pending and len(seen) < 16:
        key = pending.pop()
        info = state.tables.get(key)
        if key in seen or info is None:
            continue
        seen.add(key)
        for query, what in ((info.view, f"the definition of view {key}"),
                            (info.policy, f"the row-level security policies of table {key}")):  # fmt: skip
            if not isinstance(query, str):
                continue
            calls, tables = _definition_reach(query, state.sg_dialect)
            parsed = parse_one(query, state.sg_dialect) if calls else None
            hit = _functions_hit(state, analysis, access, identity, parsed) if isinstance(parsed, exp.Expression) else None
            if hit is not None:
                return replace(hit, reason=f"in {what}: {hit.reason}")
            pending += tables
    return None


@functools.lru_cache(maxsize=512)
def _definition_reach(definition: str, dialect: str) -> tuple[bool, tuple[str, ...]]:
    """Whether a view's definition (or a policy's query) calls a function masking does not know, and the relations
    it reads; unparsable: neither (the view judgement refuses it, 0382). Kept per text: every statement asks."""
    try:
        tree = parse_one(definition, dialect)
    except Exception:
        return False, ()
    if not isinstance(tree, exp.Expression):
        return False, ()
    return bool(app_functions.called(tree)), tuple(table_key(".".join(p.name for p in t.parts))
                                                   for t in tree.find_all(exp.Table))  # fmt: skip


def _functions_hit(
    state: MaskingState, analysis: Analysis, access: Access, identity: Identity, tree: exp.Expression
) -> RuleHit | None:
    """A function of the application's that ``tree`` calls reads, in its body, a relation with columns masked for
    the identity (or what it reads cannot be told): it computes on their raw values, for rows the caller picks,
    and its answer decides rows (``WHERE is_vip(id)``) or comes back (decision 0393)."""
    names = app_functions.called(tree)
    if not names or access.everything:
        return None
    found = app_functions.masked_reads(state, access, names, lambda name: _unlisted_tables(state, tree, name))
    if found is None:
        return None
    name, masked = found
    what = f"reads {', '.join(masked)} (in its body or a function it calls), whose columns are masked" if masked else (
        "cannot be read (or builds statements at run time), so whether it reads masked columns is unknown"
    )
    return _hit(
        state, analysis, identity, PREDICATE_RULE,
        f"{app_functions.describe(name)} {what}: it would compute on their stored values for the rows "
        "the statement picks",
        "read the tables themselves, or have the function called by an identity with an unmask grant "
        "(masking.unmask)",
    )  # fmt: skip


def _view_hit(
    state: MaskingState, analysis: Analysis, access: Access, identity: Identity, lineage: Lineage,
    depth: int = 0, seen: frozenset[str] = frozenset(),
) -> RuleHit | None:  # fmt: skip
    """A view the statement reads is judged as the query it is defined by, less the result columns that only
    compute a value (masked whole where read): its WHERE, joins, grouping, order and windows may not use a masked
    value (decision 0374 on SQLite; 0382 on PostgreSQL, its materialized views too, MySQL/MariaDB and DuckDB, the
    definition read from their catalogs and parsed in the connection's dialect)."""
    if depth >= view_rows.VIEW_DEPTH:
        # views nested deeper than masking follows: refused, not read as tables (a fifth view over one filtering on
        # the SSN told copies apart)
        deeper = [
            k for k in sorted(lineage.tables)
            if k not in seen and getattr(state.tables.get(k), "view", None) and _view_masked_beneath(state, access, k)
        ]  # fmt: skip
        if not deeper or access.everything:
            return None
        return _hit(
            state, analysis, identity, PREDICATE_RULE,
            f"view {deeper[0]} lies more than {view_rows.VIEW_DEPTH} views deep, further than masking follows a "
            "view's definition, so whether a masked value decides its rows is unknown",
            "read a view nearer its tables (or the tables themselves), or ask for an unmask grant (masking.unmask)",
        )  # fmt: skip
    if depth == 0 and state.dialect == "sqlite":
        hit = _view_write_hit(state, analysis, access, identity, lineage)
        if hit is not None:
            return hit
    for key, definition, what in _definitions(state, lineage, analysis, own=depth == 0):
        if key in seen:
            continue
        reduced: exp.Expression | None = None
        query: exp.Expression | None = None
        try:
            parsed = parse_one(definition, state.sg_dialect)
            if not isinstance(parsed, exp.Expression):
                raise TypeError("not a query")
            query = parsed
            placed = _placed_in(state, query, definition)
            if placed is not None:
                hit = _lineage_hit(state, analysis, access, identity, placed)
                if hit is not None:
                    return replace(hit, reason=f"in {what}: {hit.reason}")
            reduced = view_rows.row_deciding(query)
            inner: Lineage | None = state.trace(reduced)
        except Exception:
            inner = None
        if query is not None:
            # the application's functions it calls, wherever (a column computing one is not left out: 0393)
            hit = _functions_hit(state, analysis, access, identity, query)
            if hit is not None:
                return replace(hit, reason=f"in the definition of view {key}: {hit.reason}")
        if inner is None and reduced is not None and view_rows.decides_nothing(reduced):
            continue  # its columns are redacted whole (0262), and nothing else in it reads a value
        if inner is None and reduced is not None and not _masked_beneath(state, access, reduced, key):
            continue  # untraceable, but over tables with no column masked for the identity
        if inner is None and not access.everything:
            return _hit(
                state, analysis, identity, PREDICATE_RULE,
                f"{what} could not be read or followed, so whether a masked value decides "
                "its rows is unknown",
                "read the tables it is defined over, let the connection's user read the view's definition "
                "(MySQL/MariaDB: the SHOW VIEW privilege), or ask for an unmask grant (masking.unmask)",
            )  # fmt: skip
        if inner is None:
            continue
        hit = _lineage_hit(state, analysis, access, identity, inner) or _view_hit(
            state, analysis, access, identity, inner, depth + 1, seen | {key}
        )
        if hit is not None:
            return replace(hit, reason=f"in {what}: {hit.reason}")
    return None


def _placed_in(state: MaskingState, query: exp.Expression, definition: str) -> Lineage | None:
    """A PostgreSQL view whose definition names ``tableoid`` (its columns included, which the judgement of its rows
    leaves out): the placement uses of the tables it reads (decision 0384); ``None`` where there are none.
    ``SELECT tableoid::regclass AS part, id FROM t`` named each row's partition in a clear column."""
    if state.sg_dialect != "postgres" or ("tableoid" not in definition.lower() and "u&" not in definition.lower()):
        return None
    full = state.trace(query)
    uses = state.placement_uses(full)
    return replace(full, uses=uses) if uses else None


def _definitions(
    state: MaskingState, lineage: Lineage, analysis: Analysis, own: bool = False
) -> Iterator[tuple[str, str, str]]:
    """``(table, query, what it is)`` for each relation ``lineage`` reads whose rows a query decides: a view's
    definition (0374, 0382, and a PostgreSQL partition's bound, 0384), an inheritance child's own CHECK constraints
    (0399), and the row-level security policies PostgreSQL applies to the connection's user on a table (0385;
    those a plain SELECT applies where the statement is one, 0400), all judged as the WHERE they are. With
    ``own`` (``lineage`` is the statement's), a partition or child an INSERT gives only the caller's own values
    (``INSERT INTO t_lo VALUES (...)``) is not judged by its bound: that compares nothing stored (0400)."""
    for key in sorted(lineage.tables):
        info = state.tables.get(key)
        if info is None:
            continue
        bound = info.held is not None and own and key in _own_values_inserted(analysis)
        if info.view is not None and not (bound and info.view == info.held):
            yield key, info.view, f"the definition of view {key}"
        if info.held is not None and info.held != info.view and not bound:
            yield key, info.held, f"the CHECK constraints that keep table {key}'s rows apart from its family's"
        if info.policy is not None:
            policy = info.read_policy if _plain_read(analysis, lineage) else info.policy
            if policy is not None and own and key in _own_values_inserted(analysis) and _row_only(policy, state):
                # an INSERT of the caller's own VALUES meets the policies' checks on the new row alone: they
                # compare the caller's values, nothing stored (decision 0426); a check that reads other rows (a
                # subquery) is judged as a WHERE, and a function it calls is judged as the application's
                policy = None
            if policy is not None:
                yield key, policy, f"the row-level security policies of table {key}"


def _row_only(policy: str, state: MaskingState) -> bool:
    """Does the policy query (``SELECT * FROM t WHERE <checks>``) test the row alone: no subquery, no table?"""
    try:
        tree = parse_one(policy, state.sg_dialect)
    except Exception:  # unreadable: judged as it is
        return False
    where = tree.args.get("where") if isinstance(tree, exp.Select) else None
    return isinstance(where, exp.Where) and where.find(exp.Select, exp.Subquery, exp.Table) is None


def _plain_read(analysis: Analysis, lineage: Lineage) -> bool:
    """Does the statement only read, without locking rows (``FOR UPDATE`` applies a table's UPDATE policies)?"""
    return not lineage.writes and all(
        s.expression is not None and not s.expression.find(exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Lock)
        for s in analysis.statements
    )


def _own_values_inserted(analysis: Analysis) -> frozenset[str]:
    """The tables the statement (one INSERT) inserts a ``VALUES`` list of the caller's own into: no subquery, no
    ``WITH``, no ``ON CONFLICT`` (which compares with the rows stored)."""
    if len(analysis.statements) != 1:
        return frozenset()
    tree = analysis.statements[0].expression
    if not isinstance(tree, exp.Insert) or tree.args.get("conflict") or tree.args.get("with"):
        return frozenset()
    values, target = tree.expression, tree.this
    if not isinstance(values, exp.Values) or values.find(exp.Select, exp.Subquery, exp.Table):
        return frozenset()
    table = target.this if isinstance(target, exp.Schema) else target
    if not isinstance(table, exp.Table) or not table.name:
        return frozenset()
    return frozenset({table_key(".".join(p.name for p in table.parts))})


def _view_masked_beneath(state: MaskingState, access: Access, key: str, budget: int = 16) -> bool:
    """Does the view ``key``, followed through the views it reads (``budget`` of them at most), read a table with a
    column masked for the identity, or one whose catalog or definition is unread? (A chain of views too deep to
    judge over clear tables only runs.)"""
    info = state.table(key)
    if info.view is None:
        return info.columns is None or bool(access.hidden_fields(key)) or access.blind(key)
    if budget <= 0:
        return True
    try:
        query = parse_one(info.view, state.sg_dialect)
    except Exception:
        return True
    if not isinstance(query, exp.Expression):
        return True
    ctes = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        if len(table.parts) == 1 and table.name.lower() in ctes:
            continue
        inner = table_key(".".join(p.name for p in table.parts))
        if not table.name or inner == key or _view_masked_beneath(state, access, inner, budget - 1):
            return True
    return False


def _masked_beneath(state: MaskingState, access: Access, query: exp.Expression, view: str) -> bool:
    """Does a view's ``query`` (one masking cannot trace) read a view, a table with a column masked for the
    identity, or a table whose catalog is unread? (decision 0382)"""
    ctes = {c.alias_or_name.lower() for c in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        if len(table.parts) == 1 and table.name.lower() in ctes:
            continue
        key = table_key(".".join(p.name for p in table.parts))
        if not table.name or key == view:
            return True
        info = state.table(key)
        if info.columns is None or info.view is not None or access.hidden_fields(key) or access.blind(key):
            return True
    return False


def _view_write_hit(
    state: MaskingState, analysis: Analysis, access: Access, identity: Identity, lineage: Lineage
) -> RuleHit | None:
    """SQLite: a write to a view runs the application's ``INSTEAD OF`` trigger on the raw rows of the tables the
    view reads (its ``WHERE ... AND ssn LIKE '5%'`` changes a row or not): refused when the view reads a column
    masked for the identity (decision 0375)."""
    for w in lineage.writes:
        info = state.tables.get(w.table)
        if info is None or info.view is None:
            continue
        try:
            query = parse_one(info.view, state.sg_dialect)
            read = [table_key(".".join(p.name for p in t.parts)) for t in query.find_all(exp.Table)]
        except Exception:
            read = []
        masked = sorted(f"{t}.{c}" for t in read for c in state.table(t).columns or () if access.masks(t, c))
        if masked or not read:
            return _hit(
                state, analysis, identity, CONSTRAINT_RULE,
                f"masked column(s) {', '.join(masked) or 'of the tables it reads'} take part in the write to view "
                f"{w.table}: its INSTEAD OF trigger runs on their stored values, so whether and what it changes "
                "could depend on them",
                "write the table itself (its own constraints are judged), or run the statement as an identity with "
                "an unmask grant for the column (masking.unmask), such as the application's service identity",
            )  # fmt: skip
    return None


def _encoding_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """PostgreSQL: a client encoding that lacks characters makes every result an error oracle (decision 0210);
    MySQL/MariaDB: a result character set other than UTF-8 does, as the driver decodes the values (0246), and
    READ UNCOMMITTED lets the classification see other sessions' uncommitted rows (0275); DuckDB: a memory limit
    set by the agent can make governed_db's own catalog reads fail (0325)."""
    from governed_db.sql import _lexing

    if state.dialect in ("mysql", "mariadb"):
        return _setting_hit(
            state, analysis, identity, _lexing.mysql_result_charset_changes,
            "the result character set",
            "the server converts every result value to it and the driver decodes them as UTF-8, failing on (and "
            "saying where) a byte that is not, so whether a later read of a masked column fails would tell what its "
            "value holds (an accented name, a replaced digit of an SSN)",
            "keep the connection's character set utf8mb4 (choose another with the driver's connect(charset=...)), "
            "or ask for an unmask grant (masking.unmask)",
        ) or _setting_hit(
            # ``SET TRANSACTION ...`` (the next transaction only) leaves no trace in the session's variables, so it
            # is judged here; a session that starts at READ UNCOMMITTED is caught when a table is sampled
            state, analysis, identity, lambda stmt: _lexing.dirty_read_changes(stmt, analysis.sql),
            "the isolation level",
            "at READ UNCOMMITTED this session reads other sessions' uncommitted rows, so what masking learns of a "
            "table here may be rows that are rolled back later, and the values they replaced would pass as innocent",
            "use READ COMMITTED (it takes no more locks), or ask for an unmask grant (masking.unmask)",
        )
    if state.dialect == "duckdb":
        return _setting_hit(
            state, analysis, identity, _lexing.duckdb_memory_limit_changes, "the memory limit",
            "below what governed_db's own reads of a table's catalog and sample need, those reads fail while short "
            "statements still run, and a table nobody could classify has its values only scanned as they pass (an "
            "SSN the scan does not recognise would leave in clear)",
            "set the memory limit in the connection's config before governed_db.wrap(), or ask for an unmask "
            "grant (masking.unmask)",
        )
    if state.dialect not in ("postgres", "postgresql"):
        return None
    return _setting_hit(
        state, analysis, identity, _lexing.lossy_encoding_changes, "the client encoding",
        "the server converts every result value to it and fails on a character it lacks, so whether a later read "
        "of any masked column fails would tell what its value holds (a Cyrillic name, a replaced digit of an SSN)",
        "keep the connection's client encoding UTF8 (decode on the client if you need another), or ask for an "
        "unmask grant (masking.unmask)",
        functions=("set_config",),
    )


def _setting_hit(
    state: MaskingState,
    analysis: Analysis,
    identity: Identity,
    changes_of: Callable[[Any], list[str]],
    what: str,
    why: str,
    remedy: str,
    functions: tuple[str, ...] = (),
) -> RuleHit | None:
    """A statement that sets ``what`` of the session in a way ``changes_of`` names (the settings it changes):
    refused with ``why``. Only statements that set something (or call one of ``functions``) are looked at."""
    for stmt in analysis.statements:
        if not stmt.settings and not any(f in stmt.functions for f in functions):
            continue
        changes = changes_of(stmt)
        if changes:
            return _hit(state, analysis, identity, PREDICATE_RULE,
                        f"{stmt.operation} sets {what} ({', '.join(changes)}): {why}", remedy)
    return None


#: PostgreSQL views and functions whose counters grow with the size of what a statement computed (temporary
#: bytes a sort spilled, memory a context holds, blocks a statement touched) or wrote: the position in the
#: write-ahead log, which an UPDATE of a row moves by as many bytes as the row's new version holds — all of it
#: (its masked name too) where the first and last columns change, and, where only some change, less the prefix
#: it shares with the old version byte by byte (``SET full_name = 'Alxxx xxxxx'`` logs 8 bytes fewer than
#: ``'Xxxxx xxxxx'`` over ``Alice Smith``: a guess's matching characters, decision 0415)
RESOURCE_VIEWS = frozenset(
    {"pg_stat_database", "pg_stat_io", "pg_stat_statements", "pg_stat_statements_info", "pg_backend_memory_contexts",
     "pg_stat_wal", "pg_stat_replication", "pg_replication_slots", "pg_stat_wal_receiver"}
)  # fmt: skip
RESOURCE_FUNCTIONS = frozenset(
    {"pg_stat_get_db_temp_bytes", "pg_stat_get_db_temp_files", "pg_stat_get_db_blocks_fetched",
     "pg_stat_get_db_blocks_hit", "pg_stat_get_io", "pg_stat_get_wal", "pg_stat_statements",
     "pg_get_backend_memory_contexts", "pg_ls_tmpdir",
     "pg_current_wal_lsn", "pg_current_wal_insert_lsn", "pg_current_wal_flush_lsn", "pg_last_wal_receive_lsn",
     "pg_last_wal_replay_lsn", "pg_control_checkpoint", "pg_get_replication_slots", "pg_stat_get_wal_senders",
     "pg_stat_get_wal_receiver", "pg_logical_emit_message"}
)  # fmt: skip
#: the functions behind ``pg_stat_database`` (refused whole): each of its counters by another name
#: (``pg_stat_get_db_tuples_returned`` counts the index entries scans read, dead ones too, decision 0320)
RESOURCE_FUNCTION_PREFIX = "pg_stat_get_db_"
#: PostgreSQL functions that measure where rows are stored: the pages a table fills, the versions an update
#: could keep on their page, the page and slot of a row's newest version (``currtid2('t', '(0,1)')``, its
#: ``ctid`` without naming it). How many row versions fit on a page depends on how wide they are, so after a few
#: dozen ``UPDATE t SET amount = amount WHERE id = 1`` these tell a longer masked name from a shorter one
#: (decision 0244)
STORAGE_FUNCTIONS = frozenset(
    {"pg_relation_size", "pg_total_relation_size", "pg_table_size", "pg_indexes_size", "pg_database_size",
     "pg_tablespace_size", "pg_stat_get_tuples_hot_updated", "pg_stat_get_xact_tuples_hot_updated",
     "pg_stat_get_tuples_newpage_updated", "pg_stat_get_xact_tuples_newpage_updated",
     "pg_stat_get_blocks_fetched", "pg_stat_get_blocks_hit", "pg_stat_get_xact_blocks_fetched",
     "pg_stat_get_xact_blocks_hit", "currtid2", "currtid", "currtid_byrelname", "currtid_byreloid",
     "pg_lock_status",
     # of an index: the entries its scans read, dead ones included. An UPDATE whose new version did not fit on
     # its page adds an entry (one that fits is a HOT update and adds none), so a later read by the key counts
     # 2 or 1: where the rows are stored, as n_tup_hot_upd tells it (decision 0320)
     "pg_stat_get_tuples_returned", "pg_stat_get_xact_tuples_returned"}
)  # fmt: skip
#: PostgreSQL catalogs and statistics views with such measures, and the columns that hold them (the other
#: columns, ``relname``, ``n_live_tup``, ``seq_scan``..., count rows and statements, whatever their values)
STORAGE_VIEWS = frozenset(
    {"pg_class", "pg_stat_all_tables", "pg_stat_user_tables", "pg_stat_sys_tables", "pg_stat_xact_all_tables",
     "pg_stat_xact_user_tables", "pg_stat_xact_sys_tables", "pg_statio_all_tables", "pg_statio_user_tables",
     "pg_statio_sys_tables", "pg_statio_all_indexes", "pg_statio_user_indexes", "pg_statio_sys_indexes",
     "pg_locks", "pg_stat_all_indexes", "pg_stat_user_indexes", "pg_stat_sys_indexes"}
)  # fmt: skip
STORAGE_COLUMNS = frozenset(
    {"relpages", "relallvisible", "n_tup_hot_upd", "n_tup_newpage_upd", "heap_blks_read", "heap_blks_hit",
     "idx_blks_read", "idx_blks_hit", "toast_blks_read", "toast_blks_hit", "tidx_blks_read", "tidx_blks_hit",
     "idx_tup_read",  # index entries read, dead ones included (see pg_stat_get_tuples_returned)
     # ``pg_locks``: the page and slot of a row a session waits to lock (another session of the caller's holds
     # it with ``FOR UPDATE``): its ``ctid`` (decision 0272)
     "page", "tuple"}
)  # fmt: skip


#: PostgreSQL functions and catalog columns that count a relation's rows (live, dead, inserted, read by its scans):
#: readable, but of a partition, an inheritance child, a materialized view or a partial index whose bound, CHECK,
#: query or predicate reads a masked column they count the rows whose value meets it (``reltuples`` of ``CREATE
#: INDEX ... WHERE full_name < 'N'`` said 10 or 9: decision 0399)
ROW_COUNT_FUNCTIONS = frozenset(
    {"pg_stat_get_live_tuples", "pg_stat_get_dead_tuples", "pg_stat_get_tuples_inserted",
     "pg_stat_get_tuples_updated", "pg_stat_get_tuples_deleted", "pg_stat_get_tuples_fetched",
     "pg_stat_get_xact_tuples_inserted", "pg_stat_get_xact_tuples_updated", "pg_stat_get_xact_tuples_deleted",
     "pg_stat_get_xact_tuples_fetched", "pg_stat_get_mod_since_analyze", "pg_stat_get_ins_since_vacuum"}
)  # fmt: skip
ROW_COUNT_COLUMNS = frozenset(
    {"reltuples", "n_live_tup", "n_dead_tup", "n_tup_ins", "n_tup_upd", "n_tup_del", "n_mod_since_analyze",
     "n_ins_since_vacuum", "seq_tup_read", "idx_tup_fetch"}
)  # fmt: skip


def _storage_measures(
    stmt: Any, functions: frozenset[str] = STORAGE_FUNCTIONS, columns: frozenset[str] = STORAGE_COLUMNS
) -> list[str]:
    """What ``stmt`` reads that measures where rows are stored: a storage function, or a storage column of a
    catalog that has them — named, or through ``*`` or the whole row (``to_jsonb(c)``), which carry it too
    (``functions`` and ``columns``: another kind of measure of those catalogs, :data:`ROW_COUNT_FUNCTIONS`)."""
    found = sorted(f"{f}()" for f in stmt.functions if f.lower().rsplit(".", 1)[-1] in functions)
    views = [t for t in stmt.tables_read if t.lower().rsplit(".", 1)[-1] in STORAGE_VIEWS]
    tree = stmt.expression
    if not views or tree is None:
        return found
    names = {t.lower().rsplit(".", 1)[-1] for t in views}
    for table in tree.find_all(exp.Table):
        if table.name.lower() in STORAGE_VIEWS and table.alias:
            names.add(table.alias.lower())
    for node in tree.find_all(exp.Column, exp.Star):
        if isinstance(node, exp.Star) and isinstance(node.parent, exp.Count):
            continue  # ``count(*)`` counts rows, whatever they hold
        if isinstance(node, exp.Star) or isinstance(node.this, exp.Star):
            return [*found, f"* of {', '.join(views)}"]
        name = node.name.lower()
        if name in columns or (name in names and not node.table):
            found.append(f"{', '.join(views)}.{name}")
    return found


def _row_count_hit(state: MaskingState, analysis: Analysis, access: Access, identity: Identity) -> RuleHit | None:
    """PostgreSQL: a statement reads row counts of the catalog (``pg_class.reltuples``, ``n_live_tup``...) where
    the database holds a relation whose rows a column masked for the identity picks: a partial index's predicate,
    a partition's bound, an inheritance child's CHECK (decision 0399). Their counts count the masked values that
    meet it, as ``SELECT count(*) FROM t WHERE full_name < 'N'`` would."""
    if state.sg_dialect != "postgres" or access.everything:
        return None
    counted = [
        m for stmt in analysis.statements for m in _storage_measures(stmt, ROW_COUNT_FUNCTIONS, ROW_COUNT_COLUMNS)
    ]
    if not counted:
        return None
    toast = [s for s in analysis.statements if reaches_toast(s.expression, analysis.sql, ROW_COUNT_FUNCTIONS)]
    if toast:
        return _hit(
            state, analysis, identity, PREDICATE_RULE,
            f"the statement reads {', '.join(dict.fromkeys(counted))}, which count rows, and may count those of a "
            "TOAST relation, whose rows are the chunks of long values stored out of line: its count would tell how "
            "long a masked value is as stored (decision 0416)",
            "read row counts of the application's tables from pg_stat_user_tables, or name the relation "
            "(WHERE oid = 't'::regclass, relname = 't', schemaname = 'public'; pg_stat_get_live_tuples('t'::regclass)); "
            "or ask for an unmask grant (masking.unmask)",
        )  # fmt: skip
    picked = _rows_picked_by_masked(state, access, _names_counted(analysis))
    if not picked:
        return None
    return _hit(
        state, analysis, identity, PREDICATE_RULE,
        f"the statement reads {', '.join(dict.fromkeys(counted))}, which count rows, and the rows of {picked} are "
        "picked by the value of a masked column: its count would tell how many masked values meet the condition",
        "count rows with SELECT count(*) over the tables themselves, read statistics through an identity that sees "
        "no masked columns (a monitoring service identity), or ask for an unmask grant (masking.unmask)",
    )  # fmt: skip


def _names_counted(analysis: Analysis) -> frozenset[str] | None:
    """The relation names every statement's counts are bounded to by literal (``WHERE relname = 'orders'``, see
    :mod:`masking.named_counts`); ``None`` where one statement reads counts of any relation."""
    names: set[str] = set()
    for stmt in analysis.statements:
        if any(f.lower().rsplit(".", 1)[-1] in ROW_COUNT_FUNCTIONS for f in stmt.functions):
            return None  # ``pg_stat_get_live_tuples(oid)`` counts any relation
        found = named_relations(stmt.expression)
        if found is None:
            return None
        names |= found
    return frozenset(names)


def _picked_relation(table: str, what: str) -> str | None:
    """The name of the relation whose rows a picker picks (``None``: not known)."""
    for prefix, suffix in (("partial index ", " of"), ("partition ", " of"), ("materialized view ", " over")):
        if what.startswith(prefix) and what.endswith(f"{suffix} {table}"):
            return bare_name(what[len(prefix) : -len(f"{suffix} {table}")])
    if what == f"inheritance child {table}":
        return bare_name(table)
    return None


def _rows_picked_by_masked(state: MaskingState, access: Access, named: frozenset[str] | None = None) -> str | None:
    """The first relation (as ``what of table``) whose rows a column masked for the identity picks, or a reason to
    assume one (the catalog unread, too many tables to judge); ``None`` where there is none. ``named``: the only
    relation names whose counts are read (a picked relation of another name counts nothing read, decision 0431)."""
    found = state.row_pickers()
    if found is None:
        return "a relation the catalog could not be read for"
    if len({t for t, _w, _c in found}) > _PICKER_TABLES:
        return f"one of {len(found)} relations (more than masking judges one by one)"
    for table, what, columns in found:
        if named is not None and (relation := _picked_relation(table, what)) is not None and relation not in named:
            continue
        key = table_key(table)
        info = state.table(key)
        masked = sorted(c for c in info.columns or () if {c.lower(), "*"} & columns and access.masks(key, c))
        if masked or info.columns is None:
            return f"{what} (by {', '.join(f'{key}.{c}' for c in masked) or 'columns unread'})"
    return None


#: how many tables with partial indexes, partitions or inheritance children masking judges before assuming one is
#: picked by a masked column
_PICKER_TABLES = 32


#: PostgreSQL functions that return other sessions' statement texts (``pg_stat_activity.query`` is masked by its
#: class; these carry no column to mask)
STATEMENT_TEXT_FUNCTIONS = frozenset({"pg_stat_get_activity", "pg_stat_get_backend_activity"})


def _statement_text_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """PostgreSQL: other sessions' statements hold the literals they were sent with (an application's ``WHERE
    full_name = 'Alice Smith'``), masked values a scan does not recognise (decision 0230)."""
    if state.dialect not in ("postgres", "postgresql"):
        return None
    for stmt in analysis.statements:
        read = sorted(f"{f}()" for f in stmt.functions if f.lower().rsplit(".", 1)[-1] in STATEMENT_TEXT_FUNCTIONS)
        if read:
            return _hit(
                state,
                analysis,
                identity,
                PREDICATE_RULE,
                f"{stmt.operation} calls {', '.join(read)}, which return other sessions' statements with the "
                "values they were sent with",
                "read pg_stat_activity (its query column comes back masked), or ask for an unmask grant "
                "(masking.unmask)",
            )
    return None


def _created_function(stmt: Any) -> str | None:
    """The name a ``CREATE [TEMP] MACRO``/``FUNCTION`` statement defines (``None`` for any other statement)."""
    tree = getattr(stmt, "expression", None)
    if not isinstance(tree, exp.Create) or str(tree.args.get("kind") or "").upper() not in ("MACRO", "FUNCTION"):
        return None
    target = tree.this
    while isinstance(target, (exp.UserDefinedFunction, exp.Table, exp.Dot)):
        target = target.this
    return target.name if isinstance(target, exp.Expression) and target.name else "?"


def _shadowing_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """DuckDB: a temporary macro takes precedence over the function of the same name, built-in ones included
    (``CREATE TEMP MACRO lower(x) AS error(x)``): analysis would read ``lower(full_name)`` as the function it
    knows while the caller's code runs on the value (its error quoting it whole), and DuckDB's own catalog views
    (which masking reads) would call it too. A macro may not take a name DuckDB or masking already knows
    (decision 0248), as a sqlite3 ``create_function`` may not (decision 0170)."""
    if state.dialect not in ("duckdb", "sqlite", "mysql", "mariadb"):
        return None
    for stmt in analysis.statements:
        hit = _shadowing_relation(state, analysis, identity, stmt)
        if hit is not None:
            return hit
        name = _created_function(stmt) if state.dialect == "duckdb" else None
        if name is None:
            continue
        short = name.rsplit(".", 1)[-1]
        known = known_function_name(short, "duckdb") or schema.builtin_function(
            state.gov.driver.catalog_connection(state.gov), state.dialect, short
        ) is not False  # unreadable: fail closed
        if known:
            return _hit(
                state,
                analysis,
                identity,
                PREDICATE_RULE,
                f"{stmt.operation} {short} would replace a function DuckDB or masking already knows, so a call "
                "analysis reads as that function would run the macro on masked values before masking",
                "give the macro a name of its own (what it is given from a masked column is refused as a copy)",
            )
    return None


#: PostgreSQL statements that give a function, procedure or aggregate a name: ``CREATE [OR REPLACE] FUNCTION name``,
#: ``ALTER FUNCTION name(...) RENAME TO new`` / ``SET SCHEMA s`` (the name it is called by, or where it is found)
_PG_ROUTINE = re.compile(
    r"\b(?:CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE|AGGREGATE)|ALTER\s+(?:FUNCTION|PROCEDURE|AGGREGATE|ROUTINE))"
    r"\s+(?P<name>(?:(?:U&)?\"[^\"]+\"|[\w$]+)(?:\s*\.\s*(?:(?:U&)?\"[^\"]+\"|[\w$]+))*)"
    r"(?:.*?\bRENAME\s+TO\s+(?P<renamed>(?:U&)?\"[^\"]+\"|[\w$]+))?",
    re.IGNORECASE | re.DOTALL,
)
_PG_OPERATOR = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?OPERATOR\s+(?!CLASS\b|FAMILY\b)", re.IGNORECASE)


def _server_shadowing_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """PostgreSQL calls a function of the caller's own where analysis reads a function it knows: one qualified
    by its schema (``public.md5(full_name)``), and, since a function whose argument types match exactly wins over
    pg_catalog's that needs a conversion, an unqualified one too (``public.upper(varchar)`` runs for
    ``upper(full_name)`` over a ``varchar`` column). Its body saw the raw value (``INSERT INTO mine VALUES (x)``)
    while the result came back masked. A function, procedure or aggregate may not be given (by CREATE, or by
    ALTER ... RENAME TO / SET SCHEMA) a name masking knows, and an operator may not be defined at all (``||``
    over ``varchar`` would shadow the built-in one the same way); a call qualified by a schema other than
    pg_catalog is a function of unknown behaviour (decision 0365)."""
    if state.dialect not in ("postgres", "postgresql"):
        return None
    for stmt in analysis.statements:
        operation = str(stmt.operation).upper()
        if not operation.startswith(("CREATE", "ALTER")):
            continue
        text = stmt.expression.sql(dialect="postgres") if stmt.expression is not None else analysis.sql
        # as written too, and with PostgreSQL's escapes decoded (``U&"\\0075pper"`` names ``upper``)
        texts = list(dict.fromkeys([*stored_code.spellings(text), *stored_code.spellings(analysis.sql)]))
        # searched, not matched at the start: a comment may come first (a word in a body only refuses more)
        if operation == "CREATE OPERATOR" and _PG_OPERATOR.search(text):
            return _hit(
                state,
                analysis,
                identity,
                PREDICATE_RULE,
                "CREATE OPERATOR defines an operator PostgreSQL may pick over its own for the types it names "
                "(``||`` over varchar), running the caller's function on masked values where analysis reads the "
                "built-in operator",
                "have the operator created through a reviewed migration, or ask for an unmask grant (masking.unmask)",
            )
        names: list[str] = []
        for variant in texts:
            for found in _PG_ROUTINE.finditer(variant):
                names += [found.group("name").split(".")[-1], found.group("renamed") or ""]
        known = [n.strip().removeprefix("U&").removeprefix("u&").strip('"') for n in names]
        shadowing = [n for n in known if n and known_function_name(n, "postgres")]
        if shadowing:
            return _hit(
                state,
                analysis,
                identity,
                PREDICATE_RULE,
                f"{stmt.operation} gives a function the name {shadowing[0]}, which masking reads as a function it "
                "knows: PostgreSQL would run the caller's code on masked values (a call qualified by its schema, "
                "or one whose argument types match it exactly) while analysis lets them through as that function",
                "give the function a name of its own (what it is given from a masked column is refused as a copy)",
            )
    return None


def _trigger_hit(state: MaskingState, analysis: Analysis, access: Access, identity: Identity) -> RuleHit | None:
    """A trigger runs later on raw rows: ``NEW.ssn`` copied into a table of the caller's own came back in clear
    (``100-99-0000``, which no scan recognises), and its ``WHEN``, ``RAISE()`` or writes decided by a masked value.
    One that names a table with columns masked for the identity is refused; unreadable names fail closed
    (decision 0311). On PostgreSQL and MySQL/MariaDB every statement that creates stored code (trigger, function,
    procedure, rule, event) is judged so, and a body that builds its statements at run time names tables nobody
    can tell (decision 0319)."""
    server = state.dialect not in ("sqlite", "duckdb")
    defines = stored_code.defines_stored_code if server else stored_code.defines_trigger
    conn = None
    for stmt in analysis.statements:
        # a PostgreSQL ``DO`` block is code run at once, as unseen by masking as a function's body (decision 0365)
        anonymous = state.dialect in ("postgres", "postgresql") and str(stmt.operation).upper() == "DO"
        if not (defines(stmt) or anonymous):
            continue
        # the whole text: sqlglot's command for a trigger ends at the first ``;`` of its body
        names = stored_code.named_relations(analysis.sql, state.dialect)
        masked: list[str] = []
        unknown = names is None or (server and stored_code.runs_built_statements(analysis.sql))
        for name in names or ():
            if name in state.stored_code_names:
                found = state.stored_code_names.pop(name)  # read with await for an async connection
            else:
                if conn is None:
                    conn = state.gov.driver.catalog_connection(state.gov)
                found = schema.same_named_relations(conn, state.dialect, name.rpartition(".")[2])
            if found is None:
                unknown = True  # the catalog could not be read here (an async connection's): fail closed
                break
            if not found:
                continue
            # an async connection's classes were read with await before judging began (DDL forgets them)
            classes = state.stored_code_classes.pop(name, MISSING)
            hidden = access.hidden_fields(name) if classes is MISSING else access.hidden_of(name, classes)
            if hidden is None and not access.blind(name):
                unknown = True  # a table or view masking cannot classify: fail closed
            elif hidden or access.blind(name):
                masked.append(name)
        if masked or unknown:
            what = (
                f"names {', '.join(masked)}, whose" if masked
                else "names tables masking could not look up (or builds statements at run time), whose"
            )
            return _hit(
                state,
                analysis,
                identity,
                COPY_RULE,
                f"{stmt.operation} {what} masked columns the stored code would read before masking whenever it "
                "runs (copying them, or deciding by them)",
                "have the stored code created through a reviewed migration, or leave tables with masked columns "
                "(and statements built at run time) out of it",
            )
    return None


def _unlisted_tables(state: MaskingState, tree: exp.Expression, name: str) -> set[str] | None:
    """DuckDB: the tables (lower case) the calls of ``name`` in ``tree`` read, as ``get_table_names`` on the wrapped
    connection itself says with the calls' arguments NULL (it binds macros, temporary ones included, without
    running anything; masking's catalog cursor is another connection, which does not list a temporary macro of
    this one, decision 0391); ``None`` when one cannot be resolved so, or ``tree`` holds no call of it."""
    get = getattr(state.gov.raw, "get_table_names", None)
    calls = [c for c in tree.find_all(exp.Anonymous) if c.name.lower() == name]
    if get is None or not calls:
        return None
    tables: set[str] = set()
    for call in calls:
        probe = call.copy()
        probe.set("expressions", [exp.Null() for _ in call.expressions])
        text = probe.sql(dialect="duckdb")
        try:
            tables.update(str(t).lower() for t in get(
                f"SELECT * FROM {text}" if isinstance(call.parent, exp.Table) else f"SELECT {text}"
            ))  # fmt: skip
        except Exception:
            return None
    return tables


def created_relation(stmt: Any, dialect: str = "") -> tuple[str, bool] | None:
    """The name a CREATE TABLE/VIEW statement gives, and whether it is temporary (``None`` for anything else). On
    MySQL/MariaDB a SEQUENCE too: it is a table there, and a temporary one hides a stored table of its name."""
    tree = getattr(stmt, "expression", None)
    kinds = ("TABLE", "VIEW", "SEQUENCE") if dialect in ("mysql", "mariadb") else ("TABLE", "VIEW")
    if not isinstance(tree, exp.Create) or str(tree.args.get("kind") or "").upper() not in kinds:
        return None
    target = tree.this
    while isinstance(target, exp.Schema):
        target = target.this
    if not isinstance(target, exp.Table) or not target.name:
        return None
    return target.name, "temporary" in getattr(stmt, "flags", ()) or target.db.lower() in ("temp", "temporary")


#: SQLite's eponymous virtual tables other than the pragma_* ones: table-valued functions a table may hide
_EPONYMOUS = frozenset({"json_each", "json_tree", "generate_series", "dbstat", "sqlite_dbpage", "sqlite_stmt", "carray"})


def _eponymous(name: str) -> bool:
    """Whether ``name`` is one of SQLite's table-valued functions (every pragma that returns rows is one, as
    ``pragma_<name>``)."""
    low = name.lower()
    return low.startswith("pragma_") or low in _EPONYMOUS


def _shadowing_relation(state: MaskingState, analysis: Analysis, identity: Identity, stmt: Any) -> RuleHit | None:
    """SQLite, DuckDB: a temporary table or view hides the stored one of its name for unqualified names, and the
    other way round (``CREATE TEMP TABLE t (id, full_name)`` over a stored ``t`` holding an ``ssn``). Masking
    reads a table's columns by its name, so it would judge ``main.t.ssn`` by the temporary table's columns (where
    there is no ``ssn``: not masked, a predicate let through). A table or view may not be created beside one of the
    same name on the other side of the temporary/stored line (decision 0248). MySQL/MariaDB likewise (decision
    0386): masking's sample of ``t`` read the (empty) temporary table, so a column of SSNs masked by its values
    looked innocent, while a view over ``t``, which the server resolves to the stored table, was filtered on them;
    its catalog lists no temporary table, so any stored one of the name (in any schema) refuses it."""
    created = created_relation(stmt, state.dialect)
    if created is None:
        return None
    name, temporary = created
    if state.dialect == "sqlite" and _eponymous(name):
        # a table named pragma_table_info hides the table-valued function of that name for unqualified calls, so
        # masking's own catalog reads (pragma_table_info('u'), ...) failed, and a table without a column list
        # was not judged by its columns: WHERE info LIKE '5%' ran on a column of SSNs (decision 0265)
        return _hit(
            state,
            analysis,
            identity,
            PREDICATE_RULE,
            f"{stmt.operation} {name} would hide SQLite's table-valued function of the same name, which masking "
            "reads the catalog with",
            "give the table or view a name of its own",
        )
    if name.lower() in state.created_names:
        found = state.created_names.pop(name.lower())  # read with await for an async connection
    else:
        found = schema.same_named_relations(state.gov.driver.catalog_connection(state.gov), state.dialect, name)
    if state.dialect in ("mysql", "mariadb") and not temporary and name.lower() in state.temporary_names:
        found = None  # MySQL lists no temporary table: this connection's own, made earlier, is hidden by it
    if found is not None and all(t == temporary for t in found):
        if temporary:
            state.temporary_names.add(name.lower())
        return None  # nothing of that name, or only on the same side (it fails, is replaced, or is kept)
    side = "stored" if temporary else "temporary"
    return _hit(
        state,
        analysis,
        identity,
        PREDICATE_RULE,
        f"{stmt.operation} {name} would hide (or be hidden by) the {side} table or view of the same name, "
        "and masking reads a table's columns by its name: it could judge one by the other's columns",
        "give the table or view a name of its own",
    )


def _temporary_names(state: MaskingState, analysis: Analysis) -> list[str]:
    """The names of temporary tables or views this connection made that ``analysis`` names (any schema)."""
    if not state.temporary_names:
        return []
    names = (t.lower().rsplit(".", 1)[-1].strip('"`[]') for s in analysis.statements for t in s.tables)
    return sorted({n for n in names if n in state.temporary_names})


def temporary_names_named(state: Any, text: str, dialect: str) -> list[str]:
    """:func:`_temporary_names` of a statement text (the async drivers read the catalog for them first)."""
    if not getattr(state, "temporary_names", None):
        return []
    from governed_db.sql.shapes import analysis_for

    try:
        return _temporary_names(state, analysis_for(text, dialect))
    except Exception:
        return []


def _temporary_clash(
    state: MaskingState, analysis: Analysis, identity: Identity, names: list[str]
) -> RuleHit | None:
    """SQLite, DuckDB: a temporary table this connection made, and a stored one of the same name another
    connection made *afterwards* (a migration's new table, say). The check when the temporary one was created
    (decision 0248) saw no stored one; now the two hide each other as then, and masking's per-name catalog reads
    (columns, keys, order facts) answer from the temporary one: ``main.u.ssn`` was judged by the temporary ``u``'s
    columns, where there is no ``ssn``, and ``WHERE main.u.ssn < '5'`` ran. A statement naming such a table is
    refused while both exist, read at every execution (decision 0258)."""
    conn = None
    for name in names:
        if name in state.created_names:
            found = state.created_names.pop(name)  # read with await for an async connection
        else:
            if name in state.stored_code_names:
                found = state.stored_code_names.pop(name)  # read with await for an async connection
            else:
                if conn is None:
                    conn = state.gov.driver.catalog_connection(state.gov)
                found = schema.same_named_relations(conn, state.dialect, name.rpartition(".")[2])
        if state.dialect in ("mysql", "mariadb"):
            if found == []:
                continue  # MySQL lists stored tables only: none of that name
        elif found is not None and (all(found) or not any(found)):
            continue  # only the temporary one (or it was dropped): as before
        return _hit(
            state,
            analysis,
            identity,
            PREDICATE_RULE,
            f"{name} is both a temporary table or view of this connection and a stored one made since, and "
            "masking reads a table's columns by its name: it could judge one by the other's columns",
            "read the stored table from a new connection (temporary tables end with theirs), and give "
            "temporary tables names of their own",
        )
    return None


#: a PostgreSQL TOAST relation (or its index): ``pg_toast.pg_toast_74661``, a temporary table's in ``pg_toast_temp_3``
_TOAST = re.compile(r"^(?:pg_toast(?:_temp_\d+)?\.)?pg_toast_\d+(?:_index)?$")


def _toast_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """PostgreSQL keeps a row's long values (over about 2 kB: a note, a document, an address) out of line, as chunks
    of their stored bytes in the table's TOAST relation, which its owner may read: ``SELECT chunk_data FROM
    pg_toast.pg_toast_74661`` returned a masked name in clear, and could be filtered. Nothing says which column a
    chunk belongs to, so a read of one is refused to identities that see masked columns (decision 0272)."""
    if state.dialect not in ("postgres", "postgresql"):
        return None
    for stmt in analysis.statements:
        read = [t for t in stmt.tables_read if _TOAST.match(t.lower().replace('"', ""))]
        if read:
            return _hit(
                state,
                analysis,
                identity,
                PREDICATE_RULE,
                f"{stmt.operation} reads {', '.join(read)}, which holds the stored bytes of another table's long "
                "values, where masking does not follow",
                "read the table itself (its columns come back masked), or ask for an unmask grant (masking.unmask)",
            )
    return None


#: ``CLUSTER [VERBOSE] t USING ix`` and ``ALTER TABLE t CLUSTER ON ix`` (which a later ``CLUSTER t`` follows)
_CLUSTER = re.compile(
    r"^\s*(?:CLUSTER(?:\s+VERBOSE)?\s+(?P<t1>[^\s;]+)\s+USING\s+(?P<i1>[^\s;]+)"
    r"|ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(?P<t2>[^\s;]+)\s+CLUSTER\s+ON\s+(?P<i2>[^\s;]+))",
    re.I,
)


def _cluster_hit(state: MaskingState, analysis: Analysis, access: Access, identity: Identity) -> RuleHit | None:
    """PostgreSQL's CLUSTER rewrites a table with its rows stored in the order of an index: over an index on a
    masked column (``t_ssn_key``), every order that follows storage (the rows a multi-row UPDATE locks first, a
    read no ORDER BY could be added to) is then the order of the masked values. A use of the index's masked
    columns, as ``ORDER BY ssn`` is (decision 0320); an index the catalog does not list counts as every masked
    column of the table."""
    if state.dialect not in ("postgres", "postgresql"):
        return None
    found = _CLUSTER.match(analysis.sql)
    if found is None:
        return None
    table, index = found.group("t1") or found.group("t2"), found.group("i1") or found.group("i2")
    key = table_key(table.replace('"', ""))
    columns, constraints = state.constraints_of(key)
    masked = frozenset(c.lower() for c in columns or () if access.masks(key, c))
    name = index.replace('"', "").rsplit(".", 1)[-1].lower()
    held = next((c.columns for c in constraints or () if c.kind == "index" and c.name.lower() == name), None)
    deciding = sorted(masked if held is None else held & masked)
    if not deciding:
        return None
    return _hit(
        state,
        analysis,
        identity,
        PREDICATE_RULE,
        f"CLUSTER would store the rows of {key} in the order of the index {index}, which holds masked column(s) "
        f"{', '.join(f'{key}.{c}' for c in deciding)}: every order that follows storage would be theirs",
        "cluster on an index of columns nobody masked (the primary key), or ask for an unmask grant "
        "(masking.unmask)",
    )


def _resource_function(name: str) -> bool:
    """A PostgreSQL function of :data:`RESOURCE_FUNCTIONS` or of ``pg_stat_database``'s family."""
    low = name.lower().rsplit(".", 1)[-1]
    return low in RESOURCE_FUNCTIONS or low.startswith(RESOURCE_FUNCTION_PREFIX)


def _resource_counter_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """PostgreSQL: reading a counter of resources statements used (``pg_stat_database.temp_bytes``) after one
    that sorted a masked value it never returned (a MATERIALIZED CTE of ``replace(substr(ssn, 1, 1), '5',
    <200 x>)`` over many rows spills 9 MB for a 5, 1 MB otherwise) tells what the value held (decision 0213).
    DuckDB: its memory and storage measures (decision 0390); SQLite: the pages a database fills (decision 0388)."""
    if state.dialect == "duckdb":
        return _duckdb_measure_hit(state, analysis, identity)
    if state.dialect == "sqlite":
        return _sqlite_pages_hit(state, analysis, identity)
    if state.dialect not in ("postgres", "postgresql"):
        return None
    for stmt in analysis.statements:
        read = [t for t in stmt.tables_read if t.lower().rsplit(".", 1)[-1] in RESOURCE_VIEWS]
        read += sorted(f"{f}()" for f in stmt.functions if _resource_function(f))
        stored = _storage_measures(stmt)
        if stored and not read:
            return _hit(
                state,
                analysis,
                identity,
                PREDICATE_RULE,
                f"{stmt.operation} reads {', '.join(dict.fromkeys(stored))}, which measure or locate the pages "
                "rows are stored on; how many row versions fit on a page depends on how long their values are, so after "
                "updates they would tell the length of a masked value",
                "read sizes and storage statistics through an identity that sees no masked columns (a "
                "monitoring service identity), or ask for an unmask grant (masking.unmask); row counts "
                "(n_live_tup, reltuples) stay readable where no masked column picks a relation's rows",
            )
        if read:
            return _hit(
                state,
                analysis,
                identity,
                PREDICATE_RULE,
                f"{stmt.operation} reads {', '.join(read)}, whose counters (temporary bytes, memory, blocks, the "
                "write-ahead log's position) grow with the size of values earlier statements computed or wrote, "
                "so they would tell what a masked value held",
                "read server statistics through an identity that sees no masked columns (a monitoring service "
                "identity), or ask for an unmask grant (masking.unmask)",
            )
    return None


#: DuckDB table functions that measure the memory and storage the database holds: the bytes a table's values
#: fill, the nodes an ART index over a masked column needed (a key sharing a longer prefix with others needs a
#: wider node: 1.5 MiB of index with ``219-45-1006`` among ``219-45-100x``, 1.25 MiB with ``219-45-1726``), the
#: blocks the file holds once the values are compressed, the bytes a sort spilled (decision 0390)
DUCKDB_MEASURES = frozenset({"duckdb_memory", "pragma_database_size", "duckdb_temporary_files"})


def _duckdb_measures(stmt: Any) -> list[str]:
    """The measures of :data:`DUCKDB_MEASURES` ``stmt`` reads: called as table functions (``FROM
    duckdb_memory()``, ``system.main.duckdb_memory()``) or as pragmas (``PRAGMA database_size``, with or without
    parentheses)."""
    called = {f.lower().rsplit(".", 1)[-1] for f in stmt.functions}
    if stmt.operation == "PRAGMA":
        called |= {f"pragma_{name}" for name in called}
        called |= {f"pragma_{name.lower()}" for name, kind, _ in stmt.settings if kind == "pragma"}
    return sorted(f"{f}()" for f in called & DUCKDB_MEASURES)


def _duckdb_measure_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """DuckDB: ``duckdb_memory()`` and ``pragma_database_size()`` count the bytes and blocks the tables and their
    indexes fill. They grow with the length of the values stored (a name thousands of characters long adds a
    block of overflow strings) and, through an index on a masked column, with what the values hold (how many
    children each node of the ART has): read by an identity with masked columns, they told two databases that
    differ only in a masked SSN apart (decision 0390)."""
    for stmt in analysis.statements:
        read = _duckdb_measures(stmt)
        if read:
            return _hit(
                state,
                analysis,
                identity,
                PREDICATE_RULE,
                f"{stmt.operation} reads {', '.join(read)}, whose byte and block counts grow with the length of the "
                "values tables hold and, through an index on a masked column, with what those values hold",
                "read memory and storage measures through an identity that sees no masked columns (a monitoring "
                "service identity), or ask for an unmask grant (masking.unmask); row counts "
                "(duckdb_tables().estimated_size) stay readable",
            )
    return None


def _duckdb_variable_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """DuckDB: ``getvariable('x')`` returns a value the session holds, which the application may have set before
    wrap() (``SET VARIABLE cur = '536-22-8726'``): a value of unknown origin, masked only by scanning, and a
    predicate on it runs. The same state as ``duckdb_variables()`` (decision 0420); refused to an identity with
    masked columns, the agent's own variables included (which variable the application set is not known)."""
    if state.dialect != "duckdb":
        return None
    for stmt in analysis.statements:
        if any(f.lower().rsplit(".", 1)[-1] == "getvariable" for f in stmt.functions):
            return _hit(
                state,
                analysis,
                identity,
                PREDICATE_RULE,
                "getvariable() reads a variable of the session, which the application may have set before handing "
                "the connection over (to a value that masking would hide), as duckdb_variables() does",
                "write the value into the statement (or bind it as a parameter) instead of reading it back from a "
                "variable, or ask for an unmask grant (masking.unmask)",
            )
    return None


#: SQLite's measures of the pages a database fills or a write wrote (``PRAGMA page_count``, ``pragma_freelist_count()``,
#: the frames ``PRAGMA wal_checkpoint`` reports)
_SQLITE_PAGES = re.compile(r"page_count|freelist_count|wal_checkpoint", re.IGNORECASE)


def _sqlite_pages_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """SQLite: how many pages the database fills (``PRAGMA page_count``, ``freelist_count``, their ``pragma_*()``
    functions), and how many a write wrote (the WAL frames ``PRAGMA wal_checkpoint`` reports), depend on how long
    the stored values are. After an allowed ``UPDATE customers SET city =
    printf('%.*c', 3748, 'x') WHERE id = 1`` the row's page splits or not by the length of the masked values beside
    the city: 4 pages with ALICE's name, 2 with ANNA's (decision 0388, as dbstat and 0244's relation sizes)."""
    if _SQLITE_PAGES.search(analysis.sql) is None:
        return None
    named = any(
        s.operation == "PRAGMA"
        or any(n.lower().rsplit(".", 1)[-1].startswith("pragma_") for n in (*s.functions, *s.tables_read))
        for s in analysis.statements
    )
    if not named:
        return None
    return _hit(
        state,
        analysis,
        identity,
        PREDICATE_RULE,
        "the statement reads how many pages the database fills or a write wrote (page_count, freelist_count, "
        "wal_checkpoint): whether a row's page "
        "splits depends on how long the values stored beside it are, so after an update it would tell the length "
        "of a masked value",
        "read database sizes through an identity that sees no masked columns (a monitoring service identity), or "
        "ask for an unmask grant (masking.unmask)",
    )


def warning_count_hit(state: MaskingState, analysis: Analysis, identity: Identity) -> RuleHit | None:
    """After a MySQL/MariaDB statement failed part-way through rows read in an order an index on a masked column
    may decide, a read of how many warnings it left (``@@warning_count``, ``@@error_count``, ``SHOW COUNT(*)
    WARNINGS``, the rows ``SHOW WARNINGS`` lists): the rows read before the failing one warned, so the count says
    how far it read in that order (decision 0344)."""
    from governed_db.masking import warnings_order

    if Access(state, identity).everything or not warnings_order.reads_count(state, analysis.sql, analysis.tables):
        return None
    return _hit(
        state,
        analysis,
        identity,
        PREDICATE_RULE,
        "the statement before it failed part-way through rows read in an order an index on a masked column may "
        "decide, and how many warnings it left (SHOW WARNINGS, @@warning_count, @@error_count) would tell how far "
        "it read, so how masked values sort",
        "run a statement that reads a table first (the server then clears the list), check the failing "
        "expressions on a table without masked columns, or ask for an unmask grant (masking.unmask)",
    )


def order_refusal(state: MaskingState, analysis: Analysis, access: Access, identity: Identity) -> RuleHit | None:
    """The order of rows an index on a masked column could decide, where no key can fix it (decision 0160)."""
    found = order_guard.outcome(state, analysis, identity, access)
    if found.refusal is None:
        return None
    reason, remedy = found.refusal
    # no index names the columns when the stored order follows masked values' widths (decision 0303)
    who = f"masked column(s) {', '.join(found.columns)}" if found.columns else "masked values"
    return _hit(state, analysis, identity, PREDICATE_RULE, f"{who} would decide the order of rows: {reason}", remedy)


def _lineage_hit(
    state: MaskingState, analysis: Analysis, access: Access, identity: Identity, lineage: Lineage
) -> RuleHit | None:
    tables = list(lineage.tables)
    keyed = {id(use): (table, cols) for use, table, cols in lineage.keyed} if lineage.keyed else None
    limit: list[int | None] = []
    for use in sorted(lineage.uses, key=_order):
        clause, origin = use
        if keyed is not None and id(use) in keyed and _beside_its_key(state, access, *keyed[id(use)]):
            continue  # grouped beside a key of its own row: decides no group (their order is fixed by a key)
        added = clause.startswith(flow.ADDED_USE)
        if added or clause.startswith(flow.GROWN_USE):
            if not limit:
                limit.append(state.gov.driver.length_limit(state.gov))
            if limit[0] is not None and limit[0] >= (flow.ADDED_LIMIT if added else DEFAULT_LIMIT):
                # under SQLite's default limit (1e9 bytes) no stored value comes near it; a few bytes more tell
                # apart only values within them of a limit of 64 KiB or more (decision 0421)
                continue
            if access.is_masked(origin, tables, lineage.blind):
                hidden = sorted(f"{t}.{c}" for t, c in origin.sources if access.hidden(t, c) is not None)
                cols = ", ".join(hidden or sorted(f"{t}.{c}" for t, c in origin.sources)) or "a masked column"
                hit = _hit(
                    state,
                    analysis,
                    identity,
                    PREDICATE_RULE,
                    f"masked column(s) {cols} are used in {clause}: SQLite returns no value longer than its length "
                    f"limit (SQLITE_LIMIT_LENGTH, {limit[0] if limit[0] is not None else 'unreadable'}), so whether "
                    "the result came back would tell how long the masked value is",
                    "select the column plainly (it comes back masked); its result would be masked whole anyway. "
                    "Or ask for an unmask grant (masking.unmask)",
                )
                if hit is not None:
                    return hit
            continue
        if not access.is_masked(origin, tables, lineage.blind):
            hit = _free_text_hit(state, analysis, access, identity, clause, origin, lineage)
            if hit is not None:
                return hit
            continue
        # name the sources that are masked (a WHERE mixing ``id`` and ``ssn`` names ``ssn``); all of them when
        # none is masked on its own (lost lineage, a whole row)
        hidden = [f"{t}.{c}" for t, c in origin.sources if access.hidden(t, c) is not None]
        cols = ", ".join(sorted(hidden or (f"{t}.{c}" for t, c in origin.sources))) or ", ".join(sorted(origin.rows))
        cols = cols or (origin.hint or "a masked column")
        blind = sorted(
            {t for t, _c in origin.sources if access.blind(t)} | {t for t in origin.rows if access.blind(t)}
            | ({t for t in tables if access.blind(t)} if origin.lost else set())
        )
        if blind and clause != "copy" and not is_constraint_use(clause) and not clause.startswith(
            ("a cursor", "a prepared statement")
        ):
            hit = _hit(
                state,
                analysis,
                identity,
                PREDICATE_RULE,
                f"the columns of {', '.join(blind)} could not be read from the catalog (the read failed), so "
                f"whether {cols} hold masked values is unknown; such a column may not be used in {clause} until "
                "they are read",
                "run the statement again (the catalog is read again first); if it keeps failing, check what "
                "interrupts the connection's catalog reads (a progress handler or deadline, a lock, a failed "
                "transaction to roll back)",
            )
            if hit is not None:
                return hit
            continue
        if clause == "copy":
            hit = _hit(
                state,
                analysis,
                identity,
                COPY_RULE,
                f"the statement copies masked column(s) {cols} into another place, where masking would not follow",
                "copy the data through a reviewed migration, or ask for an unmask grant (masking.unmask)",
            )
        elif is_constraint_use(clause):
            hit = _hit(
                state,
                analysis,
                identity,
                CONSTRAINT_RULE,
                f"masked column(s) {cols} take part in {clause}: whether the statement fails, skips a row or "
                "how many rows it changes would depend on their stored values (a chosen value tested against them)",
                # a trigger reads them whatever columns the statement names (decisions 0375, 0386)
                ("run the write as an identity with an unmask grant for the column (masking.unmask), such as the "
                 "application's service identity: the trigger reads it whichever columns the statement names")
                if clause.startswith("the trigger") else
                "leave the column out of the statement (other columns of the row can still be written), or run "
                "it as an identity with an unmask grant for the column (masking.unmask), such as the "
                "application's service identity",
            )  # fmt: skip
        elif clause.startswith("a cursor"):
            hit = _hit(
                state,
                analysis,
                identity,
                COPY_RULE,
                f"the statement keeps masked column(s) {cols} in {clause}",
                "use the driver's server-side cursor (conn.cursor(name=...)), whose rows are masked, or ask "
                "for an unmask grant (masking.unmask)",
            )
        elif clause.startswith("a prepared statement"):
            hit = _hit(
                state,
                analysis,
                identity,
                COPY_RULE,
                f"the statement returns {clause} (they may hold masked values)" if clause == EXECUTE_USE
                else f"the statement keeps masked column(s) {cols} in {clause}",
                "run the query itself (the driver prepares it, and its rows come back masked), or ask for an "
                "unmask grant (masking.unmask)",
            )
        else:
            grouped = clause in ("GROUP BY", "DISTINCT")
            hit = _hit(
                state,
                analysis,
                identity,
                PREDICATE_RULE,
                f"masked column(s) {cols} are used in {clause}; a masked value may only be selected as itself, "
                "since one that decides which rows, how many, their order or an error reveals it",
                "select the column plainly (it comes back masked) and filter, join, sort or group on "
                "non-sensitive columns (an id)"
                + (
                    " — a masked column may be grouped beside its own table's primary key or UNIQUE NOT NULL "
                    "key (GROUP BY c.id, c.full_name)"
                    if grouped
                    else ""
                )
                + ", or ask for an unmask grant (masking.unmask) for your role",
            )
        if hit is not None:
            return hit  # the first use the policy does not allow; an allowed rule lets the next be checked
    return None


def _beside_its_key(state: MaskingState, access: Access, table: str, columns: frozenset[str]) -> bool:
    """Whether ``columns`` (of one reference to ``table``, grouped or made DISTINCT together) hold a whole key of the
    table that is never NULL and has no column masked for the identity: the rows of a group then share one row of
    the table, so the other columns of that row are the same in all of them and split no group (decision 0283).
    The order of the groups is then fixed by the order guard (a hash or sort over a masked value would decide it
    otherwise)."""
    facts = state.order_of(table)
    if facts is None or facts.kind != "table" or facts.inherited or not state.spelled_once(table):
        return False
    for key in facts.keys:
        cols = [c.lower() for c in key]
        if cols and all(c in columns for c in cols) and not any(_masked_key(access, table, c) for c in cols):
            return True
    return False


def _masked_key(access: Access, table: str, column: str) -> bool:
    """Whether a key column is masked for the identity: a predicate on it would be refused (a free text whose sample
    held nothing sensitive, ``code VARCHAR UNIQUE``, is not; decision 0297)."""
    cls = access.hidden(table, column)
    return cls is not None and (cls is UNREADABLE or access.masks(table, column))


#: clauses in which a free-text column may be searched (by a literal that cannot match inside its items);
#: in any other (ORDER BY, GROUP BY, DISTINCT, PARTITION BY, INTERSECT...) the whole value decides
_SEARCH_CLAUSES = frozenset({"WHERE", "JOIN", "HAVING", "QUALIFY", "FILTER", "CASE", "a comparison"})


def _free_text_hit(
    state: MaskingState,
    analysis: Analysis,
    access: Access,
    identity: Identity,
    clause: str,
    origin: Origin,
    lineage: Lineage,
) -> RuleHit | None:
    """A searchable FREE_TEXT column whose sample held items (an SSN in a note) may only be searched by a
    literal that cannot match inside one (decision 0192). Nor may it be copied: a search of the copy (a table of the
    caller's own, sampled before the copy or too large for its sample to meet it) would find the items, and a cut of
    one (``SET city = substr(note, 15, 1)``) is no item a scan finds (decision 0407)."""
    if clause.startswith("a cursor") or (
        # a COPY sends or takes rows as they are: a rule of its own names what it would send (decision 0061)
        clause == "copy" and any(isinstance(st.expression, exp.Copy) for st in analysis.statements)
    ):
        return None
    for t, c in sorted(origin.sources):
        cls = access.hidden(t, c)
        if cls is None or cls is UNREADABLE or cls.label != "FREE_TEXT" or not cls.found or cls.provisional:
            continue
        if clause == "copy":
            return _hit(
                state,
                analysis,
                identity,
                COPY_RULE,
                f"the statement copies free-text column {t}.{c}, which holds masked items "
                f"({', '.join(sorted(cls.found))}), into another place, where a search or a cut of the copy would "
                "find them: masking would not follow them there",
                "copy the data through a reviewed migration, copy other columns, or ask for an unmask grant "
                "(masking.unmask) for your role",
            )
        if clause not in _SEARCH_CLAUSES:
            why: str | None = "its whole value (only a search by a literal may use it)"
        else:
            why = unsafe_search(lineage.refs, (s.expression for s in analysis.statements), (t, c), cls.found)
        if why is None:
            continue
        return _hit(
            state,
            analysis,
            identity,
            PREDICATE_RULE,
            f"free-text column {t}.{c} holds masked items ({', '.join(sorted(cls.found))}) and is used in "
            f"{clause} by {why}; such a use would find the masked items character by character",
            "search it for words (letters and spaces: no digits, '-', '_', '@' or '.') with LIKE/ILIKE/=/IN and "
            "a literal, filter on other columns, or ask for an unmask grant (masking.unmask) for your role",
        )
    return None


def _param_strings(params: Any, depth: int = 0) -> Iterator[str]:
    if depth == 0 and type(params) in (list, tuple) and all(type(row) in (list, tuple) for row in params):
        # executemany's rows of values (the common shape): the strings of each row, without a generator per
        # value; values nested deeper than a row's are not looked into, as below
        yield from (v for row in params for v in row if isinstance(v, str))
        return
    if params is None or depth > 2:
        return
    if isinstance(params, str):
        yield params
    elif isinstance(params, Mapping):
        for v in params.values():
            yield from _param_strings(v, depth + 1)
    elif isinstance(params, (list, tuple)):
        for v in params:
            yield from _param_strings(v, depth + 1)


def _reads_masked(state: MaskingState, statement: tuple[Analysis, Identity] | None) -> bool:
    """Whether the failing statement reads a column masked for its identity.

    Unknown (no statement given, or one that could not be traced) counts as yes: scrubbing a message that
    held nothing sensitive costs a little debugging, leaving a value in it is a leak. The statement is handed
    over by the one that failed (not remembered per thread: async tasks interleave on one thread).
    """
    if statement is None:
        return True
    analysis, identity = statement
    try:
        facts = state.facts_for(analysis)
        if facts.lineage is None:
            return bool(analysis.statements)
        access = Access(state, identity)
        if access.everything:
            return False
        tables = list(facts.lineage.tables)
        # a relation whose rows could not be sampled (a view that fails on its own values) may echo anything
        return access.reads_hidden(tables, facts.lineage.blind) or any(state.table(t).unsampled for t in tables)
    except Exception:
        return True


def scrub_error(
    state: MaskingState, exc: BaseException, statement: tuple[Analysis, Identity] | None = None
) -> None:
    """Replace echoed values in ``exc.args`` (and its notes) in place (``statement``: see _reads_masked)."""
    try:
        args = exc.args
    except AttributeError:
        return
    conversions = _reads_masked(state, statement)
    changed = False
    new_args = []
    for a in args:
        if isinstance(a, str):
            s = scrub_message(a, conversions=conversions)
            changed = changed or s != a
            new_args.append(s)
        else:
            new_args.append(a)
    if changed:
        with contextlib.suppress(AttributeError, TypeError):
            exc.args = tuple(new_args)
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        notes[:] = [scrub_message(n, conversions=conversions) if isinstance(n, str) else n for n in notes]
    _scrub_psycopg(exc, conversions)
    _scrub_psycopg2(exc, conversions)
    _scrub_asyncpg(exc, conversions)


def _scrub_psycopg(exc: BaseException, conversions: bool) -> None:
    """psycopg 3 keeps the server's fields (``exc.diag``) in ``_info``: replace them by scrubbed copies."""
    info = getattr(exc, "_info", None)
    if info is None or type(exc).__module__.split(".")[0] != "psycopg":
        return
    try:
        from psycopg.pq import DiagnosticField

        fields = (
            {f: info.error_field(f) for f in DiagnosticField} if hasattr(info, "error_field") else dict(info)
        )
        scrubbed = {
            k: scrub_message(v.decode("utf-8", "replace"), conversions=conversions).encode()
            if isinstance(v, bytes)
            else v
            for k, v in fields.items()
        }
        exc._info = scrubbed  # type: ignore[attr-defined]
    except Exception:
        return


#: the server's fields asyncpg keeps as attributes of its errors (``exc.detail``, ``exc.as_dict()``)
_ASYNCPG_FIELDS = (
    "message", "detail", "hint", "context", "internal_query", "schema_name", "table_name", "column_name",
    "data_type_name", "constraint_name",
)  # fmt: skip


def _scrub_asyncpg(exc: BaseException, conversions: bool) -> None:
    """asyncpg keeps each field of the server's error as an attribute (``detail``: ``Failing row contains (1,
    Alice Smith, ...)``), read by ``as_dict()`` too: each is replaced by its scrubbed copy."""
    if type(exc).__module__.split(".")[0] != "asyncpg":
        return
    for name in _ASYNCPG_FIELDS:
        value = getattr(exc, name, None)
        if isinstance(value, str):
            cleaned = scrub_message(value, conversions=conversions)
            if cleaned != value:
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(exc, name, cleaned)


def _scrub_psycopg2(exc: BaseException, conversions: bool) -> None:
    """psycopg2's ``pgerror`` is read-only but restorable through ``__setstate__``; its ``diag`` (read in C) is
    answered by a scrubbed copy of its fields (decision 0273)."""
    pgerror = getattr(exc, "pgerror", None)
    if not isinstance(pgerror, str) or type(exc).__module__.split(".")[0] != "psycopg2":
        return
    from governed_db.drivers._psycopg2_errors import DIAG_FIELDS, seal_error

    with contextlib.suppress(Exception):
        found = getattr(exc, "diag", None)
        fields = {name: getattr(found, name, None) for name in DIAG_FIELDS}
        seal_error(exc, {
            k: scrub_message(v, conversions=conversions) if isinstance(v, str) else v for k, v in fields.items()
        })  # fmt: skip
    cleaned = scrub_message(pgerror, conversions=conversions)
    if cleaned != pgerror:
        with contextlib.suppress(Exception):
            exc.__setstate__({"pgerror": cleaned, "pgcode": getattr(exc, "pgcode", None)})  # type: ignore[attr-defined,unused-ignore]
