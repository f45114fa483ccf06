"""Per-run overhead of parameterised runs: nbcellar's grid runner side by side with papermill.

A trivial notebook (a ``parameters`` cell ``x = 0`` and a cell printing ``x * 2``) is run once
per value of ``x``: every run executes its cells, nothing is restored from the cache (each run's
value differs, and the cell reads it). The time per run is what a user waits for each one:

- papermill: ``papermill.execute_notebook`` in a loop, one run after another in this process
  (each starts its kernel); the median of the runs, and the whole loop divided by the runs;
- nbcellar: ``nbcellar run trivial.ipynb -p x=[...] -j N`` as a command (its start-up
  included), one kernel per run from the pool it starts ahead; the whole command divided by
  the runs, for ``-j 1`` and ``-j`` = the number of cores.

Second, recording logged values: one run of a notebook whose cell logs 100,000 scalars
(``nbcellar.log(loss=...)`` in a loop, a history of 100,000 values), against the same run with
the loop computing the values without logging them; the difference is what recording costs
(logging, the cell's cache entry, the run's log in the store, the run record).

    python benchmarks/bench_runs.py              # 20 runs; 100,000 logged scalars
    python benchmarks/bench_runs.py --quick      # 4 runs; 10,000 scalars, for a smoke test
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import machine, scratch

TARGET_S = 0.3
LOG_TARGET_S = 2.0


def write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 0", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("print(x * 2)"),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def papermill_runs(path: Path, runs: int) -> tuple[list[float], float]:
    import papermill

    times = []
    begin = time.perf_counter()
    for x in range(runs):
        start = time.perf_counter()
        papermill.execute_notebook(
            str(path),
            str(path.with_name(f"pm-{x}.ipynb")),
            parameters={"x": x},
            progress_bar=False,
            log_output=False,
        )
        times.append(time.perf_counter() - start)
    return times, time.perf_counter() - begin


def nbcellar_runs(path: Path, runs: int, jobs: int) -> float:
    exe = Path(sys.executable).with_name("nbcellar")
    command = [str(exe), "run", str(path), "-p", f"x={list(range(runs))}", "-j", str(jobs)]
    store = path.parent / f"store-j{jobs}"  # empty: every run executes its cells
    command += ["-o", str(path.with_name(f"nbcellar-j{jobs}")), "--store", str(store)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"nbcellar run failed:\n{proc.stdout}\n{proc.stderr}")
    return seconds


def log_run(folder: Path, count: int, logging: bool) -> float:
    """Seconds of one ``nbcellar run`` of a cell making ``count`` scalars (logging them or not)."""
    import nbformat

    body = "nbcellar.log(loss=1.0 / (i + 1))" if logging else "loss = 1.0 / (i + 1)"
    source = f"import nbcellar\nfor i in range({count}):\n    {body}"
    path = folder / ("logging.ipynb" if logging else "computing.ipynb")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    exe = Path(sys.executable).with_name("nbcellar")
    store = folder / f"store-log-{logging}"
    start = time.perf_counter()
    proc = subprocess.run(
        [str(exe), "run", str(path), "--store", str(store)],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"nbcellar run failed:\n{proc.stdout}\n{proc.stderr}")
    if logging:
        import json

        listed = subprocess.run(
            [str(exe), "runs", "--json", "--store", str(store)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        values = json.loads(listed.stdout)[-1]["values"]
        if values.get("loss") != 1.0 / count:
            raise RuntimeError(f"the run's record does not hold the last logged value: {values}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=None, help="runs per tool (default 20)")
    parser.add_argument("--quick", action="store_true", help="4 runs")
    parser.add_argument("--dir", default=None, help="parent of the temporary working folder")
    args = parser.parse_args(argv)
    runs = args.runs or (4 if args.quick else 20)
    if importlib.util.find_spec("papermill") is None:
        print("bench_runs: cannot run, papermill is not installed", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    print(f"machine: {machine()}")
    print(f"python: {platform.python_implementation()} {platform.python_version()}")
    print(f"notebook: a parameters cell and one printing cell; {runs} runs per tool")
    print()
    with scratch(args.dir, "bench-runs-") as folder:
        path = folder / "trivial.ipynb"
        write_notebook(path)
        papermill_runs(path, 1)  # warm the disk cache for both tools, untimed
        pm_times, pm_total = papermill_runs(path, runs)
        results = {jobs: nbcellar_runs(path, runs, jobs) for jobs in sorted({1, cores})}
        count = 10_000 if args.quick else 100_000
        computing = log_run(folder, count, logging=False)
        logging = log_run(folder, count, logging=True)
    pm_median = statistics.median(pm_times)
    print(f"papermill loop: {pm_total:.2f} s for {runs} runs; median run {pm_median:.3f} s")
    for jobs, seconds in results.items():
        print(f"nbcellar -j {jobs}: {seconds:.2f} s for {runs} runs (command start-up included)")
    print()
    header = ("tool", "per run [s]", "papermill median / this", "target", "met")
    rows = [("papermill (median run)", f"{pm_median:.3f}", "1.00x", "-", "-")]
    for jobs, seconds in results.items():
        per_run = seconds / runs
        met = "yes" if per_run <= TARGET_S else "NO"
        rows.append(
            (f"nbcellar -j {jobs}", f"{per_run:.3f}", f"{pm_median / per_run:.2f}x",
             f"<= {TARGET_S} s", met)
        )  # fmt: skip
    recording = logging - computing
    print(
        f"{count:,} scalars: run logging them {logging:.2f} s, run only computing them "
        f"{computing:.2f} s -> recording {recording:.2f} s"
    )
    print()
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("ratio of papermill's median run to nbcellar's time per run:")
    for k, row in enumerate([header, *rows]):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    met = "yes" if recording < LOG_TARGET_S else "NO"
    print(
        f"recording {count:,} logged scalars: {recording:.2f} s (ratio to the run without "
        f"logging {logging / computing:.2f}x); target < {LOG_TARGET_S:g} s: {met}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
