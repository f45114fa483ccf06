"""Faults on a real Dask cluster: a worker killed in the middle of a run (retried elsewhere,
its completed cells restored), a client killed while its runs go on (``nbcellar jobs`` from a
new process follows them), a launch cancelled from another process, a scheduler that goes
away."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import nbcellar
from nbcellar.errors import NbcellarError

pytestmark = [pytest.mark.slow, pytest.mark.long]
distributed = pytest.importorskip("distributed", reason="the Dask executor needs distributed")

# The third cell waits, the first time it runs, until the test lets it go (a file appears) or
# kills its worker; a retry finds its marker and goes straight on.
NOTEBOOK = """\
# %% tags=["parameters"]
x = 1
gate = ""

# %%
import os
import time
import nbcellar
shared = sum(range(1000))

# %%
marker = f"{gate}.{x}.started"
first = not os.path.exists(marker)
open(marker, "a").close()
while first and gate and not os.path.exists(gate):
    time.sleep(0.1)

# %%
y = x * shared
nbcellar.log(y=y, pid=os.getpid())
"""


@pytest.fixture
def cluster() -> Iterator[Any]:
    """A scheduler and two worker processes (with nannies, as in production) on loopback,
    with a client of the test's own to find and kill workers."""
    local = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    )  # fmt: skip
    client = distributed.Client(local)
    try:
        yield client
    finally:
        client.close()
        local.close()


def address(client: Any) -> str:
    return "dask://" + str(client.scheduler.address).removeprefix("tcp://")


def notebook(folder: Path) -> Path:
    path = folder / "slow.py"
    path.write_text(NOTEBOOK)
    return path


def until(check: Callable[[], Any], seconds: float = 60.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("timed out waiting")


NBCELLAR = str(Path(sys.executable).parent / "nbcellar")  # the command a user runs


def nbcellar_process(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([NBCELLAR, *args], text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip


def nbcellar_command(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NBCELLAR, *args], text=True, capture_output=True, timeout=timeout,
                          check=False)  # fmt: skip


def kill_worker_running(client: Any, gate: Path) -> None:
    """SIGKILL the worker process whose run is waiting at ``gate`` (its cells before recorded
    in the cache: the test waits for them to be written)."""
    started = until(lambda: sorted(gate.parent.glob(gate.name + ".*.started")))
    time.sleep(2.0)  # (the cells before are cached in the background: let them land)
    running = [r for r in nbcellar.runs().records if r.status == "running" and r.worker]
    assert running, [r.status for r in nbcellar.runs().records]
    pids = client.run(os.getpid)
    os.kill(pids[running[0].worker], signal.SIGKILL)
    assert started


def test_a_worker_killed_mid_run_is_retried_elsewhere_with_its_cells_restored(
    tmp_path: Path, private_store: Path, cluster: Any
) -> None:
    path = notebook(tmp_path)
    gate = tmp_path / "gate"
    handle = nbcellar.run(path, params={"x": 3, "gate": str(gate)}, executor=address(cluster),
                          wait=False)  # fmt: skip
    kill_worker_running(cluster, gate)
    runset = handle.wait()
    record = runset.records[0]
    assert record.status == "ok"
    assert runset.values["y"].tolist() == [3 * 499500]
    assert record.attempts == 2
    assert record.retried
    # The cells it completed before its worker died came back from the store.
    assert record.cells["restored"] >= 2, record.cells
    jobs = nbcellar_command("jobs", "show", handle.id, "--store", str(private_store))
    assert "retried: 2 attempts" in jobs.stdout, jobs.stdout + jobs.stderr


def test_with_no_retries_a_lost_worker_fails_the_run_with_one_line(
    tmp_path: Path, private_store: Path, cluster: Any
) -> None:
    path = notebook(tmp_path)
    gate = tmp_path / "gate"
    client = nbcellar_process("run", str(path), "-p", "x=4", "-p", f"gate={gate}", "--executor",
                              address(cluster), "--retries", "0")  # fmt: skip
    kill_worker_running(cluster, gate)
    out, err = client.communicate(timeout=120)
    assert client.returncode == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "cell [4]" in lines[0], err
    assert "its worker was lost 1 time (retries: 0)" in lines[0], err
    record = nbcellar.runs().records[0]
    assert record.status == "failed"
    assert "worker was lost" in str(record.error)


def test_runs_outlive_a_killed_client_and_jobs_follows_them_from_a_new_process(
    tmp_path: Path, private_store: Path, cluster: Any
) -> None:
    path = notebook(tmp_path)
    gate = tmp_path / "gate"
    client = nbcellar_process("run", str(path), "-p", "x=1,2,3", "-p", f"gate={gate}",
                              "--executor", address(cluster))  # fmt: skip
    until(lambda: len(list(tmp_path.glob("gate.*.started"))) == 2)  # (the third is queued)
    client.send_signal(signal.SIGKILL)
    client.communicate(timeout=30)
    listed = nbcellar_command("jobs", "--json")
    launches = json.loads(listed.stdout)
    assert len(launches) == 1, listed.stdout + listed.stderr
    assert launches[0]["counts"] == {"running": 2, "queued": 1}
    gate.touch()  # the runs go on without their client, the queued one too
    waited = nbcellar_command("jobs", "wait", launches[0]["id"], "--timeout", "90")
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert "3 ok" in waited.stdout
    runset = nbcellar.runs(grid="last")
    assert sorted(runset.values["y"].tolist()) == [499500, 2 * 499500, 3 * 499500]
    outputs = sorted((tmp_path / "slow.runs").glob("*.ipynb"))
    assert len(outputs) == 3  # written where the client asked, though it was gone
    assert json.loads(outputs[0].read_text())["cells"]


def test_a_launch_on_a_scheduler_is_cancelled_from_another_process(
    tmp_path: Path, private_store: Path, cluster: Any
) -> None:
    path = notebook(tmp_path)
    gate = tmp_path / "gate"
    handle = nbcellar.run(path, grid={"x": [1, 2, 3, 4]}, params={"gate": str(gate)}, jobs=2,
                          executor=address(cluster), wait=False)  # fmt: skip
    until(lambda: len(list(tmp_path.glob("gate.*.started"))) == 2)
    cancelled = nbcellar_command("jobs", "cancel", str(handle.id))
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.startswith(f"launch {handle.id}: cancelled")
    waited = nbcellar_command("jobs", "wait", str(handle.id), "--timeout", "60")
    assert waited.returncode == 1, waited.stdout + waited.stderr  # (not every run ok)
    statuses = handle.status()
    assert sorted(statuses.values()) == ["cancelled"] * 4, statuses
    assert len(list(tmp_path.glob("gate.*.started"))) == 2  # the queued ones never started


@contextlib.contextmanager
def scheduler_and_worker(
    folder: Path, worker_env: dict[str, str] | None = None, worker_cwd: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A Dask scheduler and one worker as processes of their own (``dask scheduler``, ``dask
    worker``: what a cluster of the user's runs), the worker with ``worker_env`` in
    ``worker_cwd``; the scheduler process and its ``dask://`` address."""
    log = folder / "scheduler.log"
    with log.open("wb") as sink:
        scheduler = subprocess.Popen(
            ["dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"],
            stderr=sink, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    processes = [scheduler]
    try:
        found = until(lambda: [line for line in log.read_text().splitlines()
                               if "Scheduler at:" in line])  # fmt: skip
        where = found[0].split("Scheduler at:")[1].strip()
        processes.append(subprocess.Popen(
            ["dask", "worker", where, "--nthreads", "1", "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=worker_env, cwd=worker_cwd,
        ))  # fmt: skip
        yield scheduler, "dask://" + where.removeprefix("tcp://")
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=30)


@pytest.fixture
def scheduler_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A Dask scheduler and a worker as processes of their own (to kill the scheduler)."""
    with scheduler_and_worker(tmp_path) as found:
        yield found


def test_a_scheduler_that_goes_away_ends_the_launch_with_one_line(
    tmp_path: Path, private_store: Path, scheduler_process: tuple[subprocess.Popen[bytes], str]
) -> None:
    scheduler, where = scheduler_process
    path = notebook(tmp_path)
    gate = tmp_path / "gate"
    handle = nbcellar.run(path, grid={"x": [1, 2]}, params={"gate": str(gate)}, jobs=2,
                          executor=where, wait=False)  # fmt: skip
    until(lambda: list(tmp_path.glob("gate.*.started")))
    scheduler.kill()
    with pytest.raises(NbcellarError, match=r"the Dask scheduler .* went away"):
        handle.wait()
    assert {r.status for r in nbcellar.runs().records} == {"failed"}
