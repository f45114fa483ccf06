"""The demo project's grid of runs (``nbcellar demo``): nbcellar side by side with papermill.

The project (``src/nbcellar/demo/project``) classifies scikit-learn's bundled digits: a
preprocessing cell of about 8 s (augmented images, a kernel PCA) that reads no parameter, then a
model cell of 0.01-0.5 s that does; ``grid.yaml`` asks for 12 runs (logistic regression and an
SVM at four values of ``C``, random forests of four sizes). Every measurement starts from a
fresh copy of the project in a new folder, with an empty store, and times the whole grid (wall
clock, kernel starts included):

- papermill loop: ``papermill.execute_notebook`` once per run, one after another in this
  process (a user's Python loop over the grid; cheaper than a ``papermill`` command per run,
  which pays papermill's start-up each time); every run executes every cell;
- papermill, 2 processes: the same calls spread over a ``ProcessPoolExecutor(2)``;
- nbcellar, empty store: ``nbcellar run digits.ipynb --grid grid.yaml -j 2`` as a command in
  the copy: the preprocessing runs once and the other runs restore it;
- nbcellar, re-run: the same command again in the same copy, nothing changed.

Before the first measurement, an untimed warm-up imports the notebook's libraries, so that no
tool pays for a cold disk cache. The accuracy each run shows must be the same in nbcellar's and
in papermill's notebooks; the script fails otherwise.

    python benchmarks/bench_demo.py            # the 12 runs of grid.yaml (a few minutes)
    python benchmarks/bench_demo.py --quick    # 4 runs: logreg and svm at two values of C
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.util
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import machine, scratch

NOTEBOOK = "digits.ipynb"
QUICK_GRID = "model: [logreg, svm]\nC: [1.0, 10.0]\n"
JOBS = 2
TARGET = 5.0
WARM_UP = "import matplotlib.pyplot, pandas, papermill, scipy.ndimage, sklearn.decomposition"


def fresh_copy(parent: Path, name: str, quick: bool) -> Path:
    """A copy of the demo project in ``parent/name``; with ``quick``, a grid of 4 runs."""
    from nbcellar.demo import project_folder

    folder = parent / name
    skip = shutil.ignore_patterns("__pycache__", ".nbcellar", "*.runs", "*.out.ipynb")
    shutil.copytree(project_folder(), folder, ignore=skip)
    if quick:
        (folder / "grid.yaml").write_text(QUICK_GRID, encoding="utf-8")
    return folder


def grid_runs(folder: Path) -> list[dict[str, Any]]:
    from nbcellar.runs.params import expand

    return expand([], folder / "grid.yaml")


def nbcellar_grid(folder: Path) -> tuple[float, list[Path]]:
    """Seconds of ``nbcellar run --grid`` in ``folder``, and its notebooks in run order."""
    exe = Path(sys.executable).with_name("nbcellar")
    command = [str(exe), "run", NOTEBOOK, "--grid", "grid.yaml", "-j", str(JOBS)]
    command += ["--store", str(folder / ".nbcellar")]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"nbcellar run failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds, sorted((folder / "digits.runs").glob("*.ipynb"))


def papermill_one(folder: Path, number: int, params: dict[str, Any]) -> Path:
    import papermill

    output = folder / "papermill" / f"{number:03d}.ipynb"
    output.parent.mkdir(exist_ok=True)
    papermill.execute_notebook(
        str(folder / NOTEBOOK),
        str(output),
        parameters=params,
        cwd=str(folder),
        progress_bar=False,
        log_output=False,
    )
    return output


def papermill_grid(folder: Path, processes: int) -> tuple[float, list[Path]]:
    """Seconds of every run of the grid with papermill, ``processes`` at a time (1: a loop in
    this process), and the notebooks in run order."""
    runs = grid_runs(folder)
    start = time.perf_counter()
    if processes == 1:
        paths = [papermill_one(folder, n, params) for n, params in enumerate(runs, start=1)]
    else:
        with concurrent.futures.ProcessPoolExecutor(processes) as pool:
            numbers = range(1, len(runs) + 1)
            paths = list(pool.map(papermill_one, [folder] * len(runs), numbers, runs))
    return time.perf_counter() - start, paths


def find_cell(path: Path, *, tag: str = "", contains: str = "") -> Any:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and (tag in tags if tag else contains in cell.source):
            return cell
    raise LookupError(f"{path.name}: no code cell {'tagged ' + tag if tag else contains!r}")


def shown_accuracy(path: Path) -> str:
    outputs = find_cell(path, tag="accuracy").outputs
    return "".join(o["data"]["text/plain"] for o in outputs if o.output_type == "execute_result")


def label(params: dict[str, Any]) -> str:
    return " ".join(f"{name}={value}" for name, value in params.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="4 runs instead of grid.yaml's 12")
    parser.add_argument("--dir", default=None, help="parent of the temporary working folder")
    args = parser.parse_args(argv)
    missing = [m for m in ("papermill", "sklearn", "matplotlib") if not importlib.util.find_spec(m)]
    if missing:
        print(f"bench_demo: cannot run, not installed: {', '.join(missing)}", file=sys.stderr)
        return 2
    with scratch(args.dir, "bench-demo-") as parent:
        runs = grid_runs(fresh_copy(parent, "grid", args.quick))
        print(f"machine: {machine()}")
        print(f"python: {platform.python_implementation()} {platform.python_version()}")
        print(f"project: {NOTEBOOK}, {len(runs)} runs, nbcellar -j {JOBS}")
        print()
        subprocess.run([sys.executable, "-c", WARM_UP], check=True)
        loop_s, loop_nbs = papermill_grid(fresh_copy(parent, "papermill-loop", args.quick), 1)
        pool_s, _ = papermill_grid(fresh_copy(parent, "papermill-pool", args.quick), JOBS)
        folder = fresh_copy(parent, "nbcellar", args.quick)
        cold_s, cold_nbs = nbcellar_grid(folder)
        prep_ran = sum(
            find_cell(p, contains="embed(").metadata.nbcellar.status == "ran" for p in cold_nbs
        )
        cold_acc = [shown_accuracy(p) for p in cold_nbs]  # read now: the re-run rewrites them
        warm_s, warm_nbs = nbcellar_grid(folder)
        warm_acc = [shown_accuracy(p) for p in warm_nbs]
        loop_acc = [shown_accuracy(p) for p in loop_nbs]
        prep = [find_cell(p, contains="embed(").metadata.papermill.duration for p in loop_nbs]
        model = [
            find_cell(p, contains="classifier.fit(").metadata.papermill.duration for p in loop_nbs
        ]

    differ = [
        f"run {n} ({label(params)}): papermill {a}, nbcellar {b}, re-run {c}"
        for n, (params, a, b, c) in enumerate(
            zip(runs, loop_acc, cold_acc, warm_acc, strict=True), start=1
        )
        if not a == b == c
    ]
    print(
        f"preprocessing cell (papermill loop, every run): median {statistics.median(prep):.2f} s, "
        f"{min(prep):.2f}-{max(prep):.2f} s"
    )
    print("model cell (papermill loop): " + ", ".join(
        f"{label(params)} {seconds:.2f} s" for params, seconds in zip(runs, model, strict=True)
    ))  # fmt: skip
    print(
        f"nbcellar, empty store: the preprocessing cell ran in {prep_ran} of {len(runs)} runs, "
        f"restored in the others"
    )
    print()
    header = ("tool", "seconds", "per run [s]", "papermill loop / this")
    measured = [
        ("papermill loop (execute_notebook)", loop_s),
        (f"papermill, {JOBS} processes", pool_s),
        (f"nbcellar -j {JOBS}, empty store", cold_s),
        (f"nbcellar -j {JOBS}, re-run", warm_s),
    ]
    rows = [
        (name, f"{seconds:.2f}", f"{seconds / len(runs):.2f}", f"{loop_s / seconds:.2f}x")
        for name, seconds in measured
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for k, row in enumerate([header, *rows]):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print()
    met = "yes" if loop_s / cold_s >= TARGET else "NO"
    print(
        f"ratio papermill loop / nbcellar -j {JOBS} (empty store): {loop_s / cold_s:.2f}x; "
        f"target >= {TARGET:g}x: {met}"
    )
    print(f"ratio papermill {JOBS} processes / nbcellar -j {JOBS}: {pool_s / cold_s:.2f}x")
    if differ:
        print("UNEXPECTED: the runs' accuracies differ: " + "; ".join(differ))
        return 1
    print(f"accuracy: the same in papermill's and nbcellar's notebooks for all {len(runs)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
