"""Every example in examples/ runs, offline, and shows what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True)
def _isolated_jupyter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The notebook's kernel keeps its history and connection files in the test's directory."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))


def _run(script: str, *args: str, tmp_path: Path) -> str:
    env = dict(os.environ, GOVERNED_DB_AUDIT=str(tmp_path / "audit"), PLOOMBER_STATS_ENABLED="false")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_example_is_covered() -> None:
    """A new example needs a test here."""
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".py", ".ipynb")) == [
        "agent_loop.py", "classification_run.py", "governed_notebook.ipynb", "webapp.py",
    ]


def test_agent_loop(tmp_path: Path) -> None:
    """The scripted agent is refused an unbounded DELETE, follows the next step, and sees masked rows."""
    steps = [json.loads(line) for line in _run("agent_loop.py", "--db", str(tmp_path / "s.db"),
                                               tmp_path=tmp_path).splitlines()]
    assert [s["tool"] for s in steps] == ["list_tables", "describe_table", "describe_table", "run_query",
                                          "run_query", "run_query"]
    refused = steps[3]
    assert refused["error"].startswith("refused by rule") and "Next step:" in refused["error"]
    assert steps[4]["result"]["rows_affected"] == 1  # only the stale ticket went
    final = steps[5]["result"]
    assert final["columns"] == ["name", "email", "open_tickets"]
    assert "ada@example.com" not in json.dumps(final) and len(final["rows"]) == 2


def test_webapp_selftest(tmp_path: Path) -> None:
    """The web app serves masked rows and answers a refused purge with 403 and the rule, data intact."""
    lines = _run("webapp.py", "--selftest", "--db", str(tmp_path / "web.db"), tmp_path=tmp_path).splitlines()
    first, purge, after = (line.split(" ", 3) for line in lines)
    assert first[:3] == ["GET", "/customers", "200"] and "ada@example.com" not in first[3]
    assert purge[:3] == ["POST", "/admin/purge", "403"] and "Next step" in purge[3]
    assert after[2] == "200" and len(json.loads(after[3])) == 2


def test_classification_run(tmp_path: Path) -> None:
    """The classification run finds the e-mail column by its values and masks it with the saved catalog."""
    out = _run("classification_run.py", "--out", str(tmp_path / "run"), tmp_path=tmp_path)
    assert "members.contact" in out and "EMAIL" in out
    assert (tmp_path / "run" / "governed-db-catalog.yaml").exists()
    assert "ada@example.com" not in out.split("catalog written")[1]


def test_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example notebook runs top to bottom in a real kernel; the refusal cell shows the HTML box."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("sql.magic")
    monkeypatch.setenv("PLOOMBER_STATS_ENABLED", "false")
    nb = nbformat.read(EXAMPLES / "governed_notebook.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs: list[Any] = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    text = json.dumps(outputs)
    assert "governed_db — Refused" in html
    assert "ada@example.com" not in text
    assert "| pro  |     2     |" in text  # jupysql answered through the governed engine
