"""``nbcellar run --store s3://...`` on two machines (two cache folders): the second restores
the cells the first cached, and each sees the other's run records and executed notebooks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli
from nbcellar.runs.records import RunBook, load_log
from nbcellar.store import open_store
from tests.conftest import nbcellar_process

NOTEBOOK = """\
# %%
import numpy as np
data = np.arange(100_000) * 2

# %%
import nbcellar
total = int(data.sum())
print(total)
nbcellar.log(total=total, head=data[:3])
"""


def cli_ok(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), terminal_width=200)
    assert result.exit_code == 0, result.output
    return result


def run_process(notebook: Path, url: str, output: Path) -> None:
    """``nbcellar run`` in a process of its own, as on a machine of its own."""
    done = nbcellar_process("run", str(notebook), "--store", url, "-o", str(output))
    assert done.returncode == 0, done.stderr


def latest_run(url: str) -> Any:
    store = open_store(url)
    try:
        return RunBook(store).all()[-1], store.root
    finally:
        store.close()


def test_a_second_machine_restores_what_the_first_cached(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_bucket}/team"
    cli_ok("store", "init", "--shared", url)
    notebook = tmp_path / "nb.py"
    notebook.write_text(NOTEBOOK)

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-a"))
    run_process(notebook, url, tmp_path / "a.ipynb")
    first, _ = latest_run(url)
    assert first.cells["ran"] == 2
    assert first.cells["restored"] == 0

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-b"))
    run_process(notebook, url, tmp_path / "b.ipynb")
    second, root_b = latest_run(url)
    assert second.id != first.id
    store = open_store(url)
    logged = dict(load_log(store, first.id))  # what the first machine's run logged
    store.close()
    assert logged["total"] == 9999900000
    assert list(logged["head"]) == [0, 2, 4]
    assert second.cells["restored"] == 2, second.cells
    assert second.cells["ran"] == 0
    assert "9999900000" in (tmp_path / "b.ipynb").read_text()

    # Back on the first machine: the second's run, with its executed notebook.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-a"))
    # (A process of its own, as the first machine's would be: this process synced the first
    # machine's copy moments ago, and opening a store syncs at most once a second per process.)
    runs = nbcellar_process("runs", "--store", url)
    assert runs.returncode == 0, runs.stderr
    assert second.id[-6:] in runs.stdout or second.id in runs.stdout
    _, root_a = latest_run(url)
    assert root_a != root_b
    executed = root_a / "runs" / second.id / "executed.ipynb"
    cells = json.loads(executed.read_text())["cells"]
    assert any("9999900000" in json.dumps(c.get("outputs", [])) for c in cells)
