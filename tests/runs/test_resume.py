"""``nbcellar run NB --resume RUN``: a run whose kernel died in the middle of a long loop goes on
from its last checkpoint, its cells before the loop restored, and ends as an uninterrupted run
ends; bad resumes are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import nbcellar
from nbcellar.cli.main import cli

pytest.importorskip("numpy", reason="the training loop uses numpy")

NOTEBOOK = """\
# %% tags=["parameters"]
lr = 0.05

# %%
import os
import numpy as np
import nbcellar
np.random.seed(1)
X = np.random.default_rng(0).normal(size=(300, 3))
target = X @ np.array([1.0, -2.0, 0.5])

# %%
w = np.zeros(3)
losses = []
for epoch in nbcellar.resumable(range(8)):
    batch = np.random.randint(0, 300, size=32)
    w = w - lr * X[batch].T @ (X[batch] @ w - target[batch]) / 32
    losses.append(float(((X @ w - target) ** 2).mean()))
    nbcellar.checkpoint(epoch, loss=losses[-1])
    with open("steps.txt", "a") as steps:
        steps.write(f"{epoch}\\n")
    if epoch == 4 and os.path.exists("die"):
        os.remove("die")
        os.kill(os.getpid(), 9)  # the kernel dies (out of memory, a machine lost...)

# %%
drawn = int(np.random.randint(10**6))
nbcellar.log(w=[round(float(v), 12) for v in w], last=losses[-1], drawn=drawn)
"""


def test_a_run_whose_kernel_died_is_resumed_from_its_last_checkpoint(
    tmp_path: Path, private_store: Path
) -> None:
    path = tmp_path / "train.py"
    path.write_text(NOTEBOOK)
    plain = nbcellar.run(path, params={"lr": 0.05}).records[0]
    (tmp_path / "steps.txt").unlink()
    (tmp_path / "die").touch()
    runner = CliRunner()
    died = runner.invoke(cli, ["run", str(path), "-p", "lr=0.04"])
    assert died.exit_code == 1, died.output
    first = nbcellar.runs().records[-1]
    assert first.status == "failed"
    resumed = runner.invoke(cli, ["run", str(path), "--resume", first.id], terminal_width=200)
    assert resumed.exit_code == 0, resumed.output
    done = [int(k) for k in (tmp_path / "steps.txt").read_text().split()]
    # Steps 0-4 ran, then the kernel died; the run went on after its last checkpoint written
    # (a checkpoint is written while the next step runs: that of step 4 may not have been).
    assert done[:5] == [0, 1, 2, 3, 4], done
    assert done[5] in (4, 5), done
    assert done[5:] == list(range(done[5], 8)), done
    record = nbcellar.runs().records[-1]
    assert record.resumed_from == first.id
    assert record.params == {"lr": 0.04}
    assert record.cells["restored"] >= 2  # the cells before the loop, from the cache
    steps = nbcellar.runs()[record.id].checkpoints
    assert steps["step"].tolist() == list(range(8))
    assert steps["run"].tolist() == [first.id] * done[5] + [record.id] * (8 - done[5])
    fresh = nbcellar.run(path, params={"lr": 0.04}, store=tmp_path / "fresh").records[0]
    assert record.values == fresh.values  # weights, last loss and the random generator
    assert plain.values["w"] != record.values["w"]  # (another learning rate: not a constant)


def test_an_uninterrupted_resume_equals_a_fresh_run(tmp_path: Path, private_store: Path) -> None:
    path = tmp_path / "train.py"
    path.write_text(NOTEBOOK)
    (tmp_path / "die").touch()
    nbcellar.run(path, params={"lr": 0.03}, allow_errors=True)
    first = nbcellar.runs().records[-1]
    resumed = nbcellar.run(path, resume=first.id).records[0]
    fresh = nbcellar.run(path, params={"lr": 0.03}, store=tmp_path / "fresh").records[0]
    assert resumed.values == fresh.values  # weights, last loss and the random generator


@pytest.mark.parametrize(
    ("resume", "said"),
    [
        ("nope", "--resume nope: no such run in"),
        ("ok-run", "that run took no checkpoint (nbcellar.checkpoint) to go on from"),
    ],
)
def test_a_bad_resume_is_one_line(
    tmp_path: Path, private_store: Path, resume: str, said: str
) -> None:
    path = tmp_path / "plain.py"
    path.write_text("# %% tags=['parameters']\nx = 1\n# %%\ny = x + 1\n")
    ran = nbcellar.run(path).records[0].id  # (a store with a run in it)
    target = ran if resume == "ok-run" else resume
    result = CliRunner().invoke(cli, ["run", str(path), "--resume", target])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert said in lines[0]
