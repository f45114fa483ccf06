"""``nbcellar demo``: the bundled project, run as a grid on real kernels, then from the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli

pytestmark = pytest.mark.slow


@pytest.mark.long  # (its whole grid: about a minute)
def test_the_demo_runs_its_grid_compares_reports_and_comes_back_from_the_cache(
    tmp_path: Path, private_store: Path
) -> None:
    folder = tmp_path / "demo"
    first = CliRunner().invoke(cli, ["demo", str(folder), "-j", "2"], terminal_width=200)
    assert first.exit_code == 0, first.output
    assert {p.name for p in folder.iterdir()} >= {
        "digits.ipynb", "features.py", "grid.yaml", "README.md", "report.html", "digits.runs"
    }  # fmt: skip
    assert "12 of 12 runs ok" in first.stdout
    # The slow preprocessing reads no parameter: it ran once and was restored everywhere else.
    preprocessing = next(ln for ln in first.stdout.splitlines() if "upsample(" in ln)
    assert "ran 1 time, restored in 11 runs" in preprocessing
    assert "* best: accuracy (highest), f1_macro (highest)" in first.stdout
    report = (folder / "report.html").read_text()
    assert report.count("<h3>confusion</h3>") == 1
    assert report.count("data:image/png;base64,") >= 12  # a confusion matrix per run
    assert "<h3>per_class</h3>" in report

    again = CliRunner().invoke(cli, ["demo", str(folder)], terminal_width=200)
    assert again.exit_code == 0, again.output
    assert "its files are kept as they are" in again.stdout
    assert "0 of 120 cells executed, 120 restored" in again.stdout


def test_the_demo_needs_a_folder(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    result = CliRunner().invoke(cli, ["demo", str(tmp_path / "taken")])
    assert result.exit_code == 2
    assert "is a file" in result.stderr
