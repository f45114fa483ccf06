"""``nbcellar show RUN --requirements``: pinned requirements of what a run's cells imported,
from the run's own kernel (not guessed from import lines)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

import nbcellar
from nbcellar.cli.main import cli

pytestmark = pytest.mark.slow


def test_a_run_knows_the_distributions_its_cells_imported(tmp_path: Path) -> None:
    path = tmp_path / "analysis.py"
    path.write_text("# %%\nimport json\nimport numpy as np\n\n# %%\nimport importlib\n"
                    "lib = importlib.import_module('pandas')\nx = np.ones(3)\n")  # fmt: skip
    first = nbcellar.run(path).records[0]
    assert first.requirements is not None
    pins = CliRunner().invoke(cli, ["show", first.id, "--requirements"])
    assert pins.exit_code == 0, pins.output
    lines = pins.stdout.splitlines()
    assert f"numpy=={importlib.metadata.version('numpy')}" in lines
    assert f"pandas=={importlib.metadata.version('pandas')}" in lines  # (imported by code)
    assert not [ln for ln in lines if ln.split("==")[0].lower() in
                ("cloudpickle", "xxhash", "ipykernel", "nbcellar", "json")]  # fmt: skip
    served = nbcellar.run(path).records[0]  # every cell restored, no kernel: not known
    told = CliRunner().invoke(cli, ["show", served.id, "--requirements"])
    assert told.exit_code == 2
    assert told.stderr.strip().splitlines() == [
        f"nbcellar: error: run {served.id} does not know what it imported (every cell was "
        "restored from the store, no kernel started); ask the run that executed its cells "
        "(see 'nbcellar runs')"
    ]


def test_nbcellar_counts_where_a_cell_imports_it(tmp_path: Path) -> None:
    """(Installed editable, as here, nbcellar is missing from the mapping of modules to
    distributions: it is found by its own name; and as no index has this copy, its line says
    the folder it came from, a direct reference pip installs.)"""
    path = tmp_path / "logged.py"
    path.write_text("# %%\nimport nbcellar\nnbcellar.log(x=1)\n")
    run = nbcellar.run(path).records[0]
    pins = CliRunner().invoke(cli, ["show", run.id, "--requirements"])
    assert pins.exit_code == 0, pins.output
    checkout = Path(nbcellar.__file__).resolve().parents[2]  # (src/nbcellar/__init__.py)
    version = importlib.metadata.version("nbcellar")
    assert f"nbcellar @ {checkout.as_uri()}  # {version}, installed from this folder" in (
        pins.stdout.splitlines()
    )


def test_a_run_of_the_standard_library_alone_says_so(tmp_path: Path) -> None:
    path = tmp_path / "plain.py"
    path.write_text("# %%\nimport json\nx = json.dumps([1])\n")
    run = nbcellar.run(path).records[0]
    pins = CliRunner().invoke(cli, ["show", run.id, "--requirements"])
    assert pins.exit_code == 0, pins.output
    assert pins.stdout == "# the run imported nothing beyond Python's standard library\n"
