"""An innocent agent workload: analytics and ops statements that need no PII value (decision 0228).

Each statement runs twice, on a reference copy through the raw connection and on an identical copy through the
governed connection (agent identity, production, zero configuration). An outcome is one of:

- ``ok``: every cell equals the raw result, except PII cells, which are masked (no stored PII string shows);
- ``refused``: a GuardrailViolation;
- ``error``: any other exception (the raw connection did not fail the same way);
- ``overmasked``: a non-PII cell differs from the raw result;
- ``leaked``: a PII cell came back in the clear.

Used by tests/test_masking_innocent_workload.py and runnable as a script to print the table per database.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from typing import Any

import governed_db

AGENT = governed_db.Identity("agent-x", kind="agent", on_behalf_of="bob")

CUSTOMERS = [
    (
        1,
        "Alice Smith",
        "alice@example.com",
        "+1 415 555 0101",
        "536-22-8726",
        "Paris",
        "FR",
        "2024-01-15",
        "gold",
        "prefers email",
    ),
    (
        2,
        "Bob Jones",
        "bob.jones@example.org",
        "+1 415 555 0102",
        "219-45-1234",
        "Lyon",
        "FR",
        "2024-02-20",
        "silver",
        None,
    ),
    (
        3,
        "Carol White",
        "carol.white@example.net",
        "+1 212 555 0199",
        "078-05-1120",
        "Berlin",
        "DE",
        "2024-02-28",
        "gold",
        "VIP since launch",
    ),
    (
        4,
        "Dan Brown",
        None,
        "+44 20 7946 0958",
        "123-45-6789",
        "London",
        "GB",
        "2024-03-03",
        "bronze",
        "call back at +1 415 555 0177",
    ),
    (
        5,
        "Eve Adams",
        "eve.adams@example.com",
        None,
        "987-65-4321",
        "Paris",
        "FR",
        "2024-03-30",
        "silver",
        None,
    ),
    (
        6,
        "Frank Miller",
        "frank@example.com",
        "+1 646 555 0123",
        "555-12-3456",
        None,
        "US",
        "2024-04-11",
        "bronze",
        "net 30 terms",
    ),
]
PRODUCTS = [
    (1, "Widget", "tools", "9.99"),
    (2, "Gadget", "tools", "24.50"),
    (3, "Manual", "books", "15.00"),
    (4, "Cable", "accessories", "4.25"),
]
ORDERS = [
    (1, 1, "Widget", "19.98", "shipped", "2024-05-01 10:00:00"),
    (2, 1, "Gadget", "24.50", "pending", "2024-05-03 12:30:00"),
    (3, 2, "Manual", "15.00", "shipped", "2024-05-10 09:15:00"),
    (4, 3, "Cable", "8.50", "cancelled", "2024-06-02 16:45:00"),
    (5, 3, "Widget", "9.99", "shipped", "2024-06-15 11:00:00"),
    (6, 4, "Gadget", "49.00", "pending", "2024-06-20 14:20:00"),
    (7, 5, "Manual", "30.00", "shipped", "2024-07-01 08:05:00"),
    (8, 6, "Cable", "4.25", "refunded", "2024-07-04 19:30:00"),
]
TICKETS = [
    (
        1,
        1,
        "Late delivery",
        "My order is late, please call me at +1 415 555 0101",
        "high",
        "2024-05-05 09:00:00",
    ),
    (2, 2, "Wrong item", "Received a manual instead of a gadget", "medium", "2024-05-12 10:00:00"),
    (
        3,
        3,
        "Refund request",
        "Please refund order 4, email carol.white@example.net",
        "low",
        "2024-06-03 13:00:00",
    ),
    (4, 4, "Invoice copy", "Need an invoice copy for accounting", "low", "2024-06-21 15:30:00"),
]

# every PII string stored: a cell containing one of these is a PII cell and must come back masked
PII = sorted(
    {str(v) for r in CUSTOMERS for v in r[1:5] if v}
    | {"+1 415 555 0177", "+1 415 555 0101", "carol.white@example.net", "Gina Lee", "gina@example.com"},
    key=len,
    reverse=True,
)
PII_FRAGMENTS = (
    "Gina",
    "gina@",
    "Alice",
    "Smith",
    "alice@",
    "bob.jones",
    "536-22",
    "8726",
    "219-45",
    "555 01",
    "carol.white",
)

DDL = {
    "customers": "(id int primary key, full_name {s}, email {s}, phone {s}, ssn {s}, city {s}, country {s}, "
    "signup_date date, tier {s}, notes {s})",
    "products": "(id int primary key, name {s}, category {s}, price decimal(10,2))",
    "orders": "(id int primary key, customer_id int, product {s}, amount decimal(10,2), status {s}, "
    "created_at {ts})",
    "tickets": "(id int primary key, customer_id int, subject {s}, body {s}, priority {s}, opened_at {ts})",
}
DATA = {"customers": CUSTOMERS, "products": PRODUCTS, "orders": ORDERS, "tickets": TICKETS}
TYPES = {
    "lite": {"s": "text", "ts": "text"},
    "duck": {"s": "varchar", "ts": "timestamp"},
    "pg": {"s": "text", "ts": "timestamp"},
    "my": {"s": "varchar(200)", "ts": "datetime"},
}
PARAM = {"lite": "?", "duck": "?", "pg": "%s", "my": "%s"}

# month bucket, per dialect, of a timestamp column
_MONTH = {
    "lite": "strftime('%Y-%m', {col})",
    "duck": "strftime({col}, '%Y-%m')",
    "pg": "to_char({col}, 'YYYY-MM')",
    "my": "DATE_FORMAT({col}, '%Y-%m')",
}


def _month(col: str) -> dict[str, str]:
    return {d: f.format(col=col) for d, f in _MONTH.items()}


@dataclass(frozen=True)
class Case:
    name: str
    sql: str | dict[str, str]
    write: bool = False

    def text(self, db: str) -> str | None:
        if isinstance(self.sql, str):
            return self.sql
        return self.sql.get(db)


WORKLOAD: list[Case] = [
    # -- counts and sums by non-PII dimensions
    Case("count customers", "SELECT count(*) FROM {c}"),
    Case("count by city", "SELECT city, count(*) FROM {c} GROUP BY city ORDER BY city"),
    Case("count by tier", "SELECT tier, count(*) AS n FROM {c} GROUP BY tier ORDER BY n DESC, tier"),
    Case("count by country", "SELECT country, count(*) FROM {c} GROUP BY country ORDER BY 2 DESC, 1"),
    Case("count distinct city", "SELECT count(DISTINCT city) FROM {c}"),
    Case("count email (nullness)", "SELECT count(email), count(phone), count(*) FROM {c}"),
    Case("email is null", "SELECT id, city FROM {c} WHERE email IS NULL ORDER BY id"),
    Case("phone is not null count", "SELECT count(*) FROM {c} WHERE phone IS NOT NULL"),
    Case("sum by status", "SELECT status, sum(amount) FROM {o} GROUP BY status ORDER BY status"),
    Case("avg order amount", "SELECT round(avg(amount), 2) FROM {o}"),
    Case("min max amount", "SELECT min(amount), max(amount) FROM {o}"),
    Case("orders by month", "SELECT " + "{m} AS month, count(*), sum(amount) FROM {o} GROUP BY 1 ORDER BY 1"),
    Case("signups by month", "SELECT {ms} AS month, count(*) FROM {c} GROUP BY 1 ORDER BY 1"),
    Case(
        "revenue by tier",
        "SELECT c.tier, sum(o.amount) FROM {o} o JOIN {c} c ON c.id = o.customer_id "
        "GROUP BY c.tier ORDER BY c.tier",
    ),
    Case(
        "revenue by city",
        "SELECT c.city, count(o.id), sum(o.amount) FROM {c} c LEFT JOIN {o} o "
        "ON o.customer_id = c.id GROUP BY c.city ORDER BY c.city",
    ),
    Case("orders per customer id", "SELECT customer_id, count(*) FROM {o} GROUP BY customer_id ORDER BY 1"),
    Case(
        "customers without orders",
        "SELECT c.id FROM {c} c LEFT JOIN {o} o ON o.customer_id = c.id WHERE o.id IS NULL ORDER BY c.id",
    ),
    Case(
        "customers with orders exists",
        "SELECT count(*) FROM {c} c WHERE EXISTS (SELECT 1 FROM {o} o WHERE o.customer_id = c.id)",
    ),
    Case(
        "having",
        "SELECT customer_id, sum(amount) FROM {o} GROUP BY customer_id HAVING sum(amount) > 20 ORDER BY 1",
    ),
    # -- top products, categories
    Case(
        "top products",
        "SELECT product, count(*) AS n, sum(amount) AS rev FROM {o} GROUP BY product "
        "ORDER BY rev DESC, product LIMIT 3",
    ),
    Case(
        "products by category", "SELECT category, count(*), avg(price) FROM {p} GROUP BY category ORDER BY 1"
    ),
    Case(
        "product join",
        "SELECT p.category, sum(o.amount) FROM {o} o JOIN {p} p ON p.name = o.product "
        "GROUP BY p.category ORDER BY 1",
    ),
    Case("products list", "SELECT * FROM {p} ORDER BY price DESC"),
    Case("cheap products", "SELECT name FROM {p} WHERE price < 20 ORDER BY name"),
    # -- window functions, CTEs
    Case("running total", "SELECT id, amount, sum(amount) OVER (ORDER BY id) FROM {o} ORDER BY id"),
    Case(
        "rank amounts",
        "SELECT id, customer_id, rank() OVER (PARTITION BY customer_id ORDER BY amount DESC) "
        "FROM {o} ORDER BY id",
    ),
    Case(
        "row_number by status",
        "SELECT id, status, row_number() OVER (PARTITION BY status ORDER BY created_at) FROM {o} ORDER BY id",
    ),
    Case("lag amount", "SELECT id, amount - lag(amount) OVER (ORDER BY id) FROM {o} ORDER BY id"),
    Case(
        "cte totals",
        "WITH t AS (SELECT customer_id, sum(amount) AS s FROM {o} GROUP BY customer_id) "
        "SELECT count(*), max(s) FROM t",
    ),
    Case(
        "cte join tier",
        "WITH big AS (SELECT customer_id FROM {o} WHERE amount > 20) "
        "SELECT c.tier, count(*) FROM big JOIN {c} c ON c.id = big.customer_id GROUP BY c.tier ORDER BY 1",
    ),
    Case(
        "cte with pii masked",
        "WITH recent AS (SELECT * FROM {c} WHERE signup_date >= '2024-03-01') "
        "SELECT id, full_name, city FROM recent ORDER BY id",
    ),
    Case("window over customers", "SELECT id, tier, count(*) OVER (PARTITION BY tier) FROM {c} ORDER BY id"),
    # -- CASE, COALESCE
    Case(
        "case status",
        "SELECT CASE WHEN status IN ('shipped') THEN 'done' ELSE 'open' END AS s, count(*) "
        "FROM {o} GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "case amount band",
        "SELECT id, CASE WHEN amount >= 20 THEN 'big' ELSE 'small' END FROM {o} ORDER BY id",
    ),
    Case("coalesce city", "SELECT id, COALESCE(city, 'unknown') FROM {c} ORDER BY id"),
    Case("coalesce notes is null", "SELECT count(*) FROM {c} WHERE notes IS NULL"),
    Case("sum case", "SELECT sum(CASE WHEN status = 'pending' THEN amount ELSE 0 END) FROM {o}"),
    # -- PII columns read: masked values come back
    Case("select star by id", "SELECT * FROM {c} WHERE id = 3"),
    Case("names emails limit", "SELECT full_name, email FROM {c} ORDER BY id LIMIT 5"),
    Case("pii with city filter", "SELECT id, full_name, phone FROM {c} WHERE city = 'Paris' ORDER BY id"),
    Case(
        "join with names",
        "SELECT o.id, c.full_name, o.amount FROM {o} o JOIN {c} c ON c.id = o.customer_id ORDER BY o.id",
    ),
    Case("tickets list", "SELECT id, customer_id, subject, priority FROM {t} ORDER BY id"),
    Case("tickets star", "SELECT * FROM {t} ORDER BY id"),
    Case("notes read", "SELECT id, notes FROM {c} ORDER BY id"),
    Case("customer star all", "SELECT * FROM {c} ORDER BY id"),
    # -- tickets ops
    Case("tickets by priority", "SELECT priority, count(*) FROM {t} GROUP BY priority ORDER BY 1"),
    Case(
        "tickets per tier",
        "SELECT c.tier, count(t.id) FROM {t} t JOIN {c} c ON c.id = t.customer_id GROUP BY c.tier ORDER BY 1",
    ),
    Case("open tickets by month", "SELECT {mt} AS m, count(*) FROM {t} GROUP BY 1 ORDER BY 1"),
    Case(
        "subject filter",
        "SELECT id FROM {t} WHERE subject LIKE '%refund%' OR subject LIKE 'Refund%' ORDER BY id",
    ),
    # -- dates
    Case("signups since", "SELECT count(*) FROM {c} WHERE signup_date >= '2024-03-01'"),
    Case("signup dates", "SELECT id, signup_date FROM {c} ORDER BY signup_date"),
    Case("last order", "SELECT max(created_at) FROM {o}"),
    Case(
        "orders in june",
        "SELECT id FROM {o} WHERE created_at >= '2024-06-01' AND created_at < '2024-07-01' ORDER BY id",
    ),
    Case("order by date limit", "SELECT id, status FROM {o} ORDER BY created_at DESC LIMIT 3"),
    Case(
        "signup year",
        {
            "lite": "SELECT strftime('%Y', signup_date), count(*) FROM {c} GROUP BY 1",
            "duck": "SELECT year(signup_date), count(*) FROM {c} GROUP BY 1",
            "pg": "SELECT extract(year FROM signup_date)::int, count(*) FROM {c} GROUP BY 1",
            "my": "SELECT YEAR(signup_date), count(*) FROM {c} GROUP BY 1",
        },
    ),
    # -- ORDER BY / LIMIT on non-PII, set ops, subqueries
    Case("order by city", "SELECT id, city FROM {c} ORDER BY city, id"),
    Case("paginate", "SELECT id, tier FROM {c} ORDER BY id LIMIT 2 OFFSET 2"),
    Case(
        "in subquery",
        "SELECT id FROM {c} WHERE id IN (SELECT customer_id FROM {o} WHERE status = 'pending') ORDER BY id",
    ),
    Case(
        "scalar subquery",
        "SELECT id, (SELECT count(*) FROM {o} o WHERE o.customer_id = c.id) FROM {c} c ORDER BY id",
    ),
    Case("union cities", "SELECT city FROM {c} WHERE city IS NOT NULL UNION SELECT 'Madrid' ORDER BY 1"),
    Case("distinct status", "SELECT DISTINCT status FROM {o} ORDER BY status"),
    Case("count distinct customers ordering", "SELECT count(DISTINCT customer_id) FROM {o}"),
    Case(
        "string ops on non-pii",
        "SELECT upper(city), length(country) FROM {c} WHERE city IS NOT NULL ORDER BY id",
    ),
    Case("literal", "SELECT 1, 'ok'"),
    Case("id lookup by id list", "SELECT id, tier, city FROM {c} WHERE id IN (2, 4) ORDER BY id"),
    # -- look-alikes: PII columns named, but only their NULL-ness or their masked value leaves
    Case("count email by tier", "SELECT tier, count(email) FROM {c} GROUP BY tier ORDER BY tier"),
    Case(
        "email present flag",
        "SELECT id, CASE WHEN email IS NULL THEN 'missing' ELSE 'present' END FROM {c} ORDER BY id",
    ),
    Case("email is not null flag", "SELECT id, email IS NOT NULL FROM {c} ORDER BY id"),
    Case("coalesce phone", "SELECT id, COALESCE(phone, 'n/a') FROM {c} ORDER BY id"),
    Case("email not null and city", "SELECT count(*) FROM {c} WHERE email IS NOT NULL AND city = 'Paris'"),
    Case("alias pii", "SELECT id, full_name AS name FROM {c} WHERE tier = 'gold' ORDER BY signup_date DESC"),
    Case("star join", "SELECT c.*, o.amount FROM {c} c JOIN {o} o ON o.customer_id = c.id ORDER BY o.id"),
    Case("distinct tier", "SELECT DISTINCT tier FROM {c} ORDER BY tier"),
    Case("max signup", "SELECT max(signup_date), min(signup_date) FROM {c}"),
    Case("cast amount", "SELECT id, CAST(amount AS INTEGER) FROM {o} ORDER BY id"),
    Case("country in", "SELECT id FROM {c} WHERE country IN ('FR', 'DE') ORDER BY id"),
    Case("high tickets", "SELECT id, subject FROM {t} WHERE priority = 'high'"),
    Case("ticket body present", "SELECT count(*) FROM {t} WHERE body IS NOT NULL"),
    Case(
        "filter count",
        {
            "lite": "SELECT count(*) FILTER (WHERE status = 'shipped') FROM {o}",
            "duck": "SELECT count(*) FILTER (WHERE status = 'shipped') FROM {o}",
            "pg": "SELECT count(*) FILTER (WHERE status = 'shipped') FROM {o}",
        },
    ),
    # -- more look-alikes and dialect-specific reports
    Case("star limit", "SELECT * FROM {c} LIMIT 3"),
    Case(
        "dates where name not null", "SELECT id, signup_date FROM {c} WHERE full_name IS NOT NULL ORDER BY id"
    ),
    Case(
        "having count email",
        "SELECT tier, count(*) FROM {c} GROUP BY tier HAVING count(email) >= 1 ORDER BY 1",
    ),
    Case("cte pii count", "WITH x AS (SELECT id, email FROM {c}) SELECT count(*) FROM x"),
    Case("count distinct sub", "SELECT count(*) FROM (SELECT DISTINCT city FROM {c}) s"),
    Case("notes like vip", "SELECT id FROM {c} WHERE notes LIKE '%VIP%'"),
    Case("body like invoice", "SELECT subject FROM {t} WHERE body LIKE '%invoice%'"),
    Case("latest ticket", "SELECT id FROM {t} ORDER BY opened_at DESC LIMIT 1"),
    Case(
        "email of ticket customers",
        "SELECT c.id, c.email FROM {c} c WHERE c.id IN (SELECT customer_id FROM {t}) ORDER BY c.id",
    ),
    Case("ntile", "SELECT id, ntile(2) OVER (ORDER BY amount, id) FROM {o} ORDER BY id"),
    Case(
        "date of ts",
        {
            "lite": "SELECT date(created_at), count(*) FROM {o} GROUP BY 1 ORDER BY 1",
            "duck": "SELECT CAST(created_at AS DATE), count(*) FROM {o} GROUP BY 1 ORDER BY 1",
            "pg": "SELECT created_at::date, count(*) FROM {o} GROUP BY 1 ORDER BY 1",
            "my": "SELECT DATE(created_at), count(*) FROM {o} GROUP BY 1 ORDER BY 1",
        },
    ),
    Case(
        "explain analyze",
        {
            "pg": "EXPLAIN ANALYZE SELECT count(*) FROM {o}",
            "duck": "EXPLAIN ANALYZE SELECT count(*) FROM {o}",
            "my": "ANALYZE SELECT count(*) FROM {o}",
        },
    ),
    Case("show columns", {"my": "SHOW COLUMNS FROM {c}", "duck": "SHOW {c}"}),
    Case("show tables", {"my": "SHOW TABLES LIKE '{c}'"}),
    Case("pg indexes", {"pg": "SELECT indexname FROM pg_indexes WHERE tablename = '{c}'"}),
    Case(
        "nulls last",
        {
            "pg": "SELECT id FROM {o} ORDER BY amount DESC NULLS LAST",
            "duck": "SELECT id FROM {o} ORDER BY amount DESC NULLS LAST",
            "lite": "SELECT id FROM {o} ORDER BY amount DESC NULLS LAST",
        },
    ),
    Case(
        "median",
        {
            "pg": "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) FROM {o}",
            "duck": "SELECT median(amount) FROM {o}",
        },
    ),
    Case(
        "days since signup",
        {
            "lite": "SELECT id, julianday('2024-12-31') - julianday(signup_date) FROM {c} ORDER BY id",
            "pg": "SELECT id, DATE '2024-12-31' - signup_date FROM {c} ORDER BY id",
            "duck": "SELECT id, DATE '2024-12-31' - signup_date FROM {c} ORDER BY id",
            "my": "SELECT id, DATEDIFF('2024-12-31', signup_date) FROM {c} ORDER BY id",
        },
    ),
    Case(
        "string agg",
        {
            "pg": "SELECT tier, string_agg(city, ',' ORDER BY city) FROM {c} GROUP BY tier ORDER BY 1",
            "duck": "SELECT tier, string_agg(city, ',' ORDER BY city) FROM {c} GROUP BY tier ORDER BY 1",
            "my": "SELECT tier, GROUP_CONCAT(city ORDER BY city) FROM {c} GROUP BY tier ORDER BY 1",
            "lite": "SELECT tier, group_concat(city, ',') FROM (SELECT tier, city FROM {c} ORDER BY city) GROUP BY tier ORDER BY 1",
        },
    ),
    Case("param lookup", "SELECT * FROM {c} WHERE id = 2"),
    Case("update ticket priority", "UPDATE {t} SET priority = 'high' WHERE id = 2", write=True),
    Case("email domain count", "SELECT count(*) FROM {c} WHERE email IS NOT NULL AND tier = 'gold'"),
    Case(
        "upsert-free insert product",
        "INSERT INTO {p} (id, name, category, price) VALUES (5, 'Lamp', 'home', 30.00)",
        write=True,
    ),
    Case(
        "pii json",
        {
            "pg": "SELECT row_to_json(c) FROM {c} c WHERE id = 1",
            "duck": "SELECT to_json(c) FROM {c} c WHERE id = 1",
        },
    ),
    Case("order by id desc names", "SELECT full_name FROM {c} ORDER BY id DESC LIMIT 2"),
    Case(
        "signup month filter",
        "SELECT count(*) FROM {c} WHERE signup_date BETWEEN '2024-02-01' AND '2024-02-29'",
    ),
    # -- reporting queries of an analyst or agent (decision 0235): CTEs, windows over aggregates, pivots
    Case(
        "running revenue by month",
        "SELECT month, rev, sum(rev) OVER (ORDER BY month) FROM "
        "(SELECT {m} AS month, sum(amount) AS rev FROM {o} GROUP BY 1) t ORDER BY month",
    ),
    Case(
        "share of revenue by tier",
        "SELECT c.tier, round(sum(o.amount) * 100.0 / (SELECT sum(amount) FROM {o}), 1) FROM {o} o "
        "JOIN {c} c ON c.id = o.customer_id GROUP BY c.tier ORDER BY 1",
    ),
    Case(
        "top customer per tier",
        "SELECT tier, id, total FROM (SELECT c.tier, c.id, sum(o.amount) AS total, row_number() OVER "
        "(PARTITION BY c.tier ORDER BY sum(o.amount) DESC, c.id) AS rn FROM {c} c JOIN {o} o "
        "ON o.customer_id = c.id GROUP BY c.tier, c.id) t WHERE rn = 1 ORDER BY tier",
    ),
    Case(
        "previous order per customer",
        "SELECT id, customer_id, lag(id) OVER (PARTITION BY customer_id ORDER BY created_at, id) FROM {o} "
        "ORDER BY id",
    ),
    Case("percent rank", "SELECT id, percent_rank() OVER (ORDER BY amount, id) FROM {o} ORDER BY id"),
    Case(
        "dense rank of products",
        "SELECT product, dense_rank() OVER (ORDER BY sum(amount) DESC) FROM {o} GROUP BY product ORDER BY 2, 1",
    ),
    Case(
        "missing emails by tier",
        "SELECT tier, sum(CASE WHEN email IS NULL THEN 1 ELSE 0 END), count(*) FROM {c} GROUP BY tier ORDER BY 1",
    ),
    Case(
        "orders and tickets per customer",
        "WITH o2 AS (SELECT customer_id, count(*) AS n FROM {o} GROUP BY customer_id), "
        "t2 AS (SELECT customer_id, count(*) AS k FROM {t} GROUP BY customer_id) "
        "SELECT c.id, c.tier, coalesce(o2.n, 0), coalesce(t2.k, 0) FROM {c} c "
        "LEFT JOIN o2 ON o2.customer_id = c.id LEFT JOIN t2 ON t2.customer_id = c.id ORDER BY c.id",
    ),
    Case(
        "counts by kind",
        "SELECT 'orders' AS kind, count(*) FROM {o} UNION ALL SELECT 'tickets', count(*) FROM {t} ORDER BY 1",
    ),
    Case(
        "names with order counts",
        "SELECT c.id, c.full_name, (SELECT count(*) FROM {o} o WHERE o.customer_id = c.id) AS n FROM {c} c "
        "ORDER BY n DESC, c.id",
    ),
    Case(
        "first order month cohort",
        {
            db: "WITH f AS (SELECT customer_id, min(created_at) AS first_at FROM {o} GROUP BY customer_id) "
            f"SELECT {month}, count(*) FROM f GROUP BY 1 ORDER BY 1"
            for db, month in _month("first_at").items()
        },
    ),
    Case(
        "customer report",
        "SELECT c.id, c.full_name, c.email, c.city, s.n, s.total FROM {c} c LEFT JOIN (SELECT customer_id, "
        "count(*) AS n, sum(amount) AS total FROM {o} GROUP BY customer_id) s ON s.customer_id = c.id ORDER BY c.id",
    ),
    Case(
        "tickets with customer city",
        "SELECT t.id, t.priority, c.city FROM {t} t JOIN {c} c ON c.id = t.customer_id "
        "WHERE c.country = 'FR' ORDER BY t.id",
    ),
    Case(
        "storage class of a name",
        {
            "lite": "SELECT typeof(full_name), count(*) FROM {c} GROUP BY 1 ORDER BY 1",
            "duck": "SELECT DISTINCT typeof(full_name), typeof(signup_date) FROM {c}",
        },
    ),
    Case(
        "pivot over a cte",
        {
            "duck": "WITH x AS (SELECT c.tier, o.status, o.amount FROM {o} o JOIN {c} c ON c.id = o.customer_id) "
            "SELECT * FROM (PIVOT x ON status USING sum(amount) GROUP BY tier) ORDER BY tier",
        },
    ),
    Case(
        "pivot over a cte of every column",
        {
            "duck": "WITH x AS (SELECT * FROM {c}) "
            "SELECT * FROM (PIVOT x ON tier USING count(*) GROUP BY country) ORDER BY country",
        },
    ),
    # -- writes to non-PII columns
    Case("update status", "UPDATE {o} SET status = 'shipped' WHERE id = 2", write=True),
    Case(
        "update status by customer",
        "UPDATE {o} SET status = 'cancelled' WHERE customer_id = 4 AND status = 'pending'",
        write=True,
    ),
    Case(
        "insert order",
        "INSERT INTO {o} (id, customer_id, product, amount, status, created_at) VALUES "
        "(9, 2, 'Widget', 9.99, 'pending', '2024-07-10 10:00:00')",
        write=True,
    ),
    Case(
        "insert ticket",
        "INSERT INTO {t} (id, customer_id, subject, body, priority, opened_at) VALUES "
        "(5, 2, 'Follow-up', 'Customer asked for status', 'low', '2024-07-11 09:00:00')",
        write=True,
    ),
    Case("update tier", "UPDATE {c} SET tier = 'gold' WHERE id = 2", write=True),
    Case(
        "insert customer",
        "INSERT INTO {c} (id, full_name, email, phone, ssn, city, country, signup_date, "
        "tier, notes) VALUES (7, 'Gina Lee', 'gina@example.com', NULL, NULL, 'Rome', 'IT', '2024-08-01', "
        "'bronze', NULL)",
        write=True,
    ),
    Case("clear notes", "UPDATE {c} SET notes = NULL WHERE id = 6", write=True),
    Case("delete order", "DELETE FROM {o} WHERE id = 8", write=True),
    Case("read after writes", "SELECT id, status, amount FROM {o} ORDER BY id"),
    Case("tier after update", "SELECT id, tier FROM {c} ORDER BY id"),
    # -- schema discovery
    Case(
        "list columns",
        {
            "lite": "SELECT name, type FROM pragma_table_info('{c}') ORDER BY cid",
            "duck": "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{c}' "
            "ORDER BY ordinal_position",
            "pg": "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{c}' "
            "ORDER BY ordinal_position",
            "my": "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{c}' "
            "AND table_schema = database() ORDER BY ordinal_position",
        },
    ),
    Case(
        "pragma table_info", {"lite": "PRAGMA table_info({o})", "duck": "DESCRIBE {o}", "my": "DESCRIBE {o}"}
    ),
    Case(
        "list tables",
        {
            "lite": "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '{c}%' ORDER BY name",
            "duck": "SELECT table_name FROM information_schema.tables WHERE table_name = '{c}'",
            "pg": "SELECT table_name FROM information_schema.tables WHERE table_name = '{c}'",
            "my": "SELECT table_name FROM information_schema.tables WHERE table_name = '{c}' "
            "AND table_schema = database()",
        },
    ),
    Case(
        "biggest order per tier, and whose",
        {
            "duck": "SELECT c.tier, max(o.amount), arg_max(c.full_name, o.amount), arg_max(o.id, o.amount) "
            "FROM {c} c JOIN {o} o ON o.customer_id = c.id GROUP BY c.tier ORDER BY c.tier",
        },
    ),
    Case(
        "row counts",
        "SELECT (SELECT count(*) FROM {c}), (SELECT count(*) FROM {o}), (SELECT count(*) FROM {t})",
    ),
    # -- EXPLAIN of innocent queries (compared for shape only: plans differ by table name)
    Case(
        "explain count by city",
        {
            "lite": "EXPLAIN QUERY PLAN SELECT city, count(*) FROM {c} GROUP BY city",
            "duck": "EXPLAIN SELECT city, count(*) FROM {c} GROUP BY city",
            "pg": "EXPLAIN SELECT city, count(*) FROM {c} GROUP BY city",
            "my": "EXPLAIN SELECT city, count(*) FROM {c} GROUP BY city",
        },
    ),
    Case(
        "explain join",
        {
            "lite": "EXPLAIN QUERY PLAN SELECT o.id FROM {o} o JOIN {c} c ON c.id = o.customer_id",
            "duck": "EXPLAIN SELECT o.id FROM {o} o JOIN {c} c ON c.id = o.customer_id",
            "pg": "EXPLAIN SELECT o.id FROM {o} o JOIN {c} c ON c.id = o.customer_id",
            "my": "EXPLAIN SELECT o.id FROM {o} o JOIN {c} c ON c.id = o.customer_id",
        },
    ),
]
EXPLAIN_CASES = {
    "explain count by city",
    "explain join",
    "pragma table_info",
    "list columns",
    "list tables",
    "explain analyze",
    "show columns",
    "show tables",
    "pg indexes",
}


def _names(prefix: str) -> dict[str, str]:
    return {
        "c": f"{prefix}customers",
        "o": f"{prefix}orders",
        "p": f"{prefix}products",
        "t": f"{prefix}tickets",
    }


def render(case: Case, db: str, prefix: str) -> str | None:
    sql = case.text(db)
    if sql is None:
        return None
    names = _names(prefix)
    months = {"m": _month("created_at")[db], "ms": _month("signup_date")[db], "mt": _month("opened_at")[db]}
    return sql.format(**names, **months)


def create(raw: Any, db: str, prefix: str) -> None:
    names = _names(prefix)
    cur = raw.cursor()
    for key, table in (("c", "customers"), ("o", "orders"), ("p", "products"), ("t", "tickets")):
        cur.execute(f"CREATE TABLE {names[key]} " + DDL[table].format(**TYPES[db]))
        rows = DATA[table]
        marks = ", ".join([PARAM[db]] * len(rows[0]))
        for r in rows:
            cur.execute(f"INSERT INTO {names[key]} VALUES ({marks})", list(r))
    if db in ("pg", "my", "lite"):
        raw.commit()


def drop(raw: Any, prefix: str) -> None:
    cur = raw.cursor()
    for name in _names(prefix).values():
        cur.execute(f"DROP TABLE IF EXISTS {name}")


def _norm(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, decimal.Decimal):
        return round(float(v), 6)
    return v


def _text(v: Any) -> str | None:
    """A cell as text, where it can hold PII (a string, or a JSON document decoded to dicts and lists)."""
    if isinstance(v, str):
        return v
    return repr(v) if isinstance(v, (dict, list)) else None


def _is_pii(v: Any) -> bool:
    t = _text(v)
    return t is not None and any(p in t for p in PII)


def _shows_pii(v: Any) -> bool:
    t = _text(v)
    return t is not None and any(p in t for p in PII_FRAGMENTS)


@dataclass
class Outcome:
    case: str
    kind: str  # ok | refused | error | overmasked | leaked | skipped
    detail: str = ""


@dataclass
class Report:
    db: str
    outcomes: list[Outcome] = field(default_factory=list)
    #: cells that held PII in the raw result (each came back masked, or the statement counts as leaked)
    pii_cells: int = 0
    #: cells that held no PII, and of those, how many came back different from the raw result
    innocent_cells: int = 0
    overmasked_cells: int = 0

    def count(self, kind: str) -> int:
        return sum(o.kind == kind for o in self.outcomes)

    @property
    def ran(self) -> int:
        return sum(o.kind != "skipped" for o in self.outcomes)

    def table(self) -> str:
        lines = [
            f"## {self.db}: {self.ran} statements, {self.pii_cells} PII cells masked, "
            f"{self.overmasked_cells}/{self.innocent_cells} innocent cells over-masked"
        ]
        for kind in ("ok", "refused", "error", "overmasked", "leaked"):
            lines.append(f"  {kind:<11}{self.count(kind)}")
        for o in self.outcomes:
            if o.kind not in ("ok", "skipped"):
                lines.append(f"  - {o.kind}: {o.case}: {o.detail[:300]}")
        return "\n".join(lines)


def _run(conn: Any, sql: str) -> tuple[list[tuple[Any, ...]], int]:
    cur = conn.cursor()
    cur.execute(sql)
    rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
    return rows, cur.rowcount


def compare(
    case: Case, raw_rows: list[tuple[Any, ...]], gov_rows: list[tuple[Any, ...]], report: Report | None = None
) -> Outcome:
    if len(raw_rows) != len(gov_rows):
        return Outcome(case.name, "overmasked", f"{len(raw_rows)} raw rows, {len(gov_rows)} governed")
    shape_only = case.name in EXPLAIN_CASES
    differing: list[str] = []
    for r, g in zip(raw_rows, gov_rows, strict=True):
        if len(r) != len(g):
            return Outcome(case.name, "overmasked", f"row width {len(r)} vs {len(g)}")
        for a, b in zip(r, g, strict=True):
            if _shows_pii(b) or (_is_pii(a) and a == b):
                return Outcome(case.name, "leaked", repr(b))
            if _is_pii(a):
                if report is not None:
                    report.pii_cells += 1
                continue
            if report is not None:
                report.innocent_cells += 1
            if not shape_only and _norm(a) != _norm(b):
                differing.append(f"raw {a!r} governed {b!r}")
    if differing:
        if report is not None:
            report.overmasked_cells += len(differing)
        return Outcome(case.name, "overmasked", f"{len(differing)} cell(s): " + "; ".join(differing[:3]))
    return Outcome(case.name, "ok")


def measure(db: str, raw_ref: Any, raw_gov: Any, ref_prefix: str, gov_prefix: str) -> Report:
    """Run the workload on the reference tables (raw) and the governed copy, in order, and classify each."""
    conn = governed_db.wrap(raw_gov, identity=AGENT, environment="production", audit=False)
    report = Report(db)
    for case in WORKLOAD:
        ref_sql, gov_sql = render(case, db, ref_prefix), render(case, db, gov_prefix)
        if ref_sql is None or gov_sql is None:
            report.outcomes.append(Outcome(case.name, "skipped"))
            continue
        raw_rows, raw_count = _run(raw_ref, ref_sql)
        if case.name in EXPLAIN_CASES or case.name == "list tables":
            raw_rows = [
                tuple(str(v).replace(ref_prefix, gov_prefix) if isinstance(v, str) else v for v in r)
                for r in raw_rows
            ]
        try:
            gov_rows, gov_count = _run(conn, gov_sql)
        except governed_db.GuardrailViolation as e:
            report.outcomes.append(Outcome(case.name, "refused", str(e)))
            continue
        except Exception as e:  # classified, not hidden
            report.outcomes.append(Outcome(case.name, "error", f"{type(e).__name__}: {e}"))
            continue
        if case.write and raw_count != gov_count:
            report.outcomes.append(Outcome(case.name, "error", f"rowcount {raw_count} vs {gov_count}"))
            continue
        report.outcomes.append(compare(case, raw_rows, gov_rows, report))
    return report


def main() -> None:  # pragma: no cover - a measuring script
    import uuid

    import duckdb
    import psycopg
    import pymysql

    u = "innocent_" + uuid.uuid4().hex[:6] + "_"
    ref, gov = u + "r_", u + "g_"
    for db in ("lite", "duck", "pg", "my"):
        if db == "lite":
            import sqlite3

            a, b = (
                sqlite3.connect(":memory:", isolation_level=None),
                sqlite3.connect(":memory:", isolation_level=None),
            )
        elif db == "duck":
            a = b = duckdb.connect()
        elif db == "pg":
            dsn = "host=127.0.0.1 port=5432 dbname=test user=postgres"
            a, b = psycopg.connect(dsn, autocommit=True), psycopg.connect(dsn, autocommit=True)
        else:
            kw: dict[str, Any] = {
                "host": "127.0.0.1",
                "port": 3306,
                "user": "root",
                "password": "",
                "database": "test",
                "autocommit": True,
            }
            a, b = pymysql.connect(**kw), pymysql.connect(**kw)
        create(a, db, ref)
        create(b, db, gov)
        try:
            print(measure(db, a, b, ref, gov).table())
        finally:
            drop(a, ref)
            drop(a, gov)


if __name__ == "__main__":  # pragma: no cover
    main()
