"""Runs on a real ipyparallel cluster: one of its own (``executor="ipyparallel"``), or the
ipcluster running for an IPython profile (``ipyparallel://PROFILE``)."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import nbcellar
from nbcellar.cli.main import cli
from nbcellar.errors import NbcellarError
from nbcellar.runs.launch import CellDone, CellStarted, RunEnded, RunStarted

pytestmark = pytest.mark.slow
ipp = pytest.importorskip("ipyparallel", reason="the ipyparallel executor needs ipyparallel")
psutil = pytest.importorskip("psutil", reason="ipyparallel's own dependency")

PROFILE = "nbcellar-test"

NOTEBOOK = """\
# %% tags=["parameters"]
x = 1

# %%
import os
import nbcellar
shared = sum(range(1000))

# %%
y = x * shared
nbcellar.log(y=y, pid=os.getpid())
"""


@pytest.fixture(scope="module")
def ipython_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An IPython directory of the tests' own, so that nothing touches ~/.ipython."""
    folder = tmp_path_factory.mktemp("ipython")
    before = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            del os.environ["IPYTHONDIR"]
        else:
            os.environ["IPYTHONDIR"] = before


@pytest.fixture(scope="module")
def profile(ipython_dir: Path) -> Iterator[str]:
    """A running ipcluster of two engines on loopback, for the IPython profile PROFILE (what
    ``ipcluster start --profile PROFILE -n 2`` gives)."""
    before = set(ipyparallel_processes())
    cluster = ipp.Cluster(n=2, profile=PROFILE, cluster_id="", controller_ip="127.0.0.1")
    client = cluster.start_and_connect_sync()
    client.close()
    try:
        yield PROFILE
    finally:
        started = [p for pid, p in ipyparallel_processes().items() if pid not in before]
        cluster.stop_cluster_sync()
        psutil.wait_procs(started, timeout=15)  # (engines' nannies outlive them a moment)


def notebook(folder: Path, text: str = NOTEBOOK, name: str = "calc.py") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def cell_statuses(runset: Any, marker: str) -> list[str]:
    """What happened in each run to the cell whose source holds ``marker``."""
    found = []
    for record in runset.records:
        cells = json.loads(Path(record.output).read_text())["cells"]
        cell = next(c for c in cells if marker in "".join(c["source"]))
        found.append(cell["metadata"]["nbcellar"]["status"])
    return found


def ipyparallel_processes() -> dict[int, Any]:
    """Every process of an ipyparallel cluster on this machine, by pid."""
    found = {}
    for process in psutil.process_iter(["cmdline"]):
        if any("ipyparallel" in part for part in process.info["cmdline"] or ()):
            found[process.pid] = process
    return found


def test_a_grid_on_a_running_ipcluster_shares_its_common_cells(
    tmp_path: Path, private_store: Path, profile: str
) -> None:
    path = notebook(tmp_path)
    heard: list[Any] = []
    runset = nbcellar.run(path, grid={"x": [1, 2, 3, 4]}, executor=f"ipyparallel://{profile}",
                          progress=heard.append)  # fmt: skip
    local = nbcellar.run(path, grid={"x": [1, 2, 3, 4]}, output=tmp_path / "local")
    assert runset.values["y"].tolist() == local.values["y"].tolist()
    assert runset.values["y"].tolist() == [499500 * x for x in (1, 2, 3, 4)]
    assert [r.status for r in runset.records] == ["ok"] * 4
    # The cell every run shares ran once cluster-wide; the others restored it.
    assert cell_statuses(runset, "shared = sum").count("ran") == 1
    assert len(set(runset.values["pid"])) == 4  # a kernel of its own per run
    kinds = [type(e).__name__ for e in heard]
    assert kinds.count("RunStarted") == 4
    assert kinds.count("RunEnded") == 4
    assert kinds.count("CellStarted") == 16  # (with the injected cell: four code cells a run)
    assert kinds.count("CellDone") == 16
    for number in (1, 2, 3, 4):
        mine = [e for e in heard if e.number == number]
        assert isinstance(mine[0], RunStarted)
        assert isinstance(mine[-1], RunEnded)
        assert [e.index for e in mine if isinstance(e, CellStarted)] == [0, 1, 2, 3]
    # The local run of the same grid restores every cell the cluster's runs stored.
    assert set(cell_statuses(local, "shared = sum")) == {"restored"}


WAITS_FOR_THE_CLIENT = """\
# %% tags=["parameters"]
flag = ""

# %%
first = 1

# %%
import os
import time
import nbcellar
deadline = time.monotonic() + 60
while not os.path.exists(flag) and time.monotonic() < deadline:
    time.sleep(0.1)
nbcellar.log(heard=os.path.exists(flag))
"""


def test_cells_done_reach_the_client_while_the_run_runs(
    tmp_path: Path, private_store: Path, profile: str
) -> None:
    # The run waits for a file the client writes when it hears the run's first cell done: it
    # finds it only if that event came back while the run was still running.
    flag = tmp_path / "heard-first-cell"
    path = notebook(tmp_path, WAITS_FOR_THE_CLIENT, "waits.py")

    def listener(event: Any) -> None:
        if isinstance(event, CellDone) and event.cell.index == 2:  # first = 1 (after the
            flag.touch()  # parameters cell and the injected one)

    runset = nbcellar.run(path, params={"flag": str(flag)}, executor=f"ipyparallel://{profile}",
                          progress=listener)  # fmt: skip
    assert runset.records[0].values == {"heard": True}


@pytest.mark.long  # (slower: the default run stays within its ten minutes)
def test_its_own_cluster_starts_for_the_launch_and_is_gone_after(
    tmp_path: Path, private_store: Path, ipython_dir: Path
) -> None:
    path = notebook(tmp_path)
    before = set(ipyparallel_processes())
    temporary = set(Path(tempfile.gettempdir()).glob("nbcellar-ipp-*"))
    seen: dict[int, Any] = {}
    others = set(ipython_dir.glob("profile_*/security/*"))  # (a running ipcluster's)
    connection_files: set[Path] = set()

    def listener(event: Any) -> None:
        if isinstance(event, CellStarted):  # the cluster is up: note its processes and files
            seen.update({pid: p for pid, p in ipyparallel_processes().items()
                         if pid not in before})  # fmt: skip
            connection_files.update(set(ipython_dir.glob("profile_*/security/*")) - others)

    runset = nbcellar.run(path, grid={"x": [1, 2]}, jobs=2, executor="ipyparallel",
                          progress=listener)  # fmt: skip
    assert runset.values["y"].tolist() == [499500, 2 * 499500]
    names = [" ".join(p.info["cmdline"]) for p in seen.values()]
    assert any("ipyparallel.controller" in n for n in names), names
    assert sum(n.endswith("ipyparallel.engine") for n in names) == 2, names  # -j 2
    left = [p for p in seen.values() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == []
    assert not any(psutil.pid_exists(int(pid)) for pid in runset.values["pid"])  # kernels too
    assert set(Path(tempfile.gettempdir()).glob("nbcellar-ipp-*")) == temporary
    # Its profile (connection files, logs) was a temporary one, so that it meets no other
    # cluster's: the IPython directory held none of its files (kernels and engines create a
    # default profile there, as local kernels do).
    assert connection_files == set()


@pytest.mark.long  # (a cluster of its own: slower)
def test_only_engines_of_our_own_cluster_skip_the_schema_grammars(
    ipython_dir: Path, profile: str
) -> None:
    """Engines nbcellar starts run nbcellar.runs.own_workers first (0.8 s less on each
    engine's first run); the engines of a user's ipcluster are left alone."""
    from nbcellar.runs.on_ipyparallel import IpyparallelExecutor

    ours = IpyparallelExecutor.at("ipyparallel")
    try:
        ours._start_cluster(2)
        ours.client.wait_for_engines(2, timeout=60)
        assert _iri_grammars(ours.client) == ["None", "None"]
    finally:
        ours.close()
    theirs = ipp.Client(profile=profile)
    try:
        assert "None" not in _iri_grammars(theirs)  # (not imported yet, or imported)
    finally:
        theirs.close()


def _iri_grammars(client: Any) -> list[str]:
    """What each engine holds for rfc3987_syntax (asked as code: a function of this module
    would import it there, and nbcellar's command with it)."""
    view = client[:]
    view.execute("import sys; _said = repr(sys.modules.get('rfc3987_syntax', 'not imported'))",
                 block=True)  # fmt: skip
    return list(view.pull("_said", block=True))


SLOW = """\
# %% tags=["parameters"]
x = 1
where = ""

# %%
import os
import pathlib
import time
pathlib.Path(where, f"{x}.pid").write_text(str(os.getpid()))
time.sleep(120)
"""


def test_cancelling_a_launch_stops_its_runs_on_the_cluster(
    tmp_path: Path, private_store: Path, profile: str
) -> None:
    path = notebook(tmp_path, SLOW, "slow.py")
    pids = tmp_path / "pids"
    pids.mkdir()
    handle = nbcellar.run(path, grid={"x": [1, 2, 3], "where": [str(pids)]},
                          executor=f"ipyparallel://{profile}", wait=False)  # fmt: skip
    deadline = time.monotonic() + 120
    while len(list(pids.iterdir())) < 2:  # two engines: two runs in their sleep, one queued
        assert time.monotonic() < deadline, handle.status()
        time.sleep(0.2)
    assert sorted(handle.status().values()) == ["queued", "running", "running"]
    kernels = [int(p.read_text()) for p in pids.iterdir()]
    handle.cancel()
    assert set(handle.status().values()) == {"cancelled"}
    assert [r.status for r in nbcellar.runs().records] == ["cancelled"] * 3
    assert not any(psutil.pid_exists(pid) for pid in kernels)  # their kernels stopped
    # The engines are free again, and the queued run never started on either.
    after = nbcellar.run(notebook(tmp_path), grid={"x": [7, 8]},
                         executor=f"ipyparallel://{profile}")  # fmt: skip
    assert after.values["y"].tolist() == [7 * 499500, 8 * 499500]
    assert len(list(pids.iterdir())) == 2
    # The controller says so too: every task answered, the queued one skipped on its engine.
    client = ipp.Client(profile=profile, timeout=10)
    try:
        launch = client.hub_history()[-5:-2]  # (this launch's tasks, then the 2 after)
        answers = [json.loads(client.get_result(i).get(timeout=10)) for i in launch]
    finally:
        client.close()
    assert sorted(a["status"] for a in answers) == ["cancelled", "cancelled", "skipped"]


def test_a_profile_with_no_cluster_is_one_line_and_nothing_is_written(
    tmp_path: Path, private_store: Path, ipython_dir: Path
) -> None:
    path = notebook(tmp_path)
    result = CliRunner().invoke(cli, ["run", str(path), "--executor", "ipyparallel://nowhere"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nbcellar: error: no ipcluster runs for IPython profile "
                               "'nowhere'")  # fmt: skip
    assert "ipcluster start --profile nowhere" in lines[0]
    assert not (tmp_path / "calc.out.ipynb").exists()
    assert nbcellar.runs().records == []


def test_a_connection_file_names_a_running_cluster_too(
    tmp_path: Path, private_store: Path, profile: str, ipython_dir: Path
) -> None:
    found = ipython_dir / f"profile_{profile}" / "security" / "ipcontroller-client.json"
    runset = nbcellar.run(notebook(tmp_path), params={"x": 3}, executor=f"ipyparallel://{found}")
    assert runset.values["y"].tolist() == [3 * 499500]
    with pytest.raises(NbcellarError, match=r"no connection file .*nowhere\.json: a running "):
        nbcellar.run(notebook(tmp_path), executor=f"ipyparallel://{tmp_path / 'nowhere.json'}")


@pytest.mark.parametrize("address", ["ipyparallel://", "ipyparallel://a/b", "ipyparallel:// x"])
def test_a_malformed_address_is_one_error(address: str, tmp_path: Path) -> None:
    with pytest.raises(NbcellarError, match="a running ipcluster is ipyparallel://PROFILE"):
        nbcellar.run(notebook(tmp_path), executor=address, cache=False)


def masked(output: str) -> list[str]:
    """The lines of ``nbcellar run``'s output, without what differs between any two runs:
    record ids, seconds, column widths, and which of two runs started at once ran the cells
    they share (the summary still counts them)."""
    lines = []
    for line in output.splitlines():
        line = re.sub(r"\b\d{8}-\d{6}-[0-9a-f]{6}\b", "RECORD", line)
        line = re.sub(r"\b\d+\.\d\b", "S", line)
        line = re.sub(r"\bok\s+\d+\s+\d+\b", "ok RAN RESTORED", line)
        lines.append(" ".join(line.split()))
    return lines


def test_the_command_line_prints_what_a_local_run_prints(
    tmp_path: Path, private_store: Path, profile: str
) -> None:
    outputs = {}
    for executor in ("local", f"ipyparallel://{profile}"):
        folder = tmp_path / executor.partition(":")[0]
        folder.mkdir()
        path = notebook(folder)
        result = CliRunner().invoke(
            cli, ["run", str(path), "-p", "x=1,2", "--executor", executor,
                  "--store", str(folder / ".nbcellar")], terminal_width=200,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs[executor] = masked(result.stdout.replace(str(folder), "FOLDER"))
    local, on_cluster = outputs.values()
    assert "2 of 2 runs ok" in on_cluster[-1]
    assert on_cluster == local, "\n".join(on_cluster + local)


@pytest.fixture
def quick_cluster(ipython_dir: Path) -> Iterator[tuple[str, Any]]:
    """A running ipcluster of two engines whose controller misses a lost engine within ~15 s
    (heartbeats once a second), and a client of the test's own to find and kill engines."""
    name = "nbcellar-faults"
    cluster = ipp.Cluster(n=2, profile=name, cluster_id="", controller_ip="127.0.0.1",
                          controller_args=["--HeartMonitor.period=1000"])  # fmt: skip
    client = cluster.start_and_connect_sync()
    client.wait_for_engines(2, timeout=60)
    try:
        yield name, client
    finally:
        client.close()
        cluster.stop_cluster_sync()


def kill_the_engine_running(
    quick_cluster: tuple[str, Any], path: Path, params: dict[str, Any], reached: Any
) -> str:
    """Run ``path`` on the cluster, SIGKILL the engine running it once ``reached()`` (and
    what it cached meanwhile landed), wait for the launch; the engine killed."""
    import signal

    from tests.runs.test_dask_faults import until

    name, client = quick_cluster
    pids = dict(zip(client.ids, client[:].apply_sync(os.getpid), strict=True))  # (while idle)
    handle = nbcellar.run(path, params=params, executor=f"ipyparallel://{name}", wait=False)
    until(reached)
    time.sleep(2.0)  # (the cells before, and the last checkpoint, are written in the background)
    running = [r for r in nbcellar.runs().records if r.status == "running" and r.worker]
    os.kill(pids[int(str(running[0].worker).removeprefix("engine "))], signal.SIGKILL)
    handle.wait()
    return str(running[0].worker)


@pytest.mark.long
def test_an_engine_killed_mid_run_is_retried_on_another_with_its_cells_restored(
    tmp_path: Path, private_store: Path, quick_cluster: tuple[str, Any]
) -> None:
    from tests.runs.test_dask_faults import NOTEBOOK as GATED

    path = notebook(tmp_path, GATED, "slow.py")
    killed = kill_the_engine_running(
        quick_cluster, path, {"x": 3, "gate": str(tmp_path / "gate")},
        lambda: bool(list(tmp_path.glob("gate.*.started"))),
    )  # fmt: skip
    record = nbcellar.runs().records[0]
    assert record.status == "ok", record
    assert record.attempts == 2
    assert record.worker != killed  # (on the other engine)
    assert record.cells["restored"] >= 2, record.cells
    assert nbcellar.runs().values["y"].tolist() == [3 * 499500]


@pytest.mark.long
def test_an_engine_lost_after_the_client_is_gone_is_retried_by_the_controller(
    tmp_path: Path, private_store: Path, quick_cluster: tuple[str, Any]
) -> None:
    import signal

    from tests.runs.test_dask_faults import NOTEBOOK as GATED
    from tests.runs.test_dask_faults import nbcellar_command, nbcellar_process, until

    name, client = quick_cluster
    pids = dict(zip(client.ids, client[:].apply_sync(os.getpid), strict=True))
    path = notebook(tmp_path, GATED, "slow.py")
    launched = nbcellar_process("run", str(path), "-p", "x=5", "-p",
                                f"gate={tmp_path / 'gate'}", "--executor",
                                f"ipyparallel://{name}")  # fmt: skip
    until(lambda: list(tmp_path.glob("gate.*.started")))
    time.sleep(2.0)  # (the cells before are cached in the background: let them land)
    launched.send_signal(signal.SIGKILL)
    launched.communicate(timeout=30)
    running = [r for r in nbcellar.runs().records if r.status == "running" and r.worker]
    os.kill(pids[int(str(running[0].worker).removeprefix("engine "))], signal.SIGKILL)
    launches = json.loads(nbcellar_command("jobs", "--json").stdout)
    waited = nbcellar_command("jobs", "wait", launches[0]["id"], "--timeout", "90")
    assert "1 ok" in waited.stdout, waited.stdout + waited.stderr
    record = nbcellar.runs().records[0]
    assert (record.status, record.attempts) == ("ok", 2)
    assert record.worker != running[0].worker
    assert record.cells["restored"] >= 2, record.cells
    assert nbcellar.runs().values["y"].tolist() == [5 * 499500]


@pytest.mark.long
def test_runs_on_an_ipcluster_outlive_a_killed_client_and_are_cancelled_from_elsewhere(
    tmp_path: Path, private_store: Path, profile: str
) -> None:
    import signal

    from tests.runs.test_dask_faults import NOTEBOOK as GATED
    from tests.runs.test_dask_faults import nbcellar_command, nbcellar_process, until

    path = notebook(tmp_path, GATED, "slow.py")
    gate = tmp_path / "gate"
    client = nbcellar_process("run", str(path), "-p", "x=1,2,3", "-p", f"gate={gate}",
                              "--executor", f"ipyparallel://{profile}")  # fmt: skip
    until(lambda: len(list(tmp_path.glob("gate.*.started"))) == 2)  # (two engines: one queued)
    client.send_signal(signal.SIGKILL)
    client.communicate(timeout=30)
    launches = json.loads(nbcellar_command("jobs", "--json").stdout)
    assert launches[0]["counts"] == {"running": 2, "queued": 1}
    gate.touch()  # the controller runs the queued task too, the client gone
    waited = nbcellar_command("jobs", "wait", launches[0]["id"], "--timeout", "90")
    assert "3 ok" in waited.stdout, waited.stdout + waited.stderr
    assert len(list((tmp_path / "slow.runs").glob("*.ipynb"))) == 3  # written by jobs wait

    gate.unlink()
    for started in tmp_path.glob("gate.*.started"):
        started.unlink()
    handle = nbcellar.run(path, grid={"x": [4, 5, 6, 7]}, params={"gate": str(gate)}, jobs=2,
                          executor=f"ipyparallel://{profile}", wait=False)  # fmt: skip
    until(lambda: len(list(tmp_path.glob("gate.*.started"))) == 2)
    cancelled = nbcellar_command("jobs", "cancel", str(handle.id))
    assert cancelled.stdout.startswith(f"launch {handle.id}: cancelled"), cancelled.stderr
    until(lambda: all(s not in ("queued", "running") for s in handle.status().values()))
    assert sorted(handle.status().values()) == ["cancelled"] * 4
    assert len(list(tmp_path.glob("gate.*.started"))) == 2  # the queued ones never started
    assert len(handle.wait()) == 0  # the client follows them to their end: none failed


@pytest.mark.long
def test_a_loop_whose_engine_died_goes_on_from_its_last_checkpoint(
    tmp_path: Path, private_store: Path, quick_cluster: tuple[str, Any]
) -> None:
    import random

    from tests.runs.test_resume_on_a_cluster import NOTEBOOK as TRAINING

    path = notebook(tmp_path, TRAINING, "train.py")
    stop = random.randint(1, 8)  # the step its engine dies in
    kill_the_engine_running(
        quick_cluster, path, {"gate": str(tmp_path / "gate"), "stop": stop},
        (tmp_path / "gate.stopped").exists,
    )  # fmt: skip
    resumed = nbcellar.runs().records[0]
    assert (resumed.status, resumed.attempts) == ("ok", 2)
    done = (tmp_path / "gate.steps").read_text().split()
    assert done == [str(k) for k in range(10)], (stop, done)  # no step ran twice
    plain = nbcellar.run(path, output=tmp_path / "plain.ipynb").records[0]
    for key in ("w", "last", "drawn"):  # the weights, the losses, the random generator
        assert resumed.values[key] == plain.values[key], key
