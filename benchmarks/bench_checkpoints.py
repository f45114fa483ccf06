"""Checkpoints, resume and analyses, against what users do without nbcellar, in one run.

1. Checkpoint cost: a loop whose state is ``--data`` MB of data (unchanged) and a ``--model``
   MB model (changed every step), ``--steps`` steps, in a real kernel under ``nbcellar run``;
   ``nbcellar.checkpoint`` (the variables the cell uses, and ``state=["model"]``) against
   ``pickle.dump`` of the same state to a file per step: bytes written (target >= 10x fewer)
   and time added per step (median; target <= 5% of a 1 s step, i.e. 50 ms).
2. Resume: a run of 10 steps, then one of 50, of ``--step-seconds`` each, its kernel killed in
   the middle of the step at 90% of its steps and resumed
   with ``--resume``, against running it again from scratch (target: >= 85% of the time saved).
3. Analysis over 50 checkpoints, then again after 10 more: how many the second computes
   (target: 10).

    python benchmarks/bench_checkpoints.py                   # 500 MB + 50 MB, 200 steps
    python benchmarks/bench_checkpoints.py --quick           # 100 MB + 10 MB, 20 steps
    python benchmarks/bench_checkpoints.py --steps 50 --step-seconds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import machine, scratch

COST = """\
# %% tags=["parameters"]
data_mb = 500
model_mb = 50
steps = 200
mode = "checkpoint"
out = ""
step_seconds = 1.0

# %%
import json, os, pickle, time
import numpy as np
import nbcellar
data = np.random.default_rng(0).random(data_mb * 2**20 // 8)
model = np.zeros(model_mb * 2**20 // 8)

# %%
costs = []
for step in range(steps):
    time.sleep(step_seconds)  # the step's work (the GPU's, say) ...
    model = model + 1.0  # ... changes the model
    start = time.perf_counter()
    if mode == "checkpoint":
        nbcellar.checkpoint(step, loss=float(model[0]))
    elif mode == "state":
        nbcellar.checkpoint(step, state=["model"], loss=float(model[0]))
    else:
        with open(os.path.join(out, "state.pkl"), "wb") as handle:  # (its bytes counted)
            pickle.dump({"data": data, "model": model}, handle, protocol=5)
        with open(os.path.join(out, "pickled"), "a") as handle:
            handle.write(f"{os.path.getsize(os.path.join(out, 'state.pkl'))}\\n")
    costs.append(time.perf_counter() - start)
with open(os.path.join(out, f"{mode}.json"), "w") as handle:
    json.dump(costs, handle)
"""

RESUME = """\
# %% tags=["parameters"]
step_seconds = 1.0
steps = 10

# %%
import os, time
import numpy as np
import nbcellar
w = np.zeros(1000)

# %%
for epoch in nbcellar.resumable(range(steps)):
    time.sleep(step_seconds / 2)  # the step's work
    if epoch == steps * 9 // 10 and os.path.exists("die"):  # killed at 90%, mid-step
        os.remove("die")
        os.kill(os.getpid(), 9)
    time.sleep(step_seconds / 2)
    w = w + 1.0
    nbcellar.checkpoint(epoch, loss=float(w[0]))
"""

ANALYSIS = """\
# %% tags=["parameters"]
steps = 60

# %%
import os
import numpy as np
import nbcellar
w = np.zeros(100)

# %%
for epoch in nbcellar.resumable(range(steps)):
    if epoch == 50 and os.path.exists("die"):  # killed between steps 49 and 50,
        get_ipython().nbcellar.flush()  # once the checkpoint of step 49 is written
        os.remove("die")
        os.kill(os.getpid(), 9)
    w = w + 0.5
    nbcellar.checkpoint(epoch)
"""


def nbcellar_run(
    folder: Path, *arguments: str, store: str = ".nbcellar"
) -> tuple[float, subprocess.CompletedProcess[str]]:
    exe = Path(sys.executable).with_name("nbcellar")
    command = [str(exe), "run", *arguments, "--store", str(folder / store)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def last_run(folder: Path) -> str:
    exe = Path(sys.executable).with_name("nbcellar")
    listed = subprocess.run([str(exe), "runs", "--json", "--store", str(folder / ".nbcellar")],
                            capture_output=True, text=True, check=True)  # fmt: skip
    return str(json.loads(listed.stdout)[-1]["id"])


def checkpoint_cost(
    base: Path, data_mb: int, model_mb: int, steps: int, step_seconds: float
) -> None:
    print(f"1. checkpoint cost: {data_mb} MB data (unchanged) + {model_mb} MB model (changed), "
          f"{steps} steps of {step_seconds:g} s")  # fmt: skip
    results = {}
    for mode in ("pickle", "checkpoint", "state"):
        folder = base / f"cost-{mode}"
        (folder / "out").mkdir(parents=True)
        (folder / "cost.py").write_text(COST)
        store = folder / ".nbcellar"
        _, done = nbcellar_run(folder, "cost.py", "-p", f"data_mb={data_mb}", "-p",
                               f"model_mb={model_mb}", "-p", f"steps={steps}", "-p",
                               f"mode={mode}", "-p", f"out={folder / 'out'}", "-p",
                               f"step_seconds={step_seconds}")  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"the {mode} run failed:\n{done.stdout}\n{done.stderr}")
        costs = json.loads((folder / "out" / f"{mode}.json").read_text())
        if mode == "pickle":
            written = sum(int(n) for n in (folder / "out" / "pickled").read_text().split())
        else:
            written = folder_bytes(store)
        results[mode] = (statistics.median(costs), written)
    pickled_time, pickled_bytes = results["pickle"]
    print(f"   pickle.dump per step:          {pickled_time * 1000:8.1f} ms/step, "
          f"{pickled_bytes / 2**20:9.0f} MB written")  # fmt: skip
    for mode, label in (("checkpoint", "nbcellar.checkpoint"), ("state", "checkpoint(state=)")):
        seconds, written = results[mode]
        print(f"   {label + ':':30} {seconds * 1000:8.1f} ms/step, {written / 2**20:9.0f} MB "
              f"written (the cells' cache included): {pickled_bytes / written:.1f}x fewer "
              f"bytes (target >= 10x), {seconds / step_seconds:.1%} of a step (target "
              "<= 5%)")  # fmt: skip


def resume_saving(base: Path, step_seconds: float, steps: int) -> None:
    print(f"2. resume: {steps} steps of {step_seconds:g} s, the kernel killed at 90%")
    folder = base / f"resume-{steps}"
    folder.mkdir()
    (folder / "train.py").write_text(RESUME)
    param = ["-p", f"step_seconds={step_seconds}", "-p", f"steps={steps}"]
    (folder / "die").touch()
    died, done = nbcellar_run(folder, "train.py", *param)
    assert done.returncode == 1, done.stderr
    resumed, done = nbcellar_run(folder, "train.py", "--resume", last_run(folder))
    assert done.returncode == 0, done.stderr
    scratch_seconds, done = nbcellar_run(folder, "train.py", *param, store="fresh")
    assert done.returncode == 0, done.stderr
    saved = 1 - resumed / scratch_seconds
    ideal = 1 - (steps - steps * 9 // 10) / steps  # (the step it died in is done again)
    print(f"   killed after {died:.1f} s; resumed in {resumed:.1f} s; from scratch "
          f"{scratch_seconds:.1f} s: {saved:.0%} of the time saved (target >= 85%; "
          f"{ideal:.0%} if starting cost nothing)")  # fmt: skip


def analysis_increment(base: Path) -> None:
    print("3. analysis over 50 checkpoints, then 10 more")
    folder = base / "analysis"
    folder.mkdir()
    (folder / "train.py").write_text(ANALYSIS)
    (folder / "die").touch()
    nbcellar_run(folder, "train.py")
    first = last_run(folder)
    nbcellar_run(folder, "train.py", "--resume", first)
    second = last_run(folder)
    (folder / "evaluation.py").write_text(
        "CALLS = []\n\ndef norm(w):\n"
        "    with open('calls', 'a') as calls:\n        calls.write('x')\n"
        "    return float((w * w).sum())\n"
    )  # fmt: skip
    exe = Path(sys.executable).with_name("nbcellar")
    counts = []
    for run in (first, second):
        before = len((folder / "calls").read_text()) if (folder / "calls").exists() else 0
        subprocess.run([str(exe), "checkpoints", run, "--analyze", "evaluation:norm", "--json",
                        "--store", str(folder / ".nbcellar")], cwd=folder, check=True,
                       capture_output=True)  # fmt: skip
        counts.append(len((folder / "calls").read_text()) - before)
    print(f"   first analysis computed {counts[0]} checkpoints; after 10 more, the second "
          f"computed {counts[1]} (target: 10)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 MB + 10 MB, 20 steps")
    parser.add_argument("--steps", type=int, help="steps of the checkpoint loop (200)")
    parser.add_argument("--step-seconds", type=float, default=1.0, help="a step's work (1 s)")
    parser.add_argument("--dir", default=None, help="parent of the temporary working folder")
    args = parser.parse_args()
    print(machine())
    data_mb, model_mb, steps = (100, 10, 20) if args.quick else (500, 50, 200)
    with scratch(args.dir) as base:
        checkpoint_cost(base, data_mb, model_mb, args.steps or steps, args.step_seconds)
        # (A run of 10 steps of 1 s is mostly the start-up of a process and a kernel.)
        for steps_of_run in (10,) if args.quick else (10, 50):
            resume_saving(base, args.step_seconds, steps_of_run)
        analysis_increment(base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
