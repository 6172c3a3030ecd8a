"""Writes judged by their effect: run in a savepoint, measured, then kept or rolled back.

For an identity whose policy bounds writes (by default: agents in
production), every statement the analyser cannot prove read-only runs in a
bracket the guard opens -- a savepoint inside the application's transaction,
or a transaction of its own when the connection is in autocommit -- and what
it changed decides before it is kept:

* it changed every row of a table that had more than one row: rolled back,
  refused ("would change 3 of 3 rows in orders"), or sent for approval when
  the policy's ``whole_table`` says so;
* it changed more rows than ``max_affected_rows``: rolled back and refused,
  or sent for approval (``over_limit: require_approval``). The request shows
  the measured effect, and the grant is bound to it: a re-run that changes
  more is refused again.

"Every row" is measured in O(rows changed), never by counting the table:
after an UPDATE that changed ``n`` rows, ``SELECT count(*) FROM (SELECT 1
FROM t LIMIT n+1)`` reads at most ``n+1`` rows and finds ``n`` only when no
row was left unchanged; after a DELETE, ``LIMIT 1`` finds nothing only when
the table is empty. Where the driver can (PostgreSQL), the bracket is opened
in the statement's own round trip and the probe raises on a violation in the
same text that keeps the write, so a guarded write costs one round trip more
than a raw one. A refusal rolls back only the savepoint: what the
application did earlier in its transaction survives.

Everything that goes wrong inside the bracket -- a savepoint that cannot be
made, a probe that fails, a rollback that fails, a connection lost -- refuses
the statement (fail closed), with the transaction either intact or clearly
aborted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from governed_db._cache import LRU, STATEMENT_CHARS, STATEMENTS
from governed_db.errors import GovernanceFault, GovernedDBError, GuardrailViolation, flavour
from governed_db.guards._steps import RUN, Query, Steps
from governed_db.policy.decision import Action, Decision, RuleHit
from governed_db.sql.analysis import sqlglot_dialect

if TYPE_CHECKING:
    from governed_db.pipeline import Statement
    from governed_db.sql.analysis import Analysis, StatementInfo

#: the rule id effect refusals and approval requests carry
RULE = "write-effect"
_CEILING = re.compile(r"^effect<=(\d+)$")
_REPLACE_TARGET = re.compile(r"^\s*REPLACE\s+(?:LOW_PRIORITY\s+|DELAYED\s+)?(?:INTO\s+)?([`\"\w.$]+)", re.I)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the guard needs from a statement's analysis (a pure function of it, so cached by its text)."""

    #: None: no data change (not guarded); otherwise why it cannot be measured ("" when it can)
    problem: str | None
    tables: tuple[str, ...] = ()
    mode: str = "mixed"
    #: ``tables`` are SQL as the statement wrote them (quoting kept), not analysis names
    rendered: bool = False
    returning: bool = False


_NOT_GUARDED = _Shape(None)
#: entry points that run a script with transaction control of their own
_SCRIPT_ENTRIES = frozenset({"cursor.executescript", "connection.executescript"})
_shapes: LRU[tuple[object, str], _Shape] = LRU("effect-shapes", STATEMENTS, STATEMENT_CHARS)


def shape_of(analysis: Analysis, dialect: str) -> _Shape:
    """The statement's shape for the guard, from a bounded cache keyed by (text or literal shape, dialect)."""
    key = (analysis.key, dialect)
    found: _Shape | None = _shapes.get(key)
    if found is None:
        found = _shape(analysis, dialect)
        _shapes.put(key, found, len(analysis.normalized) + 64)
    return found


def _shape(analysis: Analysis, dialect: str) -> _Shape:
    writes = [s for s in analysis.statements if _writes(s)]
    if not writes:
        return _NOT_GUARDED
    if len(writes) > 1 or len(analysis.statements) > 1:
        return _Shape("a script with a data change cannot be measured statement by statement; run the "
                      "statements one by one")  # fmt: skip
    stmt = writes[0]
    if stmt.nested_dml or "explain-analyze" in stmt.flags:
        # the rowcount is the outer query's (or the plan's lines), not what the nested data change did
        return _Shape(f"the rowcount of {stmt.operation} does not count the rows its nested data change "
                      "changes, so its effect cannot be measured")  # fmt: skip
    if "or-rollback" in stmt.flags:
        # a row that breaks a constraint ends the transaction the write is measured in, bracket and all
        return _Shape("UPDATE OR ROLLBACK ends the transaction its effect is measured in when a row breaks a "
                      "constraint, so its effect cannot be measured; write it with OR ABORT (the default: the "
                      "statement alone is undone) or OR FAIL")  # fmt: skip
    rendered = _targets(stmt, dialect)
    tables = rendered or stmt.tables_written or _replace_target(stmt)
    if not tables:
        return _Shape(f"governed_db cannot tell which table {stmt.operation} changes, so its effect cannot be "
                      "measured")  # fmt: skip
    returning = stmt.expression is not None and stmt.expression.find(exp.Returning) is not None
    return _Shape("", tables, _mode(stmt), bool(rendered), returning)


def plan(st: Statement) -> Steps | None:
    """The guarded steps for ``st``, or None when it provably changes no rows (reads, DDL, settings)."""
    shape = shape_of(st.analysis, st.gov.dialect)
    if shape.problem is None:
        return None
    if shape.problem:
        return _refuse_now(st, shape.problem)
    if st.entry in _SCRIPT_ENTRIES:
        # sqlite3's executescript() commits a pending transaction first: no bracket survives it
        return _refuse_now(st, f"{st.entry}() manages transactions itself, so a bounded write in it cannot be "
                               "measured; run the statement with execute()")
    if shape.returning and st.gov.driver.results_on_connection:
        return _refuse_now(st, f"{st.gov.driver.name} keeps a statement's rows on the connection, where measuring "
                               "the write would replace them: a bounded write cannot return rows (RETURNING) here")
    if shape.returning and st.gov.driver.returning_in_progress:
        # was a GovernanceFault ("cannot release savepoint - SQL statements in progress") after the write ran
        return _refuse_now(st, f"{st.gov.driver.name} keeps a write with RETURNING running until its rows are "
                               "read, so its effect cannot be measured and kept around it: run the write without "
                               "RETURNING, then SELECT the rows it changed")
    return _guarded(st, shape.tables, shape.mode, rendered=shape.rendered)


def changes_rows(analysis: Analysis) -> bool:
    """Whether the guard measures ``analysis`` (``shape_of(...).problem is not None``), without the cache."""
    for stmt in analysis.statements:  # noqa: SIM110 - a loop is cheaper than any(<generator>) per statement
        if stmt.kind in _WRITING or stmt.nested_dml:
            return True
    return False


_WRITING = frozenset({"write", "exec", "unknown"})


def _writes(stmt: StatementInfo) -> bool:
    return stmt.kind in ("write", "exec", "unknown") or stmt.nested_dml


def _targets(stmt: StatementInfo, dialect: str) -> tuple[str, ...]:
    """The written table as the statement names it (quoting kept, alias dropped), for the probe to read.

    Only the single-target forms; anything else (multi-table DELETE/UPDATE, nested DML) falls back to the
    analysis' names.
    """
    tree = stmt.expression
    if stmt.nested_dml or not isinstance(tree, (exp.Update, exp.Delete, exp.Insert, exp.Merge)):
        return ()
    if isinstance(tree, exp.Delete) and tree.args.get("tables"):
        return ()
    target = tree.this
    if isinstance(target, exp.Schema):
        target = target.this
    if not isinstance(target, exp.Table) or not isinstance(target.this, exp.Identifier) or target.args.get("joins"):
        return ()
    bare = target.copy()
    bare.set("alias", None)
    return (bare.sql(dialect=sqlglot_dialect(dialect)),)


def _replace_target(stmt: StatementInfo) -> tuple[str, ...]:
    """MySQL ``REPLACE INTO t ...`` is an opaque command to the parser; its target is the first name."""
    if stmt.operation != "REPLACE" or stmt.expression is None:
        return ()
    tree = stmt.expression
    rest = tree.expression.name if isinstance(tree, exp.Command) and tree.expression is not None else ""
    found = _REPLACE_TARGET.match(f"REPLACE {rest}" if rest else tree.sql())
    return (found.group(1).replace("`", "").replace('"', ""),) if found else ()


def _replaces(analysis: Analysis) -> bool:
    """The statement resolves conflicts by deleting the conflicting rows (``REPLACE``, ``INSERT OR REPLACE``,
    SQLite's ``UPDATE OR REPLACE``)."""
    for stmt in analysis.statements:
        tree = stmt.expression
        if stmt.operation == "REPLACE" or "or-replace" in stmt.flags or (
            isinstance(tree, exp.Insert) and str(tree.args.get("alternative") or "").upper() == "REPLACE"
        ):
            return True
    return False


def _mode(stmt: StatementInfo) -> str:
    """``delete``, ``update``, ``insert`` (changes no existing row) or ``mixed`` (upsert, MERGE, REPLACE, CTE)."""
    tree = stmt.expression
    if stmt.nested_dml or isinstance(tree, exp.Merge) or stmt.operation == "REPLACE":
        return "mixed"
    if isinstance(tree, exp.Copy):
        return "insert"  # COPY ... FROM loads rows; it changes none that were there
    if isinstance(tree, exp.Select) and tree.args.get("into") is not None:
        return "insert"  # SELECT ... INTO a new table (CREATE TABLE AS), a variable or a file: no row was there (0362)
    if isinstance(tree, exp.Delete):
        return "delete"
    if isinstance(tree, exp.Update):
        return "update"
    if isinstance(tree, exp.Insert):
        replacing = tree.args.get("conflict") or str(tree.args.get("alternative") or "").upper() == "REPLACE"
        return "mixed" if replacing else "insert"
    return "mixed"


def whole_table(mode: str, changed: int, remaining: int, *, one_table: bool = False) -> bool:
    """Did a write that changed ``changed`` rows leave ``remaining`` (read with LIMIT changed+1) untouched?

    ``one_table``: an UPDATE of a single table, whose changed rows are all still there afterwards -- unless
    the update itself removed rows (SQLite's ``ON CONFLICT REPLACE``) or moved them out of sight (a view's
    filter, a row-level security policy). Fewer rows left than it changed is then "every row" as well: what
    is left cannot show that anything was untouched.
    """
    if changed < 2:
        return False
    emptied = remaining == 0
    if mode == "delete":
        return emptied
    if mode == "update" and one_table:
        return remaining <= changed
    every = 1 < remaining <= changed
    return every if mode == "update" else emptied or every


def _probe_limit(mode: str, changed: int) -> int:
    return 1 if mode == "delete" else changed + 1


def _effect_text(mode: str, table: str, changed: int, remaining: int) -> str:
    if mode == "update" and remaining < changed:
        return f"would change {changed} rows in {table}, which then shows only {remaining}"
    if mode == "delete" or remaining == 0:
        return f"would delete {changed} of {changed} rows in {table}"
    return f"would change {remaining} of {remaining} rows in {table}"


def _guarded(st: Statement, tables: tuple[str, ...], mode: str, *, rendered: bool = False) -> Steps:
    gov, driver, bounds = st.gov, st.gov.driver, st.bounds
    assert bounds is not None
    raw = driver.guard_connection(st)
    try:
        state = driver.transaction_state(gov, raw)
    except GovernedDBError:
        raise
    except Exception as e:
        raise _fault(st, "reading the transaction state before a bounded write", e) from e
    # no savepoints (DuckDB) inside the application's transaction: a refusal can only roll back all of it
    whole = state == "open" and not driver.savepoints

    # tables whose writes no rollback undoes (MySQL MyISAM/MEMORY): refused before anything runs
    engine_sql = driver.engine_sql(gov, tables)
    if engine_sql is not None:
        try:
            rows = yield Query(engine_sql)
        except Exception as e:
            raise _fault(st, "checking the storage engine of the written tables", e) from e
        bad = driver.non_transactional(gov, rows)
        if bad:
            raise _refusal(st, [RuleHit(
                RULE, Action.DENY,
                f"{', '.join(bad)} cannot be rolled back (non-transactional storage engine), so a bounded "
                "write to it cannot be measured before it is kept",
                "move the table to a transactional engine (InnoDB), or have a person run the write",
            )])  # fmt: skip

    # REPLACE resolution deletes every row that conflicts on any unique key, and SQLite counts none of them
    keys_sql = driver.replace_keys_sql(gov, tables) if _replaces(st.analysis) else None
    if keys_sql is not None:
        try:
            rows = yield keys_sql
        except Exception as e:
            raise _fault(st, "reading the unique keys of the written tables", e) from e
        several = [str(t) for t, keys in rows if int(keys or 0) > 1]
        if several:
            raise _refusal(st, [RuleHit(
                RULE, Action.DENY,
                f"REPLACE into {', '.join(several)} can delete rows through several unique keys, which "
                f"{driver.name} does not count, so its effect cannot be measured",
                "use INSERT ... ON CONFLICT (key) DO UPDATE (its changes are counted), or have a person run it",
            )])  # fmt: skip

    opening = [] if whole else list(driver.open_guard(state))
    autocommit = state == "autocommit"
    keep = "" if whole else "COMMIT" if autocommit else driver.release_sql
    # a transaction that holds nothing of the application's (the guard's own, or the one the driver opened
    # for this write) is rolled back whole on a refusal: no lock or empty transaction is left behind
    # one statement per text (psycopg in pipeline mode speaks only the extended protocol): nothing is fused
    single = driver.single_statements(raw)
    undo = ("ROLLBACK",) if whole or state in ("autocommit", "implicit") else (
        (driver.rollback_to_sql, driver.release_sql) if single else driver.undo_sql())
    st_note = _WHOLE_TXN.format(driver.name) if whole else ""
    if opening and st.entry in driver.fold_entries:  # the bracket opens in the statement's own round trip
        folded = driver.fold_into(st.sql, st.params, opening[0])
        if folded is not None:
            st.sql = folded
            opening.pop(0)
        elif len(opening) == 1 and driver.pipelines(raw):
            st.prefix = opening.pop()
    for sql in opening:
        try:
            yield sql
        except Exception as e:
            raise _fault(st, "opening a savepoint for a bounded write", e) from e

    try:
        outcome = yield RUN
    except BaseException as e:
        # the write itself failed: undo the bracket so the application's transaction is as it was
        yield from _undo(st, undo, e)
        raise
    try:
        changed = driver.effect_rowcount(st.result.raw if st.result is not None else outcome)
    except Exception as e:
        yield from _undo(st, undo, e)
        raise _fault(st, "reading how many rows the write changed", e) from e
    if changed is None:
        yield from _undo(st, undo, None)
        raise _refusal(st, [RuleHit(RULE, Action.DENY,
                                    f"the driver did not say how many rows {st.analysis.operation} changed, so "
                                    "its effect cannot be measured",
                                    "have a person run the write")])  # fmt: skip

    limit = bounds.max_affected_rows
    over = limit is not None and changed > limit
    violations: list[tuple[str, int]] = []
    if mode != "insert" and changed > 1:
        probe = _probe_sql(driver, tables, mode, changed, rendered)
        one = len(tables) == 1
        # fused only where a violation is always refused: its error aborts the bracket, nothing can be kept
        fusable = not over and keep and bounds.whole_table is Action.DENY and not single
        fused = driver.fused_probe(probe, _violation_sql(mode, changed, one_table=one), keep) if fusable else None
        if fused is not None:
            try:
                yield fused
            except Exception as e:
                found = driver.probe_violation(e)
                if found is None:
                    yield from _undo(st, undo, e)
                    raise _fault(st, "measuring the effect of a bounded write", e) from e
                violations.append(found)  # the probe's error aborted the bracket; rolled back below
            else:
                yield from _restore(st, changed)
                return  # no violation: the write was kept in the same round trip
        else:
            try:
                rows = yield Query(probe)
            except Exception as e:
                yield from _undo(st, undo, e)
                raise _fault(st, "measuring the effect of a bounded write", e) from e
            violations = [(str(t), int(c)) for t, c in rows if whole_table(mode, changed, int(c), one_table=one)]
    hits: list[RuleHit] = []
    for table, remaining in violations:
        hits.append(RuleHit(RULE, bounds.whole_table, f"{_effect_text(mode, table, changed, remaining)} "
                            "(every row of the table)", _WHOLE_REMEDY))  # fmt: skip
    if over:
        hits.append(RuleHit(RULE, bounds.over_limit,
                            f"would change {changed} rows in {', '.join(tables)}, more than the {limit} this "
                            "identity may change in one statement", _OVER_REMEDY))  # fmt: skip
    if whole:
        hits = [replace(h, reason=h.reason + st_note) for h in hits]
    if not hits:
        try:
            if keep:
                yield keep
        except Exception as e:
            yield from _undo(st, undo, e)
            raise _fault(st, "keeping a bounded write", e) from e
        yield from _restore(st, changed)
        return
    if any(h.action is Action.DENY for h in hits):
        yield from _undo(st, undo, None)
        raise _refusal(st, hits)
    # every violation may be approved: the grant is bound to the measured effect (its ceiling)
    grant = st.grant if _ceiling(st.grant) is not None else None
    if grant is None:
        decision = _decision(st, [*hits, RuleHit(f"effect<={changed}", Action.ALLOW, "the measured effect")])
        try:
            grant = st.gov.enforce(decision, st.analysis, st.identity, st.text, st.params)
        except BaseException as e:
            yield from _undo(st, undo, None)
            if isinstance(e, GuardrailViolation):
                st.decided(decision)
                raise st.gov.refusal(e) from None
            raise
    ceiling = _ceiling(grant)
    if ceiling is None or changed > ceiling:
        yield from _undo(st, undo, None)
        covered = "no measured effect" if ceiling is None else f"at most {ceiling} rows"
        raise _refusal(st, [RuleHit(RULE, Action.DENY,
                                    f"{hits[0].reason}; the approval covered {covered}",
                                    "file a new approval request: run the statement again")])  # fmt: skip
    try:
        if keep:
            yield keep
    except Exception as e:
        yield from _undo(st, undo, e)
        raise _fault(st, "keeping an approved bounded write", e) from e
    yield from _restore(st, changed)


def _restore(st: Statement, changed: int) -> Steps:
    """Give a write's result back where governance's SQL replaced it on the connection (DuckDB)."""
    sql = st.gov.driver.restore_result_sql(changed)
    if sql is not None:
        st.restored = changed  # the restored result's rowcount is not the write's: the proxy reports this one
        yield sql


_WHOLE_TXN = " ({} has no savepoints: the application's transaction was rolled back with it)"
_WHOLE_REMEDY = "add a WHERE clause that selects only the rows to change, or ask a person to run it"
_OVER_REMEDY = "change fewer rows per statement, or ask for an approval"


def _probe_sql(driver: Any, tables: tuple[str, ...], mode: str, changed: int, rendered: bool) -> str:
    lim = _probe_limit(mode, changed)
    parts = [
        f"SELECT {driver.quote_literal(t)} AS t, (SELECT count(*) FROM (SELECT 1 FROM "
        f"{t if rendered else driver.quote_table(t)} LIMIT {lim}) AS s) AS c"
        for t in tables
    ]
    return " UNION ALL ".join(parts)


def _violation_sql(mode: str, changed: int, *, one_table: bool = False) -> str:
    """The SQL condition on ``c`` (rows left, read with the probe's LIMIT) that :func:`whole_table` tests."""
    if changed < 2:
        return "FALSE"
    if mode == "update" and one_table:
        return f"c <= {changed}"
    emptied, every = "c = 0", f"(c > 1 AND c <= {changed})"
    return emptied if mode == "delete" else every if mode == "update" else f"({emptied} OR {every})"


def _ceiling(grant: Any) -> int | None:
    for rule in getattr(grant, "rules", ()) or ():
        found = _CEILING.match(str(rule))
        if found:
            return int(found.group(1))
    return None


def _undo(st: Statement, undo: tuple[str, ...], cause: BaseException | None) -> Steps:
    """Roll back to the savepoint (or the guard's own transaction); a failure there is a fault."""
    for sql in undo:
        try:
            yield sql
        except Exception as e:
            raise _fault(
                st,
                "rolling back a bounded write (the transaction is aborted: roll it back)",
                e,
            ) from (cause or e)


def _decision(st: Statement, hits: list[RuleHit]) -> Decision:
    gov = st.gov
    return Decision.combine(hits, environment=gov.environment, dialect=gov.dialect,
                            policy_name=st.decision.policy_name)  # fmt: skip


def _refusal(st: Statement, hits: list[RuleHit]) -> GovernedDBError:
    decision = _decision(st, hits)
    st.decided(decision)
    remedy = f" Next step: {decision.remedy}." if decision.remedy else ""
    return st.gov.refusal(GuardrailViolation(f"refused by governed_db: {decision.reason}.{remedy}", decision,
                                             statement=st.analysis.normalized))  # fmt: skip


def _fault(st: Statement, stage: str, exc: BaseException) -> GovernedDBError:
    """A fault inside the guard: always a refusal (the write is not kept), recorded as one."""
    st.decided(_decision(st, [RuleHit("governance-fault", Action.DENY,
                                      f"governance failed while {stage}: {type(exc).__name__}")]))  # fmt: skip
    err = flavour(
        GovernanceFault(
            f"governance failed while {stage} ({type(exc).__name__}: {exc}); the write was not kept (fail closed)"
        ),
        st.gov.driver.error_class(st.gov.raw, "DatabaseError"),
    )
    return err


def _refuse_now(st: Statement, reason: str) -> Steps:
    raise _refusal(st, [RuleHit(RULE, Action.DENY, reason, "have a person run the write")])
    yield  # pragma: no cover - makes this a generator: the refusal is raised when the steps start


__all__ = ["RULE", "plan", "whole_table"]
