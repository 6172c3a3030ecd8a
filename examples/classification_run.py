"""A classification run: label sensitive columns, review the catalog, then query with it.

Run:  python examples/classification_run.py [--out DIR]

1. builds a small SQLite database with obviously and not-so-obviously
   sensitive columns (a column named ``contact`` that holds e-mail addresses);
2. classifies it from names, declared types and a sample of values — the
   library call behind ``governed-db classify app.db -o catalog.yaml``;
3. writes the catalog (YAML, meant to be reviewed and committed);
4. opens a governed connection that uses that catalog and shows the masked rows.
Offline and deterministic.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from pathlib import Path

import governed_db
from governed_db.masking.scan import classify_database


def build(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE members (id INTEGER PRIMARY KEY, full_name TEXT, contact TEXT, phone TEXT,
                              joined DATE, tier TEXT);
        INSERT INTO members VALUES
          (1, 'Ada Lovelace', 'ada@example.com', '+44 20 7946 0958', '2024-01-02', 'gold'),
          (2, 'Alan Turing', 'alan@example.com', '+44 161 496 0000', '2024-02-03', 'silver'),
          (3, 'Grace Hopper', 'grace@example.com', '+1 202 555 0143', '2024-03-04', 'gold');
        """
    )
    conn.commit()
    conn.close()


def run(out: Path) -> dict[str, str]:
    """Classify, save the catalog, query through it; returns {column: label} of sensitive columns."""
    db = out / "members.db"
    build(db)
    raw = sqlite3.connect(db)
    try:
        catalog = classify_database(raw, "sqlite", sample_rows=100)
    finally:
        raw.close()
    catalog_path = out / "governed-db-catalog.yaml"
    catalog.save(str(catalog_path))
    found = {f"{t}.{c}": cls.label for t, c, cls in catalog if cls.label}
    print(f"catalog written to {catalog_path}")
    for column, label in sorted(found.items()):
        print(f"  {column:<20} {label}")

    conn = governed_db.wrap(
        sqlite3.connect(db),
        identity=governed_db.Identity("analyst-bot", kind="agent"),
        environment="production",
        masking={"catalog": str(catalog_path)},
    )
    try:
        for row in conn.execute("SELECT id, full_name, contact, tier FROM members ORDER BY id"):
            print("  ", row)
    finally:
        conn.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="directory for the database and catalog (default: temporary)")
    args = parser.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        run(args.out)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp))


if __name__ == "__main__":
    main()
