"""``nbcellar.submit`` from a real kernel, as a notebook in JupyterLab calls it: the slice of a
notebook with exploratory cells runs on Dask (and locally) and gives the value the notebook's
cells give; its cached cells are restored on the worker; a training loop in it checkpoints, and
the checkpoints are listed and analysed from the job."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("numpy", reason="the training loop uses numpy")
pytest.importorskip("distributed", reason="the slice runs on a Dask LocalCluster")
pytestmark = [pytest.mark.slow, pytest.mark.long]

CELLS = [
    "%load_ext nbcellar",
    "import numpy as np\nimport nbcellar",
    "rng = np.random.default_rng(0)\nX = rng.normal(size=(300, 4))\n"
    "y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + rng.normal(scale=0.1, size=300)",
    "X.mean(axis=0)",  # exploratory
    "epochs = 4\nlr = 0.05",
    "w = np.zeros(4)\nfor step in nbcellar.resumable(range(epochs)):\n"
    "    w = w - lr * X.T @ (X @ w - y) / len(y)\n"
    "    nbcellar.checkpoint(step, loss=float(((X @ w - y) ** 2).mean()))",
    "print(w)",  # exploratory
    "def mse(w):\n    return float(((X @ w - y) ** 2).mean())",
]


class Kernel:
    def __init__(self, cwd: Path) -> None:
        from jupyter_client.manager import start_new_kernel

        env = {k: v for k, v in os.environ.items() if k != "NBCELLAR_STORE"}
        self.km, self.kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env)

    def run(self, code: str, timeout: float = 180) -> str:
        shown: list[str] = []

        def keep(msg: dict[str, Any]) -> None:
            content = msg["content"]
            if msg["msg_type"] == "stream":
                shown.append(content["text"])
            elif msg["msg_type"] in ("execute_result", "display_data"):
                shown.append(content["data"].get("text/plain", ""))
            elif msg["msg_type"] == "error":
                shown.append("\n".join(content["traceback"]))

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=keep)
        text = "".join(shown)
        assert reply["content"]["status"] == "ok", text
        return text

    def value(self, expression: str, timeout: float = 180) -> Any:
        return json.loads(self.run(f"import json as _j; print(_j.dumps({expression}))", timeout))

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    started = Kernel(tmp_path)
    try:
        for cell in CELLS:
            started.run(cell)
        yield started
    finally:
        started.stop()


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_a_slice_runs_as_a_job_and_gives_the_notebooks_value(kernel: Kernel, executor: str) -> None:
    expected = kernel.value("mse(w)")
    shown = kernel.run("print(nbcellar.submit('mse(w)', dry_run=True))")
    assert "left out (not needed): In[4], In[7]" in shown  # the exploratory cells
    kernel.run(f"job = nbcellar.submit('mse(w)', executor={executor!r}, jobs=1)")
    assert kernel.value("job.result(timeout=150)") == expected
    cells = kernel.value("job._record().cells")
    # Every cell the notebook ran here comes back from the store on the worker.
    assert (cells["restored"], cells["ran"]) == (5, 1)  # (ran: the expression)
    listed = kernel.run("from nbcellar.runs.jobs import jobs\nprint([j.id for j in jobs()])")
    assert kernel.value("job.launch") in listed


def test_a_job_with_new_parameters_checkpoints_and_is_analysed(kernel: Kernel) -> None:
    kernel.run("job = nbcellar.submit('mse(w)', executor='dask', jobs=1, params={'epochs': 6})")
    final = kernel.value("job.result(timeout=150)")
    steps = kernel.value("job.checkpoints[['step', 'loss']].values.tolist()")
    assert [s for s, _ in steps] == [0, 1, 2, 3, 4, 5]
    assert steps[-1][1] == pytest.approx(final)
    kernel.run("def norm(w):\n    return {'norm': float(np.linalg.norm(w))}")
    norms = kernel.value("job.analyze(norm)['norm'].tolist()")
    assert len(norms) == 6
    assert norms == sorted(norms)  # (the weights grow from zero)
