"""application_name=: identity visible in pg_stat_activity, set once, never leaving a transaction open."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

import governed_db
from governed_db import ConfigurationError, Identity


@pytest.mark.parametrize("autocommit", [True, False])
def test_application_name_carries_identity_to_postgres(pg_dsn: str, autocommit: bool) -> None:
    """With application_name=True the server sees the identity; a non-autocommit session is left idle."""
    import psycopg

    raw = psycopg.connect(pg_dsn, autocommit=autocommit)
    conn = governed_db.wrap(
        raw, identity=Identity("etl", kind="service", on_behalf_of="ops"), application_name=True, audit=False
    )
    assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    other = psycopg.connect(pg_dsn, autocommit=True)
    (name,) = other.execute(
        "SELECT application_name FROM pg_stat_activity WHERE pid = %s", (raw.info.backend_pid,)
    ).fetchone()
    assert name == "governed_db service:etl for ops"
    conn.close()
    other.close()


def test_application_name_accepts_a_string_on_psycopg2(pg_dsn: str) -> None:
    """A string is used as given (psycopg2)."""
    psycopg2 = pytest.importorskip("psycopg2")
    raw: Any = psycopg2.connect(pg_dsn)
    governed_db.wrap(raw, application_name="nightly-report", audit=False)
    cur = raw.cursor()
    cur.execute("SELECT current_setting('application_name')")
    assert cur.fetchone() == ("nightly-report",)
    raw.close()


def test_application_name_is_refused_where_the_database_has_none() -> None:
    """On SQLite the option is a clear configuration error pointing to sqlcommenter."""
    with pytest.raises(ConfigurationError, match="sqlcommenter"):
        governed_db.wrap(sqlite3.connect(":memory:"), application_name=True, audit=False)
