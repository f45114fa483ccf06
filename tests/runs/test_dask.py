"""Runs on a real Dask cluster: a LocalCluster of our own (``executor="dask"``), or a running
scheduler (``dask://HOST:PORT``), as on any Dask cluster."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import nbcellar
from nbcellar.cli.main import cli
from nbcellar.errors import NbcellarError

pytestmark = pytest.mark.slow
distributed = pytest.importorskip("distributed", reason="the Dask executor needs distributed")

NOTEBOOK = """\
# %% tags=["parameters"]
x = 1

# %%
import os
import nbcellar
shared = sum(range(1000))

# %%
y = x * shared
with open(f"/proc/{os.getppid()}/cmdline", "rb") as parent:
    started_by = b" ".join(parent.read().split(bytes(1))).decode()
nbcellar.log(y=y, pid=os.getpid(), started_by=started_by)
"""


@pytest.fixture
def scheduler() -> Iterator[str]:
    """A running Dask scheduler with two worker processes, on loopback."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )  # fmt: skip
    try:
        yield str(cluster.scheduler_address).removeprefix("tcp://")
    finally:
        cluster.close()


def notebook(folder: Path) -> Path:
    path = folder / "calc.py"
    path.write_text(NOTEBOOK)
    return path


def test_a_grid_on_a_local_dask_cluster_shares_its_common_cells(
    tmp_path: Path, private_store: Path
) -> None:
    path = notebook(tmp_path)
    heard: list[Any] = []
    runset = nbcellar.run(path, grid={"x": [1, 2, 3, 4]}, jobs=2, executor="dask",
                          progress=heard.append)  # fmt: skip
    assert runset.values["y"].tolist() == [499500 * x for x in (1, 2, 3, 4)]
    assert [r.status for r in runset.records] == ["ok"] * 4
    # The cell every run shares ran once cluster-wide; the others restored it.
    shared = [json.loads((Path(r.output)).read_text())["cells"] for r in runset.records]
    statuses = [next(c["metadata"]["nbcellar"]["status"] for c in cells
                     if "shared = sum" in "".join(c["source"])) for cells in shared]  # fmt: skip
    assert statuses.count("ran") == 1, statuses
    kernels = set(runset.values["pid"])
    assert len(kernels) == 4  # a kernel of its own per run
    # Forked from a server each worker keeps, rather than started from scratch every run.
    assert all("nbcellar.runs.forkserver" in s for s in runset.values["started_by"])
    kinds = [type(e).__name__ for e in heard]
    assert kinds.count("RunStarted") == 4
    assert kinds.count("RunEnded") == 4
    assert kinds.count("CellDone") == 16  # (with the injected cell: four code cells a run)


# (Sent by value: a function of this module would import it there, and nbcellar's CLI with it.)
_iri_grammars = lambda: repr(__import__("sys").modules.get("rfc3987_syntax", "not imported"))  # noqa: E731


def test_only_workers_of_our_own_cluster_skip_the_schema_grammars(scheduler: str) -> None:
    """A LocalCluster nbcellar starts preloads nbcellar.runs.own_workers (0.8 s less on each
    worker's first run, as the command saves for itself); a user's workers are left alone."""
    from nbcellar.runs.on_dask import DaskExecutor

    ours = DaskExecutor(None)
    try:
        said = ours.connect(2).run(_iri_grammars)
    finally:
        ours.release()
    assert list(said.values()) == ["None", "None"]  # (import refused: never compiled)
    theirs = distributed.Client(scheduler, set_as_default=False)
    try:
        assert "None" not in theirs.run(_iri_grammars).values()  # (not imported, or imported)
    finally:
        theirs.close()


def test_runs_on_a_running_scheduler_as_on_any_dask_cluster(
    tmp_path: Path, private_store: Path, scheduler: str
) -> None:
    path = notebook(tmp_path)
    result = CliRunner().invoke(
        cli, ["run", str(path), "-p", "x=5,6", "--executor", f"dask://{scheduler}"],
        terminal_width=200,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 of 2 runs ok" in result.stdout
    assert nbcellar.runs(grid="last").values["y"].tolist() == [499500 * 5, 499500 * 6]


@pytest.mark.long  # (slower: the default run stays within its ten minutes)
def test_an_unreachable_scheduler_is_one_line_and_nothing_is_written(
    tmp_path: Path, private_store: Path
) -> None:
    path = notebook(tmp_path)
    result = CliRunner().invoke(cli, ["run", str(path), "--executor", "dask://127.0.0.1:9"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nbcellar: error: cannot reach the Dask scheduler at 127.0.0.1:9")
    assert not (tmp_path / "calc.out.ipynb").exists()
    assert nbcellar.runs().records == []


@pytest.mark.parametrize("address", ["dask://", "dask://host", "dask://host:port"])
def test_a_malformed_scheduler_address_is_one_error(address: str, tmp_path: Path) -> None:
    with pytest.raises(NbcellarError, match="a scheduler is dask://HOST:PORT"):
        nbcellar.run(notebook(tmp_path), executor=address, cache=False)


def test_a_cluster_of_our_own_stops_when_the_launch_fails_before_it_starts(
    tmp_path: Path,
) -> None:
    import multiprocessing

    blocked = tmp_path / "a-file"
    blocked.write_text("not a store")
    with pytest.raises(NbcellarError, match=r"cannot use .* as a store"):
        nbcellar.run(notebook(tmp_path), executor="dask", jobs=2, store=blocked / ".nbcellar")
    deadline = time.monotonic() + 30
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not multiprocessing.active_children()  # the LocalCluster's workers stopped
