"""``nbcellar init``: a new project where ``nbcellar build``, ``nbcellar test`` and pytest work
at once (its package installed editable into this environment, removed after)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli

pytestmark = pytest.mark.slow


def nbcellar_command(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("nbcellar")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


@pytest.mark.long
def test_init_makes_a_project_that_builds_and_tests_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "Churn Study"
    made = CliRunner().invoke(cli, ["init", str(folder), "--paired"])
    try:
        assert made.exit_code == 0, made.output
        assert "package churn_study: installed editable" in made.stdout
        for relative in ("pipeline.yaml", "tasks/load.py", "tasks/load.ipynb",
                         "src/churn_study/__init__.py", "tests/test_churn_study.py",
                         "pyproject.toml", ".gitignore", "README.md"):  # fmt: skip
            assert (folder / relative).is_file(), relative
        ignored = (folder / ".gitignore").read_text().split()
        assert {".nbcellar/", ".nbcellar-build/", ".nbcellar-smoke/", "products/"} <= set(ignored)
        assert "nbcellar build" in (folder / "README.md").read_text()
        # (As a user would, in new processes: this one's import path predates the install.)
        built = nbcellar_command(folder, "build")
        assert built.returncode == 0, built.stdout + built.stderr
        assert built.stdout.splitlines()[-1] == "3 tasks: 3 ran"
        tested = nbcellar_command(folder, "test")
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert tested.stdout.splitlines()[-1].startswith("3 passed in ")
        smoke_rows = folder / ".nbcellar-smoke" / "products" / "rows.csv"
        assert len(smoke_rows.read_text().splitlines()) == 50  # the smoke profile's rows
        assert len((folder / "products" / "rows.csv").read_text().splitlines()) == 10_000
        own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "tests"], cwd=folder, capture_output=True, text=True)  # fmt: skip
        assert own.returncode == 0, own.stdout + own.stderr
        again = CliRunner().invoke(cli, ["init", str(folder)])
        assert again.exit_code == 2
        assert again.stderr.strip().splitlines() == [
            f"nbcellar: error: {folder / 'pipeline.yaml'} exists; nbcellar init writes only new "
            "files (use an empty folder, or move it away)"
        ]
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "churn-study"],
                       capture_output=True, check=False)  # fmt: skip
