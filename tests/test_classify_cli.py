"""governed-db classify: scans SQLite, duckdb, PostgreSQL and MariaDB; the catalog it writes drives masking."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import governed_db
from governed_db.cli import main
from governed_db.masking.catalog import Catalog
from tests.conftest import mysql_url, pg_url

ROWS = [
    (i, f"user{i}@example.com", f"Paris {i}", f"+1 415-555-{2600 + i:04d}", f"note {i}") for i in range(1, 31)
]


def _sqlite_file(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE people (id INTEGER, contact TEXT, city TEXT, phone TEXT, remark TEXT)")
    conn.executemany("INSERT INTO people VALUES (?,?,?,?,?)", ROWS)
    conn.execute("CREATE TABLE products (id INTEGER, name TEXT, price REAL)")
    conn.execute("INSERT INTO products VALUES (1, 'Widget', 9.5)")
    conn.commit()
    conn.close()
    return path


def _labels(catalog_path: Path) -> dict[str, str | None]:
    cat = Catalog.load(catalog_path)
    return {f"{t}.{c}": cls.label for t, c, cls in cat}


def test_classify_sqlite_file_writes_catalog_and_summary(tmp_path: Path) -> None:
    """A SQLite file is scanned: the catalog labels by value and by name, and the summary lists them."""
    db = _sqlite_file(tmp_path / "app.db")
    out = tmp_path / "catalog.yaml"
    result = CliRunner().invoke(main, ["classify", str(db), "-o", str(out)])
    assert result.exit_code == 0, result.output
    labels = _labels(out)
    assert labels["people.contact"] == "EMAIL"  # by values: the name says nothing
    assert labels["people.phone"] == "PHONE"
    assert (
        labels["people.city"] is None and labels["products.name"] is None and labels["products.price"] is None
    )
    assert "people" in result.output and "EMAIL" in result.output and str(out) in result.output


def test_classify_json_output_and_fail_on_found(tmp_path: Path) -> None:
    """--format json prints machine-readable findings; --fail-on-found exits 1 when something is sensitive."""
    db = _sqlite_file(tmp_path / "app.db")
    result = CliRunner().invoke(
        main, ["classify", str(db), "-o", str(tmp_path / "c.json"), "--format", "json", "--fail-on-found"]
    )
    assert result.exit_code == 1
    data = json.loads(result.stdout)  # progress lines go to stderr
    found = {(s["table"], s["column"]): s for s in data["sensitive"]}
    assert found[("people", "contact")]["label"] == "EMAIL"
    assert "sampled values" in found[("people", "contact")]["evidence"]["values"]
    assert json.loads((tmp_path / "c.json").read_text())["tables"]["people"]["contact"]["label"] == "EMAIL"


@pytest.mark.parametrize("target", ["/nonexistent/app.db", "ftp://example.invalid/db"])
def test_classify_bad_target_exits_2(target: str, tmp_path: Path) -> None:
    """A missing file or unsupported URL is bad input: exit code 2 and a message saying what to give."""
    result = CliRunner().invoke(main, ["classify", target, "-o", str(tmp_path / "c.yaml")])
    assert result.exit_code == 2
    assert "SQLite" in result.output or "does not exist" in result.output


def test_classify_a_file_that_is_not_a_database_exits_2(tmp_path: Path) -> None:
    """A file that is not a SQLite database is reported as bad input, and no catalog is written."""
    bogus = tmp_path / "notes.db"
    bogus.write_text("just text, not a database\n" * 50)
    result = CliRunner().invoke(main, ["classify", str(bogus), "-o", str(tmp_path / "c.yaml")])
    assert result.exit_code == 2 and "cannot list the tables" in result.output
    assert not (tmp_path / "c.yaml").exists()


def test_catalog_drives_masking(tmp_path: Path) -> None:
    """wrap(masking={'catalog': ...}) masks what the reviewed catalog labels and unmasks what it clears."""
    db = _sqlite_file(tmp_path / "app.db")
    out = tmp_path / "catalog.yaml"
    assert CliRunner().invoke(main, ["classify", str(db), "-o", str(out)]).exit_code == 0
    text = out.read_text()
    # a reviewer marks the product name as sensitive and the phone as public
    cat = Catalog.load(out)
    data: dict[str, Any] = cat.to_dict()
    data["tables"]["products"]["name"]["label"] = "PERSON_NAME"
    data["tables"]["people"]["phone"]["label"] = None
    import yaml

    out.write_text(yaml.safe_dump(data))
    assert text
    conn = governed_db.wrap(
        sqlite3.connect(db), identity=governed_db.Identity("bot", kind="agent"), masking={"catalog": str(out)}
    )
    assert conn.execute("SELECT name, price FROM products").fetchall() == [("[PERSON_NAME]", 9.5)]
    row = conn.execute("SELECT contact, phone, city FROM people WHERE id = 1").fetchone()
    assert row == ("u***@example.com", "+1 415-555-2601", "Paris 1")


def test_classify_duckdb_file(tmp_path: Path) -> None:
    """A duckdb file is classified through information_schema."""
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "app.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE people (id INTEGER, contact VARCHAR, city VARCHAR)")
    conn.executemany("INSERT INTO people VALUES (?, ?, ?)", [r[:3] for r in ROWS])
    conn.close()
    result = CliRunner().invoke(main, ["classify", str(path), "-o", str(tmp_path / "c.yaml")])
    assert result.exit_code == 0, result.output
    assert _labels(tmp_path / "c.yaml") == {"people.id": None, "people.contact": "EMAIL", "people.city": None}


def test_classify_postgres_url(pg_conn: Any, unique: str, tmp_path: Path) -> None:
    """A postgresql:// URL is classified (only the named table, so the shared server's others are skipped)."""
    t = f"cls_people_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} (id int, contact text, ssn text, client inet)")
    try:
        with pg_conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {t} VALUES (%s, %s, %s, %s)",
                [(i, f"u{i}@example.com", f"536-22-{8700 + i}", "10.0.0.1") for i in range(20)],
            )
        url = pg_url()
        result = CliRunner().invoke(main, ["classify", url, "--table", t, "-o", str(tmp_path / "c.yaml")])
        assert result.exit_code == 0, result.output
        labels = _labels(tmp_path / "c.yaml")
        assert labels[f"{t}.contact"] == "EMAIL" and labels[f"{t}.ssn"] == "US_SSN"
        assert labels[f"{t}.client"] == "IP_ADDRESS" and labels[f"{t}.id"] is None
    finally:
        pg_conn.execute(f"DROP TABLE {t}")


def test_classify_mysql_url(mysql_conn: Any, unique: str, tmp_path: Path) -> None:
    """A mysql:// URL (MariaDB) is classified through information_schema."""
    t = f"cls_people_{unique}"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id int, contact varchar(100), city varchar(50))")
        cur.executemany(f"INSERT INTO {t} VALUES (%s, %s, %s)", [r[:3] for r in ROWS])
    try:
        url = mysql_url()
        result = CliRunner().invoke(main, ["classify", url, "--table", t, "-o", str(tmp_path / "c.yaml")])
        assert result.exit_code == 0, result.output
        labels = _labels(tmp_path / "c.yaml")
        assert labels == {f"{t}.id": None, f"{t}.contact": "EMAIL", f"{t}.city": None}
    finally:
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE {t}")


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "postgresql+psycopg2", "postgres"])
def test_classify_takes_sqlalchemy_style_postgres_urls(pg_conn: Any, unique: str, tmp_path: Path, scheme: str) -> None:
    """postgresql+psycopg:// (what every other entry point takes) classifies like postgresql://."""
    t = f"cls_sa_{unique}"
    pg_conn.execute(f"CREATE TABLE {t} (id int, contact text)")
    try:
        pg_conn.execute(f"INSERT INTO {t} VALUES (1, 'a@example.com'), (2, 'b@example.com')")
        url = pg_url(scheme)
        result = CliRunner().invoke(main, ["classify", url, "--table", t, "-o", str(tmp_path / "c.yaml")])
        assert result.exit_code == 0, result.output
        assert _labels(tmp_path / "c.yaml")[f"{t}.contact"] == "EMAIL"
    finally:
        pg_conn.execute(f"DROP TABLE {t}")


def test_classify_mysql_pymysql_url(mysql_conn: Any, unique: str, tmp_path: Path) -> None:
    """mysql+pymysql:// with a database in the path is read like SQLAlchemy reads it."""
    t = f"cls_sa_{unique}"
    with mysql_conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t} (id int, contact varchar(100))")
        cur.execute(f"INSERT INTO {t} VALUES (1, 'a@example.com')")
    try:
        url = mysql_url("mysql+pymysql") + "?charset=utf8mb4"
        result = CliRunner().invoke(main, ["classify", url, "--table", t, "-o", str(tmp_path / "c.yaml")])
        assert result.exit_code == 0, result.output
        assert _labels(tmp_path / "c.yaml")[f"{t}.contact"] == "EMAIL"
    finally:
        with mysql_conn.cursor() as cur:
            cur.execute(f"DROP TABLE {t}")


def test_classify_unknown_table_exits_2_naming_it(tmp_path: Path) -> None:
    """--table with a name the database does not have is bad input (exit 2), not an empty success."""
    db = _sqlite_file(tmp_path / "app.db")
    result = CliRunner().invoke(main, ["classify", str(db), "--table", "people", "--table", "peeple",
                                       "-o", str(tmp_path / "c.yaml")])
    assert result.exit_code == 2
    assert "no table named 'peeple'" in result.stderr and "Traceback" not in result.output


def test_classify_prints_progress_to_stderr_when_piped(tmp_path: Path) -> None:
    """Piped (not a terminal), each table is announced on stderr; stdout keeps only the summary."""
    db = _sqlite_file(tmp_path / "app.db")
    result = CliRunner().invoke(main, ["classify", str(db), "--format", "json", "-o", str(tmp_path / "c.yaml")])
    assert result.exit_code == 0, result.output
    assert "classifying 1/2 people" in result.stderr and "classifying 2/2 products" in result.stderr
    assert json.loads(result.stdout)["tables"] == 2


@pytest.mark.parametrize("url", ["sqlite:///", "nosuchdriver://x", "postgresql+psycopg://u@h:notaport/db",
                                 "sqlite:///no/such/file.db"])
def test_classify_bad_urls_exit_2_without_a_traceback(tmp_path: Path, url: str) -> None:
    """Malformed or unsupported URLs are one-line errors with exit 2."""
    result = CliRunner().invoke(main, ["classify", url, "-o", str(tmp_path / "c.yaml")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.strip()


def test_parse_target_without_sqlalchemy_reads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard-library fallback (SQLAlchemy is optional) reads URLs as make_url does."""
    import builtins

    from governed_db.masking.scan import parse_target

    urls = ["postgresql+psycopg://al%40ice:p%2Fw@db.example:6543/app?sslmode=require",
            "mysql+pymysql://root@127.0.0.1/test", "sqlite:////abs/app.db", "duckdb:///rel.duckdb"]
    with_sa = [parse_target(u) for u in urls]
    real_import = builtins.__import__

    def no_sqlalchemy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("sqlalchemy"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sqlalchemy)
    assert [parse_target(u) for u in urls] == with_sa
    assert with_sa[0].user == "al@ice" and with_sa[0].password == "p/w" and with_sa[0].port == 6543
