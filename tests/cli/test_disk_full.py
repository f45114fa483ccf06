"""A store on a full disk: the run goes on, says once what could not be stored, and the
store stays sound (the cells whose values were lost run again next time)."""

from __future__ import annotations

import os
import re
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
    # The big value's save fails; whether the next cell's entry fails too depends on when the
    # failed save's partial file is gone (it is written in the background).
    assert re.search(r"could not store what (1 cell|2 cells) made", warnings[0]), warnings[0]
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
    second = executed.cells[1].metadata["nbcellar"]
    # Its small entry is stored, unless it was written while the failed save's partial file
    # still filled the disk (the save runs in the background): then it says so, for that reason.
    if "stored" in second:
        assert second["stored"] is False
        assert "No space left on device" in second["not_stored"]
    assert second["status"] == "ran"


def test_a_full_disk_is_said_in_a_notebook_once(small_disk: Path) -> None:
    import jupyter_client

    env = {**os.environ, "NBCELLAR_STORE": str(small_disk / ".nbcellar")}
    manager, client = jupyter_client.manager.start_new_kernel(kernel_name="python3", env=env)

    def stderr_of(code: str) -> str:
        msg_id = client.execute(code)
        said = []
        while True:
            message = client.get_iopub_msg(timeout=60)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            content = message["content"]
            if message["msg_type"] == "stream" and content["name"] == "stderr":
                said.append(content["text"])
            if message["msg_type"] == "status" and content["execution_state"] == "idle":
                return "".join(said)

    try:
        assert stderr_of("%load_ext nbcellar") == ""
        assert stderr_of(NOTEBOOK.split("# %%\n")[1]) == ""  # stored in the background
        told = (stderr_of("get_ipython().nbcellar.cache.store.flush()")
                + stderr_of("y = 1")).splitlines()  # fmt: skip
        assert len(told) == 1, told
        assert told[0].startswith("nbcellar: warning: the cache could not store what a cell made")
        assert "No space left on device" in told[0]
        assert stderr_of("big2 = big + 1") == ""
        assert stderr_of("get_ipython().nbcellar.cache.store.flush()") == ""
        assert stderr_of("z = 2") == ""  # said once, not for every cell
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_disk_with_no_byte_left_is_one_line_and_changes_nothing(
    small_disk: Path, tmp_path: Path
) -> None:
    """Not even the index can open: said as what it is (not as a damaged index)."""
    store = small_disk / ".nbcellar"
    notebook = tmp_path / "nb.py"
    notebook.write_text("# %%\nx = 41\n# %%\nprint(x + 1)\n")
    first = CliRunner().invoke(cli, ["run", "--store", str(store), str(notebook)])
    assert first.exit_code == 0, first.output
    with open(small_disk / "filler", "wb") as filler:  # every byte left
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass

    def files() -> list[tuple[str, int]]:  # (SQLite's own -wal and -shm files aside)
        return sorted((p.name, p.stat().st_size) for p in store.rglob("*")
                      if p.is_file() and not p.name.endswith(("-wal", "-shm")))  # fmt: skip

    before = files()
    notebook.write_text("# %%\nx = 1\n# %%\nprint(x + 1)\n")
    again = CliRunner().invoke(cli, ["run", "--store", str(store), str(notebook)])
    assert again.exit_code == 2, again.output
    assert again.stderr.strip().splitlines() == [
        f"nbcellar: error: no space left on the device of the store {store} (its index cannot "
        "even open); free some space there, or run with --no-cache (nothing was changed)"
    ]
    assert files() == before
    uncached = CliRunner().invoke(cli, ["run", "--no-cache", str(notebook)])
    assert uncached.exit_code == 0, uncached.output
