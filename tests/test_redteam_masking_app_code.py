"""The application's stored code, reached where the agent's statement does not look (decision 0397).

One judge reads the application's functions (``masking/app_functions.py``): PostgreSQL functions of any language,
DuckDB macros, MySQL/MariaDB stored functions. Before this round it read one body per call, and only where the
statement (or a view it reads) named the function:

* a function calling another that reads the SSN (``f(i) AS $$ SELECT g(i) $$``, PL/pgSQL ``RETURN g(i)``, a MariaDB
  ``RETURN g(i)``) answered by row 1's SSN: the callee's body was never read;
* the application's function called by a CHECK constraint, a DEFAULT, a generated column, an index's expression
  or a trigger's function ran on the agent's write: ``INSERT INTO k VALUES (1, 1)`` succeeded over one copy and
  failed its CHECK over the other;
* and it refused functions whose body merely held the masked table's name in a string literal or as a variable.

Oracles compare two copies that differ only in row 1's SSN (``536-...``, which starts with 5, or not; masked
alike), raw and governed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_redteam_masking_r13_rt13lite import ALICE, ANNA, OTHERS
from tests.test_redteam_masking_r20_views import (
    CUSTOMERS,
    ORDER_ROWS,
    ORDERS,
    _alike_and_masked,
    _Copy,
    _refused,
    _server,
)


def _play(
    db: str, request: pytest.FixtureRequest, unique: str, setup: list[str], steps: list[str],
    drops: tuple[str, ...] = (), governed: bool = True,
) -> list[list[str]]:  # fmt: skip
    """Per copy (ALICE's, ANNA's), what the agent (or, ``governed`` false, the raw connection) saw of ``steps``."""
    _server(db, request)
    out = []
    for v, secret in (("a", ALICE), ("b", ANNA)):
        copy = _Copy(db, f"ac_{unique}_{v}")
        if not governed:
            copy.conn = copy.conn.__wrapped__
        seen: list[str] = []
        try:
            copy.run(CUSTOMERS)
            copy.run(ORDERS)
            copy.insert("{p}_c", [secret, *OTHERS])
            copy.insert("{p}_o", ORDER_ROWS)
            for sql in setup:
                copy.run(sql)
            seen += [copy.see(step) for step in steps]
        finally:
            copy.close(drops)
        out.append(seen)
    return out


def _told_apart_then_refused(
    db: str,
    request: pytest.FixtureRequest,
    unique: str,
    setup: list[str],
    steps: list[str],
    drops: tuple[str, ...],
) -> None:
    raw = _play(db, request, unique, setup, steps, drops, governed=False)
    for i in range(len(steps)):
        assert raw[0][i] != raw[1][i], (steps[i], raw)  # the oracle, unprotected
    seen = _play(db, request, unique, setup, steps, drops)
    _alike_and_masked(seen)
    for s in seen[0]:
        assert _refused(s), s


def _answers_as_raw(
    db: str,
    request: pytest.FixtureRequest,
    unique: str,
    setup: list[str],
    steps: list[str],
    drops: tuple[str, ...],
) -> None:
    raw = _play(db, request, unique, setup, steps, drops, governed=False)
    seen = _play(db, request, unique, setup, steps, drops)
    assert seen == raw, (seen, raw)
    assert not any(_refused(s) for s in seen[0]), seen


# -- functions called by functions --------------------------------------------------------------------------------
CALLING = {
    "postgres": [
        "CREATE FUNCTION {p}_g(i int) RETURNS boolean LANGUAGE sql STABLE AS "
        "$$ SELECT ssn LIKE '5%' FROM {p}_c WHERE id = i $$",
        "CREATE FUNCTION {p}_f(i int) RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT {p}_g(i) $$",
        "CREATE FUNCTION {p}_h(i int) RETURNS boolean LANGUAGE plpgsql STABLE AS "
        "$$ BEGIN RETURN {p}_g /* the verdict */ (i); END $$",
        "CREATE VIEW {p}_v AS SELECT id, city FROM {p}_c WHERE {p}_h(id)",
    ],
    "mysql": [
        "CREATE FUNCTION {p}_g(i INT) RETURNS INT READS SQL DATA RETURN (SELECT ssn LIKE '5%' FROM {p}_c WHERE id = i)",
        "CREATE FUNCTION {p}_f(i INT) RETURNS INT READS SQL DATA RETURN {p}_g(i)",
        "CREATE FUNCTION {p}_h(i INT) RETURNS INT READS SQL DATA BEGIN DECLARE r INT; SET r = {p}_g(i); RETURN r; END",
        "CREATE VIEW {p}_v AS SELECT id, city FROM {p}_c WHERE {p}_h(id)",
    ],
    "duckdb": [
        "CREATE MACRO {p}_g(i) AS (SELECT max(ssn LIKE '5%') FROM {p}_c c2 WHERE c2.id = i)",
        "CREATE MACRO {p}_f(i) AS {p}_g(i)",
        "CREATE MACRO {p}_h(i) AS coalesce({p}_f(i), false)",
        "CREATE VIEW {p}_v AS SELECT id, city FROM {p}_c WHERE {p}_h(id)",
    ],
}
CALLING_DROPS = {
    "postgres": ("DROP VIEW IF EXISTS {p}_v", "DROP FUNCTION IF EXISTS {p}_f(int), {p}_h(int), {p}_g(int)"),
    "mysql": ("DROP VIEW IF EXISTS {p}_v", "DROP FUNCTION IF EXISTS {p}_f", "DROP FUNCTION IF EXISTS {p}_h",
              "DROP FUNCTION IF EXISTS {p}_g"),
    "duckdb": (),
}  # fmt: skip
CALLED_THROUGH = ["SELECT {p}_f(1)", "SELECT {p}_h(1)", "SELECT id FROM {p}_c WHERE {p}_f(id) ORDER BY id",
                  "SELECT id FROM {p}_v ORDER BY id"]  # fmt: skip


@pytest.mark.parametrize("db", ["postgres", "mysql", "duckdb"])
def test_a_function_calling_a_function_over_a_masked_table_is_refused(
    db: str, request: pytest.FixtureRequest, unique: str
) -> None:
    """f() calls g(), which reads the SSN: ``SELECT f(1)`` answered g's verdict on row 1 (PostgreSQL SQL and
    PL/pgSQL, MariaDB; DuckDB's macro depth was followed since 0391). Callees are followed four calls deep."""
    _told_apart_then_refused(db, request, unique, CALLING[db], CALLED_THROUGH, CALLING_DROPS[db])


CLEAR_CALLING = {
    "postgres": [
        "CREATE FUNCTION {p}_spent(i int) RETURNS float LANGUAGE sql STABLE AS "
        "$$ SELECT coalesce(sum(amount), 0) FROM {p}_o WHERE customer_id = i $$",
        "CREATE FUNCTION {p}_f(i int) RETURNS float LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN {p}_spent(i) * 2; END $$",
        # the masked table's name only in a string and as a variable
        "CREATE FUNCTION {p}_note(i int) RETURNS text LANGUAGE plpgsql STABLE AS $$ DECLARE {p}_c int := i; "
        "BEGIN RETURN 'see {p}_c ' || {p}_c; END $$",
        "CREATE FUNCTION {p}_says(i int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'from {p}_c: ' || i $$",
    ],
    "mysql": [
        "CREATE FUNCTION {p}_spent(i INT) RETURNS DOUBLE READS SQL DATA "
        "RETURN (SELECT coalesce(sum(amount), 0) FROM {p}_o WHERE customer_id = i)",
        "CREATE FUNCTION {p}_f(i INT) RETURNS DOUBLE READS SQL DATA RETURN {p}_spent(i) * 2",
        "CREATE FUNCTION {p}_note(i INT) RETURNS TEXT DETERMINISTIC BEGIN DECLARE {p}_c INT; SET {p}_c = i; "
        "RETURN concat('see {p}_c ', {p}_c); END",
        "CREATE FUNCTION {p}_says(i INT) RETURNS TEXT DETERMINISTIC RETURN concat('from {p}_c: ', i)",
    ],
    "duckdb": [
        "CREATE MACRO {p}_spent(i) AS (SELECT coalesce(sum(amount), 0) FROM {p}_o o2 WHERE o2.customer_id = i)",
        "CREATE MACRO {p}_f(i) AS {p}_spent(i) * 2",
        "CREATE MACRO {p}_note(i) AS 'see {p}_c ' || i",
        "CREATE MACRO {p}_says(i) AS 'from {p}_c: ' || i",
    ],
}
CLEAR_DROPS = {
    "postgres": ("DROP FUNCTION IF EXISTS {p}_f(int), {p}_spent(int), {p}_note(int), {p}_says(int)",),
    "mysql": ("DROP FUNCTION IF EXISTS {p}_f", "DROP FUNCTION IF EXISTS {p}_spent", "DROP FUNCTION IF EXISTS {p}_note",
              "DROP FUNCTION IF EXISTS {p}_says"),
    "duckdb": (),
}  # fmt: skip


@pytest.mark.parametrize("db", ["postgres", "mysql", "duckdb"])
def test_look_alike_functions_run(db: str, request: pytest.FixtureRequest, unique: str) -> None:
    """A function calling one over a clear table, and functions naming the masked table only in a string literal
    or as a variable's name, answer as raw (the last two were refused before)."""
    steps = ["SELECT c.id, {p}_f(c.id) FROM {p}_c c ORDER BY c.id", "SELECT {p}_note(3), {p}_says(4)"]
    _answers_as_raw(db, request, unique, CLEAR_CALLING[db], steps, CLEAR_DROPS[db])


# -- functions reached from what a write computes -----------------------------------------------------------------
PG_REACHED = [
    "CREATE FUNCTION {p}_g(i int) RETURNS boolean LANGUAGE sql STABLE AS "
    "$$ SELECT coalesce((SELECT ssn LIKE '5%' FROM {p}_c WHERE id = i), false) $$",
    "CREATE FUNCTION {p}_h(i int) RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT {p}_g(i) $$",
    "CREATE TABLE {p}_k (id int, v int CHECK (NOT {p}_h(v)))",
    "CREATE TABLE {p}_d (id int, v int, flag boolean DEFAULT {p}_g(1))",
    "CREATE TABLE {p}_t (id int)",
    "CREATE FUNCTION {p}_tf() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF {p}_h(NEW.id) THEN "
    "RAISE EXCEPTION 'no'; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER {p}_tt BEFORE INSERT ON {p}_t FOR EACH ROW EXECUTE FUNCTION {p}_tf()",
    "CREATE TABLE {p}_b (id int, flag boolean)",
    "CREATE VIEW {p}_bv AS SELECT id, flag FROM {p}_b",
    "ALTER VIEW {p}_bv ALTER COLUMN flag SET DEFAULT {p}_g(1)",
]
PG_REACHED_DROPS = ("DROP TABLE IF EXISTS {p}_k, {p}_d, {p}_t, {p}_b CASCADE", "DROP FUNCTION IF EXISTS {p}_tf()",
                    "DROP FUNCTION IF EXISTS {p}_h(int), {p}_g(int)")  # fmt: skip


def test_postgres_functions_a_write_computes_are_judged(request: pytest.FixtureRequest, unique: str) -> None:
    """A CHECK constraint, a DEFAULT (a table's, a view's) and a trigger's function calling the application's function
    over the SSN ran it on the agent's write: the INSERT succeeded over one copy and failed over the other, or
    stored row 1's verdict."""
    steps = ["INSERT INTO {p}_k VALUES (1, 1)", "INSERT INTO {p}_d (id, v) VALUES (1, 1)",
             "INSERT INTO {p}_t VALUES (1)", "INSERT INTO {p}_bv (id) VALUES (1)"]  # fmt: skip
    raw = _play("postgres", request, unique, PG_REACHED, [*steps, "SELECT flag FROM {p}_d", "SELECT flag FROM {p}_b"],
                PG_REACHED_DROPS, governed=False)  # fmt: skip
    assert all(raw[0][i] != raw[1][i] for i in (0, 2, 4, 5)), raw  # the oracle, unprotected
    seen = _play("postgres", request, unique, PG_REACHED, steps, PG_REACHED_DROPS)
    _alike_and_masked(seen)
    assert all(_refused(s) for s in seen[0]), seen
    assert "the functions it calls" in seen[0][0] and "unmask" in seen[0][0], seen[0][0]


PG_CLEAR_REACHED = [
    "CREATE FUNCTION {p}_pos(i int) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT i > 0 $$",
    "CREATE FUNCTION {p}_spent(i int) RETURNS float LANGUAGE sql STABLE AS "
    "$$ SELECT coalesce(sum(amount), 0) FROM {p}_o WHERE customer_id = i $$",
    "CREATE TABLE {p}_k (id int, v int CHECK ({p}_pos(v)), s float DEFAULT {p}_spent(1))",
    "CREATE TABLE {p}_t (id int)",
    "CREATE FUNCTION {p}_tf() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF {p}_spent(NEW.id) > 100 THEN "
    "RAISE EXCEPTION 'big'; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER {p}_tt BEFORE INSERT ON {p}_t FOR EACH ROW EXECUTE FUNCTION {p}_tf()",
]
PG_CLEAR_DROPS = ("DROP TABLE IF EXISTS {p}_k, {p}_t", "DROP FUNCTION IF EXISTS {p}_tf()",
                  "DROP FUNCTION IF EXISTS {p}_pos(int), {p}_spent(int)")  # fmt: skip


def test_postgres_writes_computing_clear_functions_run(request: pytest.FixtureRequest, unique: str) -> None:
    """A CHECK calling a pure function, a DEFAULT and a trigger calling one over a clear table: writes run."""
    steps = ["INSERT INTO {p}_k (id, v) VALUES (1, 1)", "UPDATE {p}_k SET v = 5 WHERE id = 1",
             "SELECT id, v, s FROM {p}_k ORDER BY id", "INSERT INTO {p}_t VALUES (1)"]  # fmt: skip
    _answers_as_raw("postgres", request, unique, PG_CLEAR_REACHED, steps, PG_CLEAR_DROPS)


# -- the depth bound -------------------------------------------------------------------------------------------
def test_calls_are_followed_to_a_bound_and_refused_past_it() -> None:
    """A chain of the application's functions is followed ``FUNCTION_DEPTH`` calls deep; one deeper makes the
    reads unknown (``None``: refused), a cycle ends, and a callee that is no function of the application's counts
    for nothing."""
    from governed_db.masking import app_functions
    from governed_db.masking.app_functions import Body

    depth = app_functions.FUNCTION_DEPTH
    chain = {f"f{i}": Body(calls=(f"f{i + 1}",), defined=True) for i in range(depth + 1)}
    chain[f"f{depth + 1}"] = Body(relations=("customers",), defined=True)
    assert app_functions.reached(chain.get, "f1") == (("customers",), False)
    assert app_functions.reached(chain.get, "f0") is None
    cycle = {
        "a": Body(calls=("b", "count"), defined=True),
        "b": Body(("t",), ("a",), defined=True),
        "count": Body(),
    }
    assert app_functions.reached(cycle.get, "a") == (("t",), False)
    assert app_functions.unread({"a": cycle["a"]}, ["a"]) == ["b", "count"]


def test_calls_and_checks_are_judged_through_asyncpg(pg_conn: Any, unique: str) -> None:
    """asyncpg reads the callees' bodies, and the functions a CHECK calls, in its warm-up."""
    pytest.importorskip("asyncpg")
    import governed_db
    from tests._redteam import asyncpg_variants

    names: dict[str, str] = {}
    setup = [CUSTOMERS, *CALLING["postgres"][:3], PG_REACHED[2].replace("{p}_h", "{p}_f")]

    async def see(conn: Any, p: str) -> list[Any]:
        out: list[Any] = []
        for sql in ("SELECT {p}_f(1)", "SELECT {p}_h(1)", "INSERT INTO {p}_k VALUES (1, 1)"):
            try:
                out.append([tuple(r) for r in await conn.fetch(sql.format(p=p))])
            except governed_db.GuardrailViolation as e:
                assert e.decision is not None
                out.append(f"refused: {sorted(e.decision.rules)}")
            except Exception as e:
                out.append(type(e).__name__)
        return out

    try:
        for v, secret in (("a", ALICE), ("b", ANNA)):
            p = names[v] = f"ac_{unique}_{v}"
            for sql in setup:
                pg_conn.execute(sql.format(p=p))
            pg_conn.execute(f"INSERT INTO {p}_c VALUES ({', '.join(['%s'] * len(secret))})", secret)
        seen = asyncpg_variants(names, see)
    finally:
        for p in names.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {p}_k, {p}_c CASCADE")
            pg_conn.execute(f"DROP FUNCTION IF EXISTS {p}_f(int), {p}_h(int), {p}_g(int)")
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1], seen
    assert all(str(s).startswith("refused") for s in seen["a"][1]), seen


# -- what a cast, an operator and an aggregate run ----------------------------------------------------------------
PG_TYPED = [
    PG_REACHED[0],
    "CREATE DOMAIN {p}_dom AS int CHECK (NOT {p}_g(VALUE))",
    "CREATE TABLE {p}_dt (id int, v {p}_dom)",
    "CREATE TYPE {p}_ty AS (x int)",
    "CREATE FUNCTION {p}_cast(i int) RETURNS {p}_ty LANGUAGE sql STABLE AS "
    "$$ SELECT ROW(CASE WHEN {p}_g(i) THEN 1 ELSE 0 END)::{p}_ty $$",
    "CREATE CAST (int AS {p}_ty) WITH FUNCTION {p}_cast(int)",
    "CREATE FUNCTION {p}_op(a int, b int) RETURNS boolean LANGUAGE sql STABLE AS $$ SELECT {p}_g(a) $$",
    "CREATE OPERATOR @#@# (LEFTARG = int, RIGHTARG = int, FUNCTION = {p}_op)",
    "CREATE FUNCTION {p}_sf(s boolean, i int) RETURNS boolean LANGUAGE sql STABLE AS "
    "$$ SELECT coalesce(s, false) OR {p}_g(i) $$",
    "CREATE AGGREGATE {p}_agg(int) (SFUNC = {p}_sf, STYPE = boolean)",
    # look-alikes: a domain with a pure CHECK, a type without cast functions, a pure aggregate
    "CREATE DOMAIN {p}_pos AS int CHECK (VALUE > 0)",
    "CREATE TABLE {p}_pt (id int, v {p}_pos)",
    "CREATE TYPE {p}_pair AS (x int, y int)",
    "CREATE FUNCTION {p}_add(s int, i int) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(s, 0) + i $$",
    "CREATE AGGREGATE {p}_total(int) (SFUNC = {p}_add, STYPE = int)",
]
PG_TYPED_DROPS = (
    "DROP TABLE IF EXISTS {p}_dt, {p}_pt",
    "DROP OPERATOR IF EXISTS @#@# (int, int)",
    "DROP AGGREGATE IF EXISTS {p}_agg(int), {p}_total(int)",
    "DROP CAST IF EXISTS (int AS {p}_ty)",
    "DROP FUNCTION IF EXISTS {p}_op(int, int), {p}_cast(int), {p}_sf(boolean, int), {p}_add(int, int)",
    "DROP TYPE IF EXISTS {p}_ty, {p}_pair",
    "DROP DOMAIN IF EXISTS {p}_dom, {p}_pos",
    "DROP FUNCTION IF EXISTS {p}_g(int)",
)


def test_postgres_casts_operators_domains_and_aggregates_are_judged(
    request: pytest.FixtureRequest, unique: str
) -> None:
    """A domain's CHECK (on an INSERT into a column of it, or a cast), a cast function, the function of an operator
    called as ``OPERATOR(public.op)`` and an aggregate's transition function ran the application's code over the
    SSN on values the agent chose: the copies answered True/False, or an error for one."""
    steps = ["INSERT INTO {p}_dt VALUES (1, 1)", "SELECT (1::{p}_ty).x", "SELECT CAST(1 AS {p}_ty)",
             "SELECT 1 OPERATOR(public.@#@#) 2", "SELECT {p}_agg(customer_id) FROM {p}_o", "SELECT 1::{p}_dom"]  # fmt: skip
    _told_apart_then_refused("postgres", request, unique, PG_TYPED, steps, PG_TYPED_DROPS)


def test_postgres_pure_casts_domains_and_aggregates_run(request: pytest.FixtureRequest, unique: str) -> None:
    steps = ["INSERT INTO {p}_pt VALUES (1, 1)", "SELECT (ROW(1, 2)::{p}_pair).y", "SELECT 3::{p}_pos",
             "SELECT {p}_total(customer_id) FROM {p}_o"]  # fmt: skip
    _answers_as_raw("postgres", request, unique, PG_TYPED, steps, PG_TYPED_DROPS)


def test_postgres_a_row_security_policy_calling_a_function_calling_one_is_judged(
    pg_conn: Any, unique: str
) -> None:
    """A policy ``USING (NOT h(owner))`` on the documents, ``h`` calling ``g`` (``SECURITY DEFINER``), which reads
    the SSN of the document's owner: the role bound by the policy counted 1 or 2 documents (one level of calls
    was read: ``h`` names no table)."""
    from tests.test_redteam_masking_r20_pg import _as_role

    role, names = f"ac_{unique}", {}
    pg_conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        for v, secret in (("a", ALICE), ("b", ANNA)):
            p = names[v] = f"ac_{unique}_{v}"
            for sql in (
                CUSTOMERS,
                PG_REACHED[0].replace("LANGUAGE sql STABLE", "LANGUAGE sql STABLE SECURITY DEFINER"),
                PG_REACHED[1],
                "CREATE TABLE {p}_docs (id int, owner int)",
                "INSERT INTO {p}_docs VALUES (1, 1), (2, 2)",
                "ALTER TABLE {p}_docs ENABLE ROW LEVEL SECURITY",
                "CREATE POLICY {p}_own ON {p}_docs USING (NOT {p}_h(owner))",
                f"GRANT SELECT ON {{p}}_docs TO {role}",
            ):
                pg_conn.execute(sql.format(p=p))
            pg_conn.execute(f"INSERT INTO {p}_c VALUES ({', '.join(['%s'] * len(secret))})", secret)
        seen = _as_role("psycopg", role, names, "SELECT count(*) FROM {t}_docs")
    finally:
        for p in names.values():
            pg_conn.execute(f"DROP TABLE IF EXISTS {p}_docs, {p}_c CASCADE")
            pg_conn.execute(f"DROP FUNCTION IF EXISTS {p}_h(int), {p}_g(int)")
        pg_conn.execute(f"DROP ROLE IF EXISTS {role}")
    assert seen["a"][0] != seen["b"][0], seen  # the oracle, unprotected
    assert seen["a"][1] == seen["b"][1] and "refused" in seen["a"][1], seen
