"""The same grids on each executor: ``--executor dask`` (a LocalCluster of 2 workers) and
``--executor ipyparallel`` (a Cluster of 2 engines) against ``--executor local -j 2`` and a
papermill loop, in one run.

1. The demo project's grid (``src/nbcellar/demo/project``, 12 runs of ``digits.ipynb``: a
   preprocessing cell of about 8 s shared by every run, then a model, metrics and a plot), each
   tool on a fresh copy with an empty store, wall clock of the whole command (the cluster's
   start-up included for Dask and ipyparallel). Targets: Dask within 1.25x of local on the same
   cores, and at least 5x the papermill loop; ipyparallel's ratios are printed beside them.
   The accuracy each run shows must be the same everywhere.
2. The per-run overhead of a trivial parameterised notebook (20 runs of ``x = 1; y = x * 2``)
   on each executor: the command's wall time divided by the runs (target <= 0.5 s on Dask and
   on ipyparallel).

    python benchmarks/bench_executors.py            # 12-run grid, papermill loop included
    python benchmarks/bench_executors.py --runs 48  # the 48-run variant (papermill: ~25 min)
    python benchmarks/bench_executors.py --quick    # 4-run grid, 6 trivial runs, no papermill

The 48-run variant is the demo's grid with 16 values per model instead of 4 (its preprocessing
still shared by every run).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench_demo import WARM_UP, fresh_copy, grid_runs, papermill_grid, shown_accuracy
from common import machine, scratch

JOBS = 2
CLUSTERS = ("dask", "ipyparallel")
TRIVIAL = "# %% tags=['parameters']\nx = 1\n# %%\ny = x * 2\nprint(y)\n"
GRID_48 = """\
- model: logreg
  C: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
- model: svm
  C: [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
- model: forest
  n_estimators: [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80]
"""


def project(parent: Path, name: str, quick: bool, runs: int) -> Path:
    folder = fresh_copy(parent, name, quick)
    if runs == 48 and not quick:
        (folder / "grid.yaml").write_text(GRID_48, encoding="utf-8")
    return folder


def nbcellar_grid(folder: Path, executor: str, *grid: str) -> tuple[float, list[Path]]:
    """Seconds of ``nbcellar run`` of ``digits.ipynb`` (or ``grid``) on ``executor``."""
    exe = Path(sys.executable).with_name("nbcellar")
    arguments = list(grid) or ["digits.ipynb", "--grid", "grid.yaml"]
    command = [str(exe), "run", *arguments, "-j", str(JOBS), "--executor", executor,
               "--store", str(folder / ".nbcellar")]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"nbcellar run --executor {executor} failed:\n{proc.stdout}\n{proc.stderr}"
        )
    notebook = Path(arguments[0])
    return seconds, sorted((folder / f"{notebook.stem}.runs").glob("*.ipynb"))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 4-run grid, no papermill loop")
    parser.add_argument("--dir", default=None, help="parent of the temporary working folder")
    parser.add_argument("--runs", type=int, choices=(12, 48), default=12,
                        help="the demo grid (12 runs) or its 48-run variant")  # fmt: skip
    parser.add_argument("--no-papermill", action="store_true", help="leave the loop out")
    options = parser.parse_args()
    print(f"machine: {machine()}")
    with scratch(options.dir, "bench-executors-") as parent:
        subprocess.run([sys.executable, "-c", WARM_UP], check=True)
        runs = grid_runs(project(parent, "plan", options.quick, options.runs))
        print(f"1. the demo grid: {len(runs)} runs, -j {JOBS}")
        times: dict[str, float] = {}
        accuracies: dict[str, list[str]] = {}
        for executor in ("local", *CLUSTERS):
            seconds, notebooks = nbcellar_grid(
                project(parent, executor, options.quick, options.runs), executor
            )
            times[executor] = seconds
            accuracies[executor] = [shown_accuracy(p) for p in notebooks]
        if not options.quick and not options.no_papermill:
            folder = project(parent, "papermill", False, options.runs)
            seconds, notebooks = papermill_grid(folder, 1)
            times["papermill loop"] = seconds
            accuracies["papermill loop"] = [shown_accuracy(p) for p in notebooks]
        shown = list(accuracies.values())
        if any(a != shown[0] for a in shown):
            print("accuracies differ between tools:", accuracies, file=sys.stderr)
            return 1
        for name, seconds in times.items():
            print(f"   {name:16s} {seconds:7.2f} s  ({seconds / len(runs):.2f} s a run)")
        for cluster in CLUSTERS:
            ratio = times[cluster] / times["local"]
            met = "yes" if ratio <= 1.25 else "NO"
            print(f"   ratio {cluster} / local: {ratio:.2f}x (target <= 1.25x: {met})")
            if "papermill loop" in times:
                speedup = times["papermill loop"] / times[cluster]
                met = "yes" if speedup >= 5 else "NO"
                print(f"   ratio papermill loop / {cluster}: {speedup:.2f}x (target >= 5x: {met})")

        count = 6 if options.quick else 20
        values = ",".join(str(n) for n in range(count))
        print(f"2. per-run overhead: {count} runs of a trivial notebook, -j {JOBS}")
        per_run: dict[str, float] = {}
        for executor in ("local", *CLUSTERS):
            folder = parent / f"trivial-{executor}"
            folder.mkdir()
            (folder / "trivial.py").write_text(TRIVIAL)
            seconds, _ = nbcellar_grid(folder, executor, "trivial.py", "-p", f"x={values}")
            per_run[executor] = seconds / count
            print(f"   {executor:16s} {seconds:7.2f} s  ({per_run[executor]:.3f} s a run)")
        for cluster in CLUSTERS:
            met = "yes" if per_run[cluster] <= 0.5 else "NO"
            ratio = per_run[cluster] / per_run["local"]
            print(f"   ratio {cluster} / local per run: {ratio:.2f}x; {cluster} "
                  f"{per_run[cluster]:.3f} s a run (target <= 0.5 s: {met})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
