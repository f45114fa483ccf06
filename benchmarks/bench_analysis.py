"""Cell analysis throughput on the test corpus, side by side with IPython's own front end.

Every cell a kernel runs already goes through IPython's input transformer and Python's parser;
that pair is the floor nbcellar's analysis is measured against. nbcellar adds the normalised
hash and the read / write / mutate analysis on top.

    python benchmarks/bench_analysis.py            # full run
    python benchmarks/bench_analysis.py --quick    # a few seconds, for a smoke test
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "tests" / "data" / "notebooks", ROOT / "examples"]


def corpus_cells() -> list[str]:
    from nbcellar.notebook import read_notebook

    cells: list[str] = []
    for folder in SOURCES:
        for path in sorted(folder.iterdir()):
            if path.suffix in (".ipynb", ".py"):
                cells += [c.source for c in read_notebook(path).code_cells]
    return cells


def ipython_front_end(source: str) -> None:
    from IPython.core.inputtransformer2 import TransformerManager

    with contextlib.suppress(SyntaxError):
        ast.parse(TransformerManager().transform_cell(source))


def nbcellar_analysis(source: str) -> None:
    from nbcellar.analysis.cell import analyze_cell

    analyze_cell.__wrapped__(source)  # uncached: every cell analysed from scratch


def throughput(fn: Callable[[str], None], cells: list[str], repeats: int) -> float:
    """Median cells per second over ``repeats`` passes through the whole corpus."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for source in cells:
            fn(source)
        rates.append(len(cells) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer passes")
    args = parser.parse_args()
    passes = 3 if args.quick else 15

    cells = corpus_cells()
    ipython_front_end(cells[0])
    nbcellar_analysis(cells[0])  # import cost out of the timings
    lines = sum(c.count("\n") + 1 for c in cells)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"corpus: {len(cells)} code cells, {lines} lines, {passes} passes (median)")
    base = throughput(ipython_front_end, cells, passes)
    ours = throughput(nbcellar_analysis, cells, passes)
    print(f"IPython transform + ast.parse : {base:10,.0f} cells/s")
    print(f"nbcellar analyze_cell         : {ours:10,.0f} cells/s")
    print(f"ratio nbcellar / IPython front end: {ours / base:.2f}x")


if __name__ == "__main__":
    main()
