"""A store on a full disk: the run goes on, says once what could not be stored, and the
store stays sound (the cells whose values were lost run again next time)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from nbcellar.cli.main import cli

pytestmark = pytest.mark.slow

NOTEBOOK = "# %%\nimport numpy as np\nbig = np.ones(2_000_000)\n# %%\nprint(int(big.sum()))\n"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB file system (tmpfs), for a store that fills it."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root and mount(8)")
    folder = tmp_path / "disk"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)],
                          capture_output=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_is_said_once_and_the_store_stays_sound(
    small_disk: Path, tmp_path: Path
) -> None:
    store = small_disk / ".nbcellar"
    notebook = tmp_path / "nb.py"
    notebook.write_text(NOTEBOOK)
    first = CliRunner().invoke(cli, ["run", "--store", str(store), str(notebook)])
    assert first.exit_code == 0, first.output
    warnings = [ln for ln in first.stderr.splitlines() if ln.startswith("nbcellar: warning:")]
    assert len(warnings) == 1, first.stderr
    assert "No space left on device" in warnings[0]
    assert "could not store what 1 cell made" in warnings[0]
    verify = CliRunner().invoke(cli, ["store", "verify", "--store", str(store)])
    assert verify.exit_code == 0, verify.output
    again = CliRunner().invoke(cli, ["run", "--store", str(store), str(notebook)])
    assert again.exit_code == 0, again.output
    rows = {ln.split()[0]: ln for ln in again.stdout.splitlines() if ln.strip().startswith("[")}
    assert "ran" in rows["[1]"]  # its value was never stored: it runs again
    assert "2000000" in (tmp_path / "nb.out.ipynb").read_text()


def test_the_cell_whose_values_were_lost_says_so_in_its_metadata(
    small_disk: Path, tmp_path: Path
) -> None:
    import nbformat

    notebook = tmp_path / "nb.py"
    notebook.write_text(NOTEBOOK)
    done = CliRunner().invoke(cli, ["run", "--store", str(small_disk / ".nbcellar"),
                                    str(notebook)])  # fmt: skip
    assert done.exit_code == 0, done.output
    executed = nbformat.read(tmp_path / "nb.out.ipynb", as_version=4)
    first = executed.cells[0].metadata["nbcellar"]
    assert first["stored"] is False
    assert "No space left on device" in first["not_stored"]
    assert "stored" not in executed.cells[1].metadata["nbcellar"]
