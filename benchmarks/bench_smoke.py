"""Smoke tests on every push: ``pytest --nbcellar`` with its store carried against nbmake's
``pytest --nbmake``, on the same 8 notebooks, in one run.

Each notebook imports numpy, computes for about a second in each of two cells, and prints a
summary. Push 1: every notebook runs under both tools (nbcellar's store empty). Push 2: one
notebook's last cell edited; nbmake runs all 8 again, nbcellar with the store of push 1 (what
a CI cache step carries) serves the 7 unchanged ones whole and runs the edited cell only.
Target: push 2 >= 5x faster than nbmake. Both timed as the command (pytest's start-up
included), each loading only its own pytest plugin (PYTEST_DISABLE_PLUGIN_AUTOLOAD, then
``-p nbmake`` / ``-p nbcellar``), as a CI job that installs the one tool would.

nbmake 1.5.5 runs in a virtual environment of its own (``--nbmake-venv DIR``: made there with
pip on first use), as ploomber does in bench_pipeline.py.

    python benchmarks/bench_smoke.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat

from common import machine, scratch, side_venv, timed

WORK = "x = np.random.default_rng({seed}).normal(size=(1200, 1200))\nfor _ in range(6):\n" \
       "    x = np.tanh(x @ x.T / 1200)"  # fmt: skip


def make_notebooks(folder: Path, count: int = 8) -> list[Path]:
    folder.mkdir(parents=True)
    made = []
    for number in range(count):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}  # fmt: skip
        nb.cells = [
            nbformat.v4.new_code_cell("import numpy as np"),
            nbformat.v4.new_code_cell(WORK.format(seed=number)),
            nbformat.v4.new_code_cell(WORK.format(seed=number + 100).replace("x", "y")),
            nbformat.v4.new_code_cell("print(round(float(x.mean() + y.mean()), 6))"),
        ]
        path = folder / f"analysis_{number}.ipynb"
        nbformat.write(nb, path)
        made.append(path)
    return made


def nbmake_python(venv: Path) -> str:
    side_venv(venv, ["nbmake==1.5.5", "ipykernel", "numpy"], "pytest")
    return str(venv / "bin" / "python")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--nbmake-venv", default=str(Path.home() / ".cache" / "bench-nbmake"))
    parser.add_argument("--dir", default=None, help="parent of the temporary working folder")
    parser.add_argument("--quick", action="store_true", help="2 notebooks, no nbmake")
    args = parser.parse_args()
    print(machine())
    # Each tool's pytest loads its own plugin only, as in a CI job installing it alone (not
    # the plugins of the environment the benchmark runs from: hypothesis's alone takes 0.5 s).
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    tools = ("nbcellar",) if args.quick else ("nbmake", "nbcellar")
    theirs = "" if args.quick else nbmake_python(Path(args.nbmake_venv))
    ours = sys.executable
    results: dict[str, tuple[float, float]] = {}
    with scratch(args.dir) as base:
        for tool in tools:
            folder = base / tool
            notebooks = make_notebooks(folder / "notebooks", 2 if args.quick else 8)
            if tool == "nbmake":
                command = [theirs, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "nbmake",
                           "--nbmake", "notebooks"]  # fmt: skip
            else:
                command = [ours, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "nbcellar",
                           "--nbcellar", f"--nbcellar-store={folder / '.nbcellar'}",
                           "notebooks"]  # fmt: skip
            first, _ = timed(command, folder)
            nb = nbformat.read(notebooks[-1], as_version=4)
            nb.cells[-1].source = "print(round(float(x.mean() - y.mean()), 6))"
            nbformat.write(nb, notebooks[-1])
            second, _ = timed(command, folder)
            results[tool] = (first, second)
    print(f"{2 if args.quick else 8} notebooks (2 cells of ~1 s each), pytest as the command:")
    for tool, (first, second) in results.items():
        print(f"   {tool:9} push 1 {first:6.2f} s; push 2 (one last cell edited) {second:6.2f} s")
    first, second = results["nbcellar"]
    print(f"   nbcellar: ratio push 1 / push 2 = {first / second:.1f}x")
    if args.quick:
        return 0
    ratio = results["nbmake"][1] / results["nbcellar"][1]
    print(f"   push 2: nbmake / nbcellar = {ratio:.1f}x (target >= 5x: "
          f"{'yes' if ratio >= 5 else 'NO'}); push 1: "
          f"{results['nbcellar'][0] / results['nbmake'][0]:.2f}x nbmake's time")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
