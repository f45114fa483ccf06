"""A 6-task pipeline of percent scripts, built by ``nbcellar build`` and by ploomber, in one run.

The same ``pipeline.yaml`` and task sources serve both tools (ploomber's conventions: each
task's ``parameters`` cell assigns ``upstream`` and ``product``, tasks hand files on). Each task
has a cell of real work (0.5-1.5 s of numpy) before the cell that saves its product. Steps, each
timed as the command a user types (its start-up included):

1. first build (empty store; ploomber: no products);
2. no-op rebuild, nothing changed (target: <= 0.5 s; median of 3);
3. a comment-only edit of a leaf task (target: 0 tasks run);
4. an edit of the first task's last cell (only the cells below it, and downstream the cells
   that read what changed: the work cells that read nothing new are restored);
5. nbcellar's first build with ``-j 2`` (independent tasks side by side).

ploomber 0.23.3 pins an older jupyter_client than nbcellar's, so it lives in a virtual
environment of its own: ``--ploomber-venv DIR`` (made there with pip on first use, with
``ploomber==0.23.3 ipykernel numpy``); ``--no-ploomber`` leaves it out.

    python benchmarks/bench_pipeline.py
    python benchmarks/bench_pipeline.py --ploomber-venv ~/.cache/bench-ploomber
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

from common import machine, scratch, side_venv, timed

PIPELINE = """\
tasks:
  - source: tasks/load.py
    product: {nb: products/load.ipynb, data: products/load.npy}
  - source: tasks/clean.py
    product: {nb: products/clean.ipynb, data: products/clean.npy}
  - source: tasks/features.py
    product: {nb: products/features.ipynb, data: products/features.npy}
  - source: tasks/stats.py
    product: {nb: products/stats.ipynb, data: products/stats.json}
  - source: tasks/fit.py
    product: {nb: products/fit.ipynb, data: products/fit.npy}
  - source: tasks/report.py
    product: {nb: products/report.ipynb, data: products/report.txt}
"""


def task(upstream: str, work: str, save: str) -> str:
    return (f"# %% tags=[\"parameters\"]\nupstream = {upstream}\nproduct = None\n\n"
            f"# %%\nimport json\nimport numpy as np\n\n# %%\n{work}\n\n# %%\n{save}\n")  # fmt: skip


TASKS = {
    "load": task(
        "None",
        "rng = np.random.default_rng(0)\ndata = rng.normal(size=(400_000, 24))\n"
        "for _ in range(4):\n    data = np.tanh(data @ rng.normal(size=(24, 24)) / 5)",
        "np.save(product['data'], data)",
    ),
    "clean": task(
        "['load']",
        "raw = np.load(upstream['load']['data'])\ncleaned = raw[np.abs(raw).max(axis=1) < 0.9]\n"
        "cleaned = (cleaned - cleaned.mean(axis=0)) / cleaned.std(axis=0)",
        "np.save(product['data'], cleaned)",
    ),
    "features": task(
        "['clean']",
        "x = np.load(upstream['clean']['data'])\n"
        "feats = np.hstack([x, x ** 2, np.sin(x), np.cos(x), np.exp(-x * x)])",
        "np.save(product['data'], feats)",
    ),
    "stats": task(
        "['load']",
        "raw = np.load(upstream['load']['data'])\n"
        "summary = {'mean': float(raw.mean()), 'q': np.quantile(raw, [0.1, 0.5, 0.9]).tolist()}",
        "open(product['data'], 'w').write(json.dumps(summary))",
    ),
    "fit": task(
        "['features']",
        "f = np.load(upstream['features']['data'])\ny = f[:, 0] * 2 + f[:, 30] - f[:, 60]\n"
        "w, *_ = np.linalg.lstsq(f, y, rcond=None)",
        "np.save(product['data'], w)",
    ),
    "report": task(
        "['fit', 'stats']",
        "w = np.load(upstream['fit']['data'])\n"
        "summary = json.load(open(upstream['stats']['data']))\n"
        "text = f\"weights {np.round(w[:3], 3).tolist()}; mean {summary['mean']:.4f}\"",
        "open(product['data'], 'w').write(text)\nprint(text)",
    ),
}


def make_project(folder: Path) -> Path:
    (folder / "tasks").mkdir(parents=True)
    (folder / "pipeline.yaml").write_text(PIPELINE)
    for name, source in TASKS.items():
        (folder / "tasks" / f"{name}.py").write_text(source)
    return folder


def ploomber_ran(output: str) -> int:
    """Tasks ploomber ran, from its build report (a table of name, Ran?, Elapsed)."""
    return sum(1 for line in output.splitlines() if " True " in f" {line} ")


def nbcellar_ran(output: str) -> tuple[int, int]:
    """(tasks ran, cells ran) from ``nbcellar build``'s lines."""
    tasks = cells = 0
    for line in output.splitlines():
        if ": ran (" in line:
            tasks += 1
            cells += int(line.split("; ")[-1].split(" of ")[0])
    return tasks, cells


def ploomber_command(venv: Path) -> list[str]:
    return [str(side_venv(venv, ["ploomber==0.23.3", "ipykernel", "numpy"], "ploomber")), "build"]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--ploomber-venv", default=str(Path.home() / ".cache" / "bench-ploomber"))
    parser.add_argument("--no-ploomber", action="store_true")
    parser.add_argument("--quick", action="store_true", help="no ploomber, for a smoke test")
    parser.add_argument("--dir", default=None, help="parent of the temporary working folder")
    args = parser.parse_args()
    print(machine())
    nbcellar = [str(Path(sys.executable).with_name("nbcellar")), "build"]
    tools: dict[str, list[str]] = {"nbcellar": nbcellar}
    if not (args.no_ploomber or args.quick):
        tools["ploomber"] = ploomber_command(Path(args.ploomber_venv))
    results: dict[str, dict[str, object]] = {name: {} for name in tools}
    with scratch(args.dir) as base:
        for name, command in tools.items():
            folder = make_project(base / name)
            seconds, output = timed(command, folder)
            results[name]["first"] = (seconds, output)
            noop = [timed(command, folder) for _ in range(3)]
            results[name]["noop"] = (statistics.median(s for s, _ in noop), noop[-1][1])
            edit(folder / "tasks" / "report.py", "print(text)", "print(text)  # the summary")
            results[name]["comment"] = timed(command, folder)
            edit(folder / "tasks" / "load.py", "np.save(product['data'], data)",
                 "np.save(product['data'], data.astype(np.float32))")  # fmt: skip
            results[name]["edit"] = timed(command, folder)
        parallel = make_project(base / "parallel")
        results["nbcellar"]["-j 2"] = timed([*nbcellar, "-j", "2"], parallel)
        shutil.rmtree(base, ignore_errors=True)
    print("6-task pipeline (percent scripts), each step the command a user types:")
    labels = {"first": "first build", "noop": "no-op rebuild (median of 3)",
              "comment": "comment-only edit of a leaf", "edit": "edit of the first task's last "
              "cell", "-j 2": "first build, -j 2"}  # fmt: skip
    for step, label in labels.items():
        row = f"   {label:38}"
        for name in tools:
            if step not in results[name]:
                continue
            seconds, output = results[name][step]  # type: ignore[misc]
            if name == "nbcellar":
                ran, cells = nbcellar_ran(output)
                row += f" nbcellar {seconds:6.2f} s ({ran} tasks, {cells} cells ran)"
            else:
                row += f"  ploomber {seconds:6.2f} s ({ploomber_ran(output)} tasks ran)"
        print(row)
    if "ploomber" in results:
        for step in ("first", "noop", "comment", "edit"):
            ours = results["nbcellar"][step][0]  # type: ignore[index]
            theirs = results["ploomber"][step][0]  # type: ignore[index]
            print(f"   {labels[step]}: ploomber / nbcellar = {theirs / ours:.1f}x")
        serial = results["ploomber"]["first"][0]  # type: ignore[index]
        ours_parallel = results["nbcellar"]["-j 2"][0]  # type: ignore[index]
        print(f"   first build: ploomber serial / nbcellar -j 2 = {serial / ours_parallel:.2f}x "
              "(goal >= 1.8x; only stats can run beside the chain of the other five)")  # fmt: skip
    serial_ours = results["nbcellar"]["first"][0]  # type: ignore[index]
    parallel_ours = results["nbcellar"]["-j 2"][0]  # type: ignore[index]
    print(f"   first build: ratio nbcellar serial / -j 2 = {serial_ours / parallel_ours:.2f}x")
    noop = results["nbcellar"]["noop"][0]  # type: ignore[index]
    print(f"   no-op rebuild {noop:.2f} s (target <= 0.5 s: {'yes' if noop <= 0.5 else 'NO'})")
    print(json.dumps({n: {s: round(v[0], 3) for s, v in r.items()} for n, r in results.items()}))  # type: ignore[index]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
