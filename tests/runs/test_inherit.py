"""``nbcellar.inherit`` from a notebook that is not running: its cached state, or a headless run;
selection, isolation, unserializable values, and composition with the child's own cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli
from nbcellar.runs.inherit import InheritError, inherit

pytestmark = pytest.mark.slow

BASE = [
    "import sqlite3\nimport numpy as np\nimport pandas as pd",
    "data = np.arange(1_000_000, dtype=np.float64)\nframe = pd.DataFrame({'x': [1, 2, 3]})",
    "def scale(v):\n    return v * factor\n\nfactor = 2\nitems = [1, 2, 3]\nops = {'scale': scale}",
    "conn = sqlite3.connect(':memory:')\nconn.execute('create table t (v)')",
    "summary = float(data.sum())",
]


def write(path: Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python", "language": "python"}
    nbformat.write(nb, path)
    return path


def table_rows(shown: str) -> dict[str, str]:
    """The rows of the cell table, by cell number (not the "why" lines after it)."""
    rows: dict[str, str] = {}
    for line in shown.splitlines():
        if line.strip().startswith("["):
            rows.setdefault(line.split()[0], line)
    return rows


def run(path: Path) -> str:
    result = CliRunner().invoke(cli, ["run", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_a_base_never_run_is_one_clear_error(tmp_path: Path) -> None:
    base = write(tmp_path / "base.ipynb", BASE)
    with pytest.raises(InheritError, match=r"never run with nbcellar; run it first: nbcellar run"):
        inherit(base, into={})
    with pytest.raises(InheritError, match="no notebook"):
        inherit(tmp_path / "missing.ipynb", into={})


def test_the_cached_state_of_the_last_run_comes_back_without_a_kernel(tmp_path: Path) -> None:
    base = write(tmp_path / "base.ipynb", BASE)
    run(base)
    child: dict[str, Any] = {}
    got = inherit(base, into=child)
    assert "cached state of its last run" in got.source
    assert child["summary"] == float(np.arange(1_000_000).sum())
    assert child["scale"](5) == 10  # a function, reading its global from the child
    assert child["ops"]["scale"] is child["scale"]  # also in a dict holding it
    assert list(child["frame"]["x"]) == [1, 2, 3]
    # The connection could not be pickled: its cell ran again, in the child.
    assert "conn" in got.rebuilt
    assert child["conn"].execute("select count(*) from t").fetchone() == (0,)
    assert "summary" in repr(got)
    assert not {"In", "Out", "get_ipython", "_"} & set(child)

    child["factor"] = 3
    assert child["ops"]["scale"](5) == 15

    # Isolation: changing the child's values in place changes nothing the next child gets.
    child["data"][:10] = -1.0
    child["items"].append(4)
    second: dict[str, Any] = {}
    inherit(base, into=second)
    assert second["data"][:10].tolist() == list(range(10))
    assert second["items"] == [1, 2, 3]

    only: dict[str, Any] = {}
    picked = inherit(base, names=["factor", "items"], into=only)
    assert set(only) == {"factor", "items"}
    assert picked.names == ["factor", "items"]
    rest: dict[str, Any] = {}
    inherit(base, exclude=["data", "conn"], into=rest)
    assert "data" not in rest
    assert "conn" not in rest
    assert "frame" in rest


def test_an_edited_base_runs_headless_with_its_cache(tmp_path: Path) -> None:
    base = write(tmp_path / "base.ipynb", BASE)
    run(base)
    write(base, [*BASE[:-1], "summary = float(data.sum()) + 1"])
    child: dict[str, Any] = {}
    got = inherit(base, into=child)
    assert got.source.startswith("ran it headless: 1 of 5 cells ran")
    assert child["summary"] == float(np.arange(1_000_000).sum()) + 1
    assert child["conn"].execute("select 1").fetchone() == (1,)
    # That run is remembered: the next child needs no kernel.
    again = inherit(base, into={})
    assert "cached state" in again.source


def test_a_child_notebook_caches_its_own_cells_on_the_inherited_versions(tmp_path: Path) -> None:
    base = write(tmp_path / "base.ipynb", BASE)
    run(base)
    child = write(
        tmp_path / "child.ipynb",
        [
            "import nbcellar\nnbcellar.inherit('base.ipynb', exclude=['conn'])",
            "doubled = scale(summary)",
        ],
    )
    run(child)
    second = run(child)
    lines = table_rows(second)
    assert "ran" in lines["[1]"]  # inheriting always runs: the base may have changed
    assert "restored" in lines["[2]"]  # the same inherited values: the cell below is cached
    # The base changes: the child's cell below the inheriting cell runs again.
    write(base, [*BASE[:-1], "summary = 7.0"])
    run(base)
    third = run(child)
    lines = table_rows(third)
    assert "ran" in lines["[2]"]

    # A grandchild inherits the child, which inherits the base.
    grandchild: dict[str, Any] = {}
    inherit(child, into=grandchild, run=True)
    assert grandchild["doubled"] == 14.0


@pytest.mark.long  # (slower: the default run stays within its ten minutes)
def test_every_run_of_a_grid_inherits_the_same_base_without_running_it(tmp_path: Path) -> None:
    base = write(tmp_path / "base.ipynb", BASE)
    run(base)
    child = tmp_path / "child.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("factor = 1", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(
                "import nbcellar\nnbcellar.inherit('base.ipynb', exclude=['factor', 'conn'])"
            ),
            nbformat.v4.new_code_cell("print(scale(summary))"),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python", "language": "python"}
    nbformat.write(nb, child)
    result = CliRunner().invoke(cli, ["run", str(child), "-p", "factor=1,3", "-j", "2"])
    assert result.exit_code == 0, result.output
    for number, factor in ((1, 1), (2, 3)):
        executed = nbformat.read(tmp_path / "child.runs" / f"00{number}-factor={factor}.ipynb", 4)
        shown = "".join(
            o.get("data", {}).get("text/plain", "") + o.get("text", "")
            for c in executed.cells
            for o in c.get("outputs", [])
        )
        assert "the cached state of its last run; no kernel started" in shown
        assert f"{float(np.arange(1_000_000).sum()) * factor}" in shown
