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

import datetime
import decimal
from dataclasses import dataclass, field
from typing import Any

import governed_db
from tests.conftest import MYSQL_KW, PG_DSN

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

# a profile per customer but the last (innocent10): PII of every other kind (date of birth, salary, address)
PROFILES = [
    (1, "1985-04-12", "85250.00", "12 Rue de Rivoli, 75001 Paris", "consumer", 1),
    (2, "1990-11-02", "62310.50", "4 Place Bellecour, 69002 Lyon", "consumer", 0),
    (3, "1978-07-23", "118400.00", "Unter den Linden 5, 10117 Berlin", "business", 1),
    (4, "2000-01-30", "41730.00", "221B Baker Street, London NW1 6XE", "consumer", 1),
    (5, "1969-09-09", "99120.00", "8 Avenue Foch, 75116 Paris", "business", 0),
]
# order lines: (id, order_id, product_id, qty, unit_price)
ITEMS = [
    (1, 1, 1, 2, "9.99"),
    (2, 2, 2, 1, "24.50"),
    (3, 3, 3, 1, "15.00"),
    (4, 4, 4, 2, "4.25"),
    (5, 5, 1, 1, "9.99"),
    (6, 6, 2, 2, "24.50"),
    (7, 7, 3, 2, "15.00"),
    (8, 8, 4, 1, "4.25"),
    (9, 1, 4, 1, "4.25"),
]

# every PII string stored: a cell containing one of these is a PII cell and must come back masked
PII = sorted(
    {str(v) for r in CUSTOMERS for v in r[1:5] if v}
    | {"+1 415 555 0177", "+1 415 555 0101", "carol.white@example.net", "Gina Lee", "gina@example.com"}
    | {str(v) for r in PROFILES for v in r[1:4]},
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
    "Rivoli",
    "Bellecour",
    "Linden",
    "Baker Street",
    "Foch",
)
# stored PII that a driver returns as a number or a date (salaries, dates of birth): such a raw cell is a PII cell
PII_VALUES = {round(float(r[2]), 6) for r in PROFILES} | {datetime.date.fromisoformat(r[1]) for r in PROFILES}

DDL = {
    "customers": "(id int primary key, full_name {s}, email {s}, phone {s}, ssn {s}, city {s}, country {s}, "
    "signup_date date, tier {s}, notes {s})",
    "products": "(id int primary key, name {s}, category {s}, price decimal(10,2))",
    "orders": "(id int primary key, customer_id int, product {s}, amount decimal(10,2), status {s}, "
    "created_at {ts})",
    "tickets": "(id int primary key, customer_id int, subject {s}, body {s}, priority {s}, opened_at {ts})",
    "profiles": "(customer_id int primary key, date_of_birth date, salary decimal(10,2), address {s}, segment {s}, "
    "opt_in int)",
    "items": "(id int primary key, order_id int, product_id int, qty int, unit_price decimal(10,2))",
}
DATA = {
    "customers": CUSTOMERS,
    "orders": ORDERS,
    "products": PRODUCTS,
    "tickets": TICKETS,
    "profiles": PROFILES,
    "items": ITEMS,
}
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
# -- an analytics agent's reports over customers -> orders -> items, products and profiles (innocent10)
_DOW = {
    "lite": "CAST(strftime('%w', created_at) AS INTEGER)",
    "duck": "dayofweek(created_at)",
    "pg": "extract(dow FROM created_at)::int",
    "my": "DAYOFWEEK(created_at) - 1",
}
_HOUR = {
    "lite": "CAST(strftime('%H', created_at) AS INTEGER)",
    "duck": "hour(created_at)",
    "pg": "extract(hour FROM created_at)::int",
    "my": "HOUR(created_at)",
}
_QUARTER = {
    "lite": "(CAST(strftime('%m', created_at) AS INTEGER) + 2) / 3",
    "duck": "quarter(created_at)",
    "pg": "extract(quarter FROM created_at)::int",
    "my": "QUARTER(created_at)",
}
_MONTH_START = {
    "lite": "date(created_at, 'start of month')",
    "duck": "CAST(date_trunc('month', created_at) AS DATE)",
    "pg": "date_trunc('month', created_at)::date",
    "my": "CAST(DATE_FORMAT(created_at, '%Y-%m-01') AS DATE)",
}
_TENURE = {
    "lite": "CAST(julianday('2024-12-31') - julianday(c.signup_date) AS INTEGER)",
    "duck": "DATE '2024-12-31' - c.signup_date",
    "pg": "DATE '2024-12-31' - c.signup_date",
    "my": "DATEDIFF('2024-12-31', c.signup_date)",
}
_CONCAT = {
    "lite": "category || ':' || name",
    "duck": "concat(category, ':', name)",
    "pg": "concat(category, ':', name)",
    "my": "CONCAT(category, ':', name)",
}
_LAST30 = {
    "lite": "created_at >= datetime((SELECT max(created_at) FROM {o}), '-30 days')",
    "duck": "created_at >= (SELECT max(created_at) FROM {o}) - INTERVAL 30 DAY",
    "pg": "created_at >= (SELECT max(created_at) FROM {o}) - INTERVAL '30 days'",
    "my": "created_at >= (SELECT max(created_at) FROM {o} x) - INTERVAL 30 DAY",
}
_GAP = {
    "lite": "julianday(created_at) - julianday(prev)",
    "duck": "date_diff('day', prev, created_at)",
    "pg": "extract(epoch FROM created_at - prev) / 86400",
    "my": "TIMESTAMPDIFF(DAY, prev, created_at)",
}


def _each(template: str, **parts: dict[str, str]) -> dict[str, str]:
    """One statement per database, with each named part written in that database's dialect."""
    return {
        db: template.format(**{k: v[db] for k, v in parts.items()}) for db in ("lite", "duck", "pg", "my")
    }


AGENT_REPORTS: list[Case] = [
    # top-N
    Case(
        "top 3 customers by revenue",
        "SELECT customer_id, sum(amount) AS rev FROM {o} GROUP BY customer_id ORDER BY rev DESC, customer_id LIMIT 3",
    ),
    Case(
        "top customers with contact",
        "SELECT c.id, c.full_name, c.email, s.rev FROM {c} c JOIN (SELECT customer_id, sum(amount) AS rev FROM {o} "
        "GROUP BY customer_id) s ON s.customer_id = c.id ORDER BY s.rev DESC, c.id LIMIT 3",
    ),
    Case(
        "top products by quantity",
        "SELECT p.name, sum(i.qty) AS q FROM {i} i JOIN {p} p ON p.id = i.product_id GROUP BY p.name "
        "ORDER BY q DESC, p.name LIMIT 2",
    ),
    Case(
        "top cities",
        "SELECT city, count(*) AS n FROM {c} WHERE city IS NOT NULL GROUP BY city ORDER BY n DESC, city LIMIT 2",
    ),
    Case(
        "largest orders with email",
        "SELECT o.id, o.amount, c.email FROM {o} o JOIN {c} c ON c.id = o.customer_id "
        "ORDER BY o.amount DESC, o.id LIMIT 3",
    ),
    Case(
        "bottom products by revenue",
        "SELECT product, sum(amount) FROM {o} GROUP BY product ORDER BY 2, 1 LIMIT 2",
    ),
    # cohorts, retention, funnels
    Case(
        "signup cohort by order month",
        "SELECT {ms} AS cohort, {m} AS month, count(DISTINCT o.customer_id) FROM {c} c JOIN {o} o "
        "ON o.customer_id = c.id GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    Case(
        "repeat customers",
        "SELECT count(*) FROM (SELECT customer_id FROM {o} GROUP BY customer_id HAVING count(*) > 1) r",
    ),
    Case(
        "active in two months",
        "WITH m AS (SELECT DISTINCT customer_id, {m} AS month FROM {o}) "
        "SELECT customer_id, count(*) FROM m GROUP BY customer_id HAVING count(*) >= 2 ORDER BY 1",
    ),
    Case(
        "first order per customer",
        "SELECT c.id, c.tier, min(o.created_at) FROM {c} c JOIN {o} o ON o.customer_id = c.id "
        "GROUP BY c.id, c.tier ORDER BY c.id",
    ),
    Case(
        "cohort size by tier and month",
        "SELECT tier, {ms}, count(*) FROM {c} GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    Case(
        "status funnel",
        "SELECT count(*), sum(CASE WHEN status IN ('shipped', 'refunded') THEN 1 ELSE 0 END), "
        "sum(CASE WHEN status = 'refunded' THEN 1 ELSE 0 END) FROM {o}",
    ),
    Case(
        "signup order ticket funnel",
        "SELECT (SELECT count(*) FROM {c}), (SELECT count(DISTINCT customer_id) FROM {o}), "
        "(SELECT count(DISTINCT customer_id) FROM {t})",
    ),
    Case(
        "conversion by tier",
        "SELECT c.tier, count(DISTINCT c.id), count(DISTINCT o.customer_id) FROM {c} c LEFT JOIN {o} o "
        "ON o.customer_id = c.id GROUP BY c.tier ORDER BY 1",
    ),
    # revenue over time
    Case(
        "revenue by month and status",
        "SELECT {m}, status, sum(amount) FROM {o} GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    Case(
        "month over month",
        "WITH r AS (SELECT {m} AS month, sum(amount) AS rev FROM {o} GROUP BY 1) "
        "SELECT month, rev, rev - lag(rev) OVER (ORDER BY month) FROM r ORDER BY month",
    ),
    Case(
        "shipped revenue by month",
        "SELECT {m}, sum(amount) FROM {o} WHERE status = 'shipped' GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "line revenue by month",
        "SELECT {m}, sum(i.qty * i.unit_price) FROM {o} o JOIN {i} i ON i.order_id = o.id GROUP BY 1 ORDER BY 1",
    ),
    Case("orders by weekday", _each("SELECT {d}, count(*) FROM {{o}} GROUP BY 1 ORDER BY 1", d=_DOW)),
    Case(
        "orders by hour", _each("SELECT {h}, count(*), sum(amount) FROM {{o}} GROUP BY 1 ORDER BY 1", h=_HOUR)
    ),
    Case("orders by quarter", _each("SELECT {q}, count(*) FROM {{o}} GROUP BY 1 ORDER BY 1", q=_QUARTER)),
    Case(
        "month start buckets",
        _each("SELECT {s}, sum(amount) FROM {{o}} GROUP BY 1 ORDER BY 1", s=_MONTH_START),
    ),
    Case(
        "last 30 days",
        {db: "SELECT id, amount FROM {o} WHERE " + w + " ORDER BY id" for db, w in _LAST30.items()},
    ),
    Case(
        "days between orders",
        _each(
            "SELECT id, {g} FROM (SELECT id, created_at, lag(created_at) OVER (PARTITION BY customer_id "
            "ORDER BY created_at) AS prev FROM {{o}}) x ORDER BY id",
            g=_GAP,
        ),
    ),
    # customers -> orders -> items
    Case(
        "customer order lines",
        "SELECT c.id, c.full_name, o.id, p.name, i.qty FROM {c} c JOIN {o} o ON o.customer_id = c.id "
        "JOIN {i} i ON i.order_id = o.id JOIN {p} p ON p.id = i.product_id ORDER BY o.id, i.id",
    ),
    Case(
        "category revenue by country",
        "SELECT c.country, p.category, sum(i.qty * i.unit_price) FROM {c} c JOIN {o} o ON o.customer_id = c.id "
        "JOIN {i} i ON i.order_id = o.id JOIN {p} p ON p.id = i.product_id GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    Case(
        "basket size by tier",
        "SELECT c.tier, avg(b.n) FROM {c} c JOIN (SELECT o.customer_id, o.id, sum(i.qty) AS n FROM {o} o "
        "JOIN {i} i ON i.order_id = o.id GROUP BY o.customer_id, o.id) b ON b.customer_id = c.id "
        "GROUP BY c.tier ORDER BY 1",
    ),
    Case(
        "lines per order",
        "SELECT o.id, count(i.id), sum(i.qty) FROM {o} o LEFT JOIN {i} i ON i.order_id = o.id GROUP BY o.id "
        "ORDER BY o.id",
    ),
    # CTEs
    Case(
        "lifetime value buckets",
        "WITH ltv AS (SELECT customer_id, sum(amount) AS v FROM {o} GROUP BY customer_id) "
        "SELECT CASE WHEN v >= 40 THEN 'high' WHEN v >= 15 THEN 'mid' ELSE 'low' END AS b, count(*) FROM ltv "
        "GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "gold customers with totals",
        "WITH t AS (SELECT customer_id, sum(amount) AS total FROM {o} GROUP BY customer_id), "
        "g AS (SELECT id, full_name, email FROM {c} WHERE tier = 'gold') "
        "SELECT g.id, g.full_name, g.email, t.total FROM g LEFT JOIN t ON t.customer_id = g.id ORDER BY g.id",
    ),
    Case(
        "recursive id series",
        "WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 8) "
        "SELECT d.n, count(o.id) FROM d LEFT JOIN {o} o ON o.customer_id = d.n GROUP BY d.n ORDER BY d.n",
    ),
    # windows
    Case(
        "order sequence per customer",
        "SELECT id, customer_id, row_number() OVER (PARTITION BY customer_id ORDER BY created_at, id) FROM {o} "
        "ORDER BY id",
    ),
    Case(
        "cumulative spend per customer",
        "SELECT id, sum(amount) OVER (PARTITION BY customer_id ORDER BY created_at, id) FROM {o} ORDER BY id",
    ),
    Case(
        "moving average",
        "SELECT id, avg(amount) OVER (ORDER BY created_at ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM {o} "
        "ORDER BY id",
    ),
    Case(
        "first product per customer",
        "SELECT DISTINCT customer_id, first_value(product) OVER (PARTITION BY customer_id ORDER BY created_at) "
        "FROM {o} ORDER BY 1",
    ),
    Case(
        "spend rank with names",
        "SELECT c.id, c.full_name, s.rev, rank() OVER (ORDER BY s.rev DESC) AS r FROM {c} c JOIN "
        "(SELECT customer_id, sum(amount) AS rev FROM {o} GROUP BY customer_id) s ON s.customer_id = c.id "
        "ORDER BY r, c.id",
    ),
    Case(
        "next order date",
        "SELECT id, lead(created_at) OVER (PARTITION BY customer_id ORDER BY created_at) FROM {o} ORDER BY id",
    ),
    Case(
        "share within status",
        "SELECT id, round(amount * 100.0 / sum(amount) OVER (PARTITION BY status), 2) FROM {o} ORDER BY id",
    ),
    Case(
        "tier sizes beside names",
        "SELECT id, full_name, tier, count(*) OVER (PARTITION BY tier) FROM {c} ORDER BY id",
    ),
    # CASE buckets, dates and strings over non-PII columns
    Case(
        "price bands",
        "SELECT CASE WHEN price < 10 THEN 'budget' WHEN price < 20 THEN 'mid' ELSE 'premium' END, count(*) "
        "FROM {p} GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "early and late signups",
        "SELECT CASE WHEN signup_date < '2024-03-01' THEN 'early' ELSE 'late' END AS k, count(*) FROM {c} "
        "GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "priority weight",
        "SELECT sum(CASE priority WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END) FROM {t}",
    ),
    Case("tenure with names", _each("SELECT c.id, c.full_name, {d} FROM {{c}} c ORDER BY c.id", d=_TENURE)),
    Case(
        "product name parts",
        "SELECT upper(name), substr(name, 1, 3), length(name), lower(category) FROM {p} ORDER BY id",
    ),
    Case("category labels", _each("SELECT {x} FROM {{p}} ORDER BY id", x=_CONCAT)),
    Case("status like", "SELECT id FROM {o} WHERE status LIKE 'ship%' ORDER BY id"),
    Case("distinct trimmed status", "SELECT DISTINCT trim(upper(status)) FROM {o} ORDER BY 1"),
    Case(
        "city initials",
        "SELECT substr(city, 1, 1), count(*) FROM {c} WHERE city IS NOT NULL GROUP BY 1 ORDER BY 1",
    ),
    Case("replace in subject", "SELECT id, replace(subject, ' ', '_') FROM {t} ORDER BY id"),
    # EXISTS / IN
    Case(
        "customers with orders and tickets",
        "SELECT c.id FROM {c} c WHERE EXISTS (SELECT 1 FROM {o} o WHERE o.customer_id = c.id) "
        "AND EXISTS (SELECT 1 FROM {t} t WHERE t.customer_id = c.id) ORDER BY c.id",
    ),
    Case(
        "names without tickets",
        "SELECT c.id, c.full_name FROM {c} c WHERE NOT EXISTS (SELECT 1 FROM {t} t WHERE t.customer_id = c.id) "
        "ORDER BY c.id",
    ),
    Case(
        "orders of tool products",
        "SELECT id FROM {o} WHERE product IN (SELECT name FROM {p} WHERE category = 'tools') ORDER BY id",
    ),
    Case(
        "never shipped",
        "SELECT id FROM {c} WHERE id NOT IN (SELECT customer_id FROM {o} WHERE status = 'shipped') ORDER BY id",
    ),
    Case(
        "emails of big spenders",
        "SELECT c.id, c.email FROM {c} c WHERE EXISTS (SELECT 1 FROM {o} o WHERE o.customer_id = c.id "
        "AND o.amount > 20) ORDER BY c.id",
    ),
    Case(
        "repeat buyers by id list",
        "SELECT id, full_name, phone FROM {c} WHERE id IN (SELECT customer_id FROM {o} GROUP BY customer_id "
        "HAVING count(*) >= 2) ORDER BY id",
    ),
    # LEFT JOIN + COALESCE, HAVING
    Case(
        "lifetime value coalesce",
        "SELECT c.id, COALESCE(sum(o.amount), 0) FROM {c} c LEFT JOIN {o} o ON o.customer_id = c.id "
        "GROUP BY c.id ORDER BY c.id",
    ),
    Case(
        "contacts with totals",
        "SELECT c.id, c.full_name, c.phone, COALESCE(s.total, 0) FROM {c} c LEFT JOIN (SELECT customer_id, "
        "sum(amount) AS total FROM {o} GROUP BY customer_id) s ON s.customer_id = c.id ORDER BY c.id",
    ),
    Case(
        "products never ordered",
        "SELECT p.name FROM {p} p LEFT JOIN {i} i ON i.product_id = p.id WHERE i.id IS NULL ORDER BY p.name",
    ),
    Case("tiers with several", "SELECT tier FROM {c} GROUP BY tier HAVING count(*) > 1 ORDER BY tier"),
    Case(
        "products sold twice",
        "SELECT product_id, sum(qty) FROM {i} GROUP BY product_id HAVING sum(qty) >= 3 ORDER BY 1",
    ),
    Case(
        "average per order safe division",
        "SELECT status, sum(amount) / NULLIF(count(*), 0) FROM {o} GROUP BY status ORDER BY 1",
    ),
    # percentiles, distinct, unions
    Case(
        "p90 amount",
        {
            "pg": "SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY amount) FROM {o}",
            "duck": "SELECT quantile_cont(amount, 0.9) FROM {o}",
            "my": "SELECT DISTINCT PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY amount) OVER () FROM {o}",
        },
    ),
    Case(
        "median by status",
        {
            "pg": "SELECT status, percentile_disc(0.5) WITHIN GROUP (ORDER BY amount) FROM {o} GROUP BY 1 ORDER BY 1",
            "duck": "SELECT status, quantile_disc(amount, 0.5) FROM {o} GROUP BY 1 ORDER BY 1",
        },
    ),
    Case(
        "quartiles",
        "SELECT q, min(amount), max(amount), count(*) FROM (SELECT amount, ntile(4) OVER (ORDER BY amount, id) "
        "AS q FROM {o}) x GROUP BY q ORDER BY q",
    ),
    Case(
        "distinct product categories ordered",
        "SELECT DISTINCT o.product, p.category FROM {o} o JOIN {p} p ON p.name = o.product ORDER BY 1",
    ),
    Case(
        "distinct products per customer",
        "SELECT customer_id, count(DISTINCT product) FROM {o} GROUP BY customer_id ORDER BY 1",
    ),
    Case(
        "countries with orders",
        "SELECT DISTINCT c.country FROM {c} c JOIN {o} o ON o.customer_id = c.id ORDER BY 1",
    ),
    Case(
        "kpi union",
        "SELECT 'revenue' AS k, sum(amount) AS v FROM {o} UNION ALL SELECT 'tickets', count(*) FROM {t} "
        "UNION ALL SELECT 'customers', count(*) FROM {c}",
    ),
    Case(
        "timeline of events",
        "SELECT customer_id, 'order' AS kind, created_at AS at FROM {o} UNION ALL "
        "SELECT customer_id, 'ticket', opened_at FROM {t} ORDER BY 3, 1, 2",
    ),
    Case(
        "rollup revenue",
        {
            "pg": "SELECT status, product, sum(amount) FROM {o} GROUP BY ROLLUP (status, product) "
            "ORDER BY 1 NULLS LAST, 2 NULLS LAST",
            "duck": "SELECT status, product, sum(amount) FROM {o} GROUP BY ROLLUP (status, product) "
            "ORDER BY 1 NULLS LAST, 2 NULLS LAST",
            "my": "SELECT status, sum(amount) FROM {o} GROUP BY status WITH ROLLUP",
        },
    ),
    # JSON aggregation of non-PII
    Case(
        "status counts as json",
        {
            "lite": "SELECT json_group_array(json_object('status', status, 'n', n)) FROM "
            "(SELECT status, count(*) AS n FROM {o} GROUP BY status ORDER BY status)",
            "duck": "SELECT to_json(list({{'status': status, 'n': n}} ORDER BY status)) FROM "
            "(SELECT status, count(*) AS n FROM {o} GROUP BY status)",
            "pg": "SELECT json_agg(json_build_object('status', status, 'n', n) ORDER BY status) FROM "
            "(SELECT status, count(*) AS n FROM {o} GROUP BY status) s",
            "my": "SELECT JSON_ARRAYAGG(JSON_OBJECT('status', status, 'n', n)) FROM "
            "(SELECT status, count(*) AS n FROM {o} GROUP BY status ORDER BY status) s",
        },
    ),
    Case(
        "order ids per customer as json",
        {
            "lite": "SELECT customer_id, json_group_array(id) FROM (SELECT customer_id, id FROM {o} ORDER BY id) "
            "GROUP BY customer_id ORDER BY 1",
            "duck": "SELECT customer_id, to_json(list(id ORDER BY id)) FROM {o} GROUP BY 1 ORDER BY 1",
            "pg": "SELECT customer_id, json_agg(id ORDER BY id)::text FROM {o} GROUP BY 1 ORDER BY 1",
            "my": "SELECT customer_id, JSON_ARRAYAGG(id) FROM (SELECT customer_id, id FROM {o} ORDER BY id) s "
            "GROUP BY 1 ORDER BY 1",
        },
    ),
    # schema discovery, EXPLAIN
    Case(
        "column count of customers",
        {
            "lite": "SELECT count(*) FROM pragma_table_info('{c}')",
            "duck": "SELECT count(*) FROM information_schema.columns WHERE table_name = '{c}'",
            "pg": "SELECT count(*) FROM information_schema.columns WHERE table_name = '{c}'",
            "my": "SELECT count(*) FROM information_schema.columns WHERE table_name = '{c}' "
            "AND table_schema = database()",
        },
    ),
    Case(
        "nullable columns of orders",
        {
            "lite": "SELECT name, \"notnull\", pk FROM pragma_table_info('{o}') ORDER BY cid",
            "duck": "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = '{o}' "
            "ORDER BY ordinal_position",
            "pg": "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = '{o}' "
            "ORDER BY ordinal_position",
            "my": "SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = '{o}' "
            "AND table_schema = database() ORDER BY ordinal_position",
        },
    ),
    Case(
        "primary key of customers",
        {
            "duck": "SELECT constraint_type FROM information_schema.table_constraints WHERE table_name = '{c}'",
            "pg": "SELECT constraint_type FROM information_schema.table_constraints WHERE table_name = '{c}' "
            "AND constraint_type = 'PRIMARY KEY'",
            "my": "SELECT constraint_type FROM information_schema.table_constraints WHERE table_name = '{c}' "
            "AND table_schema = database()",
        },
    ),
    Case(
        "explain top customers",
        {
            "lite": "EXPLAIN QUERY PLAN SELECT customer_id, sum(amount) FROM {o} GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
            "duck": "EXPLAIN SELECT customer_id, sum(amount) FROM {o} GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
            "pg": "EXPLAIN SELECT customer_id, sum(amount) FROM {o} GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
            "my": "EXPLAIN SELECT customer_id, sum(amount) FROM {o} GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
        },
    ),
    Case(
        "explain customer report",
        {
            "lite": "EXPLAIN QUERY PLAN SELECT c.id, c.full_name, sum(o.amount) FROM {c} c JOIN {o} o "
            "ON o.customer_id = c.id WHERE c.tier = 'gold' GROUP BY c.id",
            "duck": "EXPLAIN SELECT c.tier, count(*) FROM {c} c JOIN {o} o ON o.customer_id = c.id GROUP BY 1",
            "pg": "EXPLAIN SELECT c.tier, count(*) FROM {c} c JOIN {o} o ON o.customer_id = c.id GROUP BY 1",
            "my": "EXPLAIN SELECT c.id, c.full_name FROM {c} c WHERE c.tier = 'gold'",
        },
    ),
    Case(
        "describe a report query",
        {
            "duck": "DESCRIBE SELECT c.id, c.full_name, c.email, o.amount FROM {c} c JOIN {o} o ON o.customer_id = c.id"
        },
    ),
    # PII read plainly, filtered, joined and sorted on non-PII columns
    Case(
        "gold contact list",
        "SELECT full_name, email, phone FROM {c} WHERE tier = 'gold' ORDER BY id",
    ),
    Case("ssn of french customers", "SELECT id, ssn FROM {c} WHERE country = 'FR' ORDER BY id"),
    Case(
        "profiles of french customers",
        "SELECT c.id, f.date_of_birth, f.salary, f.address FROM {c} c JOIN {f} f ON f.customer_id = c.id "
        "WHERE c.country = 'FR' ORDER BY c.id",
    ),
    Case("profile star", "SELECT * FROM {f} WHERE customer_id = 2"),
    Case("profiles by segment", "SELECT segment, count(*), sum(opt_in) FROM {f} GROUP BY segment ORDER BY 1"),
    Case("profiles present", "SELECT count(*), count(date_of_birth), count(salary) FROM {f}"),
    Case(
        "customers without profile",
        "SELECT c.id, c.full_name FROM {c} c LEFT JOIN {f} f ON f.customer_id = c.id WHERE f.customer_id IS NULL "
        "ORDER BY c.id",
    ),
    Case(
        "opted-in emails",
        "SELECT c.email, f.segment FROM {c} c JOIN {f} f ON f.customer_id = c.id WHERE f.opt_in = 1 "
        "ORDER BY c.signup_date",
    ),
    Case(
        "shipping labels",
        "SELECT o.id, c.full_name, f.address FROM {o} o JOIN {c} c ON c.id = o.customer_id "
        "LEFT JOIN {f} f ON f.customer_id = c.id WHERE o.status = 'pending' ORDER BY o.id",
    ),
    Case(
        "recent signups contact",
        "SELECT full_name, email, signup_date FROM {c} ORDER BY signup_date DESC, id LIMIT 3",
    ),
    Case(
        "business segment revenue",
        "SELECT f.segment, sum(o.amount) FROM {f} f JOIN {o} o ON o.customer_id = f.customer_id GROUP BY 1 "
        "ORDER BY 1",
    ),
    Case(
        "ticket reporters",
        "SELECT t.id, t.subject, c.full_name, c.email FROM {t} t JOIN {c} c ON c.id = t.customer_id "
        "WHERE t.priority IN ('high', 'medium') ORDER BY t.id",
    ),
]


def _only(sql: str, *dbs: str) -> dict[str, str]:
    """One statement, on the databases named (the others lack its syntax or function)."""
    return {db: sql for db in dbs}


#: more of an agent's reads (innocent round 10): PII selected plainly beside reports, windows, LATERAL, DISTINCT ON,
#: QUALIFY, JSON of non-PII columns, null tests of PII (a COALESCE of columns too, decision 0255)
AGENT_READS: list[Case] = [
    Case(
        "epoch seconds",
        {
            "pg": "SELECT id, extract(epoch FROM created_at)::bigint FROM {o} ORDER BY id",
            "duck": "SELECT id, epoch(created_at) FROM {o} ORDER BY id",
            "my": "SELECT id, UNIX_TIMESTAMP(created_at) FROM {o} ORDER BY id",
        },
    ),
    Case(
        "grouping sets",
        _only(
            (
                "SELECT status, product, count(*) FROM {o} GROUP BY GROUPING SETS ((status), (product)) ORDER BY "
                "1 NULLS LAST, 2 NULLS LAST"
            ),
            "pg",
            "duck",
        ),
    ),
    Case(
        "cube",
        _only(
            (
                "SELECT status, product, count(*) FROM {o} GROUP BY CUBE (status, product) ORDER BY 1 NULLS LAST,"
                " 2 NULLS LAST"
            ),
            "pg",
            "duck",
        ),
    ),
    Case(
        "unnest array",
        _only(
            "SELECT x, count(*) FROM {o}, unnest(ARRAY[status, product]) AS u(x) GROUP BY x ORDER BY x",
            "pg",
        ),
    ),
    Case(
        "array agg distinct",
        _only(
            "SELECT customer_id, array_agg(DISTINCT product ORDER BY product) FROM {o} GROUP BY 1 ORDER BY 1",
            "pg",
            "duck",
        ),
    ),
    Case(
        "total count for pagination",
        "SELECT id, full_name, email, count(*) OVER () AS total FROM {c} ORDER BY id LIMIT 2 OFFSET 2",
    ),
    Case(
        "printf amount",
        {
            "lite": "SELECT id, printf('%.1f', amount) FROM {o} ORDER BY id",
            "pg": "SELECT id, to_char(amount, 'FM990.0') FROM {o} ORDER BY id",
            "duck": "SELECT id, printf('%.1f', amount) FROM {o} ORDER BY id",
            "my": "SELECT id, FORMAT(amount, 1) FROM {o} ORDER BY id",
        },
    ),
    Case(
        "age of account",
        {
            "pg": "SELECT id, age(DATE '2024-12-31', signup_date)::text FROM {c} ORDER BY id",
            "duck": "SELECT id, date_diff('month', signup_date, DATE '2024-12-31') FROM {c} ORDER BY id",
            "my": "SELECT id, TIMESTAMPDIFF(MONTH, signup_date, '2024-12-31') FROM {c} ORDER BY id",
        },
    ),
    Case(
        "regexp on status",
        {
            "pg": "SELECT id FROM {o} WHERE status ~ '^(shipped|refunded)$' ORDER BY id",
            "duck": "SELECT id FROM {o} WHERE regexp_matches(status, '^(shipped|refunded)$') ORDER BY id",
            "my": "SELECT id FROM {o} WHERE status REGEXP '^(shipped|refunded)$' ORDER BY id",
        },
    ),
    Case(
        "split part city",
        {
            "pg": "SELECT id, split_part(subject, ' ', 1) FROM {t} ORDER BY id",
            "duck": "SELECT id, split_part(subject, ' ', 1) FROM {t} ORDER BY id",
            "my": "SELECT id, SUBSTRING_INDEX(subject, ' ', 1) FROM {t} ORDER BY id",
        },
    ),
    Case(
        "initcap position",
        {
            "pg": "SELECT initcap(status), position('i' IN status) FROM {o} ORDER BY id",
            "duck": "SELECT upper(status[1]) || status[2:], position('i' IN status) FROM {o} ORDER BY id",
            "my": "SELECT UPPER(status), LOCATE('i', status) FROM {o} ORDER BY id",
            "lite": "SELECT upper(status), instr(status, 'i') FROM {o} ORDER BY id",
        },
    ),
    Case(
        "range frame by date",
        {
            "pg": (
                "SELECT id, sum(amount) OVER (ORDER BY created_at RANGE BETWEEN INTERVAL '30 days' PRECEDING AND "
                "CURRENT ROW) FROM {o} ORDER BY id"
            ),
            "duck": (
                "SELECT id, sum(amount) OVER (ORDER BY created_at RANGE BETWEEN INTERVAL 30 DAY PRECEDING AND "
                "CURRENT ROW) FROM {o} ORDER BY id"
            ),
        },
    ),
    Case(
        "avg salary by segment",
        "SELECT segment, count(salary) FROM {f} GROUP BY segment ORDER BY 1",
    ),
    Case(
        "correlated not exists with contact",
        (
            "SELECT c.id, c.email, c.phone FROM {c} c WHERE NOT EXISTS (SELECT 1 FROM {o} o WHERE "
            "o.customer_id = c.id AND o.status = 'shipped') ORDER BY c.id"
        ),
    ),
    Case(
        "tickets with reporter and order count",
        (
            "SELECT t.id, c.full_name, (SELECT count(*) FROM {o} o WHERE o.customer_id = t.customer_id) FROM "
            "{t} t JOIN {c} c ON c.id = t.customer_id ORDER BY t.id"
        ),
    ),
    Case(
        "products with price rank",
        (
            "SELECT name, price, rank() OVER (PARTITION BY category ORDER BY price DESC) FROM {p} ORDER BY "
            "category, price DESC"
        ),
    ),
    Case(
        "revenue pivot case",
        (
            "SELECT customer_id, sum(CASE WHEN status = 'shipped' THEN amount ELSE 0 END) AS shipped, "
            "sum(CASE WHEN status = 'pending' THEN amount ELSE 0 END) AS pending FROM {o} GROUP BY "
            "customer_id ORDER BY 1"
        ),
    ),
    Case(
        "customers per city with names list len",
        _only(
            (
                "SELECT city, count(*) FROM {c} WHERE full_name IS NOT NULL GROUP BY city ORDER BY 2 DESC, 1 "
                "NULLS LAST"
            ),
            "pg",
            "duck",
            "lite",
        ),
    ),
    Case(
        "pii in cte filtered by window",
        _only(
            (
                "WITH r AS (SELECT c.id, c.full_name, c.email, sum(o.amount) AS total, rank() OVER (ORDER BY "
                "sum(o.amount) DESC) AS rk FROM {c} c JOIN {o} o ON o.customer_id = c.id GROUP BY c.id) SELECT "
                "id, full_name, email, total FROM r WHERE rk <= 3 ORDER BY rk, id"
            ),
            "pg",
        ),
    ),
    Case(
        "pii joined to ranked ids",
        (
            "WITH r AS (SELECT customer_id, sum(amount) AS total, rank() OVER (ORDER BY sum(amount) DESC) AS "
            "rk FROM {o} GROUP BY customer_id) SELECT c.id, c.full_name, c.email, r.total FROM r JOIN {c} c "
            "ON c.id = r.customer_id WHERE r.rk <= 3 ORDER BY r.rk, c.id"
        ),
    ),
    Case(
        "mysql group by id names with rollup",
        _only(
            "SELECT c.tier, count(*) FROM {c} c GROUP BY c.tier WITH ROLLUP",
            "my",
        ),
    ),
    Case(
        "information schema tables count",
        {
            "pg": "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '{c}'",
            "my": (
                "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '{c}' AND table_schema = "
                "database()"
            ),
            "duck": "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '{c}'",
        },
    ),
    Case(
        "pg stat user tables",
        _only(
            "SELECT n_live_tup >= 0 FROM pg_stat_user_tables WHERE relname = '{c}'",
            "pg",
        ),
    ),
    Case(
        "pg column comments",
        _only(
            (
                "SELECT a.attname FROM pg_attribute a JOIN pg_class k ON k.oid = a.attrelid WHERE k.relname = "
                "'{c}' AND a.attnum > 0 ORDER BY a.attnum"
            ),
            "pg",
        ),
    ),
    Case(
        "duck summarize non pii",
        _only(
            "SELECT column_name, column_type FROM (SUMMARIZE SELECT status, amount FROM {o}) ORDER BY 1",
            "duck",
        ),
    ),
    Case(
        "duckdb_columns",
        _only(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = '{c}' ORDER BY column_index",
            "duck",
        ),
    ),
    Case(
        "sqlite table_xinfo",
        _only(
            "SELECT name FROM pragma_table_xinfo('{c}') ORDER BY cid",
            "lite",
        ),
    ),
    Case(
        "sqlite index list",
        _only(
            "SELECT count(*) FROM pragma_index_list('{c}')",
            "lite",
        ),
    ),
    Case("reachable customers", "SELECT count(*) FROM {c} WHERE COALESCE(email, phone) IS NOT NULL"),
    Case(
        "unreachable by phone or note", "SELECT id FROM {c} WHERE COALESCE(phone, notes) IS NULL ORDER BY id"
    ),
    Case(
        "group by id only, name bare",
        _only(
            (
                "SELECT c.full_name, count(o.id) FROM {c} c JOIN {o} o ON o.customer_id = c.id GROUP BY c.id "
                "ORDER BY c.id"
            ),
            "lite",
            "pg",
            "my",
        ),
    ),
    Case(
        "email of top order",
        (
            "SELECT id, email FROM {c} WHERE id = (SELECT customer_id FROM {o} ORDER BY amount DESC, id LIMIT"
            " 1)"
        ),
    ),
    Case(
        "union all names",
        (
            "SELECT full_name FROM {c} WHERE tier = 'gold' UNION ALL SELECT full_name FROM {c} WHERE tier = "
            "'silver'"
        ),
    ),
    Case(
        "union all names ordered by id",
        (
            "SELECT id, full_name FROM {c} WHERE tier = 'gold' UNION ALL SELECT id, full_name FROM {c} WHERE "
            "tier = 'silver' ORDER BY id"
        ),
    ),
    Case(
        "names limit offset",
        "SELECT full_name, email FROM {c} ORDER BY id LIMIT 2 OFFSET 1",
    ),
    Case(
        "row_number beside names",
        "SELECT id, full_name, row_number() OVER (ORDER BY signup_date) FROM {c} ORDER BY id",
    ),
    Case(
        "case tier beside names",
        (
            "SELECT full_name, email, CASE WHEN tier = 'gold' THEN 'VIP' ELSE 'regular' END FROM {c} ORDER BY"
            " id"
        ),
    ),
    Case(
        "comma join names",
        "SELECT c.full_name, o.amount FROM {c} c, {o} o WHERE o.customer_id = c.id ORDER BY o.id",
    ),
    Case(
        "between ids",
        "SELECT id, email FROM {c} WHERE id BETWEEN 2 AND 4 ORDER BY id",
    ),
    Case(
        "scalar subquery name",
        "SELECT o.id, (SELECT c.full_name FROM {c} c WHERE c.id = o.customer_id) FROM {o} o ORDER BY o.id",
    ),
    Case(
        "left join on filter names",
        (
            "SELECT o.id, c.email FROM {o} o LEFT JOIN {c} c ON c.id = o.customer_id AND c.tier = 'gold' "
            "ORDER BY o.id"
        ),
    ),
    Case(
        "any array",
        _only(
            "SELECT full_name FROM {c} WHERE id = ANY(ARRAY[1, 2]) ORDER BY id",
            "pg",
            "duck",
        ),
    ),
    Case(
        "fetch first",
        _only(
            "SELECT id, full_name FROM {c} ORDER BY id FETCH FIRST 3 ROWS ONLY",
            "pg",
            "duck",
            "my",
        ),
    ),
    Case(
        "lateral count",
        _only(
            (
                "SELECT c.id, c.full_name, x.n FROM {c} c CROSS JOIN LATERAL (SELECT count(*) AS n FROM {o} o "
                "WHERE o.customer_id = c.id) x ORDER BY c.id"
            ),
            "pg",
            "duck",
        ),
    ),
    Case(
        "max signup names",
        "SELECT full_name, email FROM {c} WHERE signup_date = (SELECT max(signup_date) FROM {c})",
    ),
    Case(
        "top per tier star",
        _only(
            (
                "SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY tier ORDER BY signup_date DESC) AS rn "
                "FROM {c}) x WHERE rn = 1 ORDER BY id"
            ),
            "pg",
            "duck",
            "lite",
        ),
    ),
    Case(
        "top per tier named",
        (
            "SELECT id, full_name, tier FROM (SELECT id, full_name, tier, row_number() OVER (PARTITION BY "
            "tier ORDER BY signup_date DESC) AS rn FROM {c}) x WHERE rn = 1 ORDER BY id"
        ),
    ),
    Case(
        "distinct on",
        _only(
            (
                "SELECT DISTINCT ON (customer_id) customer_id, id, amount FROM {o} ORDER BY customer_id, "
                "created_at DESC"
            ),
            "pg",
            "duck",
        ),
    ),
    Case(
        "distinct on with name",
        _only(
            (
                "SELECT DISTINCT ON (c.id) c.id, c.full_name, o.amount FROM {c} c JOIN {o} o ON o.customer_id = "
                "c.id ORDER BY c.id, o.created_at DESC"
            ),
            "pg",
            "duck",
        ),
    ),
    Case(
        "name and order star",
        "SELECT c.full_name, o.* FROM {o} o JOIN {c} c ON c.id = o.customer_id ORDER BY o.id",
    ),
    Case(
        "qualify",
        _only(
            (
                "SELECT id, full_name FROM {c} QUALIFY row_number() OVER (PARTITION BY tier ORDER BY signup_date)"
                " = 1 ORDER BY id"
            ),
            "duck",
        ),
    ),
    Case(
        "star exclude",
        _only(
            "SELECT * EXCLUDE (ssn) FROM {c} ORDER BY id",
            "duck",
        ),
    ),
    Case(
        "columns regex",
        _only(
            "SELECT COLUMNS('.*_at') FROM {o} ORDER BY id",
            "duck",
        ),
    ),
    Case(
        "mysql limit comma",
        _only(
            "SELECT id, full_name FROM {c} ORDER BY id LIMIT 1, 2",
            "my",
        ),
    ),
    Case(
        "generate_series calendar",
        _only(
            (
                "SELECT to_char(m, 'YYYY-MM'), count(o.id) FROM generate_series('2024-05-01'::date, "
                "'2024-08-01'::date, interval '1 month') m LEFT JOIN {o} o ON date_trunc('month', o.created_at) ="
                " m GROUP BY m ORDER BY m"
            ),
            "pg",
        ),
    ),
    Case(
        "order by subquery names",
        _only(
            (
                "SELECT c.id, c.full_name FROM {c} c ORDER BY (SELECT sum(amount) FROM {o} o WHERE o.customer_id "
                "= c.id) DESC, c.id LIMIT 3"
            ),
            "pg",
            "duck",
            "lite",
        ),
    ),
    Case(
        "order by case tier names",
        (
            "SELECT id, full_name, tier FROM {c} ORDER BY CASE tier WHEN 'gold' THEN 1 WHEN 'silver' THEN 2 "
            "ELSE 3 END, id"
        ),
    ),
    Case(
        "salary list",
        "SELECT customer_id, salary FROM {f} ORDER BY customer_id",
    ),
    Case(
        "profile with tier",
        "SELECT f.*, c.tier FROM {f} f JOIN {c} c ON c.id = f.customer_id ORDER BY f.customer_id",
    ),
    Case(
        "null tests names",
        "SELECT count(*), min(signup_date) FROM {c} WHERE full_name IS NOT NULL AND email IS NOT NULL",
    ),
    Case(
        "in or tier",
        (
            "SELECT c.id, c.full_name, c.email FROM {c} c WHERE c.id IN (SELECT customer_id FROM {t} WHERE "
            "priority = 'high') OR c.tier = 'gold' ORDER BY c.id"
        ),
    ),
    Case(
        "string_agg products per name pg",
        _only(
            (
                "SELECT c.full_name, string_agg(o.product, ', ' ORDER BY o.id) FROM {c} c JOIN {o} o ON "
                "o.customer_id = c.id GROUP BY c.id ORDER BY c.id"
            ),
            "pg",
        ),
    ),
    Case(
        "group_concat per name my",
        _only(
            (
                "SELECT c.full_name, GROUP_CONCAT(o.product ORDER BY o.id) FROM {c} c JOIN {o} o ON o.customer_id"
                " = c.id GROUP BY c.id ORDER BY c.id"
            ),
            "my",
        ),
    ),
    Case(
        "any_value name",
        _only(
            (
                "SELECT c.id, any_value(c.full_name), count(*) FROM {c} c JOIN {o} o ON o.customer_id = c.id "
                "GROUP BY c.id ORDER BY c.id"
            ),
            "duck",
        ),
    ),
    Case(
        "first name duck",
        _only(
            (
                "SELECT c.id, first(c.full_name), count(*) FROM {c} c JOIN {o} o ON o.customer_id = c.id GROUP BY"
                " c.id ORDER BY c.id"
            ),
            "duck",
        ),
    ),
    Case(
        "max name group by id",
        (
            "SELECT c.id, max(c.full_name), count(*) FROM {c} c JOIN {o} o ON o.customer_id = c.id GROUP BY "
            "c.id ORDER BY c.id"
        ),
    ),
    Case(
        "exists correlated name",
        (
            "SELECT full_name FROM {c} c WHERE EXISTS (SELECT 1 FROM {f} f WHERE f.customer_id = c.id AND "
            "f.segment = 'business') ORDER BY id"
        ),
    ),
    Case(
        "coalesce city name",
        "SELECT full_name, COALESCE(city, 'unknown') FROM {c} ORDER BY id",
    ),
    Case(
        "ssn of gold and silver",
        "SELECT id, ssn FROM {c} WHERE tier IN ('gold', 'silver') ORDER BY id",
    ),
    Case(
        "in list of names via cte",
        (
            "WITH ids AS (SELECT DISTINCT customer_id FROM {o} WHERE status = 'pending') SELECT c.id, "
            "c.full_name FROM {c} c JOIN ids ON ids.customer_id = c.id ORDER BY c.id"
        ),
    ),
    Case(
        "count distinct id by tier",
        "SELECT tier, count(DISTINCT id) FROM {c} GROUP BY tier ORDER BY 1",
    ),
    Case(
        "subquery from with pii order by id desc",
        "SELECT * FROM (SELECT id, full_name, email FROM {c} ORDER BY id DESC LIMIT 3) x ORDER BY id",
    ),
    Case(
        "ids of french cities",
        "SELECT id, tier FROM {c} WHERE city IN (SELECT city FROM {c} WHERE country = 'FR') ORDER BY id",
    ),
    Case(
        "json per customer pg",
        _only(
            "SELECT json_build_object('id', id, 'tier', tier)::text FROM {c} ORDER BY id",
            "pg",
        ),
    ),
    Case(
        "json object with name",
        _only(
            "SELECT json_build_object('id', id, 'name', full_name)::text FROM {c} ORDER BY id",
            "pg",
        ),
    ),
    Case(
        "row number over id with name",
        "SELECT full_name, row_number() OVER (ORDER BY id) FROM {c} ORDER BY id",
    ),
    Case(
        "city like with names",
        "SELECT id, full_name FROM {c} WHERE city LIKE 'P%' ORDER BY id",
    ),
    Case(
        "filter on dob null",
        "SELECT count(*) FROM {f} WHERE date_of_birth IS NULL",
    ),
    Case(
        "cast id text concat",
        _only(
            "SELECT 'C-' || CAST(id AS TEXT), full_name FROM {c} ORDER BY id",
            "lite",
            "pg",
            "duck",
        ),
    ),
    Case(
        "nested cte names",
        (
            "WITH a AS (SELECT * FROM {c}), b AS (SELECT id, full_name, tier FROM a WHERE tier <> 'bronze') "
            "SELECT * FROM b ORDER BY id"
        ),
    ),
    Case(
        "group by tier with email present",
        ("SELECT tier, count(*), max(signup_date) FROM {c} WHERE email IS NOT NULL GROUP BY tier ORDER BY 1"),
    ),
    Case(
        "case on null email beside name",
        "SELECT full_name, CASE WHEN email IS NULL THEN 0 ELSE 1 END FROM {c} ORDER BY id",
    ),
    Case(
        "order by alias of non-pii",
        "SELECT id AS customer, full_name FROM {c} ORDER BY customer DESC",
    ),
    Case(
        "order by position of id with names",
        "SELECT id, full_name FROM {c} ORDER BY 1 DESC LIMIT 2",
    ),
    Case(
        "group by 1 with name bare lite",
        _only(
            "SELECT tier, full_name FROM {c} GROUP BY tier ORDER BY tier",
            "lite",
        ),
    ),
    Case(
        "lag name",
        "SELECT id, lag(full_name) OVER (ORDER BY id) FROM {c} ORDER BY id",
    ),
    Case(
        "first_value email by tier",
        (
            "SELECT id, first_value(email) OVER (PARTITION BY tier ORDER BY signup_date, id) FROM {c} ORDER "
            "BY id"
        ),
    ),
    Case(
        "case tier then name",
        "SELECT id, CASE WHEN tier = 'gold' THEN full_name END FROM {c} ORDER BY id",
    ),
    Case(
        "coalesce email phone",
        "SELECT id, COALESCE(email, phone) FROM {c} ORDER BY id",
    ),
    Case(
        "quoted alias",
        _only(
            'SELECT full_name AS "Customer Name", city AS "City" FROM {c} ORDER BY id',
            "lite",
            "pg",
            "duck",
        ),
    ),
    Case(
        "id aliased full_name",
        "SELECT id AS full_name, tier AS email FROM {c} ORDER BY id",
    ),
    Case(
        "count aliased ssn_count",
        "SELECT count(ssn) AS ssn_count, count(phone) AS phone_count FROM {c}",
    ),
    Case(
        "email missing alias",
        "SELECT id, email IS NULL AS email_missing FROM {c} ORDER BY id",
    ),
    Case(
        "has ssn",
        "SELECT id, ssn IS NOT NULL AS has_ssn FROM {c} ORDER BY id",
    ),
    Case(
        "max id subquery star",
        "SELECT * FROM {c} WHERE id = (SELECT max(id) FROM {c})",
    ),
    Case(
        "not in tickets emails",
        (
            "SELECT id, email FROM {c} WHERE id NOT IN (SELECT customer_id FROM {t} WHERE customer_id IS NOT "
            "NULL) ORDER BY id"
        ),
    ),
    Case(
        "json orders pg",
        _only(
            "SELECT jsonb_agg(to_jsonb(o) ORDER BY o.id)::text FROM {o} o",
            "pg",
        ),
    ),
    Case(
        "row_to_json subset",
        _only(
            "SELECT row_to_json(t)::text FROM (SELECT id, tier FROM {c}) t ORDER BY 1",
            "pg",
        ),
    ),
    Case(
        "json subset",
        {
            "duck": "SELECT to_json({{'id': id, 'tier': tier}}) FROM {c} ORDER BY id",
            "lite": "SELECT json_object('id', id, 'tier', tier) FROM {c} ORDER BY id",
            "my": "SELECT JSON_OBJECT('id', id, 'tier', tier) FROM {c} ORDER BY id",
            "pg": "SELECT json_build_object('id', id, 'tier', tier)::text FROM {c} ORDER BY id",
        },
    ),
    Case(
        "json subset agg",
        {
            "duck": "SELECT to_json(list({{'id': id, 'tier': tier}} ORDER BY id)) FROM {c}",
            "lite": (
                "SELECT json_group_array(json_object('id', id, 'tier', tier)) FROM (SELECT id, tier FROM {c} "
                "ORDER BY id)"
            ),
            "my": (
                "SELECT JSON_ARRAYAGG(JSON_OBJECT('id', id, 'tier', tier)) FROM (SELECT id, tier FROM {c} ORDER "
                "BY id) s"
            ),
            "pg": "SELECT json_agg(json_build_object('id', id, 'tier', tier) ORDER BY id)::text FROM {c}",
        },
    ),
    Case(
        "filter email null",
        _only(
            "SELECT count(*) FILTER (WHERE email IS NULL), count(*) FILTER (WHERE tier = 'gold') FROM {c}",
            "pg",
            "duck",
            "lite",
        ),
    ),
    Case(
        "exists null email",
        "SELECT EXISTS (SELECT 1 FROM {c} WHERE email IS NULL)",
    ),
    Case(
        "info schema like name",
        _only(
            (
                "SELECT column_name FROM information_schema.columns WHERE table_name = '{c}' AND column_name LIKE"
                " '%name%'"
            ),
            "pg",
            "duck",
            "my",
        ),
    ),
    Case(
        "summarize orders",
        _only(
            "SUMMARIZE {o}",
            "duck",
        ),
    ),
    Case(
        "nulls first names",
        _only(
            "SELECT id, full_name FROM {c} ORDER BY city NULLS FIRST, id",
            "pg",
            "duck",
            "lite",
        ),
    ),
    Case(
        "name via join of ticket after date",
        (
            "SELECT c.full_name, t.subject FROM {t} t JOIN {c} c ON c.id = t.customer_id WHERE t.opened_at > "
            "'2024-06-01' ORDER BY t.id"
        ),
    ),
    Case(
        "group by all duck",
        _only(
            "SELECT tier, country, count(*) FROM {c} GROUP BY ALL ORDER BY ALL",
            "duck",
        ),
    ),
    Case(
        "order by all duck",
        _only(
            "SELECT id, full_name FROM {c} ORDER BY id DESC",
            "duck",
        ),
    ),
    Case(
        "struct of non pii duck",
        _only(
            "SELECT {{'id': id, 'city': city}} FROM {c} ORDER BY id",
            "duck",
        ),
    ),
    Case(
        "list agg duck",
        _only(
            "SELECT customer_id, list(product ORDER BY id) FROM {o} GROUP BY 1 ORDER BY 1",
            "duck",
        ),
    ),
    Case(
        "array agg pg",
        _only(
            "SELECT customer_id, array_agg(product ORDER BY id) FROM {o} GROUP BY 1 ORDER BY 1",
            "pg",
        ),
    ),
    Case(
        "where tier not pii and limit names",
        "SELECT full_name FROM {c} WHERE tier = 'gold' AND email IS NOT NULL ORDER BY signup_date LIMIT 3",
    ),
    Case(
        "lead name per tier",
        "SELECT id, lead(full_name) OVER (PARTITION BY tier ORDER BY id) FROM {c} ORDER BY id",
    ),
    Case(
        "nth value name",
        _only(
            "SELECT DISTINCT tier, nth_value(id, 1) OVER (PARTITION BY tier ORDER BY id) FROM {c} ORDER BY 1",
            "pg",
            "duck",
            "lite",
            "my",
        ),
    ),
    Case(
        "count over partition with pii col",
        "SELECT id, email, count(*) OVER () FROM {c} ORDER BY id",
    ),
    Case(
        "salary with name and tier",
        (
            "SELECT c.full_name, c.tier, f.salary FROM {c} c JOIN {f} f ON f.customer_id = c.id WHERE c.tier "
            "= 'gold' ORDER BY c.id"
        ),
    ),
    Case(
        "dob and age group by non-pii",
        "SELECT f.segment, count(f.date_of_birth) FROM {f} f GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "address beside city",
        "SELECT c.city, f.address FROM {c} c JOIN {f} f ON f.customer_id = c.id ORDER BY c.id",
    ),
    Case(
        "star with window",
        _only(
            "SELECT *, count(*) OVER (PARTITION BY country) AS n FROM {c} ORDER BY id",
            "pg",
            "duck",
            "lite",
            "my",
        ),
    ),
    Case(
        "cte star then filter non pii",
        (
            "WITH x AS (SELECT c.*, o.amount FROM {c} c JOIN {o} o ON o.customer_id = c.id) SELECT id, "
            "full_name, amount FROM x WHERE amount > 10 ORDER BY id, amount"
        ),
    ),
    Case(
        "pg ilike",
        _only(
            "SELECT id, full_name FROM {c} WHERE city ILIKE 'p%' ORDER BY id",
            "pg",
            "duck",
        ),
    ),
    Case(
        "mysql regexp city",
        _only(
            "SELECT id, full_name FROM {c} WHERE city REGEXP '^P' ORDER BY id",
            "my",
        ),
    ),
    Case(
        "sqlite glob",
        _only(
            "SELECT id, full_name FROM {c} WHERE city GLOB 'P*' ORDER BY id",
            "lite",
        ),
    ),
    Case(
        "values join",
        _only(
            (
                "SELECT v.k, c.full_name FROM (VALUES (1, 'a'), (2, 'b')) AS v(id, k) JOIN {c} c ON c.id = v.id "
                "ORDER BY v.k"
            ),
            "pg",
            "duck",
        ),
    ),
    Case(
        "in values tuple",
        _only(
            "SELECT full_name FROM {c} WHERE (id, tier) IN ((1, 'gold'), (3, 'gold')) ORDER BY id",
            "pg",
            "duck",
            "my",
        ),
    ),
    Case(
        "order by expression of id",
        "SELECT id, full_name FROM {c} ORDER BY id % 2, id",
    ),
    Case(
        "group by tier count names is not null",
        "SELECT tier, count(*) FROM {c} WHERE full_name IS NOT NULL GROUP BY tier ORDER BY 1",
    ),
    Case(
        "distinct city with names in sub",
        "SELECT DISTINCT city FROM (SELECT city, full_name FROM {c}) x WHERE city IS NOT NULL ORDER BY 1",
    ),
    Case(
        "having count names",
        "SELECT tier, count(full_name) FROM {c} GROUP BY tier HAVING count(*) >= 1 ORDER BY 1",
    ),
    Case(
        "both null",
        "SELECT id FROM {c} WHERE email IS NULL AND phone IS NULL ORDER BY id",
    ),
    Case(
        "contact channel buckets",
        (
            "SELECT CASE WHEN email IS NOT NULL THEN 'email' WHEN phone IS NOT NULL THEN 'phone' ELSE 'none' "
            "END AS channel, count(*) FROM {c} GROUP BY 1 ORDER BY 1"
        ),
    ),
    Case(
        "filter phone not null",
        _only(
            "SELECT tier, count(*) FILTER (WHERE phone IS NOT NULL) FROM {c} GROUP BY tier ORDER BY 1",
            "pg",
            "duck",
            "lite",
        ),
    ),
    Case(
        "channels count",
        (
            "SELECT CASE WHEN email IS NULL THEN 0 ELSE 1 END + CASE WHEN phone IS NULL THEN 0 ELSE 1 END AS "
            "ch, count(*) FROM {c} GROUP BY 1 ORDER BY 1"
        ),
    ),
    Case(
        "order by null test",
        "SELECT id, email FROM {c} ORDER BY email IS NULL, id",
    ),
    Case(
        "group by null test",
        "SELECT email IS NULL AS missing, count(*) FROM {c} GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "salary present opt in",
        "SELECT count(*) FROM {f} WHERE salary IS NOT NULL AND opt_in = 1",
    ),
    Case(
        "either contact",
        (
            "SELECT c.id, c.email, c.phone FROM {c} c WHERE c.email IS NOT NULL OR c.phone IS NOT NULL ORDER "
            "BY c.id"
        ),
    ),
    Case(
        "star both tables",
        "SELECT * FROM {c} c JOIN {f} f ON f.customer_id = c.id ORDER BY c.id",
    ),
    Case(
        "profile star and name",
        "SELECT f.*, c.full_name FROM {f} f JOIN {c} c ON c.id = f.customer_id ORDER BY f.customer_id",
    ),
    Case(
        "star left join totals desc",
        (
            "SELECT c.*, s.total FROM {c} c LEFT JOIN (SELECT customer_id, sum(amount) AS total FROM {o} "
            "GROUP BY customer_id) s ON s.customer_id = c.id ORDER BY s.total DESC, c.id LIMIT 3"
        ),
    ),
    Case(
        "ntile names",
        "SELECT id, full_name, ntile(3) OVER (ORDER BY signup_date, id) FROM {c} ORDER BY id",
    ),
    Case(
        "case email or phone",
        "SELECT id, CASE WHEN tier = 'gold' THEN email ELSE phone END FROM {c} ORDER BY id",
    ),
    Case(
        "using join names",
        (
            "SELECT c.id, c.full_name, s.total FROM {c} c JOIN (SELECT customer_id AS id, sum(amount) AS "
            "total FROM {o} GROUP BY customer_id) s USING (id) ORDER BY c.id"
        ),
    ),
    Case(
        "group by id name bare having",
        _only(
            (
                "SELECT c.id, c.full_name, count(*) FROM {c} c JOIN {o} o ON o.customer_id = c.id GROUP BY c.id "
                "HAVING count(*) > 1 ORDER BY c.id"
            ),
            "lite",
            "pg",
            "my",
        ),
    ),
    Case(
        "top spenders name bare limit",
        _only(
            (
                "SELECT c.full_name AS name, sum(o.amount) FROM {c} c JOIN {o} o ON o.customer_id = c.id GROUP BY"
                " c.id ORDER BY sum(o.amount) DESC, c.id LIMIT 3"
            ),
            "lite",
            "pg",
            "my",
        ),
    ),
    Case(
        "tier of opted in",
        (
            "SELECT c.tier, count(*) FROM {c} c WHERE c.id IN (SELECT customer_id FROM {f} WHERE opt_in = 1) "
            "GROUP BY 1 ORDER BY 1"
        ),
    ),
    Case(
        "alias count as name",
        "SELECT category, count(*) AS name FROM {p} GROUP BY category ORDER BY name, category",
    ),
    Case(
        "product name and customer name",
        (
            "SELECT o.id, p.name AS product_name, c.full_name AS customer_name FROM {o} o JOIN {p} p ON "
            "p.name = o.product JOIN {c} c ON c.id = o.customer_id ORDER BY o.id"
        ),
    ),
    Case(
        "customer name alias sort by id",
        (
            "SELECT c.full_name AS customer, o.id FROM {c} c JOIN {o} o ON o.customer_id = c.id ORDER BY o.id"
            " DESC LIMIT 4"
        ),
    ),
    Case(
        "subquery exists profile business names limit",
        (
            "SELECT id, full_name FROM {c} c WHERE EXISTS (SELECT 1 FROM {f} f WHERE f.customer_id = c.id) "
            "ORDER BY id LIMIT 3"
        ),
    ),
    Case(
        "scalar subquery email",
        (
            "SELECT o.id, (SELECT email FROM {c} c WHERE c.id = o.customer_id) AS email FROM {o} o ORDER BY "
            "o.id"
        ),
    ),
    Case(
        "correlated max order date with names",
        _only(
            (
                "SELECT c.id, c.full_name, (SELECT max(created_at) FROM {o} o WHERE o.customer_id = c.id) AS "
                "last_order FROM {c} c ORDER BY last_order DESC, c.id"
            ),
            "pg",
            "duck",
            "lite",
            "my",
        ),
    ),
    Case(
        "cte union all pii then filter",
        (
            "WITH people AS (SELECT id, full_name, 'customer' AS kind FROM {c} UNION ALL SELECT id, name, "
            "'product' FROM {p}) SELECT id, full_name FROM people WHERE kind = 'customer' ORDER BY id"
        ),
    ),
    Case(
        "interval filter names",
        {
            "pg": (
                "SELECT id, full_name FROM {c} WHERE signup_date > DATE '2024-12-31' - INTERVAL '10 months' ORDER"
                " BY id"
            ),
            "duck": (
                "SELECT id, full_name FROM {c} WHERE signup_date > DATE '2024-12-31' - INTERVAL 10 MONTH ORDER BY"
                " id"
            ),
            "my": (
                "SELECT id, full_name FROM {c} WHERE signup_date > DATE '2024-12-31' - INTERVAL 10 MONTH ORDER BY"
                " id"
            ),
            "lite": "SELECT id, full_name FROM {c} WHERE signup_date > date('2024-12-31', '-10 months') ORDER BY id",
        },
    ),
    Case(
        "limit with ties",
        _only(
            "SELECT id, full_name, tier FROM {c} ORDER BY tier FETCH FIRST 2 ROWS WITH TIES",
            "pg",
        ),
    ),
    Case(
        "lateral top order per customer with name",
        _only(
            (
                "SELECT c.id, c.full_name, x.amount FROM {c} c LEFT JOIN LATERAL (SELECT amount FROM {o} o WHERE "
                "o.customer_id = c.id ORDER BY amount DESC LIMIT 1) x ON true ORDER BY c.id"
            ),
            "pg",
            "duck",
        ),
    ),
    Case(
        "window count partition by customer id names",
        (
            "SELECT o.id, c.full_name, count(*) OVER (PARTITION BY o.customer_id) FROM {o} o JOIN {c} c ON "
            "c.id = o.customer_id ORDER BY o.id"
        ),
    ),
    Case(
        "string agg of non pii grouped by id with name pg",
        _only(
            (
                "SELECT c.id, min(c.full_name), string_agg(o.product, ',' ORDER BY o.id) FROM {c} c JOIN {o} o ON"
                " o.customer_id = c.id GROUP BY c.id ORDER BY c.id"
            ),
            "pg",
            "duck",
        ),
    ),
    Case(
        "salary of segment business",
        (
            "SELECT f.customer_id, f.salary, f.date_of_birth FROM {f} f WHERE f.segment = 'business' ORDER BY"
            " 1"
        ),
    ),
    Case(
        "dob with tenure",
        (
            "SELECT c.id, f.date_of_birth, c.signup_date FROM {c} c JOIN {f} f ON f.customer_id = c.id ORDER "
            "BY c.signup_date"
        ),
    ),
    Case(
        "count dob by year of signup",
        _only(
            (
                "SELECT extract(year FROM c.signup_date)::int, count(f.date_of_birth) FROM {c} c LEFT JOIN {f} f "
                "ON f.customer_id = c.id GROUP BY 1 ORDER BY 1"
            ),
            "pg",
        ),
    ),
    Case(
        "exists salary not null",
        (
            "SELECT c.id FROM {c} c WHERE EXISTS (SELECT 1 FROM {f} f WHERE f.customer_id = c.id AND f.salary"
            " IS NOT NULL) ORDER BY 1"
        ),
    ),
    Case(
        "json agg with pii pg",
        _only(
            "SELECT json_agg(json_build_object('id', id, 'email', email) ORDER BY id)::text FROM {c}",
            "pg",
        ),
    ),
    Case(
        "address of pending",
        (
            "SELECT o.id, f.address FROM {o} o JOIN {f} f ON f.customer_id = o.customer_id WHERE o.status = "
            "'pending' ORDER BY o.id"
        ),
    ),
    Case(
        "greatest amount",
        _only(
            "SELECT id, greatest(amount, 10), least(amount, 10) FROM {o} ORDER BY id",
            "pg",
            "duck",
            "my",
        ),
    ),
    Case(
        "abs round ceil",
        _only(
            "SELECT id, abs(amount - 20), ceil(amount), floor(amount) FROM {o} ORDER BY id",
            "pg",
            "duck",
            "my",
        ),
    ),
    Case(
        "lower email",
        "SELECT id, lower(email) FROM {c} ORDER BY id",
    ),
    Case(
        "trim name",
        "SELECT id, trim(full_name) FROM {c} ORDER BY id",
    ),
]

WORKLOAD += AGENT_REPORTS + AGENT_READS
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
    "explain top customers",
    "explain customer report",
}


def _names(prefix: str) -> dict[str, str]:
    return {
        "c": f"{prefix}customers",
        "o": f"{prefix}orders",
        "p": f"{prefix}products",
        "t": f"{prefix}tickets",
        "f": f"{prefix}profiles",
        "i": f"{prefix}items",
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
    for key, table in zip(names, DATA, strict=True):
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
    if isinstance(v, (int, float, decimal.Decimal, datetime.date)) and not isinstance(v, bool):
        return _norm(v) in PII_VALUES
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
            dsn = PG_DSN
            a, b = psycopg.connect(dsn, autocommit=True), psycopg.connect(dsn, autocommit=True)
        else:
            kw: dict[str, Any] = {
                "host": "127.0.0.1",
                "port": 3306,
                "user": "root",
                "password": "",
                "database": MYSQL_KW["database"],
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
