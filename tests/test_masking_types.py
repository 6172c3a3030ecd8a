"""Types survive masking: dates stay dates (SQLite text, SQLAlchemy Date, DuckDB/pandas datetime64), strings stay
strings, and a number NULLed because it is derived from a masked column keeps a nullable integer dtype."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import governed_db
from governed_db import Identity
from governed_db.masking.strategies import StrategyContext, build_strategy

BOT = Identity("report-bot", kind="agent")
CTX = StrategyContext(b"k" * 32)


@pytest.mark.parametrize(
    ("value", "year", "month"),
    [
        ("1984-05-12", "1984-01-01", "1984-05-01"),
        ("1984-05-12 10:11:12", "1984-01-01 00:00:00", "1984-05-01 00:00:00"),
        ("1984-05-12T10:11:12.250", "1984-01-01T00:00:00.000", "1984-05-01T00:00:00.000"),
        ("1984-05", "1984-01", "1984-05"),
    ],
)
def test_generalized_iso_text_stays_an_iso_date(value: str, year: str, month: str) -> None:
    """generalize keeps ISO text in its own shape (first day of the year or month, time zeroed)."""
    assert build_strategy("generalize", "DATE_OF_BIRTH", {}, CTX)(value) == year
    assert build_strategy("generalize", "DATE_OF_BIRTH", {"granularity": "month"}, CTX)(value) == month
    dt.date.fromisoformat(year[:10]) if len(year) >= 10 else None


def test_redacted_date_text_is_the_epoch_in_the_same_shape() -> None:
    """redact on a date label turns ISO text into the epoch (still a date); other text into the placeholder."""
    redact = build_strategy("redact", "DATE_OF_BIRTH", {}, CTX)
    assert redact("1984-05-12") == "1970-01-01"
    assert redact("1984-05-12 10:11:12") == "1970-01-01 00:00:00"
    assert redact("born in spring") == "[DATE_OF_BIRTH]"
    assert redact(dt.date(1984, 5, 12)) == dt.date(1970, 1, 1)
    assert build_strategy("redact", "EMAIL", {}, CTX)("1984-05-12") == "[EMAIL]"


def _people_db(path: Path) -> None:
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, full_name TEXT, dob DATE, joined DATE)")
    raw.executemany(
        "INSERT INTO people VALUES (?, ?, ?, ?)",
        [
            (i, f"Person {i}", f"19{60 + i}-0{1 + i % 9}-1{i % 10}", f"2020-0{1 + i % 9}-1{i % 10}")
            for i in range(1, 31)
        ],
    )
    raw.commit()
    raw.close()


def test_sqlalchemy_date_column_loads_a_masked_sqlite_date(tmp_path: Path) -> None:
    """An ORM model with a Date column reads masked SQLite dates as datetime.date (generalized to the year)."""
    sa = pytest.importorskip("sqlalchemy")
    from sqlalchemy import Column, Date, Integer, String, select
    from sqlalchemy.orm import DeclarativeBase, Session

    from governed_db.integrations.sqlalchemy import create_engine

    path = tmp_path / "people.db"
    _people_db(path)

    class Base(DeclarativeBase):
        pass

    class Person(Base):
        __tablename__ = "people"
        id = Column(Integer, primary_key=True)
        full_name = Column(String)
        dob = Column(Date)
        joined = Column(Date)

    engine = create_engine(f"sqlite:///{path}", identity=BOT, environment="production", audit=False)
    with Session(engine) as session:
        people = session.scalars(select(Person).order_by(Person.id)).all()
        # a function that may fail (or turn NULL) on the value would reveal its format: refused (decision 0095)
        with pytest.raises(sa.exc.ProgrammingError, match="masked-column-predicate"):
            session.execute(sa.text("SELECT date(dob) AS d FROM people WHERE id = 1")).all()
    engine.dispose()
    assert people[0].dob == dt.date(1961, 1, 1) and isinstance(people[0].dob, dt.date)
    assert people[0].joined == dt.date(2020, 2, 11)  # not sensitive: exact
    assert people[0].full_name == "[PERSON_NAME]"


def test_duckdb_df_keeps_datetime_string_and_nullable_integer_dtypes() -> None:
    """DuckDB .df(): a generalized DATE stays datetime64, masked text keeps the string dtype, length(email) is
    NULL as a nullable Int64, untouched columns keep their dtypes."""
    duckdb = pytest.importorskip("duckdb")
    pd = pytest.importorskip("pandas")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE users (id INTEGER, email VARCHAR, dob DATE, city VARCHAR, score DOUBLE)")
    raw.execute(
        "INSERT INTO users SELECT i, 'user' || i || '@example.com', DATE '1980-03-04' + i::INTEGER, 'Paris', i / 2 "
        "FROM range(40) t(i)"
    )
    raw_df = raw.execute("SELECT id, email, dob, length(email) AS n, city, score FROM users ORDER BY id").df()
    conn = governed_db.wrap(raw, identity=BOT, environment="production", audit=False)
    df = conn.execute("SELECT id, email, dob, length(email) AS n, city, score FROM users ORDER BY id").df()
    assert df["email"].iloc[0] == "u***@example.com"
    assert df["email"].dtype == raw_df["email"].dtype  # string dtype, not object
    assert df["dob"].dtype == raw_df["dob"].dtype and str(df["dob"].dtype).startswith("datetime64")
    assert df["dob"].iloc[5] == pd.Timestamp("1980-01-01")
    assert str(raw_df["n"].dtype) == "int64" and str(df["n"].dtype) == "Int64" and df["n"].isna().all()
    for name in ("id", "city", "score"):
        assert df[name].dtype == raw_df[name].dtype
        assert df[name].tolist() == raw_df[name].tolist()


def test_masked_text_in_a_datetime_column_falls_back_to_object() -> None:
    """When a masked value no longer fits the dtype (a placeholder in a date column) the column becomes object."""
    pd = pytest.importorskip("pandas")
    from governed_db.masking.frames import _pandas_series

    original = pd.Series(pd.to_datetime(["2020-01-01", "2021-01-01"]))
    out = _pandas_series(pd, ["[DATE]", None], original)
    assert out.dtype == object and out.tolist() == ["[DATE]", None]
    ints = pd.Series([1, 2, 3], dtype="int64")
    assert str(_pandas_series(pd, [None, None, None], ints).dtype) == "Int64"
    assert str(_pandas_series(pd, [0, 0, 0], ints).dtype) == "int64"


def test_polars_and_arrow_keep_their_types() -> None:
    """polars and pyarrow results keep a date column's type when the masked values are still dates."""
    duckdb = pytest.importorskip("duckdb")
    pytest.importorskip("polars")
    pytest.importorskip("pyarrow")
    raw = duckdb.connect()
    raw.execute("CREATE TABLE users (id INTEGER, email VARCHAR, dob DATE)")
    raw.execute(
        "INSERT INTO users SELECT i, 'u' || i || '@example.com', DATE '1980-03-04' FROM range(20) t(i)"
    )
    conn = governed_db.wrap(raw, identity=BOT, environment="production", audit=False)
    sql = "SELECT id, email, dob, length(email) AS n FROM users ORDER BY id"
    pl_df = conn.sql(sql).pl()
    assert str(pl_df.schema["dob"]) == "Date" and pl_df["dob"][0] == dt.date(1980, 1, 1)
    assert pl_df["n"].null_count() == 20 and pl_df.schema["n"].is_integer()
    table: Any = conn.sql(sql).to_arrow_table()
    assert str(table.schema.field("dob").type) == "date32[day]"
    assert str(table.schema.field("n").type) == "int64" and table.column("n").null_count == 20
