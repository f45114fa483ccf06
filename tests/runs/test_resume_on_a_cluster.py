"""A long loop on a real Dask cluster whose worker is killed in the middle: the run starts again
on another worker, its cells before the loop restored from the cache and the loop going on
from its last checkpoint, and it ends exactly as a run that was never interrupted."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest

import nbcellar
from tests.runs.test_dask_faults import address, cluster, until  # noqa: F401 - a fixture

pytestmark = [pytest.mark.slow, pytest.mark.long]
pytest.importorskip("distributed", reason="the Dask executor needs distributed")

NOTEBOOK = """\
# %% tags=["parameters"]
gate = ""
stop = 4

# %%
import os
import time
import numpy as np
import nbcellar
np.random.seed(1)
X = np.random.default_rng(0).normal(size=(500, 4))
target = X @ np.array([1.0, -2.0, 0.5, 3.0])

# %%
w = np.zeros(4)
losses = []
for epoch in nbcellar.resumable(range(10)):
    batch = np.random.randint(0, 500, size=64)
    w = w - 0.05 * X[batch].T @ (X[batch] @ w - target[batch]) / 64
    losses.append(float(((X @ w - target) ** 2).mean()))
    nbcellar.checkpoint(epoch, loss=losses[-1])
    if gate:
        with open(gate + ".steps", "a") as steps:
            steps.write(f"{epoch}\\n")
        if epoch == stop and not os.path.exists(gate + ".stopped"):
            open(gate + ".stopped", "w").close()
            while not os.path.exists(gate):  # (its worker is killed here)
                time.sleep(0.1)

# %%
drawn = int(np.random.randint(10**6))
nbcellar.log(w=[round(float(v), 12) for v in w], last=losses[-1], drawn=drawn)
"""


def test_a_run_whose_worker_died_goes_on_from_its_last_checkpoint(
    tmp_path: Path,
    private_store: Path,
    cluster: Any,  # noqa: F811 - the fixture
) -> None:
    path = tmp_path / "train.py"
    path.write_text(NOTEBOOK)
    gate = tmp_path / "gate"
    stop = random.randint(1, 8)  # the step its worker dies in
    handle = nbcellar.run(path, params={"gate": str(gate), "stop": stop},
                          executor=address(cluster), wait=False)  # fmt: skip
    until(lambda: (tmp_path / "gate.stopped").exists())
    time.sleep(1.0)
    running = [r for r in nbcellar.runs().records if r.status == "running" and r.worker]
    os.kill(cluster.run(os.getpid)[running[0].worker], signal.SIGKILL)
    resumed = handle.wait().records[0]
    assert resumed.status == "ok"
    assert resumed.attempts == 2
    # The second attempt went on after the checkpoint of the step it died in: none ran twice.
    done = (tmp_path / "gate.steps").read_text().split()
    assert done == [str(k) for k in range(10)], (stop, done)
    assert resumed.cells["restored"] >= 2  # (the cells before the loop, from the cache)
    steps = nbcellar.runs()[resumed.id].checkpoints
    assert steps["step"].tolist() == list(range(10))

    plain = nbcellar.run(path, executor="local", output=tmp_path / "plain.ipynb").records[0]
    assert resumed.values["w"] == plain.values["w"]
    assert resumed.values["last"] == plain.values["last"]
    assert resumed.values["drawn"] == plain.values["drawn"]  # the random generator too
