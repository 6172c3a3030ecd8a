"""Guardrails speed: parse, analyse and decide about typical agent queries (a benchmark, not a test).

    python bench/bench_guardrails.py

Targets (issue 3): uncached ``evaluate()`` of a typical agent query (joins, CTE, 200-600 characters)
<= 1 ms median; cached ``evaluate()`` <= 5 us.

Optional comparisons, when the packages are importable from a side directory (never installed into the
project): ``BENCH_SQLPARSE_PATH=/dir`` (``pip install --target /dir sqlparse``) and
``BENCH_SQLGLOT_PY_PATH=/dir`` (``pip install --no-deps --target /dir sqlglot==<same version>``, i.e.
sqlglot without the compiled sqlglotc extension, measured in a subprocess).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

QUERIES = {
    "cte+joins (406 chars)": """WITH recent AS (
  SELECT o.customer_id, SUM(o.total) AS spend, COUNT(*) AS n
  FROM orders o
  WHERE o.created_at >= '2024-01-01' AND o.status IN ('paid', 'shipped')
  GROUP BY o.customer_id
)
SELECT c.id, c.name, c.email, r.spend, r.n
FROM customers c
JOIN recent r ON r.customer_id = c.id
LEFT JOIN regions g ON g.id = c.region_id
WHERE r.spend > 1000 AND g.name <> 'test'
ORDER BY r.spend DESC
LIMIT 50""",
    "3 joins (240 chars)": "SELECT u.id, u.name, o.id, p.title FROM users u JOIN orders o ON o.user_id = u.id "
    "JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id "
    "WHERE u.created_at > '2024-01-01' AND p.price > 10 ORDER BY o.id LIMIT 100",
    "update (60 chars)": "UPDATE orders SET status = 'shipped' WHERE id = 42",
}


def _median_us(fn: Callable[[], object], n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


def _per_call_us(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


_SUBPROCESS = """
import statistics, sys, time, sqlglot, sqlglot.tokens as t
assert not t.SQLGLOTC_INSTALLED
q = sys.stdin.read(); s = []
for _ in range(300):
    t0 = time.perf_counter(); sqlglot.parse(q, read="postgres"); s.append(time.perf_counter() - t0)
print(statistics.median(s) * 1e6)
"""


def _pure_python_sqlglot_us(path: str, sql: str) -> float | None:
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run([sys.executable, "-c", _SUBPROCESS], input=sql, capture_output=True, text=True, env=env)
    return float(out.stdout) if out.returncode == 0 else None


def main() -> None:
    import sqlglot
    import sqlglot.tokens

    from governed_db.identity import Identity
    from governed_db.policy import default_policy, evaluate
    from governed_db.sql.analysis import analyze

    policy = default_policy()
    ident = Identity("report-bot", kind="agent", on_behalf_of="alice")
    sqlparse = None
    if os.environ.get("BENCH_SQLPARSE_PATH"):
        sys.path.insert(0, os.environ["BENCH_SQLPARSE_PATH"])
        import sqlparse  # type: ignore[import-not-found,no-redef]
    print(f"sqlglot {sqlglot.__version__} (sqlglotc compiled: {sqlglot.tokens.SQLGLOTC_INSTALLED}), "
          f"Python {sys.version.split()[0]}")  # fmt: skip
    header = f"{'query':24} {'measure':44} {'median/call':>12} {'target':>8} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for name, sql in QUERIES.items():
        def uncached(sql: str = sql) -> object:
            analyze.cache_clear()
            policy.clear_cache()
            return evaluate(sql, dialect="postgres", identity=ident)

        rows: list[tuple[str, float, float | None]] = []
        parse = _median_us(lambda sql=sql: sqlglot.parse(sql, read="postgres"), 500)  # type: ignore[misc]
        rows.append(("sqlglot+sqlglotc parse", parse, None))
        if os.environ.get("BENCH_SQLGLOT_PY_PATH"):
            py = _pure_python_sqlglot_us(os.environ["BENCH_SQLGLOT_PY_PATH"], sql)
            if py is not None:
                rows.append(("sqlglot pure-Python parse (no sqlglotc)", py, None))
        if sqlparse is not None:
            rows.append(("sqlparse parse", _median_us(lambda sql=sql: sqlparse.parse(sql), 300), None))  # type: ignore[misc]
        rows.append(("analyze() uncached (split+parse+facts)", _median_us(
            lambda sql=sql: (analyze.cache_clear(), analyze(sql, "postgres")), 500), None))  # type: ignore[misc]
        rows.append(("evaluate() uncached (analyse + 46 rules)", _median_us(uncached, 500), 1000.0))
        evaluate(sql, dialect="postgres", identity=ident)
        rows.append(("evaluate() cached", _per_call_us(
            lambda sql=sql: evaluate(sql, dialect="postgres", identity=ident), 20000), 5.0))  # type: ignore[misc]
        a = analyze(sql, "postgres")
        rows.append(("policy.evaluate() cached (pipeline path)", _per_call_us(
            lambda a=a: policy.evaluate(a, identity=ident, environment="production"), 20000), 5.0))  # type: ignore[misc]
        for measure, us, target in rows:
            ratio = f"{us / target:.2f}" if target else f"{us / parse:.1f}x"
            print(f"{name:24} {measure:44} {us:10.1f}us {(f'{target:.0f}us' if target else '-'):>8} {ratio:>7}")
        print()
    if sqlparse is not None:
        cte = "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d"
        print(f"correctness: sqlparse calls {cte!r} a {sqlparse.parse(cte)[0].get_type()}; governed_db: "
              f"{analyze(cte, 'postgres').statements[0].kind} -> {evaluate(cte, dialect='postgres').action.value}")  # fmt: skip


if __name__ == "__main__":
    main()
