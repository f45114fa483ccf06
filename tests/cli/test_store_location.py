"""A command given a notebook uses the store its kernel would: found from the notebook's
folder, then from here; a new store goes in the project (here) when the notebook is in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli
from nbcellar.store.location import store_for_notebook


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("NBCELLAR_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "nb.py").write_text("# %%\nx = 1\n")
    return tmp_path


def test_a_store_beside_the_notebook_wins_over_one_here(here: Path) -> None:
    (here / ".nbcellar").mkdir()
    (here / "sub" / ".nbcellar").mkdir()
    assert store_for_notebook(None, here / "sub" / "nb.py") == here / "sub" / ".nbcellar"


def test_with_none_a_new_store_goes_in_the_project_or_beside_the_notebook(
    here: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert store_for_notebook(None, here / "sub" / "nb.py") == here / ".nbcellar"
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "nb.py"
    elsewhere.write_text("# %%\nx = 1\n")
    assert store_for_notebook(None, elsewhere) == elsewhere.parent / ".nbcellar"


@pytest.mark.slow
def test_status_and_run_use_the_notebooks_store(here: Path) -> None:
    notebook = str(here / "sub" / "nb.py")
    (here / "sub" / ".nbcellar").mkdir()
    ran = CliRunner().invoke(cli, ["run", notebook])
    assert ran.exit_code == 0, ran.output
    assert not (here / ".nbcellar").exists()  # nothing made here
    said = CliRunner().invoke(cli, ["status", notebook])
    assert "1 of 1 cells would be restored" in said.stdout
