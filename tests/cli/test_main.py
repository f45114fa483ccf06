"""The command line itself: help and version everywhere, and ``nbcellar analyze``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbcellar import __version__
from nbcellar.cli.main import cli
from tests.conftest import CORPUS


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"nbcellar, version {__version__}"


@pytest.mark.parametrize("command", [[], *([name] for name in cli.commands)])
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output
    assert "Show this message and exit." in result.output


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from nbcellar.cli.main import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'IPython', 'pandas', 'numpy', 'jupyter_client', 'nbclient', 'nbformat'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_analyze_shows_dependencies_as_a_table(tmp_path: Path) -> None:
    script = tmp_path / "flow.py"
    script.write_text("# %%\nraw = [3, 1, 2]\n\n# %%\nraw.sort()\n\n# %%\ntop = raw[0]\n")
    result = CliRunner().invoke(cli, ["analyze", str(script)])
    assert result.exit_code == 0, result.output
    assert "3 code cells" in result.stdout
    lines = [ln for ln in result.stdout.splitlines() if "top = raw[0]" in ln]
    assert lines
    assert "[1], [2]" in lines[0]


def test_analyze_json_lists_every_code_cell(tmp_path: Path) -> None:
    path = CORPUS / "basics.ipynb"
    result = CliRunner().invoke(cli, ["analyze", str(path), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    code_cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert len(rows) == len(code_cells)
    assert {"reads", "writes", "mutated", "depends_on", "downstream", "code_hash"} <= set(rows[0])


def test_analyze_bad_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.ipynb"
    path.write_text('{"nbformat": 9}')
    result = CliRunner().invoke(cli, ["analyze", str(path)])
    assert result.exit_code == 2
    assert (
        result.stderr == f"nbcellar: error: {path}: nbformat version 9 is not supported "
        "(nbcellar reads versions 3 and 4) (open and save it with a current Jupyter)\n"
    )
